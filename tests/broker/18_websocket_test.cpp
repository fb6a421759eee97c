// MQTT over WebSocket (`protocol websockets`) and WebSocket over TLS: Paho C over ws:// and
// wss:// (MQTT 3.1.1 and 5, QoS 0/1/2, a 300 KB payload), WebSocket and plain TCP clients on one
// broker, and a hand-written WebSocket client (ws_client.hpp) for what real clients never send:
// MQTT split across frames and continuation frames, several packets in one frame, pings, close
// frames, text, unmasked and reserved frames, bad upgrade requests, oversized request heads and a
// client that never finishes the upgrade. After each bad case a WebSocket pair opened before it,
// and a new client, still work on the same listener.
//
// Every broker has its plain first listener and the WebSocket listeners of
// broker_settings::listeners. Mosquitto 2.0.11 (libwebsockets) deviations are named in the
// section that meets them; the cases it fails are tagged [tern].

#include "healthy_pair.hpp"
#include "pki.hpp"
#include "raw_client.hpp"
#include "raw_packets.hpp"
#include "support.hpp"
#include "ws_client.hpp"

#include <MQTTClient.h>
#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace tern::test;

namespace {

/// The directive lines of a WebSocket listener, and `more` after them.
std::string ws_listener(const std::string& more = {}) {
    return "protocol websockets\n" + more;
}

/// A WebSocket-over-TLS listener serving the `localhost` / 127.0.0.1 certificate.
std::string wss_listener() {
    return ws_listener("certfile " + pki().server.cert + "\nkeyfile " + pki().server.key + "\n");
}

broker_settings with_listeners(std::vector<std::string> blocks) {
    broker_settings s;
    s.listeners = std::move(blocks);
    return s;
}

std::string as_string(const std::vector<std::uint8_t>& bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

/// Mosquitto 2.0.11 takes about 7 s to deliver 300 KB to a WebSocket subscriber (libwebsockets
/// writes a chunk per service pass); tern well under a second.
constexpr int paho_wait_ms = 20'000;

/// A Paho C client (MQTTClient, synchronous: no callbacks, MQTTClient_receive) over ws:// or
/// wss:// at path /mqtt, MQTT 3.1.1 (`version` 4) or 5.
class paho_ws_client {
public:
    paho_ws_client(int port, bool secure, int version, const std::string& id) : version_(version) {
        const std::string uri =
            std::string(secure ? "wss" : "ws") + "://127.0.0.1:" + std::to_string(port) + "/mqtt";
        MQTTClient_createOptions create = MQTTClient_createOptions_initializer;
        create.MQTTVersion = version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
        REQUIRE(MQTTClient_createWithOptions(&handle_, uri.c_str(), id.c_str(),
                                             MQTTCLIENT_PERSISTENCE_NONE, nullptr,
                                             &create) == MQTTCLIENT_SUCCESS);
        secure_ = secure;
    }
    ~paho_ws_client() {
        if (MQTTClient_isConnected(handle_)) {
            if (version_ == 5) {
                MQTTClient_disconnect5(handle_, 1000, MQTTREASONCODE_SUCCESS, nullptr);
            } else {
                MQTTClient_disconnect(handle_, 1000);
            }
        }
        MQTTClient_destroy(&handle_);
    }
    paho_ws_client(const paho_ws_client&) = delete;
    paho_ws_client& operator=(const paho_ws_client&) = delete;

    /// CONNECT (clean) and wait for CONNACK; over wss the server is verified against CA A and
    /// its host name (127.0.0.1). Returns the MQTTClient return code (v5: or the reason code).
    int connect() {
        MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
        ssl.trustStore = pki().ca_a.c_str();
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        if (version_ == 5) {
            MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer5_ws;
            opts.cleanstart = 1;
            opts.connectTimeout = 5;
            opts.ssl = secure_ ? &ssl : nullptr;
            MQTTResponse r = MQTTClient_connect5(handle_, &opts, nullptr, nullptr);
            const int rc = r.reasonCode;
            MQTTResponse_free(r);
            return rc;
        }
        MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer_ws;
        opts.cleansession = 1;
        opts.connectTimeout = 5;
        opts.MQTTVersion = MQTTVERSION_3_1_1;
        opts.ssl = secure_ ? &ssl : nullptr;
        return MQTTClient_connect(handle_, &opts);
    }
    /// SUBSCRIBE; true when the broker granted it.
    bool subscribe(const std::string& filter, int qos) {
        if (version_ == 5) {
            MQTTResponse r = MQTTClient_subscribe5(handle_, filter.c_str(), qos, nullptr, nullptr);
            const bool ok = r.reasonCode == qos;
            MQTTResponse_free(r);
            return ok;
        }
        return MQTTClient_subscribe(handle_, filter.c_str(), qos) == MQTTCLIENT_SUCCESS;
    }
    /// PUBLISH and wait until its QoS flow completes.
    bool publish(const std::string& topic, const std::string& payload, int qos) {
        MQTTClient_message msg = MQTTClient_message_initializer;
        std::string copy = payload;
        msg.payload = copy.data();
        msg.payloadlen = static_cast<int>(copy.size());
        msg.qos = qos;
        MQTTClient_deliveryToken token = 0;
        if (version_ == 5) {
            MQTTResponse r = MQTTClient_publishMessage5(handle_, topic.c_str(), &msg, &token);
            const bool ok = r.reasonCode == MQTTREASONCODE_SUCCESS;
            MQTTResponse_free(r);
            if (!ok) {
                return false;
            }
        } else if (MQTTClient_publishMessage(handle_, topic.c_str(), &msg, &token) !=
                   MQTTCLIENT_SUCCESS) {
            return false;
        }
        return qos == 0 ||
               MQTTClient_waitForCompletion(handle_, token, paho_wait_ms) == MQTTCLIENT_SUCCESS;
    }
    struct message {
        std::string topic;
        std::string payload;
        int qos = 0;
    };
    /// The next message, waiting up to paho_wait_ms.
    std::optional<message> receive() {
        char* topic = nullptr;
        int topic_len = 0;
        MQTTClient_message* msg = nullptr;
        if (MQTTClient_receive(handle_, &topic, &topic_len, &msg, paho_wait_ms) !=
                MQTTCLIENT_SUCCESS ||
            msg == nullptr) {
            MQTTClient_free(topic);
            return std::nullopt;
        }
        message m;
        m.topic = topic_len > 0 ? std::string(topic, static_cast<std::size_t>(topic_len)) : topic;
        m.payload.assign(static_cast<const char*>(msg->payload),
                         static_cast<std::size_t>(msg->payloadlen));
        m.qos = msg->qos;
        MQTTClient_freeMessage(&msg);
        MQTTClient_free(topic);
        return m;
    }
    bool connected() { return MQTTClient_isConnected(handle_) != 0; }

private:
    MQTTClient handle_ = nullptr;
    int version_;
    bool secure_ = false;
};

/// A subscriber and a publisher of hand-written MQTT 3.1.1 over WebSocket, opened before a bad
/// case and checked after it: the bad client closed only itself.
class ws_healthy_pair {
public:
    ws_healthy_pair(int port, const std::string& name) : sub_(port), pub_(port) {
        const auto s = sub_.connect_mqtt(name + "-ws-sub");
        REQUIRE(s);
        REQUIRE(s->reason == 0);
        const auto p = pub_.connect_mqtt(name + "-ws-pub");
        REQUIRE(p);
        REQUIRE(p->reason == 0);
        REQUIRE(sub_.send_frame(ws_binary, subscribe_packet(4, 1, "ws/health", 1)));
        const auto suback = sub_.read_packet();
        REQUIRE(suback);
        REQUIRE(packet_type(*suback) == pkt_suback);
        REQUIRE(suback->back() == 1);
    }
    /// A QoS 1 message goes through: PUBACK to the publisher, PUBLISH to the subscriber.
    void check(const std::string& text) {
        INFO("WebSocket pair still working: " << text);
        REQUIRE(pub_.send_frame(ws_binary, publish_packet(4, "ws/health", text, 1, false, ++id_)));
        const auto ack = pub_.read_packet();
        REQUIRE(ack);
        CHECK(packet_type(*ack) == pkt_puback);
        const auto p = sub_.read_packet();
        REQUIRE(p);
        const auto m = parse_publish(*p, 4);
        REQUIRE(m);
        CHECK(m->payload == text);
        REQUIRE(sub_.send_frame(ws_binary, ack_packet(pkt_puback, m->packet_id)));
        CHECK(sub_.server_frames_well_formed());
        CHECK(pub_.server_frames_well_formed());
    }

private:
    ws_client sub_;
    ws_client pub_;
    std::uint16_t id_ = 0;
};

/// A new WebSocket client connects on `port` and gets a message to itself.
void check_new_ws_client(int port, const std::string& name) {
    INFO("a new WebSocket client on port " << port << " (" << name << ")");
    ws_client c(port);
    const auto connack = c.connect_mqtt(name);
    REQUIRE(connack);
    CHECK(connack->reason == 0);
    REQUIRE(c.send(ws_frame(ws_binary, concat({subscribe_packet(4, 1, "ws/new/" + name, 0),
                                               publish_packet(4, "ws/new/" + name, name, 0)}))));
    const auto suback = c.read_packet();
    REQUIRE(suback);
    CHECK(packet_type(*suback) == pkt_suback);
    const auto p = c.read_packet();
    REQUIRE(p);
    const auto m = parse_publish(*p, 4);
    REQUIRE(m);
    CHECK(m->payload == name);
}

/// The one log line tern writes when it closes a WebSocket connection, waited for (the log is
/// written by the broker's worker, after the bytes the test saw).
bool log_mentions(const broker_process& broker, const std::string& text) {
    const auto deadline = clock::now() + wait_timeout;
    while (!contains(broker.log(), text)) {
        if (clock::now() >= deadline) {
            return false;
        }
        let_time_pass(10ms);
    }
    return true;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Paho C over ws:// and wss://

TEST_CASE("Paho C over ws:// and wss:// with MQTT 3.1.1 and 5 at QoS 0 1 2 and 300 KB",
          "[broker][websocket][paho]") {
    broker_process broker(with_listeners({ws_listener(), wss_listener()}));
    const bool secure = GENERATE(false, true);
    const int version = GENERATE(4, 5);
    CAPTURE(secure, version);
    const int port = broker.port(secure ? 2 : 1);
    const std::string tag = std::string(secure ? "wss" : "ws") + std::to_string(version);

    paho_ws_client sub(port, secure, version, "paho-" + tag + "-sub");
    paho_ws_client pub(port, secure, version, "paho-" + tag + "-pub");
    REQUIRE(sub.connect() == 0);
    REQUIRE(pub.connect() == 0);
    REQUIRE(sub.subscribe("ws/paho/#", 2));
    for (const int qos : {0, 1, 2}) {
        CAPTURE(qos);
        const std::string text = tag + " qos " + std::to_string(qos);
        REQUIRE(pub.publish("ws/paho/" + std::to_string(qos), text, qos));
        const auto m = sub.receive();
        REQUIRE(m);
        CHECK(m->topic == "ws/paho/" + std::to_string(qos));
        CHECK(m->payload == text);
        CHECK(m->qos == qos);
    }
    // 300 KB: far more than one TCP segment, TLS record or 16-bit frame length. Paho C 1.3.12
    // intermittently loses a large frame when another of its WebSocket connections in the
    // process is read at the same time (eclipse-paho/paho.mqtt.c#721; a capture of such a run
    // showed the broker's frames and acknowledgements intact), so each big message has one
    // Paho end, the other end libmosquitto on the plain listener.
    mqtt_client tcp("paho-" + tag + "-tcp");
    REQUIRE(tcp.connect(broker.port()) == 0);
    REQUIRE(tcp.subscribe("ws/big/up", 1) == 1);
    const std::string up = make_payload(300 * 1024, 18);
    REQUIRE(pub.publish("ws/big/up", up, 1));
    const auto at_tcp = tcp.next_message(std::chrono::milliseconds(paho_wait_ms));
    REQUIRE(at_tcp);
    CHECK(at_tcp->payload == up);
    const std::string down = make_payload(300 * 1024, 19);
    REQUIRE(tcp.publish("ws/paho/big", down, 1));
    const auto m = sub.receive();
    REQUIRE(m);
    CHECK(m->payload.size() == down.size());
    CHECK(m->payload == down);
    tcp.disconnect();
    CHECK(sub.connected());
    CHECK(pub.connected());
    CHECK(broker.alive());
}

TEST_CASE("WebSocket and plain TCP clients share one broker", "[broker][websocket][paho]") {
    broker_process broker(with_listeners({ws_listener(), wss_listener()}));
    const bool secure = GENERATE(false, true);
    CAPTURE(secure);
    const int ws_port = broker.port(secure ? 2 : 1);

    mqtt_client tcp("cross-tcp", MQTT_PROTOCOL_V5);
    REQUIRE(tcp.connect(broker.port()) == 0);
    REQUIRE(tcp.subscribe("ws/cross/to-tcp", 1) == 1);
    paho_ws_client ws(ws_port, secure, 4, "cross-ws");
    REQUIRE(ws.connect() == 0);
    REQUIRE(ws.subscribe("ws/cross/to-ws", 1));

    // WebSocket publisher -> plain TCP subscriber.
    const std::string up = make_payload(70'000, 1);
    REQUIRE(ws.publish("ws/cross/to-tcp", up, 1));
    const auto at_tcp = tcp.next_message();
    REQUIRE(at_tcp);
    CHECK(at_tcp->payload == up);
    CHECK(at_tcp->qos == 1);

    // Plain TCP publisher -> WebSocket subscriber.
    const std::string down = make_payload(70'000, 2);
    REQUIRE(tcp.publish("ws/cross/to-ws", down, 2));
    const auto at_ws = ws.receive();
    REQUIRE(at_ws);
    CHECK(at_ws->payload == down);
    CHECK(at_ws->qos == 1); // the subscription's maximum
    tcp.disconnect();
    CHECK(broker.alive());
}

// ---------------------------------------------------------------------------------------------
// The upgrade

TEST_CASE("the upgrade: 101 with the RFC's accept value and the offered MQTT subprotocol",
          "[broker][websocket][upgrade]") {
    broker_process broker(with_listeners({ws_listener()}));
    const int port = broker.port(1);
    struct offer {
        const char* path;
        const char* protocols;
        const char* chosen;
    };
    // Any path; the first MQTT subprotocol offered.
    const auto o = GENERATE(offer{"/mqtt", "mqtt", "mqtt"}, offer{"/", "mqttv3.1", "mqttv3.1"},
                            offer{"/some/where?x=1", "chat, mqtt", "mqtt"});
    CAPTURE(o.path, o.protocols);
    ws_client c(port);
    const auto r = c.upgrade(o.path, o.protocols);
    REQUIRE(r);
    INFO(r->status_line);
    CHECK(r->status == 101);
    CHECK(r->header("sec-websocket-accept") == ws_sample_accept);
    CHECK(r->header("sec-websocket-protocol") == o.chosen);
    REQUIRE(c.send_frame(ws_binary, connect_packet(4, "upgrade-ok")));
    const auto p = c.read_packet();
    REQUIRE(p);
    const auto connack = parse_connack(*p, false);
    REQUIRE(connack);
    CHECK(connack->reason == 0);
    CHECK(c.server_frames_well_formed());
}

TEST_CASE("the upgrade request and the first frames in one write", "[broker][websocket][upgrade]") {
    broker_process broker(with_listeners({ws_listener()}));
    ws_client c(broker.port(1));
    // Browser-style header values: a token list in Connection, mixed case in Upgrade, several
    // Sec-WebSocket-Protocol lines.
    const std::string request = "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: WebSocket\r\n"
                                "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " +
                                std::string(ws_sample_key) +
                                "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n"
                                "Sec-WebSocket-Protocol: mqtt\r\nOrigin: http://127.0.0.1\r\n\r\n";
    REQUIRE(c.send(concat({std::vector<std::uint8_t>(request.begin(), request.end()),
                           ws_frame(ws_binary, connect_packet(4, "pipelined")),
                           ws_frame(ws_binary, hex("c0 00"))})));
    const auto r = c.read_http_response();
    REQUIRE(r);
    INFO(r->status_line);
    CHECK(r->status == 101);
    CHECK(r->header("sec-websocket-protocol") == "mqtt");
    const auto connack = c.read_packet();
    REQUIRE(connack);
    CHECK(packet_type(*connack) == pkt_connack);
    const auto pingresp = c.read_packet();
    REQUIRE(pingresp);
    CHECK(packet_type(*pingresp) == pkt_pingresp);
}

// ---------------------------------------------------------------------------------------------
// Framing a real client never produces

TEST_CASE("one CONNECT split across frames and across a fragmented message",
          "[broker][websocket][framing]") {
    broker_process broker(with_listeners({ws_listener()}));
    const int port = broker.port(1);
    const auto connect = connect_packet(5, "split-connect");
    REQUIRE(connect.size() > 6);
    const std::vector<std::uint8_t> a(connect.begin(), connect.begin() + 3);
    const std::vector<std::uint8_t> b(connect.begin() + 3, connect.begin() + 7);
    const std::vector<std::uint8_t> c(connect.begin() + 7, connect.end());

    ws_client ws(port);
    const auto r = ws.upgrade();
    REQUIRE(r);
    REQUIRE(r->status == 101);
    SECTION("three binary messages, each written alone") {
        REQUIRE(ws.send(ws_frame(ws_binary, a)));
        REQUIRE(ws.send(ws_frame(ws_binary, b)));
        REQUIRE(ws.send(ws_frame(ws_binary, c)));
    }
    SECTION("one message: binary, continuation, continuation (FIN)") {
        REQUIRE(ws.send(ws_frame(ws_binary, a, false)));
        REQUIRE(ws.send(ws_frame(ws_continuation, b, false)));
        REQUIRE(ws.send(ws_frame(ws_continuation, c, true)));
    }
    SECTION("one message with a ping between its fragments") {
        // Control frames may be injected in the middle of a fragmented message (RFC 6455 §5.4).
        REQUIRE(ws.send(ws_frame(ws_binary, a, false)));
        REQUIRE(ws.send(ws_frame(ws_ping, std::string_view("mid"))));
        REQUIRE(ws.send(ws_frame(ws_continuation, concat({b, c}), true)));
        const auto pong = ws.read_control();
        REQUIRE(pong);
        CHECK(pong->opcode == ws_pong);
        CHECK(pong->payload == "mid");
    }
    SECTION("three frames written a byte at a time") {
        const auto bytes =
            concat({ws_frame(ws_binary, a, false), ws_frame(ws_continuation, b, false),
                    ws_frame(ws_continuation, c, true)});
        for (const std::uint8_t byte : bytes) {
            REQUIRE(ws.send(std::vector<std::uint8_t>{byte}));
        }
    }
    const auto p = ws.read_packet();
    REQUIRE(p);
    const auto connack = parse_connack(*p, true);
    REQUIRE(connack);
    CHECK(connack->reason == 0);
    CHECK(ws.server_frames_well_formed());
}

TEST_CASE("CONNECT, SUBSCRIBE and PUBLISH in one frame", "[broker][websocket][framing]") {
    broker_process broker(with_listeners({ws_listener()}));
    const int port = broker.port(1);
    ws_client ws(port);
    const auto r = ws.upgrade();
    REQUIRE(r);
    REQUIRE(r->status == 101);
    REQUIRE(ws.send(ws_frame(
        ws_binary, concat({connect_packet(4, "one-frame"), subscribe_packet(4, 1, "ws/one", 1),
                           publish_packet(4, "ws/one", "in one frame", 1, false, 2)}))));
    const auto connack = ws.read_packet();
    REQUIRE(connack);
    CHECK(packet_type(*connack) == pkt_connack);
    const auto suback = ws.read_packet();
    REQUIRE(suback);
    CHECK(packet_type(*suback) == pkt_suback);
    // The PUBACK and the message to ourselves, in either order.
    bool acked = false;
    std::optional<raw_publish> echoed;
    for (int i = 0; i < 2; ++i) {
        const auto p = ws.read_packet();
        REQUIRE(p);
        if (packet_type(*p) == pkt_puback) {
            acked = true;
        } else {
            echoed = parse_publish(*p, 4);
        }
    }
    CHECK(acked);
    REQUIRE(echoed);
    CHECK(echoed->topic == "ws/one");
    CHECK(echoed->payload == "in one frame");
    CHECK(ws.server_frames_well_formed());
}

TEST_CASE("a 300 KB PUBLISH in one client frame (64-bit length) and back",
          "[broker][websocket][framing]") {
    broker_process broker(with_listeners({ws_listener()}));
    const int port = broker.port(1);
    ws_client sub(port);
    REQUIRE(sub.connect_mqtt("big-sub"));
    REQUIRE(sub.send_frame(ws_binary, subscribe_packet(4, 1, "ws/big", 0)));
    const auto suback = sub.read_packet();
    REQUIRE(suback);
    REQUIRE(packet_type(*suback) == pkt_suback);

    ws_client pub(port);
    REQUIRE(pub.connect_mqtt("big-pub"));
    const std::string big = make_payload(300 * 1024, 7);
    const auto frames_before = sub.frames_read();
    REQUIRE(pub.send_frame(ws_binary, publish_packet(4, "ws/big", big, 0)));
    const auto p = sub.read_packet(20s); // Mosquitto: about 7 s
    REQUIRE(p);
    const auto m = parse_publish(*p, 4);
    REQUIRE(m);
    CHECK(m->payload == big);
    CHECK(sub.server_frames_well_formed());
    // One write, one binary frame (tern; Mosquitto 2.0.11 too).
    CHECK(sub.frames_read() - frames_before == 1);
}

// ---------------------------------------------------------------------------------------------
// Control frames

TEST_CASE("a ping is answered with a pong carrying the same payload",
          "[broker][websocket][control]") {
    broker_process broker(with_listeners({ws_listener()}));
    const int port = broker.port(1);
    ws_client ws(port);
    REQUIRE(ws.connect_mqtt("pinger"));
    for (const std::string& payload : {std::string("hello ping"), std::string(),
                                       std::string(125, 'p'), std::string("\x00\xff\x01", 3)}) {
        CAPTURE(payload.size());
        REQUIRE(ws.send(ws_frame(ws_ping, payload)));
        const auto pong = ws.read_control();
        REQUIRE(pong);
        CHECK(pong->opcode == ws_pong);
        CHECK(pong->fin);
        CHECK(pong->payload == payload);
    }
    // An unsolicited pong needs no answer, and MQTT carries on.
    REQUIRE(ws.send(ws_frame(ws_pong, std::string_view("unsolicited"))));
    REQUIRE(ws.send_frame(ws_binary, hex("c0 00"))); // PINGREQ
    const auto pingresp = ws.read_packet();
    REQUIRE(pingresp);
    CHECK(packet_type(*pingresp) == pkt_pingresp);
    CHECK(ws.server_frames_well_formed());
}

TEST_CASE("a close frame is echoed and the connection ends", "[broker][websocket][control]") {
    broker_process broker(with_listeners({ws_listener()}));
    const int port = broker.port(1);
    ws_healthy_pair healthy(port, "close");
    ws_client ws(port);
    REQUIRE(ws.connect_mqtt("closer"));
    REQUIRE(ws.send(ws_frame(ws_close, std::string_view("\x03\xe8"
                                                        "bye",
                                                        5)))); // 1000
    const auto echo = ws.read_control();
    REQUIRE(echo);
    CHECK(echo->opcode == ws_close);
    CHECK(echo->close_code() == 1000);
    CHECK(ws.wait_closed());
    healthy.check("after a close frame");
    check_new_ws_client(port, "after-close");
}

namespace {

/// The broker ended `c`: tern sends a close frame (1000) first; Mosquitto 2.0.11 closes the TCP
/// connection without one. Then EOF.
void check_ended_by_broker(ws_client& c) {
    CHECK_FALSE(c.read_packet()); // no more MQTT
    const auto close = c.read_control();
    if (against_mosquitto()) {
        CHECK_FALSE(close);
    } else {
        REQUIRE(close);
        CHECK(close->opcode == ws_close);
        CHECK(close->close_code() == 1000);
    }
    CHECK(c.wait_closed());
}

} // namespace

TEST_CASE("when the broker ends a connection it sends a close frame first",
          "[broker][websocket][control]") {
    broker_process broker(with_listeners({ws_listener()}));
    const int port = broker.port(1);
    ws_healthy_pair healthy(port, "broker-close");
    SECTION("session takeover by the same client id") {
        ws_client first(port);
        REQUIRE(first.connect_mqtt("taken-over"));
        ws_client second(port);
        const auto connack = second.connect_mqtt("taken-over");
        REQUIRE(connack);
        CHECK(connack->reason == 0);
        check_ended_by_broker(first);
    }
    SECTION("MQTT DISCONNECT from the client") {
        ws_client c(port);
        REQUIRE(c.connect_mqtt("disconnects"));
        REQUIRE(c.send_frame(ws_binary, hex("e0 00")));
        check_ended_by_broker(c);
    }
    healthy.check("after the broker closed one");
}

TEST_CASE("a ping while the broker writes a long frame is answered after that frame",
          "[broker][websocket][control]") {
    broker_process broker(with_listeners({ws_listener()}));
    const int port = broker.port(1);
    // A small receive window: the broker's 4 MB frame (more than the kernel's largest send
    // buffer) stays half-written while the ping comes. Mosquitto writes WebSocket data at about
    // 40 KB/s: 400 KB keep it mid-frame for seconds.
    ws_client sub(port, 4096);
    REQUIRE(sub.connect_mqtt("mid-frame-sub"));
    REQUIRE(sub.send_frame(ws_binary, subscribe_packet(4, 1, "ws/long", 0)));
    const auto suback = sub.read_packet();
    REQUIRE(suback);
    ws_client pub(port);
    REQUIRE(pub.connect_mqtt("mid-frame-pub"));
    const std::string big = make_payload(against_mosquitto() ? 400 * 1024 : 4 * 1024 * 1024, 9);
    REQUIRE(pub.send_frame(ws_binary, publish_packet(4, "ws/long", big, 0)));
    REQUIRE(sub.wait_readable(20s)); // the frame has started
    REQUIRE(sub.send(ws_frame(ws_ping, std::string_view("during"))));
    // Frames parse one after another: the pong did not land inside the binary frame.
    const auto p = sub.read_packet(30s);
    REQUIRE(p);
    const auto m = parse_publish(*p, 4);
    REQUIRE(m);
    CHECK(m->payload == big);
    const auto pong = sub.read_control(10s);
    REQUIRE(pong);
    CHECK(pong->opcode == ws_pong);
    CHECK(pong->payload == "during");
    CHECK(sub.server_frames_well_formed());
}

// ---------------------------------------------------------------------------------------------
// Bad frames

// Mosquitto 2.0.11 reads a text frame as MQTT data (it answers the PINGREQ inside), where MQTT
// [MQTT-6.0.0-1] says close.
TEST_CASE("a text frame is closed with 1003", "[broker][websocket][bad_input][tern]") {
    TERN_ONLY_TEST("Mosquitto accepts text frames");
    broker_process broker(with_listeners({ws_listener()}));
    const int port = broker.port(1);
    ws_healthy_pair healthy(port, "text");
    ws_client ws(port);
    REQUIRE(ws.connect_mqtt("texter"));
    REQUIRE(ws.send(ws_frame(ws_text, as_string(hex("c0 00")))));
    const auto close = ws.read_control();
    REQUIRE(close);
    CHECK(close->opcode == ws_close);
    CHECK(close->close_code() == 1003);
    CHECK(ws.wait_closed());
    CHECK(log_mentions(broker, "text frame"));
    healthy.check("after a text frame");
    check_new_ws_client(port, "after-text");
}

namespace {

struct bad_frame {
    const char* name;
    std::vector<std::uint8_t> bytes;
    const char* log_text; ///< in tern's log line
};

/// Each of `cases` on a new connection past CONNECT: a close frame with 1002, then the broker
/// closes the TCP connection; the pairs opened before keep working.
void check_framing_errors(const broker_process& broker, int port, const std::string& name,
                          const std::vector<bad_frame>& cases) {
    ws_healthy_pair healthy(port, name);
    healthy_pair plain(broker.port(), name + "-plain");
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const auto& c = cases[i];
        INFO(c.name);
        ws_client ws(port);
        REQUIRE(ws.connect_mqtt(name + "-" + std::to_string(i)));
        REQUIRE(ws.send(c.bytes));
        const auto close = ws.read_control();
        REQUIRE(close);
        CHECK(close->opcode == ws_close);
        CHECK(close->close_code() == 1002);
        // Mosquitto (libwebsockets) closes the TCP connection 5 s after its close frame, even
        // when the client answers it; tern at once.
        CHECK(ws.wait_closed(against_mosquitto() ? 10s : wait_timeout));
        if (!against_mosquitto()) {
            CHECK(log_mentions(broker, c.log_text));
        }
        healthy.check(std::string("after ") + c.name);
    }
    plain.check("after the framing errors");
    check_new_ws_client(port, name + "-after");
}

} // namespace

TEST_CASE("framing errors are closed with 1002, others unaffected",
          "[broker][websocket][bad_input]") {
    broker_process broker(with_listeners({ws_listener()}));
    const std::string pingreq = as_string(hex("c0 00"));
    check_framing_errors(
        broker, broker.port(1), "framing",
        {
            {"reserved bit RSV1", ws_frame(ws_binary, pingreq, true, true, 4), "reserved bits"},
            {"reserved opcode 0x3", ws_frame(0x3, pingreq), "reserved opcode"},
            {"reserved opcode 0xB", ws_frame(0xB, pingreq), "reserved opcode"},
            {"fragmented ping", ws_frame(ws_ping, std::string_view("x"), false), "fragmented"},
            {"continuation without a message", ws_frame(ws_continuation, pingreq), "continuation"},
            {"binary frame inside a fragmented message",
             concat({ws_frame(ws_binary, std::string_view("\xc0"), false),
                     ws_frame(ws_binary, std::string_view("\x00", 1))}),
             "inside a fragmented"},
        });
    CHECK(broker.alive());
}

// Mosquitto 2.0.11 takes an unmasked client frame as data (it answers the PINGREQ inside), and
// closes a 126-byte ping without a close frame.
TEST_CASE("an unmasked frame and an over-long ping are closed with 1002",
          "[broker][websocket][bad_input][tern]") {
    TERN_ONLY_TEST("Mosquitto accepts unmasked frames and sends no 1002 for long pings");
    broker_process broker(with_listeners({ws_listener()}));
    const std::string pingreq = as_string(hex("c0 00"));
    check_framing_errors(
        broker, broker.port(1), "framing-tern",
        {
            {"unmasked client frame", ws_frame(ws_binary, pingreq, true, false), "unmasked"},
            {"126-byte ping", ws_frame(ws_ping, std::string(126, 'x')), "over 125"},
            {"64-bit length with the top bit set", hex("82 ff 80 00 00 00 00 00 00 00 37 fa 21 3d"),
             "64-bit"},
        });
    CHECK(broker.alive());
}

// ---------------------------------------------------------------------------------------------
// Bad upgrade requests

// Mosquitto 2.0.11 closes an upgrade offering only unknown subprotocols without an answer, and
// accepts one offering none (101 without Sec-WebSocket-Protocol), then ignores the CONNECT.
TEST_CASE("an upgrade without an MQTT subprotocol is refused",
          "[broker][websocket][upgrade][bad_input]") {
    broker_process broker(with_listeners({ws_listener()}));
    const int port = broker.port(1);
    ws_healthy_pair healthy(port, "subprotocol");
    for (const char* protocols : {"", "chat", "mqttv5, wamp"}) {
        CAPTURE(protocols);
        if (against_mosquitto() && *protocols == '\0') {
            continue; // Mosquitto upgrades it (see above)
        }
        ws_client ws(port);
        const auto r = ws.upgrade("/mqtt", protocols);
        if (against_mosquitto()) {
            CHECK_FALSE(r); // closed without an answer
        } else {
            REQUIRE(r);
            CHECK(r->status_line == "HTTP/1.1 400 Bad Request");
            CHECK(r->header("content-type") == "text/plain");
            CHECK(contains(r->body, "Sec-WebSocket-Protocol must offer mqtt or mqttv3.1"));
        }
        CHECK(ws.wait_closed());
        healthy.check(std::string("after subprotocol '") + protocols + "'");
    }
    if (!against_mosquitto()) {
        CHECK(log_mentions(broker, "no MQTT subprotocol"));
    }
    check_new_ws_client(port, "after-subprotocol");
}

// Mosquitto 2.0.11 without http_dir closes a plain HTTP request without an answer.
TEST_CASE("a plain HTTP GET without upgrade gets 426", "[broker][websocket][upgrade][bad_input]") {
    broker_process broker(with_listeners({ws_listener()}));
    const int port = broker.port(1);
    ws_healthy_pair healthy(port, "plain-get");
    ws_client ws(port);
    REQUIRE(ws.send(std::string_view("GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")));
    const auto r = ws.read_http_response();
    if (against_mosquitto()) {
        CHECK_FALSE(r);
    } else {
        REQUIRE(r);
        CHECK(r->status_line == "HTTP/1.1 426 Upgrade Required");
        CHECK(r->header("upgrade") == "websocket");
        CHECK(r->header("sec-websocket-version") == "13");
        CHECK(contains(r->body, "send a WebSocket upgrade request"));
        CHECK(log_mentions(broker, "WebSocket upgrade refused"));
    }
    CHECK(ws.wait_closed());
    healthy.check("after a plain GET");
    check_new_ws_client(port, "after-plain-get");
}

TEST_CASE("a request head over websockets_headers_size gets 431",
          "[broker][websocket][upgrade][bad_input]") {
    broker_settings settings = with_listeners({ws_listener()});
    settings.extra_config.push_back("websockets_headers_size 4096");
    broker_process broker(settings);
    const int port = broker.port(1);
    ws_healthy_pair healthy(port, "headers-size");
    {
        ws_client ws(port);
        // A 20 KB header (ignored by any server that accepted it), in one request.
        const std::string padding = "X-Padding: " + std::string(20 * 1024, 'a') + "\r\n";
        ws.send(ws_upgrade_request("/mqtt", "mqtt", padding));
        const auto r = ws.read_http_response();
        if (against_mosquitto()) {
            // Mosquitto closes an oversized request head without an answer.
            if (r) {
                CHECK(r->status == 431);
            }
        } else {
            REQUIRE(r);
            CHECK(r->status_line == "HTTP/1.1 431 Request Header Fields Too Large");
            CHECK(log_mentions(broker, "request headers over 4096 bytes"));
        }
        CHECK(ws.wait_closed());
    }
    healthy.check("after oversized headers");
    // A request just under the limit still upgrades.
    {
        ws_client ws(port);
        const std::string padding = "X-Padding: " + std::string(2 * 1024, 'a') + "\r\n";
        REQUIRE(ws.send(ws_upgrade_request("/mqtt", "mqtt", padding)));
        const auto r = ws.read_http_response();
        REQUIRE(r);
        CHECK(r->status == 101);
    }
    check_new_ws_client(port, "after-headers-size");
}

// Mosquitto has no connect timeout of its own (libwebsockets closes a stalled handshake only
// after its own timeout, tens of seconds).
TEST_CASE("a client that never finishes the upgrade is closed after connect_timeout",
          "[broker][websocket][bad_input][tern]") {
    TERN_ONLY_TEST("Mosquitto has no connect timeout");
    broker_settings settings = with_listeners({ws_listener()});
    settings.extra_config.push_back("connect_timeout 1"); // seconds
    broker_process broker(settings);
    const int port = broker.port(1);
    ws_healthy_pair healthy(port, "stalled");
    ws_client silent(port);
    ws_client half(port);
    REQUIRE(half.send(std::string_view("GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: ")));
    // Upgraded, but no CONNECT within the timeout: closed as well.
    ws_client no_connect(port);
    const auto r = no_connect.upgrade();
    REQUIRE(r);
    REQUIRE(r->status == 101);
    const auto start = clock::now();
    CHECK(silent.wait_closed(5s));
    CHECK(half.wait_closed(5s));
    CHECK(no_connect.wait_closed(5s));
    CHECK(clock::now() - start < 4s);
    healthy.check("after stalled upgrades");
    check_new_ws_client(port, "after-stalled");
    CHECK(broker.alive());
}

// Mosquitto 2.0.11 (Debian 12, libwebsockets built in) as seen by these tests, besides what
// they check against both brokers:
// - a text frame is MQTT data to it (no 1003), and so is an unmasked client frame (no 1002);
// - a framing error gets a close frame 1002 with a short reason ("rsv bits", "bad opc",
//   "frag ctl", "bad cont"), then the TCP connection stays open about 5 s, even when the client
//   answers the close; a 126-byte ping is closed without a close frame;
// - an upgrade offering only unknown subprotocols, a plain GET (no http_dir) and a request head
//   over websockets_headers_size are closed without an HTTP answer (no 400, 426, 431); one
//   offering no subprotocol gets a 101 without Sec-WebSocket-Protocol and its CONNECT is ignored;
// - when it ends a connection (takeover, DISCONNECT) it sends no close frame;
// - it writes WebSocket data at about 40 KB/s (300 KB in about 7 s; still one binary frame);
// - it has no connect timeout for the upgrade.
