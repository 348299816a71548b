// The evaluator: one pass over postfix code with a fixed value stack on the C stack.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>

#include "vigil/rules/internal/code.h"
#include "vigil/rules/internal/numeric.h"

namespace vigil::rules_internal {
namespace {

constexpr uint8_t kFalse = 0;
constexpr uint8_t kNull = 1;
constexpr uint8_t kTrue = 2;

inline double NumberOf(const Value& v) {
  if (v.kind == Value::Kind::kFloat) return v.f;
  if (v.kind == Value::Kind::kInt) return static_cast<double>(v.i);
  return kNaN;
}

// Tri for `a op b` where op is a mask; idx 0: a < b, 1: a == b, 2: a > b.
inline uint8_t FromMask(uint8_t mask, int idx) {
  return static_cast<uint8_t>(((mask >> idx) & 1) << 1);
}

inline uint8_t CompareNumbers(uint8_t mask, double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return kNull;
  return FromMask(mask, (a >= b) + (a > b));
}

inline bool Equal(const char* a, uint32_t a_len, const char* b, uint32_t b_len) {
  return a_len == b_len && (a_len == 0 || std::memcmp(a, b, a_len) == 0);
}

inline bool IsNull(uint8_t type, const Slot& s) {
  switch (static_cast<rules::Type>(type)) {
    case rules::Type::kNumber:
      return std::isnan(s.num);
    case rules::Type::kBool:
      return s.tri == kNull;
    case rules::Type::kString:
      return s.str == nullptr;
    case rules::Type::kTimestamp:
      return s.time == kNullTime;
    case rules::Type::kNull:
      return true;
  }
  return true;
}

}  // namespace

Slot Code::Run(const Event& event, const double* slots) const {
  Slot stack[kMaxStack];
  Slot* sp = stack;  // the next free entry; sp[-1] is the top
  const Value* values = event.values.data();
  const char* arena = event.arena.data();
  const char* consts = text.data();
  const Instr* const start = instrs.data();
  const Instr* ip = start;
  while (true) {
    const Instr& in = *ip++;
    switch (in.op) {
      case Op::kEnd:
        return sp[-1];

      case Op::kNum:
        sp->num = in.k.num;
        ++sp;
        break;
      case Op::kTri:
        sp->tri = in.m;
        ++sp;
        break;
      case Op::kStr:
        sp->str = consts + in.k.str.off;
        sp->len = in.k.str.len;
        ++sp;
        break;
      case Op::kSlot:
        sp->num = slots[in.a];
        ++sp;
        break;
      case Op::kFieldNum:
        sp->num = NumberOf(values[in.a]);
        ++sp;
        break;
      case Op::kFieldBool: {
        const Value& v = values[in.a];
        sp->tri = v.kind == Value::Kind::kBool ? (v.b ? kTrue : kFalse) : kNull;
        ++sp;
        break;
      }
      case Op::kFieldStr: {
        const Value& v = values[in.a];
        if (v.kind == Value::Kind::kString) {
          sp->str = arena + v.s.off;
          sp->len = v.s.len;
        } else {
          sp->str = nullptr;
          sp->len = 0;
        }
        ++sp;
        break;
      }
      case Op::kFieldTime: {
        const Value& v = values[in.a];
        sp->time = v.kind == Value::Kind::kTime ? v.i : kNullTime;
        ++sp;
        break;
      }

      case Op::kAdd:
        --sp;
        sp[-1].num += sp->num;
        break;
      case Op::kSub:
        --sp;
        sp[-1].num -= sp->num;
        break;
      case Op::kMul:
        --sp;
        sp[-1].num *= sp->num;
        break;
      case Op::kDiv:
        --sp;
        sp[-1].num = Divide(sp[-1].num, sp->num);
        break;
      case Op::kMod:
        --sp;
        sp[-1].num = Remainder(sp[-1].num, sp->num);
        break;
      case Op::kNeg:
        sp[-1].num = -sp[-1].num;
        break;
      case Op::kTimeDiff:
        --sp;
        sp[-1].num = TimeDiffSeconds(sp[-1].time, sp->time);
        break;

      case Op::kCmpNum:
        --sp;
        sp[-1].tri = CompareNumbers(in.m, sp[-1].num, sp->num);
        break;
      case Op::kCmpNumK:
        sp[-1].tri = CompareNumbers(in.m, sp[-1].num, in.k.num);
        break;
      case Op::kSlotCmpK:
        sp->tri = CompareNumbers(in.m, slots[in.a], in.k.num);
        ++sp;
        break;
      case Op::kFieldCmpK:
        sp->tri = CompareNumbers(in.m, NumberOf(values[in.a]), in.k.num);
        ++sp;
        break;
      case Op::kCmpTime: {
        --sp;
        const int64_t a = sp[-1].time;
        const int64_t b = sp->time;
        sp[-1].tri = a == kNullTime || b == kNullTime ? kNull : FromMask(in.m, (a >= b) + (a > b));
        break;
      }
      case Op::kCmpStr: {
        --sp;
        const Slot& a = sp[-1];
        const Slot& b = *sp;
        const uint8_t r = a.str == nullptr || b.str == nullptr
                              ? kNull
                              : FromMask(in.m, Equal(a.str, a.len, b.str, b.len) ? 1 : 0);
        sp[-1].tri = r;
        break;
      }
      case Op::kFieldStrCmpK: {
        const Value& v = values[in.a];
        sp->tri =
            v.kind != Value::Kind::kString
                ? kNull
                : FromMask(
                      in.m,
                      Equal(arena + v.s.off, v.s.len, consts + in.k.str.off, in.k.str.len) ? 1 : 0);
        ++sp;
        break;
      }
      case Op::kCmpBool: {
        --sp;
        const uint8_t a = sp[-1].tri;
        const uint8_t b = sp->tri;
        sp[-1].tri = a == kNull || b == kNull ? kNull : FromMask(in.m, a == b ? 1 : 0);
        break;
      }

      case Op::kNot:
        sp[-1].tri = static_cast<uint8_t>(kTrue - sp[-1].tri);
        break;
      case Op::kAnd:
        --sp;
        sp[-1].tri = std::min(sp[-1].tri, sp->tri);
        break;
      case Op::kOr:
        --sp;
        sp[-1].tri = std::max(sp[-1].tri, sp->tri);
        break;
      case Op::kJumpIfFalse:
        if (sp[-1].tri == kFalse) ip = start + in.a;
        break;
      case Op::kJumpIfTrue:
        if (sp[-1].tri == kTrue) ip = start + in.a;
        break;
      case Op::kIsNull:
        sp[-1].tri = IsNull(in.m, sp[-1]) != (in.a != 0) ? kTrue : kFalse;
        break;
      case Op::kJumpIfNotNull:
        if (!IsNull(in.m, sp[-1])) ip = start + in.a;
        break;
      case Op::kPop:
        --sp;
        break;

      case Op::kInStrSet: {
        Slot& s = sp[-1];
        s.tri = s.str == nullptr                            ? kNull
                : in.k.list->ContainsString({s.str, s.len}) ? kTrue
                                                            : kFalse;
        break;
      }
      case Op::kInNumSet: {
        Slot& s = sp[-1];
        s.tri = std::isnan(s.num) ? kNull : in.k.list->ContainsNumber(s.num) ? kTrue : kFalse;
        break;
      }
      case Op::kFieldInStrSet: {
        const Value& v = values[in.a];
        sp->tri = v.kind != Value::Kind::kString                          ? kNull
                  : in.k.list->ContainsString({arena + v.s.off, v.s.len}) ? kTrue
                                                                          : kFalse;
        ++sp;
        break;
      }
      case Op::kInStrLits: {
        Slot& s = sp[-1];
        if (s.str == nullptr) {
          s.tri = kNull;
          break;
        }
        uint8_t r = kFalse;
        const StrRef* it = strings.data() + in.k.str.off;
        for (const StrRef* end = it + in.k.str.len; it != end; ++it) {
          if (Equal(s.str, s.len, consts + it->off, it->len)) {
            r = kTrue;
            break;
          }
        }
        s.tri = r;
        break;
      }
      case Op::kInNumLits: {
        Slot& s = sp[-1];
        const double x = s.num;
        if (std::isnan(x)) {
          s.tri = kNull;
          break;
        }
        uint8_t r = kFalse;
        const double* it = numbers.data() + in.k.str.off;
        for (const double* end = it + in.k.str.len; it != end; ++it) {
          if (*it == x) {
            r = kTrue;
            break;
          }
        }
        s.tri = r;
        break;
      }

      case Op::kStartsWith:
      case Op::kEndsWith:
      case Op::kContains: {
        --sp;
        const Slot& a = sp[-1];
        const Slot& b = *sp;
        if (a.str == nullptr || b.str == nullptr) {
          sp[-1].tri = kNull;
          break;
        }
        const std::string_view s(a.str, a.len);
        const std::string_view p(b.str, b.len);
        bool r;
        if (in.op == Op::kStartsWith) {
          r = s.starts_with(p);
        } else if (in.op == Op::kEndsWith) {
          r = s.ends_with(p);
        } else {
          r = s.find(p) != std::string_view::npos;
        }
        sp[-1].tri = r ? kTrue : kFalse;
        break;
      }

      case Op::kAbs:
        sp[-1].num = std::fabs(sp[-1].num);
        break;
      case Op::kMin:
        --sp;
        sp[-1].num = Min(sp[-1].num, sp->num);
        break;
      case Op::kMax:
        --sp;
        sp[-1].num = Max(sp[-1].num, sp->num);
        break;
      case Op::kLog:
        sp[-1].num = Log(sp[-1].num);
        break;
      case Op::kSqrt:
        sp[-1].num = Sqrt(sp[-1].num);
        break;
      case Op::kRound:
        sp[-1].num = Round(sp[-1].num);
        break;
      case Op::kHourOfDay:
        sp[-1].num = HourOfDay(sp[-1].time);
        break;
      case Op::kDayOfWeek:
        sp[-1].num = DayOfWeek(sp[-1].time);
        break;
      case Op::kDistance:
        sp -= 3;
        sp[-1].num = DistanceKm(sp[-1].num, sp[0].num, sp[1].num, sp[2].num);
        break;
    }
  }
}

}  // namespace vigil::rules_internal
