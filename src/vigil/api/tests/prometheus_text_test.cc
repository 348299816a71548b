// The /metrics exposition checked as a Prometheus scraper would read it: every sample belongs to
// a family with HELP and TYPE given before it, values parse, and histograms are well formed.
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vigil/api/api_server.h"

namespace vigil::api {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Sample {
  std::string name;
  std::string labels;  // inside the braces, as written
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> type;  // family -> type
  std::set<std::string> help;
  std::vector<Sample> samples;
};

// The family a sample belongs to: a histogram's _bucket/_sum/_count series belong to it.
std::string FamilyOf(const std::string& name, const Exposition& e) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string sfx = suffix;
    if (name.size() > sfx.size() && name.ends_with(sfx)) {
      const std::string base = name.substr(0, name.size() - sfx.size());
      const auto it = e.type.find(base);
      if (it != e.type.end() && it->second == "histogram") return base;
    }
  }
  return name;
}

// Parses `text`, failing the test on anything a scraper would reject or misread.
Exposition Parse(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    EXPECT_FALSE(line.empty()) << "blank line in the exposition";
    if (line.starts_with("# HELP ")) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(e.help.insert(name).second) << "HELP twice for " << name;
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      std::istringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      EXPECT_TRUE(e.type.emplace(name, type).second) << "TYPE twice for " << name;
      EXPECT_TRUE(e.help.count(name)) << "TYPE before HELP for " << name;
      continue;
    }
    Sample s;
    const size_t brace = line.find('{');
    const size_t space = line.rfind(' ');
    if (brace != std::string::npos && brace < space) {
      s.name = line.substr(0, brace);
      const size_t close = line.rfind('}');
      s.labels = line.substr(brace + 1, close - brace - 1);
    } else {
      s.name = line.substr(0, space);
    }
    const std::string v = line.substr(space + 1);
    char* end = nullptr;
    s.value = std::strtod(v.c_str(), &end);
    EXPECT_TRUE(end != v.c_str() && *end == '\0') << "value of: " << line;
    EXPECT_TRUE(s.name.starts_with("vigil_")) << line;
    const std::string family = FamilyOf(s.name, e);
    EXPECT_TRUE(e.type.count(family)) << "no TYPE before the sample: " << line;
    EXPECT_TRUE(e.help.count(family)) << "no HELP before the sample: " << line;
    if (e.type[family] == "counter") {
      EXPECT_TRUE(s.name.ends_with("_total") || s.name.ends_with("_sum")) << line;
    }
    e.samples.push_back(s);
  }
  return e;
}

// Checks a histogram family: le bounds ascending, buckets cumulative, +Inf == _count.
void ExpectHistogram(const Exposition& e, const std::string& name, double want_count) {
  double last_le = -1, last_bucket = 0, inf = -1, count = -1;
  int buckets = 0;
  for (const Sample& s : e.samples) {
    if (s.name == name + "_bucket") {
      ++buckets;
      ASSERT_TRUE(s.labels.starts_with("le=\"")) << s.labels;
      const std::string le = s.labels.substr(4, s.labels.size() - 5);
      EXPECT_GE(s.value, last_bucket) << "buckets not cumulative at le=" << le;
      last_bucket = s.value;
      if (le == "+Inf") {
        inf = s.value;
      } else {
        EXPECT_EQ(inf, -1) << "a bucket after +Inf";
        const double b = std::strtod(le.c_str(), nullptr);
        EXPECT_GT(b, last_le);
        last_le = b;
      }
    } else if (s.name == name + "_count") {
      count = s.value;
    }
  }
  EXPECT_GE(buckets, 2);
  EXPECT_EQ(inf, count) << "+Inf bucket != _count";
  EXPECT_EQ(count, want_count);
}

