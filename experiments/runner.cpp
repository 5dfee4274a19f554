#include "experiments/runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <queue>
#include <set>
#include <thread>

#include "analytics/errors.hpp"
#include "analytics/order_fit.hpp"
#include "experiments/cell_metrics.hpp"
#include "experiments/runner_detail.hpp"
#include "results/h5.hpp"
#include "results/provenance.hpp"
#include "results/table.hpp"

namespace fs = std::filesystem;

namespace flowgauge::detail {

std::mutex g_h5;

// ---- reference paths, shared by every solver of one (data, schedule, grid, steps, seed) ----
// Computed by the first cell that needs one (the others wait). A path nobody holds is kept only
// among the `idle_limit` most recently used, so memory does not grow with the number of groups;
// a group asked for again after that is recomputed, to the same numbers.
class ReferenceCache {
 public:
  // Paths over e.ref_spill_mb go to unlinked files in `spill_dir`.
  ReferenceCache(std::size_t idle_limit, std::string spill_dir) : idle_limit_(idle_limit), spill_dir_(std::move(spill_dir)) {}

  std::shared_ptr<const ReferencePath> get(const Experiment& e, const Cell& c, Model& model, const Grid& grid,
                                           const MatrixXd& start) {
    const std::string key = fmt::format("{}|{}|{}|{}|{}", c.data, c.schedule, c.grid, c.steps, c.seed);
    std::shared_future<std::shared_ptr<const ReferencePath>> fut;
    std::promise<std::shared_ptr<const ReferencePath>> mine;
    bool compute = false;
    {
      std::lock_guard<std::mutex> lock(m_);
      evict_idle();
      auto it = cache_.find(key);
      if (it == cache_.end()) {
        fut = mine.get_future().share();
        it = cache_.emplace(key, Entry{fut, 0}).first;
        compute = true;
      } else {
        fut = it->second.path;
      }
      it->second.last_use = ++clock_;
    }
    if (compute) {
      try {
        // States beyond reference.spill_mb go to an unlinked file: memory O(particles x d) per path.
        const std::string dir = over_spill_limit(e, start, grid.t.size()) ? spill_dir_ : std::string();
        try {
          mine.set_value(std::make_shared<const ReferencePath>(reference_path(model, grid, start, e.ref_rtol, e.ref_atol, dir)));
        } catch (const PathStoreError& err) {
          throw h5::WriteError(err.what());  // a full disk: reported (and resumable) like any failed write
        }
      } catch (...) {
        mine.set_exception(std::current_exception());
      }
    }
    return fut.get();
  }

 private:
  struct Entry {
    std::shared_future<std::shared_ptr<const ReferencePath>> path;
    std::uint64_t last_use;
  };
  // Caller holds m_. Idle: computed, and held by no cell (the cache's own reference only).
  void evict_idle() {
    std::vector<std::pair<std::uint64_t, std::string>> idle;
    for (const auto& [key, en] : cache_)
      if (en.path.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        try {
          if (en.path.get().use_count() == 1) idle.emplace_back(en.last_use, key);
        } catch (...) {
          idle.emplace_back(en.last_use, key);  // a failed computation: let a later cell retry
        }
      }
    if (idle.size() <= idle_limit_) return;
    std::sort(idle.begin(), idle.end());  // oldest first
    for (std::size_t i = 0; i + idle_limit_ < idle.size(); ++i) cache_.erase(idle[i].second);
  }

