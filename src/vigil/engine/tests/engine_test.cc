#include "vigil/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vigil/engine/tests/test_pipeline.h"
#include "vigil/features/spec.h"
#include "vigil/source/record_source.h"

namespace vigil::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// An in-memory source: one record per string, with the padding decoders rely on.
class VectorSource final : public source::RecordSource {
 public:
  explicit VectorSource(std::vector<std::string> lines) {
    for (auto& l : lines) {
      offsets_.push_back(data_.size());
      data_ += l;
      data_ += '\n';
      lens_.push_back(l.size());
    }
    data_.append(source::kRecordPadding, '\0');
  }
  bool Next(std::vector<source::Record>& out, size_t max) override {
    out.clear();
    while (out.size() < max && next_ < lens_.size()) {
      out.push_back({std::string_view(data_.data() + offsets_[next_], lens_[next_]),
                     offsets_[next_], next_ + 1, false});
      ++next_;
    }
    return !out.empty();
  }
  uint64_t Position() const override {
    return next_ < offsets_.size() ? offsets_[next_] : data_.size() - source::kRecordPadding;
  }
  uint64_t LinesRead() const override { return next_; }
  const std::string& Name() const override { return name_; }

 private:
  std::string data_;
  std::vector<uint64_t> offsets_;
  std::vector<size_t> lens_;
  size_t next_ = 0;
  std::string name_ = "mem";
};

