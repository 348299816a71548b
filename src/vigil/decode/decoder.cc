#include "vigil/decode/decoder.h"

#include "vigil/decode/internal/decoders.h"

namespace vigil::decode {

std::unique_ptr<Decoder> MakeDecoder(const config::Pipeline& pipeline) {
  switch (pipeline.input.format) {
    case config::InputFormat::kCsv:
      return decode_internal::MakeCsvDecoder(pipeline);
    case config::InputFormat::kJsonl:
      break;
  }
  return decode_internal::MakeJsonDecoder(pipeline);
}

}  // namespace vigil::decode
