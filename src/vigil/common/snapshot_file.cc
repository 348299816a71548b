#include "vigil/common/snapshot_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace vigil {

namespace {

constexpr size_t kBufferBytes = 1 << 20;
constexpr size_t kHeaderBytes = 16;  // char magic[8] ("VIGIL" + kind, padded), u32 version, u32 0

std::array<char, 8> Magic(std::string_view kind) {
  std::array<char, 8> m{'V', 'G', 0, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < kind.size() && i < 6; ++i) m[2 + i] = kind[i];
  return m;
}

[[noreturn]] void Throw(const std::string& path, std::string_view what) {
  throw std::runtime_error(fmt::format("{}: {}: {}", path, what, std::strerror(errno)));
}

void WriteAll(int fd, const std::string& path, const void* p, size_t n) {
  const auto* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) Throw(path, "cannot write");
    c += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

SnapshotWriter::SnapshotWriter(const std::string& path, std::string_view kind, uint32_t version)
    : path_(path), buf_(kBufferBytes), hash_(XXH3_createState()) {
  if (!hash_) throw std::bad_alloc();
  XXH3_64bits_reset(hash_);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    XXH3_freeState(hash_);
    Throw(path, "cannot create");
  }
  Start(kind, version);
}

SnapshotWriter::SnapshotWriter(std::string* sink, std::string_view kind, uint32_t version)
    : path_("snapshot"), sink_(sink), hash_(XXH3_createState()) {
  if (!hash_) throw std::bad_alloc();
  XXH3_64bits_reset(hash_);
  sink_->clear();
  Start(kind, version);
}

SnapshotWriter::SnapshotWriter(std::vector<std::string_view>* pieces, std::string_view kind,
                               uint32_t version)
    : path_("snapshot"), pieces_(pieces), hash_(XXH3_createState()) {
  if (!hash_) throw std::bad_alloc();
  XXH3_64bits_reset(hash_);
  pieces_->clear();
  Start(kind, version);
}

void SnapshotWriter::Start(std::string_view kind, uint32_t version) {
  const auto magic = Magic(kind);
  Bytes(magic.data(), magic.size());
  Put<uint32_t>(version);
  Put<uint32_t>(0);
}

SnapshotWriter::~SnapshotWriter() {
  if (fd_ >= 0) ::close(fd_);
  XXH3_freeState(hash_);
}

void SnapshotWriter::Bytes(const void* p, size_t n) {
  XXH3_64bits_update(hash_, p, n);
  written_ += n;
  if (sink_) {
    sink_->append(static_cast<const char*>(p), n);
    return;
  }
  if (pieces_) {
    Gather(p, n);
    return;
  }
  const auto* c = static_cast<const std::byte*>(p);
  if (n >= buf_.size()) {
    Drain();
    WriteAll(fd_, path_, c, n);
    return;
  }
  if (used_ + n > buf_.size()) Drain();
  std::memcpy(buf_.data() + used_, c, n);
  used_ += n;
}

void SnapshotWriter::Gather(const void* p, size_t n) {
  if (gathered_pieces_.empty() || gathered_pieces_.back().view != nullptr) {
    gathered_pieces_.push_back({nullptr, gathered_.size(), 0});
  }
  gathered_.append(static_cast<const char*>(p), n);
  gathered_pieces_.back().n += n;
}

void SnapshotWriter::View(std::string_view s) {
  if (!pieces_) {
    Bytes(s.data(), s.size());
    return;
  }
  XXH3_64bits_update(hash_, s.data(), s.size());
  written_ += s.size();
  if (!s.empty()) gathered_pieces_.push_back({s.data(), 0, s.size()});
}

void SnapshotWriter::Drain() {
  WriteAll(fd_, path_, buf_.data(), used_);
  used_ = 0;
}

void SnapshotWriter::Finish() {
  assert(!finished_ && "SnapshotWriter::Finish called twice");
  finished_ = true;
  const uint64_t sum = XXH3_64bits_digest(hash_);
  if (sink_) {
    sink_->append(reinterpret_cast<const char*>(&sum), sizeof sum);
    return;
  }
  if (pieces_) {
    Gather(&sum, sizeof sum);
    for (const Piece& p : gathered_pieces_) {
      pieces_->emplace_back(p.view ? p.view : gathered_.data() + p.at, p.n);
    }
    return;
  }
  Drain();
  WriteAll(fd_, path_, &sum, sizeof sum);
  if (::fsync(fd_) != 0) Throw(path_, "cannot fsync");
  if (::close(fd_) != 0) Throw(path_, "cannot close");
  fd_ = -1;
}

SnapshotReader::SnapshotReader(const std::string& path, std::string_view kind, uint32_t version)
    : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Throw(path, "cannot open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    Throw(path, "cannot stat");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      Throw(path, "cannot map");
    }
    ::madvise(p, size_, MADV_SEQUENTIAL);
    data_ = static_cast<const std::byte*>(p);
    mapped_ = true;
  }
  ::close(fd);
  try {
    Check(kind, version);
  } catch (...) {
    if (mapped_) ::munmap(const_cast<std::byte*>(data_), size_);
    throw;
  }
}

SnapshotReader::SnapshotReader(std::string_view bytes, std::string name, std::string_view kind,
                               uint32_t version)
    : path_(std::move(name)),
      data_(reinterpret_cast<const std::byte*>(bytes.data())),
      size_(bytes.size()) {
  Check(kind, version);
}

void SnapshotReader::Check(std::string_view kind, uint32_t version) {
  if (size_ < kHeaderBytes + sizeof(uint64_t)) Fail("truncated checkpoint file");
  end_ = size_ - sizeof(uint64_t);
  uint64_t sum;
  std::memcpy(&sum, data_ + end_, sizeof sum);
  if (XXH3_64bits(data_, end_) != sum) Fail("checksum mismatch: the checkpoint file is damaged");
  const auto magic = Magic(kind);
  if (std::memcmp(data_, magic.data(), magic.size()) != 0) {
    Fail(fmt::format("not a '{}' checkpoint file", kind));
  }
  pos_ = magic.size();
  const auto v = Get<uint32_t>();
  if (v != version) {
    Fail(fmt::format("checkpoint format version {} (this vigil reads {})", v, version));
  }
  Get<uint32_t>();
}

SnapshotReader::~SnapshotReader() {
  if (mapped_) ::munmap(const_cast<std::byte*>(data_), size_);
}

std::span<const std::byte> SnapshotReader::Take(size_t n) {
  if (n > end_ - pos_) Fail("truncated checkpoint file");
  const std::span<const std::byte> s(data_ + pos_, n);
  pos_ += n;
  return s;
}

void SnapshotReader::Fail(std::string_view what) const {
  throw std::runtime_error(fmt::format("{}: {}", path_, what));
}

void SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) Throw(dir, "cannot open directory");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) Throw(dir, "cannot fsync directory");
}

void WriteFileAtomically(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Throw(tmp, "cannot create");
  try {
    WriteAll(fd, tmp, text.data(), text.size());
    if (::fsync(fd) != 0) Throw(tmp, "cannot fsync");
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) Throw(path, "cannot rename into place");
  const auto parent = std::filesystem::path(path).parent_path();
  SyncDirectory(parent.empty() ? "." : parent.string());
}

}  // namespace vigil
