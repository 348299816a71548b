#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

// Numeric semantics shared by the evaluator and by constant folding, so a folded constant is
// exactly what evaluation would have produced. NaN is null throughout.
namespace vigil::rules_internal {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr int64_t kNullTime = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kMicrosPerHour = 3600LL * 1000000;
inline constexpr int64_t kMicrosPerDay = 24 * kMicrosPerHour;

// Division and remainder by zero are null, not infinity.
inline double Divide(double a, double b) { return b == 0 ? kNaN : a / b; }
inline double Remainder(double a, double b) { return b == 0 ? kNaN : std::fmod(a, b); }
// min / max of a null is null (std::fmin would ignore it).
inline double Min(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? kNaN : a < b ? a : b;
}
inline double Max(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? kNaN : a > b ? a : b;
}
inline double Log(double x) { return x > 0 ? std::log(x) : kNaN; }
inline double Sqrt(double x) { return x >= 0 ? std::sqrt(x) : kNaN; }
inline double Round(double x) { return std::round(x); }  // halves away from zero

// Mean Earth radius (IUGG), km. The features stage has its own haversine (an internal header
// of that stage); this one is kept identical in formula.
inline constexpr double kEarthRadiusKm = 6371.0088;

// Great-circle distance in km between two points in degrees (haversine). NaN if any is NaN.
inline double DistanceKm(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kRad = std::numbers::pi / 180.0;
  const double s_lat = std::sin((lat2 - lat1) * kRad / 2);
  const double s_lon = std::sin((lon2 - lon1) * kRad / 2);
  double a = s_lat * s_lat + std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * s_lon * s_lon;
  if (a > 1) a = 1;  // rounding near the antipodes (NaN passes through)
  return 2 * kEarthRadiusKm * std::asin(std::sqrt(a));
}

inline int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Hour of the day, 0-23, in UTC.
inline double HourOfDay(int64_t micros) {
  if (micros == kNullTime) return kNaN;
  return static_cast<double>(FloorDiv(micros, kMicrosPerHour) -
                             24 * FloorDiv(micros, kMicrosPerDay));
}

// ISO weekday in UTC: Monday = 1 ... Sunday = 7 (1970-01-01 was a Thursday, 4).
inline double DayOfWeek(int64_t micros) {
  if (micros == kNullTime) return kNaN;
  const int64_t days = FloorDiv(micros, kMicrosPerDay);
  return static_cast<double>((days % 7 + 7 + 3) % 7 + 1);
}

// a - b in seconds.
inline double TimeDiffSeconds(int64_t a, int64_t b) {
  if (a == kNullTime || b == kNullTime) return kNaN;
  return static_cast<double>(a - b) / 1e6;
}

}  // namespace vigil::rules_internal
