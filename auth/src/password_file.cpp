#include <tern/auth/password_file.hpp>
#include <tern/core/file.hpp>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <span>
#include <system_error>
#include <unordered_map>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace tern::auth {

namespace {

constexpr std::size_t salt_size = 12;
constexpr std::size_t hash_size = 64;
/// mosquitto_passwd's default (PW_DEFAULT_ITERATIONS); what an unknown user's dummy costs.
constexpr std::uint32_t default_iterations = 101;

/// The characters misc__trimblanks() strips with isspace() in the "C" locale.
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

/// A user name or hash field for an error message: control bytes and backslashes escaped as
/// \xHH, at most 64 bytes, so a hostile or binary file cannot make the log line huge or garble
/// the terminal.
std::string printable(std::string_view s) {
    constexpr std::size_t limit = 64;
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f || c == '\\') {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += static_cast<char>(c);
        }
    }
    if (s.size() > limit) {
        out += "...";
    }
    return out;
}

int base64_value(char c) noexcept {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

/// Strict standard base64 (padded, no whitespace) that must decode to exactly `out.size()`
/// bytes. mosquitto decodes with OpenSSL's base64 BIO and then requires 12 or 64 bytes, which
/// in practice also demands padding; unused low bits are not checked, as OpenSSL does not.
bool decode_base64_exact(std::string_view in, std::span<unsigned char> out) noexcept {
    if (in.empty() || in.size() % 4 != 0) {
        return false;
    }
    std::size_t padding = 0;
    if (in.back() == '=') {
        padding = in[in.size() - 2] == '=' ? 2 : 1;
    }
    // Checked before decoding, so the work is bounded by out.size() whatever the input.
    if (in.size() / 4 * 3 - padding != out.size()) {
        return false;
    }
    std::size_t o = 0;
    for (std::size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        std::uint32_t group = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            const char c = in[i + j];
            int v = 0;
            if (c == '=') {
                // '=' only as the final one or two characters.
                if (!last || j < 4 - padding) {
                    return false;
                }
            } else {
                v = base64_value(c);
                if (v < 0 || (last && j >= 4 - padding)) {
                    return false;
                }
            }
            group = (group << 6) | static_cast<std::uint32_t>(v);
        }
        const std::size_t bytes = last ? 3 - padding : 3;
        for (std::size_t b = 0; b < bytes; ++b) {
            out[o++] = static_cast<unsigned char>(group >> (16 - 8 * b));
        }
    }
    return o == out.size();
}

/// Decimal digits only (atoi() would take "12abc", " 12" or "-1"), in 1..max.
std::optional<std::uint32_t> parse_iterations(std::string_view s) noexcept {
    if (s.empty() || s.size() > 10) {
        return std::nullopt;
    }
    std::uint64_t v = 0;
    for (const char c : s) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (v < 1 || v > max_pbkdf2_iterations) {
        return std::nullopt;
    }
    return static_cast<std::uint32_t>(v);
}

/// Splits `s` at '$' into at most `out.size()` fields; returns the field count, or
/// out.size() + 1 when there are more.
std::size_t split_dollar(std::string_view s, std::span<std::string_view> out) noexcept {
    std::size_t n = 0;
    for (;;) {
        const auto pos = s.find('$');
        if (n == out.size()) {
            return n + 1;
        }
        out[n++] = s.substr(0, pos);
        if (pos == std::string_view::npos) {
            return n;
        }
        s.remove_prefix(pos + 1);
    }
}

/// SHA-512 over password || salt ($6$) or PBKDF2-HMAC-SHA512 ($7$), into `out`.
bool digest(std::string_view password, password_hash_info info,
            const std::array<unsigned char, salt_size>& salt,
            std::array<unsigned char, hash_size>& out) noexcept {
    // A default-constructed string_view has a null data(); hand OpenSSL a real empty string.
    const char* pass = password.data() != nullptr ? password.data() : "";
    if (info.kind == password_hash_kind::sha512_pbkdf2) {
        // An MQTT password is at most 65535 bytes; the guard only keeps the cast exact.
        if (password.size() > static_cast<std::size_t>(INT_MAX) || info.iterations < 1 ||
            info.iterations > max_pbkdf2_iterations) {
            return false;
        }
        return PKCS5_PBKDF2_HMAC(pass, static_cast<int>(password.size()), salt.data(),
                                 static_cast<int>(salt.size()), static_cast<int>(info.iterations),
                                 EVP_sha512(), static_cast<int>(out.size()), out.data()) == 1;
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (ctx == nullptr) {
        return false;
    }
    unsigned int len = 0;
    const bool ok = EVP_DigestInit_ex(ctx, EVP_sha512(), nullptr) == 1 &&
                    EVP_DigestUpdate(ctx, pass, password.size()) == 1 &&
                    EVP_DigestUpdate(ctx, salt.data(), salt.size()) == 1 &&
                    EVP_DigestFinal_ex(ctx, out.data(), &len) == 1 && len == out.size();
    EVP_MD_CTX_free(ctx);
    return ok;
}

} // namespace

std::string password_file_error::to_string() const {
    if (line == 0) {
        return fmt::format("{}: {}", file, message);
    }
    return fmt::format("{}:{}: {}", file, line, message);
}

