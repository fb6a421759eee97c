// `tern -c FILE` and `tern --test-config` against the real binary: exit codes, the FILE:LINE
// error on stderr, and a broker started from a configuration file (listener on an ephemeral
// port, log file, pid file) that clients can use. Every file lives in a temporary directory;
// every wait is bounded.

#include "support.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef TERN_BINARY
#error "TERN_BINARY must name the tern executable"
#endif

using namespace tern::test;

namespace {

/// A temporary directory for configuration, port, log and pid files.
class scratch {
public:
    scratch() {
        std::string pattern = "/tmp/tern-config-bb-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        dir_ = pattern;
    }
    ~scratch() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    scratch(const scratch&) = delete;
    scratch& operator=(const scratch&) = delete;

    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    std::string write(const std::string& name, const std::string& content) const {
        std::filesystem::create_directories(std::filesystem::path(path(name)).parent_path());
        std::ofstream(path(name)) << content;
        return path(name);
    }

private:
    std::string dir_;
};

/// `tern ARGS` as a child process, stdout and stderr captured in files of `where`.
class tern_child {
public:
    tern_child(const scratch& where, std::vector<std::string> args)
        : out_(where.path("stdout")), err_(where.path("stderr")) {
        args.insert(args.begin(), TERN_BINARY);
        pid_ = ::fork();
        if (pid_ < 0) {
            throw std::runtime_error("fork failed");
        }
        if (pid_ == 0) {
            const int out = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            const int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (out < 0 || err < 0) {
                _exit(126);
            }
            ::dup2(out, STDOUT_FILENO);
            ::dup2(err, STDERR_FILENO);
            std::vector<char*> argv;
            for (auto& a : args) {
                argv.push_back(a.data());
            }
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            _exit(127);
        }
    }
    ~tern_child() {
        if (!code_) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }
    tern_child(const tern_child&) = delete;
    tern_child& operator=(const tern_child&) = delete;

    /// The exit code once the child has exited within `timeout` (-1: killed by a signal).
    std::optional<int> wait_exit(clock::duration timeout = 10s) {
        const auto deadline = clock::now() + timeout;
        while (!code_) {
            int status = 0;
            const pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                break;
            }
            if (clock::now() >= deadline) {
                break;
            }
            std::this_thread::sleep_for(5ms);
        }
        return code_;
    }
    /// SIGTERM, then the exit code.
    std::optional<int> terminate() {
        if (!code_) {
            ::kill(pid_, SIGTERM);
        }
        return wait_exit();
    }
    bool running() { return !wait_exit(0s); }
    pid_t pid() const noexcept { return pid_; }
    std::string out() const { return read_file(out_); }
    std::string err() const { return read_file(err_); }

private:
    std::string out_;
    std::string err_;
    pid_t pid_ = -1;
    std::optional<int> code_;
};

/// Runs `tern ARGS` to completion (bounded).
struct result {
    int code = -2;
    std::string out;
    std::string err;
};
result run_tern(const scratch& where, std::vector<std::string> args) {
    tern_child child(where, std::move(args));
    const auto code = child.wait_exit();
    REQUIRE(code); // did not hang
    return {*code, child.out(), child.err()};
}

/// The port tern wrote to `port_file`, waiting (bounded) while it runs.
int wait_for_port(tern_child& child, const std::string& port_file) {
    const auto deadline = clock::now() + 10s;
    while (clock::now() < deadline && child.running()) {
        const std::string text = read_file(port_file);
        if (!text.empty() && text.back() == '\n') {
            return std::atoi(text.c_str());
        }
        std::this_thread::sleep_for(5ms);
    }
    FAIL("tern did not write its port file; stderr:\n" << child.err());
    return 0;
}

} // namespace

TEST_CASE("tern --test-config -c good.conf exits 0 and never listens", "[broker][config]") {
    scratch s;
    const auto conf = s.write("good.conf", "# a valid file\n"
                                           "listener 0 127.0.0.1\n"
                                           "allow_anonymous true\n"
                                           "max_inflight_messages 10\n"
                                           "persistent_client_expiration 2d\n"
                                           "shared_subscription_strategy sensors topic_hash\n");
    const auto r = run_tern(s, {"--test-config", "-c", conf, "--port-file", s.path("port")});
    CHECK(r.code == 0);
    CHECK(r.out == conf + ": configuration OK\n");
    CHECK(r.err.empty());
    CHECK_FALSE(std::filesystem::exists(s.path("port")));
}

