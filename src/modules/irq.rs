//! lltune_irq: IRQ affinity rules (`/proc/irq/N/smp_affinity_list`), the default affinity of
//! new IRQs (`/proc/irq/default_smp_affinity`) and irqbalance's banned CPUs
//! (`IRQBALANCE_BANNED_CPULIST` in `/etc/sysconfig/irqbalance` or `/etc/default/irqbalance`).
//!
//! Rules apply in order and a later rule wins for the IRQs it matches. Planning reads
//! `/proc/interrupts` and `/proc/irq` once into a table indexed by IRQ number, so the cost is
//! linear in the number of IRQs times the number of rules.
//!
//! The surprising parts:
//! - The kernel refuses (EIO) to move managed IRQs (queues spread by the kernel itself,
//!   e.g. NVMe), per-CPU IRQs and IRQs flagged "no balancing", and on x86 the timer (0) and
//!   cascade (2) IRQs. Only debugfs (`/sys/kernel/debug/irq/irqs/N`) names the first three;
//!   the module skips what it can recognise and says so, rather than fail the run.
//! - On x86 the effective affinity is one CPU of the affinity, and without interrupt
//!   remapping the move happens at the IRQ's next interrupt: an effective affinity outside
//!   the new set right after the write is reported, not treated as a failure.
//! - In a captured tree `effective_affinity_list` is a plain file no kernel updates, so the
//!   IRQs left on isolated CPUs are computed from the new affinities there.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::cpulist::CpuList;
use crate::engine::state::Action;
use crate::engine::{self, Module, text};
use crate::facts::cpu::read_cpu_list;
use crate::facts::irq::{NicKey, match_nic, read_interrupt_rows, read_interrupts_header};
use crate::facts::kernel::{parse_cmdline, parse_isolcpus};
use crate::host::Host;
use crate::host::system::Kernel;
use crate::protocol::{Diff, Failure, Meta, Outcome, cap_text, kind, lenient_bool};

pub const MODULE: &str = crate::names::IRQ;
/// irqbalance's environment file on RHEL and its relatives, and on Debian and Ubuntu.
pub const BANNED_KEY: &str = "IRQBALANCE_BANNED_CPULIST";
use crate::facts::irq::{
    DEBUGFS_IRQS, DEFAULT_AFFINITY_FILE, DebugFlags, IRQ_FILES, IrqCpus, debugfs_irqs, read_debugfs_flags,
    read_default_affinity, read_irq_cpus,
};
use crate::facts::services::{self, IRQBALANCE_DEBIAN, IRQBALANCE_RHEL};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// In order; a later rule wins for the IRQs it matches.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Rule>>,
    /// `/proc/irq/default_smp_affinity`, as a cpulist.
    #[serde(default, deserialize_with = "opt_cpulist_text")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_affinity: Option<String>,
    /// `IRQBALANCE_BANNED_CPULIST` in irqbalance's environment file; `""` bans none.
    #[serde(default, deserialize_with = "opt_cpulist_text")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub irqbalance_banned_cpus: Option<String>,
    #[serde(default, skip_serializing)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// Save the rules for `lltune reapply` at boot (`engine::persist`).
    #[serde(default, deserialize_with = "lenient_bool", skip_serializing)]
    pub persist: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(rename = "match")]
    pub matcher: Match,
    #[serde(deserialize_with = "cpulist_text")]
    pub cpus: String,
    /// One CPU per IRQ, round robin in queue order.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub spread: bool,
}

/// Which IRQs a rule takes: exactly one key.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    #[serde(default, deserialize_with = "opt_bool")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nic: Option<String>,
    /// A PCI device (`0000:3b:00.0`): for a NIC with no netdev (bound to a kernel-bypass
    /// driver) or whatever its netdev is called.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci: Option<String>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "opt_irq_numbers")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub irq: Option<Vec<u32>>,
}

fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<bool>, D::Error> {
    lenient_bool(d).map(Some)
}

/// A cpulist written as text, or a single CPU written as a number.
pub(crate) fn cpulist_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) if n.as_u64().is_some() => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("expected a CPU list such as \"2-5,8\", got {}", kind(&other)))),
    }
}

pub(crate) fn opt_cpulist_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    cpulist_text(d).map(Some)
}

/// A list of IRQ numbers, or one number.
fn opt_irq_numbers<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<u32>>, D::Error> {
    let one = |v: &Value| -> std::result::Result<u32, D::Error> {
        v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected IRQ numbers (0 to {}), got {}",
                u32::MAX,
                cap_text(&v.to_string())
            ))
        })
    };
    match Value::deserialize(d)? {
        Value::Array(a) => a.iter().map(one).collect::<std::result::Result<Vec<_>, _>>().map(Some),
        v @ Value::Number(_) => Ok(Some(vec![one(&v)?])),
        other => Err(serde::de::Error::custom(format!("expected a list of IRQ numbers, got {}", kind(&other)))),
    }
}

/// One IRQ as planning sees it.
#[derive(Debug, Clone, Default)]
pub struct IrqInfo {
    pub irq: u32,
    /// Handler names joined by ", " (as /proc/interrupts shows them); "" when none.
    pub name: String,
    pub actions: Vec<String>,
    pub chip: Option<String>,
    pub hwirq: Option<u64>,
    pub trigger: Option<String>,
    pub pci_address: Option<String>,
    /// A row in /proc/interrupts or a handler directory.
    pub active: bool,
    /// `smp_affinity_list`; `None` when the file does not exist.
    pub affinity: Option<CpuList>,
    /// The file exists but could not be parsed.
    pub affinity_unreadable: bool,
    pub effective: Option<CpuList>,
    /// `None` when debugfs is not there.
    pub flags: Option<DebugFlags>,
}

impl IrqInfo {
    fn label(&self) -> String {
        if self.name.is_empty() { format!("irq {}", self.irq) } else { format!("irq {} ({})", self.irq, self.name) }
    }

