// TLS listeners: libmosquitto (3.1.1 and 5), mosquitto_pub / mosquitto_sub and Paho C over TLS;
// mutual TLS against a CA bundle, a CA directory and a CRL; tls_version; bad input on TLS and
// plain ports; and tern's own SNI certificates, ALPN and certificate reload on SIGHUP. The
// certificates come from the test PKI (pki.hpp). Every broker has its plain first listener and
// the TLS listeners of broker_settings::listeners.

#include "healthy_pair.hpp"
#include "pki.hpp"
#include "raw_packets.hpp"
#include "support.hpp"

#include <MQTTClient.h>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace tern::test;

namespace {

/// The directive lines of a TLS listener serving the `localhost` / 127.0.0.1 certificate, and
/// `more` after them.
std::string tls_listener(const std::string& more = {}) {
    return "certfile " + pki().server.cert + "\nkeyfile " + pki().server.key + "\n" + more;
}

/// A listener requiring a client certificate, trusted through `trust` ("cafile F" or
/// "capath D"), and `more`.
std::string mtls_listener(const std::string& trust, const std::string& more = {}) {
    return tls_listener(trust + "\nrequire_certificate true\n" + more);
}

broker_settings with_listeners(std::vector<std::string> blocks) {
    broker_settings s;
    s.listeners = std::move(blocks);
    return s;
}

/// A QoS 1 message from a fresh TLS publisher reaches a fresh TLS subscriber on `port`; both
/// present `cert` when it is set. Run after each misbehaving connection: it must have closed
/// only itself.
void check_tls_round_trip(int port, const std::string& name, const cert_pair& cert = {}) {
    INFO("healthy TLS round trip on port " << port << " (" << name << ")");
    mqtt_client sub(name + "-sub", MQTT_PROTOCOL_V5);
    mqtt_client pub(name + "-pub");
    sub.tls(pki().ca_a, cert.cert, cert.key);
    pub.tls(pki().ca_a, cert.cert, cert.key);
    REQUIRE(sub.connect(port) == 0);
    REQUIRE(pub.connect(port) == 0);
    REQUIRE(sub.subscribe("tls/health", 1) == 1);
    REQUIRE(pub.publish("tls/health", name, 1));
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->payload == name);
    sub.disconnect();
    pub.disconnect();
}

/// `openssl s_client` to 127.0.0.1:`port`, trusting CA A, failing on a verification error,
/// with stdin at EOF (it closes after the handshake), plus `extra` arguments.
command_result s_client(int port, std::vector<std::string> extra) {
    std::vector<std::string> args{"openssl",
                                  "s_client",
                                  "-connect",
                                  "127.0.0.1:" + std::to_string(port),
                                  "-CAfile",
                                  pki().ca_a,
                                  "-verify_return_error"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_command(args, 10s);
}

/// A Paho C (MQTTClient, synchronous) connection over TLS. The library is paho-mqtt3cs.
struct paho_tls_client {
    paho_tls_client(int port, const char* id) {
        const std::string uri = "ssl://127.0.0.1:" + std::to_string(port);
        REQUIRE(MQTTClient_create(&handle, uri.c_str(), id, MQTTCLIENT_PERSISTENCE_NONE, nullptr) ==
                MQTTCLIENT_SUCCESS);
    }
    ~paho_tls_client() {
        if (MQTTClient_isConnected(handle)) {
            MQTTClient_disconnect(handle, 1000);
        }
        MQTTClient_destroy(&handle);
    }
    paho_tls_client(const paho_tls_client&) = delete;
    paho_tls_client& operator=(const paho_tls_client&) = delete;

    /// MQTT 3.1.1 CONNECT over TLS trusting `cafile`, the host name (127.0.0.1) verified,
    /// presenting `cert` when set.
    int connect(const std::string& cafile, const cert_pair& cert = {}) {
        MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
        ssl.trustStore = cafile.c_str();
        ssl.keyStore = cert.cert.empty() ? nullptr : cert.cert.c_str();
        ssl.privateKey = cert.key.empty() ? nullptr : cert.key.c_str();
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
        opts.cleansession = 1;
        opts.connectTimeout = 5;
        opts.MQTTVersion = MQTTVERSION_3_1_1;
        opts.ssl = &ssl;
        return MQTTClient_connect(handle, &opts);
    }
    MQTTClient handle = nullptr;
};

} // namespace

