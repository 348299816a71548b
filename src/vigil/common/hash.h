#pragma once

#include <cstdint>
#include <string_view>

#include <xxhash.h>

namespace vigil {

// Hashes used across stages. xxHash (Debian's libxxhash) is fast and well distributed; the
// 128-bit form makes dedup collisions negligible (~1e-20 for 1e9 ids in a horizon).
inline uint64_t Hash64(std::string_view s) { return XXH3_64bits(s.data(), s.size()); }

struct Hash128 {
  uint64_t lo;
  uint64_t hi;
  bool operator==(const Hash128&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const Hash128& v) {
    return H::combine(std::move(h), v.lo, v.hi);
  }
};

inline Hash128 HashId(std::string_view s) {
  XXH128_hash_t h = XXH3_128bits(s.data(), s.size());
  return {h.low64, h.high64};
}

}  // namespace vigil
