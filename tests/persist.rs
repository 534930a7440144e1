//! `persist: true` and `lltune reapply`: the state a module applied comes back after a
//! simulated reboot (the tree's run-time files reset to what they were before the apply),
//! through the real `lltune reapply --root` binary; rollback removes the state file, the
//! unit and its enablement link. On trees the run-time files are plain files (sysfs, procfs
//! and the captured ethtool state): the one simulation here, since no reboot happens in a test.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{bin, host_fixture, run_module};

const STATE_DIR: &str = "etc/lltune/state.d";
const UNIT: &str = "etc/systemd/system/lltune-restore.service";
const WANTS: &str = "etc/systemd/system/multi-user.target.wants/lltune-restore.service";

/// Copies the run-time folders of `from` over `to`: what a reboot does to run-time state.
fn reboot(fresh: &Path, tree: &Path) {
    for d in ["proc", "sys", "var/lib/lltune/capture"] {
        let (src, dst) = (fresh.join(d), tree.join(d));
        if src.is_dir() {
            fs::remove_dir_all(&dst).unwrap();
            let st = Command::new("cp").arg("-a").arg(&src).arg(&dst).status().unwrap();
            assert!(st.success());
        }
    }
}

fn reapply(tree: &Path) -> String {
    let out = Command::new(bin("lltune")).args(["reapply", "--root"]).arg(tree).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "reapply failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// Every run-time file of the tree, for comparing "after apply" with "after reboot + reapply".
fn runtime(tree: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for d in ["proc", "sys", "var/lib/lltune/capture"] {
        let out_ref = &mut out;
        fn walk(base: &Path, p: &Path, out: &mut Vec<(String, Vec<u8>)>) {
            let Ok(rd) = fs::read_dir(p) else { return };
            for e in rd {
                let e = e.unwrap();
                let t = e.file_type().unwrap();
                if t.is_dir() {
                    walk(base, &e.path(), out);
                } else if t.is_file() {
                    out.push((e.path().strip_prefix(base).unwrap().display().to_string(), fs::read(e.path()).unwrap()));
                }
            }
        }
        walk(tree, &tree.join(d), out_ref);
    }
    out.sort();
    out
}

fn persist_case(module: &str, fixture: &str, args: Value) {
    let fresh = host_fixture(fixture);
    let dir = host_fixture(fixture);
    let tree = dir.path();
    let before = runtime(tree);
    let mut a = args.clone();
    a["root"] = json!(tree);
    a["persist"] = json!(true);
    a["backup_id"] = json!("p");
    // Check mode shows the state file, the unit and the link, and writes none of them.
    a["_ansible_check_mode"] = json!(true);
    a["_ansible_diff"] = json!(true);
    let (v, code) = run_module(module, &a);
    assert_eq!(code, 0, "{v}");
    let headers: Vec<&str> = v["diff"].as_array().unwrap().iter().filter_map(|d| d["after_header"].as_str()).collect();
    assert!(headers.iter().any(|h| h.ends_with(&format!("{module}.json"))), "{headers:?}");
    assert!(!tree.join(STATE_DIR).exists() && !tree.join(UNIT).exists());
    a.as_object_mut().unwrap().remove("_ansible_check_mode");
    let (v, code) = run_module(module, &a);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["persist"]["state_file"], format!("/etc/lltune/state.d/{module}.json"));
    let state: Value =
        serde_json::from_slice(&fs::read(tree.join(STATE_DIR).join(format!("{module}.json"))).unwrap()).unwrap();
    assert_eq!(state["module"], module);
    assert!(state["params"].get("persist").is_none() && state["params"].get("backup_id").is_none());
    assert!(fs::read_to_string(tree.join(UNIT)).unwrap().contains("ExecStart=/usr/local/sbin/lltune reapply"));
    assert_eq!(fs::read_link(tree.join(WANTS)).unwrap().to_str(), Some("/etc/systemd/system/lltune-restore.service"));
    let applied = runtime(tree);
    assert_ne!(applied, before, "{module}: the case must change run-time state");
    // Rerun: nothing to do, persistence included.
    let (v, _) = run_module(module, &a);
    assert_eq!(v["changed"], false, "{v}");

    // "Reboot": run-time state back to what it was; reapply brings the applied state back.
    reboot(fresh.path(), tree);
    assert_eq!(runtime(tree), before);
    let said = reapply(tree);
    assert!(said.contains(&format!("{module}: re-applied")), "{said}");
    assert_eq!(runtime(tree), applied, "{module}: reapply after a reboot differs from the apply");
    assert!(reapply(tree).contains(&format!("{module}: already in place")));

    // Rollback of the apply's bundle removes the persistence with the rest.
    let (v, code) = run_module("lltune_rollback", &json!({"root": tree, "backup": "p"}));
    assert_eq!(code, 0, "{v}");
    assert!(!tree.join(STATE_DIR).join(format!("{module}.json")).exists());
    assert!(!tree.join(UNIT).exists() && fs::symlink_metadata(tree.join(WANTS)).is_err());
}

