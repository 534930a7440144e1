//! lltune_bypass: kernel-bypass profiles (Onload, VMA, XLIO) on fixture trees with and without
//! the stacks — the two files it writes, Onload's cut-through decision from the sfc NICs'
//! speeds, check mode, idempotence, rollback byte for byte, refusals; generated variables
//! proven to be plain assignments by a real `sh`; `lltune apply` and `lltune audit` on the
//! config sections.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Rng, assert_same_tree, bin, host_fixture, run_module, tree_snapshot};

/// A host tree with Onload (launcher and kernel module), libvma, and sfc NICs at `speeds`
/// (Mb/s; `None`: no speed file, as on a link that is down).
fn bypass_host(speeds: &[Option<u32>]) -> tempfile::TempDir {
    let dir = host_fixture("el9-trading");
    let r = dir.path();
    for d in ["usr/bin", "usr/lib64", "sys/module/onload", "sys/bus/pci/drivers/sfc", "proc", "etc/profile.d"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::write(r.join("usr/bin/onload"), "#!/bin/sh\n").unwrap();
    fs::write(r.join("sys/module/onload/version"), "8.1.2.26\n").unwrap();
    fs::write(r.join("usr/lib64/libvma.so.9.8.40"), "").unwrap();
    fs::write(r.join("etc/profile.d/colorls.sh"), "# the distribution's\n").unwrap();
    for (i, s) in speeds.iter().enumerate() {
        let nic = r.join(format!("sys/class/net/sfc{i}"));
        fs::create_dir_all(nic.join("device")).unwrap();
        symlink("../../../../bus/pci/drivers/sfc", nic.join("device/driver")).unwrap();
        if let Some(s) = s {
            fs::write(nic.join("speed"), format!("{s}\n")).unwrap();
        }
    }
    dir
}

fn read(root: &Path, p: &str) -> String {
    fs::read_to_string(root.join(p.trim_start_matches('/'))).unwrap()
}

/// The variable lines of a written file (comments left out).
fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

#[test]
fn profiles_are_written_checked_idempotent_and_rolled_back_byte_for_byte() {
    let dir = bypass_host(&[Some(10000)]);
    let root = dir.path();
    let start = tree_snapshot(root);
    let args = json!({"root": root, "backup_id": "b1", "profiles": {
        "onload": {"tuning_level": "ultra_low_latency", "variables": {"EF_RXQ_SIZE": 2048}},
        "vma": {"tuning_level": "low_latency"},
    }});
    let mut check = args.clone();
    check["_ansible_check_mode"] = json!(true);
    check["_ansible_diff"] = json!(true);
    let (v, code) = run_module("lltune_bypass", &check);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["diff"].as_array().unwrap().len(), 4, "two files per stack: {v}");
    assert_same_tree(&start, &tree_snapshot(root), "check mode");

    let (v, code) = run_module("lltune_bypass", &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], true);
    let sh = read(root, "/etc/profile.d/lltune-onload.sh");
    // latency.opf, then latency-best.opf's additions (cut-through: the one sfc NIC runs at
    // 10 Gb/s), then the site's own.
    assert_eq!(
        lines(&sh),
        [
            "export EF_POLL_USEC=100000",
            "export EF_TCP_FASTSTART_INIT=0",
            "export EF_TCP_FASTSTART_IDLE=0",
            "export EF_CTPIO_MODE=ct",
            "export EF_CTPIO_SWITCH_BYPASS=1",
            "export EF_EPOLL_MT_SAFE=1",
            "export EF_RXQ_SIZE=2048",
        ]
    );
    let env = read(root, "/etc/lltune/onload.env");
    let bare: Vec<String> = lines(&sh).iter().map(|l| l.trim_start_matches("export ").to_string()).collect();
    assert_eq!(lines(&env), bare, "the EnvironmentFile twin holds the same assignments");
    assert_eq!(lines(&read(root, "/etc/profile.d/lltune-vma.sh")), ["export VMA_SPEC=latency"]);
    assert_eq!(lines(&read(root, "/etc/lltune/vma.env")), ["VMA_SPEC=latency"]);
    assert_eq!(v["profiles"]["onload"]["variables"]["EF_CTPIO_MODE"], "ct", "{v}");
    assert_eq!(v["warnings"], json!([]), "{v}");

    let mut again = args.clone();
    again["backup_id"] = json!("b2");
    let (v, _) = run_module("lltune_bypass", &again);
    assert_eq!(v["changed"], false, "{v}");

    // state: absent removes both files of a stack; rollback of that run brings them back.
    let (v, code) = run_module(
        "lltune_bypass",
        &json!({"root": root, "backup_id": "b3", "profiles": {"vma": {"state": "absent"}}}),
    );
    assert_eq!(code, 0, "{v}");
    assert!(!root.join("etc/profile.d/lltune-vma.sh").exists() && !root.join("etc/lltune/vma.env").exists());
    assert!(root.join("etc/profile.d/lltune-onload.sh").exists(), "other stacks are left alone");
    for b in ["b3", "b1"] {
        let (v, _) = run_module("lltune_rollback", &json!({"root": root, "backup": b}));
        assert_eq!(v["failed"], false, "{v}");
    }
    assert_same_tree(&start, &tree_snapshot(root), "after rollback");
}

