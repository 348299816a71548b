// Scoring cost per event: a binary:logistic model of 200 trees of depth 6 over 21 features
// (the card-fraud feature count), micro-batches of 1, 64 and 1024 rows, one thread, through
// XGBoost's in-place prediction, XGBoost's DMatrix prediction and the native evaluator; and
// TreeSHAP contributions of one row, native against XGBoost's pred_contribs.
//   model_benchmark --benchmark_filter=Score
//   model_benchmark --benchmark_filter=Contributions
#include <memory>
#include <vector>

#include <benchmark/benchmark.h>
#include <xgboost/c_api.h>

#include "vigil/model/scorer.h"
#include "vigil/model/tests/synthetic.h"
#include "vigil/model/train.h"

namespace vigil::model {
namespace {

constexpr size_t kFeatures = 21;
constexpr size_t kEvents = 4096;  // distinct rows cycled through

// `model`: 200 trees of depth 6; `demo`: the same data cut at 88 rounds, the size of the
// model `vigil demo` trains (early stopping keeps 88 trees of depth 6 over the card-fraud
// pipeline's columns: docs/model.md).
struct Fixture {
  testing::Synthetic rows = testing::Synthetic::Make(kEvents, kFeatures, 11);
  TrainedModel model, demo;
  Fixture() {
    const testing::Synthetic train = testing::Synthetic::Make(30000, kFeatures, 10, 0.05);
    TrainInput in;
    in.train = {train.x.data(), train.rows, train.cols};
    in.train_labels = train.y;
    in.feature_names = train.names;
    TrainParams p;  // 200 rounds, depth 6; no validation set, so all 200 trees are kept
    p.min_child_weight = 0.1;
    p.nthread = 1;  // an idle OpenMP pool would spin beside the timed thread on shared cores
    model = Train(in, p);
    p.rounds = 88;
    demo = Train(in, p);
  }
};

Fixture& Get() {
  static Fixture f;
  return f;
}

void RunScore(benchmark::State& state, Engine engine) {
  Fixture& f = Get();
  Scorer scorer(f.model.json, engine);
  const size_t batch = static_cast<size_t>(state.range(0));
  std::vector<float> out(batch);
  size_t at = 0;
  for (auto _ : state) {
    if (at + batch > kEvents) at = 0;
    const Status st = scorer.Score(&f.rows.x[at * kFeatures], batch, kFeatures, out.data());
    if (!st.ok()) state.SkipWithError(st.error().message.c_str());
    benchmark::DoNotOptimize(out.data());
    at += batch;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
  state.counters["trees"] = static_cast<double>(f.model.meta.trees);
  state.counters["ns_per_event"] =
      benchmark::Counter(static_cast<double>(state.iterations() * static_cast<int64_t>(batch)),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_ScoreXgboostInplace(benchmark::State& state) { RunScore(state, Engine::kXgboost); }
void BM_ScoreNative(benchmark::State& state) { RunScore(state, Engine::kNative); }

// The other XGBoost route: a DMatrix per batch, then XGBoosterPredictFromDMatrix.
void BM_ScoreXgboostDMatrix(benchmark::State& state) {
  Fixture& f = Get();
  BoosterHandle b = nullptr;
  XGBoosterCreate(nullptr, 0, &b);
  XGBoosterLoadModelFromBuffer(b, f.model.json.data(), f.model.json.size());
  XGBoosterSetParam(b, "nthread", "1");
  const size_t batch = static_cast<size_t>(state.range(0));
  const char* config = R"({"type": 0, "training": false, "iteration_begin": 0, )"
                       R"("iteration_end": 0, "strict_shape": false})";
  size_t at = 0;
  for (auto _ : state) {
    if (at + batch > kEvents) at = 0;
    DMatrixHandle m = nullptr;
    XGDMatrixCreateFromMat_omp(&f.rows.x[at * kFeatures], batch, kFeatures, NAN, &m, 1);
    const bst_ulong* shape = nullptr;
    bst_ulong dim = 0;
    const float* out = nullptr;
    if (XGBoosterPredictFromDMatrix(b, m, config, &shape, &dim, &out) != 0) {
      state.SkipWithError(XGBGetLastError());
    }
    benchmark::DoNotOptimize(out);
    XGDMatrixFree(m);
    at += batch;
  }
  XGBoosterFree(b);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
  state.counters["ns_per_event"] =
      benchmark::Counter(static_cast<double>(state.iterations() * static_cast<int64_t>(batch)),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Arg: the model's tree count (88: demo-like, 200).
void RunContributions(benchmark::State& state, Engine engine) {
  Fixture& f = Get();
  const TrainedModel& model = state.range(0) == 88 ? f.demo : f.model;
  Scorer scorer(model.json, engine);
  std::vector<float> out(kFeatures + 1);
  size_t at = 0;
  for (auto _ : state) {
    at = (at + 1) % kEvents;
    const Status st = scorer.Contributions(&f.rows.x[at * kFeatures], kFeatures, out.data());
    if (!st.ok()) state.SkipWithError(st.error().message.c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["trees"] = static_cast<double>(model.meta.trees);
}

void BM_ContributionsNative(benchmark::State& state) { RunContributions(state, Engine::kNative); }
void BM_ContributionsXgboost(benchmark::State& state) { RunContributions(state, Engine::kXgboost); }

BENCHMARK(BM_ScoreNative)->Arg(1)->Arg(64)->Arg(1024);
BENCHMARK(BM_ScoreXgboostInplace)->Arg(1)->Arg(64)->Arg(1024);
BENCHMARK(BM_ScoreXgboostDMatrix)->Arg(1)->Arg(64)->Arg(1024);
BENCHMARK(BM_ContributionsNative)->Arg(88)->Arg(200)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ContributionsXgboost)->Arg(88)->Arg(200)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace vigil::model

BENCHMARK_MAIN();
