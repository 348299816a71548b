#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include <absl/container/flat_hash_set.h>

namespace vigil::rules_internal {

// List holds one named list's values in hash sets: strings for `s in list`, numbers for
// `x in list`. Built once (start-up or reload, or by Compile for long literal lists); immutable
// afterwards, so any number of threads may query it.
class List {
 public:
  // Every value is kept as a string; the list is also numeric when every value parses as a
  // finite number (as the whole text, e.g. "5967", "-1.5", "1e3").
  static List FromStrings(std::span<const std::string> values);
  static List FromNumbers(std::span<const double> values);

  bool has_strings() const { return has_strings_; }
  bool numeric() const { return numeric_; }
  size_t size() const { return has_strings_ ? strings_.size() : numbers_.size(); }

  bool ContainsString(std::string_view s) const {
    // Debian's Abseil has its own string_view type; converting is free.
    return strings_.contains(absl::string_view(s.data(), s.size()));
  }
  // `+ 0.0` turns -0.0 into 0.0, so the two compare equal here as they do with `==`.
  bool ContainsNumber(double x) const { return numbers_.contains(x + 0.0); }

 private:
  absl::flat_hash_set<std::string> strings_;  // heterogeneous lookup: no copy of the key
  absl::flat_hash_set<double> numbers_;
  bool has_strings_ = false;
  bool numeric_ = false;
};

// Parses the whole of `text` as a finite number; false otherwise.
bool ParseNumber(std::string_view text, double& out);

}  // namespace vigil::rules_internal
