#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

// How a timestamp field is written in the input.
enum class TimeFormat : uint8_t {
  kIso8601,  // 2026-11-23T10:15:30Z, 2026-11-23 10:15:30.250+01:00, 2026-11-23T10:15:30
  kEpochS,   // seconds since the epoch, integer or fractional
  kEpochMs,
  kEpochUs,
  kEpochNs,
};

std::optional<TimeFormat> ParseTimeFormat(std::string_view name);
std::string_view TimeFormatName(TimeFormat f);

// Earliest and latest event time Vigil accepts: 1970-01-01 and 2200-01-01 (exclusive).
// Anything outside is an "impossible timestamp" and the record is dead-lettered.
inline constexpr int64_t kMinTimeUs = 0;
inline constexpr int64_t kMaxTimeUs = 7258118400LL * 1000000;

// Parses an ISO-8601 / RFC 3339 timestamp. Checks the calendar (month 1-12, day within the
// month, leap years, hour < 24, ...) and applies an offset if present; no offset means UTC.
// Returns microseconds since the epoch, or nullopt when the text is not a valid timestamp.
std::optional<int64_t> ParseIso8601(std::string_view text);

// Parses a number in the given epoch unit (integer or decimal text) into microseconds.
std::optional<int64_t> ParseEpoch(std::string_view text, TimeFormat unit);
std::optional<int64_t> EpochToMicros(double value, TimeFormat unit);

// Formats microseconds since the epoch as 2026-11-23T10:15:30.250000Z (always 6 digits) into
// `out` (appended). Allocation-free when `out` has capacity.
void AppendIso8601(std::string& out, int64_t micros);
std::string FormatIso8601(int64_t micros);

// Days since 1970-01-01 for a proleptic Gregorian date, and back.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);

// Parses a duration like "500ms", "30s", "10m", "24h", "30d" into microseconds.
std::optional<int64_t> ParseDuration(std::string_view text);

}  // namespace vigil
