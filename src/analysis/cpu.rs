//! CPU rules: frequency governor, energy preference, turbo, idle states, SMT, and SMT
//! siblings split by isolation.

use super::{Context, Impact, Recommendation, Risk, Severity, by_cpus, rec};
use crate::cpulist::CpuList;
use crate::facts::cpu::Cpu;

/// An idle state whose exit latency (`cpuidle/stateN/latency`) is above this is "deep":
/// waking from it costs more than a cache miss to DRAM. C1 is 1-2 us on current x86.
pub const DEEP_CSTATE_LATENCY_US: u64 = 2;

pub fn rules(cx: &Context, out: &mut Vec<Recommendation>) {
    let c = &cx.facts.cpu;
    out.extend(governor(c));
    out.extend(epp(c));
    out.extend(turbo(c));
    out.extend(cstates(c));
    out.extend(smt(c));
    out.extend(split_siblings(c, &cx.isolated));
}

/// Every online CPU should run the `performance` governor; governors are compared as a set
/// (the seed compared a list and missed mixed hosts).
pub fn governor(c: &Cpu) -> Option<Recommendation> {
    if c.governors.is_empty() || c.governors.keys().all(|g| g == "performance") {
        return None;
    }
    Some(
        rec("cpu", "governor")
            .now(by_cpus(&c.governors))
            .want("performance")
            .sev(Severity::Warning)
            .impact(Impact::High)
            .risk(Risk::Safe)
            .why("Other governors lower the clock when a core looks idle; the first packet after a quiet spell then runs slow while the frequency ramps up."),
    )
}

/// Energy-performance preference (intel_pstate/amd_pstate active mode, HWP): `performance`.
pub fn epp(c: &Cpu) -> Option<Recommendation> {
    if c.epp.is_empty() || c.epp.keys().all(|e| e == "performance") {
        return None;
    }
    Some(
        rec("cpu", "energy_performance_preference")
            .now(by_cpus(&c.epp))
            .want("performance")
            .sev(Severity::Warning)
            .impact(Impact::Medium)
            .why("With hardware P-states the CPU picks its own frequency; any preference but performance trades wake-up speed for power."),
    )
}

/// Turbo changes the clock with load and temperature: consistent latency wants it off.
pub fn turbo(c: &Cpu) -> Option<Recommendation> {
    if c.turbo != Some(true) {
        return None;
    }
    Some(
        rec("cpu", "turbo")
            .now("on")
            .want("off")
            .impact(Impact::Medium)
            .risk(Risk::PotentiallyDisruptive)
            .why("Turbo frequency depends on how many cores are busy and on temperature, so the same code path runs at different speeds; off gives steadier latency at a lower peak."),
    )
}

/// Idle states deeper than C1 that some online CPU may still enter.
pub fn cstates(c: &Cpu) -> Option<Recommendation> {
    let deep: Vec<String> = c
        .cpuidle
        .states
        .iter()
        .filter(|s| s.latency_us.is_some_and(|l| l > DEEP_CSTATE_LATENCY_US))
        .filter(|s| !c.online.is_subset(&s.disabled_cpus))
        .map(|s| format!("{} ({} us)", s.name.as_deref().unwrap_or(&s.state), s.latency_us.unwrap_or(0)))
        .collect();
    if deep.is_empty() {
        return None;
    }
    Some(
        rec("cpu", "cstates")
            .now(format!("enabled: {}", deep.join(", ")))
            .want("C1 at most (processor.max_cstate=1 intel_idle.max_cstate=1)")
            .sev(Severity::Warning)
            .impact(Impact::High)
            .risk(Risk::PotentiallyDisruptive)
            .why("A core in a deep C-state takes tens to hundreds of microseconds to wake; limiting idle to C1 costs power and turbo headroom."),
    )
}

/// SMT on: siblings share a core's caches and execution units.
pub fn smt(c: &Cpu) -> Option<Recommendation> {
    let on = match c.smt_active {
        Some(a) => a,
        None => c.threads_per_core.is_some_and(|t| t > 1),
    };
    if !on {
        return None;
    }
    Some(
        rec("cpu", "smt")
            .now(format!("on ({} threads per core)", c.threads_per_core.map(|t| t.to_string()).unwrap_or_else(|| "?".into())))
            .want("off in firmware (or nosmt), or keep the siblings of trading cores idle")
            .impact(Impact::Medium)
            .risk(Risk::PotentiallyDisruptive)
            .why("A hyperthread sibling competes for the core's caches and pipeline; a latency-critical thread runs best with its sibling idle or absent."),
    )
}

