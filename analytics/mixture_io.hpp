#pragma once
// Mixtures from TOML (format documented in README.md, "Mixture files").
#include <toml++/toml.h>

#include "analytics/mixture.hpp"

namespace flowgauge {

using WarnFn = std::function<void(const std::string&)>;

// `where` names the source in messages ("file.toml" or "exp.toml [data.gmm8]").
GaussianMixture mixture_from_toml(const toml::table& table, const std::string& file, const WarnFn& warn = {});
GaussianMixture load_mixture(const std::string& path, const WarnFn& warn = {});

// "file:line:col: key" for a node (falls back to "file: key" without a source position).
std::string toml_where(const std::string& file, const toml::node* node, const std::string& key);

}  // namespace flowgauge
