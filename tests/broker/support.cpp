#include "support.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef TERN_BINARY
#error "TERN_BINARY must name the tern executable"
#endif

namespace tern::test {

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct mosquitto_library {
    mosquitto_library() { mosquitto_lib_init(); }
    ~mosquitto_library() { mosquitto_lib_cleanup(); }
};

void ensure_mosquitto_library() {
    static mosquitto_library lib;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// broker_process

broker_process::broker_process(std::vector<std::string> extra_args) {
    char pattern[] = "/tmp/tern-broker-test-XXXXXX";
    if (mkdtemp(pattern) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    dir_ = pattern;
    const std::string port_file = dir_ + "/port";
    const std::string log_file = dir_ + "/broker.log";

    std::vector<std::string> args{TERN_BINARY, "--port",    "0", "--port-file",
                                  port_file,   "--threads", "2"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());

    pid_ = fork();
    if (pid_ < 0) {
        throw std::runtime_error("fork failed");
    }
    if (pid_ == 0) {
        const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }

    // Bounded wait for the port file (written atomically by the broker once listening).
    const auto deadline = clock::now() + 10s;
    while (clock::now() < deadline) {
        const std::string text = read_file(port_file);
        if (!text.empty() && text.back() == '\n') {
            port_ = std::atoi(text.c_str());
            return;
        }
        if (!alive()) {
            break;
        }
        std::this_thread::sleep_for(5ms);
    }
    const std::string log_text = log();
    stop();
    throw std::runtime_error("tern did not start; log:\n" + log_text);
}

broker_process::~broker_process() {
    const int code = stop();
    // A crash, a hang at shutdown or a sanitizer report in the broker fails the test case.
    const std::string text = log();
    const bool sanitizer_report = text.find("Sanitizer") != std::string::npos ||
                                  text.find("runtime error:") != std::string::npos;
    if (code != 0 || sanitizer_report) {
        FAIL_CHECK("tern exited with " << code << "; log:\n" << text);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

bool broker_process::alive() {
    if (pid_ <= 0 || exit_code_) {
        return false;
    }
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return false;
    }
    return true;
}

int broker_process::stop() {
    if (pid_ <= 0) {
        return -1;
    }
    if (alive()) {
        kill(pid_, SIGTERM);
        const auto deadline = clock::now() + 10s;
        while (alive() && clock::now() < deadline) {
            std::this_thread::sleep_for(5ms);
        }
        if (alive()) {
            kill(pid_, SIGKILL);
            int status = 0;
            waitpid(pid_, &status, 0);
            exit_code_ = -1;
        }
    }
    return exit_code_.value_or(-1);
}

std::string broker_process::log() const {
    return read_file(dir_ + "/broker.log");
}

// ---------------------------------------------------------------------------------------------
// mqtt_client

mqtt_client::mqtt_client(std::string id, int version, bool clean) : version_(version) {
    ensure_mosquitto_library();
    mosq_ = mosquitto_new(id.empty() ? nullptr : id.c_str(), clean, this);
    if (mosq_ == nullptr) {
        throw std::runtime_error("mosquitto_new failed");
    }
    mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, version);
    mosquitto_connect_v5_callback_set(mosq_, &on_connect);
    mosquitto_disconnect_v5_callback_set(mosq_, &on_disconnect);
    mosquitto_publish_v5_callback_set(mosq_, &on_publish);
    mosquitto_message_v5_callback_set(mosq_, &on_message);
    mosquitto_subscribe_v5_callback_set(mosq_, &on_subscribe);
    mosquitto_unsubscribe_v5_callback_set(mosq_, &on_unsubscribe);
}

mqtt_client::~mqtt_client() {
    mosquitto_destroy(mosq_);
}

void mqtt_client::set_will(const std::string& topic, const std::string& payload, int qos,
                           bool retain) {
    mosquitto_will_set_v5(mosq_, topic.c_str(), static_cast<int>(payload.size()), payload.data(),
                          qos, retain, nullptr);
}

int mqtt_client::connect(int port, int keep_alive) {
    if (mosquitto_connect_bind_v5(mosq_, "127.0.0.1", port, keep_alive, nullptr, nullptr) !=
        MOSQ_ERR_SUCCESS) {
        return -1;
    }
    pump_until([&] { return connack_rc_.has_value() || disconnect_rc_.has_value(); });
    return connack_rc_.value_or(-1);
}

int mqtt_client::subscribe(const std::string& filter, int qos, int v5_options) {
    int mid = 0;
    if (mosquitto_subscribe_v5(mosq_, &mid, filter.c_str(), qos, v5_options, nullptr) !=
        MOSQ_ERR_SUCCESS) {
        return -1;
    }
    int granted = -1;
    pump_until([&] {
        for (const auto& [m, g] : subacks_) {
            if (m == mid) {
                granted = g;
                return true;
            }
        }
        return false;
    });
    return granted;
}

bool mqtt_client::unsubscribe(const std::string& filter) {
    int mid = 0;
    if (mosquitto_unsubscribe_v5(mosq_, &mid, filter.c_str(), nullptr) != MOSQ_ERR_SUCCESS) {
        return false;
    }
    return pump_until(
        [&] { return std::find(unsubacks_.begin(), unsubacks_.end(), mid) != unsubacks_.end(); });
}

bool mqtt_client::publish(const std::string& topic, std::string_view payload, int qos,
                          bool retain) {
    int mid = 0;
    if (mosquitto_publish_v5(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                             payload.data(), qos, retain, nullptr) != MOSQ_ERR_SUCCESS) {
        return false;
    }
    return pump_until([&] {
        return std::find(published_mids_.begin(), published_mids_.end(), mid) !=
               published_mids_.end();
    });
}

std::optional<received_message> mqtt_client::next_message(clock::duration timeout) {
    if (!pump_until([&] { return !messages_.empty(); }, timeout)) {
        return std::nullopt;
    }
    auto m = std::move(messages_.front());
    messages_.pop_front();
    return m;
}

bool mqtt_client::no_message_within(clock::duration window) {
    return !pump_until([&] { return !messages_.empty(); }, window);
}

void mqtt_client::disconnect() {
    mosquitto_disconnect_v5(mosq_, 0, nullptr);
    pump_until([&] { return !connected_; });
}

void mqtt_client::drop_connection() {
    const int fd = mosquitto_socket(mosq_);
    if (fd >= 0) {
        ::shutdown(fd, SHUT_RDWR);
    }
    pump_until([&] { return !connected_; }, 1s);
}

bool mqtt_client::pump_until(const std::function<bool()>& done, clock::duration timeout) {
    const auto deadline = clock::now() + timeout;
    while (!done()) {
        if (clock::now() >= deadline) {
            return false;
        }
        const int rc = mosquitto_loop(mosq_, 10, 1);
        if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) {
            connected_ = false;
            if (!done()) {
                // Nothing more can arrive on a closed connection.
                return done();
            }
        }
    }
    return true;
}

void mqtt_client::on_connect(mosquitto*, void* obj, int rc, int, const mosquitto_property* props) {
    auto* self = static_cast<mqtt_client*>(obj);
    self->connack_rc_ = rc;
    self->connected_ = rc == 0;
    for (const mosquitto_property* p = props; p != nullptr; p = mosquitto_property_next(p)) {
        char* value = nullptr;
        if (mosquitto_property_read_string(p, MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER, &value,
                                           false) != nullptr &&
            value != nullptr) {
            self->assigned_id_ = value;
            std::free(value);
        }
    }
}

void mqtt_client::on_disconnect(mosquitto*, void* obj, int rc, const mosquitto_property*) {
    auto* self = static_cast<mqtt_client*>(obj);
    self->connected_ = false;
    self->disconnect_rc_ = rc;
}

void mqtt_client::on_publish(mosquitto*, void* obj, int mid, int, const mosquitto_property*) {
    static_cast<mqtt_client*>(obj)->published_mids_.push_back(mid);
}

void mqtt_client::on_message(mosquitto*, void* obj, const mosquitto_message* msg,
                             const mosquitto_property*) {
    received_message m;
    m.topic = msg->topic;
    m.payload.assign(static_cast<const char*>(msg->payload),
                     static_cast<std::size_t>(msg->payloadlen));
    m.qos = msg->qos;
    m.retain = msg->retain;
    static_cast<mqtt_client*>(obj)->messages_.push_back(std::move(m));
}

void mqtt_client::on_subscribe(mosquitto*, void* obj, int mid, int count, const int* granted,
                               const mosquitto_property*) {
    static_cast<mqtt_client*>(obj)->subacks_.emplace_back(mid, count > 0 ? granted[0] : -1);
}

void mqtt_client::on_unsubscribe(mosquitto*, void* obj, int mid, const mosquitto_property*) {
    static_cast<mqtt_client*>(obj)->unsubacks_.push_back(mid);
}

// ---------------------------------------------------------------------------------------------
// raw_socket

raw_socket::raw_socket(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) {
        throw std::runtime_error("socket failed");
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd_);
        throw std::runtime_error(std::string("connect failed: ") + std::strerror(errno));
    }
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

raw_socket::~raw_socket() {
    ::close(fd_);
}

bool raw_socket::send(const std::vector<std::uint8_t>& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

bool raw_socket::read_exact(std::uint8_t* out, std::size_t n, clock::time_point deadline) {
    std::size_t done = 0;
    while (done < n) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) {
            return false;
        }
        pollfd pfd{fd_, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
            return false;
        }
        const ssize_t r = ::recv(fd_, out + done, n - done, 0);
        if (r <= 0) {
            return false;
        }
        done += static_cast<std::size_t>(r);
    }
    return true;
}

