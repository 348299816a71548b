#include "vigil/common/time.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(Iso8601, ParsesUtcAndOffsets) {
  EXPECT_EQ(ParseIso8601("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseIso8601("1970-01-01T00:00:01.5Z"), 1'500'000);
  EXPECT_EQ(ParseIso8601("2026-11-23T10:15:30Z"), 1795428930LL * 1000000);
  EXPECT_EQ(ParseIso8601("2026-11-23 11:15:30+01:00"), 1795428930LL * 1000000);
  EXPECT_EQ(ParseIso8601("2026-11-23T05:15:30-0500"), 1795428930LL * 1000000);
  EXPECT_EQ(ParseIso8601("2026-11-23T10:15:30.123456789Z"), 1795428930LL * 1000000 + 123456);
  EXPECT_EQ(ParseIso8601("2026-11-23"), 1795392000LL * 1000000);
}

TEST(Iso8601, RejectsImpossibleDates) {
  EXPECT_FALSE(ParseIso8601("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-02-29T00:00:00Z"));  // 2026 is not a leap year
  EXPECT_TRUE(ParseIso8601("2024-02-29T00:00:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-04-31T00:00:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-01-01T24:00:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-01-01T10:60:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-01-01T10:00:00Q"));
  EXPECT_FALSE(ParseIso8601("2026-1-01"));
  EXPECT_FALSE(ParseIso8601(""));
  EXPECT_FALSE(ParseIso8601("yesterday"));
  EXPECT_FALSE(ParseIso8601("2026-01-01T10:00:00."));
}

TEST(Iso8601, FormatRoundTrips) {
  for (int64_t us : {0LL, 1LL, 1795428930123456LL, 951782400000000LL /* 2000-02-29 */}) {
    EXPECT_EQ(ParseIso8601(FormatIso8601(us)), us) << FormatIso8601(us);
  }
  EXPECT_EQ(FormatIso8601(1795428930123456LL), "2026-11-23T10:15:30.123456Z");
}

TEST(Epoch, UnitsAreExactForIntegers) {
  EXPECT_EQ(ParseEpoch("1795428930", TimeFormat::kEpochS), 1795428930LL * 1000000);
  EXPECT_EQ(ParseEpoch("1795428930123", TimeFormat::kEpochMs), 1795428930123000LL);
  EXPECT_EQ(ParseEpoch("1795428930123456", TimeFormat::kEpochUs), 1795428930123456LL);
  EXPECT_EQ(ParseEpoch("1795428930123456789", TimeFormat::kEpochNs), 1795428930123456LL);
  EXPECT_EQ(ParseEpoch("1.5", TimeFormat::kEpochS), 1'500'000);
  EXPECT_FALSE(ParseEpoch("12x", TimeFormat::kEpochS));
  EXPECT_FALSE(ParseEpoch("", TimeFormat::kEpochS));
  EXPECT_FALSE(ParseEpoch("1e300", TimeFormat::kEpochS));
}

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(ParseDuration("500ms"), 500'000);
  EXPECT_EQ(ParseDuration("10m"), 600'000'000);
  EXPECT_EQ(ParseDuration("30d"), 30LL * 86400 * 1000000);
  EXPECT_FALSE(ParseDuration("10"));
  EXPECT_FALSE(ParseDuration("-1s"));
  EXPECT_FALSE(ParseDuration("5 weeks"));
}

}  // namespace
}  // namespace vigil
