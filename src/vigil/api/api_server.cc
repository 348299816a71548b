#include "vigil/api/api_server.h"

#include <httplib.h>

#include <charconv>
#include <optional>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "vigil/common/json.h"
#include "vigil/common/time.h"
#include "vigil/sink/alert_store.h"

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

void Error(httplib::Response& res, int status, std::string_view what) {
  std::string body = "{\"error\":";
  AppendJsonString(body, what);
  body += "}\n";
  res.status = status;
  res.set_content(body, "application/json");
}

// An integer query parameter within [lo, hi]; nullopt (after answering 400) when malformed.
std::optional<int64_t> IntParam(const httplib::Request& req, httplib::Response& res,
                                const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  if (!req.has_param(name)) return fallback;
  const std::string v = req.get_param_value(name);
  int64_t x = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || x < lo || x > hi) {
    Error(res, 400,
          fmt::format("'{}' must be an integer from {} to {}; got '{}'", name, lo, hi, v));
    return std::nullopt;
  }
  return x;
}

}  // namespace

std::string PrometheusText(const sink::RunSummary& s, const Sources& src) {
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
  out += fmt::format("vigil_model_score_psi {}\n", s.ModelPsi());
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
  return out;
}

struct ApiServer::Impl {
  Sources sources;
  httplib::Server server;
  std::thread thread;
};

ApiServer::ApiServer(Sources sources) : impl_(std::make_unique<Impl>()) {
  impl_->sources = std::move(sources);
  httplib::Server& s = impl_->server;
  const Sources& src = impl_->sources;
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  s.Get("/readyz", [&src](const httplib::Request&, httplib::Response& res) {
    const bool ready = src.ready && src.ready();
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready\n", "text/plain");
  });
  s.Get("/metrics", [&src](const httplib::Request&, httplib::Response& res) {
    res.set_content(PrometheusText(src.summary(), src), "text/plain; version=0.0.4");
  });
  s.Get("/api/pipeline", [&src](const httplib::Request&, httplib::Response& res) {
    const sink::RunSummary sum = src.summary();
    std::string body = "{\"pipeline\":";
    AppendJsonString(body, src.pipeline);
    body += fmt::format(",\"workers\":{},\"rules_version\":{},\"summary\":", src.workers,
                        src.rules_version ? src.rules_version() : 0);
    body += sink::SummaryJson(sum);
    body.back() = '}';  // SummaryJson ends with a newline
    body += "\n";
    res.set_content(body, "application/json");
  });
  s.Get("/api/alerts", [&src](const httplib::Request& req, httplib::Response& res) {
    if (src.alerts_db.empty()) return Error(res, 404, "this run keeps no alert store");
    sink::AlertStore::Filter f;
    const auto limit = IntParam(req, res, "limit", 50, 1, 1000);
    const auto offset = IntParam(req, res, "offset", 0, 0, INT32_MAX);
    if (!limit || !offset) return;
    f.limit = *limit;
    f.offset = *offset;
    for (const char* key : {"since", "until"}) {
      if (!req.has_param(key)) continue;
      const auto t = ParseIso8601(req.get_param_value(key));
      if (!t) return Error(res, 400, fmt::format("'{}' must be an ISO-8601 time", key));
      (std::string_view(key) == "since" ? f.since_us : f.until_us) = *t;
    }
    f.rule = req.get_param_value("rule");
    f.entity = req.get_param_value("entity");
    f.outcome = req.get_param_value("outcome");
    if (!f.outcome.empty() && f.outcome != "review" && f.outcome != "block") {
      return Error(res, 400, "'outcome' must be review or block");
    }
    try {
      auto store = sink::AlertStore::Open(src.alerts_db, /*read_only=*/true);
      const auto rows = store->Query(f);
      std::string body = fmt::format("{{\"total\":{},\"limit\":{},\"offset\":{},\"alerts\":[",
                                     store->Count(), f.limit, f.offset);
      for (size_t i = 0; i < rows.size(); ++i) {
        if (i) body += ',';
        body += rows[i].decision;
      }
      body += "]}\n";
      res.set_content(body, "application/json");
    } catch (const std::exception& e) {
      Error(res, 503, e.what());
    }
  });
}

ApiServer::~ApiServer() { Stop(); }

std::string ApiServer::Start(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    const auto [p, ec] =
        std::from_chars(listen.data() + colon + 1, listen.data() + listen.size(), port);
    if (ec != std::errc() || p != listen.data() + listen.size()) port = -1;
  }
  if (colon == std::string::npos || port < 0 || port > 65535) {
    throw std::invalid_argument(
        fmt::format("--listen: expected HOST:PORT like 127.0.0.1:7070; got '{}'", listen));
  }
  const std::string host = listen.substr(0, colon);
  httplib::Server& s = impl_->server;
  const int bound = port == 0 ? s.bind_to_any_port(host) : (s.bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    throw std::runtime_error(
        fmt::format("cannot listen on {}: address in use or not local", listen));
  }
  impl_->thread = std::thread([&s] { s.listen_after_bind(); });
  return fmt::format("{}:{}", host, bound);
}

void ApiServer::Stop() {
  if (impl_->thread.joinable()) {
    impl_->server.stop();
    impl_->thread.join();
  }
}

}  // namespace vigil::api
