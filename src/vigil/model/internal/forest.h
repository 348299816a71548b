#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace vigil::model::model_internal {

// Forest is a binary:logistic gbtree model read from XGBoost's JSON model text and laid out
// for evaluation. It reproduces XGBoost's predictor: go left when x < threshold, the default
// side when x is NaN, sum the leaves in float in tree order starting from the base margin.
//
// Layout. Trees no deeper than kMaxCompleteDepth (XGBoost's max_depth 6 gives at most 6) are
// padded to complete trees of the forest's depth D: per tree 2^D - 1 split nodes in heap
// order (children of i are 2i+1, 2i+2) and 2^D leaves; a leaf above depth D is copied to every
// leaf below it. A row then takes exactly D steps per tree with no data-dependent branch: the
// step is a compare and an add, so the CPU overlaps the walks of consecutive trees instead of
// stalling on mispredicted branches. Deeper forests fall back to a breadth-first node array
// walked with branches.
//
// Lifecycle: built at start-up (FromJson throws ModelError for a model it cannot evaluate:
// another objective or booster, categorical splits, several outputs). Immutable after;
// const methods may run on any number of threads.
class Forest {
 public:
  static constexpr int kMaxCompleteDepth = 8;

  static Forest FromJson(std::string_view json);

  size_t num_features() const { return num_features_; }
  size_t num_trees() const { return num_trees_; }
  // D for the complete layout; -1 when the forest uses the node walk.
  int complete_depth() const { return depth_; }

  // Margins of n rows (row-major, n x num_features()) into out[0, n). No allocation.
  void Margins(const float* rows, size_t n, float* out) const;

 private:
  struct Node {
    float value;       // threshold, or the leaf value
    uint32_t left;     // index of the left child (right = left + 1); unused for a leaf
    uint16_t feature;  // split feature
    uint8_t leaf;      // 1 for a leaf
    uint8_t default_left;
  };
  static_assert(sizeof(Node) == 12);

  // Complete layout: split i of tree t is thresholds_[t * splits + i] and
  // features_[t * splits + i] (bit 31: NaN goes left); its leaves are leaves_[t * (splits + 1)].
  static constexpr uint32_t kDefaultLeft = 1u << 31;

  void MarginsComplete(const float* rows, size_t n, float* out) const;
  void MarginsNodes(const float* rows, size_t n, float* out) const;

  int depth_ = -1;
  std::vector<float> thresholds_;
  std::vector<uint32_t> features_;
  std::vector<float> leaves_;

  std::vector<Node> nodes_;
  std::vector<uint32_t> roots_;

  size_t num_trees_ = 0;
  size_t num_features_ = 0;
  float base_margin_ = 0;
};

}  // namespace vigil::model::model_internal
