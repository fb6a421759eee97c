// The rules of the `profile aws-iot` listener (broker/src/profile/aws_iot.hpp), one table per
// rule, against AWS IoT Core's documented values (docs/aws-iot-profile.md).
#include <catch2/catch.hpp>

#include "profile/aws_iot.hpp"

#include <string>

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
