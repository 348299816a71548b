// vigil_kafka_tool: a small Kafka client for the tests that run against the real broker
// (scripts/kafka-broker) and for poking at it by hand. One subcommand per job: wait for the
// broker, create a topic, produce a JSON-lines file, consume a topic back into a file.
// It speaks to Kafka through librdkafka's C API, as Vigil's own source and sink do.
//
// Exit codes: 0 done; 1 the broker or the data did not do what was asked (timeout, failed
// delivery, wrong count); 2 bad usage.
#include <librdkafka/rdkafka.h>
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

namespace {

using Clock = std::chrono::steady_clock;

// A failure the tool reports and exits 1 on.
class ToolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// unique_ptr deleters for librdkafka's handles: Deleter<rd_kafka_destroy> etc.
template <auto Destroy>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Destroy(p);
  }
};
using Handle = std::unique_ptr<rd_kafka_t, Deleter<rd_kafka_destroy>>;

using Conf = std::unique_ptr<rd_kafka_conf_t, Deleter<rd_kafka_conf_destroy>>;

using Topic = std::unique_ptr<rd_kafka_topic_t, Deleter<rd_kafka_topic_destroy>>;

using Metadata = std::unique_ptr<const rd_kafka_metadata_t, Deleter<rd_kafka_metadata_destroy>>;

using Queue = std::unique_ptr<rd_kafka_queue_t, Deleter<rd_kafka_queue_destroy>>;

using Event = std::unique_ptr<rd_kafka_event_t, Deleter<rd_kafka_event_destroy>>;

using Message = std::unique_ptr<rd_kafka_message_t, Deleter<rd_kafka_message_destroy>>;

using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t,
                                      Deleter<rd_kafka_topic_partition_list_destroy>>;

Conf NewConf(const std::string& bootstrap) {
  Conf conf{rd_kafka_conf_new()};
  char errstr[512];
  if (rd_kafka_conf_set(conf.get(), "bootstrap.servers", bootstrap.c_str(), errstr,
                        sizeof errstr) != RD_KAFKA_CONF_OK) {
    throw std::invalid_argument(errstr);
  }
  return conf;
}

void Set(rd_kafka_conf_t* conf, const char* key, const std::string& value) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, key, value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    throw std::invalid_argument(fmt::format("{}={}: {}", key, value, errstr));
  }
}

// rd_kafka_new takes the configuration over when it succeeds, and only then.
Handle NewHandle(rd_kafka_type_t type, Conf conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr) throw ToolError(fmt::format("cannot create a Kafka client: {}", errstr));
  conf.release();
  return Handle{rk};
}

int RemainingMs(Clock::time_point deadline, int cap_ms) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, cap_ms));
}