    /// Where the IRQ is delivered now: the effective affinity where the kernel reports one.
    fn route(&self) -> Option<&CpuList> {
        self.effective.as_ref().filter(|c| !c.is_empty()).or(self.affinity.as_ref())
    }
}

/// Every IRQ of the host, and what planning needs besides.
#[derive(Debug, Default)]
pub struct IrqTable {
    pub irqs: Vec<IrqInfo>,
    /// IRQ number -> index in `irqs`.
    pub index: HashMap<u32, usize>,
    pub debugfs: bool,
    pub x86: bool,
    pub warnings: Vec<String>,
}

fn kernel_err(e: impl std::fmt::Display) -> anyhow::Error {
    Failure::new(e.to_string()).into()
}

/// Reads `/proc/interrupts`, `/proc/irq/N/` and, where mounted, debugfs. Linear in the IRQs.
pub fn read_table(host: &Host) -> Result<IrqTable> {
    let mut t = IrqTable::default();
    // Streamed: one line in memory at a time, and no per-CPU counts (a 256-CPU, 4,000-IRQ
    // table is 12 MB of text).
    let rows = match host.open_stream("/proc/interrupts") {
        Ok(f) => match read_interrupt_rows(f, false) {
            Ok((rows, _bad_lines)) => rows,
            Err(e) => {
                t.warnings.push(format!("/proc/interrupts: {e}; handler names unknown"));
                BTreeMap::new()
            }
        },
        Err(e) if e.is_not_found() => {
            t.warnings.push("/proc/interrupts: absent; handler names unknown".into());
            BTreeMap::new()
        }
        Err(e) => return Err(kernel_err(e)),
    };
    t.x86 = rows.values().any(|r| r.chip.as_deref().is_some_and(|c| c.contains("IO-APIC") || c.contains("XT-PIC")));
    if !t.x86 {
        if let Ok(Some(info)) = host.read_opt("/proc/cpuinfo") {
            t.x86 = info.lines().take(64).any(|l| {
                l.starts_with("vendor_id")
                    && ["GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls"].iter().any(|v| l.contains(v))
            });
        }
    }
    let dirs: BTreeSet<u32> = host.list_or_empty("/proc/irq").iter().filter_map(|n| n.parse().ok()).collect();
    t.debugfs = debugfs_irqs(host);
    let numbers: BTreeSet<u32> = rows.keys().copied().chain(dirs.iter().copied()).collect();
    for n in numbers {
        let mut info = IrqInfo { irq: n, ..IrqInfo::default() };
        if let Some(r) = rows.get(&n) {
            info.actions = r.actions.clone();
            info.chip = r.chip.clone();
            info.hwirq = r.hwirq;
            info.trigger = r.trigger.clone();
            info.active = true;
        }
        if dirs.contains(&n) {
            let d = format!("/proc/irq/{n}");
            // The list file only: it is the file this module writes.
            if let Some(f) = read_irq_cpus(host, n, IrqCpus::Affinity, false).map_err(kernel_err)? {
                match f.cpus {
                    Ok(c) => info.affinity = Some(c),
                    Err(_) => info.affinity_unreadable = true,
                }
            }
            info.effective = read_irq_cpus(host, n, IrqCpus::Effective, true).ok().flatten().and_then(|f| f.cpus.ok());
            if !info.active {
                // No row: no handler, or a kernel that hides it; the subdirectories say.
                for e in host.list_or_empty(&d) {
                    if !IRQ_FILES.contains(&e.as_str()) && host.is_dir(&format!("{d}/{e}")) {
                        info.actions.push(e);
                    }
                }
                info.active = !info.actions.is_empty();
            }
        }
        if t.debugfs {
            info.flags = read_debugfs_flags(host, n);
        }
        info.name = info.actions.join(", ");
        info.pci_address = crate::facts::irq::irq_pci_address(info.chip.as_deref(), info.hwirq, &info.actions);
        t.index.insert(n, t.irqs.len());
        t.irqs.push(info);
    }
    Ok(t)
}

/// Why an IRQ cannot be moved, or `None` when it can.
pub fn unmovable(t: &IrqTable, i: &IrqInfo) -> Option<&'static str> {
    if i.affinity.is_none() && !i.affinity_unreadable {
        return Some("no smp_affinity_list");
    }
    if let Some(f) = i.flags {
        if f.managed {
            return Some("managed");
        }
        if f.per_cpu {
            return Some("per-CPU");
        }
        if f.no_balancing {
            return Some("no balancing (IRQD_NO_BALANCING)");
        }
    }
    if matches!(i.trigger.as_deref(), Some("percpu" | "percpu_devid")) {
        return Some("per-CPU");
    }
    // GIC SGIs (0-15) and PPIs (16-31) are per CPU.
    if i.chip.as_deref().is_some_and(|c| c.starts_with("GIC")) && i.hwirq.is_some_and(|h| h < 32) {
        return Some("per-CPU");
    }
    if t.x86 && (i.irq == 0 || i.irq == 2) {
        return Some("x86 timer or cascade IRQ (the kernel refuses to move it)");
    }
    None
}

/// Natural order of handler names (`mlx5_comp2` before `mlx5_comp10`), then IRQ number:
/// the queue order `spread` follows.
fn queue_order(a: &IrqInfo, b: &IrqInfo) -> Ordering {
    natural_cmp(&a.name, &b.name).then(a.irq.cmp(&b.irq))
}

fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (&x[..nx], &y[..ny]);
                let tx = dx.iter().skip_while(|c| **c == b'0').count();
                let ty = dy.iter().skip_while(|c| **c == b'0').count();
                let o = tx.cmp(&ty).then_with(|| dx[nx - tx..].cmp(&dy[ny - ty..])).then(nx.cmp(&ny));
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

