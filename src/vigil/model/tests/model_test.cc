#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vigil/model/internal/forest.h"
#include "vigil/model/meta.h"
#include "vigil/model/metrics.h"
#include "vigil/model/scorer.h"
#include "vigil/model/tests/synthetic.h"
#include "vigil/model/train.h"

namespace vigil::model {
namespace {

using ::testing::HasSubstr;
using testing::Synthetic;

double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max<double>(max_diff, std::abs(a[i] - b[i]));
  }
  return max_diff;
}

#ifdef NDEBUG
constexpr int kRounds = 200;
#else
constexpr int kRounds = 60;  // Debug + sanitizers: fewer rounds keep the test to seconds
#endif

// One model trained for the whole suite: 20k training rows, 8k later validation rows,
// 10 features, 2% positives.
class ModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    train_ = new Synthetic(Synthetic::Make(20000, 10, 1));
    valid_ = new Synthetic(Synthetic::Make(8000, 10, 2));
    TrainParams params;
    params.rounds = kRounds;
    params.nthread = 1;  // OpenMP barriers crawl when the cores are shared with other jobs
    params.seed = 7;
    model_ = new TrainedModel(Train(Input(), params));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete valid_;
    delete train_;
  }

  static TrainInput Input() {
    TrainInput in;
    in.train = {train_->x.data(), train_->rows, train_->cols};
    in.train_labels = train_->y;
    in.valid = {valid_->x.data(), valid_->rows, valid_->cols};
    in.valid_labels = valid_->y;
    in.feature_names = train_->names;
    in.label_name = "is_fraud";
    in.window_first_us = 1'700'000'000'000'000;
    in.window_last_us = 1'700'600'000'000'000;
    in.pipeline_hash = "feedbeef";
    return in;
  }

  static std::vector<float> ScoreAll(Scorer& scorer, const Synthetic& s, bool margin = false) {
    std::vector<float> out(s.rows);
    const Status st = margin ? scorer.Margin(s.x.data(), s.rows, s.cols, out.data())
                             : scorer.Score(s.x.data(), s.rows, s.cols, out.data());
    EXPECT_TRUE(st.ok()) << st.error().message;
    return out;
  }

  static Synthetic* train_;
  static Synthetic* valid_;
  static TrainedModel* model_;
};

Synthetic* ModelTest::train_ = nullptr;
Synthetic* ModelTest::valid_ = nullptr;
TrainedModel* ModelTest::model_ = nullptr;

TEST_F(ModelTest, BeatsSingleFeatureBaselinesOnValidation) {
  Scorer scorer(model_->json, Engine::kXgboost);
  const std::vector<float> scores = ScoreAll(scorer, *valid_);
  const double auc = RocAuc(scores, valid_->y);
  EXPECT_GT(auc, 0.9);
  // Each feature alone, in whichever direction ranks better.
  for (size_t c = 0; c < valid_->cols; ++c) {
    const double single = RocAuc(valid_->Column(c), valid_->y);
    EXPECT_GT(auc, std::max(single, 1 - single) + 0.05) << "feature " << c;
  }
  EXPECT_NEAR(model_->meta.valid_roc_auc, auc, 1e-9);
  EXPECT_GT(model_->meta.valid_pr_auc, 0.2);
}

TEST_F(ModelTest, MetadataDescribesTheTraining) {
  const ModelMeta& m = model_->meta;
  EXPECT_EQ(m.features, train_->names);
  EXPECT_EQ(m.label, "is_fraud");
  EXPECT_EQ(m.pipeline_hash, "feedbeef");
  EXPECT_EQ(m.window_last_us, 1'700'600'000'000'000);
  EXPECT_EQ(m.xgboost_version, "1.7.4");
  EXPECT_EQ(m.train.rows, 20000u);
  EXPECT_EQ(m.valid.rows, 8000u);
  EXPECT_NEAR(m.train.positive_rate, 0.02, 0.001);
  // Class imbalance: scale_pos_weight defaults to negatives / positives.
  EXPECT_NEAR(m.params.scale_pos_weight, (1 - m.train.positive_rate) / m.train.positive_rate, 1e-6);
  EXPECT_GT(m.trees, 10);
  EXPECT_LE(m.trees, kRounds);
  EXPECT_EQ(m.trees, m.best_iteration + 1);
  ASSERT_EQ(m.score_deciles.size(), 11u);
  EXPECT_TRUE(std::is_sorted(m.score_deciles.begin(), m.score_deciles.end()));
  EXPECT_GE(m.score_deciles.front(), 0);
  EXPECT_LE(m.score_deciles.back(), 1);
  EXPECT_FALSE(std::isnan(m.valid_precision_at_budget));
}

TEST_F(ModelTest, SaveLoadRoundTripGivesIdenticalScores) {
  std::string leaf = "vigil_model_test_";
  leaf += std::to_string(::getpid());
  const auto dir = std::filesystem::path(::testing::TempDir()) / leaf;
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "model.json").string();
  SaveModel(*model_, path);
  ASSERT_TRUE(std::filesystem::exists(dir / "model.meta.json"));
  const TrainedModel loaded = LoadModel(path);
  EXPECT_EQ(loaded.json, model_->json);
  EXPECT_EQ(FormatMeta(loaded.meta), FormatMeta(model_->meta));
  CheckFeatures(loaded.meta, train_->names, MetaPathFor(path));
  for (Engine e : {Engine::kXgboost, Engine::kNative}) {
    Scorer before(model_->json, e), after(loaded.json, e);
    EXPECT_EQ(ScoreAll(before, *valid_), ScoreAll(after, *valid_));
  }

  // A metadata file from another model (one more feature) is refused.
  ModelMeta other = loaded.meta;
  other.features.push_back("extra");
  SaveMeta(other, MetaPathFor(path));
  try {
    LoadModel(path);
    ADD_FAILURE() << "LoadModel accepted a mismatched metadata file";
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("the model reads 10 features but"));
  }
  std::filesystem::remove_all(dir);
  EXPECT_THROW(LoadModel(path), ModelError);
}

