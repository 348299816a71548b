#pragma once

#include <cstdint>
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
};

// Decision is the engine's answer to one event. Pooled per worker: Reset() keeps capacity.
struct Decision {
  Outcome outcome = Outcome::kApprove;
  double score = 0;
  std::vector<Reason> reasons;

  void Reset() {
    outcome = Outcome::kApprove;
    score = 0;
    reasons.clear();
  }
  // Review and block decisions are alerts.
  bool IsAlert() const { return outcome != Outcome::kApprove; }
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
};

// Makes the stages of one worker, in the order they run. Called once per worker at start-up.
class StageFactory {
 public:
  virtual ~StageFactory() = default;
  virtual std::vector<std::unique_ptr<Stage>> MakeStages(int worker) = 0;
};

}  // namespace vigil::decide
