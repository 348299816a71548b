#include "vigil/model/internal/forest.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include <simdjson.h>

#include "vigil/model/meta.h"

namespace vigil::model::model_internal {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  throw ModelError("model: " + what +
                   " (the native evaluator needs a binary:logistic gbtree "
                   "model without categorical splits; use Engine::kXgboost)");
}

template <typename T>
T Get(simdjson::dom::element e, std::string_view key) {
  T out{};
  if (e.at_key(key).get(out) != simdjson::SUCCESS) Fail("key '" + std::string(key) + "'");
  return out;
}

double Number(simdjson::dom::element e) {
  double v = 0;
  if (e.get_double().get(v) == simdjson::SUCCESS) return v;
  int64_t i = 0;
  if (e.get_int64().get(i) == simdjson::SUCCESS) return static_cast<double>(i);
  bool b = false;
  if (e.get_bool().get(b) == simdjson::SUCCESS) return b ? 1 : 0;
  Fail("a non-number in a tree array");
}

std::vector<double> Numbers(simdjson::dom::element tree, std::string_view key) {
  std::vector<double> out;
  for (simdjson::dom::element e : Get<simdjson::dom::array>(tree, key)) out.push_back(Number(e));
  return out;
}

}  // namespace

namespace {

// One tree as XGBoost stores it (node ids index these arrays; -1 children mark a leaf).
struct RawTree {
  std::vector<double> left, right, cond, index, default_left, cover;
  bool leaf(size_t id) const { return left[id] < 0; }
};

// Depth of the deepest leaf (a lone root is depth 0); fails on cycles and bad child ids.
int TreeDepth(const RawTree& t, size_t features) {
  const size_t n = t.left.size();
  std::vector<std::pair<size_t, int>> stack = {{0, 0}};
  size_t visited = 0;
  int depth = 0;
  while (!stack.empty()) {
    const auto [id, d] = stack.back();
    stack.pop_back();
    if (++visited > n) Fail("a malformed tree (a node reached twice)");
    depth = std::max(depth, d);
    if (t.leaf(id)) continue;
    const double l = t.left[id], r = t.right[id];
    if (l >= static_cast<double>(n) || r < 0 || r >= static_cast<double>(n) || t.index[id] < 0 ||
        t.index[id] >= static_cast<double>(features)) {
      Fail("a malformed tree (a child or feature out of range)");
    }
    stack.push_back({static_cast<size_t>(l), d + 1});
    stack.push_back({static_cast<size_t>(r), d + 1});
  }
  return depth;
}

}  // namespace

