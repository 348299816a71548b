#include "vigil/kafka/kafka_client.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "vigil/common/thread_name.h"
#include "vigil/kafka/internal/conf.h"
#include "vigil/kafka/internal/pacer.h"
#include "vigil/kafka/state_topic.h"

namespace vigil::kafka {

using internal::MakeConf;
using internal::Set;
using internal::Warn;

namespace {

using Clock = std::chrono::steady_clock;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

// The C callbacks, with the signatures librdkafka wants.
struct Callbacks {
  static void Rebalance(rd_kafka_t*, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t* parts, void* opaque) {
    auto* self = static_cast<KafkaSource*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      self->Assign(parts);
    } else {
      self->Revoke();
    }
  }
  static void Delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    static_cast<KafkaOutputs*>(opaque)->pacer_->OnDelivery(*m);
  }
};

// ---------------------------------------------------------------------------------------------

KafkaSource::KafkaSource(const KafkaConfig& config, const std::atomic<bool>* stop,
                         int64_t idle_exit_us)
    : config_(config), stop_(stop), idle_exit_us_(idle_exit_us) {
  for (const auto& props : {config_.properties, config_.consumer_properties}) {
    for (const auto& [k, v] : props) {
      if (k == "partition.assignment.strategy" && Lower(v).find("cooperative") != std::string::npos)
        throw std::invalid_argument(
            "kafka: partition.assignment.strategy: cooperative rebalancing is refused with "
            "the librdkafka Vigil is built with (Debian 12's 2.0.2: its cooperative-sticky "
            "assignor can crash a consumer closing before its first rebalance, librdkafka "
            "#4312, and loop forever with more members than partitions, #4783); use range or "
            "roundrobin: partitions a rebalance assigns back keep their state either way");
      if (k == "enable.auto.commit" || k == "group.id")
        throw std::invalid_argument(fmt::format(
            "kafka: {} is set by Vigil (offsets are committed with the outputs); remove it", k));
    }
  }
  rd_kafka_conf_t* conf =
      MakeConf(config_,
               {{"auto.offset.reset", "earliest"},
                {"fetch.wait.max.ms", "20"},
                {"isolation.level", config_.exactly_once ? "read_committed" : "read_uncommitted"}},
               config_.consumer_properties, "consumer_properties");
  Set(conf, "group.id", config_.group, "group");
  Set(conf, "enable.auto.commit", "false", "defaults");
  Set(conf, "enable.auto.offset.store", "false", "defaults");
  rd_kafka_conf_set_rebalance_cb(conf, Callbacks::Rebalance);
  rd_kafka_conf_set_opaque(conf, this);
  char err[512];
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw std::invalid_argument(fmt::format("kafka: cannot create the consumer: {}", err));
  }
  rd_kafka_poll_set_consumer(rk_);
  rd_kafka_topic_partition_list_t* topics =
      rd_kafka_topic_partition_list_new(static_cast<int>(config_.topics.size()));
  for (const std::string& t : config_.topics) {
    rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  const rd_kafka_resp_err_t e = rd_kafka_subscribe(rk_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e) {
    rd_kafka_destroy(rk_);
    throw std::runtime_error(fmt::format("kafka: cannot subscribe: {}", rd_kafka_err2str(e)));
  }
  name_ = "kafka:";
  for (size_t i = 0; i < config_.topics.size(); ++i) name_ += (i ? "," : "") + config_.topics[i];
  if (config_.snapshot_interval_us > 0) {
    try {
      state_partitions_ = EnsureStateTopic(rk_, config_);
    } catch (...) {
      rd_kafka_destroy(rk_);
      throw;
    }
  }
  last_record_ = last_stats_ = Clock::now();
}

KafkaSource::~KafkaSource() {
  Close();
  rd_kafka_destroy(rk_);
}

void KafkaSource::Close() {
  if (closed_) return;
  closed_ = true;
  on_rewind_ = nullptr;  // the engine has finished: nothing is in flight
  on_drain_ = nullptr;
  stopping_ = nullptr;
  rd_kafka_consumer_close(rk_);
}

