#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "vigil/app/commands.h"
#include "vigil/common/time.h"
#include "vigil/config/pipeline.h"
#include "vigil/engine/engine.h"
#include "vigil/features/spec.h"
#include "vigil/model/model_stage.h"
#include "vigil/model/train.h"
#include "vigil/sink/case_store.h"
#include "vigil/source/record_source.h"

namespace vigil::app {

namespace {

// Labels by event id from analysts' dispositions (`--labels-db`): they take precedence over the
// input's label field.
using LabelOverrides = std::map<std::string, float, std::less<>>;

// What one worker saw: for every event it decided, its position, time, label and model row.
struct Rows {
  std::vector<uint64_t> record;
  std::vector<int64_t> time;
  std::vector<float> label;   // 0, 1, or NaN when the event has no label
  std::vector<float> values;  // row-major, columns.size() per event
};

// Records every decided event's model row: the same columns the scoring stage reads, from
// the same feature code, so the model trains on exactly what it will be served.
class CaptureStage final : public decide::Stage {
 public:
  CaptureStage(const std::vector<model::Column>& columns, int label,
               const LabelOverrides& overrides, Rows& rows)
      : columns_(columns),
        label_(label),
        overrides_(overrides),
        rows_(rows),
        row_(columns.size()) {}
  std::string_view Name() const override { return "capture"; }
  void Process(const Event& e, std::span<const double> features, decide::Decision&) override {
    model::FillRow(columns_, e, features, row_);
    rows_.record.push_back(e.record);
    rows_.time.push_back(e.time_us);
    float label = label_ >= 0 ? model::LabelOf(e, label_) : std::nanf("");
    if (!overrides_.empty()) {
      if (const auto it = overrides_.find(e.Id()); it != overrides_.end()) label = it->second;
    }
    rows_.label.push_back(label);
    rows_.values.insert(rows_.values.end(), row_.begin(), row_.end());
  }

 private:
  const std::vector<model::Column>& columns_;
  int label_;
  const LabelOverrides& overrides_;
  Rows& rows_;
  std::vector<float> row_;
};

class CaptureFactory final : public decide::StageFactory {
 public:
  CaptureFactory(const std::vector<model::Column>& columns, int label,
                 const LabelOverrides& overrides)
      : columns_(columns), label_(label), overrides_(overrides) {}
  std::vector<std::unique_ptr<decide::Stage>> MakeStages(int worker) override {
    std::lock_guard<std::mutex> lock(mu_);
    while (rows_.size() <= static_cast<size_t>(worker)) rows_.push_back(std::make_unique<Rows>());
    std::vector<std::unique_ptr<decide::Stage>> stages;
    stages.push_back(std::make_unique<CaptureStage>(columns_, label_, overrides_, *rows_[worker]));
    return stages;
  }
  std::vector<std::unique_ptr<Rows>>& rows() { return rows_; }

