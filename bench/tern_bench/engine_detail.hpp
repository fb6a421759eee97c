#pragma once
/// tern-bench internals shared by engine.cpp (the controller) and client.cpp (one MQTT
/// connection): the run-wide read-only context, the per-thread worker and its statistics, the
/// receiving units that do the sequence accounting, and the client itself.
///
/// Threading: N workers, each one io_context run by one thread (concurrency hint 1). A client,
/// its timers, buffers and counters belong to its worker for life; the worker's statistics
/// are touched only by that thread. The controller (main thread) talks to workers by posting:
/// "start", "allow publishing", "snapshot" (once per second) and "stop". The only shared
/// writable state are three atomic counters in run_context, changed once per client
/// (subscriber ready, publisher finished, receive bound reached), never per message.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/result.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <tern/client/connection.hpp>
#include <tern/net/client_connect.hpp>
#include <tern/protocol/packets.hpp>

#include "histogram.hpp"
#include "options.hpp"
#include "sequence_tracker.hpp"

namespace tern::bench::detail {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

/// Monotonic counters of one worker (and, summed, of the run).
struct counters {
    std::uint64_t connect_attempts = 0;
    std::uint64_t connect_ok = 0;
    std::uint64_t connect_failed = 0;
    std::uint64_t connected = 0; ///< currently open (a gauge, not monotonic)
    std::uint64_t errors = 0;    ///< failures after the connection was established
    std::uint64_t sent = 0;
    std::uint64_t acked = 0;
    std::uint64_t received = 0;
    std::uint64_t foreign = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t reordered = 0;
    std::uint64_t sent_measured = 0;     ///< sent inside the measured window
    std::uint64_t received_measured = 0; ///< received, sent inside the measured window
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;

    counters& operator+=(const counters& o) noexcept;
};

/// Everything a worker measures. Owner: the worker's thread.
struct worker_stats {
    counters c;
    latency_histogram latency;        ///< end-to-end, messages sent in the measured window
    latency_histogram latency_second; ///< end-to-end, since the last snapshot (warm-up too)
    latency_histogram connack;        ///< TCP connect start .. CONNACK
    latency_histogram ack;            ///< PUBLISH queued .. PUBACK / PUBCOMP, measured window
    std::map<std::string, std::uint64_t> failures; ///< by reason; touched on failures only
    std::int64_t first_attempt_ns = -1;            ///< since t0
    std::int64_t last_connack_ns = -1;

    void count_failure(const std::string& reason) { ++failures[reason]; }
};

/// Sent / acknowledged messages of one stream (acknowledged = PUBACK or PUBCOMP received;
/// at QoS 0, written).
struct stream_counts {
    std::uint64_t sent = 0;
    std::uint64_t acked = 0;
};

class client;

/// One receiving unit: a plain subscriber, or a whole shared group (a message is expected
/// once across its members). Owner: the worker `home`, where all of a group's members live.
struct receiver_unit {
    std::string share;  ///< empty for a plain subscription
    std::string filter; ///< without "$share/GROUP/"
    unsigned home = 0;
    std::vector<client*> members;
    std::unordered_map<stream_key, sequence_window, stream_key_hash> windows;

    bool shared() const noexcept { return !share.empty(); }

    /// The window of `key`; a new one starts at 0 for streams of this run (known to start
    /// there) and at the first number seen otherwise.
    sequence_window& window(const stream_key& key, bool own_run) {
        if (last_ != nullptr && last_key_ == key) {
            return *last_;
        }
        auto it = windows.find(key);
        if (it == windows.end()) {
            it =
                windows.emplace(key, sequence_window(own_run ? 0 : sequence_window::unknown_origin))
                    .first;
        }
        last_key_ = key;
        last_ = &it->second; // node-based map: stays valid across rehashing
        return *last_;
    }

private:
    stream_key last_key_{};
    sequence_window* last_ = nullptr;
};

/// Where one role's clients sit in the run-wide client numbering.
struct role_layout {
    const role_spec* spec = nullptr;
    std::uint32_t first_global = 0;
};

/// Read-only after the run starts, apart from the three atomics.
struct run_context {
    const bench_options* options = nullptr;
    const scenario* sc = nullptr;
    protocol::protocol_version version = protocol::protocol_version::v3_1_1;
    /// Where every client connects: transport, resolved endpoints, TLS context, SNI and the
    /// name the certificate must match, WebSocket path (tern::net::async_connect_transport).
    net::client_endpoint endpoint;
    std::uint32_t run_tag = 0;
    steady::duration connect_timeout{};
    steady::time_point t0, ramp_end, measure_start, measure_end, drain_end;
    std::uint64_t measure_start_rt = 0; ///< measure_start on CLOCK_REALTIME, ns
    std::uint64_t measure_end_rt = 0;
    std::vector<role_layout> roles;
    std::vector<std::uint32_t> role_of_global; ///< run-wide client index -> role index
    std::string filler;                        ///< zeros, as long as the largest payload

