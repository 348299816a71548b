#include "vigil/sink/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace vigil::sink {

namespace {
constexpr size_t kBuffer = 1 << 20;
}

std::unique_ptr<OutputFile> OutputFile::Open(const std::string& path, int64_t truncate_to) {
  if (path == "-") return std::unique_ptr<OutputFile>(new OutputFile("stdout", 1, false, 0));
  if (path == "stderr") return std::unique_ptr<OutputFile>(new OutputFile("stderr", 2, false, 0));
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (truncate_to < 0 ? O_TRUNC : 0);
  const int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    throw std::runtime_error(fmt::format("{}: cannot open output: {}", path, std::strerror(errno)));
  }
  uint64_t size = 0;
  if (truncate_to >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size < truncate_to) {
      ::close(fd);
      throw std::runtime_error(fmt::format(
          "{}: is {} bytes, shorter than the {} bytes its checkpoint recorded; the output was "
          "changed since the checkpoint, so the run cannot resume into it",
          path, st.st_size, truncate_to));
    }
    if (::ftruncate(fd, truncate_to) != 0 || ::lseek(fd, truncate_to, SEEK_SET) < 0) {
      ::close(fd);
      throw std::runtime_error(fmt::format("{}: cannot truncate: {}", path, std::strerror(errno)));
    }
    size = static_cast<uint64_t>(truncate_to);
  }
  return std::unique_ptr<OutputFile>(new OutputFile(path, fd, true, size));
}

OutputFile::OutputFile(std::string path, int fd, bool owns, uint64_t size)
    : path_(std::move(path)), fd_(fd), owns_(owns), size_(size) {
  buf_.reserve(kBuffer);
}

OutputFile::~OutputFile() {
  try {
    Flush();
  } catch (...) {
    // Destructors must not throw; the error was reported by an earlier Flush if it matters.
  }
  if (owns_) ::close(fd_);
}

void OutputFile::Write(std::string_view bytes) {
  size_ += bytes.size();
  if (buf_.size() + bytes.size() > kBuffer) Flush();
  if (bytes.size() >= kBuffer) {
    buf_.append(bytes);
    Flush();
    return;
  }
  buf_.append(bytes);
}

void OutputFile::Flush(bool durable) {
  size_t done = 0;
  while (done < buf_.size()) {
    const ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(fmt::format("{}: write error: {}", path_, std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  buf_.clear();
  if (durable && owns_ && ::fsync(fd_) != 0) {
    throw std::runtime_error(fmt::format("{}: fsync failed: {}", path_, std::strerror(errno)));
  }
}

}  // namespace vigil::sink
