//! lltune_cpu: CPU power and housekeeping at run time — cpufreq governor, energy-performance
//! preference (EPP), turbo, cpuidle states, per-CPU PM QoS resume latency, energy/performance
//! bias, uncore frequency limits, machine-check `ignore_ce` — the unbound-workqueue cpumasks,
//! and systemd's `CPUAffinity=` in a system.conf.d drop-in (effective at the next boot).
//!
//! Sources: Documentation/admin-guide/pm/cpufreq.rst, intel_pstate.rst, cpuidle.rst
//! (`stateN/disable`), core-api/workqueue.rst (`cpumask`), systemd-system.conf(5),
//! ABI/testing/sysfs-devices-power (`pm_qos_resume_latency_us`: `0` no constraint, `n/a` no
//! latency accepted), sysfs-devices-system-cpu (`energy_perf_bias`),
//! admin-guide/pm/intel_uncore_frequency_scaling.rst, x86/x86_64/machinecheck.rst.
//!
//! The surprising parts: several CPUs can share one cpufreq policy (`cpuN/cpufreq` links to
//! `cpufreq/policyM`), so writes are made once per resolved file; intel_pstate in active
//! mode pins EPP to `performance` under the `performance` governor and rejects any other
//! EPP (EBUSY), so that combination is refused before anything is written; EPP `default`
//! reads back as the driver's default preference, never as `default`, so it is refused.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::cpulist::CpuList;
use crate::engine::state::Action;
use crate::engine::{self, Module};
use crate::facts::cpu::{CPU_DIR, CpuListFileError, online_by_folders, read_cpu_list};
use crate::host::Host;
use crate::protocol::{Diff, Failure, Meta, Outcome, cap_text, lenient_bool};

pub const MODULE: &str = crate::names::CPU;
pub const CPU: &str = CPU_DIR;
/// The systemd drop-in that carries `systemd_cpu_affinity`.
pub const AFFINITY_FILE: &str = "/etc/systemd/system.conf.d/50-lltune.conf";
pub const WORKQUEUE_MASK: &str = "/sys/devices/virtual/workqueue/cpumask";
pub const WRITEBACK_MASK: &str = "/sys/bus/workqueue/devices/writeback/cpumask";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// CPUs the per-CPU settings apply to; default every online CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<CpuList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epp: Option<String>,
    #[serde(default, deserialize_with = "opt_bool", skip_serializing_if = "Option::is_none")]
    pub turbo: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cstates: Option<Cstates>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workqueue_cpumask: Option<CpuList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_cpu_affinity: Option<CpuList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pm_qos_resume_latency_us: Option<PmQos>,
    /// 0-15 or a name of `config::EPB_NAMES`, on `cpus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_perf_bias: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncore: Option<Uncore>,
    #[serde(default, deserialize_with = "opt_bool", skip_serializing_if = "Option::is_none")]
    pub mce_ignore_ce: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub persist: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
}

/// `cstates`: one of the two forms.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cstates {
    /// Disable every state whose exit latency is above this (µs), enable the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_us: Option<u64>,
    /// Disable the states of these names (others untouched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable: Option<Vec<String>>,
    /// The deepest C-state allowed, by the number in the state's name (`C1E` is 1, `C6` is
    /// 6): deeper ones are disabled, the others enabled (the config's `cpu.cstate_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cstate: Option<u32>,
}

/// `pm_qos_resume_latency_us`: `value` on `cpus` (default every online CPU).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PmQos {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<CpuList>,
    /// µs (`0`: no constraint) or `"n/a"` (no latency accepted).
    pub value: Value,
}

/// `uncore`: kHz (100 MHz steps) or `"min"`/`"max"` (each die's initial limits).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Uncore {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_freq_khz: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_freq_khz: Option<Value>,
}

pub const UNCORE_DIR: &str = "/sys/devices/system/cpu/intel_uncore_frequency";
pub const MCE_DIR: &str = "/sys/devices/system/machinecheck";

/// A number or a string option value as text (`0`, `"n/a"`).
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

