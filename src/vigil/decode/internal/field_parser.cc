#include "vigil/decode/internal/field_parser.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "vigil/common/hash.h"
#include "vigil/common/time.h"

namespace vigil::decode_internal {

using config::FieldSpec;
using decode::DecodeStatus;
using decode::Errc;

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != b[i]) return false;
  }
  return true;
}

// What a field of this type must look like, as the first half of "expected X, got Y".
std::string Expected(const FieldSpec& spec) {
  switch (spec.type) {
    case FieldType::kLat:
      return "latitude";
    case FieldType::kLon:
      return "longitude";
    case FieldType::kTimestamp:
      return fmt::format("{} timestamp", TimeFormatName(spec.time_format));
    default:
      return std::string(FieldTypeName(spec.type));
  }
}

// The second half: text is quoted, JSON tokens are shown as written.
std::string Got(Source source, std::string_view text) {
  switch (source) {
    case Source::kText:
      return Quote(text);
    case Source::kNumber:
    case Source::kBool:
      if (text.size() > kMaxQuoted) return fmt::format("{}...", text.substr(0, kMaxQuoted));
      return std::string(text);
    case Source::kObject:
      return "an object";
    case Source::kArray:
      return "an array";
  }
  return "?";
}

// Numbers in messages: the input's own spelling for values (trimmed, already known to be
// numeric), the shortest round-trip form for bounds.
std::string Shown(std::string_view trimmed) {
  if (trimmed.size() > kMaxQuoted) return fmt::format("{}...", trimmed.substr(0, kMaxQuoted));
  return std::string(trimmed);
}

SetResult BadType(const FieldSpec& spec, Source source, std::string_view text,
                  DecodeStatus& status) {
  FailField(spec, Errc::kBadType,
            fmt::format("expected {}, got {}", Expected(spec), Got(source, text)), status);
  return SetResult::kError;
}

// Checks min/max (and the globe for lat/lon) on a parsed number.
bool CheckBounds(const FieldSpec& spec, double value, std::string_view trimmed,
                 DecodeStatus& status) {
  if (spec.type == FieldType::kLat || spec.type == FieldType::kLon) {
    const double limit = spec.type == FieldType::kLat ? 90 : 180;
    if (value < -limit || value > limit) {
      FailField(spec, Errc::kOutOfRange,
                fmt::format("{} is outside [{}, {}]", Shown(trimmed), -limit, limit), status);
      return false;
    }
  }
  if (spec.min && value < *spec.min) {
    FailField(spec, Errc::kOutOfRange, fmt::format("{} is below min {}", Shown(trimmed), *spec.min),
              status);
    return false;
  }
  if (spec.max && value > *spec.max) {
    FailField(spec, Errc::kOutOfRange, fmt::format("{} is above max {}", Shown(trimmed), *spec.max),
              status);
    return false;
  }
  return true;
}

SetResult SetInt(const FieldSpec& spec, size_t index, Source source, std::string_view text,
                 std::string_view trimmed, Event& event, DecodeStatus& status) {
  if (source == Source::kBool) return BadType(spec, source, text, status);
  int64_t v = 0;
  switch (ParseInt(trimmed, v)) {
    case NumberParse::kOk:
      break;
    case NumberParse::kRange:
      FailField(spec, Errc::kOutOfRange,
                fmt::format("expected int in the int64 range, got {}", Got(source, text)), status);
      return SetResult::kError;
    case NumberParse::kSyntax:
    case NumberParse::kNonFinite:
      return BadType(spec, source, text, status);
  }
  return SetParsedInt(spec, index, v, trimmed, event, status);
}

SetResult SetFloat(const FieldSpec& spec, size_t index, Source source, std::string_view text,
                   std::string_view trimmed, Event& event, DecodeStatus& status) {
  if (source == Source::kBool) return BadType(spec, source, text, status);
  double v = 0;
  switch (ParseFloat(trimmed, v)) {
    case NumberParse::kOk:
      break;
    case NumberParse::kNonFinite:
    case NumberParse::kRange:
      FailField(spec, Errc::kNonFinite,
                fmt::format("expected a finite {}, got {}", Expected(spec), Got(source, text)),
                status);
      return SetResult::kError;
    case NumberParse::kSyntax:
      return BadType(spec, source, text, status);
  }
  return SetParsedFloat(spec, index, v, trimmed, event, status);
}

SetResult SetBool(const FieldSpec& spec, size_t index, Source source, std::string_view text,
                  std::string_view trimmed, Event& event, DecodeStatus& status) {
  const std::optional<bool> b = ParseBool(trimmed);
  if (!b) return BadType(spec, source, text, status);
  Value& out = event.values[index];
  out.kind = Value::Kind::kBool;
  out.b = *b;
  return SetResult::kSet;
}

