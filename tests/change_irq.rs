//! lltune_irq through its real binary: the R640 RT worker's dump (766 IRQs) with the issue's
//! rules, check mode, apply, rerun, rollback byte for byte; managed IRQs, offline CPUs and
//! the refusals on the small tree `tests/fixtures/hosts/irq-small`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use crate::support::{assert_same_tree, copy_fixture, host_fixture, real_fixture, run_module, tree_snapshot};

/// A copy of the R640 dump with what the issue's rules need and the dump lacks: the netdev
/// `ens1f0` on the ConnectX PF 0000:19:00.0 (the dump has no /sys/class/net), and the
/// /etc/os-release and /etc/sysconfig of RHCOS (the dump has no /etc), so irqbalance's file
/// is RHEL's, created by the run.
fn r640() -> tempfile::TempDir {
    let dir = copy_fixture(&real_fixture("cnto-r640-rt-worker1"));
    let r = dir.path();
    let dev = r.join("sys/devices/pci0000:17/0000:17:02.0/0000:19:00.0");
    fs::create_dir_all(dev.join("net/ens1f0")).unwrap();
    symlink("../../../0000:19:00.0", dev.join("net/ens1f0/device")).unwrap();
    fs::create_dir_all(r.join("sys/class/net")).unwrap();
    symlink("../../devices/pci0000:17/0000:17:02.0/0000:19:00.0/net/ens1f0", r.join("sys/class/net/ens1f0")).unwrap();
    fs::create_dir_all(r.join("etc/sysconfig")).unwrap();
    fs::write(
        r.join("etc/os-release"),
        "NAME=\"Red Hat Enterprise Linux CoreOS\"\nID=\"rhcos\"\nID_LIKE=\"rhel fedora\"\n",
    )
    .unwrap();
    dir
}

/// The issue's example, fitted to the R640 (80 CPUs, 5-10 isolated on the command line).
fn issue_args(root: &Path) -> Value {
    json!({
        "root": root,
        "rules": [
            {"match": {"all": true}, "cpus": "0-1,40-41"},
            {"match": {"nic": "ens1f0"}, "cpus": "2-5", "spread": true},
            {"match": {"name": "nvme0q*"}, "cpus": "11-15"},
        ],
        "default_affinity": "0-1,40-41",
        "irqbalance_banned_cpus": "2-39,42-79",
    })
}

fn with(mut args: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        args[k] = v.clone();
    }
    args
}

fn read(root: &Path, p: &str) -> String {
    fs::read_to_string(root.join(p.trim_start_matches('/'))).unwrap()
}

