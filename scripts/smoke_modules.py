#!/usr/bin/env python3
"""Runs the shipped module binaries as Ansible runs them (JSON arguments; here on standard
input) on a captured tree: lltune_facts, then lltune_config, then lltune_audit on the config
lltune_config proposed (a mapping: the module reads no YAML); then two failures with
backtraces asked for.

    scripts/smoke_modules.py MODULES_DIR ROOT
"""

import json
import os
import subprocess
import sys


def call(modules, name, args, env=None):
    p = subprocess.run(
        [os.path.join(modules, name)], input=json.dumps(args).encode(), capture_output=True, timeout=120, env=env
    )
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        sys.exit(f"FAIL {name}: not one JSON object (exit {p.returncode}): {p.stdout!r} {p.stderr!r}")


def run(modules, name, args):
    code, r = call(modules, name, args)
    if r.get("failed") is not False or code != 0:
        sys.exit(f"FAIL {name}: exit {code}: {json.dumps(r)[:2000]}")
    return r


def main(modules, root):
    facts = run(modules, "lltune_facts", {"root": root})["ansible_facts"]["lltune"]
    assert facts["schema_version"] >= 1 and facts["cpu"]["online"], facts["cpu"]
    print(f"ok   lltune_facts: {len(facts['nics'])} NICs, CPUs {facts['cpu']['online']}")
    cfg = run(modules, "lltune_config", {"root": root})
    assert cfg["config"]["version"] == 1 and cfg["yaml"].startswith("#"), cfg["config"]
    print(f"ok   lltune_config: {len(cfg['yaml'])} bytes of YAML")
    audit = run(modules, "lltune_audit", {"root": root, "config": cfg["config"]})
    assert audit["errors"] == [], audit["errors"]
    # A config file is read on the controller (lookup + from_yaml): the module takes the mapping
    # only, and names the option it no longer has.
    code, r = call(modules, "lltune_audit", {"root": root, "config_file": "/etc/lltune/config.yml"})
    if code != 1 or r.get("failed") is not True or "config_file" not in r.get("msg", ""):
        sys.exit(f"FAIL lltune_audit config_file: exit {code}: {json.dumps(r)[:2000]}")
    print(f"ok   lltune_audit: no errors, {len(audit['module_args'])} modules' arguments; config_file refused by name")
    # The shipped binaries carry no unwind tables (scripts/discard-unwind.ld): an error path
    # with backtraces asked for (anyhow captures one then) still ends in one JSON failure.
    env = dict(os.environ, RUST_BACKTRACE="full", RUST_LIB_BACKTRACE="1")
    bad = {"root": root, "config": {"version": 1, "cpu": {"isolate_cores": "1-x"}}}
    code, r = call(modules, "lltune_audit", bad, env)
    want = 'cpu.isolate_cores: invalid CPU list "1-x"'
    if code != 1 or r.get("failed") is not True or want not in r.get("msg", ""):
        sys.exit(f"FAIL lltune_audit with RUST_BACKTRACE=full: exit {code}: {json.dumps(r)[:2000]}")
    code, r = call(modules, "lltune_config", {"root": root, "housekeeping_cores_per_node": 0}, env)
    if code != 1 or "housekeeping_cores_per_node" not in r.get("msg", ""):
        sys.exit(f"FAIL lltune_config with RUST_BACKTRACE=full: exit {code}: {json.dumps(r)[:2000]}")
    print("ok   failures with RUST_BACKTRACE=full: one JSON failure each, exit 1")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
