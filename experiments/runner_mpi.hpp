#pragma once
// `mpirun -np R flowgauge run FILE`: the cells of one run shared across MPI ranks (built only with
// -DFLOWGAUGE_MPI=ON). Rank 0 hands out cell ids on request (dynamic assignment: a rank gets the
// cells of reference paths it has already computed first, then the costliest group nobody has
// started); its own worker threads compute too while its main thread serves the requests. Every
// rank writes its finished cells to <output>.cells/ (which must be on a file system the ranks
// share), so a rank that dies loses only its cells in flight; rank 0 writes the main file, the
// same file a single process writes.
#include "experiments/config.hpp"
#include "experiments/runner.hpp"

namespace flowgauge::mpi {

// MPI_Init_thread (MPI_THREAD_FUNNELED: only the main thread calls MPI) .. MPI_Finalize.
class Session {
 public:
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  // True on every rank iff `ok` is true on every rank.
  bool all(bool ok) const;
  // The lowest rank whose `flag` is true, or -1.
  int first(bool flag) const;

 private:
  int rank_ = 0, size_ = 1;
};

// Every rank calls it with the same experiment; the summary is meaningful on rank 0. Throws on the
// rank(s) that saw the error (InputError: exit 2); other ranks then return normally.
RunSummary run(const Session& s, const Experiment& e, const RunOptions& opt);

}  // namespace flowgauge::mpi
