//! The contract every changing module keeps, checked by one harness (`contract`) that each
//! module's case runs through its real binary on a copy of a fixture tree:
//!
//! - check mode writes nothing (whole-tree snapshot: bytes, modes, owners, xattrs, links,
//!   folders) and predicts the real run's `changed` and `diff`;
//! - apply → rerun `changed: false` → `lltune_rollback` gives back the tree byte for byte;
//! - a failure at every mutation point (EIO injected, debug builds) reverts this run;
//! - a SIGKILL at every mutation point leaves each file old or new, and rollback restores;
//! - concurrent runs sharing a backup id lose no journal entry;
//! - a file the module writes that is a link leading out of `root` is refused.
//!
//! Fault injection (`LLTUNE_FAULT_*`, see `host::fault`) is the one fake here: no real
//! disk fills up or loses power on cue. Everything else is the real binary on real files.
//! Below the harness: the attacker cases that once got through, as regression tests, and the
//! read side of the contract for `lltune_health`, which changes nothing.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::{bin, boot_fixture, host_fixture, run_module, run_module_stdin};

/// What a byte-identical comparison looks at, for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File { bytes: Vec<u8>, mode: u32, uid: u32, gid: u32, xattrs: BTreeMap<String, Vec<u8>> },
    Dir { mode: u32, uid: u32, gid: u32 },
    Link(PathBuf),
}

fn xattrs(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 65536];
    // SAFETY: buffers are sized as passed.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "llistxattr {}", p.display());
    names.truncate(n as usize);
    for name in names.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let cn = std::ffi::CString::new(name).unwrap();
        let mut v = vec![0u8; 65536];
        // SAFETY: as above.
        let l = unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        assert!(l >= 0);
        v.truncate(l as usize);
        out.insert(String::from_utf8_lossy(name).into_owned(), v);
    }
    out
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: pointers and lengths describe live buffers.
    let r = unsafe { libc::setxattr(c.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert_eq!(r, 0, "setxattr {name} on {}: {}", p.display(), std::io::Error::last_os_error());
}

/// Every path under `root`. `backups`: include lltune's own `var/lib/lltune` (check mode
/// must not create it); without, it is left out (the one thing a rollback leaves).
/// Temp files of a killed run (`.<name>.lltune-*`) are listed apart: never loaded by
/// anything (hidden, no `.conf` suffix), they are the trace a kill -9 may leave.
fn snapshot(root: &Path, backups: bool) -> (BTreeMap<String, Node>, Vec<String>) {
    fn walk(base: &Path, dir: &Path, backups: bool, out: &mut BTreeMap<String, Node>, temps: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if !backups && rel == "var/lib/lltune" {
                continue;
            }
            if p.file_name().unwrap().to_string_lossy().contains(".lltune-") {
                temps.push(rel);
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            let node = if m.file_type().is_symlink() {
                Node::Link(fs::read_link(&p).unwrap())
            } else if m.is_dir() {
                walk(base, &p, backups, out, temps);
                Node::Dir { mode: m.mode() & 0o7777, uid: m.uid(), gid: m.gid() }
            } else {
                Node::File {
                    bytes: fs::read(&p).unwrap(),
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    xattrs: xattrs(&p),
                }
            };
            out.insert(rel, node);
        }
    }
    let (mut out, mut temps) = (BTreeMap::new(), Vec::new());
    walk(root, root, backups, &mut out, &mut temps);
    if !backups {
        out = strip_backup_dirs(&out);
    }
    (out, temps)
}

fn differences(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>) -> Vec<String> {
    let mut d = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => d.push(format!("{k}: gone")),
            Some(w) if w != v => d.push(format!("{k}: changed")),
            _ => {}
        }
    }
    d.extend(b.keys().filter(|k| !a.contains_key(*k)).map(|k| format!("{k}: new")));
    d
}

fn assert_same(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>, what: &str) {
    let d = differences(a, b);
    assert!(d.is_empty(), "{what}: {d:?}");
}

/// Runs a module binary with extra environment (fault injection); `None` when killed.
fn run_env(module: &str, args: &Value, env: &[(&str, String)]) -> Option<(Value, i32)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("args.json");
    fs::write(&path, serde_json::to_vec(args).unwrap()).unwrap();
    let mut cmd = Command::new(bin(module));
    cmd.arg(&path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    out.status.code()?;
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{module}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    Some((v, out.status.code().unwrap()))
}

