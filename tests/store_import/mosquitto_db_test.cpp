// The Mosquitto database import (store/include/tern/store/mosquitto_db.hpp): Debian's real
// Mosquitto 2.0.11 makes a mosquitto.db with persistent sessions (3.1.1 and 5), wildcard
// subscriptions with v5 options, queued, in-flight and inbound QoS 1/2 messages and retained
// messages; the parser must read every one of them, and the import must put them into a real
// RocksDB store that recover() gives back. The golden file (made the same way) keeps the
// parser honest where Mosquitto is not installed, and seeds the truncation and corruption
// cases. Set TERN_UPDATE_MOSQUITTO_GOLDEN=1 to rewrite the golden file from the live run.
#include <catch2/catch.hpp>

#include "raw_client.hpp"
#include "support.hpp"

#include <tern/store/mosquitto_db.hpp>
#include <tern/store/rocksdb_store.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#ifndef TERN_STORE_IMPORT_GOLDEN
#error "TERN_STORE_IMPORT_GOLDEN must name tests/store_import/golden/mosquitto-2.0.11.db"
#endif

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using tern::protocol::qos;
using tern::store::mosquitto_db_contents;

constexpr const char* mosquitto_path = "/usr/sbin/mosquitto";
constexpr std::uint32_t never = 0xFFFFFFFFU;

void write_file(const std::string& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
}

/// A scratch directory anyone may write: Mosquitto started as root drops to user mosquitto
/// before it writes its database.
struct scratch_dir {
    scratch_dir() {
        char pattern[] = "/tmp/tern-mosquitto-db-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path = pattern;
        fs::permissions(path, fs::perms::all);
    }
    ~scratch_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    std::string path;
};

/// Mosquitto with `persistence true` in `dir`, on a free loopback port; stop() sends SIGTERM,
/// on which Mosquitto writes dir/mosquitto.db.
class mosquitto_broker {
public:
    explicit mosquitto_broker(const std::string& dir) : dir_(dir) {
        for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) {
            port_ = tern::test::pick_free_port();
            write_file(dir + "/mosquitto.conf",
                       "listener " + std::to_string(port_) +
                           " 127.0.0.1\nallow_anonymous true\npersistence true\n"
                           "persistence_location " +
                           dir + "/\nlog_dest stderr\nlog_type all\n");
            pid_ = ::fork();
            if (pid_ == 0) {
                const int fd =
                    ::open((dir + "/mosquitto.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
                if (fd >= 0) {
                    ::dup2(fd, STDERR_FILENO);
                    ::dup2(fd, STDOUT_FILENO);
                }
                const std::string conf = dir + "/mosquitto.conf";
                ::execl(mosquitto_path, mosquitto_path, "-c", conf.c_str(),
                        static_cast<char*>(nullptr));
                ::_exit(127);
            }
            const auto deadline = tern::test::clock::now() + 10s;
            while (tern::test::clock::now() < deadline && !tern::test::accepts_connections(port_)) {
                int status = 0;
                if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                    pid_ = -1; // exited (the port was taken?): try another
                    break;
                }
                std::this_thread::sleep_for(5ms);
            }
            if (pid_ > 0 && !tern::test::accepts_connections(port_)) {
                stop();
                break;
            }
        }
        if (pid_ < 0) {
            throw std::runtime_error("mosquitto did not start; log:\n" + log());
        }
    }
    ~mosquitto_broker() { stop(); }
    mosquitto_broker(const mosquitto_broker&) = delete;
    mosquitto_broker& operator=(const mosquitto_broker&) = delete;

    int port() const noexcept { return port_; }
    std::string log() const { return tern::test::read_file(dir_ + "/mosquitto.log"); }

    /// SIGTERM and a bounded wait; the exit code, or -1 when it had to be killed.
    int stop() {
        if (pid_ < 0) {
            return exit_code_;
        }
        ::kill(pid_, SIGTERM);
        const auto deadline = tern::test::clock::now() + 10s;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) != pid_) {
            if (tern::test::clock::now() >= deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                pid_ = -1;
                return exit_code_ = -1;
            }
            std::this_thread::sleep_for(5ms);
        }
        pid_ = -1;
        return exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

private:
    std::string dir_;
    int port_ = 0;
    pid_t pid_ = -1;
    int exit_code_ = -1;
};

