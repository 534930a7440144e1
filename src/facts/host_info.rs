//! The host itself: name, OS, kernel release, architecture, virtualization.
//! Sources: /proc/sys/kernel/{hostname,osrelease}, /etc/os-release (os-release(5)),
//! /sys/class/dmi/id (SMBIOS), /sys/hypervisor/type, the `hypervisor` CPU flag.

use serde::{Deserialize, Serialize};

use super::Scan;
use crate::facts::cpu::parse_cpuinfo;

/// `host` facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostInfo {
    pub hostname: Option<String>,
    /// `uname -r`.
    pub kernel_release: Option<String>,
    /// os-release `ID` (rhel, rocky, almalinux, debian, ubuntu, ...).
    pub os_id: Option<String>,
    /// os-release `ID_LIKE`, split.
    pub os_like: Vec<String>,
    pub os_version_id: Option<String>,
    pub os_pretty_name: Option<String>,
    /// x86_64, aarch64, ...
    pub architecture: Option<String>,
    pub virtualization: Virtualization,
    /// SMBIOS identity of the machine (BIOS tuning depends on vendor and version).
    pub dmi: Dmi,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Virtualization {
    /// `none` on bare metal, else kvm, vmware, hyperv, xen, gce, ec2, ... Null when unknown.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `guest` or `host` (null on bare metal or when unknown).
    pub role: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Dmi {
    pub sys_vendor: Option<String>,
    pub product_name: Option<String>,
    pub bios_vendor: Option<String>,
    pub bios_version: Option<String>,
}

/// Reads `KEY=value` pairs of os-release(5), unquoting values.
pub fn parse_os_release(text: &str, key: &str) -> Option<String> {
    text.lines().filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('=')).next_back().map(|v| {
        let v = v.trim();
        v.strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .unwrap_or(v)
            .to_string()
    })
}

/// The text of os-release(5): `/etc/os-release`, else `/usr/lib/os-release`.
pub fn os_release(host: &crate::host::Host) -> Result<Option<String>, crate::host::HostError> {
    match host.read_opt("/etc/os-release")? {
        Some(t) => Ok(Some(t)),
        None => host.read_opt("/usr/lib/os-release"),
    }
}

/// The distribution and those it is like (`ID` and `ID_LIKE`), lowercase.
pub fn os_family(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = parse_os_release(text, "ID").map(|v| v.to_ascii_lowercase()).into_iter().collect();
    ids.extend(parse_os_release(text, "ID_LIKE").unwrap_or_default().split_whitespace().map(str::to_ascii_lowercase));
    ids
}

/// Names the hypervisor from SMBIOS strings (what systemd-detect-virt reads first).
pub fn virt_from_dmi(vendor: &str, product: &str) -> Option<&'static str> {
    let s = format!("{vendor} {product}").to_ascii_lowercase();
    [
        ("google compute engine", "gce"),
        ("amazon ec2", "amazon"),
        ("kvm", "kvm"),
        ("qemu", "qemu"),
        ("vmware", "vmware"),
        ("virtualbox", "oracle"),
        ("microsoft corporation virtual machine", "microsoft"),
        ("xen", "xen"),
        ("openstack", "kvm"),
        ("bochs", "bochs"),
        ("parallels", "parallels"),
    ]
    .iter()
    .find(|(needle, _)| s.contains(needle))
    .map(|(_, v)| *v)
}

/// Architecture from a kernel release string such as `5.14.0-427.el9_4.x86_64`.
fn arch_from_release(release: &str) -> Option<String> {
    ["x86_64", "aarch64", "ppc64le", "s390x", "i686", "amd64", "arm64"].iter().find(|a| release.ends_with(*a)).map(
        |a| match *a {
            "amd64" => "x86_64".to_string(),
            "arm64" => "aarch64".to_string(),
            other => other.to_string(),
        },
    )
}

