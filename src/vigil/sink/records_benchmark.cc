// Decision serialization: one JSON line per event, as the workers write them, for the
// card-fraud example's shape (15 input fields echoed, 21 features, a reason on some).
// Run a Release build:  build/rel/src/vigil/sink/records_benchmark
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "vigil/common/testing/card_fields.h"
#include "vigil/config/pipeline.h"
#include "vigil/sink/records.h"

namespace vigil::sink {
namespace {

constexpr size_t kEvents = 4096;  // distinct events, so branches cannot learn one

struct Corpus {
  config::Pipeline pipeline;
  std::vector<Event> events;
  std::vector<decide::Decision> decisions;
  std::vector<double> features;  // kFeatures per event
  std::vector<std::string> feature_names;
};

constexpr size_t kFeatures = 21;

Corpus MakeCorpus() {
  Corpus c;
  c.pipeline = config::LoadPipelineText(std::string("name: bench\ninput:") + testing::kCardFields,
                                        "bench.yaml");
  const char* const countries[] = {"DE", "US", "GB", "CH", "FR", "NL"};
  const char* const channels[] = {"pos", "ecom", "atm", "moto"};
  for (size_t f = 0; f < kFeatures; ++f)
    c.feature_names.push_back(fmt::format("card_feature_{}", f));
  for (size_t i = 0; i < kEvents; ++i) {
    const auto k = static_cast<unsigned>(i * 2654435761u);
    Event e;
    e.Reset(15);
    auto set_float = [&e](size_t field, double v) {
      e.values[field].kind = Value::Kind::kFloat;
      e.values[field].f = v;
    };
    e.SetString(0, fmt::format("e{:012}", i));
    e.values[1].kind = Value::Kind::kTime;
    e.values[1].i = 1'795'000'000'000'000 + static_cast<int64_t>(k % 86'400'000) * 1000;
    e.time_us = e.values[1].i;
    e.SetString(2, fmt::format("c{:07}", k % 1000003));
    e.SetString(3, fmt::format("a{:06}", k % 500009));
    e.SetString(4, fmt::format("m{:05}", (k >> 5) % 20011));
    e.values[5].kind = Value::Kind::kInt;
    e.values[5].i = 4000 + k % 2000;
    set_float(6, static_cast<double>(k % 100000) / 100.0);
    e.SetString(7, "EUR");
    e.SetString(8, countries[(k >> 2) % 6]);
    set_float(9, -60.0 + static_cast<double>(k % 12000) / 100.0);
    set_float(10, -170.0 + static_cast<double>((k >> 4) % 34000) / 100.0);
    e.SetString(11, fmt::format("d{:08x}", k));
    e.SetString(12, channels[(k >> 9) % 4]);
    e.values[13].kind = Value::Kind::kBool;
    e.values[13].b = k % 97 == 0;
    e.SetString(14, "normal");
    e.id_index = 0;
    e.key_index = 2;
    e.record = i;
    c.events.push_back(std::move(e));

    decide::Decision d;
    d.rules_version = 7;
    if (k % 10 == 0) {  // a tenth fire a rule, as on the example's traffic
      d.outcome = decide::Outcome::kReview;
      d.score = 40;
      decide::Reason& r = d.AddReason();
      r.code = "velocity_10m";
      r.detail = "6 transactions in 10 minutes";
      r.contribution = 40;
    }
    c.decisions.push_back(std::move(d));
    for (size_t f = 0; f < kFeatures; ++f) {
      c.features.push_back(f % 3 == 0 ? static_cast<double>((k >> f) % 50)
                                      : static_cast<double>(k % (1000 + f)) / 7.0);
    }
  }
  return c;
}

void BM_AppendDecision(benchmark::State& state) {
  const Corpus c = MakeCorpus();
  DecisionFormat format;
  format.include_event = state.range(0) != 0;
  if (state.range(1) != 0) format.feature_names = c.feature_names;
  const DecisionWriter writer(c.pipeline, format);
  std::string out;
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    out.clear();
    writer.Append(out, c.events[i], c.decisions[i],
                  std::span<const double>(c.features.data() + i * kFeatures, kFeatures));
    bytes += out.size();
    benchmark::DoNotOptimize(out.data());
    if (++i == kEvents) i = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
// {include_event, features}: the example's default run, then without the echo, then with
// --emit-features as the Kafka example pipeline writes them.
BENCHMARK(BM_AppendDecision)->Args({1, 0})->Args({0, 0})->Args({1, 1});

}  // namespace
}  // namespace vigil::sink

BENCHMARK_MAIN();
