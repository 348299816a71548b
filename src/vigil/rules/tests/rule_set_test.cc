// The rules, lists and decision sections: loading with positioned errors, the stage's
// outcome, reasons and narrative, and reload keeping the old set on a bad edit.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vigil/config/pipeline.h"
#include "vigil/decode/decoder.h"
#include "vigil/features/spec.h"
#include "vigil/rules/rule_set.h"
#include "vigil/rules/rule_stage.h"

namespace vigil::rules {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kHead = R"(name: t
input:
  fields:
    - {name: id, type: string}
    - {name: ts, type: timestamp}
    - {name: card, type: string}
    - {name: amount, type: float}
    - {name: mcc, type: string}
event: {id: id, time: ts, key: card}
entities:
  card: {field: card}
features:
  - {name: n_10m, entity: card, op: count, window: 10m, step: 1m}
  - {name: sum_10m, entity: card, op: sum, of: amount, window: 10m, step: 1m}
)";

config::Pipeline Load(const std::string& tail) {
  return config::LoadPipelineText(std::string(kHead) + tail, "p.yaml");
}

std::vector<std::string> Errors(const std::string& tail) {
  try {
    const config::Pipeline p = Load(tail);
    const features::Spec spec = features::ParseSpec(p);
    LoadRuleSet(p, spec, 1);
  } catch (const config::ConfigError& e) {
    return e.diagnostics();
  }
  return {};
}

TEST(RuleSet, ErrorsPointIntoTheExpression) {
  // Line 16 is the rule; the bad name starts 15 bytes into the quoted text, at column 36.
  EXPECT_THAT(Errors(R"(rules:
  - {id: r1, when: "n_10m >= 3 and amout > 5", score: 10}
)"),
              ElementsAre(HasSubstr("p.yaml:16:36: rules[0] (r1).when: unknown field 'amout' "
                                    "(did you mean 'amount'?)")));
  EXPECT_THAT(Errors(R"(rules:
  - id: r1
    when: mcc in risky
    score: 10
)"),
              ElementsAre(HasSubstr("p.yaml:17:18: rules[0] (r1).when: unknown list 'risky'")));
  EXPECT_THAT(Errors(R"(rules:
  - {id: r1, when: "amount > 5", score: 10}
  - {id: r1, when: "mcc == 5", action: bluck}
)"),
              ElementsAre(HasSubstr("rules[1] (r1).id: rule id 'r1' is used twice"),
                          HasSubstr("rules[1] (r1).when: '==' needs"),
                          HasSubstr("rules[1] (r1).action: expected none, review or block")));
  EXPECT_THAT(Errors(R"(rules:
  - {id: r1, when: "amount > 5", narrative: "Card {card} spent {amonut|money} {amount|euros}"}
)"),
              ElementsAre(HasSubstr("rules[0] (r1): the rule has neither a score nor an action"),
                          HasSubstr("unknown field or feature 'amonut'"),
                          HasSubstr("unknown format 'euros'")));
  EXPECT_THAT(Errors(R"(decision: {review_at: 90, block_at: 50}
)"),
              ElementsAre(HasSubstr("decision: expected review_at <= block_at")));
  EXPECT_THAT(Errors(R"(lists:
  risky: {file: does-not-exist.txt}
)"),
              ElementsAre(HasSubstr("lists.risky.file: does-not-exist.txt")));
}

struct Harness {
  config::Pipeline pipeline;
  features::Spec spec;
  std::shared_ptr<const RuleSet> set;
  RuleStage stage;
  std::unique_ptr<decode::Decoder> decoder;

  explicit Harness(const std::string& tail)
      : pipeline(Load(tail)),
        spec(features::ParseSpec(pipeline)),
        set(LoadRuleSet(pipeline, spec, 7)),
        decoder(decode::MakeDecoder(pipeline)) {
    stage.Configure(*set);
  }

  decide::Decision Decide(const std::string& json, std::vector<double> features) {
    std::string padded = json + std::string(64, '\0');
    Event e;
    EXPECT_TRUE(decoder->Decode(std::string_view(padded.data(), json.size()), e).ok());
    decide::Decision d;
    stage.Process(e, features, d);
    return d;
  }
};