size_t KafkaSource::SlotOf(const char* topic, int32_t partition) {
  const auto t = static_cast<uint32_t>(
      std::find(config_.topics.begin(), config_.topics.end(), topic) - config_.topics.begin());
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].topic == t && slots_[i].partition == partition) return i;
  }
  Partition p;
  p.topic = t;
  p.partition = partition;
  p.name = fmt::format("kafka:{}/{}", topic, partition);
  slots_.push_back(std::move(p));
  return slots_.size() - 1;
}

void KafkaSource::Assign(rd_kafka_topic_partition_list_t* parts) {
  if (on_rewind_) on_rewind_();
  rewound_ = true;
  restore_start_ = Clock::now();  // the restore takes reading snapshots and replaying
  // Where the group's last committed transaction left each partition (stable offsets only:
  // with read_committed the broker waits for transactions still open on them).
  rd_kafka_topic_partition_list_t* committed = rd_kafka_topic_partition_list_copy(parts);
  for (int attempt = 0;; ++attempt) {
    const rd_kafka_resp_err_t e = rd_kafka_committed(rk_, committed, 30000);
    if (!e) break;
    if (attempt == 20 || (stop_ && stop_->load())) {
      rd_kafka_topic_partition_list_destroy(committed);
      throw std::runtime_error(
          fmt::format("kafka: cannot read the group's committed offsets: {}", rd_kafka_err2str(e)));
    }
    Warn(fmt::format("reading committed offsets: {}; retrying", rd_kafka_err2str(e)));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  // A partition the last revoke drained keeps its state when nothing was committed on it
  // since (no other member took it meanwhile): the state is exactly its committed offset's.
  std::vector<bool> keep(static_cast<size_t>(parts->cnt), false);
  for (int i = 0; i < parts->cnt; ++i) {
    const Partition& s = slots_[SlotOf(parts->elems[i].topic, parts->elems[i].partition)];
    keep[static_cast<size_t>(i)] = s.kept_at >= 0 && committed->elems[i].offset == s.kept_at;
  }
  // The latest snapshot of each other partition with committed work: its state is restored
  // from it, and only what came after it is replayed.
  std::vector<WantedState> wanted;
  std::vector<int> wanted_of(static_cast<size_t>(parts->cnt), -1);
  for (int i = 0; state_partitions_ > 0 && i < parts->cnt; ++i) {
    const int64_t c = committed->elems[i].offset;
    if (c <= 0 || keep[static_cast<size_t>(i)]) continue;
    wanted_of[static_cast<size_t>(i)] = static_cast<int>(wanted.size());
    wanted.push_back({parts->elems[i].topic, parts->elems[i].partition, c});
  }
  const std::vector<std::optional<FoundState>> found =
      ReadStates(config_, state_partitions_, wanted, 120'000);
  for (Partition& s : slots_) s.assigned = false;
  restoring_ = false;
  for (int i = 0; i < parts->cnt; ++i) {
    rd_kafka_topic_partition_t& p = parts->elems[i];
    Partition& s = slots_[SlotOf(p.topic, p.partition)];
    s.assigned = true;
    if (keep[static_cast<size_t>(i)]) {  // same salt: the engine keeps its state
      s.replay_until = s.next = s.dispatched = s.kept_at;
      s.restored = nullptr;
      s.replaying = false;
      p.offset = s.kept_at;
      kept_.fetch_add(1);
      continue;
    }
    s.salt = Mix(++salt_counter_) | 1;
    s.replay_until = std::max<int64_t>(committed->elems[i].offset, 0);
    s.next = s.dispatched = -1;  // a revoke before this Next returns has nothing to keep
    s.restored = nullptr;
    int64_t start = 0;
    p.offset = RD_KAFKA_OFFSET_BEGINNING;  // replay to rebuild the partition's state
    if (const int w = wanted_of[static_cast<size_t>(i)]; w >= 0 && found[static_cast<size_t>(w)]) {
      start = found[static_cast<size_t>(w)]->offset;
      s.restored = found[static_cast<size_t>(w)]->bytes;
      p.offset = start;
      restored_.fetch_add(1);
    }
    s.replaying = start < s.replay_until;
    if (s.replaying) restoring_ = true;
  }
  rd_kafka_topic_partition_list_destroy(committed);
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].kept_at = -1;
    if (!slots_[i].assigned) released_.push_back(static_cast<int32_t>(i));
  }
  rd_kafka_assign(rk_, parts);
  last_record_ = Clock::now();
  if (!restoring_ && !wanted.empty()) {  // restored from snapshots, nothing to replay
    restore_seconds_.store(std::chrono::duration<double>(last_record_ - restore_start_).count());
  }
  partitions_.store(parts->cnt);
  rebalances_.fetch_add(1);
}

