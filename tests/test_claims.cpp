// The claims ledger (experiments/claims, issue 7): every claim's measured verdict must equal its declared
// expectation (a changed verdict fails here), and the `flowgauge claims` exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

#include "experiments/claims/claims.hpp"
#include "tests/process.hpp"

using namespace flowgauge::claims;

namespace {

using flowgauge::testing::Run;
using flowgauge::testing::run;

}  // namespace

TEST(Claims, LedgerIsWellFormed) {
  std::set<std::string> ids;
  for (const auto& c : ledger()) {
    EXPECT_TRUE(ids.insert(c.id).second) << "duplicate id " << c.id;
    EXPECT_FALSE(c.source.empty()) << c.id;
    EXPECT_FALSE(c.statement.empty()) << c.id;
    EXPECT_FALSE(c.tolerance_why.empty()) << c.id;
    EXPECT_EQ(c.expected == Verdict::kHoldsUnderCondition, !c.condition.empty()) << c.id;
    EXPECT_TRUE(c.measure) << c.id;
  }
  EXPECT_EQ(find_claim("no.such.claim"), nullptr);
}

TEST(Claims, EveryVerdictAsDeclared) {
  for (const auto& c : ledger()) {
    const Outcome o = run_claim(c);
    EXPECT_TRUE(o.matches()) << c.id << ": expected " << verdict_name(c.expected) << ", measured "
                             << verdict_name(o.verdict) << " (figure " << o.m.value << ", outside " << o.m.outside
                             << "; " << o.m.note << ")";
  }
}

TEST(Claims, CliExitCodes) {
  const auto dir = std::filesystem::temp_directory_path() / ("flowgauge_claims_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto h5 = (dir / "c.h5").string(), md = (dir / "c.md").string();
  auto ok = run("claims --only fg.seed003,pfode.seed002 --output " + h5 + " --markdown " + md);
  EXPECT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find("fg.seed003"), std::string::npos) << ok.output;
  EXPECT_TRUE(std::filesystem::exists(h5));
  EXPECT_TRUE(std::filesystem::exists(md));
  auto bad = run("claims --only fg.seed003,nope");
  EXPECT_EQ(bad.status, 2) << bad.output;
  EXPECT_NE(bad.output.find("nope"), std::string::npos) << bad.output;
  std::filesystem::remove_all(dir);
}