Clock::time_point DeadlineAfter(double seconds) {
  return Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// Brokers' connection errors while waiting are expected; they are not worth a line each.
void DropLog(const rd_kafka_t*, int, const char*, const char*) {}

// --- wait-ready ----------------------------------------------------------------------------

struct WaitReadyArgs {
  std::string bootstrap;
  double timeout = 30;
  int brokers = 1;
  std::string cluster_id;
};

int WaitReady(const WaitReadyArgs& args) {
  Conf conf = NewConf(args.bootstrap);
  rd_kafka_conf_set_log_cb(conf.get(), DropLog);
  Set(conf.get(), "reconnect.backoff.ms", "100");
  Set(conf.get(), "reconnect.backoff.max.ms", "500");
  Handle rk = NewHandle(RD_KAFKA_PRODUCER, std::move(conf));

  const auto deadline = DeadlineAfter(args.timeout);
  std::string last = "no answer";
  do {
    const rd_kafka_metadata_t* md = nullptr;
    const rd_kafka_resp_err_t err =
        rd_kafka_metadata(rk.get(), 0, nullptr, &md, std::max(RemainingMs(deadline, 1000), 100));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      Metadata owned{md};
      if (md->broker_cnt >= args.brokers && !args.cluster_id.empty()) {
        // Another broker on the same address would answer too; only ours has this id.
        char* raw = rd_kafka_clusterid(rk.get(), std::max(RemainingMs(deadline, 1000), 100));
        const std::string id = raw != nullptr ? raw : "unknown";
        if (raw != nullptr) rd_kafka_mem_free(rk.get(), raw);
        if (id != args.cluster_id) {
          last = fmt::format("cluster id {}, not {}", id, args.cluster_id);
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
      }
      if (md->broker_cnt >= args.brokers) {
        fmt::print(stderr, "kafka-tool: {} ready ({} broker{})\n", args.bootstrap, md->broker_cnt,
                   md->broker_cnt == 1 ? "" : "s");
        return 0;
      }
      last = fmt::format("{} of {} brokers up", md->broker_cnt, args.brokers);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } else {
      last = rd_kafka_err2str(err);
    }
  } while (Clock::now() < deadline);
  fmt::print(stderr, "kafka-tool: {} not ready after {}s: {}\n", args.bootstrap, args.timeout,
             last);
  return 1;
}

// --- create-topic --------------------------------------------------------------------------

struct CreateTopicArgs {
  std::string bootstrap;
  std::string topic;
  int partitions = 1;
  int replication = 1;
  bool compact = false;
  std::vector<std::string> configs;
  double timeout = 30;
};

// Polls the topic's metadata until `ready` accepts it or the deadline passes. `ready` may
// set `why` to what it still waits for, or throw when waiting cannot help.
void PollTopic(
    rd_kafka_t* rk, const std::string& name, Clock::time_point deadline,
    const std::function<bool(const rd_kafka_metadata_topic_t&, std::string& why)>& ready) {
  Topic rkt{rd_kafka_topic_new(rk, name.c_str(), nullptr)};
  std::string last = "no answer";
  do {
    const rd_kafka_metadata_t* md = nullptr;
    const rd_kafka_resp_err_t err =
        rd_kafka_metadata(rk, 0, rkt.get(), &md, std::max(RemainingMs(deadline, 1000), 100));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      last = rd_kafka_err2str(err);
      continue;
    }
    Metadata owned{md};
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      last = md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "topic not listed";
    } else if (ready(md->topics[0], last)) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (Clock::now() < deadline);
  throw ToolError(fmt::format("topic {} not ready: {}", name, last));
}

// Waits until the topic's metadata shows every partition with a leader, so that a producer
// started right after this returns does not meet an unknown topic.
void AwaitTopic(rd_kafka_t* rk, const std::string& name, int partitions,
                Clock::time_point deadline) {
  PollTopic(rk, name, deadline, [&](const rd_kafka_metadata_topic_t& t, std::string& why) {
    if (t.partition_cnt != partitions) {
      throw ToolError(fmt::format("topic {} exists with {} partitions, not {}", name,
                                  t.partition_cnt, partitions));
    }
    why = "partitions without a leader";
    return std::all_of(t.partitions, t.partitions + t.partition_cnt, [](const auto& p) {
      return p.err == RD_KAFKA_RESP_ERR_NO_ERROR && p.leader >= 0;
    });
  });
}