void KafkaSource::Revoke() {
  // A revoke the group asked for (the assignment is not lost): the engine commits what it has,
  // so each partition's state is its committed offset's and may stay if assigned back.
  const bool drained = on_drain_ && !rd_kafka_assignment_lost(rk_) && on_drain_();
  if (!drained && on_rewind_) on_rewind_();
  rewound_ = true;
  for (Partition& s : slots_) {
    s.kept_at = drained && s.assigned ? s.dispatched : -1;
    s.assigned = false;
  }
  rd_kafka_assign(rk_, nullptr);
  partitions_.store(0);
}

void KafkaSource::Rewind() {
  rd_kafka_topic_partition_list_t* parts = nullptr;
  if (rd_kafka_assignment(rk_, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  for (Partition& s : slots_) s.kept_at = -1;  // the state moved past the committed offsets
  Assign(parts);  // the same partitions, afresh from their committed offsets
  rd_kafka_topic_partition_list_destroy(parts);
}

bool KafkaSource::Next(std::vector<source::Record>& out, size_t max) {
  out.clear();
  buffer_.clear();
  struct Span {
    size_t at, len;
  };
  std::vector<Span> spans;  // where each record's text sits in buffer_
  spans.reserve(max);
  rewound_ = false;
  // Every record returned before this call is in a batch the engine has: a drain at a revoke
  // inside this call decides and commits up to here, not the records this call drops.
  for (Partition& s : slots_) s.dispatched = s.next;
  while (out.size() < max) {
    if ((stop_ && stop_->load()) || (stopping_ && stopping_())) return !out.empty();
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, out.empty() ? 50 : 0);
    if (rewound_) {  // a rebalance inside that poll: what came before it is dropped
      out.clear();
      spans.clear();
      buffer_.clear();
      rewound_ = false;
    }
    const auto now = Clock::now();
    if (now - last_stats_ >= std::chrono::seconds(1)) UpdateStats();
    if (!m) {
      if (!out.empty()) break;
      if (idle_exit_us_ > 0 && partitions_.load() > 0 && !restoring_ &&
          now - last_record_ >= std::chrono::microseconds(idle_exit_us_)) {
        return false;
      }
      continue;
    }
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        Warn(rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    const size_t slot = SlotOf(rd_kafka_topic_name(m->rkt), m->partition);
    Partition& s = slots_[slot];
    if (!s.assigned) {  // fetched before a revoke
      rd_kafka_message_destroy(m);
      continue;
    }
    last_record_ = now;
    source::Record r;
    r.partition = static_cast<int32_t>(slot);
    r.salt = s.salt;
    r.offset = static_cast<uint64_t>(m->offset);
    r.line = static_cast<uint64_t>(m->offset);
    r.replay = m->offset < s.replay_until;
    r.timestamp_ms = rd_kafka_message_timestamp(m, nullptr);
    s.next = m->offset + 1;
    if (r.replay) {
      replayed_.fetch_add(1, std::memory_order_relaxed);
    } else {
      ++read_;
      if (restoring_) UpdateStats();  // may end the restore
    }
    const auto* payload = static_cast<const char*>(m->payload);
    size_t len = m->payload ? m->len : 0;
    // Lines framing: one event per message; a trailing newline is not part of it.
    while (len > 0 && (payload[len - 1] == '\n' || payload[len - 1] == '\r')) --len;
    r.oversize = len > (64u << 20);
    spans.push_back({buffer_.size(), len});
    buffer_.append(payload, len);
    buffer_.append(source::kRecordPadding, '\0');
    rd_kafka_message_destroy(m);
    out.push_back(r);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].text = std::string_view(buffer_.data() + spans[i].at, spans[i].len);
  }
  return true;
}

void KafkaSource::UpdateStats() {
  last_stats_ = Clock::now();
  int64_t lag = 0;
  bool known = false;
  bool restoring = false;
  for (Partition& s : slots_) {
    if (!s.assigned) continue;
    int64_t lo = 0, hi = 0;
    const std::string& topic = config_.topics[s.topic];
    if (rd_kafka_get_watermark_offsets(rk_, topic.c_str(), s.partition, &lo, &hi) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        hi >= 0) {
      known = true;
      lag += std::max<int64_t>(0, hi - std::max(s.next, lo));
    }
    if (restoring_ && s.replaying && s.next < s.replay_until) {
      // Control records (transaction markers) take offsets too: the consumer's position is
      // what says whether the replay has reached the committed offset.
      rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(l, topic.c_str(), s.partition);
      if (rd_kafka_position(rk_, l) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          l->elems[0].offset < s.replay_until) {
        restoring = true;
      }
      rd_kafka_topic_partition_list_destroy(l);
    }
  }
  if (known) lag_.store(lag);
  if (restoring_ && !restoring) {
    restoring_ = false;
    restore_seconds_.store(std::chrono::duration<double>(Clock::now() - restore_start_).count());
  }
}

void KafkaSource::Positions(std::vector<source::PartitionPosition>& out) const {
  out.clear();
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Partition& s = slots_[i];
    if (s.assigned && s.next > s.replay_until) {
      out.push_back({s.topic, s.partition, s.next, static_cast<int32_t>(i)});
    }
  }
}

