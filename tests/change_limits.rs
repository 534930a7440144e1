//! lltune_limits on a fixture tree: the file it writes, pam_limits' precedence in
//! `conflicts`, refusals that name the entry, idempotence and rollback.

use std::fs;

use serde_json::json;

use crate::support::{host_fixture, run_module, tree_snapshot};

const OURS: &str = "etc/security/limits.d/99-lltune.conf";

/// See: issue 17. A limit that a line read later keeps from taking effect fails the task,
/// naming the line, and nothing is written; the same limits in a file read after it work.
#[test]
fn limits_refuses_a_limit_another_file_overrides_and_writes_nothing() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    let start = tree_snapshot(root);
    let limits = json!([
        {"domain": "@trading", "type": "-", "item": "memlock", "value": "unlimited"},
        {"domain": "@trading", "type": "-", "item": "nofile", "value": 1048576},
        {"domain": "@trading", "type": "soft", "item": "nice", "value": -10},
    ]);
    for check in [true, false] {
        let (v, code) =
            run_module("lltune_limits", &json!({"root": root, "limits": limits, "_ansible_check_mode": check}));
        assert_eq!(code, 1, "{v}");
        assert_eq!(v["changed"], false, "{v}");
        let msg = v["msg"].as_str().unwrap();
        // nofile hard: 99-zz-vendor.conf is read after 99-lltune.conf and sets 65536 for
        // @trading; pam_limits then lowers our soft 1048576 to that hard limit too.
        assert!(msg.starts_with("2 limit(s) would not take effect at login, so nothing was written: "), "{msg}");
        assert!(
            msg.contains(
                "@trading hard nofile: /etc/security/limits.d/99-zz-vendor.conf:2 makes it 65536, not 1048576"
            ),
            "{msg}"
        );
        assert!(
            msg.contains("@trading soft nofile: the hard limit 65536 set at /etc/security/limits.d/99-zz-vendor.conf:2 caps it (pam_limits lowers a soft limit above the hard one), not 1048576"),
            "{msg}"
        );
        let nofile = v["conflicts"].as_array().unwrap().iter().find(|c| c["type"] == "hard" && c["item"] == "nofile");
        assert_eq!(nofile.unwrap()["value_in_effect"], "65536", "{v}");
        assert_eq!(nofile.unwrap()["in_effect"], false, "{v}");
        assert_eq!(tree_snapshot(root), start, "check mode {check}");
    }
    // The result agrees with conflicts[]: every limit in effect or the task fails.
    let (v, code) = run_module(
        "lltune_limits",
        &json!({"root": root, "limits": limits, "file": "/etc/security/limits.d/zz-lltune.conf", "backup_id": "l1"}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], true);
    assert!(v["conflicts"].as_array().unwrap().iter().all(|c| c["in_effect"] == true), "{v}");
    let nofile = v["conflicts"].as_array().unwrap().iter().find(|c| c["type"] == "hard" && c["item"] == "nofile");
    assert_eq!(nofile.unwrap()["wins"], "/etc/security/limits.d/zz-lltune.conf", "{v}");
    assert_eq!(nofile.unwrap()["set_by"][0]["file"], "/etc/security/limits.d/99-zz-vendor.conf", "{v}");
    assert_eq!(v["warnings"], json!([]), "{v}");
    let (v, _) = run_module("lltune_rollback", &json!({"root": root, "backup": "l1"}));
    assert_eq!(v["failed"], false, "{v}");
    assert_eq!(tree_snapshot(root), start);
    // A soft limit above a hard one that applies: pam_limits lowers it to the hard one.
    let (v, code) = run_module(
        "lltune_limits",
        &json!({"root": root, "limits": [{"domain": "@trading", "type": "soft", "item": "memlock", "value": "unlimited"}], "file": "/etc/security/limits.d/zz-lltune.conf"}),
    );
    assert_eq!(code, 1, "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("@trading soft memlock: the hard limit 65536 set at /etc/security/limits.conf:19 caps it"),
        "{v}"
    );
    assert_eq!(tree_snapshot(root), start);
}

