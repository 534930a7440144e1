//! Kernel-bypass stacks: Onload (AMD/Solarflare), VMA and its successor XLIO (NVIDIA), and
//! the RDMA devices they and others use (/sys/class/infiniband).
//!
//! The surprising parts: Onload's version is in `/proc/driver/onload/version` as
//! `onload_version: 8.1.2.26` (one line of several), and in `/sys/module/onload/version`
//! only while the module is loaded; VMA/XLIO ship no version file, only the versioned
//! library name (`libvma.so.9.8.40`); an RDMA device's `node_type` and a port's `state` are
//! written `1: CA` / `4: ACTIVE`, number first.

use serde::{Deserialize, Serialize};

use super::{Scan, nic::Nic};

/// Onload: `user_stacks.onload`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Onload {
    /// The `onload` launcher or the kernel module is present; null when the tree has
    /// neither /usr/bin nor /sys/module to look in.
    pub installed: Option<bool>,
    /// /sys/module/onload exists; null without /sys/module.
    pub module_loaded: Option<bool>,
    /// From /proc/driver/onload/version, else /sys/module/onload/version.
    pub version: Option<String>,
    /// Path of the `onload` launcher script, when found.
    pub launcher: Option<String>,
}

/// A preload library stack (VMA or XLIO): `user_stacks.vma`, `user_stacks.xlio`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreloadLib {
    /// A library file was found; null when none of the library folders exists.
    pub installed: Option<bool>,
    /// Every `lib<name>.so*` found in the library folders.
    pub libraries: Vec<String>,
    /// The highest version in a library file name (`libvma.so.9.8.40` -> `9.8.40`).
    pub version: Option<String>,
}

/// One port of an RDMA device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdmaPort {
    pub port: u32,
    /// `state` without its number: `ACTIVE`, `DOWN`, `INIT`.
    pub state: Option<String>,
    /// `phys_state` without its number: `LinkUp`, `Disabled`.
    pub phys_state: Option<String>,
    /// `InfiniBand` or `Ethernet` (RoCE).
    pub link_layer: Option<String>,
    /// `rate`: `100 Gb/sec (4X EDR)`.
    pub rate: Option<String>,
}

/// An RDMA device (`/sys/class/infiniband/<name>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdmaDevice {
    pub name: String,
    /// `device/numa_node`; -1 is null.
    pub numa_node: Option<i32>,
    /// PCI function of `device` (null for a non-PCI device).
    pub pci_address: Option<String>,
    /// Network devices of the same function (`device/net/*`).
    pub netdevs: Vec<String>,
    /// `node_type` without its number: `CA`, `switch`, `router`, `RNIC`.
    pub node_type: Option<String>,
    pub fw_ver: Option<String>,
    pub ports: Vec<RdmaPort>,
}

/// Kernel-bypass stacks: `user_stacks` in the facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserStacks {
    pub onload: Onload,
    pub vma: PreloadLib,
    pub xlio: PreloadLib,
    pub rdma: Vec<RdmaDevice>,
}

/// Library folders of the common distributions.
const LIB_DIRS: &[&str] = &[
    "/usr/lib64",
    "/usr/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/local/lib",
    "/usr/local/lib64",
];

/// `onload_version: X` from /proc/driver/onload/version.
pub fn parse_onload_version(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "onload_version").then(|| v.trim().to_string()).filter(|v| !v.is_empty())
    })
}

