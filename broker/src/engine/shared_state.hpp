#pragma once
// What every worker of one broker shares, and what each worker owns.

#include "index/retained_store.hpp"
#include "index/subscriber.hpp"
#include "index/topic_index.hpp"
#include "profile/aws_iot.hpp"
#include "readiness/observer.hpp"
#include <tern/broker/message.hpp>
#include <tern/broker/session_store.hpp>

#include <tern/auth/file_authenticator.hpp>
#include <tern/broker/config.hpp>
#include <tern/broker/services.hpp>
#include <tern/broker/stats.hpp>
#include <tern/core/clock.hpp>
#include <tern/net/ocsp.hpp>
#include <tern/protocol/packets.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/container/small_vector.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace tern::broker {

class connection;
class session;
struct shared_state;

/// One message for some sessions of one worker: the unit handed from a publisher's worker to
/// a receiver's worker (STYLE.md §4: a shared immutable message plus the receiver list).
struct routed_message {
    message_ptr msg;
    boost::container::small_vector<delivery, 2> receivers;
};

/// Counters of one worker, summed for $SYS. Written by the owner worker only (relaxed atomics
/// so the $SYS publisher on another worker may read them without a race).
struct worker_counters {
    std::atomic<std::uint64_t> packets_received{0}; ///< MQTT packets of any type
    std::atomic<std::uint64_t> packets_sent{0};
    std::atomic<std::uint64_t> messages_received{0}; ///< PUBLISH packets
    std::atomic<std::uint64_t> messages_sent{0};
    std::atomic<std::uint64_t> bytes_received{0};
    std::atomic<std::uint64_t> bytes_sent{0};
    std::atomic<std::uint64_t> publish_dropped{0};
    std::atomic<std::uint64_t> connections{0};
    /// CONNECTs accepted (past authentication): for TLS, handshakes completed.
    std::atomic<std::uint64_t> connects{0};
    /// Topic filters subscribed (granted or not): AWS's "subscriptions per second" counts these.
    std::atomic<std::uint64_t> subscribe_filters{0};
    std::array<std::atomic<std::uint64_t>, 3> publish_received_qos{};
    std::array<std::atomic<std::uint64_t>, 3> publish_sent_qos{};
    std::array<std::atomic<std::uint64_t>, drop_cause_count> dropped{};
    /// CONNECTs refused, by CONNACK reason code (MQTT 5 numbering).
    std::array<std::atomic<std::uint64_t>, 256> connects_refused{};
    std::atomic<std::uint64_t> tls_handshake_failures{0};
    /// How late the last 250 ms tick ran, in microseconds.
    std::atomic<std::uint64_t> loop_lag_us{0};

    void add(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void drop(drop_cause why) noexcept { add(dropped[static_cast<std::size_t>(why)], 1); }
};

/// A request to move the session `key` to the connection waiting for it on worker `to`.
struct handover_request {
    std::uint64_t key = 0;
    std::uint32_t to = 0;
    bool clean_start = false;
};

/// One worker: an io_context run by exactly one thread (concurrency hint 1, STYLE.md §4), the
/// connections pinned to it and the sessions it currently holds.
///
/// Thread contract: `ctx` is thread-safe for post(); `inbox_` is reached only through
/// push_routed() (thread-safe); everything else is owner worker only.
struct worker {
    worker(shared_state& s, std::uint32_t i);
    ~worker();

