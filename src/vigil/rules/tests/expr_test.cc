#include "vigil/rules/expr.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "vigil/common/time.h"

namespace vigil::rules {
namespace {

using ::testing::ElementsAre;

constexpr double kNull = std::numeric_limits<double>::quiet_NaN();

// Field indices of the test schema.
enum Field : int {
  kId,
  kTs,
  kPrevTs,
  kCountry,
  kHome,
  kMcc,
  kMccCode,
  kAmount,
  kQty,
  kOnline,
  kFlag,
  kLat,
  kLon,
  kDevice,
  kMerchant,
  kFieldCount
};
// Slot indices.
enum SlotIndex : int { kTxn10m, kAmount1h, kAvg30d, kSecsSinceLast, kX, kY, kZ, kSlotCount };

Schema TestSchema() {
  Schema s;
  const std::pair<const char*, FieldType> fields[] = {
      {"id", FieldType::kString},
      {"ts", FieldType::kTimestamp},
      {"prev_ts", FieldType::kTimestamp},
      {"country", FieldType::kString},
      {"home_country", FieldType::kString},
      {"mcc", FieldType::kString},
      {"mcc_code", FieldType::kInt},
      {"amount", FieldType::kFloat},
      {"qty", FieldType::kInt},
      {"online", FieldType::kBool},
      {"flag", FieldType::kBool},
      {"lat", FieldType::kLat},
      {"lon", FieldType::kLon},
      {"device", FieldType::kString},
      {"merchant", FieldType::kString},
  };
  for (const auto& [name, type] : fields) EXPECT_TRUE(s.AddField(name, type).ok());
  for (const char* name :
       {"card_txn_10m", "card_amount_1h", "card_avg_30d", "card_secs_since_last", "x", "y", "z"}) {
    EXPECT_TRUE(s.AddSlot(name).ok());
  }
  return s;
}

Lists TestLists() {
  Lists l;
  l.Add("high_risk_mcc", {"5967", "7995", "4829"});
  l.Add("countries", {"RU", "KP", "IR"});
  l.Add("names", {"acme corp", "12"});
  const double ids[] = {1, 2, 3};
  l.AddNumbers("ids", ids);
  return l;
}

class ExprTest : public ::testing::Test {
 protected:
  ExprTest() : schema_(TestSchema()), lists_(TestLists()) {
    event_.Reset(kFieldCount);
    event_.SetString(kId, "e1");
    Set(kTs, *ParseIso8601("2026-11-23T10:15:30Z"));
    Set(kPrevTs, *ParseIso8601("2026-11-23T10:14:00Z"));
    event_.SetString(kCountry, "RU");
    event_.SetString(kHome, "DE");
    event_.SetString(kMcc, "5967");
    SetInt(kMccCode, 5967);
    SetFloat(kAmount, 100);
    // kQty: null
    SetBool(kOnline, true);
    // kFlag: null
    SetFloat(kLat, 52.52);
    SetFloat(kLon, 13.405);
    // kDevice: null
    event_.SetString(kMerchant, "m_crypto_exchange_7");
    slots_ = {7, 4210.5, kNull, 12, 1, 0, kNull};
  }

  void Set(int field, int64_t micros) {
    event_.values[field].kind = Value::Kind::kTime;
    event_.values[field].i = micros;
  }
  void SetInt(int field, int64_t v) {
    event_.values[field].kind = Value::Kind::kInt;
    event_.values[field].i = v;
  }
  void SetFloat(int field, double v) {
    event_.values[field].kind = Value::Kind::kFloat;
    event_.values[field].f = v;
  }
  void SetBool(int field, bool v) {
    event_.values[field].kind = Value::Kind::kBool;
    event_.values[field].b = v;
  }

  Program Ok(std::string_view text, Type want = Type::kBool) {
    CompileResult r = Compile(text, schema_, lists_, want);
    if (!r.ok()) {
      ADD_FAILURE() << text << ": " << r.error().message << " at " << r.error().offset;
      r = Compile(want == Type::kBool ? "false" : "0", schema_, lists_, want);
    }
    return std::move(r.value());
  }

  Tri Eval(std::string_view text) { return Ok(text).Evaluate(event_, slots_); }
  double Num(std::string_view text) {
    return Ok(text, Type::kNumber).EvaluateNumber(event_, slots_);
  }

  Diagnostic Err(std::string_view text, Type want = Type::kBool) {
    CompileResult r = Compile(text, schema_, lists_, want);
    if (r.ok()) {
      ADD_FAILURE() << text << ": compiled, expected an error";
      return {};
    }
    return r.error();
  }

