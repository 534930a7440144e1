//! Runtime values of the sysctls the tuners look at, from /proc/sys.
//!
//! The surprising parts: a name maps to a path by sysctl(8)'s rule (`parse_key`: the first
//! separator decides the spelling, and a `/` in a dotted name stands for a dot inside one
//! component, such as a VLAN interface `eth0.100`); a name part may hold a dash
//! (`fs.file-max`); multi-value sysctls use tabs (`net.ipv4.tcp_rmem` is
//! `4096\t131072\t6291456`), normalised here to single spaces as `sysctl -n` users write them;
//! several knobs left /proc/sys in newer kernels (`kernel.sched_min_granularity_ns` moved to
//! debugfs in 5.13) and are simply null.
//!
//! The boot-time files systemd-sysctl applies (sysctl.d(5)) are read here too, a line at a
//! time (`parse_line`), for `lltune_sysctl` and for what `lltune capture` keeps of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Scan;
use crate::cpulist::CpuList;

/// `{name: value}`; null when the kernel has no such file.
pub type Sysctls = BTreeMap<String, Option<String>>;

/// The sysctls reported, by their `sysctl` names.
pub const KEYS: &[&str] = &[
    "net.core.busy_poll",
    "net.core.busy_read",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.core.rmem_default",
    "net.core.wmem_default",
    "net.core.netdev_max_backlog",
    "net.core.netdev_budget",
    "net.core.netdev_budget_usecs",
    "net.core.somaxconn",
    "net.core.rps_sock_flow_entries",
    "net.core.dev_weight",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_sack",
    "net.ipv4.tcp_low_latency",
    "net.ipv4.tcp_fastopen",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_fin_timeout",
    "fs.file-max",
    "vm.swappiness",
    "vm.dirty_ratio",
    "vm.dirty_background_ratio",
    "vm.max_map_count",
    "vm.stat_interval",
    "vm.zone_reclaim_mode",
    "vm.nr_hugepages",
    "vm.overcommit_memory",
    "kernel.numa_balancing",
    "kernel.sched_rt_runtime_us",
    "kernel.timer_migration",
    "kernel.hung_task_timeout_secs",
    "kernel.nmi_watchdog",
    "kernel.watchdog",
    "kernel.watchdog_thresh",
    "kernel.sched_min_granularity_ns",
    "kernel.sched_migration_cost_ns",
    "kernel.randomize_va_space",
];

/// A sysctl name in both spellings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Dotted, as sysctl.d files write it: `net.ipv4.conf.eth0/100.rp_filter` (a `/` stands
    /// for a dot inside one component, e.g. a VLAN interface name).
    pub name: String,
    /// `/proc/sys/net/ipv4/conf/eth0.100/rp_filter`.
    pub path: String,
    /// Written `-net.core.x` (systemd-sysctl's "ignore errors setting it"): the file line
    /// keeps the `-`, and a key this kernel lacks is skipped at run time with a warning.
    pub ignore_errors: bool,
}

/// Parses a sysctl name written dotted (`net.core.busy_poll`) or as a path
/// (`net/core/busy_poll`), as sysctl(8) does: whichever separator comes first wins, and
/// the other character is swapped. Names that could inject text into a file are refused.
pub fn parse_key(raw: &str) -> Result<Key, String> {
    let bad =
        || format!("{:?} is not a sysctl name (letters, digits and _ - . / @ + : only)", crate::echo::cap_text(raw));
    // The kernel's longest names are under 100 characters.
    if raw.len() > 512 {
        return Err(bad());
    }
    if raw.is_empty() || !raw.chars().all(|c| c.is_ascii_alphanumeric() || "_-./@+:".contains(c)) {
        return Err(bad());
    }
    let swap = |s: &str| {
        s.chars()
            .map(|c| {
                if c == '.' {
                    '/'
                } else if c == '/' {
                    '.'
                } else {
                    c
                }
            })
            .collect::<String>()
    };
    let slash_form = raw.find(['.', '/']).is_some_and(|i| raw.as_bytes()[i] == b'/');
    let (name, rel) = if slash_form { (swap(raw), raw.to_string()) } else { (raw.to_string(), swap(raw)) };
    if rel.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(bad());
    }
    Ok(Key { name, path: format!("/proc/sys/{rel}"), ignore_errors: false })
}

/// Folders systemd-sysctl reads, earlier ones hiding same-named files of later ones.
pub const SYSCTL_DIRS: &[&str] =
    &["/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d"];

/// One assignment line of a sysctl.d file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Dotted key as written (may be a glob such as `net.ipv4.conf.*.rp_filter`).
    pub key: String,
    pub value: String,
    /// A leading `-`: errors setting it are ignored by systemd-sysctl.
    pub ignore_errors: bool,
}

/// Parses one sysctl.d line (sysctl.d(5)): `#` and `;` start comments, `key = value`.
pub fn parse_line(line: &str) -> Option<Assignment> {
    let l = line.trim();
    if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
        return None;
    }
    let (k, v) = l.split_once('=')?;
    let k = k.trim();
    let (ignore_errors, k) = match k.strip_prefix('-') {
        Some(rest) => (true, rest.trim()),
        None => (false, k),
    };
    Some(Assignment { key: k.to_string(), value: v.trim().to_string(), ignore_errors })
}

