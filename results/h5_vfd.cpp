#include "results/h5_vfd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#if __has_include(<H5FDdevelop.h>)  // HDF5 >= 1.13 moved the driver class here
#include <H5FDdevelop.h>
#endif

namespace flowgauge::h5 {
namespace {

struct Info {
  StreamStatus* status;
};

// H5FD_t first: HDF5 sees only that part. The driver's state after it.
struct File {
  H5FD_t pub;
  int fd = -1;
  haddr_t eoa = 0, eof = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  StreamStatus* status = nullptr;
  int error = 0;
  bool in_memory = false;  // after the first failed write: the whole file lives in `mem`
  std::vector<char> mem;
};

constexpr haddr_t kMaxAddr = (haddr_t(1) << (8 * sizeof(off_t) - 1)) - 1;

void fail(File* f, int err) {
  if (f->error == 0) f->error = err ? err : EIO;
  if (f->status && f->status->error == 0) f->status->error = f->error;
}

// The first failure: read back what reached the file and go on in memory (HDF5 may read its own
// metadata back before it closes).
void to_memory(File* f) {
  f->in_memory = true;
  f->mem.assign(static_cast<std::size_t>(f->eof), 0);
  for (std::size_t at = 0; at < f->mem.size();) {
    const ssize_t n = ::pread(f->fd, f->mem.data() + at, f->mem.size() - at, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the rest stays zero: the file is discarded anyway
    at += static_cast<std::size_t>(n);
  }
}

void* fapl_copy(const void* p) {
  void* q = std::malloc(sizeof(Info));
  if (q) std::memcpy(q, p, sizeof(Info));
  return q;
}

herr_t fapl_free(void* p) {
  std::free(p);
  return 0;
}

H5FD_t* open(const char* name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
  if (!name || !*name || maxaddr == 0 || maxaddr == HADDR_UNDEF || maxaddr > kMaxAddr) return nullptr;
  const auto* info = static_cast<const Info*>(H5Pget_driver_info(fapl));
  int o = (flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY;
  if (flags & H5F_ACC_TRUNC) o |= O_TRUNC;
  if (flags & H5F_ACC_CREAT) o |= O_CREAT;
  if (flags & H5F_ACC_EXCL) o |= O_EXCL;
  const int fd = ::open(name, o | O_CLOEXEC, 0644);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    if (info && info->status && info->status->error == 0) info->status->error = err;
    return nullptr;
  }
  auto* f = new (std::nothrow) File();
  if (!f) {
    ::close(fd);
    return nullptr;
  }
  f->fd = fd;
  f->eof = static_cast<haddr_t>(st.st_size);
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  f->status = info ? info->status : nullptr;
  return &f->pub;
}

herr_t close(H5FD_t* file) {
  auto* f = reinterpret_cast<File*>(file);
  if (::close(f->fd) != 0) fail(f, errno);  // NFS reports some write errors only here
  delete f;
  return 0;
}

int cmp(const H5FD_t* a, const H5FD_t* b) {
  const auto* x = reinterpret_cast<const File*>(a);
  const auto* y = reinterpret_cast<const File*>(b);
  if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
  if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
  return 0;
}

herr_t query(const H5FD_t*, unsigned long* flags) {
  if (flags)
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE | H5FD_FEAT_AGGREGATE_SMALLDATA;
  return 0;
}

haddr_t get_eoa(const H5FD_t* file, H5FD_mem_t) { return reinterpret_cast<const File*>(file)->eoa; }
herr_t set_eoa(H5FD_t* file, H5FD_mem_t, haddr_t addr) {
  if (addr > kMaxAddr) return -1;
  reinterpret_cast<File*>(file)->eoa = addr;
  return 0;
}
haddr_t get_eof(const H5FD_t* file, H5FD_mem_t) { return reinterpret_cast<const File*>(file)->eof; }

herr_t get_handle(H5FD_t* file, hid_t, void** handle) {
  if (!handle) return -1;
  *handle = &reinterpret_cast<File*>(file)->fd;
  return 0;
}

herr_t read(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, std::size_t size, void* buf) {
  auto* f = reinterpret_cast<File*>(file);
  if (addr == HADDR_UNDEF || addr > kMaxAddr || size > kMaxAddr - addr) return -1;
  auto* out = static_cast<char*>(buf);
  if (f->in_memory) {
    const std::size_t have = addr < f->mem.size() ? std::min(size, f->mem.size() - std::size_t(addr)) : 0;
    if (have) std::memcpy(out, f->mem.data() + addr, have);
    std::memset(out + have, 0, size - have);  // beyond the end of file: zeros, as sec2
    return 0;
  }
  std::size_t at = 0;
  while (at < size) {
    const ssize_t n = ::pread(f->fd, out + at, size - at, static_cast<off_t>(addr + at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;  // a read error is HDF5's to report (nothing is half-written by it)
    if (n == 0) break;
    at += static_cast<std::size_t>(n);
  }
  std::memset(out + at, 0, size - at);
  return 0;
}

herr_t write(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, std::size_t size, const void* buf) {
  auto* f = reinterpret_cast<File*>(file);
  if (addr == HADDR_UNDEF || addr > kMaxAddr || size > kMaxAddr - addr) return -1;
  const auto* in = static_cast<const char*>(buf);
  if (!f->in_memory) {
    std::size_t at = 0;
    while (at < size) {
      const ssize_t n = ::pwrite(f->fd, in + at, size - at, static_cast<off_t>(addr + at));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fail(f, n < 0 ? errno : EIO);
        to_memory(f);
        break;
      }
      at += static_cast<std::size_t>(n);
    }
  }
  if (f->in_memory) {
    if (f->mem.size() < addr + size) f->mem.resize(static_cast<std::size_t>(addr + size), 0);
    std::memcpy(f->mem.data() + addr, in, size);
  }
  f->eof = std::max<haddr_t>(f->eof, addr + size);
  return 0;
}

herr_t truncate(H5FD_t* file, hid_t, hbool_t) {
  auto* f = reinterpret_cast<File*>(file);
  if (f->eoa == f->eof) return 0;
  if (f->in_memory) f->mem.resize(static_cast<std::size_t>(f->eoa), 0);
  else if (::ftruncate(f->fd, static_cast<off_t>(f->eoa)) != 0) fail(f, errno);
  f->eof = f->eoa;
  return 0;
}

hid_t driver_id() {
  static const hid_t id = [] {
    static H5FD_class_t cls{};
#ifdef H5FD_CLASS_VERSION
    cls.version = H5FD_CLASS_VERSION;
    cls.value = static_cast<H5FD_class_value_t>(600);  // an unreserved id (0..255 are the HDF Group's)
#endif
    cls.name = "flowgauge_stream";
    cls.maxaddr = kMaxAddr;
    cls.fc_degree = H5F_CLOSE_WEAK;
    cls.fapl_size = sizeof(Info);
    cls.fapl_copy = fapl_copy;
    cls.fapl_free = fapl_free;
    cls.open = open;
    cls.close = close;
    cls.cmp = cmp;
    cls.query = query;
    cls.get_eoa = get_eoa;
    cls.set_eoa = set_eoa;
    cls.get_eof = get_eof;
    cls.get_handle = get_handle;
    cls.read = read;
    cls.write = write;
    cls.truncate = truncate;
    const H5FD_mem_t map[] = H5FD_FLMAP_DICHOTOMY;
    std::copy(std::begin(map), std::end(map), std::begin(cls.fl_map));
    return H5FDregister(&cls);
  }();
  return id;
}

}  // namespace

herr_t set_stream_driver(hid_t fapl, StreamStatus* status) {
  const hid_t id = driver_id();
  if (id < 0) return -1;
  const Info info{status};
  return H5Pset_driver(fapl, id, &info);
}

}  // namespace flowgauge::h5