void KafkaSource::TakeReleased(std::vector<int32_t>& slots) {
  // A partition released and assigned again by a later rebalance inside the same Next is not
  // released: it has a new salt (the engine starts it afresh from its restored state) or its
  // kept one (the engine's state for it stays).
  slots.clear();
  for (const int32_t slot : released_) {
    if (!slots_[static_cast<size_t>(slot)].assigned) slots.push_back(slot);
  }
  released_.clear();
}

std::shared_ptr<const std::string> KafkaSource::RestoredState(int32_t slot) {
  if (slot < 0 || static_cast<size_t>(slot) >= slots_.size()) return nullptr;
  return std::exchange(slots_[static_cast<size_t>(slot)].restored, nullptr);
}

const std::string& KafkaSource::NameOf(const source::Record& r) const {
  return r.partition >= 0 && static_cast<size_t>(r.partition) < slots_.size()
             ? slots_[static_cast<size_t>(r.partition)].name
             : name_;
}

source::SourceStats KafkaSource::Stats() const {
  source::SourceStats s;
  s.lag = lag_.load();
  s.partitions = partitions_.load();
  s.rebalances = rebalances_.load();
  s.replayed = replayed_.load();
  s.restore_seconds = restore_seconds_.load();
  s.restored = restored_.load();
  s.kept = kept_.load();
  return s;
}

// ---------------------------------------------------------------------------------------------

