#!/usr/bin/env bash
# Times a full lltune_facts scan (release binary, with and without `detail`) against two
# baselines, and prints peak RSS and the size of every release binary. Run it as `make bench`
# (which builds the collection and the venv first). Results are printed and also written as
# markdown tables under build/bench/. Numbers only: no pass/fail.
#
# Targets:
#   - the largest real dumps (utillinux-epyc7451, cnto-r640-rt-worker1), unpacked from
#     tests/fixtures/real (or $LLTUNE_REAL_FIXTURES) into a temp folder;
#   - a synthetic tree the size of a large server, 256 CPUs and 4,000 IRQs
#     (benches/gen-large-irqs.py, built from cnto-r640-rt-worker1): /proc/interrupts alone
#     is 12 MB there; its peak RSS is the memory figure to watch;
#   - two synthetic trees of 512 CPUs and 8,000 IRQs (a 44 MB /proc/interrupts): one whose
#     IRQs have counts on 2 CPUs each, and one whose IRQs have counts on every CPU (`--hot 512`,
#     as after irqbalance moved them around), where the detail scan's per-CPU counts are 4
#     million entries and its output 46 MB;
#   - the live host (root "/").
# For each tree: the ratio of each scan's mean time to the read-every-file baseline's, peak
# RSS, and (with strace) the scan's syscall counts.
# Baselines:
#   (a) "read every file once": cat every regular file of the tree's sys/devices/system,
#       sys/bus/pci and proc. The floor for any tool that reads those files through the VFS.
#       On the live host /proc holds files that block (kmsg), are huge (kcore, kpage*) or belong
#       to processes that come and go, so the live baseline reads /proc/sys recursively plus the
#       top-level /proc/[a-z]* regular files minus kmsg, kcore, kpage* and sysrq-trigger, and
#       no /proc/<pid>. Write-only and unreadable files are skipped (-readable, errors to
#       /dev/null); each batch runs under `timeout` so a file that blocks cannot hang the run.
#   (b) Ansible's own fact gathering, `ansible localhost -m ansible.builtin.setup` from the
#       venv (live host only: setup cannot read a captured tree), beside lltune_facts run
#       through the same `ansible` command, so both include Ansible's own start-up.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
target_dir=${CARGO_TARGET_DIR:-target}
# The binary `make collection` ships (linked against glibc 2.17, beside its sidecar doc).
facts_bin=${LLTUNE_FACTS:-${COLLECTIONS:-build/collections}/ansible_collections/lltune/tuning/plugins/modules/lltune_facts}
venv=${VENV:-.venv}
collections=${COLLECTIONS:-build/collections}
real=${LLTUNE_REAL_FIXTURES:-$here/tests/fixtures/real}
out=build/bench
runs=${BENCH_RUNS:-10}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need hyperfine; then
  echo "installing hyperfine (apt-get)" >&2
  apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y hyperfine >/dev/null
fi
if [[ ! -x /usr/bin/time ]]; then
  echo "installing time (apt-get)" >&2
  apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y time >/dev/null
fi
[[ -x $facts_bin ]] || { echo "no release binary $facts_bin: run 'make collection' first" >&2; exit 1; }
[[ -x $venv/bin/ansible ]] || { echo "no $venv/bin/ansible: run 'make venv' first" >&2; exit 1; }

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Writes the two args files for a root: full (detail) and compact.
write_args() {
  local root=$1 name=$2
  printf '{"root": "%s", "detail": true}\n' "$root" >"$work/$name.detail.json"
  printf '{"root": "%s"}\n' "$root" >"$work/$name.json"
}

peak_rss() { # label, command...
  local label=$1; shift
  local kb
  kb=$(/usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}')
  printf '  %-44s %8s KiB\n' "$label" "$kb"
}

bench_tree() { # name, root
  local name=$1 root=$2
  write_args "$root" "$name"
  local dirs=()
  for d in sys/devices/system sys/bus/pci proc; do
    [[ -d $root/$d ]] && dirs+=("$root/$d")
  done
  echo
  echo "== $name ($root): $(find "${dirs[@]}" -type f 2>/dev/null | wc -l) regular files under ${dirs[*]#"$root"/}"
  hyperfine --shell=bash --warmup 2 --min-runs "$runs" --export-markdown "$out/$name.md" \
    --export-json "$work/$name.hyperfine.json" \
    -n "lltune_facts detail" "$facts_bin $work/$name.detail.json" \
    -n "lltune_facts compact" "$facts_bin $work/$name.json" \
    -n "read every file once" "find ${dirs[*]} -type f -readable -exec timeout 20 cat {} + >/dev/null 2>&1 || true"
  # Mean time of each scan over the read-every-file baseline's (the goal is a small ratio).
  python3 - "$work/$name.hyperfine.json" <<'PY' | tee -a "$out/$name.md"
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
base = r["read every file once"]
for k in ("lltune_facts compact", "lltune_facts detail"):
    print(f"ratio {k} / read every file once: {r[k] / base:.3f}")
PY
  echo "peak RSS:"
  peak_rss "lltune_facts detail" "$facts_bin" "$work/$name.detail.json"
  peak_rss "lltune_facts compact" "$facts_bin" "$work/$name.json"
  if need strace; then
    echo "syscalls of lltune_facts compact (strace -c):"
    strace -f -c -o "$work/$name.strace" "$facts_bin" "$work/$name.json" >/dev/null
    awk 'NR > 2 && $NF ~ /^(read|openat2|openat|statx|newfstatat|readlink|close|getdents64)$/ {print "  " $NF, $4}
         /total/ {print "  total", $4}' "$work/$name.strace"
  fi
}

