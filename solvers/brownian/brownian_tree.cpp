#include "solvers/brownian/brownian_tree.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <fmt/format.h>
#include <numbers>
#include <stdexcept>
#include <vector>

#include "analytics/errors.hpp"

namespace flowgauge {

void NoiseSource::normal(double ta, double tb, std::int64_t first, MatRef out) const {
  if (!(ta != tb)) throw std::invalid_argument("NoiseSource::normal: empty step");
  increment(ta, tb, first, out);
  out /= std::sqrt(std::abs(tb - ta));
}

void NoiseSource::auxiliary_normal(double, int, std::int64_t, MatRef) const {
  throw InputError(fmt::format("{}: has no auxiliary normals (the sampler needs noise that is not a Brownian "
                               "increment, e.g. a Langevin corrector's; use a generated path, --seed)",
                               describe()));
}

namespace {
// d standard normals (Box-Muller on Philox uniforms, counter (particle, block, sub0 + dimension block)).
void counter_normals(const CounterRng& rng, std::uint64_t particle, std::uint64_t block, std::uint64_t sub0, int d,
                     double* z) {
  for (int i = 0; i < d; i += 4) {
    const auto u = rng.uniforms(particle, block, sub0 + static_cast<std::uint64_t>(i / 4));
    const double r0 = std::sqrt(-2.0 * std::log(u[0]));
    z[i] = r0 * std::cos(2 * std::numbers::pi * u[1]);
    if (i + 1 < d) z[i + 1] = r0 * std::sin(2 * std::numbers::pi * u[1]);
    if (i + 2 < d) {
      const double r1 = std::sqrt(-2.0 * std::log(u[2]));
      z[i + 2] = r1 * std::cos(2 * std::numbers::pi * u[3]);
      if (i + 3 < d) z[i + 3] = r1 * std::sin(2 * std::numbers::pi * u[3]);
    }
  }
}
}  // namespace

// Descent state: dyadic interval (level k, index j) = [lo + span j 2^-k, lo + span (j+1) 2^-k]
// with the path values wa, wb (d each) at its ends.
struct BrownianTree::Cursor {
  int k = 0;
  std::uint64_t j = 0;
  double* wa = nullptr;
  double* wb = nullptr;
};

BrownianTree::BrownianTree(int dim, std::uint64_t seed, double t_lo, double t_hi, int depth,
                           double bridge_variance_scale)
    : d_(dim), depth_(depth), seed_(seed), lo_(t_lo), hi_(t_hi), span_(t_hi - t_lo),
      scale_(bridge_variance_scale), rng_(seed, Stream::kBrownian), aux_(seed, Stream::kAuxiliary) {
  if (dim < 1) throw InputError(fmt::format("Brownian tree: dimension {} < 1", dim));
  if (!(t_lo < t_hi) || !std::isfinite(t_lo) || !std::isfinite(t_hi))
    throw InputError(fmt::format("Brownian tree: need finite t_lo < t_hi, got [{}, {}]", t_lo, t_hi));
  if (depth < 0 || depth > 60) throw InputError(fmt::format("Brownian tree: depth {} outside [0, 60]", depth));
  if (!(bridge_variance_scale >= 0)) throw InputError("Brownian tree: bridge variance scale must be >= 0");
}

double BrownianTree::leaf_width() const { return std::ldexp(span_, -depth_); }

std::string BrownianTree::describe() const {
  return fmt::format("brownian-tree(seed={}, t=[{}, {}], depth={}{})", seed_, lo_, hi_, depth_,
                     scale_ == 1.0 ? "" : fmt::format(", bridge_variance_scale={}", scale_));
}

void BrownianTree::check(double t) const {
  if (!(t >= lo_ && t <= hi_))
    throw std::out_of_range(fmt::format("Brownian tree on [{}, {}] queried at t = {}", lo_, hi_, t));
}

// d standard normals of one node (counter (particle, node, dimension block)).
void BrownianTree::node_normals(std::uint64_t particle, std::uint64_t node, double* z) const {
  counter_normals(rng_, particle, node, 0, d_, z);
}

// Counter (particle, bits of t, k 2^32 + dimension block): t = -0.0 is keyed as 0.0.
void BrownianTree::auxiliary_normal(double t, int k, std::int64_t first, MatRef out) const {
  if (k < 0) throw std::invalid_argument("BrownianTree::auxiliary_normal: negative index");
  if (out.rows() != d_) throw std::invalid_argument("BrownianTree::auxiliary_normal: wrong row count");
  const auto tbits = std::bit_cast<std::uint64_t>(t == 0.0 ? 0.0 : t);
  const std::uint64_t sub0 = static_cast<std::uint64_t>(k) << 32;
  for (Eigen::Index p = 0; p < out.cols(); ++p)
    counter_normals(aux_, static_cast<std::uint64_t>(first + p), tbits, sub0, d_, out.col(p).data());
}

// Midpoint of the cursor's interval, then keep the half that contains t (t >= midpoint: right).
void BrownianTree::down(std::uint64_t particle, Cursor& c, double t, double* z) const {
  const std::uint64_t m2 = 2 * c.j + 1;  // midpoint = lo + span m2 2^-(k+1)
  const double tm = lo_ + span_ * std::ldexp(static_cast<double>(m2), -(c.k + 1));
  const double sd = std::sqrt(scale_ * std::ldexp(span_, -(c.k + 2)));  // bridge variance (b - a)/4
  node_normals(particle, (std::uint64_t{1} << c.k) + c.j, z);
  const bool right = t >= tm;
  double* w = right ? c.wa : c.wb;  // the end that moves to the midpoint
  for (int i = 0; i < d_; ++i) w[i] = 0.5 * (c.wa[i] + c.wb[i]) + sd * z[i];
  c.j = right ? m2 : m2 - 1;
  c.k += 1;
}

double BrownianTree::leaf_weight(const Cursor& c, double t) const {
  const double a = lo_ + span_ * std::ldexp(static_cast<double>(c.j), -c.k);
  const double w = std::ldexp(span_, -c.k);
  return std::clamp((t - a) / w, 0.0, 1.0);
}

namespace {
// Scratch for a few d-vectors without allocating for small d.
class Scratch {
 public:
  Scratch(int d, int count) {
    if (d * count <= static_cast<int>(sizeof(buf_) / sizeof(double)))
      p_ = buf_;
    else {
      heap_.resize(static_cast<std::size_t>(d) * count);
      p_ = heap_.data();
    }
    d_ = d;
  }
  double* operator[](int i) { return p_ + static_cast<std::size_t>(i) * d_; }

