#include "vigil/common/json.h"

#include <limits>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace vigil
