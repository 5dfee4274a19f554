// h5::AtomicOutput and its write-through file driver (results/h5_vfd.hpp): files read back as
// written, appear only on commit, memory does not grow with the file, and a failed write (here
// ulimit -f) is a WriteError at commit that leaves the previous file as it was and lets HDF5
// close cleanly (the process exits normally).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>

#include <fmt/format.h>
#include <hdf5.h>
#include <filesystem>
#include <string>

#include "analytics/errors.hpp"
#include "results/h5.hpp"

namespace fs = std::filesystem;
using namespace flowgauge;

namespace {

class H5Output : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("flowgauge_h5_" + std::to_string(::getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string path(const std::string& name) const { return (dir / name).string(); }
  std::size_t partials() const {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(".partial-") != std::string::npos;
    return n;
  }
};

// Runs `child` in a forked process; returns its exit status (-1: killed by a signal) and what it
// wrote to `out` (a pipe).
std::pair<int, std::string> in_child(const std::function<int(FILE*)>& child) {
  int fds[2];
  if (::pipe(fds) != 0) return {-2, "pipe"};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    FILE* out = ::fdopen(fds[1], "w");
    const int rc = child(out);
    std::fclose(out);
    std::exit(rc);  // a normal exit: atexit handlers run, HDF5's library shutdown among them
  }
  ::close(fds[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, text};
}

long max_rss_kb() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

TEST_F(H5Output, ReadsBackAsWrittenAndAppearsOnlyOnCommit) {
  std::srand(7);
  const Eigen::MatrixXd big = Eigen::MatrixXd::Random(3, 50000);  // chunked + gzip (h5.cpp: "when large")
  const Eigen::VectorXd small = Eigen::VectorXd::LinSpaced(17, -1, 1);
  {
    h5::AtomicOutput o(path("a.h5"));
    h5::write_matrix(o.file(), "big", big);
    h5::write_vector(o.file(), "small", small);
    h5::write_attr(o.file(), "status", "complete");
    EXPECT_FALSE(fs::exists(path("a.h5")));
    EXPECT_EQ(partials(), 1u);
    o.commit(/*durable=*/true);
  }
  EXPECT_EQ(partials(), 0u);
  auto f = h5::open_file(path("a.h5"));
  EXPECT_EQ(h5::read_matrix(f.get(), "big", "a.h5"), big);  // bitwise: float64 stored as float64
  EXPECT_EQ(h5::read_vector(f.get(), "small", "a.h5"), small);
  EXPECT_EQ(h5::read_string_attr(f.get(), "status"), "complete");
}

// The runner's whole-run extras: written once into a memory file, copied into each output.
TEST_F(H5Output, ObjectsCopiedFromAMemoryFileReadBackAsWrittenAndStayCompressed) {
  std::srand(11);
  const Eigen::MatrixXd big = Eigen::MatrixXd::Random(2, 40000);
  const Eigen::VectorXd small = Eigen::VectorXd::LinSpaced(9, 0, 1);
  const auto image = h5::memory_file();
  {
    h5::Handle g(H5Gcreate2(image.get(), "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    h5::write_matrix(g.get(), "big", big);
    h5::write_vector(g.get(), "small", small);
    h5::write_attr(g.get(), "kind", "extras");
  }
  for (const char* name : {"c1.h5", "c2.h5"}) {  // twice: the image is read, never used up
    h5::AtomicOutput o(path(name));
    h5::copy_object(image.get(), "g", o.file());
    o.commit();
  }
  EXPECT_THROW(h5::copy_object(image.get(), "missing", image.get()), h5::WriteError);
  for (const char* name : {"c1.h5", "c2.h5"}) {
    auto f = h5::open_file(path(name));
    EXPECT_EQ(h5::read_matrix(f.get(), "g/big", name), big);
    EXPECT_EQ(h5::read_vector(f.get(), "g/small", name), small);
    h5::Handle g(H5Gopen2(f.get(), "g", H5P_DEFAULT), H5Gclose);
    EXPECT_EQ(h5::read_string_attr(g.get(), "kind"), "extras");
    h5::Handle d(H5Dopen2(f.get(), "g/big", H5P_DEFAULT), H5Dclose);
    h5::Handle dcpl(H5Dget_create_plist(d.get()), H5Pclose);
    EXPECT_EQ(H5Pget_nfilters(dcpl.get()), 2);  // shuffle + deflate, as write_matrix sets them
  }
  EXPECT_FALSE(fs::exists("flowgauge-memory-" + std::to_string(::getpid()) + "-0"));  // nothing on disk
}

TEST_F(H5Output, WithoutCommitNothingAppears) {
  {
    h5::AtomicOutput o(path("b.h5"));
    h5::write_vector(o.file(), "v", Eigen::VectorXd::Ones(10));
  }
  EXPECT_FALSE(fs::exists(path("b.h5")));
  EXPECT_EQ(partials(), 0u);
}

TEST_F(H5Output, MemoryDoesNotGrowWithTheFile) {
#ifdef FLOWGAUGE_SANITIZED
  GTEST_SKIP() << "ASan's quarantine keeps freed blocks resident: peak RSS says nothing about the driver there";
#endif
  const std::string file = path("m.h5");
  const auto [rc, text] = in_child([&](FILE* out) {
    std::srand(3);
    const Eigen::MatrixXd block = Eigen::MatrixXd::Random(8, 65536);  // 4 MiB, incompressible
    h5::AtomicOutput o(file);
    h5::write_matrix(o.file(), "block_00", block);
    const long before = max_rss_kb();
    for (int i = 1; i < 12; ++i) h5::write_matrix(o.file(), fmt::format("block_{:02d}", i), block);
    o.commit();
    std::fprintf(out, "%ld", max_rss_kb() - before);
    return 0;
  });
  ASSERT_EQ(rc, 0) << text;
  const long growth_kb = std::stol(text);
  const auto size = fs::file_size(file);
  // 12 x 4 MiB of uniform random doubles: byte shuffle + gzip keep 41 MiB (their random mantissas)
  EXPECT_GT(size, std::uintmax_t(36) << 20);
  // An in-memory image would grow by the whole file (>= 36 MiB); written through, by HDF5's
  // chunk cache and a gzip buffer per dataset (1.2 MiB measured with 48 blocks): under 16 MiB.
  EXPECT_LT(growth_kb, 16 * 1024) << "peak RSS grew by " << growth_kb << " kB for a " << (size >> 20) << " MiB file";
}

TEST_F(H5Output, MemoryDoesNotGrowWithTheNumberOfObjects) {
#ifdef FLOWGAUGE_SANITIZED
  GTEST_SKIP() << "ASan's quarantine keeps freed blocks resident: peak RSS says nothing here";
#endif
  // A run file holds a group of small datasets per cell. HDF5 keeps closed objects' headers in its
  // metadata cache, which grows with them, unless told to evict them on close (H5Pset_evict_on_close).
  const std::string file = path("o.h5");
  const auto [rc, text] = in_child([&](FILE* out) {
    const Eigen::VectorXd v = Eigen::VectorXd::LinSpaced(65, 0, 1);
    h5::AtomicOutput o(file);
    auto cells = [&](int from, int to) {
      for (int i = from; i < to; ++i) {
        h5::Handle g(H5Gcreate2(o.file(), fmt::format("{:06d}", i).c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        for (const char* k : {"t", "error_rms_t", "error_max_t", "reference_error_t"}) h5::write_vector(g.get(), k, v);
        if (i % 64 == 0) H5Fflush(o.file(), H5F_SCOPE_LOCAL);  // as write_main does: see there
      }
    };
    cells(0, 500);
    const long before = max_rss_kb();
    cells(500, 8500);
    o.commit();
    std::fprintf(out, "%ld", max_rss_kb() - before);
    return 0;
  });
  ASSERT_EQ(rc, 0) << text;
  const long growth_kb = std::stol(text);
  // Measured for these 32000 datasets: 12.1 MiB kept without eviction, 4.5 MiB with it.
  EXPECT_LT(growth_kb, 8 * 1024) << "peak RSS grew by " << growth_kb << " kB for 8000 groups of 4 datasets";
}

TEST_F(H5Output, AFailedWriteIsAnErrorAtCommitThatKeepsThePreviousFile) {
  const std::string file = path("f.h5");
  {
    h5::AtomicOutput o(file);
    h5::write_attr(o.file(), "which", "previous");
    o.commit();
  }
  const auto [rc, text] = in_child([&](FILE* out) {
    ::signal(SIGXFSZ, SIG_IGN);  // as the runner does: the write fails with EFBIG instead
    const rlimit lim{1 << 20, 1 << 20};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    try {
      h5::AtomicOutput o(file);
      h5::write_attr(o.file(), "which", "new");
      std::srand(5);
      h5::write_matrix(o.file(), "big", Eigen::MatrixXd::Random(8, 65536));  // 4 MiB > 1 MiB
      o.commit();
    } catch (const h5::WriteError& err) {
      std::fputs(err.what(), out);
      return 0;
    }
    std::fputs("commit did not throw", out);
    return 3;
  });
  ASSERT_EQ(rc, 0) << "the child crashed or did not see the error: " << text;
  EXPECT_NE(text.find(file), std::string::npos) << text;
  EXPECT_NE(text.find("File too large"), std::string::npos) << text;
  EXPECT_EQ(partials(), 0u);
  auto f = h5::open_file(file);
  EXPECT_EQ(h5::read_string_attr(f.get(), "which"), "previous");
}

TEST_F(H5Output, CloseThenCommitAndAFailedCloseIsNotCommittedLater) {
  // The runner closes a cell file under the HDF5 lock and commits it (fsync, rename) after it.
  {
    h5::AtomicOutput o(path("c.h5"));
    h5::write_attr(o.file(), "which", "closed first");
    o.close();
    EXPECT_FALSE(fs::exists(path("c.h5")));
    o.commit(/*durable=*/true);
  }
  EXPECT_EQ(h5::read_string_attr(h5::open_file(path("c.h5")).get(), "which"), "closed first");
  const std::string file = path("g.h5");
  {
    h5::AtomicOutput o(file);
    h5::write_attr(o.file(), "which", "previous");
    o.commit();
  }
  const auto [rc, text] = in_child([&](FILE* out) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit lim{1 << 20, 1 << 20};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    h5::AtomicOutput o(file);
    h5::write_attr(o.file(), "which", "new");
    std::srand(5);
    h5::write_matrix(o.file(), "big", Eigen::MatrixXd::Random(8, 65536));  // 4 MiB > 1 MiB
    std::string first;
    try {
      o.close();
    } catch (const h5::WriteError& err) {
      first = err.what();
    }
    try {
      o.commit();  // must not rename the failed file into place
    } catch (const h5::WriteError& err) {
      std::fprintf(out, "%s\n%s", first.c_str(), err.what());
      return first.empty() ? 4 : 0;
    }
    std::fputs("commit after a failed close did not throw", out);
    return 3;
  });
  ASSERT_EQ(rc, 0) << text;
  EXPECT_NE(text.find("File too large"), std::string::npos) << text;
  EXPECT_EQ(text.substr(0, text.find('\n')), text.substr(text.find('\n') + 1)) << "the same error both times";
  EXPECT_EQ(partials(), 0u);
  EXPECT_EQ(h5::read_string_attr(h5::open_file(file).get(), "which"), "previous");
}

}  // namespace
