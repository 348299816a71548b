#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "vigil/api/auth.h"
#include "vigil/api/event_stream.h"
#include "vigil/sink/summary.h"

namespace vigil::api {

// What the server reports, supplied by the application. All callbacks are called on the
// server's threads and must be thread-safe.
struct Sources {
  std::function<sink::RunSummary()> summary;  // the run's counters so far
  std::function<bool()> ready;                // the pipeline is processing events
  std::function<uint64_t()> rules_version;    // the rule set in force (0: none)
  std::string alerts_db;                      // the alert store to serve (empty: none)
  std::string pipeline;                       // name, for /api/pipeline and labels
  int workers = 0;
  // Who may call what (api/auth.h). Empty: reads are open to loopback clients only and every
  // write endpoint answers 403.
  TokenTable tokens;
  // Reloads the rules now: "" on success, else why the old rules stay (null: no rules).
  std::function<std::string()> reload_rules;
  // The rule set in force as JSON with its hits so far, for GET /api/rules (null: no rules).
  std::function<std::string(const sink::RunSummary&)> rules_json;
  // The model's path and metadata as JSON, for GET /api/model (empty: no model).
  std::string model_json;
  // The live feed of GET /api/stream (null: none). Shared: the application publishes into it
  // and the server's request threads read it, and either may outlast the other's use.
  std::shared_ptr<EventStream> stream;
  // HTTPS (OpenSSL): PEM certificate chain and private key files. Both empty: plain HTTP.
  std::string tls_cert;
  std::string tls_key;
};

// ApiServer is Vigil's HTTP endpoint (cpp-httplib): /healthz, /readyz, /metrics (Prometheus
// text format) and the JSON API of docs/api.md: alerts, cases, dispositions and the audit log
// (in the alert store's database, through its own connection), rules and model. Requests carry
// `Authorization: Bearer TOKEN`, checked against Sources::tokens by role. It runs on its own
// thread pool, reads the run through `Sources`, and never blocks the pipeline (its database
// writes are short transactions with a busy timeout). Started once, stopped by Stop() or the
// destructor. Thread-safe.
class ApiServer {
 public:
  // Throws std::runtime_error when Sources::tls_cert/tls_key cannot be loaded.
  explicit ApiServer(Sources sources);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Listens on "HOST:PORT" (port 0: any free one). Returns the bound "HOST:PORT"; throws
  // std::runtime_error naming the address when it cannot listen.
  std::string Start(const std::string& listen);
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The Prometheus text exposition of a run's counters (for /metrics and tests); the checkpoint
// age is measured to `now_unix_us` (wall clock, microseconds; the first form: now).
std::string PrometheusText(const sink::RunSummary& s, const Sources& sources);
std::string PrometheusText(const sink::RunSummary& s, const Sources& sources, int64_t now_unix_us);

}  // namespace vigil::api
