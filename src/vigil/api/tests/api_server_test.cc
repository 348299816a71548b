// The HTTP API over real HTTP: a server on an ephemeral loopback port, httplib::Client calls.
#include "vigil/api/api_server.h"

#include <httplib.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include "vigil/sink/alert_store.h"

namespace vigil::api {
namespace {

using ::testing::HasSubstr;

constexpr const char* kViewer = "viewer-secret-0123456789";
constexpr const char* kAnalyst = "analyst-secret-0123456789";
constexpr const char* kAdmin = "admin-secret-0123456789";

std::string Decision(int i, const char* card) {
  return "{\"event_id\":\"e" + std::to_string(i) + "\",\"key\":\"" + card +
         "\",\"event_time\":\"2026-01-0" + std::to_string(i) +
         "T10:00:00.000000Z\",\"outcome\":\"review\",\"score\":60,\"reasons\":[{\"code\":"
         "\"velocity\"}],\"narrative\":\"n" +
         std::to_string(i) + "\"}\n";
}

// A server over an alert store holding e1..e4 (e1, e2, e4 on card1), with one token per role
// unless `with_tokens` is false.
class ApiTest : public ::testing::Test {
 protected:
  void Start(bool with_tokens) {
    db_ = std::string(::testing::TempDir()) + "/api_" +
          ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db";
    for (const char* s : {"", "-wal", "-shm"}) std::remove((db_ + s).c_str());
    {
      auto store = sink::AlertStore::Open(db_);
      store->Add(Decision(1, "card1"));
      store->Add(Decision(2, "card1"));
      store->Add(Decision(3, "card2"));
      store->Add(Decision(4, "card1"));
      store->Commit();
    }
    Sources s;
    s.summary = [] { return sink::RunSummary{}; };
    s.ready = [] { return true; };
    s.alerts_db = db_;
    s.pipeline = "test";
    if (with_tokens) {
      s.tokens.Add("viewer1", Role::kViewer, kViewer);
      s.tokens.Add("ann", Role::kAnalyst, kAnalyst);
      s.tokens.Add("ops", Role::kAdmin, kAdmin);
    }
    s.rules_version = [this] { return version_; };
    s.reload_rules = [this]() -> std::string {
      if (fail_reload_) return "rules.yaml:3:7: rules[0].when: unknown feature 'nope'";
      ++version_;
      return "";
    };
    stream_ = std::make_shared<EventStream>();
    s.stream = stream_;
    server_ = std::make_unique<ApiServer>(std::move(s));
    const std::string at = server_->Start("127.0.0.1:0");
    client_ = std::make_unique<httplib::Client>("http://" + at);
  }

  httplib::Result Get(const std::string& path, const char* token) {
    httplib::Headers h;
    if (token) h.emplace("Authorization", std::string("Bearer ") + token);
    return client_->Get(path.c_str(), h);
  }
  httplib::Result Post(const std::string& path, const char* token, const std::string& body) {
    httplib::Headers h;
    if (token) h.emplace("Authorization", std::string("Bearer ") + token);
    return client_->Post(path.c_str(), h, body, "application/json");
  }
  static simdjson::dom::element Json(simdjson::dom::parser& p, const httplib::Result& r) {
    return p.parse(r->body);
  }

