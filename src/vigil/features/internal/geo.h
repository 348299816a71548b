#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

namespace vigil::features_internal {

// Mean Earth radius (IUGG), km.
inline constexpr double kEarthRadiusKm = 6371.0088;

// Great-circle distance in km between two points given in degrees (haversine formula; within
// ~0.5% of the ellipsoidal distance). NaN if any coordinate is NaN.
inline double HaversineKm(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kRad = std::numbers::pi / 180.0;
  const double dlat = (lat2 - lat1) * kRad;
  const double dlon = (lon2 - lon1) * kRad;
  const double s_lat = std::sin(dlat / 2);
  const double s_lon = std::sin(dlon / 2);
  double a = s_lat * s_lat + std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * s_lon * s_lon;
  if (a > 1) a = 1;  // rounding near the antipodes (NaN passes through)
  return 2 * kEarthRadiusKm * std::asin(std::sqrt(a));
}

// Speed in km/h to cover `km` in dt_us microseconds. When dt_us <= 0: 0 if km == 0 (same
// place, same time), else NaN (no finite speed; the rule decides, e.g. on the distance).
inline double SpeedKmh(double km, int64_t dt_us) {
  if (dt_us <= 0) return km == 0 ? 0.0 : std::numeric_limits<double>::quiet_NaN();
  return km / (static_cast<double>(dt_us) / 3.6e9);
}

}  // namespace vigil::features_internal
