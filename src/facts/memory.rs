//! Memory: /proc/meminfo, transparent hugepages (Documentation/admin-guide/mm/transhuge.rst),
//! hugepage pools (admin-guide/mm/hugetlbpage.rst), swap (/proc/swaps) and KSM
//! (admin-guide/mm/ksm.rst). The vm.* sysctls are under `sysctl`.
//!
//! The surprising part: THP files list every choice and bracket the selected one
//! (`always [madvise] never`); the selection is what matters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Scan;
use super::numa::parse_hugepage_dir;

const THP: &str = "/sys/kernel/mm/transparent_hugepage";

/// `memory` facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    pub total_kb: Option<u64>,
    pub free_kb: Option<u64>,
    pub available_kb: Option<u64>,
    /// `Hugepagesize` of /proc/meminfo: the default hugepage size, kB.
    pub default_hugepage_size_kb: Option<u64>,
    pub thp: Thp,
    /// `{"<size_kb>": {total, free, reserved, surplus, overcommit}}` from /sys/kernel/mm/hugepages.
    pub hugepages: BTreeMap<String, Hugepages>,
    pub swap: Vec<Swap>,
    /// Sum of swap device sizes, kB.
    pub swap_total_kb: Option<u64>,
    pub ksm: Ksm,
}

/// Transparent hugepage settings: the selected value of each file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Thp {
    /// `enabled`: always, madvise, never.
    pub enabled: Option<String>,
    /// `defrag`: always, defer, defer+madvise, madvise, never.
    pub defrag: Option<String>,
    /// `shmem_enabled`.
    pub shmem_enabled: Option<String>,
    /// `khugepaged/defrag` (0 or 1).
    pub khugepaged_defrag: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hugepages {
    pub total: Option<u64>,
    pub free: Option<u64>,
    pub reserved: Option<u64>,
    pub surplus: Option<u64>,
    pub overcommit: Option<u64>,
}

/// One line of /proc/swaps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Swap {
    pub filename: String,
    /// `partition` or `file`.
    #[serde(rename = "type")]
    pub kind: String,
    pub size_kb: Option<u64>,
    pub used_kb: Option<u64>,
    pub priority: Option<i64>,
}

/// Kernel samepage merging.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Ksm {
    /// `run`: 0 stopped, 1 running, 2 stopped and unmerged.
    pub run: Option<u32>,
    pub pages_shared: Option<u64>,
}

/// The bracketed choice of a sysfs selection file: `always [madvise] never` → `madvise`.
/// A file without brackets (a plain value) is returned as it is.
pub fn parse_selection(text: &str) -> Option<String> {
    let t = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if t.is_empty() {
        return None;
    }
    if let Some(start) = t.find('[') {
        let rest = &t[start + 1..];
        return rest.find(']').map(|end| rest[..end].to_string());
    }
    Some(t.to_string())
}

/// /proc/meminfo as `{Key: value}` (values in kB, or counts for HugePages_*).
pub fn parse_meminfo(text: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        if let Some(n) = v.split_whitespace().next().and_then(|n| n.parse().ok()) {
            m.insert(k.trim().to_string(), n);
        }
    }
    m
}

/// /proc/swaps, skipping its header line.
pub fn parse_swaps(text: &str) -> Vec<Swap> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 2 {
                return None;
            }
            Some(Swap {
                // Paths with spaces are written as "\040" by the kernel.
                filename: f[0].replace("\\040", " "),
                kind: f[1].to_string(),
                size_kb: f.get(2).and_then(|v| v.parse().ok()),
                used_kb: f.get(3).and_then(|v| v.parse().ok()),
                priority: f.get(4).and_then(|v| v.parse().ok()),
            })
        })
        .collect()
}

pub fn read(scan: &mut Scan) -> Memory {
    let host = scan.host;
    let meminfo = match host.read_opt("/proc/meminfo") {
        Ok(Some(t)) => parse_meminfo(&t),
        Ok(None) => {
            scan.warn("/proc/meminfo: missing; memory totals unknown");
            BTreeMap::new()
        }
        Err(e) => {
            scan.warn(e.to_string());
            BTreeMap::new()
        }
    };
    let sel = |f: &str| host.read_opt(&format!("{THP}/{f}")).ok().flatten().and_then(|t| parse_selection(&t));
    let thp = Thp {
        enabled: sel("enabled"),
        defrag: sel("defrag"),
        shmem_enabled: sel("shmem_enabled"),
        khugepaged_defrag: host.attr(&format!("{THP}/khugepaged/defrag")).map(|v| v == "1"),
    };
    let mut hugepages = BTreeMap::new();
    for dir in host.list_or_empty("/sys/kernel/mm/hugepages") {
        let Some(size) = parse_hugepage_dir(&dir) else { continue };
        let h = format!("/sys/kernel/mm/hugepages/{dir}");
        hugepages.insert(
            size.to_string(),
            Hugepages {
                total: host.attr_parse(&format!("{h}/nr_hugepages")),
                free: host.attr_parse(&format!("{h}/free_hugepages")),
                reserved: host.attr_parse(&format!("{h}/resv_hugepages")),
                surplus: host.attr_parse(&format!("{h}/surplus_hugepages")),
                overcommit: host.attr_parse(&format!("{h}/nr_overcommit_hugepages")),
            },
        );
    }
    let swaps = host.read_opt("/proc/swaps").ok().flatten();
    let swap = swaps.as_deref().map(parse_swaps).unwrap_or_default();
    Memory {
        total_kb: meminfo.get("MemTotal").copied(),
        free_kb: meminfo.get("MemFree").copied(),
        available_kb: meminfo.get("MemAvailable").copied(),
        default_hugepage_size_kb: meminfo.get("Hugepagesize").copied(),
        thp,
        hugepages,
        swap_total_kb: swaps.is_some().then(|| swap.iter().filter_map(|s| s.size_kb).sum()),
        swap,
        ksm: Ksm {
            run: host.attr_parse("/sys/kernel/mm/ksm/run"),
            pages_shared: host.attr_parse("/sys/kernel/mm/ksm/pages_shared"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thp_selection_is_the_bracketed_word() {
        assert_eq!(parse_selection("always [madvise] never\n").as_deref(), Some("madvise"));
        assert_eq!(parse_selection("[always] madvise never").as_deref(), Some("always"));
        assert_eq!(parse_selection("always defer defer+madvise madvise [never]").as_deref(), Some("never"));
        assert_eq!(parse_selection("never").as_deref(), Some("never"));
        assert_eq!(parse_selection("always [madvise never"), None);
        assert_eq!(parse_selection("\0\n"), None);
    }

    #[test]
    fn meminfo_and_swaps() {
        let m = parse_meminfo("MemTotal:       24574936 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n");
        assert_eq!((m["MemTotal"], m["HugePages_Total"], m["Hugepagesize"]), (24574936, 0, 2048));
        let s = parse_swaps(
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/dm-1                               partition\t8388604\t\t0\t\t-2\n/swap\\040file file 1024 0 -3\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0],
            Swap {
                filename: "/dev/dm-1".into(),
                kind: "partition".into(),
                size_kb: Some(8388604),
                used_kb: Some(0),
                priority: Some(-2)
            }
        );
        assert_eq!(s[1].filename, "/swap file");
        assert!(parse_swaps("Filename\tType\tSize\tUsed\tPriority\n").is_empty());
    }
}
