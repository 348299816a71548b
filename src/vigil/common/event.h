#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

// The declared type of an input field, as written in the pipeline file.
enum class FieldType : uint8_t { kInt, kFloat, kString, kBool, kTimestamp, kLat, kLon };

std::string_view FieldTypeName(FieldType t);

// Where a string value's bytes are in its Event's arena.
struct Slice {
  uint32_t off;
  uint32_t len;
};

// Value is one decoded field of an event. Strings live in the owning Event's arena and are
// referenced by offset, so an Event can be reused without reallocating.
struct Value {
  enum class Kind : uint8_t { kNull, kInt, kFloat, kBool, kString, kTime };
  Kind kind = Kind::kNull;
  union {
    int64_t i;  // kInt; kTime holds microseconds since the Unix epoch, UTC
    double f;   // kFloat (also lat / lon)
    bool b;     // kBool
    Slice s;    // kString: a slice of Event::arena
  };
  Value() : i(0) {}
};

// Event is one validated input record: its position in the source, its identity, event time
// and routing key, and its mapped fields in schema order. Events are pooled: `Reset` keeps
// the capacity of `values` and `arena`, so steady-state decoding does not allocate.
// Not thread-safe; an Event is written by one thread and then only read.
struct Event {
  uint64_t record = 0;          // 1-based record number in the source (CSV header not counted)
  uint64_t offset = 0;          // byte offset of the record's first byte in the source
  int64_t time_us = 0;          // event time, microseconds since the Unix epoch, UTC
  uint64_t key_hash = 0;        // hash of the routing key; picks the worker
  uint32_t id_index = 0;        // which field holds the event id (a string)
  uint32_t key_index = 0;       // which field holds the routing key (a string)
  bool replay = false;          // only rebuilds state: no decision is made or written for it
  int64_t source_time_ms = -1;  // when the source got it (a Kafka message's timestamp), or -1
  std::vector<Value> values;    // by field index, in schema order
  std::string arena;            // bytes of all string values

  void Reset(size_t field_count) {
    values.assign(field_count, Value{});
    arena.clear();
  }
  std::string_view Str(const Value& v) const { return {arena.data() + v.s.off, v.s.len}; }
  std::string_view Str(size_t field) const { return Str(values[field]); }
  std::string_view Id() const { return Str(id_index); }
  std::string_view Key() const { return Str(key_index); }
  void SetString(size_t field, std::string_view text) {
    Value& v = values[field];
    v.kind = Value::Kind::kString;
    v.s.off = static_cast<uint32_t>(arena.size());
    v.s.len = static_cast<uint32_t>(text.size());
    arena.append(text);
  }
};

}  // namespace vigil