fn with(args: &Value, root: &Path, extra: Value) -> Value {
    let mut v = args.clone();
    v["root"] = json!(root);
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn rollback(root: &Path, id: &str) -> Value {
    let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": id}));
    assert_eq!(code, 0, "rollback: {v}");
    v
}

/// One module's case: a fixture tree, the arguments of a run that changes something, and a
/// second run's arguments that change other items (for the concurrency check).
pub struct Case {
    pub module: &'static str,
    /// A fresh copy of the fixture tree the module runs on.
    pub fixture: fn() -> tempfile::TempDir,
    pub args: Value,
    pub other: Value,
}

pub fn contract(case: &Case) {
    let m = case.module;
    // 1. Check mode: nothing written, the real run predicted.
    let dir = (case.fixture)();
    let root = dir.path();
    let (start, _) = snapshot(root, true);
    // The audit trail (tests/trail.rs): the lines each run sends to a syslog socket we own.
    let log = crate::trail::Syslog::new();
    let env = [("LLTUNE_SYSLOG_SOCKET", log.path().display().to_string())];
    let (check, code) = run_env(
        m,
        &with(&case.args, root, json!({"_ansible_check_mode": true, "_ansible_diff": true, "backup_id": "c1"})),
        &env,
    )
    .unwrap();
    assert_eq!(code, 0, "{m} check mode: {check}");
    assert_eq!(check["changed"], true, "{m}: the case must change something");
    assert_same(&start, &snapshot(root, true).0, &format!("{m}: check mode wrote"));
    assert_eq!(log.lines(), Vec::<String>::new(), "{m}: check mode logged");

    // 1b. `option_names`: the same check run with every option given a caller's name
    // changes nothing in the result; a failure names the caller's variable, not the option;
    // a malformed mapping fails naming option_names, and nothing is written.
    let mut names: serde_json::Map<String, Value> =
        case.args.as_object().unwrap().keys().map(|k| (k.clone(), json!(format!("role_{k}")))).collect();
    names.insert("root".into(), json!("lltune_root"));
    names.insert("backup_id".into(), json!("lltune_backup_id"));
    let named = json!({"_ansible_check_mode": true, "_ansible_diff": true, "backup_id": "c1", "option_names": names});
    let (v, code) = run_module(m, &with(&case.args, root, named.clone()));
    assert_eq!((code, &v["diff"]), (0, &check["diff"]), "{m} with option_names: {v}");
    let (v, code) = run_module(m, &with(&case.args, &root.join("no-such-dir"), named.clone()));
    let msg = v["msg"].as_str().unwrap_or_default();
    assert_eq!(code, 1, "{m}: {v}");
    assert!(msg.starts_with("lltune_root: ") && !msg.contains("option root"), "{m}: {msg}");
    let (v, code) = run_module(m, &with(&case.args, root, json!({"backup_id": 5, "option_names": names})));
    let msg = v["msg"].as_str().unwrap_or_default();
    assert_eq!(code, 1, "{m}: {v}");
    assert!(msg.starts_with("lltune_backup_id: ") && !msg.contains("option backup_id"), "{m}: {msg}");
    for bad in [json!(["root"]), json!({"root": 1}), json!({"root": "no spaces allowed"})] {
        let (v, code) = run_module(m, &with(&case.args, root, json!({"backup_id": "n1", "option_names": bad})));
        assert_eq!(code, 1, "{m}: option_names {bad} accepted: {v}");
        assert!(v["msg"].as_str().unwrap_or_default().starts_with("option option_names"), "{m}: {v}");
    }
    assert_same(&start, &snapshot(root, true).0, &format!("{m}: a run with option_names wrote"));

    // 2. Apply, rerun, rollback.
    let (real, code) =
        run_env(m, &with(&case.args, root, json!({"_ansible_diff": true, "backup_id": "c1"})), &env).unwrap();
    assert_eq!(code, 0, "{m}: {real}");
    assert_eq!(real["changed"], true);
    assert_eq!(real["diff"], check["diff"], "{m}: check mode's diff differs from the real run's");
    assert_eq!(real["backup"], "/var/lib/lltune/backups/c1");
    crate::trail::assert_trail(m, &log.lines(), "c1", real["diff"].as_array().unwrap().len());
    // Keys Ansible reads itself must mean what Ansible means by them.
    for reserved in ["skipped", "rc", "invocation", "ansible_facts", "exception", "results"] {
        assert!(real.get(reserved).is_none(), "{m} returns Ansible's reserved key {reserved}");
    }
    let (applied, _) = snapshot(root, false);
    assert!(!differences(&snapshot(root, false).0, &start).is_empty());
    let (again, _) = run_env(m, &with(&case.args, root, json!({"backup_id": "c2"})), &env).unwrap();
    assert_eq!(again["changed"], false, "{m}: rerun changed: {again}");
    assert!(!root.join("var/lib/lltune/backups/c2").exists(), "{m}: a rerun without change made a bundle");
    assert_eq!(log.lines(), Vec::<String>::new(), "{m}: a rerun that changed nothing logged");
    let rb = rollback(root, "c1");
    assert_eq!(rb["changed"], true);
    let (after, temps) = snapshot(root, false);
    assert_same(&strip_backup_dirs(&start), &after, &format!("{m}: after rollback"));
    assert!(temps.is_empty(), "{m}: temp files left: {temps:?}");
    let journal: Value =
        serde_json::from_slice(&fs::read(root.join("var/lib/lltune/backups/c1/journal.json")).unwrap()).unwrap();
    let first_file = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "file")
        .map(|e| e["path"].as_str().unwrap().to_string());

    // 2b. The same run on a tree whose config files each begin with a line that is not UTF-8
    // (bytes 0xe9 0xe0, a backslash escape look-alike, CR, NUL): the line keeps its bytes, the
    // diff shows it escaped and never as U+FFFD, and rollback gives the tree back byte for byte.
    {
        let dir = (case.fixture)();
        let root = dir.path();
        let salted = salt(root);
        let (start, _) = snapshot(root, false);
        let (real, code) = run_module(m, &with(&case.args, root, json!({"_ansible_diff": true, "backup_id": "s"})));
        assert_eq!(code, 0, "{m} on salted files: {real}");
        assert!(!real.to_string().contains('\u{fffd}'), "{m}: U+FFFD in the result: {real}");
        for rel in &salted {
            let bytes = fs::read(root.join(rel)).unwrap();
            assert!(bytes.starts_with(SALT), "{m}: {rel} lost its first line's bytes");
        }
        for d in real["diff"].as_array().unwrap() {
            let path = d["after_header"].as_str().unwrap().split(' ').next().unwrap().trim_start_matches('/');
            if salted.iter().any(|s| s == path) {
                assert!(d["before"].as_str().unwrap().starts_with(SALT_SHOWN), "{m}: {path}: {d}");
            }
        }
        let (again, _) = run_module(m, &with(&case.args, root, json!({"backup_id": "s2"})));
        assert_eq!(again["changed"], false, "{m}: rerun on salted files changed: {again}");
        rollback(root, "s");
        assert_same(&strip_backup_dirs(&start), &snapshot(root, false).0, &format!("{m}: salted files after rollback"));
    }

    // 3. A failure at every mutation point reverts the run.
    let mut points = 0;
    for n in 1.. {
        let dir = (case.fixture)();
        let root = dir.path();
        let (v, code) =
            run_env(m, &with(&case.args, root, json!({"backup_id": "f"})), &[("LLTUNE_FAULT_FAIL_AT", n.to_string())])
                .expect("not killed");
        if v["failed"] == false {
            assert_eq!(code, 0);
            break;
        }
        points += 1;
        assert_eq!(code, 1);
        assert!(v["msg"].as_str().unwrap().contains("Input/output error"), "{m} fail at {n}: {v}");
        let (now, _) = snapshot(root, false);
        assert_same(&strip_backup_dirs(&start), &now, &format!("{m}: after a failure at mutation {n}: {}", v["msg"]));
        assert!(n < 1000, "{m}: no end to mutation points");
    }
    assert!(points >= 3, "{m}: only {points} mutation points");
    eprintln!("{m}: {points} mutation points, each failed once and reverted");

    // 4. A kill at every mutation point: each file old or new; rollback restores.
    for n in 1.. {
        let dir = (case.fixture)();
        let root = dir.path();
        let killed =
            run_env(m, &with(&case.args, root, json!({"backup_id": "k"})), &[("LLTUNE_FAULT_KILL_AT", n.to_string())]);
        let (now, _) = snapshot(root, false);
        for (path, node) in &now {
            let old = start.get(path);
            let new = applied.get(path);
            assert!(
                old == Some(node) || new == Some(node) || matches!(node, Node::Dir { .. }),
                "{m}: killed at mutation {n}: {path} is neither old nor new"
            );
        }
        if killed.is_some() {
            eprintln!("{m}: killed at each of {} mutation points, each file old or new, rollback restored", n - 1);
            break;
        }
        if !root.join("var/lib/lltune/backups/k/journal.json").exists() {
            // Killed before the journal named anything: a rerun with the same id finishes
            // the apply (clearing what the killed run left in the bundle), then roll back.
            let (v, code) = run_module(m, &with(&case.args, root, json!({"backup_id": "k"})));
            assert_eq!(code, 0, "{m}: rerun after a kill at mutation {n}: {v}");
        }
        rollback(root, "k");
        let (after, temps) = snapshot(root, false);
        assert_same(&strip_backup_dirs(&start), &after, &format!("{m}: rollback after a kill at mutation {n}"));
        // See: issue 17 (a kill mid-write left hidden temp files that nothing removed).
        assert!(temps.is_empty(), "{m}: killed at mutation {n}: rollback left temp files {temps:?}");
        let (_, bundle_temps) = snapshot(&root.join("var/lib/lltune/backups"), true);
        assert!(bundle_temps.is_empty(), "{m}: killed at mutation {n}: temp files left in the bundle {bundle_temps:?}");
        assert!(n < 1000);
    }

    // 5. Concurrent runs sharing a backup id: nothing lost, rollback restores everything.
    for round in 0..6 {
        let dir = (case.fixture)();
        let root = dir.path();
        let spawn = |args: &Value| {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("args.json");
            fs::write(&p, serde_json::to_vec(&with(args, root, json!({"backup_id": "cc"}))).unwrap()).unwrap();
            let child = Command::new(bin(m)).arg(&p).stdout(Stdio::piped()).spawn().unwrap();
            (d, child)
        };
        let (_d1, a) = spawn(&case.args);
        let (_d2, b) = spawn(&case.other);
        for c in [a, b] {
            let out = c.wait_with_output().unwrap();
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["failed"], false, "{m} concurrent round {round}: {v}");
        }
        rollback(root, "cc");
        assert_same(&strip_backup_dirs(&start), &snapshot(root, false).0, &format!("{m}: concurrent round {round}"));
    }

    // 6. The file it writes is a link leading out of root: refused, nothing written.
    if let Some(p) = first_file {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("target"), "outside\n").unwrap();
        let dir = (case.fixture)();
        let root = dir.path();
        let link = root.join(p.trim_start_matches('/'));
        let depth = p.matches('/').count() - 1;
        let _ = fs::remove_file(&link);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        let to = format!("{}../{}/target", "../".repeat(depth), outside.path().file_name().unwrap().to_string_lossy());
        symlink(&to, &link).unwrap();
        // The link really leads to the outside file, as the controller sees it.
        assert_eq!(fs::read_to_string(&link).unwrap(), "outside\n");
        let before = snapshot(root, true).0;
        let (v, code) = run_module(m, &with(&case.args, root, json!({"backup_id": "o"})));
        assert_eq!(code, 1, "{m}: a link out of root was followed: {v}");
        assert!(v["msg"].as_str().unwrap().contains("outside root"), "{m}: {v}");
        assert_eq!(fs::read_to_string(outside.path().join("target")).unwrap(), "outside\n");
        assert_same(&before, &snapshot(root, true).0, &format!("{m}: link out of root"));
    }
}

