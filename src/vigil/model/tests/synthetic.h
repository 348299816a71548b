#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace vigil::model::testing {

// A generated fraud-like data set: `cols` standard-normal features (column 5 is missing in
// about 5% of rows); the label depends nonlinearly on columns 0, 1 and 2 plus noise, and
// `positive_rate` of the rows are positive (the top of a latent score).
struct Synthetic {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<float> x;  // rows x cols, row-major
  std::vector<float> y;
  std::vector<std::string> names;

  static Synthetic Make(size_t rows, size_t cols, uint64_t seed, double positive_rate = 0.02) {
    Synthetic s;
    s.rows = rows;
    s.cols = cols;
    s.x.resize(rows * cols);
    s.y.resize(rows);
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal;
    std::uniform_real_distribution<float> uniform;
    std::vector<float> latent(rows);
    for (size_t r = 0; r < rows; ++r) {
      float* row = &s.x[r * cols];
      for (size_t c = 0; c < cols; ++c) row[c] = normal(rng);
      if (cols > 5 && uniform(rng) < 0.05f) row[5] = std::nanf("");
      latent[r] =
          row[0] * row[1] + 1.5f * std::sin(1.5f * row[2]) + 0.5f * row[0] + 0.5f * normal(rng);
    }
    std::vector<float> sorted = latent;
    const size_t cut = static_cast<size_t>(static_cast<double>(rows) * (1 - positive_rate));
    std::nth_element(sorted.begin(), sorted.begin() + cut, sorted.end());
    const float threshold = sorted[cut];
    for (size_t r = 0; r < rows; ++r) s.y[r] = latent[r] >= threshold ? 1.0f : 0.0f;
    for (size_t c = 0; c < cols; ++c) {
      std::string name = "f";  // not "f" + to_string(c): GCC 12 -Wrestrict false positive
      name += std::to_string(c);
      s.names.push_back(std::move(name));
    }
    return s;
  }

  // Column c of every row.
  std::vector<float> Column(size_t c) const {
    std::vector<float> out(rows);
    for (size_t r = 0; r < rows; ++r) out[r] = x[r * cols + c];
    return out;
  }
};

}  // namespace vigil::model::testing
