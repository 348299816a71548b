#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "vigil/api/api_server.h"
#include "vigil/engine/engine.h"

namespace vigil::app {

// LiveApi serves a run's HTTP API (docs/api.md) on `listen` ("HOST:PORT", port 0: any free
// one; "none": no server): it keeps the latest counters the engine reports once a second and
// answers /metrics, /healthz, /readyz and /api/... from them, and publishes them (and the
// alerts the alert store commits, through alert_listener()) to GET /api/stream. An address given
// explicitly must work (else std::runtime_error); the default one only warns when it is taken, so
// two runs on one machine do not fail. Lives on the main thread for the length of a run.
class LiveApi {
 public:
  LiveApi(const std::string& listen, bool explicit_listen, api::Sources sources);
  ~LiveApi();

  // Wraps the progress callback: records the counters, then calls `next` (may be null).
  engine::RunOptions::on_progress_t Wrap(engine::RunOptions::on_progress_t next);
  // The run is over: the final counters, and /readyz answers 503.
  void Finish(const sink::RunSummary& summary);
  // Where the alert store reports its commits, for GET /api/stream (null without a server).
  sink::AlertListener* alert_listener() { return server_ ? stream_.get() : nullptr; }

 private:
  mutable std::mutex mu_;
  sink::RunSummary latest_;
  std::atomic<bool> ready_{true};
  std::shared_ptr<api::EventStream> stream_;
  std::unique_ptr<api::ApiServer> server_;
};

}  // namespace vigil::app
