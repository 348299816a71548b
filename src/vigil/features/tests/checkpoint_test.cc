// FeatureEngine::Save / Load: state restored from a checkpoint gives exactly the features the
// original engine gives on the events that follow, also when spread over several engines.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vigil/decode/decoder.h"
#include "vigil/features/feature_engine.h"

namespace vigil::features {
namespace {

using ::testing::HasSubstr;

constexpr const char* kPipeline = R"(name: t
input:
  fields:
    - {name: id, type: string}
    - {name: ts, type: timestamp, format: epoch_s}
    - {name: card, type: string}
    - {name: merchant, type: string}
    - {name: amount, type: float}
    - {name: lat, type: lat}
    - {name: lon, type: lon}
event: {id: id, time: ts, key: card}
entities:
  card: {field: card, ttl: 30d}
  merchant: {field: merchant}
features:
  - {name: n_1h, entity: card, op: count, window: 1h, step: 5m}
  - {name: sum_1h, entity: card, op: sum, of: amount, window: 1h, step: 5m}
  - {name: max_1d, entity: card, op: max, of: amount, window: 1d, step: 2h}
  - {name: sd_1d, entity: card, op: stddev, of: amount, window: 1d, step: 2h}
  - {name: merchants_1d, entity: card, op: distinct, of: merchant, window: 1d, step: 2h}
  - {name: new_merchant, entity: card, op: is_new, of: merchant, capacity: 4}
  - {name: ewma, entity: card, op: ewma, of: amount, half_life: 1d}
  - {name: z, entity: card, op: zscore, of: amount, half_life: 1d}
  - {name: last_amount, entity: card, op: last, of: amount}
  - {name: since, entity: card, op: time_since_last}
  - {name: kmh, entity: card, op: geo_speed, lat: lat, lon: lon}
  - {name: odd, entity: card, op: anomaly, of: [amount, kmh], capacity: 16, min_history: 4}
  - {name: cards_1d, entity: merchant, op: distinct, of: card, window: 1d, step: 2h}
  - {name: vs_avg, op: ratio, a: amount, b: ewma}
)";

struct Stream {
  config::Pipeline pipeline = config::LoadPipelineText(kPipeline, "p.yaml");
  Spec spec = ParseSpec(pipeline);
  std::vector<Event> events;

  // 3000 events of 20 cards over ~2 days; card c0 visits 60 merchants, so its distinct-count
  // sketch overflows to HyperLogLog and the checkpoint must carry the register block.
  Stream() {
    auto decoder = decode::MakeDecoder(pipeline);
    for (int i = 0; i < 3000; ++i) {
      const int card = i % 20;
      const int merchant = card == 0 ? i % 60 : (i * 7) % 9;
      const std::string line = fmt::format(
          R"({{"id":"e{}","ts":{},"card":"c{}","merchant":"m{}","amount":{:.2f},"lat":{:.3f},"lon":{:.3f}}})",
          i, 1700000000 + i * 57, card, merchant, 5.0 + (i * 37) % 500, 40.0 + (i % 13) * 0.5,
          -3.0 + (i % 7) * 0.7);
      std::string padded = line + std::string(64, '\0');
      Event e;
      EXPECT_TRUE(decoder->Decode(std::string_view(padded.data(), line.size()), e).ok()) << line;
      events.push_back(std::move(e));
    }
  }

  Hash128 Key(const Event& e, size_t entity) const {
    return HashId(e.Str(static_cast<size_t>(spec.entities[entity].field)));
  }

