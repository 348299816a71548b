#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "vigil/decide/decision.h"
#include "vigil/decode/errc.h"

namespace vigil::sink {

// A latency distribution over fixed buckets suited to 1 ms - 10 s, for the Prometheus
// histogram of ingest-to-decision latency. A plain value: Observe neither allocates nor
// locks, so one thread (the engine's writer) owns it and publishes copies.
struct LatencyHistogram {
  // Upper bounds in seconds; counts has one more slot for everything above the last.
  static constexpr std::array<double, 13> kBounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                  0.25,  0.5,    1,     2.5,  5,     10};
  std::array<uint64_t, kBounds.size() + 1> counts{};  // per bucket, not cumulative
  uint64_t count = 0;
  double sum = 0;  // seconds

  // `n` observations of `seconds` each (n == 0: nothing).
  void Observe(double seconds, uint64_t n = 1) {
    if (n == 0) return;
    size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    counts[i] += n;
    count += n;
    sum += seconds * static_cast<double>(n);
  }
  void Add(const LatencyHistogram& o) {
    for (size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
    count += o.count;
    sum += o.sum;
  }
};

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
  // The same per entity type of the pipeline (`entities:`), in the pipeline's order.
  struct EntityState {
    std::string name;
    uint64_t entities = 0;
    uint64_t bytes = 0;
  };
  std::vector<EntityState> state_by_entity;
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
    uint64_t snapshots = 0;       // partition state snapshots written
    uint64_t snapshot_bytes = 0;  // ... and their size
    // Time decisions waited while the workers copied partition state into snapshots (per
    // snapshot turn, the slowest worker), and the writer's time assembling and handing them
    // to the producer (the transaction's other outputs wait behind it).
    double snapshot_pause_seconds = 0;
    double snapshot_send_seconds = 0;
    uint64_t restored = 0;  // partitions restored from a snapshot (not from their start)
    uint64_t kept = 0;      // partitions assigned back by a rebalance, state kept
    // Seconds from the start of the run to reading its first new record: joining the group,
    // the committed offsets, any restore. -1 until then.
    double first_record_seconds = -1;
  } stream;
  // From the router reading a batch's records to the writer writing their decisions, one
  // observation per decision at its batch's latency (set by the writer; not restored from a
  // checkpoint). With event-time ordering, the time an event is held back is not included.
  LatencyHistogram decision_latency;
  // Gauges sampled by the writer about once a second: batches waiting in each worker's work
  // queue, in the writer's done queue, and done but held for source order (reorder).
  struct Queues {
    std::vector<uint32_t> work;  // by worker
    uint64_t done = 0;
    uint64_t reorder = 0;
  } queues;
  // Checkpoints committed by this run, and the wall time of the last one (0: none yet).
  uint64_t checkpoints = 0;
  int64_t checkpoint_unix_us = 0;
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
