// Cost of the card-fraud example's feature set (examples/card-fraud.yaml: 3 entities, 21
// features) per event, on generated card traffic, and its bytes of state per entity; and the
// time to checkpoint and restore one worker's state of 1M cards. *WithAnomaly adds one
// anomaly score over three card inputs to the example (its cost, docs/features.md).
// Run: build/release/src/vigil/features/feature_engine_benchmark
// VIGIL_BENCH_SMOKE=1 shrinks every case a hundredfold (events, cards) so that scripts/test can
// run each one once under the sanitizers in seconds; its figures mean nothing.
// VIGIL_BENCH_PIPELINE=FILE runs the cases on another pipeline's features (over the same
// generated card traffic, so its fields must be the generator's): scripts/bench-ablation uses
// it to time the example with groups of features left out.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/config/pipeline.h"
#include "vigil/decode/decoder.h"
#include "vigil/features/feature_engine.h"
#include "vigil/features/spec.h"
#include "vigil/source/generator.h"
#include "vigil/source/record_source.h"

namespace {

// n, or n / 100 in a smoke run (VIGIL_BENCH_SMOKE set and not "0").
int64_t Scaled(int64_t n) {
  static const bool smoke = [] {
    const char* v = std::getenv("VIGIL_BENCH_SMOKE");
    return v != nullptr && *v != '\0' && std::string_view(v) != "0";
  }();
  return smoke ? std::max<int64_t>(1, n / 100) : n;
}

struct Fixture {
  vigil::config::Pipeline pipeline;
  vigil::features::Spec spec;
  std::vector<vigil::Event> events;
  std::vector<std::vector<vigil::Hash128>> keys;         // by event, by entity (lo=hi=0: none)
  std::vector<std::vector<vigil::Hash128>> entity_keys;  // the same by entity, by event

  // The pipeline and its features spec; `extra` as for the constructor.
  void Load(const std::string& path, const std::string& extra) {
    if (extra.empty()) {
      pipeline = vigil::config::LoadPipelineFile(path);
    } else {
      std::ifstream in(path);
      std::stringstream text;
      text << in.rdbuf();
      std::string yaml = text.str();
      const std::string anchor = "op: geo_speed, lat: lat, lon: lon}\n";
      const size_t at = yaml.find(anchor);
      if (at == std::string::npos) {
        std::fprintf(stderr, "%s: no line ending in \"%s\" to add features after\n", path.c_str(),
                     anchor.substr(0, anchor.size() - 1).c_str());
        std::exit(2);
      }
      yaml.insert(at + anchor.size(), extra);
      pipeline = vigil::config::LoadPipelineText(yaml, path);
    }
    spec = vigil::features::ParseSpec(pipeline);
  }

