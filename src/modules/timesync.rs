//! lltune_timesync: the host's clock disciplined by chrony (NTP servers and/or a PTP hardware
//! clock as a reference clock) or by linuxptp (ptp4l on one NIC, phc2sys making the system
//! clock follow that NIC's PHC), the units enabled and started, competing daemons stopped and
//! disabled. Option names follow linux-system-roles' timesync role where they fit
//! (`timesync_ntp_provider` → `provider`, `timesync_ntp_servers` items → `servers`).
//!
//! Where the files go, and why:
//! - chrony: `lltune.conf` in the first folder chrony.conf names with `confdir` that exists
//!   (Debian's /etc/chrony/chrony.conf has `confdir /etc/chrony/conf.d`). chrony.conf itself
//!   is never edited; a chrony.conf without a usable `confdir` (RHEL's /etc/chrony.conf ships
//!   none) is refused, naming the line to add. `sourcedir` folders are not used: they take
//!   only server/pool/peer lines, and a `refclock` line must be in the config proper.
//! - ptp4l: /etc/linuxptp/lltune-ptp4l.conf with the interface as its own section, run by
//!   lltune's own units /etc/systemd/system/lltune-ptp4l.service and lltune-phc2sys.service.
//!   The distributions' units are not reused: Debian's ptp4l@.service reads the package's
//!   /etc/linuxptp/ptp4l.conf and its phc2sys@.service `Requires=ptp4l.service`, a unit Debian
//!   does not ship (so it never starts); RHEL's ptp4l.service reads /etc/sysconfig/ptp4l with
//!   the interface in `OPTIONS`. One pair of units reads the same on both families.
//!
//! Run-time state is systemd's: on a live root the module runs `systemctl daemon-reload`,
//! stops the competing units, starts its own (restarts them when their config changed while
//! they ran); on a tree only files and links change and `state_not_applied` names the units.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::engine::state::Action;
use crate::engine::{self, Module, text};
use crate::facts::nic::Nic;
use crate::facts::{Scan, ScanOptions};
use crate::host::Host;
use crate::host::system::EthtoolStore;
use crate::modules::services::{self, RunState, ServiceParams, UNIT_DIRS};
use crate::protocol::{Diff, Failure, Meta, Outcome, cap_text, lenient_bool};

pub const MODULE: &str = crate::names::TIMESYNC;
/// Where chrony's main file is: Debian, then RHEL.
pub const CHRONY_CONFS: &[&str] = &["/etc/chrony/chrony.conf", "/etc/chrony.conf"];
/// The file lltune writes in chrony's `confdir`.
pub const CHRONY_FILE: &str = "lltune.conf";
pub const PTP4L_CONF: &str = "/etc/linuxptp/lltune-ptp4l.conf";
pub const PTP4L_UNIT: &str = "lltune-ptp4l.service";
pub const PHC2SYS_UNIT: &str = "lltune-phc2sys.service";
pub const PTP4L_BIN: &str = "/usr/sbin/ptp4l";
pub const PHC2SYS_BIN: &str = "/usr/sbin/phc2sys";
const UNIT_DIR: &str = "/etc/systemd/system";
const WANTS: &str = "/etc/systemd/system/multi-user.target.wants";
/// Daemons that set the system clock, whichever provider is chosen.
const NTP_DAEMONS: &[&str] =
    &["ntp.service", "ntpd.service", "ntpsec.service", "openntpd.service", "systemd-timesyncd.service"];
/// chrony's unit, by its Debian and RHEL names.
pub const CHRONY_UNITS: &[&str] = &["chrony.service", "chronyd.service"];
/// chrony's interval range (`minpoll`, `maxpoll`, `poll`, `dpoll`: log2 seconds).
const POLL_RANGE: std::ops::RangeInclusive<i64> = -7..=24;
/// A second, in nanoseconds: the bound of a refclock's offset and precision.
const NS_PER_S: i64 = 1_000_000_000;
/// ptp4l's `domainNumber` range (linuxptp config.c).
pub const DOMAIN_RANGE: std::ops::RangeInclusive<i64> = 0..=127;
/// The `so_timestamping` names (as `ethtool -T` prints them) ptp4l's hardware mode needs.
pub const HW_TIMESTAMPING: &[&str] = &["hardware-transmit", "hardware-receive", "hardware-raw-clock"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Chrony,
    Ptp4l,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Transport {
    UDPv4,
    UDPv6,
    L2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum DelayMechanism {
    E2E,
    P2P,
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    lenient_bool(d)
}

fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    lenient_bool(v).map(Some).map_err(serde::de::Error::custom)
}

fn yes() -> bool {
    true
}

/// One NTP source (linux-system-roles' `timesync_ntp_servers` item).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub hostname: String,
    #[serde(default, deserialize_with = "flag")]
    pub iburst: bool,
    #[serde(default, deserialize_with = "flag")]
    pub prefer: bool,
    /// Every address the name resolves to is a source (`pool` instead of `server`).
    #[serde(default, deserialize_with = "flag")]
    pub pool: bool,
    #[serde(default)]
    pub minpoll: Option<i64>,
    #[serde(default)]
    pub maxpoll: Option<i64>,
}

