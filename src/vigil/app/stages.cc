#include "vigil/app/stages.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "vigil/engine/engine.h"
#include "vigil/model/model_stage.h"
#include "vigil/rules/rule_stage.h"

namespace vigil::app {

namespace {

// The model stage (if any), then the rules stage, which applies the decision policy, then
// the model's explainer (top drivers of alerts).
class DecisionStages final : public decide::StageFactory {
 public:
  DecisionStages(rules::RuleBook& book, std::shared_ptr<const model::ModelConfig> model,
                 PipelineStages::ExtraStage extra)
      : book_(book), model_(std::move(model)), extra_(std::move(extra)) {}
  std::vector<std::unique_ptr<decide::Stage>> MakeStages(int worker) override {
    std::vector<std::unique_ptr<decide::Stage>> stages;
    std::unique_ptr<decide::Stage> explain;  // after the policy: top drivers on alerts
    if (model_) {
      auto model = std::make_unique<model::ModelStage>(model_);
      explain = model->MakeExplainer();
      stages.push_back(std::move(model));
    }
    stages.push_back(std::make_unique<rules::RuleStage>());
    if (explain) stages.push_back(std::move(explain));
    if (extra_) stages.push_back(extra_(worker));
    return stages;
  }
  std::shared_ptr<const decide::StageConfig> Current() override { return book_.Current(); }

 private:
  rules::RuleBook& book_;
  std::shared_ptr<const model::ModelConfig> model_;
  PipelineStages::ExtraStage extra_;
};

}  // namespace

PipelineStages::PipelineStages(const config::Pipeline& pipeline, const features::Spec& spec,
                               ExtraStage extra) {
  model_ = model::LoadModelConfig(pipeline, spec);
  if (!model_ && !rules::HasRules(pipeline) && !extra) {
    factory_ = std::make_unique<engine::PassThroughStages>();
    return;
  }
  book_.emplace(pipeline, spec, rules::LoadRuleSet(pipeline, spec, 1));
  factory_ = std::make_unique<DecisionStages>(*book_, model_, std::move(extra));
}

PipelineStages::~PipelineStages() = default;

std::optional<sink::Tokenizer> MakeTokenizer(const config::Pipeline& pipeline) {
  const auto& t = pipeline.tokenized;
  if (std::find(t.begin(), t.end(), true) == t.end()) return std::nullopt;
  const char* key = std::getenv(pipeline.token_key_env.c_str());
  if (!key || std::strlen(key) < 16) {
    throw std::invalid_argument(fmt::format(
        "privacy.tokenize needs a secret key of at least 16 bytes in ${}, e.g. export {}=$(openssl "
        "rand -hex 32); keep it out of the pipeline file and the same across runs so tokens "
        "still join",
        pipeline.token_key_env, pipeline.token_key_env));
  }
  return sink::Tokenizer(key);
}

ReloadWatcher::ReloadWatcher(rules::RuleBook& book, std::string pipeline_path,
                             std::atomic<bool>& requested)
    : book_(book), path_(std::move(pipeline_path)), requested_(requested) {
  thread_ = std::thread([this] { Loop(); });
}

ReloadWatcher::~ReloadWatcher() {
  stop_.store(true);
  thread_.join();
}

// Modification times of the pipeline file and of every list file the current set read.
std::vector<std::filesystem::file_time_type> ReloadWatcher::Stamps() const {
  std::vector<std::filesystem::file_time_type> t;
  std::error_code ec;
  t.push_back(std::filesystem::last_write_time(path_, ec));
  for (const std::string& f : book_.Current()->files) {
    t.push_back(std::filesystem::last_write_time(f, ec));
  }
  return t;
}

void ReloadWatcher::Loop() {
  auto stamps = Stamps();
  int ticks = 0;
  while (!stop_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    bool due = requested_.exchange(false);
    if (++ticks % 10 == 0) {
      auto now = Stamps();
      due = due || now != stamps;
      stamps = std::move(now);
    }
    if (!due) continue;
    const uint64_t before = book_.Current()->version;
    const std::string error = book_.Reload();
    if (error.empty()) {
      const auto set = book_.Current();
      std::fprintf(stderr, "vigil: rules reloaded: version %llu, %zu rules, %zu lists\n",
                   static_cast<unsigned long long>(set->version), set->rules.size(),
                   set->lists.Names().size());
    } else {
      std::fprintf(stderr, "vigil: reload refused, rules version %llu stays in force:\n%s\n",
                   static_cast<unsigned long long>(before), error.c_str());
    }
    stamps = Stamps();
  }
}

}  // namespace vigil::app
