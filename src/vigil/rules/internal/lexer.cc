#include "vigil/rules/internal/lexer.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace vigil::rules_internal {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }

struct Keyword {
  std::string_view name;
  Tok tok;
};
constexpr Keyword kKeywords[] = {
    {"and", Tok::kAnd}, {"or", Tok::kOr},     {"not", Tok::kNot},   {"in", Tok::kIn},
    {"is", Tok::kIs},   {"null", Tok::kNull}, {"true", Tok::kTrue}, {"false", Tok::kFalse},
};

// Seconds per duration unit; the same units as durations elsewhere in the pipeline file.
bool UnitSeconds(std::string_view unit, double& scale) {
  if (unit == "us") {
    scale = 1e-6;
  } else if (unit == "ms") {
    scale = 1e-3;
  } else if (unit == "s") {
    scale = 1;
  } else if (unit == "m" || unit == "min") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  } else if (unit == "d") {
    scale = 86400;
  } else {
    return false;
  }
  return true;
}

std::string Describe(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return fmt::format("character '{}'", c);
  return fmt::format("byte 0x{:02X}", u);
}

class Lexer {
 public:
  Lexer(std::string_view text, std::vector<Token>& out, rules::Diagnostic& error)
      : text_(text), out_(out), error_(error) {}

  bool Run() {
    while (true) {
      while (i_ < text_.size() &&
             (text_[i_] == ' ' || text_[i_] == '\t' || text_[i_] == '\n' || text_[i_] == '\r')) {
        ++i_;
      }
      if (i_ >= text_.size()) {
        Push(Tok::kEnd, i_, 0);
        return true;
      }
      const char c = text_[i_];
      if (IsDigit(c) || (c == '.' && i_ + 1 < text_.size() && IsDigit(text_[i_ + 1]))) {
        if (!Number()) return false;
      } else if (IsIdentStart(c)) {
        Ident();
      } else if (c == '"' || c == '\'') {
        if (!String()) return false;
      } else if (!Punct()) {
        return false;
      }
    }
  }

 private:
  Token& Push(Tok kind, size_t pos, size_t len) {
    Token& t = out_.emplace_back();
    t.kind = kind;
    t.pos = static_cast<uint32_t>(pos);
    t.len = static_cast<uint32_t>(len);
    return t;
  }

  bool Fail(size_t pos, size_t len, std::string message) {
    error_.code = rules::Errc::kSyntax;
    error_.offset = static_cast<uint32_t>(pos);
    error_.length = static_cast<uint32_t>(len);
    error_.message = std::move(message);
    return false;
  }

  bool Number() {
    const size_t start = i_;
    while (i_ < text_.size() && IsDigit(text_[i_])) ++i_;
    if (i_ + 1 < text_.size() && text_[i_] == '.' && IsDigit(text_[i_ + 1])) {
      ++i_;
      while (i_ < text_.size() && IsDigit(text_[i_])) ++i_;
    }
    if (i_ < text_.size() && (text_[i_] == 'e' || text_[i_] == 'E')) {
      size_t j = i_ + 1;
      if (j < text_.size() && (text_[j] == '+' || text_[j] == '-')) ++j;
      if (j < text_.size() && IsDigit(text_[j])) {
        i_ = j;
        while (i_ < text_.size() && IsDigit(text_[i_])) ++i_;
      }
    }
    const size_t digits_end = i_;
    while (i_ < text_.size() && IsIdentChar(text_[i_])) ++i_;
    double value = 0;
    const auto [p, ec] = std::from_chars(text_.data() + start, text_.data() + digits_end, value);
    if (ec != std::errc() || p != text_.data() + digits_end || !std::isfinite(value)) {
      return Fail(start, i_ - start, "number out of range");
    }
    Token& t = Push(Tok::kNumber, start, i_ - start);
    if (i_ > digits_end) {
      const std::string_view unit = text_.substr(digits_end, i_ - digits_end);
      double scale = 0;
      if (!UnitSeconds(unit, scale)) {
        return Fail(digits_end, unit.size(),
                    fmt::format("unknown unit '{}' after {}: durations take us, ms, s, m, h or d",
                                unit, text_.substr(start, digits_end - start)));
      }
      value *= scale;
      t.duration = true;
    }
    t.number = value;
    return true;
  }

