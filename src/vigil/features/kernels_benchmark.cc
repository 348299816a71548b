// Cost per event of the per-entity state kernels, and the bytes of state each layout needs
// (counter `state_bytes`; `heap_bytes` for the HyperLogLog overflow).
// Run a Release build:  build-rel/src/vigil/features/features_benchmark
// Times and values come from precomputed tables so the loop measures the kernels, not an RNG.
// Most cases keep one entity hot in L1; *_Slab cases spread events over many entities, so the
// state is a cache miss as in a real worker's slab.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "vigil/features/internal/distinct.h"
#include "vigil/features/internal/ew_stats.h"
#include "vigil/features/internal/geo.h"
#include "vigil/features/internal/recent_set.h"
#include "vigil/features/internal/robust.h"
#include "vigil/features/internal/window.h"

namespace vigil::features_internal {
namespace {

constexpr size_t kEvents = 4096;  // table size (power of two)
constexpr int64_t kMinute = 60ll * 1000000;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Event times for one entity: ~90 s apart on average, so a 5-minute bucket changes every few
// events and the window (1 hour = 12 buckets) keeps ~40 events.
std::vector<int64_t> Times(int64_t mean_gap_us) {
  std::mt19937_64 rng(42);
  std::exponential_distribution<double> gap(1.0 / static_cast<double>(mean_gap_us));
  std::vector<int64_t> t(kEvents);
  int64_t now = 0;
  for (int64_t& x : t) x = now += static_cast<int64_t>(gap(rng));
  return t;
}

std::vector<double> Amounts() {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> amount(3.5, 1.2);
  std::vector<double> v(kEvents);
  for (double& x : v) x = amount(rng);
  return v;
}

// 8-byte-aligned state for `n` entities of `stride` bytes.
std::vector<uint64_t> Slab(size_t n, size_t stride) {
  return std::vector<uint64_t>(n * stride / 8);
}
std::byte* At(std::vector<uint64_t>& slab, size_t stride, size_t i) {
  return reinterpret_cast<std::byte*>(slab.data()) + i * stride;
}

void RingAddRead(benchmark::State& state, RingLayout l) {
  const std::vector<int64_t> times = Times(90 * 1000000);
  const std::vector<double> amounts = Amounts();
  const int64_t span = times.back() + l.step_us * l.buckets;  // keep time moving on wrap
  std::vector<uint64_t> slab = Slab(1, RingBytes(l));
  std::byte* s = At(slab, 0, 0);
  RingInit(l, s);
  size_t i = 0;
  int64_t base = 0;
  for (auto _ : state) {
    const int64_t t = base + times[i];
    RingAdd(l, s, t, amounts[i]);
    benchmark::DoNotOptimize(RingRead(l, s, t));
    if (++i == kEvents) {
      i = 0;
      base += span;
    }
  }
  state.counters["state_bytes"] = static_cast<double>(RingBytes(l));
}

void BM_RingAddRead_12x5min_All(benchmark::State& state) {
  RingAddRead(state, RingLayout{12, 5 * kMinute, true, true, true});
}
void BM_RingAddRead_12x5min_CountSum(benchmark::State& state) {
  RingAddRead(state, RingLayout{12, 5 * kMinute, true, false, false});
}
void BM_RingAddRead_60x1min_All(benchmark::State& state) {
  RingAddRead(state, RingLayout{60, kMinute, true, true, true});
}
BENCHMARK(BM_RingAddRead_12x5min_All);
BENCHMARK(BM_RingAddRead_12x5min_CountSum);
BENCHMARK(BM_RingAddRead_60x1min_All);

// The engine's ring call (the cursor kept by the caller), on card-like bucket gaps over 512
// rings: 55% of adds a whole window or more after the previous one, 30% a few buckets on,
// 15% in the same bucket. range(0) = 0: RingAddAt then RingReadAt (as before the fused
// call), 1: RingAddReadAt.
void BM_RingAddReadAt_CardGaps(benchmark::State& state) {
  const RingLayout l{12, 1, true, false, false, false, false, false};
  constexpr size_t kRings = 512;
  struct Add {
    int64_t k, newest;
    double v;
  };
  std::mt19937_64 rng(1);
  std::vector<Add> adds(kEvents);
  std::vector<int64_t> newest(kRings, kNoBucket);
  const std::vector<double> amounts = Amounts();
  for (size_t i = 0; i < kEvents; ++i) {
    int64_t& n = newest[i % kRings];
    const uint64_t x = rng() % 100;
    const int64_t k = n == kNoBucket ? 1000
                      : x < 55       ? n + l.buckets + static_cast<int64_t>(rng() % 50)
                      : x < 85       ? n + 1 + static_cast<int64_t>(rng() % (l.buckets - 1))
                                     : n;
    adds[i] = {k, n, amounts[i]};
    n = k;
  }
  const size_t stride = RingBytes(l);
  std::vector<uint64_t> slab = Slab(kRings, stride);
  const bool fused = state.range(0) != 0;
  size_t i = 0;
  WindowAgg agg;
  for (auto _ : state) {
    if (i == 0) {
      state.PauseTiming();  // every pass starts from empty rings, as the gaps were drawn
      for (size_t r = 0; r < kRings; ++r) RingInit(l, At(slab, stride, r));
      state.ResumeTiming();
    }
    const Add& a = adds[i];
    std::byte* s = At(slab, stride, i % kRings);
    const uint32_t slot = SlotOf(a.k, l.buckets);
    const int64_t after = a.newest == kNoBucket ? a.k : std::max(a.newest, a.k);
    if (fused) {
      RingAddReadAt(l, s, a.k, slot, a.newest, after, true, a.v, agg);
    } else {
      RingAddAt(l, s, a.k, slot, a.newest, a.v);
      RingReadAt(l, s, a.k, slot, after, agg);
    }
    benchmark::DoNotOptimize(agg);
    if (++i == kEvents) i = 0;
  }
}
BENCHMARK(BM_RingAddReadAt_CardGaps)->Arg(0)->Arg(1);

// The same over a slab of range(0) entities, each event for a random one: 1K entities x 440
// bytes fit in L2; 256K x 440 bytes = 110 MB, so the state comes from DRAM.
void BM_RingAddRead_12x5min_All_Slab(benchmark::State& state) {
  const RingLayout l{12, 5 * kMinute, true, true, true};
  const size_t n = static_cast<size_t>(state.range(0));
  const size_t stride = RingBytes(l);
  std::vector<uint64_t> slab = Slab(n, stride);
  for (size_t e = 0; e < n; ++e) RingInit(l, At(slab, stride, e));
  const std::vector<int64_t> times = Times(1000);  // the worker's stream: ~1000 events/s
  const std::vector<double> amounts = Amounts();
  constexpr size_t kPicks = 1 << 16;
  std::vector<uint32_t> entity(kPicks);
  for (size_t j = 0; j < kPicks; ++j) entity[j] = static_cast<uint32_t>(SplitMix64(j) % n);
  size_t i = 0, j = 0;
  int64_t base = 0;
  for (auto _ : state) {
    std::byte* s = At(slab, stride, entity[j]);
    const int64_t t = base + times[i];
    RingAdd(l, s, t, amounts[i]);
    benchmark::DoNotOptimize(RingRead(l, s, t));
    j = (j + 1) & (kPicks - 1);
    if (++i == kEvents) {
      i = 0;
      base += times.back();
    }
  }
  state.counters["state_bytes"] = static_cast<double>(stride);
  state.counters["entities"] = static_cast<double>(n);
}
BENCHMARK(BM_RingAddRead_12x5min_All_Slab)->Arg(1 << 10)->Arg(1 << 18);

// `pool` distinct values cycled through: 12 stays exact, a large pool overflows to HLL. In HLL
// mode the first add of each 5-minute step rebuilds the union of the buckets, so the cost per
// event depends on the entity's rate: a card (~90 s apart) pays it every ~3 events, a busy
// merchant (~1 s apart) every ~300.
void DistinctAddRead(benchmark::State& state, uint64_t pool, bool read, int64_t mean_gap_us) {
  const DistinctLayout l{12, 5 * kMinute};
  const std::vector<int64_t> times = Times(mean_gap_us);
  std::vector<uint64_t> hashes(kEvents);
  for (size_t j = 0; j < kEvents; ++j) hashes[j] = SplitMix64(j % pool);
  const int64_t span = times.back() + l.step_us * l.buckets;
  std::vector<uint64_t> slab = Slab(1, DistinctBytes(l));
  std::byte* s = At(slab, 0, 0);
  DistinctInit(l, s);
  size_t i = 0;
  int64_t base = 0;
  for (auto _ : state) {
    const int64_t t = base + times[i];
    DistinctAdd(l, s, t, hashes[i]);
    if (read) benchmark::DoNotOptimize(DistinctRead(l, s, t));
    if (++i == kEvents) {
      i = 0;
      base += span;  // a whole window later: an overflowing entity overflows again
    }
  }
  state.counters["state_bytes"] = static_cast<double>(DistinctBytes(l));
  state.counters["heap_bytes"] = static_cast<double>(DistinctHeapBytes(l, s));
  state.counters["approximate"] = DistinctIsApproximate(s) ? 1 : 0;
  DistinctDestroy(l, s);
}
constexpr int64_t kCardGap = 90 * 1000000, kMerchantGap = 1000000;
void BM_DistinctAddRead_Exact(benchmark::State& state) {
  DistinctAddRead(state, 12, true, kCardGap);
}
void BM_DistinctAddRead_Overflow_Card(benchmark::State& state) {
  DistinctAddRead(state, kEvents, true, kCardGap);
}
void BM_DistinctAddRead_Overflow_Merchant(benchmark::State& state) {
  DistinctAddRead(state, kEvents, true, kMerchantGap);
}
void BM_DistinctAdd_Overflow_Merchant(benchmark::State& state) {
  DistinctAddRead(state, kEvents, false, kMerchantGap);
}
BENCHMARK(BM_DistinctAddRead_Exact);
BENCHMARK(BM_DistinctAddRead_Overflow_Card);
BENCHMARK(BM_DistinctAddRead_Overflow_Merchant);
BENCHMARK(BM_DistinctAdd_Overflow_Merchant);

// Capacity 32; values drawn from range(0) distinct ones: 24 mostly hits, 64 about half misses.
void BM_RecentSeenBefore_Cap32(benchmark::State& state) {
  constexpr int kCapacity = 32;
  const auto pool = static_cast<uint64_t>(state.range(0));
  std::mt19937_64 rng(3);
  std::vector<uint64_t> hashes(kEvents);
  for (uint64_t& h : hashes) h = SplitMix64(rng() % pool);
  std::vector<uint64_t> slab = Slab(1, RecentBytes(kCapacity));
  std::byte* s = At(slab, 0, 0);
  RecentInit(kCapacity, s);
  size_t i = 0;
  int64_t hits = 0;
  for (auto _ : state) {
    hits += RecentSeenBefore(kCapacity, s, hashes[i]);
    i = (i + 1) & (kEvents - 1);
  }
  state.counters["state_bytes"] = static_cast<double>(RecentBytes(kCapacity));
  state.counters["hit_ratio"] =
      static_cast<double>(hits) / static_cast<double>(std::max<int64_t>(1, state.iterations()));
}
BENCHMARK(BM_RecentSeenBefore_Cap32)->Arg(24)->Arg(64);

void BM_EwStatsZScoreUpdate(benchmark::State& state) {
  const std::vector<int64_t> times = Times(90 * 1000000);
  const std::vector<double> amounts = Amounts();
  EwStats s{};
  size_t i = 0;
  int64_t base = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.ZScore(amounts[i]));
    s.Update(base + times[i], amounts[i], 24 * 60 * kMinute);
    if (++i == kEvents) {
      i = 0;
      base += times.back();
    }
  }
  state.counters["state_bytes"] = sizeof(EwStats);
}
BENCHMARK(BM_EwStatsZScoreUpdate);

