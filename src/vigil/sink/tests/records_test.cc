#include "vigil/sink/records.h"

#include <cmath>

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

TEST(Tokenizer, KeyedDeterministicAndOpaque) {
  const Tokenizer a("a-secret-key-of-32-bytes-000000"), b("another-secret-key-0000000000000");
  const std::string t = a.Token("4000001234567899");
  EXPECT_EQ(t.size(), 4u + 32u);
  EXPECT_EQ(t.rfind("tok_", 0), 0u);
  EXPECT_EQ(t, a.Token("4000001234567899"));          // joins across events and runs
  EXPECT_NE(t, a.Token("4000001234567881"));          // another card
  EXPECT_NE(t, b.Token("4000001234567899"));          // another key
  EXPECT_EQ(t.find("7899"), std::string::npos) << t;  // no digits of the card carried over
}

TEST(Decision, TokenizedFieldsLeaveAsTokens) {
  const config::Pipeline p = config::LoadPipelineText(R"(name: t
input:
  fields:
    - {name: id, type: string}
    - {name: ts, type: timestamp}
    - {name: card, type: string}
    - {name: amount, type: float}
event: {id: id, time: ts, key: card}
privacy: {tokenize: [card]}
)",
                                                      "p.yaml");
  Event e;
  e.Reset(4);
  e.SetString(0, "e1");
  e.values[1].kind = Value::Kind::kTime;
  e.values[1].i = 0;
  e.SetString(2, "4000001234567899");
  e.values[3].kind = Value::Kind::kFloat;
  e.values[3].f = 12.5;
  e.id_index = 0;
  e.key_index = 2;
  const Tokenizer tok("a-secret-key-of-32-bytes-000000");
  DecisionFormat format;
  format.tokenizer = &tok;
  format.tokenized = p.tokenized;
  std::string out;
  DecisionWriter(p, format).Append(out, e, decide::Decision{});
  const std::string token = tok.Token("4000001234567899");
  EXPECT_EQ(out.find("4000001234567899"), std::string::npos) << out;
  EXPECT_NE(out.find("\"key\":\"" + token + "\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"card\":\"" + token + "\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"amount\":12.5"), std::string::npos) << out;
}

TEST(Summary, ModelPsiComparesLiveScoresWithTrainingDeciles) {
  RunSummary s;
  EXPECT_TRUE(std::isnan(s.ModelPsi()));  // no model scores
  s.model_deciles.fill(100);
  EXPECT_NEAR(s.ModelPsi(), 0.0, 1e-12);  // as in training: a tenth in each decile
  s.model_deciles = {20, 20, 20, 20, 20, 20, 20, 20, 420, 420};  // scores moved up
  EXPECT_GT(s.ModelPsi(), 0.25);
  RunSummary t;
  t.Add(s);
  EXPECT_EQ(t.model_deciles[9], 420u);
  EXPECT_NE(SummaryJson(s).find("\"model_psi\":"), std::string::npos);
}

TEST(Summary, ChallengerComparedWithTheChampion) {
  RunSummary s;
  EXPECT_EQ(SummaryJson(s).find("\"challenger\""), std::string::npos);  // none configured
  s.challenger_scored = 200;
  s.challenger_abs_diff = 5;
  s.challenger_disagree = 3;
  RunSummary t;
  t.Add(s);
  t.Add(s);
  EXPECT_EQ(t.challenger_scored, 400u);
  EXPECT_NE(SummaryJson(t).find(R"("challenger":{"scored":400,"mean_abs_diff":0.025000,)"
                                R"("disagree":6,"disagree_share":0.015000})"),
            std::string::npos)
      << SummaryJson(t);
  EXPECT_NE(SummaryText(t).find("alert would differ on 6 of 400"), std::string::npos);
}

TEST(Summary, StateByEntityType) {
  RunSummary s;
  EXPECT_EQ(SummaryJson(s).find("\"state_by_entity\""), std::string::npos);  // no features
  s.state_entities = 3;
  s.state_bytes = 3072;
  s.state_by_entity = {{"card", 1, 1024}, {"merchant", 2, 2048}, {"device", 0, 0}};
  EXPECT_NE(SummaryJson(s).find(R"("state_entities":3,"state_bytes":3072,"state_by_entity":{)"
                                R"("card":{"entities":1,"bytes":1024},)"
                                R"("merchant":{"entities":2,"bytes":2048},)"
                                R"("device":{"entities":0,"bytes":0}})"),
            std::string::npos)
      << SummaryJson(s);
  const std::string text = SummaryText(s);
  EXPECT_NE(text.find("    card                    1 entities, 0.0 MiB (1024 bytes each)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("    merchant                2 entities, 0.0 MiB (1024 bytes each)\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("device"), std::string::npos) << "a type with no entities is left out";
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

TEST(Summary, KafkaRunsSayWhenTheirFirstRecordCame) {
  RunSummary s;
  s.stream.partitioned = true;
  EXPECT_NE(SummaryText(s).find("no new record"), std::string::npos) << SummaryText(s);
  EXPECT_NE(SummaryJson(s).find(R"("first_record_seconds":-1.000)"), std::string::npos);
  s.stream.first_record_seconds = 0.25;
  EXPECT_NE(SummaryText(s).find("first record after 0.25s"), std::string::npos) << SummaryText(s);
  EXPECT_NE(SummaryJson(s).find(R"("first_record_seconds":0.250)"), std::string::npos);
}

TEST(Summary, KafkaRunsCountPartitionsKeptThroughRebalances) {
  RunSummary s;
  s.stream.partitioned = true;
  s.stream.rebalances = 3;
  s.stream.kept = 5;
  s.stream.restored = 2;
  EXPECT_NE(SummaryText(s).find("3 rebalances, 5 partitions kept their state through them"),
            std::string::npos)
      << SummaryText(s);
  EXPECT_NE(SummaryJson(s).find(R"("restored_from_snapshot":2,"kept_through_rebalance":5,)"),
            std::string::npos)
      << SummaryJson(s);
}

TEST(Summary, KafkaRunsSayHowLongSnapshotsHeldDecisionsUp) {
  RunSummary s;
  s.stream.partitioned = true;
  s.stream.snapshots = 4;
  s.stream.snapshot_bytes = 1000;
  s.stream.snapshot_pause_seconds = 0.5;
  s.stream.snapshot_send_seconds = 0.125;
  EXPECT_NE(SummaryText(s).find("4 state snapshots written (1000 bytes; decisions paused 0.50s "
                                "for them, sending 0.12s)"),
            std::string::npos)
      << SummaryText(s);
  EXPECT_NE(SummaryJson(s).find(R"("snapshot_pause_seconds":0.500,"snapshot_send_seconds":0.125,)"),
            std::string::npos)
      << SummaryJson(s);
}

}  // namespace
}  // namespace vigil::sink
