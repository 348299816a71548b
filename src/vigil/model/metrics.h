#pragma once

#include <cstdint>
#include <span>
#include <vector>

// Ranking and alerting metrics for a binary score: pure C++, no XGBoost. `scores` and
// `labels` have one entry per event; a label is positive when > 0.5. Higher score = more
// suspicious; a NaN score ranks below every other score (QuantileEdges skips it). Evaluation work
// (vigil eval, training reports): they sort and allocate.
namespace vigil::model {

// ROC-AUC: the probability that a random positive scores above a random negative, ties
// counting one half (Mann-Whitney U with rank averages). NaN without both classes.
double RocAuc(std::span<const float> scores, std::span<const float> labels);

// PR-AUC as average precision: sum over distinct score thresholds, from the highest down, of
// (recall gained) x (precision there); tied scores form one threshold. NaN without positives.
double PrAuc(std::span<const float> scores, std::span<const float> labels);

// Counts of an alerting rule. Counts are doubles because AtBudget splits ties fractionally.
struct Confusion {
  double tp = 0, fp = 0, fn = 0, tn = 0;
  double alerts() const { return tp + fp; }
  double precision() const;  // tp / (tp + fp); NaN with no alerts
  double recall() const;     // tp / (tp + fn); NaN with no positives
};

// Alert when score >= threshold, compared in float (the scores' precision).
Confusion AtThreshold(std::span<const float> scores, std::span<const float> labels,
                      double threshold);

// Alert the top `fraction` of events by score (e.g. 0.005 = 0.5%): k = ceil(fraction * n)
// alerts. Events tied at the cut are split in proportion (the expected counts under random
// tie-breaking), so the result does not depend on input order.
Confusion AtBudget(std::span<const float> scores, std::span<const float> labels, double fraction);

// `bins + 1` quantile edges of `scores` (min, ..., max), by the nearest-rank method; empty
// for no scores. With bins = 10 these are the deciles ModelMeta::score_deciles keeps.
std::vector<double> QuantileEdges(std::span<const float> scores, int bins);

}  // namespace vigil::model
