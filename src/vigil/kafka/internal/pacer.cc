#include "vigil/kafka/internal/pacer.h"

#include <cstring>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "vigil/common/thread_name.h"

namespace vigil::kafka::internal {

namespace {

// A record's bytes in a batch besides its key and value (length, attributes, timestamp and
// offset deltas, key and value lengths, header count: varints), rounded up.
constexpr size_t kRecordOverhead = 24;
// What may wait here before Send blocks: the backpressure librdkafka's own queue limits gave
// the writer before (a broker that is away must not grow this without bound).
constexpr size_t kMaxQueuedBytes = 256u << 20;

// One message to librdkafka, copied: its error, or NO_ERROR once it is queued there.
rd_kafka_resp_err_t ProduceCopy(rd_kafka_topic_t* t, int32_t partition, std::string_view key,
                                std::string_view line) {
  if (rd_kafka_produce(t, partition, RD_KAFKA_MSG_F_COPY, const_cast<char*>(line.data()),
                       line.size(), key.empty() ? nullptr : key.data(), key.size(), nullptr) == 0) {
    return RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  return rd_kafka_last_error();
}

}  // namespace

bool Pacer::KnowsPartitioner(std::string_view name) {
  for (const char* n : {"random", "consistent", "consistent_random", "murmur2", "murmur2_random",
                        "fnv1a", "fnv1a_random"}) {
    if (name == n) return true;
  }
  return false;
}

Pacer::Pacer(rd_kafka_t* rk, Limits limits) : rk_(rk), limits_(std::move(limits)) {
  const std::string& p = limits_.partitioner;
  if (!KnowsPartitioner(p)) {
    throw std::invalid_argument(fmt::format("kafka: partitioner {} is not one Vigil can pace", p));
  }
  random_keys_ = p.ends_with("_random");
  if (p.starts_with("consistent")) {
    partitioner_ = rd_kafka_msg_partitioner_consistent;
  } else if (p.starts_with("murmur2")) {
    partitioner_ = rd_kafka_msg_partitioner_murmur2;
  } else if (p.starts_with("fnv1a")) {
    partitioner_ = rd_kafka_msg_partitioner_fnv1a;
  }  // "random": none, every message goes to the next partition in turn
  if (limits_.batch_bytes < 1024) limits_.batch_bytes = 1024;
  if (limits_.batch_messages < 1) limits_.batch_messages = 1;
  poller_ = std::thread([this] { PollLoop(); });
}

Pacer::~Pacer() { Stop(); }

void Pacer::Stop() {
  stopping_.store(true);
  if (poller_.joinable()) poller_.join();
}

void Pacer::PollLoop() {
  NameThisThread("vigil-pacer");
  while (!stopping_.load()) {
    bool stalled;
    {
      const std::lock_guard lock(mu_);
      stalled = stalled_;
    }
    // Serves delivery reports (OnDelivery hands the next batches over); returns as soon as
    // there are some. A lane refused for a full queue is retried every 10 ms.
    rd_kafka_poll(rk_, stalled ? 10 : 100);
    if (!stalled) continue;
    const std::lock_guard lock(mu_);
    stalled_ = false;
    for (Topic& t : topics_) {
      for (size_t p = 0; p < t.lanes.size(); ++p) {
        Lane& lane = t.lanes[p];
        if (lane.outstanding == 0 && !lane.Empty()) HandOver(t, static_cast<int32_t>(p), lane);
      }
    }
  }
}

bool Pacer::AddTopic(rd_kafka_topic_t* t, int timeout_ms) {
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk_, 0, t, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  int partitions = 0;
  if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    partitions = md->topics[0].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  if (partitions <= 0) return false;
  const std::lock_guard lock(mu_);
  if (Find(t) != nullptr) return true;
  topics_.push_back({t, std::vector<Lane>(static_cast<size_t>(partitions)), 0});
  return true;
}

Pacer::Topic* Pacer::Find(const rd_kafka_topic_t* t) {
  for (Topic& topic : topics_) {
    if (topic.rkt == t) return &topic;
  }
  return nullptr;
}

int32_t Pacer::Partition(Topic& topic, std::string_view key) {
  const auto n = static_cast<int32_t>(topic.lanes.size());
  if (partitioner_ == nullptr || (key.empty() && random_keys_)) {
    return static_cast<int32_t>(topic.next_random++ % static_cast<uint32_t>(n));
  }
  return partitioner_(topic.rkt, key.data(), key.size(), n, nullptr, nullptr);
}

Pacer::Sent Pacer::Send(rd_kafka_topic_t* t, int32_t partition, std::string_view key,
                        std::string_view line) {
  std::unique_lock lock(mu_);
  Topic* topic = Find(t);
  if (topic == nullptr || (partition >= static_cast<int32_t>(topic->lanes.size()))) {
    lock.unlock();
    for (;;) {  // not paced: straight to librdkafka, waiting while its queue is full
      const rd_kafka_resp_err_t e = ProduceCopy(t, partition, key, line);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return Sent::kOk;
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        lock.lock();
        Fail(e, t);
        return txn_failed_ ? Sent::kTxnFailed : Sent::kError;
      }
      rd_kafka_poll(rk_, 10);
    }
  }
  const size_t bytes = key.size() + line.size();
  for (;;) {
    if (txn_failed_) return Sent::kTxnFailed;
    if (!error_.empty()) return Sent::kError;
    if (queued_bytes_ + bytes <= kMaxQueuedBytes || queued_ == 0) break;
    space_.wait(lock);
  }
  if (partition < 0) partition = Partition(*topic, key);
  Lane& lane = topic->lanes[static_cast<size_t>(partition)];
  if (lane.outstanding == 0 && lane.Empty()) {
    switch (ProduceOne(*topic, partition, lane, key, line)) {
      case Produced::kDone:
        return Sent::kOk;
      case Produced::kFailed:
        return txn_failed_ ? Sent::kTxnFailed : Sent::kError;
      case Produced::kFull:
        stalled_ = true;  // queued below; the poller retries
        break;
    }
  }
  lane.entries.push_back({static_cast<uint32_t>(key.size()), static_cast<uint32_t>(line.size())});
  lane.bytes.append(key);
  lane.bytes.append(line);
  ++queued_;
  queued_bytes_ += bytes;
  return Sent::kOk;
}

Pacer::Produced Pacer::ProduceOne(Topic& topic, int32_t partition, Lane& lane, std::string_view key,
                                  std::string_view line) {
  const rd_kafka_resp_err_t e = ProduceCopy(topic.rkt, partition, key, line);
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++lane.outstanding;
    return Produced::kDone;
  }
  if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) return Produced::kFull;
  Fail(e, topic.rkt);
  return Produced::kFailed;
}

