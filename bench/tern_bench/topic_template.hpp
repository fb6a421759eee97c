#pragma once
/// Topic and filter templates of tern-bench: `%i` is the client's index within its role,
/// `%c` its client id, `%p` (reply topics only) the index of the publisher being answered,
/// `%%` a literal percent sign. E.g. "dev/%i/telemetry" -> "dev/17/telemetry".
///
/// Thread contract: immutable after construction; thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tern::bench {

class topic_template {
public:
    topic_template() = default;
    /// Parses `text`. Throws std::invalid_argument naming the offending sequence for any `%`
    /// not followed by i, c, p or %.
    explicit topic_template(std::string_view text);

    const std::string& text() const noexcept { return text_; }
    bool uses_index() const noexcept { return uses_index_; }
    bool uses_client() const noexcept { return uses_client_; }
    bool uses_source() const noexcept { return uses_source_; }
    /// True when every client renders the same string.
    bool is_constant() const noexcept { return !uses_index_ && !uses_client_ && !uses_source_; }

    std::string render(std::uint64_t index, std::string_view client_id,
                       std::uint64_t source = 0) const;

private:
    enum class kind : std::uint8_t { literal, index, client, source };
    struct piece {
        kind what = kind::literal;
        std::string literal;
    };
    std::string text_;
    std::vector<piece> pieces_;
    bool uses_index_ = false;
    bool uses_client_ = false;
    bool uses_source_ = false;
};

} // namespace tern::bench
