#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vigil/config/pipeline.h"

namespace vigil::kafka {

using Properties = std::vector<std::pair<std::string, std::string>>;

// The pipeline's `kafka:` section: where a run reads from and writes to when it runs on a
// cluster instead of a file.
struct KafkaConfig {
  std::string brokers;  // bootstrap.servers
  std::string group;    // consumer group: processes with the same group share the partitions
  std::vector<std::string> topics;
  std::string decisions_topic;
  std::string alerts_topic;  // optional: alerts also go here
  std::string dead_letters_topic;
  std::string late_topic;    // optional: late events go to the dead-letter topic
  bool exactly_once = true;  // Kafka transactions; false: at least once
  // How often outputs and offsets commit: the latency to read_committed (docs/kafka.md).
  int64_t commit_interval_us = 25'000;
  // Hand the producer one batch per output partition at a time (internal/pacer.h): the same
  // requests, without librdkafka 2.0's idempotent producer polling its socket while a batch
  // is in flight. false: every message goes straight to librdkafka.
  bool pace_producer = true;
  // Names this process among the group's (its transactional.id is GROUP-INSTANCE): a
  // restarted process with the same instance fences its predecessor at once. Give each
  // process of a group its own.
  std::string instance = "0";
  // Partition state snapshots (kafka.state): every `snapshot_interval_us` each partition's
  // state (entities, dedup ids, event clock) is written to `state_topic` (compacted; created
  // when missing) in the transaction that commits its offsets. An assigned partition is
  // restored from its last snapshot and replays only what came after it. 0: no snapshots
  // (a restore replays the partition from its beginning).
  std::string state_topic;  // default GROUP-state
  int64_t snapshot_interval_us = 60'000'000;
  // The state topic's own compression codec (librdkafka's compression.codec for it alone):
  // snapshots shrink ~3x with lz4, so a turn's transaction carries a third of the bytes.
  std::string state_compression = "lz4";
  uint64_t state_hash = 0;  // the pipeline's state-shaping hash: snapshots of another are ignored
  Properties properties;    // librdkafka settings for both clients
  Properties consumer_properties;  // ... for the consumer only
  Properties producer_properties;  // ... for the producer only
};

// Reads the pipeline's `kafka:` section (nullopt when it has none), then the environment:
// VIGIL_KAFKA_BROKERS replaces `brokers`, and VIGIL_RDKAFKA_<NAME> sets the librdkafka property
// <name> with '_' read as '.' (VIGIL_RDKAFKA_SASL_PASSWORD=... sets sasl.password), so secrets
// stay out of pipeline files. Throws config::ConfigError with file:line for a bad section.
std::optional<KafkaConfig> LoadKafkaConfig(const config::Pipeline& pipeline);

// The properties the environment sets (see LoadKafkaConfig), from `environ`.
Properties PropertiesFromEnvironment();

}  // namespace vigil::kafka
