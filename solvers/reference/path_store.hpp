#pragma once
// The states of a path at every grid time (d x N each), kept either in memory or in an unlinked
// file on disk, so that a sweep's memory does not grow with its step count (the page cache keeps
// a file that is read again and again at memory speed, and can drop it under pressure).
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "solvers/model.hpp"
#include "solvers/scratch_file.hpp"

namespace flowgauge {

// The spill file could not be created, written or read (a full disk, ulimit -f): names the directory.
using PathStoreError = ScratchFileError;

class PathStore {
 public:
  // `count` states of rows x cols. Empty `spill_dir`: in memory. Otherwise an unlinked file in
  // that directory (O_TMPFILE, else mkstemp + unlink): nothing is left behind, even after kill -9.
  PathStore(Eigen::Index rows, Eigen::Index cols, int count, const std::string& spill_dir = "");

  void put(int i, const ConstMatRef& x);
  // Copies state i into `out` (resized only if its shape differs: no allocation in a loop).
  // Safe from several threads at once once every state is put.
  void get(int i, MatrixXd& out) const;
  MatrixXd get(int i) const;
  // State i without a copy when in memory; else read into `buf`, which is returned.
  const MatrixXd& view(int i, MatrixXd& buf) const;

  // In-memory store only: its states, moved out.
  std::vector<MatrixXd> take_states() &&;

  int size() const { return count_; }
  bool spilled() const { return file_ != nullptr; }

 private:
  Eigen::Index rows_, cols_;
  int count_;
  std::vector<MatrixXd> mem_;  // in memory
  std::unique_ptr<ScratchFile> file_;  // spilled
};

}  // namespace flowgauge