  void Ident() {
    const size_t start = i_;
    while (i_ < text_.size() && IsIdentChar(text_[i_])) ++i_;
    const std::string_view word = text_.substr(start, i_ - start);
    for (const Keyword& k : kKeywords) {
      if (k.name == word) {
        Push(k.tok, start, word.size());
        return;
      }
    }
    Push(Tok::kIdent, start, word.size()).text.assign(word);
  }

  bool String() {
    const size_t start = i_;
    const char quote = text_[i_++];
    std::string value;
    while (true) {
      if (i_ >= text_.size()) {
        return Fail(start, text_.size() - start,
                    fmt::format("unterminated string: expected a closing {}", quote));
      }
      const char c = text_[i_];
      if (c == quote) break;
      if (c == '\\') {
        const char e = i_ + 1 < text_.size() ? text_[i_ + 1] : '\0';
        if (e != '\\' && e != '"' && e != '\'') {
          return Fail(i_, i_ + 1 < text_.size() ? 2 : 1,
                      "unknown escape in string: only \\\" \\' and \\\\ are allowed");
        }
        value.push_back(e);
        i_ += 2;
        continue;
      }
      value.push_back(c);
      ++i_;
    }
    ++i_;
    Push(Tok::kString, start, i_ - start).text = std::move(value);
    return true;
  }

  bool Punct() {
    const char c = text_[i_];
    const char n = i_ + 1 < text_.size() ? text_[i_ + 1] : '\0';
    Tok kind;
    size_t len = 1;
    switch (c) {
      case '(':
        kind = Tok::kLParen;
        break;
      case ')':
        kind = Tok::kRParen;
        break;
      case ',':
        kind = Tok::kComma;
        break;
      case '+':
        kind = Tok::kPlus;
        break;
      case '-':
        kind = Tok::kMinus;
        break;
      case '*':
        kind = Tok::kStar;
        break;
      case '/':
        kind = Tok::kSlash;
        break;
      case '%':
        kind = Tok::kPercent;
        break;
      case '=':
        if (n != '=') return Fail(i_, 1, "unexpected '=': compare with '=='");
        kind = Tok::kEq;
        len = 2;
        break;
      case '!':
        kind = n == '=' ? Tok::kNe : Tok::kNot;
        len = n == '=' ? 2 : 1;
        break;
      case '<':
        kind = n == '=' ? Tok::kLe : Tok::kLt;
        len = n == '=' ? 2 : 1;
        break;
      case '>':
        kind = n == '=' ? Tok::kGe : Tok::kGt;
        len = n == '=' ? 2 : 1;
        break;
      case '&':
        if (n != '&') return Fail(i_, 1, "unexpected '&': write 'and' (or '&&')");
        kind = Tok::kAnd;
        len = 2;
        break;
      case '|':
        if (n != '|') return Fail(i_, 1, "unexpected '|': write 'or' (or '||')");
        kind = Tok::kOr;
        len = 2;
        break;
      default:
        return Fail(i_, 1, "unexpected " + Describe(c));
    }
    Push(kind, i_, len);
    i_ += len;
    return true;
  }

  std::string_view text_;
  std::vector<Token>& out_;
  rules::Diagnostic& error_;
  size_t i_ = 0;
};

}  // namespace

bool Lex(std::string_view text, std::vector<Token>& out, rules::Diagnostic& error) {
  out.clear();
  return Lexer(text, out, error).Run();
}

std::string_view KeywordName(Tok t) {
  for (const Keyword& k : kKeywords) {
    if (k.tok == t) return k.name;
  }
  return {};
}

}  // namespace vigil::rules_internal