void Pacer::HandOver(Topic& topic, int32_t partition, Lane& lane) {
  size_t bytes = 0;
  size_t n = 0;
  while (!lane.Empty()) {
    const Entry e = lane.entries[lane.head];
    const size_t size = e.key_len + e.line_len + kRecordOverhead;
    if (n > 0 && (bytes + size > limits_.batch_bytes || n >= limits_.batch_messages)) break;
    const std::string_view key(lane.bytes.data() + lane.head_at, e.key_len);
    const std::string_view line(lane.bytes.data() + lane.head_at + e.key_len, e.line_len);
    const Produced r = ProduceOne(topic, partition, lane, key, line);
    if (r == Produced::kFailed) return;  // the lanes are cleared
    if (r == Produced::kFull) {
      if (lane.outstanding == 0) stalled_ = true;
      break;
    }
    bytes += size;
    ++n;
    ++lane.head;
    lane.head_at += e.key_len + e.line_len;
    --queued_;
    queued_bytes_ -= e.key_len + e.line_len;
  }
  if (lane.Empty()) {
    lane.bytes.clear();
    lane.entries.clear();
    lane.head = 0;
    lane.head_at = 0;
  } else if (lane.head_at > (1u << 20) && lane.head_at * 2 > lane.bytes.size()) {
    lane.bytes.erase(0, lane.head_at);
    lane.entries.erase(lane.entries.begin(),
                       lane.entries.begin() + static_cast<std::ptrdiff_t>(lane.head));
    lane.head = 0;
    lane.head_at = 0;
  }
  if (n > 0) space_.notify_all();
  if (queued_ == 0) handed_over_.notify_all();
}

void Pacer::OnDelivery(const rd_kafka_message_t& m) {
  const std::lock_guard lock(mu_);
  if (m.err != RD_KAFKA_RESP_ERR_NO_ERROR && delivery_error_.empty()) {
    delivery_error_ = fmt::format("delivery to {} failed: {}", rd_kafka_topic_name(m.rkt),
                                  rd_kafka_err2str(m.err));
  }
  Topic* topic = Find(m.rkt);
  if (topic == nullptr || m.partition < 0 ||
      m.partition >= static_cast<int32_t>(topic->lanes.size())) {
    return;
  }
  Lane& lane = topic->lanes[static_cast<size_t>(m.partition)];
  if (lane.outstanding > 0) --lane.outstanding;
  if (lane.outstanding == 0 && !lane.Empty()) HandOver(*topic, m.partition, lane);
}

void Pacer::Fail(rd_kafka_resp_err_t e, const rd_kafka_topic_t* t) {
  if (e == RD_KAFKA_RESP_ERR__STATE &&
      rd_kafka_fatal_error(rk_, nullptr, 0) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    // The transaction failed under us (e.g. the broker went away mid-transaction).
    txn_failed_ = true;
  } else if (error_.empty()) {
    error_ = fmt::format("producing to {}: {}", rd_kafka_topic_name(t), rd_kafka_err2str(e));
  }
  ClearLanes();
}

void Pacer::ClearLanes() {
  for (Topic& t : topics_) {
    for (Lane& lane : t.lanes) {
      lane.bytes.clear();
      lane.entries.clear();
      lane.head = 0;
      lane.head_at = 0;
    }
  }
  queued_ = 0;
  queued_bytes_ = 0;
  space_.notify_all();
  handed_over_.notify_all();
}

bool Pacer::AwaitHandedOver(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return handed_over_.wait_for(lock, timeout, [&] { return queued_ == 0; });
}

void Pacer::Drop() {
  const std::lock_guard lock(mu_);
  ClearLanes();
  txn_failed_ = false;
}

bool Pacer::TxnFailed() const {
  const std::lock_guard lock(mu_);
  return txn_failed_;
}

std::string Pacer::Error() const {
  const std::lock_guard lock(mu_);
  return error_;
}

std::string Pacer::DeliveryError() const {
  const std::lock_guard lock(mu_);
  return delivery_error_;
}

uint64_t Pacer::Queued() const {
  const std::lock_guard lock(mu_);
  return queued_;
}

}  // namespace vigil::kafka::internal