/// The line `salt` puts first in config files: not UTF-8, with CR, NUL and a literal `\xe9`.
const SALT: &[u8] = b"# lltune contract \xe9\xe0 \\xe9 \r\0\n";
/// How an escaped diff shows it (`engine::text`).
const SALT_SHOWN: &str = "# lltune contract \\xe9\\xe0 \\\\xe9 \\x0d\\x00\n";

/// Puts `SALT` first in every config file of the tree that takes `#` comments and that a
/// module edits or reads (fstab, GRUB defaults, BLS entries, sysctl.d, limits, irqbalance,
/// systemd drop-ins); returns their relative paths.
fn salt(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                if rel == "etc" || rel.starts_with("etc/") || rel.starts_with("boot") {
                    todo.push(p);
                }
                continue;
            }
            let config = rel == "etc/fstab"
                || rel == "etc/default/grub"
                || rel == "etc/sysconfig/irqbalance"
                || rel == "etc/default/irqbalance"
                || rel == "etc/security/limits.conf"
                || (rel.starts_with("boot/loader/entries/") && rel.ends_with(".conf"))
                || ((rel.starts_with("etc/sysctl.d/") || rel.starts_with("etc/security/limits.d/"))
                    && rel.ends_with(".conf"))
                || (rel.starts_with("etc/systemd/") && rel.ends_with(".conf"));
            if config && m.file_type().is_file() {
                let bytes = fs::read(&p).unwrap();
                fs::write(&p, [SALT, &bytes].concat()).unwrap();
                out.push(rel);
            }
        }
    }
    out
}