int CreateTopic(const CreateTopicArgs& args) {
  Handle rk = NewHandle(RD_KAFKA_PRODUCER, NewConf(args.bootstrap));
  const auto deadline = DeadlineAfter(args.timeout);
  char errstr[512];

  rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(args.topic.c_str(), args.partitions,
                                                     args.replication, errstr, sizeof errstr);
  if (topic == nullptr) throw std::invalid_argument(errstr);
  std::unique_ptr<rd_kafka_NewTopic_t, decltype(&rd_kafka_NewTopic_destroy)> owned_topic{
      topic, rd_kafka_NewTopic_destroy};
  std::vector<std::string> configs = args.configs;
  if (args.compact) configs.insert(configs.begin(), "cleanup.policy=compact");
  for (const std::string& kv : configs) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw std::invalid_argument(fmt::format("--config {}: expected NAME=VALUE", kv));
    }
    const std::string key = kv.substr(0, eq);
    const std::string value = kv.substr(eq + 1);
    if (rd_kafka_resp_err_t err = rd_kafka_NewTopic_set_config(topic, key.c_str(), value.c_str());
        err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::invalid_argument(fmt::format("--config {}: {}", kv, rd_kafka_err2str(err)));
    }
  }

  std::unique_ptr<rd_kafka_AdminOptions_t, decltype(&rd_kafka_AdminOptions_destroy)> options{
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS),
      rd_kafka_AdminOptions_destroy};
  const int timeout_ms = RemainingMs(deadline, 3600 * 1000);
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, errstr, sizeof errstr);
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms, errstr, sizeof errstr);

  Queue queue{rd_kafka_queue_new(rk.get())};
  rd_kafka_CreateTopics(rk.get(), &topic, 1, options.get(), queue.get());
  Event event{rd_kafka_queue_poll(queue.get(), timeout_ms + 1000)};
  if (!event) throw ToolError(fmt::format("creating topic {}: no answer", args.topic));
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw ToolError(
        fmt::format("creating topic {}: {}", args.topic, rd_kafka_event_error_string(event.get())));
  }
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &count);
  bool existed = false;
  for (size_t i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      existed = true;
    } else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* message = rd_kafka_topic_result_error_string(results[i]);
      throw ToolError(fmt::format("creating topic {}: {}", args.topic,
                                  message != nullptr ? message : rd_kafka_err2str(err)));
    }
  }
  AwaitTopic(rk.get(), args.topic, args.partitions, deadline);
  fmt::print(stderr, "kafka-tool: topic {} {} ({} partitions)\n", args.topic,
             existed ? "already exists" : "created", args.partitions);
  return 0;
}

// --- produce -------------------------------------------------------------------------------

struct ProduceArgs {
  std::string bootstrap;
  std::string topic;
  std::string input;
  std::string key_field;
  double rate = 0;
  int64_t count = 0;
  double timeout = 60;
  std::string transactional_id;
  bool abort = false;
};

// Throws on a failed transactional call; rd_kafka_error_t is owned by the caller.
void Check(rd_kafka_error_t* error, const char* what) {
  if (error == nullptr) return;
  const std::string message = rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  throw ToolError(fmt::format("{}: {}", what, message));
}

struct Deliveries {
  int64_t delivered = 0;
  int64_t failed = 0;
  std::string first_error;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* d = static_cast<Deliveries*>(opaque);
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++d->delivered;
  } else {
    if (d->failed++ == 0) d->first_error = rd_kafka_err2str(msg->err);
  }
}

// The value of the top-level field `name` of a JSON object line, as the key: a string's
// contents, or a number as written. Anything else (no such field, not JSON) has no key.
class KeyReader {
 public:
  explicit KeyReader(std::string name) : name_(std::move(name)) {}

  // `line` must have SIMDJSON_PADDING bytes of capacity past its size.
  bool Read(const std::string& line, std::string& key) {
    namespace od = simdjson::ondemand;
    od::document doc;
    if (parser_.iterate(line.data(), line.size(), line.capacity()).get(doc)) return false;
    od::object object;
    if (doc.get_object().get(object)) return false;
    od::value value;
    if (object.find_field_unordered(name_).get(value)) return false;
    od::json_type type;
    if (value.type().get(type)) return false;
    if (type == od::json_type::string) {
      std::string_view s;
      if (value.get_string().get(s)) return false;
      key.assign(s);
      return true;
    }
    if (type == od::json_type::number) {
      std::string_view raw = value.raw_json_token();
      while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\r' ||
                              raw.back() == '\n' || raw.back() == ',' || raw.back() == '}')) {
        raw.remove_suffix(1);
      }
      key.assign(raw);
      return true;
    }
    return false;
  }

 private:
  std::string name_;
  simdjson::ondemand::parser parser_;
};

