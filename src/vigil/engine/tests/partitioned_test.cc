// The engine over a partitioned source without a broker: per-partition state snapshots, a
// restore from one, and a released partition's state being freed.
#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "vigil/engine/engine.h"
#include "vigil/engine/tests/test_pipeline.h"
#include "vigil/features/spec.h"
#include "vigil/source/record_source.h"

namespace vigil::engine {
namespace {

// Records of several partitions (each with its own offsets), returned a few at a time, under
// one salt per partition; records before `replay_until` of a partition are marked replay.
class PartitionedSource final : public source::RecordSource {
 public:
  struct Line {
    int32_t slot;
    std::string text;
  };
  PartitionedSource(std::vector<Line> lines, size_t per_next) : per_next_(per_next) {
    for (auto& l : lines) {
      texts_.push_back(l.text + std::string(source::kRecordPadding, '\0'));
      slots_.push_back(l.slot);
      offsets_.push_back(next_offset_[l.slot]++);
    }
  }
  // Partition `slot` starts from offset `from` (earlier records are skipped), its records
  // before `replay_until` only rebuild state, and its state is restored from `snapshot`
  // (none if empty).
  void Restore(int32_t slot, int64_t from, int64_t replay_until, std::string snapshot) {
    from_[slot] = from;
    replay_until_[slot] = replay_until;
    if (!snapshot.empty()) {
      restored_[slot] = std::make_shared<const std::string>(std::move(snapshot));
    }
  }
  // After `after` records were returned, partition `slot` is released (a rebalance).
  void ReleaseAfter(size_t after, int32_t slot) { release_at_ = {after, slot}; }

  bool Next(std::vector<source::Record>& out, size_t max) override {
    out.clear();
    while (out.size() < std::min(max, per_next_) && i_ < texts_.size()) {
      const size_t i = i_++;
      const int32_t slot = slots_[i];
      if (offsets_[i] < from_[slot] || gone_.count(slot)) continue;
      source::Record r;
      r.text = std::string_view(texts_[i].data(), texts_[i].size() - source::kRecordPadding);
      r.offset = static_cast<uint64_t>(offsets_[i]);
      r.line = r.offset;
      r.partition = slot;
      r.salt = 100 + static_cast<uint64_t>(slot);
      r.replay = offsets_[i] < replay_until_[slot];
      next_[slot] = offsets_[i] + 1;
      out.push_back(r);
      if (i_ == release_at_.first) {
        released_.push_back(release_at_.second);
        gone_.insert(release_at_.second);
        next_.erase(release_at_.second);
        break;
      }
    }
    return !out.empty();
  }
  uint64_t Position() const override { return 0; }
  uint64_t LinesRead() const override { return i_; }
  const std::string& Name() const override { return name_; }
  void Positions(std::vector<source::PartitionPosition>& out) const override {
    out.clear();
    for (const auto& [slot, next] : next_) {
      if (next > replay_until_.at(slot)) out.push_back({0, slot, next, slot});
    }
  }
  std::shared_ptr<const std::string> RestoredState(int32_t slot) override {
    return std::exchange(restored_[slot], nullptr);
  }
  void TakeReleased(std::vector<int32_t>& slots) override {
    slots.clear();
    slots.swap(released_);
  }

 private:
  size_t per_next_;
  std::vector<std::string> texts_;
  std::vector<int32_t> slots_;
  std::vector<int64_t> offsets_;
  std::map<int32_t, int64_t> next_offset_, from_, replay_until_, next_;
  std::map<int32_t, std::shared_ptr<const std::string>> restored_;
  std::pair<size_t, int32_t> release_at_{SIZE_MAX, -1};
  std::vector<int32_t> released_;
  std::set<int32_t> gone_;
  size_t i_ = 0;
  std::string name_ = "parts";
};

// Keeps what the engine sends: decision lines by event id, and every snapshot.
class Captured final : public TransactionalOutputs {
 public:
  void Send(Stream stream, std::string_view, std::string_view line) override {
    if (stream == Stream::kDecisions) decisions.emplace_back(line);
  }
  bool Commit(const std::vector<source::PartitionPosition>&) override { return true; }
  void SendSnapshot(const source::PartitionPosition& at,
                    std::span<const std::string_view> pieces) override {
    std::string bytes;
    for (const std::string_view p : pieces) bytes += p;
    snapshots.push_back({at, std::move(bytes)});
    decisions_before_snapshot.push_back(decisions.size());
  }
  void Abort() override {}
  double LastCommitMs() const override { return 0; }
  uint64_t Commits() const override { return 0; }
  uint64_t Aborts() const override { return 0; }

