//! Network devices: every netdev under /sys/class/net (Documentation/ABI/testing/sysfs-class-net,
//! sysfs-class-net-queues), plus PCI network controllers that have no netdev (bound to
//! vfio-pci or another user-space driver, or unbound), found under /sys/bus/pci/devices by
//! class 0x02xxxx (Documentation/ABI/testing/sysfs-bus-pci).
//!
//! Ethtool state (features, coalescing, rings, pause, channels, timestamping, firmware) comes
//! from SIOCETHTOOL on a live host only. On a captured tree it comes from
//! `<root>/var/lib/lltune/capture/ethtool/<ifname>.json`, written by `lltune capture`
//! (`capture_files`); nothing outside `root` is touched.
//!
//! The surprising parts: in captures, /sys/class/net links often dangle (their targets under
//! /sys/devices/virtual were not copied) and so do `driver` links, so links are resolved
//! lexically through `Host::read_link` rather than by the OS; /sys/class/net may hold a
//! `bonding_masters` file that is not a device; and PCI dumps may carry the vendor and device
//! ids only inside `modalias`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::Scan;
use crate::cpulist::CpuList;
use crate::host::Host;
use crate::host::system::EthtoolStore;
use crate::sys::ethtool::{Channels, Coalesce, EthtoolError, Pauseparam, Ringparam};

/// Where a captured tree keeps the ethtool state of each netdev (`<ifname>.json`).
pub const ETHTOOL_CAPTURE_DIR: &str = "/var/lib/lltune/capture/ethtool";

/// One network device: a netdev (with or without hardware behind it), or a PCI network
/// controller without a netdev (`name` null).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Nic {
    /// Interface name as in /sys/class/net; null for a PCI device without a netdev.
    pub name: Option<String>,
    /// Driver bound to the device (`device/driver` link), else ethtool's driver name.
    pub driver: Option<String>,
    /// ethtool drvinfo `version`.
    pub driver_version: Option<String>,
    /// ethtool drvinfo `fw_version`.
    pub firmware: Option<String>,
    /// PCI address (`0000:5e:00.0`) of the device behind the netdev.
    pub pci_address: Option<String>,
    /// PCI vendor id (`0x8086`).
    pub vendor_id: Option<String>,
    /// PCI device id (`0x1572`).
    pub device_id: Option<String>,
    /// NUMA node of the device; null when unknown (sysfs -1) or virtual.
    pub numa_node: Option<i64>,
    /// CPUs local to the device's NUMA node.
    pub local_cpulist: Option<CpuList>,
    /// True when no hardware is behind the netdev (no `device` link, or it lives under
    /// /sys/devices/virtual).
    pub r#virtual: bool,
    /// `vlan`, `bridge`, `bond`, `loopback`, `infiniband`, `veth`, ... when known.
    pub kind: Option<String>,
    /// For a VLAN: the interface it sits on.
    pub parent: Option<String>,
    /// For a VLAN: its 802.1Q id.
    pub vlan_id: Option<u16>,
    pub mtu: Option<u32>,
    pub operstate: Option<String>,
    pub carrier: Option<bool>,
    pub speed_mbps: Option<u32>,
    pub duplex: Option<String>,
    /// Link autonegotiation (ETHTOOL_GLINKSETTINGS).
    pub autoneg: Option<bool>,
    /// MAC (hardware) address.
    pub address: Option<String>,
    pub queues: Option<Queues>,
    /// Index N of the PTP hardware clock /dev/ptpN.
    pub phc_index: Option<u32>,
    pub timestamping: Option<Timestamping>,
    /// Offload features by kernel name (`rx-gro`, `tx-tcp-segmentation`): active or not.
    pub features: Option<BTreeMap<String, bool>>,
    /// Features that cannot be changed on this device (`ethtool -k` "[fixed]").
    pub features_fixed: Option<Vec<String>>,
    pub coalesce: Option<Coalesce>,
    pub rings: Option<Ringparam>,
    pub pause: Option<Pauseparam>,
    pub channels: Option<Channels>,
}

/// Queues of a netdev (/sys/class/net/<if>/queues/{rx,tx}-N) and their RPS/RFS/XPS settings
/// (Documentation/networking/scaling.rst).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queues {
    pub rx_count: u32,
    pub tx_count: u32,
    /// Union of the rx queues' `rps_cpus`; empty when RPS is off everywhere; null when no
    /// queue has the file (kernel without CONFIG_RPS).
    pub rps_cpus: Option<CpuList>,
    /// Sum of the rx queues' `rps_flow_cnt` (RFS flow table entries).
    pub rps_flow_cnt: Option<u64>,
    /// Union of the tx queues' `xps_cpus`.
    pub xps_cpus: Option<CpuList>,
    /// Per rx queue, with `detail` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx: Option<Vec<RxQueue>>,
    /// Per tx queue, with `detail` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<Vec<TxQueue>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RxQueue {
    pub queue: u32,
    pub rps_cpus: Option<CpuList>,
    pub rps_flow_cnt: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxQueue {
    pub queue: u32,
    pub xps_cpus: Option<CpuList>,
}

/// Timestamping capabilities (ETHTOOL_GET_TS_INFO), named as `ethtool -T` names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamping {
    pub so_timestamping: Vec<String>,
    pub tx_types: Vec<String>,
    pub rx_filters: Vec<String>,
}

/// The ethtool part of a `Nic`: what a live scan asks SIOCETHTOOL for, and what a capture
/// stores in `ETHTOOL_CAPTURE_DIR/<ifname>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EthtoolState {
    pub driver: Option<String>,
    pub driver_version: Option<String>,
    pub firmware: Option<String>,
    pub autoneg: Option<bool>,
    pub phc_index: Option<u32>,
    pub timestamping: Option<Timestamping>,
    pub features: Option<BTreeMap<String, bool>>,
    pub features_fixed: Option<Vec<String>>,
    pub coalesce: Option<Coalesce>,
    pub rings: Option<Ringparam>,
    pub pause: Option<Pauseparam>,
    pub channels: Option<Channels>,
}

impl EthtoolState {
    fn of(nic: &Nic) -> EthtoolState {
        EthtoolState {
            driver: nic.driver.clone(),
            driver_version: nic.driver_version.clone(),
            firmware: nic.firmware.clone(),
            autoneg: nic.autoneg,
            phc_index: nic.phc_index,
            timestamping: nic.timestamping.clone(),
            features: nic.features.clone(),
            features_fixed: nic.features_fixed.clone(),
            coalesce: nic.coalesce,
            rings: nic.rings,
            pause: nic.pause,
            channels: nic.channels,
        }
    }

    /// Fills the ethtool fields of `nic`; sysfs answers (driver link, ptp dir) win.
    fn merge_into(self, nic: &mut Nic) {
        nic.driver = nic.driver.take().or(self.driver);
        nic.driver_version = self.driver_version;
        nic.firmware = self.firmware;
        nic.autoneg = self.autoneg;
        nic.phc_index = self.phc_index.or(nic.phc_index);
        nic.timestamping = self.timestamping;
        nic.features = self.features;
        nic.features_fixed = self.features_fixed;
        nic.coalesce = self.coalesce;
        nic.rings = self.rings;
        nic.pause = self.pause;
        nic.channels = self.channels;
    }
}

