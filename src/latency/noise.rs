//! What else happened on the host while cyclictest measured (issue 19 item 8): the
//! interrupts that landed on each measured CPU (from `/proc/interrupts` read before and after
//! the run), the NIC drop counters that moved (`/sys/class/net/<if>/statistics`), and the
//! clock's offset from its time source where chrony (`chronyc -c tracking`) or ptp4l (`pmc`'s
//! `TIME_STATUS_NP`) answers, read before and after the run.
//!
//! A quiet isolated CPU takes no device interrupt during a run: a count there names the IRQ
//! that still reaches it. Per-CPU sources (`LOC`, `RES`, `CAL`, ...) are counted apart: the
//! measurement's own timer wakes the CPU it measures, so local timer interrupts are expected.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CpuRoles, Role, run_bounded};
use crate::cpulist::CpuList;
use crate::facts::irq::{Interrupts, parse_interrupts};
use crate::host::Host;

/// At most this many sources are named per CPU (the largest counts).
pub const TOP_SOURCES: usize = 8;
/// The drop and error counters of `/sys/class/net/<if>/statistics` that mean lost packets.
pub const DROP_COUNTERS: &[&str] =
    &["rx_dropped", "rx_missed_errors", "rx_fifo_errors", "rx_over_errors", "tx_dropped", "tx_fifo_errors"];
/// How long chronyc or pmc may take to answer.
const ASK_LIMIT: Duration = Duration::from_secs(5);
/// What their answer may hold.
const ASK_MAX_BYTES: u64 = 64 * 1024;

/// The counters read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub interrupts: Option<Interrupts>,
    /// (interface, counter) → value.
    pub nic: BTreeMap<(String, String), u64>,
    /// Why a part could not be read.
    pub unreadable: Vec<String>,
}

/// One source of interrupts on a CPU and how many it raised during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCount {
    /// `24` (an IRQ number) or `LOC` (a per-CPU source), as `/proc/interrupts` names it.
    pub source: String,
    /// The IRQ's handlers (`mlx5_comp0@pci:0000:3b:00.0`) or the per-CPU source's description.
    pub name: String,
    pub count: u64,
}

/// The interrupts one measured CPU took during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuInterrupts {
    pub cpu: u32,
    pub role: Role,
    /// Numbered IRQs (devices): none on a quiet isolated CPU.
    pub device: u64,
    /// Per-CPU sources (`LOC`, `RES`, `CAL`, `TLB`, ...).
    pub per_cpu: u64,
    /// The largest sources, at most `TOP_SOURCES`, largest first.
    pub top: Vec<SourceCount>,
}

/// A NIC counter that moved during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicDrop {
    pub interface: String,
    pub counter: String,
    pub count: u64,
}

/// The clock's offset from its time source, as a daemon reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeOffset {
    /// `chrony` or `ptp4l`.
    pub source: String,
    /// `before` or `after` the run.
    pub when: String,
    /// chrony: its last measured offset of the system clock; ptp4l: `master_offset` (the
    /// port's clock against the grandmaster), in nanoseconds.
    pub offset_ns: i64,
    /// chrony: the RMS of its recent offsets; null for ptp4l.
    pub rms_offset_ns: Option<i64>,
    /// chrony: the reference it follows (`PHC0`, an address); ptp4l: `gmIdentity`.
    pub reference: Option<String>,
}

/// What else happened during the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    /// One entry per measured CPU, ascending.
    pub interrupts: Vec<CpuInterrupts>,
    /// Counters that moved, by interface and counter.
    pub nic_drops: Vec<NicDrop>,
    /// Offsets read before and after the run; empty where neither daemon answers.
    pub time_offsets: Vec<TimeOffset>,
    /// What could not be read, with why.
    pub unavailable: Vec<String>,
}

