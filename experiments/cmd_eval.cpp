// flowgauge eval: exact quantities of p_t at given points (README "flowgauge eval").
#include <cmath>
#include <fmt/format.h>

#include "analytics/errors.hpp"
#include "analytics/mixture_io.hpp"
#include "analytics/parameterization.hpp"
#include "experiments/cli.hpp"
#include "results/h5.hpp"
#include "results/provenance.hpp"
#include "solvers/model.hpp"

namespace flowgauge::cli {
namespace {

const std::vector<std::string> kQuantities = {"logp", "score",    "denoiser",   "eps",
                                              "v",    "velocity", "divergence", "responsibilities"};

struct EvalArgs {
  std::string mixture, input, dataset = "x", output;
  ScheduleArgs schedule;
  double t = 0.5;
  std::vector<std::string> quantities = kQuantities;
};

void run(const EvalArgs& a) {
  const auto gm = load_mixture(a.mixture, warn);
  const auto sch = a.schedule.make();
  const auto [lo, hi] = sch->natural_domain();
  if (!std::isfinite(a.t) || a.t < lo || a.t > hi)
    throw InputError(fmt::format("--t {}: outside the domain [{}, {}] of schedule {}", a.t, lo, hi, sch->name()));
  const TimePoint p = sch->at(a.t);
  if (!(p.sigma > 0))
    throw InputError(fmt::format("--t {}: sigma = 0 there; evaluate at a time with sigma > 0", a.t));
  for (const auto& q : a.quantities)
    if (std::find(kQuantities.begin(), kQuantities.end(), q) == kQuantities.end()) {
      const auto hint = closest_match(q, kQuantities);
      throw InputError(fmt::format("--quantities: unknown quantity '{}'{} (known: {})", q,
                                   hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), fmt::join(kQuantities, ", ")));
    }
  auto want = [&](const char* q) { return std::find(a.quantities.begin(), a.quantities.end(), q) != a.quantities.end(); };

  MatrixXd X;
  {
    auto f = h5::open_file(a.input);
    X = h5::read_matrix(f.get(), a.dataset, a.input);
  }
  if (X.rows() != gm.dim())
    throw InputError(fmt::format("{}: dataset '{}' has shape ({}, {}) but the mixture in {} has dimension {}", a.input,
                                 a.dataset, X.cols(), X.rows(), a.mixture, gm.dim()));

  const unsigned flags = kLogp | kScore | (want("divergence") ? kTrace : 0u) | (want("responsibilities") ? kResp : 0u);
  const MixtureEval ev = gm.evaluate(X, p.alpha, p.sigma, flags);
  MatrixXd x0(X.rows(), X.cols()), eps(X.rows(), X.cols());
  Model model(gm, *sch);
  model.predict(X, p, x0, eps);

  h5::AtomicOutput out(a.output);
  const hid_t f = out.file();
  if (want("logp")) h5::write_vector(f, "logp", ev.logp);
  if (want("score")) h5::write_matrix(f, "score", ev.score);
  if (want("denoiser")) h5::write_matrix(f, "denoiser", x0);
  if (want("eps")) h5::write_matrix(f, "eps", eps);
  if (want("v")) h5::write_matrix(f, "v", param::v_from(p, x0, eps));
  if (want("velocity")) h5::write_matrix(f, "velocity", param::u_from(p, x0, eps));
  if (want("divergence"))  // div u = d f + 0.5 sigma^2 lambda_dot tr J_s (closed_forms section 4)
    h5::write_vector(f, "divergence",
                     (gm.dim() * sch->f(a.t) + 0.5 * p.sigma * p.sigma * sch->lambda_dot(a.t) * ev.trace.array()).matrix());
  if (want("responsibilities")) h5::write_matrix(f, "responsibilities", ev.resp);
  h5::write_attrs(f, provenance(command_line()));
  h5::write_attr(f, "mixture_file", a.mixture);
  h5::write_attr(f, "schedule", sch->describe());
  h5::write_attr(f, "t", a.t);
  h5::write_attr(f, "alpha", p.alpha);
  h5::write_attr(f, "sigma", p.sigma);
  h5::write_attr(f, "end_time", utc_now());
  out.commit();
  fmt::print("flowgauge eval: {} points, d = {}, K = {}, {} at t = {} -> {}\n", X.cols(), gm.dim(), gm.size(),
             sch->describe(), a.t, a.output);
}

}  // namespace

void add_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  auto* c = app.add_subcommand("eval", "Exact log p_t, score, predictions, velocity and divergence at given points");
  c->add_option("--mixture", args->mixture, "Mixture TOML file")->required();
  args->schedule.add(*c);
  c->add_option("--t", args->t, "Time t (schedule's own time variable)")->capture_default_str();
  c->add_option("--input", args->input, "HDF5 file with points of shape (N, d)")->required();
  c->add_option("--dataset", args->dataset, "Dataset name in --input")->capture_default_str();
  c->add_option("--output", args->output, "Output HDF5 file (written atomically)")->required();
  c->add_option("--quantities", args->quantities, "Comma-separated subset of: " + fmt::format("{}", fmt::join(kQuantities, ",")))
      ->delimiter(',');
  c->callback([args] { run(*args); });
}

}  // namespace flowgauge::cli