/// The version in a library file name: `libvma.so.9.8.40` -> `9.8.40`; `libvma.so` -> None.
pub fn library_version(file: &str, lib: &str) -> Option<String> {
    let v = file.strip_prefix(&format!("lib{lib}.so."))?;
    (!v.is_empty() && v.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        .then(|| v.to_string())
}

/// Compares dotted versions numerically (`9.10.0` > `9.8.40`).
fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// Drops the `N: ` in front of sysfs values such as `4: ACTIVE`.
pub fn strip_enum_number(text: &str) -> String {
    match text.split_once(':') {
        Some((n, rest)) if n.trim().bytes().all(|b| b.is_ascii_digit()) && !n.trim().is_empty() => {
            rest.trim().to_string()
        }
        _ => text.trim().to_string(),
    }
}

fn is_pci_address(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && s.chars().enumerate().all(|(i, c)| matches!(i, 4 | 7 | 10) || c.is_ascii_hexdigit())
}

fn read_preload(scan: &mut Scan, lib: &str) -> PreloadLib {
    let prefix = format!("lib{lib}.so");
    let mut out = PreloadLib::default();
    for dir in LIB_DIRS {
        for f in scan.host.list_or_empty(dir) {
            if f == prefix || f.starts_with(&format!("{prefix}.")) {
                if let Some(v) = library_version(&f, lib) {
                    if out.version.as_deref().is_none_or(|cur| version_key(&v) > version_key(cur)) {
                        out.version = Some(v);
                    }
                }
                out.libraries.push(format!("{dir}/{f}"));
            }
        }
    }
    let looked = LIB_DIRS.iter().any(|d| scan.host.is_dir(d));
    out.installed = (looked || !out.libraries.is_empty()).then_some(!out.libraries.is_empty());
    out
}

fn read_rdma(scan: &mut Scan) -> Vec<RdmaDevice> {
    let mut out = Vec::new();
    for name in scan.host.list_or_empty("/sys/class/infiniband") {
        let base = format!("/sys/class/infiniband/{name}");
        let numa_node = scan.host.attr_parse::<i32>(&format!("{base}/device/numa_node")).filter(|&n| n >= 0);
        let pci_address = scan.host.link_name(&format!("{base}/device")).filter(|d| is_pci_address(d));
        let netdevs = scan.host.list_or_empty(&format!("{base}/device/net"));
        let node_type = scan.host.attr(&format!("{base}/node_type")).map(|t| strip_enum_number(&t));
        let fw_ver = scan.host.attr(&format!("{base}/fw_ver")).filter(|v| !v.is_empty());
        let mut ports: Vec<RdmaPort> = scan
            .host
            .list_or_empty(&format!("{base}/ports"))
            .into_iter()
            .filter_map(|p| p.parse::<u32>().ok())
            .map(|port| {
                let pb = format!("{base}/ports/{port}");
                RdmaPort {
                    port,
                    state: scan.host.attr(&format!("{pb}/state")).map(|s| strip_enum_number(&s)),
                    phys_state: scan.host.attr(&format!("{pb}/phys_state")).map(|s| strip_enum_number(&s)),
                    link_layer: scan.host.attr(&format!("{pb}/link_layer")).filter(|s| !s.is_empty()),
                    rate: scan.host.attr(&format!("{pb}/rate")).filter(|s| !s.is_empty()),
                }
            })
            .collect();
        crate::sort::sort_by_key(&mut ports, |p| p.port);
        out.push(RdmaDevice { name, numa_node, pci_address, netdevs, node_type, fw_ver, ports });
    }
    out
}

/// Reads the kernel-bypass stacks. RDMA devices carry their own netdev names (from sysfs),
/// so the NIC list is not needed to relate them.
pub fn read(scan: &mut Scan, _nics: &[Nic]) -> UserStacks {
    let module_loaded = scan.host.is_dir("/sys/module").then(|| scan.host.is_dir("/sys/module/onload"));
    let version = scan
        .host
        .read_opt("/proc/driver/onload/version")
        .ok()
        .flatten()
        .and_then(|t| parse_onload_version(&t))
        .or_else(|| scan.host.attr("/sys/module/onload/version").filter(|v| !v.is_empty()));
    let launcher = ["/usr/bin/onload", "/usr/local/bin/onload", "/opt/onload/bin/onload"]
        .into_iter()
        .find(|p| scan.host.exists(p))
        .map(str::to_string);
    let found = module_loaded == Some(true) || launcher.is_some();
    let looked = module_loaded.is_some() || scan.host.is_dir("/usr/bin");
    let onload = Onload { installed: (found || looked).then_some(found), module_loaded, version, launcher };
    UserStacks { onload, vma: read_preload(scan, "vma"), xlio: read_preload(scan, "xlio"), rdma: read_rdma(scan) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ScanOptions;
    use crate::host::Host;
    use std::fs;

    #[test]
    fn onload_version_line() {
        let t = "onload_product: Onload\nonload_version: 8.1.2.26\nuk_intf_ver: 5d3c1a0b8c6f\n";
        assert_eq!(parse_onload_version(t).as_deref(), Some("8.1.2.26"));
        assert_eq!(parse_onload_version("onload_product: Onload\n"), None);
    }

    #[test]
    fn library_versions_from_file_names() {
        assert_eq!(library_version("libvma.so.9.8.40", "vma").as_deref(), Some("9.8.40"));
        assert_eq!(library_version("libvma.so", "vma"), None);
        assert_eq!(library_version("libvma.so.9.8.40.debug", "vma"), None);
        assert_eq!(library_version("libvmaextra.so.1", "vma"), None);
        assert!(version_key("9.10.0") > version_key("9.8.40"));
    }

    #[test]
    fn enum_numbers_are_dropped() {
        assert_eq!(strip_enum_number("4: ACTIVE"), "ACTIVE");
        assert_eq!(strip_enum_number("1: CA"), "CA");
        assert_eq!(strip_enum_number("5: LinkUp"), "LinkUp");
        assert_eq!(strip_enum_number("ACTIVE"), "ACTIVE");
    }

    #[test]
    fn a_tree_without_usr_or_sys_module_knows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        let mut scan = Scan::new(&host, ScanOptions::default());
        let s = read(&mut scan, &[]);
        assert_eq!((s.onload.installed, s.onload.module_loaded), (None, None));
        assert_eq!((s.vma.installed, s.xlio.installed), (None, None));
        assert!(s.rdma.is_empty());
    }

    #[test]
    fn stacks_on_a_small_tree() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let mk = |p: &str, t: &str| {
            let p = r.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, t).unwrap();
        };
        mk("usr/lib64/libvma.so.9.8.40", "");
        mk("usr/lib64/libvma.so.9.10.1", "");
        mk("usr/lib64/libvma.so", "");
        mk("usr/lib64/libc.so.6", "");
        mk("usr/bin/onload", "#!/bin/sh\n");
        mk("sys/module/onload/version", "8.1.2.26\n");
        let pci = "sys/devices/pci0000:80/0000:80:02.2/0000:82:00.0";
        mk(&format!("{pci}/numa_node"), "1\n");
        fs::create_dir_all(r.join(pci).join("net/ib0")).unwrap();
        mk(&format!("{pci}/infiniband/mlx4_0/node_type"), "1: CA\n");
        mk(&format!("{pci}/infiniband/mlx4_0/ports/1/state"), "4: ACTIVE\n");
        mk(&format!("{pci}/infiniband/mlx4_0/ports/1/link_layer"), "InfiniBand\n");
        std::os::unix::fs::symlink("../../../0000:82:00.0", r.join(pci).join("infiniband/mlx4_0/device")).unwrap();
        fs::create_dir_all(r.join("sys/class/infiniband")).unwrap();
        std::os::unix::fs::symlink(
            "../../devices/pci0000:80/0000:80:02.2/0000:82:00.0/infiniband/mlx4_0",
            r.join("sys/class/infiniband/mlx4_0"),
        )
        .unwrap();
        // A dangling link, as captures hold: listed, every field null.
        std::os::unix::fs::symlink("../../devices/scif_dma_0/infiniband/scif0", r.join("sys/class/infiniband/scif0"))
            .unwrap();

        let host = Host::new(r).unwrap();
        let mut scan = Scan::new(&host, ScanOptions::default());
        let s = read(&mut scan, &[]);
        assert_eq!(
            s.onload,
            Onload {
                installed: Some(true),
                module_loaded: Some(true),
                version: Some("8.1.2.26".into()),
                launcher: Some("/usr/bin/onload".into())
            }
        );
        assert_eq!(s.vma.libraries.len(), 3);
        assert_eq!(s.vma.version.as_deref(), Some("9.10.1"));
        assert_eq!(s.vma.installed, Some(true));
        assert_eq!(s.xlio.installed, Some(false), "/usr/lib64 was searched");
        assert_eq!(s.rdma.len(), 2);
        let d = &s.rdma[0];
        assert_eq!((d.name.as_str(), d.numa_node, d.pci_address.as_deref()), ("mlx4_0", Some(1), Some("0000:82:00.0")));
        assert_eq!(d.netdevs, vec!["ib0"]);
        assert_eq!(d.node_type.as_deref(), Some("CA"));
        assert_eq!(
            d.ports,
            vec![RdmaPort {
                port: 1,
                state: Some("ACTIVE".into()),
                link_layer: Some("InfiniBand".into()),
                ..RdmaPort::default()
            }]
        );
        assert_eq!(s.rdma[1], RdmaDevice { name: "scif0".into(), ..RdmaDevice::default() });
    }
}
