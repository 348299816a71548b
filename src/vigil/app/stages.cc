#include "vigil/app/stages.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

#include "vigil/engine/engine.h"
#include "vigil/model/meta.h"
#include "vigil/model/model_stage.h"
#include "vigil/model/scorer.h"
#include "vigil/rules/rule_stage.h"

namespace vigil::app {

namespace {

// What a batch is stamped with: the rule set and the model in force when it was cut, so a
// reload of either takes effect for every worker at the same point of the input.
struct Stamp final : decide::StageConfig {
  std::shared_ptr<const rules::RuleSet> rules;
  std::shared_ptr<const model::ModelConfig> model;
};

// Hands the stamp's rule set to a stage that reads one (the rules stage, eval's stage).
class WithRules final : public decide::Stage {
 public:
  explicit WithRules(std::unique_ptr<decide::Stage> inner) : inner_(std::move(inner)) {}
  std::string_view Name() const override { return inner_->Name(); }
  void Configure(const decide::StageConfig& config) override {
    inner_->Configure(*static_cast<const Stamp&>(config).rules);
  }
  void Process(const Event& event, std::span<const double> features,
               decide::Decision& decision) override {
    inner_->Process(event, features, decision);
  }

 private:
  std::unique_ptr<decide::Stage> inner_;
};

// The model stage, switched to the stamp's model when a batch brings another one.
class WithModel final : public decide::Stage {
 public:
  explicit WithModel(std::unique_ptr<model::ModelStage> inner) : inner_(std::move(inner)) {}
  std::string_view Name() const override { return inner_->Name(); }
  void Configure(const decide::StageConfig& config) override {
    const Stamp& stamp = static_cast<const Stamp&>(config);
    inner_->Reconfigure(stamp.model);
    inner_->SetReviewAt(stamp.rules->policy.review_at);
  }
  void Process(const Event& event, std::span<const double> features,
               decide::Decision& decision) override {
    inner_->Process(event, features, decision);
  }
  model::ModelStage& inner() { return *inner_; }

 private:
  std::unique_ptr<model::ModelStage> inner_;
};

}  // namespace

// The model stage (if any), then the rules stage, which applies the decision policy, then
// the model's explainer (top drivers of alerts). Batches are stamped with a Stamp.
class DecisionStages final : public decide::StageFactory {
 public:
  DecisionStages(rules::RuleBook& book, std::shared_ptr<const model::ModelConfig> model,
                 PipelineStages::ExtraStage extra)
      : book_(book), model_(std::move(model)), extra_(std::move(extra)) {}
  std::vector<std::unique_ptr<decide::Stage>> MakeStages(int worker) override {
    std::vector<std::unique_ptr<decide::Stage>> stages;
    std::unique_ptr<decide::Stage> explain;  // after the policy: top drivers on alerts
    if (const auto m = model()) {
      auto stage = std::make_unique<WithModel>(std::make_unique<model::ModelStage>(m));
      explain = stage->inner().MakeExplainer();
      stages.push_back(std::move(stage));
    }
    stages.push_back(std::make_unique<WithRules>(std::make_unique<rules::RuleStage>()));
    if (explain) stages.push_back(std::move(explain));
    if (extra_) stages.push_back(std::make_unique<WithRules>(extra_(worker)));
    return stages;
  }
  std::shared_ptr<const decide::StageConfig> Current() override {
    auto rules = book_.Current();
    std::lock_guard<std::mutex> lock(mu_);
    if (!stamp_ || stamp_->rules != rules || stamp_->model != model_) {
      auto stamp = std::make_shared<Stamp>();
      stamp->rules = std::move(rules);
      stamp->model = model_;
      stamp->version = ++version_;
      stamp_ = std::move(stamp);
    }
    return stamp_;
  }
  std::shared_ptr<const model::ModelConfig> model() const {
    std::lock_guard<std::mutex> lock(mu_);
    return model_;
  }
  void SetModel(std::shared_ptr<const model::ModelConfig> model) {
    std::lock_guard<std::mutex> lock(mu_);
    model_ = std::move(model);
  }

