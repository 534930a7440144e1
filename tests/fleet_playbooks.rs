//! The collection's playbooks (lltune.tuning.facts/audit/tune/rollback/report) run by a real
//! ansible-playbook on a 3-host simulated rack: each host a copy of a real dump with boot and
//! /etc files added (tests/fixtures/make-rack.sh), `ansible_connection: local`, its
//! `lltune_root` the copy. The hosts are folders because this machine is one host; every
//! module, role and playbook is the shipped one.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{self, Node, Run, assert_same_tree, play_recap, run_ansible, tree_snapshot};

const HOSTS: [&str; 3] = ["host001", "host002", "host003"];

struct Rack {
    dir: tempfile::TempDir,
    sandbox: tempfile::TempDir,
}

impl Rack {
    fn new(count: usize) -> Rack {
        let dir = tempfile::tempdir().unwrap();
        // The dumps unpacked once per test build (support::real_fixture), shared by the racks.
        let dumps = support::real_fixture("cnto-r640-rt-worker1").parent().unwrap().to_path_buf();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make-rack.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(dir.path())
            .arg(count.to_string())
            .arg(support::bin("lltune"))
            .env("DUMPS", &dumps)
            .output()
            .unwrap();
        assert!(out.status.success(), "make-rack.sh: {}", String::from_utf8_lossy(&out.stderr));
        Rack { dir, sandbox: tempfile::tempdir().unwrap() }
    }

    fn root(&self, host: &str) -> PathBuf {
        self.dir.path().join("hosts").join(host)
    }

    fn inventory(&self) -> PathBuf {
        self.dir.path().join("inventory")
    }

    fn snapshot(&self) -> BTreeMap<String, BTreeMap<String, Node>> {
        HOSTS.iter().map(|h| (h.to_string(), tree_snapshot(&self.root(h)))).collect()
    }

    /// `ansible-playbook -i <rack> lltune.tuning.<playbook> <flags>`.
    fn play(&self, playbook: &str, flags: &[&str]) -> Run {
        let inv = self.inventory();
        let mut args = vec!["-i", inv.to_str().unwrap()];
        args.extend_from_slice(flags);
        let name = format!("lltune.tuning.{playbook}");
        args.push(&name);
        run_ansible(&support::ansible().playbook, self.sandbox.path(), &args, None)
    }
}

fn assert_same_rack(
    before: &BTreeMap<String, BTreeMap<String, Node>>,
    after: &BTreeMap<String, BTreeMap<String, Node>>,
    what: &str,
) {
    for (host, tree) in before {
        assert_same_tree(tree, &after[host], &format!("{what}: {host}"));
    }
}

/// lltune_irq's notice on a host tree without debugfs, which the rack's dumps lack: its NIC IRQ
/// pins (by PCI address on the R640 and R740xd dumps) are planned without knowing which IRQs are
/// managed.
const NO_DEBUGFS: &str = "/sys/kernel/debug/irq/irqs is not there: managed IRQs (which the kernel refuses to move) cannot be recognised in this tree";

/// The play's warnings but the debugfs notice of the rack's trees.
fn warnings(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("[WARNING]") && !l.contains(NO_DEBUGFS)).collect()
}

/// The play succeeded on every host, printed no warning (but the debugfs notice of the rack's
/// trees), and changed `changed` tasks on each.
fn assert_play(r: &Run, changed: Option<u64>) -> BTreeMap<String, BTreeMap<String, u64>> {
    assert_eq!(r.code, 0, "{}", r.show());
    assert!(warnings(&r.stdout).is_empty() && warnings(&r.stderr).is_empty(), "{}", r.show());
    let mut recaps = BTreeMap::new();
    for h in HOSTS {
        let recap = play_recap(&r.stdout, h);
        assert_eq!(recap["failed"], 0, "{h}: {}", r.show());
        if let Some(c) = changed {
            assert_eq!(recap["changed"], c, "{h}: {}", r.show());
        }
        recaps.insert(h.to_string(), recap);
    }
    recaps
}

