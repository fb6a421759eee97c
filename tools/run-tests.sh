#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it:
#   1. release build, every ctest test (protocol, broker integration with real clients, tools);
#   2. ASan + UBSan build, every test again (the broker binary sanitized, its clients real);
#   3. the libFuzzer targets for a bounded time under ASan + UBSan (FUZZ_SECONDS, default 60).
# Exits non-zero on the first failing stage; prints each stage's ctest summary.
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
JOBS=${JOBS:-$(nproc)}
start=$SECONDS
results=()

stage() { # name, then the command
    local name=$1
    shift
    local t0=$SECONDS
    echo
    echo "==> [$(date +%H:%M:%S)] $name"
    if "$@"; then
        results+=("PASS  $name ($((SECONDS - t0)) s)")
    else
        results+=("FAIL  $name ($((SECONDS - t0)) s)")
        summary
        exit 1
    fi
}

summary() {
    echo
    echo "==> summary ($((SECONDS - start)) s)"
    printf '    %s\n' "${results[@]}"
}

build() { # preset [targets...]
    local preset=$1
    shift
    # CI builds with -Werror (STYLE.md §9); local runs only warn.
    local werror=OFF
    [[ "${CI:-}" == "true" ]] && werror=ON
    cmake --preset "$preset" -DTERN_WERROR=$werror >/dev/null || return 1
    if [[ $# -gt 0 ]]; then
        cmake --build --preset "$preset" -j "$JOBS" --target "$@"
    else
        cmake --build --preset "$preset" -j "$JOBS"
    fi
}

bash tools/install-deps.sh || exit 1

format_check() { # STYLE.md §2: every tracked C++ file is clang-formatted
    local files
    mapfile -t files < <(git ls-files '*.cpp' '*.hpp' 2>/dev/null)
    [[ ${#files[@]} -eq 0 ]] && return 0
    clang-format --dry-run --Werror "${files[@]}"
}

if command -v clang-format >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
    stage "clang-format" format_check
fi
stage "release: build" build release
stage "release: ctest (all tests)" ctest --preset release -j "$JOBS" --timeout 300
stage "asan+ubsan: build" build asan
stage "asan+ubsan: ctest (protocol, and the broker driven by real clients)" \
    ctest --preset asan -j "$JOBS" --timeout 300
if [[ -f tools/run-fuzz.sh ]]; then
    stage "fuzz: ${FUZZ_SECONDS} s under ASan+UBSan" bash tools/run-fuzz.sh "$FUZZ_SECONDS"
fi
summary
