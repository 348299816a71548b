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

constexpr const char* kFields = R"(
  fields:
    - {name: id, type: string}
    - {name: ts, type: timestamp, format: epoch_s}
    - {name: card, type: string, from: card_number}
    - {name: amount, type: float, min: 0}
    - {name: qty, type: int, required: false}
    - {name: online, type: bool, required: false}
    - {name: lat, type: lat, required: false}
    - {name: lon, type: lon, required: false}
    - {name: note, type: string, required: false}
event: {id: id, time: ts, key: card}
)";

enum Field : size_t { kId, kTs, kCard, kAmount, kQty, kOnline, kLat, kLon, kNote };

std::string CsvPipeline(std::string_view csv_options) {
  return "name: t\ninput:\n  format: csv\n  csv: " + std::string(csv_options) + kFields;
}

class CsvDecoderTest : public ::testing::Test {
 protected:
  explicit CsvDecoderTest(std::string_view options = "{header: true}")
      : pipeline_(Load(CsvPipeline(options))), decoder_(MakeDecoder(pipeline_)) {}

  DecodeStatus Header(std::string_view text) { return decoder_->ReadHeader(Padded(text)); }
  DecodeStatus Decode(std::string_view text) { return decoder_->Decode(Padded(text), event_); }
  void ExpectError(std::string_view text, Errc code, std::string_view field,
                   std::string_view message) {
    const DecodeStatus st = Decode(text);
    EXPECT_EQ(st.code, code) << text << "\n" << st.message;
    EXPECT_EQ(st.field, field) << text;
    EXPECT_EQ(st.message, message) << text;
  }
  Value::Kind Kind(size_t f) const { return event_.values[f].kind; }

  config::Pipeline pipeline_;
  std::unique_ptr<Decoder> decoder_;
  Event event_;
};

constexpr std::string_view kHeader = "id,ts,card_number,amount,qty,online,lat,lon,note";

TEST_F(CsvDecoderTest, DecodesEveryTypeByHeaderName) {
  EXPECT_TRUE(decoder_->WantsHeader());
  ASSERT_TRUE(Header(kHeader).ok());
  EXPECT_FALSE(decoder_->WantsHeader());
  const DecodeStatus st = Decode("e1,1700000000.25,4111,12.50,3,yes,52.5,-13.4,hello world");
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(event_.Id(), "e1");
  EXPECT_EQ(event_.time_us, 1700000000250000);
  EXPECT_EQ(event_.Key(), "4111");
  EXPECT_EQ(event_.key_hash, Hash64("4111"));
  EXPECT_DOUBLE_EQ(event_.values[kAmount].f, 12.5);
  EXPECT_EQ(event_.values[kQty].i, 3);
  EXPECT_EQ(Kind(kOnline), Value::Kind::kBool);
  EXPECT_TRUE(event_.values[kOnline].b);
  EXPECT_DOUBLE_EQ(event_.values[kLat].f, 52.5);
  EXPECT_DOUBLE_EQ(event_.values[kLon].f, -13.4);
  EXPECT_EQ(event_.Str(kNote), "hello world");
}

TEST_F(CsvDecoderTest, HeaderColumnsInAnyOrderWithExtrasAndBom) {
  ASSERT_TRUE(Header("\xEF\xBB\xBF"
                     "amount, extra ,card_number,ts,\"id\",\"note\"\r")
                  .ok());
  ASSERT_TRUE(Decode("7,zzz,c9,1700000000,e7,\"a,b\",more,columns").ok());
  EXPECT_EQ(event_.Id(), "e7");
  EXPECT_EQ(event_.Key(), "c9");
  EXPECT_DOUBLE_EQ(event_.values[kAmount].f, 7);
  EXPECT_EQ(event_.Str(kNote), "a,b");
  // Optional columns absent from the header are always null.
  EXPECT_EQ(Kind(kQty), Value::Kind::kNull);
  EXPECT_EQ(Kind(kLat), Value::Kind::kNull);
}

TEST_F(CsvDecoderTest, BadHeader) {
  const DecodeStatus st = Header("id,ts,card,amount");
  EXPECT_EQ(st.code, Errc::kBadHeader);
  EXPECT_EQ(st.field, "card");
  EXPECT_EQ(st.message, "CSV header has no column 'card_number' (columns: id, ts, card, amount)");
  EXPECT_TRUE(decoder_->WantsHeader());
  // Every record after it repeats why: nothing can decode.
  const DecodeStatus again = Decode("e1,1,c,1");
  EXPECT_EQ(again.code, Errc::kBadHeader);
  EXPECT_EQ(again.message, st.message);
  EXPECT_EQ(Header("\"id,ts").code, Errc::kBadHeader);
  // Header bytes are shown escaped, so the message stays valid UTF-8.
  EXPECT_EQ(Header("id,ts,caf\xE9").message,
            "CSV header has no column 'card_number' (columns: id, ts, caf\\xE9)");
}

