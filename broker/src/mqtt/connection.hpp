#pragma once
// One client connection over a net::transport, on the connection's worker.

#include "engine/shared_state.hpp"
#include "profile/aws_iot.hpp"
#include "session/session.hpp"
#include "session/session_sink.hpp"
#include <tern/broker/clients.hpp>
#include <tern/broker/message.hpp>

#include <tern/auth/authenticator.hpp>
#include <tern/net/ocsp.hpp>
#include <tern/net/transport.hpp>
#include <tern/protocol/decoder.hpp>
#include <tern/protocol/packets.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tern::broker {

/// On the worker holding (or about to hold) session `req.key`: detaches it from its
/// connection and moves it to the connection waiting on worker `req.to`.
void handle_handover(worker& w, const handover_request& req);

/// Ends session `s` on its worker: unsubscribes, publishes a pending will, forgets the client
/// id. When a newer connection has already claimed the client id, only empties it instead
/// (the handover on its way takes the shell).
void end_session(worker& w, session& s);

/// Once a second per worker: delayed wills that are due, offline sessions that expired.
void sweep_sessions(worker& w);

/// Shutdown, phase 1, on `w`: publishes the will of every connection and every delayed will of
/// an offline session (they all end now).
void publish_wills_for_shutdown(worker& w);

/// Starts the writes of every connection of `w` that queued frames in the current handler.
/// Handlers that may queue (reads, inbox drains) call it last; a posted call is the fallback
/// for every other path.
void flush_writes(worker& w);

/// An MQTT network connection. Its session (state that may outlive it) is a separate object
/// on the same worker, attached after CONNECT.
///
/// Reading is a wait on the transport (readable → try_read into the worker's buffer → decode →
/// handle → wait again); writing gathers the whole queue and writes it synchronously while the
/// transport takes bytes, waiting for writability only when it is full; deadlines (connect timeout,
/// keep-alive x1.5, bounded graceful close) are checked by the worker's tick. Each pending handler
/// holds a shared_ptr, so the object lives until the last one has run.
///
/// Thread contract: owner worker only — every member function runs on the worker whose
/// io_context owns the socket. Other workers post to it.
class connection final : public session_sink, public std::enable_shared_from_this<connection> {
public:
    /// `listener`: the configuration of the listener that accepted it (lives in the broker's
    /// immutable config).
    /// `listener_connections`: the connections counted against the listener's
    /// max_connections (shared by every worker; lives as long as the broker).
    connection(worker& owner, std::unique_ptr<net::transport> transport, std::uint64_t key,
               const listener_config& listener, std::atomic<std::size_t>& listener_connections);
    ~connection();

    /// Starts reading.
    void start();

    /// Called by the worker's tick: closes the connection when its deadline has passed
    /// (connect timeout, keep-alive, graceful close taking too long).
    void check_deadline(std::chrono::steady_clock::time_point now);

    /// The session this connection waited for arrived (or was found): attach it and send
    /// CONNACK. `session_present` per [MQTT-3.2.2-2/3].
    void attach(session& s, bool session_present);
    /// A request of this connection is handled from here on outside consume() (a CONNECT
    /// whose session arrived from another worker, or whose checks ran off the worker): the
    /// store tickets submitted before are other clients' (see hold_until_durable).
    void begin_request() noexcept { ticket_before_packet_ = owner_.last_ticket; }

    /// Another connection claimed this client id [MQTT-3.1.4-2]: the will is published (or
    /// dropped when it has a delay: the session continues [MQTT-3.1.3-9]), the session is
    /// detached and v5 gets DISCONNECT 0x8E.
    void take_over(bool session_continues) override;

    /// The broker is stopping: publishes the will (phase 1, see publish_wills_for_shutdown).
    void publish_will_now();
    /// The broker is stopping (phase 2): v5 gets DISCONNECT 0x8B Server shutting down.
    void shut_down();

    /// The access rules were reloaded: a client whose credentials no longer pass (a password
    /// changed or removed) is disconnected with Not authorized, as mosquitto does on SIGHUP.
    void recheck_credentials();

