#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/config/pipeline.h"
#include "vigil/decide/decision.h"
#include "vigil/engine/checkpoint.h"
#include "vigil/features/spec.h"
#include "vigil/sink/alert_store.h"
#include "vigil/sink/output_file.h"
#include "vigil/sink/summary.h"
#include "vigil/sink/tokenizer.h"
#include "vigil/source/record_source.h"

namespace vigil::engine {

// Transactional outputs (Kafka): every output line becomes a message, and what was sent is
// committed together with the source positions it covers, all or nothing. Called on the
// engine's writer thread only.
class TransactionalOutputs {
 public:
  enum class Stream : uint8_t { kDecisions, kAlerts, kDeadLetters, kLate };
  virtual ~TransactionalOutputs() = default;
  // `line` has no line terminator. May block while the client's queue is full.
  virtual void Send(Stream stream, std::string_view key, std::string_view line) = 0;
  // Commits everything sent since the last commit with `positions`. Returns false when the
  // transaction had to be aborted instead (nothing since the last commit counts: the engine
  // rewinds its source). Throws std::runtime_error on a fatal error; waits out transient ones
  // (a broker restarting).
  virtual bool Commit(const std::vector<source::PartitionPosition>& positions) = 0;
  // Sends the state of partition `at` (a snapshot as of at.next_offset, which the source can
  // restore from) in the open transaction; it commits with the positions that follow. The
  // snapshot's bytes are `pieces` in order (a large state is not copied into one block first);
  // they need to live only for the call.
  virtual void SendSnapshot(const source::PartitionPosition& at,
                            std::span<const std::string_view> pieces) = 0;
  // Drops everything sent since the last commit.
  virtual void Abort() = 0;
  // An implementation may let Commit return while its transaction is still committing (and
  // report a failure from the next Commit instead). Settle waits for that and returns false
  // when it had to be aborted. The engine calls it after its last commit.
  virtual bool Settle() { return true; }
  // Milliseconds the last commit took, and commits/aborts so far (metrics).
  virtual double LastCommitMs() const = 0;
  virtual uint64_t Commits() const = 0;
  virtual uint64_t Aborts() const = 0;
};

// Where the engine writes. decisions may be null (nothing written, e.g. benchmarks).
struct Outputs {
  std::unique_ptr<sink::OutputFile> decisions;
  std::unique_ptr<sink::OutputFile> dead_letters;
  std::unique_ptr<sink::OutputFile> late;
  std::unique_ptr<sink::AlertStore> alerts;  // may be null; needs decisions serialized
  // With a partitioned source: decisions, alerts, dead letters and late events go here (the
  // files above stay null), committed with the source positions every
  // RunOptions::commit_interval_us. Must outlive Run.
  TransactionalOutputs* transactional = nullptr;
};

struct RunOptions {
  uint64_t max_events = 0;  // stop after this many records read; 0: all
  double speed = 0;         // replay paced at this multiple of event time; 0: as fast as possible
  int workers = 0;          // 0: the pipeline's engine.workers, else one per core
  bool include_event = true;
  // Streaming features (may be null or empty: then batches take one phase). Must outlive Run.
  const features::Spec* features = nullptr;
  bool emit_features = false;  // decisions carry "features":{name: value}
  // Writes the pipeline's privacy.tokenize fields as tokens (null: as they are). Must outlive
  // Run; required when the pipeline tokenizes fields.
  const sink::Tokenizer* tokenizer = nullptr;
  // Called on the writer thread about once a second with the counters so far.
  using on_progress_t = std::function<void(const sink::RunSummary&, double events_per_second)>;
  on_progress_t on_progress;
  const std::atomic<bool>* stop = nullptr;  // set by a signal handler: finish in-flight work
  // Checkpoints (null: none). Every `checkpoint_interval_us` of wall time, and when the run
  // ends, the engine writes a consistent snapshot: the router's state (dedup ids, watermark,
  // events held for event-time order, counters), every worker's entity state, the source
  // position and the length of each output, all as of the same batch boundary. Must outlive
  // Run.
  const CheckpointStore* checkpoints = nullptr;
  int64_t checkpoint_interval_us = 10'000'000;
  Manifest checkpoint_job;  // pipeline, pipeline_hash and input, copied into each manifest
  // Resume from this checkpoint of `checkpoints`: state and counters come from it. The caller
  // has positioned the source at its offset and cut the outputs back to its lengths.
  std::optional<Manifest> restore;
  // With Outputs::transactional: how often outputs and source positions are committed (the
  // latency from event to committed decision is about this plus processing).
  int64_t commit_interval_us = 100'000;
  // With Outputs::transactional: how often each partition's state is snapshotted (0: never).
  // The snapshot is taken at a batch boundary and sent in the transaction that commits it.
  int64_t snapshot_interval_us = 0;
};

// Engine runs one pipeline over one source:
//   router thread:  read → decode+validate → dedup → watermark/late → hash entity keys
//   worker threads: phase 1: features of the entities each worker owns (shared-nothing);
//                   phase 2: on the worker owning the event's key, derived features,
//                   decision stages → decision
//   caller thread:  merge workers' decisions back into source order → write outputs
// Records move in batches through bounded queues (backpressure); per-event work takes no
// lock and, in steady state, allocates nothing. Outputs are in source order whatever the
// worker count, so a run is reproducible byte for byte.
class Engine {
 public:
  Engine(const config::Pipeline& pipeline, decide::StageFactory* stages, RunOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs to the end of the source (or max_events, or stop). Throws std::runtime_error on
  // I/O errors, a failed checkpoint or restore, and a CSV header that does not fit the
  // mapping.
  sink::RunSummary Run(source::RecordSource& source, Outputs& outputs);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Approves everything and gives no reasons: the stage set until features, rules and models
// are configured.
class PassThroughStages final : public decide::StageFactory {
 public:
  std::vector<std::unique_ptr<decide::Stage>> MakeStages(int) override { return {}; }
};

}  // namespace vigil::engine
