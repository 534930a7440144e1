//! CPUs: topology, isolation, frequency scaling, idle states. Sources:
//! `/sys/devices/system/cpu/` (Documentation/ABI/stable/sysfs-devices-system-cpu,
//! Documentation/admin-guide/cputopology.rst, admin-guide/pm/cpuidle.rst, cpufreq.rst)
//! and `/proc/cpuinfo` for vendor and model.
//!
//! The surprising parts: cores are counted as distinct `thread_siblings` sets per package,
//! never as distinct `core_id` values (core ids repeat across dies and are sparse on AMD);
//! `online` may be missing (older captures), then CPUs are the `cpuN` folders minus
//! `offline`; `isolated` and `nohz_full` write an empty set as "", "\0\n" or "(null)".

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Scan;
use crate::cpulist::{CpuList, CpuListError};
use crate::host::{Host, HostError};

/// Where the kernel describes its CPUs.
pub const CPU_DIR: &str = "/sys/devices/system/cpu";
const CPU: &str = CPU_DIR;

/// `cpu` facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Cpu {
    /// `vendor_id` of /proc/cpuinfo (`GenuineIntel`, `AuthenticAMD`), or the ARM implementer.
    pub vendor: Option<String>,
    /// `model name` of /proc/cpuinfo.
    pub model_name: Option<String>,
    pub family: Option<u32>,
    pub model: Option<u32>,
    pub stepping: Option<u32>,
    /// Number of distinct `physical_package_id` among online CPUs.
    pub sockets: Option<u32>,
    /// Distinct thread-sibling sets per package (the largest package).
    pub cores_per_socket: Option<u32>,
    /// Largest thread-sibling set among online CPUs.
    pub threads_per_core: Option<u32>,
    /// Number of online CPUs.
    pub count: u32,
    pub online: CpuList,
    pub offline: CpuList,
    pub possible: Option<CpuList>,
    pub present: Option<CpuList>,
    /// One cpulist per core (its SMT siblings), ordered by first CPU.
    pub thread_siblings: Vec<CpuList>,
    /// `smt/control`: on, off, forceoff, notsupported, notimplemented.
    pub smt_control: Option<String>,
    /// `smt/active`: true when sibling threads are running.
    pub smt_active: Option<bool>,
    /// Runtime `isolated` (from `isolcpus=`): "" when none; null when the file is absent
    /// (kernels before 4.2, or a capture without it): unknown, not none.
    pub isolated: Option<CpuList>,
    /// Runtime `nohz_full`: "" when none; null when the file is absent (a kernel without
    /// CONFIG_NO_HZ_FULL, or a capture without it).
    pub nohz_full: Option<CpuList>,
    /// `{governor: cpulist}` over online CPUs that have cpufreq.
    pub governors: BTreeMap<String, CpuList>,
    /// `scaling_driver` (intel_pstate, amd-pstate, acpi-cpufreq, ...).
    pub scaling_driver: Option<String>,
    /// `{energy_performance_preference: cpulist}`.
    pub epp: BTreeMap<String, CpuList>,
    /// `intel_pstate/status`: active, passive, off.
    pub intel_pstate_status: Option<String>,
    /// Turbo/boost enabled (`intel_pstate/no_turbo` = 0, or `cpufreq/boost` = 1).
    pub turbo: Option<bool>,
    /// Where `turbo` was read.
    pub turbo_source: Option<String>,
    /// `cpuinfo_max_freq` / `scaling_min_freq` / `scaling_max_freq` of the first CPU, kHz.
    pub cpuinfo_max_freq_khz: Option<u64>,
    pub scaling_min_freq_khz: Option<u64>,
    pub scaling_max_freq_khz: Option<u64>,
    pub cpuidle: CpuIdle,
    /// `vulnerabilities/<name>`: the kernel's mitigation status text.
    pub vulnerabilities: BTreeMap<String, String>,
    /// Selected /proc/cpuinfo flags that matter for latency (tsc, pstate, idle).
    pub flags: Vec<String>,
}

