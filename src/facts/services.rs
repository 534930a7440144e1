//! Daemons that move IRQs, retune the host or discipline the clock: irqbalance, tuned,
//! chronyd, ntpd, ptp4l, phc2sys, systemd-timesyncd.
//!
//! `active` comes from the process table (`/proc/<pid>/comm` only: a process's cmdline and
//! environ may hold secrets and are never read); `enabled` and `installed` from systemd's unit
//! directories. The surprising parts: `comm` is cut to 15 bytes (TASK_COMM_LEN), so
//! systemd-timesyncd is `systemd-timesyn`; linuxptp daemons usually run as template
//! instances (`ptp4l@eth0.service`); Debian names chrony's unit `chrony.service` (with a
//! `chronyd.service` alias) and ntp's `ntp.service`. A captured tree without `/proc/<pid>`
//! says nothing about processes: `active` is then null, not false.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Scan;
use crate::cpulist::CpuList;

/// State of one daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Service {
    /// A unit file exists; null without any systemd unit directory.
    pub installed: Option<bool>,
    /// Enabled at boot (a `*.wants/` or `*.requires/` link under /etc/systemd/system) and not
    /// masked; null without any systemd unit directory.
    pub enabled: Option<bool>,
    /// A process of that name runs; null when the process table is not visible.
    pub active: Option<bool>,
}

/// irqbalance and its environment file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Irqbalance {
    #[serde(flatten)]
    pub service: Service,
    /// The environment file read: /etc/sysconfig/irqbalance or /etc/default/irqbalance.
    pub config_file: Option<String>,
    /// `IRQBALANCE_BANNED_CPUS` (hex mask): CPUs irqbalance leaves alone.
    pub banned_cpus: Option<CpuList>,
    /// `IRQBALANCE_BANNED_CPULIST` (irqbalance 1.8+; preferred over the mask).
    pub banned_cpulist: Option<CpuList>,
    /// `IRQBALANCE_ARGS` (RHEL) or `OPTIONS` (Debian), e.g. `--banirq=43`.
    pub args: Option<String>,
}

/// tuned and its active profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tuned {
    #[serde(flatten)]
    pub service: Service,
    /// /etc/tuned/active_profile (several profiles are space-separated).
    pub profile: Option<String>,
    /// /etc/tuned/profile_mode: `auto` or `manual`.
    pub profile_mode: Option<String>,
    /// The profiles installed (`<dir>/<name>/tuned.conf` in `TUNED_PROFILE_DIRS`), sorted.
    pub profiles: Vec<String>,
}

/// The daemons: `services` in the facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Services {
    pub irqbalance: Irqbalance,
    pub tuned: Tuned,
    pub chronyd: Service,
    pub ntpd: Service,
    pub ptp4l: Service,
    pub phc2sys: Service,
    pub systemd_timesyncd: Service,
    /// lltune's own boot unit (`lltune-restore.service`, a oneshot that runs `lltune reapply`):
    /// when enabled, lltune re-asserts its settings at boot. `active` is always null (a oneshot
    /// leaves no process to see).
    pub lltune_restore: Service,
}

/// Where systemd looks for unit files, most local first (systemd.unit(5)).
const UNIT_DIRS: &[&str] =
    &["/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];

/// TuneD's record of the profile it runs (tuned/consts.py ACTIVE_PROFILE_FILE).
pub const TUNED_ACTIVE_PROFILE: &str = "/etc/tuned/active_profile";
/// `manual` (chosen by a person) or `auto` (TuneD's recommendation).
pub const TUNED_PROFILE_MODE: &str = "/etc/tuned/profile_mode";
/// Where TuneD looks for `<name>/tuned.conf`, in its search order (the user's folders before
/// the system's): TuneD 2.24 and later use the `profiles/` folders, older releases the
/// folders themselves; both are looked at.
pub const TUNED_PROFILE_DIRS: &[&str] =
    &["/etc/tuned/profiles", "/etc/tuned", "/usr/lib/tuned/profiles", "/usr/lib/tuned"];

/// The names of a TuneD profile value (`a b`: both, merged in that order), checked as TuneD
/// checks them (tuned/profiles/loader.py `safe_name`: `[a-zA-Z0-9_.-]+`, separated by
/// spaces), and stricter where TuneD's check lets through what would leave its folders or
/// read as an option: `.`, `..` and a leading `-` are refused too.
pub fn tuned_profile_names(value: &str) -> Result<Vec<&str>, String> {
    let bad = |why: &str| format!("{:?} is not a TuneD profile name: {why}", crate::protocol::cap_text(value));
    if value.len() > 1024 {
        return Err(bad("longer than 1024 bytes"));
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ' '))) {
        return Err(bad(&format!("{c:?} is not allowed (letters, digits, '_', '.', '-'; names separated by spaces)")));
    }
    let names: Vec<&str> = value.split(' ').filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Err(bad("empty"));
    }
    for n in &names {
        if *n == "." || *n == ".." {
            return Err(bad(&format!("{n:?} names a folder, not a profile")));
        }
        if n.starts_with('-') {
            return Err(bad(&format!("{n:?} starts with '-' (tuned-adm would read an option)")));
        }
        if n.len() > 255 {
            return Err(bad("a name longer than 255 bytes"));
        }
    }
    Ok(names)
}

