#pragma once

#include <optional>
#include <string>

namespace vigil {

// The whole file at `path`, or nullopt when it cannot be opened or read. Start-up use
// (pipeline, rules, manifests, models): callers say in their own words what was missing.
std::optional<std::string> ReadWholeFile(const std::string& path);

}  // namespace vigil
