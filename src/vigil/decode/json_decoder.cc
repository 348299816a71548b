#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <simdjson.h>

#include "vigil/decode/internal/decoders.h"
#include "vigil/decode/internal/field_parser.h"
#include "vigil/source/record_source.h"

namespace vigil::decode_internal {

namespace {

namespace ondemand = simdjson::ondemand;
using config::FieldSpec;
using decode::DecodeStatus;
using decode::Errc;

static_assert(source::kRecordPadding >= simdjson::SIMDJSON_PADDING,
              "records must carry the padding simdjson reads ahead into");

// Deeper JSON is rejected as kParse: bounds the recursion that validates skipped values.
constexpr int kMaxDepth = 128;

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// raw_json_token() runs up to the next token, so it carries the whitespace after the value.
std::string_view TrimTrailingJsonSpace(std::string_view token) {
  while (!token.empty() && IsJsonSpace(token.back())) token.remove_suffix(1);
  return token;
}

// JsonDecoder decodes one JSON object per record with simdjson On-Demand, straight from the
// source's padded buffer. It walks every key of the record once: mapped keys are converted into
// their fields, every other value is still fully validated (On-Demand would otherwise skip it
// unchecked), so any malformed JSON in the record is kParse. Duplicate keys: the first wins.
// See decoder.h for the contract.
class JsonDecoder final : public decode::Decoder {
 public:
  explicit JsonDecoder(const config::Pipeline& pipeline)
      : pipeline_(pipeline), seen_(pipeline.input.fields.size(), 0) {
    nodes_.emplace_back();  // the top-level object
    const auto& fields = pipeline.input.fields;
    for (size_t i = 0; i < fields.size(); ++i) AddPath(fields[i].from, static_cast<uint32_t>(i));
    // Sized once for the largest record the source may deliver, so Decode never allocates. If
    // this fails (out of memory), iterate() tries again and reports the error per record.
    if (parser_.allocate(pipeline.input.max_record_bytes) != simdjson::SUCCESS) return;
  }
  JsonDecoder(const JsonDecoder&) = delete;
  JsonDecoder& operator=(const JsonDecoder&) = delete;

  DecodeStatus Decode(std::string_view record, Event& event) override {
    event.Reset(pipeline_.input.fields.size());
    std::fill(seen_.begin(), seen_.end(), 0);
    DecodeStatus status;
    if (!CheckSize(pipeline_, record.size(), status)) return status;
    record_ = record;
    ondemand::document doc;
    simdjson::error_code error =
        parser_.iterate(record.data(), record.size(), record.size() + source::kRecordPadding)
            .get(doc);
    if (error == simdjson::EMPTY) {
      FailRecord(Errc::kParse, "empty record", status);
      return status;
    }
    if (error) return Invalid(error, nullptr, status);
    ondemand::object object;
    error = doc.get_object().get(object);
    if (error == simdjson::INCORRECT_TYPE) {
      FailRecord(Errc::kParse, "expected a JSON object", status);
      return status;
    }
    if (error) return Invalid(error, &doc, status);
    if (!DecodeObject(object, nodes_[0], 1, event, status)) return status;
    if (const auto rest = doc.current_location(); !rest.error()) {
      FailRecord(Errc::kParse,
                 fmt::format("invalid JSON: trailing content after the object at byte {}",
                             rest.value_unsafe() - record.data()),
                 status);
      return status;
    }
    if (!status.ok()) return status;  // a field error found on the way
    FinishEvent(pipeline_, event, status);
    return status;
  }

 private:
  // One key of a JSON object: the fields it maps to directly and/or the object node below it
  // (for dotted paths such as card.number).
  struct Child {
    std::string key;
    std::vector<uint32_t> fields;
    int node = -1;
    bool plain = true;  // no byte JSON must escape: comparable with the raw key bytes
    // The key's first 16 bytes (zero-filled) and a mask of the bytes it has, so that most
    // keys compare in two 64-bit operations.
    uint64_t head[2] = {0, 0};
    uint64_t mask[2] = {0, 0};
  };
  struct Node {
    std::vector<Child> children;
    size_t next = 0;  // where the next lookup starts: records usually keep their key order
  };