int Produce(const ProduceArgs& args) {
  Deliveries deliveries;
  Conf conf = NewConf(args.bootstrap);
  Set(conf.get(), "enable.idempotence", "true");
  Set(conf.get(), "linger.ms", "5");
  Set(conf.get(), "message.timeout.ms", std::to_string(static_cast<int64_t>(args.timeout * 1000)));
  rd_kafka_conf_set_dr_msg_cb(conf.get(), OnDelivery);
  rd_kafka_conf_set_opaque(conf.get(), &deliveries);
  const bool transactional = !args.transactional_id.empty();
  if (transactional) Set(conf.get(), "transactional.id", args.transactional_id);
  Handle rk = NewHandle(RD_KAFKA_PRODUCER, std::move(conf));
  const int timeout_ms = static_cast<int>(args.timeout * 1000);
  if (transactional) {
    Check(rd_kafka_init_transactions(rk.get(), timeout_ms), "initialising transactions");
    Check(rd_kafka_begin_transaction(rk.get()), "beginning the transaction");
  }

  std::ifstream file;
  std::istream* in = &std::cin;
  const bool from_stdin = args.input == "-";
  if (!from_stdin) {
    file.open(args.input, std::ios::binary);
    if (!file) throw ToolError(fmt::format("cannot open {}", args.input));
    in = &file;
  }

  std::optional<KeyReader> keys;
  if (!args.key_field.empty()) keys.emplace(args.key_field);
  std::string line, key;
  int64_t sent = 0, keyless = 0, lines_this_pass = 0;
  const auto start = Clock::now();
  while (args.count == 0 || sent < args.count) {
    if (!std::getline(*in, line)) {
      // --count beyond the file's length cycles through it again.
      if (from_stdin || args.count == 0 || lines_this_pass == 0) break;
      file.clear();
      file.seekg(0);
      lines_this_pass = 0;
      continue;
    }
    ++lines_this_pass;
    if (args.rate > 0) {
      const auto due =
          start + std::chrono::nanoseconds(static_cast<int64_t>(sent * 1e9 / args.rate));
      while (Clock::now() < due) rd_kafka_poll(rk.get(), std::max(1, RemainingMs(due, 100)));
    }
    bool has_key = false;
    if (keys) {
      line.reserve(line.size() + simdjson::SIMDJSON_PADDING);
      has_key = keys->Read(line, key);
      if (!has_key) ++keyless;
    }
    while (true) {
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          rk.get(), RD_KAFKA_V_TOPIC(args.topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(has_key ? key.data() : nullptr, has_key ? key.size() : 0),
          RD_KAFKA_V_VALUE(line.data(), line.size()), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        throw ToolError(fmt::format("producing to {}: {}", args.topic, rd_kafka_err2str(err)));
      }
      rd_kafka_poll(rk.get(), 50);
    }
    ++sent;
    rd_kafka_poll(rk.get(), 0);
  }

  rd_kafka_flush(rk.get(), timeout_ms + 1000);
  if (transactional && args.abort) {
    Check(rd_kafka_abort_transaction(rk.get(), timeout_ms), "aborting the transaction");
    fmt::print(stderr, "kafka-tool: transaction {} aborted\n", args.transactional_id);
  } else if (transactional) {
    Check(rd_kafka_commit_transaction(rk.get(), timeout_ms), "committing the transaction");
  }
  const int outstanding = rd_kafka_outq_len(rk.get());
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  fmt::print("{}\n", deliveries.delivered);
  fmt::print(stderr, "kafka-tool: delivered {} of {} messages to {} in {:.2f}s{}\n",
             deliveries.delivered, sent, args.topic, seconds,
             keys ? fmt::format(" ({} without a key)", keyless) : "");
  if (deliveries.failed > 0) {
    fmt::print(stderr, "kafka-tool: {} deliveries failed, the first with: {}\n", deliveries.failed,
               deliveries.first_error);
  }
  if (outstanding > 0) {
    fmt::print(stderr, "kafka-tool: {} messages still undelivered at the timeout\n", outstanding);
  }
  return deliveries.delivered == sent && deliveries.failed == 0 ? 0 : 1;
}

