// flowgauge: exact-ground-truth harness for diffusion and flow-matching samplers.
// Exit status: 0 success, 2 bad input (message names file, key and value), 1 internal failure or an
// output that cannot be written (disk full), 128 + signal for a run stopped by SIGINT / SIGTERM.
#include <fmt/format.h>

#include <cstdlib>
#include <iostream>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "analytics/errors.hpp"
#include "experiments/cli.hpp"
#include "results/h5.hpp"

namespace flowgauge::cli {
namespace {
std::string g_command_line;
}
std::string command_line() { return g_command_line; }
}  // namespace flowgauge::cli

int main(int argc, char** argv) {
  using namespace flowgauge;
#if defined(__GLIBC__)
  // Two malloc arenas, not 8 per core: a main-file rebuild's transient memory (HDF5's, ~2 MB at 19200
  // cells) is then reused by the next rebuild instead of staying in the arena of each thread that
  // ran one. 19200-cell study: peak RSS 24-25 -> 21.6 MB; quickstart on 2 threads: the same time
  // (one arena: 4 % slower). MALLOC_ARENA_MAX still overrides. (A refusal, e.g. under a sanitizer's
  // allocator, only costs memory.)
  if (!std::getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 2);
#endif
  for (int i = 0; i < argc; ++i) cli::g_command_line += (i ? " " : "") + std::string(argv[i]);
  CLI::App app{"flowgauge: measure ODE/SDE samplers of diffusion and flow-matching models against exact\n"
               "Gaussian-mixture ground truth."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("flowgauge ") + FLOWGAUGE_VERSION);
  cli::add_eval(app);
  cli::add_sample(app);
  cli::add_run(app);
  cli::add_merge(app);
  cli::add_likelihood(app);
  cli::add_report(app);
  cli::add_claims(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  } catch (const cli::ExitStatus& e) {
    return e.status;
  } catch (const InputError& e) {
    fmt::print(stderr, "flowgauge: error: {}\n", e.what());
    return 2;
  } catch (const h5::WriteError& e) {  // a full disk, a file over ulimit -f: named, not "internal"
    fmt::print(stderr, "flowgauge: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "flowgauge: internal error: {}\n", e.what());
    return 1;
  }
  return 0;
}
