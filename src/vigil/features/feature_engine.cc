#include "vigil/features/feature_engine.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>

#include "vigil/features/internal/distinct.h"
#include "vigil/features/internal/ew_stats.h"
#include "vigil/features/internal/geo.h"
#include "vigil/features/internal/recent_set.h"
#include "vigil/features/internal/region.h"
#include "vigil/features/internal/robust.h"
#include "vigil/features/internal/window.h"

namespace vigil::features {

namespace fi = ::vigil::features_internal;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

size_t Align8(size_t n) { return (n + 7) & ~size_t{7}; }

bool Matches(const Event& e, const Where& w) {
  const Value& v = e.values[static_cast<size_t>(w.field)];
  if (v.kind == Value::Kind::kNull) return false;
  if (!w.numeric) {
    if (v.kind != Value::Kind::kString) return false;
    const bool eq = e.Str(v) == w.text;
    return w.cmp == Where::Cmp::kEq ? eq : !eq;
  }
  const double x = v.kind == Value::Kind::kBool ? (v.b ? 1.0 : 0.0) : NumericValue(e, w.field);
  switch (w.cmp) {
    case Where::Cmp::kEq:
      return x == w.number;
    case Where::Cmp::kNe:
      return x != w.number;
    case Where::Cmp::kLt:
      return x < w.number;
    case Where::Cmp::kLe:
      return x <= w.number;
    case Where::Cmp::kGt:
      return x > w.number;
    case Where::Cmp::kGe:
      return x >= w.number;
  }
  return false;
}

uint64_t ValueHash(const Event& e, int field) {
  const Value& v = e.values[static_cast<size_t>(field)];
  switch (v.kind) {
    case Value::Kind::kString:
      return Hash64(e.Str(v));
    case Value::Kind::kNull:
      return 0;
    default:
      return Hash64(std::string_view(reinterpret_cast<const char*>(&v.i), sizeof v.i));
  }
}

// Whether a field always has a value on a decoded event: a required field is present on every
// event the decoder lets through (it dead-letters the others), and a numeric one is finite.
bool AlwaysNumeric(const config::Pipeline& p, int field) {
  const config::FieldSpec& f = p.input.fields[static_cast<size_t>(field)];
  return f.required &&
         (f.type == FieldType::kInt || f.type == FieldType::kFloat || f.type == FieldType::kLat ||
          f.type == FieldType::kLon || f.type == FieldType::kBool);
}
bool AlwaysPresent(const config::Pipeline& p, int field) {
  return p.input.fields[static_cast<size_t>(field)].required;
}

bool SameWhere(const Where* a, const Where* b) {
  if (!a || !b) return a == b;
  return a->field == b->field && a->cmp == b->cmp && a->number == b->number && a->text == b->text &&
         a->numeric == b->numeric;
}

// Where each part of an entity's state blob lives, and which features read it.
//
// Windows share their bookkeeping. A gate is a set of events some windows count: those
// matching `where` and, for a field that may be missing, having a value. Its cursor is the
// newest time of an event that passed it: the entity's newest event time (kLastSeen) for the
// gate of all events, else an int64 of its own in the blob. A window's newest bucket is
// floor(cursor / step), exactly what a ring keeping its own cursor would hold, so windows with
// the same gate keep one cursor between them whatever their steps. Per event, the bucket of the
// event's time is computed once per step, and the cursor's bucket once per (gate, step): a
// clock. Rings counting the same events over the same buckets are one ring (a count and a sum
// of an always-present field share their counts).
struct Layout {
  struct Gate {
    const Where* where;
    int field;      // -1: none; else the event needs a value for it
    bool numeric;   // field must have a numeric value (windows over a field) vs any value
    size_t offset;  // int64 cursor in the blob; 0: kLastSeen (the gate of all events)
  };
  struct Step {
    int64_t step_us;
    fi::Divider div;
  };
  struct Clock {  // a gate's cursor in buckets of one step
    int gate;
    int step;
  };
  // Each part names the features its readings go to (-1: none), so an update writes them as
  // it goes, without a pass over the features. A second feature reading a part the same way
  // (the same window declared twice) is a copy of the first's value: see `copies`.
  struct RingOut {
    int count = -1, sum = -1, avg = -1, min = -1, max = -1, stddev = -1;
  };
  struct Ring {
    fi::RingLayout layout;
    int of;  // -1: count only
    int clock;
    fi::Divider slots;  // by layout.buckets
    size_t offset;
    fi::RingAddReadNewestFn add_read;  // for the layout's aggregates, set once they are known
    RingOut out;
  };
  struct Distinct {
    fi::DistinctLayout layout;
    int of;
    int clock;
    int hash;  // index into hashed
    size_t offset;
    int feature;
  };
  struct Ew {
    int of;
    int64_t half_life_us;
    size_t offset;
    int ewma = -1, zscore = -1;
  };
  struct Last {  // value of a field on the previous event
    int of;
    size_t offset;
    int feature = -1;
  };
  struct Geo {  // lat/lon of the previous event
    int lat, lon;
    size_t offset;
    int distance = -1, speed = -1;
  };
  struct Recent {
    int of;
    int capacity;
    int hash;  // index into hashed
    size_t offset;
    int feature;
  };
  struct AnomalyInput {  // the last values of one input of an anomaly score
    int field, feature;  // an input field, or a feature of this entity computed before it
    int capacity;
    size_t offset;
  };
  struct Anomaly {
    int min_history;
    int first, count;  // its inputs: anomaly_inputs[first, first + count)
    int feature;
  };
  struct Copy {
    int to, from;
  };
  static constexpr size_t kLastTime = 0;  // int64: time of the previous event
  static constexpr size_t kLastSeen = 8;  // int64: newest event time (for TTL)
  std::vector<Gate> gates;
  std::vector<Step> steps;
  std::vector<Clock> clocks;
  std::vector<Ring> rings;
  std::vector<Distinct> distincts;
  std::vector<Ew> ews;
  std::vector<Last> lasts;
  std::vector<Geo> geos;
  std::vector<Recent> recents;
  std::vector<Anomaly> anomalies;
  std::vector<AnomalyInput> anomaly_inputs;
  std::vector<int> hashed;  // fields whose value hashes distinct counts and recent sets use
  int since = -1;           // the time_since_last feature (another one is a copy of it)
  std::vector<Copy> copies;
  size_t bytes = 16;