 private:
  rules::RuleBook& book_;
  mutable std::mutex mu_;  // guards model_, stamp_, version_: once per batch, not per event
  std::shared_ptr<const model::ModelConfig> model_;
  std::shared_ptr<const Stamp> stamp_;
  uint64_t version_ = 0;
  PipelineStages::ExtraStage extra_;
};

PipelineStages::PipelineStages(const config::Pipeline& pipeline, const features::Spec& spec,
                               ExtraStage extra)
    : path_(pipeline.path), state_hash_(pipeline.state_hash), spec_(spec) {
  model_ = model::LoadModelConfig(pipeline, spec);
  if (!model_ && !rules::HasRules(pipeline) && !extra) {
    factory_ = std::make_unique<engine::PassThroughStages>();
    return;
  }
  book_.emplace(pipeline, spec, rules::LoadRuleSet(pipeline, spec, 1));
  auto decisions = std::make_unique<DecisionStages>(*book_, model_, std::move(extra));
  decisions_ = decisions.get();
  factory_ = std::move(decisions);
}

std::shared_ptr<const model::ModelConfig> PipelineStages::current_model() const {
  return decisions_ ? decisions_->model() : nullptr;
}

std::string PipelineStages::ReloadModel(bool& changed) {
  changed = false;
  const auto running = current_model();
  if (!running) return "";  // no model at start-up: adding one takes a restart
  try {
    const config::Pipeline p = config::LoadPipelineFile(path_);
    if (p.state_hash != state_hash_) return "";  // refused, and said so, by the rules reload
    std::shared_ptr<const model::ModelConfig> next = model::LoadModelConfig(p, spec_);
    if (!next) {
      return fmt::format(
          "{}: the model section is gone; a reload swaps models, removing one "
          "takes a restart",
          path_);
    }
    if (next->model.json == running->model.json && next->weight == running->weight &&
        next->explain_at == running->explain_at &&
        next->challenger_path == running->challenger_path &&
        next->challenger.json == running->challenger.json) {
      return "";
    }
    model::Scorer check(next->model.json, model::Engine::kNative);  // workers will build these
    if (!next->challenger_path.empty()) {
      model::Scorer check_challenger(next->challenger.json, model::Engine::kNative);
    }
    decisions_->SetModel(std::move(next));
    changed = true;
    return "";
  } catch (const config::ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return fmt::format("{}: {}", path_, e.what());
  }
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

ReloadWatcher::ReloadWatcher(PipelineStages& stages, std::string pipeline_path,
                             std::atomic<bool>& requested)
    : stages_(stages),
      book_(*stages.book()),
      path_(std::move(pipeline_path)),
      requested_(requested) {
  thread_ = std::thread([this] { Loop(); });
}

ReloadWatcher::~ReloadWatcher() {
  stop_.store(true);
  thread_.join();
}

// Modification times of the pipeline file, of every list file the current set read, and of
// the running model and challenger and their metadata.
std::vector<std::filesystem::file_time_type> ReloadWatcher::Stamps() const {
  std::vector<std::filesystem::file_time_type> t;
  std::error_code ec;
  t.push_back(std::filesystem::last_write_time(path_, ec));
  for (const std::string& f : book_.Current()->files) {
    t.push_back(std::filesystem::last_write_time(f, ec));
  }
  if (const auto m = stages_.current_model()) {
    for (const std::string& p : {m->path, m->challenger_path}) {
      if (p.empty()) continue;
      t.push_back(std::filesystem::last_write_time(p, ec));
      t.push_back(std::filesystem::last_write_time(model::MetaPathFor(p), ec));
    }
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
    bool swapped = false;
    const auto running = stages_.current_model();
    const std::string model_error = stages_.ReloadModel(swapped);
    if (swapped) {
      const auto m = stages_.current_model();
      std::fprintf(stderr,
                   "vigil: model reloaded: %s, %d trees trained on %s (weight %g, explain_at %g), "
                   "from the next batch\n",
                   m->path.c_str(), m->model.meta.trees, m->model.meta.label.c_str(), m->weight,
                   m->explain_at);
    } else if (!model_error.empty()) {
      std::fprintf(stderr, "vigil: model reload refused, the running model %s stays:\n%s\n",
                   running ? running->path.c_str() : "", model_error.c_str());
    }
    stamps = Stamps();
  }
}

}  // namespace vigil::app