  void AddPath(std::string_view path, uint32_t field) {
    size_t node = 0;
    for (;;) {
      const size_t dot = path.find('.');
      const size_t c = ChildIndex(node, path.substr(0, dot));
      if (dot == std::string_view::npos) {
        nodes_[node].children[c].fields.push_back(field);
        return;
      }
      if (nodes_[node].children[c].node < 0) {
        const int below = static_cast<int>(nodes_.size());
        nodes_.emplace_back();  // may move the nodes: index them afresh
        nodes_[node].children[c].node = below;
      }
      node = static_cast<size_t>(nodes_[node].children[c].node);
      path.remove_prefix(dot + 1);
    }
  }

  // The child of `node` for `key`, added if new.
  size_t ChildIndex(size_t node, std::string_view key) {
    std::vector<Child>& children = nodes_[node].children;
    for (size_t c = 0; c < children.size(); ++c) {
      if (children[c].key == key) return c;
    }
    const bool plain = std::none_of(key.begin(), key.end(), [](char ch) {
      return ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20;
    });
    Child child{std::string(key), {}, -1, plain};
    const size_t n = std::min(key.size(), sizeof(child.head));
    std::memcpy(child.head, key.data(), n);
    std::memset(child.mask, 0xff, n);
    children.push_back(std::move(child));
    return children.size() - 1;
  }

  // Finds the child of `node` that `field`'s key names, or nullptr for an unmapped key. Keys
  // are compared as raw bytes (no unescaping, no scan for the key's end): the last key found
  // in this node predicts the next, so a record with the usual key order costs one memcmp
  // per key. Only a key that matches nothing is scanned, and unescaped if it has escapes.
  const Child* Find(Node& node, ondemand::field& field, simdjson::error_code& error) {
    const char* const raw = field.key().raw();
    const char* const end = record_.data() + record_.size();
    if (raw >= end) {
      error = simdjson::TAPE_ERROR;
      return nullptr;
    }
    const auto room = static_cast<size_t>(end - raw);  // the closing quote lies within
    const size_t n = node.children.size();
    size_t i = node.next;
    for (size_t tried = 0; tried < n; ++tried, ++i) {
      if (i >= n) i = 0;
      const Child& c = node.children[i];
      const size_t len = c.key.size();
      // A plain key has no backslash, so raw[len] == '"' is really the closing quote. Reading
      // 16 bytes from raw stays within the record's padding.
      if (!c.plain || len >= room || raw[len] != '"') continue;
      uint64_t word[2];
      std::memcpy(word, raw, sizeof(word));
      if (((word[0] & c.mask[0]) ^ c.head[0]) | ((word[1] & c.mask[1]) ^ c.head[1])) continue;
      if (len > sizeof(word) &&
          std::memcmp(raw + sizeof(word), c.key.data() + sizeof(word), len - sizeof(word)) != 0) {
        continue;
      }
      node.next = i + 1;
      return &c;
    }
    bool escaped = false;
    if (!KeyEnd(raw, end, escaped)) {
      error = simdjson::TAPE_ERROR;
      return nullptr;
    }
    if (!escaped) return nullptr;
    std::string_view key;
    if ((error = field.unescaped_key().get(key))) return nullptr;
    for (const Child& c : node.children) {
      if (c.key == key) return &c;
    }
    return nullptr;
  }

  // Scans a key from just after its opening quote to its closing quote; false if that is not
  // inside the record (stage 1 matched every quote, so it always is for a key it indexed).
  static bool KeyEnd(const char* p, const char* end, bool& escaped) {
    while (p < end && *p != '"') {
      if (*p == '\\') {
        escaped = true;
        p += 2;
      } else {
        ++p;
      }
    }
    return p < end;
  }

  // kParse for a simdjson error, with the byte offset when the document can tell.
  DecodeStatus& Invalid(simdjson::error_code error, ondemand::document* doc, DecodeStatus& status) {
    std::string where;
    if (doc != nullptr) {
      if (const auto at = doc->current_location(); !at.error()) {
        const auto offset = at.value_unsafe() - record_.data();
        if (offset >= 0 && static_cast<size_t>(offset) <= record_.size()) {
          where = fmt::format(" near byte {}", offset);
        }
      }
    }
    FailRecord(Errc::kParse,
               fmt::format("invalid JSON{}: {}", where, simdjson::error_message(error)), status);
    return status;
  }
  bool Fail(simdjson::error_code error, DecodeStatus& status) {
    Invalid(error, nullptr, status);
    return false;
  }
  bool Fail(std::string message, DecodeStatus& status) {
    FailRecord(Errc::kParse, "invalid JSON: " + message, status);
    return false;
  }