    shared_state& state;
    const std::uint32_t index;
    boost::asio::io_context ctx{1};
    /// Live connections; a connection removes itself when it closes.
    std::unordered_map<std::uint64_t, std::shared_ptr<connection>> connections;
    /// This worker's snapshot of the access rules (STYLE.md §4: a reload posts the new one to
    /// every worker, which swaps it in between packets).
    std::shared_ptr<const auth::authenticator> authenticator;
    /// authenticator->checks_delivery(), so the delivery path need not ask per message.
    bool check_delivery = false;
    void set_authenticator(std::shared_ptr<const auth::authenticator> a) {
        check_delivery = a->checks_delivery();
        authenticator = std::move(a);
    }
    /// Sessions held here, by subscriber key.
    std::unordered_map<std::uint64_t, std::unique_ptr<session>> sessions;
    /// Connections waiting (after CONNECT) for their session to arrive from another worker.
    std::unordered_map<std::uint64_t, std::weak_ptr<connection>> awaiting_session;
    /// Handover requests for sessions still in transit to this worker.
    std::unordered_map<std::uint64_t, handover_request> pending_handover;
    /// Deliveries that arrived before their session (which is in transit to this worker).
    std::unordered_map<std::uint64_t, std::vector<routed_message>> early_deliveries;
    /// Per destination worker, what this worker's publishers routed since the last flush.
    std::vector<std::vector<routed_message>> outbox;
    /// Reused by route() for topic_index::match.
    std::vector<delivery> match_scratch;
    /// Every connection of this worker reads into this one buffer and decodes from it at
    /// once (the decoder copies what it keeps), so an idle connection holds no read buffer.
    std::vector<std::uint8_t> read_buffer = std::vector<std::uint8_t>(64 * 1024);
    /// The packet being handled; decoded in place (the variant is ~800 bytes).
    protocol::received_packet packet_scratch;
    /// Connections with frames queued and no write started yet: written at the end of the
    /// current handler (flush_writes), so a batch of frames becomes one write without the
    /// latency of a posted task.
    std::vector<std::shared_ptr<connection>> pending_writes;
    bool pending_writes_posted = false;
    worker_counters counters;
    /// This worker's shares of the account's publish rates (`profile aws-iot`).
    aws_iot::rate_allowance aws_inbound;
    aws_iot::rate_allowance aws_outbound;
    /// The readiness observer's recorder (`readiness_report true`); null when it is off.
    std::unique_ptr<readiness_recorder> readiness;
    /// This worker's pending writes to the session store (a null batch for the memory store).
    std::unique_ptr<store_batch> writes;
    /// The ticket of this worker's last submitted batch (0: none yet).
    std::uint64_t last_ticket = 0;
    /// Connections that queued a frame revealing a change still in `batch`: given the ticket
    /// of the batch when it is submitted (submit_store).
    std::vector<std::shared_ptr<connection>> gated_now;
    /// Connections whose frames wait for a ticket to become durable.
    std::vector<std::weak_ptr<connection>> awaiting_durable;
    /// Sessions (by key) whose queue page-in waits for the store to make records durable.
    std::vector<std::uint64_t> awaiting_page_in;
    boost::asio::steady_timer sweep_timer{ctx};
    /// Set when the broker shuts down: no new connections, no wills.
    bool stopping = false;

    /// Appends `batch` to this worker's inbox; wakes the worker only when the inbox was empty.
    /// Thread-safe.
    void push_routed(std::vector<routed_message>&& batch);

    /// Submits this worker's store batch (when it holds writes) and gives its ticket to the
    /// frames gated on it. Called before anything this worker did is posted to another worker
    /// (so the store sees one worker's writes before those they cause elsewhere) and at the
    /// end of each handler (flush_writes). Owner worker only.
    void submit_store();
    /// The store made more tickets durable: connections waiting for them write again.
    /// Owner worker only.
    void release_durable();

private:
    void drain_inbox();
    std::mutex inbox_mutex_;
    std::vector<routed_message> inbox_; // guarded by inbox_mutex_
    bool inbox_scheduled_ = false;      // guarded by inbox_mutex_
};

/// One entry of the client-id directory: the session of a client id and the worker that
/// holds it or will hold it once the handovers already posted complete.
struct directory_entry {
    subscriber_ptr handle;
    std::uint32_t claimant = 0;
};

/// Client id → session. Only CONNECT, session end and takeover touch it; the publish path
/// never does.
///
/// Thread contract: thread-safe (every member locks mutex_).
class session_directory {
public:
    /// The outcome of claim(): a brand-new session handle, or the worker to ask for the
    /// existing one.
    struct claim_result {
        subscriber_ptr handle;
        bool existing = false;
        std::uint32_t previous_claimant = 0;
    };
    /// Records `worker` as the claimant of `client_id`, creating the handle (with `new_key`)
    /// when the client id has no session.
    claim_result claim(const std::string& client_id, std::uint32_t worker, std::uint64_t new_key);
    /// Removes `client_id` if its entry is still `handle` claimed by `worker` (no claim is on
    /// its way); returns false when a newer claim exists and the session must be handed over.
    bool release(const std::string& client_id, const subscriber_handle& handle,
                 std::uint32_t worker);
    std::size_t size() const;

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, directory_entry> entries_; // guarded by mutex_
};

/// Thread contract: `config` and the `workers` vector are immutable while workers run; the
/// index, retained store, directory and atomics are thread-safe.
struct shared_state {
    shared_state(broker_config c, broker_services services);