/// The start snapshot without lltune's folders that a run may add (`var/lib/lltune` is
/// left out of later snapshots; `var`/`var/lib` may be created on the way to it).
fn strip_backup_dirs(s: &BTreeMap<String, Node>) -> BTreeMap<String, Node> {
    s.iter()
        .filter(|(k, _)| !k.starts_with("var/lib/lltune") && *k != "var" && *k != "var/lib")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn contract_lltune_sysctl() {
    contract(&Case {
        module: "lltune_sysctl",
        fixture: || boot_fixture("rhel9-bls"),
        args: json!({"settings": {"net.core.busy_poll": 50, "vm.swappiness": 10}}),
        other: json!({"settings": {"net.ipv4.tcp_timestamps": 0}, "file": "/etc/sysctl.d/98-other.conf"}),
    });
}

#[test]
fn contract_lltune_kernel_args() {
    contract(&Case {
        module: "lltune_kernel_args",
        fixture: || boot_fixture("rhel9-bls"),
        args: json!({"args": {"nohz_full": "2-5", "isolcpus": "managed_irq,domain,2-5"}}),
        other: json!({"args": {"skew_tick": "1"}}),
    });
}

#[test]
fn contract_lltune_nic() {
    contract(&Case {
        module: "lltune_nic",
        fixture: || host_fixture("nic-2port"),
        args: json!({"interfaces": [{
            "name": "ens1f0",
            "features": {"gro": false, "tso": false},
            "coalesce": {"adaptive-rx": false, "rx-usecs": 0},
            "rings": {"rx": "max"},
            "channels": {"combined": 8},
            "rps_cpus": "2-5",
            "xps_cpus": "0-1",
        }]}),
        other: json!({"interfaces": [{"pci": "0000:3b:00.1", "pause": {"rx": false, "tx": false}, "rps_flow_cnt": 4096}]}),
    });
}

#[test]
fn contract_lltune_cpu() {
    contract(&Case {
        module: "lltune_cpu",
        fixture: || host_fixture("intel-pstate-2node"),
        args: json!({
            "governor": "performance",
            "cstates": {"max_latency_us": 10},
            "workqueue_cpumask": "0,4",
            "systemd_cpu_affinity": "0,4"
        }),
        other: json!({"turbo": false, "cpus": "1-2", "cstates": {"disable": ["C1"]}}),
    });
}

/// On a tree nothing is set on threads (root is not /): what changes is the persistence
/// (state file, unit, its link), which is what the harness checks.
#[test]
fn contract_lltune_threads() {
    contract(&Case {
        module: "lltune_threads",
        fixture: || {
            let d = host_fixture("el9-trading");
            crate::change_threads::add_proc(d.path());
            d
        },
        args: json!({"isolated_cpus": "2-3", "persist": true}),
        other: json!({"isolated_cpus": "3", "keep": ["app*"], "persist": true}),
    });
}

/// Both files of two stacks (a new folder, /etc/lltune, among them); `other` moves one.
#[test]
fn contract_lltune_bypass() {
    contract(&Case {
        module: "lltune_bypass",
        fixture: || host_fixture("el9-trading"),
        args: json!({"profiles": {
            "onload": {"tuning_level": "ultra_low_latency", "variables": {"EF_RXQ_SIZE": 2048}},
            "vma": {"tuning_level": "low_latency"},
        }}),
        other: json!({"profiles": {"xlio": {"tuning_level": "balanced", "path": "/etc/lltune/xlio.sh"}}}),
    });
}

/// chrony's drop-in on a tree; the second run names other servers (same file: the
/// concurrency check serialises the two on the root's lock).
#[test]
fn contract_lltune_timesync() {
    contract(&Case {
        module: "lltune_timesync",
        fixture: crate::change_timesync::chrony_host,
        args: json!({"provider": "chrony", "servers": [{"hostname": "ntp1.example.com", "iburst": true}],
            "refclock": {"phc": "ens1f0", "poll": 0}}),
        other: json!({"provider": "chrony", "servers": [{"hostname": "10.1.2.3"}]}),
    });
}

#[test]
fn contract_lltune_limits() {
    contract(&Case {
        module: "lltune_limits",
        fixture: || host_fixture("el9-trading"),
        args: json!({"limits": [
            {"domain": "@trading", "type": "-", "item": "memlock", "value": "unlimited"},
            {"domain": "@trading", "type": "-", "item": "nproc", "value": 65536},
            {"domain": "@trading", "type": "-", "item": "rtprio", "value": 99},
        ]}),
        other: json!({"limits": [{"domain": "*", "type": "soft", "item": "core", "value": 0}],
                      "file": "/etc/security/limits.d/98-other.conf"}),
    });
}

#[test]
fn contract_lltune_services() {
    contract(&Case {
        module: "lltune_services",
        fixture: || host_fixture("el9-trading"),
        args: json!({"services": {
            "irqbalance": {"state": "stopped", "enabled": false},
            "tuned": {"state": "stopped", "enabled": false, "masked": true},
        }}),
        other: json!({"services": {"chronyd": {"enabled": false}}}),
    });
}

#[test]
fn contract_lltune_memory() {
    contract(&Case {
        module: "lltune_memory",
        fixture: || host_fixture("intel-pstate-2node"),
        args: json!({
            "thp": {"enabled": "never"},
            "hugepages": {"2048": {"0": 512, "1": 256}},
            "swap": false,
            "numa_balancing": false
        }),
        other: json!({"ksm": false, "thp": {"defrag": "never"}}),
    });
}

/// Persistence (`persist: true`: a state file, the restore unit and its link) under the same
/// contract: a kill while those files are written leaves nothing that rollback keeps.
#[test]
fn memory_with_persist_keeps_the_contract() {
    contract(&Case {
        module: "lltune_memory",
        fixture: || host_fixture("intel-pstate-2node"),
        args: json!({"thp": {"enabled": "never"}, "persist": true}),
        other: json!({"swap": false}),
    });
}

// ---- The attacker cases that once got through ----

#[test]
fn sysctl_writes_through_the_distribution_link_and_rollback_keeps_it() {
    // Debian's /etc/sysctl.d/99-sysctl.conf -> ../sysctl.conf: once replaced by a 0777 file.
    let dir = boot_fixture("debian12");
    let root = dir.path();
    let real = root.join("etc/sysctl.conf");
    fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
    set_xattr(&real, "security.selinux", b"system_u:object_r:system_conf_t:s0\0");
    set_xattr(&real, "user.lltune_test", b"kept");
    let start = snapshot(root, false).0;
    let args = json!({"root": root, "settings": {"vm.swappiness": 10}, "file": "/etc/sysctl.d/99-sysctl.conf", "backup_id": "l"});
    let (v, code) = run_module("lltune_sysctl", &args);
    assert_eq!(code, 0, "{v}");
    let link = root.join("etc/sysctl.d/99-sysctl.conf");
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert!(fs::read_to_string(&real).unwrap().contains("vm.swappiness = 10"));
    let m = fs::metadata(&real).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o640);
    let x = xattrs(&real);
    assert_eq!(x["security.selinux"], b"system_u:object_r:system_conf_t:s0\0");
    assert_eq!(x["user.lltune_test"], b"kept");
    rollback(root, "l");
    assert_same(&start, &snapshot(root, false).0, "after rollback");
}

