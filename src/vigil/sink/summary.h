#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "vigil/decide/decision.h"
#include "vigil/decode/errc.h"

namespace vigil::sink {

// Counters of one run. Every record read ends in exactly one of decided, dead_lettered,
// duplicate or late, so `read == decided + dead_lettered + duplicate + late` always holds
// (Reconciles()). A plain value: copy it to publish a snapshot.
struct RunSummary {
  uint64_t read = 0;
  uint64_t decided = 0;
  uint64_t dead_lettered = 0;
  uint64_t duplicate = 0;
  uint64_t late = 0;
  uint64_t alerts = 0;
  std::array<uint64_t, decide::kOutcomeCount> by_outcome{};
  std::array<uint64_t, decode::kErrcCount> dead_by_reason{};
  double elapsed_seconds = 0;
  int64_t watermark_us = 0;
  uint64_t state_entities = 0;  // gauges, not summed by Add: entities held, bytes of state
  uint64_t state_bytes = 0;
  // Decisions by the training-score decile their model score fell in (all 0 without a
  // model): live scores spread evenly over them while the model sees what it was trained on.
  std::array<uint64_t, 10> model_deciles{};
  // Population stability index of model_deciles against the training deciles (a tenth each):
  // under 0.1 stable, 0.1-0.25 drifting, over 0.25 shifted. NaN without model scores.
  double ModelPsi() const;
  // The shadow challenger beside the champion (all 0 without one): decisions it scored, the
  // sum of |challenger - champion| probabilities, and decisions whose alert/no-alert outcome
  // would have differed with the challenger's score in the champion's place.
  uint64_t challenger_scored = 0;
  double challenger_abs_diff = 0;
  uint64_t challenger_disagree = 0;
  // Fires per rule id (shadow rules included), counted on the writer thread per batch.
  std::map<std::string, uint64_t, std::less<>> rule_hits;
  // Partitioned sources (Kafka), gauges set by the engine's writer: how far behind the
  // partitions' ends the run is, rebalances and rewinds seen, records replayed to rebuild
  // state (not counted in `read`), transactions committed and aborted, the last commit's
  // duration and the time the last restore (replay up to the committed positions) took.
  struct Stream {
    bool partitioned = false;
    int64_t consumer_lag = -1;  // -1: not known yet
    int partitions = 0;         // assigned now
    uint64_t rebalances = 0;
    uint64_t replayed = 0;
    uint64_t commits = 0;
    uint64_t aborts = 0;
    double last_commit_ms = 0;
    double restore_seconds = 0;
  } stream;
  std::string input;
  bool completed = false;  // false when interrupted (signal, --events cut-off is still complete)

  bool Reconciles() const { return read == decided + dead_lettered + duplicate + late; }
  // Share of the valid, non-duplicate events that arrived before their window closed (i.e.
  // were not late): decided / (decided + late); 1 when there were none.
  double WindowCompleteness() const {
    return decided + late > 0 ? static_cast<double>(decided) / static_cast<double>(decided + late)
                              : 1.0;
  }
  double EventsPerSecond() const { return elapsed_seconds > 0 ? read / elapsed_seconds : 0; }
  void Add(const RunSummary& other);
};

// The summary as one JSON object with integer keys read, decided, dead_lettered, duplicate,
// late, alerts, and events_per_second, outcomes and dead-letter reasons.
std::string SummaryJson(const RunSummary& s);
// {"rule id": fires, ...}
std::string RuleHitsJson(const RunSummary& s);
// The summary for people, several lines.
std::string SummaryText(const RunSummary& s);
// One progress line (no newline) for a terminal.
std::string ProgressLine(const RunSummary& s, double events_per_second);

}  // namespace vigil::sink
