//! lltune_nic: the ethtool state of trading NICs (features, coalescing, rings, channels,
//! pause) through SIOCETHTOOL, and RPS/RFS/XPS per queue through sysfs.
//!
//! Names are ethtool's: `features` takes the kernel's feature strings (`rx-gro-hw`) and the
//! aliases of `ethtool -K` (`gro`, `tso`, ... from ethtool's `off_flag_def`, each standing for
//! every kernel feature its pattern matches, as ethtool expands them); `coalesce`, `rings`,
//! `channels` and `pause` take the names of `ethtool -C/-G/-L/-A`.
//!
//! The surprising parts:
//! - Everything is checked against the device before anything is written: a `[fixed]`
//!   feature, a ring or channel count above the maximum, a group the driver lacks. What the
//!   ioctl cannot tell in advance (a coalescing field the driver does not support) is refused
//!   by the kernel at write time; coalescing is therefore written first of all, so such a
//!   refusal comes before any other change, and the engine reverts whatever came before.
//! - Changing channels makes the driver re-create its queues (and their IRQs): RPS/XPS are
//!   written before it (surviving queues keep them), and the result says `queues_recreated`.
//! - On a captured tree (`root` not `/`) no ioctl is issued: the settings act on the tree's
//!   captured JSON (`/var/lib/lltune/capture/ethtool/<ifname>.json`), rewritten as a file.
//! - `rps_flow_cnt` is rounded up to a power of two by the kernel; the plan does the same.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::cpulist::CpuList;
use crate::engine::journal::valid_ifname;
use crate::engine::state::Action;
use crate::engine::{self, Module};
use crate::facts::cpu::read_cpu_list;
use crate::facts::nic::{CaptureError, ETHTOOL_CAPTURE_DIR, Nic};
use crate::facts::{Scan, ScanOptions};
use crate::host::Host;
use crate::host::system::EthtoolStore;
use crate::protocol::{Diff, Failure, Meta, Outcome, cap_text};
use crate::sys::ethtool_group::Group;

pub const MODULE: &str = crate::names::NIC;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Interfaces and their settings, in order: a later entry wins for the settings it repeats.
    pub interfaces: Vec<Spec>,
    #[serde(default, skip_serializing)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// Save the interfaces' settings for `lltune reapply` at boot (`engine::persist`).
    #[serde(default, deserialize_with = "crate::protocol::lenient_bool", skip_serializing)]
    pub persist: bool,
}

/// One entry of `interfaces`: which netdevs, and what to set on them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Every netdev but loopback, physical and virtual alike; queue settings only (`rps_cpus`,
    /// `rps_flow_cnt`, `xps_cpus`), and a netdev without such queues is named and skipped.
    #[serde(default, deserialize_with = "crate::protocol::lenient_bool")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// PCI address of the port (`0000:3b:00.0`).
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci: Option<String>,
    /// Every netdev bound to this driver (`mlx5_core`).
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Map<String, Value>>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coalesce: Option<Map<String, Value>>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rings: Option<Map<String, Value>>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Map<String, Value>>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<Map<String, Value>>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rps_cpus: Option<Value>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rps_flow_cnt: Option<Value>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xps_cpus: Option<Value>,
}

/// ethtool's `off_flag_def` (common.c): short name, long name, kernel feature pattern.
pub const FEATURE_ALIASES: &[(&str, &str, &str)] = &[
    ("rx", "rx-checksumming", "rx-checksum"),
    ("tx", "tx-checksumming", "tx-checksum-*"),
    ("sg", "scatter-gather", "tx-scatter-gather*"),
    ("tso", "tcp-segmentation-offload", "tx-tcp*-segmentation"),
    ("ufo", "udp-fragmentation-offload", "tx-udp-fragmentation"),
    ("gso", "generic-segmentation-offload", "tx-generic-segmentation"),
    ("gro", "generic-receive-offload", "rx-gro"),
    ("lro", "large-receive-offload", "rx-lro"),
    ("rxvlan", "rx-vlan-offload", "rx-vlan-hw-parse"),
    ("txvlan", "tx-vlan-offload", "tx-vlan-hw-insert"),
    ("ntuple", "ntuple-filters", "rx-ntuple-filter"),
    ("rxhash", "receive-hashing", "rx-hashing"),
];

/// `ethtool -C` names and the `struct ethtool_coalesce` fields they set.
pub const COALESCE: &[(&str, &str)] = &[
    ("adaptive-rx", "use_adaptive_rx_coalesce"),
    ("adaptive-tx", "use_adaptive_tx_coalesce"),
    ("rx-usecs", "rx_coalesce_usecs"),
    ("rx-frames", "rx_max_coalesced_frames"),
    ("rx-usecs-irq", "rx_coalesce_usecs_irq"),
    ("rx-frames-irq", "rx_max_coalesced_frames_irq"),
    ("tx-usecs", "tx_coalesce_usecs"),
    ("tx-frames", "tx_max_coalesced_frames"),
    ("tx-usecs-irq", "tx_coalesce_usecs_irq"),
    ("tx-frames-irq", "tx_max_coalesced_frames_irq"),
    ("stats-block-usecs", "stats_block_coalesce_usecs"),
    ("pkt-rate-low", "pkt_rate_low"),
    ("rx-usecs-low", "rx_coalesce_usecs_low"),
    ("rx-frames-low", "rx_max_coalesced_frames_low"),
    ("tx-usecs-low", "tx_coalesce_usecs_low"),
    ("tx-frames-low", "tx_max_coalesced_frames_low"),
    ("pkt-rate-high", "pkt_rate_high"),
    ("rx-usecs-high", "rx_coalesce_usecs_high"),
    ("rx-frames-high", "rx_max_coalesced_frames_high"),
    ("tx-usecs-high", "tx_coalesce_usecs_high"),
    ("tx-frames-high", "tx_max_coalesced_frames_high"),
    ("sample-interval", "rate_sample_interval"),
];