Forest Forest::FromJson(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) {
    Fail("not valid JSON");
  }
  const auto learner = Get<simdjson::dom::element>(doc, "learner");
  const auto objective =
      Get<std::string_view>(Get<simdjson::dom::element>(learner, "objective"), "name");
  if (objective != "binary:logistic") Fail("objective " + std::string(objective));
  const auto param = Get<simdjson::dom::element>(learner, "learner_model_param");
  const double num_class = std::stod(std::string(Get<std::string_view>(param, "num_class")));
  if (num_class > 1) Fail("several classes");
  if (auto target = param.at_key("num_target"); target.error() == simdjson::SUCCESS) {
    std::string_view t;
    if (target.get(t) == simdjson::SUCCESS && std::stod(std::string(t)) > 1) {
      Fail("several targets");
    }
  }
  const double base_score = std::stod(std::string(Get<std::string_view>(param, "base_score")));
  if (!(base_score > 0 && base_score < 1)) Fail("base_score outside (0, 1)");
  const auto booster = Get<simdjson::dom::element>(learner, "gradient_booster");
  if (Get<std::string_view>(booster, "name") != "gbtree") Fail("a booster other than gbtree");

  Forest f;
  f.num_features_ =
      static_cast<size_t>(std::stod(std::string(Get<std::string_view>(param, "num_feature"))));
  if (f.num_features_ > std::numeric_limits<uint16_t>::max()) Fail("too many features");
  // XGBoost's ProbToMargin for binary:logistic, in float as it computes it.
  const float base = static_cast<float>(base_score);
  f.base_margin_ = -std::log(1.0f / base - 1.0f);

  std::vector<RawTree> trees;
  int depth = 0;
  const auto model = Get<simdjson::dom::element>(booster, "model");
  for (simdjson::dom::element tree : Get<simdjson::dom::array>(model, "trees")) {
    RawTree t{Numbers(tree, "left_children"),    Numbers(tree, "right_children"),
              Numbers(tree, "split_conditions"), Numbers(tree, "split_indices"),
              Numbers(tree, "default_left"),     Numbers(tree, "sum_hessian")};
    const size_t n = t.left.size();
    if (n == 0 || t.right.size() != n || t.cond.size() != n || t.index.size() != n ||
        t.default_left.size() != n || t.cover.size() != n) {
      Fail("tree arrays of different lengths");
    }
    if (auto types = tree.at_key("split_type"); types.error() == simdjson::SUCCESS) {
      simdjson::dom::array a;
      if (types.get(a) == simdjson::SUCCESS) {
        for (simdjson::dom::element e : a) {
          if (Number(e) != 0) Fail("a categorical split");
        }
      }
    }
    depth = std::max(depth, TreeDepth(t, f.num_features_));
    trees.push_back(std::move(t));
  }
  f.num_trees_ = trees.size();

  f.max_depth_ = depth;
  // Breadth-first renumbering, so that siblings sit side by side.
  for (const RawTree& t : trees) {
    const uint32_t root = static_cast<uint32_t>(f.nodes_.size());
    f.roots_.push_back(root);
    std::vector<uint32_t> queue = {0};  // XGBoost node ids in new order
    f.nodes_.push_back({});
    for (size_t q = 0; q < queue.size(); ++q) {
      const uint32_t id = queue[q];
      f.covers_.push_back(static_cast<float>(t.cover[id]));
      Node& node = f.nodes_[root + q];
      if (t.leaf(id)) {
        node = Node{static_cast<float>(t.cond[id]), 0, 0, 1, 0};
        continue;
      }
      node = Node{static_cast<float>(t.cond[id]), static_cast<uint32_t>(root + queue.size()),
                  static_cast<uint16_t>(t.index[id]), 0,
                  static_cast<uint8_t>(t.default_left[id] != 0)};
      queue.push_back(static_cast<uint32_t>(t.left[id]));
      queue.push_back(static_cast<uint32_t>(t.right[id]));
      f.nodes_.resize(f.nodes_.size() + 2);
    }
    // Expected value of each node's subtree, weighted by cover, children before parents
    // (breadth-first order puts them after); the tree's is its root's. Float, in XGBoost's
    // order of operations, so the bias matches pred_contribs.
    std::vector<float> mean(queue.size());
    for (size_t q = queue.size(); q-- > 0;) {
      const Node& node = f.nodes_[root + q];
      if (node.leaf) {
        mean[q] = node.value;
        continue;
      }
      const size_t l = node.left - root;
      float m = mean[l] * f.covers_[node.left];
      m += mean[l + 1] * f.covers_[node.left + 1];
      const float cover = f.covers_[root + q];
      mean[q] = cover > 0 ? m / cover : 0.0f;
    }
    f.tree_means_.push_back(mean[0]);
  }
  f.BuildShapRatios();

  if (depth > kMaxCompleteDepth) return f;  // deeper forests score with the node walk
  f.depth_ = depth;
  const size_t splits = (size_t{1} << depth) - 1;
  f.thresholds_.assign(trees.size() * splits, 0.0f);
  f.features_.assign(trees.size() * splits, 0);
  f.leaves_.assign(trees.size() * (splits + 1), 0.0f);
  for (size_t ti = 0; ti < trees.size(); ++ti) {
    const RawTree& t = trees[ti];
    float* th = f.thresholds_.data() + ti * splits;
    uint32_t* fe = f.features_.data() + ti * splits;
    float* leaves = f.leaves_.data() + ti * (splits + 1);
    // (XGBoost node id, heap position, depth); padding splits stay threshold 0, feature 0:
    // either way leads to copies of the same leaf.
    std::vector<std::tuple<size_t, size_t, int>> stack = {{0, 0, 0}};
    while (!stack.empty()) {
      const auto [id, pos, d] = stack.back();
      stack.pop_back();
      if (t.leaf(id)) {
        // The leaves under heap position `pos` at depth d: a run of 2^(D-d) at depth D.
        size_t first = pos;
        for (int k = d; k < depth; ++k) first = 2 * first + 1;
        const size_t count = size_t{1} << (depth - d);
        for (size_t k = 0; k < count; ++k) {
          leaves[first - splits + k] = static_cast<float>(t.cond[id]);
        }
        continue;
      }
      th[pos] = static_cast<float>(t.cond[id]);
      fe[pos] = static_cast<uint32_t>(t.index[id]) | (t.default_left[id] != 0 ? kDefaultLeft : 0);
      stack.push_back({static_cast<size_t>(t.left[id]), 2 * pos + 1, d + 1});
      stack.push_back({static_cast<size_t>(t.right[id]), 2 * pos + 2, d + 1});
    }
  }
  return f;
}

