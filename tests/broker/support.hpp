#pragma once
// Black-box test support: the real `tern` binary on an ephemeral port (or, with
// TERN_TEST_BROKER=mosquitto, the reference broker Mosquitto 2.0), libmosquitto clients pumped
// from the test thread, and a raw TCP socket for hand-written bytes. Every wait is bounded;
// nothing synchronises on sleeps.

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern::test {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

/// Default bound for every wait.
inline constexpr auto wait_timeout = 5s;

/// The whole content of a file (bytes as they are); empty when it cannot be read.
std::string read_file(const std::string& path);
/// A loopback port nobody listens on right now (bind 0, read it back, close).
int pick_free_port();
/// True when something accepts TCP connections on the loopback `port`.
bool accepts_connections(int port);

/// The tern binary under test: TERN_TEST_TERN when set, else the one built with the tests.
std::string tern_binary();

/// True when TERN_TEST_BROKER=mosquitto: every broker_process runs Mosquitto (the reference the
/// tests are proven against) instead of tern. The binary is TERN_TEST_MOSQUITTO, default
/// /usr/sbin/mosquitto. (TERN_TEST_TERN names another tern binary than the one built.)
bool against_mosquitto();

/// First statement of a test that only makes sense for tern (tag it `[tern]` too): against
/// Mosquitto it succeeds without running.
#define TERN_ONLY_TEST(why)                                                                        \
    do {                                                                                           \
        if (::tern::test::against_mosquitto()) {                                                   \
            SUCCEED("tern-only test skipped against mosquitto: " why);                             \
            return;                                                                                \
        }                                                                                          \
    } while (false)

/// Broker settings, written as mosquitto.conf directives (same names for both brokers: tern
/// reads them with `-c FILE`). Unset fields are left out of the file, so the broker's default
/// applies. A default-constructed value writes no file at all for tern.
struct broker_settings {
    std::optional<unsigned> max_inflight_messages;
    std::optional<unsigned> max_queued_messages;
    /// Mosquitto syntax: an integer and a unit (h d w m y; tern also takes s).
    std::optional<std::string> persistent_client_expiration;
    std::optional<unsigned> sys_interval;
    std::optional<bool> retain_available;
    std::optional<unsigned> max_keepalive;
    std::optional<unsigned> message_size_limit;
    /// Largest packet accepted from clients (v5 CONNACK Maximum Packet Size).
    std::optional<unsigned> max_packet_size;
    /// Further directives, one per line, for both brokers.
    std::vector<std::string> extra_config;
    /// Extra command-line arguments for tern only (ignored against Mosquitto).
    std::vector<std::string> tern_args;
    /// Further listeners, after the first: each entry holds the directive lines of one listener
    /// block without its `listener` line ("certfile F\nkeyfile K\nrequire_certificate true").
    /// Each is written as `listener PORT 127.0.0.1` and its lines, after the directives above
    /// (Mosquitto 2.0's default `per_listener_settings false`: allow_anonymous stays global).
    /// tern binds port 0 and writes every listener's port to the port file, one per line in
    /// listener order; Mosquitto gets a free port picked by the test. See broker_process::port.
    std::vector<std::string> listeners;

    /// True when a configuration file is needed.
    bool any_config() const;
    /// The directives above, one per line (no listener).
    std::string directives() const;
};

/// The broker under test, as a child process listening on a loopback port: `tern --port 0
/// --port-file F --threads 2 [-c FILE] <tern_args>` (the port read back from F), or Mosquitto
/// on a free port picked by the test (with a generated mosquitto.conf), waited for until it
/// accepts connections. Thread contract: test thread only.
class broker_process {
public:
    /// tern with extra command-line arguments and no configuration file.
    explicit broker_process(std::vector<std::string> extra_args = {});
    explicit broker_process(broker_settings settings);
    ~broker_process();
    broker_process(const broker_process&) = delete;
    broker_process& operator=(const broker_process&) = delete;

    int port() const noexcept { return port_; }
    /// The port of listener `listener`: 0 the first (port()), 1 the first of
    /// broker_settings::listeners, and so on.
    int port(std::size_t listener) const;
    pid_t pid() const noexcept { return pid_; }
    /// Sends `signo` (SIGHUP: reload) to the broker.
    void signal(int signo);
    /// True while the child has not exited.
    bool alive();
    /// SIGTERM, then wait (bounded) for exit; returns the exit code, or -1 if killed/hung.
    int stop();
    /// Everything the broker logged so far.
    std::string log() const;

private:
    void start_tern(const broker_settings& settings);
    void start_mosquitto(const broker_settings& settings);
    void spawn(std::vector<std::string> args);
    /// Stops what was spawned, removes the directory and throws with the broker's log.
    [[noreturn]] void fail_start(const char* name);

    std::string dir_;
    pid_t pid_ = -1;
    int port_ = 0;
    std::vector<int> ports_; ///< every listener's port, port_ first
    std::optional<int> exit_code_;
};

/// An owned libmosquitto MQTT 5 property list, built fluently:
/// `properties().add_int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL, 60)`.
class properties {
public:
    properties() = default;
    ~properties();
    properties(properties&& other) noexcept;
    properties& operator=(properties&& other) noexcept;
    properties(const properties&) = delete;
    properties& operator=(const properties&) = delete;

    properties& add_byte(int id, std::uint8_t value);
    properties& add_int16(int id, std::uint16_t value);
    properties& add_int32(int id, std::uint32_t value);
    properties& add_varint(int id, std::uint32_t value);
    properties& add_string(int id, const std::string& value);
    properties& add_binary(int id, std::string_view value);
    properties& add_user(const std::string& name, const std::string& value);

    const mosquitto_property* get() const noexcept { return list_; }
    /// Takes ownership of `list`.
    static properties adopt(mosquitto_property* list) noexcept;
    /// A copy the caller owns (for libmosquitto calls that take ownership).
    mosquitto_property* copy() const;
    bool empty() const noexcept { return list_ == nullptr; }

private:
    mosquitto_property* list_ = nullptr;
};

/// One received application message, with its MQTT 5 properties as libmosquitto decoded them.
struct received_message {
    std::string topic;
    std::string payload;
    int qos = 0;
    bool retain = false;
    int mid = 0;
    std::vector<std::pair<std::string, std::string>> user_properties; ///< in wire order
    std::optional<std::string> content_type;
    std::optional<std::string> response_topic;
    std::optional<std::string> correlation_data;
    std::optional<int> payload_format;
    std::optional<std::uint32_t> message_expiry;
    std::vector<std::uint32_t> subscription_ids; ///< in wire order
    std::optional<int> topic_alias;
};

/// A libmosquitto client driven synchronously: each wait pumps mosquitto_loop until a condition
/// holds or the timeout expires. libmosquitto acknowledges QoS 1/2 messages itself and hides
/// DUP; use raw_client for flows that need either.
class mqtt_client {
public:
    /// `version`: MQTT_PROTOCOL_V311 or MQTT_PROTOCOL_V5. An empty id asks the broker for one.
    /// `clean`: Clean Session (3.1.1) / Clean Start (5).
    explicit mqtt_client(std::string id, int version = MQTT_PROTOCOL_V311, bool clean = true);
    ~mqtt_client();
    mqtt_client(const mqtt_client&) = delete;
    mqtt_client& operator=(const mqtt_client&) = delete;

    /// Connects with TLS from now on: trusts the CA certificates of `cafile` (server verified,
    /// host name 127.0.0.1 checked against the certificate's IP SAN); `cert` / `key` a client
    /// certificate for mutual TLS; `tls_version` e.g. "tlsv1.2" (nullptr: libmosquitto's
    /// default). Throws when libmosquitto rejects the files.
    void tls(const std::string& cafile, const std::string& cert = {}, const std::string& key = {},
             const char* tls_version = nullptr);
    /// Skips the host name check of the server certificate (still verified against the CA).
    void tls_insecure(bool insecure = true);
    /// Sets the will (v5: with `props`, e.g. Will Delay Interval, user properties).
    void set_will(const std::string& topic, const std::string& payload, int qos, bool retain,
                  const properties& props = {});
    /// Connects and waits (up to `timeout`) for CONNACK; returns its return/reason code, or -1
    /// on timeout/failure. `props`: v5 CONNECT properties (Session Expiry Interval, ...).
    int connect(int port, int keep_alive = 30, const properties& props = {},
                clock::duration timeout = wait_timeout);
    /// Session Present of the last CONNACK.
    bool session_present() const noexcept { return session_present_; }
    /// An integer property (byte, two- or four-byte integer) of the last v5 CONNACK.
    std::optional<std::uint32_t> connack_property(int id) const;
    /// Subscribes and waits for SUBACK; returns the granted QoS / reason code, or -1.
    int subscribe(const std::string& filter, int qos, int v5_options = 0,
                  const properties& props = {});
    /// Unsubscribes and waits for UNSUBACK; returns true when it arrived.
    bool unsubscribe(const std::string& filter);
    /// Publishes and waits until the QoS flow completes (PUBACK / PUBCOMP, or sent for QoS 0).
    bool publish(const std::string& topic, std::string_view payload, int qos, bool retain = false,
                 const properties& props = {});
    /// The v5 reason code of the last completed publish (PUBACK / PUBREC / PUBCOMP), 0 for
    /// success or QoS 0.
    int last_publish_reason() const noexcept { return last_publish_reason_; }
    /// Sends a PUBLISH without waiting for its flow; returns its message id for
    /// wait_published(), or -1 when libmosquitto refuses it.
    int publish_async(const std::string& topic, std::string_view payload, int qos,
                      bool retain = false, const properties& props = {});
    /// Waits up to `timeout` for the flow of message `mid` to complete (also one that completed
    /// after an earlier wait gave up); returns its v5 reason code (0: success, QoS 0, or
    /// 3.1.1), or nullopt when it did not complete (timeout, or the connection closed).
    std::optional<int> wait_published(int mid, clock::duration timeout = wait_timeout);
    /// The next message, waiting up to `timeout`.
    std::optional<received_message> next_message(clock::duration timeout = wait_timeout);
    /// True when no message arrives within `window` (a bounded negative check).
    bool no_message_within(clock::duration window);
    /// Messages received and not yet taken.
    std::size_t pending() const noexcept { return messages_.size(); }
    /// Sends DISCONNECT (v5: with `reason`, e.g. 0x04 Disconnect with Will Message) and waits
    /// for the socket to close.
    void disconnect(int reason = 0);
    /// Closes the TCP connection without DISCONNECT (an abnormal close).
    void drop_connection();
    /// Pumps until `done()` or timeout; returns done().
    bool pump_until(const std::function<bool()>& done, clock::duration timeout = wait_timeout);
    /// One round of network I/O, waiting at most `timeout_ms` for something to happen.
    void pump_once(int timeout_ms = 0);

    bool connected() const noexcept { return connected_; }
    /// The v5 DISCONNECT reason code / libmosquitto rc of the last disconnect callback.
    std::optional<int> disconnect_rc() const noexcept { return disconnect_rc_; }
    std::string assigned_client_id() const { return assigned_id_; }

private:
    static void on_connect(mosquitto*, void*, int, int, const mosquitto_property*);
    static void on_disconnect(mosquitto*, void*, int, const mosquitto_property*);
    static void on_publish(mosquitto*, void*, int, int, const mosquitto_property*);
    static void on_message(mosquitto*, void*, const mosquitto_message*, const mosquitto_property*);
    static void on_subscribe(mosquitto*, void*, int, int, const int*, const mosquitto_property*);
    static void on_unsubscribe(mosquitto*, void*, int, const mosquitto_property*);

    mosquitto* mosq_ = nullptr;
    int version_;
    bool connected_ = false;
    bool session_present_ = false;
    std::optional<int> connack_rc_;
    std::optional<int> disconnect_rc_;
    properties connack_props_;
    std::string assigned_id_;
    std::vector<std::pair<int, int>> published_; // mid, reason code
    int last_publish_reason_ = 0;
    std::vector<std::pair<int, int>> subacks_; // mid, first granted qos
    std::vector<int> unsubacks_;
    std::deque<received_message> messages_;
};

/// Pumps every client in turn until `done()` or the timeout; returns done().
bool pump_all(std::initializer_list<mqtt_client*> clients, const std::function<bool()>& done,
              clock::duration timeout = wait_timeout);

/// A plain TCP connection to the broker for hand-written bytes.
class raw_socket {
public:
    explicit raw_socket(int port);
    ~raw_socket();
    raw_socket(const raw_socket&) = delete;
    raw_socket& operator=(const raw_socket&) = delete;

    /// Writes all of `bytes`; false when the peer already closed.
    bool send(const std::vector<std::uint8_t>& bytes);
    /// Reads one MQTT packet (fixed header + body); nullopt on EOF or timeout.
    std::optional<std::vector<std::uint8_t>> read_packet(clock::duration timeout = wait_timeout);
    /// Reads until EOF; true when the broker closed the connection within `timeout`.
    bool wait_closed(clock::duration timeout = wait_timeout);
    /// Closes our end now (an abnormal close, as seen by the broker).
    void close();

private:
    bool read_exact(std::uint8_t* out, std::size_t n, clock::time_point deadline);
    int fd_ = -1;
};

/// What run_command saw: the exit code (-1 when killed by a signal or at the timeout) and
/// stdout and stderr, interleaved as written.
struct command_result {
    int exit_code = -1;
    bool timed_out = false;
    std::string output;
};

/// Runs `argv` (argv[0] a path, or a name looked up in PATH) with `input` on its stdin, and
/// waits at most `timeout`: a child still running then is killed (SIGKILL). For
/// mosquitto_pub / mosquitto_sub and `openssl s_client`.
command_result run_command(const std::vector<std::string>& argv,
                           clock::duration timeout = wait_timeout, const std::string& input = {});

/// Bytes from a hex string ("10 0c 00 04"); spaces are ignored.
std::vector<std::uint8_t> hex(std::string_view text);

/// Deterministic pseudo-random printable payload of `size` bytes.
std::string make_payload(std::size_t size, unsigned seed);

/// True when `part` occurs in `text` (log lines, command output).
inline bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

/// A temporary directory others can read, removed with everything in it on destruction:
/// Mosquitto reads certificates, CRLs, password and ACL files after dropping to user
/// `mosquitto`.
class readable_dir {
public:
    readable_dir();
    ~readable_dir();
    readable_dir(const readable_dir&) = delete;
    readable_dir& operator=(const readable_dir&) = delete;

    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    /// Makes `name` readable by everyone; returns its path.
    std::string share(const std::string& name) const;
    /// Writes `text` to `name` (replacing it), readable by everyone; returns the path.
    std::string write(const std::string& name, const std::string& text) const;
    /// Copies `from` to `name` (replacing it), readable by everyone; returns the path.
    std::string copy(const std::string& from, const std::string& name) const;

private:
    std::string dir_;
};

/// A scratch directory for tern with `persistence true`: its configuration (DIR/tern.conf), the
/// store (DIR/tern.db unless configure() puts it elsewhere), the port file and the broker's
/// output (DIR/tern.log, appended to by every start). It outlives each broker process, so a
/// restart finds the store; removed with everything in it on destruction (a mount inside it
/// must be gone by then).
class store_dir {
public:
    store_dir();
    ~store_dir();
    store_dir(const store_dir&) = delete;
    store_dir& operator=(const store_dir&) = delete;

    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    /// Rewrites tern.conf with persistence_location `location` (a directory, ending in '/';
    /// the store is location + "tern.db").
    void configure(const std::string& location);
    /// The store as tern names it in its messages: persistence_location + "tern.db".
    std::string store() const { return location_ + "tern.db"; }

private:
    std::string dir_;
    std::string location_;
};

/// `tern -c DIR/tern.conf --port-file DIR/port --threads 2` on a store_dir, its output
/// appended to DIR/tern.log. The constructor waits (bounded) until it listens and fails the
/// test with the log when it exits or does not listen within 10 s. SIGKILLed by kill() or when
/// it goes out of scope. Thread contract: test thread only.
class durable_tern {
public:
    explicit durable_tern(const store_dir& dir);
    ~durable_tern() { kill(); }
    durable_tern(const durable_tern&) = delete;
    durable_tern& operator=(const durable_tern&) = delete;

    int port() const noexcept { return port_; }
    pid_t pid() const noexcept { return pid_; }
    /// SIGKILL: no shutdown, nothing flushed on the way out.
    void kill();
    /// SIGTERM, then a bounded wait (10 s) for the exit; returns the exit code, or -1 when the
    /// broker died of a signal or hung (then it is SIGKILLed).
    int stop();
    /// True while the broker has not exited (an exit is reaped here).
    bool alive();
    /// Everything logged to DIR/tern.log so far, by every start.
    std::string log() const { return read_file(log_); }

private:
    pid_t pid_ = -1;
    int port_ = 0;
    std::string log_;
};

/// Lets `duration` of wall-clock time pass. Only for tests where the passage of time is the
/// condition under test (expiry intervals, will delays): never to wait for an event.
void let_time_pass(clock::duration duration);

} // namespace tern::test
