#pragma once

#include <memory>

#include "vigil/config/pipeline.h"
#include "vigil/decode/decoder.h"

namespace vigil::decode_internal {

// The two concrete decoders; MakeDecoder picks one by input.format.
std::unique_ptr<decode::Decoder> MakeJsonDecoder(const config::Pipeline& pipeline);
std::unique_ptr<decode::Decoder> MakeCsvDecoder(const config::Pipeline& pipeline);

}  // namespace vigil::decode_internal
