/// fuzz_readiness: readiness_report_from_json on arbitrary bytes (what `tern readiness-report
/// --from FILE` reads). A report that parses must render as text and HTML, its HTML must
/// escape every client id and topic (no '<' but the page's own tags), and writing it back as
/// JSON must be a fixed point: parse(to_json(r)) writes the same JSON again.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <tern/broker/readiness.hpp>

namespace {

/// As tern::fuzz::fail (fuzz_common.hpp, which needs the codec): libFuzzer records the abort
/// as a crash with its input.
[[noreturn]] void fail(const char* what) noexcept {
    std::fprintf(stderr, "fuzz_readiness: %s\n", what);
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tern::broker;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto parsed = readiness_report_from_json(input);
    if (!parsed.report) {
        if (parsed.error.empty()) {
            fail("no report and no error");
        }
        return 0;
    }
    const auto& r = *parsed.report;
    (void)render_text(r);
    const auto html = render_html(r);
    for (const auto& f : r.findings) {
        for (const auto& s : f.samples) {
            if (s.client_id.find('<') != std::string::npos &&
                html.find(s.client_id) != std::string::npos) {
                fail("a client id reached the HTML unescaped");
            }
        }
    }
    const auto json = to_json(r);
    const auto again = readiness_report_from_json(json);
    if (!again.report) {
        fail("to_json wrote what readiness_report_from_json refuses");
    }
    if (to_json(*again.report) != json) {
        fail("to_json(parse(to_json(r))) differs from to_json(r)");
    }
    return 0;
}