/// An optional boolean written the Ansible way (`yes`, `"on"`, `1`).
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<bool>, D::Error> {
    lenient_bool(d).map(Some)
}

/// One setting that changes, on the CPUs listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub setting: String,
    /// `None` for host-wide settings (turbo, workqueue cpumasks).
    pub cpus: Option<String>,
    pub before: String,
    pub after: String,
}

fn fail(msg: impl Into<String>) -> anyhow::Error {
    Failure::new(msg).into()
}

/// A sysfs word (governor, EPP, state name) as given: one token of safe characters.
fn check_word(option: &str, v: &str) -> Result<()> {
    if v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric() || "_-+.".contains(c)) {
        return Err(fail(format!("option {option}: {:?} is not a valid value", cap_text(v))));
    }
    Ok(())
}

/// The online CPUs: `online`, or (dumps and old kernels without it) the `cpuN` folders, as
/// the facts count them (`facts::cpu`).
pub fn online_cpus(host: &Host) -> Result<CpuList> {
    match read_cpu_list(host, "online") {
        Ok(Some(online)) => return Ok(online),
        Ok(None) => {}
        Err(CpuListFileError::Unreadable(e)) => return Err(fail(format!("cannot read {CPU}/online: {e}"))),
        Err(e) => return Err(fail(e.to_string())),
    }
    let offline = read_cpu_list(host, "offline").ok().flatten().unwrap_or_default();
    let cpus = online_by_folders(host, &offline);
    if cpus.is_empty() {
        return Err(fail(format!("cannot tell the online CPUs: no {CPU}/online and no cpuN folders")));
    }
    Ok(cpus)
}

/// A CPU list option: not empty, every CPU online.
fn check_online(option: &str, list: &CpuList, online: &CpuList) -> Result<()> {
    if list.is_empty() {
        return Err(fail(format!("option {option}: the CPU list is empty")));
    }
    let off = list.difference(online);
    if !off.is_empty() {
        return Err(fail(format!("option {option}: CPUs {off} are not online (online: {online})")));
    }
    Ok(())
}

/// Collects the writes, one per resolved file, and groups what changes for the report.
#[derive(Default)]
struct Writes {
    actions: Vec<Action>,
    seen: BTreeSet<String>,
    groups: BTreeMap<(String, String, String), CpuList>,
}

impl Writes {
    /// `cpu` is `None` for host-wide settings.
    fn set(&mut self, host: &Host, setting: &str, cpu: Option<u32>, path: &str, before: &str, after: &str) {
        let key = (setting.to_string(), before.to_string(), after.to_string());
        let group = self.groups.entry(key).or_default();
        if let Some(c) = cpu {
            group.insert(c);
        }
        let real = host.resolve(path, true).unwrap_or_else(|_| path.to_string());
        if self.seen.insert(real) {
            self.actions.push(Action::WriteKernel { path: path.to_string(), value: after.to_string() });
        }
    }
}

fn words(host: &Host, path: &str) -> Vec<String> {
    host.read_opt(path).ok().flatten().map(|t| t.split_whitespace().map(str::to_string).collect()).unwrap_or_default()
}

