//! Kernel rules: boot parameters (isolation and its coverage, timer and watchdog flags, THP,
//! C-state limits, mitigations), runtime state that contradicts the command line, the
//! housekeeping cpumasks of workqueues, and the scheduler/timer sysctls of isolated hosts.

use super::{Context, Impact, Recommendation, Risk, Severity, list_or_none, rec, sysctl_num};
use crate::facts::Facts;

/// `kernel.hung_task_timeout_secs` below this (and not 0) is flagged: the tuned `realtime`
/// profile uses 600, so khungtaskd walks every task ten times less often than with 60.
pub const HUNG_TASK_TIMEOUT_MIN_SECS: i64 = 600;

/// `vm.stat_interval` below this is flagged (tuned `realtime` profile: 10 seconds).
pub const STAT_INTERVAL_MIN_SECS: i64 = 10;

pub fn rules(cx: &Context, out: &mut Vec<Recommendation>) {
    let f = cx.facts;
    if f.kernel.cmdline.is_some() {
        out.extend(isolation(cx));
        out.extend(nohz_full(cx));
        out.extend(rcu_nocbs(cx));
        out.extend(isolcpus_flags(cx));
        out.extend(isolated_outside_online(f));
        out.extend(isolated_everything(cx));
        out.extend(skew_tick(f));
        out.extend(tsc(f));
        out.extend(nosoftlockup(f));
        out.extend(nmi_watchdog(f));
        out.extend(transparent_hugepage(f));
        out.extend(cstate_limit(f));
        out.extend(idle_poll(f));
        out.extend(intel_pstate(f));
        out.extend(mitigations(f));
        out.extend(hugepages_vs_runtime(f));
        out.extend(nohz_full_vs_runtime(f));
    }
    out.extend(cpumasks(cx));
    out.extend(timer_migration(f));
    out.extend(stat_interval(f));
    out.extend(hung_task_timeout(f));
}

/// The last value of a kernel argument: `Some(None)` for a bare flag.
pub fn arg<'a>(f: &'a Facts, key: &str) -> Option<Option<&'a str>> {
    f.kernel.args.get(key)?.last().map(|v| v.as_deref())
}

fn has(f: &Facts, key: &str) -> bool {
    f.kernel.args.contains_key(key)
}

fn virtualised(f: &Facts) -> bool {
    f.host.virtualization.kind.as_deref().is_some_and(|k| k != "none") || f.cpu.flags.iter().any(|x| x == "hypervisor")
}

/// No isolation at all: propose the core plan's split.
pub fn isolation(cx: &Context) -> Option<Recommendation> {
    if !cx.isolated.is_empty() || cx.plan.isolated.is_empty() {
        return None;
    }
    Some(
        rec("kernel", "isolcpus")
            .now("unset")
            .want(format!("managed_irq,domain,{}", cx.plan.isolated))
            .sev(Severity::Warning)
            .impact(Impact::High)
            .risk(Risk::PotentiallyDisruptive)
            .why("Without isolated CPUs the scheduler, kernel threads and IRQs share every core with the trading threads. The target keeps one whole core per NUMA node for housekeeping (see lltune gen-config); needs a reboot."),
    )
}

/// `nohz_full=` should cover exactly the isolated CPUs.
pub fn nohz_full(cx: &Context) -> Option<Recommendation> {
    let f = cx.facts;
    let iso = f.kernel.isolcpus.as_ref().map(|i| &i.cpus).filter(|c| !c.is_empty())?;
    // For a generated config: the CPUs its plan isolates (none: nothing to propose).
    let iso = if cx.for_config { Some(&cx.target_isolated).filter(|c| !c.is_empty())? } else { iso };
    let r = rec("kernel", "nohz_full").want(iso).impact(Impact::High).risk(Risk::PotentiallyDisruptive);
    match &f.kernel.nohz_full {
        None => Some(r.now("unset").sev(Severity::Warning).why("Isolated CPUs without nohz_full still take the scheduler tick (250-1000 per second) while running one task.")),
        Some(n) if n != iso => Some(
            r.now(list_or_none(n))
                .sev(Severity::Warning)
                .why("nohz_full and isolcpus name different CPUs: an isolated CPU outside nohz_full keeps its tick; a nohz_full CPU outside isolcpus gets other tasks scheduled on it."),
        ),
        _ => None,
    }
}