    // session_sink: used by the session to send.
    /// Room for a QoS 0 message (the write backlog is under the high watermark).
    bool accepts_qos0() const noexcept override;
    /// The client's inflight window for QoS 1/2: min(max_inflight_messages, Receive Maximum).
    std::size_t inflight_window() const noexcept override;
    /// Encodes and queues a PUBLISH of `out` with `packet_id` (0 for QoS 0). Returns false
    /// when the message is not sent to this client (expired, or over its Maximum Packet Size
    /// [MQTT-3.1.2-25]).
    bool send_publish(const outbound_message& out, std::uint16_t packet_id, bool dup) override;
    void send_pubrel(std::uint16_t packet_id) override;
    void hold_until_durable() override;
    /// Also waits for `ticket` (a write outside the worker's batch, e.g. a retained message).
    void hold_until_durable(std::uint64_t ticket);
    /// The worker submitted the store batch this connection's held frames wait for.
    void assign_ticket(std::uint64_t ticket);
    /// A ticket became durable: write what no longer waits.
    void durable_advanced();

    std::string describe() const;
    /// This connection for the admin API; nullopt before CONNECT was accepted.
    std::optional<client_info> info() const;
    /// The admin API's kick or drain (disconnect_request).
    void admin_disconnect(const disconnect_request& request);
    const std::string& client_id() const noexcept { return client_id_; }
    /// The transport's view of the peer (address, TLS identity, WebSocket details).
    const net::peer_identity& peer() const noexcept { return transport_->peer(); }
    bool v5() const noexcept { return version_ == protocol::protocol_version::v5; }
    /// 0 for MQTT 3.1, 1 for 3.1.1, 2 for 5 (shared_state::connections_by_version).
    std::size_t version_slot() const noexcept {
        return version_ == protocol::protocol_version::v3_1 ? 0 : v5() ? 2 : 1;
    }
    /// The listener behaves like AWS IoT Core (`profile aws-iot`, profile/aws_iot.hpp).
    bool aws() const noexcept { return listener_.profile == listener_profile::aws_iot; }
    /// Topic aliases the client may set: the listener's max_topic_alias, AWS's 8 under its
    /// profile.
    std::uint16_t topic_alias_limit() const noexcept;
    bool closing() const noexcept override { return closing_; }
    /// `profile aws-iot`: the backlog of a resumed session goes out at 10 a second.
    bool may_send_queued() noexcept override;

private:
    /// An encoded packet waiting to be written: `head` then `payload` (a view kept alive by
    /// `keep`), so fan-out never copies payloads. Small headers live inline.
    struct frame {
        boost::container::small_vector<std::uint8_t, 48> head;
        std::string_view payload;
        message_ptr keep;
        /// Written only once the store's durable ticket reaches this (0: no wait;
        /// pending_ticket: the worker's batch is not submitted yet).
        std::uint64_t ticket = 0;
    };
    static constexpr std::uint64_t pending_ticket = ~std::uint64_t{0};
    /// Registers with the worker to be told when the store advances.
    void await_durable();

    void arm_read();
    void on_readable(boost::system::error_code ec);
    /// on_readable's work; an exception escaping it closes this connection only.
    void read_and_handle(boost::system::error_code ec);
    /// Logs `what` escaping a handler of this connection and closes it (not the worker).
    void fail_unexpected(const char* what) noexcept;
    /// Decodes held input (after attach) and reads again unless back-pressure says wait.
    void resume_reading();
    void schedule_write();
    friend void flush_writes(worker& w);
    void start_write();
    /// Moves the queued frames that may go out now (all of them, unless some wait for the
    /// durable store) to writing_; false when none may.
    bool take_writable_frames();
    /// The transport is full: wait until it takes bytes again, then carry on writing.
    void wait_writable();
    /// A whole batch is written: release its frames, refill from the session, resume reading.
    void finish_batch();

