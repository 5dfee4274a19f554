// The sweep runner (`flowgauge run FILE.toml`) end to end: plan expansion and filters, validation
// (exit status 2, file:line:col: key, nothing written), the results schema, resume after kill -9,
// determinism across thread counts, and refusing an output that belongs to another experiment.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include <functional>

#include "analytics/gaussian_flow.hpp"
#include "analytics/mixture_io.hpp"
#include "analytics/order_fit.hpp"
#include "analytics/schedule.hpp"
#include "experiments/config.hpp"
#include "experiments/id_set.hpp"
#include "results/h5.hpp"
#include "results/table.hpp"
#include "solvers/grid.hpp"
#include "solvers/solver.hpp"
#include "tests/process.hpp"

namespace fs = std::filesystem;
using namespace flowgauge;

namespace {

using flowgauge::testing::kBinary;
using flowgauge::testing::sanitizer_scaled;
using flowgauge::testing::Run;
using flowgauge::testing::run;
using flowgauge::testing::run_peak_rss;

using flowgauge::testing::replace_all;

class Runner : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');  // parameterized: "Test/case", one directory
    dir = fs::temp_directory_path() / ("flowgauge_runner_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string path(const std::string& name) const { return (dir / name).string(); }
  // Writes an experiment file; {DIR} becomes the test directory.
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name) << replace_all(text, "{DIR}", dir.string());
    return path(name);
  }
  // Every file below dir except the experiment files (*.toml).
  std::vector<std::string> written() const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.path().extension() != ".toml") out.push_back(e.path().string());
    return out;
  }
};

// ---- reading results ----

long long int_attr(hid_t loc, const std::string& name) {
  h5::Handle a(H5Aopen(loc, name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!a) throw std::runtime_error("no attribute " + name);
  h5::Handle t(H5Aget_type(a.get()), H5Tclose);
  if (H5Tget_class(t.get()) != H5T_INTEGER) throw std::runtime_error("attribute " + name + " is not an integer");
  long long v = 0;
  H5Aread(a.get(), H5T_NATIVE_LLONG, &v);
  return v;
}

H5T_class_t attr_class(hid_t loc, const std::string& name) {
  h5::Handle a(H5Aopen(loc, name.c_str(), H5P_DEFAULT), H5Aclose);
  h5::Handle t(H5Aget_type(a.get()), H5Tclose);
  return H5Tget_class(t.get());
}

std::vector<std::string> group_members(hid_t loc, const std::string& group) {
  h5::Handle g(H5Gopen2(loc, group.c_str(), H5P_DEFAULT), H5Gclose);
  std::vector<std::string> out;
  if (!g) return out;
  H5G_info_t info;
  H5Gget_info(g.get(), &info);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    char nm[512];
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nm, sizeof nm, H5P_DEFAULT);
    out.emplace_back(nm);
  }
  return out;
}

template <class T> const std::vector<T>& column(const Table& t, const std::string& name) {
  const auto it = std::find(t.names.begin(), t.names.end(), name);
  if (it == t.names.end()) throw std::runtime_error("no column " + name);
  return std::get<std::vector<T>>(t.columns[it - t.names.begin()]);
}

std::uint64_t bits(double x) {
  std::uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// Same column names, types and values; doubles bitwise (NaN == NaN of the same bits).
void expect_same_table(const Table& a, const Table& b, const std::set<std::string>& skip = {}) {
  ASSERT_EQ(std::set<std::string>(a.names.begin(), a.names.end()), std::set<std::string>(b.names.begin(), b.names.end()));
  ASSERT_EQ(a.rows(), b.rows());
  for (std::size_t i = 0; i < a.names.size(); ++i) {
    const auto& name = a.names[i];
    if (skip.count(name)) continue;
    const auto& cb = b.columns[std::find(b.names.begin(), b.names.end(), name) - b.names.begin()];
    ASSERT_EQ(a.columns[i].index(), cb.index()) << "column " << name << " changed type";
    if (const auto* da = std::get_if<std::vector<double>>(&a.columns[i])) {
      const auto& db = std::get<std::vector<double>>(cb);
      for (std::size_t r = 0; r < da->size(); ++r)
        EXPECT_EQ(bits((*da)[r]), bits(db[r])) << "column " << name << " row " << r << ": " << (*da)[r] << " vs " << db[r];
    } else {
      EXPECT_TRUE(a.columns[i] == cb) << "column " << name;
    }
  }
}

// /cell_arrays/<id>/<name> of one file, bitwise.
std::map<std::string, std::vector<std::uint64_t>> cell_arrays(hid_t f, const std::string& file) {
  std::map<std::string, std::vector<std::uint64_t>> out;
  for (const auto& id : group_members(f, "cell_arrays"))
    for (const auto& k : group_members(f, "cell_arrays/" + id)) {
      const Eigen::VectorXd v = h5::read_vector(f, "cell_arrays/" + id + "/" + k, file);
      auto& o = out[id + "/" + k];
      for (double x : v) o.push_back(bits(x));
    }
  return out;
}

// A run file's cell table, orders and per-cell arrays.
struct RunFile {
  Table cells, orders;
  std::map<std::string, std::vector<std::uint64_t>> arrays;
  std::string status;
};

RunFile read_run(const std::string& file) {
  auto f = h5::open_file(file);
  return {read_table(f.get(), "cells"), read_table(f.get(), "orders"), cell_arrays(f.get(), file),
          h5::read_string_attr(f.get(), "status")};
}

// ---- 1. plan expansion and filters ----

// 2 data x 2 schedules x (2 names x 2 coordinates + 1 name x 2 orders x 2 variants) solvers x 2 grids
// x 3 steps x 2 seeds.
const char* kLists = R"TOML(name = "lists"
output = "{DIR}/lists.h5"
particles = 32
steps = [4, 8, 16]
seeds = [1, 7]

[data]
g8 = { preset = "gmm8-2d" }
one = { preset = "gaussian", dim = 2 }

[schedules]
vp = { name = "vp-linear" }
edm = { name = "edm" }

[[grids]]
kind = "logsnr"

[[grids]]
kind = "edm"
rho = 7

[[solvers]]
name = ["euler", "heun"]
coordinates = ["t", "ve"]

[[solvers]]
name = "unipc"
order = [1, 2]
variant = ["bh1", "bh2"]
)TOML";

// heun at 4 steps (either coordinates), and every cell of seed 7 on the edm grid of data "one"
const char* kListsExcludes = R"TOML(
[[exclude]]
solver = "heun"
steps = 4

[[exclude]]
data = "one"
grid = "edm"
seed = 7
)TOML";

// (data, schedule, solver label, grid label, steps, seed) of a cell, for comparing plans by key.
using Key = std::tuple<std::string, std::string, std::string, std::string, int, std::uint64_t>;
Key key_of(const Experiment& e, const Cell& c) {
  return {e.data[c.data].name, e.schedules[c.schedule].name, e.solvers[c.solver].label, e.grids[c.grid].label, c.steps, c.seed};
}
std::set<Key> keys_where(const Experiment& e, const std::function<bool(const Cell&)>& keep) {
  std::set<Key> out;
  for (const auto& c : e.cells)
    if (keep(c)) out.insert(key_of(e, c));
  return out;
}

