// Offline queues on disk (persistence true), drained by real clients: a queue read back
// while messages keep arriving for the same session, and many sessions resuming at once. Both
// once stalled: each page-in waited for the newest store round, so a steady stream of new
// messages held it back round after round; and every waiting page-in registered another
// watcher with the store, whose writer then spent its time erasing them (docs/store.md,
// "Offline queues live on disk").

#include "support.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace tern::test;

namespace {

/// Tern on `dir` (its store under dir/), every message queued (no max_queued_messages).
broker_settings persistent_broker(const store_dir& dir) {
    broker_settings s;
    s.max_queued_messages = 0; // the whole backlog stays queued
    s.extra_config = {"persistence true", "persistence_location " + dir.path("")};
    return s;
}

properties session_expiry(std::uint32_t seconds) {
    properties p;
    p.add_int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL, seconds);
    return p;
}

/// Leaves a persistent MQTT 5 session subscribed to `filter` at QoS 1, offline.
void leave_offline(int port, const std::string& id, const std::string& filter) {
    mqtt_client c(id, MQTT_PROTOCOL_V5, false);
    REQUIRE(c.connect(port, 30, session_expiry(3600)) == 0);
    REQUIRE(c.subscribe(filter, 1) == 1);
    c.disconnect();
}

/// Publishes `count` QoS 1 messages numbered from `first` to `topic`, `window` at a time,
/// each acknowledged before the function returns.
void publish_numbered(mqtt_client& pub, const std::string& topic, int first, int count,
                      int window = 50) {
    std::vector<int> mids;
    for (int i = first; i < first + count; ++i) {
        const int mid = pub.publish_async(topic, std::to_string(i), 1);
        REQUIRE(mid >= 0);
        mids.push_back(mid);
        if (mids.size() == static_cast<std::size_t>(window)) {
            for (const int m : mids) {
                REQUIRE(pub.wait_published(m) == 0);
            }
            mids.clear();
        }
    }
    for (const int m : mids) {
        REQUIRE(pub.wait_published(m) == 0);
    }
}

} // namespace

TEST_CASE("persistence: a queue on disk drains completely while new messages keep arriving "
          "for the same session, each once and in order",
          "[broker][store][offline-queue]") {
    store_dir dir;
    broker_process broker(persistent_broker(dir));
    leave_offline(broker.port(), "drainer", "drain/#");
    mqtt_client pub("drain-pub", MQTT_PROTOCOL_V5);
    REQUIRE(pub.connect(broker.port()) == 0);
    constexpr int backlog = 3000;
    constexpr int live = 1500;
    publish_numbered(pub, "drain/t", 0, backlog);

    mqtt_client sub("drainer", MQTT_PROTOCOL_V5, false);
    REQUIRE(sub.connect(broker.port(), 30, session_expiry(3600)) == 0);
    REQUIRE(sub.session_present());
    // Publish the live messages one by one while the subscriber reads: a steady stream that
    // reaches the session while its queue is still on disk.
    std::vector<int> received;
    std::vector<int> mids;
    int sent = 0;
    const auto deadline = clock::now() + std::chrono::seconds(60);
    while (received.size() < static_cast<std::size_t>(backlog + live) && clock::now() < deadline) {
        if (sent < live) {
            const int mid = pub.publish_async("drain/t", std::to_string(backlog + sent), 1);
            REQUIRE(mid >= 0);
            mids.push_back(mid);
            ++sent;
        }
        pub.pump_once(0);
        if (auto m = sub.next_message(std::chrono::milliseconds(1))) {
            received.push_back(std::stoi(m->payload));
        }
    }
    INFO("received " << received.size() << " of " << backlog + live << ", " << sent
                     << " live sent");
    REQUIRE(received.size() == static_cast<std::size_t>(backlog + live));
    // One publisher on one topic: its order [MQTT-4.6.0-2], nothing twice, nothing missing.
    for (int i = 0; i < backlog + live; ++i) {
        INFO("position " << i);
        REQUIRE(received[static_cast<std::size_t>(i)] == i);
    }
    for (const int m : mids) {
        CHECK(pub.wait_published(m) == 0);
    }
}

TEST_CASE("persistence: twelve sessions with queues on disk resume together and each gets its "
          "whole queue; later CONNECTs are answered meanwhile",
          "[broker][store][offline-queue]") {
    store_dir dir;
    broker_process broker(persistent_broker(dir));
    constexpr int sessions = 12;
    constexpr int depth = 150;
    for (int s = 0; s < sessions; ++s) {
        leave_offline(broker.port(), "resumer-" + std::to_string(s), "resume/" + std::to_string(s));
    }
    {
        mqtt_client pub("resume-pub", MQTT_PROTOCOL_V5);
        REQUIRE(pub.connect(broker.port()) == 0);
        for (int s = 0; s < sessions; ++s) {
            publish_numbered(pub, "resume/" + std::to_string(s), 0, depth);
        }
    }
    std::vector<std::unique_ptr<mqtt_client>> clients;
    std::vector<std::vector<int>> got(sessions);
    const auto take = [&] {
        for (int s = 0; s < static_cast<int>(clients.size()); ++s) {
            auto& c = *clients[static_cast<std::size_t>(s)];
            c.pump_once(0);
            while (auto m = c.next_message(std::chrono::milliseconds(0))) {
                got[static_cast<std::size_t>(s)].push_back(std::stoi(m->payload));
            }
        }
    };
    for (int s = 0; s < sessions; ++s) {
        clients.push_back(
            std::make_unique<mqtt_client>("resumer-" + std::to_string(s), MQTT_PROTOCOL_V5, false));
        // Each CONNECT while the earlier sessions are draining must still get its CONNACK.
        INFO("session " << s);
        REQUIRE(clients.back()->connect(broker.port(), 30, session_expiry(3600)) == 0);
        CHECK(clients.back()->session_present());
        take();
    }
    const auto all_in = [&] {
        for (const auto& g : got) {
            if (g.size() < static_cast<std::size_t>(depth)) {
                return false;
            }
        }
        return true;
    };
    const auto deadline = clock::now() + std::chrono::seconds(60);
    while (!all_in() && clock::now() < deadline) {
        take();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (int s = 0; s < sessions; ++s) {
        INFO("session " << s);
        const auto& g = got[static_cast<std::size_t>(s)];
        REQUIRE(g.size() == static_cast<std::size_t>(depth));
        for (int i = 0; i < depth; ++i) {
            REQUIRE(g[static_cast<std::size_t>(i)] == i);
        }
    }
    // And the broker still answers a new client.
    mqtt_client late("late", MQTT_PROTOCOL_V5);
    CHECK(late.connect(broker.port()) == 0);
}