std::optional<std::vector<std::uint8_t>> raw_socket::read_packet(clock::duration timeout) {
    const auto deadline = clock::now() + timeout;
    std::vector<std::uint8_t> packet(1);
    if (!read_exact(packet.data(), 1, deadline)) {
        return std::nullopt;
    }
    std::size_t length = 0;
    for (int shift = 0; shift < 28; shift += 7) {
        std::uint8_t b = 0;
        if (!read_exact(&b, 1, deadline)) {
            return std::nullopt;
        }
        packet.push_back(b);
        length |= static_cast<std::size_t>(b & 0x7F) << shift;
        if ((b & 0x80) == 0) {
            break;
        }
    }
    const std::size_t header = packet.size();
    packet.resize(header + length);
    if (length > 0 && !read_exact(packet.data() + header, length, deadline)) {
        return std::nullopt;
    }
    return packet;
}

bool raw_socket::wait_closed(clock::duration timeout) {
    const auto deadline = clock::now() + timeout;
    std::uint8_t buf[4096];
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) {
            return false;
        }
        pollfd pfd{fd_, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
            return false;
        }
        const ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            return true;
        }
        if (r < 0) {
            return false;
        }
    }
}

// ---------------------------------------------------------------------------------------------

std::vector<std::uint8_t> hex(std::string_view text) {
    std::vector<std::uint8_t> out;
    int nibbles = 0;
    std::uint8_t value = 0;
    for (const char c : text) {
        int v = -1;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v = c - 'A' + 10;
        } else {
            continue;
        }
        value = static_cast<std::uint8_t>((value << 4) | v);
        if (++nibbles == 2) {
            out.push_back(value);
            nibbles = 0;
            value = 0;
        }
    }
    return out;
}

std::string make_payload(std::size_t size, unsigned seed) {
    std::string s(size, '\0');
    std::uint32_t x = seed * 2654435761U + 1U;
    for (auto& c : s) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(' ' + x % 95);
    }
    return s;
}

} // namespace tern::test
