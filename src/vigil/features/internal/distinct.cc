#include "vigil/features/internal/distinct.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cmath>
#include <memory>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace vigil::features_internal {
namespace {

constexpr int kExact = 16;                      // inline entries
constexpr size_t kRegs = 256;                   // HLL registers per bucket (p = 8)
constexpr uint8_t kMaxRank = 64 - 8 + 1;        // the highest rank a 64-bit hash gives
constexpr size_t kHeap = 0;                     // uint64: pointer | kHllMode
constexpr size_t kFps = 8;                      // uint32[kExact]
constexpr size_t kBuckets = kFps + 4 * kExact;  // uint16[kExact]
constexpr size_t kCells = kBuckets + 2 * kExact;
constexpr size_t kNewest = kCells;  // int64, with own_cursor
static_assert(kCells == 104 && kCells % 8 == 0);
constexpr uint64_t kHllMode = 1;  // in the pointer word: counting with HyperLogLog
constexpr uint64_t kDense = 2;    // in the pointer word: the block is an HllBlock (else sparse)
constexpr uint64_t kFlags = kHllMode | kDense;

uint32_t Fingerprint(uint64_t h) {
  const auto fp = static_cast<uint32_t>(h >> 32);
  return fp == 0 ? 1 : fp;
}

// Full bucket index of an entry stored as its low 16 bits, relative to the newest bucket.
inline int64_t EntryBucket(int64_t newest, uint16_t low) {
  return newest - static_cast<uint16_t>(static_cast<uint16_t>(newest) - low);
}

// Bit i set when entry i's fingerprint equals fp (0: the empty entries). The 16 entries are
// 64 bytes: two AVX2 compares where available, else a loop the compiler may vectorise.
inline uint32_t EntriesEqualTo(const std::byte* state, uint32_t fp) {
#if defined(__AVX2__)
  const __m256i want = _mm256_set1_epi32(static_cast<int>(fp));
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state + kFps));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state + kFps + 32));
  const auto m_lo =
      static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(lo, want))));
  const auto m_hi =
      static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(hi, want))));
  return m_lo | m_hi << 8;
#else
  uint32_t m = 0;
  for (int i = 0; i < kExact; ++i) m |= uint32_t{LoadAt<uint32_t>(state + kFps + 4 * i) == fp} << i;
  return m;
#endif
}

// Empties the entries whose bucket is older than oldest_live (all when newest < oldest_live).
// An entry's age newest - bucket is the 16-bit difference of the stored low bits (see
// EntryBucket); an entry survives when its age is at most newest - oldest_live.
inline void PurgeOlderThan(std::byte* state, int64_t newest, int64_t oldest_live) {
  const int64_t max_age = newest - oldest_live;
  if (max_age < 0) {
    std::memset(state + kFps, 0, 4 * kExact);
    return;
  }
  const auto newest_low = static_cast<uint16_t>(newest);
  const auto keep_age = static_cast<uint16_t>(max_age);  // < buckets <= 65535
#if defined(__AVX2__)
  const __m256i low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state + kBuckets));
  const __m256i age = _mm256_sub_epi16(_mm256_set1_epi16(static_cast<int16_t>(newest_low)), low);
  // Unsigned age <= keep_age: min(age, keep_age) == age.
  const __m256i keep = _mm256_cmpeq_epi16(
      _mm256_min_epu16(age, _mm256_set1_epi16(static_cast<int16_t>(keep_age))), age);
  auto* fps = reinterpret_cast<__m256i*>(state + kFps);
  const __m256i keep_lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(keep));
  const __m256i keep_hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(keep, 1));
  _mm256_storeu_si256(fps, _mm256_and_si256(_mm256_loadu_si256(fps), keep_lo));
  _mm256_storeu_si256(fps + 1, _mm256_and_si256(_mm256_loadu_si256(fps + 1), keep_hi));
#else
  for (int i = 0; i < kExact; ++i) {
    const auto age = static_cast<uint16_t>(newest_low - LoadAt<uint16_t>(state + kBuckets + 2 * i));
    if (age > keep_age) StoreAt<uint32_t>(state + kFps + 4 * i, 0);
  }
#endif
}

// Register index and rank (position of the first 1 bit after the 8 index bits, from 1) of a
// full hash, and of a 32-bit fingerprint (the hash's high bits) when an exact entity switches.
// The two agree unless the 24 fingerprint bits after the index are all zero (p = 2^-24).
struct Reg {
  size_t idx;
  uint8_t rank;
};
inline Reg RegOf(uint64_t h) {
  return {h >> 56, static_cast<uint8_t>(std::countl_zero((h << 8) | 0x80) + 1)};
}
inline Reg RegOfFp(uint32_t fp) {
  return {fp >> 24, static_cast<uint8_t>(std::countl_zero((fp << 8) | 0x80u) + 1)};
}

