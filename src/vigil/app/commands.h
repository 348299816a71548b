#pragma once

#include <cstdint>
#include <string>

#include "vigil/config/pipeline.h"
#include "vigil/decide/decision.h"
#include "vigil/features/spec.h"
#include "vigil/sink/summary.h"
#include "vigil/source/record_source.h"

namespace vigil::app {

// Arguments of `vigil run` (and the parts of `vigil demo` that are shared with it).
struct RunArgs {
  std::string pipeline;             // -c
  std::string input;                // --input FILE|-
  std::string speed = "max";        // max | Nx
  uint64_t events = 0;              // --events N (0: all)
  std::string out_dir;              // --out DIR
  std::string decisions;            // --decisions FILE|-
  std::string dead_letters;         // --dead-letters FILE
  std::string late;                 // --late FILE
  std::string summary_json;         // --summary-json FILE
  std::string alerts;               // --alerts FILE (SQLite)
  std::string listen;               // --listen HOST:PORT|none (empty: api.listen or 127.0.0.1:7070)
  std::string checkpoint_dir;       // --checkpoint-dir DIR
  std::string checkpoint_interval;  // --checkpoint-interval 10s
  int workers = 0;
  bool overwrite = false;
  bool no_event = false;       // --no-event: leave the event's fields out of decisions
  bool emit_features = false;  // --emit-features: decisions carry the feature values
  int progress = -1;           // -1: when stderr is a terminal; 0 never; 1 always
  // Kafka (the pipeline's kafka: section, used when there is no --input).
  std::string brokers;         // --brokers HOST:PORT,... (overrides kafka.brokers)
  std::string instance;        // --instance NAME (overrides kafka.instance)
  std::string exit_when_idle;  // --exit-when-idle 5s: stop once no record came for so long
};

struct GenerateArgs {
  std::string scenario = "card-fraud";
  uint64_t events = 100000;
  uint64_t seed = 42;
  std::string out = "-";
  std::string format;  // jsonl | csv; default from the file extension
  uint64_t cards = 0;
  uint64_t merchants = 0;
  double fraud_rate = 0.01;
  std::string start;
};

struct DemoArgs {
  std::string listen;              // --listen HOST:PORT|none
  uint64_t train_events = 200000;  // --train-events: history the demo's model learns from
  bool emit_features = false;
  uint64_t events = 1000000;
  uint64_t seed = 42;
  std::string out_dir = "vigil-demo";
  std::string speed = "max";
  int workers = 0;
  int progress = -1;
};

struct AlertsArgs {
  std::string db;
  std::string since, until;  // ISO-8601 event time
  std::string rule, entity, outcome;
  int64_t limit = 50;
  int64_t offset = 0;
  bool json = false;
};

struct LabelsArgs {
  std::string db;         // --db: the alert store holding the cases
  std::string out = "-";  // --out: CSV file, or - for stdout
};

struct TrainArgs {
  std::string pipeline;
  std::string input;
  std::string label;      // --label: the input field with the label
  std::string labels_db;  // --labels-db: dispositions of closed cases, by event id
  std::string out = "model.json";
  double valid_fraction = 0.2;
  int rounds = 200;
  int workers = 0;
};

struct EvalArgs {
  std::string pipeline;
  std::string input;
  std::string label;
  double budget = 0.005;
  int workers = 0;
  bool json = false;
};

struct BenchArgs {
  std::string pipeline;
  std::string input;
  int repeat = 3;
  int workers = 0;
  bool decisions = false;    // also serialize decisions (to /dev/null)
  bool no_features = false;  // skip the features stage: decode, validate, dedup, route only
};

int Run(const RunArgs& args);
int Bench(const BenchArgs& args);
int Check(const std::string& pipeline, const std::string& input);
int Generate(const GenerateArgs& args);
int Demo(const DemoArgs& args);
int Alerts(const AlertsArgs& args);
// Writes the dispositions of closed cases as event_id,label CSV (1 fraud, 0 not_fraud).
int Labels(const LabelsArgs& args);
int Train(const TrainArgs& args);
// How to read the pipeline's input from a file: its framing and record size limit.
source::FileOptions InputOptions(const config::Pipeline& pipeline);
// Replays `source` through the pipeline with its features into `stages` (no decisions
// written; dead letters and late events dropped): what train and eval learn from and judge.
sink::RunSummary Replay(const config::Pipeline& pipeline, const features::Spec& spec,
                        source::RecordSource& source, decide::StageFactory& stages, int workers);
// Replays `source` through the pipeline and trains a model on args.label, written to
// args.out (the report goes to stderr). Used by Train and by the demo.
void TrainFrom(const config::Pipeline& pipeline, const features::Spec& spec,
               source::RecordSource& source, const TrainArgs& args);
int Eval(const EvalArgs& args);
// Sends SIGHUP to the run writing into `out_dir` (its vigil.pid) or to `pid`.
int Reload(const std::string& out_dir, int pid);

// The card-fraud pipeline compiled into the binary (examples/card-fraud.yaml).
extern const char* const kEmbeddedCardFraudPipeline;

}  // namespace vigil::app
