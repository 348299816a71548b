// Checks the scoring promise that Score, Margin and Contributions with the native engine
// allocate nothing,
// by counting calls to the global operator new (replaced for this whole test binary by
// vigil_allocation_counter).
#include <vector>

#include <gtest/gtest.h>

#include "vigil/common/testing/allocation_counter.h"
#include "vigil/model/scorer.h"
#include "vigil/model/tests/synthetic.h"
#include "vigil/model/train.h"

namespace vigil::model {
namespace {

TEST(NoAllocation, NativeScore) {
  const testing::Synthetic s = testing::Synthetic::Make(2000, 8, 9, 0.1);
  TrainInput in;
  in.train = {s.x.data(), s.rows, s.cols};
  in.train_labels = s.y;
  in.feature_names = s.names;
  TrainParams p;
  p.rounds = 20;
  p.nthread = 1;
  Scorer scorer(Train(in, p).json, Engine::kNative);
  std::vector<float> out(64);
  std::vector<float> contrib(s.cols + 1);
  const long before = vigil::testing::AllocationCount();
  for (size_t n : {1, 7, 64}) {
    for (size_t at = 0; at + n <= s.rows; at += n) {
      const float* rows = &s.x[at * s.cols];
      if (!scorer.Score(rows, n, s.cols, out.data()).ok()) ADD_FAILURE();
      if (!scorer.Margin(rows, n, s.cols, out.data()).ok()) ADD_FAILURE();
    }
  }
  // TreeSHAP too (alerts only, but it runs on the worker thread all the same).
  for (size_t at = 0; at < 200; ++at) {
    if (!scorer.Contributions(&s.x[at * s.cols], s.cols, contrib.data()).ok()) ADD_FAILURE();
  }
  EXPECT_EQ(vigil::testing::AllocationCount() - before, 0);
}

}  // namespace
}  // namespace vigil::model
