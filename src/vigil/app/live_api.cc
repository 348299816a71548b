#include "vigil/app/live_api.h"

#include <cstdio>

#include <fmt/format.h>

namespace vigil::app {

LiveApi::LiveApi(const std::string& listen, bool explicit_listen, api::Sources sources) {
  if (listen == "none") return;
  sources.summary = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    return latest_;
  };
  sources.ready = [this] { return ready_.load(); };
  stream_ = std::make_shared<api::EventStream>();
  sources.stream = stream_;
  const std::string alerts = sources.alerts_db;
  const size_t tokens = sources.tokens.size();
  const char* scheme = sources.tls_cert.empty() ? "http" : "https";
  server_ = std::make_unique<api::ApiServer>(std::move(sources));
  try {
    const std::string at = server_->Start(listen);
    std::fprintf(stderr,
                 "vigil: serving %s://%s (/metrics, /healthz, /readyz, /api/pipeline, "
                 "/api/stream%s); %s\n",
                 scheme, at.c_str(), alerts.empty() ? "" : ", /api/alerts, /api/cases",
                 tokens == 0
                     ? "no API tokens: loopback reads only, writes refused"
                     : fmt::format("{} API token{}", tokens, tokens == 1 ? "" : "s").c_str());
    std::fprintf(stderr, "vigil: dashboard at %s://%s/%s\n", scheme, at.c_str(),
                 tokens == 0 ? " (read only: no API tokens)" : " (paste an API token there)");
  } catch (const std::runtime_error& e) {
    server_.reset();
    if (explicit_listen) throw;
    std::fprintf(stderr, "vigil: %s: no HTTP API this run (pass --listen HOST:PORT)\n", e.what());
  }
}

LiveApi::~LiveApi() = default;

engine::RunOptions::on_progress_t LiveApi::Wrap(engine::RunOptions::on_progress_t next) {
  return [this, next = std::move(next)](const sink::RunSummary& s, double eps) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      latest_ = s;
    }
    if (server_) stream_->PublishKpi(s, eps);
    if (next) next(s, eps);
  };
}

void LiveApi::Finish(const sink::RunSummary& summary) {
  std::lock_guard<std::mutex> lock(mu_);
  latest_ = summary;
  ready_.store(false);
}

}  // namespace vigil::app
