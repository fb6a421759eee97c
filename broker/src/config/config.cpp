// The mosquitto.conf-compatible configuration parser (docs/configuration.md). Pure: it reads the
// files it is told to and nothing else, and keeps no state between calls.

#include <tern/broker/config.hpp>
#include <tern/core/file.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <limits>
#include <span>
#include <stdexcept>
#include <system_error>

namespace tern::broker {

namespace {

constexpr std::int64_t int_max = std::numeric_limits<std::int32_t>::max();
/// 1 byte fixed header + 4 bytes Remaining Length + 268435455 bytes [MQTT-2.2.3].
constexpr std::int64_t protocol_max_packet = 268'435'460;
constexpr std::int64_t protocol_max_payload = 268'435'455;

/// The first error; thrown inside the parser and caught by the public entry points only.
struct parse_failure {
    config_error error;
};

bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

std::vector<std::string_view> split_words(std::string_view s) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_space(s[i])) {
            ++i;
        }
        const std::size_t start = i;
        while (i < s.size() && !is_space(s[i])) {
            ++i;
        }
        if (i > start) {
            words.push_back(s.substr(start, i - start));
        }
    }
    return words;
}

/// A value as shown in an error message: long ones (fuzzers, binary files) are cut.
std::string shown(std::string_view value) {
    constexpr std::size_t limit = 64;
    if (value.size() <= limit) {
        return std::string(value);
    }
    return fmt::format("{}...", value.substr(0, limit - 3));
}

std::optional<std::int64_t> parse_integer(std::string_view text) noexcept {
    std::int64_t value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end) {
        return std::nullopt;
    }
    return value;
}

char ascii_upper(char c) noexcept {
    return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

/// mosquitto's include_dir order: case-insensitive first, and at the first position where only
/// the case differs, upper case first ("00.conf A.conf a.conf B.conf b.conf").
bool include_order(std::string_view a, std::string_view b) noexcept {
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
        const auto ua = static_cast<unsigned char>(ascii_upper(a[i]));
        const auto ub = static_cast<unsigned char>(ascii_upper(b[i]));
        if (ua != ub) {
            return ua < ub;
        }
        if (a[i] != b[i]) {
            return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
        }
    }
    return a.size() < b.size();
}

/// mosquitto directives this version knows but does not implement, with a hint for the user.
struct unsupported_directive {
    std::string_view name;
    std::string_view hint;
};

constexpr std::string_view auth_hint =
    " (authentication plugins are not supported: use password_file and acl_file)";
constexpr std::string_view bridge_hint = " (bridges are not implemented yet)";
constexpr std::string_view tls_hint =
    " (OpenSSL engines are not supported: use PEM key files, `tls_keyform pem`)";

constexpr std::array unsupported_directives{
    // Authentication, access control, plugins.
    unsupported_directive{"auth_plugin", auth_hint},
    unsupported_directive{"auth_plugin_deny_special_chars", auth_hint},
    unsupported_directive{"plugin", auth_hint},
    unsupported_directive{"global_plugin", auth_hint},
    unsupported_directive{"clientid_prefixes", auth_hint},
    unsupported_directive{"use_username_as_clientid", auth_hint},
    unsupported_directive{"check_retain_source", auth_hint},
    // TLS details beyond what the listener keeps.
    unsupported_directive{"tls_engine", tls_hint},
    unsupported_directive{"tls_engine_kpass_sha1", tls_hint},
    // Other general and listener options.
    unsupported_directive{"allow_duplicate_messages", ""},
    unsupported_directive{"http_dir",
                          " (tern serves MQTT over WebSocket on any path, and no files)"},
    unsupported_directive{"max_inflight_bytes", ""},
    unsupported_directive{"max_qos", ""},
    unsupported_directive{"memory_limit", ""},
    unsupported_directive{"mount_point", ""},
    unsupported_directive{"queue_qos0_messages", ""},
    unsupported_directive{"retry_interval", ""},
    unsupported_directive{"store_clean_interval", ""},
    unsupported_directive{"upgrade_outgoing_qos", ""},
    unsupported_directive{"websockets_log_level", ""},
    // Bridges.
    unsupported_directive{"connection", bridge_hint},
    unsupported_directive{"address", bridge_hint},
    unsupported_directive{"addresses", bridge_hint},
    unsupported_directive{"bridge_alpn", bridge_hint},
    unsupported_directive{"bridge_attempt_unsubscribe", bridge_hint},
    unsupported_directive{"bridge_bind_address", bridge_hint},
    unsupported_directive{"bridge_cafile", bridge_hint},
    unsupported_directive{"bridge_capath", bridge_hint},
    unsupported_directive{"bridge_certfile", bridge_hint},
    unsupported_directive{"bridge_identity", bridge_hint},
    unsupported_directive{"bridge_insecure", bridge_hint},
    unsupported_directive{"bridge_keyfile", bridge_hint},
    unsupported_directive{"bridge_max_packet_size", bridge_hint},
    unsupported_directive{"bridge_outgoing_retain", bridge_hint},
    unsupported_directive{"bridge_protocol_version", bridge_hint},
    unsupported_directive{"bridge_psk", bridge_hint},
    unsupported_directive{"bridge_require_ocsp", bridge_hint},
    unsupported_directive{"bridge_tls_version", bridge_hint},
    unsupported_directive{"cleansession", bridge_hint},
    unsupported_directive{"clientid", bridge_hint},
    unsupported_directive{"idle_timeout", bridge_hint},
    unsupported_directive{"keepalive_interval", bridge_hint},
    unsupported_directive{"local_cleansession", bridge_hint},
    unsupported_directive{"local_clientid", bridge_hint},
    unsupported_directive{"local_password", bridge_hint},
    unsupported_directive{"local_username", bridge_hint},
    unsupported_directive{"notification_topic", bridge_hint},
    unsupported_directive{"notifications", bridge_hint},
    unsupported_directive{"notifications_local_only", bridge_hint},
    unsupported_directive{"password", bridge_hint},
    unsupported_directive{"remote_clientid", bridge_hint},
    unsupported_directive{"remote_password", bridge_hint},
    unsupported_directive{"remote_username", bridge_hint},
    unsupported_directive{"restart_timeout", bridge_hint},
    unsupported_directive{"round_robin", bridge_hint},
    unsupported_directive{"start_type", bridge_hint},
    unsupported_directive{"threshold", bridge_hint},
    unsupported_directive{"topic", bridge_hint},
    unsupported_directive{"try_private", bridge_hint},
    unsupported_directive{"username", bridge_hint},
};

