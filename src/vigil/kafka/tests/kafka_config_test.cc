#include "vigil/kafka/kafka_config.h"

#include <cstdlib>

#include <gtest/gtest.h>

#include "vigil/config/pipeline.h"
#include "vigil/kafka/kafka_client.h"
#include "vigil/kafka/state_topic.h"

namespace vigil::kafka {
namespace {

constexpr const char* kBase = R"(name: t
input:
  format: jsonl
  fields:
    - {name: id, type: string}
    - {name: ts, type: timestamp}
    - {name: card, type: string}
event: {id: id, time: ts, key: card}
)";

config::Pipeline Load(const std::string& kafka) {
  return config::LoadPipelineText(std::string(kBase) + kafka, "p.yaml");
}

std::string ErrorOf(const std::string& kafka) {
  try {
    LoadKafkaConfig(Load(kafka));
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(KafkaConfig, AbsentSectionMeansFiles) { EXPECT_FALSE(LoadKafkaConfig(Load(""))); }

TEST(KafkaConfig, ReadsTheSection) {
  const auto c = LoadKafkaConfig(Load(R"(kafka:
  brokers: 127.0.0.1:9092
  group: g1
  topics: [payments, transfers]
  outputs: {decisions: d, dead_letters: dl, alerts: a}
  commit_interval: 250ms
  instance: east-1
  properties: {security.protocol: plaintext, socket.timeout.ms: 5000}
  producer_properties: {linger.ms: 1}
)"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->brokers, "127.0.0.1:9092");
  EXPECT_EQ(c->group, "g1");
  EXPECT_EQ(c->topics, (std::vector<std::string>{"payments", "transfers"}));
  EXPECT_EQ(c->decisions_topic, "d");
  EXPECT_EQ(c->alerts_topic, "a");
  EXPECT_EQ(c->late_topic, "dl");  // late events go with the dead letters unless named
  EXPECT_EQ(c->commit_interval_us, 250'000);
  EXPECT_EQ(c->instance, "east-1");
  EXPECT_TRUE(c->exactly_once);
  EXPECT_TRUE(c->pace_producer);  // the default
  ASSERT_GE(c->properties.size(), 2u);
  EXPECT_EQ(c->properties[0],
            (std::pair<std::string, std::string>{"security.protocol", "plaintext"}));
  EXPECT_EQ(c->producer_properties.size(), 1u);
}

TEST(KafkaConfig, ErrorsNameTheLineAndWhatWasExpected) {
  const std::string e = ErrorOf(R"(kafka:
  group: g
  topics: [t]
  outputs: {decisions: d}
  commit_interval: soon
  propertes: {}
)");
  EXPECT_NE(e.find("p.yaml:13"), std::string::npos) << e;  // the misspelt key
  EXPECT_NE(e.find("propertes"), std::string::npos) << e;
  EXPECT_NE(e.find("kafka.outputs"), std::string::npos) << e;  // dead_letters missing
  EXPECT_NE(e.find("dead_letters"), std::string::npos) << e;
  EXPECT_NE(e.find("kafka.commit_interval"), std::string::npos) << e;
  EXPECT_NE(e.find("positive duration"), std::string::npos) << e;
}

TEST(KafkaConfig, TopicsAndGroupAreRequired) {
  const std::string e = ErrorOf("kafka:\n  outputs: {decisions: d, dead_letters: x}\n");
  EXPECT_NE(e.find("kafka.group"), std::string::npos) << e;
  EXPECT_NE(e.find("kafka.topics"), std::string::npos) << e;
}

TEST(KafkaConfig, EnvironmentSetsBrokersAndSecrets) {
  ::setenv("VIGIL_KAFKA_BROKERS", "10.0.0.1:9093", 1);
  ::setenv("VIGIL_RDKAFKA_SASL_PASSWORD", "s3cret", 1);
  const auto c = LoadKafkaConfig(Load(R"(kafka:
  brokers: 127.0.0.1:9092
  group: g
  topics: t
  outputs: {decisions: d, dead_letters: dl}
)"));
  ::unsetenv("VIGIL_KAFKA_BROKERS");
  ::unsetenv("VIGIL_RDKAFKA_SASL_PASSWORD");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->brokers, "10.0.0.1:9093");
  EXPECT_EQ(c->topics, std::vector<std::string>{"t"});
  const auto it = std::find_if(c->properties.begin(), c->properties.end(),
                               [](const auto& p) { return p.first == "sasl.password"; });
  ASSERT_NE(it, c->properties.end());
  EXPECT_EQ(it->second, "s3cret");
}

TEST(KafkaConfig, StateSnapshotsDefaultOnAndCanBeTurnedOff) {
  const std::string base =
      "kafka:\n  group: g\n  topics: t\n  outputs: {decisions: d, dead_letters: dl}\n";
  const auto on = LoadKafkaConfig(Load(base));
  ASSERT_TRUE(on);
  EXPECT_EQ(on->state_topic, "g-state");
  EXPECT_EQ(on->snapshot_interval_us, 60'000'000);
  EXPECT_NE(on->state_hash, 0u);
  const auto set = LoadKafkaConfig(Load(base + "  state: {topic: s, snapshot_interval: 5s}\n"));
  ASSERT_TRUE(set);
  EXPECT_EQ(set->state_topic, "s");
  EXPECT_EQ(set->snapshot_interval_us, 5'000'000);
  const auto off = LoadKafkaConfig(Load(base + "  state: {snapshot_interval: off}\n"));
  ASSERT_TRUE(off);
  EXPECT_EQ(off->snapshot_interval_us, 0);
  const std::string e = ErrorOf(base + "  state: {snapshot_interval: often, size: 3}\n");
  EXPECT_NE(e.find("kafka.state.snapshot_interval"), std::string::npos) << e;
  EXPECT_NE(e.find("or off"), std::string::npos) << e;
  EXPECT_NE(e.find("size"), std::string::npos) << e;
}

TEST(KafkaConfig, SnapshotsAreCompressedWithLz4UnlessToldOtherwise) {
  const std::string base =
      "kafka:\n  group: g\n  topics: t\n  outputs: {decisions: d, dead_letters: dl}\n";
  const auto plain = LoadKafkaConfig(Load(base));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->state_compression, "lz4");
  const auto zstd = LoadKafkaConfig(Load(base + "  state: {compression: zstd}\n"));
  ASSERT_TRUE(zstd);
  EXPECT_EQ(zstd->state_compression, "zstd");
  const auto none = LoadKafkaConfig(Load(base + "  state: {compression: none}\n"));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->state_compression, "none");
  const std::string e = ErrorOf(base + "  state: {compression: brotli}\n");
  EXPECT_NE(e.find("kafka.state.compression"), std::string::npos) << e;
  EXPECT_NE(e.find("lz4 or zstd"), std::string::npos) << e;
}

TEST(KafkaConfig, ProducerPacingCanBeTurnedOff) {
  const std::string base =
      "kafka:\n  group: g\n  topics: t\n  outputs: {decisions: d, dead_letters: dl}\n";
  const auto off = LoadKafkaConfig(Load(base + "  pace_producer: false\n"));
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->pace_producer);
  const std::string e = ErrorOf(base + "  pace_producer: sometimes\n");
  EXPECT_NE(e.find("pace_producer"), std::string::npos) << e;
}

// Refused before any connection is made, so no broker is needed: Debian's librdkafka 2.0.2
// has known bugs in the cooperative-sticky assignor, and the message says which.
TEST(KafkaSource, RefusesCooperativeRebalancingSayingWhy) {
  const auto c = LoadKafkaConfig(Load(R"(kafka:
  brokers: 127.0.0.1:1
  group: g1
  topics: [payments]
  outputs: {decisions: d, dead_letters: dl}
  consumer_properties: {partition.assignment.strategy: cooperative-sticky}
)"));
  ASSERT_TRUE(c);
  try {
    KafkaSource source(*c, nullptr, 0);
    FAIL() << "a cooperative assignor was accepted";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("partition.assignment.strategy"), std::string::npos) << what;
    EXPECT_NE(what.find("#4312"), std::string::npos) << what;
    EXPECT_NE(what.find("range or roundrobin"), std::string::npos) << what;
  }
}

// A snapshot sent in pieces is cut into the chunks its concatenation would give: whole
// chunks, then the rest, each after the snapshot's id, whatever the pieces' boundaries.
TEST(StateTopic, ChunksAreCutAcrossPieces) {
  const uint64_t id = 0x0123456789abcdefULL;
  const std::string id_bytes(reinterpret_cast<const char*>(&id), sizeof id);
  for (const size_t size : {size_t{1}, kSnapshotChunkBytes - 1, kSnapshotChunkBytes,
                            2 * kSnapshotChunkBytes, 2 * kSnapshotChunkBytes + 1}) {
    std::string whole(size, '\0');
    for (size_t i = 0; i < size; ++i) whole[i] = static_cast<char>('a' + i * 7 % 26);
    const std::string_view w(whole);
    // Boundaries off the chunks' (a 3-byte piece, an empty one, one across a chunk's end).
    const size_t a = std::min<size_t>(3, size), b = std::min(size, kSnapshotChunkBytes + 5);
    const std::vector<std::string_view> pieces = {w.substr(0, a), "", w.substr(a, b - a),
                                                  w.substr(b)};
    std::vector<std::string> chunks;
    const uint32_t n = CutChunks(id, pieces, [&](uint32_t c, std::string_view value) {
      EXPECT_EQ(c, chunks.size());
      chunks.emplace_back(value);
    });
    ASSERT_EQ(n, (size + kSnapshotChunkBytes - 1) / kSnapshotChunkBytes) << size;
    ASSERT_EQ(chunks.size(), n);
    std::string joined;
    for (uint32_t c = 0; c < n; ++c) {
      ASSERT_EQ(chunks[c].substr(0, 8), id_bytes);
      const size_t want = c + 1 < n ? kSnapshotChunkBytes : size - c * kSnapshotChunkBytes;
      EXPECT_EQ(chunks[c].size(), 8 + want) << "chunk " << c << " of " << size << " bytes";
      joined += chunks[c].substr(8);
    }
    EXPECT_EQ(joined, whole) << size;
  }
  EXPECT_EQ(CutChunks(id, {}, [](uint32_t, std::string_view) { FAIL(); }), 0u);
}

TEST(StateTopic, ManifestRoundTripsAndDamageIsRefused) {
  const SnapshotManifest m{0xfeedbeefcafeULL, 123456, 3, 2 * kSnapshotChunkBytes + 10, 42};
  const std::string text = FormatManifest(m);
  const std::optional<SnapshotManifest> back = ParseManifest(text);
  ASSERT_TRUE(back) << text;
  EXPECT_EQ(back->id, m.id);
  EXPECT_EQ(back->offset, m.offset);
  EXPECT_EQ(back->chunks, m.chunks);
  EXPECT_EQ(back->bytes, m.bytes);
  EXPECT_EQ(back->state_hash, m.state_hash);
  EXPECT_FALSE(ParseManifest(""));
  EXPECT_FALSE(ParseManifest("vigil-state 2 1 2 3 4 5"));          // another format version
  EXPECT_FALSE(ParseManifest("vigil-state 1 1 2 3 4"));            // a field short
  EXPECT_FALSE(ParseManifest("vigil-state 1 1 2 3 4 5 6"));        // one too many
  EXPECT_FALSE(ParseManifest("vigil-state 1 1 2 1 999999999 5"));  // more bytes than chunks hold
  EXPECT_EQ(ChunkKey("payments", 3, 7), "payments/3#7");
  EXPECT_EQ(ManifestKey("payments", 3), "payments/3");
}

}  // namespace
}  // namespace vigil::kafka
