#include "vigil/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <exception>
#include <latch>
#include <limits>
#include <map>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "vigil/common/snapshot_file.h"
#include "vigil/common/thread_name.h"
#include "vigil/decode/decoder.h"
#include "vigil/engine/dedup.h"
#include "vigil/engine/internal/blocking_queue.h"
#include "vigil/features/feature_engine.h"
#include "vigil/sink/records.h"

namespace vigil::engine {

namespace {

using Clock = std::chrono::steady_clock;
using engine_internal::BlockingQueue;

// A batch carries up to batch_size records from the router, through every worker (each
// handles the events whose key hashes to it), to the writer. Batches are pooled.
struct Batch {
  uint64_t seq = 0;
  size_t n = 0;                                // accepted events in `events`
  std::vector<Event> events;                   // capacity batch_size; the first n are valid
  std::vector<uint16_t> owner;                 // worker of event i
  std::vector<uint32_t> line_end;              // end of event i's decision line in out[owner[i]]
  std::vector<uint8_t> alert;                  // event i's decision is an alert
  std::vector<std::string> out;                // per worker: its decisions, serialized
  std::vector<sink::RunSummary> worker_stats;  // per worker: decided, alerts, outcomes
  sink::RunSummary stats;                      // router: read, dead-lettered, duplicate, late
  std::string dead;                            // dead letters, serialized by the router
  std::string late;                            // late events, serialized by the router
  uint64_t end_offset = 0;                     // source position after this batch's last record
  uint64_t end_line = 1;
  int64_t watermark = 0;
  // Features (when the pipeline has some): values by event (stride = feature count); entity
  // keys by entity then event, and whether the event has that entity at all.
  std::vector<double> feats;
  std::vector<Hash128> entity_keys;
  std::vector<uint8_t> has_entity;
  // Entities held and bytes of state after this batch, by worker then entity type (index
  // worker * entity types + entity).
  std::vector<uint64_t> state_entities;
  std::vector<uint64_t> state_bytes;
  int phase = 0;                // 0: entity features; 1: decisions
  std::atomic<int> pending{0};  // workers still to finish this batch's phase
  // Checkpoint taken at the end of this batch (0: none): the router has saved its state,
  // each worker saves its shard after phase 1, the writer commits after writing the batch.
  uint64_t checkpoint = 0;
  std::shared_ptr<const decide::StageConfig> config;  // what the stages decide this batch by
  bool last = false;                                  // the router's final batch
  bool completed = false;                             // with `last`: the input was read to its end
  std::vector<std::string> checkpoint_error;          // per worker: why its shard was not saved
  // Partitioned sources: the rewind epoch the batch belongs to (the writer drops batches of
  // an older one), the source positions after it, and records replayed into it.
  uint64_t epoch = 0;
  std::vector<source::PartitionPosition> positions;
  uint64_t replayed = 0;
  // Partitions whose state starts afresh in this batch: before its events, each worker drops
  // the partition's entities, then loads its share of the restored ones (if any).
  struct PartitionReset {
    uint16_t tag;
    std::shared_ptr<const std::string> restored;  // a snapshot (RecordSource::RestoredState)
  };
  std::vector<PartitionReset> resets;
  // Partitions snapshotted at the end of this batch: the router's part of each here, each
  // worker's part (its entities of the partition) in worker_parts[worker][i].
  struct Snapshot {
    source::PartitionPosition at;
    std::string router;
  };
  std::vector<Snapshot> snapshots;
  std::vector<std::vector<std::string>> worker_parts;
  std::vector<double> snapshot_seconds;  // per worker: how long its parts took (the pause)
  // When the router took the batch to fill, just after reading its records: the start of
  // the ingest-to-decision latency the writer observes.
  Clock::time_point read_at{};

  void Reset() {
    n = 0;
    for (auto& o : out) o.clear();
    for (auto& w : worker_stats) w = {};
    stats = {};
    phase = 0;
    dead.clear();
    late.clear();
    checkpoint = 0;
    last = false;
    completed = false;
    for (auto& e : checkpoint_error) e.clear();
    positions.clear();
    replayed = 0;
    resets.clear();
    snapshots.clear();
    std::fill(snapshot_seconds.begin(), snapshot_seconds.end(), 0.0);
  }
};

}  // namespace

struct Engine::Impl {
  const config::Pipeline& pipeline;
  decide::StageFactory* factory;
  RunOptions options;
  int workers = 1;
  size_t batch_size = 1024;

  std::vector<std::unique_ptr<Batch>> pool_storage;
  BlockingQueue<Batch*> free_batches{1 << 16};
  std::vector<std::unique_ptr<BlockingQueue<Batch*>>> work_queues;
  BlockingQueue<Batch*> done{1 << 16};
  std::atomic<bool> router_finished{false};
  std::atomic<uint64_t> dispatched{0};
  std::atomic<bool> abort{false};
  std::exception_ptr router_error;
  // The first worker failure (Worker): once set, no batch is written.
  std::atomic<bool> worker_failed{false};
  std::mutex worker_error_mu;
  std::string worker_error;
  // Rewinds (partitioned sources): the router bumps `epoch` and waits until the writer has
  // aborted what it had not committed and moved to it (`writer_epoch`); the writer drops
  // batches of older epochs. The writer asks for a rewind when a commit had to be aborted.
  std::atomic<uint64_t> epoch{0};
  std::atomic<uint64_t> writer_epoch{0};
  std::atomic<bool> rewind_requested{false};
  // Drains (partitioned sources, before a rebalance revokes partitions): the router asks the
  // writer to commit every batch dispatched so far (`drain_target` batches) and waits for the
  // answer: 1 committed, 2 not (the writer then also asks for a rewind).
  std::atomic<bool> drain_asked{false};
  std::atomic<uint64_t> drain_target{0};
  std::atomic<int> drain_answer{0};

  size_t feature_count = 0;
  size_t entity_count = 0;
  std::vector<std::string> feature_names;
  sink::DecisionWriter decisions;  // how workers write decisions

  Impl(const config::Pipeline& p, decide::StageFactory* f, RunOptions o)
      : pipeline(p), factory(f), options(std::move(o)) {
    if (options.features && !options.features->empty()) {
      feature_count = options.features->features.size();
      entity_count = options.features->entities.size();
      for (const auto& fs : options.features->features) feature_names.push_back(fs.name);
    }
    sink::DecisionFormat format;
    format.include_event = options.include_event;
    if (options.emit_features) format.feature_names = feature_names;
    format.tokenizer = options.tokenizer;
    format.tokenized = pipeline.tokenized;
    if (!format.tokenizer && std::find(pipeline.tokenized.begin(), pipeline.tokenized.end(),
                                       true) != pipeline.tokenized.end()) {
      throw std::invalid_argument(
          "the pipeline tokenizes fields (privacy.tokenize) but the run "
          "has no tokenizer: refusing to write them as they are");
    }
    decisions = sink::DecisionWriter(pipeline, std::move(format));
    workers = options.workers > 0 ? options.workers
              : pipeline.workers > 0
                  ? pipeline.workers
                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    workers = std::min(workers, 1024);
    batch_size = pipeline.batch_size;
    const size_t pool = pipeline.batches_in_flight;
    for (size_t i = 0; i < pool; ++i) {
      auto b = std::make_unique<Batch>();
      b->events.resize(batch_size);
      b->owner.resize(batch_size);
      b->line_end.resize(batch_size);
      b->alert.resize(batch_size);
      b->out.resize(static_cast<size_t>(workers));
      b->worker_stats.resize(static_cast<size_t>(workers));
      b->feats.resize(batch_size * feature_count);
      b->entity_keys.resize(batch_size * entity_count);
      b->has_entity.resize(batch_size * entity_count);
      b->state_entities.resize(static_cast<size_t>(workers) * entity_count);
      b->state_bytes.resize(static_cast<size_t>(workers) * entity_count);
      b->checkpoint_error.resize(static_cast<size_t>(workers));
      b->worker_parts.resize(static_cast<size_t>(workers));
      b->snapshot_seconds.resize(static_cast<size_t>(workers));
      free_batches.Push(b.get());
      pool_storage.push_back(std::move(b));
    }
    for (int w = 0; w < workers; ++w) {
      work_queues.push_back(std::make_unique<BlockingQueue<Batch*>>(pool + 1));
    }
  }