#[test]
fn setuid_setgid_bits_and_xattrs_survive_apply_and_rollback() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let f = root.join("etc/sysctl.d/99-latency-tuner.conf");
    fs::create_dir_all(f.parent().unwrap()).unwrap();
    fs::write(&f, "vm.swappiness = 60\n").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o6640)).unwrap();
    set_xattr(&f, "user.origin", b"package");
    let start = snapshot(root, false).0;
    let (v, code) = run_module(
        "lltune_sysctl",
        &json!({"root": root, "settings": {"vm.swappiness": 10}, "runtime": false, "backup_id": "s"}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o6640);
    assert_eq!(xattrs(&f)["user.origin"], b"package");
    // Rollback puts back the bytes with the same bits, even after someone changed them.
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    rollback(root, "s");
    assert_same(&start, &snapshot(root, false).0, "after rollback");
}

#[test]
fn links_inside_the_tree_never_lead_out_of_root() {
    let outside = tempfile::tempdir().unwrap();
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    // An absolute link resolves inside root, as in a chroot: /etc/sysctl.d -> /srv/sysctl.d.
    fs::remove_dir_all(root.join("etc/sysctl.d")).ok();
    symlink("/srv/sysctl.d", root.join("etc/sysctl.d")).unwrap();
    let (v, code) = run_module(
        "lltune_sysctl",
        &json!({"root": root, "settings": {"vm.swappiness": 10}, "runtime": false, "backup_id": "a"}),
    );
    assert_eq!(code, 0, "{v}");
    assert!(root.join("srv/sysctl.d/99-latency-tuner.conf").is_file());
    // A relative link that climbs out of the tree: refused, for the backups folder too.
    let up = format!("../../../../../../../../..{}", outside.path().display());
    fs::remove_dir_all(root.join("var/lib/lltune")).unwrap();
    symlink(&up, root.join("var/lib/lltune")).unwrap();
    let (v, code) = run_module(
        "lltune_sysctl",
        &json!({"root": root, "settings": {"vm.swappiness": 20}, "runtime": false, "backup_id": "b"}),
    );
    assert_eq!(code, 1, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("outside root"), "{v}");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "something was written outside root");
    // A /proc/sys file that is a link out of the tree.
    fs::remove_file(root.join("var/lib/lltune")).unwrap();
    let target = root.join("proc/sys/vm/swappiness");
    fs::write(outside.path().join("value"), "60\n").unwrap();
    fs::remove_file(&target).unwrap();
    symlink(format!("../../../../../../../../..{}/value", outside.path().display()), &target).unwrap();
    let (v, code) = run_module("lltune_sysctl", &json!({"root": root, "settings": {"vm.swappiness": 30}}));
    assert_eq!(code, 1, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("outside root"), "{v}");
    assert_eq!(fs::read_to_string(outside.path().join("value")).unwrap(), "60\n");
}

#[test]
fn an_edited_journal_cannot_reach_outside_root() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("victim"), "keep\n").unwrap();
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let bundle = root.join("var/lib/lltune/backups/evil");
    fs::create_dir_all(bundle.join("files")).unwrap();
    let victim = format!("/../../../../../../../..{}/victim", outside.path().display());
    let cases = [
        json!({"kind": "file", "path": victim, "module": "lltune_sysctl", "boot": false, "previous": null}),
        json!({"kind": "file", "path": "/etc/hostname", "module": "lltune_sysctl", "boot": false,
               "previous": {"blob": "files/../../../../../../../../../etc/hostname", "mode": 420, "uid": 0, "gid": 0}}),
        json!({"kind": "runtime", "path": "/proc/sys/../../etc/x", "module": "lltune_sysctl", "previous": "1"}),
        json!({"kind": "file", "path": "/etc/x", "module": "../evil", "boot": false, "previous": null}),
    ];
    for entry in cases {
        let journal = json!({"version": 1, "backup_id": "evil", "created": "20261130T000000Z", "entries": [entry]});
        fs::write(bundle.join("journal.json"), serde_json::to_vec(&journal).unwrap()).unwrap();
        let before = snapshot(root, true).0;
        let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "evil"}));
        assert_eq!(code, 1, "{entry}: {v}");
        assert!(v["msg"].as_str().unwrap().contains("refused"), "{v}");
        assert_same(&before, &snapshot(root, true).0, "an edited journal");
    }
    assert_eq!(fs::read_to_string(outside.path().join("victim")).unwrap(), "keep\n");
    for bad in ["../x", "/etc", "/var/lib/lltune/backups/../../../../etc"] {
        let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": bad}));
        assert_eq!(code, 1, "{bad}: {v}");
    }
}

#[test]
fn a_rollback_with_a_missing_copy_restores_the_rest_and_names_it() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let start = snapshot(root, false).0;
    let (v, code) =
        run_module("lltune_sysctl", &json!({"root": root, "settings": {"vm.swappiness": 10}, "backup_id": "m"}));
    assert_eq!(code, 0, "{v}");
    let (v, code) =
        run_module("lltune_kernel_args", &json!({"root": root, "args": {"nohz_full": "2-5"}, "backup_id": "m"}));
    assert_eq!(code, 0, "{v}");
    let files = root.join("var/lib/lltune/backups/m/files");
    let copies: Vec<_> = fs::read_dir(&files).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(copies.len() >= 2);
    fs::remove_file(&copies[0]).unwrap();
    let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "m"}));
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["not_restored"].as_array().unwrap().len(), 1, "{v}");
    let now = snapshot(root, false).0;
    let left = differences(&start, &now);
    assert_eq!(left.len(), 1, "only the file without a copy differs: {left:?}");
}