/// Runs the scenario against a live Mosquitto in `dir` and returns its mosquitto.db:
/// - dev-311 (3.1.1, Clean Session 0): sensors/+/temp QoS 1, alerts/# QoS 2, offline;
/// - dev-v5 (MQTT 5, Session Expiry 3600): sensors/# QoS 2 No Local id 7, cmd/# QoS 1 Retain
///   As Published id 9, offline;
/// - dev-inflight (3.1.1, raw bytes): inflight/# QoS 2; receives i1 (QoS 1, no PUBACK), i2
///   (QoS 2, PUBREC sent, PUBREL received, no PUBCOMP) and i3 (QoS 2, no PUBREC); publishes
///   in1 on sensors/x/temp at QoS 2 with packet id 77 and never sends PUBREL; then drops;
/// - a publisher sends t1..c1 below, two of them retained.
std::string make_live_db(const std::string& dir) {
    using namespace tern::test;
    mosquitto_broker broker(dir);
    const int port = broker.port();
    {
        mqtt_client a("dev-311", MQTT_PROTOCOL_V311, false);
        REQUIRE(a.connect(port) == 0);
        REQUIRE(a.subscribe("sensors/+/temp", 1) == 1);
        REQUIRE(a.subscribe("alerts/#", 2) == 2);
        a.disconnect();
    }
    {
        mqtt_client b("dev-v5", MQTT_PROTOCOL_V5, false);
        REQUIRE(b.connect(port, 30,
                          properties().add_int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL, 3600)) == 0);
        REQUIRE(b.subscribe("sensors/#", 2, MQTT_SUB_OPT_NO_LOCAL,
                            properties().add_varint(MQTT_PROP_SUBSCRIPTION_IDENTIFIER, 7)) == 2);
        REQUIRE(b.subscribe("cmd/#", 1, MQTT_SUB_OPT_RETAIN_AS_PUBLISHED,
                            properties().add_varint(MQTT_PROP_SUBSCRIPTION_IDENTIFIER, 9)) == 1);
        b.disconnect();
    }
    raw_client c(port, 4);
    REQUIRE(c.connect("dev-inflight", false));
    REQUIRE(c.subscribe("inflight/#", 2) == std::vector<std::uint8_t>{2});

    mqtt_client p("publisher", MQTT_PROTOCOL_V5, true);
    REQUIRE(p.connect(port) == 0);
    REQUIRE(p.publish("sensors/a/temp", "t1", 1));
    REQUIRE(p.publish(
        "sensors/b/temp", "t2", 2, false,
        properties().add_user("k", "v").add_string(MQTT_PROP_CONTENT_TYPE, "text/plain")));
    REQUIRE(p.publish("sensors/c/temp", "t0", 0)); // QoS 0: not queued for offline sessions
    REQUIRE(p.publish("alerts/fire", "a1", 1));
    REQUIRE(p.publish("alerts/flood", "a2", 2, false,
                      properties().add_int32(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, 3600)));
    REQUIRE(p.publish("cmd/dev-v5", "c1", 1, true));
    REQUIRE(p.publish("status/dev1", "online", 1, true));
    REQUIRE(p.publish("inflight/q1", "i1", 1));
    REQUIRE(p.publish("inflight/q2", "i2", 2));
    REQUIRE(p.publish("inflight/q2b", "i3", 2));

    std::map<std::string, std::uint16_t> ids;
    for (int i = 0; i < 3; ++i) {
        const auto m = c.next_publish();
        REQUIRE(m);
        ids[m->payload] = m->packet_id;
    }
    REQUIRE(ids.size() == 3);
    REQUIRE(c.pubrec(ids["i2"]));
    REQUIRE(c.expect(pkt_pubrel));
    REQUIRE(c.publish("sensors/x/temp", "in1", 2, false, 77));
    REQUIRE(c.expect(pkt_pubrec));
    c.close();
    p.disconnect();

    const int code = broker.stop();
    INFO(broker.log());
    REQUIRE(code == 0);
    const auto db = tern::test::read_file(dir + "/mosquitto.db");
    REQUIRE(!db.empty());
    return db;
}

const tern::broker::recovered_session* session_of(const mosquitto_db_contents& c,
                                                  std::string_view id) {
    for (const auto& s : c.state.sessions) {
        if (s.client_id == id) {
            return &s;
        }
    }
    return nullptr;
}

std::vector<std::string> payloads(const tern::broker::recovered_session& s) {
    std::vector<std::string> out;
    for (const auto& [m, d] : s.messages) {
        out.emplace_back(m->publish.payload);
    }
    return out;
}

const tern::broker::stored_delivery& delivery(const tern::broker::recovered_session& s,
                                              std::string_view payload) {
    for (const auto& [m, d] : s.messages) {
        if (m->publish.payload == payload) {
            return d;
        }
    }
    FAIL("no message " << payload);
    static tern::broker::stored_delivery none;
    return none;
}

const tern::broker::message& message(const tern::broker::recovered_session& s,
                                     std::string_view payload) {
    for (const auto& [m, d] : s.messages) {
        if (m->publish.payload == payload) {
            return *m;
        }
    }
    FAIL("no message " << payload);
    static tern::broker::message none;
    return none;
}

