// Unit tests of the per-entity state kernels: window ring, windowed distinct count, recent
// set, exponentially weighted stats and geo. Window semantics are checked by hand on small
// cases and by differential tests against naive implementations that keep every value.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <list>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "vigil/common/hash.h"
#include "vigil/features/internal/distinct.h"
#include "vigil/features/internal/ew_stats.h"
#include "vigil/features/internal/geo.h"
#include "vigil/features/internal/recent_set.h"
#include "vigil/features/internal/robust.h"
#include "vigil/features/internal/window.h"

namespace vigil::features_internal {
namespace {

// A state blob as the features stage hands it out: 8-byte aligned raw bytes, filled with
// garbage first so the kernels' Init must set everything they read.
class Blob {
 public:
  explicit Blob(size_t bytes) : words_((bytes + 7) / 8, 0xA5A5A5A5A5A5A5A5ull) {}
  std::byte* data() { return reinterpret_cast<std::byte*>(words_.data()); }

 private:
  std::vector<uint64_t> words_;
};

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

RingLayout AllAggs(uint16_t buckets, int64_t step_us) {
  return RingLayout{buckets, step_us, true, true, true};
}

// ---------------------------------------------------------------------------------------------
// Window ring

TEST(Ring, BytesPerLayout) {
  EXPECT_EQ(RingBytes({12, 1000, false, false, false}), 8u + 48u);  // count only
  EXPECT_EQ(RingBytes({12, 1000, true, false, false}), 8u + 12u * 12u);
  EXPECT_EQ(RingBytes(AllAggs(12, 1000)), 8u + 12u * 36u);  // 440
  EXPECT_EQ(RingBytes({1, 1, false, false, false}), 16u);   // padded to 8
  EXPECT_EQ(RingBytes(AllAggs(60, 1000)) % 8, 0u);
}

TEST(Ring, EmptyReadsZeroAndNan) {
  const RingLayout l = AllAggs(4, 10);
  Blob b(RingBytes(l));
  RingInit(l, b.data());
  const WindowAgg a = RingRead(l, b.data(), 1000);
  EXPECT_EQ(a.count, 0u);
  EXPECT_EQ(a.sum, 0.0);
  EXPECT_EQ(a.sumsq, 0.0);
  EXPECT_TRUE(std::isnan(a.min));
  EXPECT_TRUE(std::isnan(a.max));
  EXPECT_TRUE(std::isnan(WindowMean(a)));
  EXPECT_TRUE(std::isnan(WindowStddev(a)));
}

TEST(Ring, AggregatesOneBucket) {
  const RingLayout l = AllAggs(4, 10);
  Blob b(RingBytes(l));
  RingInit(l, b.data());
  for (double v : {2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0}) EXPECT_TRUE(RingAdd(l, b.data(), 3, v));
  const WindowAgg a = RingRead(l, b.data(), 9);
  EXPECT_EQ(a.count, 8u);
  EXPECT_EQ(a.sum, 40.0);
  EXPECT_EQ(a.sumsq, 232.0);
  EXPECT_EQ(a.min, 2.0);
  EXPECT_EQ(a.max, 9.0);
  EXPECT_EQ(WindowMean(a), 5.0);
  EXPECT_DOUBLE_EQ(WindowStddev(a), 2.0);  // the textbook example
}

TEST(Ring, AggregatesNotKeptReadAsZeroAndNan) {
  const RingLayout l{4, 10, false, false, false};
  Blob b(RingBytes(l));
  RingInit(l, b.data());
  EXPECT_TRUE(RingAdd(l, b.data(), 0, 5.0));
  const WindowAgg a = RingRead(l, b.data(), 0);
  EXPECT_EQ(a.count, 1u);
  EXPECT_EQ(a.sum, 0.0);
  EXPECT_TRUE(std::isnan(a.min));
  EXPECT_TRUE(std::isnan(a.max));
}

// Window of 6 buckets of 10 us, i.e. 60 us. Reading at t = 159 (last tick of bucket 15) covers
// buckets [10, 15] = t in [100, 159]: a value exactly 60 us old (t = 99) is out, one tick
// younger (t = 100) is in.
TEST(Ring, WindowBoundaryExactlyOneWindowOldIsOut) {
  const RingLayout l = AllAggs(6, 10);
  Blob old_b(RingBytes(l)), young_b(RingBytes(l));
  RingInit(l, old_b.data());
  RingInit(l, young_b.data());
  EXPECT_TRUE(RingAdd(l, old_b.data(), 99, 1.0));
  EXPECT_TRUE(RingAdd(l, young_b.data(), 100, 1.0));
  EXPECT_EQ(RingRead(l, old_b.data(), 159).count, 0u);
  EXPECT_EQ(RingRead(l, young_b.data(), 159).count, 1u);
  // The window moves in whole steps: at t = 160 (bucket 16) the value at 100 is out too, while
  // at the first tick of bucket 15 the window already starts at 100.
  EXPECT_EQ(RingRead(l, young_b.data(), 160).count, 0u);
  EXPECT_EQ(RingRead(l, young_b.data(), 150).count, 1u);
  EXPECT_EQ(RingRead(l, old_b.data(), 150).count, 0u);
  // Same edge when the window is moved by an add rather than a read.
  EXPECT_TRUE(RingAdd(l, young_b.data(), 159, 2.0));
  EXPECT_EQ(RingRead(l, young_b.data(), 159).count, 2u);
  EXPECT_TRUE(RingAdd(l, young_b.data(), 160, 4.0));
  const WindowAgg a = RingRead(l, young_b.data(), 160);
  EXPECT_EQ(a.count, 2u);
  EXPECT_EQ(a.sum, 6.0);
  EXPECT_EQ(a.min, 2.0);
}

// RingAddReadAt against RingAddAt then RingReadAt, as the engine used them: the same state
// bytes and the same aggregates, bit for bit, for every combination of kept aggregates, with
// adds in the newest bucket, a few buckets on, whole windows on, late, too late, and skipped
// (a gate that does not pass); values include zeros of both signs and wide magnitudes.
TEST(Ring, AddReadAtMatchesAddThenRead) {
  auto bits = [](double x) { return std::bit_cast<uint64_t>(x); };
  std::mt19937_64 rng(11);
  for (int aggs = 0; aggs < 16; ++aggs) {
    for (uint16_t nb : {1, 2, 3, 4, 5, 7, 8, 10, 12, 13, 16, 17, 30}) {
      for (bool own : {false, true}) {
        RingLayout l{
            nb, 1000, (aggs & 1) != 0, (aggs & 2) != 0, false, (aggs & 4) != 0, (aggs & 8) != 0,
            own};
        const size_t n = RingBytes(l);
        Blob a(n), b(n);
        RingInit(l, a.data());
        RingInit(l, b.data());
        int64_t newest = kNoBucket;
        int64_t k = 1000;
        for (int i = 0; i < 3000; ++i) {
          const uint64_t r = rng();
          switch (r % 8) {
            case 0:
            case 1:
              break;  // the same bucket
            case 2:
            case 3:
              k += 1 + static_cast<int64_t>((r >> 8) % nb);  // within a window
              break;
            case 4:
              k += nb + static_cast<int64_t>((r >> 8) % 100);  // a window or more
              break;
            case 5:
              k -= static_cast<int64_t>((r >> 8) % (2 * nb + 1));  // late, maybe too late
              break;
            default:
              k = newest == kNoBucket ? k : newest + static_cast<int64_t>((r >> 8) % 3);
              break;
          }
          const bool add = (r >> 20) % 5 != 0;
          double v = std::ldexp(static_cast<double>((r >> 24) % 100000) - 20000.0,
                                static_cast<int>((r >> 44) % 40) - 20);
          if ((r >> 60) == 0) v = -0.0;
          if ((r >> 60) == 1) v = 0.0;
          const uint32_t slot = SlotOf(k, nb);
          const int64_t after = add ? (newest == kNoBucket ? k : std::max(newest, k)) : newest;
          WindowAgg x{}, y{};
          if (add) RingAddAt(l, a.data(), k, slot, newest, v);
          RingReadAt(l, a.data(), k, slot, after, x);
          RingAddReadAt(l, b.data(), k, slot, newest, after, add, v, y);
          ASSERT_EQ(std::memcmp(a.data(), b.data(), n), 0) << "aggs " << aggs << " nb " << nb;
          ASSERT_EQ(x.count, y.count);
          ASSERT_EQ(bits(x.sum), bits(y.sum));
          ASSERT_EQ(bits(x.sumsq), bits(y.sumsq));
          ASSERT_EQ(bits(x.min), bits(y.min));
          ASSERT_EQ(bits(x.max), bits(y.max));
          newest = after;
        }
      }
    }
  }
}

// The order a read adds the buckets in is part of the result: sums of values that are not
// exact in binary round differently in another order, and a min or max over +0.0 and -0.0
// depends on which one meets the other first. A read folds, from the first slot, slots 0, 2,
// ... into one chain and 1, 3, ... into another, and adds the two: as every version has, so
// that an upgrade does not move a feature's last bits.
TEST(Ring, ReadOrderIsPinned) {
  const RingLayout l = AllAggs(4, 10);
  Blob b(RingBytes(l));
  RingInit(l, b.data());
  const double v[4] = {0.1, 0.7, 0.2, 0.3};
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(RingAdd(l, b.data(), 10 * i, v[i]));
  const WindowAgg a = RingRead(l, b.data(), 30);
  const double chains = (0.0 + v[0] + v[2]) + (0.0 + v[1] + v[3]);
  EXPECT_EQ(std::bit_cast<uint64_t>(a.sum), std::bit_cast<uint64_t>(chains));
  EXPECT_NE(chains, (v[0] + v[1]) + (v[2] + v[3]));  // the order matters for these values

  Blob z(RingBytes(l));
  RingInit(l, z.data());
  const double w[4] = {1.0, 0.0, -0.0, 1.0};
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(RingAdd(l, z.data(), 10 * i, w[i]));
  // Chain 0 meets 1 then -0.0; chain 1 meets +0.0 then 1: min(-0.0, +0.0) is the first.
  const WindowAgg m = RingRead(l, z.data(), 30);
  EXPECT_EQ(m.min, 0.0);
  EXPECT_TRUE(std::signbit(m.min));

  Blob y(RingBytes(l));
  RingInit(l, y.data());
  const double u[4] = {-1.0, -0.0, 0.0, -1.0};
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(RingAdd(l, y.data(), 10 * i, u[i]));
  // Chain 0 meets -1 then +0.0; chain 1 meets -0.0 then -1: max(+0.0, -0.0) is the first.
  const WindowAgg x = RingRead(l, y.data(), 30);
  EXPECT_EQ(x.max, 0.0);
  EXPECT_FALSE(std::signbit(x.max));
}

TEST(Ring, BucketIndexIsFloorDivision) {
  EXPECT_EQ(BucketOf(0, 10), 0);
  EXPECT_EQ(BucketOf(9, 10), 0);
  EXPECT_EQ(BucketOf(10, 10), 1);
  EXPECT_EQ(BucketOf(-1, 10), -1);
  EXPECT_EQ(BucketOf(-10, 10), -1);
  EXPECT_EQ(BucketOf(-11, 10), -2);
}

TEST(Ring, LongGapsClearEverything) {
  const RingLayout l = AllAggs(5, 1000);
  Blob b(RingBytes(l));
  RingInit(l, b.data());
  for (int64_t t = 0; t < 5000; t += 100) EXPECT_TRUE(RingAdd(l, b.data(), t, 1.0));
  EXPECT_EQ(RingRead(l, b.data(), 4999).count, 50u);
  // A gap of exactly one window (5 buckets) and one of years: each leaves only the new value.
  EXPECT_TRUE(RingAdd(l, b.data(), 9000, 3.0));
  WindowAgg a = RingRead(l, b.data(), 9000);
  EXPECT_EQ(a.count, 1u);
  EXPECT_EQ(a.max, 3.0);
  EXPECT_TRUE(RingAdd(l, b.data(), 9000 + int64_t{100} * 365 * 86400 * 1000000, 7.0));
  a = RingRead(l, b.data(), 9000 + int64_t{100} * 365 * 86400 * 1000000);
  EXPECT_EQ(a.count, 1u);
  EXPECT_EQ(a.sum, 7.0);
  EXPECT_EQ(a.min, 7.0);
  // A gap of buckets - 1 keeps the newest old bucket.
  Blob c(RingBytes(l));
  RingInit(l, c.data());
  EXPECT_TRUE(RingAdd(l, c.data(), 0, 1.0));
  EXPECT_TRUE(RingAdd(l, c.data(), 4000, 2.0));
  EXPECT_EQ(RingRead(l, c.data(), 4000).count, 2u);
  EXPECT_TRUE(RingAdd(l, c.data(), 5000, 4.0));
  a = RingRead(l, c.data(), 5000);
  EXPECT_EQ(a.count, 2u);
  EXPECT_EQ(a.sum, 6.0);
  // A read far ahead of everything stored sees an empty window.
  EXPECT_EQ(RingRead(l, c.data(), 10000).count, 0u);
  EXPECT_EQ(RingRead(l, c.data(), 9999).count, 1u);
}

TEST(Ring, OutOfOrderAddsKeptWithinWindowDroppedBeyond) {
  const RingLayout l = AllAggs(6, 10);
  Blob b(RingBytes(l));
  RingInit(l, b.data());
  EXPECT_TRUE(RingAdd(l, b.data(), 200, 1.0));   // bucket 20: window [15, 20]
  EXPECT_TRUE(RingAdd(l, b.data(), 150, 2.0));   // bucket 15: oldest live bucket, kept
  EXPECT_FALSE(RingAdd(l, b.data(), 149, 4.0));  // bucket 14: beyond the window, dropped
  EXPECT_TRUE(RingAdd(l, b.data(), 185, -8.0));
  WindowAgg a = RingRead(l, b.data(), 200);
  EXPECT_EQ(a.count, 3u);
  EXPECT_EQ(a.sum, -5.0);
  EXPECT_EQ(a.min, -8.0);
  EXPECT_EQ(a.max, 2.0);
  // Reading at the late value's own time sees what is still stored of its window: buckets
  // [15, 15] here (documented limitation: older buckets were overwritten).
  a = RingRead(l, b.data(), 155);
  EXPECT_EQ(a.count, 1u);
  EXPECT_EQ(a.sum, 2.0);
}

// Keeps every accepted (t, v) and applies the window semantics directly.
class NaiveRing {
 public:
  explicit NaiveRing(RingLayout l) : l_(l) {}
  bool Add(int64_t t, double v) {
    const int64_t k = BucketOf(t, l_.step_us);
    if (has_newest_ && k < newest_ - l_.buckets + 1) return false;
    newest_ = has_newest_ ? std::max(newest_, k) : k;
    has_newest_ = true;
    values_.emplace_back(k, v);
    // Values older than the newest window can never be read again (see Read's `lo`).
    std::erase_if(values_, [&](const auto& p) { return p.first < newest_ - l_.buckets + 1; });
    return true;
  }
  WindowAgg Read(int64_t t) const {
    const double nan = std::nan("");
    WindowAgg a{0, 0, 0, nan, nan};
    if (!has_newest_) return a;
    const int64_t k = BucketOf(t, l_.step_us);
    // In the window, and in a bucket the ring still stores.
    const int64_t lo = std::max(k - l_.buckets + 1, newest_ - l_.buckets + 1);
    for (const auto& [bk, v] : values_) {
      if (bk < lo || bk > k) continue;
      ++a.count;
      if (l_.sum) a.sum += v;
      if (l_.sumsq) a.sumsq += v * v;
      if (l_.minmax) {
        a.min = a.count == 1 ? v : std::min(a.min, v);
        a.max = a.count == 1 ? v : std::max(a.max, v);
      }
    }
    return a;
  }
  std::vector<double> Values(int64_t t) const {
    std::vector<double> out;
    if (!has_newest_) return out;
    const int64_t k = BucketOf(t, l_.step_us);
    const int64_t lo = std::max(k - l_.buckets + 1, newest_ - l_.buckets + 1);
    for (const auto& [bk, v] : values_) {
      if (bk >= lo && bk <= k) out.push_back(v);
    }
    return out;
  }