/// A sysctl value with runs of whitespace made single spaces, trimmed.
pub fn normalise_value(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads every sysctl of `KEYS`.
pub fn read(scan: &mut Scan) -> Sysctls {
    let mut out = Sysctls::new();
    for key in KEYS {
        let path = match parse_key(key) {
            Ok(k) => k.path,
            Err(e) => {
                scan.warn(e);
                continue;
            }
        };
        let value = match scan.host.read_opt(&path) {
            Ok(v) => v.map(|t| normalise_value(&t)),
            // Write-only or root-only files: say so, the value stays unknown.
            Err(e) => {
                scan.warn(e.to_string());
                None
            }
        };
        out.insert(key.to_string(), value);
    }
    out
}

/// CPUs that unbound kernel work may run on: sysfs knobs that isolation tunes beside the
/// sysctls (Documentation/core-api/workqueue.rst, "unbound_cpumask"). Reported as
/// `kernel.cpumasks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KernelCpumasks {
    /// `/sys/devices/virtual/workqueue/cpumask`: CPUs of unbound workqueues.
    pub workqueue: Option<CpuList>,
    /// `/sys/bus/workqueue/devices/writeback/cpumask`: CPUs of the writeback workqueue.
    pub writeback: Option<CpuList>,
}

/// Reads the workqueue and writeback cpumasks (hex masks); null when absent or not a mask.
pub fn read_cpumasks(scan: &mut Scan) -> KernelCpumasks {
    let mut mask = |path: &str| {
        let t = scan.host.attr(path)?;
        match CpuList::parse_mask(&t) {
            Ok(c) => Some(c),
            Err(e) => {
                scan.warn(format!("{path}: {e}"));
                None
            }
        }
    };
    KernelCpumasks {
        workqueue: mask("/sys/devices/virtual/workqueue/cpumask"),
        writeback: mask("/sys/bus/workqueue/devices/writeback/cpumask"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ScanOptions;
    use crate::host::Host;
    use std::fs;

    fn key(s: &str) -> Key {
        parse_key(s).unwrap()
    }

    #[test]
    fn keys_in_both_spellings_and_refusals() {
        assert_eq!(key("net.core.busy_poll").path, "/proc/sys/net/core/busy_poll");
        assert_eq!(key("net/core/busy_poll").name, "net.core.busy_poll");
        let vlan = key("net.ipv4.conf.eth0/100.rp_filter");
        assert_eq!(vlan.path, "/proc/sys/net/ipv4/conf/eth0.100/rp_filter");
        assert_eq!(key("net/ipv4/conf/eth0.100/rp_filter").name, "net.ipv4.conf.eth0/100.rp_filter");
        assert_eq!(key("fs.file-max").path, "/proc/sys/fs/file-max");
        for bad in ["net.core.busy poll", "net.core;rm", "a..b", "net/../../etc", "", "a.b=1", "x\ny"] {
            assert!(parse_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sysctl_d_lines() {
        assert_eq!(
            parse_line(" -net.core.x = 1 2 "),
            Some(Assignment { key: "net.core.x".into(), value: "1 2".into(), ignore_errors: true })
        );
        assert_eq!(parse_line("; c"), None);
        assert_eq!(parse_line("# c = d"), None);
        assert_eq!(parse_line("kernel.a=b=c").unwrap().value, "b=c");
    }

    #[test]
    fn names_map_to_paths_and_values_are_normalised() {
        assert_eq!(parse_key("fs.file-max").unwrap().path, "/proc/sys/fs/file-max");
        assert_eq!(parse_key("net.ipv4.tcp_rmem").unwrap().path, "/proc/sys/net/ipv4/tcp_rmem");
        for k in KEYS {
            assert_eq!(parse_key(k).unwrap().name, *k, "every reported name is already canonical");
        }
        assert_eq!(normalise_value("4096\t131072\t6291456\n"), "4096 131072 6291456");
        assert_eq!(normalise_value("0\n"), "0");
        assert_eq!(normalise_value("\n"), "");
    }

    #[test]
    fn every_key_is_reported_and_missing_ones_are_null() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("proc/sys/net/ipv4")).unwrap();
        fs::create_dir_all(r.join("proc/sys/fs")).unwrap();
        fs::write(r.join("proc/sys/net/ipv4/tcp_rmem"), "4096\t131072\t6291456\n").unwrap();
        fs::write(r.join("proc/sys/fs/file-max"), "9223372036854775807\n").unwrap();
        let host = Host::new(r).unwrap();
        let mut scan = Scan::new(&host, ScanOptions::default());
        let s = read(&mut scan);
        assert!(scan.warnings().is_empty(), "{:?}", scan.warnings());
        assert_eq!(s.len(), KEYS.len());
        assert_eq!(s["net.ipv4.tcp_rmem"].as_deref(), Some("4096 131072 6291456"));
        assert_eq!(s["fs.file-max"].as_deref(), Some("9223372036854775807"));
        assert_eq!(s["kernel.sched_min_granularity_ns"], None);
    }

    #[test]
    fn workqueue_cpumasks_are_masks() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("sys/devices/virtual/workqueue")).unwrap();
        fs::write(r.join("sys/devices/virtual/workqueue/cpumask"), "ffff,fffff81f\n").unwrap();
        let host = Host::new(r).unwrap();
        let mut scan = Scan::new(&host, ScanOptions::default());
        let m = read_cpumasks(&mut scan);
        assert_eq!(m.workqueue.unwrap().to_string(), "0-4,11-47");
        assert_eq!(m.writeback, None);
    }
}