/// Everything the scenario of make_live_db() left in the file. `a2_alive`: a2's hour of
/// Message Expiry had not passed at the parse.
void check_contents(const mosquitto_db_contents& c, bool a2_alive) {
    using tern::protocol::protocol_version;
    CHECK(c.version == 6);
    CHECK(c.shutdown);
    CHECK(c.last_db_id >= 10);
    REQUIRE(c.state.sessions.size() == 3); // the publisher's clean session is not kept
    CHECK(c.state.next_key == 4);
    std::set<std::uint64_t> keys;
    for (const auto& s : c.state.sessions) {
        keys.insert(s.key);
    }
    CHECK(keys == std::set<std::uint64_t>{1, 2, 3});
    CHECK(c.skipped.orphans == 0);
    CHECK(c.skipped.missing_messages == 0);
    CHECK(c.skipped.unknown_chunks == 0);
    CHECK(c.skipped.expired_messages == (a2_alive ? 0U : 1U));

    // dev-311: 3.1.1, never expires, two wildcard filters; in1 comes last, delivered at the
    // parse (Mosquitto held it until PUBREL).
    const auto* a = session_of(c, "dev-311");
    REQUIRE(a != nullptr);
    CHECK(a->expiry_interval == never);
    CHECK(a->version == protocol_version::v3_1_1);
    CHECK(a->offline_for == 0s);
    CHECK(a->will == nullptr);
    std::map<std::string, tern::broker::subscription> subs(a->subscriptions.begin(),
                                                           a->subscriptions.end());
    REQUIRE(subs.size() == 2);
    CHECK(subs["sensors/+/temp"].options.qos == qos::at_least_once);
    CHECK(subs["alerts/#"].options.qos == qos::exactly_once);
    CHECK_FALSE(subs["alerts/#"].options.no_local);
    CHECK(subs["alerts/#"].identifier == 0);
    const auto a_expected = a2_alive ? std::vector<std::string>{"t1", "t2", "a1", "a2", "in1"}
                                     : std::vector<std::string>{"t1", "t2", "a1", "in1"};
    CHECK(payloads(*a) == a_expected);
    CHECK(delivery(*a, "t1").qos == qos::at_least_once);
    CHECK(delivery(*a, "t2").qos == qos::at_least_once); // granted QoS 1
    CHECK(delivery(*a, "a1").qos == qos::at_least_once);
    CHECK(delivery(*a, "in1").qos == qos::at_least_once);
    for (const auto& [m, d] : a->messages) {
        CHECK(d.packet_id == 0); // queued: not sent yet
        CHECK_FALSE(d.released);
        CHECK_FALSE(d.retain);
        CHECK(d.subscription_ids.empty());
        CHECK(m->stored == nullptr); // named by the import, not the parse
    }
    if (a2_alive) {
        const auto& a2 = message(*a, "a2");
        CHECK(delivery(*a, "a2").qos == qos::exactly_once);
        CHECK(a2.publish.topic == "alerts/flood");
        CHECK(a2.publish.qos == qos::exactly_once);
        REQUIRE(a2.publish.props.message_expiry_interval);
        CHECK(*a2.publish.props.message_expiry_interval <= 3600);
        CHECK(*a2.publish.props.message_expiry_interval >= 3500);
    }
    const auto& t2 = message(*a, "t2");
    CHECK(t2.publish.topic == "sensors/b/temp");
    CHECK(t2.publish.qos == qos::exactly_once); // as published
    CHECK_FALSE(t2.publish.props.message_expiry_interval);
    REQUIRE(t2.publish.props.user_properties.size() == 1);
    CHECK(t2.publish.props.user_properties[0].key == "k");
    CHECK(t2.publish.props.user_properties[0].value == "v");
    CHECK(t2.publish.props.content_type == std::optional<std::string_view>("text/plain"));
    CHECK(a->inbound_qos2.empty());

    // dev-v5: MQTT 5 options and identifiers on subscriptions and deliveries.
    const auto* b = session_of(c, "dev-v5");
    REQUIRE(b != nullptr);
    CHECK(b->expiry_interval == 3600);
    CHECK(b->version == protocol_version::v5);
    subs = {b->subscriptions.begin(), b->subscriptions.end()};
    REQUIRE(subs.size() == 2);
    CHECK(subs["sensors/#"].options.qos == qos::exactly_once);
    CHECK(subs["sensors/#"].options.no_local);
    CHECK_FALSE(subs["sensors/#"].options.retain_as_published);
    CHECK(subs["sensors/#"].identifier == 7);
    CHECK(subs["cmd/#"].options.qos == qos::at_least_once);
    CHECK_FALSE(subs["cmd/#"].options.no_local);
    CHECK(subs["cmd/#"].options.retain_as_published);
    CHECK(subs["cmd/#"].identifier == 9);
    CHECK(payloads(*b) == std::vector<std::string>{"t1", "t2", "c1", "in1"});
    CHECK(delivery(*b, "t1").qos == qos::at_least_once);
    CHECK(delivery(*b, "t1").subscription_ids == std::vector<std::uint32_t>{7});
    CHECK(delivery(*b, "t2").qos == qos::exactly_once);
    CHECK(delivery(*b, "t2").subscription_ids == std::vector<std::uint32_t>{7});
    CHECK(delivery(*b, "c1").qos == qos::at_least_once);
    CHECK(delivery(*b, "c1").retain); // Retain As Published
    CHECK(delivery(*b, "c1").subscription_ids == std::vector<std::uint32_t>{9});
    CHECK(delivery(*b, "in1").qos == qos::exactly_once);
    CHECK(delivery(*b, "in1").subscription_ids == std::vector<std::uint32_t>{7});
    CHECK(&message(*a, "t1") == &message(*b, "t1")); // one message, two sessions

    // dev-inflight: the three in-flight states, and the inbound QoS 2 awaiting PUBREL.
    const auto* f = session_of(c, "dev-inflight");
    REQUIRE(f != nullptr);
    CHECK(f->expiry_interval == never);
    CHECK(f->version == protocol_version::v3_1_1);
    CHECK(payloads(*f) == std::vector<std::string>{"i1", "i2", "i3"});
    const auto& i1 = delivery(*f, "i1");
    const auto& i2 = delivery(*f, "i2");
    const auto& i3 = delivery(*f, "i3");
    CHECK(i1.qos == qos::at_least_once);
    CHECK(i1.packet_id != 0);
    CHECK_FALSE(i1.released);
    CHECK(i2.qos == qos::exactly_once);
    CHECK(i2.packet_id != 0);
    CHECK(i2.released); // PUBREC came: a resume sends PUBREL
    CHECK(i3.qos == qos::exactly_once);
    CHECK(i3.packet_id != 0);
    CHECK_FALSE(i3.released);
    CHECK(std::set<std::uint16_t>{i1.packet_id, i2.packet_id, i3.packet_id}.size() == 3);
    CHECK(f->inbound_qos2 == std::vector<std::uint16_t>{77});

    // Retained: one per topic, RETAIN set, QoS as published.
    std::map<std::string, std::string> retained;
    for (const auto& m : c.state.retained) {
        CHECK(m->publish.retain);
        CHECK(m->publish.qos == qos::at_least_once);
        retained.emplace(m->publish.topic, m->publish.payload);
    }
    CHECK(retained ==
          std::map<std::string, std::string>{{"cmd/dev-v5", "c1"}, {"status/dev1", "online"}});

    // The naming order lists every queued message once.
    std::set<const tern::broker::message*> listed;
    for (const auto& m : c.messages) {
        CHECK(listed.insert(m.get()).second);
    }
    for (const auto& s : c.state.sessions) {
        for (const auto& [m, d] : s.messages) {
            CHECK(listed.contains(m.get()));
        }
    }
    REQUIRE(c.details.size() == 3);
}