SetResult SetTime(const FieldSpec& spec, size_t index, Source source, std::string_view text,
                  std::string_view trimmed, Event& event, DecodeStatus& status) {
  std::optional<int64_t> us;
  if (spec.time_format == TimeFormat::kIso8601) {
    if (source == Source::kText) us = ParseIso8601(trimmed);
  } else if (source != Source::kBool) {
    us = ParseEpoch(trimmed, spec.time_format);
  }
  if (!us) {
    FailField(spec, Errc::kBadTimestamp,
              fmt::format("expected {}, got {}", Expected(spec), Got(source, text)), status);
    return SetResult::kError;
  }
  if (*us < kMinTimeUs || *us >= kMaxTimeUs) {
    FailField(spec, Errc::kBadTimestamp,
              fmt::format("timestamp outside [1970-01-01, 2200-01-01), got {}", Got(source, text)),
              status);
    return SetResult::kError;
  }
  Value& out = event.values[index];
  out.kind = Value::Kind::kTime;
  out.i = *us;
  return SetResult::kSet;
}

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when there is none. Keeps messages valid UTF-8.
size_t Utf8Length(std::string_view s, size_t i) {
  const auto byte = [&s](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t n = 0;
  unsigned char lo = 0x80;  // bounds of the second byte
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  }
  if (n == 0 || i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return n;
}

}  // namespace

std::string Quote(std::string_view text) {
  const bool cut = text.size() > kMaxQuoted;
  if (cut) {
    size_t n = kMaxQuoted;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    text = text.substr(0, n);
  }
  std::string out;
  out.reserve(text.size() + 8);
  out += '"';
  AppendEscaped(out, text);
  out += '"';
  if (cut) out += "...";
  return out;
}

void AppendEscaped(std::string& out, std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      default:
        break;
    }
    if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\u{:04x}", u);
    } else if (u < 0x80) {
      out += c;
    } else if (const size_t n = Utf8Length(text, i); n > 0) {
      out.append(text.substr(i, n));
      i += n - 1;
    } else {
      out += fmt::format("\\x{:02X}", u);
    }
  }
}

std::string_view TrimSpace(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

NumberParse ParseInt(std::string_view text, int64_t& out) {
  if (text.empty()) return NumberParse::kSyntax;
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, out);
  if (p != end) return NumberParse::kSyntax;
  if (ec == std::errc::result_out_of_range) return NumberParse::kRange;
  if (ec != std::errc()) return NumberParse::kSyntax;
  return NumberParse::kOk;
}

namespace {

// Clinger's fast path: a decimal with at most 15 significant digits and at most 22 after the
// point is m / 10^k with both exactly representable, so one IEEE division rounds it
// correctly. It covers amounts and coordinates; everything else goes to from_chars.
bool ParseSimpleDecimal(std::string_view text, double& out) {
  static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                      1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  size_t i = 0;
  const size_t n = text.size();
  const bool negative = n > 0 && text[0] == '-';
  if (negative) ++i;
  uint64_t mantissa = 0;
  size_t digits = 0;
  size_t fraction = 0;
  const size_t int_start = i;
  for (; i < n && IsDigit(text[i]); ++i, ++digits) {
    mantissa = mantissa * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  if (i == int_start) return false;
  if (i < n && text[i] == '.') {
    ++i;
    const size_t frac_start = i;
    for (; i < n && IsDigit(text[i]); ++i, ++digits) {
      mantissa = mantissa * 10 + static_cast<uint64_t>(text[i] - '0');
    }
    fraction = i - frac_start;
    if (fraction == 0) return false;
  }
  if (i != n || digits > 15 || fraction > 22) return false;
  const double v = static_cast<double>(mantissa) / kPow10[fraction];
  out = negative ? -v : v;
  return true;
}

}  // namespace

NumberParse ParseFloat(std::string_view text, double& out) {
  if (text.empty()) return NumberParse::kSyntax;
  if (ParseSimpleDecimal(text, out)) return NumberParse::kOk;
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, out);
  if (p != end) return NumberParse::kSyntax;
  if (ec == std::errc::result_out_of_range) {
    // from_chars leaves `out` alone on overflow and underflow alike; strtod tells them apart
    // (rare: only on values beyond ~1e308 or below ~1e-308).
    const std::string copy(text);
    out = std::strtod(copy.c_str(), nullptr);
    return std::isfinite(out) ? NumberParse::kOk : NumberParse::kNonFinite;
  }
  if (ec != std::errc()) return NumberParse::kSyntax;
  return std::isfinite(out) ? NumberParse::kOk : NumberParse::kNonFinite;
}

std::optional<bool> ParseBool(std::string_view text) {
  if (text.size() == 1) {
    if (text[0] == '1') return true;
    if (text[0] == '0') return false;
    return std::nullopt;
  }
  if (EqualsNoCase(text, "true") || EqualsNoCase(text, "yes")) return true;
  if (EqualsNoCase(text, "false") || EqualsNoCase(text, "no")) return false;
  return std::nullopt;
}

bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i >= n) return false;
  if (s[i] == '0') {
    ++i;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < n && IsDigit(s[i])) ++i;
  } else {
    return false;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (i >= n || !IsDigit(s[i])) return false;
    while (i < n && IsDigit(s[i])) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= n || !IsDigit(s[i])) return false;
    while (i < n && IsDigit(s[i])) ++i;
  }
  return i == n;
}

SetResult SetParsedInt(const FieldSpec& spec, size_t index, int64_t value, std::string_view text,
                       Event& event, DecodeStatus& status) {
  if (!CheckBounds(spec, static_cast<double>(value), text, status)) return SetResult::kError;
  Value& out = event.values[index];
  out.kind = Value::Kind::kInt;
  out.i = value;
  return SetResult::kSet;
}

SetResult SetParsedFloat(const FieldSpec& spec, size_t index, double value, std::string_view text,
                         Event& event, DecodeStatus& status) {
  if (!std::isfinite(value)) {
    FailField(
        spec, Errc::kNonFinite,
        fmt::format("expected a finite {}, got {}", Expected(spec), Got(Source::kNumber, text)),
        status);
    return SetResult::kError;
  }
  if (!CheckBounds(spec, value, text, status)) return SetResult::kError;
  Value& out = event.values[index];
  out.kind = Value::Kind::kFloat;
  out.f = value;
  return SetResult::kSet;
}

SetResult SetField(const FieldSpec& spec, size_t index, Source source, std::string_view text,
                   Event& event, DecodeStatus& status) {
  if (source == Source::kObject || source == Source::kArray) {
    return BadType(spec, source, text, status);
  }
  if (spec.type == FieldType::kString) {
    // A JSON number or bool for a string field keeps its spelling (card numbers sent as numbers).
    event.SetString(index, text);
    return SetResult::kSet;
  }
  const std::string_view trimmed = TrimSpace(text);
  if (trimmed.empty()) return SetResult::kEmpty;
  switch (spec.type) {
    case FieldType::kInt:
      return SetInt(spec, index, source, text, trimmed, event, status);
    case FieldType::kFloat:
    case FieldType::kLat:
    case FieldType::kLon:
      return SetFloat(spec, index, source, text, trimmed, event, status);
    case FieldType::kBool:
      return SetBool(spec, index, source, text, trimmed, event, status);
    case FieldType::kTimestamp:
      return SetTime(spec, index, source, text, trimmed, event, status);
    case FieldType::kString:
      break;
  }
  return SetResult::kSet;
}

void FailMissing(const FieldSpec& spec, std::string_view detail, DecodeStatus& status) {
  status.code = Errc::kMissingField;
  status.field = spec.name;
  status.message = detail.empty()
                       ? fmt::format("missing required field '{}'", spec.name)
                       : fmt::format("missing required field '{}': {}", spec.name, detail);
}

void FailField(const FieldSpec& spec, Errc code, std::string_view what, DecodeStatus& status) {
  status.code = code;
  status.field = spec.name;
  status.message = fmt::format("field '{}': {}", spec.name, what);
}

void FailRecord(Errc code, std::string message, DecodeStatus& status) {
  status.code = code;
  status.field.clear();
  status.message = std::move(message);
}

bool CheckSize(const config::Pipeline& pipeline, size_t size, DecodeStatus& status) {
  if (size <= pipeline.input.max_record_bytes) return true;
  FailRecord(Errc::kOversize,
             fmt::format("record is {} bytes, more than input.max_record_bytes ({})", size,
                         pipeline.input.max_record_bytes),
             status);
  return false;
}

bool FinishEvent(const config::Pipeline& pipeline, Event& event, DecodeStatus& status) {
  const auto& fields = pipeline.input.fields;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].required && event.values[i].kind == Value::Kind::kNull) {
      FailMissing(fields[i], "", status);
      return false;
    }
  }
  event.id_index = static_cast<uint32_t>(pipeline.id_field);
  event.key_index = static_cast<uint32_t>(pipeline.key_field);
  if (event.values[pipeline.id_field].kind != Value::Kind::kString || event.Id().empty()) {
    FailMissing(fields[pipeline.id_field], "the event id must not be empty", status);
    return false;
  }
  if (event.values[pipeline.key_field].kind != Value::Kind::kString || event.Key().empty()) {
    FailMissing(fields[pipeline.key_field], "the routing key must not be empty", status);
    return false;
  }
  const Value& time = event.values[pipeline.time_field];
  event.time_us = time.kind == Value::Kind::kTime ? time.i : 0;
  event.key_hash = Hash64(event.Key());
  return true;
}

}  // namespace vigil::decode_internal
