//! lltune_nic: a real kernel (a veth pair in a private network namespace), the refusals that
//! must leave everything untouched, interface selection by PCI address and driver, and the
//! journal's ethtool entries read back as untrusted input.
//!
//! The live test re-runs itself under `unshare --net --mount` (as `ethtool_live` does) and
//! mounts a tmpfs on /var/lib there, so the journal of a run on `/` stays inside the test.

use std::fs;

use lltune::sys::ethtool;
use serde_json::{Value, json};

use crate::support::{self, assert_same_tree, host_fixture, run_module, sh, tree_snapshot};

const QUEUES: u32 = 4;

#[test]
fn lltune_nic_on_a_veth_pair_in_a_network_namespace() {
    support::in_netns("change_nic::lltune_nic_on_a_veth_pair_in_a_network_namespace", in_namespace);
}

/// (rx-gro, tx-tcp-segmentation) active, and the (rx, tx) channel counts of veth0.
fn kernel_state() -> ((bool, bool), (u32, u32)) {
    let f = ethtool::get_features("veth0").unwrap();
    let on = |n: &str| f.iter().find(|x| x.name == n).unwrap_or_else(|| panic!("no {n}")).active;
    let c = ethtool::get_channels("veth0").unwrap();
    ((on("rx-gro"), on("tx-tcp-segmentation")), (c.rx_count, c.tx_count))
}

fn rps0() -> String {
    fs::read_to_string("/sys/class/net/veth0/queues/rx-0/rps_cpus").unwrap()
}

fn in_namespace() {
    support::add_veth_pair(QUEUES);
    // The journal of a run on `/` goes to /var/lib/lltune: keep it in this mount namespace.
    sh("mount", &["-t", "tmpfs", "tmpfs", "/var/lib"]);
    // Start from GRO and TSO on, whatever this kernel's veth defaults are.
    let gro = |on: bool| {
        let f = ethtool::get_features("veth0").unwrap();
        let idx: Vec<(usize, bool)> = f
            .iter()
            .filter(|x| ["rx-gro", "tx-tcp-segmentation"].contains(&x.name.as_str()))
            .map(|x| (x.index, on))
            .collect();
        ethtool::set_features("veth0", &idx).unwrap();
    };
    gro(true);
    let start = kernel_state();
    assert_eq!(start, ((true, true), (QUEUES, QUEUES)));
    let rps_start = rps0();

    let args = json!({
        "interfaces": [{"name": "veth0", "features": {"gro": false, "tso": "off"}, "channels": {"rx": 2, "tx": 2}, "rps_cpus": "0"}],
        "backup_id": "live1",
    });
    let with = |extra: Value| {
        let mut a = args.clone();
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        a
    };

    // Check mode: the real run predicted, nothing changed, no bundle.
    let (check, code) = run_module("lltune_nic", &with(json!({"_ansible_check_mode": true, "_ansible_diff": true})));
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["changed"], true, "{check}");
    assert_eq!(check["simulated"], false, "{check}");
    assert_eq!(kernel_state(), start);
    assert_eq!(rps0(), rps_start);
    assert!(!std::path::Path::new("/var/lib/lltune/backups/live1").exists());
    let diff = check["diff"].to_string();
    assert!(diff.contains("ethtool -k veth0") && diff.contains("rx-gro: off"), "{diff}");
    assert!(diff.contains("ethtool -l veth0") && diff.contains("rx: 2"), "{diff}");

    // For real: the kernel reports the new values.
    let (real, code) = run_module("lltune_nic", &with(json!({"_ansible_diff": true})));
    assert_eq!(code, 0, "{real}");
    assert_eq!(real["changed"], true);
    assert_eq!(real["diff"], check["diff"]);
    assert_eq!(real["backup"], "/var/lib/lltune/backups/live1");
    assert_eq!(kernel_state(), ((false, false), (2, 2)));
    assert_eq!(rps0().trim_start_matches('0').trim(), "1", "rps_cpus of rx-0: {}", rps0());
    let iface = &real["interfaces"][0];
    assert_eq!(iface["queues_recreated"], true, "{iface}");
    assert_eq!(iface["settings"]["features.rx-gro"], json!({"before": true, "after": false, "changed": true}));
    assert_eq!(iface["settings"]["channels.rx"], json!({"before": QUEUES, "after": 2, "changed": true}));
    assert!(real["warnings"][0].as_str().unwrap().contains("lltune_irq"), "{real}");
    let journal: Value =
        serde_json::from_slice(&fs::read("/var/lib/lltune/backups/live1/journal.json").unwrap()).unwrap();
    let kinds: Vec<&str> = journal["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"ethtool") && kinds.contains(&"runtime"), "{journal}");

    // Again: nothing to do.
    let (again, code) = run_module("lltune_nic", &with(json!({"backup_id": "live2"})));
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["changed"], false, "{again}");
    assert!(!std::path::Path::new("/var/lib/lltune/backups/live2").exists());

    // Rollback: features, channels and RPS as they were.
    let (rb, code) = run_module("lltune_rollback", &json!({"backup": "live1"}));
    assert_eq!(code, 0, "{rb}");
    assert_eq!(rb["changed"], true);
    assert_eq!(kernel_state(), start, "{rb}");
    assert_eq!(rps0(), rps_start);
    let kinds: Vec<&str> = rb["restored"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"ethtool"), "{rb}");

    // A fixed feature on the real device: refused, nothing changed.
    let fixed = ethtool::get_features("veth0").unwrap().into_iter().find(|f| f.is_fixed()).unwrap();
    let (v, code) = run_module(
        "lltune_nic",
        &json!({"interfaces": [{"name": "veth0", "features": {"gro": false, fixed.name.clone(): !fixed.active}}]}),
    );
    assert_eq!(code, 1, "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.contains("veth0") && msg.contains(&fixed.name) && msg.contains("fixed"), "{msg}");
    assert_eq!(kernel_state(), start);
    // Rings: veth has none.
    let (v, code) = run_module("lltune_nic", &json!({"interfaces": [{"name": "veth0", "rings": {"rx": 512}}]}));
    assert_eq!(code, 1, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("veth0: rings.rx: the device does not support"), "{v}");
}

