#include "vigil/common/json.h"

#include <charconv>
#include <cmath>

namespace vigil {

void AppendJsonNumber(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  // Numbers of at most six decimal places between 0.001 and 1e5 in magnitude, and 0 (counts,
  // flags, scores, amounts, coordinates), are written from their scaled integer, at a
  // fraction of to_chars' cost (records_benchmark). When k / 1e6 rounds to v, the digits of
  // k / 1e6 (trailing zeros dropped) are v's shortest form: any decimal with fewer
  // significant digits lies on that 1e-6 grid too, so it is another grid point and another
  // double; and at these magnitudes the fixed form is never longer than the exponent form.
  // -0 keeps its sign through to_chars.
  const double magnitude = std::fabs(v);
  if ((magnitude >= 0.001 && magnitude < 1e5) || (v == 0 && !std::signbit(v))) {
    const int64_t k = std::llround(v * 1e6);
    if (static_cast<double>(k) / 1e6 == v) {
      const int64_t units = k < 0 ? -k : k;
      char buf[32];
      char* p = buf;
      if (k < 0) *p++ = '-';
      p = std::to_chars(p, buf + sizeof buf, units / 1000000).ptr;
      int64_t frac = units % 1000000;
      if (frac != 0) {
        int places = 6;
        while (frac % 10 == 0) {
          frac /= 10;
          --places;
        }
        *p++ = '.';
        for (int i = places - 1; i >= 0; --i) {
          p[i] = static_cast<char>('0' + frac % 10);
          frac /= 10;
        }
        p += places;
      }
      out.append(buf, static_cast<size_t>(p - buf));
      return;
    }
  }
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(p - buf));
}

void AppendJsonNumber(std::string& out, int64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(p - buf));
}

}  // namespace vigil
