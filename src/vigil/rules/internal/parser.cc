#include "vigil/rules/internal/parser.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "vigil/rules/internal/numeric.h"
#include "vigil/rules/internal/suggest.h"

namespace vigil::rules_internal {
namespace {

using rules::Diagnostic;
using rules::Errc;
using rules::Type;
using rules::TypeName;

struct FuncInfo {
  std::string_view name;
  Func func;
  int min_args;
  int max_args;  // -1: any number
  Type arg;      // kNull: coalesce (any one type)
  Type result;   // kNull: the arguments' type
};

constexpr FuncInfo kFuncs[] = {
    {"abs", Func::kAbs, 1, 1, Type::kNumber, Type::kNumber},
    {"min", Func::kMin, 2, -1, Type::kNumber, Type::kNumber},
    {"max", Func::kMax, 2, -1, Type::kNumber, Type::kNumber},
    {"log", Func::kLog, 1, 1, Type::kNumber, Type::kNumber},
    {"sqrt", Func::kSqrt, 1, 1, Type::kNumber, Type::kNumber},
    {"round", Func::kRound, 1, 1, Type::kNumber, Type::kNumber},
    {"hour_of_day", Func::kHourOfDay, 1, 1, Type::kTimestamp, Type::kNumber},
    {"day_of_week", Func::kDayOfWeek, 1, 1, Type::kTimestamp, Type::kNumber},
    {"distance", Func::kDistance, 4, 4, Type::kNumber, Type::kNumber},
    {"coalesce", Func::kCoalesce, 2, -1, Type::kNull, Type::kNull},
    {"starts_with", Func::kStartsWith, 2, 2, Type::kString, Type::kBool},
    {"ends_with", Func::kEndsWith, 2, 2, Type::kString, Type::kBool},
    {"contains", Func::kContains, 2, 2, Type::kString, Type::kBool},
};

const FuncInfo* FindFunc(std::string_view name) {
  for (const FuncInfo& f : kFuncs) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const FuncInfo& InfoOf(Func func) {
  for (const FuncInfo& f : kFuncs) {
    if (f.func == func) return f;
  }
  return kFuncs[0];
}

bool IsCompareOp(Tok t) {
  return t == Tok::kEq || t == Tok::kNe || t == Tok::kLt || t == Tok::kLe || t == Tok::kGt ||
         t == Tok::kGe;
}

// Precedence for rendering: higher binds tighter.
int Precedence(const Node& n) {
  switch (n.kind) {
    case NodeKind::kOr:
      return 1;
    case NodeKind::kAnd:
      return 2;
    case NodeKind::kNot:
      return 3;
    case NodeKind::kCompare:
    case NodeKind::kIsNull:
    case NodeKind::kInList:
    case NodeKind::kInValues:
      return 4;
    case NodeKind::kArith:
      return n.op == Tok::kPlus || n.op == Tok::kMinus ? 5 : 6;
    case NodeKind::kNeg:
      return 7;
    default:
      return 8;
  }
}

// "AND" for "and": keywords are lower case only.
std::string_view UpperKeyword(std::string_view word) {
  std::string lower(word);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (Tok t :
       {Tok::kAnd, Tok::kOr, Tok::kNot, Tok::kIn, Tok::kIs, Tok::kNull, Tok::kTrue, Tok::kFalse}) {
    if (KeywordName(t) == lower && lower != word) return KeywordName(t);
  }
  return {};
}

class Parser {
 public:
  Parser(std::string_view text, const std::vector<Token>& tokens, const rules::Schema& schema,
         const rules::Lists& lists, Ast& ast, Diagnostic& error)
      : text_(text), toks_(tokens), schema_(schema), lists_(lists), ast_(ast), error_(error) {}

  bool Run() {
    ast_.nodes.clear();
    ast_.refs.clear();
    if (Peek().kind == Tok::kEnd) return Fail(Errc::kSyntax, Peek(), "empty expression");
    int root = -1;
    if (!ParseOr(root)) return false;
    const Token& t = Peek();
    if (t.kind != Tok::kEnd) {
      if (t.kind == Tok::kRParen) return Fail(Errc::kSyntax, t, "unmatched ')'");
      if (t.kind == Tok::kIdent) {
        const std::string_view kw = UpperKeyword(t.text);
        if (!kw.empty()) return Fail(Errc::kSyntax, t, fmt::format("write '{}' in lower case", kw));
      }
      return Fail(Errc::kSyntax, t,
                  fmt::format("unexpected '{}': expected an operator or the end", Spell(t)));
    }
    ast_.root = root;
    return true;
  }

 private:
  const Token& Peek(size_t ahead = 0) const {
    return toks_[std::min(i_ + ahead, toks_.size() - 1)];
  }
  const Token& Next() {
    const Token& t = toks_[i_];
    if (i_ + 1 < toks_.size()) ++i_;
    return t;
  }
  std::string_view Spell(const Token& t) const { return text_.substr(t.pos, t.len); }

  bool Fail(Errc code, uint32_t pos, uint32_t len, std::string message) {
    error_.code = code;
    error_.offset = pos;
    error_.length = len;
    error_.message = std::move(message);
    return false;
  }
  bool Fail(Errc code, const Token& at, std::string message) {
    return Fail(code, at.pos, at.len, std::move(message));
  }
  bool FailAt(Errc code, int node, std::string message) {
    return Fail(code, N(node).pos, N(node).len, std::move(message));
  }

  Node& N(int i) { return ast_.nodes[static_cast<size_t>(i)]; }
  Type T(int i) const { return ast_.nodes[static_cast<size_t>(i)].type; }

  int Add(NodeKind kind, Type type, uint32_t pos, uint32_t end) {
    Node& n = ast_.nodes.emplace_back();
    n.kind = kind;
    n.type = type;
    n.pos = pos;
    n.len = end - pos;
    return static_cast<int>(ast_.nodes.size() - 1);
  }
  uint32_t End(int node) { return N(node).pos + N(node).len; }

  bool Enter(const Token& at) {
    if (++depth_ > kMaxNesting) {
      return Fail(Errc::kTooComplex, at,
                  fmt::format("expression nested too deeply (more than {} levels)", kMaxNesting));
    }
    return true;
  }

  // or := and (('or' | '||') and)*
  bool ParseOr(int& out) {
    if (!ParseAnd(out)) return false;
    while (Peek().kind == Tok::kOr) {
      const Token& op = Next();
      int right = -1;
      if (!ParseAnd(right)) return false;
      if (!Logic(NodeKind::kOr, op, out, right, out)) return false;
    }
    return true;
  }

  // and := not (('and' | '&&') not)*
  bool ParseAnd(int& out) {
    if (!ParseNot(out)) return false;
    while (Peek().kind == Tok::kAnd) {
      const Token& op = Next();
      int right = -1;
      if (!ParseNot(right)) return false;
      if (!Logic(NodeKind::kAnd, op, out, right, out)) return false;
    }
    return true;
  }

  bool Logic(NodeKind kind, const Token& op, int left, int right, int& out) {
    if (T(left) != Type::kBool || T(right) != Type::kBool) {
      return Fail(Errc::kType, op,
                  fmt::format("'{}' needs two bools; got {} and {}", Spell(op), TypeName(T(left)),
                              TypeName(T(right))));
    }
    out = Add(kind, Type::kBool, N(left).pos, End(right));
    N(out).kids = {left, right};
    return true;
  }

  // not := ('not' | '!') not | cmp
  bool ParseNot(int& out) {
    if (Peek().kind != Tok::kNot) return ParseCompare(out);
    const Token& op = Next();
    if (!Enter(op)) return false;
    int operand = -1;
    if (!ParseNot(operand)) return false;
    --depth_;
    if (T(operand) != Type::kBool) {
      return Fail(Errc::kType, op,
                  fmt::format("'{}' needs a bool; got {}", Spell(op), TypeName(T(operand))));
    }
    out = Add(NodeKind::kNot, Type::kBool, op.pos, End(operand));
    N(out).kids = {operand};
    return true;
  }

  // cmp := add [ cmpop add | 'is' ['not'] 'null' | ['not'] 'in' list ]
  bool ParseCompare(int& out) {
    if (!ParseAdd(out)) return false;
    const Token& t = Peek();
    if (IsCompareOp(t.kind)) {
      const Token& op = Next();
      int right = -1;
      if (!ParseAdd(right)) return false;
      if (!Compare(op, out, right, out)) return false;
    } else if (t.kind == Tok::kIs) {
      Next();
      bool negated = false;
      if (Peek().kind == Tok::kNot) {
        Next();
        negated = true;
      }
      if (Peek().kind != Tok::kNull) {
        return Fail(Errc::kSyntax, Peek(), "expected 'null' or 'not null' after 'is'");
      }
      const Token& null = Next();
      const int operand = out;
      out = Add(NodeKind::kIsNull, Type::kBool, N(operand).pos, null.pos + null.len);
      N(out).negated = negated;
      N(out).kids = {operand};
    } else if (t.kind == Tok::kIn || t.kind == Tok::kNot) {
      const bool negated = t.kind == Tok::kNot;
      if (negated) {
        Next();
        if (Peek().kind != Tok::kIn)
          return Fail(Errc::kSyntax, Peek(), "expected 'in' after 'not'");
      }
      if (!ParseIn(negated, out, out)) return false;
    } else {
      return true;
    }
    const Tok k = Peek().kind;
    if (IsCompareOp(k) || k == Tok::kIs || k == Tok::kIn || k == Tok::kNot) {
      return Fail(Errc::kSyntax, Peek(), "comparisons do not chain; join them with 'and'");
    }
    return true;
  }

  bool Compare(const Token& op, int left, int right, int& out) {
    const Type a = T(left);
    const Type b = T(right);
    const bool ordering = op.kind != Tok::kEq && op.kind != Tok::kNe;
    if (ordering) {
      if (a == Type::kTimestamp || b == Type::kTimestamp) {
        if (a != b) {
          return Fail(Errc::kType, op,
                      fmt::format("'{}' needs two timestamps; got {} and {}", Spell(op),
                                  TypeName(a), TypeName(b)));
        }
      } else if (a != Type::kNumber || b != Type::kNumber) {
        return Fail(Errc::kType, op,
                    fmt::format("'{}' needs two numbers; got {} and {}", Spell(op), TypeName(a),
                                TypeName(b)));
      }
    } else if (a == Type::kNull || b == Type::kNull) {
      return Fail(Errc::kType, op,
                  fmt::format("'{}' with null is always null: write 'is {}null'", Spell(op),
                              op.kind == Tok::kEq ? "" : "not "));
    } else if (a != b) {
      return Fail(Errc::kType, op,
                  fmt::format("'{}' needs two values of the same type; got {} and {}", Spell(op),
                              TypeName(a), TypeName(b)));
    }
    out = Add(NodeKind::kCompare, Type::kBool, N(left).pos, End(right));
    N(out).op = op.kind;
    N(out).kids = {left, right};
    return true;
  }

  // in := 'in' (IDENT | '(' literal (',' literal)* ')')
  bool ParseIn(bool negated, int left, int& out) {
    const Token& in = Next();
    const Type type = T(left);
    if (type != Type::kString && type != Type::kNumber) {
      return Fail(
          Errc::kType, in,
          fmt::format("'in' needs a string or a number on its left; got {}", TypeName(type)));
    }
    const Token& t = Peek();
    if (t.kind == Tok::kIdent) {
      Next();
      std::shared_ptr<const List> list = lists_.Find(t.text);
      if (!list) {
        if (schema_.Find(t.text) != nullptr) {
          return Fail(
              Errc::kSyntax, t,
              fmt::format("'{}' is a field: 'in' takes a list name or (value, ...)", t.text));
        }
        const std::vector<std::string> names = lists_.Names();
        return Fail(Errc::kUnknownName, t,
                    fmt::format("unknown list '{}'{}", t.text,
                                DidYouMean(t.text, {names.begin(), names.end()})));
      }
      if (type == Type::kString && !list->has_strings()) {
        return Fail(Errc::kType, t,
                    fmt::format("list '{}' holds numbers; got string on the left of 'in'", t.text));
      }
      if (type == Type::kNumber && !list->numeric()) {
        return Fail(Errc::kType, t,
                    fmt::format("list '{}' holds values that are not numbers; got number on the "
                                "left of 'in'",
                                t.text));
      }
      out = Add(NodeKind::kInList, Type::kBool, N(left).pos, t.pos + t.len);
      N(out).text = t.text;
      N(out).list = std::move(list);
      N(out).negated = negated;
      N(out).kids = {left};
      return true;
    }
    if (t.kind != Tok::kLParen) {
      return Fail(Errc::kSyntax, t, "expected a list name or '(' after 'in'");
    }
    Next();
    std::vector<int> kids = {left};
    while (true) {
      int value = -1;
      if (!ParseListValue(value)) return false;
      if (T(value) != type) {
        return FailAt(Errc::kType, value,
                      fmt::format("list value is a {}; the left of 'in' is a {}",
                                  TypeName(T(value)), TypeName(type)));
      }
      kids.push_back(value);
      if (Peek().kind == Tok::kComma) {
        Next();
        continue;
      }
      if (Peek().kind != Tok::kRParen) {
        return Fail(Errc::kSyntax, Peek(), "expected ')' to close the list after 'in'");
      }
      break;
    }
    const Token& close = Next();
    out = Add(NodeKind::kInValues, Type::kBool, N(left).pos, close.pos + close.len);
    N(out).negated = negated;
    N(out).kids = std::move(kids);
    return true;
  }

  // A literal in `in (...)`: a number (optionally negative, or a duration) or a string.
  bool ParseListValue(int& out) {
    const Token& t = Peek();
    if (t.kind == Tok::kString) {
      Next();
      out = Add(NodeKind::kString, Type::kString, t.pos, t.pos + t.len);
      N(out).text = t.text;
      return true;
    }
    bool negative = false;
    if (t.kind == Tok::kMinus && Peek(1).kind == Tok::kNumber) {
      Next();
      negative = true;
    }
    if (Peek().kind != Tok::kNumber) {
      return Fail(Errc::kSyntax, Peek(), "expected a number or a string in the list after 'in'");
    }
    const Token& num = Next();
    out = NumberNode(num);
    if (negative) {
      const int operand = out;
      out = Add(NodeKind::kNeg, Type::kNumber, t.pos, End(operand));
      N(out).kids = {operand};
      N(out).constant = true;
      N(out).number = -N(operand).number;
    }
    return true;
  }

  int NumberNode(const Token& t) {
    const int n = Add(NodeKind::kNumber, Type::kNumber, t.pos, t.pos + t.len);
    N(n).number = t.number;
    N(n).constant = true;
    N(n).text = t.duration ? std::string(Spell(t)) : fmt::format("{}", t.number);
    return n;
  }

  // add := mul (('+' | '-') mul)*
  bool ParseAdd(int& out) {
    if (!ParseMul(out)) return false;
    while (Peek().kind == Tok::kPlus || Peek().kind == Tok::kMinus) {
      const Token& op = Next();
      int right = -1;
      if (!ParseMul(right)) return false;
      if (!Arith(op, out, right, out)) return false;
    }
    return true;
  }

  // mul := unary (('*' | '/' | '%') unary)*
  bool ParseMul(int& out) {
    if (!ParseUnary(out)) return false;
    while (Peek().kind == Tok::kStar || Peek().kind == Tok::kSlash ||
           Peek().kind == Tok::kPercent) {
      const Token& op = Next();
      int right = -1;
      if (!ParseUnary(right)) return false;
      if (!Arith(op, out, right, out)) return false;
    }
    return true;
  }

  bool Arith(const Token& op, int left, int right, int& out) {
    const Type a = T(left);
    const Type b = T(right);
    Type result = Type::kNumber;
    if (op.kind == Tok::kMinus && (a == Type::kTimestamp || b == Type::kTimestamp)) {
      if (a != b) {
        return Fail(Errc::kType, op,
                    fmt::format("'-' needs two numbers or two timestamps; got {} and {}",
                                TypeName(a), TypeName(b)));
      }
    } else if (a != Type::kNumber || b != Type::kNumber) {
      return Fail(Errc::kType, op,
                  fmt::format("'{}' needs two numbers; got {} and {}", Spell(op), TypeName(a),
                              TypeName(b)));
    }
    out = Add(NodeKind::kArith, result, N(left).pos, End(right));
    Node& n = N(out);
    n.op = op.kind;
    n.kids = {left, right};
    if (N(left).constant && N(right).constant) {
      const double x = N(left).number;
      const double y = N(right).number;
      n.constant = true;
      switch (op.kind) {
        case Tok::kPlus:
          n.number = x + y;
          break;
        case Tok::kMinus:
          n.number = x - y;
          break;
        case Tok::kStar:
          n.number = x * y;
          break;
        case Tok::kSlash:
          n.number = Divide(x, y);
          break;
        default:
          n.number = Remainder(x, y);
          break;
      }
    }
    return true;
  }

  // unary := '-' unary | primary
  bool ParseUnary(int& out) {
    if (Peek().kind != Tok::kMinus) return ParsePrimary(out);
    const Token& op = Next();
    if (!Enter(op)) return false;
    int operand = -1;
    if (!ParseUnary(operand)) return false;
    --depth_;
    if (T(operand) != Type::kNumber) {
      return Fail(Errc::kType, op, fmt::format("'-' needs a number; got {}", TypeName(T(operand))));
    }
    out = Add(NodeKind::kNeg, Type::kNumber, op.pos, End(operand));
    N(out).kids = {operand};
    if (N(operand).constant) {
      N(out).constant = true;
      N(out).number = -N(operand).number;
    }
    return true;
  }

  bool ParsePrimary(int& out) {
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kNumber:
        Next();
        out = NumberNode(t);
        return true;
      case Tok::kString:
        Next();
        out = Add(NodeKind::kString, Type::kString, t.pos, t.pos + t.len);
        N(out).text = t.text;
        return true;
      case Tok::kTrue:
      case Tok::kFalse:
        Next();
        out = Add(NodeKind::kBool, Type::kBool, t.pos, t.pos + t.len);
        N(out).boolean = t.kind == Tok::kTrue;
        return true;
      case Tok::kNull:
        Next();
        out = Add(NodeKind::kNull, Type::kNull, t.pos, t.pos + t.len);
        return true;
      case Tok::kLParen: {
        Next();
        if (!Enter(t)) return false;
        if (!ParseOr(out)) return false;
        --depth_;
        if (Peek().kind != Tok::kRParen) {
          return Fail(Errc::kSyntax, Peek(), "expected ')' to close '('");
        }
        Next();
        return true;
      }
      case Tok::kIdent:
        Next();
        if (Peek().kind == Tok::kLParen) return ParseCall(t, out);
        return Name(t, out);
      default:
        break;
    }
    if (i_ == 0) return Fail(Errc::kSyntax, t, "expected a value");
    return Fail(Errc::kSyntax, t, fmt::format("expected a value after '{}'", Spell(toks_[i_ - 1])));
  }

  bool Name(const Token& t, int& out) {
    const rules::Schema::Entry* e = schema_.Find(t.text);
    if (e == nullptr) {
      if (lists_.Contains(t.text)) {
        return Fail(Errc::kSyntax, t,
                    fmt::format("'{}' is a list: use it after 'in', e.g. x in {}", t.text, t.text));
      }
      if (FindFunc(t.text) != nullptr) {
        return Fail(Errc::kSyntax, t,
                    fmt::format("'{}' is a function: call it as {}(...)", t.text, t.text));
      }
      const std::string_view kw = UpperKeyword(t.text);
      if (!kw.empty()) return Fail(Errc::kSyntax, t, fmt::format("write '{}' in lower case", kw));
      std::vector<std::string_view> names;
      for (const rules::Schema::Entry& entry : schema_.entries()) names.push_back(entry.name);
      return Fail(Errc::kUnknownName, t,
                  fmt::format("unknown field '{}'{}", t.text, DidYouMean(t.text, names)));
    }
    out = Add(NodeKind::kRef, e->type, t.pos, t.pos + t.len);
    N(out).ref = *e;
    const bool seen = std::any_of(ast_.refs.begin(), ast_.refs.end(), [&](const auto& r) {
      return r.slot == e->slot && r.index == e->index;
    });
    if (!seen) ast_.refs.push_back({e->name, e->slot, e->index, e->type});
    return true;
  }

  bool ParseCall(const Token& name, int& out) {
    const FuncInfo* f = FindFunc(name.text);
    if (f == nullptr) {
      if (schema_.Find(name.text) != nullptr) {
        return Fail(Errc::kSyntax, name, fmt::format("'{}' is a field, not a function", name.text));
      }
      std::vector<std::string_view> names;
      for (const FuncInfo& info : kFuncs) names.push_back(info.name);
      return Fail(Errc::kUnknownName, name,
                  fmt::format("unknown function '{}'{}", name.text, DidYouMean(name.text, names)));
    }
    const Token& open = Next();
    if (!Enter(open)) return false;
    std::vector<int> args;
    if (Peek().kind != Tok::kRParen) {
      while (true) {
        int arg = -1;
        if (!ParseOr(arg)) return false;
        args.push_back(arg);
        if (Peek().kind == Tok::kComma) {
          Next();
          continue;
        }
        if (Peek().kind != Tok::kRParen) {
          return Fail(Errc::kSyntax, Peek(),
                      fmt::format("expected ')' after arguments of '{}'", f->name));
        }
        break;
      }
    }
    const Token& close = Next();
    --depth_;
    const int count = static_cast<int>(args.size());
    if (count < f->min_args || (f->max_args >= 0 && count > f->max_args)) {
      std::string expected;
      if (f->max_args < 0) {
        expected = fmt::format("at least {} arguments", f->min_args);
      } else {
        expected = fmt::format("{} argument{}", f->min_args, f->min_args == 1 ? "" : "s");
      }
      return Fail(Errc::kSyntax, name,
                  fmt::format("'{}' takes {}; got {}", f->name, expected, count));
    }
    Type result = f->result;
    if (f->func == Func::kCoalesce) {
      result = Type::kNull;
      for (int arg : args) {
        if (T(arg) == Type::kNull) continue;
        if (result == Type::kNull) {
          result = T(arg);
        } else if (T(arg) != result) {
          return FailAt(Errc::kType, arg,
                        fmt::format("'coalesce' needs arguments of one type; got {} and {}",
                                    TypeName(result), TypeName(T(arg))));
        }
      }
    } else {
      for (size_t i = 0; i < args.size(); ++i) {
        if (T(args[i]) == f->arg) continue;
        if (f->max_args == 1) {
          return FailAt(Errc::kType, args[i],
                        fmt::format("'{}' needs a {}; got {}", f->name, TypeName(f->arg),
                                    TypeName(T(args[i]))));
        }
        return FailAt(Errc::kType, args[i],
                      fmt::format("argument {} of '{}' must be a {}; got {}", i + 1, f->name,
                                  TypeName(f->arg), TypeName(T(args[i]))));
      }
    }
    out = Add(NodeKind::kCall, result, name.pos, close.pos + close.len);
    N(out).func = f->func;
    N(out).kids = std::move(args);
    Fold(N(out));
    return true;
  }

  // Folds numeric functions of constants, with the evaluator's own semantics.
  void Fold(Node& n) {
    if (n.type != Type::kNumber || n.func == Func::kHourOfDay || n.func == Func::kDayOfWeek ||
        n.func == Func::kCoalesce || n.func == Func::kDistance) {
      return;
    }
    for (int k : n.kids) {
      if (!ast_.nodes[static_cast<size_t>(k)].constant) return;
    }
    auto arg = [&](size_t i) { return ast_.nodes[static_cast<size_t>(n.kids[i])].number; };
    double v = arg(0);
    switch (n.func) {
      case Func::kAbs:
        v = std::fabs(v);
        break;
      case Func::kLog:
        v = Log(v);
        break;
      case Func::kSqrt:
        v = Sqrt(v);
        break;
      case Func::kRound:
        v = Round(v);
        break;
      case Func::kMin:
        for (size_t i = 1; i < n.kids.size(); ++i) v = Min(v, arg(i));
        break;
      case Func::kMax:
        for (size_t i = 1; i < n.kids.size(); ++i) v = Max(v, arg(i));
        break;
      default:
        return;
    }
    n.constant = true;
    n.number = v;
  }

  std::string_view text_;
  const std::vector<Token>& toks_;
  const rules::Schema& schema_;
  const rules::Lists& lists_;
  Ast& ast_;
  Diagnostic& error_;
  size_t i_ = 0;
  int depth_ = 0;
};

// Canonical rendering.
class Renderer {
 public:
  explicit Renderer(const Ast& ast) : ast_(ast) {}