std::optional<std::string_view> unsupported_hint(std::string_view name) noexcept {
    // auth_opt_* and plugin_opt_* pass options to a plugin: unsupported with it.
    if (name.starts_with("auth_opt_") || name.starts_with("plugin_opt_")) {
        return auth_hint;
    }
    for (const auto& d : unsupported_directives) {
        if (d.name == name) {
            return d.hint;
        }
    }
    return std::nullopt;
}

/// The names `tls_policy` accepts (net/src/tls_context.cpp defines what each pins; the parser
/// stays free of OpenSSL).
constexpr std::array tls_policy_names{
    std::string_view{"IoTSecurityPolicy_TLS13_1_3_2022_10"},
    std::string_view{"IoTSecurityPolicy_TLS13_1_2_2022_10"},
    std::string_view{"IoTSecurityPolicy_TLS12_1_2_2022_10"},
    std::string_view{"IoTSecurityPolicy_TLS12_1_0_2016_01"},
    std::string_view{"IoTSecurityPolicy_TLS12_1_0_2015_01"},
    std::string_view{"modern"},
    std::string_view{"default"},
};

bool known_tls_policy(std::string_view name) {
    return std::find(tls_policy_names.begin(), tls_policy_names.end(), name) !=
           tls_policy_names.end();
}

std::string tls_policy_list() {
    std::string out;
    for (const auto n : tls_policy_names) {
        out += out.empty() ? "" : ", ";
        out += n;
    }
    return out;
}

class parser {
public:
    parser(include_policy includes, std::string main_file, const config_registry* modules)
        : includes_(includes), main_file_(std::move(main_file)), modules_(modules) {}

    /// Parses one file's text. Each file starts in the default-listener scope and a `listener`
    /// block ends with its file, as in mosquitto (whose current listener is per file).
    void parse_text(std::string_view text, const std::string& file, int depth) {
        if (text.starts_with("\xEF\xBB\xBF")) {
            text.remove_prefix(3); // a UTF-8 byte order mark some editors add
        }
        const auto saved_current = current_;
        const auto saved_depth = depth_;
        current_.reset();
        depth_ = depth;
        std::size_t number = 0;
        while (!text.empty()) {
            const auto eol = text.find('\n');
            const std::string_view raw = text.substr(0, eol);
            text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
            ++number;
            const std::string_view content = trim(raw);
            if (content.empty() || content.front() == '#') {
                continue;
            }
            std::size_t name_end = 0;
            while (name_end < content.size() && !is_space(content[name_end])) {
                ++name_end;
            }
            const line l{file, number, content.substr(0, name_end), trim(content.substr(name_end)),
                         split_words(content.substr(name_end))};
            dispatch(l);
        }
        current_ = saved_current;
        depth_ = saved_depth;
    }

    /// A listener's TLS directives must add up to a TLS listener (mosquitto refuses the same
    /// combinations at start-up; here they are config errors naming the listener).
    void check_tls(const listener_config& c,
                   const std::pair<std::string, std::size_t>& origin) const {
        auto error = [&](std::string message) {
            throw parse_failure{{origin.first, origin.second, std::move(message)}};
        };
        const bool any_tls_option =
            !c.cafile.empty() || !c.capath.empty() || !c.keyfile.empty() || !c.crlfile.empty() ||
            !c.dhparamfile.empty() || c.require_certificate || c.use_identity_as_username ||
            c.use_subject_as_username || !c.tls_version.empty() || !c.ciphers.empty() ||
            !c.ciphers_tls13.empty() || !c.tls_policy.empty() || !c.sni_certificates.empty() ||
            !c.ocsp_responder.empty() || !c.alpn.empty() || c.require_alpn || c.require_sni;
        if (!c.tls() && any_tls_option) {
            error("TLS options are set but certfile (or psk_hint) is not: the listener would be "
                  "plain TCP");
        }
        if (!c.certfile.empty() && c.keyfile.empty()) {
            error("certfile is set but keyfile is not");
        }
        if (!c.psk_hint.empty() && cfg_.psk_file.empty()) {
            error("psk_hint is set but no psk_file gives the keys");
        }
        // A PSK listener's identities need no CA (mosquitto refuses cafile there, even).
        const bool psk_identity = !c.psk_hint.empty() && c.certfile.empty();
        if ((c.require_certificate ||
             ((c.use_identity_as_username || c.use_subject_as_username) && !psk_identity)) &&
            c.cafile.empty() && c.capath.empty()) {
            error("client certificates need cafile or capath to be verified against");
        }
        if (!c.ocsp_responder.empty() && c.cafile.empty() && c.capath.empty()) {
            error("ocsp_responder checks client certificates: it needs the cafile or capath "
                  "they are verified against (OCSP answers are signed by those CAs)");
        }
        if (!c.ocsp_responder.empty() && !c.require_certificate && !c.use_identity_as_username &&
            !c.use_subject_as_username) {
            error("ocsp_responder checks client certificates, but this listener does not ask "
                  "for one: set require_certificate true");
        }
        if (!c.tls_policy.empty() &&
            (!c.tls_version.empty() || !c.ciphers.empty() || !c.ciphers_tls13.empty())) {
            error("tls_policy pins versions and ciphers: do not combine it with tls_version, "
                  "ciphers or ciphers_tls1.3");
        }
    }

