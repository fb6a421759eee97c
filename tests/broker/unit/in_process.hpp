#pragma once
// An in-process broker on an ephemeral loopback port, built from the services a test passes
// (a manual clock, a recording store, a test authenticator), and a raw MQTT 5 client over a
// blocking socket: white-box tests of the broker's seams.

#include <tern/broker/broker.hpp>
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
#include <vector>

namespace tern::test {

using namespace std::chrono_literals;
namespace mqtt = tern::protocol;
using steady = std::chrono::steady_clock;

/// A broker running on its own thread until destroyed: one listener on 127.0.0.1 with an
/// ephemeral port, two workers, no $SYS, no signal handlers.
class in_process_broker {
public:
    explicit in_process_broker(tern::broker::broker_services services) {
        auto config = tern::broker::default_config();
        config.listeners.front().port = 0;
        config.listeners.front().bind_address = "127.0.0.1";
        config.handle_signals = false;
        config.sys_interval = std::chrono::seconds(0);
        config.worker_threads = 2;
        config.connect_timeout = 10s;
        broker_.emplace(config, services);
        thread_ = std::thread([this] { broker_->run(); });
    }
    ~in_process_broker() {
        broker_->stop();
        thread_.join();
    }
    int port() const { return broker_->port(); }
    tern::broker::broker_stats stats() const { return broker_->stats(); }

private:
    std::optional<tern::broker::broker> broker_;
    std::thread thread_;
};

/// A raw MQTT 5 client over a blocking loopback socket; each wait is bounded.
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

} // namespace tern::test
