#include "vigil/decode/internal/field_parser.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace vigil::decode_internal {
namespace {

using decode::DecodeStatus;
using decode::Errc;

TEST(FieldParser, ParseInt) {
  int64_t v = 0;
  EXPECT_EQ(ParseInt("42", v), NumberParse::kOk);
  EXPECT_EQ(v, 42);
  EXPECT_EQ(ParseInt("-9223372036854775808", v), NumberParse::kOk);
  EXPECT_EQ(v, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(ParseInt("9223372036854775808", v), NumberParse::kRange);
  EXPECT_EQ(ParseInt("12.5", v), NumberParse::kSyntax);
  EXPECT_EQ(ParseInt("1e3", v), NumberParse::kSyntax);
  EXPECT_EQ(ParseInt("+1", v), NumberParse::kSyntax);
  EXPECT_EQ(ParseInt("", v), NumberParse::kSyntax);
  EXPECT_EQ(ParseInt("-", v), NumberParse::kSyntax);
  EXPECT_EQ(ParseInt("0x10", v), NumberParse::kSyntax);
}

TEST(FieldParser, ParseFloat) {
  double v = 0;
  EXPECT_EQ(ParseFloat("12.5", v), NumberParse::kOk);
  EXPECT_EQ(v, 12.5);
  EXPECT_EQ(ParseFloat("-1e-3", v), NumberParse::kOk);
  EXPECT_EQ(v, -0.001);
  EXPECT_EQ(ParseFloat("7", v), NumberParse::kOk);
  EXPECT_EQ(ParseFloat("12,50", v), NumberParse::kSyntax);
  EXPECT_EQ(ParseFloat("0x1p3", v), NumberParse::kSyntax);
  EXPECT_EQ(ParseFloat("1.5x", v), NumberParse::kSyntax);
  EXPECT_EQ(ParseFloat("", v), NumberParse::kSyntax);
  for (const char* s : {"nan", "NaN", "inf", "-Infinity", "INF", "1e999", "-1e999"}) {
    EXPECT_EQ(ParseFloat(s, v), NumberParse::kNonFinite) << s;
  }
  EXPECT_EQ(ParseFloat("1e-999", v), NumberParse::kOk);
  EXPECT_EQ(v, 0.0);
}

TEST(FieldParser, ParseBool) {
  for (const char* s : {"true", "TRUE", "True", "yes", "YeS", "1"})
    EXPECT_EQ(ParseBool(s), true) << s;
  for (const char* s : {"false", "FALSE", "no", "No", "0"}) EXPECT_EQ(ParseBool(s), false) << s;
  for (const char* s : {"", "t", "f", "y", "2", "truee", "nope", "on"}) {
    EXPECT_EQ(ParseBool(s), std::nullopt) << s;
  }
}

TEST(FieldParser, IsJsonNumber) {
  for (const char* s : {"0", "-0", "12", "-12.5", "1e5", "1E+5", "1.5e-7", "0.0"}) {
    EXPECT_TRUE(IsJsonNumber(s)) << s;
  }
  for (const char* s :
       {"", "-", "01", "1.", ".5", "+1", "1e", "1e+", "1.e5", "0x1", "1 ", "NaN", "--1", "1.2.3"}) {
    EXPECT_FALSE(IsJsonNumber(s)) << s;
  }
}

TEST(FieldParser, TrimSpace) {
  EXPECT_EQ(TrimSpace(" \t12 \t"), "12");
  EXPECT_EQ(TrimSpace("   "), "");
  EXPECT_EQ(TrimSpace("a b"), "a b");
}

TEST(FieldParser, QuoteEscapesAndTruncatesOnCharacterBoundaries) {
  EXPECT_EQ(Quote("12,50"), "\"12,50\"");
  EXPECT_EQ(Quote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
  EXPECT_EQ(Quote("caf\xC3\xA9"), "\"caf\xC3\xA9\"");
  EXPECT_EQ(Quote("caf\xE9!"), "\"caf\\xE9!\"");
  // Overlong forms and surrogates are not UTF-8 either.
  EXPECT_EQ(Quote("\xC0\xAF\xED\xA0\x80"), "\"\\xC0\\xAF\\xED\\xA0\\x80\"");
  EXPECT_EQ(Quote("\xF0\x9F\x98\x80"), "\"\xF0\x9F\x98\x80\"");
  EXPECT_EQ(Quote(std::string(100, 'x')), "\"" + std::string(64, 'x') + "\"...");
  // 63 ASCII bytes then a 2-byte character straddling the cut: the whole character goes.
  const std::string straddle = std::string(63, 'x') + "\xC3\xA9" + "tail";
  EXPECT_EQ(Quote(straddle), "\"" + std::string(63, 'x') + "\"...");
}

class SetFieldTest : public ::testing::Test {
 protected:
  SetResult Set(FieldType type, Source source, std::string_view text) {
    spec_.type = type;
    event_.Reset(1);
    status_ = {};
    return SetField(spec_, 0, source, text, event_, status_);
  }
  config::FieldSpec spec_ = [] {
    config::FieldSpec f;
    f.name = f.from = "f";
    return f;
  }();
  Event event_;
  DecodeStatus status_;
};

TEST_F(SetFieldTest, EmptyTextIsMissingExceptForStrings) {
  EXPECT_EQ(Set(FieldType::kInt, Source::kText, " "), SetResult::kEmpty);
  EXPECT_EQ(Set(FieldType::kBool, Source::kText, ""), SetResult::kEmpty);
  EXPECT_EQ(Set(FieldType::kTimestamp, Source::kText, ""), SetResult::kEmpty);
  EXPECT_EQ(event_.values[0].kind, Value::Kind::kNull);
  EXPECT_EQ(Set(FieldType::kString, Source::kText, ""), SetResult::kSet);
  EXPECT_EQ(event_.values[0].kind, Value::Kind::kString);
}

TEST_F(SetFieldTest, ErrorsLeaveTheValueUntouched) {
  EXPECT_EQ(Set(FieldType::kFloat, Source::kText, "x"), SetResult::kError);
  EXPECT_EQ(event_.values[0].kind, Value::Kind::kNull);
  EXPECT_EQ(status_.code, Errc::kBadType);
  EXPECT_EQ(status_.field, "f");
  EXPECT_EQ(status_.message, "field 'f': expected float, got \"x\"");
}

TEST_F(SetFieldTest, BoundsApplyToIntsAndFloats) {
  spec_.min = -1.5;
  spec_.max = 10;
  EXPECT_EQ(Set(FieldType::kInt, Source::kNumber, "10"), SetResult::kSet);
  EXPECT_EQ(Set(FieldType::kInt, Source::kNumber, "11"), SetResult::kError);
  EXPECT_EQ(status_.message, "field 'f': 11 is above max 10");
  EXPECT_EQ(Set(FieldType::kFloat, Source::kText, "-1.6"), SetResult::kError);
  EXPECT_EQ(status_.code, Errc::kOutOfRange);
  EXPECT_EQ(status_.message, "field 'f': -1.6 is below min -1.5");
  EXPECT_EQ(Set(FieldType::kLat, Source::kNumber, "-1.5"), SetResult::kSet);
}

TEST_F(SetFieldTest, EpochUnits) {
  spec_.time_format = TimeFormat::kEpochNs;
  ASSERT_EQ(Set(FieldType::kTimestamp, Source::kNumber, "1700000000123456789"), SetResult::kSet);
  EXPECT_EQ(event_.values[0].i, 1700000000123456);
  spec_.time_format = TimeFormat::kEpochUs;
  ASSERT_EQ(Set(FieldType::kTimestamp, Source::kText, "1700000000123456"), SetResult::kSet);
  EXPECT_EQ(event_.values[0].i, 1700000000123456);
  spec_.time_format = TimeFormat::kEpochS;
  ASSERT_EQ(Set(FieldType::kTimestamp, Source::kNumber, "7258118399"), SetResult::kSet);
  EXPECT_EQ(Set(FieldType::kTimestamp, Source::kNumber, "7258118400"), SetResult::kError);
  EXPECT_EQ(status_.code, Errc::kBadTimestamp);
  EXPECT_EQ(Set(FieldType::kTimestamp, Source::kText, "nan"), SetResult::kError);
  EXPECT_EQ(status_.code, Errc::kBadTimestamp);
}

}  // namespace
}  // namespace vigil::decode_internal
