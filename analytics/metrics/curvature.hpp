#pragma once
// Trajectory geometry (samplers.md section 6) of a batch of PF trajectories in a stated coordinate
// system: states Z_i (d x N, particles as columns) at coordinate times tau_i, i = 0..T, in ANY strictly
// monotone order (a sampler's tau usually decreases), with the exact drift dZ/dtau at each state.
// Time is normalised to s = (tau - tau_0) / (tau_T - tau_0) in [0, 1], so X(s) = Z and
// Xdot = dX/ds = (tau_T - tau_0) dZ/dtau. With D = X_1 - X_0 (= Z_T - Z_0):
//   straightness S = int_0^1 E|D - Xdot|^2 ds          (Liu, Gong & Liu 2022)
//   kinetic energy K = int_0^1 E|Xdot|^2 ds,  path length L = int_0^1 |Xdot| ds,  chord ratio R = |D| / L
//   curvature kappa(s) = |Xddot_perp| / |Xdot|^2,  Xddot_perp = Xddot - (Xddot.Xdot / |Xdot|^2) Xdot
//   turning = sum_{i=1}^{T-1} angle(X_{i+1} - X_i, X_i - X_{i-1})   (discrete polyline)
// Quadrature: trapezoid rule in s on the given nodes, error O(h^2) (h = largest step in s) for
// integrands with bounded second derivative: -(1/12) sum_i h_i^3 f''(xi_i).
// Xddot: derivative in s of the exact drift values along the trajectory by 3-point finite
// differences on the (possibly non-uniform) s-grid, second order: central at interior nodes,
// one-sided at the two end nodes (needs T >= 2).
//
// Identity. For the exact continuous path int Xdot ds = D, hence S = K - E|D|^2. With the trapezoid
// rule the same algebra gives, exactly (up to rounding),
//   S_trap = K_trap - E|D|^2 + 2 E[D . e],  e = D - trap(Xdot)   (the trapezoid defect of the path)
// and e = O(h^2) for an exact trajectory; for a solver's trajectory e also contains its local errors.
#include <span>

#include "analytics/mixture.hpp"

namespace flowgauge::metrics {

struct CurvatureResult {
  // Averages over particles.
  double straightness = 0;  // S
  double kinetic = 0;       // K
  double length = 0;        // E L
  double chord2 = 0;        // E |D|^2
  double chord_ratio = 0;   // E R over particles with L > 0
  double turning = 0;       // E total turning angle (radians)
  double identity_gap = 0;  // S - (K - E|D|^2) = 2 E[D . e]
  double defect = 0;        // sqrt(E|e|^2), e = D - trapezoid integral of Xdot; |identity_gap| <= 2 sqrt(chord2) defect
  VectorXd s;               // T+1 normalised node times
  VectorXd kappa;           // T+1: mean kappa over particles with |Xdot| > 0 at that node
  VectorXd speed;           // T+1: mean |Xdot|
  // Per particle (N each).
  VectorXd S, K, L, R, turn;
};

// Z and dZdtau hold T+1 matrices of equal size d x N; tau holds T+1 strictly monotone times.
CurvatureResult trajectory_geometry(std::span<const MatrixXd> Z, std::span<const MatrixXd> dZdtau,
                                    std::span<const double> tau);

// The same, one node at a time, in memory O(d x N) whatever T (trajectory_geometry is this, fed from
// its arrays): construct with every node time and the two end states (D = Z_T - Z_0 enters S at every
// node), add() the nodes i = 0..T in order, then finish(). Node i is complete once node i+1 is in
// (its 3-point difference and turning angle need both neighbours), so three nodes are kept.
class TrajectoryGeometry {
 public:
  TrajectoryGeometry(std::span<const double> tau, const ConstMatRef& Z_first, const ConstMatRef& Z_last);
  void add(const ConstMatRef& Z, const ConstMatRef& dZdtau);
  CurvatureResult finish();

 private:
  void node(Eigen::Index i);  // accumulates node i; the window holds its neighbours
  const MatrixXd& Zw(Eigen::Index i) const { return Z_[i % 3]; }
  const MatrixXd& Vw(Eigen::Index i) const { return V_[i % 3]; }

  Eigen::Index T_, added_ = 0;
  double dtau_;
  VectorXd h_;               // steps in s
  MatrixXd D_, trapV_, A_;   // chord, trapezoid integral of Xdot, Xddot / dtau at one node
  MatrixXd Z_[3], V_[3];     // nodes i-2..i, slot i % 3
  CurvatureResult r_;
};

}  // namespace flowgauge::metrics