/// `ethtool -G` names, the `struct ethtool_ringparam` field, and its maximum.
pub const RINGS: &[(&str, &str, &str)] = &[
    ("rx", "rx_pending", "rx_max_pending"),
    ("rx-mini", "rx_mini_pending", "rx_mini_max_pending"),
    ("rx-jumbo", "rx_jumbo_pending", "rx_jumbo_max_pending"),
    ("tx", "tx_pending", "tx_max_pending"),
];

/// `ethtool -L` names, the `struct ethtool_channels` field, and its maximum.
pub const CHANNELS: &[(&str, &str, &str)] = &[
    ("rx", "rx_count", "max_rx"),
    ("tx", "tx_count", "max_tx"),
    ("other", "other_count", "max_other"),
    ("combined", "combined_count", "max_combined"),
];

/// `ethtool -A` names and the `struct ethtool_pauseparam` fields.
pub const PAUSE: &[(&str, &str)] = &[("autoneg", "autoneg"), ("rx", "rx_pause"), ("tx", "tx_pause")];

fn fail(msg: impl Into<String>) -> anyhow::Error {
    Failure::new(msg).into()
}

/// A boolean as ethtool and Ansible users write one: `true`, `on`, `yes`, `1`.
fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "on" | "yes" | "true" | "1" => Some(true),
            "off" | "no" | "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A non-negative integer up to `max`, as a number or a string of digits.
fn as_uint(v: &Value, max: u64) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()?
        }
        _ => return None,
    };
    (n <= max).then_some(n)
}

fn show(v: &Value) -> String {
    match v {
        Value::Bool(true) => "on".into(),
        Value::Bool(false) => "off".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn names(table: impl Iterator<Item = &'static str>) -> String {
    table.collect::<Vec<_>>().join(", ")
}

/// What is known of one netdev's ethtool state, from the kernel or from a capture.
struct Device {
    /// Every feature: (name, active, fixed).
    features: Option<Vec<(String, bool, bool)>>,
    /// Groups the device supports, as uapi JSON.
    groups: BTreeMap<Group, Value>,
    /// On a captured tree: the capture file and its JSON.
    capture: Option<(String, Value)>,
}

fn read_device(host: &Host, ifname: &str, want: &[Group]) -> Result<Device> {
    let mut d = Device { features: None, groups: BTreeMap::new(), capture: None };
    if want.is_empty() {
        return Ok(d);
    }
    if host.system().ethtool_store() == EthtoolStore::Kernel {
        for &g in want {
            if g == Group::Features {
                match host.system().ethtool_features(ifname) {
                    Ok(all) => {
                        d.features = Some(all.into_iter().map(|f| (f.name.clone(), f.active, f.is_fixed())).collect())
                    }
                    Err(e) if e.is_unsupported() => {}
                    Err(e) => return Err(fail(format!("{ifname}: {e}"))),
                }
                continue;
            }
            match host.system().ethtool_read(ifname, g) {
                Ok(v) => {
                    d.groups.insert(g, v);
                }
                Err(e) if e.is_unsupported() => {}
                Err(e) => return Err(fail(format!("{ifname}: {e}"))),
            }
        }
        return Ok(d);
    }
    let path = format!("{ETHTOOL_CAPTURE_DIR}/{ifname}.json");
    let c = match crate::facts::nic::read_capture(host, ifname) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(fail(format!(
                "{ifname}: no captured ethtool state ({path} under root); on a captured tree the ethtool settings act on the state `lltune capture` stored"
            )));
        }
        Err(CaptureError::Unreadable(e)) => return Err(fail(format!("{ifname}: {e}"))),
        Err(CaptureError::Malformed { path, reason }) => {
            return Err(fail(format!("{ifname}: {path}: not a capture of ethtool state: {reason}")));
        }
    };
    // The typed state, as the live path reads it: flags are booleans, a field the capture
    // leaves out is 0 (as the kernel's struct would hold it).
    let st = &c.state;
    if let Some(features) = &st.features {
        let fixed = st.features_fixed.as_deref().unwrap_or_default();
        d.features = Some(features.iter().map(|(k, on)| (k.clone(), *on, fixed.contains(k))).collect());
    }
    let groups = [
        (Group::Coalesce, st.coalesce.as_ref().map(serde_json::to_value)),
        (Group::Rings, st.rings.as_ref().map(serde_json::to_value)),
        (Group::Channels, st.channels.as_ref().map(serde_json::to_value)),
        (Group::Pause, st.pause.as_ref().map(serde_json::to_value)),
    ];
    for (g, v) in groups {
        if let Some(v) = v {
            d.groups.insert(g, v.map_err(|e| fail(format!("{ifname}: {path}: {e}")))?);
        }
    }
    let (path, doc) = (c.path, c.doc);
    d.capture = Some((path, doc));
    Ok(d)
}

/// Before and after of one setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    pub before: Value,
    pub after: Value,
    pub changed: bool,
}