// ---------------------------------------------------------------------------------------------
// Clients over TLS

TEST_CASE("libmosquitto publishes and subscribes over TLS, MQTT 3.1.1 and 5", "[broker][tls]") {
    broker_process broker(with_listeners({tls_listener("cafile " + pki().ca_a)}));
    const int tls_port = broker.port(1);
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    const int qos = GENERATE(0, 1);
    CAPTURE(version, qos);

    mqtt_client sub("tls-sub", version);
    mqtt_client pub("tls-pub", version);
    sub.tls(pki().ca_a);
    pub.tls(pki().ca_a);
    REQUIRE(sub.connect(tls_port) == 0);
    REQUIRE(pub.connect(tls_port) == 0);
    REQUIRE(sub.subscribe("tls/rt", qos) == qos);
    // A plain subscriber on the first listener: both listeners share one broker.
    mqtt_client plain("plain-sub", version);
    REQUIRE(plain.connect(broker.port()) == 0);
    REQUIRE(plain.subscribe("tls/rt", qos) == qos);

    const std::string payload = make_payload(20'000, 3); // more than one TLS record
    REQUIRE(pub.publish("tls/rt", payload, qos));
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->topic == "tls/rt");
    CHECK(m->payload == payload);
    CHECK(m->qos == qos);
    const auto p = plain.next_message();
    REQUIRE(p);
    CHECK(p->payload == payload);

    // And back: plain publisher, TLS subscriber.
    REQUIRE(plain.publish("tls/rt", "from plain", qos));
    const auto back = sub.next_message();
    REQUIRE(back);
    CHECK(back->payload == "from plain");
    sub.disconnect();
    pub.disconnect();
    CHECK(broker.alive());
}

TEST_CASE("a TLS client refuses a server certificate it cannot verify", "[broker][tls]") {
    broker_process broker(with_listeners({tls_listener()}));
    const int tls_port = broker.port(1);
    // Trusting only the untrusted CA: the broker's certificate (CA A) fails verification.
    mqtt_client wrong_ca("tls-wrong-ca");
    wrong_ca.tls(pki().ca_untrusted);
    CHECK(wrong_ca.connect(tls_port) != 0);
    CHECK_FALSE(wrong_ca.connected());
    // A TLS client on the plain listener: no handshake.
    mqtt_client tls_on_plain("tls-on-plain");
    tls_on_plain.tls(pki().ca_a);
    CHECK(tls_on_plain.connect(broker.port()) != 0);
    CHECK_FALSE(tls_on_plain.connected());
    check_tls_round_trip(tls_port, "after-wrong-ca");
    CHECK(broker.alive());
}

