#include "vigil/features/internal/robust.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

namespace vigil::features_internal {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr size_t kHeader = 8;
// 1 / Phi^-1(3/4): MAD times this estimates a normal distribution's standard deviation.
constexpr double kMadToSigma = 1.482602218505602;
// sqrt(pi / 2): the mean absolute deviation times this does the same.
constexpr double kMeanAdToSigma = 1.2533141373155001;

uint32_t LoadU32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
void StoreU32(std::byte* p, uint32_t v) { std::memcpy(p, &v, sizeof v); }

double* Values(std::byte* state) { return reinterpret_cast<double*>(state + kHeader); }
const double* Values(const std::byte* state) {
  return reinterpret_cast<const double*>(state + kHeader);
}
uint8_t* Slots(int capacity, std::byte* state) {
  return reinterpret_cast<uint8_t*>(state + kHeader +
                                    sizeof(double) * static_cast<size_t>(capacity));
}

}  // namespace

size_t RobustBytes(int capacity) {
  assert(capacity >= 1 && capacity <= kRobustMaxCapacity && "robust capacity out of range");
  const size_t n = static_cast<size_t>(capacity);
  return kHeader + sizeof(double) * n + ((n + 7) & ~size_t{7});
}

void RobustInit(std::byte* state) { std::memset(state, 0, kHeader); }

int RobustHeld(const std::byte* state) { return static_cast<int>(LoadU32(state)); }

void RobustAdd(int capacity, std::byte* state, double x) {
  const uint32_t cap = static_cast<uint32_t>(capacity);
  uint32_t held = LoadU32(state);
  const uint32_t next = LoadU32(state + 4);
  double* v = Values(state);
  uint8_t* slot = Slots(capacity, state);
  if (held == cap) {  // forget the oldest value: the one in the slot this value takes
    const uint8_t* old = std::find(slot, slot + held, static_cast<uint8_t>(next));
    assert(old != slot + held && "robust state lost a slot");
    const size_t i = static_cast<size_t>(old - slot);
    std::memmove(v + i, v + i + 1, (held - i - 1) * sizeof(double));
    std::memmove(slot + i, slot + i + 1, held - i - 1);
    --held;
  }
  const size_t at = static_cast<size_t>(std::upper_bound(v, v + held, x) - v);
  std::memmove(v + at + 1, v + at, (held - at) * sizeof(double));
  std::memmove(slot + at + 1, slot + at, held - at);
  v[at] = x;
  slot[at] = static_cast<uint8_t>(next);
  StoreU32(state, held + 1);
  StoreU32(state + 4, next + 1 == cap ? 0 : next + 1);
}

bool RobustCenterScale(const std::byte* state, int min_history, double& median, double& scale) {
  median = scale = kNaN;
  const size_t n = LoadU32(state);
  if (n == 0 || n < static_cast<size_t>(min_history)) return false;
  const double* v = Values(state);
  const size_t mid = n / 2;
  const double med = n % 2 == 1 ? v[mid] : v[mid - 1] + (v[mid] - v[mid - 1]) / 2;
  // The deviations below the median (med - v[i], i going down from `lo`) and above it
  // (v[j] - med, j going up from `hi`) are two ascending lists: merge them up to the middle.
  const size_t hi = static_cast<size_t>(std::lower_bound(v, v + n, med) - v);
  ptrdiff_t lo = static_cast<ptrdiff_t>(hi) - 1;
  double below_mid = 0, at_mid = 0;  // deviations of rank mid - 1 and mid
  // Branch-free (the comparisons on random amounts would mispredict half the time): an
  // exhausted side reads as +inf, loads are clamped in range.
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const ptrdiff_t last = static_cast<ptrdiff_t>(n) - 1;
  ptrdiff_t up = static_cast<ptrdiff_t>(hi);
  for (size_t k = 0; k <= mid; ++k) {
    const double left = lo >= 0 ? med - v[std::max<ptrdiff_t>(lo, 0)] : kInf;
    const double right = up <= last ? v[std::min(up, last)] - med : kInf;
    const bool take_left = left < right;
    below_mid = at_mid;
    at_mid = take_left ? left : right;
    lo -= take_left;
    up += !take_left;
  }
  const double mad = n % 2 == 1 ? at_mid : below_mid + (at_mid - below_mid) / 2;
  double s = kMadToSigma * mad;
  if (!(s > 0)) {
    double sum_dev = 0;
    for (size_t i = 0; i < n; ++i) sum_dev += std::fabs(v[i] - med);
    s = kMeanAdToSigma * (sum_dev / static_cast<double>(n));
  }
  if (!(s > 0) || !std::isfinite(s)) return false;
  median = med;
  scale = s;
  return true;
}

double RobustZ(const std::byte* state, int min_history, double x) {
  if (!std::isfinite(x)) return kNaN;
  double median, scale;
  if (!RobustCenterScale(state, min_history, median, scale)) return kNaN;
  return (x - median) / scale;
}

}  // namespace vigil::features_internal
