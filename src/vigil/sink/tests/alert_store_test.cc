#include "vigil/sink/alert_store.h"

#include <cstdio>
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vigil::sink {
namespace {

using ::testing::HasSubstr;

std::string FreshDb(const char* name) {
  const std::string path = std::string(::testing::TempDir()) + "/" + name;
  for (const char* s : {"", "-wal", "-shm"}) std::remove((path + s).c_str());
  return path;
}

std::string Decision(int i, const char* card, const char* outcome, const char* rules_json) {
  return "{\"event_id\":\"e" + std::to_string(i) + "\",\"key\":\"" + card +
         "\",\"event_time\":\"2026-01-0" + std::to_string(i) +
         "T10:00:00.000000Z\",\"outcome\":\"" + outcome + "\",\"score\":" + std::to_string(10 * i) +
         ",\"reasons\":" + rules_json + ",\"narrative\":\"n" + std::to_string(i) +
         "\",\"rules_version\":2}\n";
}

TEST(AlertStore, StoresOnceByEventIdAndFilters) {
  const std::string path = FreshDb("alerts.db");
  {
    auto store = AlertStore::Open(path);
    store->Add(Decision(1, "4000000000001111", "review", R"([{"code":"velocity"}])"));
    store->Add(Decision(2, "4000000000002222", "block",
                        R"([{"code":"velocity"},{"code":"card_testing"}])"));
    store->Add(Decision(3, "4000000000001111", "block", R"([{"code":"ato"}])"));
    store->Commit();
    // A resumed run writes the alerts after its checkpoint again: still one row each.
    store->Add(Decision(3, "4000000000001111", "block", R"([{"code":"ato"}])"));
    store->Commit();
    EXPECT_EQ(store->Count(), 3);
  }
  auto store = AlertStore::Open(path, /*read_only=*/true);
  auto rows = store->Query({});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].event_id, "e3");  // newest event time first
  EXPECT_EQ(rows[1].rules, "velocity,card_testing");
  EXPECT_EQ(rows[1].score, 20);
  EXPECT_EQ(rows[1].rules_version, 2);
  EXPECT_THAT(rows[1].decision, HasSubstr("\"event_id\":\"e2\""));
  EXPECT_EQ(rows[1].decision.back(), '}');

  AlertStore::Filter by_rule;
  by_rule.rule = "velocity";
  EXPECT_EQ(store->Query(by_rule).size(), 2u);
  AlertStore::Filter by_card;
  by_card.entity = "4000000000001111";
  by_card.outcome = "block";
  rows = store->Query(by_card);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].event_id, "e3");
  AlertStore::Filter window;
  window.since_us = 1767607200000000;  // 2026-01-05T10:00:00Z: none
  EXPECT_TRUE(store->Query(window).empty());
  window.since_us = 1767348000000000;  // 2026-01-02T10:00:00Z: e2, e3
  window.limit = 1;
  window.offset = 1;
  rows = store->Query(window);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].event_id, "e2");
}

TEST(AlertStore, UnreadableFileIsNamed) {
  try {
    AlertStore::Open("/nonexistent-dir/alerts.db");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent-dir/alerts.db: cannot open the alert store"));
  }
}

}  // namespace
}  // namespace vigil::sink
