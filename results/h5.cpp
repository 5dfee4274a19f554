#include "results/h5.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "analytics/errors.hpp"

namespace flowgauge::h5 {

// An id can already be gone: AtomicOutput closes its file with H5F_CLOSE_STRONG, which closes every
// object still open in it (closing it again would leave an entry on HDF5's error stack, a leak).
static bool live(hid_t id) { return id >= 0 && H5Iis_valid(id) > 0; }

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    if (live(id_) && close_) close_(id_);
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = -1;
  }
  return *this;
}

Handle::~Handle() {
  if (live(id_) && close_) close_(id_);
}

herr_t Handle::close() {
  herr_t r = 0;
  if (live(id_) && close_) r = close_(id_);
  id_ = -1;
  return r;
}

void quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {
struct Cause {
  std::string system, innermost;
  int err = 0;
};

// The file drivers record a failed read or write as "..., errno = 28, error message = 'No space
// left on device', ..." (H5FDsec2.c).
herr_t collect_cause(unsigned, const H5E_error2_t* e, void* data) {
  auto& c = *static_cast<Cause*>(data);
  const std::string d = e->desc ? e->desc : "";
  if (c.innermost.empty()) c.innermost = d;  // walking upward: the most specific first
  if (const auto k = d.find("errno = "); k != std::string::npos && c.err == 0) c.err = std::atoi(d.c_str() + k + 8);
  const std::string key = "error message = '";
  if (const auto k = d.find(key); k != std::string::npos && c.system.empty())
    c.system = d.substr(k + key.size(), d.find('\'', k + key.size()) - k - key.size());
  return 0;
}

Cause cause() {
  Cause c;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_cause, &c);
  if (c.system.empty() && c.err != 0) c.system = std::strerror(c.err);
  return c;
}
}  // namespace

std::string error_cause() {
  const Cause c = cause();
  return c.system.empty() ? c.innermost : c.system;
}

namespace {
// A setting HDF5 refuses is a bug here, not bad input.
void must(herr_t status, const char* setting) {
  if (status < 0) throw std::logic_error(fmt::format("HDF5 refused {}: {}", setting, error_cause()));
}
}  // namespace

int error_errno() { return cause().err; }

Handle open_file(const std::string& path, bool write) {
  quiet();
  if (!std::filesystem::exists(path)) throw InputError(fmt::format("{}: no such file", path));
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(fmt::format("{}: not an HDF5 file (or truncated)", path));
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  must(H5Pset_evict_on_close(fapl.get(), true), "evict_on_close");  // see AtomicOutput: a rebuild reads thousands of cell files
  hid_t f = H5Fopen(path.c_str(), write ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl.get());
  if (f < 0) throw InputError(fmt::format("{}: cannot open HDF5 file", path));
  return Handle(f, H5Fclose);
}

bool has_dataset(hid_t loc, const std::string& name) {
  return H5Lexists(loc, name.c_str(), H5P_DEFAULT) > 0;
}

namespace {

Handle open_float_dataset(hid_t file, const std::string& ds, const std::string& fname, int& rank, hsize_t dims[2]) {
  if (!has_dataset(file, ds)) throw InputError(fmt::format("{}: no dataset '{}'", fname, ds));
  Handle d(H5Dopen2(file, ds.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d) throw InputError(fmt::format("{}: cannot open dataset '{}'", fname, ds));
  Handle type(H5Dget_type(d.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_FLOAT)
    throw InputError(fmt::format("{}: dataset '{}' must hold floating-point numbers", fname, ds));
  Handle space(H5Dget_space(d.get()), H5Sclose);
  rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 1 || rank > 2)
    throw InputError(fmt::format("{}: dataset '{}' has rank {}, expected (N, d)", fname, ds, rank));
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  return d;
}

}  // namespace

Eigen::MatrixXd read_matrix(hid_t file, const std::string& ds, const std::string& fname) {
  int rank = 0;
  hsize_t dims[2] = {0, 1};
  Handle d = open_float_dataset(file, ds, fname, rank, dims);
  if (rank != 2) throw InputError(fmt::format("{}: dataset '{}' has rank 1, expected shape (N, d)", fname, ds));
  Eigen::MatrixXd m(static_cast<Eigen::Index>(dims[1]), static_cast<Eigen::Index>(dims[0]));
  if (m.size() > 0 && H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.data()) < 0)
    throw InputError(fmt::format("{}: cannot read dataset '{}' (truncated file?)", fname, ds));
  if (!m.allFinite()) throw InputError(fmt::format("{}: dataset '{}' contains NaN or Inf", fname, ds));
  return m;
}