#[test]
fn lltune_irq_persists_and_reapplies_after_a_reboot() {
    persist_case(
        "lltune_irq",
        "irq-small",
        json!({"rules": [{"match": {"all": true}, "cpus": "0-1"}, {"match": {"nic": "eth0"}, "cpus": "2-3", "spread": true}],
               "default_affinity": "0-3"}),
    );
}

#[test]
fn lltune_nic_persists_and_reapplies_after_a_reboot() {
    persist_case(
        "lltune_nic",
        "nic-2port",
        json!({"interfaces": [{"name": "ens1f0", "features": {"gro": false}, "coalesce": {"rx-usecs": 0},
                               "rps_cpus": "2-5"}]}),
    );
}

// ---- Persistence that several modules share ----

fn state_file(tree: &Path, module: &str) -> std::path::PathBuf {
    tree.join(STATE_DIR).join(format!("{module}.json"))
}

fn unit_and_link(tree: &Path) -> (bool, bool) {
    (tree.join(UNIT).is_file(), fs::symlink_metadata(tree.join(WANTS)).is_ok())
}

fn persist_run(tree: &Path, module: &str, args: Value, backup_id: &str) {
    let mut a = args;
    a["root"] = json!(tree);
    a["persist"] = json!(true);
    a["backup_id"] = json!(backup_id);
    let (v, code) = run_module(module, &a);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(true)), "{module}: {v}");
}

fn rollback(tree: &Path, backup: &str) -> Value {
    let (v, code) = run_module("lltune_rollback", &json!({"root": tree, "backup": backup}));
    assert_eq!(code, 0, "{v}");
    v
}

const CPU_ARGS: &str = r#"{"cstates": {"max_cstate": 1}}"#;
const MEMORY_ARGS: &str = r#"{"thp": {"enabled": "never"}}"#;

// See: issue 17 (rolling back one module's persisted run removed the restore unit while
// another module's state file remained).
#[test]
fn restore_unit_stays_while_any_state_file_remains_in_either_rollback_order() {
    for first in ["a", "b"] {
        let dir = host_fixture("intel-pstate-2node");
        let tree = dir.path();
        persist_run(tree, "lltune_cpu", serde_json::from_str(CPU_ARGS).unwrap(), "a");
        persist_run(tree, "lltune_memory", serde_json::from_str(MEMORY_ARGS).unwrap(), "b");
        let (kept, gone) = if first == "a" { ("lltune_memory", "lltune_cpu") } else { ("lltune_cpu", "lltune_memory") };
        let kept_text = fs::read(state_file(tree, kept)).unwrap();
        let v = rollback(tree, first);
        assert!(!state_file(tree, gone).exists(), "{first}: {v}");
        assert_eq!(fs::read(state_file(tree, kept)).unwrap(), kept_text, "{first}: the other state file is intact");
        assert_eq!(unit_and_link(tree), (true, true), "{first}: unit and link stay while {kept}.json remains: {v}");
        assert_eq!(
            fs::read_link(tree.join(WANTS)).unwrap().to_str(),
            Some("/etc/systemd/system/lltune-restore.service")
        );
        if first == "a" {
            // The bundle that installed the unit says why it kept it.
            let w = v["warnings"].to_string();
            assert!(w.contains("kept /etc/systemd/system/lltune-restore.service") && w.contains(kept), "{v}");
        }
        // The kept state is still re-applied at boot.
        assert!(reapply(tree).contains(&format!("{kept}: already in place")));
        let other = if first == "a" { "b" } else { "a" };
        let v = rollback(tree, other);
        assert!(!state_file(tree, kept).exists(), "{v}");
        assert_eq!(unit_and_link(tree), (false, false), "{first}: the last state file takes the unit and link: {v}");
        // Nothing lltune wrote for persistence is left, folders included.
        assert!(!tree.join("etc/lltune").exists(), "{first}: {v}");
        // A rollback run again changes nothing.
        let v = rollback(tree, other);
        assert_eq!(v["changed"], false, "{v}");
    }
}

