#pragma once

#include <cstddef>
#include <cstdint>

namespace vigil::features_internal {

// The last `capacity` (1..255) finite values of one input of one entity, in the order they
// were added, and a robust z-score of a new value against them: (x - median) / scale, with
// scale = 1.4826 * MAD (median absolute deviation from the median), which estimates the
// standard deviation of normal data but is not dragged by the outliers it is meant to find.
// When half the values or more are equal (MAD 0) the scale falls back to 1.2533 * the mean
// absolute deviation from the median; when every value is equal there is no scale and the
// score is NaN (like zscore on a history without spread). Exact and deterministic.
//
// Layout: uint32 held (values held, <= capacity), uint32 next (arrival slot the next value
// takes), double values[capacity] kept sorted, uint8 slot[capacity] (each value's arrival
// slot, to find the oldest), padded to 8 bytes. Kept sorted, the median is a lookup and the MAD
// a merge of the deviations on both sides of it (at most capacity / 2 + 1 steps): about 5x
// faster than selecting over an unsorted copy, whose comparisons on random amounts mispredict.
// An add finds the oldest value's slot (a byte scan) and moves the tail of each array by one:
// O(capacity), a few ns at 32. Works on caller-placed memory (8-byte aligned), never
// allocates; one thread owns a state.
inline constexpr int kRobustMaxCapacity = 255;
size_t RobustBytes(int capacity);

// Initialises `state` (RobustBytes(capacity) bytes) to empty.
void RobustInit(std::byte* state);

// Values held (at most capacity).
int RobustHeld(const std::byte* state);

// Adds x (the caller passes finite values only), evicting the oldest once `capacity` are held.
void RobustAdd(int capacity, std::byte* state, double x);

// Median and scale of the held values; false (both NaN) when fewer than `min_history` (>= 1)
// are held or they have no spread.
bool RobustCenterScale(const std::byte* state, int min_history, double& median, double& scale);

// (x - median) / scale of the held values; NaN if x is not finite or RobustCenterScale fails.
double RobustZ(const std::byte* state, int min_history, double x);

}  // namespace vigil::features_internal