  size_t Take(size_t n) {
    const size_t at = bytes;
    bytes += Align8(n);
    return at;
  }

  template <typename T, typename Eq>
  static int FindOrAdd(std::vector<T>& v, const T& x, Eq eq) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (eq(v[i], x)) return static_cast<int>(i);
    }
    v.push_back(x);
    return static_cast<int>(v.size() - 1);
  }
  int GateOf(const Where* where, int field, bool numeric) {
    return FindOrAdd(gates, Gate{where, field, numeric, 0}, [](const Gate& a, const Gate& b) {
      return SameWhere(a.where, b.where) && a.field == b.field && a.numeric == b.numeric;
    });
  }
  int ClockOf(int gate, int64_t step_us) {
    const int step = FindOrAdd(steps, Step{step_us, fi::Divider(step_us)},
                               [](const Step& a, const Step& b) { return a.step_us == b.step_us; });
    return FindOrAdd(clocks, Clock{gate, step}, [](const Clock& a, const Clock& b) {
      return a.gate == b.gate && a.step == b.step;
    });
  }
  int HashOf(int field) {
    return FindOrAdd(hashed, field, [](int a, int b) { return a == b; });
  }
};

Layout MakeLayout(const config::Pipeline& pipeline, const Spec& spec, int entity) {
  Layout l;
  for (size_t fidx = 0; fidx < spec.features.size(); ++fidx) {
    const FeatureSpec& f = spec.features[fidx];
    if (f.entity != entity) continue;
    const Where* where = f.where ? &*f.where : nullptr;
    const int feature = static_cast<int>(fidx);
    // Sends a reading to this feature; a reading already sent to an earlier one is copied.
    auto send = [&](int& to) {
      if (to < 0) {
        to = feature;
      } else {
        l.copies.push_back({feature, to});
      }
    };
    int part = -1;
    switch (f.op) {
      case Op::kCount:
      case Op::kSum:
      case Op::kAvg:
      case Op::kMin:
      case Op::kMax:
      case Op::kStddev: {
        const int of = f.op == Op::kCount ? -1 : f.of;
        const bool gated = of >= 0 && !AlwaysNumeric(pipeline, of);
        const int clock = l.ClockOf(l.GateOf(where, gated ? of : -1, true), f.step_us);
        const uint16_t buckets = static_cast<uint16_t>((f.window_us + f.step_us - 1) / f.step_us);
        // Features over the same buckets and events share one ring: the same field, or a
        // count beside any field (the gate guarantees the field's value on every event).
        for (size_t i = 0; i < l.rings.size(); ++i) {
          const auto& r = l.rings[i];
          if (r.layout.buckets == buckets && r.clock == clock &&
              (r.of == of || r.of < 0 || of < 0)) {
            part = static_cast<int>(i);
            break;
          }
        }
        if (part < 0) {
          part = static_cast<int>(l.rings.size());
          fi::RingLayout rl;
          rl.buckets = buckets;
          rl.step_us = f.step_us;
          rl.own_cursor = false;
          l.rings.push_back({rl, of, clock, fi::Divider(buckets), 0, nullptr, {}});
        }
        auto& ring = l.rings[static_cast<size_t>(part)];
        if (ring.of < 0) ring.of = of;
        ring.layout.sum =
            ring.layout.sum || f.op == Op::kSum || f.op == Op::kAvg || f.op == Op::kStddev;
        ring.layout.sumsq = ring.layout.sumsq || f.op == Op::kStddev;
        ring.layout.min = ring.layout.min || f.op == Op::kMin;
        ring.layout.max = ring.layout.max || f.op == Op::kMax;
        send(f.op == Op::kCount ? ring.out.count
             : f.op == Op::kSum ? ring.out.sum
             : f.op == Op::kAvg ? ring.out.avg
             : f.op == Op::kMin ? ring.out.min
             : f.op == Op::kMax ? ring.out.max
                                : ring.out.stddev);
        break;
      }
      case Op::kDistinct: {
        const bool gated = !AlwaysPresent(pipeline, f.of);
        const int clock = l.ClockOf(l.GateOf(where, gated ? f.of : -1, false), f.step_us);
        const uint16_t buckets = static_cast<uint16_t>((f.window_us + f.step_us - 1) / f.step_us);
        l.distincts.push_back({fi::DistinctLayout{buckets, f.step_us, false}, f.of, clock,
                               l.HashOf(f.of), 0, feature});
        break;
      }
      case Op::kEwma:
      case Op::kZscore:
        for (size_t i = 0; i < l.ews.size(); ++i) {
          if (l.ews[i].of == f.of && l.ews[i].half_life_us == f.half_life_us) {
            part = static_cast<int>(i);
          }
        }
        if (part < 0) {
          part = static_cast<int>(l.ews.size());
          l.ews.push_back({f.of, f.half_life_us, 0});
        }
        send(f.op == Op::kEwma ? l.ews[static_cast<size_t>(part)].ewma
                               : l.ews[static_cast<size_t>(part)].zscore);
        break;
      case Op::kLast:
        for (size_t i = 0; i < l.lasts.size(); ++i) {
          if (l.lasts[i].of == f.of) part = static_cast<int>(i);
        }
        if (part < 0) {
          part = static_cast<int>(l.lasts.size());
          l.lasts.push_back({f.of, 0});
        }
        send(l.lasts[static_cast<size_t>(part)].feature);
        break;
      case Op::kGeoDistance:
      case Op::kGeoSpeed:
        for (size_t i = 0; i < l.geos.size(); ++i) {
          if (l.geos[i].lat == f.lat && l.geos[i].lon == f.lon) part = static_cast<int>(i);
        }
        if (part < 0) {
          part = static_cast<int>(l.geos.size());
          l.geos.push_back({f.lat, f.lon, 0});
        }
        send(f.op == Op::kGeoDistance ? l.geos[static_cast<size_t>(part)].distance
                                      : l.geos[static_cast<size_t>(part)].speed);
        break;
      case Op::kIsNew:
        l.recents.push_back({f.of, f.capacity, l.HashOf(f.of), 0, feature});
        break;
      case Op::kAnomaly:
        l.anomalies.push_back({f.min_history, static_cast<int>(l.anomaly_inputs.size()),
                               static_cast<int>(f.inputs.size()), feature});
        for (const auto& in : f.inputs) {
          l.anomaly_inputs.push_back({in.field, in.feature, f.capacity, 0});
        }
        break;
      case Op::kTimeSinceLast:
        send(l.since);
        break;
      case Op::kRatio:
      case Op::kDiff:
        break;
    }
  }
  for (auto& g : l.gates) {
    if (g.where != nullptr || g.field >= 0) g.offset = l.Take(sizeof(int64_t));
  }
  for (auto& r : l.rings) {
    r.offset = l.Take(fi::RingBytes(r.layout));
    r.add_read = fi::RingAddReadNewestFor(r.layout);
  }
  for (auto& d : l.distincts) d.offset = l.Take(fi::DistinctBytes(d.layout));
  for (auto& e : l.ews) e.offset = l.Take(sizeof(fi::EwStats));
  for (auto& x : l.lasts) x.offset = l.Take(sizeof(double));
  for (auto& g : l.geos) g.offset = l.Take(2 * sizeof(double));
  for (auto& r : l.recents) r.offset = l.Take(fi::RecentBytes(r.capacity));
  for (auto& a : l.anomaly_inputs) a.offset = l.Take(fi::RobustBytes(a.capacity));
  return l;
}

