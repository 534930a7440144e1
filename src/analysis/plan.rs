//! The core plan: which CPUs keep the operating system (housekeeping) and which are isolated
//! for the trading application, and what each NIC is for.
//!
//! Rules, in order (docs/config.md, "The core plan"):
//! 1. Work in whole cores: SMT siblings always land on the same side, since an isolated
//!    thread whose sibling runs housekeeping work shares its core's caches and pipeline.
//! 2. Every NUMA node keeps `housekeeping_cores_per_node` cores (at least one), its
//!    lowest-numbered ones, so CPU 0 (the boot CPU, which keeps timekeeping duty) is always
//!    housekeeping and every node's kernel threads and device IRQs stay local.
//! 3. The management NIC's node gets one core more (its IRQs, sshd and agents run there),
//!    unless that node also holds a trading NIC: there, isolated cores are worth more.
//! 4. Everything else is isolated. A node with no core left to isolate keeps all of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cpulist::CpuList;
use crate::facts::Facts;
use crate::facts::nic::Nic;

/// What a NIC is for (`network.interfaces[].role` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NicRole {
    /// Market data and order paths: latency first.
    Trading,
    /// Non-latency-critical traffic (storage, monitoring, inter-host control).
    Control,
    /// SSH, BMC and the host's own services.
    Management,
    /// A dedicated multicast feed receiver (set by hand; never guessed).
    Multicast,
}

impl NicRole {
    pub fn as_str(self) -> &'static str {
        match self {
            NicRole::Trading => "trading",
            NicRole::Control => "control",
            NicRole::Management => "management",
            NicRole::Multicast => "multicast",
        }
    }
}

/// Drivers of NICs built for low latency: Solarflare/AMD (sfc, sfc_ef100, efct, onload's
/// xilinx_efct), NVIDIA/Mellanox ConnectX (mlx4, mlx5), Exablaze/Cisco (exanic).
pub const TRADING_DRIVERS: &[&str] =
    &["sfc", "sfc_ef100", "efct", "xilinx_efct", "mlx5_core", "mlx4_en", "mlx4_core", "exanic"];

/// Drivers of onboard 1 GbE controllers, the usual management ports.
pub const MANAGEMENT_DRIVERS: &[&str] = &["igb", "e1000e", "e1000", "tg3", "bnx2", "r8169", "igc", "ixgb"];

/// The role of one NIC: by name when `trading` names NICs, else by driver, then by link
/// speed (1 Gb/s or less is management). Null for devices that take no config: virtual ones
/// and PCI functions without a netdev.
pub fn nic_role(nic: &Nic, trading: &[String]) -> Option<NicRole> {
    let name = nic.name.as_deref()?;
    if nic.r#virtual {
        return None;
    }
    let driver = nic.driver.as_deref().unwrap_or("");
    if !trading.is_empty() {
        if trading.iter().any(|t| t == name) {
            return Some(NicRole::Trading);
        }
    } else if TRADING_DRIVERS.contains(&driver) {
        return Some(NicRole::Trading);
    }
    if MANAGEMENT_DRIVERS.contains(&driver) || nic.speed_mbps.is_some_and(|s| s <= 1000) {
        return Some(NicRole::Management);
    }
    Some(NicRole::Control)
}

/// Options that steer the plan (`lltune gen-config` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Housekeeping cores kept on each NUMA node (at least 1).
    pub housekeeping_cores_per_node: u32,
    /// NICs that carry trading traffic; empty = decide by driver.
    pub trading_nics: Vec<String>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { housekeeping_cores_per_node: 1, trading_nics: Vec::new() }
    }
}

/// The proposed split of the online CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorePlan {
    /// Whole cores kept for the OS, kernel threads and IRQs.
    pub housekeeping: CpuList,
    /// The rest: `isolcpus`, `nohz_full`, `rcu_nocbs`.
    pub isolated: CpuList,
    /// NUMA nodes of the trading NICs.
    pub trading_nodes: Vec<u32>,
    /// NUMA node of the management NIC, when known.
    pub management_node: Option<u32>,
    /// Isolated CPUs local to the trading NICs: where the application's hot threads go.
    pub trading_cpus: CpuList,
    /// Why the plan looks as it does, one sentence each (written as config comments).
    pub notes: Vec<String>,
}