    broker_config finish(const std::string& main_file) {
        // mosquitto starts its default listener when `port`/`bind_address` were given or any
        // per-listener option before the first `listener` differs from its default.
        listener_config fresh;
        listener_config unnamed = default_listener_;
        unnamed.origin.clear();
        if (default_origin_ && (default_explicit_ || !(unnamed == fresh))) {
            cfg_.listeners.insert(cfg_.listeners.begin(), default_listener_);
            origins_.insert(origins_.begin(), *default_origin_);
        }
        if (cfg_.listeners.empty()) {
            // mosquitto 2.0 "local only mode": no listener configured, so listen on loopback
            // only, and allow anonymous clients unless the file says otherwise.
            listener_config local;
            local.bind_address = "127.0.0.1";
            local.origin = main_file;
            cfg_.listeners.push_back(local);
            origins_.push_back({main_file, 0});
            cfg_.local_only = true;
            if (!allow_anonymous_set_) {
                cfg_.allow_anonymous = true;
            }
        }
        for (std::size_t i = 0; i < cfg_.listeners.size(); ++i) {
            check_tls(cfg_.listeners[i], origins_[i]);
        }
        // Two listeners on the same port and address could never both bind; say so now rather
        // than at start-up. Ephemeral ports (0) never clash.
        for (std::size_t j = 1; j < cfg_.listeners.size(); ++j) {
            for (std::size_t i = 0; i < j; ++i) {
                const auto& a = cfg_.listeners[i];
                const auto& b = cfg_.listeners[j];
                if (b.port != 0 && a.port == b.port && a.bind_address == b.bind_address) {
                    throw parse_failure{
                        {origins_[j].first, origins_[j].second,
                         fmt::format("listener {}{}{} is already defined at {}", b.port,
                                     b.bind_address.empty() ? "" : " ", b.bind_address, a.origin)}};
                }
            }
        }
        if (modules_ != nullptr) {
            for (const auto& check : modules_->finishers()) {
                if (auto problem = check()) {
                    throw parse_failure{
                        {std::move(problem->file), problem->line, std::move(problem->message)}};
                }
            }
        }
        return std::move(cfg_);
    }

private:
    struct line {
        const std::string& file;
        std::size_t number;
        std::string_view name;
        std::string_view rest; ///< everything after the directive, trimmed
        std::vector<std::string_view> args;
    };
    using handler = void (parser::*)(const line&);
    struct directive {
        std::string_view name;
        handler handle;
    };

    [[noreturn]] static void fail(const line& l, std::string message) {
        throw parse_failure{{l.file, l.number, std::move(message)}};
    }

    /// More than `used` values. mosquitto has no trailing comments either (it silently ignores
    /// extra words), so a '#' among the values gets its own explanation.
    [[noreturn]] static void fail_extra(const line& l, std::size_t used) {
        for (std::size_t k = 1; k <= used && k < l.args.size(); ++k) {
            if (l.args[k].starts_with('#')) {
                fail(l, fmt::format("{}: unexpected '{}' after the value (a comment must be on "
                                    "a line of its own)",
                                    l.name, shown(after(l, k - 1))));
            }
        }
        fail(l, fmt::format("{}: unexpected extra value '{}'", l.name, shown(l.args[used])));
    }

    [[noreturn]] static void fail_unsupported(const line& l, std::string_view what,
                                              std::string_view hint = "") {
        fail(l, fmt::format("'{}' is not supported by this version of tern{}", what, hint));
    }

    /// The trimmed rest of the line after argument `index`.
    static std::string_view after(const line& l, std::size_t index) {
        const std::string_view arg = l.args[index];
        const auto offset = static_cast<std::size_t>(arg.data() - l.rest.data()) + arg.size();
        return trim(l.rest.substr(offset));
    }

    /// The single value of the directive.
    static std::string_view single(const line& l, std::string_view expected) {
        if (l.args.empty()) {
            fail(l, fmt::format("{}: missing value (expected {})", l.name, expected));
        }
        if (l.args.size() > 1) {
            fail_extra(l, 1);
        }
        return l.args[0];
    }

    /// The whole rest of the line: paths and strftime formats may contain spaces (mosquitto
    /// reads these values the same way).
    static std::string text(const line& l, std::string_view expected) {
        if (l.rest.empty()) {
            fail(l, fmt::format("{}: missing value (expected {})", l.name, expected));
        }
        return std::string(l.rest);
    }

    static std::int64_t integer(const line& l, std::int64_t min, std::int64_t max,
                                std::string_view expected = "") {
        const std::string range =
            expected.empty() ? fmt::format("an integer {}..{}", min, max) : std::string(expected);
        const std::string_view value = single(l, range);
        const auto n = parse_integer(value);
        if (!n || *n < min || *n > max) {
            fail(l, fmt::format("{}: expected {}, got '{}'", l.name, range, shown(value)));
        }
        return *n;
    }

    template <typename T> static T integer_as(const line& l, std::int64_t min, std::int64_t max) {
        return static_cast<T>(integer(l, min, max));
    }

    static bool boolean(const line& l) {
        const std::string_view value = single(l, "true or false");
        // mosquitto 2.0 also takes 1 and 0.
        if (value == "true" || value == "1") {
            return true;
        }
        if (value == "false" || value == "0") {
            return false;
        }
        fail(l, fmt::format("{}: expected true or false, got '{}'", l.name, shown(value)));
    }

    static std::uint16_t port_value(const line& l, std::string_view value) {
        const auto n = parse_integer(value);
        if (!n || *n < 0 || *n > 65535) {
            fail(l, fmt::format("{}: expected a port 0..65535, got '{}'", l.name, shown(value)));
        }
        return static_cast<std::uint16_t>(*n);
    }

    static void set_once(const line& l, std::string& field, std::string value,
                         std::string_view scope) {
        // mosquitto refuses a second value for its string options ("Duplicate ... value").
        if (!field.empty()) {
            fail(l, fmt::format("{}: duplicate value{}", l.name, scope));
        }
        field = std::move(value);
    }

    std::string here(const line& l) const { return fmt::format("{}:{}", l.file, l.number); }

    /// The listener per-listener directives apply to: the current `listener` block, or the
    /// legacy default listener before the first one in this file.
    listener_config& target(const line& l) {
        if (current_) {
            return cfg_.listeners[*current_];
        }
        touch_default(l);
        return default_listener_;
    }

    void touch_default(const line& l) {
        if (!default_origin_) {
            default_origin_ = {l.file, l.number};
            default_listener_.origin = here(l);
        }
    }