int64_t LoadI64(const std::byte* p) {
  int64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
void StoreI64(std::byte* p, int64_t v) { std::memcpy(p, &v, sizeof v); }
double LoadF64(const std::byte* p) {
  double v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
void StoreF64(std::byte* p, double v) { std::memcpy(p, &v, sizeof v); }

// All entities of one type owned by one worker.
class EntityTable {
 public:
  EntityTable(Layout layout, int64_t ttl_us)
      : layout_(std::move(layout)), ttl_us_(ttl_us), keys_(sizeof(Hash128)), slab_(layout_.bytes) {}
  ~EntityTable() {
    for (auto& [key, slot] : index_) Destroy(Blob(slot));
  }
  EntityTable(const EntityTable&) = delete;
  EntityTable& operator=(const EntityTable&) = delete;

  // Adds a value to a distinct sketch, keeping the count of overflow bytes current (a sketch's
  // block is allocated at its first overflow and grows while sparse).
  void AddDistinct(const Layout::Distinct& d, std::byte* blob, int64_t k, int64_t newest,
                   uint64_t hash) {
    heap_ += static_cast<uint64_t>(fi::DistinctAddAt(d.layout, blob + d.offset, k, newest, hash));
  }

  // The entity's state, created empty if it is new or was idle longer than the ttl at time
  // `now_us` (so expiry is exact whenever the background scan gets to it). `found`: what
  // PrefetchState returned for this key since the last entity was dropped, or 0.
  std::byte* FindOrCreate(const Hash128& key, int64_t now_us, uint32_t found = 0) {
    std::byte* blob;
    if (found != 0) {
      assert(KeyOf(found - 1) == key && "a found slot given with another key");
      blob = Blob(found - 1);
    } else {
      auto [it, inserted] = index_.try_emplace(key, 0);
      if (inserted) {
        it->second = NewSlot(key);
        Init(Blob(it->second));
        return Blob(it->second);
      }
      blob = Blob(it->second);
    }
    const int64_t seen = LoadI64(blob + Layout::kLastSeen);
    if (ttl_us_ > 0 && seen != INT64_MIN && seen < now_us - ttl_us_) {
      Destroy(blob);
      Init(blob);
    }
    return blob;
  }

  // Hints that the entity is about to be updated: PrefetchIndex starts loading its index
  // entry, PrefetchState (once the entry is likely cached) every line of its blob. Neither
  // changes anything; an unknown key is left alone. PrefetchState returns the key's slot + 1
  // (0: not found) for FindOrCreate: a slot stays the key's until its entity is dropped.
  void PrefetchIndex(const Hash128& key) const { index_.prefetch(key); }
  uint32_t PrefetchState(const Hash128& key) const {
    const auto it = index_.find(key);
    if (it == index_.end()) return 0;
    const std::byte* blob = Blob(it->second);
    for (size_t at = 0; at < layout_.bytes; at += 64) __builtin_prefetch(blob + at);
    __builtin_prefetch(blob + layout_.bytes - 1);
    return it->second + 1;
  }

  void EvictIdle(int64_t now_us, size_t budget) {
    if (ttl_us_ <= 0 || keys_.size() == 0) return;
    for (size_t n = 0; n < budget && n < keys_.size(); ++n) {
      hand_ = (hand_ + 1) % keys_.size();
      const auto slot = static_cast<uint32_t>(hand_);
      if (!Live(slot)) continue;
      std::byte* blob = Blob(slot);
      if (LoadI64(blob + Layout::kLastSeen) < now_us - ttl_us_) {
        Destroy(blob);
        index_.erase(KeyOf(slot));
        FreeSlot(slot);
      }
    }
  }

  // Each entity: key, state blob, then each distinct part's register block (u64 size, bytes).
  // Every entity under its own key (a checkpoint): one pass. A chosen few: SaveSplit.
  void SaveAll(SnapshotWriter& out) const {
    out.Put<uint64_t>(index_.size());
    ForEachLive([&](uint32_t slot) { SaveEntity(out, KeyOf(slot), Blob(slot)); });
  }

  void SaveEntity(SnapshotWriter& out, const Hash128& key, const std::byte* blob) const {
    out.Put(key);
    out.Bytes(blob, layout_.bytes);
    for (const auto& d : layout_.distincts) {
      const size_t n = fi::DistinctHeapBytes(d.layout, blob + d.offset);
      out.Put<uint64_t>(n);
      if (n > 0) out.Bytes(fi::DistinctHeap(blob + d.offset), n);
    }
  }

  // A split save's first pass: how many entities go to each of `writers` writers.
  std::vector<uint64_t> CountSplit(size_t writers, const FeatureEngine::KeySplit& split) const {
    std::vector<uint64_t> n(writers, 0);
    ForEachLive([&](uint32_t slot) {
      if (const auto to = split(KeyOf(slot))) {
        if (to->first >= writers) throw std::out_of_range("SaveSplit: no such writer");
        ++n[to->first];
      }
    });
    return n;
  }

  // About the bytes SaveSplit writes for n of this table's entities: exact but for the
  // sketches' register blocks, estimated at twice the n entities' share of all of them (a
  // reservation, not a limit: more only costs the buffer a regrowth).
  uint64_t SplitBytes(uint64_t n) const {
    const uint64_t fixed = sizeof(Hash128) + layout_.bytes + 8 * layout_.distincts.size();
    const uint64_t all = std::max<uint64_t>(1, index_.size());
    const double share =
        2.0 * static_cast<double>(heap_) * static_cast<double>(n) / static_cast<double>(all);
    return sizeof(uint64_t) + n * fixed + std::min(heap_, static_cast<uint64_t>(share));
  }

  // The second pass, given the first's counts.
  void SaveSplit(std::span<SnapshotWriter* const> outs, const FeatureEngine::KeySplit& split,
                 const std::vector<uint64_t>& n) const {
    for (size_t i = 0; i < outs.size(); ++i) outs[i]->Put<uint64_t>(n[i]);
    ForEachLive([&](uint32_t slot) {
      if (const auto to = split(KeyOf(slot))) SaveEntity(*outs[to->first], to->second, Blob(slot));
    });
  }

  void Load(SnapshotReader& in, const FeatureEngine::KeyMap& map) {
    const auto n = in.Get<uint64_t>();
    if (n > (in.Remaining() / layout_.bytes)) in.Fail("truncated feature state");
    // The index is small per entity: room for all at once saves its rehashes. The slab is
    // not reserved: with several workers each keeps only its share of the n entities.
    index_.reserve(index_.size() + n);
    std::vector<std::span<const std::byte>> heaps(layout_.distincts.size());
    for (uint64_t i = 0; i < n; ++i) {
      const std::optional<Hash128> key = map(in.Get<Hash128>());
      const auto saved = in.Take(layout_.bytes);
      for (auto& h : heaps) h = in.Take(in.Get<uint64_t>());
      if (!key) continue;
      auto [it, inserted] = index_.try_emplace(*key, 0);
      if (!inserted) in.Fail("an entity appears twice in the checkpoint");
      it->second = NewSlot(*key);
      std::byte* blob = Blob(it->second);
      std::memcpy(blob, saved.data(), layout_.bytes);
      bool fits = true;
      for (size_t d = 0; d < heaps.size(); ++d) {
        const auto& part = layout_.distincts[d];
        fits = fi::DistinctRestoreHeap(part.layout, blob + part.offset, heaps[d]) && fits;
        heap_ += fi::DistinctHeapBytes(part.layout, blob + part.offset);
      }
      if (!fits) in.Fail("a distinct-count sketch does not fit the features spec");
    }
  }

  void Drop(const std::function<bool(const Hash128&)>& drop) {
    for (auto it = index_.begin(); it != index_.end();) {
      if (!drop(it->first)) {
        ++it;
        continue;
      }
      Destroy(Blob(it->second));
      FreeSlot(it->second);
      index_.erase(it++);
    }
  }

  const Layout& layout() const { return layout_; }
  uint64_t Count() const { return index_.size(); }
  // O(1): called once per batch. The index costs a slot and a control byte per bucket.
  uint64_t Bytes() const {
    using Slot = decltype(index_)::value_type;
    return slab_.ResidentBytes() + keys_.ResidentBytes() + index_.capacity() * (sizeof(Slot) + 1) +
           live_.capacity() * sizeof(uint64_t) + heap_;
  }

 private:
  // A slot for a new entity's blob (contents undefined): a freed one, or a new one at the end.
  uint32_t NewSlot(const Hash128& key) {
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = keys_.Add();
      slab_.Add();
    }
    std::memcpy(keys_.At(slot), &key, sizeof key);
    if (live_.size() <= slot / 64) live_.resize(slot / 64 + 1, 0);
    live_[slot / 64] |= uint64_t{1} << (slot % 64);
    return slot;
  }
  bool Live(uint32_t slot) const { return (live_[slot / 64] >> (slot % 64)) & 1; }
  void FreeSlot(uint32_t slot) {
    free_.push_back(slot);
    live_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
  }
  // Calls f(slot) for each slot holding an entity, in slot order: the order of the blobs in
  // memory, so a pass over many entities reads the slab front to back (the index's order is
  // random in it).
  template <typename F>
  void ForEachLive(F&& f) const {
    for (size_t w = 0; w < live_.size(); ++w) {
      for (uint64_t bits = live_[w]; bits != 0; bits &= bits - 1) {
        f(static_cast<uint32_t>(w * 64 + static_cast<size_t>(std::countr_zero(bits))));
      }
    }
  }

  std::byte* Blob(uint32_t slot) { return slab_.At(slot); }
  const std::byte* Blob(uint32_t slot) const { return slab_.At(slot); }
  Hash128 KeyOf(uint32_t slot) const {
    Hash128 key;
    std::memcpy(&key, keys_.At(slot), sizeof key);
    return key;
  }

  void Init(std::byte* b) {
    std::memset(b, 0, layout_.bytes);
    StoreI64(b + Layout::kLastTime, INT64_MIN);
    StoreI64(b + Layout::kLastSeen, INT64_MIN);
    for (const auto& g : layout_.gates) {
      if (g.offset != 0) StoreI64(b + g.offset, INT64_MIN);
    }
    for (const auto& r : layout_.rings) fi::RingInit(r.layout, b + r.offset);
    for (const auto& d : layout_.distincts) fi::DistinctInit(d.layout, b + d.offset);
    for (const auto& e : layout_.ews) {
      const fi::EwStats s{};
      std::memcpy(b + e.offset, &s, sizeof s);
    }
    for (const auto& x : layout_.lasts) StoreF64(b + x.offset, kNaN);
    for (const auto& g : layout_.geos) {
      StoreF64(b + g.offset, kNaN);
      StoreF64(b + g.offset + 8, kNaN);
    }
    for (const auto& r : layout_.recents) fi::RecentInit(r.capacity, b + r.offset);
    for (const auto& a : layout_.anomaly_inputs) fi::RobustInit(b + a.offset);
  }
  void Destroy(std::byte* b) {
    for (const auto& d : layout_.distincts) {
      heap_ -= fi::DistinctHeapBytes(d.layout, b + d.offset);
      fi::DistinctDestroy(d.layout, b + d.offset);
    }
  }

  Layout layout_;
  int64_t ttl_us_;
  absl::flat_hash_map<Hash128, uint32_t> index_;
  fi::Region keys_;  // Hash128 by slot: a slot's index entry when evicting, its key when saving
  fi::Region slab_;  // the blobs, by slot
  std::vector<uint32_t> free_;
  std::vector<uint64_t> live_;  // a bit per slot: it holds an entity (else free)
  size_t hand_ = 0;
  uint64_t heap_ = 0;  // bytes of distinct-count overflow sketches
};

}  // namespace

