#pragma once
// Particles are independent under every sampler here (noise is keyed by particle), so a batch can
// run the whole grid block by block. Blocks are fixed column ranges, handed to threads in any
// order: the result does not depend on the thread count, and a block's state stays in cache for
// all its steps.
#include "solvers/solver.hpp"

namespace flowgauge {

struct BlockedOptions {
  int threads = 1;
  Eigen::Index block = 4096;  // columns per block (fixed: part of the result's definition)
};

// Like sample() without trajectory or observer; `proto` is cloned per block (Solver::clone), the
// model's mixture and schedule are shared read-only. Returns the NFE of one particle's run.
long sample_blocked(const Solver& proto, const Model& model, const Grid& grid, MatRef X,
                    const BlockedOptions& opt = {});

}  // namespace flowgauge
