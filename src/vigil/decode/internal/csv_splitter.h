#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::decode_internal {

// CsvSplitter splits one CSV record (already framed by the source) into cells, following
// RFC 4180: a cell may be enclosed in double quotes, inside which the delimiter and newlines
// are literal and "" stands for one quote. A trailing CR (from CRLF files) is dropped.
// Strict where RFC 4180 is: a quote inside an unquoted cell, anything but a delimiter after a
// closing quote, and an unterminated quote are errors.
//
// Cells are views into the record, or into the splitter's own buffer for quoted cells that
// contained "" escapes; they stay valid until the next Split. Reuses its buffers, so steady-state
// splitting does not allocate. One per thread; not thread-safe.
class CsvSplitter {
 public:
  struct Cell {
    std::string_view text;
    bool quoted = false;  // enclosed in quotes: an empty quoted cell is an empty string, not absent
  };

  explicit CsvSplitter(char delimiter) : delimiter_(delimiter) {}
  CsvSplitter(const CsvSplitter&) = delete;
  CsvSplitter& operator=(const CsvSplitter&) = delete;

  // Splits `record`. Returns false and sets `error` (e.g. "unterminated quoted field in column
  // 3"; columns counted from 1) when the record is not well-formed CSV.
  bool Split(std::string_view record, std::string& error);

  size_t size() const { return cells_.size(); }
  const Cell& operator[](size_t i) const { return cells_[i]; }

 private:
  char delimiter_;
  std::vector<Cell> cells_;
  std::string unescaped_;  // "" escapes resolved; sized to the longest record seen
};

}  // namespace vigil::decode_internal