/// Reads the counters now.
pub fn sample(host: &Host) -> Sample {
    let mut s = Sample::default();
    match host.read("/proc/interrupts") {
        Ok(text) => match parse_interrupts(&text) {
            Ok(i) => s.interrupts = Some(i),
            Err(e) => s.unreadable.push(format!("/proc/interrupts: {e}")),
        },
        Err(e) => s.unreadable.push(format!("/proc/interrupts: {e}")),
    }
    for ifname in host.list_or_empty("/sys/class/net") {
        if ifname == "lo" {
            continue;
        }
        for counter in DROP_COUNTERS {
            let path = format!("/sys/class/net/{ifname}/statistics/{counter}");
            if let Ok(Some(v)) = host.read_opt(&path) {
                if let Ok(n) = v.trim().parse::<u64>() {
                    s.nic.insert((ifname.clone(), (*counter).to_string()), n);
                }
            }
        }
    }
    s
}

/// What moved between two samples, for the CPUs measured.
pub fn between(before: &Sample, after: &Sample, measured: &CpuList, roles: &CpuRoles) -> Noise {
    let mut noise = Noise::default();
    noise.unavailable.extend(before.unreadable.iter().map(|u| format!("before the run: {u}")));
    noise.unavailable.extend(after.unreadable.iter().map(|u| format!("after the run: {u}")));
    if let (Some(b), Some(a)) = (&before.interrupts, &after.interrupts) {
        noise.interrupts = interrupt_deltas(b, a, measured, roles);
    }
    for (key, &now) in &after.nic {
        // A counter that went down was reset (a driver reload): what it holds now is what
        // it counted since.
        let moved = match before.nic.get(key) {
            Some(&was) if now >= was => now - was,
            Some(_) => now,
            None => continue,
        };
        if moved > 0 {
            noise.nic_drops.push(NicDrop { interface: key.0.clone(), counter: key.1.clone(), count: moved });
        }
    }
    noise
}

/// Rows are matched by their name (`24`, `LOC`) and CPUs by their column's CPU number: a row
/// or CPU present in one reading only (an IRQ freed, a CPU taken offline) counts from zero.
fn interrupt_deltas(
    before: &Interrupts,
    after: &Interrupts,
    measured: &CpuList,
    roles: &CpuRoles,
) -> Vec<CpuInterrupts> {
    let col = |i: &Interrupts, cpu: u32| i.cpus.iter().position(|&c| c == cpu);
    let before_rows: BTreeMap<&str, &crate::facts::irq::InterruptRow> =
        before.rows.iter().map(|r| (r.name.as_str(), r)).collect();
    let mut out = Vec::new();
    for cpu in measured.iter() {
        let (Some(ca), cb) = (col(after, cpu), col(before, cpu)) else { continue };
        let mut entry = CpuInterrupts { cpu, role: roles.role(cpu), device: 0, per_cpu: 0, top: Vec::new() };
        for row in &after.rows {
            // ERR and MIS hold one total for the host, not a count per CPU.
            if row.counts.len() != after.cpus.len() {
                continue;
            }
            let now = row.counts[ca];
            let was = before_rows
                .get(row.name.as_str())
                .filter(|r| r.counts.len() == before.cpus.len())
                .and_then(|r| cb.map(|c| r.counts[c]))
                .unwrap_or(0);
            let moved = if now >= was { now - was } else { now };
            if moved == 0 {
                continue;
            }
            if row.irq.is_some() {
                entry.device += moved;
            } else {
                entry.per_cpu += moved;
            }
            let name = if row.actions.is_empty() {
                row.description.clone().unwrap_or_default()
            } else {
                row.actions.join(", ")
            };
            entry.top.push(SourceCount { source: row.name.clone(), name, count: moved });
        }
        crate::sort::sort_by(&mut entry.top, |a, b| b.count.cmp(&a.count).then_with(|| a.source.cmp(&b.source)));
        entry.top.truncate(TOP_SOURCES);
        out.push(entry);
    }
    out
}

/// `chronyc -c tracking`: one CSV line of 14 fields (reference id, reference name, stratum,
/// reference time, system time, last offset, RMS offset, frequency, residual frequency, skew,
/// root delay, root dispersion, update interval, leap status); offsets in seconds.
pub fn parse_chronyc_tracking(text: &str) -> Result<(i64, i64, String), String> {
    let line = text.lines().find(|l| !l.trim().is_empty()).ok_or("no output")?;
    let f: Vec<&str> = line.trim().split(',').collect();
    if f.len() != 14 {
        return Err(format!("{} fields, expected 14", f.len()));
    }
    let ns = |i: usize, what: &str| -> Result<i64, String> {
        let s: f64 = f[i].trim().parse().map_err(|_| format!("{what} {:?} is not a number", f[i]))?;
        if !s.is_finite() || s.abs() > 1e9 {
            return Err(format!("{what} {:?} is out of range", f[i]));
        }
        Ok((s * 1e9).round() as i64)
    };
    Ok((ns(5, "last offset")?, ns(6, "RMS offset")?, f[1].trim().to_string()))
}

