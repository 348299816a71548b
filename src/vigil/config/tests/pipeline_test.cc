#include "vigil/config/pipeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vigil::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kGood = R"(name: t
input:
  format: csv
  csv: {delimiter: ";", header: true}
  fields:
    - {name: id, type: string}
    - {name: ts, type: timestamp, format: epoch_ms}
    - {name: card, type: string, from: card_number}
    - {name: amount, type: float, min: 0}
    - {name: note, type: string, required: false}
event: {id: id, time: ts, key: card}
dedup: {horizon: 1h, max_ids: 1000}
lateness: {allowed: 30s}
)";

TEST(Pipeline, LoadsAWellFormedFile) {
  Pipeline p = LoadPipelineText(kGood, "p.yaml");
  EXPECT_EQ(p.name, "t");
  EXPECT_EQ(p.input.format, InputFormat::kCsv);
  EXPECT_EQ(p.input.delimiter, ';');
  ASSERT_EQ(p.input.fields.size(), 5u);
  EXPECT_EQ(p.input.fields[2].from, "card_number");
  EXPECT_EQ(p.input.fields[1].time_format, TimeFormat::kEpochMs);
  EXPECT_EQ(p.input.fields[3].min, 0.0);
  EXPECT_FALSE(p.input.fields[4].required);
  EXPECT_EQ(p.id_field, 0u);
  EXPECT_EQ(p.time_field, 1u);
  EXPECT_EQ(p.key_field, 2u);
  EXPECT_EQ(p.dedup_horizon_us, 3600LL * 1000000);
  EXPECT_EQ(p.dedup_max_ids, 1000u);
  EXPECT_EQ(p.allowed_lateness_us, 30LL * 1000000);
}

std::vector<std::string> Diagnostics(const std::string& text) {
  try {
    LoadPipelineText(text, "bad.yaml");
  } catch (const ConfigError& e) {
    return e.diagnostics();
  }
  return {};
}

TEST(Pipeline, ReportsEveryProblemWithFileLineAndColumn) {
  const auto d = Diagnostics(R"(name: t
input:
  fromat: csv
  fields:
    - {name: id, type: strng}
    - {name: ts, type: timestamp}
event: {id: id, time: when, key: id}
)");
  EXPECT_THAT(
      d, ElementsAre(
             "bad.yaml:3:3: input.fromat: unknown key 'fromat'; expected one of: format, csv, "
             "max_record_bytes, fields",
             "bad.yaml:5:24: input.fields[0].type: expected one of int, float, string, bool, "
             "timestamp, lat, lon; got 'strng'",
             "bad.yaml:7:23: event.time: unknown field 'when': declare it under input.fields"));
}

TEST(Pipeline, ChecksEventFieldTypes) {
  const auto d = Diagnostics(R"(name: t
input:
  fields:
    - {name: id, type: int}
    - {name: ts, type: timestamp}
event: {id: id, time: ts, key: id}
)");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_THAT(d[0], HasSubstr("bad.yaml:6:13: event.id: field 'id' must have type string"));
}

TEST(Pipeline, InvalidYamlNamesThePosition) {
  const auto d = Diagnostics("name: [unclosed\n");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_THAT(d[0], HasSubstr("bad.yaml:2:1: invalid YAML"));
}

TEST(Pipeline, BadDurationsAndNumbers) {
  const auto d = Diagnostics(R"(name: t
input:
  max_record_bytes: lots
  fields:
    - {name: id, type: string}
    - {name: ts, type: timestamp, min: x}
event: {id: id, time: ts, key: id}
dedup: {horizon: 10 minutes}
)");
  EXPECT_THAT(d,
              ElementsAre(HasSubstr("bad.yaml:3:21: input.max_record_bytes: expected an integer"),
                          HasSubstr("bad.yaml:6:40: input.fields[1].min: expected a finite number"),
                          HasSubstr("bad.yaml:8:18: dedup.horizon: expected a duration")));
}

TEST(Pipeline, EngineQueuesAreSizedFromTheFileAndChecked) {
  EXPECT_EQ(LoadPipelineText(kGood, "p.yaml").batches_in_flight, 48u);
  const Pipeline p = LoadPipelineText(
      std::string(kGood) + "engine: {batch_size: 256, batches_in_flight: 3}\n", "p.yaml");
  EXPECT_EQ(p.batch_size, 256u);
  EXPECT_EQ(p.batches_in_flight, 3u);
  EXPECT_THAT(Diagnostics(std::string(kGood) + "engine: {batches_in_flight: 2}\n"),
              ElementsAre("bad.yaml:14:29: engine.batches_in_flight: expected 3..4096"));
}

TEST(Pipeline, MissingFileIsAClearError) {
  try {
    LoadPipelineFile("/nonexistent/p.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/p.yaml: cannot open pipeline file");
  }
}

}  // namespace
}  // namespace vigil::config
