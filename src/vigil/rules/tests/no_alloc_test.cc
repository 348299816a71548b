// Checks the rules stage's promise that evaluating a compiled program never allocates, by
// counting calls to the global operator new (replaced for this whole test binary by
// vigil_allocation_counter).
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "vigil/common/testing/allocation_counter.h"
#include "vigil/rules/expr.h"

namespace vigil::rules {
namespace {

TEST(NoAllocation, Evaluate) {
  Schema schema;
  ASSERT_TRUE(schema.AddField("ts", FieldType::kTimestamp).ok());
  ASSERT_TRUE(schema.AddField("prev_ts", FieldType::kTimestamp).ok());
  ASSERT_TRUE(schema.AddField("country", FieldType::kString).ok());
  ASSERT_TRUE(schema.AddField("merchant", FieldType::kString).ok());
  ASSERT_TRUE(schema.AddField("amount", FieldType::kFloat).ok());
  ASSERT_TRUE(schema.AddField("qty", FieldType::kInt).ok());
  ASSERT_TRUE(schema.AddField("online", FieldType::kBool).ok());
  ASSERT_TRUE(schema.AddField("lat", FieldType::kLat).ok());
  ASSERT_TRUE(schema.AddField("lon", FieldType::kLon).ok());
  ASSERT_TRUE(schema.AddSlot("txn_10m").ok());
  ASSERT_TRUE(schema.AddSlot("avg_30d").ok());
  Lists lists;
  lists.Add("countries", {"RU", "KP", "IR"});
  lists.Add("codes", {"1", "2", "3"});

  // Between them these use every instruction of the evaluator.
  const char* const rules[] = {
      "txn_10m >= 5 and amount > 3 * coalesce(avg_30d, 100) and country in countries",
      "country not in ('DE', 'FR') or merchant == country or 'x' != merchant",
      "starts_with(merchant, 'm_') and ends_with(merchant, '7') and contains(merchant, 'cr')",
      "hour_of_day(ts) < 6 and day_of_week(ts) >= 6 and ts - prev_ts < 1h and ts > prev_ts",
      "distance(lat, lon, 48.85, 2.35) > 500 and abs(amount - txn_10m) / 2 % 7 >= -1",
      "max(amount, txn_10m, 1) > min(qty, 5) and log(amount) > sqrt(round(amount))",
      "qty is null or avg_30d is not null or online == true and not online",
      "qty in codes or qty in (1, 2) or country in ('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'RU')",
      "amount in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10) or coalesce(country, merchant) in countries",
      "coalesce(online, false) and -amount < 0 and txn_10m - 1 + 2 * amount > 0",
      "online != (amount > 1) and (ts == prev_ts) is null and 1 < txn_10m",
  };
  std::vector<Program> programs;
  for (const char* r : rules) {
    CompileResult c = Compile(r, schema, lists);
    ASSERT_TRUE(c.ok()) << r << ": " << c.error().message;
    programs.push_back(std::move(c.value()));
  }
  CompileResult score =
      Compile("amount * coalesce(avg_30d, 1) / 100", schema, lists, Type::kNumber);
  ASSERT_TRUE(score.ok());

  std::vector<Event> events(4);
  for (size_t i = 0; i < events.size(); ++i) {
    Event& e = events[i];
    e.Reset(9);
    e.values[0].kind = Value::Kind::kTime;
    e.values[0].i = 1795428930000000LL + static_cast<int64_t>(i) * 3600000000LL;
    if (i % 2 == 0) {
      e.values[1].kind = Value::Kind::kTime;
      e.values[1].i = 1795428930000000LL - 60000000LL;
    }
    e.SetString(2, i == 1 ? "DE" : "RU");
    if (i != 3) e.SetString(3, "m_crypto_7");
    e.values[4].kind = Value::Kind::kFloat;
    e.values[4].f = 10.0 + 1000.0 * static_cast<double>(i);
    if (i % 2 == 1) {
      e.values[5].kind = Value::Kind::kInt;
      e.values[5].i = static_cast<int64_t>(i);
      e.values[6].kind = Value::Kind::kBool;
      e.values[6].b = i == 1;
    }
    e.values[7].kind = Value::Kind::kFloat;
    e.values[7].f = 52.5;
    e.values[8].kind = Value::Kind::kFloat;
    e.values[8].f = 13.4;
  }
  const std::vector<std::vector<double>> slots = {
      {7, 100}, {1, std::numeric_limits<double>::quiet_NaN()}, {12, 5}, {0, 0}};

  int fired = 0;
  const long before = vigil::testing::AllocationCount();
  for (int round = 0; round < 100; ++round) {
    for (size_t i = 0; i < events.size(); ++i) {
      for (const Program& p : programs) fired += p.Evaluate(events[i], slots[i]) == Tri::kTrue;
      fired += score.value().EvaluateNumber(events[i], slots[i]) > 1;
    }
  }
  EXPECT_EQ(vigil::testing::AllocationCount() - before, 0);
  EXPECT_GT(fired, 0);
}

}  // namespace
}  // namespace vigil::rules