    /// Decodes and handles packets from `input` until it is used up, an error closes the
    /// connection, or CONNECT was accepted and the session is not attached yet (then the rest
    /// stays in `input`).
    void consume(std::span<const std::uint8_t>& input);
    void handle(protocol::received_packet& packet);
    void on_connect(const protocol::connect& c, const std::shared_ptr<const std::uint8_t[]>& s);
    void on_publish(protocol::publish& p, const std::shared_ptr<const std::uint8_t[]>& s);
    // on_connect's steps: each refuses the CONNECT itself and returns false to stop.
    bool within_connection_limits();
    /// Enhanced authentication (refused), the User Name or the certificate/PSK identity that
    /// replaces it, the Password: fills identity_ and password_.
    bool take_identity(const protocol::connect& c);
    /// Starts the checks that answer later — the OCSP status of the client certificate, a
    /// password hash on the blocking pool — and returns true when it did (the CONNECT waits in
    /// pending_connect_ and nothing more is read); false when the verdict can be had now.
    bool start_deferred_checks(const protocol::connect& c,
                               const std::shared_ptr<const std::uint8_t[]>& storage);
    /// One deferred check has reported back (on this worker, from a completion handler): once
    /// all have, decides.
    void deferred_check_done();
    /// Every deferred check has answered: the CONNECT is refused or goes on.
    void decide_deferred_connect();
    /// Runs authenticate(identity_, password_) on the broker's blocking pool and calls `then`
    /// back on this worker with the verdict (nullopt when the authenticator threw).
    void authenticate_off_worker(std::function<void(std::optional<auth::verdict>)> then);
    /// Refuses the CONNECT when the authenticator's verdict says so.
    bool accept_verdict(const auth::verdict& v, const protocol::connect& c);
    /// Refuses the CONNECT when the OCSP answer (and ocsp_fail_open) says so.
    bool accept_ocsp(const net::ocsp_result& r);
    /// The rest of CONNECT once the client is authenticated: client id, keep-alive, will,
    /// limits, then the session.
    void accept_connect(const protocol::connect& c,
                        const std::shared_ptr<const std::uint8_t[]>& storage);
    bool assign_client_id(const protocol::connect& c);
    /// A client id for a client that sent none (auto_id_prefix + a unique UUID-shaped id).
    std::string assigned_client_id() const;
    bool negotiate_keep_alive(const protocol::connect& c);
    bool check_will(const protocol::connect& c);
    void take_client_limits(const protocol::connect& c);
    /// Why AWS IoT Core would refuse this PUBLISH (`topic`: the name after alias resolution);
    /// nullopt when it would take it.
    std::optional<aws_iot::refusal> aws_publish_refusal(const protocol::publish& p,
                                                        std::string_view topic) const;
    /// Why AWS IoT Core would refuse a subscription to `filter` (limits, reserved topics, the
    /// 50 subscriptions of a connection); nullopt when it would take it.
    /// Also sets over_50_ when the refusal is the 51st subscription.
    std::optional<aws_iot::refusal> aws_subscribe_refusal(std::string_view filter);

    // The readiness observer (mqtt/observe.cpp): called only when owner_.readiness is set,
    // each records what AWS IoT Core would refuse, throttle or treat differently.
    void observe_connect(const protocol::connect& c);
    void observe_publish(const protocol::publish& p, std::string_view topic);
    void observe_subscribe(const protocol::subscribe& s);
    /// After a SUBSCRIBE: the session holds more than AWS's 50 subscriptions.
    void observe_subscription_count();
    void observe_topic(std::string_view topic, bool filter);
    /// One PUBLISH in or out: AWS counts both against its 100 a second.
    void observe_publish_rate();
    /// `n` bytes read from the client.
    void observe_bytes(std::size_t n);
    /// `profile aws-iot`: a SUBSCRIBE AWS IoT Core would not take as a whole (QoS 2: left
    /// unanswered; more than 8 filters: all refused). False when it was dealt with here.
    bool aws_subscribe_answered(const protocol::subscribe& s);
    /// `profile aws-iot`: the account's concurrent connections and connects a second (the
    /// count is checked, then taken at acceptance: concurrent CONNECTs on other workers may
    /// pass it by one each, as with max_connections); refuses the CONNECT otherwise.
    bool within_account_quotas();
    /// `profile aws-iot`: at most one CONNECT a second per client id; refuses it otherwise.
    bool within_connect_rate();
    /// `profile aws-iot`: publishes a lifecycle event (QoS 1, not retained) on `topic`.
    void publish_lifecycle(const std::string& topic, const std::string& payload);
    /// What this connection's lifecycle events say of it.
    aws_iot::lifecycle_client lifecycle_identity() const;
    /// `profile aws-iot`: the disconnected event, once per connection that was connected.
    void publish_disconnected_event();
    /// The CONNACK properties of a `profile aws-iot` listener.
    void aws_connack_properties(protocol::properties& props) const;
    void keep_will(const protocol::connect& c, const std::shared_ptr<const std::uint8_t[]>& s);
    // on_publish's steps.
    /// Resolves or records a v5 topic alias; false when the connection is failed for it.
    bool resolve_topic_alias(protocol::publish& p, std::string& aliased_topic);
    bool check_publish(const protocol::publish& p, bool aliased);
    /// Stores a retained message and routes the message; returns the number of receivers.
    std::size_t distribute(const protocol::publish& p,
                           const std::shared_ptr<const std::uint8_t[]>& storage,
                           std::string aliased_topic);
    void acknowledge_publish(const protocol::publish& p, protocol::reason_code reason,
                             std::string_view reason_text);
    void on_subscribe(const protocol::subscribe& s);
    /// A subscription whose retained messages go out once the SUBACK is queued.
    struct retained_request {
        std::string_view filter;
        delivery d;
    };
    /// One filter of a SUBSCRIBE: the granted QoS or refusal, or nullopt when the connection
    /// was failed for a protocol error.
    std::optional<protocol::reason_code> subscribe_one(const protocol::subscription& sub,
                                                       std::uint32_t identifier,
                                                       std::uint32_t weight,
                                                       std::vector<retained_request>& retained);
    void send_retained(const std::vector<retained_request>& retained);
    void on_unsubscribe(const protocol::unsubscribe& u);
    void on_disconnect(const protocol::disconnect& d);
    /// False (and the connection failed with Protocol error) when an acknowledgement of
    /// `type` does not fit the message in flight under `packet_id`.
    bool ack_fits(std::uint16_t packet_id, protocol::packet_type type);
    void on_puback(const protocol::puback& a);
    void on_pubrec(const protocol::pubrec& a);
    void on_pubrel(const protocol::pubrel& a);
    void on_pubcomp(const protocol::pubcomp& a);