/// Reads every netdev, then the PCI network controllers no netdev stands for.
pub fn read(scan: &mut Scan) -> Vec<Nic> {
    let host = scan.host;
    let entries = match host.list("/sys/class/net") {
        Ok(e) => e,
        Err(e) => {
            scan.warn(e.to_string());
            Vec::new()
        }
    };
    // `bonding_masters` is a plain file among the device links; devices are links (or, in a
    // copied tree, directories).
    let ifnames: Vec<String> = entries
        .into_iter()
        .filter(|n| {
            let p = format!("/sys/class/net/{n}");
            host.read_link(&p).is_some() || host.is_dir(&p)
        })
        .collect();
    let mut nics: Vec<Nic> = ifnames.iter().map(|n| read_netdev(scan, n, &ifnames)).collect();
    let taken: BTreeSet<String> = nics.iter().filter_map(|n| n.pci_address.clone()).collect();
    nics.extend(read_pci_nics(scan, &taken));
    nics
}

/// Files for `lltune capture` to add to its tarball, as (target path, contents): the ethtool
/// state of each netdev, so that a scan of the capture reports what the live scan saw.
pub fn capture_files(nics: &[Nic]) -> Vec<(String, String)> {
    nics.iter()
        .filter_map(|nic| {
            let name = nic.name.as_ref()?;
            let json = serde_json::to_string_pretty(&EthtoolState::of(nic)).ok()?;
            Some((format!("{ETHTOOL_CAPTURE_DIR}/{name}.json"), json + "\n"))
        })
        .collect()
}

fn read_netdev(scan: &mut Scan, ifname: &str, all: &[String]) -> Nic {
    let host = scan.host;
    let class_path = format!("/sys/class/net/{ifname}");
    let dir = resolve(host, &class_path);
    let device_link = format!("{class_path}/device");
    let device = host.exists(&device_link).then(|| resolve(host, &device_link));
    let under_virtual = |p: &str| p.starts_with("/sys/devices/virtual/");
    let is_virtual = match &device {
        None => true,
        Some(d) => under_virtual(d) || under_virtual(&dir),
    };

    let mut nic = Nic { name: Some(display_name(ifname, all)), r#virtual: is_virtual, ..Nic::default() };

    if let Some(dev) = device.as_deref().filter(|_| !is_virtual) {
        nic.driver = host.link_name(&format!("{dev}/driver"));
        let pci_dir = pci_dir_of(host, dev);
        nic.pci_address = pci_dir.as_deref().map(basename).map(str::to_string).or_else(|| {
            host.read_opt(&format!("{dev}/uevent")).ok().flatten().and_then(|u| uevent_value(&u, "PCI_SLOT_NAME"))
        });
        // numa_node and local_cpus live on the PCI function (a virtio device's parent).
        let attrs = pci_dir.clone().unwrap_or_else(|| dev.to_string());
        read_device_attrs(scan, &attrs, &mut nic);
        if let Some(p) = pci_dir.as_deref() {
            let (vendor, device_id) = read_pci_ids(host, p);
            nic.vendor_id = vendor;
            nic.device_id = device_id;
        }
        nic.phc_index = read_sysfs_phc(host, dev);
    }

    nic.mtu = host.attr_parse(&format!("{dir}/mtu"));
    nic.operstate = host.attr(&format!("{dir}/operstate")).filter(|s| !s.is_empty());
    nic.carrier = host.attr(&format!("{dir}/carrier")).and_then(|s| parse_bool01(&s));
    nic.speed_mbps = host.attr(&format!("{dir}/speed")).and_then(|s| parse_speed(&s));
    nic.duplex = host.attr(&format!("{dir}/duplex")).filter(|d| d == "full" || d == "half");
    nic.address = host.attr(&format!("{dir}/address")).filter(|s| !s.is_empty());
    nic.queues = read_queues(scan, &dir);

    // The capture file is named as `capture_files` names it: by the reported name.
    let ethtool = match (host.system().ethtool_store(), nic.name.clone()) {
        (EthtoolStore::Kernel, _) => Some(read_ethtool_live(scan, ifname)),
        (EthtoolStore::Capture, Some(name)) => read_ethtool_capture(scan, &name),
        (EthtoolStore::Capture, None) => None,
    };
    let ethtool_driver = ethtool.as_ref().and_then(|e| e.driver.clone());
    if let Some(state) = ethtool {
        state.merge_into(&mut nic);
    }

    nic.kind = read_kind(host, &dir, ifname, is_virtual, ethtool_driver.as_deref());
    read_vlan(scan, &dir, ifname, all, &mut nic);
    nic
}

/// The name to report: `ip link` writes a VLAN as `eth0.1015@eth0`; should a directory ever
/// carry such a suffix naming another device, it is not part of the name.
fn display_name(ifname: &str, all: &[String]) -> String {
    match ifname.split_once('@') {
        Some((name, parent)) if !name.is_empty() && all.iter().any(|n| n == parent) => name.to_string(),
        _ => ifname.to_string(),
    }
}

/// The PCI function behind a device directory: the directory itself when its name is a PCI
/// address, or its parent for a virtio device (`.../0000:00:04.0/virtio1`).
fn pci_dir_of(host: &Host, dev: &str) -> Option<String> {
    if is_pci_address(basename(dev)) {
        return Some(dev.to_string());
    }
    let parent = parent_of(dev);
    let on_virtio = basename(dev).starts_with("virtio")
        || host.link_name(&format!("{dev}/subsystem")).is_some_and(|s| s == "virtio");
    (on_virtio && is_pci_address(basename(parent))).then(|| parent.to_string())
}

/// numa_node and local CPUs of a device directory.
fn read_device_attrs(scan: &mut Scan, dev: &str, nic: &mut Nic) {
    let host = scan.host;
    nic.numa_node = host.attr(&format!("{dev}/numa_node")).and_then(|s| parse_numa_node(&s));
    nic.local_cpulist = match host.attr(&format!("{dev}/local_cpulist")) {
        Some(text) => parse_or_warn(scan, &format!("{dev}/local_cpulist"), CpuList::parse(&text)),
        None => match host.attr(&format!("{dev}/local_cpus")) {
            Some(text) => parse_or_warn(scan, &format!("{dev}/local_cpus"), CpuList::parse_mask(&text)),
            None => None,
        },
    };
}

fn parse_or_warn<T, E: std::fmt::Display>(scan: &mut Scan, path: &str, r: Result<T, E>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            scan.warn(format!("{path}: {e}"));
            None
        }
    }
}

/// PCI vendor and device ids from the `vendor`/`device` files, else from `modalias`.
fn read_pci_ids(host: &Host, pci: &str) -> (Option<String>, Option<String>) {
    let id = |file: &str| host.attr(&format!("{pci}/{file}")).and_then(|s| normalize_pci_id(&s));
    let (mut vendor, mut device) = (id("vendor"), id("device"));
    if vendor.is_none() || device.is_none() {
        if let Some(m) = host.attr(&format!("{pci}/modalias")).and_then(|m| parse_pci_modalias(&m)) {
            vendor = vendor.or(Some(m.vendor));
            device = device.or(Some(m.device));
        }
    }
    (vendor, device)
}

/// `/sys/class/net/<if>/device/ptp/ptpN` → N (drivers that register a PHC).
fn read_sysfs_phc(host: &Host, dev: &str) -> Option<u32> {
    host.list_or_empty(&format!("{dev}/ptp")).iter().find_map(|n| n.strip_prefix("ptp")?.parse().ok())
}

