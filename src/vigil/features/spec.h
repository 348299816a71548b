#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vigil/config/pipeline.h"

namespace vigil::features {

// What a feature computes. Window ops aggregate the events of a sliding window that ends at
// the event (the event included); history ops describe the entity's past before the event.
enum class Op : uint8_t {
  kCount,          // window: events
  kSum,            // window: sum of `of`
  kAvg,            // window: mean of `of`
  kMin,            // window: minimum of `of`
  kMax,            // window: maximum of `of`
  kStddev,         // window: population standard deviation of `of`
  kDistinct,       // window: distinct values of `of` (exact to 16, then HyperLogLog)
  kIsNew,          // 1 if `of`'s value was not among the entity's last `capacity` distinct values
  kLast,           // `of` on the entity's previous event (NaN if none)
  kTimeSinceLast,  // seconds since the entity's previous event (NaN if none)
  kEwma,           // exponentially weighted mean of `of` before this event (half_life)
  kZscore,         // (of - ewma) / ew-stddev, from the history before this event
  kGeoDistance,    // km from the previous event's lat/lon (haversine)
  kGeoSpeed,       // km/h implied from the previous event
  kRatio,          // a / b: two fields or features of this pipeline (NaN if b is 0)
  kDiff,           // a - b
  kAnomaly,        // largest |robust z| of `inputs` against the entity's last `capacity` values
};

// A filter on which events a window or history feature counts: `field op value`.
struct Where {
  enum class Cmp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };
  int field = -1;  // input field index
  Cmp cmp = Cmp::kEq;
  double number = 0;  // for numeric fields
  std::string text;   // for string fields (kEq / kNe only)
  bool numeric = true;
};

struct FeatureSpec {
  std::string name;
  Op op = Op::kCount;
  int entity = -1;           // index into Spec::entities (-1 for kRatio / kDiff)
  int of = -1;               // input field index (window and history ops)
  int lat = -1, lon = -1;    // input field indices (geo ops)
  int64_t window_us = 0;     // window ops
  int64_t step_us = 0;       // window ops: bucket width; the window moves in these steps
  int64_t half_life_us = 0;  // ewma / zscore
  int capacity = 32;         // is_new: distinct values remembered; anomaly: values per input
  int min_history = 8;       // anomaly: values an input needs before it scores
  std::optional<Where> where;
  // kRatio / kDiff operands: either an input field or an earlier feature.
  int a_field = -1, a_feature = -1, b_field = -1, b_feature = -1;
  // kAnomaly inputs: each an input field or an earlier feature of the same entity.
  struct Input {
    int field = -1, feature = -1;
  };
  std::vector<Input> inputs;
};

struct EntitySpec {
  std::string name;    // e.g. "card"
  int field = -1;      // the string field whose value identifies the entity
  int64_t ttl_us = 0;  // idle entities are forgotten after this long in event time (0: never)
};

// Spec is the parsed `entities:` and `features:` sections. Built at start-up from the
// pipeline; read-only afterwards and shared by all workers.
struct Spec {
  std::vector<EntitySpec> entities;
  std::vector<FeatureSpec> features;
  bool empty() const { return features.empty(); }
  int FeatureIndex(std::string_view name) const;
};

// Parses the sections; throws config::ConfigError with file:line:col diagnostics.
Spec ParseSpec(const config::Pipeline& pipeline);

}  // namespace vigil::features
