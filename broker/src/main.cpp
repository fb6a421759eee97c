// The `tern` executable: parses the command line and runs tern::broker (STYLE.md §1).

#include <tern/broker/broker.hpp>
#include <tern/broker/command_line.hpp>
#include <tern/broker/log.hpp>

#include <cstdio>
#include <exception>
#include <string_view>
#include <vector>

int main(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    auto cl = tern::broker::parse_command_line(args);
    if (!cl.options) {
        std::fputs(cl.message.c_str(), cl.exit_code == 0 ? stdout : stderr);
        if (!cl.message.ends_with('\n')) {
            std::fputc('\n', cl.exit_code == 0 ? stdout : stderr);
        }
        return cl.exit_code;
    }
    if (cl.verbose) {
        tern::broker::set_log_level(tern::broker::log_level::debug);
    }
    try {
        tern::broker::broker server(std::move(*cl.options));
        return server.run();
    } catch (const std::exception& e) {
        tern::broker::log(tern::broker::log_level::error, "fatal: {}", e.what());
        return 1;
    }
}
