#include "vigil/rules/internal/codegen.h"

#include <algorithm>

#include <fmt/format.h>

#include "vigil/rules/internal/numeric.h"

namespace vigil::rules_internal {
namespace {

using rules::Type;

// Literal lists longer than this become hash sets; shorter ones are scanned.
constexpr size_t kMaxLinearList = 8;

uint8_t Mask(Tok op) {
  switch (op) {
    case Tok::kLt:
      return kCmpLt;
    case Tok::kLe:
      return kCmpLe;
    case Tok::kGt:
      return kCmpGt;
    case Tok::kGe:
      return kCmpGe;
    case Tok::kEq:
      return kCmpEq;
    default:
      return kCmpNe;
  }
}

// The mask for the operands swapped: a < b is b > a.
uint8_t Swapped(uint8_t mask) {
  return static_cast<uint8_t>((mask & 2) | ((mask & 1) << 2) | ((mask & 4) >> 2));
}

class Generator {
 public:
  Generator(const Ast& ast, Code& code) : ast_(ast), code_(code) {}

  int Run() {
    Emit(ast_.root);
    Push(Op::kEnd);
    Thread();
    return max_depth_;
  }

 private:
  const Node& N(int i) const { return ast_.nodes[static_cast<size_t>(i)]; }

  Instr& Push(Op op, uint8_t m = 0, uint32_t a = 0) {
    Instr& in = code_.instrs.emplace_back();
    in.op = op;
    in.m = m;
    in.a = a;
    return in;
  }
  uint32_t Here() const { return static_cast<uint32_t>(code_.instrs.size()); }
  void Grow(int n) {
    depth_ += n;
    max_depth_ = std::max(max_depth_, depth_);
  }

  StrRef AddText(const std::string& s) {
    const StrRef r{static_cast<uint32_t>(code_.text.size()), static_cast<uint32_t>(s.size())};
    code_.text += s;
    return r;
  }

  void KeepList(std::shared_ptr<const List> list) {
    if (std::find(code_.lists.begin(), code_.lists.end(), list) == code_.lists.end()) {
      code_.lists.push_back(std::move(list));
    }
  }

  void UseField(int index) {
    code_.fields_needed = std::max(code_.fields_needed, static_cast<uint32_t>(index) + 1);
  }
  void UseSlot(int index) {
    code_.slots_needed = std::max(code_.slots_needed, static_cast<uint32_t>(index) + 1);
  }

  bool IsNumberRef(const Node& n) const {
    return n.kind == NodeKind::kRef && n.type == Type::kNumber;
  }

  void Emit(int i) {
    const Node& n = N(i);
    if (n.constant) {
      Push(Op::kNum).k.num = n.number;
      Grow(1);
      return;
    }
    switch (n.kind) {
      case NodeKind::kNumber:  // constant: handled above
        Push(Op::kNum).k.num = n.number;
        Grow(1);
        return;
      case NodeKind::kString:
        Push(Op::kStr).k.str = AddText(n.text);
        Grow(1);
        return;
      case NodeKind::kBool:
        Push(Op::kTri, n.boolean ? 2 : 0);
        Grow(1);
        return;
      case NodeKind::kNull:  // only under `is null` and coalesce, which handle it
        Push(Op::kNum).k.num = kNaN;
        Grow(1);
        return;
      case NodeKind::kRef:
        EmitRef(n);
        return;
      case NodeKind::kNeg:
        Emit(n.kids[0]);
        Push(Op::kNeg);
        return;
      case NodeKind::kArith:
        EmitArith(n);
        return;
      case NodeKind::kCompare:
        EmitCompare(n);
        return;
      case NodeKind::kAnd:
      case NodeKind::kOr: {
        Emit(n.kids[0]);
        const uint32_t jump = Here();
        Push(n.kind == NodeKind::kAnd ? Op::kJumpIfFalse : Op::kJumpIfTrue);
        Emit(n.kids[1]);
        Push(n.kind == NodeKind::kAnd ? Op::kAnd : Op::kOr);
        Grow(-1);
        code_.instrs[jump].a = Here();
        return;
      }
      case NodeKind::kNot:
        Emit(n.kids[0]);
        Push(Op::kNot);
        return;
      case NodeKind::kIsNull: {
        const Node& kid = N(n.kids[0]);
        if (kid.type == Type::kNull) {  // null is null
          Push(Op::kTri, n.negated ? 0 : 2);
          Grow(1);
          return;
        }
        Emit(n.kids[0]);
        Push(Op::kIsNull, static_cast<uint8_t>(kid.type), n.negated ? 1 : 0);
        return;
      }
      case NodeKind::kInList:
        EmitInList(n);
        return;
      case NodeKind::kInValues:
        EmitInValues(n);
        return;
      case NodeKind::kCall:
        EmitCall(n);
        return;
    }
  }