// The linear-counting estimate m * log(m / zeros) for zeros = 1 .. 256 (index 0 unused),
// computed once with the expression a read would use, so a read looks it up: the same values,
// without a log per read.
const std::array<double, kRegs + 1> kLinearCounting = [] {
  std::array<double, kRegs + 1> t{};
  constexpr double m = kRegs;
  for (uint32_t zeros = 1; zeros <= kRegs; ++zeros) t[zeros] = m * std::log(m / zeros);
  return t;
}();

// sum(2^-r) and the number of zero registers of a register row, kept exactly as three 32-bit
// integer sums: ranks 0..23 in units of 2^-23, 24..47 in units of 2^-47, 48.. in units of
// 2^-71 (each term <= 2^23, so 256 of them fit). Integer, so it can be updated incrementally
// without drift, and a full recount vectorises (8 lanes with AVX2).
struct Sums {
  uint32_t hi = 0, mid = 0, lo = 0, zeros = 0;

  void Add(uint32_t r) {
    hi += r < 24 ? (1u << 23) >> r : 0u;
    mid += r >= 24 && r < 48 ? (1u << 23) >> (r - 24) : 0u;
    lo += r >= 48 ? (1u << 23) >> (r - 48) : 0u;
    zeros += r == 0;
  }
  void Remove(uint32_t r) {
    hi -= r < 24 ? (1u << 23) >> r : 0u;
    mid -= r >= 24 && r < 48 ? (1u << 23) >> (r - 24) : 0u;
    lo -= r >= 48 ? (1u << 23) >> (r - 48) : 0u;
    zeros -= r == 0;
  }

  static Sums Of(const uint8_t* regs) {
    uint8_t top = 0;
    for (size_t i = 0; i < kRegs; ++i) top = std::max(top, regs[i]);
    return Of(regs, top);
  }

  // The same, given the highest of the registers.
  static Sums Of(const uint8_t* regs, uint8_t top) {
    // A rank of 24 or more comes with probability 2^-23 per value, so rows almost never have
    // one: then mid and lo are 0 and hi is a plain sum of shifts, which vectorises without the
    // selects of Add.
    Sums s;
    if (top < 24) {
      uint32_t hi = 0, zeros = 0;
      for (size_t i = 0; i < kRegs; ++i) {
        hi += (1u << 23) >> regs[i];
        zeros += regs[i] == 0;
      }
      s.hi = hi;
      s.zeros = zeros;
      return s;
    }
    for (size_t i = 0; i < kRegs; ++i) s.Add(regs[i]);
    return s;
  }

  // The standard HLL estimate, with linear counting for the small range. 64-bit hashes need
  // no large-range correction.
  double Estimate() const {
    constexpr double m = kRegs;
    constexpr double alpha = 0.7213 / (1.0 + 1.079 / m);
    if (zeros == kRegs) return 0;
    // Scaling an integer below 2^32 by a power of two is exact: the same as std::ldexp.
    const double z = static_cast<double>(hi) * 0x1p-23 + static_cast<double>(mid) * 0x1p-47 +
                     static_cast<double>(lo) * 0x1p-71;
    const double e = alpha * m * m / z;
    if (e <= 2.5 * m && zeros > 0) return kLinearCounting[zeros];
    return e;
  }
};

// dst[i] = max(dst[i], src[i]) over one row. The restrict qualifiers let the compiler
// vectorise (byte pointers may otherwise alias each other).
void MaxInto(uint8_t* __restrict dst, const uint8_t* __restrict src) {
  for (size_t i = 0; i < kRegs; ++i) {
    const uint8_t a = dst[i], b = src[i];
    dst[i] = a < b ? b : a;
  }
}

// The heap block of an overflowed entity:
//   uint8 row[buckets][256]   bucket k's registers in row k mod buckets
//   uint8 all[256]            union of every row (= of the stored buckets)
//   Sums  sums                of `all`
// `all` and `sums` are updated per insert (one register) and rebuilt when the newest bucket
// advances (O(buckets * 256), once per step), so the usual read, at the newest bucket, is
// O(1): it reads `sums`.
class HllBlock {
 public:
  static size_t Bytes(uint16_t nb) { return (size_t{nb} + 1) * kRegs + sizeof(Sums); }

  HllBlock(uint8_t* p, uint16_t nb) : p_(p), nb_(nb) {}

  uint8_t* Row(uint32_t slot) const { return p_ + size_t{slot} * kRegs; }
  uint8_t* All() const { return p_ + size_t{nb_} * kRegs; }
  Sums LoadSums() const {
    Sums s;
    std::memcpy(&s, All() + kRegs, sizeof s);
    return s;
  }
  void StoreSums(const Sums& s) const { std::memcpy(All() + kRegs, &s, sizeof s); }

