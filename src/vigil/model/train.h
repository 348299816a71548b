#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vigil/model/meta.h"

namespace vigil::model {

// A dense row-major float matrix the caller owns: rows x cols, NaN = missing.
struct Matrix {
  const float* data = nullptr;
  size_t rows = 0;
  size_t cols = 0;
};

// What Train needs besides the parameters. `valid` may have zero rows: then every round is
// kept and the validation metrics are NaN. Labels are 0 or 1, one per row.
struct TrainInput {
  Matrix train;
  std::span<const float> train_labels;
  Matrix valid;
  std::span<const float> valid_labels;
  std::vector<std::string> feature_names;  // one per column, in column order
  std::string label_name;
  int64_t window_first_us = 0;  // recorded in the metadata as given
  int64_t window_last_us = 0;
  std::string pipeline_hash;
};

// A trained model: XGBoost's JSON model text and its metadata.
struct TrainedModel {
  std::string json;
  ModelMeta meta;
};

// Trains a binary:logistic gradient-boosted tree model through XGBoost's C API, with early
// stopping on `valid` (params.stop_metric, params.early_stopping_rounds) and the model cut
// back to its best round. Throws ModelError on bad input (shape, labels, names) or an
// XGBoost failure. Blocking; uses params.nthread threads.
TrainedModel Train(const TrainInput& input, const TrainParams& params);

// Writes `model.json` (the XGBoost model) at `model_path` and its metadata beside it
// (MetaPathFor). Throws ModelError on I/O errors.
void SaveModel(const TrainedModel& model, const std::string& model_path);

// Reads a model and its metadata, checks that XGBoost can load it and that its feature count
// matches the metadata's. Throws ModelError naming the file. Follow with CheckFeatures.
TrainedModel LoadModel(const std::string& model_path);

}  // namespace vigil::model