  bool Stopping() const {
    return abort.load(std::memory_order_relaxed) ||
           (options.stop && options.stop->load(std::memory_order_relaxed));
  }

  void Dispatch(Batch* b, uint64_t& seq) {
    b->seq = seq++;
    b->pending.store(workers, std::memory_order_release);
    for (auto& q : work_queues) q->Push(b);
    dispatched.store(seq, std::memory_order_release);
  }

  void Router(source::RecordSource& src) {
    NameThisThread("vigil-router");
    uint64_t seq = 0;
    try {
      RouterLoop(src, seq);
    } catch (const std::bad_alloc&) {
      router_error = std::make_exception_ptr(std::runtime_error(
          "out of memory while reading the input (decoding, deduplicating, holding events for "
          "the watermark, restoring Kafka partition state); give the process more memory or "
          "lower dedup.max_ids (per partition on Kafka)"));
    } catch (...) {
      router_error = std::current_exception();
    }
    router_finished.store(true, std::memory_order_release);
    done.Push(nullptr);  // wakes the writer
  }

  void RouterLoop(source::RecordSource& src, uint64_t& seq) {
    const std::unique_ptr<decode::Decoder> decoder = decode::MakeDecoder(pipeline);
    RouterState st(pipeline);
    src.OnRewind([this] { AwaitRewind(); });
    src.OnDrain([this] { return AwaitDrain(); });
    src.StopWhen([this] { return abort.load(std::memory_order_relaxed); });
    if (options.restore) {
      st.Load(RouterFile(options.restore->seq));
      if (!st.header.empty()) ReadHeader(*decoder, src, st.header, 1);
    }
    Event scratch;
    std::vector<source::Record> records;
    std::vector<int32_t> released;
    const uint64_t limit = options.max_events;
    const Clock::time_point wall0 = Clock::now();
    int64_t time0 = INT64_MIN;
    uint64_t checkpoint_seq = options.restore ? options.restore->seq : 0;
    Clock::time_point next_checkpoint =
        wall0 + std::chrono::microseconds(options.checkpoint_interval_us);
    Clock::time_point next_snapshot = wall0;  // the next turn; each partition has its due time

    while (!Stopping()) {
      if (rewind_requested.exchange(false)) src.Rewind();
      size_t want = batch_size;
      if (limit > 0) {
        if (st.read_total >= limit) break;
        want = static_cast<size_t>(std::min<uint64_t>(want, limit - st.read_total));
      }
      // Partitions released by the calls so far: their last records are in earlier batches,
      // so freeing their state ahead of this batch's records loses nothing.
      src.TakeReleased(released);
      if (!src.Next(records, want)) break;
      Batch* b = NewBatch();
      for (const int32_t slot : released) Release(st, *b, slot);
      for (const source::Record& r : records) {
        if (decoder->WantsHeader()) {
          ReadHeader(*decoder, src, r.text, r.line);
          st.header = r.text;
          continue;
        }
        // The partition's state is this assignment's from its first record on, decided or
        // not: a snapshot taken after a record that is only dead-lettered must not carry an
        // older assignment's state (or none) under the new offset.
        if (r.partition >= 0) PartitionOf(st, r, *b, src);
        if (r.replay) {
          Replay(st, *b, *decoder, src, r, scratch);
          continue;
        }
        ++st.read_total;
        const sink::Position at{src.NameOf(r), r.line, r.offset};
        if (r.oversize) {
          DeadLetter(*b, at, decode::Errc::kOversize, "",
                     fmt::format("record is longer than {} bytes (input.max_record_bytes)",
                                 pipeline.input.max_record_bytes),
                     r.text);
          continue;
        }
        decode::DecodeStatus status = decoder->Decode(r.text, scratch);
        if (!status.ok()) {
          DeadLetter(*b, at, status.code, status.field, status.message, r.text);
          continue;
        }
        // Counted only now: pacing below may close this batch before the record, and a
        // batch's counters must cover exactly the records before its end offset.
        if (options.speed > 0) {
          // Paced replay: hold each event until its event time, scaled, has come. The batch
          // so far goes out first so decisions are not held back by the wait.
          if (time0 == INT64_MIN) time0 = scratch.time_us;
          const auto due =
              wall0 + std::chrono::microseconds(static_cast<int64_t>(
                          static_cast<double>(scratch.time_us - time0) / options.speed));
          if (due > Clock::now()) {
            b->end_offset = r.offset;
            b->end_line = r.line;
            b->watermark = st.Watermark();
            src.Positions(b->positions);
            Dispatch(b, seq);
            b = NewBatch();
            std::this_thread::sleep_until(due);
            b->read_at = Clock::now();  // the wait is pacing, not latency
          }
        }
        ++b->stats.read;
        PartitionState* ps = r.partition >= 0 ? &PartitionOf(st, r, *b, src) : nullptr;
        Deduplicator& dedup = ps ? ps->dedup : st.dedup;
        const Hash128 id = HashId(scratch.Id());
        if (dedup.Seen(id)) {
          ++b->stats.duplicate;
          continue;
        }
        EventClock& clock = ps ? ps->clock : st.clock;
        if (scratch.time_us < clock.watermark) {
          ++b->stats.late;
          sink::AppendLate(b->late, at, scratch, clock.watermark, r.text);
          continue;
        }
        dedup.Insert(id, scratch.time_us);
        clock.Advance(scratch.time_us, pipeline.allowed_lateness_us);
        scratch.record = st.read_total;
        scratch.replay = false;
        scratch.source_time_ms = r.timestamp_ms;
        if (!pipeline.event_time_order) {
          Accept(*b, scratch, TagOf(r));
          continue;
        }
        st.held.Hold(scratch);
        ReleaseHeld(st, b, seq, /*all=*/false);
      }
      b->end_offset = src.Position();
      b->end_line = src.NextLine();
      b->watermark = st.Watermark();
      src.Positions(b->positions);
      if (options.snapshot_interval_us > 0 && !b->positions.empty() &&
          Clock::now() >= next_snapshot) {
        // One partition a turn, turns at most every interval / partitions: a turn pauses the
        // workers (and fills the transaction) for one partition's state, not all of it.
        if (SnapshotDue(st, *b)) {
          next_snapshot = Clock::now() + std::chrono::microseconds(options.snapshot_interval_us) /
                                             static_cast<int64_t>(b->positions.size());
        }
      }
      if (options.checkpoints && Clock::now() >= next_checkpoint) {
        b->checkpoint = ++checkpoint_seq;
        st.Save(RouterFile(b->checkpoint, true));
        next_checkpoint = Clock::now() + std::chrono::microseconds(options.checkpoint_interval_us);
      }
      Dispatch(b, seq);
    }
    if (abort.load()) return;
    // The last batch: at the end of input (or of --events) it carries every event still held,
    // as nothing more will arrive; a stopped run keeps them in its checkpoint instead.
    Batch* b = NewBatch();
    if (!Stopping()) ReleaseHeld(st, b, seq, /*all=*/true);
    b->end_offset = src.Position();
    b->end_line = src.NextLine();
    b->watermark = st.Watermark();
    src.Positions(b->positions);
    b->last = true;
    b->completed = !Stopping();
    if (options.checkpoints) {
      b->checkpoint = ++checkpoint_seq;
      st.Save(RouterFile(b->checkpoint, true));
    }
    Dispatch(b, seq);
  }

