#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <variant>

#include "vigil/common/result.h"

namespace vigil::model {

// Errors of the scoring path, as values (logs, API and metrics use the same codes).
enum class Errc {
  kShape = 1,    // the rows do not have the model's feature count
  kPredict = 2,  // XGBoost refused the prediction (message: XGBGetLastError)
};
using Status = Result<std::monostate, Errc>;

// Which code walks the trees in Score. Both give the same scores (tests/model_test.cc
// compares them on 20,000 rows: bit-identical); kNative is faster (see README.md).
enum class Engine {
  kXgboost,  // XGBoosterPredictFromDense (in-place prediction), XGBoost's own predictor
  kNative,   // this stage's evaluator of the same JSON model, flat arrays, no allocation
};

// Scorer scores rows of features with one binary:logistic model. It owns its own XGBoost
// booster (and, for kNative, a flat copy of the trees) loaded from the model's JSON text.
//
// Lifecycle: made at start-up or model reload, one per worker, from the same JSON bytes
// (TrainedModel::json); constructing throws ModelError if the model cannot be loaded.
// Thread-safety: not thread-safe; only its worker calls it. XGBoost >= 1.4 documents
// prediction on one booster from several threads as safe for gbtree models, but keeps its
// output buffer per (booster, thread) and lazily configures on first use, so Vigil gives
// each worker its own Scorer and never shares one. XGBoost runs with nthread = 1 here, so
// a call never starts or wakes an OpenMP thread pool.
class Scorer {
 public:
  explicit Scorer(std::string_view model_json, Engine engine = Engine::kNative);
  ~Scorer();
  Scorer(Scorer&&) noexcept;
  Scorer& operator=(Scorer&&) noexcept;
  Scorer(const Scorer&) = delete;
  Scorer& operator=(const Scorer&) = delete;

  size_t num_features() const;
  Engine engine() const;

  // Probabilities of `n` rows (row-major, n x n_features, NaN = missing) into out[0, n).
  // A micro-batch API: call once per batch. Allocates nothing with kNative; with kXgboost,
  // XGBoost allocates internally per call.
  Status Score(const float* rows, size_t n, size_t n_features, float* out);
  // The same as margins (log-odds) instead of probabilities.
  Status Margin(const float* rows, size_t n, size_t n_features, float* out);

  // TreeSHAP contributions of one row (margin space): out[0, n_features) per feature,
  // out[n_features] the bias; they sum to the row's margin. kNative: path-dependent TreeSHAP
  // over the native forest (internal/tree_shap.cc), no allocation, ~0.75 ms for 200 trees;
  // kXgboost: XGBoost's pred_contribs on a one-row DMatrix (allocates, ~1.6 ms). Both give
  // the same values (model_test: within 1e-5). Hundreds of times dearer than Score: call it
  // for alerts, not for every event.
  Status Contributions(const float* row, size_t n_features, float* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::model
