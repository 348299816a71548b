#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/common/event.h"

namespace vigil::decide {

enum class Outcome : uint8_t { kApprove, kReview, kBlock };
inline constexpr int kOutcomeCount = 3;

constexpr std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kApprove:
      return "approve";
    case Outcome::kReview:
      return "review";
    case Outcome::kBlock:
      return "block";
  }
  return "?";
}

// One reason behind a decision: which rule, feature or model said what.
struct Reason {
  std::string code;    // e.g. a rule id
  std::string detail;  // plain-language text with the values that made it fire
  double contribution = 0;
  Outcome action = Outcome::kApprove;  // what the reason asks for on its own
};

// Decision is the engine's answer to one event. Pooled per worker: Reset() keeps the
// capacity of every string, so a steady stream of decisions allocates nothing.
struct Decision {
  Outcome outcome = Outcome::kApprove;
  double score = 0;
  uint64_t rules_version = 0;  // the rule set that decided (0: none configured)
  double model_score = std::numeric_limits<double>::quiet_NaN();  // probability; NaN: no model
  int model_decile = -1;  // which training-score decile model_score falls in (0-9); -1: none
  // The shadow challenger model's probability (NaN: none), and whether the decision would
  // have been an alert with it in the champion's place (-1: no challenger). Never acts.
  double challenger_score = std::numeric_limits<double>::quiet_NaN();
  int challenger_alert = -1;
  std::string narrative;  // plain language, for alerts
  // Shadow rules that fired: evaluated and counted, never acting. Views into the stage's
  // configuration, valid while the decision is serialized.
  std::vector<std::string_view> shadow;

  void Reset() {
    outcome = Outcome::kApprove;
    score = 0;
    rules_version = 0;
    model_score = std::numeric_limits<double>::quiet_NaN();
    model_decile = -1;
    challenger_score = std::numeric_limits<double>::quiet_NaN();
    challenger_alert = -1;
    narrative.clear();
    shadow.clear();
    reason_count_ = 0;
  }
  // A new, empty reason, reusing an earlier decision's storage.
  Reason& AddReason() {
    if (reason_count_ == reasons_.size()) reasons_.emplace_back();
    Reason& r = reasons_[reason_count_++];
    r.code.clear();
    r.detail.clear();
    r.contribution = 0;
    r.action = Outcome::kApprove;
    return r;
  }
  std::span<const Reason> reasons() const { return {reasons_.data(), reason_count_}; }
  // For a later stage that adds to an earlier stage's reason (the model's top drivers).
  std::span<Reason> mutable_reasons() { return {reasons_.data(), reason_count_}; }
  // Review and block decisions are alerts.
  bool IsAlert() const { return outcome != Outcome::kApprove; }

 private:
  std::vector<Reason> reasons_;
  size_t reason_count_ = 0;
};

// StageConfig is an immutable, versioned configuration of the decision stages, e.g. a compiled
// rule set. The engine stamps each batch with the one current when the batch was cut, so a
// reload takes effect for every worker at the same point of the input. Shared (read-only)
// by every worker that still holds a batch stamped with it.
struct StageConfig {
  virtual ~StageConfig() = default;
  uint64_t version = 0;
};

// Stage is the decision hook: rules and models plug in here. The engine makes one Stage per
// worker and calls Process on that worker's thread only, for each event whose key the worker
// owns, in source order per key, with the event's features (in the order the pipeline declares
// them; NaN where a feature has no value). Process must not block and should not allocate per
// event.
class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string_view Name() const = 0;
  virtual void Process(const Event& event, std::span<const double> features,
                       Decision& decision) = 0;
  // Called on the worker's thread before the first event decided under `config`, and again
  // whenever it changes (a reload). Stages that need no configuration ignore it.
  virtual void Configure(const StageConfig& /*config*/) {}
};

// Makes the stages of one worker, in the order they run. Called once per worker at start-up.
class StageFactory {
 public:
  virtual ~StageFactory() = default;
  virtual std::vector<std::unique_ptr<Stage>> MakeStages(int worker) = 0;
  // The configuration new batches are stamped with (null: none). Called by the engine's
  // router once per batch; must be thread-safe against a concurrent reload.
  virtual std::shared_ptr<const StageConfig> Current() { return nullptr; }
};

}  // namespace vigil::decide
