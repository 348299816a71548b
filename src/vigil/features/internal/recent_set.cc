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
  // at the first entry equal to fp or 0.
  int i = 0;
#if defined(__AVX2__)
  // Eight entries per compare, while eight remain inside the state.
  const __m256i want = _mm256_set1_epi32(static_cast<int>(fp));
  const __m256i zero = _mm256_setzero_si256();
  for (; i + 8 <= capacity; i += 8) {
    const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state + 4 * i));
    const __m256i stop = _mm256_or_si256(_mm256_cmpeq_epi32(e, want), _mm256_cmpeq_epi32(e, zero));
    const auto m = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(stop)));
    if (m != 0) {
      i += std::countr_zero(m);
      break;
    }
  }
#endif
  for (; i < capacity; ++i) {
    uint32_t e;
    std::memcpy(&e, state + 4 * i, 4);
    if (e == fp || e == 0) break;
  }
  bool seen = false;
  if (i < capacity) {
    uint32_t e;
    std::memcpy(&e, state + 4 * i, 4);
    seen = e == fp;
  }
  // Shift entries [0, i) back by one, over the hit (seen), the first empty entry, or, when
  // full and not seen, the least recently seen entry (i == capacity: evicted). A hit at the
  // front (the same country as last time) changes nothing.
  const int moved = i < capacity ? i : capacity - 1;
  if (moved > 0) std::memmove(state + 4, state, 4 * static_cast<size_t>(moved));
  std::memcpy(state, &fp, 4);
  return seen;
}

}  // namespace vigil::features_internal
