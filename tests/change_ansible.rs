//! The change modules through real Ansible (the pinned ansible-core of `support::ansible()`,
//! the collection of `support::collection_dir()`): ansible-doc on their sidecars, then one
//! play on a fixture root — apply, the same play under `--check --diff` (no change), a
//! changed value under `--check --diff` (diff shown, tree untouched), then lltune_rollback.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{self, Run, assert_same_tree, boot_fixture, play_recap, tree_snapshot};

fn ansible(tool: &Path, sandbox: &Path, args: &[&str]) -> Run {
    support::run_ansible(tool, sandbox, args, None)
}

#[test]
fn ansible_doc_renders_the_change_modules() {
    let sandbox = tempfile::tempdir().unwrap();
    for (module, options, returns) in [
        (
            "lltune_sysctl",
            vec!["backup_id", "file", "option_names", "reasons", "root", "runtime", "settings", "state", "write_file"],
            vec!["backup", "changes", "conflicts", "diff", "file", "reboot_required", "reverted"],
        ),
        (
            "lltune_kernel_args",
            vec![
                "allow_dangerous_mitigations",
                "args",
                "backup_id",
                "bootloader",
                "option_names",
                "reasons",
                "remove",
                "root",
            ],
            vec![
                "backup",
                "bootloader",
                "changes",
                "configured",
                "diff",
                "grub_cfg",
                "pending",
                "reboot_required",
                "reverted",
                "running",
            ],
        ),
        (
            "lltune_rollback",
            vec!["backup", "option_names", "root"],
            vec!["backup", "diff", "reboot_required", "restored"],
        ),
    ] {
        let fqcn = format!("lltune.tuning.{module}");
        let r = ansible(&support::ansible().doc, sandbox.path(), &["-j", &fqcn]);
        assert_eq!(r.code, 0, "{}", r.show());
        let v: Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("ansible-doc -j {module}: {e}\n{}", r.show()));
        let doc = &v[&fqcn]["doc"];
        let mut got: Vec<&str> = doc["options"].as_object().unwrap().keys().map(String::as_str).collect();
        got.sort();
        assert_eq!(got, options, "{module} options");
        assert_eq!(doc["attributes"]["check_mode"]["support"], "full", "{module}");
        assert_eq!(doc["attributes"]["diff_mode"]["support"], "full", "{module}");
        let mut ret: Vec<&str> = v[&fqcn]["return"].as_object().unwrap().keys().map(String::as_str).collect();
        ret.sort();
        assert_eq!(ret, returns, "{module} RETURN");
        assert!(!v[&fqcn]["examples"].as_str().unwrap_or("").is_empty(), "{module} EXAMPLES");
        // The text rendering works too.
        let r = ansible(&support::ansible().doc, sandbox.path(), &[&fqcn]);
        assert_eq!(r.code, 0, "{}", r.show());
        assert!(r.stdout.contains(&fqcn), "{}", r.show());
    }
}

const TUNE: &str = r#"---
- name: Tune a fixture root
  hosts: all
  gather_facts: false
  tasks:
    - name: Set sysctls
      lltune.tuning.lltune_sysctl:
        root: "{{ lltune_root }}"
        backup_id: play1
        settings:
          net.core.busy_poll: "{{ lltune_busy_poll }}"
          net.ipv4.tcp_timestamps: 0
          vm.swappiness: 10
      register: __lltune_sysctl

    - name: Set kernel arguments
      lltune.tuning.lltune_kernel_args:
        root: "{{ lltune_root }}"
        backup_id: play1
        args:
          isolcpus: managed_irq,domain,2-5
          nohz_full: 2-5
          nosoftlockup: ""
        remove:
          - rhgb
      register: __lltune_kernel_args

    - name: Check the results
      ansible.builtin.assert:
        that:
          - __lltune_kernel_args.bootloader == 'bls'
          - __lltune_kernel_args.reboot_required
          - __lltune_sysctl.conflicts | map(attribute='key') | list == ['net.core.busy_poll']
"#;

const ROLLBACK: &str = r#"---
- name: Roll back a fixture root
  hosts: all
  gather_facts: false
  tasks:
    - name: Restore the bundle
      lltune.tuning.lltune_rollback:
        root: "{{ lltune_root }}"
        backup: play1
      register: __lltune_rollback

    - name: Check the result
      ansible.builtin.assert:
        that:
          - __lltune_rollback.reboot_required
          - __lltune_rollback.restored | length > 0
"#;

