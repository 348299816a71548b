#pragma once

#include <cstdint>
#include <string_view>

namespace vigil::decode {

// Why a record was rejected. The name (ErrcName) is what dead letters, logs and metrics show.
enum class Errc : uint8_t {
  kOk = 0,
  kParse,         // not well-formed JSON / CSV
  kMissingField,  // a required field is absent, null or empty
  kBadType,       // a field is present but not of its declared type
  kNonFinite,     // NaN or infinity in a numeric field
  kOutOfRange,    // outside min/max, or latitude/longitude outside the globe
  kBadTimestamp,  // not a valid timestamp in the declared format, or an impossible date
  kOversize,      // the record is longer than input.max_record_bytes
  kBadHeader,     // CSV header does not name a mapped column
};

inline constexpr int kErrcCount = 9;

constexpr std::string_view ErrcName(Errc c) {
  switch (c) {
    case Errc::kOk:
      return "ok";
    case Errc::kParse:
      return "parse_error";
    case Errc::kMissingField:
      return "missing_field";
    case Errc::kBadType:
      return "bad_type";
    case Errc::kNonFinite:
      return "non_finite";
    case Errc::kOutOfRange:
      return "out_of_range";
    case Errc::kBadTimestamp:
      return "bad_timestamp";
    case Errc::kOversize:
      return "oversize";
    case Errc::kBadHeader:
      return "bad_header";
  }
  return "unknown";
}

}  // namespace vigil::decode
