#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/common/event.h"
#include "vigil/config/pipeline.h"
#include "vigil/decide/decision.h"
#include "vigil/decode/decoder.h"
#include "vigil/sink/tokenizer.h"

namespace vigil::sink {

// Serializers for the engine's JSON-lines outputs. Each appends one line (with '\n') to
// `out`; none allocates beyond growing `out`. Field names are part of the product's
// interface (docs/outputs.md): change them only with a migration note.

// How decisions are written: set up once per run, shared read-only by the workers.
struct DecisionFormat {
  bool include_event = true;                   // "event":{...mapped fields...}
  std::span<const std::string> feature_names;  // non-empty: "features":{name: value}
  // Fields written as tokens (pipeline `privacy.tokenize`), by field index; null: none.
  const Tokenizer* tokenizer = nullptr;
  std::vector<bool> tokenized;
};

// Writes decisions as JSON lines:
// {"event_id","key","event_time","outcome","score","reasons":[{"code","detail","score"}],
//  "narrative","shadow","rules_version","record","event":{...},"features":{...}}
// Built once per run (every field and feature name is escaped into its JSON key here, not
// per decision), then shared read-only by the workers.
class DecisionWriter {
 public:
  DecisionWriter() = default;
  DecisionWriter(const config::Pipeline& pipeline, DecisionFormat format);

  // `features` holds the values for format.feature_names (NaN is written as null).
  void Append(std::string& out, const Event& event, const decide::Decision& decision,
              std::span<const double> features = {}) const;

 private:
  bool Tokenized(size_t field) const {
    return format_.tokenizer && field < format_.tokenized.size() && format_.tokenized[field];
  }

  DecisionFormat format_;
  // `"name":` for each input field and feature, with the separating comma before all but
  // the first.
  std::vector<std::string> field_keys_;
  std::vector<std::string> feature_keys_;
};

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