/// What the task does to one interface.
#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    pub name: String,
    pub driver: Option<String>,
    pub pci: Option<String>,
    pub changed: bool,
    /// Channels change: the driver re-creates the queues and their IRQs.
    pub queues_recreated: bool,
    /// `features.rx-gro`, `rings.rx`, `queues.rx-0.rps_cpus`, ... → before/after.
    pub settings: BTreeMap<String, Setting>,
}

/// The settings of every entry that selects an interface, merged in order (later wins).
#[derive(Debug, Default)]
struct Wanted {
    groups: BTreeMap<Group, Map<String, Value>>,
    rps_cpus: Option<Value>,
    rps_flow_cnt: Option<Value>,
    xps_cpus: Option<Value>,
    /// Selected by `all` only: queues that are not there are skipped, not refused.
    lenient: bool,
}

impl Wanted {
    fn add(&mut self, s: &Spec) {
        for (g, m) in [
            (Group::Features, &s.features),
            (Group::Coalesce, &s.coalesce),
            (Group::Rings, &s.rings),
            (Group::Channels, &s.channels),
            (Group::Pause, &s.pause),
        ] {
            if let Some(m) = m {
                let into = self.groups.entry(g).or_default();
                for (k, v) in m {
                    into.insert(k.clone(), v.clone());
                }
            }
        }
        self.rps_cpus = s.rps_cpus.clone().or(self.rps_cpus.take());
        self.rps_flow_cnt = s.rps_flow_cnt.clone().or(self.rps_flow_cnt.take());
        self.xps_cpus = s.xps_cpus.clone().or(self.xps_cpus.take());
    }
}

/// Checks the names and value types of one entry, before any device is looked at.
fn validate_spec(i: usize, s: &Spec) -> Result<()> {
    let at = format!("interfaces[{i}]");
    let selectors = [s.all, s.name.is_some(), s.pci.is_some(), s.driver.is_some()].iter().filter(|b| **b).count();
    if selectors != 1 {
        return Err(fail(format!("{at}: give exactly one of name, pci, driver, all")));
    }
    let ethtool = [&s.features, &s.coalesce, &s.rings, &s.channels, &s.pause];
    if s.all && ethtool.iter().any(|g| g.is_some()) {
        return Err(fail(format!(
            "{at}: all takes only the queue settings rps_cpus, rps_flow_cnt and xps_cpus; name the interfaces for features, coalesce, rings, channels and pause"
        )));
    }
    if let Some(n) = &s.name {
        if !valid_ifname(n) {
            return Err(fail(format!("{at}.name: {:?} is not an interface name", cap_text(n))));
        }
    }
    if let Some(p) = &s.pci {
        let ok = p.len() <= 16 && !p.is_empty() && p.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        if !ok {
            return Err(fail(format!("{at}.pci: {:?} is not a PCI address (0000:3b:00.0)", cap_text(p))));
        }
    }
    if let Some(d) = &s.driver {
        if d.is_empty() || d.len() > 64 || !d.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
            return Err(fail(format!("{at}.driver: {:?} is not a driver name", cap_text(d))));
        }
    }
    for (k, v) in s.features.iter().flatten() {
        if as_bool(v).is_none() {
            return Err(fail(format!("{at}.features.{}: expected on/off (a boolean)", cap_text(k))));
        }
        if k.is_empty() || k.len() > 64 {
            return Err(fail(format!("{at}.features: {:?} is not a feature name", cap_text(k))));
        }
    }
    for (k, v) in s.coalesce.iter().flatten() {
        match COALESCE.iter().find(|(n, _)| n == k) {
            None => {
                return Err(fail(format!(
                    "{at}.coalesce: unknown setting {}; supported: {}",
                    cap_text(k),
                    names(COALESCE.iter().map(|c| c.0))
                )));
            }
            Some((n, _)) if n.starts_with("adaptive") && as_bool(v).is_none() => {
                return Err(fail(format!("{at}.coalesce.{n}: expected on/off (a boolean)")));
            }
            Some((n, _)) if !n.starts_with("adaptive") && as_uint(v, u32::MAX.into()).is_none() => {
                return Err(fail(format!("{at}.coalesce.{n}: expected an integer from 0 to {}", u32::MAX)));
            }
            _ => {}
        }
    }
    for (k, v) in s.rings.iter().flatten() {
        if !RINGS.iter().any(|r| r.0 == k) {
            return Err(fail(format!(
                "{at}.rings: unknown setting {}; supported: {}",
                cap_text(k),
                names(RINGS.iter().map(|r| r.0))
            )));
        }
        if v.as_str() != Some("max") && as_uint(v, u32::MAX.into()).is_none() {
            return Err(fail(format!("{at}.rings.{k}: expected a number of descriptors or \"max\"")));
        }
    }
    for (k, v) in s.channels.iter().flatten() {
        if !CHANNELS.iter().any(|r| r.0 == k) {
            return Err(fail(format!(
                "{at}.channels: unknown setting {}; supported: {}",
                cap_text(k),
                names(CHANNELS.iter().map(|r| r.0))
            )));
        }
        if as_uint(v, u32::MAX.into()).is_none() {
            return Err(fail(format!("{at}.channels.{k}: expected a number of channels")));
        }
    }
    for (k, v) in s.pause.iter().flatten() {
        if !PAUSE.iter().any(|r| r.0 == k) {
            return Err(fail(format!(
                "{at}.pause: unknown setting {}; supported: {}",
                cap_text(k),
                names(PAUSE.iter().map(|r| r.0))
            )));
        }
        if as_bool(v).is_none() {
            return Err(fail(format!("{at}.pause.{k}: expected on/off (a boolean)")));
        }
    }
    for (key, v) in [("rps_cpus", &s.rps_cpus), ("xps_cpus", &s.xps_cpus)] {
        if let Some(v) = v {
            cpus_of(v).map_err(|e| fail(format!("{at}.{key}: {e}")))?;
        }
    }
    if let Some(v) = &s.rps_flow_cnt {
        if as_uint(v, 1 << 31).is_none() {
            return Err(fail(format!("{at}.rps_flow_cnt: expected an integer from 0 to {}", 1u64 << 31)));
        }
    }
    Ok(())
}