#[test]
fn playbook_applies_checks_and_rolls_back_a_fixture_root() {
    let sandbox = tempfile::tempdir().unwrap();
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let start = tree_snapshot(root);
    fs::write(sandbox.path().join("tune.yml"), TUNE).unwrap();
    fs::write(sandbox.path().join("rollback.yml"), ROLLBACK).unwrap();
    let play = |name: &str, busy_poll: u32, flags: &[&str]| {
        let vars = json!({"lltune_root": root, "lltune_busy_poll": busy_poll}).to_string();
        let mut args = vec!["-i", "localhost,", "-c", "local", "-e", vars.as_str()];
        args.extend_from_slice(flags);
        let path = sandbox.path().join(name);
        args.push(path.to_str().unwrap());
        let r = ansible(&support::ansible().playbook, sandbox.path(), &args);
        assert_eq!(r.code, 0, "{}", r.show());
        r
    };

    let r = play("tune.yml", 50, &[]);
    let recap = play_recap(&r.stdout, "localhost");
    assert_eq!((recap["changed"], recap["failed"]), (2, 0), "{}", r.show());
    assert_eq!(fs::read_to_string(root.join("proc/sys/net/core/busy_poll")).unwrap(), "50\n");
    let applied = tree_snapshot(root);

    // The same play under --check --diff: nothing to change, nothing written.
    let r = play("tune.yml", 50, &["--check", "--diff"]);
    let recap = play_recap(&r.stdout, "localhost");
    assert_eq!((recap["changed"], recap["failed"]), (0, 0), "{}", r.show());
    assert_same_tree(&applied, &tree_snapshot(root), "check run of the same play");

    // A changed value under --check --diff: predicted with its diff, tree untouched.
    let r = play("tune.yml", 60, &["--check", "--diff"]);
    let recap = play_recap(&r.stdout, "localhost");
    assert_eq!((recap["changed"], recap["failed"]), (1, 0), "{}", r.show());
    for want in ["-net.core.busy_poll = 50", "+net.core.busy_poll = 60"] {
        assert!(r.stdout.contains(want), "{want:?} not in the diff:\n{}", r.show());
    }
    assert_same_tree(&applied, &tree_snapshot(root), "check run of a changed play");

    let r = play("rollback.yml", 0, &["--diff"]);
    let recap = play_recap(&r.stdout, "localhost");
    assert_eq!((recap["changed"], recap["failed"]), (1, 0), "{}", r.show());
    assert_same_tree(&start, &tree_snapshot(root), "after lltune_rollback");
}

/// One module's play on a fixture tree: `--check --diff` first (diff shown, nothing
/// written), then for real, again under `--check --diff` (no change), then lltune_rollback.
fn module_play(module: &str, fixture: &str, args: Value, want_in_diff: &[&str]) {
    let sandbox = tempfile::tempdir().unwrap();
    let dir = crate::support::host_fixture(fixture);
    let root = dir.path();
    let start = tree_snapshot(root);
    let mut a = args;
    a["root"] = json!("{{ lltune_root }}");
    a["backup_id"] = json!("play1");
    let tune = format!(
        "---\n- name: Tune with {module}\n  hosts: all\n  gather_facts: false\n  tasks:\n    - name: Run {module}\n      lltune.tuning.{module}: {a}\n"
    );
    fs::write(sandbox.path().join("tune.yml"), tune).unwrap();
    fs::write(sandbox.path().join("rollback.yml"), ROLLBACK.replace("- __lltune_rollback.reboot_required\n", ""))
        .unwrap();
    let play = |name: &str, flags: &[&str]| {
        let vars = json!({"lltune_root": root}).to_string();
        let mut args = vec!["-i", "localhost,", "-c", "local", "-e", vars.as_str()];
        args.extend_from_slice(flags);
        let path = sandbox.path().join(name);
        args.push(path.to_str().unwrap());
        let r = ansible(&support::ansible().playbook, sandbox.path(), &args);
        assert_eq!(r.code, 0, "{}", r.show());
        assert!(!r.stdout.contains("[WARNING]") && !r.stderr.contains("[WARNING]"), "{}", r.show());
        let recap = play_recap(&r.stdout, "localhost");
        (r, recap["changed"], recap["failed"])
    };
    let (r, changed, failed) = play("tune.yml", &["--check", "--diff"]);
    assert_eq!((changed, failed), (1, 0), "{}", r.show());
    for w in want_in_diff {
        assert!(r.stdout.contains(w), "{w:?} not in the diff:\n{}", r.show());
    }
    assert_same_tree(&start, &tree_snapshot(root), "--check --diff");
    let (r, changed, _) = play("tune.yml", &[]);
    assert_eq!(changed, 1, "{}", r.show());
    let applied = tree_snapshot(root);
    let (r, changed, _) = play("tune.yml", &["--check", "--diff"]);
    assert_eq!(changed, 0, "{}", r.show());
    assert_same_tree(&applied, &tree_snapshot(root), "check run after the apply");
    let (r, changed, _) = play("rollback.yml", &["--diff"]);
    assert_eq!(changed, 1, "{}", r.show());
    assert_same_tree(&start, &tree_snapshot(root), "after lltune_rollback");
}