/// When the golden file was made: its dev-v5 session was to expire an hour after it went
/// offline, just before a2 (an hour of Message Expiry) was published.
std::chrono::system_clock::time_point made_at(const std::string& db) {
    std::string error;
    const auto c = tern::store::parse_mosquitto_db(db, std::chrono::system_clock::now(),
                                                   std::chrono::steady_clock::now(), error);
    REQUIRE(c);
    for (std::size_t i = 0; i < c->state.sessions.size(); ++i) {
        if (c->state.sessions[i].client_id == "dev-v5") {
            return std::chrono::system_clock::time_point(
                std::chrono::seconds(c->details[i].session_expiry_time - 3600 + 1));
        }
    }
    FAIL("no dev-v5 session in the golden file");
    return {};
}

std::optional<mosquitto_db_contents>
parse_at(std::string_view db, std::chrono::system_clock::time_point wall_now, std::string& error) {
    return tern::store::parse_mosquitto_db(db, wall_now, std::chrono::steady_clock::now(), error);
}

std::string golden() {
    auto db = tern::test::read_file(TERN_STORE_IMPORT_GOLDEN);
    REQUIRE(!db.empty());
    return db;
}

std::uint32_t get_be32(const std::string& b, std::size_t at) {
    return static_cast<std::uint32_t>(static_cast<std::uint8_t>(b[at])) << 24U |
           static_cast<std::uint32_t>(static_cast<std::uint8_t>(b[at + 1])) << 16U |
           static_cast<std::uint32_t>(static_cast<std::uint8_t>(b[at + 2])) << 8U |
           static_cast<std::uint32_t>(static_cast<std::uint8_t>(b[at + 3]));
}

void put_be32(std::string& b, std::size_t at, std::uint32_t v) {
    for (std::size_t i = 0; i < 4; ++i) {
        b[at + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFFU);
    }
}

/// Offsets of every chunk, and the end of the file.
std::vector<std::size_t> chunk_starts(const std::string& db) {
    std::vector<std::size_t> out;
    for (std::size_t pos = 23; pos + 8 <= db.size(); pos += 8 + get_be32(db, pos + 4)) {
        out.push_back(pos);
    }
    out.push_back(db.size());
    return out;
}

/// The same database in format 5 (Mosquitto 1.6): client chunks without listener port,
/// username length, username and padding.
std::string as_version_5(const std::string& db) {
    std::string out = db.substr(0, 23);
    put_be32(out, 19, 5);
    const auto starts = chunk_starts(db);
    for (std::size_t i = 0; i + 1 < starts.size(); ++i) {
        const auto pos = starts[i];
        const auto type = get_be32(db, pos);
        const auto body = db.substr(pos + 8, get_be32(db, pos + 4));
        if (type != 6) {
            out += db.substr(pos, 8) + body;
            continue;
        }
        const std::size_t id_len = std::size_t{static_cast<std::uint8_t>(body[14])} << 8U |
                                   std::size_t{static_cast<std::uint8_t>(body[15])};
        std::string v5 = body.substr(0, 16) + body.substr(24, id_len);
        std::string header(8, '\0');
        put_be32(header, 0, 6);
        put_be32(header, 4, static_cast<std::uint32_t>(v5.size()));
        out += header + v5;
    }
    return out;
}