/// `cpuidle`: the driver and its states.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuIdle {
    /// `cpuidle/current_driver` (intel_idle, acpi_idle, haltpoll, none).
    pub driver: Option<String>,
    /// `cpuidle/current_governor` (or `_ro`).
    pub governor: Option<String>,
    pub states: Vec<IdleState>,
}

/// One idle state, as seen on the online CPUs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdleState {
    /// `stateN`.
    pub state: String,
    pub name: Option<String>,
    pub desc: Option<String>,
    /// Exit latency, µs.
    pub latency_us: Option<u64>,
    /// Target residency, µs.
    pub residency_us: Option<u64>,
    /// CPUs on which this state is disabled (`disable` = 1).
    pub disabled_cpus: CpuList,
}

/// Flags of /proc/cpuinfo worth reporting.
const FLAGS: &[&str] = &[
    "tsc",
    "constant_tsc",
    "nonstop_tsc",
    "tsc_reliable",
    "tsc_known_freq",
    "rdtscp",
    "invariant_tsc",
    "hypervisor",
    "ht",
    "pdpe1gb",
    "pse",
    "mwait",
    "monitor",
    "waitpkg",
    "cpb",
    "ida",
    "hwp",
    "hwp_epp",
];

/// The fields of the first processor block of /proc/cpuinfo that identify the CPU.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuInfo {
    pub vendor: Option<String>,
    pub model_name: Option<String>,
    pub family: Option<u32>,
    pub model: Option<u32>,
    pub stepping: Option<u32>,
    pub flags: Vec<String>,
    /// (processor, physical id, core id) per block, for hosts without sysfs topology.
    pub topology: Vec<(u32, Option<u32>, Option<u32>)>,
}

/// Parses /proc/cpuinfo (x86 `key\t: value` blocks; arm64 `CPU implementer`).
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    let mut cur: (Option<u32>, Option<u32>, Option<u32>) = (None, None, None);
    let mut first_block = true;
    let flush = |cur: &mut (Option<u32>, Option<u32>, Option<u32>), info: &mut CpuInfo| {
        if let Some(p) = cur.0 {
            info.topology.push((p, cur.1, cur.2));
        }
        *cur = (None, None, None);
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            if cur.0.is_some() {
                first_block = false;
            }
            flush(&mut cur, &mut info);
            continue;
        }
        let Some((k, v)) = line.split_once(':') else { continue };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => cur.0 = v.parse().ok(),
            "physical id" => cur.1 = v.parse().ok(),
            "core id" => cur.2 = v.parse().ok(),
            _ => {}
        }
        if !first_block {
            continue;
        }
        match k {
            "vendor_id" => info.vendor = Some(v.to_string()),
            "CPU implementer" if info.vendor.is_none() => info.vendor = Some(arm_implementer(v)),
            "model name" => info.model_name = Some(v.to_string()),
            "cpu family" => info.family = v.parse().ok(),
            "model" => info.model = v.parse().ok(),
            "stepping" => info.stepping = v.parse().ok(),
            "flags" | "Features" => {
                let have: BTreeSet<&str> = v.split_whitespace().collect();
                info.flags = FLAGS.iter().filter(|f| have.contains(**f)).map(|f| f.to_string()).collect();
            }
            _ => {}
        }
    }
    flush(&mut cur, &mut info);
    info
}

fn arm_implementer(code: &str) -> String {
    match code.to_ascii_lowercase().as_str() {
        "0x41" => "ARM".into(),
        "0x42" => "Broadcom".into(),
        "0x43" => "Cavium".into(),
        "0x48" => "HiSilicon".into(),
        "0x4e" => "NVIDIA".into(),
        "0x50" => "APM".into(),
        "0x51" => "Qualcomm".into(),
        "0x61" => "Apple".into(),
        "0xc0" => "Ampere".into(),
        other => format!("implementer {other}"),
    }
}