    const broker_config config;
    /// Every "now" of the broker (deadlines, expiry, will delay). Thread-safe.
    const core::clock& clock;
    std::vector<std::unique_ptr<worker>> workers;
    topic_index subscriptions;
    retained_store retained;
    session_directory directory;
    /// `profile aws-iot` listeners: one CONNECT a second per client id.
    aws_iot::connect_throttle aws_connects;
    /// `profile aws-iot` listeners: the account-level quotas they share.
    aws_iot::account_quotas aws_account{config.aws_account, clock.now()};
    /// The readiness report every worker's recorder merges into; null when it is off.
    std::unique_ptr<readiness_aggregate> readiness;
    /// Worker 0's tick only: the account-level figures of the report.
    readiness_sampler account_sampler{clock.now()};
    /// The memory store when broker_services gave none.
    memory_session_store memory_store;
    /// Where persistent changes are reported (broker_services::store or memory_store).
    session_store* store;
    /// store->durable(): the broker records sessions and QoS 1/2 deliveries and holds back
    /// the packets that reveal them until they are on disk.
    bool durable = false;
    /// Who may connect, publish and subscribe: broker_services::authenticator (not owned), or
    /// the configuration's files (auth::file_authenticator). Workers hold their own copy of
    /// the pointer; this one is the latest, replaced by a reload on main_ctx.
    std::shared_ptr<const auth::authenticator> authenticator;
    /// True when the configuration's files are the rules (SIGHUP reloads them).
    bool authenticator_from_config = false;
    /// Per listener (indexed like config.listeners): its OCSP checker, null without
    /// `ocsp_responder`. Thread-safe objects; the vector is immutable while workers run.
    std::vector<std::shared_ptr<net::ocsp_checker>> ocsp_checkers;
    /// Work too slow for a worker's thread (PBKDF2 password checks): the job posts its answer
    /// back to the worker. Thread-safe (post); stopped after the workers have finished.
    std::unique_ptr<boost::asio::thread_pool> blocking_pool;
    std::atomic<std::uint64_t> next_key{1};
    std::atomic<std::size_t> connection_count{0};
    /// Random per broker run, so assigned client identifiers differ between runs.
    std::uint64_t client_id_salt = 0;
    std::chrono::steady_clock::time_point started = clock.now();
    /// Effective limits derived from the configuration.
    std::uint32_t max_packet_size = 0;
    /// Per listener (indexed like config.listeners), connections past CONNECT by protocol
    /// version (3.1, 3.1.1, 5). Thread-safe atomics; the array is sized once.
    std::unique_ptr<std::array<std::atomic<std::uint64_t>, 3>[]> connections_by_version =
        std::make_unique<std::array<std::atomic<std::uint64_t>, 3>[]>(config.listeners.size());
    /// Per listener, the address it is bound to ("127.0.0.1:1883", "[::]:8883"): written
    /// once before the workers start, read-only afterwards.
    std::vector<std::string> listener_names = std::vector<std::string>(config.listeners.size());
};

/// Sums every worker's counters and reads the shared gauges. Thread-safe.
broker_stats collect_stats(const shared_state& state);

/// The access settings of every listener of `config` (per_listener_settings applied).
std::vector<auth::access_settings> access_settings_of(const broker_config& config);

/// Loads the files of `config` into a new authenticator. Throws std::runtime_error naming the
/// file and line of the first one that does not load.
std::shared_ptr<const auth::authenticator> load_authenticator(const broker_config& config);

/// Milliseconds since the epoch, for timestamps people and clients read (lifecycle events,
/// the readiness report). Deadlines use the injected steady clock instead.
inline std::int64_t wall_clock_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Sentinel for subscriber_handle::worker of a session that no longer exists.
inline constexpr std::uint32_t no_worker = 0xFFFFFFFFU;

} // namespace tern::broker
