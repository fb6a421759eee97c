#pragma once
/// The broker's configuration: a value type read from a mosquitto.conf-compatible file
/// (`tern -c FILE`), with an embedded default when no file is given, and overridden by the
/// command line.
///
/// Thread contract: a plain value; parse functions are pure apart from reading the named files.

#include <tern/broker/config_registry.hpp>
#include <tern/core/logging_config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern::broker {

/// How a message is given to one member of a shared-subscription group.
enum class share_strategy : std::uint8_t {
    round_robin,    ///< members in turn, weighted (default)
    random,         ///< a weighted random member
    client_hash,    ///< hash of the publisher's client id (sticky per publisher)
    topic_hash,     ///< hash of the topic (sticky per topic)
    least_inflight, ///< the member with the fewest unacknowledged QoS 1/2 messages
};

/// How a listener behaves where brokers differ (Tern's `profile` directive).
enum class listener_profile {
    mosquitto, ///< Mosquitto 2.0's choices (the default)
    aws_iot,   ///< AWS IoT Core's data plane: its limits and deviations (docs/aws-iot-profile.md)
};

/// One `listener PORT [ADDRESS]` block and the per-listener directives that follow it.
struct listener_config {
    std::uint16_t port = 1883;                  ///< 0 binds an ephemeral port
    std::string bind_address;                   ///< empty: all addresses (mosquitto semantics)
    std::string protocol = "mqtt";              ///< "mqtt" or "websockets"
    std::optional<std::size_t> max_connections; ///< per listener; unset: unlimited
    /// `socket_domain`: "ipv4" or "ipv6" restricts the listener to that family; empty: both.
    std::string socket_domain;
    /// `bind_interface`: listen on this interface's address (the first of the listener's
    /// family, IPv4 first); empty: bind_address or every address.
    std::string bind_interface;
    // TLS (docs/configuration.md "TLS"): the listener serves TLS when certfile (or psk_hint)
    // is set.
    std::string cafile;      ///< CA bundle for client certificates
    std::string capath;      ///< directory of hashed CA certificates
    std::string certfile;    ///< server certificate chain, the default for clients without SNI
    std::string keyfile;     ///< its private key (`tls_keyform pem` only)
    std::string crlfile;     ///< CRLs checked against client certificates (reloaded on SIGHUP)
    std::string dhparamfile; ///< DH parameters for DHE suites; unset: OpenSSL's built-in ones
    bool require_certificate = false;
    /// The client certificate's first CN becomes the username (`use_subject_as_username`: the
    /// whole subject, RFC 2253). A client without one is refused (bad user name or password).
    bool use_identity_as_username = false;
    bool use_subject_as_username = false;
    std::string tls_version;   ///< minimum: tlsv1.3, tlsv1.2 (default) or tlsv1.1
    std::string ciphers;       ///< TLS <= 1.2 cipher list
    std::string ciphers_tls13; ///< `ciphers_tls1.3`
    std::string psk_hint;      ///< enables TLS-PSK with the keys of `psk_file`
    /// Tern: `ocsp_responder URL` (http://HOST[:PORT][/PATH]) — every verified client
    /// certificate is also checked against this OCSP responder at CONNECT, before the client
    /// is accepted; empty: no OCSP. The answers are cached (`ocsp_cache_size` certificates,
    /// each for min(nextUpdate, `ocsp_cache_max_age`)); `ocsp_timeout` bounds one exchange;
    /// `ocsp_fail_open true` accepts clients whose status cannot be learnt (no answer, an
    /// answer that does not verify, "unknown"), which are refused by default.
    std::string ocsp_responder;
    std::chrono::seconds ocsp_timeout{2};
    bool ocsp_fail_open = false;
    std::size_t ocsp_cache_size = 10000;
    std::chrono::seconds ocsp_cache_max_age{3600};
    /// Tern: `tls_policy NAME` pins versions and ciphers (AWS IoT Core's policy names).
    std::string tls_policy;
    /// Tern: `sni_certificate HOST CERTFILE KEYFILE`, a certificate per server name.
    struct sni_entry {
        std::string host;
        std::string certfile;
        std::string keyfile;
        bool operator==(const sni_entry&) const = default;
    };
    std::vector<sni_entry> sni_certificates;
    /// Tern: `alpn PROTOCOL...`, the ALPN protocols served in preference order; empty: mqtt,
    /// x-amzn-mqtt-ca, x-amzn-http-ca. `require_alpn true` refuses a client offering none of
    /// them (AWS IoT Core's port 443 with `x-amzn-mqtt-ca`); `require_sni true` refuses one
    /// whose TLS hello names no server, or a name no certificate of the listener is for (AWS's
    /// custom domains).
    std::vector<std::string> alpn;
    bool require_alpn = false;
    bool require_sni = false;

