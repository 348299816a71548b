#include "vigil/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <limits>
#include <map>
#include <thread>

#include <fmt/format.h>

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
  std::vector<uint64_t> entity_count;  // per worker: entities held after this batch
  std::vector<uint64_t> state_bytes;   // per worker
  int phase = 0;                       // 0: entity features; 1: decisions
  std::atomic<int> pending{0};         // workers still to finish this batch's phase

  void Reset() {
    n = 0;
    for (auto& o : out) o.clear();
    for (auto& w : worker_stats) w = {};
    stats = {};
    phase = 0;
    dead.clear();
    late.clear();
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

  size_t feature_count = 0;
  size_t entity_count = 0;
  std::vector<std::string> feature_names;

  Impl(const config::Pipeline& p, decide::StageFactory* f, RunOptions o)
      : pipeline(p), factory(f), options(std::move(o)) {
    if (options.features && !options.features->empty()) {
      feature_count = options.features->features.size();
      entity_count = options.features->entities.size();
      for (const auto& fs : options.features->features) feature_names.push_back(fs.name);
    }
    workers = options.workers > 0 ? options.workers
              : pipeline.workers > 0
                  ? pipeline.workers
                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    workers = std::min(workers, 1024);
    batch_size = pipeline.batch_size;
    const size_t pool = static_cast<size_t>(workers) * 4 + 4;
    for (size_t i = 0; i < pool; ++i) {
      auto b = std::make_unique<Batch>();
      b->events.resize(batch_size);
      b->owner.resize(batch_size);
      b->line_end.resize(batch_size);
      b->out.resize(static_cast<size_t>(workers));
      b->worker_stats.resize(static_cast<size_t>(workers));
      b->feats.resize(batch_size * feature_count);
      b->entity_keys.resize(batch_size * entity_count);
      b->has_entity.resize(batch_size * entity_count);
      b->entity_count.resize(static_cast<size_t>(workers));
      b->state_bytes.resize(static_cast<size_t>(workers));
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
    uint64_t seq = 0;
    try {
      RouterLoop(src, seq);
    } catch (...) {
      router_error = std::current_exception();
    }
    router_finished.store(true, std::memory_order_release);
    done.Push(nullptr);  // wakes the writer
  }

  void RouterLoop(source::RecordSource& src, uint64_t& seq) {
    const std::unique_ptr<decode::Decoder> decoder = decode::MakeDecoder(pipeline);
    Deduplicator dedup(pipeline.dedup_horizon_us, pipeline.dedup_max_ids);
    Event scratch;
    Held held;
    std::vector<source::Record> records;
    int64_t max_time = INT64_MIN;
    int64_t watermark = INT64_MIN;
    uint64_t read_total = 0;
    const uint64_t limit = options.max_events;
    const Clock::time_point wall0 = Clock::now();
    int64_t time0 = INT64_MIN;

    while (!Stopping()) {
      size_t want = batch_size;
      if (limit > 0) {
        if (read_total >= limit) break;
        want = static_cast<size_t>(std::min<uint64_t>(want, limit - read_total));
      }
      if (!src.Next(records, want)) break;
      Batch* b = free_batches.Pop();
      b->Reset();
      for (const source::Record& r : records) {
        if (decoder->WantsHeader()) {
          ReadHeader(*decoder, src, r.text, r.line);
          continue;
        }
        ++read_total;
        const sink::Position at{src.Name(), r.line, r.offset};
        if (r.oversize) {
          DeadLetter(*b, at, decode::Errc::kOversize, "",
                     fmt::format("record is longer than {} bytes (input.max_record_bytes)",
                                 pipeline.input.max_record_bytes),
                     r.text);
          continue;
        }
        decode::DecodeStatus st = decoder->Decode(r.text, scratch);
        if (!st.ok()) {
          DeadLetter(*b, at, st.code, st.field, st.message, r.text);
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
            b->watermark = watermark;
            Dispatch(b, seq);
            b = free_batches.Pop();
            b->Reset();
            std::this_thread::sleep_until(due);
          }
        }
        ++b->stats.read;
        const Hash128 id = HashId(scratch.Id());
        if (dedup.Seen(id)) {
          ++b->stats.duplicate;
          continue;
        }
        if (scratch.time_us < watermark) {
          ++b->stats.late;
          sink::AppendLate(b->late, at, scratch, watermark, r.text);
          continue;
        }
        dedup.Insert(id, scratch.time_us);
        if (scratch.time_us > max_time) {
          max_time = scratch.time_us;
          watermark = std::max(watermark, max_time - pipeline.allowed_lateness_us);
        }
        scratch.record = read_total;
        if (!pipeline.event_time_order) {
          Accept(*b, scratch);
          continue;
        }
        held.Hold(scratch);
        while (held.Ready(watermark)) {
          if (b->n == batch_size) {
            b->watermark = watermark;
            Dispatch(b, seq);
            b = free_batches.Pop();
            b->Reset();
          }
          held.Release(*this, *b);
        }
      }
      b->end_offset = src.Position();
      b->end_line = src.NextLine();
      b->watermark = watermark;
      Dispatch(b, seq);
    }
    if (held.Empty() || Stopping()) return;
    // End of input: nothing can arrive any more, so every held event is ready.
    Batch* b = free_batches.Pop();
    b->Reset();
    while (!held.Empty()) {
      if (b->n == batch_size) {
        Dispatch(b, seq);
        b = free_batches.Pop();
        b->Reset();
      }
      held.Release(*this, *b);
    }
    b->watermark = watermark;
    Dispatch(b, seq);
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

  // Moves `scratch` into the batch (its old event becomes the next scratch), with its worker
  // and the hashes of its entity keys.
  void Accept(Batch& b, Event& scratch) {
    const size_t i = b.n++;
    b.owner[i] = static_cast<uint16_t>(scratch.key_hash % static_cast<uint64_t>(workers));
    std::fill_n(b.feats.begin() + static_cast<std::ptrdiff_t>(i * feature_count), feature_count,
                std::numeric_limits<double>::quiet_NaN());
    for (size_t en = 0; en < entity_count; ++en) {
      const Value& v = scratch.values[static_cast<size_t>(options.features->entities[en].field)];
      const bool has = v.kind == Value::Kind::kString && v.s.len > 0;
      b.has_entity[en * batch_size + i] = has;
      if (has) b.entity_keys[en * batch_size + i] = HashId(scratch.Str(v));
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

  static int OwnerOf(uint64_t hash, int workers) {
    return static_cast<int>(hash % static_cast<uint64_t>(workers));
  }

  void Worker(int me, BlockingQueue<Batch*>& queue) {
    std::vector<std::unique_ptr<decide::Stage>> stages = factory->MakeStages(me);
    std::unique_ptr<features::FeatureEngine> fe;
    if (feature_count > 0)
      fe = std::make_unique<features::FeatureEngine>(pipeline, *options.features);
    decide::Decision decision;
    const bool serialize = serialize_decisions;
    const size_t fc = feature_count;
    int64_t newest = INT64_MIN;
    while (Batch* b = queue.Pop()) {
      if (b->phase == 0 && fe) {
        // Phase 1: every worker updates the entities it owns, for every event of the batch,
        // in order; each entity's features land in their own slots of the event's row.
        for (size_t en = 0; en < entity_count; ++en) {
          const size_t base = en * batch_size;
          for (size_t i = 0; i < b->n; ++i) {
            if (!b->has_entity[base + i]) continue;
            const Hash128& key = b->entity_keys[base + i];
            if (OwnerOf(key.lo, workers) != me) continue;
            fe->UpdateEntity(static_cast<int>(en), key, b->events[i],
                             std::span<double>(b->feats.data() + i * fc, fc));
          }
        }
        for (size_t i = 0; i < b->n; ++i) newest = std::max(newest, b->events[i].time_us);
        fe->EvictIdle(newest, 64);
        b->entity_count[static_cast<size_t>(me)] = fe->EntityCount();
        b->state_bytes[static_cast<size_t>(me)] = fe->StateBytes();
        if (b->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          // The last worker through phase 1 sends the batch round again for phase 2.
          b->phase = 1;
          b->pending.store(workers, std::memory_order_release);
          for (auto& q : work_queues) q->Push(b);
        }
        continue;
      }
      std::string& out = b->out[static_cast<size_t>(me)];
      sink::RunSummary& stats = b->worker_stats[static_cast<size_t>(me)];
      for (size_t i = 0; i < b->n; ++i) {
        if (b->owner[i] != me) continue;
        const Event& e = b->events[i];
        std::span<double> feats(b->feats.data() + i * fc, fc);
        if (fe) fe->Derive(e, feats);
        decision.Reset();
        for (auto& s : stages) s->Process(e, feats, decision);
        ++stats.decided;
        ++stats.by_outcome[static_cast<size_t>(decision.outcome)];
        if (decision.IsAlert()) ++stats.alerts;
        if (serialize) {
          if (options.emit_features) {
            sink::AppendDecision(out, pipeline, e, decision, options.include_event, feature_names,
                                 feats);
          } else {
            sink::AppendDecision(out, pipeline, e, decision, options.include_event);
          }
          b->line_end[i] = static_cast<uint32_t>(out.size());
        }
      }
      if (b->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) done.Push(b);
    }
  }

  bool serialize_decisions = true;

  // Writes one batch's outputs in source order.
  // One output's writer state: how many lines it has had, and how many of the first lines are
  // already in the file (resume) and must not be written again.
  struct LineSink {
    sink::OutputFile* file = nullptr;
    uint64_t lines = 0;
    uint64_t skip = 0;

    // Writes whole lines (text ends with '\n'), leaving out those before `skip`.
    void Write(std::string_view text) {
      if (!file || text.empty()) return;
      size_t from = 0;
      while (lines < skip && from < text.size()) {
        from = text.find('\n', from) + 1;
        ++lines;
      }
      if (from < text.size()) {
        lines += static_cast<uint64_t>(
            std::count(text.begin() + static_cast<std::ptrdiff_t>(from), text.end(), '\n'));
        file->Write(text.substr(from));
      }
    }
  };

  // Writes one batch's outputs in source order.
  void Write(Batch& b, LineSink& decisions, LineSink& dead, LineSink& late,
             std::vector<uint32_t>& cursor) {
    if (decisions.file) {
      if (workers == 1) {
        decisions.Write(b.out[0]);
      } else {
        std::fill(cursor.begin(), cursor.end(), 0);
        for (size_t i = 0; i < b.n; ++i) {
          const size_t w = b.owner[i];
          const std::string& o = b.out[w];
          decisions.Write(std::string_view(o.data() + cursor[w], b.line_end[i] - cursor[w]));
          cursor[w] = b.line_end[i];
        }
      }
    }
    dead.Write(b.dead);
    late.Write(b.late);
  }

  sink::RunSummary Run(source::RecordSource& src, Outputs& outs) {
    serialize_decisions = outs.decisions != nullptr;
    sink::RunSummary total;
    total.input = src.Name();
    total.completed = false;
    const Clock::time_point start = Clock::now();

    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([this, w] { Worker(w, *work_queues[static_cast<size_t>(w)]); });
    }
    threads.emplace_back([this, &src] { Router(src); });

    std::vector<uint64_t> entities_by_worker(static_cast<size_t>(workers));
    std::vector<uint64_t> bytes_by_worker(static_cast<size_t>(workers));
    std::map<uint64_t, Batch*> ready;
    std::vector<uint32_t> cursor(static_cast<size_t>(workers));
    uint64_t next = 0;
    CommitPoint commit;
    commit.offset = src.Position();
    std::exception_ptr write_error;
    Clock::time_point last_tick = start;
    uint64_t last_read = total.read;

    auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
    LineSink decisions_sink{outs.decisions.get(), 0, options.skip_decisions};
    LineSink dead_sink{outs.dead_letters.get(), 0, options.skip_dead_letters};
    LineSink late_sink{outs.late.get(), 0, options.skip_late};
    auto make_commit = [&] {
      for (auto* f : {outs.decisions.get(), outs.dead_letters.get(), outs.late.get()}) {
        if (f) f->Flush();
      }
      commit.summary = total;
      commit.summary.elapsed_seconds = elapsed();
      commit.decisions_bytes = outs.decisions ? outs.decisions->Size() : 0;
      commit.dead_letters_bytes = outs.dead_letters ? outs.dead_letters->Size() : 0;
      commit.late_bytes = outs.late ? outs.late->Size() : 0;
      // While a resumed run is still catching up, the files hold more than it has produced:
      // the committed line counts are the files', not the run's.
      commit.decisions_lines = std::max(decisions_sink.lines, decisions_sink.skip);
      commit.dead_letters_lines = std::max(dead_sink.lines, dead_sink.skip);
      commit.late_lines = std::max(late_sink.lines, late_sink.skip);
      if (options.on_commit) options.on_commit(commit);
    };

    for (;;) {
      if (std::optional<Batch*> got = done.PopFor(std::chrono::milliseconds(100))) {
        if (*got) ready.emplace((*got)->seq, *got);
      }
      while (!ready.empty() && ready.begin()->first == next) {
        Batch* b = ready.begin()->second;
        ready.erase(ready.begin());
        if (!write_error) {
          try {
            Write(*b, decisions_sink, dead_sink, late_sink, cursor);
          } catch (...) {
            write_error = std::current_exception();
            abort.store(true);
          }
        }
        total.Add(b->stats);
        for (const auto& w : b->worker_stats) total.Add(w);
        total.watermark_us = b->watermark;
        if (feature_count > 0) {
          for (int w = 0; w < workers; ++w) {
            entities_by_worker[static_cast<size_t>(w)] = b->entity_count[static_cast<size_t>(w)];
            bytes_by_worker[static_cast<size_t>(w)] = b->state_bytes[static_cast<size_t>(w)];
          }
          total.state_entities = 0;
          total.state_bytes = 0;
          for (int w = 0; w < workers; ++w) {
            total.state_entities += entities_by_worker[static_cast<size_t>(w)];
            total.state_bytes += bytes_by_worker[static_cast<size_t>(w)];
          }
        }
        commit.offset = b->end_offset;
        free_batches.Push(b);
        ++next;
      }
      const Clock::time_point now = Clock::now();
      if (now - last_tick >= std::chrono::seconds(1)) {
        const double secs = std::chrono::duration<double>(now - last_tick).count();
        const double eps = static_cast<double>(total.read - last_read) / secs;
        last_tick = now;
        last_read = total.read;
        if (!write_error) {
          try {
            make_commit();
          } catch (...) {
            write_error = std::current_exception();
            abort.store(true);
          }
        }
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
    if (router_error) std::rethrow_exception(router_error);
    if (write_error) std::rethrow_exception(write_error);

    total.completed = !(options.stop && options.stop->load());
    total.elapsed_seconds = elapsed();
    make_commit();
    total.elapsed_seconds = commit.summary.elapsed_seconds;
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
