// ocsp_checker against a real `openssl ocsp` responder (a child process serving a tiny PKI built
// with the openssl CLI in a temp dir) and against fake TCP servers on 127.0.0.1 for the failure
// paths: refused, silent, HTTP errors, garbage, oversized, truncated, replayed or foreign
// responses. The cache is driven by a manual clock.
//
// `openssl ocsp` (3.0) notes that shape these tests: `-port` takes a number only and listens on
// [::] (dual stack), so -port 0 plus its "ACCEPT [::]:PORT" line gives a free port without a
// race; it serves one connection at a time; and a connection closed without a request makes it
// spin at 100% CPU and never answer again, so readiness is read from that line, never probed by
// connecting.
#include <tern/core/clock.hpp>
#include <tern/net/ocsp.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace net = tern::net;
namespace core = tern::core;
namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::literals;

namespace {

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

const char* const ca_config = R"([ ca ]
default_ca = test_ca
[ test_ca ]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
serial = ./serial
default_md = sha256
default_days = 30
policy = any
unique_subject = no
copy_extensions = none
[ any ]
commonName = supplied
[ leaf ]
basicConstraints = CA:FALSE
[ responder ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
)";

/// The test PKI, built once per run in a fresh temp dir (removed at exit):
/// - ca.pem: the CA, with index.txt from `openssl ca`;
/// - good.pem (listed, valid), revoked.pem (listed, revoked keyCompromise), unlisted.pem
///   (signed by the CA with `openssl x509 -req`, so not in the index: "unknown");
/// - responder.pem: delegated by the CA with extendedKeyUsage OCSPSigning;
/// - rogue.pem: another CA, and rogue_leaf.pem issued by it;
/// - canned responses of the CA's responder for good.pem: resp_good_nononce.der (request
///   without nonce) and resp_good_nonce.der (a nonce the checker did not send).
struct test_pki {
    fs::path dir;
    bool ok = false;
    std::string log;

    test_pki() {
        char tmpl[] = "/tmp/tern-ocsp-test-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) {
            log = "mkdtemp failed";
            return;
        }
        dir = tmpl;
        ok = build();
        if (!ok) {
            log = read_text(dir / "cmd.log");
        }
    }
    ~test_pki() {
        std::error_code ec;
        if (!dir.empty()) {
            fs::remove_all(dir, ec);
        }
    }
    test_pki(const test_pki&) = delete;
    test_pki& operator=(const test_pki&) = delete;

    std::string path(const std::string& name) const { return (dir / name).string(); }

    /// Runs `command` with sh in the PKI dir; output goes to cmd.log.
    bool sh(const std::string& command) const {
        const std::string full = "cd '" + dir.string() + "' && (" + command + ") >>cmd.log 2>&1";
        return std::system(full.c_str()) == 0;
    }

    bool build() {
        fs::create_directory(dir / "newcerts");
        std::ofstream(dir / "index.txt").close();
        std::ofstream(dir / "serial") << "1000\n";
        std::ofstream(dir / "ca.cnf") << ca_config;
        const std::string key = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
        const std::string ca_ext = " -addext basicConstraints=critical,CA:TRUE"
                                   " -addext keyUsage=critical,keyCertSign,cRLSign";
        const auto issue = [&](const std::string& name, const std::string& ext) {
            return sh(key + "-keyout " + name + ".key -out " + name + ".csr -subj /CN=" + name) &&
                   sh("openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -extensions " +
                      ext + " -in " + name + ".csr -out " + name + ".pem");
        };
        const std::string no_nonce_req = "openssl ocsp -issuer ca.pem -cert good.pem ";
        const std::string answer = "openssl ocsp -index index.txt -rsigner ca.pem -rkey ca.key "
                                   "-CA ca.pem -nmin 5 ";
        return sh(key + "-x509 -keyout ca.key -out ca.pem -subj /CN=Tern-OCSP-Test-CA -days 30" +
                  ca_ext) &&
               sh(key + "-x509 -keyout rogue.key -out rogue.pem -subj /CN=Rogue-CA -days 30" +
                  ca_ext) &&
               issue("good", "leaf") && issue("revoked", "leaf") &&
               issue("responder", "responder") &&
               sh("openssl ca -config ca.cnf -cert ca.pem -keyfile ca.key -revoke revoked.pem "
                  "-crl_reason keyCompromise") &&
               sh(key + "-keyout unlisted.key -out unlisted.csr -subj /CN=unlisted") &&
               sh("openssl x509 -req -in unlisted.csr -CA ca.pem -CAkey ca.key -set_serial "
                  "0x7777 -days 30 -out unlisted.pem") &&
               sh(key + "-keyout rogue_leaf.key -out rogue_leaf.csr -subj /CN=rogue_leaf") &&
               sh("openssl x509 -req -in rogue_leaf.csr -CA rogue.pem -CAkey rogue.key "
                  "-set_serial 0x1000 -days 30 -out rogue_leaf.pem") &&
               sh(no_nonce_req + "-no_nonce -reqout req_good_nononce.der") &&
               sh(no_nonce_req + "-nonce -reqout req_good_nonce.der") &&
               sh(answer + "-reqin req_good_nononce.der -respout resp_good_nononce.der") &&
               sh(answer + "-reqin req_good_nonce.der -respout resp_good_nonce.der");
    }

