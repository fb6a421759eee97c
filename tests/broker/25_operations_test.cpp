// Operating tern as a service (docs/operations.md): systemd's readiness protocol over a real
// $NOTIFY_SOCKET, and SIGHUP reopening a log file that logrotate moved.
#include "pki.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

using namespace tern::test;
using namespace std::chrono_literals;

namespace {

/// A datagram socket where tern's sd_notify messages arrive, as systemd's would.
class notify_socket {
public:
    explicit notify_socket(const std::string& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        REQUIRE(path.size() < sizeof(addr.sun_path));
        std::memcpy(addr.sun_path, path.data(), path.size());
        REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~notify_socket() {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    /// The next message, waiting at most `timeout`; empty on timeout.
    std::string next(clock::duration timeout = wait_timeout) {
        const auto deadline = clock::now() + timeout;
        char buf[512];
        while (clock::now() < deadline) {
            const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                return std::string(buf, static_cast<std::size_t>(n));
            }
            let_time_pass(10ms);
        }
        return {};
    }

private:
    std::string path_;
    int fd_ = -1;
};

} // namespace

TEST_CASE("operations: tern tells systemd READY=1 once it listens, RELOADING=1/READY=1 around "
          "SIGHUP, STOPPING=1 at shutdown",
          "[operations][tern]") {
    TERN_ONLY_TEST("Type=notify is tern's unit");
    readable_dir dir;
    notify_socket notify(dir.path("notify.sock"));
    ::setenv("NOTIFY_SOCKET", dir.path("notify.sock").c_str(), 1);
    broker_process b;
    ::unsetenv("NOTIFY_SOCKET");
    const auto ready = notify.next();
    INFO(b.log());
    CHECK(contains(ready, "READY=1"));
    CHECK(contains(ready, "MAINPID=" + std::to_string(b.pid())));
    mqtt_client c("notify-client");
    CHECK(c.connect(b.port()) == 0); // READY meant it: clients are served

    b.signal(SIGHUP);
    const auto reloading = notify.next();
    CHECK(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="));
    CHECK(notify.next() == "READY=1");
    CHECK(c.subscribe("still/connected", 1) == 1); // a reload drops nobody

    CHECK(b.stop() == 0);
    CHECK(notify.next() == "STOPPING=1");
}

TEST_CASE("operations: SIGHUP reopens the log file after logrotate moved it",
          "[operations][tern]") {
    TERN_ONLY_TEST("tern's reload");
    readable_dir dir;
    const auto log = dir.path("tern.log");
    broker_settings s;
    s.extra_config = {"log_dest file " + log, "log_type all"};
    broker_process b(s);
    {
        mqtt_client before("before-rotate");
        REQUIRE(before.connect(b.port()) == 0);
    }
    REQUIRE(std::filesystem::exists(log));
    std::filesystem::rename(log, log + ".1"); // what logrotate does
    b.signal(SIGHUP);
    // Bounded: the reload runs on the broker's main thread.
    for (int i = 0; i < 100 && !std::filesystem::exists(log); ++i) {
        let_time_pass(20ms);
    }
    REQUIRE(std::filesystem::exists(log));
    mqtt_client after("after-rotate");
    REQUIRE(after.connect(b.port()) == 0);
    std::string now;
    for (int i = 0; i < 100 && !contains(now, "after-rotate"); ++i) {
        let_time_pass(20ms);
        now = read_file(log);
    }
    CHECK(contains(now, "client 'after-rotate' connected"));
    CHECK(contains(now, "log file reopened"));
    const auto old = read_file(log + ".1");
    CHECK(contains(old, "client 'before-rotate' connected"));
    CHECK_FALSE(contains(old, "after-rotate"));
}

TEST_CASE("operations: reloads under load drop no connection and lose no message",
          "[operations][tern]") {
    TERN_ONLY_TEST("tern's reload");
    const auto& p = pki();
    broker_settings s;
    s.extra_config = {"log_dest stderr"};
    s.listeners = {"certfile " + p.server.cert + "\nkeyfile " + p.server.key};
    broker_process b(s);
    // Subscribers on the plain and the TLS listener, one QoS 1 publisher streaming to them while
    // SIGHUP reloads certificates, access files and the log five times.
    mqtt_client plain("reload-plain", MQTT_PROTOCOL_V5);
    REQUIRE(plain.connect(b.port()) == 0);
    REQUIRE(plain.subscribe("load/#", 1) == 1);
    mqtt_client tls("reload-tls");
    tls.tls(p.ca_a);
    REQUIRE(tls.connect(b.port(1)) == 0);
    REQUIRE(tls.subscribe("load/#", 1) == 1);
    mqtt_client pub("reload-pub");
    REQUIRE(pub.connect(b.port()) == 0);
    constexpr int total = 500;
    std::vector<int> mids;
    for (int i = 0; i < total; ++i) {
        mids.push_back(pub.publish_async("load/" + std::to_string(i % 7), std::to_string(i), 1));
        if (i % 100 == 50) {
            b.signal(SIGHUP);
        }
    }
    for (const int mid : mids) {
        REQUIRE(pub.wait_published(mid));
    }
    int got_plain = 0;
    int got_tls = 0;
    while (got_plain < total && plain.next_message(5s)) {
        ++got_plain;
    }
    while (got_tls < total && tls.next_message(5s)) {
        ++got_tls;
    }
    CHECK(got_plain == total);
    CHECK(got_tls == total);
    CHECK(plain.connected());
    CHECK(tls.connected());
    CHECK(pub.connected());
    CHECK(contains(b.log(), "SIGHUP received"));
    CHECK_FALSE(contains(b.log(), "disconnected"));
}