/// A CPU list option: a cpulist string (`"2-5"`, `""` for none) or one CPU number.
fn cpus_of(v: &Value) -> Result<CpuList, String> {
    match v {
        Value::String(s) => CpuList::parse(s).map_err(|e| cap_text(&e.to_string())),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .and_then(|n| CpuList::parse(&n.to_string()).ok())
            .ok_or_else(|| format!("{n} is not a CPU number")),
        _ => Err("expected a CPU list such as \"2-5\" (\"\" for none)".into()),
    }
}

/// A device feature as ethtool's feature strings give it: name, active, changeable.
type Feature = (String, bool, bool);

/// The kernel feature names a `features` key stands for on this device, with their state.
fn resolve_feature<'a>(ifname: &str, key: &str, feats: &'a [Feature]) -> Result<(Vec<&'a Feature>, bool)> {
    let alias = FEATURE_ALIASES.iter().find(|(s, l, _)| *s == key || *l == key);
    if let Some((_, _, pattern)) = alias {
        let p = glob::Pattern::new(pattern).map_err(|e| fail(format!("internal error: {pattern}: {e}")))?;
        let hits: Vec<_> = feats.iter().filter(|f| p.matches(&f.0)).collect();
        if hits.is_empty() {
            return Err(fail(format!("{ifname}: features.{key}: the device has no feature {pattern}")));
        }
        return Ok((hits, true));
    }
    match feats.iter().find(|f| f.0 == key) {
        Some(f) => Ok((vec![f], false)),
        None => Err(fail(format!(
            "{ifname}: features.{}: unknown feature (neither a feature of this device, as `ethtool -k` names them, nor one of ethtool's aliases {})",
            cap_text(key),
            names(FEATURE_ALIASES.iter().map(|a| a.0))
        ))),
    }
}

/// One interface's part of the plan.
struct IfacePlan {
    report: Interface,
    /// Group → uapi changes (feature names for features).
    changes: BTreeMap<Group, Map<String, Value>>,
    /// Group → (before lines, after lines) in `ethtool -k`-style text.
    lines: BTreeMap<Group, (String, String)>,
    /// Sysfs queue writes: (path, value), and their diff lines.
    queue_writes: Vec<(String, String)>,
    queue_lines: (String, String),
    /// What `all` could not set on this netdev (no queues, no such file), named in a warning.
    skipped: Vec<String>,
}