  // Checks a key nobody maps: its escapes, if it has any, must be valid.
  simdjson::error_code CheckKey(ondemand::field& field) {
    const char* const raw = field.key().raw();
    const char* const end = record_.data() + record_.size();
    bool escaped = false;
    if (raw >= end || !KeyEnd(raw, end, escaped)) return simdjson::TAPE_ERROR;
    if (!escaped) return simdjson::SUCCESS;
    std::string_view key;
    return field.unescaped_key().get(key);
  }

  // A string value without escapes is its raw bytes: stage 1 has already checked its UTF-8
  // and that it holds no raw control characters. Else simdjson unescapes (and checks) it.
  // Either way the value is consumed: On-Demand skips an unconsumed string that is followed
  // by ':' as if it were a key, so {"a":"b":1} would pass unnoticed.
  static simdjson::error_code GetString(ondemand::value& value, std::string_view token,
                                        std::string_view& text) {
    token = TrimTrailingJsonSpace(token);
    if (token.size() >= 2 && token.back() == '"') {
      const std::string_view inner = token.substr(1, token.size() - 2);
      if (std::memchr(inner.data(), '\\', inner.size()) == nullptr) {
        ondemand::raw_json_string raw;
        if (const auto error = value.get_raw_json_string().get(raw)) return error;
        text = inner;
        return simdjson::SUCCESS;
      }
    }
    return value.get_string().get(text);
  }

  // The value's raw token (with the whitespace after it). On a truncated record On-Demand may
  // stand on the end-of-input sentinel, whose "token" lies past the record (or has a bogus
  // length); that is the record ending early, never something to read.
  bool Token(ondemand::value& value, std::string_view& token, DecodeStatus& status) {
    token = value.raw_json_token();
    const char* const end = record_.data() + record_.size();
    if (token.data() < record_.data() || token.data() >= end ||
        token.size() > static_cast<size_t>(end - token.data()) || token.empty()) {
      return Fail(simdjson::INCOMPLETE_ARRAY_OR_OBJECT, status);
    }
    return true;
  }

  // Stores one scalar into every not-yet-seen field mapped to this key.
  void Assign(const Child& child, Source source, std::string_view text, Event& event,
              DecodeStatus& status) {
    for (const uint32_t i : child.fields) {
      if (seen_[i]) continue;  // duplicate key: the first occurrence wins
      seen_[i] = 1;
      if (!status.ok()) continue;  // keep the first field error; only validate from here on
      (void)SetField(pipeline_.input.fields[i], i, source, text, event, status);
    }
  }

  bool DecodeObject(ondemand::object& object, Node& node, int depth, Event& event,
                    DecodeStatus& status) {
    for (auto result : object) {
      if (const auto error = result.error()) return Fail(error, status);
      ondemand::field& field = result.value_unsafe();  // a reference: copying costs a stall
      simdjson::error_code error = simdjson::SUCCESS;
      const Child* child = Find(node, field, error);
      if (error) return Fail(error, status);
      ondemand::value& value = field.value();
      if (child == nullptr) {
        if (!Validate(value, depth + 1, status)) return false;
        continue;
      }
      if (!DecodeValue(value, *child, depth + 1, event, status)) return false;
    }
    return true;
  }

  bool DecodeValue(ondemand::value& value, const Child& child, int depth, Event& event,
                   DecodeStatus& status) {
    std::string_view token;
    if (!Token(value, token, status)) return false;
    switch (token[0]) {
      case '{': {
        Assign(child, Source::kObject, {}, event, status);
        if (child.node < 0) return Validate(value, depth, status);
        if (depth > kMaxDepth) return Fail(fmt::format("nested deeper than {}", kMaxDepth), status);
        ondemand::object object;
        if (const auto error = value.get_object().get(object)) return Fail(error, status);
        return DecodeObject(object, nodes_[static_cast<size_t>(child.node)], depth, event, status);
      }
      case '[':
        Assign(child, Source::kArray, {}, event, status);
        return Validate(value, depth, status);
      case '"': {
        std::string_view text;
        if (const auto error = GetString(value, token, text)) return Fail(error, status);
        Assign(child, Source::kText, text, event, status);
        return true;
      }
      case 't':
      case 'f': {
        bool b = false;
        if (const auto error = value.get_bool().get(b)) return Fail(error, status);
        Assign(child, Source::kBool, b ? "true" : "false", event, status);
        return true;
      }
      case 'n': {
        bool is_null = false;
        if (const auto error = value.is_null().get(is_null)) return Fail(error, status);
        if (!is_null) return Fail(simdjson::N_ATOM_ERROR, status);
        for (const uint32_t i : child.fields) seen_[i] = 1;  // null: the field stays kNull
        return true;
      }
      default:
        return DecodeNumber(value, child, TrimTrailingJsonSpace(token), event, status);
    }
  }

