#pragma once
// Counter-based randomness (Salmon et al. 2011, Random123 Philox4x64-10): every deviate is a pure
// function of (seed, stream, particle, index), so results never depend on threads or batch splits.
#include <Random123/philox.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>

namespace flowgauge {

// Independent uses of one seed get distinct streams.
// kAuxiliary: normals a sampler needs besides its Brownian path (a Langevin corrector's), NoiseSource::auxiliary_normal.
enum class Stream : std::uint64_t { kMixtureComponent = 1, kMixtureNoise = 2, kBrownian = 3, kProbe = 4, kAuxiliary = 5 };

class CounterRng {
 public:
  CounterRng(std::uint64_t seed, Stream stream) : key_{{seed, static_cast<std::uint64_t>(stream)}} {}

  // Four uniforms in the open interval (0, 1) for counter (particle, block).
  std::array<double, 4> uniforms(std::uint64_t particle, std::uint64_t block) const { return uniforms(particle, block, 0); }

  // Same with a third counter word (e.g. block = a Brownian-tree node, sub = a block of dimensions).
  // sub = 0 gives exactly the two-word counter above.
  std::array<double, 4> uniforms(std::uint64_t particle, std::uint64_t block, std::uint64_t sub) const {
    r123::Philox4x64::ctr_type c{{particle, block, sub, 0}};
    auto r = gen_(c, key_);
    std::array<double, 4> u;
    for (int i = 0; i < 4; ++i) u[i] = (static_cast<double>(r.v[i] >> 11) + 0.5) * 0x1.0p-53;
    return u;
  }

  // Standard normals z[0..n) for one particle: z[j] depends on (particle, j) only (Box-Muller).
  void normals(std::uint64_t particle, double* z, long n, std::uint64_t first_block = 0) const {
    for (long j = 0; j < n; j += 4) {
      auto u = uniforms(particle, first_block + static_cast<std::uint64_t>(j / 4));
      double r0 = std::sqrt(-2.0 * std::log(u[0])), r1 = std::sqrt(-2.0 * std::log(u[2]));
      double v[4] = {r0 * std::cos(2 * std::numbers::pi * u[1]), r0 * std::sin(2 * std::numbers::pi * u[1]),
                     r1 * std::cos(2 * std::numbers::pi * u[3]), r1 * std::sin(2 * std::numbers::pi * u[3])};
      for (long i = 0; i < 4 && j + i < n; ++i) z[j + i] = v[i];
    }
  }

 private:
  r123::Philox4x64 gen_;
  r123::Philox4x64::key_type key_;
};

}  // namespace flowgauge
