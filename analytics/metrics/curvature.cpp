#include "analytics/metrics/curvature.hpp"

#include <cmath>
#include <stdexcept>

namespace flowgauge::metrics {

CurvatureResult trajectory_geometry(std::span<const MatrixXd> Z, std::span<const MatrixXd> dZ,
                                    std::span<const double> tau) {
  const std::size_t n = tau.size();
  if (n < 3) throw std::invalid_argument("curvature: need at least 3 nodes (T >= 2)");
  if (Z.size() != n || dZ.size() != n) throw std::invalid_argument("curvature: Z, dZ/dtau and tau differ in length");
  TrajectoryGeometry g(tau, Z[0], Z[n - 1]);
  for (std::size_t i = 0; i < n; ++i) g.add(Z[i], dZ[i]);
  return g.finish();
}

TrajectoryGeometry::TrajectoryGeometry(std::span<const double> tau, const ConstMatRef& Z_first, const ConstMatRef& Z_last) {
  const std::size_t n = tau.size();
  if (n < 3) throw std::invalid_argument("curvature: need at least 3 nodes (T >= 2)");
  if (Z_first.rows() != Z_last.rows() || Z_first.cols() != Z_last.cols())
    throw std::invalid_argument("curvature: every state and drift must be d x N");
  T_ = static_cast<Eigen::Index>(n) - 1;
  dtau_ = tau[n - 1] - tau[0];  // dX/ds = dtau * dZ/dtau
  r_.s.resize(T_ + 1);
  for (Eigen::Index i = 0; i <= T_; ++i) r_.s(i) = (tau[i] - tau[0]) / dtau_;
  r_.s(T_) = 1.0;
  h_.resize(T_);  // steps in s, all > 0 iff tau is strictly monotone
  for (Eigen::Index i = 0; i < T_; ++i) {
    h_(i) = r_.s(i + 1) - r_.s(i);
    if (!(h_(i) > 0)) throw std::invalid_argument("curvature: tau must be strictly monotone");
  }
  const Eigen::Index d = Z_first.rows(), N = Z_first.cols();
  D_ = Z_last - Z_first;
  trapV_ = MatrixXd::Zero(d, N);
  A_.resize(d, N);
  r_.S = VectorXd::Zero(N);
  r_.K = VectorXd::Zero(N);
  r_.L = VectorXd::Zero(N);
  r_.turn = VectorXd::Zero(N);
  r_.kappa.resize(T_ + 1);
  r_.speed.resize(T_ + 1);
}

void TrajectoryGeometry::add(const ConstMatRef& Z, const ConstMatRef& dZ) {
  if (added_ > T_) throw std::invalid_argument("curvature: more nodes added than times given");
  if (Z.rows() != D_.rows() || Z.cols() != D_.cols() || dZ.rows() != D_.rows() || dZ.cols() != D_.cols())
    throw std::invalid_argument("curvature: every state and drift must be d x N");
  Z_[added_ % 3] = Z;  // no allocation once the three slots have their size
  V_[added_ % 3] = dZ;
  const Eigen::Index k = added_++;
  if (k == 2) node(0);
  if (k >= 2) node(k - 1);
}

CurvatureResult TrajectoryGeometry::finish() {
  if (added_ != T_ + 1) throw std::invalid_argument("curvature: Z, dZ/dtau and tau differ in length");
  node(T_);
  const Eigen::Index N = D_.cols();
  CurvatureResult& r = r_;
  const VectorXd chord = D_.colwise().norm().transpose();
  r.R.resize(N);
  double rsum = 0;
  Eigen::Index rcount = 0;
  for (Eigen::Index j = 0; j < N; ++j) {
    r.R(j) = r.L(j) > 0 ? chord(j) / r.L(j) : NAN;
    if (r.L(j) > 0) rsum += r.R(j), ++rcount;
  }
  r.straightness = r.S.mean();
  r.kinetic = r.K.mean();
  r.length = r.L.mean();
  r.chord2 = chord.squaredNorm() / static_cast<double>(N);
  r.chord_ratio = rcount ? rsum / static_cast<double>(rcount) : NAN;
  r.turning = r.turn.mean();
  r.identity_gap = r.straightness - (r.kinetic - r.chord2);
  r.defect = std::sqrt((D_ - trapV_).squaredNorm() / static_cast<double>(N));
  return std::move(r_);
}

void TrajectoryGeometry::node(Eigen::Index i) {
  const Eigen::Index T = T_, N = D_.cols();
  const double dtau = dtau_;
  const VectorXd& h = h_;
  CurvatureResult& r = r_;
  const MatrixXd& V = Vw(i);  // Xdot = dtau * V
  // Trapezoid weight of node i: (h_{i-1} + h_i) / 2.
  const double q = 0.5 * ((i > 0 ? h(i - 1) : 0.0) + (i < T ? h(i) : 0.0));
  r.S += q * (D_ - dtau * V).colwise().squaredNorm().transpose();
  r.K += (q * dtau * dtau) * V.colwise().squaredNorm().transpose();
  r.L += (q * std::abs(dtau)) * V.colwise().norm().transpose();
  trapV_ += (q * dtau) * V;
  r.speed(i) = std::abs(dtau) * V.colwise().norm().mean();

  // dV/ds by 3-point differences on the non-uniform grid (second order).
  double c0, c1, c2;
  Eigen::Index a, b, c;
  if (i == 0) {  // one-sided forward: f'(s0) ~ -(2h0+h1)/(h0(h0+h1)) f0 + (h0+h1)/(h0 h1) f1 - h0/(h1(h0+h1)) f2
    const double h0 = h(0), h1 = h(1);
    a = 0, b = 1, c = 2;
    c0 = -(2 * h0 + h1) / (h0 * (h0 + h1)), c1 = (h0 + h1) / (h0 * h1), c2 = -h0 / (h1 * (h0 + h1));
  } else if (i == T) {  // mirror image of the above
    const double h0 = h(T - 1), h1 = h(T - 2);
    a = T, b = T - 1, c = T - 2;
    c0 = (2 * h0 + h1) / (h0 * (h0 + h1)), c1 = -(h0 + h1) / (h0 * h1), c2 = h0 / (h1 * (h0 + h1));
  } else {  // central: -hp/(hm(hm+hp)) f_{i-1} + (hp-hm)/(hm hp) f_i + hm/(hp(hm+hp)) f_{i+1}
    const double hm = h(i - 1), hp = h(i);
    a = i - 1, b = i, c = i + 1;
    c0 = -hp / (hm * (hm + hp)), c1 = (hp - hm) / (hm * hp), c2 = hm / (hp * (hm + hp));
  }
  A_.noalias() = c0 * Vw(a) + c1 * Vw(b) + c2 * Vw(c);
  // kappa = |Xddot_perp| / |Xdot|^2 = |A_perp| / (|dtau| |V|^2); the perpendicular part is formed
  // explicitly (not |A|^2 - (A.V)^2/|V|^2, which would lose half the digits for nearly straight paths).
  double ksum = 0;
  Eigen::Index kcount = 0;
  for (Eigen::Index j = 0; j < N; ++j) {
    const double vv = V.col(j).squaredNorm();
    if (!(vv > 0)) continue;
    const double av = A_.col(j).dot(V.col(j));
    ksum += (A_.col(j) - (av / vv) * V.col(j)).norm() / (std::abs(dtau) * vv);
    ++kcount;
  }
  r.kappa(i) = kcount ? ksum / static_cast<double>(kcount) : NAN;

  // Turning angle at interior vertices, angle(u, v) = 2 atan2(|u^ - v^|, |u^ + v^|) (accurate for
  // angles near 0 and pi); a zero-length segment contributes nothing.
  if (i > 0 && i < T) {
    const MatrixXd &Zm = Zw(i - 1), &Z0 = Zw(i), &Zp = Zw(i + 1);
    for (Eigen::Index j = 0; j < N; ++j) {
      const auto u = Zp.col(j) - Z0.col(j);
      const auto v = Z0.col(j) - Zm.col(j);
      const double nu = u.norm(), nv = v.norm();
      if (!(nu > 0 && nv > 0)) continue;
      r.turn(j) += 2.0 * std::atan2((u / nu - v / nv).norm(), (u / nu + v / nv).norm());
    }
  }
}

}  // namespace flowgauge::metrics
