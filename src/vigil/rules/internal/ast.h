#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vigil/rules/expr.h"
#include "vigil/rules/internal/lexer.h"
#include "vigil/rules/internal/list.h"

namespace vigil::rules_internal {

enum class Func : uint8_t {
  kAbs,
  kMin,
  kMax,
  kLog,
  kSqrt,
  kRound,
  kHourOfDay,
  kDayOfWeek,
  kDistance,
  kCoalesce,
  kStartsWith,
  kEndsWith,
  kContains,
};

enum class NodeKind : uint8_t {
  kNumber,    // literal; `number`, spelled `text`
  kString,    // literal; `text`
  kBool,      // literal; `boolean`
  kNull,      // literal null
  kRef,       // a field or slot: `ref`
  kNeg,       // -kids[0]
  kArith,     // kids[0] op kids[1]; op is + - * / %
  kCompare,   // kids[0] op kids[1]; op is == != < <= > >=
  kAnd,       // kids[0] and kids[1]
  kOr,        // kids[0] or kids[1]
  kNot,       // not kids[0]
  kIsNull,    // kids[0] is [not] null
  kInList,    // kids[0] [not] in `text` (a named list: `list`)
  kInValues,  // kids[0] [not] in (kids[1], ...), all literals
  kCall,      // func(kids...)
};

// One node of a parsed, type-checked expression. Nodes live in Ast::nodes and refer to their
// children by index. Compile-time only.
struct Node {
  NodeKind kind = NodeKind::kNumber;
  rules::Type type = rules::Type::kNull;
  Tok op = Tok::kEnd;  // kArith, kCompare
  Func func = Func::kAbs;
  bool negated = false;   // kIsNull: is not null; kInList / kInValues: not in
  bool constant = false;  // a number known at compile time (literals, folded arithmetic)
  uint32_t pos = 0;       // the node's span in the text
  uint32_t len = 0;
  double number = 0;  // kNumber, and any constant number node's value
  bool boolean = false;
  std::string text;                  // kNumber spelling, kString value, kInList list name
  rules::Schema::Entry ref;          // kRef
  std::shared_ptr<const List> list;  // kInList
  std::vector<int> kids;
};

struct Ast {
  std::vector<Node> nodes;
  int root = -1;
  std::vector<rules::Program::Ref> refs;  // in source order, each once
};

}  // namespace vigil::rules_internal
