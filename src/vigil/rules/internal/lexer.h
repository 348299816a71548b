#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/rules/expr.h"

namespace vigil::rules_internal {

enum class Tok : uint8_t {
  kEnd,
  kNumber,  // also durations: 10m is 600 (seconds)
  kString,
  kIdent,
  kAnd,  // and &&
  kOr,   // or ||
  kNot,  // not !
  kIn,
  kIs,
  kNull,
  kTrue,
  kFalse,
  kLParen,
  kRParen,
  kComma,
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kPercent,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
};

struct Token {
  Tok kind = Tok::kEnd;
  uint32_t pos = 0;  // byte offset in the expression text
  uint32_t len = 0;
  double number = 0;      // kNumber: the value (durations in seconds)
  bool duration = false;  // kNumber written with a unit
  std::string text;       // kString: the decoded value
};

// Splits `text` into tokens, the last one kEnd. On a lexical error (bad character, unknown
// unit, unterminated string or unknown escape) returns false and fills `error`.
bool Lex(std::string_view text, std::vector<Token>& out, rules::Diagnostic& error);

// Keyword spellings for messages and suggestions: "and", "or", ... ; empty for other tokens.
std::string_view KeywordName(Tok t);

}  // namespace vigil::rules_internal
