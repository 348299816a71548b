#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "vigil/engine/engine.h"
#include "vigil/kafka/kafka_config.h"
#include "vigil/source/record_source.h"

// librdkafka's handles, kept out of the rest of the code base.
struct rd_kafka_s;
struct rd_kafka_topic_s;
struct rd_kafka_topic_partition_list_s;

namespace vigil::kafka {

struct Callbacks;
namespace internal {
class Pacer;
}

// KafkaSource reads events from the configured topics as a member of the consumer group.
//
// State follows the partitions. A partition's state (its entities, dedup ids and event clock)
// belongs to a salt that changes whenever the partition is (re)assigned or rewound, and is
// restored then: from the partition's latest snapshot on the state topic (state_topic.h), if
// there is one, else empty; the partition is read from the snapshot's offset (or its
// beginning), records before the group's committed offset are marked `replay` (they rebuild
// state; their decisions were committed before) and decisions resume at the committed
// offset. So after a crash, a restart or a rebalance every partition's features equal an
// uninterrupted run's, and nothing committed is decided twice.
//
// A rebalance keeps what it can. Before a rebalance revokes the partitions (one the group
// asked for, not a lost assignment), the engine decides and commits every record read so far
// (OnDrain); a partition assigned back whose committed offset is still the one its state is
// at keeps its salt and state and resumes there, with no snapshot read and nothing replayed.
// Only the partitions that moved are restored. When the commit fails, every partition is
// restored as above.
//
// Records read with isolation.level=read_committed when exactly once is on. One thread (the
// engine's router) calls Next; Stats is thread-safe.
class KafkaSource final : public source::RecordSource {
 public:
  // Connects and subscribes; partitions arrive with the first Next. `idle_exit_us` > 0: Next
  // reports the end of input once no record has arrived for that long after the restore
  // (tests and benchmarks); 0: runs until `stop`. Throws std::invalid_argument for a bad
  // librdkafka setting, naming it.
  KafkaSource(const KafkaConfig& config, const std::atomic<bool>* stop, int64_t idle_exit_us);
  ~KafkaSource() override;
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  bool Next(std::vector<source::Record>& out, size_t max) override;
  uint64_t Position() const override { return 0; }
  uint64_t LinesRead() const override { return read_; }
  const std::string& Name() const override { return name_; }
  void Positions(std::vector<source::PartitionPosition>& out) const override;
  void OnRewind(std::function<void()> handler) override { on_rewind_ = std::move(handler); }
  void OnDrain(std::function<bool()> handler) override { on_drain_ = std::move(handler); }
  void StopWhen(std::function<bool()> stopping) override { stopping_ = std::move(stopping); }
  std::shared_ptr<const std::string> RestoredState(int32_t slot) override;
  void TakeReleased(std::vector<int32_t>& slots) override;
  void Rewind() override;
  const std::string& NameOf(const source::Record& r) const override;
  source::SourceStats Stats() const override;

  const std::vector<std::string>& Topics() const { return config_.topics; }
  // For the producer's transactions (thread-safe in librdkafka).
  rd_kafka_s* Consumer() const { return rk_; }
  // The state topic's partition count (0: snapshots are off).
  int StatePartitions() const { return state_partitions_; }
  // Leaves the group (partitions go to the other members at once).
  void Close();

 private:
  struct Partition {
    uint32_t topic = 0;
    int32_t partition = 0;
    std::string name;  // "topic/partition" for dead letters
    bool assigned = false;
    uint64_t salt = 0;
    int64_t replay_until = 0;  // records before this offset only rebuild state
    bool replaying = false;    // reading from before replay_until (a restore in progress)
    int64_t next = -1;         // offset after the last record returned; -1: none yet
    int64_t dispatched = -1;   // `next` as of the records the engine has (at Next's start)
    int64_t kept_at = -1;      // after a drained revoke: the offset its state is at; -1: none
    std::shared_ptr<const std::string> restored;  // the snapshot the state starts from
  };
  friend struct Callbacks;
  void Assign(rd_kafka_topic_partition_list_s* parts);
  void Revoke();
  size_t SlotOf(const char* topic, int32_t partition);
  void UpdateStats();

  KafkaConfig config_;
  const std::atomic<bool>* stop_;
  int64_t idle_exit_us_;
  rd_kafka_s* rk_ = nullptr;
  std::string name_;
  std::vector<Partition> slots_;
  std::function<void()> on_rewind_;
  std::function<bool()> on_drain_;
  std::function<bool()> stopping_;
  bool rewound_ = false;  // set by the rebalance callback during a poll
  std::string buffer_;    // this batch's payloads, each followed by padding
  uint64_t read_ = 0;
  uint64_t salt_counter_ = 0;
  std::chrono::steady_clock::time_point last_record_;
  std::chrono::steady_clock::time_point last_stats_;
  std::chrono::steady_clock::time_point restore_start_;
  bool restoring_ = false;
  bool closed_ = false;