 private:
  double buf_[192];
  std::vector<double> heap_;
  double* p_;
  int d_;
};
}  // namespace

void BrownianTree::values(double t, std::int64_t first, MatRef out) const {
  check(t);
  if (out.rows() != d_) throw std::invalid_argument("BrownianTree::values: wrong row count");
  Scratch s(d_, 3);
  const double root_sd = std::sqrt(span_);
  for (Eigen::Index p = 0; p < out.cols(); ++p) {
    const auto particle = static_cast<std::uint64_t>(first + p);
    Cursor c{0, 0, s[0], s[1]};
    node_normals(particle, 0, s[2]);
    for (int i = 0; i < d_; ++i) {
      c.wa[i] = 0.0;
      c.wb[i] = root_sd * s[2][i];
    }
    while (c.k < depth_) down(particle, c, t, s[2]);
    const double f = leaf_weight(c, t);
    for (int i = 0; i < d_; ++i) out(i, p) = c.wa[i] + f * (c.wb[i] - c.wa[i]);
  }
}

void BrownianTree::increment(double ta, double tb, std::int64_t first, MatRef out) const {
  check(ta);
  check(tb);
  if (out.rows() != d_) throw std::invalid_argument("BrownianTree::increment: wrong row count");
  Scratch s(d_, 5);
  const double root_sd = std::sqrt(span_);
  const double lo = std::min(ta, tb), hi = std::max(ta, tb);
  const double sign = tb >= ta ? 1.0 : -1.0;
  for (Eigen::Index p = 0; p < out.cols(); ++p) {
    const auto particle = static_cast<std::uint64_t>(first + p);
    Cursor c{0, 0, s[0], s[1]};
    node_normals(particle, 0, s[4]);
    for (int i = 0; i < d_; ++i) {
      c.wa[i] = 0.0;
      c.wb[i] = root_sd * s[4][i];
    }
    // Common prefix: both times in the same half.
    while (c.k < depth_) {
      const double tm = lo_ + span_ * std::ldexp(static_cast<double>(2 * c.j + 1), -(c.k + 1));
      if ((lo >= tm) != (hi >= tm)) break;
      down(particle, c, lo, s[4]);
    }
    // Split: the upper time continues in a copy of the cursor.
    Cursor u{c.k, c.j, s[2], s[3]};
    std::copy(c.wa, c.wa + d_, u.wa);
    std::copy(c.wb, c.wb + d_, u.wb);
    while (c.k < depth_) down(particle, c, lo, s[4]);
    while (u.k < depth_) down(particle, u, hi, s[4]);
    const double fl = leaf_weight(c, lo), fh = leaf_weight(u, hi);
    for (int i = 0; i < d_; ++i) {
      const double wl = c.wa[i] + fl * (c.wb[i] - c.wa[i]);
      const double wh = u.wa[i] + fh * (u.wb[i] - u.wa[i]);
      out(i, p) = sign * (wh - wl);
    }
  }
}

}  // namespace flowgauge