  Schema schema_;
  Lists lists_;
  Event event_;
  std::vector<double> slots_;
};

// Asserts message, offset and length of a compile error.
#define EXPECT_ERROR(text_, message_, offset_, length_) \
  do {                                                  \
    const Diagnostic d = Err(text_);                    \
    EXPECT_EQ(d.message, message_) << (text_);          \
    EXPECT_EQ(d.offset, offset_##u) << (text_);         \
    EXPECT_EQ(d.length, length_##u) << (text_);         \
  } while (false)

TEST_F(ExprTest, SyntaxErrors) {
  EXPECT_ERROR("", "empty expression", 0, 0);
  EXPECT_ERROR("   ", "empty expression", 3, 0);
  EXPECT_ERROR("amount > 5 and", "expected a value after 'and'", 14, 0);
  EXPECT_ERROR("amount > )", "expected a value after '>'", 9, 1);
  EXPECT_ERROR(") > 1", "expected a value", 0, 1);
  EXPECT_ERROR("max(amount, 1", "expected ')' after arguments of 'max'", 13, 0);
  EXPECT_ERROR("max(amount 1) > 2", "expected ')' after arguments of 'max'", 11, 1);
  EXPECT_ERROR("(amount > 5", "expected ')' to close '('", 11, 0);
  EXPECT_ERROR("amount > 5)", "unmatched ')'", 10, 1);
  EXPECT_ERROR("amount > 5 amount", "unexpected 'amount': expected an operator or the end", 11, 6);
  EXPECT_ERROR("amount > 5 AND qty > 1", "write 'and' in lower case", 11, 3);
  EXPECT_ERROR("country == NULL", "write 'null' in lower case", 11, 4);
  EXPECT_ERROR("amount = 5", "unexpected '=': compare with '=='", 7, 1);
  EXPECT_ERROR("amount > 5 & online", "unexpected '&': write 'and' (or '&&')", 11, 1);
  EXPECT_ERROR("amount > 5 | online", "unexpected '|': write 'or' (or '||')", 11, 1);
  EXPECT_ERROR("amount @ 5", "unexpected character '@'", 7, 1);
  EXPECT_ERROR("amount > 5 \x01", "unexpected byte 0x01", 11, 1);
  EXPECT_ERROR("country == \"RU", "unterminated string: expected a closing \"", 11, 3);
  EXPECT_ERROR("country == 'R\\nU'", "unknown escape in string: only \\\" \\' and \\\\ are allowed",
               13, 2);
  EXPECT_ERROR("amount > 10x", "unknown unit 'x' after 10: durations take us, ms, s, m, h or d", 11,
               1);
  EXPECT_ERROR("amount > 1e999", "number out of range", 9, 5);
  EXPECT_ERROR("1 < amount < 5", "comparisons do not chain; join them with 'and'", 11, 1);
  EXPECT_ERROR("device is null is null", "comparisons do not chain; join them with 'and'", 15, 2);
  EXPECT_ERROR("amount is nul", "expected 'null' or 'not null' after 'is'", 10, 3);
  EXPECT_ERROR("country not like 'x'", "expected 'in' after 'not'", 12, 4);
  EXPECT_ERROR("country in amount", "'amount' is a field: 'in' takes a list name or (value, ...)",
               11, 6);
  EXPECT_ERROR("country in 'RU'", "expected a list name or '(' after 'in'", 11, 4);
  EXPECT_ERROR("country in ()", "expected a number or a string in the list after 'in'", 12, 1);
  EXPECT_ERROR("country in ('RU' 'KP')", "expected ')' to close the list after 'in'", 17, 4);
  EXPECT_ERROR("country in (home_country)", "expected a number or a string in the list after 'in'",
               12, 12);
  EXPECT_ERROR("high_risk_mcc == 1",
               "'high_risk_mcc' is a list: use it after 'in', e.g. x in high_risk_mcc", 0, 13);
  EXPECT_ERROR("abs > 1", "'abs' is a function: call it as abs(...)", 0, 3);
  EXPECT_ERROR("amount(1) > 2", "'amount' is a field, not a function", 0, 6);
  EXPECT_ERROR("abs(amount, 1) > 2", "'abs' takes 1 argument; got 2", 0, 3);
  EXPECT_ERROR("min(amount) > 1", "'min' takes at least 2 arguments; got 1", 0, 3);
  EXPECT_ERROR("distance(lat, lon, 1) > 1", "'distance' takes 4 arguments; got 3", 0, 8);
}

TEST_F(ExprTest, UnknownNames) {
  EXPECT_ERROR("amout > 5", "unknown field 'amout' (did you mean 'amount'?)", 0, 5);
  EXPECT_ERROR("amount > 5 and card_txn_10mm > 1",
               "unknown field 'card_txn_10mm' (did you mean 'card_txn_10m'?)", 15, 13);
  EXPECT_ERROR("zzzzzz > 5", "unknown field 'zzzzzz'", 0, 6);
  EXPECT_ERROR("mcc in risky", "unknown list 'risky'", 7, 5);
  EXPECT_ERROR("mcc in high_risk_mc", "unknown list 'high_risk_mc' (did you mean 'high_risk_mcc'?)",
               7, 12);
  EXPECT_ERROR("maxx(amount, 1) > 2", "unknown function 'maxx' (did you mean 'max'?)", 0, 4);
  EXPECT_EQ(Err("amout > 5").code, Errc::kUnknownName);
  EXPECT_EQ(Err("amount >").code, Errc::kSyntax);
}

TEST_F(ExprTest, TypeErrors) {
  EXPECT_ERROR("country > 5", "'>' needs two numbers; got string and number", 8, 1);
  EXPECT_ERROR("qty and amount > 5", "'and' needs two bools; got number and bool", 4, 3);
  EXPECT_ERROR("online && amount", "'&&' needs two bools; got bool and number", 7, 2);
  EXPECT_ERROR("online or country", "'or' needs two bools; got bool and string", 7, 2);
  EXPECT_ERROR("not amount", "'not' needs a bool; got number", 0, 3);
  EXPECT_ERROR("-country == 'x'", "'-' needs a number; got string", 0, 1);
  EXPECT_ERROR("ts > 5", "'>' needs two timestamps; got timestamp and number", 3, 1);
  EXPECT_ERROR("ts + 5 > ts", "'+' needs two numbers; got timestamp and number", 3, 1);
  EXPECT_ERROR("ts - 5 > 1", "'-' needs two numbers or two timestamps; got timestamp and number", 3,
               1);
  EXPECT_ERROR("country == 5", "'==' needs two values of the same type; got string and number", 8,
               2);
  EXPECT_ERROR("country == null", "'==' with null is always null: write 'is null'", 8, 2);
  EXPECT_ERROR("country != null", "'!=' with null is always null: write 'is not null'", 8, 2);
  EXPECT_ERROR("amount + null > 1", "'+' needs two numbers; got number and null", 7, 1);
  EXPECT_ERROR("online in high_risk_mcc", "'in' needs a string or a number on its left; got bool",
               7, 2);
  EXPECT_ERROR("amount in names",
               "list 'names' holds values that are not numbers; got number on the left of 'in'", 10,
               5);
  EXPECT_ERROR("country in ids", "list 'ids' holds numbers; got string on the left of 'in'", 11, 3);
  EXPECT_ERROR("country in ('RU', 5)", "list value is a number; the left of 'in' is a string", 18,
               1);
  EXPECT_ERROR("abs(country) > 1", "'abs' needs a number; got string", 4, 7);
  EXPECT_ERROR("starts_with(country, 5)",
               "argument 2 of 'starts_with' must be a string; got number", 21, 1);
  EXPECT_ERROR("coalesce(amount, country) > 1",
               "'coalesce' needs arguments of one type; got number and string", 17, 7);
  EXPECT_ERROR("hour_of_day(amount) > 1", "'hour_of_day' needs a timestamp; got number", 12, 6);
  EXPECT_ERROR("amount + 1", "a condition must be a bool; this expression is a number", 0, 10);
  EXPECT_ERROR(" (amount) ", "a condition must be a bool; this expression is a number", 2, 6);
  const Diagnostic d = Err("amount > 1", Type::kNumber);
  EXPECT_EQ(d.message, "expected a number; this expression is a bool");
  EXPECT_EQ(d.code, Errc::kType);
}

TEST_F(ExprTest, Limits) {
  std::string deep = std::string(40, '(') + "online" + std::string(40, ')');
  Diagnostic d = Err(deep);
  EXPECT_EQ(d.code, Errc::kTooComplex);
  EXPECT_EQ(d.message, "expression nested too deeply (more than 32 levels)");
  EXPECT_EQ(d.offset, 32u);

  std::string nots;
  for (int i = 0; i < 40; ++i) nots += "not ";
  EXPECT_EQ(Err(nots + "online").code, Errc::kTooComplex);

  // 25 nested calls of four arguments each need 76 stack entries.
  std::string wide;
  for (int i = 0; i < 25; ++i) wide += "distance(lat, lon, lat, ";
  wide += "lat" + std::string(25, ')') + " > 1";
  d = Err(wide);
  EXPECT_EQ(d.code, Errc::kTooComplex);
  EXPECT_EQ(d.message, "expression too complex: it needs more than 64 stack entries");

  // A long flat expression is fine: its stack stays shallow.
  std::string flat = "amount > 0";
  for (int i = 0; i < 500; ++i) flat += " and amount > " + std::to_string(i % 50);
  EXPECT_EQ(Eval(flat), Tri::kTrue);

  EXPECT_EQ(Err(std::string(70000, ' ')).code, Errc::kTooComplex);
}

TEST_F(ExprTest, Arithmetic) {
  EXPECT_EQ(Num("amount * 2 + 1"), 201);
  EXPECT_EQ(Num("2 + 3 * 4"), 14);
  EXPECT_EQ(Num("(2 + 3) * 4"), 20);
  EXPECT_EQ(Num("10 - 4 - 3"), 3);
  EXPECT_EQ(Num("100 / 10 / 5"), 2);
  EXPECT_EQ(Num("7 % 3"), 1);
  EXPECT_EQ(Num("-7 % 3"), -1);
  EXPECT_EQ(Num("10 / 4"), 2.5);
  EXPECT_EQ(Num("-amount"), -100);
  EXPECT_EQ(Num("- -amount"), 100);
  EXPECT_EQ(Num("2.5e2"), 250);
  EXPECT_EQ(Num(".5"), 0.5);
  EXPECT_EQ(Num("mcc_code + 1"), 5968);
  EXPECT_EQ(Num("card_txn_10m * card_amount_1h"), 7 * 4210.5);
  EXPECT_EQ(Eval("amount * 2 + 1 == 201"), Tri::kTrue);
  EXPECT_EQ(Eval("1 + 2 * 3 == 7 and 2 * 3 + 1 == 7"), Tri::kTrue);
}

TEST_F(ExprTest, DurationsAreSeconds) {
  EXPECT_EQ(Num("10m"), 600);
  EXPECT_EQ(Num("10min"), 600);
  EXPECT_EQ(Num("1h"), 3600);
  EXPECT_EQ(Num("30d"), 30 * 86400);
  EXPECT_EQ(Num("45s"), 45);
  EXPECT_EQ(Num("500ms"), 0.5);
  EXPECT_EQ(Num("250us"), 0.00025);
  EXPECT_EQ(Num("1.5h"), 5400);
  EXPECT_EQ(Eval("card_secs_since_last < 30s"), Tri::kTrue);
  EXPECT_EQ(Eval("ts - prev_ts < 2m"), Tri::kTrue);
}

TEST_F(ExprTest, Comparisons) {
  EXPECT_EQ(Eval("amount > 99"), Tri::kTrue);
  EXPECT_EQ(Eval("amount > 100"), Tri::kFalse);
  EXPECT_EQ(Eval("amount >= 100"), Tri::kTrue);
  EXPECT_EQ(Eval("amount < 100"), Tri::kFalse);
  EXPECT_EQ(Eval("amount <= 100"), Tri::kTrue);
  EXPECT_EQ(Eval("amount == 100"), Tri::kTrue);
  EXPECT_EQ(Eval("amount != 100"), Tri::kFalse);
  // The constant on the left: fused with the operands swapped.
  EXPECT_EQ(Eval("99 < amount"), Tri::kTrue);
  EXPECT_EQ(Eval("100 < amount"), Tri::kFalse);
  EXPECT_EQ(Eval("101 >= amount"), Tri::kTrue);
  EXPECT_EQ(Eval("7 <= card_txn_10m"), Tri::kTrue);
  EXPECT_EQ(Eval("8 <= card_txn_10m"), Tri::kFalse);
  EXPECT_EQ(Eval("amount * 2 > 150"), Tri::kTrue);
  EXPECT_EQ(Eval("150 > amount * 2"), Tri::kFalse);
  EXPECT_EQ(Eval("card_amount_1h > 3 * amount"), Tri::kTrue);
  EXPECT_EQ(Eval("online == true"), Tri::kTrue);
  EXPECT_EQ(Eval("online != false"), Tri::kTrue);
  EXPECT_EQ(Eval("-0.0 == 0"), Tri::kTrue);
}

TEST_F(ExprTest, NullSemantics) {
  // Null sources: a missing field, a NaN slot, division by zero, log of a non-positive.
  EXPECT_EQ(Eval("qty > 1"), Tri::kNull);
  EXPECT_EQ(Eval("qty + 1 > 1"), Tri::kNull);
  EXPECT_EQ(Eval("card_avg_30d > 1"), Tri::kNull);
  EXPECT_EQ(Eval("1 < card_avg_30d"), Tri::kNull);
  EXPECT_EQ(Eval("amount / 0 > 1"), Tri::kNull);
  EXPECT_EQ(Eval("amount % 0 > 1"), Tri::kNull);
  EXPECT_EQ(Eval("qty == qty"), Tri::kNull);
  EXPECT_EQ(Eval("device == 'x'"), Tri::kNull);
  EXPECT_EQ(Eval("device != 'x'"), Tri::kNull);
  EXPECT_EQ(Eval("device == country"), Tri::kNull);
  EXPECT_EQ(Eval("flag == true"), Tri::kNull);
  EXPECT_EQ(Eval("flag"), Tri::kNull);
  EXPECT_EQ(Eval("not flag"), Tri::kNull);
  EXPECT_TRUE(std::isnan(Num("qty * 2")));
  EXPECT_TRUE(std::isnan(Num("max(amount, qty)")));
  EXPECT_TRUE(std::isnan(Num("min(qty, amount)")));
  // Kleene logic.
  EXPECT_EQ(Eval("flag and false"), Tri::kFalse);
  EXPECT_EQ(Eval("false and flag"), Tri::kFalse);
  EXPECT_EQ(Eval("flag and true"), Tri::kNull);
  EXPECT_EQ(Eval("true and flag"), Tri::kNull);
  EXPECT_EQ(Eval("flag or true"), Tri::kTrue);
  EXPECT_EQ(Eval("true or flag"), Tri::kTrue);
  EXPECT_EQ(Eval("flag or false"), Tri::kNull);
  EXPECT_EQ(Eval("false or flag"), Tri::kNull);
  // is [not] null.
  EXPECT_EQ(Eval("qty is null"), Tri::kTrue);
  EXPECT_EQ(Eval("amount is null"), Tri::kFalse);
  EXPECT_EQ(Eval("amount is not null"), Tri::kTrue);
  EXPECT_EQ(Eval("device is null and country is not null"), Tri::kTrue);
  EXPECT_EQ(Eval("flag is null"), Tri::kTrue);
  EXPECT_EQ(Eval("online is null"), Tri::kFalse);
  EXPECT_EQ(Eval("ts is not null and prev_ts is not null"), Tri::kTrue);
  EXPECT_EQ(Eval("card_avg_30d is null"), Tri::kTrue);
  EXPECT_EQ(Eval("amount / 0 is null"), Tri::kTrue);
  EXPECT_EQ(Eval("null is null"), Tri::kTrue);
  EXPECT_EQ(Eval("null is not null"), Tri::kFalse);
  EXPECT_EQ(Eval("(qty > 1) is null"), Tri::kTrue);
}

// Every and/or/not shape over three three-valued inputs, against a reference Kleene logic.
TEST_F(ExprTest, KleeneTruthTables) {
  auto tri = [](double v) { return std::isnan(v) ? 1 : v == 1 ? 2 : 0; };
  struct Shape {
    const char* text;
    int (*ref)(int, int, int);
  };
  const Shape shapes[] = {
      {"x == 1 and y == 1 and z == 1",
       [](int a, int b, int c) {
         return std::min({a, b, c});
       }},
      {"x == 1 or y == 1 or z == 1",
       [](int a, int b, int c) {
         return std::max({a, b, c});
       }},
      {"(x == 1 or y == 1) and z == 1",
       [](int a, int b, int c) { return std::min(std::max(a, b), c); }},
      {"x == 1 and (y == 1 or z == 1)",
       [](int a, int b, int c) { return std::min(a, std::max(b, c)); }},
      {"x == 1 and y == 1 or z == 1",
       [](int a, int b, int c) { return std::max(std::min(a, b), c); }},
      {"x == 1 or y == 1 and z == 1",
       [](int a, int b, int c) { return std::max(a, std::min(b, c)); }},
      {"not (x == 1 and y == 1) or z == 1",
       [](int a, int b, int c) { return std::max(2 - std::min(a, b), c); }},
      {"(x == 1 or not y == 1) and not (z == 1 and x == 1)",
       [](int a, int b, int c) { return std::min(std::max(a, 2 - b), 2 - std::min(c, a)); }},
      {"(x == 1 and y == 1) or (y == 1 and z == 1) or (x == 1 and z == 1)",
       [](int a, int b, int c) {
         return std::max({std::min(a, b), std::min(b, c), std::min(a, c)});
       }},
  };
  const double values[] = {0, 1, kNull};
  for (const Shape& shape : shapes) {
    const Program p = Ok(shape.text);
    for (double x : values) {
      for (double y : values) {
        for (double z : values) {
          slots_[kX] = x;
          slots_[kY] = y;
          slots_[kZ] = z;
          EXPECT_EQ(static_cast<int>(p.Evaluate(event_, slots_)), shape.ref(tri(x), tri(y), tri(z)))
              << shape.text << " x=" << x << " y=" << y << " z=" << z;
        }
      }
    }
  }
}

TEST_F(ExprTest, Coalesce) {
  EXPECT_EQ(Num("coalesce(card_avg_30d, 100)"), 100);
  EXPECT_EQ(Num("coalesce(card_amount_1h, 100)"), 4210.5);
  EXPECT_EQ(Num("coalesce(qty, card_avg_30d, 7)"), 7);
  EXPECT_EQ(Num("coalesce(null, amount)"), 100);
  EXPECT_EQ(Num("3 * coalesce(card_avg_30d, 100)"), 300);
  EXPECT_TRUE(std::isnan(Num("coalesce(qty, card_avg_30d)")));
  EXPECT_EQ(Eval("coalesce(device, 'none') == 'none'"), Tri::kTrue);
  EXPECT_EQ(Eval("coalesce(country, 'none') == 'RU'"), Tri::kTrue);
  EXPECT_EQ(Eval("coalesce(flag, false)"), Tri::kFalse);
  EXPECT_EQ(Eval("coalesce(online, false)"), Tri::kTrue);
  EXPECT_EQ(Eval("coalesce(prev_ts, ts) == prev_ts"), Tri::kTrue);
  EXPECT_EQ(Eval("coalesce(null, null) is null"), Tri::kTrue);
  EXPECT_EQ(Eval("card_txn_10m >= 5 and card_amount_1h > 3 * coalesce(card_avg_30d, 100) and "
                 "mcc in high_risk_mcc"),
            Tri::kTrue);
}

TEST_F(ExprTest, Lists) {
  EXPECT_EQ(Eval("mcc in high_risk_mcc"), Tri::kTrue);
  EXPECT_EQ(Eval("mcc not in high_risk_mcc"), Tri::kFalse);
  EXPECT_EQ(Eval("home_country in countries"), Tri::kFalse);
  EXPECT_EQ(Eval("home_country not in countries"), Tri::kTrue);
  EXPECT_EQ(Eval("mcc_code in high_risk_mcc"), Tri::kTrue);  // numbers from a string list
  EXPECT_EQ(Eval("mcc_code + 1 in high_risk_mcc"), Tri::kFalse);
  EXPECT_EQ(Eval("card_txn_10m - 6 in ids"), Tri::kTrue);
  EXPECT_EQ(Eval("card_txn_10m in ids"), Tri::kFalse);
  EXPECT_EQ(Eval("'acme corp' in names"), Tri::kTrue);
  EXPECT_EQ(Eval("coalesce(device, 'KP') in countries"), Tri::kTrue);
  // Null is not in any list, nor out of it.
  EXPECT_EQ(Eval("device in countries"), Tri::kNull);
  EXPECT_EQ(Eval("device not in countries"), Tri::kNull);
  EXPECT_EQ(Eval("qty in ids"), Tri::kNull);
  EXPECT_EQ(Eval("qty not in (1, 2)"), Tri::kNull);
  EXPECT_EQ(Eval("device in ('a', 'b')"), Tri::kNull);
  // Literal lists: short ones scanned, long ones hashed.
  EXPECT_EQ(Eval("country in (\"RU\", \"KP\")"), Tri::kTrue);
  EXPECT_EQ(Eval("country in ('KP')"), Tri::kFalse);
  EXPECT_EQ(Eval("country not in ('DE', 'FR', 'NL')"), Tri::kTrue);
  EXPECT_EQ(Eval("mcc_code in (1, 2, 5967)"), Tri::kTrue);
  EXPECT_EQ(Eval("-amount in (-100, 5)"), Tri::kTrue);
  EXPECT_EQ(Eval("card_secs_since_last in (12s, 1m)"), Tri::kTrue);
  EXPECT_EQ(Eval("country in ('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'RU')"), Tri::kTrue);
  EXPECT_EQ(Eval("country in ('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j')"), Tri::kFalse);
  EXPECT_EQ(Eval("amount in (1, 2, 3, 4, 5, 6, 7, 8, 9, 100)"), Tri::kTrue);
  EXPECT_EQ(Eval("amount not in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)"), Tri::kTrue);
}

TEST_F(ExprTest, ProgramsKeepTheirListsAlive) {
  std::optional<Program> p;
  {
    Lists snapshot;
    snapshot.Add("countries", {"RU"});
    p.emplace(std::move(Compile("country in countries", schema_, snapshot).value()));
    // A reload: the next snapshot replaces the list; the program keeps the old one.
    Lists next = snapshot;
    next.Add("countries", {"KP"});
    EXPECT_EQ(Compile("country in countries", schema_, next).value().Evaluate(event_, slots_),
              Tri::kFalse);
  }
  EXPECT_EQ(p->Evaluate(event_, slots_), Tri::kTrue);
}

TEST_F(ExprTest, Strings) {
  EXPECT_EQ(Eval("country == 'RU'"), Tri::kTrue);
  EXPECT_EQ(Eval("'RU' == country"), Tri::kTrue);
  EXPECT_EQ(Eval("country != \"RU\""), Tri::kFalse);
  EXPECT_EQ(Eval("country == home_country"), Tri::kFalse);
  EXPECT_EQ(Eval("country != home_country"), Tri::kTrue);
  EXPECT_EQ(Eval("country == 'R'"), Tri::kFalse);
  EXPECT_EQ(Eval("'a\"b' == \"a\\\"b\""), Tri::kTrue);
  EXPECT_EQ(Eval("'it\\'s' == \"it's\""), Tri::kTrue);
  EXPECT_EQ(Eval("'a\\\\b' == 'a' and false or true"), Tri::kTrue);
  EXPECT_EQ(Eval("'' == ''"), Tri::kTrue);
  EXPECT_EQ(Eval("starts_with(merchant, 'm_crypto')"), Tri::kTrue);
  EXPECT_EQ(Eval("starts_with(merchant, 'crypto')"), Tri::kFalse);
  EXPECT_EQ(Eval("ends_with(merchant, '_7')"), Tri::kTrue);
  EXPECT_EQ(Eval("ends_with(merchant, 'x')"), Tri::kFalse);
  EXPECT_EQ(Eval("contains(merchant, 'crypto')"), Tri::kTrue);
  EXPECT_EQ(Eval("contains(merchant, 'fiat')"), Tri::kFalse);
  EXPECT_EQ(Eval("contains(merchant, '')"), Tri::kTrue);
  EXPECT_EQ(Eval("starts_with(device, 'x')"), Tri::kNull);
  EXPECT_EQ(Eval("contains(merchant, device)"), Tri::kNull);
}

TEST_F(ExprTest, Functions) {
  EXPECT_EQ(Num("abs(-amount)"), 100);
  EXPECT_EQ(Num("abs(3 - 5)"), 2);
  EXPECT_EQ(Num("min(amount, 50)"), 50);
  EXPECT_EQ(Num("max(amount, 50, card_txn_10m, 300)"), 300);
  EXPECT_EQ(Num("min(amount, 50, card_txn_10m, 300)"), 7);
  EXPECT_DOUBLE_EQ(Num("log(amount)"), std::log(100.0));
  EXPECT_TRUE(std::isnan(Num("log(0)")));
  EXPECT_TRUE(std::isnan(Num("log(amount - 200)")));
  EXPECT_EQ(Num("sqrt(amount)"), 10);
  EXPECT_TRUE(std::isnan(Num("sqrt(-amount)")));
  EXPECT_EQ(Num("round(2.5)"), 3);
  EXPECT_EQ(Num("round(-2.5)"), -3);
  EXPECT_EQ(Num("round(amount / 3)"), 33);
  EXPECT_EQ(Num("hour_of_day(ts)"), 10);
  EXPECT_EQ(Num("day_of_week(ts)"), 1);  // 2026-11-23 is a Monday
  Set(kTs, *ParseIso8601("2026-11-22T23:59:00Z"));
  EXPECT_EQ(Num("hour_of_day(ts)"), 23);
  EXPECT_EQ(Num("day_of_week(ts)"), 7);  // Sunday
  Set(kTs, 0);
  EXPECT_EQ(Num("day_of_week(ts)"), 4);  // 1970-01-01, a Thursday
  EXPECT_EQ(Num("hour_of_day(ts)"), 0);
  EXPECT_NEAR(Num("distance(lat, lon, 48.8566, 2.3522)"), 877.46, 0.01);  // Berlin - Paris
  EXPECT_EQ(Num("distance(lat, lon, lat, lon)"), 0);
  event_.values[kLat] = Value{};
  EXPECT_TRUE(std::isnan(Num("distance(lat, lon, 48.8566, 2.3522)")));
  EXPECT_TRUE(std::isnan(Num("hour_of_day(coalesce(null, prev_ts)) + hour_of_day(ts) * qty")));
}

TEST_F(ExprTest, Timestamps) {
  EXPECT_EQ(Num("ts - prev_ts"), 90);
  EXPECT_EQ(Num("prev_ts - ts"), -90);
  EXPECT_EQ(Eval("ts > prev_ts"), Tri::kTrue);
  EXPECT_EQ(Eval("ts <= prev_ts"), Tri::kFalse);
  EXPECT_EQ(Eval("ts == ts"), Tri::kTrue);
  EXPECT_EQ(Eval("ts != prev_ts"), Tri::kTrue);
  event_.values[kPrevTs] = Value{};
  EXPECT_EQ(Eval("ts > prev_ts"), Tri::kNull);
  EXPECT_TRUE(std::isnan(Num("ts - prev_ts")));
  EXPECT_EQ(Eval("prev_ts is null"), Tri::kTrue);
  EXPECT_TRUE(std::isnan(Num("hour_of_day(prev_ts)")));
}

TEST_F(ExprTest, ShortCircuitAndFusion) {
  // A rule of fused comparisons joined by `and` is one instruction per comparison, one jump
  // and one `and` between them, and the end.
  const Program p = Ok("card_txn_10m >= 5 and amount > 50 and country == 'RU'");
  EXPECT_EQ(p.code_size(), 8u);
  EXPECT_EQ(p.Evaluate(event_, slots_), Tri::kTrue);
  slots_[kTxn10m] = 1;
  EXPECT_EQ(p.Evaluate(event_, slots_), Tri::kFalse);
  slots_[kTxn10m] = kNull;
  EXPECT_EQ(p.Evaluate(event_, slots_), Tri::kNull);
  SetFloat(kAmount, 1);
  EXPECT_EQ(p.Evaluate(event_, slots_), Tri::kFalse);
  // Constants fold.
  EXPECT_EQ(Ok("amount > 3 * 100 + max(1, 2) - 1h / 3600").code_size(), 2u);
}

TEST_F(ExprTest, RefsAndExplain) {
  const Program p = Ok(
      "card_txn_10m >= 5 and card_amount_1h > 3 * coalesce(card_avg_30d, 100) and "
      "card_txn_10m < 100 and country in countries and ts > prev_ts and mcc_code > 1 and online");
  std::vector<std::string> names;
  for (const Program::Ref& r : p.refs()) names.push_back(r.name);
  EXPECT_THAT(names, ElementsAre("card_txn_10m", "card_amount_1h", "card_avg_30d", "country", "ts",
                                 "prev_ts", "mcc_code", "online"));
  EXPECT_TRUE(p.refs()[0].slot);
  EXPECT_EQ(p.refs()[1].index, kAmount1h);
  EXPECT_FALSE(p.refs()[3].slot);
  EXPECT_EQ(p.refs()[3].index, kCountry);
  EXPECT_EQ(p.refs()[3].type, Type::kString);
  std::string out;
  p.Explain(event_, slots_, out);
  EXPECT_EQ(out,
            "card_txn_10m=7, card_amount_1h=4210.50, card_avg_30d=null, country=\"RU\", "
            "ts=2026-11-23T10:15:30.000000Z, prev_ts=2026-11-23T10:14:00.000000Z, "
            "mcc_code=5967, online=true");
  out.clear();
  Ok("qty is null or amount > 0.001").Explain(event_, slots_, out);
  EXPECT_EQ(out, "qty=null, amount=100");
}

TEST_F(ExprTest, Canonical) {
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {
      {"amount>5&&!(country=='RU'||online)", "amount > 5 and not (country == \"RU\" or online)"},
      {"(amount + 1) * 2 > 10m", "(amount + 1) * 2 > 10m"},
      {"amount + (1 * 2) > 1e3", "amount + 1 * 2 > 1000"},
      {"amount - (1 - 2) > 0", "amount - (1 - 2) > 0"},
      {"-(-amount) < 1", "- -amount < 1"},
      {"-abs(-2) < 1", "-abs(-2) < 1"},
      {"-(amount * 2) < 1", "-(amount * 2) < 1"},
      {"(online and flag) or (online and not flag)", "online and flag or online and not flag"},
      {"online and (flag or online)", "online and (flag or online)"},
      {"not not online", "not not online"},
      {"(amount > 1) == (qty > 1)", "(amount > 1) == (qty > 1)"},
      {"country not in ( 'a' , \"b\\\"\" )", "country not in (\"a\", \"b\\\"\")"},
      {"mcc in high_risk_mcc", "mcc in high_risk_mcc"},
      {"(device) is not null", "device is not null"},
      {"max( amount,2 ,coalesce(qty, 1)) > 1", "max(amount, 2, coalesce(qty, 1)) > 1"},
      {"null is null", "null is null"},
  };
  for (const Case& c : cases) {
    const Program p = Ok(c.in);
    EXPECT_EQ(p.canonical(), c.out) << c.in;
    // Canonical text compiles to itself.
    EXPECT_EQ(Ok(p.canonical()).canonical(), p.canonical());
  }
}

TEST(Schema, FromFieldSpecsAndDuplicates) {
  std::vector<config::FieldSpec> fields(3);
  fields[0].name = "amount";
  fields[0].type = FieldType::kFloat;
  fields[1].name = "ts";
  fields[1].type = FieldType::kTimestamp;
  fields[2].name = "lat";
  fields[2].type = FieldType::kLat;
  Schema s(fields);
  EXPECT_EQ(s.field_count(), 3);
  ASSERT_NE(s.Find("lat"), nullptr);
  EXPECT_EQ(s.Find("lat")->type, Type::kNumber);
  EXPECT_EQ(s.Find("lat")->index, 2);
  EXPECT_EQ(s.Find("ts")->type, Type::kTimestamp);
  EXPECT_EQ(s.Find("nope"), nullptr);
  Result<int, Errc> r = s.AddSlot("card_txn_10m");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), 0);
  r = s.AddSlot("amount");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kDuplicateName);
  EXPECT_EQ(r.error().message, "'amount' is declared twice");
  EXPECT_EQ(s.slot_count(), 1);
}

class ListFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& content) {
    const std::string path =
        (std::filesystem::path(::testing::TempDir()) /
         ("vigil_rules_list_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
          "_" + std::to_string(files_.size()) + ".txt"))
            .string();
    std::ofstream(path, std::ios::binary) << content;
    files_.push_back(path);
    return path;
  }
  ~ListFileTest() override {
    for (const std::string& f : files_) std::remove(f.c_str());
  }
  std::vector<std::string> files_;
};

