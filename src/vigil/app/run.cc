#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "vigil/app/commands.h"
#include "vigil/app/live_api.h"
#include "vigil/app/stages.h"
#include "vigil/common/json.h"
#include "vigil/common/time.h"
#include "vigil/config/pipeline.h"
#include "vigil/engine/engine.h"
#include "vigil/features/spec.h"
#include "vigil/kafka/kafka_client.h"
#include "vigil/kafka/kafka_config.h"
#include "vigil/model/meta.h"
#include "vigil/model/model_stage.h"
#include "vigil/source/generator.h"
#include "vigil/source/record_source.h"

namespace vigil::app {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void OnSignal(int) { g_stop.store(true); }
void OnHangup(int) { g_reload.store(true); }

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sa.sa_handler = OnHangup;
  sigaction(SIGHUP, &sa, nullptr);
}

// DIR/vigil.pid while a run into DIR goes on, so `vigil reload --out DIR` finds it.
class PidFile {
 public:
  explicit PidFile(std::string path) : path_(std::move(path)) {
    if (path_.empty()) return;
    auto f = sink::OutputFile::Open(path_);
    f->Write(fmt::format("{}\n", ::getpid()));
    f->Flush();
  }
  ~PidFile() {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

 private:
  std::string path_;
};

// "max" → 0; "10x" or "10" → 10.
double ParseSpeed(const std::string& s) {
  if (s == "max") return 0;
  std::string_view v = s;
  if (!v.empty() && (v.back() == 'x' || v.back() == 'X')) v.remove_suffix(1);
  double x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || !(x > 0) || x > 1e9) {
    throw std::invalid_argument(
        fmt::format("--speed: expected 'max' or a positive factor like 10x; got '{}'", s));
  }
  return x;
}

// --listen, else api.listen in the pipeline, else the loopback default.
std::string ListenAddress(const std::string& flag, const config::Pipeline& pipeline) {
  if (!flag.empty()) return flag;
  if (!pipeline.api_listen.empty()) return pipeline.api_listen;
  return "127.0.0.1:7070";
}

// GET /api/rules: the rule set in force and how often each rule fired so far.
std::string RulesJson(const rules::RuleBook& book, const sink::RunSummary& summary) {
  const auto set = book.Current();
  std::string out = fmt::format("{{\"version\":{},\"source\":", set->version);
  AppendJsonString(out, set->source);
  out += ",\"policy\":{\"review_at\":";
  AppendJsonNumber(out, set->policy.review_at);
  out += ",\"block_at\":";
  AppendJsonNumber(out, set->policy.block_at);
  out += "},\"lists\":[";
  bool first = true;
  for (const std::string& name : set->lists.Names()) {
    if (!std::exchange(first, false)) out += ',';
    AppendJsonString(out, name);
  }
  out += "],\"rules\":[";
  first = true;
  for (const rules::Rule& r : set->rules) {
    if (!std::exchange(first, false)) out += ',';
    out += "{\"id\":";
    AppendJsonString(out, r.id);
    out += ",\"description\":";
    AppendJsonString(out, r.description);
    out += ",\"when\":";
    AppendJsonString(out, r.when_text);
    out += ",\"action\":";
    AppendJsonString(out, decide::OutcomeName(r.action));
    out += fmt::format(",\"mode\":\"{}\",\"score\":", r.shadow ? "shadow" : "active");
    AppendJsonNumber(out, r.score);
    out += ",\"tags\":[";
    for (size_t i = 0; i < r.tags.size(); ++i) {
      if (i) out += ',';
      AppendJsonString(out, r.tags[i]);
    }
    const auto hits = summary.rule_hits.find(r.id);
    out += fmt::format("],\"hits\":{}}}", hits == summary.rule_hits.end() ? 0 : hits->second);
  }
  out += "]}\n";
  return out;
}

