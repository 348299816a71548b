#include "vigil/sink/summary.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "vigil/common/json.h"
#include "vigil/common/time.h"

namespace vigil::sink {

void RunSummary::Add(const RunSummary& o) {
  read += o.read;
  decided += o.decided;
  dead_lettered += o.dead_lettered;
  duplicate += o.duplicate;
  late += o.late;
  alerts += o.alerts;
  for (size_t i = 0; i < by_outcome.size(); ++i) by_outcome[i] += o.by_outcome[i];
  for (size_t i = 0; i < dead_by_reason.size(); ++i) dead_by_reason[i] += o.dead_by_reason[i];
  for (const auto& [id, n] : o.rule_hits) rule_hits[id] += n;
  for (size_t i = 0; i < model_deciles.size(); ++i) model_deciles[i] += o.model_deciles[i];
  challenger_scored += o.challenger_scored;
  challenger_abs_diff += o.challenger_abs_diff;
  challenger_disagree += o.challenger_disagree;
  decision_latency.Add(o.decision_latency);
}

double RunSummary::ModelPsi() const {
  uint64_t n = 0;
  for (uint64_t c : model_deciles) n += c;
  if (n == 0) return std::nan("");
  double psi = 0;
  for (uint64_t c : model_deciles) {
    // A floor keeps an empty bin from making the index infinite.
    const double actual = std::max(static_cast<double>(c) / static_cast<double>(n), 1e-4);
    psi += (actual - 0.1) * std::log(actual / 0.1);
  }
  return psi;
}

std::string RuleHitsJson(const RunSummary& s) {
  std::string out = "{";
  for (const auto& [id, n] : s.rule_hits) {
    if (out.size() > 1) out += ',';
    AppendJsonString(out, id);
    out += fmt::format(":{}", n);
  }
  return out + "}";
}

std::string SummaryJson(const RunSummary& s) {
  std::string out = fmt::format(
      "{{\"read\":{},\"decided\":{},\"dead_lettered\":{},\"duplicate\":{},\"late\":{},"
      "\"alerts\":{},\"events_per_second\":{},\"elapsed_seconds\":{:.3f},\"reconciled\":{},"
      "\"completed\":{},\"window_completeness\":{:.6f},\"outcomes\":{{",
      s.read, s.decided, s.dead_lettered, s.duplicate, s.late, s.alerts,
      static_cast<int64_t>(s.EventsPerSecond()), s.elapsed_seconds, s.Reconciles(), s.completed,
      s.WindowCompleteness());
  for (int i = 0; i < decide::kOutcomeCount; ++i) {
    out += fmt::format("{}\"{}\":{}", i ? "," : "", decide::OutcomeName(decide::Outcome(i)),
                       s.by_outcome[i]);
  }
  out += "},\"dead_letter_reasons\":{";
  bool first = true;
  for (int i = 1; i < decode::kErrcCount; ++i) {
    if (!s.dead_by_reason[i]) continue;
    out += fmt::format("{}\"{}\":{}", first ? "" : ",", decode::ErrcName(decode::Errc(i)),
                       s.dead_by_reason[i]);
    first = false;
  }
  out +=
      fmt::format("}},\"state_entities\":{},\"state_bytes\":{}", s.state_entities, s.state_bytes);
  if (!s.state_by_entity.empty()) {
    out += ",\"state_by_entity\":{";
    for (size_t i = 0; i < s.state_by_entity.size(); ++i) {
      const auto& e = s.state_by_entity[i];
      if (i > 0) out += ',';
      AppendJsonString(out, e.name);
      out += fmt::format(":{{\"entities\":{},\"bytes\":{}}}", e.entities, e.bytes);
    }
    out += '}';
  }
  out += ",\"rule_hits\":" + RuleHitsJson(s);
  if (!std::isnan(s.ModelPsi())) out += fmt::format(",\"model_psi\":{:.6f}", s.ModelPsi());
  if (s.stream.partitioned) {
    const auto& k = s.stream;
    out += fmt::format(
        ",\"kafka\":{{\"consumer_lag\":{},\"partitions\":{},\"rebalances\":{},\"replayed\":{},"
        "\"commits\":{},\"aborts\":{},\"last_commit_ms\":{:.3f},\"restore_seconds\":{:.3f},"
        "\"snapshots\":{},\"snapshot_bytes\":{},\"snapshot_pause_seconds\":{:.3f},"
        "\"snapshot_send_seconds\":{:.3f},\"restored_from_snapshot\":{},"
        "\"kept_through_rebalance\":{},\"first_record_seconds\":{:.3f}}}",
        k.consumer_lag, k.partitions, k.rebalances, k.replayed, k.commits, k.aborts,
        k.last_commit_ms, k.restore_seconds, k.snapshots, k.snapshot_bytes,
        k.snapshot_pause_seconds, k.snapshot_send_seconds, k.restored, k.kept,
        k.first_record_seconds);
  }
  if (s.challenger_scored > 0) {
    const double n = static_cast<double>(s.challenger_scored);
    out += fmt::format(
        ",\"challenger\":{{\"scored\":{},\"mean_abs_diff\":{:.6f},\"disagree\":{},"
        "\"disagree_share\":{:.6f}}}",
        s.challenger_scored, s.challenger_abs_diff / n, s.challenger_disagree,
        static_cast<double>(s.challenger_disagree) / n);
  }
  out += ",\"input\":";
  AppendJsonString(out, s.input);
  out += "}\n";
  return out;
}

std::string SummaryText(const RunSummary& s) {
  std::string out = fmt::format(
      "vigil: {} {} records in {:.2f}s ({:.0f} events/s)\n"
      "  decided        {:>12}  (approve {}, review {}, block {})\n"
      "  alerts         {:>12}\n"
      "  dead-lettered  {:>12}\n"
      "  duplicate      {:>12}\n"
      "  late           {:>12}  (window completeness {:.4f}%)\n",
      s.completed ? "read" : "stopped after", s.read, s.elapsed_seconds, s.EventsPerSecond(),
      s.decided, s.by_outcome[0], s.by_outcome[1], s.by_outcome[2], s.alerts, s.dead_lettered,
      s.duplicate, s.late, 100 * s.WindowCompleteness());
  for (int i = 1; i < decode::kErrcCount; ++i) {
    if (s.dead_by_reason[i]) {
      out += fmt::format("    {:<14} {:>10}\n", decode::ErrcName(decode::Errc(i)),
                         s.dead_by_reason[i]);
    }
  }
  if (s.state_entities > 0) {
    out += fmt::format("  state          {:>12} entities, {:.1f} MiB ({:.0f} bytes each)\n",
                       s.state_entities, s.state_bytes / 1048576.0,
                       static_cast<double>(s.state_bytes) / static_cast<double>(s.state_entities));
    for (const auto& e : s.state_by_entity) {
      if (e.entities == 0) continue;
      out += fmt::format("    {:<14} {:>10} entities, {:.1f} MiB ({:.0f} bytes each)\n", e.name,
                         e.entities, e.bytes / 1048576.0,
                         static_cast<double>(e.bytes) / static_cast<double>(e.entities));
    }
  }
  if (s.challenger_scored > 0) {
    const double n = static_cast<double>(s.challenger_scored);
    out += fmt::format(
        "  challenger     mean |score - champion's| {:.4f}; alert would differ on {} of {} "
        "({:.3f}%)\n",
        s.challenger_abs_diff / n, s.challenger_disagree, s.challenger_scored,
        100 * static_cast<double>(s.challenger_disagree) / n);
  }
  if (!s.rule_hits.empty()) {
    out += "  rule hits\n";
    for (const auto& [id, n] : s.rule_hits) out += fmt::format("    {:<28} {:>10}\n", id, n);
  }
  if (s.stream.partitioned) {
    out += fmt::format(
        "  kafka          {:>12} partitions, lag {}, {} commits ({} aborted), {} rebalances, "
        "{} partitions kept their state through them, {} records replayed to restore state "
        "({:.2f}s, {} partitions from snapshots), {} "
        "state snapshots written ({} bytes; decisions paused {:.2f}s for them, sending {:.2f}s), "
        "{}\n",
        s.stream.partitions, s.stream.consumer_lag, s.stream.commits, s.stream.aborts,
        s.stream.rebalances, s.stream.kept, s.stream.replayed, s.stream.restore_seconds,
        s.stream.restored, s.stream.snapshots, s.stream.snapshot_bytes,
        s.stream.snapshot_pause_seconds, s.stream.snapshot_send_seconds,
        s.stream.first_record_seconds < 0
            ? std::string("no new record")
            : fmt::format("first record after {:.2f}s", s.stream.first_record_seconds));
  }
  out += fmt::format("  counters {}: read = decided + dead-lettered + duplicate + late\n",
                     s.Reconciles() ? "reconcile" : "DO NOT RECONCILE");
  return out;
}

std::string ProgressLine(const RunSummary& s, double eps) {
  std::string wm = s.watermark_us > 0 ? FormatIso8601(s.watermark_us).substr(0, 19) : "-";
  std::string line = fmt::format(
      "{:>12} events  {:>10.0f} ev/s  alerts {:<8} dead {:<6} dup {:<6} late {:<6} "
      "watermark {}",
      s.read, eps, s.alerts, s.dead_lettered, s.duplicate, s.late, wm);
  if (s.stream.partitioned) {
    line += fmt::format("  lag {}  commit {:.1f} ms  rebalances {}  snapshots {}",
                        s.stream.consumer_lag, s.stream.last_commit_ms, s.stream.rebalances,
                        s.stream.snapshots);
  }
  return line;
}

}  // namespace vigil::sink
