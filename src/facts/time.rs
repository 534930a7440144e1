//! Timekeeping: the clocksource (/sys/devices/system/clocksource/clocksource0/), the TSC
//! flags of /proc/cpuinfo that make `tsc` a safe clocksource, and the PTP hardware clocks
//! (/sys/class/ptp). The daemons that discipline the clock are in `services`.
//!
//! The surprising part: `available_clocksource` is one line of space-separated names with a
//! trailing space; the kernel falls back from `tsc` to `hpet` at run time when it finds the
//! TSC unstable, so the current clocksource can differ from the boot choice.

use serde::{Deserialize, Serialize};

use super::Scan;

/// TSC flags of the first CPU in /proc/cpuinfo (x86 only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TscFlags {
    pub tsc: bool,
    /// Ticks at a constant rate across P-states.
    pub constant_tsc: bool,
    /// Keeps ticking in deep C-states.
    pub nonstop_tsc: bool,
    /// The kernel skips the TSC stability watchdog (set by hypervisors, or `tsc=reliable`).
    pub tsc_reliable: bool,
    /// The TSC frequency comes from CPUID, not calibration.
    pub tsc_known_freq: bool,
    pub rdtscp: bool,
}

/// A PTP hardware clock (`/sys/class/ptp/ptpN`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtpClock {
    /// `ptp0`: the device `/dev/ptp0`.
    pub name: String,
    /// `clock_name`: the driver's name for it (`mlx5_ptp`, or a netdev's PCI address).
    pub clock_name: Option<String>,
}

/// Timekeeping: `time` in the facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Time {
    /// `current_clocksource`: `tsc`, `hpet`, `kvm-clock`, `arch_sys_counter`...
    pub current_clocksource: Option<String>,
    /// `available_clocksource`, in the kernel's order; empty when the file is absent.
    pub available_clocksource: Vec<String>,
    /// Null when /proc/cpuinfo has no `flags` line (not x86, or absent).
    pub tsc: Option<TscFlags>,
    pub ptp_clocks: Vec<PtpClock>,
}

/// The TSC flags of the first `flags` line of /proc/cpuinfo; `None` without one.
pub fn parse_tsc_flags(cpuinfo: &str) -> Option<TscFlags> {
    let line = cpuinfo.lines().find(|l| l.split(':').next().is_some_and(|k| k.trim() == "flags"))?;
    let flags: Vec<&str> = line.split_once(':').map(|(_, v)| v.split_whitespace().collect()).unwrap_or_default();
    let has = |f: &str| flags.contains(&f);
    Some(TscFlags {
        tsc: has("tsc"),
        constant_tsc: has("constant_tsc"),
        nonstop_tsc: has("nonstop_tsc"),
        tsc_reliable: has("tsc_reliable"),
        tsc_known_freq: has("tsc_known_freq"),
        rdtscp: has("rdtscp"),
    })
}

/// Reads the clocksource, TSC flags and PTP clocks.
pub fn read(scan: &mut Scan) -> Time {
    const CS: &str = "/sys/devices/system/clocksource/clocksource0";
    let current_clocksource = scan.host.attr(&format!("{CS}/current_clocksource")).filter(|s| !s.is_empty());
    let available_clocksource = scan
        .host
        .attr(&format!("{CS}/available_clocksource"))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let tsc = scan.cpuinfo().ok().flatten().and_then(|t| parse_tsc_flags(&t));
    let mut ptp_clocks: Vec<PtpClock> = scan
        .host
        .list_or_empty("/sys/class/ptp")
        .into_iter()
        .filter(|n| n.starts_with("ptp"))
        .map(|name| {
            let clock_name = scan.host.attr(&format!("/sys/class/ptp/{name}/clock_name"));
            PtpClock { name, clock_name }
        })
        .collect();
    // ptp10 after ptp9.
    crate::sort::sort_by(&mut ptp_clocks, |a, b| (a.name.len(), &a.name).cmp(&(b.name.len(), &b.name)));
    Time { current_clocksource, available_clocksource, tsc, ptp_clocks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ScanOptions;
    use crate::host::Host;
    use std::fs;

    #[test]
    fn tsc_flags_of_the_first_cpu() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu tsc msr rdtscp constant_tsc nonstop_tsc tsc_known_freq\n\n\
                       processor\t: 1\nflags\t\t: fpu\n";
        let f = parse_tsc_flags(cpuinfo).unwrap();
        assert!(f.tsc && f.constant_tsc && f.nonstop_tsc && f.tsc_known_freq && f.rdtscp);
        assert!(!f.tsc_reliable);
        // arm64 writes `Features`, not `flags`.
        assert_eq!(parse_tsc_flags("processor\t: 0\nFeatures\t: fp asimd evtstrm\n"), None);
        // A word containing "flags" is not the flags line.
        assert_eq!(parse_tsc_flags("vmx flags\t: vnmi\n"), None);
    }

    #[test]
    fn clocksource_and_ptp_clocks() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let cs = r.join("sys/devices/system/clocksource/clocksource0");
        fs::create_dir_all(&cs).unwrap();
        fs::write(cs.join("current_clocksource"), "tsc\n").unwrap();
        fs::write(cs.join("available_clocksource"), "tsc hpet acpi_pm \n").unwrap();
        for (n, name) in [("ptp10", "ice-0000:3b:00.0-clk"), ("ptp9", "mlx5_ptp")] {
            fs::create_dir_all(r.join("sys/class/ptp").join(n)).unwrap();
            fs::write(r.join("sys/class/ptp").join(n).join("clock_name"), format!("{name}\n")).unwrap();
        }
        let host = Host::new(r).unwrap();
        let mut scan = Scan::new(&host, ScanOptions::default());
        let t = read(&mut scan);
        assert_eq!(t.current_clocksource.as_deref(), Some("tsc"));
        assert_eq!(t.available_clocksource, vec!["tsc", "hpet", "acpi_pm"]);
        assert_eq!(t.tsc, None);
        let names: Vec<&str> = t.ptp_clocks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["ptp9", "ptp10"]);
        assert_eq!(t.ptp_clocks[0].clock_name.as_deref(), Some("mlx5_ptp"));
    }
}
