// The rules of the `profile aws-iot` listener (broker/src/profile/aws_iot.hpp), one table per
// rule, against AWS IoT Core's documented values (docs/aws-iot-profile.md).
#include <catch2/catch.hpp>

#include "profile/aws_iot.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace tern::broker;
using tern::protocol::reason_code;

namespace {

std::string levels(int slashes) {
    std::string t = "a";
    for (int i = 0; i < slashes; ++i) {
        t += "/a";
    }
    return t;
}

} // namespace

TEST_CASE("aws-iot: the Basic Ingest and $share prefixes do not count towards the topic limits",
          "[aws-iot]") {
    CHECK(aws_iot::counted_part("a/b") == "a/b");
    CHECK(aws_iot::counted_part("$share/g/a/b") == "a/b");
    CHECK(aws_iot::counted_part("$aws/rules/my_rule/a/b") == "a/b");
    CHECK(aws_iot::counted_part("$aws/rules/my_rule") == "");
    CHECK(aws_iot::counted_part("$aws/things/t/shadow/update") == "$aws/things/t/shadow/update");
}

TEST_CASE("aws-iot: topics of 256 bytes and 7 slashes pass, one more is refused", "[aws-iot]") {
    CHECK_FALSE(aws_iot::check_topic_limits(std::string(256, 'x'), false));
    const auto long_name = aws_iot::check_topic_limits(std::string(257, 'x'), false);
    REQUIRE(long_name);
    CHECK(long_name->reason == reason_code::topic_name_invalid);
    CHECK_FALSE(aws_iot::check_topic_limits(levels(7), false));
    const auto deep = aws_iot::check_topic_limits(levels(8), false);
    REQUIRE(deep);
    CHECK(deep->reason == reason_code::topic_name_invalid);
    const auto deep_filter = aws_iot::check_topic_limits(levels(8), true);
    REQUIRE(deep_filter);
    CHECK(deep_filter->reason == reason_code::topic_filter_invalid);
    // The prefixes' own slashes and bytes are free.
    CHECK_FALSE(aws_iot::check_topic_limits("$share/group/" + levels(7), true));
    CHECK_FALSE(aws_iot::check_topic_limits("$aws/rules/r/" + levels(7), false));
    CHECK_FALSE(aws_iot::check_topic_limits("$aws/rules/r/" + std::string(256, 'x'), false));
    CHECK(aws_iot::check_topic_limits("$aws/rules/r/" + std::string(257, 'x'), false));
    CHECK_FALSE(aws_iot::check_topic_limits("$share/" + std::string(128, 'g') + "/a", true));
    const auto long_share =
        aws_iot::check_topic_limits("$share/" + std::string(129, 'g') + "/a", true);
    REQUIRE(long_share);
    CHECK(long_share->reason == reason_code::topic_filter_invalid);
}

TEST_CASE("aws-iot: clients publish only to the documented reserved topics, never retained",
          "[aws-iot]") {
    CHECK_FALSE(aws_iot::check_publish_topic("sensors/1", true));
    for (const char* ok :
         {"$aws/things/t1/shadow/update", "$aws/things/t1/shadow/name/n/get",
          "$aws/things/t1/jobs/get", "$aws/things/t1/defender/metrics/json",
          "$aws/certificates/create/json", "$aws/certificates/create-from-csr/cbor",
          "$aws/provisioning-templates/tpl/provision/json", "$aws/rules/my_rule/a",
          "$aws/sitewise/asset-models/x"}) {
        INFO(ok);
        CHECK_FALSE(aws_iot::check_publish_topic(ok, false));
        const auto retained = aws_iot::check_publish_topic(ok, true);
        REQUIRE(retained);
        CHECK(retained->reason == reason_code::not_authorized);
    }
    for (const char* refused :
         {"$SYS/broker/uptime", "$aws/events/presence/connected/c", "$aws/unknown", "$foo"}) {
        INFO(refused);
        const auto r = aws_iot::check_publish_topic(refused, false);
        REQUIRE(r);
        CHECK(r->reason == reason_code::not_authorized);
    }
}

