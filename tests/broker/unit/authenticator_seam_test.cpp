// The access-control seam (tern/auth/authenticator.hpp): an in-process broker built with a test
// authenticator must ask it at CONNECT (with the user name, password and listener), for the
// will topic, for every PUBLISH and for every SUBSCRIBE filter, and act on its answers the way
// mosquitto acts on its ACLs: refused CONNECT with the verdict's reason, PUBACK/SUBACK Not
// authorized (0x87) while the connection stays up, nothing delivered.
#include "in_process.hpp"

#include <tern/auth/authenticator.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::chrono_literals;
using namespace tern::test;
namespace mqtt = tern::protocol;
namespace auth = tern::auth;

/// Lets in user "alice" with password "secret" only; denies publishing under "locked/" and
/// subscribing to filters under "private/"; records what it was asked.
class test_authenticator final : public auth::authenticator {
public:
    auth::verdict authenticate(const auth::client_identity& who,
                               std::optional<std::string_view> password) const override {
        std::lock_guard lock(mutex_);
        asked.push_back("connect " + who.client_id + " " + who.username.value_or("-") + " " +
                        std::string(password.value_or("-")) + " listener " +
                        std::to_string(who.listener) + (who.peer != nullptr ? " peer" : ""));
        if (who.username == "alice" && password == "secret") {
            return auth::verdict::allow();
        }
        return auth::verdict::deny(mqtt::reason_code::bad_user_name_or_password,
                                   "unknown user or wrong password");
    }
    bool authorize(const auth::client_identity& who, auth::access what,
                   std::string_view topic) const override {
        std::lock_guard lock(mutex_);
        const bool publish = what == auth::access::publish;
        asked.push_back(std::string(publish ? "publish " : "subscribe ") + who.client_id + " " +
                        std::string(topic));
        return publish ? !topic.starts_with("locked/") : !topic.starts_with("private/");
    }

    mutable std::mutex mutex_;
    mutable std::vector<std::string> asked;
};

mqtt::connack connect_as(client& c, std::string_view id, std::optional<std::string_view> user,
                         std::optional<std::string_view> password,
                         std::optional<mqtt::will_message> will = {}) {
    mqtt::connect msg;
    msg.client_id = id;
    msg.keep_alive = 0;
    msg.username = user;
    msg.password = password;
    msg.will = std::move(will);
    c.send(msg);
    auto p = c.next();
    REQUIRE(p);
    REQUIRE(std::holds_alternative<mqtt::connack>(p->packet));
    return std::get<mqtt::connack>(p->packet);
}

} // namespace

TEST_CASE("authenticator seam: CONNECT is refused with the verdict's reason",
          "[broker][auth][MQTT-3.2.2-6]") {
    test_authenticator authn;
    in_process_broker broker({.authenticator = &authn});
    {
        client c(broker.port());
        CHECK(connect_as(c, "m", "mallory", "guess").reason ==
              mqtt::reason_code::bad_user_name_or_password);
        CHECK(c.closed_within(2000ms)); // [MQTT-3.2.2-7]
    }
    {
        client c(broker.port());
        CHECK(connect_as(c, "n", std::nullopt, std::nullopt).reason ==
              mqtt::reason_code::bad_user_name_or_password);
    }
    client ok(broker.port());
    CHECK(connect_as(ok, "a", "alice", "secret").reason == mqtt::reason_code::success);
    std::lock_guard lock(authn.mutex_);
    CHECK(authn.asked == std::vector<std::string>{"connect m mallory guess listener 0 peer",
                                                  "connect n - - listener 0 peer",
                                                  "connect a alice secret listener 0 peer"});
}

