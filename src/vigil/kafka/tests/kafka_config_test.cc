#include "vigil/kafka/kafka_config.h"

#include <cstdlib>

#include <gtest/gtest.h>

#include "vigil/config/pipeline.h"

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

}  // namespace
}  // namespace vigil::kafka
