//! lltune_services on a fixture tree: unit links edited as `systemctl enable/disable/mask`
//! writes them, run-time state reported as untouched, refusals before anything is written,
//! idempotence and rollback.

use std::fs;
use std::path::Path;

use serde_json::json;

use crate::support::{host_fixture, run_module, tree_snapshot};

fn link(root: &Path, p: &str) -> Option<String> {
    fs::read_link(root.join(p.trim_start_matches('/'))).ok().map(|t| t.to_string_lossy().into_owned())
}

const WANTS: &str = "/etc/systemd/system/multi-user.target.wants";

#[test]
fn services_disable_and_mask_on_a_tree_then_roll_back() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    let start = tree_snapshot(root);
    let args = json!({"root": root, "backup_id": "s1", "_ansible_diff": true, "services": {
        "irqbalance": {"state": "stopped", "enabled": false},
        "tuned": {"state": "stopped", "enabled": "no", "masked": true},
    }});
    let (v, code) = run_module("lltune_services", &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], true);
    assert_eq!(link(root, &format!("{WANTS}/irqbalance.service")), None);
    assert_eq!(link(root, &format!("{WANTS}/tuned.service")), None);
    assert_eq!(link(root, "/etc/systemd/system/tuned.service").as_deref(), Some("/dev/null"));
    // Untouched: chronyd and its alias, the timer.
    assert!(link(root, &format!("{WANTS}/chronyd.service")).is_some());
    assert!(link(root, "/etc/systemd/system/timers.target.wants/fstrim.timer").is_some());
    // Run-time state is not touched on a tree, and the result says so.
    assert_eq!(v["state_not_applied"], json!(["irqbalance.service", "tuned.service"]));
    assert!(v.get("warnings").is_none_or(|w| w.as_array().unwrap().is_empty()), "{v}");
    let irq = &v["services"][0];
    assert_eq!(irq["unit"], "irqbalance.service");
    assert_eq!(irq["unit_file"], "/usr/lib/systemd/system/irqbalance.service");
    assert_eq!(irq["enabled"], json!({"before": true, "after": false}));
    assert_eq!(irq["active"], json!(null));
    assert_eq!(v["services"][1]["masked"], json!({"before": false, "after": true}));
    assert_eq!(v["diff"].as_array().unwrap().len(), 2, "{v}");
    // The journal holds the links as links.
    let journal: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join("var/lib/lltune/backups/s1/journal.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = journal["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["link", "link", "link"]);

    let (again, _) = run_module("lltune_services", &json!({"root": root, "services": args["services"]}));
    assert_eq!(again["changed"], false, "{again}");
    let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "s1"}));
    assert_eq!(code, 0, "{rb}");
    assert_eq!(tree_snapshot(root), start);
}

