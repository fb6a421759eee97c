#pragma once
/// A tern-bench scenario: the roles of one run (publishers, subscribers, shared-group members,
/// responders, idle connections) and its timing, parsed from JSON (`tern-bench run FILE`) or
/// built from the command line (`conn`, `pub`, `sub`). The JSON format is documented in
/// bench/README.md ("Scenario files").
///
/// Thread contract: plain values; immutable once a run starts.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <tern/protocol/types.hpp>

#include "topic_template.hpp"

namespace tern::bench {

/// A usage or scenario error: the message names the option or field and why it is wrong.
/// tern-bench exits 2 with it.
struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Largest payload tern-bench sends (well under the MQTT limit, and in memory per client).
inline constexpr std::uint32_t max_payload_size = 64U * 1024 * 1024;

struct publish_spec {
    topic_template topic;
    double rate = 0; ///< messages/s per client; 0 = as fast as flow control allows
    protocol::qos qos = protocol::qos::at_most_once;
    std::uint32_t size = 64; ///< payload bytes, header included
    bool retain = false;
    std::uint64_t count = 0; ///< messages per client; 0 = no bound
    std::uint16_t inflight =
        64; ///< QoS 1/2 window (further capped by the broker's Receive Maximum)
};

struct subscribe_spec {
    topic_template filter; ///< without any "$share/GROUP/" prefix
    std::string share;     ///< shared-subscription group; empty for a plain subscription
    protocol::qos qos = protocol::qos::at_most_once;
    std::uint64_t count = 0; ///< stop after receiving this many per client; 0 = no bound
};

/// A responder: for every `every`-th own-run message it receives, it publishes one message to
/// `topic` rendered with %p = the sender's index within its role (e.g. "cmd/%p").
struct reply_spec {
    topic_template topic;
    protocol::qos qos = protocol::qos::at_most_once;
    std::uint32_t size = 64;
    std::uint32_t every = 1;
    bool retain = false;
};

/// `clients` connections doing the same thing; neither publish nor subscribe = idle.
struct role_spec {
    std::string name;
    std::uint32_t clients = 1;
    /// CONNECT User Name and Password, rendered per client like the topics (`%i` the index
    /// within the role, `%c` the client id, `%%` a percent sign; no `%p`). Unset: the command
    /// line's --username / --password, if any.
    std::optional<topic_template> username;
    std::optional<topic_template> password;
    /// Sessions: the CONNECT's Clean Session (3.1.1) / Clean Start (5) flag; unset: the command
    /// line's --clean / --no-clean.
    std::optional<bool> clean_session;
    /// MQTT 5 only: the CONNECT's Session Expiry Interval in seconds; unset: 3600 when the
    /// session is not clean, else none (the session ends with the connection).
    std::optional<std::uint32_t> session_expiry;
    std::optional<publish_spec> publish;
    std::optional<subscribe_spec> subscribe;
    std::optional<reply_spec> reply;

    /// True when the role asks for sessions that outlive the connection ("clean_session":
    /// false, or a "session_expiry" above 0): its clients then use stable ids
    /// "<prefix>-<role>-<i>" (no run tag), so that a later run, or the same clients after a
    /// broker restart, resume the sessions. --no-clean alone keeps the run tag.
    bool keeps_sessions() const noexcept {
        return (clean_session && !*clean_session) || session_expiry.value_or(0) > 0;
    }
};

/// The broker side of a scenario, for bench/compare.sh, which gives both brokers these files.
/// tern-bench checks the shape and does not use it. Paths are relative to the scenario file.
struct broker_spec {
    std::string acl_file;      ///< empty: no ACL
    std::string password_file; ///< empty: none (unless generate_password_file)
    /// compare.sh writes the password file itself: one entry per client of every role with a
    /// username and password, hashed with mosquitto_passwd -U. Excludes password_file.
    bool generate_password_file = false;
    /// `persistence true` for both brokers, each with its own store directory per run.
    bool persistence = false;
    /// Tern's `persistence_sync` ("batch", "interval MS", "never"); empty: Tern's default.
    /// Needs persistence. Mosquitto has no such directive and does not get it.
    std::string persistence_sync;
    /// The brokers the scenario runs on (compare.sh's names); empty: every broker asked for.
    std::vector<std::string> brokers;
};

struct scenario {
    std::string name;
    std::string description;
    protocol::protocol_version protocol = protocol::protocol_version::v3_1_1;
    double duration = 10;       ///< measured seconds
    double warmup = 0;          ///< seconds after the ramp excluded from statistics
    double ramp = 0;            ///< seconds over which connects are spread
    double drain = 2;           ///< seconds after publishing stops to wait for stragglers
    double connect_rate = 1000; ///< connects/s across all threads; 0 = unbounded
    std::uint16_t keepalive = 60;
    std::vector<role_spec> roles;
    std::optional<broker_spec> broker;

    std::uint64_t total_clients() const noexcept;
    bool has_publishers() const noexcept;
    bool has_subscribers() const noexcept;
};

/// Parses a scenario document. Throws config_error("roles[1].publish.qos: must be 0, 1 or 2
/// (got 3)") for the first problem found, unknown fields included (they are typos).
scenario parse_scenario(const nlohmann::json& doc);

/// Reads and parses `path`; config_error messages are prefixed with the path.
scenario load_scenario_file(const std::string& path);

/// Cross-field checks shared by files and the command line: templates render to valid topic
/// names and filters, %p only in reply topics, replies need a subscription, shared filters do
/// not vary per client, role names are unique, credentials without %p (and, at MQTT 3.1.1, no
/// password without a user name). Throws config_error.
void validate_scenario(const scenario& s);

/// What client `index` (within its role) with id `client_id` sends as User Name or Password:
/// the role's `field` rendered, else `fallback` (the command line's --username / --password).
std::optional<std::string> render_credential(const std::optional<topic_template>& field,
                                             std::uint64_t index, std::string_view client_id,
                                             const std::optional<std::string>& fallback);

} // namespace tern::bench