/// The profile's `tuned.conf` as TuneD finds it (the first in `TUNED_PROFILE_DIRS`); `Err`
/// with every path looked at.
pub fn find_tuned_profile(host: &crate::host::Host, name: &str) -> Result<String, Vec<String>> {
    let looked: Vec<String> = TUNED_PROFILE_DIRS.iter().map(|d| format!("{d}/{name}/tuned.conf")).collect();
    for p in &looked {
        if matches!(host.read_bytes_opt(p), Ok(Some(_))) {
            return Ok(p.clone());
        }
    }
    Err(looked)
}

/// The profiles installed under a root: every `<dir>/<name>/tuned.conf` of
/// `TUNED_PROFILE_DIRS`, names sorted, once each.
pub fn installed_tuned_profiles(host: &crate::host::Host) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in TUNED_PROFILE_DIRS {
        for name in host.list_or_empty(d) {
            if tuned_profile_names(&name).is_ok_and(|n| n.len() == 1) && host.exists(&format!("{d}/{name}/tuned.conf"))
            {
                out.push(name);
            }
        }
    }
    crate::sort::sort_by(&mut out, Ord::cmp);
    out.dedup();
    out
}

/// One line of a shell-style environment file (`KEY=value`, `KEY="value"`, `KEY='value'`,
/// `export KEY=...`, an unquoted value ending at ` #`): its key and value, quotes removed;
/// `None` for a comment, a blank line or anything else. The one reader of these lines, for
/// the scan and for `lltune_irq`, which edits irqbalance's file.
pub fn env_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
    let (k, v) = line.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let v = v.trim();
    let v = if v.len() >= 2 && (v.starts_with('"') && v.ends_with('"') || v.starts_with('\'') && v.ends_with('\'')) {
        &v[1..v.len() - 1]
    } else {
        // Unquoted: a ` #` starts a comment.
        v.split(" #").next().unwrap_or(v).trim_end()
    };
    Some((k, v))
}

/// Parses a shell-style environment file (`env_line`); a later assignment wins, as when the
/// shell sources it. Inserted one by one: collecting into the map would sort the pairs first,
/// which costs every binary that scans about 4 KB of sort code.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in text.lines().filter_map(env_line) {
        out.insert(k.to_string(), v.to_string());
    }
    out
}

/// True when the unit named by a link in a `.wants/` folder is one of `units`;
/// `ptp4l@.service` stands for every instance (`ptp4l@eth0.service`).
pub fn unit_matches(link_name: &str, units: &[&str]) -> bool {
    units.iter().any(|u| match u.strip_suffix("@.service") {
        Some(base) => link_name.strip_prefix(base).is_some_and(|r| r.starts_with('@') && r.ends_with(".service")),
        None => link_name == *u,
    })
}

/// What systemd's directories say, gathered once per scan.
struct Systemd {
    /// Any unit directory exists.
    present: bool,
    /// Names of unit files (and aliases) in the unit directories.
    unit_files: BTreeSet<String>,
    /// Names linked from /etc/systemd/system/*.wants and *.requires.
    wanted: BTreeSet<String>,
    /// Units linked to /dev/null in /etc/systemd/system or /run/systemd/system.
    masked: BTreeSet<String>,
}