  // Sets a register of a row, keeping `all` and `sums` in step. The row must be stored.
  void Insert(uint32_t slot, Reg reg) const {
    uint8_t& r = Row(slot)[reg.idx];
    r = std::max(r, reg.rank);
    uint8_t& a = All()[reg.idx];
    if (reg.rank > a) {
      Sums s = LoadSums();
      s.Remove(a);
      s.Add(reg.rank);
      StoreSums(s);
      a = reg.rank;
    }
  }

  // The newest bucket moves `gap` (1 .. buckets - 1) buckets on from the one in slot
  // newest_slot. The rows of the buckets that leave the window are cleared, and the union is
  // rebuilt from the rows that stay, unless every leaving row was empty: then it is unchanged.
  // (An entity with quiet buckets, e.g. a merchant seen every few steps, skips most rebuilds.)
  void Advance(uint32_t newest_slot, uint32_t gap) const {
    uint64_t held = 0;
    uint32_t s = newest_slot;
    for (uint32_t i = 0; i < gap; ++i) {
      if (++s == nb_) s = 0;
      uint8_t* row = Row(s);
      for (size_t j = 0; j < kRegs; j += 8) {
        held |= LoadAt<uint64_t>(reinterpret_cast<std::byte*>(row + j));
      }
      std::memset(row, 0, kRegs);
    }
    if (held == 0) return;
    // The rows that stay are the nb_ - gap after the last cleared one.
    uint8_t* all = All();
    if (++s == nb_) s = 0;
    std::memcpy(all, Row(s), kRegs);
    for (uint32_t i = 1; i < nb_ - gap; ++i) {
      if (++s == nb_) s = 0;
      MaxInto(all, Row(s));
    }
    StoreSums(Sums::Of(all));
  }

  void RebuildUnion() const {
    uint8_t* all = All();
    std::memset(all, 0, kRegs);
    for (uint32_t s = 0; s < nb_; ++s) MaxInto(all, Row(s));
    StoreSums(Sums::Of(all));
  }

 private:
  uint8_t* p_;
  uint16_t nb_;
};

uint8_t* BlockPtr(uint64_t word) {
  return reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(word & ~kFlags));
}

// The heap block of an overflowed entity while few registers are set: the same registers as
// an HllBlock's rows, as a list of the (row, register) pairs that are not zero, and the sums
// of their union. A merchant seeing a few dozen cards a day sets a few dozen registers of its
// 12 rows of 256, so the list takes ~0.2 KiB where the rows take 3.3 KiB. It grows (doubling)
// up to a quarter of the dense block's bytes, then the entity moves to an HllBlock; either way
// every register, so every estimate, is the same.
//   uint32 tag      kSparseTag: its low byte, 0xFF, is never a dense block's first register
//                   (ranks are at most 57), which tells the two apart in a checkpoint
//   uint32 count    entries in use
//   uint32 capacity entries allocated
//   uint32 0
//   Sums   sums     of the union of every entry's register
//   uint32 entry[capacity]  row << 16 | register << 8 | rank, unordered, one per (row,
//                   register); zero past count
// An insert scans the entries (at most DenseBytes / 16 of them), so costs O(entries).
class SparseHll {
 public:
  static constexpr uint32_t kSparseTag = 0x5053'48FF;  // "\xFFHSP"
  static constexpr size_t kHeader = 32;
  static constexpr uint32_t kFirstCapacity = 32;

  // The most entries a sparse block may hold for `nb` rows: its bytes stay within a quarter of
  // the dense block's (at least 24, room for the 17 of an exact entity's switch). Capacities
  // are multiples of 8, so a scan reads whole groups of 8 entries inside the block.
  static uint32_t MaxEntries(uint16_t nb) {
    const auto fit = static_cast<uint32_t>((HllBlock::Bytes(nb) / 4 - kHeader) / 4);
    return std::max<uint32_t>(24, fit / 8 * 8);
  }
  static size_t Bytes(uint32_t capacity) { return kHeader + size_t{capacity} * 4; }

  // A new, empty block of `capacity` entries (zeroed).
  static uint8_t* Make(uint32_t capacity) {
    uint8_t* p = std::make_unique<uint8_t[]>(Bytes(capacity)).release();  // owned by the state
    assert((reinterpret_cast<uintptr_t>(p) & kFlags) == 0);
    SparseHll b(p);
    b.Store(0, kSparseTag);
    b.Store(8, capacity);
    b.Clear();
    return p;
  }

  explicit SparseHll(uint8_t* p) : p_(p) {}

  uint32_t Count() const { return Load(4); }
  uint32_t Capacity() const { return Load(8); }
  uint32_t Entry(uint32_t i) const { return Load(kHeader + size_t{i} * 4); }
  Sums LoadSums() const {
    Sums s;
    std::memcpy(&s, p_ + 16, sizeof s);
    return s;
  }
  void StoreSums(const Sums& s) const { std::memcpy(p_ + 16, &s, sizeof s); }