/// Imports `db` into a fresh RocksDB store, reopens it and checks recover() and page_in().
void check_import(const std::string& db, bool a2_alive) {
    scratch_dir dir;
    const auto file = dir.path + "/mosquitto.db";
    write_file(file, db);
    tern::store::store_options o;
    o.path = dir.path + "/tern.db";
    std::string error;
    {
        auto store = tern::store::rocksdb_store::open(o, error);
        REQUIRE(store);
        const auto counts = tern::store::import_mosquitto_db(file, *store, error);
        INFO(error);
        REQUIRE(counts);
        CHECK(counts->version == 6);
        CHECK(counts->sessions == 3);
        CHECK(counts->subscriptions == 5);
        CHECK(counts->messages == (a2_alive ? 12U : 11U));
        CHECK(counts->retained == 2);
        CHECK(counts->inbound_qos2 == 1);
        CHECK(counts->skipped.expired_messages == (a2_alive ? 0U : 1U));
    }
    auto store = tern::store::rocksdb_store::open(o, error);
    REQUIRE(store);
    const auto now = std::chrono::steady_clock::now();
    auto rec = store->recover(now);
    REQUIRE(rec.sessions.size() == 3);
    CHECK(rec.next_key == 4);
    std::map<std::string, tern::broker::recovered_session*> by_id;
    for (auto& s : rec.sessions) {
        by_id[s.client_id] = &s;
        CHECK(s.offline_for < 60s); // counted from the import
    }
    REQUIRE(by_id.size() == 3);
    auto& a = *by_id["dev-311"];
    auto& b = *by_id["dev-v5"];
    auto& f = *by_id["dev-inflight"];
    CHECK(a.expiry_interval == never);
    CHECK(a.version == tern::protocol::protocol_version::v3_1_1);
    CHECK(b.expiry_interval == 3600);
    CHECK(b.version == tern::protocol::protocol_version::v5);
    CHECK(a.subscriptions.size() == 2);
    std::map<std::string, tern::broker::subscription> bsubs(b.subscriptions.begin(),
                                                            b.subscriptions.end());
    CHECK(bsubs["sensors/#"].identifier == 7);
    CHECK(bsubs["sensors/#"].options.no_local);
    CHECK(bsubs["cmd/#"].options.retain_as_published);
    CHECK(f.subscriptions.size() == 1);
    CHECK(f.inbound_qos2 == std::vector<std::uint16_t>{77});

    // In flight: rebuilt in memory; queued: on disk, paged in in order.
    REQUIRE(f.messages.size() == 3);
    CHECK(f.messages[0].first->publish.payload == "i1");
    CHECK(f.messages[1].first->publish.payload == "i2");
    CHECK(f.messages[1].second.released);
    CHECK(f.messages[2].first->publish.payload == "i3");
    for (const auto& [m, d] : f.messages) {
        CHECK(d.packet_id != 0);
    }
    const auto page = [&](tern::broker::recovered_session& s) {
        std::vector<std::string> out;
        CHECK(s.messages.empty());
        const auto p = store->page_in(s.key, s.on_disk_from, UINT64_MAX, 100, now);
        CHECK(p.end);
        for (const auto& item : p.items) {
            out.emplace_back(item.msg->publish.payload);
            if (item.msg->publish.payload == "c1") {
                CHECK(item.delivery.retain);
                CHECK(item.delivery.subscription_ids == std::vector<std::uint32_t>{9});
            }
            if (item.msg->publish.payload == "t2") {
                REQUIRE(item.msg->publish.props.user_properties.size() == 1);
                CHECK(item.msg->publish.props.content_type ==
                      std::optional<std::string_view>("text/plain"));
            }
        }
        CHECK(s.on_disk == out.size());
        return out;
    };
    CHECK(page(a) == (a2_alive ? std::vector<std::string>{"t1", "t2", "a1", "a2", "in1"}
                               : std::vector<std::string>{"t1", "t2", "a1", "in1"}));
    CHECK(page(b) == std::vector<std::string>{"t1", "t2", "c1", "in1"});

    std::map<std::string, std::string> retained;
    for (const auto& m : rec.retained) {
        retained.emplace(m->publish.topic, m->publish.payload);
    }
    CHECK(retained ==
          std::map<std::string, std::string>{{"cmd/dev-v5", "c1"}, {"status/dev1", "online"}});
}

