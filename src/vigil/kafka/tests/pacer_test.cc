#include "vigil/kafka/internal/pacer.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace vigil::kafka::internal {
namespace {

// A producer on librdkafka's in-process mock cluster (one broker), with its delivery reports
// routed to a Pacer as KafkaOutputs routes them, and recorded.
class MockProducer {
 public:
  struct Delivered {
    int32_t partition;
    std::string key;
    std::string value;
    rd_kafka_resp_err_t err;
  };

  explicit MockProducer(Pacer::Limits limits, int rtt_ms = 0, int partitions = 4,
                        bool idempotent = true) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    for (const auto& [k, v] :
         std::map<std::string, std::string>{{"test.mock.num.brokers", "1"},
                                            {"enable.idempotence", idempotent ? "true" : "false"},
                                            {"linger.ms", "1"},
                                            {"statistics.interval.ms", "100"}}) {
      if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
        throw std::runtime_error(err);
      }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* o) {
      static_cast<MockProducer*>(o)->OnDelivery(*m);
    });
    rd_kafka_conf_set_stats_cb(conf, [](rd_kafka_t*, char* json, size_t len, void* o) {
      auto* self = static_cast<MockProducer*>(o);
      const std::lock_guard lock(self->mu_);
      self->stats_.assign(json, len);
      return 0;
    });
    rd_kafka_conf_set_opaque(conf, this);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk_ == nullptr) throw std::runtime_error(err);
    rd_kafka_mock_cluster_t* mc = rd_kafka_handle_mock_cluster(rk_);
    rd_kafka_mock_topic_create(mc, "out", partitions, 1);
    if (rtt_ms > 0) rd_kafka_mock_broker_set_rtt(mc, 1, rtt_ms);
    topic_ = rd_kafka_topic_new(rk_, "out", nullptr);
    try {
      pacer_ = std::make_unique<Pacer>(rk_, std::move(limits));
    } catch (...) {
      rd_kafka_topic_destroy(topic_);
      rd_kafka_destroy(rk_);
      throw;
    }
  }
  ~MockProducer() {
    rd_kafka_flush(rk_, 5000);
    pacer_->Stop();
    rd_kafka_topic_destroy(topic_);
    rd_kafka_destroy(rk_);
  }

  void OnDelivery(const rd_kafka_message_t& m) {
    pacer_->OnDelivery(m);
    const std::lock_guard lock(mu_);
    delivered_.push_back({m.partition, std::string(static_cast<const char*>(m.key), m.key_len),
                          std::string(static_cast<const char*>(m.payload), m.len), m.err});
  }
  // Hands everything over and waits for its delivery reports.
  void Finish() {
    ASSERT_TRUE(pacer_->AwaitHandedOver(std::chrono::seconds(20)));
    ASSERT_EQ(rd_kafka_flush(rk_, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  std::vector<Delivered> delivered() {
    const std::lock_guard lock(mu_);
    return delivered_;
  }
  // A counter of the broker's own thread in the latest statistics: `wakeups` (its loop's
  // turns), `req.Produce` (requests sent).
  int64_t BrokerCounter(const std::string& name) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // a fresh statistics event
    const std::lock_guard lock(mu_);
    // The mock broker's entry is the one named "...:port/1"; read the field after it.
    const size_t broker = stats_.find("/1\"");
    if (broker == std::string::npos) return -1;
    const size_t at = stats_.find("\"" + name + "\":", broker);
    if (at == std::string::npos) return -1;
    return std::stoll(stats_.substr(at + name.size() + 3));
  }

  rd_kafka_t* rk() { return rk_; }
  rd_kafka_topic_t* topic() { return topic_; }
  Pacer& pacer() { return *pacer_; }

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* topic_ = nullptr;
  std::unique_ptr<Pacer> pacer_;
  std::mutex mu_;
  std::vector<Delivered> delivered_;
  std::string stats_;
};

TEST(PacerTest, KnowsLibrdkafkasBuiltInPartitioners) {
  for (const char* p : {"random", "consistent", "consistent_random", "murmur2", "murmur2_random",
                        "fnv1a", "fnv1a_random"}) {
    EXPECT_TRUE(Pacer::KnowsPartitioner(p)) << p;
  }
  EXPECT_FALSE(Pacer::KnowsPartitioner("sticky"));
  EXPECT_FALSE(Pacer::KnowsPartitioner(""));
}

TEST(PacerTest, RefusesAPartitionerItCannotReproduce) {
  Pacer::Limits limits;
  limits.partitioner = "murmur3";
  EXPECT_THROW(MockProducer p(limits), std::invalid_argument);
}

// Every message arrives once, in the order sent within its partition, on the partition
// librdkafka's own partitioner would have chosen for its key.
TEST(PacerTest, DeliversEveryMessageOnceInOrderOnItsKeysPartition) {
  for (const std::string partitioner : {"consistent_random", "murmur2_random", "fnv1a"}) {
    SCOPED_TRACE(partitioner);
    Pacer::Limits limits;
    limits.batch_messages = 50;  // many batches per partition
    limits.partitioner = partitioner;
    MockProducer p(limits, /*rtt_ms=*/5);
    ASSERT_TRUE(p.pacer().AddTopic(p.topic(), 5000));
    constexpr int kMessages = 3000;
    for (int i = 0; i < kMessages; ++i) {
      const std::string key = "card-" + std::to_string(i % 97);
      ASSERT_EQ(p.pacer().Send(p.topic(), RD_KAFKA_PARTITION_UA, key, std::to_string(i)),
                Pacer::Sent::kOk);
    }
    p.Finish();
    EXPECT_EQ(p.pacer().Queued(), 0u);
    const auto delivered = p.delivered();
    ASSERT_EQ(delivered.size(), static_cast<size_t>(kMessages));
    const auto want = partitioner == "consistent_random" ? rd_kafka_msg_partitioner_consistent
                      : partitioner == "murmur2_random"  ? rd_kafka_msg_partitioner_murmur2
                                                         : rd_kafka_msg_partitioner_fnv1a;
    std::map<int32_t, int> last_by_partition;
    std::vector<bool> seen(kMessages);
    for (const auto& d : delivered) {
      ASSERT_EQ(d.err, RD_KAFKA_RESP_ERR_NO_ERROR);
      EXPECT_EQ(d.partition, want(p.topic(), d.key.data(), d.key.size(), 4, nullptr, nullptr));
      const int i = std::stoi(d.value);
      EXPECT_FALSE(seen[static_cast<size_t>(i)]) << "twice: " << i;
      seen[static_cast<size_t>(i)] = true;
      auto [it, fresh] = last_by_partition.emplace(d.partition, i);
      if (!fresh) {
        EXPECT_GT(i, it->second) << "out of order on partition " << d.partition;
        it->second = i;
      }
    }
  }
}

// Messages without a key spread over the partitions; an explicit partition is kept.
TEST(PacerTest, SpreadsKeylessMessagesAndKeepsExplicitPartitions) {
  MockProducer p(Pacer::Limits{});
  ASSERT_TRUE(p.pacer().AddTopic(p.topic(), 5000));
  for (int i = 0; i < 400; ++i) {
    ASSERT_EQ(p.pacer().Send(p.topic(), RD_KAFKA_PARTITION_UA, "", "x"), Pacer::Sent::kOk);
  }
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(p.pacer().Send(p.topic(), 2, "key", "pinned"), Pacer::Sent::kOk);
  }
  p.Finish();
  std::map<int32_t, int> keyless;
  for (const auto& d : p.delivered()) {
    if (d.value == "pinned") {
      EXPECT_EQ(d.partition, 2);
    } else {
      ++keyless[d.partition];
    }
  }
  ASSERT_EQ(keyless.size(), 4u);
  for (const auto& [partition, n] : keyless) EXPECT_EQ(n, 100) << partition;
}

