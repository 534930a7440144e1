//! Network sysctl rules: busy polling, socket buffer limits, backlog, somaxconn, file-max,
//! TCP timestamps and SACK, and the RFS flow table. Each rule fires when the running value
//! is known and below the seed's boundary (or, for switches, on); the target it names is the
//! value gen-config proposes, which is often higher than the boundary: a finding says what is
//! wrong, the target what is best.

use super::{Context, Impact, Recommendation, Risk, Severity, rec, sysctl_num};
use crate::facts::Facts;

/// A "raise to at least" sysctl rule.
pub struct Minimum {
    pub name: &'static str,
    /// Fires when the running value is below this (the seed's boundary).
    pub fires_below: i64,
    /// What the finding proposes (and gen-config writes).
    pub target: i64,
    pub severity: Severity,
    pub impact: Impact,
    pub risk: Risk,
    pub rationale: &'static str,
}

pub const MINIMUMS: &[Minimum] = &[
    Minimum {
        name: "net.core.busy_poll",
        fires_below: 1,
        target: 50,
        severity: Severity::Warning,
        impact: Impact::High,
        risk: Risk::PotentiallyDisruptive,
        rationale: "Busy polling (microseconds) lets poll/select spin on the device queue instead of sleeping until the IRQ and softirq deliver the packet; it costs CPU while spinning.",
    },
    Minimum {
        name: "net.core.busy_read",
        fires_below: 1,
        target: 50,
        severity: Severity::Warning,
        impact: Impact::High,
        risk: Risk::PotentiallyDisruptive,
        rationale: "Busy reading (microseconds) lets a blocking recv spin on the device queue before sleeping; it costs CPU while spinning.",
    },
    Minimum {
        name: "net.core.rmem_max",
        fires_below: 16_777_216,
        target: 67_108_864,
        severity: Severity::Info,
        impact: Impact::Low,
        risk: Risk::Safe,
        rationale: "The largest receive buffer an application may ask for (bytes): market-data bursts overflow small buffers and drop.",
    },
    Minimum {
        name: "net.core.wmem_max",
        fires_below: 16_777_216,
        target: 67_108_864,
        severity: Severity::Info,
        impact: Impact::Low,
        risk: Risk::Safe,
        rationale: "The largest send buffer an application may ask for (bytes).",
    },
    Minimum {
        name: "net.core.netdev_max_backlog",
        fires_below: 10_000,
        target: 250_000,
        severity: Severity::Info,
        impact: Impact::Low,
        risk: Risk::Safe,
        rationale: "Packets queued per CPU between the driver and the stack; a short queue drops bursts.",
    },
    Minimum {
        name: "net.core.somaxconn",
        fires_below: 4096,
        target: 65_535,
        severity: Severity::Info,
        impact: Impact::Low,
        risk: Risk::Safe,
        rationale: "Upper bound of listen() backlogs; reconnect storms after a session drop overflow a short one.",
    },
    Minimum {
        name: "fs.file-max",
        fires_below: 1_000_000,
        target: 2_097_152,
        severity: Severity::Info,
        impact: Impact::Low,
        risk: Risk::Safe,
        rationale: "System-wide limit of open files (sockets included).",
    },
];

/// A TCP option the seed turns off for predictability.
pub struct Switch {
    pub name: &'static str,
    pub rationale: &'static str,
}

pub const SWITCHES_OFF: &[Switch] = &[
    Switch {
        name: "net.ipv4.tcp_timestamps",
        rationale: "Timestamps add 12 bytes and a clock read per segment; off loses PAWS protection and RTT precision, so leave on for WAN sessions.",
    },
    Switch {
        name: "net.ipv4.tcp_sack",
        rationale: "SACK processing walks retransmit queues on loss; off makes loss recovery slower but cheaper and more predictable on clean LANs.",
    },
];

pub fn rules(cx: &Context, out: &mut Vec<Recommendation>) {
    let f = cx.facts;
    for m in MINIMUMS {
        out.extend(minimum(f, m));
    }
    for s in SWITCHES_OFF {
        out.extend(switch_off(f, s));
    }
    out.extend(rfs_table(f));
}

pub fn minimum(f: &Facts, m: &Minimum) -> Option<Recommendation> {
    let v = sysctl_num(f, m.name)?;
    if v >= m.fires_below {
        return None;
    }
    Some(rec("network", m.name).now(v).want(m.target).sev(m.severity).impact(m.impact).risk(m.risk).why(m.rationale))
}