double NumericValue(const Event& e, int field) {
  const Value& v = e.values[static_cast<size_t>(field)];
  switch (v.kind) {
    case Value::Kind::kFloat:
      return v.f;
    case Value::Kind::kInt:
      return static_cast<double>(v.i);
    case Value::Kind::kBool:
      return v.b ? 1.0 : 0.0;
    default:
      return kNaN;
  }
}

struct FeatureEngine::Impl {
  Impl(const config::Pipeline& p, const Spec& s) : pipeline(p), spec(s) {}

  const config::Pipeline& pipeline;
  const Spec& spec;
  std::vector<std::unique_ptr<EntityTable>> tables;
  std::vector<size_t> derived;  // the ratio and diff features, in feature order
  // Per-event scratch, sized for the largest layout at construction (no allocation per event).
  struct GateNow {
    int64_t before;  // the gate's cursor before the event
    bool passed;     // the event passes the gate
  };
  // A clock on the event: what a window's update needs, in one place (one index, no chain of
  // lookups through gate and step).
  struct ClockNow {
    int64_t k;       // bucket of the event's time, in the clock's step
    int64_t before;  // newest bucket before the event (fi::kNoBucket: none)
    int64_t after;   // newest bucket after it
    bool add;        // the event passes the clock's gate
  };
  std::vector<int64_t> step_bucket;  // by step: bucket of the event's time
  std::vector<GateNow> gate_now;     // by gate
  std::vector<ClockNow> clock_now;   // by clock
  std::vector<uint64_t> hashes;      // by hashed field
  std::vector<double> anomaly_x;     // by anomaly input: its value on the event