TEST_CASE("aws-iot: clients subscribe to the reserved response and event topics, not to Basic "
          "Ingest or other $ topics",
          "[aws-iot]") {
    for (const char* ok :
         {"a/#", "$aws/things/t1/shadow/update/accepted", "$aws/things/+/shadow/#",
          "$aws/events/presence/connected/+", "$aws/events/subscriptions/#",
          "$aws/certificates/create/json/accepted", "$share/g/$aws/events/presence/#"}) {
        INFO(ok);
        CHECK_FALSE(aws_iot::check_subscribe_filter(ok));
    }
    for (const char* refused : {"$SYS/#", "$aws/rules/r/a", "$aws/#", "$share/g/$SYS/#"}) {
        INFO(refused);
        const auto r = aws_iot::check_subscribe_filter(refused);
        REQUIRE(r);
        CHECK(r->reason == reason_code::not_authorized);
    }
}

TEST_CASE("aws-iot: client ids of 128 bytes without a leading $", "[aws-iot]") {
    CHECK_FALSE(aws_iot::check_client_id(std::string(128, 'c')));
    CHECK_FALSE(aws_iot::check_client_id("thing-1$"));
    CHECK_FALSE(aws_iot::check_client_id("")); // the broker's own rules decide on empty ids
    const auto too_long = aws_iot::check_client_id(std::string(129, 'c'));
    REQUIRE(too_long);
    CHECK(too_long->reason == reason_code::client_identifier_not_valid);
    const auto dollar = aws_iot::check_client_id("$thing");
    REQUIRE(dollar);
    CHECK(dollar->reason == reason_code::client_identifier_not_valid);
}

TEST_CASE("aws-iot: keep-alive is clamped to 30..1200 s, none becomes 1200", "[aws-iot]") {
    CHECK(aws_iot::keep_alive(0) == 1200);
    CHECK(aws_iot::keep_alive(1) == 30);
    CHECK(aws_iot::keep_alive(29) == 30);
    CHECK(aws_iot::keep_alive(30) == 30);
    CHECK(aws_iot::keep_alive(60) == 60);
    CHECK(aws_iot::keep_alive(1200) == 1200);
    CHECK(aws_iot::keep_alive(1201) == 1200);
    CHECK(aws_iot::keep_alive(65535) == 1200);
}

TEST_CASE("aws-iot: session expiry is 1 h for a 3.1.1 persistent session, at most 7 days",
          "[aws-iot]") {
    CHECK(aws_iot::session_expiry(std::nullopt, true) == 3600);
    CHECK(aws_iot::session_expiry(std::nullopt, false) == 0);
    CHECK(aws_iot::session_expiry(0U, false) == 0);
    CHECK(aws_iot::session_expiry(120U, false) == 120);
    CHECK(aws_iot::session_expiry(604800U, false) == 604800);
    CHECK(aws_iot::session_expiry(604801U, false) == 604800);
    CHECK(aws_iot::session_expiry(0xFFFFFFFFU, false) == 604800);
}

TEST_CASE("aws-iot: retained messages on SUBSCRIBE only for exact, non-shared filters",
          "[aws-iot]") {
    CHECK(aws_iot::sends_retained_on_subscribe("a/b"));
    CHECK(aws_iot::sends_retained_on_subscribe("$aws/things/t/shadow/get/accepted"));
    CHECK_FALSE(aws_iot::sends_retained_on_subscribe("a/+"));
    CHECK_FALSE(aws_iot::sends_retained_on_subscribe("a/#"));
    CHECK_FALSE(aws_iot::sends_retained_on_subscribe("#"));
    CHECK_FALSE(aws_iot::sends_retained_on_subscribe("$share/g/a/b"));
}

namespace {

aws_iot::lifecycle_client sample_client() {
    aws_iot::lifecycle_client c;
    c.client_id = "dev\"ice\\1";
    c.session_identifier = "00112233445566778899aabbccddeeff";
    c.principal_identifier = "ab12";
    c.ip_address = "192.0.2.7";
    c.version_number = 42;
    return c;
}

} // namespace

