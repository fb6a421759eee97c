#include <tern/core/html.hpp>

#include <fmt/format.h>

namespace tern::core {

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            if (c < 0x20 || c == 0x7F) {
                out += fmt::format("&#x{:X};", c == 0x7F ? 0x2421 : c + 0x2400);
            } else {
                out += ch;
            }
        }
    }
    return out;
}

} // namespace tern::core
