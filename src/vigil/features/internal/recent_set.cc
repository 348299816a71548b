#include "vigil/features/internal/recent_set.h"

#include <bit>
#include <cassert>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace vigil::features_internal {
namespace {

uint32_t Fingerprint(uint64_t h) {
  const auto fp = static_cast<uint32_t>(h >> 32);
  return fp == 0 ? 1 : fp;
}

}  // namespace

size_t RecentBytes(int capacity) {
  assert(capacity >= 1 && capacity <= 255 && "recent-set capacity is 1..255");
  return (4 * static_cast<size_t>(capacity) + 7) & ~size_t{7};
}

void RecentInit(int capacity, std::byte* state) { std::memset(state, 0, RecentBytes(capacity)); }

bool RecentSeenBefore(int capacity, std::byte* state, uint64_t value_hash) {
  const uint32_t fp = Fingerprint(value_hash);
  // Entries fill from the front, so the first empty one ends the live entries: the scan stops
  // at the first entry equal to fp (seen) or 0, at i; i == capacity when neither is there.
  int i = 0;
  bool seen = false;
  bool stopped = false;
#if defined(__AVX2__)
  // Eight entries per compare, while eight remain inside the state.
  const __m256i want = _mm256_set1_epi32(static_cast<int>(fp));
  for (; i + 8 <= capacity; i += 8) {
    const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state + 4 * i));
    const auto hit =
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(e, want))));
    const auto empty = static_cast<uint32_t>(
        _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(e, _mm256_setzero_si256()))));
    if ((hit | empty) != 0) {
      const int at = std::countr_zero(hit | empty);
      seen = ((hit >> at) & 1) != 0;
      i += at;
      stopped = true;
      break;
    }
  }
#endif
  for (; !stopped && i < capacity; ++i) {
    uint32_t e;
    std::memcpy(&e, state + 4 * i, 4);
    if (e == fp || e == 0) {
      seen = e == fp;
      break;
    }
  }
  // Shift entries [0, moved) back by one, over the hit (seen), the first empty entry, or, when
  // full and not seen, the least recently seen entry (i == capacity: evicted), and put fp in
  // front. A hit at the front (the same country as last time) changes nothing.
  const int moved = i < capacity ? i : capacity - 1;
#if defined(__AVX2__)
  if (capacity >= 8 && moved < 8) {
    // Within the first eight entries: lanes 1 .. moved take the lane before theirs, lane 0
    // takes fp, the others stay.
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state));
    const __m256i back = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6));
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i take = _mm256_cmpgt_epi32(_mm256_set1_epi32(moved + 1), lane);
    const __m256i out = _mm256_blend_epi32(_mm256_blendv_epi8(v, back, take), want, 1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(state), out);
    return seen;
  }
#endif
  if (moved > 0) std::memmove(state + 4, state, 4 * static_cast<size_t>(moved));
  std::memcpy(state, &fp, 4);
  return seen;
}

}  // namespace vigil::features_internal
