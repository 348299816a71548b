#include "vigil/model/train.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "vigil/model/internal/file.h"
#include "vigil/model/internal/xgb.h"
#include "vigil/model/metrics.h"

namespace vigil::model {
namespace {

using model_internal::Check;

void CheckShape(const Matrix& m, std::span<const float> labels, size_t cols,
                std::string_view which) {
  const std::string prefix = "train: the " + std::string(which) + " set ";
  if (m.rows > 0 && m.data == nullptr) throw ModelError(prefix + "has rows but no data");
  if (m.rows > 0 && m.cols != cols) {
    throw ModelError(prefix + "has " + std::to_string(m.cols) + " columns but there are " +
                     std::to_string(cols) + " feature names");
  }
  if (labels.size() != m.rows) {
    throw ModelError(prefix + "has " + std::to_string(m.rows) + " rows but " +
                     std::to_string(labels.size()) + " labels");
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0.0f && labels[i] != 1.0f) {
      throw ModelError(prefix + "label of row " + std::to_string(i) + " is " +
                       std::to_string(labels[i]) + ", not 0 or 1");
    }
  }
}

SplitStats Stats(std::span<const float> labels) {
  SplitStats s;
  s.rows = labels.size();
  double positives = 0;
  for (float l : labels) positives += l;
  s.positive_rate = labels.empty() ? 0.0 : positives / static_cast<double>(labels.size());
  return s;
}

void SetParam(BoosterHandle b, const char* name, const std::string& value) {
  Check(XGBoosterSetParam(b, name, value.c_str()), std::string("setting ") + name);
}

std::string Num(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

// Predictions of `booster` for `m`: type 0 = probability, 1 = margin.
std::vector<float> Predict(BoosterHandle booster, DMatrixHandle m, int type) {
  const std::string config = "{\"type\": " + std::to_string(type) +
                             ", \"training\": false, \"iteration_begin\": 0, "
                             "\"iteration_end\": 0, \"strict_shape\": false}";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  Check(XGBoosterPredictFromDMatrix(booster, m, config.c_str(), &shape, &dim, &out), "predict");
  bst_ulong n = 1;
  for (bst_ulong i = 0; i < dim; ++i) n *= shape[i];
  return std::vector<float>(out, out + n);
}

double StopScore(StopMetric metric, std::span<const float> scores, std::span<const float> labels) {
  return metric == StopMetric::kPrAuc ? PrAuc(scores, labels) : RocAuc(scores, labels);
}

}  // namespace

TrainedModel Train(const TrainInput& in, const TrainParams& params) {
  const size_t cols = in.feature_names.size();
  if (cols == 0) throw ModelError("train: no feature names");
  if (in.train.rows == 0) throw ModelError("train: the training set is empty");
  CheckShape(in.train, in.train_labels, cols, "training");
  CheckShape(in.valid, in.valid_labels, cols, "validation");
  if (params.rounds <= 0) throw ModelError("train: rounds must be positive");

  TrainedModel result;
  ModelMeta& meta = result.meta;
  meta.features = in.feature_names;
  meta.label = in.label_name;
  meta.window_first_us = in.window_first_us;
  meta.window_last_us = in.window_last_us;
  meta.pipeline_hash = in.pipeline_hash;
  meta.params = params;
  meta.xgboost_version = model_internal::XgboostVersion();
  meta.train = Stats(in.train_labels);
  meta.valid = Stats(in.valid_labels);

  const double positives = meta.train.positive_rate * static_cast<double>(meta.train.rows);
  const double negatives = static_cast<double>(meta.train.rows) - positives;
  if (positives == 0 || negatives == 0) {
    throw ModelError("train: the training set needs both labels (it has " + Num(positives) +
                     " positives and " + Num(negatives) + " negatives)");
  }
  if (meta.params.scale_pos_weight <= 0) meta.params.scale_pos_weight = negatives / positives;

  std::vector<const char*> names;
  names.reserve(cols);
  for (const std::string& n : in.feature_names) names.push_back(n.c_str());

  const int nthread = params.nthread;
  model_internal::DMatrix train =
      model_internal::MakeDMatrix(in.train.data, in.train.rows, cols, nthread);
  Check(XGDMatrixSetFloatInfo(train.get(), "label", in.train_labels.data(), in.train.rows),
        "setting training labels");
  Check(XGDMatrixSetStrFeatureInfo(train.get(), "feature_name", names.data(), cols),
        "setting feature names");
  model_internal::DMatrix valid;
  const bool has_valid = in.valid.rows > 0;
  if (has_valid) {
    valid = model_internal::MakeDMatrix(in.valid.data, in.valid.rows, cols, nthread);
    Check(XGDMatrixSetFloatInfo(valid.get(), "label", in.valid_labels.data(), in.valid.rows),
          "setting validation labels");
    Check(XGDMatrixSetStrFeatureInfo(valid.get(), "feature_name", names.data(), cols),
          "setting feature names");
  }

  // Both matrices go into the booster's cache, so predicting the validation set after each
  // round only adds the newest tree.
  DMatrixHandle cache[2] = {train.get(), valid.get()};
  BoosterHandle raw = nullptr;
  Check(XGBoosterCreate(cache, has_valid ? 2 : 1, &raw), "XGBoosterCreate");
  model_internal::Booster booster(raw);
  const TrainParams& p = meta.params;
  SetParam(raw, "objective", "binary:logistic");
  SetParam(raw, "tree_method", "hist");
  SetParam(raw, "max_depth", std::to_string(p.max_depth));
  SetParam(raw, "eta", Num(p.eta));
  SetParam(raw, "min_child_weight", Num(p.min_child_weight));
  SetParam(raw, "subsample", Num(p.subsample));
  SetParam(raw, "colsample_bytree", Num(p.colsample_bytree));
  SetParam(raw, "scale_pos_weight", Num(p.scale_pos_weight));
  SetParam(raw, "seed", std::to_string(p.seed));
  SetParam(raw, "verbosity", "0");
  if (nthread > 0) SetParam(raw, "nthread", std::to_string(nthread));

  double best = -1;
  int best_iteration = -1;
  int rounds = 0;
  for (int iter = 0; iter < p.rounds; ++iter) {
    Check(XGBoosterUpdateOneIter(raw, iter, train.get()), "boosting round");
    rounds = iter + 1;
    if (!has_valid) continue;
    // Margins rank like probabilities and skip the sigmoid.
    const std::vector<float> margin = Predict(raw, valid.get(), 1);
    const double score = StopScore(p.stop_metric, margin, in.valid_labels);
    if (best_iteration < 0 || score > best) {
      best = score;
      best_iteration = iter;
    } else if (p.early_stopping_rounds > 0 && iter - best_iteration >= p.early_stopping_rounds) {
      break;
    }
  }

  model_internal::Booster final_booster;
  if (has_valid && best_iteration + 1 < rounds) {
    BoosterHandle sliced = nullptr;
    Check(XGBoosterSlice(raw, 0, best_iteration + 1, 1, &sliced), "cutting to the best round");
    final_booster.reset(sliced);
  }
  result.json = model_internal::SaveBooster(final_booster ? final_booster.get() : raw);
  meta.best_iteration = has_valid ? best_iteration : -1;

  // Measure what was saved: reload the JSON so the metrics describe the file's model.
  model_internal::Booster saved = model_internal::LoadBooster(result.json, nthread);
  int boosted = 0;
  Check(XGBoosterBoostedRounds(saved.get(), &boosted), "counting rounds");
  meta.trees = boosted;
  const std::vector<float> train_scores = Predict(saved.get(), train.get(), 0);
  meta.score_deciles = QuantileEdges(train_scores, 10);
  if (has_valid) {
    const std::vector<float> valid_scores = Predict(saved.get(), valid.get(), 0);
    meta.valid_roc_auc = RocAuc(valid_scores, in.valid_labels);
    meta.valid_pr_auc = PrAuc(valid_scores, in.valid_labels);
    const Confusion c = AtBudget(valid_scores, in.valid_labels, p.alert_budget);
    meta.valid_precision_at_budget = c.precision();
    meta.valid_recall_at_budget = c.recall();
  }
  return result;
}

void SaveModel(const TrainedModel& model, const std::string& model_path) {
  {
    std::ofstream out(model_path, std::ios::binary | std::ios::trunc);
    if (!out) throw ModelError(model_path + ": cannot open for writing");
    out.write(model.json.data(), static_cast<std::streamsize>(model.json.size()));
    out.close();
    if (!out) throw ModelError(model_path + ": write error");
  }
  SaveMeta(model.meta, MetaPathFor(model_path));
}

TrainedModel LoadModel(const std::string& model_path) {
  TrainedModel model;
  model.json = ::vigil::model_internal::ReadFile(model_path);
  const std::string meta_path = MetaPathFor(model_path);
  model.meta = LoadMeta(meta_path);
  model_internal::Booster booster;
  try {
    booster = model_internal::LoadBooster(model.json, 1);
  } catch (const ModelError& e) {
    throw ModelError(model_path + ": " + e.what());
  }
  bst_ulong features = 0;
  Check(XGBoosterGetNumFeature(booster.get(), &features), "reading the feature count");
  if (features != model.meta.features.size()) {
    throw ModelError(model_path + ": the model reads " + std::to_string(features) +
                     " features but " + meta_path + " lists " +
                     std::to_string(model.meta.features.size()) +
                     "; the two files do not belong together, retrain with vigil train");
  }
  return model;
}

}  // namespace vigil::model
