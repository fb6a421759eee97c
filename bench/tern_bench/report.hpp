#pragma once
/// Turning measurements into the result document (JSON, schema in bench/README.md "Result
/// document") and the document into text: the summary table and the progress line.
///
/// Thread contract: pure functions; thread-safe.

#include <nlohmann/json.hpp>

#include <ctime>
#include <string>

#include "histogram.hpp"

namespace tern::bench {

/// {"count","min","mean","p50","p90","p99","p999","max"} in microseconds, or null when the
/// histogram is empty.
nlohmann::json latency_json(const latency_histogram& h);

/// [[upper_bound_us, count], ...] over the non-empty buckets, ascending.
nlohmann::json histogram_json(const latency_histogram& h);

/// "2026-11-26T13:48:01Z".
std::string iso8601_utc(std::time_t t);

/// One progress line from a timeline row: elapsed, connections, rates, errors, p99.
std::string progress_line(const nlohmann::json& row, std::uint64_t errors_total);

/// The human summary printed at the end of a run.
std::string summary_table(const nlohmann::json& doc);

} // namespace tern::bench