/// `rcu_nocbs=` should cover the isolated CPUs, so RCU callbacks run elsewhere.
pub fn rcu_nocbs(cx: &Context) -> Option<Recommendation> {
    let f = cx.facts;
    let mut iso = f.kernel.isolcpus.as_ref().map(|i| i.cpus.clone()).unwrap_or_default();
    if let Some(n) = &f.kernel.nohz_full {
        iso = iso.union(n);
    }
    if cx.for_config && !iso.is_empty() {
        iso = cx.target_isolated.clone();
    }
    if iso.is_empty() {
        return None;
    }
    let have = f.kernel.rcu_nocbs.clone().unwrap_or_default();
    if iso.is_subset(&have) {
        return None;
    }
    // Since Linux 3.x nohz_full CPUs are callback-offloaded too (rcu_init_nohz), so a
    // missing rcu_nocbs only matters for isolated CPUs outside nohz_full.
    let implied = f.kernel.nohz_full.clone().unwrap_or_default();
    let sev = if iso.is_subset(&have.union(&implied)) { Severity::Info } else { Severity::Warning };
    Some(
        rec("kernel", "rcu_nocbs")
            .now(f.kernel.rcu_nocbs.as_ref().map(list_or_none).unwrap_or_else(|| "unset".into()))
            .want(&iso)
            .sev(sev)
            .impact(Impact::Medium)
            .risk(Risk::PotentiallyDisruptive)
            .why("RCU callbacks run on the CPU that queued them unless offloaded; rcu_nocbs moves them to rcuo threads on housekeeping CPUs."),
    )
}

/// `isolcpus=` flags: `managed_irq` keeps managed device IRQs off; without `domain` the
/// CPUs stay in scheduler domains (fine only when cpusets keep tasks off, as on OpenShift).
pub fn isolcpus_flags(cx: &Context) -> Vec<Recommendation> {
    let f = cx.facts;
    let Some(i) = f.kernel.isolcpus.as_ref().filter(|i| !i.cpus.is_empty()) else { return Vec::new() };
    let mut out = Vec::new();
    let flags = i.flags.join(",");
    let cpus = if cx.for_config { &cx.target_isolated } else { &i.cpus };
    if cpus.is_empty() {
        return Vec::new();
    }
    if !i.flags.iter().any(|x| x == "managed_irq") {
        out.push(
            rec("kernel", "isolcpus.managed_irq")
                .now(if flags.is_empty() { "no flags".to_string() } else { flags.clone() })
                .want(format!("managed_irq,domain,{cpus}"))
                .sev(Severity::Warning)
                .impact(Impact::Medium)
                .risk(Risk::PotentiallyDisruptive)
                .why("Drivers with kernel-managed IRQ affinity (NVMe, many NICs) spread queues over every CPU, isolated ones included, unless managed_irq is given."),
        );
    }
    if !i.flags.is_empty() && !i.flags.iter().any(|x| x == "domain") {
        out.push(
            rec("kernel", "isolcpus.domain")
                .now(flags)
                .want(format!("{},domain,{cpus}", i.flags.join(",")))
                .impact(Impact::Medium)
                .risk(Risk::PotentiallyDisruptive)
                .why("Flags without `domain` leave the CPUs in the scheduler's load balancing: tasks can land on them unless cpusets (e.g. an OpenShift performance profile) keep them off."),
        );
    }
    out
}

