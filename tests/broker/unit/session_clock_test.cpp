// Session timing with the injected clock (STYLE.md §8): an in-process broker whose every "now"
// is a core::manual_clock, driven by a raw client over loopback. The tests move the clock
// instead of sleeping; the only real waiting is for the broker's 250 ms tick to look at the
// clock, bounded by `tick_wait`.
#include <tern/broker/broker.hpp>
#include <tern/core/clock.hpp>
#include <tern/protocol/decoder.hpp>
#include <tern/protocol/encoder.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <thread>

namespace {

using namespace std::chrono_literals;
namespace mqtt = tern::protocol;
using steady = std::chrono::steady_clock;

/// Long enough for several broker ticks (250 ms each) and the once-a-second session sweep.
constexpr auto tick_wait = 2500ms;

class in_process_broker {
public:
    explicit in_process_broker(tern::core::manual_clock& clock) {
        auto config = tern::broker::default_config();
        config.listeners.front().port = 0;
        config.listeners.front().bind_address = "127.0.0.1";
        config.handle_signals = false;
        config.sys_interval = std::chrono::seconds(0);
        config.worker_threads = 2;
        config.connect_timeout = 10s;
        broker_.emplace(config, tern::broker::broker_services{&clock});
        thread_ = std::thread([this] { broker_->run(); });
    }
    ~in_process_broker() {
        broker_->stop();
        thread_.join();
    }
    int port() const { return broker_->port(); }

private:
    std::optional<tern::broker::broker> broker_;
    std::thread thread_;
};

class client {
public:
    explicit client(int port)
        : decoder_(
              {mqtt::protocol_version::v5, mqtt::max_packet_size, mqtt::receiver_role::client}) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            throw std::runtime_error("connect failed");
        }
    }
    ~client() { close(); }
    void close() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    void send(const mqtt::packet& p) {
        auto bytes = mqtt::encode_to_vector(p, mqtt::protocol_version::v5);
        REQUIRE(bytes.has_value());
        REQUIRE(::send(fd_, bytes->data(), bytes->size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(bytes->size()));
    }
    /// The next packet, or nullopt at EOF or when `timeout` passes.
    std::optional<mqtt::received_packet> next(std::chrono::milliseconds timeout = 3000ms) {
        const auto deadline = steady::now() + timeout;
        for (;;) {
            std::span<const std::uint8_t> in(buffer_);
            auto r = decoder_.next(in);
            buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(
                                                                 buffer_.size() - in.size()));
            if (r) {
                return std::move(*r);
            }
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
            if (left.count() <= 0) {
                return std::nullopt;
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
                return std::nullopt;
            }
            std::uint8_t chunk[4096];
            const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n <= 0) {
                closed_ = true;
                return std::nullopt;
            }
            buffer_.insert(buffer_.end(), chunk, chunk + n);
        }
    }
    /// True when the broker closes the connection within `timeout`.
    bool closed_within(std::chrono::milliseconds timeout) {
        const auto deadline = steady::now() + timeout;
        while (!closed_ && steady::now() < deadline) {
            next(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()));
        }
        return closed_;
    }
    mqtt::connack connect(std::string_view id, std::uint16_t keep_alive, bool clean,
                          std::uint32_t expiry, std::optional<mqtt::will_message> will = {}) {
        mqtt::connect c;
        c.client_id = id;
        c.keep_alive = keep_alive;
        c.clean_start = clean;
        c.props.session_expiry_interval = expiry;
        c.will = std::move(will);
        send(c);
        auto p = next();
        REQUIRE(p);
        REQUIRE(std::holds_alternative<mqtt::connack>(p->packet));
        return std::get<mqtt::connack>(p->packet);
    }

private:
    int fd_ = -1;
    bool closed_ = false;
    mqtt::stream_decoder decoder_;
    std::vector<std::uint8_t> buffer_;
};

} // namespace

TEST_CASE("keep-alive: closed after 1.5 x Keep Alive of clock time, not before",
          "[broker][session][clock][MQTT-3.1.2-24]") {
    tern::core::manual_clock clock;
    in_process_broker broker(clock);
    client c(broker.port());
    REQUIRE(c.connect("ka", 10, true, 0).reason == mqtt::reason_code::success);
    clock.advance(14s); // under 15 s
    CHECK_FALSE(c.closed_within(tick_wait));
    clock.advance(2s); // past 15 s
    CHECK(c.closed_within(tick_wait));
}

TEST_CASE("connect timeout: a connection without CONNECT is closed once the clock passes it",
          "[broker][session][clock]") {
    tern::core::manual_clock clock;
    in_process_broker broker(clock);
    client c(broker.port());
    CHECK_FALSE(c.closed_within(1000ms)); // real time passes; the clock does not
    clock.advance(11s);
    CHECK(c.closed_within(tick_wait));
}

TEST_CASE("will delay: the will goes out when the clock passes the delay",
          "[broker][session][clock][MQTT-3.1.3-9]") {
    tern::core::manual_clock clock;
    in_process_broker broker(clock);
    client sub(broker.port());
    REQUIRE(sub.connect("watcher", 0, true, 0).reason == mqtt::reason_code::success);
    mqtt::subscribe s;
    s.packet_id = 1;
    s.subscriptions.push_back({"wills/#", {}});
    sub.send(s);
    REQUIRE(sub.next()); // SUBACK
    {
        client device(broker.port());
        mqtt::will_message will;
        will.topic = "wills/device";
        will.payload = "gone";
        will.props.will_delay_interval = 30;
        REQUIRE(device.connect("device", 0, true, 120, will).reason == mqtt::reason_code::success);
        device.close(); // abnormal: no DISCONNECT
    }
    CHECK_FALSE(sub.next(tick_wait)); // the delay has not passed on the clock
    clock.advance(31s);
    const auto m = sub.next(tick_wait);
    REQUIRE(m);
    REQUIRE(std::holds_alternative<mqtt::publish>(m->packet));
    CHECK(std::get<mqtt::publish>(m->packet).topic == "wills/device");
}

TEST_CASE("session expiry: an offline session ends when the clock passes its expiry",
          "[broker][session][clock][MQTT-3.1.2-23]") {
    tern::core::manual_clock clock;
    in_process_broker broker(clock);
    {
        client c(broker.port());
        REQUIRE(c.connect("expiring", 0, true, 60).reason == mqtt::reason_code::success);
        c.send(mqtt::disconnect{});
        CHECK(c.closed_within(tick_wait));
    }
    clock.advance(30s);
    std::this_thread::sleep_for(1200ms); // a sweep runs: the session must still be there
    {
        client c(broker.port());
        CHECK(c.connect("expiring", 0, false, 60).session_present);
        c.send(mqtt::disconnect{});
        CHECK(c.closed_within(tick_wait));
    }
    clock.advance(61s);
    std::this_thread::sleep_for(1200ms); // the once-a-second sweep sees it expired
    client c(broker.port());
    CHECK_FALSE(c.connect("expiring", 0, false, 60).session_present);
}