/// The host's CPUs as the checks of the cpulists need them.
#[derive(Debug, Default)]
pub struct Cpus {
    /// `None` when the host does not say.
    pub online: Option<CpuList>,
    pub possible: Option<CpuList>,
    /// Runtime `isolated` and `nohz_full`, and `isolcpus=`/`nohz_full=` of the command line.
    pub isolated: CpuList,
}

fn read_list(host: &Host, name: &str) -> Option<CpuList> {
    read_cpu_list(host, name).ok().flatten()
}

pub fn read_cpus(host: &Host) -> Cpus {
    let mut c = Cpus { possible: read_list(host, "possible"), ..Cpus::default() };
    c.online = read_list(host, "online").or_else(|| {
        // A capture without sysfs CPUs: /proc/interrupts has one column per online CPU. Its
        // header line alone is read.
        let f = host.open_stream("/proc/interrupts").ok()?;
        read_interrupts_header(f).ok().filter(|v| !v.is_empty()).map(CpuList::from_cpus)
    });
    let mut iso = read_list(host, "isolated").unwrap_or_default();
    iso = iso.union(&read_list(host, "nohz_full").unwrap_or_default());
    if let Some(cmd) = host.read_opt("/proc/cmdline").ok().flatten() {
        let cmd = parse_cmdline(&cmd);
        let last = c.possible.as_ref().or(c.online.as_ref()).and_then(CpuList::last);
        if let Some(Some(v)) = cmd.last("isolcpus") {
            if let Ok(i) = parse_isolcpus(v) {
                iso = iso.union(&i.cpus);
            }
        }
        if let Some(Some(v)) = cmd.last("nohz_full") {
            if let Ok(l) = CpuList::parse_with_last(v, last) {
                iso = iso.union(&l);
            }
        }
    }
    c.isolated = iso;
    c
}

/// Parses a cpulist option and checks its CPUs are online (`what` names the option).
fn check_cpus(cpus: &Cpus, what: &str, text: &str, allow_empty: bool) -> Result<CpuList> {
    let list = CpuList::parse(text).map_err(|e| Failure::new(format!("{what}: {e}; nothing was changed")))?;
    if list.is_empty() && !allow_empty {
        return Err(Failure::new(format!("{what}: the CPU list is empty; nothing was changed")).into());
    }
    if let Some(possible) = &cpus.possible {
        let absent = list.difference(possible);
        if !absent.is_empty() {
            return Err(Failure::new(format!(
                "{what}: CPUs {absent} do not exist on this host (possible CPUs: {possible}); nothing was changed"
            ))
            .into());
        }
    }
    if let Some(online) = &cpus.online {
        let off = list.difference(online);
        if !off.is_empty() {
            return Err(Failure::new(format!(
                "{what}: CPUs {off} are offline or not on this host (online CPUs: {online}); nothing was changed"
            ))
            .into());
        }
    }
    Ok(list)
}

/// A netdev name as the kernel allows it (no `/`, not `.` or `..`, at most 15 bytes).
fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.contains(['/', '\0'])
        && !s.contains(char::is_whitespace)
}

/// The IRQs of a NIC: its PCI device's `msi_irqs`, then IRQs named after it or its device.
fn nic_irqs(host: &Host, t: &IrqTable, what: &str, ifname: &str) -> Result<Vec<usize>> {
    if !valid_ifname(ifname) {
        return Err(Failure::new(format!("{what}: {:?} is not a network interface name", cap_text(ifname))).into());
    }
    let dev = format!("/sys/class/net/{ifname}");
    if host.read_link(&dev).is_none() && !host.is_dir(&dev) {
        let known: Vec<String> =
            host.list_or_empty("/sys/class/net").into_iter().filter(|n| n != "bonding_masters").collect();
        return Err(Failure::new(format!(
            "{what}: no network interface {ifname} on this host (/sys/class/net has: {}); nothing was changed",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ))
        .into());
    }
    let device = host.link_name(&format!("{dev}/device"));
    let pci = device.clone().filter(|d| crate::facts::nic::is_pci_address(d));
    let key = NicKey {
        key: ifname.to_string(),
        name: Some(ifname.to_string()),
        pci_address: pci.clone(),
        device: device.filter(|d| !crate::facts::nic::is_pci_address(d)),
        numa_node: None,
    };
    let mut out: BTreeSet<usize> = BTreeSet::new();
    for n in host.list_or_empty(&format!("{dev}/device/msi_irqs")) {
        if let Some(&i) = n.parse::<u32>().ok().and_then(|n| t.index.get(&n)) {
            out.insert(i);
        }
    }
    let keys = [key];
    for (i, irq) in t.irqs.iter().enumerate() {
        if !irq.actions.is_empty() && match_nic(&keys, irq.pci_address.as_deref(), &irq.actions).is_some() {
            out.insert(i);
        }
    }
    if out.is_empty() {
        return Err(Failure::new(format!(
            "{what}: {ifname} has no IRQs (no msi_irqs{} and no /proc/interrupts name of it); nothing was changed",
            pci.map(|p| format!(" under {p}")).unwrap_or_default()
        ))
        .into());
    }
    Ok(out.into_iter().collect())
}