  void SizeScratch(const Layout& l) {
    auto grow = [](auto& v, size_t n) {
      if (v.size() < n) v.resize(n);
    };
    grow(step_bucket, l.steps.size());
    grow(gate_now, l.gates.size());
    grow(clock_now, l.clocks.size());
    grow(hashes, l.hashed.size());
    grow(anomaly_x, l.anomaly_inputs.size());
  }

  static bool Passes(const Event& e, const Layout::Gate& g) {
    if (g.where && !Matches(e, *g.where)) return false;
    if (g.field < 0) return true;
    return g.numeric ? !std::isnan(NumericValue(e, g.field))
                     : e.values[static_cast<size_t>(g.field)].kind != Value::Kind::kNull;
  }

  // Inlined into both its callers (UpdateEntity, UpdateEntities): with two, GCC kept it out
  // of line, and a worker's run paid a call per update (AsWorker 0.96 inlined,
  // bench/RESULTS.md, twelfth pass).
  [[gnu::always_inline]] void Update(EntityTable& table, const Event& e, std::byte* b,
                                     std::span<double> out) {
    const Layout& l = table.layout();
    const int64_t t = e.time_us;
    const int64_t last_time = LoadI64(b + Layout::kLastTime);
    const int64_t last_seen = LoadI64(b + Layout::kLastSeen);
    // 0. Buckets and cursors: the event's bucket per step, each window's newest bucket before
    // and after the event. The scratch arrays' addresses are held in locals: the blob is bytes,
    // whose every store could otherwise change a vector's pointer as far as the compiler knows.
    int64_t* const buckets = step_bucket.data();
    GateNow* const gates = gate_now.data();
    ClockNow* const clocks = clock_now.data();
    uint64_t* const hash_of = hashes.data();
    {
      size_t i = 0;
      for (const auto& st : l.steps) buckets[i++] = st.div.Floor(t);
      i = 0;
      for (const auto& g : l.gates) {
        gates[i++] = {g.offset == 0 ? last_seen : LoadI64(b + g.offset), Passes(e, g)};
      }
      i = 0;
      for (const auto& c : l.clocks) {
        const GateNow& g = gates[c.gate];
        const int64_t k = buckets[c.step];
        const int64_t before = g.before == INT64_MIN
                                   ? fi::kNoBucket
                                   : l.steps[static_cast<size_t>(c.step)].div.Floor(g.before);
        clocks[i++] = {k, before, g.passed ? std::max(before, k) : before, g.passed};
      }
      i = 0;
      for (const int field : l.hashed) hash_of[i++] = ValueHash(e, field);
    }
    // 1. Fold the event into the windows and read them: window features include the event.
    auto put = [&out](int feature, double v) {
      if (feature >= 0) out[static_cast<size_t>(feature)] = v;
    };
    for (const auto& r : l.rings) {
      const ClockNow& c = clocks[r.clock];
      const uint32_t slot = r.slots.Mod(c.k);
      double v = c.add && r.of >= 0 ? NumericValue(e, r.of) : 0.0;
      // Only a count shares a ring with an always-present field; were the decoder to let
      // a value be missing, count the event rather than poison the sums.
      if (std::isnan(v)) v = 0.0;
      fi::WindowAgg a;
      fi::RingAddReadAt(r.layout, r.add_read, b + r.offset, c.k, slot, c.before, c.after, c.add, v,
                        a);
      const double n = static_cast<double>(a.count);
      put(r.out.count, n);
      put(r.out.sum, a.sum);
      if (a.count == 0) {
        put(r.out.avg, kNaN);
        put(r.out.min, kNaN);
        put(r.out.max, kNaN);
        put(r.out.stddev, kNaN);
        continue;
      }
      if (r.out.avg >= 0) put(r.out.avg, a.sum / n);  // no division for a ring without an avg
      put(r.out.min, a.min);
      put(r.out.max, a.max);
      if (r.out.stddev >= 0) {
        const double mean = a.sum / n;
        put(r.out.stddev, std::sqrt(std::max(0.0, a.sumsq / n - mean * mean)));
      }
    }
    for (const auto& d : l.distincts) {
      const ClockNow& c = clocks[d.clock];
      if (c.add) table.AddDistinct(d, b, c.k, c.before, hash_of[d.hash]);
      put(d.feature, fi::DistinctReadAt(d.layout, b + d.offset, c.k, c.after));
    }
    // 2. The history as of before the event. Distance from the previous position, once per
    // position for both the distance and the speed. The same finite place as before is 0 km
    // without the trigonometry (the formula gives exactly +0 there too); NaN coordinates fail
    // the comparison and give NaN.
    for (const auto& g : l.geos) {
      const double plat = LoadF64(b + g.offset), plon = LoadF64(b + g.offset + 8);
      const double lat = NumericValue(e, g.lat), lon = NumericValue(e, g.lon);
      const bool same = lat == plat && lon == plon && std::isfinite(lat) && std::isfinite(lon);
      const double km = same ? 0.0 : fi::HaversineKm(plat, plon, lat, lon);  // NaN if any is
      put(g.distance, km);
      if (g.speed >= 0) {
        put(g.speed, last_time == INT64_MIN ? kNaN : fi::SpeedKmh(km, t - last_time));
      }
    }
    for (const auto& r : l.recents) {
      put(r.feature, e.values[static_cast<size_t>(r.of)].kind == Value::Kind::kNull    ? kNaN
                     : fi::RecentSeenBefore(r.capacity, b + r.offset, hash_of[r.hash]) ? 0.0
                                                                                       : 1.0);
    }
    for (const auto& x : l.lasts) put(x.feature, LoadF64(b + x.offset));
    if (l.since >= 0) {  // no division for an entity without the feature
      put(l.since, last_time == INT64_MIN ? kNaN : static_cast<double>(t - last_time) / 1e6);
    }
    for (const auto& ew : l.ews) {
      fi::EwStats st;
      std::memcpy(&st, b + ew.offset, sizeof st);
      put(ew.ewma, st.weight > 0 ? st.Mean() : kNaN);
      if (ew.zscore >= 0) put(ew.zscore, st.ZScore(NumericValue(e, ew.of)));
    }
    for (const auto& cp : l.copies) {
      out[static_cast<size_t>(cp.to)] = out[static_cast<size_t>(cp.from)];
    }
    // Anomaly scores last, in feature order: an input feature (declared above, same entity) is
    // in `out` by now, another score's included.
    for (const auto& a : l.anomalies) {
      double score = kNaN;
      for (int i = a.first; i < a.first + a.count; ++i) {
        const auto& in = l.anomaly_inputs[static_cast<size_t>(i)];
        const double x =
            in.feature >= 0 ? out[static_cast<size_t>(in.feature)] : NumericValue(e, in.field);
        anomaly_x[static_cast<size_t>(i)] = x;
        const double z = std::fabs(fi::RobustZ(b + in.offset, a.min_history, x));
        if (!std::isnan(z)) score = std::isnan(score) ? z : std::max(score, z);
      }
      out[static_cast<size_t>(a.feature)] = score;
    }
    // 3. Fold the event into the history.
    for (const auto& ew : l.ews) {
      const double v = NumericValue(e, ew.of);
      if (std::isnan(v)) continue;
      fi::EwStats st;
      std::memcpy(&st, b + ew.offset, sizeof st);
      st.Update(t, v, ew.half_life_us);
      std::memcpy(b + ew.offset, &st, sizeof st);
    }
    for (const auto& x : l.lasts) StoreF64(b + x.offset, NumericValue(e, x.of));
    for (size_t i = 0; i < l.anomaly_inputs.size(); ++i) {
      const double x = anomaly_x[i];
      if (std::isfinite(x))
        fi::RobustAdd(l.anomaly_inputs[i].capacity, b + l.anomaly_inputs[i].offset, x);
    }
    for (const auto& g : l.geos) {
      const double lat = NumericValue(e, g.lat), lon = NumericValue(e, g.lon);
      if (std::isnan(lat) || std::isnan(lon)) continue;
      StoreF64(b + g.offset, lat);
      StoreF64(b + g.offset + 8, lon);
    }
    {
      size_t i = 0;
      for (const auto& g : l.gates) {
        const GateNow& now = gates[i++];
        if (g.offset != 0 && now.passed && t > now.before) StoreI64(b + g.offset, t);
      }
    }
    StoreI64(b + Layout::kLastTime, t);
    if (t > last_seen) StoreI64(b + Layout::kLastSeen, t);
  }
};

