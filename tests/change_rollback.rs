//! lltune_rollback: a bundle written by lltune_sysctl and lltune_kernel_args in one play
//! (one backup_id) puts every fixture tree back byte for byte, mode and owner included.
//! The bundle folder itself (var/lib/lltune) is the one thing left behind, by design: it is
//! the record of what was done, and rollback never deletes evidence.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{assert_same_tree, boot_fixture, run_module, tree_snapshot};

fn apply_both(root: &Path, id: &str, busy_poll: u32) {
    let (v, code) = run_module(
        "lltune_sysctl",
        &json!({"root": root, "backup_id": id, "settings": {"net.core.busy_poll": busy_poll, "vm.swappiness": 10, "net.ipv4.tcp_rmem": "4096 87380 67108864"}}),
    );
    assert_eq!(code, 0, "{v}");
    let (v, code) = run_module(
        "lltune_kernel_args",
        &json!({"root": root, "backup_id": id, "args": {"isolcpus": "2-5", "nohz_full": "2-5", "nosoftlockup": null}, "remove": ["quiet"]}),
    );
    assert_eq!(code, 0, "{v}");
}

#[test]
fn rollback_restores_every_fixture_byte_for_byte() {
    for name in ["rhel9-bls", "rhel8-grub2-bios", "rhel8-grub2-uefi", "debian12"] {
        let dir = boot_fixture(name);
        let root = dir.path();
        // A file with an unusual mode must come back with it.
        fs::set_permissions(root.join("etc/default/grub"), fs::Permissions::from_mode(0o600)).unwrap();
        let start = tree_snapshot(root);
        apply_both(root, "play1", 50);
        // A second module run in the same play changes busy_poll again: the bundle keeps
        // the first baseline.
        apply_both(root, "play1", 70);
        assert_eq!(fs::read_to_string(root.join("proc/sys/net/core/busy_poll")).unwrap(), "70\n");
        assert_eq!(fs::metadata(root.join("etc/default/grub")).unwrap().permissions().mode() & 0o7777, 0o600);

        // Check mode: predicts, writes nothing.
        let applied = tree_snapshot(root);
        let (predicted, code) = run_module(
            "lltune_rollback",
            &json!({"root": root, "backup": "play1", "_ansible_check_mode": true, "_ansible_diff": true}),
        );
        assert_eq!(code, 0, "{predicted}");
        assert_eq!(predicted["changed"], true);
        assert_same_tree(&applied, &tree_snapshot(root), "rollback in check mode");

        let (v, code) = run_module(
            "lltune_rollback",
            &json!({"root": root, "backup": "/var/lib/lltune/backups/play1", "_ansible_diff": true}),
        );
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["changed"], true);
        assert_eq!(v["reboot_required"], true, "boot configuration was restored");
        assert_eq!(v["backup"], "/var/lib/lltune/backups/play1");
        assert_eq!(predicted["diff"], v["diff"], "{name}");
        assert_eq!(predicted["restored"], v["restored"], "{name}");
        let restored: Vec<&str> =
            v["restored"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();
        assert!(
            restored.contains(&"/proc/sys/net/core/busy_poll") && restored.contains(&"/etc/default/grub"),
            "{restored:?}"
        );
        assert_same_tree(&start, &tree_snapshot(root), &format!("{name} after rollback"));

        // A second rollback has nothing left to do.
        let (again, _) = run_module("lltune_rollback", &json!({"root": root, "backup": "play1"}));
        assert_eq!(again["changed"], false, "{again}");
        assert_eq!(again["reboot_required"], false);
    }
}

