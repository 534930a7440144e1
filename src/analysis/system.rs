//! Rules about the rest of the system: daemons (irqbalance, tuned), resource limits, time
//! (clocksource, NTP/chrony/PTP), kernel-bypass stacks and RDMA NUMA alignment.

use super::{Context, Impact, Recommendation, Risk, Severity, list_or_none, rec};
use crate::facts::Facts;
use crate::facts::limits::SoftHard;
use crate::facts::services::Service;

/// tuned profiles built for latency (a profile list matches when any of its words does).
pub const LATENCY_PROFILES: &[&str] = &[
    "latency-performance",
    "network-latency",
    "realtime",
    "realtime-virtual-host",
    "realtime-virtual-guest",
    "cpu-partitioning",
    "cpu-partitioning-powersave",
];

/// A resource limit of the default domain: what the finding proposes (and gen-config
/// writes) and the seed's boundary below which it fires.
pub struct LimitRule {
    pub item: &'static str,
    pub target: &'static str,
    /// A limit below this fires; `unlimited` only for what must be unlimited.
    pub fires_below: &'static str,
    /// Whether a limit the files leave unset (the distribution's default) fires too. The seed
    /// judged an unset memlock ("default") but not an unset nofile.
    pub unset_fires: bool,
    pub severity: Severity,
    pub impact: Impact,
}

pub const LIMIT_RULES: &[LimitRule] = &[
    LimitRule {
        item: "memlock",
        target: "unlimited",
        fires_below: "unlimited",
        unset_fires: true,
        severity: Severity::Warning,
        impact: Impact::High,
    },
    LimitRule {
        item: "nofile",
        target: "1048576",
        fires_below: "65536",
        unset_fires: false,
        severity: Severity::Info,
        impact: Impact::Low,
    },
    LimitRule {
        item: "nproc",
        target: "65536",
        fires_below: "65536",
        unset_fires: true,
        severity: Severity::Info,
        impact: Impact::Low,
    },
    LimitRule {
        item: "rtprio",
        target: "99",
        fires_below: "99",
        unset_fires: true,
        severity: Severity::Info,
        impact: Impact::Low,
    },
];

pub fn rules(cx: &Context, out: &mut Vec<Recommendation>) {
    let f = cx.facts;
    out.extend(irqbalance(cx));
    out.extend(tuned(f));
    out.extend(tuned_inactive(f));
    out.extend(limits(f));
    out.extend(clocksource(f));
    out.extend(time_sync(f));
    out.extend(ptp(f));
    out.extend(rdma_alignment(cx));
    out.extend(rdma_cross_numa(f));
    out.extend(kernel_bypass(f));
}

/// Running: `Some(true)` when the process runs, else the boot-time state when only that is known.
fn running(s: &Service) -> Option<bool> {
    s.active.or(s.enabled)
}

/// irqbalance running, unless it bans every isolated CPU.
pub fn irqbalance(cx: &Context) -> Option<Recommendation> {
    let ib = &cx.facts.services.irqbalance;
    if running(&ib.service) != Some(true) {
        return None;
    }
    let banned = ib.banned_cpulist.clone().or(ib.banned_cpus.clone()).unwrap_or_default();
    if !cx.isolated.is_empty() && cx.isolated.is_subset(&banned) {
        return None; // the tuned way: irqbalance spreads IRQs over housekeeping CPUs only
    }
    Some(
        rec("services", "irqbalance")
            .now(format!("running; bans {}", list_or_none(&banned)))
            .want(if cx.target_isolated.is_empty() { "stopped and disabled".to_string() } else { format!("stopped and disabled, or IRQBALANCE_BANNED_CPULIST={}", cx.target_isolated) })
            .sev(Severity::Warning)
            .impact(Impact::High)
            .risk(Risk::PotentiallyDisruptive)
            .why("irqbalance rewrites IRQ affinities every 10 seconds by load, undoing manual pins and moving NIC IRQs onto trading CPUs."),
    )
}

/// An active tuned profile that is not a latency profile.
pub fn tuned(f: &Facts) -> Option<Recommendation> {
    let t = &f.services.tuned;
    if running(&t.service) != Some(true) {
        return None;
    }
    let profile = t.profile.as_deref()?;
    let ok = profile
        .split_whitespace()
        .any(|p| LATENCY_PROFILES.contains(&p) || p.starts_with("openshift-node-performance"));
    if ok {
        return None;
    }
    Some(
        rec("services", "tuned")
            .now(profile)
            .want("latency-performance (or cpu-partitioning / realtime with isolated cores)")
            .sev(Severity::Warning)
            .impact(Impact::Medium)
            .risk(Risk::PotentiallyDisruptive)
            .why("tuned re-applies its profile at boot and on change; a throughput or power profile sets governors, THP and sysctls against what lltune applies."),
    )
}

