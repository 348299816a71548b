#include "vigil/model/model_stage.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "vigil/config/internal/reader.h"
#include "vigil/features/feature_engine.h"
#include "vigil/model/meta.h"

namespace vigil::model {

std::vector<Column> ModelColumns(const config::Pipeline& pipeline, const features::Spec& spec,
                                 const std::string& label) {
  std::vector<Column> columns;
  for (size_t i = 0; i < pipeline.input.fields.size(); ++i) {
    const config::FieldSpec& f = pipeline.input.fields[i];
    const bool numeric = f.type == FieldType::kInt || f.type == FieldType::kFloat ||
                         f.type == FieldType::kLat || f.type == FieldType::kLon;
    if (numeric && f.name != label) columns.push_back({f.name, false, static_cast<int>(i)});
  }
  for (size_t i = 0; i < spec.features.size(); ++i) {
    columns.push_back({spec.features[i].name, true, static_cast<int>(i)});
  }
  return columns;
}

void FillRow(const std::vector<Column>& columns, const Event& event,
             std::span<const double> features, std::span<float> row) {
  for (size_t c = 0; c < columns.size(); ++c) {
    const Column& col = columns[c];
    const double v = col.feature ? features[static_cast<size_t>(col.index)]
                                 : features::NumericValue(event, col.index);
    row[c] = static_cast<float>(v);
  }
}

float LabelOf(const Event& event, int field) {
  const Value& v = event.values[static_cast<size_t>(field)];
  switch (v.kind) {
    case Value::Kind::kBool:
      return v.b ? 1.0f : 0.0f;
    case Value::Kind::kInt:
      return v.i != 0 ? 1.0f : 0.0f;
    case Value::Kind::kFloat:
      return v.f != 0 ? 1.0f : 0.0f;
    default:
      return std::nanf("");
  }
}

std::shared_ptr<const ModelConfig> LoadModelConfig(const config::Pipeline& pipeline,
                                                   const features::Spec& spec) {
  const YAML::Node m = pipeline.root["model"];
  if (!m) return nullptr;
  config_internal::Reader r(pipeline.path);
  r.AllowKeys(m, "model", {"path", "weight", "explain_at", "challenger"});
  auto cfg = std::make_shared<ModelConfig>();
  std::string path;
  r.String(m, "path", "model", path, true);
  r.Double(m, "weight", "model", cfg->weight, false);
  r.Double(m, "explain_at", "model", cfg->explain_at, false);
  const YAML::Node ch = m["challenger"];
  std::string challenger;
  if (ch) {
    r.AllowKeys(ch, "model.challenger", {"path"});
    r.String(ch, "path", "model.challenger", challenger, true);
  }
  r.Throw();
  const std::filesystem::path dir = std::filesystem::path(pipeline.path).parent_path();
  cfg->path = (dir / path).string();
  try {
    cfg->model = LoadModel(cfg->path);
    cfg->columns = ModelColumns(pipeline, spec, cfg->model.meta.label);
    std::vector<std::string> names;
    for (const Column& c : cfg->columns) names.push_back(c.name);
    CheckFeatures(cfg->model.meta, names, MetaPathFor(cfg->path));
  } catch (const ModelError& e) {
    r.Fail(m["path"], "model.path", e.what());
    r.Throw();
  }
  if (ch) {
    cfg->challenger_path = (dir / challenger).string();
    try {
      cfg->challenger = LoadModel(cfg->challenger_path);
      std::vector<std::string> names;
      for (const Column& c : cfg->columns) names.push_back(c.name);
      CheckFeatures(cfg->challenger.meta, names, MetaPathFor(cfg->challenger_path));
    } catch (const ModelError& e) {
      r.Fail(ch["path"], "model.challenger.path", e.what());
      r.Throw();
    }
  }
  return cfg;
}

size_t TopDrivers(std::span<const float> contributions, size_t k, Driver* out) {
  size_t n = 0;
  // Ranks a before b: positive before negative, then by magnitude; column order on ties.
  auto before = [](const Driver& a, const Driver& b) {
    if ((a.value > 0) != (b.value > 0)) return a.value > 0;
    if (std::fabs(a.value) != std::fabs(b.value)) return std::fabs(a.value) > std::fabs(b.value);
    return a.column < b.column;
  };
  for (size_t c = 0; c < contributions.size(); ++c) {
    const Driver d{c, contributions[c]};
    if (!(std::fabs(d.value) > 0)) continue;  // zero or NaN: drives nothing
    if (n < k) {
      out[n++] = d;
    } else if (n > 0 && before(d, out[n - 1])) {
      out[n - 1] = d;
    } else {
      continue;
    }
    for (size_t i = n - 1; i > 0 && before(out[i], out[i - 1]); --i) std::swap(out[i], out[i - 1]);
  }
  return n;
}

namespace {

// The explainer: ModelStage::Explain after the rules stage has set the outcome.
class ExplainStage final : public decide::Stage {
 public:
  explicit ExplainStage(ModelStage& model) : model_(model) {}
  std::string_view Name() const override { return "model_explain"; }
  void Process(const Event& event, std::span<const double> features,
               decide::Decision& decision) override {
    model_.Explain(event, features, decision);
  }

