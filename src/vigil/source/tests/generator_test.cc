#include "vigil/source/generator.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace vigil::source {
namespace {

constexpr int64_t kMinuteUs = 60'000'000;
constexpr int64_t kHourUs = 60 * kMinuteUs;
constexpr int64_t kDayUs = 24 * kHourUs;

const std::vector<std::string> kFields = {
    "event_id", "ts",  "card_id", "account_id", "merchant_id", "mcc",      "amount", "currency",
    "country",  "lat", "lon",     "device_id",  "channel",     "is_fraud", "pattern"};

GeneratorOptions Options(uint64_t events, uint64_t seed = 42) {
  GeneratorOptions o;
  o.events = events;
  o.seed = seed;
  return o;
}

std::vector<CardTxn> Generate(const GeneratorOptions& options) {
  CardFraudGenerator generator(options);
  std::vector<CardTxn> out;
  CardTxn txn;
  while (generator.Next(txn)) out.push_back(txn);
  return out;
}

std::string Jsonl(const GeneratorOptions& options) {
  CardFraudGenerator generator(options);
  std::string out;
  CardTxn txn;
  while (generator.Next(txn)) AppendJsonLine(txn, out);
  return out;
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

double HaversineKm(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kRad = M_PI / 180.0;
  const double dlat = (lat2 - lat1) * kRad;
  const double dlon = (lon2 - lon1) * kRad;
  const double a = std::pow(std::sin(dlat / 2), 2) +
                   std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * std::pow(std::sin(dlon / 2), 2);
  return 2 * 6371.0 * std::asin(std::sqrt(a));
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

bool LuhnValid(const std::string& number) {
  int sum = 0;
  for (size_t i = 0; i < number.size(); ++i) {
    int d = number[number.size() - 1 - i] - '0';
    if (i % 2 == 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 == 0;
}

TEST(GeneratorTest, SameSeedGivesIdenticalBytesOtherSeedDiffers) {
  const std::string a = Jsonl(Options(20000, 7));
  const std::string b = Jsonl(Options(20000, 7));
  const std::string c = Jsonl(Options(20000, 8));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_GT(a.size(), 20000u * 200);
}

// Golden output: the same seed must give these bytes with any compiler, -march or platform
// (checked with GCC 12 and clang 14, x86-64 and x86-64-v3). A deliberate change to the
// generator changes them: update them then, and say so in the commit.
TEST(GeneratorTest, GoldenOutputForSeed42) {
  const std::string text = Jsonl(Options(20000, 42));
  const std::vector<std::string> lines = SplitLines(text);
  ASSERT_EQ(lines.size(), 20000u);
  EXPECT_EQ(lines[0],
            "{\"event_id\":\"tx-000000000001\",\"ts\":\"2026-01-01T00:00:56.236Z\","
            "\"card_id\":\"5100000776609412\",\"account_id\":\"AC00000138\","
            "\"merchant_id\":\"M000027\",\"mcc\":\"5912\",\"amount\":63.23,\"currency\":\"USD\","
            "\"country\":\"MX\",\"lat\":19.4548,\"lon\":-99.0911,\"device_id\":\"T000027-2\","
            "\"channel\":\"pos\",\"is_fraud\":false,\"pattern\":\"normal\"}");
  uint64_t fnv = 1469598103934665603ULL;  // FNV-1a 64 of the whole text
  for (unsigned char c : text) {
    fnv ^= c;
    fnv *= 1099511628211ULL;
  }
  EXPECT_EQ(fnv, 0x9c6ef95d795d4f00ULL);
}

TEST(GeneratorTest, ExactCountUniqueIdsAndNonDecreasingTime) {
  const GeneratorOptions options = Options(30000);
  const std::vector<CardTxn> txns = Generate(options);
  ASSERT_EQ(txns.size(), 30000u);
  std::unordered_set<std::string> ids;
  for (size_t i = 0; i < txns.size(); ++i) {
    EXPECT_TRUE(ids.insert(txns[i].event_id).second) << txns[i].event_id;
    EXPECT_EQ(txns[i].ts_us % 1000, 0);
    EXPECT_GE(txns[i].ts_us, options.start_us);
    if (i > 0) {
      ASSERT_LE(txns[i - 1].ts_us, txns[i].ts_us) << "at record " << i;
    }
  }
  // Stops for good after `events`.
  CardFraudGenerator generator(Options(3));
  CardTxn txn;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(generator.Next(txn));
  EXPECT_FALSE(generator.Next(txn));
  EXPECT_FALSE(generator.Next(txn));
  EXPECT_EQ(generator.Stats().events, 3u);
}

TEST(GeneratorTest, PopulationDefaultsAndTimeSpan) {
  CardFraudGenerator small(Options(1000));
  EXPECT_EQ(small.CardCount(), 200u);
  EXPECT_EQ(small.MerchantCount(), 100u);
  CardFraudGenerator large(Options(300000));
  EXPECT_EQ(large.CardCount(), 2000u);
  EXPECT_EQ(large.MerchantCount(), 400u);

  // A few transactions per card and day: 40k events on 2000 cards span about a week.
  GeneratorOptions options = Options(40000);
  options.cards = 2000;
  CardFraudGenerator generator(options);
  CardTxn txn;
  std::set<std::string> cards;
  while (generator.Next(txn)) cards.insert(txn.card_id);
  EXPECT_GT(cards.size(), 1900u);
  const GeneratorStats& stats = generator.Stats();
  const double days = static_cast<double>(stats.last_ts_us - stats.first_ts_us) / kDayUs;
  const double per_card_day = 40000.0 / 2000 / days;
  EXPECT_GT(per_card_day, 1.0);
  EXPECT_LT(per_card_day, 6.0);
}

TEST(GeneratorTest, FieldsAreWellFormed) {
  const std::vector<CardTxn> txns = Generate(Options(20000));
  const std::set<std::string_view> channels = {"pos", "ecom", "atm", "contactless"};
  std::set<std::string> card_ids;
  for (const CardTxn& t : txns) {
    ASSERT_EQ(t.card_id.size(), 16u);
    EXPECT_TRUE(t.card_id.rfind("400000", 0) == 0 || t.card_id.rfind("510000", 0) == 0);
    EXPECT_TRUE(LuhnValid(t.card_id)) << t.card_id;
    card_ids.insert(t.card_id);
    EXPECT_EQ(t.account_id.size(), 10u);
    EXPECT_EQ(t.merchant_id.size(), 7u);
    EXPECT_GE(t.mcc, 1000);
    EXPECT_GT(t.amount_cents, 0);
    EXPECT_EQ(t.currency, "USD");
    ASSERT_EQ(t.country.size(), 2u);
    EXPECT_TRUE(std::isupper(t.country[0]) && std::isupper(t.country[1]));
    EXPECT_LE(std::abs(t.lat_e4), 900000);
    EXPECT_LE(std::abs(t.lon_e4), 1800000);
    EXPECT_TRUE(channels.count(ChannelName(t.channel)));
    EXPECT_EQ(t.is_fraud, IsFraud(t.pattern));
    // Terminals for card-present channels, device fingerprints online.
    EXPECT_EQ(t.device_id[0], t.channel == Channel::kEcom ? 'D' : 'T') << t.device_id;
  }
  EXPECT_GT(card_ids.size(), 150u);
}

TEST(GeneratorTest, EveryJsonLineParsesWithFieldsInOrder) {
  const GeneratorOptions options = Options(5000);
  const std::vector<CardTxn> txns = Generate(options);
  const std::vector<std::string> lines = SplitLines(Jsonl(options));
  ASSERT_EQ(lines.size(), txns.size());
  simdjson::dom::parser parser;
  for (size_t i = 0; i < lines.size(); ++i) {
    simdjson::dom::object obj;
    ASSERT_EQ(parser.parse(lines[i]).get(obj), simdjson::SUCCESS) << lines[i];
    size_t k = 0;
    for (auto field : obj) {
      ASSERT_LT(k, kFields.size());
      EXPECT_EQ(field.key, kFields[k]) << lines[i];
      ++k;
    }
    ASSERT_EQ(k, kFields.size()) << lines[i];
    const CardTxn& t = txns[i];
    EXPECT_EQ(std::string_view(obj["event_id"]), t.event_id);
    EXPECT_EQ(std::string_view(obj["card_id"]), t.card_id);
    EXPECT_EQ(std::string_view(obj["mcc"]), std::to_string(t.mcc));
    EXPECT_DOUBLE_EQ(double(obj["amount"]), t.amount_cents / 100.0);
    EXPECT_DOUBLE_EQ(double(obj["lat"]), t.lat_e4 / 1e4);
    EXPECT_DOUBLE_EQ(double(obj["lon"]), t.lon_e4 / 1e4);
    EXPECT_EQ(bool(obj["is_fraud"]), t.is_fraud);
    EXPECT_EQ(std::string_view(obj["pattern"]), PatternName(t.pattern));
    EXPECT_EQ(std::string_view(obj["channel"]), ChannelName(t.channel));
    // Numbers keep their fixed decimals.
    EXPECT_NE(lines[i].find(",\"amount\":" + std::to_string(t.amount_cents / 100) + "." +
                            (t.amount_cents % 100 < 10 ? "0" : "") +
                            std::to_string(t.amount_cents % 100) + ","),
              std::string::npos)
        << lines[i];
  }
  // The first line, spelled out.
  EXPECT_EQ(lines[0].substr(0, 38), "{\"event_id\":\"tx-000000000001\",\"ts\":\"20");
  EXPECT_NE(lines[0].find("\"ts\":\"2026-01-01T"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("Z\",\"card_id\"") - lines[0].find("\"ts\":\"") - 6, 23u) << lines[0];
}

TEST(GeneratorTest, FraudShareFollowsTheRateAndAllPatternsAppear) {
  CardFraudGenerator generator(Options(100000));
  CardTxn txn;
  while (generator.Next(txn)) {
  }
  const GeneratorStats& stats = generator.Stats();
  EXPECT_EQ(stats.events, 100000u);
  const double share = static_cast<double>(stats.fraud) / 100000;
  EXPECT_GT(share, 0.0065);
  EXPECT_LT(share, 0.0140);
  for (size_t p = 0; p < kPatternCount; ++p) {
    EXPECT_GT(stats.by_pattern[p], 0u) << PatternName(static_cast<Pattern>(p));
  }
  EXPECT_GT(stats.by_pattern[static_cast<size_t>(Pattern::kLegitOutlier)], 50u);
  EXPECT_EQ(stats.fraud, stats.by_pattern[1] + stats.by_pattern[2] + stats.by_pattern[3]);

  GeneratorOptions more = Options(50000);
  more.fraud_rate = 0.05;
  CardFraudGenerator busy(more);
  while (busy.Next(txn)) {
  }
  const double busy_share = static_cast<double>(busy.Stats().fraud) / 50000;
  EXPECT_GT(busy_share, 0.035);
  EXPECT_LT(busy_share, 0.065);

  GeneratorOptions none = Options(20000);
  none.fraud_rate = 0;
  CardFraudGenerator clean(none);
  while (clean.Next(txn)) EXPECT_FALSE(txn.is_fraud);
  EXPECT_EQ(clean.Stats().fraud, 0u);
}

// Per card: its normal transactions and its transactions of each pattern, in time order.
struct CardHistory {
  std::vector<const CardTxn*> normal;
  std::map<Pattern, std::vector<const CardTxn*>> patterns;
  std::vector<const CardTxn*> all;
};

class GeneratorPatternTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    txns_ = new std::vector<CardTxn>(Generate(Options(100000, 1234)));
    for (const CardTxn& t : *txns_) {
      CardHistory& h = (*cards_)[t.card_id];
      h.all.push_back(&t);
      if (t.pattern == Pattern::kNormal) {
        h.normal.push_back(&t);
      } else {
        h.patterns[t.pattern].push_back(&t);
      }
    }
  }
  static void TearDownTestSuite() {
    delete txns_;
    cards_->clear();
  }

  static std::vector<double> NormalAmounts(const CardHistory& h) {
    std::vector<double> amounts;
    for (const CardTxn* t : h.normal) amounts.push_back(static_cast<double>(t->amount_cents));
    return amounts;
  }
  // The card's home: the median location of its normal transactions (all made at home).
  static std::pair<double, double> Home(const CardHistory& h) {
    std::vector<double> lats;
    std::vector<double> lons;
    for (const CardTxn* t : h.normal) {
      lats.push_back(t->lat_e4 / 1e4);
      lons.push_back(t->lon_e4 / 1e4);
    }
    return {Median(lats), Median(lons)};
  }
  static int64_t LastTs() { return txns_->back().ts_us; }

  static std::vector<CardTxn>* txns_;
  static std::unordered_map<std::string, CardHistory>* cards_;
};
std::vector<CardTxn>* GeneratorPatternTest::txns_ = nullptr;
std::unordered_map<std::string, CardHistory>* GeneratorPatternTest::cards_ =
    new std::unordered_map<std::string, CardHistory>();

TEST_F(GeneratorPatternTest, CardTestingIsABurstOfTinyOnlineAmounts) {
  int episodes = 0;
  for (const auto& [card, h] : *cards_) {
    const auto it = h.patterns.find(Pattern::kCardTesting);
    if (it == h.patterns.end()) continue;
    const std::vector<const CardTxn*>& seq = it->second;
    ++episodes;
    size_t tiny = 0;
    for (size_t i = 0; i < seq.size(); ++i) {
      EXPECT_EQ(seq[i]->channel, Channel::kEcom);
      EXPECT_TRUE(seq[i]->is_fraud);
      EXPECT_GE(seq[i]->amount_cents, 50);
      if (seq[i]->amount_cents <= 300) {
        ++tiny;
      } else {
        EXPECT_EQ(i, seq.size() - 1) << "only the last purchase may be larger, card " << card;
      }
    }
    const int64_t span = seq.back()->ts_us - seq.front()->ts_us;
    EXPECT_LE(span, 20 * kMinuteUs) << card;
    EXPECT_LE(seq[tiny - 1]->ts_us - seq.front()->ts_us, 10 * kMinuteUs) << card;
    if (seq.back()->ts_us + kHourUs < LastTs()) {
      EXPECT_GE(tiny, 5u) << card;  // unless the run ended in the middle of the burst
    }
    // One bot device throughout.
    for (const CardTxn* t : seq) EXPECT_EQ(t->device_id, seq.front()->device_id);
  }
  EXPECT_GE(episodes, 10);
}

TEST_F(GeneratorPatternTest, AccountTakeoverUsesANewDeviceFarFromHome) {
  int checked = 0;
  for (const auto& [card, h] : *cards_) {
    const auto it = h.patterns.find(Pattern::kAccountTakeover);
    if (it == h.patterns.end()) continue;
    const std::vector<const CardTxn*>& seq = it->second;
    EXPECT_LE(seq.size(), 4u);
    EXPECT_LE(seq.back()->ts_us - seq.front()->ts_us, kHourUs);
    // The device never appears on this card outside the takeover.
    for (const CardTxn* t : h.all) {
      if (t->pattern == Pattern::kAccountTakeover) continue;
      for (const CardTxn* a : seq) EXPECT_NE(t->device_id, a->device_id) << card;
    }
    if (h.normal.size() < 3) continue;
    const auto [home_lat, home_lon] = Home(h);
    const double median = Median(NormalAmounts(h));
    for (const CardTxn* a : seq) {
      EXPECT_TRUE(a->is_fraud);
      EXPECT_EQ(a->channel, Channel::kEcom);
      EXPECT_GT(HaversineKm(home_lat, home_lon, a->lat_e4 / 1e4, a->lon_e4 / 1e4), 500.0) << card;
      EXPECT_GT(static_cast<double>(a->amount_cents), 2 * median) << card;
    }
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST_F(GeneratorPatternTest, SpendingSpreeIsFarAboveTheCardsNormalAmounts) {
  int checked = 0;
  for (const auto& [card, h] : *cards_) {
    const auto it = h.patterns.find(Pattern::kSpendingSpree);
    if (it == h.patterns.end()) continue;
    const std::vector<const CardTxn*>& seq = it->second;
    EXPECT_LE(seq.size(), 15u);
    EXPECT_LE(seq.back()->ts_us - seq.front()->ts_us, 3 * kHourUs) << card;
    const std::set<uint16_t> risky = {5732, 5944, 5999, 6011};
    for (const CardTxn* t : seq) {
      EXPECT_TRUE(risky.count(t->mcc)) << t->mcc;
      EXPECT_NE(t->channel, Channel::kEcom);
    }
    if (h.normal.size() < 5) continue;
    const double median = Median(NormalAmounts(h));
    for (const CardTxn* t : seq) {
      EXPECT_GT(static_cast<double>(t->amount_cents), median) << card;
    }
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST_F(GeneratorPatternTest, LegitOutliersAreNotFraudAndLookUnusual) {
  int big = 0;
  int abroad = 0;
  for (const auto& [card, h] : *cards_) {
    const auto it = h.patterns.find(Pattern::kLegitOutlier);
    if (it == h.patterns.end() || h.normal.size() < 5) continue;
    const auto [home_lat, home_lon] = Home(h);
    const double median = Median(NormalAmounts(h));
    for (const CardTxn* t : it->second) {
      EXPECT_FALSE(t->is_fraud);
      if (t->amount_cents > 5 * median) ++big;
      if (HaversineKm(home_lat, home_lon, t->lat_e4 / 1e4, t->lon_e4 / 1e4) > 500) ++abroad;
    }
  }
  EXPECT_GE(big, 10);
  EXPECT_GE(abroad, 10);
}

TEST_F(GeneratorPatternTest, NormalTrafficFollowsTheTimeOfDay) {
  // Local hour approximated from the longitude of the transaction.
  int night = 0;
  int midday = 0;
  for (const CardTxn& t : *txns_) {
    if (t.pattern != Pattern::kNormal) continue;
    const int64_t local = t.ts_us + static_cast<int64_t>(t.lon_e4 / 1e4 / 15 * kHourUs);
    const int64_t hour = ((local % kDayUs + kDayUs) % kDayUs) / kHourUs;
    if (hour >= 2 && hour < 5) ++night;
    if (hour >= 11 && hour < 14) ++midday;
  }
  EXPECT_GT(midday, 4 * night) << "night " << night << " midday " << midday;
}

TEST(GeneratorTest, CsvHasTheHeaderAndOneRowPerRecord) {
  std::string header(CsvHeader());
  ASSERT_EQ(header.back(), '\n');
  header.pop_back();
  std::vector<std::string> names;
  std::stringstream in(header);
  for (std::string name; std::getline(in, name, ',');) names.push_back(name);
  EXPECT_EQ(names, kFields);

  const GeneratorOptions options = Options(2000);
  const std::vector<CardTxn> txns = Generate(options);
  std::string csv(CsvHeader());
  for (const CardTxn& t : txns) AppendCsvRow(t, csv);
  const std::vector<std::string> lines = SplitLines(csv);
  ASSERT_EQ(lines.size(), txns.size() + 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(std::count(lines[i].begin(), lines[i].end(), ','), 14) << lines[i];
    EXPECT_EQ(lines[i].rfind(txns[i - 1].event_id + ",", 0), 0u) << lines[i];
  }

  const std::string path = ::testing::TempDir() + "generator_test.csv";
  const GeneratorStats stats = WriteGenerated(options, TextFormat::kCsv, path);
  std::ifstream file(path, std::ios::binary);
  const std::string written((std::istreambuf_iterator<char>(file)), {});
  EXPECT_EQ(written, csv);
  EXPECT_EQ(stats.events, 2000u);
  std::remove(path.c_str());
}

TEST(GeneratorTest, CsvEscaperQuotesOnlyWhenNeeded) {
  const auto field = [](std::string_view s) {
    std::string out;
    AppendCsvField(s, out);
    return out;
  };
  EXPECT_EQ(field("plain"), "plain");
  EXPECT_EQ(field(""), "");
  EXPECT_EQ(field("a,b"), "\"a,b\"");
  EXPECT_EQ(field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(field("cr\r"), "\"cr\r\"");
}

TEST(GeneratorTest, WriteGeneratedMatchesAppendJsonLine) {
  const GeneratorOptions options = Options(3000, 99);
  const std::string path = ::testing::TempDir() + "generator_test.jsonl";
  const GeneratorStats stats = WriteGenerated(options, TextFormat::kJsonl, path);
  std::ifstream file(path, std::ios::binary);
  const std::string written((std::istreambuf_iterator<char>(file)), {});
  EXPECT_EQ(written, Jsonl(options));
  EXPECT_EQ(stats.events, 3000u);
  uint64_t sum = 0;
  for (uint64_t n : stats.by_pattern) sum += n;
  EXPECT_EQ(sum, 3000u);
  std::remove(path.c_str());

  EXPECT_THROW(WriteGenerated(options, TextFormat::kJsonl, "/nonexistent-dir/x.jsonl"),
               std::runtime_error);
  EXPECT_EQ(ParseTextFormat("csv"), TextFormat::kCsv);
  EXPECT_EQ(ParseTextFormat("jsonl"), TextFormat::kJsonl);
  EXPECT_EQ(ParseTextFormat("xml"), std::nullopt);
}

TEST(GeneratorTest, RecordSourceYieldsTheJsonLinesWithPadding) {
  const GeneratorOptions options = Options(2500, 5);
  const std::string expected = Jsonl(options);
  std::unique_ptr<RecordSource> source = OpenGenerator(options);
  EXPECT_EQ(source->Name(), "generator:card-fraud");
  std::string got;
  std::vector<Record> batch;
  simdjson::dom::parser parser;
  const size_t sizes[] = {1, 7, 1000, 64};
  uint64_t records = 0;
  for (size_t call = 0; source->Next(batch, sizes[call % 4]); ++call) {
    ASSERT_FALSE(batch.empty());
    ASSERT_LE(batch.size(), sizes[call % 4]);
    for (const Record& r : batch) {
      EXPECT_EQ(r.offset, got.size());
      EXPECT_EQ(r.line, ++records);
      EXPECT_FALSE(r.oversize);
      ASSERT_EQ(r.text.find('\n'), std::string_view::npos);
      got.append(r.text);
      got += '\n';
    }
    // Padding: '\n' ends every record; the last one is followed by kRecordPadding zeros.
    const Record& last = batch.back();
    const char* end = last.text.data() + last.text.size();
    EXPECT_EQ(end[0], '\n');
    for (size_t i = 1; i < kRecordPadding; ++i) ASSERT_EQ(end[i], '\0');
    // simdjson may parse in place, reading up to 64 bytes past the record.
    for (const Record& r : batch) {
      simdjson::dom::element doc;
      ASSERT_EQ(parser.parse(r.text.data(), r.text.size(), false).get(doc), simdjson::SUCCESS);
    }
    EXPECT_EQ(source->Position(), got.size());
    EXPECT_EQ(source->LinesRead(), records);
  }
  EXPECT_TRUE(batch.empty());
  EXPECT_FALSE(source->Next(batch, 10));
  EXPECT_EQ(got, expected);
  EXPECT_EQ(records, 2500u);
}

TEST(GeneratorTest, RejectsUnknownScenarioAndNonsensicalOptions) {
  GeneratorOptions o = Options(10);
  o.scenario = "aml";
  try {
    CardFraudGenerator g(o);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'aml'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("card-fraud"), std::string::npos) << e.what();
  }
  EXPECT_THROW(OpenGenerator(o), std::invalid_argument);
  for (double rate : {-0.1, 0.9, std::numeric_limits<double>::quiet_NaN()}) {
    o = Options(10);
    o.fraud_rate = rate;
    EXPECT_THROW(CardFraudGenerator{o}, std::invalid_argument) << rate;
  }
  o = Options(10);
  o.merchants = 5;
  EXPECT_THROW(CardFraudGenerator{o}, std::invalid_argument);
  o = Options(10);
  o.start_us = -1;
  EXPECT_THROW(CardFraudGenerator{o}, std::invalid_argument);
  o = Options(10);
  o.cards = 1;  // tiny but sensible
  EXPECT_EQ(Generate(o).size(), 10u);
}

}  // namespace
}  // namespace vigil::source
