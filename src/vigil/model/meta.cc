#include "vigil/model/meta.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include <simdjson.h>

#include "vigil/common/json.h"
#include "vigil/model/internal/file.h"

namespace vigil::model {
namespace {

void Key(std::string& out, std::string_view name, int indent) {
  out.append(static_cast<size_t>(indent), ' ');
  AppendJsonString(out, name);
  out.append(": ");
}

void Number(std::string& out, std::string_view name, double v, int indent) {
  Key(out, name, indent);
  AppendJsonNumber(out, v);
  out.append(",\n");
}

void Integer(std::string& out, std::string_view name, int64_t v, int indent) {
  Key(out, name, indent);
  AppendJsonNumber(out, v);
  out.append(",\n");
}

void String(std::string& out, std::string_view name, std::string_view v, int indent) {
  Key(out, name, indent);
  AppendJsonString(out, v);
  out.append(",\n");
}

// Drops the ",\n" after an object's last member and closes it.
void Close(std::string& out, int indent, bool last) {
  if (out.size() >= 2 && out.compare(out.size() - 2, 2, ",\n") == 0) out.resize(out.size() - 2);
  out.push_back('\n');
  out.append(static_cast<size_t>(indent), ' ');
  out.append(last ? "}\n" : "},\n");
}

void Split(std::string& out, std::string_view name, const SplitStats& s) {
  Key(out, name, 2);
  out.append("{\n");
  Integer(out, "rows", static_cast<int64_t>(s.rows), 4);
  Number(out, "positive_rate", s.positive_rate, 4);
  Close(out, 2, false);
}

// Reads members of a JSON object, throwing ModelError("path: key: what") when one is
// missing or of the wrong type.
class Reader {
 public:
  Reader(simdjson::dom::object obj, std::string_view path, std::string prefix)
      : obj_(obj), path_(path), prefix_(std::move(prefix)) {}

  simdjson::dom::element Get(std::string_view key) const {
    simdjson::dom::element e;
    if (obj_.at_key(key).get(e) != simdjson::SUCCESS) Fail(key, "is missing");
    return e;
  }
  double Double(std::string_view key) const {
    simdjson::dom::element e = Get(key);
    if (e.is_null()) return std::nan("");  // non-finite metrics are written as null
    double v = 0;
    if (e.get_double().get(v) != simdjson::SUCCESS) Fail(key, "is not a number");
    return v;
  }
  int64_t Int(std::string_view key) const {
    int64_t v = 0;
    if (Get(key).get_int64().get(v) != simdjson::SUCCESS) Fail(key, "is not an integer");
    return v;
  }
  std::string String(std::string_view key) const {
    std::string_view v;
    if (Get(key).get_string().get(v) != simdjson::SUCCESS) Fail(key, "is not a string");
    return std::string(v);
  }
  Reader Object(std::string_view key) const {
    simdjson::dom::object o;
    if (Get(key).get_object().get(o) != simdjson::SUCCESS) Fail(key, "is not an object");
    return Reader(o, path_, prefix_ + std::string(key) + ".");
  }
  simdjson::dom::array Array(std::string_view key) const {
    simdjson::dom::array a;
    if (Get(key).get_array().get(a) != simdjson::SUCCESS) Fail(key, "is not an array");
    return a;
  }
  [[noreturn]] void Fail(std::string_view key, std::string_view what) const {
    throw ModelError(std::string(path_) + ": " + prefix_ + std::string(key) + " " +
                     std::string(what));
  }