// One input of an `anomaly` feature: robust z of the amount against the last `capacity`
// amounts (median and MAD by two selections), then the amount added. Arg: capacity.
void BM_RobustZAdd(benchmark::State& state) {
  const int capacity = static_cast<int>(state.range(0));
  const std::vector<double> amounts = Amounts();
  std::vector<uint64_t> blob(RobustBytes(capacity) / 8);
  std::byte* s = reinterpret_cast<std::byte*>(blob.data());
  RobustInit(s);
  for (int j = 0; j < capacity; ++j) RobustAdd(capacity, s, amounts[kEvents - 1 - j]);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(RobustZ(s, 8, amounts[i]));
    RobustAdd(capacity, s, amounts[i]);
    i = (i + 1) & (kEvents - 1);
  }
  state.counters["state_bytes"] = static_cast<double>(RobustBytes(capacity));
}
BENCHMARK(BM_RobustZAdd)->Arg(16)->Arg(32)->Arg(64)->Arg(255);

void BM_HaversineSpeed(benchmark::State& state) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> lat(-60, 60), lon(-180, 180);
  std::vector<double> la(kEvents), lo(kEvents);
  for (size_t j = 0; j < kEvents; ++j) {
    la[j] = lat(rng);
    lo[j] = lon(rng);
  }
  size_t i = 1;
  for (auto _ : state) {
    const double km = HaversineKm(la[i - 1], lo[i - 1], la[i], lo[i]);
    benchmark::DoNotOptimize(SpeedKmh(km, 3600 * 1000000ll));
    if (++i == kEvents) i = 1;
  }
}
BENCHMARK(BM_HaversineSpeed);

}  // namespace
}  // namespace vigil::features_internal

BENCHMARK_MAIN();