  // Runs events [from, to) through the engines (entity keys split by owner = key.lo % n) and
  // returns every feature row.
  std::vector<double> Run(std::vector<FeatureEngine*> engines, size_t from, size_t to) const {
    const size_t fc = spec.features.size();
    std::vector<double> rows;
    std::vector<double> row(fc);
    for (size_t i = from; i < to; ++i) {
      std::fill(row.begin(), row.end(), std::nan(""));
      for (size_t en = 0; en < spec.entities.size(); ++en) {
        const Hash128 k = Key(events[i], en);
        engines[k.lo % engines.size()]->UpdateEntity(static_cast<int>(en), k, events[i], row);
      }
      engines[0]->Derive(events[i], row);
      rows.insert(rows.end(), row.begin(), row.end());
    }
    return rows;
  }
};

std::string TempPath(const char* name) { return std::string(::testing::TempDir()) + "/" + name; }

// Bitwise equality, so NaN == NaN and -0 != 0.
void ExpectSameBits(const std::vector<double>& a, const std::vector<double>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(0, std::memcmp(&a[i], &b[i], sizeof(double)))
        << "value " << i << ": " << a[i] << " vs " << b[i];
  }
}

TEST(FeatureCheckpoint, RestoredStateGivesTheSameFeatures) {
  const Stream s;
  FeatureEngine original(s.pipeline, s.spec);
  s.Run({&original}, 0, 1500);
  const std::string path = TempPath("shard.bin");
  {
    SnapshotWriter out(path, "shard", 1);
    original.Save(out);
    out.Finish();
  }
  FeatureEngine restored(s.pipeline, s.spec);
  SnapshotReader in(path, "shard", 1);
  restored.Load(in, [](const Hash128& k) { return std::optional(k); });
  EXPECT_TRUE(in.AtEnd());
  EXPECT_EQ(restored.EntityCount(), original.EntityCount());
  EXPECT_EQ(restored.StateBytes() > 0, true);

  const std::vector<double> want = s.Run({&original}, 1500, 3000);
  ExpectSameBits(s.Run({&restored}, 1500, 3000), want);
  std::remove(path.c_str());
}

// Not a checkpoint, but the same stream: the prefetch hints a worker gives for the entities
// ahead (known, new or unknown keys) leave every feature bit for bit as without them.
TEST(FeatureEngine, PrefetchHintsChangeNothing) {
  const Stream s;
  FeatureEngine plain(s.pipeline, s.spec);
  const std::vector<double> want = s.Run({&plain}, 0, 3000);
  FeatureEngine hinted(s.pipeline, s.spec);
  const size_t fc = s.spec.features.size();
  std::vector<double> rows, row(fc);
  for (size_t i = 0; i < s.events.size(); ++i) {
    for (size_t en = 0; en < s.spec.entities.size(); ++en) {
      const auto e = static_cast<int>(en);
      if (i + 2 < s.events.size()) hinted.PrefetchIndex(e, s.Key(s.events[i + 2], en));
      if (i + 1 < s.events.size()) hinted.PrefetchState(e, s.Key(s.events[i + 1], en));
      hinted.PrefetchIndex(e, HashId("nobody"));
      hinted.PrefetchState(e, HashId("nobody"));
    }
    std::fill(row.begin(), row.end(), std::nan(""));
    for (size_t en = 0; en < s.spec.entities.size(); ++en) {
      hinted.UpdateEntity(static_cast<int>(en), s.Key(s.events[i], en), s.events[i], row);
    }
    hinted.Derive(s.events[i], row);
    rows.insert(rows.end(), row.begin(), row.end());
  }
  ExpectSameBits(rows, want);
  EXPECT_EQ(hinted.EntityCount(), plain.EntityCount());
}

