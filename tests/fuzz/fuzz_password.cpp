/// fuzz_password: password_file::parse on arbitrary bytes. It must return exactly one of a file
/// and an error, never crash, hang, leak or hit undefined behaviour, and be deterministic:
///   - an error names the input ("fuzz.pw"), a line that exists and a non-empty message;
///   - a file has no more users than the input has lines, and every user name found before a
///     ':' on a non-comment line is a user;
///   - verify() on those users (with the input's own bytes as passwords) and on unknown users
///     does not crash, is false for unknown users and gives the same answer twice.
/// Users whose iteration count is large are not verified, so one input stays fast (the parser
/// accepts up to max_pbkdf2_iterations, ~0.6 s each).

#include <tern/auth/password_file.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

using tern::auth::password_file;

[[noreturn]] void fail(const char* what) noexcept {
    std::fprintf(stderr, "FUZZ INVARIANT VIOLATED: %s\n", what);
    std::fflush(stderr);
    std::abort();
}

#define PASSWORD_FUZZ_STR2(x) #x
#define PASSWORD_FUZZ_STR(x) PASSWORD_FUZZ_STR2(x)
#define PASSWORD_FUZZ_CHECK(cond)                                                                  \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail(__FILE__ ":" PASSWORD_FUZZ_STR(__LINE__) ": " #cond);                             \
        }                                                                                          \
    } while (false)

constexpr std::string_view name = "fuzz.pw";
/// The verification budget per input: a few default-cost ($7$ 101) derivations.
constexpr std::uint32_t max_verified_iterations = 1'000;
constexpr int max_verified_users = 4;

bool is_blank(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_blank(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_blank(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

/// verify() twice must agree; an unknown user is never accepted.
void check_verify(const password_file& pw, std::string_view user, std::string_view password) {
    const bool known = pw.has_user(user);
    if (known) {
        const auto info = pw.hash_info(user);
        PASSWORD_FUZZ_CHECK(info.has_value());
        PASSWORD_FUZZ_CHECK(info->iterations >= 1 &&
                            info->iterations <= tern::auth::max_pbkdf2_iterations);
        if (info->iterations > max_verified_iterations) {
            return;
        }
    } else {
        PASSWORD_FUZZ_CHECK(!pw.hash_info(user).has_value());
    }
    const bool first = pw.verify(user, password);
    PASSWORD_FUZZ_CHECK(first == pw.verify(user, password));
    PASSWORD_FUZZ_CHECK(known || !first);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;

    const auto r = password_file::parse(text, name);
    PASSWORD_FUZZ_CHECK(r.file.has_value() != r.error.has_value());

    // Deterministic: the same text gives the same answer.
    const auto again = password_file::parse(text, name);
    PASSWORD_FUZZ_CHECK(again.file == r.file);
    PASSWORD_FUZZ_CHECK(again.error == r.error);

    if (r.error) {
        PASSWORD_FUZZ_CHECK(r.error->file == name);
        PASSWORD_FUZZ_CHECK(r.error->line >= 1 && r.error->line <= lines);
        PASSWORD_FUZZ_CHECK(!r.error->message.empty());
        PASSWORD_FUZZ_CHECK(r.error->to_string().starts_with("fuzz.pw:"));
        return 0;
    }

    const password_file& pw = *r.file;
    PASSWORD_FUZZ_CHECK(pw.size() <= lines);
    PASSWORD_FUZZ_CHECK(!pw.has_user(""));

    // Walk the lines as the parser documents them: every entry's name is a user. Verify a
    // few with the rest of the line, and the whole input, as passwords.
    int verified = 0;
    std::size_t pos = 0;
    for (;;) {
        const auto eol = text.find('\n', pos);
        const auto line = text.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
        const auto content = trim(line);
        if (!content.empty() && content.front() != '#') {
            const auto colon = content.find(':');
            PASSWORD_FUZZ_CHECK(colon != std::string_view::npos);
            const auto user = trim(content.substr(0, colon));
            PASSWORD_FUZZ_CHECK(pw.has_user(user));
            if (verified < max_verified_users) {
                ++verified;
                check_verify(pw, user, content.substr(colon + 1));
                check_verify(pw, user, text);
            }
        }
        if (eol == std::string_view::npos) {
            break;
        }
        pos = eol + 1;
    }
    check_verify(pw, "fuzz-unknown-user\x01", "password");
    return 0;
}
