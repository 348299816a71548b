#include "vigil/features/internal/window.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <limits>
#include <utility>

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

void ClearSlot(const RingLayout& l, const Offsets& o, std::byte* state, uint32_t slot) {
  StoreAt<uint32_t>(state + o.count + 4 * slot, 0);
  if (l.sum) StoreAt<double>(state + o.sum + 8 * slot, 0.0);
  if (l.sumsq) StoreAt<double>(state + o.sumsq + 8 * slot, 0.0);
  if (l.KeepsMin()) StoreAt<double>(state + o.min + 8 * slot, kInf);
  if (l.KeepsMax()) StoreAt<double>(state + o.max + 8 * slot, -kInf);
}

// Running aggregates of a read, two of each so that consecutive slots feed independent
// dependency chains (one chain of adds or min/max costs ~4 cycles per bucket).
struct Acc {
  uint64_t count = 0;
  double sum[2] = {0, 0}, sumsq[2] = {0, 0};
  double min[2] = {kInf, kInf}, max[2] = {-kInf, -kInf};
};

// Folds slots [begin, end) into `acc`, for one combination of kept aggregates.
template <bool kSum, bool kSumsq, bool kMin, bool kMax>
void Fold(const Offsets& o, const std::byte* state, uint32_t begin, uint32_t end, Acc& acc) {
  auto one = [&](uint32_t s, int j) {
    acc.count += LoadAt<uint32_t>(state + o.count + 4 * s);
    if constexpr (kSum) acc.sum[j] += LoadAt<double>(state + o.sum + 8 * s);
    if constexpr (kSumsq) acc.sumsq[j] += LoadAt<double>(state + o.sumsq + 8 * s);
    if constexpr (kMin) acc.min[j] = std::min(acc.min[j], LoadAt<double>(state + o.min + 8 * s));
    if constexpr (kMax) acc.max[j] = std::max(acc.max[j], LoadAt<double>(state + o.max + 8 * s));
  };
  uint32_t s = begin;
  for (; s + 2 <= end; s += 2) {
    one(s, 0);
    one(s + 1, 1);
  }
  if (s < end) one(s, 0);
}

template <bool kSum, bool kSumsq, bool kMin, bool kMax>
void FoldRuns(const Offsets& o, const std::byte* state, uint32_t begin, uint32_t end,
              uint32_t wrapped, Acc& acc) {
  Fold<kSum, kSumsq, kMin, kMax>(o, state, begin, end, acc);
  Fold<kSum, kSumsq, kMin, kMax>(o, state, 0, wrapped, acc);
}

using FoldFn = void (*)(const Offsets&, const std::byte*, uint32_t, uint32_t, uint32_t, Acc&);

// Indexed by sum | sumsq << 1 | min << 2 | max << 3.
template <size_t... I>
constexpr std::array<FoldFn, sizeof...(I)> MakeFolds(std::index_sequence<I...>) {
  return {FoldRuns<(I & 1) != 0, (I & 2) != 0, (I & 4) != 0, (I & 8) != 0>...};
}
constexpr std::array<FoldFn, 16> kFolds = MakeFolds(std::make_index_sequence<16>{});

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
    StoreAt<double>(p, LoadAt<double>(p) + v * v);
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
  agg.sum = acc.sum[0] + acc.sum[1];
  agg.sumsq = acc.sumsq[0] + acc.sumsq[1];
  if (acc.count > 0) {
    if (keeps_min) agg.min = std::min(acc.min[0], acc.min[1]);
    if (keeps_max) agg.max = std::max(acc.max[0], acc.max[1]);
  }
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
