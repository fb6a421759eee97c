#include <tern/broker/command_line.hpp>

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace tern::broker {

namespace {

/// Parses a whole decimal number in [min, max]; nullopt otherwise.
template <typename T> std::optional<T> parse_number(std::string_view text, T min, T max) {
    std::uint64_t value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || ptr != end || text.empty() || value < min || value > max) {
        return std::nullopt;
    }
    return static_cast<T>(value);
}

command_line fail(std::string message) {
    command_line result;
    result.exit_code = 2;
    result.message = fmt::format("tern: {}\nTry 'tern --help'.", message);
    return result;
}

/// Command-line values, applied on top of the file once every argument has been read, so
/// the order of `-c` and the other options does not matter.
struct overrides {
    std::optional<std::uint16_t> port;
    std::optional<std::string> bind;
    std::optional<std::size_t> threads;
    std::optional<std::string> port_file;
    std::optional<std::uint32_t> max_packet_size;
    /// mosquitto's `-p`, in order.
    std::vector<std::uint16_t> mosquitto_ports;
    bool daemon = false;
};

/// mosquitto 2.0 accepts `-p` up to ten times.
constexpr std::size_t max_mosquitto_ports = 10;

listener_config& first_listener(broker_config& config) {
    if (config.listeners.empty()) {
        listener_config listener;
        listener.origin = "command line";
        config.listeners.push_back(std::move(listener));
    }
    return config.listeners.front();
}

void apply(const overrides& o, broker_config& config, std::vector<std::string>& warnings) {
    if (!o.mosquitto_ports.empty()) {
        if (config.local_only) {
            // mosquitto 2.0: each -p port is a listener on the loopback interface, in local
            // only mode's settings (anonymous clients allowed unless the file says otherwise).
            const listener_config local = config.listeners.front();
            config.listeners.clear();
            for (const auto port : o.mosquitto_ports) {
                listener_config l = local;
                l.port = port;
                l.origin = fmt::format("command line -p {}", port);
                config.listeners.push_back(std::move(l));
            }
        } else {
            warnings.emplace_back("-p is ignored: the configuration file defines listeners (as "
                                  "mosquitto 2.0 does; use a 'listener' line instead)");
        }
    }
    if (o.daemon) {
        config.daemon = true;
    }
    if (o.port) {
        first_listener(config).port = *o.port;
    }
    if (o.bind) {
        first_listener(config).bind_address = *o.bind;
        // An explicit address is the user's choice, no longer mosquitto's loopback default.
        config.local_only = false;
    }
    if (o.threads) {
        config.worker_threads = *o.threads;
    }
    if (o.port_file) {
        config.port_file = *o.port_file;
    }
    if (o.max_packet_size) {
        config.max_packet_size = *o.max_packet_size;
        if (config.max_connect_packet_size > *o.max_packet_size) {
            config.max_connect_packet_size = *o.max_packet_size;
        }
    }
}

} // namespace

std::string usage() {
    return "Usage: tern [OPTION]...\n"
           "MQTT 3.1/3.1.1/5 broker (see broker/README.md and docs/configuration.md).\n"
           "\n"
           "  -c, --config-file FILE  read a mosquitto.conf-style configuration file\n"
           "                          (default: listen on 127.0.0.1:1883 only)\n"
           "  --test-config           with -c: check the file, print the result, exit\n"
           "                          (0 when valid, 1 otherwise); never listens\n"
           "  -d, --daemon            run in the background once listening (mosquitto's -d)\n"
           "  -p PORT                 listen on PORT on the loopback interface instead of\n"
           "                          1883; up to 10 times; ignored when the file defines\n"
           "                          listeners (as in mosquitto 2.0)\n"
           "  --port N                port of the first listener (0 = ephemeral), also when\n"
           "                          the file defines listeners\n"
           "  --bind ADDR             address of the first listener\n"
           "  --threads N             worker threads (default: hardware threads)\n"
           "  --port-file FILE        write the bound port to FILE once listening\n"
           "  --max-packet-size N     largest packet accepted after CONNECT, in bytes\n"
           "                          (default 268435460, the protocol maximum)\n"
           "  --import-mosquitto-db FILE\n"
           "                          import a Mosquitto 2.0 mosquitto.db (sessions,\n"
           "                          subscriptions, queued and retained messages) into\n"
           "                          the store of the configuration (persistence true),\n"
           "                          which must hold no sessions yet, and exit\n"
           "  --verbose               log every connection and debug details\n"
           "  --help                  show this help and exit\n"
           "\n"
           "Command-line options override the configuration file.\n";
}

