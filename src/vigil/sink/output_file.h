#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace vigil::sink {

// OutputFile is an append-only, buffered JSON-lines output: a file, or stdout ("-") or
// stderr ("stderr"). It counts the bytes it has written so a checkpoint can record the exact
// length of each output and a resumed run can cut off anything written after it.
// Written by one thread (the engine's writer); not thread-safe.
class OutputFile {
 public:
  // Opens `path` for writing. `truncate_to`: keep only the first N bytes of an existing file
  // and append after them (a resumed run); -1 starts the file afresh. Throws
  // std::runtime_error naming the path on failure (start-up only).
  static std::unique_ptr<OutputFile> Open(const std::string& path, int64_t truncate_to = -1);

  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void Write(std::string_view bytes);
  // Hands buffered bytes to the OS; with `durable`, also fsyncs (files only).
  void Flush(bool durable = false);
  // Bytes in the output so far, including ones kept from a previous run.
  uint64_t Size() const { return size_; }
  const std::string& Path() const { return path_; }

 private:
  OutputFile(std::string path, int fd, bool owns, uint64_t size);
  std::string path_;
  int fd_;
  bool owns_;
  uint64_t size_;
  std::string buf_;
};

}  // namespace vigil::sink
