#include "vigil/model/meta.h"

#include <cmath>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vigil::model {
namespace {

using ::testing::HasSubstr;

ModelMeta Sample() {
  ModelMeta m;
  m.features = {"card_txn_10m", "card_amount_1h", "quote\"d"};
  m.label = "is_fraud";
  m.window_first_us = 1'700'000'000'000'000;
  m.window_last_us = 1'700'086'400'000'000;
  m.pipeline_hash = "ab12cd34";
  m.params.seed = 18'446'744'073'709'551'615ull;
  m.params.scale_pos_weight = 49.0;
  m.params.stop_metric = StopMetric::kRocAuc;
  m.trees = 123;
  m.best_iteration = 122;
  m.xgboost_version = "1.7.4";
  m.train = {20000, 0.02};
  m.valid = {8000, 0.0195};
  m.valid_roc_auc = 0.97;
  m.valid_pr_auc = 0.61;
  m.valid_precision_at_budget = 0.9;
  m.valid_recall_at_budget = std::nan("");  // written as null, read back as NaN
  m.score_deciles = {0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.1, 0.2, 0.5, 0.99};
  return m;
}

TEST(MetaTest, PathBesideTheModel) {
  EXPECT_EQ(MetaPathFor("dir/model.json"), "dir/model.meta.json");
  EXPECT_EQ(MetaPathFor("model"), "model.meta.json");
}

TEST(MetaTest, RoundTrip) {
  const ModelMeta m = Sample();
  const ModelMeta back = ParseMeta(FormatMeta(m), "model.meta.json");
  EXPECT_EQ(back.features, m.features);
  EXPECT_EQ(back.label, m.label);
  EXPECT_EQ(back.window_first_us, m.window_first_us);
  EXPECT_EQ(back.window_last_us, m.window_last_us);
  EXPECT_EQ(back.pipeline_hash, m.pipeline_hash);
  EXPECT_EQ(back.params.seed, m.params.seed);
  EXPECT_EQ(back.params.scale_pos_weight, 49.0);
  EXPECT_EQ(back.params.stop_metric, StopMetric::kRocAuc);
  EXPECT_EQ(back.params.max_depth, 6);
  EXPECT_EQ(back.trees, 123);
  EXPECT_EQ(back.best_iteration, 122);
  EXPECT_EQ(back.xgboost_version, "1.7.4");
  EXPECT_EQ(back.train.rows, 20000u);
  EXPECT_EQ(back.valid.positive_rate, 0.0195);
  EXPECT_EQ(back.valid_roc_auc, 0.97);
  EXPECT_TRUE(std::isnan(back.valid_recall_at_budget));
  EXPECT_EQ(back.score_deciles, m.score_deciles);
  // Formatting is stable: what was read formats to the same text.
  EXPECT_EQ(FormatMeta(back), FormatMeta(m));
}

TEST(MetaTest, ParseErrorsNameTheFileAndKey) {
  try {
    ParseMeta(R"({"format": 1, "features": ["a"]})", "m.meta.json");
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_STREQ(e.what(), "m.meta.json: label is missing");
  }
  std::string text = FormatMeta(Sample());
  text.replace(text.find("\"eta\": 0.1"), 10, "\"eta\": \"x\"");
  EXPECT_THROW(
      {
        try {
          ParseMeta(text, "m.meta.json");
        } catch (const ModelError& e) {
          EXPECT_STREQ(e.what(), "m.meta.json: params.eta is not a number");
          throw;
        }
      },
      ModelError);
  EXPECT_THROW(ParseMeta("{", "m.meta.json"), ModelError);
  EXPECT_THROW(ParseMeta(R"({"format": 2})", "m.meta.json"), ModelError);
}

std::string Refusal(const std::vector<std::string>& model,
                    const std::vector<std::string>& pipeline) {
  ModelMeta m;
  m.features = model;
  try {
    CheckFeatures(m, pipeline, "model.meta.json");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

TEST(MetaTest, FeatureMismatchIsRefusedNamingTheFirstDifference) {
  EXPECT_EQ(Refusal({"a", "b", "c", "card_txn_1h"}, {"a", "b", "c", "card_amount_1h"}),
            "model.meta.json: feature 3 is 'card_txn_1h' in the model but 'card_amount_1h' in "
            "the pipeline; retrain with vigil train");
  EXPECT_EQ(Refusal({"a", "b"}, {"a"}),
            "model.meta.json: feature 1 is 'b' in the model but the pipeline has only 1 "
            "feature; retrain with vigil train");
  EXPECT_THAT(Refusal({"a"}, {"a", "z"}), HasSubstr("feature 1 is 'z' in the pipeline"));
  EXPECT_EQ(Refusal({"a", "b"}, {"a", "b"}), "");
}

}  // namespace
}  // namespace vigil::model
