#include "experiments/cell_metrics.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fmt/format.h>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "analytics/errors.hpp"
#include "analytics/metrics/curvature.hpp"
#include "analytics/order_fit.hpp"
#include "analytics/metrics/mmd.hpp"
#include "analytics/metrics/moments.hpp"
#include "solvers/brownian/brownian_tree.hpp"
#include "solvers/coordinates.hpp"
#include "solvers/likelihood/likelihood.hpp"
#include "solvers/ode/tableaux.hpp"
#include "solvers/reference/reference.hpp"
#include "solvers/stochastic/metrics.hpp"

namespace flowgauge {

std::shared_ptr<const NoiseSource> brownian_path(const GaussianMixture& gm, const Schedule& s, std::uint64_t seed) {
  const double lo = s.t_sigma_zero() ? std::min(*s.t_sigma_zero(), s.t_lo()) : s.t_lo();
  return std::make_shared<BrownianTree>(gm.dim(), seed, lo, s.t_hi());
}

bool over_spill_limit(const Experiment& e, const MatrixXd& start, std::size_t count) {
  return double(start.size()) * double(count) * sizeof(double) / (1 << 20) > e.ref_spill_mb;
}

ReferencePath reference_path(Model& model, const Grid& grid, const MatrixXd& start, double rtol, double atol,
                             const std::string& spill_dir) {
  ReferenceOptions o;
  o.rtol = rtol;
  o.atol = atol;
  PathStore store(start.rows(), start.cols(), static_cast<int>(grid.t.size()), spill_dir);
  ReferencePair p = reference_with_error(model, grid, start, o, store);
  return {std::move(store), std::move(p.err_rms)};
}

VectorXd lte_profile(const SolverAxis& sv, Model& model, const Grid& grid, const ReferencePath& ref) {
  auto solver = make_solver(sv.name, sv.options);
  if (solver->traits().stochastic) solver->set_noise(brownian_path(model.mixture(), model.schedule(), 0));
  const int N = grid.steps();
  VectorXd lte = VectorXd::Constant(N, NAN);
  MatrixXd X = ref.states.get(0), Xk;  // Xk: a state read from a spill file
  solver->start(model, grid, X.cols());
  MatrixXd x0(X.rows(), X.cols()), eps(X.rows(), X.cols());
  for (int i = 0; i < N;) {
    ref.states.get(i, X);
    int k = 1;
    if (i == N - 1 && grid.denoise_final) {
      model.predict(X, grid.t[i], x0, eps);
      X = x0;
    } else {
      k = solver->advance(model, grid, i, X);
    }
    lte(i) = std::sqrt((X - ref.states.view(i + k, Xk)).colwise().squaredNorm().mean());
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

// ---- stochastic samplers: strong error, exact law ----

namespace {

// A pair of reference solutions at two resolutions (n_s particles); empty when not computable.
struct StrongRef {
  MatrixXd fine, half;
};

// References shared by the cells of one group, computed once per process (whichever cell asks first;
// the others wait): a pure function of the key, so neither threads nor cell order change a result.
std::shared_ptr<const StrongRef> shared_ref(const std::string& key, const std::function<StrongRef()>& compute) {
  static std::mutex m;
  static std::map<std::string, std::shared_future<std::shared_ptr<const StrongRef>>> cache;
  std::promise<std::shared_ptr<const StrongRef>> mine;
  std::shared_future<std::shared_ptr<const StrongRef>> fut;
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(m);
    auto it = cache.find(key);
    if (it == cache.end()) {
      fut = mine.get_future().share();
      cache.emplace(key, fut);
      first = true;
    } else {
      fut = it->second;
    }
  }
  if (first) {
    try {
      mine.set_value(std::make_shared<const StrongRef>(compute()));
    } catch (...) {
      mine.set_exception(std::current_exception());
    }
  }
  return fut.get();
}

double rms_or_nan(const ConstMatRef& x, const MatrixXd& y) {
  if (y.size() == 0 || !x.allFinite() || !y.allFinite()) return NAN;
  return stoch::rms_distance(x, y);
}

}  // namespace

long strong_particles(const Experiment& e) { return std::min<long>(e.particles, 128); }

void strong_metrics(const Experiment& e, const Cell& c, const GaussianMixture& gm, const Schedule& s, const Grid& grid,
                    const SolverAxis& sv, const MatrixXd& start, const MatrixXd& X, Table& row) {
  const auto tr = make_solver(sv.name, sv.options)->traits();
  const long n = strong_particles(e);
  double strong = NAN, floor = NAN, exact = NAN, exact_floor = NAN;
  const GridSpec& gs = e.grids[c.grid].spec;
  if (tr.stochastic && gs.kind != "explicit") {
    const int nmax = *std::max_element(e.steps.begin(), e.steps.end());
    const MatrixXd X0 = start.leftCols(n);
    auto grid_at = [&](int steps) {
      GridSpec g = gs;
      g.steps = steps;
      return make_grid(s, g);
    };
    auto path = [&] { return brownian_path(gm, s, c.seed); };
    // The same solver at kStrongFactor x and kStrongFactor/2 x the plan's largest step count.
    const auto ref = shared_ref(fmt::format("{:016x}|same|{}|{}|{}|{}|{}", e.plan_hash, c.data, c.schedule, c.solver, c.grid,
                                            c.seed),
                                [&] {
                                  StrongRef r;
                                  Model m(gm, s);
                                  for (auto [steps, out] : {std::pair{kStrongFactor * nmax, &r.fine},
                                                            std::pair{kStrongFactor / 2 * nmax, &r.half}}) {
                                    auto solver = make_solver(sv.name, sv.options);
                                    solver->set_noise(path());
                                    *out = X0;
                                    sample(*solver, m, grid_at(steps), *out);
                                  }
                                  return r;
                                });
    strong = rms_or_nan(X.leftCols(n), ref->fine);
    floor = rms_or_nan(ref->half, ref->fine);
    // The exact solution of the limiting linear SDE (single-Gaussian data), shared by every solver
    // with the same limit.
    if (gm.size() == 1 && std::isfinite(tr.limit_drift) && std::isfinite(tr.limit_noise) && !grid.denoise_final) {
      const auto ex = shared_ref(fmt::format("{:016x}|exact|{}|{}|{:.17g}|{:.17g}|{}|{}", e.plan_hash, c.data, c.schedule,
                                             tr.limit_drift, tr.limit_noise, c.grid, c.seed),
                                 [&] {
                                   StrongRef r;
                                   const auto noise = path();
                                   r.fine = stoch::linear_sde_solution(gm, s, tr.limit_drift, tr.limit_noise,
                                                                       grid_at(kStrongFactor * nmax).t, X0, *noise);
                                   r.half = stoch::linear_sde_solution(gm, s, tr.limit_drift, tr.limit_noise,
                                                                       grid_at(kStrongFactor / 2 * nmax).t, X0, *noise);
                                   return r;
                                 });
      exact = rms_or_nan(X.leftCols(n), ex->fine);
      exact_floor = rms_or_nan(ex->half, ex->fine);
    }
  }
  row.col<double>("strong").push_back(strong);
  row.col<double>("strong_ref_floor").push_back(floor);
  row.col<double>("strong_exact").push_back(exact);
  row.col<double>("strong_exact_floor").push_back(exact_floor);
  row.col<long long>("strong_particles").push_back(tr.stochastic ? n : 0);
}

void exact_law_metrics(const GaussianMixture& gm, const Schedule& s, const Grid& grid, const SolverAxis& sv, Table& row,
                       std::vector<std::pair<std::string, VectorXd>>& arrays) {
  const int N = grid.steps();
  double kl = NAN, w2 = NAN, wmax = NAN;
  VectorXd wt = VectorXd::Constant(N + 1, NAN);
  if (gm.size() == 1) {
    Model model(gm, s);
    const TimePoint p0 = s.at(grid.t.front());
    const auto start = stoch::marginal_law(gm, p0.alpha, p0.sigma);
    const auto path = stoch::propagate_law_path(sv.name, sv.options, model, grid, start);
    if (path.affine) {
      wmax = 0;
      for (std::size_t j = 0; j < path.index.size(); ++j) {
        const int i = path.index[j];
        const bool data_end = i == N && grid.denoise_final;  // the x0-prediction: against the data law
        const TimePoint p = s.at(grid.t[i]);
        const auto truth = stoch::marginal_law(gm, data_end ? 1.0 : p.alpha, data_end ? 0.0 : p.sigma);
        wt(i) = stoch::w2_distance(path.laws[j], truth);
        wmax = std::max(wmax, wt(i));
        if (i == N) {
          w2 = wt(i);
          try {
            kl = stoch::kl_divergence(path.laws[j], truth);
          } catch (const InputError&) {  // a singular law (rank-deficient data at sigma = 0): KL undefined
          }
        }
      }
    }
  }
  row.col<double>("kl_exact").push_back(kl);
  row.col<double>("w2_exact").push_back(w2);
  row.col<double>("marginal_w2_max").push_back(wmax);
  // Only where defined: a resumed run re-reads cell arrays with a reader that refuses NaN.
  if (std::isfinite(wmax)) arrays.emplace_back("marginal_w2_t", wt);
}

void stochastic_order_fits(const Table& cells, const std::vector<std::size_t>& rows, Table& orders) {
  auto has = [&](const char* k) { return std::find(cells.names.begin(), cells.names.end(), k) != cells.names.end(); };
  auto D = [&](const char* k) -> const std::vector<double>& {
    return std::get<std::vector<double>>(cells.columns[std::find(cells.names.begin(), cells.names.end(), k) - cells.names.begin()]);
  };
  const auto& steps = std::get<std::vector<long long>>(
      cells.columns[std::find(cells.names.begin(), cells.names.end(), "steps") - cells.names.begin()]);
  auto fit = [&](const char* err, const char* floor_col, double floor_factor, double floor_abs, const std::string& prefix) {
    std::vector<double> ns, es;
    double floor = floor_abs;
    for (auto r : rows) {
      ns.push_back(double(steps[r]));
      es.push_back(D(err)[r]);
      if (floor_col && std::isfinite(D(floor_col)[r])) floor = std::max(floor, floor_factor * D(floor_col)[r]);
    }
    const OrderFit f = fit_order(ns, es, floor);
    orders.col<double>(prefix + "_order").push_back(f.order);
    orders.col<double>(prefix + "_r2").push_back(f.r2);
    orders.col<long long>(prefix + "_points").push_back(f.points);
    orders.col<double>(prefix + "_fit_floor").push_back(floor);
  };
  // 4 x the floor: the floor bounds the reference's own error (halving argument, strong order >= 1),
  // so fitted points are >= 4x above it: < 25 % (typically << 25 %, the errors are nearly
  // uncorrelated) bias of the point, < 0.1 on a slope over a 16x range of steps.
  if (has("strong")) {
    fit("strong", "strong_ref_floor", 4.0, 0.0, "strong");
    fit("strong_exact", "strong_exact_floor", 4.0, 0.0, "strong_exact");
  }
  // W2 from the exact laws: rounding ~ (1e-15 tr C)^{1/2} ~ 1e-7 for tr C <= 10; points above 1e-6.
  if (has("w2_exact")) fit("w2_exact", nullptr, 0.0, 1e-6, "weak");
}

namespace {
// One (data, schedule) pair of the curvature study: its table rows, profiles and plotted paths.
// Memory O(particles x d): the reference states go to a PathStore (past reference.spill_mb to an
// unlinked file in the temporary directory: the output's directory does not exist yet), and the
// geometry takes them one node at a time.
CurvatureStudy curvature_pair(const Experiment& e, const DataAxis& data, const ScheduleAxis& sa) {
  CurvatureStudy out;
  const long n = std::min<long>(e.particles, 512);
  const auto& gm = *data.mixture;
  const Schedule& s = *sa.schedule;
  Model model(gm, s);
  const Grid grid = make_grid(s, {.kind = "logsnr", .steps = e.curvature_steps});
  const int nodes = static_cast<int>(grid.t.size());
  const TimePoint p0 = s.at(grid.t.front());
  const MatrixXd start = gm.sample(p0.alpha, p0.sigma, e.seeds.front(), n);
  ReferenceOptions ro;
  ro.rtol = std::max(e.ref_rtol, 1e-10);  // geometry needs ~1e-8, not the cells' 1e-11
  ro.atol = std::max(e.ref_atol, 1e-10);
  PathStore states(gm.dim(), n, nodes,
                   over_spill_limit(e, start, grid.t.size()) ? std::filesystem::temp_directory_path().string() : std::string());
  reference_solve(model, grid, start, ro, [&](int i, const MatrixXd& x) { states.put(i, x); });

  const MatrixXd first = states.get(0), last = states.get(nodes - 1);
  const TimePoint p_last = s.at(grid.t.back());
  std::vector<Coordinates> coords;
  std::vector<metrics::TrajectoryGeometry> geo;
  for (const auto& cname : coord_names()) {
    const Coordinates& cs = coords.emplace_back(Coordinates{parse_coord(cname), &s});
    std::vector<double> tau;
    for (double t : grid.t) tau.push_back(cs.tau(t));
    geo.emplace_back(tau, first / cs.scale(p0), last / cs.scale(p_last));
  }
  const bool plot = gm.dim() == 2;  // a few trajectories in x for plots
  const long m = std::min<long>(n, 64);
  const int stride = std::max(1, nodes / 200);
  CurvatureStudy::Paths paths{data.name, sa.name, {}, {}};
  MatrixXd buf, x0(gm.dim(), n), eps(gm.dim(), n), Z, dZ;
  for (int i = 0; i < nodes; ++i) {
    const MatrixXd& x = states.view(i, buf);
    model.predict(x, grid.t[i], x0, eps);
    const TimePoint p = s.at(grid.t[i]);
    for (std::size_t k = 0; k < coords.size(); ++k) {
      double cx, ce;
      coords[k].drift_coeffs(p, cx, ce);
      Z = x / coords[k].scale(p);
      dZ = cx * x0 + ce * eps;
      geo[k].add(Z, dZ);
    }
    if (plot && i % stride == 0) {
      paths.x.push_back(x.leftCols(m));
      paths.t.push_back(grid.t[i]);
    }
  }
  for (std::size_t k = 0; k < coords.size(); ++k) {
    const auto g = geo[k].finish();
    auto& T = out.table;
    T.col<std::string>("data").push_back(data.name);
    T.col<std::string>("schedule").push_back(sa.name);
    T.col<std::string>("coordinates").push_back(coord_names()[k]);
    T.col<long long>("particles").push_back(n);
    T.col<long long>("nodes").push_back(nodes);
    T.col<double>("straightness").push_back(g.straightness);
    T.col<double>("kinetic_energy").push_back(g.kinetic);
    T.col<double>("path_length").push_back(g.length);
    T.col<double>("chord2").push_back(g.chord2);
    T.col<double>("chord_ratio").push_back(g.chord_ratio);
    T.col<double>("turning").push_back(g.turning);
    T.col<double>("quadrature_defect").push_back(g.defect);
    out.profiles.push_back({g.s, g.kappa, g.speed});
  }
  if (plot) {
    if (paths.t.back() != grid.t.back()) {
      paths.x.push_back(last.leftCols(m));
      paths.t.push_back(grid.t.back());
    }
    out.paths.push_back(std::move(paths));
  }
  return out;
}
}  // namespace

CurvatureStudy curvature_study(const Experiment& e, int threads) {
  std::vector<std::pair<const DataAxis*, const ScheduleAxis*>> pairs;
  for (const auto& data : e.data)
    for (const auto& sa : e.schedules) pairs.emplace_back(&data, &sa);
  // pairs on `threads` threads, joined in plan order: the same result for any thread count
  std::vector<CurvatureStudy> parts(pairs.size());
  std::vector<std::exception_ptr> errors(pairs.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i; (i = next++) < pairs.size();) {
      try {
        parts[i] = curvature_pair(e, *pairs[i].first, *pairs[i].second);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int k = 1; k < std::min<int>(threads, static_cast<int>(pairs.size())); ++k) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  CurvatureStudy out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (errors[i]) std::rethrow_exception(errors[i]);
    append_rows(out.table, parts[i].table);
    for (auto& p : parts[i].profiles) out.profiles.push_back(std::move(p));
    for (auto& p : parts[i].paths) out.paths.push_back(std::move(p));
  }
  return out;
}

}  // namespace flowgauge
