#include "vigil/model/metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

namespace vigil::model {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool Positive(float label) { return label > 0.5f; }

// Scores with NaN replaced by -infinity, so that a NaN score ranks lowest and sorting is
// well defined.
std::vector<float> Keys(std::span<const float> scores) {
  std::vector<float> keys(scores.begin(), scores.end());
  for (float& k : keys) {
    if (std::isnan(k)) k = -std::numeric_limits<float>::infinity();
  }
  return keys;
}

// Indices of the events sorted by key, highest first.
std::vector<uint32_t> ByScoreDescending(const std::vector<float>& scores) {
  std::vector<uint32_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return scores[a] > scores[b]; });
  return order;
}

}  // namespace

double Confusion::precision() const { return alerts() > 0 ? tp / alerts() : kNaN; }
double Confusion::recall() const { return tp + fn > 0 ? tp / (tp + fn) : kNaN; }

double RocAuc(std::span<const float> raw, std::span<const float> labels) {
  assert(raw.size() == labels.size() && "RocAuc: scores and labels differ in length");
  const std::vector<float> scores = Keys(raw);
  const std::vector<uint32_t> order = ByScoreDescending(scores);
  const size_t n = order.size();
  // Walk from the lowest score up, giving each group of ties the average of its ranks
  // (ranks start at 1 for the lowest score).
  double positive_rank_sum = 0;
  double positives = 0;
  size_t end = n;  // groups are [begin, end) in `order`, scanned from the back
  while (end > 0) {
    size_t begin = end - 1;
    while (begin > 0 && scores[order[begin - 1]] == scores[order[end - 1]]) --begin;
    const double low_rank = static_cast<double>(n - end + 1);
    const double high_rank = static_cast<double>(n - begin);
    const double average = (low_rank + high_rank) / 2;
    for (size_t i = begin; i < end; ++i) {
      if (Positive(labels[order[i]])) {
        positive_rank_sum += average;
        positives += 1;
      }
    }
    end = begin;
  }
  const double negatives = static_cast<double>(n) - positives;
  if (positives == 0 || negatives == 0) return kNaN;
  return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

double PrAuc(std::span<const float> raw, std::span<const float> labels) {
  assert(raw.size() == labels.size() && "PrAuc: scores and labels differ in length");
  const std::vector<float> scores = Keys(raw);
  const std::vector<uint32_t> order = ByScoreDescending(scores);
  double total_positives = 0;
  for (float l : labels) total_positives += Positive(l) ? 1 : 0;
  if (total_positives == 0) return kNaN;
  double ap = 0, tp = 0, seen = 0;
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin;
    double group_tp = 0;
    while (end < order.size() && scores[order[end]] == scores[order[begin]]) {
      group_tp += Positive(labels[order[end]]) ? 1 : 0;
      ++end;
    }
    tp += group_tp;
    seen += static_cast<double>(end - begin);
    ap += (group_tp / total_positives) * (tp / seen);
    begin = end;
  }
  return ap;
}

Confusion AtThreshold(std::span<const float> scores, std::span<const float> labels,
                      double threshold) {
  assert(scores.size() == labels.size() && "AtThreshold: scores and labels differ in length");
  // Compared in float, the scores' own precision: a threshold of 0.35 alerts a score of 0.35f
  // (which is a little below the double 0.35).
  const float cut = static_cast<float>(threshold);
  Confusion c;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool alert = scores[i] >= cut;
    const bool positive = Positive(labels[i]);
    (alert ? (positive ? c.tp : c.fp) : (positive ? c.fn : c.tn)) += 1;
  }
  return c;
}

Confusion AtBudget(std::span<const float> raw, std::span<const float> labels, double fraction) {
  assert(raw.size() == labels.size() && "AtBudget: scores and labels differ in length");
  const std::vector<float> scores = Keys(raw);
  const size_t n = scores.size();
  const double clamped = std::clamp(fraction, 0.0, 1.0);
  // A tiny tolerance keeps 0.005 * 1000 = 5 (not 6 through rounding up 5.0000000001).
  const size_t k = std::min(n, static_cast<size_t>(std::ceil(clamped * n - 1e-9)));
  double positives = 0;
  for (float l : labels) positives += Positive(l) ? 1 : 0;
  Confusion c;
  if (k > 0) {
    const std::vector<uint32_t> order = ByScoreDescending(scores);
    const float cut = scores[order[k - 1]];
    size_t above = 0;  // events strictly above the cut: all alerted
    double tp_above = 0;
    while (above < n && scores[order[above]] > cut) {
      tp_above += Positive(labels[order[above]]) ? 1 : 0;
      ++above;
    }
    size_t tied = 0;
    double tp_tied = 0;
    while (above + tied < n && scores[order[above + tied]] == cut) {
      tp_tied += Positive(labels[order[above + tied]]) ? 1 : 0;
      ++tied;
    }
    const double share = static_cast<double>(k - above) / static_cast<double>(tied);
    c.tp = tp_above + tp_tied * share;
    c.fp = static_cast<double>(k) - c.tp;
  }
  c.fn = positives - c.tp;
  c.tn = static_cast<double>(n) - positives - c.fp;
  return c;
}

std::vector<double> QuantileEdges(std::span<const float> scores, int bins) {
  std::vector<float> sorted;
  sorted.reserve(scores.size());
  for (float s : scores) {
    if (!std::isnan(s)) sorted.push_back(s);
  }
  if (sorted.empty() || bins <= 0) return {};
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> edges;
  edges.reserve(static_cast<size_t>(bins) + 1);
  const size_t n = sorted.size();
  for (int b = 0; b <= bins; ++b) {
    // Nearest rank: the smallest value with at least q * n values at or below it.
    const double q = static_cast<double>(b) / bins;
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(n) - 1e-9));
    rank = std::clamp<size_t>(rank, 1, n);
    edges.push_back(sorted[rank - 1]);
  }
  return edges;
}

}  // namespace vigil::model
