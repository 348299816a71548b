#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "vigil/app/commands.h"
#include "vigil/app/run_state.h"
#include "vigil/config/pipeline.h"
#include "vigil/engine/engine.h"
#include "vigil/features/spec.h"
#include "vigil/source/generator.h"
#include "vigil/source/record_source.h"

namespace vigil::app {

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

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

}  // namespace

int Run(const RunArgs& a) {
  const config::Pipeline pipeline = config::LoadPipelineFile(a.pipeline);
  const features::Spec spec = features::ParseSpec(pipeline);
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

  // Resume: a run into DIR whose run-state says "not completed" carries on where it stopped.
  std::string state_path;
  std::optional<RunState> previous;
  source::FileOptions fopts;
  fopts.framing = pipeline.input.format == config::InputFormat::kCsv ? source::Framing::kCsv
                                                                     : source::Framing::kLines;
  fopts.max_record_bytes = pipeline.input.max_record_bytes;
  if (!dir.empty()) {
    std::filesystem::create_directories(dir);
    state_path = Join(dir, "run-state.json");
    if (!a.overwrite) previous = LoadRunState(state_path);
  }
  if (previous) {
    if (previous->completed) {
      throw std::invalid_argument(fmt::format(
          "{} holds the outputs of a completed run of {}; pass --overwrite to start afresh, or "
          "choose another --out",
          dir, previous->input));
    }
    if (a.input == "-" || previous->input != a.input) {
      throw std::invalid_argument(fmt::format(
          "{} holds an interrupted run of input '{}'; resume it with --input {}, or pass "
          "--overwrite to start afresh",
          dir, previous->input, previous->input));
    }
    opts.skip_decisions = previous->commit.decisions_lines;
    opts.skip_dead_letters = previous->commit.dead_letters_lines;
    opts.skip_late = previous->commit.late_lines;
    std::fprintf(stderr,
                 "vigil: resuming %s: %llu decisions already written; re-reading the input to "
                 "rebuild state, writing only what is new\n",
                 a.input.c_str(), static_cast<unsigned long long>(opts.skip_decisions));
  }

  auto src = source::OpenFile(a.input, fopts);
  engine::Outputs outs;
  auto keep = [&](uint64_t bytes) { return previous ? static_cast<int64_t>(bytes) : -1; };
  outs.decisions = sink::OutputFile::Open(decisions_path,
                                          previous ? keep(previous->commit.decisions_bytes) : -1);
  outs.dead_letters =
      sink::OutputFile::Open(dead_path, previous ? keep(previous->commit.dead_letters_bytes) : -1);
  outs.late = sink::OutputFile::Open(late_path, previous ? keep(previous->commit.late_bytes) : -1);

  if (!state_path.empty()) {
    opts.on_commit = [&](const engine::CommitPoint& c) {
      SaveRunState(state_path, RunState{a.pipeline, a.input, c, false});
    };
  }
  const bool show = ShowProgress(a.progress);
  opts.on_progress = MakeProgress(show);

  InstallSignalHandlers();
  engine::PassThroughStages stages;
  engine::Engine engine(pipeline, &stages, std::move(opts));
  sink::RunSummary summary = engine.Run(*src, outs);
  FinishProgress(show);
  outs = {};  // flush and close before the state says "completed"

  if (!state_path.empty() && summary.completed) {
    std::optional<RunState> last = LoadRunState(state_path);
    if (last) {
      last->completed = true;
      SaveRunState(state_path, *last);
    }
  }
  if (!dir.empty()) WriteSummaryJson(Join(dir, "summary.json"), summary);
  WriteSummaryJson(a.summary_json, summary);
  std::fputs(sink::SummaryText(summary).c_str(), stderr);
  return summary.completed ? 0 : 130;
}

int Demo(const DemoArgs& a) {
  const config::Pipeline pipeline =
      config::LoadPipelineText(kEmbeddedCardFraudPipeline, "<embedded card-fraud.yaml>");
  const features::Spec spec = features::ParseSpec(pipeline);
  source::GeneratorOptions g;
  g.events = a.events;
  g.seed = a.seed;
  auto src = source::OpenGenerator(g);

  std::filesystem::create_directories(a.out_dir);
  engine::Outputs outs;
  outs.decisions = sink::OutputFile::Open(Join(a.out_dir, "decisions.jsonl"));
  outs.dead_letters = sink::OutputFile::Open(Join(a.out_dir, "dead_letters.jsonl"));
  outs.late = sink::OutputFile::Open(Join(a.out_dir, "late.jsonl"));

  engine::RunOptions opts;
  opts.speed = ParseSpeed(a.speed);
  opts.workers = a.workers;
  opts.stop = &g_stop;
  opts.features = &spec;
  opts.emit_features = a.emit_features;
  const bool show = ShowProgress(a.progress);
  opts.on_progress = MakeProgress(show);
  std::fprintf(stderr,
               "vigil demo: %llu generated card transactions -> card-fraud pipeline -> %s/\n",
               static_cast<unsigned long long>(a.events), a.out_dir.c_str());

  InstallSignalHandlers();
  engine::PassThroughStages stages;
  engine::Engine engine(pipeline, &stages, std::move(opts));
  sink::RunSummary summary = engine.Run(*src, outs);
  FinishProgress(show);
  outs = {};
  WriteSummaryJson(Join(a.out_dir, "summary.json"), summary);
  std::fputs(sink::SummaryText(summary).c_str(), stderr);
  std::fprintf(stderr, "  outputs: %s/decisions.jsonl, dead_letters.jsonl, summary.json\n",
               a.out_dir.c_str());
  return summary.completed ? 0 : 130;
}

}  // namespace vigil::app
