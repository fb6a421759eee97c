#!/usr/bin/env bash
# packaging_test: `cmake --install` of a built tree into a staging directory, the Debian-style
# layout (--prefix /usr: /usr/bin/tern, /etc/tern/tern.conf, /usr/lib/systemd/system/tern.service,
# /usr/share/doc/tern), the installed configuration accepted by the installed binary, the unit
# pointing at them, and an operator's edited tern.conf kept by a second install.
#
#   tests/packaging_test.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: packaging_test.sh BUILD_DIR}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR=$stage cmake --install "$build" --prefix /usr >/dev/null
for f in usr/bin/tern etc/tern/tern.conf usr/lib/systemd/system/tern.service \
         usr/share/doc/tern/README.md usr/share/doc/tern/operations.md; do
    [[ -e $stage/$f ]] || fail "not installed: /$f"
done
"$stage/usr/bin/tern" -c "$stage/etc/tern/tern.conf" --test-config >/dev/null ||
    fail "the installed tern.conf does not pass --test-config"
unit=$stage/usr/lib/systemd/system/tern.service
grep -qx 'Type=notify' "$unit" || fail "the unit is not Type=notify"
grep -qx 'ExecStart=/usr/bin/tern -c /etc/tern/tern.conf' "$unit" ||
    fail "ExecStart does not run /usr/bin/tern -c /etc/tern/tern.conf: $(grep ExecStart= "$unit")"
grep -qx 'User=tern' "$unit" || fail "the unit does not run as the tern user"
if command -v systemd-analyze >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    out=$(systemd-analyze verify --root="$stage" /usr/lib/systemd/system/tern.service 2>&1 || true)
    if grep -i 'tern.service' <<<"$out" | grep -qv 'is not executable'; then
        fail "systemd-analyze verify complains: $out"
    fi
fi

# A second install keeps what the operator wrote.
echo "# the operator's own" >>"$stage/etc/tern/tern.conf"
DESTDIR=$stage cmake --install "$build" --prefix /usr >/dev/null
grep -q "the operator's own" "$stage/etc/tern/tern.conf" || fail "a reinstall replaced tern.conf"
echo "PASS: installed layout, configuration and unit"
