#include <cmath>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vigil/common/hash.h"
#include "vigil/common/time.h"
#include "vigil/decode/decoder.h"
#include "vigil/decode/tests/decode_test_util.h"

namespace vigil::decode {
namespace {

using decode_test::Load;
using decode_test::Padded;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kPipeline = R"(name: t
input:
  format: jsonl
  fields:
    - {name: id, type: string, from: event_id}
    - {name: ts, type: timestamp}
    - {name: card, type: string, from: card.number}
    - {name: amount, type: float, min: 0, max: 1000000}
    - {name: qty, type: int, required: false, min: 1, max: 100}
    - {name: online, type: bool, required: false}
    - {name: lat, type: lat, required: false, from: geo.lat}
    - {name: lon, type: lon, required: false, from: geo.lon}
    - {name: sent, type: timestamp, format: epoch_ms, required: false}
    - {name: note, type: string, required: false}
    - {name: deep, type: int, required: false, from: a.b.c}
event: {id: id, time: ts, key: card}
)";

enum Field : size_t { kId, kTs, kCard, kAmount, kQty, kOnline, kLat, kLon, kSent, kNote, kDeep };

constexpr std::string_view kHead =
    R"("event_id":"e1","ts":"2026-11-23T10:15:30Z","card":{"number":"4111"},"amount":12.5)";

// A record with the required fields and then `rest` (",\"qty\":3" and so on).
std::string Rec(std::string_view rest = "") {
  return "{" + std::string(kHead) + std::string(rest) + "}";
}

class JsonDecoderTest : public ::testing::Test {
 protected:
  DecodeStatus Decode(std::string_view text, char fill = '\0') {
    const Padded record(text, fill);
    return decoder_->Decode(record, event_);
  }
  // Decodes and expects failure with `code` and exactly `message`.
  void ExpectError(std::string_view text, Errc code, std::string_view field,
                   std::string_view message) {
    const DecodeStatus st = Decode(text);
    EXPECT_EQ(st.code, code) << text << "\n" << st.message;
    EXPECT_EQ(st.field, field) << text;
    EXPECT_EQ(st.message, message) << text;
  }
  Value::Kind Kind(size_t f) const { return event_.values[f].kind; }

