/// fuzz_config: parse_config_text on arbitrary bytes. It must return exactly one of a
/// configuration and an error, never crash, hang, leak or hit undefined behaviour, and its
/// result must be deterministic and self-consistent:
///   - an error names the input ("fuzz.conf"), a line that exists (or 0) and a message;
///   - a configuration has at least one listener, each with an origin in the input, local-only
///     mode exactly when the one listener is the loopback default, and no duplicate log
///     destinations or share groups.
/// include_dir is checked but not followed (include_policy::ignore), so no input reads files.

#include <tern/broker/config.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace tern::broker;

[[noreturn]] void fail(const char* what) noexcept {
    std::fprintf(stderr, "FUZZ INVARIANT VIOLATED: %s\n", what);
    std::fflush(stderr);
    std::abort();
}

#define CONFIG_FUZZ_STR2(x) #x
#define CONFIG_FUZZ_STR(x) CONFIG_FUZZ_STR2(x)
#define CONFIG_FUZZ_CHECK(cond)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail(__FILE__ ":" CONFIG_FUZZ_STR(__LINE__) ": " #cond);                               \
        }                                                                                          \
    } while (false)

constexpr std::string_view name = "fuzz.conf";

template <typename T> bool unique(const std::vector<T>& v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
        for (std::size_t j = i + 1; j < v.size(); ++j) {
            if (v[i] == v[j]) {
                return false;
            }
        }
    }
    return true;
}

void check_error(const config_error& e, std::string_view text) {
    CONFIG_FUZZ_CHECK(e.file == name);
    const auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
    CONFIG_FUZZ_CHECK(e.line <= lines);
    CONFIG_FUZZ_CHECK(!e.message.empty());
    CONFIG_FUZZ_CHECK(e.to_string().starts_with(std::string(name) + ":"));
}

void check_config(const broker_config& c) {
    CONFIG_FUZZ_CHECK(!c.listeners.empty());
    for (const auto& l : c.listeners) {
        CONFIG_FUZZ_CHECK(l.origin.starts_with(name));
        CONFIG_FUZZ_CHECK(l.protocol == "mqtt" || l.protocol == "websockets");
        CONFIG_FUZZ_CHECK(l.socket_domain.empty() || l.socket_domain == "ipv4" ||
                          l.socket_domain == "ipv6");
    }
    if (c.local_only) {
        CONFIG_FUZZ_CHECK(c.listeners.size() == 1);
        CONFIG_FUZZ_CHECK(c.listeners[0].bind_address == "127.0.0.1");
        CONFIG_FUZZ_CHECK(c.listeners[0].port == 1883);
        CONFIG_FUZZ_CHECK(c.listeners[0].origin == name);
    }
    CONFIG_FUZZ_CHECK(unique(c.logging.destinations));
    CONFIG_FUZZ_CHECK(unique(c.logging.types));
    CONFIG_FUZZ_CHECK(c.max_keepalive >= 10);
    CONFIG_FUZZ_CHECK(c.max_packet_size == 0 ||
                      (c.max_packet_size >= 20 && c.max_packet_size <= 268'435'460U));
    CONFIG_FUZZ_CHECK(c.message_size_limit <= 268'435'455U);
    CONFIG_FUZZ_CHECK(c.worker_threads <= 1024);
    CONFIG_FUZZ_CHECK(!c.persistent_client_expiration ||
                      c.persistent_client_expiration->count() > 0);
    for (std::size_t i = 0; i < c.group_strategies.size(); ++i) {
        const auto& group = c.group_strategies[i].first;
        CONFIG_FUZZ_CHECK(!group.empty());
        CONFIG_FUZZ_CHECK(group.find_first_of("/+#") == std::string::npos);
        for (std::size_t j = i + 1; j < c.group_strategies.size(); ++j) {
            CONFIG_FUZZ_CHECK(c.group_strategies[j].first != group);
        }
        CONFIG_FUZZ_CHECK(parse_share_strategy(to_string(c.group_strategies[i].second)) ==
                          c.group_strategies[i].second);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto r = parse_config_text(text, name, include_policy::ignore);
    CONFIG_FUZZ_CHECK(r.config.has_value() != r.error.has_value());
    if (r.error) {
        check_error(*r.error, text);
    } else {
        check_config(*r.config);
    }
    // Deterministic: the same text gives the same answer.
    const auto again = parse_config_text(text, name, include_policy::ignore);
    CONFIG_FUZZ_CHECK(again.config == r.config);
    CONFIG_FUZZ_CHECK(again.error.has_value() == r.error.has_value());
    if (r.error) {
        CONFIG_FUZZ_CHECK(again.error->to_string() == r.error->to_string());
    }
    return 0;
}
