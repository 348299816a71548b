#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "vigil/common/event.h"
#include "vigil/common/hash.h"
#include "vigil/common/snapshot_file.h"
#include "vigil/config/pipeline.h"
#include "vigil/features/spec.h"

namespace vigil::features {

// FeatureEngine owns the state of the entities routed to one worker and computes features.
// An entity's state is one fixed-size blob in a slab (no allocation per event; a new entity
// may grow the slab), found through a hash index keyed by the 128-bit hash of its key.
// Lifecycle: one per worker, made at start-up. Not thread-safe: only its worker calls it.
//
// Phase 1 (UpdateEntity): for each entity of an event that this worker owns, compute that
// entity's features as of the event and fold the event into its state. Phase 2 (Derive):
// on the worker owning the event, compute ratio/diff features from fields and features.
class FeatureEngine {
 public:
  FeatureEngine(const config::Pipeline& pipeline, const Spec& spec);
  ~FeatureEngine();
  FeatureEngine(const FeatureEngine&) = delete;
  FeatureEngine& operator=(const FeatureEngine&) = delete;

  // Writes entity `entity`'s features into out[feature index] (only those features).
  void UpdateEntity(int entity, const Hash128& key, const Event& event, std::span<double> out);
  // UpdateEntity for a run of updates of one entity type, in order: for each i in `at`, the
  // entity keys[i] on events[i], its features into row i of `rows` (a row holds every
  // feature of the spec). What a worker does with its share of a batch. While it works, it fetches
  // the state of the updates ahead (index entries kIndexAhead on, blobs kStateAhead on), so their
  // cache misses overlap, and an update finds its state where the fetch did, without a
  // second lookup.
  void UpdateEntities(int entity, std::span<const uint32_t> at, const Hash128* keys,
                      const Event* events, std::span<double> rows);
  // The distances, measured (bench/RESULTS.md, "Twelfth pass"): 8 and 4 took ~3% off the
  // card-fraud example's time per event against 2 and 1; 16 and 8 gave part of it back.
  static constexpr size_t kIndexAhead = 8;
  static constexpr size_t kStateAhead = 4;
  // Hints for a caller that updates entities one by one and knows which come next: the state
  // of an entity lives in memory a cache miss or two away (its index entry, then its blob),
  // and these start loading it while the caller updates others. PrefetchIndex(entity, key)
  // a few updates before UpdateEntity(entity, key, ...), PrefetchState a couple before. They
  // change nothing and cost a hash lookup; an unknown key is ignored.
  void PrefetchIndex(int entity, const Hash128& key) const;
  void PrefetchState(int entity, const Hash128& key) const;
  // Writes the derived (ratio / diff) features into `out`; needs every other feature there.
  void Derive(const Event& event, std::span<double> out) const;

  // Forgets entities idle for longer than their entity's ttl, scanning at most `budget`
  // slots per call (a clock hand), so the cost per call is bounded.
  void EvictIdle(int64_t now_us, size_t budget);

  // Maps an entity's key on its way into or out of a snapshot: the key to use, or nullopt to
  // leave the entity out.
  using KeyMap = std::function<std::optional<Hash128>(const Hash128&)>;

  // Checkpoints. Save writes the entities (key and state) and the layout they were saved
  // with: every entity, or (with `map`) those it maps, under the key it gives. Load adds the
  // saved entities `map` keeps, under the key it gives, so a restore may spread saved shards
  // over a different number of workers or move a partition's entities to another tag. Load
  // refuses (std::runtime_error) state saved under a different features spec. Called on the
  // owning worker's thread, off the per-event path.
  void Save(SnapshotWriter& out, const KeyMap& map = {}) const;
  void Load(SnapshotReader& in, const KeyMap& map);
  // Saves into several writers at once, in two passes over the entities whatever their
  // number: `split` gives an entity's writer (an index into `outs`) and the key to save it
  // under, or nullopt to leave it out. Writer i gets byte for byte what Save would write with
  // a map keeping the entities `split` sends to i. A Kafka run snapshots every partition it
  // holds together; one filtered Save per partition scanned every entity once per partition.
  using KeySplit = std::function<std::optional<std::pair<size_t, Hash128>>(const Hash128&)>;
  void SaveSplit(std::span<SnapshotWriter* const> outs, const KeySplit& split) const;
  // Forgets every entity for which drop(key) is true (a partition's state, when the
  // partition is revoked or rebuilt).
  void Drop(const std::function<bool(const Hash128&)>& drop);

  uint64_t EntityCount() const;
  // Bytes of state: slabs, hash indices and sketch overflows.
  uint64_t StateBytes() const;
  // The same for one entity type (its index in the spec's entities). O(1).
  uint64_t EntityCount(int entity) const;
  uint64_t StateBytes(int entity) const;
  // Bytes of one entity's state blob, per entity type (for docs and benchmarks).
  size_t EntityBytes(int entity) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads a numeric field as a double (NaN if null or not numeric).
double NumericValue(const Event& event, int field);

}  // namespace vigil::features