#[test]
fn r640_issue_rules_check_apply_rerun_rollback() {
    let dir = r640();
    let root = dir.path();
    let start = tree_snapshot(root);
    let args = issue_args(root);

    // Check mode: the whole plan, nothing written.
    let t = Instant::now();
    let (check, code) = run_module(
        "lltune_irq",
        &with(args.clone(), json!({"_ansible_check_mode": true, "_ansible_diff": true, "backup_id": "r1"})),
    );
    let check_time = t.elapsed();
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["changed"], true);
    assert_same_tree(&start, &tree_snapshot(root), "check mode");
    assert!(!root.join("var/lib/lltune").exists(), "check mode made a backup folder");
    eprintln!("r640 check mode: {check_time:?} for {} changes", check["changes"].as_array().unwrap().len());

    // Every IRQ with a folder but the x86 timer and cascade IRQs is moved somewhere.
    let skipped: Vec<(u64, &str)> = check["skipped_irqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["irq"].as_u64().unwrap(), s["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped.iter().map(|s| s.0).collect::<Vec<_>>(), vec![0, 2], "{skipped:?}");
    assert!(skipped[0].1.contains("x86"));
    let rules = check["rules"].as_array().unwrap();
    assert_eq!(rules[0]["matched"], 766);
    // ens1f0's IRQs: the PF's async vector and its 63 completion vectors, found by name.
    assert_eq!(rules[1]["matched"], 64);
    assert_eq!(rules[2]["matched"], 81);
    let changes = check["changes"].as_array().unwrap();
    let by_irq = |n: u64| changes.iter().find(|c| c["irq"] == n).unwrap_or_else(|| panic!("irq {n} not changed"));
    // Spread in queue order: async, comp0, comp1, ... round robin over 2-5.
    assert_eq!(by_irq(268)["name"], "mlx5_async@pci:0000:19:00.0");
    assert_eq!(by_irq(268)["after"], "2");
    assert_eq!(by_irq(273)["after"], "3"); // comp0
    assert_eq!(by_irq(278)["after"], "4"); // comp1
    assert_eq!(by_irq(283)["after"], "5"); // comp2
    assert_eq!(by_irq(288)["after"], "2"); // comp3
    // A VF's queue (19:01.x) is not ens1f0's: the first rule's CPUs.
    let vf = changes.iter().find(|c| c["name"].as_str().unwrap().contains("@pci:0000:19:01.")).unwrap();
    assert_eq!(vf["after"], "0-1,40-41");
    assert_eq!(vf["rule"], 0);
    let nvme0 = changes.iter().find(|c| c["name"] == "nvme0q1").unwrap();
    assert_eq!((nvme0["after"].as_str(), nvme0["rule"].as_u64()), (Some("11-15"), Some(2)));
    // Left on isolated CPUs (5-10 from isolcpus=managed_irq,5-10): the queues spread onto 5.
    let left = check["on_isolated_cpus"].as_array().unwrap();
    assert_eq!(left.len(), 16, "{left:?}");
    assert!(left.iter().all(|l| l["isolated"] == "5"), "{left:?}");
    assert_eq!(check["isolated_cpus"], "5-10");
    // The diff: one line per IRQ, then the default mask, then the irqbalance file.
    let diff = check["diff"].as_array().unwrap();
    assert_eq!(diff.len(), 3);
    assert!(
        diff[0]["before"].as_str().unwrap().contains("irq 273 (mlx5_comp0@pci:0000:19:00.0): 20\n"),
        "irq 273 not in the diff"
    );
    assert!(diff[0]["after"].as_str().unwrap().contains("irq 273 (mlx5_comp0@pci:0000:19:00.0): 3\n"));
    assert_eq!(diff[1]["after"], "0000,00000300,00000003 (0-1,40-41)\n");
    assert_eq!(diff[2]["after_header"], "/etc/sysconfig/irqbalance");

    // Apply.
    let t = Instant::now();
    let (real, code) = run_module("lltune_irq", &with(args.clone(), json!({"_ansible_diff": true, "backup_id": "r1"})));
    eprintln!("r640 apply: {:?}", t.elapsed());
    assert_eq!(code, 0, "{real}");
    assert_eq!(real["changed"], true);
    assert_eq!(real["diff"], check["diff"]);
    assert_eq!(real["changes"], check["changes"]);
    assert_eq!(real["backup"], "/var/lib/lltune/backups/r1");
    assert_eq!(read(root, "/proc/irq/273/smp_affinity_list"), "3\n");
    assert_eq!(read(root, "/proc/irq/1/smp_affinity_list"), "0-1,40-41\n");
    assert_eq!(read(root, "/proc/irq/0/smp_affinity_list"), "0-79\n", "IRQ 0 was moved");
    assert_eq!(read(root, "/proc/irq/default_smp_affinity"), "0000,00000300,00000003\n");
    assert_eq!(
        read(root, "/etc/sysconfig/irqbalance"),
        "# irqbalance environment; IRQBALANCE_BANNED_CPULIST set by lltune_irq\nIRQBALANCE_BANNED_CPULIST=2-39,42-79\n"
    );

    // Rerun: nothing to do, no bundle.
    let t = Instant::now();
    let (again, code) = run_module("lltune_irq", &with(args.clone(), json!({"backup_id": "r2"})));
    eprintln!("r640 rerun: {:?}", t.elapsed());
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["changed"], false, "{}", again["changes"]);
    assert_eq!(again["changes"], json!([]));
    assert!(!root.join("var/lib/lltune/backups/r2").exists());

    // Rollback: byte for byte (the irqbalance file it created is removed).
    let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "r1"}));
    assert_eq!(code, 0, "{rb}");
    assert_same_tree(&start, &tree_snapshot(root), "after rollback");
}

