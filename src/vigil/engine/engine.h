#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "vigil/config/pipeline.h"
#include "vigil/decide/decision.h"
#include "vigil/features/spec.h"
#include "vigil/sink/output_file.h"
#include "vigil/sink/summary.h"
#include "vigil/source/record_source.h"

namespace vigil::engine {

// Where the engine writes. decisions may be null (nothing written, e.g. benchmarks).
struct Outputs {
  std::unique_ptr<sink::OutputFile> decisions;
  std::unique_ptr<sink::OutputFile> dead_letters;
  std::unique_ptr<sink::OutputFile> late;
};

// A point the run can resume from: every output below holds exactly the lines for the input
// before `offset`, and nothing else.
struct CommitPoint {
  uint64_t offset = 0;     // source byte offset of the next unread record
  uint64_t next_line = 1;  // its line number
  uint64_t decisions_bytes = 0;
  uint64_t dead_letters_bytes = 0;
  uint64_t late_bytes = 0;
  sink::RunSummary summary;  // counters up to this point
};

struct RunOptions {
  uint64_t max_events = 0;  // stop after this many records read; 0: all
  double speed = 0;         // replay paced at this multiple of event time; 0: as fast as possible
  int workers = 0;          // 0: the pipeline's engine.workers, else one per core
  bool include_event = true;
  // Streaming features (may be null or empty: then batches take one phase). Must outlive Run.
  const features::Spec* features = nullptr;
  bool emit_features = false;  // decisions carry "features":{name: value}
  // Called on the writer thread about once a second, and at the end, after outputs are
  // flushed: the application records the commit point (e.g. for resume).
  std::function<void(const CommitPoint&)> on_commit;
  // Called on the writer thread about once a second with the counters so far.
  using on_progress_t = std::function<void(const sink::RunSummary&, double events_per_second)>;
  on_progress_t on_progress;
  const std::atomic<bool>* stop = nullptr;  // set by a signal handler: finish in-flight work
  // Resume: records before this source offset were decided by an earlier run. They are
  // replayed through decode, dedup and the watermark only (no output, not counted) so a
  // resumed run treats later records exactly as an uninterrupted run would.
  uint64_t replay_until = 0;
  sink::RunSummary resume_from;  // counters of the run being resumed
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
  // I/O errors and on a CSV header that does not fit the mapping.
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