/// The real `tern` binary with `args`, its output in dir/tern.log; stop() sends SIGTERM.
class tern_process {
public:
    tern_process(const std::string& dir, std::vector<std::string> args) : dir_(dir) {
        args.insert(args.begin(), TERN_BINARY);
        pid_ = ::fork();
        if (pid_ == 0) {
            const int fd = ::open((dir + "/tern.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                ::dup2(fd, STDERR_FILENO);
                ::dup2(fd, STDOUT_FILENO);
            }
            std::vector<char*> argv;
            for (auto& a : args) {
                argv.push_back(a.data());
            }
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
    }
    ~tern_process() { (void)stop(); }
    tern_process(const tern_process&) = delete;
    tern_process& operator=(const tern_process&) = delete;

    /// The port from dir/port, once the broker listens (0 when it exited or 10 s passed).
    int port() {
        const auto deadline = tern::test::clock::now() + 10s;
        while (tern::test::clock::now() < deadline && exited() == std::nullopt) {
            const auto text = tern::test::read_file(dir_ + "/port");
            if (!text.empty() && text.back() == '\n') {
                return std::stoi(text);
            }
            std::this_thread::sleep_for(5ms);
        }
        return 0;
    }
    /// The exit code once it has exited (waiting up to `timeout`).
    std::optional<int> exited(tern::test::clock::duration timeout = 0s) {
        const auto deadline = tern::test::clock::now() + timeout;
        while (pid_ > 0) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                break;
            }
            if (tern::test::clock::now() >= deadline) {
                return std::nullopt;
            }
            std::this_thread::sleep_for(5ms);
        }
        return code_;
    }
    std::optional<int> stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            if (!exited(10s)) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, nullptr, 0);
                pid_ = -1;
                code_ = -1;
            }
        }
        return code_;
    }
    std::string log() const { return tern::test::read_file(dir_ + "/tern.log"); }

private:
    std::string dir_;
    pid_t pid_ = -1;
    std::optional<int> code_;
};

/// A directory as Mosquitto leaves it (`db` as mosquitto.db) and a tern.conf with
/// persistence there; returns the configuration's path.
std::string legacy_dir(const scratch_dir& dir, const std::string& db) {
    write_file(dir.path + "/mosquitto.db", db);
    const auto conf = dir.path + "/tern.conf";
    write_file(conf, "listener 0 127.0.0.1\nallow_anonymous true\npersistence true\n"
                     "persistence_location " +
                         dir.path + "/\n");
    return conf;
}

} // namespace

TEST_CASE("a mosquitto.db written by Debian's Mosquitto 2.0 is read whole", "[mosquitto_db]") {
    if (::access(mosquitto_path, X_OK) != 0) {
        WARN(mosquitto_path << " is not installed: the live Mosquitto cases are skipped (the "
                               "golden file still runs)");
        return;
    }
    scratch_dir dir;
    const auto db = make_live_db(dir.path);
    if (std::getenv("TERN_UPDATE_MOSQUITTO_GOLDEN") != nullptr) {
        write_file(TERN_STORE_IMPORT_GOLDEN, db);
        WARN("rewrote " << TERN_STORE_IMPORT_GOLDEN);
    }
    std::string error;
    const auto c = parse_at(db, std::chrono::system_clock::now(), error);
    INFO(error);
    REQUIRE(c);
    check_contents(*c, true);

    SECTION("imported into a RocksDB store, every session and message comes back") {
        check_import(db, true);
    }
}

TEST_CASE("the golden mosquitto.db of Mosquitto 2.0.11 parses", "[mosquitto_db]") {
    const auto db = golden();
    std::string error;
    const auto c = parse_at(db, made_at(db), error);
    INFO(error);
    REQUIRE(c);
    check_contents(*c, true);

    SECTION("two hours later a2's Message Expiry has passed: it is left out") {
        const auto later = parse_at(db, made_at(db) + 2h, error);
        REQUIRE(later);
        check_contents(*later, false);
    }
    SECTION("format 5 (Mosquitto 1.6) reads the same, without usernames") {
        const auto v5 = parse_at(as_version_5(db), made_at(db), error);
        INFO(error);
        REQUIRE(v5);
        CHECK(v5->version == 5);
        CHECK(v5->state.sessions.size() == 3);
        CHECK(payloads(*session_of(*v5, "dev-v5")) ==
              std::vector<std::string>{"t1", "t2", "c1", "in1"});
    }
    SECTION("a chunk of an unknown type is skipped by its length") {
        std::string extra(8, '\0');
        put_be32(extra, 0, 99);
        put_be32(extra, 4, 3);
        const auto more = parse_at(db + extra + "abc", made_at(db), error);
        REQUIRE(more);
        CHECK(more->skipped.unknown_chunks == 1);
        CHECK(more->state.sessions.size() == 3);
    }
}

TEST_CASE("the golden mosquitto.db imports into a RocksDB store", "[mosquitto_db][rocksdb]") {
    const auto db = golden();
    // Imported at the real time: a2's hour of Message Expiry has passed unless the file was
    // made (TERN_UPDATE_MOSQUITTO_GOLDEN) within the hour.
    const auto age = std::chrono::system_clock::now() - made_at(db);
    if (age > 3590s && age < 3610s) {
        WARN("the golden file's a2 expires about now: import case skipped");
        return;
    }
    check_import(db, age < 3600s);
}

TEST_CASE("a truncated mosquitto.db is an error naming the offset, at every length",
          "[mosquitto_db]") {
    const auto db = golden();
    const auto starts = chunk_starts(db);
    REQUIRE(starts.back() == db.size()); // the golden file is whole
    const std::set<std::size_t> boundaries(starts.begin() + 1, starts.end()); // after the cfg
    const auto when = made_at(db);
    std::size_t parsed = 0;
    for (std::size_t len = 0; len < db.size(); ++len) {
        std::string error;
        const auto c = parse_at(std::string_view(db).substr(0, len), when, error);
        INFO("length " << len << ": " << error);
        if (c) {
            // No count or end marker: a cut between chunks is a shorter whole file.
            CHECK(boundaries.contains(len));
            ++parsed;
        } else {
            CHECK(!error.empty());
            CHECK((len == 0 || error.find("offset ") != std::string::npos));
        }
    }
    CHECK(parsed + 2 == starts.size());
}