    /// `allow_anonymous` of this listener, under `per_listener_settings true`; unset: the
    /// broker-wide value.
    std::optional<bool> allow_anonymous;
    /// `password_file` and `acl_file` of this listener, under `per_listener_settings true`;
    /// empty: none (the broker-wide ones do not apply then, as in mosquitto).
    std::string password_file;
    std::string acl_file;
    /// `max_topic_alias`: topic aliases an MQTT 5 client may set on this listener (CONNACK
    /// Topic Alias Maximum; 0: none, and none is announced). mosquitto default 10.
    std::uint16_t max_topic_alias = 10;
    /// Tern: `proxy_protocol true` — every connection starts with a PROXY protocol v1 or v2
    /// header (from a load balancer); connections without one are refused.
    bool proxy_protocol = false;
    /// Tern: `profile aws-iot` makes the listener behave like AWS IoT Core's data plane, to
    /// rehearse a migration locally; `mosquitto` (default) is Mosquitto 2.0.
    listener_profile profile = listener_profile::mosquitto;

    /// True when the listener serves TLS.
    bool tls() const noexcept { return !certfile.empty() || !psk_hint.empty(); }
    /// Where the block starts, for error messages ("FILE:LINE").
    std::string origin;

    bool operator==(const listener_config&) const = default;
};

/// Logging directives live in core (so everything below the broker can log).
using core::logging_config;

/// Everything the broker is told at start-up. Defaults are mosquitto 2.0's where the directive
/// exists there, except that the embedded default (no `-c`) listens on 127.0.0.1:1883 with
/// anonymous clients allowed, like mosquitto's local-only mode.
struct broker_config {
    /// Never empty after parsing. The legacy default listener (`port`, `bind_address`, or
    /// per-listener directives before the first `listener` line) comes first, then the
    /// `listener` blocks in file order. A file that configures no listener at all gets one on
    /// 127.0.0.1:1883 and `local_only` (mosquitto 2.0's "local only mode").
    std::vector<listener_config> listeners;
    /// The listener is the built-in loopback one (no `-c`, or a file without listeners).
    bool local_only = false;

    bool allow_anonymous = false;
    /// `password_file`: mosquitto_passwd's "user:$7$..." lines; empty: none.
    std::string password_file;
    /// `acl_file`: mosquitto's `user` / `topic` / `pattern` lines; empty: every topic allowed.
    std::string acl_file;
    /// `per_listener_settings`: allow_anonymous, password_file and acl_file per listener
    /// instead of broker-wide.
    bool per_listener_settings = false;
    /// `websockets_headers_size`: the largest WebSocket upgrade request accepted (bytes).
    std::size_t websockets_headers_size = 8 * 1024;
    /// `psk_file`: "identity:hexkey" lines for the listeners with `psk_hint`.
    std::string psk_file;
    /// Broker-wide limit on client connections; unset: unlimited (mosquitto -1). Set by
    /// `max_connections` before the first `listener` line (mosquitto applies that one to its
    /// default listener; inside a `listener` block it sets listener_config::max_connections).
    std::optional<std::size_t> max_connections;
    /// Outgoing QoS 1/2 messages in flight per client (v5: min with its Receive Maximum).
    /// 0: unlimited (up to 65535). mosquitto default 20.
    std::uint16_t max_inflight_messages = 20;
    /// Messages queued per client beyond those in flight (QoS 1/2 while offline or over the
    /// inflight limit, and QoS 0 while the socket is backed up). 0: unlimited. Default 1000.
    std::size_t max_queued_messages = 1000;
    /// Bytes queued per client; 0: unlimited.
    std::size_t max_queued_bytes = 0;
    /// Largest PUBLISH payload accepted; 0: no limit beyond the protocol's. Larger: v5 gets
    /// 0x95, v3 is disconnected.
    std::uint32_t message_size_limit = 0;
    /// `max_packet_size`: largest packet accepted from a client once its CONNECT is accepted
    /// (whole packet, fixed header included; announced to v5 clients). 0: the protocol maximum
    /// (268435460). Otherwise 20..268435460 (mosquitto refuses less than 20).
    std::uint32_t max_packet_size = 0;
    /// Largest keep-alive granted (v5 Server Keep Alive; v3 clients above it are refused).
    std::uint16_t max_keepalive = 65535;
    /// Offline persistent sessions of v3.1.1 clients (and v5 ones asking for longer) are
    /// removed after this long; unset: never (mosquitto default).
    std::optional<std::chrono::seconds> persistent_client_expiration;
    bool retain_available = true;
    /// `readiness_report`: the AWS IoT Core readiness observer records what in the traffic
    /// would break or be throttled there (tern/broker/readiness.hpp). Off: one null test per
    /// hook on the packet path.
    bool readiness_report = false;
    /// AWS IoT Core's account-level quotas, applied on `profile aws-iot` listeners together
    /// (every such listener is one account). AWS's adjustable defaults; 0: unlimited.
    /// Directives `aws_account_max_connections`, `aws_account_connects_per_second`,
    /// `aws_account_inbound_publishes_per_second`,
    /// `aws_account_outbound_publishes_per_second`, `aws_account_subscriptions_per_second`.
    struct aws_account_quotas {
        std::uint32_t max_connections = 500'000;
        std::uint32_t connects_per_second = 500;
        std::uint32_t inbound_publishes_per_second = 20'000;
        std::uint32_t outbound_publishes_per_second = 20'000;
        std::uint32_t subscriptions_per_second = 500;
        bool operator==(const aws_account_quotas&) const = default;
    };
    aws_account_quotas aws_account;
    /// `allow_zero_length_clientid`: a client may leave the client id to the broker (3.1.1
    /// with clean session, 5); false refuses it (return code 2 / 0x85). mosquitto default true.
    /// Broker-wide (tern has no per-listener value of it yet).
    bool allow_zero_length_clientid = true;
    /// `auto_id_prefix`: what assigned client ids start with. mosquitto default "auto-".
    std::string auto_id_prefix = "auto-";
    /// `set_tcp_nodelay`: accepted for mosquitto files; tern always disables Nagle's
    /// algorithm (false is logged as not applied).
    bool set_tcp_nodelay = true;
    /// $SYS/broker/... publishing interval; 0 disables. mosquitto default 10 s.
    std::chrono::seconds sys_interval{10};
    logging_config logging;

