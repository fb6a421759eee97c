#include "topic_template.hpp"

#include <stdexcept>

namespace tern::bench {

topic_template::topic_template(std::string_view text) : text_(text) {
    std::string literal;
    auto flush = [&] {
        if (!literal.empty()) {
            pieces_.push_back({kind::literal, std::move(literal)});
            literal.clear();
        }
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            literal += text[i];
            continue;
        }
        if (i + 1 == text.size()) {
            throw std::invalid_argument("'%' at the end (use %% for a percent sign)");
        }
        const char c = text[++i];
        switch (c) {
        case '%':
            literal += '%';
            break;
        case 'i':
            flush();
            pieces_.push_back({kind::index, {}});
            uses_index_ = true;
            break;
        case 'c':
            flush();
            pieces_.push_back({kind::client, {}});
            uses_client_ = true;
            break;
        case 'p':
            flush();
            pieces_.push_back({kind::source, {}});
            uses_source_ = true;
            break;
        default:
            throw std::invalid_argument(std::string("unknown placeholder '%") + c +
                                        "' (known: %i index, %c client id, %p source, %%)");
        }
    }
    flush();
}

std::string topic_template::render(std::uint64_t index, std::string_view client_id,
                                   std::uint64_t source) const {
    std::string out;
    out.reserve(text_.size() + 16);
    for (const auto& p : pieces_) {
        switch (p.what) {
        case kind::literal:
            out += p.literal;
            break;
        case kind::index:
            out += std::to_string(index);
            break;
        case kind::client:
            out += client_id;
            break;
        case kind::source:
            out += std::to_string(source);
            break;
        }
    }
    return out;
}

} // namespace tern::bench
