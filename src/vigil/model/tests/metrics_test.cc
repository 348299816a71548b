#include "vigil/model/metrics.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace vigil::model {
namespace {

// Hand-computed cases. Scores {0.1, 0.4, 0.35, 0.8} with labels {0, 0, 1, 1}: of the four
// (positive, negative) pairs, three are ordered right (0.35 > 0.1, 0.8 > 0.1, 0.8 > 0.4).
const std::vector<float> kScores = {0.1f, 0.4f, 0.35f, 0.8f};
const std::vector<float> kLabels = {0, 0, 1, 1};

TEST(RocAucTest, CountsOrderedPairs) { EXPECT_DOUBLE_EQ(RocAuc(kScores, kLabels), 0.75); }

TEST(RocAucTest, TiesCountHalf) {
  // Pairs: (0.5 vs 0.1) 1, (0.5 vs 0.5) 1/2, (0.9 vs 0.1) 1, (0.9 vs 0.5) 1: 3.5 / 4.
  EXPECT_DOUBLE_EQ(
      RocAuc(std::vector<float>{0.1f, 0.5f, 0.5f, 0.9f}, std::vector<float>{0, 0, 1, 1}), 0.875);
  EXPECT_DOUBLE_EQ(RocAuc(std::vector<float>(4, 0.3f), std::vector<float>{0, 1, 0, 1}), 0.5);
}

TEST(RocAucTest, PerfectInvertedAndOneClass) {
  EXPECT_DOUBLE_EQ(RocAuc(std::vector<float>{1, 2, 3}, std::vector<float>{0, 0, 1}), 1.0);
  EXPECT_DOUBLE_EQ(RocAuc(std::vector<float>{3, 2, 1}, std::vector<float>{0, 0, 1}), 0.0);
  EXPECT_TRUE(std::isnan(RocAuc(std::vector<float>{1, 2}, std::vector<float>{0, 0})));
}

TEST(RocAucTest, NanScoresRankLowest) {
  EXPECT_DOUBLE_EQ(
      RocAuc(std::vector<float>{std::nanf(""), 0.2f, 0.1f}, std::vector<float>{0, 1, 0}), 1.0);
}

TEST(PrAucTest, AveragePrecision) {
  // Descending: 0.8 (+) 0.4 (-) 0.35 (+) 0.1 (-): 0.5 * 1 + 0.5 * 2/3.
  EXPECT_NEAR(PrAuc(kScores, kLabels), 0.5 + 1.0 / 3, 1e-12);
}

TEST(PrAucTest, TiedScoresAreOneThreshold) {
  // 0.9 (+): 0.5 * 1; {0.5 (-), 0.5 (+)} together: 0.5 * 2/3.
  EXPECT_NEAR(PrAuc(std::vector<float>{0.9f, 0.5f, 0.5f, 0.1f}, std::vector<float>{1, 0, 1, 0}),
              0.5 + 1.0 / 3, 1e-12);
  EXPECT_TRUE(std::isnan(PrAuc(std::vector<float>{1, 2}, std::vector<float>{0, 0})));
}

TEST(ConfusionTest, AtThreshold) {
  const Confusion c = AtThreshold(kScores, kLabels, 0.35);
  EXPECT_EQ(c.tp, 2);
  EXPECT_EQ(c.fp, 1);
  EXPECT_EQ(c.fn, 0);
  EXPECT_EQ(c.tn, 1);
  EXPECT_DOUBLE_EQ(c.precision(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(c.recall(), 1.0);
  EXPECT_TRUE(std::isnan(AtThreshold(kScores, kLabels, 2).precision()));
}

TEST(ConfusionTest, AtBudgetTopK) {
  std::vector<float> scores, labels(10, 0);
  for (int i = 0; i < 10; ++i) scores.push_back(static_cast<float>(i));
  labels[9] = labels[7] = 1;
  const Confusion c = AtBudget(scores, labels, 0.2);  // alerts 9 and 8
  EXPECT_EQ(c.tp, 1);
  EXPECT_EQ(c.fp, 1);
  EXPECT_EQ(c.fn, 1);
  EXPECT_EQ(c.tn, 7);
  EXPECT_DOUBLE_EQ(c.precision(), 0.5);
  EXPECT_DOUBLE_EQ(c.recall(), 0.5);
}

TEST(ConfusionTest, AtBudgetSplitsTiesAtTheCut) {
  // k = 2: 0.9 is in; one of the three 0.5s is, and one of those three is positive, so the
  // expected true positives are 1/3.
  const Confusion c = AtBudget(std::vector<float>{0.9f, 0.5f, 0.5f, 0.5f, 0.1f},
                               std::vector<float>{0, 1, 0, 0, 1}, 0.4);
  EXPECT_NEAR(c.tp, 1.0 / 3, 1e-12);
  EXPECT_NEAR(c.fp, 5.0 / 3, 1e-12);
  EXPECT_NEAR(c.fn, 5.0 / 3, 1e-12);
  EXPECT_NEAR(c.tn, 4.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(c.alerts(), 2);
}

TEST(ConfusionTest, AtBudgetHalfPercent) {
  std::vector<float> scores(1000), labels(1000, 0);
  for (int i = 0; i < 1000; ++i) scores[i] = static_cast<float>(i);
  labels[999] = labels[995] = labels[990] = 1;
  const Confusion c = AtBudget(scores, labels, 0.005);  // exactly 5 alerts: 995..999
  EXPECT_EQ(c.alerts(), 5);
  EXPECT_EQ(c.tp, 2);
  EXPECT_DOUBLE_EQ(c.recall(), 2.0 / 3);
}

TEST(QuantileEdgesTest, NearestRank) {
  std::vector<float> scores;
  for (int i = 10; i >= 1; --i) scores.push_back(static_cast<float>(i));
  scores.push_back(std::nanf(""));  // skipped
  const std::vector<double> edges = QuantileEdges(scores, 10);
  const std::vector<double> want = {1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(edges, want);
  EXPECT_TRUE(QuantileEdges({}, 10).empty());
}

}  // namespace
}  // namespace vigil::model
