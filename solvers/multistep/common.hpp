#pragma once
// Shared pieces of the multistep family (lms, ipndm, deis_tab, unipc):
//  - exact integrals of Lagrange basis polynomials (closed-form polynomial integration),
//  - Gauss-Legendre nodes and an adaptive composite Gauss-Legendre integrator,
//  - phi_k functions evaluated without cancellation,
//  - a tiny dense linear solve (n <= 4) that never allocates,
//  - a ring buffer of past evaluations, allocated once in start().
#include <algorithm>
#include <fmt/format.h>
#include <array>
#include <cassert>
#include <cmath>
#include <limits>
#include <numbers>
#include <span>
#include <stdexcept>
#include <vector>

#include "analytics/errors.hpp"
#include "analytics/mixture.hpp"

namespace flowgauge::multistep {

constexpr int kMaxHistory = 4;  // highest multistep order supported here

// Integral over [a, b] of the Lagrange basis polynomial L_j on `nodes` (L_j(nodes[k]) = delta_jk).
// Exact up to rounding: L_j is expanded in the shifted variable u = tau - a (well conditioned,
// nodes lie within a few steps of a) and integrated term by term: sum_m c_m (b - a)^(m+1) / (m+1).
// k-diffusion integrates the same weights with scipy quad (epsrel 1e-4; samplers.md 3.5.6).
inline double lagrange_integral(std::span<const double> nodes, int j, double a, double b) {
  const int q = static_cast<int>(nodes.size());
  assert(q >= 1 && q <= kMaxHistory + 1 && j >= 0 && j < q);
  std::array<double, kMaxHistory + 2> c{};  // coefficients of the numerator, ascending powers of u
  c[0] = 1.0;
  int deg = 0;
  double denom = 1.0;
  for (int k = 0; k < q; ++k) {
    if (k == j) continue;
    const double r = nodes[k] - a;  // multiply by (u - r)
    for (int m = deg + 1; m >= 1; --m) c[m] = c[m - 1] - r * c[m];
    c[0] = -r * c[0];
    ++deg;
    denom *= nodes[j] - nodes[k];
  }
  const double h = b - a;
  double s = 0.0, hp = h;
  for (int m = 0; m <= deg; ++m, hp *= h) s += c[m] * hp / (m + 1);
  return s / denom;
}

// Lagrange basis L_j on `nodes`, evaluated at x (product form).
inline double lagrange_basis(std::span<const double> nodes, int j, double x) {
  double v = 1.0;
  for (std::size_t k = 0; k < nodes.size(); ++k)
    if (static_cast<int>(k) != j) v *= (x - nodes[k]) / (nodes[j] - nodes[k]);
  return v;
}

// n-point Gauss-Legendre rule on [-1, 1] (Newton on P_n from the Tricomi initial guess;
// nodes and weights to ~1 ulp for n <= 64).
struct GaussLegendre {
  std::vector<double> x, w;
  explicit GaussLegendre(int n) : x(n), w(n) {
    for (int i = 0; i < (n + 1) / 2; ++i) {
      double z = std::cos(std::numbers::pi * (i + 0.75) / (n + 0.5)), dp = 0.0;
      for (int it = 0; it < 100; ++it) {
        double p0 = 1.0, p1 = z;  // P_0, P_1
        for (int k = 2; k <= n; ++k) {
          const double p2 = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
          p0 = p1;
          p1 = p2;
        }
        dp = n * (z * p1 - p0) / (z * z - 1.0);
        const double dz = p1 / dp;
        z -= dz;
        if (std::abs(dz) < 1e-16) break;
      }
      {  // recompute P_n' at the converged node for the weight
        double p0 = 1.0, p1 = z;
        for (int k = 2; k <= n; ++k) {
          const double p2 = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
          p0 = p1;
          p1 = p2;
        }
        dp = n * (z * p1 - p0) / (z * z - 1.0);
      }
      x[i] = -z;
      x[n - 1 - i] = z;
      w[i] = w[n - 1 - i] = 2.0 / ((1.0 - z * z) * dp * dp);
    }
  }
  // Integral of f over [a, b]; optionally also the rule applied to |f| (for rounding floors).
  template <class F>
  double integrate(F&& f, double a, double b, double* abs_integral = nullptr) const {
    const double c = 0.5 * (a + b), r = 0.5 * (b - a);
    double s = 0.0, sa = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double v = w[i] * f(c + r * x[i]);
      s += v;
      sa += std::abs(v);
    }
    if (abs_integral) *abs_integral = std::abs(r) * sa;
    return r * s;
  }
};

