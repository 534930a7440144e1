#!/usr/bin/env python3
"""Each phase of the rack's playbooks beside Ansible's own floor (issue 22, part 1).

For each phase (facts, report, audit, tune --check, tune, rollback) this runs the
collection's playbook on the rack's inventory, recording with the `shape` callback which
tasks ran on which host, then the floor: a play on the same inventory, with the same forks,
that runs one do-nothing binary module task (noop.c) for every lltune module task that ran
on a host (a run-once task stays run-once), and nothing else. The cpu time of each run is
ansible-playbook's and its children's (user + system, from getrusage), so the ratio
phase / floor is what lltune's modules, wrappers and checks add to what Ansible costs
anyway for that many module runs. Phases are run in pairs (phase, then its floor) --pairs
times and the medians reported; tune is always followed by rollback, so every pair starts
from the same trees.

The floor's tasks take no arguments: what the real tasks pass (a config, a report's facts)
is counted on lltune's side of the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Runs cmd, returns (cpu s of it and its children, wall s); fails with its log tail."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(log, "w") as out:
        rc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        sys.stderr.write(f"floor.py: {' '.join(cmd[1:4])} failed (exit {rc}); its output is in {log}\n")
        sys.stderr.write("".join(log.read_text(errors="replace").splitlines(True)[-20:]))
        sys.exit(1)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def floor_play(shape: Path, dest: Path) -> tuple[Path, str, int]:
    """The floor playbook for the shape a run recorded: (path, module tasks per host, run-once tasks).

    Hosts that ran different numbers of module tasks (the rack's hosts differ: one has a time
    sync section, another a kernel-bypass profile) get a play each per number, in one
    playbook, the run-once tasks in the first: every host runs exactly as many do-nothing
    tasks as it ran lltune module tasks. The count is then given as a range, e.g. "10-11"."""
    per_host: dict[str, list[str]] = {}
    once: list[str] = []
    seen_once: set[str] = set()
    for line in shape.read_text().splitlines():
        r = json.loads(line)
        if not r["action"].startswith("lltune.tuning.") or r["status"] == "skipped":
            continue
        if r["run_once"]:
            if r["task"] not in seen_once:
                seen_once.add(r["task"])
                once.append(r["task"])
            continue
        per_host.setdefault(r["host"], []).append(r["task"])
    by_count: dict[int, list[str]] = {}
    for host, tasks in per_host.items():
        by_count.setdefault(len(tasks), []).append(host)
    if not by_count:
        by_count[0] = ["all"]
    plays = []
    for i, (n, hosts) in enumerate(sorted(by_count.items(), reverse=True)):
        tasks = [{"name": f"noop {k + 1}", "bench.floor.noop": {}} for k in range(n)]
        if i == 0:
            tasks += [{"name": f"noop once {k + 1}", "bench.floor.noop": {}, "run_once": True} for k in range(len(once))]
        pattern = "all" if len(by_count) == 1 else sorted(hosts)
        plays.append({"name": f"floor {n}", "hosts": pattern, "gather_facts": False, "tasks": tasks})
    dest.write_text(json.dumps(plays, indent=1) + "\n")
    counts = sorted(by_count)
    label = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return dest, label, len(once)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inventory", required=True)
    ap.add_argument("--playbook", required=True, help="the ansible-playbook to run")
    ap.add_argument("--collections", required=True, help="ANSIBLE_COLLECTIONS_PATH of the built collection")
    ap.add_argument("--out", required=True, help="folder for logs, shapes and the results")
    ap.add_argument("--report-dir", required=True)
    ap.add_argument("--pairs", type=int, default=1)
    ap.add_argument("--forks", type=int, default=20)
    a = ap.parse_args()
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # The do-nothing module, in a collection of its own beside lltune.tuning.
    floor_root = out / "floor-collections"
    mod_dir = floor_root / "ansible_collections/bench/floor/plugins/modules"
    mod_dir.mkdir(parents=True, exist_ok=True)
    (floor_root / "ansible_collections/bench/floor/galaxy.yml").write_text(
        "namespace: bench\nname: floor\nversion: 1.0.0\nreadme: README.md\nauthors: [lltune]\n"
    )
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        sys.exit("floor.py: no C compiler (cc or gcc) to build the do-nothing module")
    subprocess.run([cc, "-O2", "-o", str(mod_dir / "noop"), str(HERE / "noop.c")], check=True)

    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": f"{Path(a.collections).resolve()}:{floor_root}",
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_FORKS": str(a.forks),
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_CALLBACK_PLUGINS": str(HERE),
        "ANSIBLE_CALLBACKS_ENABLED": "shape",
        "LC_ALL": "C.UTF-8",
    })
    pb = [a.playbook, "-i", a.inventory]
    phases = [
        ("facts", ["lltune.tuning.facts", "-e", "lltune_show_summary=false"]),
        ("report", ["lltune.tuning.report", "-e", f"lltune_report_dir={a.report_dir}"]),
        ("audit", ["lltune.tuning.audit"]),
        ("tune --check", ["lltune.tuning.tune", "--check", "-e", "lltune_serial=100%"]),
        ("tune", ["lltune.tuning.tune", "-e", "lltune_serial=100%", "-e", "lltune_backup_id=bench{pair}"]),
        ("rollback", ["lltune.tuning.rollback", "-e", "lltune_backup_id=bench{pair}"]),
    ]
    figures: dict[str, dict[str, list[float]]] = {}
    shapes: dict[str, tuple[str, int]] = {}
    for pair in range(1, a.pairs + 1):
        for name, args in phases:
            slug = name.replace(" --", "-")
            shape = out / f"shape-{slug}-{pair}.jsonl"
            shape.unlink(missing_ok=True)
            env["LLTUNE_SHAPE_OUT"] = str(shape)
            cpu, wall = run(pb + [x.format(pair=pair) for x in args], env, out / f"phase-{slug}-{pair}.log")
            play, n, once = floor_play(shape, out / f"floor-{slug}.json")
            shapes[name] = (n, once)
            env["LLTUNE_SHAPE_OUT"] = os.devnull
            fcpu, fwall = run(pb + [str(play)], env, out / f"floor-{slug}-{pair}.log")
            f = figures.setdefault(name, {"cpu": [], "wall": [], "fcpu": [], "fwall": []})
            f["cpu"].append(cpu)
            f["wall"].append(wall)
            f["fcpu"].append(fcpu)
            f["fwall"].append(fwall)
            print(f"pair {pair} {name}: cpu {cpu:.1f} s, floor {fcpu:.1f} s, ratio {cpu / fcpu:.2f}", file=sys.stderr)
    hosts = len({json.loads(line)["host"] for line in open(out / "shape-facts-1.jsonl")})
    lines = [
        f"## Each phase beside Ansible's floor: {hosts} hosts, {a.forks} forks, {os.cpu_count()} CPUs, "
        f"median of {a.pairs} pair(s)",
        "",
        "| phase | module tasks per host (+ run once) | cpu s | floor cpu s | cpu ratio | wall s | floor wall s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    result = {}
    for name, _ in phases:
        f = figures[name]
        m = {k: statistics.median(v) for k, v in f.items()}
        ratio = statistics.median([c / fc for c, fc in zip(f["cpu"], f["fcpu"])])
        n, once = shapes[name]
        lines.append(
            f"| {name} | {n}" + (f" (+{once})" if once else "") +
            f" | {m['cpu']:.1f} | {m['fcpu']:.1f} | {ratio:.2f} | {m['wall']:.1f} | {m['fwall']:.1f} |"
        )
        result[name] = {"module_tasks": n, "run_once": once, "ratio": ratio, **m}
    (out / "floor.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "floor.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
