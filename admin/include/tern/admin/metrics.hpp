#pragma once
/// The broker's figures in the Prometheus text exposition format (version 0.0.4): one HELP
/// and TYPE line per family, `tern_` names, counters ending in `_total`, base units (seconds,
/// bytes). Pure: what `/metrics` serves, unit-tested without a server.
///
/// Thread contract: pure functions; thread-safe.

#include <tern/broker/readiness.hpp>
#include <tern/broker/stats.hpp>

#include <optional>
#include <string>

namespace tern::admin {

/// The exposition of `stats` and, when the observer is on, of the readiness findings
/// (`tern_readiness_findings_total{finding}`) and account peaks
/// (`tern_readiness_account_peak{quota}`, `tern_readiness_account_aws_default{quota}`).
std::string prometheus_text(const broker::broker_stats& stats,
                            const std::optional<broker::readiness_report>& readiness);

/// `stats` as one JSON object (the admin API's /api/stats).
std::string stats_json(const broker::broker_stats& stats);

} // namespace tern::admin
