#include "vigil/api/event_stream.h"

#include <chrono>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vigil::api {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

TEST(EventStream, ReadersGetWhatWasPublishedAfterTheyJoined) {
  EventStream s(8);
  std::vector<std::string> before = {R"({"event_id":"old"})"};
  s.OnCommit(before);
  uint64_t cursor = s.Head();
  std::vector<std::string> alerts = {R"({"event_id":"a"})", R"({"event_id":"b"})"};
  s.OnCommit(alerts);
  sink::RunSummary sum;
  sum.read = 10;
  sum.alerts = 2;
  s.PublishKpi(sum, 5.0);
  std::string out;
  uint64_t dropped = 0;
  ASSERT_TRUE(s.Read(cursor, out, dropped, milliseconds(0)));
  EXPECT_EQ(out.find("old"), std::string::npos);
  EXPECT_THAT(out, HasSubstr("event: alert\ndata: {\"event_id\":\"a\"}\n\n"
                             "event: alert\ndata: {\"event_id\":\"b\"}\n\n"
                             "event: kpi\ndata: {\"events_per_second\":5,\"read\":10,"));
  EXPECT_THAT(out, HasSubstr("\"alerts\":2,"));
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(cursor, s.Head());
}

TEST(EventStream, ASlowReaderSkipsWhatWasOverwrittenAndIsTold) {
  EventStream s(4);
  uint64_t cursor = s.Head();
  std::vector<std::string> alerts;
  for (int i = 0; i < 10; ++i) alerts.push_back("{\"n\":" + std::to_string(i) + "}");
  s.OnCommit(alerts);  // the writer never waits: the ring keeps the last 4
  std::string out;
  uint64_t dropped = 0;
  ASSERT_TRUE(s.Read(cursor, out, dropped, milliseconds(0)));
  EXPECT_EQ(dropped, 6u);
  EXPECT_EQ(s.dropped_total(), 6u);
  EXPECT_EQ(out.find("{\"n\":5}"), std::string::npos);
  EXPECT_THAT(out, HasSubstr("{\"n\":6}"));
  EXPECT_THAT(out, HasSubstr("{\"n\":9}"));
}

TEST(EventStream, ReadTimesOutEmptyAndStopsOnceClosed) {
  EventStream s(4);
  uint64_t cursor = s.Head();
  std::string out;
  uint64_t dropped = 0;
  EXPECT_TRUE(s.Read(cursor, out, dropped, milliseconds(10)));
  EXPECT_TRUE(out.empty());
  s.Close();
  EXPECT_FALSE(s.Read(cursor, out, dropped, milliseconds(1000)));
}

}  // namespace
}  // namespace vigil::api
