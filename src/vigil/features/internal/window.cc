#include "vigil/features/internal/window.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <limits>
#include <utility>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace vigil::features_internal {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Byte offsets of the arrays of one ring layout; an aggregate not kept has size 0.
struct Offsets {
  size_t sum, sumsq, min, max, count, end;
};

inline Offsets OffsetsOf(const RingLayout& l) {
  const size_t b = l.buckets;
  Offsets o;
  o.sum = l.own_cursor ? sizeof(int64_t) : 0;
  o.sumsq = o.sum + (l.sum ? 8 * b : 0);
  o.min = o.sumsq + (l.sumsq ? 8 * b : 0);
  o.max = o.min + (l.KeepsMin() ? 8 * b : 0);
  o.count = o.max + (l.KeepsMax() ? 8 * b : 0);
  o.end = (o.count + 4 * b + 7) & ~size_t{7};
  return o;
}

// old + v * v as a ring's sum of squares takes it, in every path: one fused multiply-add
// where the target has FMA (the compiler contracts the expression there), else a multiply and
// an add. Spelled out so that two paths cannot round the square differently.
inline double AddSquare(double old, double v) {
#if defined(__FMA__)
  return std::fma(v, v, old);
#else
  return old + v * v;
#endif
}

void ClearSlot(const RingLayout& l, const Offsets& o, std::byte* state, uint32_t slot) {
  StoreAt<uint32_t>(state + o.count + 4 * slot, 0);
  if (l.sum) StoreAt<double>(state + o.sum + 8 * slot, 0.0);
  if (l.sumsq) StoreAt<double>(state + o.sumsq + 8 * slot, 0.0);
  if (l.KeepsMin()) StoreAt<double>(state + o.min + 8 * slot, kInf);
  if (l.KeepsMax()) StoreAt<double>(state + o.max + 8 * slot, -kInf);
}

// Two doubles: GCC's and Clang's vector extension, one SSE2 register (every x86-64). Written
// by hand rather than left to the compiler, which keeps a floating-point sum in the order it is
// written and so never vectorises one.
typedef double V2 __attribute__((vector_size(16)));

inline V2 LoadV2(const std::byte* p) {
  V2 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void StoreV2(std::byte* p, V2 v) { std::memcpy(p, &v, sizeof v); }
// Lane-wise std::min(acc, x) and std::max(acc, x): the same operand wins a tie (so +0.0 and
// -0.0 fold as in scalar code).
inline V2 MinV2(V2 acc, V2 x) { return x < acc ? x : acc; }
inline V2 MaxV2(V2 acc, V2 x) { return acc < x ? x : acc; }

// Running aggregates of a read, two chains of each (one chain of adds or min/max costs ~4
// cycles per bucket): from the start of each run of slots, the first, third, ... slot folds
// into chain 0 and the second, fourth, ... into chain 1, the two chains a vector's lanes, so
// two slots are one vector step. The chains, and their sum (chain 0 + chain 1), are what a
// scalar fold in that order gives: the same aggregates, to the bit, as every earlier version.
struct Acc {
  uint64_t count = 0;
  V2 sum = {0, 0}, sumsq = {0, 0};
  V2 min = {kInf, kInf}, max = {-kInf, -kInf};

  double Sum() const { return sum[0] + sum[1]; }
  double Sumsq() const { return sumsq[0] + sumsq[1]; }
  double Min() const { return std::min(min[0], min[1]); }
  double Max() const { return std::max(max[0], max[1]); }
};

// A ring's arrays (past its cursor, if any): an aggregate not kept has none.
template <typename Byte>
struct ArraysOf {
  Byte *sums, *sumsqs, *mins, *maxs, *counts;
};
using Arrays = ArraysOf<std::byte>;

// The sum of `n` 32-bit bucket counts, in 64 bits: integers, so any order gives the same sum.
// Eight counts per step with AVX2 (the last step a masked load: no read past the array), one
// at a time without. A fold of the usual 10-12 slots was ~10 instructions per two slots.
inline uint64_t SumCounts(const std::byte* counts, uint32_t n) {
#if defined(__AVX2__)
  __m256i acc = _mm256_setzero_si256();  // four 64-bit sums
  uint32_t s = 0;
  const auto add8 = [&acc](__m256i c) {
    acc = _mm256_add_epi64(acc, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(c)));
    acc = _mm256_add_epi64(acc, _mm256_cvtepu32_epi64(_mm256_extracti128_si256(c, 1)));
  };
  for (; s + 8 <= n; s += 8) {
    add8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(counts + 4 * s)));
  }
  if (s < n) {
    // Lanes below n - s on: -1 where lane < n - s.
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i on = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - s)), lane);
    add8(_mm256_maskload_epi32(reinterpret_cast<const int*>(counts + 4 * s), on));
  }
  const __m128i two = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  return static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_add_epi64(two, _mm_unpackhi_epi64(two, two))));