    /// The broker's own directives.
    static std::span<const directive> directives() {
        static constexpr std::array directives{
            directive{"allow_anonymous", &parser::on_allow_anonymous},
            directive{"acl_file", &parser::on_acl_file},
            directive{"password_file", &parser::on_password_file},
            directive{"bind_address", &parser::on_bind_address},
            directive{"bind_interface", &parser::on_bind_interface},
            directive{"cafile", &parser::on_cafile},
            directive{"capath", &parser::on_capath},
            directive{"certfile", &parser::on_certfile},
            directive{"ciphers", &parser::on_ciphers},
            directive{"ciphers_tls1.3", &parser::on_ciphers_tls13},
            directive{"crlfile", &parser::on_crlfile},
            directive{"dhparamfile", &parser::on_dhparamfile},
            directive{"ocsp_cache_max_age", &parser::on_ocsp_cache_max_age},
            directive{"ocsp_cache_size", &parser::on_ocsp_cache_size},
            directive{"ocsp_fail_open", &parser::on_ocsp_fail_open},
            directive{"ocsp_responder", &parser::on_ocsp_responder},
            directive{"ocsp_timeout", &parser::on_ocsp_timeout},
            directive{"proxy_protocol", &parser::on_proxy_protocol},
            directive{"psk_file", &parser::on_psk_file},
            directive{"psk_hint", &parser::on_psk_hint},
            directive{"sni_certificate", &parser::on_sni_certificate},
            directive{"tls_keyform", &parser::on_tls_keyform},
            directive{"tls_policy", &parser::on_tls_policy},
            directive{"alpn", &parser::on_alpn},
            directive{"require_alpn", &parser::on_require_alpn},
            directive{"require_sni", &parser::on_require_sni},
            directive{"use_subject_as_username", &parser::on_use_subject_as_username},
            directive{"connection_messages", &parser::on_connection_messages},
            directive{"include_dir", &parser::on_include_dir},
            directive{"keyfile", &parser::on_keyfile},
            directive{"listener", &parser::on_listener},
            directive{"log_dest", &parser::on_log_dest},
            directive{"log_facility", &parser::on_log_facility},
            directive{"log_timestamp", &parser::on_log_timestamp},
            directive{"log_timestamp_format", &parser::on_log_timestamp_format},
            directive{"log_type", &parser::on_log_type},
            directive{"max_connections", &parser::on_max_connections},
            directive{"max_inflight_messages", &parser::on_max_inflight_messages},
            directive{"max_keepalive", &parser::on_max_keepalive},
            directive{"max_packet_size", &parser::on_max_packet_size},
            directive{"max_queued_bytes", &parser::on_max_queued_bytes},
            directive{"max_topic_alias", &parser::on_max_topic_alias},
            directive{"allow_zero_length_clientid", &parser::on_allow_zero_length_clientid},
            directive{"aws_account_connects_per_second", &parser::on_aws_account},
            directive{"aws_account_inbound_publishes_per_second", &parser::on_aws_account},
            directive{"aws_account_max_connections", &parser::on_aws_account},
            directive{"aws_account_outbound_publishes_per_second", &parser::on_aws_account},
            directive{"aws_account_subscriptions_per_second", &parser::on_aws_account},
            directive{"auto_id_prefix", &parser::on_auto_id_prefix},
            directive{"set_tcp_nodelay", &parser::on_set_tcp_nodelay},
            directive{"max_queued_messages", &parser::on_max_queued_messages},
            directive{"message_size_limit", &parser::on_message_size_limit},
            directive{"per_listener_settings", &parser::on_per_listener_settings},
            directive{"persistent_client_expiration", &parser::on_persistent_client_expiration},
            directive{"daemon", &parser::on_daemon},
            directive{"pid_file", &parser::on_pid_file},
            directive{"port", &parser::on_port},
            directive{"profile", &parser::on_profile},
            directive{"protocol", &parser::on_protocol},
            directive{"readiness_report", &parser::on_readiness_report},
            directive{"require_certificate", &parser::on_require_certificate},
            directive{"retain_available", &parser::on_retain_available},
            directive{"shared_subscription_strategy", &parser::on_shared_subscription_strategy},
            directive{"socket_domain", &parser::on_socket_domain},
            directive{"sys_interval", &parser::on_sys_interval},
            directive{"tls_version", &parser::on_tls_version},
            directive{"use_identity_as_username", &parser::on_use_identity_as_username},
            directive{"user", &parser::on_user},
            directive{"websockets_headers_size", &parser::on_websockets_headers_size},
            directive{"worker_threads", &parser::on_worker_threads},
            directive{"connect_timeout", &parser::on_connect_timeout},
        };
        return directives;
    }

public:
    static bool knows(std::string_view name) noexcept {
        const auto all = directives();
        return std::any_of(all.begin(), all.end(),
                           [&](const directive& d) { return d.name == name; });
    }

private:
    void dispatch(const line& l) {
        for (const auto& d : directives()) {
            if (d.name == l.name) {
                (this->*d.handle)(l);
                return;
            }
        }
        if (modules_ != nullptr) {
            if (const auto* module_handler = modules_->find(l.name)) {
                try {
                    (*module_handler)(config_line{l.file, l.number, l.name, l.rest, l.args});
                } catch (const directive_error& e) {
                    fail(l, e.what());
                }
                return;
            }
        }
        if (const auto hint = unsupported_hint(l.name)) {
            fail_unsupported(l, l.name, *hint);
        }
        fail(l, fmt::format("unknown directive '{}'", shown(l.name)));
    }

    // ---- listeners ------------------------------------------------------------------------

    void on_listener(const line& l) {
        if (l.args.empty()) {
            fail(l, "listener: missing value (expected a port 0..65535 and an optional bind "
                    "address)");
        }
        if (l.args.size() > 2) {
            fail_extra(l, 2);
        }
        listener_config listener;
        listener.port = port_value(l, l.args[0]);
        if (l.args.size() == 2) {
            if (l.args[1].starts_with('#')) {
                fail_extra(l, 1);
            }
            // mosquitto reads `listener 0 /path` as a Unix socket.
            if (l.args[1].find('/') != std::string_view::npos) {
                fail_unsupported(l, "listener on a unix socket");
            }
            listener.bind_address = std::string(l.args[1]);
        }
        listener.origin = here(l);
        cfg_.listeners.push_back(std::move(listener));
        origins_.emplace_back(l.file, l.number);
        current_ = cfg_.listeners.size() - 1;
    }