FeatureEngine::FeatureEngine(const config::Pipeline& pipeline, const Spec& spec)
    : impl_(std::make_unique<Impl>(pipeline, spec)) {
  for (size_t e = 0; e < spec.entities.size(); ++e) {
    impl_->tables.push_back(std::make_unique<EntityTable>(
        MakeLayout(pipeline, spec, static_cast<int>(e)), spec.entities[e].ttl_us));
    impl_->SizeScratch(impl_->tables.back()->layout());
  }
  for (size_t i = 0; i < spec.features.size(); ++i) {
    const Op op = spec.features[i].op;
    if (op == Op::kRatio || op == Op::kDiff) impl_->derived.push_back(i);
  }
}

FeatureEngine::~FeatureEngine() = default;

void FeatureEngine::UpdateEntity(int entity, const Hash128& key, const Event& event,
                                 std::span<double> out) {
  EntityTable& table = *impl_->tables[static_cast<size_t>(entity)];
  impl_->Update(table, event, table.FindOrCreate(key, event.time_us), out);
}

void FeatureEngine::UpdateEntities(int entity, std::span<const uint32_t> at, const Hash128* keys,
                                   const Event* events, std::span<double> rows) {
  EntityTable& table = *impl_->tables[static_cast<size_t>(entity)];
  const size_t fc = impl_->spec.features.size();
  // found[j % kFound]: the slot + 1 PrefetchState found for update j, kStateAhead updates
  // before it (0: none, or j < kStateAhead). Nothing is dropped from the table during the run,
  // so it stays the key's.
  constexpr size_t kFound = std::bit_ceil(kStateAhead + 1);
  std::array<uint32_t, kFound> found{};
  const size_t n = at.size();
  for (size_t j = 0; j < n; ++j) {
    if (j + kIndexAhead < n) table.PrefetchIndex(keys[at[j + kIndexAhead]]);
    if (j + kStateAhead < n) {
      found[(j + kStateAhead) % kFound] = table.PrefetchState(keys[at[j + kStateAhead]]);
    }
    const size_t i = at[j];
    const Event& e = events[i];
    impl_->Update(table, e, table.FindOrCreate(keys[i], e.time_us, found[j % kFound]),
                  rows.subspan(i * fc, fc));
  }
}