#[test]
fn services_enable_writes_wants_and_alias_links_like_systemctl() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    let start = tree_snapshot(root);
    let (v, code) = run_module(
        "lltune_services",
        &json!({"root": root, "backup_id": "e1", "services": {"chronyd": {"enabled": false}}}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(link(root, &format!("{WANTS}/chronyd.service")), None);
    assert_eq!(link(root, "/etc/systemd/system/chrony.service"), None, "the Alias= link goes too");
    let (v, code) = run_module(
        "lltune_services",
        &json!({"root": root, "backup_id": "e2", "services": {"chronyd.service": {"enabled": true}}}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(tree_snapshot(root), start, "enable puts back exactly the links the package had");
    assert_eq!(v["services"][0]["links_added"].as_array().unwrap().len(), 2, "{v}");
    // The alias names the same unit.
    let (v, _) = run_module(
        "lltune_services",
        &json!({"root": root, "backup_id": "e3", "services": {"chrony": {"enabled": true}}}),
    );
    assert_eq!(
        (v["changed"].clone(), v["services"][0]["unit"].clone()),
        (json!(false), json!("chronyd.service")),
        "{v}"
    );
    // Unmask, then enable a unit that was masked.
    let (v, code) = run_module(
        "lltune_services",
        &json!({"root": root, "backup_id": "e4", "services": {"tuned": {"masked": true, "enabled": false}}}),
    );
    assert_eq!(code, 0, "{v}");
    let (v, code) = run_module(
        "lltune_services",
        &json!({"root": root, "backup_id": "e5", "services": {"tuned": {"masked": false, "enabled": true}}}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(tree_snapshot(root), start);
    for id in ["e5", "e4", "e2", "e1"] {
        let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": id}));
        assert_eq!(code, 0, "{v}");
    }
    assert_eq!(tree_snapshot(root), start);
}

#[test]
fn services_refusals_name_the_unit_and_write_nothing() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    fs::write(root.join("usr/lib/systemd/system/static.service"), "[Unit]\nDescription=no install\n").unwrap();
    fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    std::os::unix::fs::symlink("/dev/null", root.join("etc/systemd/system/masked-one.service")).unwrap();
    fs::write(root.join("usr/lib/systemd/system/masked-one.service"), "[Install]\nWantedBy=multi-user.target\n")
        .unwrap();
    let start = tree_snapshot(root);
    for (services, expect) in [
        (
            // Starting a unit that is not installed (stopping one holds already: see below).
            json!({"irqbalance": {"enabled": false}, "no-such-daemon": {"state": "started"}}),
            "services.no-such-daemon.service: no unit file no-such-daemon.service",
        ),
        (json!({"tuned": {"enabled": true, "masked": true}}), "services.tuned: a masked unit cannot be enabled"),
        (json!({"tuned": {"state": "started", "masked": true}}), "services.tuned: a masked unit cannot be started"),
        (json!({"masked-one": {"enabled": true}}), "add masked: false"),
        (json!({"static": {"enabled": true}}), "no [Install] section"),
        (json!({"tuned": {}}), "services.tuned: give state, enabled or masked"),
        (json!({"tuned": {"state": "running"}}), "services.tuned.state"),
        (json!({"tuned": {"enabled": "perhaps"}}), "services.tuned.enabled"),
        (json!({"tuned": {"enable": true}}), "enable"),
        (json!({"../../etc/passwd": {"enabled": false}}), "is not a systemd unit name"),
        (json!({"chrony": {"enabled": false}, "chronyd": {"enabled": false}}), "given twice"),
        (json!({}), "option services"),
    ] {
        let (v, code) = run_module("lltune_services", &json!({"root": root, "services": services}));
        assert_eq!(code, 1, "{services}: {v}");
        assert!(v["msg"].as_str().unwrap().contains(expect), "{services}: {v}");
    }
    assert_eq!(tree_snapshot(root), start);
}

#[test]
fn services_off_for_a_unit_that_is_not_installed_holds_already() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    let before = crate::support::tree_snapshot(root);
    let args = json!({"root": root, "services": {"no-such-daemon": {"state": "stopped", "enabled": false}}});
    let (v, code) = crate::support::run_module("lltune_services", &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], false, "{v}");
    assert!(v["warnings"][0].as_str().unwrap().contains("not installed"), "{v}");
    crate::support::assert_same_tree(&before, &crate::support::tree_snapshot(root), "an absent unit, off");
}

fn put(root: &Path, p: &str, text: &str) {
    let p = root.join(p.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn read(root: &Path, p: &str) -> Option<String> {
    fs::read_to_string(root.join(p.trim_start_matches('/'))).ok()
}

#[test]
fn tuned_profile_on_a_tree_writes_tuneds_files_enables_the_unit_and_rolls_back() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    put(root, "/usr/lib/tuned/profiles/latency-performance/tuned.conf", "[main]\nsummary=x\n");
    put(root, "/etc/tuned/site-rt/tuned.conf", "[main]\ninclude=latency-performance\n");
    put(root, "/etc/tuned/active_profile", "throughput-performance\n");
    put(root, "/etc/tuned/profile_mode", "auto\n");
    // tuned disabled first: the profile enables it again.
    let (v, code) = run_module(
        "lltune_services",
        &json!({"root": root, "backup_id": "t0", "services": {"tuned": {"enabled": false}}}),
    );
    assert_eq!(code, 0, "{v}");
    let start = tree_snapshot(root);
    let args = json!({"root": root, "backup_id": "t1", "_ansible_diff": true,
        "tuned_profile": "latency-performance site-rt"});
    // Check mode: the same answer, nothing written.
    let mut check = args.clone();
    check["_ansible_check_mode"] = json!(true);
    let (c, code) = run_module("lltune_services", &check);
    assert_eq!(code, 0, "{c}");
    assert_eq!(c["changed"], true);
    assert_eq!(tree_snapshot(root), start, "check mode wrote nothing");

    let (v, code) = run_module("lltune_services", &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!((v["changed"].clone(), v["diff"].clone()), (c["changed"].clone(), c["diff"].clone()));
    assert_eq!(read(root, "/etc/tuned/active_profile").as_deref(), Some("latency-performance site-rt\n"));
    assert_eq!(read(root, "/etc/tuned/profile_mode").as_deref(), Some("manual\n"));
    assert!(link(root, &format!("{WANTS}/tuned.service")).is_some(), "tuned enabled to load it at boot");
    let t = &v["tuned"];
    assert_eq!(t["how"], "files");
    assert_eq!(t["profile"], json!({"before": "throughput-performance", "after": "latency-performance site-rt"}));
    assert_eq!(t["mode"], json!({"before": "auto", "after": "manual"}));
    assert_eq!(
        t["profile_files"],
        json!(["/usr/lib/tuned/profiles/latency-performance/tuned.conf", "/etc/tuned/site-rt/tuned.conf"])
    );
    let diffs: Vec<&str> = v["diff"].as_array().unwrap().iter().map(|d| d["before_header"].as_str().unwrap()).collect();
    assert_eq!(diffs, ["/etc/tuned/active_profile", "/etc/tuned/profile_mode", "links of tuned.service"], "{v}");
    assert_eq!(v["diff"][0]["after"], "latency-performance site-rt\n");

    let (again, _) =
        run_module("lltune_services", &json!({"root": root, "tuned_profile": "latency-performance site-rt"}));
    assert_eq!(again["changed"], false, "{again}");
    let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "t1"}));
    assert_eq!(code, 0, "{rb}");
    assert_eq!(tree_snapshot(root), start, "rollback is byte-identical");
}

#[test]
fn tuned_profile_on_a_tree_without_tuneds_files_creates_them_and_rollback_removes_them() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    put(root, "/usr/lib/tuned/network-latency/tuned.conf", "[main]\n");
    let start = tree_snapshot(root);
    let (v, code) =
        run_module("lltune_services", &json!({"root": root, "backup_id": "n1", "tuned_profile": "network-latency"}));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["tuned"]["profile"]["before"], json!(null));
    assert_eq!(read(root, "/etc/tuned/active_profile").as_deref(), Some("network-latency\n"));
    // tuned.service was enabled already: no link changes.
    assert_eq!(v["services"][0]["links_added"], json!([]), "{v}");
    let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "n1"}));
    assert_eq!(code, 0, "{rb}");
    crate::support::assert_same_tree(&start, &tree_snapshot(root), "files created, then removed");
}

