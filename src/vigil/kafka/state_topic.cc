#include "vigil/kafka/state_topic.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "vigil/kafka/internal/conf.h"

namespace vigil::kafka {

namespace {

using Clock = std::chrono::steady_clock;
using internal::Warn;

struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
};
using Metadata = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;

// The topic's partition count (0: the cluster does not know the topic).
int PartitionCount(rd_kafka_t* rk, const std::string& name) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, name.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
  rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(
        fmt::format("kafka: reading the metadata of {}: {}", name, rd_kafka_err2str(err)));
  }
  const Metadata owned{md};
  if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
  return md->topics[0].partition_cnt;
}

void CreateCompacted(rd_kafka_t* rk, const std::string& name, int partitions) {
  char err[512];
  rd_kafka_NewTopic_t* t = rd_kafka_NewTopic_new(name.c_str(), partitions, -1, err, sizeof err);
  if (!t) throw std::runtime_error(fmt::format("kafka: state topic {}: {}", name, err));
  // Compacted: the newest snapshot of each partition stays. Segments roll every 10 minutes so
  // the cleaner gets to the older ones.
  for (const auto& [k, v] :
       {std::pair{"cleanup.policy", "compact"}, std::pair{"segment.ms", "600000"},
        std::pair{"min.cleanable.dirty.ratio", "0.1"}}) {
    rd_kafka_NewTopic_set_config(t, k, v);
  }
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, 30000, err, sizeof err);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &t, 1, options, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 40000);
  std::string failure;
  if (!ev) {
    failure = "no answer from the cluster";
  } else if (rd_kafka_event_error(ev)) {
    failure = rd_kafka_event_error_string(ev);
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** r =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(r[i]);
      if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        const char* m = rd_kafka_topic_result_error_string(r[i]);
        failure = m ? m : rd_kafka_err2str(e);
      }
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(t);
  if (!failure.empty()) {
    throw std::runtime_error(
        fmt::format("kafka: cannot create the state topic {}: {} (create it, compacted, or set "
                    "kafka.state.snapshot_interval: off)",
                    name, failure));
  }
}