TEST_CASE("authenticator seam: a will on a forbidden topic is dropped, the CONNECT accepted",
          "[broker][auth]") {
    test_authenticator authn;
    in_process_broker broker({.authenticator = &authn});
    client watcher(broker.port());
    REQUIRE(connect_as(watcher, "watch", "alice", "secret").reason == mqtt::reason_code::success);
    mqtt::subscribe s;
    s.packet_id = 1;
    s.subscriptions.push_back({"#", {}});
    watcher.send(s);
    REQUIRE(watcher.next()); // SUBACK
    {
        client c(broker.port());
        mqtt::will_message will;
        will.topic = "locked/will";
        will.payload = "x";
        CHECK(connect_as(c, "w", "alice", "secret", will).reason == mqtt::reason_code::success);
        c.close(); // abnormal: a kept will would be published now
    }
    CHECK_FALSE(watcher.next(500ms)); // mosquitto 2.0 drops such a will the same way
    std::lock_guard lock(authn.mutex_);
    CHECK(std::count(authn.asked.begin(), authn.asked.end(), "publish w locked/will") == 1);
}

TEST_CASE("authenticator seam: PUBLISH and SUBSCRIBE are authorized per topic; a denial "
          "refuses that one action and keeps the connection",
          "[broker][auth][MQTT-3.9.3-1]") {
    test_authenticator authn;
    in_process_broker broker({.authenticator = &authn});
    client sub(broker.port());
    REQUIRE(connect_as(sub, "sub", "alice", "secret").reason == mqtt::reason_code::success);
    mqtt::subscribe s;
    s.packet_id = 1;
    s.subscriptions.push_back({"private/x", {mqtt::qos::at_least_once}});
    s.subscriptions.push_back({"#", {mqtt::qos::at_least_once}});
    sub.send(s);
    auto ack = sub.next();
    REQUIRE(ack);
    REQUIRE(std::holds_alternative<mqtt::suback>(ack->packet));
    CHECK(std::get<mqtt::suback>(ack->packet).reasons ==
          std::vector<mqtt::reason_code>{mqtt::reason_code::not_authorized,
                                         mqtt::reason_code::granted_qos_1});

    client pub(broker.port());
    REQUIRE(connect_as(pub, "pub", "alice", "secret").reason == mqtt::reason_code::success);
    mqtt::publish p;
    p.qos = mqtt::qos::at_least_once;
    p.topic = "locked/door";
    p.payload = "open";
    p.packet_id = 5;
    pub.send(p);
    auto puback = pub.next();
    REQUIRE(puback);
    REQUIRE(std::holds_alternative<mqtt::puback>(puback->packet));
    CHECK(std::get<mqtt::puback>(puback->packet).reason == mqtt::reason_code::not_authorized);

    p.topic = "open/door";
    p.packet_id = 6;
    pub.send(p);
    puback = pub.next();
    REQUIRE(puback);
    REQUIRE(std::holds_alternative<mqtt::puback>(puback->packet));
    CHECK(std::get<mqtt::puback>(puback->packet).reason == mqtt::reason_code::success);

    // The subscriber gets only the authorized message: the denied one was never routed.
    auto m = sub.next();
    REQUIRE(m);
    REQUIRE(std::holds_alternative<mqtt::publish>(m->packet));
    CHECK(std::get<mqtt::publish>(m->packet).topic == "open/door");
    CHECK_FALSE(sub.next(300ms));

    // The stats seam counts both PUBLISH packets in, one message out, the one subscription.
    const auto stats = broker.stats();
    CHECK(stats.messages_received == 2);
    CHECK(stats.messages_sent == 1);
    CHECK(stats.clients_connected == 2);
    CHECK(stats.subscriptions == 1);
    CHECK(stats.packets_received >= 5); // 2 CONNECT, SUBSCRIBE, 2 PUBLISH (+ PUBACK maybe)

    std::lock_guard lock(authn.mutex_);
    const auto& asked = authn.asked;
    CHECK(std::count(asked.begin(), asked.end(), "subscribe sub private/x") == 1);
    CHECK(std::count(asked.begin(), asked.end(), "subscribe sub #") == 1);
    CHECK(std::count(asked.begin(), asked.end(), "publish pub locked/door") == 1);
    CHECK(std::count(asked.begin(), asked.end(), "publish pub open/door") == 1);
}