  std::vector<std::string> decisions;
  std::vector<std::pair<source::PartitionPosition, std::string>> snapshots;
  std::vector<size_t> decisions_before_snapshot;  // decisions sent before each snapshot
};

config::Pipeline Pipeline() {
  return TestPipeline(R"(entities:
  card: {field: card, ttl: 30d}
features:
  - {name: n_1h, entity: card, op: count, window: 1h, step: 5m}
  - {name: sum_1h, entity: card, op: sum, of: amount, window: 1h, step: 5m}
  - {name: ewma, entity: card, op: ewma, of: amount, half_life: 1d}
)");
}

// Event i of partition `slot`: cards c<slot>-0..3, a minute apart.
PartitionedSource::Line Tx(int32_t slot, int i) {
  std::ostringstream s;
  s << R"({"id":"p)" << slot << "-" << i << R"(","ts":"2026-01-01T)" << (10 + i / 60) << ":"
    << (i % 60 < 10 ? "0" : "") << i % 60 << R"(:00Z","card":"c)" << slot << "-" << i % 4
    << R"(","amount":)" << (i % 7) + 1 << "}";
  return {slot, s.str()};
}

std::vector<PartitionedSource::Line> TwoPartitions(int per_partition) {
  std::vector<PartitionedSource::Line> lines;
  for (int i = 0; i < per_partition; ++i) {
    lines.push_back(Tx(0, i));
    lines.push_back(Tx(1, i));
  }
  return lines;
}

struct Result {
  sink::RunSummary summary;
  Captured out;
};

Result RunParts(PartitionedSource& src, int64_t snapshot_every_us, int workers = 2) {
  const config::Pipeline p = Pipeline();
  const features::Spec spec = features::ParseSpec(p);
  RunOptions o;
  o.workers = workers;
  o.features = &spec;
  o.emit_features = true;
  o.include_event = false;
  o.snapshot_interval_us = snapshot_every_us;
  PassThroughStages stages;
  Engine engine(p, &stages, o);
  Result r;
  Outputs outs;
  outs.transactional = &r.out;
  r.summary = engine.Run(src, outs);
  return r;
}

// The decision line of each event of partition `slot` from offset `from` on, without its
// "record" (a process's own count).
std::vector<std::string> DecisionsOf(const Captured& c, int32_t slot, int from) {
  std::vector<std::string> out;
  for (std::string d : c.decisions) {
    const std::string id = "\"p" + std::to_string(slot) + "-";
    const size_t at = d.find(id);
    if (at == std::string::npos || std::stoi(d.substr(at + id.size())) < from) continue;
    const size_t rec = d.find(",\"record\":");
    d.erase(rec, d.find(',', rec + 1) - rec);
    out.push_back(d);
  }
  return out;
}

