#pragma once
// `tern readiness-report`: fetches the readiness report a running broker publishes on
// $SYS/broker/readiness (or reads a saved copy) and prints it as text, JSON or HTML.

#include <span>
#include <string_view>

namespace tern::broker {

/// Runs the command with `args` (after "readiness-report"); returns the exit status: 0 the
/// report was printed, 1 it could not be had (the reason on stderr), 2 a usage error.
int run_readiness_report(std::span<const std::string_view> args);

} // namespace tern::broker
