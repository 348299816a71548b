#pragma once

#include <cassert>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace vigil::features_internal {

// Exponentially weighted (time-decayed) mean and variance of a value, in event time. A value
// seen dt before another has 2^(-dt / half_life) of its weight. Plain data (32 bytes, trivially
// copyable) so it lives directly in an entity's state blob; initialise with `EwStats{}`. One
// thread owns a state.
//
// The half-life is not stored (the feature's spec holds it): pass the same half_life_us (> 0)
// to every Update of a state. Mean/variance are ratios of decayed sums, so decay changes only
// `weight`; Update applies it lazily, from last_us to the new event's time. Call the readers
// before Update to get the statistics of the history before the event.
struct EwStats {
  double weight = 0;  // decayed sum of weights, as of last_us
  double mean = 0;    // weighted mean
  double var = 0;     // weighted population variance
  int64_t last_us = 0;

  // Adds x observed at t_us. West's weighted incremental update (stable: no sum of squares):
  // with r = w / W', mean += r * (x - mean) and var = (1 - r) * (var + r * (x - mean_old)^2).
  // An event older than last_us (out of order) is added with weight 2^(-(last_us - t)/h)
  // instead of decaying the history, which gives the same result as in-order arrival.
  void Update(int64_t t_us, double x, int64_t half_life_us) {
    assert(half_life_us > 0 && "EwStats needs a positive half-life");
    double w = 1.0;
    if (weight == 0) {
      last_us = t_us;
    } else if (t_us >= last_us) {
      weight *= std::exp2(-static_cast<double>(t_us - last_us) / static_cast<double>(half_life_us));
      last_us = t_us;
    } else {
      w = std::exp2(-static_cast<double>(last_us - t_us) / static_cast<double>(half_life_us));
    }
    const double total = weight + w;
    const double r = w / total;
    const double delta = x - mean;
    mean += r * delta;
    var = (1 - r) * (var + r * delta * delta);
    weight = total;
  }

  // Weighted mean; NaN before the first Update.
  double Mean() const { return weight > 0 ? mean : std::numeric_limits<double>::quiet_NaN(); }

  // Weighted population standard deviation; NaN before the first Update, 0 after one value.
  double Stddev() const {
    return weight > 0 ? std::sqrt(var) : std::numeric_limits<double>::quiet_NaN();
  }

  // (x - Mean()) / Stddev(). NaN when there is no history (weight 0) or the history has no
  // spread (stddev 0, e.g. a single value or all-equal values): a z-score is undefined there,
  // and NaN, unlike +-inf, makes every comparison in a rule false.
  double ZScore(double x) const {
    const double sd = Stddev();
    if (!(sd > 0)) return std::numeric_limits<double>::quiet_NaN();
    return (x - mean) / sd;
  }
};

static_assert(sizeof(EwStats) == 32 && std::is_trivially_copyable_v<EwStats>);

}  // namespace vigil::features_internal