api::Sources ApiSources(const config::Pipeline& pipeline, PipelineStages& stages,
                        const std::string& alerts_db, int workers) {
  api::Sources s;
  s.pipeline = pipeline.name;
  s.alerts_db = alerts_db;
  s.workers = workers > 0 ? workers
              : pipeline.workers > 0
                  ? pipeline.workers
                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (rules::RuleBook* book = stages.book()) {
    s.rules_version = [book] { return book->Current()->version; };
    s.reload_rules = [book] { return book->Reload(); };
    s.rules_json = [book](const sink::RunSummary& summary) { return RulesJson(*book, summary); };
  }
  if (const model::ModelConfig* m = stages.model()) {
    s.model_json = "{\"path\":";
    AppendJsonString(s.model_json, m->path);
    s.model_json += ",\"weight\":";
    AppendJsonNumber(s.model_json, m->weight);
    s.model_json += ",\"explain_at\":";
    AppendJsonNumber(s.model_json, m->explain_at);
    s.model_json += ",\"meta\":" + model::FormatMeta(m->model.meta) + "}\n";
  }
  s.tokens = api::LoadTokens(pipeline, std::getenv("VIGIL_API_TOKENS"));
  s.tls_cert = pipeline.api_tls_cert;
  s.tls_key = pipeline.api_tls_key;
  return s;
}

void RemoveAlertStore(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
}

}  // namespace

source::FileOptions InputOptions(const config::Pipeline& pipeline) {
  source::FileOptions o;
  o.framing = pipeline.input.format == config::InputFormat::kCsv ? source::Framing::kCsv
                                                                 : source::Framing::kLines;
  o.max_record_bytes = pipeline.input.max_record_bytes;
  return o;
}