#else
  uint64_t sum = 0;
  for (uint32_t s = 0; s < n; ++s) sum += LoadAt<uint32_t>(counts + 4 * s);
  return sum;
#endif
}

// Sets `bytes` bytes (a multiple of 8, at least 8) to copies of the 8-byte `pattern`, in
// 32-byte stores where they fit (the last one overlapping the one before): a ring emptied by a
// whole window's gap, array by array, rather than slot by slot.
inline void Fill(std::byte* p, size_t bytes, uint64_t pattern) {
  typedef uint64_t V4 __attribute__((vector_size(32)));
  const V4 v = {pattern, pattern, pattern, pattern};
  if (bytes >= 32) {
    size_t at = 0;
    for (; at + 32 <= bytes; at += 32) std::memcpy(p + at, &v, 32);
    if (at < bytes) std::memcpy(p + bytes - 32, &v, 32);
    return;
  }
  for (size_t at = 0; at < bytes; at += 8) std::memcpy(p + at, &pattern, 8);
}

// Folds slots [begin, end) into `acc`, for one combination of kept aggregates: the counts at
// once (SumCounts), the doubles two slots a step into the two chains, then the last one into
// chain 0. (Spelled out: runs are a few slots long, too short for the compiler's vectorised
// loops to pay for their set-up.)
template <bool kSum, bool kSumsq, bool kMin, bool kMax>
inline void Fold(const ArraysOf<const std::byte>& a, uint32_t begin, uint32_t end, Acc& acc) {
  if (begin >= end) return;
  acc.count += SumCounts(a.counts + 4 * begin, end - begin);
  if constexpr (kSum || kSumsq || kMin || kMax) {
    const auto step = [&a, &acc](size_t s) {
      if constexpr (kSum) acc.sum += LoadV2(a.sums + 8 * s);
      if constexpr (kSumsq) acc.sumsq += LoadV2(a.sumsqs + 8 * s);
      if constexpr (kMin) acc.min = MinV2(acc.min, LoadV2(a.mins + 8 * s));
      if constexpr (kMax) acc.max = MaxV2(acc.max, LoadV2(a.maxs + 8 * s));
    };
    // Four slots per pass (two steps, in order: the same chains), then two, then one.
    size_t s = begin;
    for (; s + 4 <= end; s += 4) {
      step(s);
      step(s + 2);
    }
    if (s + 2 <= end) {
      step(s);
      s += 2;
    }
    if (s < end) {
      if constexpr (kSum) acc.sum[0] += LoadAt<double>(a.sums + 8 * s);
      if constexpr (kSumsq) acc.sumsq[0] += LoadAt<double>(a.sumsqs + 8 * s);
      if constexpr (kMin) acc.min[0] = std::min<double>(acc.min[0], LoadAt<double>(a.mins + 8 * s));
      if constexpr (kMax) acc.max[0] = std::max<double>(acc.max[0], LoadAt<double>(a.maxs + 8 * s));
    }
  }
}

template <bool kSum, bool kSumsq, bool kMin, bool kMax>
void FoldRuns(const Offsets& o, const std::byte* state, uint32_t begin, uint32_t end,
              uint32_t wrapped, Acc& acc) {
  const ArraysOf<const std::byte> a{state + o.sum, state + o.sumsq, state + o.min, state + o.max,
                                    state + o.count};
  Fold<kSum, kSumsq, kMin, kMax>(a, begin, end, acc);
  Fold<kSum, kSumsq, kMin, kMax>(a, 0, wrapped, acc);
}

