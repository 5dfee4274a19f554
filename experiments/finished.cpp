#include "experiments/finished.hpp"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

namespace flowgauge::detail {

Finished::Finished(std::size_t plan_cells, const std::string& dir) : slot_(plan_cells, kNone) {
  if (!dir.empty()) file_ = std::make_unique<ScratchFile>(dir, "file of finished rows");
}

bool Finished::emplace(int id, const Table& row) {
  for (const auto& c : row.columns)
    if (std::visit([](const auto& v) { return v.size(); }, c) != 1)
      throw std::logic_error(fmt::format("Finished::emplace: cell {}: a column without exactly one value", id));
  for (std::size_t k = 0; k < row.names.size(); ++k)
    if (std::find(row.names.begin(), row.names.begin() + static_cast<std::ptrdiff_t>(k), row.names[k]) !=
        row.names.begin() + static_cast<std::ptrdiff_t>(k))
      throw std::logic_error(fmt::format("Finished::emplace: cell {}: column {} twice", id, row.names[k]));
  if (id < 0 || std::size_t(id) >= slot_.size())
    throw std::logic_error(fmt::format("Finished::emplace: cell {} is not in the plan's {} cells", id, slot_.size()));
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
  if (file_ && !file_full_) {
    try {
      file_->write(rec.data(), bytes, static_cast<off_t>(in_file_ * bytes));
      ++in_file_;
    } catch (const ScratchFileError&) {
      file_full_ = true;  // the run's own writes will report the disk
    }
  }
  if (!file_ || file_full_) memory_.insert(memory_.end(), rec.begin(), rec.end());
  slot_[std::size_t(id)] = static_cast<std::uint32_t>(records_++);
  return true;
}

std::vector<int> Finished::ids() const {
  std::vector<int> out;
  out.reserve(records_);
  for (std::size_t id = 0; id < slot_.size(); ++id)
    if (slot_[id] != kNone) out.push_back(static_cast<int>(id));
  return out;
}

void Finished::read(const std::vector<int>& ids, std::vector<std::uint64_t>& out) const {
  const std::size_t n = cols_.size();
  out.resize(ids.size() * n);
  for (std::size_t r = 0; r < ids.size(); ++r) {
    const std::size_t s = slot_[std::size_t(ids[r])];
    if (s < in_file_) file_->read(&out[r * n], n * 8, static_cast<off_t>(s * n * 8));
    else std::copy_n(memory_.begin() + static_cast<std::ptrdiff_t>((s - in_file_) * n), n, out.begin() + static_cast<std::ptrdiff_t>(r * n));
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
  for (int id = std::max(first, 0); id < last && std::size_t(id) < slot_.size(); ++id)
    if (slot_[std::size_t(id)] != kNone) ids.push_back(id);
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
  for (std::size_t id = 0; id <= slot_.size(); ++id) {
    if (id < slot_.size() && slot_[id] != kNone) ids.push_back(static_cast<int>(id));
    if (ids.size() == kBlock || (id == slot_.size() && !ids.empty())) {
      read(ids, records);
      for (std::size_t c = 0; c < cols_.size(); ++c)
        write_rows(sets[c].get(), group, cols_[c].name, written, decode(c, records, ids.size()), cols_[c].width);
      written += ids.size();
      ids.clear();
    }
  }
}

}  // namespace flowgauge::detail