/// What the task would change. Reads the host, writes nothing.
pub fn plan(host: &Host, p: &Params) -> Result<engine::Plan> {
    if p.governor.is_none()
        && p.epp.is_none()
        && p.turbo.is_none()
        && p.cstates.is_none()
        && p.workqueue_cpumask.is_none()
        && p.systemd_cpu_affinity.is_none()
        && p.pm_qos_resume_latency_us.is_none()
        && p.energy_perf_bias.is_none()
        && p.uncore.is_none()
        && p.mce_ignore_ce.is_none()
    {
        return Err(fail(
            "give at least one of governor, epp, turbo, cstates, workqueue_cpumask, systemd_cpu_affinity, pm_qos_resume_latency_us, energy_perf_bias, uncore, mce_ignore_ce",
        ));
    }
    let online = online_cpus(host)?;
    let cpus = p.cpus.clone().unwrap_or_else(|| online.clone());
    check_online("cpus", &cpus, &online)?;
    let mut out = engine::Plan::default();
    let mut w = Writes::default();

    if let Some(g) = &p.governor {
        check_word("governor", g)?;
        for n in cpus.iter() {
            let dir = format!("{CPU}/cpu{n}/cpufreq");
            let Some(now) = host.attr(&format!("{dir}/scaling_governor")) else {
                return Err(fail(format!("governor: CPU {n} has no cpufreq ({dir}/scaling_governor does not exist)")));
            };
            let offered = words(host, &format!("{dir}/scaling_available_governors"));
            if !offered.contains(g) {
                return Err(fail(format!(
                    "governor: CPU {n} does not offer {g:?} (scaling_available_governors: {})",
                    offered.join(" ")
                )));
            }
            if now != *g {
                w.set(host, "governor", Some(n), &format!("{dir}/scaling_governor"), &now, g);
            }
        }
    }

    if let Some(e) = &p.epp {
        check_word("epp", e)?;
        if e == "default" {
            return Err(fail(
                "epp: \"default\" reads back as the driver's default preference, never as \"default\"; name the preference (e.g. performance, balance_performance)",
            ));
        }
        let mut without = CpuList::new();
        for n in cpus.iter() {
            let dir = format!("{CPU}/cpu{n}/cpufreq");
            let Some(now) = host.attr(&format!("{dir}/energy_performance_preference")) else {
                without.insert(n);
                continue;
            };
            let offered = words(host, &format!("{dir}/energy_performance_available_preferences"));
            if !offered.contains(e) {
                return Err(fail(format!(
                    "epp: CPU {n} does not offer {e:?} (energy_performance_available_preferences: {})",
                    offered.join(" ")
                )));
            }
            let governor = p.governor.clone().or_else(|| host.attr(&format!("{dir}/scaling_governor")));
            let active = host.attr(&format!("{CPU}/intel_pstate/status")).as_deref() == Some("active");
            if active && governor.as_deref() == Some("performance") && e != "performance" {
                return Err(fail(format!(
                    "epp: CPU {n} runs intel_pstate (active) with the performance governor, which holds EPP at performance and refuses {e:?}"
                )));
            }
            if now != *e {
                w.set(host, "epp", Some(n), &format!("{dir}/energy_performance_preference"), &now, e);
            }
        }
        if !without.is_empty() {
            let driver = host.attr(&format!("{CPU}/cpu{}/cpufreq/scaling_driver", without.first().unwrap_or(0)));
            out.warnings.push(format!(
                "epp: CPUs {without} have no energy_performance_preference (driver {}); not set there",
                driver.unwrap_or_else(|| "none".into())
            ));
        }
    }

    if let Some(on) = p.turbo {
        let no_turbo = format!("{CPU}/intel_pstate/no_turbo");
        let boost = format!("{CPU}/cpufreq/boost");
        let (path, want) = if host.exists(&no_turbo) {
            (no_turbo, if on { "0" } else { "1" })
        } else if host.exists(&boost) {
            (boost, if on { "1" } else { "0" })
        } else {
            return Err(fail(format!("turbo: this host has neither {no_turbo} nor {boost}")));
        };
        let now = host.attr(&path).unwrap_or_default();
        if now != want {
            let name = path.rsplit('/').next().unwrap_or("turbo").to_string();
            w.set(host, &format!("turbo ({name})"), None, &path, &now, want);
        }
    }

    if let Some(c) = &p.cstates {
        cstates(host, c, &cpus, &mut w, &mut out.warnings)?;
    }

    if let Some(mask) = &p.workqueue_cpumask {
        check_online("workqueue_cpumask", mask, &online)?;
        let possible = host.attr(&format!("{CPU}/possible")).and_then(|t| CpuList::parse(&t).ok());
        let nr = possible.as_ref().and_then(CpuList::last).or(online.last()).unwrap_or(0) + 1;
        let text = mask.to_mask(nr);
        for path in [WORKQUEUE_MASK, WRITEBACK_MASK] {
            let Some(now) = host.attr(path) else {
                if path == WORKQUEUE_MASK {
                    return Err(fail(format!("workqueue_cpumask: {path} does not exist on this kernel")));
                }
                out.warnings.push(format!("workqueue_cpumask: {path} does not exist; only the unbound mask is set"));
                continue;
            };
            let current = CpuList::parse_mask(&now).map_err(|e| fail(format!("{path}: {e}")))?;
            if current != *mask {
                let name = if path == WORKQUEUE_MASK { "workqueue cpumask" } else { "writeback cpumask" };
                w.set(host, name, None, path, &now, &text);
            }
        }
    }

    power(host, p, &cpus, &online, &mut w, &mut out.warnings)?;

    let mut runtime = (String::new(), String::new());
    for ((setting, before, after), on) in &w.groups {
        let label = if on.is_empty() { setting.clone() } else { format!("{setting} (CPUs {on})") };
        runtime.0.push_str(&format!("{label}: {before}\n"));
        runtime.1.push_str(&format!("{label}: {after}\n"));
        out.fields.entry("changes").or_insert_with(|| Value::Array(Vec::new()));
        if let Some(Value::Array(a)) = out.fields.get_mut("changes") {
            let cpus = (!on.is_empty()).then(|| on.to_string());
            let c = Change { setting: setting.clone(), cpus, before: before.clone(), after: after.clone() };
            a.push(serde_json::to_value(c).unwrap_or(Value::Null));
        }
    }
    out.fields.entry("changes").or_insert_with(|| Value::Array(Vec::new()));
    if !runtime.0.is_empty() {
        out.diff.push(Diff {
            before_header: format!("runtime ({CPU})"),
            after_header: format!("runtime ({CPU})"),
            before: runtime.0,
            after: runtime.1,
        });
    }
    out.actions = w.actions;

    if let Some(aff) = &p.systemd_cpu_affinity {
        check_online("systemd_cpu_affinity", aff, &online)?;
        affinity(host, aff, &mut out)?;
    }
    out.field("cpus", cpus.to_string());
    Ok(out)
}