fn plan_interface(host: &Host, nic: &Nic, ifname: &str, w: &Wanted, cpus: &CpuInfo) -> Result<(IfacePlan, Device)> {
    let want_groups: Vec<Group> = w.groups.keys().copied().collect();
    let dev = read_device(host, ifname, &want_groups)?;
    let mut p = IfacePlan {
        report: Interface {
            name: ifname.to_string(),
            driver: nic.driver.clone(),
            pci: nic.pci_address.clone(),
            changed: false,
            queues_recreated: false,
            settings: BTreeMap::new(),
        },
        changes: BTreeMap::new(),
        lines: BTreeMap::new(),
        queue_writes: Vec::new(),
        queue_lines: (String::new(), String::new()),
        skipped: Vec::new(),
    };
    let record = |p: &mut IfacePlan, group: Group, label: String, field: &str, before: Value, after: Value| {
        let changed = before != after;
        if changed {
            p.changes.entry(group).or_default().insert(field.to_string(), after.clone());
            let l = p.lines.entry(group).or_default();
            l.0.push_str(&format!("{label}: {}\n", show(&before)));
            l.1.push_str(&format!("{label}: {}\n", show(&after)));
        }
        p.report.settings.insert(format!("{group}.{label}"), Setting { before, after, changed });
    };

    for (group, wanted) in &w.groups {
        let group = *group;
        if group == Group::Features {
            let Some(feats) = dev.features.as_deref() else {
                return Err(fail(format!("{ifname}: features: the device reports no features (ETHTOOL_GFEATURES)")));
            };
            // Kernel feature name → wanted state; later keys win.
            let mut set: BTreeMap<&str, bool> = BTreeMap::new();
            for (key, v) in wanted {
                let on = as_bool(v).unwrap_or(false);
                let (hits, alias) = resolve_feature(ifname, key, feats)?;
                let changeable: Vec<_> = hits.iter().filter(|f| !f.2).collect();
                if changeable.is_empty() || !alias {
                    if let Some(f) = hits.iter().find(|f| f.2 && f.1 != on) {
                        return Err(fail(format!(
                            "{ifname}: features.{key}: {} is fixed on this device ([fixed] in ethtool -k); it stays {}",
                            f.0,
                            show(&Value::Bool(f.1))
                        )));
                    }
                }
                // An alias sets the features of its pattern that can change, as ethtool -K does.
                let targets: Vec<_> = if alias && !changeable.is_empty() { changeable } else { hits.iter().collect() };
                for f in targets {
                    set.insert(f.0.as_str(), on);
                }
            }
            for (name, on) in set {
                let before = feats.iter().find(|f| f.0 == name).map(|f| f.1).unwrap_or(false);
                record(&mut p, group, name.to_string(), name, Value::Bool(before), Value::Bool(on));
            }
            continue;
        }
        let Some(now) = dev.groups.get(&group) else {
            let what = match group {
                Group::Coalesce => "interrupt coalescing (ethtool -c)",
                Group::Rings => "ring sizes (ethtool -g)",
                Group::Channels => "channels (ethtool -l)",
                _ => "pause frames (ethtool -a)",
            };
            let key = wanted.keys().next().map(String::as_str).unwrap_or("");
            return Err(fail(format!("{ifname}: {group}.{key}: the device does not support setting {what}")));
        };
        let num = |field: &str| now.get(field).and_then(Value::as_u64).unwrap_or(0);
        for (key, v) in wanted {
            match group {
                Group::Coalesce => {
                    let field = COALESCE.iter().find(|c| c.0 == key).map(|c| c.1).unwrap_or_default();
                    let after = if key.starts_with("adaptive") {
                        Value::Bool(as_bool(v).unwrap_or(false))
                    } else {
                        json!(as_uint(v, u32::MAX.into()).unwrap_or(0))
                    };
                    let Some(before) = now.get(field).cloned() else {
                        return Err(fail(format!("{ifname}: coalesce.{key}: the device does not report it")));
                    };
                    record(&mut p, group, key.clone(), field, before, after);
                }
                Group::Rings | Group::Channels => {
                    let table = if group == Group::Rings { RINGS } else { CHANNELS };
                    let (_, field, max_field) = table.iter().find(|r| r.0 == key).copied().unwrap_or_default();
                    let max = num(max_field);
                    let after = if v.as_str() == Some("max") { max } else { as_uint(v, u32::MAX.into()).unwrap_or(0) };
                    let before = num(field);
                    if after != before && max == 0 {
                        return Err(fail(format!(
                            "{ifname}: {group}.{key}: the device has no {key} {} (maximum 0)",
                            if group == Group::Rings { "ring" } else { "channels" }
                        )));
                    }
                    if after > max {
                        return Err(fail(format!(
                            "{ifname}: {group}.{key}: {after} is above the device's maximum of {max}"
                        )));
                    }
                    record(&mut p, group, key.clone(), field, json!(before), json!(after));
                }
                Group::Pause => {
                    let field = PAUSE.iter().find(|c| c.0 == key).map(|c| c.1).unwrap_or_default();
                    let before = Value::Bool(now.get(field).and_then(Value::as_bool).unwrap_or(false));
                    record(&mut p, group, key.clone(), field, before, Value::Bool(as_bool(v).unwrap_or(false)));
                }
                Group::Features => {}
            }
        }
        if group == Group::Channels {
            // The kernel refuses a set of channels without one for RX and one for TX
            // (`ethtool_set_channels`, net/ethtool/ioctl.c; the netlink path checks the same).
            let after = |field: &str| {
                p.changes.get(&group).and_then(|c| c.get(field)).and_then(Value::as_u64).unwrap_or_else(|| num(field))
            };
            let (combined, rx, tx) = (after("combined_count"), after("rx_count"), after("tx_count"));
            if p.changes.contains_key(&group) && combined == 0 && (rx == 0 || tx == 0) {
                return Err(fail(format!(
                    "{ifname}: channels: combined 0 with rx {rx} and tx {tx} leaves no {} channel; the kernel refuses it",
                    if rx == 0 { "RX" } else { "TX" }
                )));
            }
        }
    }
    p.report.queues_recreated = p.changes.contains_key(&Group::Channels);
    plan_queues(host, ifname, w, cpus, &mut p)?;
    p.report.changed = p.report.settings.values().any(|s| s.changed);
    Ok((p, dev))
}

/// What the host's CPUs are, for checking and formatting CPU masks.
struct CpuInfo {
    /// Online CPUs (else possible); `None` when the host does not say.
    present: Option<CpuList>,
    /// `nr_cpu_ids`: the width of the kernel's masks.
    nr_cpu_ids: Option<u32>,
}

fn cpu_info(host: &Host) -> CpuInfo {
    let list = |name: &str| read_cpu_list(host, name).ok().flatten().filter(|l| !l.is_empty());
    let possible = list("possible");
    let online = list("online");
    CpuInfo {
        nr_cpu_ids: possible.as_ref().or(online.as_ref()).and_then(|l| l.last()).map(|l| l + 1),
        present: online.or(possible),
    }
}

/// `rx-3` → ("rx", 3).
fn queue_name(e: &str) -> Option<(&str, u32)> {
    let (kind, n) = e.split_once('-')?;
    matches!(kind, "rx" | "tx").then_some(())?;
    Some((kind, n.parse().ok()?))
}