  std::string db_;
  uint64_t version_ = 1;
  bool fail_reload_ = false;
  std::shared_ptr<EventStream> stream_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ApiTest, MissingOrUnknownTokenIs401WithAChallenge) {
  Start(true);
  auto r = Get("/api/alerts", nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_THAT(r->get_header_value("WWW-Authenticate"), HasSubstr("Bearer"));
  EXPECT_THAT(r->body, HasSubstr("{\"error\":\"missing bearer token"));
  r = Get("/api/alerts", "not-a-token-of-this-server");
  EXPECT_EQ(r->status, 401);
  EXPECT_THAT(r->get_header_value("WWW-Authenticate"), HasSubstr("invalid_token"));
  EXPECT_THAT(r->body, HasSubstr("unknown token"));
  EXPECT_EQ(Get("/metrics", nullptr)->status, 401);
  EXPECT_EQ(Get("/healthz", nullptr)->status, 200);  // probes stay open
  EXPECT_EQ(Get("/api/alerts", kViewer)->status, 200);
}

TEST_F(ApiTest, InsufficientRoleIs403NamingTheRole) {
  Start(true);
  auto r = Post("/api/cases", kViewer, R"({"alerts":["e1"]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_THAT(r->body, HasSubstr("this needs the analyst role; token 'viewer1' has viewer"));
  r = Get("/api/audit", kAnalyst);
  EXPECT_EQ(r->status, 403);
  EXPECT_THAT(r->body, HasSubstr("needs the admin role"));
  EXPECT_EQ(Post("/api/rules/reload", kAnalyst, "{}")->status, 403);
}

TEST_F(ApiTest, WithoutTokensLoopbackReadsButEveryWriteIsRefused) {
  Start(false);
  EXPECT_EQ(Get("/api/alerts", nullptr)->status, 200);
  EXPECT_EQ(Get("/api/cases", nullptr)->status, 200);
  for (const char* path : {"/api/cases", "/api/cases/1/close", "/api/rules/reload"}) {
    auto r = Post(path, nullptr, R"({"alerts":["e1"]})");
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 403) << path;
    EXPECT_THAT(r->body, HasSubstr("VIGIL_API_TOKENS")) << path;
    EXPECT_THAT(r->body, HasSubstr("api.tokens")) << path;
  }
}

TEST_F(ApiTest, BadBodiesAre400NamingTheProblem) {
  Start(true);
  auto r = Post("/api/cases", kAnalyst, R"({"alerts": ["e1")");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("not valid JSON"));
  r = Post("/api/cases", kAnalyst, R"({"title":"x"})");
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("missing field 'alerts'"));
  r = Post("/api/cases", kAnalyst, R"({"alerts":"e1"})");
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("field 'alerts' must be a non-empty array of alert ids; got a "
                                 "string"));
  r = Post("/api/cases", kAnalyst, R"({"alerts":["e1", 7]})");
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("item 1 is a number"));
  r = Post("/api/cases", kAnalyst, R"([1,2])");
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("must be a JSON object"));
  ASSERT_EQ(Post("/api/cases", kAnalyst, R"({"alerts":["e1"]})")->status, 201);
  r = Post("/api/cases/1/close", kAnalyst, R"({"disposition":true})");
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("field 'disposition' must be one of"));
  EXPECT_THAT(r->body, HasSubstr("got a boolean"));
  r = Post("/api/cases/1/close", kAnalyst, R"({"disposition":"maybe"})");
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("fraud, not_fraud or inconclusive"));
}

TEST_F(ApiTest, PaginationBoundsAreChecked) {
  Start(true);
  for (const char* q : {"limit=0", "limit=1001", "limit=x", "offset=-1"}) {
    auto r = Get(std::string("/api/cases?") + q, kViewer);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << q;
    EXPECT_THAT(r->body, HasSubstr("must be an integer from")) << q;
  }
  EXPECT_EQ(Get("/api/cases?status=pending", kViewer)->status, 400);
  EXPECT_EQ(Get("/api/audit?limit=5000", kAdmin)->status, 400);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(Post("/api/cases", kAnalyst, "{\"alerts\":[\"e" + std::to_string(i) + "\"]}")->status,
              201);
  }
  simdjson::dom::parser p;
  auto r = Get("/api/cases?limit=2&offset=1", kViewer);
  ASSERT_EQ(r->status, 200);
  auto page = Json(p, r);
  EXPECT_EQ(int64_t(page["total"]), 3);
  ASSERT_EQ(page["cases"].get_array().size(), 2u);
  EXPECT_EQ(int64_t(page["cases"].at(0)["id"]), 2);  // newest first: 3, [2, 1]
}

TEST_F(ApiTest, UnknownIdsAre404AndClosingTwiceIs409) {
  Start(true);
  EXPECT_EQ(Get("/api/cases/42", kViewer)->status, 404);
  EXPECT_EQ(Get("/api/alerts/nope", kViewer)->status, 404);
  auto r = Post("/api/cases", kAnalyst, R"({"alerts":["e1","nope"]})");
  EXPECT_EQ(r->status, 404);
  EXPECT_THAT(r->body, HasSubstr("alert 'nope' is not in the alert store"));
  EXPECT_EQ(Post("/api/cases/42/close", kAnalyst, R"({"disposition":"fraud"})")->status, 404);
  ASSERT_EQ(Post("/api/cases", kAnalyst, R"({"alerts":["e1"]})")->status, 201);
  EXPECT_EQ(Post("/api/cases/1/close", kAnalyst, R"({"disposition":"fraud"})")->status, 200);
  r = Post("/api/cases/1/close", kAnalyst, R"({"disposition":"not_fraud"})");
  EXPECT_EQ(r->status, 409);
  EXPECT_THAT(r->body, HasSubstr("already closed (disposition fraud)"));
}