  void EmitRef(const Node& n) {
    if (n.ref.slot) {
      UseSlot(n.ref.index);
      Push(Op::kSlot, 0, static_cast<uint32_t>(n.ref.index));
    } else {
      UseField(n.ref.index);
      Op op = Op::kFieldNum;
      if (n.type == Type::kBool) op = Op::kFieldBool;
      if (n.type == Type::kString) op = Op::kFieldStr;
      if (n.type == Type::kTimestamp) op = Op::kFieldTime;
      Push(op, 0, static_cast<uint32_t>(n.ref.index));
    }
    Grow(1);
  }

  void EmitArith(const Node& n) {
    Emit(n.kids[0]);
    Emit(n.kids[1]);
    Grow(-1);
    if (N(n.kids[0]).type == Type::kTimestamp) {
      Push(Op::kTimeDiff);
      return;
    }
    switch (n.op) {
      case Tok::kPlus:
        Push(Op::kAdd);
        break;
      case Tok::kMinus:
        Push(Op::kSub);
        break;
      case Tok::kStar:
        Push(Op::kMul);
        break;
      case Tok::kSlash:
        Push(Op::kDiv);
        break;
      default:
        Push(Op::kMod);
        break;
    }
  }

  // `ref op constant` (or swapped) becomes one instruction.
  bool EmitFusedCompare(const Node& ref, uint8_t mask, double k) {
    if (ref.kind != NodeKind::kRef || ref.type != Type::kNumber) return false;
    if (ref.ref.slot) {
      UseSlot(ref.ref.index);
      Push(Op::kSlotCmpK, mask, static_cast<uint32_t>(ref.ref.index)).k.num = k;
    } else {
      UseField(ref.ref.index);
      Push(Op::kFieldCmpK, mask, static_cast<uint32_t>(ref.ref.index)).k.num = k;
    }
    Grow(1);
    return true;
  }

  void EmitCompare(const Node& n) {
    const Node& a = N(n.kids[0]);
    const Node& b = N(n.kids[1]);
    const uint8_t mask = Mask(n.op);
    switch (a.type) {
      case Type::kNumber:
        if (b.constant && EmitFusedCompare(a, mask, b.number)) return;
        if (a.constant && EmitFusedCompare(b, Swapped(mask), a.number)) return;
        if (b.constant) {
          Emit(n.kids[0]);
          Push(Op::kCmpNumK, mask).k.num = b.number;
          return;
        }
        if (a.constant) {
          Emit(n.kids[1]);
          Push(Op::kCmpNumK, Swapped(mask)).k.num = a.number;
          return;
        }
        Emit(n.kids[0]);
        Emit(n.kids[1]);
        Push(Op::kCmpNum, mask);
        Grow(-1);
        return;
      case Type::kString: {
        const Node* field = nullptr;
        const Node* literal = nullptr;
        if (a.kind == NodeKind::kRef && b.kind == NodeKind::kString) {
          field = &a;
          literal = &b;
        } else if (b.kind == NodeKind::kRef && a.kind == NodeKind::kString) {
          field = &b;
          literal = &a;
        }
        if (field != nullptr) {
          UseField(field->ref.index);
          Push(Op::kFieldStrCmpK, mask, static_cast<uint32_t>(field->ref.index)).k.str =
              AddText(literal->text);
          Grow(1);
          return;
        }
        Emit(n.kids[0]);
        Emit(n.kids[1]);
        Push(Op::kCmpStr, mask);
        Grow(-1);
        return;
      }
      default:
        Emit(n.kids[0]);
        Emit(n.kids[1]);
        Push(a.type == Type::kTimestamp ? Op::kCmpTime : Op::kCmpBool, mask);
        Grow(-1);
        return;
    }
  }

  void EmitInList(const Node& n) {
    const Node& x = N(n.kids[0]);
    const List* list = n.list.get();
    KeepList(n.list);
    if (x.kind == NodeKind::kRef && x.type == Type::kString) {
      UseField(x.ref.index);
      Push(Op::kFieldInStrSet, 0, static_cast<uint32_t>(x.ref.index)).k.list = list;
      Grow(1);
    } else {
      Emit(n.kids[0]);
      Push(x.type == Type::kString ? Op::kInStrSet : Op::kInNumSet).k.list = list;
    }
    if (n.negated) Push(Op::kNot);
  }

