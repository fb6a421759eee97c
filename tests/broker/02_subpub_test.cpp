// SUBSCRIBE / UNSUBSCRIBE and routing: wildcards, overlaps, No Local, and a Paho C client.

#include "support.hpp"

#include <MQTTClient.h>
#include <catch2/catch.hpp>

using namespace tern::test;

TEST_CASE("wildcard filters match per MQTT-4.7", "[broker][subpub][MQTT-4.7.1-2][MQTT-4.7.1-3]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    mqtt_client plus("sub-plus", version);
    mqtt_client hash("sub-hash", version);
    mqtt_client pub("pub", version);
    REQUIRE(plus.connect(broker.port()) == 0);
    REQUIRE(hash.connect(broker.port()) == 0);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(plus.subscribe("sensors/+/temp", 0) == 0);
    REQUIRE(hash.subscribe("sensors/#", 0) == 0);

    REQUIRE(pub.publish("sensors/kitchen/temp", "21", 0));
    REQUIRE(pub.publish("sensors/kitchen/humidity", "40", 0));
    REQUIRE(pub.publish("sensors", "parent", 0)); // '#' includes the parent level [MQTT-4.7.1-2]
    REQUIRE(pub.publish("other/kitchen/temp", "no", 0));

    auto m = plus.next_message();
    REQUIRE(m);
    CHECK(m->topic == "sensors/kitchen/temp");
    CHECK(m->payload == "21");
    CHECK(plus.no_message_within(200ms));

    std::vector<std::string> topics;
    while (auto h = hash.next_message(1s)) {
        topics.push_back(h->topic);
    }
    CHECK(topics ==
          std::vector<std::string>{"sensors/kitchen/temp", "sensors/kitchen/humidity", "sensors"});
}

TEST_CASE("'#' does not match topics starting with '$'", "[broker][subpub][MQTT-4.7.2-1]") {
    broker_process broker;
    mqtt_client sub("sub", MQTT_PROTOCOL_V311);
    mqtt_client pub("pub", MQTT_PROTOCOL_V311);
    REQUIRE(sub.connect(broker.port()) == 0);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(sub.subscribe("#", 0) == 0);
    REQUIRE(pub.publish("$SYS/uptime", "1", 0));
    REQUIRE(pub.publish("visible", "2", 0));
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->topic == "visible");
}

TEST_CASE("unsubscribe stops delivery", "[broker][subpub][MQTT-3.10.4-6]") {
    broker_process broker;
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    mqtt_client sub("sub", version);
    mqtt_client pub("pub", version);
    REQUIRE(sub.connect(broker.port()) == 0);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(sub.subscribe("a/b", 1) == 1);
    REQUIRE(pub.publish("a/b", "before", 1));
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->payload == "before");

    REQUIRE(sub.unsubscribe("a/b"));
    REQUIRE(pub.publish("a/b", "after", 1));
    CHECK(sub.no_message_within(300ms));
}

TEST_CASE("overlapping subscriptions deliver once at the highest granted QoS",
          "[broker][subpub][MQTT-3.3.4-2]") {
    broker_process broker;
    mqtt_client sub("sub", MQTT_PROTOCOL_V5);
    mqtt_client pub("pub", MQTT_PROTOCOL_V5);
    REQUIRE(sub.connect(broker.port()) == 0);
    REQUIRE(pub.connect(broker.port()) == 0);
    REQUIRE(sub.subscribe("x/#", 0) == 0);
    REQUIRE(sub.subscribe("x/+", 2) == 2);
    REQUIRE(sub.subscribe("x/y", 1) == 1);
    REQUIRE(pub.publish("x/y", "once", 2));
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->qos == 2);
    CHECK(sub.no_message_within(300ms));
}

TEST_CASE("No Local suppresses a client's own messages", "[broker][subpub][v5][MQTT-3.8.3-3]") {
    broker_process broker;
    mqtt_client self("self", MQTT_PROTOCOL_V5);
    mqtt_client other("other", MQTT_PROTOCOL_V5);
    REQUIRE(self.connect(broker.port()) == 0);
    REQUIRE(other.connect(broker.port()) == 0);
    REQUIRE(self.subscribe("chat", 0, MQTT_SUB_OPT_NO_LOCAL) == 0);
    REQUIRE(self.publish("chat", "mine", 0));
    REQUIRE(other.publish("chat", "theirs", 0));
    const auto m = self.next_message();
    REQUIRE(m);
    CHECK(m->payload == "theirs");
}