TEST_CASE("mosquitto_pub and mosquitto_sub over TLS and mutual TLS", "[broker][tls][cli]") {
    const auto& p = pki();
    broker_process broker(with_listeners({tls_listener(), mtls_listener("cafile " + p.ca_bundle)}));
    const int tls_port = broker.port(1);
    const int mtls_port = broker.port(2);
    // --tls-version is the client's lowest version (libmosquitto 2.0): either negotiates 1.3.
    const std::string tls_version = GENERATE("tlsv1.2", "tlsv1.3");
    CAPTURE(tls_version);

    // A live message from mosquitto_pub to a libmosquitto subscriber.
    mqtt_client sub("cli-sub");
    sub.tls(p.ca_a);
    REQUIRE(sub.connect(tls_port) == 0);
    REQUIRE(sub.subscribe("tls/cli/live", 1) == 1);
    const auto pub_live =
        run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(tls_port), "--cafile",
                     p.ca_a, "--tls-version", tls_version, "-q", "1", "-t", "tls/cli/live", "-m",
                     "live " + tls_version});
    INFO(pub_live.output);
    REQUIRE(pub_live.exit_code == 0);
    const auto live = sub.next_message();
    REQUIRE(live);
    CHECK(live->payload == "live " + tls_version);

    // Retained through mutual TLS, read back by mosquitto_sub (device-a, CA A) and by
    // mosquitto_sub with device-b (CA B) on the same bundle-trusting listener.
    const auto pub_retained = run_command({"mosquitto_pub",
                                           "-h",
                                           "127.0.0.1",
                                           "-p",
                                           std::to_string(mtls_port),
                                           "--cafile",
                                           p.ca_a,
                                           "--cert",
                                           p.device_a.cert,
                                           "--key",
                                           p.device_a.key,
                                           "--tls-version",
                                           tls_version,
                                           "-q",
                                           "1",
                                           "-r",
                                           "-t",
                                           "tls/cli/retained",
                                           "-m",
                                           "kept " + tls_version});
    INFO(pub_retained.output);
    REQUIRE(pub_retained.exit_code == 0);
    for (const cert_pair* device : {&p.device_a, &p.device_b}) {
        const auto got = run_command({"mosquitto_sub",
                                      "-h",
                                      "127.0.0.1",
                                      "-p",
                                      std::to_string(mtls_port),
                                      "--cafile",
                                      p.ca_a,
                                      "--cert",
                                      device->cert,
                                      "--key",
                                      device->key,
                                      "--tls-version",
                                      tls_version,
                                      "-t",
                                      "tls/cli/retained",
                                      "-C",
                                      "1",
                                      "-W",
                                      "5",
                                      "-v"});
        INFO(device->cert << ": " << got.output);
        CHECK(got.exit_code == 0);
        CHECK(got.output == "tls/cli/retained kept " + tls_version + "\n");
    }

    // Without a client certificate the mutual-TLS listener refuses mosquitto_pub.
    const auto refused = run_command(
        {"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(mtls_port), "--cafile", p.ca_a,
         "--tls-version", tls_version, "-q", "1", "-t", "tls/cli/refused", "-m", "no"});
    INFO(refused.output);
    CHECK_FALSE(refused.timed_out);
    CHECK(refused.exit_code != 0);
    CHECK(sub.no_message_within(0ms));
    CHECK(broker.alive());
}

TEST_CASE("Paho C over TLS and mutual TLS", "[broker][tls][paho]") {
    const auto& p = pki();
    broker_process broker(with_listeners({tls_listener(), mtls_listener("cafile " + p.ca_bundle)}));
    const bool mutual = GENERATE(false, true);
    CAPTURE(mutual);
    const int port = broker.port(mutual ? 2 : 1);

    paho_tls_client paho(port, "paho-tls");
    REQUIRE(paho.connect(p.ca_a, mutual ? p.device_b : cert_pair{}) == MQTTCLIENT_SUCCESS);
    REQUIRE(MQTTClient_subscribe(paho.handle, "tls/paho/in", 1) == MQTTCLIENT_SUCCESS);

    mqtt_client mosq("mosq-tls");
    if (mutual) {
        mosq.tls(p.ca_a, p.device_a.cert, p.device_a.key);
    } else {
        mosq.tls(p.ca_a);
    }
    REQUIRE(mosq.connect(port) == 0);
    REQUIRE(mosq.subscribe("tls/paho/out", 1) == 1);

    // libmosquitto -> broker -> Paho
    REQUIRE(mosq.publish("tls/paho/in", "to paho", 1));
    char* topic = nullptr;
    int topic_len = 0;
    MQTTClient_message* msg = nullptr;
    REQUIRE(MQTTClient_receive(paho.handle, &topic, &topic_len, &msg, 5000) == MQTTCLIENT_SUCCESS);
    REQUIRE(msg != nullptr);
    CHECK(std::string(topic) == "tls/paho/in");
    CHECK(std::string(static_cast<const char*>(msg->payload),
                      static_cast<std::size_t>(msg->payloadlen)) == "to paho");
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);

    // Paho -> broker -> libmosquitto
    MQTTClient_message out = MQTTClient_message_initializer;
    std::string text = "from paho";
    out.payload = text.data();
    out.payloadlen = static_cast<int>(text.size());
    out.qos = 1;
    MQTTClient_deliveryToken token = 0;
    REQUIRE(MQTTClient_publishMessage(paho.handle, "tls/paho/out", &out, &token) ==
            MQTTCLIENT_SUCCESS);
    CHECK(MQTTClient_waitForCompletion(paho.handle, token, 5000) == MQTTCLIENT_SUCCESS);
    const auto m = mosq.next_message();
    REQUIRE(m);
    CHECK(m->payload == text);

    // Paho without a client certificate on the mutual-TLS listener is refused.
    if (mutual) {
        paho_tls_client anonymous(port, "paho-no-cert");
        CHECK(anonymous.connect(p.ca_a) != MQTTCLIENT_SUCCESS);
        CHECK_FALSE(MQTTClient_isConnected(anonymous.handle));
    }
    mosq.disconnect();
}

