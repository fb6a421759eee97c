#include <tern/broker/command_line.hpp>

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <limits>

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

} // namespace

std::string usage() {
    return "Usage: tern [OPTION]...\n"
           "Minimal MQTT 3.1/3.1.1/5 broker (clean sessions only; see broker/README.md).\n"
           "\n"
           "  --port N              TCP port to listen on (default 1883; 0 = ephemeral)\n"
           "  --bind ADDR           address to listen on (default 127.0.0.1)\n"
           "  --threads N           worker threads (default: hardware threads)\n"
           "  --port-file FILE      write the bound port to FILE once listening\n"
           "  --max-packet-size N   largest packet accepted after CONNECT, in bytes\n"
           "                        (default 268435456)\n"
           "  --verbose             log every connection and debug details\n"
           "  --help                show this help and exit\n";
}

command_line parse_command_line(std::span<const std::string_view> args) {
    broker_options options;
    options.threads = default_thread_count();
    command_line result;

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
        if (arg == "--verbose" || arg == "-v") {
            if (inline_value) {
                return fail(fmt::format("option '{}' takes no value", arg));
            }
            result.verbose = true;
            continue;
        }
        const bool known = arg == "--port" || arg == "--bind" || arg == "--threads" ||
                           arg == "--port-file" || arg == "--max-packet-size";
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

        if (arg == "--port") {
            const auto port = parse_number<std::uint16_t>(value, 0, 65535);
            if (!port) {
                return fail(fmt::format("invalid port '{}' (0..65535)", value));
            }
            options.port = *port;
        } else if (arg == "--bind") {
            if (value.empty()) {
                return fail("--bind needs an address");
            }
            options.bind_address = std::string(value);
        } else if (arg == "--threads") {
            const auto threads = parse_number<std::size_t>(value, 1, 1024);
            if (!threads) {
                return fail(fmt::format("invalid thread count '{}' (1..1024)", value));
            }
            options.threads = *threads;
        } else if (arg == "--port-file") {
            if (value.empty()) {
                return fail("--port-file needs a file name");
            }
            options.port_file = std::string(value);
        } else if (arg == "--max-packet-size") {
            // At least large enough for a CONNACK/SUBACK-sized exchange; at most what the
            // Remaining Length can express.
            const auto size =
                parse_number<std::uint32_t>(value, 128, std::numeric_limits<std::uint32_t>::max());
            if (!size || *size > 268'435'460U) {
                return fail(
                    fmt::format("invalid maximum packet size '{}' (128..268435460)", value));
            }
            options.max_packet_size = *size;
            if (options.max_connect_packet_size > *size) {
                options.max_connect_packet_size = *size;
            }
        }
    }
    result.options = std::move(options);
    return result;
}

} // namespace tern::broker