// See: issue 17 (a bundle copy that was a link was followed on rollback).
#[test]
fn links_inside_a_bundle_are_never_followed() {
    let setup = || {
        let dir = boot_fixture("rhel9-bls");
        let root = dir.path();
        fs::write(root.join("etc/secret"), "SECRET\n").unwrap();
        let (v, code) =
            run_module("lltune_sysctl", &json!({"root": root, "settings": {"vm.swappiness": 10}, "backup_id": "m"}));
        assert_eq!(code, 0, "{v}");
        let (v, code) =
            run_module("lltune_kernel_args", &json!({"root": root, "args": {"nohz_full": "2-5"}, "backup_id": "m"}));
        assert_eq!(code, 0, "{v}");
        dir
    };
    let secret_spread = |root: &Path| {
        snapshot(root, false)
            .0
            .iter()
            .filter(|(p, n)| {
                p.as_str() != "etc/secret"
                    && matches!(n, Node::File { bytes, .. } if bytes.windows(6).any(|w| w == b"SECRET"))
            })
            .map(|(p, _)| p.clone())
            .collect::<Vec<_>>()
    };
    // A copy that is a link (absolute, to a file inside the root): refused, the rest restored.
    let dir = setup();
    let root = dir.path();
    let files = root.join("var/lib/lltune/backups/m/files");
    let mut copies: Vec<_> = fs::read_dir(&files).unwrap().map(|e| e.unwrap().path()).collect();
    copies.sort();
    fs::remove_file(&copies[0]).unwrap();
    symlink("/etc/secret", &copies[0]).unwrap();
    let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "m"}));
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["not_restored"].as_array().unwrap().len(), 1, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("is a symbolic link; a bundle's files are never followed"), "{v}");
    assert_eq!(secret_spread(root), Vec::<String>::new(), "{v}");

    // The files/ folder is a link: no copy is read through it.
    let dir = setup();
    let root = dir.path();
    let files = root.join("var/lib/lltune/backups/m/files");
    fs::rename(&files, root.join("elsewhere")).unwrap();
    symlink("/elsewhere", &files).unwrap();
    let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "m"}));
    assert_eq!(code, 1, "{v}");
    assert!(v["not_restored"].as_array().unwrap().len() >= 2, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("/files is a symbolic link"), "{v}");
    // ... and a run appending to that bundle refuses to write through it.
    let (v, code) =
        run_module("lltune_sysctl", &json!({"root": root, "settings": {"vm.swappiness": 20}, "backup_id": "m"}));
    assert_eq!(code, 1, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("/files is a symbolic link"), "{v}");

    // The journal itself is a link: the bundle is refused whole, nothing changes.
    let dir = setup();
    let root = dir.path();
    let manifest = root.join("var/lib/lltune/backups/m/journal.json");
    fs::rename(&manifest, root.join("journal-copy.json")).unwrap();
    symlink("/journal-copy.json", &manifest).unwrap();
    let before = snapshot(root, false).0;
    let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "m"}));
    assert_eq!((code, v["changed"].as_bool()), (1, Some(false)), "{v}");
    assert!(v["msg"].as_str().unwrap().contains("journal.json is a symbolic link"), "{v}");
    assert_same(&before, &snapshot(root, false).0, "a refused bundle");
}

#[test]
fn non_regular_files_fail_fast_and_inputs_are_bounded() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    // A FIFO where a file is read: refused at once, check mode included (no hang).
    let fifo = root.join("etc/sysctl.d/99-latency-tuner.conf");
    fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    for check in [true, false] {
        let out = Command::new("timeout")
            .arg("20")
            .arg(bin("lltune_sysctl"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                let a = json!({"root": root, "settings": {"vm.swappiness": 10}, "_ansible_check_mode": check});
                c.stdin.take().unwrap().write_all(&serde_json::to_vec(&a).unwrap())?;
                c.wait_with_output()
            })
            .unwrap();
        assert_ne!(out.status.code(), Some(124), "the module hung on a FIFO");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["msg"].as_str().unwrap().contains("FIFO"), "{v}");
    }
    // An args file that is a device: refused, not read.
    let out = Command::new("timeout").arg("20").arg(bin("lltune_sysctl")).arg("/dev/zero").output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["msg"].as_str().unwrap().contains("not a regular file"), "{v}");
    // More than 1 MiB of arguments.
    let mut big = br#"{"settings": {"vm.swappiness": 10}, "x": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 1 << 20));
    big.extend(br#""}"#);
    let (v, code) = run_module_stdin("lltune_sysctl", &big);
    assert_eq!(code, 1);
    assert!(v["msg"].as_str().unwrap().contains("larger than 1048576 bytes"), "{v}");
    // Integers that do not fit 64 bits are refused, never rounded into floats.
    let (v, code) = run_module_stdin(
        "lltune_sysctl",
        format!(r#"{{"root": "{}", "settings": {{"kernel.shmmax": 18446744073709551616}}}}"#, root.display())
            .as_bytes(),
    );
    assert_eq!(code, 1);
    assert!(v["msg"].as_str().unwrap().contains("settings.kernel.shmmax"), "{v}");
    let (v, code) = run_module_stdin(
        "lltune_kernel_args",
        format!(r#"{{"root": "{}", "args": {{"hugepages": 1e40}}}}"#, root.display()).as_bytes(),
    );
    assert_eq!(code, 1);
    assert!(v["msg"].as_str().unwrap().contains("args.hugepages"), "{v}");
}

#[test]
fn a_leading_dash_is_systemd_sysctls_and_idempotent() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let args = json!({"root": root, "settings": {"-net.core.no_such_key": 1, "-vm.swappiness": 10}});
    let (v, code) = run_module("lltune_sysctl", &args);
    assert_eq!(code, 0, "{v}");
    assert!(v["warnings"][0].as_str().unwrap().contains("net.core.no_such_key"), "{v}");
    let text = fs::read_to_string(root.join("etc/sysctl.d/99-latency-tuner.conf")).unwrap();
    assert!(text.contains("-net.core.no_such_key = 1\n") && text.contains("-vm.swappiness = 10\n"), "{text}");
    assert_eq!(fs::read_to_string(root.join("proc/sys/vm/swappiness")).unwrap().trim(), "10");
    for _ in 0..2 {
        let (v, _) = run_module("lltune_sysctl", &args);
        assert_eq!(v["changed"], false, "{v}");
    }
    assert_eq!(fs::read_to_string(root.join("etc/sysctl.d/99-latency-tuner.conf")).unwrap(), text);
}

#[test]
fn a_second_run_waits_for_the_lock_then_fails_clearly() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    // Hold the root's lock as another lltune run would.
    let held = fs::File::open(root).unwrap();
    nix::fcntl::Flock::lock(held, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map(|guard| {
            let before = snapshot(root, true).0;
            let out = run_env(
                "lltune_sysctl",
                &json!({"root": root, "settings": {"vm.swappiness": 10}}),
                &[("LLTUNE_LOCK_TIMEOUT_S", "0.3".into())],
            )
            .unwrap();
            assert_eq!(out.1, 1);
            assert!(out.0["msg"].as_str().unwrap().contains("another lltune run is changing root"), "{}", out.0);
            assert_same(&before, &snapshot(root, true).0, "a run that waited for the lock");
            drop(guard);
        })
        .unwrap();
}

#[test]
fn every_echo_of_input_is_capped() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let long = "k".repeat(200_000);
    for args in [
        json!({"root": root, "settings": {"vm.swappiness": 1}, long.clone(): 1}),
        json!({"root": root, "settings": {"vm.swappiness": 1}, "runtime": long.clone()}),
        json!({"root": root, "settings": {long.clone(): 1}}),
        json!({"root": root, "settings": {"vm.swappiness": 1}, "file": long.clone()}),
        json!({"root": root, "settings": {"vm.swappiness": 1}, "backup_id": long.clone()}),
        json!({"root": root, "settings": {"vm.swappiness": long.clone()}}),
    ] {
        let (v, code) = run_module("lltune_sysctl", &args);
        assert_eq!(code, 1, "{}", &v.to_string()[..300]);
        let out = v.to_string();
        assert!(out.len() < 2048, "{} bytes: {}", out.len(), &out[..300]);
    }
    let (v, _) = run_module("lltune_rollback", &json!({"root": root, "backup": long}));
    assert!(v.to_string().len() < 2048);
}