// ---------------------------------------------------------------------------------------------
// Mutual TLS

namespace {

/// Each accepted device connects and exchanges a message; each refused one fails to connect,
/// and after each refusal `healthy` still gets through the same listener.
void check_mtls(int port, const std::vector<std::pair<const char*, const cert_pair*>>& accepted,
                const std::vector<std::pair<const char*, const cert_pair*>>& refused,
                const cert_pair& healthy) {
    for (const auto& [name, cert] : accepted) {
        INFO("accepted: " << name);
        check_tls_round_trip(port, name, *cert);
    }
    for (const auto& [name, cert] : refused) {
        INFO("refused: " << name);
        mqtt_client c(std::string("refused-") + name);
        if (cert == nullptr) {
            c.tls(pki().ca_a); // no client certificate
        } else {
            c.tls(pki().ca_a, cert->cert, cert->key);
        }
        CHECK(c.connect(port) != 0);
        CHECK_FALSE(c.connected());
        check_tls_round_trip(port, std::string("after-") + name, healthy);
    }
}

} // namespace

TEST_CASE("mutual TLS against a CA bundle (cafile)", "[broker][tls][mtls]") {
    const auto& p = pki();
    broker_process broker(with_listeners({mtls_listener("cafile " + p.ca_bundle)}));
    check_mtls(broker.port(1), {{"device-a", &p.device_a}, {"device-b", &p.device_b}},
               {{"no-cert", nullptr}, {"stranger", &p.stranger}, {"expired", &p.expired}},
               p.device_a);
    CHECK(broker.alive());
}

TEST_CASE("mutual TLS against a CA directory (capath)", "[broker][tls][mtls]") {
    const auto& p = pki();
    broker_process broker(with_listeners({mtls_listener("capath " + p.capath)}));
    check_mtls(broker.port(1), {{"device-a", &p.device_a}, {"device-b", &p.device_b}},
               {{"no-cert", nullptr}, {"stranger", &p.stranger}, {"expired", &p.expired}},
               p.device_b);
    CHECK(broker.alive());
}

// With `crlfile`, OpenSSL checks the leaf against its issuer's CRL and refuses a client whose
// issuer has no CRL loaded (Mosquitto 2.0: device-b of CA B fails "certificate verify failed"
// on a bundle listener with only CA A's CRL), so this listener trusts CA A alone.
TEST_CASE("mutual TLS with a CRL refuses a revoked certificate", "[broker][tls][mtls]") {
    const auto& p = pki();
    broker_process broker(
        with_listeners({mtls_listener("cafile " + p.ca_a, "crlfile " + p.crl_a)}));
    check_mtls(broker.port(1), {{"device-a", &p.device_a}},
               {{"revoked", &p.revoked}, {"expired", &p.expired}, {"stranger", &p.stranger}},
               p.device_a);
    // Without the crlfile the same certificate is accepted: the CRL made the difference.
    broker_process no_crl(with_listeners({mtls_listener("cafile " + p.ca_a)}));
    check_tls_round_trip(no_crl.port(1), "revoked-without-crl", p.revoked);
    CHECK(broker.alive());
}

// Mosquitto 2.0 semantics (mosquitto.conf(5)): with `require_certificate false` (the default)
// the listener does not ask for a client certificate (SSL_VERIFY_NONE), so one from an
// untrusted CA, or an expired one, is never looked at.
TEST_CASE("without require_certificate a client certificate is not checked", "[broker][tls]") {
    const auto& p = pki();
    broker_process broker(with_listeners({tls_listener("cafile " + p.ca_a)}));
    check_tls_round_trip(broker.port(1), "stranger-unchecked", p.stranger);
    check_tls_round_trip(broker.port(1), "expired-unchecked", p.expired);
    check_tls_round_trip(broker.port(1), "no-cert");
}

// ---------------------------------------------------------------------------------------------
// Versions