impl Systemd {
    fn read(scan: &mut Scan) -> Systemd {
        let mut s =
            Systemd { present: false, unit_files: BTreeSet::new(), wanted: BTreeSet::new(), masked: BTreeSet::new() };
        for dir in UNIT_DIRS {
            if !scan.host.is_dir(dir) {
                continue;
            }
            s.present = true;
            for name in scan.host.list_or_empty(dir) {
                let path = format!("{dir}/{name}");
                if name.ends_with(".wants") || name.ends_with(".requires") {
                    if *dir == "/etc/systemd/system" {
                        s.wanted.extend(scan.host.list_or_empty(&path));
                    }
                    continue;
                }
                if (*dir == "/etc/systemd/system" || *dir == "/run/systemd/system")
                    && scan.host.read_link(&path).as_deref() == Some("/dev/null")
                {
                    s.masked.insert(name.clone());
                }
                s.unit_files.insert(name);
            }
        }
        s
    }

    fn service(&self, units: &[&str], comm: &str, procs: Option<&BTreeSet<String>>) -> Service {
        let active = procs.map(|p| p.contains(comm));
        if !self.present {
            return Service { installed: None, enabled: None, active };
        }
        let masked = self.masked.iter().any(|m| units.contains(&m.as_str()));
        let installed = self.unit_files.iter().any(|f| units.contains(&f.as_str()));
        let wanted = self.wanted.iter().any(|w| unit_matches(w, units));
        Service { installed: Some(installed || wanted), enabled: Some(wanted && !masked), active }
    }
}

/// Process names (`comm`) of every process, or `None` when `/proc` lists no process.
fn process_names(scan: &mut Scan) -> Option<BTreeSet<String>> {
    let pids: Vec<String> =
        scan.host.list_or_empty("/proc").into_iter().filter(|n| n.bytes().all(|b| b.is_ascii_digit())).collect();
    if pids.is_empty() {
        return None;
    }
    // Only `comm`: never cmdline or environ (secrets). A process may exit between the
    // listing and the read: that is not an error.
    Some(pids.iter().filter_map(|p| scan.host.attr(&format!("/proc/{p}/comm"))).collect())
}

fn cpus_of(scan: &mut Scan, file: &str, key: &str, value: Option<&String>, mask: bool) -> Option<CpuList> {
    let v = value?.trim();
    let parsed = if mask { CpuList::parse_mask(v) } else { CpuList::parse(v) };
    match parsed {
        Ok(c) => Some(c),
        Err(e) => {
            scan.warn(format!("{file}: {key}: {e}"));
            None
        }
    }
}

/// irqbalance's environment file on the RHEL family (irqbalance.service's `EnvironmentFile`).
pub const IRQBALANCE_RHEL: &str = "/etc/sysconfig/irqbalance";
/// irqbalance's environment file on Debian and Ubuntu.
pub const IRQBALANCE_DEBIAN: &str = "/etc/default/irqbalance";

/// Which irqbalance environment file this host uses: the one that exists (RHEL's first), else
/// the one its os-release family places; `None` when neither exists and os-release names no
/// RHEL or Debian family (irqbalance is not installed).
pub fn irqbalance_file(host: &crate::host::Host) -> Result<Option<&'static str>, crate::host::HostError> {
    for f in [IRQBALANCE_RHEL, IRQBALANCE_DEBIAN] {
        if host.exists(f) {
            return Ok(Some(f));
        }
    }
    let os = super::host_info::os_release(host)?.unwrap_or_default();
    let ids = super::host_info::os_family(&os);
    let rhel = ["rhel", "fedora", "centos", "rocky", "almalinux", "ol", "rhcos", "suse", "sles", "opensuse", "amzn"];
    let debian = ["debian", "ubuntu"];
    Ok(if ids.iter().any(|i| rhel.contains(&i.as_str())) {
        Some(IRQBALANCE_RHEL)
    } else if ids.iter().any(|i| debian.contains(&i.as_str())) {
        Some(IRQBALANCE_DEBIAN)
    } else {
        None
    })
}