#[test]
fn one_bundle_shared_by_two_persisting_modules_rolls_back_whole() {
    let dir = host_fixture("intel-pstate-2node");
    let tree = dir.path();
    persist_run(tree, "lltune_cpu", serde_json::from_str(CPU_ARGS).unwrap(), "play");
    persist_run(tree, "lltune_memory", serde_json::from_str(MEMORY_ARGS).unwrap(), "play");
    // A later run changes one module's state again, in its own bundle.
    persist_run(tree, "lltune_memory", serde_json::from_str(r#"{"thp": {"enabled": "madvise"}}"#).unwrap(), "later");
    let v = rollback(tree, "later");
    let memory: Value = serde_json::from_slice(&fs::read(state_file(tree, "lltune_memory")).unwrap()).unwrap();
    assert_eq!(memory["params"]["thp"]["enabled"], "never", "{v}");
    assert_eq!(unit_and_link(tree), (true, true), "{v}");
    let v = rollback(tree, "play");
    assert!(!state_file(tree, "lltune_cpu").exists() && !state_file(tree, "lltune_memory").exists(), "{v}");
    assert_eq!(unit_and_link(tree), (false, false), "{v}");
    assert!(!tree.join("etc/lltune").exists(), "{v}");
}

// See: issue 17 (reapply read a state file of any size; a state file's `root` key was called
// unsupported while the list of supported options named root).
#[test]
fn reapply_bounds_state_files_and_names_what_it_refuses() {
    let dir = host_fixture("intel-pstate-2node");
    let tree = dir.path();
    persist_run(tree, "lltune_memory", serde_json::from_str(MEMORY_ARGS).unwrap(), "a");
    // A sparse 16 GiB state file: refused from its first MiB, not read whole.
    let huge = fs::File::create(state_file(tree, "lltune_cpu")).unwrap();
    huge.set_len(16 << 30).unwrap();
    // A state file whose options name root (no option of a state file).
    fs::write(state_file(tree, "lltune_irq"), r#"{"module": "lltune_irq", "params": {"root": "/", "rules": []}}"#)
        .unwrap();
    let t = std::time::Instant::now();
    let out = Command::new(bin("lltune")).args(["reapply", "--root"]).arg(tree).output().unwrap();
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "{:?}", t.elapsed());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("/etc/lltune/state.d/lltune_cpu.json: larger than 1048576 bytes (1 MiB), more than any module's options; not re-applied"),
        "{text}"
    );
    let irq = text.lines().find(|l| l.starts_with("lltune_irq: failed")).unwrap_or_else(|| panic!("{text}"));
    assert!(irq.contains("unsupported option root; supported options: "), "{irq}");
    let listed = irq.split("supported options: ").nth(1).unwrap();
    assert!(!listed.split(", ").any(|o| o == "root"), "{irq}");
    // The good state file is still re-applied.
    assert!(text.contains("lltune_memory: already in place"), "{text}");
}

/// The tune role's modules persist but cannot install the CLI the restore unit runs (they are
/// other binaries): it runs `lltune install-cli`, which installs the binary that runs it as
/// /usr/local/sbin/lltune in the run's bundle, so that rollback removes it with the rest.
#[test]
fn install_cli_installs_this_binary_journaled_and_rollback_removes_it() {
    let fx = host_fixture("debian12-vm");
    let tree = fx.path();
    let cli = tree.join("usr/local/sbin/lltune");
    assert!(!cli.exists());
    // The test build's binary carries debug info past the 64 MiB a file write takes: a
    // stripped copy of it is what installs itself here (the shipped CLI is about 3 MB).
    let dir = tempfile::tempdir().unwrap();
    let me = dir.path().join("lltune");
    let st = Command::new("strip").arg("-o").arg(&me).arg(bin("lltune")).status().unwrap();
    assert!(st.success(), "strip failed");
    let install = |id: &str| {
        let out = Command::new(&me).args(["install-cli", "--backup-id", id, "--root"]).arg(tree).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(install("cli-1").starts_with("installed /usr/local/sbin/lltune"));
    assert_eq!(fs::read(&cli).unwrap(), fs::read(&me).unwrap());
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&cli).unwrap().permissions().mode() & 0o7777, 0o755);
    }
    // The same bytes again: nothing written, nothing journaled.
    assert!(install("cli-2").contains("already this binary"));
    assert!(!tree.join("var/lib/lltune/backups/cli-2").exists());
    let v = rollback(tree, "cli-1");
    assert_eq!(v["changed"], json!(true), "{v}");
    assert!(!cli.exists(), "rollback left the CLI behind");
    // A bad backup id names the option and writes nothing.
    let out = Command::new(&me).args(["install-cli", "--backup-id", "../x", "--root"]).arg(tree).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--backup-id"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!cli.exists());
}

// ---- Re-applying one interface when it (re)appears: the udev rule, its unit, `--interface` ----

const UDEV_RULE: &str = "etc/udev/rules.d/99-lltune.rules";
const REAPPLY_UNIT: &str = "etc/systemd/system/lltune-reapply@.service";