// The plan keeps one bit per combination (experiments/plan.hpp); its select and its iterator
// against a plain list of the kept positions and cells decoded by nested loops.
void expect_plan_matches_list(int data, int schedules, int solvers, const std::vector<int>& expl, const std::vector<int>& steps,
                              const std::vector<std::uint64_t>& seeds) {
  std::vector<Cell> all;  // by position, seed fastest
  for (int d = 0; d < data; ++d)
    for (int s = 0; s < schedules; ++s)
      for (int v = 0; v < solvers; ++v)
        for (int g = 0; g < int(expl.size()); ++g)
          for (int n : steps)
            for (auto seed : seeds) all.push_back({0, d, s, v, g, expl[g] >= 0 ? expl[g] : n, seed});
  std::mt19937_64 rng(3);
  // random densities, and patterns that leave whole words and whole 512-position blocks empty
  const std::vector<std::function<bool(std::size_t)>> patterns = {
      [](std::size_t) { return false; },
      [&](std::size_t) { return std::uniform_real_distribution<double>(0, 1)(rng) < 0.01; },
      [&](std::size_t p) { return std::uniform_real_distribution<double>(0, 1)(rng) < 0.5 || (p >= 512 && p < 640); },
      [&](std::size_t) { return std::uniform_real_distribution<double>(0, 1)(rng) < 0.97; },
      [](std::size_t) { return true; },
      [](std::size_t p) { return p >= 512 && p % 3 == 0; },
      [&](std::size_t p) { return p + 1 == all.size() || p == 70; },
  };
  for (std::size_t k = 0; k < patterns.size(); ++k) {
    Plan plan(std::size_t(data), std::size_t(schedules), std::size_t(solvers), expl, steps, seeds);
    ASSERT_EQ(plan.positions(), all.size());
    std::vector<std::size_t> kept;
    for (std::size_t p = 0; p < all.size(); ++p)
      if (patterns[k](p)) {
        kept.push_back(p);
        plan.keep(p);
      }
    plan.freeze();
    ASSERT_EQ(plan.size(), kept.size()) << "pattern " << k;
    auto same = [&](const Cell& c, std::size_t id) {
      const Cell& w = all[kept[id]];
      return c.id == int(id) && c.data == w.data && c.schedule == w.schedule && c.solver == w.solver && c.grid == w.grid &&
             c.steps == w.steps && c.seed == w.seed;
    };
    for (std::size_t id = 0; id < kept.size(); ++id) {
      ASSERT_EQ(plan.position(id), kept[id]) << "pattern " << k << " id " << id;
      ASSERT_TRUE(same(plan[id], id)) << "pattern " << k << " id " << id;
    }
    for (std::size_t p = 0, before = 0; p <= all.size(); ++p) {  // rank: kept positions before p
      ASSERT_EQ(plan.rank(p), before) << "pattern " << k << " position " << p;
      const bool in = before < kept.size() && kept[before] == p;
      ASSERT_EQ(plan.kept(p), in) << "pattern " << k << " position " << p;
      before += in;
    }
    // the same ids as an IdSet, inserted in a shuffled order
    IdSet set(all.size());
    auto shuffled = kept;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    for (auto p : shuffled) ASSERT_TRUE(set.insert(static_cast<long long>(p)));
    if (!kept.empty()) {
      EXPECT_FALSE(set.insert(static_cast<long long>(kept[0]))) << "already there";
    }
    EXPECT_EQ(set.size(), kept.size());
    EXPECT_EQ(std::vector<std::size_t>(set.begin(), set.end()), kept) << "pattern " << k;
    for (std::size_t p = 0, i = 0; p <= all.size(); ++p) {
      while (i < kept.size() && kept[i] < p) ++i;
      ASSERT_EQ(set.next(p), i < kept.size() ? kept[i] : all.size()) << "pattern " << k << " from " << p;
      ASSERT_EQ(set.contains(static_cast<long long>(p)), i < kept.size() && kept[i] == p);
    }
    EXPECT_FALSE(set.contains(-1));
    EXPECT_THROW(set.insert(static_cast<long long>(all.size())), std::out_of_range);
    std::size_t id = 0;
    for (auto it = plan.begin(); it != plan.end(); ++it, ++id) {
      ASSERT_EQ(it.position(), kept[id]) << "pattern " << k;
      ASSERT_TRUE(same(*it, id)) << "pattern " << k;
    }
    EXPECT_EQ(id, kept.size());
    EXPECT_THROW((void)plan.position(kept.size()), std::out_of_range);
    EXPECT_THROW(plan.keep(0), std::logic_error);  // after freeze(): the counts would be stale
  }
}

TEST(Plan, SelectRankAndIterationAgreeWithAListOfTheKeptPositions) {
  // 1080 positions: 17 words, the last 512-position block partial; grid 1 explicit (6 steps)
  expect_plan_matches_list(3, 2, 5, {-1, 6, -1}, {4, 8, 16}, {9, 2, 5, 11});
  // 1024 positions: exactly two blocks of 8 words
  expect_plan_matches_list(2, 2, 4, {-1}, {4, 8, 16, 32}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
}

TEST_F(Runner, PlanIsTheFullCartesianProductInDeterministicOrder) {
  const Experiment e = load_experiment(write("lists.toml", kLists));
  ASSERT_EQ(e.solvers.size(), 8u);
  std::set<std::string> labels;
  for (const auto& s : e.solvers) labels.insert(s.label);
  EXPECT_EQ(labels, (std::set<std::string>{"euler(coordinates=t)", "euler(coordinates=ve)", "heun(coordinates=t)",
                                           "heun(coordinates=ve)", "unipc(order=1, variant=bh1)", "unipc(order=1, variant=bh2)",
                                           "unipc(order=2, variant=bh1)", "unipc(order=2, variant=bh2)"}));
  const std::size_t n = 2 * 2 * 8 * 2 * 3 * 2;
  EXPECT_EQ(e.cells_before_filters, n);
  ASSERT_EQ(e.cells.size(), n);
  std::set<Key> keys;
  std::set<std::string> cell_keys;
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(e.cells[i].id, int(i));
    keys.insert(key_of(e, e.cells[i]));
    cell_keys.insert(e.cell_key(e.cells[i]));
  }
  EXPECT_EQ(keys.size(), n);       // every combination once
  EXPECT_EQ(cell_keys.size(), n);  // and the canonical keys tell them apart
  // data outermost, seed innermost; [data] and [schedules] are TOML tables (unordered: by label),
  // [[solvers]] and [[grids]] arrays (file order)
  EXPECT_EQ(key_of(e, e.cells[0]), Key("g8", "edm", "euler(coordinates=t)", "logsnr", 4, 1));
  EXPECT_EQ(key_of(e, e.cells[1]), Key("g8", "edm", "euler(coordinates=t)", "logsnr", 4, 7));
  EXPECT_EQ(key_of(e, e.cells[2]), Key("g8", "edm", "euler(coordinates=t)", "logsnr", 8, 1));
  EXPECT_EQ(key_of(e, e.cells[6]), Key("g8", "edm", "euler(coordinates=t)", "edm(rho=7)", 4, 1));
  EXPECT_EQ(key_of(e, e.cells[12]), Key("g8", "edm", "euler(coordinates=ve)", "logsnr", 4, 1));
  EXPECT_EQ(key_of(e, e.cells[n - 1]), Key("one", "vp", "unipc(order=2, variant=bh2)", "edm(rho=7)", 16, 7));
  // the plan hash identifies the plan: the same file gives the same hash, another step list another
  EXPECT_EQ(load_experiment(path("lists.toml")).plan_hash, e.plan_hash);
  EXPECT_NE(load_experiment(write("other.toml", replace_all(kLists, "[4, 8, 16]", "[4, 8, 32]"))).plan_hash, e.plan_hash);
}

