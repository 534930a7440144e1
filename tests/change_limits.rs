//! lltune_limits on a fixture tree: the file it writes, pam_limits' precedence in
//! `conflicts`, refusals that name the entry, idempotence and rollback.

use std::fs;

use serde_json::json;

use crate::support::{host_fixture, run_module, tree_snapshot};

const OURS: &str = "etc/security/limits.d/99-lltune.conf";

#[test]
fn limits_writes_one_drop_in_and_reports_what_overrides_it() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    let start = tree_snapshot(root);
    let args = json!({"root": root, "backup_id": "l1", "limits": [
        {"domain": "@trading", "type": "-", "item": "memlock", "value": "unlimited"},
        {"domain": "@trading", "type": "-", "item": "nofile", "value": 1048576},
        {"domain": "@trading", "type": "soft", "item": "nice", "value": -10},
    ]});
    let (v, code) = run_module("lltune_limits", &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], true);
    let text = fs::read_to_string(root.join(OURS)).unwrap();
    assert!(text.starts_with("# Resource limits managed by lltune"), "{text}");
    assert!(text.contains("@trading\t-\tmemlock\tunlimited\n"), "{text}");
    assert!(text.contains("@trading\t-\tnofile\t1048576\n"), "{text}");
    assert!(text.contains("@trading\tsoft\tnice\t-10\n"), "{text}");
    assert_eq!(
        v["files"],
        json!([
            "/etc/security/limits.conf",
            "/etc/security/limits.d/20-nproc.conf",
            "/etc/security/limits.d/99-lltune.conf",
            "/etc/security/limits.d/99-zz-vendor.conf"
        ])
    );
    // memlock hard: limits.conf sets 65536 for @trading, read before ours: ours wins.
    // The vendor's `* - memlock 64` comes later but is less specific: it never wins.
    // nofile hard: the vendor file is read after ours and sets 65536 for @trading: it wins.
    let conflicts = v["conflicts"].as_array().unwrap();
    let find = |kind: &str, item: &str| {
        conflicts
            .iter()
            .find(|c| c["type"] == kind && c["item"] == item)
            .unwrap_or_else(|| panic!("{kind} {item}: {v}"))
    };
    let memlock = find("hard", "memlock");
    assert_eq!(memlock["wins"], "/etc/security/limits.d/99-lltune.conf");
    assert_eq!(memlock["set_by"][0]["file"], "/etc/security/limits.conf");
    assert_eq!(memlock["set_by"][0]["line"], 19);
    let nofile = find("hard", "nofile");
    assert_eq!(nofile["wins"], "/etc/security/limits.d/99-zz-vendor.conf");
    assert_eq!(nofile["value_in_effect"], "65536");
    assert!(conflicts.iter().all(|c| c["item"] != "nice"), "{v}");
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v}");
    assert!(warnings[0].as_str().unwrap().contains("@trading hard nofile: /etc/security/limits.d/99-zz-vendor.conf"));

    // Rerun: unchanged. Rollback: the tree as it was.
    let (again, _) = run_module("lltune_limits", &json!({"root": root, "backup_id": "l2", "limits": args["limits"]}));
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["changes"][0]["before"], "unlimited");
    // Other lines of the file are kept; our key is edited in place.
    fs::write(root.join(OURS), format!("{text}# mine\nbob hard nofile 10\n")).unwrap();
    let (v, _) = run_module(
        "lltune_limits",
        &json!({"root": root, "backup_id": "l3", "limits": [{"domain": "@trading", "type": "-", "item": "memlock", "value": 1024}]}),
    );
    assert_eq!(v["changed"], true);
    let edited = fs::read_to_string(root.join(OURS)).unwrap();
    assert_eq!(edited, text.replace("memlock\tunlimited", "memlock\t1024") + "# mine\nbob hard nofile 10\n");
    for id in ["l3", "l1"] {
        let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": id}));
        assert_eq!(code, 0, "{v}");
    }
    assert_eq!(tree_snapshot(root), start);
}

#[test]
fn limits_refusals_name_the_entry_and_touch_nothing() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    let start = tree_snapshot(root);
    let entry =
        |d: &str, t: &str, i: &str, v: serde_json::Value| json!({"domain": d, "type": t, "item": i, "value": v});
    for (limits, expect) in [
        (json!([entry("@trading", "-", "memlok", json!(1))]), "limits[0].item: \"memlok\" is not a pam_limits item"),
        (json!([entry("@trading", "both", "nofile", json!(1))]), "limits[0].type"),
        (json!([entry("@trading", "-", "rtprio", json!(100))]), "limits[0].value: \"100\" is not a real-time priority"),
        (json!([entry("@trading", "-", "nice", json!("unlimited"))]), "limits[0].value"),
        (json!([entry("@trading", "-", "priority", json!(-21))]), "limits[0].value"),
        (json!([entry("@trading", "-", "nofile", json!(-5))]), "limits[0].value"),
        (json!([entry("bad name", "-", "nofile", json!(5))]), "limits[0].domain"),
        (json!([entry("2000:1000", "-", "nofile", json!(5))]), "limits[0].domain"),
        (json!([entry("%ops", "-", "nofile", json!(5))]), "maxlogins only"),
        (
            json!([entry("@t", "-", "nofile", json!(5)), entry("@t", "hard", "nofile", json!(6))]),
            "limits[1]: hard nofile for @t is already set by limits[0]",
        ),
        (json!([entry("@t", "-", "nofile", json!(true))]), "limits[0].value"),
        (json!([{"domain": "@t", "type": "-", "item": "nofile", "value": 1, "scope": "x"}]), "scope"),
        (json!([]), "option limits"),
    ] {
        let (v, code) = run_module("lltune_limits", &json!({"root": root, "limits": limits}));
        assert_eq!(code, 1, "{limits}: {v}");
        assert!(v["msg"].as_str().unwrap().contains(expect), "{limits}: {v}");
    }
    let (v, code) = run_module(
        "lltune_limits",
        &json!({"root": root, "file": "etc/x.conf", "limits": [entry("@t", "-", "nofile", json!(5))]}),
    );
    assert_eq!(code, 1, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("option file"), "{v}");
    assert_eq!(tree_snapshot(root), start);
}

#[test]
fn limits_warns_about_files_pam_limits_never_reads_and_no_limit_lines() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    let one = json!([{"domain": "@trading", "type": "soft", "item": "memlock", "value": "infinity"}]);
    let (v, code) =
        run_module("lltune_limits", &json!({"root": root, "limits": one, "file": "/etc/security/limits.d/lltune"}));
    assert_eq!(code, 0, "{v}");
    assert!(v["warnings"][0].as_str().unwrap().contains("only *.conf"), "{v}");
    fs::write(root.join("etc/security/limits.d/50-admins.conf"), "@trading -\n").unwrap();
    let (v, code) = run_module("lltune_limits", &json!({"root": root, "limits": one}));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["no_limits"][0]["file"], "/etc/security/limits.d/50-admins.conf");
    assert!(v["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("no limit at all")), "{v}");
    // The value is written in pam_limits' canonical spelling.
    let text = fs::read_to_string(root.join(OURS)).unwrap();
    assert!(text.contains("@trading\tsoft\tmemlock\tunlimited\n"), "{text}");
}
