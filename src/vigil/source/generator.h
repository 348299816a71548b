#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "vigil/source/record_source.h"

namespace vigil::source {

// The synthetic, labelled transaction generator. Scenario "card-fraud" simulates card
// traffic for a population of cards and merchants (home cities, habitual merchants, devices,
// spending profiles, a daily rhythm in local time) and injects labelled fraud patterns plus
// rare legitimate outliers. Output is a pure function of the options: the same seed gives
// byte-identical records on every platform (own PRNG and distributions, integer formatting).
// See docs/generator.md for the fields and the patterns.

// Scenarios the generator knows.
inline constexpr std::array<std::string_view, 1> kGeneratorScenarios = {"card-fraud"};

// 2026-01-01T00:00:00Z in microseconds since the Unix epoch.
inline constexpr int64_t kDefaultGeneratorStartUs = 1767225600LL * 1000000;

struct GeneratorOptions {
  std::string scenario = "card-fraud";
  uint64_t events = 100000;  // records to produce, exactly
  uint64_t seed = 42;
  int64_t start_us = kDefaultGeneratorStartUs;  // event time of the simulation's start
  uint64_t cards = 0;                           // 0: max(200, events / 150)
  uint64_t merchants = 0;                       // 0: max(100, cards / 5)
  double fraud_rate = 0.01;  // approximate share of records that belong to fraud patterns
};

// The label of a record: which injected sequence it belongs to, or kNormal.
enum class Pattern : uint8_t {
  kNormal,
  kCardTesting,      // fraud: burst of tiny online amounts, maybe one larger purchase last
  kAccountTakeover,  // fraud: new device, far from home, several times the usual amount
  kSpendingSpree,    // fraud: stolen card, many high-risk purchases within hours
  kLegitOutlier,     // not fraud: a big one-off purchase at home, or a trip abroad
};
inline constexpr size_t kPatternCount = 5;

std::string_view PatternName(Pattern p);
inline bool IsFraud(Pattern p) {
  return p == Pattern::kCardTesting || p == Pattern::kAccountTakeover ||
         p == Pattern::kSpendingSpree;
}

enum class Channel : uint8_t { kPos, kEcom, kAtm, kContactless };

std::string_view ChannelName(Channel c);

// One generated card transaction. Numbers are kept exact (cents, 1e-4 degrees) so text
// output is deterministic. Strings are owned; reusing one CardTxn across Next() calls keeps
// their capacity, so steady-state generation does not allocate.
struct CardTxn {
  std::string event_id;     // "tx-" + 12-digit sequence number, unique within a run
  int64_t ts_us = 0;        // event time, whole milliseconds, microseconds since the epoch
  std::string card_id;      // 16-digit, Luhn-valid card number on a test BIN (400000/510000)
  std::string account_id;   // "AC" + 8 digits; a few accounts hold two cards
  std::string merchant_id;  // "M" + 6 digits
  uint16_t mcc = 0;         // ISO 18245 merchant category code, written as 4 digits
  int64_t amount_cents = 0;
  std::string_view currency;  // always "USD" (amounts are USD equivalents); static storage
  std::string_view country;   // ISO 3166 alpha-2 of the transaction location; static storage
  int32_t lat_e4 = 0;         // transaction location, 1e-4 degrees
  int32_t lon_e4 = 0;
  std::string device_id;  // pos/atm/contactless: the terminal "T<merchant>-<n>";
                          // ecom: the customer's device fingerprint "D" + 16 hex digits
  Channel channel = Channel::kPos;
  bool is_fraud = false;
  Pattern pattern = Pattern::kNormal;
};

// Records produced, by label.
struct GeneratorStats {
  uint64_t events = 0;
  uint64_t fraud = 0;
  std::array<uint64_t, kPatternCount> by_pattern{};  // indexed by Pattern
  int64_t first_ts_us = 0;
  int64_t last_ts_us = 0;
};

// CardFraudGenerator produces the "card-fraud" scenario one record at a time, in
// non-decreasing event time. Construction builds the card and merchant population (throws
// std::invalid_argument for an unknown scenario or nonsensical options); Next() then yields
// exactly `options.events` records. Stateful and not copyable; not thread-safe.
class CardFraudGenerator {
 public:
  explicit CardFraudGenerator(const GeneratorOptions& options);
  ~CardFraudGenerator();
  CardFraudGenerator(const CardFraudGenerator&) = delete;
  CardFraudGenerator& operator=(const CardFraudGenerator&) = delete;

  // Fills `out` with the next record; returns false (leaving `out` alone) after the last.
  bool Next(CardTxn& out);

  const GeneratorStats& Stats() const;
  uint64_t CardCount() const;
  uint64_t MerchantCount() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

enum class TextFormat : uint8_t { kJsonl, kCsv };

// "jsonl" (also "json") or "csv".
std::optional<TextFormat> ParseTextFormat(std::string_view name);

// Appends one JSON object with the fields in the documented order, then '\n'.
void AppendJsonLine(const CardTxn& txn, std::string& out);
// Appends one RFC 4180 CSV row (same field order as CsvHeader()), then '\n'.
void AppendCsvRow(const CardTxn& txn, std::string& out);
// The CSV header row, '\n'-terminated.
std::string_view CsvHeader();

// The CSV escaper the writer uses, exposed for other writers and tests (JSON strings use
// common/json.h). Appends `s` as a CSV field, quoted (with "" for ") only if it holds , " CR or LF.
void AppendCsvField(std::string_view s, std::string& out);

// Writes `options.events` records to `path` ("-" is standard output), CSV with a header.
// Throws std::invalid_argument for bad options, std::runtime_error naming the path on an
// I/O error.
GeneratorStats WriteGenerated(const GeneratorOptions& options, TextFormat format,
                              const std::string& path);

// A RecordSource yielding the generated records as JSON lines (Framing::kLines), exactly the
// bytes AppendJsonLine writes, with offsets and line numbers as if they were read from a
// file. Name() is "generator:<scenario>". Throws like CardFraudGenerator's constructor.
std::unique_ptr<RecordSource> OpenGenerator(const GeneratorOptions& options);

}  // namespace vigil::source