 private:
  RingLayout l_;
  bool has_newest_ = false;
  int64_t newest_ = 0;
  std::vector<std::pair<int64_t, double>> values_;
};

void ExpectSameAgg(const WindowAgg& got, const WindowAgg& want, const std::string& where) {
  ASSERT_EQ(got.count, want.count) << where;
  ASSERT_EQ(got.sum, want.sum) << where;
  ASSERT_EQ(got.sumsq, want.sumsq) << where;
  if (std::isnan(want.min)) {
    ASSERT_TRUE(std::isnan(got.min)) << where;
    ASSERT_TRUE(std::isnan(got.max)) << where;
  } else {
    ASSERT_EQ(got.min, want.min) << where;
    ASSERT_EQ(got.max, want.max) << where;
  }
}

// Random in-order steps, out-of-order adds (some live, some too old), gaps of a few buckets,
// of a window and of years; reads before, at and after the newest add. Values are multiples
// of 1/4 below 1024 in magnitude, so every sum is exact in any order and results compare
// with ==.
TEST(Ring, DifferentialAgainstNaive) {
  const std::vector<RingLayout> layouts = {AllAggs(1, 1),
                                           AllAggs(2, 7),
                                           AllAggs(3, 1000),
                                           AllAggs(12, 5000),
                                           AllAggs(60, 1000000),
                                           {7, 13, false, false, false},
                                           {5, 100, true, false, false},
                                           {4, 3, false, false, true}};
  for (const RingLayout& l : layouts) {
    for (uint64_t seed = 1; seed <= 25; ++seed) {
      std::mt19937_64 rng(seed * 7919 + l.buckets);
      auto uniform = [&](int64_t lo, int64_t hi) {
        return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
      };
      const int64_t window = l.step_us * l.buckets;
      Blob b(RingBytes(l));
      RingInit(l, b.data());
      NaiveRing naive(l);
      int64_t t = uniform(0, 3 * window);
      for (int op = 0; op < 300; ++op) {
        const int64_t r = uniform(0, 99);
        if (r < 55) {
          t += uniform(0, 2 * l.step_us);
        } else if (r < 80) {
          // handled below as an out-of-order add
        } else if (r < 95) {
          t += uniform(window - l.step_us, window + l.step_us);
        } else {
          t += uniform(0, int64_t{1} << 40);
        }
        int64_t add_t = t;
        if (r >= 55 && r < 80) add_t = std::max<int64_t>(0, t - uniform(0, window + 2 * l.step_us));
        const double v = static_cast<double>(uniform(-4096, 4095)) / 4;
        const std::string where = "buckets=" + std::to_string(l.buckets) +
                                  " step=" + std::to_string(l.step_us) +
                                  " seed=" + std::to_string(seed) + " op=" + std::to_string(op);
        ASSERT_EQ(RingAdd(l, b.data(), add_t, v), naive.Add(add_t, v)) << where;
        for (int64_t dt : {int64_t{0}, -l.step_us, -window, l.step_us, window - 1,
                           uniform(-2 * window, 2 * window)}) {
          const int64_t rt = std::max<int64_t>(0, t + dt);
          ExpectSameAgg(RingRead(l, b.data(), rt), naive.Read(rt),
                        where + " read_t=" + std::to_string(rt));
        }
      }
    }
  }
}

double NaiveStddev(const std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / static_cast<double>(v.size()));
}

// Real-valued amounts (log-normal, like card spend): min/max exact, mean and stddev close to a
// two-pass reference, at every read.
TEST(Ring, MinMaxStddevMatchNaiveOnRandomAmounts) {
  const RingLayout l = AllAggs(12, 5 * 60 * 1000000ll);  // 1 hour in 5-minute steps
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> amount(3.5, 1.2);
    std::exponential_distribution<double> gap(1.0 / (90 * 1e6));  // ~90 s between events
    Blob b(RingBytes(l));
    RingInit(l, b.data());
    NaiveRing naive(l);
    int64_t t = 0;
    for (int i = 0; i < 300; ++i) {
      t += static_cast<int64_t>(gap(rng));
      const double v = std::round(amount(rng) * 100) / 100;
      ASSERT_TRUE(RingAdd(l, b.data(), t, v));
      naive.Add(t, v);
      const WindowAgg got = RingRead(l, b.data(), t);
      const std::vector<double> vals = naive.Values(t);
      ASSERT_EQ(got.count, vals.size());
      ASSERT_EQ(got.min, *std::min_element(vals.begin(), vals.end()));
      ASSERT_EQ(got.max, *std::max_element(vals.begin(), vals.end()));
      const WindowAgg want = naive.Read(t);
      ASSERT_NEAR(got.sum, want.sum, 1e-9 * std::abs(want.sum));
      const double sd = NaiveStddev(vals);
      const double rms = std::sqrt(want.sumsq / static_cast<double>(vals.size()));
      ASSERT_NEAR(WindowStddev(got), sd, 1e-7 * rms) << "seed " << seed << " i " << i;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Windowed distinct count

class DistinctState {
 public:
  explicit DistinctState(DistinctLayout l) : l_(l), blob_(DistinctBytes(l)) {
    DistinctInit(l_, blob_.data());
  }
  ~DistinctState() { DistinctDestroy(l_, blob_.data()); }
  DistinctState(const DistinctState&) = delete;
  DistinctState& operator=(const DistinctState&) = delete;

  void Add(int64_t t, uint64_t h) { DistinctAdd(l_, blob_.data(), t, h); }
  double Read(int64_t t) { return DistinctRead(l_, blob_.data(), t); }
  bool Approximate() { return DistinctIsApproximate(blob_.data()); }
  size_t HeapBytes() { return DistinctHeapBytes(l_, blob_.data()); }
  std::byte* data() { return blob_.data(); }

 private:
  DistinctLayout l_;
  Blob blob_;
};

TEST(Distinct, InlineStateIs112Bytes) { EXPECT_EQ(DistinctBytes({12, 1000}), 112u); }

TEST(Distinct, ExactUpTo16) {
  DistinctState d({4, 1000});
  EXPECT_EQ(d.Read(0), 0.0);
  for (uint64_t i = 0; i < 16; ++i) {
    d.Add(static_cast<int64_t>(i) * 100, SplitMix64(i));
    d.Add(static_cast<int64_t>(i) * 100 + 1, SplitMix64(i));  // duplicates do not count
    EXPECT_EQ(d.Read(static_cast<int64_t>(i) * 100 + 1), static_cast<double>(i + 1));
  }
  EXPECT_FALSE(d.Approximate());
  EXPECT_EQ(d.HeapBytes(), 0u);
  d.Add(2000, SplitMix64(3));  // a known value in a newer bucket: still 16
  EXPECT_EQ(d.Read(2000), 16.0);
  EXPECT_FALSE(d.Approximate());
}

TEST(Distinct, WindowBoundaryAndExpiry) {
  DistinctState d({6, 10});
  d.Add(100, Hash64("merchant-a"));  // bucket 10
  d.Add(99, Hash64("merchant-b"));   // bucket 9
  EXPECT_EQ(d.Read(100), 2.0);
  EXPECT_EQ(d.Read(149), 2.0);  // window [9, 14]
  EXPECT_EQ(d.Read(150), 1.0);  // window [10, 15]: b (bucket 9) is out
  EXPECT_EQ(d.Read(159), 1.0);
  EXPECT_EQ(d.Read(160), 0.0);
  // Seeing a value again moves it to its latest bucket.
  d.Add(155, Hash64("merchant-a"));
  EXPECT_EQ(d.Read(200), 1.0);
  EXPECT_EQ(d.Read(210), 0.0);
  // Too old for the window ending at the newest bucket (15): dropped.
  d.Add(99, Hash64("merchant-c"));
  EXPECT_EQ(d.Read(155), 1.0);  // window [10, 15]: only a
}

TEST(Distinct, ExpiredEntriesFreeInlineSlots) {
  DistinctState d({3, 1000});
  for (uint64_t i = 0; i < 16; ++i) d.Add(0, SplitMix64(i));
  EXPECT_EQ(d.Read(0), 16.0);
  for (uint64_t i = 100; i < 116; ++i) d.Add(3000, SplitMix64(i));  // bucket 0 has expired
  EXPECT_EQ(d.Read(3000), 16.0);
  EXPECT_FALSE(d.Approximate());
}

TEST(Distinct, SeventeenthLiveValueSwitchesToHll) {
  const DistinctLayout l{12, 1000};
  DistinctState d(l);
  for (uint64_t i = 0; i < 16; ++i) d.Add(static_cast<int64_t>(i % 12) * 1000, SplitMix64(i));
  EXPECT_FALSE(d.Approximate());
  d.Add(11000, SplitMix64(16));
  EXPECT_TRUE(d.Approximate());
  EXPECT_FALSE(DistinctIsDense(d.data()));
  EXPECT_EQ(d.HeapBytes(), 32u + 32u * 4u);  // sparse: 17 registers set, room for 32
  EXPECT_NEAR(d.Read(11000), 17.0, 1.5);     // linear counting is near exact when small
  // The switch kept each value's bucket. Buckets 0..3 held i = 0..3 and 12..15; at t = 15000
  // the window is [4, 15], which leaves i = 4..11 and 16.
  EXPECT_NEAR(d.Read(15000), 9.0, 1.5);
}

// Estimates within 3 standard errors (3 * 1.04 / sqrt(256) = 19.5%) for values spread over a
// window's buckets, on several seeds; then the values leave the window step by step.
TEST(Distinct, HllAccuracyAndExpiry) {
  const DistinctLayout l{6, 1000};
  for (int n : {1000, 100000}) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      DistinctState d(l);
      for (int i = 0; i < n; ++i) {
        const uint64_t h = SplitMix64(seed << 40 | static_cast<uint64_t>(i));
        d.Add((i % 6) * 1000 + 500, h);
        d.Add((i % 6) * 1000 + 501, h);  // repeats do not inflate the estimate
      }
      ASSERT_TRUE(d.Approximate());
      const double est = d.Read(5999);
      EXPECT_NEAR(est, n, 3 * 0.065 * n) << "n " << n << " seed " << seed;
      // Each step drops one sixth of the values; after six nothing is left.
      const double half = d.Read(8999);  // buckets [3, 8]: values with i % 6 in 3..5
      EXPECT_NEAR(half, n / 2.0, 3 * 0.065 * n / 2.0) << "n " << n << " seed " << seed;
      EXPECT_EQ(d.Read(11000), 0.0);
    }
  }
}

TEST(Distinct, RealStringsThroughHash64) {
  DistinctState d({4, 60 * 1000000ll});
  for (int i = 0; i < 5000; ++i) d.Add(i * 1000, Hash64("device-" + std::to_string(i % 2500)));
  EXPECT_NEAR(d.Read(5000 * 1000), 2500.0, 3 * 0.065 * 2500);
}

// After a whole window idle the count is exact again. A dense block is freed then (the next
// overflow starts sparse); a sparse one is kept and reused without allocating.
TEST(Distinct, AfterAWholeWindowIdleCountsExactlyAgain) {
  const DistinctLayout l{4, 1000};
  DistinctState d(l);
  for (uint64_t i = 0; i < 100; ++i) d.Add(0, SplitMix64(i));  // ~85 registers: dense
  ASSERT_TRUE(d.Approximate());
  ASSERT_TRUE(DistinctIsDense(d.data()));
  EXPECT_EQ(d.HeapBytes(), 5u * 256u + 16u);
  EXPECT_EQ(d.Read(4000), 0.0);
  d.Add(4000, SplitMix64(1000));
  EXPECT_FALSE(d.Approximate());
  EXPECT_EQ(d.Read(4000), 1.0);
  EXPECT_EQ(d.HeapBytes(), 0u);  // the dense block was freed
  for (uint64_t i = 0; i < 40; ++i) d.Add(4000, SplitMix64(2000 + i));
  EXPECT_TRUE(d.Approximate());
  EXPECT_FALSE(DistinctIsDense(d.data()));
  EXPECT_NEAR(d.Read(4000), 41.0, 3 * 0.065 * 41);  // none of the old registers came back
  const size_t sparse = d.HeapBytes();
  EXPECT_EQ(sparse, 32u + 64u * 4u);
  const std::byte* block = DistinctHeap(d.data());
  d.Add(8000, SplitMix64(3000));  // idle again: exact, the sparse block kept
  EXPECT_FALSE(d.Approximate());
  EXPECT_EQ(d.HeapBytes(), sparse);
  for (uint64_t i = 0; i < 20; ++i) d.Add(8000, SplitMix64(4000 + i));
  EXPECT_TRUE(d.Approximate());
  EXPECT_EQ(DistinctHeap(d.data()), block) << "the kept sparse block was reused";
  EXPECT_NEAR(d.Read(8000), 21.0, 3 * 0.065 * 21);
}

TEST(Distinct, HllOutOfOrderAndPartialExpiry) {
  const DistinctLayout l{4, 1000};
  DistinctState d(l);
  for (uint64_t i = 0; i < 2000; ++i) d.Add(3000, SplitMix64(i));
  for (uint64_t i = 2000; i < 4000; ++i) d.Add(500, SplitMix64(i));   // bucket 0: live, kept
  for (uint64_t i = 4000; i < 6000; ++i) d.Add(5000, SplitMix64(i));  // bucket 5: window [2, 5]
  for (uint64_t i = 6000; i < 8000; ++i) d.Add(1500, SplitMix64(i));  // bucket 1: dropped
  EXPECT_NEAR(d.Read(5000), 4000.0, 3 * 0.065 * 4000);
  EXPECT_NEAR(d.Read(7999), 2000.0, 3 * 0.065 * 2000);  // window [4, 7]: bucket 5 only
}

TEST(Distinct, MovingStateWithMemcpyTransfersOwnership) {
  const DistinctLayout l{4, 1000};
  Blob a(DistinctBytes(l)), b(DistinctBytes(l));
  DistinctInit(l, a.data());
  for (uint64_t i = 0; i < 50; ++i) DistinctAdd(l, a.data(), 0, SplitMix64(i));
  std::memcpy(b.data(), a.data(), DistinctBytes(l));
  DistinctInit(l, a.data());  // the source forgets; b owns the registers now
  EXPECT_NEAR(DistinctRead(l, b.data(), 0), 50.0, 3 * 0.065 * 50);
  EXPECT_EQ(DistinctHeapBytes(l, a.data()), 0u);
  DistinctDestroy(l, b.data());  // ASan reports a leak or double free if this is wrong
  DistinctDestroy(l, a.data());
  EXPECT_EQ(DistinctRead(l, b.data(), 0), 0.0);
}

// While at most 16 values are live the count is exact: compare with a map of each value's
// latest bucket, under random in-order, out-of-order and gapped times.
TEST(Distinct, ExactRegimeDifferentialAgainstNaive) {
  // 40000 buckets: ages past 2^15, where a signed 16-bit compare in the purge would go wrong.
  for (uint16_t buckets : {1, 3, 12, 40000}) {
    for (uint64_t seed = 1; seed <= 30; ++seed) {
      const DistinctLayout l{buckets, 100};
      const int64_t window = 100 * buckets;
      std::mt19937_64 rng(seed);
      auto uniform = [&](int64_t lo, int64_t hi) {
        return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
      };
      DistinctState d(l);
      std::map<uint64_t, int64_t> latest;
      bool has_newest = false;
      int64_t newest = 0, t = 0;
      for (int op = 0; op < 500; ++op) {
        const int64_t r = uniform(0, 99);
        t += r < 80 ? uniform(0, 150) : r < 95 ? window : uniform(0, int64_t{1} << 30);
        const int64_t add_t = r < 30 ? std::max<int64_t>(0, t - uniform(0, window + 100)) : t;
        const uint64_t h = SplitMix64(static_cast<uint64_t>(uniform(0, 15)));  // 16 values
        const int64_t k = BucketOf(add_t, 100);
        d.Add(add_t, h);
        if (!has_newest || k > newest - buckets) {
          newest = has_newest ? std::max(newest, k) : k;
          has_newest = true;
          latest[h] = std::max(latest.count(h) ? latest[h] : k, k);
        }
        ASSERT_FALSE(d.Approximate());
        for (int64_t rt : {t, t + 100, std::max<int64_t>(0, t - 100), t + window}) {
          const int64_t rk = BucketOf(rt, 100);
          const int64_t lo = std::max(rk, newest) - buckets + 1;
          int want = 0;
          for (const auto& [hash, bk] : latest) want += bk >= lo && bk <= rk;
          ASSERT_EQ(d.Read(rt), want) << "seed " << seed << " op " << op << " rt " << rt;
        }
      }
    }
  }
}

// The HyperLogLog regime against a reference that keeps every accepted (bucket, hash) and
// builds the registers of a read from scratch (index: top 8 bits; rank: leading zeros of the
// other 56 bits, plus 1), so the per-bucket rows, the cached union of older buckets, late
// adds, gaps and the switch back to exact counting are all checked. Reads are at or after the
// newest bucket, where keeping only each value's latest bucket (exact mode) changes nothing.
double ReferenceHll(const std::vector<uint64_t>& hashes) {
  uint8_t regs[256] = {};
  for (uint64_t h : hashes) {
    const uint64_t rest = h << 8;
    const int rank = rest == 0 ? 57 : std::countl_zero(rest) + 1;
    regs[h >> 56] = std::max<uint8_t>(regs[h >> 56], static_cast<uint8_t>(rank));
  }
  double z = 0;
  int zeros = 0;
  for (uint8_t r : regs) {
    z += std::ldexp(1.0, -r);
    zeros += r == 0;
  }
  const double e = 0.7213 / (1 + 1.079 / 256) * 256 * 256 / z;
  return e <= 2.5 * 256 && zeros > 0 ? 256 * std::log(256.0 / zeros) : e;
}

// `values`: how many distinct values the stream draws from; many push the registers from the
// sparse list to the dense rows. `seen_dense` / `seen_sparse` report which were used.
void HllDifferential(std::initializer_list<uint16_t> bucket_counts, int64_t values = 300,
                     bool* seen_sparse = nullptr, bool* seen_dense = nullptr,
                     int64_t max_tick = 20) {
  for (uint16_t buckets : bucket_counts) {
    for (uint64_t seed = 1; seed <= 12; ++seed) {
      const DistinctLayout l{buckets, 100};
      const int64_t window = 100 * buckets;
      std::mt19937_64 rng(seed * 31 + buckets);
      auto uniform = [&](int64_t lo, int64_t hi) {
        return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
      };
      DistinctState d(l);
      std::vector<std::pair<int64_t, uint64_t>> added;  // (bucket, hash)
      bool has_newest = false;
      int64_t newest = 0, t = 0;
      for (int op = 0; op < 1500; ++op) {
        const int64_t r = uniform(0, 999);
        t += r < 900 ? uniform(0, max_tick) : r < 990 ? uniform(window / 2, 2 * window) : 1 << 30;
        const int64_t add_t = r % 5 == 0 ? std::max<int64_t>(0, t - uniform(0, window)) : t;
        const uint64_t h = SplitMix64(static_cast<uint64_t>(uniform(0, values)) + seed * 1000000);
        const int64_t k = BucketOf(add_t, 100);
        d.Add(add_t, h);
        if (!has_newest || k > newest - buckets) {
          newest = has_newest ? std::max(newest, k) : k;
          has_newest = true;
          added.emplace_back(k, h);
          // Reads are at or after the newest bucket: older pairs can never count again.
          std::erase_if(added, [&](const auto& p) { return p.first <= newest - buckets; });
        }
        for (int64_t rt : {newest * 100, newest * 100 + 100, newest * 100 + window - 1}) {
          const int64_t rk = BucketOf(rt, 100);
          std::vector<uint64_t> live;
          for (const auto& [bk, hash] : added) {
            if (bk > rk - buckets && bk <= rk) live.push_back(hash);
          }
          std::sort(live.begin(), live.end());
          live.erase(std::unique(live.begin(), live.end()), live.end());
          if (d.Approximate()) {
            const bool dense = DistinctIsDense(d.data());
            if (seen_dense != nullptr && dense) *seen_dense = true;
            if (seen_sparse != nullptr && !dense) *seen_sparse = true;
          }
          const double want = d.Approximate() ? ReferenceHll(live) : live.size();
          ASSERT_DOUBLE_EQ(d.Read(rt), want)
              << "buckets " << buckets << " seed " << seed << " op " << op << " rt " << rt
              << (d.Approximate() ? " (hll)" : " (exact)");
        }
      }
    }
  }
}

TEST(Distinct, HllRegimeDifferentialAgainstReference) { HllDifferential({1, 2, 5, 12}); }

TEST(Distinct, HllRegimeDifferentialWideWindows) { HllDifferential({25, 40}); }

// Sparse registers, dense rows, and the move from one to the other, all against the reference.
TEST(Distinct, HllDifferentialSparseAndDense) {
  bool sparse = false, dense = false;
  HllDifferential({1, 12}, 300, &sparse, nullptr);
  EXPECT_TRUE(sparse) << "300 values never left the registers sparse";
  HllDifferential({2, 12}, 20000, &sparse, &dense, 1);  // ~200 adds per bucket
  EXPECT_TRUE(dense) << "20000 values never made the registers dense";
}

// Reads of older buckets (a late event's window) merge the rows in range. Every add after the
// switch to HyperLogLog is kept per bucket, so the reference is each bucket's hashes: checked at
// every bucket of the window, with few values (sparse) and many (dense).
TEST(Distinct, HllReadsOfOlderBucketsSparseAndDense) {
  for (const uint64_t values : {10, 5000}) {
    for (uint16_t buckets : {3, 12}) {
      const DistinctLayout l{buckets, 100};
      DistinctState d(l);
      std::mt19937_64 rng(values + buckets);
      std::vector<std::pair<int64_t, uint64_t>> added;  // (bucket, hash) since the switch
      int64_t newest = buckets;                         // times stay positive
      for (uint64_t i = 0; i < 17; ++i) {
        d.Add(newest * 100, SplitMix64(i));
        added.emplace_back(newest, SplitMix64(i));
      }
      ASSERT_TRUE(d.Approximate());
      for (int op = 0; op < 3000; ++op) {
        int64_t late = std::uniform_int_distribution<int64_t>(0, buckets - 1)(rng);
        if (op % 50 == 49) {  // the window moves on a bucket at a time, with an add there
          ++newest;
          late = 0;
        }
        const int64_t k = std::max<int64_t>(newest - late, newest - buckets + 1);
        const uint64_t h = SplitMix64(100 + rng() % values);
        d.Add(k * 100 + 7, h);
        added.emplace_back(k, h);
        std::erase_if(added, [&](const auto& p) { return p.first <= newest - buckets; });
        if (op % 10 != 0) continue;
        for (int64_t rk = newest - buckets + 1; rk <= newest; ++rk) {
          std::vector<uint64_t> live;
          for (const auto& [bk, hash] : added) {
            if (bk <= rk) live.push_back(hash);
          }
          ASSERT_DOUBLE_EQ(d.Read(rk * 100), ReferenceHll(live))
              << "values " << values << " buckets " << buckets << " op " << op << " read " << rk;
        }
      }
      EXPECT_EQ(DistinctIsDense(d.data()), values == 5000) << values << " values";
    }
  }
}

// A checkpoint of an overflowed state is its inline bytes and its register block: restored,
// it reads and goes on exactly as the original, sparse or dense; a damaged block is refused.
TEST(Distinct, RestoredRegisterBlocksGoOnAsTheOriginal) {
  const DistinctLayout l{12, 100};
  for (const uint64_t values : {60, 4000}) {
    DistinctState a(l);
    for (uint64_t i = 0; i < 2 * values; ++i)
      a.Add(static_cast<int64_t>(i % 900), SplitMix64(i % values));
    ASSERT_TRUE(a.Approximate());
    EXPECT_EQ(DistinctIsDense(a.data()), values == 4000);
    // A copy: the adds below may move a's block.
    const std::vector<std::byte> heap(DistinctHeap(a.data()),
                                      DistinctHeap(a.data()) + a.HeapBytes());
    const std::vector<std::byte> saved(a.data(), a.data() + DistinctBytes(l));
    DistinctState b(l);
    std::memcpy(b.data(), a.data(), DistinctBytes(l));  // the copied pointer is not followed
    ASSERT_TRUE(DistinctRestoreHeap(l, b.data(), heap));
    EXPECT_EQ(DistinctIsDense(b.data()), values == 4000);
    EXPECT_EQ(b.HeapBytes(), a.HeapBytes());
    for (uint64_t i = 0; i < 3000; ++i) {
      const int64_t t = 900 + static_cast<int64_t>(i);
      a.Add(t, SplitMix64(values + i % 500));
      b.Add(t, SplitMix64(values + i % 500));
      if (i % 97 == 0) {
        for (int64_t rt : {t, t - 300, t + 500}) ASSERT_DOUBLE_EQ(b.Read(rt), a.Read(rt)) << i;
      }
    }

    // Damaged blocks: a sparse one with a row past the layout's, or cut short; a dense one of
    // another layout's size.
    std::vector<std::byte> bad(heap.begin(), heap.end());
    DistinctState c(l);
    if (values == 60) {
      uint32_t e;
      std::memcpy(&e, bad.data() + 32, 4);
      e = (e & 0xFFFF) | 12u << 16;  // row 12 of 12
      std::memcpy(bad.data() + 32, &e, 4);
      std::memcpy(c.data(), a.data(), DistinctBytes(l));
      EXPECT_FALSE(DistinctRestoreHeap(l, c.data(), bad));
      std::memcpy(c.data(), a.data(), DistinctBytes(l));
      EXPECT_FALSE(DistinctRestoreHeap(l, c.data(), std::span(bad).first(bad.size() - 4)));
    } else {
      std::memcpy(c.data(), a.data(), DistinctBytes(l));
      EXPECT_FALSE(DistinctRestoreHeap(l, c.data(), std::span(bad).first(bad.size() - 256)));
      // A register no 64-bit hash gives (ranks are at most 57).
      std::vector<std::byte> high = heap;
      high[5] = std::byte{200};
      std::memcpy(c.data(), a.data(), DistinctBytes(l));
      EXPECT_FALSE(DistinctRestoreHeap(l, c.data(), high));
      // The union and its sums are recounted from the rows, not taken from the block: a wrong
      // zero count would index past the estimator's table.
      std::vector<std::byte> sums = heap;
      const uint32_t wrong[4] = {1, 0, 0, 100000};  // hi, mid, lo, zeros
      std::memcpy(sums.data() + sums.size() - 16, wrong, 16);
      std::memcpy(c.data(), saved.data(), DistinctBytes(l));
      ASSERT_TRUE(DistinctRestoreHeap(l, c.data(), sums));
      DistinctState ok(l);
      std::memcpy(ok.data(), saved.data(), DistinctBytes(l));
      ASSERT_TRUE(DistinctRestoreHeap(l, ok.data(), heap));
      EXPECT_DOUBLE_EQ(DistinctRead(l, c.data(), 899), ok.Read(899));
      EXPECT_GT(ok.Read(899), 100);
      DistinctDestroy(l, c.data());
    }
    EXPECT_EQ(c.HeapBytes(), 0u);

    // A dense block saved beside a state counting exactly (as version 2 checkpoints kept one
    // for reuse) is not restored: the state counts exactly, and overflows into a sparse block.
    if (values == 4000) {
      DistinctState exact(l);
      for (uint64_t i = 0; i < 5; ++i) exact.Add(100, SplitMix64(90000 + i));
      ASSERT_FALSE(exact.Approximate());
      DistinctState old(l);
      std::memcpy(old.data(), exact.data(), DistinctBytes(l));
      ASSERT_TRUE(DistinctRestoreHeap(l, old.data(), heap));
      EXPECT_EQ(old.HeapBytes(), 0u);
      EXPECT_EQ(old.Read(100), 5.0);
      for (uint64_t i = 0; i < 30; ++i) old.Add(100, SplitMix64(91000 + i));
      EXPECT_TRUE(old.Approximate());
      EXPECT_FALSE(DistinctIsDense(old.data()));
      EXPECT_NEAR(old.Read(100), 35.0, 3 * 0.065 * 35);
    }
  }
}

// A caller keeping the cursor (DistinctAddAt / DistinctReadAt, 8 bytes less) sees exactly what
// the kernel keeping its own sees, and the heap changes DistinctAddAt reports add up to
// DistinctHeapBytes (the switch, the sparse list's growth and the move to dense rows).
TEST(Distinct, CallerKeptCursorMatchesOwnCursor) {
  bool seen_sparse = false, seen_dense = false;
  for (uint16_t buckets : {3, 12, 30}) {
    int64_t heap = 0;
    const DistinctLayout own{buckets, 100};
    const DistinctLayout ext{buckets, 100, false};
    EXPECT_EQ(DistinctBytes(ext), DistinctBytes(own) - 8);
    DistinctState a(own);
    Blob b(DistinctBytes(ext));
    DistinctInit(ext, b.data());
    int64_t newest = kNoBucket, t = 0;
    std::mt19937_64 rng(buckets);
    for (int op = 0; op < 3000; ++op) {
      t += static_cast<int64_t>(rng() % (op < 1500 ? 40 : 3));  // then denser: dense rows
      if (rng() % 200 == 0) t += 100 * buckets;
      const int64_t add_t =
          rng() % 4 == 0 ? std::max<int64_t>(0, t - static_cast<int64_t>(rng() % (150 * buckets)))
                         : t;
      const uint64_t h = SplitMix64(rng() % (op < 1500 ? 120 : 3000));
      a.Add(add_t, h);
      const int64_t k = BucketOf(add_t, 100);
      heap += DistinctAddAt(ext, b.data(), k, newest, h);
      ASSERT_EQ(heap, static_cast<int64_t>(DistinctHeapBytes(ext, b.data()))) << op;
      if (DistinctIsApproximate(b.data())) {
        (DistinctIsDense(b.data()) ? seen_dense : seen_sparse) = true;
      }
      newest = std::max(newest, k);
      for (int64_t rt : {t, add_t, t + 100}) {
        ASSERT_EQ(a.Read(rt), DistinctReadAt(ext, b.data(), BucketOf(rt, 100), newest))
            << "buckets " << buckets << " op " << op;
      }
    }
    DistinctDestroy(ext, b.data());
  }
  EXPECT_TRUE(seen_sparse);
  EXPECT_TRUE(seen_dense);
}

// ---------------------------------------------------------------------------------------------
// Fast division and caller-kept ring cursors

TEST(Divider, MatchesFloorDivision) {
  std::mt19937_64 rng(3);
  std::vector<int64_t> divisors = {
      1, 2, 3, 7, 10, 12, 1000, 60'000'000, 300'000'000, 7'200'000'000, 259'200'000'000};
  for (int l = 1; l < 63; ++l) {
    const int64_t p = int64_t{1} << l;
    for (int64_t d : {p - 1, p, p + 1}) divisors.push_back(d);
  }
  for (int64_t d : divisors) {
    const Divider div(d);
    std::vector<int64_t> ns = {0,  1,      d - 1,        d, d + 1, INT64_MAX, INT64_MAX - 1, -1,
                               -d, -d - 1, INT64_MIN + 1};
    for (int i = 0; i < 2000; ++i) {
      ns.push_back(static_cast<int64_t>(rng() >> 1));                   // any non-negative
      ns.push_back(static_cast<int64_t>(rng() % (uint64_t{1} << 52)));  // times in us
      const int64_t q = static_cast<int64_t>(rng() % (uint64_t{1} << 20));
      if (q < INT64_MAX / d - 1) ns.push_back(q * d + static_cast<int64_t>(rng() % 2) - 1);
    }
    for (int64_t n : ns) {
      ASSERT_EQ(div.Floor(n), BucketOf(n, d)) << n << " / " << d;
      ASSERT_EQ(div.Mod(n), static_cast<uint32_t>(n - BucketOf(n, d) * d)) << n << " % " << d;
    }
  }
}

// A ring without its cursor, and with only min or only max, against the full kernel.
TEST(Ring, CallerKeptCursorMatchesOwnCursor) {
  for (uint16_t buckets : {1, 5, 12}) {
    const RingLayout full = AllAggs(buckets, 10);
    RingLayout lo{buckets, 10, true, false, false, true, false, false};
    RingLayout hi{buckets, 10, false, false, false, false, true, false};
    EXPECT_EQ(RingBytes(lo), 8u * buckets * 2 + ((4u * buckets + 7) & ~7u));
    Blob a(RingBytes(full)), b(RingBytes(lo)), c(RingBytes(hi));
    RingInit(full, a.data());
    RingInit(lo, b.data());
    RingInit(hi, c.data());
    int64_t newest = kNoBucket, t = 0;
    std::mt19937_64 rng(buckets);
    for (int op = 0; op < 3000; ++op) {
      t += static_cast<int64_t>(rng() % 8);
      if (rng() % 100 == 0) t += 10 * buckets;
      const int64_t add_t =
          rng() % 4 == 0 ? std::max<int64_t>(0, t - static_cast<int64_t>(rng() % (15 * buckets)))
                         : t;
      const double v = static_cast<double>(static_cast<int64_t>(rng() % 2000) - 1000) / 4;
      const int64_t k = BucketOf(add_t, 10);
      const uint32_t slot = SlotOf(k, buckets);
      const bool kept = RingAdd(full, a.data(), add_t, v);
      ASSERT_EQ(RingAddAt(lo, b.data(), k, slot, newest, v), kept);
      ASSERT_EQ(RingAddAt(hi, c.data(), k, slot, newest, v), kept);
      newest = std::max(newest, k);
      for (int64_t rt : {t, add_t, t + 10, t + 10 * buckets}) {
        const int64_t rk = BucketOf(rt, 10);
        const WindowAgg want = RingRead(full, a.data(), rt);
        WindowAgg x, y;
        RingReadAt(lo, b.data(), rk, SlotOf(rk, buckets), newest, x);
        RingReadAt(hi, c.data(), rk, SlotOf(rk, buckets), newest, y);
        ASSERT_EQ(x.count, want.count) << op;
        ASSERT_EQ(x.sum, want.sum) << op;
        ASSERT_EQ(y.count, want.count) << op;
        if (want.count > 0) {
          ASSERT_EQ(x.min, want.min) << op;
          ASSERT_EQ(y.max, want.max) << op;
        }
        ASSERT_TRUE(std::isnan(x.max) && (want.count > 0 || std::isnan(x.min))) << op;
        ASSERT_TRUE(std::isnan(y.min)) << op;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Recent set

TEST(Recent, BytesPerCapacity) {
  EXPECT_EQ(RecentBytes(1), 8u);
  EXPECT_EQ(RecentBytes(3), 16u);
  EXPECT_EQ(RecentBytes(32), 128u);
  EXPECT_EQ(RecentBytes(255), 1024u);
}

TEST(Recent, EvictsLeastRecentlySeen) {
  Blob b(RecentBytes(3));
  RecentInit(3, b.data());
  auto seen = [&](const char* v) { return RecentSeenBefore(3, b.data(), Hash64(v)); };
  EXPECT_FALSE(seen("a"));
  EXPECT_FALSE(seen("b"));
  EXPECT_FALSE(seen("c"));  // recency: c b a
  EXPECT_TRUE(seen("a"));   // a c b
  EXPECT_FALSE(seen("d"));  // d a c, b evicted
  EXPECT_FALSE(seen("b"));  // b d a, c evicted
  EXPECT_TRUE(seen("a"));   // a b d
  EXPECT_TRUE(seen("d"));   // d a b
  EXPECT_FALSE(seen("c"));  // c d a
  EXPECT_TRUE(seen("a"));
  EXPECT_TRUE(seen("d"));
  EXPECT_FALSE(seen("b"));
}

TEST(Recent, CapacityOne) {
  Blob b(RecentBytes(1));
  RecentInit(1, b.data());
  EXPECT_FALSE(RecentSeenBefore(1, b.data(), 7ull << 32));
  EXPECT_TRUE(RecentSeenBefore(1, b.data(), 7ull << 32));
  EXPECT_FALSE(RecentSeenBefore(1, b.data(), 8ull << 32));
  EXPECT_FALSE(RecentSeenBefore(1, b.data(), 7ull << 32));
}

TEST(Recent, ZeroFingerprintIsAValueNotAnEmptySlot) {
  Blob b(RecentBytes(4));
  RecentInit(4, b.data());
  EXPECT_FALSE(RecentSeenBefore(4, b.data(), 0));
  EXPECT_TRUE(RecentSeenBefore(4, b.data(), 0));
  EXPECT_FALSE(RecentSeenBefore(4, b.data(), 5ull << 32));
  EXPECT_TRUE(RecentSeenBefore(4, b.data(), 0));
}

TEST(Recent, DifferentialAgainstLruList) {
  for (int capacity : {1, 2, 5, 8, 9, 16, 32, 255}) {  // 8 and up: eight entries per compare
    for (uint64_t seed = 1; seed <= 10; ++seed) {
      std::mt19937_64 rng(seed);
      std::uniform_int_distribution<uint64_t> pick(0, static_cast<uint64_t>(capacity) * 3 / 2);
      Blob b(RecentBytes(capacity));
      RecentInit(capacity, b.data());
      std::list<uint64_t> lru;  // most recent first
      for (int op = 0; op < 3000; ++op) {
        const uint64_t h = SplitMix64(pick(rng));
        const auto it = std::find(lru.begin(), lru.end(), h);
        const bool want = it != lru.end();
        if (want) lru.erase(it);
        lru.push_front(h);
        if (static_cast<int>(lru.size()) > capacity) lru.pop_back();
        ASSERT_EQ(RecentSeenBefore(capacity, b.data(), h), want)
            << "capacity " << capacity << " seed " << seed << " op " << op;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Exponentially weighted stats

constexpr int64_t kHour = 3600ll * 1000000;

TEST(EwStats, EmptyIsNan) {
  EwStats s;
  EXPECT_EQ(s.weight, 0.0);
  EXPECT_TRUE(std::isnan(s.Mean()));
  EXPECT_TRUE(std::isnan(s.Stddev()));
  EXPECT_TRUE(std::isnan(s.ZScore(1.0)));
}

TEST(EwStats, OneValueHasNoSpreadSoNoZScore) {
  EwStats s;
  s.Update(5, 10.0, kHour);
  EXPECT_EQ(s.Mean(), 10.0);
  EXPECT_EQ(s.Stddev(), 0.0);
  EXPECT_TRUE(std::isnan(s.ZScore(12.0)));
}

TEST(EwStats, EqualTimesGivePlainMeanAndVariance) {
  EwStats s;
  for (double x : {2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0}) s.Update(1000, x, kHour);
  EXPECT_DOUBLE_EQ(s.weight, 8.0);
  EXPECT_DOUBLE_EQ(s.Mean(), 5.0);
  EXPECT_DOUBLE_EQ(s.Stddev(), 2.0);
  EXPECT_DOUBLE_EQ(s.ZScore(9.0), 2.0);
  EXPECT_DOUBLE_EQ(s.ZScore(1.0), -2.0);
}

TEST(EwStats, AfterOneHalfLifeAnOldValueHasHalfTheWeight) {
  EwStats s;
  s.Update(0, 0.0, kHour);
  s.Update(kHour, 10.0, kHour);
  // Weights 0.5 (x = 0) and 1 (x = 10): mean 20/3, variance (0.5 * (20/3)^2 + (10/3)^2) / 1.5.
  EXPECT_DOUBLE_EQ(s.weight, 1.5);
  EXPECT_DOUBLE_EQ(s.Mean(), 20.0 / 3);
  EXPECT_DOUBLE_EQ(s.var, 200.0 / 9);
  EXPECT_EQ(s.last_us, kHour);
  s.Update(3 * kHour, 10.0, kHour);  // two more half-lives: 1.5 / 4 + 1
  EXPECT_DOUBLE_EQ(s.weight, 1.375);
}

TEST(EwStats, OutOfOrderEqualsInOrder) {
  EwStats in_order, late;
  in_order.Update(0, 0.0, kHour);
  in_order.Update(kHour, 10.0, kHour);
  late.Update(kHour, 10.0, kHour);
  late.Update(0, 0.0, kHour);
  EXPECT_DOUBLE_EQ(late.weight, in_order.weight);
  EXPECT_DOUBLE_EQ(late.Mean(), in_order.Mean());
  EXPECT_DOUBLE_EQ(late.var, in_order.var);
  EXPECT_EQ(late.last_us, kHour);
}

TEST(EwStats, MatchesDirectWeightedSumsOnRandomData) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> amount(4.0, 1.0);
    std::uniform_int_distribution<int64_t> gap(0, kHour / 2);
    EwStats s;
    std::vector<std::pair<int64_t, double>> seen;
    int64_t t = 0;
    for (int i = 0; i < 500; ++i) {
      t += gap(rng);
      const double x = amount(rng);
      s.Update(t, x, kHour);
      seen.emplace_back(t, x);
      double w = 0, wx = 0;
      for (const auto& [ti, xi] : seen) {
        const double wi = std::exp2(-static_cast<double>(t - ti) / kHour);
        w += wi;
        wx += wi * xi;
      }
      const double mean = wx / w;
      double wss = 0;
      for (const auto& [ti, xi] : seen) {
        wss += std::exp2(-static_cast<double>(t - ti) / kHour) * (xi - mean) * (xi - mean);
      }
      ASSERT_NEAR(s.weight, w, 1e-9 * w);
      ASSERT_NEAR(s.Mean(), mean, 1e-9 * std::abs(mean));
      ASSERT_NEAR(s.var, wss / w, 1e-8 * (wss / w) + 1e-12);
    }
  }
}

TEST(EwStats, HugeGapForgetsTheHistory) {
  EwStats s;
  s.Update(0, 100.0, kHour);
  s.Update(1, 300.0, kHour);
  s.Update(10000 * kHour, 7.0, kHour);
  EXPECT_EQ(s.Mean(), 7.0);
  EXPECT_EQ(s.Stddev(), 0.0);
  EXPECT_EQ(s.weight, 1.0);
}

// ---------------------------------------------------------------------------------------------
// Geo

TEST(Geo, KnownDistances) {
  EXPECT_NEAR(HaversineKm(48.8566, 2.3522, 51.5074, -0.1278), 343.5, 1.0);  // Paris-London
  EXPECT_NEAR(HaversineKm(51.5074, -0.1278, 48.8566, 2.3522), 343.5, 1.0);
  EXPECT_NEAR(HaversineKm(0, 0, 0, 180), 20015.1, 1.0);  // antipodes: pi * R
  EXPECT_NEAR(HaversineKm(40, -74, -40, 106), 20015.1, 1.0);
  EXPECT_EQ(HaversineKm(48.8566, 2.3522, 48.8566, 2.3522), 0.0);
  EXPECT_TRUE(std::isnan(HaversineKm(std::nan(""), 0, 0, 0)));
}

// The feature engine answers "same place as before" with +0.0 without calling HaversineKm;
// that is only the same value if the formula gives exactly +0 (not -0, not a rounding residue)
// for every finite point, poles, date line and negative coordinates included.
TEST(Geo, SamePlaceIsExactlyPositiveZero) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> lat(-90, 90), lon(-180, 180);
  std::vector<std::pair<double, double>> points = {
      {0, 0}, {90, 0}, {-90, 0}, {0, 180}, {0, -180}, {-0.0, -0.0}, {89.9999999, 179.9999999}};
  for (int i = 0; i < 10000; ++i) points.emplace_back(lat(rng), lon(rng));
  for (const auto& [a, o] : points) {
    const double km = HaversineKm(a, o, a, o);
    ASSERT_EQ(km, 0.0) << a << "," << o;
    ASSERT_FALSE(std::signbit(km)) << a << "," << o;
  }
}

TEST(Geo, Speed) {
  EXPECT_DOUBLE_EQ(SpeedKmh(100.0, kHour), 100.0);
  EXPECT_DOUBLE_EQ(SpeedKmh(343.5, kHour / 2), 687.0);
  EXPECT_EQ(SpeedKmh(0.0, 0), 0.0);
  EXPECT_EQ(SpeedKmh(0.0, kHour), 0.0);
  EXPECT_TRUE(std::isnan(SpeedKmh(1.0, 0)));
  EXPECT_TRUE(std::isnan(SpeedKmh(1.0, -5)));
}

// ---------------------------------------------------------------------------------------------
// Robust z-score over the last values

constexpr double kMadToSigma = 1.482602218505602;
constexpr double kMeanAdToSigma = 1.2533141373155001;

Blob RobustOf(int capacity, std::initializer_list<double> values) {
  Blob b(RobustBytes(capacity));
  RobustInit(b.data());
  for (double v : values) RobustAdd(capacity, b.data(), v);
  return b;
}

TEST(Robust, BytesPerCapacity) {
  EXPECT_EQ(RobustBytes(1), 8u + 8u + 8u);  // header, one value, its slot padded to 8
  EXPECT_EQ(RobustBytes(32), 8u + 32u * 8u + 32u);
  EXPECT_EQ(RobustBytes(kRobustMaxCapacity) % 8, 0u);
}

TEST(Robust, MedianAndMadOfOddCount) {
  // median 3; |x - 3| = 2 1 0 1 97, median 1: the outlier 100 moves neither.
  Blob b = RobustOf(8, {1, 100, 3, 2, 4});
  double med, scale;
  ASSERT_TRUE(RobustCenterScale(b.data(), 3, med, scale));
  EXPECT_EQ(med, 3);
  EXPECT_EQ(scale, kMadToSigma);
  EXPECT_DOUBLE_EQ(RobustZ(b.data(), 3, 10), 7 / kMadToSigma);
  EXPECT_DOUBLE_EQ(RobustZ(b.data(), 3, 0), -3 / kMadToSigma);
}

TEST(Robust, EvenCountTakesTheMeanOfTheMiddleTwo) {
  Blob b = RobustOf(8, {4, 1, 3, 2});  // median 2.5; deviations 1.5 .5 .5 1.5, median 1
  double med, scale;
  ASSERT_TRUE(RobustCenterScale(b.data(), 3, med, scale));
  EXPECT_EQ(med, 2.5);
  EXPECT_EQ(scale, kMadToSigma);
}

TEST(Robust, ZeroMadFallsBackToMeanAbsoluteDeviation) {
  // A card that mostly pays 5: MAD is 0, the mean absolute deviation 4/5.
  Blob b = RobustOf(8, {5, 5, 9, 5, 5});
  EXPECT_DOUBLE_EQ(RobustZ(b.data(), 3, 45), 40 / (kMeanAdToSigma * 0.8));
  EXPECT_EQ(RobustZ(b.data(), 3, 5), 0);
}

TEST(Robust, UndefinedWithoutHistoryOrSpread) {
  Blob empty = RobustOf(8, {});
  EXPECT_TRUE(std::isnan(RobustZ(empty.data(), 3, 1)));
  Blob short_history = RobustOf(8, {1, 2});
  EXPECT_TRUE(std::isnan(RobustZ(short_history.data(), 3, 1)));
  EXPECT_FALSE(std::isnan(RobustZ(short_history.data(), 2, 1)));
  Blob flat = RobustOf(8, {7, 7, 7, 7});
  EXPECT_TRUE(std::isnan(RobustZ(flat.data(), 3, 8)));
  Blob b = RobustOf(8, {1, 2, 3});
  EXPECT_TRUE(std::isnan(RobustZ(b.data(), 3, std::numeric_limits<double>::infinity())));
  EXPECT_TRUE(std::isnan(RobustZ(b.data(), 3, std::nan(""))));
}

TEST(Robust, KeepsOnlyTheLastCapacityValues) {
  Blob b = RobustOf(3, {1000, -1000, 1, 2, 3});  // holds 1 2 3
  EXPECT_EQ(RobustHeld(b.data()), 3);
  double med, scale;
  ASSERT_TRUE(RobustCenterScale(b.data(), 3, med, scale));
  EXPECT_EQ(med, 2);
  EXPECT_EQ(scale, kMadToSigma);
}

TEST(Robust, DifferentialAgainstSortedCopies) {
  std::mt19937_64 rng(7);
  for (int capacity : {3, 8, 31, 255}) {
    Blob b(RobustBytes(capacity));
    RobustInit(b.data());
    std::deque<double> held;
    for (int i = 0; i < 2000; ++i) {
      // Few distinct values now and then, so ties and zero MADs happen.
      const double x = i % 300 < 40 ? static_cast<double>(rng() % 3)
                                    : std::ldexp(static_cast<double>(rng() % 100000), -7);
      std::vector<double> v(held.begin(), held.end());
      std::sort(v.begin(), v.end());
      double want_med = std::nan(""), want_scale = std::nan("");
      if (v.size() >= 3) {
        const size_t n = v.size();
        want_med = n % 2 ? v[n / 2] : v[n / 2 - 1] + (v[n / 2] - v[n / 2 - 1]) / 2;
        std::vector<double> dev;
        double sum = 0;
        for (double y : v) {
          dev.push_back(std::fabs(y - want_med));
          sum += dev.back();
        }
        std::sort(dev.begin(), dev.end());
        const double mad = n % 2 ? dev[n / 2] : dev[n / 2 - 1] + (dev[n / 2] - dev[n / 2 - 1]) / 2;
        want_scale = mad > 0 ? kMadToSigma * mad : kMeanAdToSigma * (sum / static_cast<double>(n));
        if (!(want_scale > 0)) want_med = want_scale = std::nan("");
      }
      double med, scale;
      const bool ok = RobustCenterScale(b.data(), 3, med, scale);
      ASSERT_EQ(ok, !std::isnan(want_scale)) << "capacity " << capacity << " event " << i;
      if (ok) {
        ASSERT_EQ(med, want_med) << "capacity " << capacity << " event " << i;
        ASSERT_DOUBLE_EQ(scale, want_scale) << "capacity " << capacity << " event " << i;
      }
      RobustAdd(capacity, b.data(), x);
      held.push_back(x);
      if (held.size() > static_cast<size_t>(capacity)) held.pop_front();
    }
  }
}

}  // namespace
}  // namespace vigil::features_internal