using FoldFn = void (*)(const Offsets&, const std::byte*, uint32_t, uint32_t, uint32_t, Acc&);

// Indexed by sum | sumsq << 1 | min << 2 | max << 3.
template <size_t... I>
constexpr std::array<FoldFn, sizeof...(I)> MakeFolds(std::index_sequence<I...>) {
  return {FoldRuns<(I & 1) != 0, (I & 2) != 0, (I & 4) != 0, (I & 8) != 0>...};
}
constexpr std::array<FoldFn, 16> kFolds = MakeFolds(std::make_index_sequence<16>{});

// Empties slots [begin, end), two at a time (spelled out as Fold is).
template <bool kSum, bool kSumsq, bool kMin, bool kMax>
inline void Clear(const Arrays& a, uint32_t begin, uint32_t end) {
  uint32_t s = begin;
  for (; s + 2 <= end; s += 2) {
    StoreAt<uint64_t>(a.counts + 4 * s, 0);
    if constexpr (kSum) StoreV2(a.sums + 8 * s, V2{0, 0});
    if constexpr (kSumsq) StoreV2(a.sumsqs + 8 * s, V2{0, 0});
    if constexpr (kMin) StoreV2(a.mins + 8 * s, V2{kInf, kInf});
    if constexpr (kMax) StoreV2(a.maxs + 8 * s, V2{-kInf, -kInf});
  }
  if (s < end) {
    StoreAt<uint32_t>(a.counts + 4 * s, 0);
    if constexpr (kSum) StoreAt<double>(a.sums + 8 * s, 0.0);
    if constexpr (kSumsq) StoreAt<double>(a.sumsqs + 8 * s, 0.0);
    if constexpr (kMin) StoreAt<double>(a.mins + 8 * s, kInf);
    if constexpr (kMax) StoreAt<double>(a.maxs + 8 * s, -kInf);
  }
}

