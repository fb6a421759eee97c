#pragma once
/// The `tern` command line:
///
///     tern [-c FILE | --config-file FILE] [--test-config] [--port N] [--bind ADDR]
///          [--threads N] [--port-file FILE] [--max-packet-size BYTES] [--verbose] [--help]
///     tern [-c FILE] --import-mosquitto-db DBFILE
///
/// Options take their value as the next argument or, for the long forms, after '='
/// (`--port=0`). The configuration comes from FILE (docs/configuration.md) or, without `-c`,
/// from default_config(); command-line options then override it.
///
/// Thread contract: pure functions apart from reading the configuration file; thread-safe.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tern/broker/config.hpp>

namespace tern::broker {

/// What main() should do: run with `config`, or print `message` and exit with `exit_code`.
struct command_line {
    std::optional<broker_config> config; ///< set when the broker should run
    std::string config_file;             ///< the `-c` file; empty: built-in default
    bool verbose = false;                ///< --verbose: debug logging on top of the file's
    /// --import-mosquitto-db FILE: import Mosquitto's database into the configured store and
    /// exit instead of running the broker (docs/mosquitto-db-import.md).
    std::optional<std::string> import_mosquitto_db;
    /// Options that were accepted but do nothing here, for main() to log once logging is up
    /// (mosquitto's `-p` when the file defines listeners).
    std::vector<std::string> warnings;
    /// When !config: 0 for --help and a configuration that passed --test-config (message on
    /// stdout); 1 for a bad configuration file; 2 for a usage error (message on stderr).
    int exit_code = 0;
    /// When !config: usage text, "FILE: configuration OK", "FILE:LINE: error" or a usage error.
    std::string message;
};

/// Parses `args` (without the program name) and, with `-c`, loads the configuration file.
/// Precedence: built-in default or file < command line: `--port`/`--bind` replace the first
/// listener's port/address (creating a listener when there is none), `-p PORT` (mosquitto's,
/// up to 10 times) replaces local only mode's loopback listener with one loopback listener per
/// port and is ignored with a warning when the file defines listeners (as mosquitto 2.0 does),
/// `-d`/`--daemon` sets daemon, `--threads` sets
/// worker_threads, `--max-packet-size` sets max_packet_size (and caps
/// max_connect_packet_size), `--port-file` sets port_file. `--import-mosquitto-db FILE` sets
/// import_mosquitto_db (the configuration is loaded as usual: it names the store).
/// Errors: unknown options, missing or malformed values, a repeated `-c`, and `--test-config`
/// without `-c` give exit_code 2 and a message naming the offending argument; a file that
/// cannot be read or parsed gives exit_code 1 and the error as `FILE:LINE: message`; --help
/// gives exit_code 0 and the usage text. `--test-config` never yields a config: exit_code 0
/// with "FILE: configuration OK", or the error with exit_code 1. `modules`: the directives of
/// plug-in modules the file may use (config_registry.hpp); null for none.
command_line parse_command_line(std::span<const std::string_view> args,
                                const config_registry* modules = nullptr);

/// The usage text printed by --help.
std::string usage();

} // namespace tern::broker
