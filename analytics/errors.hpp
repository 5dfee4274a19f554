#pragma once
// One error type for bad user input: the message already names file, line:col and key.
// The command line turns it into exit status 2 (see experiments/cli_main.cpp).
#include <stdexcept>
#include <string>
#include <vector>

namespace flowgauge {

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Closest candidate by edit distance, for "did you mean" hints ("" when nothing is close).
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace flowgauge
