// The sweep runner's stochastic metrics (issue 6), through the real `flowgauge run`: strong error
// against the same solver on the same Brownian paths at 16x the largest step count and against the
// exact solution of the limiting linear SDE (single-Gaussian data), exact weak error (KL, W2) from the
// propagated law, marginal preservation along the path, the strong / weak order fits in /orders, the
// documented schema, and thread invariance of the shared references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <unistd.h>

#include "analytics/order_fit.hpp"
#include "analytics/presets.hpp"
#include "experiments/config.hpp"
#include "fixtures.hpp"
#include "process.hpp"
#include "results/h5.hpp"
#include "results/table.hpp"
#include "solvers/stochastic/metrics.hpp"

namespace flowgauge {
namespace {

namespace fs = std::filesystem;

template <class T> const std::vector<T>& column(const Table& t, const std::string& k) {
  const auto it = std::find(t.names.begin(), t.names.end(), k);
  if (it == t.names.end()) throw std::runtime_error("no column " + k);
  return std::get<std::vector<T>>(t.columns[it - t.names.begin()]);
}

// 2-D single Gaussian (exact laws, exact SDE solutions) and the 8-mode mixture (NaN where exact
// quantities do not exist); euler_maruyama (strong order 1 with additive noise), the seed note's
// (1 + eta)/2 variant (marginals drift), pc (no pathwise limit; not affine), ddim (deterministic).
const char* kPlan = R"TOML(name = "stochastic_sweep"
output = "{OUT}"
particles = 64
steps = [8, 16, 32, 64, 128]
metrics = ["strong", "exact_law"]

[data]
g = { preset = "gaussian", dim = 2, seed = 3 }
mix = { preset = "gmm8-2d" }

[schedules]
vp = { name = "vp-linear" }

[[grids]]
kind = "uniform"

[[solvers]]
name = "euler_maruyama"

[[solvers]]
name = "euler_maruyama_seed"
eta = 0.5

[[solvers]]
name = "pc"
step_size = "particle"

[[solvers]]
name = "ddim"

[[exclude]]
data = "mix"
solver = ["euler_maruyama_seed", "pc", "ddim"]
)TOML";

class StochasticSweep : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("flowgauge_stoch_sweep_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    for (int threads : {2, 1}) {
      const std::string out = (dir_ / fmt::format("t{}.h5", threads)).string();
      std::string text = kPlan;
      text.replace(text.find("{OUT}"), 5, out);
      const std::string toml = (dir_ / fmt::format("t{}.toml", threads)).string();
      std::ofstream(toml) << text;
      const auto r = testing::run(fmt::format("run {} --quiet --threads {}", toml, threads));
      ASSERT_EQ(r.status, 0) << r.output;
      auto f = h5::open_file(out);
      cells_[threads] = read_table(f.get(), "cells");
      orders_[threads] = read_table(f.get(), "orders");
      for (std::size_t i = 0; i < cells_[threads].rows(); ++i) {  // only where defined (finite)
        const auto k = fmt::format("cell_arrays/{:06d}/marginal_w2_t", i);
        marginal_t_[threads].push_back(h5::has_dataset(f.get(), k) ? h5::read_vector(f.get(), k, out) : Eigen::VectorXd());
      }
      if (threads == 2) plan_ = load_experiment(toml);
    }
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // Row index of (data, solver label, steps) in the cell table.
  static std::size_t cell(const std::string& data, const std::string& solver, long long steps) {
    const Table& c = cells_[2];
    for (std::size_t i = 0; i < c.rows(); ++i)
      if (column<std::string>(c, "data")[i] == data && column<std::string>(c, "solver")[i] == solver &&
          column<long long>(c, "steps")[i] == steps)
        return i;
    throw std::runtime_error("no cell " + data + " " + solver);
  }
  static std::size_t order_row(const std::string& data, const std::string& solver) {
    const Table& o = orders_[2];
    for (std::size_t i = 0; i < o.rows(); ++i)
      if (column<std::string>(o, "data")[i] == data && column<std::string>(o, "solver")[i] == solver) return i;
    throw std::runtime_error("no order row " + data + " " + solver);
  }
  // The checks (one test runs them all on one pair of runs: each ctest process would redo both runs).
  static void strong_order_one_against_both_references();
  static void exact_law_columns_and_marginal_drift();
  static void no_strong_error_without_a_pathwise_limit();
  static void thread_invariant_and_documented();
  static void report_has_the_stochastic_figures();