/// Reads the daemons' state.
pub fn read(scan: &mut Scan) -> Services {
    let systemd = Systemd::read(scan);
    let procs = process_names(scan);
    let procs = procs.as_ref();
    let svc = |units: &[&str], comm: &str| systemd.service(units, comm, procs);

    let mut irqbalance = Irqbalance { service: svc(&["irqbalance.service"], "irqbalance"), ..Irqbalance::default() };
    for file in [IRQBALANCE_RHEL, IRQBALANCE_DEBIAN] {
        let Some(text) = scan.host.read_opt(file).ok().flatten() else { continue };
        let env = parse_env_file(&text);
        irqbalance.config_file = Some(file.to_string());
        irqbalance.banned_cpus = cpus_of(scan, file, "IRQBALANCE_BANNED_CPUS", env.get("IRQBALANCE_BANNED_CPUS"), true);
        irqbalance.banned_cpulist =
            cpus_of(scan, file, "IRQBALANCE_BANNED_CPULIST", env.get("IRQBALANCE_BANNED_CPULIST"), false);
        irqbalance.args = env.get("IRQBALANCE_ARGS").or_else(|| env.get("OPTIONS")).cloned().filter(|a| !a.is_empty());
        break;
    }

    let tuned = Tuned {
        service: svc(&["tuned.service"], "tuned"),
        profile: scan.host.attr("/etc/tuned/active_profile").filter(|p| !p.is_empty()),
        profile_mode: scan.host.attr("/etc/tuned/profile_mode").filter(|p| !p.is_empty()),
        profiles: installed_tuned_profiles(scan.host),
    };

    Services {
        irqbalance,
        tuned,
        chronyd: svc(&["chronyd.service", "chrony.service"], "chronyd"),
        ntpd: svc(&["ntpd.service", "ntp.service", "ntpsec.service"], "ntpd"),
        ptp4l: svc(&["ptp4l.service", "ptp4l@.service"], "ptp4l"),
        phc2sys: svc(&["phc2sys.service", "phc2sys@.service"], "phc2sys"),
        // comm is cut to 15 bytes.
        systemd_timesyncd: svc(&["systemd-timesyncd.service"], "systemd-timesyn"),
        lltune_restore: Service { active: None, ..systemd.service(&["lltune-restore.service"], "", None) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ScanOptions;
    use crate::host::Host;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    fn write(root: &Path, path: &str, text: &str) {
        let p = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn link(root: &Path, path: &str, target: &str) {
        let p = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
    }

    #[test]
    fn env_files_as_the_shell_reads_them() {
        let env = parse_env_file(
            "# irqbalance\n#IRQBALANCE_ONESHOT=yes\nIRQBALANCE_BANNED_CPUS=\"0000ffff,ffffffff\"\n\
             IRQBALANCE_ARGS='--banirq=43 --banirq=44'\nexport OPTIONS=-f # foreground\nIRQBALANCE_ARGS=\"--banirq=45\"\nnot a line\n",
        );
        assert_eq!(env["IRQBALANCE_BANNED_CPUS"], "0000ffff,ffffffff");
        assert_eq!(env["IRQBALANCE_ARGS"], "--banirq=45");
        assert_eq!(env["OPTIONS"], "-f");
        assert!(!env.contains_key("IRQBALANCE_ONESHOT"));
        assert_eq!(env.len(), 3);
    }

    #[test]
    fn template_units_match_their_instances() {
        let units = ["ptp4l.service", "ptp4l@.service"];
        assert!(unit_matches("ptp4l@eth0.service", &units));
        assert!(unit_matches("ptp4l.service", &units));
        assert!(!unit_matches("ptp4l@eth0.socket", &units));
        assert!(!unit_matches("ptp4lx@eth0.service", &units));
        assert!(!unit_matches("phc2sys@eth0.service", &units));
    }

    #[test]
    fn a_tree_with_units_processes_and_irqbalance_config() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "/usr/lib/systemd/system/irqbalance.service", "[Unit]\n");
        write(r, "/usr/lib/systemd/system/tuned.service", "[Unit]\n");
        write(r, "/usr/lib/systemd/system/chronyd.service", "[Unit]\n");
        write(r, "/usr/lib/systemd/system/ptp4l@.service", "[Unit]\n");
        write(r, "/usr/lib/systemd/system/systemd-timesyncd.service", "[Unit]\n");
        link(
            r,
            "/etc/systemd/system/multi-user.target.wants/irqbalance.service",
            "/usr/lib/systemd/system/irqbalance.service",
        );
        link(r, "/etc/systemd/system/multi-user.target.wants/tuned.service", "/usr/lib/systemd/system/tuned.service");
        link(
            r,
            "/etc/systemd/system/multi-user.target.wants/ptp4l@ens1f0.service",
            "/usr/lib/systemd/system/ptp4l@.service",
        );
        // Enabled once, masked since: masked wins.
        link(
            r,
            "/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service",
            "/usr/lib/systemd/system/systemd-timesyncd.service",
        );
        link(r, "/etc/systemd/system/systemd-timesyncd.service", "/dev/null");
        write(r, "/proc/1/comm", "systemd\n");
        write(r, "/proc/812/comm", "irqbalance\n");
        write(r, "/proc/990/comm", "ptp4l\n");
        write(r, "/proc/991/comm", "systemd-timesyn\n");
        write(r, "/proc/self/comm", "lltune\n");
        write(r, "/etc/sysconfig/irqbalance", "IRQBALANCE_BANNED_CPUS=000007e0\nIRQBALANCE_BANNED_CPULIST=5-10\n");
        write(r, "/etc/tuned/active_profile", "cpu-partitioning\n");
        write(r, "/etc/tuned/profile_mode", "manual\n");
        // TuneD 2.24's layout and the older one, a user profile, a folder that is no profile.
        write(r, "/usr/lib/tuned/profiles/cpu-partitioning/tuned.conf", "[main]\n");
        write(r, "/usr/lib/tuned/latency-performance/tuned.conf", "[main]\n");
        write(r, "/etc/tuned/profiles/site/tuned.conf", "[main]\n");
        write(r, "/usr/lib/tuned/recommend.d/50-tuned.conf", "[x]\n");

        let host = Host::new(r).unwrap();
        let mut scan = Scan::new(&host, ScanOptions::default());
        let s = read(&mut scan);
        assert!(scan.warnings().is_empty(), "{:?}", scan.warnings());
        let state = |s: &Service| (s.installed, s.enabled, s.active);
        assert_eq!(state(&s.irqbalance.service), (Some(true), Some(true), Some(true)));
        assert_eq!(s.irqbalance.banned_cpus.as_ref().unwrap().to_string(), "5-10");
        assert_eq!(s.irqbalance.banned_cpulist.as_ref().unwrap().to_string(), "5-10");
        assert_eq!(s.irqbalance.config_file.as_deref(), Some("/etc/sysconfig/irqbalance"));
        assert_eq!(state(&s.tuned.service), (Some(true), Some(true), Some(false)));
        assert_eq!(s.tuned.profile.as_deref(), Some("cpu-partitioning"));
        assert_eq!(s.tuned.profile_mode.as_deref(), Some("manual"));
        assert_eq!(s.tuned.profiles, ["cpu-partitioning", "latency-performance", "site"]);
        assert_eq!(state(&s.chronyd), (Some(true), Some(false), Some(false)));
        assert_eq!(state(&s.ntpd), (Some(false), Some(false), Some(false)));
        assert_eq!(state(&s.ptp4l), (Some(true), Some(true), Some(true)));
        assert_eq!(state(&s.systemd_timesyncd), (Some(true), Some(false), Some(true)));
        assert_eq!(
            state(&s.lltune_restore),
            (Some(false), Some(false), None),
            "not installed; a oneshot is never seen"
        );

        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["irqbalance"]["active"], true, "service fields sit beside the config: {json}");
        assert_eq!(json["irqbalance"]["banned_cpus"], "5-10");
    }

    #[test]
    fn lltune_restore_unit_as_persistence_enables_it() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, crate::engine::persist::UNIT_PATH, "[Unit]\n");
        link(r, crate::engine::persist::WANTS_LINK, crate::engine::persist::UNIT_PATH);
        write(r, "/proc/1/comm", "systemd\n");
        let host = Host::new(r).unwrap();
        let mut scan = Scan::new(&host, ScanOptions::default());
        let s = read(&mut scan);
        let l = &s.lltune_restore;
        assert_eq!((l.installed, l.enabled, l.active), (Some(true), Some(true), None));
    }

    #[test]
    fn a_capture_without_processes_or_units_knows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "/proc/cmdline", "quiet\n");
        let host = Host::new(dir.path()).unwrap();
        let mut scan = Scan::new(&host, ScanOptions::default());
        let s = read(&mut scan);
        assert_eq!(s.chronyd, Service { installed: None, enabled: None, active: None });
        assert_eq!(s.irqbalance.banned_cpus, None);
        assert_eq!(s.tuned.profile, None);
    }
}