// RingAddReadAt at or past the newest bucket (gap = k - newest, clamped to nb; nb when the
// ring is empty), for one combination of kept aggregates. It clears the slots of buckets
// (newest, k] as RingAddAt does, adds v to slot k, and reads the window ending at k: every slot,
// folded as RingReadAt folds [0, nb), so the aggregates are the same bit for bit. After a clear
// of every slot only slot k is live: a fold would add the other slots' +0.0 to sums that start
// at +0.0 and are never -0.0 (round to nearest), and x + +0.0 == x for every x but -0.0, so the
// sums are the slot's own, exactly; the min and max of one value are that value. `state` is the
// ring's arrays (past the cursor).
template <bool kSum, bool kSumsq, bool kMin, bool kMax>
void AddReadNewest(uint32_t nb, std::byte* state, uint32_t slot, int64_t gap, double v,
                   WindowAgg& out) {
  const size_t b = nb;
  Arrays a;
  a.sums = state;
  a.sumsqs = a.sums + (kSum ? 8 * b : 0);
  a.mins = a.sumsqs + (kSumsq ? 8 * b : 0);
  a.maxs = a.mins + (kMin ? 8 * b : 0);
  a.counts = a.maxs + (kMax ? 8 * b : 0);
  const bool whole = gap >= nb;
  if (whole) {
    // Every slot: the arrays are contiguous, so the zeroed ones (sums, sums of squares) are
    // one run, and the counts with their padding another.
    if constexpr (kSum || kSumsq) Fill(a.sums, (kSum + kSumsq) * 8 * b, 0);
    if constexpr (kMin) Fill(a.mins, 8 * b, std::bit_cast<uint64_t>(kInf));
    if constexpr (kMax) Fill(a.maxs, 8 * b, std::bit_cast<uint64_t>(-kInf));
    Fill(a.counts, (4 * b + 7) & ~size_t{7}, 0);
  } else {
    // The slots after newest's, up to and including k's: [slot - gap + 1, slot], wrapping.
    const auto g = static_cast<uint32_t>(gap);
    if (slot + 1 >= g) {
      Clear<kSum, kSumsq, kMin, kMax>(a, slot + 1 - g, slot + 1);  // none when g == 0
    } else {
      Clear<kSum, kSumsq, kMin, kMax>(a, 0, slot + 1);
      Clear<kSum, kSumsq, kMin, kMax>(a, nb - (g - slot - 1), nb);
    }
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::byte* c = a.counts + 4 * slot;
  StoreAt<uint32_t>(c, LoadAt<uint32_t>(c) + 1);
  double sum = 0.0, sumsq = 0.0, min = nan, max = nan;
  if constexpr (kSum) {
    std::byte* p = a.sums + 8 * slot;
    sum = LoadAt<double>(p) + v;
    StoreAt<double>(p, sum);
  }
  if constexpr (kSumsq) {
    std::byte* p = a.sumsqs + 8 * slot;
    sumsq = AddSquare(LoadAt<double>(p), v);
    StoreAt<double>(p, sumsq);
  }
  if constexpr (kMin) {
    std::byte* p = a.mins + 8 * slot;
    min = std::min(LoadAt<double>(p), v);
    StoreAt<double>(p, min);
  }
  if constexpr (kMax) {
    std::byte* p = a.maxs + 8 * slot;
    max = std::max(LoadAt<double>(p), v);
    StoreAt<double>(p, max);
  }
  if (whole) {
    out = WindowAgg{1, sum, sumsq, min, max};
    return;
  }
  Acc acc;
  Fold<kSum, kSumsq, kMin, kMax>({a.sums, a.sumsqs, a.mins, a.maxs, a.counts}, 0, nb, acc);
  out = WindowAgg{acc.count, acc.Sum(), acc.Sumsq(), nan, nan};  // count >= 1: the add
  if constexpr (kMin) out.min = acc.Min();
  if constexpr (kMax) out.max = acc.Max();
}

// Indexed as kFolds.
template <size_t... I>
constexpr std::array<RingAddReadNewestFn, sizeof...(I)> MakeAddReads(std::index_sequence<I...>) {
  return {AddReadNewest<(I & 1) != 0, (I & 2) != 0, (I & 4) != 0, (I & 8) != 0>...};
}
constexpr std::array<RingAddReadNewestFn, 16> kAddReads =
    MakeAddReads(std::make_index_sequence<16>{});

}  // namespace

size_t RingBytes(const RingLayout& layout) { return OffsetsOf(layout).end; }

void RingInit(const RingLayout& layout, std::byte* state) {
  assert(layout.buckets > 0 && layout.step_us > 0 && "RingLayout needs buckets and a step");
  const Offsets o = OffsetsOf(layout);
  std::memset(state, 0, o.end);
  if (layout.own_cursor) StoreAt<int64_t>(state, kNoBucket);
  if (layout.KeepsMin() || layout.KeepsMax()) {
    for (uint32_t s = 0; s < layout.buckets; ++s) ClearSlot(layout, o, state, s);
  }
}

bool RingAddAt(const RingLayout& layout, std::byte* state, int64_t k, uint32_t slot, int64_t newest,
               double v) {
  const Offsets o = OffsetsOf(layout);
  const uint16_t nb = layout.buckets;
  if (newest == kNoBucket || k > newest) {
    // Clear the slots of buckets (newest, k]: they held buckets that have left the window.
    // After a gap of a whole window or more, that is every slot, once.
    const int64_t gap = newest == kNoBucket ? nb : k - newest;
    if (gap >= nb) {
      for (uint32_t s = 0; s < nb; ++s) ClearSlot(layout, o, state, s);
    } else {
      // Slot of `newest` is `gap` slots before k's.
      uint32_t s =
          slot >= gap ? slot - static_cast<uint32_t>(gap) : slot + nb - static_cast<uint32_t>(gap);
      for (int64_t i = 0; i < gap; ++i) {
        if (++s == nb) s = 0;
        ClearSlot(layout, o, state, s);
      }
    }
  } else if (k <= newest - nb) {
    return false;  // older than the window ending at the newest bucket
  }
  std::byte* count = state + o.count + 4 * slot;
  StoreAt<uint32_t>(count, LoadAt<uint32_t>(count) + 1);
  if (layout.sum) {
    std::byte* p = state + o.sum + 8 * slot;
    StoreAt<double>(p, LoadAt<double>(p) + v);
  }
  if (layout.sumsq) {
    std::byte* p = state + o.sumsq + 8 * slot;
    StoreAt<double>(p, AddSquare(LoadAt<double>(p), v));
  }
  if (layout.KeepsMin()) {
    std::byte* p = state + o.min + 8 * slot;
    StoreAt<double>(p, std::min(LoadAt<double>(p), v));
  }
  if (layout.KeepsMax()) {
    std::byte* p = state + o.max + 8 * slot;
    StoreAt<double>(p, std::max(LoadAt<double>(p), v));
  }
  return true;
}

