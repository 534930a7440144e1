//! The audit trail: every run that changes a host sends what it changed to syslog, and a run
//! that fails what it put back. The module binaries and the CLI run for real on fixture trees;
//! the one fake is the syslog daemon: a unix datagram socket this test binds and names in
//! `LLTUNE_SYSLOG_SOCKET` (this machine has no journald; on a host, the same datagrams go to
//! /dev/log, where journald or rsyslog reads them).

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{self, boot_fixture};

/// A syslog socket the test owns.
pub struct Syslog {
    dir: tempfile::TempDir,
    sock: UnixDatagram,
}

impl Syslog {
    pub fn new() -> Syslog {
        let dir = tempfile::tempdir().unwrap();
        let sock = UnixDatagram::bind(dir.path().join("log")).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        Syslog { dir, sock }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("log")
    }

    /// Every datagram received so far (the sender has exited: none is still on its way).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = self.sock.recv(&mut buf) {
            out.push(String::from_utf8(buf[..n].to_vec()).expect("a UTF-8 datagram"));
        }
        out
    }
}

/// Runs a module binary as Ansible does (args file as argv[1]), with a user environment as
/// `sudo` leaves it.
fn run(module: &str, args: &Value, log: &Syslog) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("args.json");
    fs::write(&path, args.to_string()).unwrap();
    let out = Command::new(support::bin(module))
        .arg(&path)
        .env("LLTUNE_SYSLOG_SOCKET", log.path())
        .env("USER", "root")
        .env("SUDO_USER", "alice")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(v["failed"], false, "{v}");
    v
}

/// The message of an RFC 3164 datagram `<PRI>Mmm dd hh:mm:ss ident[pid]: message`, checked.
fn message<'a>(d: &'a str, pri: u32, ident: &str) -> &'a str {
    let re =
        regex::Regex::new(r"^<(\d+)>[A-Z][a-z]{2} [ 1-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] ([a-z_]+)\[[0-9]+\]: ")
            .unwrap();
    let c = re.captures(d).unwrap_or_else(|| panic!("not an RFC 3164 datagram: {d:?}"));
    assert_eq!(c[1].parse::<u32>().unwrap(), pri, "{d}");
    assert_eq!(&c[2], ident, "{d}");
    &d[c.get(0).unwrap().end()..]
}

/// A run of `module` that changed the host, with `diffs` entries in its diff, sent a
/// `changed` line with its backup id, then one `set` line per diff entry.
pub fn assert_trail(module: &str, lines: &[String], id: &str, diffs: usize) {
    let msgs: Vec<&str> = lines.iter().map(|d| message(d, 14, module)).collect();
    assert_eq!(msgs.len(), diffs + 1, "{module}: {msgs:#?}");
    let backup = format!("backup=\"{id}\"");
    assert!(msgs[0].starts_with("changed ") && msgs[0].contains(&backup), "{module}: {}", msgs[0]);
    assert!(msgs[0].contains(" args=\"{"), "{module}: no invocation: {}", msgs[0]);
    for m in &msgs[1..] {
        assert!(m.starts_with("set ") && m.contains(&backup) && m.contains(" item=\""), "{module}: {m}");
        assert!(m.contains(" before=\"") && m.contains(" after=\""), "{module}: {m}");
    }
}

fn settings(root: &Path) -> Value {
    json!({
        "root": root,
        "settings": {"vm.swappiness": "7", "kernel.numa_balancing": "0"},
        "backup_id": "20261207T042001Z-4242",
        "_ansible_syslog_facility": "LOG_LOCAL3",
        "_ansible_diff": true,
    })
}