  std::atomic<int64_t> lag_{-1};
  std::atomic<int> partitions_{0};
  std::atomic<uint64_t> rebalances_{0};
  std::atomic<uint64_t> replayed_{0};
  std::atomic<double> restore_seconds_{0};
  std::atomic<uint64_t> restored_{0};
  std::atomic<uint64_t> kept_{0};
  int state_partitions_ = 0;
  std::vector<int32_t> released_;  // slots unassigned by rebalances, for TakeReleased
};

// KafkaOutputs writes decisions, alerts, dead letters and late events to topics. With exactly
// once, a transactional producer (transactional.id GROUP-INSTANCE) sends them and commits the
// consumed offsets in the same transaction, so consumers reading with read_committed see each
// input event's decision once, across crashes. Without, an idempotent producer flushes and
// the consumer commits the offsets after (at least once).
//
// With exactly once, a commit runs on a thread of its own so the engine's writer keeps going:
// Commit hands the transaction over and returns; what is sent while it commits is held here
// (a transaction cannot begin before the last one has committed) and goes into the next
// transaction. At most one commit is in flight: the next Commit, Abort or Settle waits for it,
// and a commit that had to be aborted is reported by the next Commit (or Settle) returning
// false, with everything sent after it dropped. The engine's writer thread calls every method
// but the metrics, which are thread-safe.
class KafkaOutputs final : public engine::TransactionalOutputs {
 public:
  KafkaOutputs(const KafkaConfig& config, const KafkaSource& source);
  ~KafkaOutputs() override;
  KafkaOutputs(const KafkaOutputs&) = delete;
  KafkaOutputs& operator=(const KafkaOutputs&) = delete;

  void Send(Stream stream, std::string_view key, std::string_view line) override;
  void SendSnapshot(const source::PartitionPosition& at,
                    std::span<const std::string_view> pieces) override;
  bool Commit(const std::vector<source::PartitionPosition>& positions) override;
  void Abort() override;
  bool Settle() override;
  double LastCommitMs() const override { return last_commit_ms_.load(); }
  uint64_t Commits() const override { return commits_.load(); }
  uint64_t Aborts() const override { return aborts_.load(); }

 private:
  friend struct Callbacks;
  // A message sent while a commit was in flight: its topic and partition, and its key then its line
  // at `at` in held_bytes_.
  struct Held {
    rd_kafka_topic_s* topic;
    int32_t partition;
    size_t at;
    uint32_t key_len;
    uint32_t line_len;
  };
  void Begin();
  // Sends a message, or holds it while a commit is in flight (exactly once).
  void Enqueue(rd_kafka_topic_s* t, int32_t partition, std::string_view key, std::string_view line);
  void Produce(rd_kafka_topic_s* t, int32_t partition, std::string_view key, std::string_view line);
  void SendHeld();
  bool HandOverAll();
  // Waits until no commit is in flight; rethrows a fatal error of the last one. Returns
  // whether the last one committed (false once: the caller handles the abort).
  bool AwaitCommit(std::unique_lock<std::mutex>& lock);
  bool CommitNow(const std::vector<source::PartitionPosition>& positions);
  void CommitLoop();
  void AbortTxn();

  KafkaConfig config_;
  const KafkaSource& source_;
  rd_kafka_s* rk_ = nullptr;
  std::vector<rd_kafka_topic_s*> topics_;    // by Stream; null: not written
  rd_kafka_topic_s* state_topic_ = nullptr;  // null: snapshots are off
  uint64_t snapshot_counter_ = 0;
  bool in_txn_ = false;
  bool failed_ = false;  // the open transaction failed: nothing more is sent until Abort
  std::unique_ptr<internal::Pacer> pacer_;

  // The commit thread (exactly once only) and what it shares with the writer, under mu_.
  std::mutex mu_;
  std::condition_variable changed_;
  std::thread committer_;
  bool in_flight_ = false;  // a commit of `commit_positions_` runs on committer_
  bool stopping_ = false;
  bool last_ok_ = true;  // the last commit committed (false: it was aborted)
  std::exception_ptr commit_error_;
  std::vector<source::PartitionPosition> commit_positions_;
  std::vector<Held> held_;  // sent while a commit was in flight, in order
  std::string held_bytes_;

  std::atomic<double> last_commit_ms_{0};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> aborts_{0};
};

}  // namespace vigil::kafka
