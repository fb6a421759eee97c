#pragma once
/// tern::client — the outbound MQTT client core shared by tern-bench and the bridge: one MQTT
/// 3.1.1 or 5 session over one ready net::transport (client_connect.hpp makes one for tcp,
/// tls, ws and wss).
///
/// What it does: CONNECT/CONNACK (clean start, session expiry, keep-alive, will,
/// username/password, Receive Maximum), SUBSCRIBE/UNSUBSCRIBE, PUBLISH at QoS 0/1/2 in both
/// directions with packet identifiers and an inflight window (the smaller of
/// connect_options::inflight_window and the server's Receive Maximum [MQTT-4.9.0-2]), the
/// acknowledgement flows, PINGREQ when keep-alive is due, DISCONNECT. What it leaves to the user:
/// reconnecting, resending unacknowledged messages after a reconnect (the bridge's
/// store-and-forward does that from its durable queue), topic aliases, AUTH.
///
/// Shape (STYLE.md §5), as the broker's connection: completion handlers on the transport's
/// io_context, no coroutines. Reading: wait readable → try_read into the connection's read
/// buffer → decode in place → dispatch to the handler. Writing: packets are appended to one
/// queue buffer; at the end of the handler that queued them (or in one posted task when the
/// user queued them from outside a callback) the queue goes out through synchronous try_write
/// calls while the transport takes bytes, waiting for writability only when it is full.
///
/// Time: deadlines (CONNACK, keep-alive ping and its answer, the close after DISCONNECT) are
/// checked by tick(), which the owner calls periodically (tern-bench's worker sweep, the
/// bridge's worker tick) with the injected clock's time; the connection starts no timers.
///
/// Errors are values: calls return boost::system::result / error_code (client_error codes),
/// and the end of a connection is one handler::on_closed call with the cause.
///
/// Thread contract: owner worker only — create, call and destroy on the transport's io_context
/// thread; handler calls happen there too.

#include <tern/net/transport.hpp>
#include <tern/protocol/packets.hpp>
#include <tern/protocol/types.hpp>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace tern::client {

/// Why a call was refused or a connection ended (besides transport errors, which keep their
/// own codes, and CONNACK / DISCONNECT reason codes, which are protocol::reason_code errors).
enum class client_error : std::uint8_t {
    not_connected = 1,  ///< before CONNACK, or after the end
    window_full,        ///< QoS 1/2: every packet identifier of the window is in use
    queue_full,         ///< more than connect_options::max_queued_bytes waiting to be written
    encode_failed,      ///< the codec refused the packet (a topic over 65535 bytes, ...)
    connack_timeout,    ///< no CONNACK within connect_options::connack_timeout
    keep_alive_timeout, ///< no PINGRESP within keep-alive after a PINGREQ
    protocol_violation, ///< the server sent a packet a client never accepts
    malformed_packet,   ///< the server's bytes do not decode
    server_disconnect,  ///< a DISCONNECT from the server (v5; its reason in the text)
    connection_refused, ///< CONNACK with a failure reason code
};

const boost::system::error_category& client_error_category() noexcept;
inline boost::system::error_code make_error_code(client_error e) noexcept {
    return {static_cast<int>(e), client_error_category()};
}

/// The Will Message sent in CONNECT.
struct will_options {
    std::string topic;
    std::string payload;
    protocol::qos qos = protocol::qos::at_most_once;
    bool retain = false;
    bool operator==(const will_options&) const = default;
};

