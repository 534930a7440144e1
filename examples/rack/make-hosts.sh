#!/usr/bin/env bash
# Makes the example rack's three simulated hosts under hosts/ beside this script: each a copy
# of a real server's /proc and /sys dump (tests/fixtures/real) with the boot and /etc files a
# tune run needs (RHEL 9 BLS entries, pam_limits files, systemd units), as the tests' simulated
# rack builds them (tests/fixtures/make-rack.sh). Existing hosts are replaced: run it again to
# start over. LLTUNE: the lltune CLI it runs (default: lltune on PATH, else the one
# `make collection` built).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
lltune=${LLTUNE:-$(command -v lltune || echo "$src/target/x86_64-unknown-linux-gnu/release/lltune")}
[[ -x $lltune ]] || { echo "make-hosts.sh: no lltune CLI at $lltune: run make collection, or set LLTUNE" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$src/tests/fixtures/make-rack.sh" "$tmp" 3 "$lltune" >/dev/null
rm -rf "$here/hosts"
mv "$tmp/hosts" "$here/hosts"
for h in "$here"/hosts/*; do echo "$h"; done
