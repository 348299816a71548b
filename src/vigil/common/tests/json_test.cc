#include "vigil/common/json.h"

#include <limits>

#include <gtest/gtest.h>
#include <simdjson.h>

namespace vigil {
namespace {

TEST(Json, EscapesStrings) {
  std::string out;
  AppendJsonString(out, std::string_view("a\"b\\c\nd\x01\xc3\xa9", 10));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\u0001\xc3\xa9\"");
}

TEST(Json, NumbersRoundTripAndNonFiniteIsNull) {
  std::string out;
  AppendJsonNumber(out, 0.1);
  out += ' ';
  AppendJsonNumber(out, std::numeric_limits<double>::infinity());
  out += ' ';
  AppendJsonNumber(out, int64_t{-42});
  EXPECT_EQ(out, "0.1 null -42");
}

TEST(Json, EscaperRoundTripsThroughAParser) {
  const std::string nasty = std::string("q\"b\\s/n\nr\rt\tb\bf\fz") + '\x01' + '\x1f' + "\xc3\xa9";
  std::string json = "{\"k\":";
  AppendJsonString(json, nasty);
  json += "}";
  EXPECT_NE(json.find("\\u0001"), std::string::npos);
  EXPECT_NE(json.find("\\u001f"), std::string::npos);
  EXPECT_NE(json.find("q\\\"b\\\\s/n\\nr\\rt\\tb\\bf\\fz"), std::string::npos) << json;
  simdjson::dom::parser parser;
  std::string_view back;
  ASSERT_EQ(parser.parse(json)["k"].get(back), simdjson::SUCCESS) << json;
  EXPECT_EQ(back, nasty);
}

}  // namespace
}  // namespace vigil