fn backups(root: &Path) -> Vec<String> {
    let dir = root.join("var/lib/lltune/backups");
    let mut v: Vec<String> = fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn file(root: &Path, path: &str) -> String {
    fs::read_to_string(root.join(path.trim_start_matches('/'))).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn tune_previews_applies_is_idempotent_and_rolls_back_across_the_rack() {
    let rack = Rack::new(HOSTS.len());
    let start = rack.snapshot();

    // Scan and audit: nothing changes.
    assert_play(&rack.play("facts", &[]), Some(0));
    let r = rack.play("facts", &["-e", "lltune_show_summary=false"]);
    for (h, recap) in assert_play(&r, Some(0)) {
        // The summary is one task for the play (on the first host), skipped here; no host
        // runs a task of the role beyond its scan (which checks the role's variables).
        let skipped = if h == HOSTS[0] { 1 } else { 0 };
        assert_eq!(recap["skipped"], skipped, "{h}: the summary was not skipped:\n{}", r.show());
    }
    assert!(!r.stdout.contains("\"schema_version\""), "a summary was shown:\n{}", r.show());
    let r = rack.play("audit", &[]);
    assert_play(&r, Some(0));
    assert!(r.stdout.contains("lltune_kernel_args"), "{}", r.show());

    // The fleet report on the controller: check mode writes nothing, then the five files,
    // then a rerun writes a new report (new scans: each host's facts time moved).
    let report = rack.dir.path().join("report");
    let dir_var = format!("lltune_report_dir={}", report.display());
    assert_play(&rack.play("report", &["--check", "--diff", "-e", &dir_var]), None);
    assert!(!report.exists(), "the report playbook wrote in check mode");
    let r = rack.play("report", &["-e", &dir_var]);
    assert_eq!(play_recap(&r.stdout, "host001")["changed"], 1, "{}", r.show());
    assert_play(&r, None);
    let fleet: Value = serde_json::from_str(&fs::read_to_string(report.join("fleet.json")).unwrap()).unwrap();
    let names: Vec<&str> = fleet["hosts"].as_array().unwrap().iter().map(|h| h["host"].as_str().unwrap()).collect();
    assert_eq!(names, HOSTS, "{fleet}");
    for f in ["fleet.csv", "fleet.md", "lltune.prom", "fleet.html"] {
        assert!(fs::read_to_string(report.join(f)).unwrap().contains("host003"), "{f}");
    }
    let first = fs::read_to_string(report.join("lltune.prom")).unwrap();
    let r = rack.play("report", &["-e", &dir_var]);
    assert_eq!(play_recap(&r.stdout, "host001")["changed"], 1, "{}", r.show());
    assert_play(&r, None);
    let second = fs::read_to_string(report.join("lltune.prom")).unwrap();
    let stamp = |text: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with("lltune_report_facts_timestamp_seconds ")).unwrap();
        line.split(' ').nth(1).unwrap().parse().unwrap()
    };
    assert!(stamp(&second) > stamp(&first), "the second report is not newer:\n{first}\n{second}");
    // Only the times moved.
    let untimed = |text: &str| -> String {
        text.lines().filter(|l| !l.contains("_timestamp_seconds")).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(untimed(&first), untimed(&second));
    assert_same_rack(&start, &rack.snapshot(), "report");

    // Preview: every host shows its changes, no tree changes.
    let r = rack.play("tune", &["--check", "--diff"]);
    let recaps = assert_play(&r, None);
    for (h, recap) in &recaps {
        assert!(recap["changed"] >= 4, "{h} shows too few changes in check mode: {}", r.show());
    }
    assert!(r.stdout.contains("+options root=/dev/mapper/rl-root"), "no boot entry diff:\n{}", r.show());
    assert!(r.stdout.contains("isolcpus=managed_irq,domain,"), "{}", r.show());
    // One diff per file per run: the restore unit and its link, which several persisting
    // modules would each install, show once per host; each module's changes start with why.
    for shown in
        ["+++ after: /etc/systemd/system/lltune-restore.service", "multi-user.target.wants/lltune-restore.service ->"]
    {
        let n = r.stdout.matches(shown).count();
        assert_eq!(n, HOSTS.len(), "{shown:?} shown {n} times for {} hosts:\n{}", HOSTS.len(), r.show());
    }
    assert!(r.stdout.contains("+++ after: why (the config keys and findings behind these changes)"), "{}", r.show());
    assert!(r.stdout.contains("+nohz_full: kernel.cmdline.nohz_full"), "{}", r.show());
    // Check mode writes no bundle, so it prints no id to roll back (see: issue 17).
    assert!(!r.stdout.contains("backup id: "), "check mode printed a backup id:\n{}", r.show());
    assert_same_rack(&start, &rack.snapshot(), "tune --check --diff");

    // Apply, with the default serial batches: one backup id on every host.
    let r = rack.play("tune", &[]);
    let applied_recaps = assert_play(&r, None);
    for (h, recap) in &applied_recaps {
        assert_eq!(recap["changed"], recaps[h]["changed"], "{h}: check mode predicted another count:\n{}", r.show());
    }
    let ids: Vec<Vec<String>> = HOSTS.iter().map(|h| backups(&rack.root(h))).collect();
    assert_eq!(ids[0].len(), 1, "{ids:?}");
    assert_backup_id_format(&ids[0][0]);
    assert!(ids.iter().all(|i| *i == ids[0]), "hosts got different backup ids: {ids:?}");
    let id = ids[0][0].clone();
    assert!(r.stdout.contains(&format!("\"backup id: {id}\"")), "{}", r.show());
    for h in HOSTS {
        let root = rack.root(h);
        let cmdline = file(&root, "/etc/kernel/cmdline");
        assert!(cmdline.contains("nohz_full=") && cmdline.contains("skew_tick=1"), "{h}: {cmdline}");
        let limits = file(&root, "/etc/security/limits.d/99-lltune.conf");
        assert!(limits.contains("memlock") && limits.contains("unlimited"), "{h}: {limits}");
        assert!(file(&root, "/etc/fstab").contains("# lltune: /dev/mapper/rl-swap"), "{h}: swap line still active");
        // The gate passed; kernel arguments wait for a reboot that a tree never gets.
        assert!(r.stdout.contains("kernel arguments waiting for a reboot: isolcpus="), "{}", r.show());
    }
    let applied = rack.snapshot();

    // Again: nothing to change (idempotence), in check mode as well. Booleans given with -e
    // arrive as strings ("false"): the roles take them as Ansible does.
    let r = rack.play("tune", &["-e", "lltune_reboot=false"]);
    assert_play(&r, Some(0));
    assert!(!r.stdout.contains("backup id: "), "a run that wrote nothing printed a backup id:\n{}", r.show());
    assert_play(&rack.play("tune", &["--check", "--diff"]), Some(0));
    assert_same_rack(&applied, &rack.snapshot(), "tune rerun");
    assert_eq!(backups(&rack.root("host001")), vec![id.clone()], "a rerun that changes nothing leaves no bundle");

    // Rollback without an id: the role's argument spec refuses it before any module runs.
    // With an id no host has: each host fails naming the bundles it does have.
    let r = rack.play("rollback", &[]);
    assert_ne!(r.code, 0, "{}", r.show());
    assert!(r.stdout.contains("missing required arguments: lltune_backup_id"), "{}", r.show());
    let r = rack.play("rollback", &["-e", "lltune_backup_id=lltune-19700101T000000Z"]);
    assert_ne!(r.code, 0, "{}", r.show());
    assert!(r.stdout.contains(&format!("bundles on this host, newest first: {id}")), "{}", r.show());
    assert_same_rack(&applied, &rack.snapshot(), "rollback of a wrong id");

    // Rollback: preview writes nothing, then every host is back byte for byte.
    let var = format!("lltune_backup_id={id}");
    let r = rack.play("rollback", &["--check", "--diff", "-e", &var]);
    assert_play(&r, Some(1));
    assert_same_rack(&applied, &rack.snapshot(), "rollback --check");
    assert_play(&rack.play("rollback", &["-e", &var]), Some(1));
    assert_same_rack(&start, &rack.snapshot(), "after rollback");
}

#[test]
fn a_host_that_fails_its_audit_stops_the_serial_rollout() {
    let rack = Rack::new(HOSTS.len());
    // host001's config isolates every CPU: its audit fails, so with one host per batch and
    // max_fail_percentage 0 no later batch starts.
    let vars = rack.inventory().join("host_vars/host001.yml");
    let text = fs::read_to_string(&vars).unwrap();
    let bad = text.replace("isolate_cores: \"2-39,42-79\"", "isolate_cores: \"0-79\"");
    assert_ne!(text, bad, "the R640 config has no isolate_cores line to break");
    fs::write(&vars, bad).unwrap();
    let start = rack.snapshot();
    let r = rack.play("tune", &["-e", "lltune_serial=1"]);
    assert_ne!(r.code, 0, "{}", r.show());
    assert!(r.stdout.contains("cpu.isolate_cores: isolates every online CPU"), "{}", r.show());
    assert_eq!(play_recap(&r.stdout, "host001")["failed"], 1, "{}", r.show());
    for h in ["host002", "host003"] {
        assert!(!r.stdout.contains(&format!("{h} ")), "{h} ran although the first batch failed:\n{}", r.show());
    }
    assert_same_rack(&start, &rack.snapshot(), "failed rollout");

    // A preview covers the rack: in check mode every host is previewed, whatever the batch
    // size, and the hosts whose preview failed are listed at the end.
    let r = rack.play("tune", &["--check", "--diff", "-e", "lltune_serial=1"]);
    assert_ne!(r.code, 0, "{}", r.show());
    assert_eq!(play_recap(&r.stdout, "host001")["failed"], 1, "{}", r.show());
    for h in ["host002", "host003"] {
        let recap = play_recap(&r.stdout, h);
        assert_eq!(recap["failed"], 0, "{h}: {}", r.show());
        assert!(recap["changed"] > 0, "{h} was not previewed: {}", r.show());
    }
    assert!(r.stdout.contains("preview failed on 1 of 3 hosts: host001"), "{}", r.show());
    assert_same_rack(&start, &rack.snapshot(), "failed preview");
}

/// What a module's own planning refuses on a host (not the config's checks) stops that host
/// before any module writes: the audit module checks the config against the host, and the
/// tune role's plan pass runs each module in check mode first (the audit binary does not carry
/// the modules' planning). The audit playbook runs the same plan pass.
#[test]
fn a_module_that_would_refuse_fails_its_host_before_any_module_writes() {
    let rack = Rack::new(HOSTS.len());
    // host001 loses its boot configuration: its config passes the audit, but lltune_kernel_args
    // (the second module; lltune_sysctl, the first, has settings to write) has no file to edit.
    let root = rack.root("host001");
    for gone in ["boot/loader/entries", "etc/default/grub", "etc/kernel/cmdline"] {
        let p = root.join(gone);
        if p.is_dir() {
            fs::remove_dir_all(&p).unwrap();
        } else if p.exists() {
            fs::remove_file(&p).unwrap();
        }
    }
    let start = rack.snapshot();
    let refusal = "no boot configuration found to edit";

    let r = rack.play("audit", &[]);
    assert_ne!(r.code, 0, "{}", r.show());
    assert_eq!(play_recap(&r.stdout, "host001")["failed"], 1, "{}", r.show());
    assert!(r.stdout.contains(refusal), "{}", r.show());
    for h in ["host002", "host003"] {
        let recap = play_recap(&r.stdout, h);
        assert_eq!((recap["failed"], recap["changed"]), (0, 0), "{h}: {}", r.show());
    }
    assert_same_rack(&start, &rack.snapshot(), "audit playbook");

    // One batch that carries on past a failed host, to see the others tuned in the same run.
    let r = rack.play("tune", &["-e", "lltune_serial=3", "-e", "lltune_max_fail_percentage=100"]);
    assert_ne!(r.code, 0, "{}", r.show());
    assert_eq!(play_recap(&r.stdout, "host001")["failed"], 1, "{}", r.show());
    // It failed in the plan pass, at the kernel command line, and no module ran for real there.
    let failed_task = r
        .stdout
        .split("TASK [")
        .find(|t| t.contains("fatal: [host001]"))
        .unwrap_or_else(|| panic!("no failed task for host001:\n{}", r.show()));
    assert!(failed_task.starts_with("lltune.tuning.tune : Kernel command line (plan)]"), "{failed_task}");
    assert!(failed_task.contains(refusal), "{failed_task}");
    let after = rack.snapshot();
    assert_same_tree(&start["host001"], &after["host001"], "host001 after its refused plan");
    assert!(backups(&root).is_empty(), "host001 has a backup bundle: {:?}", backups(&root));
    // The other hosts were tuned, each change counted once (the plan pass counts none).
    let again = rack.play("tune", &["--check"]);
    for h in ["host002", "host003"] {
        let recap = play_recap(&r.stdout, h);
        assert_eq!(recap["failed"], 0, "{h}: {}", r.show());
        assert!(recap["changed"] > 0, "{h} was not tuned: {}", r.show());
        assert!(start[h] != after[h], "{h}: nothing written");
        assert_eq!(play_recap(&again.stdout, h)["changed"], 0, "{h}: not idempotent: {}", again.show());
    }
}

/// `lltune_generate: true` with no `lltune_config`: the tune role has lltune_config (the
/// module) propose each host's config and lltune_audit audit it, then previews the changes.
#[test]
fn tune_with_lltune_generate_audits_and_previews_the_proposed_config() {
    let rack = Rack::new(HOSTS.len());
    let start = rack.snapshot();
    let r = rack.play("tune", &["--check", "-e", r#"{"lltune_config": null, "lltune_generate": true}"#]);
    assert_eq!(r.code, 0, "{}", r.show());
    assert_same_rack(&start, &rack.snapshot(), "tune --check with lltune_generate");
    for h in HOSTS {
        let recap = play_recap(&r.stdout, h);
        assert_eq!(recap["failed"], 0, "{h}: {}", r.show());
        // Something to change on every host (the proposed governor at least), nothing written.
        assert!(recap["changed"] > 0, "{h}: {}", r.show());
    }
    // The one warning per host is the audit's on the proposed config: generated configs keep
    // safety.allow_grub_edit false, so their kernel arguments are left alone.
    let warned: Vec<&str> = warnings(&r.stderr).into_iter().filter(|l| l.starts_with("[WARNING]")).collect();
    assert_eq!(warned.len(), HOSTS.len(), "{}", r.show());
    for w in warned {
        assert!(
            w.contains("config: safety.allow_grub_edit: false: apply will not change the boot command line"),
            "{w}"
        );
    }
    // The play runs in batches (serial): a task's output is in one section per batch.
    let task = |name: &str| -> String {
        let head = format!("lltune.tuning.tune : {name}");
        r.stdout.split("TASK [").filter(|t| t.starts_with(&head)).collect()
    };
    let (proposed, audited) = (task("Propose a config for the host]"), task("Audit the config against the host"));
    for h in HOSTS {
        // Shown as run (`ok`), not as `skipping`: no result carries Ansible's `skipped` key,
        // though these hosts lack sysctls the configs name (`skipped_items`).
        assert!(proposed.contains(&format!("ok: [{h}]")), "{h} proposed no config:\n{}", r.show());
        assert!(audited.contains(&format!("ok: [{h}]")), "{h}: audit not shown as run:\n{}", r.show());
    }
    // The audit got the proposed config: its module arguments name lltune_cpu (the proposed
    // governor), and not lltune_kernel_args (generated configs keep allow_grub_edit false).
    let shown = task("Show the audit]");
    assert!(shown.contains("\"lltune_cpu\""), "{}", r.show());
    assert!(!shown.contains("\"lltune_kernel_args\""), "{}", r.show());
    // With a config given, nothing is proposed.
    let r = rack.play("audit", &[]);
    assert_play(&r, Some(0));
    assert!(
        r.stdout.contains("Propose a config for the host") && r.stdout.contains("skipping: [host001]"),
        "{}",
        r.show()
    );
}

#[test]
fn the_health_gate_fails_on_arguments_not_running_and_on_new_error_findings() {
    // The live host (read only): an argument this kernel was not booted with is missing.
    let (v, code) = support::run_module(
        "lltune_health",
        &json!({"kernel_args": {"lltune_test_never_booted": "1"}, "require_running": true}),
    );
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["kernel_args_missing"], json!(["lltune_test_never_booted=1"]), "{v}");
    assert!(v["msg"].as_str().unwrap().contains("not on the running command line"), "{v}");
    // Without a reboot allowed, the same argument is pending and the gate passes.
    let (v, code) = support::run_module(
        "lltune_health",
        &json!({"kernel_args": {"lltune_test_never_booted": "1", "nosoftlockup": ""}, "require_running": false}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["reboot_pending"], true, "{v}");
    assert!(v["kernel_args_pending"].as_array().unwrap().contains(&json!("lltune_test_never_booted=1")), "{v}");

    // A tree: arguments on its /proc/cmdline pass. Then the host is "booted" with every CPU
    // isolated: an error finding the baseline did not have fails the gate.
    let dir = support::host_fixture("debian12-vm");
    let root = dir.path();
    let (facts, code) = support::run_module("lltune_facts", &json!({"root": root}));
    assert_eq!(code, 0, "{facts}");
    let baseline = facts["ansible_facts"]["lltune"]["recommendations"].clone();
    assert!(!baseline.as_array().unwrap().iter().any(|r| r["severity"] == "error"), "{baseline}");
    // The health module's own scan gives the same baseline (the tune role's scan before tuning).
    let (before, code) = support::run_module("lltune_health", &json!({"root": root, "require_running": false}));
    assert_eq!(code, 0, "{before}");
    assert_eq!(before["error_findings"], json!([]), "{before}");
    let cmdline = fs::read_to_string(root.join("proc/cmdline")).unwrap();
    let first = cmdline.split_whitespace().find(|a| a.contains('=')).unwrap().split_once('=').unwrap();
    let (v, code) = support::run_module(
        "lltune_health",
        &json!({"root": root, "kernel_args": {first.0: first.1}, "baseline": baseline, "require_running": true}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!((v["new_errors"].clone(), v["errors_total"].clone()), (json!([]), json!(0)), "{v}");
    let online = facts["ansible_facts"]["lltune"]["cpu"]["online"].as_str().unwrap().to_string();
    fs::write(root.join("proc/cmdline"), format!("isolcpus={online} {}", cmdline)).unwrap();
    let (v, code) = support::run_module(
        "lltune_health",
        &json!({"root": root, "kernel_args": {"isolcpus": online}, "baseline": baseline}),
    );
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["kernel_args_missing"], json!([]), "{v}");
    assert_eq!(v["new_errors"][0]["item"], "isolation_leaves_no_housekeeping", "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("new error findings since the baseline: kernel: isolation_leaves_no_housekeeping"),
        "{v}"
    );
    // The same gate with the health module's baseline; and its error findings, fed back as a
    // baseline, make the finding not new.
    let (v, code) = support::run_module(
        "lltune_health",
        &json!({"root": root, "kernel_args": {"isolcpus": online}, "baseline": before["error_findings"]}),
    );
    assert_eq!((code, v["new_errors"][0]["item"].clone()), (1, json!("isolation_leaves_no_housekeeping")), "{v}");
    let (v, code) = support::run_module(
        "lltune_health",
        &json!({"root": root, "kernel_args": {"isolcpus": online}, "baseline": v["error_findings"]}),
    );
    // (It still fails on the argument's missing effect: the tree's sysfs has no isolated CPUs.)
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["new_errors"], json!([]), "{v}");
    assert!(!v["msg"].as_str().unwrap().contains("new error findings"), "{v}");
    // A folder that is no host's tree is refused, as the scan refuses it.
    let empty = tempfile::tempdir().unwrap();
    let (v, code) = support::run_module("lltune_health", &json!({"root": empty.path()}));
    assert_eq!(code, 1, "{v}");
    assert!(v["msg"].as_str().unwrap().starts_with(&format!("root {}", empty.path().display())), "{v}");
    // Bad input names the option.
    let (v, code) = support::run_module("lltune_health", &json!({"root": root, "baseline": "none"}));
    assert_eq!(code, 1, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("baseline"), "{v}");
}

/// The default backup id's format, `YYYYMMDDTHHMMSSZ-<n>` (src/backup_id.rs), which the CLI
/// and the tune role both make.
fn assert_backup_id_format(id: &str) {
    let re = regex::Regex::new(r"^[0-9]{8}T[0-9]{6}Z-[0-9]+$").unwrap();
    assert!(re.is_match(id), "backup id {id:?} is not YYYYMMDDTHHMMSSZ-<n>");
}

/// Every file under `root` with the bundle folder's name replaced by `<id>`, for comparing
/// two runs' trees whole: outside `var/lib/lltune` as `tree_snapshot` sees it; inside, every
/// path and every byte too, except the journal's `created` stamp (the time the run started)
/// and its `backup_id` (the folder's name again).
fn tree_with_bundles(root: &Path) -> BTreeMap<String, Node> {
    let mut all = tree_snapshot(root);
    let ids = backups(root);
    assert_eq!(ids.len(), 1, "{}: expected one bundle, found {ids:?}", root.display());
    assert_backup_id_format(&ids[0]);
    let bundle = root.join("var/lib/lltune/backups").join(&ids[0]);
    for (rel, node) in tree_snapshot(&bundle) {
        let node = match node {
            Node::File { bytes, mode, uid, gid } if rel == "journal.json" => {
                let mut j: Value = serde_json::from_slice(&bytes).unwrap();
                assert!(j["created"].is_string(), "journal.json has no created stamp: {j}");
                assert_eq!(j["backup_id"], ids[0].as_str(), "journal.json names another bundle");
                j["created"] = Value::Null;
                j["backup_id"] = Value::Null;
                let text = serde_json::to_string_pretty(&j).unwrap();
                assert!(!text.contains(&ids[0]), "journal.json names its own bundle: {text}");
                Node::File { bytes: text.into_bytes(), mode, uid, gid }
            }
            other => other,
        };
        all.insert(format!("var/lib/lltune/backups/<id>/{rel}"), node);
    }
    all
}

/// The tune role and `lltune apply` carry out the same config the same way: on copies of the
/// same simulated rack host, every file the two runs leave is byte-identical (the backup
/// bundles too, but for their folder names and start stamps). A key `to_args` adds that the
/// role does not pass on, or a step in another order, shows up here as a difference.
#[test]
fn tune_role_and_lltune_apply_leave_the_same_tree() {
    let hosts = &HOSTS[..];
    let rack = Rack::new(hosts.len());
    let start: BTreeMap<&str, _> = hosts.iter().map(|h| (*h, tree_snapshot(&rack.root(h)))).collect();
    let cli = tempfile::tempdir().unwrap();
    for h in hosts {
        support::copy_tree_with_links(&rack.root(h), &cli.path().join(h));
    }
    let r = rack.play("tune", &[]);
    assert_eq!(r.code, 0, "{}", r.show());
    for h in hosts {
        assert_eq!(play_recap(&r.stdout, h)["failed"], 0, "{h}: {}", r.show());
    }
    for &h in hosts {
        let copy = cli.path().join(h);
        let config = rack.dir.path().join("configs").join(format!("{h}.yml"));
        let out = Command::new(support::bin("lltune"))
            .args(["apply", "--config"])
            .arg(&config)
            .arg("--root")
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{h}: lltune apply: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let by_role = tree_with_bundles(&rack.root(h));
        let by_cli = tree_with_bundles(&copy);
        // The comparison sees the changes: the role did change this host's files.
        assert_ne!(tree_snapshot(&rack.root(h)), start[h], "{h}: the role changed nothing");
        assert_same_tree(&by_role, &by_cli, &format!("{h}: tune role vs lltune apply"));
    }
}

/// A role fails in the terms of the variables the user set (`lltune_root`,
/// `lltune_backup_id`), not of the module options the role passes them to.
#[test]
fn role_failures_name_the_role_variables() {
    let rack = Rack::new(1);
    let missing = rack.dir.path().join("no-such-host");
    let root = format!("lltune_root={}", missing.display());
    let expected = format!("lltune_root: {}: no such file or directory", missing.display());
    for (playbook, flags) in [
        ("facts", vec![]),
        ("report", vec![]),
        ("audit", vec![]),
        ("tune", vec!["--check"]),
        ("rollback", vec!["-e", "lltune_backup_id=20261207T000000Z-1"]),
    ] {
        let mut args = flags.clone();
        args.extend(["-e", root.as_str()]);
        let r = rack.play(playbook, &args);
        assert_ne!(r.code, 0, "{playbook}: {}", r.show());
        assert!(r.stdout.contains(&expected), "{playbook}: {}", r.show());
        assert!(!r.stdout.contains("option root"), "{playbook}: {}", r.show());
    }
    let r = rack.play("rollback", &["-e", "lltune_backup_id=../elsewhere"]);
    assert_ne!(r.code, 0, "{}", r.show());
    assert!(r.stdout.contains("lltune_backup_id: \"../elsewhere\" is neither a backup id"), "{}", r.show());
    assert!(!r.stdout.contains("option backup"), "{}", r.show());
}

#[test]
fn a_bad_role_variable_fails_its_own_host_and_the_others_carry_on() {
    // Each role checks each host's variables in that host's first module task (a run-once
    // check that failed would fail every host of the batch). host002's variables are wrong for the facts role
    // (lltune_detail) and the tune role (lltune_reboot_timeout): host002 alone fails, with
    // Ansible's message naming the variable, and host001 is scanned, previewed and tuned.
    let rack = Rack::new(2);
    let vars = rack.inventory().join("host_vars/host002.yml");
    let mut text = fs::read_to_string(&vars).unwrap();
    text.push_str("lltune_detail: maybe\nlltune_reboot_timeout: soon\n");
    fs::write(&vars, text).unwrap();
    let roots = ["host001", "host002"].map(|h| tree_snapshot(&rack.root(h)));
    let detail = "argument 'lltune_detail' is of type str and we were unable to convert to bool";
    let timeout = "argument 'lltune_reboot_timeout' is of type str and we were unable to convert to int";

    let one_fails = |r: &Run, message: &str| {
        assert_ne!(r.code, 0, "{}", r.show());
        let fatal: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("fatal: ")).collect();
        assert_eq!(fatal.len(), 1, "{}", r.show());
        assert!(fatal[0].starts_with("fatal: [host002]") && fatal[0].contains(message), "{}", r.show());
        assert_eq!(play_recap(&r.stdout, "host002")["failed"], 1, "{}", r.show());
        let good = play_recap(&r.stdout, "host001");
        assert_eq!(good["failed"], 0, "{}", r.show());
        good
    };

    let r = rack.play("facts", &["-e", "lltune_show_summary=true"]);
    one_fails(&r, detail);
    // host001's summary is shown; host002 has none.
    assert!(r.stdout.contains("\"host001\": {") && !r.stdout.contains("\"host002\": {"), "{}", r.show());

    let r = rack.play("tune", &["--check", "--diff"]);
    let good = one_fails(&r, timeout);
    assert!(good["changed"] > 0, "host001 was not previewed: {}", r.show());
    assert!(r.stdout.contains("preview failed on 1 of 2 hosts: host002"), "{}", r.show());
    assert_same_tree(&roots[0], &tree_snapshot(&rack.root("host001")), "host001 after the preview");

    // A tune run whose failure budget lets one host of two fail: host001 is tuned.
    let r = rack.play("tune", &["-e", "lltune_serial=100%", "-e", "lltune_max_fail_percentage=50"]);
    let good = one_fails(&r, timeout);
    assert!(good["changed"] > 0, "{}", r.show());
    let cmdline = file(&rack.root("host001"), "/etc/kernel/cmdline");
    assert!(cmdline.contains("nohz_full="), "host001 was not tuned: {cmdline}");
    assert_eq!(backups(&rack.root("host001")).len(), 1, "{}", r.show());
    assert_same_tree(&roots[1], &tree_snapshot(&rack.root("host002")), "host002 after the run it failed");
}
