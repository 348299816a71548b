#include "vigil/features/internal/recent_set.h"

#include <cassert>
#include <cstring>

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
  // Entries fill from the front, so the first empty one ends the live entries.
  int i = 0;
  bool seen = false;
  for (; i < capacity; ++i) {
    uint32_t e;
    std::memcpy(&e, state + 4 * i, 4);
    if (e == fp) {
      seen = true;
      break;
    }
    if (e == 0) break;
  }
  // Shift entries [0, i) back by one, over the hit (seen), the first empty entry, or, when
  // full and not seen, the least recently seen entry (i == capacity: evicted).
  const int moved = i < capacity ? i : capacity - 1;
  std::memmove(state + 4, state, 4 * static_cast<size_t>(moved));
  std::memcpy(state, &fp, 4);
  return seen;
}

}  // namespace vigil::features_internal