  static double D(const std::string& k, std::size_t i) { return column<double>(cells_[2], k)[i]; }
  static double O(const std::string& k, std::size_t i) { return column<double>(orders_[2], k)[i]; }

  static inline fs::path dir_;
  static inline std::map<int, Table> cells_, orders_;
  static inline std::map<int, std::vector<Eigen::VectorXd>> marginal_t_;
  static inline Experiment plan_;
};

// Euler-Maruyama on the linear reverse SDE (additive noise): strong order 1 within 0.2 (issue 6)
// against both references, with R^2 > 0.98 over all 5 step counts; the two references solve the
// same SDE on the same path, so the two errors differ by at most the sum of their floors (each floor
// bounds its reference's own error: the halving argument of cell_metrics.hpp). On the 8-mode mixture
// the same-path reference is itself unresolved at 16x (particles switch modes: floor ~0.1), and the
// fit keeps only the points 4x above that floor (< 4 of 5): printed, not checked.
void StochasticSweep::strong_order_one_against_both_references() {
  for (const char* data : {"g", "mix"}) {
    const auto r = order_row(data, "euler_maruyama");
    std::cout << "[sweep] euler_maruyama on " << data << ": strong order " << O("strong_order", r) << " (R^2 "
              << O("strong_r2", r) << ", " << column<long long>(orders_[2], "strong_points")[r] << " points above "
              << O("strong_fit_floor", r) << "), exact-SDE order " << O("strong_exact_order", r) << " (R^2 "
              << O("strong_exact_r2", r) << ")\n";
  }
  EXPECT_LT(column<long long>(orders_[2], "strong_points")[order_row("mix", "euler_maruyama")], 4);
  {
    const auto r = order_row("g", "euler_maruyama");
    EXPECT_NEAR(O("strong_order", r), 1.0, 0.2);
    EXPECT_GT(O("strong_r2", r), 0.98);
    EXPECT_EQ(column<long long>(orders_[2], "strong_points")[r], 5);
  }
  const auto r = order_row("g", "euler_maruyama");
  EXPECT_NEAR(O("strong_exact_order", r), 1.0, 0.2);
  EXPECT_GT(O("strong_exact_r2", r), 0.98);
  EXPECT_TRUE(std::isnan(O("strong_exact_order", order_row("mix", "euler_maruyama"))));
  for (long long n : {8, 16, 32, 64, 128}) {
    const auto i = cell("g", "euler_maruyama", n);
    std::cout << "  N = " << n << ": strong " << D("strong", i) << " (floor " << D("strong_ref_floor", i) << "), exact "
              << D("strong_exact", i) << " (floor " << D("strong_exact_floor", i) << ")\n";
    EXPECT_LE(std::abs(D("strong", i) - D("strong_exact", i)), D("strong_ref_floor", i) + D("strong_exact_floor", i)) << n;
    EXPECT_EQ(column<long long>(cells_[2], "strong_particles")[i], 64);
  }
}

