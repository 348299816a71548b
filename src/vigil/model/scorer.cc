#include "vigil/model/scorer.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "vigil/model/internal/forest.h"
#include "vigil/model/internal/xgb.h"
#include "vigil/model/meta.h"

namespace vigil::model {
namespace {

// In-place prediction configs: type 0 = probability, 1 = margin; NaN is missing.
constexpr const char* kProbability =
    R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
    R"("strict_shape": false, "missing": NaN, "cache_id": 0})";
constexpr const char* kMargin =
    R"({"type": 1, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
    R"("strict_shape": false, "missing": NaN, "cache_id": 0})";
constexpr const char* kContributions =
    R"({"type": 2, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
    R"("strict_shape": false})";

Error<Errc> XgbError(std::string_view what) {
  const char* last = XGBGetLastError();
  std::string_view text = last != nullptr ? last : "";
  if (size_t trace = text.find("\nStack trace:"); trace != std::string_view::npos) {
    text = text.substr(0, trace);
  }
  return {Errc::kPredict, std::string(what) + ": " + std::string(text)};
}

Error<Errc> ShapeError(size_t got, size_t want) {
  return {Errc::kShape, "rows have " + std::to_string(got) + " features, the model reads " +
                            std::to_string(want)};
}

// XGBoost's float sigmoid.
inline float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

struct Scorer::Impl {
  Engine engine;
  model_internal::Booster booster;
  std::optional<model_internal::Forest> forest;
  size_t num_features = 0;
  // TreeSHAP working memory (kNative), sized at construction so Contributions never allocates.
  std::vector<model_internal::Forest::PathElement> shap_path;
  std::vector<float> shap_tree;
  char array_interface[160];  // the __array_interface__ JSON of the current batch

  Status Predict(const float* rows, size_t n, size_t n_features, float* out, bool margin) {
    if (n_features != num_features) return ShapeError(n_features, num_features);
    if (n == 0) return std::monostate{};
    if (engine == Engine::kNative) {
      forest->Margins(rows, n, out);
      if (!margin) {
        for (size_t i = 0; i < n; ++i) out[i] = Sigmoid(out[i]);
      }
      return std::monostate{};
    }
    // snprintf into a member buffer: no allocation on this side of the call.
    std::snprintf(array_interface, sizeof(array_interface),
                  R"({"data": [%zu, true], "shape": [%zu, %zu], "typestr": "<f4", )"
                  R"("version": 3})",
                  reinterpret_cast<size_t>(rows), n, n_features);
    const bst_ulong* shape = nullptr;
    bst_ulong dim = 0;
    const float* result = nullptr;
    if (XGBoosterPredictFromDense(booster.get(), array_interface, margin ? kMargin : kProbability,
                                  nullptr, &shape, &dim, &result) != 0) {
      return XgbError("XGBoosterPredictFromDense");
    }
    std::memcpy(out, result, n * sizeof(float));
    return std::monostate{};
  }
};

Scorer::Scorer(std::string_view model_json, Engine engine) : impl_(std::make_unique<Impl>()) {
  impl_->engine = engine;
  impl_->booster = model_internal::LoadBooster(model_json, 1);
  bst_ulong features = 0;
  model_internal::Check(XGBoosterGetNumFeature(impl_->booster.get(), &features),
                        "reading the feature count");
  impl_->num_features = features;
  if (engine == Engine::kNative) {
    impl_->forest = model_internal::Forest::FromJson(model_json);
    if (impl_->forest->num_features() != impl_->num_features) {
      throw ModelError("model: the native evaluator reads " +
                       std::to_string(impl_->forest->num_features()) + " features, XGBoost reads " +
                       std::to_string(impl_->num_features));
    }
    impl_->shap_path.resize(impl_->forest->ShapScratchSize());
    impl_->shap_tree.resize(impl_->num_features + 1);
  }
}

Scorer::~Scorer() = default;
Scorer::Scorer(Scorer&&) noexcept = default;
Scorer& Scorer::operator=(Scorer&&) noexcept = default;

size_t Scorer::num_features() const { return impl_->num_features; }
Engine Scorer::engine() const { return impl_->engine; }

Status Scorer::Score(const float* rows, size_t n, size_t n_features, float* out) {
  return impl_->Predict(rows, n, n_features, out, false);
}

Status Scorer::Margin(const float* rows, size_t n, size_t n_features, float* out) {
  return impl_->Predict(rows, n, n_features, out, true);
}

Status Scorer::Contributions(const float* row, size_t n_features, float* out) {
  if (n_features != impl_->num_features) return ShapeError(n_features, impl_->num_features);
  if (impl_->engine == Engine::kNative) {
    impl_->forest->Contributions(row, out, impl_->shap_path.data(), impl_->shap_tree.data());
    return std::monostate{};
  }
  // In-place prediction has no contributions in XGBoost 1.7 ("Unsupported prediction
  // type:2"), so this goes through a one-row DMatrix.
  DMatrixHandle m = nullptr;
  if (XGDMatrixCreateFromMat_omp(row, 1, n_features, std::nanf(""), &m, 1) != 0) {
    return XgbError("XGDMatrixCreateFromMat");
  }
  model_internal::DMatrix matrix(m);
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* result = nullptr;
  if (XGBoosterPredictFromDMatrix(impl_->booster.get(), m, kContributions, &shape, &dim, &result) !=
      0) {
    return XgbError("XGBoosterPredictFromDMatrix(pred_contribs)");
  }
  if (dim != 2 || shape[0] != 1 || shape[1] != n_features + 1) {
    return Error<Errc>{Errc::kPredict, "pred_contribs returned an unexpected shape"};
  }
  std::memcpy(out, result, (n_features + 1) * sizeof(float));
  return std::monostate{};
}

}  // namespace vigil::model