/// One rule line as udev(7) reads it: comma-separated `KEY[{attr}]OP"value"`, with the keys and
/// operators udev knows (a match key with `==`/`!=`, an assignment with `=`/`+=`/...).
fn udev_pairs(line: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let key_len = rest.find(|c: char| !(c.is_ascii_uppercase() || c == '_')).unwrap_or_else(|| panic!("{rest}"));
        let mut key = rest[..key_len].to_string();
        rest = &rest[key_len..];
        if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').unwrap_or_else(|| panic!("unclosed attribute in {line}"));
            key = format!("{key}{{{}}}", &r[..end]);
            rest = &r[end + 1..];
        }
        let op = ["==", "!=", "+=", "-=", ":=", "="].into_iter().find(|o| rest.starts_with(o));
        let op = op.unwrap_or_else(|| panic!("no operator after {key} in {line}"));
        rest = rest[op.len()..].strip_prefix('"').unwrap_or_else(|| panic!("unquoted value of {key}"));
        let end = rest.find('"').unwrap_or_else(|| panic!("unclosed value of {key}"));
        let value = rest[..end].to_string();
        rest = rest[end + 1..].trim_start();
        rest = rest.strip_prefix(',').map(str::trim_start).unwrap_or(rest);
        let matching = matches!(op, "==" | "!=");
        match key.as_str() {
            "ACTION" | "SUBSYSTEM" | "KERNEL" => assert!(matching, "{key} is a match key: {line}"),
            "TAG" | "RUN" => assert!(!matching, "{key} is assigned here: {line}"),
            k if k.starts_with("ENV{") => {}
            k => panic!("udev key {k} not expected in {line}"),
        }
        out.push((key, op.to_string(), value));
    }
    out
}

/// The argv the installed rule and unit run when the netdev `ifname` appears: the rule's
/// `SYSTEMD_WANTS` with udev's `$name` substituted, the unit that names, its `ExecStart`
/// with systemd's `%i` (the raw instance) substituted.
fn hotplug_command(root: &Path, ifname: &str) -> Vec<String> {
    let rule = fs::read_to_string(root.join(UDEV_RULE)).unwrap();
    let lines: Vec<&str> = rule.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 1, "{rule}");
    let pairs = udev_pairs(lines[0]);
    let has = |k: &str, op: &str, v: &str| pairs.iter().any(|(a, b, c)| a == k && b == op && c == v);
    assert!(has("ACTION", "==", "add") && has("SUBSYSTEM", "==", "net") && has("TAG", "+=", "systemd"), "{pairs:?}");
    // No RUN: udev kills what RUN starts once the event is handled.
    assert!(!pairs.iter().any(|(k, _, _)| k == "RUN"), "{pairs:?}");
    let wants = pairs.iter().find(|(k, op, _)| k == "ENV{SYSTEMD_WANTS}" && op == "+=").expect("SYSTEMD_WANTS");
    let unit = wants.2.replace("$name", ifname);
    let instance = unit
        .strip_prefix("lltune-reapply@")
        .and_then(|u| u.strip_suffix(".service"))
        .unwrap_or_else(|| panic!("{unit}"));
    let template = fs::read_to_string(root.join(REAPPLY_UNIT)).unwrap();
    let exec = template.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    assert!(!template.contains("%I"), "%I would turn '-' into '/': {template}");
    exec.split(' ').map(|w| w.replace("%i", instance)).collect()
}

/// Runs `lltune <args>`; (exit code, stdout, stderr).
fn lltune(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(bin("lltune")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn reapply_interface(tree: &Path, ifname: &str) -> (i32, String) {
    let (code, out, err) =
        lltune(&["reapply".as_ref(), "--interface".as_ref(), ifname.as_ref(), "--root".as_ref(), tree.as_os_str()]);
    (code, format!("{out}{err}"))
}

/// `systemd-analyze verify` on the installed template (instance `ifname`), its CLI path
/// pointed at the test's lltune: no warning at all. Skipped where systemd-analyze is not.
fn verify_unit(tree: &Path, ifname: &str) {
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(tree.join(REAPPLY_UNIT)).unwrap();
    let text = text.replace("/usr/local/sbin/lltune", &bin("lltune").display().to_string());
    fs::write(dir.path().join("lltune-reapply@.service"), text).unwrap();
    let unit = dir.path().join(format!("lltune-reapply@{ifname}.service"));
    match Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&unit).output() {
        Err(e) => eprintln!("systemd-analyze not run ({e}): the unit is checked by its text only"),
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && err.trim().is_empty(), "systemd-analyze verify: {err}");
        }
    }
}

