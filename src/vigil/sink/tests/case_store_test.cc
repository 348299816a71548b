#include "vigil/sink/case_store.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include "vigil/sink/alert_store.h"

namespace vigil::sink {
namespace {

using ::testing::HasSubstr;

std::string FreshDb(const char* name) {
  const std::string path = std::string(::testing::TempDir()) + "/" + name;
  for (const char* s : {"", "-wal", "-shm"}) std::remove((path + s).c_str());
  return path;
}

std::string Decision(int i) {
  return "{\"event_id\":\"e" + std::to_string(i) +
         "\",\"key\":\"card1\",\"event_time\":\"2026-01-0" + std::to_string(i) +
         "T10:00:00.000000Z\",\"outcome\":\"review\",\"score\":60,\"reasons\":[{\"code\":\"r\"}],"
         "\"narrative\":\"n\"}\n";
}

// A store holding alerts e1..e3, as the engine leaves it.
std::string StoreWithAlerts(const char* name) {
  const std::string path = FreshDb(name);
  auto alerts = AlertStore::Open(path);
  for (int i = 1; i <= 3; ++i) alerts->Add(Decision(i));
  alerts->Commit();
  EXPECT_EQ(alerts->Count(), 3);
  return path;
}

TEST(CaseStore, CaseLifecycleIsAuditedWithBeforeAndAfter) {
  auto cases = CaseStore::Open(StoreWithAlerts("cases.db"));
  auto created = cases->Create({"e1", "e2"}, "two", "ann");
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_THAT(created.value(), HasSubstr(R"("status":"open")"));
  EXPECT_THAT(created.value(), HasSubstr(R"("alerts":["e1","e2"])"));
  auto assigned = cases->Assign(1, "bob", "ann");
  ASSERT_TRUE(assigned) << assigned.error().message;
  EXPECT_THAT(assigned.value(), HasSubstr(R"("assignee":"bob")"));
  auto commented = cases->Comment(1, "card used abroad", "ann");
  ASSERT_TRUE(commented) << commented.error().message;
  auto closed = cases->Close(1, "fraud", "confirmed with the customer", "ann");
  ASSERT_TRUE(closed) << closed.error().message;
  EXPECT_THAT(closed.value(), HasSubstr(R"("disposition":"fraud")"));

  auto again = cases->Close(1, "not_fraud", "", "ann");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, CaseErrc::kConflict);
  EXPECT_THAT(again.error().message, HasSubstr("already closed"));
  EXPECT_EQ(cases->Assign(1, "carol", "ann").error().code, CaseErrc::kConflict);
  EXPECT_EQ(cases->Comment(7, "x", "ann").error().code, CaseErrc::kNotFound);
  EXPECT_EQ(cases->Create({"e1", "nope"}, "", "ann").error().code, CaseErrc::kNotFound);

  auto got = cases->Get(1);
  ASSERT_TRUE(got) << got.error().message;
  simdjson::dom::parser parser;
  simdjson::dom::element c = parser.parse(got.value());
  EXPECT_EQ(c["alert_details"].get_array().size(), 2u);
  EXPECT_EQ(c["comments"].get_array().size(), 2u);  // the comment, and the closing one
  simdjson::dom::array history = c["history"].get_array();
  ASSERT_EQ(history.size(), 4u);  // newest first: close, comment, assign, create
  simdjson::dom::element close = history.at(0);
  EXPECT_EQ(std::string_view(close["action"].get_string()), "case.close");
  EXPECT_EQ(std::string_view(close["actor"].get_string()), "ann");
  EXPECT_EQ(std::string_view(close["before"]["status"].get_string()), "open");
  EXPECT_EQ(std::string_view(close["after"]["status"].get_string()), "closed");
  EXPECT_TRUE(history.at(3)["before"].is_null());

