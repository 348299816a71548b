#pragma once

#include <string_view>
#include <vector>

#include "vigil/rules/expr.h"
#include "vigil/rules/internal/ast.h"
#include "vigil/rules/internal/lexer.h"

namespace vigil::rules_internal {

// Deepest nesting of parentheses, calls, `not` and unary minus the parser accepts; keeps its
// recursion (and the evaluator's stack) bounded whatever the input.
inline constexpr int kMaxNesting = 32;

// Parses and type-checks `tokens` (from Lex over `text`), resolving names against `schema`
// and `lists`. Returns false with the first problem in `error`.
bool Parse(std::string_view text, const std::vector<Token>& tokens, const rules::Schema& schema,
           const rules::Lists& lists, Ast& ast, rules::Diagnostic& error);

// Renders the tree back as canonical text (see Program::canonical).
std::string Render(const Ast& ast);

}  // namespace vigil::rules_internal
