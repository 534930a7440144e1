//! SIOCETHTOOL on a veth pair inside a private network namespace: the ioctl layer and the NIC
//! facts against a real kernel, without touching the host's interfaces.
//!
//! The test re-runs itself under `unshare --net --mount` (the child sees only its own veth0 and
//! veth1 once /sys is remounted in the new mount namespace). Where namespaces are not allowed
//! it skips with a message, except under CI=true, where it must run.
//!
//! Recipe to do the same by hand:
//! `unshare -n -m sh -c 'mount -t sysfs sysfs /sys; ip link add veth0 type veth peer name veth1; ethtool -i veth0'`

use lltune::sys::ethtool;
use serde_json::{Value, json};

use crate::support;

const QUEUES: u32 = 4;

#[test]
fn veth_pair_in_a_network_namespace() {
    support::in_netns("ethtool_live::veth_pair_in_a_network_namespace", || {
        support::add_veth_pair(QUEUES);
        ioctl_layer_on_veth();
        facts_module_reports_veth();
    });
}

fn ioctl_layer_on_veth() {
    let info = ethtool::get_drvinfo("veth0").unwrap();
    assert_eq!(info.driver, "veth");

    let features = ethtool::get_features("veth0").unwrap();
    let names: Vec<&str> = features.iter().map(|f| f.name.as_str()).collect();
    for known in ["rx-gro", "tx-checksum-ip-generic", "tx-generic-segmentation"] {
        assert!(names.contains(&known), "{known} missing from {names:?}");
    }
    // Features veth cannot change at all are fixed (e.g. "rx-lro", "hw-tc-offload").
    assert!(features.iter().any(|f| f.is_fixed()), "{features:?}");
    let gro_at = features.iter().position(|f| f.name == "rx-gro").unwrap();
    let gro = features[gro_at].index;

    // veth reports its queue counts as channels and lets rx/tx be changed within max.
    let ch = ethtool::get_channels("veth0").unwrap();
    assert_eq!((ch.max_rx, ch.max_tx), (QUEUES, QUEUES), "{ch:?}");
    assert_eq!((ch.rx_count, ch.tx_count), (QUEUES, QUEUES), "{ch:?}");
    let want = ethtool::Channels { rx_count: 2, tx_count: 2, ..ch };
    ethtool::set_channels("veth0", &want).unwrap();
    let got = ethtool::get_channels("veth0").unwrap();
    assert_eq!((got.rx_count, got.tx_count), (2, 2), "{got:?}");
    // Beyond the maximum: the kernel refuses, and that is not "unsupported".
    let too_many = ethtool::Channels { rx_count: QUEUES + 1, ..got };
    let err = ethtool::set_channels("veth0", &too_many).unwrap_err();
    assert_eq!(err.errno, nix::errno::Errno::EINVAL);
    assert!(!err.is_unsupported());
    assert!(err.to_string().starts_with("SIOCETHTOOL ETHTOOL_SCHANNELS on veth0: "), "{err}");

    // Features can be switched off and back by their index.
    let before = features[gro_at].active;
    let flags = ethtool::set_features("veth0", &[(gro, !before)]).unwrap();
    let find_gro = || ethtool::get_features("veth0").unwrap().into_iter().find(|f| f.index == gro).unwrap();
    let after = find_gro();
    assert_eq!(after.active, !before, "{flags:?} {after:?}");
    ethtool::set_features("veth0", &[(gro, before)]).unwrap();
    assert_eq!(find_gro().active, before);

    // veth has no rings, coalescing or flow control.
    let rings = ethtool::get_ringparam("veth0").unwrap_err();
    assert!(rings.is_unsupported(), "{rings}");
    assert_eq!(rings.to_string(), "SIOCETHTOOL ETHTOOL_GRINGPARAM on veth0: Operation not supported");
    assert!(ethtool::get_coalesce("veth0").unwrap_err().is_unsupported());
    assert!(ethtool::get_pauseparam("veth0").unwrap_err().is_unsupported());

    // Software timestamping only, no PHC.
    let ts = ethtool::get_ts_info("veth0").unwrap();
    assert_eq!(ts.phc(), None);
    assert!(ts.so_timestamping_names().contains(&"software-receive".to_string()), "{ts:?}");

    let link = ethtool::get_link_settings("veth0").unwrap();
    assert_eq!((link.speed_mbps(), link.duplex_name(), link.autoneg), (Some(10000), Some("full"), 0));

    let gone = ethtool::get_drvinfo("nosuchdev0").unwrap_err();
    assert_eq!(gone.errno, nix::errno::Errno::ENODEV);
    assert!(!gone.is_unsupported());
}

fn facts_module_reports_veth() {
    let (out, code) = support::run_module("lltune_facts", &json!({}));
    assert_eq!(code, 0, "{out}");
    let nics = out["ansible_facts"]["lltune"]["nics"].as_array().unwrap_or_else(|| panic!("no nics: {out}"));
    let nic = |name: &str| -> &Value {
        nics.iter().find(|n| n["name"] == name).unwrap_or_else(|| panic!("{name} not in {nics:?}"))
    };
    for name in ["veth0", "veth1"] {
        let n = nic(name);
        assert_eq!(n["virtual"], true, "{n}");
        assert_eq!(n["driver"], "veth", "{n}");
        assert_eq!(n["kind"], "veth", "{n}");
        assert_eq!(n["pci_address"], Value::Null, "{n}");
        assert_eq!(n["numa_node"], Value::Null, "{n}");
        assert_eq!(n["speed_mbps"], 10000, "{n}");
        assert_eq!(n["autoneg"], false, "{n}");
        assert!(n["features"]["rx-gro"].is_boolean(), "{n}");
        assert!(n["features_fixed"].as_array().is_some_and(|f| !f.is_empty()), "{n}");
        // Not supported by veth: null, and no warning.
        assert_eq!((&n["rings"], &n["coalesce"], &n["pause"]), (&Value::Null, &Value::Null, &Value::Null), "{n}");
        assert_eq!(n["phc_index"], Value::Null, "{n}");
        assert!(n["timestamping"]["so_timestamping"].as_array().is_some_and(|t| !t.is_empty()), "{n}");
    }
    // veth0's channels were set to 2 by the ioctl test above (sysfs then lists 2 queues each
    // way); veth1 kept its own.
    assert_eq!(nic("veth0")["channels"]["rx_count"], 2);
    assert_eq!(nic("veth0")["queues"]["rx_count"], 2);
    assert_eq!(nic("veth1")["channels"]["max_rx"], QUEUES);
    assert_eq!(nic("veth1")["queues"]["tx_count"], QUEUES);
    assert_eq!(nic("lo")["kind"], "loopback");
    let warnings: Vec<&Value> = out["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w.as_str().is_some_and(|w| w.contains("SIOCETHTOOL")))
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}
