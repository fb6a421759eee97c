// tern-codec: decodes MQTT bytes given as hex and prints each packet as JSON, one object per
// line. Only parses arguments; the work is in tern::tools (packet_json.cpp).

#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>

#include <tern/tools/packet_json.hpp>

namespace {

constexpr std::string_view usage = R"(usage: tern-codec [options] [HEX...]

Decodes MQTT control packets and prints each as one JSON object per line (all fields,
properties, reason codes by name), or the error that stopped decoding, its reason code and
the byte offset of the failing packet. HEX is read from the arguments (joined), or from
stdin when there are none; whitespace, ':', ',', '-' and "0x" prefixes are ignored.

options:
  --version 3|4|5      protocol level of packets before any CONNECT (default 5); a CONNECT
                       switches to its own level, as the broker does
  --role any|server|client
                       receiving side: a server rejects CONNACK, SUBACK, ...; default any
  --max-packet-size N  reject packets larger than N bytes (default: no limit)
  --pretty             indent the JSON
  -h, --help           this text

exit status: 0 all packets decoded; 1 decoding error or truncated input; 2 bad usage.
)";

int bad_usage(std::string_view what) {
    std::cerr << "tern-codec: " << what << "\n\n" << usage;
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    namespace proto = tern::protocol;
    proto::decode_options options;
    options.role = proto::receiver_role::any;
    int indent = -1;
    std::string hex;
    bool have_hex = false;

    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        if (arg == "-h" || arg == "--help") {
            std::cout << usage;
            return 0;
        } else if (arg == "--version") {
            const char* v = value();
            const std::string_view s = v != nullptr ? v : "";
            if (s == "3") {
                options.version = proto::protocol_version::v3_1;
            } else if (s == "4" || s == "3.1.1") {
                options.version = proto::protocol_version::v3_1_1;
            } else if (s == "5") {
                options.version = proto::protocol_version::v5;
            } else {
                return bad_usage("--version takes 3, 4 or 5");
            }
        } else if (arg == "--role") {
            const char* v = value();
            const std::string_view s = v != nullptr ? v : "";
            if (s == "any") {
                options.role = proto::receiver_role::any;
            } else if (s == "server") {
                options.role = proto::receiver_role::server;
            } else if (s == "client") {
                options.role = proto::receiver_role::client;
            } else {
                return bad_usage("--role takes any, server or client");
            }
        } else if (arg == "--max-packet-size") {
            const char* v = value();
            char* end = nullptr;
            const unsigned long n = v != nullptr ? std::strtoul(v, &end, 10) : 0;
            if (v == nullptr || *end != '\0' || n < 2 || n > proto::max_packet_size) {
                return bad_usage("--max-packet-size takes a number of bytes");
            }
            options.maximum_packet_size = static_cast<std::uint32_t>(n);
        } else if (arg == "--pretty") {
            indent = 2;
        } else if (arg.starts_with("-") && arg.size() > 1) {
            return bad_usage("unknown option " + std::string(arg));
        } else {
            hex.append(arg).push_back(' ');
            have_hex = true;
        }
    }
    if (!have_hex) {
        hex.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    }

    const auto bytes = tern::tools::parse_hex(hex);
    if (!bytes) {
        return bad_usage("input is not a hex dump");
    }
    const auto report = tern::tools::decode_all(*bytes, options);
    const auto dump = [&](const nlohmann::ordered_json& j) {
        std::cout << j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
                  << '\n';
    };
    for (const auto& p : report.packets) {
        dump(p);
    }
    if (report.error) {
        dump(*report.error);
        return 1;
    }
    if (bytes->empty()) {
        std::cerr << "tern-codec: no input bytes\n";
        return 1;
    }
    return 0;
}