if [[ -f $real/unpack.sh ]]; then
  bash "$real/unpack.sh" "$work/real" >/dev/null
  for name in utillinux-epyc7451 cnto-r640-rt-worker1; do
    if [[ -d $work/real/$name ]]; then
      bench_tree "$name" "$work/real/$name"
    else
      echo "skipping $name: not in $real" >&2
    fi
  done
  if [[ -d $work/real/cnto-r640-rt-worker1 ]]; then
    python3 benches/gen-large-irqs.py "$work/real/cnto-r640-rt-worker1" "$work/synthetic-256cpu-4000irq" --cpus 256 --irqs 4000 >/dev/null
    bench_tree synthetic-256cpu-4000irq "$work/synthetic-256cpu-4000irq"
    rm -rf "$work/synthetic-256cpu-4000irq"
    python3 benches/gen-large-irqs.py "$work/real/cnto-r640-rt-worker1" "$work/synthetic-512cpu-8000irq" --cpus 512 --irqs 8000 >/dev/null
    bench_tree synthetic-512cpu-8000irq "$work/synthetic-512cpu-8000irq"
    rm -rf "$work/synthetic-512cpu-8000irq"
    python3 benches/gen-large-irqs.py "$work/real/cnto-r640-rt-worker1" "$work/synthetic-512cpu-8000irq-hot" --cpus 512 --irqs 8000 --hot 512 >/dev/null
    bench_tree synthetic-512cpu-8000irq-hot "$work/synthetic-512cpu-8000irq-hot"
    rm -rf "$work/synthetic-512cpu-8000irq-hot"
  fi
else
  echo "skipping real dumps: $real/unpack.sh is absent" >&2
fi

# The live host.
write_args / live
live_read="{ find /sys/devices/system /sys/bus/pci /proc/sys -type f -readable -exec timeout 20 cat {} + ;"
live_read+=" find /proc -maxdepth 1 -name '[a-z]*' -type f -readable ! -name kmsg ! -name kcore ! -name 'kpage*' ! -name sysrq-trigger -exec timeout 20 cat {} + ; } >/dev/null 2>&1 || true"
ansible_env=(env LC_ALL=C.UTF-8 ANSIBLE_COLLECTIONS_PATH="$collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
  ANSIBLE_PYTHON_INTERPRETER="$venv/bin/python" ANSIBLE_LOCAL_TEMP="$work/ansible-local" ANSIBLE_REMOTE_TEMP="$work/ansible-remote")
adhoc="${ansible_env[*]} $venv/bin/ansible localhost -i localhost, -c local"
echo
echo "== live host"
hyperfine --shell=bash --warmup 2 --min-runs "$runs" --export-markdown "$out/live.md" \
  -n "lltune_facts detail" "$facts_bin $work/live.detail.json" \
  -n "lltune_facts compact" "$facts_bin $work/live.json" \
  -n "read every file once (bounded)" "$live_read" \
  -n "ansible -m lltune.tuning.lltune_facts" "$adhoc -m lltune.tuning.lltune_facts -a detail=true" \
  -n "ansible -m ansible.builtin.setup" "$adhoc -m ansible.builtin.setup"
echo "peak RSS:"
peak_rss "lltune_facts detail" "$facts_bin" "$work/live.detail.json"
peak_rss "lltune_facts compact" "$facts_bin" "$work/live.json"
peak_rss "ansible -m lltune.tuning.lltune_facts" "${ansible_env[@]}" "$venv/bin/ansible" localhost -i localhost, -c local -m lltune.tuning.lltune_facts -a detail=true
peak_rss "ansible -m ansible.builtin.setup" "${ansible_env[@]}" "$venv/bin/ansible" localhost -i localhost, -c local -m ansible.builtin.setup

echo
echo "== shipped binaries (glibc 2.17; module budget 1 MiB, docs/binaries.md)"
for b in "$target_dir"/*-unknown-linux-gnu/release/lltune "$target_dir"/*-unknown-linux-gnu/release/lltune_*; do
  [[ -f $b && -x $b ]] || continue
  printf '  %-24s %10s bytes\n' "$(basename "$b")" "$(stat -c %s "$b")"
done
echo
echo "markdown tables: $out/"