#[test]
fn a_change_is_logged_with_who_what_and_each_setting_before_and_after() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let before = fs::read_to_string(root.join("proc/sys/vm/swappiness")).unwrap();
    let log = Syslog::new();
    let v = run("lltune_sysctl", &settings(root), &log);
    assert_eq!(v["changed"], true, "{v}");
    let lines = log.lines();
    // LOG_LOCAL3 (19) * 8 + info (6); the identifier is the module.
    let msgs: Vec<&str> = lines.iter().map(|d| message(d, 19 * 8 + 6, "lltune_sysctl")).collect();
    let id = "backup=\"20261207T042001Z-4242\"";
    let head = msgs[0];
    assert!(head.starts_with("changed "), "{head}");
    for part in [id, "user=\"root\"", "sudo_user=\"alice\"", r#"\"vm.swappiness\":\"7\""#] {
        assert!(head.contains(part), "{part} missing: {head}");
    }
    // One line per file or setting group the diff names, with only the lines that change.
    let runtime = msgs.iter().find(|m| m.contains("item=\"runtime (/proc/sys)\"")).expect("a runtime line");
    assert!(runtime.starts_with("set ") && runtime.contains(id), "{runtime}");
    assert!(
        runtime.contains(&format!("before=\"kernel.numa_balancing = 1\\nvm.swappiness = {}\"", before.trim())),
        "{runtime}"
    );
    assert!(runtime.contains("after=\"kernel.numa_balancing = 0\\nvm.swappiness = 7\""), "{runtime}");
    let file = msgs.iter().find(|m| m.contains("item=\"/etc/sysctl.d/99-latency-tuner.conf\"")).expect("a file line");
    assert!(file.contains("before=\"\"") && file.contains("vm.swappiness = 7"), "{file}");
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    // Every datagram is one line.
    assert!(lines.iter().all(|d| !d.contains('\n')), "{lines:#?}");

    // The same again changes nothing and logs nothing.
    let v = run("lltune_sysctl", &settings(root), &log);
    assert_eq!(v["changed"], false, "{v}");
    assert_eq!(log.lines(), Vec::<String>::new());
}

#[test]
fn check_mode_logs_nothing_and_no_log_hides_every_value() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let log = Syslog::new();
    let mut args = settings(root);
    args["_ansible_check_mode"] = json!(true);
    let v = run("lltune_sysctl", &args, &log);
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(log.lines(), Vec::<String>::new(), "check mode logged");

    let mut args = settings(root);
    args["_ansible_no_log"] = json!(true);
    args["settings"]["vm.swappiness"] = json!("31337");
    let v = run("lltune_sysctl", &args, &log);
    assert_eq!(v["changed"], true, "{v}");
    let lines = log.lines();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for d in &lines {
        assert!(!d.contains("31337") && !d.contains("swappiness ="), "a value was logged: {d}");
        assert!(d.contains("(hidden: no_log)") && d.contains("backup=\"20261207T042001Z-4242\""), "{d}");
    }
}

/// `lltune -v apply` shows on stderr the lines syslog gets, and a run on a tree sends them
/// to the socket only because the test names it.
#[test]
fn lltune_verbose_shows_the_syslog_lines_on_stderr() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let config = root.join("config.yml");
    fs::write(&config, "version: 1\nmemory:\n  swappiness: 9\n").unwrap();
    let log = Syslog::new();
    let apply = |verbose: bool| -> Output {
        let mut cmd = Command::new(support::bin("lltune"));
        if verbose {
            cmd.arg("-v");
        }
        cmd.arg("apply").arg("--config").arg(&config).arg("--root").arg(root);
        cmd.env("LLTUNE_SYSLOG_SOCKET", log.path()).output().unwrap()
    };
    let out = apply(true);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let shown: Vec<&str> = stderr.lines().filter(|l| l.starts_with("lltune_sysctl: ")).collect();
    let sent: Vec<String> =
        log.lines().iter().map(|d| format!("lltune_sysctl: {}", message(d, 14, "lltune_sysctl"))).collect();
    assert!(!sent.is_empty(), "{stderr}");
    assert_eq!(shown, sent, "stderr and syslog differ");
    // The CLI's invocation is its command line.
    assert!(sent[0].contains("args=\"") && sent[0].contains(" apply --config "), "{}", sent[0]);
    assert!(sent.iter().any(|l| l.contains("vm.swappiness = 9")), "{sent:#?}");

    // Without -v, stderr stays quiet; the rerun changes nothing and logs nothing.
    let out = apply(false);
    assert!(out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("lltune_sysctl: "), "{out:?}");
    assert_eq!(log.lines(), Vec::<String>::new());
}

/// Each datagram as (identifier, message), checked as `message` checks it (LOG_USER, info).
fn sent(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|d| {
            let head = d.split_once("]: ").unwrap_or_else(|| panic!("no identifier: {d:?}")).0;
            let ident = head.rsplit(' ').next().unwrap().split('[').next().unwrap();
            (ident.to_string(), message(d, 14, ident).to_string())
        })
        .collect()
}