double Value(const Exposition& e, const std::string& name, const std::string& labels = "") {
  for (const Sample& s : e.samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  ADD_FAILURE() << "no sample " << name << "{" << labels << "}";
  return -1;
}

sink::RunSummary Busy() {
  sink::RunSummary s;
  s.input = "in \"quoted\".jsonl";
  s.read = 100;
  s.decided = 90;
  s.dead_lettered = 10;
  s.rule_hits["velocity"] = 3;
  s.decision_latency.Observe(0.0004, 5);  // first bucket
  s.decision_latency.Observe(0.003, 80);  // le=0.005
  s.decision_latency.Observe(42, 5);      // above 10 s: +Inf only
  s.queues.work = {2, 0, 1};
  s.queues.done = 4;
  s.queues.reorder = 1;
  return s;
}

TEST(PrometheusText, EverySampleHasHelpAndType) {
  Sources src;
  src.workers = 3;
  const Exposition e = Parse(PrometheusText(Busy(), src, 0));
  EXPECT_GT(e.samples.size(), 30u);
}

TEST(PrometheusText, LatencyHistogramIsCumulativeWithInfEqualToCount) {
  const Exposition e = Parse(PrometheusText(Busy(), Sources{}, 0));
  EXPECT_EQ(e.type.at("vigil_decision_latency_seconds"), "histogram");
  ExpectHistogram(e, "vigil_decision_latency_seconds", 90);
  EXPECT_EQ(Value(e, "vigil_decision_latency_seconds_bucket", "le=\"0.001\""), 5);
  EXPECT_EQ(Value(e, "vigil_decision_latency_seconds_bucket", "le=\"0.0025\""), 5);
  EXPECT_EQ(Value(e, "vigil_decision_latency_seconds_bucket", "le=\"0.005\""), 85);
  EXPECT_EQ(Value(e, "vigil_decision_latency_seconds_bucket", "le=\"10\""), 85);
  EXPECT_NEAR(Value(e, "vigil_decision_latency_seconds_sum"), 0.002 + 0.24 + 210, 1e-9);
}

TEST(PrometheusText, EmptyHistogramIsStillValid) {
  const Exposition e = Parse(PrometheusText(sink::RunSummary{}, Sources{}, 0));
  ExpectHistogram(e, "vigil_decision_latency_seconds", 0);
}

TEST(PrometheusText, HistogramAddMergesBuckets) {
  sink::LatencyHistogram a, b;
  a.Observe(0.002);
  b.Observe(0.002, 2);
  b.Observe(20);
  a.Add(b);
  EXPECT_EQ(a.count, 4u);
  EXPECT_EQ(a.counts[1], 3u);  // (0.001, 0.0025]
  EXPECT_EQ(a.counts.back(), 1u);
  a.Observe(0.5, 0);  // no decisions in a batch: nothing observed
  EXPECT_EQ(a.count, 4u);
}

TEST(PrometheusText, QueueDepthsAreLabelledGauges) {
  const Exposition e = Parse(PrometheusText(Busy(), Sources{}, 0));
  EXPECT_EQ(e.type.at("vigil_queue_depth_batches"), "gauge");
  EXPECT_EQ(Value(e, "vigil_queue_depth_batches", "queue=\"work\",worker=\"0\""), 2);
  EXPECT_EQ(Value(e, "vigil_queue_depth_batches", "queue=\"work\",worker=\"2\""), 1);
  EXPECT_EQ(Value(e, "vigil_queue_depth_batches", "queue=\"done\""), 4);
  EXPECT_EQ(Value(e, "vigil_queue_depth_batches", "queue=\"reorder\""), 1);
}

TEST(PrometheusText, StateByEntityTypeIsLabelled) {
  sink::RunSummary s;
  EXPECT_THAT(PrometheusText(s, Sources{}, 0), Not(HasSubstr("vigil_entity_count")));
  s.state_entities = 30;
  s.state_bytes = 5000;
  s.state_by_entity = {{"card", 10, 4000}, {"merchant", 20, 1000}};
  const Exposition e = Parse(PrometheusText(s, Sources{}, 0));
  EXPECT_EQ(e.type.at("vigil_entity_count"), "gauge");
  EXPECT_EQ(Value(e, "vigil_entity_count", "entity=\"card\""), 10);
  EXPECT_EQ(Value(e, "vigil_entity_count", "entity=\"merchant\""), 20);
  EXPECT_EQ(Value(e, "vigil_entity_state_bytes", "entity=\"card\""), 4000);
  EXPECT_EQ(Value(e, "vigil_entity_state_bytes", "entity=\"merchant\""), 1000);
  EXPECT_EQ(Value(e, "vigil_state_bytes"), 5000);
}

TEST(PrometheusText, CheckpointAgeOnlyOnceOneIsCommitted) {
  sink::RunSummary s;
  const std::string none = PrometheusText(s, Sources{}, 5'000'000);
  EXPECT_THAT(none, Not(HasSubstr("vigil_checkpoint_age_seconds")));
  EXPECT_THAT(none, HasSubstr("vigil_checkpoints_total 0\n"));
  s.checkpoints = 2;
  s.checkpoint_unix_us = 1'000'000;
  const Exposition e = Parse(PrometheusText(s, Sources{}, 3'500'000));
  EXPECT_EQ(Value(e, "vigil_checkpoints_total"), 2);
  EXPECT_EQ(Value(e, "vigil_checkpoint_age_seconds"), 2.5);
  EXPECT_EQ(Value(e, "vigil_checkpoint_last_timestamp_seconds"), 1);
}

TEST(PrometheusText, KafkaSeriesOnlyForPartitionedSources) {
  sink::RunSummary s;
  EXPECT_THAT(PrometheusText(s, Sources{}, 0), Not(HasSubstr("vigil_kafka_")));
  s.stream.partitioned = true;
  s.stream.consumer_lag = 1234;
  s.stream.partitions = 6;
  s.stream.rebalances = 2;
  s.stream.replayed = 500;
  s.stream.commits = 40;
  s.stream.aborts = 1;
  s.stream.last_commit_ms = 12.5;
  s.stream.restore_seconds = 0.75;
  s.stream.restored = 3;
  s.stream.kept = 4;
  s.stream.snapshot_pause_seconds = 1.5;
  s.stream.snapshot_send_seconds = 0.25;
  const Exposition e = Parse(PrometheusText(s, Sources{}, 0));
  EXPECT_EQ(Value(e, "vigil_kafka_consumer_lag_records"), 1234);
  EXPECT_EQ(Value(e, "vigil_kafka_partitions_assigned"), 6);
  EXPECT_EQ(Value(e, "vigil_kafka_rebalances_total"), 2);
  EXPECT_EQ(Value(e, "vigil_kafka_replayed_records_total"), 500);
  EXPECT_EQ(Value(e, "vigil_kafka_transactions_total", "result=\"committed\""), 40);
  EXPECT_EQ(Value(e, "vigil_kafka_transactions_total", "result=\"aborted\""), 1);
  EXPECT_EQ(Value(e, "vigil_kafka_last_commit_duration_seconds"), 0.0125);
  EXPECT_EQ(Value(e, "vigil_kafka_last_restore_duration_seconds"), 0.75);
  EXPECT_EQ(Value(e, "vigil_kafka_partitions_restored_from_snapshot_total"), 3);
  EXPECT_EQ(Value(e, "vigil_kafka_partitions_kept_total"), 4);
  EXPECT_EQ(Value(e, "vigil_kafka_state_snapshot_pause_seconds_total"), 1.5);
  EXPECT_EQ(Value(e, "vigil_kafka_state_snapshot_send_seconds_total"), 0.25);
  s.stream.consumer_lag = -1;  // not known yet: no sample rather than a wrong one
  EXPECT_THAT(PrometheusText(s, Sources{}, 0), Not(HasSubstr("vigil_kafka_consumer_lag")));
}

TEST(PrometheusText, NoModelPsiIsSpelledNaN) {
  EXPECT_THAT(PrometheusText(sink::RunSummary{}, Sources{}, 0),
              HasSubstr("vigil_model_score_psi NaN\n"));
}

TEST(PrometheusText, LabelValuesAreEscaped) {
  EXPECT_THAT(PrometheusText(Busy(), Sources{}, 0),
              HasSubstr("vigil_events_read_total{source=\"in \\\"quoted\\\".jsonl\"} 100\n"));
}

}  // namespace
}  // namespace vigil::api
