#pragma once
// A set of cell ids 0 .. universe-1 as one bit each: a run's scope, its cells to do, its finished
// cells (issue 8: a run's memory independent of its number of cells; 0.125 MB at 10^6 cells).
#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <vector>

namespace flowgauge {

// The first set bit at or after `from` among the first n bits of `bits`, or n (bits past n are 0).
inline std::size_t next_set_bit(const std::vector<std::uint64_t>& bits, std::size_t n, std::size_t from) {
  if (from >= n) return n;
  std::size_t w = from / 64;
  std::uint64_t word = bits[w] & (~std::uint64_t{0} << (from % 64));
  while (word == 0) {
    if (++w == bits.size()) return n;
    word = bits[w];
  }
  return w * 64 + static_cast<std::size_t>(std::countr_zero(word));
}

// Rank in O(1): the set bits before each block of kRankBlockWords words (512 bits), then at most
// 8 popcounts. block_ranks(bits)[b] = set bits in words [0, b x kRankBlockWords).
inline constexpr std::size_t kRankBlockWords = 8;
inline std::vector<std::uint32_t> block_ranks(const std::vector<std::uint64_t>& bits) {
  std::vector<std::uint32_t> before((bits.size() + kRankBlockWords - 1) / kRankBlockWords, 0);
  std::size_t n = 0;
  for (std::size_t w = 0; w < bits.size(); ++w) {
    if (w % kRankBlockWords == 0) before[w / kRankBlockWords] = static_cast<std::uint32_t>(n);
    n += static_cast<std::size_t>(std::popcount(bits[w]));
  }
  return before;
}
// Set bits before bit `pos` (pos < bits.size() x 64).
inline std::size_t rank_before(const std::vector<std::uint64_t>& bits, const std::vector<std::uint32_t>& before, std::size_t pos) {
  const std::size_t w = pos / 64;
  std::size_t n = before[w / kRankBlockWords];
  for (std::size_t i = w / kRankBlockWords * kRankBlockWords; i < w; ++i) n += static_cast<std::size_t>(std::popcount(bits[i]));
  return n + static_cast<std::size_t>(std::popcount(bits[w] & ((std::uint64_t{1} << (pos % 64)) - 1)));
}

class IdSet {
 public:
  IdSet() = default;
  explicit IdSet(std::size_t universe) : universe_(universe), bits_((universe + 63) / 64, 0) {}

  std::size_t universe() const { return universe_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool contains(long long id) const {
    return id >= 0 && std::size_t(id) < universe_ && (bits_[std::size_t(id) / 64] >> (std::size_t(id) % 64) & 1);
  }
  // False if `id` is there already; throws std::out_of_range outside 0 .. universe-1.
  bool insert(long long id) {
    if (id < 0 || std::size_t(id) >= universe_) throw std::out_of_range("IdSet::insert: id outside the set's range");
    auto& w = bits_[std::size_t(id) / 64];
    const std::uint64_t bit = std::uint64_t{1} << (std::size_t(id) % 64);
    if (w & bit) return false;
    w |= bit;
    ++size_;
    return true;
  }
  // The first id >= from in the set, or universe().
  std::size_t next(std::size_t from) const { return next_set_bit(bits_, universe_, from); }
  const std::vector<std::uint64_t>& words() const { return bits_; }  // bit id % 64 of word id / 64

  // Increasing ids.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;  // operator* returns a value
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = int;
    iterator() = default;
    int operator*() const { return static_cast<int>(id_); }
    iterator& operator++() {
      id_ = set_->next(id_ + 1);
      return *this;
    }
    iterator operator++(int) {
      auto old = *this;
      ++*this;
      return old;
    }
    bool operator==(const iterator& o) const { return id_ == o.id_; }

   private:
    friend class IdSet;
    iterator(const IdSet* s, std::size_t id) : set_(s), id_(id) {}
    const IdSet* set_ = nullptr;
    std::size_t id_ = 0;
  };
  iterator begin() const { return {this, next(0)}; }
  iterator end() const { return {this, universe_}; }

 private:
  std::size_t universe_ = 0, size_ = 0;
  std::vector<std::uint64_t> bits_;
};

}  // namespace flowgauge