 private:
  ModelStage& model_;
};

}  // namespace

ModelStage::ModelStage(std::shared_ptr<const ModelConfig> config)
    : config_(std::move(config)),
      scorer_(config_->model.json, Engine::kNative),
      row_(config_->columns.size()),
      contributions_(config_->columns.size() + 1) {
  if (!config_->challenger_path.empty()) challenger_.emplace(config_->challenger.json);
}

void ModelStage::Reconfigure(std::shared_ptr<const ModelConfig> config) {
  if (!config || config == config_) return;
  scorer_ = Scorer(config->model.json, Engine::kNative);
  challenger_.reset();
  if (!config->challenger_path.empty()) challenger_.emplace(config->challenger.json);
  config_ = std::move(config);
  row_.resize(config_->columns.size());
  contributions_.resize(config_->columns.size() + 1);
}

std::unique_ptr<decide::Stage> ModelStage::MakeExplainer() {
  return std::make_unique<ExplainStage>(*this);
}

void ModelStage::Explain(const Event& event, std::span<const double> features,
                         decide::Decision& d) {
  if (!std::isnan(d.challenger_score)) {
    bool rule_acts = false;
    for (const decide::Reason& r : d.reasons()) {
      rule_acts = rule_acts || (r.code != "model" && r.action != decide::Outcome::kApprove);
    }
    const double swapped = d.score + config_->weight * (d.challenger_score - d.model_score);
    d.challenger_alert = rule_acts || swapped >= review_at_ ? 1 : 0;
  }
  if (!d.IsAlert() || !(d.model_score >= config_->explain_at)) return;
  FillRow(config_->columns, event, features, row_);  // as scored (cheap; alerts only)
  if (!scorer_.Contributions(row_.data(), row_.size(), contributions_.data()).ok()) return;
  Driver top[kTopDrivers];
  const size_t n = TopDrivers({contributions_.data(), row_.size()}, kTopDrivers, top);
  if (n == 0) return;
  for (decide::Reason& r : d.mutable_reasons()) {
    if (r.code != "model") continue;
    r.detail += "; top drivers: ";
    for (size_t i = 0; i < n; ++i) {
      if (i) r.detail += ", ";
      fmt::format_to(std::back_inserter(r.detail), "{}={:+.2f}",
                     config_->columns[top[i].column].name, top[i].value);
    }
    break;
  }
  if (!d.narrative.empty()) d.narrative += ' ';
  fmt::format_to(std::back_inserter(d.narrative),
                 "Model score {:.2f} (top drivers: ", d.model_score);
  for (size_t i = 0; i < n; ++i) {
    if (i) d.narrative += ", ";
    fmt::format_to(std::back_inserter(d.narrative), "{} {:+.2f}",
                   config_->columns[top[i].column].name, top[i].value);
  }
  d.narrative += ").";
}

void ModelStage::Process(const Event& event, std::span<const double> features,
                         decide::Decision& d) {
  FillRow(config_->columns, event, features, row_);
  float p = 0;
  if (!scorer_.Score(row_.data(), 1, row_.size(), &p).ok()) return;  // shape fixed at load
  d.model_score = p;
  const auto& edges = config_->model.meta.score_deciles;  // min, 10%, ..., 90%, max
  if (edges.size() == 11) {
    d.model_decile = static_cast<int>(
        std::upper_bound(edges.begin() + 1, edges.begin() + 10, static_cast<double>(p)) -
        (edges.begin() + 1));
  }
  if (challenger_) {
    float c = 0;
    if (challenger_->Score(row_.data(), 1, row_.size(), &c).ok()) d.challenger_score = c;
  }
  const double contribution = config_->weight * p;
  d.score += contribution;
  if (p >= config_->explain_at) {
    decide::Reason& r = d.AddReason();
    r.code = "model";
    r.contribution = contribution;
    r.detail = fmt::format("model score {:.3f} ({} trees, trained on {})", p,
                           config_->model.meta.trees, config_->model.meta.label);
  }
}

}  // namespace vigil::model