/// A PTP hardware clock as chrony's reference clock (`refclock PHC /dev/ptpN ...`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Refclock {
    /// `/dev/ptpN`, or an interface name (its PHC).
    pub phc: String,
    #[serde(default)]
    pub poll: Option<i64>,
    #[serde(default)]
    pub dpoll: Option<i64>,
    /// Added to the clock's time, in nanoseconds (chrony's `offset`, written in seconds;
    /// module options take no fractions).
    #[serde(default)]
    pub offset_ns: Option<i64>,
    /// The clock's precision in nanoseconds (chrony's `precision`, in seconds).
    #[serde(default)]
    pub precision_ns: Option<i64>,
    #[serde(default, deserialize_with = "flag")]
    pub prefer: bool,
    /// The clock keeps TAI, not UTC (chrony's `tai`: chronyd takes off the TAI-UTC offset,
    /// from the leap-second table `leapsectz` names). A PHC that ptp4l disciplines keeps the
    /// PTP timescale, TAI, 37 s ahead of UTC: absent, true when ptp4l runs beside chrony
    /// (`interface`), false otherwise.
    #[serde(default, deserialize_with = "opt_flag")]
    pub tai: Option<bool>,
}

/// The leap-second table chrony's `tai` needs (`leapsectz right/UTC`, chrony.conf(5)).
pub const LEAPSECTZ: &str = "right/UTC";
pub const ZONEINFO: &str = "/usr/share/zoneinfo";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub provider: Provider,
    #[serde(default)]
    pub servers: Vec<Server>,
    #[serde(default)]
    pub refclock: Option<Refclock>,
    #[serde(default)]
    pub interface: Option<String>,
    #[serde(default)]
    pub domain: Option<i64>,
    #[serde(default)]
    pub transport: Option<Transport>,
    #[serde(default)]
    pub delay_mechanism: Option<DelayMechanism>,
    /// ptp4l: the system clock follows the NIC's PHC (phc2sys). Default true.
    #[serde(default, deserialize_with = "opt_flag")]
    pub phc2sys: Option<bool>,
    #[serde(default = "yes", deserialize_with = "flag")]
    pub disable_competing: bool,
    #[serde(default)]
    pub backup_id: Option<String>,
}

/// A DNS name (letters, digits, `-` inside labels of 1–63 bytes, at most 253 bytes) or an
/// IPv4/IPv6 address: one word of graphic ASCII, so nothing in it can end chrony's line,
/// start a comment or add a word chrony would read as an option.
pub fn valid_hostname(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        // All digits and dots but not an address (`1.2.3`): resolvers read it as a number.
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// A netdev name lltune writes into ptp4l's section header and a unit: the kernel's rules
/// (1–15 bytes, no `/`, `:` or white space, not `.` or `..`) narrowed to letters, digits and
/// `_ . @ -`, so no `]`, `#` or line end can reach the file.
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'))
}