    void on_port(const line& l) {
        const std::string_view value = single(l, "a port 0..65535");
        const std::uint16_t port = port_value(l, value);
        touch_default(l);
        default_listener_.port = port;
        default_explicit_ = true;
    }

    void on_bind_address(const line& l) {
        const std::string_view value = single(l, "an address");
        touch_default(l);
        default_listener_.bind_address = std::string(value);
        default_explicit_ = true;
    }

    void on_profile(const line& l) {
        const std::string_view value = single(l, "mosquitto or aws-iot");
        if (value == "mosquitto") {
            target(l).profile = listener_profile::mosquitto;
        } else if (value == "aws-iot") {
            target(l).profile = listener_profile::aws_iot;
        } else {
            fail(l, fmt::format("profile: expected mosquitto or aws-iot, got '{}'", shown(value)));
        }
    }

    void on_protocol(const line& l) {
        const std::string_view value = single(l, "mqtt or websockets");
        if (value != "mqtt" && value != "websockets") {
            fail(l, fmt::format("protocol: expected mqtt or websockets, got '{}'", shown(value)));
        }
        target(l).protocol = std::string(value);
    }

    void on_socket_domain(const line& l) {
        const std::string_view value = single(l, "ipv4 or ipv6");
        if (value != "ipv4" && value != "ipv6") {
            fail(l, fmt::format("socket_domain: expected ipv4 or ipv6, got '{}'", shown(value)));
        }
        target(l).socket_domain = std::string(value);
    }

    void on_max_connections(const line& l) {
        const auto n = integer(l, -1, int_max, "-1 (unlimited) or an integer 0..2147483647");
        const std::optional<std::size_t> limit =
            n < 0 ? std::nullopt : std::optional<std::size_t>(static_cast<std::size_t>(n));
        if (current_) {
            cfg_.listeners[*current_].max_connections = limit;
        } else {
            cfg_.max_connections = limit;
        }
    }

    void on_cafile(const line& l) {
        set_once(l, target(l).cafile, text(l, "a file name"), " for this listener");
    }
    void on_capath(const line& l) {
        set_once(l, target(l).capath, text(l, "a directory"), " for this listener");
    }
    void on_certfile(const line& l) {
        set_once(l, target(l).certfile, text(l, "a file name"), " for this listener");
    }
    void on_keyfile(const line& l) {
        set_once(l, target(l).keyfile, text(l, "a file name"), " for this listener");
    }
    void on_ciphers(const line& l) {
        set_once(l, target(l).ciphers, text(l, "a cipher list"), " for this listener");
    }
    void on_tls_version(const line& l) {
        const std::string_view value = single(l, "tlsv1.3, tlsv1.2 or tlsv1.1");
        if (value != "tlsv1.3" && value != "tlsv1.2" && value != "tlsv1.1") {
            fail(l, fmt::format("tls_version: expected tlsv1.3, tlsv1.2 or tlsv1.1, got '{}'",
                                shown(value)));
        }
        target(l).tls_version = std::string(value);
    }
    void on_require_certificate(const line& l) { target(l).require_certificate = boolean(l); }
    void on_use_identity_as_username(const line& l) {
        target(l).use_identity_as_username = boolean(l);
    }
    void on_use_subject_as_username(const line& l) {
        target(l).use_subject_as_username = boolean(l);
    }
    void on_ciphers_tls13(const line& l) {
        set_once(l, target(l).ciphers_tls13, text(l, "a TLS 1.3 cipher suite list"),
                 " for this listener");
    }
    void on_crlfile(const line& l) {
        set_once(l, target(l).crlfile, text(l, "a file name"), " for this listener");
    }
    void on_ocsp_responder(const line& l) {
        const std::string_view url = single(l, "an http:// URL");
        if (!url.starts_with("http://") || url.size() == 7) {
            fail(l, fmt::format("ocsp_responder: expected an http://HOST[:PORT][/PATH] URL (OCSP "
                                "answers are signed, so plain HTTP is what responders serve), "
                                "got '{}'",
                                shown(url)));
        }
        set_once(l, target(l).ocsp_responder, std::string(url), " for this listener");
    }
    void on_ocsp_timeout(const line& l) {
        target(l).ocsp_timeout = std::chrono::seconds(integer_as<std::uint32_t>(l, 1, 60));
    }
    void on_ocsp_fail_open(const line& l) { target(l).ocsp_fail_open = boolean(l); }
    void on_ocsp_cache_size(const line& l) {
        target(l).ocsp_cache_size = integer_as<std::size_t>(l, 1, 10'000'000);
    }
    void on_ocsp_cache_max_age(const line& l) {
        target(l).ocsp_cache_max_age =
            std::chrono::seconds(integer_as<std::uint32_t>(l, 1, 604800));
    }
    void on_dhparamfile(const line& l) {
        set_once(l, target(l).dhparamfile, text(l, "a file name"), " for this listener");
    }
    void on_psk_hint(const line& l) {
        set_once(l, target(l).psk_hint, text(l, "a hint"), " for this listener");
    }
    void on_websockets_headers_size(const line& l) {
        // mosquitto takes 0..65535 (0 meaning its default); tern needs room for a real request.
        const auto n = integer(l, 0, 65535);
        cfg_.websockets_headers_size =
            n == 0 ? 8 * 1024 : static_cast<std::size_t>(std::max<std::int64_t>(n, 256));
    }
    void on_bind_interface(const line& l) {
        set_once(l, target(l).bind_interface, text(l, "an interface name"), " for this listener");
    }
    void on_proxy_protocol(const line& l) { target(l).proxy_protocol = boolean(l); }
    void on_psk_file(const line& l) { set_once(l, cfg_.psk_file, text(l, "a file name"), ""); }
    void on_tls_keyform(const line& l) {
        const std::string_view value = single(l, "pem or engine");
        if (value == "engine") {
            fail_unsupported(l, "tls_keyform engine", tls_hint);
        }
        if (value != "pem") {
            fail(l, fmt::format("tls_keyform: expected pem or engine, got '{}'", shown(value)));
        }
    }
    void on_tls_policy(const line& l) {
        const std::string_view value = single(l, "a policy name");
        if (!known_tls_policy(value)) {
            fail(l, fmt::format("tls_policy: unknown policy '{}' (expected one of {})",
                                shown(value), tls_policy_list()));
        }
        set_once(l, target(l).tls_policy, std::string(value), " for this listener");
    }
    void on_alpn(const line& l) {
        if (l.args.empty()) {
            fail(l, "alpn: expected one or more protocol names (e.g. x-amzn-mqtt-ca)");
        }
        auto& t = target(l);
        t.alpn.clear();
        for (const auto a : l.args) {
            if (a.size() > 255) {
                fail(l, fmt::format("alpn: protocol name longer than 255 bytes: '{}'", shown(a)));
            }
            t.alpn.emplace_back(a);
        }
    }
    void on_require_alpn(const line& l) { target(l).require_alpn = boolean(l); }
    void on_require_sni(const line& l) { target(l).require_sni = boolean(l); }
    void on_sni_certificate(const line& l) {
        if (l.args.size() != 3) {
            fail(l, "sni_certificate: expected HOST CERTFILE KEYFILE");
        }
        auto& t = target(l);
        for (const auto& e : t.sni_certificates) {
            if (e.host == l.args[0]) {
                fail(l, fmt::format("sni_certificate: duplicate host '{}' for this listener",
                                    shown(l.args[0])));
            }
        }
        t.sni_certificates.push_back(listener_config::sni_entry{
            std::string(l.args[0]), std::string(l.args[1]), std::string(l.args[2])});
    }