TEST_F(ListFileTest, ReadsValues) {
  const std::string path = Write(
      "\xEF\xBB\xBF# high-risk merchant category codes\n"
      "5967\n"
      "  7995   # betting\r\n"
      "\n"
      "\t4829\t\n"
      "   # indented comment\n"
      "merchant #12\n"
      "ACME CORP");
  Result<std::vector<std::string>, Errc> r = LoadList(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_THAT(r.value(), ElementsAre("5967", "7995", "4829", "merchant", "ACME CORP"));
  EXPECT_TRUE(LoadList(Write("")).value().empty());
}

TEST_F(ListFileTest, Errors) {
  Result<std::vector<std::string>, Errc> r = LoadList("/nonexistent/list.txt");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kListFile);
  EXPECT_EQ(r.error().message, "/nonexistent/list.txt: cannot open: No such file or directory");

  std::string path = Write("RU\n# ok\n\"KP\"\n");
  r = LoadList(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, path + ":3: write values without quotes: KP, not \"KP\"");

  path = Write("RU\nK\x01P\n");
  EXPECT_EQ(LoadList(path).error().message, path + ":2: control character 0x01 in a value");

  path = Write("RU\n\xC3\x28\n");
  EXPECT_EQ(LoadList(path).error().message, path + ":2: not valid UTF-8");
  EXPECT_TRUE(LoadList(Write("Caf\xC3\xA9\n")).ok());
}

