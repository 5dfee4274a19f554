#pragma once
// What a run file (or a cell file) holds, as comparable values: for "identical to an uninterrupted
// run" checks. Every dataset's values (doubles bitwise) and every root attribute, except what may
// differ between two runs of one plan: the time a cell took, and where and when it ran.
#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "results/h5.hpp"
#include "results/table.hpp"

namespace flowgauge::testing {

inline std::uint64_t bits(double x) {
  std::uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

inline std::vector<std::string> members(hid_t loc, const std::string& group) {
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

inline std::vector<std::string> attr_names(hid_t loc) {
  std::vector<std::string> out;
  H5O_info_t info;
  H5Oget_info(loc, &info);
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    char nm[512];
    H5Aget_name_by_idx(loc, ".", H5_INDEX_NAME, H5_ITER_INC, i, nm, sizeof nm, H5P_DEFAULT);
    out.emplace_back(nm);
  }
  return out;
}

inline std::string attr_text(hid_t loc, const std::string& name) {
  h5::Handle a(H5Aopen(loc, name.c_str(), H5P_DEFAULT), H5Aclose);
  h5::Handle t(H5Aget_type(a.get()), H5Tclose);
  if (H5Tget_class(t.get()) == H5T_INTEGER) {
    long long v = 0;
    H5Aread(a.get(), H5T_NATIVE_LLONG, &v);
    return std::to_string(v);
  }
  return h5::read_string_attr(loc, name);
}

struct Contents {
  std::map<std::string, std::string> attrs;
  std::map<std::string, std::vector<std::uint64_t>> data;  // path -> values (bits of doubles, or ints)
  std::map<std::string, std::vector<std::string>> text;     // path -> strings
};

// Every dataset below `path` except those in `skip` (full paths), into c.
inline void collect(hid_t f, const std::string& path, Contents& c, const std::set<std::string>& skip) {
  for (const auto& m : members(f, path)) {
    const std::string p = path == "/" ? "/" + m : path + "/" + m;
    if (skip.count(p)) continue;
    H5O_info_t info;
    H5Oget_info_by_name(f, p.c_str(), &info, H5P_DEFAULT);
    if (info.type == H5O_TYPE_GROUP) {
      collect(f, p, c, skip);
      continue;
    }
    h5::Handle d(H5Dopen2(f, p.c_str(), H5P_DEFAULT), H5Dclose);
    h5::Handle t(H5Dget_type(d.get()), H5Tclose);
    h5::Handle s(H5Dget_space(d.get()), H5Sclose);
    const auto n = static_cast<std::size_t>(H5Sget_simple_extent_npoints(s.get()));
    const auto cls = H5Tget_class(t.get());
    if (cls == H5T_FLOAT) {
      std::vector<double> v(n);
      if (n) H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
      for (double x : v) c.data[p].push_back(bits(x));
    } else if (cls == H5T_INTEGER) {
      std::vector<long long> v(n);
      if (n) H5Dread(d.get(), H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
      for (auto x : v) c.data[p].push_back(static_cast<std::uint64_t>(x));
    } else {
      const std::size_t w = H5Tget_size(t.get());
      std::vector<char> buf(n * w + 1, '\0');
      if (n) H5Dread(d.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
      for (std::size_t r = 0; r < n; ++r) c.text[p].emplace_back(buf.data() + r * w, strnlen(buf.data() + r * w, w));
    }
  }
}

// Root attributes that may differ between two files of one plan.
inline const std::set<std::string> kVolatileAttrs = {"host", "threads", "start_time", "end_time", "command_line"};

// A run file's contents (a cell file's too: its "row" table and "arrays"); wall_seconds is skipped
// wherever it is.
inline Contents contents(const std::string& file, const std::set<std::string>& skip_attrs = kVolatileAttrs) {
  auto f = h5::open_file(file);
  Contents c;
  for (const auto& a : attr_names(f.get()))
    if (!skip_attrs.count(a)) c.attrs[a] = attr_text(f.get(), a);
  collect(f.get(), "/", c, {"/cells/wall_seconds", "/row/wall_seconds"});
  return c;
}

// The cell ids of a run file's cell table (none: a file written before its first cell has no columns).
inline std::vector<long long> cell_ids(const std::string& file) {
  auto f = h5::open_file(file);
  const Table t = read_table(f.get(), "cells");
  const auto it = std::find(t.names.begin(), t.names.end(), "cell_id");
  if (it == t.names.end()) return {};
  return std::get<std::vector<long long>>(t.columns[it - t.names.begin()]);
}

inline std::vector<long long> iota(std::size_t n) {
  std::vector<long long> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<long long>(i);
  return v;
}

}  // namespace flowgauge::testing