std::string Tx(int id, const std::string& ts, const std::string& card, double amount = 1) {
  std::ostringstream s;
  s << R"({"id":"e)" << id << R"(","ts":")" << ts << R"(","card":")" << card << R"(","amount":)"
    << amount << "}";
  return s.str();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct RunResult {
  sink::RunSummary summary;
  std::string decisions, dead, late;
};

RunResult RunLines(const config::Pipeline& p, std::vector<std::string> lines, int workers,
                   uint64_t max_events = 0, const features::Spec* features = nullptr,
                   decide::StageFactory* factory = nullptr) {
  const std::string dir = ::testing::TempDir();
  const std::string base = dir + "/engine_test_" + std::to_string(workers);
  Outputs outs;
  outs.decisions = sink::OutputFile::Open(base + ".decisions");
  outs.dead_letters = sink::OutputFile::Open(base + ".dead");
  outs.late = sink::OutputFile::Open(base + ".late");
  RunOptions o;
  o.workers = workers;
  o.max_events = max_events;
  o.features = features;
  PassThroughStages stages;
  Engine engine(p, factory ? factory : &stages, o);
  VectorSource src(std::move(lines));
  RunResult r;
  r.summary = engine.Run(src, outs);
  outs = {};
  r.decisions = ReadFile(base + ".decisions");
  r.dead = ReadFile(base + ".dead");
  r.late = ReadFile(base + ".late");
  return r;
}

TEST(Engine, CountersReconcileAcrossEveryOutcome) {
  const auto p = TestPipeline();
  const RunResult r = RunLines(p,
                               {
                                   Tx(1, "2026-01-01T00:10:00Z", "A"), "not json",
                                   Tx(1, "2026-01-01T00:10:01Z", "A"),  // duplicate id
                                   Tx(2, "2026-01-01T00:20:00Z", "B"),
                                   Tx(3, "2026-01-01T00:15:00Z", "A"),  // 5 min behind: late
                                   Tx(4, "2026-01-01T00:19:30Z", "C"),  // within 1 min: ok
                               },
                               2);
  EXPECT_EQ(r.summary.read, 6u);
  EXPECT_EQ(r.summary.decided, 3u);
  EXPECT_EQ(r.summary.dead_lettered, 1u);
  EXPECT_EQ(r.summary.duplicate, 1u);
  EXPECT_EQ(r.summary.late, 1u);
  EXPECT_TRUE(r.summary.Reconciles());
  EXPECT_TRUE(r.summary.completed);
  EXPECT_THAT(r.dead, HasSubstr(R"("source":"mem","line":2,"offset":)"));
  EXPECT_THAT(r.dead, HasSubstr(R"("reason":"parse_error")"));
  EXPECT_THAT(
      r.late,
      HasSubstr(
          R"("event_id":"e3","event_time":"2026-01-01T00:15:00.000000Z","watermark":"2026-01-01T00:19:00.000000Z")"));
}

TEST(Engine, OutputIsInSourceOrderWhateverTheWorkerCount) {
  const auto p = TestPipeline();
  std::vector<std::string> lines;
  for (int i = 0; i < 5000; ++i) {
    lines.push_back(Tx(i, "2026-01-01T00:00:00Z", "card" + std::to_string(i % 97), i));
  }
  const RunResult one = RunLines(p, lines, 1);
  const RunResult four = RunLines(p, lines, 4);
  // The shallowest queue the pipeline file allows, with small batches: more batches than the
  // queue holds, each through four workers.
  auto shallow = p;
  shallow.batch_size = 7;
  shallow.batches_in_flight = 3;
  const RunResult narrow = RunLines(shallow, lines, 4);
  EXPECT_EQ(one.summary.decided, 5000u);
  EXPECT_EQ(one.decisions, four.decisions);
  EXPECT_EQ(one.decisions, narrow.decisions);
  // Records are numbered in source order.
  EXPECT_THAT(one.decisions, HasSubstr(R"("event_id":"e4999","key":"card52")"));
  EXPECT_EQ(std::count(one.decisions.begin(), one.decisions.end(), '\n'), 5000);
}

// The writer observes every decision once in the latency histogram, at its batch's latency,
// and reports drained queues at the end.
TEST(Engine, ObservesEachDecisionsLatencyOnce) {
  const auto p = TestPipeline();
  std::vector<std::string> lines;
  for (int i = 0; i < 3000; ++i) lines.push_back(Tx(i, "2026-01-01T00:00:00Z", "c"));
  lines.push_back("not json");  // dead-lettered: no decision, no observation
  const RunResult r = RunLines(p, lines, 3);
  const sink::LatencyHistogram& h = r.summary.decision_latency;
  EXPECT_EQ(h.count, 3000u);
  uint64_t in_buckets = 0;
  for (uint64_t c : h.counts) in_buckets += c;
  EXPECT_EQ(in_buckets, 3000u);
  EXPECT_GT(h.sum, 0);
  EXPECT_LT(h.sum / static_cast<double>(h.count), 60) << "a mean latency over a minute";
  EXPECT_EQ(r.summary.queues.work, (std::vector<uint32_t>{0, 0, 0}));
  EXPECT_EQ(r.summary.queues.done, 0u);
  EXPECT_EQ(r.summary.queues.reorder, 0u);
}

// A stage that runs out of memory on one event, as a worker's allocation can.
class OutOfMemoryAt final : public decide::StageFactory {
 public:
  explicit OutOfMemoryAt(std::string id) : id_(std::move(id)) {}
  std::vector<std::unique_ptr<decide::Stage>> MakeStages(int) override {
    std::vector<std::unique_ptr<decide::Stage>> v;
    v.push_back(std::make_unique<Stage>(id_));
    return v;
  }

 private:
  struct Stage final : decide::Stage {
    explicit Stage(std::string id) : id(std::move(id)) {}
    std::string_view Name() const override { return "oom"; }
    void Process(const Event& e, std::span<const double>, decide::Decision&) override {
      if (e.Id() == id) throw std::bad_alloc();
    }
    std::string id;
  };
  std::string id_;
};

// A worker out of memory ends the run with an error that says so (not std::terminate), the
// other threads do not wait for it forever, and what was written is a prefix of a clean run's
// output: whole batches decided before the failure, none after.
TEST(Engine, AWorkerOutOfMemoryStopsTheRunWithAClearError) {
  auto p = TestPipeline();
  p.batch_size = 64;
  std::vector<std::string> lines;
  for (int i = 0; i < 5000; ++i) {
    lines.push_back(Tx(i, "2026-01-01T00:00:00Z", "card" + std::to_string(i % 97), i));
  }
  const RunResult clean = RunLines(p, lines, 3);
  for (int workers : {1, 3}) {
    OutOfMemoryAt oom("e2500");
    try {
      RunLines(p, lines, workers, 0, nullptr, &oom);
      FAIL() << "the run went on after a worker ran out of memory";
    } catch (const std::runtime_error& e) {
      EXPECT_THAT(e.what(), HasSubstr("out of memory on worker"));
      EXPECT_THAT(e.what(), HasSubstr("give the process more memory"));
    }
    const std::string written =
        ReadFile(::testing::TempDir() + "/engine_test_" + std::to_string(workers) + ".decisions");
    EXPECT_EQ(clean.decisions.compare(0, written.size(), written), 0)
        << "not a prefix of the clean run's decisions (" << workers << " workers)";
    EXPECT_THAT(written, Not(HasSubstr(R"("event_id":"e2500")")));
    EXPECT_LT(std::count(written.begin(), written.end(), '\n'), 2500);
  }
}

// A source like Kafka's on a quiet topic: once its records are out it waits for more, and
// returns only when the engine says to stop (or, so a broken engine fails this test rather
// than hanging it, after 20 s).
class WaitingSource final : public source::RecordSource {
 public:
  explicit WaitingSource(std::vector<std::string> lines) : lines_(std::move(lines)) {
    for (const auto& l : lines_) {
      offsets_.push_back(data_.size());
      data_ += l + '\n';
    }
    data_.append(source::kRecordPadding, '\0');
  }
  bool Next(std::vector<source::Record>& out, size_t max) override {
    out.clear();
    while (out.size() < max && next_ < lines_.size()) {
      out.push_back({std::string_view(data_.data() + offsets_[next_], lines_[next_].size()),
                     offsets_[next_], next_ + 1, false});
      ++next_;
    }
    if (!out.empty()) return true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!(stopping_ && stopping_())) {
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  void StopWhen(std::function<bool()> stopping) override { stopping_ = std::move(stopping); }
  uint64_t Position() const override { return 0; }
  uint64_t LinesRead() const override { return next_; }
  const std::string& Name() const override { return name_; }
  bool timed_out = false;

 private:
  std::vector<std::string> lines_;
  std::string data_;
  std::vector<uint64_t> offsets_;
  size_t next_ = 0;
  std::function<bool()> stopping_;
  std::string name_ = "waiting";
};

// A worker failing while the source waits for records: the source is told to stop, so the
// run ends with the error at once instead of waiting for a record that may never come.
TEST(Engine, AFailureStopsASourceWaitingForRecords) {
  auto p = TestPipeline();
  p.batch_size = 16;
  std::vector<std::string> lines;
  for (int i = 0; i < 200; ++i) lines.push_back(Tx(i, "2026-01-01T00:00:00Z", "c"));
  OutOfMemoryAt oom("e150");
  RunOptions o;
  o.workers = 2;
  Engine engine(p, &oom, o);
  WaitingSource src(lines);
  Outputs outs;
  outs.decisions = sink::OutputFile::Open(::testing::TempDir() + "/engine_test_waiting.decisions");
  EXPECT_THROW(engine.Run(src, outs), std::runtime_error);
  EXPECT_FALSE(src.timed_out) << "the source waited until its own deadline";
}

TEST(Engine, StopsAfterMaxEvents) {
  const auto p = TestPipeline();
  std::vector<std::string> lines;
  for (int i = 0; i < 100; ++i) lines.push_back(Tx(i, "2026-01-01T00:00:00Z", "c"));
  const RunResult r = RunLines(p, lines, 2, 10);
  EXPECT_EQ(r.summary.read, 10u);
  EXPECT_EQ(r.summary.decided, 10u);
}

// The state gauges per entity type: named as in the pipeline, in its order, counting each
// type's own entities (whatever the worker count), and adding up to the totals.
TEST(Engine, ReportsStatePerEntityType) {
  const auto p = TestPipeline(R"(entities:
  card: {field: card, ttl: 30d}
  payment: {field: id, ttl: 1d}
features:
  - {name: card_n_1h, entity: card, op: count, window: 1h, step: 5m}
  - {name: card_sum_1h, entity: card, op: sum, of: amount, window: 1h, step: 5m}
  - {name: payment_n, entity: payment, op: count, window: 1m, step: 1m}
)");
  const features::Spec spec = features::ParseSpec(p);
  std::vector<std::string> lines;
  for (int i = 0; i < 1000; ++i) {
    lines.push_back(Tx(i, "2026-01-01T00:00:00Z", "card" + std::to_string(i % 97), i));
  }
  for (int workers : {1, 3}) {
    const RunResult r = RunLines(p, lines, workers, 0, &spec);
    const auto& by = r.summary.state_by_entity;
    ASSERT_EQ(by.size(), 2u) << workers << " workers";
    EXPECT_EQ(by[0].name, "card");
    EXPECT_EQ(by[0].entities, 97u);
    EXPECT_EQ(by[1].name, "payment");
    EXPECT_EQ(by[1].entities, 1000u);
    EXPECT_GT(by[0].bytes, 97u * 16) << "at least a key per card";
    EXPECT_GT(by[1].bytes, 1000u * 16);
    EXPECT_EQ(r.summary.state_entities, by[0].entities + by[1].entities);
    EXPECT_EQ(r.summary.state_bytes, by[0].bytes + by[1].bytes);
  }
}

}  // namespace
}  // namespace vigil::engine