constexpr const char* kRules = R"(lists:
  high_risk: {values: ["5999", "6011"]}
rules:
  - id: velocity
    description: Many purchases in 10 minutes
    when: n_10m >= 5
    score: 40
    narrative: "Card {card} made {n_10m|int} purchases totalling {sum_10m|money} in 10 minutes."
  - id: risky_big
    when: mcc in high_risk and amount >= 1000
    action: block
  - id: trial
    when: amount > 500
    score: 99
    mode: shadow
decision: {review_at: 50, block_at: 100}
)";

constexpr const char* kEvent =
    R"({"id":"e1","ts":"2026-01-01T00:00:00Z","card":"4000001234567890","amount":700,"mcc":"5411"})";

TEST(RuleStage, ScoresActsAndExplains) {
  Harness h(kRules);
  decide::Decision d = h.Decide(kEvent, {7, 4210.5});
  EXPECT_EQ(d.outcome, decide::Outcome::kApprove);  // 40 < review_at 50
  EXPECT_EQ(d.score, 40);
  EXPECT_EQ(d.rules_version, 7u);
  ASSERT_EQ(d.reasons().size(), 1u);
  EXPECT_EQ(d.reasons()[0].code, "velocity");
  EXPECT_EQ(d.reasons()[0].detail, "Many purchases in 10 minutes: n_10m=7");
  EXPECT_THAT(d.shadow, ElementsAre("trial"));  // fired, listed, did not add 99
  EXPECT_TRUE(d.narrative.empty());             // not an alert

  d = h.Decide(
      R"({"id":"e2","ts":"2026-01-01T00:00:00Z","card":"4000001234567890","amount":1200,"mcc":"6011"})",
      {7, 4210.5});
  EXPECT_EQ(d.outcome, decide::Outcome::kBlock);  // risky_big's own action
  EXPECT_EQ(d.score, 40);
  ASSERT_EQ(d.reasons().size(), 2u);
  EXPECT_EQ(d.reasons()[1].action, decide::Outcome::kBlock);
  EXPECT_EQ(d.narrative, "Card \u20267890 made 7 purchases totalling 4,210.50 in 10 minutes.");
}

TEST(RuleStage, TokenizedFieldsStayMaskedInReasonsAndNarratives) {
  Harness h(R"(privacy: {tokenize: [card]}
rules:
  - id: bin
    when: starts_with(card, "4000")
    action: review
    narrative: "Card {card|raw} again."
)");
  const decide::Decision d = h.Decide(kEvent, {1, 1});
  ASSERT_EQ(d.reasons().size(), 1u);
  EXPECT_EQ(d.reasons()[0].detail, "card=\"\u20267890\"");
  EXPECT_EQ(d.narrative, "Card \u20267890 again.");
}

TEST(RuleStage, PolicyWeighsWhatEarlierStagesAdded) {
  Harness h(R"(rules:
  - {id: a, when: "n_10m >= 1", score: 30}
decision: {review_at: 50, block_at: 100}
)");
  std::string padded = std::string(kEvent) + std::string(64, '\0');
  Event e;
  ASSERT_TRUE(h.decoder->Decode(std::string_view(padded.data(), std::strlen(kEvent)), e).ok());
  const std::vector<double> features{1, 0};
  decide::Decision d;
  d.score = 25;  // as a model stage before the rules would add
  h.stage.Process(e, features, d);
  EXPECT_EQ(d.score, 55);
  EXPECT_EQ(d.outcome, decide::Outcome::kReview);
}

TEST(RuleStage, NullFeaturesNeverFire) {
  Harness h(kRules);
  const decide::Decision d = h.Decide(kEvent, {std::nan(""), std::nan("")});
  EXPECT_TRUE(d.reasons().empty());
  EXPECT_EQ(d.outcome, decide::Outcome::kApprove);
}