  // No entries: every register zero.
  void Clear() const {
    Store(4, 0);
    std::memset(p_ + kHeader, 0, size_t{Capacity()} * 4);
    RecountSums();
  }

  // Sets the sums from the union of the entries (after entries left, or were restored).
  void RecountSums() const {
    std::array<uint8_t, kRegs> all;
    const uint8_t top = Union(all.data());
    StoreSums(Sums::Of(all.data(), top));
  }

  // The entry of (row, register) `want` (row << 8 | register), or Count() if there is none, and
  // the highest rank register `idx` has in any row (the union's register; 0 if none).
  struct Found {
    uint32_t at, top;
  };
  Found Find(uint32_t want, uint32_t idx) const {
    const uint32_t n = Count();
    uint32_t found = n;
    uint32_t top = 0;
    uint32_t i = 0;
#if defined(__AVX2__)
    // Eight entries per step; lanes past `n` (zero entries) are masked out of both results.
    const __m256i want_v = _mm256_set1_epi32(static_cast<int>(want));
    const __m256i idx_v = _mm256_set1_epi32(static_cast<int>(idx));
    const __m256i low = _mm256_set1_epi32(0xFF);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i top_v = _mm256_setzero_si256();
    for (; i < n; i += 8) {
      const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p_ + kHeader + 4 * i));
      const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - i)), lane);
      const __m256i key = _mm256_srli_epi32(e, 8);
      const __m256i same = _mm256_and_si256(live, _mm256_cmpeq_epi32(key, want_v));
      const __m256i same_reg =
          _mm256_and_si256(live, _mm256_cmpeq_epi32(_mm256_and_si256(key, low), idx_v));
      top_v = _mm256_max_epu32(top_v, _mm256_and_si256(same_reg, _mm256_and_si256(e, low)));
      const auto m = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(same)));
      if (m != 0) found = i + static_cast<uint32_t>(std::countr_zero(m));
    }
    alignas(32) uint32_t tops[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(tops), top_v);
    for (uint32_t t : tops) top = std::max(top, t);
#else
    for (; i < n; ++i) {
      const uint32_t e = Entry(i);
      if ((e >> 8) == want) found = i;
      if (((e >> 8) & 0xFF) == idx) top = std::max(top, e & 0xFF);
    }
#endif
    return {found, top};
  }

  // The highest rank register `idx` has in any row (0 if none): Find with a key no entry has
  // (rows are below 65535, and this one's row would be 0xFFFF).
  uint32_t TopOf(uint32_t idx) const { return Find(0xFF'FFFF, idx).top; }

  // Sets a register of a row (to the max of its rank and the one given), keeping the sums of
  // the union in step. Returns false, changing nothing, when it needs a new entry and the
  // block is full.
  bool Insert(uint32_t slot, Reg reg) const {
    const uint32_t want = slot << 8 | static_cast<uint32_t>(reg.idx);
    const uint32_t n = Count();
    const auto [found, top] = Find(want, static_cast<uint32_t>(reg.idx));
    if (found == n) {
      if (n == Capacity()) return false;
      Store(kHeader + size_t{n} * 4, want << 8 | reg.rank);
      Store(4, n + 1);
    } else if ((Entry(found) & 0xFF) < reg.rank) {
      Store(kHeader + size_t{found} * 4, want << 8 | reg.rank);
    }
    if (reg.rank > top) {
      Sums s = LoadSums();
      s.Remove(top);
      s.Add(reg.rank);
      StoreSums(s);
    }
    return true;
  }

  // The union of every entry's register; returns its highest.
  uint8_t Union(uint8_t* all) const {
    std::memset(all, 0, kRegs);
    const uint32_t n = Count();
    uint8_t top = 0;
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t e = Entry(i);
      const auto rank = static_cast<uint8_t>(e & 0xFF);
      uint8_t& r = all[(e >> 8) & 0xFF];
      r = std::max(r, rank);
      top = std::max(top, rank);
    }
    return top;
  }

  // As HllBlock::Advance: the rows after newest_slot, `gap` of them (1 .. nb - 1), leave the
  // window and their entries are removed: each one's place is taken by the last entry that
  // stays (entries are unordered), so the entries that stay are not moved one by one. The union
  // changes only in the registers where a removed entry held the highest rank: while few
  // entries leave, each of their registers is looked up among the entries that stay and the
  // sums adjusted (they are integers, so exactly what a recount gives); when many leave, the
  // sums are recounted.
  void Advance(uint32_t newest_slot, uint32_t gap, uint16_t nb) const {
    constexpr uint32_t kTracked = 16;
    uint32_t removed[kTracked];  // register << 8 | rank of the first kTracked removed
    uint32_t gone = 0;
    // Rows newest_slot + 1 .. newest_slot + gap (mod nb) leave: `after` is the row's distance
    // past newest_slot, 0 .. nb - 1 (without a division per entry).
    const uint32_t shift = nb - newest_slot - 1;
    auto leaves = [&](uint32_t e) {
      uint32_t after = (e >> 16) + shift;
      if (after >= nb) after -= nb;
      return after < gap;
    };
    const uint32_t total = Count();
    uint32_t n = total;
    // Removes entry j (which leaves), filling its place from the end.
    auto remove = [&](uint32_t j) {
      for (uint32_t e = Entry(j);; e = Entry(n)) {
        if (gone < kTracked) removed[gone] = e & 0xFFFF;
        ++gone;
        if (--n <= j) return;  // j was the last entry
        const uint32_t last = Entry(n);
        if (!leaves(last)) {
          Store(kHeader + size_t{j} * 4, last);
          return;
        }
      }
    };
#if defined(__AVX2__)
    // Which of eight entries leave, per step: lanes past `n` are masked out.
    const __m256i shift_v = _mm256_set1_epi32(static_cast<int>(shift));
    const __m256i nb_v = _mm256_set1_epi32(nb);
    const __m256i last_v = _mm256_set1_epi32(static_cast<int>(gap - 1));
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (uint32_t i = 0; i < n; i += 8) {
      const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p_ + kHeader + 4 * i));
      __m256i after = _mm256_add_epi32(_mm256_srli_epi32(e, 16), shift_v);
      after = _mm256_min_epu32(after, _mm256_sub_epi32(after, nb_v));  // after mod nb
      const __m256i leave = _mm256_cmpeq_epi32(_mm256_min_epu32(after, last_v), after);
      const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - i)), lane);
      auto m = static_cast<uint32_t>(
          _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_and_si256(leave, live))));
      // In increasing order; an entry the filling has already dropped from the end is past n.
      for (; m != 0; m &= m - 1) {
        const uint32_t j = i + static_cast<uint32_t>(std::countr_zero(m));
        if (j >= n) break;
        remove(j);
      }
    }
