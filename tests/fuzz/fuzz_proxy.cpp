// libFuzzer target for the PROXY protocol header parser (net/proxy_protocol): never reads past
// its input; a complete header is no longer than the input; every proper prefix of a complete
// header is need_more; a header followed by more bytes parses the same.
#include <tern/net/proxy_protocol.hpp>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

void invariant(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "FUZZ INVARIANT VIOLATED: %s\n", what);
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using tern::net::parse_proxy_header;
    using tern::net::proxy_parse_status;
    // An exact-size copy, so ASan catches any read past the end.
    const std::vector<std::uint8_t> bytes(data, data + size);
    const auto r = parse_proxy_header(bytes);
    if (r.status == proxy_parse_status::invalid) {
        invariant(!r.error.empty(), "invalid without a reason");
        return 0;
    }
    if (r.status == proxy_parse_status::need_more) {
        return 0;
    }
    invariant(r.header.size > 0 && r.header.size <= size, "header size outside the input");
    invariant(r.header.version == 1 || r.header.version == 2, "unknown version");
    invariant(r.header.has_address == !r.header.source.empty(), "address flag without address");
    for (std::size_t k = 0; k < r.header.size; k += 1 + k / 8) {
        const std::vector<std::uint8_t> prefix(bytes.begin(),
                                               bytes.begin() + static_cast<std::ptrdiff_t>(k));
        invariant(parse_proxy_header(prefix).status == proxy_parse_status::need_more,
                  "a proper prefix of a header is not need_more");
    }
    std::vector<std::uint8_t> longer = bytes;
    longer.push_back(0x10);
    const auto again = parse_proxy_header(longer);
    invariant(again.status == proxy_parse_status::complete && again.header.size == r.header.size &&
                  again.header.source == r.header.source,
              "trailing bytes changed the header");
    return 0;
}