    // ---- general options ------------------------------------------------------------------

    void on_allow_anonymous(const line& l) {
        if (cfg_.per_listener_settings) {
            // mosquitto: with per_listener_settings, allow_anonymous belongs to the listener it
            // follows (the default listener before the first `listener` line).
            target(l).allow_anonymous = boolean(l);
            return;
        }
        cfg_.allow_anonymous = boolean(l);
        allow_anonymous_set_ = true;
    }
    /// password_file / acl_file: broker-wide, or the listener's under per_listener_settings
    /// (mosquitto's rule, the same as allow_anonymous).
    void on_password_file(const line& l) {
        auto& field = cfg_.per_listener_settings ? target(l).password_file : cfg_.password_file;
        set_once(l, field, text(l, "a file name"), "");
        access_files_set_ = true;
    }
    void on_acl_file(const line& l) {
        auto& field = cfg_.per_listener_settings ? target(l).acl_file : cfg_.acl_file;
        set_once(l, field, text(l, "a file name"), "");
        access_files_set_ = true;
    }
    void on_max_inflight_messages(const line& l) {
        cfg_.max_inflight_messages = integer_as<std::uint16_t>(l, 0, 65535);
    }
    void on_max_queued_messages(const line& l) {
        cfg_.max_queued_messages = integer_as<std::size_t>(l, 0, int_max);
    }
    void on_max_queued_bytes(const line& l) {
        constexpr auto max = static_cast<std::int64_t>(std::min<std::uint64_t>(
            std::numeric_limits<std::size_t>::max(), std::numeric_limits<std::int64_t>::max()));
        cfg_.max_queued_bytes = integer_as<std::size_t>(l, 0, max);
    }
    void on_message_size_limit(const line& l) {
        cfg_.message_size_limit = integer_as<std::uint32_t>(l, 0, protocol_max_payload);
    }
    void on_max_packet_size(const line& l) {
        const auto n =
            integer(l, 0, protocol_max_packet, "0 (protocol maximum) or an integer 20..268435460");
        if (n > 0 && n < 20) {
            fail(l, fmt::format("max_packet_size: expected 0 (protocol maximum) or an integer "
                                "20..268435460, got '{}'",
                                n));
        }
        cfg_.max_packet_size = static_cast<std::uint32_t>(n);
    }
    void on_max_keepalive(const line& l) {
        // mosquitto 2.0 refuses less than 10 s.
        cfg_.max_keepalive = integer_as<std::uint16_t>(l, 10, 65535);
    }
    void on_persistent_client_expiration(const line& l) {
        constexpr std::string_view expected =
            "a duration: a positive integer and a unit s, h, d, w, m (30 days) or y (365 days)";
        const std::string_view value = single(l, expected);
        // mosquitto: a positive integer and one unit; a month is 30 days, a year 365. Seconds
        // are a Tern extension (tests expire sessions in seconds, not hours).
        std::int64_t unit = 0;
        switch (value.empty() ? '\0' : value.back()) {
        case 's':
            unit = 1;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        case 'w':
            unit = 86400 * 7;
            break;
        case 'm':
            unit = 86400 * 30;
            break;
        case 'y':
            unit = 86400 * 365;
            break;
        default:
            break;
        }
        const auto amount = parse_integer(value.substr(0, value.empty() ? 0 : value.size() - 1));
        if (unit == 0 || !amount || *amount < 1 || *amount > int_max) {
            fail(l, fmt::format("{}: expected {}, got '{}'", l.name, expected, shown(value)));
        }
        cfg_.persistent_client_expiration = std::chrono::seconds(*amount * unit);
    }
    void on_retain_available(const line& l) { cfg_.retain_available = boolean(l); }
    void on_readiness_report(const line& l) { cfg_.readiness_report = boolean(l); }
    void on_aws_account(const line& l) {
        auto& q = cfg_.aws_account;
        const auto n = static_cast<std::uint32_t>(
            integer(l, 0, 4'294'967'295, "0 (unlimited) or an integer up to 4294967295"));
        if (l.name == "aws_account_max_connections") {
            q.max_connections = n;
        } else if (l.name == "aws_account_connects_per_second") {
            q.connects_per_second = n;
        } else if (l.name == "aws_account_inbound_publishes_per_second") {
            q.inbound_publishes_per_second = n;
        } else if (l.name == "aws_account_outbound_publishes_per_second") {
            q.outbound_publishes_per_second = n;
        } else {
            q.subscriptions_per_second = n;
        }
    }
    void on_sys_interval(const line& l) {
        cfg_.sys_interval = std::chrono::seconds(integer(l, 0, 65535));
    }
    void on_per_listener_settings(const line& l) {
        const bool value = boolean(l);
        // It changes what the settings after it mean, so it must come before them (mosquitto
        // documents it at the top of the file).
        if (value != cfg_.per_listener_settings && (allow_anonymous_set_ || access_files_set_ ||
                                                    !cfg_.listeners.empty() || default_origin_)) {
            fail(l, "per_listener_settings must come before any listener, allow_anonymous, "
                    "password_file and acl_file");
        }
        cfg_.per_listener_settings = value;
    }
    void on_allow_zero_length_clientid(const line& l) {
        cfg_.allow_zero_length_clientid = boolean(l);
    }
    void on_auto_id_prefix(const line& l) {
        // mosquitto allows up to 50 characters; the id must stay a valid MQTT string.
        const std::string_view prefix = single(l, "a prefix");
        if (prefix.size() > 50) {
            fail(l, fmt::format("auto_id_prefix: at most 50 characters, got {}", prefix.size()));
        }
        cfg_.auto_id_prefix = std::string(prefix);
    }
    void on_set_tcp_nodelay(const line& l) { cfg_.set_tcp_nodelay = boolean(l); }
    void on_max_topic_alias(const line& l) {
        target(l).max_topic_alias = integer_as<std::uint16_t>(l, 0, 65535);
    }
    void on_daemon(const line& l) { cfg_.daemon = boolean(l); }
    void on_pid_file(const line& l) { set_once(l, cfg_.pid_file, text(l, "a file name"), ""); }
    void on_user(const line& l) { set_once(l, cfg_.user, text(l, "a user name"), ""); }
    void on_worker_threads(const line& l) {
        cfg_.worker_threads = integer_as<std::size_t>(l, 0, 1024);
    }
    void on_connect_timeout(const line& l) {
        cfg_.connect_timeout = std::chrono::seconds(integer_as<std::uint32_t>(l, 1, 3600));
    }

    void on_shared_subscription_strategy(const line& l) {
        constexpr std::string_view names =
            "round_robin, random, client_hash, topic_hash or least_inflight";
        if (l.args.empty()) {
            fail(l, fmt::format("{}: missing value (expected [GROUP] STRATEGY, STRATEGY one of {})",
                                l.name, names));
        }
        if (l.args.size() > 2) {
            fail_extra(l, 2);
        }
        const std::string_view name = l.args.back();
        const auto strategy = parse_share_strategy(name);
        if (!strategy) {
            fail(l, fmt::format("{}: unknown strategy '{}' (expected {})", l.name, shown(name),
                                names));
        }
        if (l.args.size() == 1) {
            cfg_.shared_subscription_strategy = *strategy;
            return;
        }
        const std::string_view group = l.args[0];
        // A ShareName must not contain '/', '+' or '#' [MQTT-4.8.2-2].
        if (group.find_first_of("/+#") != std::string_view::npos) {
            fail(l, fmt::format("{}: invalid group name '{}' (it must not contain '/', '+' or "
                                "'#')",
                                l.name, shown(group)));
        }
        auto& groups = cfg_.group_strategies;
        const auto it = std::find_if(groups.begin(), groups.end(),
                                     [&](const auto& g) { return g.first == group; });
        if (it != groups.end()) {
            it->second = *strategy; // a later line (e.g. in include_dir) overrides
        } else {
            groups.emplace_back(std::string(group), *strategy);
        }
    }

    // ---- logging --------------------------------------------------------------------------

    void on_log_dest(const line& l) {
        constexpr std::string_view expected = "stderr, stdout, file PATH, syslog, topic or none";
        if (l.args.empty()) {
            fail(l, fmt::format("log_dest: missing value (expected {})", expected));
        }
        const std::string_view dest = l.args[0];
        auto& logging = cfg_.logging;
        if (dest == "file") {
            const std::string_view path = after(l, 0);
            if (path.empty()) {
                fail(l, "log_dest file: missing file name");
            }
            if (!logging.file.empty()) {
                fail(l, "log_dest file: duplicate value (only one log file may be configured)");
            }
            logging.file = std::string(path);
        } else {
            if (l.args.size() > 1) {
                fail_extra(l, 1);
            }
            if (dest == "dlt") {
                fail_unsupported(l, "log_dest dlt");
            }
            if (dest != "stderr" && dest != "stdout" && dest != "syslog" && dest != "topic" &&
                dest != "none") {
                fail(l, fmt::format("log_dest: expected {}, got '{}'", expected, shown(dest)));
            }
        }
        // The first log_dest replaces the default; later ones add (mosquitto).
        if (!log_dest_set_) {
            logging.destinations.clear();
            log_dest_set_ = true;
        }
        add_to_set(logging.destinations, dest, "");
    }

    void on_log_type(const line& l) {
        constexpr std::string_view expected = "debug, error, warning, notice, information, "
                                              "subscribe, unsubscribe, websockets, all or none";
        if (l.args.empty()) {
            fail(l, fmt::format("log_type: missing value (expected {})", expected));
        }
        auto& types = cfg_.logging.types;
        if (!log_type_set_) {
            types.clear();
            log_type_set_ = true;
        }
        // Several types on one line are a Tern convenience; mosquitto reads one per line.
        for (const std::string_view type : l.args) {
            if (type != "debug" && type != "error" && type != "warning" && type != "notice" &&
                type != "information" && type != "subscribe" && type != "unsubscribe" &&
                type != "websockets" && type != "all" && type != "none") {
                fail(l, fmt::format("log_type: expected {}, got '{}'", expected, shown(type)));
            }
            add_to_set(types, type, "all");
        }
    }

    /// "none" replaces the list, a later value replaces "none"; `absorbing` ("all") replaces
    /// the list and absorbs later values.
    static void add_to_set(std::vector<std::string>& set, std::string_view value,
                           std::string_view absorbing) {
        if (value == "none" || (!absorbing.empty() && value == absorbing)) {
            set.assign(1, std::string(value));
            return;
        }
        if (!absorbing.empty() && set.size() == 1 && set.front() == absorbing) {
            return;
        }
        std::erase(set, "none");
        if (std::find(set.begin(), set.end(), value) == set.end()) {
            set.emplace_back(value);
        }
    }

    void on_log_timestamp(const line& l) { cfg_.logging.timestamp = boolean(l); }
    void on_log_timestamp_format(const line& l) {
        set_once(l, cfg_.logging.timestamp_format, text(l, "a strftime format"), "");
    }
    void on_log_facility(const line& l) {
        cfg_.logging.syslog_facility = integer_as<std::uint8_t>(l, 0, 7);
    }
    void on_connection_messages(const line& l) { cfg_.logging.connection_messages = boolean(l); }

    // ---- include_dir ----------------------------------------------------------------------

    void on_include_dir(const line& l) {
        const std::string dir = text(l, "a directory");
        if (depth_ > 0) {
            fail(l, "include_dir: only allowed in the main configuration file");
        }
        if (includes_ == include_policy::ignore) {
            return;
        }
        namespace fs = std::filesystem;
        std::error_code ec;
        std::vector<std::string> names;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            std::string name = it->path().filename().string();
            if (name.size() > 5 && name.ends_with(".conf")) {
                names.push_back(std::move(name));
            }
        }
        if (ec) {
            fail(l, fmt::format("include_dir: cannot open directory '{}': {}", dir, ec.message()));
        }
        std::sort(names.begin(), names.end(), include_order);
        for (const auto& name : names) {
            const std::string path = (fs::path(dir) / name).string();
            std::error_code same_ec;
            if (!main_file_.empty() && fs::equivalent(path, main_file_, same_ec)) {
                fail(l, fmt::format("include_dir: '{}' contains the main configuration file", dir));
            }
            const auto read = core::read_whole_file(path);
            if (!read.content) {
                throw parse_failure{{path, 0,
                                     read.describe_failure(fmt::format(
                                         "configuration file (included from {})", here(l)))}};
            }
            parse_text(*read.content, path, depth_ + 1);
        }
    }

    include_policy includes_;
    std::string main_file_; ///< the file given to load_config_file; empty for text
    const config_registry* modules_;
    broker_config cfg_;
    /// Where each entry of cfg_.listeners started (kept apart from the printable origin).
    std::vector<std::pair<std::string, std::size_t>> origins_;
    std::optional<std::size_t> current_; ///< index of the current `listener` block
    int depth_ = 0;
    listener_config default_listener_;
    std::optional<std::pair<std::string, std::size_t>> default_origin_;
    bool default_explicit_ = false; ///< `port` or `bind_address` given
    bool allow_anonymous_set_ = false;
    bool access_files_set_ = false; ///< password_file or acl_file seen
    bool log_dest_set_ = false;
    bool log_type_set_ = false;
};

config_result parse(std::string_view text, const std::string& name, const std::string& main_file,
                    include_policy includes, const config_registry* modules) {
    config_result result;
    try {
        parser p(includes, main_file, modules);
        p.parse_text(text, name, 0);
        result.config = p.finish(name);
    } catch (parse_failure& failure) {
        result.error = std::move(failure.error);
    }
    return result;
}

} // namespace