fn plan_queues(host: &Host, ifname: &str, w: &Wanted, cpus: &CpuInfo, p: &mut IfacePlan) -> Result<()> {
    if w.rps_cpus.is_none() && w.rps_flow_cnt.is_none() && w.xps_cpus.is_none() {
        return Ok(());
    }
    let qdir = format!("/sys/class/net/{ifname}/queues");
    let mut queues: Vec<(&str, u32)> = Vec::new();
    let entries = match host.list(&qdir) {
        Ok(e) => e,
        Err(e) if w.lenient => {
            p.skipped.push(format!("{ifname}: {e}"));
            return Ok(());
        }
        Err(e) => return Err(fail(format!("{ifname}: {e}"))),
    };
    for e in &entries {
        if let Some(q) = queue_name(e) {
            queues.push(q);
        }
    }
    crate::sort::sort_by(&mut queues, Ord::cmp);
    let mut wanted: Vec<(&str, &str, Value)> = Vec::new();
    if let Some(v) = &w.rps_cpus {
        wanted.push(("rx", "rps_cpus", v.clone()));
    }
    if let Some(v) = &w.rps_flow_cnt {
        let n = as_uint(v, 1 << 31).unwrap_or(0);
        wanted.push(("rx", "rps_flow_cnt", json!(if n == 0 { 0 } else { n.next_power_of_two() })));
    }
    if let Some(v) = &w.xps_cpus {
        wanted.push(("tx", "xps_cpus", v.clone()));
    }
    for (kind, file, v) in wanted {
        let mine: Vec<u32> = queues.iter().filter(|q| q.0 == kind).map(|q| q.1).collect();
        if mine.is_empty() {
            if w.lenient {
                p.skipped.push(format!("{ifname}: {file}: no {kind} queues under {qdir}"));
                continue;
            }
            return Err(fail(format!("{ifname}: {file}: no {kind} queues under {qdir}")));
        }
        let cpu_value = if file == "rps_flow_cnt" { None } else { Some(cpus_of(&v).map_err(fail)?) };
        if let (Some(want), Some(present)) = (&cpu_value, &cpus.present) {
            let missing = want.difference(present);
            if !missing.is_empty() {
                return Err(fail(format!(
                    "{ifname}: {file}: CPUs {missing} are not online on this host (online: {present})"
                )));
            }
        }
        for n in mine {
            let path = format!("{qdir}/{kind}-{n}/{file}");
            let text = match host.read(&path) {
                Ok(t) => t,
                Err(e) if w.lenient && e.is_not_found() => {
                    p.skipped.push(format!("{ifname}: {path} does not exist"));
                    continue;
                }
                Err(e) => return Err(fail(format!("{ifname}: {file}: {e}"))),
            };
            let label = format!("queues.{kind}-{n}.{file}");
            match &cpu_value {
                Some(want) => {
                    let before = CpuList::parse_mask(&text)
                        .map_err(|e| fail(format!("{ifname}: {path}: {}", cap_text(&e.to_string()))))?;
                    let changed = before != *want;
                    if changed {
                        let width = cpus.nr_cpu_ids.unwrap_or_else(|| {
                            (text.trim().chars().filter(char::is_ascii_hexdigit).count() * 4) as u32
                        });
                        let mask = want.to_mask(width);
                        p.queue_lines.0.push_str(&format!(
                            "{kind}-{n}/{file}: {} ({})\n",
                            text.trim(),
                            cpus_text(&before)
                        ));
                        p.queue_lines.1.push_str(&format!("{kind}-{n}/{file}: {mask} ({})\n", cpus_text(want)));
                        p.queue_writes.push((path.clone(), mask));
                    }
                    p.report.settings.insert(
                        label,
                        Setting { before: json!(before.to_string()), after: json!(want.to_string()), changed },
                    );
                }
                None => {
                    let before: u64 = text
                        .trim()
                        .parse()
                        .map_err(|_| fail(format!("{ifname}: {path}: {:?} is not a number", cap_text(text.trim()))))?;
                    let after = v.as_u64().unwrap_or(0);
                    let changed = before != after;
                    if changed {
                        p.queue_lines.0.push_str(&format!("{kind}-{n}/{file}: {before}\n"));
                        p.queue_lines.1.push_str(&format!("{kind}-{n}/{file}: {after}\n"));
                        p.queue_writes.push((path.clone(), after.to_string()));
                    }
                    p.report.settings.insert(label, Setting { before: json!(before), after: json!(after), changed });
                }
            }
        }
    }
    Ok(())
}

/// The loopback device (`type` 772, ARPHRD_LOOPBACK; `lo` where the file says nothing).
fn is_loopback(host: &Host, ifname: &str) -> bool {
    match host.attr(&format!("/sys/class/net/{ifname}/type")) {
        Some(t) => t == "772",
        None => ifname == "lo",
    }
}

fn cpus_text(l: &CpuList) -> String {
    if l.is_empty() { "none".into() } else { l.to_string() }
}

/// Whether the entry `s` selects the netdev `n`.
fn selects(host: &Host, s: &Spec, n: &Nic) -> bool {
    match (&s.name, &s.pci, &s.driver) {
        _ if s.all => n.name.as_deref().is_some_and(|name| !is_loopback(host, name)),
        (Some(name), _, _) => n.name.as_ref() == Some(name),
        (_, Some(pci), _) => n.pci_address.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(pci)),
        (_, _, Some(d)) => n.driver.as_ref() == Some(d),
        _ => false,
    }
}

