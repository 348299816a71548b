#pragma once

#include <cmath>
#include <string>
#include <string_view>

namespace vigil {

// Appends `s` as a JSON string literal (quotes included), escaping quotes, backslashes and
// control characters. Bytes >= 0x80 are copied as they are (the input is taken as UTF-8).
inline void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;  // start of the current run of bytes that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
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
