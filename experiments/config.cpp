#include "experiments/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <set>
#include <sstream>

#include "analytics/errors.hpp"
#include "analytics/mixture_io.hpp"
#include "analytics/presets.hpp"

namespace flowgauge {

std::vector<std::string> mixture_presets() { return preset_names(); }

bool Experiment::wants(const std::string& m) const {
  return std::find(metrics.begin(), metrics.end(), m) != metrics.end();
}

namespace {

const std::vector<std::string> kMetrics = {"error", "distribution", "curvature", "lte", "likelihood", "strong", "exact_law"};

// Error helpers: "file:line:col: key: message".
struct Ctx {
  std::string file;
  [[noreturn]] void fail(const toml::node* n, const std::string& key, const std::string& msg) const {
    throw InputError(fmt::format("{}: {}", toml_where(file, n, key), msg));
  }
  void check_keys(const toml::table& t, const std::string& path, const std::vector<std::string>& allowed) const {
    for (const auto& [k, v] : t) {
      const std::string key(k.str());
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      const auto hint = closest_match(key, allowed);
      fail(&v, path.empty() ? key : path + "." + key,
           fmt::format("unknown key{}", hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }
  }
  static const char* type_name(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::string: return "a string";
      case toml::node_type::integer: return "an integer";
      case toml::node_type::floating_point: return "a float";
      case toml::node_type::boolean: return "a boolean";
      case toml::node_type::array: return "an array";
      case toml::node_type::table: return "a table";
      default: return "a date/time";
    }
  }
  std::string str(const toml::node& n, const std::string& key) const {
    if (auto v = n.value<std::string>(); v && n.is_string()) return *v;
    fail(&n, key, fmt::format("expected a string, got {}", type_name(n)));
  }
  long long integer(const toml::node& n, const std::string& key, long long lo, long long hi) const {
    if (!n.is_integer()) fail(&n, key, fmt::format("expected an integer, got {}", type_name(n)));
    const long long v = *n.value<long long>();
    if (v < lo || v > hi) fail(&n, key, fmt::format("{} is out of range [{}, {}]", v, lo, hi));
    return v;
  }
  double number(const toml::node& n, const std::string& key) const {
    if (!n.is_number()) fail(&n, key, fmt::format("expected a number, got {}", type_name(n)));
    const double v = *n.value<double>();
    if (!std::isfinite(v)) fail(&n, key, "must be finite");
    return v;
  }
  bool boolean(const toml::node& n, const std::string& key) const {
    if (!n.is_boolean()) fail(&n, key, fmt::format("expected true or false, got {}", type_name(n)));
    return *n.value<bool>();
  }
  // A scalar or an array of scalars -> list of nodes.
  std::vector<const toml::node*> list(const toml::node& n) const {
    std::vector<const toml::node*> out;
    if (const auto* a = n.as_array()) {
      for (const auto& x : *a) out.push_back(&x);
    } else {
      out.push_back(&n);
    }
    return out;
  }
  const toml::table& table(const toml::node& n, const std::string& key) const {
    if (const auto* t = n.as_table()) return *t;
    fail(&n, key, fmt::format("expected a table, got {}", type_name(n)));
  }
};

std::string scalar_text(const Ctx& c, const toml::node& n, const std::string& key) {
  if (n.is_string()) return *n.value<std::string>();
  if (n.is_integer()) return std::to_string(*n.value<long long>());
  if (n.is_floating_point()) return fmt::format("{}", *n.value<double>());
  if (n.is_boolean()) return *n.value<bool>() ? "true" : "false";
  c.fail(&n, key, fmt::format("expected a string, number or boolean, got {}", Ctx::type_name(n)));
}

std::uint64_t fnv1a(const std::string& s, std::uint64_t h = 1469598103934665603ull) {
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

std::string mixture_fingerprint(const GaussianMixture& g) {
  std::uint64_t h = 1469598103934665603ull;
  auto add = [&](const double* p, std::size_t n) {
    h = fnv1a(std::string(reinterpret_cast<const char*>(p), n * sizeof(double)), h);
  };
  add(g.weights().data(), g.weights().size());
  for (const auto& c : g.components()) {
    add(c.mean.data(), c.mean.size());
    add(c.cov.data(), c.cov.size());
  }
  return fmt::format("{:016x}", h);
}

// "file:line:col: key: message" (or "file: key: message") from the mixture reader names keys relative
// to the inline data table; in an experiment file they live under data.<label>.
std::string prefix_key(const std::string& msg, const std::string& file, const std::string& prefix) {
  if (msg.rfind(file + ":", 0) != 0) return msg;
  std::size_t pos = file.size() + 1;
  for (int field = 0; field < 2; ++field) {  // line and column, when present
    std::size_t q = pos;
    while (q < msg.size() && std::isdigit(static_cast<unsigned char>(msg[q]))) ++q;
    if (q == pos || q >= msg.size() || msg[q] != ':') break;
    pos = q + 1;
  }
  if (pos < msg.size() && msg[pos] == ' ') ++pos;
  return msg.substr(0, pos) + prefix + msg.substr(pos);
}

DataAxis load_data(const Ctx& c, const std::string& label, const toml::node& n, const std::filesystem::path& base,
                   const PlanLimits& limits) {
  const std::string key = "data." + label;
  const auto& t = c.table(n, key);
  DataAxis d;
  d.name = label;
  if (const auto* f = t.get("file")) {
    c.check_keys(t, key, {"file"});
    std::filesystem::path p = c.str(*f, key + ".file");
    if (p.is_relative()) p = base / p;
    std::error_code ec;  // no throwing overloads: a name too long is bad input, not a crash
    if (!std::filesystem::exists(p, ec)) c.fail(f, key + ".file", fmt::format("no such file '{}'", p.string()));
    if (!std::filesystem::is_regular_file(p, ec))  // a directory, /dev/zero, a FIFO: refused, never read
      c.fail(f, key + ".file", fmt::format("'{}' is not a regular file", p.string()));
    d.mixture = std::make_shared<GaussianMixture>(load_mixture(p.string(), [](const std::string& w) {
      fmt::print(stderr, "flowgauge: warning: {}\n", w);
    }));
    d.source = p.string();
  } else if (const auto* pr = t.get("preset")) {
    c.check_keys(t, key, {"preset", "dim", "components", "seed"});
    const std::string name = c.str(*pr, key + ".preset");
    const int dim = t.get("dim") ? static_cast<int>(c.integer(*t.get("dim"), key + ".dim", 1, 100000)) : 2;
    const int K = t.get("components") ? static_cast<int>(c.integer(*t.get("components"), key + ".components", 1, 100000)) : 8;
    const auto seed = t.get("seed") ? static_cast<std::uint64_t>(c.integer(*t.get("seed"), key + ".seed", 0, 1LL << 62)) : 0;
    const long long dd = name == "gmm8-2d" ? 2 : dim, kk = name == "random" ? K : 1;  // what the preset builds
    if (kk * dd * dd > limits.max_preset_size)
      c.fail(t.get("dim") ? t.get("dim") : pr, key + (t.get("dim") ? ".dim" : ".preset"),
             fmt::format("components x dim^2 = {} x {}^2 is more than {} numbers per covariance copy", kk, dd,
                         limits.max_preset_size));
    try {
      d.mixture = std::make_shared<GaussianMixture>(mixture_preset(name, dim, K, seed));
    } catch (const InputError& e) {
      c.fail(pr, key + ".preset", e.what());
    }
    d.source = "preset " + name;
  } else {
    try {
      d.mixture = std::make_shared<GaussianMixture>(mixture_from_toml(t, c.file, [](const std::string& w) {
        fmt::print(stderr, "flowgauge: warning: {}\n", w);
      }));
    } catch (const InputError& e) {
      throw InputError(prefix_key(e.what(), c.file, key + "."));
    }
    d.source = "inline";
  }
  d.fingerprint = mixture_fingerprint(*d.mixture);
  return d;
}

// Cartesian product of option lists.
std::vector<SolverOptions> expand(const std::vector<std::pair<std::string, std::vector<std::string>>>& axes) {
  std::vector<SolverOptions> out(1);
  for (const auto& [k, vals] : axes) {
    std::vector<SolverOptions> next;
    for (const auto& o : out)
      for (const auto& v : vals) {
        auto x = o;
        x[k] = v;
        next.push_back(std::move(x));
      }
    out = std::move(next);
  }
  return out;
}

std::string label_of(const std::string& name, const SolverOptions& o) {
  if (o.empty()) return name;
  std::vector<std::string> kv;
  for (const auto& [k, v] : o) kv.push_back(k + "=" + v);
  return fmt::format("{}({})", name, fmt::join(kv, ", "));
}

struct Filter {
  std::map<std::string, std::vector<std::string>> keys;
  bool matches(const Experiment& e, const Cell& cell) const {
    for (const auto& kv : keys) {
      const auto& k = kv.first;
      const auto& vals = kv.second;  // not a structured binding: clang 14 (fuzz preset) cannot capture those
      auto in = [&](const std::string& v) { return std::find(vals.begin(), vals.end(), v) != vals.end(); };
      const auto& so = e.solvers[cell.solver];
      bool ok = true;
      if (k == "data") ok = in(e.data[cell.data].name);
      else if (k == "schedule") ok = in(e.schedules[cell.schedule].name);
      else if (k == "solver") ok = in(so.name) || in(so.label);
      else if (k == "grid") ok = in(e.grids[cell.grid].spec.kind) || in(e.grids[cell.grid].label);
      else if (k == "steps") ok = in(std::to_string(cell.steps));
      else if (k == "seed") ok = in(std::to_string(cell.seed));
      else ok = so.options.count(k) && in(so.options.at(k));  // any solver option, e.g. coordinates
      if (!ok) return false;
    }
    return true;
  }
};

// What a filter key can match: data, schedule, solver (name or label), grid (kind or label), steps,
// seed, or a solver option, each with the values the plan has.
std::map<std::string, std::vector<std::string>> filter_values(const Experiment& e) {
  std::map<std::string, std::vector<std::string>> v;
  std::set<std::pair<std::string, std::string>> seen;  // not a scan per value: 1e6 seeds are allowed
  auto add = [&](const std::string& k, const std::string& x) {
    if (seen.emplace(k, x).second) v[k].push_back(x);
  };
  for (const auto& d : e.data) add("data", d.name);
  for (const auto& s : e.schedules) add("schedule", s.name);
  for (const auto& s : e.solvers) {
    add("solver", s.name);
    add("solver", s.label);
    for (const auto& [k, x] : s.options) add(k, x);
  }
  for (const auto& g : e.grids) {
    add("grid", g.spec.kind);
    add("grid", g.label);
    if (g.spec.kind == "explicit") add("steps", std::to_string(int(g.spec.times.size()) - 1));
  }
  for (int n : e.steps) add("steps", std::to_string(n));
  for (auto s : e.seeds) add("seed", std::to_string(s));
  return v;
}

std::vector<Filter> load_filters(const Ctx& c, const toml::table& root, const char* which, const Experiment& e) {
  const auto known = filter_values(e);
  std::vector<std::string> keys;
  for (const auto& [k, unused] : known) keys.push_back(k);
  std::vector<Filter> out;
  const auto* n = root.get(which);
  if (!n) return out;
  const auto* arr = n->as_array();
  if (!arr) c.fail(n, which, "expected an array of tables ([[" + std::string(which) + "]])");
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string key = fmt::format("{}[{}]", which, i);
    const auto& t = c.table(*arr->get(i), key);
    Filter f;
    for (const auto& [k, v] : t) {
      const std::string name(k.str()), kk = key + "." + name;
      const auto it = known.find(name);
      if (it == known.end()) {
        const auto hint = closest_match(name, keys);
        c.fail(&v, kk, fmt::format("unknown filter key{} (known: {})", hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint),
                                   fmt::join(keys, ", ")));
      }
      for (const auto* x : c.list(v)) {
        const auto val = scalar_text(c, *x, kk);
        if (std::find(it->second.begin(), it->second.end(), val) == it->second.end()) {
          const auto hint = closest_match(val, it->second);
          c.fail(x, kk, fmt::format("'{}' matches no {} of the plan{} (known: {})", val, name,
                                    hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), fmt::join(it->second, ", ")));
        }
        f.keys[name].push_back(val);
      }
    }
    if (f.keys.empty()) c.fail(&t, key, "empty filter");
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

std::string Experiment::cell_key(const Cell& c) const {
  return fmt::format("data={}[{}];schedule={}:{};solver={};grid={};steps={};seed={}", data[c.data].name,
                     data[c.data].fingerprint, schedules[c.schedule].name,
                     schedules[c.schedule].schedule->describe(), solvers[c.solver].label, grids[c.grid].label, c.steps, c.seed);
}

Experiment load_experiment(const std::string& path, const PlanLimits& limits) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("{}: cannot read experiment file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_experiment(ss.str(), path, limits);
}

Experiment parse_experiment(const std::string& text, const std::string& path, const PlanLimits& limits) {
  Experiment e;
  e.file = path;
  e.text = text;
  toml::table root;
  try {
    root = toml::parse(e.text, path);
  } catch (const toml::parse_error& err) {
    throw InputError(fmt::format("{}:{}:{}: TOML syntax error: {}", path, err.source().begin.line, err.source().begin.column,
                                 err.description()));
  }
  const Ctx c{path};
  c.check_keys(root, "", {"name", "description", "output", "particles", "seeds", "threads", "metrics", "mmd_bandwidth",
                          "reference", "keep_per_particle", "curvature_steps", "data", "schedules", "solvers", "grids",
                          "steps", "exclude", "only"});
  const auto base = std::filesystem::path(path).parent_path();
  auto need = [&](const char* key) -> const toml::node& {
    const auto* n = root.get(key);
    if (!n) c.fail(&root, key, "missing (required)");
    return *n;
  };

  e.name = c.str(need("name"), "name");
  if (e.name.empty() || e.name.find('/') != std::string::npos) c.fail(root.get("name"), "name", "must be a non-empty file-name-safe string");
  if (const auto* n = root.get("description")) e.description = c.str(*n, "description");
  e.output = root.get("output") ? c.str(*root.get("output"), "output") : fmt::format("results/{}.h5", e.name);
  if (const auto* n = root.get("particles")) e.particles = c.integer(*n, "particles", 1, 1LL << 31);
  if (const auto* n = root.get("threads")) e.threads = static_cast<int>(c.integer(*n, "threads", 0, 4096));
  if (const auto* n = root.get("mmd_bandwidth")) {
    e.mmd_bandwidth = c.number(*n, "mmd_bandwidth");
    if (!(e.mmd_bandwidth > 0)) c.fail(n, "mmd_bandwidth", "must be > 0");
  }
  if (const auto* n = root.get("keep_per_particle")) e.keep_per_particle = c.boolean(*n, "keep_per_particle");
  if (const auto* n = root.get("curvature_steps"))
    e.curvature_steps = static_cast<int>(c.integer(*n, "curvature_steps", 8, std::min<long long>(100000, limits.max_steps)));
  if (const auto* n = root.get("reference")) {
    const auto& t = c.table(*n, "reference");
    c.check_keys(t, "reference", {"rtol", "atol", "spill_mb"});
    if (const auto* x = t.get("rtol")) e.ref_rtol = c.number(*x, "reference.rtol");
    if (const auto* x = t.get("atol")) e.ref_atol = c.number(*x, "reference.atol");
    if (!(e.ref_rtol > 0) || !(e.ref_atol > 0)) c.fail(n, "reference", "rtol and atol must be > 0");
    if (const auto* x = t.get("spill_mb")) {
      e.ref_spill_mb = c.number(*x, "reference.spill_mb");
      if (!(e.ref_spill_mb >= 0)) c.fail(x, "reference.spill_mb", "must be >= 0");
    }
  }
  e.metrics = {"error"};
  if (const auto* n = root.get("metrics")) {
    for (const auto* m : c.list(*n)) {
      const auto v = c.str(*m, "metrics");
      if (std::find(kMetrics.begin(), kMetrics.end(), v) == kMetrics.end()) {
        const auto hint = closest_match(v, kMetrics);
        c.fail(m, "metrics", fmt::format("unknown metric '{}'{} (known: {})", v,
                                         hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), fmt::join(kMetrics, ", ")));
      }
      if (!e.wants(v)) e.metrics.push_back(v);
    }
  }
  if (const auto* n = root.get("seeds")) {
    for (const auto* s : c.list(*n)) e.seeds.push_back(static_cast<std::uint64_t>(c.integer(*s, "seeds", 0, 1LL << 62)));
  } else {
    e.seeds = {0};
  }
  for (const auto* s : c.list(need("steps"))) e.steps.push_back(static_cast<int>(c.integer(*s, "steps", 1, limits.max_steps)));