// ---- Refusals: each names the interface and the setting, and writes nothing ----

fn refused(args: Value, wants: &[&str]) {
    let dir = host_fixture("nic-2port");
    let root = dir.path();
    let before = tree_snapshot(root);
    let mut a = args.clone();
    a["root"] = json!(root);
    for check in [true, false] {
        a["_ansible_check_mode"] = json!(check);
        let (v, code) = run_module("lltune_nic", &a);
        assert_eq!(code, 1, "{args}: {v}");
        assert_eq!(v["failed"], true);
        assert_eq!(v["changed"], false);
        let msg = v["msg"].as_str().unwrap();
        for w in wants {
            assert!(msg.contains(w), "{args}: {w:?} not in {msg:?}");
        }
    }
    assert_same_tree(&before, &tree_snapshot(root), &format!("refused {args}"));
    assert!(!root.join("var/lib/lltune/backups").exists(), "a refused run made a bundle");
}

#[test]
fn refusals_name_the_interface_and_the_setting_and_write_nothing() {
    // A [fixed] feature, even beside settings that could be applied.
    refused(
        json!({"interfaces": [{"name": "ens1f0", "rings": {"rx": 4096}, "features": {"tx-checksum-ipv4": true}}]}),
        &["ens1f0", "features.tx-checksum-ipv4", "fixed", "stays off"],
    );
    // A ring above the device's maximum.
    refused(
        json!({"interfaces": [{"name": "ens1f0", "features": {"gro": false}, "rings": {"rx": 9000}}]}),
        &["ens1f0", "rings.rx", "9000", "maximum of 8192"],
    );
    // Channels above the maximum; a ring the device does not have.
    refused(json!({"interfaces": [{"name": "ens1f1", "channels": {"combined": 9}}]}), &["ens1f1", "channels.combined"]);
    refused(json!({"interfaces": [{"name": "ens1f1", "rings": {"rx-mini": 64}}]}), &["ens1f1", "rings.rx-mini"]);
    // See: issue 17. No channel left for RX and TX: the kernel refuses it, so does the plan.
    refused(
        json!({"interfaces": [{"name": "ens1f0", "channels": {"combined": 0}}]}),
        &["ens1f0: channels: combined 0 with rx 0 and tx 0 leaves no RX channel; the kernel refuses it"],
    );
    // A feature name that is neither the kernel's nor an ethtool alias.
    refused(
        json!({"interfaces": [{"driver": "mlx5_core", "features": {"rx-grow": false}}]}),
        &["ens1f0", "features.rx-grow", "unknown feature"],
    );
    // An interface that is not there, by name, PCI address and driver.
    refused(json!({"interfaces": [{"name": "ens9f0", "features": {"gro": false}}]}), &["interfaces[0]", "ens9f0"]);
    refused(json!({"interfaces": [{"pci": "0000:af:00.0", "rings": {"rx": 512}}]}), &["0000:af:00.0"]);
    refused(json!({"interfaces": [{"driver": "ice", "rings": {"rx": 512}}]}), &["driver ice"]);
    // Unknown options, at the top and inside an entry.
    refused(json!({"interfaces": [{"name": "ens1f0"}], "persistent": true}), &["unsupported option persistent"]);
    refused(
        json!({"interfaces": [{"name": "ens1f0", "coalesce": {"rx-usec": 0}}]}),
        &["interfaces[0].coalesce", "rx-usec"],
    );
    refused(json!({"interfaces": [{"name": "ens1f0", "gro": false}]}), &["unsupported option gro"]);
    refused(json!({"interfaces": [{"name": "ens1f0", "rps_cpus": "2-9"}]}), &["ens1f0", "rps_cpus", "8-9"]);
    refused(
        json!({"interfaces": [{"name": "ens1f0", "driver": "mlx5_core"}]}),
        &["exactly one of name, pci, driver, all"],
    );
    // No captured ethtool state for lo on this tree.
    refused(json!({"interfaces": [{"name": "lo", "features": {"gro": false}}]}), &["lo", "no captured ethtool state"]);
}