  // An empty batch from the pool, stamped with the stages' current configuration.
  Batch* NewBatch() {
    Batch* b = free_batches.Pop();
    b->Reset();
    b->read_at = Clock::now();
    b->config = factory->Current();
    b->epoch = epoch.load(std::memory_order_relaxed);
    return b;
  }

  // On the router thread, when the source's next records do not continue the ones before
  // (a rebalance, or a rewind after an aborted commit): everything in flight belongs to the
  // old epoch. Returns once the writer has aborted what it had not committed, so nothing of
  // the old epoch can be committed after the partitions move on.
  void AwaitRewind() {
    const uint64_t e = epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
    done.Push(nullptr);  // wakes the writer
    while (writer_epoch.load(std::memory_order_acquire) < e && !abort.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // On the router thread, inside the source's Next, before a rebalance revokes partitions:
  // every batch dispatched so far is decided and committed (true), or could not be (false;
  // what was not committed is then dropped by the rewind the caller does).
  bool AwaitDrain() {
    drain_answer.store(0, std::memory_order_relaxed);
    drain_target.store(dispatched.load(std::memory_order_acquire), std::memory_order_relaxed);
    drain_asked.store(true, std::memory_order_release);
    done.Push(nullptr);  // wakes the writer
    int answer = 0;
    while ((answer = drain_answer.load(std::memory_order_acquire)) == 0 && !Stopping()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return answer == 1;
  }

  // The tag of a record's partition's entities (0: not partitioned).
  static uint16_t TagOf(const source::Record& r) {
    if (r.partition < 0) return 0;
    if (r.partition >= 0xffff) {
      throw std::runtime_error("more than 65534 partitions in one process are not supported");
    }
    return static_cast<uint16_t>(r.partition + 1);
  }

  // Path of a checkpoint's router file; `begin`: the checkpoint's directory is new.
  std::string RouterFile(uint64_t checkpoint, bool begin = false) const {
    const std::string dir =
        begin ? options.checkpoints->Begin(checkpoint) : options.checkpoints->PathOf(checkpoint);
    return dir + "/router.bin";
  }
  std::string ShardFile(uint64_t checkpoint, int worker) const {
    return fmt::format("{}/shard-{}.bin", options.checkpoints->PathOf(checkpoint), worker);
  }

  // Events waiting for the watermark (lateness.order: event_time), released oldest first
  // (ties in arrival order). Held events live in a pool that keeps their buffers, so holding
  // allocates only while the pool grows to the number of events within the allowed lateness.
  class Held {
   public:
    void Hold(Event& e) {
      uint32_t slot;
      if (free_.empty()) {
        slot = static_cast<uint32_t>(pool_.size());
        pool_.emplace_back();
      } else {
        slot = free_.back();
        free_.pop_back();
      }
      std::swap(pool_[slot], e);
      heap_.push_back({pool_[slot].time_us, seq_++, slot});
      std::push_heap(heap_.begin(), heap_.end(), Later);
    }
    // An event is ready once it is older than the watermark: every event still to come is
    // either late or no older than the watermark, so none can precede it.
    bool Ready(int64_t watermark) const { return !heap_.empty() && heap_.front().time < watermark; }
    bool Empty() const { return heap_.empty(); }
    void Release(Impl& impl, Batch& b) {
      std::pop_heap(heap_.begin(), heap_.end(), Later);
      const uint32_t slot = heap_.back().slot;
      heap_.pop_back();
      impl.Accept(b, pool_[slot]);  // the batch's old event takes the slot
      free_.push_back(slot);
    }

    // Checkpoints: the held events with their release order.
    void Save(SnapshotWriter& out) const {
      out.Put(seq_);
      out.Put<uint64_t>(heap_.size());
      for (const Entry& e : heap_) {
        out.Put(e.time);
        out.Put(e.seq);
        PutEvent(out, pool_[e.slot]);
      }
    }
    void Load(SnapshotReader& in) {
      seq_ = in.Get<uint64_t>();
      const auto n = in.Get<uint64_t>();
      for (uint64_t i = 0; i < n; ++i) {
        const auto time = in.Get<int64_t>();
        const auto seq = in.Get<uint64_t>();
        const auto slot = static_cast<uint32_t>(pool_.size());
        pool_.emplace_back();
        GetEvent(in, pool_.back());
        heap_.push_back({time, seq, slot});
      }
      std::make_heap(heap_.begin(), heap_.end(), Later);
    }

   private:
    struct Entry {
      int64_t time;
      uint64_t seq;
      uint32_t slot;
    };
    static bool Later(const Entry& a, const Entry& b) {
      return a.time != b.time ? a.time > b.time : a.seq > b.seq;
    }
    std::vector<Event> pool_;
    std::vector<uint32_t> free_;
    std::vector<Entry> heap_;
    uint64_t seq_ = 0;
  };

  // Event time as one input (or one partition) has seen it: the newest event time and the
  // watermark, which trails it by the allowed lateness and never moves back.
  struct EventClock {
    int64_t max_time = INT64_MIN;
    int64_t watermark = INT64_MIN;

    void Advance(int64_t time_us, int64_t lateness_us) {
      if (time_us <= max_time) return;
      max_time = time_us;
      watermark = std::max(watermark, max_time - lateness_us);
    }
  };

  // A partition's part of the router's state (partitioned sources): the salt of the state it
  // belongs to, its event clock and the ids it has accepted. Kept per partition so that a
  // partition's late events and duplicates do not depend on how its records interleave with
  // other partitions' (a replay meets the same), and so that it can be snapshotted alone.
  struct PartitionState {
    uint64_t salt = 0;
    EventClock clock;
    Deduplicator dedup{0, 0};
    // The last snapshot's turn, or when this assignment started; a snapshot is due an
    // interval later, if the partition has moved on from `snapshot_offset` by then.
    Clock::time_point snapshotted{};
    int64_t snapshot_offset = -1;
  };

  // What the router knows beyond the current batch: it is exactly what a checkpoint saves.
  struct RouterState {
    explicit RouterState(const config::Pipeline& p) : dedup(p.dedup_horizon_us, p.dedup_max_ids) {}
    Deduplicator dedup;
    Held held;
    uint64_t read_total = 0;
    EventClock clock;
    std::vector<PartitionState> partitions;  // by the source's slot
    std::string header;                      // the CSV header line, re-read on restore

    // The watermark the run reports: the input's, or the oldest partition's.
    int64_t Watermark() const {
      if (partitions.empty()) return clock.watermark;
      int64_t w = INT64_MAX;
      for (const PartitionState& p : partitions) {
        if (p.clock.max_time != INT64_MIN) w = std::min(w, p.clock.watermark);
      }
      return w == INT64_MAX ? INT64_MIN : w;
    }

    void Save(const std::string& path) const {
      SnapshotWriter out(path, "router", 1);
      out.Put(read_total);
      out.Put(clock.max_time);
      out.Put(clock.watermark);
      out.String(header);
      dedup.Save(out);
      held.Save(out);
      out.Finish();
    }
    void Load(const std::string& path) {
      SnapshotReader in(path, "router", 1);
      read_total = in.Get<uint64_t>();
      clock.max_time = in.Get<int64_t>();
      clock.watermark = in.Get<int64_t>();
      header = in.String();
      dedup.Load(in);
      held.Load(in);
      if (!in.AtEnd()) in.Fail("unexpected bytes after the router state");
    }
  };

  // Moves held events into batch `b` in event-time order, dispatching it whenever it fills:
  // the events the watermark has passed, or (`all`, at the end of input) every one.
  void ReleaseHeld(RouterState& st, Batch*& b, uint64_t& seq, bool all) {
    while (all ? !st.held.Empty() : st.held.Ready(st.clock.watermark)) {
      if (b->n == batch_size) {
        b->watermark = st.clock.watermark;
        Dispatch(b, seq);
        b = NewBatch();
      }
      st.held.Release(*this, *b);
    }
  }

  // A record the source replays only to rebuild state: its decision, dead letter or late
  // record was committed by an earlier run, so it is neither counted nor written; it updates
  // dedup ids, the event clock and (as an event marked `replay`) the entities' features.
  void Replay(RouterState& st, Batch& b, decode::Decoder& decoder, source::RecordSource& src,
              const source::Record& r, Event& scratch) {
    ++b.replayed;
    if (r.oversize || !decoder.Decode(r.text, scratch).ok()) return;
    PartitionState& ps = PartitionOf(st, r, b, src);
    const Hash128 id = HashId(scratch.Id());
    if (ps.dedup.Seen(id)) return;
    if (scratch.time_us < ps.clock.watermark) return;
    ps.dedup.Insert(id, scratch.time_us);
    ps.clock.Advance(scratch.time_us, pipeline.allowed_lateness_us);
    scratch.replay = true;
    if (b.n == batch_size) {  // a batch holds as many records as one Next gives, so never
      throw std::logic_error("a replayed record does not fit its batch");
    }
    Accept(b, scratch, TagOf(r));
  }

  // The state of record r's partition. The first record under a new salt (the partition was
  // assigned, or rewound) starts it afresh: from the snapshot the source restored the
  // partition with, if any, else empty; the workers learn it in-band (Batch::resets), before
  // they see the record, so entities of the old state never meet the new one.
  PartitionState& PartitionOf(RouterState& st, const source::Record& r, Batch& b,
                              source::RecordSource& src) {
    const auto p = static_cast<size_t>(r.partition);
    if (p >= st.partitions.size()) st.partitions.resize(p + 1);
    PartitionState& ps = st.partitions[p];
    if (ps.salt == r.salt) return ps;
    ps.salt = r.salt;
    ps.snapshotted = Clock::now();
    ps.snapshot_offset = -1;
    ps.clock = EventClock{};
    ps.dedup = Deduplicator(pipeline.dedup_horizon_us, pipeline.dedup_max_ids);
    std::shared_ptr<const std::string> restored = src.RestoredState(r.partition);
    if (restored) {
      SnapshotReader in(*restored, src.NameOf(r) + " state snapshot", "pstate", 1);
      const auto router = in.Take(in.Get<uint64_t>());
      SnapshotReader part(AsText(router), in.Path(), "prouter", 1);
      ps.clock.max_time = part.Get<int64_t>();
      ps.clock.watermark = part.Get<int64_t>();
      ps.dedup.Load(part);
      if (!part.AtEnd()) part.Fail("unexpected bytes after the router's state");
    }
    if (feature_count > 0) b.resets.push_back({TagOf(r), std::move(restored)});
    return ps;
  }

  // Forgets the state of a partition the source no longer reads (a rebalance moved it to
  // another process): its clock stops holding the reported watermark back, its ids and (in
  // band, through batch b) its entities are freed.
  void Release(RouterState& st, Batch& b, int32_t slot) {
    const auto p = static_cast<size_t>(slot);
    if (p >= st.partitions.size() || st.partitions[p].salt == 0) return;
    st.partitions[p] = PartitionState{};
    if (feature_count > 0) b.resets.push_back({static_cast<uint16_t>(slot + 1), nullptr});
  }

  // If a partition in b.positions (those with decided records in this assignment) is due for
  // a snapshot (an interval since its last, or since its assignment began, and records since
  // then), takes the router's part of one, as of the end of batch b, for the one waiting
  // longest; the workers add theirs. Returns whether it took one.
  bool SnapshotDue(RouterState& st, Batch& b) {
    const Clock::time_point now = Clock::now();
    const auto interval = std::chrono::microseconds(options.snapshot_interval_us);
    const source::PartitionPosition* due = nullptr;
    for (const source::PartitionPosition& at : b.positions) {
      if (at.slot < 0 || static_cast<size_t>(at.slot) >= st.partitions.size()) continue;
      const PartitionState& ps = st.partitions[static_cast<size_t>(at.slot)];
      if (ps.salt == 0 || at.next_offset == ps.snapshot_offset || now < ps.snapshotted + interval) {
        continue;
      }
      if (!due || ps.snapshotted < st.partitions[static_cast<size_t>(due->slot)].snapshotted) {
        due = &at;
      }
    }
    if (!due) return false;
    PartitionState& ps = st.partitions[static_cast<size_t>(due->slot)];
    ps.snapshotted = now;
    ps.snapshot_offset = due->next_offset;
    Batch::Snapshot snap{*due, {}};
    SnapshotWriter out(&snap.router, "prouter", 1);
    out.Put(ps.clock.max_time);
    out.Put(ps.clock.watermark);
    ps.dedup.Save(out);
    out.Finish();
    b.snapshots.push_back(std::move(snap));
    return true;
  }

  static std::string_view AsText(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }

  static void PutEvent(SnapshotWriter& out, const Event& e) {
    out.Put(e.record);
    out.Put(e.offset);
    out.Put(e.time_us);
    out.Put(e.key_hash);
    out.Put(e.id_index);
    out.Put(e.key_index);
    out.Put<uint64_t>(e.values.size());
    out.Bytes(e.values.data(), e.values.size() * sizeof(Value));
    out.String(e.arena);
  }
  static void GetEvent(SnapshotReader& in, Event& e) {
    e.record = in.Get<uint64_t>();
    e.offset = in.Get<uint64_t>();
    e.time_us = in.Get<int64_t>();
    e.key_hash = in.Get<uint64_t>();
    e.id_index = in.Get<uint32_t>();
    e.key_index = in.Get<uint32_t>();
    const auto n = in.Get<uint64_t>();
    if (n > (1u << 20) || e.id_index >= n || e.key_index >= n) in.Fail("a held event is damaged");
    const auto values = in.Take(n * sizeof(Value));
    e.values.resize(n);
    std::memcpy(e.values.data(), values.data(), values.size());
    e.arena = in.String();
    for (const Value& v : e.values) {
      if (v.kind == Value::Kind::kString && size_t{v.s.off} + v.s.len > e.arena.size()) {
        in.Fail("a held event's string lies outside its arena");
      }
    }
  }

  // Moves `scratch` into the batch (its old event becomes the next scratch), with its worker
  // and the hashes of its entity keys (tagged with its partition, if any).
  void Accept(Batch& b, Event& scratch, uint16_t tag = 0) {
    const size_t i = b.n++;
    b.owner[i] = static_cast<uint16_t>(scratch.key_hash % static_cast<uint64_t>(workers));
    std::fill_n(b.feats.begin() + static_cast<std::ptrdiff_t>(i * feature_count), feature_count,
                std::numeric_limits<double>::quiet_NaN());
    for (size_t en = 0; en < entity_count; ++en) {
      const Value& v = scratch.values[static_cast<size_t>(options.features->entities[en].field)];
      const bool has = v.kind == Value::Kind::kString && v.s.len > 0;
      b.has_entity[en * batch_size + i] = has;
      if (has) {
        const Hash128 key = HashId(scratch.Str(v));
        b.entity_keys[en * batch_size + i] = tag ? WithTag(key, tag) : key;
      }
    }
    std::swap(b.events[i], scratch);
  }

  void ReadHeader(decode::Decoder& decoder, source::RecordSource& src, std::string_view text,
                  uint64_t line) {
    decode::DecodeStatus st = decoder.ReadHeader(text);
    if (!st.ok()) {
      throw std::runtime_error(fmt::format("{}:{}: {}", src.Name(), line, st.message));
    }
  }

  static void DeadLetter(Batch& b, const sink::Position& at, decode::Errc code,
                         std::string_view field, std::string_view message, std::string_view raw) {
    ++b.stats.read;
    ++b.stats.dead_lettered;
    ++b.stats.dead_by_reason[static_cast<size_t>(code)];
    sink::AppendDeadLetter(b.dead, at, code, field, message, raw);
  }

  static void CountHit(sink::RunSummary& stats, std::string_view id) {
    const auto it = stats.rule_hits.find(id);
    if (it != stats.rule_hits.end()) {
      ++it->second;
    } else {
      stats.rule_hits.emplace(id, 1);
    }
  }

  static int OwnerOf(uint64_t hash, int workers) {
    return static_cast<int>(hash % static_cast<uint64_t>(workers));
  }

  void Worker(int me, BlockingQueue<Batch*>& queue) {
    NameThisThread(fmt::format("vigil-worker-{}", me));
    std::vector<std::unique_ptr<decide::Stage>> stages = factory->MakeStages(me);
    std::unique_ptr<features::FeatureEngine> fe;
    if (feature_count > 0)
      fe = std::make_unique<features::FeatureEngine>(pipeline, *options.features);
    decide::Decision decision;
    const bool serialize = serialize_decisions;
    const size_t fc = feature_count;
    int64_t newest = INT64_MIN;
    uint64_t configured = 0;    // version of the configuration the stages have
    std::vector<uint32_t> own;  // phase 1: the batch's events whose entity this worker owns
    own.reserve(batch_size);
    if (fe && options.restore) {
      // Every worker reads every saved shard and keeps the entities it owns now: the saved
      // run may have had another number of workers.
      const auto mine = [&](const Hash128& key) {
        return OwnerOf(key.lo, workers) == me ? std::optional(key) : std::nullopt;
      };
      for (int w = 0; w < options.restore->shards; ++w) {
        try {
          SnapshotReader in(ShardFile(options.restore->seq, w), "shard", 1);
          newest = std::max(newest, in.Get<int64_t>());
          fe->Load(in, mine);
          if (!in.AtEnd()) in.Fail("unexpected bytes after the feature state");
        } catch (const std::exception& e) {
          restore_error[static_cast<size_t>(me)] = e.what();
          break;
        }
      }
    }
    restored->count_down();
    const auto phase1 = [&](Batch* b) {
      if (!b->resets.empty()) ResetPartitions(*b, *fe, me);
      // Phase 1: every worker updates the entities it owns, for every event of the batch,
      // in order; each entity's features land in their own slots of the event's row. One run
      // per entity type, of this worker's updates only (FeatureEngine::UpdateEntities fetches
      // the state of the updates ahead: with two workers the batch's next event is the other
      // worker's half the time).
      for (size_t en = 0; en < entity_count; ++en) {
        const size_t base = en * batch_size;
        own.clear();
        for (size_t i = 0; i < b->n; ++i) {
          if (b->has_entity[base + i] && OwnerOf(b->entity_keys[base + i].lo, workers) == me)
            own.push_back(static_cast<uint32_t>(i));
        }
        fe->UpdateEntities(static_cast<int>(en), own, b->entity_keys.data() + base,
                           b->events.data(), b->feats);
      }
      for (size_t i = 0; i < b->n; ++i) newest = std::max(newest, b->events[i].time_us);
      // Idle entities are swept by the watermark, not the newest time: every event still to
      // be accepted is at least as new as it, so an entity swept now would have been reset
      // by its next event anyway, and features do not depend on how inputs (or partitions)
      // interleave. (The newest time runs ahead of a partition that lags the others.)
      if (b->watermark != INT64_MIN) fe->EvictIdle(b->watermark, 64);
      for (size_t en = 0; en < entity_count; ++en) {
        const size_t at = static_cast<size_t>(me) * entity_count + en;
        b->state_entities[at] = fe->EntityCount(static_cast<int>(en));
        b->state_bytes[at] = fe->StateBytes(static_cast<int>(en));
      }
      if (b->checkpoint != 0) {
        try {
          SnapshotWriter out(ShardFile(b->checkpoint, me), "shard", 1);
          out.Put(newest);
          fe->Save(out);
          out.Finish();
        } catch (const std::exception& e) {
          b->checkpoint_error[static_cast<size_t>(me)] = e.what();
        }
      }
      if (!b->snapshots.empty()) SnapshotPartitions(*b, *fe, me);
    };
    const auto phase2 = [&](Batch* b) {
      if (b->config && b->config->version != configured) {
        for (auto& s : stages) s->Configure(*b->config);
        configured = b->config->version;
      }
      std::string& out = b->out[static_cast<size_t>(me)];
      sink::RunSummary& stats = b->worker_stats[static_cast<size_t>(me)];
      for (size_t i = 0; i < b->n; ++i) {
        if (b->owner[i] != me) continue;
        const Event& e = b->events[i];
        if (e.replay) {  // state only: its decision was committed by an earlier run
          b->line_end[i] = static_cast<uint32_t>(out.size());
          b->alert[i] = 0;
          continue;
        }
        std::span<double> feats(b->feats.data() + i * fc, fc);
        if (fe) fe->Derive(e, feats);
        decision.Reset();
        for (auto& s : stages) s->Process(e, feats, decision);
        ++stats.decided;
        ++stats.by_outcome[static_cast<size_t>(decision.outcome)];
        for (const decide::Reason& r : decision.reasons()) CountHit(stats, r.code);
        for (std::string_view id : decision.shadow) CountHit(stats, id);
        if (decision.model_decile >= 0)
          ++stats.model_deciles[static_cast<size_t>(decision.model_decile)];
        if (!std::isnan(decision.challenger_score)) {
          ++stats.challenger_scored;
          stats.challenger_abs_diff += std::fabs(decision.challenger_score - decision.model_score);
          if (decision.challenger_alert >= 0 &&
              (decision.challenger_alert == 1) != decision.IsAlert()) {
            ++stats.challenger_disagree;
          }
        }
        b->alert[i] = decision.IsAlert();
        if (decision.IsAlert()) ++stats.alerts;
        if (serialize) {
          decisions.Append(out, e, decision, feats);
          b->line_end[i] = static_cast<uint32_t>(out.size());
        }
      }
    };
    // A worker that fails (out of memory, say) decides nothing more but keeps passing batches
    // on, so no thread waits for it; the writer writes nothing from the failure on (no batch
    // half decided), and the run ends with the error.
    while (Batch* b = queue.Pop()) {
      const bool first = b->phase == 0 && fe;
      if (!worker_failed.load(std::memory_order_acquire)) {
        try {
          if (first) {
            phase1(b);
          } else {
            phase2(b);
          }
        } catch (const std::bad_alloc&) {
          FailWorker(fmt::format(
              "out of memory on worker {} ({} feature state: {} entities, {} bytes); give the "
              "process more memory, shorten the entities' ttl, or spread the input over more "
              "processes (docs/features.md)",
              me, first ? "while updating its" : "with its", fe ? fe->EntityCount() : 0,
              fe ? fe->StateBytes() : 0));
        } catch (const std::exception& e) {
          FailWorker(fmt::format("worker {}: {}", me, e.what()));
        }
      }
      if (b->pending.fetch_sub(1, std::memory_order_acq_rel) != 1) continue;
      if (first) {  // the last worker through phase 1 sends the batch round again for phase 2
        b->phase = 1;
        b->pending.store(workers, std::memory_order_release);
        for (auto& q : work_queues) q->Push(b);
      } else {
        done.Push(b);
      }
    }
  }

  // Records the first worker failure and stops the run (see Worker).
  void FailWorker(std::string message) {
    {
      const std::lock_guard lock(worker_error_mu);
      if (!worker_error.empty()) return;
      worker_error = std::move(message);
    }
    worker_failed.store(true, std::memory_order_release);
    abort.store(true);
  }

  // On worker `me`, before batch b's events: drops the entities of partitions that start
  // afresh in it and loads the restored ones this worker owns (the partition's tag may differ
  // from the one it was saved under: it is this process's slot for it).
  void ResetPartitions(Batch& b, features::FeatureEngine& fe, int me) {
    for (const Batch::PartitionReset& r : b.resets) {
      fe.Drop([&](const Hash128& k) { return vigil::TagOf(k) == r.tag; });
      if (!r.restored) continue;
      try {
        SnapshotReader in(*r.restored, "partition state snapshot", "pstate", 1);
        in.Take(in.Get<uint64_t>());  // the router's part
        const auto parts = in.Get<uint32_t>();
        for (uint32_t i = 0; i < parts; ++i) {
          SnapshotReader part(AsText(in.Take(in.Get<uint64_t>())), in.Path(), "ppart", 1);
          fe.Load(part, [&](const Hash128& k) {
            return OwnerOf(k.lo, workers) == me ? std::optional(WithTag(k, r.tag)) : std::nullopt;
          });
          if (!part.AtEnd()) part.Fail("unexpected bytes after the feature state");
        }
      } catch (const std::exception& e) {
        b.checkpoint_error[static_cast<size_t>(me)] =
            fmt::format("restoring a partition's state: {}", e.what());
      }
    }
  }

  // On worker `me`, after batch b's events: its entities of each partition snapshotted at the
  // end of b, saved untagged (a restore tags them with the partition's slot then). One pass
  // over the entities for all the partitions (a key's tag is its partition's slot + 1).
  void SnapshotPartitions(Batch& b, const features::FeatureEngine& fe, int me) {
    const auto start = Clock::now();
    std::vector<std::string>& parts = b.worker_parts[static_cast<size_t>(me)];
    parts.resize(b.snapshots.size());
    std::deque<SnapshotWriter> writers;  // not movable
    std::vector<SnapshotWriter*> outs;
    std::vector<int32_t> part_of_tag;  // by tag: the index in parts, or -1
    for (size_t i = 0; i < parts.size(); ++i) {
      writers.emplace_back(&parts[i], "ppart", 1);
      outs.push_back(&writers.back());
      const auto tag = static_cast<size_t>(b.snapshots[i].at.slot) + 1;
      if (part_of_tag.size() <= tag) part_of_tag.resize(tag + 1, -1);
      part_of_tag[tag] = static_cast<int32_t>(i);
    }
    fe.SaveSplit(outs, [&](const Hash128& k) -> std::optional<std::pair<size_t, Hash128>> {
      const uint16_t tag = vigil::TagOf(k);
      if (tag >= part_of_tag.size() || part_of_tag[tag] < 0) return std::nullopt;
      return std::pair(static_cast<size_t>(part_of_tag[tag]), WithTag(k, 0));
    });
    for (SnapshotWriter& w : writers) w.Finish();
    b.snapshot_seconds[static_cast<size_t>(me)] =
        std::chrono::duration<double>(Clock::now() - start).count();
  }

  // On the writer: partition i's snapshot of batch b, router's and workers' parts together,
  // gathered into `out` (the parts by reference: copied into one block, a large state cost the
  // writer most of a turn's time in fresh pages).
  void GatherSnapshot(const Batch& b, size_t i, SnapshotWriter& out) const {
    out.StringView(b.snapshots[i].router);
    const bool parts = feature_count > 0;
    out.Put<uint32_t>(parts ? static_cast<uint32_t>(workers) : 0);
    for (int w = 0; parts && w < workers; ++w) {
      out.StringView(b.worker_parts[static_cast<size_t>(w)][i]);
    }
    out.Finish();
  }

  bool serialize_decisions = true;
  std::unique_ptr<std::latch> restored;    // counts down as workers finish restoring
  std::vector<std::string> restore_error;  // per worker

  // One output as the writer sees it: the file and how many lines it holds.
  struct LineSink {
    sink::OutputFile* file = nullptr;
    uint64_t lines = 0;

    // Writes whole lines (text ends with '\n').
    void Write(std::string_view text) {
      if (!file || text.empty()) return;
      lines += static_cast<uint64_t>(std::count(text.begin(), text.end(), '\n'));
      file->Write(text);
    }
  };

  // Writes one batch's outputs in source order, and its alerts to the alert store.
  void Write(Batch& b, LineSink& decisions, LineSink& dead, LineSink& late,
             sink::AlertStore* alerts, std::vector<uint32_t>& cursor) {
    if (decisions.file) {
      if (workers == 1 && !alerts) {
        decisions.Write(b.out[0]);
      } else {
        std::fill(cursor.begin(), cursor.end(), 0);
        for (size_t i = 0; i < b.n; ++i) {
          const size_t w = b.owner[i];
          const std::string_view line(b.out[w].data() + cursor[w], b.line_end[i] - cursor[w]);
          if (workers > 1) decisions.Write(line);
          if (alerts && b.alert[i]) alerts->Add(line);
          cursor[w] = b.line_end[i];
        }
        if (workers == 1) decisions.Write(b.out[0]);
      }
    }
    dead.Write(b.dead);
    late.Write(b.late);
  }

  // The same for transactional outputs: each line becomes a message (decisions keyed by event
  // id, unless the id is tokenized).
  void WriteTransactional(Batch& b, TransactionalOutputs& txn, sink::AlertStore* alerts,
                          std::vector<uint32_t>& cursor) {
    using Stream = TransactionalOutputs::Stream;
    std::fill(cursor.begin(), cursor.end(), 0);
    for (size_t i = 0; i < b.n; ++i) {
      const size_t w = b.owner[i];
      std::string_view line(b.out[w].data() + cursor[w], b.line_end[i] - cursor[w]);
      cursor[w] = b.line_end[i];
      if (line.empty()) continue;  // replayed: state only
      if (alerts && b.alert[i]) alerts->Add(line);
      line.remove_suffix(1);  // '\n'
      const Event& e = b.events[i];
      const std::string_view key = id_tokenized ? std::string_view() : e.Id();
      txn.Send(Stream::kDecisions, key, line);
      if (b.alert[i]) txn.Send(Stream::kAlerts, key, line);
    }
    ForEachLine(b.dead, [&](std::string_view l) { txn.Send(Stream::kDeadLetters, {}, l); });
    ForEachLine(b.late, [&](std::string_view l) { txn.Send(Stream::kLate, {}, l); });
  }

  template <typename F>
  static void ForEachLine(std::string_view text, F&& f) {
    while (!text.empty()) {
      const size_t nl = text.find('\n');
      f(text.substr(0, nl));
      if (nl == std::string_view::npos) break;
      text.remove_prefix(nl + 1);
    }
  }
  bool id_tokenized = false;

  sink::RunSummary Run(source::RecordSource& src, Outputs& outs) {
    TransactionalOutputs* const txn = outs.transactional;
    serialize_decisions = outs.decisions != nullptr || txn != nullptr;
    id_tokenized = pipeline.id_field < pipeline.tokenized.size() &&
                   pipeline.tokenized[pipeline.id_field] && options.tokenizer;
    sink::RunSummary total;
    double elapsed_before = 0;  // a resumed job's time before this run
    LineSink decisions_sink{outs.decisions.get(), 0};
    LineSink dead_sink{outs.dead_letters.get(), 0};
    LineSink late_sink{outs.late.get(), 0};
    if (options.restore) {
      total = options.restore->summary;
      elapsed_before = total.elapsed_seconds;
      decisions_sink.lines = options.restore->decisions_lines;
      dead_sink.lines = options.restore->dead_letters_lines;
      late_sink.lines = options.restore->late_lines;
    }
    total.input = src.Name();
    total.completed = false;
    const Clock::time_point start = Clock::now();
    auto elapsed = [&] {
      return elapsed_before + std::chrono::duration<double>(Clock::now() - start).count();
    };

    // Workers first: each restores its shard of a checkpoint before the router starts.
    std::vector<std::thread> threads;
    restored = std::make_unique<std::latch>(workers);
    restore_error.assign(static_cast<size_t>(workers), {});
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([this, w] { Worker(w, *work_queues[static_cast<size_t>(w)]); });
    }
    restored->wait();
    for (const std::string& e : restore_error) {
      if (e.empty()) continue;
      for (auto& q : work_queues) q->Push(nullptr);
      for (auto& t : threads) t.join();
      throw std::runtime_error(fmt::format("cannot restore the checkpoint: {}", e));
    }
    threads.emplace_back([this, &src] { Router(src); });

    total.state_by_entity.clear();  // gauges: a restored summary's are not carried over
    if (entity_count > 0) {
      for (const auto& e : options.features->entities) total.state_by_entity.push_back({e.name});
    }
    std::map<uint64_t, Batch*> ready;
    std::vector<uint32_t> cursor(static_cast<size_t>(workers));
    uint64_t next = 0;
    std::exception_ptr write_error;
    Clock::time_point last_tick = start;
    uint64_t last_read = total.read;
    bool completed = false;  // the router's last batch says it read the whole input

    auto flush = [&](bool durable) {
      for (auto* f : {outs.decisions.get(), outs.dead_letters.get(), outs.late.get()}) {
        if (f) f->Flush(durable);
      }
      if (outs.alerts) outs.alerts->Commit();
    };
    // After batch b (which carries a checkpoint) is written: the outputs are made durable,
    // then the checkpoint is committed with their lengths.
    auto commit = [&](const Batch& b) {
      for (const std::string& e : b.checkpoint_error) {
        if (!e.empty()) {
          throw std::runtime_error(fmt::format("checkpoint {} failed: {}", b.checkpoint, e));
        }
      }
      flush(true);
      Manifest m = options.checkpoint_job;
      m.seq = b.checkpoint;
      m.completed = b.last && b.completed;
      m.offset = b.end_offset;
      m.line = b.end_line;
      m.decisions_bytes = outs.decisions ? outs.decisions->Size() : 0;
      m.dead_letters_bytes = outs.dead_letters ? outs.dead_letters->Size() : 0;
      m.late_bytes = outs.late ? outs.late->Size() : 0;
      m.decisions_lines = decisions_sink.lines;
      m.dead_letters_lines = dead_sink.lines;
      m.late_lines = late_sink.lines;
      m.shards = feature_count > 0 ? workers : 0;
      m.summary = total;
      m.summary.elapsed_seconds = elapsed();
      options.checkpoints->Commit(m);
      ++total.checkpoints;
      total.checkpoint_unix_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
    };

    // Transactional outputs: what has been sent since the last commit, and the positions it
    // covers. Batches of an epoch below `accept_epoch` are dropped: their transaction was
    // aborted (the source replays them).
    std::vector<source::PartitionPosition> sent_positions;
    bool sent = false;
    uint64_t accept_epoch = 0;
    Clock::time_point last_commit = start;
    const auto commit_every = std::chrono::microseconds(options.commit_interval_us);
    const auto wait =
        txn ? std::min<std::chrono::microseconds>(commit_every, std::chrono::milliseconds(100))
            : std::chrono::milliseconds(100);
    // A commit was aborted: the state has moved past what is committed. The source rewinds
    // to the committed positions and rebuilds state by replay; batches in flight are dropped.
    auto aborted = [&] {
      accept_epoch = epoch.load(std::memory_order_acquire) + 1;
      rewind_requested.store(true);
    };
    auto commit_txn = [&] {
      last_commit = Clock::now();
      if (!sent) return;
      sent = false;
      if (!txn->Commit(sent_positions)) aborted();
    };
    // Commits what was sent and waits for the outcome (a drain before a revoke, the end of the
    // run): true when everything sent is committed and no rewind is pending.
    auto commit_and_settle = [&] {
      commit_txn();
      if (!txn->Settle()) aborted();
      return !rewind_requested.load();
    };
    auto publish_stream = [&] {
      if (!txn) return;
      const source::SourceStats ss = src.Stats();
      total.stream.partitioned = true;
      total.stream.consumer_lag = ss.lag;
      total.stream.partitions = ss.partitions;
      total.stream.rebalances = ss.rebalances;
      total.stream.restore_seconds = ss.restore_seconds;
      total.stream.restored = ss.restored;
      total.stream.kept = ss.kept;
      total.stream.commits = txn->Commits();
      total.stream.aborts = txn->Aborts();
      total.stream.last_commit_ms = txn->LastCommitMs();
    };

    for (;;) {
      if (std::optional<Batch*> got = done.PopFor(wait)) {
        if (*got) ready.emplace((*got)->seq, *got);
        // With transactional outputs, take every batch already done: a commit then covers all
        // of them instead of one batch per commit while batches queue behind a slow commit.
        while (txn) {
          got = done.PopFor(std::chrono::microseconds(0));
          if (!got) break;
          if (*got) ready.emplace((*got)->seq, *got);
        }
      }
      if (txn) {
        const uint64_t e = epoch.load(std::memory_order_acquire);
        if (e != writer_epoch.load(std::memory_order_relaxed)) {
          // The source rewound: what was sent and not committed must never commit.
          if (!write_error) {
            try {
              txn->Abort();
            } catch (...) {
              write_error = std::current_exception();
              abort.store(true);
            }
          }
          sent = false;
          accept_epoch = e;
          writer_epoch.store(e, std::memory_order_release);
        }
      }
      while (!ready.empty() && ready.begin()->first == next) {
        Batch* b = ready.begin()->second;
        ready.erase(ready.begin());
        if (b->epoch < accept_epoch) {
          free_batches.Push(b);
          ++next;
          continue;
        }
        total.stream.replayed += b->replayed;
        if (txn && b->stats.read > 0 && total.stream.first_record_seconds < 0) {
          total.stream.first_record_seconds =
              std::chrono::duration<double>(b->read_at - start).count();
        }
        const uint64_t decided_before = total.decided;
        total.Add(b->stats);
        for (const auto& w : b->worker_stats) total.Add(w);
        total.watermark_us = b->watermark;
        if (b->last) completed = b->completed;
        if (feature_count > 0) {
          total.state_entities = 0;
          total.state_bytes = 0;
          for (size_t en = 0; en < entity_count; ++en) {
            auto& kind = total.state_by_entity[en];
            kind.entities = 0;
            kind.bytes = 0;
            for (size_t w = 0; w < static_cast<size_t>(workers); ++w) {
              kind.entities += b->state_entities[w * entity_count + en];
              kind.bytes += b->state_bytes[w * entity_count + en];
            }
            total.state_entities += kind.entities;
            total.state_bytes += kind.bytes;
          }
        }
        if (!write_error && worker_failed.load(std::memory_order_acquire)) {
          write_error = std::make_exception_ptr(std::runtime_error(worker_error));
        }
        if (!write_error) {
          try {
            if (txn) {
              for (const std::string& e : b->checkpoint_error) {
                if (!e.empty()) throw std::runtime_error(e);
              }
              WriteTransactional(*b, *txn, outs.alerts.get(), cursor);
              const auto send_start = Clock::now();
              for (size_t i = 0; i < b->snapshots.size(); ++i) {
                std::vector<std::string_view> pieces;
                SnapshotWriter out(&pieces, "pstate", 1);
                GatherSnapshot(*b, i, out);
                txn->SendSnapshot(b->snapshots[i].at, pieces);
                ++total.stream.snapshots;
                for (const std::string_view p : pieces) total.stream.snapshot_bytes += p.size();
              }
              if (!b->snapshots.empty()) {
                total.stream.snapshot_pause_seconds +=
                    *std::max_element(b->snapshot_seconds.begin(), b->snapshot_seconds.end());
                total.stream.snapshot_send_seconds +=
                    std::chrono::duration<double>(Clock::now() - send_start).count();
              }
              if (!b->positions.empty()) sent_positions = b->positions;
              sent = true;  // committed below, once every batch ready is sent
            } else {
              Write(*b, decisions_sink, dead_sink, late_sink, outs.alerts.get(), cursor);
            }
            if (b->checkpoint != 0) commit(*b);
          } catch (...) {
            write_error = std::current_exception();
            abort.store(true);
          }
        }
        total.decision_latency.Observe(
            std::chrono::duration<double>(Clock::now() - b->read_at).count(),
            total.decided - decided_before);
        free_batches.Push(b);
        ++next;
      }
      if (drain_asked.load(std::memory_order_acquire) &&
          next >= drain_target.load(std::memory_order_relaxed)) {
        // Every batch the router dispatched before a revoke is written: commit them now, and
        // wait for the commit, so the partitions' state is exactly their committed offsets'.
        drain_asked.store(false, std::memory_order_relaxed);
        bool ok = !write_error;
        if (ok && txn) {
          try {
            ok = commit_and_settle();
          } catch (...) {
            write_error = std::current_exception();
            abort.store(true);
            ok = false;
          }
        }
        drain_answer.store(ok ? 1 : 2, std::memory_order_release);
      }
      if (txn && sent && !write_error && Clock::now() - last_commit >= commit_every) {
        try {
          commit_txn();  // every ready batch is sent (or input went quiet): one commit
        } catch (...) {
          write_error = std::current_exception();
          abort.store(true);
        }
      }
      const Clock::time_point now = Clock::now();
      if (now - last_tick >= std::chrono::seconds(1)) {
        const double secs = std::chrono::duration<double>(now - last_tick).count();
        const double eps = static_cast<double>(total.read - last_read) / secs;
        last_tick = now;
        last_read = total.read;
        if (!write_error) {
          try {
            flush(false);  // so a reader following the files sees decisions within a second
          } catch (...) {
            write_error = std::current_exception();
            abort.store(true);
          }
        }
        publish_stream();
        total.queues.work.resize(work_queues.size());
        for (size_t w = 0; w < work_queues.size(); ++w) {
          total.queues.work[w] = static_cast<uint32_t>(work_queues[w]->Size());
        }
        total.queues.done = done.Size();
        total.queues.reorder = ready.size();
        if (options.on_progress) options.on_progress(total, eps);
      }
      if (router_finished.load(std::memory_order_acquire) &&
          next == dispatched.load(std::memory_order_acquire)) {
        break;
      }
    }
    // Every dispatched batch is written, so no batch is in a queue: the workers may stop. (The
    // router cannot send this: a batch may still be on its way round for its second phase.)
    for (auto& q : work_queues) q->Push(nullptr);
    for (auto& t : threads) t.join();
    if (worker_failed.load()) throw std::runtime_error(worker_error);  // the root cause
    if (router_error) std::rethrow_exception(router_error);
    if (write_error) std::rethrow_exception(write_error);
    if (txn) {
      if (!commit_and_settle()) {
        throw std::runtime_error(
            "the last transaction was aborted: its events are decided again on the next run");
      }
      publish_stream();
    }

    flush(false);
    total.queues.work.assign(work_queues.size(), 0);  // every queue is drained now
    total.queues.done = 0;
    total.queues.reorder = 0;
    total.completed = completed;
    total.elapsed_seconds = elapsed();
    return total;
  }
};

Engine::Engine(const config::Pipeline& pipeline, decide::StageFactory* stages, RunOptions options)
    : impl_(std::make_unique<Impl>(pipeline, stages, std::move(options))) {}

Engine::~Engine() = default;

sink::RunSummary Engine::Run(source::RecordSource& source, Outputs& outputs) {
  return impl_->Run(source, outputs);
}

}  // namespace vigil::engine
