#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "vigil/model/meta.h"

namespace vigil::model_internal {

// The whole file at `path`; throws model::ModelError naming it when it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw model::ModelError(path + ": cannot open for reading");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw model::ModelError(path + ": read error");
  return std::move(buf).str();
}

}  // namespace vigil::model_internal
