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
// Explanations. Every forest also keeps its trees as nodes (breadth-first, siblings side by
// side) with each node's cover (XGBoost's `sum_hessian`), for path-dependent TreeSHAP
// (tree_shap.cc): Lundberg et al. 2018, "Consistent Individualized Feature Attribution for
// Tree Ensembles", Algorithm 2. Contributions() gives, per feature, its SHAP value in margin
// space and, last, the bias (the base margin plus every tree's cover-weighted mean leaf),
// summing to the row's margin; they equal XGBoost's pred_contribs (model_test compares).
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

  // One element of TreeSHAP's unique path: the feature split on, the fractions of the paths
  // that go this way when the feature is absent (zero: by cover) or present (one: 0 or 1),
  // and the permutation weight.
  struct PathElement {
    int32_t feature;
    float zero;
    float one;
    float weight;
  };
  // Scratch space Contributions needs: PathElement count for this forest's depth.
  size_t ShapScratchSize() const;
  // TreeSHAP contributions of one row (num_features() values) into out[0, num_features()],
  // bias last. `scratch` holds ShapScratchSize() elements, `tree_phi` num_features() + 1
  // floats; both are overwritten. No allocation; callers keep the buffers per worker.
  void Contributions(const float* row, float* out, PathElement* scratch, float* tree_phi) const;

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
  void ShapRecurse(uint32_t node, const float* row, float* phi, PathElement* path, uint32_t length,
                   float zero, float one, int32_t feature) const;

  int depth_ = -1;
  std::vector<float> thresholds_;
  std::vector<uint32_t> features_;
  std::vector<float> leaves_;

  // Node layout (every forest: the node walk for deep trees, and TreeSHAP): tree t starts at
  // nodes_[roots_[t]]; covers_[i] is node i's cover; tree_means_[t] its expected value.
  std::vector<Node> nodes_;
  std::vector<uint32_t> roots_;
  std::vector<float> covers_;
  std::vector<float> tree_means_;
  // TreeSHAP's constant ratios per path length (BuildShapRatios, tree_shap.cc).
  std::vector<float> ratios_;
  void BuildShapRatios();
  int max_depth_ = 0;  // of the deepest leaf, any layout

  size_t num_trees_ = 0;
  size_t num_features_ = 0;
  float base_margin_ = 0;
};

}  // namespace vigil::model::model_internal
