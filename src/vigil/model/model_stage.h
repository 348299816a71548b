#pragma once

#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vigil/config/pipeline.h"
#include "vigil/decide/decision.h"
#include "vigil/features/spec.h"
#include "vigil/model/scorer.h"
#include "vigil/model/train.h"

namespace vigil::model {

// Where a model column's value comes from: an input field or a feature.
struct Column {
  std::string name;
  bool feature = false;
  int index = 0;  // field index, or feature index
};

// The model's inputs for a pipeline: its numeric input fields (int, float, lat, lon; the
// label excluded), then every feature, in the pipeline's order. `vigil train` trains on these
// columns and the scoring stage reads them, so training and serving cannot disagree.
std::vector<Column> ModelColumns(const config::Pipeline& pipeline, const features::Spec& spec,
                                 const std::string& label);
// Fills `row` (one float per column; NaN when missing) for an event and its features.
void FillRow(const std::vector<Column>& columns, const Event& event,
             std::span<const double> features, std::span<float> row);

// An event's label from field `field`: 1 or 0 for a bool, or a number (non-zero is
// positive); NaN when it has none (such events are left out of training and evaluation).
float LabelOf(const Event& event, int field);

// The pipeline's `model:` section, loaded: the model, its columns and how its score counts.
struct ModelConfig {
  std::string path;
  TrainedModel model;
  std::vector<Column> columns;
  double weight = 100;      // the decision score gains weight x probability
  double explain_at = 0.5;  // from this probability on, the decision carries a "model" reason
                            // (and an alert its top drivers)
  // `model: {challenger: {path}}`: a second model scored in shadow beside this one (the
  // champion), on the same columns; its score never counts. Empty path: none.
  std::string challenger_path;
  TrainedModel challenger;
};

// One column's TreeSHAP contribution to a score (log-odds).
struct Driver {
  size_t column = 0;
  float value = 0;
};
// The `k` drivers an analyst reads first, from per-column contributions (bias excluded):
// those pushing toward the positive class, largest first, then those pushing away, largest
// magnitude first; zeros never. Writes up to k into `out`, returns how many.
size_t TopDrivers(std::span<const float> contributions, size_t k, Driver* out);
inline constexpr size_t kTopDrivers = 3;

// Reads `model: {path, weight, explain_at, challenger: {path}}` (paths relative to the
// pipeline file), loads the model (and challenger) and checks their features against the
// pipeline's (config::ConfigError with the place
// and the difference). nullptr when the pipeline has no model section. Start-up only.
std::shared_ptr<const ModelConfig> LoadModelConfig(const config::Pipeline& pipeline,
                                                   const features::Spec& spec);

// ModelStage scores every event with the pipeline's model: one native Scorer per worker (no
// allocation per event), the probability on the decision (`model_score`) and weight x
// probability added to its score, before the rules stage applies the policy. One per worker,
// used by its thread only.
//
// With a challenger, it scores that too (`challenger_score`); after the policy, the
// explainer sets `challenger_alert`: would the decision have been an alert with the
// challenger's weighted score in place of the champion's (a rule action still counts)?
//
// Its explainer (MakeExplainer) runs after the rules stage, once the outcome is known: for an
// alert (review or block) whose model score reached explain_at, it computes the row's
// TreeSHAP contributions (native, ~tens of µs; never for approved events) and names the top
// kTopDrivers columns in the "model" reason's detail and in the narrative:
//   reason: model score 0.930 (88 trees, trained on is_fraud); top drivers: amount=+2.15, ...
//   narrative: ... Model score 0.93 (top drivers: amount +2.15, card_amount_1h +0.61, ...).
class ModelStage final : public decide::Stage {
 public:
  explicit ModelStage(std::shared_ptr<const ModelConfig> config);
  std::string_view Name() const override { return "model"; }
  void Process(const Event& event, std::span<const double> features,
               decide::Decision& decision) override;

  // Switches to another model (a reload) from the next event on: builds its own scorer from
  // the model's JSON (milliseconds; once per reload, on this worker's thread, between
  // batches). Same config or null: nothing to do. The model must have been checked to load
  // natively (the reload does it before publishing) and to read this pipeline's columns.
  void Reconfigure(std::shared_ptr<const ModelConfig> config);
  // The policy's review threshold in force (for challenger_alert); set with each rule set.
  void SetReviewAt(double review_at) { review_at_ = review_at; }
  const ModelConfig& config() const { return *config_; }

  // The stage to run after the policy, sharing this stage's scorer: it must run on the same
  // worker and not outlive this stage (the factory puts both in one worker's stage list).
  std::unique_ptr<decide::Stage> MakeExplainer();
  // What the explainer runs: adds the top drivers to an alert's model reason and narrative.
  void Explain(const Event& event, std::span<const double> features, decide::Decision& decision);

 private:
  std::shared_ptr<const ModelConfig> config_;
  Scorer scorer_;
  std::vector<float> row_;
  std::vector<float> contributions_;  // n columns + bias, reused
  std::optional<Scorer> challenger_;
  double review_at_ = std::numeric_limits<double>::infinity();
};

}  // namespace vigil::model
