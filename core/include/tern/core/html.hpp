#pragma once
/// Text into HTML: the pages Tern writes (tern-bench's report, the readiness report, the admin
/// dashboard) show client ids and topics, which are arbitrary UTF-8 from the network.
///
/// Thread contract: pure; thread-safe.

#include <string>
#include <string_view>

namespace tern::core {

/// `text` safe inside an element or a quoted attribute: & < > " ' as entities, and C0
/// controls and DEL as their Control Pictures (U+2400 + c, U+2421), so they show instead of
/// vanishing. Other bytes pass as they are.
std::string html_escape(std::string_view text);

} // namespace tern::core