// Mosquitto 2.0 (mosquitto.conf(5), changelog 2.0.0 and 2.0.10): `tls_version` is the lowest
// version the listener accepts (1.6 and earlier: the only one); unset, TLS 1.2 and 1.3.
TEST_CASE("tls_version is the lowest TLS version a listener accepts", "[broker][tls]") {
    broker_process broker(with_listeners({tls_listener("tls_version tlsv1.3"),
                                          tls_listener("tls_version tlsv1.2"), tls_listener()}));
    const int v13 = broker.port(1);
    const int v12 = broker.port(2);
    const int unset = broker.port(3);

    const auto old = s_client(v13, {"-tls1_2"});
    INFO(old.output);
    CHECK_FALSE(old.timed_out);
    CHECK(old.exit_code != 0);
    CHECK_FALSE(contains(old.output, "subject=")); // no server certificate seen
    CHECK(contains(old.output, "New, (NONE), Cipher is (NONE)"));

    for (const int port : {v13, v12, unset}) {
        const auto r = s_client(port, {"-tls1_3"});
        INFO("port " << port << ": " << r.output);
        CHECK(r.exit_code == 0);
        CHECK(contains(r.output, "New, TLSv1.3, Cipher is "));
        CHECK(contains(r.output, "subject=CN = localhost"));
    }
    for (const int port : {v12, unset}) {
        const auto r = s_client(port, {"-tls1_2"});
        INFO("port " << port << ": " << r.output);
        CHECK(r.exit_code == 0);
        CHECK(contains(r.output, "New, TLSv1.2, Cipher is "));
    }
    // TLS 1.1 is below both the default and tlsv1.2.
    for (const int port : {v12, unset}) {
        const auto r = s_client(port, {"-tls1_1"});
        INFO("port " << port << ": " << r.output);
        CHECK(r.exit_code != 0);
    }
    // MQTT over TLS 1.3. (libmosquitto 2.0's own tls_version is a minimum as well: "tlsv1.2"
    // still negotiates TLS 1.3 here.)
    for (const char* version : {"tlsv1.2", "tlsv1.3"}) {
        mqtt_client c(std::string("client-") + version);
        c.tls(pki().ca_a, {}, {}, version);
        CHECK(c.connect(v13) == 0);
        c.disconnect();
    }
    check_tls_round_trip(v13, "tls13");
    CHECK(broker.alive());
}

// ---------------------------------------------------------------------------------------------
// Bad input

TEST_CASE("plain MQTT on a TLS port is closed, others unaffected", "[broker][tls][bad_input]") {
    broker_process broker(with_listeners({tls_listener()}));
    const int tls_port = broker.port(1);
    healthy_pair plain(broker.port(), "tls-bad-plain");
    for (const std::uint8_t level : {std::uint8_t{4}, std::uint8_t{5}}) {
        CAPTURE(int{level});
        raw_socket s(tls_port);
        REQUIRE(s.send(connect_packet(level, "plain-on-tls")));
        // Whatever comes back (a TLS alert, or nothing) is no CONNACK; then the close.
        const auto reply = s.read_packet(2s);
        if (reply) {
            CHECK((*reply)[0] != 0x20);
        }
        CHECK(s.wait_closed());
    }
    // A client that also loses its plain connection this way must not hurt anyone.
    mqtt_client plain_client("plain-on-tls-client");
    CHECK(plain_client.connect(tls_port) != 0);
    plain.check("after plain on tls");
    check_tls_round_trip(tls_port, "after-plain-on-tls");
    CHECK(broker.alive());
}

TEST_CASE("a TLS ClientHello on the plain port is closed, others unaffected",
          "[broker][tls][bad_input]") {
    broker_process broker(with_listeners({tls_listener()}));
    healthy_pair plain(broker.port(), "tls-bad-hello");
    const auto r = s_client(broker.port(), {});
    INFO(r.output);
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code != 0);
    CHECK_FALSE(contains(r.output, "subject=")); // no certificate: no TLS server there
    plain.check("after a ClientHello");
    check_tls_round_trip(broker.port(1), "after-hello");
    CHECK(broker.alive());
}

TEST_CASE("a TLS handshake cut short is closed, others unaffected", "[broker][tls][bad_input]") {
    broker_process broker(with_listeners({tls_listener()}));
    const int tls_port = broker.port(1);
    // A TLS record header that announces a ClientHello, then a close; and random junk.
    {
        raw_socket s(tls_port);
        REQUIRE(s.send(hex("16 03 01 02 00 01 00 01 fc 03 03")));
        s.close();
    }
    {
        raw_socket s(tls_port);
        REQUIRE(s.send(std::vector<std::uint8_t>(64, 0xff)));
        CHECK(s.wait_closed());
    }
    check_tls_round_trip(tls_port, "after-cut-short");
    CHECK(broker.alive());
}

