#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>

namespace vigil::kafka::internal {

// Hands messages to a librdkafka producer one batch per partition at a time: a partition's
// next messages wait here until librdkafka has reported its last ones delivered, then go over
// together, at most one request's worth.
//
// Why: librdkafka 2.0.2's idempotent producer (and so the transactional one) lets a partition
// have one ProduceRequest in flight at a time (it compares the partition's in-flight
// *messages* with the broker's window of 5 *requests*), and it schedules its broker thread's
// next wake-up for "now" as soon as the messages queued behind that request have waited
// linger.ms. Until the broker answers, that thread polls its socket with a zero timeout: 3.2
// of vigil's 7.3 CPU-seconds per million events through the broker, on a machine whose two
// cores the broker shares (bench/RESULTS.md, "Pacing the producer"). Paced, the requests are
// the same (one per partition in flight, full batches under load) and the thread sleeps until
// the answer. librdkafka's own partitioner is replaced by the same function called here, so
// a key lands where it would have.
//
// Topics whose partition count cannot be read at AddTopic go to librdkafka unpaced.
//
// Thread-safety: every method may be called from any thread. OnDelivery runs inside
// librdkafka's delivery-report callback, on whichever thread polls the producer: the pacer's
// own (it polls until Stop), or one in commit_transaction / flush.
class Pacer {
 public:
  struct Limits {
    size_t batch_bytes = 1'000'000;  // min(batch.size, message.max.bytes)
    size_t batch_messages = 10'000;  // batch.num.messages
    std::string partitioner = "consistent_random";
  };
  enum class Sent { kOk, kTxnFailed, kError };

  // rk: the producer; its delivery-report callback must call OnDelivery. Starts the thread
  // that polls it for delivery reports. Throws std::invalid_argument for a partitioner it
  // cannot reproduce (the producer's own then stays in charge: construct none).
  Pacer(rd_kafka_t* rk, Limits limits);
  ~Pacer();
  Pacer(const Pacer&) = delete;
  Pacer& operator=(const Pacer&) = delete;

  // Whether librdkafka's `partitioner` setting is one this class can apply itself.
  static bool KnowsPartitioner(std::string_view name);

  // Paces `t` from now on when its partition count can be read within timeout_ms. Returns
  // whether it is paced.
  bool AddTopic(rd_kafka_topic_t* t, int timeout_ms);

  // Queues the message, or hands it over when its partition has nothing outstanding.
  // partition: RD_KAFKA_PARTITION_UA lets the partitioner choose. kTxnFailed: the producer
  // refused it because the transaction failed (now, or on another thread since the last
  // Drop): nothing more is sent until Drop. kError: see Error().
  [[nodiscard]] Sent Send(rd_kafka_topic_t* t, int32_t partition, std::string_view key,
                          std::string_view line);

  // One delivery report: the next batch of its partition goes over when it was the last.
  void OnDelivery(const rd_kafka_message_t& m);

  // Waits until everything sent has been handed to librdkafka (not delivered: flush or
  // commit_transaction does that). Returns false after `timeout` with messages still here.
  bool AwaitHandedOver(std::chrono::milliseconds timeout);

  // Forgets what is queued here and a failed transaction (after an abort).
  void Drop();

  bool TxnFailed() const;
  std::string Error() const;          // why a send failed, or empty
  std::string DeliveryError() const;  // the first failed delivery, or empty
  uint64_t Queued() const;            // messages waiting here (for tests)

  // Stops the polling thread. Before rd_kafka_destroy; idempotent.
  void Stop();

 private:
  struct Entry {
    uint32_t key_len;
    uint32_t line_len;
  };
  // One partition: what librdkafka holds of it, and what waits for that.
  struct Lane {
    uint32_t outstanding = 0;  // handed over, not yet reported delivered
    std::string bytes;         // each waiting entry's key then line, from `head_at`
    std::vector<Entry> entries;
    size_t head = 0;
    size_t head_at = 0;
    bool Empty() const { return head == entries.size(); }
  };
  struct Topic {
    rd_kafka_topic_t* rkt;
    std::vector<Lane> lanes;  // by partition
    uint32_t next_random = 0;
  };
  enum class Produced { kDone, kFull, kFailed };
  using PartitionerFn = int32_t (*)(const rd_kafka_topic_t*, const void*, size_t, int32_t, void*,
                                    void*);

  Topic* Find(const rd_kafka_topic_t* t);
  int32_t Partition(Topic& topic, std::string_view key);
  // Hands over the lane's next batch. Under mu_.
  void HandOver(Topic& topic, int32_t partition, Lane& lane);
  // Produces one message. kFull: librdkafka's queue is full, nothing changed. kFailed: it
  // refused the message for good; Fail has run (the lanes are cleared).
  Produced ProduceOne(Topic& topic, int32_t partition, Lane& lane, std::string_view key,
                      std::string_view line);
  void Fail(rd_kafka_resp_err_t e, const rd_kafka_topic_t* t);
  void ClearLanes();
  void PollLoop();

  rd_kafka_t* rk_;
  Limits limits_;
  PartitionerFn partitioner_ = nullptr;
  bool random_keys_ = false;  // "*_random": messages without a key go to any partition

  mutable std::mutex mu_;
  std::condition_variable handed_over_;  // queued_ reached 0
  std::condition_variable space_;        // queued_bytes_ fell, or sending failed
  std::vector<Topic> topics_;
  uint64_t queued_ = 0;
  size_t queued_bytes_ = 0;
  bool stalled_ = false;  // a lane was refused (queue full) with nothing outstanding
  bool txn_failed_ = false;
  std::string error_;
  std::string delivery_error_;

  std::atomic<bool> stopping_{false};
  std::thread poller_;
};

}  // namespace vigil::kafka::internal