namespace {

int64_t ParseInterval(const std::string& text) {
  const std::optional<int64_t> us = ParseDuration(text);
  if (!us || *us <= 0) {
    throw std::invalid_argument(fmt::format(
        "--checkpoint-interval: expected a positive duration like 500ms, 10s or 1m; got '{}'",
        text));
  }
  return *us;
}

bool ShowProgress(int flag) { return flag == 1 || (flag == -1 && ::isatty(2)); }

// Prints the live progress line: rewritten in place on a terminal, one line per tick
// otherwise.
engine::RunOptions::on_progress_t MakeProgress(bool show) {
  if (!show) return nullptr;
  const bool tty = ::isatty(2);
  return [tty](const sink::RunSummary& s, double eps) {
    std::fprintf(stderr, tty ? "\r%s\x1b[K" : "%s\n", sink::ProgressLine(s, eps).c_str());
    std::fflush(stderr);
  };
}

void FinishProgress(bool show) {
  if (show && ::isatty(2)) std::fputc('\n', stderr);
}

void WriteSummaryJson(const std::string& path, const sink::RunSummary& s) {
  if (path.empty()) return;
  auto f = sink::OutputFile::Open(path);
  f->Write(sink::SummaryJson(s));
  f->Flush();
}

std::string Join(const std::string& dir, const char* name) {
  return (std::filesystem::path(dir) / name).string();
}

// The alert store: --alerts, else alerts.store, else DIR/alerts.db when the pipeline decides
// (rules or a model) and writes into a DIR; "" for none.
std::string AlertsPath(const RunArgs& a, const config::Pipeline& pipeline, const std::string& dir) {
  if (!a.alerts.empty()) return a.alerts;
  if (!pipeline.alerts_store.empty()) return pipeline.alerts_store;
  if (!dir.empty() && (rules::HasRules(pipeline) || pipeline.root["model"]))
    return Join(dir, "alerts.db");
  return "";
}

// What file and Kafka runs share: the stages with hot reload, the pid file, the HTTP API,
// progress, the engine, and the summary (printed, and written to DIR and --summary-json).
// Closes the outputs.
sink::RunSummary Execute(const RunArgs& a, const config::Pipeline& pipeline,
                         const features::Spec& spec, engine::RunOptions opts,
                         source::RecordSource& src, engine::Outputs& outs, const std::string& dir,
                         const std::string& alerts_path) {
  const std::optional<sink::Tokenizer> tokenizer = MakeTokenizer(pipeline);
  if (tokenizer) opts.tokenizer = &*tokenizer;
  InstallSignalHandlers();
  PipelineStages stages(pipeline, spec);
  std::optional<ReloadWatcher> watcher;
  if (stages.book()) watcher.emplace(stages, a.pipeline, g_reload);
  const PidFile pid(dir.empty() ? "" : Join(dir, "vigil.pid"));
  LiveApi live(ListenAddress(a.listen, pipeline), !a.listen.empty() || !pipeline.api_listen.empty(),
               ApiSources(pipeline, stages, alerts_path, opts.workers));
  if (outs.alerts) outs.alerts->SetListener(live.alert_listener());
  const bool show = ShowProgress(a.progress);
  opts.on_progress = live.Wrap(MakeProgress(show));
  engine::Engine engine(pipeline, &stages.factory(), std::move(opts));
  sink::RunSummary summary = engine.Run(src, outs);
  live.Finish(summary);
  FinishProgress(show);
  outs = {};

  if (!dir.empty()) WriteSummaryJson(Join(dir, "summary.json"), summary);
  WriteSummaryJson(a.summary_json, summary);
  std::fputs(sink::SummaryText(summary).c_str(), stderr);
  return summary;
}

// `vigil run` on a Kafka cluster: events from the pipeline's topics, outputs to its topics,
// committed together (exactly once) every kafka.commit_interval. Runs until SIGINT/SIGTERM
// (or --exit-when-idle), then commits and leaves the group.
int RunKafka(const RunArgs& a, const config::Pipeline& pipeline, const features::Spec& spec,
             kafka::KafkaConfig kc) {
  if (!a.brokers.empty()) kc.brokers = a.brokers;
  if (!a.instance.empty()) kc.instance = a.instance;
  if (kc.brokers.empty()) {
    throw std::invalid_argument(
        "kafka: no brokers: set kafka.brokers in the pipeline, VIGIL_KAFKA_BROKERS, or pass "
        "--brokers HOST:PORT");
  }
  struct Refused {
    bool set;
    const char* what;
  };
  for (const Refused& r :
       {Refused{pipeline.event_time_order, "lateness.order: event_time"},
        Refused{pipeline.input.format == config::InputFormat::kCsv && pipeline.input.header,
                "CSV input with a header line (set input.csv.header: false and map columns)"},
        Refused{!a.checkpoint_dir.empty() || !pipeline.checkpoint_dir.empty(),
                "checkpoints (state is rebuilt from the topics: drop --checkpoint-dir)"},
        Refused{!a.decisions.empty() || !a.dead_letters.empty() || !a.late.empty(),
                "--decisions/--dead-letters/--late (outputs go to kafka.outputs topics)"},
        Refused{a.speed != "max", "--speed"}}) {
    if (r.set) {
      throw std::invalid_argument(
          fmt::format("a Kafka run (the pipeline's kafka: section, no --input) does not support "
                      "{}",
                      r.what));
    }
  }
  int64_t idle_us = 0;
  if (!a.exit_when_idle.empty()) {
    const std::optional<int64_t> d = ParseDuration(a.exit_when_idle);
    if (!d || *d <= 0) {
      throw std::invalid_argument(fmt::format(
          "--exit-when-idle: expected a positive duration like 5s; got '{}'", a.exit_when_idle));
    }
    idle_us = *d;
  }
  const std::string dir = !a.out_dir.empty() ? a.out_dir : pipeline.outputs.dir;
  if (!dir.empty()) std::filesystem::create_directories(dir);

  engine::RunOptions opts;
  opts.max_events = a.events;
  opts.workers = a.workers;
  opts.include_event = pipeline.outputs.include_event && !a.no_event;
  opts.features = &spec;
  opts.emit_features = a.emit_features;
  opts.stop = &g_stop;
  opts.commit_interval_us = kc.commit_interval_us;
  opts.snapshot_interval_us = kc.snapshot_interval_us;

  InstallSignalHandlers();
  kafka::KafkaSource src(kc, &g_stop, idle_us);
  kafka::KafkaOutputs kout(kc, src);
  engine::Outputs outs;
  outs.transactional = &kout;
  const std::string alerts_path = AlertsPath(a, pipeline, dir);
  // Kept across runs: alerts are keyed by event id, so a replay stores none twice.
  if (!alerts_path.empty()) outs.alerts = sink::AlertStore::Open(alerts_path);

  std::fprintf(stderr, "vigil: reading %s from %s as group %s (%s)\n", src.Name().c_str() + 6,
               kc.brokers.c_str(), kc.group.c_str(),
               kc.exactly_once ? "exactly once" : "at least once");
  Execute(a, pipeline, spec, std::move(opts), src, outs, dir, alerts_path);
  src.Close();
  return 0;
}

}  // namespace

