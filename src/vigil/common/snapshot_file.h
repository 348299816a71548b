#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <xxhash.h>

namespace vigil {

// SnapshotWriter writes one binary state file of a checkpoint: a 16-byte header (magic, kind,
// format version), the caller's plain-data values and byte blocks in host byte order, and a
// trailing xxHash3 checksum of everything before it, so a torn or corrupted file is refused
// on restore rather than half-read. Into a file: buffered, and Finish() flushes and fsyncs.
// Into memory: a string (a sink), or gathered as pieces that refer to the large blocks
// written with View rather than copying them, valid while the writer and those blocks live.
// Nothing is written after Finish(), which is called once. Checkpoints are read back on the
// same architecture (little-endian x86-64 / aarch64); the header's version says when the
// layout changes. One thread writes a file. Errors throw std::runtime_error naming the path:
// the engine catches them on its threads and fails the checkpoint.
class SnapshotWriter {
 public:
  SnapshotWriter(const std::string& path, std::string_view kind, uint32_t version);
  // Writes into `*sink` instead of a file (snapshots sent to a Kafka topic); Finish appends
  // the checksum. `sink` must outlive the writer.
  SnapshotWriter(std::string* sink, std::string_view kind, uint32_t version);
  // Gathers the snapshot instead of copying it (one sent in chunks from memory): values are
  // copied into the writer, blocks passed to View are referred to. After Finish, `*pieces`
  // are the snapshot's bytes in order; they point into the writer and the viewed blocks, so
  // both must outlive their use.
  SnapshotWriter(std::vector<std::string_view>* pieces, std::string_view kind, uint32_t version);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  template <typename T>
  void Put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    Bytes(&v, sizeof v);
  }
  void Bytes(const void* p, size_t n);
  void String(std::string_view s) {
    Put<uint64_t>(s.size());
    Bytes(s.data(), s.size());
  }
  // Bytes, without copying them when gathering.
  void View(std::string_view s);
  void StringView(std::string_view s) {
    Put<uint64_t>(s.size());
    View(s);
  }
  // Makes room for `n` more bytes in a memory sink, so a large snapshot is not copied as its
  // buffer grows (nothing for a file).
  void Reserve(size_t n) {
    if (sink_) sink_->reserve(sink_->size() + n + sizeof(uint64_t));
  }
  // Writes the checksum, flushes and fsyncs (a file), or appends it (memory). The snapshot is
  // incomplete until this returns. Once only.
  void Finish();
  uint64_t Written() const { return written_; }

 private:
  void Drain();
  void Gather(const void* p, size_t n);
  void Start(std::string_view kind, uint32_t version);
  std::string path_;
  int fd_ = -1;
  std::string* sink_ = nullptr;
  // Gathering: each piece a viewed block (`view`) or bytes of `gathered_` (at, n).
  struct Piece {
    const char* view;
    size_t at, n;
  };
  std::vector<std::string_view>* pieces_ = nullptr;
  std::vector<Piece> gathered_pieces_;
  std::string gathered_;
  std::vector<std::byte> buf_;
  size_t used_ = 0;
  uint64_t written_ = 0;
  bool finished_ = false;
  XXH3_state_t* hash_;
};

// SnapshotReader reads a file written by SnapshotWriter: it loads the file, checks the
// header (kind and version) and the checksum up front, then hands out values in the order
// they were written (views into the mapped file). Every read is bounds-checked; a short or corrupt
// file throws std::runtime_error naming the path. Start-up (restore) only; one thread.
class SnapshotReader {
 public:
  SnapshotReader(const std::string& path, std::string_view kind, uint32_t version);
  // Reads bytes held in memory (kept alive by the caller), named `name` in errors.
  SnapshotReader(std::string_view bytes, std::string name, std::string_view kind, uint32_t version);
  ~SnapshotReader();
  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;

  template <typename T>
  T Get() {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    std::memcpy(&v, Take(sizeof v).data(), sizeof v);
    return v;
  }
  // The next n bytes, valid while the reader lives.
  std::span<const std::byte> Take(size_t n);
  std::string String() {
    const auto n = Get<uint64_t>();
    const auto b = Take(n);
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }
  bool AtEnd() const { return pos_ == end_; }
  size_t Remaining() const { return end_ - pos_; }
  // Throws "path: <what>" (for checks the caller makes on what it read).
  [[noreturn]] void Fail(std::string_view what) const;
  const std::string& Path() const { return path_; }

 private:
  void Check(std::string_view kind, uint32_t version);  // header and checksum

  std::string path_;
  // The file, mapped read-only: a restore copies each entity once, from the page cache into
  // its slab, instead of reading the whole file into a buffer first.
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  size_t pos_ = 0;
  size_t end_ = 0;  // where the checksum starts
};

// Writes `text` to `path` atomically: a temporary file in the same directory, fsync, rename,
// then fsync of the directory. A crash leaves either the old file or the new one.
void WriteFileAtomically(const std::string& path, std::string_view text);
// fsyncs a directory, so renames and new files in it survive a power loss.
void SyncDirectory(const std::string& dir);

}  // namespace vigil
