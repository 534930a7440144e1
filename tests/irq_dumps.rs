//! IRQ facts on the real dumps (the counts and affinities their peer tools reported), and
//! the one dump with an RDMA device.

use lltune::cpulist::CpuList;
use lltune::facts::{self, Scan, ScanOptions, irq::Irqs};
use lltune::host::Host;

use crate::support::{real_fixture, real_manifest};

fn irqs_of(name: &str, detail: bool) -> Irqs {
    let root = real_fixture(name);
    let host = Host::new(&root).unwrap();
    let mut scan = Scan::new(&host, ScanOptions { detail });
    let cpu = facts::cpu::read(&mut scan);
    let kernel = facts::kernel::read(&mut scan);
    let nics = facts::nic::read(&mut scan);
    facts::irq::read(&mut scan, &cpu, &kernel, &nics)
}

fn expected(name: &str, key: &str) -> serde_json::Value {
    let m = real_manifest();
    m["fixtures"][name]["expected"][key].clone()
}

#[test]
fn irq_dirs_match_the_manifest_and_every_row_has_a_dir() {
    for name in ["cnto-r740xd-worker2", "cnto-r640-rt-worker1"] {
        let irqs = irqs_of(name, false);
        let want = expected(name, "irq_dirs").as_u64().unwrap() as usize;
        assert_eq!(irqs.dirs, want, "{name}: numbered dirs of /proc/irq");
        // default_smp_affinity sits among the numbered dirs and is not an IRQ.
        assert_eq!(irqs.total, want, "{name}: every /proc/interrupts row has a dir");
        assert!(irqs.active > 0 && irqs.active < irqs.total, "{name}: {} active", irqs.active);
        assert!(irqs.list.is_none(), "{name}: the list is for detail only");
    }
}

#[test]
fn rt_worker_default_affinity_excludes_the_isolated_cpus() {
    let name = "cnto-r640-rt-worker1";
    let irqs = irqs_of(name, false);
    let excluded = CpuList::parse(expected(name, "default_smp_affinity_excludes").as_str().unwrap()).unwrap();
    let default = irqs.default_affinity.expect("default_smp_affinity");
    assert!(default.is_disjoint(&excluded), "{default} should exclude {excluded}");
    assert_eq!(default.to_string(), "0-4,11-79");
}

#[test]
fn gcp_worker_affinities_agree_with_the_peer() {
    let name = "cnto-gcp-e2e-worker";
    let irqs = irqs_of(name, true);
    let peer_path = crate::support::real_fixtures_dir().join("peers/cnto-gcp-e2e-worker.irq_affinities.json");
    let peer: serde_json::Value = serde_json::from_slice(&std::fs::read(peer_path).unwrap()).unwrap();
    let list = irqs.list.expect("detail list").irqs;
    assert_eq!(list.len(), 31);
    let peer = peer.as_array().unwrap();
    assert_eq!(peer.len(), 20);
    for p in peer {
        let n = p["irq"].as_u64().unwrap() as u32;
        let want = CpuList::from_cpus(p["affinity"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as u32));
        let irq = list.iter().find(|i| i.irq == n).unwrap_or_else(|| panic!("IRQ {n} missing"));
        assert_eq!(irq.affinity.as_ref(), Some(&want), "IRQ {n} ({})", p["source"]);
        let source = p["source"].as_str().unwrap();
        assert!(irq.actions.iter().any(|a| a == source), "IRQ {n}: actions {:?}, peer {source}", irq.actions);
    }
    // The virtio-net queues of the legacy PCI-MSI domain decode to their PCI function
    // (00:04.0 is the dump's class 0x0200 virtio-net device).
    let q = list.iter().find(|i| i.irq == 31).unwrap();
    assert_eq!(q.pci_address.as_deref(), Some("0000:00:04.0"));
    // virtio1-config and its 8 queues belong to that NIC (no netdev in the dump: keyed by
    // PCI address); virtio0 (SCSI, 00:03.0) and virtio2 (00:05.0) do not.
    let nic = &irqs.nics["0000:00:04.0"];
    assert_eq!((nic.count, nic.cpus.to_string()), (9, "0-1".to_string()));
    assert_eq!(irqs.nics.len(), 1);
}

#[test]
fn r740xd_nic_irqs_follow_the_per_device_msix_chips() {
    // /proc/interrupts names the chip `IR-PCI-MSIX-0000:1a:00.0` for eno3 and its 8 queues.
    let name = "cnto-r740xd-worker2";
    let irqs = irqs_of(name, false);
    let eno3 = irqs.nics.get("0000:1a:00.0").expect("1a:00.0 in irqs.nics");
    assert_eq!((eno3.count, eno3.numa_node), (9, Some(0)));
    assert_eq!(irqs.nics["0000:86:00.0"].count, 34);
}

#[test]
fn hwloc_dump_rdma_device_matches_lstopo() {
    // lstopo places mlx4_0 (with ib0) on NUMA node 1, PCI 0000:82:00.0, as the manifest's ib0.
    let root = real_fixture("hwloc-32em64t-2n8c");
    let host = Host::new(&root).unwrap();
    let mut scan = Scan::new(&host, ScanOptions::default());
    let stacks = facts::user_stacks::read(&mut scan, &[]);
    let mlx = stacks.rdma.iter().find(|d| d.name == "mlx4_0").expect("mlx4_0");
    assert_eq!(
        mlx.numa_node,
        Some(expected("hwloc-32em64t-2n8c", "nics")["ib0"]["numa_node"].as_i64().unwrap() as i32)
    );
    assert_eq!(mlx.pci_address.as_deref(), Some("0000:82:00.0"));
    assert_eq!(mlx.netdevs, vec!["ib0"]);
    assert_eq!(mlx.node_type.as_deref(), Some("CA"));
    assert_eq!(mlx.ports.len(), 1);
    assert_eq!(
        (mlx.ports[0].state.as_deref(), mlx.ports[0].link_layer.as_deref()),
        (Some("ACTIVE"), Some("InfiniBand"))
    );
    // scif0 is a dangling link in the dump: listed, with nothing known.
    let scif = stacks.rdma.iter().find(|d| d.name == "scif0").expect("scif0");
    assert_eq!((scif.numa_node, scif.node_type.as_deref()), (None, None));
}