/// The entries of `interfaces` that select the netdev `ifname`, each narrowed to it (`name:
/// ifname` in place of `all`, `pci` or `driver`), in order: what `lltune reapply --interface`
/// applies. An entry by name selects it even when the netdev is not there (the run then
/// says so); an `all` entry is narrowed like the others, so a queue it lacks is refused
/// rather than skipped.
pub fn specs_for_interface(host: &Host, interfaces: &[Spec], ifname: &str) -> Vec<Spec> {
    let mut scan = Scan::new(host, ScanOptions::default());
    let nics = crate::facts::nic::read(&mut scan);
    let nic = nics.iter().find(|n| n.name.as_deref() == Some(ifname));
    interfaces
        .iter()
        .filter(|s| match nic {
            Some(n) => selects(host, s, n),
            None => s.name.as_deref() == Some(ifname),
        })
        .map(|s| Spec { all: false, name: Some(ifname.to_string()), pci: None, driver: None, ..s.clone() })
        .collect()
}

/// The interfaces each entry selects, in order of first selection.
fn select(host: &Host, params: &Params, nics: &[Nic]) -> Result<Vec<(String, Vec<usize>)>> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, s) in params.interfaces.iter().enumerate() {
        let at = format!("interfaces[{i}]");
        let hits: Vec<&String> = nics.iter().filter(|n| selects(host, s, n)).filter_map(|n| n.name.as_ref()).collect();
        if hits.is_empty() && !s.all {
            let what = match (&s.name, &s.pci, &s.driver) {
                (Some(n), _, _) => format!("no interface named {n} under /sys/class/net"),
                (_, Some(p), _) => format!("no interface on PCI device {p}"),
                (_, _, Some(d)) => format!("no interface bound to driver {d}"),
                _ => String::new(),
            };
            return Err(fail(format!("{at}: {what}")));
        }
        for h in hits {
            if !valid_ifname(h) {
                return Err(fail(format!("{at}: {:?} is not an interface name lltune handles", cap_text(h))));
            }
            match out.iter_mut().find(|(n, _)| n == h) {
                Some((_, idx)) => idx.push(i),
                None => out.push((h.clone(), vec![i])),
            }
        }
    }
    Ok(out)
}

/// What the task would change. Reads the host, writes nothing.
pub fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
    if params.interfaces.is_empty() {
        return Err(fail("option interfaces: give at least one interface"));
    }
    for (i, s) in params.interfaces.iter().enumerate() {
        validate_spec(i, s)?;
    }
    let mut scan = Scan::new(host, ScanOptions::default());
    let nics = crate::facts::nic::read(&mut scan);
    let selected = select(host, params, &nics)?;
    let cpus = cpu_info(host);
    // SIOCETHTOOL on the running kernel, or an edit of the tree's capture file.
    let by_ioctl = host.system().ethtool_store() == EthtoolStore::Kernel;

    let mut plans = Vec::new();
    for (ifname, idx) in &selected {
        let mut w = Wanted { lenient: idx.iter().all(|&i| params.interfaces[i].all), ..Wanted::default() };
        for &i in idx {
            w.add(&params.interfaces[i]);
        }
        let nic = nics.iter().find(|n| n.name.as_ref() == Some(ifname)).cloned().unwrap_or_default();
        plans.push(plan_interface(host, &nic, ifname, &w, &cpus)?);
    }

    let mut out = engine::Plan::default();
    // Coalescing first (the one refusal the ioctl cannot predict), channels last (they
    // re-create the queues whose RPS/XPS are written before).
    let order = [Group::Coalesce, Group::Pause, Group::Rings, Group::Features];
    if by_ioctl {
        for g in order {
            for (p, _) in &plans {
                if let Some(c) = p.changes.get(&g) {
                    out.actions.push(Action::SetEthtool {
                        ifname: p.report.name.clone(),
                        group: g,
                        changes: c.clone(),
                    });
                }
            }
        }
    } else {
        for (p, dev) in &plans {
            if p.changes.is_empty() {
                continue;
            }
            let Some((path, doc)) = &dev.capture else { continue };
            let mut doc = doc.clone();
            for (g, c) in &p.changes {
                let obj = doc.get_mut(g.name()).and_then(Value::as_object_mut);
                if let Some(obj) = obj {
                    for (k, v) in c {
                        obj.insert(k.clone(), v.clone());
                    }
                }
            }
            let mut text = serde_json::to_string_pretty(&doc).map_err(|e| fail(format!("{path}: {e}")))?;
            text.push('\n');
            out.actions.push(Action::WriteFile { path: path.clone(), contents: text.into_bytes() });
        }
    }
    for (p, _) in &plans {
        for (path, value) in &p.queue_writes {
            out.actions.push(Action::WriteKernel { path: path.clone(), value: value.clone() });
        }
    }
    if by_ioctl {
        for (p, _) in &plans {
            if let Some(c) = p.changes.get(&Group::Channels) {
                out.actions.push(Action::SetEthtool {
                    ifname: p.report.name.clone(),
                    group: Group::Channels,
                    changes: c.clone(),
                });
            }
        }
    }

    for (p, _) in &plans {
        let name = &p.report.name;
        for g in Group::ALL {
            if let Some((before, after)) = p.lines.get(&g) {
                let header = format!("ethtool {} {name}", g.show_flag());
                out.diff.push(Diff {
                    before_header: header.clone(),
                    after_header: header,
                    before: before.clone(),
                    after: after.clone(),
                });
            }
        }
        if !p.queue_writes.is_empty() {
            let header = format!("/sys/class/net/{name}/queues");
            out.diff.push(Diff {
                before_header: header.clone(),
                after_header: header,
                before: p.queue_lines.0.clone(),
                after: p.queue_lines.1.clone(),
            });
        }
        if !p.skipped.is_empty() {
            out.warnings.push(format!("all: skipped {}", p.skipped.join("; ")));
        }
        if p.report.queues_recreated {
            out.warnings.push(format!(
                "{name}: channels change: the driver re-creates the queues and their IRQs{}; run the IRQ affinity rules (lltune_irq) after this task, and run this task again if it sets RPS/XPS on queues that are new",
                if by_ioctl { "" } else { " (simulated: the captured tree's queue folders stay as they are)" }
            ));
        }
    }
    out.field("interfaces", plans.iter().map(|(p, _)| &p.report).collect::<Vec<_>>());
    out.field("simulated", !by_ioctl);
    Ok(out)
}

