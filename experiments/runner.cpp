#include "experiments/runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "analytics/errors.hpp"
#include "analytics/order_fit.hpp"
#include "experiments/cell_metrics.hpp"
#include "results/h5.hpp"
#include "results/provenance.hpp"
#include "results/table.hpp"

namespace fs = std::filesystem;

namespace flowgauge {
namespace {

std::mutex g_h5;  // the HDF5 library here is not thread-safe: one caller at a time

struct CellResult {
  Table row;                                // one row
  std::vector<std::pair<std::string, VectorXd>> arrays;
};

// ---- reference paths, shared by every solver of one (data, schedule, grid, steps, seed) ----
class ReferenceCache {
 public:
  std::shared_ptr<const ReferencePath> get(const Experiment& e, const Cell& c, Model& model, const Grid& grid,
                                           const MatrixXd& start) {
    const std::string key = fmt::format("{}|{}|{}|{}|{}", c.data, c.schedule, c.grid, c.steps, c.seed);
    std::shared_future<std::shared_ptr<const ReferencePath>> fut;
    std::promise<std::shared_ptr<const ReferencePath>> mine;
    bool compute = false;
    {
      std::lock_guard<std::mutex> lock(m_);
      auto it = cache_.find(key);
      if (it == cache_.end()) {
        fut = mine.get_future().share();
        cache_.emplace(key, fut);
        compute = true;
      } else {
        fut = it->second;
      }
    }
    if (compute) {
      try {
        mine.set_value(std::make_shared<const ReferencePath>(reference_path(model, grid, start, e.ref_rtol, e.ref_atol)));
      } catch (...) {
        mine.set_exception(std::current_exception());
      }
    }
    return fut.get();
  }

