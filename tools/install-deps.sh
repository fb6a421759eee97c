#!/usr/bin/env bash
# Installs whatever Tern needs from Debian 12's packages, and nothing else.
#
# Idempotent: when every package is already present it prints nothing and exits 0.
# Needs root (or sudo) only when something is missing; says so clearly otherwise.
# Also installs the browser test's npm packages (tests/browser, `npm ci` from its lock file) when
# node_modules is missing or older than package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build toolchain and libraries (see docs/architecture.md for why each is here).
packages=(
    build-essential cmake ninja-build pkg-config
    clang libclang-rt-14-dev          # fuzz preset (libFuzzer) and sanitizer runtimes
    clang-format git python3 valgrind # format check; bench table, chart and instruction counts
    libboost1.81-dev                  # Asio, Beast, System (header-only parts)
    libssl-dev openssl                # TLS / mTLS; the CLI makes test certificates
    time                              # /usr/bin/time in bench/compare.sh
    libfmt-dev nlohmann-json3-dev
    librocksdb-dev                    # the durable session store (docs/store.md)
    catch2 libbenchmark-dev
    # Independent MQTT peers used by the tests, so a codec bug cannot hide on both sides.
    libmosquitto-dev libpaho-mqtt-dev mosquitto mosquitto-clients
    chromium                          # headless browser for browser_websocket_test (MQTT.js)
    prometheus                        # promtool checks the admin listener's /metrics
)
# Node.js and npm for the browser test: whatever `node` and `npm` PATH finds (e.g. a NodeSource
# build, which bundles npm and conflicts with Debian's npm package), else Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

# tests/browser/node_modules from the lock file, when missing or older than it. Silent otherwise.
browser_modules() {
    local dir=tests/browser
    [[ -f $dir/package-lock.json ]] || return 0
    if [[ -d $dir/node_modules && ! $dir/package-lock.json -nt $dir/node_modules ]]; then
        return 0
    fi
    echo "tern: installing $dir/node_modules (npm ci)"
    # playwright-core drives the Debian chromium; no browser is downloaded.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$dir" --no-audit --no-fund \
        --loglevel=error >/dev/null
    touch "$dir/node_modules"
}

missing=()
for p in "${packages[@]}"; do
    # dpkg-query prints "install ok installed" only for a fully installed package.
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    browser_modules
    exit 0
fi

echo "tern: installing missing packages: ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "tern: error: packages are missing (${missing[*]}) and installing them needs root;" >&2
        echo "tern:        run this script as root, or install them with apt-get yourself." >&2
        exit 1
    fi
else
    SUDO=()
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian mosquitto package starts a system broker on port 1883 when it is installed; Tern's
# quick start wants that port, and the tests start their own brokers on ephemeral ports. Stop
# that one daemon, and only when this run installed the package: a Mosquitto the user already
# ran (or a test runs) is not ours to stop.
if [[ " ${missing[*]} " == *" mosquitto "* ]]; then
    if command -v systemctl >/dev/null 2>&1; then
        "${SUDO[@]}" systemctl disable --now mosquitto >/dev/null 2>&1 || true
    fi
    if [[ -r /run/mosquitto/mosquitto.pid ]]; then
        "${SUDO[@]}" kill "$(cat /run/mosquitto/mosquitto.pid)" >/dev/null 2>&1 || true
    fi
fi
echo "tern: packages installed"
browser_modules