#[test]
fn selection_by_driver_and_pci_later_entries_win_and_rollback_restores() {
    let dir = host_fixture("nic-2port");
    let root = dir.path();
    let before = tree_snapshot(root);
    let args = json!({"root": root, "backup_id": "d", "interfaces": [
        {"driver": "mlx5_core", "rings": {"rx": "max", "tx": 4096}, "pause": {"autoneg": false, "rx": "off", "tx": "off"}, "rps_flow_cnt": 1000},
        {"pci": "0000:3b:00.1", "rings": {"tx": 2048}},
    ]});
    let (v, code) = run_module("lltune_nic", &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["simulated"], true);
    let ifs = v["interfaces"].as_array().unwrap();
    assert_eq!(ifs.len(), 2);
    assert_eq!(ifs[0]["name"], "ens1f0");
    assert_eq!(ifs[0]["settings"]["rings.tx"]["after"], 4096);
    assert_eq!(ifs[1]["settings"]["rings.tx"]["after"], 2048, "the later entry wins");
    assert_eq!(ifs[1]["settings"]["rings.rx"]["after"], 8192, "max is the device's maximum");
    // The kernel rounds rps_flow_cnt up to a power of two; so does the plan.
    assert_eq!(ifs[0]["settings"]["queues.rx-3.rps_flow_cnt"]["after"], 1024);
    let cap: Value =
        serde_json::from_slice(&fs::read(root.join("var/lib/lltune/capture/ethtool/ens1f1.json")).unwrap()).unwrap();
    assert_eq!(cap["rings"]["tx_pending"], 2048);
    assert_eq!(cap["pause"]["rx_pause"], false);
    let flow = root.join("sys/class/net/ens1f1/queues/rx-2/rps_flow_cnt");
    assert_eq!(fs::read_to_string(&flow).unwrap(), "1024\n");
    // A scan of the tree sees what the module set.
    let (facts, _) = run_module("lltune_facts", &json!({"root": root}));
    let nic = facts["ansible_facts"]["lltune"]["nics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "ens1f1")
        .cloned()
        .unwrap();
    assert_eq!(nic["rings"]["rx_pending"], 8192, "{nic}");
    let (again, _) = run_module("lltune_nic", &args);
    assert_eq!(again["changed"], false, "{again}");
    let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "d"}));
    assert_eq!(code, 0, "{rb}");
    assert_same_tree(&before, &tree_snapshot(root), "after rollback");
}