/// Isolation that names CPUs this host does not have online.
pub fn isolated_outside_online(f: &Facts) -> Option<Recommendation> {
    if f.cpu.online.is_empty() {
        return None;
    }
    let mut named = f.kernel.isolcpus.as_ref().map(|i| i.cpus.clone()).unwrap_or_default();
    if let Some(n) = &f.kernel.nohz_full {
        named = named.union(n);
    }
    let outside = named.difference(&f.cpu.online);
    if outside.is_empty() {
        return None;
    }
    Some(
        rec("kernel", "isolation_outside_online")
            .now(format!("isolcpus/nohz_full name CPUs {outside}, not online"))
            .want(format!("CPUs within {}", f.cpu.online))
            .impact(Impact::Low)
            .why("CPUs that are not online are not isolated by naming them; the list was probably written for another machine."),
    )
}

/// Every online CPU isolated: nothing is left for the kernel and the OS.
pub fn isolated_everything(cx: &Context) -> Option<Recommendation> {
    let online = &cx.facts.cpu.online;
    if cx.isolated.is_empty() || online.is_empty() || !online.is_subset(&cx.isolated) {
        return None;
    }
    Some(
        rec("kernel", "isolation_leaves_no_housekeeping")
            .now(format!("isolated {} = every online CPU", cx.isolated))
            .want(format!("housekeeping {}", cx.plan.housekeeping))
            .sev(Severity::Error)
            .impact(Impact::High)
            .risk(Risk::PotentiallyDisruptive)
            .why("With every CPU isolated the kernel puts its housekeeping work back on all of them (or on CPU 0 alone), the opposite of what isolation is for."),
    )
}

pub fn skew_tick(f: &Facts) -> Option<Recommendation> {
    if arg(f, "skew_tick") == Some(Some("1")) {
        return None;
    }
    Some(
        rec("kernel", "skew_tick")
            .now(arg(f, "skew_tick").map(|v| v.unwrap_or("").to_string()).unwrap_or_else(|| "unset".into()))
            .want("1")
            .impact(Impact::Medium)
            .why("Without it every CPU's tick fires at the same instant and they contend for the same timer locks; skew_tick=1 offsets them."),
    )
}

/// `tsc=reliable` (or `tsc=nowatchdog`) on a bare-metal host with an invariant TSC.
pub fn tsc(f: &Facts) -> Option<Recommendation> {
    let t = f.time.tsc.as_ref()?;
    if !(t.constant_tsc && t.nonstop_tsc) || virtualised(f) {
        return None;
    }
    if matches!(arg(f, "tsc"), Some(Some("reliable" | "nowatchdog"))) {
        return None;
    }
    Some(
        rec("kernel", "tsc")
            .now(arg(f, "tsc").flatten().unwrap_or("unset"))
            .want("reliable")
            .impact(Impact::Low)
            .risk(Risk::PotentiallyDisruptive)
            .why("The clocksource watchdog reads the TSC against HPET every half second on one CPU; with an invariant TSC the check only adds work (and may wrongly demote the TSC under load)."),
    )
}

pub fn nosoftlockup(f: &Facts) -> Option<Recommendation> {
    if has(f, "nosoftlockup") || has(f, "nowatchdog") || sysctl_num(f, "kernel.watchdog") == Some(0) {
        return None;
    }
    Some(
        rec("kernel", "nosoftlockup")
            .now("unset")
            .want("nosoftlockup")
            .impact(Impact::Low)
            .why("The soft-lockup detector runs a per-CPU hrtimer and watchdog thread; a spinning trading thread also looks like a lockup to it."),
    )
}

pub fn nmi_watchdog(f: &Facts) -> Option<Recommendation> {
    if arg(f, "nmi_watchdog") == Some(Some("0")) || has(f, "nowatchdog") {
        return None;
    }
    let runtime = sysctl_num(f, "kernel.nmi_watchdog");
    if runtime == Some(0) {
        return None;
    }
    Some(
        rec("kernel", "nmi_watchdog")
            .now(runtime.map(|v| format!("{v} (kernel.nmi_watchdog)")).unwrap_or_else(|| "unset".into()))
            .want("0")
            .sev(if runtime.is_some() { Severity::Warning } else { Severity::Info })
            .impact(Impact::Medium)
            .why("The hard-lockup detector fires a perf NMI on every CPU periodically, a multi-microsecond interruption of an isolated core."),
    )
}

