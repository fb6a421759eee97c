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

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
}

struct mosquitto_library {
    mosquitto_library() { mosquitto_lib_init(); }
    ~mosquitto_library() { mosquitto_lib_cleanup(); }
};

void ensure_mosquitto_library() {
    static mosquitto_library lib;
}

/// SIGPIPE ignored in this process, once: a TLS write (SSL_write has no MSG_NOSIGNAL) to a
/// connection the broker closed, or a write to a child's closed stdin, must fail with EPIPE
/// instead of killing the test binary. (Paho C ignores it too, once it is used.)
void ignore_sigpipe() {
    static const bool done = [] {
        ::signal(SIGPIPE, SIG_IGN);
        return true;
    }();
    (void)done;
}

std::string mosquitto_binary() {
    const char* path = std::getenv("TERN_TEST_MOSQUITTO");
    return path != nullptr && *path != '\0' ? path : "/usr/sbin/mosquitto";
}

} // namespace

std::string tern_binary() {
    const char* path = std::getenv("TERN_TEST_TERN");
    return path != nullptr && *path != '\0' ? path : TERN_BINARY;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

int pick_free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        throw std::runtime_error("socket failed");
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot pick a free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

bool accepts_connections(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

bool against_mosquitto() {
    static const bool value = [] {
        const char* v = std::getenv("TERN_TEST_BROKER");
        return v != nullptr && std::string_view(v) == "mosquitto";
    }();
    return value;
}

// ---------------------------------------------------------------------------------------------
// broker_settings

bool broker_settings::any_config() const {
    return max_inflight_messages || max_queued_messages || persistent_client_expiration ||
           sys_interval || retain_available || max_keepalive || message_size_limit ||
           max_packet_size || !extra_config.empty() || !listeners.empty();
}

std::string broker_settings::directives() const {
    std::string out;
    const auto line = [&](const char* name, const std::string& value) {
        out += name;
        out += ' ';
        out += value;
        out += '\n';
    };
    if (max_inflight_messages) {
        line("max_inflight_messages", std::to_string(*max_inflight_messages));
    }
    if (max_queued_messages) {
        line("max_queued_messages", std::to_string(*max_queued_messages));
    }
    if (persistent_client_expiration) {
        line("persistent_client_expiration", *persistent_client_expiration);
    }
    if (sys_interval) {
        line("sys_interval", std::to_string(*sys_interval));
    }
    if (retain_available) {
        line("retain_available", *retain_available ? "true" : "false");
    }
    if (max_keepalive) {
        line("max_keepalive", std::to_string(*max_keepalive));
    }
    if (message_size_limit) {
        line("message_size_limit", std::to_string(*message_size_limit));
    }
    if (max_packet_size) {
        line("max_packet_size", std::to_string(*max_packet_size));
    }
    for (const auto& l : extra_config) {
        out += l;
        out += '\n';
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// broker_process

namespace {

/// `listener PORT 127.0.0.1` and the block's lines, for each of `settings.listeners`.
std::string extra_listeners(const broker_settings& settings, const std::vector<int>& ports) {
    std::string out;
    for (std::size_t i = 0; i < settings.listeners.size(); ++i) {
        out += "listener " + std::to_string(ports.at(i)) + " 127.0.0.1\n";
        out += settings.listeners[i];
        if (!settings.listeners[i].empty() && settings.listeners[i].back() != '\n') {
            out += '\n';
        }
    }
    return out;
}

/// The ports of a port file, one per line; only complete ('\n'-terminated) lines count.
std::vector<int> parse_ports(const std::string& text) {
    std::vector<int> ports;
    std::size_t start = 0;
    for (std::size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
        ports.push_back(std::atoi(text.substr(start, nl - start).c_str()));
        start = nl + 1;
    }
    return ports;
}

broker_settings with_tern_args(std::vector<std::string> args) {
    broker_settings s;
    s.tern_args = std::move(args);
    return s;
}

} // namespace

broker_process::broker_process(std::vector<std::string> extra_args)
    : broker_process(with_tern_args(std::move(extra_args))) {}

broker_process::broker_process(broker_settings settings) {
    char pattern[] = "/tmp/tern-broker-test-XXXXXX";
    if (mkdtemp(pattern) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    dir_ = pattern;
    if (against_mosquitto()) {
        start_mosquitto(settings);
    } else {
        start_tern(settings);
    }
}

void broker_process::spawn(std::vector<std::string> args) {
    const std::string log_file = dir_ + "/broker.log";
    exit_code_.reset();
    pid_ = fork();
    if (pid_ < 0) {
        throw std::runtime_error("fork failed");
    }
    if (pid_ == 0) {
        const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
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
}

void broker_process::start_tern(const broker_settings& settings) {
    const std::string port_file = dir_ + "/port";
    std::vector<std::string> args{tern_binary(), "--port",    "0", "--port-file",
                                  port_file,     "--threads", "2"};
    if (settings.any_config()) {
        // The command line's --port 0 / --port-file override this listener.
        const std::string config = dir_ + "/tern.conf";
        write_file(config,
                   "listener 0 127.0.0.1\nallow_anonymous true\n" + settings.directives() +
                       extra_listeners(settings, std::vector<int>(settings.listeners.size(), 0)));
        args.push_back("-c");
        args.push_back(config);
    }
    args.insert(args.end(), settings.tern_args.begin(), settings.tern_args.end());
    spawn(std::move(args));

    // Bounded wait for the port file (written atomically by the broker once listening): one
    // line per listener, the first listener first.
    const std::size_t expected = 1 + settings.listeners.size();
    const auto deadline = clock::now() + 10s;
    while (clock::now() < deadline) {
        const std::vector<int> ports = parse_ports(read_file(port_file));
        if (ports.size() >= expected) {
            // The file is written whole (a rename): every listener of the configuration is there,
            // also those of a `-c FILE` given through tern_args.
            ports_ = ports;
            port_ = ports_.front();
            return;
        }
        if (!alive()) {
            break;
        }
        std::this_thread::sleep_for(5ms);
    }
    fail_start("tern");
}

void broker_process::start_mosquitto(const broker_settings& settings) {
    const std::string config = dir_ + "/mosquitto.conf";
    // Mosquitto cannot report an ephemeral port: pick a free one, and try again with another
    // if someone else took it before Mosquitto bound it.
    for (int attempt = 0; attempt < 3; ++attempt) {
        port_ = pick_free_port();
        ports_.assign(1, port_);
        for (std::size_t i = 0; i < settings.listeners.size(); ++i) {
            int p = pick_free_port();
            while (std::find(ports_.begin(), ports_.end(), p) != ports_.end()) {
                p = pick_free_port();
            }
            ports_.push_back(p);
        }
        write_file(config, "listener " + std::to_string(port_) +
                               " 127.0.0.1\nallow_anonymous true\npersistence false\n"
                               "log_dest stderr\nlog_type all\n" +
                               settings.directives() +
                               extra_listeners(settings, {ports_.begin() + 1, ports_.end()}));
        spawn({mosquitto_binary(), "-c", config});
        const auto deadline = clock::now() + 10s;
        while (clock::now() < deadline && alive()) {
            if (std::all_of(ports_.begin(), ports_.end(), accepts_connections)) {
                return;
            }
            std::this_thread::sleep_for(5ms);
        }
        if (alive()) {
            break; // running but not accepting: give up
        }
    }
    fail_start("mosquitto");
}

void broker_process::fail_start(const char* name) {
    const std::string log_text = log();
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    throw std::runtime_error(std::string(name) + " did not start; log:\n" + log_text);
}

broker_process::~broker_process() {
    const int code = stop();
    // A crash, a hang at shutdown or a sanitizer report in the broker fails the test case.
    const std::string text = log();
    const bool sanitizer_report = text.find("Sanitizer") != std::string::npos ||
                                  text.find("runtime error:") != std::string::npos;
    if (code != 0 || sanitizer_report) {
        FAIL_CHECK((against_mosquitto() ? "mosquitto" : "tern")
                   << " exited with " << code << "; log:\n"
                   << text);
    }
    if (std::getenv("TERN_TEST_KEEP_LOGS") != nullptr) {
        WARN("broker log kept in " << dir_);
        return;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

int broker_process::port(std::size_t listener) const {
    if (listener >= ports_.size()) {
        throw std::out_of_range("broker_process::port: no listener " + std::to_string(listener));
    }
    return ports_[listener];
}

void broker_process::signal(int signo) {
    if (pid_ > 0 && !exit_code_) {
        ::kill(pid_, signo);
    }
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
// properties

properties::~properties() {
    mosquitto_property_free_all(&list_);
}

properties::properties(properties&& other) noexcept : list_(std::exchange(other.list_, nullptr)) {}

properties& properties::operator=(properties&& other) noexcept {
    if (this != &other) {
        mosquitto_property_free_all(&list_);
        list_ = std::exchange(other.list_, nullptr);
    }
    return *this;
}

namespace {

void check_added(int rc) {
    if (rc != MOSQ_ERR_SUCCESS) {
        throw std::runtime_error(std::string("mosquitto_property_add: ") + mosquitto_strerror(rc));
    }
}

} // namespace

properties& properties::add_byte(int id, std::uint8_t value) {
    check_added(mosquitto_property_add_byte(&list_, id, value));
    return *this;
}

properties& properties::add_int16(int id, std::uint16_t value) {
    check_added(mosquitto_property_add_int16(&list_, id, value));
    return *this;
}

properties& properties::add_int32(int id, std::uint32_t value) {
    check_added(mosquitto_property_add_int32(&list_, id, value));
    return *this;
}

properties& properties::add_varint(int id, std::uint32_t value) {
    check_added(mosquitto_property_add_varint(&list_, id, value));
    return *this;
}

properties& properties::add_string(int id, const std::string& value) {
    check_added(mosquitto_property_add_string(&list_, id, value.c_str()));
    return *this;
}

properties& properties::add_binary(int id, std::string_view value) {
    check_added(mosquitto_property_add_binary(&list_, id, value.data(),
                                              static_cast<std::uint16_t>(value.size())));
    return *this;
}

properties& properties::add_user(const std::string& name, const std::string& value) {
    check_added(mosquitto_property_add_string_pair(&list_, MQTT_PROP_USER_PROPERTY, name.c_str(),
                                                   value.c_str()));
    return *this;
}

properties properties::adopt(mosquitto_property* list) noexcept {
    properties p;
    p.list_ = list;
    return p;
}

mosquitto_property* properties::copy() const {
    mosquitto_property* out = nullptr;
    if (list_ != nullptr) {
        check_added(mosquitto_property_copy_all(&out, list_));
    }
    return out;
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

void mqtt_client::tls(const std::string& cafile, const std::string& cert, const std::string& key,
                      const char* tls_version) {
    ignore_sigpipe();
    const int rc =
        mosquitto_tls_set(mosq_, cafile.c_str(), nullptr, cert.empty() ? nullptr : cert.c_str(),
                          key.empty() ? nullptr : key.c_str(), nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
        throw std::runtime_error(std::string("mosquitto_tls_set: ") + mosquitto_strerror(rc));
    }
    // 1: SSL_VERIFY_PEER, the server certificate must verify.
    const int opts = mosquitto_tls_opts_set(mosq_, 1, tls_version, nullptr);
    if (opts != MOSQ_ERR_SUCCESS) {
        throw std::runtime_error(std::string("mosquitto_tls_opts_set: ") +
                                 mosquitto_strerror(opts));
    }
}

void mqtt_client::tls_insecure(bool insecure) {
    mosquitto_tls_insecure_set(mosq_, insecure);
}

void mqtt_client::set_will(const std::string& topic, const std::string& payload, int qos,
                           bool retain, const properties& props) {
    mosquitto_property* owned = props.copy(); // libmosquitto takes ownership on success
    const int rc = mosquitto_will_set_v5(mosq_, topic.c_str(), static_cast<int>(payload.size()),
                                         payload.data(), qos, retain, owned);
    if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_property_free_all(&owned);
        throw std::runtime_error(std::string("mosquitto_will_set_v5: ") + mosquitto_strerror(rc));
    }
}

int mqtt_client::connect(int port, int keep_alive, const properties& props,
                         clock::duration timeout) {
    connack_rc_.reset();
    disconnect_rc_.reset();
    session_present_ = false;
    connack_props_ = properties();
    if (mosquitto_connect_bind_v5(mosq_, "127.0.0.1", port, keep_alive, nullptr, props.get()) !=
        MOSQ_ERR_SUCCESS) {
        return -1;
    }
    pump_until([&] { return connack_rc_.has_value() || disconnect_rc_.has_value(); }, timeout);
    return connack_rc_.value_or(-1);
}

std::optional<std::uint32_t> mqtt_client::connack_property(int id) const {
    const mosquitto_property* list = connack_props_.get();
    std::uint8_t u8 = 0;
    std::uint16_t u16 = 0;
    std::uint32_t u32 = 0;
    if (mosquitto_property_read_byte(list, id, &u8, false) != nullptr) {
        return u8;
    }
    if (mosquitto_property_read_int16(list, id, &u16, false) != nullptr) {
        return u16;
    }
    if (mosquitto_property_read_int32(list, id, &u32, false) != nullptr) {
        return u32;
    }
    return std::nullopt;
}

int mqtt_client::subscribe(const std::string& filter, int qos, int v5_options,
                           const properties& props) {
    int mid = 0;
    if (mosquitto_subscribe_v5(mosq_, &mid, filter.c_str(), qos, v5_options, props.get()) !=
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

bool mqtt_client::publish(const std::string& topic, std::string_view payload, int qos, bool retain,
                          const properties& props) {
    const int mid = publish_async(topic, payload, qos, retain, props);
    if (mid < 0) {
        return false;
    }
    const auto reason = wait_published(mid);
    if (!reason) {
        return false;
    }
    last_publish_reason_ = *reason;
    return true;
}

int mqtt_client::publish_async(const std::string& topic, std::string_view payload, int qos,
                               bool retain, const properties& props) {
    int mid = 0;
    if (mosquitto_publish_v5(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                             payload.data(), qos, retain, props.get()) != MOSQ_ERR_SUCCESS) {
        return -1;
    }
    return mid;
}

std::optional<int> mqtt_client::wait_published(int mid, clock::duration timeout) {
    std::optional<int> reason;
    pump_until(
        [&] {
            const auto it = std::find_if(published_.begin(), published_.end(),
                                         [&](const auto& p) { return p.first == mid; });
            if (it == published_.end()) {
                return false;
            }
            reason = it->second;
            published_.erase(it);
            return true;
        },
        timeout);
    return reason;
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

void mqtt_client::disconnect(int reason) {
    mosquitto_disconnect_v5(mosq_, reason, nullptr);
    pump_until([&] { return !connected_; });
}

void mqtt_client::drop_connection() {
    const int fd = mosquitto_socket(mosq_);
    if (fd >= 0) {
        ::shutdown(fd, SHUT_RDWR);
    }
    pump_until([&] { return !connected_; }, 1s);
}

void mqtt_client::pump_once(int timeout_ms) {
    const int rc = mosquitto_loop(mosq_, timeout_ms, 1);
    if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) {
        connected_ = false;
    }
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

bool pump_all(std::initializer_list<mqtt_client*> clients, const std::function<bool()>& done,
              clock::duration timeout) {
    const auto deadline = clock::now() + timeout;
    while (!done()) {
        if (clock::now() >= deadline) {
            return false;
        }
        for (auto* c : clients) {
            c->pump_once(1);
        }
    }
    return true;
}

void mqtt_client::on_connect(mosquitto*, void* obj, int rc, int flags,
                             const mosquitto_property* props) {
    auto* self = static_cast<mqtt_client*>(obj);
    self->connack_rc_ = rc;
    self->connected_ = rc == 0;
    self->session_present_ = (flags & 0x01) != 0;
    mosquitto_property* copy = nullptr;
    if (props != nullptr) {
        mosquitto_property_copy_all(&copy, props);
    }
    self->connack_props_ = properties::adopt(copy);
    char* value = nullptr;
    if (mosquitto_property_read_string(props, MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER, &value,
                                       false) != nullptr &&
        value != nullptr) {
        self->assigned_id_ = value;
        std::free(value);
    }
}

void mqtt_client::on_disconnect(mosquitto*, void* obj, int rc, const mosquitto_property*) {
    auto* self = static_cast<mqtt_client*>(obj);
    self->connected_ = false;
    self->disconnect_rc_ = rc;
}

void mqtt_client::on_publish(mosquitto*, void* obj, int mid, int reason,
                             const mosquitto_property*) {
    static_cast<mqtt_client*>(obj)->published_.emplace_back(mid, reason);
}

void mqtt_client::on_message(mosquitto*, void* obj, const mosquitto_message* msg,
                             const mosquitto_property* props) {
    received_message m;
    m.topic = msg->topic;
    m.payload.assign(static_cast<const char*>(msg->payload),
                     static_cast<std::size_t>(msg->payloadlen));
    m.qos = msg->qos;
    m.retain = msg->retain;
    m.mid = msg->mid;
    for (const mosquitto_property* p = props; p != nullptr; p = mosquitto_property_next(p)) {
        const int id = mosquitto_property_identifier(p);
        char* name = nullptr;
        char* value = nullptr;
        void* data = nullptr;
        std::uint16_t len = 0;
        std::uint8_t u8 = 0;
        std::uint16_t u16 = 0;
        std::uint32_t u32 = 0;
        switch (id) {
        case MQTT_PROP_USER_PROPERTY:
            if (mosquitto_property_read_string_pair(p, id, &name, &value, false) != nullptr) {
                m.user_properties.emplace_back(name, value);
            }
            break;
        case MQTT_PROP_CONTENT_TYPE:
        case MQTT_PROP_RESPONSE_TOPIC:
            if (mosquitto_property_read_string(p, id, &value, false) != nullptr) {
                (id == MQTT_PROP_CONTENT_TYPE ? m.content_type : m.response_topic) = value;
            }
            break;
        case MQTT_PROP_CORRELATION_DATA:
            if (mosquitto_property_read_binary(p, id, &data, &len, false) != nullptr) {
                m.correlation_data = std::string(static_cast<const char*>(data), len);
            }
            break;
        case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
            if (mosquitto_property_read_byte(p, id, &u8, false) != nullptr) {
                m.payload_format = u8;
            }
            break;
        case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
            if (mosquitto_property_read_int32(p, id, &u32, false) != nullptr) {
                m.message_expiry = u32;
            }
            break;
        case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
            if (mosquitto_property_read_varint(p, id, &u32, false) != nullptr) {
                m.subscription_ids.push_back(u32);
            }
            break;
        case MQTT_PROP_TOPIC_ALIAS:
            if (mosquitto_property_read_int16(p, id, &u16, false) != nullptr) {
                m.topic_alias = u16;
            }
            break;
        default:
            break;
        }
        std::free(name);
        std::free(value);
        std::free(data);
    }
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
    close();
}

void raw_socket::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
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
// run_command

command_result run_command(const std::vector<std::string>& argv, clock::duration timeout,
                           const std::string& input) {
    if (argv.empty()) {
        throw std::invalid_argument("run_command: empty argv");
    }
    ignore_sigpipe();
    int in_pipe[2];
    int out_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe failed");
    }
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
        ::close(in_pipe[0]);
        ::close(in_pipe[1]);
        throw std::runtime_error("pipe failed");
    }
    std::vector<std::string> args = argv;
    const pid_t pid = ::fork();
    if (pid < 0) {
        for (const int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) {
            ::close(fd);
        }
        throw std::runtime_error("fork failed");
    }
    if (pid == 0) {
        ::signal(SIGPIPE, SIG_DFL);
        ::dup2(in_pipe[0], STDIN_FILENO);
        ::dup2(out_pipe[1], STDOUT_FILENO);
        ::dup2(out_pipe[1], STDERR_FILENO);
        std::vector<char*> cargv;
        for (auto& a : args) {
            cargv.push_back(a.data());
        }
        cargv.push_back(nullptr);
        ::execvp(cargv[0], cargv.data());
        _exit(127);
    }
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    int in_fd = in_pipe[1];
    const int out_fd = out_pipe[0];
    ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
    std::size_t written = 0;
    if (input.empty()) {
        ::close(in_fd); // EOF at once
        in_fd = -1;
    }

    command_result result;
    const auto deadline = clock::now() + timeout;
    bool out_open = true;
    char buf[4096];
    while (out_open) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) {
            result.timed_out = true;
            break;
        }
        pollfd pfds[2] = {{out_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
        const nfds_t n = in_fd >= 0 ? 2 : 1;
        if (::poll(pfds, n, static_cast<int>(left.count())) < 0 && errno != EINTR) {
            break;
        }
        if ((pfds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            const ssize_t r = ::read(out_fd, buf, sizeof buf);
            if (r > 0) {
                result.output.append(buf, static_cast<std::size_t>(r));
            } else if (r == 0 || errno != EINTR) {
                out_open = false;
            }
        }
        if (in_fd >= 0 && (pfds[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
            const ssize_t w = ::write(in_fd, input.data() + written, input.size() - written);
            if (w > 0) {
                written += static_cast<std::size_t>(w);
            }
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                written = input.size(); // the child closed its stdin
            }
            if (written == input.size()) {
                ::close(in_fd);
                in_fd = -1;
            }
        }
    }
    if (in_fd >= 0) {
        ::close(in_fd);
    }
    ::close(out_fd);
    // The output closed: the child is exiting (or it passed its stdout on; bounded anyway).
    int status = 0;
    while (true) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            break;
        }
        if (result.timed_out || clock::now() >= deadline) {
            result.timed_out = true;
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            result.exit_code = -1;
            break;
        }
        std::this_thread::sleep_for(5ms);
    }
    return result;
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

// ---------------------------------------------------------------------------------------------
// store_dir, durable_tern

store_dir::store_dir() {
    std::string pattern = "/tmp/tern-store-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    dir_ = pattern;
    configure(dir_ + "/");
}

store_dir::~store_dir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

void store_dir::configure(const std::string& location) {
    location_ = location;
    write_file(path("tern.conf"), "listener 0 127.0.0.1\n"
                                  "allow_anonymous true\n"
                                  "persistence true\n"
                                  "persistence_location " +
                                      location + "\n");
}

durable_tern::durable_tern(const store_dir& dir) : log_(dir.path("tern.log")) {
    const auto port_file = dir.path("port");
    std::filesystem::remove(port_file);
    const auto binary = tern_binary();
    const auto conf = dir.path("tern.conf");
    pid_ = ::fork();
    if (pid_ < 0) {
        throw std::runtime_error("fork failed");
    }
    if (pid_ == 0) {
        const int out = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (out < 0) {
            _exit(126);
        }
        ::dup2(out, STDOUT_FILENO);
        ::dup2(out, STDERR_FILENO);
        ::execl(binary.c_str(), binary.c_str(), "-c", conf.c_str(), "--port-file",
                port_file.c_str(), "--threads", "2", static_cast<char*>(nullptr));
        _exit(127);
    }
    const auto deadline = clock::now() + 10s;
    while (clock::now() < deadline) {
        const auto text = read_file(port_file);
        if (!text.empty() && text.back() == '\n') {
            port_ = std::stoi(text);
            return;
        }
        if (!alive()) {
            break;
        }
        std::this_thread::sleep_for(5ms);
    }
    kill();
    FAIL("tern did not start; its log:\n" << log());
}

void durable_tern::kill() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }
}

bool durable_tern::alive() {
    if (pid_ <= 0) {
        return false;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
    }
    return true;
}

int durable_tern::stop() {
    if (pid_ <= 0) {
        return -1;
    }
    ::kill(pid_, SIGTERM);
    const auto deadline = clock::now() + 10s;
    while (clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        std::this_thread::sleep_for(5ms);
    }
    kill();
    return -1;
}

void let_time_pass(clock::duration duration) {
    std::this_thread::sleep_for(duration);
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

readable_dir::readable_dir() {
    char pattern[] = "/tmp/tern-test-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    dir_ = pattern;
    namespace fs = std::filesystem;
    fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
}

readable_dir::~readable_dir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::string readable_dir::share(const std::string& name) const {
    namespace fs = std::filesystem;
    fs::permissions(path(name), fs::perms::owner_read | fs::perms::owner_write |
                                    fs::perms::group_read | fs::perms::others_read);
    return path(name);
}

std::string readable_dir::write(const std::string& name, const std::string& text) const {
    {
        std::ofstream out(path(name), std::ios::trunc);
        out << text;
        if (!out) {
            throw std::runtime_error("cannot write " + path(name));
        }
    }
    return share(name);
}

std::string readable_dir::copy(const std::string& from, const std::string& name) const {
    std::filesystem::copy_file(from, path(name), std::filesystem::copy_options::overwrite_existing);
    return share(name);
}

} // namespace tern::test