/// Kind of netdev: uevent DEVTYPE first (vlan, bridge, bond, wlan, ...), then the
/// type-specific directories, the ARPHRD type, and for virtual devices the ethtool driver.
fn read_kind(host: &Host, dir: &str, ifname: &str, is_virtual: bool, ethtool_driver: Option<&str>) -> Option<String> {
    if let Some(devtype) =
        host.read_opt(&format!("{dir}/uevent")).ok().flatten().and_then(|u| uevent_value(&u, "DEVTYPE"))
    {
        return Some(devtype);
    }
    if host.is_dir(&format!("{dir}/bridge")) {
        return Some("bridge".into());
    }
    if host.is_dir(&format!("{dir}/bonding")) {
        return Some("bond".into());
    }
    // include/uapi/linux/if_arp.h: ARPHRD_LOOPBACK 772, ARPHRD_INFINIBAND 32.
    match host.attr_parse::<u32>(&format!("{dir}/type")) {
        Some(772) => return Some("loopback".into()),
        Some(32) => return Some("infiniband".into()),
        None if ifname == "lo" => return Some("loopback".into()),
        _ => {}
    }
    // Virtual drivers whose kind is their driver name (drivers/net/*.c `DRV_NAME`).
    const VIRTUAL_DRIVERS: &[&str] = &[
        "veth",
        "dummy",
        "tun",
        "vxlan",
        "geneve",
        "macvlan",
        "ipvlan",
        "wireguard",
        "openvswitch",
        "team",
        "ifb",
        "nlmon",
        "vrf",
        "bridge",
        "bonding",
    ];
    match ethtool_driver {
        Some("bonding") if is_virtual => Some("bond".into()),
        Some(d) if is_virtual && VIRTUAL_DRIVERS.contains(&d) => Some(d.to_string()),
        _ => None,
    }
}

/// VLAN parent and id: /proc/net/vlan/<if> (8021q), else a `lower_<parent>` link, else a
/// `<parent>.<id>` name whose parent is a listed device.
fn read_vlan(scan: &mut Scan, dir: &str, ifname: &str, all: &[String], nic: &mut Nic) {
    let host = scan.host;
    let is_vlan = nic.kind.as_deref() == Some("vlan");
    if !is_vlan && !ifname.contains('.') {
        return;
    }
    if let Ok(Some(text)) = host.read_opt(&format!("/proc/net/vlan/{ifname}")) {
        if let Some((vid, parent)) = parse_proc_vlan(&text) {
            nic.kind = Some("vlan".into());
            nic.vlan_id = Some(vid);
            nic.parent = parent;
            return;
        }
    }
    let lower = host.list_or_empty(dir).into_iter().find_map(|e| e.strip_prefix("lower_").map(str::to_string));
    let by_name = parse_vlan_name(ifname).filter(|(p, _)| all.iter().any(|n| n == p));
    if is_vlan || (nic.kind.is_none() && nic.r#virtual && by_name.is_some()) {
        nic.kind = Some("vlan".into());
        nic.parent = lower.or_else(|| by_name.as_ref().map(|(p, _)| p.clone()));
        nic.vlan_id = by_name.map(|(_, id)| id);
    }
}

/// Counts and RPS/RFS/XPS settings of the queues under `<dir>/queues`.
fn read_queues(scan: &mut Scan, dir: &str) -> Option<Queues> {
    let host = scan.host;
    let qdir = format!("{dir}/queues");
    if !host.is_dir(&qdir) {
        return None;
    }
    let mut rx = Vec::new();
    let mut tx = Vec::new();
    for entry in host.list_or_empty(&qdir) {
        match parse_queue_name(&entry) {
            Some(("rx", queue)) => {
                let rps_cpus =
                    host.attr(&format!("{qdir}/{entry}/rps_cpus")).and_then(|m| CpuList::parse_mask(&m).ok());
                let rps_flow_cnt = host.attr_parse(&format!("{qdir}/{entry}/rps_flow_cnt"));
                rx.push(RxQueue { queue, rps_cpus, rps_flow_cnt });
            }
            Some(("tx", queue)) => {
                let xps_cpus =
                    host.attr(&format!("{qdir}/{entry}/xps_cpus")).and_then(|m| CpuList::parse_mask(&m).ok());
                tx.push(TxQueue { queue, xps_cpus });
            }
            _ => {}
        }
    }
    crate::sort::sort_by_key(&mut rx, |q| q.queue);
    crate::sort::sort_by_key(&mut tx, |q| q.queue);
    let union = |lists: Vec<&CpuList>| -> Option<CpuList> {
        if lists.is_empty() { None } else { Some(lists.into_iter().fold(CpuList::new(), |acc, l| acc.union(l))) }
    };
    let flows: Vec<u64> = rx.iter().filter_map(|q| q.rps_flow_cnt).collect();
    let detail = scan.options.detail;
    Some(Queues {
        rx_count: rx.len() as u32,
        tx_count: tx.len() as u32,
        rps_cpus: union(rx.iter().filter_map(|q| q.rps_cpus.as_ref()).collect()),
        rps_flow_cnt: (!flows.is_empty()).then(|| flows.iter().sum()),
        xps_cpus: union(tx.iter().filter_map(|q| q.xps_cpus.as_ref()).collect()),
        rx: detail.then_some(rx),
        tx: detail.then_some(tx),
    })
}

/// A get that the device does not support is `None` without a warning; any other failure is
/// `None` with one.
fn supported<T>(scan: &mut Scan, r: Result<T, EthtoolError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if e.is_unsupported() => None,
        Err(e) => {
            scan.warn(e.to_string());
            None
        }
    }
}

/// Asks the running kernel, through the host's seam (`System::ethtool_snapshot`).
fn read_ethtool_live(scan: &mut Scan, ifname: &str) -> EthtoolState {
    let got = scan.host.system().ethtool_snapshot(ifname);
    let mut st = EthtoolState::default();
    let nonempty = |s: String| (!s.is_empty()).then_some(s);
    if let Some(info) = supported(scan, got.drvinfo) {
        st.driver = nonempty(info.driver);
        st.driver_version = nonempty(info.version);
        st.firmware = nonempty(info.fw_version);
    }
    st.autoneg = supported(scan, got.link_settings).map(|l| l.autoneg != 0);
    if let Some(ts) = supported(scan, got.ts_info) {
        st.phc_index = ts.phc();
        st.timestamping = Some(Timestamping {
            so_timestamping: ts.so_timestamping_names(),
            tx_types: ts.tx_type_names(),
            rx_filters: ts.rx_filter_names(),
        });
    }
    if let Some(features) = supported(scan, got.features) {
        st.features = Some(features.iter().map(|f| (f.name.clone(), f.active)).collect());
        let mut fixed: Vec<String> = features.iter().filter(|f| f.is_fixed()).map(|f| f.name.clone()).collect();
        crate::sort::sort_by(&mut fixed, Ord::cmp);
        st.features_fixed = Some(fixed);
    }
    st.coalesce = supported(scan, got.coalesce);
    st.rings = supported(scan, got.rings);
    st.pause = supported(scan, got.pause);
    st.channels = supported(scan, got.channels);
    st
}

/// One netdev's captured ethtool state (`ETHTOOL_CAPTURE_DIR/<ifname>.json`): the file, its
/// JSON as written (a module that changes the state rewrites it keeping every key) and the
/// state it holds.
#[derive(Debug, Clone)]
pub struct EthtoolCapture {
    pub path: String,
    pub doc: serde_json::Value,
    pub state: EthtoolState,
}

/// Why a capture file could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureError {
    /// The file could not be read (a folder, a FIFO, a link out of root): the host's message.
    Unreadable(String),
    /// The file is there but is no capture of ethtool state; `reason` names the key.
    Malformed { path: String, reason: String },
}

/// Reads the captured ethtool state of `ifname`: `Ok(None)` when the capture has none. The
/// one rule for what is malformed, for discovery and `lltune_nic` alike: not UTF-8, not a JSON
/// mapping, an integer beyond 64 bits, a key of the wrong type, a ring or channel count above
/// its maximum (`capture::parse_text`). Unknown keys are kept in `doc` and ignored.
pub fn read_capture(host: &Host, ifname: &str) -> Result<Option<EthtoolCapture>, CaptureError> {
    let path = format!("{ETHTOOL_CAPTURE_DIR}/{ifname}.json");
    let Some(bytes) = host.read_bytes_opt(&path).map_err(|e| CaptureError::Unreadable(e.to_string()))? else {
        return Ok(None);
    };
    let parsed = match std::str::from_utf8(&bytes) {
        Ok(text) => capture::parse_text(text),
        Err(e) => Err(format!("not UTF-8 JSON ({e})")),
    };
    match parsed {
        Ok((doc, state)) => Ok(Some(EthtoolCapture { path, doc, state })),
        Err(reason) => Err(CaptureError::Malformed { path, reason }),
    }
}