/// The IRQs of a PCI device: its `msi_irqs`, then IRQs whose /proc/interrupts names name
/// the device (`mlx5_comp0@pci:0000:3b:00.0`).
fn pci_irqs(host: &Host, t: &IrqTable, what: &str, addr: &str) -> Result<Vec<usize>> {
    if !crate::facts::nic::is_pci_address(addr) {
        return Err(Failure::new(format!(
            "{what}: {:?} is not a PCI address (domain:bus:device.function, e.g. 0000:3b:00.0); nothing was changed",
            cap_text(addr)
        ))
        .into());
    }
    let addr = addr.to_ascii_lowercase();
    let dev = format!("/sys/bus/pci/devices/{addr}");
    if host.read_link(&dev).is_none() && !host.is_dir(&dev) {
        return Err(
            Failure::new(format!("{what}: no PCI device {addr} on this host (no {dev}); nothing was changed")).into()
        );
    }
    let keys = [NicKey { key: addr.clone(), pci_address: Some(addr.clone()), ..NicKey::default() }];
    let mut out: BTreeSet<usize> = BTreeSet::new();
    for n in host.list_or_empty(&format!("{dev}/msi_irqs")) {
        if let Some(&i) = n.parse::<u32>().ok().and_then(|n| t.index.get(&n)) {
            out.insert(i);
        }
    }
    for (i, irq) in t.irqs.iter().enumerate() {
        if !irq.actions.is_empty() && match_nic(&keys, irq.pci_address.as_deref(), &irq.actions).is_some() {
            out.insert(i);
        }
    }
    if out.is_empty() {
        return Err(Failure::new(format!(
            "{what}: {addr} has no IRQs (no msi_irqs and no /proc/interrupts name of it); nothing was changed"
        ))
        .into());
    }
    Ok(out.into_iter().collect())
}

/// The IRQs a rule's match takes on this host, as planning finds them (`all`, a name glob,
/// IRQ numbers; `None` for `nic` and `pci`, which name a device). Unknown numbers and a
/// bad glob take nothing here: planning the rule names them.
fn matched_irqs(t: &IrqTable, m: &Match) -> Option<Vec<usize>> {
    if m.all.is_some() {
        Some((0..t.irqs.len()).collect())
    } else if let Some(g) = &m.name {
        let pat = glob::Pattern::new(g).ok();
        Some(
            t.irqs
                .iter()
                .enumerate()
                .filter(|(_, i)| {
                    pat.as_ref().is_some_and(|p| {
                        !i.name.is_empty() && (p.matches(&i.name) || i.actions.iter().any(|a| p.matches(a)))
                    })
                })
                .map(|(k, _)| k)
                .collect(),
        )
    } else {
        m.irq.as_ref().map(|ns| ns.iter().filter_map(|n| t.index.get(n).copied()).collect())
    }
}

/// The rules of `rules` narrowed to the IRQs of the netdev `ifname` (its device's
/// `msi_irqs` and the IRQs named after it or its device), in order: what `lltune reapply
/// --interface` applies. A rule by `nic: ifname`, or by `pci` naming its device, is kept as
/// it is; a rule by `all`, name glob or IRQ numbers becomes a rule by the numbers of its
/// IRQs among the interface's, with the CPU each would get from the whole rule (`spread`
/// counts every IRQ the rule matches, in queue order, as a full run does). Rules that take
/// none of its IRQs, `default_affinity` and irqbalance's banned CPUs are left out.
pub fn rules_for_interface(host: &Host, rules: &[Rule], ifname: &str) -> Result<Vec<Rule>> {
    let table = read_table(host)?;
    let mine: BTreeSet<usize> = if valid_ifname(ifname) {
        nic_irqs(host, &table, "", ifname).unwrap_or_default().into_iter().collect()
    } else {
        BTreeSet::new()
    };
    let pci =
        host.link_name(&format!("/sys/class/net/{ifname}/device")).filter(|d| crate::facts::nic::is_pci_address(d));
    let cpus = read_cpus(host);
    let mut out = Vec::new();
    for r in rules {
        let m = &r.matcher;
        if m.nic.as_deref() == Some(ifname)
            || m.pci.as_deref().zip(pci.as_deref()).is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
        {
            out.push(r.clone());
            continue;
        }
        let Some(matched) = matched_irqs(&table, m) else { continue };
        let irq_rule = |irqs: Vec<u32>, cpus: String, spread: bool| Rule {
            matcher: Match { irq: Some(irqs), ..Match::default() },
            cpus,
            spread,
        };
        let ours: Vec<u32> = matched.iter().filter(|k| mine.contains(k)).map(|&k| table.irqs[k].irq).collect();
        if ours.is_empty() {
            continue;
        }
        let list = check_cpus(&cpus, "", &r.cpus, false).ok().map(|l| l.iter().collect::<Vec<u32>>());
        match list {
            Some(list) if r.spread && !list.is_empty() => {
                // The CPU each of its IRQs gets when the whole rule is spread.
                let mut movable: Vec<usize> =
                    matched.into_iter().filter(|&k| unmovable(&table, &table.irqs[k]).is_none()).collect();
                crate::sort::sort_by(&mut movable, |a, b| queue_order(&table.irqs[*a], &table.irqs[*b]));
                let mut by_cpu: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
                for (pos, &k) in movable.iter().enumerate() {
                    if mine.contains(&k) {
                        by_cpu.entry(list[pos % list.len()]).or_default().push(table.irqs[k].irq);
                    }
                }
                out.extend(by_cpu.into_iter().map(|(cpu, irqs)| irq_rule(irqs, cpu.to_string(), false)));
            }
            // A cpulist planning refuses: kept, so that the run names it.
            _ => out.push(irq_rule(ours, r.cpus.clone(), r.spread)),
        }
    }
    Ok(out)
}

/// One IRQ whose affinity changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqChange {
    pub irq: u32,
    #[serde(serialize_with = "crate::protocol::capped")]
    pub name: String,
    pub before: String,
    pub after: String,
    /// Index of the rule that set it (the last that matched).
    pub rule: usize,
}

/// An IRQ a rule matched that cannot be moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub irq: u32,
    #[serde(serialize_with = "crate::protocol::capped")]
    pub name: String,
    pub reason: String,
}

/// An IRQ that may interrupt an isolated CPU after the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnIsolated {
    pub irq: u32,
    #[serde(serialize_with = "crate::protocol::capped")]
    pub name: String,
    /// Where it is delivered: the effective affinity where known, else the affinity.
    pub cpus: String,
    /// The isolated CPUs among them.
    pub isolated: String,
}

