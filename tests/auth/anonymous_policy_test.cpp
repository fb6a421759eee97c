// auth::anonymous_policy: mosquitto's allow_anonymous rules without a password store.
#include <tern/auth/anonymous_policy.hpp>

#include <catch2/catch.hpp>

#include <optional>
#include <vector>

namespace {

using tern::auth::access;
using tern::auth::anonymous_policy;
using tern::auth::client_identity;
using tern::protocol::reason_code;

client_identity on_listener(std::size_t listener, std::optional<std::string> user = {},
                            bool verified = false) {
    client_identity who{std::string(1, 'c'), std::move(user)};
    who.username_verified = verified;
    who.listener = listener;
    return who;
}

} // namespace

TEST_CASE("anonymous policy: allow_anonymous true lets everyone in", "[auth]") {
    const anonymous_policy p(true, {});
    CHECK(p.authenticate(on_listener(0), std::nullopt).allowed());
    CHECK(p.authenticate(on_listener(3, "bob"), "pw").allowed());
}

TEST_CASE("anonymous policy: allow_anonymous false: a claimed user name proves nothing, a "
          "verified identity does",
          "[auth]") {
    const anonymous_policy p(false, {});
    const auto anonymous = p.authenticate(on_listener(0), std::nullopt);
    CHECK_FALSE(anonymous.allowed());
    CHECK(anonymous.reason == reason_code::not_authorized);
    CHECK_FALSE(anonymous.why.empty());
    CHECK_FALSE(p.authenticate(on_listener(0, "bob"), "pw").allowed());
    CHECK(p.authenticate(on_listener(0, "CN=device-1", true), std::nullopt).allowed());
}

TEST_CASE("anonymous policy: per_listener_settings overrides the global setting per listener",
          "[auth]") {
    const anonymous_policy p(false, {std::nullopt, true, false});
    CHECK_FALSE(p.anonymous_allowed(0)); // no own setting: the global one
    CHECK(p.anonymous_allowed(1));
    CHECK_FALSE(p.anonymous_allowed(2));
    CHECK_FALSE(p.anonymous_allowed(7)); // beyond the list: the global one
    CHECK(p.authenticate(on_listener(1), std::nullopt).allowed());
    CHECK_FALSE(p.authenticate(on_listener(2), std::nullopt).allowed());
    const anonymous_policy open(true, {false});
    CHECK_FALSE(open.authenticate(on_listener(0), std::nullopt).allowed());
    CHECK(open.authenticate(on_listener(1), std::nullopt).allowed());
}

TEST_CASE("anonymous policy: every topic may be published and subscribed", "[auth]") {
    const anonymous_policy p(false, {});
    CHECK(p.authorize(on_listener(0), access::publish, "a/b"));
    CHECK(p.authorize(on_listener(0), access::subscribe, "$share/g/#"));
}