  void EmitInValues(const Node& n) {
    const bool strings = N(n.kids[0]).type == Type::kString;
    const size_t count = n.kids.size() - 1;
    Emit(n.kids[0]);
    if (count > kMaxLinearList) {
      std::shared_ptr<const List> list;
      if (strings) {
        std::vector<std::string> values;
        for (size_t k = 1; k < n.kids.size(); ++k) values.push_back(N(n.kids[k]).text);
        list = std::make_shared<const List>(List::FromStrings(values));
      } else {
        std::vector<double> values;
        for (size_t k = 1; k < n.kids.size(); ++k) values.push_back(N(n.kids[k]).number);
        list = std::make_shared<const List>(List::FromNumbers(values));
      }
      Push(strings ? Op::kInStrSet : Op::kInNumSet).k.list = list.get();
      KeepList(std::move(list));
    } else if (strings) {
      const StrRef range{static_cast<uint32_t>(code_.strings.size()), static_cast<uint32_t>(count)};
      for (size_t k = 1; k < n.kids.size(); ++k)
        code_.strings.push_back(AddText(N(n.kids[k]).text));
      Push(Op::kInStrLits).k.str = range;
    } else {
      const StrRef range{static_cast<uint32_t>(code_.numbers.size()), static_cast<uint32_t>(count)};
      for (size_t k = 1; k < n.kids.size(); ++k) code_.numbers.push_back(N(n.kids[k]).number);
      Push(Op::kInNumLits).k.str = range;
    }
    if (n.negated) Push(Op::kNot);
  }

  void EmitCall(const Node& n) {
    switch (n.func) {
      case Func::kCoalesce: {
        std::vector<int> args;
        for (int k : n.kids) {
          if (N(k).type != Type::kNull) args.push_back(k);
        }
        std::vector<uint32_t> jumps;
        for (size_t k = 0; k + 1 < args.size(); ++k) {
          Emit(args[k]);
          jumps.push_back(Here());
          Push(Op::kJumpIfNotNull, static_cast<uint8_t>(n.type));
          Push(Op::kPop);
          Grow(-1);
        }
        Emit(args.back());
        for (uint32_t j : jumps) code_.instrs[j].a = Here();
        return;
      }
      case Func::kMin:
      case Func::kMax:
        Emit(n.kids[0]);
        for (size_t k = 1; k < n.kids.size(); ++k) {
          Emit(n.kids[k]);
          Push(n.func == Func::kMin ? Op::kMin : Op::kMax);
          Grow(-1);
        }
        return;
      default:
        break;
    }
    for (int k : n.kids) Emit(k);
    Grow(1 - static_cast<int>(n.kids.size()));
    switch (n.func) {
      case Func::kAbs:
        Push(Op::kAbs);
        break;
      case Func::kLog:
        Push(Op::kLog);
        break;
      case Func::kSqrt:
        Push(Op::kSqrt);
        break;
      case Func::kRound:
        Push(Op::kRound);
        break;
      case Func::kHourOfDay:
        Push(Op::kHourOfDay);
        break;
      case Func::kDayOfWeek:
        Push(Op::kDayOfWeek);
        break;
      case Func::kDistance:
        Push(Op::kDistance);
        break;
      case Func::kStartsWith:
        Push(Op::kStartsWith);
        break;
      case Func::kEndsWith:
        Push(Op::kEndsWith);
        break;
      default:
        Push(Op::kContains);
        break;
    }
  }

  // Jump threading: a jump landing on a jump that must go on (same test, same value) goes
  // straight to the final target; one landing on the opposite test, which cannot jump,
  // goes to the instruction after it.
  void Thread() {
    for (Instr& in : code_.instrs) {
      if (in.op != Op::kJumpIfFalse && in.op != Op::kJumpIfTrue) continue;
      while (true) {
        const Instr& target = code_.instrs[in.a];
        if (target.op == in.op) {
          in.a = target.a;
        } else if (target.op == Op::kJumpIfFalse || target.op == Op::kJumpIfTrue) {
          ++in.a;
        } else {
          break;
        }
      }
    }
  }

  const Ast& ast_;
  Code& code_;
  int depth_ = 0;
  int max_depth_ = 0;
};

}  // namespace

bool Generate(const Ast& ast, Code& code, rules::Diagnostic& error) {
  code.max_stack = Generator(ast, code).Run();
  if (code.max_stack > kMaxStack) {
    const Node& root = ast.nodes[static_cast<size_t>(ast.root)];
    error.code = rules::Errc::kTooComplex;
    error.offset = root.pos;
    error.length = root.len;
    error.message =
        fmt::format("expression too complex: it needs more than {} stack entries", kMaxStack);
    return false;
  }
  return true;
}

}  // namespace vigil::rules_internal