/// `systemd-escape` of a path component (`ens1f0` → `ens1f0`, `eth-1` → `eth\x2d1`).
pub fn systemd_escape(s: &str) -> String {
    let mut out = String::new();
    for (i, b) in s.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b':' || b == b'_' || (b == b'.' && i > 0) {
            out.push(b as char);
        } else if b == b'/' {
            out.push('-');
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn poll_ok(at: &str, v: Option<i64>) -> Result<(), String> {
    match v {
        Some(n) if !POLL_RANGE.contains(&n) => Err(format!(
            "option {at}: {n} is outside {}..{} (log2 seconds, as chrony reads it)",
            POLL_RANGE.start(),
            POLL_RANGE.end()
        )),
        _ => Ok(()),
    }
}

/// Nanoseconds as seconds, exactly, as chrony reads them (`%lf`): `-0.000037000`.
pub fn seconds(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    format!("{sign}{}.{:09}", a / 1_000_000_000, a % 1_000_000_000)
}

/// The text of lltune's chrony file. The values must be validated first; `tai` is the
/// refclock's `tai` as decided (`Refclock::tai`, or its default).
pub fn chrony_text(servers: &[Server], refclock: Option<(&str, &Refclock)>, tai: bool) -> String {
    let mut s = String::from("# Written by lltune (lltune_timesync); lltune rollback puts back what was here.\n");
    for srv in servers {
        s.push_str(if srv.pool { "pool " } else { "server " });
        s.push_str(&srv.hostname);
        if srv.iburst {
            s.push_str(" iburst");
        }
        if srv.prefer {
            s.push_str(" prefer");
        }
        if let Some(n) = srv.minpoll {
            s.push_str(&format!(" minpoll {n}"));
        }
        if let Some(n) = srv.maxpoll {
            s.push_str(&format!(" maxpoll {n}"));
        }
        s.push('\n');
    }
    if let Some((dev, r)) = refclock {
        if tai {
            // `tai` takes the TAI-UTC offset from this table; chronyd refuses `tai` without it.
            s.push_str(&format!("leapsectz {LEAPSECTZ}\n"));
        }
        s.push_str(&format!("refclock PHC {dev}"));
        if let Some(n) = r.poll {
            s.push_str(&format!(" poll {n}"));
        }
        if let Some(n) = r.dpoll {
            s.push_str(&format!(" dpoll {n}"));
        }
        if let Some(x) = r.offset_ns {
            s.push_str(&format!(" offset {}", seconds(x)));
        }
        if let Some(x) = r.precision_ns {
            s.push_str(&format!(" precision {}", seconds(x)));
        }
        if r.prefer {
            s.push_str(" prefer");
        }
        if tai {
            s.push_str(" tai");
        }
        s.push('\n');
    }
    s
}

/// The ptp4l settings lltune writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtpSettings {
    pub interface: String,
    pub domain: i64,
    pub transport: Transport,
    pub delay_mechanism: DelayMechanism,
}

pub fn ptp4l_text(p: &PtpSettings) -> String {
    let transport = match p.transport {
        Transport::UDPv4 => "UDPv4",
        Transport::UDPv6 => "UDPv6",
        Transport::L2 => "L2",
    };
    let delay = match p.delay_mechanism {
        DelayMechanism::E2E => "E2E",
        DelayMechanism::P2P => "P2P",
    };
    format!(
        "# Written by lltune (lltune_timesync); lltune rollback puts back what was here.\n[global]\n\
         slaveOnly 1\ndomainNumber {}\nnetwork_transport {transport}\ndelay_mechanism {delay}\ntime_stamping hardware\n[{}]\n",
        p.domain, p.interface
    )
}

pub fn ptp4l_unit(ifname: &str) -> String {
    format!(
        "# Written by lltune (lltune_timesync).\n[Unit]\nDescription=PTP (ptp4l) on {ifname}, configured by lltune\n\
         Documentation=man:ptp4l(8)\nAfter=sys-subsystem-net-devices-{dev}.device\n\n[Service]\nType=simple\n\
         ExecStart={PTP4L_BIN} -f {PTP4L_CONF}\nRestart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n",
        dev = systemd_escape(ifname)
    )
}

pub fn phc2sys_unit(ifname: &str, domain: i64) -> String {
    format!(
        "# Written by lltune (lltune_timesync).\n[Unit]\nDescription=System clock follows the PHC of {ifname} (phc2sys), configured by lltune\n\
         Documentation=man:phc2sys(8)\nRequires={PTP4L_UNIT}\nAfter={PTP4L_UNIT}\nBefore=time-sync.target\nWants=time-sync.target\n\n\
         [Service]\nType=simple\nExecStart={PHC2SYS_BIN} -s {ifname} -c CLOCK_REALTIME -w -n {domain}\nRestart=on-failure\n\n\
         [Install]\nWantedBy=multi-user.target\n"
    )
}

/// The folders a chrony.conf reads with `confdir` (chrony.conf(5)), in its order. Comment
/// lines start with `!`, `;`, `#` or `%`.
pub fn confdirs(conf: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in conf.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some(w) if w.eq_ignore_ascii_case("confdir") => out.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    out
}

fn unit_file_exists(host: &Host, unit: &str) -> bool {
    UNIT_DIRS.iter().any(|d| {
        let p = format!("{d}/{unit}");
        host.read_link(&p).is_some_and(|t| t != "/dev/null") || host.exists(&p)
    })
}

/// The NIC named `ifname`, read as the facts read it.
fn find_nic(nics: &[Nic], ifname: &str) -> Option<Nic> {
    nics.iter().find(|n| n.name.as_deref() == Some(ifname)).cloned()
}

fn fail(msg: impl Into<String>) -> anyhow::Error {
    Failure::new(msg).into()
}

/// A unit lltune writes and enables itself (ptp4l's pair): file, its wants link, and whether
/// it is to run.
struct OwnUnit {
    unit: &'static str,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitState {
    pub unit: String,
    pub enabled: services::BeforeAfter<bool>,
    pub active: Option<services::BeforeAfter<bool>>,
}

/// What the task would change. Reads the host (and `systemctl is-active` on a live root),
/// writes nothing.
pub fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
    let mut out = engine::Plan::default();
    let mut scan = Scan::new(host, ScanOptions::default());
    let nics = crate::facts::nic::read(&mut scan);
    // Files lltune writes: (path, text).
    let mut files: Vec<(String, String)> = Vec::new();
    let mut own_units: Vec<OwnUnit> = Vec::new();
    // Units of the distribution lltune enables and starts (chrony's).
    let mut distro_units: Vec<String> = Vec::new();
    let mut competing: Vec<String> = NTP_DAEMONS.iter().map(|s| s.to_string()).collect();
    let wanted_by_instances = host.list_or_empty(WANTS);
    let instances = |prefix: &str| -> Vec<String> {
        wanted_by_instances.iter().filter(|n| n.starts_with(prefix) && n.ends_with(".service")).cloned().collect()
    };
    let mut not_wanted_own: Vec<&str> = Vec::new();
    let config_file;
    match params.provider {
        Provider::Chrony => {
            // ptp4l may run beside chrony to discipline the PHC chrony reads; phc2sys may not
            // (it would write the system clock chrony keeps).
            if params.phc2sys == Some(true) {
                return Err(fail("option phc2sys: true competes with chrony for the system clock; provider is chrony"));
            }
            if params.interface.is_none() {
                for (opt, set) in [
                    ("domain", params.domain.is_some()),
                    ("transport", params.transport.is_some()),
                    ("delay_mechanism", params.delay_mechanism.is_some()),
                ] {
                    if set {
                        return Err(fail(format!(
                            "option {opt}: a ptp4l option; give interface (ptp4l beside chrony) or leave it out"
                        )));
                    }
                }
            }
            if params.servers.is_empty() && params.refclock.is_none() {
                return Err(fail("provider chrony: give servers, refclock or both"));
            }
            for (i, s) in params.servers.iter().enumerate() {
                if !valid_hostname(&s.hostname) {
                    return Err(fail(format!(
                        "option servers[{i}].hostname: {:?} is not a host name or an IP address (letters, digits, `-` and `.` only)",
                        cap_text(&s.hostname)
                    )));
                }
                poll_ok(&format!("servers[{i}].minpoll"), s.minpoll).map_err(fail)?;
                poll_ok(&format!("servers[{i}].maxpoll"), s.maxpoll).map_err(fail)?;
                if let (Some(a), Some(b)) = (s.minpoll, s.maxpoll) {
                    if a > b {
                        return Err(fail(format!("option servers[{i}]: minpoll {a} is above maxpoll {b}")));
                    }
                }
            }
            let refclock = match &params.refclock {
                None => None,
                Some(r) => {
                    poll_ok("refclock.poll", r.poll).map_err(fail)?;
                    poll_ok("refclock.dpoll", r.dpoll).map_err(fail)?;
                    if let Some(p) = r.precision_ns.filter(|p| !(1..=NS_PER_S).contains(p)) {
                        return Err(fail(format!(
                            "option refclock.precision_ns: {p} is outside 1..{NS_PER_S} (nanoseconds)"
                        )));
                    }
                    if let Some(o) = r.offset_ns.filter(|o| !(-NS_PER_S..=NS_PER_S).contains(o)) {
                        return Err(fail(format!(
                            "option refclock.offset_ns: {o} is outside -{NS_PER_S}..{NS_PER_S} (nanoseconds)"
                        )));
                    }
                    Some((phc_device(host, &nics, &r.phc)?, r))
                }
            };
            let tai = params.refclock.as_ref().is_some_and(|r| r.tai.unwrap_or(params.interface.is_some()));
            let table = format!("{ZONEINFO}/{LEAPSECTZ}");
            if tai && !host.exists(&table) {
                return Err(fail(format!(
                    "option refclock.tai: chrony takes the TAI-UTC offset off a TAI clock with the leap-second table `leapsectz {LEAPSECTZ}` names, and this host has no {table} (tzdata's right/ zones; Debian 13 and later ship them in tzdata-legacy){}",
                    if params.refclock.as_ref().is_some_and(|r| r.tai.is_none()) {
                        " (tai is on because ptp4l runs beside chrony on interface: the PHC it disciplines keeps TAI)"
                    } else {
                        ""
                    }
                )));
            }
            let conf_path = CHRONY_CONFS.iter().copied().find(|p| host.exists(p)).ok_or_else(|| {
                fail(format!("provider chrony: chrony is not installed (no {})", CHRONY_CONFS.join(" or ")))
            })?;
            let conf = host.read(conf_path).map_err(|e| fail(format!("provider chrony: {e}")))?;
            let dirs = confdirs(&conf);
            let dir = dirs.iter().find(|d| d.starts_with('/') && host.is_dir(d)).ok_or_else(|| {
                fail(format!(
                    "provider chrony: {conf_path} has no `confdir` naming an existing folder{}; lltune writes only its own file there and never edits {conf_path}: add a line `confdir /etc/chrony/conf.d` (Debian's default) and create the folder",
                    if dirs.is_empty() { String::new() } else { format!(" (it names {})", dirs.join(", ")) }
                ))
            })?;
            let unit = CHRONY_UNITS.iter().find(|u| unit_file_exists(host, u)).ok_or_else(|| {
                fail(format!("provider chrony: no unit file {} in {}", CHRONY_UNITS.join(" or "), UNIT_DIRS.join(", ")))
            })?;
            let path = format!("{}/{CHRONY_FILE}", dir.trim_end_matches('/'));
            files.push((
                path.clone(),
                chrony_text(&params.servers, refclock.as_ref().map(|(d, r)| (d.as_str(), *r)), tai),
            ));
            config_file = path;
            distro_units.push(unit.to_string());
            if params.interface.is_some() {
                let settings = ptp_settings(host, &nics, params, &mut out.warnings, false)?;
                files.push((PTP4L_CONF.into(), ptp4l_text(&settings)));
                own_units.push(OwnUnit { unit: PTP4L_UNIT, text: ptp4l_unit(&settings.interface) });
                competing.push("ptp4l.service".into());
                competing.extend(instances("ptp4l@"));
            }
            // phc2sys writes the system clock; ptp4l only disciplines the PHC chrony reads.
            competing.extend(["phc2sys.service".to_string(), "timemaster.service".to_string()]);
            competing.extend(instances("phc2sys@"));
            not_wanted_own.push(PHC2SYS_UNIT);
        }
        Provider::Ptp4l => {
            if !params.servers.is_empty() {
                return Err(fail("option servers: a chrony option; provider is ptp4l"));
            }
            if params.refclock.is_some() {
                return Err(fail("option refclock: a chrony option; provider is ptp4l"));
            }
            let phc2sys = params.phc2sys.unwrap_or(true);
            let settings = ptp_settings(host, &nics, params, &mut out.warnings, phc2sys)?;
            let (ifname, domain) = (settings.interface.clone(), settings.domain);
            files.push((PTP4L_CONF.into(), ptp4l_text(&settings)));
            config_file = PTP4L_CONF.to_string();
            own_units.push(OwnUnit { unit: PTP4L_UNIT, text: ptp4l_unit(&ifname) });
            if phc2sys {
                own_units.push(OwnUnit { unit: PHC2SYS_UNIT, text: phc2sys_unit(&ifname, domain) });
            } else {
                not_wanted_own.push(PHC2SYS_UNIT);
            }
            competing.extend(CHRONY_UNITS.iter().map(|s| s.to_string()));
            competing.extend(["ptp4l.service", "phc2sys.service", "timemaster.service"].map(String::from));
            competing.extend(instances("ptp4l@"));
            competing.extend(instances("phc2sys@"));
        }
    }

    // Files first.
    let mut changed_files: Vec<String> = Vec::new();
    files.extend(own_units.iter().map(|u| (format!("{UNIT_DIR}/{}", u.unit), u.text.clone())));
    for (path, text) in &files {
        let old = host.read_bytes_opt(path).map_err(|e| fail(format!("{path}: {e}")))?;
        if old.as_deref() != Some(text.as_bytes()) {
            out.diff.push(text::file_diff(path, old.as_deref(), text.as_bytes()));
            out.actions.push(Action::WriteFile { path: path.clone(), contents: text.as_bytes().to_vec() });
            changed_files.push(path.clone());
        }
    }

    // The distribution's units and the competing ones, through lltune_services' planning.
    let mut wanted: BTreeMap<String, ServiceParams> = BTreeMap::new();
    for u in &distro_units {
        wanted.insert(u.clone(), ServiceParams { state: Some(RunState::Started), enabled: Some(true), masked: None });
    }
    // An alias link (`/etc/systemd/system/chronyd.service -> .../chrony.service`, Debian) names
    // a unit listed under its own name: given twice, lltune_services would refuse.
    let alias = |u: &str| {
        host.read_link(&format!("{UNIT_DIR}/{u}")).is_some_and(|t| t != "/dev/null" && t.rsplit('/').next() != Some(u))
    };
    if params.disable_competing {
        for u in &competing {
            if !distro_units.contains(u) && !alias(u) && unit_file_exists(host, u) {
                wanted.insert(
                    u.clone(),
                    ServiceParams { state: Some(RunState::Stopped), enabled: Some(false), masked: None },
                );
            }
        }
    }
    for u in &not_wanted_own {
        if unit_file_exists(host, u) {
            wanted.insert(
                u.to_string(),
                ServiceParams { state: Some(RunState::Stopped), enabled: Some(false), masked: None },
            );
        }
    }
    let mut sub = if wanted.is_empty() {
        engine::Plan::default()
    } else {
        services::plan(host, &services::Params { services: wanted, backup_id: None, tuned_profile: None })?
    };
    let mut links_changed = sub.actions.iter().any(|a| matches!(a, Action::SetLink { .. } | Action::RemoveLink { .. }));
    let (sub_links, sub_units): (Vec<Action>, Vec<Action>) = sub
        .actions
        .drain(..)
        .filter(|a| !matches!(a, Action::Run { .. }))
        .partition(|a| matches!(a, Action::SetLink { .. } | Action::RemoveLink { .. }));
    out.actions.extend(sub_links);
    out.diff.append(&mut sub.diff);
    out.warnings.append(&mut sub.warnings);

    // lltune's own units: enabled by their wants link, started.
    let mut own_states = Vec::new();
    let mut own_unit_actions = Vec::new();
    let mut state_not_applied: Vec<String> =
        sub.fields.get("state_not_applied").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
    for u in &own_units {
        let link = format!("{WANTS}/{}", u.unit);
        let target = format!("{UNIT_DIR}/{}", u.unit);
        let before = host.read_link(&link);
        let enabled_before = before.is_some();
        if before.as_deref() != Some(target.as_str()) {
            if before.is_none() && host.exists(&link) {
                return Err(fail(format!("{link}: exists and is not a link; not replaced")));
            }
            out.diff.push(Diff {
                before_header: format!("links of {}", u.unit),
                after_header: format!("links of {}", u.unit),
                before: before.as_ref().map(|t| format!("{link} -> {t}\n")).unwrap_or_default(),
                after: format!("{link} -> {target}\n"),
            });
            out.actions.push(Action::SetLink { path: link.clone(), to: target.clone() });
            links_changed = true;
        }
        let unit_changed = changed_files.iter().any(|f| f == &target || f == PTP4L_CONF);
        let active = match host.system().unit_active(u.unit) {
            Ok(asked) => {
                // A unit file not written yet is not loaded: inactive.
                let before = if host.exists(&target) {
                    asked.map_err(|e| fail(format!("systemctl is-active {}: {e}", u.unit)))?
                } else {
                    false
                };
                if !before {
                    own_unit_actions.push(Action::SetUnit { unit: u.unit.to_string(), active: true });
                    out.diff.push(Diff {
                        before_header: format!("unit {}", u.unit),
                        after_header: format!("unit {}", u.unit),
                        before: "inactive\n".into(),
                        after: "active\n".into(),
                    });
                } else if unit_changed {
                    restart(host, &mut own_unit_actions, u.unit);
                }
                Some(services::BeforeAfter { before, after: true })
            }
            Err(_) => {
                state_not_applied.push(u.unit.to_string());
                None
            }
        };
        own_states.push(UnitState {
            unit: u.unit.to_string(),
            enabled: services::BeforeAfter { before: enabled_before, after: true },
            active,
        });
    }
    // chrony running with a changed file reads it only when restarted.
    if params.provider == Provider::Chrony && !changed_files.is_empty() {
        for u in &distro_units {
            if let Ok(Ok(true)) = host.system().unit_active(u) {
                restart(host, &mut own_unit_actions, u);
            }
        }
    }
    if links_changed || own_units.iter().any(|u| changed_files.contains(&format!("{UNIT_DIR}/{}", u.unit))) {
        if let Ok(argv) = host.system().plan_command(vec!["systemctl".into(), "daemon-reload".into()]) {
            out.actions.push(Action::Run { argv, rewrites: vec![] });
        }
    }
    // Competing units stop before lltune's start.
    out.actions.extend(sub_units);
    out.actions.extend(own_unit_actions);

    out.field("provider", params.provider);
    out.field("config_file", &config_file);
    out.field("units", &own_states);
    out.field("services", sub.fields.get("services").cloned().unwrap_or(Value::Array(vec![])));
    out.field("state_not_applied", &state_not_applied);
    Ok(out)
}