  CaseStore::AuditFilter f;
  f.actor = "ann";
  f.action = "case.assign";
  auto log = cases->AuditLog(f);
  ASSERT_TRUE(log);
  EXPECT_THAT(log.value(), HasSubstr(R"("total":1)"));
  EXPECT_THAT(log.value(), HasSubstr(R"("before":{"id":1)"));
}

TEST(CaseStore, ListsByStatusAndPages) {
  auto cases = CaseStore::Open(StoreWithAlerts("list.db"));
  ASSERT_TRUE(cases->Create({"e1"}, "a", "ann"));
  ASSERT_TRUE(cases->Create({"e2"}, "b", "ann"));
  ASSERT_TRUE(cases->Close(1, "inconclusive", "", "ann"));
  CaseStore::CaseFilter f;
  f.status = "open";
  auto open = cases->List(f);
  ASSERT_TRUE(open);
  EXPECT_THAT(open.value(), HasSubstr(R"("total":1)"));
  EXPECT_THAT(open.value(), HasSubstr(R"("title":"b")"));
  f.status = "";
  f.limit = 1;
  f.offset = 1;
  auto page = cases->List(f);
  ASSERT_TRUE(page);
  EXPECT_THAT(page.value(), HasSubstr(R"("total":2,"limit":1,"offset":1)"));
  EXPECT_THAT(page.value(), HasSubstr(R"("title":"a")"));  // newest first: b, then a
}

TEST(CaseStore, LabelsComeFromTheLatestClosedCase) {
  auto cases = CaseStore::Open(StoreWithAlerts("labels.db"));
  ASSERT_TRUE(cases->Create({"e1", "e2"}, "", "ann"));
  ASSERT_TRUE(cases->Create({"e2", "e3"}, "", "ann"));
  ASSERT_TRUE(cases->Create({"e3"}, "", "ann"));  // stays open: no label from it
  ASSERT_TRUE(cases->Close(1, "fraud", "", "ann"));
  ASSERT_TRUE(cases->Close(2, "not_fraud", "", "ann"));
  using L = std::vector<std::pair<std::string, int>>;
  EXPECT_EQ(cases->Labels(), (L{{"e1", 1}, {"e2", 0}, {"e3", 0}}));
}

TEST(AlertStore, KeepsAnAlertWithoutNarrative) {
  // A model-only alert (no rule fired) carries no "narrative"; it must still be stored.
  const std::string path = FreshDb("no_narrative.db");
  auto alerts = AlertStore::Open(path);
  alerts->Add(R"({"event_id":"m1","key":"c","event_time":"2026-01-01T00:00:00Z",)"
              R"("outcome":"review","score":70,"reasons":[{"code":"model"}]})");
  alerts->Commit();
  EXPECT_EQ(alerts->Count(), 1);
  ASSERT_TRUE(alerts->Get("m1"));
  EXPECT_EQ(alerts->Get("m1")->narrative, "");
}

TEST(CaseStore, OpeningTwiceKeepsTheCases) {
  const std::string path = StoreWithAlerts("twice.db");
  ASSERT_TRUE(CaseStore::Open(path)->Create({"e1"}, "kept", "ann"));
  auto again = CaseStore::Open(path)->Get(1);
  ASSERT_TRUE(again);
  EXPECT_THAT(again.value(), HasSubstr(R"("title":"kept")"));
}

// The engine's writer keeps the alert store's write transaction open almost all the time (it
// commits about once a second, here every 100 ms, and at once begins the next). A case opened
// meanwhile in the same process waits for a commit and goes then, instead of failing as busy:
// SQLite's busy handler alone, sleeping and retrying, hardly ever found the lock free.
TEST(CaseStore, ACaseIsWrittenWhileTheEngineKeepsWritingAlerts) {
  const std::string path = StoreWithAlerts("busy.db");
  std::atomic<bool> stop{false};
  std::atomic<int> commits{0};
  std::thread engine([&] {
    auto alerts = AlertStore::Open(path);
    auto began = std::chrono::steady_clock::now();
    for (int i = 100; !stop.load(); ++i) {
      alerts->Add("{\"event_id\":\"x" + std::to_string(i) +
                  "\",\"key\":\"card2\",\"event_time\":\"2026-01-01T10:00:00.000000Z\","
                  "\"outcome\":\"block\",\"score\":90,\"reasons\":[],\"narrative\":\"n\"}\n");
      if (std::chrono::steady_clock::now() - began > std::chrono::milliseconds(100)) {
        alerts->Commit();
        commits.fetch_add(1);
        began = std::chrono::steady_clock::now();
      }
    }
    alerts->Commit();
  });
  while (commits.load() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto cases = CaseStore::Open(path, 10000);  // about the turn, not its latency
  for (int n = 0; n < 3; ++n) {
    auto created = cases->Create({"e1"}, "while busy", "ann");
    EXPECT_TRUE(created) << "case " << n << ": " << created.error().message;
  }
  stop.store(true);
  engine.join();
  EXPECT_GE(commits.load(), 2);
}

}  // namespace
}  // namespace vigil::sink