    std::atomic<std::int64_t> subs_pending{0};     ///< subscribers without SUBACK yet
    std::atomic<std::int64_t> pubs_active{0};      ///< publishers not finished
    std::atomic<std::int64_t> receivers_active{0}; ///< subscribers below their receive bound
};

/// How a client connects and what it does.
struct client_plan {
    std::uint32_t role = 0;   ///< index into scenario::roles
    std::uint32_t local = 0;  ///< index within the role (%i)
    std::uint32_t global = 0; ///< index within the run (payload publisher index)
    std::string client_id;
    steady::duration connect_at{}; ///< since t0
    unsigned worker = 0;
    receiver_unit* unit = nullptr; ///< set when the role subscribes
    std::string publish_topic;     ///< rendered, when the role publishes
    std::string subscription;      ///< as sent, "$share/G/F" for shared groups
    /// CONNECT User Name and Password: the role's, rendered, else --username / --password.
    std::optional<std::string> username;
    std::optional<std::string> password;
};

class worker;

/// A PUBLISH header encoded once; each message copies it and patches the packet identifier
/// (tern::client::publish_template).
using publish_template = tern::client::publish_template;

/// One MQTT connection: a tern::client::connection (transport from
/// net::async_connect_transport; CONNECT/CONNACK, acknowledgements, keep-alive, the inflight
/// window and the batched writes are tern::client's), a main coroutine (connect slot, then the
/// publish loop) and this class as the connection's handler, which does the measuring.
/// Keep-alive PINGREQs come from the worker's sweep (tick). Owner: its worker's thread, for
/// every member and call.
class client final : public tern::client::handler {
public:
    client(worker& w, run_context& rc, client_plan plan);
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() override;

    /// Spawns the main coroutine; it waits for the connect slot.
    void start();
    /// The run's subscribers are ready: publishers may begin.
    void allow_publishing();
    /// The measured window is over: publishers stop (and wait for their acknowledgements).
    void end_publishing();
    /// Called by the worker's once-a-second sweep: queues PINGREQ when keep-alive is due.
    void keepalive_tick(steady::time_point now);
    /// Called by the worker's 1 ms pacer: wakes a rate-limited publisher whose next message
    /// is due.
    void pace_tick(steady::time_point now);
    /// True for clients with a publish rate (the pacer serves them).
    bool paced() const noexcept { return role_.publish && role_.publish->rate > 0; }
    /// Ends the run for this client: DISCONNECT when connected, close within a second.
    void stop();

    // End-of-run accounting, read by the controller after the worker thread has ended.
    const client_plan& plan() const noexcept { return plan_; }
    const stream_counts& main_stream() const noexcept { return main_; }
    const std::vector<stream_counts>& reply_streams() const noexcept { return reply_counts_; }
    std::uint64_t received() const noexcept { return received_; }
    /// True once the broker granted the subscription.
    bool subscribed() const noexcept { return subscribed_; }

private:
    /// What the bench remembers of one QoS 1/2 message, by packet identifier - 1
    /// (tern::client hands out identifiers 1..inflight_limit()).
    struct inflight_slot {
        std::int64_t queued_ns = 0; ///< steady, since t0
        std::uint32_t stream = 0;
        protocol::qos qos = protocol::qos::at_most_once;
        bool measured = false;
    };