TEST(PartitionedEngine, ARestoreFromASnapshotDecidesAsAnUninterruptedRun) {
  PartitionedSource whole(TwoPartitions(200), 16);
  const Result a = RunParts(whole, 1);  // a snapshot after every batch
  ASSERT_FALSE(a.out.snapshots.empty());
  EXPECT_EQ(a.summary.stream.snapshots, a.out.snapshots.size());
  // A snapshot of partition 0 from the middle of the run.
  const auto it = std::find_if(a.out.snapshots.begin(), a.out.snapshots.end(), [](const auto& s) {
    return s.first.slot == 0 && s.first.next_offset >= 90;
  });
  ASSERT_NE(it, a.out.snapshots.end());
  const int64_t at = it->first.next_offset;

  // Another process gets partition 0 (under another slot would work the same): its state
  // from the snapshot, records from the snapshot's offset, decisions from offset 150 on.
  std::vector<PartitionedSource::Line> only0;
  for (auto& l : TwoPartitions(200)) {
    if (l.slot == 0) only0.push_back(l);
  }
  PartitionedSource resumed(only0, 16);
  resumed.Restore(0, at, 150, it->second);
  const Result b = RunParts(resumed, 0, 1);  // one worker: the snapshot came from two
  EXPECT_EQ(b.summary.stream.replayed, static_cast<uint64_t>(150 - at));
  const std::vector<std::string> want = DecisionsOf(a.out, 0, 150);
  ASSERT_EQ(want.size(), 50u);
  EXPECT_EQ(DecisionsOf(b.out, 0, 150), want);

  // Without the snapshot the same replay starts from empty state: features differ.
  PartitionedSource cold(only0, 16);
  cold.Restore(0, at, 150, "");
  EXPECT_NE(DecisionsOf(RunParts(cold, 0, 1).out, 0, 150), want);

  // A damaged snapshot stops the run rather than deciding on half a state.
  PartitionedSource damaged(only0, 16);
  std::string bytes = it->second;
  bytes[bytes.size() / 2] ^= 1;
  damaged.Restore(0, at, 150, bytes);
  try {
    RunParts(damaged, 0, 1);
    FAIL() << "a damaged snapshot was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
}

TEST(PartitionedEngine, AReleasedPartitionsEntitiesAreFreed) {
  PartitionedSource kept(TwoPartitions(100), 16);
  const Result all = RunParts(kept, 0);
  EXPECT_EQ(all.summary.state_entities, 8u);  // 4 cards in each partition

  PartitionedSource moved(TwoPartitions(100), 16);
  moved.ReleaseAfter(64, 1);  // partition 1 moves away; partition 0 goes on
  const Result r = RunParts(moved, 0);
  EXPECT_EQ(r.summary.state_entities, 4u);
  ASSERT_EQ(r.summary.state_by_entity.size(), 1u);
  EXPECT_EQ(r.summary.state_by_entity[0].name, "card");
  EXPECT_EQ(r.summary.state_by_entity[0].entities, 4u);
  EXPECT_EQ(r.summary.state_by_entity[0].bytes, r.summary.state_bytes);
  EXPECT_EQ(DecisionsOf(r.out, 0, 0), DecisionsOf(all.out, 0, 0));
}

// Snapshots take turns: one partition at a time, the one snapshotted longest ago, so a turn
// holds one partition's state (the workers pause for that, not for all of it) and every
// partition still gets its snapshots.
TEST(PartitionedEngine, PartitionsTakeTurnsToBeSnapshotted) {
  PartitionedSource src(TwoPartitions(400), 16);
  const Result r = RunParts(src, 1);  // a turn after every batch
  ASSERT_GE(r.out.snapshots.size(), 10u);
  size_t of_slot[2] = {0, 0};
  for (size_t i = 0; i < r.out.snapshots.size(); ++i) {
    const int32_t slot = r.out.snapshots[i].first.slot;
    ASSERT_TRUE(slot == 0 || slot == 1);
    ++of_slot[slot];
    if (i > 0) {
      EXPECT_NE(slot, r.out.snapshots[i - 1].first.slot) << "snapshot " << i;
      // Another batch's decisions came between two turns: one snapshot per batch.
      EXPECT_GT(r.out.decisions_before_snapshot[i], r.out.decisions_before_snapshot[i - 1])
          << "snapshot " << i;
    }
  }
  EXPECT_LE(std::max(of_slot[0], of_slot[1]) - std::min(of_slot[0], of_slot[1]), 1u);
  // The summary says how long the turns held decisions up and took to send.
  EXPECT_EQ(r.summary.stream.snapshots, r.out.snapshots.size());
  uint64_t bytes = 0;
  for (const auto& [at, snapshot] : r.out.snapshots) bytes += snapshot.size();
  EXPECT_EQ(r.summary.stream.snapshot_bytes, bytes);
  EXPECT_GT(r.summary.stream.snapshot_pause_seconds, 0.0);
  EXPECT_GT(r.summary.stream.snapshot_send_seconds, 0.0);
}

// A partition whose first records after a restore are only dead-lettered is still this
// assignment's partition: a snapshot taken then carries the restored state (not the empty or
// an older state under the new offset), so a restore from it decides as the run did.
TEST(PartitionedEngine, ASnapshotAfterBadRecordsCarriesTheRestoredState) {
  PartitionedSource whole(TwoPartitions(200), 16);
  const Result a = RunParts(whole, 1);
  const auto it = std::find_if(a.out.snapshots.begin(), a.out.snapshots.end(), [](const auto& s) {
    return s.first.slot == 0 && s.first.next_offset >= 60 && s.first.next_offset < 90;
  });
  ASSERT_NE(it, a.out.snapshots.end());
  const int64_t at = it->first.next_offset;
  // Partition 0 alone from that snapshot, its records [at, 140) undecodable.
  std::vector<PartitionedSource::Line> damaged;
  for (const auto& l : TwoPartitions(200)) {
    if (l.slot != 0) continue;
    const int64_t offset = static_cast<int64_t>(damaged.size());
    damaged.push_back(offset >= at && offset < 140 ? PartitionedSource::Line{0, "not json"} : l);
  }
  PartitionedSource b_src(damaged, 16);
  b_src.Restore(0, at, at, it->second);
  const Result b = RunParts(b_src, 1, 1);
  EXPECT_EQ(b.summary.dead_lettered, static_cast<uint64_t>(140 - at));
  const std::vector<std::string> want = DecisionsOf(b.out, 0, 150);
  ASSERT_EQ(want.size(), 50u);
  // Every snapshot b took before offset 150 restores to b's own decisions.
  size_t checked = 0;
  for (const auto& [pos, bytes] : b.out.snapshots) {
    if (pos.next_offset > 150) continue;
    PartitionedSource c_src(damaged, 16);
    c_src.Restore(0, pos.next_offset, 150, bytes);
    EXPECT_EQ(DecisionsOf(RunParts(c_src, 0, 1).out, 0, 150), want)
        << "the snapshot at offset " << pos.next_offset;
    ++checked;
  }
  EXPECT_GE(checked, 3u);
}

// A partition with nothing new since its last snapshot is not snapshotted again.
TEST(PartitionedEngine, AnIdlePartitionIsNotSnapshottedAgain) {
  std::vector<PartitionedSource::Line> lines;
  for (int i = 0; i < 10; ++i) lines.push_back(Tx(1, i));  // partition 1: 10 records, then quiet
  for (int i = 0; i < 400; ++i) lines.push_back(Tx(0, i));
  PartitionedSource src(lines, 16);
  const Result r = RunParts(src, 1);
  size_t of_1 = 0, of_0 = 0;
  for (const auto& [pos, bytes] : r.out.snapshots) {
    if (pos.slot == 1) {
      ++of_1;
      EXPECT_EQ(pos.next_offset, 10);
    } else {
      ++of_0;
    }
  }
  EXPECT_EQ(of_1, 1u);
  EXPECT_GE(of_0, 10u);
}

}  // namespace
}  // namespace vigil::engine