#[test]
fn an_edited_ethtool_journal_entry_is_refused() {
    let dir = host_fixture("nic-2port");
    let root = dir.path();
    let bundle = root.join("var/lib/lltune/backups/evil");
    fs::create_dir_all(&bundle).unwrap();
    let entry = |ifname: &str, previous: Value| json!({"kind": "ethtool", "ifname": ifname, "group": "rings", "module": "lltune_nic", "previous": previous});
    for e in [
        entry("../../etc", json!({})),
        entry("a-name-of-16-chr", json!({})),
        entry("eth 0", json!({})),
        entry("eth0", json!("not a mapping")),
        json!({"kind": "ethtool", "ifname": "eth0", "group": "firmware", "module": "lltune_nic", "previous": {}}),
    ] {
        let journal = json!({"version": 1, "backup_id": "evil", "created": "20261130T000000Z", "entries": [e]});
        fs::write(bundle.join("journal.json"), serde_json::to_vec(&journal).unwrap()).unwrap();
        let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "evil"}));
        assert_eq!(code, 1, "{e}: {v}");
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.contains("refused") || msg.contains("not a valid journal"), "{e}: {msg}");
    }
    // A valid entry of a live host's bundle rolled back on a tree: no ioctl, a warning.
    let journal = json!({"version": 1, "backup_id": "evil", "created": "20261130T000000Z",
        "entries": [entry("ens1f0", json!({"rx_pending": 512}))]});
    fs::write(bundle.join("journal.json"), serde_json::to_vec(&journal).unwrap()).unwrap();
    let (v, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "evil"}));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], false);
    assert!(v["warnings"][0].as_str().unwrap().contains("only read on a live host"), "{v}");
}

// See: issue 17 (capture numbers beyond 64 bits were read and rewritten as floats; a ring
// above its maximum was accepted).
#[test]
fn a_capture_with_an_impossible_number_is_refused_naming_interface_and_field() {
    let capture = "var/lib/lltune/capture/ethtool/ens1f0.json";
    let cases: &[(&str, &str, &str)] = &[
        (
            "\"rx_pending\": 1024",
            "\"rx_pending\": 123456789012345678901234",
            "rings.rx_pending: 123456789012345678901234 is not an integer that fits in 64 bits",
        ),
        (
            "\"phc_index\": 0",
            "\"phc_index\": 0, \"vendor_extra\": [1, 18446744073709551616]",
            "vendor_extra[1]: 18446744073709551616 is not an integer that fits in 64 bits",
        ),
        ("\"rx_pending\": 1024", "\"rx_pending\": 9000", "rings.rx_pending 9000 is above rx_max_pending 8192"),
        ("\"combined_count\": 4", "\"combined_count\": 9", "channels.combined_count 9 is above max_combined 8"),
        ("\"rx_count\": 0", "\"rx_count\": 1", "channels.rx_count 1 is above max_rx 0"),
    ];
    for (from, to, want) in cases {
        let dir = host_fixture("nic-2port");
        let root = dir.path();
        let text = fs::read_to_string(root.join(capture)).unwrap();
        assert!(text.contains(from), "{from}");
        fs::write(root.join(capture), text.replacen(from, to, 1)).unwrap();
        let before = fs::read(root.join(capture)).unwrap();
        let (v, code) = run_module(
            "lltune_nic",
            &json!({"root": root, "interfaces": [{"name": "ens1f0", "coalesce": {"rx-usecs": 0}}]}),
        );
        assert_eq!((code, v["changed"].as_bool()), (1, Some(false)), "{to}: {v}");
        let msg = v["msg"].as_str().unwrap();
        assert!(
            msg.contains("ens1f0: /var/lib/lltune/capture/ethtool/ens1f0.json") && msg.contains(want),
            "{to}: {msg}"
        );
        assert_eq!(fs::read(root.join(capture)).unwrap(), before, "{to}: the capture was rewritten");
        // A scan of the tree names the file, the interface and the field, and goes on.
        let (f, code) = run_module("lltune_facts", &json!({"root": root}));
        assert_eq!(code, 0, "{f}");
        let w = f["warnings"].to_string();
        assert!(w.contains("ens1f0.json: interface ens1f0: ") && w.contains(want), "{to}: {w}");
    }
}