#else
    for (uint32_t j = 0; j < n; ++j) {
      if (leaves(Entry(j))) remove(j);
    }
#endif
    if (gone == 0) return;
    std::memset(p_ + kHeader + size_t{n} * 4, 0, size_t{total - n} * 4);
    Store(4, n);
    if (gone > kTracked) {
      RecountSums();
      return;
    }
    Sums s = LoadSums();
    for (uint32_t j = 0; j < gone; ++j) {
      if (removed[j] == 0) continue;  // a register already seen (ranks are never 0)
      const uint32_t idx = removed[j] >> 8;
      uint32_t was = removed[j] & 0xFF;  // the highest rank removed from the register
      for (uint32_t m = j + 1; m < gone; ++m) {
        if ((removed[m] >> 8) == idx) {
          was = std::max(was, removed[m] & 0xFF);
          removed[m] = 0;
        }
      }
      // The union's register was max(was, now) and is now `now`.
      const uint32_t now = TopOf(idx);
      if (was > now) {
        s.Remove(was);
        s.Add(now);
      }
    }
    StoreSums(s);
  }

  // The registers of the rows of buckets lo .. hi (within the window ending at `newest`).
  void Merge(int64_t lo, int64_t hi, int64_t newest, uint16_t nb, uint8_t* merged) const {
    const uint32_t newest_slot = SlotOf(newest, nb);
    const uint32_t n = Count();
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t e = Entry(i);
      const int64_t bucket = newest - (newest_slot + nb - (e >> 16)) % nb;
      if (bucket < lo || bucket > hi) continue;
      uint8_t& r = merged[(e >> 8) & 0xFF];
      r = std::max(r, static_cast<uint8_t>(e & 0xFF));
    }
  }

  // Writes every entry into a zeroed dense block's rows (the union is left to the caller).
  void FillRows(const HllBlock& dense) const {
    const uint32_t n = Count();
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t e = Entry(i);
      uint8_t& r = dense.Row(e >> 16)[(e >> 8) & 0xFF];
      r = std::max(r, static_cast<uint8_t>(e & 0xFF));
    }
  }

 private:
  uint32_t Load(size_t at) const {
    uint32_t v;
    std::memcpy(&v, p_ + at, 4);
    return v;
  }
  void Store(size_t at, uint32_t v) const { std::memcpy(p_ + at, &v, 4); }

  uint8_t* p_;
};