#[test]
fn tuned_profile_refusals_name_the_option_and_the_paths_and_write_nothing() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    put(root, "/usr/lib/tuned/profiles/latency-performance/tuned.conf", "[main]\n");
    // A folder without tuned.conf, and a tuned.conf that is a folder: no profile either.
    fs::create_dir_all(root.join("etc/tuned/profiles/half")).unwrap();
    fs::create_dir_all(root.join("usr/lib/tuned/odd/tuned.conf")).unwrap();
    let start = tree_snapshot(root);
    for (args, expect) in [
        (
            json!({"tuned_profile": "nope"}),
            "tuned_profile: no TuneD profile \"nope\" on this host (looked at /etc/tuned/profiles/nope/tuned.conf, /etc/tuned/nope/tuned.conf, /usr/lib/tuned/profiles/nope/tuned.conf, /usr/lib/tuned/nope/tuned.conf)",
        ),
        (json!({"tuned_profile": "latency-performance half"}), "no TuneD profile \"half\""),
        (json!({"tuned_profile": "odd"}), "no TuneD profile \"odd\""),
        (json!({"tuned_profile": "../../../etc"}), "'/' is not allowed"),
        (json!({"tuned_profile": ".."}), "names a folder"),
        (json!({"tuned_profile": "a\nb"}), "is not allowed"),
        (json!({"tuned_profile": "--help"}), "starts with '-'"),
        (json!({"tuned_profile": ""}), "empty"),
        (json!({"tuned_profile": 5}), "tuned_profile"),
        (
            json!({"tuned_profile": "latency-performance", "services": {"tuned": {"state": "stopped"}}}),
            "tuned_profile: services.tuned stops, disables or masks tuned",
        ),
        (
            json!({"tuned_profile": "latency-performance", "services": {"tuned.service": {"masked": true}}}),
            "tuned_profile: services.tuned.service stops",
        ),
    ] {
        let mut a = args.clone();
        a["root"] = json!(root);
        let (v, code) = run_module("lltune_services", &a);
        assert_eq!(code, 1, "{args}: {v}");
        assert!(v["msg"].as_str().unwrap().contains(expect), "{args}: {v}");
    }
    assert_eq!(tree_snapshot(root), start);
}

