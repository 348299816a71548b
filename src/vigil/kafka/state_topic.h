#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/kafka/kafka_config.h"

struct rd_kafka_s;

namespace vigil::kafka {

// The state topic holds each input partition's latest state snapshot (kafka.state.topic,
// compacted). Input partition P of topic T is kept on state partition P % (its partition
// count), as messages sent in the transaction that commits T/P's offsets:
//   key "T/P#i"  value: the snapshot's id (8 bytes), then chunk i of the snapshot's bytes
//   key "T/P"    value: the manifest, "vigil-state 1 <id> <offset> <chunks> <bytes> <hash>"
// The manifest comes last, so a reader that sees it has seen its chunks; compaction keeps
// the newest message per key, and a chunk whose id is not the manifest's is stale.
inline constexpr size_t kSnapshotChunkBytes = 512 * 1024;

struct SnapshotManifest {
  uint64_t id = 0;
  int64_t offset = 0;  // the input partition's next offset when the snapshot was taken
  uint32_t chunks = 0;
  uint64_t bytes = 0;
  uint64_t state_hash = 0;  // the pipeline's state hash (config::Pipeline::state_hash)
};

std::string ManifestKey(std::string_view topic, int32_t partition);
std::string ChunkKey(std::string_view topic, int32_t partition, uint32_t chunk);
std::string FormatManifest(const SnapshotManifest& m);
std::optional<SnapshotManifest> ParseManifest(std::string_view value);
// Cuts a snapshot, the concatenation of `pieces`, into the state topic's chunks: calls
// send(i, value) for chunk i in order, the value the snapshot's id (8 bytes, host order) then
// the chunk's bytes (kSnapshotChunkBytes, the last one the rest). Returns the chunk count.
uint32_t CutChunks(uint64_t id, std::span<const std::string_view> pieces,
                   const std::function<void(uint32_t, std::string_view)>& send);

// Creates the state topic when it does not exist (compacted; as many partitions as the
// widest input topic, at least 1; the brokers' default replication) and returns its
// partition count. Throws std::runtime_error when it can be neither found nor created.
int EnsureStateTopic(rd_kafka_s* rk, const KafkaConfig& config);

// A partition whose state is wanted, with the group's committed offset for it.
struct WantedState {
  std::string topic;
  int32_t partition = 0;
  int64_t committed = 0;
};
struct FoundState {
  int64_t offset = 0;  // resume reading the input partition here
  std::shared_ptr<const std::string> bytes;
};

// Reads the state topic (read_committed, to its end) and returns, for each wanted partition,
// its latest snapshot that is whole, of this pipeline's state hash and not past the
// committed offset (nullopt: none; the partition is rebuilt from its beginning). Warns on
// stderr about snapshots it has to pass over. Gives up after `timeout_ms` (all nullopt).
std::vector<std::optional<FoundState>> ReadStates(const KafkaConfig& config, int state_partitions,
                                                  const std::vector<WantedState>& wanted,
                                                  int timeout_ms);

}  // namespace vigil::kafka
