#pragma once
/// The `tern` command line: `tern [--port N] [--bind ADDR] [--threads N] [--port-file FILE]
/// [--max-packet-size BYTES] [--verbose] [--help]`. Options take their value as the next
/// argument or after '=' (`--port=0`).
///
/// Thread contract: pure functions; thread-safe.

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <tern/broker/broker.hpp>

namespace tern::broker {

/// What main() should do: run with `options`, or print `message` and exit with `exit_code`.
struct command_line {
    std::optional<broker_options> options; ///< set when the broker should run
    bool verbose = false;                  ///< --verbose: debug logging
    int exit_code = 0;                     ///< when !options: 0 for --help, 2 for a usage error
    std::string message;                   ///< when !options: usage text or the error
};

/// Parses `args` (without the program name). Unknown options, missing or malformed values
/// give exit_code 2 and a message naming the offending argument; --help gives exit_code 0 and
/// the usage text.
command_line parse_command_line(std::span<const std::string_view> args);

/// The usage text printed by --help.
std::string usage();

} // namespace tern::broker
