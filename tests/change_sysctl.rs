//! lltune_sysctl through its real binary, on copies of the hand-written boot fixture trees
//! (tests/fixtures/boot/*), and on the real kernel inside a new network namespace.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{self, assert_same_tree, boot_fixture, run_module, tree_snapshot};

const FIXTURES: &[&str] = &["rhel9-bls", "rhel8-grub2-bios", "rhel8-grub2-uefi", "debian12"];

fn read(root: &Path, p: &str) -> String {
    fs::read_to_string(root.join(p.trim_start_matches('/'))).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn args(root: &Path, extra: Value) -> Value {
    let mut v = json!({
        "root": root,
        "settings": {
            "net.core.busy_poll": 50,
            "net.ipv4.tcp_rmem": "4096 87380 67108864",
            "net.ipv4.tcp_timestamps": 0,
            "vm.swappiness": "10",
        },
        "backup_id": "t1",
        "_ansible_diff": true,
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

/// `chattr +i`: even root cannot write, rename over or remove the file. `None` (with a
/// message) where the filesystem does not support it; under CI that is a failure.
pub fn immutable(p: &Path) -> Option<Immutable> {
    let ok = Command::new("chattr").arg("+i").arg(p).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        crate::support::skip_unless_ci(&format!("chattr +i is not supported on {}", p.display()));
        return None;
    }
    Some(Immutable(p.to_path_buf()))
}

/// Clears `+i` on drop, so the temp folder can be removed.
pub struct Immutable(std::path::PathBuf);

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn sysctl_applies_runtime_and_file_then_reruns_unchanged() {
    for name in FIXTURES {
        let dir = boot_fixture(name);
        let root = dir.path();
        let (v, code) = run_module("lltune_sysctl", &args(root, json!({})));
        assert_eq!(code, 0, "{name}: {v}");
        assert_eq!(v["changed"], true, "{name}: {v}");
        assert_eq!(v["backup"], "/var/lib/lltune/backups/t1", "{name}");
        assert_eq!(v["reboot_required"], false);
        assert_eq!(read(root, "/proc/sys/net/core/busy_poll"), "50\n");
        assert_eq!(read(root, "/proc/sys/net/ipv4/tcp_rmem"), "4096 87380 67108864\n");
        assert_eq!(read(root, "/proc/sys/net/ipv4/tcp_timestamps"), "0\n");
        let file = read(root, "/etc/sysctl.d/99-latency-tuner.conf");
        for line in [
            "net.core.busy_poll = 50\n",
            "net.ipv4.tcp_rmem = 4096 87380 67108864\n",
            "net.ipv4.tcp_timestamps = 0\n",
            "vm.swappiness = 10\n",
        ] {
            assert!(file.contains(line), "{name}: {line:?} not in {file:?}");
        }
        let busy = v["changes"].as_array().unwrap().iter().find(|c| c["key"] == "net.core.busy_poll").unwrap();
        assert_eq!(busy["runtime"], json!({"before": "0", "after": "50"}));
        assert_eq!(busy["changed"], true);
        // The journal holds the previous runtime value and file state.
        let journal: Value = serde_json::from_str(&read(root, "/var/lib/lltune/backups/t1/journal.json")).unwrap();
        let entries = journal["entries"].as_array().unwrap();
        assert!(
            entries.iter().any(|e| e["kind"] == "runtime"
                && e["path"] == "/proc/sys/net/core/busy_poll"
                && e["previous"] == "0\n"),
            "{journal}"
        );
        assert!(entries.iter().any(|e| e["kind"] == "file" && e["path"] == "/etc/sysctl.d/99-latency-tuner.conf"));

        let before = tree_snapshot(root);
        let (again, code) = run_module("lltune_sysctl", &args(root, json!({"backup_id": "t2"})));
        assert_eq!(code, 0);
        assert_eq!(again["changed"], false, "{name}: second run: {again}");
        assert!(again.get("diff").is_none(), "{again}");
        assert_eq!(again["backup"], Value::Null);
        assert_same_tree(&before, &tree_snapshot(root), "second run");
        assert!(!root.join("var/lib/lltune/backups/t2").exists(), "a run without change makes no bundle");
    }
}

#[test]
fn sysctl_check_mode_predicts_the_real_run_without_writing() {
    for name in FIXTURES {
        let checked = boot_fixture(name);
        let before = tree_snapshot(checked.path());
        let (predicted, code) =
            run_module("lltune_sysctl", &args(checked.path(), json!({"_ansible_check_mode": true})));
        assert_eq!(code, 0, "{predicted}");
        assert_same_tree(&before, &tree_snapshot(checked.path()), "check mode");
        assert!(!checked.path().join("var/lib/lltune").exists(), "check mode made a backup folder");

        let real = boot_fixture(name);
        let (done, _) = run_module("lltune_sysctl", &args(real.path(), json!({})));
        assert_eq!(predicted["changed"], true);
        assert_eq!(predicted["changes"], done["changes"], "{name}");
        assert_eq!(predicted["diff"], done["diff"], "{name}");
        assert_eq!(predicted["conflicts"], done["conflicts"], "{name}");
        assert_eq!(predicted["backup"], Value::Null);
        let diff = predicted["diff"].as_array().unwrap();
        assert_eq!(diff[0]["before_header"], "runtime (/proc/sys)");
        assert!(diff[0]["before"].as_str().unwrap().contains("net.core.busy_poll = 0\n"));
        assert!(diff[0]["after"].as_str().unwrap().contains("net.core.busy_poll = 50\n"));
        assert_eq!(diff[1]["after_header"], "/etc/sysctl.d/99-latency-tuner.conf");
    }
}

#[test]
fn sysctl_reports_files_that_win_at_boot() {
    // rhel9-bls: a vendor file sorts after ours and sets busy_poll back to 0.
    let dir = boot_fixture("rhel9-bls");
    let (v, _) = run_module("lltune_sysctl", &args(dir.path(), json!({"_ansible_check_mode": true})));
    let c = v["conflicts"].as_array().unwrap();
    let busy = c.iter().find(|c| c["key"] == "net.core.busy_poll").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(busy["wins_at_boot"], "/etc/sysctl.d/99-zz-vendor.conf");
    assert_eq!(busy["value_at_boot"], "0");
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("net.core.busy_poll: /etc/sysctl.d/99-zz-vendor.conf sets 0")),
        "{v}"
    );

    // rhel8: /etc/sysctl.conf (through 99-sysctl.conf, sorted after 99-latency-tuner.conf)
    // sets vm.swappiness = 30: the classic RHEL trap.
    let dir = boot_fixture("rhel8-grub2-bios");
    let (v, _) = run_module("lltune_sysctl", &args(dir.path(), json!({"_ansible_check_mode": true})));
    let swap = v["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "vm.swappiness")
        .cloned()
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(swap["wins_at_boot"], "/etc/sysctl.d/99-sysctl.conf -> /etc/sysctl.conf");
    assert_eq!(swap["value_at_boot"], "30");
    // Our own file's stale value (busy_poll = 25) is an edit in place, not a conflict.
    let file =
        v["changes"].as_array().unwrap().iter().find(|c| c["key"] == "net.core.busy_poll").unwrap()["file"].clone();
    assert_eq!(file, json!({"before": "25", "after": "50"}));
    let diff = &v["diff"].as_array().unwrap()[1];
    assert_eq!(diff["before"], "# Generated by lltune (seed)\nnet.core.busy_poll = 25\nvm.swappiness = 10\n");
    assert_eq!(
        diff["after"],
        "# Generated by lltune (seed)\nnet.core.busy_poll = 50\nvm.swappiness = 10\nnet.ipv4.tcp_rmem = 4096 87380 67108864\nnet.ipv4.tcp_timestamps = 0\n"
    );
}

#[test]
fn sysctl_unknown_key_fails_clearly_unless_only_persisted() {
    let dir = boot_fixture("debian12");
    let before = tree_snapshot(dir.path());
    let a = json!({"root": dir.path(), "settings": {"net.core.busy_poll": 50, "net.core.no_such_knob": 1}});
    let (v, code) = run_module("lltune_sysctl", &a);
    assert_eq!(code, 1);
    assert_eq!(v["failed"], true);
    assert_eq!(v["changed"], false);
    assert_eq!(
        v["msg"],
        "net.core.no_such_knob: no such sysctl on this kernel (/proc/sys/net/core/no_such_knob does not exist); use runtime: false to only write it to the file"
    );
    assert_same_tree(&before, &tree_snapshot(dir.path()), "refused run");
    assert!(!dir.path().join("var/lib/lltune").exists());

    let (v, code) = run_module(
        "lltune_sysctl",
        &json!({"root": dir.path(), "runtime": false, "settings": {"net.core.no_such_knob": 1}}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], true);
    assert!(read(dir.path(), "/etc/sysctl.d/99-latency-tuner.conf").contains("net.core.no_such_knob = 1\n"));
}

#[test]
fn sysctl_refuses_unsafe_names_and_values_writing_nothing() {
    let dir = boot_fixture("rhel9-bls");
    let before = tree_snapshot(dir.path());
    for (settings, want) in [
        (json!({"net.core.busy poll": 1}), "option settings: \"net.core.busy poll\" is not a sysctl name"),
        (
            json!({"net.core.busy_poll;reboot": 1}),
            "option settings: \"net.core.busy_poll;reboot\" is not a sysctl name",
        ),
        (json!({"net/../../etc/shadow": 1}), "is not a sysctl name"),
        (json!({"net.core.busy_poll": "1\nkernel.panic = 1"}), "settings.net.core.busy_poll: value must be one line"),
        (
            json!({"net.core.busy_poll": [1]}),
            "option settings: net.core.busy_poll: expected a string or number, got a list",
        ),
    ] {
        let (v, code) = run_module("lltune_sysctl", &json!({"root": dir.path(), "settings": settings}));
        assert_eq!(code, 1, "{v}");
        assert!(v["msg"].as_str().unwrap().contains(want), "{} !~ {want}", v["msg"]);
    }
    let (v, _) =
        run_module("lltune_sysctl", &json!({"root": dir.path(), "settings": {"vm.swappiness": 1}, "state": "gone"}));
    assert!(v["msg"].as_str().unwrap().starts_with("option state: unknown variant `gone`"), "{v}");
    let (v, _) = run_module(
        "lltune_sysctl",
        &json!({"root": dir.path(), "settings": {"vm.swappiness": 1}, "backup_id": "../x"}),
    );
    assert!(v["msg"].as_str().unwrap().starts_with("option backup_id:"), "{v}");
    assert_same_tree(&before, &tree_snapshot(dir.path()), "refused runs");
}

#[test]
fn sysctl_rejected_key_midway_reverts_this_runs_changes() {
    let dir = boot_fixture("debian12");
    let root = dir.path();
    let before = tree_snapshot(root);
    // The kernel refusing a write: under a fixture root, an immutable /proc/sys file.
    let Some(_guard) = immutable(&root.join("proc/sys/net/ipv4/tcp_timestamps")) else { return };
    let (v, code) = run_module("lltune_sysctl", &args(root, json!({})));
    assert_eq!(code, 1, "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "writing \"0\" to /proc/sys/net/ipv4/tcp_timestamps: /proc/sys/net/ipv4/tcp_timestamps: permission denied"
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with("; reverted this run's changes to: /proc/sys/net/ipv4/tcp_rmem, /proc/sys/net/core/busy_poll"),
        "{msg}"
    );
    assert_eq!(v["changed"], false);
    assert_eq!(v["reverted"], json!(["/proc/sys/net/ipv4/tcp_rmem", "/proc/sys/net/core/busy_poll"]));
    // The journal folder is the only leftover.
    assert_same_tree(&before, &tree_snapshot(root), "after the failed run");
}

#[test]
fn sysctl_unwritable_file_reverts_runtime_values_and_keeps_the_old_file() {
    let dir = boot_fixture("rhel8-grub2-bios");
    let root = dir.path();
    let before = tree_snapshot(root);
    let Some(_guard) = immutable(&root.join("etc/sysctl.d/99-latency-tuner.conf")) else { return };
    let (v, code) = run_module("lltune_sysctl", &args(root, json!({})));
    assert_eq!(code, 1, "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.starts_with("writing /etc/sysctl.d/99-latency-tuner.conf: "), "{msg}");
    assert!(msg.contains("reverted this run's changes to: /proc/sys/vm/swappiness, /proc/sys/net/ipv4/tcp_timestamps, /proc/sys/net/ipv4/tcp_rmem, /proc/sys/net/core/busy_poll"), "{msg}");
    assert_same_tree(&before, &tree_snapshot(root), "after the failed run");
    // The interrupted replace left no temp file beside the old one.
    let names: Vec<String> = fs::read_dir(root.join("etc/sysctl.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".lltune-")), "{names:?}");
}

#[test]
fn sysctl_file_write_killed_at_any_moment_leaves_old_or_new_file() {
    // Many keys make a file big enough for the kill to land inside the write at times.
    let settings: serde_json::Map<String, Value> =
        (0..1500).map(|i| (format!("net.lltune.k{i:04}"), json!(i))).collect();
    let old = b"# before\nnet.lltune.k0000 = 7\n".to_vec();
    let reference = boot_fixture("debian12");
    fs::write(reference.path().join("etc/sysctl.d/90-big.conf"), &old).unwrap();
    let a = |root: &Path| json!({"root": root, "runtime": false, "settings": settings, "file": "/etc/sysctl.d/90-big.conf", "backup_id": "k"});
    let (v, _) = run_module("lltune_sysctl", &a(reference.path()));
    assert_eq!(v["changed"], true, "{v}");
    let new = fs::read(reference.path().join("etc/sysctl.d/90-big.conf")).unwrap();
    for delay_us in (0..16).map(|i| i * 400) {
        let dir = boot_fixture("debian12");
        let target = dir.path().join("etc/sysctl.d/90-big.conf");
        fs::write(&target, &old).unwrap();
        let args_path = dir.path().join("args.json");
        fs::write(&args_path, serde_json::to_vec(&a(dir.path())).unwrap()).unwrap();
        let mut child = Command::new(support::bin("lltune_sysctl"))
            .arg(&args_path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(delay_us));
        let _ = child.kill();
        let _ = child.wait();
        let now = fs::read(&target).unwrap();
        assert!(
            now == old || now == new,
            "after a kill at {delay_us}us the file is neither old nor new ({} bytes)",
            now.len()
        );
        // A temp file a kill leaves behind is hidden and not *.conf: systemd-sysctl skips it.
        for e in fs::read_dir(dir.path().join("etc/sysctl.d")).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                n == "90-big.conf"
                    || n == "99-sysctl.conf"
                    || n == "README.sysctl"
                    || (n.starts_with('.') && !n.ends_with(".conf")),
                "{n}"
            );
        }
    }
}

#[test]
fn sysctl_state_absent_removes_keys_from_the_file_only() {
    let dir = boot_fixture("rhel8-grub2-bios");
    let root = dir.path();
    let (v, code) = run_module(
        "lltune_sysctl",
        &json!({"root": root, "state": "absent", "settings": {"net.core.busy_poll": null}, "_ansible_diff": true}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], true);
    assert_eq!(read(root, "/etc/sysctl.d/99-latency-tuner.conf"), "# Generated by lltune (seed)\nvm.swappiness = 10\n");
    assert_eq!(read(root, "/proc/sys/net/core/busy_poll"), "0\n", "runtime untouched");
    let (v, _) = run_module(
        "lltune_sysctl",
        &json!({"root": root, "state": "absent", "settings": {"net.core.busy_poll": null}}),
    );
    assert_eq!(v["changed"], false);
}

/// Runs `script` with `sh` in new network and mount namespaces; `None` where not allowed
/// (under CI that is a failure).
fn in_netns(script: &str) -> Option<std::process::Output> {
    let probe = Command::new("unshare").args(["-n", "-m", "--propagation", "private", "true"]).output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        crate::support::skip_unless_ci("new network/mount namespaces are not allowed here (unshare -n -m failed)");
        return None;
    }
    Some(Command::new("unshare").args(["-n", "-m", "--propagation", "private", "sh", "-c", script]).output().unwrap())
}

#[test]
fn sysctl_runtime_on_the_real_kernel_in_a_network_namespace() {
    let host_value = fs::read_to_string("/proc/sys/net/ipv4/tcp_timestamps").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set.json");
    let bad = dir.path().join("bad.json");
    let back = dir.path().join("back.json");
    fs::write(&set, json!({"settings": {"net.ipv4.tcp_timestamps": 0, "net.core.somaxconn": 1234}, "write_file": false, "backup_id": "netns"}).to_string()).unwrap();
    // tcp_timestamps is a number: the kernel answers EINVAL to "abc", after somaxconn changed.
    fs::write(&bad, json!({"settings": {"net.core.somaxconn": 2345, "net.ipv4.tcp_timestamps": "abc"}, "write_file": false, "backup_id": "netns2"}).to_string()).unwrap();
    fs::write(&back, json!({"backup": "netns"}).to_string()).unwrap();
    let (sysctl, rollback) = (support::bin("lltune_sysctl"), support::bin("lltune_rollback"));
    // The bundle goes to /var/lib/lltune: a tmpfs over /var/lib, private to this namespace.
    let script = format!(
        "set -e; mount -t tmpfs lltune-test /var/lib; \
         echo start $(cat /proc/sys/net/ipv4/tcp_timestamps) $(cat /proc/sys/net/core/somaxconn); \
         {s} {set} ; echo; echo after $(cat /proc/sys/net/ipv4/tcp_timestamps) $(cat /proc/sys/net/core/somaxconn); \
         {s} {set} ; echo; \
         {s} {bad} || true; echo; echo rejected $(cat /proc/sys/net/ipv4/tcp_timestamps) $(cat /proc/sys/net/core/somaxconn); \
         {r} {back} ; echo; echo restored $(cat /proc/sys/net/ipv4/tcp_timestamps) $(cat /proc/sys/net/core/somaxconn)",
        s = sysctl.display(),
        r = rollback.display(),
        set = set.display(),
        bad = bad.display(),
        back = back.display()
    );
    let Some(out) = in_netns(&script) else { return };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    let start: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(start[0], "start");
    let results: Vec<Value> =
        lines.iter().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(results[0]["changed"], true, "{stdout}");
    assert_eq!(results[0]["backup"], "/var/lib/lltune/backups/netns");
    assert!(stdout.contains("after 0 1234\n"), "{stdout}");
    assert_eq!(results[1]["changed"], false, "second run: {stdout}");
    assert_eq!(results[2]["failed"], true);
    let msg = results[2]["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("writing \"abc\" to /proc/sys/net/ipv4/tcp_timestamps: /proc/sys/net/ipv4/tcp_timestamps: "),
        "{msg}"
    );
    assert!(msg.ends_with("reverted this run's changes to: /proc/sys/net/core/somaxconn"), "{msg}");
    assert!(stdout.contains("rejected 0 1234\n"), "{stdout}");
    assert_eq!(results[3]["changed"], true, "{stdout}");
    assert!(stdout.contains(&format!("restored {} {}\n", start[1], start[2])), "{stdout}");
    // The host's own namespace never saw any of it.
    assert_eq!(fs::read_to_string("/proc/sys/net/ipv4/tcp_timestamps").unwrap(), host_value);
    assert!(!Path::new("/var/lib/lltune/backups/netns").exists());
}
