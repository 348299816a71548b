#pragma once

#include <optional>
#include <string>

#include "vigil/common/file.h"
#include "vigil/model/meta.h"

namespace vigil::model_internal {

// The whole file at `path`; throws model::ModelError naming it when it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::optional<std::string> text = ReadWholeFile(path);
  if (!text) throw model::ModelError(path + ": cannot open for reading");
  return std::move(*text);
}

}  // namespace vigil::model_internal