 private:
  const std::vector<model::Column>& columns_;
  int label_;
  const LabelOverrides& overrides_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Rows>> rows_;
};

}  // namespace

sink::RunSummary Replay(const config::Pipeline& pipeline, const features::Spec& spec,
                        source::RecordSource& source, decide::StageFactory& stages, int workers) {
  engine::Outputs outs;
  outs.dead_letters = sink::OutputFile::Open("/dev/null");
  outs.late = sink::OutputFile::Open("/dev/null");
  engine::RunOptions opts;
  opts.features = &spec;
  opts.workers = workers;
  engine::Engine engine(pipeline, &stages, std::move(opts));
  return engine.Run(source, outs);
}

void TrainFrom(const config::Pipeline& pipeline, const features::Spec& spec,
               source::RecordSource& src, const TrainArgs& a) {
  if (a.label.empty() && a.labels_db.empty()) {
    throw std::invalid_argument("give --label FIELD, --labels-db FILE, or both");
  }
  const int label = a.label.empty() ? -1 : pipeline.FieldIndex(a.label);
  if (label < 0 && !a.label.empty()) {
    std::string names;
    for (const auto& f : pipeline.input.fields) names += (names.empty() ? "" : ", ") + f.name;
    throw std::invalid_argument(fmt::format(
        "--label: the pipeline's input has no field '{}' (fields: {})", a.label, names));
  }
  if (!(a.valid_fraction > 0 && a.valid_fraction < 1)) {
    throw std::invalid_argument("--valid-fraction: expected a share between 0 and 1, e.g. 0.2");
  }
  const std::vector<model::Column> columns = model::ModelColumns(pipeline, spec, a.label);

  // Replay the labelled history through the pipeline: the same decode, dedup, watermark and
  // feature code as a live run.
  LabelOverrides overrides;
  if (!a.labels_db.empty()) {
    for (const auto& [id, value] : sink::CaseStore::Open(a.labels_db)->Labels()) {
      overrides.emplace(id, static_cast<float>(value));
    }
    std::fprintf(stderr, "vigil train: %zu labels from closed cases in %s\n", overrides.size(),
                 a.labels_db.c_str());
  }
  CaptureFactory capture(columns, label, overrides);
  const sink::RunSummary run = Replay(pipeline, spec, src, capture, a.workers);

  // Events in time order (ties by input position), unlabeled ones left out.
  struct Ref {
    int64_t time;
    uint64_t record;
    const Rows* rows;
    size_t i;
  };
  std::vector<Ref> refs;
  size_t unlabeled = 0;
  for (const auto& rows : capture.rows()) {
    for (size_t i = 0; i < rows->record.size(); ++i) {
      if (std::isnan(rows->label[i])) {
        ++unlabeled;
        continue;
      }
      refs.push_back({rows->time[i], rows->record[i], rows.get(), i});
    }
  }
  std::sort(refs.begin(), refs.end(), [](const Ref& x, const Ref& y) {
    return x.time != y.time ? x.time < y.time : x.record < y.record;
  });
  const size_t n = refs.size();
  const size_t n_train = static_cast<size_t>(static_cast<double>(n) * (1 - a.valid_fraction));
  if (n_train < 100 || n - n_train < 100) {
    throw std::invalid_argument(
        fmt::format("{}: {} labelled events: too few to train and validate (need 100 of each side)",
                    a.input, n));
  }
  const size_t cols = columns.size();
  std::vector<float> x(n * cols), y(n);
  for (size_t r = 0; r < n; ++r) {
    const Ref& ref = refs[r];
    std::copy_n(ref.rows->values.begin() + static_cast<std::ptrdiff_t>(ref.i * cols), cols,
                x.begin() + static_cast<std::ptrdiff_t>(r * cols));
    y[r] = ref.rows->label[ref.i];
  }

  model::TrainInput in;
  in.train = {x.data(), n_train, cols};
  in.train_labels = std::span<const float>(y.data(), n_train);
  in.valid = {x.data() + n_train * cols, n - n_train, cols};
  in.valid_labels = std::span<const float>(y.data() + n_train, n - n_train);
  for (const auto& c : columns) in.feature_names.push_back(c.name);
  in.label_name = a.label;
  in.window_first_us = refs.front().time;
  in.window_last_us = refs[n_train - 1].time;
  in.pipeline_hash = fmt::format("{:016x}", pipeline.state_hash);
  model::TrainParams params;
  params.rounds = a.rounds;
  params.nthread = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const model::TrainedModel trained = model::Train(in, params);
  const auto parent = std::filesystem::path(a.out).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  model::SaveModel(trained, a.out);

  const model::ModelMeta& m = trained.meta;
  std::fprintf(stderr,
               "vigil train: %zu labelled events from %s (%llu read, %zu unlabeled), %zu columns\n"
               "  trained on the first %zu (%s .. %s), validated on the last %zu\n"
               "  validation: ROC-AUC %.4f, PR-AUC %.4f; top %.1f%% of events: precision %.3f, "
               "recall %.3f\n"
               "  %d trees -> %s (+ %s)\n",
               n, src.Name().c_str(), static_cast<unsigned long long>(run.read), unlabeled, cols,
               n_train, FormatIso8601(in.window_first_us).c_str(),
               FormatIso8601(in.window_last_us).c_str(), n - n_train, m.valid_roc_auc,
               m.valid_pr_auc, 100 * params.alert_budget, m.valid_precision_at_budget,
               m.valid_recall_at_budget, m.trees, a.out.c_str(), model::MetaPathFor(a.out).c_str());
}

int Train(const TrainArgs& a) {
  const config::Pipeline pipeline = config::LoadPipelineFile(a.pipeline);
  const features::Spec spec = features::ParseSpec(pipeline);
  auto src = source::OpenFile(a.input, InputOptions(pipeline));
  TrainFrom(pipeline, spec, *src, a);
  return 0;
}

}  // namespace vigil::app