#[test]
fn onload_cut_through_follows_the_sfc_nics_speeds_as_latency_best_does() {
    let ctpio = |speeds: &[Option<u32>]| -> (Option<String>, Vec<String>) {
        let dir = bypass_host(speeds);
        let (v, code) = run_module(
            "lltune_bypass",
            &json!({"root": dir.path(), "_ansible_check_mode": true, "profiles": {"onload": {"tuning_level": "ultra_low_latency"}}}),
        );
        assert_eq!(code, 0, "{v}");
        let mode = v["profiles"]["onload"]["variables"]["EF_CTPIO_MODE"].as_str().map(str::to_string);
        let warnings = v["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect();
        (mode, warnings)
    };
    assert_eq!(ctpio(&[Some(10000), Some(1000)]), (Some("ct".into()), vec![]));
    assert_eq!(ctpio(&[]), (Some("ct".into()), vec![]), "no sfc NIC: the vendor's script sets ct too");
    let (mode, w) = ctpio(&[Some(10000), Some(25000)]);
    assert_eq!(mode, None);
    assert!(w[0].contains("sfc1 (25000 Mb/s)") && w[0].contains("store-and-forward"), "{w:?}");
    let (mode, w) = ctpio(&[None]);
    assert_eq!(mode.as_deref(), Some("ct"));
    assert!(w[0].contains("link speed of sfc0 is unknown"), "{w:?}");
    // A site's own EF_CTPIO_MODE wins, and nothing is decided for it.
    let dir = bypass_host(&[Some(25000)]);
    let (v, _) = run_module(
        "lltune_bypass",
        &json!({"root": dir.path(), "_ansible_check_mode": true, "profiles": {"onload": {"tuning_level": "ultra_low_latency", "variables": {"EF_CTPIO_MODE": "sf"}}}}),
    );
    assert_eq!(v["profiles"]["onload"]["variables"]["EF_CTPIO_MODE"], "sf", "{v}");
    assert_eq!(v["warnings"], json!([]), "{v}");
}

/// The variables of a generated file, as a real `sh` sets them: `env -i sh -c '. FILE; env'`
/// less what `sh` sets by itself.
fn sourced(file: &Path) -> Vec<String> {
    let env = |script: &str| -> Vec<String> {
        let out = Command::new("env").args(["-i", "sh", "-c", script]).output().unwrap();
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
    };
    let base = env("env");
    let mut after = env(&format!(". '{}'; env", file.display()));
    after.retain(|l| !base.contains(l));
    after.sort();
    after
}

/// Generated names and values (every character a value may hold, at every position, and
/// values that look like shell: `-x`, `a=b`, `%s`): the written file passes `sh -n`, sourcing
/// it sets exactly the variables given, one per line, and each line alone sets one. Values a
/// shell or systemd would read otherwise are refused, and nothing is written.
#[test]
fn generated_profiles_are_plain_assignments_to_a_real_shell() {
    const OK: &[u8] = b"abcXYZ0189_.,:/+=@%-";
    const BAD: &[&str] = &[
        " ", "\t", "'", "\"", "$", "`", "\\", ";", "&", "|", "<", ">", "(", ")", "*", "?", "[", "~", "{", "#", "!",
        "\n", "\r", "é",
    ];
    let mut rng = Rng(0x5eed_b1a5);
    for case in 0..40 {
        let dir = bypass_host(&[Some(10000)]);
        let root = dir.path();
        let mut want: std::collections::BTreeMap<String, String> = Default::default();
        for _ in 0..1 + rng.below(6) {
            let name = format!("EF_G{}_{}", case, rng.below(1000));
            let len = 1 + rng.below(40);
            let value: String = (0..len).map(|_| OK[rng.below(OK.len())] as char).collect();
            want.insert(name, value);
        }
        let (v, code) = run_module(
            "lltune_bypass",
            &json!({"root": root, "profiles": {"onload": {"tuning_level": "balanced", "variables": want}}}),
        );
        assert_eq!(code, 0, "{v}");
        let file = root.join("etc/profile.d/lltune-onload.sh");
        let st = Command::new("sh").arg("-n").arg(&file).status().unwrap();
        assert!(st.success(), "sh -n {}", read(root, "/etc/profile.d/lltune-onload.sh"));
        let mut expected: Vec<String> = want.iter().map(|(k, v)| format!("{k}={v}")).collect();
        expected.extend(["EF_POLL_USEC=10000".to_string(), "EF_INT_DRIVEN=1".to_string()]);
        expected.sort();
        assert_eq!(sourced(&file), expected, "case {case}");
        // Each line alone is one assignment, of the value written (the env twin's line).
        let text = read(root, "/etc/profile.d/lltune-onload.sh");
        let twin = read(root, "/etc/lltune/onload.env");
        for (line, bare) in lines(&text).iter().zip(lines(&twin)) {
            let one = root.join("one.sh");
            fs::write(&one, format!("{line}\n")).unwrap();
            assert_eq!(sourced(&one), [bare.to_string()], "{line}");
        }
        // A value with one character a shell reads specially, anywhere in it: refused.
        let bad = BAD[rng.below(BAD.len())];
        let ok: String = (0..1 + rng.below(8)).map(|_| OK[rng.below(OK.len())] as char).collect();
        let at = rng.below(ok.len() + 1);
        let value = format!("{}{bad}{}", &ok[..at], &ok[at..]);
        let start = tree_snapshot(root);
        let (v, code) = run_module(
            "lltune_bypass",
            &json!({"root": root, "profiles": {"onload": {"tuning_level": "balanced", "variables": {"EF_X": value}}}}),
        );
        assert_eq!(code, 1, "{value:?}: {v}");
        assert!(v["msg"].as_str().unwrap().starts_with("option profiles.onload.variables.EF_X: "), "{v}");
        assert_same_tree(&start, &tree_snapshot(root), "refused");
    }
}

#[test]
fn refusals_name_the_option_and_write_nothing() {
    let dir = bypass_host(&[]);
    let root = dir.path();
    let start = tree_snapshot(root);
    for (profiles, want) in [
        (json!({}), "option profiles: give at least one stack"),
        (json!({"dpdk": {"tuning_level": "low_latency"}}), "option profiles: \"dpdk\" is not a stack"),
        (json!({"vma": {}}), "option profiles.vma.tuning_level: needed with state present"),
        (
            json!({"vma": {"tuning_level": "fastest"}}),
            "option profiles.vma.tuning_level: \"fastest\" is not a tuning level",
        ),
        (json!({"vma": {"tuning_level": "low_latency", "state": "gone"}}), "option profiles.vma.state:"),
        (
            json!({"vma": {"tuning_level": "low_latency", "variables": {"EF_POLL_USEC": 1}}}),
            "option profiles.vma.variables: \"EF_POLL_USEC\" is not a vma variable",
        ),
        (
            json!({"onload": {"tuning_level": "low_latency", "variables": {"LD_PRELOAD": "/tmp/x.so"}}}),
            "is not a onload variable",
        ),
        (
            json!({"onload": {"tuning_level": "low_latency", "variables": {"EF_A": true}}}),
            "option profiles.onload.variables.EF_A: expected a string or an integer, got a boolean",
        ),
        (
            json!({"onload": {"tuning_level": "low_latency", "path": "/etc/../etc/x.sh"}}),
            "option profiles.onload.path: \"/etc/../etc/x.sh\" must be an absolute file path",
        ),
        (
            json!({"onload": {"tuning_level": "low_latency"}, "vma": {"tuning_level": "low_latency", "env_file": "/etc/lltune/onload.env"}}),
            "/etc/lltune/onload.env is also a file of onload",
        ),
        (json!({"vma": {"tuning_level": "low_latency", "colour": 1}}), "unsupported option colour in profiles.vma"),
    ] {
        let (v, code) = run_module("lltune_bypass", &json!({"root": root, "profiles": profiles}));
        assert_eq!(code, 1, "{v}");
        assert!(v["msg"].as_str().unwrap().contains(want), "{want:?} not in {v}");
    }
    // (A file that is a link leading out of the root: the contract harness, contract_lltune_bypass.)
    assert_same_tree(&start, &tree_snapshot(root), "refused");
}

fn lltune(args: &[&str]) -> (i32, String) {
    let out = Command::new(bin("lltune")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// `lltune apply` carries out the sections where the stacks are; `lltune audit` refuses a
/// section whose stack the host lacks, naming the section and where it looked; gen-config
/// proposes a section only for a stack the host has.
#[test]
fn apply_carries_out_the_stack_sections_and_audit_refuses_absent_stacks() {
    let config = "version: 1\nonload:\n  generate_profile: true\n  tuning_level: low_latency\nvma:\n  generate_profile: true\n  tuning_level: ultra_low_latency\n  variables: {VMA_RX_POLL: -1}\n";
    let cfg = tempfile::NamedTempFile::new().unwrap();
    fs::write(cfg.path(), config).unwrap();
    let c = cfg.path().to_str().unwrap();

    let dir = bypass_host(&[Some(10000)]);
    let root = dir.path();
    let r = root.to_str().unwrap();
    let start = tree_snapshot(root);
    let (code, out) = lltune(&["audit", "-c", c, "--root", r]);
    assert_eq!(code, 0, "{out}");
    let (code, plan) = lltune(&["apply", "-c", c, "--plan", "--root", r]);
    assert_eq!(code, 0, "{plan}");
    assert!(plan.contains("lltune_bypass") && !plan.contains("not implemented"), "{plan}");
    assert_same_tree(&start, &tree_snapshot(root), "apply --plan");
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "a1", "--root", r]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        lines(&read(root, "/etc/profile.d/lltune-vma.sh")),
        ["export VMA_SPEC=ultra-latency", "export VMA_RX_POLL=-1"]
    );
    assert_eq!(lines(&read(root, "/etc/lltune/onload.env"))[0], "EF_POLL_USEC=100000");
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "a2", "--root", r]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to change"), "{out}");
    let (code, out) = lltune(&["rollback", "--backup", "a1", "--root", r]);
    assert_eq!(code, 0, "{out}");
    assert_same_tree(&start, &tree_snapshot(root), "after rollback");

    // gen-config on this host proposes both sections; the config it writes audits clean.
    let (code, generated) = lltune(&["gen-config", "--root", r]);
    assert_eq!(code, 0, "{generated}");
    assert!(
        generated.contains("\nonload:\n  generate_profile: true\n  tuning_level: \"low_latency\"\n"),
        "{generated}"
    );
    assert!(generated.contains("\nvma:\n") && !generated.contains("\nxlio:\n"), "{generated}");

    // A host without the stacks: each section refused, naming what was looked for.
    let bare = host_fixture("el9-trading");
    for d in ["usr/bin", "usr/lib64", "sys/module", "proc"] {
        fs::create_dir_all(bare.path().join(d)).unwrap();
    }
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let (code, out) = lltune(&[
        "audit",
        "-c",
        c,
        "--root",
        bare.path().to_str().unwrap(),
        "--output",
        out_file.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&fs::read_to_string(out_file.path()).unwrap()).unwrap();
    let errors: Vec<(&str, &str)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["message"].as_str().unwrap()))
        .collect();
    assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), ["onload", "vma"], "{errors:?}");
    assert!(
        errors[0].1.starts_with("this host has no onload: looked for the onload launcher (/usr/bin/onload"),
        "{errors:?}"
    );
    assert!(errors[0].1.contains("/sys/module/onload"), "{errors:?}");
    assert!(errors[1].1.starts_with("this host has no vma: looked for libvma.so* in /usr/lib64"), "{errors:?}");
    let (code, generated) = lltune(&["gen-config", "--root", bare.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{generated}");
    assert!(!generated.contains("\nonload:") && !generated.contains("\nvma:"), "{generated}");
    let (code, out) = lltune(&["apply", "-c", c, "--root", bare.path().to_str().unwrap()]);
    assert_ne!(code, 0, "apply runs the audit first: {out}");
    assert!(!bare.path().join("etc/profile.d").exists(), "nothing written");

    // Bad variables are audit errors at their field, before any host is looked at.
    let (_, issues) = lltune::config::parse(
        "version: 1\nxlio:\n  tuning_level: balanced\n  variables: {XLIO_A: \"$(id)\", VMA_B: 1}\n",
    );
    assert!(issues.is_empty(), "{issues:?}");
    let r = lltune::config::audit::audit_text(
        "version: 1\nxlio:\n  tuning_level: balanced\n  variables: {XLIO_A: \"$(id)\", VMA_B: 1}\n",
        None,
    );
    let fields: Vec<&str> = r.errors.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, ["xlio.variables.XLIO_A", "xlio.variables.VMA_B"], "{:?}", r.errors);
}
