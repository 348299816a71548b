#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "vigil/features/internal/window.h"

namespace vigil::features_internal {

// Windowed distinct count: how many distinct values (given as well-mixed 64-bit hashes, e.g.
// vigil::Hash64) were added in a sliding window with the ring's bucket semantics (see
// RingLayout: bucket k = floor(t / step_us), a read at t covers [k - buckets + 1, k]).
//
// Exact while small: up to 16 live (fingerprint, bucket) entries inline, one per distinct
// value, holding the latest bucket it was seen in. Fingerprints are the hash's high 32 bits,
// so two different values merge with probability ~2^-32 per pair (< 3e-8 for 16 values);
// with 16-bit bucket offsets that keeps the inline state at 112 bytes instead of 272. When a 17th
// distinct value arrives while 16 are live, the entity switches to HyperLogLog: per-bucket
// registers (p = 8: 256 one-byte registers per bucket), and the estimator sums of their union.
// A read takes the register-wise max over the live buckets and applies the standard HLL
// estimator with linear counting for small ranges (standard error 1.04 / sqrt(256) = 6.5%).
// The registers live on the heap, first sparse: the (bucket, register, rank) of each register
// set, 32 + 4 * capacity bytes, capacity 32 (24 for a one-bucket window) doubling as needed up
// to the cap below; an add scans them (O(entries)).
// Past a quarter of the dense size the entity moves to dense rows, (buckets + 1) * 256 + 16
// bytes with the union kept beside them. Both give the same registers, so the same estimates;
// most entities of a card stream (a merchant seeing dozens of cards a day) stay sparse, at a
// few hundred bytes instead of 3.3 KiB. Blocks are allocated at the switch and as a sparse one
// grows (at most log2 of its range times). When every bucket has left the window the entity
// counts exactly again: a sparse block is kept for reuse, a dense one freed. The union's sums are
// kept up to date per add and recounted once per step (skipped when the buckets leaving the window
// held nothing), so a read at the newest bucket costs O(1); other reads merge the rows. When every
// bucket has left the window, the entity goes back to exact counting (above: a sparse block stays
// allocated for the next switch, a dense one is freed). Once in HLL mode it stays approximate while
// any bucket is live, even if fewer than 16 values remain.
//
// Ownership: the inline state owns the register block through a pointer. Call
// DistinctDestroy before dropping or re-initialising a state that may have overflowed. Moving
// a state with memcpy is fine if the source is then forgotten (not destroyed, not used) or
// re-initialised with DistinctInit; copying one and using both leads to a double free. The
// inline bytes alone are not a checkpoint of an overflowed state: the pointer means nothing
// in another process.
//
// Inline layout (104 bytes + the cursor, 8-byte aligned):
//   uint64 register-block pointer | 1 while in HLL mode | 2 when the block is dense (0: none
//          allocated)
//   uint32 fingerprint[16]   (0: empty entry; a fingerprint of 0 is stored as 1)
//   uint16 bucket[16]        low 16 bits of the entry's bucket index; live entries are within
//                            buckets - 1 <= 65534 of the newest, so the full index is recovered
//   int64  newest bucket index seen (kNoBucket before the first add), if own_cursor; without
//          it the caller keeps the newest bucket (e.g. one per entity for every window that
//          sees the same events) and uses DistinctAddAt / DistinctReadAt.
// Not thread-safe: one thread owns a state at a time (the worker that owns the slab).
struct DistinctLayout {
  uint16_t buckets = 1;
  int64_t step_us = 1;
  bool own_cursor = true;
};

// Size of the inline part: 112 bytes with own_cursor, else 104.
size_t DistinctBytes(const DistinctLayout& layout);

// Initialises `state` (DistinctBytes bytes, 8-byte aligned) to empty, exact mode, no heap.
void DistinctInit(const DistinctLayout& layout, std::byte* state);

// Records value_hash at t_us (>= 0). Values whose bucket is older than the window ending at the
// newest bucket seen are dropped, as for RingAdd. Allocates the register block the first time
// the entity overflows the exact limit, and again each time a sparse block outgrows its
// capacity (DistinctHeapBytes changes then); allocation failure throws std::bad_alloc. In HLL
// mode, the first add of each new step recounts the union: O(buckets * 256) byte maxes
// (dense) or O(entries) (sparse), unless the rows leaving the window were empty.
// Needs own_cursor.
void DistinctAdd(const DistinctLayout& layout, std::byte* state, int64_t t_us, uint64_t value_hash);

// Distinct values in the window ending at t_us: an exact integer in exact mode, the HLL
// estimate otherwise. Reads older than the newest bucket see only what is still stored, and
// in exact mode a value seen again later counts only at its latest bucket. Needs own_cursor.
double DistinctRead(const DistinctLayout& layout, const std::byte* state, int64_t t_us);

// The same by bucket, for a caller that keeps the cursor: k is the value's bucket index,
// newest the newest bucket index before the add (kNoBucket if none); the caller records
// max(newest, k) and passes that to DistinctReadAt. Returns the change in DistinctHeapBytes
// (0 unless the add allocated a block or outgrew one), for a caller counting memory.
int64_t DistinctAddAt(const DistinctLayout& layout, std::byte* state, int64_t k, int64_t newest,
                      uint64_t value_hash);
double DistinctReadAt(const DistinctLayout& layout, const std::byte* state, int64_t k,
                      int64_t newest);

// Frees the register block, if any, and leaves the state empty (as after DistinctInit).
void DistinctDestroy(const DistinctLayout& layout, std::byte* state);

// Heap bytes owned by the state: 0 until it first overflows; then 32 + 4 * capacity while its
// registers are sparse, (buckets + 1) * 256 + 16 once dense.
size_t DistinctHeapBytes(const DistinctLayout& layout, const std::byte* state);

// True while the state counts with HyperLogLog (for tests and metrics).
bool DistinctIsApproximate(const std::byte* state);
// True when the state's register block is the dense one (for tests).
bool DistinctIsDense(const std::byte* state);

// Checkpoints. The inline bytes plus the register block (DistinctHeapBytes bytes at
// DistinctHeap, or nothing) are the whole state. DistinctRestoreHeap finishes a restore after
// the inline bytes were copied from a saved state: it allocates a new block holding `heap`
// (or none when `heap` is empty) and points the state at it, keeping the saved mode. The
// copied pointer is never followed or freed. A sparse block is told from a dense one by its
// first byte (0xFF, which no dense block starts with), so checkpoints written before sparse
// blocks existed restore as dense; a dense block saved with a state counting exactly (kept
// for reuse then) is not restored, since it would only be cleared. Returns false (and leaves
// no block) when `heap` is neither this layout's dense block nor a well-formed sparse one.
const std::byte* DistinctHeap(const std::byte* state);
bool DistinctRestoreHeap(const DistinctLayout& layout, std::byte* state,
                         std::span<const std::byte> heap);

}  // namespace vigil::features_internal