#[test]
fn playbook_runs_lltune_nic_on_a_fixture_root() {
    module_play(
        "lltune_nic",
        "nic-2port",
        json!({"interfaces": [{"name": "ens1f0", "features": {"gro": false}, "coalesce": {"rx-usecs": 0},
                               "rps_cpus": "2-3"}]}),
        &["-rx-gro: on", "+rx-gro: off"],
    );
}

#[test]
fn playbook_runs_lltune_irq_on_a_fixture_root() {
    module_play(
        "lltune_irq",
        "irq-small",
        json!({"rules": [{"match": {"all": true}, "cpus": "0-1"}, {"match": {"nic": "eth0"}, "cpus": "2-3", "spread": true}],
               "irqbalance_banned_cpus": "4-7"}),
        &["eth0-TxRx-0", "IRQBALANCE_BANNED_CPULIST"],
    );
}

const CPU_MEMORY: &str = r#"---
- name: CPU and memory on a fixture root
  hosts: all
  gather_facts: false
  tasks:
    - name: CPU power and housekeeping
      lltune.tuning.lltune_cpu:
        root: "{{ lltune_root }}"
        governor: performance
        epp: performance
        turbo: false
        cstates: {max_latency_us: 0}
        workqueue_cpumask: "0,4"
        systemd_cpu_affinity: "0,4"
        backup_id: cm1
    - name: Memory
      lltune.tuning.lltune_memory:
        root: "{{ lltune_root }}"
        thp: {enabled: never, defrag: never}
        hugepages: {"2048": {"0": 256, "1": 256}}
        ksm: false
        swap: false
        numa_balancing: false
        backup_id: cm1
    - name: Roll back
      lltune.tuning.lltune_rollback:
        root: "{{ lltune_root }}"
        backup: cm1
      when: lltune_rollback | bool
"#;

#[test]
fn playbook_runs_cpu_and_memory_then_rolls_back() {
    let sandbox = tempfile::tempdir().unwrap();
    let dir = support::host_fixture("intel-pstate-2node");
    let root = dir.path();
    let start = tree_snapshot(root);
    fs::write(sandbox.path().join("cm.yml"), CPU_MEMORY).unwrap();
    let play = |rollback: bool, flags: &[&str]| {
        let vars = json!({"lltune_root": root, "lltune_rollback": rollback}).to_string();
        let mut args = vec!["-i", "localhost,", "-c", "local", "-e", vars.as_str()];
        args.extend_from_slice(flags);
        let path = sandbox.path().join("cm.yml");
        args.push(path.to_str().unwrap());
        let r = ansible(&support::ansible().playbook, sandbox.path(), &args);
        assert_eq!(r.code, 0, "{}", r.show());
        play_recap(&r.stdout, "localhost")
    };
    // --check --diff first: both predicted, nothing written.
    let recap = play(false, &["--check", "--diff"]);
    assert_eq!((recap["changed"], recap["failed"]), (2, 0));
    assert_same_tree(&start, &tree_snapshot(root), "check run");
    let recap = play(false, &[]);
    assert_eq!((recap["changed"], recap["failed"]), (2, 0));
    let recap = play(false, &["--check", "--diff"]);
    assert_eq!((recap["changed"], recap["failed"]), (0, 0));
    let recap = play(true, &[]);
    assert_eq!((recap["changed"], recap["failed"]), (1, 0));
    assert_same_tree(&start, &tree_snapshot(root), "after lltune_rollback");
}

#[test]
fn playbook_runs_lltune_services_on_a_fixture_root() {
    module_play(
        "lltune_services",
        "el9-trading",
        json!({"services": {"irqbalance": {"enabled": false}, "tuned": {"enabled": false, "masked": true}}}),
        &["multi-user.target.wants/irqbalance.service", "tuned.service -> /dev/null"],
    );
}

#[test]
fn playbook_runs_lltune_limits_on_a_fixture_root() {
    module_play(
        "lltune_limits",
        "el9-trading",
        json!({"limits": [{"domain": "@trading", "type": "-", "item": "memlock", "value": "unlimited"}],
               "file": "/etc/security/limits.d/99-lltune.conf"}),
        &["+@trading\t-\tmemlock\tunlimited"],
    );
}