    /// "2026-12-02T17:17:15Z" from revoked.pem's index.txt line ("R\t<exp>\t<YYMMDDHHMMSSZ>,...").
    std::string revocation_time() const {
        std::istringstream in(read_text(dir / "index.txt"));
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind("R\t", 0) == 0 && line.find("/CN=revoked") != std::string::npos) {
                const auto start = line.find('\t', 2) + 1;
                const std::string t = line.substr(start, 13);
                return "20" + t.substr(0, 2) + "-" + t.substr(2, 2) + "-" + t.substr(4, 2) + "T" +
                       t.substr(6, 2) + ":" + t.substr(8, 2) + ":" + t.substr(10, 2) + "Z";
            }
        }
        return "?";
    }
};

const test_pki& pki() {
    static test_pki p;
    return p;
}

std::unique_ptr<X509, decltype(&X509_free)> load_cert(const std::string& path) {
    std::unique_ptr<X509, decltype(&X509_free)> cert(nullptr, X509_free);
    if (FILE* f = std::fopen(path.c_str(), "r")) {
        cert.reset(PEM_read_X509(f, nullptr, nullptr, nullptr));
        std::fclose(f);
    }
    return cert;
}

/// The CertID of pki() certificate `name` (issued by `issuer`).
std::string cert_id(const std::string& name, const std::string& issuer = "ca") {
    auto cert = load_cert(pki().path(name + ".pem"));
    auto ca = load_cert(pki().path(issuer + ".pem"));
    return net::ocsp_cert_id_der(cert.get(), ca.get());
}

/// `openssl ocsp` as a responder on an ephemeral port, killed (and reaped) on destruction.
class responder_process {
public:
    responder_process(std::string rsigner, std::string rkey)
        : rsigner_(std::move(rsigner)), rkey_(std::move(rkey)) {}
    ~responder_process() { stop(); }
    responder_process(const responder_process&) = delete;
    responder_process& operator=(const responder_process&) = delete;

    /// Starts it and waits (bounded) for its "ACCEPT [::]:PORT PID=..." line; false with
    /// log() saying why.
    bool start() {
        static int counter = 0;
        out_ = pki().dir / ("responder-" + std::to_string(++counter) + ".log");
        const std::string dir = pki().dir.string();
        const std::string out = out_.string();
        std::vector<std::string> args = {"openssl", "ocsp", "-index", "index.txt", "-port",
                                         "0",       "-CA",  "ca.pem", "-rsigner",  rsigner_,
                                         "-rkey",   rkey_,  "-nmin",  "5"};
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ < 0) {
            return false;
        }
        if (pid_ == 0) {
            // Child: only async-signal-safe calls until exec.
            const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || ::chdir(dir.c_str()) != 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) {
                ::_exit(126);
            }
            ::execvp("openssl", argv.data());
            ::_exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            const std::string text = read_text(out_);
            const auto at = text.find("ACCEPT ");
            const auto colon = at == std::string::npos ? at : text.find("]:", at);
            // The whole line, so that a half-written one is not misread.
            const auto eol = colon == std::string::npos ? colon : text.find('\n', colon);
            if (eol != std::string::npos) {
                port_ = static_cast<std::uint16_t>(std::atoi(text.c_str() + colon + 2));
                return port_ != 0;
            }
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return false;
            }
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

    void stop() {
        if (pid_ <= 0) {
            return;
        }
        ::kill(pid_, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + 3s;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() >= deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(5ms);
        }
        pid_ = -1;
    }

    std::uint16_t port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
    std::string log() const { return read_text(out_); }

private:
    std::string rsigner_;
    std::string rkey_;
    fs::path out_;
    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
};