TEST_F(Runner, ExcludeRemovesExactlyTheMatchingCells) {
  const Experiment full = load_experiment(write("lists.toml", kLists));
  const Experiment e = load_experiment(write("x.toml", std::string(kLists) + kListsExcludes));
  EXPECT_EQ(e.cells_before_filters, full.cells.size());
  const auto expect = keys_where(full, [&](const Cell& c) {
    const bool a = full.solvers[c.solver].name == "heun" && c.steps == 4;
    const bool b = full.data[c.data].name == "one" && full.grids[c.grid].spec.kind == "edm" && c.seed == 7;
    return !a && !b;
  });
  ASSERT_LT(expect.size(), full.cells.size());
  EXPECT_EQ(keys_where(e, [](const Cell&) { return true; }), expect);
  for (std::size_t i = 0; i < e.cells.size(); ++i) EXPECT_EQ(e.cells[i].id, int(i));  // ids renumbered densely
}

TEST_F(Runner, OnlyKeepsCellsMatchingAnyOnlyTable) {
  const Experiment full = load_experiment(write("lists.toml", kLists));
  // [[only]] tables are alternatives; keys inside one table must all match; a list is any-of; a
  // full solver label and a solver option (coordinates) select too.
  const Experiment e = load_experiment(write("o.toml", std::string(kLists) + R"TOML(
[[only]]
schedule = "edm"
coordinates = "ve"

[[only]]
solver = ["unipc(order=2, variant=bh1)"]
steps = [8, 16]
)TOML"));
  const auto expect = keys_where(full, [&](const Cell& c) {
    const auto& s = full.solvers[c.solver];
    const bool a = full.schedules[c.schedule].name == "edm" && s.options.count("coordinates") && s.options.at("coordinates") == "ve";
    const bool b = s.label == "unipc(order=2, variant=bh1)" && (c.steps == 8 || c.steps == 16);
    return a || b;
  });
  EXPECT_EQ(expect.size(), 2u * 1 * 2 * 2 * 3 * 2 + 2u * 2 * 1 * 2 * 2 * 2);
  EXPECT_EQ(keys_where(e, [](const Cell&) { return true; }), expect);
  EXPECT_EQ(e.cells_before_filters, full.cells.size());
}

TEST_F(Runner, DryRunPrintsThePlanSizeAndWritesNothing) {
  const auto file = write("lists.toml", kLists);
  auto r = run("run " + file + " --dry-run");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("384 cells (384 before exclude/only)"), std::string::npos) << r.output;
  EXPECT_TRUE(written().empty()) << written().front();
}

// ---- 2. validation: exit 2, file:line:col: key, nothing written ----

const char* kValid = R"TOML(name = "v"
output = "{DIR}/o.h5"
particles = 32
steps = [4, 8]

[data]
g = { preset = "gmm8-2d" }

[schedules]
vp = { name = "vp-linear" }

[[grids]]
kind = "logsnr"

[[solvers]]
name = "euler"
)TOML";

struct BadCase {
  const char* name;
  const char* from;    // replaced in kValid (empty: append `to`)
  const char* to;
  const char* where;   // "line:col" expected after "e.toml:"
  const char* key;     // the key named after it
  const char* expect;  // further substring of the message
  const char* from2 = "";  // a second replacement
  const char* to2 = "";
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }  // test names without raw bytes

class RunnerBadInput : public Runner, public ::testing::WithParamInterface<BadCase> {};

