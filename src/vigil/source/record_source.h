#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::source {

// One raw input record, before decoding.
struct Record {
  std::string_view text;  // the record without its line terminator; valid until the next Next()
  uint64_t offset = 0;    // byte offset of the record's first byte in the source
  uint64_t line = 0;      // 1-based line number where the record starts
  bool oversize = false;  // longer than max_record_bytes: `text` holds only its first bytes
};

// How records are delimited in a byte stream.
enum class Framing : uint8_t {
  kLines,  // one record per line (JSON lines); \n or \r\n
  kCsv,    // RFC 4180: a newline inside a quoted field does not end the record
};

// Bytes readable after the end of every Record::text (zeros past the data), so decoders such
// as simdjson may read ahead without copying.
inline constexpr size_t kRecordPadding = 64;

// RecordSource is an edge interface: anything that yields raw records (a file, stdin, the
// generator, later a Kafka partition). One thread calls it; it is not thread-safe.
class RecordSource {
 public:
  virtual ~RecordSource() = default;

  // Appends up to `max` records to `out` (after clearing it). Returns false once the input is
  // exhausted and nothing was appended. Throws std::runtime_error on an I/O error.
  virtual bool Next(std::vector<Record>& out, size_t max) = 0;

  // Byte offset just past the last record returned: where a resumed run starts reading.
  virtual uint64_t Position() const = 0;
  // Records returned so far (including any before a resume offset, when known).
  virtual uint64_t LinesRead() const = 0;
  // The 1-based line number where the next record starts (for resume positions). Sources
  // with exactly one record per line need not override it.
  virtual uint64_t NextLine() const { return LinesRead() + 1; }

  // Names the input in messages and dead letters: a path, "stdin" or "generator:card-fraud".
  virtual const std::string& Name() const = 0;
};

struct FileOptions {
  Framing framing = Framing::kLines;
  size_t max_record_bytes = 64 * 1024;
  uint64_t start_offset = 0;  // resume: skip to this byte offset (must be a record start)
  uint64_t start_line = 1;    // the line number at start_offset
};

// Opens a file for replay, or standard input when `path` is "-". Throws std::runtime_error
// naming the path when it cannot be opened.
std::unique_ptr<RecordSource> OpenFile(const std::string& path, const FileOptions& options);

}  // namespace vigil::source
