#include "vigil/decode/internal/csv_splitter.h"

#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "vigil/decode/internal/field_parser.h"

namespace vigil::decode_internal {

namespace {

const char* Find(const char* p, const char* end, char c) {
  if (p >= end) return nullptr;
  return static_cast<const char*>(std::memchr(p, c, static_cast<size_t>(end - p)));
}

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

// Nonzero iff some byte of `w` is zero (the classic SWAR test; exact for "any").
constexpr uint64_t HasZeroByte(uint64_t w) { return (w - kOnes) & ~w & kHighs; }

// The first delimiter or quote in [p, end), or end. Cells are short, so eight bytes at a time
// beats a memchr call per cell and per character class.
const char* FindDelimiterOrQuote(const char* p, const char* end, char delimiter) {
  const uint64_t d = kOnes * static_cast<unsigned char>(delimiter);
  const uint64_t q = kOnes * static_cast<unsigned char>('"');
  while (end - p >= 8) {
    uint64_t w;
    std::memcpy(&w, p, sizeof(w));
    if (HasZeroByte(w ^ d) | HasZeroByte(w ^ q)) break;
    p += 8;
  }
  while (p < end && *p != delimiter && *p != '"') ++p;
  return p;
}

}  // namespace

bool CsvSplitter::Split(std::string_view record, std::string& error) {
  cells_.clear();
  if (!record.empty() && record.back() == '\r') record.remove_suffix(1);
  // Unescaped cells never add up to more than the record, so this buffer never moves while
  // cells point into it.
  if (unescaped_.size() < record.size()) unescaped_.resize(record.size());
  char* out = unescaped_.data();
  const char* p = record.data();
  const char* const end = p + record.size();
  for (;;) {
    const size_t column = cells_.size() + 1;
    if (p < end && *p == '"') {
      const char* const start = ++p;
      const char* pending = p;  // first byte not yet copied, once copying
      char* copy_begin = nullptr;
      char* copy_end = nullptr;
      for (;;) {
        const char* q = Find(p, end, '"');
        if (q == nullptr) {
          error = fmt::format("unterminated quoted field in column {}", column);
          return false;
        }
        if (q + 1 < end && q[1] == '"') {  // "" stands for one quote
          if (copy_begin == nullptr) copy_begin = copy_end = out;
          const size_t n = static_cast<size_t>(q + 1 - pending);
          std::memcpy(copy_end, pending, n);
          copy_end += n;
          p = pending = q + 2;
          continue;
        }
        if (copy_begin == nullptr) {
          cells_.push_back({{start, static_cast<size_t>(q - start)}, true});
        } else {
          const size_t n = static_cast<size_t>(q - pending);
          std::memcpy(copy_end, pending, n);
          copy_end += n;
          cells_.push_back({{copy_begin, static_cast<size_t>(copy_end - copy_begin)}, true});
          out = copy_end;
        }
        p = q + 1;
        break;
      }
      if (p == end) return true;
      if (*p != delimiter_) {
        error = fmt::format("unexpected {} after the closing quote in column {}",
                            Quote(std::string_view(p, 1)), column);
        return false;
      }
      ++p;
    } else {
      const char* cell_end = FindDelimiterOrQuote(p, end, delimiter_);
      if (cell_end < end && *cell_end == '"') {
        error = fmt::format("quote inside unquoted field in column {}", column);
        return false;
      }
      cells_.push_back({{p, static_cast<size_t>(cell_end - p)}, false});
      if (cell_end == end) return true;
      p = cell_end + 1;
    }
  }
}

}  // namespace vigil::decode_internal
