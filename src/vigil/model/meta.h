#pragma once

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::model {

// ModelError is what training, saving and loading throw: start-up work, never the per-event
// path. The message names the file or the XGBoost call and says what to do.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Which validation metric early stopping watches.
enum class StopMetric { kPrAuc, kRocAuc };

// TrainParams are XGBoost's booster parameters plus the loop around them. The defaults suit
// card-fraud features: binary:logistic, hist, depth 6, eta 0.1.
struct TrainParams {
  int rounds = 200;  // most boosting rounds (= trees for a binary model)
  int max_depth = 6;
  double eta = 0.1;
  double min_child_weight = 1.0;
  double subsample = 0.8;
  double colsample_bytree = 0.8;
  double scale_pos_weight = 0.0;  // <= 0: negatives / positives of the training set
  uint64_t seed = 0;
  int early_stopping_rounds = 20;  // stop after this many rounds without improvement; 0: off
  StopMetric stop_metric = StopMetric::kPrAuc;
  double alert_budget = 0.005;  // fraction of events alerted, for the validation report
  int nthread = 0;              // training threads; 0: XGBoost's default (all cores)
};

// Row count and positive rate of one split.
struct SplitStats {
  uint64_t rows = 0;
  double positive_rate = 0.0;
};

// ModelMeta is the metadata file written beside a model (model.json -> model.meta.json):
// what the model expects (features in order), how it was made and how it scored on
// validation. A plain value: copy it, read it from any thread.
struct ModelMeta {
  static constexpr int kFormat = 1;
  std::vector<std::string> features;  // the model's input columns, in order
  std::string label;
  int64_t window_first_us = 0;  // training window: first and last event time (caller's)
  int64_t window_last_us = 0;
  std::string pipeline_hash;  // the pipeline's state hash, as given by the caller
  TrainParams params;         // with scale_pos_weight as actually used
  int trees = 0;
  int best_iteration = -1;  // -1: no early stopping (no validation set)
  std::string xgboost_version;
  SplitStats train;
  SplitStats valid;
  double valid_roc_auc = std::numeric_limits<double>::quiet_NaN();
  double valid_pr_auc = std::numeric_limits<double>::quiet_NaN();
  double valid_precision_at_budget = std::numeric_limits<double>::quiet_NaN();
  double valid_recall_at_budget = std::numeric_limits<double>::quiet_NaN();
  // Training-set score (probability) deciles: 11 edges, min, 10%, ..., max. Each bin holds a
  // tenth of the training events; a drift metric (PSI) compares live bin shares to that.
  std::vector<double> score_deciles;
};

// "dir/model.json" -> "dir/model.meta.json"; a path without ".json" gets ".meta.json" added.
std::string MetaPathFor(std::string_view model_path);

// JSON text of `meta` (pretty, one key per line) and back. ParseMeta throws ModelError naming
// `path` and the key that is missing or of the wrong type.
std::string FormatMeta(const ModelMeta& meta);
ModelMeta ParseMeta(std::string_view json, std::string_view path);
// File forms; throw ModelError on I/O errors.
void SaveMeta(const ModelMeta& meta, const std::string& path);
ModelMeta LoadMeta(const std::string& path);

// Refuses (ModelError) a model whose features are not `expected` in the same order, naming
// the first difference:
//   model.meta.json: feature 3 is 'card_txn_1h' in the model but 'card_amount_1h' in the
//   pipeline; retrain with vigil train
void CheckFeatures(const ModelMeta& meta, const std::vector<std::string>& expected,
                   std::string_view meta_path);

}  // namespace vigil::model
