#pragma once

#include <string>

#include "vigil/config/pipeline.h"

namespace vigil::engine {

// The engine tests' pipeline: id, ts, card, amount; keyed by card; 1 minute of lateness;
// `extra` YAML appended (entities, features, ...).
inline config::Pipeline TestPipeline(const std::string& extra = "") {
  return config::LoadPipelineText(R"(name: t
input:
  fields:
    - {name: id, type: string}
    - {name: ts, type: timestamp}
    - {name: card, type: string}
    - {name: amount, type: float}
event: {id: id, time: ts, key: card}
lateness: {allowed: 1m}
)" + extra,
                                  "t.yaml");
}

}  // namespace vigil::engine
