#include "vigil/engine/dedup.h"

#include <gtest/gtest.h>

namespace vigil::engine {
namespace {

constexpr int64_t kSec = 1000000;

TEST(Deduplicator, RemembersIdsWithinTheHorizon) {
  Deduplicator d(60 * kSec, 1000);
  EXPECT_FALSE(d.Seen("a"));
  d.Insert("a", 0);
  EXPECT_TRUE(d.Seen("a"));
  d.Insert("b", 59 * kSec);
  EXPECT_TRUE(d.Seen("a"));  // 59 s later: still inside the 60 s horizon
  d.Insert("c", 61 * kSec);
  EXPECT_FALSE(d.Seen("a"));  // now older than newest - horizon: forgotten
  EXPECT_TRUE(d.Seen("b"));
  EXPECT_EQ(d.Size(), 2u);
}

TEST(Deduplicator, BoundedByMaxIds) {
  Deduplicator d(1000 * kSec, 3);
  for (const char* id : {"a", "b", "c", "d"}) d.Insert(id, 0);
  EXPECT_EQ(d.Size(), 3u);
  EXPECT_FALSE(d.Seen("a"));  // the oldest went first
  EXPECT_TRUE(d.Seen("d"));
}

}  // namespace
}  // namespace vigil::engine
