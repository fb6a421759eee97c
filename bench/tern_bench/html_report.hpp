#pragma once
/// `tern-bench --report FILE.html`: a self-contained HTML page (inline CSS, inline SVG/JS, no
/// network) with charts of throughput and latency over time and the latency distribution,
/// rendered from the same document `--json` prints (schema: bench/README.md "Result document").
///
/// Thread contract: pure functions apart from writing `path`; thread-safe.

#include <nlohmann/json.hpp>

#include <string>

namespace tern::bench {

/// The page for `result`. Missing optional sections (no latency, no groups) are left out of
/// the page rather than drawn empty.
std::string render_html_report(const nlohmann::json& result);

/// Writes render_html_report(result) to `path`. Returns an empty string on success, else a
/// message naming the path and the OS error.
std::string write_html_report(const nlohmann::json& result, const std::string& path);

} // namespace tern::bench