 private:
  std::mutex m_;
  std::map<std::string, std::shared_future<std::shared_ptr<const ReferencePath>>> cache_;
};

CellResult compute_cell(const Experiment& e, const Cell& c, ReferenceCache& refs) {
  const auto& data = e.data[c.data];
  const auto& sch = *e.schedules[c.schedule].schedule;
  const auto& sv = e.solvers[c.solver];
  GridSpec spec = e.grids[c.grid].spec;
  spec.steps = c.steps;
  const Grid grid = make_grid(sch, spec);
  const auto& gm = *data.mixture;
  // Starting points: exact draw from p at the first grid time, keyed by (seed, particle) only,
  // so every solver of a (data, schedule, grid, seed) starts from the same points.
  const TimePoint p0 = sch.at(grid.t.front());
  const MatrixXd start = gm.sample(p0.alpha, p0.sigma, c.seed, e.particles);
  Model ref_model(gm, sch);
  const auto ref = refs.get(e, c, ref_model, grid, start);

  CellResult r;
  auto& T = r.row;
  T.col<long long>("cell_id").push_back(c.id);
  T.col<std::string>("data").push_back(data.name);
  T.col<long long>("dim").push_back(gm.dim());
  T.col<long long>("components").push_back(gm.size());
  T.col<std::string>("schedule").push_back(e.schedules[c.schedule].name);
  T.col<std::string>("schedule_spec").push_back(sch.describe());
  T.col<std::string>("solver").push_back(sv.label);
  T.col<std::string>("solver_name").push_back(sv.name);
  T.col<std::string>("coordinates").push_back(sv.options.count("coordinates") ? sv.options.at("coordinates") : "");
  T.col<std::string>("grid").push_back(e.grids[c.grid].label);
  T.col<long long>("steps").push_back(c.steps);
  T.col<long long>("seed").push_back(static_cast<long long>(c.seed));
  T.col<long long>("particles").push_back(e.particles);
  T.col<double>("t_final").push_back(grid.t.back());

  auto solver = make_solver(sv.name, sv.options);
  // Stochastic samplers: the Brownian path is keyed by (seed, particle) like the starting points.
  if (solver->traits().stochastic) solver->set_noise(brownian_path(gm, sch, c.seed));
  T.col<double>("declared_order").push_back(solver->traits().order);
  T.col<std::string>("family").push_back(solver->traits().family);
  Model model(gm, sch);
  MatrixXd X = start;
  const int N = grid.steps();
  VectorXd err_rms = VectorXd::Constant(N + 1, NAN), err_max = VectorXd::Constant(N + 1, NAN);
  std::string failure;
  int failed_at = -1;
  const auto t0 = std::chrono::steady_clock::now();
  const auto res = sample(*solver, model, grid, X, false, [&](int i, const ConstMatRef& Xi) {
    if (failed_at < 0 && !Xi.allFinite()) failed_at = i;
    const auto norms = (Xi - ref->states[i]).colwise().norm();
    err_rms(i) = std::sqrt(norms.squaredNorm() / double(Xi.cols()));
    err_max(i) = norms.maxCoeff();
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (failed_at >= 0) failure = fmt::format("non-finite state after grid index {} (t = {:.6g})", failed_at, grid.t[failed_at]);
  T.col<std::string>("status").push_back(failure.empty() ? "ok" : "failed");
  T.col<std::string>("failure").push_back(failure);
  T.col<long long>("nfe").push_back(res.nfe);
  T.col<double>("wall_seconds").push_back(secs);
  T.col<double>("error_rms").push_back(err_rms(N));
  T.col<double>("error_max").push_back(err_max(N));
  double worst = 0;
  for (int i = 0; i <= N; ++i)
    if (std::isfinite(err_rms(i))) worst = std::max(worst, err_rms(i));
  T.col<double>("error_rms_max_over_time").push_back(failure.empty() ? worst : NAN);
  T.col<double>("reference_error").push_back(ref->error_estimate.back());
  r.arrays.emplace_back("t", Eigen::Map<const VectorXd>(grid.t.data(), N + 1));
  r.arrays.emplace_back("error_rms_t", err_rms);
  r.arrays.emplace_back("error_max_t", err_max);
  r.arrays.emplace_back("reference_error_t",
                        Eigen::Map<const VectorXd>(ref->error_estimate.data(), static_cast<Eigen::Index>(ref->error_estimate.size())));
  if (e.keep_per_particle) r.arrays.emplace_back("error_per_particle", (X - ref->states.back()).colwise().norm().transpose());

  if (e.wants("distribution")) distribution_metrics(e, gm, sch, grid, X, T);
  if (e.wants("lte")) r.arrays.emplace_back("lte_rms_t", lte_profile(sv, model, grid, *ref));
  if (e.wants("likelihood")) likelihood_metrics(e, c, gm, sch, grid, sv, T);
  return r;
}

// ---- durable shards ----
std::string shard_dir(const Experiment& e) { return e.output + ".cells"; }

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_shard(const Experiment& e, const Cell& c, const CellResult& r) {
  std::lock_guard<std::mutex> lock(g_h5);
  const std::string path = fmt::format("{}/cell_{:06d}.h5", shard_dir(e), c.id);
  {
    h5::AtomicOutput out(path);
    write_table(out.file(), "row", r.row);
    h5::Handle g(H5Gcreate2(out.file(), "arrays", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    for (const auto& [k, v] : r.arrays) h5::write_vector(g.get(), k, v);
    h5::write_attr(out.file(), "plan_hash", fmt::format("{:016x}", e.plan_hash));
    h5::write_attr(out.file(), "cell_key", e.cell_key(c));
    out.commit();
  }
  fsync_path(path);
  fsync_path(shard_dir(e));
}

// "<file>.partial-<pid>" of a process that no longer runs (killed while writing <file>).
bool stale_partial(const fs::path& p) {
  const auto name = p.filename().string();
  const auto k = name.rfind(".partial-");
  if (k == std::string::npos) return false;
  const auto digits = name.substr(k + 9);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) return false;
  const pid_t pid = static_cast<pid_t>(std::stol(digits));
  return pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH;
}

std::map<int, CellResult> load_shards(const Experiment& e) {
  std::map<int, CellResult> done;
  std::lock_guard<std::mutex> lock(g_h5);
  const std::string dir = shard_dir(e);
  if (!fs::exists(dir)) return done;
  for (const auto& ent : fs::directory_iterator(dir)) {
    const auto name = ent.path().filename().string();
    if (name.find(".partial-") != std::string::npos) {  // a cell in flight when a run died (not one running now)
      if (stale_partial(ent.path())) fs::remove(ent.path());
      continue;
    }
    if (name.rfind("cell_", 0) != 0 || ent.path().extension() != ".h5") continue;
    const int id = std::stoi(name.substr(5, 6));
    auto f = h5::open_file(ent.path().string());
    const auto hash = h5::read_string_attr(f.get(), "plan_hash");
    if (hash != fmt::format("{:016x}", e.plan_hash))
      throw InputError(fmt::format("{}: finished cells of a different experiment (plan {} here, {} now). Rerun with "
                                   "another --output, or delete {} to start over",
                                   dir, hash, fmt::format("{:016x}", e.plan_hash), dir));
    if (id < 0 || id >= int(e.cells.size()) || h5::read_string_attr(f.get(), "cell_key") != e.cell_key(e.cells[id]))
      throw InputError(fmt::format("{}: cell {} does not match the plan; delete {} to start over", ent.path().string(), id, dir));
    CellResult r;
    r.row = read_table(f.get(), "row");
    h5::Handle g(H5Gopen2(f.get(), "arrays", H5P_DEFAULT), H5Gclose);
    H5G_info_t info;
    H5Gget_info(g.get(), &info);
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      char nm[256];
      H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nm, sizeof nm, H5P_DEFAULT);
      r.arrays.emplace_back(nm, h5::read_vector(g.get(), nm, ent.path().string()));
    }
    done.emplace(id, std::move(r));
  }
  return done;
}

// ---- whole-run extras: path geometry, density lattices for 2-D data ----
struct Extras {
  CurvatureStudy curvature;
  bool has_curvature = false;
  std::vector<std::pair<std::string, MatrixXd>> density;  // per 2-D data set: log p at the data end
  VectorXd axis;
};

Extras compute_extras(const Experiment& e) {
  Extras x;
  if (e.wants("curvature")) {
    x.curvature = curvature_study(e);
    x.has_curvature = true;
  }
  const int n = 121;
  for (const auto& d : e.data) {
    if (d.mixture->dim() != 2) continue;
    const Schedule& s = *e.schedules.front().schedule;
    const TimePoint p = s.at(s.t_lo());
    const MatrixXd C = d.mixture->marginal_cov(p.alpha, p.sigma);
    const VectorXd m = d.mixture->marginal_mean(p.alpha);
    const double lim = std::abs(m.cwiseAbs().maxCoeff()) + 3.5 * std::sqrt(C.diagonal().maxCoeff());
    x.axis = VectorXd::LinSpaced(n, -lim, lim);
    MatrixXd P(2, n * n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) P.col(i * n + j) << x.axis(j), x.axis(i);
    const MixtureEval ev = d.mixture->evaluate(P, p.alpha, p.sigma, kLogp);
    x.density.emplace_back(d.name, Eigen::Map<const MatrixXd>(ev.logp.data(), n, n));
  }
  return x;
}

// ---- the main output file, rebuilt from finished cells ----
Table fit_orders(const Table& cells) {
  Table o;
  const auto n = cells.rows();
  if (n == 0) return o;
  auto S = [&](const char* k) -> const std::vector<std::string>& {
    return std::get<std::vector<std::string>>(cells.columns[std::find(cells.names.begin(), cells.names.end(), k) - cells.names.begin()]);
  };
  auto D = [&](const char* k) -> const std::vector<double>& {
    return std::get<std::vector<double>>(cells.columns[std::find(cells.names.begin(), cells.names.end(), k) - cells.names.begin()]);
  };
  auto I = [&](const char* k) -> const std::vector<long long>& {
    return std::get<std::vector<long long>>(cells.columns[std::find(cells.names.begin(), cells.names.end(), k) - cells.names.begin()]);
  };
  std::map<std::string, std::vector<std::size_t>> groups;
  for (std::size_t r = 0; r < n; ++r)
    groups[fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}", S("data")[r], S("schedule")[r], S("solver")[r], S("grid")[r], I("seed")[r])]
        .push_back(r);
  for (const auto& [key, rows] : groups) {
    std::vector<double> ns, errs;
    double floor = 0;
    for (auto r : rows) {
      ns.push_back(double(I("steps")[r]));
      errs.push_back(D("error_rms")[r]);
      floor = std::max(floor, D("reference_error")[r]);
    }
    // points count only when 100x above the reference's own error: below that the reference dominates
    const OrderFit f = fit_order(ns, errs, 100 * floor);
    const auto r0 = rows.front();
    o.col<std::string>("data").push_back(S("data")[r0]);
    o.col<std::string>("schedule").push_back(S("schedule")[r0]);
    o.col<std::string>("solver").push_back(S("solver")[r0]);
    o.col<std::string>("grid").push_back(S("grid")[r0]);
    o.col<long long>("seed").push_back(I("seed")[r0]);
    o.col<double>("declared_order").push_back(D("declared_order")[r0]);
    o.col<double>("fitted_order").push_back(f.order);
    o.col<double>("intercept").push_back(f.intercept);
    o.col<double>("r2").push_back(f.r2);
    o.col<long long>("points").push_back(f.points);
    o.col<double>("error_floor").push_back(100 * floor);
  }
  return o;
}

void write_main(const Experiment& e, const std::map<int, CellResult>& done, bool complete, const std::string& started,
                int threads, const Extras& extras) {
  std::lock_guard<std::mutex> lock(g_h5);
  h5::AtomicOutput out(e.output);
  const hid_t f = out.file();
  auto prov = provenance(fmt::format("flowgauge run {}", e.file), threads);
  prov["start_time"] = started;
  h5::write_attrs(f, prov);
  h5::write_attr(f, "experiment_file", e.file);
  h5::write_attr(f, "experiment", e.text);
  h5::write_attr(f, "experiment_name", e.name);
  h5::write_attr(f, "plan_hash", fmt::format("{:016x}", e.plan_hash));
  h5::write_attr(f, "status", complete ? "complete" : "partial");
  h5::write_attr(f, "cells_total", static_cast<long long>(e.cells.size()));
  h5::write_attr(f, "cells_done", static_cast<long long>(done.size()));
  h5::write_attr(f, "seeds", fmt::format("{}", fmt::join(e.seeds, ",")));
  h5::write_attr(f, "end_time", utc_now());
  Table cells;
  for (const auto& [id, r] : done) append_rows(cells, r.row);  // ordered by cell id
  write_table(f, "cells", cells);
  write_table(f, "orders", fit_orders(cells));
  h5::Handle arrays(H5Gcreate2(f, "cell_arrays", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  for (const auto& [id, r] : done) {
    h5::Handle g(H5Gcreate2(arrays.get(), fmt::format("{:06d}", id).c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    for (const auto& [k, v] : r.arrays) h5::write_vector(g.get(), k, v);
  }
  if (extras.has_curvature) {
    write_table(f, "curvature", extras.curvature.table);
    h5::Handle pg(H5Gcreate2(f, "curvature_profiles", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    for (std::size_t i = 0; i < extras.curvature.profiles.size(); ++i) {
      h5::Handle g(H5Gcreate2(pg.get(), fmt::format("{:04d}", i).c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      h5::write_vector(g.get(), "s", extras.curvature.profiles[i].s);
      h5::write_vector(g.get(), "kappa", extras.curvature.profiles[i].kappa);
      h5::write_vector(g.get(), "speed", extras.curvature.profiles[i].speed);
    }
    if (!extras.curvature.paths.empty()) {
      h5::Handle tg(H5Gcreate2(f, "trajectories", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      for (const auto& p : extras.curvature.paths) {
        if (H5Lexists(tg.get(), p.data.c_str(), H5P_DEFAULT) <= 0)
          h5::Handle(H5Gcreate2(tg.get(), p.data.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        h5::Handle dg(H5Gopen2(tg.get(), p.data.c_str(), H5P_DEFAULT), H5Gclose);
        h5::Handle sg(H5Gcreate2(dg.get(), p.schedule.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        h5::write_stack(sg.get(), "x", p.x);
        h5::write_vector(sg.get(), "t", Eigen::Map<const VectorXd>(p.t.data(), static_cast<Eigen::Index>(p.t.size())));
      }
    }
  }
  if (!extras.density.empty()) {
    h5::Handle dg(H5Gcreate2(f, "density", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    for (const auto& [name, lp] : extras.density) {
      h5::Handle g(H5Gcreate2(dg.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      h5::write_matrix(g.get(), "logp", lp);
      h5::write_vector(g.get(), "axis", extras.axis);
    }
  }
  out.commit();
}

std::string hms(double s) {
  const long t = std::lround(s);
  return fmt::format("{:02d}:{:02d}:{:02d}", t / 3600, (t / 60) % 60, t % 60);
}

}  // namespace

void print_plan(const Experiment& e) {
  fmt::print("experiment {} ({}): {} cells ({} before exclude/only), {} particles each -> {}\n", e.name, e.file, e.cells.size(),
             e.cells_before_filters, e.particles, e.output);
  fmt::print("  data      : {}\n", [&] { std::vector<std::string> v; for (auto& d : e.data) v.push_back(fmt::format("{} (d={}, K={})", d.name, d.mixture->dim(), d.mixture->size())); return fmt::format("{}", fmt::join(v, ", ")); }());
  fmt::print("  schedules : {}\n", [&] { std::vector<std::string> v; for (auto& s : e.schedules) v.push_back(s.schedule->describe()); return fmt::format("{}", fmt::join(v, ", ")); }());
  fmt::print("  solvers   : {}\n", [&] { std::vector<std::string> v; for (auto& s : e.solvers) v.push_back(s.label); return fmt::format("{}", fmt::join(v, ", ")); }());
  fmt::print("  grids     : {}\n", [&] { std::vector<std::string> v; for (auto& g : e.grids) v.push_back(g.label); return fmt::format("{}", fmt::join(v, ", ")); }());
  fmt::print("  steps     : {}\n  seeds     : {}\n  metrics   : {}\n  plan hash : {:016x}\n", fmt::join(e.steps, ", "),
             fmt::join(e.seeds, ", "), fmt::join(e.metrics, ", "), e.plan_hash);
}

RunSummary run_experiment(const Experiment& e, const RunOptions& opt) {
  h5::quiet();
  const auto t_start = std::chrono::steady_clock::now();
  const std::string started = utc_now();
  int threads = opt.threads > 0 ? opt.threads : e.threads > 0 ? e.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(1, threads);

  // Refuse to mix with an output file from another experiment.
  if (fs::exists(e.output)) {
    std::lock_guard<std::mutex> lock(g_h5);
    std::string hash;
    try {
      auto f = h5::open_file(e.output);
      hash = h5::read_string_attr(f.get(), "plan_hash");
    } catch (const InputError&) {
    }
    if (hash != fmt::format("{:016x}", e.plan_hash))
      throw InputError(fmt::format("{}: exists and holds {} (plan hash {}), not this experiment (plan {:016x}). "
                                   "Choose another output (--output), or delete it to start over",
                                   e.output, hash.empty() ? "something else" : "another experiment", hash.empty() ? "none" : hash, e.plan_hash));
  }
  const Extras extras = compute_extras(e);  // before anything is written: it may still refuse the input
  {
    const auto parent = fs::path(e.output).parent_path();
    std::error_code ec;
    if (!parent.empty()) fs::create_directories(parent, ec);
    fs::create_directories(shard_dir(e), ec);
    if (ec || access(shard_dir(e).c_str(), W_OK) != 0)
      throw InputError(fmt::format("{}: cannot create the output directory (not writable?)", shard_dir(e)));
  }
  {  // a main file half-written when a run died
    const auto out = fs::path(e.output);
    const auto parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    std::error_code ec;
    for (const auto& ent : fs::directory_iterator(parent, ec))
      if (ent.path().filename().string().rfind(out.filename().string() + ".partial-", 0) == 0 && stale_partial(ent.path()))
        fs::remove(ent.path(), ec);
  }
  std::map<int, CellResult> done = load_shards(e);
  RunSummary sum;
  sum.cells = e.cells.size();
  sum.resumed = done.size();
  std::vector<int> todo;
  for (const auto& c : e.cells)
    if (!done.count(c.id)) todo.push_back(c.id);
  write_main(e, done, todo.empty(), started, threads, extras);  // the file opens from the start

  ReferenceCache refs;
  std::atomic<std::size_t> next{0};
  std::mutex m;  // guards done, progress, errors
  std::exception_ptr error;
  auto last_rebuild = std::chrono::steady_clock::now();
  auto last_print = std::chrono::steady_clock::time_point{};
  const bool tty = isatty(STDERR_FILENO);
  std::size_t computed = 0;
  auto progress = [&](bool final) {
    if (opt.quiet) return;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    const double eta = computed ? el / computed * (todo.size() - computed) : 0;
    const auto line = fmt::format("flowgauge run: {}/{} cells ({} resumed), elapsed {}, ETA {}", done.size(), e.cells.size(),
                                  sum.resumed, hms(el), hms(eta));
    if (tty) fmt::print(stderr, "\r{}{}", line, final ? "\n" : "");
    else fmt::print(stderr, "{}\n", line);
  };
  auto worker = [&] {
    for (;;) {
      const std::size_t k = next.fetch_add(1);
      if (k >= todo.size()) return;
      {
        std::lock_guard<std::mutex> lock(m);
        if (error) return;
      }
      try {
        const Cell& c = e.cells[todo[k]];
        CellResult r = compute_cell(e, c, refs);
        write_shard(e, c, r);  // durable before moving on
        std::lock_guard<std::mutex> lock(m);
        done.emplace(c.id, std::move(r));
        ++computed;
        const auto now = std::chrono::steady_clock::now();
        if (std::chrono::duration<double>(now - last_rebuild).count() >= opt.rebuild_seconds) {
          write_main(e, done, false, started, threads, extras);
          last_rebuild = now;
        }
        if (tty || std::chrono::duration<double>(now - last_print).count() >= 1.0) {
          progress(false);
          last_print = now;
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(m);
        if (!error) error = std::current_exception();
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) {
    write_main(e, done, false, started, threads, extras);
    std::rethrow_exception(error);
  }
  write_main(e, done, true, started, threads, extras);
  progress(true);
  sum.computed = computed;
  for (const auto& [id, r] : done)
    if (std::get<std::vector<std::string>>(r.row.columns[std::find(r.row.names.begin(), r.row.names.end(), "status") - r.row.names.begin()])[0] != "ok")
      ++sum.failed;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return sum;
}

}  // namespace flowgauge
