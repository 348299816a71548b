#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "vigil/sink/summary.h"

namespace vigil::engine {

// Manifest describes one checkpoint: what job it belongs to, where the source had got to,
// how long each output was, and the counters. The binary state files (router.bin,
// shard-N.bin) sit beside it in the checkpoint's own directory.
struct Manifest {
  uint64_t seq = 0;           // checkpoints of one job are numbered 1, 2, ...
  std::string pipeline;       // path, for messages
  std::string pipeline_hash;  // of the pipeline file's text: a changed pipeline is refused
  std::string input;          // the input path
  bool completed = false;     // the run read its whole input: nothing to resume
  uint64_t offset = 0;        // source byte offset to continue from
  uint64_t line = 1;          // and its 1-based line number
  uint64_t decisions_bytes = 0;
  uint64_t dead_letters_bytes = 0;
  uint64_t late_bytes = 0;
  uint64_t decisions_lines = 0;
  uint64_t dead_letters_lines = 0;
  uint64_t late_lines = 0;
  int shards = 0;  // shard-N.bin files (the workers of the run that wrote it)
  sink::RunSummary summary;
};

// CheckpointStore is a checkpoint directory:
//   DIR/ckpt-000012/router.bin, shard-0.bin, ...   one checkpoint's state files
//   DIR/latest.json                                 the manifest of the newest complete one
// A checkpoint is written into its own directory first (each file fsynced); replacing
// latest.json atomically is its commit. So a crash at any moment leaves latest.json naming a
// whole checkpoint, or none. Older checkpoint directories are removed after the commit, all
// but the one before the newest. Used by the engine's writer thread (Commit) and at start-up
// (Latest); not thread-safe.
class CheckpointStore {
 public:
  explicit CheckpointStore(std::string dir);

  // The newest committed checkpoint, or nullopt if there is none. Throws std::runtime_error
  // when latest.json exists but cannot be read.
  std::optional<Manifest> Latest() const;
  // Directory for checkpoint `seq`'s state files, created empty.
  std::string Begin(uint64_t seq) const;
  // Directory of a committed checkpoint.
  std::string PathOf(uint64_t seq) const;
  // Makes checkpoint m.seq (its files already written) the latest, and prunes old ones.
  void Commit(const Manifest& m) const;
  // Forgets every checkpoint (a fresh run into the same directory).
  void Clear() const;
  const std::string& Dir() const { return dir_; }

 private:
  std::string dir_;
};

// Serializes a manifest as the JSON of latest.json, and reads it back (throws
// std::runtime_error naming `path` on a malformed one).
std::string ManifestJson(const Manifest& m);
Manifest ParseManifest(const std::string& json, const std::string& path);

}  // namespace vigil::engine
