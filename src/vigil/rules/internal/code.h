#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vigil/common/event.h"
#include "vigil/rules/expr.h"
#include "vigil/rules/internal/list.h"

namespace vigil::rules_internal {

// The evaluator's fixed value stack, in entries; Compile rejects expressions that need more.
inline constexpr int kMaxStack = 64;

// Comparison masks: bit 0 is the answer when a < b, bit 1 when a == b, bit 2 when a > b.
inline constexpr uint8_t kCmpLt = 1, kCmpEq = 2, kCmpLe = 3, kCmpGt = 4, kCmpNe = 5, kCmpGe = 6;

// Instructions of the postfix code. "push" and "pop" refer to the value stack; operands of an
// instruction are in Instr::m (a small code), Instr::a (an index or jump target) and Instr::k.
enum class Op : uint8_t {
  kEnd,  // the result is on top
  // Loads (push).
  kNum,        // k.num
  kTri,        // m: a Tri
  kStr,        // k.str: bytes of Code::text
  kSlot,       // slots[a]
  kFieldNum,   // event.values[a] as a number
  kFieldBool,  // event.values[a] as a bool
  kFieldStr,   // event.values[a] as a string
  kFieldTime,  // event.values[a] as a timestamp
  // Arithmetic: pop 2 (kNeg: 1), push a number.
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kNeg,
  kTimeDiff,  // timestamp - timestamp, seconds
  // Comparisons (m: mask): push a Tri.
  kCmpNum,        // pop 2 numbers
  kCmpNumK,       // pop 1 number; compare with k.num
  kSlotCmpK,      // slots[a] against k.num
  kFieldCmpK,     // number field a against k.num
  kCmpTime,       // pop 2 timestamps
  kCmpStr,        // pop 2 strings (m: kCmpEq / kCmpNe)
  kFieldStrCmpK,  // string field a against k.str (m: kCmpEq / kCmpNe)
  kCmpBool,       // pop 2 bools (m: kCmpEq / kCmpNe)
  // Logic on Tri.
  kNot,
  kAnd,
  kOr,
  kJumpIfFalse,    // top is false: jump to a (keeping it)
  kJumpIfTrue,     // top is true: jump to a (keeping it)
  kIsNull,         // pop a value of type m; push whether it is null (a == 1: is not null)
  kJumpIfNotNull,  // top (of type m) is not null: jump to a (keeping it)
  kPop,
  // Membership: pop 1, push a Tri.
  kInStrSet,       // k.list
  kInNumSet,       // k.list
  kFieldInStrSet,  // string field a in k.list (no pop)
  kInStrLits,      // k.str = {first, count} in Code::strings
  kInNumLits,      // k.str = {first, count} in Code::numbers
  // Strings: pop 2, push a Tri.
  kStartsWith,
  kEndsWith,
  kContains,
  // Functions: pop their arguments, push a number.
  kAbs,
  kMin,
  kMax,
  kLog,
  kSqrt,
  kRound,
  kHourOfDay,
  kDayOfWeek,
  kDistance,
};

struct StrRef {
  uint32_t off;
  uint32_t len;
};

struct Instr {
  Op op = Op::kEnd;
  uint8_t m = 0;
  uint32_t a = 0;
  union {
    double num;
    StrRef str;
    const List* list;  // kept alive by Code::lists
  } k{};
};
static_assert(sizeof(Instr) == 16);

// One value stack entry. Which member is live follows from the static types; null is NaN for
// numbers, Tri::kNull for bools, a null pointer for strings and kNullTime for timestamps.
struct Slot {
  union {
    double num;
    int64_t time;
    uint8_t tri;
    const char* str;
  };
  uint32_t len;
};

// Code is a Program's content. Immutable after Generate.
struct Code {
  rules::Type type = rules::Type::kBool;
  std::vector<Instr> instrs;
  std::vector<double> numbers;  // values of short literal lists
  std::vector<StrRef> strings;  // values of short literal lists (in `text`)
  std::string text;             // bytes of string constants
  // Named lists, and long literal lists, this code points into. shared_ptr: see Lists.
  std::vector<std::shared_ptr<const List>> lists;
  std::vector<rules::Program::Ref> refs;
  std::string canonical;
  uint32_t fields_needed = 0;  // event.values.size() must be at least this
  uint32_t slots_needed = 0;
  int max_stack = 0;

  Slot Run(const Event& event, const double* slots) const;
};

}  // namespace vigil::rules_internal