// A worker's run of updates (UpdateEntities: state fetched ahead, found without a second
// lookup) gives every feature bit for bit as UpdateEntity does event by event. Runs of 1 to 45
// updates, the owner's share of each as with two workers; new entities arrive within a run
// (a key fetched ahead before it exists is looked up when its turn comes), and every card is
// evicted between some runs, so slots are freed and taken again by new entities.
TEST(FeatureEngine, RunsOfUpdatesGiveTheSameFeaturesAsOneByOne) {
  const Stream s;
  FeatureEngine plain(s.pipeline, s.spec);
  std::vector<std::unique_ptr<FeatureEngine>> workers;
  for (int w = 0; w < 2; ++w)
    workers.push_back(std::make_unique<FeatureEngine>(s.pipeline, s.spec));
  const size_t fc = s.spec.features.size();
  const size_t entities = s.spec.entities.size();
  std::vector<double> want, got, row(fc);
  std::vector<Hash128> keys;
  std::vector<uint32_t> mine;
  int evictions = 0;
  size_t from = 0;
  for (size_t run = 1; from < s.events.size(); ++run) {
    const size_t to = std::min(s.events.size(), from + run % 45 + 1);
    if (run % 15 == 0) {
      const int64_t later = s.events[from].time_us + int64_t{31} * 24 * 3600 * 1000000;
      plain.EvictIdle(later, 1u << 20);
      for (auto& w : workers) w->EvictIdle(later, 1u << 20);
      ++evictions;
    }
    for (size_t i = from; i < to; ++i) {
      std::fill(row.begin(), row.end(), std::nan(""));
      for (size_t en = 0; en < entities; ++en) {
        plain.UpdateEntity(static_cast<int>(en), s.Key(s.events[i], en), s.events[i], row);
      }
      plain.Derive(s.events[i], row);
      want.insert(want.end(), row.begin(), row.end());
    }
    std::vector<double> rows((to - from) * fc, std::nan(""));
    for (size_t en = 0; en < entities; ++en) {
      keys.clear();
      for (size_t i = from; i < to; ++i) keys.push_back(s.Key(s.events[i], en));
      for (size_t w = 0; w < workers.size(); ++w) {
        mine.clear();
        for (size_t i = 0; i < keys.size(); ++i) {
          if (keys[i].lo % workers.size() == w) mine.push_back(static_cast<uint32_t>(i));
        }
        workers[w]->UpdateEntities(static_cast<int>(en), mine, keys.data(), s.events.data() + from,
                                   rows);
      }
    }
    for (size_t i = from; i < to; ++i) {
      workers[0]->Derive(s.events[i], std::span<double>(rows).subspan((i - from) * fc, fc));
    }
    got.insert(got.end(), rows.begin(), rows.end());
    from = to;
  }
  EXPECT_GE(evictions, 4);
  ExpectSameBits(got, want);
  EXPECT_EQ(workers[0]->EntityCount() + workers[1]->EntityCount(), plain.EntityCount());
}

TEST(FeatureCheckpoint, OneShardSpreadOverTwoEngines) {
  const Stream s;
  FeatureEngine original(s.pipeline, s.spec);
  s.Run({&original}, 0, 1000);
  const std::string path = TempPath("shard-split.bin");
  {
    SnapshotWriter out(path, "shard", 1);
    original.Save(out);
    out.Finish();
  }
  FeatureEngine a(s.pipeline, s.spec), b(s.pipeline, s.spec);
  {
    SnapshotReader in(path, "shard", 1);
    a.Load(in, [](const Hash128& k) { return k.lo % 2 == 0 ? std::optional(k) : std::nullopt; });
  }
  {
    SnapshotReader in(path, "shard", 1);
    b.Load(in, [](const Hash128& k) { return k.lo % 2 == 1 ? std::optional(k) : std::nullopt; });
  }
  EXPECT_EQ(a.EntityCount() + b.EntityCount(), original.EntityCount());
  EXPECT_GT(a.EntityCount(), 0u);
  EXPECT_GT(b.EntityCount(), 0u);
  const std::vector<double> want = s.Run({&original}, 1000, 3000);
  ExpectSameBits(s.Run({&a, &b}, 1000, 3000), want);
  std::remove(path.c_str());
}