// Mosquitto has no connect timeout of its own: it closes a silent connection only after its
// default keep-alive (about 90 s). tern's `connect_timeout` covers the TLS handshake too.
TEST_CASE("a silent connection on a TLS port is closed after connect_timeout",
          "[broker][tls][bad_input][tern]") {
    TERN_ONLY_TEST("Mosquitto has no connect timeout");
    broker_settings settings = with_listeners({tls_listener()});
    // docs/configuration.md: `connect_timeout S` in seconds (1..3600).
    settings.extra_config.push_back("connect_timeout 1");
    broker_process broker(settings);
    const int tls_port = broker.port(1);
    // Connected before the silent one: past CONNECT, so connect_timeout no longer applies.
    mqtt_client sub("silent-sub");
    mqtt_client pub("silent-pub");
    sub.tls(pki().ca_a);
    pub.tls(pki().ca_a);
    REQUIRE(sub.connect(tls_port) == 0);
    REQUIRE(pub.connect(tls_port) == 0);
    REQUIRE(sub.subscribe("tls/silent", 1) == 1);

    raw_socket silent(tls_port);
    const auto start = clock::now();
    CHECK(silent.wait_closed(5s));
    CHECK(clock::now() - start < 4s);
    REQUIRE(pub.publish("tls/silent", "still here", 1));
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->payload == "still here");
    CHECK(broker.alive());
}

// ---------------------------------------------------------------------------------------------
// tern: SNI, ALPN

TEST_CASE("SNI picks the sni_certificate of the name, else the default certfile",
          "[broker][tls][tern]") {
    TERN_ONLY_TEST("sni_certificate is a Tern directive");
    const auto& p = pki();
    broker_process broker(with_listeners({tls_listener(
        "sni_certificate a.example.test " + p.server_sni_a.cert + " " + p.server_sni_a.key +
        "\nsni_certificate b.example.test " + p.server_sni_b.cert + " " + p.server_sni_b.key)}));
    const int port = broker.port(1);
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {{"-servername", "a.example.test"}, "subject=CN = a.example.test"},
        {{"-servername", "b.example.test"}, "subject=CN = b.example.test"},
        {{"-servername", "A.Example.Test"}, "subject=CN = a.example.test"}, // case-insensitive
        {{"-servername", "unknown.example.test"}, "subject=CN = localhost"},
        {{"-noservername"}, "subject=CN = localhost"},
    };
    for (const auto& [args, subject] : cases) {
        const auto r = s_client(port, args);
        INFO(args.back() << ": " << r.output);
        CHECK(r.exit_code == 0);
        CHECK(contains(r.output, subject));
    }
    // MQTT through the SNI certificate (libmosquitto sends no SNI for an IP address, so only
    // the default certificate; check it still works next to the SNI entries).
    check_tls_round_trip(port, "sni-default");
}

TEST_CASE("ALPN mqtt and x-amzn-mqtt-ca are negotiated, no ALPN is served too",
          "[broker][tls][tern]") {
    TERN_ONLY_TEST("tern's ALPN protocols");
    broker_process broker(with_listeners({tls_listener()}));
    const int port = broker.port(1);
    for (const std::string alpn : {"mqtt", "x-amzn-mqtt-ca"}) {
        const auto r = s_client(port, {"-alpn", alpn});
        INFO(alpn << ": " << r.output);
        CHECK(r.exit_code == 0);
        CHECK(contains(r.output, "ALPN protocol: " + alpn));
    }
    // An unknown protocol alongside a known one: the known one is chosen.
    const auto both = s_client(port, {"-alpn", "h2,mqtt"});
    INFO(both.output);
    CHECK(both.exit_code == 0);
    CHECK(contains(both.output, "ALPN protocol: mqtt"));
    const auto none = s_client(port, {});
    INFO(none.output);
    CHECK(none.exit_code == 0);
    CHECK(contains(none.output, "No ALPN negotiated"));
    check_tls_round_trip(port, "alpn");
}

