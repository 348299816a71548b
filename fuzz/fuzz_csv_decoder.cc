// Feeds arbitrary bytes to the CSV decoder. The input's first line (up to the first '\n') is
// read as the header and the rest as one record (which may hold newlines inside quotes); the
// whole input is also decoded as one record by a header-less, semicolon-delimited decoder.
// Checks decode_invariants.h on every outcome.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "decode_invariants.h"

namespace {

using vigil::fuzz::PaddedRecord;
using vigil::fuzz::Require;

constexpr const char* kFields = R"(
    - {name: id, type: string, column: 0}
    - {name: ts, type: timestamp, column: 1}
    - {name: card, type: string, from: card_number, column: 2}
    - {name: amount, type: float, min: 0, max: 1000000, column: 3}
    - {name: qty, type: int, required: false, min: -5, max: 100, column: 4}
    - {name: online, type: bool, required: false, column: 5}
    - {name: lat, type: lat, required: false, column: 6}
    - {name: lon, type: lon, required: false, column: 7}
    - {name: sent, type: timestamp, format: epoch_ms, required: false, column: 8}
    - {name: note, type: string, required: false, column: 9}
event: {id: id, time: ts, key: card}
)";

vigil::config::Pipeline Load(const char* csv) {
  return vigil::config::LoadPipelineText(
      std::string("name: fuzz-csv\ninput:\n  format: csv\n  max_record_bytes: 4096\n  csv: ") +
          csv + "\n  fields:" + kFields,
      "fuzz.yaml");
}

struct Fixture {
  vigil::config::Pipeline with_header = Load("{header: true}");
  vigil::config::Pipeline no_header = Load("{header: false, delimiter: \";\"}");
  std::unique_ptr<vigil::decode::Decoder> headerless = vigil::decode::MakeDecoder(no_header);
  vigil::Event event;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  {
    const PaddedRecord record(data, size, '\0');
    const vigil::decode::DecodeStatus st = f.headerless->Decode(record.view(), f.event);
    vigil::fuzz::CheckOutcome(f.no_header, st, f.event);
  }
  const auto* newline = static_cast<const uint8_t*>(std::memchr(data, '\n', size));
  const size_t header_size = newline != nullptr ? static_cast<size_t>(newline - data) : size;
  // A fresh decoder per input: the header binds its columns.
  auto decoder = vigil::decode::MakeDecoder(f.with_header);
  Require(decoder->WantsHeader(), "a header-mode decoder must want its header");
  const PaddedRecord header(data, header_size, '\0');
  const vigil::decode::DecodeStatus hs = decoder->ReadHeader(header.view());
  Require(hs.ok() || hs.code == vigil::decode::Errc::kBadHeader, "header error is not kBadHeader");
  Require(hs.ok() != decoder->WantsHeader(), "WantsHeader after ReadHeader");
  if (newline == nullptr) return 0;
  const size_t rest = size - header_size - 1;
  const PaddedRecord record(newline + 1, rest, '\0');
  const vigil::decode::DecodeStatus st = decoder->Decode(record.view(), f.event);
  vigil::fuzz::CheckOutcome(f.with_header, st, f.event);
  if (!hs.ok()) Require(st.code == vigil::decode::Errc::kBadHeader, "decoded after a bad header");
  return 0;
}