TEST_F(ModelTest, ContributionsSumToTheMargin) {
  Scorer scorer(model_->json, Engine::kNative);
  const std::vector<float> margins = ScoreAll(scorer, *valid_, true);
  std::vector<float> contrib(valid_->cols + 1);
  for (size_t r = 0; r < 300; ++r) {
    ASSERT_TRUE(
        scorer.Contributions(&valid_->x[r * valid_->cols], valid_->cols, contrib.data()).ok());
    double sum = 0;
    for (float c : contrib) sum += c;
    EXPECT_NEAR(sum, margins[r], 1e-4) << "row " << r;
  }
  // The features the label depends on carry the most weight, summed over rows.
  std::vector<double> weight(valid_->cols, 0);
  for (size_t r = 0; r < 300; ++r) {
    ASSERT_TRUE(
        scorer.Contributions(&valid_->x[r * valid_->cols], valid_->cols, contrib.data()).ok());
    for (size_t c = 0; c < valid_->cols; ++c) weight[c] += std::abs(contrib[c]);
  }
  for (size_t c = 3; c < valid_->cols; ++c) EXPECT_GT(weight[2], weight[c]) << c;
}

TEST_F(ModelTest, NativeEvaluatorEqualsXgboost) {
  // Rows with NaN in every column, values on split thresholds and extremes as well.
  Synthetic rows = Synthetic::Make(20000, 10, 3);
  for (size_t r = 0; r < rows.rows; r += 7) rows.x[r * rows.cols + (r % rows.cols)] = NAN;
  for (size_t r = 3; r < rows.rows; r += 11) rows.x[r * rows.cols + (r % rows.cols)] = 1e30f;
  Scorer xgb(model_->json, Engine::kXgboost), native(model_->json, Engine::kNative);
  for (bool margin : {false, true}) {
    const std::vector<float> a = ScoreAll(xgb, rows, margin), b = ScoreAll(native, rows, margin);
    const double max_diff = MaxDiff(a, b);
    EXPECT_LE(max_diff, 1e-6) << (margin ? "margin" : "probability");
    RecordProperty(margin ? "max_diff_margin" : "max_diff_probability", std::to_string(max_diff));
  }
  // Batches of every size agree with one big batch.
  std::vector<float> whole = ScoreAll(native, rows), part(64);
  for (size_t n : {1, 3, 64}) {
    ASSERT_TRUE(native.Score(rows.x.data(), n, rows.cols, part.data()).ok());
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(part[i], whole[i]);
  }
}

// Native TreeSHAP against XGBoost's pred_contribs, feature by feature, on rows with missing
// values (one column in every row of seven, and every column in a few rows), extremes, and
// the validation rows; and the native values sum to the native margin.
TEST_F(ModelTest, NativeContributionsEqualXgboost) {
  Synthetic rows = Synthetic::Make(1500, 10, 13);
  for (size_t r = 0; r < rows.rows; r += 7) rows.x[r * rows.cols + (r % rows.cols)] = NAN;
  for (size_t r = 3; r < rows.rows; r += 11) rows.x[r * rows.cols + (r % rows.cols)] = 1e30f;
  for (size_t r = 5; r < rows.rows; r += 97) {
    std::fill_n(&rows.x[r * rows.cols], rows.cols, NAN);
  }
  Scorer xgb(model_->json, Engine::kXgboost), native(model_->json, Engine::kNative);
  const std::vector<float> margins = ScoreAll(native, rows, true);
  std::vector<float> a(rows.cols + 1), b(rows.cols + 1);
  double max_diff = 0, max_sum_diff = 0;
  size_t with_missing = 0;
  for (const Synthetic* s : {&rows, valid_}) {
    const size_t n = s == valid_ ? 500 : s->rows;
    for (size_t r = 0; r < n; ++r) {
      const float* row = &s->x[r * s->cols];
      ASSERT_TRUE(xgb.Contributions(row, s->cols, a.data()).ok());
      ASSERT_TRUE(native.Contributions(row, s->cols, b.data()).ok());
      for (size_t c = 0; c <= s->cols; ++c) {
        ASSERT_NEAR(a[c], b[c], 1e-5) << "row " << r << " column " << c;
      }
      max_diff = std::max(max_diff, MaxDiff(a, b));
      with_missing += std::any_of(row, row + s->cols, [](float v) { return std::isnan(v); });
      if (s == &rows) {
        double sum = 0;
        for (float c : b) sum += c;
        max_sum_diff = std::max(max_sum_diff, std::abs(sum - margins[r]));
      }
    }
  }
  EXPECT_LE(max_sum_diff, 1e-4);
  EXPECT_GT(with_missing, 200u);
  char text[64];
  std::snprintf(text, sizeof(text), "%.3g", max_diff);
  RecordProperty("max_diff", text);
  std::snprintf(text, sizeof(text), "%.3g", max_sum_diff);
  RecordProperty("max_sum_diff", text);
}

