#include "solvers/ode/explicit_rk.hpp"

#include <stdexcept>

namespace flowgauge {
namespace {

class ExplicitRk final : public Solver {
 public:
  ExplicitRk(SolverTraits tr, ButcherTableau tab, Coord c) : tr_(std::move(tr)), tab_(std::move(tab)), coord_(c) {}
  const SolverTraits& traits() const override { return tr_; }

  void start(Model& m, const Grid&, Eigen::Index n) override {
    const auto d = m.dim();
    k_.assign(tab_.b.size(), MatrixXd(d, n));
    z_.resize(d, n);
    zs_.resize(d, n);
    x_.resize(d, n);
    x0_.resize(d, n);
    eps_.resize(d, n);
  }

  void step(Model& m, const Grid& g, int i, MatRef X) override {
    const Coordinates cs{coord_, &m.schedule()};
    const double t0 = g.t[i], t1 = g.t[i + 1];
    const double tau0 = cs.tau(t0), h = cs.tau(t1) - tau0;
    const double m0 = cs.scale(m.schedule().at(t0));
    if (is_packed(X))  // (mixture.hpp: a Ref loops per column)
      z_ = packed(X) / m0;
    else
      z_ = X / m0;
    const std::size_t S = tab_.b.size();
    for (std::size_t s = 0; s < S; ++s) {
      // stage time: exact grid times at c = 0 and c = 1, else mapped back from tau
      const double c = tab_.c[s];
      const double ts = c == 0.0 ? t0 : c == 1.0 ? t1 : cs.t_of(tau0 + c * h);
      zs_ = z_;
      for (std::size_t j = 0; j < s; ++j)
        if (tab_.a[s][j] != 0.0) zs_ += (h * tab_.a[s][j]) * k_[j];
      const TimePoint p = m.schedule().at(ts);
      x_ = cs.scale(p) * zs_;
      m.predict(x_, p, x0_, eps_);
      double cx, ce;
      cs.drift_coeffs(p, cx, ce);
      k_[s] = cx * x0_ + ce * eps_;
    }
    for (std::size_t s = 0; s < S; ++s)
      if (tab_.b[s] != 0.0) z_ += (h * tab_.b[s]) * k_[s];
    const double m1 = cs.scale(m.schedule().at(t1));
    if (is_packed(X))
      packed(X) = m1 * z_;
    else
      X = m1 * z_;
  }

 private:
  SolverTraits tr_;
  ButcherTableau tab_;
  Coord coord_;
  std::vector<MatrixXd> k_;
  MatrixXd z_, zs_, x_, x0_, eps_;
};

}  // namespace

std::unique_ptr<Solver> make_explicit_rk(OptionReader& opts, SolverTraits traits, ButcherTableau tableau) {
  const Coord c = parse_coord(opts.get_choice("coordinates", "ve", coord_names()));
  traits.family = "runge-kutta";
  traits.evals_per_step = static_cast<int>(tableau.b.size());
  traits.starts_at_prior = c != Coord::kVe && c != Coord::kLogsnr;  // z = x/alpha
  return std::make_unique<ExplicitRk>(std::move(traits), std::move(tableau), c);
}

std::unique_ptr<Solver> make_explicit_rk(OptionReader& opts, const std::string& name) {
  const RkMethod* m = find_rk_method(name);
  if (!m) throw std::logic_error("make_explicit_rk: no tableau named " + name);
  return make_explicit_rk(opts, {.name = m->name, .order = m->order}, m->tableau);
}

}  // namespace flowgauge