void FeatureEngine::PrefetchIndex(int entity, const Hash128& key) const {
  impl_->tables[static_cast<size_t>(entity)]->PrefetchIndex(key);
}

void FeatureEngine::PrefetchState(int entity, const Hash128& key) const {
  impl_->tables[static_cast<size_t>(entity)]->PrefetchState(key);
}

void FeatureEngine::Derive(const Event& e, std::span<double> out) const {
  // Only the derived features: a pass over every feature, skipping the others, made Derive
  // ~200 of the ~5,800 instructions of an event's feature work; this one ~20
  // (scripts/bench-instructions).
  for (const size_t i : impl_->derived) {
    const FeatureSpec& f = impl_->spec.features[i];
    const double a =
        f.a_feature >= 0 ? out[static_cast<size_t>(f.a_feature)] : NumericValue(e, f.a_field);
    const double b =
        f.b_feature >= 0 ? out[static_cast<size_t>(f.b_feature)] : NumericValue(e, f.b_field);
    out[i] = f.op == Op::kDiff ? a - b : (b == 0 ? kNaN : a / b);
  }
}

void FeatureEngine::EvictIdle(int64_t now_us, size_t budget) {
  for (auto& t : impl_->tables) t->EvictIdle(now_us, budget);
}

namespace {

// 2: windows share cursors per gate; min and max kept separately.
// 3: a distinct count's registers may be saved sparse. Version 2 state (dense registers only)
//    loads unchanged, so checkpoints from before still restore.
constexpr uint32_t kStateVersion = 3;
constexpr uint32_t kOldestLoadable = 2;

// Identifies the state layout a features spec gives, so a checkpoint is restored only into
// the layout it was saved from.
uint64_t LayoutFingerprint(const std::vector<std::unique_ptr<EntityTable>>& tables) {
  std::string d;
  for (const auto& t : tables) {
    const Layout& l = t->layout();
    d += fmt::format("|{}:", l.bytes);
    for (const auto& g : l.gates) {
      d += fmt::format("g{},{},{},{}@{};", g.where ? g.where->field : -1, g.field, g.numeric,
                       g.where ? static_cast<int>(g.where->cmp) : -1, g.offset);
    }
    for (const auto& c : l.clocks) {
      d += fmt::format("c{},{};", c.gate, l.steps[static_cast<size_t>(c.step)].step_us);
    }
    for (const auto& r : l.rings) {
      d += fmt::format("r{},{},{},{},{}{}{}{}@{};", r.layout.buckets, r.layout.step_us, r.of,
                       r.clock, r.layout.sum, r.layout.sumsq, r.layout.KeepsMin(),
                       r.layout.KeepsMax(), r.offset);
    }
    for (const auto& x : l.distincts) {
      d += fmt::format("d{},{},{},{}@{};", x.layout.buckets, x.layout.step_us, x.of, x.clock,
                       x.offset);
    }
    for (const auto& x : l.ews) d += fmt::format("e{},{}@{};", x.of, x.half_life_us, x.offset);
    for (const auto& x : l.lasts) d += fmt::format("l{}@{};", x.of, x.offset);
    for (const auto& x : l.geos) d += fmt::format("g{},{}@{};", x.lat, x.lon, x.offset);
    for (const auto& x : l.recents) d += fmt::format("n{},{}@{};", x.of, x.capacity, x.offset);
    // Anomaly parts are new in this version; a spec without them fingerprints as before, so
    // its checkpoints stay valid (min_history is a read threshold, not layout: not included).
    for (const auto& x : l.anomaly_inputs) {
      d += fmt::format("a{},{},{}@{};", x.field, x.feature, x.capacity, x.offset);
    }
  }
  return Hash64(d);
}

}  // namespace

