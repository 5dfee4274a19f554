// flowgauge likelihood: log p_{t_lo} of given points through the divergence-augmented PF-ODE, against the
// closed form (solvers/likelihood; closed_forms.md 6).
#include <fmt/format.h>

#include <numbers>

#include "analytics/errors.hpp"
#include "analytics/mixture_io.hpp"
#include "experiments/cli.hpp"
#include "results/h5.hpp"
#include "results/provenance.hpp"
#include "solvers/likelihood/likelihood.hpp"
#include "solvers/solver.hpp"

namespace flowgauge::cli {
namespace {

struct LikelihoodArgs {
  std::string mixture, solver = "reference", method = "dopri5", output;
  ScheduleArgs schedule;
  std::vector<std::string> options;
  GridSpec grid = [] {
    GridSpec g;
    g.kind = "logsnr";
    g.steps = 32;
    return g;
  }();
  std::string input, dataset = "x";
  double rtol = 1e-10, atol = 1e-10;
  std::string prior = "exact", divergence = "exact", direction = "encode";
  int probes = 1;
  std::uint64_t seed = 0;
  bool closed_form_variance = false;
};

void run(const LikelihoodArgs& a) {
  const auto gm = load_mixture(a.mixture, warn);
  const auto sch = a.schedule.make();
  LikelihoodOptions o;
  o.direction = parse_direction(a.direction);
  o.prior = parse_prior(a.prior);
  o.divergence.kind = parse_divergence(a.divergence);
  o.divergence.probes = a.probes;
  o.divergence.seed = a.seed;
  o.closed_form_variance = a.closed_form_variance;
  if (o.divergence.kind != DivergenceKind::kExact && a.probes < 1)
    throw InputError(fmt::format("--probes {}: must be >= 1", a.probes));

  MatrixXd X;
  {
    auto f = h5::open_file(a.input);
    X = h5::read_matrix(f.get(), a.dataset, a.input);
  }
  if (X.rows() != gm.dim())
    throw InputError(fmt::format("{}: dataset '{}' has shape ({}, {}) but the mixture in {} has dimension {}", a.input,
                                 a.dataset, X.cols(), X.rows(), a.mixture, gm.dim()));
  if (!X.allFinite()) throw InputError(fmt::format("{}: dataset '{}' contains NaN or Inf", a.input, a.dataset));

  const auto given = parse_pairs(a.options, "--option");
  OptionReader opts(a.solver, given);
  const Coord coord = parse_coord(opts.get_choice("coordinates", "logsnr", coord_names()));
  Model model(gm, *sch);
  LikelihoodResult r;
  std::string solver_desc;
  if (a.solver == "reference") {
    opts.finish();
    AdaptiveLikelihoodOptions ao;
    ao.method = a.method;
    ao.rtol = a.rtol;
    ao.atol = a.atol;
    ao.coord = coord;
    r = likelihood_adaptive(model, sch->t_lo(), sch->t_hi(), X, ao, o);
    solver_desc = fmt::format("reference({}, rtol={}, atol={}, coordinates={})", a.method, a.rtol, a.atol, coord_name(coord));
  } else {
    const RkMethod* m = find_rk_method(a.solver);
    if (!m) {
      auto names = rk_method_names();
      names.push_back("reference");
      const auto hint = closest_match(a.solver, names);
      throw InputError(fmt::format("--solver '{}': the likelihood integrates with {}{}", a.solver,
                                   fmt::join(names, ", "), hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }
    opts.finish();
    const Grid grid = make_grid(*sch, a.grid);
    r = likelihood_rk(model, grid, m->tableau, coord, X, o);
    solver_desc = fmt::format("{}(coordinates={}) on {} grid, {} steps", m->name, coord_name(coord), a.grid.kind,
                              grid.steps());
  }
  const double d = gm.dim();
  const VectorXd nats = -r.logp / d;
  const VectorXd bpd = nats / std::numbers::ln2;

  h5::AtomicOutput out(a.output);
  const hid_t f = out.file();
  h5::write_vector(f, "logp", r.logp);
  h5::write_vector(f, "logp_exact", r.logp_exact);
  h5::write_vector(f, "error", r.error);
  h5::write_vector(f, "nats_per_dim", nats);
  h5::write_vector(f, "bits_per_dim", bpd);
  h5::write_vector(f, "prior_mismatch", r.prior_mismatch);
  h5::write_vector(f, "log_prior", r.log_prior);
  h5::write_vector(f, "delta", r.delta);
  h5::write_vector(f, "nfe", VectorXd::Constant(r.logp.size(), static_cast<double>(r.nfe)));
  h5::write_matrix(f, "x_lo", r.x_lo);
  h5::write_matrix(f, "x_hi", r.x_hi);
  if (o.divergence.kind != DivergenceKind::kExact) {
    h5::write_matrix(f, "probe_logp", r.probe_logp);  // (N, P)
    h5::write_vector(f, "var_empirical", r.var_empirical);
    h5::write_vector(f, "var_closed", r.var_closed);
  }
  h5::write_attrs(f, provenance(command_line()));
  h5::write_attr(f, "mixture_file", a.mixture);
  h5::write_attr(f, "input_file", a.input);
  h5::write_attr(f, "schedule", sch->describe());
  h5::write_attr(f, "solver", solver_desc);
  h5::write_attr(f, "direction", a.direction);
  h5::write_attr(f, "prior", a.prior);
  h5::write_attr(f, "divergence", divergence_name(o.divergence.kind));
  h5::write_attr(f, "probes", static_cast<long long>(o.divergence.kind == DivergenceKind::kExact ? 0 : a.probes));
  h5::write_attr(f, "seed", static_cast<long long>(a.seed));
  h5::write_attr(f, "t_lo", r.t_lo);
  h5::write_attr(f, "t_hi", r.t_hi);
  h5::write_attr(f, "nfe", static_cast<long long>(r.nfe));
  h5::write_attr(f, "steps", static_cast<long long>(r.steps));
  h5::write_attr(f, "rejected", static_cast<long long>(r.rejected));
  h5::write_attr(f, "end_time", utc_now());
  out.commit();
  fmt::print("flowgauge likelihood: {} on {}, {} points ({}): mean |error| {:.3e} nats, max {:.3e}, "
             "mean {:.4f} bits/dim, mean prior mismatch {:+.3e}, NFE = {} -> {}\n",
             solver_desc, sch->describe(), X.cols(), a.direction, r.error.cwiseAbs().mean(),
             r.error.size() ? r.error.cwiseAbs().maxCoeff() : 0.0, bpd.size() ? bpd.mean() : 0.0,
             r.prior_mismatch.size() ? r.prior_mismatch.mean() : 0.0, r.nfe, a.output);
}

}  // namespace

void add_likelihood(CLI::App& app) {
  auto a = std::make_shared<LikelihoodArgs>();
  auto* c = app.add_subcommand("likelihood", "Log-likelihood of given points through the divergence-augmented PF-ODE, "
                                             "against the closed form");
  c->add_option("--mixture", a->mixture, "Mixture TOML file")->required();
  a->schedule.add(*c);
  c->add_option("--input", a->input, "HDF5 file with points (N, d): at t_lo (encode) or t_hi (sample)")->required();
  c->add_option("--dataset", a->dataset, "Dataset in --input")->capture_default_str();
  c->add_option("--solver", a->solver, "euler, heun, midpoint, rk4, rk38 (fixed steps) or reference (adaptive)")
      ->capture_default_str();
  c->add_option("--option", a->options, "Solver option key=value: coordinates=t|ve|fm|logsnr (default logsnr)");
  c->add_option("--grid", a->grid.kind, "Grid of the fixed-step solvers: uniform, logsnr, edm, ...")->capture_default_str();
  c->add_option("--steps", a->grid.steps, "Number of steps N (fixed-step solvers)")->capture_default_str();
  c->add_option("--rho", a->grid.rho, "Exponent of the edm / polyexponential grids")->capture_default_str();
  c->add_option("--method", a->method, "Adaptive reference integrator: dopri5 or rkf78")->capture_default_str();
  c->add_option("--rtol", a->rtol, "Reference relative tolerance on [z; ell]")->capture_default_str();
  c->add_option("--atol", a->atol, "Reference absolute tolerance on [z; ell]")->capture_default_str();
  c->add_option("--direction", a->direction, "encode (data -> noise) or sample (noise -> data, log p of the generated "
                                             "points)")->capture_default_str();
  c->add_option("--prior", a->prior, "exact (p_{t_hi} of the mixture) or gaussian (N(0, sigma_hi^2 I))")->capture_default_str();
  c->add_option("--divergence", a->divergence, "exact, hutchinson-rademacher or hutchinson-gaussian")->capture_default_str();
  c->add_option("--probes", a->probes, "Hutchinson probes per point (each fixed along its trajectory)")->capture_default_str();
  c->add_option("--seed", a->seed, "Seed of the Hutchinson probes (keyed by seed and point index)")->capture_default_str();
  c->add_flag("--closed-form-variance", a->closed_form_variance,
              "Fixed-step Hutchinson: also compute each point's closed-form estimator variance (O(K d^2) per point)");
  c->add_option("--output", a->output, "Output HDF5 file (written atomically)")->required();
  c->callback([a] { run(*a); });
}

}  // namespace flowgauge::cli
