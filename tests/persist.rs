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