TEST_F(ApiTest, CaseFlowEndToEndIsAudited) {
  Start(true);
  simdjson::dom::parser p;
  auto r = Post("/api/cases", kAnalyst, R"({"alerts":["e1","e2"],"title":"card1 burst"})");
  ASSERT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(int64_t(Json(p, r)["id"]), 1);
  r = Post("/api/cases/1/assign", kAnalyst, R"({"assignee":"bob"})");
  ASSERT_EQ(r->status, 200) << r->body;
  r = Post("/api/cases/1/comments", kAnalyst, R"({"text":"customer called"})");
  ASSERT_EQ(r->status, 201) << r->body;
  r = Post("/api/cases/1/close", kAnalyst, R"({"disposition":"fraud","comment":"confirmed"})");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(std::string_view(Json(p, r)["status"]), "closed");

  r = Get("/api/cases?status=closed&assignee=bob", kViewer);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(int64_t(Json(p, r)["total"]), 1);
  r = Get("/api/cases/1", kViewer);
  ASSERT_EQ(r->status, 200);
  auto c = Json(p, r);
  EXPECT_EQ(c["alert_details"].get_array().size(), 2u);
  EXPECT_EQ(c["comments"].get_array().size(), 2u);
  EXPECT_EQ(c["history"].get_array().size(), 4u);

  r = Get("/api/audit?object=case/1&action=case.assign", kAdmin);
  ASSERT_EQ(r->status, 200) << r->body;
  auto log = Json(p, r);
  ASSERT_EQ(int64_t(log["total"]), 1);
  auto e = log["entries"].at(0);
  EXPECT_EQ(std::string_view(e["actor"]), "ann");
  EXPECT_TRUE(e["before"]["assignee"].is_null());
  EXPECT_EQ(std::string_view(e["after"]["assignee"]), "bob");
  EXPECT_FALSE(std::string_view(e["at"]).empty());

  r = Get("/api/alerts/e2?recent=5", kViewer);
  ASSERT_EQ(r->status, 200) << r->body;
  auto a = Json(p, r);
  EXPECT_EQ(std::string_view(a["alert"]["narrative"]), "n2");
  EXPECT_EQ(a["entity_recent"].get_array().size(), 2u);  // e4 and e1, not e3 (card2), not itself
  EXPECT_EQ(std::string_view(a["entity_recent"].at(0)["event_id"]), "e4");
  EXPECT_EQ(int64_t(a["cases"].at(0)), 1);
}

TEST_F(ApiTest, RulesReloadIsAdminOnlyAndAudited) {
  Start(true);
  simdjson::dom::parser p;
  auto r = Post("/api/rules/reload", kAdmin, "");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(int64_t(Json(p, r)["version"]), 2);
  fail_reload_ = true;
  r = Post("/api/rules/reload", kAdmin, "");
  EXPECT_EQ(r->status, 422);
  EXPECT_THAT(r->body, HasSubstr("rules version 2 stays in force"));
  EXPECT_THAT(r->body, HasSubstr("unknown feature 'nope'"));
  r = Get("/api/audit?action=rules.reload", kAdmin);
  ASSERT_EQ(r->status, 200);
  auto log = Json(p, r);
  ASSERT_EQ(int64_t(log["total"]), 2);
  EXPECT_EQ(int64_t(log["entries"].at(1)["after"]["version"]), 2);
  EXPECT_EQ(int64_t(log["entries"].at(1)["before"]["version"]), 1);
  EXPECT_EQ(std::string_view(log["entries"].at(0)["actor"]), "ops");
  EXPECT_EQ(Get("/api/rules", kViewer)->status, 404);  // this test server has no rule set
  EXPECT_EQ(Get("/api/model", kViewer)->status, 404);
}

