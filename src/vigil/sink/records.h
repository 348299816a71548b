#pragma once

#include <span>
#include <string>
#include <string_view>

#include "vigil/common/event.h"
#include "vigil/config/pipeline.h"
#include "vigil/decide/decision.h"
#include "vigil/decode/decoder.h"

namespace vigil::sink {

// Serializers for the engine's JSON-lines outputs. Each appends one line (with '\n') to
// `out`; none allocates beyond growing `out`. Field names are part of the product's
// interface (docs/outputs.md): change them only with a migration note.

// {"event_id","key","event_time","outcome","score","reasons":[{"code","detail"}],
//  "record", "event":{...mapped fields...}}
// With `feature_names`, also "features":{name: value} (NaN as null).
void AppendDecision(std::string& out, const config::Pipeline& pipeline, const Event& event,
                    const decide::Decision& decision, bool include_event,
                    std::span<const std::string> feature_names = {},
                    std::span<const double> features = {});

// Where a rejected record came from.
struct Position {
  std::string_view source;  // input name
  uint64_t line = 0;
  uint64_t offset = 0;
};

// {"source","line","offset","reason","field","message","raw"}
void AppendDeadLetter(std::string& out, const Position& at, decode::Errc reason,
                      std::string_view field, std::string_view message, std::string_view raw);

// {"source","line","offset","event_id","event_time","watermark","reason":"late","raw"}
void AppendLate(std::string& out, const Position& at, const Event& event, int64_t watermark_us,
                std::string_view raw);

}  // namespace vigil::sink