TEST_CASE("a client may resume its TLS session with the ticket it was given, as with "
          "mosquitto",
          "[broker][tls]") {
    // Devices that reconnect resume instead of making a full handshake. TLS 1.2 is asked for
    // because its ticket is part of the handshake, so s_client has it before it closes.
    broker_process broker(with_listeners({tls_listener()}));
    const readable_dir dir;
    const std::string session = dir.copy(pki().ca_a, "tls.session"); // replaced by -sess_out
    const auto first = s_client(broker.port(1), {"-tls1_2", "-sess_out", session});
    INFO(first.output);
    REQUIRE(first.exit_code == 0);
    CHECK(contains(first.output, "TLS session ticket:"));
    const auto second = s_client(broker.port(1), {"-tls1_2", "-sess_in", session});
    INFO(second.output);
    CHECK(second.exit_code == 0);
    CHECK(contains(second.output, "Reused, TLSv1.2"));
}

// ---------------------------------------------------------------------------------------------
// Reload

// Mosquitto 2.0 reloads certfile / keyfile on SIGHUP (mosquitto.conf(5), changelog 2.0.0); so
// does tern. Connections keep the certificate they started with.
TEST_CASE("SIGHUP reloads certfile and keyfile; open connections carry on", "[broker][tls]") {
    const auto& p = pki();
    readable_dir files;
    const std::string cert = files.copy(p.server.cert, "server.pem");
    const std::string key = files.copy(p.server.key, "server.key");
    broker_process broker(with_listeners({"certfile " + cert + "\nkeyfile " + key + "\n"}));
    const int port = broker.port(1);

    const auto before = s_client(port, {});
    INFO(before.output);
    REQUIRE(before.exit_code == 0);
    REQUIRE(contains(before.output, "subject=CN = localhost"));

    mqtt_client sub("reload-sub", MQTT_PROTOCOL_V5);
    mqtt_client pub("reload-pub");
    sub.tls(p.ca_a);
    pub.tls(p.ca_a);
    REQUIRE(sub.connect(port) == 0);
    REQUIRE(pub.connect(port) == 0);
    REQUIRE(sub.subscribe("tls/reload", 1) == 1);

    files.copy(p.server_sni_a.cert, "server.pem");
    files.copy(p.server_sni_a.key, "server.key");
    broker.signal(SIGHUP);
    // The reload is asynchronous: new handshakes show the new certificate within the bound.
    command_result after;
    const auto deadline = clock::now() + wait_timeout;
    do {
        after = s_client(port, {});
    } while (!contains(after.output, "subject=CN = a.example.test") && clock::now() < deadline &&
             broker.alive());
    INFO(after.output);
    CHECK(after.exit_code == 0);
    CHECK(contains(after.output, "subject=CN = a.example.test"));

    // The connections opened before carry on, both ways.
    REQUIRE(pub.publish("tls/reload", "after reload", 1));
    const auto m = sub.next_message();
    REQUIRE(m);
    CHECK(m->payload == "after reload");
    CHECK(sub.connected());
    CHECK(pub.connected());
    // libmosquitto checks the host name 127.0.0.1, which the a.example.test certificate does not
    // name: a new client fails unless it skips the name check.
    mqtt_client strict("reload-strict");
    strict.tls(p.ca_a);
    CHECK(strict.connect(port) != 0);
    mqtt_client lenient("reload-lenient");
    lenient.tls(p.ca_a);
    lenient.tls_insecure();
    CHECK(lenient.connect(port) == 0);
    CHECK(broker.alive());
}

// ---------------------------------------------------------------------------------------------
// OCSP (Tern only: Mosquitto 2.0 checks client certificates against CRLs, not OCSP)

