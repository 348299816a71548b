#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <xgboost/c_api.h>

// Thin RAII layer over XGBoost's C API. Every call that can fail goes through Check(), which
// turns XGBGetLastError() into a ModelError naming the call. Start-up and training only.
namespace vigil::model::model_internal {

// Throws ModelError("xgboost: <what>: <XGBGetLastError()>") when rc != 0.
void Check(int rc, std::string_view what);

struct BoosterFree {
  void operator()(void* h) const { XGBoosterFree(h); }
};
struct DMatrixFree {
  void operator()(void* h) const { XGDMatrixFree(h); }
};
using Booster = std::unique_ptr<void, BoosterFree>;
using DMatrix = std::unique_ptr<void, DMatrixFree>;

// A booster holding the model in `json` (XGBoost's JSON model format), with nthread set.
Booster LoadBooster(std::string_view json, int nthread);
// The booster's model as XGBoost JSON.
std::string SaveBooster(BoosterHandle booster);
// A DMatrix over a dense row-major float matrix; NaN is missing. Copies the data.
DMatrix MakeDMatrix(const float* data, size_t rows, size_t cols, int nthread);
// "1.7.4": the library actually loaded, not the header.
std::string XgboostVersion();

}  // namespace vigil::model::model_internal