pub fn read(scan: &mut Scan) -> HostInfo {
    let host = scan.host;
    let os = os_release(host).ok().flatten();
    let kernel_release = host.attr("/proc/sys/kernel/osrelease").or_else(|| {
        // "Linux version 5.14.0-... (mockbuild@...) ..."
        host.attr("/proc/version").and_then(|v| v.split_whitespace().nth(2).map(str::to_string))
    });
    let cpuinfo = scan.cpuinfo().ok().flatten().unwrap_or_default();
    let is_guest_flag =
        cpuinfo.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
    // The live host answers uname(2); a tree's architecture is inferred from its files.
    let architecture = host.system().architecture().or_else(|| {
        kernel_release.as_deref().and_then(arch_from_release).or_else(|| {
            let info = parse_cpuinfo(&cpuinfo);
            match info.vendor.as_deref() {
                Some("GenuineIntel" | "AuthenticAMD" | "HygonGenuine" | "CentaurHauls") => Some("x86_64".to_string()),
                Some(_) if cpuinfo.contains("CPU implementer") => Some("aarch64".to_string()),
                _ => None,
            }
        })
    });
    let dmi = Dmi {
        sys_vendor: host.attr("/sys/class/dmi/id/sys_vendor"),
        product_name: host.attr("/sys/class/dmi/id/product_name"),
        bios_vendor: host.attr("/sys/class/dmi/id/bios_vendor"),
        bios_version: host.attr("/sys/class/dmi/id/bios_version"),
    };
    let by_dmi = virt_from_dmi(dmi.sys_vendor.as_deref().unwrap_or(""), dmi.product_name.as_deref().unwrap_or(""));
    let hypervisor_type = host.attr("/sys/hypervisor/type");
    let virtualization = match (by_dmi, hypervisor_type.as_deref(), is_guest_flag) {
        (Some(v), _, _) => Virtualization { kind: Some(v.into()), role: Some("guest".into()) },
        (None, Some(t), _) => Virtualization { kind: Some(t.to_string()), role: Some("guest".into()) },
        // A guest whose hypervisor does not say its name (e.g. Firecracker, no SMBIOS).
        (None, None, true) => Virtualization { kind: Some("unknown".into()), role: Some("guest".into()) },
        (None, None, false) if dmi.sys_vendor.is_some() => Virtualization { kind: Some("none".into()), role: None },
        _ => Virtualization::default(),
    };
    HostInfo {
        hostname: host.attr("/proc/sys/kernel/hostname").or_else(|| host.attr("/etc/hostname")),
        kernel_release,
        os_id: os.as_deref().and_then(|t| parse_os_release(t, "ID")),
        os_like: os
            .as_deref()
            .and_then(|t| parse_os_release(t, "ID_LIKE"))
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        os_version_id: os.as_deref().and_then(|t| parse_os_release(t, "VERSION_ID")),
        os_pretty_name: os.as_deref().and_then(|t| parse_os_release(t, "PRETTY_NAME")),
        architecture,
        virtualization,
        dmi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values() {
        let t = "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME='Rocky Linux 9.4 (Blue Onyx)'\n";
        assert_eq!(parse_os_release(t, "ID").as_deref(), Some("rocky"));
        assert_eq!(parse_os_release(t, "ID_LIKE").as_deref(), Some("rhel centos fedora"));
        assert_eq!(parse_os_release(t, "VERSION_ID").as_deref(), Some("9.4"));
        assert_eq!(parse_os_release(t, "PRETTY_NAME").as_deref(), Some("Rocky Linux 9.4 (Blue Onyx)"));
        assert_eq!(parse_os_release(t, "VARIANT"), None);
    }

    #[test]
    fn virtualization_and_arch() {
        assert_eq!(virt_from_dmi("Google", "Google Compute Engine"), Some("gce"));
        assert_eq!(virt_from_dmi("Dell Inc.", "PowerEdge R640"), None);
        assert_eq!(virt_from_dmi("QEMU", "Standard PC (Q35 + ICH9, 2009)"), Some("qemu"));
        assert_eq!(arch_from_release("4.18.0-193.28.1.rt13.77.el8_2.x86_64").as_deref(), Some("x86_64"));
        assert_eq!(arch_from_release("6.1.0-18-amd64").as_deref(), Some("x86_64"));
        assert_eq!(arch_from_release("6.1.0"), None);
    }
}
