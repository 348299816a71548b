#include "vigil/features/spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vigil::features {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kInput = R"(name: t
input:
  fields:
    - {name: id, type: string}
    - {name: ts, type: timestamp}
    - {name: card, type: string}
    - {name: merchant, type: string}
    - {name: amount, type: float}
    - {name: channel, type: string}
    - {name: lat, type: lat}
    - {name: lon, type: lon}
event: {id: id, time: ts, key: card}
)";

Spec Parse(const std::string& extra) {
  return ParseSpec(config::LoadPipelineText(std::string(kInput) + extra, "p.yaml"));
}

std::vector<std::string> Errors(const std::string& extra) {
  try {
    Parse(extra);
  } catch (const config::ConfigError& e) {
    return e.diagnostics();
  }
  return {};
}

TEST(FeatureSpec, ParsesEveryOp) {
  const Spec s = Parse(R"(entities:
  card: {field: card, ttl: 90d}
  merchant: merchant
features:
  - {name: n_1h, entity: card, op: count, window: 1h, step: 5m}
  - {name: small_10m, entity: card, op: count, window: 10m, where: "amount < 5"}
  - {name: ecom_sum_1d, entity: card, op: sum, of: amount, window: 1d, where: "channel == 'ecom'"}
  - {name: avg_30d, entity: card, op: avg, of: amount, window: 30d}
  - {name: merchants_1d, entity: card, op: distinct, of: merchant, window: 1d}
  - {name: new_merchant, entity: card, op: is_new, of: merchant, capacity: 16}
  - {name: z, entity: card, op: zscore, of: amount, half_life: 30d}
  - {name: kmh, entity: card, op: geo_speed, lat: lat, lon: lon}
  - {name: m_count_1h, entity: merchant, op: count, window: 1h}
  - {name: vs_avg, op: ratio, a: amount, b: avg_30d}
)");
  ASSERT_EQ(s.entities.size(), 2u);
  EXPECT_EQ(s.entities[0].ttl_us, 90LL * 86400 * 1000000);
  EXPECT_EQ(s.entities[1].field, 3);
  ASSERT_EQ(s.features.size(), 10u);
  EXPECT_EQ(s.features[0].step_us, 5LL * 60 * 1000000);
  EXPECT_EQ(s.features[3].step_us, 30LL * 86400 * 1000000 / 12);  // default: 12 steps
  ASSERT_TRUE(s.features[1].where.has_value());
  EXPECT_EQ(s.features[1].where->cmp, Where::Cmp::kLt);
  EXPECT_EQ(s.features[1].where->number, 5);
  EXPECT_EQ(s.features[2].where->text, "ecom");
  EXPECT_EQ(s.features[5].capacity, 16);
  EXPECT_EQ(s.features[8].entity, 1);
  EXPECT_EQ(s.features[9].a_field, 4);
  EXPECT_EQ(s.features[9].b_feature, 3);
}

TEST(FeatureSpec, ErrorsNameTheFeatureAndWhatWasExpected) {
  EXPECT_THAT(
      Errors(R"(entities: {card: card}
features:
  - {name: a, entity: crad, op: count, window: 1h}
  - {name: b, entity: card, op: summ, of: amount, window: 1h}
  - {name: c, entity: card, op: sum, of: channel, window: 1h}
  - {name: d, entity: card, op: count, window: 1h, where: "amount ~ 3"}
  - {name: e, entity: card, op: count, window: 1h, step: 1s}
  - {name: f, op: ratio, a: amount, b: later}
  - {name: amount, entity: card, op: last, of: amount}
)"),
      ElementsAre(
          HasSubstr("p.yaml:15:23: features[0].entity: unknown entity 'crad'"),
          HasSubstr("p.yaml:16:33: features[1].op: unknown op 'summ'; expected one of: count"),
          HasSubstr("p.yaml:17:42: features[2].of: field 'channel' must be numeric"),
          HasSubstr("p.yaml:18:59: features[3].where: expected 'field OP value'"),
          HasSubstr("p.yaml:19:48: features[4].window: window / step is more than 1024 buckets"),
          HasSubstr("p.yaml:20:40: features[5].b: unknown field or feature 'later'"),
          HasSubstr("p.yaml:21:12: features[6].name: 'amount' is already the name")));
}

TEST(FeatureSpec, AnomalyReadsFieldsAndFeaturesOfItsEntity) {
  const Spec s = Parse(R"(entities: {card: card, merchant: merchant}
features:
  - {name: km, entity: card, op: geo_distance, lat: lat, lon: lon}
  - {name: a1, entity: card, op: anomaly, of: [amount, km]}
  - {name: a2, entity: card, op: anomaly, of: amount, capacity: 64, min_history: 20}
  - {name: a3, entity: card, op: anomaly, of: [amount], capacity: 5}
)");
  ASSERT_EQ(s.features.size(), 4u);
  const FeatureSpec& a1 = s.features[1];
  EXPECT_EQ(a1.op, Op::kAnomaly);
  ASSERT_EQ(a1.inputs.size(), 2u);
  EXPECT_EQ(a1.inputs[0].field, 4);
  EXPECT_EQ(a1.inputs[0].feature, -1);
  EXPECT_EQ(a1.inputs[1].field, -1);
  EXPECT_EQ(a1.inputs[1].feature, 0);
  EXPECT_EQ(a1.capacity, 32);
  EXPECT_EQ(a1.min_history, 8);
  EXPECT_EQ(s.features[2].capacity, 64);
  EXPECT_EQ(s.features[2].min_history, 20);
  EXPECT_EQ(s.features[3].min_history, 5);  // the default, capped at the capacity
}

TEST(FeatureSpec, AnomalyErrors) {
  EXPECT_THAT(
      Errors(R"(entities: {card: card, merchant: merchant}
features:
  - {name: m1h, entity: merchant, op: count, window: 1h}
  - {name: a, entity: card, op: anomaly, of: [amount, m1h]}
  - {name: b, entity: card, op: anomaly, of: [channel]}
  - {name: c, entity: card, op: anomaly, of: [amount, later]}
  - {name: d, entity: card, op: anomaly, of: [amount], capacity: 300}
  - {name: e, entity: card, op: anomaly, of: [amount], min_history: 2}
  - {name: f, entity: card, op: anomaly}
  - {name: g, entity: card, op: anomaly, of: [amount, amount]}
  - {name: h, entity: card, op: last, of: amount, min_history: 3}
)"),
      ElementsAre(HasSubstr("features[1].of: feature 'm1h' is not a feature of this entity"),
                  HasSubstr("features[2].of: field 'channel' must be numeric"),
                  HasSubstr("features[3].of: unknown field or feature 'later'"),
                  HasSubstr("features[4].capacity: expected 3..255"),
                  HasSubstr("features[5].min_history: expected 3..capacity (32)"),
                  HasSubstr("features[6].of: expected a list of numeric fields"),
                  HasSubstr("features[7].of: 'amount' is listed twice"),
                  HasSubstr("features[8].min_history: op 'last' takes no min_history")));
}

TEST(FeatureSpec, FeaturesNeedEntities) {
  EXPECT_THAT(Errors("features:\n  - {name: a, op: ratio, a: amount, b: amount}\n"),
              ElementsAre(HasSubstr("features need at least one entry under entities")));
}

}  // namespace
}  // namespace vigil::features
