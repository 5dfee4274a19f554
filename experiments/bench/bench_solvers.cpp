// Whole samplers: one solver on N particles, names carry solver/d/K/N/steps/threads. With T threads
// the particles are split into T contiguous chunks, each with its own solver and model (workspace);
// times are wall-clock (UseRealTime), the CPU column is the whole process (MeasureProcessCPUTime).
#include <benchmark/benchmark.h>

#include <deque>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

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

// Runs `solver` over `grid` on X split column-wise across `threads` threads; returns evaluations per chunk.
struct Parallel {
  Parallel(const GaussianMixture& gm, const Schedule& sch, const std::string& solver, int threads) {
    for (int t = 0; t < threads; ++t) {
      solvers.push_back(make_solver(solver));
      models.emplace_back(gm, sch);
    }
  }
  long run(const Grid& grid, MatrixXd& X) {
    const long T = static_cast<long>(solvers.size()), N = X.cols();
    std::vector<long> nfe(T);
    std::vector<std::thread> pool;
    for (long t = 0; t < T; ++t)
      pool.emplace_back([&, t] {
        const long j0 = N * t / T, j1 = N * (t + 1) / T;
        auto chunk = X.middleCols(j0, j1 - j0);
        nfe[t] = sample(*solvers[t], models[t], grid, chunk).nfe;
      });
    for (auto& th : pool) th.join();
    return nfe[0];
  }
  std::vector<std::unique_ptr<Solver>> solvers;
  std::deque<Model> models;
};

// Heun (EDM Algorithm 2) on the edm schedule, EDM grid ending at sigma = 0: 2 n - 1 evaluations.
void BM_HeunEdm(benchmark::State& st) {
  const int d = st.range(0), K = st.range(1), steps = st.range(3), threads = st.range(4);
  const long N = st.range(2);
  const auto gm = gmm(d, K);
  const auto sch = make_schedule("edm");
  const Grid grid = make_grid(*sch, {.kind = "edm", .steps = steps, .final_step = FinalStep::kDenoise});
  Parallel par(gm, *sch, "heun", threads);
  const MatrixXd X0 = gm.sample(1.0, 80.0, 1, N);
  MatrixXd X(d, N);
  long nfe = 0;
  for (auto _ : st) {
    X = X0;
    nfe = par.run(grid, X);
    benchmark::DoNotOptimize(X.data());
  }
  st.counters["nfe"] = double(nfe);
  st.counters["evals*points/s"] = benchmark::Counter(double(nfe) * N, benchmark::Counter::kIsIterationInvariantRate);
}

// Euler on the edm grid (to sigma_min, no final denoise): one evaluation per step.
void BM_EulerEdm(benchmark::State& st) {
  const int d = st.range(0), K = st.range(1), steps = st.range(3), threads = st.range(4);
  const long N = st.range(2);
  const auto gm = gmm(d, K);
  const auto sch = make_schedule("edm");
  const Grid grid = make_grid(*sch, {.kind = "edm", .steps = steps});
  Parallel par(gm, *sch, "euler", threads);
  const MatrixXd X0 = gm.sample(1.0, 80.0, 1, N);
  MatrixXd X(d, N);
  for (auto _ : st) {
    X = X0;
    par.run(grid, X);
    benchmark::DoNotOptimize(X.data());
  }
  st.counters["evals*points/s"] = benchmark::Counter(double(steps) * N, benchmark::Counter::kIsIterationInvariantRate);
}

// The whole-sampler figures: (a) Heun 2-D K = 8 N = 1e5, 18 steps (35 evaluations);
// (b) the same at d = 64, K = 16, N = 1e4; (c) Euler 2-D K = 8 N = 1e6, 50 steps; 1 and 2 threads.
BENCHMARK(BM_HeunEdm)->ArgNames({"d", "K", "N", "steps", "threads"})
    ->Args({2, 8, 100000, 18, 1})->Args({2, 8, 100000, 18, 2})
    ->Args({64, 16, 10000, 18, 1})->Args({64, 16, 10000, 18, 2})
    ->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EulerEdm)->ArgNames({"d", "K", "N", "steps", "threads"})
    ->Args({2, 8, 1000000, 50, 1})->Args({2, 8, 1000000, 50, 2})
    ->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);

}  // namespace