TEST_P(RunnerBadInput, ExitTwoNamesFileLineColumnKeyAndWritesNothing) {
  const auto& c = GetParam();
  std::string text = kValid;
  if (*c.from) {
    ASSERT_NE(text.find(c.from), std::string::npos) << c.from;
    text = replace_all(text, c.from, c.to);
  } else {
    text += c.to;
  }
  if (*c.from2) {
    ASSERT_NE(text.find(c.from2), std::string::npos) << c.from2;
    text = replace_all(text, c.from2, c.to2);
  }
  const auto file = write("e.toml", text);
  auto r = run("run " + file);
  EXPECT_EQ(r.status, 2) << r.output;
  const std::string at = file + ":" + c.where + ": " + c.key;
  EXPECT_NE(r.output.find(at), std::string::npos) << "expected '" << at << "' in: " << r.output;
  EXPECT_NE(r.output.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << r.output;
  EXPECT_FALSE(fs::exists(path("o.h5")));
  EXPECT_FALSE(fs::exists(path("o.h5.cells")));
  for (const auto& w : written()) ADD_FAILURE() << "written: " << w;
}

INSTANTIATE_TEST_SUITE_P(
    Classes, RunnerBadInput,
    ::testing::Values(
        BadCase{"syntax", "[[grids]]", "[[grids]", "12:9", "TOML syntax error", ""},
        BadCase{"unknown_key", "particles = 32", "particle = 32", "3:12", "particle", "unknown key (did you mean 'particles'?)"},
        BadCase{"unknown_nested_key", "kind = \"logsnr\"", "kind = \"logsnr\"\nrhoo = 3", "14:8", "grids[0].rhoo",
                "did you mean 'rho'"},
        BadCase{"wrong_type", "particles = 32", "particles = \"many\"", "3:13", "particles", "expected an integer, got a string"},
        BadCase{"wrong_type_in_list", "steps = [4, 8]", "steps = [4, 8.5]", "4:13", "steps", "expected an integer, got a float"},
        BadCase{"unknown_solver", "name = \"euler\"", "name = \"eulr\"", "16:8", "solvers[0].name", "did you mean 'euler'"},
        BadCase{"unknown_schedule", "name = \"vp-linear\"", "name = \"vp-linaer\"", "10:15", "schedules.vp.name",
                "did you mean 'vp-linear'"},
        BadCase{"unknown_schedule_parameter", "name = \"vp-linear\"", "name = \"vp-linear\", betamax = 3", "10:38", "schedules.vp.betamax",
                "unknown parameter 'betamax'"},
        BadCase{"unknown_solver_option", "name = \"euler\"", "name = \"euler\"\ncoordinate = \"ve\"", "17:14",
                "solvers[0].coordinate", "unknown option 'coordinate' (did you mean 'coordinates'?)"},
        BadCase{"bad_solver_option_value", "name = \"euler\"", "name = \"euler\"\ncoordinates = \"vee\"", "17:15",
                "solvers[0].coordinates", "must be one of"},
        BadCase{"unknown_metric", "particles = 32", "particles = 32\nmetrics = [\"error\", \"distribtion\"]", "4:21", "metrics",
                "unknown metric 'distribtion' (did you mean 'distribution'?)"},
        BadCase{"unknown_grid", "kind = \"logsnr\"", "kind = \"logsrn\"", "13:8", "grids[0].kind", "did you mean 'logsnr'"},
        BadCase{"zero_particles", "particles = 32", "particles = 0", "3:13", "particles", "0 is out of range"},
        BadCase{"zero_steps", "steps = [4, 8]", "steps = [4, 0]", "4:13", "steps", "0 is out of range"},
        BadCase{"negative_spill", "particles = 32", "particles = 32\nreference = { spill_mb = -1 }", "4:26", "reference.spill_mb",
                "must be >= 0"},
        BadCase{"negative_steps", "steps = [4, 8]", "steps = -3", "4:9", "steps", "-3 is out of range"},
        BadCase{"missing_required", "steps = [4, 8]\n", "", "1:1", "steps", "missing (required)"},
        BadCase{"missing_data_file", "g = { preset = \"gmm8-2d\" }", "g = { file = \"nope.toml\" }", "7:14", "data.g.file",
                "no such file"},
        BadCase{"unknown_preset", "g = { preset = \"gmm8-2d\" }", "g = { preset = \"gmm8-2b\" }", "7:16", "data.g.preset",
                "did you mean 'gmm8-2d'"},
        BadCase{"inline_dimension_mismatch", "g = { preset = \"gmm8-2d\" }",
                "g = { dim = 2, component = [{ mean = [0.0, 0.0, 1.0], cov = 1.0 }] }", "7:38", "data.g.component[0].mean",
                "has length 3, but dim = 2"},
        BadCase{"inline_indefinite_covariance", "g = { preset = \"gmm8-2d\" }",
                "g = { component = [{ mean = [0.0, 0.0], cov = [[1.0, 2.0], [2.0, 1.0]] }] }", "7:47",
                "data.g.component[0].cov", "not positive semidefinite"},
        BadCase{"inline_unknown_key", "g = { preset = \"gmm8-2d\" }", "g = { component = [{ mean = [0.0, 0.0], covv = 1.0 }] }",
                "7:48", "data.g.component[0].covv", "did you mean 'cov'"},
        BadCase{"grid_not_on_schedule", "vp = { name = \"vp-linear\" }", "vp = { name = \"ve\" }", "12:1", "grids[0]",
                "final_step = denoise needs a schedule that reaches sigma = 0; ve does not", "kind = \"logsnr\"",
                "kind = \"logsnr\"\nfinal_step = \"denoise\""},
        BadCase{"distribution_needs_particles", "particles = 32", "particles = 16\nmetrics = [\"distribution\"]", "3:13",
                "particles", "the distribution metric needs particles >= 20"},
        BadCase{"curvature_needs_logsnr_grid", "vp = { name = \"vp-linear\" }\n\n[[grids]]\nkind = \"logsnr\"",
                "vp = { name = \"fm-linear\", t_hi = 1.0 }\n\n[[grids]]\nkind = \"uniform\"", "11:6", "schedules.vp",
                "the curvature metric needs a logsnr grid", "particles = 32", "particles = 32\nmetrics = [\"curvature\"]"},
        BadCase{"filter_leaves_nothing", "", "\n[[only]]\nsteps = 4\n[[exclude]]\nsolver = \"euler\"\n", "1:1", "exclude/only",
                "leave no cell"},
        BadCase{"filter_unknown_step_count", "", "\n[[only]]\nsteps = 16\n", "19:9", "only[0].steps",
                "'16' matches no steps of the plan"},
        BadCase{"filter_unknown_key", "", "\n[[exclude]]\nstep = 4\n", "19:8", "exclude[0].step", "did you mean 'steps'"},
        BadCase{"filter_unknown_value", "", "\n[[exclude]]\nsolver = \"eulr\"\n", "19:10", "exclude[0].solver",
                "did you mean 'euler'"}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- 3. schema ----

// 2 solvers x 2 step counts on one data set / schedule / grid / seed, with the distribution metric.
const char* kSmall = R"TOML(name = "small"
output = "{DIR}/s.h5"
particles = 48
steps = [4, 8]
seeds = [3]
metrics = ["error", "distribution"]

[data]
g = { preset = "gmm8-2d" }

[schedules]
vp = { name = "vp-linear" }

[[grids]]
kind = "logsnr"

[[solvers]]
name = ["euler", "heun"]
)TOML";

enum Type { kInt, kFloat, kString };
// results/README.md "Cell columns", with the types it documents.
const std::vector<std::pair<std::string, Type>> kCellColumns = {
    {"cell_id", kInt}, {"data", kString}, {"dim", kInt}, {"components", kInt}, {"schedule", kString},
    {"schedule_spec", kString}, {"solver", kString}, {"solver_name", kString}, {"coordinates", kString}, {"grid", kString},
    {"steps", kInt}, {"seed", kInt}, {"particles", kInt}, {"t_final", kFloat}, {"declared_order", kFloat}, {"family", kString},
    {"status", kString}, {"failure", kString}, {"nfe", kInt}, {"wall_seconds", kFloat}, {"error_rms", kFloat},
    {"error_max", kFloat}, {"error_rms_max_over_time", kFloat}, {"reference_error", kFloat}};
const std::vector<std::pair<std::string, Type>> kDistributionColumns = {
    {"mmd2", kFloat}, {"mmd2_se", kFloat}, {"mmd_bandwidth", kFloat}, {"mean_error", kFloat}, {"mean_error_se", kFloat},
    {"cov_error", kFloat}, {"cov_error_se", kFloat}, {"cov_error_floor", kFloat}, {"mode_tv", kFloat}, {"mode_tv_se", kFloat}};
const std::vector<std::pair<std::string, Type>> kOrderColumns = {
    {"data", kString}, {"schedule", kString}, {"solver", kString}, {"grid", kString}, {"seed", kInt},
    {"declared_order", kFloat}, {"fitted_order", kFloat}, {"intercept", kFloat}, {"r2", kFloat}, {"points", kInt},
    {"error_floor", kFloat}};
const std::vector<std::string> kProvenance = {
    "flowgauge_version", "git_commit", "compiler", "build_type", "cxx_flags", "eigen_version", "boost_version", "fmt_version",
    "hdf5_version", "host", "threads", "command_line", "start_time", "end_time", "experiment", "experiment_file",
    "experiment_name", "plan_hash", "seeds", "status"};

std::string readme() {
  std::ifstream in(std::string(FLOWGAUGE_SOURCE_DIR) + "/results/README.md");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void expect_columns(const Table& t, const std::vector<std::pair<std::string, Type>>& cols, const std::string& what) {
  const std::string doc = readme();
  std::set<std::string> documented;
  for (const auto& [name, type] : cols) {
    documented.insert(name);
    EXPECT_NE(doc.find("`" + name + "`"), std::string::npos) << what << " column " << name << " is not in results/README.md";
    const auto it = std::find(t.names.begin(), t.names.end(), name);
    if (it == t.names.end()) {
      ADD_FAILURE() << what << " column " << name << " missing";
      continue;
    }
    EXPECT_EQ(int(t.columns[it - t.names.begin()].index()), int(type == kFloat ? 0 : type == kInt ? 1 : 2))
        << what << " column " << name << " has the wrong type";
  }
  for (const auto& n : t.names) EXPECT_TRUE(documented.count(n)) << what << " column " << n << " is undocumented";
}

TEST_F(Runner, RunFileFollowsTheDocumentedSchema) {
  const auto file = write("s.toml", kSmall);
  auto r = run("run " + file + " --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  const Experiment e = load_experiment(file);
  const std::size_t n = e.cells.size();
  ASSERT_EQ(n, 4u);
  auto f = h5::open_file(path("s.h5"));
  const Table cells = read_table(f.get(), "cells");
  auto all = kCellColumns;
  all.insert(all.end(), kDistributionColumns.begin(), kDistributionColumns.end());
  expect_columns(cells, all, "cells");
  ASSERT_EQ(cells.rows(), n);
  // provenance and run attributes
  for (const auto& a : kProvenance) {
    EXPECT_GT(H5Aexists(f.get(), a.c_str()), 0) << "attribute " << a;
    if (H5Aexists(f.get(), a.c_str()) > 0) {
      EXPECT_EQ(attr_class(f.get(), a), H5T_STRING) << a;
      EXPECT_FALSE(h5::read_string_attr(f.get(), a).empty()) << a;
    }
  }
  EXPECT_EQ(h5::read_string_attr(f.get(), "status"), "complete");
  EXPECT_EQ(int_attr(f.get(), "cells_total"), static_cast<long long>(n));
  EXPECT_EQ(int_attr(f.get(), "cells_done"), static_cast<long long>(n));
  EXPECT_EQ(h5::read_string_attr(f.get(), "experiment_name"), "small");
  EXPECT_EQ(h5::read_string_attr(f.get(), "experiment"), replace_all(kSmall, "{DIR}", dir.string()));
  EXPECT_EQ(h5::read_string_attr(f.get(), "plan_hash"), fmt::format("{:016x}", e.plan_hash));
  EXPECT_EQ(h5::read_string_attr(f.get(), "seeds"), "3");

  const auto& id = column<long long>(cells, "cell_id");
  const auto& steps = column<long long>(cells, "steps");
  const auto& solver = column<std::string>(cells, "solver_name");
  const auto& nfe = column<long long>(cells, "nfe");
  const auto& err = column<double>(cells, "error_rms");
  const auto& err_max_t = column<double>(cells, "error_rms_max_over_time");
  const auto& t_final = column<double>(cells, "t_final");
  const Schedule& sch = *e.schedules[0].schedule;
  for (std::size_t i = 0; i < n; ++i) {
    const Cell& c = e.cells[i];
    EXPECT_EQ(id[i], static_cast<long long>(i));
    EXPECT_EQ(steps[i], c.steps);
    EXPECT_EQ(solver[i], e.solvers[c.solver].name);
    EXPECT_EQ(column<std::string>(cells, "status")[i], "ok");
    EXPECT_EQ(column<std::string>(cells, "failure")[i], "");
    EXPECT_EQ(column<long long>(cells, "particles")[i], 48);
    EXPECT_EQ(column<long long>(cells, "seed")[i], 3);
    EXPECT_EQ(column<long long>(cells, "dim")[i], 2);
    EXPECT_EQ(column<long long>(cells, "components")[i], 8);
    EXPECT_EQ(column<double>(cells, "declared_order")[i], make_solver(solver[i])->traits().order);
    // euler 1 and heun 2 evaluations per step; the logsnr grid ends at sigma > 0, so no final Euler step
    EXPECT_EQ(nfe[i], steps[i] * make_solver(solver[i])->traits().evals_per_step) << solver[i];
    for (const auto& [k, type] : kDistributionColumns) EXPECT_TRUE(std::isfinite(column<double>(cells, k)[i])) << k;
    // per-cell arrays: one value per grid time, t equal to the grid built independently here
    const std::string g = fmt::format("cell_arrays/{:06d}/", i);
    GridSpec spec = e.grids[0].spec;
    spec.steps = c.steps;
    const Grid grid = make_grid(sch, spec);
    const Eigen::VectorXd t = h5::read_vector(f.get(), g + "t", "s.h5");
    ASSERT_EQ(t.size(), c.steps + 1);
    for (int k = 0; k <= c.steps; ++k) EXPECT_EQ(t(k), grid.t[k]);
    EXPECT_EQ(t_final[i], grid.t.back());
    for (const char* a : {"error_rms_t", "error_max_t", "reference_error_t"})
      EXPECT_EQ(h5::read_vector(f.get(), g + a, "s.h5").size(), c.steps + 1) << a;
    const Eigen::VectorXd e_t = h5::read_vector(f.get(), g + "error_rms_t", "s.h5");
    // solver and reference start from the same exact draw
    EXPECT_EQ(e_t(0), 0.0);
    EXPECT_EQ(e_t(c.steps), err[i]);
    EXPECT_EQ(e_t.maxCoeff(), err_max_t[i]);
    EXPECT_GT(err[i], 0.0);
    EXPECT_GE(column<double>(cells, "error_max")[i], err[i]);  // the max over particles bounds the RMS
  }
  EXPECT_EQ(group_members(f.get(), "cell_arrays").size(), n);
  // orders: one row per (data, schedule, solver, grid, seed), fitted over the 2 step counts
  const Table orders = read_table(f.get(), "orders");
  expect_columns(orders, kOrderColumns, "orders");
  ASSERT_EQ(orders.rows(), 2u);
  EXPECT_EQ(std::set<std::string>(column<std::string>(orders, "solver").begin(), column<std::string>(orders, "solver").end()),
            (std::set<std::string>{"euler", "heun"}));
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(column<long long>(orders, "points")[k], 2);  // errors ~1e-2, far above 100x the reference's ~1e-11
    EXPECT_TRUE(std::isfinite(column<double>(orders, "fitted_order")[k]));
  }
  // the density lattice of 2-D data (written once in memory, copied into every rebuild): log p_t at
  // t_lo, against the closed form log sum_k w_k N(x; alpha mu_k, alpha^2 Sigma_k + sigma^2 I)
  ASSERT_TRUE(h5::has_dataset(f.get(), "density/g/logp"));
  {
    const Eigen::MatrixXd lp = h5::read_matrix(f.get(), "density/g/logp", "s.h5");
    const Eigen::VectorXd axis = h5::read_vector(f.get(), "density/g/axis", "s.h5");
    ASSERT_EQ(lp.rows(), axis.size());
    ASSERT_EQ(lp.cols(), axis.size());
    const auto& s = *e.schedules.front().schedule;
    const TimePoint p = s.at(s.t_lo());
    const auto& comps = e.data.front().mixture->components();
    for (const Eigen::Index i : {Eigen::Index(0), axis.size() / 3, axis.size() / 2, axis.size() - 7})
      for (const Eigen::Index j : {Eigen::Index(3), axis.size() / 2 + 5}) {
        const Eigen::Vector2d x(axis(i), axis(j));
        double sum = 0;
        for (const auto& c : comps) {
          const Eigen::Matrix2d C = p.alpha * p.alpha * c.cov + p.sigma * p.sigma * Eigen::Matrix2d::Identity();
          const Eigen::Vector2d r = x - p.alpha * c.mean;
          sum += c.weight * std::exp(-0.5 * r.dot(C.inverse() * r)) / (2 * M_PI * std::sqrt(C.determinant()));
        }
        // log-sum-exp vs the direct sum: rounding, relative to |log p| <= ~60 on this lattice
        EXPECT_NEAR(lp(i, j), std::log(sum), 1e-9 * std::max(1.0, std::abs(std::log(sum)))) << i << ", " << j;
      }
  }

  if (std::system("/usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null") != 0) GTEST_SKIP() << "python3-h5py missing";
  // As results/README.md reads it: every column a 1-D dataset of one row per cell, strings as bytes.
  const std::string py =
      "/usr/bin/python3 -c \"import h5py, numpy as np; f = h5py.File('" + path("s.h5") +
      "', 'r'); c = f['cells']; n = 4; "
      "assert all(c[k].shape == (n,) for k in c), [(k, c[k].shape) for k in c]; "
      "assert list(c['cell_id'][()]) == list(range(n)); "
      "assert c['cell_id'].dtype == np.int64 and c['error_rms'].dtype == np.float64 and c['solver'].dtype.kind == 'S'; "
      "assert sorted(set(c['solver'].asstr()[()])) == ['euler', 'heun']; "
      "assert f.attrs['status'] == 'complete' and int(f.attrs['cells_done']) == n; "
      "assert isinstance(f.attrs['git_commit'], str) and f.attrs['experiment_name'] == 'small'; "
      "assert f['cell_arrays/000003/error_rms_t'].shape == (9,); "
      "assert f['orders']['fitted_order'].shape == (2,)\"";
  EXPECT_EQ(std::system(py.c_str()), 0);
}

// The orders table (written one plan block at a time, sized by a first pass) against fits redone from
// the cells table read back: one row per (data, schedule, solver, grid, seed), in plan order, over
// 64 blocks whose labels differ in length, some groups missing a step count or a seed.
TEST_F(Runner, OrdersAreTheFitsOfTheCellsTableInPlanOrder) {
  // seeds listed in decreasing order: plan order is then not the sorted order of any key
  const auto lists = replace_all(replace_all(kLists, "particles = 32", "particles = 8"), "seeds = [1, 7]", "seeds = [7, 1]");
  const auto file = write("ord.toml", lists + kListsExcludes);
  const auto r = run("run " + file + " --quiet --threads 2");
  ASSERT_EQ(r.status, 0) << r.output;
  const RunFile x = read_run(path("lists.h5"));
  using Group = std::tuple<std::string, std::string, std::string, std::string, long long>;
  auto group = [](const Table& t, std::size_t i) {
    return Group{column<std::string>(t, "data")[i], column<std::string>(t, "schedule")[i], column<std::string>(t, "solver")[i],
                 column<std::string>(t, "grid")[i], column<long long>(t, "seed")[i]};
  };
  std::map<Group, std::vector<std::size_t>> members;  // cells rows (by id) of each group
  std::vector<Group> plan_order;
  for (std::size_t i = 0; i < x.cells.rows(); ++i) {
    auto& m = members[group(x.cells, i)];
    if (m.empty()) plan_order.push_back(group(x.cells, i));
    m.push_back(i);
  }
  const Table& o = x.orders;
  ASSERT_EQ(o.rows(), plan_order.size());
  ASSERT_GT(o.rows(), 64u);
  // the same fit of the same points in the same order: bitwise equal (NaN where too few points)
  auto same = [](double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; };
  for (std::size_t k = 0; k < o.rows(); ++k) {
    ASSERT_EQ(group(o, k), plan_order[k]) << "row " << k;
    std::vector<double> ns, errs;
    double floor = 0;
    for (const auto i : members[plan_order[k]]) {
      ns.push_back(double(column<long long>(x.cells, "steps")[i]));
      errs.push_back(column<double>(x.cells, "error_rms")[i]);
      floor = std::max(floor, column<double>(x.cells, "reference_error")[i]);
    }
    const OrderFit f = fit_order(ns, errs, 100 * floor);
    EXPECT_EQ(column<long long>(o, "points")[k], f.points) << "row " << k;
    EXPECT_PRED2(same, column<double>(o, "fitted_order")[k], f.order) << "row " << k;
    EXPECT_PRED2(same, column<double>(o, "intercept")[k], f.intercept) << "row " << k;
    EXPECT_PRED2(same, column<double>(o, "r2")[k], f.r2) << "row " << k;
    EXPECT_EQ(column<double>(o, "error_floor")[k], 100 * floor) << "row " << k;
  }
}

// error_rms against the exact flow map of single-Gaussian data and the points `flowgauge sample`
// writes for the same solver, grid, seed and particles.
TEST_F(Runner, ErrorMatchesExactFlowMapOfSampledPoints) {
  write("gauss.toml", "dim = 2\n[[component]]\nweight = 1.0\nmean = [1.0, -2.0]\ncov = [[0.5, 0.2], [0.2, 0.3]]\n");
  const auto file = write("x.toml", R"TOML(name = "x"
output = "{DIR}/x.h5"
particles = 40
steps = [6]
seeds = [5]

[data]
g = { file = "gauss.toml" }

[schedules]
edm = { name = "edm" }

[[grids]]
kind = "edm"
rho = 7

[[solvers]]
name = "heun"
)TOML");
  auto r = run("run " + file + " --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run("sample --mixture " + path("gauss.toml") + " --schedule edm --solver heun --grid edm --steps 6 --particles 40 "
          "--seed 5 --output " + path("p.h5"));
  ASSERT_EQ(r.status, 0) << r.output;
  auto fp = h5::open_file(path("p.h5"));
  const Eigen::MatrixXd x = h5::read_matrix(fp.get(), "x", "p.h5");
  Eigen::MatrixXd exact = h5::read_matrix(fp.get(), "x_start", "p.h5");
  ASSERT_EQ(x.cols(), 40);
  auto sch = make_schedule("edm", {});
  const Grid grid = make_grid(*sch, {.kind = "edm", .steps = 6, .rho = 7, .final_step = FinalStep::kStep, .times = {}, .in_sigma = false});
  const auto gm = load_mixture(path("gauss.toml"));
  GaussianFlow(gm).transport(exact, *sch, grid.t.front(), grid.t.back());
  const double rms = std::sqrt((x - exact).colwise().squaredNorm().mean());
  auto f = h5::open_file(path("x.h5"));
  const Table cells = read_table(f.get(), "cells");
  ASSERT_EQ(cells.rows(), 1u);
  const double err = column<double>(cells, "error_rms")[0];
  EXPECT_GT(rms, 1e-6);  // heun with 6 steps is far from exact: the comparison is not 0 == 0
  // |RMS(x - ref) - RMS(x - exact)| <= RMS(ref - exact): the reference (rtol = atol = 1e-11 on O(1)
  // states over a few dozen steps) is within 1e-9 of the exact flow map
  EXPECT_NEAR(err, rms, 1e-9);
  EXPECT_LT(column<double>(cells, "reference_error")[0], 1e-9);  // and says so itself
}

// ---- 4. resume after kill -9 ----

// Slow enough to be killed between cells on a shared machine, small enough to finish in seconds.
const char* kSlow = R"TOML(name = "slow"
particles = 400
steps = [16, 32, 64]
seeds = [0, 1]

[data]
g = { preset = "gmm8-2d" }

[schedules]
vp = { name = "vp-linear" }

[[grids]]
kind = "logsnr"

[[solvers]]
name = ["euler", "heun", "dpmpp_2m"]
)TOML";

// `flowgauge ARGS` in the background (tests/process.hpp).
pid_t spawn(std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin(), kBinary);
  return flowgauge::testing::spawn(args, log);
}


TEST_F(Runner, ResumesAfterKillNineToTheUninterruptedResult) {
  const auto file = write("slow.toml", sanitizer_scaled(kSlow));
  const std::size_t n = load_experiment(file).cells.size();
  ASSERT_EQ(n, 18u);
  const pid_t pid = spawn({"run", file, "--output", path("k.h5"), "--threads", "2"}, path("k.log"));
  ASSERT_GT(pid, 0);
  const auto t0 = std::chrono::steady_clock::now();
  while (flowgauge::testing::finished_cells(path("k.h5.cells")) == 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGKILL);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(st)) << "the run ended before it was killed: make kSlow slower";
  const std::size_t shards = flowgauge::testing::finished_cells(path("k.h5.cells"));
  ASSERT_GE(shards, 1u);
  ASSERT_LT(shards, n) << "every cell finished before the kill: make kSlow slower";
  {
    // written before the first cell, rebuilt atomically since: it always opens
    const RunFile k = read_run(path("k.h5"));
    EXPECT_EQ(k.status, "partial");
    EXPECT_LE(k.cells.rows(), shards);
    auto f = h5::open_file(path("k.h5"));
    EXPECT_EQ(int_attr(f.get(), "cells_total"), static_cast<long long>(n));
  }
  // what a kill during a main-file rebuild or a shard write leaves behind (the process is gone)
  std::ofstream(path("k.h5.partial-" + std::to_string(pid))) << "half a file";
  std::ofstream(path("k.h5.cells/cell_000017.h5.partial-" + std::to_string(pid))) << "half a file";
  auto r = run("run " + file + " --output " + path("k.h5") + " --threads 2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(fmt::format("{} resumed", shards)), std::string::npos) << r.output;
  r = run("run " + file + " --output " + path("u.h5") + " --threads 2 --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  const RunFile k = read_run(path("k.h5")), u = read_run(path("u.h5"));
  EXPECT_EQ(k.status, "complete");
  EXPECT_EQ(column<long long>(k.cells, "cell_id"), [&] {
    std::vector<long long> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<long long>(i);
    return v;
  }());  // every cell exactly once, in order
  expect_same_table(k.cells, u.cells, {"wall_seconds"});
  expect_same_table(k.orders, u.orders);
  EXPECT_TRUE(k.arrays == u.arrays);
  EXPECT_EQ(flowgauge::testing::finished_cells(path("k.h5.cells")), n);
  for (const auto& w : written()) EXPECT_EQ(w.find(".partial-"), std::string::npos) << "left behind: " << w;
}

TEST_F(Runner, PartialsOfAProcessStillExitingWhenTheRunStartsAreRemovedAtItsEnd) {
  // A killed run's process can outlive its launcher for a moment (mpirun, under ASan): its
  // half-written files are then left by the next run's start-time cleanup, and removed at its end.
  const auto file = write("slow.toml", sanitizer_scaled(kSlow));
  const std::string main_file = path("k.h5");
  const pid_t dying = ::fork();
  ASSERT_GE(dying, 0);
  if (dying == 0) {  // alive through the run's start-time cleanup: exits once the run has written its main file
    for (int i = 0; i < 60000 && ::access(main_file.c_str(), F_OK) != 0; ++i) ::usleep(1000);
    ::_exit(0);
  }
  std::ofstream(path("k.h5.partial-" + std::to_string(dying))) << "half a file";
  fs::create_directories(path("k.h5.cells"));
  std::ofstream(path("k.h5.cells/cell_000003.h5.partial-" + std::to_string(dying))) << "half a file";
  std::atomic<bool> reaped{false};
  std::thread reaper([&] {  // a zombie still answers kill(pid, 0): reap it as soon as it exits
    int st = 0;
    ::waitpid(dying, &st, 0);
    reaped = true;
  });
  const auto r = run("run " + file + " --output " + path("k.h5") + " --threads 2 --quiet");
  const bool before_end = reaped;
  reaper.join();
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_TRUE(before_end) << "the run ended before the process it waited for: make kSlow slower";
  for (const auto& w : written()) EXPECT_EQ(w.find(".partial-"), std::string::npos) << "left behind: " << w;
}

// ---- 5. determinism across thread counts ----

TEST_F(Runner, ThreadCountDoesNotChangeResults) {
  const auto file = write("d.toml", replace_all(kLists, "g8 = { preset = \"gmm8-2d\" }\n", "") +
                                        "\n[[only]]\nsteps = [4, 8]\nseed = 1\n");
  auto r1 = run("run " + file + " --output " + path("t1.h5") + " --threads 1 --quiet");
  ASSERT_EQ(r1.status, 0) << r1.output;
  auto r2 = run("run " + file + " --output " + path("t2.h5") + " --threads 2 --quiet");
  ASSERT_EQ(r2.status, 0) << r2.output;
  // 3 threads: each starts its own reference group; the cache keeps at most 3 idle paths, so one
  // may be evicted and recomputed when the threads share the last groups
  auto r3 = run("run " + file + " --output " + path("t3.h5") + " --threads 3 --quiet");
  ASSERT_EQ(r3.status, 0) << r3.output;
  const RunFile a = read_run(path("t1.h5")), b = read_run(path("t2.h5")), c = read_run(path("t3.h5"));
  ASSERT_EQ(a.cells.rows(), 2u * 8 * 2 * 2);
  expect_same_table(a.cells, b.cells, {"wall_seconds"});
  expect_same_table(a.orders, b.orders);
  EXPECT_TRUE(a.arrays == b.arrays);
  expect_same_table(a.cells, c.cells, {"wall_seconds"});
  EXPECT_TRUE(a.arrays == c.arrays);
  // and the shards of the two runs hold the same rows
  for (std::size_t i = 0; i < a.cells.rows(); ++i) {
    const auto s = fmt::format("/cell_{:06d}.h5", i);
    auto fa = h5::open_file(path("t1.h5.cells") + s), fb = h5::open_file(path("t2.h5.cells") + s);
    expect_same_table(read_table(fa.get(), "row"), read_table(fb.get(), "row"), {"wall_seconds"});
  }
}

// Reference paths kept in unlinked files (reference.spill_mb = 0: every path) give bitwise the
// results of paths kept in memory (spill_mb = 1e6), for the error profiles, the LTE profile and per-particle errors;
// the plan (hash) is the same, and nothing is left in the cells directory but cell files.
TEST_F(Runner, SpilledReferencePathsGiveTheSameResults) {
  const std::string body = replace_all(kLists, "particles = 32\n", "particles = 32\nmetrics = [\"lte\"]\nkeep_per_particle = true\n") +
                           "\n[[only]]\nsteps = [4, 8]\nseed = 1\ndata = \"one\"\n";
  const auto mem = write("m.toml", replace_all(body, "seeds = [1, 7]\n", "seeds = [1, 7]\nreference = { spill_mb = 1e6 }\n"));
  const auto disk = write("s.toml", replace_all(body, "seeds = [1, 7]\n", "seeds = [1, 7]\nreference = { spill_mb = 0 }\n"));
  EXPECT_EQ(load_experiment(mem).plan_hash, load_experiment(disk).plan_hash);
  auto r1 = run("run " + mem + " --output " + path("m.h5") + " --threads 2 --quiet");
  ASSERT_EQ(r1.status, 0) << r1.output;
  auto r2 = run("run " + disk + " --output " + path("s.h5") + " --threads 2 --quiet");
  ASSERT_EQ(r2.status, 0) << r2.output;
  const RunFile a = read_run(path("m.h5")), b = read_run(path("s.h5"));
  ASSERT_EQ(a.cells.rows(), 8u * 2 * 2 * 2);  // solvers x schedules x grids x steps
  expect_same_table(a.cells, b.cells, {"wall_seconds"});
  EXPECT_TRUE(a.arrays == b.arrays);
  EXPECT_TRUE(a.arrays.count("000000/lte_rms_t") && a.arrays.count("000000/error_per_particle"));
  for (const auto& ent : fs::directory_iterator(path("s.h5.cells")))
    EXPECT_EQ(ent.path().filename().string().rfind("cell_", 0), 0u) << ent.path();
}

std::string bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The curvature study's (data, schedule) pairs run on the worker threads, joined in plan order.
TEST_F(Runner, CurvatureStudyIsTheSameForAnyThreadCount) {
  const auto file = write("c.toml", R"TOML(name = "curv"
particles = 64
steps = [4]
metrics = ["curvature"]
curvature_steps = 32

[data]
g = { preset = "gmm8-2d" }
h = { preset = "gaussian", dim = 3 }

[schedules]
vp = { name = "vp-linear" }
edm = { name = "edm" }
fm = { name = "fm-linear" }

[[grids]]
kind = "logsnr"

[[solvers]]
name = "euler"
)TOML");
  std::vector<Table> tables;
  for (int threads : {1, 2, 3}) {
    const std::string out = path(fmt::format("c{}.h5", threads));
    const auto r = run(fmt::format("run {} --output {} --threads {} --quiet", file, out, threads));
    ASSERT_EQ(r.status, 0) << r.output;
    auto f = h5::open_file(out);
    tables.push_back(read_table(f.get(), "curvature"));
  }
  ASSERT_EQ(tables[0].rows(), 2u * 3 * 4);  // data x schedules x coordinate systems
  expect_same_table(tables[0], tables[1]);
  expect_same_table(tables[0], tables[2]);
  // Its reference states in an unlinked file (every path is over 0 MiB): the same numbers.
  const auto spilled = write("cs.toml", replace_all(bytes(file), "curvature_steps = 32", "curvature_steps = 32\nreference = { spill_mb = 0 }"));
  const auto r = run(fmt::format("run {} --output {} --threads 2 --quiet", spilled, path("cs.h5")));
  ASSERT_EQ(r.status, 0) << r.output;
  expect_same_table(tables[0], read_table(h5::open_file(path("cs.h5")).get(), "curvature"));
}

// Peak memory of the curvature study is O(particles x d), not O(curvature_steps x particles x d): its
// reference states go to a spill file and the geometry takes one node at a time.
TEST_F(Runner, CurvatureStudyMemoryDoesNotGrowWithItsSteps) {
#ifdef FLOWGAUGE_SANITIZED
  GTEST_SKIP() << "ASan's quarantine keeps freed blocks resident: peak RSS says nothing here";
#endif
  std::map<int, long> peak_kb;
  for (int steps : {100, 4000}) {
    const auto file = write(fmt::format("m{}.toml", steps), fmt::format(R"TOML(name = "curv-mem"
particles = 512
steps = [2]
metrics = ["curvature"]
curvature_steps = {}

[data]
g = {{ preset = "gmm8-2d" }}

[schedules]
vp = {{ name = "vp-linear" }}

[[grids]]
kind = "logsnr"

[[solvers]]
name = "euler"
)TOML", steps));
    const auto [status, kb] = run_peak_rss({"run", file, "--output", path(fmt::format("m{}.h5", steps)), "--threads", "1", "--quiet"},
                                           path(fmt::format("m{}.log", steps)));
    ASSERT_EQ(status, 0) << bytes(path(fmt::format("m{}.log", steps)));
    peak_kb[steps] = kb;
  }
  // Holding every node (states, x0, eps and each coordinate system's Z, dZ/dtau: 5 x 3900 more nodes of
  // 512 x 2 doubles) would add 156 MB; one node at a time adds the plotted paths' 0.2 MB. Bound: 8 MB.
  EXPECT_LT(peak_kb[4000] - peak_kb[100], 8 * 1024) << "peak RSS " << peak_kb[100] << " kB at 100 steps, " << peak_kb[4000]
                                                    << " kB at 4000";
}

TEST_F(Runner, PlanMemoryDoesNotGrowWithItsCells) {
#ifdef FLOWGAUGE_SANITIZED
  GTEST_SKIP() << "ASan's quarantine keeps freed blocks resident: peak RSS says nothing here";
#endif
  // Two plans of 2000 and 200000 cells (2 schedules x 5 solvers x 10 step counts x 20 or 2000 seeds,
  // 20 particles), each run as one static shard of ~20 cells: all but the plan's size the same.
  std::map<int, long> peak_kb;
  for (int seeds : {20, 2000}) {
    std::vector<int> s(static_cast<std::size_t>(seeds));
    for (int i = 0; i < seeds; ++i) s[static_cast<std::size_t>(i)] = i;
    const auto file = write(fmt::format("p{}.toml", seeds), fmt::format(R"TOML(name = "plan-mem"
particles = 20
steps = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
seeds = [{}]
metrics = ["error"]

[data]
g = {{ preset = "gmm8-2d" }}

[schedules]
vp = {{ name = "vp-linear" }}
fm = {{ name = "fm-linear" }}

[[grids]]
kind = "edm"

[[solvers]]
name = ["euler", "heun", "rk4", "ddim", "dpmpp_2m"]
)TOML", fmt::join(s, ", ")));
    const auto log = path(fmt::format("p{}.log", seeds));
    const auto [status, kb] = run_peak_rss(
        {"run", file, "--output", path(fmt::format("p{}.h5", seeds)), "--shard", fmt::format("0/{}", seeds * 5), "--quiet"}, log);
    ASSERT_EQ(status, 0) << bytes(log);
    peak_kb[seeds] = kb;
  }
  // 198000 more cells: the plan as a list of cells and string-keyed reference groups added 17.1 MB
  // (measured, ~88 B per cell); bits per cell and 8-24 B per reference group of 5 cells (while the
  // shards are split) add < 3 MB (measured 1.0 with flat per-cell group lists, 0.6 without). Bound: 4 MB.
  EXPECT_LT(peak_kb[2000] - peak_kb[20], 4 * 1024) << "peak RSS " << peak_kb[20] << " kB for 2000 cells, " << peak_kb[2000]
                                                << " kB for 200000";
}

// ---- 6. an output that belongs to something else ----

std::map<std::string, std::string> snapshot(const fs::path& d) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(d))
    if (e.path().extension() != ".toml") out[e.path().string()] = e.is_regular_file() ? bytes(e.path().string()) : "<dir>";
  return out;
}

// Every file and directory as it was, byte for byte (names the differences, not the bytes).
void expect_unchanged(const std::map<std::string, std::string>& before, const std::map<std::string, std::string>& after) {
  for (const auto& [p, b] : before) {
    const auto it = after.find(p);
    if (it == after.end()) ADD_FAILURE() << "removed: " << p;
    else if (it->second != b) ADD_FAILURE() << "changed: " << p;
  }
  for (const auto& [p, a] : after)
    if (!before.count(p)) ADD_FAILURE() << "created: " << p;
}

TEST_F(Runner, RefusesAnOutputOfAnotherExperimentAndLeavesItUntouched) {
  const auto a = write("s.toml", kSmall);
  ASSERT_EQ(run("run " + a + " --quiet").status, 0);
  const auto before = snapshot(dir);
  // same name and output, another step list: another plan
  const auto b = write("b.toml", replace_all(kSmall, "steps = [4, 8]", "steps = [4, 16]"));
  auto r = run("run " + b + " --quiet");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(path("s.h5") + ": exists"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--output"), std::string::npos) << r.output;  // how to proceed: another output...
  EXPECT_NE(r.output.find("delete"), std::string::npos) << r.output;    // ...or delete it
  expect_unchanged(before, snapshot(dir));
  // rerunning the same experiment is fine (nothing left to do)
  r = run("run " + a);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("0 computed, 4 resumed"), std::string::npos) << r.output;
}

TEST_F(Runner, RefusesFinishedCellsOfAnotherExperimentWithoutTheMainFile) {
  const auto a = write("s.toml", kSmall);
  ASSERT_EQ(run("run " + a + " --quiet").status, 0);
  fs::remove(path("s.h5"));
  const auto before = snapshot(dir);
  const auto b = write("b.toml", replace_all(kSmall, "steps = [4, 8]", "steps = [4, 16]"));
  auto r = run("run " + b + " --quiet");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("different experiment"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--output"), std::string::npos) << r.output;
  expect_unchanged(before, snapshot(dir));
  EXPECT_FALSE(fs::exists(path("s.h5")));
}

TEST_F(Runner, RefusesToOverwriteAFileThatIsNotARunFile) {
  const auto a = write("s.toml", kSmall);
  std::ofstream(path("s.h5")) << "precious notes\n";
  auto r = run("run " + a + " --quiet");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--output"), std::string::npos) << r.output;
  EXPECT_EQ(bytes(path("s.h5")), "precious notes\n");
  EXPECT_FALSE(fs::exists(path("s.h5.cells")));
}

}  // namespace
