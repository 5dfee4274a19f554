// Whole samplers: one solver on N particles, names carry solver/d/K/N/steps.
#include <benchmark/benchmark.h>

#include <random>

#include "solvers/solver.hpp"

namespace {
using namespace flowgauge;

GaussianMixture gmm(int d, int K) {
  std::mt19937_64 g(11);
  std::normal_distribution<double> n;
  std::vector<Component> c;
  for (int k = 0; k < K; ++k) {
    Eigen::VectorXd m(d);
    for (int i = 0; i < d; ++i) m(i) = 2 * n(g);
    Eigen::MatrixXd A(d, d);
    for (int i = 0; i < d * d; ++i) A.data()[i] = n(g);
    c.push_back({1.0, m, A * A.transpose() / d + 0.05 * Eigen::MatrixXd::Identity(d, d)});
  }
  return GaussianMixture(c, "bench");
}

// Heun (EDM Algorithm 2) on the edm schedule, EDM grid ending at sigma = 0: 2 N - 1 evaluations.
void BM_HeunEdm(benchmark::State& st) {
  const int d = st.range(0), K = st.range(1), steps = st.range(3);
  const long N = st.range(2);
  const auto gm = gmm(d, K);
  const auto sch = make_schedule("edm");
  const Grid grid = make_grid(*sch, {.kind = "edm", .steps = steps, .final_step = FinalStep::kDenoise});
  auto solver = make_solver("heun");
  Model model(gm, *sch);
  const MatrixXd X0 = gm.sample(1.0, 80.0, 1, N);
  MatrixXd X(d, N);
  long nfe = 0;
  for (auto _ : st) {
    X = X0;
    nfe = sample(*solver, model, grid, X).nfe;
    benchmark::DoNotOptimize(X.data());
  }
  st.counters["nfe"] = double(nfe);
  st.counters["evals*points/s"] = benchmark::Counter(double(nfe) * N, benchmark::Counter::kIsIterationInvariantRate);
}

// Euler on the edm grid (to sigma_min, no final denoise): one evaluation per step.
void BM_EulerEdm(benchmark::State& st) {
  const int d = st.range(0), K = st.range(1), steps = st.range(3);
  const long N = st.range(2);
  const auto gm = gmm(d, K);
  const auto sch = make_schedule("edm");
  const Grid grid = make_grid(*sch, {.kind = "edm", .steps = steps});
  auto solver = make_solver("euler");
  Model model(gm, *sch);
  const MatrixXd X0 = gm.sample(1.0, 80.0, 1, N);
  MatrixXd X(d, N);
  for (auto _ : st) {
    X = X0;
    sample(*solver, model, grid, X);
    benchmark::DoNotOptimize(X.data());
  }
  st.counters["evals*points/s"] = benchmark::Counter(double(steps) * N, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_HeunEdm)->Args({2, 8, 100000, 18})->Args({64, 16, 10000, 18})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EulerEdm)->Args({2, 8, 1000000, 50})->Unit(benchmark::kMillisecond);

}  // namespace
