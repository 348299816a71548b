#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vigil/common/event.h"
#include "vigil/config/pipeline.h"
#include "vigil/decode/decoder.h"
#include "vigil/decode/errc.h"

// Text -> typed value conversion shared by the JSON and CSV decoders, and the checks every
// decoded event gets once all its fields are in. Only the decode stage includes this header.
// Everything here is a free function over caller-owned buffers: thread-safe, and
// allocation-free unless it reports an error.
namespace vigil::decode_internal {

// What a value looked like in the input before conversion. CSV cells are always kText; JSON
// says which token it saw, which matters for strings (a JSON number for a string field is kept
// as its raw text) and for messages (text is quoted, tokens are not).
enum class Source : uint8_t {
  kText,    // a JSON string (unescaped) or a CSV cell (unquoted)
  kNumber,  // a JSON number token that IsJsonNumber accepted
  kBool,    // a JSON true / false token ("true" / "false")
  kObject,  // a JSON object; never convertible
  kArray,   // a JSON array; never convertible
};

enum class SetResult : uint8_t {
  kSet,    // event.values[index] holds the converted value
  kEmpty,  // empty text for a non-string field: the caller treats the field as missing
  kError,  // `status` holds the error; event.values[index] is untouched
};

// Converts `text` to `spec.type`, checks its bounds and stores it into event.values[index]
// (strings are appended to event.arena). Whitespace around numbers, bools and timestamps is
// ignored; strings are kept verbatim.
SetResult SetField(const config::FieldSpec& spec, size_t index, Source source,
                   std::string_view text, Event& event, decode::DecodeStatus& status);

// The same for a number the caller has already parsed (simdjson's number parsers are faster
// than from_chars): checks bounds, the globe and finiteness. `text` is the number as written,
// for messages. `spec.type` must be kInt for SetParsedInt, kFloat / kLat / kLon for
// SetParsedFloat.
SetResult SetParsedInt(const config::FieldSpec& spec, size_t index, int64_t value,
                       std::string_view text, Event& event, decode::DecodeStatus& status);
SetResult SetParsedFloat(const config::FieldSpec& spec, size_t index, double value,
                         std::string_view text, Event& event, decode::DecodeStatus& status);

// Checks what only the whole event can tell — required fields present, non-empty id and key —
// and fills Event::id_index, key_index, time_us and key_hash. False (and `status` set) if the
// event must be rejected.
bool FinishEvent(const config::Pipeline& pipeline, Event& event, decode::DecodeStatus& status);

// "missing required field 'amount'" plus ": <detail>" when `detail` is not empty.
void FailMissing(const config::FieldSpec& spec, std::string_view detail,
                 decode::DecodeStatus& status);
// Sets `status` to `code` for `spec`, with the message "field '<name>': <what>".
void FailField(const config::FieldSpec& spec, decode::Errc code, std::string_view what,
               decode::DecodeStatus& status);
// A record-level error (kParse, kOversize, kBadHeader with no single field).
void FailRecord(decode::Errc code, std::string message, decode::DecodeStatus& status);
// Rejects records longer than input.max_record_bytes; true when `size` is fine.
bool CheckSize(const config::Pipeline& pipeline, size_t size, decode::DecodeStatus& status);

// Input text as shown in messages: in double quotes, control characters and quotes escaped
// JSON-style, cut after kMaxQuoted bytes (on a UTF-8 character boundary) with "..." appended.
inline constexpr size_t kMaxQuoted = 64;
std::string Quote(std::string_view text);
// Appends `text` escaped as Quote does, without quotes and without cutting it.
void AppendEscaped(std::string& out, std::string_view text);

// The primitive parsers, exposed for tests.
enum class NumberParse : uint8_t { kOk, kSyntax, kRange, kNonFinite };
std::string_view TrimSpace(std::string_view text);
// Decimal int64, optional leading '-', nothing else. kRange when it overflows int64.
NumberParse ParseInt(std::string_view text, int64_t& out);
// Decimal or exponent notation. NaN / inf / infinity (any case) and overflow are kNonFinite;
// underflow rounds to zero.
NumberParse ParseFloat(std::string_view text, double& out);
// true/false/1/0/yes/no, any case.
std::optional<bool> ParseBool(std::string_view text);
// True when `text` is exactly one number in RFC 8259 grammar (-?int frac? exp?).
bool IsJsonNumber(std::string_view text);

}  // namespace vigil::decode_internal