/// A TCP server on 127.0.0.1: once a connection has sent something, it writes `reply` and
/// half-closes (so the client sees EOF, never a reset); with no reply it accepts and stays
/// silent. Runs on the test's io_context; destroy it before running that context again.
class fake_server {
public:
    fake_server(asio::io_context& io, std::optional<std::string> reply)
        : acceptor_(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
          reply_(std::move(reply)) {
        accept();
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/ocsp"; }
    int connections() const { return connections_; }
    const std::string& received() const { return received_; }

private:
    struct connection {
        explicit connection(asio::ip::tcp::socket s) : socket(std::move(s)) {}
        asio::ip::tcp::socket socket;
        std::array<char, 4096> buffer{};
    };

    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket s) {
            if (ec) {
                return;
            }
            ++connections_;
            auto c = std::make_shared<connection>(std::move(s));
            connections_kept_.push_back(c);
            if (reply_) {
                c->socket.async_read_some(
                    asio::buffer(c->buffer),
                    [this, c](boost::system::error_code rec, std::size_t n) {
                        if (rec) {
                            return;
                        }
                        received_.append(c->buffer.data(), n);
                        asio::async_write(c->socket, asio::buffer(*reply_),
                                          [c](boost::system::error_code, std::size_t) {
                                              boost::system::error_code ignored;
                                              c->socket.shutdown(asio::socket_base::shutdown_send,
                                                                 ignored);
                                          });
                    });
            }
            accept();
        });
    }

    asio::ip::tcp::acceptor acceptor_;
    std::optional<std::string> reply_;
    std::vector<std::shared_ptr<connection>> connections_kept_;
    int connections_ = 0;
    std::string received_;
};

/// Runs `io` on this thread until `done()` or `limit`.
template <class Done>
bool run_until(asio::io_context& io, Done done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        io.restart();
        io.run_for(5ms);
    }
    return done();
}

/// One check, run to completion on `io`: asserts the handler is not called inline and is
/// called exactly once.
net::ocsp_result check(net::ocsp_checker& checker, asio::io_context& io, const std::string& id) {
    int calls = 0;
    net::ocsp_result result;
    checker.async_check(io.get_executor(), id, [&](net::ocsp_result r) {
        ++calls;
        result = std::move(r);
    });
    CHECK(calls == 0); // never inline, not even from the cache
    REQUIRE(run_until(io, [&] { return calls > 0; }));
    io.restart();
    io.poll();
    CHECK(calls == 1);
    return result;
}

std::shared_ptr<net::ocsp_checker> make_checker(net::ocsp_options o) {
    if (o.cafile.empty() && o.capath.empty()) {
        o.cafile = pki().path("ca.pem");
    }
    auto [checker, error] = net::ocsp_checker::create(std::move(o));
    INFO(error);
    REQUIRE(checker);
    REQUIRE(error.empty());
    return checker;
}

std::string http_ok(const std::string& body) {
    return "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("PKI for the OCSP tests builds", "[ocsp]") {
    INFO(pki().log);
    REQUIRE(pki().ok);
}

TEST_CASE("ocsp_checker::create rejects bad URLs and CA files, naming the value", "[ocsp]") {
    REQUIRE(pki().ok);
    const std::string ca = pki().path("ca.pem");
    for (const std::string url :
         {"https://127.0.0.1/", "ftp://127.0.0.1/", "127.0.0.1:80", "http://", "http://:80/",
          "http://127.0.0.1:0/", "http://127.0.0.1:65536/", "http://127.0.0.1:8x/",
          "http://127.0.0.1:/", "http://user@127.0.0.1/", "http://[::1/", "http://[zz]:80/",
          "http://::1:80/", "http://127.0.0.1/a b", "http://127.0.0.1/#frag"}) {
        INFO(url);
        net::ocsp_options o;
        o.responder_url = url;
        o.cafile = ca;
        auto [checker, error] = net::ocsp_checker::create(o);
        CHECK_FALSE(checker);
        CHECK(error.rfind("ocsp_responder: ", 0) == 0);
        CHECK(contains(error, url));
    }
    for (const std::string url :
         {"http://127.0.0.1", "http://127.0.0.1:8080/ocsp", "http://ocsp.example.com/a/b?x=1",
          "http://[::1]:8080", "HTTP://localhost?x"}) {
        INFO(url);
        net::ocsp_options o;
        o.responder_url = url;
        o.cafile = ca;
        auto [checker, error] = net::ocsp_checker::create(o);
        CHECK(checker);
        CHECK(error.empty());
    }

    net::ocsp_options o;
    o.responder_url = "http://127.0.0.1/";
    o.cafile = pki().path("no-such-ca.pem");
    auto [c1, e1] = net::ocsp_checker::create(o);
    CHECK_FALSE(c1);
    CHECK(e1.rfind("ocsp_responder: ", 0) == 0);
    CHECK(contains(e1, "no-such-ca.pem"));

    o.cafile = pki().path("index.txt"); // readable, but no certificate in it
    auto [c2, e2] = net::ocsp_checker::create(o);
    CHECK_FALSE(c2);
    CHECK(contains(e2, "index.txt"));

    o.cafile.clear();
    o.capath = pki().path("ca.pem"); // a file, not a directory
    auto [c3, e3] = net::ocsp_checker::create(o);
    CHECK_FALSE(c3);
    CHECK(contains(e3, "ca.pem"));

    o.capath.clear();
    auto [c4, e4] = net::ocsp_checker::create(o);
    CHECK_FALSE(c4);
    CHECK(contains(e4, "ocsp_responder"));

    o.capath = pki().dir.string(); // a directory is accepted (hashed names or not)
    auto [c5, e5] = net::ocsp_checker::create(o);
    CHECK(c5);
    CHECK(e5.empty());
}

