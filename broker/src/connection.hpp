#pragma once
// One client connection: reader, writer and watchdog coroutines on the connection's worker.

#include "message.hpp"
#include "shared_state.hpp"

#include <tern/protocol/decoder.hpp>
#include <tern/protocol/packets.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace tern::broker {

/// Sends `m` to every matching subscriber: one task posted per receiving worker, carrying the
/// shared message and that worker's receivers. Returns the number of receivers.
/// Thread contract: thread-safe.
std::size_t route(shared_state& state, const message_ptr& m, std::uint64_t publisher);

/// An MQTT connection with a clean session.
///
/// Three coroutines share it: the reader (read -> stream_decoder -> handle), the writer (drains
/// queue_ with one write in flight, woken by write_signal_) and the watchdog (connect timeout,
/// keep-alive x1.5, bounded graceful close). Each holds a shared_ptr, so the object lives until
/// the last of them ends.
///
/// Thread contract: owner worker only — every member function, including deliver(), runs on
/// the worker whose io_context owns the socket. Other workers post to it.
class connection : public std::enable_shared_from_this<connection> {
public:
    connection(shared_state& state, worker& owner, boost::asio::ip::tcp::socket socket,
               std::uint64_t key);

    /// Spawns the three coroutines.
    void start();

    /// Queues `m` at min(its QoS, `granted`) with the given RETAIN flag; ignored unless the
    /// connection is established and not closing.
    void deliver(const message_ptr& m, protocol::qos granted, bool retain);

    /// Another connection claimed this client id [MQTT-3.1.4-2]: v5 gets DISCONNECT 0x8E.
    void take_over();

    /// The broker is stopping: v5 gets DISCONNECT 0x8B Server shutting down; no will.
    void shut_down();

private:
    /// An encoded packet waiting to be written: `head` then `payload` (a view kept alive by
    /// `keep`), so fan-out never copies payloads.
    struct frame {
        std::vector<std::uint8_t> head;
        std::string_view payload;
        message_ptr keep;
    };
    /// An outbound QoS 1/2 message awaiting PUBACK, or PUBREC then PUBCOMP.
    struct inflight_message {
        message_ptr msg;
        protocol::qos qos;
        bool released = false; ///< QoS 2: PUBREC received, PUBREL sent
    };
    struct pending_message {
        message_ptr msg;
        protocol::qos qos;
        bool retain;
    };

    boost::asio::awaitable<void> read_loop();
    boost::asio::awaitable<void> write_loop();
    boost::asio::awaitable<void> watchdog();

    void handle(protocol::received_packet& packet);
    void on_connect(const protocol::connect& c, const std::shared_ptr<const std::uint8_t[]>& s);
    void on_publish(const protocol::publish& p, const std::shared_ptr<const std::uint8_t[]>& s);
    void on_subscribe(const protocol::subscribe& s);
    void on_unsubscribe(const protocol::unsubscribe& u);
    void on_disconnect(const protocol::disconnect& d);
    void on_puback(const protocol::puback& a);
    void on_pubrec(const protocol::pubrec& a);
    void on_pubrel(const protocol::pubrel& a);
    void on_pubcomp(const protocol::pubcomp& a);

    /// Sends queued QoS 1/2 messages while the client's Receive Maximum allows.
    void release_pending();
    void send_publish(const message_ptr& m, protocol::qos qos, bool retain, std::uint16_t id);
    std::uint16_t allocate_packet_id();

    /// Encodes `p` for this connection's version and queues it.
    void send(const protocol::packet& p);
    void enqueue(frame f);

    /// Closes because of `ec` (codec error or reason code): logs one line, sends v5 DISCONNECT
    /// with the matching reason code when the connection was established, then closes.
    void fail(boost::system::error_code ec);
    /// v5 established: queue DISCONNECT(`reason`) and close once it is written; else close.
    void disconnect_with(protocol::reason_code reason);
    /// Stops reading and closes the socket once the queue is written (bounded by the watchdog).
    void close_after_flush();
    /// Closes the socket now. Idempotent; runs finish() once.
    void close();
    /// Cleanup when the socket closes: registry, client id, will.
    void finish();

    std::string describe() const;
    bool v5() const noexcept { return version_ == protocol::protocol_version::v5; }

    shared_state& state_;
    worker& owner_;
    boost::asio::ip::tcp::socket socket_;
    const std::uint64_t key_;
    std::string peer_;

    boost::asio::steady_timer write_signal_; ///< a condition variable: cancel() wakes the writer
    boost::asio::steady_timer watchdog_timer_;
    std::chrono::steady_clock::time_point deadline_;

    protocol::stream_decoder decoder_;
    protocol::protocol_version version_ = protocol::protocol_version::v3_1_1;
    bool connected_ = false; ///< CONNECT accepted
    bool closing_ = false;   ///< no more reading or delivering; the writer flushes then closes
    bool closed_ = false;    ///< socket closed, finish() done
    std::string client_id_;
    std::uint16_t keep_alive_ = 0;
    std::optional<message> will_;

    std::deque<frame> queue_;
    std::unordered_set<std::uint16_t> inbound_qos2_; ///< PUBREC sent, PUBREL not yet received
    std::unordered_map<std::uint16_t, inflight_message> inflight_;
    std::deque<pending_message> pending_;
    std::uint16_t next_packet_id_ = 1;
    std::uint16_t send_quota_ = 65535;                  ///< the client's Receive Maximum
    std::uint32_t client_max_packet_size_ = 0xFFFFFFFF; ///< the client's Maximum Packet Size
    std::uint64_t dropped_ = 0;
};

} // namespace tern::broker