/// Reads the captured ethtool state of a netdev, when the capture has one; a broken capture is
/// a warning naming the file and the interface, and the scan goes on.
fn read_ethtool_capture(scan: &mut Scan, ifname: &str) -> Option<EthtoolState> {
    match read_capture(scan.host, ifname) {
        Ok(c) => c.map(|c| c.state),
        Err(CaptureError::Unreadable(e)) => {
            scan.warn(e);
            None
        }
        Err(CaptureError::Malformed { path, reason }) => {
            scan.warn(format!("{path}: interface {ifname}: {reason}"));
            None
        }
    }
}

/// A capture's ethtool state, read by hand from its JSON value.
///
/// Every binary that scans reads captures, and serde's derived reader for these types (about
/// 20 KB of code per binary, the uapi structs have 40-odd fields) was what kept `lltune_config`
/// over its 1 MiB budget. This reader takes what serde's derive takes for what `lltune capture`
/// writes: unknown keys are ignored, a missing field of a uapi struct is 0, a flag is a boolean
/// or a number (non-zero is on), `null` is unknown. It refuses what serde refused, naming the
/// key (`rings.rx_pending: expected an integer from 0 to 4294967295, got -1`). One difference:
/// serde also took a uapi struct written as a list of its fields in order, which no capture
/// has. `capture_reader_agrees_with_serde` holds the two to the same answers.
pub(crate) mod capture {
    use std::collections::BTreeMap;

    use serde_json::{Map, Value};

    use super::{EthtoolState, Timestamping};
    use crate::sys::ethtool::{Channels, Coalesce, Pauseparam, Ringparam};

    type R<T> = Result<T, String>;

    /// What was found: a scalar with its value (`-1`, `string "x"`), else its kind.
    fn kind(v: &Value) -> String {
        match v {
            Value::String(s) => format!("string {s:?}"),
            Value::Array(_) | Value::Object(_) => crate::echo::kind(v).into(),
            scalar => scalar.to_string(),
        }
    }

    fn wrong<T>(at: &str, want: &str, v: &Value) -> R<T> {
        Err(format!("{at}: expected {want}, got {}", kind(v)))
    }

    fn object<'a>(v: &'a Value, at: &str) -> R<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Ok(m),
            other => wrong(at, "a mapping", other),
        }
    }

    fn string(v: &Value, at: &str) -> R<String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            other => wrong(at, "a string", other),
        }
    }

    fn u32_of(v: &Value, at: &str) -> R<u32> {
        match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Ok(n),
            None => wrong(at, "an integer from 0 to 4294967295", v),
        }
    }

    fn strings(v: &Value, at: &str) -> R<Vec<String>> {
        match v {
            Value::Array(a) => a.iter().enumerate().map(|(i, s)| string(s, &format!("{at}[{i}]"))).collect(),
            other => wrong(at, "a list of strings", other),
        }
    }

    /// `f(value)` when the key is there and not null.
    fn opt<T>(m: &Map<String, Value>, key: &str, f: impl FnOnce(&Value, &str) -> R<T>) -> R<Option<T>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => f(v, key).map(Some),
        }
    }

    /// A uapi struct's fields by name: where each lives, and whether it is a flag.
    type Field<T> = (&'static str, fn(&mut T) -> &mut u32, bool);

    fn uapi<T: Default>(v: &Value, at: &str, fields: &[Field<T>]) -> R<T> {
        let mut out = T::default();
        for (key, value) in object(v, at)? {
            let Some((_, place, flag)) = fields.iter().find(|f| f.0 == key) else { continue };
            let here = format!("{at}.{key}");
            *place(&mut out) = match (flag, value) {
                (true, Value::Bool(b)) => u32::from(*b),
                (true, n) => u32::from(
                    u32_of(n, &here).map_err(|_| {
                        format!("{here}: expected a boolean or an integer from 0 to 4294967295, got {}", kind(n))
                    })? != 0,
                ),
                (false, n) => u32_of(n, &here)?,
            };
        }
        Ok(out)
    }

    macro_rules! fields {
        ($t:ty: $($name:ident $($flag:ident)?),* $(,)?) => {
            &[$((stringify!($name), |x: &mut $t| &mut x.$name, fields!(@flag $($flag)?))),*]
        };
        (@flag flag) => { true };
        (@flag) => { false };
    }

    const COALESCE: &[Field<Coalesce>] = fields!(Coalesce:
        rx_coalesce_usecs, rx_max_coalesced_frames, rx_coalesce_usecs_irq, rx_max_coalesced_frames_irq,
        tx_coalesce_usecs, tx_max_coalesced_frames, tx_coalesce_usecs_irq, tx_max_coalesced_frames_irq,
        stats_block_coalesce_usecs, use_adaptive_rx_coalesce flag, use_adaptive_tx_coalesce flag,
        pkt_rate_low, rx_coalesce_usecs_low, rx_max_coalesced_frames_low, tx_coalesce_usecs_low,
        tx_max_coalesced_frames_low, pkt_rate_high, rx_coalesce_usecs_high, rx_max_coalesced_frames_high,
        tx_coalesce_usecs_high, tx_max_coalesced_frames_high, rate_sample_interval,
    );
    const RINGS: &[Field<Ringparam>] = fields!(Ringparam:
        rx_max_pending, rx_mini_max_pending, rx_jumbo_max_pending, tx_max_pending,
        rx_pending, rx_mini_pending, rx_jumbo_pending, tx_pending,
    );
    const PAUSE: &[Field<Pauseparam>] = fields!(Pauseparam: autoneg flag, rx_pause flag, tx_pause flag);
    const CHANNELS: &[Field<Channels>] = fields!(Channels:
        max_rx, max_tx, max_other, max_combined, rx_count, tx_count, other_count, combined_count,
    );

    fn timestamping(v: &Value, at: &str) -> R<Timestamping> {
        let m = object(v, at)?;
        let list = |key: &str| match m.get(key) {
            Some(v) => strings(v, &format!("{at}.{key}")),
            None => Err(format!("{at}: missing field `{key}`")),
        };
        Ok(Timestamping {
            so_timestamping: list("so_timestamping")?,
            tx_types: list("tx_types")?,
            rx_filters: list("rx_filters")?,
        })
    }

    fn features(v: &Value, at: &str) -> R<BTreeMap<String, bool>> {
        object(v, at)?
            .iter()
            .map(|(k, b)| match b {
                Value::Bool(b) => Ok((k.clone(), *b)),
                other => wrong(&format!("{at}.{k}"), "a boolean", other),
            })
            .collect()
    }

    pub fn ethtool_state(v: &Value) -> R<EthtoolState> {
        let m = object(v, "the capture")?;
        Ok(EthtoolState {
            driver: opt(m, "driver", string)?,
            driver_version: opt(m, "driver_version", string)?,
            firmware: opt(m, "firmware", string)?,
            autoneg: opt(m, "autoneg", |v, at| match v {
                Value::Bool(b) => Ok(*b),
                other => wrong(at, "a boolean", other),
            })?,
            phc_index: opt(m, "phc_index", u32_of)?,
            timestamping: opt(m, "timestamping", timestamping)?,
            features: opt(m, "features", features)?,
            features_fixed: opt(m, "features_fixed", strings)?,
            coalesce: opt(m, "coalesce", |v, at| uapi(v, at, COALESCE))?,
            rings: opt(m, "rings", |v, at| {
                uapi::<Ringparam>(v, at, RINGS).and_then(|r| r.check().map(|()| r).map_err(|e| format!("{at}.{e}")))
            })?,
            pause: opt(m, "pause", |v, at| uapi(v, at, PAUSE))?,
            channels: opt(m, "channels", |v, at| {
                uapi::<Channels>(v, at, CHANNELS).and_then(|c| c.check().map(|()| c).map_err(|e| format!("{at}.{e}")))
            })?,
        })
    }

    /// One step of a path into a JSON document.
    enum Step {
        Key(String),
        Index(usize),
    }

    /// The first number of `v` that JSON reading turned into a float although `text` wrote it
    /// as an integer (one beyond 64 bits): its dotted path and its text as written.
    fn wide_integer(v: &Value, text: &str) -> Option<(String, String)> {
        fn walk(v: &Value, path: &mut Vec<Step>, text: &str) -> Option<(String, String)> {
            match v {
                Value::Number(n) if n.is_f64() => {
                    let raw = raw_at(text, path)?;
                    let t = raw.trim();
                    let integer = !t.is_empty() && t.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit());
                    integer.then(|| {
                        let shown: Vec<String> = path
                            .iter()
                            .map(|s| match s {
                                Step::Key(k) => k.clone(),
                                Step::Index(i) => format!("[{i}]"),
                            })
                            .collect();
                        (shown.join(".").replace(".[", "["), crate::echo::cap_text(t))
                    })
                }
                Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| {
                    path.push(Step::Index(i));
                    let r = walk(x, path, text);
                    path.pop();
                    r
                }),
                Value::Object(m) => m.iter().find_map(|(k, x)| {
                    path.push(Step::Key(k.clone()));
                    let r = walk(x, path, text);
                    path.pop();
                    r
                }),
                _ => None,
            }
        }
        walk(v, &mut Vec::new(), text)
    }

    /// The text of the value at `path` in `text`, as written.
    fn raw_at(text: &str, path: &[Step]) -> Option<String> {
        use serde_json::value::RawValue;
        let mut raw: Box<RawValue> = serde_json::from_str(text).ok()?;
        for step in path {
            raw = match step {
                Step::Key(k) => {
                    let mut m: std::collections::HashMap<String, Box<RawValue>> =
                        serde_json::from_str(raw.get()).ok()?;
                    m.remove(k)?
                }
                Step::Index(i) => {
                    let mut a: Vec<Box<RawValue>> = serde_json::from_str(raw.get()).ok()?;
                    (*i < a.len()).then(|| a.swap_remove(*i))?
                }
            };
        }
        Some(raw.get().to_string())
    }

    /// A capture file's text: its JSON (for a module that rewrites it) and the state it holds.
    /// Refuses an integer that does not fit in 64 bits (JSON reading would round it to a float,
    /// and a rewrite would write the float), naming its key and echoing it as written, and a
    /// ring or channel count above its maximum.
    pub fn parse_text(text: &str) -> R<(Value, EthtoolState)> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {}", crate::echo::cap_text(&e.to_string())))?;
        if let Some((at, raw)) = wide_integer(&v, text) {
            return Err(format!("{at}: {raw} is not an integer that fits in 64 bits; refused"));
        }
        let st = ethtool_state(&v)?;
        Ok((v, st))
    }
}

