#pragma once
// The error_category shape shared by codec_error and reason_code: messages come from the
// enumeration's to_string(), so a category never allocates on the noexcept message path.

#include <boost/system/error_category.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace tern::protocol::detail {

template <typename Enum> class enum_category : public boost::system::error_category {
public:
    std::string message(int ev) const override {
        return std::string(to_string(static_cast<Enum>(ev)));
    }

    char const* message(int ev, char* buffer, std::size_t len) const noexcept override {
        if (len == 0) {
            return buffer;
        }
        std::string_view s = to_string(static_cast<Enum>(ev));
        const std::size_t n = s.size() < len ? s.size() : len - 1;
        s.copy(buffer, n);
        buffer[n] = '\0';
        return buffer;
    }
};

} // namespace tern::protocol::detail
