#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vigil/config/pipeline.h"
#include "vigil/decide/decision.h"
#include "vigil/features/spec.h"
#include "vigil/rules/expr.h"

namespace vigil::rules {

// One rule of the pipeline's `rules:` section, compiled.
struct Rule {
  std::string id;
  std::string description;
  std::string when_text;              // as written, for `vigil check` and logs
  std::optional<Program> when;        // always set in a loaded RuleSet
  double score = 0;                   // added to the decision's score when it fires,
  std::optional<Program> score_expr;  // or this expression's value (null counts 0)
  decide::Outcome action = decide::Outcome::kApprove;  // review / block: acts on its own
  std::vector<std::string> tags;                       // typologies: card_testing, ato, ...
  bool shadow = false;                                 // evaluated and counted, never acts
  std::string narrative;         // template: "Card {card_id} made {card_txn_10m} ..."
  std::vector<int> secret_refs;  // tokenized fields `when` reads: masked in its reason
};

// How rule scores and actions become an outcome: the strongest action of the active rules
// that fired, raised to review / block when the summed score reaches a threshold.
struct Policy {
  double review_at = 50;
  double block_at = 100;
};

// RuleSet is the compiled `lists:`, `rules:` and `decision:` sections: an immutable
// decide::StageConfig. Built at start-up and on each reload (with a new version), then shared
// read-only by the workers deciding batches stamped with it.
struct RuleSet final : decide::StageConfig {
  Schema schema;  // input fields, then one slot per feature (in the features spec's order)
  Lists lists;
  std::vector<Rule> rules;
  Policy policy;
  std::vector<bool> masked_field;  // by input field: shown as …1234 in narratives
  std::vector<bool> secret_field;  // tokenized fields: masked even in reasons and with |raw
  std::string source;              // where it was loaded from, for messages
  std::vector<std::string> files;  // list files it read (a reload watches them)
};

// Whether the pipeline has rules (a `rules:` section, or a `rules_file:`).
bool HasRules(const config::Pipeline& pipeline);

// Compiles the sections (from the pipeline file, or from the file its `rules_file:` names,
// relative to it: a YAML mapping with lists, rules and decision). Every problem is reported with
// file:line:col and what was expected (config::ConfigError); list files are read relative to the
// pipeline file's directory. Start-up / reload only.
std::shared_ptr<const RuleSet> LoadRuleSet(const config::Pipeline& pipeline,
                                           const features::Spec& features, uint64_t version);

// RuleBook holds the current rule set and swaps in a new one on reload: the engine stamps
// each batch with Current(). Reload re-reads the pipeline file's rule sections and the list
// files; if anything is wrong the old set stays in force and the error is returned. Thread-safe.
class RuleBook {
 public:
  // `pipeline` and `features` are the running ones: a reload may change rules, lists and the
  // decision policy, not the input or features the rules read.
  RuleBook(const config::Pipeline& pipeline, const features::Spec& features,
           std::shared_ptr<const RuleSet> initial);

  std::shared_ptr<const RuleSet> Current() const;
  // Empty on success (the new set's version is Current()->version); else the diagnostics.
  std::string Reload();

 private:
  std::string path_;
  uint64_t state_hash_;
  const features::Spec& features_;
  mutable std::mutex mu_;  // guards current_: taken once per batch by the router, not per event
  std::shared_ptr<const RuleSet> current_;
};

}  // namespace vigil::rules