// A sparse block that could not take an insert: a copy with twice the entries (at most
// SparseHll::MaxEntries) or, once it holds that many, a dense block with the same registers;
// then the insert. Frees the old block and returns the new pointer word.
// The new block is allocated before the old one is freed, so when the allocation throws
// (std::bad_alloc) the state still owns its old, intact block.
uint64_t Outgrow(uint16_t nb, uint64_t word, uint32_t slot, Reg reg) {
  uint8_t* const from = BlockPtr(word);
  const SparseHll old(from);
  const uint32_t max = SparseHll::MaxEntries(nb);
  if (old.Capacity() < max) {
    uint8_t* p = SparseHll::Make(std::min(old.Capacity() * 2, max));
    // count, then (after the capacity) the sums and the entries in use.
    std::memcpy(p + 4, from + 4, 4);
    std::memcpy(p + 16, from + 16, SparseHll::kHeader - 16 + size_t{old.Count()} * 4);
    [[maybe_unused]] const bool fits = SparseHll(p).Insert(slot, reg);
    assert(fits);
    const std::unique_ptr<uint8_t[]> freed(from);
    return reinterpret_cast<uintptr_t>(p) | kHllMode;
  }
  uint8_t* p = std::make_unique<uint8_t[]>(HllBlock::Bytes(nb)).release();  // owned by the state
  assert((reinterpret_cast<uintptr_t>(p) & kFlags) == 0);
  const HllBlock dense(p, nb);
  old.FillRows(dense);
  uint8_t& r = dense.Row(slot)[reg.idx];
  r = std::max(r, reg.rank);
  dense.RebuildUnion();
  const std::unique_ptr<uint8_t[]> freed(from);
  return reinterpret_cast<uintptr_t>(p) | kHllMode | kDense;
}

}  // namespace

size_t DistinctBytes(const DistinctLayout& layout) {
  return kCells + (layout.own_cursor ? sizeof(int64_t) : 0);
}

void DistinctInit(const DistinctLayout& layout, std::byte* state) {
  assert(layout.buckets > 0 && layout.step_us > 0 && "DistinctLayout needs buckets and a step");
  std::memset(state, 0, kCells);
  if (layout.own_cursor) StoreAt<int64_t>(state + kNewest, kNoBucket);
}

namespace {

// DistinctAddAt's paths other than an exact count's usual add, out of line: with them inlined,
// every add (and the usual one is a few instructions) saved and restored the registers that
// only these need. Each returns the change in DistinctHeapBytes.

// A 17th live distinct value: move the entity to HyperLogLog, in a sparse block: the one an
// earlier overflow left, or a new one. (An entity counting exactly never holds a dense
// block: it is freed when the entity goes back, and dropped on restore.) `newest` is the
// newest bucket after the add.
[[gnu::noinline]] int64_t SwitchToApproximate(const DistinctLayout& layout, std::byte* state,
                                              int64_t k, int64_t newest, uint64_t value_hash,
                                              uint64_t word) {
  const uint16_t nb = layout.buckets;
  uint8_t* p = BlockPtr(word);
  assert((word & kDense) == 0);
  int64_t allocated = 0;
  if (p == nullptr) {
    const uint32_t capacity = std::min(SparseHll::kFirstCapacity, SparseHll::MaxEntries(nb));
    p = SparseHll::Make(capacity);
    allocated = static_cast<int64_t>(SparseHll::Bytes(capacity));
  } else {
    SparseHll(p).Clear();
  }
  const SparseHll sparse(p);
  // At most 17 entries: every sparse block has room for them.
  for (int i = 0; i < kExact; ++i) {
    const int64_t b = EntryBucket(newest, LoadAt<uint16_t>(state + kBuckets + 2 * i));
    sparse.Insert(SlotOf(b, nb), RegOfFp(LoadAt<uint32_t>(state + kFps + 4 * i)));
  }
  sparse.Insert(SlotOf(k, nb), RegOf(value_hash));
  std::memset(state + kFps, 0, kCells - kFps);
  StoreAt<uint64_t>(state + kHeap, reinterpret_cast<uintptr_t>(p) | kHllMode);
  return allocated;
}

// The add to an exact count's entries, once the entries older than the window ending at
// `newest` (the newest bucket after the add) are gone.
inline int64_t AddExact(const DistinctLayout& layout, std::byte* state, int64_t k, int64_t newest,
                        uint64_t value_hash, uint64_t word) {
  const uint32_t fp = Fingerprint(value_hash);
  // Fingerprints are unique among the entries, so at most one matches.
  const uint32_t match = EntriesEqualTo(state, fp);
  if (match != 0) {
    std::byte* b = state + kBuckets + 2 * std::countr_zero(match);
    if (EntryBucket(newest, LoadAt<uint16_t>(b)) < k) {
      StoreAt<uint16_t>(b, static_cast<uint16_t>(k));
    }
    return 0;
  }
  const uint32_t empty = EntriesEqualTo(state, 0);
  if (empty != 0) {
    const int free_slot = std::countr_zero(empty);  // the first empty entry
    StoreAt<uint32_t>(state + kFps + 4 * free_slot, fp);
    StoreAt<uint16_t>(state + kBuckets + 2 * free_slot, static_cast<uint16_t>(k));
    return 0;
  }
  return SwitchToApproximate(layout, state, k, newest, value_hash, word);
}

// The add of an entity counting with HyperLogLog (word: its pointer word).
[[gnu::noinline]] int64_t AddApproximate(const DistinctLayout& layout, std::byte* state, int64_t k,
                                         int64_t newest, uint64_t value_hash, uint64_t word) {
  const uint16_t nb = layout.buckets;
  int64_t change = 0;
  if (newest == kNoBucket || k > newest) {
    const int64_t gap = newest == kNoBucket ? nb : k - newest;
    if (gap >= nb) {
      // Every bucket has left the window: count exactly again. The entries were zeroed on the
      // switch. A sparse block is kept and cleared on the next switch; a dense one is freed,
      // so an entity that was busy once does not hold its full registers for life (its next
      // overflow starts sparse).
      if ((word & kDense) != 0) {
        const std::unique_ptr<uint8_t[]> freed(BlockPtr(word));
        change = -static_cast<int64_t>(HllBlock::Bytes(nb));
        word = 0;
      } else {
        word &= ~kHllMode;
      }
      StoreAt<uint64_t>(state + kHeap, word);
      return change + AddExact(layout, state, k, k, value_hash, word);
    }
    if ((word & kDense) != 0) {
      HllBlock(BlockPtr(word), nb).Advance(SlotOf(newest, nb), static_cast<uint32_t>(gap));
    } else {
      SparseHll(BlockPtr(word)).Advance(SlotOf(newest, nb), static_cast<uint32_t>(gap), nb);
    }
  } else if (k <= newest - nb) {
    return 0;  // older than the window ending at the newest bucket
  }
  const uint32_t slot = SlotOf(k, nb);
  const Reg reg = RegOf(value_hash);
  if ((word & kDense) != 0) {
    HllBlock(BlockPtr(word), nb).Insert(slot, reg);
  } else if (!SparseHll(BlockPtr(word)).Insert(slot, reg)) {
    const size_t before = DistinctHeapBytes(layout, state);
    StoreAt<uint64_t>(state + kHeap, Outgrow(nb, word, slot, reg));
    return static_cast<int64_t>(DistinctHeapBytes(layout, state) - before);
  }
  return 0;
}

}  // namespace

