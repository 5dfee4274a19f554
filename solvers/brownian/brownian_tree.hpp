#pragma once
// Virtual Brownian tree (Levy's midpoint construction, Gaines & Lyons 1997; the idea behind
// torchsde's BrownianTree), counter-based so that it stores nothing and needs no query order:
//
//  - W(t_lo) = 0, W(t_hi) = sqrt(t_hi - t_lo) Z_0. The midpoint of the dyadic interval
//    (level k, index j) gets W(m) = (W(a) + W(b))/2 + sqrt((b - a)/4) Z_{2^k + j}, k < depth.
//  - Every Z is a standard normal keyed by (seed, Stream::kBrownian; particle, node, dimension
//    block) through Random123 Philox4x64-10 (analytics/random.hpp). So W(t) of particle p is a
//    pure function of (seed, p, t): independent of thread count, batch split and query order, and
//    any grid that queries it sees the same path. Increments over a coarse step are the sums of
//    the fine increments to rounding (the increments telescope).
//  - Below the leaves (width w = (t_hi - t_lo) 2^-depth) W is linear. Stated tolerance: W is
//    exact Brownian motion at the dyadic nodes of level `depth`; an increment over [a, b] has
//    variance (b - a) - delta with 0 <= delta <= w/2 (0 when a, b are nodes), and the joint law of
//    increments between nodes is exact. Default depth 40: w = 9.1e-13 on [1e-3, 1] (vp), 7.3e-11
//    on [0.002, 80] (edm).
//  - Auxiliary normals (auxiliary_normal(t, k), a Langevin corrector's): Philox on its own stream
//    (seed, Stream::kAuxiliary; particle, bits of t, k and dimension block), so they are independent
//    of every node of the tree and of each other, whatever grid or batch asks for them.
//  - Cost: one descent of `depth` levels per queried time (an increment shares the common prefix),
//    i.e. ~depth normals per particle and dimension per query; the tree caches nothing (samplers
//    reuse W at the previous step's end through StepNoise). W(t) from values() and from
//    increment() are the same arithmetic, so both routes agree bitwise.
#include "analytics/random.hpp"
#include "solvers/brownian/noise.hpp"

namespace flowgauge {

class BrownianTree final : public NoiseSource {
 public:
  static constexpr int kDefaultDepth = 40;
  // bridge_variance_scale != 1 multiplies every midpoint (bridge) variance: a deliberately WRONG
  // tree, for negative controls in the tests only.
  BrownianTree(int dim, std::uint64_t seed, double t_lo, double t_hi, int depth = kDefaultDepth,
               double bridge_variance_scale = 1.0);

  int dim() const override { return d_; }
  // out(:, j) = W(t) of particle first + j, t in [t_lo, t_hi].
  void values(double t, std::int64_t first, MatRef out) const;
  void increment(double ta, double tb, std::int64_t first, MatRef out) const override;
  bool path_values(double t, std::int64_t first, MatRef out) const override {
    values(t, first, out);
    return true;
  }
  void auxiliary_normal(double t, int k, std::int64_t first, MatRef out) const override;
  std::string describe() const override;

  double t_lo() const { return lo_; }
  double t_hi() const { return hi_; }
  int depth() const { return depth_; }
  double leaf_width() const;

 private:
  struct Cursor;
  void check(double t) const;
  void node_normals(std::uint64_t particle, std::uint64_t node, double* z) const;
  void down(std::uint64_t particle, Cursor& c, double t, double* z) const;  // one level towards t
  double leaf_weight(const Cursor& c, double t) const;

  int d_, depth_;
  std::uint64_t seed_;
  double lo_, hi_, span_, scale_;
  CounterRng rng_, aux_;
};

}  // namespace flowgauge