  void Emit(int i, std::string& out) const {
    const Node& n = ast_.nodes[static_cast<size_t>(i)];
    switch (n.kind) {
      case NodeKind::kNumber:
        out += n.text;
        return;
      case NodeKind::kString:
        out += '"';
        for (char c : n.text) {
          if (c == '"' || c == '\\') out += '\\';
          out += c;
        }
        out += '"';
        return;
      case NodeKind::kBool:
        out += n.boolean ? "true" : "false";
        return;
      case NodeKind::kNull:
        out += "null";
        return;
      case NodeKind::kRef:
        out += n.ref.name;
        return;
      case NodeKind::kNeg: {
        // "- -x", not "-(-x)": parentheses would count against the nesting limit.
        const Node& k = Kid(n, 0);
        out += k.kind == NodeKind::kNeg ? "- " : "-";
        Wrap(n.kids[0], Precedence(k) < 7, out);
        return;
      }
      case NodeKind::kArith:
      case NodeKind::kCompare:
      case NodeKind::kAnd:
      case NodeKind::kOr: {
        const int p = Precedence(n);
        const int left_limit = n.kind == NodeKind::kCompare ? p + 1 : p;
        Wrap(n.kids[0], Precedence(Kid(n, 0)) < left_limit, out);
        out += ' ';
        out += Operator(n);
        out += ' ';
        Wrap(n.kids[1], Precedence(Kid(n, 1)) <= p, out);
        return;
      }
      case NodeKind::kNot:
        out += "not ";
        Wrap(n.kids[0], Precedence(Kid(n, 0)) < 3, out);
        return;
      case NodeKind::kIsNull:
        Wrap(n.kids[0], Precedence(Kid(n, 0)) <= 4, out);
        out += n.negated ? " is not null" : " is null";
        return;
      case NodeKind::kInList:
      case NodeKind::kInValues:
        Wrap(n.kids[0], Precedence(Kid(n, 0)) <= 4, out);
        out += n.negated ? " not in " : " in ";
        if (n.kind == NodeKind::kInList) {
          out += n.text;
          return;
        }
        out += '(';
        for (size_t k = 1; k < n.kids.size(); ++k) {
          if (k > 1) out += ", ";
          Emit(n.kids[k], out);
        }
        out += ')';
        return;
      case NodeKind::kCall:
        out += InfoOf(n.func).name;
        out += '(';
        for (size_t k = 0; k < n.kids.size(); ++k) {
          if (k > 0) out += ", ";
          Emit(n.kids[k], out);
        }
        out += ')';
        return;
    }
  }