/// tuned known not to run (or not installed): the seed proposes it as a baseline layer.
/// Silent where lltune's own boot unit is enabled: lltune then is that layer, and its
/// gen-config turns tuned off on purpose (a profile would re-tune what lltune sets).
pub fn tuned_inactive(f: &Facts) -> Option<Recommendation> {
    let t = &f.services.tuned.service;
    if running(t) != Some(false) || f.services.lltune_restore.enabled == Some(true) {
        return None;
    }
    Some(
        rec("services", "tuned")
            .now(if t.installed == Some(false) { "not installed" } else { "not active" })
            .want("active with the latency-performance profile (or cpu-partitioning / realtime with isolated cores)")
            .impact(Impact::Medium)
            .why("A latency profile keeps governors, C-state limits and sysctls where lltune puts them across reboots and package updates; without tuned nothing re-asserts them but lltune's own restore unit."),
    )
}

fn soft_hard(l: &crate::facts::limits::Limits, item: &str) -> SoftHard {
    let d = &l.default;
    match item {
        "memlock" => d.memlock.clone(),
        "nofile" => d.nofile.clone(),
        "nproc" => d.nproc.clone(),
        _ => d.rtprio.clone(),
    }
}

/// A limit value meets the target: `unlimited` always does, numbers compare.
pub fn limit_meets(value: Option<&str>, target: &str) -> bool {
    match value {
        None => false,
        Some("unlimited" | "infinity" | "-1") => true,
        Some(v) => match (v.parse::<u64>(), target.parse::<u64>()) {
            (Ok(v), Ok(t)) => v >= t,
            _ => false,
        },
    }
}

/// Limits of the default domain (`*`) below the seed's boundaries; only when limits files exist.
pub fn limits(f: &Facts) -> Vec<Recommendation> {
    let mut out = Vec::new();
    if f.limits.files.is_empty() {
        return out;
    }
    for l in LIMIT_RULES {
        let sh = soft_hard(&f.limits, l.item);
        let fine = |v: Option<&str>| (v.is_none() && !l.unset_fires) || limit_meets(v, l.fires_below);
        if fine(sh.soft.as_deref()) && fine(sh.hard.as_deref()) {
            continue;
        }
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "unset".into());
        out.push(
            rec("limits", l.item)
                .now(format!("soft {}, hard {}", show(&sh.soft), show(&sh.hard)))
                .want(l.target)
                .sev(l.severity)
                .impact(l.impact)
                .why(match l.item {
                    "memlock" => "mlockall() and kernel-bypass stacks (RDMA, DPDK, Onload) need to lock memory; a low memlock limit makes them fail or fall back.",
                    "rtprio" => "Without an rtprio limit an unprivileged process cannot use SCHED_FIFO for its hot threads.",
                    "nofile" => "Sessions, market-data sockets and log files count against the open-file limit.",
                    _ => "Thread-heavy applications count every thread against nproc.",
                }),
        );
    }
    out
}

/// The TSC as clocksource, where the kernel offers it.
pub fn clocksource(f: &Facts) -> Option<Recommendation> {
    let cur = f.time.current_clocksource.as_deref()?;
    if cur == "tsc" || !f.time.available_clocksource.iter().any(|c| c == "tsc") {
        return None;
    }
    Some(
        rec("time", "clocksource")
            .now(cur)
            .want("tsc")
            .sev(Severity::Warning)
            .impact(Impact::High)
            .why("clock_gettime() reads the TSC in user space (vDSO); with hpet or acpi_pm every timestamp is a slow device read or a syscall."),
    )
}