// While a partition's batch is in flight, what follows waits in the pacer, not in
// librdkafka; a batch is cut at the message limit.
TEST(PacerTest, HoldsAPartitionsNextMessagesWhileItsBatchIsInFlight) {
  Pacer::Limits limits;
  limits.batch_messages = 100;
  MockProducer p(limits, /*rtt_ms=*/200, /*partitions=*/1);
  ASSERT_TRUE(p.pacer().AddTopic(p.topic(), 5000));
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(p.pacer().Send(p.topic(), RD_KAFKA_PARTITION_UA, "k", std::to_string(i)),
              Pacer::Sent::kOk);
  }
  // The first message went over alone (nothing was outstanding); the rest wait for it.
  EXPECT_EQ(p.pacer().Queued(), 999u);
  EXPECT_EQ(rd_kafka_outq_len(p.rk()), 1);
  p.Finish();
  EXPECT_EQ(p.delivered().size(), 1000u);
  // 1 + 999 in batches of at most 100: at least 11 requests.
  EXPECT_GE(p.BrokerCounter("Produce"), 11);
}

// The point of pacing: with a batch in flight and more to send, librdkafka's broker thread
// of an idempotent producer sleeps instead of polling its socket with a zero timeout.
TEST(PacerTest, KeepsTheBrokerThreadAsleepWhileABatchIsInFlight) {
  const auto turns = [](bool paced) {
    MockProducer p(Pacer::Limits{}, /*rtt_ms=*/300, /*partitions=*/1);
    if (paced) {
      EXPECT_TRUE(p.pacer().AddTopic(p.topic(), 5000));
    }
    const int64_t before = p.BrokerCounter("wakeups");
    // Two rounds of: 10 messages (one request, more than the 5 librdkafka counts against its
    // in-flight cap), then 100 more while they are in flight.
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < 110; ++i) {
        EXPECT_EQ(p.pacer().Send(p.topic(), RD_KAFKA_PARTITION_UA, "k", "v"), Pacer::Sent::kOk);
        if (i == 9) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      p.Finish();
    }
    return p.BrokerCounter("wakeups") - before;
  };
  const int64_t unpaced = turns(false);
  const int64_t paced = turns(true);
  // Unpaced, the thread turns once per poll for ~2 x 300 ms: tens of thousands of times.
  // Paced, a few times per request and statistics event.
  EXPECT_GT(unpaced, 10 * paced) << "unpaced " << unpaced << ", paced " << paced;
}

