#pragma once

#include "vigil/rules/expr.h"
#include "vigil/rules/internal/ast.h"
#include "vigil/rules/internal/code.h"

namespace vigil::rules_internal {

// Translates a type-checked tree into postfix code: constants folded, a comparison of a field
// or slot with a constant fused into one instruction, `and` / `or` / `coalesce` short-circuited
// with jumps. Fails (kTooComplex) only if the value stack would exceed kMaxStack.
bool Generate(const Ast& ast, Code& code, rules::Diagnostic& error);

}  // namespace vigil::rules_internal
