#pragma once

#include <cstddef>
#include <cstdint>

namespace vigil::features_internal {

// The last `capacity` (1..255) distinct values an entity has seen, least recently seen evicted
// first: "is this merchant / device / country new for this card?". Values are given as
// well-mixed 64-bit hashes (e.g. vigil::Hash64); the state keeps 32-bit fingerprints (the
// hash's high bits), so a never-seen value reads as seen with probability about
// capacity / 2^32 per check (7.5e-9 at capacity 32).
//
// Layout: uint32 fingerprint[capacity], most recently seen first, padded to a multiple of 8
// bytes; 0 marks an empty entry (a fingerprint of 0 is stored as 1). A check scans the live
// entries and moves the value to the front (one vector permute when it was among the first
// eight, else a memmove): O(capacity), which is cheap at these sizes. Works on caller-placed
// memory, never allocates; one thread owns a state.
size_t RecentBytes(int capacity);

// Initialises `state` (RecentBytes(capacity) bytes, 4-byte aligned) to empty.
void RecentInit(int capacity, std::byte* state);

// True if value_hash is among the last `capacity` distinct values seen. Either way, records
// it as the most recently seen (evicting the least recently seen one when full).
bool RecentSeenBefore(int capacity, std::byte* state, uint64_t value_hash);

}  // namespace vigil::features_internal