/// A failed `lltune apply` puts back what it wrote (the failing step its own writes, the
/// transaction every earlier step's), and the trail says so: a `reverted` line for each step
/// put back, from that step's module, with the backup id, the paths and the cause. The fault
/// (the host layer's EIO at the n-th mutation) is tried at every mutation of the run.
#[test]
fn a_failed_apply_logs_what_it_reverted() {
    let id = "20261207T042001Z-4242";
    let backup = format!("backup=\"{id}\"");
    let (mut own, mut earlier, mut n) = (0, 0, 0);
    loop {
        n += 1;
        assert!(n < 200, "the apply never succeeded");
        let dir = boot_fixture("rhel9-bls");
        let root = dir.path();
        let config = root.join("config.yml");
        fs::write(&config, "version: 1\nmemory:\n  swappiness: 9\n  limits:\n    nofile: \"1048576\"\n").unwrap();
        let log = Syslog::new();
        let out = Command::new(support::bin("lltune"))
            .args(["apply", "--backup-id", id, "--config"])
            .arg(&config)
            .arg("--root")
            .arg(root)
            .env("LLTUNE_SYSLOG_SOCKET", log.path())
            .env("LLTUNE_FAULT_FAIL_AT", n.to_string())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let lines = sent(&log.lines());
        let reverted: Vec<&(String, String)> = lines.iter().filter(|(_, m)| m.starts_with("reverted ")).collect();
        if out.status.success() {
            assert!(reverted.is_empty(), "{lines:#?}");
            break;
        }
        for (module, m) in &reverted {
            assert!(m.contains(&backup) && m.contains(" items=\"/"), "{module}: {m}");
            assert!(m.contains(" cause=\"") && m.contains("Input/output error"), "{module}: {m}");
        }
        // The failing step's own writes put back (every run, so `lltune reapply` too).
        if let Some((step, _)) = err.split_once(": writing").filter(|_| err.contains("reverted this run's changes to"))
        {
            let step = step.rsplit(' ').next().unwrap();
            assert!(reverted.iter().any(|(m, _)| m == step), "fault at {n}: {err}\n{lines:#?}");
            own += 1;
        }
        // The earlier step, put back by the transaction, after its own `changed` line.
        if err.contains("reverted the earlier steps of this run (lltune_sysctl)") {
            let last = reverted.last().expect("a reverted line");
            assert_eq!(last.0, "lltune_sysctl", "fault at {n}: {lines:#?}");
            for path in ["/etc/sysctl.d/99-latency-tuner.conf", "/proc/sys/vm/swappiness"] {
                assert!(last.1.contains(path), "fault at {n}: {}", last.1);
            }
            assert!(last.1.contains("cause=\"lltune_limits: "), "fault at {n}: {}", last.1);
            assert!(lines.iter().any(|(m, l)| m == "lltune_sysctl" && l.starts_with("changed ")), "{lines:#?}");
            earlier += 1;
        }
        // Nothing put back (the journal failed before any write): nothing logged as reverted.
        if !err.contains("reverted") {
            assert!(reverted.is_empty(), "fault at {n}: {err}\n{lines:#?}");
        }
    }
    assert!(own >= 2 && earlier >= 2, "own reverts {own}, earlier-step reverts {earlier}, over {n} faults");
}

/// `lltune install-cli` writes one file, as a module would: a `changed` line (from `lltune`,
/// the CLI) and a `set` line for the file, with the backup id. Installed already: nothing.
#[test]
fn install_cli_is_logged() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let log = Syslog::new();
    // A stripped copy of the test build (its debug info is past the 64 MiB a write takes), as
    // tests/persist.rs installs it.
    let bin = tempfile::tempdir().unwrap();
    let me = bin.path().join("lltune");
    assert!(Command::new("strip").arg("-o").arg(&me).arg(support::bin("lltune")).status().unwrap().success());
    let install = || {
        let out = Command::new(&me)
            .args(["install-cli", "--backup-id", "20261207T042001Z-4242", "--root"])
            .arg(root)
            .env("LLTUNE_SYSLOG_SOCKET", log.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(install().starts_with("installed "));
    let lines = sent(&log.lines());
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let backup = "backup=\"20261207T042001Z-4242\"";
    assert!(lines.iter().all(|(m, _)| m == "lltune"), "{lines:#?}");
    assert!(lines[0].1.starts_with("changed ") && lines[0].1.contains(backup), "{}", lines[0].1);
    assert!(lines[0].1.contains(" install-cli --backup-id "), "no invocation: {}", lines[0].1);
    let set = &lines[1].1;
    let item = format!("item=\"{}\"", lltune::engine::persist::CLI_PATH);
    assert!(set.starts_with("set ") && set.contains(backup) && set.contains(&item), "{set}");
    assert!(set.contains("after=\"(this lltune, "), "{set}");

    assert!(install().contains("already this binary"));
    assert_eq!(log.lines(), Vec::<String>::new());
}