// --- consume -------------------------------------------------------------------------------

struct ConsumeArgs {
  std::string bootstrap;
  std::string topic;
  int64_t expect = 0;
  double timeout = 60;
  double grace = 2;
  bool at_least = false;  // N or more is success (at-least-once outputs may repeat some)
  bool read_committed = false;
  std::string out = "-";
  std::string group;
  std::string latency_field;
  bool latency_at_receipt = false;
  int64_t latency_skip = 0;
  bool latency_by_second = false;
};

// Latency of each consumed message: its Kafka timestamp (CreateTime as its producer set it,
// or LogAppendTime if the topic says so) minus the time in one of its top-level JSON fields,
// in milliseconds since the Unix epoch. Summarised as percentiles at the end.
// --latency-field value meaning the message's own Kafka timestamp (its producer's CreateTime).
constexpr const char* kMessageTimestamp = "@timestamp";

class Latencies {
 public:
  Latencies(std::string field, bool at_receipt, int64_t skip, bool by_second)
      : field_(std::move(field)), at_receipt_(at_receipt), skip_(skip), by_second_(by_second) {}

  void Add(const rd_kafka_message_t* msg) {
    if (skip_ > 0) {  // warm-up: not measured
      --skip_;
      return;
    }
    rd_kafka_timestamp_type_t type;
    if (field_ == kMessageTimestamp) {  // the broker path alone: produce time to receipt
      const int64_t created = rd_kafka_message_timestamp(msg, &type);
      if (created < 0) {
        ++missing_;
        return;
      }
      const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
      values_.push_back(static_cast<double>(now_ms - created));
      if (by_second_) seconds_.push_back(now_ms / 1000);
      return;
    }
    const int64_t timestamp_ms = at_receipt_
                                     ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count()
                                     : rd_kafka_message_timestamp(msg, &type);
    buffer_.assign(static_cast<const char*>(msg->payload), msg->len);
    buffer_.reserve(buffer_.size() + simdjson::SIMDJSON_PADDING);
    namespace od = simdjson::ondemand;
    od::document doc;
    od::object object;
    double sent_ms = 0;
    if (timestamp_ms < 0 ||
        parser_.iterate(buffer_.data(), buffer_.size(), buffer_.capacity()).get(doc) ||
        doc.get_object().get(object) ||
        object.find_field_unordered(field_).get_double().get(sent_ms)) {
      ++missing_;
      return;
    }
    values_.push_back(static_cast<double>(timestamp_ms) - sent_ms);
    if (by_second_) seconds_.push_back(timestamp_ms / 1000);
  }

  void Print() {
    if (values_.empty()) {
      fmt::print(stderr, "kafka-tool: latency: no message had a numeric \"{}\"\n", field_);
      return;
    }
    if (by_second_) PrintBySecond();
    std::sort(values_.begin(), values_.end());
    auto at = [this](double q) {
      const auto rank = static_cast<size_t>(q * static_cast<double>(values_.size()));
      return values_[std::min(rank, values_.size() - 1)];
    };
    fmt::print(stderr,
               "kafka-tool: latency ms ({} - {}) over {} messages: p50 {:.1f} "
               "p99 {:.1f} p999 {:.1f} max {:.1f}{}\n",
               at_receipt_ || field_ == kMessageTimestamp ? "receipt time" : "message timestamp",
               field_ == kMessageTimestamp ? "message timestamp" : field_, values_.size(), at(0.5),
               at(0.99), at(0.999), values_.back(),
               missing_ > 0 ? fmt::format(" ({} without the field)", missing_) : "");
  }