#[test]
fn r640_managed_irqs_are_skipped_and_offline_cpus_refused() {
    let dir = r640();
    let root = dir.path();
    // debugfs as CONFIG_GENERIC_IRQ_DEBUGFS shows it: nvme0's I/O queues are managed.
    let dbg = root.join("sys/kernel/debug/irq/irqs");
    fs::create_dir_all(&dbg).unwrap();
    let text = fs::read_to_string(root.join("proc/interrupts")).unwrap();
    let mut managed = Vec::new();
    for line in text.lines().skip(1) {
        let Some((n, rest)) = line.split_once(':') else { continue };
        let Ok(n) = n.trim().parse::<u32>() else { continue };
        let name = rest.split_whitespace().last().unwrap_or("");
        let m = name.starts_with("nvme0q") && name != "nvme0q0";
        let mut s = "handler:  handle_edge_irq\ndstate:   0x00400200\n            IRQD_ACTIVATED\n".to_string();
        if m {
            s.push_str("            IRQD_AFFINITY_MANAGED\n");
            managed.push(n);
        }
        fs::write(dbg.join(n.to_string()), s).unwrap();
    }
    assert_eq!(managed.len(), 80, "nvme0q1..80");
    let start = tree_snapshot(root);
    let args = json!({"root": root, "rules": [{"match": {"name": "nvme0q*"}, "cpus": "11-15"}], "backup_id": "m"});
    let (v, code) = run_module("lltune_irq", &args);
    assert_eq!(code, 0, "{v}");
    let skipped = v["skipped_irqs"].as_array().unwrap();
    assert_eq!(skipped.len(), 80);
    assert!(skipped.iter().all(|s| s["reason"] == "managed"), "{skipped:?}");
    // Only the admin queue (not managed) moves.
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["name"], "nvme0q0");
    for n in &managed {
        assert_eq!(
            read(root, &format!("/proc/irq/{n}/smp_affinity_list")),
            read(&real_fixture("cnto-r640-rt-worker1"), &format!("/proc/irq/{n}/smp_affinity_list"))
        );
    }
    let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "m"}));
    assert_eq!(code, 0, "{rb}");
    assert_same_tree(&start, &tree_snapshot(root), "after rollback");

    // CPU 79 offline: a rule naming it fails before anything is written, naming rule and CPUs.
    fs::create_dir_all(root.join("sys/devices/system/cpu")).unwrap();
    fs::write(root.join("sys/devices/system/cpu/online"), "0-78\n").unwrap();
    let start = tree_snapshot(root);
    for (rules, want) in [
        (
            json!([{"match": {"all": true}, "cpus": "0-1"}, {"match": {"irq": [273]}, "cpus": "78-79"}]),
            "option rules[1].cpus: CPUs 79 are offline or not on this host",
        ),
        (
            json!([{"match": {"all": true}, "cpus": "0,80-81"}]),
            "option rules[0].cpus: CPUs 80-81 are offline or not on this host (online CPUs: 0-78)",
        ),
    ] {
        let (v, code) = run_module("lltune_irq", &json!({"root": root, "rules": rules}));
        assert_eq!(code, 1, "{v}");
        assert!(v["msg"].as_str().unwrap().contains(want), "{v}");
        assert!(v["msg"].as_str().unwrap().contains("nothing was changed"), "{v}");
        assert_same_tree(&start, &tree_snapshot(root), "a refused rule");
    }
}

