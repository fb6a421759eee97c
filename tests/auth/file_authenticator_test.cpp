// auth::file_authenticator: password_file, acl_file and allow_anonymous per listener, read from
// real files (the password file made by Debian's mosquitto_passwd when it is there).
#include <tern/auth/file_authenticator.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace tern::auth;
using tern::protocol::reason_code;

/// A fresh directory under /tmp, removed with everything in it.
struct temp_dir {
    temp_dir() {
        std::string pattern = "/tmp/tern-authn-test-XXXXXX";
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::string& text) const {
        const std::string p = path + "/" + name;
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }
    std::string path;
};

// alice / secret, $7$ with 101 iterations, as mosquitto_passwd 2.0.11 wrote it.
const std::string alice_line =
    "alice:$7$101$ZuWloEyxm0+Xdsow$ltSURxggCEtLNuu8DZbaAHjiZXFf8JePB5yP6fn4VaNLAphgqDFuYqe7PrA"
    "qWo3vzatqiXxWoQJEILrFiBBEkA==\n";

client_identity who(std::size_t listener, std::optional<std::string> user, bool verified = false,
                    std::string id = std::string(1, 'c')) {
    client_identity w{std::move(id), std::move(user)};
    w.username_verified = verified;
    w.listener = listener;
    return w;
}

} // namespace

TEST_CASE("file_authenticator: password file, anonymous clients and verified identities",
          "[auth][files]") {
    temp_dir dir;
    const auto pw = dir.write("passwd", alice_line);
    const auto loaded = file_authenticator::load({{false, pw, ""}, {true, pw, ""}});
    REQUIRE(loaded.authenticator);
    const auto& a = *loaded.authenticator;
    CHECK(a.authenticate(who(0, "alice"), "secret").allowed());
    const auto wrong = a.authenticate(who(0, "alice"), "guess");
    CHECK(wrong.reason == reason_code::not_authorized); // mosquitto 2.0.11: 0x87 / 5
    CHECK_FALSE(a.authenticate(who(0, "alice"), std::nullopt).allowed());
    CHECK_FALSE(a.authenticate(who(0, "alice"), "").allowed()); // empty = none (mosquitto)
    CHECK_FALSE(a.authenticate(who(0, "mallory"), "secret").allowed());
    CHECK_FALSE(a.authenticate(who(0, std::nullopt), std::nullopt).allowed());
    // Listener 1 allows anonymous clients, but a user name must still be proven.
    CHECK(a.authenticate(who(1, std::nullopt), std::nullopt).allowed());
    CHECK_FALSE(a.authenticate(who(1, "alice"), "guess").allowed());
    // A certificate identity needs no password.
    CHECK(a.authenticate(who(0, "CN=device", true), std::nullopt).allowed());
    CHECK_FALSE(a.checks_delivery());
}

TEST_CASE("file_authenticator: only slow hashes are costly enough to leave the worker",
          "[auth][files]") {
    temp_dir dir;
    // The same salt and hash with 1000 rounds: parsed, never verified here.
    std::string slow_line = alice_line;
    slow_line.replace(0, std::string("alice:$7$101$").size(), "slow:$7$1000$");
    const std::string sha512_line =
        "carol:$6$ZuWloEyxm0+Xdsow$ltSURxggCEtLNuu8DZbaAHjiZXFf8JePB5yP6fn4VaNLAphgqDFuYqe7PrA"
        "qWo3vzatqiXxWoQJEILrFiBBEkA==\n";
    const auto pw = dir.write("passwd", alice_line + slow_line + sha512_line);
    const auto loaded = file_authenticator::load({{false, pw, ""}});
    REQUIRE(loaded.authenticator);
    const auto& a = *loaded.authenticator;
    CHECK(a.authenticate_is_costly(who(0, "slow"), "pw"));
    CHECK_FALSE(a.authenticate_is_costly(who(0, "alice"), "pw"));        // mosquitto_passwd's 101
    CHECK_FALSE(a.authenticate_is_costly(who(0, "carol"), "pw"));        // $6$: one SHA-512
    CHECK_FALSE(a.authenticate_is_costly(who(0, "mallory"), "pw"));      // dummy: 101 rounds
    CHECK_FALSE(a.authenticate_is_costly(who(0, "slow"), std::nullopt)); // refused unhashed
    CHECK_FALSE(a.authenticate_is_costly(who(0, "slow", true), "pw"));   // certificate user
    CHECK_FALSE(a.authenticate_is_costly(who(1, "slow"), "pw"));         // no such listener
}

TEST_CASE("file_authenticator: the ACL decides publish, subscribe and delivery; $SYS is the "
          "broker's",
          "[auth][files]") {
    temp_dir dir;
    const auto acl = dir.write("acl", "topic read public/#\n"
                                      "user alice\n"
                                      "topic readwrite a/#\n"
                                      "pattern write dev/%c/#\n");
    const auto loaded = file_authenticator::load({{true, "", acl}});
    REQUIRE(loaded.authenticator);
    const auto& a = *loaded.authenticator;
    CHECK(a.checks_delivery());
    const auto alice = who(0, "alice", false, "d1");
    CHECK(a.authorize(alice, access::publish, "a/x"));
    CHECK(a.authorize(alice, access::publish, "dev/d1/t"));
    CHECK_FALSE(a.authorize(alice, access::publish, "dev/d2/t"));
    CHECK(a.authorize(alice, access::subscribe, "#")); // a/# is readable inside it
    CHECK_FALSE(a.authorize(alice, access::subscribe, "b/#"));
    CHECK(a.authorize(alice, access::receive, "a/1"));
    CHECK_FALSE(a.authorize(alice, access::receive, "public/1")); // not in her section
    const auto anon = who(0, std::nullopt);
    CHECK(a.authorize(anon, access::receive, "public/1"));
    CHECK_FALSE(a.authorize(anon, access::publish, "public/1"));
    // Without an ACL everything but $SYS may be published.
    const auto open = file_authenticator::load({{true, "", ""}});
    REQUIRE(open.authenticator);
    CHECK(open.authenticator->authorize(anon, access::publish, "x/y"));
    CHECK_FALSE(open.authenticator->authorize(anon, access::publish, "$SYS/broker/uptime"));
    CHECK(open.authenticator->authorize(anon, access::subscribe, "$SYS/#"));
}

TEST_CASE("file_authenticator: a file that does not load names itself (and the line)",
          "[auth][files]") {
    temp_dir dir;
    const auto missing = file_authenticator::load({{false, dir.path + "/nope", ""}});
    CHECK_FALSE(missing.authenticator);
    CHECK(missing.error.find(dir.path + "/nope") == 0);
    const auto bad_acl = dir.write("acl", "topic read a/#\ntopic sometimes b\n");
    const auto bad = file_authenticator::load({{false, "", bad_acl}});
    CHECK_FALSE(bad.authenticator);
    CHECK(bad.error.find(bad_acl + ":2: ") == 0);
}