// A partition's entities leave one engine (saved under other keys into memory, then dropped)
// and arrive in another under their own keys again: the two engines then compute what the
// original would have.
TEST(FeatureCheckpoint, SomeEntitiesMoveThroughAMemorySnapshot) {
  const Stream s;
  FeatureEngine original(s.pipeline, s.spec);
  s.Run({&original}, 0, 1000);
  FeatureEngine stay(s.pipeline, s.spec), moved(s.pipeline, s.spec);
  std::string bytes;
  {
    SnapshotWriter all(&bytes, "shard", 1);
    original.Save(all);
    all.Finish();
    SnapshotReader in(bytes, "all", "shard", 1);
    stay.Load(in, [](const Hash128& k) { return std::optional(k); });
  }
  const uint64_t total = stay.EntityCount();
  const auto odd = [](const Hash128& k) { return k.lo % 2 == 1; };
  {
    SnapshotWriter out(&bytes, "part", 1);
    stay.Save(out, [&](const Hash128& k) {
      return odd(k) ? std::optional(Hash128{k.lo, ~k.hi}) : std::nullopt;
    });
    out.Finish();
  }
  stay.Drop(odd);
  SnapshotReader in(bytes, "partition 3", "part", 1);
  moved.Load(in, [](const Hash128& k) { return std::optional(Hash128{k.lo, ~k.hi}); });
  EXPECT_TRUE(in.AtEnd());
  EXPECT_GT(moved.EntityCount(), 0u);
  EXPECT_EQ(stay.EntityCount() + moved.EntityCount(), total);
  const std::vector<double> want = s.Run({&original}, 1000, 3000);
  ExpectSameBits(s.Run({&stay, &moved}, 1000, 3000), want);
}

// Several partitions saved in one pass (SaveSplit) get exactly what one filtered Save per
// partition writes, and together they restore every entity (c0's overflowed sketch too).
TEST(FeatureCheckpoint, ASplitSaveWritesWhatOneSavePerPartitionWrites) {
  const Stream s;
  FeatureEngine original(s.pipeline, s.spec);
  s.Run({&original}, 0, 1000);
  // Three partitions by key; a quarter of the entities (lo % 4 == 3) in none of them.
  const auto part = [](const Hash128& k) -> std::optional<size_t> {
    return k.lo % 4 < 3 ? std::optional<size_t>(k.lo % 4) : std::nullopt;
  };
  const auto renamed = [](const Hash128& k) { return Hash128{k.lo, ~k.hi}; };
  std::vector<std::string> one_each(3), split(3);
  for (size_t p = 0; p < 3; ++p) {
    SnapshotWriter out(&one_each[p], "part", 1);
    original.Save(out, [&](const Hash128& k) {
      return part(k) == p ? std::optional(renamed(k)) : std::nullopt;
    });
    out.Finish();
  }
  {
    SnapshotWriter a(&split[0], "part", 1), b(&split[1], "part", 1), c(&split[2], "part", 1);
    const std::vector<SnapshotWriter*> outs = {&a, &b, &c};
    original.SaveSplit(outs, [&](const Hash128& k) -> std::optional<std::pair<size_t, Hash128>> {
      if (const auto p = part(k)) return std::pair(*p, renamed(k));
      return std::nullopt;
    });
    for (SnapshotWriter* w : outs) w->Finish();
  }
  EXPECT_EQ(split, one_each);

  FeatureEngine restored(s.pipeline, s.spec);
  for (size_t p = 0; p < 3; ++p) {
    SnapshotReader in(split[p], "partition", "part", 1);
    restored.Load(in, [&](const Hash128& k) { return std::optional(renamed(k)); });
    EXPECT_TRUE(in.AtEnd());
  }
  const uint64_t in_parts = restored.EntityCount();
  {
    std::string bytes;
    SnapshotWriter out(&bytes, "part", 1);
    original.Save(out, [&](const Hash128& k) { return part(k) ? std::nullopt : std::optional(k); });
    out.Finish();
    SnapshotReader in(bytes, "the rest", "part", 1);
    restored.Load(in, [](const Hash128& k) { return std::optional(k); });
  }
  EXPECT_GT(in_parts, 0u);
  EXPECT_LT(in_parts, original.EntityCount());
  EXPECT_EQ(restored.EntityCount(), original.EntityCount());
  const std::vector<double> want = s.Run({&original}, 1000, 3000);
  ExpectSameBits(s.Run({&restored}, 1000, 3000), want);
}