    /// Refuses a CONNECT with `reason` (CONNACK, then close).
    void refuse_connect(protocol::reason_code reason, std::string_view why);
    /// Finds or fetches the session of client_id_ after an accepted CONNECT.
    void claim_session(bool clean_start);

    /// Encodes `p` for this connection's version and queues it (without its Reason String when
    /// that would exceed the client's Maximum Packet Size).
    void send(const protocol::packet& p);
    void send_encoded(const protocol::packet& p);
    void enqueue(frame f);

    /// Closes because of `ec` (codec error or reason code): logs one line, sends v5 DISCONNECT
    /// with the matching reason code when the connection was established, then closes.
    void fail(boost::system::error_code ec);
    /// v5 established: queue DISCONNECT(`reason`) and close once it is written; else close.
    void disconnect_with(protocol::reason_code reason, std::string_view why = {});
    /// Stops reading and closes the socket once the queue is written (bounded by the watchdog).
    void close_after_flush();
    /// Closes the socket now. Idempotent; runs finish() once.
    void close();
    /// Cleanup when the socket closes: session, counters.
    void finish();
    /// Detaches the session (once): publishes or schedules the will after an abnormal close,
    /// hands shared messages back, ends the session when its expiry is 0.
    void finish_session();

    worker& owner_;
    shared_state& state_;
    std::unique_ptr<net::transport> transport_;
    const listener_config& listener_;
    /// Index of listener_ in state_.config.listeners.
    const std::size_t listener_index_;
    std::atomic<std::size_t>& listener_connections_;
    const std::uint64_t key_;
    /// Bytes of a read that arrived after CONNECT while the session was still on its way;
    /// decoded once it is attached.
    std::vector<std::uint8_t> held_input_;
    std::string peer_;

    std::chrono::steady_clock::time_point deadline_;

    protocol::stream_decoder decoder_;
    protocol::protocol_version version_ = protocol::protocol_version::v3_1_1;
    bool connect_received_ = false; ///< CONNECT accepted, session maybe not yet attached
    bool connected_ = false;        ///< session attached, CONNACK sent
    bool closing_ = false;          ///< no more reading or delivering; the writer flushes, closes
    bool closed_ = false;           ///< socket closed, finish() done
    bool will_discarded_ = false;   ///< normal DISCONNECT or shutdown: no will
    bool counted_ = false;          ///< counted in state_.connection_count
    std::string client_id_;
    /// Who the client is, for the authenticator: the CONNECT User Name, or the certificate
    /// identity when the listener says so (use_identity_as_username /
    /// use_subject_as_username). Kept so every authorize() sees what authenticate() accepted.
    auth::client_identity identity_;
    /// The CONNECT Password, kept so a reload can check the client again.
    std::optional<std::string> password_;
    /// A CONNECT whose checks answer later (start_deferred_checks): the packet (its views
    /// point into `storage`) and what has come back so far. Null otherwise.
    struct pending_connect {
        protocol::connect packet;
        std::shared_ptr<const std::uint8_t[]> storage;
        int outstanding = 0;
        std::optional<auth::verdict> verdict;
        std::optional<net::ocsp_result> ocsp;
    };
    std::unique_ptr<pending_connect> pending_connect_;