void Forest::Margins(const float* rows, size_t n, float* out) const {
  for (size_t r = 0; r < n; ++r) out[r] = base_margin_;
  if (depth_ >= 0) {
    MarginsComplete(rows, n, out);
  } else {
    MarginsNodes(rows, n, out);
  }
}

void Forest::MarginsComplete(const float* rows, size_t n, float* out) const {
  const size_t splits = (size_t{1} << depth_) - 1;
  const size_t leaf_count = splits + 1;
  const int depth = depth_;
  // One step down tree `t` from heap position i: right when !(x < threshold), except that a
  // NaN (x != x) goes to its default side. Bitwise operators on 0/1 values keep it free of
  // branches.
  auto step = [&](size_t t, uint32_t i, const float* row) {
    const uint32_t f = features_[t * splits + i];
    const float x = row[f & ~kDefaultLeft];
    const uint32_t less = static_cast<uint32_t>(x < thresholds_[t * splits + i]);
    const uint32_t nan_left = static_cast<uint32_t>(x != x) & (f >> 31);
    return 2 * i + 2 - (less | nan_left);
  };
  // Trees go in groups of kLanes walked in lockstep: kLanes independent chains of loads keep
  // the core busy while each waits on its loads. A group's trees stay in cache for every row
  // of the batch. Each row still adds its leaves in tree order, as XGBoost does, so the float
  // sums agree.
  constexpr size_t kLanes = 8;
  size_t t = 0;
  for (; t + kLanes <= num_trees_; t += kLanes) {
    const float* row = rows;
    for (size_t r = 0; r < n; ++r, row += num_features_) {
      uint32_t idx[kLanes] = {};
      for (int d = 0; d < depth; ++d) {
        for (size_t l = 0; l < kLanes; ++l) idx[l] = step(t + l, idx[l], row);
      }
      float sum = out[r];
      for (size_t l = 0; l < kLanes; ++l) sum += leaves_[(t + l) * leaf_count + idx[l] - splits];
      out[r] = sum;
    }
  }
  for (; t < num_trees_; ++t) {
    const float* row = rows;
    for (size_t r = 0; r < n; ++r, row += num_features_) {
      uint32_t i = 0;
      for (int d = 0; d < depth; ++d) i = step(t, i, row);
      out[r] += leaves_[t * leaf_count + i - splits];
    }
  }
}

void Forest::MarginsNodes(const float* rows, size_t n, float* out) const {
  const Node* nodes = nodes_.data();
  for (uint32_t root : roots_) {
    const float* row = rows;
    for (size_t r = 0; r < n; ++r, row += num_features_) {
      uint32_t i = root;
      while (!nodes[i].leaf) {
        const Node& node = nodes[i];
        const float x = row[node.feature];
        const bool right = x != x ? !node.default_left : !(x < node.value);
        i = node.left + static_cast<uint32_t>(right);
      }
      out[r] += nodes[i].value;
    }
  }
}

}  // namespace vigil::model::model_internal
