#include "vigil/api/api_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <simdjson.h>

#include "vigil/api/internal/ui_assets.h"
#include "vigil/common/json.h"
#include "vigil/common/time.h"
#include "vigil/sink/alert_store.h"
#include "vigil/sink/case_store.h"

namespace vigil::api {

namespace {

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

// A request body parsed as a JSON object, with typed field access that answers 400 naming the
// field and what was expected.
class JsonBody {
 public:
  // False (after answering 400) when the body is not a JSON object.
  bool Parse(const httplib::Request& req, httplib::Response& res) {
    if (req.body.empty()) {
      Error(res, 400, "the request body must be a JSON object; it is empty");
      return false;
    }
    simdjson::dom::element root;
    if (const auto err = parser_.parse(req.body).get(root)) {
      Error(res, 400,
            fmt::format("the request body is not valid JSON: {}", simdjson::error_message(err)));
      return false;
    }
    if (root.get(obj_) != simdjson::SUCCESS) {
      Error(res, 400, "the request body must be a JSON object, e.g. {\"text\": \"...\"}");
      return false;
    }
    return true;
  }
  // A string field: nullopt (after answering 400) when missing but required, or not a string.
  // A missing optional field reads as "".
  std::optional<std::string> String(httplib::Response& res, const char* name, bool required,
                                    const char* expected) {
    simdjson::dom::element v;
    if (obj_[name].get(v) != simdjson::SUCCESS || (!required && v.is_null())) {
      if (!required) return std::string();
      Error(res, 400, fmt::format("missing field '{}': expected {}", name, expected));
      return std::nullopt;
    }
    std::string_view text;
    if (v.get(text) != simdjson::SUCCESS) {
      Error(res, 400, fmt::format("field '{}' must be {}; got {}", name, expected, TypeName(v)));
      return std::nullopt;
    }
    return std::string(text);
  }
  simdjson::dom::object& object() { return obj_; }

  static const char* TypeName(simdjson::dom::element v) {
    switch (v.type()) {
      case simdjson::dom::element_type::ARRAY:
        return "an array";
      case simdjson::dom::element_type::OBJECT:
        return "an object";
      case simdjson::dom::element_type::STRING:
        return "a string";
      case simdjson::dom::element_type::BOOL:
        return "a boolean";
      case simdjson::dom::element_type::NULL_VALUE:
        return "null";
      default:
        return "a number";
    }
  }

 private:
  simdjson::dom::parser parser_;
  simdjson::dom::object obj_;
};

bool IsLoopback(const std::string& addr) {
  return addr == "::1" || addr.starts_with("127.") || addr.starts_with("::ffff:127.");
}

// The id in a path like /api/cases/7 (matches[1]); nullopt after answering 404 when it does not
// fit an int64.
std::optional<int64_t> PathId(const httplib::Request& req, httplib::Response& res) {
  const std::string v = req.matches[1];
  int64_t id = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), id);
  if (ec != std::errc() || p != v.data() + v.size()) {
    Error(res, 404, fmt::format("no case {}", v));
    return std::nullopt;
  }
  return id;
}

constexpr const char* kNoTokens =
    "write endpoints need an API token and this server has none: add api.tokens to the pipeline "
    "(e.g. tokens: [{name: ops, role: admin, token_env: VIGIL_ADMIN_TOKEN}]) or set "
    "VIGIL_API_TOKENS=name:role:token, then send 'Authorization: Bearer TOKEN' (docs/api.md)";

}  // namespace