fn lltune(args: &[&str], root: &Path) -> (i32, String) {
    let out =
        std::process::Command::new(crate::support::bin("lltune")).args(args).arg("--root").arg(root).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn lltune_apply_runs_the_configs_tuned_profile_and_audits_a_missing_one_first() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    put(root, "/usr/lib/tuned/profiles/latency-performance/tuned.conf", "[main]\n");
    // A host tree for the CLI: its kernel files (none needed here).
    put(root, "/proc/cmdline", "ro quiet\n");
    let cfg = tempfile::NamedTempFile::new().unwrap();
    let c = cfg.path().to_str().unwrap();
    // A profile the host lacks: the audit stops apply, naming services.tuned and the paths.
    fs::write(cfg.path(), "version: 1\nservices:\n  tuned: \"network-latency\"\n").unwrap();
    let start = tree_snapshot(root);
    let (code, out) = lltune(&["apply", "-c", c], root);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("services.tuned"), "{out}");
    assert!(out.contains("/usr/lib/tuned/profiles/network-latency/tuned.conf"), "{out}");
    assert_eq!(tree_snapshot(root), start);
    // One it has: planned, carried out, unchanged on the second run, rolled back.
    fs::write(cfg.path(), "version: 1\nservices:\n  irqbalance: false\n  tuned: \"latency-performance\"\n").unwrap();
    let (code, plan) = lltune(&["apply", "-c", c, "--plan"], root);
    assert_eq!(code, 0, "{plan}");
    assert!(plan.contains("/etc/tuned/active_profile") && !plan.contains("not implemented"), "{plan}");
    assert_eq!(tree_snapshot(root), start, "--plan writes nothing");
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "a1"], root);
    assert_eq!(code, 0, "{out}");
    assert_eq!(read(root, "/etc/tuned/active_profile").as_deref(), Some("latency-performance\n"));
    assert_eq!(read(root, "/etc/tuned/profile_mode").as_deref(), Some("manual\n"));
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "a2"], root);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to change"), "{out}");
    let (code, out) = lltune(&["rollback", "--backup", "a1"], root);
    assert_eq!(code, 0, "{out}");
    assert_eq!(tree_snapshot(root), start);
}
