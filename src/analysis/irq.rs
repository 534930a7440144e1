//! IRQ rules: NIC IRQs delivered off their device's NUMA node, IRQs (managed or not) that may
//! hit isolated CPUs, and a default affinity that covers isolated CPUs.

use super::{Context, Impact, Recommendation, Risk, Severity, list_or_none, rec};
use crate::cpulist::CpuList;
use crate::facts::Facts;

pub fn rules(cx: &Context, out: &mut Vec<Recommendation>) {
    out.extend(cross_numa(cx.facts));
    out.extend(on_isolated(cx));
    out.extend(default_affinity(cx));
}

/// CPUs of a NUMA node.
fn node_cpus(f: &Facts, node: i64) -> Option<&CpuList> {
    f.numa.nodes.iter().find(|n| i64::from(n.id) == node).map(|n| &n.cpus)
}

/// NIC IRQs delivered to CPUs of another NUMA node than the NIC's.
pub fn cross_numa(f: &Facts) -> Vec<Recommendation> {
    let mut out = Vec::new();
    for (nic, irqs) in &f.irqs.nics {
        let Some(node) = irqs.numa_node else { continue };
        let Some(local) = node_cpus(f, node) else { continue };
        let remote = irqs.cpus.difference(local);
        if irqs.cpus.is_empty() || remote.is_empty() {
            continue;
        }
        out.push(
            rec("irq", format!("{nic}: affinity"))
                .now(format!("{} IRQs on CPUs {} ({} off node {node})", irqs.count, irqs.cpus, remote))
                .want(format!("CPUs of node {node} ({local})"))
                .sev(Severity::Warning)
                .impact(Impact::Medium)
                .why("An IRQ handled on another socket reads the packet and its descriptors across the interconnect and wakes the consumer remotely."),
        );
    }
    out
}

/// Active IRQs that may be delivered to isolated CPUs.
pub fn on_isolated(cx: &Context) -> Option<Recommendation> {
    let list = &cx.facts.irqs.on_isolated;
    if list.is_empty() {
        return None;
    }
    let managed = list.iter().filter(|i| i.managed == Some(true)).count();
    let mut hit = CpuList::new();
    for i in list {
        for a in [&i.affinity, &i.effective_affinity].into_iter().flatten() {
            hit = hit.union(&a.intersection(&cx.isolated));
        }
    }
    let names: Vec<String> = list
        .iter()
        .take(8)
        .map(|i| format!("{}{}", i.irq, i.actions.first().map(|a| format!(" ({a})")).unwrap_or_default()))
        .collect();
    let more = if list.len() > names.len() { format!(", +{} more", list.len() - names.len()) } else { String::new() };
    Some(
        rec("irq", "irqs_on_isolated_cpus")
            .now(format!("{} IRQs ({managed} managed) may hit isolated CPUs {}: {}{more}", list.len(), list_or_none(&hit), names.join(", ")))
            .want(format!("housekeeping CPUs {}", list_or_none(&cx.target_housekeeping)))
            .sev(Severity::Warning)
            .impact(Impact::High)
            .risk(Risk::PotentiallyDisruptive)
            .why("Each interrupt on an isolated CPU stops the trading thread for the handler and its softirq. Unmanaged IRQs move with smp_affinity; managed ones only with isolcpus=managed_irq (and a housekeeping CPU in their mask)."),
    )
}

/// `/proc/irq/default_smp_affinity` should exclude isolated CPUs.
pub fn default_affinity(cx: &Context) -> Option<Recommendation> {
    let d = cx.facts.irqs.default_affinity.as_ref()?;
    let on = d.intersection(&cx.isolated);
    if on.is_empty() {
        return None;
    }
    Some(
        rec("irq", "default_smp_affinity")
            .now(format!("{d} (includes isolated {on})"))
            .want(list_or_none(&cx.target_housekeeping))
            .sev(Severity::Warning)
            .impact(Impact::Medium)
            .why("New IRQs (a NIC reset, a hot-plugged device) start with this mask and may land on isolated CPUs; irqaffinity= on the command line sets it at boot."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing;
    use crate::facts::irq::{IrqOnIsolated, NicIrqs};

    fn l(s: &str) -> CpuList {
        CpuList::parse(s).unwrap()
    }

    #[test]
    fn cross_numa_only_when_cpus_leave_the_node() {
        let mut f = testing::two_nodes();
        f.irqs.nics.insert("eth0".into(), NicIrqs { count: 4, cpus: l("0-3"), numa_node: Some(0) });
        assert!(cross_numa(&f).is_empty());
        f.irqs.nics.insert("eth1".into(), NicIrqs { count: 4, cpus: l("3-4"), numa_node: Some(0) });
        f.irqs.nics.insert("eth2".into(), NicIrqs { count: 4, cpus: l("3-4"), numa_node: None });
        let r = cross_numa(&f);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].current, "4 IRQs on CPUs 3-4 (4 off node 0)");
    }

    #[test]
    fn irqs_on_isolated_counts_managed_ones() {
        let mut f = testing::two_nodes();
        f.kernel.isolcpus = Some(crate::facts::kernel::Isolcpus { flags: vec![], cpus: l("2-3") });
        f.irqs.on_isolated = vec![
            IrqOnIsolated {
                irq: 40,
                actions: vec!["nvme0q1".into()],
                affinity: Some(l("0-3")),
                effective_affinity: Some(l("3")),
                managed: Some(true),
            },
            IrqOnIsolated {
                irq: 41,
                actions: vec![],
                affinity: Some(l("2")),
                effective_affinity: None,
                managed: Some(false),
            },
        ];
        let r = on_isolated(&Context::new(&f)).unwrap();
        assert_eq!(r.current, "2 IRQs (1 managed) may hit isolated CPUs 2-3: 40 (nvme0q1), 41");
    }

    #[test]
    fn default_affinity_covering_isolated_cpus() {
        let mut f = testing::two_nodes();
        f.irqs.default_affinity = Some(l("0-15"));
        assert!(default_affinity(&Context::new(&f)).is_none(), "nothing isolated");
        f.kernel.nohz_full = Some(l("1-3"));
        let r = default_affinity(&Context::new(&f)).unwrap();
        assert_eq!(r.target, "0,4-15");
        f.irqs.default_affinity = Some(l("0,4-15"));
        assert!(default_affinity(&Context::new(&f)).is_none());
    }
}