/// PM QoS resume latency, energy/performance bias, uncore limits and `ignore_ce`. A file the
/// host lacks is named in a warning and skipped: these exist only on some CPUs and kernels.
fn power(
    host: &Host,
    p: &Params,
    cpus: &CpuList,
    online: &CpuList,
    w: &mut Writes,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mut missing = |what: &str, without: &CpuList, file: &str| {
        if !without.is_empty() {
            warnings.push(format!("{what}: CPUs {without} have no {CPU}/cpuN/power/{file}; skipped there"));
        }
    };
    if let Some(q) = &p.pm_qos_resume_latency_us {
        // As the kernel reads it back: `n/a`, or the number without leading zeros or sign.
        let want = value_text(&q.value).filter(|v| crate::config::pm_qos_value(v)).map(|v| match v.parse::<u32>() {
            Ok(n) => n.to_string(),
            Err(_) => v,
        });
        let want = want.ok_or_else(|| {
            fail(format!(
                "option pm_qos_resume_latency_us.value: {} is not microseconds (0 = no constraint, up to 2147483646) or \"n/a\"",
                cap_text(&q.value.to_string())
            ))
        })?;
        let on = q.cpus.clone().unwrap_or_else(|| cpus.clone());
        check_online("pm_qos_resume_latency_us.cpus", &on, online)?;
        let mut without = CpuList::new();
        for n in on.iter() {
            let path = format!("{CPU}/cpu{n}/power/pm_qos_resume_latency_us");
            match host.attr(&path) {
                None => without.insert(n),
                Some(now) if now != want => w.set(host, "pm_qos_resume_latency_us", Some(n), &path, &now, &want),
                Some(_) => {}
            }
        }
        missing("pm_qos_resume_latency_us", &without, "pm_qos_resume_latency_us");
    }
    if let Some(v) = &p.energy_perf_bias {
        let want = value_text(v).and_then(|t| crate::config::epb_value(&t)).ok_or_else(|| {
            let names: Vec<&str> = crate::config::EPB_NAMES.iter().map(|n| n.0).collect();
            fail(format!(
                "option energy_perf_bias: {} is not 0 to 15 or one of {}",
                cap_text(&v.to_string()),
                names.join(", ")
            ))
        })?;
        let mut without = CpuList::new();
        for n in cpus.iter() {
            let path = format!("{CPU}/cpu{n}/power/energy_perf_bias");
            match host.attr(&path) {
                None => without.insert(n),
                Some(now) if now != want.to_string() => {
                    w.set(host, "energy_perf_bias", Some(n), &path, &now, &want.to_string())
                }
                Some(_) => {}
            }
        }
        missing("energy_perf_bias", &without, "energy_perf_bias");
    }
    if let Some(u) = &p.uncore {
        uncore(host, u, w, warnings)?;
    }
    if let Some(on) = p.mce_ignore_ce {
        let want = if on { "1" } else { "0" };
        let banks: Vec<String> = host
            .list_or_empty(MCE_DIR)
            .into_iter()
            .filter(|d| d.strip_prefix("machinecheck").is_some_and(|n| n.parse::<u32>().is_ok()))
            .map(|d| format!("{MCE_DIR}/{d}/ignore_ce"))
            .filter(|f| host.exists(f))
            .collect();
        if banks.is_empty() {
            warnings.push(format!("mce_ignore_ce: this host has no {MCE_DIR}/machinecheckN/ignore_ce; skipped"));
        }
        // One kernel-wide switch shown in every machinecheckN: each file that differs is
        // written (the kernel ignores a write of the value it holds).
        for path in banks {
            let now = host.attr(&path).unwrap_or_default();
            if now != want {
                w.set(host, "mce ignore_ce", None, &path, &now, want);
            }
        }
    }
    Ok(())
}

