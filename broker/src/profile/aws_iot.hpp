#pragma once
/// The rules of the `profile aws-iot` listener: AWS IoT Core's documented data-plane limits and
/// deviations from MQTT, each a small pure function the handlers consult (docs/aws-iot-profile.md
/// gives every value with its source). Kept apart from the handlers so the profile can follow
/// AWS when it changes, one table-tested rule at a time (tests/broker/unit/aws_iot_rules_test.cpp).
///
/// Thread contract: thread-safe (no state). Lifetime: returned views point into the argument.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include <tern/broker/config.hpp>
#include <tern/core/thread_annotations.hpp>
#include <tern/protocol/reason_code.hpp>

namespace tern::broker::aws_iot {

/// Payload, and MQTT 5 Maximum Packet Size announced in CONNACK: 128 KB.
inline constexpr std::uint32_t max_packet_bytes = 128 * 1024;
/// A topic name or filter: 256 bytes and 7 slashes, not counting the Basic Ingest prefix
/// `$aws/rules/<rule>/` nor `$share/<name>/`.
inline constexpr std::size_t max_topic_bytes = 256;
inline constexpr std::size_t max_topic_slashes = 7;
inline constexpr std::size_t max_client_id_bytes = 128;
/// The `<name>` of `$share/<name>/...` ("128 UTF-8 characters"; counted in bytes here).
inline constexpr std::size_t max_share_name_bytes = 128;
inline constexpr std::size_t max_filters_per_subscribe = 8;
inline constexpr std::size_t max_subscriptions_per_connection = 50;
/// Keep Alive is clamped to [30, 1200] s; 0 (none) becomes 1200.
inline constexpr std::uint16_t min_keep_alive = 30;
inline constexpr std::uint16_t max_keep_alive = 1200;
/// A persistent session lives 1 h unless MQTT 5 asks otherwise, and at most 7 days.
inline constexpr std::uint32_t default_session_expiry = 3600;
inline constexpr std::uint32_t max_session_expiry = 7 * 24 * 3600;
/// Unacknowledged inbound QoS 1 PUBLISH a client may have (CONNACK Receive Maximum).
inline constexpr std::uint16_t receive_maximum = 100;
/// Topic aliases a client may set (CONNACK Topic Alias Maximum).
inline constexpr std::uint16_t topic_alias_maximum = 8;

/// A refusal: the MQTT 5 reason code and why (for the Reason String and the log).
struct refusal {
    protocol::reason_code reason;
    std::string_view why;
};

/// The part of `topic` (a name or a filter) the length and slash limits count: without a
/// leading `$share/<name>/` and without Basic Ingest's `$aws/rules/<rule>/`.
std::string_view counted_part(std::string_view topic) noexcept;

/// The length and depth limits of a topic name or filter: 0x90 Topic Name invalid (a name) or
/// 0x8F Topic Filter invalid (a filter) when over 256 bytes or 7 slashes, or (a filter) when
/// its shared subscription name is over 128 bytes.
std::optional<refusal> check_topic_limits(std::string_view topic, bool filter) noexcept;

/// A PUBLISH to a `$` topic: only the documented families of reserved topics a device may
/// publish to (shadow, jobs, Device Defender metrics, fleet provisioning, Basic Ingest, ...).
/// The `$aws/events/...` topics are AWS's to publish. Refused: 0x87 Not authorized.
std::optional<refusal> check_publish_topic(std::string_view topic, bool retain) noexcept;

/// A SUBSCRIBE to a `$` filter: only the reserved families a device may subscribe to (shadow,
/// jobs, provisioning responses, `$aws/events/...`); never Basic Ingest. Refused: 0x87.
std::optional<refusal> check_subscribe_filter(std::string_view filter) noexcept;

/// A client id: at most 128 bytes, no `$` prefix (AWS keeps it for ids it generates).
/// Refused: 0x85 Client Identifier not valid.
std::optional<refusal> check_client_id(std::string_view client_id) noexcept;

/// The Keep Alive AWS uses for a requested one (seconds).
std::uint16_t keep_alive(std::uint16_t requested) noexcept;

/// The Session Expiry Interval AWS uses: an MQTT 5 request capped at 7 days; an MQTT 3.1.1
/// persistent session (Clean Session 0) gets the 1 h default; 0 stays 0.
std::uint32_t session_expiry(std::optional<std::uint32_t> v5_requested,
                             bool v311_persistent) noexcept;

/// Retained messages go out on SUBSCRIBE only for a filter without wildcards that is not
/// shared: AWS does not send them for `+`/`#` filters nor for `$share/...`.
bool sends_retained_on_subscribe(std::string_view filter) noexcept;

/// A resumed persistent session's stored messages are replayed at most this fast
/// (mqtt.html, persistent sessions: "10 messages per second").
inline constexpr double replay_per_second = 10;

/// Publish requests per second on one connection, in and out together (not adjustable).
inline constexpr double publishes_per_second = 100;
/// Bytes per second a connection may send; the excess is delayed, not dropped.
inline constexpr double bytes_per_second = 512 * 1024;

/// A token bucket: `rate` tokens a second, at most `burst` saved up; time is passed in.
/// Thread contract: owner worker only.
class rate_bucket {
public:
    rate_bucket(double rate, double burst, std::chrono::steady_clock::time_point now) noexcept
        : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}
    /// Takes a token when there is one; false: over the rate.
    bool take(std::chrono::steady_clock::time_point now) noexcept;
    /// Takes up to `n` whole tokens; returns how many.
    std::uint32_t take_up_to(std::chrono::steady_clock::time_point now, std::uint32_t n) noexcept;
    /// Takes `n` tokens even when there are not so many (what cannot be refused still
    /// counts), never owing more than one burst.
    void charge(std::chrono::steady_clock::time_point now, double n = 1) noexcept;
    /// True while tokens are owed (after charge()).
    bool in_debt(std::chrono::steady_clock::time_point now) noexcept;

private:
    void refill(std::chrono::steady_clock::time_point now) noexcept;
    double rate_;
    double burst_;
    double tokens_;
    std::chrono::steady_clock::time_point last_;
};