    /// `daemon` (or `-d`): detach from the terminal once listening. The starting process
    /// exits 0 when the broker listens, or 1 with its error on stderr when it cannot start.
    bool daemon = false;
    /// `pid_file`: written with the broker's process id once listening, removed at exit.
    std::string pid_file;
    /// `user`: accepted for compatibility; tern does not change user yet (logged at start-up).
    std::string user;

    // Tern extensions (documented in docs/configuration.md).
    /// Worker threads (one io_context each); 0: hardware threads.
    std::size_t worker_threads = 0;
    /// Default strategy for every shared-subscription group.
    share_strategy shared_subscription_strategy = share_strategy::round_robin;
    /// Per-group strategy overrides: `shared_subscription_strategy GROUP STRATEGY`.
    std::vector<std::pair<std::string, share_strategy>> group_strategies;

    // Process settings (command line, not file).
    /// When non-empty, the first listener's bound port is written here once listening.
    std::string port_file;
    /// Largest CONNECT accepted: a stricter cap while the peer is still anonymous.
    std::uint32_t max_connect_packet_size = 256U * 1024U;
    /// A connection that has not sent CONNECT within this time is closed.
    std::chrono::milliseconds connect_timeout{10'000};
    /// How long shutdown waits for connections to flush before forcing them closed.
    std::chrono::milliseconds shutdown_grace{3'000};
    /// Install SIGINT/SIGTERM handlers (the executable wants this; an embedding test may not).
    bool handle_signals = true;

    bool operator==(const broker_config&) const = default;
};

/// The configuration used without `-c`: one listener on 127.0.0.1:1883, anonymous allowed.
broker_config default_config();

/// A configuration error: `file:line: message` (line 0 when the error is about the whole file).
struct config_error {
    std::string file;
    std::size_t line = 0;
    std::string message;
    /// "FILE:LINE: MESSAGE" (or "FILE: MESSAGE" for line 0).
    std::string to_string() const;
};

/// Exactly one of `config` and `error` is set.
struct config_result {
    std::optional<broker_config> config;
    std::optional<config_error> error;
};

/// Parses the file at `path` (following `include_dir`). On success returns the configuration;
/// on failure the first error. An unknown directive, a malformed value, a value out of range
/// or a directive this version does not support are errors; blank lines and `#` comments are
/// ignored. Errors inside a file read through `include_dir` name that file and its line. A file
/// that cannot be read gives an error with line 0 and the OS reason. docs/configuration.md
/// lists every directive and message.
/// `modules`: directives of plug-in modules (see config_registry.hpp); null for none.
config_result load_config_file(const std::string& path, const config_registry* modules = nullptr);

/// Parses configuration text as if read from a file named `name` (used by tests and fuzzers).
/// `include_dir` reads the directory it names.
config_result parse_config_text(std::string_view text, std::string_view name);

/// Whether `include_dir` reads its directory.
enum class include_policy : std::uint8_t {
    follow, ///< read every `*.conf` file of the directory (the default)
    ignore, ///< check the directive but read nothing: no input touches the file system
};
/// As above, with `include_dir` handled per `includes` (the fuzzer passes `ignore`).
config_result parse_config_text(std::string_view text, std::string_view name,
                                include_policy includes, const config_registry* modules = nullptr);

/// "round_robin" etc.; nullopt for an unknown name.
std::optional<share_strategy> parse_share_strategy(std::string_view name);
std::string_view to_string(share_strategy s) noexcept;

} // namespace tern::broker
