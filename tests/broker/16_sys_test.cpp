// $SYS/broker/... statistics, with Mosquitto's topic names and formats (sys_interval 1): they are
// retained, refreshed every interval (Mosquitto 2.0.11 publishes a value only when it changed,
// and ticks every 2 s with sys_interval 1), and follow what the broker does.

#include "support.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <string>

using namespace tern::test;

namespace {

/// Latest value of each $SYS topic seen by a subscriber to $SYS/broker/#.
class sys_watcher {
public:
    explicit sys_watcher(int port) : client_("sys-watcher", MQTT_PROTOCOL_V5) {
        REQUIRE(client_.connect(port) == 0);
        REQUIRE(client_.subscribe("$SYS/broker/#", 0) == 0);
    }

    /// Pumps until `topic` has a value for which `ok` holds (bounded); returns the value.
    std::optional<std::string> wait_for(const std::string& topic,
                                        const std::function<bool(const std::string&)>& ok,
                                        clock::duration timeout = 6s) {
        const auto deadline = clock::now() + timeout;
        for (;;) {
            const auto it = values_.find(topic);
            if (it != values_.end() && ok(it->second)) {
                return it->second;
            }
            const auto left = deadline - clock::now();
            if (left <= clock::duration::zero()) {
                return std::nullopt;
            }
            if (auto m = client_.next_message(left)) {
                CHECK(m->topic.rfind("$SYS/broker/", 0) == 0);
                values_[m->topic] = m->payload;
            }
        }
    }
    std::optional<std::string> wait_for(const std::string& topic) {
        return wait_for(topic, [](const std::string&) { return true; });
    }
    /// A counter's value, once present.
    long long number(const std::string& topic) {
        const auto v = wait_for(topic);
        REQUIRE(v);
        return std::atoll(v->c_str());
    }
    /// Waits until the counter at `topic` satisfies `ok`; returns whether it did.
    bool number_reaches(const std::string& topic, const std::function<bool(long long)>& ok) {
        return wait_for(topic, [&](const std::string& v) { return ok(std::atoll(v.c_str())); })
            .has_value();
    }

private:
    mqtt_client client_;
    std::map<std::string, std::string> values_;
};

bool is_count(const std::string& v) {
    return std::regex_match(v, std::regex("[0-9]+"));
}

} // namespace

TEST_CASE("$SYS/broker statistics use Mosquitto's names and follow the broker", "[broker][sys]") {
    broker_settings settings;
    settings.sys_interval = 1;
    broker_process broker(settings);
    sys_watcher sys(broker.port());

    // Names and formats.
    const auto version = sys.wait_for("$SYS/broker/version");
    REQUIRE(version);
    CHECK_FALSE(version->empty());
    const auto uptime = sys.wait_for("$SYS/broker/uptime");
    REQUIRE(uptime);
    CHECK(std::regex_match(*uptime, std::regex("[0-9]+ seconds")));
    for (const char* topic :
         {"$SYS/broker/clients/connected", "$SYS/broker/messages/received",
          "$SYS/broker/messages/sent", "$SYS/broker/bytes/received", "$SYS/broker/bytes/sent",
          "$SYS/broker/publish/messages/received", "$SYS/broker/publish/messages/sent",
          "$SYS/broker/subscriptions/count", "$SYS/broker/retained messages/count"}) {
        CAPTURE(topic);
        const auto v = sys.wait_for(topic);
        REQUIRE(v);
        CHECK(is_count(*v));
    }

    // Uptime moves on.
    const long long up0 = std::atoll(uptime->c_str());
    CHECK(sys.wait_for("$SYS/broker/uptime",
                       [&](const std::string& v) { return std::atoll(v.c_str()) > up0; }));

    // clients/connected: the watcher plus three more, then the watcher plus one.
    {
        mqtt_client a("a", MQTT_PROTOCOL_V311);
        mqtt_client b("b", MQTT_PROTOCOL_V5);
        mqtt_client c("c", MQTT_PROTOCOL_V5);
        REQUIRE(a.connect(broker.port()) == 0);
        REQUIRE(b.connect(broker.port()) == 0);
        REQUIRE(c.connect(broker.port()) == 0);
        CHECK(sys.number_reaches("$SYS/broker/clients/connected",
                                 [](long long n) { return n == 4; }));

        // Subscriptions: +2 (on top of the watcher's own).
        const long long subs0 = sys.number("$SYS/broker/subscriptions/count");
        REQUIRE(b.subscribe("stats/#", 1) == 1);
        REQUIRE(c.subscribe("stats/+", 1) == 1);
        CHECK(sys.number_reaches("$SYS/broker/subscriptions/count",
                                 [&](long long n) { return n == subs0 + 2; }));

        // Messages and bytes, received and sent: 20 publishes, each delivered twice.
        const long long msg_in0 = sys.number("$SYS/broker/messages/received");
        const long long msg_out0 = sys.number("$SYS/broker/messages/sent");
        const long long pub_in0 = sys.number("$SYS/broker/publish/messages/received");
        const long long pub_out0 = sys.number("$SYS/broker/publish/messages/sent");
        const long long bytes_in0 = sys.number("$SYS/broker/bytes/received");
        const long long bytes_out0 = sys.number("$SYS/broker/bytes/sent");
        const std::string payload(100, 'p');
        for (int i = 0; i < 20; ++i) {
            REQUIRE(a.publish("stats/x", payload, 1));
        }
        for (int i = 0; i < 40; ++i) {
            auto& receiver = i % 2 == 0 ? b : c;
            REQUIRE(receiver.next_message());
        }
        CHECK(sys.number_reaches("$SYS/broker/messages/received",
                                 [&](long long n) { return n >= msg_in0 + 20; }));
        CHECK(sys.number_reaches("$SYS/broker/messages/sent",
                                 [&](long long n) { return n >= msg_out0 + 40; }));
        CHECK(sys.number_reaches("$SYS/broker/publish/messages/received",
                                 [&](long long n) { return n >= pub_in0 + 20; }));
        CHECK(sys.number_reaches("$SYS/broker/publish/messages/sent",
                                 [&](long long n) { return n >= pub_out0 + 40; }));
        CHECK(sys.number_reaches("$SYS/broker/bytes/received",
                                 [&](long long n) { return n >= bytes_in0 + 20 * 100; }));
        CHECK(sys.number_reaches("$SYS/broker/bytes/sent",
                                 [&](long long n) { return n >= bytes_out0 + 40 * 100; }));

        // Retained messages: +2, then -1 when one is cleared.
        const long long kept0 = sys.number("$SYS/broker/retained messages/count");
        REQUIRE(a.publish("stats/r1", "1", 1, true));
        REQUIRE(a.publish("stats/r2", "2", 1, true));
        CHECK(sys.number_reaches("$SYS/broker/retained messages/count",
                                 [&](long long n) { return n == kept0 + 2; }));
        REQUIRE(a.publish("stats/r1", "", 1, true));
        CHECK(sys.number_reaches("$SYS/broker/retained messages/count",
                                 [&](long long n) { return n == kept0 + 1; }));
        b.disconnect();
        c.disconnect();
    }
    CHECK(sys.number_reaches("$SYS/broker/clients/connected", [](long long n) { return n == 1; }));
}
