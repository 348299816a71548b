// The Prometheus text exposition (format 0.0.4) of a run's counters, served at /metrics.
// Names follow Prometheus conventions: a `vigil_` prefix, `_total` on counters, base units
// (`_seconds`, `_bytes`) in the name, and labels, not names, for variants.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "vigil/api/api_server.h"

namespace vigil::api {

namespace {

// A label value, escaped as the text format wants (\\, \", \n).
std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void Metric(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// A sample value as the text format spells non-finite ones (NaN, +Inf, -Inf).
std::string Value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void Histogram(std::string& out, const char* name, const char* help,
               const sink::LatencyHistogram& h) {
  Metric(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.kBounds.size(); ++i) {
    cumulative += h.counts[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, h.kBounds[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, h.count);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, Value(h.sum), name, h.count);
}

void Stream(std::string& out, const sink::RunSummary::Stream& st) {
  if (!st.partitioned) return;
  if (st.consumer_lag >= 0) {
    Metric(out, "vigil_kafka_consumer_lag_records", "gauge",
           "Records between the assigned partitions' ends and what the run has read.");
    out += fmt::format("vigil_kafka_consumer_lag_records {}\n", st.consumer_lag);
  }
  Metric(out, "vigil_kafka_partitions_assigned", "gauge", "Partitions assigned to this process.");
  out += fmt::format("vigil_kafka_partitions_assigned {}\n", st.partitions);
  Metric(out, "vigil_kafka_rebalances_total", "counter", "Rebalances and rewinds seen.");
  out += fmt::format("vigil_kafka_rebalances_total {}\n", st.rebalances);
  Metric(out, "vigil_kafka_replayed_records_total", "counter",
         "Records replayed to rebuild state after a rebalance or rewind (not counted as read).");
  out += fmt::format("vigil_kafka_replayed_records_total {}\n", st.replayed);
  Metric(out, "vigil_kafka_transactions_total", "counter",
         "Output transactions, by result (committed or aborted).");
  out += fmt::format("vigil_kafka_transactions_total{{result=\"committed\"}} {}\n", st.commits);
  out += fmt::format("vigil_kafka_transactions_total{{result=\"aborted\"}} {}\n", st.aborts);
  Metric(out, "vigil_kafka_last_commit_duration_seconds", "gauge",
         "How long the last transaction commit took.");
  out += fmt::format("vigil_kafka_last_commit_duration_seconds {}\n",
                     Value(st.last_commit_ms / 1000.0));
  Metric(out, "vigil_kafka_last_restore_duration_seconds", "gauge",
         "How long the last state restore (replay up to the committed positions) took.");
  out += fmt::format("vigil_kafka_last_restore_duration_seconds {}\n", Value(st.restore_seconds));
  Metric(out, "vigil_kafka_state_snapshots_total", "counter",
         "Partition state snapshots written to the state topic.");
  out += fmt::format("vigil_kafka_state_snapshots_total {}\n", st.snapshots);
  Metric(out, "vigil_kafka_state_snapshot_bytes_total", "counter",
         "Bytes of partition state snapshots written to the state topic.");
  out += fmt::format("vigil_kafka_state_snapshot_bytes_total {}\n", st.snapshot_bytes);
  Metric(out, "vigil_kafka_state_snapshot_pause_seconds_total", "counter",
         "Time decisions waited while workers copied partition state into snapshots (per turn, "
         "the slowest worker).");
  out += fmt::format("vigil_kafka_state_snapshot_pause_seconds_total {}\n",
                     Value(st.snapshot_pause_seconds));
  Metric(out, "vigil_kafka_state_snapshot_send_seconds_total", "counter",
         "Time the writer spent assembling snapshots and handing them to the producer.");
  out += fmt::format("vigil_kafka_state_snapshot_send_seconds_total {}\n",
                     Value(st.snapshot_send_seconds));
  Metric(out, "vigil_kafka_partitions_restored_from_snapshot_total", "counter",
         "Partitions whose state was restored from a snapshot (then replayed from its offset).");
  out += fmt::format("vigil_kafka_partitions_restored_from_snapshot_total {}\n", st.restored);
  Metric(out, "vigil_kafka_partitions_kept_total", "counter",
         "Partitions a rebalance assigned back that kept their state (nothing restored).");
  out += fmt::format("vigil_kafka_partitions_kept_total {}\n", st.kept);
}

}  // namespace

std::string PrometheusText(const sink::RunSummary& s, const Sources& src) {
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return PrometheusText(s, src, now);
}

std::string PrometheusText(const sink::RunSummary& s, const Sources& src, int64_t now_unix_us) {
  std::string out;
  const std::string input = Label(s.input);
  Metric(out, "vigil_events_read_total", "counter", "Records read from the source.");
  out += fmt::format("vigil_events_read_total{{source=\"{}\"}} {}\n", input, s.read);
  Metric(out, "vigil_events_decided_total", "counter", "Events decided.");
  out += fmt::format("vigil_events_decided_total{{source=\"{}\"}} {}\n", input, s.decided);
  Metric(out, "vigil_events_dead_lettered_total", "counter",
         "Records sent to the dead-letter output, by reason.");
  for (int i = 1; i < decode::kErrcCount; ++i) {
    out += fmt::format("vigil_events_dead_lettered_total{{source=\"{}\",reason=\"{}\"}} {}\n",
                       input, decode::ErrcName(decode::Errc(i)), s.dead_by_reason[i]);
  }
  Metric(out, "vigil_events_duplicate_total", "counter", "Events dropped as duplicates.");
  out += fmt::format("vigil_events_duplicate_total{{source=\"{}\"}} {}\n", input, s.duplicate);
  Metric(out, "vigil_events_late_total", "counter", "Events later than the allowed lateness.");
  out += fmt::format("vigil_events_late_total{{source=\"{}\"}} {}\n", input, s.late);
  Metric(out, "vigil_decisions_total", "counter", "Decisions by outcome.");
  for (int i = 0; i < decide::kOutcomeCount; ++i) {
    out += fmt::format("vigil_decisions_total{{outcome=\"{}\"}} {}\n",
                       decide::OutcomeName(decide::Outcome(i)), s.by_outcome[i]);
  }
  Metric(out, "vigil_rule_hits_total", "counter", "Times each rule fired (shadow rules too).");
  for (const auto& [id, n] : s.rule_hits) {
    out += fmt::format("vigil_rule_hits_total{{rule=\"{}\"}} {}\n", Label(id), n);
  }
  Metric(out, "vigil_state_entities", "gauge", "Entities held by the features stage.");
  out += fmt::format("vigil_state_entities {}\n", s.state_entities);
  Metric(out, "vigil_state_bytes", "gauge", "Bytes of entity state.");
  out += fmt::format("vigil_state_bytes {}\n", s.state_bytes);
  if (!s.state_by_entity.empty()) {
    Metric(out, "vigil_entity_count", "gauge", "Entities held, by entity type.");
    for (const auto& e : s.state_by_entity) {
      out += fmt::format("vigil_entity_count{{entity=\"{}\"}} {}\n", Label(e.name), e.entities);
    }
    Metric(out, "vigil_entity_state_bytes", "gauge", "Bytes of entity state, by entity type.");
    for (const auto& e : s.state_by_entity) {
      out += fmt::format("vigil_entity_state_bytes{{entity=\"{}\"}} {}\n", Label(e.name), e.bytes);
    }
  }
  Metric(out, "vigil_watermark_seconds", "gauge", "Event-time watermark, Unix seconds.");
  out += fmt::format("vigil_watermark_seconds {:.3f}\n",
                     s.watermark_us == INT64_MIN ? 0.0 : static_cast<double>(s.watermark_us) / 1e6);
  Metric(out, "vigil_window_completeness_ratio", "gauge",
         "Share of valid events that arrived before their window closed.");
  out += fmt::format("vigil_window_completeness_ratio {:.6f}\n", s.WindowCompleteness());
  Metric(out, "vigil_model_score_decile_total", "counter",
         "Decisions by the training-score decile their model score fell in.");
  for (size_t i = 0; i < s.model_deciles.size(); ++i) {
    out += fmt::format("vigil_model_score_decile_total{{decile=\"{}\"}} {}\n", i + 1,
                       s.model_deciles[i]);
  }
  Metric(out, "vigil_model_score_psi", "gauge",
         "Population stability index of live model scores against training (NaN: no model).");
  out += fmt::format("vigil_model_score_psi {}\n", Value(s.ModelPsi()));
  Metric(out, "vigil_model_challenger_scored_total", "counter",
         "Decisions the shadow challenger model scored beside the champion.");
  out += fmt::format("vigil_model_challenger_scored_total {}\n", s.challenger_scored);
  Metric(out, "vigil_model_challenger_abs_diff_sum", "counter",
         "Sum of |challenger - champion| probabilities (divide by scored_total: the mean).");
  out += fmt::format("vigil_model_challenger_abs_diff_sum {}\n", s.challenger_abs_diff);
  Metric(out, "vigil_model_challenger_disagree_total", "counter",
         "Decisions whose alert outcome would differ with the challenger in the champion's place.");
  out += fmt::format("vigil_model_challenger_disagree_total {}\n", s.challenger_disagree);
  Metric(out, "vigil_rules_version", "gauge", "Version of the rule set in force.");
  out += fmt::format("vigil_rules_version {}\n", src.rules_version ? src.rules_version() : 0);
  Metric(out, "vigil_workers", "gauge", "Worker threads.");
  out += fmt::format("vigil_workers {}\n", src.workers);
  Histogram(out, "vigil_decision_latency_seconds",
            "From the router reading a record to the writer writing its decision.",
            s.decision_latency);
  Metric(out, "vigil_queue_depth_batches", "gauge",
         "Batches waiting: in each worker's work queue, in the writer's done queue, and done but "
         "held for source order (reorder).");
  for (size_t w = 0; w < s.queues.work.size(); ++w) {
    out += fmt::format("vigil_queue_depth_batches{{queue=\"work\",worker=\"{}\"}} {}\n", w,
                       s.queues.work[w]);
  }
  out += fmt::format("vigil_queue_depth_batches{{queue=\"done\"}} {}\n", s.queues.done);
  out += fmt::format("vigil_queue_depth_batches{{queue=\"reorder\"}} {}\n", s.queues.reorder);
  Metric(out, "vigil_checkpoints_total", "counter", "Checkpoints committed by this run.");
  out += fmt::format("vigil_checkpoints_total {}\n", s.checkpoints);
  if (s.checkpoint_unix_us > 0) {
    Metric(out, "vigil_checkpoint_last_timestamp_seconds", "gauge",
           "When the last checkpoint was committed, Unix seconds.");
    out += fmt::format("vigil_checkpoint_last_timestamp_seconds {:.3f}\n",
                       static_cast<double>(s.checkpoint_unix_us) / 1e6);
    Metric(out, "vigil_checkpoint_age_seconds", "gauge",
           "Seconds since the last checkpoint was committed.");
    out += fmt::format(
        "vigil_checkpoint_age_seconds {:.3f}\n",
        static_cast<double>(std::max<int64_t>(now_unix_us - s.checkpoint_unix_us, 0)) / 1e6);
  }
  Stream(out, s.stream);
  return out;
}

}  // namespace vigil::api