namespace {

/// A Paho C (MQTTClient, synchronous) connection.
struct paho_client {
    paho_client(int port, const char* id, int version) {
        const std::string uri = "tcp://127.0.0.1:" + std::to_string(port);
        MQTTClient_createOptions create = MQTTClient_createOptions_initializer;
        create.MQTTVersion = version;
        REQUIRE(MQTTClient_createWithOptions(&handle, uri.c_str(), id, MQTTCLIENT_PERSISTENCE_NONE,
                                             nullptr, &create) == MQTTCLIENT_SUCCESS);
        v5 = version == MQTTVERSION_5;
    }
    ~paho_client() {
        if (v5) {
            MQTTClient_disconnect5(handle, 1000, MQTTREASONCODE_SUCCESS, nullptr);
        } else {
            MQTTClient_disconnect(handle, 1000);
        }
        MQTTClient_destroy(&handle);
    }
    int connect() {
        if (v5) {
            MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer5;
            opts.cleanstart = 1;
            opts.connectTimeout = 5;
            const MQTTResponse r = MQTTClient_connect5(handle, &opts, nullptr, nullptr);
            const int rc = r.reasonCode;
            MQTTResponse_free(r);
            return rc;
        }
        MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
        opts.cleansession = 1;
        opts.connectTimeout = 5;
        opts.MQTTVersion = MQTTVERSION_3_1_1;
        return MQTTClient_connect(handle, &opts);
    }
    MQTTClient handle = nullptr;
    bool v5 = false;
};

} // namespace

TEST_CASE("Paho C and libmosquitto exchange QoS 2 messages", "[broker][subpub][paho]") {
    broker_process broker;
    const int version = GENERATE(MQTTVERSION_3_1_1, MQTTVERSION_5);
    CAPTURE(version);
    paho_client paho(broker.port(), "paho", version);
    REQUIRE(paho.connect() == 0);
    if (paho.v5) {
        MQTTResponse r = MQTTClient_subscribe5(paho.handle, "paho/in", 2, nullptr, nullptr);
        CHECK(r.reasonCode == 2);
        MQTTResponse_free(r);
    } else {
        REQUIRE(MQTTClient_subscribe(paho.handle, "paho/in", 2) == MQTTCLIENT_SUCCESS);
    }

    mqtt_client mosq("mosq", version == MQTTVERSION_5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    REQUIRE(mosq.connect(broker.port()) == 0);
    REQUIRE(mosq.subscribe("paho/out", 2) == 2);

    // libmosquitto -> tern -> Paho
    const std::string payload = make_payload(70'000, 7);
    REQUIRE(mosq.publish("paho/in", payload, 2));
    char* topic = nullptr;
    int topic_len = 0;
    MQTTClient_message* msg = nullptr;
    REQUIRE(MQTTClient_receive(paho.handle, &topic, &topic_len, &msg, 5000) == MQTTCLIENT_SUCCESS);
    REQUIRE(msg != nullptr);
    CHECK(std::string(topic) == "paho/in");
    CHECK(msg->qos == 2);
    CHECK(std::string(static_cast<const char*>(msg->payload),
                      static_cast<std::size_t>(msg->payloadlen)) == payload);
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);

    // Paho -> tern -> libmosquitto
    MQTTClient_message out = MQTTClient_message_initializer;
    std::string text = "from paho";
    out.payload = text.data();
    out.payloadlen = static_cast<int>(text.size());
    out.qos = 2;
    MQTTClient_deliveryToken token = 0;
    if (paho.v5) {
        out.struct_version = 1;
        MQTTResponse r = MQTTClient_publishMessage5(paho.handle, "paho/out", &out, &token);
        CHECK(r.reasonCode == 0);
        MQTTResponse_free(r);
    } else {
        REQUIRE(MQTTClient_publishMessage(paho.handle, "paho/out", &out, &token) ==
                MQTTCLIENT_SUCCESS);
    }
    CHECK(MQTTClient_waitForCompletion(paho.handle, token, 5000) == MQTTCLIENT_SUCCESS);
    const auto m = mosq.next_message();
    REQUIRE(m);
    CHECK(m->payload == text);
    CHECK(m->qos == 2);
}