/// The module, as the engine's runner sees it.
pub struct NicModule;

impl Module for NicModule {
    const NAME: &'static str = MODULE;
    type Params = Params;

    fn backup_id(params: &Params) -> Option<&str> {
        params.backup_id.as_deref()
    }

    fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
        plan(host, params)
    }

    fn persist_state(params: &Params) -> Option<Map<String, Value>> {
        engine::persist::options_of(params, params.persist)
    }
}

pub fn run(host: &Host, meta: &Meta, params: Params) -> Result<Outcome> {
    engine::run::<NicModule>(host, meta, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feats(list: &[(&str, bool, bool)]) -> Vec<(String, bool, bool)> {
        list.iter().map(|(n, a, f)| (n.to_string(), *a, *f)).collect()
    }

    #[test]
    fn aliases_expand_as_ethtool_does() {
        let f = feats(&[
            ("tx-tcp-segmentation", true, false),
            ("tx-tcp6-segmentation", true, false),
            ("tx-tcp-ecn-segmentation", false, true),
            ("tx-udp-segmentation", false, false),
            ("tx-scatter-gather", true, false),
            ("tx-scatter-gather-fraglist", false, true),
            ("rx-gro", true, false),
            ("rx-gro-hw", true, true),
        ]);
        let (hits, alias) = resolve_feature("eth0", "tso", &f).unwrap();
        assert!(alias);
        let names: Vec<&str> = hits.iter().map(|h| h.0.as_str()).collect();
        assert_eq!(names, ["tx-tcp-segmentation", "tx-tcp6-segmentation", "tx-tcp-ecn-segmentation"]);
        let (hits, _) = resolve_feature("eth0", "generic-receive-offload", &f).unwrap();
        assert_eq!(hits[0].0, "rx-gro");
        assert_eq!(resolve_feature("eth0", "sg", &f).unwrap().0.len(), 2);
        let (hits, alias) = resolve_feature("eth0", "rx-gro-hw", &f).unwrap();
        assert!(!alias && hits[0].2);
        let e = format!("{:#}", resolve_feature("eth0", "rx-grow", &f).unwrap_err());
        assert!(e.contains("eth0: features.rx-grow: unknown feature"), "{e}");
        assert!(resolve_feature("eth0", "lro", &f).is_err());
    }

    #[test]
    fn values_are_read_as_ethtool_users_write_them() {
        assert_eq!(as_bool(&json!("off")), Some(false));
        assert_eq!(as_bool(&json!(1)), Some(true));
        assert_eq!(as_bool(&json!("maybe")), None);
        assert_eq!(as_uint(&json!("4096"), u32::MAX.into()), Some(4096));
        assert_eq!(as_uint(&json!(-1), u32::MAX.into()), None);
        assert_eq!(as_uint(&json!(1u64 << 33), u32::MAX.into()), None);
        assert_eq!(cpus_of(&json!("")).unwrap(), CpuList::new());
        assert_eq!(cpus_of(&json!(3)).unwrap().to_string(), "3");
        assert!(cpus_of(&json!(true)).is_err());
        assert_eq!(queue_name("rx-12"), Some(("rx", 12)));
        assert_eq!(queue_name("xx-1"), None);
    }

    #[test]
    fn every_entry_is_validated_before_any_device_is_read() {
        let bad = |s: Spec| format!("{:#}", validate_spec(0, &s).unwrap_err());
        let name = || Spec { name: Some("eth0".into()), ..Spec::default() };
        assert!(bad(Spec::default()).contains("exactly one of name, pci, driver"));
        assert!(bad(Spec { driver: Some("x".into()), ..name() }).contains("exactly one"));
        assert!(bad(Spec { name: Some("a/b".into()), ..Spec::default() }).contains("not an interface name"));
        let m = |v: Value| v.as_object().cloned();
        assert!(
            bad(Spec { coalesce: m(json!({"rx-usec": 1})), ..name() }).contains("coalesce: unknown setting rx-usec")
        );
        assert!(bad(Spec { rings: m(json!({"rx": "lots"})), ..name() }).contains("rings.rx"));
        assert!(bad(Spec { channels: m(json!({"queues": 2})), ..name() }).contains("channels: unknown setting queues"));
        assert!(bad(Spec { pause: m(json!({"rx": "sometimes"})), ..name() }).contains("pause.rx"));
        assert!(bad(Spec { features: m(json!({"gro": 2})), ..name() }).contains("features.gro"));
        assert!(bad(Spec { rps_cpus: Some(json!("2-x")), ..name() }).contains("rps_cpus"));
        assert!(validate_spec(0, &Spec { rings: m(json!({"rx": "max", "tx": 4096})), ..name() }).is_ok());
    }
}
