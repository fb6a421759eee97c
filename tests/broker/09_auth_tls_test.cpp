// Access control with TLS identities: certificate and PSK identities as user names feeding the
// acl_file (use_identity_as_username, use_subject_as_username), certificate users next to a
// password_file, a CRL replaced on SIGHUP, and tern's log lines for refused CONNECTs. Clients:
// libmosquitto (mqtt_client) with client certificates, mosquitto_pub / mosquitto_sub for what
// mqtt_client cannot send (a CONNECT User Name over TLS, TLS-PSK), raw_client on the plain
// listener. Certificates from the test PKI (pki.hpp).
//
// Mosquitto 2.0.11 behaviour established by running these tests against it:
//
// use_identity_as_username / use_subject_as_username
// - The user name is the certificate's CN (use_identity_as_username) or its whole subject as
//   X509_NAME_print_ex(XN_FLAG_RFC2253) writes it (use_subject_as_username): for the
//   fleet_sensor certificate `CN=sensor-1,OU=Sensors\, North,O=Tern Fleet,C=DE` (the last RDN
//   first, a comma inside a value escaped with a backslash). An acl_file `user` line takes the
//   rest of the line literally, spaces and backslash included.
// - A User Name (and Password) the client sends is ignored: mosquitto_pub -u admin still gets
//   only the certificate user's rights.
// - With require_certificate true, a client without a certificate (or with one no trusted CA
//   issued) fails the TLS handshake ("peer did not return a certificate"); mosquitto_pub exits
//   1, libmosquitto sees no CONNACK.
// - Without require_certificate Mosquitto never asks for a client certificate (SSL_VERIFY_NONE),
//   so every client, with or without one, is refused at CONNECT with 3.1.1 return code 4 / v5
//   0x86 (Bad User Name or Password — not the 5 / 0x87 of every other refusal). DIFFERENCE:
//   tern asks for a certificate on such a listener and accepts a client that presents a valid
//   one, with its CN as the user name; a client without one is refused with 4 / 0x86 as by
//   Mosquitto.
// - password_file with allow_anonymous false: a certificate user needs no password and need not
//   be in the password file (the file is not consulted); a CONNECT User Name / Password, even a
//   wrong one, changes nothing. On a plain listener the password file applies as usual (the
//   same user name with its password is accepted, with a wrong one refused with 5 / 0x87). On
//   SIGHUP the certificate users stay connected when the password file no longer lists them
//   (Mosquitto takes the name from the certificate again), while the plain connection of a
//   user whose password no longer verifies is closed.
//
// TLS-PSK (psk_hint, psk_file, use_identity_as_username)
// - The PSK identity is the user name the acl_file sees (user section and %u patterns); a
//   CONNECT User Name is ignored; an identity with another identity's key, or an unknown
//   identity, fails the handshake (mosquitto_pub exits non-zero).
// - Mosquitto refuses `cafile` (or certfile) on a psk_hint listener ("Cannot use both
//   certificate and psk encryption in a single listener"): the listener below is the only form
//   Mosquitto accepts.
//
// crlfile and SIGHUP
// - Mosquitto 2.0.11 re-reads the crlfile on SIGHUP (log "Reloading config."): a certificate the
//   new CRL lists fails new handshakes ("certificate verify failed"). Without SIGHUP a replaced
//   file changes nothing. A connection opened before with that certificate carries on.

#include "pki.hpp"
#include "raw_client.hpp"
#include "raw_packets.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace tern::test;

