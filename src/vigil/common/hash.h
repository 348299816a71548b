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

// Partitioned sources key a partition's entities by their hash with the partition's tag in
// the top 16 bits (1 + the source's slot for the partition; 0: untagged), so a partition's
// state can be found, snapshotted and dropped on its own. 112 bits of the hash remain.
inline constexpr uint64_t kTagShift = 48;
inline Hash128 WithTag(Hash128 h, uint16_t tag) {
  h.hi = (h.hi & ((uint64_t{1} << kTagShift) - 1)) | (uint64_t{tag} << kTagShift);
  return h;
}
inline uint16_t TagOf(const Hash128& h) { return static_cast<uint16_t>(h.hi >> kTagShift); }

}  // namespace vigil
