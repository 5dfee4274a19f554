#pragma once
// Unlinked scratch files: data a long run keeps out of memory (spilled reference paths, finished
// rows). Nothing is left behind, even after kill -9; the page cache serves rereads at memory speed
// and can drop the pages under pressure.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <sys/types.h>

namespace flowgauge {

// A scratch file could not be created, written or read (a full disk, ulimit -f). The message names
// the directory: "<dir>: cannot write a <what>: File too large".
class ScratchFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An open read-write file in `dir` with no name (O_TMPFILE, else mkstemp + unlink). `what` names
// the contents in errors ("reference-path file").
class ScratchFile {
 public:
  ScratchFile(const std::string& dir, const std::string& what);
  ScratchFile(ScratchFile&&) noexcept;
  ScratchFile& operator=(ScratchFile&&) noexcept;
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  ~ScratchFile();

  // pwrite / pread of all `bytes` at `offset`, retried on EINTR and short counts. Reads are safe
  // from several threads at once.
  void write(const void* p, std::size_t bytes, off_t offset);
  void read(void* p, std::size_t bytes, off_t offset) const;

 private:
  int fd_ = -1;
  std::string dir_, what_;
};

}  // namespace flowgauge