/// THP off from boot, so nothing is ever backed by huge pages the application did not ask for.
pub fn transparent_hugepage(f: &Facts) -> Option<Recommendation> {
    if arg(f, "transparent_hugepage") == Some(Some("never")) || f.memory.thp.enabled.as_deref() == Some("never") {
        return None;
    }
    Some(
        rec("kernel", "transparent_hugepage")
            .now(arg(f, "transparent_hugepage").flatten().unwrap_or("unset"))
            .want("never")
            .impact(Impact::Medium)
            .risk(Risk::PotentiallyDisruptive)
            .why("Set on the command line, THP is off before any process starts; the runtime setting (memory.thp_runtime) does not survive a reboot by itself."),
    )
}

/// C-state limit on the command line, when the runtime idle states are unknown.
pub fn cstate_limit(f: &Facts) -> Option<Recommendation> {
    if !f.cpu.cpuidle.states.is_empty() || virtualised(f) {
        return None; // cpu.cstates judges the runtime states
    }
    if has(f, "processor.max_cstate") || has(f, "intel_idle.max_cstate") || arg(f, "idle") == Some(Some("poll")) {
        return None;
    }
    Some(
        rec("kernel", "processor.max_cstate")
            .now("unset")
            .want("1 (with intel_idle.max_cstate=1 on Intel)")
            .impact(Impact::High)
            .risk(Risk::PotentiallyDisruptive)
            .why("Deep C-states take tens to hundreds of microseconds to exit; the limit keeps idle cores in C1."),
    )
}

/// `idle=poll`: the lowest wake-up latency at the price of a busy-spinning idle loop. Not set
/// on bare metal: offered as an option. Already set (bare metal or not): an info that it may
/// be removed, as the seed reports, since it costs power and heat on every core.
pub fn idle_poll(f: &Facts) -> Option<Recommendation> {
    if arg(f, "idle") == Some(Some("poll")) {
        return Some(
            rec("kernel", "idle")
                .now("poll")
                .want("consider removing if power or heat is a concern")
                .impact(Impact::Medium)
                .risk(Risk::PotentiallyDisruptive)
                .why("idle=poll keeps every idle CPU spinning: wake-up is immediate, but all cores draw full power and heat, which can cost turbo headroom and throttle. Keep it only where wake-up latency matters more."),
        );
    }
    if virtualised(f) {
        return None;
    }
    Some(
        rec("kernel", "idle")
            .now(arg(f, "idle").flatten().unwrap_or("unset"))
            .want("poll (optional)")
            .impact(Impact::Medium)
            .risk(Risk::HighRisk)
            .why("idle=poll never halts a CPU: wake-up is immediate, but every core burns full power, turbo headroom disappears and thermal throttling becomes likely. Left off by gen-config."),
    )
}

/// `intel_pstate=disable` on Intel hosts driven by intel_pstate; on AMD it does nothing.
pub fn intel_pstate(f: &Facts) -> Option<Recommendation> {
    let vendor = f.cpu.vendor.as_deref()?;
    let arg_val = arg(f, "intel_pstate").flatten();
    if vendor == "AuthenticAMD" && arg_val == Some("disable") {
        return Some(
            rec("kernel", "intel_pstate")
                .now("disable")
                .want("unset")
                .impact(Impact::Low)
                .why("intel_pstate= has no effect on AMD processors; it only adds confusion to the command line."),
        );
    }
    if vendor != "GenuineIntel" || arg_val == Some("disable") || f.cpu.scaling_driver.as_deref() != Some("intel_pstate")
    {
        return None;
    }
    Some(
        rec("kernel", "intel_pstate")
            .now(arg_val.unwrap_or("unset"))
            .want("disable")
            .impact(Impact::Low)
            .risk(Risk::PotentiallyDisruptive)
            .why("With intel_pstate the hardware chooses frequencies; acpi-cpufreq with the performance governor pins them. Modern Intel parts do well with intel_pstate + performance too, so this is optional."),
    )
}

