//! NIC facts on the real dumps: every `nics`, `virtual_netdevs` and `pci_nics` expectation of
//! the manifest holds, plus the traps each dump was kept for (dangling links, a VLAN, no
//! /sys/class/net, ids only in modalias).

use lltune::facts::nic::{self, Nic};
use lltune::facts::{Scan, ScanOptions};
use lltune::host::Host;
use serde_json::Value;

use crate::support;

fn scan(name: &str) -> (Vec<Nic>, Vec<String>) {
    let root = support::real_fixture(name);
    let host = Host::new(&root).unwrap();
    let mut scan = Scan::new(&host, ScanOptions::default());
    let nics = nic::read(&mut scan);
    (nics, scan.warnings().to_vec())
}

fn named<'a>(nics: &'a [Nic], name: &str) -> &'a Nic {
    nics.iter().find(|n| n.name.as_deref() == Some(name)).unwrap_or_else(|| panic!("no nic {name} in {nics:#?}"))
}

#[test]
fn manifest_nic_expectations_hold_on_every_dump() {
    let manifest = support::real_manifest();
    let mut checked = 0;
    for (fixture, entry) in manifest["fixtures"].as_object().unwrap() {
        let expected = &entry["expected"];
        if expected["nics"].is_null() && expected["pci_nics"].is_null() && expected["virtual_netdevs"].is_null() {
            continue;
        }
        let (nics, _) = scan(fixture);
        for (ifname, want) in expected["nics"].as_object().into_iter().flatten() {
            let n = named(&nics, ifname);
            assert_eq!(n.driver.as_deref(), want["driver"].as_str(), "{fixture} {ifname}");
            assert_eq!(n.numa_node, want["numa_node"].as_i64(), "{fixture} {ifname}");
            assert!(!n.r#virtual, "{fixture} {ifname}");
            assert!(n.pci_address.is_some(), "{fixture} {ifname}");
            checked += 1;
        }
        for ifname in expected["virtual_netdevs"].as_array().into_iter().flatten() {
            let n = named(&nics, ifname.as_str().unwrap());
            assert!(n.r#virtual, "{fixture} {ifname}");
            assert_eq!((n.pci_address.as_ref(), n.numa_node), (None, None), "{fixture} {ifname}");
            checked += 1;
        }
        for (driver, node) in expected["pci_nics"].as_object().into_iter().flatten() {
            let of_driver: Vec<&Nic> = nics.iter().filter(|n| n.driver.as_deref() == Some(driver.as_str())).collect();
            assert!(!of_driver.is_empty(), "{fixture}: no NIC with driver {driver}");
            for n in of_driver {
                assert_eq!(n.numa_node, node.as_i64(), "{fixture} {driver} {:?}", n.pci_address);
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} expectations found in the manifest");
}

#[test]
fn dump_without_sys_class_net_lists_pci_nics_by_driver() {
    // cnto-r740xd-worker2: no /sys/class/net; six PCI functions of class 0x0200 with drivers.
    let (nics, warnings) = scan("cnto-r740xd-worker2");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(nics.len(), 6, "{nics:#?}");
    assert!(nics.iter().all(|n| n.name.is_none() && !n.r#virtual && n.pci_address.is_some()));
    let drivers: Vec<&str> = nics.iter().map(|n| n.driver.as_deref().unwrap()).collect();
    assert_eq!(drivers, ["ixgbe", "ixgbe", "igb", "igb", "i40e", "i40e"]);
    assert!(nics.iter().all(|n| n.vendor_id.as_deref() == Some("0x8086")));
    assert!(nics.iter().all(|n| n.local_cpulist.as_ref().is_some_and(|c| !c.is_empty())));
}

#[test]
fn virtual_netdevs_and_the_vlan_on_hwloc_2n8c() {
    // Virtual netdevs whose links dangle (devices/virtual/net was not dumped), a VLAN named
    // eth0.1015, and an InfiniBand port whose PCI driver is mlx4_core.
    let (nics, _) = scan("hwloc-32em64t-2n8c");
    let vlan = named(&nics, "eth0.1015");
    assert_eq!((vlan.kind.as_deref(), vlan.parent.as_deref(), vlan.vlan_id), (Some("vlan"), Some("eth0"), Some(1015)));
    assert_eq!(named(&nics, "lo").kind.as_deref(), Some("loopback"));
    assert!(nics.iter().all(|n| n.name.as_deref().is_none_or(|name| !name.contains('@'))));

    let eth0 = named(&nics, "eth0");
    assert_eq!(eth0.pci_address.as_deref(), Some("0000:02:00.0"));
    assert_eq!(eth0.phc_index, Some(0), "device/ptp/ptp0");
    let q = eth0.queues.as_ref().unwrap();
    assert_eq!((q.rx_count, q.tx_count), (8, 8));
    assert!(eth0.speed_mbps.is_some() && eth0.mtu.is_some() && eth0.address.is_some());

    let ib0 = named(&nics, "ib0");
    assert_eq!(ib0.kind.as_deref(), Some("infiniband"));
    assert_eq!(ib0.local_cpulist.as_ref().map(|c| c.to_string()).as_deref(), Some("8-15"));
    // Not live and no capture: ethtool state is unknown, not guessed.
    assert!(nics.iter().all(|n| n.features.is_none() && n.rings.is_none() && n.firmware.is_none()));
}

#[test]
fn mlx5_infiniband_functions_without_netdev_are_listed_on_hwloc_2p8co2t() {
    // Two i40e ports with netdevs, and two mlx5_core functions (class 0x0207) with none; the
    // dump's driver links dangle.
    let (nics, _) = scan("hwloc-32intel64-2p8co2t");
    let pci_only: Vec<&Nic> = nics.iter().filter(|n| n.name.is_none()).collect();
    let drivers: Vec<Option<&str>> = pci_only.iter().map(|n| n.driver.as_deref()).collect();
    assert_eq!(drivers, [Some("mlx5_core"), Some("mlx5_core")]);
    let i40e: Vec<&Nic> = nics.iter().filter(|n| n.driver.as_deref() == Some("i40e")).collect();
    assert_eq!(i40e.len(), 2);
    let up = named(&nics, "enp96s0f0");
    assert_eq!((up.operstate.as_deref(), up.speed_mbps, up.duplex.as_deref()), (Some("up"), Some(1000), Some("full")));
    // A down port: the dump holds empty speed/duplex files.
    let down = named(&nics, "enp96s0f1");
    assert_eq!((down.operstate.as_deref(), down.speed_mbps, down.duplex.as_deref()), (Some("down"), None, None));
}

#[test]
fn ids_from_modalias_and_an_unbound_virtio_nic() {
    // cnto-r640-rt-worker1 has no `class`/`vendor` files (modalias only) and no network
    // function at all; cnto-gcp-e2e-worker has one virtio-net function with no driver bound.
    let (nics, warnings) = scan("cnto-r640-rt-worker1");
    assert!(nics.is_empty(), "{nics:#?}");
    assert!(warnings.is_empty(), "{warnings:?}");
    let (nics, _) = scan("cnto-gcp-e2e-worker");
    assert_eq!(nics.len(), 1, "{nics:#?}");
    let n = &nics[0];
    assert_eq!((n.pci_address.as_deref(), n.driver.as_deref()), (Some("0000:00:04.0"), None));
    assert_eq!((n.vendor_id.as_deref(), n.device_id.as_deref()), (Some("0x1af4"), Some("0x1000")));
    let json: Value = serde_json::to_value(n).unwrap();
    assert_eq!(json["name"], Value::Null);
    assert_eq!(json["virtual"], false);
}