TEST_F(ApiTest, StreamSendsAlertsAsTheStoreCommitsThem) {
  Start(true);
  EXPECT_EQ(Get("/api/stream", nullptr)->status, 401);
  // The alert store tells the stream about each commit, as in a run.
  auto store = sink::AlertStore::Open(db_);
  store->SetListener(stream_.get());
  std::string received;
  std::thread publisher([&] {
    // Give the client time to connect and take its cursor, then commit one alert.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    store->Add(Decision(5, "card9"));
    store->Commit();
  });
  httplib::Headers h = {{"Authorization", std::string("Bearer ") + kViewer}};
  client_->Get("/api/stream", h, [&](const char* data, size_t n) {
    received.append(data, n);
    // Until a whole alert event has arrived.
    const size_t alert = received.find("event: alert");
    return alert == std::string::npos || received.find("\n\n", alert) == std::string::npos;
  });
  publisher.join();
  EXPECT_THAT(received, HasSubstr("event: alert\ndata: {\"event_id\":\"e5\",\"key\":\"card9\""));
}

TEST_F(ApiTest, StreamsOfClientsThatLeftAreReleased) {
  Start(true);
  httplib::Headers h = {{"Authorization", std::string("Bearer ") + kViewer}};
  // One more stream than the server serves at once, one after the other: each client leaves
  // after its first bytes, and the server notices on its next write and frees the slot.
  for (int i = 0; i < 5; ++i) {
    std::string received;
    client_->Get("/api/stream", h, [&](const char* data, size_t n) {
      received.append(data, n);
      return false;
    });
    EXPECT_THAT(received, HasSubstr(": keep-alive")) << "stream " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
  }
}

TEST(ApiServer, StopRightAfterStartReturns) {
  // A run over a tiny input stops its server a moment after starting it; that must not hang
  // (cpp-httplib ignores a stop() that comes before its loop runs).
  Sources s;
  s.summary = [] { return sink::RunSummary{}; };
  for (int i = 0; i < 20; ++i) {
    ApiServer server(s);
    server.Start("127.0.0.1:0");
    server.Stop();
  }
  SUCCEED();
}

TEST(ApiServer, ASecondServerCannotTakeABoundPort) {
  Sources s;
  s.summary = [] { return sink::RunSummary{}; };
  ApiServer first(s);
  const std::string at = first.Start("127.0.0.1:0");
  ApiServer second(s);
  EXPECT_THROW(second.Start(at), std::runtime_error);
}

// A self-signed certificate and key made with the openssl command into a fresh directory.
struct TlsFiles {
  std::string dir, cert, key;
  TlsFiles() {
    dir = ::testing::TempDir() + "vigil-tls-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout " + key +
        " -out " + cert + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl req failed");
  }
  ~TlsFiles() { std::filesystem::remove_all(dir); }
};

TEST(ApiServer, ServesHttpsWithTheConfiguredCertificate) {
  const TlsFiles tls;
  Sources s;
  s.summary = [] { return sink::RunSummary{}; };
  s.tls_cert = tls.cert;
  s.tls_key = tls.key;
  ApiServer server(s);
  const std::string at = server.Start("127.0.0.1:0");
  const int port = std::stoi(at.substr(at.rfind(':') + 1));

  httplib::SSLClient https("127.0.0.1", port);
  https.set_ca_cert_path(tls.cert.c_str());
  https.enable_server_certificate_verification(false);  // CN=localhost, dialled by address
  const auto ok = https.Get("/healthz");
  ASSERT_TRUE(ok) << httplib::to_string(ok.error());
  EXPECT_EQ(ok->status, 200);

  httplib::Client plain("127.0.0.1", port);  // plain HTTP to a TLS port gets no answer
  plain.set_read_timeout(2, 0);
  const auto refused = plain.Get("/healthz");
  EXPECT_TRUE(!refused || refused->status != 200);
}

TEST(ApiServer, RefusesAKeyThatDoesNotLoad) {
  const TlsFiles tls;
  Sources s;
  s.tls_cert = tls.cert;
  s.tls_key = tls.dir + "/missing.pem";
  try {
    ApiServer server(s);
    FAIL() << "a server without its key started";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("api.tls"));
    EXPECT_THAT(e.what(), HasSubstr("missing.pem"));
  }
}

}  // namespace
}  // namespace vigil::api
