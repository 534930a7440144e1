//! Per-NIC rules (physical netdevs only): offloads that batch packets, interrupt
//! coalescing, rings below their maximum, RPS/RFS, and more channels than housekeeping CPUs.

use super::{Context, Impact, Recommendation, Risk, Severity, rec};
use crate::cpulist::CpuList;
use crate::facts::nic::Nic;

/// Offloads that trade latency for throughput: (kernel feature name, ethtool short name).
/// GRO/LRO hold received packets back to merge them; TSO/GSO build large sends.
pub const BATCHING_OFFLOADS: &[(&str, &str)] =
    &[("rx-gro", "gro"), ("rx-lro", "lro"), ("tx-tcp-segmentation", "tso"), ("tx-generic-segmentation", "gso")];

pub fn rules(cx: &Context, out: &mut Vec<Recommendation>) {
    for n in cx.facts.nics.iter().filter(|n| !n.r#virtual) {
        let Some(name) = n.name.as_deref() else { continue };
        out.extend(offloads(name, n));
        out.extend(coalescing(name, n));
        out.extend(rings(name, n));
        out.extend(rps(name, n));
        out.extend(rfs(name, n));
        out.extend(channels(name, n, &cx.target_housekeeping));
    }
}

/// Batching offloads that are on and can be changed.
pub fn offloads(name: &str, n: &Nic) -> Option<Recommendation> {
    let features = n.features.as_ref()?;
    let fixed = n.features_fixed.clone().unwrap_or_default();
    let on: Vec<&str> = BATCHING_OFFLOADS
        .iter()
        .filter(|(k, _)| features.get(*k) == Some(&true) && !fixed.iter().any(|x| x == k))
        .map(|(_, short)| *short)
        .collect();
    if on.is_empty() {
        return None;
    }
    let receive = on.iter().any(|s| *s == "gro" || *s == "lro");
    Some(
        rec("nic", format!("{name}: offloads"))
            .now(format!("{} on", on.join(", ")))
            .want(format!("{} off", on.join(", ")))
            .sev(if receive { Severity::Warning } else { Severity::Info })
            .impact(if receive { Impact::Medium } else { Impact::Low })
            .risk(Risk::PotentiallyDisruptive)
            .why("GRO and LRO hold packets back to merge them, TSO and GSO build large segments: good for throughput, extra microseconds for each small message."),
    )
}

/// Interrupt coalescing: lists only the parameters the driver reports as set (non-zero).
pub fn coalescing(name: &str, n: &Nic) -> Option<Recommendation> {
    let c = n.coalesce.as_ref()?;
    let mut set = Vec::new();
    for (label, v) in [
        ("rx-usecs", c.rx_coalesce_usecs),
        ("rx-frames", c.rx_max_coalesced_frames),
        ("tx-usecs", c.tx_coalesce_usecs),
        ("tx-frames", c.tx_max_coalesced_frames),
    ] {
        if v != 0 {
            set.push(format!("{label} {v}"));
        }
    }
    if c.use_adaptive_rx_coalesce != 0 {
        set.push("adaptive-rx on".into());
    }
    if c.use_adaptive_tx_coalesce != 0 {
        set.push("adaptive-tx on".into());
    }
    let delays = c.rx_coalesce_usecs != 0
        || c.tx_coalesce_usecs != 0
        || c.use_adaptive_rx_coalesce != 0
        || c.use_adaptive_tx_coalesce != 0;
    if !delays {
        return None;
    }
    Some(
        rec("nic", format!("{name}: coalescing"))
            .now(set.join(", "))
            .want("rx-usecs 0, tx-usecs 0, adaptive-rx off, adaptive-tx off")
            .sev(Severity::Warning)
            .impact(Impact::High)
            .risk(Risk::PotentiallyDisruptive)
            .why("Coalescing delays the interrupt to batch packets (rx-usecs is that delay, adaptive modes vary it with load); 0 interrupts per packet, at a higher interrupt rate."),
    )
}

/// Rings smaller than the hardware allows.
pub fn rings(name: &str, n: &Nic) -> Option<Recommendation> {
    let r = n.rings.as_ref()?;
    let mut now = Vec::new();
    let mut want = Vec::new();
    if r.rx_max_pending > 0 && r.rx_pending < r.rx_max_pending {
        now.push(format!("rx {}", r.rx_pending));
        want.push(format!("rx {}", r.rx_max_pending));
    }
    if r.tx_max_pending > 0 && r.tx_pending < r.tx_max_pending {
        now.push(format!("tx {}", r.tx_pending));
        want.push(format!("tx {}", r.tx_max_pending));
    }
    if now.is_empty() {
        return None;
    }
    Some(
        rec("nic", format!("{name}: rings"))
            .now(now.join(", "))
            .want(want.join(", "))
            .impact(Impact::Low)
            .risk(Risk::PotentiallyDisruptive)
            .why("Larger rings absorb bursts without drops (a drop costs a retransmit or a gap); they also spread descriptors over more cache, so size them for your burst."),
    )
}

