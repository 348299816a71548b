#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "vigil/common/event.h"
#include "vigil/config/pipeline.h"
#include "vigil/decode/errc.h"

namespace vigil::decode {

// The outcome of decoding one record. On failure `field` names the offending input field
// (empty when the whole record is bad) and `message` says what was expected, e.g.
// "field 'amount': expected float, got \"12,50\"". Failures are values, never exceptions.
struct [[nodiscard]] DecodeStatus {
  Errc code = Errc::kOk;
  std::string field;
  std::string message;
  bool ok() const { return code == Errc::kOk; }
};

// Decoder turns raw records into validated Events following the pipeline's input mapping:
// it picks the mapped fields, converts and checks their types, bounds and timestamps, and
// fills Event::time_us, key_hash, id_index and key_index. It never throws on input.
// One instance per thread (it keeps parser buffers); not thread-safe.
class Decoder {
 public:
  virtual ~Decoder() = default;

  // True when the next record must be passed to ReadHeader (CSV with header: true).
  virtual bool WantsHeader() const { return false; }
  // Reads a CSV header and binds mapped fields to columns. A mapped, required column that is
  // missing from the header is a kBadHeader error (the run cannot go on: nothing would decode).
  virtual DecodeStatus ReadHeader(std::string_view record) {
    (void)record;
    return {};
  }

  // Decodes one record into `event` (reset first). `record` must have kRecordPadding readable
  // bytes after its end (source::Record guarantees it).
  virtual DecodeStatus Decode(std::string_view record, Event& event) = 0;
};

// Makes the decoder for the pipeline's input format. The pipeline must outlive it.
std::unique_ptr<Decoder> MakeDecoder(const config::Pipeline& pipeline);

}  // namespace vigil::decode
