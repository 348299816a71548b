#include "vigil/common/json.h"

#include <charconv>

namespace vigil {

void AppendJsonNumber(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  // Whole numbers below 1e5 in magnitude (counts, flags, most scores) are written as
  // integers: the same text as the shortest form (it is fixed-point at up to five digits),
  // at a fraction of the cost (records_benchmark). -0 keeps its sign through to_chars.
  if (v > -1e5 && v < 1e5) {
    const auto whole = static_cast<int64_t>(v);
    if (static_cast<double>(whole) == v && (whole != 0 || !std::signbit(v))) {
      AppendJsonNumber(out, whole);
      return;
    }
  }
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(p - buf));
}

void AppendJsonNumber(std::string& out, int64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(p - buf));
}

}  // namespace vigil