TEST(RuleStage, ThresholdsTurnScoresIntoOutcomes) {
  Harness h(R"(rules:
  - {id: a, when: "n_10m >= 1", score: 30}
  - {id: b, when: "n_10m >= 2", score: 30}
  - {id: c, when: "n_10m >= 3", score: "sum_10m / 10"}
decision: {review_at: 50, block_at: 100}
)");
  EXPECT_EQ(h.Decide(kEvent, {1, 0}).outcome, decide::Outcome::kApprove);
  EXPECT_EQ(h.Decide(kEvent, {2, 0}).outcome, decide::Outcome::kReview);
  const decide::Decision d = h.Decide(kEvent, {3, 400});
  EXPECT_EQ(d.score, 100);
  EXPECT_EQ(d.outcome, decide::Outcome::kBlock);
  EXPECT_THAT(d.narrative, HasSubstr("Rules fired: a; b; c."));
}

TEST(RuleBook, ReloadSwapsOrKeepsTheOldSet) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "reload";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "p.yaml").string();
  auto write = [&](const std::string& tail) { std::ofstream(path) << kHead << tail; };
  write("rules:\n  - {id: a, when: \"n_10m >= 1\", score: 10}\n");
  const config::Pipeline p = config::LoadPipelineFile(path);
  const features::Spec spec = features::ParseSpec(p);
  RuleBook book(p, spec, LoadRuleSet(p, spec, 1));

  write(
      "rules:\n  - {id: a, when: \"n_10m >= 1\", score: 10}\n  - {id: b, when: \"amount > 1\", "
      "score: 5}\n");
  EXPECT_EQ(book.Reload(), "");
  EXPECT_EQ(book.Current()->version, 2u);
  EXPECT_EQ(book.Current()->rules.size(), 2u);

  write("rules:\n  - {id: a, when: \"n_10m >= \", score: 10}\n");
  EXPECT_THAT(book.Reload(), HasSubstr("rules[0] (a).when"));
  EXPECT_EQ(book.Current()->version, 2u) << "a bad edit keeps the running set";

  std::string changed = kHead;
  changed.replace(changed.find("window: 10m"), 11, "window: 20m");
  std::ofstream(path) << changed << "rules:\n  - {id: a, when: \"n_10m >= 1\", score: 10}\n";
  EXPECT_THAT(book.Reload(), HasSubstr("features sections changed"));
  EXPECT_EQ(book.Current()->version, 2u);
}

TEST(RuleSet, RulesFromTheirOwnFile) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "rules_file";
  std::filesystem::create_directories(dir / "rules");
  std::ofstream(dir / "rules" / "risky.txt") << "# high-risk categories\n5999\n6011\n";
  std::ofstream(dir / "rules" / "card.yaml") << R"(lists:
  risky: {file: risky.txt}
rules:
  - {id: r1, when: "mcc in risky", score: 10}
  - {id: r2, when: "n_10m >= x", score: 10}
)";
  const std::string pipeline = (dir / "p.yaml").string();
  std::ofstream(pipeline) << kHead << "rules_file: rules/card.yaml\n";
  const config::Pipeline p = config::LoadPipelineFile(pipeline);
  const features::Spec spec = features::ParseSpec(p);
  try {
    LoadRuleSet(p, spec, 1);
    FAIL() << "r2 names an unknown field";
  } catch (const config::ConfigError& e) {
    // The error names the rules file, its line and the column inside the expression.
    EXPECT_THAT(e.diagnostics(),
                ElementsAre(HasSubstr("rules/card.yaml:5:30: rules[1] (r2).when: unknown")));
  }
  std::ofstream(dir / "rules" / "card.yaml") << R"(lists:
  risky: {file: risky.txt}
rules:
  - {id: r1, when: "mcc in risky", score: 10}
)";
  const auto set = LoadRuleSet(p, spec, 1);
  EXPECT_EQ(set->rules.size(), 1u);
  EXPECT_EQ(set->files.size(), 2u) << "a reload watches the rules file and the list file";
  EXPECT_TRUE(HasRules(p));
}

}  // namespace
}  // namespace vigil::rules
