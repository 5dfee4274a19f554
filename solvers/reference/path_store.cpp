#include "solvers/reference/path_store.hpp"

#include <fmt/format.h>
#include <stdexcept>

namespace flowgauge {

PathStore::PathStore(Eigen::Index rows, Eigen::Index cols, int count, const std::string& spill_dir)
    : rows_(rows), cols_(cols), count_(count) {
  if (spill_dir.empty())
    mem_.resize(count);
  else
    file_ = std::make_unique<ScratchFile>(spill_dir, "reference-path file");
}

void PathStore::put(int i, const ConstMatRef& x) {
  if (i < 0 || i >= count_ || x.rows() != rows_ || x.cols() != cols_)
    throw std::logic_error(fmt::format("PathStore::put: state {} of {} ({}x{}, expected {}x{})", i, count_, x.rows(),
                                       x.cols(), rows_, cols_));
  if (!file_) {
    mem_[i] = x;
    return;
  }
  const MatrixXd packed = x;  // once per grid time; Ref may have an outer stride
  const auto bytes = static_cast<std::size_t>(packed.size()) * sizeof(double);
  file_->write(packed.data(), bytes, static_cast<off_t>(i) * static_cast<off_t>(bytes));
}

void PathStore::get(int i, MatrixXd& out) const {
  if (i < 0 || i >= count_) throw std::logic_error(fmt::format("PathStore::get: state {} of {}", i, count_));
  if (!file_) {
    out = mem_[i];
    return;
  }
  if (out.rows() != rows_ || out.cols() != cols_) out.resize(rows_, cols_);
  const auto bytes = static_cast<std::size_t>(out.size()) * sizeof(double);
  file_->read(out.data(), bytes, static_cast<off_t>(i) * static_cast<off_t>(bytes));
}

const MatrixXd& PathStore::view(int i, MatrixXd& buf) const {
  if (!file_ && i >= 0 && i < count_) return mem_[i];
  get(i, buf);
  return buf;
}

std::vector<MatrixXd> PathStore::take_states() && {
  if (file_) throw std::logic_error("PathStore::take_states: the store is spilled to disk");
  return std::move(mem_);
}

MatrixXd PathStore::get(int i) const {
  MatrixXd out(rows_, cols_);
  get(i, out);
  return out;
}

}  // namespace flowgauge
