#include "vigil/features/feature_engine.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>

#include "vigil/features/internal/distinct.h"
#include "vigil/features/internal/ew_stats.h"
#include "vigil/features/internal/geo.h"
#include "vigil/features/internal/recent_set.h"
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

// Where each part of an entity's state blob lives, and which features read it.
struct Layout {
  struct Ring {
    fi::RingLayout layout;
    int of;  // -1: count only
    const Where* where;
    size_t offset;
  };
  struct Distinct {
    fi::DistinctLayout layout;
    int of;
    const Where* where;
    size_t offset;
  };
  struct Ew {
    int of;
    int64_t half_life_us;
    size_t offset;
  };
  struct Last {  // value of a field on the previous event
    int of;
    size_t offset;
  };
  struct Geo {  // lat/lon of the previous event
    int lat, lon;
    size_t offset;
  };
  struct Recent {
    int of;
    int capacity;
    size_t offset;
  };
  // What each feature reads: kind of part and its index.
  struct Read {
    int feature;
    Op op;
    int part;
  };
  static constexpr size_t kLastTime = 0;  // int64: time of the previous event
  static constexpr size_t kLastSeen = 8;  // int64: newest event time (for TTL)
  std::vector<Ring> rings;
  std::vector<Distinct> distincts;
  std::vector<Ew> ews;
  std::vector<Last> lasts;
  std::vector<Geo> geos;
  std::vector<Recent> recents;
  std::vector<Read> reads;
  size_t bytes = 16;

  size_t Take(size_t n) {
    const size_t at = bytes;
    bytes += Align8(n);
    return at;
  }
};

bool SameWhere(const Where* a, const Where* b) {
  if (!a || !b) return a == b;
  return a->field == b->field && a->cmp == b->cmp && a->number == b->number && a->text == b->text &&
         a->numeric == b->numeric;
}

