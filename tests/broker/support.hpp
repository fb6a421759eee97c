#pragma once
// Black-box test support: the real `tern` binary on an ephemeral port, libmosquitto clients
// pumped from the test thread, and a raw TCP socket for hand-written bytes. Every wait is
// bounded; nothing synchronises on sleeps.

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::test {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

/// Default bound for every wait.
inline constexpr auto wait_timeout = 5s;

/// A `tern` child process listening on an ephemeral loopback port (read back via --port-file).
/// Thread contract: test thread only.
class broker_process {
public:
    /// Starts `tern --port 0 --port-file F --threads 2 <extra>` and waits (bounded) for the port.
    explicit broker_process(std::vector<std::string> extra_args = {});
    ~broker_process();
    broker_process(const broker_process&) = delete;
    broker_process& operator=(const broker_process&) = delete;

    int port() const noexcept { return port_; }
    /// True while the child has not exited.
    bool alive();
    /// SIGTERM, then wait (bounded) for exit; returns the exit code, or -1 if killed/hung.
    int stop();
    /// Everything the broker logged to stderr so far.
    std::string log() const;

private:
    std::string dir_;
    pid_t pid_ = -1;
    int port_ = 0;
    std::optional<int> exit_code_;
};

/// One received application message.
struct received_message {
    std::string topic;
    std::string payload;
    int qos = 0;
    bool retain = false;
};

/// A libmosquitto client driven synchronously: each wait pumps mosquitto_loop until a condition
/// holds or the timeout expires.
class mqtt_client {
public:
    /// `version`: MQTT_PROTOCOL_V311 or MQTT_PROTOCOL_V5. An empty id asks the broker for one.
    explicit mqtt_client(std::string id, int version = MQTT_PROTOCOL_V311, bool clean = true);
    ~mqtt_client();
    mqtt_client(const mqtt_client&) = delete;
    mqtt_client& operator=(const mqtt_client&) = delete;

    void set_will(const std::string& topic, const std::string& payload, int qos, bool retain);
    /// Connects and waits for CONNACK; returns its return/reason code, or -1 on timeout/failure.
    int connect(int port, int keep_alive = 30);
    /// Subscribes and waits for SUBACK; returns the granted QoS / reason code, or -1.
    int subscribe(const std::string& filter, int qos, int v5_options = 0);
    /// Unsubscribes and waits for UNSUBACK; returns true when it arrived.
    bool unsubscribe(const std::string& filter);
    /// Publishes and waits until the QoS flow completes (PUBACK / PUBCOMP, or sent for QoS 0).
    bool publish(const std::string& topic, std::string_view payload, int qos, bool retain = false);
    /// The next message, waiting up to `timeout`.
    std::optional<received_message> next_message(clock::duration timeout = wait_timeout);
    /// True when no message arrives within `window` (a bounded negative check).
    bool no_message_within(clock::duration window);
    /// Sends DISCONNECT and waits for the socket to close.
    void disconnect();
    /// Closes the TCP connection without DISCONNECT (an abnormal close).
    void drop_connection();
    /// Pumps until `done()` or timeout; returns done().
    bool pump_until(const std::function<bool()>& done, clock::duration timeout = wait_timeout);

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
    std::optional<int> connack_rc_;
    std::optional<int> disconnect_rc_;
    std::string assigned_id_;
    std::vector<int> published_mids_;
    std::vector<std::pair<int, int>> subacks_; // mid, first granted qos
    std::vector<int> unsubacks_;
    std::deque<received_message> messages_;
};

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

private:
    bool read_exact(std::uint8_t* out, std::size_t n, clock::time_point deadline);
    int fd_ = -1;
};

/// Bytes from a hex string ("10 0c 00 04"); spaces are ignored.
std::vector<std::uint8_t> hex(std::string_view text);

/// Deterministic pseudo-random printable payload of `size` bytes.
std::string make_payload(std::size_t size, unsigned seed);

} // namespace tern::test