/// `mitigations=off`: only reported where the kernel shows mitigations in force.
pub fn mitigations(f: &Facts) -> Option<Recommendation> {
    let current = f.kernel.mitigations.as_deref().or(arg(f, "mitigations").flatten());
    if current == Some("off") {
        return None;
    }
    let active: Vec<&String> =
        f.cpu.vulnerabilities.iter().filter(|(_, v)| v.starts_with("Mitigation")).map(|(k, _)| k).collect();
    if active.is_empty() {
        return None;
    }
    Some(
        rec("kernel", "mitigations")
            .now(format!("{} (active: {})", current.unwrap_or("auto"), active.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")))
            .want("off (only on hosts that run no untrusted code)")
            .impact(Impact::Medium)
            .risk(Risk::HighRisk)
            .why("Speculative-execution mitigations add cost to every syscall, interrupt and context switch; turning them off exposes the host to those attacks. Needs safety.allow_dangerous_mitigations."),
    )
}

/// `hugepages=` on the command line against the pages the kernel holds now.
pub fn hugepages_vs_runtime(f: &Facts) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let default_kb = f.kernel.default_hugepagesz_kb.or(f.memory.default_hugepage_size_kb);
    for b in &f.kernel.hugepages {
        let Some(size) = b.size_kb.or(default_kb) else { continue };
        if let (Some(want), Some(have)) = (b.pages, f.memory.hugepages.get(&size.to_string()).and_then(|h| h.total)) {
            if want != have {
                out.push(
                    rec("kernel", format!("hugepages ({size} kB)"))
                        .now(format!("{have} pages allocated"))
                        .want(format!("{want} pages (hugepages= on the command line)"))
                        .sev(Severity::Warning)
                        .impact(Impact::Medium)
                        .why("The running kernel holds a different number of huge pages than the command line asks for: memory was too fragmented at boot, or something changed the count since."),
                );
            }
        }
        for (node, want) in b.per_node.iter().flatten() {
            let have = node
                .parse::<u32>()
                .ok()
                .and_then(|id| f.numa.nodes.iter().find(|n| n.id == id))
                .and_then(|n| n.hugepages.get(&size.to_string()))
                .and_then(|h| h.total);
            if let Some(have) = have.filter(|h| h != want) {
                out.push(
                    rec("kernel", format!("hugepages ({size} kB) node {node}"))
                        .now(format!("{have} pages"))
                        .want(format!("{want} pages (hugepages= on the command line)"))
                        .sev(Severity::Warning)
                        .impact(Impact::Medium)
                        .why("The node holds a different number of huge pages than the command line's per-node count asks for."),
                );
            }
        }
    }
    out
}

/// Runtime `nohz_full` against the command line (when the runtime file says something).
pub fn nohz_full_vs_runtime(f: &Facts) -> Option<Recommendation> {
    let want = f.kernel.nohz_full.as_ref()?;
    let have = f.cpu.nohz_full.as_ref()?;
    if have.is_empty() || have == want {
        return None;
    }
    Some(
        rec("kernel", "nohz_full (runtime)")
            .now(have)
            .want(want)
            .sev(Severity::Warning)
            .impact(Impact::High)
            .why("The kernel runs with other nohz_full CPUs than its command line names: the command line changed without a reboot, or the kernel refused part of it."),
    )
}

/// Workqueue and writeback cpumasks should avoid isolated CPUs.
pub fn cpumasks(cx: &Context) -> Vec<Recommendation> {
    let m = &cx.facts.kernel.cpumasks;
    let mut out = Vec::new();
    if cx.isolated.is_empty() {
        return out;
    }
    for (item, mask, path) in [
        ("workqueue cpumask", &m.workqueue, "/sys/devices/virtual/workqueue/cpumask"),
        ("writeback cpumask", &m.writeback, "/sys/bus/workqueue/devices/writeback/cpumask"),
    ] {
        let Some(mask) = mask else { continue };
        let on = mask.intersection(&cx.isolated);
        if on.is_empty() {
            continue;
        }
        out.push(
            rec("kernel", item)
                .now(format!("{mask} (includes isolated {on})"))
                .want(list_or_none(&cx.housekeeping))
                .sev(Severity::Warning)
                .impact(Impact::Medium)
                .why(&format!("Unbound kernel work queued from anywhere may run on any CPU of {path}; keep it on housekeeping CPUs.")),
        );
    }
    out
}

pub fn timer_migration(f: &Facts) -> Option<Recommendation> {
    let v = sysctl_num(f, "kernel.timer_migration")?;
    if v == 0 {
        return None;
    }
    Some(rec("kernel", "kernel.timer_migration").now(v).want(0).impact(Impact::Low).why(
        "With migration on, timers armed on one CPU may be moved to (and fire on) another, including an isolated one.",
    ))
}

pub fn stat_interval(f: &Facts) -> Option<Recommendation> {
    let v = sysctl_num(f, "vm.stat_interval")?;
    if v >= STAT_INTERVAL_MIN_SECS {
        return None;
    }
    Some(
        rec("kernel", "vm.stat_interval")
            .now(v)
            .want(STAT_INTERVAL_MIN_SECS)
            .impact(Impact::Low)
            .why("Every stat_interval seconds each CPU folds its VM counters (vmstat_update): a periodic interruption of isolated CPUs."),
    )
}

pub fn hung_task_timeout(f: &Facts) -> Option<Recommendation> {
    let v = sysctl_num(f, "kernel.hung_task_timeout_secs")?;
    if v == 0 || v >= HUNG_TASK_TIMEOUT_MIN_SECS {
        return None;
    }
    Some(
        rec("kernel", "kernel.hung_task_timeout_secs")
            .now(v)
            .want(HUNG_TASK_TIMEOUT_MIN_SECS)
            .impact(Impact::Low)
            .why("khungtaskd wakes every timeout period and walks every task; a longer period means fewer walks (0 disables the detector)."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing;
    use crate::cpulist::CpuList;
    use crate::facts::kernel::{Isolcpus, parse_cmdline};

    fn with_cmdline(line: &str) -> Facts {
        let mut f = testing::two_nodes();
        let c = parse_cmdline(line);
        f.kernel.args = c.to_map();
        f.kernel.cmdline = Some(line.into());
        if let Some(Some(v)) = c.last("isolcpus") {
            f.kernel.isolcpus = Some(crate::facts::kernel::parse_isolcpus(v).unwrap());
        }
        for (k, slot) in [("nohz_full", &mut f.kernel.nohz_full), ("rcu_nocbs", &mut f.kernel.rcu_nocbs)] {
            if let Some(Some(v)) = c.last(k) {
                *slot = Some(CpuList::parse(v).unwrap());
            }
        }
        f
    }

    #[test]
    fn no_isolation_proposes_the_core_plan() {
        let f = with_cmdline("ro quiet");
        let cx = Context::new(&f);
        let r = isolation(&cx).unwrap();
        assert_eq!(r.target, "managed_irq,domain,1-3,5-7,9-11,13-15");
        let f = with_cmdline("isolcpus=2-3");
        assert!(isolation(&Context::new(&f)).is_none());
    }

    #[test]
    fn nohz_full_missing_or_different_from_isolcpus() {
        assert!(nohz_full(&Context::new(&with_cmdline("ro"))).is_none(), "no isolation: nothing to cover");
        let r = nohz_full(&Context::new(&with_cmdline("isolcpus=managed_irq,domain,2-3"))).unwrap();
        assert_eq!((r.current.as_str(), r.target.as_str()), ("unset", "2-3"));
        let r = nohz_full(&Context::new(&with_cmdline("isolcpus=2-3 nohz_full=2"))).unwrap();
        assert_eq!(r.current, "2");
        assert!(nohz_full(&Context::new(&with_cmdline("isolcpus=2-3 nohz_full=2-3"))).is_none());
    }

    #[test]
    fn rcu_nocbs_is_info_when_nohz_full_implies_it() {
        assert!(rcu_nocbs(&Context::new(&with_cmdline("isolcpus=2-3 nohz_full=2-3 rcu_nocbs=2-3"))).is_none());
        assert_eq!(
            rcu_nocbs(&Context::new(&with_cmdline("isolcpus=2-3 nohz_full=2-3"))).unwrap().severity,
            Severity::Info
        );
        assert_eq!(
            rcu_nocbs(&Context::new(&with_cmdline("isolcpus=2-3 rcu_nocbs=2"))).unwrap().severity,
            Severity::Warning
        );
    }

    #[test]
    fn isolcpus_without_managed_irq_or_domain() {
        let f = with_cmdline("isolcpus=2-3");
        let items: Vec<String> = isolcpus_flags(&Context::new(&f)).into_iter().map(|r| r.item).collect();
        assert_eq!(items, ["isolcpus.managed_irq"], "no flags means domain to the kernel");
        let f = with_cmdline("isolcpus=managed_irq,2-3");
        let items: Vec<String> = isolcpus_flags(&Context::new(&f)).into_iter().map(|r| r.item).collect();
        assert_eq!(items, ["isolcpus.domain"]);
        assert!(isolcpus_flags(&Context::new(&with_cmdline("isolcpus=managed_irq,domain,2-3"))).is_empty());
    }

    #[test]
    fn isolating_every_cpu_is_an_error() {
        let mut f = with_cmdline("isolcpus=0-15");
        f.kernel.isolcpus = Some(Isolcpus { flags: vec![], cpus: CpuList::parse("0-15").unwrap() });
        let r = isolated_everything(&Context::new(&f)).unwrap();
        assert_eq!(r.severity, Severity::Error);
        assert!(isolated_everything(&Context::new(&with_cmdline("isolcpus=1-15"))).is_none());
        assert!(isolated_outside_online(&with_cmdline("isolcpus=8-16")).unwrap().current.contains("16"));
    }

    #[test]
    fn tuned_flags_silence_their_rules() {
        let f = with_cmdline(
            "skew_tick=1 tsc=nowatchdog nosoftlockup nmi_watchdog=0 transparent_hugepage=never processor.max_cstate=1 idle=poll",
        );
        for r in
            [skew_tick(&f), tsc(&f), nosoftlockup(&f), nmi_watchdog(&f), transparent_hugepage(&f), cstate_limit(&f)]
        {
            assert!(r.is_none(), "{r:?}");
        }
        // idle=poll already set: the seed's "consider removing", an info.
        let r = idle_poll(&f).unwrap();
        assert_eq!((r.item.as_str(), r.current.as_str(), r.severity), ("idle", "poll", Severity::Info));
        assert!(r.target.starts_with("consider removing"), "{}", r.target);
        let f = with_cmdline("skew_tick=0");
        assert_eq!(skew_tick(&f).unwrap().current, "0");
    }

    #[test]
    fn nmi_watchdog_from_runtime_sysctl() {
        let mut f = with_cmdline("ro");
        assert_eq!(nmi_watchdog(&f).unwrap().severity, Severity::Info);
        f.sysctl.insert("kernel.nmi_watchdog".into(), Some("0".into()));
        assert!(nmi_watchdog(&f).is_none());
        f.sysctl.insert("kernel.nmi_watchdog".into(), Some("1".into()));
        assert_eq!(nmi_watchdog(&f).unwrap().severity, Severity::Warning);
    }

    #[test]
    fn intel_pstate_on_amd_is_pointless() {
        let mut f = with_cmdline("intel_pstate=disable");
        f.cpu.vendor = Some("AuthenticAMD".into());
        assert_eq!(intel_pstate(&f).unwrap().target, "unset");
        f.cpu.vendor = Some("GenuineIntel".into());
        assert!(intel_pstate(&f).is_none());
        let mut f = with_cmdline("ro");
        f.cpu.vendor = Some("GenuineIntel".into());
        assert!(intel_pstate(&f).is_none(), "driver unknown");
        f.cpu.scaling_driver = Some("intel_pstate".into());
        assert_eq!(intel_pstate(&f).unwrap().target, "disable");
    }

    #[test]
    fn mitigations_only_where_some_are_active() {
        let mut f = with_cmdline("ro");
        assert!(mitigations(&f).is_none());
        f.cpu.vulnerabilities.insert("spectre_v2".into(), "Mitigation: Retpolines".into());
        f.cpu.vulnerabilities.insert("meltdown".into(), "Not affected".into());
        let r = mitigations(&f).unwrap();
        assert_eq!(r.risk, Risk::HighRisk);
        assert!(r.current.contains("spectre_v2") && !r.current.contains("meltdown"));
        let mut f = with_cmdline("mitigations=off");
        f.cpu.vulnerabilities.insert("spectre_v2".into(), "Mitigation: Retpolines".into());
        assert!(mitigations(&f).is_none());
    }

    #[test]
    fn cmdline_hugepages_against_runtime_counts() {
        let mut f = with_cmdline("hugepagesz=2M hugepages=128");
        f.kernel.hugepages =
            vec![crate::facts::kernel::BootHugepages { size_kb: Some(2048), pages: Some(128), per_node: None }];
        assert!(hugepages_vs_runtime(&f).is_empty(), "runtime unknown");
        f.memory
            .hugepages
            .insert("2048".into(), crate::facts::memory::Hugepages { total: Some(128), ..Default::default() });
        assert!(hugepages_vs_runtime(&f).is_empty());
        f.memory
            .hugepages
            .insert("2048".into(), crate::facts::memory::Hugepages { total: Some(100), ..Default::default() });
        assert_eq!(hugepages_vs_runtime(&f)[0].current, "100 pages allocated");
    }

    #[test]
    fn cpumasks_covering_isolated_cpus() {
        let mut f = with_cmdline("isolcpus=2-3");
        f.kernel.cpumasks.workqueue = Some(CpuList::parse("0-15").unwrap());
        f.kernel.cpumasks.writeback = Some(CpuList::parse("0-1").unwrap());
        let recs = cpumasks(&Context::new(&f));
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].item, "workqueue cpumask");
        assert!(recs[0].current.contains("isolated 2-3"));
    }

    #[test]
    fn sysctl_thresholds_at_their_boundaries() {
        let mut f = testing::blank();
        let set = |f: &mut Facts, k: &str, v: i64| {
            f.sysctl.insert(k.into(), Some(v.to_string()));
        };
        assert!(timer_migration(&f).is_none());
        set(&mut f, "kernel.timer_migration", 0);
        assert!(timer_migration(&f).is_none());
        set(&mut f, "kernel.timer_migration", 1);
        assert!(timer_migration(&f).is_some());
        set(&mut f, "vm.stat_interval", STAT_INTERVAL_MIN_SECS);
        assert!(stat_interval(&f).is_none());
        set(&mut f, "vm.stat_interval", STAT_INTERVAL_MIN_SECS - 1);
        assert!(stat_interval(&f).is_some());
        set(&mut f, "kernel.hung_task_timeout_secs", 0);
        assert!(hung_task_timeout(&f).is_none(), "0 = detector off");
        set(&mut f, "kernel.hung_task_timeout_secs", HUNG_TASK_TIMEOUT_MIN_SECS);
        assert!(hung_task_timeout(&f).is_none());
        set(&mut f, "kernel.hung_task_timeout_secs", HUNG_TASK_TIMEOUT_MIN_SECS - 1);
        assert!(hung_task_timeout(&f).is_some());
    }
}