#[test]
fn nic_persistence_installs_the_udev_rule_and_unit_check_mode_writes_none_rollback_removes_them() {
    let dir = host_fixture("nic-2port");
    let tree = dir.path();
    let before = crate::support::tree_snapshot(tree);
    let args = json!({"root": tree, "persist": true, "backup_id": "hp", "_ansible_diff": true,
                      "interfaces": [{"name": "ens1f0", "features": {"gro": false}}]});
    let mut check = args.clone();
    check["_ansible_check_mode"] = json!(true);
    let (v, code) = run_module("lltune_nic", &check);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(true)), "{v}");
    let headers: Vec<&str> = v["diff"].as_array().unwrap().iter().filter_map(|d| d["after_header"].as_str()).collect();
    for f in [UDEV_RULE, REAPPLY_UNIT] {
        assert!(headers.contains(&format!("/{f}").as_str()), "{f} not in {headers:?}");
    }
    crate::support::assert_same_tree(&before, &crate::support::tree_snapshot(tree), "check mode");

    let (v, code) = run_module("lltune_nic", &args);
    assert_eq!(code, 0, "{v}");
    assert!(tree.join(UDEV_RULE).is_file() && tree.join(REAPPLY_UNIT).is_file());
    // What the unit runs for ens1f0, and for a name with a '-' (kept as it is by %i).
    let cmd = hotplug_command(tree, "ens1f0");
    assert_eq!(cmd, ["/usr/local/sbin/lltune", "reapply", "--interface", "ens1f0"]);
    assert_eq!(hotplug_command(tree, "br-lan")[3], "br-lan");
    verify_unit(tree, "ens1f0");
    verify_unit(tree, "br-lan");
    // A second run: nothing to change, the rule and unit included.
    let (v, _) = run_module(
        "lltune_nic",
        &json!({"root": tree, "persist": true, "backup_id": "hp2",
                      "interfaces": [{"name": "ens1f0", "features": {"gro": false}}]}),
    );
    assert_eq!(v["changed"], false, "{v}");

    let v = rollback(tree, "hp");
    assert_eq!(v["changed"], true, "{v}");
    crate::support::assert_same_tree(&before, &crate::support::tree_snapshot(tree), "after rollback");
}

#[test]
fn persistence_of_other_modules_installs_no_udev_rule() {
    let dir = host_fixture("intel-pstate-2node");
    let tree = dir.path();
    persist_run(tree, "lltune_cpu", serde_json::from_str(CPU_ARGS).unwrap(), "c");
    assert!(tree.join(UNIT).is_file());
    assert!(!tree.join(UDEV_RULE).exists() && !tree.join(REAPPLY_UNIT).exists());
}

/// nic-2port with irq-small's IRQ table: a tree where both NIC and IRQ state can persist.
fn nic_and_irq_tree() -> tempfile::TempDir {
    let dir = host_fixture("nic-2port");
    let irq = host_fixture("irq-small");
    fs::copy(irq.path().join("proc/interrupts"), dir.path().join("proc/interrupts")).unwrap();
    let st = Command::new("cp").arg("-a").arg(irq.path().join("proc/irq")).arg(dir.path().join("proc/irq")).status();
    assert!(st.unwrap().success());
    dir
}

#[test]
fn udev_rule_and_unit_stay_while_a_nic_or_irq_state_file_remains_in_either_rollback_order() {
    for first in ["a", "b"] {
        let dir = nic_and_irq_tree();
        let tree = dir.path();
        let before = crate::support::tree_snapshot(tree);
        persist_run(tree, "lltune_nic", json!({"interfaces": [{"name": "ens1f0", "features": {"gro": false}}]}), "a");
        let rule = fs::read(tree.join(UDEV_RULE)).unwrap();
        persist_run(tree, "lltune_irq", json!({"rules": [{"match": {"irq": [24]}, "cpus": "5"}]}), "b");
        let v = rollback(tree, first);
        assert_eq!(fs::read(tree.join(UDEV_RULE)).unwrap(), rule, "{first}: the rule stays: {v}");
        assert!(tree.join(REAPPLY_UNIT).is_file(), "{first}: {v}");
        if first == "a" {
            assert!(v["warnings"].to_string().contains("kept /etc/udev/rules.d/99-lltune.rules"), "{v}");
        }
        let v = rollback(tree, if first == "a" { "b" } else { "a" });
        assert!(!tree.join(UDEV_RULE).exists() && !tree.join(REAPPLY_UNIT).exists(), "{first}: {v}");
        // Every file back as it was; a folder the first bundle made stays when a rollback of
        // another bundle empties it (as the restore unit's folders do).
        let mut after = crate::support::tree_snapshot(tree);
        after.retain(|k, n| before.contains_key(k) || !matches!(n, crate::support::Node::Dir { .. }));
        crate::support::assert_same_tree(&before, &after, first);
    }
}

/// The run-time files of `tree` under `prefix`, as `runtime` lists them.
fn runtime_under(tree: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    runtime(tree).into_iter().filter(|(p, _)| p.starts_with(prefix)).collect()
}

