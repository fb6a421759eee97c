#pragma once
/// mosquitto's `password_file`: user names with salted SHA-512 password hashes, one per line,
/// as written by `mosquitto_passwd` (Mosquitto 2.0):
///
///     username:$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>   (the default)
///     username:$6$<base64 salt>$<base64 SHA-512(password || salt)>         (-H sha512)
///
/// The salt is 12 bytes and the hash 64 bytes, both in standard padded base64. What the parser
/// accepts, and where it is stricter than mosquitto (which logs and drops, or silently ignores,
/// lines it cannot use, and starts anyway):
///   - Lines end with LF; a CR before it and blanks around the user name and the hash are
///     ignored (mosquitto trims both with isspace()). Blank lines are ignored.
///   - A line whose first non-blank character is `#` is a comment. mosquitto only recognises
///     `#` in column 0, but an indented comment never yields a usable entry there either.
///   - The user name is everything before the first `:`, and may contain spaces. It must not
///     be empty, longer than 65535 bytes, or contain control characters (mosquitto_passwd
///     refuses to write such names; a client could never send one).
///   - Errors where mosquitto skips or drops the line: a line without `:`, a user without a
///     hash, a plain-text password (mosquitto 2.0 drops it: "Invalid password hash type"), an
///     unknown hash type, a salt or hash that does not decode to 12/64 bytes, an iteration
///     count outside 1..max_pbkdf2_iterations.
///   - Errors where mosquitto accepts the line: a second entry for the same user (mosquitto
///     keeps whichever its hash table finds, in practice the last), fields after the hash
///     (`$7$101$salt$hash$junk`) and anything after a second `:`, which it ignores.
/// Every error names the file and line; the first one in the file is returned.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::auth {

/// The largest PBKDF2 iteration count accepted. verify() runs the whole key derivation on the
/// calling worker, about 0.6 µs per iteration on a current x86 core: mosquitto_passwd's default
/// of 101 costs ~60 µs, this bound ~0.6 s. Larger counts (mosquitto accepts up to INT_MAX,
/// ~20 minutes per CONNECT) are refused at parse time rather than stalling a worker.
inline constexpr std::uint32_t max_pbkdf2_iterations = 1'000'000;

/// The longest user name accepted: an MQTT UTF-8 string holds at most 65535 bytes.
inline constexpr std::size_t max_password_file_username = 65'535;

/// Why a password file was refused.
struct password_file_error {
    /// The path given to load(), or the name given to parse().
    std::string file;
    /// 1-based line of the offending entry; 0 when the error is about the whole file (it
    /// could not be read).
    std::size_t line = 0;
    /// What is wrong, naming the user where there is one. Never empty.
    std::string message;

    /// "FILE:LINE: MESSAGE", or "FILE: MESSAGE" for line 0 (as config_error does).
    std::string to_string() const;

    bool operator==(const password_file_error&) const = default;
};

/// The two hash formats of mosquitto 2.0.
enum class password_hash_kind : std::uint8_t {
    sha512 = 6,        ///< `$6$`: one SHA-512 of password then salt (mosquitto 1.x default)
    sha512_pbkdf2 = 7, ///< `$7$`: PBKDF2-HMAC-SHA512 (mosquitto 2.0 default)
};

/// How one user's password is hashed (for diagnostics, e.g. warning about `$6$` entries).
struct password_hash_info {
    password_hash_kind kind = password_hash_kind::sha512_pbkdf2;
    /// PBKDF2 iterations, in 1..max_pbkdf2_iterations; 1 for `$6$`.
    std::uint32_t iterations = 1;

    bool operator==(const password_hash_info&) const = default;
};

struct password_file_parse_result;

/// A parsed password file: an immutable set of users and their hashes.
///
/// Thread contract: immutable after parse()/load() (no member function modifies it), so any
/// number of threads may call the const members of one object concurrently. Reloading means
/// parsing a new object and publishing it, as with other configuration snapshots.
class password_file {
public:
    /// What parse() and load() return (defined below: it holds a password_file).
    using parse_result = password_file_parse_result;

    /// A file with no users: verify() is always false.
    password_file() = default;

    /// Parses the text of a password file, as if read from a file called `name` (used in
    /// error messages only). Returns the first error in file order. Pure: no I/O and no key
    /// derivation (base64 decoding and a sort only). Thread-safe.
    static parse_result parse(std::string_view text, std::string_view name);

    /// Reads and parses the file at `path`. A file that cannot be opened or read gives an
    /// error with line 0 and the OS reason ("cannot open password file: No such file or
    /// directory"). Blocking file I/O: call at startup or reload, not on a worker. Does not
    /// check permissions (mosquitto 2.0 only warns about world-readable files). Thread-safe.
    static parse_result load(const std::string& path);

    /// True when the file has an entry for `username` (compared byte for byte, case
    /// sensitive, after the file's blanks were trimmed). Thread-safe.
    bool has_user(std::string_view username) const;

    /// True when `username` exists and `password` hashes to its stored hash; the hashes are
    /// compared in constant time. The cost is the user's PBKDF2 iteration count (see
    /// max_pbkdf2_iterations); an unknown user costs one default (101-iteration) derivation
    /// too, so timing does not reveal which users exist. Returns false, never throws, when
    /// OpenSSL fails.
    ///
    /// `password` is the CONNECT Password, hashed byte for byte. Two mosquitto quirks are
    /// left to the caller: mosquitto hashes only up to the first NUL byte (it calls strlen);
    /// here a password with a NUL followed by more bytes does not match, since
    /// mosquitto_passwd cannot write the hash of such a password (for `$7$`, trailing NULs
    /// alone do match: HMAC zero-pads short keys). And mosquitto 2.0 reads a zero-length CONNECT
    /// Password as no password and refuses it, whereas verify(user, "") is true for a user
    /// whose hash is that of the empty password (`mosquitto_passwd -b FILE user ""`).
    /// Thread-safe.
    bool verify(std::string_view username, std::string_view password) const;

    /// How `username`'s password is hashed; nullopt for an unknown user. Thread-safe.
    std::optional<password_hash_info> hash_info(std::string_view username) const;

    /// Number of users. Thread-safe.
    std::size_t size() const noexcept { return entries_.size(); }

    bool operator==(const password_file&) const = default;

private:
    struct entry {
        std::string username;
        password_hash_info info;
        std::array<unsigned char, 12> salt{};
        std::array<unsigned char, 64> hash{};

        bool operator==(const entry&) const = default;
    };

    const entry* find(std::string_view username) const;

    /// Sorted by username (byte order), no duplicates.
    std::vector<entry> entries_;
};

/// The outcome of password_file::parse() and load(): exactly one of `file` and `error` is set.
struct password_file_parse_result {
    std::optional<password_file> file;
    std::optional<password_file_error> error;
};

} // namespace tern::auth
