#pragma once
// The cells of a sweep plan without a list of them. A cell is a position in
// data x schedule x solver x grid x steps x seed (mixed radix, seed fastest: the plan order), and
// one bit per position says whether the plan has it (an explicit grid has its own step count and
// keeps the positions whose steps value is the list's first; exclude/only filters drop more).
// Cell id = rank of its position among the kept ones. Memory: 1 bit per position plus 4 bytes per
// 512, ~0.14 MB at PlanLimits::max_cells (plus a copy of the steps and seeds lists), however many
// cells a run has (issue 8: a sweep's memory independent of its number of cells).
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <vector>

namespace flowgauge {

struct Cell {
  int id = 0;  // position in the plan (deterministic order)
  int data = 0, schedule = 0, solver = 0, grid = 0, steps = 0;
  std::uint64_t seed = 0;
};

class Plan {
 public:
  enum Axis { kData, kSchedule, kSolver, kGrid, kSteps, kSeed };
  using Digits = std::array<std::size_t, 6>;  // one index per axis

  Plan() = default;
  // `explicit_steps[g]` >= 0: grid g's own step count (an explicit grid); -1: the cell's steps
  // are steps[index]. At most INT_MAX positions (cell ids are int).
  Plan(std::size_t data, std::size_t schedules, std::size_t solvers, std::vector<int> explicit_steps, std::vector<int> steps,
       std::vector<std::uint64_t> seeds);

  std::size_t positions() const { return positions_; }  // the full product
  Digits digits(std::size_t position) const;
  Cell cell_at(std::size_t position, int id = 0) const;  // the cell a position would be
  // Building: keep() the plan's positions, then freeze() (counts the kept ones; keep() after it throws).
  void keep(std::size_t position);
  void freeze();

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t position(std::size_t id) const;  // select: the id-th kept position
  bool kept(std::size_t position) const { return position < positions_ && (bits_[position / 64] >> (position % 64) & 1); }
  std::size_t rank(std::size_t position) const;  // kept positions before `position`: a kept one's id
  Cell operator[](std::size_t id) const { return cell_at(position(id), static_cast<int>(id)); }
  Cell front() const { return (*this)[0]; }
  Cell back() const { return (*this)[size_ - 1]; }

  // Plan order, one position after the other (no select per step).
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Cell;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Cell;
    iterator() = default;
    Cell operator*() const { return plan_->cell_at(pos_, static_cast<int>(id_)); }
    iterator& operator++();
    iterator operator++(int) {
      auto old = *this;
      ++*this;
      return old;
    }
    bool operator==(const iterator& o) const { return id_ == o.id_; }
    std::size_t id() const { return id_; }
    std::size_t position() const { return pos_; }

   private:
    friend class Plan;
    iterator(const Plan* p, std::size_t id, std::size_t pos) : plan_(p), id_(id), pos_(pos) {}
    const Plan* plan_ = nullptr;
    std::size_t id_ = 0, pos_ = 0;
  };
  iterator begin() const;
  iterator end() const { return {this, size_, positions_}; }

 private:
  std::size_t next_kept(std::size_t position) const;  // the first kept position >= position, or positions_

  Digits radix_{};
  std::size_t positions_ = 0, size_ = 0;
  bool frozen_ = false;
  std::vector<int> explicit_steps_, steps_;
  std::vector<std::uint64_t> seeds_;
  std::vector<std::uint64_t> bits_;
  std::vector<std::uint32_t> before_;  // block_ranks(bits_): kept positions before each 512
};

}  // namespace flowgauge