command_line parse_command_line(std::span<const std::string_view> args,
                                const config_registry* modules) {
    command_line result;
    overrides o;
    std::optional<std::string> config_file;
    bool test_config = false;

    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        std::optional<std::string_view> inline_value;
        if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            inline_value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        }
        // Flags without a value.
        if (arg == "--help" || arg == "-h") {
            result.exit_code = 0;
            result.message = usage();
            return result;
        }
        if (arg == "--verbose" || arg == "-v" || arg == "--test-config" || arg == "-d" ||
            arg == "--daemon") {
            if (inline_value) {
                return fail(fmt::format("option '{}' takes no value", arg));
            }
            if (arg == "-d" || arg == "--daemon") {
                o.daemon = true;
            } else {
                (arg == "--test-config" ? test_config : result.verbose) = true;
            }
            continue;
        }
        const bool known = arg == "--port" || arg == "-p" || arg == "--bind" ||
                           arg == "--threads" || arg == "--port-file" ||
                           arg == "--max-packet-size" || arg == "-c" || arg == "--config-file" ||
                           arg == "--import-mosquitto-db";
        if (!known) {
            return fail(fmt::format("unknown option '{}'", args[i]));
        }
        std::string_view value;
        if (inline_value) {
            value = *inline_value;
        } else if (i + 1 < args.size()) {
            value = args[++i];
        } else {
            return fail(fmt::format("option '{}' needs a value", arg));
        }

        if (arg == "-c" || arg == "--config-file") {
            if (value.empty()) {
                return fail(fmt::format("{} needs a file name", arg));
            }
            if (config_file) {
                return fail(fmt::format("only one configuration file may be given ('{}' and '{}')",
                                        *config_file, value));
            }
            config_file = std::string(value);
        } else if (arg == "-p") {
            const auto port = parse_number<std::uint16_t>(value, 1, 65535);
            if (!port) {
                return fail(fmt::format("invalid port '{}' (1..65535)", value));
            }
            if (o.mosquitto_ports.size() == max_mosquitto_ports) {
                return fail(fmt::format("-p may be given at most {} times", max_mosquitto_ports));
            }
            o.mosquitto_ports.push_back(*port);
        } else if (arg == "--port") {
            const auto port = parse_number<std::uint16_t>(value, 0, 65535);
            if (!port) {
                return fail(fmt::format("invalid port '{}' (0..65535)", value));
            }
            o.port = *port;
        } else if (arg == "--bind") {
            if (value.empty()) {
                return fail("--bind needs an address");
            }
            o.bind = std::string(value);
        } else if (arg == "--threads") {
            const auto threads = parse_number<std::size_t>(value, 1, 1024);
            if (!threads) {
                return fail(fmt::format("invalid thread count '{}' (1..1024)", value));
            }
            o.threads = *threads;
        } else if (arg == "--import-mosquitto-db") {
            if (value.empty()) {
                return fail("--import-mosquitto-db needs a file name");
            }
            result.import_mosquitto_db = std::string(value);
        } else if (arg == "--port-file") {
            if (value.empty()) {
                return fail("--port-file needs a file name");
            }
            o.port_file = std::string(value);
        } else if (arg == "--max-packet-size") {
            // At least large enough for a CONNACK/SUBACK-sized exchange; at most what the
            // Remaining Length can express.
            const auto size =
                parse_number<std::uint32_t>(value, 128, std::numeric_limits<std::uint32_t>::max());
            if (!size || *size > 268'435'460U) {
                return fail(
                    fmt::format("invalid maximum packet size '{}' (128..268435460)", value));
            }
            o.max_packet_size = *size;
        }
    }

    if (test_config && !config_file) {
        return fail("--test-config needs a configuration file (-c FILE)");
    }
    broker_config config;
    if (config_file) {
        auto loaded = load_config_file(*config_file, modules);
        if (!loaded.config) {
            result.exit_code = 1;
            result.message = loaded.error ? loaded.error->to_string()
                                          : fmt::format("{}: invalid configuration", *config_file);
            return result;
        }
        config = std::move(*loaded.config);
        result.config_file = *config_file;
    } else {
        config = default_config();
    }
    apply(o, config, result.warnings);
    if (test_config) {
        result.exit_code = 0;
        result.message = fmt::format("{}: configuration OK", *config_file);
        return result;
    }
    result.config = std::move(config);
    return result;
}

} // namespace tern::broker
