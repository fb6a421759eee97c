#pragma once
// Primitive wire readers and writers [MQTT-1.5]. Private to the codec.

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include <tern/protocol/error.hpp>
#include <tern/protocol/topic.hpp>
#include <tern/protocol/types.hpp>

namespace tern::protocol::detail {

/// UTF-8 validity and the absence of '+' and '#' in one pass; empty is not checked.
/// Returns codec_error{} when fine, else invalid_utf8 or topic_name_invalid.
codec_error check_topic_characters(std::string_view topic) noexcept;

/// Reads big-endian fields from a bounded span. The error is sticky: after the first failure
/// every read returns a zero value, so straight-line parsing code checks ok() once per step
/// instead of after every field; a value that steers control flow must be checked before use.
class reader {
public:
    explicit reader(std::span<const std::uint8_t> s) noexcept
        : p_(s.data()), end_(s.data() + s.size()) {}

    bool ok() const noexcept { return error_ == codec_error{}; }
    codec_error error() const noexcept { return error_; }
    std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
    bool empty() const noexcept { return p_ == end_; }

    void fail(codec_error e) noexcept {
        if (error_ == codec_error{}) {
            error_ = e;
        }
        p_ = end_;
    }

    std::uint8_t u8() noexcept {
        if (remaining() < 1) {
            fail(codec_error::truncated_packet);
            return 0;
        }
        return *p_++;
    }

    std::uint16_t u16() noexcept {
        if (remaining() < 2) {
            fail(codec_error::truncated_packet);
            return 0;
        }
        auto v = static_cast<std::uint16_t>((p_[0] << 8) | p_[1]);
        p_ += 2;
        return v;
    }

    std::uint32_t u32() noexcept {
        if (remaining() < 4) {
            fail(codec_error::truncated_packet);
            return 0;
        }
        std::uint32_t v = (std::uint32_t{p_[0]} << 24) | (std::uint32_t{p_[1]} << 16) |
                          (std::uint32_t{p_[2]} << 8) | std::uint32_t{p_[3]};
        p_ += 4;
        return v;
    }

    /// Variable Byte Integer: at most 4 bytes and minimally encoded [MQTT-1.5.5-1].
    std::uint32_t vbi() noexcept {
        std::uint32_t value = 0;
        for (int i = 0; i < 4; ++i) {
            if (empty()) {
                fail(codec_error::truncated_packet);
                return 0;
            }
            std::uint8_t b = *p_++;
            value |= std::uint32_t{b & 0x7Fu} << (7 * i);
            if ((b & 0x80) == 0) {
                if (i > 0 && b == 0) {
                    fail(codec_error::malformed_variable_byte_integer);
                    return 0;
                }
                return value;
            }
        }
        fail(codec_error::malformed_variable_byte_integer);
        return 0;
    }

    /// Two-byte length followed by that many bytes (Binary Data).
    std::string_view binary() noexcept {
        std::uint16_t n = u16();
        if (remaining() < n) {
            fail(codec_error::truncated_packet);
            return {};
        }
        std::string_view v(reinterpret_cast<const char*>(p_), n);
        p_ += n;
        return v;
    }

    /// UTF-8 Encoded String, validated [MQTT-1.5.4-1, MQTT-1.5.4-2].
    std::string_view utf8() noexcept {
        std::string_view v = binary();
        if (ok() && !is_valid_utf8(v)) {
            fail(codec_error::invalid_utf8);
            return {};
        }
        return v;
    }

    /// Everything left (PUBLISH payload).
    std::string_view rest() noexcept {
        std::string_view v(reinterpret_cast<const char*>(p_), remaining());
        p_ = end_;
        return v;
    }

    /// A sub-reader over the next n bytes, which this reader skips.
    reader take(std::size_t n) noexcept {
        if (remaining() < n) {
            fail(codec_error::truncated_packet);
            return reader({p_, std::size_t{0}});
        }
        reader sub({p_, n});
        p_ += n;
        return sub;
    }

private:
    const std::uint8_t* p_;
    const std::uint8_t* end_;
    codec_error error_{};
};

/// Bytes a Variable Byte Integer of value v takes.
constexpr std::size_t vbi_size(std::uint32_t v) noexcept {
    return v < 128u ? 1 : v < 16'384u ? 2 : v < 2'097'152u ? 3 : 4;
}

/// Counts bytes instead of writing them: the first encoder pass, so the Remaining Length and
/// Property Length prefixes are known before anything is written. Same interface as writer.
class counter {
public:
    static constexpr bool writes = false;
    void u8(std::uint8_t) noexcept { n_ += 1; }
    void u16(std::uint16_t) noexcept { n_ += 2; }
    void u32(std::uint32_t) noexcept { n_ += 4; }
    void vbi(std::uint32_t v) noexcept {
        if (v > max_variable_byte_integer) { // e.g. a Subscription Identifier out of range
            fail(codec_error::not_encodable);
        }
        n_ += vbi_size(v);
    }
    void binary(std::string_view s) noexcept {
        if (s.size() > max_string_length) {
            fail(codec_error::string_too_long);
        }
        n_ += 2 + s.size();
    }
    void raw(std::string_view s) noexcept { n_ += s.size(); }
    void add(std::size_t n) noexcept { n_ += n; }
    void fail(codec_error e) noexcept {
        if (error_ == codec_error{}) {
            error_ = e;
        }
    }
    std::size_t size() const noexcept { return n_; }
    codec_error error() const noexcept { return error_; }

private:
    std::size_t n_ = 0;
    codec_error error_{};
};

/// Writes into a buffer already known to be large enough (the counter pass checked it).
class writer {
public:
    static constexpr bool writes = true;
    explicit writer(std::uint8_t* p) noexcept : p_(p) {}
    void u8(std::uint8_t v) noexcept { *p_++ = v; }
    void u16(std::uint16_t v) noexcept {
        p_[0] = static_cast<std::uint8_t>(v >> 8);
        p_[1] = static_cast<std::uint8_t>(v);
        p_ += 2;
    }
    void u32(std::uint32_t v) noexcept {
        p_[0] = static_cast<std::uint8_t>(v >> 24);
        p_[1] = static_cast<std::uint8_t>(v >> 16);
        p_[2] = static_cast<std::uint8_t>(v >> 8);
        p_[3] = static_cast<std::uint8_t>(v);
        p_ += 4;
    }
    void vbi(std::uint32_t v) noexcept {
        do {
            auto b = static_cast<std::uint8_t>(v & 0x7F);
            v >>= 7;
            if (v != 0) {
                b |= 0x80;
            }
            *p_++ = b;
        } while (v != 0);
    }
    void binary(std::string_view s) noexcept {
        u16(static_cast<std::uint16_t>(s.size()));
        raw(s);
    }
    void raw(std::string_view s) noexcept {
        if (!s.empty()) {
            std::memcpy(p_, s.data(), s.size());
            p_ += s.size();
        }
    }
    void fail(codec_error) noexcept {}
    std::uint8_t* position() const noexcept { return p_; }

private:
    std::uint8_t* p_;
};

} // namespace tern::protocol::detail