 private:
  const Node& Kid(const Node& n, size_t k) const {
    return ast_.nodes[static_cast<size_t>(n.kids[k])];
  }
  void Wrap(int i, bool parens, std::string& out) const {
    if (parens) out += '(';
    Emit(i, out);
    if (parens) out += ')';
  }
  static std::string_view Operator(const Node& n) {
    if (n.kind == NodeKind::kAnd) return "and";
    if (n.kind == NodeKind::kOr) return "or";
    switch (n.op) {
      case Tok::kPlus:
        return "+";
      case Tok::kMinus:
        return "-";
      case Tok::kStar:
        return "*";
      case Tok::kSlash:
        return "/";
      case Tok::kPercent:
        return "%";
      case Tok::kEq:
        return "==";
      case Tok::kNe:
        return "!=";
      case Tok::kLt:
        return "<";
      case Tok::kLe:
        return "<=";
      case Tok::kGt:
        return ">";
      case Tok::kGe:
        return ">=";
      default:
        return "?";
    }
  }

  const Ast& ast_;
};

}  // namespace

bool Parse(std::string_view text, const std::vector<Token>& tokens, const rules::Schema& schema,
           const rules::Lists& lists, Ast& ast, rules::Diagnostic& error) {
  return Parser(text, tokens, schema, lists, ast, error).Run();
}

std::string Render(const Ast& ast) {
  std::string out;
  if (ast.root >= 0) Renderer(ast).Emit(ast.root, out);
  return out;
}

}  // namespace vigil::rules_internal