/// What each rule matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSummary {
    pub rule: usize,
    pub matched: usize,
    /// Matched IRQs this rule sets (not overridden by a later rule), changed or not.
    pub wins: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BeforeAfter {
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IrqbalanceChange {
    pub file: String,
    pub before: Option<String>,
    pub after: String,
}

/// The module's plan, before the engine's.
#[derive(Debug, Default)]
pub struct IrqPlan {
    pub actions: Vec<Action>,
    pub diff: Vec<Diff>,
    pub changes: Vec<IrqChange>,
    pub skipped: Vec<Skipped>,
    pub on_isolated: Vec<OnIsolated>,
    pub isolated: CpuList,
    pub rules: Vec<RuleSummary>,
    pub default_affinity: Option<BeforeAfter>,
    pub irqbalance: Option<IrqbalanceChange>,
    pub warnings: Vec<String>,
}

/// Which irqbalance environment file to edit (`facts::services::irqbalance_file`), with its
/// bytes when it exists.
fn irqbalance_file(host: &Host) -> Result<(String, Option<Vec<u8>>)> {
    let opt = |e: crate::host::HostError| -> anyhow::Error {
        Failure::new(format!("option irqbalance_banned_cpus: {e}")).into()
    };
    let Some(f) = services::irqbalance_file(host).map_err(opt)? else {
        return Err(Failure::new(format!(
            "option irqbalance_banned_cpus: neither {IRQBALANCE_RHEL} nor {IRQBALANCE_DEBIAN} exists, and /etc/os-release does not name a RHEL or Debian family; nothing was changed"
        ))
        .into());
    };
    Ok((f.to_string(), host.read_bytes_opt(f).map_err(opt)?))
}

/// The value of an active `KEY=value` line (`services::env_line`, quotes removed).
fn env_value(line: &str, key: &str) -> Option<String> {
    services::env_line(line).filter(|(k, _)| *k == key).map(|(_, v)| v.to_string())
}

/// Sets `KEY=value` in an environment file: the first active line is replaced, later active
/// ones dropped (the last would win), every other line kept. When there is none, the line
/// goes after the commented-out example (`#KEY=`) the distributions ship, else at the end.
pub fn edit_env(bytes: Option<&[u8]>, key: &str, value: &str) -> Vec<u8> {
    let line = format!("{key}={value}\n");
    // Lines as bytes, read as `text::view` gives them: every line but the key's is kept
    // byte for byte, and an active line that already holds the value is left alone.
    let lines: Vec<&[u8]> = text::lines(bytes.unwrap_or_default()).collect();
    let views: Vec<_> = lines.iter().map(|l| text::view(text::body(l))).collect();
    let active = views.iter().any(|l| env_value(l, key).is_some());
    let example = if active {
        None
    } else {
        views.iter().rposition(|l| l.trim_start().strip_prefix('#').is_some_and(|c| env_value(c, key).is_some()))
    };
    let want = text::view(value.as_bytes());
    let mut out = Vec::with_capacity(bytes.map_or(0, <[u8]>::len) + line.len() + 80);
    let mut done = false;
    for (n, (l, v)) in lines.iter().zip(&views).enumerate() {
        if let Some(now) = env_value(v, key) {
            if !done {
                if now == *want {
                    out.extend_from_slice(l)
                } else {
                    text::push_line(&mut out, line.as_bytes())
                }
                done = true;
            }
            continue;
        }
        out.extend_from_slice(l);
        if example == Some(n) {
            text::push_line(&mut out, line.as_bytes());
            done = true;
        }
    }
    if !done {
        if bytes.is_none() {
            out.extend_from_slice(b"# irqbalance environment; IRQBALANCE_BANNED_CPULIST set by lltune_irq\n");
        }
        text::push_line(&mut out, line.as_bytes());
    }
    out
}

/// What the task would change. Reads the host, writes nothing.
pub fn plan(host: &Host, params: &Params) -> Result<IrqPlan> {
    let rules = params.rules.as_deref().unwrap_or(&[]);
    if rules.is_empty() && params.default_affinity.is_none() && params.irqbalance_banned_cpus.is_none() {
        return Err(Failure::new(
            "option rules: give at least one rule (or default_affinity, irqbalance_banned_cpus); nothing was changed",
        )
        .into());
    }
    let cpus = read_cpus(host);
    // Every option is checked before anything is read for planning: a bad rule fails fast.
    let mut wanted = Vec::with_capacity(rules.len());
    for (n, r) in rules.iter().enumerate() {
        let m = &r.matcher;
        let keys = [m.all.is_some(), m.nic.is_some(), m.pci.is_some(), m.name.is_some(), m.irq.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if keys != 1 {
            return Err(Failure::new(format!(
                "option rules[{n}].match: give exactly one of all, nic, pci, name, irq (got {keys}); nothing was changed"
            ))
            .into());
        }
        if m.all == Some(false) {
            return Err(Failure::new(format!("option rules[{n}].match.all: must be true; nothing was changed")).into());
        }
        if m.irq.as_ref().is_some_and(Vec::is_empty) {
            return Err(Failure::new(format!("option rules[{n}].match.irq: empty list; nothing was changed")).into());
        }
        wanted.push(check_cpus(&cpus, &format!("option rules[{n}].cpus"), &r.cpus, false)?);
    }
    let default_affinity = match &params.default_affinity {
        Some(t) => Some(check_cpus(&cpus, "option default_affinity", t, false)?),
        None => None,
    };
    let banned = match &params.irqbalance_banned_cpus {
        Some(t) => Some(check_cpus(&cpus, "option irqbalance_banned_cpus", t, true)?),
        None => None,
    };

    let table = read_table(host)?;
    let mut plan = IrqPlan { isolated: cpus.isolated.clone(), ..IrqPlan::default() };
    plan.warnings.extend(table.warnings.iter().cloned());
    // IRQ index -> (CPUs, rule). Later rules overwrite.
    let mut assigned: HashMap<usize, (CpuList, usize)> = HashMap::new();
    let mut skipped: BTreeMap<u32, &'static str> = BTreeMap::new();
    let mut matched_per_rule = Vec::with_capacity(rules.len());
    for (n, r) in rules.iter().enumerate() {
        let m = &r.matcher;
        let what = format!("option rules[{n}].match");
        let mut matched: Vec<usize> = if m.all.is_some() {
            (0..table.irqs.len()).collect()
        } else if let Some(nic) = &m.nic {
            nic_irqs(host, &table, &format!("{what}.nic"), nic)?
        } else if let Some(pci) = &m.pci {
            pci_irqs(host, &table, &format!("{what}.pci"), pci)?
        } else if let Some(g) = &m.name {
            let pat = glob::Pattern::new(g)
                .map_err(|e| Failure::new(format!("{what}.name: {:?} is not a glob: {e}", cap_text(g))))?;
            let found: Vec<usize> = table
                .irqs
                .iter()
                .enumerate()
                .filter(|(_, i)| {
                    !i.name.is_empty() && (pat.matches(&i.name) || i.actions.iter().any(|a| pat.matches(a)))
                })
                .map(|(k, _)| k)
                .collect();
            if found.is_empty() {
                plan.warnings.push(format!("rules[{n}]: no IRQ name matches {:?}", cap_text(g)));
            }
            found
        } else {
            let mut v = Vec::new();
            for irq in m.irq.as_deref().unwrap_or(&[]) {
                match table.index.get(irq) {
                    Some(&k) => v.push(k),
                    None => {
                        return Err(Failure::new(format!(
                            "{what}.irq: no IRQ {irq} on this host (not in /proc/interrupts or /proc/irq); nothing was changed"
                        ))
                        .into());
                    }
                }
            }
            crate::sort::sort_by(&mut v, Ord::cmp);
            v.dedup();
            v
        };
        let mut movable = Vec::with_capacity(matched.len());
        let mut n_skipped = 0;
        for &k in &matched {
            match unmovable(&table, &table.irqs[k]) {
                Some(reason) => {
                    // `all` takes every IRQ that can be moved: the unmovable ones are listed once.
                    skipped.insert(table.irqs[k].irq, reason);
                    n_skipped += 1;
                }
                None => movable.push(k),
            }
        }
        if r.spread {
            crate::sort::sort_by(&mut movable, |a, b| queue_order(&table.irqs[*a], &table.irqs[*b]));
            let list: Vec<u32> = wanted[n].iter().collect();
            for (pos, &k) in movable.iter().enumerate() {
                assigned.insert(k, (CpuList::from_cpus([list[pos % list.len()]]), n));
            }
        } else {
            for &k in &movable {
                assigned.insert(k, (wanted[n].clone(), n));
            }
        }
        matched.clear();
        matched_per_rule.push((movable.len() + n_skipped, n_skipped));
    }
    let mut wins = vec![0usize; rules.len()];
    for (_, r) in assigned.values() {
        wins[*r] += 1;
    }
    plan.rules = matched_per_rule
        .iter()
        .enumerate()
        .map(|(rule, &(matched, skipped))| RuleSummary { rule, matched, wins: wins[rule], skipped })
        .collect();
    plan.skipped = skipped
        .iter()
        .map(|(irq, reason)| Skipped {
            irq: *irq,
            name: table.irqs[table.index[irq]].name.clone(),
            reason: reason.to_string(),
        })
        .collect();
    let matched_any = !assigned.is_empty() || !skipped.is_empty();
    if matched_any && !table.debugfs {
        plan.warnings.push(format!(
            "{DEBUGFS_IRQS} is not there: managed IRQs (which the kernel refuses to move) cannot be recognised{}",
            if host.system().can_act().is_ok() {
                "; mount debugfs (CONFIG_GENERIC_IRQ_DEBUGFS) so that they are skipped, or a refused write fails the run and is reverted"
            } else {
                " in this tree and are planned like any other"
            }
        ));
    }

    // The writes, in IRQ order.
    let mut order: Vec<usize> = assigned.keys().copied().collect();
    crate::sort::sort_by(&mut order, Ord::cmp);
    let (mut before_text, mut after_text) = (String::new(), String::new());
    let mut new_affinity: HashMap<usize, CpuList> = HashMap::new();
    for k in order {
        let (cpus_after, rule) = &assigned[&k];
        let i = &table.irqs[k];
        if i.affinity.as_ref() == Some(cpus_after) {
            continue;
        }
        let before = i.affinity.as_ref().map(ToString::to_string).unwrap_or_else(|| "(unreadable)".into());
        let after = cpus_after.to_string();
        before_text.push_str(&format!("{}: {before}\n", i.label()));
        after_text.push_str(&format!("{}: {after}\n", i.label()));
        plan.actions
            .push(Action::WriteKernel { path: format!("/proc/irq/{}/smp_affinity_list", i.irq), value: after.clone() });
        plan.changes.push(IrqChange { irq: i.irq, name: i.name.clone(), before, after, rule: *rule });
        new_affinity.insert(k, cpus_after.clone());
    }
    if !plan.changes.is_empty() {
        plan.diff.push(Diff {
            before_header: "/proc/irq/*/smp_affinity_list".into(),
            after_header: "/proc/irq/*/smp_affinity_list".into(),
            before: before_text,
            after: after_text,
        });
    }

    if let Some(want) = default_affinity {
        let current = read_default_affinity(host)
            .map_err(|e| Failure::new(format!("option default_affinity: {e}")))?
            .ok_or_else(|| {
            Failure::new(format!("option default_affinity: {DEFAULT_AFFINITY_FILE} does not exist on this host"))
        })?;
        let now = current.cpus.clone().ok();
        let width = current.width().max(cpus.possible.as_ref().and_then(CpuList::last).map_or(0, |l| l + 1));
        let mask = want.to_mask(width);
        if now.as_ref() != Some(&want) {
            let show =
                |c: &Option<CpuList>| c.as_ref().map(ToString::to_string).unwrap_or_else(|| "(unreadable)".into());
            plan.diff.push(Diff {
                before_header: DEFAULT_AFFINITY_FILE.into(),
                after_header: DEFAULT_AFFINITY_FILE.into(),
                before: format!("{} ({})\n", current.text, show(&now)),
                after: format!("{mask} ({want})\n"),
            });
            plan.actions.push(Action::WriteKernel { path: DEFAULT_AFFINITY_FILE.into(), value: mask });
        }
        plan.default_affinity = Some(BeforeAfter { before: now.map(|c| c.to_string()), after: Some(want.to_string()) });
    }

    if let Some(banned) = banned {
        let (file, text) = irqbalance_file(host)?;
        let value = banned.to_string();
        let new_text = edit_env(text.as_deref(), BANNED_KEY, &value);
        let views: Vec<_> =
            text::lines(text.as_deref().unwrap_or_default()).map(|l| text::view(text::body(l))).collect();
        let before = views.iter().filter_map(|l| env_value(l, BANNED_KEY)).next_back();
        if views.iter().any(|l| env_value(l, "IRQBALANCE_BANNED_CPUS").is_some()) {
            plan.warnings.push(format!(
                "{file}: IRQBALANCE_BANNED_CPUS (the older mask form) is set too and left as it is; irqbalance 1.8 and later use {BANNED_KEY}"
            ));
        }
        if text.as_deref() != Some(new_text.as_slice()) {
            plan.diff.push(text::file_diff(&file, text.as_deref(), &new_text));
            plan.actions.push(Action::WriteFile { path: file.clone(), contents: new_text });
        }
        plan.irqbalance = Some(IrqbalanceChange { file, before, after: value });
    }

    // IRQs left on isolated CPUs: the new affinity where it changes (a tree's effective
    // affinity is stale, and the kernel's follows the new affinity), else where it goes now.
    if !plan.isolated.is_empty() {
        for (k, i) in table.irqs.iter().enumerate() {
            if !i.active {
                continue;
            }
            let route = match new_affinity.get(&k) {
                Some(c) => Some(c),
                None => i.route(),
            };
            if let Some(route) = route {
                let hit = route.intersection(&plan.isolated);
                if !hit.is_empty() {
                    plan.on_isolated.push(OnIsolated {
                        irq: i.irq,
                        name: i.name.clone(),
                        cpus: route.to_string(),
                        isolated: hit.to_string(),
                    });
                }
            }
        }
    }
    Ok(plan)
}

/// The module, as the engine's runner sees it.
pub struct Irq;

impl Module for Irq {
    const NAME: &'static str = MODULE;
    type Params = Params;

    fn backup_id(params: &Params) -> Option<&str> {
        params.backup_id.as_deref()
    }

    fn persist_state(params: &Params) -> Option<serde_json::Map<String, Value>> {
        engine::persist::options_of(params, params.persist)
    }

    fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
        let p = plan(host, params)?;
        let mut out =
            engine::Plan { actions: p.actions, diff: p.diff, warnings: p.warnings, ..engine::Plan::default() };
        out.field("changes", &p.changes);
        // Not `skipped`: Ansible reads a true `skipped` key as "the task was skipped".
        out.field("skipped_irqs", &p.skipped);
        out.field("on_isolated_cpus", &p.on_isolated);
        out.field("isolated_cpus", p.isolated.to_string());
        out.field("rules", &p.rules);
        out.field("default_affinity", &p.default_affinity);
        out.field("irqbalance", &p.irqbalance);
        out.field("effective_differs", Vec::<Value>::new());
        let changes = p.changes;
        out.after_apply(move |host, plan, ran| {
            // The effective affinity is the running kernel's answer to the write; a tree's
            // file is a stale snapshot (a question about the data, so `kernel()`).
            if ran == engine::Ran::Applied && host.system().kernel() == Kernel::Running {
                after_live_run(host, plan, &changes);
            }
        });
        Ok(out)
    }
}

/// An IRQ whose effective affinity is outside the affinity just written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveDiffers {
    pub irq: u32,
    #[serde(serialize_with = "crate::protocol::capped")]
    pub name: String,
    pub affinity: String,
    pub effective: String,
}