#[test]
fn reapply_interface_applies_only_that_interfaces_nic_settings() {
    let fresh = host_fixture("nic-2port");
    let dir = host_fixture("nic-2port");
    let tree = dir.path();
    // By driver (both ports), then by name for ens1f1 only.
    persist_run(
        tree,
        "lltune_nic",
        json!({"interfaces": [{"driver": "mlx5_core", "features": {"gro": false}, "rps_cpus": "1"},
                              {"name": "ens1f1", "rps_cpus": "2-3"}]}),
        "n",
    );
    let applied = runtime(tree);
    reboot(fresh.path(), tree);
    let fresh_state = runtime(tree);
    let port = |p: &str| -> Vec<String> {
        vec![
            format!("var/lib/lltune/capture/ethtool/{p}.json"),
            format!(
                "sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.{}/net/{p}/queues",
                if p == "ens1f0" { 0 } else { 1 }
            ),
        ]
    };
    let of = |state: &[(String, Vec<u8>)], p: &str| -> Vec<(String, Vec<u8>)> {
        state.iter().filter(|(f, _)| port(p).iter().any(|x| f.starts_with(x.as_str()))).cloned().collect()
    };
    assert_ne!(of(&applied, "ens1f0"), of(&fresh_state, "ens1f0"));
    let (code, said) = reapply_interface(tree, "ens1f0");
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("lltune_nic: re-applied"), "{said}");
    let now = runtime(tree);
    assert_eq!(of(&now, "ens1f0"), of(&applied, "ens1f0"), "ens1f0 is back");
    assert_eq!(of(&now, "ens1f1"), of(&fresh_state, "ens1f1"), "ens1f1 is left alone");
    let (code, said) = reapply_interface(tree, "ens1f1");
    assert_eq!(code, 0, "{said}");
    assert_eq!(runtime(tree), applied, "both back, ens1f1 with its own rps_cpus");
    let (code, said) = reapply_interface(tree, "ens1f0");
    assert_eq!((code, said.trim()), (0, "lltune_nic: already in place"));
    // lo has nothing persisted.
    let (code, said) = reapply_interface(tree, "lo");
    assert_eq!(code, 0, "{said}");
    assert!(said.starts_with("lltune reapply: nothing persisted for interface lo"), "{said}");
    assert_eq!(runtime(tree), applied);
}

#[test]
fn reapply_interface_applies_the_irq_rules_that_take_its_irqs_as_a_whole_run_would() {
    let fresh = host_fixture("irq-small");
    let dir = host_fixture("irq-small");
    let tree = dir.path();
    // `all` spread over CPUs 0-3 in queue order (acpi, eth0-TxRx-0..3, nvme0q0..2, rtc0): the
    // CPU of each eth0 queue depends on the IRQs before it, not only on eth0's; a later
    // rule for the NVMe queues; the default affinity is no interface's.
    persist_run(
        tree,
        "lltune_irq",
        json!({"rules": [{"match": {"all": true}, "cpus": "0-3", "spread": true},
                         {"match": {"name": "nvme*"}, "cpus": "6"}],
               "default_affinity": "0-3"}),
        "i",
    );
    let applied = runtime_under(tree, "proc/irq");
    reboot(fresh.path(), tree);
    let rebooted = runtime_under(tree, "proc/irq");
    let eth0 = |p: &str| ["24", "25", "26", "27"].iter().any(|n| p.starts_with(&format!("proc/irq/{n}/")));
    let affinity = |s: &[(String, Vec<u8>)], n: u32| {
        let f = format!("proc/irq/{n}/smp_affinity_list");
        String::from_utf8(s.iter().find(|(p, _)| *p == f).unwrap().1.clone()).unwrap().trim().to_string()
    };
    // The whole run put eth0-TxRx-0 on CPU 1 (acpi took CPU 0), -3 on CPU 0.
    assert_eq!((affinity(&applied, 24), affinity(&applied, 27)), ("1".into(), "0".into()));
    let (code, said) = reapply_interface(tree, "eth0");
    assert_eq!(code, 0, "{said}");
    assert_eq!(said.trim(), "lltune_irq: re-applied");
    let now = runtime_under(tree, "proc/irq");
    for ((p, after), ((_, want_applied), (_, want_fresh))) in now.iter().zip(applied.iter().zip(rebooted.iter())) {
        let want = if eth0(p) { want_applied } else { want_fresh };
        assert_eq!(after, want, "{p}");
    }
    assert_ne!(now, rebooted);
    assert_eq!(
        fs::read(tree.join("proc/irq/default_smp_affinity")).unwrap(),
        fs::read(fresh.path().join("proc/irq/default_smp_affinity")).unwrap()
    );
    let (code, said) = reapply_interface(tree, "eth0");
    assert_eq!((code, said.trim()), (0, "lltune_irq: already in place"));
    let (code, said) = reapply_interface(tree, "lo");
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("nothing persisted for interface lo"), "{said}");
    assert_eq!(runtime_under(tree, "proc/irq"), now);
}

