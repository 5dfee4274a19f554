#include "experiments/cell_metrics.hpp"

#include <cmath>

#include "analytics/metrics/curvature.hpp"
#include "analytics/metrics/mmd.hpp"
#include "analytics/metrics/moments.hpp"
#include "solvers/brownian/brownian_tree.hpp"
#include "solvers/coordinates.hpp"
#include "solvers/likelihood/likelihood.hpp"
#include "solvers/ode/tableaux.hpp"
#include "solvers/reference/reference.hpp"

namespace flowgauge {

std::shared_ptr<const NoiseSource> brownian_path(const GaussianMixture& gm, const Schedule& s, std::uint64_t seed) {
  const double lo = s.t_sigma_zero() ? std::min(*s.t_sigma_zero(), s.t_lo()) : s.t_lo();
  return std::make_shared<BrownianTree>(gm.dim(), seed, lo, s.t_hi());
}

ReferencePath reference_path(Model& model, const Grid& grid, const MatrixXd& start, double rtol, double atol) {
  ReferenceOptions o;
  o.rtol = rtol;
  o.atol = atol;
  ReferencePair p = reference_with_error(model, grid, start, o);
  return {std::move(p.primary.states), std::move(p.err_rms)};
}

VectorXd lte_profile(const SolverAxis& sv, Model& model, const Grid& grid, const ReferencePath& ref) {
  auto solver = make_solver(sv.name, sv.options);
  if (solver->traits().stochastic) solver->set_noise(brownian_path(model.mixture(), model.schedule(), 0));
  const int N = grid.steps();
  VectorXd lte = VectorXd::Constant(N, NAN);
  MatrixXd X = ref.states[0];
  solver->start(model, grid, X.cols());
  MatrixXd x0(X.rows(), X.cols()), eps(X.rows(), X.cols());
  for (int i = 0; i < N;) {
    X = ref.states[i];
    int k = 1;
    if (i == N - 1 && grid.denoise_final) {
      model.predict(X, grid.t[i], x0, eps);
      X = x0;
    } else {
      k = solver->advance(model, grid, i, X);
    }
    lte(i) = std::sqrt((X - ref.states[i + k]).colwise().squaredNorm().mean());
    i += k;
  }
  return lte;
}

void distribution_metrics(const Experiment& e, const GaussianMixture& gm, const Schedule& s, const Grid& grid,
                          const MatrixXd& X, Table& row) {
  const TimePoint p = s.at(grid.t.back());
  const double alpha = grid.denoise_final ? 1.0 : p.alpha, sigma = grid.denoise_final ? 0.0 : p.sigma;
  metrics::MmdResult m;
  metrics::MomentErrors me;
  bool ok_mmd = X.allFinite(), ok_mom = ok_mmd;
  if (ok_mmd) m = metrics::mmd2(X, gm, alpha, sigma, e.mmd_bandwidth);
  try {
    if (ok_mom) me = metrics::moment_errors(X, gm, alpha, sigma);
  } catch (const std::domain_error&) {  // sigma = 0 with rank-deficient data: modes undefined
    ok_mom = false;
  }
  auto put = [&](const char* k, double v, bool ok) { row.col<double>(k).push_back(ok ? v : NAN); };
  put("mmd2", m.mmd2, ok_mmd);
  put("mmd2_se", m.se, ok_mmd);
  put("mmd_bandwidth", m.bandwidth, ok_mmd);
  put("mean_error", me.mean_err, ok_mom);
  put("mean_error_se", me.mean_se, ok_mom);
  put("cov_error", me.cov_err, ok_mom);
  put("cov_error_se", me.cov_se, ok_mom);
  put("cov_error_floor", me.cov_floor, ok_mom);
  put("mode_tv", me.mode_tv, ok_mom);
  put("mode_tv_se", me.mode_tv_se, ok_mom);
}

void likelihood_metrics(const Experiment& e, const Cell& c, const GaussianMixture& gm, const Schedule& s, const Grid& grid,
                        const SolverAxis& sv, Table& row) {
  LikelihoodErrorSummary r{NAN, NAN, NAN, NAN, NAN, 0};
  const bool rk = find_rk_method(sv.name) != nullptr;
  if (rk && !grid.denoise_final) {
    // Data points exactly from p_{t_lo}, on a key distinct from the cell's starting points.
    const TimePoint p = s.at(grid.t.back());
    const MatrixXd x = gm.sample(p.alpha, p.sigma, c.seed ^ 0x9E3779B97F4A7C15ull, e.particles);
    Model model(gm, s);
    const Coord coord = parse_coord(sv.options.count("coordinates") ? sv.options.at("coordinates") : "ve");
    r = likelihood_error(model, grid, x, sv.name, coord);
  }
  row.col<double>("lik_mean_abs").push_back(r.mean_abs);
  row.col<double>("lik_max_abs").push_back(r.max_abs);
  row.col<double>("lik_mean_abs_bpd").push_back(r.mean_abs_bpd);
  row.col<double>("lik_prior_mismatch").push_back(r.mean_prior_mismatch);
  row.col<long long>("lik_nfe").push_back(r.nfe);
}

CurvatureStudy curvature_study(const Experiment& e) {
  CurvatureStudy out;
  const long n = std::min<long>(e.particles, 512);
  for (const auto& data : e.data) {
    const auto& gm = *data.mixture;
    for (const auto& sa : e.schedules) {
      const Schedule& s = *sa.schedule;
      Model model(gm, s);
      const Grid grid = make_grid(s, {.kind = "logsnr", .steps = e.curvature_steps});
      const TimePoint p0 = s.at(grid.t.front());
      const MatrixXd start = gm.sample(p0.alpha, p0.sigma, e.seeds.front(), n);
      ReferenceOptions ro;
      ro.rtol = std::max(e.ref_rtol, 1e-10);  // geometry needs ~1e-8, not the cells' 1e-11
      ro.atol = std::max(e.ref_atol, 1e-10);
      const auto ref = reference_solve(model, grid, start, ro);
      std::vector<MatrixXd> x0s, epss;
      for (std::size_t i = 0; i < grid.t.size(); ++i) {
        MatrixXd x0(gm.dim(), n), eps(gm.dim(), n);
        model.predict(ref.states[i], grid.t[i], x0, eps);
        x0s.push_back(std::move(x0));
        epss.push_back(std::move(eps));
      }
      for (const auto& cname : coord_names()) {
        const Coordinates cs{parse_coord(cname), &s};
        std::vector<MatrixXd> Z, dZ;
        std::vector<double> tau;
        for (std::size_t i = 0; i < grid.t.size(); ++i) {
          const TimePoint p = s.at(grid.t[i]);
          double cx, ce;
          cs.drift_coeffs(p, cx, ce);
          Z.push_back(ref.states[i] / cs.scale(p));
          dZ.push_back(cx * x0s[i] + ce * epss[i]);
          tau.push_back(cs.tau(grid.t[i]));
        }
        const auto g = metrics::trajectory_geometry(Z, dZ, tau);
        auto& T = out.table;
        T.col<std::string>("data").push_back(data.name);
        T.col<std::string>("schedule").push_back(sa.name);
        T.col<std::string>("coordinates").push_back(cname);
        T.col<long long>("particles").push_back(n);
        T.col<long long>("nodes").push_back(static_cast<long long>(grid.t.size()));
        T.col<double>("straightness").push_back(g.straightness);
        T.col<double>("kinetic_energy").push_back(g.kinetic);
        T.col<double>("path_length").push_back(g.length);
        T.col<double>("chord2").push_back(g.chord2);
        T.col<double>("chord_ratio").push_back(g.chord_ratio);
        T.col<double>("turning").push_back(g.turning);
        T.col<double>("quadrature_defect").push_back(g.defect);
        out.profiles.push_back({g.s, g.kappa, g.speed});
      }
      if (gm.dim() == 2) {  // a few trajectories in x for plots
        const long m = std::min<long>(n, 64);
        const std::size_t stride = std::max<std::size_t>(1, grid.t.size() / 200);
        CurvatureStudy::Paths paths{data.name, sa.name, {}, {}};
        for (std::size_t i = 0; i < grid.t.size(); i += stride) {
          paths.x.push_back(ref.states[i].leftCols(m));
          paths.t.push_back(grid.t[i]);
        }
        if (paths.t.back() != grid.t.back()) {
          paths.x.push_back(ref.states.back().leftCols(m));
          paths.t.push_back(grid.t.back());
        }
        out.paths.push_back(std::move(paths));
      }
    }
  }
  return out;
}

}  // namespace flowgauge