TEST_CASE("a corrupt mosquitto.db never crashes the parser", "[mosquitto_db]") {
    const auto db = golden();
    const auto when = made_at(db);
    for (std::size_t i = 0; i < db.size(); ++i) {
        for (const char v : {'\x00', '\xFF', '\x7F'}) {
            auto bad = db;
            bad[i] = v;
            std::string error;
            const auto c = parse_at(bad, when, error);
            CHECK((c.has_value() || !error.empty()));
        }
    }
}

TEST_CASE("length fields are checked against the bytes that are left", "[mosquitto_db]") {
    auto db = golden();
    const auto starts = chunk_starts(db);
    std::size_t msg = 0;
    for (const auto pos : starts) {
        if (pos < db.size() && get_be32(db, pos) == 2) {
            msg = pos;
            break;
        }
    }
    REQUIRE(msg != 0);
    std::string error;
    SECTION("a payload length of 4 GiB") {
        put_be32(db, msg + 8 + 16, 0xFFFFFFF0U);
        CHECK_FALSE(parse_at(db, made_at(golden()), error));
        CHECK(error.find("offset " + std::to_string(msg)) != std::string::npos);
        CHECK(error.find("payload") != std::string::npos);
    }
    SECTION("a chunk length past the end of the file") {
        put_be32(db, msg + 4, 0x7FFFFFFFU);
        CHECK_FALSE(parse_at(db, made_at(golden()), error));
        CHECK(error.find("offset " + std::to_string(msg)) != std::string::npos);
    }
}

TEST_CASE("a file that is not a Mosquitto database, or of another version, is refused clearly",
          "[mosquitto_db]") {
    auto db = golden();
    std::string error;
    SECTION("wrong magic") {
        db[4] = 'X';
        CHECK_FALSE(parse_at(db, std::chrono::system_clock::now(), error));
        CHECK(error.find("not a Mosquitto database") != std::string::npos);
    }
    SECTION("text") {
        CHECK_FALSE(parse_at("persistence true\n", std::chrono::system_clock::now(), error));
        CHECK(error.find("not a Mosquitto database") != std::string::npos);
    }
    SECTION("empty") {
        CHECK_FALSE(parse_at("", std::chrono::system_clock::now(), error));
        CHECK(error.find("empty") != std::string::npos);
    }
    SECTION("format 4 (Mosquitto 1.5)") {
        put_be32(db, 19, 4);
        CHECK_FALSE(parse_at(db, std::chrono::system_clock::now(), error));
        CHECK(error.find("format version 4 is not supported") != std::string::npos);
    }
    SECTION("the in-memory store") {
        tern::broker::memory_session_store memory;
        CHECK_FALSE(tern::store::import_mosquitto_db("/nonexistent/mosquitto.db", memory, error));
        CHECK(error.find("/nonexistent/mosquitto.db") != std::string::npos);
        CHECK(error.find("not durable") != std::string::npos);
    }
    SECTION("a missing file, into a durable store") {
        scratch_dir dir;
        auto store = tern::store::rocksdb_store::open({dir.path + "/tern.db"}, error);
        REQUIRE(store);
        CHECK_FALSE(tern::store::import_mosquitto_db(dir.path + "/none.db", *store, error));
        CHECK(error.find(dir.path + "/none.db: cannot open") != std::string::npos);
    }
}