// The exact-law columns equal the library's propagate_law + w2/kl recomputed here (1e-12 relative:
// same code, the runner's draws play no part); the last entry of marginal_w2_t is w2_exact; NaN for
// the mixture and for pc's non-affine per-particle rule; finite for deterministic ddim. Marginal
// preservation: euler_maruyama stays close to every p_t (max W2 at N = 128 < 0.05, falling > 4x from
// N = 16; measured 0.024),
// the (1 + eta)/2 variant at eta = 0.5 does not (> 10x, not falling below half its N = 16 value).
void StochasticSweep::exact_law_columns_and_marginal_drift() {
  const auto gm = mixture_preset("gaussian", 2, 1, 3);
  const auto sch = make_schedule("vp-linear");
  Model m(gm, *sch);
  const auto start = stoch::marginal_law(gm, sch->alpha(sch->t_hi()), sch->sigma(sch->t_hi()));
  const auto truth = stoch::marginal_law(gm, sch->alpha(sch->t_lo()), sch->sigma(sch->t_lo()));
  for (const std::string sv : {"euler_maruyama", "euler_maruyama_seed(eta=0.5)", "ddim"}) {
    for (long long n : {8, 128}) {
      const auto i = cell("g", sv, n);
      const auto& ax = plan_.solvers[plan_.cells[column<long long>(cells_[2], "cell_id")[i]].solver];
      const auto law = stoch::propagate_law(ax.name, ax.options, m, make_grid(*sch, {.kind = "uniform", .steps = int(n)}), start);
      EXPECT_NEAR(D("w2_exact", i), stoch::w2_distance(law, truth), 1e-12 * D("w2_exact", i)) << sv << " " << n;
      EXPECT_NEAR(D("kl_exact", i), stoch::kl_divergence(law, truth), 1e-12 * D("kl_exact", i) + 1e-15) << sv << " " << n;
      EXPECT_EQ(marginal_t_[2][i].size(), n + 1);
      EXPECT_EQ(marginal_t_[2][i](n), D("w2_exact", i));
      EXPECT_EQ(marginal_t_[2][i].maxCoeff(), D("marginal_w2_max", i));
    }
  }
  for (const auto& [data, sv] : std::vector<std::pair<std::string, std::string>>{{"mix", "euler_maruyama"}, {"g", "pc(step_size=particle)"}}) {
    const auto i = cell(data, sv, 32);
    for (const char* k : {"kl_exact", "w2_exact", "marginal_w2_max"}) EXPECT_TRUE(std::isnan(D(k, i))) << data << " " << sv << " " << k;
    EXPECT_EQ(marginal_t_[2][i].size(), 0) << "marginal_w2_t is written only where defined";
  }
  const double em16 = D("marginal_w2_max", cell("g", "euler_maruyama", 16)), em128 = D("marginal_w2_max", cell("g", "euler_maruyama", 128));
  const double sd16 = D("marginal_w2_max", cell("g", "euler_maruyama_seed(eta=0.5)", 16));
  const double sd128 = D("marginal_w2_max", cell("g", "euler_maruyama_seed(eta=0.5)", 128));
  std::cout << "[sweep] max_t W2(law_t, p_t): euler_maruyama N=16 " << em16 << ", N=128 " << em128
            << "; euler_maruyama_seed(0.5) N=16 " << sd16 << ", N=128 " << sd128 << "\n";
  EXPECT_LT(em128, 0.05);
  EXPECT_LT(em128, em16 / 4);
  EXPECT_GT(sd128, 10 * em128);
  EXPECT_GT(sd128, sd16 / 2);
  // The weak order in /orders is the fit of w2_exact over the step counts (recomputed here, same
  // floor 1e-6); over N = 8..128 it is pre-asymptotic (measured 1.28; the asymptotic 1.01 over
  // N = 32..512 is test_stochastic's ExactWeakOrders): checked within [0.8, 1.5].
  std::vector<double> ns, ws;
  for (long long n : {8, 16, 32, 64, 128}) {
    ns.push_back(double(n));
    ws.push_back(D("w2_exact", cell("g", "euler_maruyama", n)));
  }
  const double weak = O("weak_order", order_row("g", "euler_maruyama"));
  EXPECT_NEAR(weak, fit_order(ns, ws, 1e-6).order, 1e-12);
  EXPECT_GT(weak, 0.8);
  EXPECT_LT(weak, 1.5);
}

// Deterministic solvers have no strong columns (NaN, 0 particles); pc has no pathwise limit: no
// exact-SDE reference, and its same-solver "strong error" does not fall with the steps (the
// corrector's normals at the finer grid's times are new ones), so no strong order.
void StochasticSweep::no_strong_error_without_a_pathwise_limit() {
  const auto d = cell("g", "ddim", 32);
  for (const char* k : {"strong", "strong_ref_floor", "strong_exact", "strong_exact_floor"}) EXPECT_TRUE(std::isnan(D(k, d))) << k;
  EXPECT_EQ(column<long long>(cells_[2], "strong_particles")[d], 0);
  const auto p8 = cell("g", "pc(step_size=particle)", 8), p128 = cell("g", "pc(step_size=particle)", 128);
  EXPECT_TRUE(std::isnan(D("strong_exact", p8)));
  std::cout << "[sweep] pc strong vs itself at 16x: N=8 " << D("strong", p8) << ", N=128 " << D("strong", p128) << " (floor "
            << D("strong_ref_floor", p128) << "), strong order " << O("strong_order", order_row("g", "pc(step_size=particle)")) << "\n";
  EXPECT_GT(D("strong", p128), 0.5 * D("strong", p8));
  EXPECT_TRUE(std::isnan(O("strong_order", order_row("g", "pc(step_size=particle)"))));
}

