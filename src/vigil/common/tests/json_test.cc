#include "vigil/common/json.h"

#include <charconv>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <simdjson.h>

namespace vigil {
namespace {

TEST(Json, EscapesStrings) {
  std::string out;
  AppendJsonString(out, std::string_view("a\"b\\c\nd\x01\xc3\xa9", 10));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\u0001\xc3\xa9\"");
}

// The word-at-a-time scan must stop at exactly the first byte that needs escaping, whatever
// the byte and wherever it sits in a word, among bytes that borrow or carry in the scan's
// arithmetic (0x21, 0x7f, 0x80, 0xff), and with a second one after it.
TEST(Json, PlainPrefixStopsAtTheFirstByteToEscape) {
  auto byte_by_byte = [](std::string_view s) {
    size_t i = 0;
    for (; i < s.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c == '"' || c == '\\') break;
    }
    return i;
  };
  for (int b = 0; b < 256; ++b) {
    for (size_t at = 0; at < 19; ++at) {
      for (const char around : {'a', '\x21', '\x7f', '\x80', '\xff'}) {
        std::string s(19, around);
        s[at] = static_cast<char>(b);
        ASSERT_EQ(JsonPlainPrefix(s), byte_by_byte(s))
            << "byte " << b << " at " << at << " among " << static_cast<int>(around & 0xff);
        if (at + 3 < s.size()) s[at + 3] = '"';
        ASSERT_EQ(JsonPlainPrefix(s), byte_by_byte(s)) << "byte " << b << " at " << at;
      }
    }
  }
  EXPECT_EQ(JsonPlainPrefix("card-4000001234567899"), 21u);
  EXPECT_EQ(JsonPlainPrefix("card-400000123456\n7899"), 17u);
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

// Whole numbers take a shortcut; the text must be what the shortest form gives.
TEST(Json, WholeNumbersReadAsTheShortestForm) {
  auto shortest = [](double v) {
    char buf[32];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, p);
  };
  std::vector<double> values = {0.0,      -0.0,    1.0,   -1.0,     7.0,   10.0, 100.0,
                                1000.0,   10000.0, 99999, -99999.0, 1e5,   -1e5, 100001,
                                123456.0, 1e6,     1e15,  0.5,      -2.25, 3e-7, 99999.5};
  for (int i = -2000; i <= 2000; ++i) values.push_back(i * 50.0);
  for (const double v : values) {
    std::string out;
    AppendJsonNumber(out, v);
    EXPECT_EQ(out, shortest(v)) << v;
  }
}

// Decimals of up to six places take a shortcut too; compared with the shortest form over
// grid values (amounts, coordinates), values just off the grid, and the range's edges.
TEST(Json, DecimalsReadAsTheShortestForm) {
  auto shortest = [](double v) {
    char buf[32];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, p);
  };
  std::vector<double> values = {0.001,    0.0009999,  -0.001,    0.0015,     0.01,
                                0.1,      0.5,        -2.25,     99999.99,   99999.999999,
                                -99999.5, 1e5 - 1e-6, 12.345678, 12.3456789, 180.0 - 1e-6,
                                0.3,      0.7,        1.0 / 3.0, 2.675,      1e-3 + 1e-9};
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200000; ++i) {
    const int64_t k = static_cast<int64_t>(rng() % 10'000'000'000ull) - 5'000'000'000;
    values.push_back(static_cast<double>(k) / 100.0);                     // amounts
    values.push_back(static_cast<double>(k) / 1e6);                       // six places
    values.push_back(static_cast<double>(k % 1'800'000) / 1e4);           // coordinates
    values.push_back(std::nextafter(static_cast<double>(k) / 1e6, 1e9));  // just off the grid
    values.push_back(std::uniform_real_distribution<double>(-2e5, 2e5)(rng));
  }
  for (const double v : values) {
    std::string out;
    AppendJsonNumber(out, v);
    ASSERT_EQ(out, shortest(v)) << std::hexfloat << v;
  }
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
