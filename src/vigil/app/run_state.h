#pragma once

#include <optional>
#include <string>

#include "vigil/engine/engine.h"

namespace vigil::app {

// RunState is what `vigil run --out DIR` keeps in DIR/run-state.json: the input and the
// exact length (bytes and lines) of each output at the last commit point. A run killed at any
// moment resumes from it: outputs are cut back to those lengths, and the input is run again
// from its start with the first lines of each output not written again (outputs are
// deterministic), so no decision is lost or written twice.
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
