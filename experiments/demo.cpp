#include "experiments/demo.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "analytics/order_fit.hpp"
#include "results/h5.hpp"
#include "solvers/solver.hpp"

namespace flowgauge {

Table stein_check(const GaussianMixture& gm, long particles, std::uint64_t seed) {
  Table t;
  const int d = gm.dim();
  std::uint64_t key = seed;
  for (const auto& name : schedule_names()) {
    const auto s = make_schedule(name);
    for (double frac : {0.0, 0.5, 1.0}) {
      // spread in logSNR between the two ends of the sampling interval
      const double lam = s->lambda(s->t_lo()) + frac * (s->lambda(s->t_hi()) - s->lambda(s->t_lo()));
      const double tt = frac == 0.0 ? s->t_lo() : frac == 1.0 ? s->t_hi() : s->t_of_lambda(lam);
      const TimePoint p = s->at(tt);
      const MatrixXd X = gm.sample(p.alpha, p.sigma, ++key, particles);
      const MixtureEval ev = gm.evaluate(X, p.alpha, p.sigma, kScore | kTrace | kLogp);
      // z-score of the largest |E s_i| and of E[tr J + |s|^2]
      double zmax = 0;
      for (int i = 0; i < d; ++i) {
        const auto r = ev.score.row(i).array();
        const double m = r.mean(), sd = std::sqrt((r - m).square().sum() / (particles - 1));
        zmax = std::max(zmax, std::abs(m) / (sd / std::sqrt(double(particles))));
      }
      const Eigen::ArrayXd q = ev.trace.array() + ev.score.colwise().squaredNorm().transpose().array();
      const double qm = q.mean(), qsd = std::sqrt((q - qm).square().sum() / (particles - 1));
      t.col<std::string>("schedule").push_back(name);
      t.col<double>("t").push_back(tt);
      t.col<double>("lambda").push_back(s->lambda(tt));
      t.col<double>("mean_logp").push_back(ev.logp.mean());
      t.col<double>("score_mean_max_z").push_back(zmax);
      t.col<double>("stein2_mean").push_back(qm);
      t.col<double>("stein2_z").push_back(qm / (qsd / std::sqrt(double(particles))));
      t.col<long long>("particles").push_back(particles);
    }
  }
  return t;
}

void print_stein(const Table& t) {
  fmt::print("Exact world (Stein identities on {} exact draws from p_t; |z| < 4 expected):\n",
             std::get<std::vector<long long>>(t.columns.back()).front());
  fmt::print("  {:<10} {:>10} {:>8} {:>11} {:>14} {:>12}\n", "schedule", "t", "lambda", "E log p", "max|z| E[s]", "z E[trJ+|s|^2]");
  auto& sch = std::get<std::vector<std::string>>(t.columns[0]);
  for (std::size_t r = 0; r < t.rows(); ++r)
    fmt::print("  {:<10} {:>10.4g} {:>8.2f} {:>11.4f} {:>14.2f} {:>12.2f}\n", sch[r],
               std::get<std::vector<double>>(t.columns[1])[r], std::get<std::vector<double>>(t.columns[2])[r],
               std::get<std::vector<double>>(t.columns[3])[r], std::get<std::vector<double>>(t.columns[4])[r],
               std::get<std::vector<double>>(t.columns[6])[r]);
}

void write_density_grids(hid_t f, const GaussianMixture& gm) {
  const int n = 161;
  const double lim = 3.5;
  MatrixXd P(2, n * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) P.col(i * n + j) << -lim + 2 * lim * j / (n - 1), -lim + 2 * lim * i / (n - 1);
  const auto s = make_schedule("edm");
  std::vector<MatrixXd> grids;
  VectorXd sig(3);
  sig << 0.002, 0.5, 1.5;
  for (int k = 0; k < 3; ++k) {
    const MixtureEval ev = gm.evaluate(P, 1.0, sig(k), kLogp);
    grids.push_back(Eigen::Map<const MatrixXd>(ev.logp.data(), n, n));
  }
  h5::write_stack(f, "density_logp", grids);
  h5::write_vector(f, "density_sigma", sig);
  h5::write_vector(f, "density_axis", VectorXd::LinSpaced(n, -lim, lim));
}

namespace {
// High-accuracy reference: rk4 in logSNR coordinates on a fine logsnr grid.
MatrixXd reference_final(Model& m, const MatrixXd& x0, std::vector<MatrixXd>* traj) {
  auto rk = make_solver("rk4", {{"coordinates", "logsnr"}});
  const Grid g = make_grid(m.schedule(), {.kind = "logsnr", .steps = 2048});
  MatrixXd X = x0;
  auto r = sample(*rk, m, g, X, traj != nullptr);
  if (traj) *traj = std::move(r.trajectory);
  return X;
}
}  // namespace

SolverStudy solver_study(const GaussianMixture& gm, std::uint64_t seed) {
  SolverStudy out;
  const auto sch = make_schedule("edm");
  Model model(gm, *sch);
  const long n = 512;
  const MatrixXd start = gm.sample(sch->alpha(sch->t_hi()), sch->sigma(sch->t_hi()), seed, n);
  const MatrixXd ref = reference_final(model, start, nullptr);
  {  // a few fine trajectories for plotting
    std::vector<MatrixXd> traj;
    reference_final(model, start.leftCols(std::min<long>(64, n)), &traj);
    const Grid g = make_grid(*sch, {.kind = "logsnr", .steps = 2048});
    for (std::size_t i = 0; i < traj.size(); i += 16) out.trajectories.push_back(traj[i]);
    out.trajectory_t.resize(static_cast<Eigen::Index>(out.trajectories.size()));
    for (std::size_t i = 0, k = 0; i < traj.size(); i += 16, ++k) out.trajectory_t(k) = g.t[i];
  }
  const std::vector<std::pair<std::string, SolverOptions>> solvers = {
      {"euler", {}}, {"heun", {}}, {"rk4", {}}, {"ddim", {}}, {"dpm_solver_2", {}}, {"dpm_solver_3", {}},
      {"dpmpp_2m", {}}, {"dpmpp_3m", {}}, {"unipc", {}}, {"lms", {}}, {"ipndm", {}}, {"deis_tab", {{"order", "3"}}}};
  const auto known = solver_names();
  for (const auto& [name, opts] : solvers) {
    if (std::find(known.begin(), known.end(), name) == known.end()) continue;
    auto solver = make_solver(name, opts);
    std::vector<double> ns, errs;
    for (int steps : {6, 9, 12, 18, 27, 40, 60}) {
      const Grid g = make_grid(*sch, {.kind = "edm", .steps = steps});
      MatrixXd X = start;
      const auto t0 = std::chrono::steady_clock::now();
      const auto r = sample(*solver, model, g, X);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double rms = std::sqrt((X - ref).colwise().squaredNorm().mean());
      out.table.col<std::string>("solver").push_back(solver->describe());
      out.table.col<long long>("steps").push_back(steps);
      out.table.col<long long>("nfe").push_back(r.nfe);
      out.table.col<double>("rms_error").push_back(rms);
      out.table.col<double>("max_error").push_back((X - ref).colwise().norm().maxCoeff());
      out.table.col<double>("seconds").push_back(secs);
      ns.push_back(steps);
      errs.push_back(rms);
    }
    const OrderFit fit = fit_order(ns, errs, 1e-9);
    out.orders.col<std::string>("solver").push_back(solver->describe());
    out.orders.col<double>("declared_order").push_back(solver->traits().order);
    out.orders.col<double>("fitted_order").push_back(fit.order);
    out.orders.col<double>("r2").push_back(fit.r2);
    out.orders.col<double>("rms_error_at_18_steps").push_back(errs[3]);
    out.orders.col<long long>("nfe_at_18_steps").push_back(solver->traits().evals_per_step * 18);
  }
  return out;
}

void print_orders(const SolverStudy& s) {
  fmt::print("\nSamplers on the edm schedule, edm grid (rho = 7) to sigma = 0.002, {} particles from p_80;\n"
             "error = RMS distance to a fine reference. Order fitted over 6..60 steps (pre-asymptotic on a\n"
             "multimodal mixture: compare with the declared order, not for equality):\n", 512);
  fmt::print("  {:<22} {:>8} {:>8} {:>6} {:>16}\n", "solver", "declared", "fitted", "R^2", "RMS err @18 steps");
  const auto& name = std::get<std::vector<std::string>>(s.orders.columns[0]);
  for (std::size_t r = 0; r < s.orders.rows(); ++r)
    fmt::print("  {:<22} {:>8.2f} {:>8.2f} {:>6.3f} {:>16.3e}\n", name[r], std::get<std::vector<double>>(s.orders.columns[1])[r],
               std::get<std::vector<double>>(s.orders.columns[2])[r], std::get<std::vector<double>>(s.orders.columns[3])[r],
               std::get<std::vector<double>>(s.orders.columns[4])[r]);
}

}  // namespace flowgauge
