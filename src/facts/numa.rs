//! NUMA nodes: `/sys/devices/system/node/nodeN/` (Documentation/ABI/stable/sysfs-devices-node).
//!
//! The surprising parts: a node's CPUs come from `cpulist`, but older kernels and some
//! captures only have `cpumap` (hex words) or only the `cpuN` links; `has_cpu` can be empty
//! even when nodes have CPUs; nodes may number CPUs interleaved (even/odd) across sockets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Scan;
use super::cpu::Cpu;
use crate::cpulist::CpuList;

const NODE: &str = "/sys/devices/system/node";

/// `numa` facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Numa {
    pub nodes: Vec<Node>,
    /// `kernel.numa_balancing` (/proc/sys/kernel/numa_balancing) is not 0. Null when the
    /// kernel lacks automatic NUMA balancing.
    pub balancing: Option<bool>,
}

/// One NUMA node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Node {
    pub id: u32,
    pub cpus: CpuList,
    /// `MemTotal` of the node's `meminfo`, kB.
    pub memory_kb: Option<u64>,
    /// `MemFree` of the node's `meminfo`, kB.
    pub memory_free_kb: Option<u64>,
    /// `{"<size_kb>": {total, free, surplus}}` from `hugepages/hugepages-<size>kB/`.
    pub hugepages: BTreeMap<String, NodeHugepages>,
    /// SLIT distances to every node, in node order (`distance`).
    pub distances: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeHugepages {
    pub total: Option<u64>,
    pub free: Option<u64>,
    pub surplus: Option<u64>,
}

/// Reads `Node N Key: value kB` lines of a node's meminfo into `{Key: kB}`.
pub fn parse_node_meminfo(text: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        // "Node 0 MemTotal:       47925628 kB"
        let mut words = line.split_whitespace();
        let (Some("Node"), Some(_), Some(key), Some(val)) = (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if let Ok(v) = val.parse() {
            m.insert(key.trim_end_matches(':').to_string(), v);
        }
    }
    m
}

/// `hugepages-2048kB` → 2048.
pub fn parse_hugepage_dir(name: &str) -> Option<u64> {
    name.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()
}

fn node_cpus(scan: &mut Scan, id: u32, online: &CpuList) -> CpuList {
    let base = format!("{NODE}/node{id}");
    let host = scan.host;
    if let Ok(Some(t)) = host.read_opt(&format!("{base}/cpulist")) {
        match CpuList::parse(&t) {
            Ok(l) => return l,
            Err(e) => scan.warn(format!("{base}/cpulist: {e}")),
        }
    }
    if let Ok(Some(t)) = host.read_opt(&format!("{base}/cpumap")) {
        match CpuList::parse_mask(&t) {
            Ok(l) => return l,
            Err(e) => scan.warn(format!("{base}/cpumap: {e}")),
        }
    }
    // Last resort: the cpuN entries of the node folder (links to the CPU devices).
    let linked: CpuList = host
        .list_or_empty(&base)
        .iter()
        .filter_map(|n| n.strip_prefix("cpu").and_then(|d| d.parse::<u32>().ok()))
        .collect();
    if linked.is_empty() && !online.is_empty() {
        scan.warn(format!("{base}: no cpulist, cpumap or cpuN entries; node CPUs unknown"));
    }
    linked
}

pub fn read(scan: &mut Scan, cpu: &Cpu) -> Numa {
    let host = scan.host;
    let mut ids: Vec<u32> =
        host.list_or_empty(NODE).iter().filter_map(|n| n.strip_prefix("node").and_then(|d| d.parse().ok())).collect();
    crate::sort::sort_by(&mut ids, Ord::cmp);
    let mut nodes = Vec::new();
    for id in ids {
        let base = format!("{NODE}/node{id}");
        let cpus = node_cpus(scan, id, &cpu.online);
        let meminfo = host
            .read_opt(&format!("{base}/meminfo"))
            .ok()
            .flatten()
            .map(|t| parse_node_meminfo(&t))
            .unwrap_or_default();
        let mut hugepages = BTreeMap::new();
        for dir in host.list_or_empty(&format!("{base}/hugepages")) {
            let Some(size) = parse_hugepage_dir(&dir) else { continue };
            let h = format!("{base}/hugepages/{dir}");
            hugepages.insert(
                size.to_string(),
                NodeHugepages {
                    total: host.attr_parse(&format!("{h}/nr_hugepages")),
                    free: host.attr_parse(&format!("{h}/free_hugepages")),
                    surplus: host.attr_parse(&format!("{h}/surplus_hugepages")),
                },
            );
        }
        let distances = host
            .attr(&format!("{base}/distance"))
            .map(|d| d.split_whitespace().filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_default();
        nodes.push(Node {
            id,
            cpus,
            memory_kb: meminfo.get("MemTotal").copied(),
            memory_free_kb: meminfo.get("MemFree").copied(),
            hugepages,
            distances,
        });
    }
    if nodes.is_empty() {
        scan.warn(format!("{NODE}: no NUMA nodes (kernel without CONFIG_NUMA, or not captured)"));
    }
    let balancing = host.attr("/proc/sys/kernel/numa_balancing").map(|v| v != "0");
    Numa { nodes, balancing }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_meminfo_lines() {
        let m = parse_node_meminfo(
            "Node 0 MemTotal:       47925628 kB\nNode 0 MemFree:        24465948 kB\nNode 0 HugePages_Total:  2048\n",
        );
        assert_eq!(m["MemTotal"], 47925628);
        assert_eq!(m["MemFree"], 24465948);
        assert_eq!(m["HugePages_Total"], 2048);
        assert!(parse_node_meminfo("garbage\n\n").is_empty());
    }

    #[test]
    fn hugepage_dir_names() {
        assert_eq!(parse_hugepage_dir("hugepages-2048kB"), Some(2048));
        assert_eq!(parse_hugepage_dir("hugepages-1048576kB"), Some(1048576));
        assert_eq!(parse_hugepage_dir("hugepages"), None);
    }
}