void RingReadAt(const RingLayout& layout, const std::byte* state, int64_t k, uint32_t slot,
                int64_t newest, WindowAgg& agg) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  agg = WindowAgg{0, 0.0, 0.0, nan, nan};
  if (newest == kNoBucket) return;
  const uint16_t nb = layout.buckets;
  // Stored buckets are [newest - buckets + 1, newest]; the window is [k - buckets + 1, k].
  const int64_t hi = std::min(k, newest);
  const int64_t lo = std::max(k, newest) - nb + 1;
  if (lo > hi) return;
  // The buckets [lo, hi] occupy one or two runs of consecutive slots: [begin, end), then
  // [0, wrapped). The common read, at the newest bucket, covers every slot.
  uint32_t begin = 0, end = nb, wrapped = 0;
  if (k != newest) {
    const auto len = static_cast<uint32_t>(hi - lo + 1);
    const auto back = static_cast<uint32_t>(k - lo);  // < buckets: slots from lo to k
    begin = slot >= back ? slot - back : slot + nb - back;
    end = std::min<uint32_t>(nb, begin + len);
    wrapped = len - (end - begin);
  }
  Acc acc;
  const bool keeps_min = layout.KeepsMin(), keeps_max = layout.KeepsMax();
  kFolds[layout.sum | layout.sumsq << 1 | keeps_min << 2 | keeps_max << 3](
      OffsetsOf(layout), state, begin, end, wrapped, acc);
  agg.count = acc.count;
  agg.sum = acc.Sum();
  agg.sumsq = acc.Sumsq();
  if (acc.count > 0) {
    if (keeps_min) agg.min = acc.Min();
    if (keeps_max) agg.max = acc.Max();
  }
}

void RingAddReadAt(const RingLayout& layout, std::byte* state, int64_t k, uint32_t slot,
                   int64_t newest, int64_t after, bool add, double v, WindowAgg& out) {
  RingAddReadAt(layout, RingAddReadNewestFor(layout), state, k, slot, newest, after, add, v, out);
}

RingAddReadNewestFn RingAddReadNewestFor(const RingLayout& layout) {
  return kAddReads[layout.sum | layout.sumsq << 1 | layout.KeepsMin() << 2 |
                   layout.KeepsMax() << 3];
}

bool RingAdd(const RingLayout& layout, std::byte* state, int64_t t_us, double v) {
  assert(layout.own_cursor && "RingAdd keeps the cursor in the state");
  const int64_t k = BucketOf(t_us, layout.step_us);
  const int64_t newest = LoadAt<int64_t>(state);
  if (!RingAddAt(layout, state, k, SlotOf(k, layout.buckets), newest, v)) return false;
  if (newest == kNoBucket || k > newest) StoreAt<int64_t>(state, k);
  return true;
}

WindowAgg RingRead(const RingLayout& layout, const std::byte* state, int64_t t_us) {
  assert(layout.own_cursor && "RingRead needs the cursor in the state");
  const int64_t k = BucketOf(t_us, layout.step_us);
  WindowAgg agg;
  RingReadAt(layout, state, k, SlotOf(k, layout.buckets), LoadAt<int64_t>(state), agg);
  return agg;
}

}  // namespace vigil::features_internal
