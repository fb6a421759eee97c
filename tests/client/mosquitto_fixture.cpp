#include "mosquitto_fixture.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <fmt/format.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace tern::client::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using kind = net::client_transport_kind;

namespace {

std::uint16_t free_port() {
    asio::io_context ctx;
    tcp::acceptor a(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

void shell(const std::string& dir, const std::string& command) {
    const auto full = fmt::format("cd '{}' && {} >/dev/null 2>&1", dir, command);
    if (std::system(full.c_str()) != 0) {
        throw std::runtime_error("test PKI: failed: " + command);
    }
}

bool port_open(std::uint16_t port) {
    asio::io_context ctx;
    tcp::socket s(ctx);
    boost::system::error_code ec;
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    return !ec;
}

} // namespace

bool tools_available() {
    return std::string(TERN_TEST_MOSQUITTO).size() > 0 &&
           ::access(TERN_TEST_MOSQUITTO, X_OK) == 0 && std::string(TERN_TEST_OPENSSL).size() > 0 &&
           ::access(TERN_TEST_OPENSSL, X_OK) == 0;
}

mosquitto::mosquitto(const std::string& extra) {
    char tmpl[] = "/tmp/tern-client-tests-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    dir_ = tmpl;
    const std::string ossl = TERN_TEST_OPENSSL;
    shell(dir_, ossl + " req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 "
                       "-subj '/CN=tern client tests CA'");
    shell(dir_, ossl + " req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
                       "-subj '/CN=localhost'");
    {
        std::ofstream ext(dir_ + "/ext.cnf");
        ext << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    }
    shell(dir_, ossl + " x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
                       "-out server.crt -days 2 -extfile ext.cnf");
    ca_ = dir_ + "/ca.crt";
    for (int attempt = 0; attempt < 5; ++attempt) {
        for (auto& p : ports_) {
            p = free_port();
        }
        const std::string conf = dir_ + "/mosquitto.conf";
        {
            std::ofstream f(conf);
            f << "per_listener_settings false\nallow_anonymous true\n";
            f << "log_dest file " << dir_ << "/mosquitto.log\nlog_type all\n";
            if (::geteuid() == 0) {
                f << "user root\n";
            }
            const std::string tls = fmt::format("cafile {0}/ca.crt\ncertfile {0}/server.crt\n"
                                                "keyfile {0}/server.key\n",
                                                dir_);
            f << "listener " << ports_[0] << " 127.0.0.1\n";
            f << "listener " << ports_[1] << " 127.0.0.1\n" << tls;
            f << "listener " << ports_[2] << " 127.0.0.1\nprotocol websockets\n";
            f << "listener " << ports_[3] << " 127.0.0.1\nprotocol websockets\n" << tls;
            f << extra;
        }
        std::string bin = TERN_TEST_MOSQUITTO;
        std::string c = "-c";
        char* argv[] = {bin.data(), c.data(), const_cast<char*>(conf.c_str()), nullptr};
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
        const int rc = ::posix_spawn(&pid_, bin.c_str(), &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) {
            throw std::runtime_error("cannot start mosquitto");
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        bool up = false;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                break; // exited: a port was taken, try again
            }
            up = true;
            for (auto p : ports_) {
                up = up && port_open(p);
            }
            if (up) {
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }
    throw std::runtime_error("mosquitto did not start (log in " + dir_ + ")");
}

mosquitto::~mosquitto() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    std::system(fmt::format("rm -rf '{}'", dir_).c_str());
}

std::uint16_t mosquitto::port(kind k) const {
    return ports_[static_cast<int>(k)];
}

mosquitto& shared_broker() {
    static mosquitto broker;
    return broker;
}

bool run_until(asio::io_context& ctx, const std::function<bool()>& done,
               std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        ctx.restart();
        ctx.run_for(std::chrono::milliseconds(5));
    }
    return done();
}

net::client_endpoint endpoint_for(kind k) {
    auto& b = shared_broker();
    net::client_endpoint ep;
    ep.kind = k;
    ep.host = "127.0.0.1";
    ep.port = b.port(k);
    if (net::uses_tls(k)) {
        net::tls_client_options o;
        o.cafile = b.ca_file();
        auto built = net::tls_client_context::build(o);
        if (!built.context) {
            throw std::runtime_error(built.error);
        }
        ep.tls = built.context;
    }
    return ep;
}

net::connect_result connect_now(asio::io_context& ctx, const net::client_endpoint& ep) {
    std::optional<net::connect_result> result;
    net::async_connect_transport(ctx, ep, std::chrono::seconds(5),
                                 [&](net::connect_result r) { result = std::move(r); });
    run_until(
        ctx, [&] { return result.has_value(); }, std::chrono::milliseconds(8000));
    if (!result) {
        net::connect_result r;
        r.error = "test: no connect result";
        r.ec = asio::error::timed_out;
        return r;
    }
    return std::move(*result);
}

} // namespace tern::client::test