 private:
  simdjson::dom::object obj_;
  std::string_view path_;
  std::string prefix_;
};

SplitStats ReadSplit(const Reader& r) {
  SplitStats s;
  s.rows = static_cast<uint64_t>(r.Int("rows"));
  s.positive_rate = r.Double("positive_rate");
  return s;
}

std::string Features(size_t n) { return std::to_string(n) + (n == 1 ? " feature" : " features"); }

}  // namespace

std::string MetaPathFor(std::string_view model_path) {
  constexpr std::string_view kJson = ".json";
  std::string_view stem = model_path;
  if (stem.size() >= kJson.size() && stem.substr(stem.size() - kJson.size()) == kJson) {
    stem.remove_suffix(kJson.size());
  }
  return std::string(stem) + ".meta.json";
}

std::string FormatMeta(const ModelMeta& m) {
  std::string out = "{\n";
  Integer(out, "format", ModelMeta::kFormat, 2);
  Key(out, "features", 2);
  out.append("[");
  for (size_t i = 0; i < m.features.size(); ++i) {
    out.append(i == 0 ? "\n    " : ",\n    ");
    AppendJsonString(out, m.features[i]);
  }
  out.append(m.features.empty() ? "],\n" : "\n  ],\n");
  String(out, "label", m.label, 2);
  Key(out, "window", 2);
  out.append("{\n");
  Integer(out, "first_us", m.window_first_us, 4);
  Integer(out, "last_us", m.window_last_us, 4);
  Close(out, 2, false);
  String(out, "pipeline_hash", m.pipeline_hash, 2);
  String(out, "xgboost_version", m.xgboost_version, 2);
  Key(out, "params", 2);
  out.append("{\n");
  const TrainParams& p = m.params;
  Integer(out, "rounds", p.rounds, 4);
  Integer(out, "max_depth", p.max_depth, 4);
  Number(out, "eta", p.eta, 4);
  Number(out, "min_child_weight", p.min_child_weight, 4);
  Number(out, "subsample", p.subsample, 4);
  Number(out, "colsample_bytree", p.colsample_bytree, 4);
  Number(out, "scale_pos_weight", p.scale_pos_weight, 4);
  // The seed is a uint64; JSON readers keep 53 bits exactly, so it is written as a string.
  String(out, "seed", std::to_string(p.seed), 4);
  Integer(out, "early_stopping_rounds", p.early_stopping_rounds, 4);
  String(out, "stop_metric", p.stop_metric == StopMetric::kPrAuc ? "pr_auc" : "roc_auc", 4);
  Number(out, "alert_budget", p.alert_budget, 4);
  Integer(out, "nthread", p.nthread, 4);
  Close(out, 2, false);
  Integer(out, "trees", m.trees, 2);
  Integer(out, "best_iteration", m.best_iteration, 2);
  Split(out, "train", m.train);
  Split(out, "valid", m.valid);
  Key(out, "valid_metrics", 2);
  out.append("{\n");
  Number(out, "roc_auc", m.valid_roc_auc, 4);
  Number(out, "pr_auc", m.valid_pr_auc, 4);
  Number(out, "precision_at_budget", m.valid_precision_at_budget, 4);
  Number(out, "recall_at_budget", m.valid_recall_at_budget, 4);
  Close(out, 2, false);
  Key(out, "score_deciles", 2);
  out.append("[");
  for (size_t i = 0; i < m.score_deciles.size(); ++i) {
    if (i > 0) out.append(", ");
    AppendJsonNumber(out, m.score_deciles[i]);
  }
  out.append("]");
  out.append("\n}\n");
  return out;
}

ModelMeta ParseMeta(std::string_view json, std::string_view path) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(json.data(), json.size()).get(doc); err != simdjson::SUCCESS) {
    throw ModelError(std::string(path) + ": not valid JSON (" + simdjson::error_message(err) + ")");
  }
  simdjson::dom::object root;
  if (doc.get_object().get(root) != simdjson::SUCCESS) {
    throw ModelError(std::string(path) + ": not a JSON object");
  }
  const Reader r(root, path, "");
  if (int64_t format = r.Int("format"); format != ModelMeta::kFormat) {
    throw ModelError(std::string(path) + ": format " + std::to_string(format) +
                     " is not supported (this build reads format " +
                     std::to_string(ModelMeta::kFormat) + "); retrain with vigil train");
  }
  ModelMeta m;
  for (simdjson::dom::element e : r.Array("features")) {
    std::string_view name;
    if (e.get_string().get(name) != simdjson::SUCCESS) r.Fail("features", "holds a non-string");
    m.features.emplace_back(name);
  }
  m.label = r.String("label");
  const Reader window = r.Object("window");
  m.window_first_us = window.Int("first_us");
  m.window_last_us = window.Int("last_us");
  m.pipeline_hash = r.String("pipeline_hash");
  m.xgboost_version = r.String("xgboost_version");
  const Reader p = r.Object("params");
  m.params.rounds = static_cast<int>(p.Int("rounds"));
  m.params.max_depth = static_cast<int>(p.Int("max_depth"));
  m.params.eta = p.Double("eta");
  m.params.min_child_weight = p.Double("min_child_weight");
  m.params.subsample = p.Double("subsample");
  m.params.colsample_bytree = p.Double("colsample_bytree");
  m.params.scale_pos_weight = p.Double("scale_pos_weight");
  const std::string seed = p.String("seed");
  try {
    size_t used = 0;
    m.params.seed = std::stoull(seed, &used);
    if (used != seed.size()) p.Fail("seed", "is not an unsigned integer");
  } catch (const std::logic_error&) {
    p.Fail("seed", "is not an unsigned integer");
  }
  m.params.early_stopping_rounds = static_cast<int>(p.Int("early_stopping_rounds"));
  const std::string metric = p.String("stop_metric");
  if (metric == "pr_auc") {
    m.params.stop_metric = StopMetric::kPrAuc;
  } else if (metric == "roc_auc") {
    m.params.stop_metric = StopMetric::kRocAuc;
  } else {
    p.Fail("stop_metric", "is not 'pr_auc' or 'roc_auc'");
  }
  m.params.alert_budget = p.Double("alert_budget");
  m.params.nthread = static_cast<int>(p.Int("nthread"));
  m.trees = static_cast<int>(r.Int("trees"));
  m.best_iteration = static_cast<int>(r.Int("best_iteration"));
  m.train = ReadSplit(r.Object("train"));
  m.valid = ReadSplit(r.Object("valid"));
  const Reader v = r.Object("valid_metrics");
  m.valid_roc_auc = v.Double("roc_auc");
  m.valid_pr_auc = v.Double("pr_auc");
  m.valid_precision_at_budget = v.Double("precision_at_budget");
  m.valid_recall_at_budget = v.Double("recall_at_budget");
  for (simdjson::dom::element e : r.Array("score_deciles")) {
    double d = 0;
    if (e.get_double().get(d) != simdjson::SUCCESS) r.Fail("score_deciles", "holds a non-number");
    m.score_deciles.push_back(d);
  }
  return m;
}