/// ptp4l's settings from the options, with the NIC checked from the host: it exists, has a
/// PHC and hardware timestamping; linuxptp is installed (and phc2sys when `phc2sys`).
fn ptp_settings(
    host: &Host,
    nics: &[Nic],
    params: &Params,
    warnings: &mut Vec<String>,
    phc2sys: bool,
) -> Result<PtpSettings> {
    let ifname = params.interface.as_deref().ok_or_else(|| fail("provider ptp4l: option interface is required"))?;
    if !valid_ifname(ifname) {
        return Err(fail(format!(
            "option interface: {:?} is not an interface name (1-15 letters, digits, `_ . @ -`)",
            cap_text(ifname)
        )));
    }
    let domain = params.domain.unwrap_or(0);
    if !DOMAIN_RANGE.contains(&domain) {
        return Err(fail(format!(
            "option domain: {domain} is outside {}..{} (ptp4l's domainNumber)",
            DOMAIN_RANGE.start(),
            DOMAIN_RANGE.end()
        )));
    }
    let nic = find_nic(nics, ifname)
        .ok_or_else(|| fail(format!("option interface: no network interface {ifname} on this host")))?;
    if nic.phc_index.is_none() {
        return Err(fail(format!(
            "option interface: {ifname} has no PTP hardware clock (no /sys/class/net/{ifname}/device/ptp/ptpN); ptp4l's hardware timestamping needs one"
        )));
    }
    match &nic.timestamping {
        Some(ts) => {
            let missing: Vec<&str> =
                HW_TIMESTAMPING.iter().copied().filter(|c| !ts.so_timestamping.iter().any(|h| h == c)).collect();
            if !missing.is_empty() {
                return Err(fail(format!(
                    "option interface: {ifname} lacks hardware timestamping ({} missing from its capabilities, ethtool -T)",
                    missing.join(", ")
                )));
            }
        }
        None if host.system().ethtool_store() == EthtoolStore::Kernel => {
            return Err(fail(format!(
                "option interface: {ifname} reports no timestamping capabilities (ETHTOOL_GET_TS_INFO); ptp4l needs hardware timestamping"
            )));
        }
        None => warnings.push(format!(
            "interface {ifname}: the capture holds no timestamping capabilities; hardware timestamping not checked"
        )),
    }
    for (bin, what) in [(PTP4L_BIN, true), (PHC2SYS_BIN, phc2sys)] {
        if what && !host.exists(bin) {
            return Err(fail(format!("option interface: ptp4l needs linuxptp, which is not installed (no {bin})")));
        }
    }
    Ok(PtpSettings {
        interface: ifname.to_string(),
        domain,
        transport: params.transport.unwrap_or(Transport::UDPv4),
        delay_mechanism: params.delay_mechanism.unwrap_or(DelayMechanism::E2E),
    })
}

