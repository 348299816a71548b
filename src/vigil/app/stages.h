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
  const model::ModelConfig* model() const { return model_.get(); }

 private:
  std::optional<rules::RuleBook> book_;
  std::shared_ptr<const model::ModelConfig> model_;
  std::unique_ptr<decide::StageFactory> factory_;
};

// The tokenizer for the pipeline's privacy.tokenize fields (nullopt when it tokenizes none).
// Throws std::invalid_argument when its key is missing from the environment or too short.
std::optional<sink::Tokenizer> MakeTokenizer(const config::Pipeline& pipeline);

// ReloadWatcher reloads a RuleBook while a run goes on: when `requested` is set (SIGHUP,
// `vigil reload`) and when the pipeline file or a list file it names changes (checked once a
// second). It reports each reload, or why the old rules stay, on stderr. Owns a thread;
// stops when destroyed.
class ReloadWatcher {
 public:
  ReloadWatcher(rules::RuleBook& book, std::string pipeline_path, std::atomic<bool>& requested);
  ~ReloadWatcher();
  ReloadWatcher(const ReloadWatcher&) = delete;
  ReloadWatcher& operator=(const ReloadWatcher&) = delete;

 private:
  void Loop();
  std::vector<std::filesystem::file_time_type> Stamps() const;

  rules::RuleBook& book_;
  std::string path_;
  std::atomic<bool>& requested_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace vigil::app
