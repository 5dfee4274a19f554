#pragma once
// Boost.Odeint plumbing shared by the batched adaptive integrators (reference/, likelihood/): a whole
// (rows x N) batch is ONE MatrixXd state, and a controlled stepper is driven to land exactly on a
// target time (the last step is shortened; no dense-output interpolation).
#include <Eigen/Dense>
#include <boost/numeric/odeint.hpp>
#include <boost/numeric/odeint/external/eigen/eigen.hpp>
#include <cmath>
#include <fmt/format.h>
#include <stdexcept>
#include <string>

// Eigen 3.4 gave dense matrices begin()/end() (vectors only), so odeint 1.74 takes a MatrixXd for a
// range and copies it element-wise, which does not compile: a matrix state is copied by assignment.
namespace boost::numeric::odeint {
template <>
struct copy_impl<Eigen::MatrixXd, Eigen::MatrixXd> {
  static void copy(const Eigen::MatrixXd& from, Eigen::MatrixXd& to) { to = from; }
};
}  // namespace boost::numeric::odeint

namespace flowgauge::odeint_batch {

namespace odeint = boost::numeric::odeint;
using State = Eigen::MatrixXd;
using Algebra = odeint::vector_space_algebra;
using Dopri5 = odeint::runge_kutta_dopri5<State, double, State, double, Algebra>;
using Rkf78 = odeint::runge_kutta_fehlberg78<State, double, State, double, Algebra>;

struct StepCounts {
  long steps = 0;     // accepted
  long rejected = 0;  // rejected attempts
};

// Advances `state` from `tau` to exactly `target` with the controlled stepper. `dt` carries the
// proposed step size between calls (sign = direction). `where` names the interval in errors.
template <class Controlled, class System>
void advance_to(Controlled& stepper, System& rhs, State& state, double& tau, double target, double& dt,
                StepCounts& n, long max_steps, const std::string& where) {
  while (tau != target) {
    const double remaining = target - tau;
    const bool last = std::abs(remaining) <= std::abs(dt);
    double h = last ? remaining : dt;
    double tt = tau;
    const auto res = stepper.try_step(rhs, state, tt, h);  // on success: tt = tau + h_used, h = next proposal
    if (res == odeint::success) {
      ++n.steps;
      if (last) {
        tau = target;  // land exactly on the target (tt differs from it by rounding only)
        dt = std::abs(h) > std::abs(dt) ? h : dt;
      } else {
        tau = tt;
        dt = h;
      }
    } else {
      ++n.rejected;
      dt = h;
    }
    if (n.steps + n.rejected > max_steps || !std::isfinite(dt) || dt == 0.0)
      throw std::runtime_error(fmt::format("{}: step control failed (tau = {}, dt = {}, {} steps, {} rejected)", where,
                                           tau, dt, n.steps, n.rejected));
  }
}

}  // namespace flowgauge::odeint_batch
