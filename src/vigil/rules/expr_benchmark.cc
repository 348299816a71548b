// Rule evaluation cost, in ns per rule per event, on card-fraud events shaped like
// examples/card-fraud.yaml (15 fields, 21 features): a set of 10 realistic rules and a set of
// 100 (the 10 with varied thresholds), evaluated over 4096 distinct events so that branches
// cannot learn one event. Run a Release build:  build-rel/src/vigil/rules/rules_benchmark
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "vigil/rules/expr.h"

namespace vigil::rules {
namespace {

constexpr size_t kEvents = 4096;

const char* const kFeatures[] = {
    "card_txn_10m",      "card_txn_1h",        "card_amount_1h",     "card_txn_24h",
    "card_amount_24h",   "card_small_10m",     "card_avg_30d",       "card_max_30d",
    "card_amount_ewma",  "card_amount_z",      "amount_vs_avg",      "card_new_device",
    "card_new_country",  "card_new_merchant",  "card_merchants_24h", "card_secs_since_last",
    "card_km_from_last", "card_kmh_from_last", "merchant_txn_1h",    "merchant_cards_24h",
    "device_cards_24h",
};
constexpr size_t kFeatureCount = sizeof(kFeatures) / sizeof(kFeatures[0]);

enum Field : int {
  kEventId,
  kTs,
  kCardId,
  kAccountId,
  kMerchantId,
  kMcc,
  kAmount,
  kCurrency,
  kCountry,
  kLat,
  kLon,
  kDeviceId,
  kChannel,
  kIsFraud,
  kPattern,
  kFieldCount
};

// Rule templates; {0} is a threshold scale (1 for the 10-rule set).
const char* const kTemplates[] = {
    "card_txn_10m >= 5 * {0} and card_amount_1h > 3 * coalesce(card_avg_30d, 100) and "
    "mcc in high_risk_mcc",
    "card_kmh_from_last > 900 * {0} and card_km_from_last > 500",
    "amount > 5 * {0} * coalesce(card_avg_30d, amount) and amount > 200 and card_new_merchant == 1",
    "card_small_10m >= 3 * {0} and card_merchants_24h >= 3",
    "card_new_country == 1 and country not in ('DE', 'FR', 'NL', 'GB') and amount >= 1000 * {0}",
    "channel == 'ecom' and device_id is null and amount > 200 * {0}",
    "card_amount_z > 4 * {0} or amount_vs_avg > 10 * {0}",
    "hour_of_day(ts) >= 1 and hour_of_day(ts) <= 5 and amount > 300 * {0} and "
    "card_new_merchant == 1",
    "merchant_cards_24h > 50 * {0} and merchant_txn_1h > 100 or device_cards_24h >= 4 * {0}",
    "country in sanctioned or starts_with(merchant_id, 'm_crypto') and amount > 1000 * {0}",
};

struct Fixture {
  Schema schema;
  Lists lists;
  std::vector<Event> events;
  std::vector<std::vector<double>> slots;