#[test]
fn small_tree_results_and_refusals() {
    let dir = host_fixture("irq-small");
    let root = dir.path();
    let start = tree_snapshot(root);
    let refusals = [
        (
            json!({"rules": [{"match": {"nic": "eth9"}, "cpus": "0-1"}]}),
            "option rules[0].match.nic: no network interface eth9 on this host (/sys/class/net has: eth0, lo)",
        ),
        (json!({"rules": [{"match": {"nic": "lo"}, "cpus": "0-1"}]}), "option rules[0].match.nic: lo has no IRQs"),
        (
            json!({"rules": [{"match": {"nic": "../x"}, "cpus": "0-1"}]}),
            "option rules[0].match.nic: \"../x\" is not a network interface name",
        ),
        (
            json!({"rules": [{"match": {"all": true}, "cpus": "0-1"}, {"match": {"pci": "0000:3b:00.0"}, "cpus": "0-1"}]}),
            "option rules[1].match.pci: no PCI device 0000:3b:00.0 on this host (no /sys/bus/pci/devices/0000:3b:00.0)",
        ),
        (
            json!({"rules": [{"match": {"pci": "3b:00.0"}, "cpus": "0-1"}]}),
            "option rules[0].match.pci: \"3b:00.0\" is not a PCI address",
        ),
        (
            json!({"rules": [{"match": {"pci": "0000:03:00.0", "nic": "eth0"}, "cpus": "0-1"}]}),
            "option rules[0].match: give exactly one of all, nic, pci, name, irq (got 2)",
        ),
        (json!({"rules": [{"match": {"all": true}, "cpus": "0-x"}]}), "option rules[0].cpus: invalid CPU list"),
        (
            json!({"rules": [{"match": {"all": true}, "cpus": "3-1"}]}),
            "option rules[0].cpus: invalid CPU list \"3-1\": range 3-1 runs backwards",
        ),
        (json!({"rules": [{"match": {"all": true}, "cpus": ""}]}), "option rules[0].cpus: the CPU list is empty"),
        (
            json!({"rules": [{"match": {"all": true}, "cpus": "6-9"}]}),
            "option rules[0].cpus: CPUs 8-9 do not exist on this host (possible CPUs: 0-7)",
        ),
        (json!({"rules": []}), "option rules: give at least one rule"),
        (json!({}), "option rules: give at least one rule"),
        (
            json!({"rules": [{"match": {}, "cpus": "0"}]}),
            "option rules[0].match: give exactly one of all, nic, pci, name, irq (got 0)",
        ),
        (
            json!({"rules": [{"match": {"all": true, "irq": [9]}, "cpus": "0"}]}),
            "option rules[0].match: give exactly one of all, nic, pci, name, irq (got 2)",
        ),
        (json!({"rules": [{"match": {"all": false}, "cpus": "0"}]}), "option rules[0].match.all: must be true"),
        (json!({"rules": [{"match": {"irq": [9, 999]}, "cpus": "0"}]}), "option rules[0].match.irq: no IRQ 999"),
        (json!({"rules": [{"match": {"irq": [-1]}, "cpus": "0"}]}), "option rules[0].match.irq: expected IRQ numbers"),
        (
            json!({"rules": [{"match": {"name": "[x"}, "cpus": "0"}]}),
            "option rules[0].match.name: \"[x\" is not a glob",
        ),
        (json!({"rules": [{"match": {"irq": [9]}, "cpus": "0", "pin": true}]}), "unsupported option pin in rules[0]"),
        (json!({"rules": [{"match": {"irq": [9]}, "cpus": ["0"]}]}), "option rules[0].cpus: expected a CPU list"),
        (json!({"rules": {"match": {"irq": [9]}, "cpus": "0"}}), "option rules:"),
        (json!({"default_affinity": "9"}), "option default_affinity: CPUs 9 do not exist"),
        (json!({"irqbalance_banned_cpus": "2-"}), "option irqbalance_banned_cpus: invalid CPU list"),
        (
            json!({"rules": [{"match": {"irq": [9]}, "cpus": "1"}], "persistent": true}),
            "unsupported option persistent; supported options: backup_id, default_affinity, irqbalance_banned_cpus, option_names, persist, persist_planned, reasons, root, rules",
        ),
    ];
    for (args, want) in refusals {
        let mut a = args.clone();
        a["root"] = json!(root);
        let (v, code) = run_module("lltune_irq", &a);
        assert_eq!((code, &v["failed"]), (1, &json!(true)), "{args}: {v}");
        assert!(v["msg"].as_str().unwrap().contains(want), "{args}: {}", v["msg"]);
        assert_same_tree(&start, &tree_snapshot(root), &format!("refused {args}"));
        assert!(!root.join("var").exists(), "{args}: a refused run made a backup folder");
    }

    // A single IRQ by number, a glob with nothing to match (a warning), a number for cpus.
    let (v, code) = run_module(
        "lltune_irq",
        &json!({"root": root, "rules": [{"match": {"irq": 9}, "cpus": 1}, {"match": {"name": "mlx5*"}, "cpus": "0"}], "backup_id": "s"}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changes"], json!([{"irq": 9, "name": "acpi", "before": "0-7", "after": "1", "rule": 0}]));
    assert!(v["warnings"][0].as_str().unwrap().contains("no IRQ name matches \"mlx5*\""), "{v}");
    // rtc0 (delivered to CPU 7), eth0 (24 to CPU 4, 25 to 5) and the managed nvme0q2 (on 6) are on isolated CPUs.
    let left: Vec<u64> = v["on_isolated_cpus"].as_array().unwrap().iter().map(|l| l["irq"].as_u64().unwrap()).collect();
    assert_eq!(left, vec![8, 24, 25, 30]);

    // The NIC rule by msi_irqs and spread, managed IRQs skipped, irqbalance edited in place.
    let (v, code) = run_module(
        "lltune_irq",
        &json!({"root": root, "rules": [{"match": {"all": true}, "cpus": "0-1"}, {"match": {"nic": "eth0"}, "cpus": "2-3", "spread": true}],
                "irqbalance_banned_cpus": "4-7", "backup_id": "s"}),
    );
    assert_eq!(code, 0, "{v}");
    let after: Vec<(u64, &str)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["irq"].as_u64().unwrap(), c["after"].as_str().unwrap()))
        .collect();
    assert_eq!(after, vec![(8, "0-1"), (9, "0-1"), (24, "2"), (25, "3"), (26, "2"), (27, "3"), (28, "0-1")]);
    let reasons: Vec<(u64, &str)> = v["skipped_irqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["irq"].as_u64().unwrap(), c["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0, 2, 29, 30, 31]);
    assert_eq!(reasons[2].1, "managed");
    assert_eq!(reasons[4].1, "no smp_affinity_list");
    assert_eq!(v["on_isolated_cpus"], json!([{"irq": 30, "name": "nvme0q2", "cpus": "6", "isolated": "6"}]));
    let irqb = read(root, "/etc/sysconfig/irqbalance");
    assert!(irqb.contains("#IRQBALANCE_BANNED_CPULIST=\nIRQBALANCE_BANNED_CPULIST=4-7\n"), "{irqb}");
    assert!(irqb.ends_with("IRQBALANCE_ARGS=\n"));
    let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "s"}));
    assert_eq!(code, 0, "{rb}");
    assert_same_tree(&start, &tree_snapshot(root), "after rollback");

    // Debian: /etc/default/irqbalance when it exists.
    fs::remove_file(root.join("etc/sysconfig/irqbalance")).unwrap();
    fs::create_dir_all(root.join("etc/default")).unwrap();
    fs::write(root.join("etc/default/irqbalance"), "#Configuration for the irqbalance daemon\nENABLED=\"1\"\n")
        .unwrap();
    let (v, code) = run_module("lltune_irq", &json!({"root": root, "irqbalance_banned_cpus": ""}));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["irqbalance"]["file"], "/etc/default/irqbalance");
    assert_eq!(
        read(root, "/etc/default/irqbalance"),
        "#Configuration for the irqbalance daemon\nENABLED=\"1\"\nIRQBALANCE_BANNED_CPULIST=\n"
    );
}