/// The session's parameters. A value type (the bridge compares them on reload).
struct connect_options {
    protocol::protocol_version version = protocol::protocol_version::v3_1_1;
    std::string client_id;
    /// Clean Session (3.1.1) / Clean Start (5).
    bool clean_start = true;
    /// Seconds; 0: no keep-alive. A v5 server's Server Keep Alive replaces it.
    std::uint16_t keep_alive = 60;
    /// v5 Session Expiry Interval (seconds); unset: the property is not sent (0).
    std::optional<std::uint32_t> session_expiry_interval;
    std::optional<std::string> username;
    std::optional<std::string> password;
    std::optional<will_options> will;
    /// v5 Receive Maximum announced to the server (how many QoS 1/2 PUBLISH it may have
    /// unacknowledged towards us); 0: not sent (65535).
    std::uint16_t receive_maximum = 0;
    /// Most QoS 1/2 PUBLISH of ours unacknowledged at once (further capped by the server's
    /// Receive Maximum). Their packet identifiers are 1..inflight_limit(); at most 65000.
    std::uint16_t inflight_window = 64;
    /// can_publish() is false, and publish() fails with queue_full, while more bytes than this
    /// wait to be written.
    std::size_t max_queued_bytes = 1024 * 1024;
    /// Initial read buffer (grows to the largest packet received).
    std::size_t read_buffer_size = 4096;
    /// Largest packet accepted from the server (a bigger one is malformed_packet).
    std::uint32_t maximum_packet_size = protocol::max_packet_size;
    std::chrono::milliseconds connack_timeout{10'000};
    /// After DISCONNECT: how long to wait for the server to close before closing ourselves.
    std::chrono::milliseconds close_timeout{1'000};
    /// PINGREQ goes out this much before keep-alive expires (at most half the interval), so
    /// that a tick() of this period never pings late.
    std::chrono::milliseconds ping_margin{1'000};

    bool operator==(const connect_options&) const = default;
};

/// What the connection tells its owner. Every method has an empty default. Calls into the
/// connection from a callback are allowed (publish a reply from on_message, disconnect from
/// on_connected, ...); after on_closed nothing more is called.
class handler {
public:
    virtual ~handler() = default;
    /// CONNACK with a success reason code arrived: the session is up. `ack.props` hold the
    /// server's limits (v5); the views live during the call only.
    virtual void on_connected(const protocol::connack& ack) { (void)ack; }
    /// An application message. QoS 1/2 acknowledgements are queued before this call; a QoS 2
    /// message the server resends before PUBREL is not delivered twice. The publish's views
    /// point into the read buffer: valid during the call only.
    virtual void on_message(const protocol::publish& message) { (void)message; }
    /// A QoS 1/2 PUBLISH of ours ended: PUBACK or PUBCOMP received (`reason` success), or a
    /// v5 PUBACK/PUBREC with a failure reason code. Its packet identifier is free again.
    virtual void on_publish_done(std::uint16_t packet_id, protocol::reason_code reason) {
        (void)packet_id;
        (void)reason;
    }
    /// An acknowledgement for a packet identifier not awaiting one (counted, then ignored).
    virtual void on_unexpected_ack(protocol::packet_type type, std::uint16_t packet_id) {
        (void)type;
        (void)packet_id;
    }
    virtual void on_suback(const protocol::suback& ack) { (void)ack; }
    virtual void on_unsuback(const protocol::unsuback& ack) { (void)ack; }
    virtual void on_pingresp() {}
    /// Room appeared: a batch was written or a window slot was freed. A publisher that stopped
    /// on can_publish() == false continues from here.
    virtual void on_progress() {}
    /// The connection ended. `ec` is empty after a completed disconnect(); otherwise a
    /// transport error (its own code: eof, connection_reset, TLS protocol_error, ...), a
    /// protocol::reason_code (CONNACK refusal, server DISCONNECT) or a client_error. `why` is a
    /// line for logs: "connack: Not authorized", "DISCONNECT from broker: Session taken over",
    /// "closed by broker before CONNACK", the transport's describe_error(), or empty for a
    /// plain socket error. Not called for close().
    virtual void on_closed(const boost::system::error_code& ec, const std::string& why) {
        (void)ec;
        (void)why;
    }
};

/// A PUBLISH header (fixed header .. properties) encoded once, for senders that publish many
/// messages of one topic and size (tern-bench): each message copies it and patches the packet
/// identifier in place.
struct publish_template {
    std::vector<std::uint8_t> header;
    std::size_t packet_id_at = 0; ///< offset of the packet identifier (QoS 1/2)
    std::uint32_t payload_size = 0;
    protocol::qos qos = protocol::qos::at_most_once;

    /// Encodes `p` (topic, QoS, retain, properties; its payload and packet id are ignored) for
    /// payloads of `payload_size` bytes in `version`. Errors: the codec's (string_too_long,
    /// packet_too_large, not_encodable).
    static boost::system::result<publish_template> make(const protocol::publish& p,
                                                        std::uint32_t payload_size,
                                                        protocol::protocol_version version);
};

/// A PUBLISH queued from a template: its packet identifier (0 at QoS 0) and its payload, zero
/// filled, for the caller to write before its next call into the connection.
struct prepared_publish {
    std::uint16_t packet_id = 0;
    std::span<std::uint8_t> payload;
};

/// Byte and packet counts of one connection (monotonic).
struct connection_counters {
    std::uint64_t bytes_sent = 0; ///< accepted by the transport (MQTT bytes, before TLS/WS)
    std::uint64_t bytes_received = 0;
    std::uint64_t pings_sent = 0;
    std::uint64_t pingresps = 0;
    std::uint64_t unexpected_acks = 0;
};

/// One MQTT client session over one transport. Create with create(), then start().
class connection : public std::enable_shared_from_this<connection> {
public:
    /// Takes a ready transport (handshakes done). `events` may be null and must outlive the
    /// connection or be replaced with set_handler(nullptr) first.
    static std::shared_ptr<connection> create(std::unique_ptr<net::transport> transport,
                                              connect_options options, handler* events);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Queues CONNECT and starts reading; `now` starts the CONNACK deadline.
    void start(std::chrono::steady_clock::time_point now);

    /// True between CONNACK and the end (or disconnect()).
    bool connected() const noexcept { return state_ == state::connected; }
    /// True once the connection has ended (on_closed was due, or close() was called).
    bool closed() const noexcept { return state_ == state::closed; }
    /// The window in force (valid once connected).
    std::uint16_t inflight_limit() const noexcept { return limit_; }
    /// QoS 1/2 messages of ours not yet acknowledged.
    std::uint16_t inflight() const noexcept { return inflight_; }
    /// Bytes queued and not yet taken by the transport.
    std::size_t queued_bytes() const noexcept {
        return queue_.size() + writing_.size() - write_pos_;
    }
    /// The keep-alive in force (CONNECT's, or the server's Server Keep Alive), seconds.
    std::uint16_t keep_alive() const noexcept { return keep_alive_; }
    /// True when publish() at `q` would be accepted now.
    bool can_publish(protocol::qos q) const noexcept;

    /// Queues a PUBLISH (topic, payload, QoS, retain, properties of `p`; the payload is
    /// copied). Returns the packet identifier assigned (0 at QoS 0). Errors: not_connected,
    /// window_full, queue_full, encode_failed.
    boost::system::result<std::uint16_t> publish(const protocol::publish& p);
    /// Queues a PUBLISH from a template; the caller writes the payload into the returned span
    /// before its next call into this connection. Same errors as publish().
    boost::system::result<prepared_publish> publish(const publish_template& t);

    /// Queues SUBSCRIBE (allowed once start() ran, before CONNACK too: it follows CONNECT).
    /// Returns its packet identifier; on_suback reports the answer.
    boost::system::result<std::uint16_t>
    subscribe(std::span<const protocol::subscription> subscriptions,
              std::optional<std::uint32_t> subscription_identifier = std::nullopt);
    /// Queues UNSUBSCRIBE; on_unsuback reports the answer.
    boost::system::result<std::uint16_t> unsubscribe(std::span<const std::string_view> filters);

    /// Writes what is queued now instead of at the end of the current handler.
    void flush();
    /// Checks the deadlines against `now`: CONNACK, keep-alive (queues PINGREQ when due; ends
    /// the connection with keep_alive_timeout when the answer is a keep-alive late), and the
    /// close after disconnect(). Call at least once per ping_margin.
    void tick(std::chrono::steady_clock::time_point now);

    /// Queues DISCONNECT (v5: with `reason`) after everything queued, then waits for the server
    /// to close (at most close_timeout, via tick()); on_closed({}, "") ends it. Before CONNACK:
    /// closes at once, with on_closed(not_connected). Idempotent.
    void disconnect(protocol::reason_code reason = protocol::reason_code::normal_disconnection);
    /// Closes now, without DISCONNECT (the server publishes the will). No on_closed. Idempotent.
    void close() noexcept;

    void set_handler(handler* events) noexcept { handler_ = events; }
    const connection_counters& counters() const noexcept { return counters_; }
    const connect_options& options() const noexcept { return options_; }
    net::transport& transport() noexcept { return *transport_; }

private:
    enum class state : std::uint8_t { idle, connecting, connected, disconnecting, closed };

    connection(std::unique_ptr<net::transport> transport, connect_options options, handler* events);

    void arm_read();
    void on_readable(boost::system::error_code ec);
    void dispatch(const protocol::packet& p);
    void on_connack(const protocol::connack& ack);
    void on_publish(const protocol::publish& p);
    void on_ack(protocol::packet_type type, std::uint16_t packet_id, protocol::reason_code rc);
    void schedule_write();
    void start_write();
    void wait_writable();
    void append_ack(std::uint8_t first_byte, std::uint16_t packet_id);
    bool append_packet(const protocol::packet& p);
    boost::system::error_code check_publish(protocol::qos q) const noexcept;
    std::uint16_t take_packet_id(protocol::qos q);
    std::uint16_t next_control_id();
    void fail(boost::system::error_code ec, std::string why);
    void finish_disconnect();

    std::unique_ptr<net::transport> transport_;
    connect_options options_;
    handler* handler_;
    state state_ = state::idle;
    protocol::protocol_version version_;

    std::vector<std::uint8_t> rbuf_;
    std::size_t rpos_ = 0;
    std::size_t rend_ = 0;
    std::vector<std::uint8_t> queue_;   ///< appended to
    std::vector<std::uint8_t> writing_; ///< fixed while being written
    std::size_t write_pos_ = 0;
    bool read_armed_ = false;
    bool write_waiting_ = false;
    bool write_posted_ = false;
    int in_callback_ = 0; ///< depth of our own handlers on the stack: writes wait for the end

    std::uint16_t keep_alive_ = 0;
    std::chrono::steady_clock::time_point last_write_{};
    std::chrono::steady_clock::time_point deadline_{}; ///< CONNACK, or the close after DISCONNECT
    std::optional<std::chrono::steady_clock::time_point> ping_sent_;
    bool wrote_ = false; ///< bytes written since the last tick() (which then dates them)

    std::uint16_t limit_ = 0;
    std::uint16_t inflight_ = 0;
    std::vector<std::uint8_t>
        slots_; ///< per packet id - 1: 0 free, 1 PUBACK/PUBREC due, 2 PUBCOMP due
    std::vector<std::uint8_t> slot_qos_;
    std::vector<std::uint16_t> free_ids_;
    std::uint16_t control_base_ = 0; ///< SUBSCRIBE/UNSUBSCRIBE ids are above the window
    std::uint16_t next_control_ = 0;
    std::unordered_set<std::uint16_t> inbound_qos2_; ///< PUBREC sent, PUBREL due
    connection_counters counters_;
};

} // namespace tern::client

template <>
struct boost::system::is_error_code_enum<tern::client::client_error> : std::true_type {};