// One and two worker threads give bitwise the same stochastic columns (the shared references are a
// pure function of their key), and every new column is documented with its type.
void StochasticSweep::thread_invariant_and_documented() {
  for (const char* k : {"strong", "strong_ref_floor", "strong_exact", "strong_exact_floor", "kl_exact", "w2_exact",
                        "marginal_w2_max"}) {
    const auto& a = column<double>(cells_[1], k);
    const auto& b = column<double>(cells_[2], k);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
      EXPECT_TRUE(std::memcmp(&a[i], &b[i], sizeof(double)) == 0) << k << " row " << i;
  }
  std::ifstream in(std::string(FLOWGAUGE_SOURCE_DIR) + "/results/README.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  for (const char* k : {"strong", "strong_ref_floor", "strong_exact", "strong_exact_floor", "strong_particles", "kl_exact",
                        "w2_exact", "marginal_w2_max", "marginal_w2_t", "strong_order", "strong_r2", "strong_points",
                        "strong_fit_floor", "strong_exact_order", "strong_exact_r2", "strong_exact_points",
                        "strong_exact_fit_floor", "weak_order", "weak_r2", "weak_points", "weak_fit_floor"})
    EXPECT_NE(doc.find(std::string("`") + k + "`"), std::string::npos) << k << " is not documented in results/README.md";
  EXPECT_EQ(cells_[2].columns[std::find(cells_[2].names.begin(), cells_[2].names.end(), "strong_particles") - cells_[2].names.begin()].index(), 1u);
  EXPECT_EQ(orders_[2].columns[std::find(orders_[2].names.begin(), orders_[2].names.end(), "strong_points") - orders_[2].names.begin()].index(), 1u);
}

// `flowgauge report` on the run: the strong-error, exact-law and marginal-drift figures of the
// single-Gaussian block exist, the mixture block has a strong-error figure but no exact-law one, and
// the markdown has the strong / weak order table with the fitted orders.
void StochasticSweep::report_has_the_stochastic_figures() {
  if (std::system("/usr/bin/python3 -c 'import h5py, numpy, matplotlib' 2>/dev/null") != 0) {
    std::cout << "[sweep] python3-h5py / numpy / matplotlib missing: report not checked\n";
    return;
  }
  const auto r = testing::run("report " + (dir_ / "t2.h5").string());
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* png : {"strong_vs_nfe_g_uniform.png", "exact_law_g_uniform.png", "marginal_drift_g_uniform.png",
                          "strong_vs_nfe_mix_uniform.png"})
    EXPECT_TRUE(fs::exists(dir_ / "t2" / png)) << png;
  EXPECT_FALSE(fs::exists(dir_ / "t2" / "exact_law_mix_uniform.png"));
  std::ifstream in(dir_ / "t2.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string md = ss.str();
  EXPECT_NE(md.find("## Strong and weak orders (stochastic samplers)"), std::string::npos);
  EXPECT_NE(md.find(fmt::format("{:.2f}", O("strong_order", order_row("g", "euler_maruyama")))), std::string::npos);
}

TEST_F(StochasticSweep, StrongWeakMarginalDriftOrdersThreadsSchemaAndReport) {
  ASSERT_FALSE(cells_.empty()) << "the runs failed";
  strong_order_one_against_both_references();
  exact_law_columns_and_marginal_drift();
  no_strong_error_without_a_pathwise_limit();
  thread_invariant_and_documented();
  report_has_the_stochastic_figures();
}

}  // namespace
}  // namespace flowgauge
