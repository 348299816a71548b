// Decode throughput on card-transaction records of ~250 bytes, JSON lines and CSV.
// Run a Release build:  build-rel/src/vigil/decode/decode_benchmark
#include <cstdio>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "vigil/common/testing/card_fields.h"
#include "vigil/config/pipeline.h"
#include "vigil/decode/decoder.h"
#include "vigil/source/record_source.h"

namespace vigil::decode {
namespace {

using vigil::testing::kCardFields;

constexpr size_t kRecords = 4096;  // distinct records, so branches cannot learn one record

const char* const kCurrencies[] = {"EUR", "USD", "GBP", "CHF"};
const char* const kCountries[] = {"DE", "US", "GB", "CH", "FR", "NL"};
const char* const kChannels[] = {"pos", "ecom", "atm", "moto"};
const char* const kPatterns[] = {"none", "none", "none", "velocity", "geo_jump", "card_testing"};

struct Txn {
  std::string event_id, ts, card_id, account_id, merchant_id;
  int mcc;
  double amount;
  const char *currency, *country;
  double lat, lon;
  std::string device_id;
  const char* channel;
  bool is_fraud;
  const char* pattern;
};

Txn MakeTxn(size_t i) {
  const auto k = static_cast<unsigned>(i * 2654435761u);
  return Txn{fmt::format("e{:09}", i),
             fmt::format("2026-11-23T{:02}:{:02}:{:02}.{:03}Z", (k >> 3) % 24, (k >> 7) % 60,
                         (k >> 11) % 60, (k >> 17) % 1000),
             fmt::format("c{:07}", k % 1000003),
             fmt::format("a{:06}", k % 500009),
             fmt::format("m{:05}", (k >> 5) % 20011),
             static_cast<int>(4000 + k % 2000),
             static_cast<double>(k % 100000) / 100.0,
             kCurrencies[k % 4],
             kCountries[(k >> 2) % 6],
             -60.0 + static_cast<double>(k % 12000) / 100.0,
             -170.0 + static_cast<double>((k >> 4) % 34000) / 100.0,
             fmt::format("d{:08x}", k),
             kChannels[(k >> 9) % 4],
             (k % 97) == 0,
             kPatterns[(k >> 13) % 6]};
}

std::string JsonLine(const Txn& t) {
  return fmt::format(
      R"({{"event_id":"{}","ts":"{}","card_id":"{}","account_id":"{}","merchant_id":"{}",)"
      R"("mcc":{},"amount":{:.2f},"currency":"{}","country":"{}","lat":{:.4f},"lon":{:.4f},)"
      R"("device_id":"{}","channel":"{}","is_fraud":{},"pattern":"{}"}})",
      t.event_id, t.ts, t.card_id, t.account_id, t.merchant_id, t.mcc, t.amount, t.currency,
      t.country, t.lat, t.lon, t.device_id, t.channel, t.is_fraud, t.pattern);
}

std::string CsvLine(const Txn& t) {
  return fmt::format("{},{},{},{},{},{},{:.2f},{},{},{:.4f},{:.4f},{},{},{},{}", t.event_id, t.ts,
                     t.card_id, t.account_id, t.merchant_id, t.mcc, t.amount, t.currency, t.country,
                     t.lat, t.lon, t.device_id, t.channel, t.is_fraud, t.pattern);
}

// All records in one buffer, each followed by the padding a source guarantees.
struct Corpus {
  std::string buffer;
  std::vector<std::string_view> records;
  size_t bytes = 0;
};

template <typename Format>
Corpus MakeCorpus(Format format) {
  std::vector<std::string> lines;
  for (size_t i = 0; i < kRecords; ++i) lines.push_back(format(MakeTxn(i)));
  Corpus c;
  size_t total = 0;
  for (const auto& l : lines) total += l.size() + source::kRecordPadding;
  c.buffer.reserve(total);
  std::vector<size_t> offsets;
  for (const auto& l : lines) {
    offsets.push_back(c.buffer.size());
    c.buffer += l;
    c.buffer.append(source::kRecordPadding, '\0');
    c.bytes += l.size();
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    c.records.emplace_back(c.buffer.data() + offsets[i], lines[i].size());
  }
  return c;
}

void Run(benchmark::State& state, Decoder& decoder, const Corpus& corpus) {
  Event event;
  size_t i = 0;
  for (auto _ : state) {
    const DecodeStatus st = decoder.Decode(corpus.records[i], event);
    if (!st.ok()) {
      state.SkipWithError(st.message.c_str());
      break;
    }
    benchmark::DoNotOptimize(event.key_hash);
    if (++i == corpus.records.size()) i = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(static_cast<double>(state.iterations()) *
                                               static_cast<double>(corpus.bytes) /
                                               static_cast<double>(corpus.records.size())));
  state.counters["record_bytes"] =
      static_cast<double>(corpus.bytes) / static_cast<double>(corpus.records.size());
}

void BM_DecodeJson(benchmark::State& state) {
  const config::Pipeline p = config::LoadPipelineText(
      std::string("name: bench\ninput:\n  format: jsonl") + kCardFields, "bench.yaml");
  const Corpus corpus = MakeCorpus(JsonLine);
  auto decoder = MakeDecoder(p);
  Run(state, *decoder, corpus);
}
BENCHMARK(BM_DecodeJson);

void BM_DecodeCsv(benchmark::State& state) {
  const config::Pipeline p = config::LoadPipelineText(
      std::string("name: bench\ninput:\n  format: csv\n  csv: {header: true}") + kCardFields,
      "bench.yaml");
  const Corpus corpus = MakeCorpus(CsvLine);
  auto decoder = MakeDecoder(p);
  const std::string header =
      "event_id,ts,card_id,account_id,merchant_id,mcc,amount,currency,country,lat,lon,"
      "device_id,channel,is_fraud,pattern" +
      std::string(source::kRecordPadding, '\0');
  const DecodeStatus st =
      decoder->ReadHeader(std::string_view(header.data(), header.size() - source::kRecordPadding));
  if (!st.ok()) {
    state.SkipWithError(st.message.c_str());
    return;
  }
  Run(state, *decoder, corpus);
}
BENCHMARK(BM_DecodeCsv);

}  // namespace
}  // namespace vigil::decode

BENCHMARK_MAIN();