// Saves walk the entities' slots, and freed slots are reused: after entities were dropped and
// came back, and were evicted and half of them came back (the other slots left free), a save
// holds exactly the live entities, each once.
TEST(FeatureCheckpoint, ASaveAfterEntitiesLeftAndCameBackHoldsTheLiveOnes) {
  const Stream s;
  FeatureEngine original(s.pipeline, s.spec);
  s.Run({&original}, 0, 1000);
  const uint64_t all = original.EntityCount();
  original.Drop([](const Hash128& k) { return k.lo % 3 == 0; });
  const uint64_t kept = original.EntityCount();
  ASSERT_LT(kept, all);
  s.Run({&original}, 1000, 1500);  // the dropped ones come back, into freed slots
  ASSERT_EQ(original.EntityCount(), all);
  // Every card idle for longer than its 30-day ttl: evicted; merchants have no ttl.
  original.EvictIdle(s.events[1499].time_us + int64_t{31} * 86400 * 1000000, 1 << 20);
  const uint64_t merchants = original.EntityCount();
  ASSERT_LT(merchants, all);
  s.Run({&original}, 1500, 1510);  // 10 of the 20 cards again, into evicted ones' slots

  const auto round_trip = [&](FeatureEngine& into) {
    std::string bytes;
    SnapshotWriter out(&bytes, "shard", 1);
    original.Save(out);
    out.Finish();
    SnapshotReader in(bytes, "shard", "shard", 1);
    into.Load(in, [](const Hash128& k) { return std::optional(k); });
    EXPECT_TRUE(in.AtEnd());
  };
  FeatureEngine whole(s.pipeline, s.spec);
  round_trip(whole);
  EXPECT_EQ(whole.EntityCount(), original.EntityCount());
  // Split in two by key parity: the parts together are every live entity once.
  std::string even, odd;
  {
    SnapshotWriter a(&even, "part", 1), b(&odd, "part", 1);
    const std::vector<SnapshotWriter*> outs = {&a, &b};
    original.SaveSplit(outs, [](const Hash128& k) -> std::optional<std::pair<size_t, Hash128>> {
      return std::pair(static_cast<size_t>(k.lo % 2), k);
    });
    a.Finish();
    b.Finish();
  }
  FeatureEngine parts(s.pipeline, s.spec);
  for (const std::string* p : {&even, &odd}) {
    SnapshotReader in(*p, "part", "part", 1);
    parts.Load(in, [](const Hash128& k) { return std::optional(k); });
    EXPECT_TRUE(in.AtEnd());
  }
  EXPECT_EQ(parts.EntityCount(), original.EntityCount());
  const std::vector<double> want = s.Run({&original}, 1510, 3000);
  ExpectSameBits(s.Run({&whole}, 1510, 3000), want);
  ExpectSameBits(s.Run({&parts}, 1510, 3000), want);
}

TEST(FeatureCheckpoint, StateOfAnotherSpecIsRefused) {
  const Stream s;
  FeatureEngine original(s.pipeline, s.spec);
  s.Run({&original}, 0, 100);
  const std::string path = TempPath("shard-other.bin");
  {
    SnapshotWriter out(path, "shard", 1);
    original.Save(out);
    out.Finish();
  }
  std::string text = kPipeline;
  text.replace(text.find("window: 1h, step: 5m}"), 21, "window: 2h, step: 5m}");
  const config::Pipeline other = config::LoadPipelineText(text, "p.yaml");
  const Spec other_spec = ParseSpec(other);
  FeatureEngine engine(other, other_spec);
  SnapshotReader in(path, "shard", 1);
  try {
    engine.Load(in, [](const Hash128& k) { return std::optional(k); });
    FAIL() << "state saved under another spec was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("pipeline changed since the checkpoint"));
  }
  std::remove(path.c_str());
}

}  // namespace
}  // namespace vigil::features
