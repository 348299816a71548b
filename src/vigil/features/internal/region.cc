#include "vigil/features/internal/region.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <new>

namespace vigil::features_internal {
namespace {

size_t PageBytes() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

// The first mapping: small tables (a few merchants) stay small in address space too.
constexpr size_t kFirstMapping = size_t{64} << 10;

}  // namespace

Region::Region(size_t stride) : stride_(stride) {
  assert(stride > 0 && stride % 8 == 0 && "Region: stride must be a positive multiple of 8");
}

Region::~Region() {
  if (data_ != nullptr) munmap(data_, mapped_);
}

uint32_t Region::Add() {
  const size_t need = (size_ + 1) * stride_;
  if (need > mapped_) Grow(need);
  return static_cast<uint32_t>(size_++);
}

size_t Region::ResidentBytes() const { return RoundUp(size_ * stride_, PageBytes()); }

void Region::Grow(size_t need) {
  const size_t want = RoundUp(std::max({need, mapped_ * 2, kFirstMapping}), PageBytes());
  void* p;
  if (data_ == nullptr) {
    p = mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  } else {
    p = mremap(data_, mapped_, want, MREMAP_MAYMOVE);
  }
  if (p == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<std::byte*>(p);
  mapped_ = want;
}

}  // namespace vigil::features_internal