 private:
  std::string field_;
  bool at_receipt_;
  int64_t skip_;
  std::string buffer_;
  simdjson::ondemand::parser parser_;
  std::vector<double> values_;
  std::vector<int64_t> seconds_;  // with by_second_: the second (of the timestamp) of each value
  bool by_second_ = false;
  int64_t missing_ = 0;

  // One line per second of the timestamps (receipt time with --latency-at-receipt): how many
  // messages, their median and their maximum. Shows whether a tail is steady or spikes.
  void PrintBySecond() const {
    std::map<int64_t, std::vector<double>> by;
    for (size_t i = 0; i < values_.size(); ++i) by[seconds_[i]].push_back(values_[i]);
    const int64_t first = by.begin()->first;
    for (auto& [second, v] : by) {
      std::sort(v.begin(), v.end());
      fmt::print(stderr,
                 "kafka-tool: latency second {:3} (unix {}): {:6} messages, p50 {:6.1f} max "
                 "{:6.1f}\n",
                 second - first, second, v.size(), v[v.size() / 2], v.back());
    }
  }
};

// Every partition of `topic`, each from its first offset.
PartitionList AllPartitions(rd_kafka_t* rk, const std::string& topic, Clock::time_point deadline) {
  PartitionList list;
  PollTopic(rk, topic, deadline, [&](const rd_kafka_metadata_topic_t& t, std::string& why) {
    why = "no partitions";
    if (t.partition_cnt == 0) return false;
    list.reset(rd_kafka_topic_partition_list_new(t.partition_cnt));
    for (int i = 0; i < t.partition_cnt; ++i) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), t.partitions[i].id)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
    return true;
  });
  return list;
}