TEST(PacerTest, DropForgetsWhatWaits) {
  MockProducer p(Pacer::Limits{}, /*rtt_ms=*/200, /*partitions=*/1);
  ASSERT_TRUE(p.pacer().AddTopic(p.topic(), 5000));
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(p.pacer().Send(p.topic(), 0, "k", "v"), Pacer::Sent::kOk);
  }
  EXPECT_EQ(p.pacer().Queued(), 9u);
  p.pacer().Drop();
  EXPECT_EQ(p.pacer().Queued(), 0u);
  p.Finish();
  EXPECT_EQ(p.delivered().size(), 1u);
}

// A topic whose partitions cannot be read goes to librdkafka unpaced.
TEST(PacerTest, SendsUnpacedToATopicItCannotPace) {
  MockProducer p(Pacer::Limits{});
  rd_kafka_mock_topic_set_error(rd_kafka_handle_mock_cluster(p.rk()), "out",
                                RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  EXPECT_FALSE(p.pacer().AddTopic(p.topic(), 1000));
  rd_kafka_mock_topic_set_error(rd_kafka_handle_mock_cluster(p.rk()), "out",
                                RD_KAFKA_RESP_ERR_NO_ERROR);
  // Straight through: nothing waits in the pacer even with a message outstanding.
  ASSERT_EQ(p.pacer().Send(p.topic(), 1, "k", "v"), Pacer::Sent::kOk);
  ASSERT_EQ(p.pacer().Send(p.topic(), 1, "k", "w"), Pacer::Sent::kOk);
  EXPECT_EQ(p.pacer().Queued(), 0u);
  p.Finish();
  ASSERT_EQ(p.delivered().size(), 2u);
  EXPECT_EQ(p.delivered()[0].partition, 1);
}

}  // namespace
}  // namespace vigil::kafka::internal
