#pragma once

#include <optional>
#include <string>

#include "vigil/engine/engine.h"

namespace vigil::app {

// RunState is what `vigil run --out DIR` keeps in DIR/run-state.json: the input, the source
// position, the exact length of each output and the counters at the last commit point.
// A run killed at any moment resumes from it: outputs are cut back to those lengths and
// the input is read again from that position, so no decision is lost or written twice.
struct RunState {
  std::string pipeline;
  std::string input;
  engine::CommitPoint commit;
  bool completed = false;
};

// Writes the state atomically (temporary file + rename): a crash leaves the old or the new.
void SaveRunState(const std::string& path, const RunState& state);
// Reads it back; nullopt if the file does not exist. Throws std::runtime_error if it exists
// but cannot be parsed.
std::optional<RunState> LoadRunState(const std::string& path);

}  // namespace vigil::app
