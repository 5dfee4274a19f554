// Regression against stored answers from an INDEPENDENT implementation: tests/data/make_regression.py
// (NumPy, written from the published update rules with its own closed-form denoiser and grids).
// Tolerance 1e-11 absolute on O(1) values: the two float64 codes differ only in operation order
// (observed ~1e-15); any formula slip (a wrong coefficient, an off-by-one grid) moves these
// 4-6-step results by > 1e-4.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "solvers/solver.hpp"

using namespace flowgauge;

namespace {

GaussianMixture regression_mixture() {
  Eigen::MatrixXd S0 = Eigen::Vector2d(0.2, 0.05).asDiagonal(), S1 = Eigen::Vector2d(0.1, 0.3).asDiagonal();
  return GaussianMixture({{0.3, Eigen::Vector2d(1.0, -0.5), S0}, {0.7, Eigen::Vector2d(-1.5, 0.8), S1}}, "regression");
}

std::map<std::string, Eigen::MatrixXd> stored() {
  std::ifstream in(std::string(FLOWGAUGE_SOURCE_DIR) + "/tests/data/regression.txt");
  std::map<std::string, Eigen::MatrixXd> out;
  std::string name;
  int j;
  double a, b;
  while (in >> name >> j >> a >> b) {
    auto& m = out[name];
    if (m.cols() <= j) m.conservativeResize(2, j + 1);
    m.col(j) << a, b;
  }
  return out;
}

struct Case {
  const char* key;
  const char* solver;
  SolverOptions opts;
  const char* schedule;
  GridSpec grid;
  double scale;  // starting points = scale * X0
};

TEST(Regression, MatchesIndependentImplementation) {
  const auto ref = stored();
  ASSERT_EQ(ref.size(), 4u) << "tests/data/regression.txt missing or incomplete";
  Eigen::MatrixXd X0(2, 3);
  X0 << 0.3, 2.0, -0.7, -1.2, 0.4, -0.9;
  const auto gm = regression_mixture();
  const Case cases[] = {
      {"heun_edm_denoise6", "heun", {}, "edm", {.kind = "edm", .steps = 6, .final_step = FinalStep::kDenoise}, 80.0},
      {"dpmpp_2m_edm_denoise6", "dpmpp_2m", {}, "edm", {.kind = "edm", .steps = 6, .final_step = FinalStep::kDenoise}, 80.0},
      {"ddim_vp_logsnr5", "ddim", {}, "vp-linear", {.kind = "logsnr", .steps = 5}, 1.0},
      {"rk4_fm_uniform4", "rk4", {{"coordinates", "t"}}, "fm-linear", {.kind = "uniform", .steps = 4}, 1.0},
  };
  for (const auto& c : cases) {
    auto sch = make_schedule(c.schedule);
    auto solver = make_solver(c.solver, c.opts);
    Model model(gm, *sch);
    Eigen::MatrixXd X = c.scale * X0;
    sample(*solver, model, make_grid(*sch, c.grid), X);
    const double dev = (X - ref.at(c.key)).cwiseAbs().maxCoeff();
    std::printf("%-24s max |flowgauge - numpy| = %.2e\n", c.key, dev);
    EXPECT_LT(dev, 1e-11) << c.key;
  }
}

}  // namespace
