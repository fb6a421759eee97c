#pragma once
/// The command line of tern-bench: `tern-bench MODE [options]`, MODE one of conn, pub, sub,
/// or `run SCENARIO.json`. Every mode becomes a scenario, so one engine runs them all.
///
/// Thread contract: plain values; parse on the main thread before the run starts.

#include <cstdint>
#include <optional>
#include <string>

#include <tern/net/client_connect.hpp>

#include "scenario.hpp"

namespace tern::bench {

struct tls_options {
    bool enabled = false;
    std::string cafile;
    std::string cert;
    std::string key;
    std::string sni;  ///< server name sent and verified; default: the host when it is a name
    std::string alpn; ///< one protocol, e.g. "mqtt"
    bool insecure = false;
};

struct bench_options {
    std::string mode;          ///< conn | pub | sub | run
    std::string scenario_file; ///< run only
    std::string host = "127.0.0.1";
    std::uint16_t port = 1883; ///< default by transport: 1883 tcp, 8883 tls, 8080 ws, 8443 wss
    /// --transport tcp|tls|ws|wss (--tls is --transport tls); tls.enabled for tls and wss.
    net::client_transport_kind transport = net::client_transport_kind::tcp;
    std::string ws_path = "/mqtt"; ///< --ws-path, the WebSocket request path
    tls_options tls;
    std::optional<std::string> username;
    std::optional<std::string> password;
    bool clean = true;
    std::string client_prefix = "tb";
    unsigned threads = 0; ///< 0: one per hardware thread
    double connect_timeout = 10;
    bool json = false;
    std::string report; ///< --report FILE.html
    bool progress = false;
    bool quiet = false;
    scenario sc; ///< the run: built from the options, or loaded and overridden
};

struct command_line {
    enum class action : std::uint8_t { run, help, version };
    action what = action::run;
    bench_options options;
};

/// Parses argv. Throws config_error naming the option and the problem (exit 2); loads and
/// validates the scenario file for `run`, applying --duration, --warmup, --ramp, --drain,
/// --connect-rate, --keepalive, --host, --port and --protocol over the file's values.
command_line parse_command_line(int argc, const char* const* argv);

/// The --help text.
std::string usage_text();

} // namespace tern::bench
