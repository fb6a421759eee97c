// admin_listener / admin_token: the admin module's directives (config_registry.hpp).
#include <tern/admin/admin_config.hpp>

#include <fmt/format.h>

#include <boost/asio/ip/address.hpp>

#include <charconv>

namespace tern::admin {

bool is_loopback(const std::string& address) noexcept {
    if (address == "localhost") {
        return true;
    }
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address(address, ec);
    return !ec && a.is_loopback();
}

void register_directives(broker::config_registry& registry, admin_config& config) {
    registry.add("admin_listener", [&config](const broker::config_line& l) {
        if (config.enabled) {
            throw broker::directive_error("admin_listener: only one admin listener");
        }
        if (l.args.empty() || l.args.size() > 2) {
            throw broker::directive_error("admin_listener: expected PORT [ADDRESS]");
        }
        unsigned port = 0;
        const auto text = l.args[0];
        const auto* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, port);
        if (ec != std::errc{} || ptr != end || port > 65535) {
            throw broker::directive_error(
                fmt::format("admin_listener: expected a port 0..65535, got '{}'", text));
        }
        config.port = static_cast<std::uint16_t>(port);
        if (l.args.size() == 2) {
            config.address = std::string(l.args[1]);
            boost::system::error_code bad;
            (void)boost::asio::ip::make_address(config.address, bad);
            if (bad && config.address != "localhost") {
                throw broker::directive_error(
                    fmt::format("admin_listener: '{}' is not an IP address", config.address));
            }
        }
        config.enabled = true;
        config.origin = fmt::format("{}:{}", l.file, l.number);
    });
    registry.add("admin_token", [&config](const broker::config_line& l) {
        if (l.args.size() != 1 || l.args[0].size() < 16) {
            throw broker::directive_error(
                "admin_token: expected one token of at least 16 characters");
        }
        config.token = std::string(l.args[0]);
    });
    registry.on_finish([&config]() -> std::optional<broker::config_problem> {
        if (config.enabled && config.token.empty() && !is_loopback(config.address)) {
            const auto colon = config.origin.rfind(':');
            broker::config_problem p;
            p.file = config.origin.substr(0, colon);
            p.line = colon == std::string::npos
                         ? 0
                         : static_cast<std::size_t>(std::stoul(config.origin.substr(colon + 1)));
            p.message = fmt::format("admin_listener on {} is reachable from other hosts: set "
                                    "admin_token (the admin API is never anonymous off loopback)",
                                    config.address);
            return p;
        }
        return std::nullopt;
    });
}

} // namespace tern::admin
