#include "vigil/features/internal/window.h"

#include <algorithm>
#include <cassert>
#include <limits>

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
  o.sum = sizeof(int64_t);
  o.sumsq = o.sum + (l.sum ? 8 * b : 0);
  o.min = o.sumsq + (l.sumsq ? 8 * b : 0);
  o.max = o.min + (l.minmax ? 8 * b : 0);
  o.count = o.max + (l.minmax ? 8 * b : 0);
  o.end = (o.count + 4 * b + 7) & ~size_t{7};
  return o;
}

void ClearSlot(const RingLayout& l, const Offsets& o, std::byte* state, uint32_t slot) {
  StoreAt<uint32_t>(state + o.count + 4 * slot, 0);
  if (l.sum) StoreAt<double>(state + o.sum + 8 * slot, 0.0);
  if (l.sumsq) StoreAt<double>(state + o.sumsq + 8 * slot, 0.0);
  if (l.minmax) {
    StoreAt<double>(state + o.min + 8 * slot, kInf);
    StoreAt<double>(state + o.max + 8 * slot, -kInf);
  }
}

// Running aggregates of a read, two of each so that consecutive slots feed independent
// dependency chains (one chain of adds or min/max costs ~4 cycles per bucket).
struct Acc {
  uint64_t count = 0;
  double sum[2] = {0, 0}, sumsq[2] = {0, 0};
  double min[2] = {kInf, kInf}, max[2] = {-kInf, -kInf};
};

// Folds slots [begin, end) into `acc`, for one combination of kept aggregates.
template <bool kSum, bool kSumsq, bool kMinmax>
void Fold(const Offsets& o, const std::byte* state, uint32_t begin, uint32_t end, Acc& acc) {
  auto one = [&](uint32_t s, int j) {
    acc.count += LoadAt<uint32_t>(state + o.count + 4 * s);
    if constexpr (kSum) acc.sum[j] += LoadAt<double>(state + o.sum + 8 * s);
    if constexpr (kSumsq) acc.sumsq[j] += LoadAt<double>(state + o.sumsq + 8 * s);
    if constexpr (kMinmax) {
      acc.min[j] = std::min(acc.min[j], LoadAt<double>(state + o.min + 8 * s));
      acc.max[j] = std::max(acc.max[j], LoadAt<double>(state + o.max + 8 * s));
    }
  };
  uint32_t s = begin;
  for (; s + 2 <= end; s += 2) {
    one(s, 0);
    one(s + 1, 1);
  }
  if (s < end) one(s, 0);
}

template <bool kSum, bool kSumsq, bool kMinmax>
void FoldRuns(const Offsets& o, const std::byte* state, uint32_t begin, uint32_t end,
              uint32_t wrapped, Acc& acc) {
  Fold<kSum, kSumsq, kMinmax>(o, state, begin, end, acc);
  Fold<kSum, kSumsq, kMinmax>(o, state, 0, wrapped, acc);
}

using FoldFn = void (*)(const Offsets&, const std::byte*, uint32_t, uint32_t, uint32_t, Acc&);

// Indexed by sum | sumsq << 1 | minmax << 2.
constexpr FoldFn kFolds[8] = {FoldRuns<false, false, false>, FoldRuns<true, false, false>,
                              FoldRuns<false, true, false>,  FoldRuns<true, true, false>,
                              FoldRuns<false, false, true>,  FoldRuns<true, false, true>,
                              FoldRuns<false, true, true>,   FoldRuns<true, true, true>};

}  // namespace

size_t RingBytes(const RingLayout& layout) { return OffsetsOf(layout).end; }

void RingInit(const RingLayout& layout, std::byte* state) {
  assert(layout.buckets > 0 && layout.step_us > 0 && "RingLayout needs buckets and a step");
  const Offsets o = OffsetsOf(layout);
  std::memset(state, 0, o.end);
  StoreAt<int64_t>(state, kNoBucket);
  if (layout.minmax) {
    for (uint32_t s = 0; s < layout.buckets; ++s) ClearSlot(layout, o, state, s);
  }
}

bool RingAdd(const RingLayout& layout, std::byte* state, int64_t t_us, double v) {
  const Offsets o = OffsetsOf(layout);
  const int64_t k = BucketOf(t_us, layout.step_us);
  const int64_t newest = LoadAt<int64_t>(state);
  if (newest == kNoBucket || k > newest) {
    // Clear the slots of buckets (newest, k]: they held buckets that have left the window.
    // After a gap of a whole window or more, that is every slot, once.
    const int64_t gap = newest == kNoBucket ? layout.buckets : k - newest;
    if (gap >= layout.buckets) {
      for (uint32_t s = 0; s < layout.buckets; ++s) ClearSlot(layout, o, state, s);
    } else {
      uint32_t s = SlotOf(newest, layout.buckets);
      for (int64_t i = 0; i < gap; ++i) {
        if (++s == layout.buckets) s = 0;
        ClearSlot(layout, o, state, s);
      }
    }
    StoreAt<int64_t>(state, k);
  } else if (k <= newest - layout.buckets) {
    return false;  // older than the window ending at the newest bucket
  }
  const uint32_t s = SlotOf(k, layout.buckets);
  std::byte* count = state + o.count + 4 * s;
  StoreAt<uint32_t>(count, LoadAt<uint32_t>(count) + 1);
  if (layout.sum) {
    std::byte* p = state + o.sum + 8 * s;
    StoreAt<double>(p, LoadAt<double>(p) + v);
  }
  if (layout.sumsq) {
    std::byte* p = state + o.sumsq + 8 * s;
    StoreAt<double>(p, LoadAt<double>(p) + v * v);
  }
  if (layout.minmax) {
    std::byte* lo = state + o.min + 8 * s;
    std::byte* hi = state + o.max + 8 * s;
    StoreAt<double>(lo, std::min(LoadAt<double>(lo), v));
    StoreAt<double>(hi, std::max(LoadAt<double>(hi), v));
  }
  return true;
}

WindowAgg RingRead(const RingLayout& layout, const std::byte* state, int64_t t_us) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  WindowAgg agg{0, 0.0, 0.0, nan, nan};
  const int64_t newest = LoadAt<int64_t>(state);
  if (newest == kNoBucket) return agg;
  const int64_t k = BucketOf(t_us, layout.step_us);
  // Stored buckets are [newest - buckets + 1, newest]; the window is [k - buckets + 1, k].
  const int64_t hi = std::min(k, newest);
  const int64_t lo = std::max(k, newest) - layout.buckets + 1;
  if (lo > hi) return agg;
  // The buckets [lo, hi] occupy one or two runs of consecutive slots: [begin, end), then
  // [0, wrapped). The common read, at the newest bucket, covers every slot: no modulo needed.
  uint32_t begin = 0, end = layout.buckets, wrapped = 0;
  if (k != newest) {
    const auto len = static_cast<uint32_t>(hi - lo + 1);
    begin = SlotOf(lo, layout.buckets);
    end = std::min<uint32_t>(layout.buckets, begin + len);
    wrapped = len - (end - begin);
  }
  Acc acc;
  kFolds[layout.sum | layout.sumsq << 1 | layout.minmax << 2](OffsetsOf(layout), state, begin, end,
                                                              wrapped, acc);
  agg.count = acc.count;
  agg.sum = acc.sum[0] + acc.sum[1];
  agg.sumsq = acc.sumsq[0] + acc.sumsq[1];
  if (layout.minmax && acc.count > 0) {
    agg.min = std::min(acc.min[0], acc.min[1]);
    agg.max = std::max(acc.max[0], acc.max[1]);
  }
  return agg;
}

}  // namespace vigil::features_internal