broker_config default_config() {
    broker_config config;
    listener_config local;
    local.bind_address = "127.0.0.1";
    local.origin = "built-in default";
    config.listeners.push_back(std::move(local));
    config.local_only = true;
    config.allow_anonymous = true;
    return config;
}

std::string config_error::to_string() const {
    if (line == 0) {
        return fmt::format("{}: {}", file, message);
    }
    return fmt::format("{}:{}: {}", file, line, message);
}

config_result load_config_file(const std::string& path, const config_registry* modules) {
    const auto read = core::read_whole_file(path);
    if (!read.content) {
        config_result result;
        result.error = config_error{path, 0, read.describe_failure("configuration file")};
        return result;
    }
    return parse(*read.content, path, path, include_policy::follow, modules);
}

config_result parse_config_text(std::string_view text, std::string_view name) {
    return parse_config_text(text, name, include_policy::follow);
}

config_result parse_config_text(std::string_view text, std::string_view name,
                                include_policy includes, const config_registry* modules) {
    return parse(text, std::string(name), "", includes, modules);
}

bool is_core_directive(std::string_view name) noexcept {
    return parser::knows(name);
}

void config_registry::add(std::string name, directive_handler handler) {
    if (name.empty() || is_core_directive(name)) {
        throw std::logic_error(fmt::format("directive '{}' cannot be registered: {}", name,
                                           name.empty() ? "empty" : "the broker's own"));
    }
    if (!handlers_.emplace(name, std::move(handler)).second) {
        throw std::logic_error(fmt::format("directive '{}' is registered twice", name));
    }
}

void config_registry::on_finish(config_finisher finisher) {
    finishers_.push_back(std::move(finisher));
}

const directive_handler* config_registry::find(std::string_view name) const {
    const auto it = handlers_.find(name);
    return it == handlers_.end() ? nullptr : &it->second;
}

std::optional<share_strategy> parse_share_strategy(std::string_view name) {
    for (const auto s :
         {share_strategy::round_robin, share_strategy::random, share_strategy::client_hash,
          share_strategy::topic_hash, share_strategy::least_inflight}) {
        if (to_string(s) == name) {
            return s;
        }
    }
    return std::nullopt;
}

std::string_view to_string(share_strategy s) noexcept {
    switch (s) {
    case share_strategy::round_robin:
        return "round_robin";
    case share_strategy::random:
        return "random";
    case share_strategy::client_hash:
        return "client_hash";
    case share_strategy::topic_hash:
        return "topic_hash";
    case share_strategy::least_inflight:
        return "least_inflight";
    }
    return "?";
}

} // namespace tern::broker
