#pragma once

#include <cstdint>
#include <deque>
#include <string_view>

#include <absl/container/flat_hash_set.h>

#include "vigil/common/hash.h"
#include "vigil/common/snapshot_file.h"

namespace vigil::engine {

// Deduplicator remembers the ids of accepted events for a horizon of event time and at most
// `max_ids` of them, and answers whether an id was seen. Ids are kept as 128-bit hashes
// (xxHash3), so memory is ~40 bytes per id whatever the id's length, and a false "duplicate"
// is ~1e-20 likely for a billion ids in the horizon. Ids leave in the order they came.
// Used by the engine's router thread only; not thread-safe.
class Deduplicator {
 public:
  Deduplicator(int64_t horizon_us, size_t max_ids) : horizon_us_(horizon_us), max_ids_(max_ids) {}

  // Callers hash an id once (HashId) and pass the hash to both calls.
  bool Seen(const Hash128& id) const { return ids_.contains(id); }
  bool Seen(std::string_view id) const { return Seen(HashId(id)); }

  // Records an accepted event's id at its event time, then forgets ids that fell out of
  // the horizon (older than the newest time seen minus the horizon) or over max_ids.
  void Insert(std::string_view id, int64_t time_us) { Insert(HashId(id), time_us); }
  void Insert(const Hash128& h, int64_t time_us) {
    if (!ids_.insert(h).second) return;
    order_.push_back({time_us, h});
    if (time_us > newest_us_) newest_us_ = time_us;
    while (!order_.empty() &&
           (order_.size() > max_ids_ || order_.front().time_us < newest_us_ - horizon_us_)) {
      ids_.erase(order_.front().id);
      order_.pop_front();
    }
  }

  size_t Size() const { return ids_.size(); }

  // Checkpoints: the ids in arrival order with their times.
  void Save(SnapshotWriter& out) const {
    out.Put(newest_us_);
    out.Put<uint64_t>(order_.size());
    for (const Entry& e : order_) out.Put(e);
  }
  void Load(SnapshotReader& in) {
    ids_.clear();
    order_.clear();
    newest_us_ = in.Get<int64_t>();
    const auto n = in.Get<uint64_t>();
    for (uint64_t i = 0; i < n; ++i) {
      const auto e = in.Get<Entry>();
      order_.push_back(e);
      ids_.insert(e.id);
    }
  }

 private:
  struct Entry {
    int64_t time_us;
    Hash128 id;
  };
  int64_t horizon_us_;
  size_t max_ids_;
  int64_t newest_us_ = INT64_MIN;
  absl::flat_hash_set<Hash128> ids_;
  std::deque<Entry> order_;
};

}  // namespace vigil::engine