    // tern::client::handler
    void on_connected(const protocol::connack& ack) override;
    void on_message(const protocol::publish& p) override;
    void on_publish_done(std::uint16_t packet_id, protocol::reason_code rc) override;
    void on_unexpected_ack(protocol::packet_type type, std::uint16_t packet_id) override;
    void on_suback(const protocol::suback& s) override;
    void on_progress() override;
    void on_closed(const boost::system::error_code& ec, const std::string& why) override;

    asio::awaitable<void> run();
    void begin_connect();
    void on_transport(net::connect_result r);
    asio::awaitable<void> publish_loop();
    asio::awaitable<void> wait_signal(steady::time_point until);
    void spawn(asio::awaitable<void> task, const char* what);

    void reply_to(std::uint32_t global);
    void flush_replies(steady::time_point now);
    bool can_send(protocol::qos q) const noexcept;
    void append_publish(const publish_template& t, std::uint32_t stream, stream_counts& counts,
                        steady::time_point now);
    void connect_failed(const std::string& reason);
    void lost(const std::string& reason);
    void close();
    void mark_sub_done();
    void mark_pub_done();
    void mark_receiving_done();
    std::int64_t since_t0(steady::time_point t) const noexcept;

    worker& w_;
    run_context& rc_;
    client_plan plan_;
    const role_spec& role_;
    std::shared_ptr<tern::client::connection> conn_;
    std::function<void()> cancel_connect_;
    asio::steady_timer watchdog_;    ///< connect slot, connect deadline, close deadline
    asio::steady_timer send_signal_; ///< the publisher waits here (pacing, window, start)
    steady::time_point started_{};   ///< this connect attempt's start

    bool connected_ = false;
    bool closed_ = false;
    bool stopping_ = false;
    bool timed_out_ = false;
    bool waiting_allowed_ = false;
    bool wake_on_progress_ = false;
    bool waiting_pace_ = false;
    steady::time_point next_due_{};
    bool sub_pending_ = false;
    bool pub_active_ = false;
    bool receiving_active_ = false;
    bool subscribed_ = false;
    int tasks_ = 0;
    bool bytes_counted_ = false; ///< the connection's byte counts are in the worker's stats

    publish_template main_template_;
    std::vector<publish_template> reply_templates_; ///< by target index, built on first use
    std::vector<inflight_slot> slots_;
    std::uint16_t window_ = 64;
    std::size_t high_water_ = 64 * 1024; ///< queued bytes above which publishing waits
    stream_counts main_;
    std::vector<stream_counts> reply_counts_; ///< by target index
    std::deque<std::uint32_t> pending_replies_;
    std::uint64_t reply_tick_ = 0;
    std::uint64_t received_ = 0;
    /// Shared-group members only: highest sequence number per stream seen by this member, to
    /// count reordering within the member's own delivery order.
    std::unordered_map<stream_key, std::uint64_t, stream_key_hash> member_last_;
};

/// One thread's share of the run. The io_context is declared before the clients so that it
/// outlives them: sockets and timers must go first.
class worker {
public:
    explicit worker(unsigned i) : index(i), ctx(1), sweep_timer(ctx), pace_timer(ctx) {}
    unsigned index;
    asio::io_context ctx;
    /// Once a second: keep-alive for every client of the worker (one timer instead of one
    /// re-armed per idle writer).
    asio::steady_timer sweep_timer;
    /// Every millisecond while rate-limited publishers run: wakes those that are due.
    asio::steady_timer pace_timer;
    std::vector<client*> paced; ///< the worker's rate-limited publishers
    bool stopping = false;
    worker_stats stats;
    bool publishing_allowed = false;
    bool publishing_closed = false;
    std::vector<std::unique_ptr<client>> clients;
    std::atomic<bool> finished{false};
};

/// Encodes the PUBLISH header for `topic` once (tern::protocol::encode_publish_header).
/// Throws config_error when the codec refuses (e.g. a topic over 65535 bytes).
publish_template make_publish_template(std::string_view topic, protocol::qos q, bool retain,
                                       std::uint32_t payload_size, protocol::protocol_version v,
                                       std::string_view filler);

} // namespace tern::bench::detail
