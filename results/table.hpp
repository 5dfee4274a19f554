#pragma once
// A column table written as one HDF5 group with one typed 1-D dataset per column
// (results/README.md: pandas.DataFrame({k: f[group][k][()] for k in f[group]})).
#include <hdf5.h>

#include "results/h5.hpp"

#include <string>
#include <variant>
#include <vector>

namespace flowgauge {

struct Table {
  using Column = std::variant<std::vector<double>, std::vector<long long>, std::vector<std::string>>;
  std::vector<std::string> names;
  std::vector<Column> columns;

  template <class T> std::vector<T>& col(const std::string& name) {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return std::get<std::vector<T>>(columns[i]);
    names.push_back(name);
    columns.emplace_back(std::vector<T>{});
    return std::get<std::vector<T>>(columns.back());
  }
  std::size_t rows() const;
};

void write_table(hid_t loc, const std::string& group, const Table& t);
// write_table one column at a time: the group, then each column as a dataset in it.
h5::Handle create_table_group(hid_t loc, const std::string& group);
void write_column(hid_t group_id, const std::string& group, const std::string& name, const Table::Column& column);
// ... or a block of rows at a time: a column of `rows` rows (type: Table::Column's alternative; strings
// `width` bytes, NUL-padded), then rows first .. first + n - 1 of it.
h5::Handle create_column(hid_t group_id, const std::string& group, const std::string& name, std::size_t type, std::size_t rows,
                         std::size_t width);
void write_rows(hid_t dataset, const std::string& group, const std::string& name, std::size_t first, const Table::Column& column,
                std::size_t width);
Table read_table(hid_t loc, const std::string& group);  // inverse of write_table
// Appends the rows of `src` to `dst` (same columns, same types; dst may be empty).
void append_rows(Table& dst, const Table& src);
// Row r of `t` (same columns, same order).
Table select_row(const Table& t, std::size_t r);

}  // namespace flowgauge