/// See: issue 17. A wrong id names the bundles the host has: newest first, at most ten, with
/// how many older ones there are; the same from the module and the CLI. Folders without a
/// manifest and names that are not ids are not bundles.
#[test]
fn rollback_of_a_wrong_id_lists_the_bundles_that_exist() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    for n in 1..=12u32 {
        let (v, code) = run_module(
            "lltune_sysctl",
            &json!({"root": root, "backup_id": format!("run-{n:02}"), "settings": {"net.core.busy_poll": n}}),
        );
        assert_eq!(code, 0, "{v}");
        assert!(v["backup"].is_string(), "{v}");
    }
    fs::create_dir_all(root.join("var/lib/lltune/backups/run-99")).unwrap();
    fs::create_dir_all(root.join("var/lib/lltune/backups/.hidden")).unwrap();
    let want = "backup run-13: no /var/lib/lltune/backups/run-13/journal.json under root; bundles on this host, newest first: run-12, run-11, run-10, run-09, run-08, run-07, run-06, run-05, run-04, run-03 (and 2 older)";
    let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "run-13"}));
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["msg"], want);
    let (code, out, err) = lltune(&["rollback", "--backup", "run-13", "--root", root.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains(want), "{err}");
    // The listed ids work.
    let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "run-03"}));
    assert_eq!((code, &v["changed"]), (0, &json!(true)), "{v}");
}

#[test]
fn rollback_removes_files_that_did_not_exist() {
    let dir = boot_fixture("debian12");
    let root = dir.path();
    let start = tree_snapshot(root);
    let (v, _) =
        run_module("lltune_sysctl", &json!({"root": root, "backup_id": "b", "settings": {"net.core.busy_poll": 50}}));
    assert_eq!(v["changed"], true);
    assert!(root.join("etc/sysctl.d/99-latency-tuner.conf").exists());
    // The bundle path as seen from outside the root works too (the CLI's --root users).
    let real = root.join("var/lib/lltune/backups/b");
    let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": real, "_ansible_diff": true}));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["reboot_required"], false, "no boot file in this bundle");
    let kinds: Vec<(&str, &str)> = v["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["path"].as_str().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![("/etc/sysctl.d/99-latency-tuner.conf", "removed"), ("/proc/sys/net/core/busy_poll", "runtime")]
    );
    assert_eq!(v["diff"][0]["after_header"], "/etc/sysctl.d/99-latency-tuner.conf (absent)");
    assert_same_tree(&start, &tree_snapshot(root), "after rollback");
}

#[test]
fn rollback_of_a_missing_or_broken_bundle_fails_clearly() {
    let dir = boot_fixture("debian12");
    let root = dir.path();
    let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "nope"}));
    assert_eq!(code, 1);
    assert_eq!(
        v["msg"],
        "backup nope: no /var/lib/lltune/backups/nope/journal.json under root; this host has no backup bundle (/var/lib/lltune/backups holds none)"
    );
    fs::create_dir_all(root.join("var/lib/lltune/backups/bad")).unwrap();
    fs::write(root.join("var/lib/lltune/backups/bad/journal.json"), "{").unwrap();
    let (v, _) = run_module("lltune_rollback", &json!({"root": root, "backup": "bad"}));
    assert!(
        v["msg"].as_str().unwrap().starts_with("/var/lib/lltune/backups/bad/journal.json: not a valid journal"),
        "{v}"
    );
    let (v, _) = run_module("lltune_rollback", &json!({"root": root}));
    assert_eq!(v["msg"], "missing required option backup");
    let (v, _) = run_module("lltune_rollback", &json!({"root": root, "backup": "x", "force": true}));
    assert_eq!(
        v["msg"],
        Value::String("unsupported option force; supported options: backup, option_names, root".into())
    );
}

const CONFIG: &str = r#"version: 1
metadata:
  host: fixture
kernel:
  cmdline:
    isolcpus: "managed_irq,domain,2-5"
    nohz_full: "2-5"
    nosoftlockup: ""
memory:
  swappiness: 10
  numa_balancing: false
network:
  sysctl:
    busy_poll: 50
    tcp_timestamps: false
    tcp_low_latency: true
