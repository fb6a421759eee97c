// kill -9 of tern with `persistence true` while QoS 1 and QoS 2 publishers and persistent
// subscribers run: after a restart on the same store every acknowledged message is delivered
// (QoS 2 to an offline session exactly once), nothing is delivered that was never published,
// and retained messages and wills come back. Tern only: Mosquitto keeps its state in memory
// between autosaves and loses what it acknowledged since the last one (docs/store.md).

#include "support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace tern::test;

namespace {

/// Reads every message until none arrives for `quiet`, counting payloads.
std::map<std::string, int> drain(mqtt_client& c, clock::duration quiet = 1500ms) {
    std::map<std::string, int> seen;
    for (int i = 0; i < 100000; ++i) {
        const auto m = c.next_message(quiet);
        if (!m) {
            break;
        }
        ++seen[m->payload];
    }
    return seen;
}

} // namespace

TEST_CASE("kill -9 with persistence: every acknowledged QoS 1 and QoS 2 message reaches the "
          "persistent subscribers after a restart, QoS 2 exactly once to an offline session",
          "[broker][persistence][tern]") {
    TERN_ONLY_TEST("Mosquitto loses what it acknowledged since its last autosave");
    store_dir dir;
    std::set<std::string> published;
    std::vector<std::string> acked;
    {
        durable_tern tern(dir);
        {
            // Offline for the whole run: everything is queued for it, on disk.
            mqtt_client away("k9-away", MQTT_PROTOCOL_V311, false);
            REQUIRE(away.connect(tern.port()) == 0);
            REQUIRE(away.subscribe("k9/#", 2) == 2);
            away.disconnect();
        }
        // Connected at the crash (v5, session expiry), never reading: messages are in flight to
        // it or queued behind its window when the broker dies.
        mqtt_client online("k9-online", MQTT_PROTOCOL_V5, false);
        REQUIRE(online.connect(tern.port(), 30,
                               properties().add_int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL, 600)) ==
                0);
        REQUIRE(online.subscribe("k9/#", 2) == 2);

        mqtt_client q1("k9-pub1", MQTT_PROTOCOL_V311);
        mqtt_client q2("k9-pub2", MQTT_PROTOCOL_V5);
        REQUIRE(q1.connect(tern.port()) == 0);
        REQUIRE(q2.connect(tern.port()) == 0);
        // The crash comes from another thread at a moment the publishers do not choose: the
        // message in flight then may or may not be stored, but only acknowledged ones count.
        std::atomic<int> sent{0};
        std::thread killer([&] {
            const auto deadline = clock::now() + 20s;
            while (sent.load() < 300 && clock::now() < deadline) {
                std::this_thread::sleep_for(1ms);
            }
            tern.kill();
        });
        for (int i = 0; i < 2000; ++i) {
            const auto p1 = "q1-" + std::to_string(i);
            const auto p2 = "q2-" + std::to_string(i);
            published.insert(p1);
            if (!q1.publish("k9/q1", p1, 1)) {
                break;
            }
            acked.push_back(p1);
            published.insert(p2);
            if (!q2.publish("k9/q2", p2, 2)) {
                break;
            }
            acked.push_back(p2);
            sent.fetch_add(2);
        }
        killer.join();
        REQUIRE(acked.size() >= 300);
    }

    durable_tern tern(dir);
    INFO("tern log:\n" << tern.log());
    mqtt_client away("k9-away", MQTT_PROTOCOL_V311, false);
    REQUIRE(away.connect(tern.port()) == 0);
    CHECK(away.session_present());
    const auto away_seen = drain(away);
    mqtt_client online("k9-online", MQTT_PROTOCOL_V5, false);
    REQUIRE(online.connect(tern.port(), 30,
                           properties().add_int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL, 600)) == 0);
    CHECK(online.session_present());
    const auto online_seen = drain(online);

    std::size_t away_missing = 0;
    std::size_t online_missing = 0;
    for (const auto& p : acked) {
        away_missing += away_seen.contains(p) ? 0U : 1U;
        online_missing += online_seen.contains(p) ? 0U : 1U;
    }
    CHECK(away_missing == 0);
    CHECK(online_missing == 0);
    for (const auto& [payload, times] : away_seen) {
        INFO(payload);
        CHECK(published.contains(payload));
        if (payload.starts_with("q2-")) {
            CHECK(times == 1); // [MQTT-4.3.3]: exactly once, also across the crash
        }
    }
    for (const auto& [payload, times] : online_seen) {
        INFO(payload);
        CHECK(published.contains(payload));
    }
}

TEST_CASE("kill -9 with persistence: retained messages and the will of a client connected at "
          "the crash come back after a restart",
          "[broker][persistence][tern]") {
    TERN_ONLY_TEST("Mosquitto loses what it acknowledged since its last autosave");
    store_dir dir;
    {
        durable_tern tern(dir);
        {
            mqtt_client watcher("k9-watcher", MQTT_PROTOCOL_V311, false);
            REQUIRE(watcher.connect(tern.port()) == 0);
            REQUIRE(watcher.subscribe("k9w/#", 1) == 1);
            watcher.disconnect();
        }
        mqtt_client retainer("k9-retainer");
        REQUIRE(retainer.connect(tern.port()) == 0);
        REQUIRE(retainer.publish("k9r/state", "kept", 1, true));
        REQUIRE(retainer.publish("k9r/cleared", "gone", 1, true));
        REQUIRE(retainer.publish("k9r/cleared", "", 1, true));
        // A persistent session with a will, connected when the broker dies.
        mqtt_client device("k9-device", MQTT_PROTOCOL_V5, false);
        device.set_will("k9w/device", "offline", 1, false);
        REQUIRE(device.connect(tern.port(), 30,
                               properties().add_int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL, 60)) == 0);
        tern.kill();
    }
    durable_tern tern(dir);
    INFO("tern log:\n" << tern.log());
    mqtt_client reader("k9-reader");
    REQUIRE(reader.connect(tern.port()) == 0);
    REQUIRE(reader.subscribe("k9r/#", 1) == 1);
    const auto r = reader.next_message();
    REQUIRE(r);
    CHECK(r->topic == "k9r/state");
    CHECK(r->payload == "kept");
    CHECK(r->retain);
    CHECK(reader.no_message_within(500ms)); // the cleared topic stays cleared

    mqtt_client watcher("k9-watcher", MQTT_PROTOCOL_V311, false);
    REQUIRE(watcher.connect(tern.port()) == 0);
    CHECK(watcher.session_present());
    const auto w = watcher.next_message();
    REQUIRE(w);
    CHECK(w->topic == "k9w/device");
    CHECK(w->payload == "offline");
}