bool ParseU64(std::string_view s, uint64_t& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

namespace {

// Appends bytes [from, from + n) of the concatenation of `pieces` to `out`. A range past
// their end is a caller's bug; thrown, not asserted, so a run fails instead of sending a
// short snapshot.
void AppendSlice(std::span<const std::string_view> pieces, size_t from, size_t n,
                 std::string& out) {
  for (const std::string_view p : pieces) {
    if (n == 0) return;
    if (from >= p.size()) {
      from -= p.size();
      continue;
    }
    const std::string_view take = p.substr(from, n);
    out.append(take);
    n -= take.size();
    from = 0;
  }
  if (n > 0) throw std::out_of_range("AppendSlice: past the end of the pieces");
}

}  // namespace

uint32_t CutChunks(uint64_t id, std::span<const std::string_view> pieces,
                   const std::function<void(uint32_t, std::string_view)>& send) {
  size_t bytes = 0;
  for (const std::string_view p : pieces) bytes += p.size();
  const auto chunks =
      static_cast<uint32_t>((bytes + kSnapshotChunkBytes - 1) / kSnapshotChunkBytes);
  std::string chunk;
  for (uint32_t c = 0; c < chunks; ++c) {
    const size_t from = size_t{c} * kSnapshotChunkBytes;
    chunk.assign(reinterpret_cast<const char*>(&id), sizeof id);
    AppendSlice(pieces, from, std::min(kSnapshotChunkBytes, bytes - from), chunk);
    send(c, chunk);
  }
  return chunks;
}

std::string ManifestKey(std::string_view topic, int32_t partition) {
  return fmt::format("{}/{}", topic, partition);
}

std::string ChunkKey(std::string_view topic, int32_t partition, uint32_t chunk) {
  return fmt::format("{}/{}#{}", topic, partition, chunk);
}

std::string FormatManifest(const SnapshotManifest& m) {
  return fmt::format("vigil-state 1 {} {} {} {} {}", m.id, m.offset, m.chunks, m.bytes,
                     m.state_hash);
}

std::optional<SnapshotManifest> ParseManifest(std::string_view value) {
  constexpr std::string_view kPrefix = "vigil-state 1 ";
  if (!value.starts_with(kPrefix)) return std::nullopt;
  value.remove_prefix(kPrefix.size());
  uint64_t f[5];
  for (int i = 0; i < 5; ++i) {
    const size_t sp = value.find(' ');
    if ((sp == std::string_view::npos) != (i == 4)) return std::nullopt;
    if (!ParseU64(value.substr(0, sp), f[i])) return std::nullopt;
    value.remove_prefix(i == 4 ? value.size() : sp + 1);
  }
  if (f[2] > (uint64_t{1} << 20) || f[3] > f[2] * kSnapshotChunkBytes) return std::nullopt;
  return SnapshotManifest{f[0], static_cast<int64_t>(f[1]), static_cast<uint32_t>(f[2]), f[3],
                          f[4]};
}

int EnsureStateTopic(rd_kafka_t* rk, const KafkaConfig& config) {
  if (const int n = PartitionCount(rk, config.state_topic); n > 0) return n;
  int partitions = 1;
  for (const std::string& t : config.topics)
    partitions = std::max(partitions, PartitionCount(rk, t));
  CreateCompacted(rk, config.state_topic, partitions);
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (const int n = PartitionCount(rk, config.state_topic); n > 0) return n;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error(fmt::format("kafka: the state topic {} was created but does not show up",
                                       config.state_topic));
}

std::vector<std::optional<FoundState>> ReadStates(const KafkaConfig& config, int state_partitions,
                                                  const std::vector<WantedState>& wanted,
                                                  int timeout_ms) {
  std::vector<std::optional<FoundState>> found(wanted.size());
  if (wanted.empty() || state_partitions <= 0) return found;
  std::map<std::string, size_t, std::less<>> index;  // manifest key -> wanted
  std::vector<int32_t> read;                         // state partitions to read
  for (size_t i = 0; i < wanted.size(); ++i) {
    index.emplace(ManifestKey(wanted[i].topic, wanted[i].partition), i);
    read.push_back(wanted[i].partition % state_partitions);
  }
  std::sort(read.begin(), read.end());
  read.erase(std::unique(read.begin(), read.end()), read.end());

  // A consumer of its own that joins no group: it reads committed snapshots only.
  rd_kafka_conf_t* conf = internal::MakeConf(config, {{"fetch.wait.max.ms", "10"}},
                                             config.consumer_properties, "consumer_properties");
  internal::Set(conf, "group.id", config.group + "-state-reader", "group");
  internal::Set(conf, "enable.auto.commit", "false", "defaults");
  internal::Set(conf, "enable.partition.eof", "true", "defaults");
  internal::Set(conf, "isolation.level", "read_committed", "defaults");
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(fmt::format("kafka: cannot create the state reader: {}", err));
  }
  rd_kafka_topic_partition_list_t* parts =
      rd_kafka_topic_partition_list_new(static_cast<int>(read.size()));
  for (int32_t p : read) {
    rd_kafka_topic_partition_list_add(parts, config.state_topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);

  std::vector<std::optional<SnapshotManifest>> manifests(wanted.size());
  std::map<std::string, std::string, std::less<>> chunks;  // key -> value (id + bytes)
  size_t at_end = 0;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (at_end < read.size()) {
    if (Clock::now() > deadline) {
      Warn(fmt::format("reading {} took longer than {} ms: restoring by replay instead",
                       config.state_topic, timeout_ms));
      rd_kafka_consumer_close(rk);
      rd_kafka_destroy(rk);
      return std::vector<std::optional<FoundState>>(wanted.size());
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ++at_end;
    } else if (m->err) {
      Warn(fmt::format("reading {}: {}", config.state_topic, rd_kafka_message_errstr(m)));
    } else if (m->key) {
      const std::string_view key(static_cast<const char*>(m->key), m->key_len);
      const std::string_view value(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
      const size_t hash = key.rfind('#');
      const auto it = index.find(key.substr(0, hash));
      if (it != index.end()) {
        if (hash == std::string_view::npos) {
          manifests[it->second] = ParseManifest(value);  // a tombstone clears it
        } else if (value.empty()) {
          chunks.erase(std::string(key));
        } else {
          chunks[std::string(key)] = std::string(value);
        }
      }
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);

  for (size_t i = 0; i < wanted.size(); ++i) {
    const std::optional<SnapshotManifest>& m = manifests[i];
    if (!m) continue;
    const std::string name = ManifestKey(wanted[i].topic, wanted[i].partition);
    if (m->state_hash != config.state_hash) {
      Warn(
          fmt::format("{}: the state snapshot was taken under another pipeline state (features, "
                      "dedup or lateness changed): rebuilding by replay from the start",
                      name));
      continue;
    }
    if (m->offset > wanted[i].committed) {
      // Possible at least once: the snapshot was delivered, its offsets not committed.
      Warn(
          fmt::format("{}: the state snapshot is ahead of the committed offset: rebuilding "
                      "by replay from the start",
                      name));
      continue;
    }
    auto bytes = std::make_shared<std::string>();
    bytes->reserve(m->bytes);
    bool whole = true;
    for (uint32_t c = 0; c < m->chunks && whole; ++c) {
      const auto it = chunks.find(ChunkKey(wanted[i].topic, wanted[i].partition, c));
      uint64_t id = 0;
      if (it == chunks.end() || it->second.size() < sizeof id) {
        whole = false;
        break;
      }
      std::memcpy(&id, it->second.data(), sizeof id);
      whole = id == m->id;
      bytes->append(it->second, sizeof id);
    }
    if (!whole || bytes->size() != m->bytes) {
      Warn(fmt::format("{}: the state snapshot is incomplete: rebuilding by replay from the start",
                       name));
      continue;
    }
    found[i] = FoundState{m->offset, std::move(bytes)};
  }
  return found;
}

}  // namespace vigil::kafka
