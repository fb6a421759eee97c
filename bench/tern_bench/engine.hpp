#pragma once
/// The tern-bench engine: runs one scenario against a broker and returns the result document.
///
/// Thread contract: run_bench() is called from one thread (main); it starts and joins its own
/// worker threads.

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "options.hpp"

namespace tern::bench {

struct run_outcome {
    nlohmann::json result; ///< the result document (bench/README.md, "Result document")
    int exit_code = 0;     ///< 0: the run happened; 1: it failed (see error)
    std::string error;     ///< one line naming host:port and the reason, when exit_code is 1
    std::vector<std::string> warnings; ///< e.g. "3 of 100 connections failed"
};

/// Runs `options` to the end: at most ramp + warmup + duration + drain + 10 s, after which
/// the run is abandoned (exit_code 1). When `progress` is not null a progress line is written
/// to it every second (rewritten in place with '\r' when `progress_tty`).
/// Throws config_error for problems found before connecting (unreadable TLS files).
run_outcome run_bench(const bench_options& options, std::FILE* progress, bool progress_tty);

} // namespace tern::bench
