#include "vigil/common/time.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "vigil/common/event.h"

namespace vigil {

std::string_view FieldTypeName(FieldType t) {
  switch (t) {
    case FieldType::kInt:
      return "int";
    case FieldType::kFloat:
      return "float";
    case FieldType::kString:
      return "string";
    case FieldType::kBool:
      return "bool";
    case FieldType::kTimestamp:
      return "timestamp";
    case FieldType::kLat:
      return "lat";
    case FieldType::kLon:
      return "lon";
  }
  return "?";
}

std::optional<TimeFormat> ParseTimeFormat(std::string_view name) {
  if (name == "iso8601") return TimeFormat::kIso8601;
  if (name == "epoch_s") return TimeFormat::kEpochS;
  if (name == "epoch_ms") return TimeFormat::kEpochMs;
  if (name == "epoch_us") return TimeFormat::kEpochUs;
  if (name == "epoch_ns") return TimeFormat::kEpochNs;
  return std::nullopt;
}

std::string_view TimeFormatName(TimeFormat f) {
  switch (f) {
    case TimeFormat::kIso8601:
      return "iso8601";
    case TimeFormat::kEpochS:
      return "epoch_s";
    case TimeFormat::kEpochMs:
      return "epoch_ms";
    case TimeFormat::kEpochUs:
      return "epoch_us";
    case TimeFormat::kEpochNs:
      return "epoch_ns";
  }
  return "?";
}

// Howard Hinnant's days_from_civil: exact for the proleptic Gregorian calendar.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

namespace {

void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `n` digits at `p` into `out`; false if any is not a digit.
bool Digits(std::string_view s, size_t p, size_t n, unsigned& out) {
  if (p + n > s.size()) return false;
  unsigned v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[p + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::optional<int64_t> ParseIso8601(std::string_view s) {
  unsigned year, month, day, hour = 0, minute = 0, second = 0;
  if (!Digits(s, 0, 4, year) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, month) ||
      s[7] != '-' || !Digits(s, 8, 2, day)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) return std::nullopt;
  size_t p = 10;
  int64_t micros = 0;
  int64_t offset_s = 0;
  if (p < s.size()) {
    if (s[p] != 'T' && s[p] != 't' && s[p] != ' ') return std::nullopt;
    ++p;
    if (!Digits(s, p, 2, hour) || p + 2 >= s.size() || s[p + 2] != ':' ||
        !Digits(s, p + 3, 2, minute)) {
      return std::nullopt;
    }
    p += 5;
    if (p < s.size() && s[p] == ':') {
      if (!Digits(s, p + 1, 2, second)) return std::nullopt;
      p += 3;
      if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
        ++p;
        size_t digits = 0;
        int64_t scale = 100000;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
          if (digits < 6) micros += (s[p] - '0') * scale;
          scale /= 10;
          ++digits;
          ++p;
        }
        if (digits == 0) return std::nullopt;
      }
    }
    // 23:59:60 (a leap second) is accepted and folded into the next second, as POSIX does.
    if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
    if (p < s.size()) {
      if (s[p] == 'Z' || s[p] == 'z') {
        ++p;
      } else if (s[p] == '+' || s[p] == '-') {
        const int sign = s[p] == '-' ? -1 : 1;
        unsigned oh, om = 0;
        if (!Digits(s, p + 1, 2, oh)) return std::nullopt;
        p += 3;
        if (p < s.size() && s[p] == ':') ++p;
        if (p < s.size()) {
          if (!Digits(s, p, 2, om)) return std::nullopt;
          p += 2;
        }
        if (oh > 23 || om > 59) return std::nullopt;
        offset_s = sign * static_cast<int64_t>(oh * 3600 + om * 60);
      } else {
        return std::nullopt;
      }
    }
    if (p != s.size()) return std::nullopt;
  }
  const int64_t days = DaysFromCivil(year, month, day);
  const int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  return secs * 1000000 + micros;
}

std::optional<int64_t> EpochToMicros(double value, TimeFormat unit) {
  if (!std::isfinite(value)) return std::nullopt;
  double scale = 1;
  switch (unit) {
    case TimeFormat::kEpochS:
      scale = 1e6;
      break;
    case TimeFormat::kEpochMs:
      scale = 1e3;
      break;
    case TimeFormat::kEpochUs:
      scale = 1;
      break;
    case TimeFormat::kEpochNs:
      scale = 1e-3;
      break;
    case TimeFormat::kIso8601:
      return std::nullopt;
  }
  const double us = value * scale;
  if (us < -9.2e18 || us > 9.2e18) return std::nullopt;
  return static_cast<int64_t>(std::llround(us));
}

std::optional<int64_t> ParseEpoch(std::string_view text, TimeFormat unit) {
  if (text.empty()) return std::nullopt;
  int64_t whole = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), whole);
  if (ec == std::errc() && p == text.data() + text.size()) {
    // Integers are exact: no double rounding for nanosecond or microsecond stamps.
    switch (unit) {
      case TimeFormat::kEpochS:
        if (whole > 9'200'000'000'000 || whole < -9'200'000'000'000) return std::nullopt;
        return whole * 1000000;
      case TimeFormat::kEpochMs:
        if (whole > 9'200'000'000'000'000 || whole < -9'200'000'000'000'000) return std::nullopt;
        return whole * 1000;
      case TimeFormat::kEpochUs:
        return whole;
      case TimeFormat::kEpochNs:
        return whole / 1000;
      case TimeFormat::kIso8601:
        return std::nullopt;
    }
  }
  double d = 0;
  auto [q, ec2] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (ec2 != std::errc() || q != text.data() + text.size()) return std::nullopt;
  return EpochToMicros(d, unit);
}