TEST_F(ModelTest, NativeEvaluatorUsesTheCompleteLayoutForDepthSix) {
  EXPECT_EQ(model_internal::Forest::FromJson(model_->json).complete_depth(), 6);
}

TEST(NativeTest, DeepTreesFallBackToTheNodeWalkAndAgree) {
  const Synthetic s = Synthetic::Make(5000, 6, 5, 0.2);
  TrainInput in;
  in.train = {s.x.data(), s.rows, s.cols};
  in.train_labels = s.y;
  in.feature_names = s.names;
  TrainParams p;
  p.rounds = 5;
  p.max_depth = 12;
  p.min_child_weight = 0;
  p.nthread = 1;
  const TrainedModel m = Train(in, p);
  const model_internal::Forest forest = model_internal::Forest::FromJson(m.json);
  ASSERT_EQ(forest.complete_depth(), -1) << "expected trees deeper than the complete layout";
  Scorer xgb(m.json, Engine::kXgboost), native(m.json, Engine::kNative);
  std::vector<float> a(s.rows), b(s.rows);
  ASSERT_TRUE(xgb.Margin(s.x.data(), s.rows, s.cols, a.data()).ok());
  ASSERT_TRUE(native.Margin(s.x.data(), s.rows, s.cols, b.data()).ok());
  EXPECT_LE(MaxDiff(a, b), 1e-6);
  // TreeSHAP over deep trees (paths of 12 splits, features met several times on a path).
  std::vector<float> ca(s.cols + 1), cb(s.cols + 1);
  for (size_t r = 0; r < 300; ++r) {
    ASSERT_TRUE(xgb.Contributions(&s.x[r * s.cols], s.cols, ca.data()).ok());
    ASSERT_TRUE(native.Contributions(&s.x[r * s.cols], s.cols, cb.data()).ok());
    EXPECT_LE(MaxDiff(ca, cb), 1e-5) << "row " << r;
  }
}

TEST_F(ModelTest, WrongWidthIsAnErrorValue) {
  for (Engine e : {Engine::kXgboost, Engine::kNative}) {
    Scorer scorer(model_->json, e);
    EXPECT_EQ(scorer.num_features(), 10u);
    float out[2];
    const Status st = scorer.Score(valid_->x.data(), 2, 9, out);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, Errc::kShape);
    EXPECT_EQ(st.error().message, "rows have 9 features, the model reads 10");
    float contrib[10];
    EXPECT_EQ(scorer.Contributions(valid_->x.data(), 9, contrib).error().code, Errc::kShape);
  }
}

TEST(TrainTest, RefusesBadInput) {
  const Synthetic s = Synthetic::Make(200, 3, 4, 0.1);
  TrainInput in;
  in.train = {s.x.data(), s.rows, s.cols};
  in.train_labels = s.y;
  in.feature_names = s.names;
  TrainParams p;
  p.rounds = 2;
  std::vector<float> bad = s.y;
  bad[17] = 2;
  in.train_labels = bad;
  try {
    Train(in, p);
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("label of row 17 is 2"));
  }
  std::vector<float> zeros(s.rows, 0);
  in.train_labels = zeros;
  EXPECT_THROW(Train(in, p), ModelError);
  in.train_labels = s.y;
  in.feature_names.pop_back();
  try {
    Train(in, p);
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("has 3 columns but there are 2 feature names"));
  }
  in.feature_names = s.names;
  // Without a validation set every round is kept.
  const TrainedModel m = Train(in, p);
  EXPECT_EQ(m.meta.trees, 2);
  EXPECT_EQ(m.meta.best_iteration, -1);
  EXPECT_TRUE(std::isnan(m.meta.valid_roc_auc));
}

TEST(ScorerTest, RefusesAModelItCannotRead) {
  try {
    Scorer scorer("{\"not\": \"a model\"}");
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("xgboost: loading the model"));
  }
}

}  // namespace
}  // namespace vigil::model