/// `systemctl try-restart UNIT` planned on a host that runs commands (nothing on a tree):
/// a daemon that reads its config only when it starts reads the new one. Rollback uses it too.
pub fn restart(host: &Host, actions: &mut Vec<Action>, unit: &str) {
    if let Ok(argv) = host.system().plan_command(vec!["systemctl".into(), "try-restart".into(), unit.into()]) {
        actions.push(Action::Run { argv, rewrites: vec![] });
    }
}

/// `refclock.phc` as a device: `/dev/ptpN` (the clock must be in /sys/class/ptp) or an
/// interface name (its PHC).
fn phc_device(host: &Host, nics: &[Nic], phc: &str) -> Result<String> {
    if let Some(n) = phc.strip_prefix("/dev/ptp") {
        if n.is_empty() || n.len() > 5 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(format!("option refclock.phc: {:?} is not /dev/ptpN", cap_text(phc))));
        }
        if !host.exists(&format!("/sys/class/ptp/ptp{n}")) {
            return Err(fail(format!("option refclock.phc: no PTP clock ptp{n} on this host (/sys/class/ptp)")));
        }
        return Ok(phc.to_string());
    }
    if !valid_ifname(phc) {
        return Err(fail(format!(
            "option refclock.phc: {:?} is neither /dev/ptpN nor an interface name",
            cap_text(phc)
        )));
    }
    let nic = find_nic(nics, phc)
        .ok_or_else(|| fail(format!("option refclock.phc: no network interface {phc} on this host")))?;
    let idx = nic.phc_index.ok_or_else(|| {
        fail(format!("option refclock.phc: {phc} has no PTP hardware clock (no /sys/class/net/{phc}/device/ptp/ptpN)"))
    })?;
    Ok(format!("/dev/ptp{idx}"))
}

