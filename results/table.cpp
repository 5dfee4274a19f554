#include "results/table.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <stdexcept>

#include "results/h5.hpp"

namespace flowgauge {

std::size_t Table::rows() const {
  if (columns.empty()) return 0;
  return std::visit([](const auto& v) { return v.size(); }, columns.front());
}

void write_table(hid_t loc, const std::string& group, const Table& t) {
  h5::Handle g(H5Gcreate2(loc, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!g) throw std::runtime_error(fmt::format("HDF5: cannot create group '{}'", group));
  const std::size_t n = t.rows();
  for (std::size_t i = 0; i < t.names.size(); ++i) {
    hsize_t dims[1] = {n};
    h5::Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose);
    const auto& name = t.names[i];
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if (v.size() != n) throw std::logic_error(fmt::format("table {}: column {} has {} rows, expected {}", group, name, v.size(), n));
          if constexpr (std::is_same_v<V, std::vector<double>>) {
            h5::Handle d(H5Dcreate2(g.get(), name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
            if (n) H5Dwrite(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
          } else if constexpr (std::is_same_v<V, std::vector<long long>>) {
            h5::Handle d(H5Dcreate2(g.get(), name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
            if (n) H5Dwrite(d.get(), H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
          } else {
            std::size_t w = 1;
            for (const auto& s : v) w = std::max(w, s.size());
            std::vector<char> buf(n * w, '\0');
            for (std::size_t r = 0; r < n; ++r) std::copy(v[r].begin(), v[r].end(), buf.begin() + r * w);
            h5::Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
            H5Tset_size(type.get(), w);
            H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
            H5Tset_cset(type.get(), H5T_CSET_UTF8);
            h5::Handle d(H5Dcreate2(g.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
            if (n) H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
          }
        },
        t.columns[i]);
  }
}

}  // namespace flowgauge