/// PCI functions of class 0x02 (network controller) that no netdev stands for.
fn read_pci_nics(scan: &mut Scan, taken: &BTreeSet<String>) -> Vec<Nic> {
    let host = scan.host;
    let mut nics = Vec::new();
    for addr in host.list_or_empty("/sys/bus/pci/devices") {
        if taken.contains(&addr) {
            continue;
        }
        let dir = resolve(host, &format!("/sys/bus/pci/devices/{addr}"));
        let class = host
            .attr(&format!("{dir}/class"))
            .or_else(|| host.attr(&format!("{dir}/modalias")).and_then(|m| parse_pci_modalias(&m)).map(|m| m.class));
        if !class.is_some_and(|c| c.to_ascii_lowercase().starts_with("0x02")) {
            continue;
        }
        let (vendor_id, device_id) = read_pci_ids(host, &dir);
        let mut nic = Nic {
            driver: host.link_name(&format!("{dir}/driver")),
            pci_address: Some(addr.clone()),
            vendor_id,
            device_id,
            phc_index: read_sysfs_phc(host, &dir),
            ..Nic::default()
        };
        read_device_attrs(scan, &dir, &mut nic);
        nics.push(nic);
    }
    nics
}

/// Resolves the symbolic links of a target path through the host, component by component,
/// as realpath(3) would but without needing the targets to exist (captured trees hold
/// dangling links). Gives up resolving after 40 links, as the kernel does (ELOOP).
fn resolve(host: &Host, target: &str) -> String {
    let mut done: Vec<String> = Vec::new();
    let mut todo: VecDeque<String> = target.split('/').map(str::to_string).collect();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => done.push(part),
        }
        if links >= 40 {
            continue;
        }
        let here = format!("/{}", done.join("/"));
        if let Some(link) = host.read_link(&here) {
            links += 1;
            done.pop();
            if link.starts_with('/') {
                done.clear();
            }
            for p in link.split('/').rev() {
                todo.push_front(p.to_string());
            }
        }
    }
    format!("/{}", done.join("/"))
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `DDDD:BB:DD.F` (domain may be longer than 4 hex digits behind VMD).
pub fn is_pci_address(s: &str) -> bool {
    let hex = |p: &str, n: Option<usize>| {
        !p.is_empty() && p.chars().all(|c| c.is_ascii_hexdigit()) && n.is_none_or(|n| p.len() == n)
    };
    let mut parts = s.split(':');
    let (Some(domain), Some(bus), Some(devfn), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    domain.len() >= 4
        && hex(domain, None)
        && hex(bus, Some(2))
        && hex(dev, Some(2))
        && func.len() == 1
        && func.chars().all(|c| ('0'..='7').contains(&c))
}

/// One `KEY=value` of a uevent file.
pub fn uevent_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// sysfs `numa_node`: -1 (no affinity, or firmware did not say) is `None`.
pub fn parse_numa_node(text: &str) -> Option<i64> {
    text.trim().parse::<i64>().ok().filter(|n| *n >= 0)
}

/// sysfs `speed` in Mb/s: -1 (SPEED_UNKNOWN), 0, and the old unknown markers 65535 and
/// 4294967295 are `None`.
pub fn parse_speed(text: &str) -> Option<u32> {
    let n: i64 = text.trim().parse().ok()?;
    (n > 0 && n != 65535 && n < i64::from(u32::MAX)).then_some(n as u32)
}

fn parse_bool01(text: &str) -> Option<bool> {
    match text.trim() {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

/// `rx-3` → ("rx", 3).
pub fn parse_queue_name(name: &str) -> Option<(&'static str, u32)> {
    if let Some(n) = name.strip_prefix("rx-") {
        return Some(("rx", n.parse().ok()?));
    }
    if let Some(n) = name.strip_prefix("tx-") {
        return Some(("tx", n.parse().ok()?));
    }
    None
}

/// `/proc/net/vlan/<if>` (net/8021q/vlanproc.c): `<if>  VID: 1015<TAB> REORDER_HDR: 1 ...` and
/// `Device: eth0`. Returns the id and the parent.
pub fn parse_proc_vlan(text: &str) -> Option<(u16, Option<String>)> {
    let first = text.lines().next()?;
    let mut words = first.split_whitespace();
    words.find(|w| *w == "VID:")?;
    let vid = words.next()?.parse().ok()?;
    let parent = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Device:"))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    Some((vid, parent))
}

/// `eth0.1015` → ("eth0", 1015): the 8021q default naming (VLAN_NAME_TYPE_RAW_PLUS_VID_NO_PAD).
pub fn parse_vlan_name(name: &str) -> Option<(String, u16)> {
    let (parent, id) = name.rsplit_once('.')?;
    let id: u16 = id.parse().ok()?;
    (!parent.is_empty() && (1..=4094).contains(&id)).then(|| (parent.to_string(), id))
}

/// Vendor, device and class of a PCI `modalias` (`pci:v00008086d00001572sv...bc02sc00i00`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciModalias {
    /// `0x8086`
    pub vendor: String,
    /// `0x1572`
    pub device: String,
    /// `0x020000`, as the sysfs `class` file writes it.
    pub class: String,
}

pub fn parse_pci_modalias(text: &str) -> Option<PciModalias> {
    let t = text.trim().strip_prefix("pci:")?;
    // Fields: v(8) d(8) sv(8) sd(8) bc(2) sc(2) i(2), each hex after its tag.
    let field = |tag: &str, len: usize| -> Option<String> {
        let at = find_tag(t, tag)?;
        let v = t.get(at + tag.len()..at + tag.len() + len)?;
        v.chars().all(|c| c.is_ascii_hexdigit()).then(|| v.to_ascii_lowercase())
    };
    let vendor = field("v", 8)?;
    let device = field("d", 8)?;
    let class = format!("0x{}{}{}", field("bc", 2)?, field("sc", 2)?, field("i", 2)?);
    Some(PciModalias { vendor: format!("0x{}", &vendor[4..]), device: format!("0x{}", &device[4..]), class })
}

/// Position of a modalias tag: tags are lower-case letters, values upper-case hex, so a tag is
/// a run of lower-case letters equal to `tag`.
fn find_tag(t: &str, tag: &str) -> Option<usize> {
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_lowercase() {
            let start = i;
            while i < b.len() && b[i].is_ascii_lowercase() {
                i += 1;
            }
            if &t[start..i] == tag {
                return Some(start);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// `0x8086\n` → `0x8086`; anything not hex is `None`.
fn normalize_pci_id(text: &str) -> Option<String> {
    let t = text.trim();
    let hex = t.strip_prefix("0x").unwrap_or(t);
    (!hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| format!("0x{}", hex.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ScanOptions;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    /// Every capture of the fixture trees, and each with every key removed, every value
    /// replaced by each kind of JSON value, and an unknown key added, at the top, inside each
    /// uapi struct, in `timestamping` and in `features`: the hand reader gives what serde's
    /// derive gives, or both refuse. (A list where a struct goes is left out: serde took it
    /// as the fields in order, the hand reader refuses it.)
    #[test]
    fn capture_reader_agrees_with_serde() {
        use serde_json::{Value, json};
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts");
        let mut captures = Vec::new();
        for host in fs::read_dir(&dir).unwrap().flatten() {
            let Ok(files) = fs::read_dir(host.path().join("var/lib/lltune/capture/ethtool")) else { continue };
            for f in files.flatten() {
                captures.push(serde_json::from_str::<Value>(&fs::read_to_string(f.path()).unwrap()).unwrap());
            }
        }
        assert!(captures.len() >= 8, "{}", captures.len());
        let kinds = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(7),
            json!(-1),
            json!(4294967295u64),
            json!(4294967296u64),
            json!(1.5),
            json!("x"),
            json!(["a", "b"]),
            json!([1]),
            json!({}),
            json!({"rx_pending": 5, "so_timestamping": [], "tx_types": [], "rx_filters": []}),
        ];
        let structs = ["timestamping", "coalesce", "rings", "pause", "channels"];
        let mut docs: Vec<Value> = vec![json!(null), json!("x"), json!({})];
        for c in &captures {
            docs.push(c.clone());
            let top = c.as_object().unwrap();
            for (key, value) in top {
                let mut gone = c.clone();
                gone.as_object_mut().unwrap().remove(key);
                docs.push(gone);
                for k in &kinds {
                    if structs.contains(&key.as_str()) && k.is_array() {
                        continue;
                    }
                    let mut v = c.clone();
                    v[key] = k.clone();
                    docs.push(v);
                }
                let Value::Object(inner) = value else { continue };
                let fields: Vec<String> = inner.keys().cloned().chain(["cmd".into(), "no_such_field".into()]).collect();
                for field in &fields {
                    let mut gone = c.clone();
                    gone[key].as_object_mut().unwrap().remove(field);
                    docs.push(gone);
                    for k in &kinds {
                        let mut v = c.clone();
                        v[key][field.as_str()] = k.clone();
                        docs.push(v);
                    }
                }
            }
            let mut v = c.clone();
            v["no_such_key"] = json!({"x": 1});
            docs.push(v);
        }
        let (mut ok, mut refused, mut impossible) = (0, 0, 0);
        for doc in &docs {
            let by_serde = serde_json::from_value::<EthtoolState>(doc.clone());
            let by_hand = capture::ethtool_state(doc);
            // Beyond serde: a ring or channel count above its maximum is refused.
            if let Ok(st) = &by_serde {
                let check = st
                    .rings
                    .as_ref()
                    .map_or(Ok(()), |r| r.check().map_err(|e| format!("rings.{e}")))
                    .and(st.channels.as_ref().map_or(Ok(()), |c| c.check().map_err(|e| format!("channels.{e}"))));
                if let Err(e) = check {
                    assert_eq!(by_hand.as_ref().unwrap_err(), &e, "{doc}");
                    impossible += 1;
                    continue;
                }
            }
            match (&by_serde, &by_hand) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "{doc}");
                    ok += 1;
                }
                (Err(_), Err(e)) => {
                    assert!(!e.is_empty() && !e.contains('\n'), "{e}");
                    refused += 1;
                }
                _ => panic!("serde {by_serde:?}, by hand {by_hand:?}: {doc}"),
            }
        }
        // Both kinds of answer were met, many times.
        eprintln!("{} documents: {ok} read alike, {refused} refused by both, {impossible} impossible", docs.len());
        assert!(ok > 200 && refused > 200 && impossible > 10, "{ok} read, {refused} refused, {impossible} impossible");
        // A refusal names the key.
        let mut v = captures[0].clone();
        v["rings"] = json!({"rx_pending": -1});
        assert_eq!(
            capture::ethtool_state(&v).unwrap_err(),
            "rings.rx_pending: expected an integer from 0 to 4294967295, got -1"
        );
    }

    // See: issue 17 (capture integers beyond 64 bits were read, and rewritten, as floats).
    #[test]
    fn wide_integers_are_refused_as_written() {
        let e = capture::parse_text(r#"{"rings": {"rx_pending": 18446744073709551616}}"#).unwrap_err();
        assert_eq!(e, "rings.rx_pending: 18446744073709551616 is not an integer that fits in 64 bits; refused");
        let e = capture::parse_text(r#"{"x": [0, {"y": -99999999999999999999999}]}"#).unwrap_err();
        assert_eq!(e, "x[1].y: -99999999999999999999999 is not an integer that fits in 64 bits; refused");
        // A fraction is no integer to begin with: the field's own check names it.
        let e = capture::parse_text(r#"{"rings": {"rx_pending": 1.5}}"#).unwrap_err();
        assert_eq!(e, "rings.rx_pending: expected an integer from 0 to 4294967295, got 1.5");
        assert!(
            capture::parse_text(r#"{"rings": {"rx_pending": 18446744073709551615, "rx_max_pending": 1}}"#).is_err()
        );
        assert!(capture::parse_text(r#"{"unknown": 18446744073709551615}"#).is_ok());
    }

    #[test]
    fn pci_addresses_are_told_from_other_device_names() {
        assert!(is_pci_address("0000:5e:00.0"));
        assert!(is_pci_address("10000:e1:00.7"));
        assert!(!is_pci_address("0000:5e:00.8"));
        assert!(!is_pci_address("virtio1"));
        assert!(!is_pci_address("0000:5e:00"));
        assert!(!is_pci_address("pci0000:00"));
    }

    #[test]
    fn modalias_gives_vendor_device_and_class() {
        let m = parse_pci_modalias("pci:v000015B3d00001003sv000015B3sd00000059bc02sc80i00\n").unwrap();
        assert_eq!(m, PciModalias { vendor: "0x15b3".into(), device: "0x1003".into(), class: "0x028000".into() });
        assert!(parse_pci_modalias("usb:v1D6Bp0002").is_none());
        assert!(parse_pci_modalias("pci:v0000").is_none());
    }

    #[test]
    fn proc_vlan_gives_id_and_parent() {
        let text = "eth0.1015  VID: 1015\t REORDER_HDR: 1  dev->priv_flags: 1001\n\
                    \x20        total frames received            0\n\
                    Device: eth0\n\
                    INGRESS priority mappings: 0:0  1:0\n";
        assert_eq!(parse_proc_vlan(text), Some((1015, Some("eth0".into()))));
        assert_eq!(parse_proc_vlan("garbage\n"), None);
    }

    #[test]
    fn vlan_names_split_at_the_last_dot() {
        assert_eq!(parse_vlan_name("eth0.1015"), Some(("eth0".into(), 1015)));
        assert_eq!(parse_vlan_name("bond0.10.20"), Some(("bond0.10".into(), 20)));
        assert_eq!(parse_vlan_name("eth0.4095"), None);
        assert_eq!(parse_vlan_name("eth0"), None);
    }

    #[test]
    fn speed_and_numa_unknowns_are_none() {
        assert_eq!(parse_speed("10000\n"), Some(10000));
        assert_eq!(parse_speed("-1\n"), None);
        assert_eq!(parse_speed("4294967295"), None);
        assert_eq!(parse_speed("65535"), None);
        assert_eq!(parse_speed(""), None);
        assert_eq!(parse_numa_node("-1\n"), None);
        assert_eq!(parse_numa_node("1\n"), Some(1));
    }

    #[test]
    fn queue_names_and_uevent_values() {
        assert_eq!(parse_queue_name("rx-12"), Some(("rx", 12)));
        assert_eq!(parse_queue_name("tx-0"), Some(("tx", 0)));
        assert_eq!(parse_queue_name("rx-x"), None);
        assert_eq!(parse_queue_name("power"), None);
        let u = "DEVTYPE=vlan\nINTERFACE=eth0.5\nIFINDEX=7\n";
        assert_eq!(uevent_value(u, "DEVTYPE").as_deref(), Some("vlan"));
        assert_eq!(uevent_value(u, "INTERFACE").as_deref(), Some("eth0.5"));
        assert_eq!(uevent_value(u, "PCI_SLOT_NAME"), None);
    }

    #[test]
    fn at_parent_suffix_is_dropped_only_when_it_names_a_device() {
        let all = vec!["eth0".to_string(), "eth0.5@eth0".to_string(), "we@ird".to_string()];
        assert_eq!(display_name("eth0.5@eth0", &all), "eth0.5");
        assert_eq!(display_name("we@ird", &all), "we@ird");
    }

    // A small tree in the kernel's layout, written here: one PCI NIC with a VLAN on it, a
    // bridge whose link dangles, a loopback, bonding_masters, and a vfio-bound PCI NIC whose
    // ids exist only in modalias.
    fn write(root: &Path, path: &str, text: &str) {
        let p = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    fn link(root: &Path, path: &str, target: &str) {
        let p = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        let pci = "/sys/devices/pci0000:00/0000:00:02.0/0000:3b:00.0";
        write(r, &format!("{pci}/class"), "0x020000\n");
        write(r, &format!("{pci}/vendor"), "0x8086\n");
        write(r, &format!("{pci}/device"), "0x1572\n");
        write(r, &format!("{pci}/numa_node"), "1\n");
        write(r, &format!("{pci}/local_cpus"), "00000000,ff00ff00\n");
        link(r, &format!("{pci}/driver"), "../../../../bus/pci/drivers/i40e");
        write(r, &format!("{pci}/ptp/ptp2/clock_name"), "i40e\n");
        let net = format!("{pci}/net/ens1f0");
        link(r, "/sys/class/net/ens1f0", "../../devices/pci0000:00/0000:00:02.0/0000:3b:00.0/net/ens1f0");
        link(r, &format!("{net}/device"), "../../../0000:3b:00.0");
        write(r, &format!("{net}/uevent"), "INTERFACE=ens1f0\nIFINDEX=2\n");
        write(r, &format!("{net}/type"), "1\n");
        write(r, &format!("{net}/mtu"), "9000\n");
        write(r, &format!("{net}/operstate"), "up\n");
        write(r, &format!("{net}/carrier"), "1\n");
        write(r, &format!("{net}/speed"), "25000\n");
        write(r, &format!("{net}/duplex"), "full\n");
        write(r, &format!("{net}/address"), "3c:fd:fe:00:00:01\n");
        for q in 0..2 {
            write(r, &format!("{net}/queues/rx-{q}/rps_cpus"), if q == 0 { "00000000,00000003\n" } else { "0\n" });
            write(r, &format!("{net}/queues/rx-{q}/rps_flow_cnt"), "2048\n");
            write(r, &format!("{net}/queues/tx-{q}/xps_cpus"), &format!("{:x}\n", 1 << (q + 8)));
        }
        let vlan = "/sys/devices/virtual/net/ens1f0.100";
        link(r, "/sys/class/net/ens1f0.100", "../../devices/virtual/net/ens1f0.100");
        write(r, &format!("{vlan}/uevent"), "DEVTYPE=vlan\nINTERFACE=ens1f0.100\n");
        link(r, &format!("{vlan}/lower_ens1f0"), "../../../pci0000:00/0000:00:02.0/0000:3b:00.0/net/ens1f0");
        write(r, &format!("{vlan}/speed"), "-1\n");
        link(r, "/sys/class/net/br0", "../../devices/virtual/net/br0"); // dangling
        link(r, "/sys/class/net/lo", "../../devices/virtual/net/lo");
        write(r, "/sys/devices/virtual/net/lo/type", "772\n");
        write(r, "/sys/class/net/bonding_masters", "\n");
        let vf = "/sys/devices/pci0000:80/0000:80:01.0/0000:af:00.0";
        link(r, "/sys/bus/pci/devices/0000:af:00.0", "../../../devices/pci0000:80/0000:80:01.0/0000:af:00.0");
        write(r, &format!("{vf}/modalias"), "pci:v000015B3d0000101Esv000015B3sd00000001bc02sc00i00\n");
        write(r, &format!("{vf}/numa_node"), "-1\n");
        link(r, &format!("{vf}/driver"), "../../../../bus/pci/drivers/vfio-pci");
        link(r, "/sys/bus/pci/devices/0000:3b:00.0", "../../../devices/pci0000:00/0000:00:02.0/0000:3b:00.0");
        let other = "/sys/devices/pci0000:00/0000:00:1f.2";
        link(r, "/sys/bus/pci/devices/0000:00:1f.2", "../../../devices/pci0000:00/0000:00:1f.2");
        write(r, &format!("{other}/class"), "0x010601\n");
        d
    }

    fn scan_tree(root: &Path, detail: bool) -> (Vec<Nic>, Vec<String>) {
        let host = Host::new(root).unwrap();
        let mut scan = Scan::new(&host, ScanOptions { detail });
        let nics = read(&mut scan);
        (nics, scan.warnings().to_vec())
    }

    fn by_name<'a>(nics: &'a [Nic], name: &str) -> &'a Nic {
        nics.iter().find(|n| n.name.as_deref() == Some(name)).unwrap_or_else(|| panic!("no nic {name}"))
    }

    #[test]
    fn tree_scan_reads_physical_virtual_and_pci_only_nics() {
        let d = tree();
        let (nics, warnings) = scan_tree(d.path(), false);
        assert!(warnings.is_empty(), "{warnings:?}");
        let names: Vec<Option<&str>> = nics.iter().map(|n| n.name.as_deref()).collect();
        assert_eq!(names, [Some("br0"), Some("ens1f0"), Some("ens1f0.100"), Some("lo"), None]);

        let e = by_name(&nics, "ens1f0");
        assert!(!e.r#virtual);
        assert_eq!(e.driver.as_deref(), Some("i40e"));
        assert_eq!(e.pci_address.as_deref(), Some("0000:3b:00.0"));
        assert_eq!((e.vendor_id.as_deref(), e.device_id.as_deref()), (Some("0x8086"), Some("0x1572")));
        assert_eq!(e.numa_node, Some(1));
        assert_eq!(e.local_cpulist.as_ref().unwrap().to_string(), "8-15,24-31");
        assert_eq!((e.mtu, e.speed_mbps, e.carrier), (Some(9000), Some(25000), Some(true)));
        assert_eq!((e.operstate.as_deref(), e.duplex.as_deref()), (Some("up"), Some("full")));
        assert_eq!(e.address.as_deref(), Some("3c:fd:fe:00:00:01"));
        assert_eq!(e.phc_index, Some(2));
        assert_eq!(e.kind, None);
        let q = e.queues.as_ref().unwrap();
        assert_eq!((q.rx_count, q.tx_count), (2, 2));
        assert_eq!(q.rps_cpus.as_ref().unwrap().to_string(), "0-1");
        assert_eq!(q.rps_flow_cnt, Some(4096));
        assert_eq!(q.xps_cpus.as_ref().unwrap().to_string(), "8-9");
        assert!(q.rx.is_none() && q.tx.is_none());
        // No capture and not live: no ethtool state.
        assert!(e.features.is_none() && e.rings.is_none() && e.firmware.is_none());

        let v = by_name(&nics, "ens1f0.100");
        assert!(v.r#virtual);
        assert_eq!((v.kind.as_deref(), v.parent.as_deref(), v.vlan_id), (Some("vlan"), Some("ens1f0"), Some(100)));
        assert_eq!((v.pci_address.as_ref(), v.numa_node, v.speed_mbps), (None, None, None));

        let br = by_name(&nics, "br0");
        assert!(br.r#virtual);
        assert_eq!((br.driver.as_ref(), br.kind.as_ref(), br.mtu), (None, None, None));
        assert_eq!(by_name(&nics, "lo").kind.as_deref(), Some("loopback"));

        let vf = nics.last().unwrap();
        assert_eq!(vf.pci_address.as_deref(), Some("0000:af:00.0"));
        assert_eq!(vf.driver.as_deref(), Some("vfio-pci"));
        assert_eq!((vf.vendor_id.as_deref(), vf.device_id.as_deref()), (Some("0x15b3"), Some("0x101e")));
        assert_eq!(vf.numa_node, None);
        assert!(!vf.r#virtual);
    }

    #[test]
    fn detail_lists_each_queue() {
        let d = tree();
        let (nics, _) = scan_tree(d.path(), true);
        let q = by_name(&nics, "ens1f0").queues.clone().unwrap();
        let rx = q.rx.unwrap();
        assert_eq!(
            rx[0],
            RxQueue { queue: 0, rps_cpus: Some(CpuList::parse("0-1").unwrap()), rps_flow_cnt: Some(2048) }
        );
        assert_eq!(rx[1].rps_cpus.as_ref().unwrap().to_string(), "");
        assert_eq!(q.tx.unwrap()[1], TxQueue { queue: 1, xps_cpus: Some(CpuList::parse("9").unwrap()) });
    }

    #[test]
    fn capture_files_reproduce_ethtool_state_on_a_tree() {
        let d = tree();
        let (mut nics, _) = scan_tree(d.path(), false);
        let e = nics.iter_mut().find(|n| n.name.as_deref() == Some("ens1f0")).unwrap();
        e.firmware = Some("8.30 0x8000a4a0 1.2879.0".into());
        e.driver_version = Some("2.8.20-k".into());
        e.autoneg = Some(false);
        e.features = Some([("rx-gro".to_string(), false), ("rx-checksum".to_string(), true)].into());
        e.features_fixed = Some(vec!["tx-lockless".into()]);
        e.rings = Some(Ringparam {
            rx_max_pending: 4096,
            tx_max_pending: 4096,
            rx_pending: 512,
            tx_pending: 512,
            ..Default::default()
        });
        e.coalesce = Some(Coalesce { rx_coalesce_usecs: 0, use_adaptive_rx_coalesce: 1, ..Default::default() });
        e.pause = Some(Pauseparam { rx_pause: 1, ..Default::default() });
        e.channels = Some(Channels { max_combined: 64, combined_count: 8, ..Default::default() });
        e.timestamping = Some(Timestamping {
            so_timestamping: vec!["hardware-transmit".into()],
            tx_types: vec!["on".into()],
            rx_filters: vec!["all".into()],
        });
        let files = capture_files(&nics);
        assert_eq!(files.len(), 4, "one per named netdev");
        for (path, json) in &files {
            write(d.path(), path, json);
        }
        let (again, warnings) = scan_tree(d.path(), false);
        assert!(warnings.is_empty(), "{warnings:?}");
        let before = serde_json::to_value(&nics).unwrap();
        let after = serde_json::to_value(&again).unwrap();
        assert_eq!(before, after);
        assert_eq!(after[1]["coalesce"]["use_adaptive_rx_coalesce"], serde_json::json!(true));
    }

    #[test]
    fn a_broken_capture_file_is_a_warning_not_a_failure() {
        let d = tree();
        write(d.path(), &format!("{ETHTOOL_CAPTURE_DIR}/ens1f0.json"), "{ not json");
        let (nics, warnings) = scan_tree(d.path(), false);
        assert_eq!(nics.len(), 5);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("/var/lib/lltune/capture/ethtool/ens1f0.json: "), "{warnings:?}");
    }

    #[test]
    fn without_sys_class_net_pci_nics_are_still_listed() {
        let d = tree();
        fs::remove_dir_all(d.path().join("sys/class")).unwrap();
        let (nics, _) = scan_tree(d.path(), false);
        let addrs: Vec<&str> = nics.iter().map(|n| n.pci_address.as_deref().unwrap()).collect();
        assert_eq!(addrs, ["0000:3b:00.0", "0000:af:00.0"]);
        assert!(nics.iter().all(|n| n.name.is_none()));
        assert_eq!(nics[0].driver.as_deref(), Some("i40e"));
        assert_eq!(nics[0].phc_index, Some(2));
    }

    #[test]
    fn resolve_follows_relative_and_dangling_links() {
        let d = tree();
        let host = Host::new(d.path()).unwrap();
        assert_eq!(resolve(&host, "/sys/class/net/ens1f0/device"), "/sys/devices/pci0000:00/0000:00:02.0/0000:3b:00.0");
        assert_eq!(resolve(&host, "/sys/class/net/br0/device"), "/sys/devices/virtual/net/br0/device");
        link(d.path(), "/loop/a", "b");
        link(d.path(), "/loop/b", "a");
        assert!(resolve(&host, "/loop/a/x").ends_with("/x"));
    }
}