irq:
  avoid_cores_for_irqs: "2-5"
safety:
  allow_grub_edit: true
"#;

fn lltune(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(crate::support::bin("lltune")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_apply_plan_then_apply_then_rollback() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.yaml");
    fs::write(&cfg, CONFIG).unwrap();
    let (root_s, cfg_s) = (root.to_str().unwrap(), cfg.to_str().unwrap());
    let start = tree_snapshot(root);

    let (code, out, err) = lltune(&["apply", "-c", cfg_s, "--plan", "--root", root_s]);
    assert_eq!(code, 0, "{out}{err}");
    assert_same_tree(&start, &tree_snapshot(root), "apply --plan");
    assert!(!root.join("var/lib/lltune").exists(), "--plan wrote a backup");
    assert!(!out.contains("backup:"), "--plan printed a backup id:\n{out}");
    for want in [
        "lltune apply --plan: nothing is written",
        "lltune_sysctl: changes\n",
        "  -net.core.busy_poll = 0\n  -net.ipv4.tcp_timestamps = 1\n",
        "  +kernel.numa_balancing = 0\n",
        "lltune_kernel_args: changes\n",
        "skipped: network.sysctl.tcp_low_latency (net.ipv4.tcp_low_latency): not present on this kernel",
        "lltune_irq: changes\n",
        "would change\nreboot required",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }

    let (code, out, err) = lltune(&["apply", "-c", cfg_s, "--root", root_s, "--backup-id", "cli1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("backup: /var/lib/lltune/backups/cli1 (undo with: lltune rollback --backup /var/lib/lltune/backups/cli1 --root {root_s})")), "{out}");
    assert_eq!(fs::read_to_string(root.join("proc/sys/kernel/numa_balancing")).unwrap(), "0\n");
    let (code, out, _) = lltune(&["apply", "-c", cfg_s, "--root", root_s]);
    assert_eq!(code, 0);
    assert!(out.contains("lltune_sysctl: no change\n") && out.contains("lltune_kernel_args: no change\n"), "{out}");
    assert!(out.contains("nothing to change\n"), "{out}");
    // Nothing written, so no bundle id to roll back (see: issue 17).
    assert!(!out.contains("backup:"), "{out}");

    let (code, out, err) = lltune(&["rollback", "--backup", "/var/lib/lltune/backups/cli1", "--root", root_s]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("reboot required: boot configuration was restored"), "{out}");
    assert_same_tree(&start, &tree_snapshot(root), "after lltune rollback");
}

#[test]
fn cli_apply_honours_safety_flags_and_config_errors() {
    let dir = boot_fixture("debian12");
    let root = dir.path();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.yaml");
    let (root_s, cfg_s) = (root.to_str().unwrap(), cfg.to_str().unwrap());
    fs::write(&cfg, CONFIG.replace("allow_grub_edit: true", "allow_grub_edit: false")).unwrap();
    let (code, out, _) = lltune(&["apply", "-c", cfg_s, "--plan", "--root", root_s]);
    assert_eq!(code, 0);
    assert!(out.contains("skipped: kernel.cmdline (3 arguments): safety.allow_grub_edit is false\n"), "{out}");
    assert!(!out.contains("lltune_kernel_args"), "{out}");
    // A real apply with the flag off changes sysctls and leaves the boot configuration alone.
    let before = tree_snapshot(root);
    let (code, out, err) = lltune(&["apply", "-c", cfg_s, "--root", root_s, "--backup-id", "nogrub"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("lltune_sysctl: changes\n") && !out.contains("lltune_kernel_args"), "{out}");
    let after = tree_snapshot(root);
    let changed: Vec<&String> = after.keys().chain(before.keys()).filter(|k| before.get(*k) != after.get(*k)).collect();
    assert!(!changed.is_empty());
    for path in changed {
        assert!(
            // Sysctls, the irq section's irqbalance setting (lltune_irq) and its persistence
            // (state file, lltune-restore.service, the udev rule that re-applies a NIC that
            // re-appears): never the kernel command line.
            [
                "proc/sys/",
                "etc/sysctl.d/",
                "var/lib/lltune",
                "etc/default/irqbalance",
                "etc/sysconfig",
                "etc/lltune",
                "etc/systemd",
                "etc/udev",
            ]
            .iter()
            .any(|p| path.starts_with(p)),
            "apply with allow_grub_edit: false changed {path}"
        );
    }
    let journal = fs::read_to_string(root.join("var/lib/lltune/backups/nogrub/journal.json")).unwrap();
    assert!(!journal.contains("lltune_kernel_args") && !journal.contains("/etc/default/grub"), "{journal}");

    fs::write(&cfg, CONFIG.replace("nohz_full: \"2-5\"", "mitigations: \"off\"")).unwrap();
    let (code, _, err) = lltune(&["apply", "-c", cfg_s, "--plan", "--root", root_s]);
    assert_eq!(code, 1);
    // The policy refuses it in the config reader, before any module runs.
    assert!(
        err.contains("kernel.cmdline.mitigations: mitigations=off switches off CPU vulnerability protection"),
        "{err}"
    );

    fs::write(&cfg, CONFIG.replace("swappiness: 10", "swappiness: [10]")).unwrap();
    let (code, _, err) = lltune(&["apply", "-c", cfg_s, "--plan", "--root", root_s]);
    assert_eq!(code, 1);
    assert!(err.contains("memory.swappiness: expected an integer, got a list"), "{err}");
}

/// The issue's case: a config audit rejects against the tree (isolcpus over every CPU) was
/// applied anyway. Now apply runs the full audit with the tree's facts first.
#[test]
fn cli_apply_runs_the_audit_with_host_facts_first() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    fs::create_dir_all(root.join("sys/devices/system/cpu")).unwrap();
    fs::write(root.join("sys/devices/system/cpu/online"), "0-3\n").unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.yaml");
    fs::write(&cfg, CONFIG.replace("kernel:\n", "cpu:\n  isolate_cores: \"0-3\"\nkernel:\n").replace("2-5", "0-3"))
        .unwrap();
    let (root_s, cfg_s) = (root.to_str().unwrap(), cfg.to_str().unwrap());
    let start = tree_snapshot(root);
    for args in [vec!["apply", "-c", cfg_s, "--root", root_s], vec!["apply", "-c", cfg_s, "--plan", "--root", root_s]] {
        let (code, out, err) = lltune(&args);
        assert_eq!(code, 1, "{out}{err}");
        assert!(err.contains("config has 1 error(s) (lltune audit; nothing was applied)"), "{err}");
        assert!(err.contains("cpu.isolate_cores: isolates every online CPU (0-3)"), "{err}");
    }
    assert_same_tree(&start, &tree_snapshot(root), "refused apply");
    // CPUs the host lacks: refused too; within the host's CPUs it applies.
    let (code, _, err) = {
        fs::write(&cfg, CONFIG).unwrap();
        lltune(&["apply", "-c", cfg_s, "--plan", "--root", root_s])
    };
    assert_eq!(code, 1);
    assert!(err.contains("kernel.cmdline.isolcpus: CPUs 4-5 are not online on this host (online: 0-3)"), "{err}");
    fs::write(&cfg, CONFIG.replace("2-5", "2-3")).unwrap();
    let (code, out, err) = lltune(&["apply", "-c", cfg_s, "--plan", "--root", root_s]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn cli_apply_on_this_host_needs_root_privileges() {
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        crate::support::skip_unless_ci("needs to start as root to drop to an unprivileged user");
        return;
    }
    let out = std::process::Command::new(crate::support::bin("lltune"))
        .args(["apply", "-c", "/nonexistent/config.yaml"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("lltune apply changes this host and needs root privileges"), "{err}");
}