#[test]
fn contract_lltune_irq() {
    contract(&Case {
        module: "lltune_irq",
        fixture: || crate::support::host_fixture("irq-small"),
        args: json!({
            "rules": [
                {"match": {"all": true}, "cpus": "0-1"},
                {"match": {"nic": "eth0"}, "cpus": "2-3", "spread": true},
            ],
            "default_affinity": "0-3",
            "irqbalance_banned_cpus": "4-7",
        }),
        other: json!({"rules": [{"match": {"name": "nvme0q0"}, "cpus": "3"}], "default_affinity": "0-1"}),
    });
}

/// Ansible passes the args file's path; a temporary folder may have any bytes in its name.
/// A path that is not UTF-8 is read like any other (std's `args()` would have panicked on it).
#[test]
fn args_file_at_a_path_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(std::ffi::OsStr::from_bytes(b"args-\xff\xfe.json"));
    let root = host_fixture("debian12-vm");
    fs::write(&p, serde_json::to_vec(&json!({"ANSIBLE_MODULE_ARGS": {"root": root.path()}})).unwrap()).unwrap();
    let out = Command::new(bin("lltune_facts")).arg(&p).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((out.status.code(), &v["failed"]), (Some(0), &json!(false)), "{v}");
    assert_eq!(v["ansible_facts"]["lltune"]["host"]["hostname"], "vm", "{v}");
    // A missing one is named, its bytes shown escaped.
    let gone = dir.path().join(std::ffi::OsStr::from_bytes(b"gone-\xff.json"));
    let out = Command::new(bin("lltune_facts")).arg(&gone).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(v["msg"].as_str().unwrap().contains("cannot read module arguments from"), "{v}");
    assert!(v["msg"].as_str().unwrap().contains("gone-"), "{v}");
}

// See: issue 17 (a run killed before its journal existed left temp files in its bundle).
#[test]
fn rollback_of_a_bundle_without_journal_clears_its_temp_files_and_says_so() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let bundle = root.join("var/lib/lltune/backups/k");
    fs::create_dir_all(bundle.join("files")).unwrap();
    // Pids above the kernel's pid_max limit (4194304) cannot be running.
    fs::write(bundle.join(".journal.json.lltune-4194400-ff-0"), "{").unwrap();
    fs::write(bundle.join("files/.000-etc_fstab.lltune-4194401-1a-1"), "x").unwrap();
    fs::write(bundle.join("files/notes.txt"), "someone else's").unwrap();
    let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "k"}));
    assert_eq!(code, 1, "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.contains("no /var/lib/lltune/backups/k/journal.json"), "{msg}");
    assert!(msg.contains("removed 2 temp file(s) that an interrupted lltune run left behind"), "{msg}");
    let (_, temps) = snapshot(&bundle, true);
    assert!(temps.is_empty(), "{temps:?}");
    assert!(bundle.join("files/notes.txt").exists());
}

// See: issue 17 (result fields echoed megabytes of host text: conflicts, IRQ names).
#[test]
fn result_fields_that_echo_host_text_are_capped() {
    let long = "x".repeat(1 << 20);
    // An IRQ whose /proc/interrupts name is half a MiB long (lines up to 1 MiB are read).
    let half = "x".repeat(1 << 19);
    let dir = host_fixture("irq-small");
    let root = dir.path();
    let table = fs::read_to_string(root.join("proc/interrupts")).unwrap();
    fs::write(root.join("proc/interrupts"), table.replacen("eth0-TxRx-0", &format!("eth0-TxRx-0{half}"), 1)).unwrap();
    let (v, code) =
        run_module("lltune_irq", &json!({"root": root, "rules": [{"match": {"all": true}, "cpus": "0-1"}]}));
    assert_eq!(code, 0, "{}", &v.to_string()[..300.min(v.to_string().len())]);
    let out = v.to_string();
    assert!(out.len() < 64 << 10, "{} bytes", out.len());
    assert!(out.contains(&format!("eth0-TxRx-0{}... ({} characters)", "x".repeat(189), half.len() + 11)), "{out}");

    // A limits.d line that overrides ours, with a 1 MiB domain and value.
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    fs::write(
        root.join("etc/security/limits.d/99-zz-vendor.conf"),
        format!("@trading hard nofile 65536{long}\n{long} hard nofile 1\n"),
    )
    .unwrap();
    let (v, code) = run_module(
        "lltune_limits",
        &json!({"root": root, "limits": [{"domain": "@trading", "type": "-", "item": "nofile", "value": 1048576}]}),
    );
    let out = v.to_string();
    assert!(out.len() < 64 << 10, "exit {code}, {} bytes: {}", out.len(), &out[..2000.min(out.len())]);
    assert!(out.contains("characters)"), "{out}");

    // A sysctl.d file after ours that sets the key to a 1 MiB value.
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    fs::write(root.join("etc/sysctl.d/99-zz-late.conf"), format!("vm.swappiness = 1{long}\n")).unwrap();
    let (v, _) = run_module("lltune_sysctl", &json!({"root": root, "settings": {"vm.swappiness": 10}}));
    let out = v.to_string();
    assert!(out.len() < 64 << 10, "{} bytes: {}", out.len(), &out[..2000.min(out.len())]);
    assert!(out.contains("characters)"), "{out}");
}