TEST_CASE("a bad configuration file exits non-zero with bad.conf:3: on stderr",
          "[broker][config]") {
    scratch s;
    const auto conf = s.write("bad.conf", "listener 0 127.0.0.1\n"
                                          "allow_anonymous true\n"
                                          "max_inflight_messages abc\n");
    const std::string expected =
        conf + ":3: max_inflight_messages: expected an integer 0..65535, got 'abc'\n";

    SECTION("--test-config") {
        const auto r = run_tern(s, {"--test-config", "-c", conf});
        CHECK(r.code != 0);
        CHECK(r.err.find("bad.conf:3:") != std::string::npos);
        CHECK(r.err == expected);
        CHECK(r.out.empty());
    }
    SECTION("at start-up: no listening, no port file") {
        const auto r = run_tern(s, {"-c", conf, "--port", "0", "--port-file", s.path("port")});
        CHECK(r.code == 1);
        CHECK(r.err == expected);
        CHECK_FALSE(std::filesystem::exists(s.path("port")));
    }
    SECTION("an unsupported directive says so") {
        const auto unsupported = s.write("qos.conf", "listener 0 127.0.0.1\nmax_qos 1\n");
        const auto r = run_tern(s, {"--test-config", "-c", unsupported});
        CHECK(r.code == 1);
        CHECK(r.err.find("qos.conf:2: 'max_qos' is not supported by this version of tern") !=
              std::string::npos);
    }
    SECTION("a module's directive with a bad value names the file and line") {
        const auto bad = s.write("persist.conf", "listener 0 127.0.0.1\npersistence maybe\n");
        const auto r = run_tern(s, {"--test-config", "-c", bad});
        CHECK(r.code == 1);
        CHECK(r.err.find("persist.conf:2: persistence expects true or false") != std::string::npos);
    }
    SECTION("a missing file names it and the OS reason") {
        const auto r = run_tern(s, {"-c", s.path("missing.conf")});
        CHECK(r.code == 1);
        CHECK(r.err == s.path("missing.conf") +
                           ": cannot open configuration file: No such file or directory\n");
    }
    SECTION("an error inside include_dir names the included file") {
        s.write("conf.d/10-ok.conf", "max_queued_messages 10\n");
        s.write("conf.d/20-bad.conf", "\nmax_keepalive 3\n");
        const auto main_conf =
            s.write("main.conf", "listener 0 127.0.0.1\ninclude_dir " + s.path("conf.d") + "\n");
        const auto r = run_tern(s, {"--test-config", "-c", main_conf});
        CHECK(r.code == 1);
        CHECK(r.err == s.path("conf.d") +
                           "/20-bad.conf:2: max_keepalive: expected an integer 10..65535, got "
                           "'3'\n");
    }
}

TEST_CASE("tern -c: a listener on port 0 from the file, --port-file, clients connect",
          "[broker][config]") {
    scratch s;
    const auto log_file = s.path("tern.log");
    const auto pid_file = s.path("tern.pid");
    const auto conf = s.write("tern.conf", "listener 0 127.0.0.1\n"
                                           "allow_anonymous true\n"
                                           "log_dest file " +
                                               log_file +
                                               "\n"
                                               "log_dest stderr\n"
                                               "log_type all\n"
                                               "pid_file " +
                                               pid_file + "\n");
    const auto port_file = s.path("port");
    // No --port: the port (0, ephemeral) and address come from the file.
    tern_child tern(s, {"-c", conf, "--port-file", port_file, "--threads", "2"});
    const int port = wait_for_port(tern, port_file);
    REQUIRE(port > 0);

    mqtt_client sub("config-sub");
    REQUIRE(sub.connect(port) == 0);
    REQUIRE(sub.subscribe("config/#", 1) == 1);
    mqtt_client pub("config-pub", MQTT_PROTOCOL_V5);
    REQUIRE(pub.connect(port) == 0);
    REQUIRE(pub.publish("config/test", "from a configuration file", 1));
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->topic == "config/test");
    CHECK(m->payload == "from a configuration file");
    sub.disconnect();
    pub.disconnect();

    // Written right after the listeners are bound, so (almost always) before the port file is
    // read; wait a bounded time anyway.
    const auto deadline = clock::now() + 5s;
    while (read_file(pid_file).empty() && clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    CHECK(read_file(pid_file) == std::to_string(tern.pid()) + "\n");

    CHECK(tern.terminate() == 0);
    const std::string logged = read_file(log_file);
    INFO("log file:\n" << logged);
    CHECK(logged.find("configuration loaded from " + conf) != std::string::npos);
    CHECK(logged.find("listening on 127.0.0.1:" + std::to_string(port)) != std::string::npos);
    // The same lines went to stderr too (two destinations).
    CHECK(tern.err().find("listening on 127.0.0.1:" + std::to_string(port)) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(pid_file)); // removed at exit
}