/// `pmc -u -b 0 'GET TIME_STATUS_NP'`: the response's `master_offset` (ns) and `gmIdentity`.
pub fn parse_pmc_time_status(text: &str) -> Result<(i64, Option<String>), String> {
    if !text.contains("TIME_STATUS_NP") || !text.contains("RESPONSE") {
        return Err("no TIME_STATUS_NP response".into());
    }
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(name)).then(|| w.next().unwrap_or_default().to_string())
        })
    };
    let offset = field("master_offset").ok_or("no master_offset")?;
    let offset: i64 = offset.parse().map_err(|_| format!("master_offset {offset:?} is not a whole number"))?;
    Ok((offset, field("gmIdentity")))
}

/// Asks chrony and ptp4l for their offsets (a live host only); a daemon that is not there or
/// does not answer is skipped, one that answers something unreadable is named in `unavailable`.
pub fn time_offsets(when: &str, unavailable: &mut Vec<String>) -> Vec<TimeOffset> {
    let mut out = Vec::new();
    let ask = |prog: &str, args: &[&str]| -> Option<String> {
        let r = run_bounded(Command::new(prog).args(args), ASK_LIMIT, ASK_MAX_BYTES).ok()?;
        (r.status.is_some_and(|s| s.success()) && !r.timed_out && !r.truncated)
            .then(|| String::from_utf8_lossy(&r.stdout).into_owned())
    };
    if let Some(text) = ask("chronyc", &["-c", "-n", "tracking"]) {
        match parse_chronyc_tracking(&text) {
            Ok((offset_ns, rms, reference)) => out.push(TimeOffset {
                source: "chrony".into(),
                when: when.into(),
                offset_ns,
                rms_offset_ns: Some(rms),
                reference: Some(reference),
            }),
            Err(e) => unavailable.push(format!("chronyc -c tracking {when} the run: {e}")),
        }
    }
    if let Some(text) = ask("pmc", &["-u", "-b", "0", "GET TIME_STATUS_NP"]) {
        // pmc answers even when no ptp4l runs (nothing comes back): not a reading.
        if let Ok((offset_ns, gm)) = parse_pmc_time_status(&text) {
            out.push(TimeOffset {
                source: "ptp4l".into(),
                when: when.into(),
                offset_ns,
                rms_offset_ns: None,
                reference: gm,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> CpuRoles {
        CpuRoles { online: CpuList::parse("0-3").unwrap(), isolated: CpuList::parse("2-3").unwrap() }
    }

    const BEFORE: &str = "           CPU0       CPU1       CPU2       CPU3\n  \
        24:         10          0          5          0  IR-PCI-MSI 1-edge      mlx5_comp0@pci:0000:3b:00.0\n  \
        25:          0          0          0          7  IR-PCI-MSI 2-edge      i40e-ens7f0-TxRx-0\n\
        LOC:        100        100        100        100   Local timer interrupts\n\
        ERR:          3\n";

    #[test]
    fn interrupts_that_moved_are_counted_per_measured_cpu_devices_apart_from_per_cpu_sources() {
        let before = Sample { interrupts: Some(parse_interrupts(BEFORE).unwrap()), ..Sample::default() };
        let after_text = BEFORE
            .replace("          5          0  IR-PCI-MSI 1-edge", "         45          0  IR-PCI-MSI 1-edge")
            .replace("100        100        100        100", "100        100        130        160")
            .replace("ERR:          3", "ERR:          9");
        let after = Sample { interrupts: Some(parse_interrupts(&after_text).unwrap()), ..Sample::default() };
        let n = between(&before, &after, &CpuList::parse("1-3").unwrap(), &roles());
        assert_eq!(n.interrupts.len(), 3);
        assert_eq!((n.interrupts[0].cpu, n.interrupts[0].device, n.interrupts[0].per_cpu), (1, 0, 0));
        let c2 = &n.interrupts[1];
        assert_eq!((c2.cpu, c2.role, c2.device, c2.per_cpu), (2, Role::Isolated, 40, 30));
        assert_eq!(
            c2.top[0],
            SourceCount { source: "24".into(), name: "mlx5_comp0@pci:0000:3b:00.0".into(), count: 40 }
        );
        assert_eq!(c2.top[1].source, "LOC");
        assert_eq!(c2.top[1].name, "Local timer interrupts");
        // IRQ 25 did not move on CPU 3: only its local timer did.
        assert_eq!((n.interrupts[2].device, n.interrupts[2].per_cpu, n.interrupts[2].top.len()), (0, 60, 1));
    }

    #[test]
    fn a_counter_that_went_down_was_reset_and_counts_from_zero() {
        let key = ("ens1".to_string(), "rx_dropped".to_string());
        let other = ("ens1".to_string(), "tx_dropped".to_string());
        let before = Sample { nic: BTreeMap::from([(key.clone(), 1000), (other.clone(), 4)]), ..Sample::default() };
        let after = Sample { nic: BTreeMap::from([(key, 12), (other, 4)]), ..Sample::default() };
        let n = between(&before, &after, &CpuList::default(), &roles());
        assert_eq!(n.nic_drops, [NicDrop { interface: "ens1".into(), counter: "rx_dropped".into(), count: 12 }]);
    }

    #[test]
    fn chronyc_tracking_csv_gives_the_last_and_rms_offsets_in_nanoseconds() {
        let line = "50484330,PHC0,1,1733560000.123456789,-0.000000012,-0.000000034,0.000000056,-1.234,-0.001,0.010,0.000000001,0.000002000,16.0,Normal\n";
        assert_eq!(parse_chronyc_tracking(line).unwrap(), (-34, 56, "PHC0".to_string()));
        assert!(parse_chronyc_tracking("1,2,3\n").unwrap_err().contains("3 fields"));
        let bad = line.replace("-0.000000034", "nan");
        assert!(parse_chronyc_tracking(&bad).unwrap_err().contains("last offset"));
        let huge = line.replace("-0.000000034", "1e300");
        assert!(parse_chronyc_tracking(&huge).unwrap_err().contains("out of range"));
        assert!(parse_chronyc_tracking("").is_err());
    }

    #[test]
    fn pmc_time_status_gives_the_master_offset() {
        let text = "sending: GET TIME_STATUS_NP\n\t507c6f.fffe.0d1c5e-0 seq 0 RESPONSE MANAGEMENT TIME_STATUS_NP \n\t\t\
            master_offset              -17\n\t\tingress_time               1733560000123456789\n\t\t\
            gmPresent                  true\n\t\tgmIdentity                 ec4670.fffe.0a9b3c\n";
        assert_eq!(parse_pmc_time_status(text).unwrap(), (-17, Some("ec4670.fffe.0a9b3c".to_string())));
        assert!(parse_pmc_time_status("sending: GET TIME_STATUS_NP\n").is_err());
        let bad = text.replace("-17", "x");
        assert!(parse_pmc_time_status(&bad).unwrap_err().contains("master_offset"));
    }

    #[test]
    fn a_tree_sample_reads_its_interrupts_and_nic_counters() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("proc")).unwrap();
        std::fs::write(r.join("proc/interrupts"), BEFORE).unwrap();
        std::fs::create_dir_all(r.join("sys/class/net/ens1/statistics")).unwrap();
        std::fs::write(r.join("sys/class/net/ens1/statistics/rx_dropped"), "7\n").unwrap();
        std::fs::create_dir_all(r.join("sys/class/net/lo/statistics")).unwrap();
        std::fs::write(r.join("sys/class/net/lo/statistics/rx_dropped"), "1\n").unwrap();
        let host = Host::new(r).unwrap();
        let s = sample(&host);
        assert_eq!(s.interrupts.as_ref().map(|i| i.rows.len()), Some(4));
        assert_eq!(s.nic, BTreeMap::from([(("ens1".to_string(), "rx_dropped".to_string()), 7)]));
        assert!(s.unreadable.is_empty(), "{:?}", s.unreadable);
    }
}