Layout MakeLayout(const Spec& spec, int entity) {
  Layout l;
  for (size_t fidx = 0; fidx < spec.features.size(); ++fidx) {
    const FeatureSpec& f = spec.features[fidx];
    if (f.entity != entity) continue;
    const Where* where = f.where ? &*f.where : nullptr;
    Layout::Read read{static_cast<int>(fidx), f.op, -1};
    switch (f.op) {
      case Op::kCount:
      case Op::kSum:
      case Op::kAvg:
      case Op::kMin:
      case Op::kMax:
      case Op::kStddev: {
        const int of = f.op == Op::kCount ? -1 : f.of;
        const uint16_t buckets = static_cast<uint16_t>((f.window_us + f.step_us - 1) / f.step_us);
        // Features over the same window, step, field and filter share one ring.
        for (size_t i = 0; i < l.rings.size(); ++i) {
          const auto& r = l.rings[i];
          if (r.layout.buckets == buckets && r.layout.step_us == f.step_us && r.of == of &&
              SameWhere(r.where, where)) {
            read.part = static_cast<int>(i);
          }
        }
        if (read.part < 0) {
          read.part = static_cast<int>(l.rings.size());
          l.rings.push_back(
              {fi::RingLayout{buckets, f.step_us, false, false, false}, of, where, 0});
        }
        auto& ring = l.rings[static_cast<size_t>(read.part)].layout;
        ring.sum = ring.sum || f.op == Op::kSum || f.op == Op::kAvg || f.op == Op::kStddev;
        ring.sumsq = ring.sumsq || f.op == Op::kStddev;
        ring.minmax = ring.minmax || f.op == Op::kMin || f.op == Op::kMax;
        break;
      }
      case Op::kDistinct: {
        const uint16_t buckets = static_cast<uint16_t>((f.window_us + f.step_us - 1) / f.step_us);
        read.part = static_cast<int>(l.distincts.size());
        l.distincts.push_back({fi::DistinctLayout{buckets, f.step_us}, f.of, where, 0});
        break;
      }
      case Op::kEwma:
      case Op::kZscore:
        for (size_t i = 0; i < l.ews.size(); ++i) {
          if (l.ews[i].of == f.of && l.ews[i].half_life_us == f.half_life_us) {
            read.part = static_cast<int>(i);
          }
        }
        if (read.part < 0) {
          read.part = static_cast<int>(l.ews.size());
          l.ews.push_back({f.of, f.half_life_us, 0});
        }
        break;
      case Op::kLast:
        for (size_t i = 0; i < l.lasts.size(); ++i) {
          if (l.lasts[i].of == f.of) read.part = static_cast<int>(i);
        }
        if (read.part < 0) {
          read.part = static_cast<int>(l.lasts.size());
          l.lasts.push_back({f.of, 0});
        }
        break;
      case Op::kGeoDistance:
      case Op::kGeoSpeed:
        for (size_t i = 0; i < l.geos.size(); ++i) {
          if (l.geos[i].lat == f.lat && l.geos[i].lon == f.lon) read.part = static_cast<int>(i);
        }
        if (read.part < 0) {
          read.part = static_cast<int>(l.geos.size());
          l.geos.push_back({f.lat, f.lon, 0});
        }
        break;
      case Op::kIsNew:
        read.part = static_cast<int>(l.recents.size());
        l.recents.push_back({f.of, f.capacity, 0});
        break;
      case Op::kTimeSinceLast:
        break;
      case Op::kRatio:
      case Op::kDiff:
        continue;
    }
    l.reads.push_back(read);
  }
  for (auto& r : l.rings) r.offset = l.Take(fi::RingBytes(r.layout));
  for (auto& d : l.distincts) d.offset = l.Take(fi::DistinctBytes(d.layout));
  for (auto& e : l.ews) e.offset = l.Take(sizeof(fi::EwStats));
  for (auto& x : l.lasts) x.offset = l.Take(sizeof(double));
  for (auto& g : l.geos) g.offset = l.Take(2 * sizeof(double));
  for (auto& r : l.recents) r.offset = l.Take(fi::RecentBytes(r.capacity));
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
  EntityTable(Layout layout, int64_t ttl_us) : layout_(std::move(layout)), ttl_us_(ttl_us) {}
  ~EntityTable() {
    for (auto& [key, slot] : index_) Destroy(Blob(slot));
  }
  EntityTable(const EntityTable&) = delete;
  EntityTable& operator=(const EntityTable&) = delete;

  // Adds a value to a distinct sketch, keeping the count of overflow bytes current.
  void AddDistinct(const Layout::Distinct& d, std::byte* blob, int64_t t, uint64_t hash) {
    std::byte* state = blob + d.offset;
    const bool was = fi::DistinctIsApproximate(state);
    fi::DistinctAdd(d.layout, state, t, hash);
    if (!was && fi::DistinctIsApproximate(state)) heap_ += fi::DistinctHeapBytes(d.layout, state);
  }

  // The entity's state, created empty if it is new or was idle longer than the ttl at time
  // `now_us` (so expiry is exact whenever the background scan gets to it).
  std::byte* FindOrCreate(const Hash128& key, int64_t now_us) {
    auto [it, inserted] = index_.try_emplace(key, 0);
    if (!inserted) {
      std::byte* blob = Blob(it->second);
      const int64_t seen = LoadI64(blob + Layout::kLastSeen);
      if (ttl_us_ > 0 && seen != INT64_MIN && seen < now_us - ttl_us_) {
        Destroy(blob);
        Init(blob);
      }
      return blob;
    }
    it->second = NewSlot(key);
    Init(Blob(it->second));
    return Blob(it->second);
  }

  void EvictIdle(int64_t now_us, size_t budget) {
    if (ttl_us_ <= 0 || keys_.empty()) return;
    for (size_t n = 0; n < budget && n < keys_.size(); ++n) {
      hand_ = (hand_ + 1) % keys_.size();
      const auto it = index_.find(keys_[hand_]);
      if (it == index_.end() || it->second != hand_) continue;  // a free slot
      std::byte* blob = Blob(static_cast<uint32_t>(hand_));
      if (LoadI64(blob + Layout::kLastSeen) < now_us - ttl_us_) {
        Destroy(blob);
        index_.erase(it);
        free_.push_back(static_cast<uint32_t>(hand_));
      }
    }
  }

  // Each entity: key, state blob, then each distinct part's register block (u64 size, bytes).
  void Save(SnapshotWriter& out) const {
    out.Put<uint64_t>(index_.size());
    for (const auto& [key, slot] : index_) {
      const std::byte* blob = Blob(slot);
      out.Put(key);
      out.Bytes(blob, layout_.bytes);
      for (const auto& d : layout_.distincts) {
        const size_t n = fi::DistinctHeapBytes(d.layout, blob + d.offset);
        out.Put<uint64_t>(n);
        if (n > 0) out.Bytes(fi::DistinctHeap(blob + d.offset), n);
      }
    }
  }

  void Load(SnapshotReader& in, const std::function<bool(const Hash128&)>& keep) {
    const auto n = in.Get<uint64_t>();
    if (n > (in.Remaining() / layout_.bytes)) in.Fail("truncated feature state");
    // The index is small per entity: room for all at once saves its rehashes. The slab is
    // not reserved: with several workers each keeps only its share of the n entities.
    index_.reserve(index_.size() + n);
    std::vector<std::span<const std::byte>> heaps(layout_.distincts.size());
    for (uint64_t i = 0; i < n; ++i) {
      const auto key = in.Get<Hash128>();
      const auto saved = in.Take(layout_.bytes);
      for (auto& h : heaps) h = in.Take(in.Get<uint64_t>());
      if (!keep(key)) continue;
      auto [it, inserted] = index_.try_emplace(key, 0);
      if (!inserted) in.Fail("an entity appears twice in the checkpoint");
      it->second = NewSlot(key);
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

  const Layout& layout() const { return layout_; }
  uint64_t Count() const { return index_.size(); }
  // O(1): called once per batch.
  uint64_t Bytes() const {
    return slab_.capacity() + keys_.capacity() * sizeof(Hash128) +
           index_.capacity() * (sizeof(Hash128) + sizeof(uint32_t) + 1) + heap_;
  }

 private:
  // A slot for a new entity's blob (contents undefined): a freed one, or a new one at the end.
  uint32_t NewSlot(const Hash128& key) {
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = static_cast<uint32_t>(keys_.size());
      keys_.emplace_back();
      slab_.resize(slab_.size() + layout_.bytes);
    }
    keys_[slot] = key;
    return slot;
  }

  std::byte* Blob(uint32_t slot) { return slab_.data() + size_t{slot} * layout_.bytes; }
  const std::byte* Blob(uint32_t slot) const { return slab_.data() + size_t{slot} * layout_.bytes; }

  void Init(std::byte* b) {
    std::memset(b, 0, layout_.bytes);
    StoreI64(b + Layout::kLastTime, INT64_MIN);
    StoreI64(b + Layout::kLastSeen, INT64_MIN);
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
  std::vector<Hash128> keys_;  // by slot, to find a slot's index entry when evicting
  std::vector<std::byte> slab_;
  std::vector<uint32_t> free_;
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
  const config::Pipeline& pipeline;
  const Spec& spec;
  std::vector<std::unique_ptr<EntityTable>> tables;

  void Update(EntityTable& table, const Event& e, std::byte* b, std::span<double> out) {
    const Layout& l = table.layout();
    const int64_t t = e.time_us;
    const int64_t last_time = LoadI64(b + Layout::kLastTime);
    // 1. Fold the event into the windows first: window features include the event itself.
    for (const auto& r : l.rings) {
      if (r.where && !Matches(e, *r.where)) continue;
      const double v = r.of >= 0 ? NumericValue(e, r.of) : 0.0;
      if (r.of >= 0 && std::isnan(v)) continue;  // a null value is not counted
      fi::RingAdd(r.layout, b + r.offset, t, v);
    }
    for (const auto& d : l.distincts) {
      if (d.where && !Matches(e, *d.where)) continue;
      if (e.values[static_cast<size_t>(d.of)].kind == Value::Kind::kNull) continue;
      table.AddDistinct(d, b, t, ValueHash(e, d.of));
    }
    // 2. Read every feature: windows as of now, history as of before the event.
    for (const auto& rd : l.reads) {
      double& o = out[static_cast<size_t>(rd.feature)];
      switch (rd.op) {
        case Op::kCount:
        case Op::kSum:
        case Op::kAvg:
        case Op::kMin:
        case Op::kMax:
        case Op::kStddev: {
          const auto& r = l.rings[static_cast<size_t>(rd.part)];
          const fi::WindowAgg a = fi::RingRead(r.layout, b + r.offset, t);
          const double n = static_cast<double>(a.count);
          if (rd.op == Op::kCount) {
            o = n;
          } else if (rd.op == Op::kSum) {
            o = a.sum;
          } else if (a.count == 0) {
            o = kNaN;
          } else if (rd.op == Op::kAvg) {
            o = a.sum / n;
          } else if (rd.op == Op::kMin) {
            o = a.min;
          } else if (rd.op == Op::kMax) {
            o = a.max;
          } else {
            const double mean = a.sum / n;
            o = std::sqrt(std::max(0.0, a.sumsq / n - mean * mean));
          }
          break;
        }
        case Op::kDistinct: {
          const auto& d = l.distincts[static_cast<size_t>(rd.part)];
          o = fi::DistinctRead(d.layout, b + d.offset, t);
          break;
        }
        case Op::kIsNew: {
          const auto& r = l.recents[static_cast<size_t>(rd.part)];
          if (e.values[static_cast<size_t>(r.of)].kind == Value::Kind::kNull) {
            o = kNaN;
          } else {
            o = fi::RecentSeenBefore(r.capacity, b + r.offset, ValueHash(e, r.of)) ? 0.0 : 1.0;
          }
          break;
        }
        case Op::kLast:
          o = LoadF64(b + l.lasts[static_cast<size_t>(rd.part)].offset);
          break;
        case Op::kTimeSinceLast:
          o = last_time == INT64_MIN ? kNaN : static_cast<double>(t - last_time) / 1e6;
          break;
        case Op::kEwma:
        case Op::kZscore: {
          const auto& ew = l.ews[static_cast<size_t>(rd.part)];
          fi::EwStats s;
          std::memcpy(&s, b + ew.offset, sizeof s);
          o = rd.op == Op::kEwma ? (s.weight > 0 ? s.Mean() : kNaN)
                                 : s.ZScore(NumericValue(e, ew.of));
          break;
        }
        case Op::kGeoDistance:
        case Op::kGeoSpeed: {
          const auto& g = l.geos[static_cast<size_t>(rd.part)];
          const double plat = LoadF64(b + g.offset), plon = LoadF64(b + g.offset + 8);
          const double lat = NumericValue(e, g.lat), lon = NumericValue(e, g.lon);
          const double km = fi::HaversineKm(plat, plon, lat, lon);  // NaN if any is NaN
          o = rd.op == Op::kGeoDistance ? km
              : last_time == INT64_MIN  ? kNaN
                                        : fi::SpeedKmh(km, t - last_time);
          break;
        }
        case Op::kRatio:
        case Op::kDiff:
          break;
      }
    }
    // 3. Fold the event into the history.
    for (const auto& ew : l.ews) {
      const double v = NumericValue(e, ew.of);
      if (std::isnan(v)) continue;
      fi::EwStats s;
      std::memcpy(&s, b + ew.offset, sizeof s);
      s.Update(t, v, ew.half_life_us);
      std::memcpy(b + ew.offset, &s, sizeof s);
    }
    for (const auto& x : l.lasts) StoreF64(b + x.offset, NumericValue(e, x.of));
    for (const auto& g : l.geos) {
      const double lat = NumericValue(e, g.lat), lon = NumericValue(e, g.lon);
      if (std::isnan(lat) || std::isnan(lon)) continue;
      StoreF64(b + g.offset, lat);
      StoreF64(b + g.offset + 8, lon);
    }
    StoreI64(b + Layout::kLastTime, t);
    if (t > LoadI64(b + Layout::kLastSeen)) StoreI64(b + Layout::kLastSeen, t);
  }
};

FeatureEngine::FeatureEngine(const config::Pipeline& pipeline, const Spec& spec)
    : impl_(new Impl{pipeline, spec, {}}) {
  for (size_t e = 0; e < spec.entities.size(); ++e) {
    impl_->tables.push_back(std::make_unique<EntityTable>(MakeLayout(spec, static_cast<int>(e)),
                                                          spec.entities[e].ttl_us));
  }
}

FeatureEngine::~FeatureEngine() = default;

void FeatureEngine::UpdateEntity(int entity, const Hash128& key, const Event& event,
                                 std::span<double> out) {
  EntityTable& table = *impl_->tables[static_cast<size_t>(entity)];
  impl_->Update(table, event, table.FindOrCreate(key, event.time_us), out);
}

void FeatureEngine::Derive(const Event& e, std::span<double> out) const {
  const auto& fs = impl_->spec.features;
  for (size_t i = 0; i < fs.size(); ++i) {
    const FeatureSpec& f = fs[i];
    if (f.op != Op::kRatio && f.op != Op::kDiff) continue;
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

constexpr uint32_t kStateVersion = 1;

// Identifies the state layout a features spec gives, so a checkpoint is restored only into
// the layout it was saved from.
uint64_t LayoutFingerprint(const std::vector<std::unique_ptr<EntityTable>>& tables) {
  std::string d;
  for (const auto& t : tables) {
    const Layout& l = t->layout();
    d += fmt::format("|{}:", l.bytes);
    for (const auto& r : l.rings) {
      d += fmt::format("r{},{},{},{}{}{}@{};", r.layout.buckets, r.layout.step_us, r.of,
                       r.layout.sum, r.layout.sumsq, r.layout.minmax, r.offset);
    }
    for (const auto& x : l.distincts) {
      d += fmt::format("d{},{},{}@{};", x.layout.buckets, x.layout.step_us, x.of, x.offset);
    }
    for (const auto& x : l.ews) d += fmt::format("e{},{}@{};", x.of, x.half_life_us, x.offset);
    for (const auto& x : l.lasts) d += fmt::format("l{}@{};", x.of, x.offset);
    for (const auto& x : l.geos) d += fmt::format("g{},{}@{};", x.lat, x.lon, x.offset);
    for (const auto& x : l.recents) d += fmt::format("n{},{}@{};", x.of, x.capacity, x.offset);
  }
  return Hash64(d);
}

}  // namespace

void FeatureEngine::Save(SnapshotWriter& out) const {
  out.Put<uint32_t>(kStateVersion);
  out.Put<uint64_t>(LayoutFingerprint(impl_->tables));
  out.Put<uint64_t>(impl_->tables.size());
  for (const auto& t : impl_->tables) t->Save(out);
}

void FeatureEngine::Load(SnapshotReader& in, const std::function<bool(const Hash128&)>& keep) {
  if (in.Get<uint32_t>() != kStateVersion) in.Fail("feature state of another format version");
  if (in.Get<uint64_t>() != LayoutFingerprint(impl_->tables) ||
      in.Get<uint64_t>() != impl_->tables.size()) {
    in.Fail(
        "the feature state was saved under different entities or features; the pipeline "
        "changed since the checkpoint");
  }
  for (auto& t : impl_->tables) t->Load(in, keep);
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

size_t FeatureEngine::EntityBytes(int entity) const {
  return impl_->tables[static_cast<size_t>(entity)]->layout().bytes;
}

}  // namespace vigil::features