  std::mutex m_;
  std::map<std::string, Entry> cache_;
  std::size_t idle_limit_;
  std::string spill_dir_;
  std::uint64_t clock_ = 0;
};

std::shared_ptr<ReferenceCache> new_reference_cache(std::size_t idle_limit, const std::string& spill_dir) {
  return std::make_shared<ReferenceCache>(idle_limit, spill_dir);
}

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
  MatrixXd R;  // the reference at grid time i, when read from a spill file
  const auto t0 = std::chrono::steady_clock::now();
  const auto res = sample(*solver, model, grid, X, false, [&](int i, const ConstMatRef& Xi) {
    if (failed_at < 0 && !Xi.allFinite()) failed_at = i;
    const auto norms = (Xi - ref->states.view(i, R)).colwise().norm();
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
  if (e.keep_per_particle) {
    r.arrays.emplace_back("error_per_particle", (X - ref->states.view(N, R)).colwise().norm().transpose());
  }

  if (e.wants("distribution")) distribution_metrics(e, gm, sch, grid, X, T);
  if (e.wants("lte")) r.arrays.emplace_back("lte_rms_t", lte_profile(sv, model, grid, *ref));
  if (e.wants("likelihood")) likelihood_metrics(e, c, gm, sch, grid, sv, T);
  if (e.wants("strong")) strong_metrics(e, c, gm, sch, grid, sv, start, X, T);
  if (e.wants("exact_law")) exact_law_metrics(gm, sch, grid, sv, T, r.arrays);
  return r;
}

// ---- durable cell files ----
std::string cells_dir(const Experiment& e) { return e.output + ".cells"; }

namespace {
std::string cell_path(const Experiment& e, int id) { return fmt::format("{}/cell_{:06d}.h5", cells_dir(e), id); }

// A write error of `path` that says so: "<path>: cannot write: <cause> (writing dataset ...)".
h5::WriteError naming(const std::string& path, const h5::WriteError& err) {
  const std::string what = err.what();
  if (what.rfind(path, 0) == 0) return err;  // already names it (or its temporary sibling)
  return h5::WriteError(fmt::format("{}: cannot write: {}", path, what));
}
}  // namespace

void write_cell(const Experiment& e, const Cell& c, const CellResult& r) {
  std::unique_lock<std::mutex> lock(g_h5);
  const std::string path = cell_path(e, c.id);
  try {
    h5::AtomicOutput out(path);  // declared after the lock: a throw before close() closes HDF5 under it
    write_table(out.file(), "row", r.row);
    h5::Handle g(H5Gcreate2(out.file(), "arrays", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!g) throw h5::WriteError(fmt::format("{} (creating group 'arrays')", h5::error_cause()));
    for (const auto& [k, v] : r.arrays) h5::write_vector(g.get(), k, v);
    g = h5::Handle();
    h5::write_attr(out.file(), "plan_hash", fmt::format("{:016x}", e.plan_hash));
    h5::write_attr(out.file(), "cell_key", e.cell_key(c));
    out.close();
    lock.unlock();  // the fsync waits for the disk, not for HDF5: the other threads' writes go on meanwhile
    out.commit(/*durable=*/true);  // fsync'd before the rename: the name appears only over complete data
  } catch (const h5::WriteError& err) {
    throw naming(path, err);
  }
}

namespace {
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

// The arrays of a cell file's "arrays" group or of a run file's "cell_arrays/<id>" (caller holds g_h5).
CellArrays read_arrays(hid_t g, const std::string& path) {
  CellArrays out;
  H5G_info_t info;
  H5Gget_info(g, &info);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    char nm[256];
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nm, sizeof nm, H5P_DEFAULT);
    out.emplace_back(nm, h5::read_vector(g, nm, path, true));  // NaN = undefined here
  }
  return out;
}

// The row of a finished cell file, checked against the plan (caller holds g_h5).
Table read_cell(const Experiment& e, int id, const std::string& path) {
  auto f = h5::open_file(path);
  const auto hash = h5::read_string_attr(f.get(), "plan_hash");
  if (hash != fmt::format("{:016x}", e.plan_hash))
    throw InputError(fmt::format("{}: finished cells of a different experiment (plan {} here, {:016x} now). Rerun with "
                                 "another --output, or delete {} to start over",
                                 cells_dir(e), hash, e.plan_hash, cells_dir(e)));
  if (id < 0 || id >= int(e.cells.size()) || h5::read_string_attr(f.get(), "cell_key") != e.cell_key(e.cells[id]))
    throw InputError(fmt::format("{}: cell {} does not match the plan; delete {} to start over", path, id, cells_dir(e)));
  return read_table(f.get(), "row");
}

// A finished cell's arrays, from its file (caller holds g_h5).
CellArrays cell_file_arrays(const Experiment& e, int id) {
  const auto path = cell_path(e, id);
  auto f = h5::open_file(path);
  h5::Handle g(H5Gopen2(f.get(), "arrays", H5P_DEFAULT), H5Gclose);
  if (!g) throw InputError(fmt::format("{}: no group 'arrays'", path));
  return read_arrays(g.get(), path);
}

// Finished cells in <output>.cells/.
Finished load_cells(const Experiment& e, const IdSet& scope) {
  std::lock_guard<std::mutex> lock(g_h5);
  const std::string dir = cells_dir(e);
  if (!fs::exists(dir)) return Finished(scope);
  Finished done(scope, dir);  // the rows in a scratch file there
  for (const auto& ent : fs::directory_iterator(dir)) {
    const auto name = ent.path().filename().string();
    if (name.find(".partial-") != std::string::npos) continue;  // half-written: remove_stale_partials
    if (name.rfind("cell_", 0) != 0 || ent.path().extension() != ".h5") continue;
    const int id = std::stoi(name.substr(5, 6));
    Table r = read_cell(e, id, ent.path().string());
    if (!scope.contains(id))
      throw InputError(fmt::format("{}: cell {} does not belong to this run's cells (another shard's?); delete {} to start over",
                                   ent.path().string(), id, dir));
    done.emplace(id, r);
  }
  return done;
}
}  // namespace

void remove_stale_partials(const Experiment& e) noexcept {
  try {  // only tidying: a directory that cannot be listed keeps its files
    std::error_code ec;
    const auto out = fs::path(e.output);
    const auto parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    for (const auto& ent : fs::directory_iterator(parent, ec))  // the main file's
      if (ent.path().filename().string().rfind(out.filename().string() + ".partial-", 0) == 0 && stale_partial(ent.path()))
        fs::remove(ent.path(), ec);
    for (const auto& ent : fs::directory_iterator(cells_dir(e), ec))  // the cells'
      if (stale_partial(ent.path())) fs::remove(ent.path(), ec);
  } catch (const std::exception&) {
  }
}

Table load_cell(const Experiment& e, int id) {
  std::lock_guard<std::mutex> lock(g_h5);
  const auto path = cell_path(e, id);
  if (!fs::exists(path))
    throw InputError(fmt::format("{}: not found although reported finished: {} must be on a file system every process "
                                 "of the run shares",
                                 path, cells_dir(e)));
  return read_cell(e, id, path);
}

// ---- whole-run extras: path geometry, density lattices for 2-D data ----
// Written once into an in-memory HDF5 file; every main-file write copies its objects, compressed
// chunks as they are (quickstart: 24 ms of zlib a write -> 2 ms).
struct Extras {
  h5::Handle image;  // closed with g_h5 held (compute_extras' deleter)
  std::vector<std::string> objects;  // its top-level objects, in the order they are written
};

namespace {
void write_extras(Extras& x, const CurvatureStudy* curvature, const std::vector<std::pair<std::string, MatrixXd>>& density,
                  const VectorXd& axis) {
  const hid_t f = x.image.get();
  if (curvature) {
    write_table(f, "curvature", curvature->table);
    h5::Handle pg(H5Gcreate2(f, "curvature_profiles", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    for (std::size_t i = 0; i < curvature->profiles.size(); ++i) {
      h5::Handle g(H5Gcreate2(pg.get(), fmt::format("{:04d}", i).c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      h5::write_vector(g.get(), "s", curvature->profiles[i].s);
      h5::write_vector(g.get(), "kappa", curvature->profiles[i].kappa);
      h5::write_vector(g.get(), "speed", curvature->profiles[i].speed);
    }
    x.objects = {"curvature", "curvature_profiles"};
    if (!curvature->paths.empty()) {
      h5::Handle tg(H5Gcreate2(f, "trajectories", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      for (const auto& p : curvature->paths) {
        if (H5Lexists(tg.get(), p.data.c_str(), H5P_DEFAULT) <= 0)
          h5::Handle(H5Gcreate2(tg.get(), p.data.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        h5::Handle dg(H5Gopen2(tg.get(), p.data.c_str(), H5P_DEFAULT), H5Gclose);
        h5::Handle sg(H5Gcreate2(dg.get(), p.schedule.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        h5::write_stack(sg.get(), "x", p.x);
        h5::write_vector(sg.get(), "t", Eigen::Map<const VectorXd>(p.t.data(), static_cast<Eigen::Index>(p.t.size())));
      }
      x.objects.push_back("trajectories");
    }
  }
  if (!density.empty()) {
    h5::Handle dg(H5Gcreate2(f, "density", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    for (const auto& [name, lp] : density) {
      h5::Handle g(H5Gcreate2(dg.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      h5::write_matrix(g.get(), "logp", lp);
      h5::write_vector(g.get(), "axis", axis);
    }
    x.objects.push_back("density");
  }
}
}  // namespace

std::shared_ptr<const Extras> compute_extras(const Experiment& e, int threads) {
  CurvatureStudy curvature;
  if (e.wants("curvature")) curvature = curvature_study(e, threads);
  std::vector<std::pair<std::string, MatrixXd>> density;  // per 2-D data set: log p at the data end
  VectorXd axis;
  const int n = 121;
  for (const auto& d : e.data) {
    if (d.mixture->dim() != 2) continue;
    const Schedule& s = *e.schedules.front().schedule;
    const TimePoint p = s.at(s.t_lo());
    const MatrixXd C = d.mixture->marginal_cov(p.alpha, p.sigma);
    const VectorXd m = d.mixture->marginal_mean(p.alpha);
    const double lim = std::abs(m.cwiseAbs().maxCoeff()) + 3.5 * std::sqrt(C.diagonal().maxCoeff());
    axis = VectorXd::LinSpaced(n, -lim, lim);
    MatrixXd P(2, n * n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) P.col(i * n + j) << axis(j), axis(i);
    const MixtureEval ev = d.mixture->evaluate(P, p.alpha, p.sigma, kLogp);
    density.emplace_back(d.name, Eigen::Map<const MatrixXd>(ev.logp.data(), n, n));
  }
  std::shared_ptr<Extras> x(new Extras, [](Extras* p) {
    std::lock_guard<std::mutex> lock(g_h5);
    delete p;
  });
  {
    std::lock_guard<std::mutex> lock(g_h5);  // released before x would be deleted on a throw
    x->image = h5::memory_file();
    write_extras(*x, e.wants("curvature") ? &curvature : nullptr, density, axis);
  }
  return x;
}

// ---- the main output file, rebuilt from finished cells ----
namespace {
// The columns fit_orders reads (stochastic_order_fits' among them, where present).
const std::vector<std::string> kOrderColumns = {"data", "schedule", "solver", "grid", "seed", "steps", "declared_order", "error_rms",
                                                "reference_error", "strong", "strong_ref_floor", "strong_exact", "strong_exact_floor",
                                                "w2_exact"};

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
  // groups in the order of their first row (rows come in plan order)
  std::map<std::tuple<std::string, std::string, std::string, std::string, long long>, std::size_t> index;
  std::vector<std::vector<std::size_t>> groups;
  for (std::size_t r = 0; r < n; ++r) {
    const auto [it, fresh] = index.emplace(std::make_tuple(S("data")[r], S("schedule")[r], S("solver")[r], S("grid")[r], I("seed")[r]), groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(r);
  }
  for (const auto& rows : groups) {
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
    stochastic_order_fits(cells, rows, o);  // strong / weak orders of stochastic samplers (cell_metrics.hpp)
  }
  return o;
}

// The orders table of every finished cell, one block of the plan at a time: a fit is over the steps
// of one (data, schedule, solver, grid, seed), and the plan's order (plan.hpp) puts those of one
// (data, schedule, solver, grid) next to each other. A first pass sizes the table (rows, string
// widths), the second writes each block's rows as they come: only a block's rows are ever in memory.
void write_orders(hid_t loc, const Experiment& e, const Finished& done) {
  auto each_block = [&](const auto& fn) {
    // one (data, schedule, solver, grid): the plan positions that differ in steps and seed only
    const std::size_t per_block = e.steps.size() * e.seeds.size();
    for (auto it = e.cells.begin(); it != e.cells.end();) {
      const std::size_t first = it.id(), block = it.position() / per_block;
      while (it != e.cells.end() && it.position() / per_block == block) ++it;
      const Table t = fit_orders(done.rows(static_cast<int>(first), static_cast<int>(it.id()), kOrderColumns));
      if (t.rows()) fn(t);
    }
  };
  std::vector<std::string> names;
  std::vector<std::size_t> types, widths;
  std::size_t rows = 0;
  each_block([&](const Table& t) {
    if (names.empty()) {
      names = t.names;
      for (const auto& c : t.columns) types.push_back(c.index());
      widths.assign(names.size(), 1);
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (t.names.size() != names.size() || t.names[i] != names[i] || t.columns[i].index() != types[i])
        throw std::logic_error("orders: a block of the plan gives other columns than the first");
      if (const auto* v = std::get_if<std::vector<std::string>>(&t.columns[i]))
        for (const auto& str : *v) widths[i] = std::max(widths[i], str.size());
    }
    rows += t.rows();
  });
  const auto g = create_table_group(loc, "orders");
  std::vector<h5::Handle> sets;
  for (std::size_t i = 0; i < names.size(); ++i) sets.push_back(create_column(g.get(), "orders", names[i], types[i], rows, widths[i]));
  std::size_t written = 0;
  each_block([&](const Table& t) {
    for (std::size_t i = 0; i < names.size(); ++i) write_rows(sets[i].get(), "orders", names[i], written, t.columns[i], widths[i]);
    written += t.rows();
  });
}

}  // namespace

namespace {
// write_main with g_h5 held by the caller.
void write_main_locked(const Experiment& e, const Finished& done, const MainInfo& info, const Extras& extras,
                       const ArraySource& arrays_of) {
  h5::AtomicOutput out(e.output);
  const hid_t f = out.file();
  const bool complete = info.complete;
  auto prov = provenance(info.command, info.threads);
  prov["start_time"] = info.started;
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
  if (info.shards > 0) {  // a static shard's file: its cells only, merged by `flowgauge merge`
    h5::write_attr(f, "shard", fmt::format("{}/{}", info.shard, info.shards));
    h5::write_attr(f, "shard_cells", static_cast<long long>(info.scope));
  }
  done.write(f, "cells");  // ordered by cell id
  write_orders(f, e, done);
  {
    h5::Handle arrays(H5Gcreate2(f, "cell_arrays", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    std::size_t written = 0;
    for (const int id : done.ids()) {  // one cell's arrays in memory at a time
      h5::Handle g(H5Gcreate2(arrays.get(), fmt::format("{:06d}", id).c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      for (const auto& [k, v] : arrays_of(id)) h5::write_vector(g.get(), k, v);
      // Evicting a closed object (h5::AtomicOutput) first lists every dirty cache entry (HDF5 1.10's
      // H5C_set_slist_enabled): flushing now and then keeps that short. 4800 cells: 5 s -> 2.5 s.
      if (++written % 64 == 0) H5Fflush(f, H5F_SCOPE_LOCAL);
      if (written % 1024 == 0) H5garbage_collect();  // HDF5's free lists fill up with the cell files' objects
    }
  }
  for (const auto& name : extras.objects) h5::copy_object(extras.image.get(), name, f);
  out.commit();
}
}  // namespace

void write_main(const Experiment& e, const Finished& done, const MainInfo& info, const Extras& extras, const ArraySource& arrays) {
  std::lock_guard<std::mutex> lock(g_h5);
  try {
    write_main_locked(e, done, info, extras, arrays);
  } catch (const h5::WriteError& err) {
    throw naming(e.output, err);
  }
  // A rebuild opens and reads every cell file: hand what HDF5 keeps on its free lists back to the
  // allocator. (malloc_trim here as well made the quickstart 5-8 % slower at the same peak RSS: the
  // workers fault the pages back in.)
  H5garbage_collect();
}

void write_main(const Experiment& e, const Finished& done, const MainInfo& info, const Extras& extras) {
  write_main(e, done, info, extras, [&](int id) { return cell_file_arrays(e, id); });
}

std::string hms(double s) {
  const long t = std::lround(s);
  return fmt::format("{:02d}:{:02d}:{:02d}", t / 3600, (t / 60) % 60, t % 60);
}

std::string run_command(const Experiment& e) { return fmt::format("flowgauge run {}", e.file); }

std::string kept_and_resume(const Experiment& e, std::size_t done, std::size_t scope, const RunOptions& opt, bool main_written,
                            const std::string& when) {
  if (done == scope && main_written) return fmt::format("all {} cells are finished: {} is complete", scope, e.output);
  return fmt::format("{} of {} cells are finished and kept in {}/{}; {}resume with:\n  {}", done, scope, cells_dir(e),
                     main_written ? fmt::format(" (and in {})", e.output) : "", when,
                     opt.resume_command.empty() ? run_command(e) : opt.resume_command);
}

// ---- interruption ----

namespace {
std::atomic<int> g_first_signal{0}, g_signal_count{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler may only touch lock-free atomics");
struct sigaction g_old_int, g_old_term, g_old_xfsz;

// Async-signal-safe: lock-free atomics and sigaction only.
void on_stop_signal(int sig) {
  int none = 0;
  g_first_signal.compare_exchange_strong(none, sig);
  if (g_signal_count.fetch_add(1) >= 1) {  // the second: a third one takes the default action (ends the process)
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGINT, &dfl, nullptr);
    sigaction(SIGTERM, &dfl, nullptr);
  }
}
}  // namespace

RunSignals::RunSignals() {
  g_first_signal = 0;
  g_signal_count = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(SIGXFSZ, &ign, &g_old_xfsz);
}

RunSignals::~RunSignals() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
  sigaction(SIGXFSZ, &g_old_xfsz, nullptr);
}

int interrupted() { return g_first_signal.load(); }
bool abandon_requested() { return g_signal_count.load() >= 2; }
std::string signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : fmt::format("signal {}", sig); }

void abandon_run(const Experiment& e, const Finished& done, const MainInfo& info, const Extras& extras,
                 std::size_t scope, const RunOptions& opt, OutputLock* lock) {
  g_h5.lock();  // never released: no cell file is being written now, and none starts before the process ends
  const int sig = interrupted();
  MainInfo partial = info;
  partial.complete = done.size() == scope;
  bool written = true;
  try {
    write_main_locked(e, done, partial, extras, [&](int id) { return cell_file_arrays(e, id); });
  } catch (const h5::WriteError& err) {
    written = false;
    fmt::print(stderr, "flowgauge: error: {}\n", naming(e.output, err).what());
  }
  fmt::print(stderr, "flowgauge run: {} again: abandoned the cells in flight. {}\n", signal_name(sig),
             kept_and_resume(e, done.size(), scope, opt, written, ""));
  if (lock) lock->release();
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(128 + sig);
}

// ---- the output lock ----

std::string lock_path(const std::string& output) { return output + ".lock"; }

OutputLock::OutputLock(const std::string& output) : path_(lock_path(output)) {
  for (int attempt = 0;; ++attempt) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      throw InputError(fmt::format("{}: cannot create the lock file: {} (is the output's directory writable?)", path_,
                                   std::strerror(errno)));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err == EWOULDBLOCK) {
        char buf[256] = {};
        const auto n = ::pread(fd, buf, sizeof buf - 1, 0);
        std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
        ::close(fd);
        throw InputError(fmt::format("{}: another flowgauge run ({}) is writing it (it holds {}): wait for it to end or stop "
                                     "it first, or choose another --output",
                                     output, holder.empty() ? "pid unknown" : holder, path_));
      }
      ::close(fd);
      fmt::print(stderr, "flowgauge: warning: {}: cannot lock ({}): nothing stops a second run on the same output\n", path_,
                 std::strerror(err));
      path_.clear();
      return;
    }
    // The run that held it may have removed the file between our open and flock: then we hold a
    // lock on a name that is gone, and must lock the file the name is now.
    struct stat a {}, b {};
    if (::fstat(fd, &a) == 0 && ::stat(path_.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
      fd_ = fd;
      break;
    }
    ::close(fd);
    if (attempt == 100) throw InputError(fmt::format("{}: cannot lock: the file keeps changing", path_));
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const auto text = fmt::format("pid {} on {} since {}\n", ::getpid(), host, utc_now());
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    // only the message of a refused second run loses the pid: the lock itself holds
  }
}

OutputLock::~OutputLock() { release(); }

void OutputLock::release() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // while still locked: see the constructor
  ::close(fd_);
  fd_ = -1;
}

int resolve_threads(const Experiment& e, const RunOptions& opt) {
  const int threads = opt.threads > 0 ? opt.threads : e.threads > 0 ? e.threads : static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, threads);
}

// ---- splitting the plan ----

CellCost::CellCost(const Experiment& e) : e_(e) {
  for (const auto& sv : e.solvers) evals_.push_back(make_solver(sv.name, sv.options)->traits().evals_per_step);
}

double CellCost::operator()(const Cell& c) const {
  const auto& gm = *e_.data[c.data].mixture;
  return double(e_.particles) * gm.size() * gm.dim() * c.steps * std::max(1.0, evals_[c.solver]);
}

double CellCost::reference(const Cell& c) const {
  const auto& gm = *e_.data[c.data].mixture;
  return double(e_.particles) * gm.size() * gm.dim() * c.steps * 4;
}

Groups::Groups(const Experiment& e, IdSet cells) : e_(e), cells_(std::move(cells)) {
  // A group is a plan position without its solver digit; steps and seeds by value (a list may
  // repeat one: a class is the index of a value's first occurrence), an explicit grid's own step
  // count by the grid (class 0: every steps index).
  auto classes = [](const auto& values) {
    std::map<typename std::decay_t<decltype(values)>::value_type, std::uint32_t> first;
    std::vector<std::vector<std::uint32_t>> out(values.size());
    for (std::uint32_t i = 0; i < values.size(); ++i) out[first.emplace(values[i], i).first->second].push_back(i);
    return out;
  };
  step_class_ = classes(e.steps);
  seed_class_ = classes(e.seeds);
  for (std::uint32_t i = 0; i < e.steps.size(); ++i) all_steps_.push_back(i);
  struct Found {
    Group g;
    int first;  // its first cell (the least id)
    double cost;
  };
  std::vector<Found> found;
  const CellCost cost(e);
  const std::size_t keys = e.data.size() * e.schedules.size() * e.grids.size() * e.steps.size() * e.seeds.size();
  for (std::size_t k = 0; k < keys; ++k) {
    const auto key = static_cast<std::uint32_t>(k);
    const std::size_t seed = k % e.seeds.size(), step = k / e.seeds.size() % e.steps.size();
    const std::size_t grid = k / (e.seeds.size() * e.steps.size()) % e.grids.size();
    const bool expl = e.grids[grid].spec.kind == "explicit";
    if (seed_class_[seed].empty() || (expl ? step != 0 : step_class_[step].empty())) continue;  // not a class's key
    const Place p = place(key);
    Found f{{key, 0}, 0, 0.0};
    for (std::uint32_t t = 0, n = candidates(p); t < n; ++t) {
      const Cell c = candidate(p, t);
      if (c.id < 0) continue;
      if (f.g.cells++ == 0) {
        f.first = c.id;
        f.cost = cost.reference(c);
      }
      f.cost += cost(c);
    }
    if (f.g.cells) found.push_back(f);
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.cost != b.cost ? a.cost > b.cost : a.first < b.first; });
  groups_.reserve(found.size());
  for (const auto& f : found) groups_.push_back(f.g);
}

Groups::Place Groups::place(std::uint32_t key) const {
  const auto& e = e_;
  std::size_t k = key;
  const std::size_t seed = k % e.seeds.size();
  k /= e.seeds.size();
  const std::size_t step = k % e.steps.size();
  k /= e.steps.size();
  const std::size_t grid = k % e.grids.size();
  k /= e.grids.size();  // data x schedules + schedule
  const bool expl = e.grids[grid].spec.kind == "explicit";
  return {.base = ((k * e.solvers.size() * e.grids.size() + grid) * e.steps.size()) * e.seeds.size(),
          .steps = expl ? &all_steps_ : &step_class_[step],
          .seeds = &seed_class_[seed]};
}

std::uint32_t Groups::candidates(const Place& p) const {
  return static_cast<std::uint32_t>(e_.solvers.size() * p.steps->size() * p.seeds->size());
}

Cell Groups::candidate(const Place& p, std::uint32_t t) const {
  const std::size_t per_solver = p.steps->size() * p.seeds->size(), r = t % per_solver;
  const std::size_t position = p.base + t / per_solver * e_.grids.size() * e_.steps.size() * e_.seeds.size() +
                               (*p.steps)[r / p.seeds->size()] * e_.seeds.size() + (*p.seeds)[r % p.seeds->size()];
  if (!e_.cells.kept(position)) return {.id = -1};
  const auto id = static_cast<int>(e_.cells.rank(position));
  return cells_.contains(id) ? e_.cells.cell_at(position, id) : Cell{.id = -1};
}

Cell Groups::next(std::size_t g, std::uint32_t& cursor) const {
  const Place p = place(groups_[g].key);
  for (const std::uint32_t n = candidates(p); cursor < n;)
    if (const Cell c = candidate(p, cursor++); c.id >= 0) return c;
  return {.id = -1};
}

namespace {
// The static split of job arrays. Longest processing time first: each item (a reference group, or
// a single cell when there are fewer groups than shards) goes to the least-loaded shard, ties to
// the lowest index. Calls owned(id, shard) for every cell of the plan.
template <class F>
void split_shards(const Experiment& e, int n, F&& owned) {
  IdSet all(e.cells.size());
  for (std::size_t i = 0; i < e.cells.size(); ++i) all.insert(static_cast<long long>(i));
  const Groups groups(e, std::move(all));
  const CellCost cost(e);
  // (load, shard), least first: the first minimum of the loads, as a scan would find it
  std::priority_queue<std::pair<double, int>, std::vector<std::pair<double, int>>, std::greater<>> least;
  for (int s = 0; s < n; ++s) least.push({0.0, s});
  auto place = [&](auto&& each_cell) {  // one item: to the least-loaded shard
    auto [load, s] = least.top();
    least.pop();
    each_cell([&](const Cell& c) {
      owned(c.id, s);
      load += cost(c);
    });
    least.push({load, s});
  };
  if (groups.size() >= std::size_t(n)) {
    for (std::size_t g = 0; g < groups.size(); ++g)
      place([&](auto&& add) {
        std::uint32_t cursor = 0;
        for (Cell c = groups.next(g, cursor); c.id >= 0; c = groups.next(g, cursor)) add(c);
      });
    return;
  }
  std::vector<Cell> cells(e.cells.begin(), e.cells.end());  // fewer groups than shards: a small plan
  std::stable_sort(cells.begin(), cells.end(), [&](const Cell& a, const Cell& b) { return cost(a) > cost(b); });
  for (const Cell& c : cells) place([&](auto&& add) { add(c); });
}
}  // namespace

std::vector<int> shard_owners(const Experiment& e, int n) {
  std::vector<int> owner(e.cells.size(), -1);
  split_shards(e, n, [&](int id, int s) { owner[id] = s; });
  return owner;
}

Assigner::Assigner(const Experiment& e, const IdSet& todo) : groups_(e, todo), cursor_(groups_.size(), 0), left_(todo.size()) {
  for (std::size_t g = 0; g < groups_.size(); ++g) left_in_.push_back(groups_.cells(g));
}

int Assigner::take(int who) {
  if (left_ == 0) return -1;
  auto& mine = started_[who];
  std::erase_if(mine, [&](std::size_t g) { return left_in_[g] == 0; });  // so it stays short
  auto give = [&](std::size_t g) {
    --left_;
    --left_in_[g];
    return groups_.next(g, cursor_[g]).id;
  };
  if (!mine.empty()) return give(mine.back());  // the one it started last
  while (next_group_ < groups_.size() && cursor_[next_group_] > 0) ++next_group_;  // started by someone
  std::size_t g = next_group_;
  if (g == groups_.size()) {  // every group started: help the one with the most cells left
    std::uint32_t best = 0;
    for (std::size_t i = 0; i < groups_.size(); ++i)
      if (left_in_[i] > best) {
        best = left_in_[i];
        g = i;
      }
  }
  mine.push_back(g);
  return give(g);
}

// ---- worker threads ----

WorkerPool::WorkerPool(const Experiment& e, int threads, std::function<int(int)> next, std::function<void(int, Table&&)> finished)
    : e_(e), next_(std::move(next)), finished_(std::move(finished)), refs_(new_reference_cache(static_cast<std::size_t>(threads), cells_dir(e))),
      computed_(2 * static_cast<std::size_t>(threads)) {
  running_ = threads;
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this, i] { work(i); });
}

WorkerPool::~WorkerPool() { join(); }

void WorkerPool::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

bool WorkerPool::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(m_);
  return stopped_.wait_for(lock, timeout, [&] { return running_ == 0; });
}

bool WorkerPool::failed() const {
  std::lock_guard<std::mutex> lock(m_);
  return error_ != nullptr;
}

std::exception_ptr WorkerPool::error() const {
  std::lock_guard<std::mutex> lock(m_);
  return error_;
}

void WorkerPool::work(int worker) {
  struct Stopped {
    WorkerPool* pool;
    ~Stopped() {
      std::lock_guard<std::mutex> lock(pool->m_);
      --pool->running_;
      pool->stopped_.notify_all();
    }
  } stopped{this};
  for (;;) {
    if (failed()) return;
    try {
      const int id = next_(worker);
      auto write = [this](std::pair<int, CellResult>&& cell) { this->write(std::move(cell)); };
      if (id < 0) {
        computed_.flush(write);  // nothing left unwritten when the pool stops
        return;
      }
      computed_.push({id, compute_cell(e_, e_.cells[id], *refs_)}, write);
    } catch (...) {
      std::lock_guard<std::mutex> lock(m_);
      if (!error_) error_ = std::current_exception();
      return;
    }
  }
}

void WorkerPool::write(std::pair<int, CellResult>&& cell) {
  write_cell(e_, e_.cells[cell.first], cell.second);  // durable before anyone is told; the arrays live on there only
  finished_(cell.first, std::move(cell.second.row));
}

// ---- before the first cell ----

IdSet scope_of(const Experiment& e, const RunOptions& opt) {
  IdSet scope(e.cells.size());
  if (opt.shards > 0)
    split_shards(e, opt.shards, [&](int id, int s) {
      if (s == opt.shard) scope.insert(id);
    });
  else
    for (std::size_t i = 0; i < e.cells.size(); ++i) scope.insert(static_cast<long long>(i));
  return scope;
}

Prepared prepare(const Experiment& e, const IdSet& scope, int threads) {
  h5::quiet();
  Prepared p;
  p.started = utc_now();
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
  p.extras = compute_extras(e, threads);  // before anything is written: it may still refuse the input
  {
    const auto parent = fs::path(e.output).parent_path();
    std::error_code ec;
    if (!parent.empty()) fs::create_directories(parent, ec);
    fs::create_directories(cells_dir(e), ec);
    if (ec || access(cells_dir(e).c_str(), W_OK) != 0)
      throw InputError(fmt::format("{}: cannot create the output directory (not writable?)", cells_dir(e)));
  }
  p.lock = std::make_unique<OutputLock>(e.output);  // before anything is removed or written
  remove_stale_partials(e);
  p.done = load_cells(e, scope);
  p.todo = IdSet(e.cells.size());
  for (int id : scope)
    if (!p.done.count(id)) p.todo.insert(id);
  return p;
}

}  // namespace flowgauge::detail

namespace flowgauge {
using namespace detail;

std::string shard_output(const std::string& output, int shard, int shards) {
  const std::string stem = output.size() > 3 && output.ends_with(".h5") ? output.substr(0, output.size() - 3) : output;
  return fmt::format("{}.shard-{}-of-{}.h5", stem, shard, shards);
}

std::vector<int> shard_cells(const Experiment& e, int shard, int shards) {
  std::vector<int> out;
  split_shards(e, shards, [&](int id, int s) {
    if (s == shard) out.push_back(id);
  });
  std::sort(out.begin(), out.end());
  return out;
}

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
  RunSignals signals;
  const auto t_start = std::chrono::steady_clock::now();
  const auto scope = scope_of(e, opt);
  Prepared p = prepare(e, scope, resolve_threads(e, opt));
  Finished& done = p.done;
  MainInfo info{.complete = p.todo.empty(), .started = p.started, .threads = resolve_threads(e, opt), .command = run_command(e),
                .shard = opt.shard, .shards = opt.shards, .scope = scope.size()};
  const int threads = info.threads;
  RunSummary sum;
  sum.cells = scope.size();
  sum.resumed = done.size();
  // A full disk (or a file over ulimit -f): the cells finished so far are safe in their own files;
  // say so, and how to go on.
  auto out_of_space = [&](const h5::WriteError& err, bool main_written) {
    return h5::WriteError(fmt::format("{}\n  {}", err.what(),
                                      kept_and_resume(e, done.size(), scope.size(), opt, main_written, "after fixing that, ")));
  };
  try {
    write_main(e, done, info, *p.extras);  // the file opens from the start
  } catch (const h5::WriteError& err) {
    throw out_of_space(err, false);
  }
  info.complete = false;

  Assigner assigner(e, p.todo);
  std::mutex m;  // guards assigner, in_flight and changes to done (made by the pool's one writer at a time)
  std::size_t in_flight = 0;
  RebuildClock rebuild(opt.rebuild_seconds);
  auto last_print = std::chrono::steady_clock::time_point{};
  const bool tty = isatty(STDERR_FILENO);
  std::size_t computed = 0;
  auto progress = [&](bool final) {
    if (opt.quiet) return;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    const double eta = computed ? el / computed * (p.todo.size() - computed) : 0;
    const auto line = fmt::format("flowgauge run: {}/{} cells ({} resumed), elapsed {}, ETA {}", done.size(), scope.size(),
                                  sum.resumed, hms(el), hms(eta));
    if (tty) fmt::print(stderr, "\r{}{}", line, final ? "\n" : "");
    else fmt::print(stderr, "{}\n", line);
  };
  bool announced = false;
  auto announce = [&](int sig) {  // caller holds m
    if (announced) return;
    announced = true;
    fmt::print(stderr,
               "{}flowgauge run: {}: {} of {} cells finished; starting no new cell, finishing the {} in flight (a second {} "
               "abandons them)\n",
               tty ? "\n" : "", signal_name(sig), done.size(), scope.size(), in_flight, sig == SIGINT ? "Ctrl-C" : "signal");
  };
  WorkerPool pool(
      e, threads,
      [&](int worker) {
        std::lock_guard<std::mutex> lock(m);
        if (const int sig = interrupted()) {  // SIGINT / SIGTERM: no new cell
          announce(sig);
          return -1;
        }
        const int id = assigner.take(worker);  // each thread on its own reference group
        if (id >= 0) ++in_flight;
        return id;
      },
      [&](int id, Table&& row) {  // one thread at a time: only it changes done, so it reads done without m
        {
          std::lock_guard<std::mutex> lock(m);
          done.emplace(id, row);
          --in_flight;
          ++computed;
        }
        const auto now = std::chrono::steady_clock::now();
        if (rebuild.due()) {  // the other workers go on meanwhile (m is free for next())
          write_main(e, done, info, *p.extras);
          rebuild.rebuilt(now);
        }
        if (tty || std::chrono::duration<double>(now - last_print).count() >= 1.0) {
          progress(false);
          last_print = now;
        }
      });
  // The main thread watches for signals while the workers compute (a worker asking for a cell may
  // notice one first).
  while (!pool.wait_for(std::chrono::milliseconds(20))) {
    const int sig = interrupted();
    if (!sig) continue;
    std::lock_guard<std::mutex> lock(m);
    if (abandon_requested()) abandon_run(e, done, info, *p.extras, scope.size(), opt, p.lock.get());
    announce(sig);
  }
  pool.join();
  if (const auto error = pool.error()) {
    bool written = true;
    try {
      write_main(e, done, info, *p.extras);
    } catch (const std::exception&) {
      written = false;  // the disk is still full: the first error says it, and the cell files hold the cells
    }
    try {
      std::rethrow_exception(error);
    } catch (const h5::WriteError& err) {
      throw out_of_space(err, written);
    }
  }
  const int sig = interrupted();
  info.complete = done.size() == scope.size();
  try {
    write_main(e, done, info, *p.extras);
  } catch (const h5::WriteError& err) {
    throw out_of_space(err, false);
  }
  if (info.complete) remove_stale_partials(e);  // also those of processes that were still dying when the run started
  progress(true);
  if (sig)
    fmt::print(stderr, "flowgauge run: stopped by {}: {}\n", signal_name(sig),
               kept_and_resume(e, done.size(), scope.size(), opt, true, ""));
  sum.computed = computed;
  sum.failed = done.failed();
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  sum.signal = sig;
  return sum;
}

// ---- merge ----

namespace {
// "3-7, 9, 12" (at most `limit` items, then "... (N in all)")
std::string id_list(const std::vector<int>& ids, std::size_t limit = 20) {
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    parts.push_back(j == i ? fmt::format("{}", ids[i]) : fmt::format("{}-{}", ids[i], ids[j]));
    i = j + 1;
    if (parts.size() == limit && i < ids.size()) {
      parts.push_back(fmt::format("... ({} in all)", ids.size()));
      break;
    }
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

struct MergeInput {
  std::string path, hash, experiment_file, shard;
  int shard_index = -1, shard_count = 0;
  std::vector<int> ids;  // its cells, increasing; rows and arrays are read again when the output is written
};

MergeInput read_merge_input(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_h5);
  MergeInput in;
  in.path = path;
  if (fs::is_directory(path))
    throw InputError(fmt::format("{}: is a directory (a run's finished cells): give the run files (*.h5)", path));
  auto f = h5::open_file(path);
  if (H5Aexists(f.get(), "plan_hash") <= 0 || !h5::has_dataset(f.get(), "cells/cell_id"))
    throw InputError(fmt::format("{}: not a flowgauge run file (no plan_hash or cells)", path));
  in.hash = h5::read_string_attr(f.get(), "plan_hash");
  in.experiment_file = h5::read_string_attr(f.get(), "experiment_file");
  if (H5Aexists(f.get(), "shard") > 0) {
    in.shard = h5::read_string_attr(f.get(), "shard");
    std::sscanf(in.shard.c_str(), "%d/%d", &in.shard_index, &in.shard_count);
  }
  const Table cells = read_table(f.get(), "cells");
  for (const auto id : std::get<std::vector<long long>>(cells.columns[std::find(cells.names.begin(), cells.names.end(), "cell_id") - cells.names.begin()])) {
    const std::string g = fmt::format("cell_arrays/{:06d}", id);
    if (H5Lexists(f.get(), "cell_arrays", H5P_DEFAULT) <= 0 || H5Lexists(f.get(), g.c_str(), H5P_DEFAULT) <= 0)
      throw InputError(fmt::format("{}: cell {} has no {}", path, id, g));
    in.ids.push_back(static_cast<int>(id));
  }
  std::sort(in.ids.begin(), in.ids.end());
  if (const auto twice = std::adjacent_find(in.ids.begin(), in.ids.end()); twice != in.ids.end())
    throw InputError(fmt::format("{}: cell {} appears twice", path, *twice));
  return in;
}

// Input i's rows (all in memory: merge is not a sweep) into `done`.
void add_merge_rows(const MergeInput& in, Finished& done) {
  std::lock_guard<std::mutex> lock(g_h5);
  auto f = h5::open_file(in.path);
  const Table cells = read_table(f.get(), "cells");
  const auto& ids = std::get<std::vector<long long>>(cells.columns[std::find(cells.names.begin(), cells.names.end(), "cell_id") - cells.names.begin()]);
  for (std::size_t r = 0; r < ids.size(); ++r) done.emplace(static_cast<int>(ids[r]), select_row(cells, r));
}
}  // namespace

MergeSummary merge_runs(const std::string& output, const std::vector<std::string>& paths, const std::string& experiment) {
  h5::quiet();
  if (paths.empty()) throw InputError("merge: no input files");
  std::vector<MergeInput> ins;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::exists(output) && fs::equivalent(output, p, ec))
      throw InputError(fmt::format("merge: the output {} is also an input", output));
    ins.push_back(read_merge_input(p));
  }
  // The experiment: given, or the one the first input was run from.
  const std::string file = experiment.empty() ? ins.front().experiment_file : experiment;
  Experiment e;
  try {
    e = load_experiment(file);
  } catch (const InputError& err) {
    throw InputError(fmt::format("merge: cannot load the experiment {} (recorded in {}; give another with --experiment): {}", file,
                                 ins.front().path, err.what()));
  }
  const std::string hash = fmt::format("{:016x}", e.plan_hash);
  std::vector<std::string> problems;
  // Same experiment: every input's plan hash is the experiment's.
  if (std::all_of(ins.begin(), ins.end(), [&](const auto& in) { return in.hash != hash; }) &&
      std::all_of(ins.begin(), ins.end(), [&](const auto& in) { return in.hash == ins.front().hash; }))
    problems.push_back(fmt::format("the inputs hold plan {} but {} now describes plan {}: the experiment changed since they ran "
                                   "(give the file they ran from with --experiment)",
                                   ins.front().hash, file, hash));
  else
    for (const auto& in : ins)
      if (in.hash != hash)
        problems.push_back(fmt::format("{}: from another experiment (plan {}, not {}'s plan {})", in.path, in.hash, file, hash));
  if (problems.empty()) {
    // Every cell exactly once.
    IdSet seen(e.cells.size());  // 1 bit a cell; which inputs hold a duplicate is looked up when there is one
    std::set<int> twice;
    for (const auto& in : ins)
      for (const int id : in.ids)
        if (id < 0 || id >= int(e.cells.size())) problems.push_back(fmt::format("{}: cell {} is not in the plan", in.path, id));
        else if (!seen.insert(id)) twice.insert(id);
    for (const int id : twice) {
      std::vector<std::string> files;
      for (const auto& in : ins)
        if (std::binary_search(in.ids.begin(), in.ids.end(), id)) files.push_back(in.path);
      problems.push_back(fmt::format("cell {} is duplicated: in {}", id, fmt::join(files, " and ")));
    }
    std::vector<int> missing;
    for (int id = 0; id < int(e.cells.size()); ++id)
      if (!seen.contains(id)) missing.push_back(id);
    if (!missing.empty()) {
      // Name them by shard where the inputs are shards of one split.
      const int n = ins.front().shard_count;
      const bool shards = n > 0 && std::all_of(ins.begin(), ins.end(), [&](const auto& in) { return in.shard_count == n; });
      if (shards) {
        const auto owner = shard_owners(e, n);
        std::map<int, std::vector<int>> by_shard;
        for (int id : missing) by_shard[owner[id]].push_back(id);
        for (const auto& [s, ids] : by_shard) {
          const auto given = std::find_if(ins.begin(), ins.end(), [&](const auto& in) { return in.shard_index == s; });
          if (given == ins.end())
            problems.push_back(fmt::format("shard {}/{} is missing (cells {}): expected {}", s, n, id_list(ids),
                                           shard_output(e.output, s, n)));
          else
            problems.push_back(fmt::format("{}: shard {}/{} is incomplete (cells {} missing): rerun that shard", given->path, s, n,
                                           id_list(ids)));
        }
      } else {
        problems.push_back(fmt::format("cells {} are missing from every input", id_list(missing)));
      }
    }
  }
  if (fs::exists(output)) {
    std::string h;
    try {
      std::lock_guard<std::mutex> lock(g_h5);
      auto f = h5::open_file(output);
      h = h5::read_string_attr(f.get(), "plan_hash");
    } catch (const InputError&) {
    }
    if (h != hash)
      problems.push_back(fmt::format("{}: exists and is not a run file of this experiment: choose another output, or delete it", output));
  }
  if (!problems.empty())
    throw InputError(fmt::format("merge refused, nothing written:\n  {}", fmt::join(problems, "\n  ")));

  const auto parent = fs::path(output).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  const OutputLock lock(output);  // not while a run writes it
  Finished done(e.cells.size(), parent.empty() ? "." : parent.string());
  std::vector<std::uint32_t> source(e.cells.size());  // cell id -> input
  for (std::size_t i = 0; i < ins.size(); ++i) {
    add_merge_rows(ins[i], done);
    for (const int id : ins[i].ids) source[std::size_t(id)] = static_cast<std::uint32_t>(i);
  }
  e.output = output;
  const auto extras = compute_extras(e, 1);
  std::vector<h5::Handle> files(ins.size());  // opened once, read one cell at a time (write_main holds g_h5)
  write_main(e, done, {.complete = true, .started = utc_now(), .threads = 1, .command = run_command(e), .shard = -1, .shards = 0,
                       .scope = e.cells.size()},
             *extras, [&](int id) {
               const MergeInput& in = ins[source.at(std::size_t(id))];
               auto& f = files[source.at(std::size_t(id))];
               if (!f) f = h5::open_file(in.path);
               h5::Handle g(H5Gopen2(f.get(), fmt::format("cell_arrays/{:06d}", id).c_str(), H5P_DEFAULT), H5Gclose);
               return read_arrays(g.get(), in.path);
             });
  return {done.size(), ins.size()};
}

}  // namespace flowgauge