pub fn run(host: &Host, meta: &Meta, params: Params) -> Result<Outcome> {
    engine::run::<Irq>(host, meta, params)
}

/// The after-apply step on the running kernel (`engine::Plan::after_apply`): read back where
/// each changed IRQ is delivered, and which IRQs are left on isolated CPUs.
fn after_live_run(host: &Host, out: &mut engine::Plan, changes: &[IrqChange]) {
    let Ok(table) = read_table(host) else { return };
    let mut differs = Vec::new();
    for c in changes {
        let Some(i) = table.index.get(&c.irq).map(|&k| &table.irqs[k]) else { continue };
        let (Some(aff), Some(eff)) = (&i.affinity, &i.effective) else { continue };
        if !eff.is_empty() && !eff.is_subset(aff) {
            differs.push(EffectiveDiffers {
                irq: c.irq,
                name: c.name.clone(),
                affinity: aff.to_string(),
                effective: eff.to_string(),
            });
        }
    }
    if !differs.is_empty() {
        out.warnings.push(format!(
            "{} IRQ(s) are still delivered outside their new affinity (first: irq {} on CPU {}); without interrupt remapping the kernel moves an IRQ at its next interrupt",
            differs.len(),
            differs[0].irq,
            differs[0].effective
        ));
    }
    let isolated = read_cpus(host).isolated;
    let mut on_isolated = Vec::new();
    for i in table.irqs.iter().filter(|i| i.active) {
        if let Some(route) = i.route() {
            let hit = route.intersection(&isolated);
            if !hit.is_empty() {
                on_isolated.push(OnIsolated {
                    irq: i.irq,
                    name: i.name.clone(),
                    cpus: route.to_string(),
                    isolated: hit.to_string(),
                });
            }
        }
    }
    out.fields.insert("effective_differs".into(), serde_json::to_value(&differs).unwrap_or(Value::Null));
    out.fields.insert("on_isolated_cpus".into(), serde_json::to_value(&on_isolated).unwrap_or(Value::Null));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_of_queue_names() {
        let mut v = vec!["mlx5_comp10", "mlx5_comp2", "mlx5_async", "mlx5_comp0", "eth0-TxRx-1", "eth0-TxRx-01"];
        crate::sort::sort_by(&mut v, |a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["eth0-TxRx-1", "eth0-TxRx-01", "mlx5_async", "mlx5_comp0", "mlx5_comp2", "mlx5_comp10"]);
    }

    #[test]
    fn env_file_edit_keeps_other_lines() {
        let text = "# comment\nIRQBALANCE_ONESHOT=\n#IRQBALANCE_BANNED_CPULIST=1\nIRQBALANCE_BANNED_CPULIST=\"3\"\nX=1\nexport IRQBALANCE_BANNED_CPULIST=4\n";
        let shipped = "# doc\n#IRQBALANCE_BANNED_CPULIST=\n\nIRQBALANCE_ARGS=\n";
        assert_eq!(
            edit_env(Some(shipped.as_bytes()), BANNED_KEY, "4-7"),
            b"# doc\n#IRQBALANCE_BANNED_CPULIST=\nIRQBALANCE_BANNED_CPULIST=4-7\n\nIRQBALANCE_ARGS=\n"
        );
        let out = edit_env(Some(text.as_bytes()), BANNED_KEY, "2-5");
        assert_eq!(
            out,
            b"# comment\nIRQBALANCE_ONESHOT=\n#IRQBALANCE_BANNED_CPULIST=1\nIRQBALANCE_BANNED_CPULIST=2-5\nX=1\n"
        );
        assert_eq!(edit_env(Some(&out), BANNED_KEY, "2-5"), out);
        assert!(edit_env(None, BANNED_KEY, "").ends_with(b"\nIRQBALANCE_BANNED_CPULIST=\n"));
        // Bytes of any encoding, CR and a missing last newline are kept; a line that holds
        // the value already (quoted) is not rewritten.
        let odd = b"# caf\xe9\r\nIRQBALANCE_ARGS=\"--x=\xff\"\r\nIRQBALANCE_BANNED_CPULIST=\"2-5\"\r\n#\0";
        assert_eq!(edit_env(Some(odd), BANNED_KEY, "2-5"), odd);
        assert_eq!(
            edit_env(Some(odd), BANNED_KEY, "4"),
            b"# caf\xe9\r\nIRQBALANCE_ARGS=\"--x=\xff\"\r\nIRQBALANCE_BANNED_CPULIST=4\n#\0"
        );
        assert_eq!(edit_env(Some(b"#\xe9"), BANNED_KEY, "4"), b"#\xe9\nIRQBALANCE_BANNED_CPULIST=4\n");
        assert_eq!(env_value("IRQBALANCE_BANNED_CPULIST='1-3'", BANNED_KEY).as_deref(), Some("1-3"));
        assert_eq!(env_value("IRQBALANCE_BANNED_CPULISTX=1", BANNED_KEY), None);
    }

    #[test]
    fn mask_width_follows_the_kernel() {
        use crate::facts::irq::mask_width;
        assert_eq!(mask_width("ffff,ffffffff,fffff81f\n"), 80);
        assert_eq!(mask_width("3f"), 8);
        let c = CpuList::parse("0-1,40-41").unwrap();
        assert_eq!(c.to_mask(80), "0000,00000300,00000003");
    }

    #[test]
    fn pci_addresses_as_the_facts_find_them() {
        // The module and the facts share one finder (facts::irq::pci_address_in, no regex).
        use crate::facts::irq::{irq_pci_address, pci_address_in};
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (chip, hwirq, actions, want) in [
            ("IR-PCI-MSI", 13107200, vec!["x"], Some("0000:19:00.0")),
            ("PCI-MSI", 81921, vec!["virtio2-input"], Some("0000:00:05.0")),
            ("IR-PCI-MSI", 1, vec!["mlx5_comp0@pci:0000:3B:00.1"], Some("0000:3b:00.1")),
            ("IR-PCI-MSI", 288768, vec!["ahci[0000:00:11.5]"], Some("0000:00:11.5")),
            ("IR-PCI-MSIX-0000:1a:00.0", 1, vec!["eno3-TxRx-0"], Some("0000:1a:00.0")),
            ("IO-APIC", 2, vec!["timer"], None),
            ("DMAR-MSI", 6, vec!["dmar6"], None),
            // Function 9 is no PCI function: the shared domain's hwirq decides.
            ("IR-PCI-MSI", 5, vec!["i40e-0000:3b:00.9:misc"], Some("0000:00:00.0")),
        ] {
            let a = strings(&actions);
            assert_eq!(irq_pci_address(Some(chip), Some(hwirq), &a).as_deref(), want, "{chip} {hwirq} {actions:?}");
        }
        assert_eq!(pci_address_in("x0000:3b:00.0"), Some("0000:3b:00.0".into()));
        // Leftmost match of exactly four domain digits, as the regex it replaces found.
        assert_eq!(pci_address_in("10000:3b:00.0:x"), Some("0000:3b:00.0".into()));
        assert_eq!(pci_address_in("0000:3B:0F.7"), Some("0000:3b:0f.7".into()));
        assert_eq!(pci_address_in("é0000:3b:00.0é"), Some("0000:3b:00.0".into()));
        assert_eq!(pci_address_in("0000:3b:00"), None);
        assert_eq!(pci_address_in("0000:3b:00.8"), None);
        assert_eq!(pci_address_in("000:3b:00.0"), None);
        assert_eq!(pci_address_in("0000:3g:00.0"), None);
        assert_eq!(pci_address_in(""), None);
    }
}