/// The physical cores among the online CPUs, each as its online threads, by first CPU.
pub fn online_cores(f: &Facts) -> Vec<CpuList> {
    let online = &f.cpu.online;
    let mut seen = CpuList::new();
    let mut cores: Vec<CpuList> = Vec::new();
    for s in &f.cpu.thread_siblings {
        let c = s.intersection(online).difference(&seen);
        if !c.is_empty() {
            seen = seen.union(&c);
            cores.push(c);
        }
    }
    // CPUs without topology files count as cores of their own.
    for cpu in online.difference(&seen).iter() {
        cores.push(CpuList::from_cpus([cpu]));
    }
    crate::sort::sort_by_key(&mut cores, |c| c.first());
    cores
}

/// NUMA node of a CPU; node 0 when the host shows no NUMA topology.
pub fn node_of(f: &Facts, cpu: u32) -> u32 {
    f.numa.nodes.iter().find(|n| n.cpus.contains(cpu)).map(|n| n.id).unwrap_or(0)
}

fn nic_node(nic: &Nic) -> Option<u32> {
    nic.numa_node.and_then(|n| u32::try_from(n).ok())
}

fn link_up(nic: &Nic) -> bool {
    nic.carrier == Some(true) || nic.operstate.as_deref() == Some("up")
}