/// An account-level rate shared by every worker (AWS's adjustable per-account quotas): one
/// token bucket, a second's worth of burst, under a lock. Workers draw from it in batches of
/// about 1% of the rate into their own rate_allowance, so the publish path locks about a
/// hundred times a second in all rather than per message; a worker's unspent batch can run the
/// account over its rate by at most one batch.
/// Thread contract: thread-safe.
class shared_rate {
public:
    /// `per_second` 0: unlimited (take() always succeeds, nothing is locked).
    shared_rate(std::uint32_t per_second, std::chrono::steady_clock::time_point now);
    bool unlimited() const noexcept { return per_second_ == 0; }
    /// The tokens a worker draws at once.
    std::uint32_t batch() const noexcept { return batch_; }
    /// Up to `n` tokens; 0 when the account is over its rate.
    std::uint32_t draw(std::chrono::steady_clock::time_point now, std::uint32_t n);
    /// Takes `n` tokens even when there are not so many (what cannot be refused still
    /// counts).
    void charge(std::chrono::steady_clock::time_point now, std::uint32_t n = 1);

private:
    const std::uint32_t per_second_;
    const std::uint32_t batch_;
    core::mutex mutex_;
    rate_bucket bucket_ TERN_GUARDED_BY(mutex_);
};

/// One worker's share of a shared_rate. An empty draw (the account over its rate) is not
/// retried for 10 ms, and what is charged meanwhile is owed and settled at the next draw, so
/// even a flood over the rate locks the account about a hundred times a second per worker.
/// Thread contract: owner worker only.
class rate_allowance {
public:
    /// One token from the allowance, drawing a batch from `account` when it is empty.
    bool take(shared_rate& account, std::chrono::steady_clock::time_point now) {
        if (account.unlimited()) {
            return true;
        }
        if (left_ == 0 && !refill(account, now)) {
            return false;
        }
        --left_;
        return true;
    }
    /// One token whatever is left (an outbound QoS 1 message, already owed to its receiver).
    void charge(shared_rate& account, std::chrono::steady_clock::time_point now) {
        if (account.unlimited()) {
            return;
        }
        if (left_ == 0 && !refill(account, now)) {
            ++owed_;
            return;
        }
        --left_;
    }

private:
    /// Draws a batch (plus what is owed); false when nothing is left for now.
    bool refill(shared_rate& account, std::chrono::steady_clock::time_point now);