  config::Pipeline pipeline_ = Load(kPipeline);
  std::unique_ptr<Decoder> decoder_ = MakeDecoder(pipeline_);
  Event event_;
};

TEST_F(JsonDecoderTest, DecodesEveryTypeAndFillsTheEventHeader) {
  const DecodeStatus st = Decode(
      R"({"event_id":"e1","ts":"2026-11-23T10:15:30.250+01:00","card":{"number":"4111-1111"},)"
      R"("amount":12.5,"qty":3,"online":true,"geo":{"lat":52.52,"lon":-13.405},)"
      R"("sent":1700000000123,"note":"hello","a":{"b":{"c":-7}}})");
  ASSERT_TRUE(st.ok()) << st.message;
  ASSERT_EQ(event_.values.size(), 11u);
  EXPECT_EQ(event_.Str(kId), "e1");
  EXPECT_EQ(Kind(kTs), Value::Kind::kTime);
  EXPECT_EQ(event_.values[kTs].i, *ParseIso8601("2026-11-23T09:15:30.250Z"));
  EXPECT_EQ(event_.Str(kCard), "4111-1111");
  EXPECT_EQ(Kind(kAmount), Value::Kind::kFloat);
  EXPECT_DOUBLE_EQ(event_.values[kAmount].f, 12.5);
  EXPECT_EQ(Kind(kQty), Value::Kind::kInt);
  EXPECT_EQ(event_.values[kQty].i, 3);
  EXPECT_EQ(Kind(kOnline), Value::Kind::kBool);
  EXPECT_TRUE(event_.values[kOnline].b);
  EXPECT_DOUBLE_EQ(event_.values[kLat].f, 52.52);
  EXPECT_DOUBLE_EQ(event_.values[kLon].f, -13.405);
  EXPECT_EQ(Kind(kSent), Value::Kind::kTime);
  EXPECT_EQ(event_.values[kSent].i, 1700000000123000);
  EXPECT_EQ(event_.Str(kNote), "hello");
  EXPECT_EQ(event_.values[kDeep].i, -7);
  EXPECT_EQ(event_.id_index, kId);
  EXPECT_EQ(event_.key_index, kCard);
  EXPECT_EQ(event_.Id(), "e1");
  EXPECT_EQ(event_.Key(), "4111-1111");
  EXPECT_EQ(event_.time_us, *ParseIso8601("2026-11-23T09:15:30.250Z"));
  EXPECT_EQ(event_.key_hash, Hash64("4111-1111"));
}

TEST_F(JsonDecoderTest, OptionalFieldsAbsentOrNullAreNull) {
  ASSERT_TRUE(Decode(Rec(R"(,"qty":null,"geo":null,"note":null)")).ok());
  for (size_t f : {kQty, kOnline, kLat, kLon, kSent, kNote, kDeep}) {
    EXPECT_EQ(Kind(f), Value::Kind::kNull) << f;
  }
}

TEST_F(JsonDecoderTest, AcceptsNumbersWrittenAsStrings) {
  const DecodeStatus st = Decode(
      R"({"event_id":"e1","ts":"2026-11-23T10:15:30Z","card":{"number":"4111"},"amount":" 12.50 ",)"
      R"("qty":"7","geo":{"lat":"-33.9","lon":"151.2"},"sent":"1700000000123.5","a":{"b":{"c":"-0"}}})");
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_DOUBLE_EQ(event_.values[kAmount].f, 12.5);
  EXPECT_EQ(event_.values[kQty].i, 7);
  EXPECT_DOUBLE_EQ(event_.values[kLat].f, -33.9);
  EXPECT_DOUBLE_EQ(event_.values[kLon].f, 151.2);
  EXPECT_EQ(event_.values[kSent].i, 1700000000123500);
  EXPECT_EQ(event_.values[kDeep].i, 0);
}

TEST_F(JsonDecoderTest, StringFieldsTakeNumbersAndBoolsAsTheirText) {
  ASSERT_TRUE(Decode(Rec(R"(,"note":4111111111111111)")).ok());
  EXPECT_EQ(event_.Str(kNote), "4111111111111111");
  ASSERT_TRUE(Decode(Rec(R"(,"note":-1.50e+3 )")).ok());
  EXPECT_EQ(event_.Str(kNote), "-1.50e+3");
  ASSERT_TRUE(Decode(Rec(R"(,"note":false)")).ok());
  EXPECT_EQ(event_.Str(kNote), "false");
  // The routing key too: card numbers sent as numbers.
  ASSERT_TRUE(
      Decode(
          R"({"event_id":"e1","ts":"2026-11-23T10:15:30Z","card":{"number":4111111111111111},"amount":1})")
          .ok());
  EXPECT_EQ(event_.Key(), "4111111111111111");
  EXPECT_EQ(event_.key_hash, Hash64("4111111111111111"));
}

TEST_F(JsonDecoderTest, StringFieldsRejectObjectsAndArrays) {
  ExpectError(Rec(R"(,"note":{"x":1})"), Errc::kBadType, "note",
              "field 'note': expected string, got an object");
  ExpectError(Rec(R"(,"note":[1,2])"), Errc::kBadType, "note",
              "field 'note': expected string, got an array");
  ExpectError(Rec(R"(,"qty":[1])"), Errc::kBadType, "qty",
              "field 'qty': expected int, got an array");
}

TEST_F(JsonDecoderTest, IntRejectsFractionsAndOverflow) {
  ExpectError(Rec(R"(,"qty":"12.5")"), Errc::kBadType, "qty",
              "field 'qty': expected int, got \"12.5\"");
  ExpectError(Rec(R"(,"qty":12.5)"), Errc::kBadType, "qty", "field 'qty': expected int, got 12.5");
  ExpectError(Rec(R"(,"qty":1e2)"), Errc::kBadType, "qty", "field 'qty': expected int, got 1e2");
  ExpectError(Rec(R"(,"qty":true)"), Errc::kBadType, "qty", "field 'qty': expected int, got true");
  ExpectError(Rec(R"(,"qty":"twelve")"), Errc::kBadType, "qty",
              "field 'qty': expected int, got \"twelve\"");
  ExpectError(Rec(R"(,"qty":99999999999999999999)"), Errc::kOutOfRange, "qty",
              "field 'qty': expected int in the int64 range, got 99999999999999999999");
}

TEST_F(JsonDecoderTest, FloatRejectsBadTextAndNonFinite) {
  ExpectError(Rec().replace(Rec().find("12.5"), 4, "\"12,50\""), Errc::kBadType, "amount",
              "field 'amount': expected float, got \"12,50\"");
  for (const char* text : {"NaN", "nan", "Infinity", "-inf", "INF"}) {
    std::string r = Rec();
    r.replace(r.find("12.5"), 4, std::string("\"") + text + "\"");
    ExpectError(r, Errc::kNonFinite, "amount",
                std::string("field 'amount': expected a finite float, got \"") + text + "\"");
  }
  std::string huge = Rec();
  huge.replace(huge.find("12.5"), 4, "1e400");
  ExpectError(huge, Errc::kNonFinite, "amount",
              "field 'amount': expected a finite float, got 1e400");
  std::string tiny = Rec();
  tiny.replace(tiny.find("12.5"), 4, "1e-400");
  ASSERT_TRUE(Decode(tiny).ok());
  EXPECT_EQ(event_.values[kAmount].f, 0.0);
}

TEST_F(JsonDecoderTest, BoolAcceptsTokensAndWords) {
  const std::pair<const char*, bool> cases[] = {
      {"true", true},     {"false", false}, {"\"yes\"", true}, {"\"NO\"", false},
      {"\"True\"", true}, {"\"0\"", false}, {"1", true},       {"0", false}};
  for (const auto& [text, want] : cases) {
    ASSERT_TRUE(Decode(Rec(std::string(",\"online\":") + text)).ok()) << text;
    EXPECT_EQ(event_.values[kOnline].b, want) << text;
  }
  ExpectError(Rec(R"(,"online":"maybe")"), Errc::kBadType, "online",
              "field 'online': expected bool, got \"maybe\"");
  ExpectError(Rec(R"(,"online":2)"), Errc::kBadType, "online",
              "field 'online': expected bool, got 2");
}

TEST_F(JsonDecoderTest, Timestamps) {
  ASSERT_TRUE(Decode(Rec(R"(,"sent":"1700000000000")")).ok());
  EXPECT_EQ(event_.values[kSent].i, 1700000000000000);
  auto with_ts = [](std::string_view ts) {
    std::string r = Rec();
    r.replace(r.find("\"2026-11-23T10:15:30Z\""), 22, ts);
    return r;
  };
  ExpectError(with_ts(R"("2026-13-01T00:00:00Z")"), Errc::kBadTimestamp, "ts",
              "field 'ts': expected iso8601 timestamp, got \"2026-13-01T00:00:00Z\"");
  ExpectError(with_ts(R"("2026-02-29T00:00:00Z")"), Errc::kBadTimestamp, "ts",
              "field 'ts': expected iso8601 timestamp, got \"2026-02-29T00:00:00Z\"");
  ExpectError(with_ts("1700000000"), Errc::kBadTimestamp, "ts",
              "field 'ts': expected iso8601 timestamp, got 1700000000");
  ExpectError(
      with_ts(R"("1969-12-31T23:59:59Z")"), Errc::kBadTimestamp, "ts",
      "field 'ts': timestamp outside [1970-01-01, 2200-01-01), got \"1969-12-31T23:59:59Z\"");
  ExpectError(
      with_ts(R"("2200-01-01T00:00:00Z")"), Errc::kBadTimestamp, "ts",
      "field 'ts': timestamp outside [1970-01-01, 2200-01-01), got \"2200-01-01T00:00:00Z\"");
  ASSERT_TRUE(Decode(with_ts(R"("2199-12-31T23:59:59.999999Z")")).ok());
  ASSERT_TRUE(Decode(with_ts(R"("1970-01-01T00:00:00Z")")).ok());
  EXPECT_EQ(event_.time_us, 0);
  ExpectError(Rec(R"(,"sent":"soon")"), Errc::kBadTimestamp, "sent",
              "field 'sent': expected epoch_ms timestamp, got \"soon\"");
  ExpectError(Rec(R"(,"sent":-1)"), Errc::kBadTimestamp, "sent",
              "field 'sent': timestamp outside [1970-01-01, 2200-01-01), got -1");
  ExpectError(Rec(R"(,"sent":true)"), Errc::kBadTimestamp, "sent",
              "field 'sent': expected epoch_ms timestamp, got true");
  ExpectError(Rec(R"(,"sent":1e300)"), Errc::kBadTimestamp, "sent",
              "field 'sent': expected epoch_ms timestamp, got 1e300");
}

TEST_F(JsonDecoderTest, GeoAndBounds) {
  ExpectError(Rec(R"(,"geo":{"lat":91.5})"), Errc::kOutOfRange, "lat",
              "field 'lat': 91.5 is outside [-90, 90]");
  ExpectError(Rec(R"(,"geo":{"lon":"-180.01"})"), Errc::kOutOfRange, "lon",
              "field 'lon': -180.01 is outside [-180, 180]");
  ASSERT_TRUE(Decode(Rec(R"(,"geo":{"lat":-90,"lon":180})")).ok());
  std::string negative = Rec();
  negative.replace(negative.find("12.5"), 4, "-1");
  ExpectError(negative, Errc::kOutOfRange, "amount", "field 'amount': -1 is below min 0");
  std::string big = Rec();
  big.replace(big.find("12.5"), 4, "2000000");
  ExpectError(big, Errc::kOutOfRange, "amount", "field 'amount': 2000000 is above max 1000000");
  ExpectError(Rec(R"(,"qty":0)"), Errc::kOutOfRange, "qty", "field 'qty': 0 is below min 1");
  ExpectError(Rec(R"(,"qty":"101")"), Errc::kOutOfRange, "qty",
              "field 'qty': 101 is above max 100");
  ASSERT_TRUE(Decode(Rec(R"(,"qty":100)")).ok());
}

TEST_F(JsonDecoderTest, MissingRequiredFields) {
  ExpectError(R"({"event_id":"e1","ts":"2026-11-23T10:15:30Z","card":{"number":"4111"}})",
              Errc::kMissingField, "amount", "missing required field 'amount'");
  ExpectError(
      R"({"event_id":"e1","ts":"2026-11-23T10:15:30Z","card":{"number":"4111"},"amount":null})",
      Errc::kMissingField, "amount", "missing required field 'amount'");
  // An empty string is no number: missing, not a type error.
  ExpectError(
      R"({"event_id":"e1","ts":"2026-11-23T10:15:30Z","card":{"number":"4111"},"amount":""})",
      Errc::kMissingField, "amount", "missing required field 'amount'");
  // The parent object is absent, null or not an object.
  for (const char* card : {"", R"("card":null,)", R"("card":"4111",)", R"("card":{},)"}) {
    ExpectError(
        std::string(R"({"event_id":"e1","ts":"2026-11-23T10:15:30Z",)") + card + R"("amount":1})",
        Errc::kMissingField, "card", "missing required field 'card'");
  }
  ExpectError(R"({"event_id":"","ts":"2026-11-23T10:15:30Z","card":{"number":"4111"},"amount":1})",
              Errc::kMissingField, "id",
              "missing required field 'id': the event id must not be empty");
  ExpectError(R"({"event_id":"e1","ts":"2026-11-23T10:15:30Z","card":{"number":""},"amount":1})",
              Errc::kMissingField, "card",
              "missing required field 'card': the routing key must not be empty");
}

TEST_F(JsonDecoderTest, NestedPathsIgnoreUnmappedSiblings) {
  const DecodeStatus st = Decode(
      R"({"a":{"x":[1,{"y":null}],"b":{"z":"q","c":42,"w":{}}},"event_id":"e1","extra":{"k":[]},)"
      R"("ts":"2026-11-23T10:15:30Z","card":{"brand":"visa","number":"4111"},"amount":1})");
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(event_.values[kDeep].i, 42);
  EXPECT_EQ(event_.Key(), "4111");
  // Dots always mean nesting: a flat "card.number" key is just another unmapped key.
  ExpectError(R"({"event_id":"e1","ts":"2026-11-23T10:15:30Z","card.number":"4111","amount":1})",
              Errc::kMissingField, "card", "missing required field 'card'");
}

TEST_F(JsonDecoderTest, DuplicateKeysFirstWins) {
  ASSERT_TRUE(Decode(Rec(R"(,"qty":5,"qty":6,"note":"a","note":"b")")).ok());
  EXPECT_EQ(event_.values[kQty].i, 5);
  EXPECT_EQ(event_.Str(kNote), "a");
  // A bad later duplicate is ignored; a null first one wins too.
  ASSERT_TRUE(Decode(Rec(R"(,"qty":5,"qty":"bad")")).ok());
  ASSERT_TRUE(Decode(Rec(R"(,"qty":null,"qty":7)")).ok());
  EXPECT_EQ(Kind(kQty), Value::Kind::kNull);
  ASSERT_TRUE(Decode(Rec(R"(,"a":{"b":{"c":1}},"a":{"b":{"c":2}})")).ok());
  EXPECT_EQ(event_.values[kDeep].i, 1);
}

TEST_F(JsonDecoderTest, UnicodeEscapesBecomeUtf8InTheArena) {
  ASSERT_TRUE(Decode(Rec(R"(,"note":"Caf\u00e9 \u2603 \ud83d\ude00 \"q\" \\ \n\t \/")")).ok());
  EXPECT_EQ(event_.Str(kNote), "Caf\xC3\xA9 \xE2\x98\x83 \xF0\x9F\x98\x80 \"q\" \\ \n\t /");
  ASSERT_TRUE(Decode(Rec(",\"note\":\"Z\xC3\xBCrich \xE6\x9D\xB1\xE4\xBA\xAC\"")).ok());
  EXPECT_EQ(event_.Str(kNote), "Z\xC3\xBCrich \xE6\x9D\xB1\xE4\xBA\xAC");
  // Escaped keys are matched after unescaping.
  ASSERT_TRUE(Decode(Rec(R"(,"n\u006fte":"k")")).ok());
  EXPECT_EQ(event_.Str(kNote), "k");
  ASSERT_TRUE(
      Decode(
          R"({"event_id":"\u00e9","ts":"2026-11-23T10:15:30Z","card":{"number":"4111"},"amount":1})")
          .ok());
  EXPECT_EQ(event_.Id(), "\xC3\xA9");
}

TEST_F(JsonDecoderTest, TopLevelMustBeAnObject) {
  for (const char* text : {"[1,2]", "\"x\"", "12", "null", "true"}) {
    ExpectError(text, Errc::kParse, "", "expected a JSON object");
  }
  ExpectError("", Errc::kParse, "", "empty record");
  ExpectError("  \t ", Errc::kParse, "", "empty record");
}

TEST_F(JsonDecoderTest, InvalidJsonAnywhereIsParseError) {
  const std::string bad[] = {
      Rec(R"(,"extra":[1,2,tru])"),
      Rec(R"(,"extra":{"k":nul})"),
      Rec(R"(,"extra":"\x")"),
      Rec(R"(,"ex\qtra":1)"),
      Rec(R"(,"extra":01)"),
      Rec(R"(,"extra":1.)"),
      Rec(R"(,"extra":-)"),
      Rec(R"(,"extra":1e)"),
      Rec(R"(,"extra":+1)"),
      Rec(R"(,"extra":.5)"),
      Rec(R"(,"extra":[1,])"),
      Rec(R"(,"extra":{"a":1,})"),
      Rec(R"(,"extra":{"a" 1})"),
      Rec(R"(,"extra":[1 2])"),
      Rec(R"(,"extra":NaN)"),
      Rec(R"(,"extra":'x')"),
      Rec(R"(,"extra":"\ud800")"),
      Rec(R"(,"extra":"tab	inside")"),
      Rec(R"(,"qty":12x)"),
      Rec(R"(,"note":"a" "b")"),
      Rec(R"(,"extra":truex)"),
      Rec(R"(,"extra":{1:2})"),
      // A string followed by ':' and a stray closing bracket: On-Demand would skip an
      // unconsumed string there as if it were a key.
      "{\"note\":\"a\":1}," + std::string(kHead) + "}",
      "{\"zz\":\"a\":[1]]," + std::string(kHead) + "}",
      Rec(R"(,)"),
      Rec(R"(,"extra")"),
      Rec(R"(,"extra":)"),
      Rec(",\"bad\":\"\xC3\x28\""),
      Rec() + " x",
      Rec() + "{}",
      Rec() + "}",
      Rec() + "]",
      Rec() + ",",
      "{" + std::string(kHead) + ",}",
      "{" + std::string(kHead) + ",\"a\":{\"b\":{\"c\":1}}",
  };
  for (const std::string& text : bad) {
    const DecodeStatus st = Decode(text);
    EXPECT_EQ(st.code, Errc::kParse) << text << "\n -> " << st.message;
    EXPECT_THAT(st.message, StartsWith("invalid JSON")) << text;
    EXPECT_EQ(st.field, "");
  }
}

TEST_F(JsonDecoderTest, ParseErrorBeatsAFieldErrorFoundEarlier) {
  const DecodeStatus st = Decode(Rec(R"(,"qty":"bad","extra":[tru])"));
  EXPECT_EQ(st.code, Errc::kParse) << st.message;
}

TEST_F(JsonDecoderTest, NoPrefixOfARecordDecodes) {
  const std::string full =
      Rec(R"(,"qty":3,"geo":{"lat":1.5,"lon":2},"x":[1,{"y":"z"}],"note":"n")");
  ASSERT_TRUE(Decode(full).ok());
  for (const char fill : {'\0', '}', ']', '"', ',', ' '}) {
    for (size_t n = 0; n < full.size(); ++n) {
      const DecodeStatus st = Decode(std::string_view(full).substr(0, n), fill);
      EXPECT_FALSE(st.ok()) << "prefix " << n << " padded with '" << fill
                            << "' decoded: " << full.substr(0, n);
    }
  }
}

TEST_F(JsonDecoderTest, DeepNestingIsRejectedNotOverflowed) {
  std::string deep(5000, '[');
  deep += std::string(5000, ']');
  const DecodeStatus st = Decode(Rec(",\"extra\":" + deep));
  EXPECT_EQ(st.code, Errc::kParse);
  std::string fine(100, '[');
  fine += std::string(100, ']');
  EXPECT_TRUE(Decode(Rec(",\"extra\":" + fine)).ok());
}

TEST_F(JsonDecoderTest, OversizeRecords) {
  std::string yaml = kPipeline;
  yaml.insert(yaml.find("  fields:"), "  max_record_bytes: 100\n");
  const config::Pipeline small = Load(yaml);
  auto decoder = MakeDecoder(small);
  const std::string text = Rec(R"(,"note":")" + std::string(100, 'x') + "\"");
  const Padded record(text);
  const DecodeStatus st = decoder->Decode(record, event_);
  EXPECT_EQ(st.code, Errc::kOversize);
  EXPECT_EQ(st.message, "record is " + std::to_string(text.size()) +
                            " bytes, more than input.max_record_bytes (100)");
}

TEST_F(JsonDecoderTest, ReusedEventsCarryNothingOver) {
  ASSERT_TRUE(Decode(Rec(R"(,"qty":3,"note":"first note","geo":{"lat":1,"lon":2})")).ok());
  ASSERT_TRUE(
      Decode(R"({"event_id":"e2","ts":"2026-11-23T10:15:31Z","card":{"number":"5500"},"amount":2})")
          .ok());
  EXPECT_EQ(Kind(kQty), Value::Kind::kNull);
  EXPECT_EQ(Kind(kNote), Value::Kind::kNull);
  EXPECT_EQ(Kind(kLat), Value::Kind::kNull);
  EXPECT_EQ(event_.Id(), "e2");
  EXPECT_EQ(event_.Key(), "5500");
  EXPECT_EQ(event_.arena, "e25500");
  // A failed decode leaves no half-filled event behind for the next one to inherit.
  EXPECT_FALSE(Decode(Rec(R"(,"qty":3,"note":"x","online":"maybe")")).ok());
  ASSERT_TRUE(
      Decode(R"({"event_id":"e3","ts":"2026-11-23T10:15:31Z","card":{"number":"1"},"amount":2})")
          .ok());
  EXPECT_EQ(Kind(kQty), Value::Kind::kNull);
  EXPECT_EQ(Kind(kNote), Value::Kind::kNull);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(Decode(Rec(R"(,"note":"n)" + std::to_string(i) + "\"")).ok());
    std::string want = "n";  // not "n" + ...: GCC 12's -Wrestrict misfires on it at -O3
    want += std::to_string(i);
    EXPECT_EQ(event_.Str(kNote), want);
  }
}

TEST_F(JsonDecoderTest, TruncatesLongValuesInMessages) {
  const DecodeStatus st = Decode(Rec(R"(,"qty":")" + std::string(200, '9') + "x\""));
  EXPECT_EQ(st.code, Errc::kBadType);
  EXPECT_EQ(st.message, "field 'qty': expected int, got \"" + std::string(64, '9') + "\"...");
}

TEST(JsonDecoder, TwoFieldsFromOneKey) {
  config::Pipeline p = Load(R"(name: t
input:
  fields:
    - {name: id, type: string}
    - {name: ts, type: timestamp, format: epoch_s}
    - {name: raw_ts, type: string, from: ts}
    - {name: card, type: string}
event: {id: id, time: ts, key: card}
)");
  auto decoder = MakeDecoder(p);
  Event e;
  const Padded record(R"({"id":"1","ts":1700000000.5,"card":"c"})");
  const DecodeStatus st = decoder->Decode(record, e);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(e.time_us, 1700000000500000);
  EXPECT_EQ(e.Str(2), "1700000000.5");
}

}  // namespace
}  // namespace vigil::decode
