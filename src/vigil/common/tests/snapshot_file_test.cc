#include "vigil/common/snapshot_file.h"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vigil {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const char* name) { return std::string(::testing::TempDir()) + "/" + name; }

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

void WriteSample(const std::string& path) {
  SnapshotWriter out(path, "test", 3);
  out.Put<uint64_t>(42);
  out.Put<int64_t>(-7);
  out.String("hello");
  const std::string big(3 << 20, 'x');  // larger than the writer's buffer
  out.String(big);
  out.Finish();
}

std::string ErrorOf(const std::string& path, const char* kind = "test", uint32_t version = 3) {
  try {
    SnapshotReader in(path, kind, version);
    in.Get<uint64_t>();
    in.Get<int64_t>();
    in.String();
    in.String();
    in.Get<uint64_t>();  // one read too many
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(SnapshotFile, RoundTrips) {
  const std::string path = TempPath("round.bin");
  WriteSample(path);
  SnapshotReader in(path, "test", 3);
  EXPECT_EQ(in.Get<uint64_t>(), 42u);
  EXPECT_EQ(in.Get<int64_t>(), -7);
  EXPECT_EQ(in.String(), "hello");
  EXPECT_EQ(in.String(), std::string(3 << 20, 'x'));
  EXPECT_TRUE(in.AtEnd());
  std::remove(path.c_str());
}

// A snapshot gathered in pieces is the one a memory sink holds, byte for byte, and refers to
// the blocks it was given instead of copying them.
TEST(SnapshotFile, AGatheredSnapshotIsTheSameBytesWithoutCopyingItsBlocks) {
  const std::string big(3 << 20, 'x'), empty, small = "hello";
  const auto write = [&](SnapshotWriter& out) {
    out.Put<uint64_t>(42);
    out.StringView(small);
    out.StringView(empty);
    out.Put<uint32_t>(7);
    out.StringView(big);
    out.StringView(small);
    out.Finish();
  };
  std::string whole;
  SnapshotWriter to_memory(&whole, "test", 3);
  write(to_memory);
  std::vector<std::string_view> pieces = {"left over from before"};
  SnapshotWriter gathered(&pieces, "test", 3);
  write(gathered);
  std::string joined;
  size_t refers_to_big = 0;
  for (const std::string_view p : pieces) {
    joined += p;
    refers_to_big += p.data() == big.data() && p.size() == big.size();
  }
  EXPECT_EQ(joined, whole);
  EXPECT_EQ(refers_to_big, 1u);
  SnapshotReader in(std::string_view(joined), "gathered", "test", 3);
  EXPECT_EQ(in.Get<uint64_t>(), 42u);
  EXPECT_EQ(in.String(), "hello");
  EXPECT_EQ(in.String(), "");
  EXPECT_EQ(in.Get<uint32_t>(), 7u);
  EXPECT_EQ(in.String(), big);
  EXPECT_EQ(in.String(), "hello");
  EXPECT_TRUE(in.AtEnd());
}

TEST(SnapshotFile, RefusesDamagedTruncatedForeignAndOldFiles) {
  const std::string path = TempPath("damaged.bin");
  WriteSample(path);
  const std::string good = Slurp(path);

  EXPECT_THAT(ErrorOf(path), HasSubstr("truncated checkpoint file"));  // read past the end

  std::string flipped = good;
  flipped[100] ^= 1;
  Spit(path, flipped);
  EXPECT_THAT(ErrorOf(path), HasSubstr("checksum mismatch"));
  EXPECT_THAT(ErrorOf(path), HasSubstr(path));

  Spit(path, good.substr(0, good.size() / 2));
  EXPECT_THAT(ErrorOf(path), HasSubstr("checksum mismatch"));
  Spit(path, good.substr(0, 10));
  EXPECT_THAT(ErrorOf(path), HasSubstr("truncated"));

  Spit(path, good);
  EXPECT_THAT(ErrorOf(path, "other"), HasSubstr("not a 'other' checkpoint file"));
  EXPECT_THAT(ErrorOf(path, "test", 4), HasSubstr("format version 3 (this vigil reads 4)"));
  EXPECT_THAT(ErrorOf(TempPath("missing.bin")), HasSubstr("cannot open"));
  std::remove(path.c_str());
}

TEST(SnapshotFile, AtomicWriteReplacesWholeFile) {
  const std::string path = TempPath("atomic.json");
  WriteFileAtomically(path, "first version, longer");
  WriteFileAtomically(path, "second");
  EXPECT_EQ(Slurp(path), "second");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace vigil
