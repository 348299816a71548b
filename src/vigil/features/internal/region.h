#pragma once

#include <cstddef>
#include <cstdint>

namespace vigil::features_internal {

// Fixed-size records (an entity table's state blobs, or its keys) in one contiguous anonymous
// mapping that grows by mremap(2): growing moves page-table entries, never the bytes, so a
// table of gigabytes grows without a stall proportional to its size and without a moment
// holding two copies (a std::vector copies everything on each doubling). The mapping doubles
// as address space; only the pages the records occupy are ever touched, so ResidentBytes()
// (the records rounded up to whole pages) is what the region costs in resident memory. (Under
// vm.overcommit_memory=2 the whole mapping counts against the commit limit, as a vector's
// capacity would.)
//
// The region does not ask for transparent huge pages: measured with 2M cards, they made a
// random card's update ~7% faster but creating a card 2.4x slower (each 2 MiB fault compacts
// memory); where THP is `always`, the kernel uses them anyway (bench/RESULTS.md).
//
// Records are `stride` bytes each, stride a multiple of 8, and 8-byte aligned. Add() may move
// data(); pointers into the region are valid until the next Add(). Not thread-safe: one
// thread owns a region. Out of memory throws std::bad_alloc, as a vector's growth would.
class Region {
 public:
  explicit Region(size_t stride);
  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  // Appends one record (its bytes undefined) and returns its index.
  uint32_t Add();

  std::byte* At(uint32_t i) { return data_ + size_t{i} * stride_; }
  const std::byte* At(uint32_t i) const { return data_ + size_t{i} * stride_; }
  size_t size() const { return size_; }
  size_t stride() const { return stride_; }
  // Bytes of memory the records occupy: size() * stride() rounded up to whole pages.
  size_t ResidentBytes() const;
  // Bytes of address space mapped (capacity; untouched pages cost no memory).
  size_t MappedBytes() const { return mapped_; }

 private:
  void Grow(size_t need);

  std::byte* data_ = nullptr;
  size_t stride_;
  size_t size_ = 0;
  size_t mapped_ = 0;
};

}  // namespace vigil::features_internal
