#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vigil/decide/decision.h"
#include "vigil/rules/rule_set.h"

namespace vigil::rules {

// RuleStage evaluates a RuleSet on each event: the active rules that fire add their score and
// action, and a reason with the values that made them fire; the policy turns score and
// actions into the outcome; an alert gets a narrative. Shadow rules are evaluated and listed
// in the decision, never acting. One per worker, configured by the engine with the rule set
// each batch was stamped with; used by that worker's thread only. Allocates only while its
// reusable buffers grow, and for narratives (alerts).
class RuleStage final : public decide::Stage {
 public:
  std::string_view Name() const override { return "rules"; }
  void Configure(const decide::StageConfig& config) override;
  void Process(const Event& event, std::span<const double> features,
               decide::Decision& decision) override;

 private:
  const RuleSet* set_ = nullptr;  // kept alive by the batch being decided
  std::vector<uint32_t> fired_;   // active rules that fired on the current event
};

// Renders a narrative template: {name} is a field's or feature's value, {name|format} with a
// format: money (1,234.50), int (1,235), km (850 km), kmh (2,550 km/h), x (12.0×),
// minutes (20 minutes, from seconds), time (ISO-8601), mask (…1234), raw (unmasked). Key and
// entity fields are masked unless |raw. A null value reads "unknown". Appends to `out`.
void RenderNarrative(const RuleSet& set, std::string_view text, const Event& event,
                     std::span<const double> slots, std::string& out);

}  // namespace vigil::rules
