#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "vigil/source/record_source.h"

namespace vigil::source {
namespace {

// FileSource reads a file or stdin in large chunks and frames records in place. Records point
// into `buf_`, which is only moved or refilled on the next Next() call.
class FileSource final : public RecordSource {
 public:
  FileSource(const std::string& path, const FileOptions& o)
      : name_(path == "-" ? "stdin" : path),
        options_(o),
        position_(o.start_offset),
        line_(o.start_line) {
    if (path == "-") {
      fd_ = 0;
      if (o.start_offset > 0) SkipStdin(o.start_offset);
    } else {
      fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) {
        throw std::runtime_error(
            fmt::format("{}: cannot open input: {}", path, std::strerror(errno)));
      }
      if (o.start_offset > 0 && ::lseek(fd_, static_cast<off_t>(o.start_offset), SEEK_SET) < 0) {
        throw std::runtime_error(fmt::format("{}: cannot seek to byte {}: {}", path, o.start_offset,
                                             std::strerror(errno)));
      }
    }
    // A chunk always holds at least one whole record of the maximum size, plus padding.
    chunk_ = std::max<size_t>(kChunk, options_.max_record_bytes * 2);
    buf_.resize(chunk_ + kRecordPadding);
  }
  ~FileSource() override {
    if (fd_ > 0) ::close(fd_);
  }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  bool Next(std::vector<Record>& out, size_t max) override {
    out.clear();
    // Records handed out last time are dead now; their bytes are reclaimed by Fill() when it
    // needs room (compacting here, on every call, moved ~0.7 MB per batch).
    while (out.size() < max) {
      Record r;
      const Framed f = Frame(r);
      if (f == Framed::kRecord) {
        out.push_back(r);
        continue;
      }
      if (f == Framed::kSkipped) continue;
      // kNeedMore: stop and hand out what we have, so the buffer can be compacted; or read
      // more when we have nothing yet.
      if (!out.empty()) break;
      if (eof_) {
        // The last record may have no trailing newline: it ends at the end of the input.
        if (begin_ < end_ && EmitTail(r)) out.push_back(r);
        break;
      }
      Fill();
    }
    return !out.empty();
  }

  uint64_t Position() const override { return position_; }
  uint64_t LinesRead() const override { return records_; }
  uint64_t NextLine() const override { return line_; }
  const std::string& Name() const override { return name_; }

 private:
  static constexpr size_t kChunk = 1 << 20;
  enum class Framed { kRecord, kSkipped, kNeedMore };

  void SkipStdin(uint64_t bytes) {
    std::vector<char> tmp(1 << 16);
    while (bytes > 0) {
      const ssize_t n = ::read(0, tmp.data(), std::min<uint64_t>(bytes, tmp.size()));
      if (n <= 0) throw std::runtime_error("stdin: input ended before the resume position");
      bytes -= static_cast<uint64_t>(n);
    }
  }

  // Drops consumed bytes from the front of the buffer. Only valid while no handed-out record
  // points into it.
  void Compact() {
    if (begin_ == 0) return;
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    scan_ -= std::min(scan_, begin_);
    begin_ = 0;
  }

