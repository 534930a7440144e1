//! Memory rules: transparent huge pages at run time, swap, automatic NUMA balancing, KSM,
//! reserved huge pages, and `vm.max_map_count`.

use super::{Context, Impact, Recommendation, Risk, Severity, rec, sysctl_num};
use crate::facts::Facts;

/// `vm.max_map_count` below this is flagged: large hugepage/DPDK/Java heaps need many maps.
pub const MAX_MAP_COUNT_MIN: i64 = 262_144;

pub fn rules(cx: &Context, out: &mut Vec<Recommendation>) {
    let f = cx.facts;
    out.extend(thp_runtime(f));
    out.extend(swap(f));
    out.extend(numa_balancing(f));
    out.extend(ksm(f));
    out.extend(hugepages(f));
    out.extend(max_map_count(f));
}

/// THP at run time: the bracketed selection of `enabled` (the seed matched the whole line,
/// so `always madvise [never]` looked like "always").
pub fn thp_runtime(f: &Facts) -> Option<Recommendation> {
    let v = f.memory.thp.enabled.as_deref()?;
    if v == "never" {
        return None;
    }
    Some(
        rec("memory", "transparent_hugepage")
            .now(v)
            .want("never")
            .sev(Severity::Warning)
            .impact(Impact::High)
            .risk(Risk::PotentiallyDisruptive)
            .why("khugepaged collapses pages in the background and page faults may stall on compaction: both are unpredictable pauses. Reserve explicit huge pages instead."),
    )
}

pub fn swap(f: &Facts) -> Option<Recommendation> {
    if f.memory.swap.is_empty() {
        return None;
    }
    let names: Vec<&str> = f.memory.swap.iter().map(|s| s.filename.as_str()).collect();
    Some(
        rec("memory", "swap")
            .now(format!("on ({})", names.join(", ")))
            .want("off")
            .sev(Severity::Warning)
            .impact(Impact::Medium)
            .risk(Risk::PotentiallyDisruptive)
            .why("A page of the trading process swapped out costs milliseconds to fault back; without swap, memory pressure shows up as an OOM instead of as latency."),
    )
}

pub fn numa_balancing(f: &Facts) -> Option<Recommendation> {
    let on = f.numa.balancing.or_else(|| sysctl_num(f, "kernel.numa_balancing").map(|v| v != 0))?;
    if !on {
        return None;
    }
    Some(
        rec("memory", "numa_balancing")
            .now("on")
            .want("off")
            .impact(Impact::Medium)
            .why("Automatic NUMA balancing unmaps pages to sample accesses (NUMA hinting faults) and migrates them: page faults on pinned, already-local memory."),
    )
}

pub fn ksm(f: &Facts) -> Option<Recommendation> {
    if f.memory.ksm.run != Some(1) {
        return None;
    }
    Some(
        rec("memory", "ksm")
            .now("running")
            .want("stopped")
            .impact(Impact::Low)
            .why("ksmd scans memory for identical pages and merges them copy-on-write: CPU time, and write faults on merged pages."),
    )
}

/// No huge pages reserved at all (neither now nor on the command line).
pub fn hugepages(f: &Facts) -> Option<Recommendation> {
    if f.memory.hugepages.is_empty() || !f.kernel.hugepages.is_empty() {
        return None;
    }
    if f.memory.hugepages.values().any(|h| h.total.unwrap_or(0) > 0) {
        return None;
    }
    Some(
        rec("memory", "hugepages")
            .now("none reserved")
            .want("per-node 2 MB (or 1 GB) pages for the application")
            .impact(Impact::Medium)
            .why("Huge pages cut TLB misses for large working sets (order books, ring buffers); reserved at boot or early they are not subject to fragmentation or compaction."),
    )
}

pub fn max_map_count(f: &Facts) -> Option<Recommendation> {
    let v = sysctl_num(f, "vm.max_map_count")?;
    if v >= MAX_MAP_COUNT_MIN {
        return None;
    }
    Some(
        rec("memory", "vm.max_map_count")
            .now(v)
            .want(MAX_MAP_COUNT_MIN)
            .impact(Impact::Low)
            .why("Processes with many mappings (huge-page pools, JVMs, kernel-bypass stacks) fail mmap with ENOMEM at the default 65530."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing;
    use crate::facts::memory::{Hugepages, Swap};

    #[test]
    fn thp_reads_the_selected_value() {
        let mut f = testing::blank();
        assert!(thp_runtime(&f).is_none());
        // Facts hold the bracketed choice: parse_selection("always madvise [never]") == "never".
        f.memory.thp.enabled = crate::facts::memory::parse_selection("always madvise [never]");
        assert!(thp_runtime(&f).is_none());
        f.memory.thp.enabled = crate::facts::memory::parse_selection("always [madvise] never");
        assert_eq!(thp_runtime(&f).unwrap().current, "madvise");
    }

    #[test]
    fn swap_numa_balancing_and_ksm() {
        let mut f = testing::blank();
        assert!(swap(&f).is_none() && numa_balancing(&f).is_none() && ksm(&f).is_none());
        f.memory.swap.push(Swap { filename: "/dev/dm-1".into(), kind: "partition".into(), ..Default::default() });
        assert_eq!(swap(&f).unwrap().current, "on (/dev/dm-1)");
        f.sysctl.insert("kernel.numa_balancing".into(), Some("0".into()));
        assert!(numa_balancing(&f).is_none());
        f.sysctl.insert("kernel.numa_balancing".into(), Some("1".into()));
        assert!(numa_balancing(&f).is_some());
        f.numa.balancing = Some(false);
        assert!(numa_balancing(&f).is_none(), "the numa fact wins");
        f.memory.ksm.run = Some(2);
        assert!(ksm(&f).is_none(), "2 = stopped and unmerged");
        f.memory.ksm.run = Some(1);
        assert!(ksm(&f).is_some());
    }

    #[test]
    fn hugepages_only_when_none_at_all() {
        let mut f = testing::blank();
        assert!(hugepages(&f).is_none(), "unknown");
        f.memory.hugepages.insert("2048".into(), Hugepages { total: Some(0), ..Default::default() });
        assert!(hugepages(&f).is_some());
        f.memory.hugepages.insert("1048576".into(), Hugepages { total: Some(1), ..Default::default() });
        assert!(hugepages(&f).is_none());
    }

    #[test]
    fn max_map_count_boundary() {
        let mut f = testing::blank();
        f.sysctl.insert("vm.max_map_count".into(), Some(MAX_MAP_COUNT_MIN.to_string()));
        assert!(max_map_count(&f).is_none());
        f.sysctl.insert("vm.max_map_count".into(), Some((MAX_MAP_COUNT_MIN - 1).to_string()));
        assert_eq!(max_map_count(&f).unwrap().current, "262143");
    }
}