    std::uint32_t left_ = 0;
    std::uint32_t owed_ = 0;
    std::chrono::steady_clock::time_point retry_at_{};
};

/// The account-level quotas of broker_config::aws_account, as live counters.
/// Thread contract: thread-safe.
struct account_quotas {
    account_quotas(const broker_config::aws_account_quotas& q,
                   std::chrono::steady_clock::time_point now)
        : max_connections(q.max_connections), connects(q.connects_per_second, now),
          inbound_publishes(q.inbound_publishes_per_second, now),
          outbound_publishes(q.outbound_publishes_per_second, now),
          subscriptions(q.subscriptions_per_second, now) {}
    const std::uint32_t max_connections; ///< 0: unlimited
    /// Connections past CONNECT on `profile aws-iot` listeners.
    std::atomic<std::uint32_t> connections{0};
    shared_rate connects;
    shared_rate inbound_publishes;
    shared_rate outbound_publishes;
    shared_rate subscriptions;
};

/// AWS's "connect requests per second per client ID: 1": remembers when each client id last
/// connected. Bounded: entries older than a second are dropped once it holds 65 536.
/// Thread contract: thread-safe.
class connect_throttle {
public:
    /// True (and the time recorded) when `client_id` did not connect within the last second.
    bool admit(std::string_view client_id, std::chrono::steady_clock::time_point now);

private:
    core::mutex mutex_;
    std::unordered_map<std::string, std::chrono::steady_clock::time_point>
        last_ TERN_GUARDED_BY(mutex_);
};

/// What a lifecycle event says about its connection (life-cycle-events.html).
struct lifecycle_client {
    std::string_view client_id;
    /// Unique for the life of the connection (32 hex digits).
    std::string_view session_identifier;
    /// The credential: the client certificate's id (SHA-256 of its DER, lower-case hex, as AWS
    /// names certificates), else the user name; empty for an anonymous client.
    std::string_view principal_identifier;
    std::string_view ip_address;
    /// Grows with every connection of the broker's run, so a client id's events order.
    std::uint64_t version_number = 0;
};

/// AWS publishes no lifecycle events for client ids with '+' or '#' (they could not be
/// subscribed to one by one).
bool has_lifecycle_events(std::string_view client_id) noexcept;

/// `$aws/events/presence/connected/<clientId>` and its JSON (timestamp: ms since the epoch).
std::string connected_topic(std::string_view client_id);
std::string connected_event(const lifecycle_client& c, std::int64_t timestamp_ms);

/// `$aws/events/presence/disconnected/<clientId>`; `reason` one of AWS's disconnectReason
/// values (disconnect_reason()).
std::string disconnected_topic(std::string_view client_id);
std::string disconnected_event(const lifecycle_client& c, std::int64_t timestamp_ms,
                               std::string_view reason, bool client_initiated);

/// `$aws/events/subscriptions/subscribed|unsubscribed/<clientId>` with the filters.
std::string subscriptions_topic(std::string_view client_id, bool subscribed);
std::string subscriptions_event(const lifecycle_client& c, std::int64_t timestamp_ms,
                                bool subscribed, std::span<const std::string> filters);

/// AWS's disconnectReason for a broker-side close with MQTT reason `reason`.
std::string_view disconnect_reason(protocol::reason_code reason) noexcept;
inline constexpr std::string_view client_initiated_disconnect = "CLIENT_INITIATED_DISCONNECT";
inline constexpr std::string_view connection_lost = "CONNECTION_LOST";

} // namespace tern::broker::aws_iot
