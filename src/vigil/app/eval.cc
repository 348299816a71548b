#include <cmath>
#include <cstdio>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

#include "vigil/app/commands.h"
#include "vigil/app/stages.h"
#include "vigil/config/pipeline.h"
#include "vigil/engine/engine.h"
#include "vigil/features/spec.h"
#include "vigil/model/metrics.h"
#include "vigil/model/model_stage.h"
#include "vigil/rules/rule_set.h"
#include "vigil/source/record_source.h"

namespace vigil::app {

namespace {

// Per worker: for each labelled event, the three scores and the three alert decisions.
struct Scored {
  std::vector<float> label, rules, model, combined;
  std::vector<uint8_t> rules_alert, model_alert, combined_alert;
};

// Runs after the rules stage and records what rules alone, the model alone and the whole
// policy said about each event: the same decisions a live run makes.
class EvalStage final : public decide::Stage {
 public:
  EvalStage(int label, double model_weight, Scored& out)
      : label_(label), weight_(model_weight), out_(out) {}
  std::string_view Name() const override { return "eval"; }
  void Configure(const decide::StageConfig& config) override {
    policy_ = static_cast<const rules::RuleSet&>(config).policy;
  }
  void Process(const Event& e, std::span<const double>, decide::Decision& d) override {
    const float y = model::LabelOf(e, label_);
    if (std::isnan(y)) return;  // unlabeled
    double rules_score = 0;
    bool rule_acts = false;
    for (const decide::Reason& r : d.reasons()) {
      if (r.code == "model") continue;
      rules_score += r.contribution;
      rule_acts = rule_acts || r.action != decide::Outcome::kApprove;
    }
    const double p = d.model_score;
    out_.label.push_back(y);
    out_.rules.push_back(static_cast<float>(rules_score));
    out_.model.push_back(static_cast<float>(std::isnan(p) ? 0.0 : p));
    out_.combined.push_back(static_cast<float>(d.score));
    out_.rules_alert.push_back(rule_acts || rules_score >= policy_.review_at);
    out_.model_alert.push_back(!std::isnan(p) && weight_ * p >= policy_.review_at);
    out_.combined_alert.push_back(d.IsAlert());
  }

 private:
  int label_;
  double weight_;
  Scored& out_;
  rules::Policy policy_;
};

struct Figures {
  double roc_auc, pr_auc, precision, recall, budget_precision, budget_recall;
};

Figures Measure(const std::vector<float>& scores, const std::vector<uint8_t>& alerts,
                const std::vector<float>& labels, double budget) {
  model::Confusion c;
  for (size_t i = 0; i < labels.size(); ++i) {
    const bool pos = labels[i] > 0.5f;
    (alerts[i] ? (pos ? c.tp : c.fp) : (pos ? c.fn : c.tn)) += 1;
  }
  const model::Confusion b = model::AtBudget(scores, labels, budget);
  return {model::RocAuc(scores, labels),
          model::PrAuc(scores, labels),
          c.precision(),
          c.recall(),
          b.precision(),
          b.recall()};
}

std::string Json(const Figures& f) {
  auto num = [](double v) {
    return std::isnan(v) ? std::string("null") : fmt::format("{:.6f}", v);
  };
  return fmt::format(
      "{{\"roc_auc\":{},\"pr_auc\":{},\"precision\":{},\"recall\":{},\"budget_precision\":{},"
      "\"budget_recall\":{}}}",
      num(f.roc_auc), num(f.pr_auc), num(f.precision), num(f.recall), num(f.budget_precision),
      num(f.budget_recall));
}

}  // namespace

int Eval(const EvalArgs& a) {
  const config::Pipeline pipeline = config::LoadPipelineFile(a.pipeline);
  const features::Spec spec = features::ParseSpec(pipeline);
  const int label = pipeline.FieldIndex(a.label);
  if (label < 0) {
    throw std::invalid_argument(
        fmt::format("--label: the pipeline's input has no field '{}'", a.label));
  }
  if (!(a.budget > 0 && a.budget < 1)) {
    throw std::invalid_argument("--budget: expected a share of events, e.g. 0.005 for 0.5%");
  }
  std::mutex mu;
  std::vector<std::unique_ptr<Scored>> scored;
  double weight = 0;
  PipelineStages stages(pipeline, spec, [&](int) {
    std::lock_guard<std::mutex> lock(mu);
    scored.push_back(std::make_unique<Scored>());
    return std::make_unique<EvalStage>(label, weight, *scored.back());
  });
  if (!stages.book() || (!rules::HasRules(pipeline) && !stages.model())) {
    throw std::invalid_argument(
        fmt::format("{}: nothing to evaluate: the pipeline has no rules and no model", a.pipeline));
  }
  weight = stages.model() ? stages.model()->weight : 0;

  auto src = source::OpenFile(a.input, InputOptions(pipeline));
  Replay(pipeline, spec, *src, stages.factory(), a.workers);

  Scored all;
  for (const auto& s : scored) {
    all.label.insert(all.label.end(), s->label.begin(), s->label.end());
    all.rules.insert(all.rules.end(), s->rules.begin(), s->rules.end());
    all.model.insert(all.model.end(), s->model.begin(), s->model.end());
    all.combined.insert(all.combined.end(), s->combined.begin(), s->combined.end());
    all.rules_alert.insert(all.rules_alert.end(), s->rules_alert.begin(), s->rules_alert.end());
    all.model_alert.insert(all.model_alert.end(), s->model_alert.begin(), s->model_alert.end());
    all.combined_alert.insert(all.combined_alert.end(), s->combined_alert.begin(),
                              s->combined_alert.end());
  }
  if (all.label.empty()) throw std::invalid_argument(a.input + ": no labelled events");
  size_t positives = 0;
  for (float y : all.label) positives += y > 0.5f;
  const Figures rules = Measure(all.rules, all.rules_alert, all.label, a.budget);
  const Figures combined = Measure(all.combined, all.combined_alert, all.label, a.budget);
  const bool has_model = stages.model() != nullptr;
  // Without a model its figures are null (the keys stay, so readers need no special case).
  const double none = std::nan("");
  const Figures model = has_model ? Measure(all.model, all.model_alert, all.label, a.budget)
                                  : Figures{none, none, none, none, none, none};
  if (a.json) {
    std::printf(
        "{\"events\":%zu,\"positives\":%zu,\"budget\":%g,\"rules\":%s,\"model\":%s,"
        "\"combined\":%s}\n",
        all.label.size(), positives, a.budget, Json(rules).c_str(),
        has_model ? Json(model).c_str() : "null", Json(combined).c_str());
    return 0;
  }
  std::printf("vigil eval: %zu labelled events (%zu positive) from %s\n", all.label.size(),
              positives, a.input.c_str());
  std::printf("  %-9s %8s %8s %10s %8s   top %.2f%%: %9s %7s\n", "", "ROC-AUC", "PR-AUC",
              "precision", "recall", 100 * a.budget, "precision", "recall");
  auto row = [&](const char* name, const Figures& f) {
    std::printf("  %-9s %8.4f %8.4f %10.3f %8.3f   %*s %9.3f %7.3f\n", name, f.roc_auc, f.pr_auc,
                f.precision, f.recall, 10, "", f.budget_precision, f.budget_recall);
  };
  row("rules", rules);
  if (has_model) row("model", model);
  row("combined", combined);
  std::printf(
      "  (precision and recall at the pipeline's thresholds; rules alone: any acting rule "
      "or rule score >= review_at; model alone: weight x probability >= review_at)\n");
  return 0;
}

}  // namespace vigil::app