TEST_CASE("aws-iot: lifecycle events carry AWS's fields as JSON (life-cycle-events.html)",
          "[aws-iot]") {
    const auto c = sample_client();
    CHECK(aws_iot::connected_topic("d1") == "$aws/events/presence/connected/d1");
    CHECK(aws_iot::disconnected_topic("d1") == "$aws/events/presence/disconnected/d1");
    CHECK(aws_iot::subscriptions_topic("d1", true) == "$aws/events/subscriptions/subscribed/d1");
    CHECK(aws_iot::subscriptions_topic("d1", false) == "$aws/events/subscriptions/unsubscribed/d1");

    const auto connected = nlohmann::json::parse(aws_iot::connected_event(c, 1573002230757));
    CHECK(connected["clientId"] == "dev\"ice\\1"); // escaped, and read back whole
    CHECK(connected["timestamp"] == 1573002230757);
    CHECK(connected["eventType"] == "connected");
    CHECK(connected["sessionIdentifier"] == "00112233445566778899aabbccddeeff");
    CHECK(connected["principalIdentifier"] == "ab12");
    CHECK(connected["ipAddress"] == "192.0.2.7");
    CHECK(connected["versionNumber"] == 42);
    CHECK(connected.size() == 7);

    const auto gone = nlohmann::json::parse(
        aws_iot::disconnected_event(c, 5, aws_iot::client_initiated_disconnect, true));
    CHECK(gone["eventType"] == "disconnected");
    CHECK(gone["clientInitiatedDisconnect"] == true);
    CHECK(gone["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT");
    CHECK(gone["versionNumber"] == 42);
    CHECK_FALSE(gone.contains("ipAddress"));

    const std::vector<std::string> filters{"a/b", "c/#"};
    const auto subscribed =
        nlohmann::json::parse(aws_iot::subscriptions_event(c, 9, true, filters));
    CHECK(subscribed["eventType"] == "subscribed");
    CHECK(subscribed["topics"] == nlohmann::json::array({"a/b", "c/#"}));
    const auto unsubscribed =
        nlohmann::json::parse(aws_iot::subscriptions_event(c, 9, false, filters));
    CHECK(unsubscribed["eventType"] == "unsubscribed");

    auto control = c;
    control.client_id = std::string_view("a\x01z", 3);
    CHECK(nlohmann::json::parse(aws_iot::connected_event(control, 1))["clientId"] ==
          std::string("a\x01z", 3));
}

TEST_CASE("aws-iot: lifecycle events only for client ids without wildcards; AWS's "
          "disconnectReason for each way tern closes",
          "[aws-iot]") {
    CHECK(aws_iot::has_lifecycle_events("thing-1"));
    CHECK_FALSE(aws_iot::has_lifecycle_events("a+b"));
    CHECK_FALSE(aws_iot::has_lifecycle_events("a#"));
    CHECK(aws_iot::disconnect_reason(reason_code::session_taken_over) == "DUPLICATE_CLIENTID");
    CHECK(aws_iot::disconnect_reason(reason_code::keep_alive_timeout) == "MQTT_KEEP_ALIVE_TIMEOUT");
    CHECK(aws_iot::disconnect_reason(reason_code::server_shutting_down) ==
          "SERVER_INITIATED_DISCONNECT");
    CHECK(aws_iot::disconnect_reason(reason_code::quota_exceeded) == "THROTTLED");
    CHECK(aws_iot::disconnect_reason(reason_code::not_authorized) == "FORBIDDEN_ACCESS");
    CHECK(aws_iot::disconnect_reason(reason_code::protocol_error) == "CLIENT_ERROR");
    CHECK(aws_iot::disconnect_reason(reason_code::packet_too_large) == "CLIENT_ERROR");
}

TEST_CASE("aws-iot: 100 publishes a second per connection: a burst of 100, then 100 a second; "
          "what cannot be refused still counts",
          "[aws-iot]") {
    const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    aws_iot::rate_bucket bucket(100, 100, t0);
    int taken = 0;
    while (bucket.take(t0)) {
        ++taken;
    }
    CHECK(taken == 100);
    CHECK_FALSE(bucket.take(t0 + std::chrono::milliseconds(5)));
    CHECK(bucket.take(t0 + std::chrono::milliseconds(10))); // one more after 10 ms
    CHECK_FALSE(bucket.take(t0 + std::chrono::milliseconds(10)));
    // Idle for a minute: still only one burst saved up.
    const auto later = t0 + std::chrono::minutes(1);
    taken = 0;
    while (bucket.take(later)) {
        ++taken;
    }
    CHECK(taken == 100);
    // Charged QoS 1 deliveries put the bucket in debt: inbound waits for it to be paid off.
    for (int i = 0; i < 50; ++i) {
        bucket.charge(later);
    }
    CHECK_FALSE(bucket.take(later + std::chrono::milliseconds(490)));
    CHECK(bucket.take(later + std::chrono::milliseconds(520)));
}

TEST_CASE("aws-iot: one CONNECT a second per client id; a refused one does not push the "
          "window on",
          "[aws-iot]") {
    const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    aws_iot::connect_throttle throttle;
    CHECK(throttle.admit("d1", t0));
    CHECK(throttle.admit("d2", t0)); // per client id
    CHECK_FALSE(throttle.admit("d1", t0 + std::chrono::milliseconds(500)));
    CHECK_FALSE(throttle.admit("d1", t0 + std::chrono::milliseconds(999)));
    CHECK(throttle.admit("d1", t0 + std::chrono::seconds(1)));
    CHECK_FALSE(throttle.admit("d1", t0 + std::chrono::milliseconds(1500)));
    // Bounded: many one-off ids are forgotten once over a second old.
    int admitted = 0;
    for (int i = 0; i < 70000; ++i) {
        admitted += throttle.admit("bulk-" + std::to_string(i), t0 + std::chrono::seconds(5));
    }
    CHECK(admitted == 70000);
    CHECK(throttle.admit("d2", t0 + std::chrono::seconds(7)));
}

TEST_CASE("aws-iot: 512 KiB a second per connection: a read over it puts the connection in "
          "debt until the bytes are paid off",
          "[aws-iot]") {
    const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    aws_iot::rate_bucket bytes(aws_iot::bytes_per_second, aws_iot::bytes_per_second, t0);
    bytes.charge(t0, 512.0 * 1024);
    CHECK_FALSE(bytes.in_debt(t0)); // the burst
    bytes.charge(t0, 256.0 * 1024);
    CHECK(bytes.in_debt(t0));
    CHECK(bytes.in_debt(t0 + std::chrono::milliseconds(490)));
    CHECK_FALSE(bytes.in_debt(t0 + std::chrono::milliseconds(510)));
    // Debt is bounded by one burst, however much one read brought.
    bytes.charge(t0 + std::chrono::seconds(10), 100.0 * 1024 * 1024);
    CHECK(bytes.in_debt(t0 + std::chrono::milliseconds(10990)));
    CHECK_FALSE(bytes.in_debt(t0 + std::chrono::milliseconds(12010)));
}

TEST_CASE("aws-iot: an account-level rate shared by workers, drawn in batches of 1%", "[aws-iot]") {
    const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    aws_iot::shared_rate account(20'000, t0);
    CHECK(account.batch() == 200);
    aws_iot::rate_allowance worker0;
    aws_iot::rate_allowance worker1;
    int taken = 0;
    while (worker0.take(account, t0) && taken < 100'000) {
        ++taken;
        if (worker1.take(account, t0)) {
            ++taken;
        }
    }
    CHECK(taken == 20'000); // one second's worth, between both workers
    CHECK_FALSE(worker1.take(account, t0));
    // 10 ms later: 200 more, one batch, to whichever worker asks first.
    const auto t1 = t0 + std::chrono::milliseconds(10);
    CHECK(worker1.take(account, t1));
    CHECK_FALSE(worker0.take(account, t1));
    taken = 1;
    while (worker1.take(account, t1)) {
        ++taken;
    }
    CHECK(taken == 200);
    // Charged (QoS 1 out) past empty: the account owes, and nobody draws until it is paid.
    for (int i = 0; i < 100; ++i) {
        worker0.charge(account, t1);
    }
    CHECK_FALSE(worker0.take(account, t1 + std::chrono::milliseconds(4)));
    CHECK(worker0.take(account, t1 + std::chrono::milliseconds(16)));

    aws_iot::shared_rate slow(5, t0);
    CHECK(slow.batch() == 1);
    CHECK(slow.draw(t0, 10) == 5);
    CHECK(slow.draw(t0, 1) == 0);
    aws_iot::shared_rate unlimited(0, t0);
    aws_iot::rate_allowance w;
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(w.take(unlimited, t0));
    }
}
