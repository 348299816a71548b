#include "vigil/rules/internal/list.h"

#include <charconv>
#include <cmath>

namespace vigil::rules_internal {

bool ParseNumber(std::string_view text, double& out) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && p == end && std::isfinite(out);
}

List List::FromStrings(std::span<const std::string> values) {
  List list;
  list.has_strings_ = true;
  list.numeric_ = true;
  list.strings_.reserve(values.size());
  for (const std::string& v : values) {
    list.strings_.insert(v);
    double x = 0;
    if (list.numeric_ && ParseNumber(v, x)) {
      list.numbers_.insert(x + 0.0);
    } else {
      list.numeric_ = false;
    }
  }
  if (!list.numeric_) list.numbers_.clear();
  return list;
}

List List::FromNumbers(std::span<const double> values) {
  List list;
  list.numeric_ = true;
  list.numbers_.reserve(values.size());
  for (double v : values) {
    if (!std::isnan(v)) list.numbers_.insert(v + 0.0);
  }
  return list;
}

}  // namespace vigil::rules_internal
