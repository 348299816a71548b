#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vigil/config/pipeline.h"
#include "vigil/decide/decision.h"
#include "vigil/features/spec.h"
#include "vigil/model/model_stage.h"
#include "vigil/rules/rule_set.h"
#include "vigil/sink/tokenizer.h"

namespace vigil::app {

class DecisionStages;

// The decision stages a pipeline configures, per worker: its model (a `model:` section), then
// its rules and the decision policy (`rules:` / `rules_file:`, `decision:`; `book()` reloads
// them). Without either, everything is approved. Start-up only: throws config::ConfigError.
class PipelineStages {
 public:
  // `extra`, when given, makes one more stage per worker, run after the rules (e.g. to
  // observe the final decisions for `vigil eval`).
  using ExtraStage = std::function<std::unique_ptr<decide::Stage>(int worker)>;
  PipelineStages(const config::Pipeline& pipeline, const features::Spec& spec,
                 ExtraStage extra = nullptr);
  ~PipelineStages();
  PipelineStages(const PipelineStages&) = delete;
  PipelineStages& operator=(const PipelineStages&) = delete;

  decide::StageFactory& factory() { return *factory_; }
  rules::RuleBook* book() { return book_ ? &*book_ : nullptr; }
  // The model loaded at start-up (null: none).
  const model::ModelConfig* model() const { return model_.get(); }
  // The model in force now (a reload may have swapped it); thread-safe.
  std::shared_ptr<const model::ModelConfig> current_model() const;

  // Reads the pipeline's model section again and, if the model (or its weight or explain_at)
  // changed, puts the new one in force: batches cut from then on are stamped with it, so
  // every worker switches at the same point of the input, as with rules. A model that does
  // not load, or whose columns are not the pipeline's, is refused: the running one stays and
  // the message says why (file, field, first difference). Empty when swapped (`changed`) or
  // unchanged. Without a model at start-up, nothing to do (adding one takes a restart).
  // Called by ReloadWatcher's thread.
  std::string ReloadModel(bool& changed);

 private:
  std::string path_;
  uint64_t state_hash_ = 0;
  const features::Spec& spec_;
  std::optional<rules::RuleBook> book_;
  std::shared_ptr<const model::ModelConfig> model_;
  std::unique_ptr<decide::StageFactory> factory_;
  DecisionStages* decisions_ = nullptr;  // factory_, when it is one
};

// The tokenizer for the pipeline's privacy.tokenize fields (nullopt when it tokenizes none).
// Throws std::invalid_argument when its key is missing from the environment or too short.
std::optional<sink::Tokenizer> MakeTokenizer(const config::Pipeline& pipeline);

// ReloadWatcher reloads the rules and the model while a run goes on: when `requested` is set
// (SIGHUP, `vigil reload`) and when the pipeline file, a list file it names, or the model
// file or its metadata changes (checked once a second). It reports each reload, or why the
// old rules or model stay, on stderr. Owns a thread; stops when destroyed. `stages` must
// have a rule book (it has one whenever it has rules or a model).
class ReloadWatcher {
 public:
  ReloadWatcher(PipelineStages& stages, std::string pipeline_path, std::atomic<bool>& requested);
  ~ReloadWatcher();
  ReloadWatcher(const ReloadWatcher&) = delete;
  ReloadWatcher& operator=(const ReloadWatcher&) = delete;

 private:
  void Loop();
  std::vector<std::filesystem::file_time_type> Stamps() const;

  PipelineStages& stages_;
  rules::RuleBook& book_;
  std::string path_;
  std::atomic<bool>& requested_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace vigil::app