/// The module, as the engine's runner sees it.
pub struct Timesync;

impl Module for Timesync {
    const NAME: &'static str = MODULE;
    type Params = Params;

    fn backup_id(params: &Params) -> Option<&str> {
        params.backup_id.as_deref()
    }

    fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
        plan(host, params)
    }
}

pub fn run(host: &Host, meta: &Meta, params: Params) -> Result<Outcome> {
    engine::run::<Timesync>(host, meta, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    /// Whatever a generated host name holds, an accepted one is one word of graphic ASCII
    /// that no chrony comment character starts, so the server line has exactly the words
    /// lltune meant; and the rule is no looser than DNS names and IP addresses.
    #[test]
    fn generated_host_names_cannot_add_words_or_lines() {
        let hostile =
            ['\n', '\r', ' ', '\t', '#', ';', '!', '%', '"', '\\', '[', ']', '/', '_', '\0', ':', '.', '-', 'é'];
        let mut rng = Rng(0x5eed_2026_0019);
        let (mut yes, mut no) = (0, 0);
        for _ in 0..20_000 {
            let h = rng.string(&hostile, 14);
            if !valid_hostname(&h) {
                no += 1;
                continue;
            }
            yes += 1;
            assert!(h.bytes().all(|b| b.is_ascii_graphic()), "{h:?}");
            assert!(!h.starts_with(['#', ';', '!', '%', '-']), "{h:?}");
            let line = chrony_text(
                &[Server {
                    hostname: h.clone(),
                    iburst: true,
                    prefer: false,
                    pool: false,
                    minpoll: None,
                    maxpoll: None,
                }],
                None,
                false,
            );
            let lines: Vec<&str> = line.lines().skip(1).collect();
            assert_eq!(lines.len(), 1, "{h:?}");
            assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["server", h.as_str(), "iburst"]);
            let ip = h.parse::<std::net::IpAddr>().is_ok();
            let dns = h
                .trim_end_matches('.')
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            assert!(ip || dns, "{h:?}");
        }
        assert!(yes > 300 && no > 5000, "accepted {yes}, refused {no}");
        for ok in ["ntp1.example.com", "10.0.0.1", "fe80::1", "time.", "a"] {
            assert!(valid_hostname(ok), "{ok}");
        }
        for bad in ["", "a b", "a\nrefclock SHM 0", "#x", "-a", "a..b", "1.2.3", "a_b", "[::1]", &"a".repeat(64)] {
            assert!(!valid_hostname(bad), "{bad:?}");
        }
    }

    #[test]
    fn interface_names_cannot_close_ptp4l_sections() {
        let hostile = ['\n', ']', '[', ' ', '#', '/', ':', '.', '@', '-', '_'];
        let mut rng = Rng(0x0019_0004);
        for _ in 0..5000 {
            let n = rng.string(&hostile, 17);
            if valid_ifname(&n) {
                let text = ptp4l_text(&PtpSettings {
                    interface: n.clone(),
                    domain: 0,
                    transport: Transport::L2,
                    delay_mechanism: DelayMechanism::E2E,
                });
                // The last line is the one section header, holding the name whole.
                assert_eq!(text.lines().last(), Some(format!("[{n}]").as_str()));
                assert_eq!(text.matches('[').count(), 2, "{n:?}");
                assert!(!systemd_escape(&n).contains(['/', ' ', '\n']), "{n:?}");
            }
        }
        assert!(valid_ifname("ens1f0") && valid_ifname("eth0.100") && valid_ifname("bond-1@x"));
        for bad in ["", ".", "..", "a]b", "a b", "a/b", "a:b", "sixteen-chars-xx"] {
            assert!(!valid_ifname(bad), "{bad:?}");
        }
        assert_eq!(systemd_escape("eth-1"), "eth\\x2d1");
        assert_eq!(systemd_escape("ens1f0.100"), "ens1f0.100");
    }

    #[test]
    fn seconds_are_exact_and_confdirs_are_read_as_chrony_reads_them() {
        assert_eq!(seconds(37_000), "0.000037000");
        assert_eq!(seconds(-1), "-0.000000001");
        assert_eq!(seconds(1_000_000_000), "1.000000000");
        assert_eq!(seconds(0), "0.000000000");
        let mut rng = Rng(77);
        for _ in 0..2000 {
            let ns = rng.below(2_000_000_001) as i64 - 1_000_000_000;
            let back: f64 = seconds(ns).parse().unwrap();
            assert!((back * 1e9 - ns as f64).abs() < 0.5, "{ns}");
        }
        assert_eq!(
            confdirs("# confdir /x\nconfdir /etc/chrony/conf.d /usr/lib/chrony\n  confdir /y\nsourcedir /z\n"),
            ["/etc/chrony/conf.d", "/usr/lib/chrony", "/y"]
        );
        assert!(confdirs("pool 2.rhel.pool.ntp.org iburst\n").is_empty());
    }
}