/// `uncore`: each die's `{min,max}_freq_khz`, within its `initial_{min,max}_freq_khz`.
fn uncore(host: &Host, u: &Uncore, w: &mut Writes, warnings: &mut Vec<String>) -> Result<()> {
    if u.min_freq_khz.is_none() && u.max_freq_khz.is_none() {
        return Err(fail("option uncore: give min_freq_khz, max_freq_khz or both"));
    }
    let mut wanted = Vec::new();
    for (key, v) in [("min_freq_khz", &u.min_freq_khz), ("max_freq_khz", &u.max_freq_khz)] {
        let Some(v) = v else { continue };
        let t = value_text(v).filter(|t| crate::config::uncore_value(t)).ok_or_else(|| {
            fail(format!(
                "option uncore.{key}: {} is not kHz in 100 MHz steps (2400000) or min or max",
                cap_text(&v.to_string())
            ))
        })?;
        wanted.push((key, t));
    }
    let dies: Vec<String> = host
        .list_or_empty(UNCORE_DIR)
        .into_iter()
        .filter(|d| host.exists(&format!("{UNCORE_DIR}/{d}/max_freq_khz")))
        .collect();
    if dies.is_empty() {
        warnings.push(format!(
            "uncore: this host has no {UNCORE_DIR}/*/max_freq_khz (driver intel_uncore_frequency not loaded, or not an Intel server CPU); skipped"
        ));
        return Ok(());
    }
    for d in dies {
        let dir = format!("{UNCORE_DIR}/{d}");
        let num = |f: &str| {
            host.attr_parse::<u64>(&format!("{dir}/{f}"))
                .ok_or_else(|| fail(format!("uncore: {dir}/{f} is missing or not a number")))
        };
        let (lo, hi) = (num("initial_min_freq_khz")?, num("initial_max_freq_khz")?);
        let mut after = [num("min_freq_khz")?, num("max_freq_khz")?];
        let before = after;
        for (key, t) in &wanted {
            let k = match t.as_str() {
                "min" => lo,
                "max" => hi,
                n => n.parse().unwrap_or(0),
            };
            if k < lo || k > hi {
                return Err(fail(format!("uncore.{key}: {k} kHz is outside {dir}'s initial limits {lo}-{hi} kHz")));
            }
            after[usize::from(*key == "max_freq_khz")] = k;
        }
        if after[0] > after[1] {
            return Err(fail(format!(
                "uncore: {d}: min_freq_khz {} would be above max_freq_khz {}",
                after[0], after[1]
            )));
        }
        // Raising the floor above the old ceiling: the ceiling first.
        let order = if after[0] > before[1] { [1, 0] } else { [0, 1] };
        for i in order {
            if after[i] != before[i] {
                let f = ["min_freq_khz", "max_freq_khz"][i];
                w.set(
                    host,
                    &format!("uncore {d} {f}"),
                    None,
                    &format!("{dir}/{f}"),
                    &before[i].to_string(),
                    &after[i].to_string(),
                );
            }
        }
    }
    Ok(())
}