TEST_F(CsvDecoderTest, DecodeBeforeHeaderIsAnError) {
  ExpectError("e1,1,c,1", Errc::kBadHeader, "", "the CSV header has not been read");
}

TEST_F(CsvDecoderTest, QuotingEscapesNewlinesAndCrlf) {
  ASSERT_TRUE(Header("id,ts,card_number,amount,note\r").ok());
  ASSERT_TRUE(Decode("\"e,1\",1700000000,\"41\"\"11\",1,\"he said \"\"hi\"\"\"\r").ok());
  EXPECT_EQ(event_.Id(), "e,1");
  EXPECT_EQ(event_.Key(), "41\"11");
  EXPECT_EQ(event_.Str(kNote), "he said \"hi\"");
  ASSERT_TRUE(Decode("e2,1700000000,c,1,\"line one\nline two\r\nline three\"").ok());
  EXPECT_EQ(event_.Str(kNote), "line one\nline two\r\nline three");
  ASSERT_TRUE(Decode("e3,1700000000,c,1,\"\"\"\"").ok());
  EXPECT_EQ(event_.Str(kNote), "\"");
  ASSERT_TRUE(Decode("e4,1700000000,c,1,\"\"").ok());
  EXPECT_EQ(Kind(kNote), Value::Kind::kString);
  EXPECT_EQ(event_.Str(kNote), "");
  ASSERT_TRUE(Decode("e5,1700000000,c,1,").ok());
  EXPECT_EQ(Kind(kNote), Value::Kind::kNull);
  ASSERT_TRUE(Decode("e6,1700000000,c,1,  spaced  ").ok());
  EXPECT_EQ(event_.Str(kNote), "  spaced  ");
  ASSERT_TRUE(Decode("e7,1700000000,c, 1.5 ,\"Z\xC3\xBCrich\"").ok());
  EXPECT_DOUBLE_EQ(event_.values[kAmount].f, 1.5);
  EXPECT_EQ(event_.Str(kNote), "Z\xC3\xBCrich");
}

TEST_F(CsvDecoderTest, MalformedRows) {
  ASSERT_TRUE(Header("id,ts,card_number,amount,note").ok());
  ExpectError("e1,1700000000,c,1,\"open", Errc::kParse, "",
              "unterminated quoted field in column 5");
  ExpectError("\"e1\"x,1700000000,c,1", Errc::kParse, "",
              "unexpected \"x\" after the closing quote in column 1");
  ExpectError("e1,17\"00,c,1", Errc::kParse, "", "quote inside unquoted field in column 2");
  ExpectError("", Errc::kParse, "", "empty record");
  ExpectError("e1,1700000000,c,1,\"caf\xE9\"", Errc::kBadType, "note",
              "field 'note': expected UTF-8 text, got \"caf\\xE9\"");
}

TEST_F(CsvDecoderTest, EmptyCellsAreMissing) {
  ASSERT_TRUE(Header(kHeader).ok());
  ExpectError("e1,1700000000,c,,", Errc::kMissingField, "amount",
              "missing required field 'amount'");
  ExpectError("e1,1700000000,c,\"\"", Errc::kMissingField, "amount",
              "missing required field 'amount'");
  ExpectError(",1700000000,c,1", Errc::kMissingField, "id", "missing required field 'id'");
  ExpectError("\"\",1700000000,c,1", Errc::kMissingField, "id",
              "missing required field 'id': the event id must not be empty");
  ExpectError("e1,1700000000,\"\",1", Errc::kMissingField, "card",
              "missing required field 'card': the routing key must not be empty");
  ASSERT_TRUE(Decode("e1,1700000000,c,1,,\"\", ,,").ok());
  for (size_t f : {kQty, kOnline, kLat, kLon, kNote}) EXPECT_EQ(Kind(f), Value::Kind::kNull) << f;
}

TEST_F(CsvDecoderTest, ShortRows) {
  ASSERT_TRUE(Header(kHeader).ok());
  ExpectError("e1,1700000000,c", Errc::kMissingField, "amount",
              "missing required field 'amount': the row has 3 columns, 'amount' needs at least 4");
  ExpectError("e1", Errc::kMissingField, "ts",
              "missing required field 'ts': the row has 1 column, 'ts' needs at least 2");
  ASSERT_TRUE(Decode("e1,1700000000,c,1").ok());  // optional columns beyond the row: null
  EXPECT_EQ(Kind(kNote), Value::Kind::kNull);
}