/// The attacker's case of issue 17: a refused argument riding inside another's value, in a
/// check run and a real run, with and without consent. The module fails naming the argument,
/// `changed: false`, and the tree (backups folder included) is as it was.
#[test]
fn an_argument_hidden_in_a_value_is_refused_in_every_mode() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let start = snapshot(root, true).0;
    for (k, v) in
        [("skew_tick", "1 rd.break x"), ("skew_tick", "1 init=/bin/sh"), ("dyndbg", "+p module_blacklist=nvme")]
    {
        for check in [true, false] {
            for consent in [false, true] {
                let args = json!({"root": root, "args": {k: v}, "_ansible_check_mode": check,
                                  "allow_dangerous_mitigations": consent, "_ansible_diff": true});
                let (out, code) = run_module("lltune_kernel_args", &args);
                assert_eq!((code, &out["failed"], &out["changed"]), (1, &json!(true), &json!(false)), "{out}");
                assert!(out["msg"].as_str().unwrap().starts_with(&format!("option args: {k}: ")), "{out}");
                assert!(out.get("diff").is_none_or(|d| d.as_array().is_some_and(Vec::is_empty)), "{out}");
            }
        }
    }
    assert_same(&start, &snapshot(root, true).0, "refused runs");
}

/// lltune_health changes nothing, so its contract is the read side: check mode and a real run
/// answer the same and write nothing (no journal, no lock file, no temp file); the kernel
/// files it reads for arguments' effects resolve inside `root` (a link to a file outside,
/// absolute or by `..`, is not read through); a FIFO where a kernel file is expected fails
/// at once; an unknown option is refused by name.
#[test]
fn contract_lltune_health_reads_inside_root_and_writes_nothing() {
    let dir = host_fixture("debian12-vm");
    let root = dir.path();
    let cmdline = fs::read_to_string(root.join("proc/cmdline")).unwrap();
    fs::write(root.join("proc/cmdline"), format!("isolcpus=1 nowatchdog hugepagesz=1G hugepages=1 {cmdline}")).unwrap();
    let isolated = root.join("sys/devices/system/cpu/isolated");
    fs::write(&isolated, "1\n").unwrap();
    fs::write(root.join("proc/sys/kernel/watchdog"), "0\n").unwrap();
    fs::write(root.join("sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"), "1\n").unwrap();
    let args = json!({"root": root, "require_running": true,
                      "kernel_args": {"isolcpus": "1", "nowatchdog": "", "hugepagesz": "1G", "hugepages": 1}});
    let (start, _) = snapshot(root, true);
    let (real, code) = run_module("lltune_health", &args);
    assert_eq!(code, 0, "{real}");
    assert_eq!((real["changed"].clone(), real["failed"].clone()), (json!(false), json!(false)), "{real}");
    assert_eq!(real["effects_missing"], json!([]), "{real}");
    let (check, _) =
        run_module("lltune_health", &with(&args, root, json!({"_ansible_check_mode": true, "_ansible_diff": true})));
    assert_eq!(check, real, "check mode answers otherwise");
    for reserved in ["skipped", "rc", "invocation", "ansible_facts", "exception", "results"] {
        assert!(real.get(reserved).is_none(), "lltune_health returns Ansible's reserved key {reserved}");
    }
    assert!(real.as_object().unwrap().keys().all(|k| !k.starts_with("_ansible")), "{real}");
    assert_same(&start, &snapshot(root, true).0, "lltune_health wrote");

    // A link out of root where `isolated` is, to a file that says what the gate wants.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("isolated"), "1\n").unwrap();
    let depth = root.join("sys/devices/system/cpu").components().count();
    // An absolute link resolves as in a chroot (nothing there: no isolated CPUs); one that
    // climbs out by `..` is refused.
    let absolute = outside.path().join("isolated");
    let climbing = PathBuf::from(format!("{}{}", "../".repeat(depth), absolute.display()));
    for (to, says) in [
        (absolute, "isolcpus=1 is on the command line but the kernel reports no isolated CPUs"),
        (climbing, "isolcpus=1: /sys/devices/system/cpu/isolated: resolves outside root"),
    ] {
        fs::remove_file(&isolated).unwrap();
        symlink(&to, &isolated).unwrap();
        assert_eq!(fs::read_to_string(&isolated).unwrap(), "1\n", "the link reaches the outside file");
        let (v, code) = run_module("lltune_health", &args);
        assert_eq!(code, 1, "{} was read through: {v}", to.display());
        let lines = v["effects_missing"].as_array().unwrap();
        assert_eq!(lines.len(), 1, "{v}");
        assert!(lines[0].as_str().unwrap().starts_with(says), "{}: {v}", to.display());
    }

    // A FIFO where a kernel file is read: an answer at once, naming it.
    fs::remove_file(&isolated).unwrap();
    nix::unistd::mkfifo(&isolated, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let out = Command::new("timeout")
        .arg("20")
        .arg(bin("lltune_health"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&serde_json::to_vec(&args).unwrap())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_ne!(out.status.code(), Some(124), "lltune_health hung on a FIFO");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{v}");
    let line = v["effects_missing"][0].as_str().unwrap();
    assert!(line.starts_with("isolcpus=1: ") && line.contains("/sys/devices/system/cpu/isolated"), "{v}");

    let (v, code) = run_module("lltune_health", &with(&args, root, json!({"kernel_argz": {}})));
    assert_eq!(code, 1);
    assert!(v["msg"].as_str().unwrap().contains("kernel_argz"), "{v}");
}

/// Every module binary, changing or not, takes the protocol's `option_names`: a bad root fails
/// in the caller's name (`lltune_root: ...`, as the roles pass it), and a malformed mapping
/// fails naming option_names.
#[test]
fn every_module_speaks_the_callers_names() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
    let mut modules: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_string))
        .filter(|n| n.starts_with("lltune_"))
        .collect();
    modules.sort();
    assert!(modules.len() >= 15, "{modules:?}");
    let missing = tempfile::tempdir().unwrap().path().join("gone");
    for m in &modules {
        let (v, code) = run_module(
            m,
            &json!({"root": missing, "option_names": {"root": "lltune_root", "detail": "lltune_detail"}}),
        );
        let msg = v["msg"].as_str().unwrap_or_default();
        assert_eq!(code, 1, "{m}: {v}");
        assert_eq!(msg, format!("lltune_root: {}: no such file or directory", missing.display()), "{m}");
        let (v, code) = run_module(m, &json!({"root": missing, "option_names": {"root": 7}}));
        assert_eq!(code, 1, "{m}: {v}");
        assert_eq!(v["msg"], json!("option option_names.root: expected text, got a number"), "{m}");
    }
}