TEST_CASE("tern started where Mosquitto ran imports its mosquitto.db and resumes every session",
          "[mosquitto_db][tern]") {
    using namespace tern::test;
    const auto db = golden();
    const auto age = std::chrono::system_clock::now() - made_at(db);
    if (age > 3590s && age < 3610s) {
        WARN("the golden file's a2 expires about now: case skipped");
        return;
    }
    const bool a2_alive = age < 3600s;
    scratch_dir dir;
    const auto conf = legacy_dir(dir, db);
    tern_process tern(
        dir.path, {"-c", conf, "--port", "0", "--port-file", dir.path + "/port", "--threads", "1"});
    const int port = tern.port();
    INFO(tern.log());
    REQUIRE(port != 0);
    CHECK(contains(tern.log(), "imported the Mosquitto database " + dir.path + "/mosquitto.db"));
    CHECK(fs::exists(dir.path + "/tern.db"));
    CHECK_FALSE(fs::exists(dir.path + "/tern.db.import"));

    // The 3.1.1 device resumes: its queue, in order, at the QoS granted.
    mqtt_client a("dev-311", MQTT_PROTOCOL_V311, false);
    REQUIRE(a.connect(port) == 0);
    CHECK(a.session_present());
    std::vector<std::string> got;
    const auto expected = a2_alive ? std::vector<std::string>{"t1", "t2", "a1", "a2", "in1"}
                                   : std::vector<std::string>{"t1", "t2", "a1", "in1"};
    while (got.size() < expected.size()) {
        const auto m = a.next_message();
        if (!m) {
            break;
        }
        got.push_back(m->payload);
    }
    // libmosquitto hands a QoS 2 message (a2) over only once its PUBREL came, so it may pass
    // the QoS 1 ones sent after it; those keep their order (the store's order is checked
    // exactly by page_in above).
    CHECK(std::multiset<std::string>(got.begin(), got.end()) ==
          std::multiset<std::string>(expected.begin(), expected.end()));
    got.erase(std::remove(got.begin(), got.end(), "a2"), got.end());
    CHECK(got == std::vector<std::string>{"t1", "t2", "a1", "in1"});

    // The MQTT 5 device: subscription identifiers and Retain As Published carried over.
    mqtt_client b("dev-v5", MQTT_PROTOCOL_V5, false);
    REQUIRE(b.connect(port, 30, properties().add_int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL, 3600)) ==
            0);
    CHECK(b.session_present());
    std::map<std::string, received_message> by_payload;
    for (int i = 0; i < 4; ++i) {
        const auto m = b.next_message();
        if (!m) {
            break;
        }
        by_payload[m->payload] = *m;
    }
    REQUIRE(by_payload.size() == 4);
    CHECK(by_payload["t1"].subscription_ids == std::vector<std::uint32_t>{7});
    CHECK(by_payload["t2"].qos == 2);
    CHECK(by_payload["t2"].content_type == std::optional<std::string>("text/plain"));
    CHECK(by_payload["c1"].retain);
    CHECK(by_payload["c1"].subscription_ids == std::vector<std::uint32_t>{9});
    CHECK(by_payload["in1"].topic == "sensors/x/temp");

    // The device caught mid-flight: i1 and i3 again (DUP, same packet ids), PUBREL for i2;
    // its own QoS 2 message 77 is answered, not delivered again.
    raw_client f(port, 4);
    const auto connack = f.connect("dev-inflight", false);
    REQUIRE(connack);
    CHECK((connack->flags & 0x01) != 0);
    std::set<std::string> resent;
    int pubrels = 0;
    for (int i = 0; i < 3; ++i) {
        const auto p = f.next_packet();
        REQUIRE(p);
        if (packet_type(*p) == pkt_publish) {
            const auto m = parse_publish(*p, 4);
            REQUIRE(m);
            CHECK(m->dup);
            resent.insert(m->payload);
        } else {
            CHECK(packet_type(*p) == pkt_pubrel);
            ++pubrels;
        }
    }
    CHECK(resent == std::set<std::string>{"i1", "i3"});
    CHECK(pubrels == 1);
    REQUIRE(f.pubrel(77));
    const auto comp = f.expect(pkt_pubcomp);
    REQUIRE(comp);
    CHECK(parse_ack(*comp)->packet_id == 77);

    // Retained messages are there for a new subscriber.
    mqtt_client n("newcomer", MQTT_PROTOCOL_V311, true);
    REQUIRE(n.connect(port) == 0);
    REQUIRE(n.subscribe("status/#", 1) == 1);
    const auto r = n.next_message();
    REQUIRE(r);
    CHECK(r->payload == "online");
    CHECK(r->retain);
    CHECK(tern.stop() == std::optional<int>(0));
}

TEST_CASE("tern refuses to start on a corrupt mosquitto.db and leaves no store behind",
          "[mosquitto_db][tern]") {
    scratch_dir dir;
    const auto conf = legacy_dir(dir, golden().substr(0, 500));
    tern_process tern(dir.path, {"-c", conf, "--port", "0", "--port-file", dir.path + "/port"});
    CHECK(tern.exited(10s) == std::optional<int>(1));
    const auto log = tern.log();
    INFO(log);
    CHECK(tern::test::contains(log, "cannot import the Mosquitto database: " + dir.path +
                                        "/mosquitto.db: offset "));
    CHECK_FALSE(fs::exists(dir.path + "/tern.db"));
    CHECK_FALSE(fs::exists(dir.path + "/tern.db.import"));
}

TEST_CASE("tern --import-mosquitto-db imports into the configured store, once",
          "[mosquitto_db][tern]") {
    scratch_dir dir;
    const auto conf = legacy_dir(dir, golden());
    const auto file = dir.path + "/mosquitto.db";
    {
        tern_process first(dir.path, {"-c", conf, "--import-mosquitto-db", file});
        CHECK(first.exited(30s) == std::optional<int>(0));
        INFO(first.log());
        CHECK(tern::test::contains(first.log(), "3 sessions, 5 subscriptions"));
    }
    {
        tern_process again(dir.path, {"-c", conf, "--import-mosquitto-db", file});
        CHECK(again.exited(30s) == std::optional<int>(1));
        INFO(again.log());
        CHECK(tern::test::contains(again.log(), "already holds 3 sessions"));
    }
    {
        tern_process no_store(dir.path, {"--import-mosquitto-db", file});
        CHECK(no_store.exited(30s) == std::optional<int>(1));
        CHECK(tern::test::contains(no_store.log(), "does not enable persistence"));
    }
}
