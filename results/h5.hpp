#pragma once
// Minimal RAII layer over the HDF5 C API. Matrices are stored as h5py stores a numpy (N, d)
// array: row-major (N, d) on disk is exactly a column-major d x N Eigen matrix in memory.
#include <hdf5.h>

#include <Eigen/Dense>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "results/h5_vfd.hpp"

namespace flowgauge::h5 {

// An output could not be written: disk full, file too large (ulimit -f), I/O error. The message
// names the file (where known) and the system's reason ("No space left on device"). Not bad input
// (exit status 1, not 2), and not an internal error either.
class WriteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Why the last HDF5 call failed: the system's message when HDF5 recorded one ("No space left on
// device", "File too large"), else HDF5's innermost description; "" when the error stack is empty.
// Read it right after the failing call: the next HDF5 call clears the stack.
std::string error_cause();
// errno recorded on HDF5's error stack by the failing call (0 if none).
int error_errno();

// Owns one hid_t and closes it with the matching H5?close.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();
  hid_t get() const { return id_; }
  // Closes now and returns the close function's status (a file's close writes what HDF5 cached, and
  // can fail where the destructor would not say so).
  herr_t close();
  explicit operator bool() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

Handle open_file(const std::string& path, bool write = false);  // throws InputError naming the file

bool has_dataset(hid_t loc, const std::string& name);
// (N, d) float dataset -> d x N. Errors name file and dataset (wrong rank, non-float type...).
Eigen::MatrixXd read_matrix(hid_t file, const std::string& dataset, const std::string& file_name);
// NaN / Inf refused unless allow_nonfinite (results may hold NaN: metrics undefined for a cell).
Eigen::VectorXd read_vector(hid_t file, const std::string& dataset, const std::string& file_name,
                            bool allow_nonfinite = false);
// (T, N, d) float dataset -> T matrices d x N (the layout write_stack writes).
std::vector<Eigen::MatrixXd> read_stack(hid_t file, const std::string& dataset, const std::string& file_name);

// d x N -> (N, d) dataset, chunked, byte-shuffled and gzip-compressed when large.
void write_matrix(hid_t loc, const std::string& name, const Eigen::MatrixXd& m);
void write_vector(hid_t loc, const std::string& name, const Eigen::VectorXd& v);
// Several d x N matrices of one size -> (T, N, d) dataset (trajectories).
void write_stack(hid_t loc, const std::string& name, const std::vector<Eigen::MatrixXd>& ms);

void write_attr(hid_t loc, const std::string& name, const std::string& value);
void write_attr(hid_t loc, const std::string& name, double value);
void write_attr(hid_t loc, const std::string& name, long long value);
void write_attrs(hid_t loc, const std::map<std::string, std::string>& attrs);
std::string read_string_attr(hid_t loc, const std::string& name);

// Output that appears only when complete: written through to a temporary sibling
// "<path>.partial-<pid>" (results/h5_vfd.hpp: memory does not grow with the file) and renamed into
// place on commit(). Destroyed without commit() (an error, an exception) it removes the temporary
// file, so a failed write (disk full) leaves the previous file, if any, as it was. The constructor
// creates the temporary file (InputError naming the path if the directory is missing or not
// writable).
class AtomicOutput {
 public:
  explicit AtomicOutput(std::string path);
  ~AtomicOutput();
  hid_t file() const { return file_.get(); }
  const std::string& path() const { return path_; }
  // Closes the file (every write checked), then renames it into place. durable: also fsync the
  // file before the rename and its directory after, so a crash of the machine cannot leave the new
  // name pointing at data that never reached the disk. Throws WriteError naming path() and the
  // system's reason ("No space left on device", "File too large").
  void commit(bool durable = false);
  // The HDF5 part of commit(): closes the file, every write checked. What is left for commit()
  // (fsync, rename) calls no HDF5, so it may run without the lock that serializes HDF5 calls.
  void close();

 private:
  std::string path_, tmp_;
  StreamStatus status_;  // the first failed write, recorded by the driver
  Handle file_;
  bool closed_ = false, done_ = false;
  std::string close_error_;
};

// An HDF5 file in memory only (core driver, no backing store), with the format bounds of
// AtomicOutput's files: objects written once there and copied into many files (copy_object).
Handle memory_file();
// Copies object `name` and everything below it from file `from` into `to` under the same name;
// chunks go across as stored, not filtered again (H5Ocopy). Throws WriteError.
void copy_object(hid_t from, const std::string& name, hid_t to);

// Silence HDF5's own stderr dump; errors are reported by us with file and dataset names.
void quiet();

}  // namespace flowgauge::h5