namespace {

// Runs one transactional call, waiting out retriable errors (a broker restarting, a
// coordinator moving). Returns false when the transaction must be aborted; throws on fatal
// errors.
template <typename F>
bool TxnCall(const char* what, F&& call) {
  Clock::time_point last_warning{};
  for (;;) {
    rd_kafka_error_t* e = call();
    if (!e) return true;
    const std::string msg = rd_kafka_error_string(e);
    const bool fatal = rd_kafka_error_is_fatal(e);
    const bool abort = rd_kafka_error_txn_requires_abort(e);
    const bool retriable = rd_kafka_error_is_retriable(e);
    rd_kafka_error_destroy(e);
    if (fatal) throw std::runtime_error(fmt::format("kafka: {}: {} (fatal)", what, msg));
    if (abort) {
      Warn(fmt::format("{}: {}: aborting the transaction", what, msg));
      return false;
    }
    if (!retriable) throw std::runtime_error(fmt::format("kafka: {}: {}", what, msg));
    if (Clock::now() - last_warning > std::chrono::seconds(5)) {
      Warn(fmt::format("{}: {}; waiting for the cluster", what, msg));
      last_warning = Clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

PartitionList OffsetList(const std::vector<std::string>& topics,
                         const std::vector<source::PartitionPosition>& ps) {
  PartitionList l{rd_kafka_topic_partition_list_new(static_cast<int>(ps.size()))};
  for (const auto& p : ps) {
    rd_kafka_topic_partition_list_add(l.get(), topics[p.topic].c_str(), p.partition)->offset =
        p.next_offset;
  }
  return l;
}

}  // namespace

KafkaOutputs::KafkaOutputs(const KafkaConfig& config, const KafkaSource& source)
    : config_(config), source_(source) {
  // Paced, librdkafka gets a partition's batch in one go (internal/pacer.h): lingering longer
  // than the hand-over takes only delays it (bench/RESULTS.md, "Pacing the producer").
  Properties defaults = {{"linger.ms", config_.pace_producer ? "1" : "5"},
                         {"enable.idempotence", "true"}};
  if (config_.exactly_once) {
    // Long enough to ride out a broker restart (librdkafka also times out undelivered
    // messages after it, which dooms the transaction); a crashed process that is not
    // restarted holds read_committed consumers of its partitions back for as long.
    defaults.emplace_back("transaction.timeout.ms", "60000");
    // A transaction's offsets go in right after the last one committed, while the broker may
    // still be writing its markers: it answers CONCURRENT_TRANSACTIONS and librdkafka retries
    // after retry.backoff.ms (100 by default; AddPartitionsToTxn's own retry is 20), which
    // was a 100 ms stall in every such commit.
    defaults.emplace_back("retry.backoff.ms", "10");
  }
  rd_kafka_conf_t* conf =
      MakeConf(config_, defaults, config_.producer_properties, "producer_properties");
  if (config_.exactly_once) {
    Set(conf, "transactional.id", config_.group + "-" + config_.instance, "instance");
  }
  rd_kafka_conf_set_dr_msg_cb(conf, Callbacks::Delivery);
  rd_kafka_conf_set_opaque(conf, this);
  internal::Pacer::Limits limits;
  const auto get = [&](const char* name) {
    char value[256];
    size_t size = sizeof value;
    return rd_kafka_conf_get(conf, name, value, &size) == RD_KAFKA_CONF_OK ? std::string(value)
                                                                           : std::string();
  };
  const auto number = [&](const char* name, size_t fallback) {
    const std::string v = get(name);
    return v.empty() ? fallback : static_cast<size_t>(std::stoull(v));
  };
  limits.batch_bytes =
      std::min(number("batch.size", limits.batch_bytes), number("message.max.bytes", SIZE_MAX));
  limits.batch_messages = number("batch.num.messages", limits.batch_messages);
  const std::string partitioner = get("partitioner");
  bool pace = config_.pace_producer;
  if (!partitioner.empty()) {
    if (internal::Pacer::KnowsPartitioner(partitioner)) {
      limits.partitioner = partitioner;
    } else {
      pace = false;  // librdkafka's own partitioner stays in charge
    }
  }
  char err[512];
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw std::invalid_argument(fmt::format("kafka: cannot create the producer: {}", err));
  }
  pacer_ = std::make_unique<internal::Pacer>(rk_, limits);
  for (const std::string* t : {&config_.decisions_topic, &config_.alerts_topic,
                               &config_.dead_letters_topic, &config_.late_topic}) {
    topics_.push_back(t->empty() ? nullptr : rd_kafka_topic_new(rk_, t->c_str(), nullptr));
  }
  if (source_.StatePartitions() > 0) {
    rd_kafka_topic_conf_t* tc = rd_kafka_topic_conf_new();
    if (rd_kafka_topic_conf_set(tc, "compression.codec", config_.state_compression.c_str(), err,
                                sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_topic_conf_destroy(tc);
      throw std::invalid_argument(fmt::format("kafka.state.compression: {}", err));
    }
    state_topic_ = rd_kafka_topic_new(rk_, config_.state_topic.c_str(), tc);  // takes tc
  }
  if (pace) {
    std::vector<rd_kafka_topic_t*> paced = topics_;
    paced.push_back(state_topic_);
    for (rd_kafka_topic_t* t : paced) {
      if (t && !pacer_->AddTopic(t, 10000)) {
        Warn(fmt::format("{}: its partitions are unknown (does it exist?); it is written unpaced",
                         rd_kafka_topic_name(t)));
      }
    }
  }
  if (config_.exactly_once) {
    // Fences any earlier producer with this transactional.id (a crashed predecessor): its
    // open transaction is aborted before this one starts.
    if (!TxnCall("init_transactions", [&] { return rd_kafka_init_transactions(rk_, 30000); })) {
      throw std::runtime_error("kafka: init_transactions asked for an abort");
    }
    committer_ = std::thread([this] { CommitLoop(); });
  }
}

KafkaOutputs::~KafkaOutputs() {
  if (committer_.joinable()) {
    {
      const std::lock_guard lock(mu_);
      stopping_ = true;
    }
    changed_.notify_all();
    committer_.join();  // after the commit in flight, if any
  }
  if (in_txn_) {
    pacer_->Drop();
    if (rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_, 10000)) rd_kafka_error_destroy(e);
  } else {
    (void)pacer_->AwaitHandedOver(std::chrono::seconds(10));
  }
  rd_kafka_flush(rk_, 10000);
  pacer_->Stop();
  for (rd_kafka_topic_t* t : topics_) {
    if (t) rd_kafka_topic_destroy(t);
  }
  if (state_topic_) rd_kafka_topic_destroy(state_topic_);
  rd_kafka_destroy(rk_);
}

void KafkaOutputs::Begin() {
  if (in_txn_ || !config_.exactly_once) return;
  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(rk_)) {
    const std::string msg = rd_kafka_error_string(e);
    const bool fatal = rd_kafka_error_is_fatal(e);
    rd_kafka_error_destroy(e);
    if (fatal) throw std::runtime_error(fmt::format("kafka: begin_transaction: {}", msg));
    // Still recovering from an abort (a new producer epoch is being fetched): what is sent
    // until the next commit is dropped, and that commit aborts and rewinds.
    Warn(fmt::format("begin_transaction: {}: this transaction will be aborted", msg));
    failed_ = true;
    return;
  }
  in_txn_ = true;
}

namespace {
// How much a commit in flight lets the writer hold before it waits for the commit.
constexpr size_t kMaxHeldBytes = 64u << 20;
constexpr const char* kTxnFailedWarning =
    "the transaction failed: it will be aborted and its events decided again";
}  // namespace

void KafkaOutputs::Send(Stream stream, std::string_view key, std::string_view line) {
  if (rd_kafka_topic_t* t = topics_[static_cast<size_t>(stream)]) {
    Enqueue(t, RD_KAFKA_PARTITION_UA, key, line);
  }
}

void KafkaOutputs::SendSnapshot(const source::PartitionPosition& at,
                                std::span<const std::string_view> pieces) {
  if (!state_topic_) return;
  const std::string& topic = source_.Topics()[at.topic];
  const int32_t to = at.partition % source_.StatePartitions();
  SnapshotManifest m;
  m.id = Mix(++snapshot_counter_ ^ static_cast<uint64_t>(Clock::now().time_since_epoch().count()));
  m.offset = at.next_offset;
  for (const std::string_view p : pieces) m.bytes += p.size();
  m.state_hash = config_.state_hash;
  m.chunks = CutChunks(m.id, pieces, [&](uint32_t c, std::string_view value) {
    Enqueue(state_topic_, to, ChunkKey(topic, at.partition, c), value);
  });
  Enqueue(state_topic_, to, ManifestKey(topic, at.partition), FormatManifest(m));
}

void KafkaOutputs::Enqueue(rd_kafka_topic_s* t, int32_t partition, std::string_view key,
                           std::string_view line) {
  if (config_.exactly_once) {
    std::unique_lock lock(mu_);
    if (in_flight_) {
      if (held_bytes_.size() + key.size() + line.size() <= kMaxHeldBytes) {
        held_.push_back({t, partition, held_bytes_.size(), static_cast<uint32_t>(key.size()),
                         static_cast<uint32_t>(line.size())});
        held_bytes_.append(key);
        held_bytes_.append(line);
        return;
      }
      changed_.wait(lock, [&] { return !in_flight_; });
    }
    if (!last_ok_ || commit_error_) {  // the next Commit reports it; until then, drop
      held_.clear();
      held_bytes_.clear();
      return;
    }
    lock.unlock();
    SendHeld();
  }
  Produce(t, partition, key, line);
}

void KafkaOutputs::SendHeld() {
  const std::string_view bytes = held_bytes_;
  for (const Held& h : held_) {
    Produce(h.topic, h.partition, bytes.substr(h.at, h.key_len),
            bytes.substr(h.at + h.key_len, h.line_len));
  }
  held_.clear();
  held_bytes_.clear();
}

void KafkaOutputs::Produce(rd_kafka_topic_s* t, int32_t partition, std::string_view key,
                           std::string_view line) {
  Begin();
  if (failed_) return;
  switch (pacer_->Send(t, partition, key, line)) {
    case internal::Pacer::Sent::kOk:
      return;
    case internal::Pacer::Sent::kTxnFailed:
      if (config_.exactly_once) {
        // The transaction failed under us (e.g. the broker went away mid-transaction): drop
        // what follows; the next commit aborts and the engine rewinds.
        Warn(kTxnFailedWarning);
        failed_ = true;
        return;
      }
      throw std::runtime_error("kafka: the producer refused a message (state)");
    case internal::Pacer::Sent::kError:
      break;
  }
  throw std::runtime_error("kafka: " + pacer_->Error());
}

// Waits until the pacer has handed everything sent to librdkafka. With exactly once, false
// when the transaction failed meanwhile.
bool KafkaOutputs::HandOverAll() {
  while (!pacer_->AwaitHandedOver(std::chrono::seconds(1))) {
    Warn("waiting for the cluster to take the outputs");
  }
  const std::string error = pacer_->Error();
  if (!error.empty()) throw std::runtime_error("kafka: " + error);
  if (pacer_->TxnFailed()) {
    Warn(kTxnFailedWarning);
    return false;
  }
  return true;
}

bool KafkaOutputs::AwaitCommit(std::unique_lock<std::mutex>& lock) {
  changed_.wait(lock, [&] { return !in_flight_; });
  if (commit_error_) {
    const std::exception_ptr e = commit_error_;
    commit_error_ = nullptr;
    std::rethrow_exception(e);
  }
  const bool ok = last_ok_;
  last_ok_ = true;
  return ok;
}

bool KafkaOutputs::Commit(const std::vector<source::PartitionPosition>& positions) {
  if (!config_.exactly_once) return CommitNow(positions);
  {
    std::unique_lock lock(mu_);
    if (!AwaitCommit(lock)) {
      // The last commit was aborted: what was sent after it belongs to no transaction that
      // can commit. The engine rewinds to the committed positions.
      held_.clear();
      held_bytes_.clear();
      return false;
    }
  }
  SendHeld();  // the transaction now holds everything sent up to `positions`
  {
    const std::lock_guard lock(mu_);
    commit_positions_ = positions;
    in_flight_ = true;
  }
  changed_.notify_all();
  return true;
}

void KafkaOutputs::CommitLoop() {
  NameThisThread("vigil-commit");
  std::unique_lock lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || in_flight_; });
    if (!in_flight_) return;
    const std::vector<source::PartitionPosition> positions = commit_positions_;
    lock.unlock();
    bool ok = false;
    std::exception_ptr error;
    try {
      ok = CommitNow(positions);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    last_ok_ = ok;
    commit_error_ = error;
    in_flight_ = false;
    changed_.notify_all();
  }
}