namespace {

/// The pieces joined (GCC 12's -Wrestrict misfires on chained std::string operator+).
std::string concat(std::initializer_list<std::string_view> parts) {
    std::string out;
    for (const auto part : parts) {
        out.append(part);
    }
    return out;
}

// TODO: move to support.hpp (08_tls_test.cpp has tls_listener / mtls_listener).
/// The directive lines of a TLS listener serving the `localhost` / 127.0.0.1 certificate, and
/// `more` after them.
std::string tls_listener(const std::string& more = {}) {
    return concat({"certfile ", pki().server.cert, "\nkeyfile ", pki().server.key, "\n", more});
}

/// A listener requiring a client certificate trusted through `trust` ("cafile F"), and `more`.
std::string mtls_listener(const std::string& trust, const std::string& more = {}) {
    return tls_listener(concat({trust, "\nrequire_certificate true\n", more}));
}

// TODO: move to support.hpp (09_auth_test.cpp has run_mosquitto_passwd / password_file).
/// A password file made by /usr/bin/mosquitto_passwd -b with `users` (name, password); returns
/// its path.
std::string password_file(const readable_dir& dir, const std::string& file,
                          const std::vector<std::pair<std::string, std::string>>& users) {
    for (std::size_t i = 0; i < users.size(); ++i) {
        std::vector<std::string> args{"/usr/bin/mosquitto_passwd"};
        if (i == 0) {
            args.push_back("-c");
        }
        args.insert(args.end(), {"-b", dir.path(file), users[i].first, users[i].second});
        const auto r = run_command(args);
        INFO("mosquitto_passwd: " << r.output);
        REQUIRE(r.exit_code == 0);
    }
    return dir.share(file);
}

// TODO: move to support.hpp (19_listener_test.cpp has log_has).
/// The first line of the broker's log that contains `needle`, waited for (bounded); empty when
/// none appeared.
std::string log_line(const broker_process& broker, const std::string& needle) {
    const auto deadline = clock::now() + wait_timeout;
    while (true) {
        std::istringstream in(broker.log());
        for (std::string line; std::getline(in, line);) {
            if (contains(line, needle)) {
                return line;
            }
        }
        if (clock::now() >= deadline) {
            return {};
        }
        std::this_thread::sleep_for(10ms);
    }
}

/// v5 success for an accepted PUBLISH: 0x00, or 0x10 when nobody is subscribed.
bool accepted(int reason) {
    return reason == 0x00 || reason == 0x10;
}

/// A QoS 1 PUBLISH from `c` (v5); the PUBACK's reason code.
int publish_reason(mqtt_client& c, const std::string& topic) {
    INFO("publish to " << topic);
    REQUIRE(c.publish(topic, topic, 1));
    return c.last_publish_reason();
}

/// The topics `c` receives before one on `marker`, sorted (several publishers: only the order
/// of each one's messages is defined).
std::vector<std::string> topics_before(mqtt_client& c, const std::string& marker) {
    std::vector<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        const auto m = c.next_message();
        if (!m) {
            FAIL_CHECK("no message on " << marker << " arrived; before it: " << seen.size());
            break;
        }
        if (m->topic == marker) {
            break;
        }
        seen.push_back(m->topic);
    }
    std::sort(seen.begin(), seen.end());
    return seen;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

/// How a mosquitto_pub run ended.
enum class pub_outcome {
    published, ///< connected, PUBACK 0x00 / 0x10
    denied,    ///< connected, PUBACK 0x87 ("Warning: Publish 1 failed: Not authorized.")
    refused,   ///< no connection (TLS failure or a refusing CONNACK)
};

const char* to_string(pub_outcome o) {
    switch (o) {
    case pub_outcome::published:
        return "published";
    case pub_outcome::denied:
        return "denied";
    case pub_outcome::refused:
        return "refused";
    }
    return "?";
}

pub_outcome outcome_of(const command_result& r) {
    INFO("mosquitto_pub: exit " << r.exit_code << ": " << r.output);
    REQUIRE_FALSE(r.timed_out);
    if (r.exit_code != 0) {
        return pub_outcome::refused;
    }
    return contains(r.output, "Not authorized") ? pub_outcome::denied : pub_outcome::published;
}

/// mosquitto_pub -V mqttv5 -q 1 -m TOPIC to `topic` with `transport` (TLS or PSK options),
/// as `name` / `password` when `name` is set.
pub_outcome cli_pub(int port, const std::vector<std::string>& transport, const std::string& id,
                    const std::string& topic, const std::string& name = {},
                    const std::string& password = {}) {
    std::vector<std::string> args{"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port)};
    args.insert(args.end(), transport.begin(), transport.end());
    args.insert(args.end(), {"-V", "mqttv5", "-i", id, "-q", "1", "-t", topic, "-m", topic});
    if (!name.empty()) {
        args.insert(args.end(), {"-u", name, "-P", password});
    }
    return outcome_of(run_command(args));
}

/// mosquitto_pub / mosquitto_sub options for TLS trusting CA A, presenting `cert` when set.
std::vector<std::string> tls_options(const cert_pair& cert = {}) {
    std::vector<std::string> o{"--cafile", pki().ca_a};
    if (!cert.cert.empty()) {
        o.insert(o.end(), {"--cert", cert.cert, "--key", cert.key});
    }
    return o;
}

/// mosquitto_pub / mosquitto_sub options for TLS-PSK.
std::vector<std::string> psk_options(const std::string& identity, const std::string& key) {
    return {"--psk-identity", identity, "--psk", key};
}

/// The user name the broker's connection log line shows for client `id`: Mosquitto's "New
/// client connected from ... as ID (p5, c1, k60, u'NAME')", tern's "client 'ID' connected (...,
/// user 'NAME')". Empty when the line or the name is missing.
std::string logged_user(const broker_process& broker, const std::string& id) {
    const bool mosquitto = against_mosquitto();
    const std::string line = log_line(broker, mosquitto ? concat({" as ", id, " ("})
                                                        : concat({"client '", id, "' connected"}));
    const std::string_view open = mosquitto ? ", u'" : ", user '";
    const auto start = line.find(open);
    if (start == std::string::npos) {
        return {};
    }
    const auto from = start + open.size();
    const auto end = line.rfind('\'');
    return end == std::string::npos || end < from ? std::string() : line.substr(from, end - from);
}

/// The acl_file of the use_identity_as_username tests: device-a may use its own topics (its
/// section and the %u pattern), device-b reads and writes every device's, `admin` everything.
const std::string identity_acl = "pattern readwrite things/%u/#\n"
                                 "\n"
                                 "user device-a\n"
                                 "topic readwrite devices/device-a/#\n"
                                 "\n"
                                 "user device-b\n"
                                 "topic readwrite devices/#\n"
                                 "topic readwrite things/#\n"
                                 "\n"
                                 "user admin\n"
                                 "topic readwrite #\n";

} // namespace

// ---------------------------------------------------------------------------------------------
// use_identity_as_username

TEST_CASE("use_identity_as_username: the certificate's CN is the user name the acl_file sees",
          "[broker][auth][tls]") {
    const auto& p = pki();
    readable_dir dir;
    broker_settings settings;
    settings.extra_config = {"acl_file " + dir.write("acl", identity_acl)};
    settings.listeners = {mtls_listener("cafile " + p.ca_bundle, "use_identity_as_username true")};
    broker_process broker(settings);
    const int port = broker.port(1);

    mqtt_client watcher("watcher", MQTT_PROTOCOL_V5); // device-b: reads every device's topics
    watcher.tls(p.ca_a, p.device_b.cert, p.device_b.key);
    REQUIRE(watcher.connect(port) == 0);
    REQUIRE(watcher.subscribe("devices/#", 1) == 1);
    REQUIRE(watcher.subscribe("things/#", 1) == 1);
    mqtt_client device("device-a-client", MQTT_PROTOCOL_V5);
    device.tls(p.ca_a, p.device_a.cert, p.device_a.key);
    REQUIRE(device.connect(port) == 0);
    REQUIRE(device.subscribe("#", 1) == 1); // granted: some topics are readable
    CHECK(logged_user(broker, "device-a-client") == "device-a");
    CHECK(logged_user(broker, "watcher") == "device-b");

    // device-a writes its own topics (its section, the %u pattern), not device-b's.
    CHECK(accepted(publish_reason(device, "devices/device-a/1")));
    CHECK(accepted(publish_reason(device, "things/device-a/1")));
    CHECK(publish_reason(device, "devices/device-b/1") == 0x87);
    CHECK(publish_reason(device, "things/device-b/1") == 0x87);
    CHECK(publish_reason(device, "elsewhere/1") == 0x87);

    // A CONNECT User Name is ignored: "admin" (who may write everything) has device-a's rights.
    const auto device_a = tls_options(p.device_a);
    CHECK(to_string(cli_pub(port, device_a, "as-admin-1", "devices/device-b/2", "admin", "pw")) ==
          std::string("denied"));
    CHECK(to_string(cli_pub(port, device_a, "as-admin-2", "elsewhere/2", "admin", "pw")) ==
          std::string("denied"));
    CHECK(to_string(cli_pub(port, device_a, "as-admin-3", "devices/device-a/2", "admin", "pw")) ==
          std::string("published"));
    CHECK(logged_user(broker, "as-admin-3") == "device-a");

    // Without a certificate, or with one no trusted CA issued: refused in the TLS handshake
    // (require_certificate true), with or without a User Name.
    mqtt_client no_cert("no-cert", MQTT_PROTOCOL_V5);
    no_cert.tls(p.ca_a);
    CHECK(no_cert.connect(port) == -1); // no CONNACK: the TLS alert ends the connection
    CHECK_FALSE(no_cert.connected());
    mqtt_client stranger("stranger", MQTT_PROTOCOL_V5);
    stranger.tls(p.ca_a, p.stranger.cert, p.stranger.key);
    CHECK(stranger.connect(port) == -1);
    CHECK_FALSE(stranger.connected());
    CHECK(to_string(cli_pub(port, tls_options(), "no-cert-admin", "devices/device-a/3", "admin",
                            "pw")) == std::string("refused"));

    // device-b writes where device-a may read, and where it may not.
    CHECK(accepted(publish_reason(watcher, "devices/device-a/from-b")));
    CHECK(accepted(publish_reason(watcher, "devices/device-b/3")));
    CHECK(accepted(publish_reason(watcher, "things/device-b/3")));
    CHECK(accepted(publish_reason(device, "devices/device-a/end")));
    CHECK(accepted(publish_reason(watcher, "things/device-a/end")));

    // The watcher saw exactly what was accepted; device-a only what it may read.
    CHECK(topics_before(watcher, "devices/device-a/end") ==
          sorted({"devices/device-a/1", "things/device-a/1", "devices/device-a/2",
                  "devices/device-a/from-b", "devices/device-b/3", "things/device-b/3"}));
    CHECK(topics_before(device, "things/device-a/end") ==
          sorted({"devices/device-a/1", "things/device-a/1", "devices/device-a/2",
                  "devices/device-a/from-b", "devices/device-a/end"}));
    CHECK(broker.alive());
}

// Mosquitto never asks for a client certificate without require_certificate, so there every
// client is refused (4 / 0x86); tern asks for one and takes its CN (see the top comment).
TEST_CASE("use_identity_as_username without require_certificate", "[broker][auth][tls]") {
    const auto& p = pki();
    readable_dir dir;
    broker_settings settings;
    settings.extra_config = {"acl_file " + dir.write("acl", identity_acl)};
    settings.listeners = {tls_listener("cafile " + p.ca_a + "\nuse_identity_as_username true\n")};
    broker_process broker(settings);
    const int port = broker.port(1);
    const int version = GENERATE(MQTT_PROTOCOL_V311, MQTT_PROTOCOL_V5);
    CAPTURE(version);
    const int bad_credentials = version == MQTT_PROTOCOL_V5 ? 0x86 : 4;

    mqtt_client no_cert("no-cert", version);
    no_cert.tls(p.ca_a);
    CHECK(no_cert.connect(port) == bad_credentials);
    CHECK_FALSE(no_cert.connected());

    mqtt_client device("device-a-client", version);
    device.tls(p.ca_a, p.device_a.cert, p.device_a.key);
    if (against_mosquitto()) {
        CHECK(device.connect(port) == bad_credentials); // the certificate was never asked for
        CHECK_FALSE(device.connected());
    } else {
        REQUIRE(device.connect(port) == 0);
        CHECK(logged_user(broker, "device-a-client") == "device-a");
        if (version == MQTT_PROTOCOL_V5) {
            CHECK(accepted(publish_reason(device, "devices/device-a/1")));
            CHECK(publish_reason(device, "devices/device-b/1") == 0x87);
        }
    }
    CHECK(broker.alive());
}

// ---------------------------------------------------------------------------------------------
// use_subject_as_username

TEST_CASE("use_subject_as_username: the RFC 2253 subject is the user name the acl_file sees",
          "[broker][auth][tls]") {
    const auto& p = pki();
    // As Mosquitto 2.0.11 logs it for fleet_sensor (u'...'): the last RDN first, the comma in
    // the OU value escaped.
    const std::string sensor = "CN=sensor-1,OU=Sensors\\, North,O=Tern Fleet,C=DE";
    readable_dir dir;
    broker_settings settings;
    settings.extra_config = {"acl_file " + dir.write("acl", concat({"user ", sensor,
                                                                    "\n"
                                                                    "topic readwrite fleet/#\n"
                                                                    "\n"
                                                                    "user CN=device-a\n"
                                                                    "topic readwrite devices/#\n"
                                                                    "\n"
                                                                    "# Not device-a's name here\n"
                                                                    "user device-a\n"
                                                                    "topic readwrite cn-only/#\n"
                                                                    "\n"
                                                                    "user CN=device-b\n"
                                                                    "topic read #\n"}))};
    settings.listeners = {mtls_listener("cafile " + p.ca_bundle, "use_subject_as_username true")};
    broker_process broker(settings);
    const int port = broker.port(1);

    mqtt_client watcher("watcher", MQTT_PROTOCOL_V5); // CN=device-b: reads everything
    watcher.tls(p.ca_a, p.device_b.cert, p.device_b.key);
    REQUIRE(watcher.connect(port) == 0);
    REQUIRE(watcher.subscribe("#", 1) == 1);
    mqtt_client fleet("sensor-1-client", MQTT_PROTOCOL_V5);
    fleet.tls(p.ca_a, p.fleet_sensor.cert, p.fleet_sensor.key);
    REQUIRE(fleet.connect(port) == 0);
    REQUIRE(fleet.subscribe("#", 1) == 1);
    mqtt_client device("device-a-client", MQTT_PROTOCOL_V5);
    device.tls(p.ca_a, p.device_a.cert, p.device_a.key);
    REQUIRE(device.connect(port) == 0);
    CHECK(logged_user(broker, "sensor-1-client") == sensor);
    CHECK(logged_user(broker, "device-a-client") == "CN=device-a");

    CHECK(accepted(publish_reason(fleet, "fleet/sensor-1/1")));
    CHECK(publish_reason(fleet, "devices/device-a/1") == 0x87);
    CHECK(accepted(publish_reason(device, "devices/device-a/1")));
    CHECK(publish_reason(device, "cn-only/1") == 0x87); // `user device-a` is not its section
    CHECK(publish_reason(device, "fleet/sensor-1/2") == 0x87);
    CHECK(publish_reason(watcher, "fleet/sensor-1/3") == 0x87); // read only
    // A CONNECT User Name is ignored here too.
    const auto sensor_tls = tls_options(p.fleet_sensor);
    CHECK(to_string(cli_pub(port, sensor_tls, "sensor-as-dev", "devices/x", "CN=device-a", "pw")) ==
          std::string("denied"));
    CHECK(to_string(cli_pub(port, sensor_tls, "sensor-cli", "fleet/sensor-1/cli", "CN=device-a",
                            "pw")) == std::string("published"));
    CHECK(accepted(publish_reason(fleet, "fleet/end")));

    CHECK(topics_before(watcher, "fleet/end") ==
          sorted({"fleet/sensor-1/1", "devices/device-a/1", "fleet/sensor-1/cli"}));
    CHECK(topics_before(fleet, "fleet/end") == sorted({"fleet/sensor-1/1", "fleet/sensor-1/cli"}));
    CHECK(broker.alive());
}

// ---------------------------------------------------------------------------------------------
// password_file next to certificate identities

TEST_CASE("password_file and allow_anonymous false: certificate users need no password",
          "[broker][auth][tls]") {
    const auto& p = pki();
    readable_dir dir;
    const std::string passwd =
        password_file(dir, "passwd", {{"alice", "alice-pw"}, {"device-a", "device-a-pw"}});
    broker_settings settings;
    settings.extra_config = {"allow_anonymous false", "password_file " + passwd,
                             "acl_file " + dir.write("acl", "user device-a\n"
                                                            "topic readwrite devices/device-a/#\n"
                                                            "user device-b\n"
                                                            "topic readwrite devices/device-b/#\n"
                                                            "user alice\n"
                                                            "topic readwrite #\n")};
    settings.listeners = {mtls_listener("cafile " + p.ca_bundle, "use_identity_as_username true")};
    broker_process broker(settings);
    const int plain = broker.port();
    const int port = broker.port(1);

    // Certificate users: no password needed, device-b is not even in the password file, and a
    // User Name / Password sent (wrong, or another user's) changes nothing.
    const auto device_a = tls_options(p.device_a);
    CHECK(to_string(cli_pub(port, device_a, "a-1", "devices/device-a/1")) ==
          std::string("published"));
    CHECK(to_string(cli_pub(port, tls_options(p.device_b), "b-1", "devices/device-b/1")) ==
          std::string("published"));
    CHECK(to_string(cli_pub(port, device_a, "a-2", "devices/device-a/2", "device-a", "wrong")) ==
          std::string("published"));
    CHECK(to_string(cli_pub(port, device_a, "a-3", "devices/device-a/3", "alice", "wrong")) ==
          std::string("published"));
    CHECK(to_string(cli_pub(port, device_a, "a-4", "devices/device-b/4", "alice", "alice-pw")) ==
          std::string("denied")); // device-a's rights, not alice's

    // The plain listener checks the password file as usual.
    const auto code = [plain](std::uint8_t level, const std::string& id,
                              std::optional<std::string> name,
                              std::optional<std::string> password) {
        raw_client c(plain, level);
        connect_options o;
        o.client_id = id;
        o.username = std::move(name);
        o.password = std::move(password);
        const auto ack = c.connect(o);
        return ack ? int{ack->reason} : -1;
    };
    CHECK(code(4, "alice", "alice", "alice-pw") == 0);
    CHECK(code(4, "device-a-pw", "device-a", "device-a-pw") == 0);
    CHECK(code(4, "device-a-wrong", "device-a", "wrong") == 5);
    CHECK(code(5, "device-a-wrong", "device-a", "wrong") == 0x87);
    CHECK(code(4, "anonymous", std::nullopt, std::nullopt) == 5);

    // SIGHUP with a password file without device-a: its certificate connection stays (and keeps
    // its rights), its password connection on the plain listener is closed.
    mqtt_client cert_client("device-a-cert", MQTT_PROTOCOL_V5);
    cert_client.tls(p.ca_a, p.device_a.cert, p.device_a.key);
    REQUIRE(cert_client.connect(port) == 0);
    REQUIRE(cert_client.subscribe("devices/device-a/#", 1) == 1);
    raw_client password_client(plain, 5);
    {
        connect_options o;
        o.client_id = "device-a-password";
        o.username = "device-a";
        o.password = "device-a-pw";
        const auto ack = password_client.connect(o);
        REQUIRE(ack);
        REQUIRE(int{ack->reason} == 0);
    }
    password_file(dir, "passwd", {{"alice", "alice-pw"}});
    broker.signal(SIGHUP);
    int after = 0;
    const auto deadline = clock::now() + wait_timeout;
    while (after == 0 && clock::now() < deadline) {
        after = code(4, "device-a-poll", "device-a", "device-a-pw");
        if (after == 0) {
            std::this_thread::sleep_for(20ms);
        }
    }
    REQUIRE(after == 5); // the reload took effect
    CHECK(password_client.wait_closed());
    CHECK(accepted(publish_reason(cert_client, "devices/device-a/after")));
    const auto m = cert_client.next_message();
    REQUIRE(m);
    CHECK(m->topic == "devices/device-a/after");
    CHECK(cert_client.connected());
    CHECK(to_string(cli_pub(port, device_a, "a-5", "devices/device-a/5")) ==
          std::string("published"));
    CHECK(broker.alive());
}

// ---------------------------------------------------------------------------------------------
// crlfile reload

TEST_CASE("SIGHUP reloads the crlfile: new handshakes see the new CRL, open connections carry on",
          "[broker][auth][tls]") {
    const auto& p = pki();
    readable_dir dir;
    const std::string crl = dir.copy(p.crl_a, "crl.pem"); // lists `revoked` only
    broker_settings settings;
    settings.listeners = {mtls_listener("cafile " + p.ca_a, "crlfile " + crl)};
    broker_process broker(settings);
    const int port = broker.port(1);
    const auto connects = [port](const std::string& id, const cert_pair& cert) {
        mqtt_client c(id, MQTT_PROTOCOL_V5);
        c.tls(pki().ca_a, cert.cert, cert.key);
        return c.connect(port) == 0;
    };

    CHECK_FALSE(connects("revoked-before", p.revoked)); // the CRL is in force
    mqtt_client open("revocable-open", MQTT_PROTOCOL_V5);
    open.tls(p.ca_a, p.revocable.cert, p.revocable.key);
    REQUIRE(open.connect(port) == 0);
    REQUIRE(open.subscribe("crl/#", 1) == 1);
    mqtt_client peer("device-a-peer", MQTT_PROTOCOL_V5);
    peer.tls(p.ca_a, p.device_a.cert, p.device_a.key);
    REQUIRE(peer.connect(port) == 0);
    REQUIRE(peer.subscribe("crl/#", 1) == 1);

    // The new CRL replaces the file in one rename. Read at start and on SIGHUP only: until the
    // signal new handshakes still pass.
    write_crl_revoking_revocable(dir.path("crl.next"));
    std::filesystem::rename(dir.path("crl.next"), crl);
    CHECK(connects("revocable-no-sighup", p.revocable));

    broker.signal(SIGHUP);
    // tern logs each listener's reload once done; Mosquitto logs before it reloads, in the
    // same turn of its single-threaded loop (a connection accepted later sees the new CRL).
    CHECK_FALSE(
        log_line(broker, against_mosquitto() ? "Reloading config." : "TLS certificates reloaded")
            .empty());
    CHECK_FALSE(connects("revocable-after", p.revocable));
    CHECK_FALSE(connects("revoked-after", p.revoked));
    CHECK(connects("device-a-after", p.device_a));

    // The connection opened before the reload carries on, both ways.
    CHECK(accepted(publish_reason(open, "crl/from-revocable")));
    const auto to_peer = peer.next_message();
    REQUIRE(to_peer);
    CHECK(to_peer->topic == "crl/from-revocable");
    CHECK(accepted(publish_reason(peer, "crl/from-peer")));
    std::vector<std::string> seen;
    for (int i = 0; i < 2; ++i) {
        const auto m = open.next_message();
        REQUIRE(m);
        seen.push_back(m->topic);
    }
    CHECK(sorted(seen) == sorted({"crl/from-revocable", "crl/from-peer"}));
    CHECK(open.connected());
    CHECK(broker.alive());
}

// ---------------------------------------------------------------------------------------------
// TLS-PSK

TEST_CASE("TLS-PSK with use_identity_as_username: the PSK identity is the user name the "
          "acl_file sees",
          "[broker][auth][tls]") {
    readable_dir dir;
    const std::string key_p = "00112233445566778899aabbccddeeff";
    const std::string key_q = "ffeeddccbbaa99887766554433221100";
    broker_settings settings;
    settings.extra_config = {
        "psk_file " + dir.write("psk", concat({"device-p:", key_p, "\ndevice-q:", key_q, "\n"})),
        "acl_file " + dir.write("acl", "# Anonymous clients (the plain listener): everything.\n"
                                       "topic readwrite #\n"
                                       "pattern readwrite things/%u/#\n"
                                       "\n"
                                       "user device-p\n"
                                       "topic readwrite devices/device-p/#\n")};
    // The only form Mosquitto accepts: no cafile / certfile next to psk_hint.
    settings.listeners = {"psk_hint tern-test\nuse_identity_as_username true\n"};
    broker_process broker(settings);
    const int port = broker.port(1);

    mqtt_client watcher("watcher", MQTT_PROTOCOL_V5); // anonymous, on the plain listener
    REQUIRE(watcher.connect(broker.port()) == 0);
    REQUIRE(watcher.subscribe("devices/#", 1) == 1);
    REQUIRE(watcher.subscribe("things/#", 1) == 1);

    const auto as_p = psk_options("device-p", key_p);
    const auto as_q = psk_options("device-q", key_q);
    CHECK(to_string(cli_pub(port, as_p, "p-1", "devices/device-p/1")) == std::string("published"));
    CHECK(logged_user(broker, "p-1") == "device-p");
    CHECK(to_string(cli_pub(port, as_p, "p-2", "devices/device-q/1")) == std::string("denied"));
    CHECK(to_string(cli_pub(port, as_p, "p-3", "things/device-p/1")) == std::string("published"));
    CHECK(to_string(cli_pub(port, as_p, "p-4", "things/device-q/1")) == std::string("denied"));
    CHECK(to_string(cli_pub(port, as_p, "p-5", "elsewhere/1")) == std::string("denied"));
    // A CONNECT User Name is ignored.
    CHECK(to_string(cli_pub(port, as_p, "p-6", "devices/device-p/2", "device-q", "x")) ==
          std::string("published"));
    CHECK(to_string(cli_pub(port, as_p, "p-7", "things/device-q/2", "device-q", "x")) ==
          std::string("denied"));
    // device-q: only the pattern.
    CHECK(to_string(cli_pub(port, as_q, "q-1", "things/device-q/3")) == std::string("published"));
    CHECK(logged_user(broker, "q-1") == "device-q");
    CHECK(to_string(cli_pub(port, as_q, "q-2", "devices/device-p/3")) == std::string("denied"));
    // Another identity's key, an unknown identity, no PSK at all: no handshake.
    CHECK(to_string(cli_pub(port, psk_options("device-q", key_p), "q-bad", "things/device-q/4")) ==
          std::string("refused"));
    CHECK(to_string(cli_pub(port, psk_options("nobody", key_p), "nobody", "things/nobody/1")) ==
          std::string("refused"));
    CHECK(to_string(cli_pub(port, {}, "no-psk", "things/x/1")) == std::string("refused"));

    REQUIRE(watcher.publish("devices/end", "end", 1));
    CHECK(topics_before(watcher, "devices/end") ==
          sorted({"devices/device-p/1", "things/device-p/1", "devices/device-p/2",
                  "things/device-q/3"}));

    // Reading: device-p gets the retained messages it may read, and only those, within the
    // window (-C 3 is never reached: mosquitto_sub stops at -W).
    for (const char* topic :
         {"devices/device-p/r", "devices/device-q/r", "things/device-p/r", "things/device-q/r"}) {
        REQUIRE(watcher.publish(topic, "kept", 1, true));
    }
    std::vector<std::string> args{"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(port)};
    args.insert(args.end(), as_p.begin(), as_p.end());
    args.insert(args.end(), {"-V", "mqttv5", "-i", "p-sub", "-t", "devices/#", "-t", "things/#",
                             "-v", "-C", "3", "-W", "2"});
    const auto sub = run_command(args, 10s);
    INFO("mosquitto_sub: exit " << sub.exit_code << ": " << sub.output);
    CHECK_FALSE(sub.timed_out);
    std::vector<std::string> lines;
    std::istringstream in(sub.output);
    for (std::string line; std::getline(in, line);) {
        if (!contains(line, "Timed out")) {
            lines.push_back(line);
        }
    }
    CHECK(sorted(lines) == sorted({"devices/device-p/r kept", "things/device-p/r kept"}));
    CHECK(broker.alive());
}

// ---------------------------------------------------------------------------------------------
// tern's log lines for refused CONNECTs

namespace {

/// What a refusal log line names as the listener: the text after "listener " up to ')'.
std::string listener_named(const std::string& line) {
    const auto at = line.find("listener ");
    if (at == std::string::npos) {
        return {};
    }
    const auto from = at + 9;
    const auto end = line.find(')', from);
    return line.substr(from, end == std::string::npos ? std::string::npos : end - from);
}

} // namespace

TEST_CASE("a refused CONNECT is logged with client id, user name and listener",
          "[broker][auth][tls][tern]") {
    TERN_ONLY_TEST("tern's log format");
    const auto& p = pki();
    readable_dir dir;
    broker_settings settings;
    settings.extra_config = {"allow_anonymous false",
                             "password_file " + password_file(dir, "passwd", {{"alice", "pw"}})};
    settings.listeners = {tls_listener(),
                          tls_listener("cafile " + p.ca_a + "\nuse_identity_as_username true\n")};
    broker_process broker(settings);

    {
        raw_client c(broker.port(), 4);
        connect_options o;
        o.client_id = "log-wrong-password";
        o.username = "alice";
        o.password = "wrong";
        const auto ack = c.connect(o);
        REQUIRE(ack);
        CHECK(int{ack->reason} == 5);
    }
    {
        raw_client c(broker.port(), 5);
        connect_options o;
        o.client_id = "log-anonymous";
        const auto ack = c.connect(o);
        REQUIRE(ack);
        CHECK(int{ack->reason} == 0x87);
    }
    CHECK(to_string(cli_pub(broker.port(1), tls_options(), "log-tls-user", "x", "mallory", "pw")) ==
          std::string("refused"));
    mqtt_client no_cert("log-no-certificate", MQTT_PROTOCOL_V311);
    no_cert.tls(p.ca_a);
    CHECK(no_cert.connect(broker.port(2)) == 4);

    const std::string wrong = log_line(broker, "client 'log-wrong-password'");
    INFO("wrong password: " << wrong);
    CHECK(contains(wrong, "CONNECT refused"));
    CHECK(contains(wrong, "user 'alice'"));
    const std::string plain_listener = listener_named(wrong);
    CHECK_FALSE(plain_listener.empty());

    const std::string anonymous = log_line(broker, "client 'log-anonymous'");
    INFO("anonymous: " << anonymous);
    CHECK(contains(anonymous, "CONNECT refused"));
    CHECK(listener_named(anonymous) == plain_listener);

    const std::string tls_user = log_line(broker, "client 'log-tls-user'");
    INFO("TLS listener: " << tls_user);
    CHECK(contains(tls_user, "CONNECT refused"));
    CHECK(contains(tls_user, "user 'mallory'"));
    CHECK_FALSE(listener_named(tls_user).empty());
    CHECK(listener_named(tls_user) != plain_listener);

    // Refused for want of a certificate identity: a bad-credentials refusal too (4 / 0x86).
    const std::string no_identity = log_line(broker, "client 'log-no-certificate'");
    INFO("no certificate identity; the log:\n" << broker.log());
    CHECK(contains(no_identity, "CONNECT refused"));
    CHECK_FALSE(listener_named(no_identity).empty());
    CHECK(listener_named(no_identity) != listener_named(tls_user));
    CHECK(broker.alive());
}