// Adaptive composite Gauss-Legendre (bisection) on [a, b]: a panel is accepted when the n-point
// rule on it and on its two halves agree to `tol` (absolute, per panel), or to rounding
// (16 eps int |f| over the panel); the halves' sum is returned, whose error is far below the
// difference for an analytic integrand (n = 16: the error ratio is ~2^-32). The integrands here
// are analytic on each step but may have a nearby endpoint singularity (rho_dot ~ t^(-1/2) near
// t = 0 for VP); bisection refines geometrically towards it. An integrand noisier than its own
// rounding estimate (alpha(t) ~ 6e-17 at vp-cosine's t = 1) would be bisected everywhere, 2^60
// panels: past `max_panels` the integral is refused by name instead of hanging.
template <class F>
double integrate_adaptive_impl(const GaussLegendre& gl, F& f, double a, double b, double tol, int depth, long& panels) {
  if (--panels < 0)
    throw InputError(fmt::format("adaptive quadrature over t in [{}, {}] does not converge: the integrand is not "
                                 "resolved in double precision (a grid end too close to alpha = 0 or sigma = 0?)",
                                 a, b));
  const double m = 0.5 * (a + b);
  double absl = 0, absr = 0;
  const double whole = gl.integrate(f, a, b);
  const double left = gl.integrate(f, a, m, &absl), right = gl.integrate(f, m, b, &absr);
  const double floor = 16 * std::numeric_limits<double>::epsilon() * (absl + absr);
  if (std::abs(whole - (left + right)) <= std::max(tol, floor) || depth >= 60) return left + right;
  return integrate_adaptive_impl(gl, f, a, m, tol, depth + 1, panels) +
         integrate_adaptive_impl(gl, f, m, b, tol, depth + 1, panels);
}
template <class F>
double integrate_adaptive(const GaussLegendre& gl, F&& f, double a, double b, double tol, long max_panels = 1L << 14) {
  return integrate_adaptive_impl(gl, f, a, b, tol, 0, max_panels);
}

// phi_k(z) (samplers.md 0.1): phi_0 = e^z, phi_{k+1}(z) = (phi_k(z) - 1/k!)/z, i.e.
// phi_k(z) = sum_{m>=0} z^m / (m + k)!. The recursion cancels catastrophically for small |z|
// (UniPC computes it that way); below |z| = 1 the series is summed instead (|z|^30/30! < 1e-32).
inline double phi(int k, double z) {
  if (std::abs(z) < 1.0) {
    double term = 1.0;
    for (int m = 1; m <= k; ++m) term /= m;  // 1/k!
    double s = 0.0;
    for (int m = 0; m < 30; ++m) {
      s += term;
      term *= z / (m + k + 1);
    }
    return s;
  }
  double v = std::expm1(z) / z;  // phi_1
  double fact = 1.0;             // 1/k! for the current k
  for (int j = 1; j < k; ++j) {
    fact /= j;
    v = (v - fact) / z;
  }
  return k == 0 ? std::exp(z) : v;
}

// Solve A x = b for n <= kMaxHistory (Gaussian elimination with partial pivoting, row-major A).
// No allocation; throws on an exactly singular matrix (distinct nodes never give one).
inline void small_solve(int n, std::array<double, kMaxHistory * kMaxHistory> A, std::array<double, kMaxHistory> b,
                        std::array<double, kMaxHistory>& x) {
  for (int c = 0; c < n; ++c) {
    int p = c;
    for (int r = c + 1; r < n; ++r)
      if (std::abs(A[r * n + c]) > std::abs(A[p * n + c])) p = r;
    if (A[p * n + c] == 0.0) throw std::runtime_error("small_solve: singular matrix");
    if (p != c) {
      for (int k = 0; k < n; ++k) std::swap(A[c * n + k], A[p * n + k]);
      std::swap(b[c], b[p]);
    }
    for (int r = c + 1; r < n; ++r) {
      const double f = A[r * n + c] / A[c * n + c];
      for (int k = c; k < n; ++k) A[r * n + k] -= f * A[c * n + k];
      b[r] -= f * b[c];
    }
  }
  for (int r = n - 1; r >= 0; --r) {
    double s = b[r];
    for (int k = r + 1; k < n; ++k) s -= A[r * n + k] * x[k];
    x[r] = s / A[r * n + r];
  }
}

// Ring buffer of the last `capacity` evaluations (d x n matrices) and their abscissae, newest
// first. Matrices are allocated in reset(); push() recycles the oldest slot.
class History {
 public:
  void reset(int capacity, Eigen::Index d, Eigen::Index n) {
    if (static_cast<int>(buf_.size()) != capacity) buf_.assign(capacity, MatrixXd());
    for (auto& m : buf_) m.resize(d, n);
    when_.assign(capacity, 0.0);
    size_ = 0;
    head_ = 0;
  }
  void clear() { size_ = 0; }
  // Slot for a new newest entry (overwrites the oldest when full); fill it after the call.
  MatrixXd& push(double when) {
    head_ = (head_ + static_cast<int>(buf_.size()) - 1) % static_cast<int>(buf_.size());
    size_ = std::min(size_ + 1, static_cast<int>(buf_.size()));
    when_[head_] = when;
    return buf_[head_];
  }
  int size() const { return size_; }
  const MatrixXd& operator[](int j) const { return buf_[(head_ + j) % buf_.size()]; }  // j = 0 newest
  double when(int j) const { return when_[(head_ + j) % buf_.size()]; }

 private:
  std::vector<MatrixXd> buf_;
  std::vector<double> when_;
  int size_ = 0, head_ = 0;
};

}  // namespace flowgauge::multistep
