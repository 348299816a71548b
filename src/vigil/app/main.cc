// The `vigil` command line: one binary, one subcommand per job.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "vigil/app/commands.h"
#include "vigil/config/pipeline.h"

namespace {

constexpr const char* kAbout =
    "Vigil: real-time financial event processing (fraud, AML, trade surveillance).\n"
    "Reads events from files, stdin or the built-in generator, keeps per-entity state,\n"
    "decides approve / review / block for every event, and writes decisions, dead letters\n"
    "(records that failed validation, with the reason) and a reconciled summary.\n\n"
    "Quick start:\n"
    "  vigil demo                                   # generator -> engine, embedded\n"
    "  vigil generate --events 100000 --out tx.jsonl\n"
    "  vigil check -c examples/card-fraud.yaml\n"
    "  vigil run -c examples/card-fraud.yaml --input tx.jsonl --out out/\n\n"
    "Exit codes: 0 ok; 1 runtime error (I/O); 2 bad usage or invalid pipeline file;\n"
    "130 interrupted (outputs are consistent and the run resumes with the same command).";

void AddProgressFlags(CLI::App* cmd, int& progress) {
  cmd->add_flag_callback(
      "--progress", [&progress] { progress = 1; },
      "Show the live progress line even when stderr is not a terminal");
  cmd->add_flag_callback(
      "--quiet", [&progress] { progress = 0; }, "No progress line (the summary is still printed)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{kAbout, "vigil"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vigil 0.1.0");
  app.footer("Run 'vigil COMMAND --help' for a command's options. Docs: docs/ in the source tree.");

  vigil::app::RunArgs run;
  CLI::App* run_cmd = app.add_subcommand("run", "Run a pipeline over a file or stdin");
  run_cmd->add_option("-c,--pipeline", run.pipeline, "Pipeline file (YAML)")->required();
  run_cmd->add_option("-i,--input", run.input,
                      "Input file, or - for stdin. Without it, the run reads the topics of the "
                      "pipeline's kafka: section and writes decisions, alerts and dead letters "
                      "to its output topics, exactly once");
  run_cmd->add_option("--brokers", run.brokers,
                      "Kafka runs: bootstrap servers HOST:PORT,... (overrides kafka.brokers and "
                      "VIGIL_KAFKA_BROKERS)");
  run_cmd->add_option("--instance", run.instance,
                      "Kafka runs: this process's name in its group (transactional.id is "
                      "GROUP-NAME); give each process its own, keep it across restarts");
  run_cmd->add_option("--exit-when-idle", run.exit_when_idle,
                      "Kafka runs: stop once no record has arrived for this long, e.g. 5s "
                      "(default: run until SIGINT/SIGTERM)");
  run_cmd
      ->add_option("--speed", run.speed,
                   "max (as fast as possible) or Nx: replay paced at N times event time, "
                   "e.g. 1x real time, 60x a minute per second")
      ->default_val("max");
  run_cmd->add_option("--events", run.events, "Stop after N records (0: all)")->default_val(0);
  run_cmd->add_option("-o,--out", run.out_dir,
                      "Output directory: decisions.jsonl, dead_letters.jsonl, late.jsonl, "
                      "summary.json, and checkpoint/ (for a file input). A run into a DIR whose "
                      "last run was interrupted resumes it from its last checkpoint.");
  run_cmd->add_option("--decisions", run.decisions,
                      "Decisions file (- for stdout). Default: DIR/decisions.jsonl with --out, "
                      "else stdout");
  run_cmd->add_option("--dead-letters", run.dead_letters,
                      "Dead-letter file. Default: DIR/dead_letters.jsonl with --out, else stderr");
  run_cmd->add_option("--late", run.late,
                      "Late-event file. Default: DIR/late.jsonl with --out, else stderr");
  run_cmd->add_option("--alerts", run.alerts,
                      "Alert store (SQLite) for review/block decisions. Default: alerts.store in "
                      "the pipeline, else DIR/alerts.db with --out when the pipeline has rules");
  run_cmd->add_option("--listen", run.listen,
                      "HTTP API address HOST:PORT (port 0: any free one) or 'none'. Default: "
                      "api.listen in the pipeline, else 127.0.0.1:7070 (skipped with a warning "
                      "when taken). Serves /metrics, /healthz, /readyz, /api/... (docs/api.md); "
                      "API tokens come from api.tokens in the pipeline and $VIGIL_API_TOKENS "
                      "(name:role:token,...)");
  run_cmd->add_option("--summary-json", run.summary_json,
                      "Also write the run summary as JSON to FILE (- for stdout)");
  run_cmd
      ->add_option("-w,--workers", run.workers,
                   "Worker threads (0: engine.workers or one per core)")
      ->default_val(0);
  run_cmd->add_option("--checkpoint-dir", run.checkpoint_dir,
                      "Checkpoint directory (default: checkpoint.dir in the pipeline, else "
                      "DIR/checkpoint with --out). State, source position and output lengths are "
                      "saved there on a schedule and at shutdown; the same command after a crash "
                      "or Ctrl-C resumes from the last one. Needs a file input and file outputs");
  run_cmd->add_option("--checkpoint-interval", run.checkpoint_interval,
                      "Time between checkpoints, e.g. 500ms, 10s, 1m (default: "
                      "checkpoint.interval in the pipeline, else 10s)");
  run_cmd->add_flag("--overwrite", run.overwrite,
                    "Start afresh even if --out DIR or --checkpoint-dir holds an earlier run");
  run_cmd->add_flag("--no-event", run.no_event, "Leave the event's fields out of decisions");
  run_cmd->add_flag("--emit-features", run.emit_features,
                    "Decisions carry \"features\": every feature's value for the event");
  AddProgressFlags(run_cmd, run.progress);

  std::string check_pipeline, check_input;
  CLI::App* check_cmd = app.add_subcommand(
      "check", "Validate a pipeline file (and optionally an input's CSV header) without running");
  check_cmd->add_option("-c,--pipeline", check_pipeline, "Pipeline file (YAML)")->required();
  check_cmd->add_option("-i,--input", check_input,
                        "Also check that this input's CSV header has every mapped column");

  vigil::app::GenerateArgs gen;
  CLI::App* gen_cmd = app.add_subcommand(
      "generate", "Write synthetic, labelled events (realistic card traffic with injected fraud)");
  gen_cmd->add_option("--scenario", gen.scenario, "Scenario: card-fraud")
      ->default_val("card-fraud");
  gen_cmd->add_option("-n,--events", gen.events, "Number of events")->default_val(100000);
  gen_cmd->add_option("--seed", gen.seed, "Random seed: the same seed gives the same bytes")
      ->default_val(42);
  gen_cmd->add_option("-o,--out", gen.out, "Output file, or - for stdout")->default_val("-");
  gen_cmd->add_option("--format", gen.format, "jsonl or csv (default: from the file extension)")
      ->check(CLI::IsMember({"jsonl", "csv"}));
  gen_cmd->add_option("--cards", gen.cards, "Number of cards (0: derived from --events)");
  gen_cmd->add_option("--merchants", gen.merchants, "Number of merchants (0: derived)");
  gen_cmd->add_option("--fraud-rate", gen.fraud_rate, "Share of events in injected fraud patterns")
      ->default_val(0.01)
      ->check(CLI::Range(0.0, 0.5));
  gen_cmd->add_option("--start", gen.start,
                      "First event time, ISO-8601 (default 2026-01-01T00:00:00Z)");

  vigil::app::DemoArgs demo;
  CLI::App* demo_cmd = app.add_subcommand(
      "demo", "Run the embedded demo: the generator feeds the card-fraud pipeline, no broker");
  demo_cmd->add_option("-n,--events", demo.events, "Number of events to generate")
      ->default_val(1000000);
  demo_cmd->add_option("--seed", demo.seed, "Generator seed")->default_val(42);
  demo_cmd->add_option("-o,--out", demo.out_dir, "Where the demo writes its outputs")
      ->default_val("vigil-demo");
  demo_cmd->add_option("--speed", demo.speed, "max or Nx (paced by event time)")
      ->default_val("max");
  demo_cmd->add_option("-w,--workers", demo.workers, "Worker threads (0: one per core)")
      ->default_val(0);
  demo_cmd
      ->add_option("--train-events", demo.train_events,
                   "Generated history the demo's model is trained on, the first time "
                   "(DIR/model.json is reused afterwards)")
      ->default_val(200000)
      ->check(CLI::Range(uint64_t{2000}, uint64_t{100000000}));
  demo_cmd->add_option("--listen", demo.listen,
                       "HTTP API address HOST:PORT or 'none' (default 127.0.0.1:7070); API "
                       "tokens from $VIGIL_API_TOKENS (name:role:token,...), see docs/api.md");
  demo_cmd->add_flag("--emit-features", demo.emit_features,
                     "Decisions carry every feature's value for the event");
  AddProgressFlags(demo_cmd, demo.progress);

  vigil::app::TrainArgs train;
  CLI::App* train_cmd = app.add_subcommand(
      "train",
      "Train a gradient-boosted tree model on labelled history, replayed through the "
      "pipeline (the features it is served are the ones it learns from)");
  train_cmd->add_option("-c,--pipeline", train.pipeline, "Pipeline file (YAML)")->required();
  train_cmd->add_option("-i,--input", train.input, "Labelled history (CSV or JSON lines)")
      ->required()
      ->check(CLI::ExistingFile);
  train_cmd->add_option("--label", train.label,
                        "The input field with the label (bool or 0/1); --label, --labels-db or "
                        "both");
  train_cmd
      ->add_option("--labels-db", train.labels_db,
                   "Alert store whose closed cases' dispositions label events by event id "
                   "(fraud 1, not_fraud 0; they override --label; events without either are "
                   "left out)")
      ->check(CLI::ExistingFile);
  train_cmd->add_option("-o,--out", train.out, "Model file; its metadata goes beside it")
      ->default_val("model.json");
  train_cmd
      ->add_option("--valid-fraction", train.valid_fraction,
                   "The latest share of events, by event time, held out for validation")
      ->default_val(0.2);
  train_cmd->add_option("--rounds", train.rounds, "At most this many trees (early stopping)")
      ->default_val(200)
      ->check(CLI::Range(1, 5000));
  train_cmd->add_option("-w,--workers", train.workers, "Worker threads for the replay")
      ->default_val(0);

  vigil::app::EvalArgs eval;
  CLI::App* eval_cmd =
      app.add_subcommand("eval",
                         "Score labelled data as a live run would and compare rules, model and the "
                         "combined policy: ROC-AUC, PR-AUC, precision and recall");
  eval_cmd->add_option("-c,--pipeline", eval.pipeline, "Pipeline file (YAML)")->required();
  eval_cmd->add_option("-i,--input", eval.input, "Labelled data (CSV or JSON lines)")
      ->required()
      ->check(CLI::ExistingFile);
  eval_cmd->add_option("--label", eval.label, "The input field with the label (bool or 0/1)")
      ->required();
  eval_cmd->add_option("--budget", eval.budget, "Alert budget: the top share of events by score")
      ->default_val(0.005);
  eval_cmd->add_option("-w,--workers", eval.workers, "Worker threads")->default_val(0);
  eval_cmd->add_flag("--json", eval.json,
                     "One JSON object with keys rules, model and combined (each roc_auc, "
                     "pr_auc, precision, recall, budget_precision, budget_recall)");

  vigil::app::AlertsArgs alerts;
  CLI::App* alerts_cmd = app.add_subcommand(
      "alerts", "List alerts from an alert store, newest first (also while a run writes it)");
  alerts_cmd->add_option("--db", alerts.db, "Alert store, e.g. out/alerts.db")
      ->required()
      ->check(CLI::ExistingFile);
  alerts_cmd->add_option("--since", alerts.since, "Event time from (ISO-8601, inclusive)");
  alerts_cmd->add_option("--until", alerts.until, "Event time until (ISO-8601, exclusive)");
  alerts_cmd->add_option("--rule", alerts.rule, "Only alerts this rule id contributed to");
  alerts_cmd->add_option("--entity", alerts.entity, "Only alerts of this event key (e.g. a card)");
  alerts_cmd->add_option("--outcome", alerts.outcome, "review or block")
      ->check(CLI::IsMember({"review", "block"}));
  alerts_cmd->add_option("-n,--limit", alerts.limit, "At most N alerts")
      ->default_val(50)
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  alerts_cmd->add_option("--offset", alerts.offset, "Skip the first N (paging)")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  alerts_cmd->add_flag("--json", alerts.json, "Print each alert's decision line (JSON lines)");

  vigil::app::LabelsArgs labels;
  CLI::App* labels_cmd = app.add_subcommand(
      "labels",
      "Export analysts' dispositions from closed cases as training labels: CSV event_id,label "
      "(1 fraud, 0 not_fraud; inconclusive cases and open ones give none)");
  labels_cmd->add_option("--db", labels.db, "Alert store holding the cases, e.g. out/alerts.db")
      ->required()
      ->check(CLI::ExistingFile);
  labels_cmd->add_option("-o,--out", labels.out, "CSV file, or - for stdout")->default_val("-");

  std::string reload_dir;
  int reload_pid = 0;
  CLI::App* reload_cmd = app.add_subcommand(
      "reload",
      "Ask a running 'vigil run' to reload its rules, lists, decision policy and model "
      "(the run also reloads by itself when the pipeline, a list file or the model file "
      "changes)");
  auto* reload_out = reload_cmd->add_option("-o,--out", reload_dir,
                                            "The --out DIR of the run (it keeps DIR/vigil.pid)");
  reload_cmd->add_option("--pid", reload_pid, "The run's process id")->excludes(reload_out);

  vigil::app::BenchArgs bench;
  CLI::App* bench_cmd = app.add_subcommand(
      "bench", "Measure pipeline throughput over a file (prints one JSON line; see bench/)");
  bench_cmd->add_option("-c,--pipeline", bench.pipeline, "Pipeline file (YAML)")->required();
  bench_cmd->add_option("-i,--input", bench.input, "Input file")
      ->required()
      ->check(CLI::ExistingFile);
  bench_cmd->add_option("--repeat", bench.repeat, "Runs; best and median are reported")
      ->default_val(3)
      ->check(CLI::Range(1, 100));
  bench_cmd->add_option("-w,--workers", bench.workers, "Worker threads (0: one per core)")
      ->default_val(0);
  bench_cmd->add_flag("--decisions", bench.decisions,
                      "Also serialize decisions (to /dev/null); default measures decode, "
                      "validate, dedup and routing only");

  bench_cmd->add_flag("--no-features", bench.no_features,
                      "Skip the pipeline's features: measure decode, validate, dedup and routing");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  try {
    if (*run_cmd) return vigil::app::Run(run);
    if (*check_cmd) return vigil::app::Check(check_pipeline, check_input);
    if (*gen_cmd) return vigil::app::Generate(gen);
    if (*demo_cmd) return vigil::app::Demo(demo);
    if (*bench_cmd) return vigil::app::Bench(bench);
    if (*reload_cmd) return vigil::app::Reload(reload_dir, reload_pid);
    if (*alerts_cmd) return vigil::app::Alerts(alerts);
    if (*labels_cmd) return vigil::app::Labels(labels);
    if (*train_cmd) return vigil::app::Train(train);
    if (*eval_cmd) return vigil::app::Eval(eval);
  } catch (const vigil::config::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "vigil: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vigil: error: %s\n", e.what());
    return 1;
  }
  return 2;
}
