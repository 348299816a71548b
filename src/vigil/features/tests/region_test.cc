// Unit tests of Region, the growable mapping behind each entity table's blobs and keys.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "vigil/features/internal/region.h"

namespace vigil::features_internal {
namespace {

// Fills record i with bytes derived from i, so any record moved or mixed up on growth shows.
void Fill(std::byte* r, size_t stride, uint32_t i) {
  for (size_t b = 0; b < stride; ++b) r[b] = static_cast<std::byte>((i * 131 + b * 7) & 0xff);
}

bool Holds(const std::byte* r, size_t stride, uint32_t i) {
  for (size_t b = 0; b < stride; ++b) {
    if (r[b] != static_cast<std::byte>((i * 131 + b * 7) & 0xff)) return false;
  }
  return true;
}

TEST(Region, RecordsKeepTheirBytesAcrossGrowth) {
  constexpr size_t kStride = 936;  // the card-fraud example's card blob
  Region r(kStride);
  EXPECT_EQ(r.size(), 0U);
  EXPECT_EQ(r.ResidentBytes(), 0U);
  // 37 MB: the mapping grows (and likely moves) ten times.
  const uint32_t n = 40000;
  std::vector<size_t> mapped;
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_EQ(r.Add(), i);
    Fill(r.At(i), kStride, i);
    if (mapped.empty() || mapped.back() != r.MappedBytes()) mapped.push_back(r.MappedBytes());
  }
  EXPECT_GE(mapped.size(), 8U) << "the mapping grew in steps";
  for (size_t k = 1; k < mapped.size(); ++k) EXPECT_EQ(mapped[k], mapped[k - 1] * 2);
  uint32_t bad = 0;
  for (uint32_t i = 0; i < n; ++i) bad += Holds(r.At(i), kStride, i) ? 0 : 1;
  EXPECT_EQ(bad, 0U);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(r.At(0)) % 8, 0U);
}

TEST(Region, ResidentBytesAreTheRecordsInWholePages) {
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  Region r(24);
  r.Add();
  EXPECT_EQ(r.ResidentBytes(), page);
  EXPECT_GE(r.MappedBytes(), page);
  while (r.size() * 24 <= page) r.Add();
  EXPECT_EQ(r.ResidentBytes(), 2 * page);
  // The address space reserved past the records is not counted, and is not touched: the
  // kernel reports no more resident pages than the records need.
  for (int i = 0; i < 20000; ++i) r.Add();
  ASSERT_GT(r.MappedBytes(), r.ResidentBytes());
  const size_t pages = r.MappedBytes() / page;
  std::vector<unsigned char> in_core(pages);
  ASSERT_EQ(mincore(r.At(0), r.MappedBytes(), in_core.data()), 0);
  size_t resident = 0;
  for (unsigned char c : in_core) resident += c & 1;
  EXPECT_LE(resident * page, r.ResidentBytes());
}

TEST(Region, SmallStrideKeys) {
  Region keys(16);
  for (uint32_t i = 0; i < 100000; ++i) {
    ASSERT_EQ(keys.Add(), i);
    const uint64_t k[2] = {i, ~uint64_t{i}};
    std::memcpy(keys.At(i), k, sizeof k);
  }
  for (uint32_t i = 0; i < 100000; i += 997) {
    uint64_t k[2];
    std::memcpy(k, keys.At(i), sizeof k);
    EXPECT_EQ(k[0], i);
    EXPECT_EQ(k[1], ~uint64_t{i});
  }
}

}  // namespace
}  // namespace vigil::features_internal
