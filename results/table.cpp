#include "results/table.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <cstring>
#include <stdexcept>

#include "results/h5.hpp"

namespace flowgauge {

std::size_t Table::rows() const {
  if (columns.empty()) return 0;
  return std::visit([](const auto& v) { return v.size(); }, columns.front());
}

namespace {
h5::Handle string_type(std::size_t width) {
  h5::Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), std::max<std::size_t>(width, 1));
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}
[[noreturn]] void failed(const std::string& group, const std::string& name) {
  throw h5::WriteError(fmt::format("{} (writing dataset '{}/{}')", h5::error_cause(), group, name));
}
}  // namespace

h5::Handle create_column(hid_t g, const std::string& group, const std::string& name, std::size_t type, std::size_t rows,
                         std::size_t width) {
  hsize_t dims[1] = {rows};
  h5::Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  const h5::Handle str = type == 2 ? string_type(width) : h5::Handle();
  const hid_t t = type == 0 ? H5T_IEEE_F64LE : type == 1 ? H5T_STD_I64LE : str.get();
  h5::Handle d(H5Dcreate2(g, name.c_str(), t, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (!d) failed(group, name);
  return d;
}

void write_rows(hid_t dataset, const std::string& group, const std::string& name, std::size_t first, const Table::Column& column,
                std::size_t width) {
  const std::size_t n = std::visit([](const auto& v) { return v.size(); }, column);
  if (n == 0) return;
  hsize_t start[1] = {first}, count[1] = {n};
  h5::Handle file_space(H5Dget_space(dataset), H5Sclose);
  h5::Handle mem_space(H5Screate_simple(1, count, nullptr), H5Sclose);
  if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0) failed(group, name);
  herr_t status = 0;
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::vector<double>>) {
          status = H5Dwrite(dataset, H5T_NATIVE_DOUBLE, mem_space.get(), file_space.get(), H5P_DEFAULT, v.data());
        } else if constexpr (std::is_same_v<V, std::vector<long long>>) {
          status = H5Dwrite(dataset, H5T_NATIVE_LLONG, mem_space.get(), file_space.get(), H5P_DEFAULT, v.data());
        } else {
          const std::size_t w = std::max<std::size_t>(width, 1);
          std::vector<char> buf(n * w, '\0');
          for (std::size_t r = 0; r < n; ++r) {
            if (v[r].size() > w) throw std::logic_error(fmt::format("table {}: column {}: a string longer than {}", group, name, w));
            std::copy(v[r].begin(), v[r].end(), buf.begin() + static_cast<std::ptrdiff_t>(r * w));
          }
          const auto type = string_type(w);
          status = H5Dwrite(dataset, type.get(), mem_space.get(), file_space.get(), H5P_DEFAULT, buf.data());
        }
      },
      column);
  if (status < 0) failed(group, name);
}

void write_column(hid_t g, const std::string& group, const std::string& name, const Table::Column& column) {
  const std::size_t n = std::visit([](const auto& v) { return v.size(); }, column);
  std::size_t width = 1;
  if (const auto* v = std::get_if<std::vector<std::string>>(&column))
    for (const auto& s : *v) width = std::max(width, s.size());
  const auto d = create_column(g, group, name, column.index(), n, width);
  write_rows(d.get(), group, name, 0, column, width);
}

h5::Handle create_table_group(hid_t loc, const std::string& group) {
  h5::Handle g(H5Gcreate2(loc, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!g) throw h5::WriteError(fmt::format("{} (creating group '{}')", h5::error_cause(), group));
  return g;
}

void write_table(hid_t loc, const std::string& group, const Table& t) {
  const auto g = create_table_group(loc, group);
  const std::size_t n = t.rows();
  for (std::size_t i = 0; i < t.names.size(); ++i) {
    if (std::visit([](const auto& v) { return v.size(); }, t.columns[i]) != n)
      throw std::logic_error(fmt::format("table {}: column {} has another number of rows than {}", group, t.names[i], n));
    write_column(g.get(), group, t.names[i], t.columns[i]);
  }
}

Table read_table(hid_t loc, const std::string& group) {
  Table t;
  h5::Handle g(H5Gopen2(loc, group.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g) throw std::runtime_error(fmt::format("HDF5: no group '{}'", group));
  H5G_info_t info;
  H5Gget_info(g.get(), &info);
  std::vector<std::pair<std::int64_t, std::string>> order;  // keep creation order
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    char name[512];
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
    order.push_back({0, name});
  }
  for (const auto& [unused, name] : order) {
    h5::Handle d(H5Dopen2(g.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    h5::Handle type(H5Dget_type(d.get()), H5Tclose);
    h5::Handle space(H5Dget_space(d.get()), H5Sclose);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(space.get(), &n, nullptr);
    const auto cls = H5Tget_class(type.get());
    if (cls == H5T_FLOAT) {
      auto& v = t.col<double>(name);
      v.resize(n);
      if (n) H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    } else if (cls == H5T_INTEGER) {
      auto& v = t.col<long long>(name);
      v.resize(n);
      if (n) H5Dread(d.get(), H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    } else if (cls == H5T_STRING) {
      const std::size_t w = H5Tget_size(type.get());
      std::vector<char> buf(n * w + 1, '\0');
      if (n) H5Dread(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
      auto& v = t.col<std::string>(name);
      for (hsize_t r = 0; r < n; ++r) v.emplace_back(std::string(buf.data() + r * w, strnlen(buf.data() + r * w, w)));
    }
  }
  return t;
}

void append_rows(Table& dst, const Table& src) {
  for (std::size_t i = 0; i < src.names.size(); ++i) {
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          auto& out = dst.col<typename V::value_type>(src.names[i]);
          out.insert(out.end(), v.begin(), v.end());
        },
        src.columns[i]);
  }
}

Table select_row(const Table& t, std::size_t r) {
  Table out;
  for (std::size_t i = 0; i < t.names.size(); ++i)
    std::visit([&](const auto& v) { out.col<typename std::decay_t<decltype(v)>::value_type>(t.names[i]).push_back(v.at(r)); },
               t.columns[i]);
  return out;
}

}  // namespace flowgauge