// Commits what was produced with `positions`: on the commit thread with exactly once (the
// writer produces nothing meanwhile), else on the writer thread.
bool KafkaOutputs::CommitNow(const std::vector<source::PartitionPosition>& positions) {
  const auto t0 = Clock::now();
  const PartitionList list = OffsetList(source_.Topics(), positions);
  rd_kafka_topic_partition_list_t* offsets = list.get();
  bool ok = true;
  if (config_.exactly_once) {
    Begin();  // offsets may move with nothing sent (duplicates only)
    if (failed_) ok = false;
    if (ok) ok = HandOverAll();
    if (ok && offsets->cnt > 0) {
      ok = TxnCall("send_offsets_to_transaction", [&] {
        rd_kafka_consumer_group_metadata_t* md =
            rd_kafka_consumer_group_metadata(source_.Consumer());
        rd_kafka_error_t* e = rd_kafka_send_offsets_to_transaction(rk_, offsets, md, 30000);
        rd_kafka_consumer_group_metadata_destroy(md);
        return e;
      });
    }
    if (ok)
      ok = TxnCall("commit_transaction", [&] { return rd_kafka_commit_transaction(rk_, 30000); });
    if (ok) {
      in_txn_ = false;
      commits_.fetch_add(1);
    } else {
      AbortTxn();
    }
  } else {
    HandOverAll();
    while (rd_kafka_flush(rk_, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
      Warn("waiting for outputs to be delivered");
    }
    const std::string delivery_error = pacer_->DeliveryError();
    if (!delivery_error.empty()) throw std::runtime_error("kafka: " + delivery_error);
    if (offsets->cnt > 0) {
      const rd_kafka_resp_err_t e = rd_kafka_commit(source_.Consumer(), offsets, 0);
      if (e) Warn(fmt::format("committing offsets: {}", rd_kafka_err2str(e)));
    }
    commits_.fetch_add(1);
  }
  last_commit_ms_.store(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  return ok;
}

void KafkaOutputs::Abort() {
  held_.clear();
  held_bytes_.clear();
  if (!config_.exactly_once) return;
  {
    std::unique_lock lock(mu_);
    AwaitCommit(lock);  // an aborted commit is dropped with the rest (and counted already)
  }
  AbortTxn();
}

bool KafkaOutputs::Settle() {
  if (!config_.exactly_once) return true;
  std::unique_lock lock(mu_);
  return AwaitCommit(lock);
}

// Aborts the open transaction, or forgets one that failed before it began. With no commit in
// flight (or on the commit thread).
void KafkaOutputs::AbortTxn() {
  pacer_->Drop();  // what waits here belongs to the transaction being aborted
  const bool failed = failed_;
  failed_ = false;
  if (!in_txn_ && !failed) return;
  if (in_txn_) {
    TxnCall("abort_transaction", [&] { return rd_kafka_abort_transaction(rk_, 30000); });
  }
  in_txn_ = false;
  aborts_.fetch_add(1);
}

}  // namespace vigil::kafka
