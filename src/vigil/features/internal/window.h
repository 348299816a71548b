#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

// Sliding-window aggregates over caller-placed memory: the per-entity state kernels of the
// features stage keep every entity's state in one contiguous blob of a fixed-stride slab owned
// by one worker thread. Each kernel reports its byte size from its layout, is initialised in
// place, and never allocates. Free functions over caller-owned memory: no locks, no shared
// state; a state blob is used by one thread at a time.
namespace vigil::features_internal {

// Unaligned-safe typed access to a state blob. memcpy of a fixed small size compiles to a
// plain load/store, and sidesteps strict-aliasing questions about the caller's byte slab.
template <typename T>
inline T LoadAt(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T>
inline void StoreAt(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

// Bucket index of time t: floor(t / step). step_us > 0.
inline int64_t BucketOf(int64_t t_us, int64_t step_us) {
  int64_t q = t_us / step_us;
  if (t_us % step_us != 0 && t_us < 0) --q;
  return q;
}

// Slot of bucket index k in a ring of `buckets` slots: k mod buckets, non-negative.
inline uint32_t SlotOf(int64_t k, uint16_t buckets) {
  int64_t s = k % buckets;
  return static_cast<uint32_t>(s < 0 ? s + buckets : s);
}

// Floor division by a fixed positive divisor with one multiply instead of a 64-bit divide
// (~40 cycles on x86): the bucket index of every event, per step of every window. For
// 0 <= n < 2^63 and 2^(l-1) < d <= 2^l, m = ceil(2^(63+l) / d) fits 64 bits and satisfies
// 2^(63+l) <= m*d <= 2^(63+l) + 2^l, which makes floor(n*m / 2^(63+l)) == floor(n / d) exact
// (Granlund and Montgomery, "Division by invariant integers using multiplication", 1994,
// theorem 4.2 with N = 63). Negative n (times before 1970) take the plain division. For d >= 2
// (l >= 1) the shift is 64 or more: the product's high word shifted by l - 1, a shift of one
// word rather than of the 128-bit product (which costs a few instructions more, ~21 times per
// event in the card-fraud example). d == 1 is n itself.
class Divider {
  // GCC/Clang's 128-bit integer: the 64x64 -> 128-bit multiply is one instruction on x86-64.
  __extension__ using U128 = unsigned __int128;

 public:
  Divider() : Divider(1) {}
  explicit Divider(int64_t d) : d_(d) {
    int l = 0;
    while ((uint64_t{1} << l) < static_cast<uint64_t>(d)) ++l;
    const U128 one = 1;
    m_ = static_cast<uint64_t>(((one << (63 + l)) + static_cast<uint64_t>(d) - 1) /
                               static_cast<uint64_t>(d));
    shift_ = l > 0 ? l - 1 : 0;
    fast_below_ = d > 1 ? uint64_t{1} << 63 : 0;
  }
  int64_t divisor() const { return d_; }
  // floor(n / divisor()).
  int64_t Floor(int64_t n) const {
    // Negative n, or d == 1, in one compare.
    if (static_cast<uint64_t>(n) >= fast_below_) return d_ == 1 ? n : BucketOf(n, d_);
    const auto hi = static_cast<uint64_t>((static_cast<U128>(static_cast<uint64_t>(n)) * m_) >> 64);
    return static_cast<int64_t>(hi >> shift_);
  }
  // n mod divisor(), in [0, divisor()).
  uint32_t Mod(int64_t n) const { return static_cast<uint32_t>(n - Floor(n) * d_); }

 private:
  int64_t d_;
  uint64_t m_;
  int shift_;            // of the product's high word
  uint64_t fast_below_;  // n (as unsigned) below this takes the multiply: 2^63, or 0 for d == 1
};

// Bucket-index sentinel meaning "nothing added yet".
inline constexpr int64_t kNoBucket = INT64_MIN;

// A sliding window of `buckets` buckets of width `step_us` (both > 0). Bucket index
// k = floor(t / step_us). A read at time t aggregates the values whose bucket index lies in
// [k - buckets + 1, k]. So the window's edge moves in whole steps: it starts at
// (k - buckets + 1) * step_us. Read at the last tick of a bucket, a value exactly
// step_us * buckets old is out and one a tick younger is in; read earlier in the bucket, the
// window reaches back less than step_us * buckets.
// The count is always kept; `sum`, `sumsq`, `min` and `max` add the other aggregates
// (`minmax` keeps both min and max).
//
// own_cursor: the state starts with the ring's newest bucket index, and RingAdd / RingRead
// (by time) maintain it. Without it the caller keeps the newest bucket (e.g. one per entity
// for all the rings that see the same events) and uses RingAddAt / RingReadAt.
struct RingLayout {
  uint16_t buckets = 1;
  int64_t step_us = 1;
  bool sum = false;
  bool sumsq = false;
  bool minmax = false;
  bool min = false;
  bool max = false;
  bool own_cursor = true;

  bool KeepsMin() const { return minmax || min; }
  bool KeepsMax() const { return minmax || max; }
};

// What a window holds at a read. min/max are NaN when the window is empty or not kept;
// sum/sumsq are 0 when not kept.
struct WindowAgg {
  uint64_t count;
  double sum, sumsq, min, max;
};

// State layout (8-byte aligned, no padding inside):
//   int64  newest bucket index seen (kNoBucket before the first add)   if layout.own_cursor
//   double sum[buckets]    if layout.sum
//   double sumsq[buckets]  if layout.sumsq
//   double min[buckets]    if KeepsMin()   (+inf in an empty slot)
//   double max[buckets]    if KeepsMax()   (-inf in an empty slot)
//   uint32 count[buckets], padded to a multiple of 8 bytes
// Bucket k lives in slot k mod buckets. min/max are kept as doubles so they are exact: a
// float would round 9999.99 up to 9999.990234, and a rule like `max >= 9999.99` would flip.
// Per slot: 4 bytes + 8 per double aggregate; 12 buckets with everything: 8 + 12 * 36 = 440.
size_t RingBytes(const RingLayout& layout);

// Initialises `state` (RingBytes(layout) bytes, 8-byte aligned) to an empty window.
void RingInit(const RingLayout& layout, std::byte* state);

// Adds v at time t_us (>= 0) to bucket floor(t_us / step_us). Returns false (and changes
// nothing) when that bucket is older than the window ending at the newest bucket seen, i.e.
// k < newest - buckets + 1. An add in an older but still live bucket goes to that bucket. An
// add in a newer bucket first clears the buckets that leave the window: at most `buckets`
// slots, whatever the gap. v must not be NaN (the caller skips missing values): it would
// poison sum/sumsq. Counts are 32-bit per bucket. Needs own_cursor.
bool RingAdd(const RingLayout& layout, std::byte* state, int64_t t_us, double v);

// Aggregates the buckets of the window ending at t_us: [k - buckets + 1, k] with
// k = floor(t_us / step_us). Limitation: when t_us is older than the newest bucket seen, only
// the buckets still stored ([newest - buckets + 1, k]) count; older ones were overwritten.
// Needs own_cursor.
WindowAgg RingRead(const RingLayout& layout, const std::byte* state, int64_t t_us);

// The same by bucket, for a caller that keeps the cursor: k is the bucket index, slot its
// slot (k mod buckets), newest the ring's newest bucket index before the add (kNoBucket if
// none). RingAddAt does not record the new newest bucket, max(newest, k): the caller does,
// and passes it to RingReadAt. With own_cursor they skip the cursor word and leave it alone.
bool RingAddAt(const RingLayout& layout, std::byte* state, int64_t k, uint32_t slot, int64_t newest,
               double v);
// RingReadAt writes the aggregates into `out` (a caller's array slot, not a return value: the
// fields are written one by one, and a copy of the returned struct read them back with wider
// loads that missed store forwarding).
void RingReadAt(const RingLayout& layout, const std::byte* state, int64_t k, uint32_t slot,
                int64_t newest, WindowAgg& out);

// RingAddAt (when `add`) and then RingReadAt at `after`, the ring's newest bucket after the
// add (max(newest, k) when adding, else newest), in one call: the same state and the same
// aggregates, bit for bit. The usual case, an add at or past the newest bucket, runs a version
// compiled for the layout's aggregates; when the add is a whole window or more past the
// newest bucket, the read is the one live bucket, without a fold.
void RingAddReadAt(const RingLayout& layout, std::byte* state, int64_t k, uint32_t slot,
                   int64_t newest, int64_t after, bool add, double v, WindowAgg& out);

// RingAddReadAt's usual case, an add at or past the newest bucket (newest == kNoBucket or
// k >= newest), as the function compiled for one layout's aggregates, for a caller that
// looks it up once per layout rather than per add. Arguments: the layout's buckets; the
// ring's arrays (the state past the cursor word, when own_cursor); k's slot; the gap
// k - newest clamped to buckets (buckets when the ring is empty); v; the aggregates out.
using RingAddReadNewestFn = void (*)(uint32_t, std::byte*, uint32_t, int64_t, double, WindowAgg&);
RingAddReadNewestFn RingAddReadNewestFor(const RingLayout& layout);

// RingAddReadAt with the layout's compiled version given (RingAddReadNewestFor(layout)): the
// usual add is a direct call from the caller's loop, without looking the version up again.
inline void RingAddReadAt(const RingLayout& layout, RingAddReadNewestFn add_read_newest,
                          std::byte* state, int64_t k, uint32_t slot, int64_t newest, int64_t after,
                          bool add, double v, WindowAgg& out) {
  if (!add || (newest != kNoBucket && k < newest)) {
    if (add) RingAddAt(layout, state, k, slot, newest, v);
    RingReadAt(layout, state, k, slot, after, out);
    return;
  }
  // after == k: the read is at the newest bucket.
  const uint16_t nb = layout.buckets;
  const int64_t gap = newest == kNoBucket ? nb : std::min<int64_t>(k - newest, nb);
  add_read_newest(nb, state + (layout.own_cursor ? sizeof(int64_t) : 0), slot, gap, v, out);
}

// Mean of a window (NaN when empty).
inline double WindowMean(const WindowAgg& a) {
  return a.count == 0 ? std::nan("") : a.sum / static_cast<double>(a.count);
}

// Population standard deviation from count, sum and sumsq (NaN when empty; needs sum and
// sumsq kept). Computed as sqrt(sumsq/n - mean^2), clamped at 0: the absolute error of the
// variance is about 1e-16 * sumsq/n, so a window whose spread is below ~1e-7 of its mean
// reads as a (near) zero deviation. Amount-like data is far from that.
inline double WindowStddev(const WindowAgg& a) {
  if (a.count == 0) return std::nan("");
  const double n = static_cast<double>(a.count);
  const double mean = a.sum / n;
  const double var = a.sumsq / n - mean * mean;
  return var > 0 ? std::sqrt(var) : 0.0;
}

}  // namespace vigil::features_internal