TEST_CASE("command-line options override the configuration file", "[broker][config]") {
    scratch s;
    // The file asks for port 1 (privileged, and never free for a test); --port 0 replaces it.
    const auto conf = s.write("tern.conf", "listener 1 127.0.0.1\nallow_anonymous true\n"
                                           "log_dest none\n");
    const auto port_file = s.path("port");
    tern_child tern(s, {"--port", "0", "-c", conf, "--port-file", port_file});
    const int port = wait_for_port(tern, port_file);
    REQUIRE(port > 1);
    mqtt_client client("override");
    CHECK(client.connect(port) == 0);
    client.disconnect();
    CHECK(tern.terminate() == 0);
    CHECK(tern.err().empty()); // log_dest none
}

namespace {

/// True while process `pid` (not our child) exists and is not a zombie.
bool process_alive(pid_t pid) {
    if (::kill(pid, 0) != 0) {
        return false;
    }
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    return close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] != 'Z';
}

/// A socket bound to an ephemeral 127.0.0.1 port: {descriptor, port}.
std::pair<int, int> bound_loopback_socket() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    return {fd, ntohs(a.sin_port)};
}

/// A loopback port that was free a moment ago.
int free_port() {
    const auto [fd, port] = bound_loopback_socket();
    ::close(fd);
    return port;
}

} // namespace

