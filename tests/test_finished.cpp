// A run's finished rows (experiments/finished.hpp): records in a scratch file read back exactly as
// given (every double bit pattern, any string), by increasing id whatever the order they came in;
// the main file's cells table written a block at a time equals the rows; a full disk (ulimit -f)
// keeps the records past the limit in memory, still exact; malformed rows are refused before anything is added.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>

#include <hdf5.h>

#include "experiments/finished.hpp"
#include "results/h5.hpp"
#include "results/table.hpp"

namespace fs = std::filesystem;
using namespace flowgauge;
using flowgauge::IdSet;
using flowgauge::detail::Finished;

namespace {

class FinishedRows : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("flowgauge_finished_" + std::to_string(::getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
};

// Row of cell `id`: doubles with awkward bit patterns, an integer, strings of any length (a status
// that is not "ok" every 7th cell).
Table row_of(int id) {
  Table t;
  const double specials[] = {-0.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::denorm_min(), 1e308};
  t.col<std::string>("solver").push_back(id % 3 ? "dpmpp_2m" : "unipc(order=3, variant=bh2)");
  t.col<double>("error_rms").push_back(id % 5 == 0 ? specials[(id / 5) % 5] : 1.0 / (id + 1));
  t.col<long long>("steps").push_back(-7LL * id);
  t.col<std::string>("status").push_back(id % 7 ? "ok" : "failed: " + std::string(std::size_t(id % 40), 'x'));
  t.col<std::string>("note").push_back("");
  return t;
}

// Bitwise equality of two tables (NaN == NaN, -0 != +0).
void expect_same(const Table& a, const Table& b) {
  ASSERT_EQ(a.names, b.names);
  for (std::size_t c = 0; c < a.names.size(); ++c) {
    ASSERT_EQ(a.columns[c].index(), b.columns[c].index()) << a.names[c];
    if (const auto* x = std::get_if<std::vector<double>>(&a.columns[c])) {
      const auto& y = std::get<std::vector<double>>(b.columns[c]);
      ASSERT_EQ(x->size(), y.size());
      EXPECT_EQ(std::memcmp(x->data(), y.data(), x->size() * 8), 0) << a.names[c];
    } else {
      EXPECT_TRUE(a.columns[c] == b.columns[c]) << a.names[c];
    }
  }
}

// Every row of `ids`, in that order.
Table rows_of(const std::vector<int>& ids) {
  Table t;
  for (int id : ids) append_rows(t, row_of(id));
  return t;
}

// expect_same for a forked child (no gtest there): same names, doubles bitwise, the rest equal.
bool identical(const Table& got, const Table& want) {
  bool same = got.names == want.names;
  for (std::size_t c = 0; same && c < got.names.size(); ++c)
    if (const auto* x = std::get_if<std::vector<double>>(&got.columns[c])) {
      const auto* y = std::get_if<std::vector<double>>(&want.columns[c]);
      same = y && x->size() == y->size() && std::memcmp(x->data(), y->data(), x->size() * 8) == 0;
    } else {
      same = got.columns[c] == want.columns[c];
    }
  return same;
}

// ids 0..n-1 except every 3rd, in a shuffled order.
std::vector<int> shuffled_ids(int n) {
  std::vector<int> ids;
  for (int id = 0; id < n; ++id)
    if (id % 3 != 1) ids.push_back(id);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(7));
  return ids;
}

TEST_F(FinishedRows, FileAndMemoryStoresGiveTheRowsBackByIdExactly) {
  const int n = 300;
  Finished file(n, dir.string()), memory(n);
  auto ids = shuffled_ids(n);
  for (int id : ids) {
    EXPECT_TRUE(file.emplace(id, row_of(id)));
    EXPECT_TRUE(memory.emplace(id, row_of(id)));
  }
  EXPECT_FALSE(file.emplace(ids.front(), row_of(ids.front()))) << "a cell is added once";
  EXPECT_EQ(file.records_in_memory(), 0u) << "every record went to the file";
  EXPECT_EQ(memory.records_in_memory(), ids.size());
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::vector<int>(file.ids().begin(), file.ids().end()), ids);
  EXPECT_EQ(file.size(), ids.size());
  EXPECT_TRUE(file.count(0));
  EXPECT_FALSE(file.count(1));
  EXPECT_FALSE(file.count(n));
  EXPECT_FALSE(file.count(-1));
  std::size_t failed = 0;
  for (int id : ids) failed += id % 7 != 0 ? 0 : 1;
  EXPECT_EQ(file.failed(), failed);
  expect_same(file.rows(0, n), rows_of(ids));
  expect_same(memory.rows(0, n), rows_of(ids));
  expect_same(file.row(45), row_of(45));
  // a range, and a subset of the columns (in the store's order)
  std::vector<int> some;
  for (int id : ids)
    if (id >= 100 && id < 130) some.push_back(id);
  const Table part = file.rows(100, 130, {"steps", "solver", "absent"});
  const Table all = rows_of(some);
  ASSERT_EQ(part.names, (std::vector<std::string>{"solver", "steps"}));
  EXPECT_TRUE(part.columns[0] == all.columns[0]);
  EXPECT_TRUE(part.columns[1] == all.columns[2]);
  EXPECT_EQ(file.rows(1, 2).rows(), 0u);
}

