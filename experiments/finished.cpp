#include "experiments/finished.hpp"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

namespace flowgauge::detail {

Finished::Finished(IdSet scope, const std::string& dir)
    : scope_(std::move(scope)), done_(scope_.universe()), scope_ranks_(block_ranks(scope_.words())) {
  if (!dir.empty()) file_ = std::make_unique<ScratchFile>(dir, "file of finished rows");
}

Finished::Finished(std::size_t plan_cells, const std::string& dir) : Finished([&] {
  IdSet all(plan_cells);
  for (std::size_t id = 0; id < plan_cells; ++id) all.insert(static_cast<long long>(id));
  return all;
}(), dir) {}

bool Finished::emplace(int id, const Table& row) {
  for (const auto& c : row.columns)
    if (std::visit([](const auto& v) { return v.size(); }, c) != 1)
      throw std::logic_error(fmt::format("Finished::emplace: cell {}: a column without exactly one value", id));
  for (std::size_t k = 0; k < row.names.size(); ++k)
    if (std::find(row.names.begin(), row.names.begin() + static_cast<std::ptrdiff_t>(k), row.names[k]) !=
        row.names.begin() + static_cast<std::ptrdiff_t>(k))
      throw std::logic_error(fmt::format("Finished::emplace: cell {}: column {} twice", id, row.names[k]));
  if (!scope_.contains(id))
    throw std::logic_error(fmt::format("Finished::emplace: cell {} is not among the store's {} cells", id, scope_.size()));
  if (count(id)) return false;
  if (cols_.empty())
    for (std::size_t k = 0; k < row.names.size(); ++k) cols_.push_back({.name = row.names[k], .type = row.columns[k].index()});
  // the same columns as before, checked before anything is added
  std::vector<std::size_t> at(row.names.size());
  for (std::size_t k = 0; k < row.names.size(); ++k) {
    const auto it = std::find_if(cols_.begin(), cols_.end(), [&](const Column& c) { return c.name == row.names[k]; });
    if (it == cols_.end() || it->type != row.columns[k].index() || row.names.size() != cols_.size())
      throw std::logic_error(fmt::format("Finished::emplace: cell {} has other columns than the cells before it", id));
    at[k] = static_cast<std::size_t>(it - cols_.begin());
  }
  std::vector<std::uint64_t> rec(cols_.size());
  for (std::size_t k = 0; k < row.names.size(); ++k) {
    Column& c = cols_[at[k]];
    if (const auto* v = std::get_if<std::vector<double>>(&row.columns[k])) std::memcpy(&rec[at[k]], v->data(), 8);
    else if (const auto* v = std::get_if<std::vector<long long>>(&row.columns[k])) std::memcpy(&rec[at[k]], v->data(), 8);
    else {
      const auto& str = std::get<std::vector<std::string>>(row.columns[k]).front();
      const auto [it, fresh] = c.lookup.emplace(str, static_cast<std::uint32_t>(c.dict.size()));
      if (fresh) {
        c.dict.push_back(str);
        c.width = std::max(c.width, str.size());
      }
      rec[at[k]] = it->second;
      if (c.name == "status" && str != "ok") ++failed_;
    }
  }
  const std::size_t bytes = rec.size() * 8;
  bool kept = false;
  if (file_) {
    try {
      file_->write(rec.data(), bytes, static_cast<off_t>(slot(id) * bytes));
      kept = true;
    } catch (const ScratchFileError&) {
      // the run's own writes will report the disk
    }
  }
  if (!kept) {
    in_memory_.emplace(id, memory_.size());
    memory_.insert(memory_.end(), rec.begin(), rec.end());
  }
  done_.insert(id);
  ++records_;
  return true;
}

void Finished::read(const std::vector<int>& ids, std::vector<std::uint64_t>& out) const {
  const std::size_t n = cols_.size();
  out.resize(ids.size() * n);
  auto in_memory = [&](int id) { return in_memory_.empty() ? in_memory_.end() : in_memory_.find(id); };
  for (std::size_t r = 0; r < ids.size();) {
    if (const auto it = in_memory(ids[r]); it != in_memory_.end()) {
      std::copy_n(memory_.begin() + static_cast<std::ptrdiff_t>(it->second), n, out.begin() + static_cast<std::ptrdiff_t>(r * n));
      ++r;
      continue;
    }
    const std::size_t first = slot(ids[r]);
    std::size_t run = 1;  // records in consecutive slots of the file: one read
    while (r + run < ids.size() && slot(ids[r + run]) == first + run && in_memory(ids[r + run]) == in_memory_.end()) ++run;
    file_->read(&out[r * n], run * n * 8, static_cast<off_t>(first * n * 8));
    r += run;
  }
}

Table::Column Finished::decode(std::size_t c, const std::vector<std::uint64_t>& records, std::size_t rows) const {
  const std::size_t n = cols_.size();
  auto pick = [&](auto zero) {
    std::vector<decltype(zero)> out(rows);
    for (std::size_t r = 0; r < rows; ++r) std::memcpy(&out[r], &records[r * n + c], 8);
    return out;
  };
  if (cols_[c].type == 0) return pick(0.0);
  if (cols_[c].type == 1) return pick(0LL);
  std::vector<std::string> out;
  out.reserve(rows);
  for (std::size_t r = 0; r < rows; ++r) out.push_back(cols_[c].dict[records[r * n + c]]);
  return out;
}

Table Finished::rows(int first, int last, const std::vector<std::string>& only) const {
  std::vector<int> ids;
  for (std::size_t id = done_.next(static_cast<std::size_t>(std::max(first, 0))); id < done_.universe() && id < std::size_t(std::max(last, 0));
       id = done_.next(id + 1))
    ids.push_back(static_cast<int>(id));
  std::vector<std::uint64_t> records;
  read(ids, records);
  Table t;
  for (std::size_t c = 0; c < cols_.size(); ++c)
    if (only.empty() || std::find(only.begin(), only.end(), cols_[c].name) != only.end()) {
      t.names.push_back(cols_[c].name);
      t.columns.push_back(decode(c, records, ids.size()));
    }
  return t;
}

void Finished::write(hid_t loc, const std::string& group) const {
  const auto g = create_table_group(loc, group);
  std::vector<h5::Handle> sets;
  for (const auto& c : cols_)
    sets.push_back(create_column(g.get(), group, c.name, c.type, records_, c.type == 2 ? c.width : 0));
  std::vector<int> ids;
  std::vector<std::uint64_t> records;
  std::size_t written = 0;
  for (auto it = done_.begin();;) {
    const bool last = it == done_.end();
    if (!last) ids.push_back(*it++);
    if (ids.size() == kBlock || (last && !ids.empty())) {
      read(ids, records);
      for (std::size_t c = 0; c < cols_.size(); ++c)
        write_rows(sets[c].get(), group, cols_[c].name, written, decode(c, records, ids.size()), cols_[c].width);
      written += ids.size();
      ids.clear();
    }
    if (last) break;
  }
}

}  // namespace flowgauge::detail