/// One idle state of one CPU.
struct IdleState {
    dir: String,
    index: u32,
    name: String,
    latency: u64,
    disabled: bool,
}

fn idle_states(host: &Host, cpu: u32) -> Result<Vec<IdleState>> {
    let base = format!("{CPU}/cpu{cpu}/cpuidle");
    let mut out = Vec::new();
    for d in host.list_or_empty(&base) {
        let Some(index) = d.strip_prefix("state").and_then(|i| i.parse::<u32>().ok()) else { continue };
        let dir = format!("{base}/{d}");
        let name = host.attr(&format!("{dir}/name")).unwrap_or_else(|| d.clone());
        let latency = host
            .attr_parse::<u64>(&format!("{dir}/latency"))
            .ok_or_else(|| fail(format!("cstates: CPU {cpu} {d} ({name}): no readable latency")))?;
        let disabled = host.attr(&format!("{dir}/disable")).as_deref() == Some("1");
        out.push(IdleState { dir, index, name, latency, disabled });
    }
    crate::sort::sort_by_key(&mut out, |s| s.index);
    Ok(out)
}

/// `cstates`: `max_latency_us` makes the enabled set exactly the states at or under it;
/// `disable` disables the named states and leaves the others. State 0 / POLL never changes.
fn cstates(host: &Host, c: &Cstates, cpus: &CpuList, w: &mut Writes, warnings: &mut Vec<String>) -> Result<()> {
    let names = match (&c.max_latency_us, &c.disable, &c.max_cstate) {
        (Some(_), None, None) | (None, None, Some(_)) => None,
        (None, Some(n), None) if !n.is_empty() => Some(n),
        _ => {
            return Err(fail(
                "option cstates: give exactly one of max_latency_us, max_cstate or disable (a non-empty list)",
            ));
        }
    };
    for n in names.into_iter().flatten() {
        check_word("cstates.disable", n)?;
        if n.eq_ignore_ascii_case("POLL") {
            return Err(fail("cstates.disable: POLL (state0) is the CPU's busy loop and is never disabled"));
        }
    }
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut all_names: BTreeSet<String> = BTreeSet::new();
    let mut none = CpuList::new();
    for cpu in cpus.iter() {
        let states = idle_states(host, cpu)?;
        if states.is_empty() {
            none.insert(cpu);
        }
        for s in states {
            all_names.insert(s.name.clone());
            let protected = s.index == 0 || s.name.eq_ignore_ascii_case("POLL");
            let want = match (c.max_latency_us, names) {
                (Some(max), _) => Some(!protected && s.latency > max),
                (None, None) if c.max_cstate.is_some() => match crate::facts::cpu::cstate_number(&s.name) {
                    _ if protected => None,
                    Some(k) => Some(k > c.max_cstate.unwrap_or(u32::MAX)),
                    None => None,
                },
                (None, Some(list)) => {
                    let hit = list.iter().find(|n| n.eq_ignore_ascii_case(&s.name));
                    if let Some(h) = hit {
                        found.insert(h.to_ascii_lowercase());
                        if protected {
                            return Err(fail(format!(
                                "cstates.disable: {} is state0 of CPU {cpu}; never disabled",
                                s.name
                            )));
                        }
                    }
                    hit.map(|_| true)
                }
                (None, None) => None,
            };
            if let Some(want) = want.filter(|w| *w != s.disabled) {
                let word = |d: bool| if d { "disabled" } else { "enabled" };
                let setting = format!("cstate {} ({} us)", s.name, s.latency);
                let path = format!("{}/disable", s.dir);
                let before = word(s.disabled);
                // The report says enabled/disabled; the write is the file's 0/1.
                let key = (setting.clone(), before.to_string(), word(want).to_string());
                w.groups.entry(key).or_default().insert(cpu);
                if w.seen.insert(path.clone()) {
                    w.actions.push(Action::WriteKernel { path, value: if want { "1" } else { "0" }.into() });
                }
            }
        }
    }
    for n in names.into_iter().flatten() {
        if !found.contains(&n.to_ascii_lowercase()) {
            let offered: Vec<String> = all_names.iter().cloned().collect();
            return Err(fail(format!(
                "cstates.disable: no idle state named {n:?} on CPUs {cpus} (states: {})",
                if offered.is_empty() { "none".to_string() } else { offered.join(", ") }
            )));
        }
    }
    if !none.is_empty() {
        let driver = host.attr(&format!("{CPU}/cpuidle/current_driver")).unwrap_or_else(|| "none".into());
        warnings
            .push(format!("cstates: CPUs {none} have no cpuidle states (driver {driver}); nothing to change there"));
    }
    Ok(())
}