/// Time synchronisation: something must keep the clock; two NTP daemons must not fight.
/// A service that is known not to run (`inactive`) counts as not running.
pub fn time_sync(f: &Facts) -> Vec<Recommendation> {
    let s = &f.services;
    let daemons =
        [("chronyd", &s.chronyd), ("ntpd", &s.ntpd), ("ptp4l", &s.ptp4l), ("systemd-timesyncd", &s.systemd_timesyncd)];
    let active: Vec<&str> = daemons.iter().filter(|(_, d)| d.active == Some(true)).map(|(n, _)| *n).collect();
    let mut out = Vec::new();
    if active.is_empty() && daemons.iter().all(|(_, d)| d.active == Some(false)) {
        out.push(
            rec("time", "time_sync")
                .now("no time daemon running")
                .want("chronyd (or ptp4l + phc2sys)")
                .sev(Severity::Warning)
                .impact(Impact::Medium)
                .why("Trading timestamps must be comparable across hosts (and, under MiFID II RTS 25, traceable to UTC); an unsynchronised clock drifts by milliseconds a day."),
        );
    }
    if s.chronyd.active == Some(true) && s.ntpd.active == Some(true) {
        out.push(
            rec("time", "time_sync")
                .now("chronyd and ntpd both running")
                .want("one of them")
                .sev(Severity::Warning)
                .impact(Impact::Medium)
                .why("Two daemons steering one clock fight each other and make it step."),
        );
    }
    out
}

/// A PTP hardware clock without ptp4l.
pub fn ptp(f: &Facts) -> Option<Recommendation> {
    if f.time.ptp_clocks.is_empty() || f.services.ptp4l.active != Some(false) {
        return None;
    }
    let clocks: Vec<&str> = f.time.ptp_clocks.iter().map(|c| c.name.as_str()).collect();
    Some(
        rec("time", "ptp")
            .now(format!("PTP clocks {} present, ptp4l not running", clocks.join(", ")))
            .want("ptp4l on the timing NIC, phc2sys to the system clock")
            .impact(Impact::Low)
            .why("A NIC with a hardware clock can hold the host within a microsecond of the grandmaster with PTP; NTP gives milliseconds."),
    )
}

/// RDMA devices on a NUMA node without isolated CPUs.
pub fn rdma_alignment(cx: &Context) -> Vec<Recommendation> {
    let f = cx.facts;
    let mut out = Vec::new();
    if cx.isolated.is_empty() {
        return out;
    }
    for d in &f.user_stacks.rdma {
        let Some(node) = d.numa_node else { continue };
        let Some(n) = f.numa.nodes.iter().find(|n| i64::from(n.id) == i64::from(node)) else { continue };
        if !n.cpus.is_disjoint(&cx.isolated) {
            continue;
        }
        out.push(
            rec("user_stacks", format!("{}: numa", d.name))
                .now(format!("node {node}; isolated CPUs {} are on other nodes", cx.isolated))
                .want(format!("isolated CPUs on node {node} ({})", n.cpus))
                .sev(Severity::Warning)
                .impact(Impact::High)
                .risk(Risk::PotentiallyDisruptive)
                .why("Kernel-bypass traffic is polled by the application thread; polling a device on another socket adds interconnect latency to every completion."),
        );
    }
    out
}

/// An RDMA device whose network devices are on more than one NUMA node (the device's own
/// node counts too): the seed's "cross-numa".
pub fn rdma_cross_numa(f: &Facts) -> Vec<Recommendation> {
    let mut out = Vec::new();
    for d in &f.user_stacks.rdma {
        let mut nodes = std::collections::BTreeMap::new();
        if let Some(n) = d.numa_node {
            nodes.entry(i64::from(n)).or_insert_with(Vec::new).push(d.name.clone());
        }
        for nd in &d.netdevs {
            let node = f.nics.iter().find(|n| n.name.as_deref() == Some(nd.as_str())).and_then(|n| n.numa_node);
            if let Some(n) = node {
                nodes.entry(n).or_insert_with(Vec::new).push(nd.clone());
            }
        }
        if nodes.len() < 2 {
            continue;
        }
        let by_node: Vec<String> = nodes.iter().map(|(n, names)| format!("node {n}: {}", names.join(", "))).collect();
        out.push(
            rec("user_stacks", format!("{}: cross-numa", d.name))
                .now(format!("cross-numa ({})", by_node.join("; ")))
                .want("the device and its network devices on one NUMA node")
                .impact(Impact::Medium)
                .why("Verbs traffic of one device then crosses the socket interconnect for some of its ports; keep an RDMA device, its netdevs and the threads polling them on one node."),
        );
    }
    out
}

