#!/usr/bin/env bash
# A simulated rack of N hosts (default 100; copies of the real server dumps with boot and
# /etc files, tests/fixtures/make-rack.sh) through the collection's playbooks in one run:
# facts, report, audit, tune --check, tune, rollback, each beside Ansible's floor (benches/floor/floor.py:
# the same number of do-nothing module tasks per host). Prints the cpu ratio of each phase and checks what each
# phase produced (the report names every host; every host has the tune run's bundle; after
# rollback a host's tree is byte-identical to the start). Numbers only, no time limit.
# Run it as part of `make bench` (which builds the collection and the venv first).
#   RACK_HOSTS   hosts (default 100)
#   RACK_FORKS   Ansible forks (default 20)
#   RACK_DIR     where to build the rack (default: a temp folder, removed afterwards)
#   RACK_PAIRS   runs of each phase and its floor; the medians are reported (default 1)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
target_dir=${CARGO_TARGET_DIR:-target}
venv=${VENV:-.venv}
collections=${COLLECTIONS:-build/collections}
hosts=${RACK_HOSTS:-100}
forks=${RACK_FORKS:-20}
out=build/bench
mkdir -p "$out"
# The shipped CLI (make collection builds it for glibc 2.17 under target/<triple>/release).
lltune=$(ls -d "$target_dir"/*-unknown-linux-gnu/release/lltune 2>/dev/null | head -1)
[[ -n $lltune && -x $lltune ]] || { echo "rack.sh: no shipped lltune under $target_dir (run make collection first)" >&2; exit 1; }
lltune=$(cd "$(dirname "$lltune")" && pwd)/lltune
[[ -x $venv/bin/ansible-playbook ]] || { echo "rack.sh: no $venv/bin/ansible-playbook (run make venv first)" >&2; exit 1; }
if [[ -n ${RACK_DIR:-} ]]; then
  rack=$RACK_DIR
  mkdir -p "$rack"
else
  rack=$(mktemp -d "${TMPDIR:-/tmp}/lltune-rack.XXXXXX")
  trap 'rm -rf "$rack"' EXIT
fi
rack=$(cd "$rack" && pwd)

export LC_ALL=C.UTF-8 ANSIBLE_COLLECTIONS_PATH=$(cd "$collections" && pwd) ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_FORKS=$forks ANSIBLE_HOST_KEY_CHECKING=false ANSIBLE_RETRY_FILES_ENABLED=false
playbook=$(cd "$venv/bin" && pwd)/ansible-playbook

now() { date +%s.%N; }
declare -A took
phase() {
  local name=$1; shift
  local t0 t1
  t0=$(now)
  if ! "$@" >"$out/rack-$name.log" 2>&1; then
    echo "rack.sh: phase $name failed; its output is in $out/rack-$name.log" >&2
    tail -20 "$out/rack-$name.log" >&2
    exit 1
  fi
  t1=$(now)
  took[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  echo "$name: ${took[$name]} s" >&2
}

phase build bash tests/fixtures/make-rack.sh "$rack" "$hosts" "$lltune"
digest() { (cd "$rack/hosts/$1" && { find . -path ./var -prune -o -printf '%p %y %m %l\n' | LC_ALL=C sort
  find . -path ./var -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; } | sha256sum); }
first_start=$(digest host001)
inv="$rack/inventory"
# facts, report, audit, tune --check, tune and rollback, each beside Ansible's floor.
t0=$(now)
python3 benches/floor/floor.py --inventory "$inv" --playbook "$playbook" --collections "$collections" \
  --out "$out/floor" --report-dir "$rack/report" --pairs "${RACK_PAIRS:-1}" --forks "$forks"
took[phases]=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')

# What the phases produced.
reported=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["hosts"]))' "$rack/report/fleet.json")
bundles=$(find "$rack/hosts" -mindepth 6 -maxdepth 6 -path '*/var/lib/lltune/backups/bench1' | wc -l)
[[ $reported == "$hosts" ]] || { echo "rack.sh: fleet.json has $reported hosts, not $hosts" >&2; exit 1; }
[[ $bundles == "$hosts" ]] || { echo "rack.sh: $bundles hosts have the tune run's bundle, not $hosts" >&2; exit 1; }
[[ $(digest host001) == "$first_start" ]] || { echo "rack.sh: host001 differs from the start after rollback" >&2; exit 1; }

{
  echo "## Simulated rack: $hosts hosts, $forks forks ($(nproc) CPUs)"
  echo
  echo "| step | wall s | per host ms |"
  echo "|---|---:|---:|"
  for p in build phases; do
    awk -v p="$p" -v t="${took[$p]}" -v n="$hosts" 'BEGIN { printf "| %s | %.1f | %.0f |\n", p, t, t * 1000 / n }'
  done
  echo
  cat "$out/floor/floor.md"
  echo
  echo "fleet.json lists $reported hosts; $bundles hosts hold the tune run's bundle; host001 is byte-identical after rollback."
} | tee "$out/rack.md"