/// `all`: RPS and RFS off on every netdev but loopback, physical and virtual alike, on a tree;
/// a netdev without queues is named and skipped; check mode, rerun and rollback as always.
#[test]
fn all_turns_rps_and_rfs_off_on_every_netdev_but_loopback() {
    let dir = host_fixture("nic-2port");
    let root = dir.path();
    let q = |ifname: &str, rel: &str| root.join(format!("sys/class/net/{ifname}/queues/{rel}"));
    for n in 0..4 {
        fs::write(q("ens1f0", &format!("rx-{n}/rps_cpus")), "0f\n").unwrap();
        fs::write(q("ens1f1", &format!("rx-{n}/rps_flow_cnt")), "256\n").unwrap();
    }
    fs::write(q("lo", "rx-0/rps_cpus"), "01\n").unwrap();
    // A bridge (virtual, with one RX queue) and a netdev without queues.
    for (name, queues) in [("br0", true), ("dummy0", false)] {
        let dev = root.join(format!("sys/devices/virtual/net/{name}"));
        fs::create_dir_all(&dev).unwrap();
        fs::write(dev.join("type"), "1\n").unwrap();
        if queues {
            fs::create_dir_all(dev.join("queues/rx-0")).unwrap();
            fs::write(dev.join("queues/rx-0/rps_cpus"), "ff\n").unwrap();
            fs::write(dev.join("queues/rx-0/rps_flow_cnt"), "128\n").unwrap();
        }
        std::os::unix::fs::symlink(
            format!("../../devices/virtual/net/{name}"),
            root.join(format!("sys/class/net/{name}")),
        )
        .unwrap();
    }
    let start = tree_snapshot(root);
    let args =
        json!({"root": root, "backup_id": "all", "interfaces": [{"all": true, "rps_cpus": "", "rps_flow_cnt": 0}]});
    let mut check = args.clone();
    check["_ansible_check_mode"] = json!(true);
    let (c, code) = run_module("lltune_nic", &check);
    assert_eq!(code, 0, "{c}");
    assert_eq!(c["changed"], true);
    assert_same_tree(&start, &tree_snapshot(root), "check mode");
    let (v, code) = run_module("lltune_nic", &args);
    assert_eq!(code, 0, "{v}");
    let names: Vec<&str> = v["interfaces"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["br0", "dummy0", "ens1f0", "ens1f1"], "{v}");
    for (ifname, rel) in [("ens1f0", "rx-3/rps_cpus"), ("br0", "rx-0/rps_cpus")] {
        assert_eq!(fs::read_to_string(q(ifname, rel)).unwrap().trim_start_matches('0').trim(), "", "{ifname} {rel}");
    }
    for (ifname, rel) in [("ens1f1", "rx-2/rps_flow_cnt"), ("br0", "rx-0/rps_flow_cnt")] {
        assert_eq!(fs::read_to_string(q(ifname, rel)).unwrap(), "0\n", "{ifname} {rel}");
    }
    assert_eq!(fs::read_to_string(q("lo", "rx-0/rps_cpus")).unwrap(), "01\n", "loopback is left alone");
    let w = v["warnings"].to_string();
    assert!(w.contains("all: skipped dummy0: ") && w.contains("dummy0/queues"), "{w}");
    let mut again = args.clone();
    again["backup_id"] = json!("all2");
    let (again, _) = run_module("lltune_nic", &again);
    assert_eq!(again["changed"], false, "{again}");
    let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "all"}));
    assert_eq!(code, 0, "{rb}");
    assert_same_tree(&start, &tree_snapshot(root), "after rollback");
    // `all` takes only queue settings.
    refused(
        json!({"interfaces": [{"all": true, "features": {"gro": false}}]}),
        &["interfaces[0]: all takes only the queue settings"],
    );
    refused(
        json!({"interfaces": [{"all": true, "name": "ens1f0", "rps_cpus": ""}]}),
        &["exactly one of name, pci, driver, all"],
    );
}