/// Kernel-bypass stacks present: their latency profiles are worth setting.
pub fn kernel_bypass(f: &Facts) -> Vec<Recommendation> {
    let u = &f.user_stacks;
    let mut out = Vec::new();
    if u.onload.installed == Some(true) {
        out.push(
            rec("user_stacks", "onload")
                .now(format!("installed{}", u.onload.version.as_deref().map(|v| format!(" ({v})")).unwrap_or_default()))
                .want("Onload's latency profile (config onload.tuning_level: EF_POLL_USEC=100000, no TCP fast start)")
                .impact(Impact::High)
                .why("Onload's defaults sleep in blocking calls (interrupt-driven); its latency profile spins up to 100 ms first."),
        );
    }
    for (name, lib) in [("vma", &u.vma), ("xlio", &u.xlio)] {
        if lib.installed == Some(true) {
            out.push(
                rec("user_stacks", name)
                    .now(format!("installed{}", lib.version.as_deref().map(|v| format!(" ({v})")).unwrap_or_default()))
                    .want(format!(
                        "{}_SPEC=latency (config {name}.tuning_level) with the trading threads pinned to isolated CPUs",
                        name.to_uppercase()
                    ))
                    .impact(Impact::High)
                    .why("The preload stacks default to a balanced profile; the latency spec polls continuously."),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing;
    use crate::cpulist::CpuList;

    #[test]
    fn irqbalance_running_without_bans_is_flagged() {
        let mut f = testing::two_nodes();
        assert!(irqbalance(&Context::new(&f)).is_none(), "unknown state");
        f.services.irqbalance.service.active = Some(true);
        assert!(irqbalance(&Context::new(&f)).is_some());
        f.kernel.nohz_full = Some(CpuList::parse("2-3").unwrap());
        f.services.irqbalance.banned_cpulist = Some(CpuList::parse("2-3").unwrap());
        assert!(irqbalance(&Context::new(&f)).is_none(), "banning the isolated CPUs is the tuned way");
        f.services.irqbalance.service.active = Some(false);
        f.services.irqbalance.banned_cpulist = None;
        assert!(irqbalance(&Context::new(&f)).is_none());
    }

    #[test]
    fn tuned_profiles() {
        let mut f = testing::blank();
        f.services.tuned.service.active = Some(true);
        f.services.tuned.profile = Some("throughput-performance".into());
        assert!(tuned(&f).is_some());
        f.services.tuned.profile = Some("openshift-node-performance-rt".into());
        assert!(tuned(&f).is_none());
        f.services.tuned.profile = Some("virtual-guest network-latency".into());
        assert!(tuned(&f).is_none());
    }

    #[test]
    fn limits_compare_numbers_and_unlimited() {
        assert!(limit_meets(Some("unlimited"), "99"));
        assert!(limit_meets(Some("99"), "99"));
        assert!(!limit_meets(Some("98"), "99"));
        assert!(!limit_meets(None, "99"));
        assert!(!limit_meets(Some("64"), "unlimited"));
        let mut f = testing::blank();
        assert!(limits(&f).is_empty(), "no limits files: unknown");
        f.limits.files.push("/etc/security/limits.conf".into());
        f.limits.default.rtprio = SoftHard { soft: Some("99".into()), hard: Some("99".into()) };
        let items: Vec<String> = limits(&f).into_iter().map(|r| r.item).collect();
        assert_eq!(items, ["memlock", "nproc"], "an unset nofile is not judged, as in the seed");
        f.limits.default.nofile = SoftHard { soft: Some("1024".into()), hard: None };
        let items: Vec<String> = limits(&f).into_iter().map(|r| r.item).collect();
        assert_eq!(items, ["memlock", "nofile", "nproc"]);
    }

    #[test]
    fn limits_fire_below_the_seeds_boundaries_and_memlock_is_a_warning() {
        let mut f = testing::blank();
        f.limits.files.push("/etc/security/limits.conf".into());
        let both = |v: &str| SoftHard { soft: Some(v.into()), hard: Some(v.into()) };
        f.limits.default.nofile = both("65536");
        f.limits.default.nproc = both("65536");
        f.limits.default.rtprio = both("99");
        f.limits.default.memlock = both("unlimited");
        assert!(limits(&f).is_empty(), "{:#?}", limits(&f));
        f.limits.default.nofile = SoftHard { soft: Some("65535".into()), hard: Some("65536".into()) };
        let r = limits(&f);
        assert_eq!((r[0].item.as_str(), r[0].target.as_str()), ("nofile", "1048576"));
        f.limits.default.nofile = both("65536");
        f.limits.default.memlock = SoftHard { soft: Some("unlimited".into()), hard: Some("1099511627776".into()) };
        let r = limits(&f);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].item.as_str(), r[0].severity, r[0].impact), ("memlock", Severity::Warning, Impact::High));
    }

    #[test]
    fn tuned_not_running_is_an_info_only_when_known() {
        let mut f = testing::blank();
        assert!(tuned_inactive(&f).is_none(), "unknown");
        f.services.tuned.service = Service { installed: Some(true), enabled: Some(true), active: Some(false) };
        let r = tuned_inactive(&f).unwrap();
        assert_eq!((r.item.as_str(), r.current.as_str(), r.severity), ("tuned", "not active", Severity::Info));
        f.services.tuned.service = Service { installed: Some(false), enabled: Some(false), active: None };
        assert_eq!(tuned_inactive(&f).unwrap().current, "not installed");
        f.services.tuned.service.active = Some(true);
        assert!(tuned_inactive(&f).is_none());
        // Tuned off by lltune, whose restore unit keeps the settings: no advice to turn it on.
        f.services.tuned.service.active = Some(false);
        f.services.lltune_restore = Service { installed: Some(true), enabled: Some(true), active: None };
        assert!(tuned_inactive(&f).is_none());
    }

    #[test]
    fn rdma_device_with_netdevs_on_two_nodes_is_cross_numa() {
        let mut f = testing::two_nodes();
        for (name, node) in [("ens1f0", 0), ("ens2f0", 1)] {
            f.nics.push(crate::facts::nic::Nic {
                name: Some(name.into()),
                numa_node: Some(node),
                ..Default::default()
            });
        }
        let mut dev = crate::facts::user_stacks::RdmaDevice {
            name: "mlx5_bond_0".into(),
            numa_node: Some(0),
            netdevs: vec!["ens1f0".into()],
            ..Default::default()
        };
        f.user_stacks.rdma.push(dev.clone());
        assert!(rdma_cross_numa(&f).is_empty(), "one node");
        dev.netdevs.push("ens2f0".into());
        f.user_stacks.rdma[0] = dev.clone();
        let r = rdma_cross_numa(&f);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].item, "mlx5_bond_0: cross-numa");
        assert_eq!(r[0].current, "cross-numa (node 0: mlx5_bond_0, ens1f0; node 1: ens2f0)");
        // A netdev whose node is unknown says nothing.
        dev.numa_node = None;
        dev.netdevs = vec!["ens1f0".into(), "eth9".into()];
        f.user_stacks.rdma[0] = dev;
        assert!(rdma_cross_numa(&f).is_empty());
    }

    #[test]
    fn inactive_time_daemons_are_not_active() {
        let mut f = testing::blank();
        assert!(time_sync(&f).is_empty(), "unknown");
        for s in
            [&mut f.services.chronyd, &mut f.services.ntpd, &mut f.services.ptp4l, &mut f.services.systemd_timesyncd]
        {
            s.active = Some(false);
            s.enabled = Some(true);
        }
        assert_eq!(time_sync(&f)[0].current, "no time daemon running");
        f.services.chronyd.active = Some(true);
        assert!(time_sync(&f).is_empty());
        f.services.ntpd.active = Some(true);
        assert_eq!(time_sync(&f)[0].current, "chronyd and ntpd both running");
    }

    #[test]
    fn clocksource_tsc_when_available() {
        let mut f = testing::blank();
        f.time.current_clocksource = Some("hpet".into());
        assert!(clocksource(&f).is_none(), "tsc not offered");
        f.time.available_clocksource = vec!["tsc".into(), "hpet".into()];
        assert_eq!(clocksource(&f).unwrap().target, "tsc");
        f.time.current_clocksource = Some("tsc".into());
        assert!(clocksource(&f).is_none());
    }

    #[test]
    fn rdma_device_away_from_isolated_cpus() {
        let mut f = testing::two_nodes();
        f.user_stacks.rdma.push(crate::facts::user_stacks::RdmaDevice {
            name: "mlx5_0".into(),
            numa_node: Some(1),
            ..Default::default()
        });
        assert!(rdma_alignment(&Context::new(&f)).is_empty(), "nothing isolated");
        f.kernel.nohz_full = Some(CpuList::parse("1-3").unwrap());
        assert_eq!(rdma_alignment(&Context::new(&f))[0].item, "mlx5_0: numa");
        f.kernel.nohz_full = Some(CpuList::parse("1-3,5-7").unwrap());
        assert!(rdma_alignment(&Context::new(&f)).is_empty());
    }
}