/// See: issue 17. The module's own file: a line further down for the same domain (a `-` line
/// after the `soft` line it edits) keeps the edited value from taking effect: refused.
#[test]
fn limits_refuses_a_limit_a_later_line_of_its_own_file_overrides() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    fs::write(root.join(OURS), "@trading soft memlock 64\n@trading - memlock 128\n").unwrap();
    let start = tree_snapshot(root);
    let one = json!([{"domain": "@trading", "type": "soft", "item": "memlock", "value": 100}]);
    let (v, code) = run_module("lltune_limits", &json!({"root": root, "limits": one}));
    assert_eq!(code, 1, "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("@trading soft memlock: /etc/security/limits.d/99-lltune.conf:2 makes it 128, not 100"),
        "{v}"
    );
    assert_eq!(tree_snapshot(root), start);
    // A value the later line agrees with is in effect: nothing to refuse, nothing to change.
    let (v, code) = run_module(
        "lltune_limits",
        &json!({"root": root, "limits": [{"domain": "@trading", "type": "-", "item": "memlock", "value": 128}]}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], false, "{v}");
}

#[test]
fn limits_writes_one_drop_in_edits_its_key_in_place_and_rolls_back() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    let start = tree_snapshot(root);
    let args = json!({"root": root, "backup_id": "l1", "limits": [
        {"domain": "@trading", "type": "-", "item": "memlock", "value": "unlimited"},
        {"domain": "@trading", "type": "-", "item": "nproc", "value": 65536},
        {"domain": "@trading", "type": "soft", "item": "nice", "value": -10},
    ]});
    let (v, code) = run_module("lltune_limits", &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], true);
    let text = fs::read_to_string(root.join(OURS)).unwrap();
    assert!(text.starts_with("# Resource limits managed by lltune"), "{text}");
    assert!(text.contains("@trading\t-\tmemlock\tunlimited\n"), "{text}");
    assert!(text.contains("@trading\t-\tnproc\t65536\n"), "{text}");
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
    let conflicts = v["conflicts"].as_array().unwrap();
    let memlock = conflicts.iter().find(|c| c["type"] == "hard" && c["item"] == "memlock").unwrap();
    assert_eq!(memlock["wins"], "/etc/security/limits.d/99-lltune.conf");
    assert_eq!(memlock["in_effect"], true);
    assert_eq!(memlock["set_by"][0]["file"], "/etc/security/limits.conf");
    assert_eq!(memlock["set_by"][0]["line"], 19);
    assert!(conflicts.iter().all(|c| c["item"] != "nice"), "{v}");
    assert_eq!(v["warnings"], json!([]), "{v}");

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
    assert_eq!(v["changed"], true, "{v}");
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
fn limits_warns_about_files_pam_limits_never_reads_and_refuses_no_limit_lines() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    let one = json!([{"domain": "@trading", "type": "-", "item": "memlock", "value": "infinity"}]);
    let (v, code) =
        run_module("lltune_limits", &json!({"root": root, "limits": one, "file": "/etc/security/limits.d/lltune"}));
    assert_eq!(code, 0, "{v}");
    assert!(v["warnings"][0].as_str().unwrap().contains("only *.conf"), "{v}");
    // The value is written in pam_limits' canonical spelling.
    let (v, code) = run_module("lltune_limits", &json!({"root": root, "limits": one}));
    assert_eq!(code, 0, "{v}");
    let text = fs::read_to_string(root.join(OURS)).unwrap();
    assert!(text.contains("@trading\t-\tmemlock\tunlimited\n"), "{text}");
    // `@trading -` makes pam_limits stop with no limit at all for the group: refused, named.
    fs::write(root.join("etc/security/limits.d/50-admins.conf"), "@trading -\n").unwrap();
    let start = tree_snapshot(root);
    let two = json!([{"domain": "@trading", "type": "-", "item": "nofile", "value": 4096}]);
    let (v, code) = run_module("lltune_limits", &json!({"root": root, "limits": two}));
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["no_limits"][0]["file"], "/etc/security/limits.d/50-admins.conf");
    assert!(
        v["msg"].as_str().unwrap().contains(
            "/etc/security/limits.d/50-admins.conf:1: '@trading -' makes pam_limits apply no limit at all to @trading"
        ),
        "{v}"
    );
    assert_eq!(tree_snapshot(root), start);
}