namespace {

/// `openssl ocsp` answering for CA A from its `openssl ca` database, on an ephemeral port
/// (the port comes from its "ACCEPT [::]:PORT" line: probing it with an empty connection
/// would wedge it, see tests/net/ocsp_test.cpp). Killed and reaped on destruction.
class ocsp_responder {
public:
    ocsp_responder() {
        const auto& p = pki();
        log_ = p.dir + "/ocsp-responder-" + std::to_string(++count_) + ".log";
        std::vector<std::string> args{"openssl", "ocsp",     "-index", p.ca_a_index, "-port",
                                      "0",       "-CA",      p.ca_a,   "-rsigner",   p.ca_a,
                                      "-rkey",   p.ca_a_key, "-nmin",  "5"};
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) {
                ::_exit(126);
            }
            ::execvp("openssl", argv.data());
            ::_exit(127);
        }
        const auto deadline = clock::now() + 10s;
        while (clock::now() < deadline && port_ == 0) {
            const std::string text = read_log();
            const auto at = text.find("ACCEPT ");
            const auto colon = at == std::string::npos ? at : text.find("]:", at);
            if (colon != std::string::npos && text.find('\n', colon) != std::string::npos) {
                port_ = std::atoi(text.c_str() + colon + 2);
            } else {
                std::this_thread::sleep_for(10ms);
            }
        }
        REQUIRE(port_ > 0);
    }
    ~ocsp_responder() { stop(); }
    ocsp_responder(const ocsp_responder&) = delete;
    ocsp_responder& operator=(const ocsp_responder&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
    /// Kills the responder: its port then refuses connections.
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
            pid_ = -1;
        }
    }

private:
    std::string read_log() const {
        std::ifstream in(log_);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }
    static inline int count_ = 0;
    std::string log_;
    pid_t pid_ = -1;
    int port_ = 0;
};

/// The CONNACK code libmosquitto gets presenting `cert` (-1: no CONNACK).
int mtls_connack(int port, const std::string& id, const cert_pair& cert,
                 int version = MQTT_PROTOCOL_V311) {
    mqtt_client c(id, version);
    c.tls(pki().ca_a, cert.cert, cert.key);
    const int code = c.connect(port);
    if (code == 0) {
        c.disconnect();
    }
    return code;
}

} // namespace

TEST_CASE("ocsp_responder: a good certificate connects, a revoked one is refused at CONNECT",
          "[broker][tls][mtls][ocsp]") {
    if (against_mosquitto()) {
        SUCCEED("mosquitto has no OCSP check of client certificates");
        return;
    }
    const auto& p = pki();
    ocsp_responder responder;
    broker_process broker(
        with_listeners({mtls_listener("cafile " + p.ca_a, "ocsp_responder " + responder.url())}));
    const int port = broker.port(1);
    check_tls_round_trip(port, "ocsp-good", p.device_a);
    // `revoked` passes the TLS handshake (no crlfile here): OCSP alone refuses it, 3.1.1
    // return code 5 and v5 0x87 Not authorized.
    CHECK(mtls_connack(port, "ocsp-revoked", p.revoked) == 5);
    CHECK(mtls_connack(port, "ocsp-revoked-v5", p.revoked, MQTT_PROTOCOL_V5) == 0x87);
    // Paho C sees the same refusal.
    paho_tls_client paho(port, "ocsp-paho-revoked");
    CHECK(paho.connect(p.ca_a, p.revoked) == 5);

    // The answers are cached: with the responder gone, the good certificate still connects
    // and the revoked one is still refused.
    responder.stop();
    CHECK(mtls_connack(port, "ocsp-good-cached", p.device_a) == 0);
    CHECK(mtls_connack(port, "ocsp-revoked-cached", p.revoked) == 5);
    CHECK(contains(broker.log(), "is revoked: revoked at"));
    CHECK(broker.alive());
}

TEST_CASE("ocsp_responder unreachable: refused with Server unavailable, or accepted with "
          "ocsp_fail_open",
          "[broker][tls][mtls][ocsp]") {
    if (against_mosquitto()) {
        SUCCEED("mosquitto has no OCSP check of client certificates");
        return;
    }
    const auto& p = pki();
    std::string url;
    {
        ocsp_responder gone; // a port nothing listens on any more
        url = gone.url();
    }
    broker_process closed(with_listeners(
        {mtls_listener("cafile " + p.ca_a, "ocsp_responder " + url + "\nocsp_timeout 1")}));
    CHECK(mtls_connack(closed.port(1), "closed-v3", p.device_a) == 3);
    CHECK(mtls_connack(closed.port(1), "closed-v5", p.device_a, MQTT_PROTOCOL_V5) == 0x88);
    CHECK(contains(closed.log(), "is unreachable"));

    broker_process open(with_listeners({mtls_listener(
        "cafile " + p.ca_a, "ocsp_responder " + url + "\nocsp_timeout 1\nocsp_fail_open true")}));
    check_tls_round_trip(open.port(1), "fail-open", p.device_a);
    CHECK(contains(open.log(), "accepted (ocsp_fail_open)"));
}