TEST_CASE("ocsp_cert_id_der is the CertID openssl ocsp puts in its requests", "[ocsp]") {
    REQUIRE(pki().ok);
    const std::string id = cert_id("good");
    REQUIRE(!id.empty());
    CHECK(static_cast<unsigned char>(id[0]) == 0x30); // a DER SEQUENCE
    const std::string request = read_text(pki().dir / "req_good_nononce.der");
    CHECK(contains(request, id));
    CHECK(cert_id("revoked") != id);
    CHECK_FALSE(contains(request, cert_id("revoked")));

    auto cert = load_cert(pki().path("good.pem"));
    CHECK(net::ocsp_cert_id_der(cert.get(), nullptr).empty());
    CHECK(net::ocsp_cert_id_der(nullptr, cert.get()).empty());

    CHECK(net::to_string(net::ocsp_status::good) == "good");
    CHECK(net::to_string(net::ocsp_status::revoked) == "revoked");
    CHECK(net::to_string(net::ocsp_status::unknown) == "unknown");
    CHECK(net::to_string(net::ocsp_status::unreachable) == "unreachable");
}

TEST_CASE("a responder signed by the CA answers good, revoked and unknown", "[ocsp]") {
    REQUIRE(pki().ok);
    responder_process responder(pki().path("ca.pem"), pki().path("ca.key"));
    REQUIRE(responder.start());
    INFO(responder.log());
    asio::io_context io(1);
    net::ocsp_options o;
    o.responder_url = responder.url();
    auto checker = make_checker(o);

    const auto good = check(*checker, io, cert_id("good"));
    INFO(good.detail);
    CHECK(good.status == net::ocsp_status::good);
    CHECK_FALSE(good.from_cache);

    const auto revoked = check(*checker, io, cert_id("revoked"));
    INFO(revoked.detail);
    CHECK(revoked.status == net::ocsp_status::revoked);
    CHECK(contains(revoked.detail, "revoked at " + pki().revocation_time()));
    CHECK(contains(revoked.detail, "keyCompromise"));

    const auto unknown = check(*checker, io, cert_id("unlisted"));
    INFO(unknown.detail);
    CHECK(unknown.status == net::ocsp_status::unknown);

    // The responder answers "unknown" for another CA's certificate, but signed by a CA that
    // did not issue it: no valid answer.
    const auto foreign = check(*checker, io, cert_id("rogue_leaf", "rogue"));
    INFO(foreign.detail);
    CHECK(foreign.status == net::ocsp_status::unreachable);
    CHECK(contains(foreign.detail, "does not verify"));

    const auto s = checker->stats();
    CHECK(s.requests == 4);
    CHECK(s.cache_hits == 0);
    CHECK(s.good == 1);
    CHECK(s.revoked == 1);
    CHECK(s.unknown == 1);
    CHECK(s.unreachable == 1);
}

TEST_CASE("checks in flight at once on one executor all complete", "[ocsp]") {
    REQUIRE(pki().ok);
    responder_process responder(pki().path("ca.pem"), pki().path("ca.key"));
    REQUIRE(responder.start());
    asio::io_context io(1);
    net::ocsp_options o;
    o.responder_url = responder.url();
    auto checker = make_checker(o);
    const std::vector<std::pair<std::string, net::ocsp_status>> cases = {
        {"good", net::ocsp_status::good},
        {"revoked", net::ocsp_status::revoked},
        {"unlisted", net::ocsp_status::unknown},
        {"good", net::ocsp_status::good}, // not coalesced, not yet cached: its own request
    };
    std::vector<std::optional<net::ocsp_result>> results(cases.size());
    for (std::size_t i = 0; i < cases.size(); ++i) {
        checker->async_check(io.get_executor(), cert_id(cases[i].first),
                             [&results, i](net::ocsp_result r) { results[i] = std::move(r); });
    }
    REQUIRE(run_until(io, [&] {
        return std::all_of(results.begin(), results.end(), [](auto& r) { return r.has_value(); });
    }));
    for (std::size_t i = 0; i < cases.size(); ++i) {
        INFO(cases[i].first << ": " << results[i]->detail);
        CHECK(results[i]->status == cases[i].second);
    }
    CHECK(checker->stats().requests == 4);
}