int Consume(const ConsumeArgs& args) {
  const auto deadline = DeadlineAfter(args.timeout);
  Conf conf = NewConf(args.bootstrap);
  // Without --group the group id only satisfies librdkafka: offsets are assigned, never
  // committed, so every run reads the topic from the start.
  const bool grouped = !args.group.empty();
  Set(conf.get(), "group.id",
      grouped ? args.group
              : fmt::format("vigil-kafka-tool-{}-{}", getpid(),
                            Clock::now().time_since_epoch().count()));
  Set(conf.get(), "enable.auto.commit", grouped ? "true" : "false");
  Set(conf.get(), "auto.offset.reset", "earliest");
  Set(conf.get(), "enable.partition.eof", "false");
  // librdkafka defaults to read_committed; say which one explicitly.
  Set(conf.get(), "isolation.level", args.read_committed ? "read_committed" : "read_uncommitted");
  // A measuring consumer must not add latency of its own: librdkafka's default lets the broker
  // hold a fetch for up to 500 ms while nothing new is committed.
  Set(conf.get(), "fetch.wait.max.ms", "10");
  Handle rk = NewHandle(RD_KAFKA_CONSUMER, std::move(conf));
  rd_kafka_poll_set_consumer(rk.get());

  if (grouped) {
    PartitionList topics{rd_kafka_topic_partition_list_new(1)};
    rd_kafka_topic_partition_list_add(topics.get(), args.topic.c_str(), RD_KAFKA_PARTITION_UA);
    if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk.get(), topics.get())) {
      throw ToolError(fmt::format("subscribing to {}: {}", args.topic, rd_kafka_err2str(err)));
    }
  } else {
    PartitionList partitions = AllPartitions(rk.get(), args.topic, deadline);
    if (rd_kafka_resp_err_t err = rd_kafka_assign(rk.get(), partitions.get())) {
      throw ToolError(fmt::format("assigning {}: {}", args.topic, rd_kafka_err2str(err)));
    }
  }

  std::unique_ptr<FILE, decltype(&fclose)> file{nullptr, fclose};
  FILE* out = stdout;
  if (args.out != "-") {
    file.reset(std::fopen(args.out.c_str(), "wb"));
    if (!file) throw ToolError(fmt::format("cannot write {}", args.out));
    out = file.get();
  }

  std::optional<Latencies> latencies;
  if (!args.latency_field.empty())
    latencies.emplace(args.latency_field, args.latency_at_receipt, args.latency_skip,
                      args.latency_by_second);
  int64_t read = 0;
  std::string last_error;
  auto poll_until = [&](Clock::time_point until, int64_t limit) {
    while (read < limit) {
      const int wait_ms = RemainingMs(until, 100);
      if (wait_ms == 0) break;
      Message msg{rd_kafka_consumer_poll(rk.get(), wait_ms)};
      if (!msg) continue;
      if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const std::string error = rd_kafka_message_errstr(msg.get());
        if (error != last_error) fmt::print(stderr, "kafka-tool: consumer: {}\n", error);
        last_error = error;
        continue;
      }
      std::fwrite(msg->payload, 1, msg->len, out);
      std::fputc('\n', out);
      if (latencies) latencies->Add(msg.get());
      ++read;
    }
  };
  poll_until(deadline, args.expect);
  const bool in_time = read >= args.expect;
  if (in_time) poll_until(DeadlineAfter(args.grace), INT64_MAX);  // anything beyond N is wrong
  std::fflush(out);
  rd_kafka_consumer_close(rk.get());
  if (latencies) latencies->Print();

  if (read == args.expect || (args.at_least && in_time)) {
    fmt::print(stderr, "kafka-tool: consumed {} messages from {}\n", read, args.topic);
    return 0;
  }
  if (in_time) {
    fmt::print(stderr, "kafka-tool: consumed {} messages from {}, expected {}: {} more arrived\n",
               read, args.topic, args.expect, read - args.expect);
  } else {
    fmt::print(stderr, "kafka-tool: consumed {} of {} expected messages from {} in {}s\n", read,
               args.expect, args.topic, args.timeout);
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "A Kafka client for Vigil's tests: waits for a broker, creates topics, produces JSON "
      "lines, consumes a topic back. Start a broker with scripts/kafka-broker; its DIR/bootstrap "
      "holds the address to pass as --bootstrap.",
      "vigil_kafka_tool"};
  app.require_subcommand(1);
  app.footer("Exit codes: 0 ok; 1 timeout, failed delivery or wrong count; 2 bad usage.");

  WaitReadyArgs ready;
  CLI::App* ready_cmd =
      app.add_subcommand("wait-ready", "Repeat a metadata request until the broker answers");
  ready_cmd->add_option("-b,--bootstrap", ready.bootstrap, "Broker address host:port")->required();
  ready_cmd->add_option("--timeout", ready.timeout, "Give up after S seconds")->default_val(30);
  ready_cmd->add_option("--brokers", ready.brokers, "Wait until this many brokers are listed")
      ->default_val(1);
  ready_cmd->add_option("--cluster-id", ready.cluster_id,
                        "Only a broker of this cluster counts (another may hold the address)");

  CreateTopicArgs create;
  CLI::App* create_cmd = app.add_subcommand(
      "create-topic",
      "Create a topic (Admin API) and wait until every partition has a leader. A topic that "
      "already exists with the same partition count is success");
  create_cmd->add_option("-b,--bootstrap", create.bootstrap, "Broker address host:port")
      ->required();
  create_cmd->add_option("-t,--topic", create.topic, "Topic name")->required();
  create_cmd->add_option("-p,--partitions", create.partitions, "Partitions")
      ->default_val(1)
      ->check(CLI::PositiveNumber);
  create_cmd->add_option("--replication", create.replication, "Replication factor")
      ->default_val(1)
      ->check(CLI::PositiveNumber);
  create_cmd->add_flag("--compact", create.compact, "cleanup.policy=compact (a changelog)");
  create_cmd->add_option("--config", create.configs, "Topic setting NAME=VALUE (repeatable)");
  create_cmd->add_option("--timeout", create.timeout, "Give up after S seconds")->default_val(30);

  ProduceArgs produce;
  CLI::App* produce_cmd = app.add_subcommand(
      "produce",
      "Send one message per line of a file (idempotent producer, message time = send time), "
      "wait for every delivery and print how many were delivered. Lines need not be JSON");
  produce_cmd->add_option("-b,--bootstrap", produce.bootstrap, "Broker address host:port")
      ->required();
  produce_cmd->add_option("-t,--topic", produce.topic, "Topic name")->required();
  produce_cmd->add_option("-i,--input", produce.input, "JSON-lines file, or - for stdin")
      ->required();
  produce_cmd->add_option("--key-field", produce.key_field,
                          "Key each message by this top-level JSON field (string or number); "
                          "lines without it are sent without a key");
  produce_cmd->add_option("--rate", produce.rate, "Pace to N messages per second (0: unpaced)")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  produce_cmd
      ->add_option("--count", produce.count,
                   "Send N messages, starting over at the file's top if it has fewer lines "
                   "(0: each line once)")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  produce_cmd->add_option("--timeout", produce.timeout, "Delivery timeout in seconds")
      ->default_val(60);
  auto* txn = produce_cmd->add_option(
      "--transactional-id", produce.transactional_id,
      "Send everything in one Kafka transaction with this transactional.id, then commit it");
  produce_cmd
      ->add_flag("--abort", produce.abort,
                 "Abort the transaction instead (read_committed consumers never see it)")
      ->needs(txn);

  ConsumeArgs consume;
  CLI::App* consume_cmd = app.add_subcommand(
      "consume",
      "Read a topic from the start of every partition until N messages arrived, then wait "
      "--grace seconds for any extra one. Exit 0 only if exactly N were read");
  consume_cmd->add_option("-b,--bootstrap", consume.bootstrap, "Broker address host:port")
      ->required();
  consume_cmd->add_option("-t,--topic", consume.topic, "Topic name")->required();
  consume_cmd->add_option("-n,--expect", consume.expect, "Messages expected")
      ->required()
      ->check(CLI::NonNegativeNumber);
  consume_cmd->add_option("--timeout", consume.timeout, "Give up after S seconds")->default_val(60);
  consume_cmd->add_option("--grace", consume.grace, "Seconds to watch for extra messages")
      ->default_val(2);
  consume_cmd->add_flag("--at-least", consume.at_least,
                        "N or more messages is success (reads on for --grace seconds after N)");
  consume_cmd->add_flag("--read-committed", consume.read_committed,
                        "isolation.level=read_committed: skip aborted and open transactions");
  consume_cmd->add_option("-o,--out", consume.out, "Write each value as one line to FILE")
      ->default_val("-");
  consume_cmd->add_option("--group", consume.group,
                          "Join consumer group G (subscribe, commit offsets) instead of reading "
                          "every partition from the start");
  consume_cmd->add_option("--latency-field", consume.latency_field,
                          "Print p50/p99/p999 of each message's Kafka timestamp minus this "
                          "top-level JSON field (milliseconds since the Unix epoch); @timestamp: "
                          "from the message's own timestamp to its receipt (the broker path)");
  consume_cmd->add_flag("--latency-at-receipt", consume.latency_at_receipt,
                        "With --latency-field: measure from the field to the moment the message "
                        "is received (with --read-committed: to its transaction's commit)");
  consume_cmd->add_option("--latency-skip", consume.latency_skip,
                          "With --latency-field: leave the first N messages out (warm-up)");
  consume_cmd->add_flag("--latency-by-second", consume.latency_by_second,
                        "With --latency-field: also print each second's count, median and max");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  try {
    if (*ready_cmd) return WaitReady(ready);
    if (*create_cmd) return CreateTopic(create);
    if (*produce_cmd) return Produce(produce);
    if (*consume_cmd) return Consume(consume);
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr, "kafka-tool: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kafka-tool: {}\n", e.what());
    return 1;
  }
  return 2;
}
