#include "analytics/mixture_io.hpp"

#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <map>

#include "analytics/errors.hpp"

namespace flowgauge {

std::string toml_where(const std::string& file, const toml::node* node, const std::string& key) {
  if (node && node->source().begin.line > 0)
    return fmt::format("{}:{}:{}: {}", file, node->source().begin.line, node->source().begin.column, key);
  return fmt::format("{}: {}", file, key);
}

namespace {

[[noreturn]] void fail(const std::string& file, const toml::node* n, const std::string& key, const std::string& msg) {
  throw InputError(fmt::format("{}: {}", toml_where(file, n, key), msg));
}

double number(const std::string& file, const toml::node& n, const std::string& key) {
  if (auto v = n.value<double>()) {
    if (!std::isfinite(*v)) fail(file, &n, key, "must be finite");
    return *v;
  }
  fail(file, &n, key, fmt::format("expected a number, got {}", toml::impl::node_type_friendly_names[int(n.type())]));
}

VectorXd vector(const std::string& file, const toml::node& n, const std::string& key) {
  const auto* arr = n.as_array();
  if (!arr) fail(file, &n, key, "expected an array of numbers");
  VectorXd v(static_cast<Eigen::Index>(arr->size()));
  for (std::size_t i = 0; i < arr->size(); ++i)
    v(static_cast<Eigen::Index>(i)) = number(file, *arr->get(i), fmt::format("{}[{}]", key, i));
  return v;
}

}  // namespace

GaussianMixture mixture_from_toml(const toml::table& t, const std::string& file, const WarnFn& warn) {
  static const std::vector<std::string> top_keys = {"dim", "component", "name", "description"};
  static const std::vector<std::string> comp_keys = {"weight", "mean", "cov", "cov_diag"};
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    if (std::find(top_keys.begin(), top_keys.end(), key) == top_keys.end()) {
      const auto hint = closest_match(key, top_keys);
      fail(file, &v, key, fmt::format("unknown key{}", hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }
  }
  long dim = -1;
  if (const auto* n = t.get("dim")) {
    // is_integer() first: toml++'s value<int64_t>() of a float casts before its range check (UB at 1e63).
    const auto v = n->is_integer() ? n->value<int64_t>() : std::nullopt;
    if (!v || *v < 1) fail(file, n, "dim", "expected a positive integer");
    dim = *v;
  }
  const auto* comps = t.get_as<toml::array>("component");
  if (!comps || comps->empty())
    fail(file, t.get("component"), "component", "need at least one [[component]] table");
  std::vector<Component> out;
  std::vector<const toml::table*> tables;
  for (std::size_t k = 0; k < comps->size(); ++k) {
    const std::string ck = fmt::format("component[{}]", k);
    const auto* ct = comps->get(k)->as_table();
    if (!ct) fail(file, comps->get(k), ck, "expected a table");
    tables.push_back(ct);
    for (const auto& [kk, v] : *ct) {
      const std::string key(kk.str());
      if (std::find(comp_keys.begin(), comp_keys.end(), key) == comp_keys.end()) {
        const auto hint = closest_match(key, comp_keys);
        fail(file, &v, ck + "." + key,
             fmt::format("unknown key{}", hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
      }
    }
    Component c;
    c.weight = ct->get("weight") ? number(file, *ct->get("weight"), ck + ".weight") : 1.0;
    if (!ct->get("mean")) fail(file, ct, ck + ".mean", "missing");
    c.mean = vector(file, *ct->get("mean"), ck + ".mean");
    const auto d = c.mean.size();
    if (dim > 0 && d != dim)
      fail(file, ct->get("mean"), ck + ".mean", fmt::format("has length {}, but dim = {}", d, dim));
    const auto* cov = ct->get("cov");
    const auto* diag = ct->get("cov_diag");
    if (cov && diag) fail(file, diag, ck + ".cov_diag", "give either cov or cov_diag, not both");
    if (diag) {
      VectorXd v = vector(file, *diag, ck + ".cov_diag");
      if (v.size() != d) fail(file, diag, ck + ".cov_diag", fmt::format("has length {}, expected {}", v.size(), d));
      c.cov = v.asDiagonal();
    } else if (!cov) {
      fail(file, ct, ck + ".cov", "missing (give cov = number, cov = [[...]], or cov_diag = [...])");
    } else if (cov->is_number()) {
      c.cov = number(file, *cov, ck + ".cov") * MatrixXd::Identity(d, d);
    } else {
      const auto* rows = cov->as_array();
      if (!rows || static_cast<Eigen::Index>(rows->size()) != d)
        fail(file, cov, ck + ".cov", fmt::format("expected a number or a {}x{} array of arrays", d, d));
      c.cov.resize(d, d);
      for (std::size_t i = 0; i < rows->size(); ++i) {
        VectorXd r = vector(file, *rows->get(i), fmt::format("{}.cov[{}]", ck, i));
        if (r.size() != d) fail(file, rows->get(i), fmt::format("{}.cov[{}]", ck, i), fmt::format("has length {}, expected {}", r.size(), d));
        c.cov.row(static_cast<Eigen::Index>(i)) = r.transpose();
      }
    }
    out.push_back(std::move(c));
  }
  auto locate = [&](int k, const std::string& key) {
    const toml::node* n = tables[k]->get(key);
    if (!n && key == "cov") n = tables[k]->get("cov_diag");
    return toml_where(file, n ? n : tables[k], fmt::format("component[{}].{}", k, key));
  };
  return GaussianMixture(std::move(out), file, warn, locate);
}

GaussianMixture load_mixture(const std::string& path, const WarnFn& warn) {
  std::error_code ec;  // a directory, /dev/zero or a FIFO is refused by name, never read
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    throw InputError(fmt::format("{}: not a regular file", path));
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    if (b.line == 0) throw InputError(fmt::format("{}: cannot read mixture file: {}", path, e.description()));
    throw InputError(fmt::format("{}:{}:{}: TOML syntax error: {}", path, b.line, b.column, e.description()));
  }
  return mixture_from_toml(t, path, warn);
}

}  // namespace flowgauge