#[test]
fn reapply_interface_refuses_a_name_the_kernel_refuses_in_one_line_naming_the_option() {
    use std::os::unix::ffi::OsStrExt;
    let dir = host_fixture("nic-2port");
    let tree = dir.path();
    persist_run(tree, "lltune_nic", json!({"interfaces": [{"name": "ens1f0", "features": {"gro": false}}]}), "n");
    let before = crate::support::tree_snapshot(tree);
    let long = "a".repeat(16);
    let huge = "b".repeat(100_000);
    let bad: Vec<&[u8]> = vec![
        b"",
        b".",
        b"..",
        b"a/b",
        b"eth0:1",
        b"a b",
        b"a\tb",
        b"a\nb",
        b"ab\xa0",
        long.as_bytes(),
        huge.as_bytes(),
    ];
    for name in bad {
        let (code, out, err) = lltune(&[
            "reapply".as_ref(),
            "--interface".as_ref(),
            std::ffi::OsStr::from_bytes(name),
            "--root".as_ref(),
            tree.as_os_str(),
        ]);
        let shown = String::from_utf8_lossy(name);
        assert_eq!(code, 1, "{shown:?}: {out}{err}");
        assert!(out.is_empty(), "{shown:?}: {out}");
        assert_eq!(err.lines().count(), 1, "{shown:?}: {err}");
        assert!(
            err.starts_with("lltune: error: --interface ") && err.contains("not a network interface name"),
            "{err}"
        );
        assert!(err.len() < 300, "{err}");
    }
    // The longest name the kernel takes, and one that is not UTF-8: nothing persisted, exit 0.
    for name in ["a".repeat(15).into_bytes(), b"ab\xff".to_vec()] {
        let (code, out, err) = lltune(&[
            "reapply".as_ref(),
            "--interface".as_ref(),
            std::ffi::OsStr::from_bytes(&name),
            "--root".as_ref(),
            tree.as_os_str(),
        ]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.starts_with("lltune reapply: nothing persisted for this interface")
                || out.starts_with("lltune reapply: nothing persisted for interface"),
            "{out}"
        );
    }
    crate::support::assert_same_tree(&before, &crate::support::tree_snapshot(tree), "refused names");
}

#[test]
fn reapply_interface_brings_a_re_created_veths_settings_back_in_a_network_namespace() {
    crate::support::in_netns(
        "persist::reapply_interface_brings_a_re_created_veths_settings_back_in_a_network_namespace",
        veth_re_created,
    );
}

const VETH: &str = "lltv-0";
const PEER: &str = "lltv-1";

fn add_veth() {
    #[rustfmt::skip]
    crate::support::sh("ip", &["link", "add", VETH, "numtxqueues", "4", "numrxqueues", "4",
                               "type", "veth", "peer", "name", PEER, "numtxqueues", "4", "numrxqueues", "4"]);
}

/// (tx-tcp-segmentation active, rx and tx channels) of a netdev.
fn veth_state(ifname: &str) -> (bool, (u32, u32)) {
    let f = lltune::sys::ethtool::get_features(ifname).unwrap();
    let tso = f.iter().find(|x| x.name == "tx-tcp-segmentation").expect("tx-tcp-segmentation").active;
    let c = lltune::sys::ethtool::get_channels(ifname).unwrap();
    (tso, (c.rx_count, c.tx_count))
}

/// Inside new network and mount namespaces: /sys shows this namespace's netdevs, and /etc and
/// /var/lib are private copies, so the persistence written on `/` stays in the test.
fn veth_re_created() {
    use crate::support::sh;
    sh("mount", &["-t", "sysfs", "sysfs", "/sys"]);
    sh("mount", &["-t", "tmpfs", "tmpfs", "/var/lib"]);
    let etc = tempfile::tempdir().unwrap();
    let etc = etc.path().to_str().unwrap();
    sh("mount", &["-t", "tmpfs", "tmpfs", etc]);
    sh("cp", &["-a", "/etc", etc]);
    sh("mount", &["--bind", &format!("{etc}/etc"), "/etc"]);
    add_veth();
    let defaults = veth_state(VETH);
    assert_eq!(defaults, (true, (4, 4)), "veth's defaults on this kernel");

    let args = json!({"interfaces": [{"name": VETH, "features": {"tso": false}, "channels": {"rx": 2, "tx": 2}}],
                      "persist": true, "backup_id": "live"});
    let (v, code) = run_module("lltune_nic", &args);
    assert_eq!(code, 0, "{v}");
    let tuned = (false, (2, 2));
    assert_eq!(veth_state(VETH), tuned);
    assert!(Path::new("/").join(UDEV_RULE).is_file() && Path::new("/").join(REAPPLY_UNIT).is_file());

    // The NIC goes away and comes back (a driver reload): the kernel's defaults again.
    sh("ip", &["link", "del", VETH]);
    add_veth();
    assert_eq!(veth_state(VETH), defaults);
    let peer = veth_state(PEER);

    // Exactly what the rule's unit runs for it (the test's build in place of the installed CLI).
    let cmd = hotplug_command(Path::new("/"), VETH);
    assert_eq!(cmd[..3], ["/usr/local/sbin/lltune", "reapply", "--interface"]);
    let run = |cmd: &[String]| {
        let out = Command::new(bin("lltune")).args(&cmd[1..]).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, said) = run(&cmd);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.starts_with("lltune_nic: re-applied"), "{said}");
    assert_eq!(veth_state(VETH), tuned, "{said}");
    assert_eq!(veth_state(PEER), peer, "the peer is left alone");
    let (code, said) = run(&cmd);
    assert_eq!((code, said.trim()), (Some(0), "lltune_nic: already in place"));

    // The peer appears too: nothing persisted for it, nothing done.
    let (code, said) = run(&hotplug_command(Path::new("/"), PEER));
    assert_eq!(code, Some(0), "{said}");
    assert!(said.starts_with(&format!("lltune reapply: nothing persisted for interface {PEER}")), "{said}");
    assert_eq!(veth_state(PEER), peer);

    // Rollback of the run takes the settings and the persistence back. It asks systemd to
    // reload its units; systemd is not PID 1 here: a stand-in systemctl records what it is asked.
    let fake = tempfile::tempdir().unwrap();
    let asked = fake.path().join("asked");
    let script = fake.path().join("systemctl");
    // The restore unit did not run at this boot: `is-active` answers as systemctl does then.
    let text = format!(
        "#!/bin/sh\necho \"$*\" >> {}\ncase \"$1\" in is-active) echo inactive; exit 3;; esac\n",
        asked.display()
    );
    fs::write(&script, text).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    for real in ["/usr/bin/systemctl", "/bin/systemctl"] {
        if Path::new(real).exists() {
            sh("mount", &["--bind", script.to_str().unwrap(), real]);
        }
    }
    let (v, code) = run_module("lltune_rollback", &json!({"backup": "live"}));
    assert_eq!(code, 0, "{v}");
    assert!(!Path::new("/").join(UDEV_RULE).exists() && !Path::new("/").join(REAPPLY_UNIT).exists(), "{v}");
    assert_eq!(veth_state(VETH), defaults, "{v}");
    // Asked whether the restore unit runs, then to reload the units whose files went.
    let asked = fs::read_to_string(&asked).unwrap_or_default();
    assert_eq!(asked.lines().last(), Some("daemon-reload"), "{asked}");
    assert!(asked.lines().all(|l| l == "daemon-reload" || l.starts_with("is-active ")), "{asked}");
}