int64_t DistinctAddAt(const DistinctLayout& layout, std::byte* state, int64_t k, int64_t newest,
                      uint64_t value_hash) {
  const uint64_t word = LoadAt<uint64_t>(state + kHeap);
  if ((word & kHllMode) != 0) return AddApproximate(layout, state, k, newest, value_hash, word);
  if (newest == kNoBucket || k > newest) {
    if (newest != kNoBucket) PurgeOlderThan(state, newest, k - layout.buckets + 1);
    newest = k;
  } else if (k <= newest - layout.buckets) {
    return 0;  // older than the window ending at the newest bucket
  }
  return AddExact(layout, state, k, newest, value_hash, word);
}

void DistinctAdd(const DistinctLayout& layout, std::byte* state, int64_t t_us,
                 uint64_t value_hash) {
  assert(layout.own_cursor && "DistinctAdd keeps the cursor in the state");
  const int64_t k = BucketOf(t_us, layout.step_us);
  const int64_t newest = LoadAt<int64_t>(state + kNewest);
  (void)DistinctAddAt(layout, state, k, newest, value_hash);
  if (newest == kNoBucket || k > newest) StoreAt<int64_t>(state + kNewest, k);
}

namespace {

// DistinctReadAt but for its usual read (an exact count at its newest bucket), out of line for
// the reason AddApproximate is.
[[gnu::noinline]] double ReadOther(const DistinctLayout& layout, const std::byte* state, int64_t k,
                                   int64_t newest) {
  const uint16_t nb = layout.buckets;
  if (newest == kNoBucket) return 0;
  const int64_t hi = std::min(k, newest);
  const int64_t lo = std::max(k, newest) - nb + 1;
  if (lo > hi) return 0;

  const uint64_t word = LoadAt<uint64_t>(state + kHeap);
  if ((word & kHllMode) == 0) {  // and k != newest: DistinctReadAt counted that read
    int n = 0;
    for (int i = 0; i < kExact; ++i) {
      const int64_t b = EntryBucket(newest, LoadAt<uint16_t>(state + kBuckets + 2 * i));
      n += (LoadAt<uint32_t>(state + kFps + 4 * i) != 0) & (b >= lo) & (b <= hi);
    }
    return n;
  }

  if ((word & kDense) == 0) {
    const SparseHll sparse(BlockPtr(word));
    if (k == newest) return sparse.LoadSums().Estimate();
    std::array<uint8_t, kRegs> merged{};
    sparse.Merge(lo, hi, newest, nb, merged.data());
    return Sums::Of(merged.data()).Estimate();
  }
  const HllBlock block(BlockPtr(word), nb);
  if (k == newest) return block.LoadSums().Estimate();  // the window is every stored bucket
  std::array<uint8_t, kRegs> merged{};
  uint32_t s = SlotOf(lo, nb);
  for (int64_t i = lo; i <= hi; ++i) {
    MaxInto(merged.data(), block.Row(s));
    if (++s == nb) s = 0;
  }
  return Sums::Of(merged.data()).Estimate();
}

}  // namespace