TEST_F(CsvDecoderTest, TypeErrorsNameTheFieldAndTheText) {
  ASSERT_TRUE(Header(kHeader).ok());
  ExpectError("e1,1700000000,c,\"12,50\"", Errc::kBadType, "amount",
              "field 'amount': expected float, got \"12,50\"");
  ExpectError("e1,1700000000,c,NaN", Errc::kNonFinite, "amount",
              "field 'amount': expected a finite float, got \"NaN\"");
  ExpectError("e1,1700000000,c,1,2.5", Errc::kBadType, "qty",
              "field 'qty': expected int, got \"2.5\"");
  ExpectError("e1,1700000000,c,1,2,maybe", Errc::kBadType, "online",
              "field 'online': expected bool, got \"maybe\"");
  ExpectError("e1,yesterday,c,1", Errc::kBadTimestamp, "ts",
              "field 'ts': expected epoch_s timestamp, got \"yesterday\"");
  ExpectError("e1,-5,c,1", Errc::kBadTimestamp, "ts",
              "field 'ts': timestamp outside [1970-01-01, 2200-01-01), got \"-5\"");
  ExpectError("e1,1700000000,c,-0.01", Errc::kOutOfRange, "amount",
              "field 'amount': -0.01 is below min 0");
  ExpectError("e1,1700000000,c,1,,,-91,0", Errc::kOutOfRange, "lat",
              "field 'lat': -91 is outside [-90, 90]");
}

TEST_F(CsvDecoderTest, ReusedEventsCarryNothingOver) {
  ASSERT_TRUE(Header(kHeader).ok());
  ASSERT_TRUE(Decode("e1,1700000000,c1,1,4,true,1,2,note one").ok());
  ASSERT_TRUE(Decode("e2,1700000001,c2,2").ok());
  for (size_t f : {kQty, kOnline, kLat, kLon, kNote}) EXPECT_EQ(Kind(f), Value::Kind::kNull) << f;
  EXPECT_EQ(event_.arena, "e2c2");
  EXPECT_EQ(event_.time_us, 1700000001000000);
}

class CsvSemicolonTest : public CsvDecoderTest {
 protected:
  CsvSemicolonTest() : CsvDecoderTest("{header: true, delimiter: \";\"}") {}
};

TEST_F(CsvSemicolonTest, SplitsOnTheConfiguredDelimiter) {
  ASSERT_TRUE(Header("id;ts;card_number;amount;note").ok());
  const DecodeStatus st = Decode("e,1;1700000000;c1;\"3\";\"x;y\"");
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(event_.Id(), "e,1");
  EXPECT_EQ(event_.Str(kNote), "x;y");
  ExpectError("e1;1700000000;c1;3,5", Errc::kBadType, "amount",
              "field 'amount': expected float, got \"3,5\"");
}

TEST(CsvDecoder, NoHeaderUsesColumnIndexesAndCustomDelimiter) {
  config::Pipeline p = Load(R"(name: t
input:
  format: csv
  csv: {header: false, delimiter: "\t"}
  fields:
    - {name: id, type: string, column: 2}
    - {name: ts, type: timestamp, column: 0}
    - {name: card, type: string, column: 1}
    - {name: amount, type: float, column: 4, required: false}
event: {id: id, time: ts, key: card}
)");
  auto decoder = MakeDecoder(p);
  EXPECT_FALSE(decoder->WantsHeader());
  Event e;
  DecodeStatus st = decoder->Decode(Padded("2026-11-23T10:15:30Z\tc1\t\"e\t1\"\tignored\t9.5"), e);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(e.Id(), "e\t1");
  EXPECT_EQ(e.Key(), "c1");
  EXPECT_EQ(e.time_us, *ParseIso8601("2026-11-23T10:15:30Z"));
  EXPECT_DOUBLE_EQ(e.values[3].f, 9.5);
  st = decoder->Decode(Padded("2026-11-23T10:15:30Z\tc1\te2"), e);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(e.values[3].kind, Value::Kind::kNull);
  st = decoder->Decode(Padded("2026-11-23T10:15:30Z\tc1"), e);
  EXPECT_EQ(st.code, Errc::kMissingField);
  EXPECT_EQ(st.message,
            "missing required field 'id': the row has 2 columns, 'id' needs at least 3");
  // With a tab delimiter, commas are plain text.
  st = decoder->Decode(Padded("2026-11-23T10:15:30Z\tc,1\te,3"), e);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(e.Key(), "c,1");
}

}  // namespace
}  // namespace vigil::decode