/// A check-mode preview of persisting modules, each told the run's persisting modules as the
/// tune role tells them: every shared file is shown by exactly one of them (the restore unit
/// and its link by the first in the run order, the udev rule and the re-apply unit by the
/// first NIC or IRQ module), and nothing is written.
#[test]
fn a_preview_given_the_runs_persisting_modules_shows_each_shared_file_once() {
    let nic = json!({"interfaces": [{"name": "ens1f0", "features": {"gro": false}}]});
    let irq = json!({"rules": [{"match": {"irq": [24]}, "cpus": "5"}]});
    // (the run's persisting modules, the steps run here, who shows the restore unit, who the udev rule)
    let cases = [
        (
            json!(["lltune_irq", "lltune_nic"]),
            vec![("lltune_nic", &nic), ("lltune_irq", &irq)],
            vec!["lltune_nic"],
            vec!["lltune_nic"],
        ),
        // lltune_cpu (run before, not here) showed the restore unit; the NIC step still shows the udev rule.
        (json!(["lltune_nic", "lltune_cpu"]), vec![("lltune_nic", &nic)], vec![], vec!["lltune_nic"]),
        // The IRQ step alone: it is the first to bring both.
        (json!(["lltune_irq"]), vec![("lltune_irq", &irq)], vec!["lltune_irq"], vec!["lltune_irq"]),
    ];
    for (planned, steps, unit_by, rule_by) in cases {
        let dir = nic_and_irq_tree();
        let tree = dir.path();
        let before = crate::support::tree_snapshot(tree);
        let mut shown: Vec<(String, String)> = Vec::new();
        for (module, args) in &steps {
            let mut args = (*args).clone();
            for (k, v) in [
                ("root", json!(tree)),
                ("persist", json!(true)),
                ("persist_planned", planned.clone()),
                ("_ansible_check_mode", json!(true)),
                ("_ansible_diff", json!(true)),
            ] {
                args[k] = v;
            }
            let (v, code) = run_module(module, &args);
            assert_eq!((code, v["changed"].as_bool()), (0, Some(true)), "{module}: {v}");
            for d in v["diff"].as_array().unwrap() {
                shown.push((module.to_string(), d["after_header"].as_str().unwrap_or_default().to_string()));
            }
        }
        let by = |header: String| -> Vec<&str> {
            shown.iter().filter(|(_, h)| *h == header).map(|(m, _)| m.as_str()).collect()
        };
        assert_eq!(by(format!("/{UNIT}")), unit_by, "{planned}: {shown:?}");
        assert_eq!(by(format!("link /{WANTS}")), unit_by, "{planned}: {shown:?}");
        assert_eq!(by(format!("/{UDEV_RULE}")), rule_by, "{planned}: {shown:?}");
        assert_eq!(by(format!("/{REAPPLY_UNIT}")), rule_by, "{planned}: {shown:?}");
        // Each module's own state file is its own to show.
        for (m, _) in &steps {
            assert_eq!(by(format!("/{STATE_DIR}/{m}.json")), [*m], "{planned}: {shown:?}");
        }
        crate::support::assert_same_tree(&before, &crate::support::tree_snapshot(tree), "a preview");
    }
}