/// Computes the plan (rules in the module comment).
pub fn core_plan(f: &Facts, opts: &PlanOptions) -> CorePlan {
    let mut plan = CorePlan::default();
    let per_node = opts.housekeeping_cores_per_node.max(1) as usize;
    let mut by_node: BTreeMap<u32, Vec<CpuList>> = BTreeMap::new();
    for core in online_cores(f) {
        let node = core.first().map(|c| node_of(f, c)).unwrap_or(0);
        by_node.entry(node).or_default().push(core);
    }

    // Trading nodes: named NICs with the trading role; failing that, PCI functions with a
    // trading driver but no netdev (often bound to a kernel-bypass driver).
    let mut trading: Vec<u32> = f
        .nics
        .iter()
        .filter(|n| nic_role(n, &opts.trading_nics) == Some(NicRole::Trading))
        .filter_map(nic_node)
        .collect();
    if trading.is_empty() && opts.trading_nics.is_empty() {
        trading = f
            .nics
            .iter()
            .filter(|n| n.name.is_none() && n.driver.as_deref().is_some_and(|d| TRADING_DRIVERS.contains(&d)))
            .filter_map(nic_node)
            .collect();
    }
    crate::sort::sort_by(&mut trading, |a, b| a.cmp(b));
    trading.dedup();
    plan.trading_nodes = trading;

    let mgmt: Vec<&Nic> = f
        .nics
        .iter()
        .filter(|n| nic_role(n, &opts.trading_nics) == Some(NicRole::Management) && nic_node(n).is_some())
        .collect();
    plan.management_node = mgmt.iter().find(|n| link_up(n)).or(mgmt.first()).and_then(|n| nic_node(n));

    for (node, cores) in &by_node {
        let mut take = per_node.min(cores.len());
        if plan.management_node == Some(*node) && !plan.trading_nodes.contains(node) && take + 1 < cores.len() {
            take += 1;
            plan.notes.push(format!("node {node} holds the management NIC: one more housekeeping core there"));
        }
        if take == cores.len() && !cores.is_empty() {
            plan.notes.push(format!("node {node} has {} core(s): all kept for housekeeping", cores.len()));
        }
        for c in &cores[..take] {
            plan.housekeeping = plan.housekeeping.union(c);
        }
    }
    plan.isolated = f.cpu.online.difference(&plan.housekeeping);
    let trading_node_cpus: CpuList = f
        .numa
        .nodes
        .iter()
        .filter(|n| plan.trading_nodes.contains(&n.id))
        .fold(CpuList::new(), |a, n| a.union(&n.cpus));
    plan.trading_cpus = plan.isolated.intersection(&trading_node_cpus);
    if plan.isolated.is_empty() && !f.cpu.online.is_empty() {
        plan.notes.push("too few cores to isolate any: nothing is isolated".into());
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing;

    fn nic(name: &str, driver: &str, node: i64, speed: Option<u32>) -> Nic {
        Nic {
            name: Some(name.into()),
            driver: Some(driver.into()),
            numa_node: Some(node),
            speed_mbps: speed,
            carrier: Some(true),
            ..Default::default()
        }
    }

    #[test]
    fn one_whole_core_per_node_by_default() {
        let f = testing::two_nodes();
        let p = core_plan(&f, &PlanOptions::default());
        assert_eq!(p.housekeeping.to_string(), "0,4,8,12");
        assert_eq!(p.isolated.to_string(), "1-3,5-7,9-11,13-15");
    }

    #[test]
    fn more_housekeeping_cores_per_node_on_request() {
        let f = testing::two_nodes();
        let p = core_plan(&f, &PlanOptions { housekeeping_cores_per_node: 2, ..Default::default() });
        assert_eq!(p.housekeeping.to_string(), "0-1,4-5,8-9,12-13");
        // Zero is taken as one: every node keeps a core.
        let p = core_plan(&f, &PlanOptions { housekeeping_cores_per_node: 0, ..Default::default() });
        assert_eq!(p.housekeeping.to_string(), "0,4,8,12");
    }

    #[test]
    fn management_nic_node_gets_one_more_core_unless_it_trades() {
        let mut f = testing::two_nodes();
        f.nics = vec![nic("eno1", "igb", 1, Some(1000)), nic("ens1f0", "sfc", 0, Some(10000))];
        let p = core_plan(&f, &PlanOptions::default());
        assert_eq!(p.management_node, Some(1));
        assert_eq!(p.trading_nodes, vec![0]);
        assert_eq!(p.housekeeping.to_string(), "0,4-5,8,12-13");
        assert_eq!(p.trading_cpus.to_string(), "1-3,9-11");
        // Management and trading NIC on one node: the isolated cores win.
        f.nics = vec![nic("eno1", "igb", 0, Some(1000)), nic("ens1f0", "sfc", 0, Some(10000))];
        let p = core_plan(&f, &PlanOptions::default());
        assert_eq!(p.housekeeping.to_string(), "0,4,8,12");
    }

    #[test]
    fn trading_nics_by_name_override_drivers() {
        let mut f = testing::two_nodes();
        f.nics = vec![nic("ens1f0", "sfc", 0, Some(10000)), nic("ens2f0", "ice", 1, Some(25000))];
        let p = core_plan(&f, &PlanOptions { trading_nics: vec!["ens2f0".into()], ..Default::default() });
        assert_eq!(p.trading_nodes, vec![1]);
        assert_eq!(nic_role(&f.nics[0], &["ens2f0".into()]), Some(NicRole::Control));
    }

    #[test]
    fn roles_by_driver_and_link_speed() {
        assert_eq!(nic_role(&nic("a", "mlx5_core", 0, None), &[]), Some(NicRole::Trading));
        assert_eq!(nic_role(&nic("a", "igb", 0, None), &[]), Some(NicRole::Management));
        assert_eq!(nic_role(&nic("a", "i40e", 0, Some(1000)), &[]), Some(NicRole::Management));
        assert_eq!(nic_role(&nic("a", "i40e", 0, Some(1001)), &[]), Some(NicRole::Control));
        assert_eq!(nic_role(&nic("a", "i40e", 0, None), &[]), Some(NicRole::Control));
        let mut v = nic("br0", "bridge", 0, None);
        v.r#virtual = true;
        assert_eq!(nic_role(&v, &[]), None);
    }

    #[test]
    fn small_hosts_keep_a_core_and_isolate_the_rest_or_nothing() {
        let mut f = testing::blank();
        f.cpu.online = CpuList::parse("0-1").unwrap();
        let p = core_plan(&f, &PlanOptions::default());
        assert_eq!((p.housekeeping.to_string(), p.isolated.to_string()), ("0".into(), "1".into()));
        f.cpu.online = CpuList::parse("0").unwrap();
        let p = core_plan(&f, &PlanOptions::default());
        assert!(p.isolated.is_empty());
        assert!(p.notes.iter().any(|n| n.contains("nothing is isolated")));
    }

    #[test]
    fn offline_siblings_are_left_out_of_cores() {
        let mut f = testing::two_nodes();
        f.cpu.online = CpuList::parse("0-11").unwrap();
        let cores = online_cores(&f);
        assert_eq!(
            cores.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            ["0,8", "1,9", "2,10", "3,11", "4", "5", "6", "7"]
        );
    }
}
