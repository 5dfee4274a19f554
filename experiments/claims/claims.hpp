#pragma once
// The claims ledger (issue 7): statements of the project's seed notes and docs about diffusion /
// flow matching, each settled by one measurement with the harness's own machinery.
//
// A claim measures one non-negative figure q (a discrepancy, unless `sense` says otherwise) and the
// statement holds iff q <= tolerance (sense kAtMost) or q >= tolerance (kAtLeast). A claim that is
// declared to hold only under a condition measures q twice: inside the condition and outside it;
// its verdict is holds-under-condition iff the inside figure passes and the outside one does not.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace flowgauge::claims {

enum class Verdict { kHolds, kFails, kHoldsUnderCondition };
std::string verdict_name(Verdict v);  // holds | fails | holds-under-condition

enum class Sense { kAtMost, kAtLeast };

struct Measured {
  double value = NAN;    // q (inside the condition, if the claim has one)
  double outside = NAN;  // q outside the condition (claims with a condition only)
  std::string note;      // what was measured, in a few words
};

struct Claim {
  std::string id;
  std::string source;     // seed file + section, or docs section
  std::string statement;  // one line
  std::string check;      // what settles it
  std::string condition;  // empty unless the claim is declared to hold only under it
  double tolerance;
  std::string tolerance_why;  // one line
  Sense sense = Sense::kAtMost;
  Verdict expected;
  std::function<Measured()> measure;
};

struct Outcome {
  const Claim* claim;
  Measured m;
  Verdict verdict;
  bool matches() const { return verdict == claim->expected; }
};

const std::vector<Claim>& ledger();
const Claim* find_claim(const std::string& id);
Outcome run_claim(const Claim& c);

}  // namespace flowgauge::claims