TEST(MapOffset, PlainAndQuotedScalars) {
  EXPECT_EQ(MapOffset(4, 10, ScalarStyle::kPlain, "amout > 5", 0).column, 10);
  EXPECT_EQ(MapOffset(4, 10, ScalarStyle::kPlain, "a > amout", 4).column, 14);
  EXPECT_EQ(MapOffset(4, 10, ScalarStyle::kDoubleQuoted, "a > amout", 4).column, 15);
  // "x == \"a\" and amout"  : the escaped quotes take two columns each.
  EXPECT_EQ(MapOffset(0, 0, ScalarStyle::kDoubleQuoted, "x == \"a\" and amout", 13).column, 16);
  // 'x == ''a'' and amout'
  EXPECT_EQ(MapOffset(0, 0, ScalarStyle::kSingleQuoted, "x == 'a' and amout", 13).column, 16);
  EXPECT_EQ(MapOffset(2, 0, ScalarStyle::kPlain, "abc", 99).column, 3);  // clamped to the end
  EXPECT_EQ(MapOffset(2, 0, ScalarStyle::kPlain, "abc", 1).line, 2);
}

// End to end with yaml-cpp: the mapped position points at the offending token in the file.
TEST_F(ExprTest, MapOffsetFindsTheTokenInTheFile) {
  const std::string file =
      "rules:\n"
      "  - when: amount > 5 and amout < 9\n"
      "  - when: \"country == \\\"RU\\\" and amout > 1\"\n"
      "  - {id: r3, when: 'country == ''RU'' and amout > 1'}\n"
      "  - when:    \"mcc in high_risk_mcc and \\\\ amout\"\n";
  const YAML::Node root = YAML::Load(file);
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < file.size();) {
    const size_t end = file.find('\n', pos);
    lines.push_back(file.substr(pos, end - pos));
    pos = end + 1;
  }
  int checked = 0;
  for (const YAML::Node& rule : root["rules"]) {
    const YAML::Node when = rule["when"];
    const std::string text = when.as<std::string>();
    const Diagnostic d = Err(text);
    const char first = file[when.Mark().pos];
    const ScalarStyle style = first == '"'    ? ScalarStyle::kDoubleQuoted
                              : first == '\'' ? ScalarStyle::kSingleQuoted
                                              : ScalarStyle::kPlain;
    const LineCol at = MapOffset(when.Mark().line, when.Mark().column, style, text, d.offset);
    const std::string& line = lines[static_cast<size_t>(at.line)];
    const std::string token = text.substr(d.offset, d.length);
    EXPECT_EQ(line.substr(static_cast<size_t>(at.column), token.size()), token)
        << text << ": " << d.message;
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

TEST_F(ExprTest, EvaluateGuardsShortInputs) {
  // Debug builds assert; this checks the release behaviour only.
#ifdef NDEBUG
  const Program p = Ok("amount > 1");
  Event empty;
  EXPECT_EQ(p.Evaluate(empty, slots_), Tri::kNull);
#endif
}

TEST(ErrcName, Names) {
  EXPECT_EQ(ErrcName(Errc::kUnknownName), "unknown_name");
  EXPECT_EQ(TypeName(Type::kTimestamp), "timestamp");
}

}  // namespace
}  // namespace vigil::rules