password_file::parse_result password_file::parse(std::string_view text, std::string_view name) {
    std::size_t line_no = 0;
    auto fail = [&](std::string message) {
        parse_result failed;
        failed.error = password_file_error{std::string(name), line_no, std::move(message)};
        return failed;
    };

    password_file file;
    // User name -> line of its entry; views into `text`, which outlives this call.
    std::unordered_map<std::string_view, std::size_t> seen;
    std::size_t pos = 0;
    for (;;) {
        ++line_no;
        const auto eol = text.find('\n', pos);
        const auto line = text.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
        const auto content = trim(line);

        if (!content.empty() && content.front() != '#') {
            // pwfile__parse() uses strtok_r(":"), which would also skip leading colons and
            // end the hash at a second one; we split at the first and refuse the rest.
            const auto colon = content.find(':');
            if (colon == std::string_view::npos) {
                return fail("expected \"username:password-hash\", found no ':'");
            }
            const auto user = trim(content.substr(0, colon));
            const auto hash = trim(content.substr(colon + 1));
            if (user.empty()) {
                return fail("empty user name before ':'");
            }
            if (user.size() > max_password_file_username) {
                return fail(fmt::format("user name is {} bytes long; the limit is {}", user.size(),
                                        max_password_file_username));
            }
            if (std::any_of(user.begin(), user.end(), [](char c) {
                    const auto u = static_cast<unsigned char>(c);
                    return u < 0x20 || u == 0x7f;
                })) {
                return fail(
                    fmt::format("user name '{}' contains a control character", printable(user)));
            }
            const auto who = printable(user);
            if (const auto [it, inserted] = seen.emplace(user, line_no); !inserted) {
                return fail(
                    fmt::format("duplicate user '{}' (first defined on line {})", who, it->second));
            }
            if (hash.empty()) {
                return fail(fmt::format("user '{}' has no password hash", who));
            }
            if (hash.find(':') != std::string_view::npos) {
                return fail(fmt::format("user '{}' has a ':' inside its password hash", who));
            }
            if (hash.front() != '$') {
                return fail(fmt::format(
                    "user '{}' has a plain-text password; only hashed passwords are accepted, as "
                    "in mosquitto 2.0 (convert the file with \"mosquitto_passwd -U FILE\")",
                    who));
            }

            std::array<std::string_view, 4> fields{};
            const auto count = split_dollar(hash.substr(1), fields);
            entry e;
            e.username = std::string(user);
            std::string_view salt64;
            std::string_view hash64;
            if (fields[0] == "6") {
                if (count != 3) {
                    return fail(fmt::format(
                        "user '{}' has a malformed $6$ hash (expected $6$SALT$HASH)", who));
                }
                e.info = {password_hash_kind::sha512, 1};
                salt64 = fields[1];
                hash64 = fields[2];
            } else if (fields[0] == "7") {
                if (count != 4) {
                    return fail(fmt::format(
                        "user '{}' has a malformed $7$ hash (expected $7$ITERATIONS$SALT$HASH)",
                        who));
                }
                const auto iterations = parse_iterations(fields[1]);
                if (!iterations) {
                    return fail(fmt::format(
                        "user '{}' has an invalid PBKDF2 iteration count '{}' (expected 1 to {})",
                        who, printable(fields[1]), max_pbkdf2_iterations));
                }
                e.info = {password_hash_kind::sha512_pbkdf2, *iterations};
                salt64 = fields[2];
                hash64 = fields[3];
            } else {
                return fail(fmt::format(
                    "user '{}' has an unsupported password hash type '${}$' (expected $6$ or $7$)",
                    who, printable(fields[0])));
            }
            if (!decode_base64_exact(salt64, e.salt)) {
                return fail(fmt::format(
                    "user '{}' has an invalid salt (expected {} bytes in base64)", who, salt_size));
            }
            if (!decode_base64_exact(hash64, e.hash)) {
                return fail(fmt::format(
                    "user '{}' has an invalid hash (expected {} bytes in base64)", who, hash_size));
            }
            file.entries_.push_back(std::move(e));
        }

        if (eol == std::string_view::npos) {
            break;
        }
        pos = eol + 1;
    }

    std::sort(file.entries_.begin(), file.entries_.end(),
              [](const entry& a, const entry& b) { return a.username < b.username; });
    parse_result result;
    result.file = std::move(file);
    return result;
}

password_file::parse_result password_file::load(const std::string& path) {
    const auto read = core::read_whole_file(path);
    if (!read.content) {
        parse_result result;
        result.error = password_file_error{path, 0, read.describe_failure("password file")};
        return result;
    }
    return parse(*read.content, path);
}

const password_file::entry* password_file::find(std::string_view username) const {
    const auto it = std::lower_bound(
        entries_.begin(), entries_.end(), username,
        [](const entry& e, std::string_view name) { return std::string_view(e.username) < name; });
    if (it == entries_.end() || it->username != username) {
        return nullptr;
    }
    return &*it;
}

bool password_file::has_user(std::string_view username) const {
    return find(username) != nullptr;
}

std::optional<password_hash_info> password_file::hash_info(std::string_view username) const {
    if (const auto* e = find(username)) {
        return e->info;
    }
    return std::nullopt;
}

bool password_file::verify(std::string_view username, std::string_view password) const {
    const entry* e = find(username);
    // An unknown user still pays for a default derivation against a fixed salt, so a client
    // cannot tell "no such user" from "wrong password" by the CONNACK's latency.
    static const entry dummy{{}, {password_hash_kind::sha512_pbkdf2, default_iterations}, {}, {}};
    const entry& target = e != nullptr ? *e : dummy;

    std::array<unsigned char, hash_size> computed{};
    const bool ok = digest(password, target.info, target.salt, computed);
    const bool equal = CRYPTO_memcmp(computed.data(), target.hash.data(), computed.size()) == 0;
    OPENSSL_cleanse(computed.data(), computed.size());
    return ok && e != nullptr && equal;
}

} // namespace tern::auth