/// Cores whose SMT siblings are split between isolated and housekeeping CPUs.
pub fn split_siblings(c: &Cpu, isolated: &CpuList) -> Option<Recommendation> {
    if isolated.is_empty() {
        return None;
    }
    let split: Vec<String> = c
        .thread_siblings
        .iter()
        .map(|s| s.intersection(&c.online))
        .filter(|s| s.len() > 1 && !s.is_disjoint(isolated) && !s.is_subset(isolated))
        .map(|s| s.to_string())
        .collect();
    if split.is_empty() {
        return None;
    }
    Some(
        rec("cpu", "isolated_siblings")
            .now(format!("sibling threads split between isolated and housekeeping CPUs: {}", split.join(" ")))
            .want("isolate or keep whole cores (both siblings)")
            .sev(Severity::Warning)
            .impact(Impact::Medium)
            .risk(Risk::PotentiallyDisruptive)
            .why("An isolated CPU whose SMT sibling runs housekeeping work shares its core with interrupts and kernel threads, which defeats the isolation."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::cpu::IdleState;

    fn list(s: &str) -> CpuList {
        CpuList::parse(s).unwrap()
    }

    #[test]
    fn governor_is_compared_as_a_set() {
        let mut c = Cpu::default();
        assert!(governor(&c).is_none(), "unknown governors: no advice");
        c.governors.insert("performance".into(), list("0-7"));
        assert!(governor(&c).is_none());
        c.governors.insert("powersave".into(), list("8"));
        let r = governor(&c).unwrap();
        assert_eq!(r.current, "performance (0-7), powersave (8)");
        assert_eq!(r.target, "performance");
        assert_eq!(r.severity, Severity::Warning);
    }

    #[test]
    fn epp_other_than_performance_is_flagged() {
        let mut c = Cpu::default();
        c.epp.insert("performance".into(), list("0-3"));
        assert!(epp(&c).is_none());
        c.epp.insert("balance_power".into(), list("4"));
        assert!(epp(&c).is_some());
    }

    #[test]
    fn turbo_only_when_known_on() {
        let mut c = Cpu::default();
        assert!(turbo(&c).is_none());
        c.turbo = Some(false);
        assert!(turbo(&c).is_none());
        c.turbo = Some(true);
        assert_eq!(turbo(&c).unwrap().current, "on");
    }

    fn state(name: &str, latency: u64, disabled: &str) -> IdleState {
        IdleState {
            state: name.into(),
            name: Some(name.into()),
            latency_us: Some(latency),
            disabled_cpus: list(disabled),
            ..Default::default()
        }
    }

    #[test]
    fn cstates_deeper_than_the_threshold_are_flagged_unless_disabled_everywhere() {
        let mut c = Cpu { online: list("0-3"), ..Default::default() };
        c.cpuidle.states = vec![state("POLL", 0, ""), state("C1", DEEP_CSTATE_LATENCY_US, "")];
        assert!(cstates(&c).is_none(), "latency at the threshold is not deep");
        c.cpuidle.states.push(state("C1E", DEEP_CSTATE_LATENCY_US + 1, "0-3"));
        assert!(cstates(&c).is_none(), "disabled on every online CPU");
        c.cpuidle.states.push(state("C6", 133, "0-2"));
        let r = cstates(&c).unwrap();
        assert_eq!(r.current, "enabled: C6 (133 us)");
    }

    #[test]
    fn smt_from_the_control_file_or_the_topology() {
        let mut c = Cpu { threads_per_core: Some(2), ..Default::default() };
        assert!(smt(&c).is_some());
        c.smt_active = Some(false);
        assert!(smt(&c).is_none(), "smt/active wins over the topology count");
        let c = Cpu { threads_per_core: Some(1), ..Default::default() };
        assert!(smt(&c).is_none());
    }

    #[test]
    fn split_siblings_names_the_cores_and_says_sibling() {
        let c = Cpu {
            online: list("0-7"),
            thread_siblings: vec![list("0,4"), list("1,5"), list("2,6"), list("3,7")],
            ..Default::default()
        };
        assert!(split_siblings(&c, &CpuList::new()).is_none());
        assert!(split_siblings(&c, &list("1-3,5-7")).is_none(), "whole cores");
        let r = split_siblings(&c, &list("1-3")).unwrap();
        assert!(r.current.contains("sibling"), "{}", r.current);
        assert!(r.current.ends_with("1,5 2,6 3,7"), "{}", r.current);
        // An offline sibling does not split its core.
        let c2 = Cpu { online: list("0-3"), ..c };
        assert!(split_siblings(&c2, &list("1-3")).is_none());
    }
}