/// The drop-in's text for `CPUAffinity=` (systemd takes ranges separated by spaces).
pub fn affinity_text(cpus: &CpuList) -> String {
    format!(
        "# Managed by lltune (lltune_cpu): CPUs of PID 1 and of every service it starts.\n\
         # Read by systemd at boot; a change waits for the next reboot.\n\
         [Manager]\nCPUAffinity={}\n",
        cpus.to_string().replace(',', " ")
    )
}

fn affinity(host: &Host, cpus: &CpuList, out: &mut engine::Plan) -> Result<()> {
    let want = affinity_text(cpus);
    let now = host.read_bytes_opt(AFFINITY_FILE).map_err(|e| fail(format!("systemd_cpu_affinity: {e}")))?;
    let changes = now.as_deref() != Some(want.as_bytes());
    if changes {
        out.diff.push(engine::text::file_diff(AFFINITY_FILE, now.as_deref(), want.as_bytes()));
        out.actions.push(Action::WriteFile { path: AFFINITY_FILE.into(), contents: want.into_bytes() });
    }
    // Later drop-ins (by file name) override ours.
    let dir = AFFINITY_FILE.rsplit_once('/').map(|d| d.0).unwrap_or("");
    out.warnings.extend(engine::text::unread_files(host, &[dir], ".conf", "systemd"));
    let ours = AFFINITY_FILE.rsplit('/').next().unwrap_or("");
    for name in host.list_or_empty(dir) {
        if name.ends_with(".conf") && name.as_str() > ours {
            let bytes = host.read_bytes_opt(&format!("{dir}/{name}")).ok().flatten().unwrap_or_default();
            if engine::text::lines(&bytes).any(|l| l.trim_ascii_start().starts_with(b"CPUAffinity=")) {
                out.warnings.push(format!(
                    "systemd_cpu_affinity: {dir}/{name} sets CPUAffinity= and is read after {AFFINITY_FILE}, so it wins"
                ));
            }
        }
    }
    // PID 1's current affinity, where there is a /proc to read it from.
    let running = host.read_opt("/proc/1/status").ok().flatten().and_then(|s| {
        s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:").and_then(|v| CpuList::parse(v).ok()))
    });
    out.reboot_required = changes || running.is_some_and(|r| r != *cpus);
    Ok(())
}

/// The module, as the engine's runner sees it.
pub struct Cpu;

impl Module for Cpu {
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
    engine::run::<Cpu>(host, meta, params)
}
