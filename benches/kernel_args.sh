#!/usr/bin/env bash
# Times lltune_kernel_args planning (check mode: nothing is written) on generated boot trees
# with many arguments, to show that planning grows linearly with the number of arguments.
# Numbers only: no pass/fail.
#
# Tree: a copy of tests/fixtures/boot/rhel9-bls (GRUB defaults, three BLS entries and
# /etc/kernel/cmdline: five command lines edited per run). For each size N (default
# 1000 2000 4000, or $BENCH_SIZES) two workloads run against the release binary:
#   set     N new arguments `lltune_bench_<i>=<i>` (each appended to every command line).
#           Since the command-line length check, this plan is refused after it is computed
#           (N arguments do not fit in 2,048 bytes): the time is still the whole plan, edit of
#           every file included, and the refusal is the last step.
#   remove  the same N arguments written into every file of the tree first, then all N
#           removed (a plan that succeeds: `changed: true`, five diffs).
#
# Uses hyperfine when installed (Debian: apt-get install hyperfine), else a loop timed with
# `date +%s%N`. BENCH_RUNS (default 5) runs per case.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
target_dir=${CARGO_TARGET_DIR:-target}
bin=${LLTUNE_KERNEL_ARGS:-$target_dir/release/lltune_kernel_args}
sizes=${BENCH_SIZES:-1000 2000 4000}
runs=${BENCH_RUNS:-5}

if [[ ! -x $bin ]]; then
  echo "building $bin" >&2
  cargo build --release --bin lltune_kernel_args >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# args_json N MODE: the module's arguments (JSON) for N generated arguments.
args_json() {
  local n=$1 mode=$2 root=$3
  {
    printf '{"root": "%s", "_ansible_check_mode": true, "_ansible_diff": true, ' "$root"
    if [[ $mode == set ]]; then
      printf '"args": {'
      for ((i = 0; i < n; i++)); do
        ((i)) && printf ', '
        printf '"lltune_bench_%d": "%d"' "$i" "$i"
      done
      printf '}}'
    else
      printf '"remove": ['
      for ((i = 0; i < n; i++)); do
        ((i)) && printf ', '
        printf '"lltune_bench_%d"' "$i"
      done
      printf ']}'
    fi
  } | tr -d '\n'
}

# A tree whose every command line already holds the N arguments.
seed_tree() {
  local n=$1 root=$2 extra
  extra=$(for ((i = 0; i < n; i++)); do printf ' lltune_bench_%d=%d' "$i" "$i"; done)
  sed -i "s|^GRUB_CMDLINE_LINUX=\"\\(.*\\)\"|GRUB_CMDLINE_LINUX=\"\\1$extra\"|" "$root/etc/default/grub"
  for e in "$root"/boot/loader/entries/*.conf; do
    sed -i "s|^options \\(.*\\)|options \\1$extra|" "$e"
  done
  sed -i "s|\$|$extra|" "$root/etc/kernel/cmdline"
}

time_loop() {
  local label=$1 file=$2 start end best=
  for ((r = 0; r < runs; r++)); do
    start=$(date +%s%N)
    "$bin" "$file" >/dev/null || true
    end=$(date +%s%N)
    local ms=$(((end - start) / 1000000))
    if [[ -z $best || $ms -lt $best ]]; then best=$ms; fi
  done
  printf '%-16s best of %d: %d ms\n' "$label" "$runs" "$best"
}

echo "binary: $bin ($(stat -c %s "$bin") bytes)"
for n in $sizes; do
  for mode in set remove; do
    root=$work/$mode-$n
    rm -rf "$root"
    cp -a tests/fixtures/boot/rhel9-bls "$root"
    [[ $mode == remove ]] && seed_tree "$n" "$root"
    file=$work/$mode-$n.json
    args_json "$n" "$mode" "$root" >"$file"
    # One run to show what the plan ends with.
    summary=$("$bin" "$file" | python3 -c 'import json,sys
v=json.load(sys.stdin)
print("changed=%s failed=%s diffs=%d msg=%s" % (v.get("changed"), v.get("failed"), len(v.get("diff") or []), (v.get("msg") or "")[:90]))' 2>/dev/null || echo "(output not JSON)")
    echo "$mode N=$n: $summary"
    if command -v hyperfine >/dev/null 2>&1; then
      hyperfine --style basic --runs "$runs" -i -N "$bin $file" --command-name "$mode N=$n" 2>/dev/null |
        grep -E 'Time|Range' || hyperfine --style basic --runs "$runs" -i "$bin $file" --command-name "$mode N=$n" |
        grep -E 'Time|Range'
    else
      time_loop "$mode N=$n" "$file"
    fi
  done
done