/// RPS on some rx queue.
pub fn rps(name: &str, n: &Nic) -> Option<Recommendation> {
    let cpus = n.queues.as_ref()?.rps_cpus.as_ref()?;
    if cpus.is_empty() {
        return None;
    }
    Some(
        rec("nic", format!("{name}: rps"))
            .now(format!("rps_cpus {cpus}"))
            .want("off")
            .sev(Severity::Warning)
            .impact(Impact::Medium)
            .why("Receive Packet Steering hands each packet to another CPU through an IPI: an extra hop, and softirq work on CPUs it may not belong on."),
    )
}

/// RFS flow entries on the queues.
pub fn rfs(name: &str, n: &Nic) -> Option<Recommendation> {
    let cnt = n.queues.as_ref()?.rps_flow_cnt?;
    if cnt == 0 {
        return None;
    }
    Some(
        rec("nic", format!("{name}: rfs"))
            .now(format!("rps_flow_cnt {cnt}"))
            .want("0")
            .impact(Impact::Low)
            .why("Receive Flow Steering follows the reading thread; on an isolated host that moves softirq work onto the application's CPU or adds an IPI."),
    )
}

/// More queues (channels) than housekeeping CPUs: the extra queues' IRQs need homes.
pub fn channels(name: &str, n: &Nic, housekeeping: &CpuList) -> Option<Recommendation> {
    if housekeeping.is_empty() {
        return None;
    }
    let ch = n.channels.as_ref()?;
    let count = ch.combined_count.max(ch.rx_count);
    let hk = housekeeping.len() as u32;
    if count <= hk {
        return None;
    }
    Some(
        rec("nic", format!("{name}: channels"))
            .now(count)
            .want(hk)
            .sev(Severity::Warning)
            .impact(Impact::Medium)
            .risk(Risk::PotentiallyDisruptive)
            .why("Each channel has its own IRQ; with more channels than housekeeping CPUs the driver spreads some onto isolated CPUs (or they pile up), so match the count to the housekeeping CPUs."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::nic::Queues;
    use crate::sys::ethtool::{Channels, Coalesce, Ringparam};

    #[test]
    fn offloads_on_and_changeable_only() {
        let mut n = Nic::default();
        assert!(offloads("eth0", &n).is_none());
        n.features = Some(
            [("rx-gro".to_string(), true), ("tx-tcp-segmentation".to_string(), true), ("rx-lro".to_string(), false)]
                .into(),
        );
        n.features_fixed = Some(vec!["tx-tcp-segmentation".into()]);
        let r = offloads("eth0", &n).unwrap();
        assert_eq!((r.current.as_str(), r.severity), ("gro on", Severity::Warning));
        n.features = Some([("tx-generic-segmentation".to_string(), true)].into());
        assert_eq!(offloads("eth0", &n).unwrap().severity, Severity::Info);
    }

    #[test]
    fn coalescing_lists_only_real_values() {
        let mut n = Nic { coalesce: Some(Coalesce::default()), ..Default::default() };
        assert!(coalescing("eth0", &n).is_none(), "all zero: nothing delayed");
        n.coalesce = Some(Coalesce { rx_max_coalesced_frames: 1, ..Default::default() });
        assert!(coalescing("eth0", &n).is_none(), "one frame per interrupt is no delay");
        n.coalesce = Some(Coalesce {
            rx_coalesce_usecs: 1,
            rx_max_coalesced_frames: 1,
            use_adaptive_rx_coalesce: 1,
            ..Default::default()
        });
        assert_eq!(coalescing("eth0", &n).unwrap().current, "rx-usecs 1, rx-frames 1, adaptive-rx on");
    }

    #[test]
    fn rings_below_their_maximum() {
        let mut n = Nic {
            rings: Some(Ringparam {
                rx_max_pending: 4096,
                rx_pending: 4096,
                tx_max_pending: 4096,
                tx_pending: 4095,
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = rings("eth0", &n).unwrap();
        assert_eq!((r.current.as_str(), r.target.as_str()), ("tx 4095", "tx 4096"));
        n.rings = Some(Ringparam {
            rx_max_pending: 4096,
            rx_pending: 4096,
            tx_max_pending: 0,
            tx_pending: 0,
            ..Default::default()
        });
        assert!(rings("eth0", &n).is_none());
    }

    #[test]
    fn rps_rfs_from_the_queue_summary() {
        let mut n = Nic {
            queues: Some(Queues { rps_cpus: Some(CpuList::new()), rps_flow_cnt: Some(0), ..Default::default() }),
            ..Default::default()
        };
        assert!(rps("eth0", &n).is_none() && rfs("eth0", &n).is_none());
        n.queues = Some(Queues {
            rps_cpus: Some(CpuList::parse("0-3").unwrap()),
            rps_flow_cnt: Some(2048),
            ..Default::default()
        });
        assert_eq!(rps("eth0", &n).unwrap().current, "rps_cpus 0-3");
        assert_eq!(rfs("eth0", &n).unwrap().current, "rps_flow_cnt 2048");
    }

    #[test]
    fn channels_against_housekeeping_cpus() {
        let hk = CpuList::parse("0,8").unwrap();
        let mut n = Nic { channels: Some(Channels { combined_count: 2, ..Default::default() }), ..Default::default() };
        assert!(channels("eth0", &n, &hk).is_none());
        assert!(channels("eth0", &n, &CpuList::new()).is_none(), "no isolation");
        n.channels = Some(Channels { combined_count: 3, ..Default::default() });
        assert_eq!(channels("eth0", &n, &hk).unwrap().target, "2");
    }
}