    bool assigned_id_ = false;
    /// A Mosquitto bridge (protocol level 0x83/0x84): its subscriptions get No Local and
    /// Retain As Published, as mosquitto gives them.
    bool bridge_ = false;
    std::uint16_t keep_alive_ = 0;
    bool keep_alive_changed_ = false;
    /// v5 Request Problem Information: 0 forbids Reason Strings except in CONNACK and
    /// DISCONNECT [MQTT-3.1.2-29].
    bool problem_information_ = true;
    std::uint32_t requested_expiry_ = 0;        ///< the Session Expiry Interval granted
    std::uint32_t client_requested_expiry_ = 0; ///< MQTT 5: the one CONNECT asked for
    message_ptr will_;
    std::uint32_t will_delay_ = 0;
    session* session_ = nullptr;

    std::vector<frame> queue_;   ///< frames waiting for the next write
    std::vector<frame> writing_; ///< frames of the write in flight
    std::vector<boost::asio::const_buffer> write_buffers_;
    std::size_t write_pos_ = 0; ///< first buffer of write_buffers_ not fully written
    bool read_armed_ = false;
    bool read_paused_ = false;     ///< back-pressure: not reading until the backlog drains
    bool write_in_flight_ = false; ///< waiting for the socket to become writable
    bool write_scheduled_ = false;
    bool gated_ = false;    ///< in owner_.gated_now
    bool awaiting_ = false; ///< in owner_.awaiting_durable
    /// owner_.last_ticket when this connection's current packet began: a ticket above it was
    /// submitted by the packet's own handling (hold_until_durable waits for it); one at or
    /// below it belongs to writes the packet did not cause.
    std::uint64_t ticket_before_packet_ = 0;
    /// `profile aws-iot`: 100 PUBLISH a second, in and out together.
    std::optional<aws_iot::rate_bucket> publish_rate_;
    /// `profile aws-iot`: 512 KiB a second from the client; over it, reading waits
    /// (`throttled_`) until the worker's tick finds the debt paid.
    std::optional<aws_iot::rate_bucket> byte_rate_;
    bool throttled_ = false;
    /// `profile aws-iot`: what the resumed session held when this connection attached, still
    /// to be replayed, and the 10-a-second bucket it is replayed through.
    std::uint64_t replay_left_ = 0;
    std::optional<aws_iot::rate_bucket> replay_rate_;
    /// `profile aws-iot` lifecycle events: the connection's sessionIdentifier, why it closed
    /// (AWS's disconnectReason; empty: the connection was lost) and whether the client asked.
    std::string session_identifier_;
    std::string_view lifecycle_reason_;
    bool client_initiated_ = false;
    bool disconnected_event_sent_ = false;
    std::size_t queued_bytes_ = 0;
    std::uint16_t receive_maximum_ = 65535;             ///< the client's Receive Maximum
    std::uint32_t client_max_packet_size_ = 0xFFFFFFFF; ///< the client's Maximum Packet Size
    /// Inbound topic aliases (v5): alias → topic, up to our Topic Alias Maximum.
    std::unordered_map<std::uint16_t, std::string> inbound_aliases_;
    /// Outbound topic aliases (v5): topic → alias, up to the client's Topic Alias Maximum.
    std::unordered_map<std::string, std::uint16_t> outbound_aliases_;
    std::uint16_t client_alias_maximum_ = 0;
    std::uint64_t dropped_qos0_ = 0;
    /// The readiness observer's rate windows: a window closes after 100 PUBLISH (or 512 KiB),
    /// and the connection is over AWS's rate when that took less than a second. The clock is
    /// read once per window, not per packet.
    std::uint32_t observed_publishes_ = 0;
    std::size_t observed_bytes_ = 0;
    std::chrono::steady_clock::time_point publishes_window_{};
    std::chrono::steady_clock::time_point bytes_window_{};
    bool observed_over_50_ = false;
    std::int64_t connected_ms_ = 0; ///< when attach() accepted the CONNECT (Unix ms)
    /// `profile aws-iot`: the SUBSCRIBE being handled asked for a 51st subscription.
    bool over_50_ = false;
    /// The store ticket of the retained message the PUBLISH being handled wrote (0: none).
    std::uint64_t retained_ticket_ = 0;
};

} // namespace tern::broker