  // Reads more input. Only called when no record of this batch points into the buffer.
  void Fill() {
    Compact();
    ssize_t n;
    do {
      n = ::read(fd_, buf_.data() + end_, chunk_ - end_);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
      throw std::runtime_error(fmt::format("{}: read error: {}", name_, std::strerror(errno)));
    if (n == 0) eof_ = true;
    end_ += static_cast<size_t>(n);
    std::memset(buf_.data() + end_, 0, kRecordPadding);
  }

  // Finds the end of the record starting at begin_: returns the index of its '\n' or npos.
  size_t FindEnd() {
    const char* base = buf_.data();
    if (options_.framing == Framing::kLines) {
      const void* nl = std::memchr(base + scan_, '\n', end_ - scan_);
      if (!nl) {
        scan_ = end_;
        return std::string::npos;
      }
      return static_cast<size_t>(static_cast<const char*>(nl) - base);
    }
    // CSV: a quote toggles; "" inside quotes toggles twice, which is RFC 4180's escape.
    for (size_t i = scan_; i < end_; ++i) {
      const char c = base[i];
      if (c == '"') {
        in_quotes_ = !in_quotes_;
      } else if (c == '\n') {
        if (!in_quotes_) return i;
        ++newlines_inside_;
      }
    }
    scan_ = end_;
    return std::string::npos;
  }

  Framed Frame(Record& r) {
    if (scan_ < begin_) scan_ = begin_;
    const size_t nl = FindEnd();
    const size_t len_so_far = (nl == std::string::npos ? end_ : nl) - begin_;
    if (nl == std::string::npos) {
      if (len_so_far > options_.max_record_bytes && !oversize_reported_) {
        // Report the oversize record now with its first bytes; skip the rest when it ends.
        MakeRecord(r, begin_, options_.max_record_bytes, true);
        oversize_reported_ = true;
        skipping_ = true;
        // Keep the scan state; the bytes are dropped on the next call by advancing begin_.
        return Framed::kRecord;
      }
      if (skipping_) {
        // Drop what we have scanned of the oversize record; keep scanning for its end.
        position_ += end_ - begin_;
        begin_ = end_;
        scan_ = end_;
      }
      return Framed::kNeedMore;
    }
    const size_t next = nl + 1;
    if (!skipping_ && (nl == begin_ || (nl == begin_ + 1 && buf_[begin_] == '\r'))) {
      // A blank line is not a record: nothing to decode, nothing to count.
      position_ += next - begin_;
      ++line_;
      begin_ = scan_ = next;
      return Framed::kSkipped;
    }
    if (skipping_) {
      position_ += next - begin_;
      line_ += 1 + newlines_inside_;
      newlines_inside_ = 0;
      in_quotes_ = false;
      skipping_ = false;
      oversize_reported_ = false;
      begin_ = scan_ = next;
      return Framed::kSkipped;
    }
    size_t len = nl - begin_;
    const bool oversize = len > options_.max_record_bytes;
    MakeRecord(r, begin_, oversize ? options_.max_record_bytes : len, oversize);
    position_ += next - begin_;
    line_ += 1 + newlines_inside_;
    newlines_inside_ = 0;
    begin_ = scan_ = next;
    return Framed::kRecord;
  }

  void MakeRecord(Record& r, size_t start, size_t len, bool oversize) {
    size_t n = len;
    if (!oversize && n > 0 && buf_[start + n - 1] == '\r') --n;  // CRLF
    r.text = std::string_view(buf_.data() + start, n);
    r.offset = position_;
    r.line = line_;
    r.oversize = oversize;
    ++records_;
  }

  // Frames the bytes left at end of input. False when there is no record to hand out: the
  // tail is blank, or it belongs to an oversize record already reported.
  bool EmitTail(Record& r) {
    const size_t len = end_ - begin_;
    const bool was_skipping = skipping_;
    const bool blank = len == 0 || (len == 1 && buf_[begin_] == '\r');
    if (!was_skipping && !blank) {
      const bool oversize = len > options_.max_record_bytes;
      MakeRecord(r, begin_, oversize ? options_.max_record_bytes : len, oversize);
    }
    position_ += len;
    line_ += 1;
    begin_ = scan_ = end_;
    skipping_ = false;
    return !was_skipping && !blank;
  }

  std::string name_;
  FileOptions options_;
  int fd_ = -1;
  std::vector<char> buf_;
  size_t chunk_ = 0;
  size_t begin_ = 0;  // first byte of the next record
  size_t scan_ = 0;   // where the search for the record's end continues
  size_t end_ = 0;    // end of valid data
  bool eof_ = false;
  bool in_quotes_ = false;
  bool skipping_ = false;
  bool oversize_reported_ = false;
  uint64_t newlines_inside_ = 0;
  uint64_t position_ = 0;
  uint64_t line_ = 1;
  uint64_t records_ = 0;
};

}  // namespace

std::unique_ptr<RecordSource> OpenFile(const std::string& path, const FileOptions& options) {
  return std::make_unique<FileSource>(path, options);
}

}  // namespace vigil::source