#[test]
fn all_on_every_netdev_of_a_network_namespace() {
    support::in_netns("change_nic::all_on_every_netdev_of_a_network_namespace", all_in_namespace);
}

/// `all` on a real kernel: the veth pair's queues, not loopback's; rollback restores them.
fn all_in_namespace() {
    support::add_veth_pair(2);
    sh("mount", &["-t", "tmpfs", "tmpfs", "/var/lib"]);
    let file = |ifname: &str, rel: &str| format!("/sys/class/net/{ifname}/queues/{rel}");
    let get = |ifname: &str, rel: &str| fs::read_to_string(file(ifname, rel)).unwrap();
    let set = |ifname: &str, rel: &str, v: &str| fs::write(file(ifname, rel), v).unwrap();
    set("veth0", "rx-0/rps_cpus", "1");
    set("veth1", "rx-1/rps_cpus", "1");
    set("veth1", "rx-1/rps_flow_cnt", "64");
    set("lo", "rx-0/rps_cpus", "1");
    let mask = |t: String| t.trim().trim_start_matches(['0', ',']).to_string();
    let before = (get("veth0", "rx-0/rps_cpus"), get("veth1", "rx-1/rps_flow_cnt"));
    assert_eq!((mask(before.0.clone()), before.1.trim()), ("1".to_string(), "64"));

    let args = json!({"interfaces": [{"all": true, "rps_cpus": "", "rps_flow_cnt": 0}], "backup_id": "all1"});
    let mut check = args.clone();
    check["_ansible_check_mode"] = json!(true);
    let (c, code) = run_module("lltune_nic", &check);
    assert_eq!(code, 0, "{c}");
    assert_eq!(c["changed"], true, "{c}");
    assert_eq!(mask(get("veth0", "rx-0/rps_cpus")), "1", "check mode wrote");
    let (v, code) = run_module("lltune_nic", &args);
    assert_eq!(code, 0, "{v}");
    let names: Vec<&str> = v["interfaces"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"veth0") && names.contains(&"veth1") && !names.contains(&"lo"), "{names:?}");
    for (ifname, q) in [("veth0", 0), ("veth0", 1), ("veth1", 0), ("veth1", 1)] {
        assert_eq!(mask(get(ifname, &format!("rx-{q}/rps_cpus"))), "", "{ifname} rx-{q}");
        assert_eq!(get(ifname, &format!("rx-{q}/rps_flow_cnt")).trim(), "0", "{ifname} rx-{q}");
    }
    assert_eq!(mask(get("lo", "rx-0/rps_cpus")), "1", "loopback is left alone");
    let mut again = args.clone();
    again["backup_id"] = json!("all2");
    let (again, _) = run_module("lltune_nic", &again);
    assert_eq!(again["changed"], false, "{again}");
    let (rb, code) = run_module("lltune_rollback", &json!({"backup": "all1"}));
    assert_eq!(code, 0, "{rb}");
    assert_eq!((get("veth0", "rx-0/rps_cpus"), get("veth1", "rx-1/rps_flow_cnt")), before);
}
