#include "vigil/sink/records.h"

#include <gtest/gtest.h>

#include "vigil/sink/summary.h"

namespace vigil::sink {
namespace {

TEST(DeadLetter, CarriesPositionReasonFieldAndRaw) {
  std::string out;
  AppendDeadLetter(out, {"in.jsonl", 7, 120}, decode::Errc::kBadType, "amount",
                   "field 'amount': expected float, got \"x\"", R"({"amount":"x"})");
  EXPECT_EQ(out,
            R"({"source":"in.jsonl","line":7,"offset":120,"reason":"bad_type","field":"amount",)"
            R"("message":"field 'amount': expected float, got \"x\"","raw":"{\"amount\":\"x\"}"})"
            "\n");
}

TEST(DeadLetter, InvalidUtf8IsKeptAsBase64) {
  std::string out;
  AppendDeadLetter(out, {"in", 1, 0}, decode::Errc::kParse, "", "not JSON",
                   std::string_view("\xff\xfe\x00", 3));
  EXPECT_NE(out.find(R"("field":null)"), std::string::npos);
  EXPECT_NE(out.find(R"("raw_base64":"//4A")"), std::string::npos) << out;
}

TEST(Summary, JsonHasTheReconciliationKeys) {
  RunSummary s;
  s.read = 10;
  s.decided = 6;
  s.dead_lettered = 2;
  s.duplicate = 1;
  s.late = 1;
  s.alerts = 3;
  s.elapsed_seconds = 2;
  s.completed = true;
  const std::string j = SummaryJson(s);
  EXPECT_NE(
      j.find(
          R"("read":10,"decided":6,"dead_lettered":2,"duplicate":1,"late":1,"alerts":3,"events_per_second":5,)"),
      std::string::npos)
      << j;
  EXPECT_NE(j.find(R"("reconciled":true)"), std::string::npos);
  s.decided = 5;
  EXPECT_FALSE(s.Reconciles());
}

}  // namespace
}  // namespace vigil::sink
