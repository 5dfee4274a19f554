#include "solvers/reference/path_store.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <stdexcept>
#include <unistd.h>

namespace flowgauge {
namespace {

int open_unlinked(const std::string& dir) {
#ifdef O_TMPFILE
  const int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
#endif
  std::string name = dir + "/.path_store-XXXXXX";  // file systems without O_TMPFILE
  const int fd2 = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd2 < 0) throw PathStoreError(fmt::format("{}: cannot create a reference-path file: {}", dir, std::strerror(errno)));
  ::unlink(name.c_str());
  return fd2;
}

// pread / pwrite of all `bytes` at `off`, retried on EINTR and short counts; throws naming `dir`.
template <class Io, class Buf>
void transfer_all(Io io, int fd, Buf* p, std::size_t bytes, off_t off, const std::string& dir, const char* what) {
  for (std::size_t done = 0; done < bytes;) {
    const ssize_t n = io(fd, p + done, bytes - done, off + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw PathStoreError(fmt::format("{}: cannot {} a reference-path file: {}", dir, what,
                                       n < 0 ? std::strerror(errno) : "no bytes transferred (end of file)"));
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

PathStore::PathStore(Eigen::Index rows, Eigen::Index cols, int count, const std::string& spill_dir)
    : rows_(rows), cols_(cols), count_(count), dir_(spill_dir) {
  if (spill_dir.empty())
    mem_.resize(count);
  else
    fd_ = open_unlinked(spill_dir);
}

PathStore::PathStore(PathStore&& o) noexcept
    : rows_(o.rows_), cols_(o.cols_), count_(o.count_), mem_(std::move(o.mem_)), fd_(o.fd_), dir_(std::move(o.dir_)) {
  o.fd_ = -1;
}

PathStore& PathStore::operator=(PathStore&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    rows_ = o.rows_;
    cols_ = o.cols_;
    count_ = o.count_;
    mem_ = std::move(o.mem_);
    fd_ = o.fd_;
    dir_ = std::move(o.dir_);
    o.fd_ = -1;
  }
  return *this;
}

PathStore::~PathStore() {
  if (fd_ >= 0) ::close(fd_);
}

void PathStore::put(int i, const ConstMatRef& x) {
  if (i < 0 || i >= count_ || x.rows() != rows_ || x.cols() != cols_)
    throw std::logic_error(fmt::format("PathStore::put: state {} of {} ({}x{}, expected {}x{})", i, count_, x.rows(),
                                       x.cols(), rows_, cols_));
  if (fd_ < 0) {
    mem_[i] = x;
    return;
  }
  const MatrixXd packed = x;  // once per grid time; Ref may have an outer stride
  const auto bytes = static_cast<std::size_t>(packed.size()) * sizeof(double);
  transfer_all(::pwrite, fd_, reinterpret_cast<const char*>(packed.data()), bytes, static_cast<off_t>(i) * static_cast<off_t>(bytes),
               dir_, "write");
}

void PathStore::get(int i, MatrixXd& out) const {
  if (i < 0 || i >= count_) throw std::logic_error(fmt::format("PathStore::get: state {} of {}", i, count_));
  if (fd_ < 0) {
    out = mem_[i];
    return;
  }
  if (out.rows() != rows_ || out.cols() != cols_) out.resize(rows_, cols_);
  const auto bytes = static_cast<std::size_t>(out.size()) * sizeof(double);
  transfer_all(::pread, fd_, reinterpret_cast<char*>(out.data()), bytes, static_cast<off_t>(i) * static_cast<off_t>(bytes), dir_,
               "read");
}

const MatrixXd& PathStore::view(int i, MatrixXd& buf) const {
  if (fd_ < 0 && i >= 0 && i < count_) return mem_[i];
  get(i, buf);
  return buf;
}

std::vector<MatrixXd> PathStore::take_states() && {
  if (fd_ >= 0) throw std::logic_error("PathStore::take_states: the store is spilled to disk");
  return std::move(mem_);
}

MatrixXd PathStore::get(int i) const {
  MatrixXd out(rows_, cols_);
  get(i, out);
  return out;
}

}  // namespace flowgauge
