#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

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
};

// ApiServer is Vigil's HTTP endpoint (cpp-httplib): /healthz, /readyz, /metrics (Prometheus
// text format) and a read-only JSON API (/api/alerts, /api/pipeline). It runs on its own
// thread pool, reads the run through `Sources`, and never blocks the pipeline. Started once,
// stopped by Stop() or the destructor. Thread-safe.
class ApiServer {
 public:
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

// The Prometheus text exposition of a run's counters (for /metrics and tests).
std::string PrometheusText(const sink::RunSummary& s, const Sources& sources);

}  // namespace vigil::api
