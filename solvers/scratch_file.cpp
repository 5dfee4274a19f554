#include "solvers/scratch_file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

namespace flowgauge {

ScratchFile::ScratchFile(const std::string& dir, const std::string& what) : dir_(dir), what_(what) {
#ifdef O_TMPFILE
  fd_ = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd_ >= 0) return;
#endif
  std::string name = dir + "/.scratch-XXXXXX";  // file systems without O_TMPFILE
  fd_ = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd_ < 0) throw ScratchFileError(fmt::format("{}: cannot create a {}: {}", dir, what, std::strerror(errno)));
  ::unlink(name.c_str());
}

ScratchFile::ScratchFile(ScratchFile&& o) noexcept : fd_(o.fd_), dir_(std::move(o.dir_)), what_(std::move(o.what_)) { o.fd_ = -1; }

ScratchFile& ScratchFile::operator=(ScratchFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    dir_ = std::move(o.dir_);
    what_ = std::move(o.what_);
    o.fd_ = -1;
  }
  return *this;
}

ScratchFile::~ScratchFile() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {
template <class Io, class Buf>
void transfer_all(Io io, int fd, Buf* p, std::size_t bytes, off_t off, const std::string& dir, const std::string& what,
                  const char* verb) {
  for (std::size_t done = 0; done < bytes;) {
    const ssize_t n = io(fd, p + done, bytes - done, off + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw ScratchFileError(fmt::format("{}: cannot {} a {}: {}", dir, verb, what,
                                         n < 0 ? std::strerror(errno) : "no bytes transferred (end of file)"));
    done += static_cast<std::size_t>(n);
  }
}
}  // namespace

void ScratchFile::write(const void* p, std::size_t bytes, off_t offset) {
  transfer_all(::pwrite, fd_, static_cast<const char*>(p), bytes, offset, dir_, what_, "write");
}

void ScratchFile::read(void* p, std::size_t bytes, off_t offset) const {
  transfer_all(::pread, fd_, static_cast<char*>(p), bytes, offset, dir_, what_, "read");
}

}  // namespace flowgauge
