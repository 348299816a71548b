#include "vigil/kafka/kafka_config.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include <fmt/format.h>

#include "vigil/common/time.h"
#include "vigil/config/internal/reader.h"

extern char** environ;

namespace vigil::kafka {

namespace {

void ReadProperties(config_internal::Reader& r, const YAML::Node& map, const char* key,
                    Properties& out) {
  const YAML::Node n = map[key];
  if (!n) return;
  const std::string where = fmt::format("kafka.{}", key);
  if (!n.IsMap()) {
    r.Fail(n, where, "expected a mapping of librdkafka settings (name: value)");
    return;
  }
  for (const auto& kv : n) {
    if (!kv.second.IsScalar()) {
      r.Fail(kv.second, fmt::format("{}.{}", where, kv.first.Scalar()),
             "expected a scalar value (a string or number)");
      continue;
    }
    out.emplace_back(kv.first.Scalar(), kv.second.Scalar());
  }
}

}  // namespace

Properties PropertiesFromEnvironment() {
  Properties out;
  constexpr std::string_view kPrefix = "VIGIL_RDKAFKA_";
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry(*e);
    if (!entry.starts_with(kPrefix)) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name(entry.substr(kPrefix.size(), eq - kPrefix.size()));
    if (name.empty()) continue;
    for (char& c : name) c = c == '_' ? '.' : static_cast<char>(std::tolower(c));
    out.emplace_back(std::move(name), std::string(entry.substr(eq + 1)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<KafkaConfig> LoadKafkaConfig(const config::Pipeline& pipeline) {
  const YAML::Node k = pipeline.root["kafka"];
  if (!k) return std::nullopt;
  config_internal::Reader r(pipeline.path);
  KafkaConfig c;
  if (!k.IsMap()) {
    r.Fail(k, "kafka", "expected a mapping (brokers, group, topics, outputs, ...)");
    r.Throw();
  }
  r.AllowKeys(
      k, "kafka",
      {"brokers", "group", "topics", "outputs", "exactly_once", "commit_interval", "pace_producer",
       "instance", "state", "properties", "consumer_properties", "producer_properties"});
  r.String(k, "brokers", "kafka", c.brokers, false);
  r.String(k, "group", "kafka", c.group, true);
  r.String(k, "instance", "kafka", c.instance, false);
  r.Bool(k, "exactly_once", "kafka", c.exactly_once, false);
  r.Bool(k, "pace_producer", "kafka", c.pace_producer, false);
  if (const YAML::Node t = k["topics"]) {
    if (t.IsScalar()) {
      c.topics.push_back(t.Scalar());
    } else if (t.IsSequence() && t.size() > 0) {
      for (const auto& item : t) {
        if (item.IsScalar() && !item.Scalar().empty()) {
          c.topics.push_back(item.Scalar());
        } else {
          r.Fail(item, "kafka.topics", "expected a topic name");
        }
      }
    } else {
      r.Fail(t, "kafka.topics", "expected a topic name or a list of them");
    }
  } else {
    r.Fail(k, "kafka.topics", "missing: the topics to read events from");
  }
  if (const YAML::Node o = k["outputs"]; o && o.IsMap()) {
    r.AllowKeys(o, "kafka.outputs", {"decisions", "alerts", "dead_letters", "late"});
    r.String(o, "decisions", "kafka.outputs", c.decisions_topic, true);
    r.String(o, "dead_letters", "kafka.outputs", c.dead_letters_topic, true);
    r.String(o, "alerts", "kafka.outputs", c.alerts_topic, false);
    r.String(o, "late", "kafka.outputs", c.late_topic, false);
  } else {
    r.Fail(o ? o : k, "kafka.outputs",
           "expected a mapping with the topics to write: decisions, dead_letters (alerts and "
           "late are optional)");
  }
  if (const YAML::Node ci = k["commit_interval"]) {
    const std::optional<int64_t> d = ci.IsScalar() ? ParseDuration(ci.Scalar()) : std::nullopt;
    if (!d || *d <= 0) {
      r.Fail(ci, "kafka.commit_interval", "expected a positive duration such as 100ms or 1s");
    } else {
      c.commit_interval_us = *d;
    }
  }
  c.state_topic = c.group + "-state";
  if (const YAML::Node st = k["state"]) {
    if (!st.IsMap()) {
      r.Fail(st, "kafka.state", "expected a mapping (topic, snapshot_interval, compression)");
    } else {
      r.AllowKeys(st, "kafka.state", {"topic", "snapshot_interval", "compression"});
      r.String(st, "topic", "kafka.state", c.state_topic, false);
      if (const YAML::Node co = st["compression"]) {
        const std::string v = co.IsScalar() ? co.Scalar() : "";
        if (v == "none" || v == "gzip" || v == "snappy" || v == "lz4" || v == "zstd") {
          c.state_compression = v;
        } else {
          r.Fail(co, "kafka.state.compression", "expected none, gzip, snappy, lz4 or zstd");
        }
      }
      if (const YAML::Node si = st["snapshot_interval"]) {
        const std::string v = si.IsScalar() ? si.Scalar() : "";
        const std::optional<int64_t> d = ParseDuration(v);
        if (v == "off" || v == "0") {
          c.snapshot_interval_us = 0;
        } else if (!d || *d <= 0) {
          r.Fail(si, "kafka.state.snapshot_interval",
                 "expected a positive duration such as 60s, or off (restore by replaying each "
                 "partition from its beginning)");
        } else {
          c.snapshot_interval_us = *d;
        }
      }
    }
  }
  c.state_hash = pipeline.state_hash;
  ReadProperties(r, k, "properties", c.properties);
  ReadProperties(r, k, "consumer_properties", c.consumer_properties);
  ReadProperties(r, k, "producer_properties", c.producer_properties);
  if (c.late_topic.empty()) c.late_topic = c.dead_letters_topic;
  r.Throw();

  if (const char* b = std::getenv("VIGIL_KAFKA_BROKERS"); b && *b) c.brokers = b;
  for (auto& p : PropertiesFromEnvironment()) c.properties.push_back(std::move(p));
  return c;
}

}  // namespace vigil::kafka
