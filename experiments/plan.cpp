#include "experiments/plan.hpp"

#include <algorithm>
#include <bit>
#include <limits>
#include <stdexcept>

#include "experiments/id_set.hpp"

namespace flowgauge {

Plan::Plan(std::size_t data, std::size_t schedules, std::size_t solvers, std::vector<int> explicit_steps, std::vector<int> steps,
           std::vector<std::uint64_t> seeds)
    : radix_{data, schedules, solvers, explicit_steps.size(), steps.size(), seeds.size()},
      explicit_steps_(std::move(explicit_steps)),
      steps_(std::move(steps)),
      seeds_(std::move(seeds)) {
  positions_ = 1;
  for (auto r : radix_) positions_ *= r;
  if (positions_ > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw std::length_error("Plan: more positions than cell ids (int) can number");
  bits_.assign((positions_ + 63) / 64, 0);
}

Plan::Digits Plan::digits(std::size_t position) const {
  Digits d{};
  for (std::size_t a = d.size(); a-- > 0;) {
    d[a] = position % radix_[a];
    position /= radix_[a];
  }
  return d;
}

Cell Plan::cell_at(std::size_t position, int id) const {
  const auto d = digits(position);
  const int expl = explicit_steps_[d[kGrid]];
  return {.id = id,
          .data = static_cast<int>(d[kData]),
          .schedule = static_cast<int>(d[kSchedule]),
          .solver = static_cast<int>(d[kSolver]),
          .grid = static_cast<int>(d[kGrid]),
          .steps = expl >= 0 ? expl : steps_[d[kSteps]],
          .seed = seeds_[d[kSeed]]};
}

void Plan::keep(std::size_t position) {
  if (position >= positions_ || frozen_) throw std::logic_error("Plan::keep: position outside the product, or after freeze()");
  bits_[position / 64] |= std::uint64_t{1} << (position % 64);
}

void Plan::freeze() {
  frozen_ = true;
  before_ = block_ranks(bits_);
  size_ = 0;
  for (const auto w : bits_) size_ += static_cast<std::size_t>(std::popcount(w));
}

std::size_t Plan::position(std::size_t id) const {
  if (id >= size_) throw std::out_of_range("Plan: cell id past the plan");
  // the last block with fewer than id + 1 kept positions before it
  const auto b = static_cast<std::size_t>(std::upper_bound(before_.begin(), before_.end(), id) - before_.begin()) - 1;
  std::size_t left = id - before_[b];
  for (std::size_t w = b * kRankBlockWords;; ++w) {
    std::uint64_t word = bits_[w];
    const auto n = static_cast<std::size_t>(std::popcount(word));
    if (left >= n) {
      left -= n;
      continue;
    }
    for (; left > 0; --left) word &= word - 1;  // drop the lowest kept positions
    return w * 64 + static_cast<std::size_t>(std::countr_zero(word));
  }
}

std::size_t Plan::rank(std::size_t position) const { return position >= positions_ ? size_ : rank_before(bits_, before_, position); }

std::size_t Plan::next_kept(std::size_t position) const { return next_set_bit(bits_, positions_, position); }

Plan::iterator Plan::begin() const { return {this, 0, size_ ? next_kept(0) : positions_}; }

Plan::iterator& Plan::iterator::operator++() {
  ++id_;
  pos_ = plan_->next_kept(pos_ + 1);
  return *this;
}

}  // namespace flowgauge
