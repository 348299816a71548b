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

// Median of v[0, n) (n > 0); reorders v. For even n, the mean of the two middle values.
double Median(double* v, size_t n) {
  const size_t mid = n / 2;
  std::nth_element(v, v + mid, v + n);
  const double upper = v[mid];
  if (n % 2 == 1) return upper;
  const double lower = *std::max_element(v, v + mid);  // nth_element put the smaller half first
  return lower + (upper - lower) / 2;
}

}  // namespace

size_t RobustBytes(int capacity) {
  assert(capacity >= 1 && capacity <= kRobustMaxCapacity && "robust capacity out of range");
  return kHeader + sizeof(double) * static_cast<size_t>(capacity);
}

void RobustInit(std::byte* state) { std::memset(state, 0, kHeader); }

int RobustHeld(const std::byte* state) { return static_cast<int>(LoadU32(state)); }

void RobustAdd(int capacity, std::byte* state, double x) {
  const uint32_t cap = static_cast<uint32_t>(capacity);
  const uint32_t held = LoadU32(state);
  const uint32_t next = LoadU32(state + 4);
  std::memcpy(state + kHeader + sizeof(double) * next, &x, sizeof x);
  StoreU32(state + 4, next + 1 == cap ? 0 : next + 1);
  if (held < cap) StoreU32(state, held + 1);
}

bool RobustCenterScale(const std::byte* state, int min_history, double& median, double& scale) {
  median = scale = kNaN;
  const size_t n = LoadU32(state);
  if (n == 0 || n < static_cast<size_t>(min_history)) return false;
  std::array<double, kRobustMaxCapacity> v;
  std::memcpy(v.data(), state + kHeader, n * sizeof(double));
  const double med = Median(v.data(), n);
  double sum_dev = 0;
  for (size_t i = 0; i < n; ++i) {
    v[i] = std::fabs(v[i] - med);
    sum_dev += v[i];
  }
  double s = kMadToSigma * Median(v.data(), n);
  if (!(s > 0)) s = kMeanAdToSigma * (sum_dev / static_cast<double>(n));
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