void SaveMeta(const ModelMeta& meta, const std::string& path) {
  const std::string text = FormatMeta(meta);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw ModelError(path + ": cannot open for writing");
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw ModelError(path + ": write error");
}

ModelMeta LoadMeta(const std::string& path) {
  return ParseMeta(::vigil::model_internal::ReadFile(path), path);
}

void CheckFeatures(const ModelMeta& meta, const std::vector<std::string>& expected,
                   std::string_view meta_path) {
  const std::string where = std::string(meta_path) + ": ";
  constexpr std::string_view kRetrain = "; retrain with vigil train";
  const size_t common = std::min(meta.features.size(), expected.size());
  for (size_t i = 0; i < common; ++i) {
    if (meta.features[i] != expected[i]) {
      throw ModelError(where + "feature " + std::to_string(i) + " is '" + meta.features[i] +
                       "' in the model but '" + expected[i] + "' in the pipeline" +
                       std::string(kRetrain));
    }
  }
  if (meta.features.size() > common) {
    throw ModelError(where + "feature " + std::to_string(common) + " is '" + meta.features[common] +
                     "' in the model but the pipeline has only " + Features(expected.size()) +
                     std::string(kRetrain));
  }
  if (expected.size() > common) {
    throw ModelError(where + "feature " + std::to_string(common) + " is '" + expected[common] +
                     "' in the pipeline but the model has only " + Features(meta.features.size()) +
                     std::string(kRetrain));
  }
}

}  // namespace vigil::model
