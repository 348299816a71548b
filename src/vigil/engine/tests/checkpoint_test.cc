#include "vigil/engine/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vigil/engine/dedup.h"

namespace vigil::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string FreshDir(const char* name) {
  const fs::path p = fs::path(::testing::TempDir()) / name;
  fs::remove_all(p);
  return p.string();
}

Manifest Sample(uint64_t seq) {
  Manifest m;
  m.seq = seq;
  m.pipeline = "p \"quoted\".yaml";
  m.pipeline_hash = "00ff";
  m.input = "in.jsonl";
  m.offset = 1234567890123;
  m.line = 77;
  m.decisions_bytes = 10;
  m.dead_letters_bytes = 20;
  m.late_bytes = 30;
  m.decisions_lines = 1;
  m.dead_letters_lines = 2;
  m.late_lines = 3;
  m.shards = 2;
  m.summary.read = 100;
  m.summary.decided = 90;
  m.summary.dead_lettered = 5;
  m.summary.duplicate = 3;
  m.summary.late = 2;
  m.summary.alerts = 4;
  m.summary.by_outcome = {86, 3, 1};
  m.summary.dead_by_reason[1] = 5;
  m.summary.watermark_us = -5;
  m.summary.elapsed_seconds = 1.5;
  return m;
}

TEST(Checkpoint, ManifestRoundTrips) {
  const Manifest m = Sample(7);
  const Manifest r = ParseManifest(ManifestJson(m), "latest.json");
  EXPECT_EQ(r.seq, 7u);
  EXPECT_EQ(r.pipeline, m.pipeline);
  EXPECT_EQ(r.offset, m.offset);
  EXPECT_EQ(r.line, m.line);
  EXPECT_EQ(r.late_bytes, 30u);
  EXPECT_EQ(r.dead_letters_lines, 2u);
  EXPECT_EQ(r.shards, 2);
  EXPECT_EQ(r.summary.read, 100u);
  EXPECT_EQ(r.summary.by_outcome, m.summary.by_outcome);
  EXPECT_EQ(r.summary.dead_by_reason, m.summary.dead_by_reason);
  EXPECT_EQ(r.summary.watermark_us, -5);
  EXPECT_TRUE(r.summary.Reconciles());
  EXPECT_FALSE(r.completed);
}

TEST(Checkpoint, MalformedManifestNamesTheFileAndTheWayOut) {
  try {
    ParseManifest("{\"version\":1,\"seq\":1}", "ckpt/latest.json");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("ckpt/latest.json: missing or mistyped key"));
    EXPECT_THAT(e.what(), HasSubstr("--overwrite"));
  }
  EXPECT_THROW(ParseManifest("not json", "x"), std::runtime_error);
}

TEST(Checkpoint, CommitMakesLatestAndKeepsTwo) {
  const CheckpointStore store(FreshDir("store"));
  EXPECT_FALSE(store.Latest().has_value());
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    std::ofstream(store.Begin(seq) + "/router.bin") << "x";
    if (seq == 4) break;  // checkpoint 4 is begun, not committed
    store.Commit(Sample(seq));
    EXPECT_EQ(store.Latest()->seq, seq);
  }
  EXPECT_FALSE(fs::exists(store.PathOf(1)));
  EXPECT_TRUE(fs::exists(store.PathOf(2)));
  EXPECT_TRUE(fs::exists(store.PathOf(3)));
  EXPECT_TRUE(fs::exists(store.PathOf(4) + "/router.bin")) << "a checkpoint being written is kept";
  store.Clear();
  EXPECT_FALSE(store.Latest().has_value());
  EXPECT_FALSE(fs::exists(store.PathOf(3)));
}

TEST(Checkpoint, DedupRestoresIdsAndTheirExpiry) {
  const std::string path = FreshDir("dedup.bin");
  Deduplicator d(/*horizon_us=*/100, /*max_ids=*/10);
  d.Insert("a", 0);
  d.Insert("b", 50);
  {
    SnapshotWriter out(path, "router", 1);
    d.Save(out);
    out.Finish();
  }
  Deduplicator r(100, 10);
  SnapshotReader in(path, "router", 1);
  r.Load(in);
  EXPECT_TRUE(r.Seen("a"));
  EXPECT_TRUE(r.Seen("b"));
  EXPECT_FALSE(r.Seen("c"));
  r.Insert("c", 120);  // "a" (t=0) leaves the horizon, as it would have in the original
  EXPECT_FALSE(r.Seen("a"));
  EXPECT_TRUE(r.Seen("b"));
}

}  // namespace
}  // namespace vigil::engine
