// Measure-and-decide for issue 3: keep entity state in memory (with checkpoints), or in
// RocksDB (Debian's librocksdb-dev) so it may exceed memory? Both sides do what the feature
// stage does per entity of an event: find the entity's state block, change part of it, store
// it back; over 1M card-sized blocks (936 bytes, the card-fraud example's card state) with
// keys drawn uniformly, so most accesses miss every CPU cache. Also: RocksDB's own
// checkpoint (hard links of its files after a flush) against Vigil's snapshot of the same
// state (feature_engine_benchmark --benchmark_filter=Checkpoint).
//   build/release/bench/state_store_benchmark
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <benchmark/benchmark.h>

namespace {

constexpr size_t kBlob = 936;
constexpr uint64_t kEntities = 1'000'000;

std::string Dir(const char* name) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/vigil-bench-" + name;
}

uint64_t KeyOf(uint64_t i) { return i * 0x9e3779b97f4a7c15ULL; }

// The in-memory side: a hash index to a slot in one slab of fixed-size blocks, as the
// feature engine keeps them.
struct Slab {
  std::unordered_map<uint64_t, uint32_t> index;
  std::vector<std::byte> blocks;
  Slab() {
    index.reserve(kEntities);
    blocks.resize(kEntities * kBlob);
    for (uint64_t i = 0; i < kEntities; ++i) index.emplace(KeyOf(i), static_cast<uint32_t>(i));
  }
};

void BM_MemoryUpdate(benchmark::State& state) {
  static Slab slab;
  std::mt19937_64 rng(1);
  for (auto _ : state) {
    const uint64_t key = KeyOf(rng() % kEntities);
    std::byte* b = slab.blocks.data() + size_t{slab.index.find(key)->second} * kBlob;
    uint64_t count;
    std::memcpy(&count, b + 64, sizeof count);  // a window counter in the block
    ++count;
    std::memcpy(b + 64, &count, sizeof count);
    benchmark::DoNotOptimize(b);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MemoryUpdate);

struct Rocks {
  std::unique_ptr<rocksdb::DB> db;
  std::string path = Dir("rocksdb");
  explicit Rocks(size_t cache_mib) {
    std::filesystem::remove_all(path);
    rocksdb::Options o;
    o.create_if_missing = true;
    o.IncreaseParallelism(2);
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = rocksdb::NewLRUCache(cache_mib << 20);
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    rocksdb::DB* raw = nullptr;
    if (!rocksdb::DB::Open(o, path, &raw).ok()) std::abort();
    db.reset(raw);
    rocksdb::WriteOptions w;
    w.disableWAL = true;  // state is made durable by checkpoints, as in memory
    const std::string blob(kBlob, '\0');
    for (uint64_t i = 0; i < kEntities; ++i) {
      const uint64_t k = KeyOf(i);
      db->Put(w, rocksdb::Slice(reinterpret_cast<const char*>(&k), sizeof k), blob);
    }
    db->Flush(rocksdb::FlushOptions());
  }
  ~Rocks() {
    db.reset();
    std::filesystem::remove_all(path);
  }
};

// Get the block, change it, Put it back (WAL off). range(0): block cache in MiB — 1024 holds
// the whole state (as memory would), 64 holds a sixteenth (state larger than memory).
void BM_RocksUpdate(benchmark::State& state) {
  Rocks r(static_cast<size_t>(state.range(0)));
  std::mt19937_64 rng(1);
  rocksdb::ReadOptions ro;
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  rocksdb::PinnableSlice value;
  std::string blob;
  for (auto _ : state) {
    const uint64_t k = KeyOf(rng() % kEntities);
    const rocksdb::Slice key(reinterpret_cast<const char*>(&k), sizeof k);
    value.Reset();
    if (!r.db->Get(ro, r.db->DefaultColumnFamily(), key, &value).ok()) std::abort();
    blob.assign(value.data(), value.size());
    uint64_t count;
    std::memcpy(&count, blob.data() + 64, sizeof count);
    ++count;
    std::memcpy(blob.data() + 64, &count, sizeof count);
    r.db->Put(wo, key, blob);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RocksUpdate)->Arg(1024)->Arg(64);

// RocksDB's checkpoint of 1M entities: flush the memtable, hard-link the files.
void BM_RocksCheckpoint(benchmark::State& state) {
  Rocks r(1024);
  const std::string out = Dir("rocksdb-checkpoint");
  for (auto _ : state) {
    std::filesystem::remove_all(out);
    rocksdb::Checkpoint* c = nullptr;
    if (!rocksdb::Checkpoint::Create(r.db.get(), &c).ok()) std::abort();
    if (!c->CreateCheckpoint(out).ok()) std::abort();
    delete c;
  }
  std::filesystem::remove_all(out);
}
BENCHMARK(BM_RocksCheckpoint)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
