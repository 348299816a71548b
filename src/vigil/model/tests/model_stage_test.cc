// The scoring stage in a pipeline: a model trained here on the pipeline's own columns scores
// events before the rules stage, and its explainer names the top TreeSHAP drivers of alerts
// (only alerts, only from explain_at on) in the model reason and the narrative.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vigil/config/pipeline.h"
#include "vigil/decode/decoder.h"
#include "vigil/features/spec.h"
#include "vigil/model/model_stage.h"
#include "vigil/model/train.h"
#include "vigil/rules/rule_set.h"
#include "vigil/rules/rule_stage.h"

namespace vigil::model {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kPipeline = R"(name: t
input:
  fields:
    - {name: id, type: string}
    - {name: ts, type: timestamp}
    - {name: card, type: string}
    - {name: amount, type: float}
event: {id: id, time: ts, key: card}
entities:
  card: {field: card}
features:
  - {name: n_10m, entity: card, op: count, window: 10m, step: 1m}
  - {name: sum_10m, entity: card, op: sum, of: amount, window: 10m, step: 1m}
rules:
  - id: velocity
    when: n_10m >= 9
    score: 10
    narrative: "Card {card} made {n_10m|int} purchases in 10 minutes."
  - id: huge
    when: amount >= 2990
    action: block
decision: {review_at: 50, block_at: 100}
model:
  path: model.json
  weight: 100
  explain_at: 0.5
)";

// Columns amount, n_10m, sum_10m; fraud = a large amount in a burst of purchases.
// `inverted`: the opposite label, for a challenger that disagrees.
TrainedModel TrainOnPipelineColumns(int rounds = 30, bool inverted = false) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> amount(0, 3000), count(0, 10), noise(0, 200);
  const size_t rows = 4000;
  std::vector<float> x(rows * 3), y(rows);
  for (size_t r = 0; r < rows; ++r) {
    const float a = amount(rng), n = std::floor(count(rng));
    x[r * 3] = a;
    x[r * 3 + 1] = n;
    x[r * 3 + 2] = a * n / 2 + noise(rng);
    y[r] = (a > 2000 && n >= 5) != inverted ? 1.0f : 0.0f;
  }
  TrainInput in;
  in.train = {x.data(), rows, 3};
  in.train_labels = y;
  in.feature_names = {"amount", "n_10m", "sum_10m"};
  in.label_name = "is_fraud";
  TrainParams p;
  p.rounds = rounds;
  p.max_depth = 4;
  p.nthread = 1;
  return Train(in, p);
}

class ModelStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("vigil-model-stage-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    SaveModel(TrainOnPipelineColumns(), (dir_ / "model.json").string());
    pipeline_ = config::LoadPipelineText(kPipeline, (dir_ / "p.yaml").string());
    spec_ = features::ParseSpec(pipeline_);
    config_ = LoadModelConfig(pipeline_, spec_);
    ASSERT_TRUE(config_);
    set_ = rules::LoadRuleSet(pipeline_, spec_, 1);
    Start();
    decoder_ = decode::MakeDecoder(pipeline_);
  }
  void Start() {
    model_ = std::make_unique<ModelStage>(config_);
    model_->SetReviewAt(set_->policy.review_at);
    explain_ = model_->MakeExplainer();
    rules_.Configure(*set_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  decide::Decision Decide(double amount, double n_10m) {
    const std::string json = R"({"id":"e1","ts":"2026-01-01T00:00:00Z","card":"4000001234567890",)"
                             R"("amount":)" +
                             std::to_string(amount) + "}";
    std::string padded = json + std::string(64, '\0');
    Event e;
    EXPECT_TRUE(decoder_->Decode(std::string_view(padded.data(), json.size()), e).ok());
    const std::vector<double> features = {n_10m, amount * n_10m / 2};
    decide::Decision d;
    model_->Process(e, features, d);
    rules_.Process(e, features, d);
    explain_->Process(e, features, d);
    return d;
  }

  static const decide::Reason* Find(const decide::Decision& d, std::string_view code) {
    for (const decide::Reason& r : d.reasons()) {
      if (r.code == code) return &r;
    }
    return nullptr;
  }

  std::filesystem::path dir_;
  config::Pipeline pipeline_;
  features::Spec spec_;
  std::shared_ptr<const ModelConfig> config_;
  std::shared_ptr<const rules::RuleSet> set_;
  std::unique_ptr<ModelStage> model_;
  std::unique_ptr<decide::Stage> explain_;
  rules::RuleStage rules_;
  std::unique_ptr<decode::Decoder> decoder_;
};

TEST_F(ModelStageTest, AlertsNameTheirTopDrivers) {
  // The model alone raises the alert: its reason and the narrative name the drivers, which
  // are the pipeline's real columns, those pushing toward fraud first.
  decide::Decision d = Decide(2800, 8);
  ASSERT_GE(d.model_score, 0.9);
  EXPECT_EQ(d.outcome, decide::Outcome::kReview);
  const decide::Reason* r = Find(d, "model");
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(r->detail, HasSubstr("; top drivers: "));
  EXPECT_THAT(r->detail, HasSubstr("amount=+"));
  EXPECT_THAT(r->detail, HasSubstr("n_10m=+"));
  EXPECT_THAT(d.narrative, StartsWith("Model score 0.9"));
  EXPECT_THAT(d.narrative, HasSubstr("(top drivers: "));
  EXPECT_THAT(d.narrative, HasSubstr("amount +"));
  EXPECT_THAT(d.narrative, Not(HasSubstr("Rules fired")));

  // With a rule's narrative, the model's sentence follows it.
  d = Decide(2800, 9);
  EXPECT_THAT(d.narrative, StartsWith("Card \u20267890 made 9 purchases in 10 minutes. Model "
                                      "score 0.9"));
}

TEST_F(ModelStageTest, ApprovalsAndLowScoresAreNotExplained) {
  // Approved: a model reason only when the score reaches explain_at, never drivers.
  decide::Decision d = Decide(100, 1);
  EXPECT_EQ(d.outcome, decide::Outcome::kApprove);
  EXPECT_LT(d.model_score, 0.5);
  EXPECT_EQ(Find(d, "model"), nullptr);
  EXPECT_TRUE(d.narrative.empty());
  // Blocked by a rule while the model saw nothing: no model sentence.
  d = Decide(2995, 0);
  EXPECT_EQ(d.outcome, decide::Outcome::kBlock);
  EXPECT_LT(d.model_score, 0.5);
  EXPECT_THAT(d.narrative, Not(HasSubstr("Model score")));
}

TEST_F(ModelStageTest, DriversAreTheLargestContributions) {
  // The drivers in the reason are the native TreeSHAP values of the row as scored.
  Scorer scorer(config_->model.json);
  const float row[3] = {2800, 8, 2800 * 8 / 2.0f};
  float c[4];
  ASSERT_TRUE(scorer.Contributions(row, 3, c).ok());
  Driver top[kTopDrivers];
  const size_t n = TopDrivers({c, 3}, kTopDrivers, top);
  ASSERT_GT(n, 0u);
  const decide::Decision d = Decide(2800, 8);
  const decide::Reason* r = Find(d, "model");
  ASSERT_NE(r, nullptr);
  char first[64];
  std::snprintf(first, sizeof(first), "top drivers: %s=%+.2f",
                config_->columns[top[0].column].name.c_str(), top[0].value);
  EXPECT_THAT(r->detail, HasSubstr(first));
}

TEST_F(ModelStageTest, ReconfigureSwitchesTheModel) {
  // Another model for the same columns (fewer rounds): scores change from the next event on,
  // and they are the new model's own; the same config again is a no-op.
  const decide::Decision before = Decide(2800, 8);
  SaveModel(TrainOnPipelineColumns(5), (dir_ / "model.json").string());
  auto next = LoadModelConfig(pipeline_, spec_);
  ASSERT_TRUE(next);
  model_->Reconfigure(config_);  // unchanged
  EXPECT_EQ(Decide(2800, 8).model_score, before.model_score);
  model_->Reconfigure(next);
  EXPECT_EQ(&model_->config(), next.get());
  const decide::Decision after = Decide(2800, 8);
  Scorer scorer(next->model.json);
  const float row[3] = {2800, 8, 2800 * 8 / 2.0f};
  float p = 0;
  ASSERT_TRUE(scorer.Score(row, 1, 3, &p).ok());
  EXPECT_EQ(after.model_score, p);
  EXPECT_NE(after.model_score, before.model_score);
}

TEST_F(ModelStageTest, ChallengerScoresInShadow) {
  const decide::Decision alone = Decide(2800, 8);
  EXPECT_TRUE(std::isnan(alone.challenger_score));
  EXPECT_EQ(alone.challenger_alert, -1);
  // A challenger trained on the opposite label, named in the pipeline.
  SaveModel(TrainOnPipelineColumns(30, true), (dir_ / "challenger.json").string());
  pipeline_ =
      config::LoadPipelineText(std::string(kPipeline) + "  challenger: {path: challenger.json}\n",
                               (dir_ / "p.yaml").string());
  config_ = LoadModelConfig(pipeline_, spec_);
  ASSERT_EQ(config_->challenger_path, (dir_ / "challenger.json").string());
  Start();
  const decide::Decision d = Decide(2800, 8);
  // The champion's score, outcome and reasons are unchanged: the challenger never acts.
  EXPECT_EQ(d.model_score, alone.model_score);
  EXPECT_EQ(d.score, alone.score);
  EXPECT_EQ(d.outcome, alone.outcome);
  EXPECT_EQ(d.narrative, alone.narrative);
  Scorer scorer(config_->challenger.json);
  const float row[3] = {2800, 8, 2800 * 8 / 2.0f};
  float c = 0;
  ASSERT_TRUE(scorer.Score(row, 1, 3, &c).ok());
  EXPECT_EQ(d.challenger_score, c);
  EXPECT_LT(d.challenger_score, 0.5);
  // In the champion's place, 100 x its score would not reach review_at 50: no alert.
  EXPECT_EQ(d.challenger_alert, 0);
  EXPECT_TRUE(d.IsAlert());
  // A rule's action alerts whatever the model says.
  EXPECT_EQ(Decide(2995, 8).challenger_alert, 1);
  // A challenger that does not load is refused at start-up, naming the field.
  pipeline_ = config::LoadPipelineText(std::string(kPipeline) + "  challenger: {path: nope.json}\n",
                                       (dir_ / "p.yaml").string());
  try {
    LoadModelConfig(pipeline_, spec_);
    ADD_FAILURE() << "a missing challenger was accepted";
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("model.challenger.path"));
  }
}

TEST(TopDrivers, PositiveFirstThenByMagnitude) {
  const std::vector<float> c = {0.5f, -2.0f, 0.0f, 1.5f, NAN, -0.1f};
  Driver out[6];
  ASSERT_EQ(TopDrivers(c, 3, out), 3u);
  EXPECT_EQ(out[0].column, 3u);
  EXPECT_EQ(out[1].column, 0u);
  EXPECT_EQ(out[2].column, 1u);
  ASSERT_EQ(TopDrivers(c, 6, out), 4u);  // zero and NaN drive nothing
  EXPECT_EQ(out[3].column, 5u);
  ASSERT_EQ(TopDrivers(c, 1, out), 1u);
  EXPECT_EQ(out[0].column, 3u);
  EXPECT_EQ(TopDrivers({}, 3, out), 0u);
}

}  // namespace
}  // namespace vigil::model
