#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

#include "vigil/app/commands.h"
#include "vigil/app/stages.h"
#include "vigil/config/pipeline.h"
#include "vigil/engine/engine.h"
#include "vigil/features/spec.h"
#include "vigil/source/record_source.h"

namespace vigil::app {

int Bench(const BenchArgs& a) {
  const config::Pipeline pipeline = config::LoadPipelineFile(a.pipeline);
  const features::Spec spec = features::ParseSpec(pipeline);
  struct stat st {};
  if (::stat(a.input.c_str(), &st) != 0) {
    throw std::runtime_error(fmt::format("{}: cannot open input", a.input));
  }
  const source::FileOptions fo = InputOptions(pipeline);
  const std::optional<sink::Tokenizer> tokenizer = MakeTokenizer(pipeline);
  std::vector<double> secs;
  sink::RunSummary last;
  for (int i = 0; i < std::max(1, a.repeat); ++i) {
    auto src = source::OpenFile(a.input, fo);
    engine::Outputs outs;
    // Without --decisions nothing is serialized: the run measures read, decode, validate,
    // dedup, watermark and routing to the workers.
    if (a.decisions) outs.decisions = sink::OutputFile::Open("/dev/null");
    outs.dead_letters = sink::OutputFile::Open("/dev/null");
    outs.late = sink::OutputFile::Open("/dev/null");
    engine::RunOptions o;
    o.workers = a.workers;
    if (tokenizer) o.tokenizer = &*tokenizer;
    if (!a.no_features) o.features = &spec;
    // Rules read features: without features, the run decides nothing beyond approve.
    PipelineStages stages(pipeline, spec);
    engine::PassThroughStages none;
    engine::Engine engine(pipeline, a.no_features ? &none : &stages.factory(), o);
    last = engine.Run(*src, outs);
    secs.push_back(last.elapsed_seconds);
  }
  std::sort(secs.begin(), secs.end());
  const double best = secs.front();
  const double median = secs[secs.size() / 2];
  std::printf(
      "{\"input\":\"%s\",\"records\":%llu,\"bytes\":%lld,\"runs\":%zu,\"best_seconds\":%.4f,"
      "\"median_seconds\":%.4f,\"events_per_second\":%.0f,\"mb_per_second\":%.1f,"
      "\"decisions_serialized\":%s,\"features\":%zu,\"reconciled\":%s}\n",
      a.input.c_str(), static_cast<unsigned long long>(last.read),
      static_cast<long long>(st.st_size), secs.size(), best, median,
      static_cast<double>(last.read) / best, static_cast<double>(st.st_size) / best / 1e6,
      a.decisions ? "true" : "false", a.no_features ? size_t{0} : spec.features.size(),
      last.Reconciles() ? "true" : "false");
  return 0;
}

}  // namespace vigil::app