  // data
  {
    const auto& t = c.table(need("data"), "data");
    for (const auto& [k, v] : t) e.data.push_back(load_data(c, std::string(k.str()), v, base, limits));
    if (e.data.empty()) c.fail(&t, "data", "needs at least one data set");
  }
  // schedules
  {
    const auto& t = c.table(need("schedules"), "schedules");
    for (const auto& [k, v] : t) {
      const std::string key = "schedules." + std::string(k.str());
      const auto& st = c.table(v, key);
      const auto* nm = st.get("name");
      if (!nm) c.fail(&st, key + ".name", "missing");
      ScheduleParams p;
      for (const auto& [pk, pv] : st)
        if (pk.str() != "name") p[std::string(pk.str())] = c.number(pv, key + "." + std::string(pk.str()));
      const std::string sname = c.str(*nm, key + ".name");
      const auto known = schedule_names();
      if (std::find(known.begin(), known.end(), sname) == known.end()) {
        try {
          make_schedule(sname, {});
        } catch (const InputError& err) {
          c.fail(nm, key + ".name", err.what());
        }
      }
      try {
        e.schedules.push_back({std::string(k.str()), make_schedule(sname, p)});
      } catch (const InputError& err) {
        // name the parameter at fault when one alone is refused
        for (const auto& [pk, pv] : p) {
          try {
            make_schedule(sname, {{pk, pv}});
          } catch (const InputError& one) {
            c.fail(st.get(pk), key + "." + pk, one.what());
          }
        }
        c.fail(&st, key, err.what());
      }
    }
    if (e.schedules.empty()) c.fail(&t, "schedules", "needs at least one schedule");
  }
  // solvers
  {
    const auto* arr = need("solvers").as_array();
    if (!arr || arr->empty()) c.fail(root.get("solvers"), "solvers", "expected a non-empty array of tables ([[solvers]])");
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const std::string key = fmt::format("solvers[{}]", i);
      const auto& st = c.table(*arr->get(i), key);
      const auto* nm = st.get("name");
      if (!nm) c.fail(&st, key + ".name", "missing");
      std::vector<std::string> names;  // a list of names shares the options below
      for (const auto* x : c.list(*nm)) names.push_back(c.str(*x, key + ".name"));
      std::vector<std::pair<std::string, std::vector<std::string>>> axes;
      for (const auto& [ok, ov] : st) {
        if (ok.str() == "name") continue;
        std::vector<std::string> vals;
        for (const auto* x : c.list(ov)) vals.push_back(scalar_text(c, *x, key + "." + std::string(ok.str())));
        if (vals.empty()) c.fail(&ov, key + "." + std::string(ok.str()), "empty list");
        axes.emplace_back(std::string(ok.str()), vals);
      }
      double combos = static_cast<double>(names.size());  // double: a product of list sizes may overflow
      for (const auto& ax : axes) combos *= static_cast<double>(ax.second.size());
      if (combos + static_cast<double>(e.solvers.size()) > static_cast<double>(limits.max_cells))
        c.fail(&st, key, fmt::format("expands to {:.0f} solver configurations (names x option values), more than the {} "
                                     "cells a plan may have", combos, limits.max_cells));
      const auto known = solver_names();
      for (std::size_t j = 0; j < names.size(); ++j)
        if (std::find(known.begin(), known.end(), names[j]) == known.end()) {
          try {
            make_solver(names[j], {});
          } catch (const InputError& err) {
            c.fail(c.list(*nm)[j], key + ".name", err.what());
          }
        }
      for (const auto& name : names)
        for (const auto& o : expand(axes)) {
          try {
            make_solver(name, o);
          } catch (const InputError& err) {
            // name the option at fault when one alone is refused
            for (const auto& [ok, ov] : o) {
              try {
                make_solver(name, {{ok, ov}});
              } catch (const InputError& one) {
                c.fail(st.get(ok), key + "." + ok, one.what());
              }
            }
            c.fail(&st, key, err.what());
          }
          e.solvers.push_back({name, o, label_of(name, o)});
        }
    }
  }
  // grids
  {
    const auto* arr = need("grids").as_array();
    if (!arr || arr->empty()) c.fail(root.get("grids"), "grids", "expected a non-empty array of tables ([[grids]])");
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const std::string key = fmt::format("grids[{}]", i);
      const auto& gt = c.table(*arr->get(i), key);
      c.check_keys(gt, key, {"kind", "rho", "final_step", "times", "sigmas"});
      GridAxis g;
      if (const auto* k = gt.get("kind")) g.spec.kind = c.str(*k, key + ".kind");
      else c.fail(&gt, key + ".kind", "missing");
      const auto kinds = grid_kinds();
      if (std::find(kinds.begin(), kinds.end(), g.spec.kind) == kinds.end()) {
        const auto hint = closest_match(g.spec.kind, kinds);
        c.fail(gt.get("kind"), key + ".kind", fmt::format("unknown grid '{}'{} (known: {})", g.spec.kind,
                                                          hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), fmt::join(kinds, ", ")));
      }
      if (const auto* r = gt.get("rho")) {
        g.spec.rho = c.number(*r, key + ".rho");
        if (!(g.spec.rho > 0)) c.fail(r, key + ".rho", "must be > 0");
      }
      std::string fs = "step";
      if (const auto* f = gt.get("final_step")) {
        fs = c.str(*f, key + ".final_step");
        try {
          g.spec.final_step = parse_final_step(fs);
        } catch (const InputError& err) {
          c.fail(f, key + ".final_step", err.what());
        }
      }
      if (g.spec.kind == "explicit") {
        const auto* tn = gt.get("times") ? gt.get("times") : gt.get("sigmas");
        if (!tn) c.fail(&gt, key, "an explicit grid needs times = [...] or sigmas = [...]");
        g.spec.in_sigma = gt.get("sigmas") != nullptr;
        for (const auto* x : c.list(*tn)) g.spec.times.push_back(c.number(*x, key + (g.spec.in_sigma ? ".sigmas" : ".times")));
        if (g.spec.times.size() < 2)
          c.fail(tn, key + (g.spec.in_sigma ? ".sigmas" : ".times"),
                 fmt::format("an explicit grid needs at least 2 points (one step), got {}", g.spec.times.size()));
        g.label = fmt::format("explicit({} points)", g.spec.times.size());
      } else {
        g.label = g.spec.kind == "edm" || g.spec.kind == "polyexponential" ? fmt::format("{}(rho={})", g.spec.kind, g.spec.rho)
                                                                          : g.spec.kind;
        if (fs == "denoise") g.label += "+denoise";
      }
      e.grids.push_back(std::move(g));
    }
  }
  const auto excludes = load_filters(c, root, "exclude", e);
  const auto onlys = load_filters(c, root, "only", e);

  // Plan: data x schedule x solver x grid x steps x seed, then filters.
  const double size = static_cast<double>(e.data.size()) * static_cast<double>(e.schedules.size()) *
                      static_cast<double>(e.solvers.size()) * static_cast<double>(e.grids.size()) *
                      static_cast<double>(e.steps.size()) * static_cast<double>(e.seeds.size());
  if (size > static_cast<double>(limits.max_cells))
    c.fail(&root, "plan",
           fmt::format("data x schedules x solvers x grids x steps x seeds = {} x {} x {} x {} x {} x {} = {:.0f} cells, "
                       "more than {}: split the study into several files",
                       e.data.size(), e.schedules.size(), e.solvers.size(), e.grids.size(), e.steps.size(),
                       e.seeds.size(), size, limits.max_cells));
  std::vector<int> explicit_steps;
  for (const auto& g : e.grids) explicit_steps.push_back(g.spec.kind == "explicit" ? static_cast<int>(g.spec.times.size()) - 1 : -1);
  e.cells = Plan(e.data.size(), e.schedules.size(), e.solvers.size(), explicit_steps, e.steps, e.seeds);
  for (std::size_t p = 0; p < e.cells.positions(); ++p) {
    const Cell cell = e.cells.cell_at(p);
    if (explicit_steps[cell.grid] >= 0 && e.steps[e.cells.digits(p)[Plan::kSteps]] != e.steps.front()) continue;  // its own step count
    ++e.cells_before_filters;
    if (std::any_of(excludes.begin(), excludes.end(), [&](const Filter& f) { return f.matches(e, cell); })) continue;
    if (!onlys.empty() && std::none_of(onlys.begin(), onlys.end(), [&](const Filter& f) { return f.matches(e, cell); }))
      continue;
    e.cells.keep(p);
  }
  e.cells.freeze();
  if (e.cells.empty()) c.fail(&root, "exclude/only", "the filters leave no cell to run");

  // Every cell's grid must exist on its schedule (e.g. denoise needs sigma = 0 to be reachable).
  std::map<std::tuple<int, int, int>, double> first_t;  // (schedule, grid, steps) -> the grid's first time
  for (const auto& cell : e.cells) {
    const auto key = std::make_tuple(cell.schedule, cell.grid, cell.steps);
    if (first_t.count(key)) continue;
    GridSpec spec = e.grids[cell.grid].spec;
    spec.steps = cell.steps;
    const Schedule& sch = *e.schedules[cell.schedule].schedule;
    try {
      first_t[key] = make_grid(sch, spec).t.front();
    } catch (const InputError& err) {
      const auto* arr = root.get("grids")->as_array();
      c.fail(arr->get(cell.grid), fmt::format("grids[{}]", cell.grid),
             fmt::format("on schedule '{}' with {} steps: {}", e.schedules[cell.schedule].name, cell.steps, err.what()));
    }
  }

  // What the optional metrics need, checked here so that a run never fails on them half-way.
  if (e.wants("distribution") && e.particles < 20)  // moments: 10 jackknife groups of >= 2 particles
    c.fail(root.get("particles") ? root.get("particles") : root.get("metrics"), root.get("particles") ? "particles" : "metrics",
           fmt::format("the distribution metric needs particles >= 20 (10 jackknife groups of 2), got {}", e.particles));
  if (e.wants("curvature")) {  // path geometry on a logsnr grid of curvature_steps per schedule
    const auto& t = *root.get("schedules")->as_table();
    for (const auto& sa : e.schedules) {
      try {
        make_grid(*sa.schedule, {.kind = "logsnr", .steps = e.curvature_steps, .rho = 7.0, .final_step = FinalStep::kStep,
                                 .times = {}, .in_sigma = false});
      } catch (const InputError& err) {
        c.fail(t.get(sa.name), "schedules." + sa.name, fmt::format("the curvature metric needs a logsnr grid: {}", err.what()));
      }
    }
  }

  // A grid that starts at the exact prior (alpha = 0) needs a solver that can start there.
  std::set<std::pair<int, int>> solver_checked;
  for (const auto& cell : e.cells) {
    const Schedule& sch = *e.schedules[cell.schedule].schedule;
    const double t0 = first_t.at({cell.schedule, cell.grid, cell.steps});
    if (sch.alpha(t0) > 0 || !solver_checked.insert({cell.schedule, cell.solver}).second) continue;
    const auto& sv = e.solvers[cell.solver];
    if (!make_solver(sv.name, sv.options)->traits().starts_at_prior)
      c.fail(root.get("schedules")->as_table()->get(e.schedules[cell.schedule].name),
             "schedules." + e.schedules[cell.schedule].name,
             fmt::format("starts where alpha = 0 (t = {}), where solver {} cannot start (it steps in rho = sigma/alpha, "
                         "f = alpha'/alpha or inner logSNR stages); lower t_hi or exclude the pair",
                         t0, sv.label));
  }

  std::uint64_t h = fnv1a(fmt::format("particles={};metrics={};ref={},{};mmd={};curv={};pp={}", e.particles,
                                      fmt::join(e.metrics, ","), e.ref_rtol, e.ref_atol, e.mmd_bandwidth, e.curvature_steps,
                                      e.keep_per_particle));
  for (const auto& cell : e.cells) h = fnv1a(e.cell_key(cell) + "\n", h);
  e.plan_hash = h;
  return e;
}

}  // namespace flowgauge
