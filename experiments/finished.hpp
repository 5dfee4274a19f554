#pragma once
// The finished cells of a run, as the runner keeps them (runner_detail.hpp): their rows only, as
// fixed-width records in an unlinked scratch file next to the cell files, so that a run's memory
// does not grow with its cells. A cell's record is at its rank among the run's cells: a sparse file,
// whose holes (cells not finished yet) take no disk. What stays in memory: 2 bits per cell of the
// plan (the run's cells, the finished ones) and one dictionary per string column (its distinct
// values: names, labels, statuses); records the file refused, and all of them without a file, in
// memory. The arrays
// (O(steps) each) stay in the cell files and are read back one cell at a time while the main file
// is written.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <hdf5.h>

#include "experiments/id_set.hpp"
#include "results/table.hpp"
#include "solvers/scratch_file.hpp"

namespace flowgauge::detail {

class Finished {
 public:
  // The cells of `scope` (a run's, a shard's); records in a scratch file in `dir`, or in memory if
  // `dir` is "". A cell's record is at its rank in the scope x (record size), so the file is no
  // longer than the scope's records. Should the file refuse a write (a full disk, ulimit -f), that
  // record stays in memory: the run's next cell file or main file reports the disk, with every
  // finished cell kept.
  explicit Finished(IdSet scope, const std::string& dir = "");
  explicit Finished(std::size_t plan_cells = 0, const std::string& dir = "");  // scope: cells 0 .. plan_cells - 1

  // `row`: one row, with the columns (names and types) of the rows before it, in any order.
  // False (nothing added) if `id` is there already. Throws std::logic_error on any other mismatch.
  bool emplace(int id, const Table& row);
  std::size_t size() const { return records_; }
  bool count(int id) const { return done_.contains(id); }
  const IdSet& ids() const { return done_; }  // iterates by increasing id
  // The rows of the finished cells with first <= id < last, by increasing id: all columns, or
  // those of `only` that exist.
  Table rows(int first, int last, const std::vector<std::string>& only = {}) const;
  Table row(int id) const { return rows(id, id + 1); }
  // write_table(loc, group, rows(0, plan_cells)), reading kBlock records at a time.
  void write(hid_t loc, const std::string& group) const;
  std::size_t failed() const { return failed_; }  // rows whose status is not "ok"
  std::size_t records_in_memory() const { return in_memory_.size(); }

  static constexpr std::size_t kBlock = 4096;  // records read at a time by write()

 private:
  struct Column {
    std::string name;
    std::size_t type;  // Table::Column's alternative: 0 double, 1 long long, 2 string
    std::vector<std::string> dict = {};  // strings: a record holds the index
    std::map<std::string, std::uint32_t> lookup = {};
    std::size_t width = 1;  // the longest string
  };
  // Records of `ids` (finished, increasing) into out (ids.size() x columns, row-major).
  void read(const std::vector<int>& ids, std::vector<std::uint64_t>& out) const;
  Table::Column decode(std::size_t c, const std::vector<std::uint64_t>& records, std::size_t n) const;

  std::size_t slot(int id) const { return rank_before(scope_.words(), scope_ranks_, std::size_t(id)); }  // id in scope_

  std::vector<Column> cols_;
  IdSet scope_, done_;
  std::vector<std::uint32_t> scope_ranks_;  // block_ranks(scope_.words())
  std::size_t records_ = 0, failed_ = 0;
  std::unique_ptr<ScratchFile> file_;
  std::unordered_map<int, std::size_t> in_memory_;  // id -> its record in memory_: those the file refused
  std::vector<std::uint64_t> memory_;
};

}  // namespace flowgauge::detail
