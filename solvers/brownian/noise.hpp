#pragma once
// Noise for stochastic samplers: a d-dimensional Brownian path per particle, queried by time.
// Conventions (docs/samplers.md 1.5, closed_forms.md 4):
//  - W is a standard Brownian motion in the schedule's NATIVE time t (the time the grid is in),
//    one independent path per particle; particle p of a run is particle first + j of a batch.
//  - A sampler step s -> t (s noisier, t < s) takes its noise from the increment W(t) - W(s)
//    (variance s - t). Per-step standard normals are xi = (W(t) - W(s)) / sqrt(s - t) (normal()).
//    So every sampler driven by one path converges, as the grid is refined, to the pathwise
//    solution of its limiting SDE in t driven by that path (e.g. ddpm, euler_maruyama(eta=1) and
//    sde_dpmpp_*(gamma=1) all approach the same strong solution of the gamma = 1 reverse SDE).
#include <cstdint>
#include <memory>
#include <string>

#include "analytics/mixture.hpp"

namespace flowgauge {

class NoiseSource {
 public:
  virtual ~NoiseSource() = default;
  virtual int dim() const = 0;
  // out(:, j) = W(tb) - W(ta) for particle first + j (out is d x n). ta, tb in either order.
  virtual void increment(double ta, double tb, std::int64_t first, MatRef out) const = 0;
  // (W(tb) - W(ta)) / sqrt|tb - ta|: the standard normal of one step (ta != tb). Explicit sources
  // return their recorded normal exactly; the default divides the increment.
  virtual void normal(double ta, double tb, std::int64_t first, MatRef out) const;
  // W(t) itself where the source defines it at every t (BrownianTree): lets a reader reuse W at the
  // previous step's end (solvers/stochastic/common.hpp StepNoise). Default: unsupported (false).
  virtual bool path_values(double t, std::int64_t first, MatRef out) const { return false; }
  // Standard normals that are NOT increments of the path (a Langevin corrector's, solvers/stochastic/
  // langevin.hpp), keyed by (t, k): independent of the path and of every other key, a pure function of
  // (seed, particle, t, k) for generated sources. Default (recorded noise): InputError.
  virtual void auxiliary_normal(double t, int k, std::int64_t first, MatRef out) const;
  virtual std::string describe() const = 0;
};

}  // namespace flowgauge