pub fn switch_off(f: &Facts, s: &Switch) -> Option<Recommendation> {
    let v = sysctl_num(f, s.name)?;
    if v == 0 {
        return None;
    }
    Some(rec("network", s.name).now(v).want(0).impact(Impact::Low).risk(Risk::PotentiallyDisruptive).why(s.rationale))
}

/// RFS on (global flow table): steering follows the consuming thread to another CPU.
pub fn rfs_table(f: &Facts) -> Option<Recommendation> {
    let v = sysctl_num(f, "net.core.rps_sock_flow_entries")?;
    if v == 0 {
        return None;
    }
    Some(
        rec("network", "net.core.rps_sock_flow_entries")
            .now(v)
            .want(0)
            .impact(Impact::Low)
            .why("Receive Flow Steering moves protocol processing to the CPU of the reading thread through an IPI: an extra hop, and work on an isolated CPU."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing;

    #[test]
    fn every_minimum_fires_just_below_its_boundary_only() {
        for m in MINIMUMS {
            assert!(m.fires_below <= m.target, "{}", m.name);
            let mut f = testing::blank();
            assert!(minimum(&f, m).is_none(), "{}: unknown", m.name);
            f.sysctl.insert(m.name.into(), Some(m.fires_below.to_string()));
            assert!(minimum(&f, m).is_none(), "{}: at the boundary", m.name);
            f.sysctl.insert(m.name.into(), Some((m.fires_below - 1).to_string()));
            let r = minimum(&f, m).unwrap();
            assert_eq!((r.current.clone(), r.target.clone()), ((m.fires_below - 1).to_string(), m.target.to_string()));
        }
    }

    #[test]
    fn the_seeds_boundaries_give_no_finding() {
        // A host the seed judged fine: its values at the seed's boundaries, below the targets.
        let mut f = testing::blank();
        for (k, v) in [
            ("net.core.busy_poll", 1),
            ("net.core.busy_read", 1),
            ("net.core.rmem_max", 16_777_216),
            ("net.core.wmem_max", 16_777_216),
            ("net.core.netdev_max_backlog", 10_000),
            ("net.core.somaxconn", 4096),
            ("fs.file-max", 1_000_000),
        ] {
            f.sysctl.insert(k.into(), Some(v.to_string()));
        }
        let mut out = Vec::new();
        rules(&super::super::Context::new(&f), &mut out);
        assert!(out.is_empty(), "{out:#?}");
        // One below each boundary: the finding names gen-config's target.
        f.sysctl.insert("net.core.somaxconn".into(), Some("4095".into()));
        f.sysctl.insert("net.core.rmem_max".into(), Some("16777215".into()));
        rules(&super::super::Context::new(&f), &mut out);
        let got: Vec<(&str, &str)> = out.iter().map(|r| (r.item.as_str(), r.target.as_str())).collect();
        assert_eq!(got, [("net.core.rmem_max", "67108864"), ("net.core.somaxconn", "65535")]);
    }

    #[test]
    fn switches_and_rfs() {
        let mut f = testing::blank();
        f.sysctl.insert("net.ipv4.tcp_sack".into(), Some("1".into()));
        f.sysctl.insert("net.ipv4.tcp_timestamps".into(), Some("0".into()));
        assert!(switch_off(&f, &SWITCHES_OFF[1]).is_some());
        assert!(switch_off(&f, &SWITCHES_OFF[0]).is_none());
        f.sysctl.insert("net.core.rps_sock_flow_entries".into(), Some("0".into()));
        assert!(rfs_table(&f).is_none());
        f.sysctl.insert("net.core.rps_sock_flow_entries".into(), Some("32768".into()));
        assert!(rfs_table(&f).is_some());
    }

    #[test]
    fn busy_poll_is_a_warning_with_the_seed_target() {
        let mut f = testing::blank();
        f.sysctl.insert("net.core.busy_poll".into(), Some("0".into()));
        let mut out = Vec::new();
        rules(&super::super::Context::new(&f), &mut out);
        let r = out.iter().find(|r| r.item == "net.core.busy_poll").unwrap();
        assert_eq!((r.target.as_str(), r.severity), ("50", Severity::Warning));
    }
}
