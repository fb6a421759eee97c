// tern-bench topic templates: %i, %c, %p, %%.
#include "topic_template.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>

using tern::bench::topic_template;

TEST_CASE("templates render index, client id and source", "[bench][template]") {
    const topic_template t("dev/%i/telemetry");
    CHECK(t.render(17, "tb-x") == "dev/17/telemetry");
    CHECK(t.uses_index());
    CHECK_FALSE(t.is_constant());

    CHECK(topic_template("c/%c").render(0, "tb-dev-3-abc") == "c/tb-dev-3-abc");
    CHECK(topic_template("cmd/%p").render(5, "x", 42) == "cmd/42");
    CHECK(topic_template("100%%/%i%i").render(3, "x") == "100%/33");
    CHECK(topic_template("plain/topic").is_constant());
    CHECK(topic_template("plain/topic").render(9, "x") == "plain/topic");
}

TEST_CASE("templates reject unknown placeholders", "[bench][template]") {
    CHECK_THROWS_AS(topic_template("a/%x"), std::invalid_argument);
    CHECK_THROWS_AS(topic_template("a/%"), std::invalid_argument);
    CHECK_THROWS_WITH(topic_template("a/%d"), Catch::Contains("%d"));
}