/// Why one of the kernel's CPU lists was not read.
#[derive(Debug, thiserror::Error)]
pub enum CpuListFileError {
    #[error(transparent)]
    Unreadable(#[from] HostError),
    #[error("{path}: {err}")]
    Malformed { path: String, err: CpuListError },
}

/// One of the kernel's CPU lists in `CPU_DIR` (`online`, `possible`, `present`, `offline`,
/// `isolated`, `nohz_full`): the one reader of them, for the scan and the modules alike.
/// `Ok(None)` when the kernel has no such file.
pub fn read_cpu_list(host: &Host, name: &str) -> Result<Option<CpuList>, CpuListFileError> {
    let path = format!("{CPU_DIR}/{name}");
    let Some(text) = host.read_opt(&path)? else { return Ok(None) };
    CpuList::parse(&text).map(Some).map_err(|err| CpuListFileError::Malformed { path, err })
}

/// The online CPUs as the `cpuN` folders show them, where `online` is missing (captures,
/// old kernels): every folder not in `offline` and whose `cpuN/online` is not 0.
pub fn online_by_folders(host: &Host, offline: &CpuList) -> CpuList {
    host.list_or_empty(CPU_DIR)
        .iter()
        .filter_map(|n| n.strip_prefix("cpu").and_then(|d| d.parse::<u32>().ok()))
        .filter(|c| !offline.contains(*c) && host.attr(&format!("{CPU_DIR}/cpu{c}/online")).as_deref() != Some("0"))
        .collect()
}

/// Reads a CPU list of `CPU_DIR`; `None` when absent or unreadable, a warning when malformed.
fn read_list(scan: &mut Scan, name: &str) -> Option<CpuList> {
    match read_cpu_list(scan.host, name) {
        Ok(l) => l,
        Err(CpuListFileError::Unreadable(_)) => None,
        Err(e) => {
            scan.warn(e.to_string());
            None
        }
    }
}

/// Online CPUs: the `online` file, else `online_by_folders` minus the `offline` list.
fn online_cpus(scan: &mut Scan) -> CpuList {
    if let Some(l) = read_list(scan, "online") {
        return l;
    }
    let offline = read_list(scan, "offline").unwrap_or_default();
    online_by_folders(scan.host, &offline)
}

/// Sibling set of one CPU: `thread_siblings_list`, `core_cpus_list`, or the masks.
fn siblings_of(scan: &mut Scan, cpu: u32) -> Option<CpuList> {
    first_cpu_set(scan, cpu, ["thread_siblings_list", "core_cpus_list", "thread_siblings", "core_cpus"])
}

/// Package sibling set of one CPU (`core_siblings_list`, `package_cpus_list`, or the masks):
/// older kernels (and some captures) have these without `physical_package_id`.
fn package_set_of(scan: &mut Scan, cpu: u32) -> Option<CpuList> {
    first_cpu_set(scan, cpu, ["core_siblings_list", "package_cpus_list", "core_siblings", "package_cpus"])
}

/// The first non-empty CPU set among a CPU's topology files, in order: `*_list` files hold a
/// CPU list, the others a hex mask. A file that does not parse is a warning and is skipped.
fn first_cpu_set(scan: &mut Scan, cpu: u32, files: [&str; 4]) -> Option<CpuList> {
    let t = format!("{CPU}/cpu{cpu}/topology");
    for file in files {
        let path = format!("{t}/{file}");
        let Some(text) = scan.host.read_opt(&path).ok().flatten() else { continue };
        let parsed = if file.ends_with("_list") { CpuList::parse(&text) } else { CpuList::parse_mask(&text) };
        match parsed {
            Ok(l) if !l.is_empty() => return Some(l),
            Ok(_) => continue,
            Err(e) => scan.warn(format!("{path}: {e}")),
        }
    }
    None
}

/// (CPU, package key, thread siblings) for every online CPU that has them, as lscpu derives
/// them: the package from `physical_package_id`; where some CPU lacks it, from the package
/// sibling sets (`core_siblings`, keyed by their first CPU); else from /proc/cpuinfo
/// `physical id`. Thread siblings from sysfs, else the CPUs /proc/cpuinfo gives the same
/// `physical id` and `core id`. Without online CPUs (no sysfs CPU folders), every processor
/// of /proc/cpuinfo.
fn cpu_topology(scan: &mut Scan, online: &CpuList, info: &CpuInfo) -> Vec<(u32, Option<u32>, CpuList)> {
    let host = scan.host;
    // /proc/cpuinfo: processor -> (physical id, core id), and the processors of each core.
    let mut by_core: BTreeMap<(Option<u32>, Option<u32>), CpuList> = BTreeMap::new();
    let mut of_cpu: BTreeMap<u32, (Option<u32>, Option<u32>)> = BTreeMap::new();
    for (p, pkg, core) in &info.topology {
        by_core.entry((*pkg, *core)).or_default().insert(*p);
        of_cpu.insert(*p, (*pkg, *core));
    }
    let cpuinfo_siblings = |c: u32| {
        let (pkg, core) = of_cpu.get(&c)?;
        // A block without `core id` says nothing about siblings.
        core.and_then(|_| by_core.get(&(*pkg, *core)).cloned())
    };
    if online.is_empty() {
        return info.topology.iter().map(|(p, pkg, core)| (*p, *pkg, by_core[&(*pkg, *core)].clone())).collect();
    }
    let ids: Vec<Option<u32>> = online
        .iter()
        .map(|c| {
            host.attr_parse::<i64>(&format!("{CPU}/cpu{c}/topology/physical_package_id"))
                .filter(|p| *p >= 0)
                .map(|p| p as u32)
        })
        .collect();
    let packages: Vec<Option<u32>> = if ids.iter().all(Option::is_some) {
        ids
    } else {
        let sets: Vec<Option<u32>> = online.iter().map(|c| package_set_of(scan, c).and_then(|s| s.first())).collect();
        let from_cpuinfo: Vec<Option<u32>> = online.iter().map(|c| of_cpu.get(&c).and_then(|(p, _)| *p)).collect();
        if sets.iter().all(Option::is_some) {
            sets
        } else if from_cpuinfo.iter().all(Option::is_some) {
            from_cpuinfo
        } else {
            // Partial knowledge: per CPU whatever there is (ids first).
            ids.iter().zip(sets).map(|(i, s)| i.or(s)).collect()
        }
    };
    let mut out = Vec::new();
    for (c, pkg) in online.iter().zip(packages) {
        if let Some(sibs) = siblings_of(scan, c).or_else(|| cpuinfo_siblings(c)) {
            out.push((c, pkg, sibs.intersection(online)));
        }
    }
    out
}

/// Topology counts from per-CPU (package, sibling set) pairs. Pure.
pub fn count_topology(
    per_cpu: &[(u32, Option<u32>, CpuList)],
) -> (Option<u32>, Option<u32>, Option<u32>, Vec<CpuList>) {
    let mut packages: BTreeMap<u32, BTreeSet<CpuList>> = BTreeMap::new();
    let mut all_sets: BTreeSet<CpuList> = BTreeSet::new();
    let mut threads = 0u32;
    let mut any_pkg = false;
    for (_, pkg, sibs) in per_cpu {
        all_sets.insert(sibs.clone());
        threads = threads.max(sibs.len() as u32);
        if let Some(p) = pkg {
            any_pkg = true;
            packages.entry(*p).or_default().insert(sibs.clone());
        }
    }
    let mut siblings: Vec<CpuList> = all_sets.into_iter().collect();
    crate::sort::sort_by_key(&mut siblings, |s| s.first());
    if per_cpu.is_empty() {
        return (None, None, None, siblings);
    }
    let sockets = any_pkg.then_some(packages.len() as u32);
    let cores = packages.values().map(|s| s.len() as u32).max();
    (sockets, cores, Some(threads), siblings)
}

/// Groups CPUs by a per-CPU value: `{value: cpulist}`.
fn group_by(values: impl IntoIterator<Item = (u32, String)>) -> BTreeMap<String, CpuList> {
    let mut m: BTreeMap<String, CpuList> = BTreeMap::new();
    for (cpu, v) in values {
        m.entry(v).or_default().insert(cpu);
    }
    m
}

/// The C-state number in an idle state's name: `C1E` → 1, `C6` → 6, `C3_ACPI` → 3;
/// `None` for names without one (`POLL`, `WFI`).
pub fn cstate_number(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(['C', 'c'])?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn read_cpuidle(scan: &mut Scan, online: &CpuList) -> CpuIdle {
    let host = scan.host;
    let mut idle = CpuIdle {
        driver: host.attr(&format!("{CPU}/cpuidle/current_driver")),
        governor: host
            .attr(&format!("{CPU}/cpuidle/current_governor"))
            .or_else(|| host.attr(&format!("{CPU}/cpuidle/current_governor_ro"))),
        states: Vec::new(),
    };
    let Some(first) = online.iter().find(|c| host.is_dir(&format!("{CPU}/cpu{c}/cpuidle"))) else {
        return idle;
    };
    let mut names: Vec<String> = host
        .list_or_empty(&format!("{CPU}/cpu{first}/cpuidle"))
        .into_iter()
        .filter(|n| n.starts_with("state"))
        .collect();
    crate::sort::sort_by_key(&mut names, |n| n.trim_start_matches("state").parse::<u32>().unwrap_or(u32::MAX));
    for state in names {
        let base = format!("{CPU}/cpu{first}/cpuidle/{state}");
        let mut s = IdleState {
            state: state.clone(),
            name: host.attr(&format!("{base}/name")),
            desc: host.attr(&format!("{base}/desc")),
            latency_us: host.attr_parse(&format!("{base}/latency")),
            residency_us: host.attr_parse(&format!("{base}/residency")),
            disabled_cpus: CpuList::new(),
        };
        for cpu in online.iter() {
            if host.attr(&format!("{CPU}/cpu{cpu}/cpuidle/{state}/disable")).as_deref() == Some("1") {
                s.disabled_cpus.insert(cpu);
            }
        }
        idle.states.push(s);
    }
    idle
}

pub fn read(scan: &mut Scan) -> Cpu {
    let host = scan.host;
    let info = match scan.cpuinfo() {
        Ok(Some(t)) => parse_cpuinfo(&t),
        Ok(None) => {
            scan.warn("/proc/cpuinfo: missing; CPU vendor and model unknown");
            CpuInfo::default()
        }
        Err(e) => {
            scan.warn(e);
            CpuInfo::default()
        }
    };
    let online = online_cpus(scan);
    let mut cpu = Cpu {
        vendor: info.vendor.clone(),
        model_name: info.model_name.clone(),
        family: info.family,
        model: info.model,
        stepping: info.stepping,
        count: online.len() as u32,
        offline: read_list(scan, "offline").unwrap_or_default(),
        possible: read_list(scan, "possible"),
        present: read_list(scan, "present"),
        smt_control: host.attr(&format!("{CPU}/smt/control")),
        smt_active: host.attr(&format!("{CPU}/smt/active")).map(|v| v == "1"),
        isolated: read_list(scan, "isolated"),
        nohz_full: read_list(scan, "nohz_full"),
        flags: info.flags.clone(),
        ..Cpu::default()
    };

    // Topology: sysfs first, /proc/cpuinfo where sysfs lacks a file (as lscpu does).
    let per_cpu = cpu_topology(scan, &online, &info);
    if per_cpu.is_empty() && !online.is_empty() {
        scan.warn(format!("{CPU}/cpuN/topology: missing; sockets, cores and threads unknown"));
    }
    let (sockets, cores, threads, siblings) = count_topology(&per_cpu);
    (cpu.sockets, cpu.cores_per_socket, cpu.threads_per_core, cpu.thread_siblings) =
        (sockets, cores, threads, siblings);

    // Frequency scaling, per online CPU.
    let mut govs = Vec::new();
    let mut epps = Vec::new();
    for c in online.iter() {
        let base = format!("{CPU}/cpu{c}/cpufreq");
        if let Some(g) = host.attr(&format!("{base}/scaling_governor")) {
            govs.push((c, g));
        }
        if let Some(e) = host.attr(&format!("{base}/energy_performance_preference")) {
            epps.push((c, e));
        }
        if cpu.scaling_driver.is_none() {
            cpu.scaling_driver = host.attr(&format!("{base}/scaling_driver"));
            cpu.cpuinfo_max_freq_khz = host.attr_parse(&format!("{base}/cpuinfo_max_freq"));
            cpu.scaling_min_freq_khz = host.attr_parse(&format!("{base}/scaling_min_freq"));
            cpu.scaling_max_freq_khz = host.attr_parse(&format!("{base}/scaling_max_freq"));
        }
    }
    cpu.governors = group_by(govs);
    cpu.epp = group_by(epps);
    cpu.intel_pstate_status = host.attr(&format!("{CPU}/intel_pstate/status"));
    let no_turbo = format!("{CPU}/intel_pstate/no_turbo");
    let boost = format!("{CPU}/cpufreq/boost");
    if let Some(v) = host.attr(&no_turbo).filter(|_| cpu.intel_pstate_status.as_deref() != Some("off")) {
        cpu.turbo = Some(v == "0");
        cpu.turbo_source = Some(no_turbo);
    } else if let Some(v) = host.attr(&boost) {
        cpu.turbo = Some(v == "1");
        cpu.turbo_source = Some(boost);
    } else if let Some(first) = online.first() {
        // AMD acpi-cpufreq on older kernels: per-CPU "cpb" (core performance boost).
        let cpb = format!("{CPU}/cpu{first}/cpufreq/cpb");
        if let Some(v) = host.attr(&cpb) {
            cpu.turbo = Some(v == "1");
            cpu.turbo_source = Some(cpb);
        }
    }
    cpu.cpuidle = read_cpuidle(scan, &online);
    for name in host.list_or_empty(&format!("{CPU}/vulnerabilities")) {
        if let Some(v) = host.attr(&format!("{CPU}/vulnerabilities/{name}")) {
            cpu.vulnerabilities.insert(name, v);
        }
    }
    cpu.online = online;
    cpu
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> CpuList {
        CpuList::parse(s).unwrap()
    }

    #[test]
    fn cores_are_sibling_sets_per_package_not_core_ids() {
        // Two packages, 2 cores each, SMT 2; core ids repeat across packages.
        let per_cpu = vec![
            (0, Some(0), l("0,4")),
            (4, Some(0), l("0,4")),
            (1, Some(0), l("1,5")),
            (5, Some(0), l("1,5")),
            (2, Some(1), l("2,6")),
            (6, Some(1), l("2,6")),
            (3, Some(1), l("3,7")),
            (7, Some(1), l("3,7")),
        ];
        let (s, c, t, sib) = count_topology(&per_cpu);
        assert_eq!((s, c, t), (Some(2), Some(2), Some(2)));
        assert_eq!(sib.iter().map(|s| s.to_string()).collect::<Vec<_>>(), vec!["0,4", "1,5", "2,6", "3,7"]);
        assert_eq!(count_topology(&[]), (None, None, None, vec![]));
    }

    #[test]
    fn cpuinfo_x86_and_arm() {
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\nstepping\t: 7\nphysical id\t: 0\ncore id\t\t: 0\nflags\t\t: fpu tsc constant_tsc nonstop_tsc ht\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\nphysical id\t: 1\ncore id\t\t: 0\n\n";
        let i = parse_cpuinfo(x86);
        assert_eq!(i.vendor.as_deref(), Some("GenuineIntel"));
        assert_eq!(i.model_name.as_deref(), Some("Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"));
        assert_eq!((i.family, i.model, i.stepping), (Some(6), Some(85), Some(7)));
        assert_eq!(i.flags, vec!["tsc", "constant_tsc", "nonstop_tsc", "ht"]);
        assert_eq!(i.topology, vec![(0, Some(0), Some(0)), (1, Some(1), Some(0))]);
        let arm =
            "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n";
        assert_eq!(parse_cpuinfo(arm).vendor.as_deref(), Some("ARM"));
    }

    #[test]
    fn group_by_value() {
        let g = group_by(vec![(0, "performance".into()), (1, "powersave".into()), (2, "performance".into())]);
        assert_eq!(g["performance"].to_string(), "0,2");
        assert_eq!(g["powersave"].to_string(), "1");
    }
}