struct ApiServer::Impl {
  explicit Impl(Sources s) : sources(std::move(s)), owned(MakeServer(sources)), server(*owned) {}
  // An httplib::SSLServer when the sources name a certificate and key, else plain HTTP.
  static std::unique_ptr<httplib::Server> MakeServer(const Sources& s) {
    if (s.tls_cert.empty() && s.tls_key.empty()) return std::make_unique<httplib::Server>();
    auto tls = std::make_unique<httplib::SSLServer>(s.tls_cert.c_str(), s.tls_key.c_str());
    if (!tls->is_valid()) {
      throw std::runtime_error(fmt::format(
          "api.tls: cannot load the certificate {} with the key {} (PEM files, and the key must "
          "match the certificate)",
          s.tls_cert, s.tls_key));
    }
    return tls;
  }
  Sources sources;
  std::unique_ptr<httplib::Server> owned;
  httplib::Server& server;
  std::thread thread;
  std::mutex cases_mu;  // one case-store connection, one request at a time
  std::unique_ptr<sink::CaseStore> cases;
  // Live streams being served: each holds one of cpp-httplib's pool threads, so there are at
  // most kMaxStreams, leaving the rest of the pool to other requests.
  static constexpr int kMaxStreams = 4;
  std::atomic<int> streams{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> listen_returned{false};

  // The caller's token name when it may do what needs `role`; else answers 401 or 403 and
  // returns nullopt.
  std::optional<std::string> Authorize(const httplib::Request& req, httplib::Response& res,
                                       Role role) {
    const TokenTable& tokens = sources.tokens;
    if (tokens.empty()) {
      if (role > Role::kViewer) {
        Error(res, 403, kNoTokens);
        return std::nullopt;
      }
      if (IsLoopback(req.remote_addr)) return "anonymous";
      res.set_header("WWW-Authenticate", "Bearer realm=\"vigil\"");
      Error(res, 401,
            "without API tokens configured only loopback clients may read; configure api.tokens "
            "or VIGIL_API_TOKENS (docs/api.md)");
      return std::nullopt;
    }
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (!header.starts_with(kBearer)) {
      res.set_header("WWW-Authenticate", "Bearer realm=\"vigil\"");
      Error(res, 401, "missing bearer token: send 'Authorization: Bearer TOKEN'");
      return std::nullopt;
    }
    const TokenTable::Entry* who = tokens.Find(std::string_view(header).substr(kBearer.size()));
    if (!who) {
      res.set_header("WWW-Authenticate", "Bearer realm=\"vigil\", error=\"invalid_token\"");
      Error(res, 401, "unknown token");
      return std::nullopt;
    }
    if (who->role < role) {
      Error(res, 403,
            fmt::format("this needs the {} role; token '{}' has {}", RoleName(role), who->name,
                        RoleName(who->role)));
      return std::nullopt;
    }
    return who->name;
  }

  // Runs `f` with the case store (opened on first use), answering 404 without an alert store
  // and 503 when the database cannot be used.
  template <typename F>
  void WithCases(httplib::Response& res, F&& f) {
    if (sources.alerts_db.empty()) return Error(res, 404, "this run keeps no alert store");
    std::lock_guard<std::mutex> lock(cases_mu);
    try {
      if (!cases) cases = sink::CaseStore::Open(sources.alerts_db);
      f(*cases);
    } catch (const std::exception& e) {
      Error(res, 503, e.what());
    }
  }
};

namespace {

// Answers a case-store result: `ok_status` with its JSON, or the error's status.
void Reply(httplib::Response& res, const sink::CaseResult<std::string>& r, int ok_status = 200) {
  if (!r) {
    static constexpr int kStatus[] = {404, 409, 400, 503};
    return Error(res, kStatus[static_cast<int>(r.error().code)], r.error().message);
  }
  res.status = ok_status;
  std::string body = r.value();
  if (!body.ends_with('\n')) body += '\n';
  res.set_content(body, "application/json");
}

}  // namespace

ApiServer::ApiServer(Sources sources) : impl_(std::make_unique<Impl>(std::move(sources))) {
  httplib::Server& s = impl_->server;
  // cpp-httplib's default sets SO_REUSEPORT, with which a second run binds the same port and
  // the kernel splits connections between the two processes (each with its own alert store).
  // SO_REUSEADDR alone still allows a quick restart, and a taken address is reported.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  Impl& im = *impl_;
  const Sources& src = impl_->sources;
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  s.Get("/readyz", [&src](const httplib::Request&, httplib::Response& res) {
    const bool ready = src.ready && src.ready();
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready\n", "text/plain");
  });
  s.Get("/metrics", [&](const httplib::Request& req, httplib::Response& res) {
    if (!im.Authorize(req, res, Role::kViewer)) return;
    res.set_content(PrometheusText(src.summary(), src), "text/plain; version=0.0.4");
  });
  s.Get("/api/pipeline", [&](const httplib::Request& req, httplib::Response& res) {
    if (!im.Authorize(req, res, Role::kViewer)) return;
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
  s.Get("/api/alerts", [&](const httplib::Request& req, httplib::Response& res) {
    if (!im.Authorize(req, res, Role::kViewer)) return;
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
  s.Get(R"(/api/alerts/([^/]+))", [&](const httplib::Request& req, httplib::Response& res) {
    if (!im.Authorize(req, res, Role::kViewer)) return;
    if (src.alerts_db.empty()) return Error(res, 404, "this run keeps no alert store");
    const auto recent = IntParam(req, res, "recent", 10, 0, 100);
    if (!recent) return;
    const std::string id = req.matches[1];
    std::string body;
    try {
      auto store = sink::AlertStore::Open(src.alerts_db, /*read_only=*/true);
      const std::optional<sink::AlertStore::Row> row = store->Get(id);
      if (!row) return Error(res, 404, fmt::format("no alert with event id '{}'", id));
      body = "{\"alert\":" + row->decision + ",\"entity\":";
      AppendJsonString(body, row->entity);
      body += ",\"entity_recent\":[";
      if (*recent > 0) {
        sink::AlertStore::Filter f;
        f.entity = row->entity;
        f.limit = *recent + 1;
        size_t n = 0;
        for (const auto& r : store->Query(f)) {
          if (r.event_id == row->event_id || n == static_cast<size_t>(*recent)) continue;
          body += n++ ? "," : "";
          body += r.decision;
        }
      }
      body += "]";
    } catch (const std::exception& e) {
      return Error(res, 503, e.what());
    }
    im.WithCases(res, [&](sink::CaseStore& c) {
      body += ",\"cases\":" + c.CasesOf(id) + "}\n";
      res.set_content(body, "application/json");
    });
  });

  // Cases.
  s.Post("/api/cases", [&](const httplib::Request& req, httplib::Response& res) {
    const auto who = im.Authorize(req, res, Role::kAnalyst);
    if (!who) return;
    JsonBody body;
    if (!body.Parse(req, res)) return;
    simdjson::dom::element alerts;
    simdjson::dom::array list;
    if (body.object()["alerts"].get(alerts) != simdjson::SUCCESS) {
      return Error(res, 400, "missing field 'alerts': expected a non-empty array of alert ids");
    }
    if (alerts.get(list) != simdjson::SUCCESS || list.size() == 0) {
      return Error(res, 400,
                   fmt::format("field 'alerts' must be a non-empty array of alert ids; got {}",
                               alerts.is_array() ? "an empty array" : JsonBody::TypeName(alerts)));
    }
    std::vector<std::string> ids;
    for (simdjson::dom::element a : list) {
      std::string_view id;
      if (a.get(id) != simdjson::SUCCESS) {
        return Error(res, 400,
                     fmt::format("field 'alerts' must hold alert ids (strings); item {} is {}",
                                 ids.size(), JsonBody::TypeName(a)));
      }
      ids.emplace_back(id);
    }
    const auto title = body.String(res, "title", false, "a string");
    if (!title) return;
    im.WithCases(res, [&](sink::CaseStore& c) { Reply(res, c.Create(ids, *title, *who), 201); });
  });
  s.Get("/api/cases", [&](const httplib::Request& req, httplib::Response& res) {
    if (!im.Authorize(req, res, Role::kViewer)) return;
    sink::CaseStore::CaseFilter f;
    const auto limit = IntParam(req, res, "limit", 50, 1, 1000);
    const auto offset = IntParam(req, res, "offset", 0, 0, INT32_MAX);
    if (!limit || !offset) return;
    f.limit = *limit;
    f.offset = *offset;
    f.status = req.get_param_value("status");
    if (!f.status.empty() && f.status != "open" && f.status != "closed") {
      return Error(res, 400, fmt::format("'status' must be open or closed; got '{}'", f.status));
    }
    f.assignee = req.get_param_value("assignee");
    im.WithCases(res, [&](sink::CaseStore& c) { Reply(res, c.List(f)); });
  });
  s.Get(R"(/api/cases/(\d+))", [&](const httplib::Request& req, httplib::Response& res) {
    if (!im.Authorize(req, res, Role::kViewer)) return;
    const auto id = PathId(req, res);
    if (!id) return;
    im.WithCases(res, [&](sink::CaseStore& c) { Reply(res, c.Get(*id)); });
  });
  s.Post(R"(/api/cases/(\d+)/assign)", [&](const httplib::Request& req, httplib::Response& res) {
    const auto who = im.Authorize(req, res, Role::kAnalyst);
    if (!who) return;
    const auto id = PathId(req, res);
    JsonBody body;
    if (!id || !body.Parse(req, res)) return;
    const auto assignee = body.String(res, "assignee", true, "a string (\"\" to unassign)");
    if (!assignee) return;
    im.WithCases(res, [&](sink::CaseStore& c) { Reply(res, c.Assign(*id, *assignee, *who)); });
  });
  s.Post(R"(/api/cases/(\d+)/comments)", [&](const httplib::Request& req, httplib::Response& res) {
    const auto who = im.Authorize(req, res, Role::kAnalyst);
    if (!who) return;
    const auto id = PathId(req, res);
    JsonBody body;
    if (!id || !body.Parse(req, res)) return;
    const auto text = body.String(res, "text", true, "a non-empty string");
    if (!text) return;
    im.WithCases(res, [&](sink::CaseStore& c) { Reply(res, c.Comment(*id, *text, *who), 201); });
  });
  s.Post(R"(/api/cases/(\d+)/close)", [&](const httplib::Request& req, httplib::Response& res) {
    const auto who = im.Authorize(req, res, Role::kAnalyst);
    if (!who) return;
    const auto id = PathId(req, res);
    JsonBody body;
    if (!id || !body.Parse(req, res)) return;
    const auto disposition =
        body.String(res, "disposition", true, "one of \"fraud\", \"not_fraud\", \"inconclusive\"");
    if (!disposition) return;
    const auto comment = body.String(res, "comment", false, "a string");
    if (!comment) return;
    im.WithCases(
        res, [&](sink::CaseStore& c) { Reply(res, c.Close(*id, *disposition, *comment, *who)); });
  });
  s.Get("/api/audit", [&](const httplib::Request& req, httplib::Response& res) {
    if (!im.Authorize(req, res, Role::kAdmin)) return;
    sink::CaseStore::AuditFilter f;
    const auto limit = IntParam(req, res, "limit", 50, 1, 1000);
    const auto offset = IntParam(req, res, "offset", 0, 0, INT32_MAX);
    if (!limit || !offset) return;
    f.limit = *limit;
    f.offset = *offset;
    f.actor = req.get_param_value("actor");
    f.action = req.get_param_value("action");
    f.object = req.get_param_value("object");
    im.WithCases(res, [&](sink::CaseStore& c) { Reply(res, c.AuditLog(f)); });
  });

  // Rules and model.
  s.Get("/api/rules", [&](const httplib::Request& req, httplib::Response& res) {
    if (!im.Authorize(req, res, Role::kViewer)) return;
    if (!src.rules_json) return Error(res, 404, "this pipeline has no rules");
    res.set_content(src.rules_json(src.summary()), "application/json");
  });
  s.Post("/api/rules/reload", [&](const httplib::Request& req, httplib::Response& res) {
    const auto who = im.Authorize(req, res, Role::kAdmin);
    if (!who) return;
    if (!src.reload_rules) return Error(res, 404, "this pipeline has no rules to reload");
    const uint64_t before = src.rules_version ? src.rules_version() : 0;
    const std::string error = src.reload_rules();
    const uint64_t after = src.rules_version ? src.rules_version() : 0;
    std::string result = fmt::format("{{\"version\":{}", after);
    if (!error.empty()) {
      result += ",\"error\":";
      AppendJsonString(result, error);
    }
    result += "}";
    std::fprintf(
        stderr, "vigil: rules reload asked over the API by '%s': %s\n", who->c_str(),
        error.empty() ? fmt::format("version {}", after).c_str() : "refused, the old rules stay");
    if (!src.alerts_db.empty()) {
      im.WithCases(res, [&](sink::CaseStore& c) {
        (void)c.Audit(*who, "rules.reload", "rules", fmt::format("{{\"version\":{}}}", before),
                      result);
      });
    }
    if (!error.empty()) {
      return Error(
          res, 422,
          fmt::format("reload refused, rules version {} stays in force:\n{}", before, error));
    }
    res.status = 200;
    res.set_content(result + "\n", "application/json");
  });
  s.Get("/api/stream", [&](const httplib::Request& req, httplib::Response& res) {
    if (!im.Authorize(req, res, Role::kViewer)) return;
    if (!src.stream) return Error(res, 404, "this run has no live stream");
    if (im.streams.fetch_add(1) >= Impl::kMaxStreams) {
      im.streams.fetch_sub(1);
      return Error(res, 503,
                   fmt::format("already serving {} live streams; close one", Impl::kMaxStreams));
    }
    std::shared_ptr<EventStream> stream = src.stream;
    auto cursor = std::make_shared<uint64_t>(stream->Head());
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [stream, cursor, &im](size_t, httplib::DataSink& sink) {
          std::string out;
          uint64_t dropped = 0;
          if (im.stopping.load() ||
              !stream->Read(*cursor, out, dropped, std::chrono::milliseconds(500))) {
            sink.done();
            return true;
          }
          if (dropped > 0) {
            out.insert(0, fmt::format("event: dropped\ndata: {{\"dropped\":{}}}\n\n", dropped));
          }
          // A comment keeps the connection busy, so a client that went away is noticed.
          if (out.empty()) out = ": keep-alive\n\n";
          return sink.write(out.data(), out.size());
        },
        [&im](bool) { im.streams.fetch_sub(1); });
  });
  s.Get("/api/model", [&](const httplib::Request& req, httplib::Response& res) {
    if (!im.Authorize(req, res, Role::kViewer)) return;
    if (src.model_json.empty()) return Error(res, 404, "this pipeline has no model");
    res.set_content(src.model_json, "application/json");
  });
  ui_internal::ServeUi(s);  // the dashboard: GET / and /ui/... (no data, no token)
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
  impl_->thread = std::thread([this, &s] {
    s.listen_after_bind();
    impl_->listen_returned.store(true);
  });
  // cpp-httplib's stop() does nothing until the listening loop has started, so a Stop() right
  // after Start() (a run over a tiny input) would wait forever: return once it is running.
  while (!s.is_running() && !impl_->listen_returned.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return fmt::format("{}:{}", host, bound);
}

void ApiServer::Stop() {
  impl_->stopping.store(true);  // live streams end within one read
  if (impl_->thread.joinable()) {
    impl_->server.stop();
    impl_->thread.join();
  }
}

}  // namespace vigil::api