namespace {
// What every saved state starts with: the format, and the layout it was saved under.
void PutStateHeader(SnapshotWriter& out, const std::vector<std::unique_ptr<EntityTable>>& tables) {
  out.Put<uint32_t>(kStateVersion);
  out.Put<uint64_t>(LayoutFingerprint(tables));
  out.Put<uint64_t>(tables.size());
}
}  // namespace

void FeatureEngine::Save(SnapshotWriter& out, const KeyMap& map) const {
  if (map) {  // the entities it keeps, under its keys: a split into one writer
    SnapshotWriter* const one[] = {&out};
    SaveSplit(one, [&](const Hash128& k) -> std::optional<std::pair<size_t, Hash128>> {
      if (const std::optional<Hash128> as = map(k)) return std::pair(size_t{0}, *as);
      return std::nullopt;
    });
    return;
  }
  PutStateHeader(out, impl_->tables);
  for (const auto& t : impl_->tables) t->SaveAll(out);
}

void FeatureEngine::SaveSplit(std::span<SnapshotWriter* const> outs, const KeySplit& split) const {
  // Counted first, so each writer's buffer is sized once: grown by doubling, a partition of
  // 250k cards (229 MiB) took 2.7x as long to save (BM_PartitionSnapshot/new_buffer).
  std::vector<std::vector<uint64_t>> counts;
  std::vector<uint64_t> bytes(outs.size(), 64);  // the header, with room to spare
  for (const auto& t : impl_->tables) {
    counts.push_back(t->CountSplit(outs.size(), split));
    for (size_t i = 0; i < outs.size(); ++i) bytes[i] += t->SplitBytes(counts.back()[i]);
  }
  for (size_t i = 0; i < outs.size(); ++i) {
    outs[i]->Reserve(bytes[i]);
    PutStateHeader(*outs[i], impl_->tables);
  }
  for (size_t t = 0; t < impl_->tables.size(); ++t)
    impl_->tables[t]->SaveSplit(outs, split, counts[t]);
}

void FeatureEngine::Drop(const std::function<bool(const Hash128&)>& drop) {
  for (auto& t : impl_->tables) t->Drop(drop);
}

void FeatureEngine::Load(SnapshotReader& in, const KeyMap& map) {
  const auto version = in.Get<uint32_t>();
  if (version < kOldestLoadable || version > kStateVersion) {
    in.Fail("feature state of another format version");
  }
  if (in.Get<uint64_t>() != LayoutFingerprint(impl_->tables) ||
      in.Get<uint64_t>() != impl_->tables.size()) {
    in.Fail(
        "the feature state was saved under different entities or features; the pipeline "
        "changed since the checkpoint");
  }
  for (auto& t : impl_->tables) t->Load(in, map);
}

uint64_t FeatureEngine::EntityCount() const {
  uint64_t n = 0;
  for (const auto& t : impl_->tables) n += t->Count();
  return n;
}

uint64_t FeatureEngine::StateBytes() const {
  uint64_t n = 0;
  for (const auto& t : impl_->tables) n += t->Bytes();
  return n;
}

uint64_t FeatureEngine::EntityCount(int entity) const {
  return impl_->tables[static_cast<size_t>(entity)]->Count();
}

uint64_t FeatureEngine::StateBytes(int entity) const {
  return impl_->tables[static_cast<size_t>(entity)]->Bytes();
}

size_t FeatureEngine::EntityBytes(int entity) const {
  return impl_->tables[static_cast<size_t>(entity)]->layout().bytes;
}

}  // namespace vigil::features