int Run(const RunArgs& a) {
  const config::Pipeline pipeline = config::LoadPipelineFile(a.pipeline);
  const features::Spec spec = features::ParseSpec(pipeline);
  if (a.input.empty()) {
    if (std::optional<kafka::KafkaConfig> kc = kafka::LoadKafkaConfig(pipeline)) {
      return RunKafka(a, pipeline, spec, std::move(*kc));
    }
    throw std::invalid_argument(
        "--input: expected a file or - for stdin (or a kafka: section in the pipeline to read "
        "from Kafka)");
  }
  if (!a.brokers.empty() || !a.exit_when_idle.empty() || !a.instance.empty()) {
    throw std::invalid_argument(
        "--brokers, --instance and --exit-when-idle apply to Kafka runs: drop --input to read "
        "the pipeline's kafka: topics");
  }
  const double speed = ParseSpeed(a.speed);
  const std::string dir = !a.out_dir.empty() ? a.out_dir : pipeline.outputs.dir;
  auto pick = [&](const std::string& flag, const char* file, const std::string& configured,
                  const char* fallback) {
    if (!flag.empty()) return flag;
    if (!dir.empty()) return Join(dir, file);
    if (!configured.empty()) return configured;
    return std::string(fallback);
  };
  const std::string decisions_path =
      pick(a.decisions, "decisions.jsonl", pipeline.outputs.decisions, "-");
  const std::string dead_path =
      pick(a.dead_letters, "dead_letters.jsonl", pipeline.outputs.dead_letters, "stderr");
  const std::string late_path = pick(a.late, "late.jsonl", pipeline.outputs.late, "stderr");

  engine::RunOptions opts;
  opts.max_events = a.events;
  opts.speed = speed;
  opts.workers = a.workers;
  opts.include_event = pipeline.outputs.include_event && !a.no_event;
  opts.features = &spec;
  opts.emit_features = a.emit_features;
  opts.stop = &g_stop;

  if (!dir.empty()) std::filesystem::create_directories(dir);
  source::FileOptions fopts = InputOptions(pipeline);

  // Checkpoints: where --checkpoint-dir or the pipeline says, else DIR/checkpoint for a file
  // input run with --out DIR. A run whose checkpoint directory holds an interrupted run of
  // the same job resumes from its last checkpoint.
  std::string checkpoint_dir =
      !a.checkpoint_dir.empty() ? a.checkpoint_dir : pipeline.checkpoint_dir;
  if (checkpoint_dir.empty() && !dir.empty() && a.input != "-")
    checkpoint_dir = Join(dir, "checkpoint");
  std::optional<engine::CheckpointStore> store;
  std::optional<engine::Manifest> previous;
  if (!checkpoint_dir.empty()) {
    if (a.input == "-") {
      throw std::invalid_argument(
          "checkpoints need a file input: standard input cannot be read again from a "
          "checkpoint's position (drop --checkpoint-dir, or pass --input FILE)");
    }
    struct Output {
      const std::string& path;
      const char* what;
      const char* flag;
    };
    for (const Output& o : {Output{decisions_path, "decisions", "--decisions"},
                            Output{dead_path, "dead letters", "--dead-letters"},
                            Output{late_path, "late events", "--late"}}) {
      if (o.path == "-" || o.path == "stderr") {
        throw std::invalid_argument(fmt::format(
            "checkpoints need every output in a file, so a resumed run can cut it back to the "
            "checkpoint; {} go to {}: pass {} FILE or --out DIR",
            o.what, o.path == "-" ? "stdout" : "stderr", o.flag));
      }
    }
    store.emplace(checkpoint_dir);
    if (a.overwrite) {
      store->Clear();
    } else {
      previous = store->Latest();
    }
    opts.checkpoints = &*store;
    opts.checkpoint_interval_us = !a.checkpoint_interval.empty()
                                      ? ParseInterval(a.checkpoint_interval)
                                      : pipeline.checkpoint_interval_us;
    opts.checkpoint_job.pipeline = a.pipeline;
    opts.checkpoint_job.pipeline_hash = fmt::format("{:016x}", pipeline.state_hash);
    opts.checkpoint_job.input = a.input;
  }
  if (previous) {
    if (previous->completed) {
      throw std::invalid_argument(fmt::format(
          "{} holds the checkpoint of a completed run of {}; pass --overwrite to start afresh, "
          "or choose another --out / --checkpoint-dir",
          checkpoint_dir, previous->input));
    }
    if (previous->input != a.input) {
      throw std::invalid_argument(fmt::format(
          "{} holds an interrupted run of input '{}'; resume it with --input {}, or pass "
          "--overwrite to start afresh",
          checkpoint_dir, previous->input, previous->input));
    }
    if (previous->pipeline_hash != opts.checkpoint_job.pipeline_hash) {
      throw std::invalid_argument(fmt::format(
          "{} holds an interrupted run of another version of {}: its input, event, dedup, "
          "lateness, entities or features sections changed since the checkpoint, so "
          "the saved state does not fit; pass --overwrite to start afresh",
          checkpoint_dir, previous->pipeline));
    }
    if (std::filesystem::file_size(a.input) < previous->offset) {
      throw std::invalid_argument(
          fmt::format("{} is shorter than the position its checkpoint reached ({} bytes); pass "
                      "--overwrite to start afresh",
                      a.input, previous->offset));
    }
    fopts.start_offset = previous->offset;
    fopts.start_line = previous->line;
    opts.restore = previous;
    std::fprintf(stderr,
                 "vigil: resuming %s from checkpoint %llu: %llu records already read, %llu "
                 "decisions written\n",
                 a.input.c_str(), static_cast<unsigned long long>(previous->seq),
                 static_cast<unsigned long long>(previous->summary.read),
                 static_cast<unsigned long long>(previous->decisions_lines));
  }

  auto src = source::OpenFile(a.input, fopts);
  engine::Outputs outs;
  const std::string alerts_path = AlertsPath(a, pipeline, dir);
  if (!alerts_path.empty()) {
    // A fresh run starts a fresh store; a resumed one adds to it (rows are keyed by event id,
    // so the alerts after the checkpoint, decided again, are not stored twice).
    if (!previous) RemoveAlertStore(alerts_path);
    outs.alerts = sink::AlertStore::Open(alerts_path);
  }
  auto keep = [&](uint64_t bytes) { return previous ? static_cast<int64_t>(bytes) : -1; };
  outs.decisions =
      sink::OutputFile::Open(decisions_path, keep(previous ? previous->decisions_bytes : 0));
  outs.dead_letters =
      sink::OutputFile::Open(dead_path, keep(previous ? previous->dead_letters_bytes : 0));
  outs.late = sink::OutputFile::Open(late_path, keep(previous ? previous->late_bytes : 0));

  const sink::RunSummary summary =
      Execute(a, pipeline, spec, std::move(opts), *src, outs, dir, alerts_path);
  return summary.completed ? 0 : 130;
}