/// Planning stays linear: a synthetic host of 4,096 IRQs on 256 CPUs plans in well under a
/// second in a release build (the bound here is loose for debug builds on a busy machine).
#[test]
fn planning_thousands_of_irqs_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let cpus = 256;
    let mut text: String = (0..cpus).map(|c| format!(" CPU{c}")).collect();
    text.push('\n');
    let zeros: String = (0..cpus).map(|_| " 0").collect();
    for n in 32..32 + 4096u32 {
        text.push_str(&format!("{n}:{zeros}  IR-PCI-MSI {}-edge  eth{}-TxRx-{}\n", 524288 + n, n % 8, n / 8));
        let d = r.join(format!("proc/irq/{n}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("smp_affinity_list"), "0-255\n").unwrap();
        fs::write(d.join("effective_affinity_list"), format!("{}\n", n % 256)).unwrap();
    }
    fs::create_dir_all(r.join("proc")).unwrap();
    fs::write(r.join("proc/interrupts"), text).unwrap();
    fs::create_dir_all(r.join("sys/devices/system/cpu")).unwrap();
    fs::write(r.join("sys/devices/system/cpu/online"), "0-255\n").unwrap();
    fs::write(r.join("proc/cmdline"), "isolcpus=8-255\n").unwrap();
    let t = Instant::now();
    let (v, code) = run_module(
        "lltune_irq",
        &json!({"root": r, "_ansible_check_mode": true, "rules": [
            {"match": {"all": true}, "cpus": "0-3"},
            {"match": {"name": "eth1-*"}, "cpus": "4-7", "spread": true},
            {"match": {"irq": (100..1100).collect::<Vec<u32>>()}, "cpus": "1"},
        ]}),
    );
    let took = t.elapsed();
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changes"].as_array().unwrap().len(), 4096);
    eprintln!("4096 IRQs planned in {took:?}");
    assert!(took.as_secs_f64() < 10.0, "planning 4096 IRQs took {took:?}");
}

/// A rule by PCI address: the device's msi_irqs on a small tree, and on the R640 dump (no
/// netdevs, no device folders) the IRQs whose names carry the address.
#[test]
fn pci_rules_take_the_irqs_of_the_device() {
    let dir = host_fixture("irq-small");
    let root = dir.path();
    fs::create_dir_all(root.join("sys/bus/pci/devices")).unwrap();
    symlink("../../../devices/pci0000:00/0000:00:02.0/0000:03:00.0", root.join("sys/bus/pci/devices/0000:03:00.0"))
        .unwrap();
    let (v, code) = run_module(
        "lltune_irq",
        &json!({"root": root, "rules": [{"match": {"pci": "0000:03:00.0"}, "cpus": "2-3", "spread": true}], "_ansible_check_mode": true}),
    );
    assert_eq!(code, 0, "{v}");
    let after: Vec<(u64, &str)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["irq"].as_u64().unwrap(), c["after"].as_str().unwrap()))
        .collect();
    // msi_irqs names 26 and 27; the MSI hwirqs of 24 and 25 encode the device too.
    assert_eq!(after, vec![(24, "2"), (25, "3"), (26, "2"), (27, "3")], "{v}");

    let dir = r640();
    let root = dir.path();
    let start = tree_snapshot(root);
    // 0000:19:00.1 is the ConnectX's second PF, which has no netdev in the dump.
    let args =
        json!({"root": root, "rules": [{"match": {"pci": "0000:19:00.1"}, "cpus": "0-1,40-41"}], "backup_id": "p1"});
    let (v, code) = run_module("lltune_irq", &with(args.clone(), json!({"_ansible_check_mode": true})));
    assert_eq!(code, 0, "{v}");
    assert_same_tree(&start, &tree_snapshot(root), "check mode");
    assert_eq!(v["rules"][0]["matched"], 64, "{v}");
    let (v, code) = run_module("lltune_irq", &args);
    assert_eq!(code, 0, "{v}");
    assert!(v["warnings"].as_array().is_none_or(|w| w.iter().all(|w| !w.to_string().contains("no IRQ"))), "{v}");
    let interrupts = read(root, "/proc/interrupts");
    let mut n = 0;
    for line in interrupts.lines().filter(|l| l.contains("@pci:0000:19:00.1")) {
        let irq = line.split(':').next().unwrap().trim();
        assert_eq!(read(root, &format!("/proc/irq/{irq}/smp_affinity_list")), "0-1,40-41\n", "irq {irq}");
        n += 1;
    }
    assert_eq!(n, 64);
    // 19:00.0 is not taken: comp0 stays where it was.
    assert_eq!(read(root, "/proc/irq/273/smp_affinity_list"), "20\n");
    let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "p1"}));
    assert_eq!(code, 0, "{rb}");
    assert_same_tree(&start, &tree_snapshot(root), "after rollback");
}