  Fixture() {
    const std::pair<const char*, FieldType> fields[] = {
        {"event_id", FieldType::kString},
        {"ts", FieldType::kTimestamp},
        {"card_id", FieldType::kString},
        {"account_id", FieldType::kString},
        {"merchant_id", FieldType::kString},
        {"mcc", FieldType::kString},
        {"amount", FieldType::kFloat},
        {"currency", FieldType::kString},
        {"country", FieldType::kString},
        {"lat", FieldType::kLat},
        {"lon", FieldType::kLon},
        {"device_id", FieldType::kString},
        {"channel", FieldType::kString},
        {"is_fraud", FieldType::kBool},
        {"pattern", FieldType::kString},
    };
    for (const auto& [name, type] : fields) (void)schema.AddField(name, type);
    for (const char* f : kFeatures) (void)schema.AddSlot(f);
    lists.Add("high_risk_mcc", {"5967", "7995", "4829", "6051", "5993", "7273"});
    lists.Add("sanctioned", {"RU", "KP", "IR", "SY", "CU", "BY"});

    const char* const countries[] = {"DE", "DE", "DE", "FR", "NL", "GB", "US", "RU", "ES", "IT"};
    const char* const channels[] = {"pos", "pos", "ecom", "ecom", "atm", "moto"};
    const char* const mccs[] = {"5411", "5812", "5999", "5967", "4829", "5541", "7995", "5311"};
    std::mt19937_64 rng(42);
    auto uniform = [&](double lo, double hi) {
      return std::uniform_real_distribution<double>(lo, hi)(rng);
    };
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    const double nan = std::nan("");
    events.resize(kEvents);
    slots.resize(kEvents);
    for (size_t i = 0; i < kEvents; ++i) {
      Event& e = events[i];
      e.Reset(kFieldCount);
      e.SetString(kEventId, fmt::format("e{:09}", i));
      e.values[kTs].kind = Value::Kind::kTime;
      e.values[kTs].i = 1795428930000000LL + static_cast<int64_t>(pick(86400)) * 1000000;
      e.SetString(kCardId, fmt::format("4{:015}", pick(100000)));
      e.SetString(kAccountId, fmt::format("a{:08}", pick(50000)));
      e.SetString(kMerchantId, pick(20) == 0 ? fmt::format("m_crypto_{}", pick(50))
                                             : fmt::format("m_{:06}", pick(20000)));
      e.SetString(kMcc, mccs[pick(8)]);
      const double amount = std::exp(uniform(0, 8));  // 1 .. ~3000, skewed to small
      e.values[kAmount].kind = Value::Kind::kFloat;
      e.values[kAmount].f = std::round(amount * 100) / 100;
      e.SetString(kCurrency, "EUR");
      e.SetString(kCountry, countries[pick(10)]);
      e.values[kLat].kind = Value::Kind::kFloat;
      e.values[kLat].f = uniform(35, 60);
      e.values[kLon].kind = Value::Kind::kFloat;
      e.values[kLon].f = uniform(-10, 30);
      if (pick(4) != 0) e.SetString(kDeviceId, fmt::format("d{:07}", pick(80000)));
      e.SetString(kChannel, channels[pick(6)]);
      e.SetString(kPattern, "none");

      std::vector<double>& s = slots[i];
      const double txn_10m = static_cast<double>(1 + pick(pick(10) == 0 ? 12 : 3));
      const double avg = pick(10) == 0 ? nan : uniform(20, 200);
      const double first = pick(8) == 0;  // no previous event: history features are NaN
      s = {
          txn_10m,                                                 // card_txn_10m
          txn_10m + static_cast<double>(pick(8)),                  // card_txn_1h
          amount * txn_10m * uniform(0.5, 2),                      // card_amount_1h
          txn_10m + static_cast<double>(pick(30)),                 // card_txn_24h
          amount * txn_10m * uniform(1, 6),                        // card_amount_24h
          static_cast<double>(pick(pick(20) == 0 ? 6 : 2)),        // card_small_10m
          avg,                                                     // card_avg_30d
          std::isnan(avg) ? nan : avg * uniform(1, 5),             // card_max_30d
          std::isnan(avg) ? nan : avg * uniform(0.8, 1.2),         // card_amount_ewma
          first ? nan : uniform(-2, 2) * (pick(30) == 0 ? 4 : 1),  // card_amount_z
          std::isnan(avg) ? nan : amount / avg,                    // amount_vs_avg
          static_cast<double>(pick(6) == 0),                       // card_new_device
          static_cast<double>(pick(10) == 0),                      // card_new_country
          static_cast<double>(pick(3) == 0),                       // card_new_merchant
          static_cast<double>(1 + pick(6)),                        // card_merchants_24h
          first ? nan : uniform(1, 86400),                         // card_secs_since_last
          first ? nan : uniform(0, pick(20) == 0 ? 3000 : 50),     // card_km_from_last
          first ? nan : uniform(0, pick(20) == 0 ? 3000 : 80),     // card_kmh_from_last
          static_cast<double>(pick(pick(50) == 0 ? 300 : 60)),     // merchant_txn_1h
          static_cast<double>(pick(pick(50) == 0 ? 200 : 40)),     // merchant_cards_24h
          static_cast<double>(1 + pick(pick(30) == 0 ? 8 : 2)),    // device_cards_24h
      };
    }
  }

  std::vector<Program> Rules(size_t count) const {
    std::vector<Program> out;
    for (size_t i = 0; i < count; ++i) {
      const size_t t = i % (sizeof(kTemplates) / sizeof(kTemplates[0]));
      const double scale = 1 + 0.05 * static_cast<double>(i / 10);
      const std::string text = fmt::format(fmt::runtime(kTemplates[t]), scale);
      CompileResult r = Compile(text, schema, lists);
      if (!r.ok()) {
        fmt::print(stderr, "{}: {}\n", text, r.error().message);
        std::abort();
      }
      out.push_back(std::move(r.value()));
    }
    return out;
  }
};

const Fixture& TheFixture() {
  static const Fixture f;
  return f;
}

void RunRules(benchmark::State& state, size_t count) {
  const Fixture& f = TheFixture();
  const std::vector<Program> rules = f.Rules(count);
  size_t i = 0;
  int64_t fired = 0;
  for (auto _ : state) {
    const Event& e = f.events[i];
    const std::span<const double> s = f.slots[i];
    for (const Program& p : rules) fired += p.Evaluate(e, s) == Tri::kTrue;
    i = (i + 1) % kEvents;
  }
  benchmark::DoNotOptimize(fired);
  const double evaluations = static_cast<double>(state.iterations()) * static_cast<double>(count);
  // Seconds per rule evaluation, printed with an SI prefix (e.g. "15.1ns").
  state.counters["per_rule"] =
      benchmark::Counter(evaluations, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["fired_pct"] = 100.0 * static_cast<double>(fired) / evaluations;
  state.SetItemsProcessed(static_cast<int64_t>(evaluations));
}

void BM_TenRules(benchmark::State& state) { RunRules(state, 10); }
void BM_HundredRules(benchmark::State& state) { RunRules(state, 100); }

void BM_OneComparison(benchmark::State& state) {
  const Fixture& f = TheFixture();
  const Program p = std::move(Compile("amount > 1000", f.schema, f.lists).value());
  size_t i = 0;
  int64_t fired = 0;
  for (auto _ : state) {
    fired += p.Evaluate(f.events[i], f.slots[i]) == Tri::kTrue;
    i = (i + 1) % kEvents;
  }
  benchmark::DoNotOptimize(fired);
  state.SetItemsProcessed(state.iterations());
}

void BM_CompileTenRules(benchmark::State& state) {
  const Fixture& f = TheFixture();
  for (auto _ : state) benchmark::DoNotOptimize(f.Rules(10));
  state.SetItemsProcessed(state.iterations() * 10);
}

BENCHMARK(BM_OneComparison);
BENCHMARK(BM_TenRules);
BENCHMARK(BM_HundredRules);
BENCHMARK(BM_CompileTenRules);

}  // namespace
}  // namespace vigil::rules

BENCHMARK_MAIN();