// The demo's model: DIR/model.json, trained on generated history the first time (or when
// the embedded pipeline's features changed and the saved model no longer fits them).
std::string DemoModel(const DemoArgs& a, const config::Pipeline& base, const features::Spec& spec) {
  const std::string path = std::filesystem::absolute(Join(a.out_dir, "model.json")).string();
  if (std::filesystem::exists(path)) {
    try {
      model::CheckFeatures(
          model::LoadMeta(model::MetaPathFor(path)),
          [&] {
            std::vector<std::string> names;
            for (const auto& c : model::ModelColumns(base, spec, "is_fraud"))
              names.push_back(c.name);
            return names;
          }(),
          model::MetaPathFor(path));
      std::fprintf(stderr, "vigil demo: scoring with the model in %s\n", path.c_str());
      return path;
    } catch (const model::ModelError& e) {
      std::fprintf(stderr, "vigil demo: %s; training a new one\n", e.what());
    }
  }
  std::fprintf(stderr,
               "vigil demo: first run: training a model on %llu generated, labelled events "
               "(vigil train)...\n",
               static_cast<unsigned long long>(a.train_events));
  source::GeneratorOptions g;
  g.events = a.train_events;
  g.seed = a.seed + 1000;  // history the demo's own traffic is not part of
  auto history = source::OpenGenerator(g);
  TrainArgs t;
  t.label = "is_fraud";
  t.out = path;
  t.workers = a.workers;
  TrainFrom(base, spec, *history, t);
  return path;
}