TEST_CASE("tern -d returns once the daemon listens; the daemon serves clients until SIGTERM",
          "[broker][config]") {
    scratch s;
    const auto pid_file = s.path("tern.pid");
    const auto port_file = s.path("port");
    const auto conf = s.write("tern.conf", "listener 0 127.0.0.1\nallow_anonymous true\n"
                                           "log_dest none\npid_file " +
                                               pid_file + "\n");
    const auto r = run_tern(s, {"-d", "-c", conf, "--port-file", port_file});
    INFO(r.err);
    REQUIRE(r.code == 0);
    // Both files are written before the starting process is told to exit.
    const int port = std::atoi(read_file(port_file).c_str());
    REQUIRE(port > 0);
    const pid_t daemon = static_cast<pid_t>(std::atol(read_file(pid_file).c_str()));
    REQUIRE(daemon > 0);
    REQUIRE(process_alive(daemon));

    mqtt_client client("daemon-client");
    CHECK(client.connect(port) == 0);
    CHECK(client.subscribe("d/#", 0) == 0);
    client.disconnect();

    ::kill(daemon, SIGTERM);
    const auto deadline = clock::now() + 10s;
    while (process_alive(daemon) && clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    CHECK_FALSE(process_alive(daemon));
    CHECK_FALSE(std::filesystem::exists(pid_file));
}

TEST_CASE("tern -d that cannot listen exits 1 with the reason on stderr", "[broker][config]") {
    scratch s;
    // A port someone else listens on.
    const auto [fd, port] = bound_loopback_socket();
    REQUIRE(::listen(fd, 1) == 0);
    const auto conf =
        s.write("tern.conf", "listener " + std::to_string(port) + " 127.0.0.1\nlog_dest none\n");
    const auto r = run_tern(s, {"-d", "-c", conf});
    ::close(fd);
    CHECK(r.code == 1);
    CHECK(r.err.find("cannot listen on 127.0.0.1:") != std::string::npos);
}

TEST_CASE("mosquitto's -p: loopback listeners on those ports, ignored when the file has "
          "listeners",
          "[broker][config]") {
    scratch s;
    const int p1 = free_port();
    const int p2 = free_port();
    {
        tern_child tern(
            s, {"-p", std::to_string(p1), "-p", std::to_string(p2), "--port-file", s.path("port")});
        wait_for_port(tern, s.path("port"));
        for (const int port : {p1, p2}) {
            mqtt_client client("p-" + std::to_string(port));
            CHECK(client.connect(port) == 0);
            client.disconnect();
        }
        CHECK(tern.terminate() == 0);
    }
    const auto conf = s.write("tern.conf", "listener 0 127.0.0.1\nallow_anonymous true\n");
    tern_child tern(s, {"-c", conf, "-p", std::to_string(p1), "--port-file", s.path("port2")});
    const int port = wait_for_port(tern, s.path("port2"));
    CHECK(port != p1);
    mqtt_client client("file-listener");
    CHECK(client.connect(port) == 0);
    client.disconnect();
    CHECK(tern.terminate() == 0);
    CHECK(tern.err().find("-p is ignored") != std::string::npos);
}

TEST_CASE("Debian's /etc/mosquitto/mosquitto.conf starts tern unchanged but for its paths: pid "
          "file, log file, include_dir, and a persistent session that survives a restart",
          "[broker][config][persistence]") {
    // Debian 12's file as it ships (read from /etc when mosquitto is installed), its absolute
    // paths moved into the scratch directory: the directives and their order are Debian's.
    std::string debian = read_file("/etc/mosquitto/mosquitto.conf");
    if (debian.find("persistence true") == std::string::npos) {
        debian = "# Place your local configuration in /etc/mosquitto/conf.d/\n"
                 "pid_file /run/mosquitto/mosquitto.pid\n\n"
                 "persistence true\n"
                 "persistence_location /var/lib/mosquitto/\n\n"
                 "log_dest file /var/log/mosquitto/mosquitto.log\n\n"
                 "include_dir /etc/mosquitto/conf.d\n";
    }
    scratch s;
    const auto move = [&](const std::string& from, const std::string& to) {
        const auto at = debian.find(from);
        REQUIRE(at != std::string::npos);
        debian.replace(at, from.size(), to);
    };
    for (const auto* dir : {"run", "log", "lib"}) {
        std::filesystem::create_directories(s.path(dir));
    }
    move("/run/mosquitto", s.path("run"));
    move("/var/lib/mosquitto", s.path("lib"));
    move("/var/log/mosquitto", s.path("log"));
    move("/etc/mosquitto/conf.d", s.path("conf.d"));
    s.write("conf.d/local.conf", "listener 0 127.0.0.1\nallow_anonymous true\n");
    const auto conf = s.write("mosquitto.conf", debian);
    const auto port_file = s.path("port");
    {
        tern_child tern(s, {"-c", conf, "--port-file", port_file, "--threads", "2"});
        const int port = wait_for_port(tern, port_file);
        mqtt_client sub("debian-sub", MQTT_PROTOCOL_V311, false);
        REQUIRE(sub.connect(port) == 0);
        REQUIRE(sub.subscribe("debian/#", 1) == 1);
        sub.disconnect();
        mqtt_client pub("debian-pub");
        REQUIRE(pub.connect(port) == 0);
        REQUIRE(pub.publish("debian/kept", "across a restart", 1));
        pub.disconnect();
        CHECK(read_file(s.path("run/mosquitto.pid")) == std::to_string(tern.pid()) + "\n");
        CHECK(tern.terminate() == 0);
    }
    CHECK(std::filesystem::is_directory(s.path("lib/tern.db")));
    const std::string logged = read_file(s.path("log/mosquitto.log"));
    INFO("log file:\n" << logged);
    CHECK(logged.find("configuration loaded from " + conf) != std::string::npos);
    CHECK(logged.find("session store " + s.path("lib") + "/tern.db") != std::string::npos);

    std::filesystem::remove(port_file);
    tern_child tern(s, {"-c", conf, "--port-file", port_file, "--threads", "2"});
    const int port = wait_for_port(tern, port_file);
    mqtt_client sub("debian-sub", MQTT_PROTOCOL_V311, false);
    REQUIRE(sub.connect(port) == 0);
    CHECK(sub.session_present());
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->topic == "debian/kept");
    CHECK(m->payload == "across a restart");
    sub.disconnect();
    CHECK(tern.terminate() == 0);
}