  // A number for one int or float field is parsed by simdjson (which also validates it);
  // anything else, or a number simdjson declines (a fraction for an int, out of range), goes
  // through the text path, which gives the precise error.
  bool DecodeNumber(ondemand::value& value, const Child& child, std::string_view number,
                    Event& event, DecodeStatus& status) {
    if (child.fields.size() == 1 && !seen_[child.fields[0]] && status.ok()) {
      const uint32_t i = child.fields[0];
      const FieldSpec& spec = pipeline_.input.fields[i];
      if (spec.type == FieldType::kInt) {
        int64_t v = 0;
        if (value.get_int64().get(v) == simdjson::SUCCESS) {
          seen_[i] = 1;
          (void)SetParsedInt(spec, i, v, number, event, status);
          return true;
        }
      } else if (spec.type == FieldType::kFloat || spec.type == FieldType::kLat ||
                 spec.type == FieldType::kLon) {
        double v = 0;
        if (value.get_double().get(v) == simdjson::SUCCESS) {
          seen_[i] = 1;
          (void)SetParsedFloat(spec, i, v, number, event, status);
          return true;
        }
      }
    }
    if (!IsJsonNumber(number)) return Fail("not a number: " + Quote(number), status);
    Assign(child, Source::kNumber, number, event, status);
    return true;
  }

  // Walks a value nobody asked for, so that malformed JSON inside it is still kParse.
  bool Validate(ondemand::value& value, int depth, DecodeStatus& status) {
    if (depth > kMaxDepth) return Fail(fmt::format("nested deeper than {}", kMaxDepth), status);
    std::string_view token;
    if (!Token(value, token, status)) return false;
    switch (token[0]) {
      case '{': {
        ondemand::object object;
        if (const auto error = value.get_object().get(object)) return Fail(error, status);
        for (auto result : object) {
          if (const auto error = result.error()) return Fail(error, status);
          ondemand::field& field = result.value_unsafe();
          if (const auto error = CheckKey(field)) return Fail(error, status);
          if (!Validate(field.value(), depth + 1, status)) return false;
        }
        return true;
      }
      case '[': {
        ondemand::array array;
        if (const auto error = value.get_array().get(array)) return Fail(error, status);
        for (auto result : array) {
          ondemand::value element;
          if (const auto error = std::move(result).get(element)) return Fail(error, status);
          if (!Validate(element, depth + 1, status)) return false;
        }
        return true;
      }
      case '"': {
        std::string_view text;
        if (const auto error = GetString(value, token, text)) return Fail(error, status);
        return true;
      }
      case 't':
      case 'f': {
        bool b = false;
        if (const auto error = value.get_bool().get(b)) return Fail(error, status);
        return true;
      }
      case 'n': {
        bool is_null = false;
        if (const auto error = value.is_null().get(is_null)) return Fail(error, status);
        if (!is_null) return Fail(simdjson::N_ATOM_ERROR, status);
        return true;
      }
      default: {
        const std::string_view number = TrimTrailingJsonSpace(token);
        if (!IsJsonNumber(number)) return Fail("not a number: " + Quote(number), status);
        return true;
      }
    }
  }

  const config::Pipeline& pipeline_;
  std::vector<Node> nodes_;    // nodes_[0] is the record's top-level object
  std::vector<uint8_t> seen_;  // by field: its key already occurred in this record
  std::string_view record_;    // the record being decoded, for error offsets
  ondemand::parser parser_;
};

}  // namespace

std::unique_ptr<decode::Decoder> MakeJsonDecoder(const config::Pipeline& pipeline) {
  return std::make_unique<JsonDecoder>(pipeline);
}

}  // namespace vigil::decode_internal