int Demo(const DemoArgs& a) {
  std::filesystem::create_directories(a.out_dir);
  const config::Pipeline base =
      config::LoadPipelineText(kEmbeddedCardFraudPipeline, "<embedded card-fraud.yaml>");
  const features::Spec base_spec = features::ParseSpec(base);
  const std::string model_path = DemoModel(a, base, base_spec);
  const config::Pipeline pipeline = config::LoadPipelineText(
      fmt::format("{}\nmodel:\n  path: {}\n  weight: 60\n", kEmbeddedCardFraudPipeline, model_path),
      "<embedded card-fraud.yaml>");
  const features::Spec spec = features::ParseSpec(pipeline);
  source::GeneratorOptions g;
  g.events = a.events;
  g.seed = a.seed;
  auto src = source::OpenGenerator(g);

  engine::Outputs outs;
  outs.decisions = sink::OutputFile::Open(Join(a.out_dir, "decisions.jsonl"));
  outs.dead_letters = sink::OutputFile::Open(Join(a.out_dir, "dead_letters.jsonl"));
  outs.late = sink::OutputFile::Open(Join(a.out_dir, "late.jsonl"));
  RemoveAlertStore(Join(a.out_dir, "alerts.db"));
  outs.alerts = sink::AlertStore::Open(Join(a.out_dir, "alerts.db"));

  engine::RunOptions opts;
  opts.speed = ParseSpeed(a.speed);
  opts.workers = a.workers;
  opts.stop = &g_stop;
  opts.features = &spec;
  opts.emit_features = a.emit_features;
  std::fprintf(stderr,
               "vigil demo: %llu generated card transactions -> card-fraud pipeline -> %s/\n",
               static_cast<unsigned long long>(a.events), a.out_dir.c_str());

  InstallSignalHandlers();
  PipelineStages stages(pipeline, spec);
  LiveApi live(ListenAddress(a.listen, pipeline), !a.listen.empty(),
               ApiSources(pipeline, stages, Join(a.out_dir, "alerts.db"), opts.workers));
  if (outs.alerts) outs.alerts->SetListener(live.alert_listener());
  const bool show = ShowProgress(a.progress);
  opts.on_progress = live.Wrap(MakeProgress(show));
  engine::Engine engine(pipeline, &stages.factory(), std::move(opts));
  sink::RunSummary summary = engine.Run(*src, outs);
  live.Finish(summary);
  FinishProgress(show);
  outs = {};
  WriteSummaryJson(Join(a.out_dir, "summary.json"), summary);
  std::fputs(sink::SummaryText(summary).c_str(), stderr);
  std::fprintf(stderr,
               "  outputs: %s/decisions.jsonl, dead_letters.jsonl, summary.json, alerts.db\n"
               "  alerts:  vigil alerts --db %s/alerts.db\n",
               a.out_dir.c_str(), a.out_dir.c_str());
  return summary.completed ? 0 : 130;
}

int Reload(const std::string& out_dir, int pid) {
  if (pid <= 0) {
    if (out_dir.empty()) throw std::invalid_argument("reload: give --out DIR or --pid PID");
    const std::string path = Join(out_dir, "vigil.pid");
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (!f || std::fscanf(f, "%d", &pid) != 1 || pid <= 0) {
      if (f) std::fclose(f);
      throw std::invalid_argument(
          fmt::format("{}: no running vigil found (no readable pid file); is a 'vigil run "
                      "--out {}' going on?",
                      path, out_dir));
    }
    std::fclose(f);
  }
  if (::kill(pid, SIGHUP) != 0) {
    throw std::runtime_error(
        fmt::format("cannot signal process {}: {}", pid, std::strerror(errno)));
  }
  std::fprintf(stderr,
               "vigil: asked process %d to reload its rules; it reports the result (new version, "
               "or why the old rules stay) on its stderr\n",
               pid);
  return 0;
}

}  // namespace vigil::app