TEST_CASE("checks from several threads, each on its own io_context", "[ocsp]") {
    REQUIRE(pki().ok);
    responder_process responder(pki().path("ca.pem"), pki().path("ca.key"));
    REQUIRE(responder.start());
    net::ocsp_options o;
    o.responder_url = responder.url();
    o.cache_entries = 0; // every check goes to the responder
    o.timeout = 10s;     // the responder serves one connection at a time
    auto checker = make_checker(o);
    const std::string good = cert_id("good");
    const std::string revoked = cert_id("revoked");
    constexpr int per_thread = 3;
    std::array<int, 2> right{};
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < right.size(); ++t) {
        threads.emplace_back([&, t] {
            asio::io_context io(1);
            int done = 0;
            for (int i = 0; i < per_thread; ++i) {
                const bool even = (i + static_cast<int>(t)) % 2 == 0;
                checker->async_check(
                    io.get_executor(), even ? good : revoked, [&, even](net::ocsp_result r) {
                        ++done;
                        right[t] +=
                            r.status == (even ? net::ocsp_status::good : net::ocsp_status::revoked);
                    });
            }
            run_until(
                io, [&] { return done == per_thread; }, 30s);
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(right[0] == per_thread);
    CHECK(right[1] == per_thread);
    const auto s = checker->stats();
    CHECK(s.requests == 2 * per_thread);
    CHECK(s.cache_hits == 0);
    CHECK(s.good + s.revoked == 2 * per_thread);
    CHECK(checker->cache_size_for_test() == 0);
}

TEST_CASE("a responder certificate delegated by the CA (OCSPSigning) is accepted", "[ocsp]") {
    REQUIRE(pki().ok);
    responder_process responder(pki().path("responder.pem"), pki().path("responder.key"));
    REQUIRE(responder.start());
    asio::io_context io(1);
    net::ocsp_options o;
    o.responder_url = responder.url();
    auto checker = make_checker(o);
    const auto good = check(*checker, io, cert_id("good"));
    INFO(good.detail);
    CHECK(good.status == net::ocsp_status::good);
    const auto revoked = check(*checker, io, cert_id("revoked"));
    INFO(revoked.detail);
    CHECK(revoked.status == net::ocsp_status::revoked);
}

TEST_CASE("responses not signed by the CA or its delegate are unreachable", "[ocsp]") {
    REQUIRE(pki().ok);
    asio::io_context io(1);
    SECTION("signed by another CA") {
        responder_process responder(pki().path("rogue.pem"), pki().path("rogue.key"));
        REQUIRE(responder.start());
        net::ocsp_options o;
        o.responder_url = responder.url();
        auto checker = make_checker(o);
        const auto r = check(*checker, io, cert_id("good"));
        INFO(r.detail);
        CHECK(r.status == net::ocsp_status::unreachable);
        CHECK(contains(r.detail, "response signature does not verify"));
        CHECK(checker->cache_size_for_test() == 0); // unreachable is never cached
    }
    SECTION("signed by a certificate of the CA without OCSPSigning") {
        responder_process responder(pki().path("good.pem"), pki().path("good.key"));
        REQUIRE(responder.start());
        net::ocsp_options o;
        o.responder_url = responder.url();
        auto checker = make_checker(o);
        const auto r = check(*checker, io, cert_id("revoked"));
        INFO(r.detail);
        CHECK(r.status == net::ocsp_status::unreachable);
        CHECK(contains(r.detail, "does not verify"));
    }
    SECTION("signed by the CA, but the checker trusts another CA") {
        responder_process responder(pki().path("ca.pem"), pki().path("ca.key"));
        REQUIRE(responder.start());
        net::ocsp_options o;
        o.responder_url = responder.url();
        o.cafile = pki().path("rogue.pem");
        auto checker = make_checker(o);
        const auto r = check(*checker, io, cert_id("good"));
        INFO(r.detail);
        CHECK(r.status == net::ocsp_status::unreachable);
        CHECK(contains(r.detail, "does not verify"));
    }
}

TEST_CASE("answers are cached until max age or nextUpdate; unreachable is not", "[ocsp]") {
    REQUIRE(pki().ok);
    responder_process responder(pki().path("ca.pem"), pki().path("ca.key"));
    REQUIRE(responder.start());
    asio::io_context io(1);
    core::manual_clock clock;
    net::ocsp_options o;
    o.responder_url = responder.url();
    o.clock = &clock;
    const std::string good = cert_id("good");

    SECTION("a second check is from the cache and sends no request") {
        auto checker = make_checker(o);
        CHECK_FALSE(check(*checker, io, good).from_cache);
        const auto again = check(*checker, io, good);
        CHECK(again.status == net::ocsp_status::good);
        CHECK(again.from_cache);
        const auto revoked = check(*checker, io, cert_id("revoked"));
        const auto revoked_again = check(*checker, io, cert_id("revoked"));
        CHECK(revoked_again.from_cache);
        CHECK(revoked_again.status == net::ocsp_status::revoked);
        CHECK(revoked_again.detail == revoked.detail);
        const auto s = checker->stats();
        CHECK(s.requests == 2);
        CHECK(s.cache_hits == 2);
        CHECK(s.good == 2);
        CHECK(s.revoked == 2);
    }
    SECTION("past cache_max_age the responder is asked again") {
        o.cache_max_age = 60s;
        auto checker = make_checker(o);
        check(*checker, io, good);
        clock.advance(59s);
        CHECK(check(*checker, io, good).from_cache);
        clock.advance(2s);
        const auto fresh = check(*checker, io, good);
        CHECK_FALSE(fresh.from_cache);
        CHECK(fresh.status == net::ocsp_status::good);
        CHECK(checker->stats().requests == 2);
    }
    SECTION("nextUpdate (-nmin 5) bounds a longer cache_max_age") {
        o.cache_max_age = 3600s;
        auto checker = make_checker(o);
        check(*checker, io, good);
        clock.advance(4min);
        CHECK(check(*checker, io, good).from_cache);
        clock.advance(2min);
        CHECK_FALSE(check(*checker, io, good).from_cache);
        CHECK(checker->stats().requests == 2);
    }
    SECTION("unknown is cached for unknown_max_age only") {
        o.unknown_max_age = 30s;
        auto checker = make_checker(o);
        const std::string unlisted = cert_id("unlisted");
        check(*checker, io, good);
        CHECK(check(*checker, io, unlisted).status == net::ocsp_status::unknown);
        clock.advance(29s);
        CHECK(check(*checker, io, unlisted).from_cache);
        clock.advance(2s);
        const auto fresh = check(*checker, io, unlisted);
        CHECK_FALSE(fresh.from_cache);
        CHECK(fresh.status == net::ocsp_status::unknown);
        CHECK(check(*checker, io, good).from_cache);
        CHECK(checker->stats().requests == 3);
    }
    SECTION("cache_entries = 0 disables the cache") {
        o.cache_entries = 0;
        auto checker = make_checker(o);
        CHECK_FALSE(check(*checker, io, good).from_cache);
        CHECK_FALSE(check(*checker, io, good).from_cache);
        CHECK(checker->stats().requests == 2);
        CHECK(checker->cache_size_for_test() == 0);
    }
}

TEST_CASE("the cache keeps cache_entries CertIDs, evicting the least recently used", "[ocsp]") {
    REQUIRE(pki().ok);
    responder_process responder(pki().path("ca.pem"), pki().path("ca.key"));
    REQUIRE(responder.start());
    asio::io_context io(1);
    net::ocsp_options o;
    o.responder_url = responder.url();
    o.cache_entries = 2;
    auto checker = make_checker(o);
    const std::string a = cert_id("good");
    const std::string b = cert_id("revoked");
    const std::string c = cert_id("unlisted");

    CHECK_FALSE(check(*checker, io, a).from_cache);
    CHECK_FALSE(check(*checker, io, b).from_cache);
    CHECK(check(*checker, io, a).from_cache);       // a is now the most recently used
    CHECK_FALSE(check(*checker, io, c).from_cache); // evicts b, not a
    CHECK(checker->cache_size_for_test() == 2);
    CHECK(check(*checker, io, a).from_cache);
    CHECK(check(*checker, io, c).from_cache);
    const auto b_again = check(*checker, io, b); // evicts a
    CHECK_FALSE(b_again.from_cache);
    CHECK(b_again.status == net::ocsp_status::revoked);
    CHECK(checker->cache_size_for_test() == 2);
    CHECK_FALSE(check(*checker, io, a).from_cache);
    const auto s = checker->stats();
    CHECK(s.requests == 5);
    CHECK(s.cache_hits == 3);
}

TEST_CASE("nothing listening: unreachable at once, not cached", "[ocsp]") {
    REQUIRE(pki().ok);
    asio::io_context io(1);
    std::uint16_t port = 0;
    {
        asio::ip::tcp::acceptor probe(io,
                                      asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
        port = probe.local_endpoint().port();
    }
    net::ocsp_options o;
    o.responder_url = "http://127.0.0.1:" + std::to_string(port) + "/";
    o.timeout = 5s;
    auto checker = make_checker(o);
    const auto start = std::chrono::steady_clock::now();
    const auto r = check(*checker, io, cert_id("good"));
    INFO(r.detail);
    CHECK(r.status == net::ocsp_status::unreachable);
    CHECK(contains(r.detail, "connection refused"));
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    CHECK_FALSE(check(*checker, io, cert_id("good")).from_cache);
    const auto s = checker->stats();
    CHECK(s.requests == 2);
    CHECK(s.unreachable == 2);
    CHECK(checker->cache_size_for_test() == 0);
}

TEST_CASE("a server that accepts but never answers: unreachable after the timeout", "[ocsp]") {
    REQUIRE(pki().ok);
    asio::io_context io(1);
    fake_server server(io, std::nullopt);
    net::ocsp_options o;
    o.responder_url = server.url();
    o.timeout = 300ms;
    auto checker = make_checker(o);
    const auto start = std::chrono::steady_clock::now();
    const auto r = check(*checker, io, cert_id("good"));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    INFO(r.detail);
    CHECK(r.status == net::ocsp_status::unreachable);
    CHECK(r.detail == "timed out after 300 ms");
    CHECK(elapsed >= 290ms);
    CHECK(elapsed < 3s);
    CHECK(server.connections() == 1);

    // The checker may go away with a check in flight: the check keeps what it needs.
    std::optional<net::ocsp_result> late;
    checker->async_check(io.get_executor(), cert_id("good"),
                         [&](net::ocsp_result result) { late = std::move(result); });
    checker.reset();
    REQUIRE(run_until(io, [&] { return late.has_value(); }));
    CHECK(late->detail == "timed out after 300 ms");
    CHECK(server.connections() == 2);
}

TEST_CASE("the request is an HTTP POST of a DER OCSP request with a nonce", "[ocsp]") {
    REQUIRE(pki().ok);
    asio::io_context io(1);
    fake_server server(io, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    net::ocsp_options o;
    o.responder_url = server.url();
    auto checker = make_checker(o);
    const auto id = cert_id("good");
    const auto r = check(*checker, io, id);
    CHECK(r.status == net::ocsp_status::unreachable);
    CHECK(r.detail == "HTTP 503 Service Unavailable");
    const std::string& req = server.received();
    INFO(req);
    CHECK(req.rfind("POST /ocsp HTTP/1.1\r\n", 0) == 0);
    CHECK(contains(req, "\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"));
    CHECK(contains(req, "\r\nContent-Type: application/ocsp-request\r\n"));
    CHECK(contains(req, "\r\nConnection: close\r\n"));
    const auto body_at = req.find("\r\n\r\n");
    REQUIRE(body_at != std::string::npos);
    const std::string body = req.substr(body_at + 4);
    CHECK(contains(req, "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"));
    CHECK(contains(body, id));
    // id-pkix-ocsp-nonce, 1.3.6.1.5.5.7.48.1.2
    CHECK(contains(body, "\x06\x09\x2b\x06\x01\x05\x05\x07\x30\x01\x02"s));
}

TEST_CASE("HTTP errors, garbage and truncated answers are unreachable", "[ocsp]") {
    REQUIRE(pki().ok);
    struct bad_answer {
        const char* name;
        std::string reply;
        const char* detail;
    };
    const std::vector<bad_answer> answers = {
        {"HTTP 500", "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", "HTTP 500"},
        {"HTTP 500 via HTTP/1.0 until EOF", "HTTP/1.0 500 Oops\r\n\r\nsorry", "HTTP 500 Oops"},
        {"not HTTP", "garbage garbage\r\n\r\n", "malformed HTTP response"},
        {"binary", "\x00\x01\x02\xff\xfe\r\n\r\n"s, "malformed HTTP response"},
        {"closed without a byte", "", "connection closed without an HTTP response"},
        {"closed after the head", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
         "connection closed before the HTTP response was complete"},
        {"truncated head", "HTTP/1.1 200 OK\r\nContent-Le", "closed before"},
        {"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", "closed before"},
        {"not DER", http_ok("hello"), "not DER"},
        {"bytes after the DER", http_ok(read_text(pki().dir / "resp_good_nononce.der") + "x"),
         "bytes after the DER"},
        {"tryLater", http_ok("\x30\x03\x0a\x01\x03"), "trylater"},
        {"malformedRequest", http_ok("\x30\x03\x0a\x01\x01"), "malformedrequest"},
        {"Content-Length over 64 KiB", "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n",
         "body limit"},
        {"body over 64 KiB until EOF", "HTTP/1.0 200 OK\r\n\r\n" + std::string(100000, 'x'),
         "body limit"},
        {"head over 8 KiB", "HTTP/1.1 200 OK\r\nX: " + std::string(20000, 'y') + "\r\n\r\n",
         "malformed HTTP response"},
    };
    for (const auto& answer : answers) {
        INFO(answer.name);
        asio::io_context io(1);
        fake_server server(io, answer.reply);
        net::ocsp_options o;
        o.responder_url = server.url();
        auto checker = make_checker(o);
        const auto r = check(*checker, io, cert_id("good"));
        INFO(r.detail);
        CHECK(r.status == net::ocsp_status::unreachable);
        CHECK(contains(r.detail, answer.detail));
        CHECK(checker->cache_size_for_test() == 0);
    }
}

TEST_CASE("real responses replayed: framing, omitted and wrong nonces, other certificates",
          "[ocsp]") {
    REQUIRE(pki().ok);
    const std::string no_nonce = read_text(pki().dir / "resp_good_nononce.der");
    const std::string other_nonce = read_text(pki().dir / "resp_good_nonce.der");
    REQUIRE(!no_nonce.empty());
    REQUIRE(!other_nonce.empty());
    asio::io_context io(1);
    net::ocsp_options o;
    SECTION("a response without nonce, HTTP/1.0 read until EOF, is accepted") {
        fake_server server(io, "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n"
                               "\r\n" +
                                   no_nonce);
        o.responder_url = server.url();
        auto checker = make_checker(o);
        const auto r = check(*checker, io, cert_id("good"));
        INFO(r.detail);
        CHECK(r.status == net::ocsp_status::good);
    }
    SECTION("chunked transfer coding is accepted") {
        const std::string half = no_nonce.substr(0, no_nonce.size() / 2);
        const std::string rest = no_nonce.substr(half.size());
        const auto hex = [](std::size_t n) {
            std::ostringstream s;
            s << std::hex << n;
            return s.str();
        };
        fake_server server(io, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                   hex(half.size()) + "\r\n" + half + "\r\n" + hex(rest.size()) +
                                   "\r\n" + rest + "\r\n0\r\n\r\n");
        o.responder_url = server.url();
        auto checker = make_checker(o);
        const auto r = check(*checker, io, cert_id("good"));
        INFO(r.detail);
        CHECK(r.status == net::ocsp_status::good);
    }
    SECTION("a response with another request's nonce is unreachable") {
        fake_server server(io, http_ok(other_nonce));
        o.responder_url = server.url();
        auto checker = make_checker(o);
        const auto r = check(*checker, io, cert_id("good"));
        CHECK(r.status == net::ocsp_status::unreachable);
        CHECK(r.detail == "nonce mismatch");
    }
    SECTION("a response about another certificate is unreachable") {
        fake_server server(io, http_ok(no_nonce));
        o.responder_url = server.url();
        auto checker = make_checker(o);
        const auto r = check(*checker, io, cert_id("revoked"));
        INFO(r.detail);
        CHECK(r.status == net::ocsp_status::unreachable);
        CHECK(contains(r.detail, "does not cover"));
    }
    SECTION("a host name is resolved") {
        fake_server server(io, http_ok(no_nonce));
        o.responder_url = "http://localhost:" + std::to_string(server.port()) + "/";
        auto checker = make_checker(o);
        const auto r = check(*checker, io, cert_id("good"));
        INFO(r.detail);
        CHECK(r.status == net::ocsp_status::good);
        CHECK(server.connections() == 1);
    }
}

TEST_CASE("an empty or malformed CertID is unreachable without a request", "[ocsp]") {
    REQUIRE(pki().ok);
    asio::io_context io(1);
    net::ocsp_options o;
    o.responder_url = "http://127.0.0.1:9/";
    auto checker = make_checker(o);
    const auto empty = check(*checker, io, "");
    CHECK(empty.status == net::ocsp_status::unreachable);
    CHECK(contains(empty.detail, "issuer"));
    const auto garbage = check(*checker, io, "\x30\x03\x02\x01");
    CHECK(garbage.status == net::ocsp_status::unreachable);
    CHECK(garbage.detail == "malformed OCSP CertID");
    const auto trailing = check(*checker, io, cert_id("good") + "x");
    CHECK(trailing.detail == "malformed OCSP CertID");
    const auto s = checker->stats();
    CHECK(s.requests == 0);
    CHECK(s.unreachable == 3);
}
