// Feeds arbitrary bytes to the JSON-lines decoder as one record. Checks decode_invariants.h on
// every outcome, and that the verdict does not depend on what lies in the padding after the
// record (a file source's read-ahead holds the next record's bytes there).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "decode_invariants.h"

namespace {

using vigil::fuzz::PaddedRecord;
using vigil::fuzz::Require;

// Every field type, nested paths, bounds, two fields from one key, epoch formats.
constexpr const char* kPipeline = R"(name: fuzz-json
input:
  format: jsonl
  max_record_bytes: 4096
  fields:
    - {name: id, type: string, from: event_id}
    - {name: ts, type: timestamp}
    - {name: card, type: string, from: card.number}
    - {name: amount, type: float, min: 0, max: 1000000}
    - {name: qty, type: int, required: false, min: -5, max: 100}
    - {name: online, type: bool, required: false}
    - {name: lat, type: lat, required: false, from: geo.lat}
    - {name: lon, type: lon, required: false, from: geo.lon}
    - {name: sent_ms, type: timestamp, format: epoch_ms, required: false, from: sent}
    - {name: sent_raw, type: string, required: false, from: sent}
    - {name: sent_s, type: timestamp, format: epoch_s, required: false}
    - {name: sent_ns, type: timestamp, format: epoch_ns, required: false}
    - {name: note, type: string, required: false}
    - {name: deep, type: int, required: false, from: a.b.c}
    - {name: level, type: float, required: false, from: a.b}
event: {id: id, time: ts, key: card}
)";

struct Fixture {
  vigil::config::Pipeline pipeline = vigil::config::LoadPipelineText(kPipeline, "fuzz.yaml");
  std::unique_ptr<vigil::decode::Decoder> decoder = vigil::decode::MakeDecoder(pipeline);
  vigil::Event event;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  const PaddedRecord zeros(data, size, '\0');
  const vigil::decode::DecodeStatus st = f.decoder->Decode(zeros.view(), f.event);
  vigil::fuzz::CheckOutcome(f.pipeline, st, f.event);
  for (const char fill : {'}', ']', ',', '"', '{'}) {
    const PaddedRecord other(data, size, fill);
    const vigil::decode::DecodeStatus again = f.decoder->Decode(other.view(), f.event);
    vigil::fuzz::CheckOutcome(f.pipeline, again, f.event);
    Require(again.code == st.code, "verdict depends on the padding:", again.message);
  }
  return 0;
}
