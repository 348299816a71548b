#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include <simdjson.h>

#include "vigil/common/event.h"
#include "vigil/common/hash.h"
#include "vigil/common/time.h"
#include "vigil/config/pipeline.h"
#include "vigil/decode/decoder.h"
#include "vigil/source/record_source.h"

// What every decode outcome must satisfy, whatever the input bytes. A violation aborts, which
// libFuzzer reports as a crash with the input that caused it.
namespace vigil::fuzz {

inline void Require(bool ok, const char* what, std::string_view detail = {}) {
  if (ok) return;
  std::fprintf(stderr, "decode invariant violated: %s %.*s\n", what,
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// A record as a source hands it over: exactly `size` bytes plus kRecordPadding bytes of
// `fill`, in an allocation of exactly that size so ASan catches any read beyond the padding.
class PaddedRecord {
 public:
  PaddedRecord(const uint8_t* data, size_t size, char fill)
      : bytes_(new char[size + source::kRecordPadding]), size_(size) {
    if (size > 0) std::memcpy(bytes_.get(), data, size);
    std::memset(bytes_.get() + size, fill, source::kRecordPadding);
  }
  std::string_view view() const { return {bytes_.get(), size_}; }

 private:
  std::unique_ptr<char[]> bytes_;
  size_t size_;
};

inline bool IsUtf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

inline void CheckOutcome(const config::Pipeline& p, const decode::DecodeStatus& st,
                         const Event& e) {
  const auto& fields = p.input.fields;
  if (!st.ok()) {
    Require(!st.message.empty(), "an error without a message");
    Require(IsUtf8(st.message), "a message that is not UTF-8:", st.message);
    Require(st.field.empty() || p.FieldIndex(st.field) >= 0,
            "error names an unknown field:", st.field);
    return;
  }
  Require(st.field.empty() && st.message.empty(), "ok with a message:", st.message);
  Require(e.values.size() == fields.size(), "values not one per field");
  Require(e.id_index == p.id_field && e.key_index == p.key_field, "id/key index");
  for (size_t i = 0; i < fields.size(); ++i) {
    const config::FieldSpec& f = fields[i];
    const Value& v = e.values[i];
    if (v.kind == Value::Kind::kNull) {
      Require(!f.required, "required field is null:", f.name);
      continue;
    }
    switch (f.type) {
      case FieldType::kString:
        Require(v.kind == Value::Kind::kString, "string kind:", f.name);
        Require(static_cast<size_t>(v.s.off) + v.s.len <= e.arena.size(), "string outside arena");
        Require(IsUtf8(e.Str(v)), "string value not UTF-8:", f.name);
        break;
      case FieldType::kInt: {
        Require(v.kind == Value::Kind::kInt, "int kind:", f.name);
        const auto d = static_cast<double>(v.i);
        Require(!f.min || d >= *f.min, "int below min:", f.name);
        Require(!f.max || d <= *f.max, "int above max:", f.name);
        break;
      }
      case FieldType::kFloat:
      case FieldType::kLat:
      case FieldType::kLon: {
        Require(v.kind == Value::Kind::kFloat, "float kind:", f.name);
        Require(std::isfinite(v.f), "non-finite float accepted:", f.name);
        const double limit = f.type == FieldType::kLat ? 90 : f.type == FieldType::kLon ? 180 : 0;
        Require(limit == 0 || (v.f >= -limit && v.f <= limit), "off the globe:", f.name);
        Require(!f.min || v.f >= *f.min, "float below min:", f.name);
        Require(!f.max || v.f <= *f.max, "float above max:", f.name);
        break;
      }
      case FieldType::kBool:
        Require(v.kind == Value::Kind::kBool, "bool kind:", f.name);
        break;
      case FieldType::kTimestamp:
        Require(v.kind == Value::Kind::kTime, "time kind:", f.name);
        Require(v.i >= kMinTimeUs && v.i < kMaxTimeUs, "impossible timestamp accepted:", f.name);
        break;
    }
  }
  Require(!e.Id().empty(), "empty event id accepted");
  Require(!e.Key().empty(), "empty routing key accepted");
  Require(e.time_us >= kMinTimeUs && e.time_us < kMaxTimeUs, "event time out of range");
  Require(e.time_us == e.values[p.time_field].i, "time_us is not the time field");
  Require(e.key_hash == Hash64(e.Key()), "key_hash is not Hash64(key)");
}

}  // namespace vigil::fuzz
