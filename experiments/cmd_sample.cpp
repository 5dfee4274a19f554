// flowgauge sample: replay one sampler on given inputs (README "flowgauge sample").
#include <algorithm>
#include <chrono>
#include <fmt/format.h>

#include "analytics/errors.hpp"
#include "analytics/mixture_io.hpp"
#include "experiments/cli.hpp"
#include "results/h5.hpp"
#include "results/provenance.hpp"
#include "solvers/brownian/brownian_tree.hpp"
#include "solvers/brownian/explicit_noise.hpp"
#include "solvers/parallel.hpp"
#include "solvers/reference/reference.hpp"
#include "solvers/solver.hpp"

namespace flowgauge::cli {
namespace {

struct SampleArgs {
  std::string mixture, solver = "heun", output;
  ScheduleArgs schedule;
  std::vector<std::string> options;
  GridSpec grid;
  std::string final_step = "step", grid_file, grid_dataset = "t", grid_in = "t";
  std::string input, dataset = "x";
  std::string noise, noise_dataset = "noise";
  long particles = 1000;
  std::uint64_t seed = 0;
  bool trajectory = false;
  int threads = 1;
};

void run(const SampleArgs& a) {
  const auto gm = load_mixture(a.mixture, warn);
  const auto sch = a.schedule.make();
  // "reference": the adaptive reference integrator (solvers/reference), options method, rtol, atol.
  const bool reference = a.solver == "reference";
  ReferenceOptions ref_opts;
  auto solver = reference ? nullptr : make_solver(a.solver, parse_pairs(a.options, "--option"));
  if (reference) {
    const auto given = parse_pairs(a.options, "--option");  // OptionReader keeps a reference
    OptionReader r("reference", given);
    ref_opts.method = r.get_choice("method", ref_opts.method, {"dopri5", "rkf78"});
    ref_opts.rtol = r.get_double("rtol", ref_opts.rtol);
    ref_opts.atol = r.get_double("atol", ref_opts.atol);
    r.finish();
    if (!(ref_opts.rtol > 0) || !(ref_opts.atol > 0))
      throw InputError(fmt::format("solver reference: rtol = {} and atol = {} must be > 0", ref_opts.rtol, ref_opts.atol));
  }
  const std::string solver_desc =
      reference ? fmt::format("reference(method={}, rtol={}, atol={})", ref_opts.method, ref_opts.rtol, ref_opts.atol)
                : solver->describe();
  GridSpec spec = a.grid;
  spec.final_step = parse_final_step(a.final_step);
  if (!a.grid_file.empty()) {
    auto f = h5::open_file(a.grid_file);
    const VectorXd v = h5::read_vector(f.get(), a.grid_dataset, a.grid_file);
    spec.kind = "explicit";
    spec.times.assign(v.data(), v.data() + v.size());
    if (a.grid_in != "t" && a.grid_in != "sigma")
      throw InputError(fmt::format("--grid-in '{}': expected t or sigma", a.grid_in));
    spec.in_sigma = a.grid_in == "sigma";
  }
  const Grid grid = make_grid(*sch, spec);

  MatrixXd X;
  if (!a.input.empty()) {
    auto f = h5::open_file(a.input);
    X = h5::read_matrix(f.get(), a.dataset, a.input);
    if (X.rows() != gm.dim())
      throw InputError(fmt::format("{}: dataset '{}' has shape ({}, {}) but the mixture in {} has dimension {}", a.input,
                                   a.dataset, X.cols(), X.rows(), a.mixture, gm.dim()));
  } else {
    if (a.particles < 1) throw InputError(fmt::format("--particles {}: must be >= 1", a.particles));
    const TimePoint p0 = sch->at(grid.t.front());
    X = gm.sample(p0.alpha, p0.sigma, a.seed, a.particles);  // exact draw from p_{t_hi}
  }
  const MatrixXd x_start = X;
  // Noise of stochastic solvers: a recorded array (one normal per step) or the Brownian tree of --seed.
  std::string noise_desc = "none";
  if (!a.noise.empty() && reference) throw InputError("--noise: the reference integrator is deterministic");
  if (!a.noise.empty()) {
    auto f = h5::open_file(a.noise);
    auto xi = h5::read_stack(f.get(), a.noise_dataset, a.noise);
    const int steps = grid.steps() - (grid.denoise_final ? 1 : 0);  // steps the solver takes
    if (static_cast<int>(xi.size()) != steps)
      throw InputError(fmt::format("{}: dataset '{}' holds {} steps, the grid needs {} (one normal per solver step)",
                                   a.noise, a.noise_dataset, xi.size(), steps));
    auto src = std::make_shared<ExplicitNoise>(std::vector<double>(grid.t.begin(), grid.t.begin() + steps + 1),
                                               std::move(xi), fmt::format("{}:{}", a.noise, a.noise_dataset));
    if (src->dim() != gm.dim() || src->particles() != X.cols())
      throw InputError(fmt::format("{}: dataset '{}' has shape ({}, {}, {}), expected ({}, {}, {})", a.noise,
                                   a.noise_dataset, src->steps(), src->particles(), src->dim(), steps, X.cols(),
                                   gm.dim()));
    noise_desc = src->describe();
    solver->set_noise(src);
  } else if (solver && solver->traits().stochastic) {
    // W lives on the schedule's [t_lo, t_hi] (widened only if an explicit grid leaves it), so a seed
    // gives the same path on every grid.
    const int steps = grid.steps() - (grid.denoise_final ? 1 : 0);
    const double lo = std::min(sch->t_lo(), grid.t[steps]), hi = std::max(sch->t_hi(), grid.t.front());
    auto src = std::make_shared<BrownianTree>(gm.dim(), a.seed, lo, hi);
    noise_desc = src->describe();
    solver->set_noise(src);
  }
  if (a.threads < 1) throw InputError(fmt::format("--threads {}: must be >= 1", a.threads));
  if (a.threads > 1 && a.trajectory) throw InputError("--trajectory needs --threads 1");
  Model model(gm, *sch);
  const auto t0 = std::chrono::steady_clock::now();
  SampleResult res;
  if (reference) {
    auto ref = reference_solve(model, grid, X, ref_opts);
    res.nfe = ref.nfe;
    if (a.trajectory) res.trajectory = ref.states;
    X = ref.states.back();
  } else if (a.trajectory)
    res = sample(*solver, model, grid, X, true);
  else  // fixed column blocks: the same points for every thread count
    res.nfe = sample_blocked(*solver, model, grid, X, {.threads = a.threads});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  h5::AtomicOutput out(a.output);
  const hid_t f = out.file();
  h5::write_matrix(f, "x", X);
  h5::write_matrix(f, "x_start", x_start);
  h5::write_vector(f, "grid_t", Eigen::Map<const VectorXd>(grid.t.data(), static_cast<Eigen::Index>(grid.t.size())));
  if (a.trajectory) h5::write_stack(f, "trajectory", res.trajectory);
  h5::write_attrs(f, provenance(command_line()));
  h5::write_attr(f, "mixture_file", a.mixture);
  h5::write_attr(f, "schedule", sch->describe());
  h5::write_attr(f, "solver", solver_desc);
  h5::write_attr(f, "grid", grid.denoise_final ? "denoise" : "step");
  h5::write_attr(f, "nfe", static_cast<long long>(res.nfe));
  h5::write_attr(f, "seed", static_cast<long long>(a.seed));
  h5::write_attr(f, "noise", noise_desc);
  h5::write_attr(f, "sample_seconds", seconds);
  h5::write_attr(f, "threads", static_cast<long long>(a.threads));
  h5::write_attr(f, "end_time", utc_now());
  out.commit();
  fmt::print("flowgauge sample: {} on {} with {} steps ({} grid), {} particles, NFE = {} -> {}\n", solver_desc,
             sch->describe(), grid.steps(), spec.kind, X.cols(), res.nfe, a.output);
}

}  // namespace

void add_sample(CLI::App& app) {
  auto a = std::make_shared<SampleArgs>();
  auto* c = app.add_subcommand("sample", "Run one sampler on a mixture and write the final points to HDF5");
  c->add_option("--mixture", a->mixture, "Mixture TOML file")->required();
  a->schedule.add(*c);
  c->add_option("--solver", a->solver, "Solver name (see README), or reference (adaptive: --option method=dopri5|rkf78, rtol=, atol=)")->capture_default_str();
  c->add_option("--option", a->options, "Solver option key=value (e.g. coordinates=ve, order=3); repeatable");
  c->add_option("--grid", a->grid.kind, "Grid: uniform, logsnr, edm, exponential, polyexponential, quadratic")
      ->capture_default_str();
  c->add_option("--steps", a->grid.steps, "Number of steps N (N + 1 grid times)")->capture_default_str();
  c->add_option("--rho", a->grid.rho, "Exponent of the edm / polyexponential grids")->capture_default_str();
  c->add_option("--final-step", a->final_step, "step (to t_lo) or denoise (to sigma = 0, returns x0)")->capture_default_str();
  c->add_option("--grid-file", a->grid_file, "HDF5 file with an explicit grid (decreasing)");
  c->add_option("--grid-dataset", a->grid_dataset, "Dataset in --grid-file")->capture_default_str();
  c->add_option("--grid-in", a->grid_in, "Explicit grid holds t or sigma (= sigma/alpha; 0 allowed last)")->capture_default_str();
  c->add_option("--input", a->input, "HDF5 file with starting points (N, d) at the first grid time");
  c->add_option("--dataset", a->dataset, "Dataset in --input")->capture_default_str();
  c->add_option("--particles", a->particles, "Without --input: draw this many points exactly from p_{t_hi}")->capture_default_str();
  c->add_option("--seed", a->seed, "Seed of the exact draw and of the Brownian paths of stochastic solvers")
      ->capture_default_str();
  c->add_option("--noise", a->noise,
                "HDF5 file with recorded standard normals (steps, N, d), one per solver step, in place of the "
                "Brownian paths (replaying another implementation)");
  c->add_option("--noise-dataset", a->noise_dataset, "Dataset in --noise")->capture_default_str();
  c->add_option("--output", a->output, "Output HDF5 file (written atomically)")->required();
  c->add_flag("--trajectory", a->trajectory, "Also write the states at every grid time (T, N, d)");
  c->add_option("--threads", a->threads, "Threads over fixed blocks of particles (same result for any count)")
      ->capture_default_str();
  c->callback([a] { run(*a); });
}

}  // namespace flowgauge::cli
