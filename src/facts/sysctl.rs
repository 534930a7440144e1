//! Runtime values of the sysctls the tuners look at, from /proc/sys.
//!
//! The surprising parts: the dotted name maps to a path by turning dots into slashes, but a
//! name part may itself hold a dash (`fs.file-max`); multi-value sysctls use tabs
//! (`net.ipv4.tcp_rmem` is `4096\t131072\t6291456`), normalised here to single spaces as
//! `sysctl -n` users write them; several knobs left /proc/sys in newer kernels
//! (`kernel.sched_min_granularity_ns` moved to debugfs in 5.13) and are simply null.

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

/// `/proc/sys/...` path of a sysctl name (`net.core.busy_poll` -> `/proc/sys/net/core/busy_poll`).
pub fn sysctl_path(name: &str) -> String {
    format!("/proc/sys/{}", name.replace('.', "/"))
}

/// A sysctl value with runs of whitespace made single spaces, trimmed.
pub fn normalise_value(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads every sysctl of `KEYS`.
pub fn read(scan: &mut Scan) -> Sysctls {
    let mut out = Sysctls::new();
    for key in KEYS {
        let path = sysctl_path(key);
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

    #[test]
    fn names_map_to_paths_and_values_are_normalised() {
        assert_eq!(sysctl_path("fs.file-max"), "/proc/sys/fs/file-max");
        assert_eq!(sysctl_path("net.ipv4.tcp_rmem"), "/proc/sys/net/ipv4/tcp_rmem");
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
