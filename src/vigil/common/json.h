#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace vigil {

// How many leading bytes of `s` a JSON string can hold as they are: up to the first quote,
// backslash or control character. Eight bytes at a time (most strings have none of them);
// each test is exact about whether a word holds such a byte, not about which one.
inline size_t JsonPlainPrefix(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101, kHigh = 0x8080808080808080;
  auto has_zero = [](uint64_t w) { return (w - kOnes) & ~w & kHigh; };
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
    if (below_space | has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\'))) break;
  }
  for (; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == '"' || c == '\\') break;
  }
  return i;
}

// Appends `s` as a JSON string literal (quotes included), escaping quotes, backslashes and
// control characters. Bytes >= 0x80 are copied as they are (the input is taken as UTF-8).
// Hand-written rather than taken from a library: Debian's simdjson (3.0) and fmt (9.1) have
// no JSON string writer; records_benchmark measures it.
inline void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t run = JsonPlainPrefix(s);  // start of the current run of bytes that need no escaping
  out.push_back('"');
  if (run == s.size()) {
    out.append(s);
    out.push_back('"');
    return;
  }
  out.append(s.data(), run);
  for (size_t i = run; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

// Appends a double the shortest way that reads back exactly; non-finite values become null
// (JSON has no NaN).
void AppendJsonNumber(std::string& out, double v);
void AppendJsonNumber(std::string& out, int64_t v);

}  // namespace vigil