double DistinctReadAt(const DistinctLayout& layout, const std::byte* state, int64_t k,
                      int64_t newest) {
  // Entries older than the window ending at the newest bucket were purged when it advanced,
  // so a read at the newest bucket counts every entry.
  if (k == newest && newest != kNoBucket && (LoadAt<uint64_t>(state + kHeap) & kHllMode) == 0) {
    return kExact - std::popcount(EntriesEqualTo(state, 0));
  }
  return ReadOther(layout, state, k, newest);
}

double DistinctRead(const DistinctLayout& layout, const std::byte* state, int64_t t_us) {
  assert(layout.own_cursor && "DistinctRead needs the cursor in the state");
  return DistinctReadAt(layout, state, BucketOf(t_us, layout.step_us),
                        LoadAt<int64_t>(state + kNewest));
}

void DistinctDestroy(const DistinctLayout& layout, std::byte* state) {
  std::unique_ptr<uint8_t[]> owned(BlockPtr(LoadAt<uint64_t>(state + kHeap)));
  DistinctInit(layout, state);
}

size_t DistinctHeapBytes(const DistinctLayout& layout, const std::byte* state) {
  const uint64_t word = LoadAt<uint64_t>(state + kHeap);
  uint8_t* p = BlockPtr(word);
  if (p == nullptr) return 0;
  if ((word & kDense) != 0) return HllBlock::Bytes(layout.buckets);
  return SparseHll::Bytes(SparseHll(p).Capacity());
}

bool DistinctIsDense(const std::byte* state) {
  return (LoadAt<uint64_t>(state + kHeap) & kDense) != 0;
}

bool DistinctIsApproximate(const std::byte* state) {
  return (LoadAt<uint64_t>(state + kHeap) & kHllMode) != 0;
}

const std::byte* DistinctHeap(const std::byte* state) {
  return reinterpret_cast<const std::byte*>(BlockPtr(LoadAt<uint64_t>(state + kHeap)));
}

bool DistinctRestoreHeap(const DistinctLayout& layout, std::byte* state,
                         std::span<const std::byte> heap) {
  const uint16_t nb = layout.buckets;
  const uint64_t mode = LoadAt<uint64_t>(state + kHeap) & kHllMode;
  StoreAt<uint64_t>(state + kHeap, 0);
  if (heap.empty()) return mode == 0;
  // A sparse block starts with its tag, whose low byte no dense block can start with.
  const bool sparse = heap[0] == std::byte{0xFF};
  if (!sparse) {
    if (heap.size() != HllBlock::Bytes(nb)) return false;
    // A dense block kept by an entity counting exactly (version 2 kept them for reuse) would
    // only be cleared at its next overflow: it is not restored.
    if (mode == 0) return true;
    auto block = std::make_unique<uint8_t[]>(heap.size());
    std::memcpy(block.get(), heap.data(), heap.size());
    // Ranks are at most 57; the union and its sums follow from the rows: recounted rather
    // than trusted (a wrong zero count would index past the linear-counting table).
    for (size_t i = 0; i < size_t{nb} * kRegs; ++i) {
      if (block[i] > kMaxRank) return false;
    }
    HllBlock(block.get(), nb).RebuildUnion();
    StoreAt<uint64_t>(state + kHeap, reinterpret_cast<uintptr_t>(block.release()) | mode | kDense);
    return true;
  }
  if (heap.size() < SparseHll::kHeader || (heap.size() - SparseHll::kHeader) % 4 != 0) return false;
  uint32_t header[3];
  std::memcpy(header, heap.data(), sizeof header);
  const uint32_t count = header[1], capacity = header[2];
  if (header[0] != SparseHll::kSparseTag || count > capacity ||
      heap.size() != SparseHll::Bytes(capacity) || capacity < kExact + 1 || capacity % 8 != 0) {
    return false;
  }
  std::unique_ptr<uint8_t[]> block(SparseHll::Make(capacity));
  std::memcpy(block.get() + SparseHll::kHeader, heap.data() + SparseHll::kHeader,
              size_t{count} * 4);
  std::memcpy(block.get() + 4, &count, 4);
  const SparseHll b(block.get());
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t e = b.Entry(i);
    const uint32_t rank = e & 0xFF;
    if ((e >> 16) >= nb || rank == 0 || rank > kMaxRank) return false;
  }
  b.RecountSums();  // the sums follow from the entries: recounted rather than trusted
  StoreAt<uint64_t>(state + kHeap, reinterpret_cast<uintptr_t>(block.release()) | mode);
  return true;
}

}  // namespace vigil::features_internal