TEST_F(FinishedRows, ColumnsMayComeInAnyOrderButNotOtherColumns) {
  Finished f(10, dir.string());
  ASSERT_TRUE(f.emplace(0, row_of(0)));
  Table reordered;  // the same columns, another order
  const Table r = row_of(1);
  for (std::size_t c = r.names.size(); c-- > 0;) {
    reordered.names.push_back(r.names[c]);
    reordered.columns.push_back(r.columns[c]);
  }
  ASSERT_TRUE(f.emplace(1, reordered));
  expect_same(f.row(1), row_of(1));
  Table extra = row_of(2);
  extra.col<double>("more").push_back(1);
  EXPECT_THROW(f.emplace(2, extra), std::logic_error);
  Table retyped = row_of(3);
  retyped.columns[2] = std::vector<double>{1.0};  // steps as a double
  EXPECT_THROW(f.emplace(3, retyped), std::logic_error);
  Table two = row_of(4);
  append_rows(two, row_of(5));
  EXPECT_THROW(f.emplace(4, two), std::logic_error);
  EXPECT_THROW(f.emplace(10, row_of(10)), std::logic_error) << "outside the plan";
  EXPECT_THROW(f.emplace(-1, row_of(0)), std::logic_error);
  EXPECT_EQ(f.size(), 2u) << "nothing added by a refused row";
  EXPECT_EQ(std::vector<int>(f.ids().begin(), f.ids().end()), (std::vector<int>{0, 1}));
}

// The cells table as write() leaves it, over several blocks and a partial last one, equals the rows.
TEST_F(FinishedRows, WrittenTableEqualsTheRowsAcrossBlocks) {
  const int n = static_cast<int>(Finished::kBlock) * 3;  // 2/3 of the cells finished: two full blocks and a part
  Finished f(n, dir.string());
  auto ids = shuffled_ids(n);
  for (int id : ids) f.emplace(id, row_of(id));
  const std::string file = (dir / "t.h5").string();
  {
    h5::AtomicOutput out(file);
    f.write(out.file(), "cells");
    Finished(n).write(out.file(), "empty");
    out.commit();
  }
  auto h = h5::open_file(file);
  const Table back = read_table(h.get(), "cells");
  std::sort(ids.begin(), ids.end());
  const Table want = rows_of(ids);
  // read_table lists the columns by name
  for (std::size_t c = 0; c < want.names.size(); ++c) {
    const auto k = static_cast<std::size_t>(std::find(back.names.begin(), back.names.end(), want.names[c]) - back.names.begin());
    ASSERT_LT(k, back.names.size()) << want.names[c];
    Table a, b;
    a.names = b.names = {want.names[c]};
    a.columns = {want.columns[c]};
    b.columns = {back.columns[k]};
    expect_same(b, a);
  }
  EXPECT_EQ(read_table(h.get(), "empty").rows(), 0u);
}

// ulimit -f: the file takes the records that fit (a cell's record is at its rank among the store's
// cells x 40 bytes), the rest stay in memory, and all read back exactly.
TEST_F(FinishedRows, RecordsTheFileRefusesStayInMemory) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // the write fails with EFBIG instead
    const rlimit rl{4096, 4096};  // 4096 / (5 columns x 8 bytes): cells 0 .. 101 fit
    ::setrlimit(RLIMIT_FSIZE, &rl);
    Finished f(300, dir.string());
    auto ids = shuffled_ids(300);
    for (int id : ids) f.emplace(id, row_of(id));
    const auto past = std::count_if(ids.begin(), ids.end(), [](int id) { return id >= 102; });  // ends past 4096 bytes
    const bool spilled = f.records_in_memory() == static_cast<std::size_t>(past);
    std::sort(ids.begin(), ids.end());
    const bool same = identical(f.rows(0, 300), rows_of(ids));
    // A shard's cells (every 7th of 3000): records sit at their rank among them, so the first 102
    // of the shard fit, not cells 0 .. 101 of the plan.
    IdSet shard(3000);
    std::vector<int> mine;
    for (int id = 0; id < 3000; id += 7) {
      shard.insert(id);
      mine.push_back(id);
    }
    Finished g(shard, dir.string());
    auto order = mine;
    std::shuffle(order.begin(), order.end(), std::mt19937(11));
    for (int id : order) g.emplace(id, row_of(id));
    const bool dense = g.records_in_memory() == mine.size() - 102;
    const bool same_shard = identical(g.rows(0, 3000), rows_of(mine));
    ::_exit(!spilled ? 1 : !same ? 2 : !dense ? 3 : !same_shard ? 4 : 0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_NE(WEXITSTATUS(status), 1) << "not cells 0 .. 101 in the file and the rest in memory";
  EXPECT_NE(WEXITSTATUS(status), 2) << "the rows did not read back exactly";
  EXPECT_NE(WEXITSTATUS(status), 3) << "a shard's records are not at their rank among its cells";
  EXPECT_NE(WEXITSTATUS(status), 4) << "the shard's rows did not read back exactly";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