  // `extra`: feature lines inserted after the example's last card feature.
  explicit Fixture(uint64_t n, const std::string& extra = "") {
    const char* other = std::getenv("VIGIL_BENCH_PIPELINE");
    const std::string path = other != nullptr && *other != '\0'
                                 ? std::string(other)
                                 : std::string(VIGIL_SOURCE_DIR "/examples/card-fraud.yaml");
    try {
      Load(path, extra);
    } catch (const std::exception& e) {  // a pipeline file given that does not load
      std::fprintf(stderr, "%s\n", e.what());
      std::exit(2);
    }
    vigil::source::GeneratorOptions g;
    g.events = n;
    g.seed = 5;
    auto src = vigil::source::OpenGenerator(g);
    auto decoder = vigil::decode::MakeDecoder(pipeline);
    std::vector<vigil::source::Record> recs;
    while (src->Next(recs, 1024)) {
      for (const auto& r : recs) {
        vigil::Event e;
        if (!decoder->Decode(r.text, e).ok()) continue;
        std::vector<vigil::Hash128> k;
        for (const auto& en : spec.entities) {
          const vigil::Value& v = e.values[static_cast<size_t>(en.field)];
          k.push_back(v.kind == vigil::Value::Kind::kString ? vigil::HashId(e.Str(v))
                                                            : vigil::Hash128{0, 0});
        }
        keys.push_back(std::move(k));
        events.push_back(std::move(e));
      }
    }
    entity_keys.resize(spec.entities.size());
    for (const auto& k : keys) {
      for (size_t en = 0; en < k.size(); ++en) entity_keys[en].push_back(k[en]);
    }
  }
};

const Fixture& Data() {
  static const Fixture f(static_cast<uint64_t>(Scaled(500000)));
  return f;
}

// The example plus one anomaly score over three card inputs (docs/features.md).
const Fixture& DataWithAnomaly() {
  static const Fixture f(static_cast<uint64_t>(Scaled(500000)),
                         "  - {name: card_anomaly, entity: card, op: anomaly, of: [amount, "
                         "card_km_from_last, card_secs_since_last]}\n");
  return f;
}

// The per-event figures every feature-loop case reports.
void ReportPerEvent(benchmark::State& state, uint64_t processed, size_t features) {
  state.SetItemsProcessed(static_cast<int64_t>(processed));
  state.counters["events"] = static_cast<double>(processed);  // for scripts/bench-instructions
  state.counters["features"] = static_cast<double>(features);
  state.counters["ns_per_event"] =
      benchmark::Counter(static_cast<double>(processed) * 1e-9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// All of one event's feature work on one worker: every entity's update, then the derived
// features. Runs through the whole generated stream (weeks of traffic), so state grows to
// the stream's real entity count and cache behaviour is realistic. The stored events
// themselves (500k, each with its own heap vectors) are a cache miss each, which a worker's
// freshly decoded batch is not; with kEventsCached the loop prefetches each event's values,
// strings and keys three events ahead, so the figure is the engine's work without those misses.
template <bool kEventsCached = false>
void CardFraudFeatures(benchmark::State& state, const Fixture& f) {
  const size_t fc = f.spec.features.size();
  std::vector<double> row(fc);
  uint64_t processed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    vigil::features::FeatureEngine engine(f.pipeline, f.spec);
    state.ResumeTiming();
    const size_t n = f.events.size();
    for (size_t i = 0; i < n; ++i) {
      if constexpr (kEventsCached) {
        if (i + 3 < n) {
          const vigil::Event& ev = f.events[i + 3];
          const auto* values = reinterpret_cast<const char*>(ev.values.data());
          for (size_t at = 0; at < ev.values.size() * sizeof(vigil::Value); at += 64) {
            __builtin_prefetch(values + at);
          }
          for (size_t at = 0; at < ev.arena.size(); at += 64)
            __builtin_prefetch(ev.arena.data() + at);
          __builtin_prefetch(f.keys[i + 3].data());
          if (i + 4 < n) __builtin_prefetch(&f.events[i + 4]);
        }
      }
      // As the engine's worker does over a batch: the index entries of the entities two
      // events ahead, the state of those one event ahead.
      for (size_t en = 0; en < f.spec.entities.size(); ++en) {
        if (i + 2 < n) engine.PrefetchIndex(static_cast<int>(en), f.keys[i + 2][en]);
        if (i + 1 < n) engine.PrefetchState(static_cast<int>(en), f.keys[i + 1][en]);
      }
      for (size_t en = 0; en < f.spec.entities.size(); ++en) {
        const vigil::Hash128& k = f.keys[i][en];
        if (k.lo == 0 && k.hi == 0) continue;
        engine.UpdateEntity(static_cast<int>(en), k, f.events[i], row);
      }
      engine.Derive(f.events[i], row);
      benchmark::DoNotOptimize(row.data());
    }
    processed += f.events.size();
    state.PauseTiming();
    state.counters["entities"] = static_cast<double>(engine.EntityCount());
    state.counters["state_bytes_per_entity"] =
        static_cast<double>(engine.StateBytes()) / static_cast<double>(engine.EntityCount());
    for (size_t en = 0; en < f.spec.entities.size(); ++en) {
      state.counters["blob_bytes_" + f.spec.entities[en].name] =
          static_cast<double>(engine.EntityBytes(static_cast<int>(en)));
    }
    state.ResumeTiming();
  }
  ReportPerEvent(state, processed, fc);
}
void BM_CardFraudFeatures(benchmark::State& state) { CardFraudFeatures(state, Data()); }
BENCHMARK(BM_CardFraudFeatures)->Unit(benchmark::kMillisecond)->Iterations(3);
void BM_CardFraudFeaturesWithAnomaly(benchmark::State& state) {
  CardFraudFeatures(state, DataWithAnomaly());
}
BENCHMARK(BM_CardFraudFeaturesWithAnomaly)->Unit(benchmark::kMillisecond)->Iterations(3);
void BM_CardFraudFeaturesEventsCached(benchmark::State& state) {
  CardFraudFeatures<true>(state, Data());
}
BENCHMARK(BM_CardFraudFeaturesEventsCached)->Unit(benchmark::kMillisecond)->Iterations(3);

// As the engine's worker runs it (src/vigil/engine/engine.cc: phase 1, then Derive in phase
// 2): the stream in batches of the pipeline's batch_size; per batch, each entity type in turn
// over the batch's events that have it (one UpdateEntities run, as the worker's), then each
// event's derived features. Each batch's events are read once, untimed, before its work: the
// router has just decoded them, so a worker finds them in cache.
void BM_CardFraudFeaturesAsWorker(benchmark::State& state) {
  const Fixture& f = Data();
  const size_t fc = f.spec.features.size();
  const size_t batch = f.pipeline.batch_size;
  const size_t entities = f.spec.entities.size();
  std::vector<double> feats(batch * fc);
  std::vector<uint32_t> own;  // the batch's events that have the entity type at hand
  own.reserve(batch);
  uint64_t processed = 0;
  uint64_t touched = 0;
  for (auto _ : state) {
    state.PauseTiming();
    vigil::features::FeatureEngine engine(f.pipeline, f.spec);
    state.ResumeTiming();
    const size_t n = f.events.size();
    for (size_t at = 0; at < n; at += batch) {
      const size_t end = std::min(n, at + batch);
      state.PauseTiming();
      for (size_t i = at; i < end; ++i) {
        const vigil::Event& ev = f.events[i];
        for (const vigil::Value& v : ev.values) touched += static_cast<uint64_t>(v.kind);
        for (const char c : ev.arena) touched += static_cast<uint64_t>(c);
        touched += f.keys[i][0].lo;
      }
      state.ResumeTiming();
      for (size_t en = 0; en < entities; ++en) {
        own.clear();
        for (size_t i = at; i < end; ++i) {
          if (f.keys[i][en].lo != 0 || f.keys[i][en].hi != 0)
            own.push_back(static_cast<uint32_t>(i - at));
        }
        engine.UpdateEntities(static_cast<int>(en), own, f.entity_keys[en].data() + at,
                              f.events.data() + at, feats);
      }
      for (size_t i = at; i < end; ++i) {
        engine.Derive(f.events[i], std::span<double>(feats.data() + (i - at) * fc, fc));
      }
      benchmark::DoNotOptimize(feats.data());
    }
    processed += n;
  }
  benchmark::DoNotOptimize(touched);
  ReportPerEvent(state, processed, fc);
}
BENCHMARK(BM_CardFraudFeaturesAsWorker)->Unit(benchmark::kMillisecond)->Iterations(3);

// An engine holding `cards` card entities (and the merchants and devices of the events that
// made them), for the checkpoint benchmarks: each card gets one generated event. With
// `partitions`, card c is tagged as partition c % partitions (as a Kafka run keys them).
std::unique_ptr<vigil::features::FeatureEngine> EngineWithCards(const Fixture& f, int64_t cards,
                                                                int partitions = 0) {
  auto engine = std::make_unique<vigil::features::FeatureEngine>(f.pipeline, f.spec);
  std::vector<double> row(f.spec.features.size());
  for (int64_t c = 0; c < cards; ++c) {
    const size_t i = static_cast<size_t>(c) % f.events.size();
    vigil::Hash128 card = vigil::HashId("card-" + std::to_string(c));
    if (partitions > 0) card = vigil::WithTag(card, static_cast<uint16_t>(c % partitions + 1));
    engine->UpdateEntity(0, card, f.events[i], row);
    for (size_t en = 1; en < f.spec.entities.size(); ++en) {
      const vigil::Hash128& k = f.keys[i][en];
      if (k.lo != 0 || k.hi != 0) engine->UpdateEntity(static_cast<int>(en), k, f.events[i], row);
    }
  }
  return engine;
}

// Growing the state: `cards` new cards, one event each, as a stream of first-seen cards
// does. ns per new entity, and the longest single update (`max_update_ms`): the table grows
// its storage in the middle of some update, so the longest is the cost of one growth step.
void BM_NewCards(benchmark::State& state) {
  const Fixture& f = Data();
  const int64_t cards = state.range(0);
  std::vector<double> row(f.spec.features.size());
  std::vector<vigil::Hash128> keys(static_cast<size_t>(cards));
  for (int64_t c = 0; c < cards; ++c)
    keys[static_cast<size_t>(c)] = vigil::HashId("card-" + std::to_string(c));
  double max_ns = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto engine = std::make_unique<vigil::features::FeatureEngine>(f.pipeline, f.spec);
    state.ResumeTiming();
    for (int64_t c = 0; c < cards; ++c) {
      const auto t0 = std::chrono::steady_clock::now();
      engine->UpdateEntity(0, keys[static_cast<size_t>(c)],
                           f.events[static_cast<size_t>(c) % f.events.size()], row);
      const double ns =
          std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
      if (ns > max_ns) max_ns = ns;
    }
    state.PauseTiming();
    bytes = engine->StateBytes();
    engine.reset();
    state.ResumeTiming();
  }
  state.counters["max_update_ms"] = max_ns / 1e6;
  state.counters["state_bytes_per_card"] = static_cast<double>(bytes) / static_cast<double>(cards);
  state.counters["ns_per_card"] = benchmark::Counter(
      static_cast<double>(cards * static_cast<int64_t>(state.iterations())) * 1e-9,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_NewCards)->Arg(Scaled(2000000))->Unit(benchmark::kMillisecond)->Iterations(2);

// The example's feature work with a production-sized card population: `cards` cards made
// first (one event each, ~0.9 KiB of state per card), then the generated stream with each
// event's card replaced by one of them, so nearly every event's card is a cache miss and,
// with 4 KiB pages, a TLB miss too. The merchant and device entities are the stream's own.
void BM_CardFraudFeaturesManyCards(benchmark::State& state) {
  const Fixture& f = Data();
  const int64_t cards = state.range(0);
  const auto engine = EngineWithCards(f, cards);
  std::vector<vigil::Hash128> card_of(f.events.size());
  for (size_t i = 0; i < f.events.size(); ++i) {
    const uint64_t c = (f.keys[i][0].lo * 0x9E3779B97F4A7C15ULL + i) % static_cast<uint64_t>(cards);
    card_of[i] = vigil::HashId("card-" + std::to_string(c));
  }
  std::vector<double> row(f.spec.features.size());
  const size_t n = f.events.size();
  uint64_t processed = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) {
      for (size_t en = 0; en < f.spec.entities.size(); ++en) {
        const vigil::Hash128& a =
            en == 0 ? card_of[std::min(i + 2, n - 1)] : f.keys[std::min(i + 2, n - 1)][en];
        const vigil::Hash128& b =
            en == 0 ? card_of[std::min(i + 1, n - 1)] : f.keys[std::min(i + 1, n - 1)][en];
        engine->PrefetchIndex(static_cast<int>(en), a);
        engine->PrefetchState(static_cast<int>(en), b);
      }
      for (size_t en = 0; en < f.spec.entities.size(); ++en) {
        const vigil::Hash128& k = en == 0 ? card_of[i] : f.keys[i][en];
        if (k.lo == 0 && k.hi == 0) continue;
        engine->UpdateEntity(static_cast<int>(en), k, f.events[i], row);
      }
      engine->Derive(f.events[i], row);
      benchmark::DoNotOptimize(row.data());
    }
    processed += n;
  }
  state.counters["entities"] = static_cast<double>(engine->EntityCount());
  state.counters["state_bytes_per_entity"] =
      static_cast<double>(engine->StateBytes()) / static_cast<double>(engine->EntityCount());
  state.counters["ns_per_event"] =
      benchmark::Counter(static_cast<double>(processed) * 1e-9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_CardFraudFeaturesManyCards)
    ->Arg(Scaled(2000000))
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

std::string CheckpointPath() {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/vigil-bench-shard.bin";
}

// Writing one worker's shard of a checkpoint (the whole state, fsynced), and reading it back
// into an empty engine: what a checkpoint pauses the pipeline for, and what a restart costs.
void BM_CheckpointSave(benchmark::State& state) {
  const Fixture& f = Data();
  const auto engine = EngineWithCards(f, state.range(0));
  uint64_t bytes = 0;
  for (auto _ : state) {
    vigil::SnapshotWriter out(CheckpointPath(), "shard", 1);
    engine->Save(out);
    out.Finish();
    bytes = out.Written();
  }
  state.counters["entities"] = static_cast<double>(engine->EntityCount());
  state.counters["file_MiB"] = static_cast<double>(bytes) / 1048576.0;
  state.SetBytesProcessed(static_cast<int64_t>(bytes * state.iterations()));
}
BENCHMARK(BM_CheckpointSave)->Arg(Scaled(1000000))->Unit(benchmark::kMillisecond)->Iterations(2);

void BM_CheckpointRestore(benchmark::State& state) {
  const Fixture& f = Data();
  {
    const auto engine = EngineWithCards(f, state.range(0));
    vigil::SnapshotWriter out(CheckpointPath(), "shard", 1);
    engine->Save(out);
    out.Finish();
  }
  uint64_t entities = 0;
  for (auto _ : state) {
    auto engine = std::make_unique<vigil::features::FeatureEngine>(f.pipeline, f.spec);
    vigil::SnapshotReader in(CheckpointPath(), "shard", 1);
    engine->Load(in, [](const vigil::Hash128& k) { return std::optional(k); });
    entities = engine->EntityCount();
    state.PauseTiming();  // freeing 1M entities is not part of a restore
    engine.reset();
    state.ResumeTiming();
  }
  state.counters["entities"] = static_cast<double>(entities);
  std::remove(CheckpointPath().c_str());
}
BENCHMARK(BM_CheckpointRestore)->Arg(Scaled(1000000))->Unit(benchmark::kMillisecond)->Iterations(2);

// A Kafka run's partition snapshot (engine.cc): one partition's entities of 4 (1M cards in
// all), saved untagged into memory, and loaded into an empty engine under another tag.
std::optional<vigil::Hash128> OfPartition1(const vigil::Hash128& k) {
  return vigil::TagOf(k) == 1 ? std::optional(vigil::WithTag(k, 0)) : std::nullopt;
}

// range(1) 1: into a new buffer each time, as a snapshot turn's batch usually brings (the
// batches cycle, so the one carrying a turn rarely held a snapshot before); 0: into a buffer
// that already held one.
void BM_PartitionSnapshot(benchmark::State& state) {
  const Fixture& f = Data();
  static std::map<int64_t, std::unique_ptr<vigil::features::FeatureEngine>> engines;
  auto& engine = engines[state.range(0)];
  if (!engine) engine = EngineWithCards(f, state.range(0), 4);
  std::string bytes;
  if (state.range(1) == 0) {
    vigil::SnapshotWriter out(&bytes, "ppart", 1);
    engine->Save(out, OfPartition1);
  }
  for (auto _ : state) {
    if (state.range(1) == 1) {
      state.PauseTiming();
      std::string().swap(bytes);
      state.ResumeTiming();
    }
    vigil::SnapshotWriter out(&bytes, "ppart", 1);
    engine->Save(out, OfPartition1);
    out.Finish();
  }
  state.counters["MiB"] = static_cast<double>(bytes.size()) / 1048576.0;
}
BENCHMARK(BM_PartitionSnapshot)
    ->ArgsProduct({{Scaled(1000000)}, {0, 1}})
    ->ArgNames({"cards", "new_buffer"})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(4);

// A Kafka run's snapshot pass (engine.cc, every snapshot interval): each partition the
// worker holds saved untagged into memory. range(0) partitions over 1M cards; range(1) 0: one
// filtered Save per partition (each scans every entity), 1: one SaveSplit for all of them.
void BM_SnapshotEveryPartition(benchmark::State& state) {
  const Fixture& f = Data();
  const auto partitions = static_cast<size_t>(state.range(0));
  static std::map<size_t, std::unique_ptr<vigil::features::FeatureEngine>> engines;
  auto& engine = engines[partitions];
  if (!engine) engine = EngineWithCards(f, Scaled(1000000), static_cast<int>(partitions));
  std::vector<std::string> bytes(partitions);
  const auto snapshot = [&] {
    std::deque<vigil::SnapshotWriter> writers;
    std::vector<vigil::SnapshotWriter*> outs;
    for (auto& b : bytes) {
      b.clear();  // keeps its capacity
      outs.push_back(&writers.emplace_back(&b, "ppart", 1));
    }
    if (state.range(1) == 0) {
      for (size_t p = 0; p < partitions; ++p) {
        const auto tag = static_cast<uint16_t>(p + 1);
        engine->Save(*outs[p], [&](const vigil::Hash128& k) {
          return vigil::TagOf(k) == tag ? std::optional(vigil::WithTag(k, 0)) : std::nullopt;
        });
      }
    } else {
      engine->SaveSplit(outs, [&](const vigil::Hash128& k) {
        const uint16_t tag = vigil::TagOf(k);
        return tag >= 1 && tag <= partitions
                   ? std::optional(std::pair(size_t{tag} - 1, vigil::WithTag(k, 0)))
                   : std::nullopt;
      });
    }
    for (auto* w : outs) w->Finish();
  };
  snapshot();  // untimed: the buffers grow and their pages are touched once
  for (auto _ : state) snapshot();
  size_t total = 0;
  for (const auto& b : bytes) total += b.size();
  state.counters["MiB"] = static_cast<double>(total) / 1048576.0;
}
BENCHMARK(BM_SnapshotEveryPartition)
    ->ArgsProduct({{4, 16, 64}, {0, 1}})
    ->ArgNames({"partitions", "split"})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);

void BM_PartitionRestore(benchmark::State& state) {
  const Fixture& f = Data();
  std::string bytes;
  {
    const auto engine = EngineWithCards(f, state.range(0), 4);
    vigil::SnapshotWriter out(&bytes, "ppart", 1);
    engine->Save(out, OfPartition1);
    out.Finish();
  }
  uint64_t entities = 0;
  for (auto _ : state) {
    auto engine = std::make_unique<vigil::features::FeatureEngine>(f.pipeline, f.spec);
    vigil::SnapshotReader in(bytes, "partition", "ppart", 1);
    engine->Load(in, [](const vigil::Hash128& k) { return std::optional(vigil::WithTag(k, 9)); });
    entities = engine->EntityCount();
    state.PauseTiming();
    engine.reset();
    state.ResumeTiming();
  }
  state.counters["entities"] = static_cast<double>(entities);
}
BENCHMARK(BM_PartitionRestore)->Arg(Scaled(1000000))->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
