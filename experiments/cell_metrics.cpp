#include "experiments/cell_metrics.hpp"

#include <cmath>

#include "solvers/coordinates.hpp"
#include "solvers/reference/reference.hpp"

namespace flowgauge {

ReferencePath reference_path(Model& model, const Grid& grid, const MatrixXd& start, double rtol, double atol) {
  ReferenceOptions o;
  o.rtol = rtol;
  o.atol = atol;
  ReferencePair p = reference_with_error(model, grid, start, o);
  return {std::move(p.primary.states), std::move(p.err_rms)};
}

VectorXd lte_profile(const SolverAxis& sv, Model& model, const Grid& grid, const ReferencePath& ref) {
  auto solver = make_solver(sv.name, sv.options);
  const int N = grid.steps();
  VectorXd lte = VectorXd::Constant(N, NAN);
  MatrixXd X = ref.states[0];
  solver->start(model, grid, X.cols());
  MatrixXd x0(X.rows(), X.cols()), eps(X.rows(), X.cols());
  for (int i = 0; i < N;) {
    X = ref.states[i];
    int k = 1;
    if (i == N - 1 && grid.denoise_final) {
      model.predict(X, grid.t[i], x0, eps);
      X = x0;
    } else {
      k = solver->advance(model, grid, i, X);
    }
    lte(i) = std::sqrt((X - ref.states[i + k]).colwise().squaredNorm().mean());
    i += k;
  }
  return lte;
}

}  // namespace flowgauge
