#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vigil::rules_internal {

// The candidate closest to `word` by edit distance (insertions, deletions, substitutions and
// transpositions of adjacent characters), if it is close enough to be a plausible typo:
// within max(1, size/3) edits. Empty if none is. Ties go to the earlier candidate.
std::string Suggest(std::string_view word, const std::vector<std::string_view>& candidates);

// " (did you mean 'x'?)" or "".
std::string DidYouMean(std::string_view word, const std::vector<std::string_view>& candidates);

}  // namespace vigil::rules_internal