Eigen::VectorXd read_vector(hid_t file, const std::string& ds, const std::string& fname, bool allow_nonfinite) {
  int rank = 0;
  hsize_t dims[2] = {0, 1};
  Handle d = open_float_dataset(file, ds, fname, rank, dims);
  if (rank != 1 && dims[1] != 1)
    throw InputError(fmt::format("{}: dataset '{}' must be one-dimensional", fname, ds));
  Eigen::VectorXd v(static_cast<Eigen::Index>(dims[0]));
  if (v.size() > 0 && H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
    throw InputError(fmt::format("{}: cannot read dataset '{}' (truncated file?)", fname, ds));
  if (!allow_nonfinite && !v.allFinite())
    throw InputError(fmt::format("{}: dataset '{}' contains NaN or Inf", fname, ds));
  return v;
}

std::vector<Eigen::MatrixXd> read_stack(hid_t file, const std::string& ds, const std::string& fname) {
  if (!has_dataset(file, ds)) throw InputError(fmt::format("{}: no dataset '{}'", fname, ds));
  Handle d(H5Dopen2(file, ds.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d) throw InputError(fmt::format("{}: cannot open dataset '{}'", fname, ds));
  Handle type(H5Dget_type(d.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_FLOAT)
    throw InputError(fmt::format("{}: dataset '{}' must hold floating-point numbers", fname, ds));
  Handle space(H5Dget_space(d.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank != 3) throw InputError(fmt::format("{}: dataset '{}' has rank {}, expected (T, N, d)", fname, ds, rank));
  hsize_t dims[3] = {0, 0, 0};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  std::vector<double> buf(dims[0] * dims[1] * dims[2]);
  if (!buf.empty() && H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
    throw InputError(fmt::format("{}: cannot read dataset '{}' (truncated file?)", fname, ds));
  std::vector<Eigen::MatrixXd> out;
  const auto r = static_cast<Eigen::Index>(dims[2]), c = static_cast<Eigen::Index>(dims[1]);
  for (hsize_t k = 0; k < dims[0]; ++k) {
    out.emplace_back(Eigen::Map<const Eigen::MatrixXd>(buf.data() + k * r * c, r, c));
    if (!out.back().allFinite())
      throw InputError(fmt::format("{}: dataset '{}' contains NaN or Inf (entry {})", fname, ds, k));
  }
  return out;
}

namespace {
void write_raw(hid_t loc, const std::string& name, int rank, const hsize_t* dims, const double* data) {
  Handle space(H5Screate_simple(rank, dims, nullptr), H5Sclose);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  hsize_t total = 1;
  for (int i = 0; i < rank; ++i) total *= dims[i];
  // chunk along the first axis, ~1 MiB chunks; byte shuffle + gzip level 1 (float64 states: 1.27x
  // smaller, where gzip 4 alone gave 1.07x for ~2x the zlib time: quickstart trajectories)
  if (total >= 4096) {
    std::vector<hsize_t> chunk(dims, dims + rank);
    hsize_t row = total / std::max<hsize_t>(dims[0], 1);
    chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], (1u << 17) / std::max<hsize_t>(row, 1)));
    must(H5Pset_chunk(dcpl.get(), rank, chunk.data()), "chunk");
    must(H5Pset_shuffle(dcpl.get()), "shuffle");
    must(H5Pset_deflate(dcpl.get(), 1), "deflate");
  }
  Handle ds(H5Dcreate2(loc, name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), H5Dclose);
  if (!ds) throw WriteError(fmt::format("{} (creating dataset '{}')", error_cause(), name));
  if (total > 0 && H5Dwrite(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw WriteError(fmt::format("{} (writing dataset '{}')", error_cause(), name));
  // a chunked dataset's last chunks are written when it closes
  if (ds.close() < 0) throw WriteError(fmt::format("{} (writing dataset '{}')", error_cause(), name));
}
}  // namespace

void write_matrix(hid_t loc, const std::string& name, const Eigen::MatrixXd& m) {
  hsize_t dims[2] = {static_cast<hsize_t>(m.cols()), static_cast<hsize_t>(m.rows())};
  write_raw(loc, name, 2, dims, m.data());
}

void write_vector(hid_t loc, const std::string& name, const Eigen::VectorXd& v) {
  hsize_t dims[1] = {static_cast<hsize_t>(v.size())};
  write_raw(loc, name, 1, dims, v.data());
}

void write_stack(hid_t loc, const std::string& name, const std::vector<Eigen::MatrixXd>& ms) {
  if (ms.empty()) return;
  const auto r = ms[0].rows(), c = ms[0].cols();
  std::vector<double> buf;
  buf.reserve(ms.size() * r * c);
  for (const auto& m : ms) buf.insert(buf.end(), m.data(), m.data() + m.size());
  hsize_t dims[3] = {ms.size(), static_cast<hsize_t>(c), static_cast<hsize_t>(r)};
  write_raw(loc, name, 3, dims, buf.data());
}

// Variable-length UTF-8: h5py reads it as str (f.attrs["status"] == "complete"), where a
// fixed-length string would come back as bytes.
void write_attr(hid_t loc, const std::string& name, const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  if (H5Aexists(loc, name.c_str()) > 0) H5Adelete(loc, name.c_str());
  Handle a(H5Acreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* s = value.c_str();
  if (!a || H5Awrite(a.get(), type.get(), &s) < 0) throw WriteError(fmt::format("{} (writing attribute '{}')", error_cause(), name));
}

void write_attr(hid_t loc, const std::string& name, double value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  if (H5Aexists(loc, name.c_str()) > 0) H5Adelete(loc, name.c_str());
  Handle a(H5Acreate2(loc, name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!a || H5Awrite(a.get(), H5T_NATIVE_DOUBLE, &value) < 0)
    throw WriteError(fmt::format("{} (writing attribute '{}')", error_cause(), name));
}

void write_attr(hid_t loc, const std::string& name, long long value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  if (H5Aexists(loc, name.c_str()) > 0) H5Adelete(loc, name.c_str());
  Handle a(H5Acreate2(loc, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!a || H5Awrite(a.get(), H5T_NATIVE_LLONG, &value) < 0)
    throw WriteError(fmt::format("{} (writing attribute '{}')", error_cause(), name));
}

void write_attrs(hid_t loc, const std::map<std::string, std::string>& attrs) {
  for (const auto& [k, v] : attrs) write_attr(loc, k, v);
}

std::string read_string_attr(hid_t loc, const std::string& name) {
  if (H5Aexists(loc, name.c_str()) <= 0) return {};
  Handle a(H5Aopen(loc, name.c_str(), H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(a.get()), H5Tclose);
  if (H5Tis_variable_str(type.get()) > 0) {
    char* s = nullptr;
    Handle mt(H5Tget_native_type(type.get(), H5T_DIR_ASCEND), H5Tclose);
    H5Aread(a.get(), mt.get(), &s);
    std::string out = s ? s : "";
    H5free_memory(s);
    return out;
  }
  std::string buf(H5Tget_size(type.get()), '\0');
  H5Aread(a.get(), type.get(), buf.data());
  return std::string(buf.c_str());
}

namespace {
void limit_metadata_cache(hid_t fapl, std::size_t initial, std::size_t max) {
  H5AC_cache_config_t mdc;
  mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
  must(H5Pget_mdc_config(fapl, &mdc), "mdc_config");
  mdc.set_initial_size = true;
  mdc.initial_size = initial;
  mdc.max_size = max;
  mdc.min_size = std::min<std::size_t>(256 << 10, initial);
  must(H5Pset_mdc_config(fapl, &mdc), "mdc_config");
}
}  // namespace

// The file is written through the stream driver (results/h5_vfd.hpp): every write to disk is ours
// and checked, and a full disk cannot leave HDF5 holding a file it can neither finish nor close
// (HDF5 1.10 crashes at exit on one).
AtomicOutput::AtomicOutput(std::string path) : path_(std::move(path)) {
  quiet();
  tmp_ = fmt::format("{}.partial-{}", path_, ::getpid());
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // commit() closes the file for good, groups and datasets still open included: with the default
  // (weak) degree their last writes would land after the rename
  must(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), "fclose_degree");
  // A closed object's metadata leaves the cache: memory does not grow with the number of objects
  // (a run file has a group per cell). Each eviction costs time in proportion to the dirty entries:
  // writers of many objects flush now and then (write_main).
  must(H5Pset_evict_on_close(fapl.get(), true), "evict_on_close");
  // HDF5 1.8 groups (links in a fractal heap past 8) instead of 1.6 symbol tables, whose name heap of a
  // group is one block in memory: a 19200-cell rebuild 23.8 -> 22.5 MB peak RSS.
  must(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), "libver_bounds");
  // The metadata cache grows to 32 MB by default while a run file's thousands of groups are written: at
  // most 2 MB here (convergence study x 16 seeds, 15360 cells: peak RSS 28 -> 24 MB, same time).
  limit_metadata_cache(fapl.get(), 1 << 20, 2 << 20);
  // Each open dataset keeps a 64 kB sieve buffer, and a table's columns are all open while it is
  // written a block at a time (Finished::write): 22 columns, 1.4 MB. The writes here are whole blocks
  // of a dataset, which a sieve does not help.
  must(H5Pset_sieve_buf_size(fapl.get(), 4096), "sieve_buf_size");
  // No free-space tracking: HDF5 otherwise keeps a section in memory for every block it frees while
  // it writes (a 19200-cell run file: peak RSS 28.6 -> 25.5 MB; the file is no larger). Readable by HDF5 >= 1.10.
  Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  must(H5Pset_file_space_strategy(fcpl.get(), H5F_FSPACE_STRATEGY_NONE, false, 1), "file_space_strategy");
  // created now, after the settings (a refused one leaves no file): a missing or read-only directory
  // is refused before any work
  const int fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOSPC || err == EDQUOT || err == EIO) throw WriteError(fmt::format("{}: cannot create: {}", path_, std::strerror(err)));
    throw InputError(fmt::format("{}: cannot create output file: {} (directory missing or not writable?)", path_, std::strerror(err)));
  }
  ::close(fd);
  const hid_t f = set_stream_driver(fapl.get(), &status_) < 0 ? -1 : H5Fcreate(tmp_.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get());
  if (f < 0) {
    const std::string why = status_.error ? std::strerror(status_.error) : error_cause();
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);
    throw WriteError(fmt::format("{}: cannot create: {}", path_, why));
  }
  file_ = Handle(f, H5Fclose);
}

Handle memory_file() {
  quiet();
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  limit_metadata_cache(fapl.get(), 256 << 10, 256 << 10);  // open for a whole run: 2 MB by default
  must(H5Pset_fapl_core(fapl.get(), 64 << 10, /*backing_store=*/false), "fapl_core");
  must(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), "libver_bounds");
  static std::atomic<unsigned> n{0};  // the core driver still wants a name, unique among open files
  const std::string name = fmt::format("flowgauge-memory-{}-{}", ::getpid(), n++);
  Handle f(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
  if (!f) throw WriteError(fmt::format("cannot create an in-memory HDF5 file: {}", error_cause()));
  return f;
}

void copy_object(hid_t from, const std::string& name, hid_t to) {
  if (H5Ocopy(from, name.c_str(), to, name.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
    throw WriteError(fmt::format("{} (copying '{}')", error_cause(), name));
}

namespace {
// fsync(fd); errno on failure, else 0.
int sync_fd(int fd) {
  if (::fsync(fd) == 0) return 0;
  return errno == EINVAL ? 0 : errno;  // EINVAL: this kind of file cannot be synced (nothing to wait for)
}
}  // namespace

void AtomicOutput::close() {
  if (!close_error_.empty()) throw WriteError(close_error_);  // asked again after a failure
  if (closed_) return;
  try {
    if (file_.close() < 0)
      throw WriteError(fmt::format("{}: cannot write: {}", path_, status_.error ? std::strerror(status_.error) : error_cause()));
    // disk full, ulimit -f, EIO: the driver went on in memory
    if (status_.error) throw WriteError(fmt::format("{}: cannot write: {}", path_, std::strerror(status_.error)));
  } catch (const WriteError& err) {
    close_error_ = err.what();
    throw;
  }
  closed_ = true;
}

void AtomicOutput::commit(bool durable) {
  auto fail = [&](int err) { return WriteError(fmt::format("{}: cannot write: {}", path_, std::strerror(err))); };
  close();
  if (durable) {
    const int fd = ::open(tmp_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw fail(errno);
    const int err = sync_fd(fd);
    ::close(fd);
    if (err) throw fail(err);
  }
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) throw WriteError(fmt::format("{}: cannot move finished output into place: {}", path_, ec.message()));
  done_ = true;
  if (durable) {  // the rename itself; a failure here loses nothing a crash would not
    const auto dir = std::filesystem::path(path_).parent_path();
    const int d = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_CLOEXEC);
    if (d >= 0) {
      sync_fd(d);
      ::close(d);
    }
  }
}

AtomicOutput::~AtomicOutput() {
  if (done_) return;
  file_ = Handle();
  std::error_code ec;
  std::filesystem::remove(tmp_, ec);
}

}  // namespace flowgauge::h5