void AppendIso8601(std::string& out, int64_t micros) {
  int64_t secs = micros / 1000000;
  int64_t frac = micros % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs -= 1;
  }
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days -= 1;
  }
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, y, m, d);
  // Two digits per table lookup: every decision writes its event time (records_benchmark).
  static constexpr char kPairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  char buf[40];
  char* p = buf;
  auto put2 = [&p](int64_t v) {  // 0 <= v < 100
    std::memcpy(p, kPairs + 2 * v, 2);
    p += 2;
  };
  if (y >= 0 && y <= 9999) {
    put2(y / 100);
    put2(y % 100);
  } else {  // outside the four digits ISO 8601 has: the year modulo 10000
    const int64_t low = (y % 10000 + 10000) % 10000;
    put2(low / 100);
    put2(low % 100);
  }
  *p++ = '-';
  put2(m);
  *p++ = '-';
  put2(d);
  *p++ = 'T';
  put2(rem / 3600);
  *p++ = ':';
  put2(rem / 60 % 60);
  *p++ = ':';
  put2(rem % 60);
  *p++ = '.';
  put2(frac / 10000);
  put2(frac / 100 % 100);
  put2(frac % 100);
  *p++ = 'Z';
  out.append(buf, static_cast<size_t>(p - buf));
}

std::string FormatIso8601(int64_t micros) {
  std::string s;
  AppendIso8601(s, micros);
  return s;
}

std::optional<int64_t> ParseDuration(std::string_view text) {
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || !std::isfinite(v) || v < 0) return std::nullopt;
  const std::string_view unit(p, static_cast<size_t>(text.data() + text.size() - p));
  double scale;
  if (unit == "us")
    scale = 1;
  else if (unit == "ms")
    scale = 1e3;
  else if (unit == "s")
    scale = 1e6;
  else if (unit == "m" || unit == "min")
    scale = 60e6;
  else if (unit == "h")
    scale = 3600e6;
  else if (unit == "d")
    scale = 86400e6;
  else
    return std::nullopt;
  return static_cast<int64_t>(std::llround(v * scale));
}

}  // namespace vigil
