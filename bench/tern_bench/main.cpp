// tern-bench: parses the command line and wires the engine to the outputs (STYLE.md §1: main
// only parses arguments and wires libraries together).

#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <exception>

#include <sys/resource.h>
#include <unistd.h>

#include "engine.hpp"
#include "html_report.hpp"
#include "options.hpp"
#include "report.hpp"

#ifndef TERN_BENCH_VERSION
#define TERN_BENCH_VERSION "0.1.0"
#endif

namespace {

/// Many connections need many descriptors: raise the soft limit to the hard one.
void raise_fd_limit(std::uint64_t wanted) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return;
    }
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            return;
        }
    }
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < wanted + 64) {
        std::fprintf(stderr,
                     "tern-bench: warning: %llu connections but at most %llu open files "
                     "(ulimit -n); some connects will fail\n",
                     static_cast<unsigned long long>(wanted),
                     static_cast<unsigned long long>(lim.rlim_cur));
    }
}

} // namespace

int main(int argc, char** argv) {
    using namespace tern::bench;
    command_line cl;
    try {
        cl = parse_command_line(argc, argv);
    } catch (const config_error& e) {
        std::fprintf(stderr, "tern-bench: %s\n", e.what());
        return 2;
    }
    if (cl.what == command_line::action::help) {
        std::fputs(usage_text().c_str(), stdout);
        return 0;
    }
    if (cl.what == command_line::action::version) {
        std::printf("tern-bench %s\n", TERN_BENCH_VERSION);
        return 0;
    }
    const auto& o = cl.options;
    std::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(o.sc.total_clients());

    const bool tty = ::isatty(STDERR_FILENO) == 1;
    std::FILE* progress = o.quiet ? nullptr : (o.progress || tty) ? stderr : nullptr;
    run_outcome outcome;
    try {
        outcome = run_bench(o, progress, tty);
    } catch (const config_error& e) {
        std::fprintf(stderr, "tern-bench: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tern-bench: %s\n", e.what());
        return 1;
    }
    if (!outcome.result.is_null()) {
        if (o.json) {
            std::printf("%s\n", outcome.result.dump(2).c_str());
        } else {
            std::fputs(summary_table(outcome.result).c_str(), stdout);
        }
        std::fflush(stdout);
        if (!o.report.empty()) {
            const auto err = write_html_report(outcome.result, o.report);
            if (!err.empty()) {
                std::fprintf(stderr, "tern-bench: %s\n", err.c_str());
                if (outcome.exit_code == 0) {
                    outcome.exit_code = 1;
                }
            }
        }
    }
    for (const auto& w : outcome.warnings) {
        std::fprintf(stderr, "tern-bench: warning: %s\n", w.c_str());
    }
    if (outcome.exit_code != 0) {
        std::fprintf(stderr, "tern-bench: %s\n", outcome.error.c_str());
    }
    return outcome.exit_code;
}
