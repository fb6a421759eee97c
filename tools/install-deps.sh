#!/usr/bin/env bash
# Installs whatever Tern needs from Debian 12's packages, and nothing else.
#
# Idempotent: when every package is already present it prints nothing and exits 0.
# Needs root (or sudo) only when something is missing; says so clearly otherwise.
set -euo pipefail

# Build toolchain and libraries (see docs/architecture.md for why each is here).
packages=(
    build-essential cmake ninja-build pkg-config
    clang libclang-rt-14-dev          # fuzz preset (libFuzzer) and sanitizer runtimes
    clang-format git python3 valgrind # format check; bench table, chart and instruction counts
    libboost1.81-dev                  # Asio, Beast, System (header-only parts)
    libssl-dev openssl                # TLS / mTLS; the CLI makes test certificates
    time                              # /usr/bin/time in bench/compare.sh
    libfmt-dev nlohmann-json3-dev
    catch2 libbenchmark-dev
    # Independent MQTT peers used by the tests, so a codec bug cannot hide on both sides.
    libmosquitto-dev libpaho-mqtt-dev mosquitto mosquitto-clients
)

missing=()
for p in "${packages[@]}"; do
    # dpkg-query prints "install ok installed" only for a fully installed package.
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done

[[ ${#missing[@]} -eq 0 ]] && exit 0

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
# The Debian mosquitto package starts a system broker on port 1883; Tern's quick start wants
# that port, and the tests start their own brokers on ephemeral ports. Stop it if it runs.
if command -v systemctl >/dev/null 2>&1; then
    "${SUDO[@]}" systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi
"${SUDO[@]}" pkill -x mosquitto >/dev/null 2>&1 || true
echo "tern: packages installed"
