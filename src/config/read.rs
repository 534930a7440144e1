//! Each config section read from its YAML value into its typed struct, by hand.
//!
//! Why not serde's derive: a derived `Deserialize` is generic over the deserializer, and
//! with `serde_path_to_error` (for the dotted field in every message) each struct's code came
//! twice over; for the config's thirty-odd types that was about 160 KB of every binary that
//! reads a config (`lltune_config`, `lltune_audit`), which Ansible copies to every host for
//! every task. Here each type has one small reader over `serde_yaml::Value`, the path is a
//! string built as the reader descends, and a message is worded for the person editing the
//! file (`expected a mapping`, not `expected struct Governor`). The first problem of a section
//! is its issue, as before; `tests/config_reader.rs` pins what is said for every field given
//! every kind of value.

use std::collections::BTreeMap;

use serde_yaml::Value as Yaml;

use super::*;
use crate::analysis::plan::NicRole;
use crate::cpulist::CpuList;

type R<T> = Result<T, Issue>;

/// `at.key`, or `key` at the top.
fn key_path(at: &str, key: &str) -> String {
    if at.is_empty() { key.to_string() } else { format!("{at}.{key}") }
}

/// What was found, as a message shows it: `integer `5``, `string "x"`, `a list`.
fn found(v: &Yaml) -> String {
    match v {
        Yaml::Null => "null".into(),
        Yaml::Bool(b) => format!("boolean `{b}`"),
        Yaml::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => format!("integer `{u}`"),
            (None, Some(i), _) => format!("integer `{i}`"),
            // A whole float keeps its point (`1000.0`), so that it reads as a float.
            (_, _, Some(f)) if f.is_finite() && f.fract() == 0.0 => format!("floating point `{f:.1}`"),
            (_, _, Some(f)) => format!("floating point `{f}`"),
            _ => "a number".into(),
        },
        Yaml::String(s) => format!("string {s:?}"),
        Yaml::Sequence(_) => "a list".into(),
        Yaml::Mapping(_) => "a mapping".into(),
        Yaml::Tagged(t) => format!("a tagged value ({})", t.tag),
    }
}

fn wrong(at: &str, want: &str, v: &Yaml) -> Issue {
    Issue::new(at, format!("expected {want}, got {}", found(v)))
}

/// serde's wording for a key outside `known`, which people know from other tools.
fn unknown_field(key: &str, known: &[&str]) -> String {
    let quoted: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    match quoted.as_slice() {
        [] => format!("unknown field `{key}`, there are no fields"),
        [one] => format!("unknown field `{key}`, expected {one}"),
        [a, b] => format!("unknown field `{key}`, expected {a} or {b}"),
        all => format!("unknown field `{key}`, expected one of {}", all.join(", ")),
    }
}

/// A value read from its YAML node; `at` is its dotted path.
pub(super) trait Read: Sized {
    fn read(v: &Yaml, at: &str) -> R<Self>;
}

/// Reads a mapping's entries in file order; each key must be one of `known`. `each` reads one
/// field (its key, its value, its path). A missing key of `required` is an issue at `at`,
/// after the fields that are there (as serde reports it). `each` is called through `dyn`: one
/// copy of this loop for the thirty-odd types read with it, not one per type.
fn fields(
    v: &Yaml,
    at: &str,
    known: &[&str],
    required: &[&str],
    mut each: impl FnMut(&str, &Yaml, &str) -> R<()>,
) -> R<()> {
    fields_dyn(v, at, known, required, &mut each)
}

fn fields_dyn(
    v: &Yaml,
    at: &str,
    known: &[&str],
    required: &[&str],
    each: &mut dyn FnMut(&str, &Yaml, &str) -> R<()>,
) -> R<()> {
    let Yaml::Mapping(m) = v else { return Err(wrong(at, "a mapping", v)) };
    for (k, val) in m {
        let Yaml::String(k) = k else {
            return Err(Issue::new(at, format!("expected a field name, got {}", found(k))));
        };
        let here = key_path(at, k);
        if !known.contains(&k.as_str()) {
            return Err(Issue::new(here, unknown_field(k, known)));
        }
        each(k, val, &here)?;
    }
    for r in required {
        if m.get(*r).is_none() {
            return Err(Issue::new(at, format!("missing field `{r}`")));
        }
    }
    Ok(())
}

impl Read for String {
    fn read(v: &Yaml, at: &str) -> R<String> {
        match v {
            Yaml::String(s) => Ok(s.clone()),
            other => Err(wrong(at, "a string", other)),
        }
    }
}

impl Read for bool {
    fn read(v: &Yaml, at: &str) -> R<bool> {
        match v {
            Yaml::Bool(b) => Ok(*b),
            other => Err(wrong(at, "a boolean", other)),
        }
    }
}

/// A whole number within `min..=max`.
fn integer(v: &Yaml, at: &str, min: i128, max: i128) -> R<i128> {
    let n = match v {
        Yaml::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => i128::from(u),
            (None, Some(i)) => i128::from(i),
            _ => return Err(wrong(at, "an integer", v)),
        },
        other => return Err(wrong(at, "an integer", other)),
    };
    if n < min || n > max {
        return Err(wrong(at, &format!("an integer from {min} to {max}"), v));
    }
    Ok(n)
}

macro_rules! read_integer {
    ($($t:ty),*) => {$(
        impl Read for $t {
            fn read(v: &Yaml, at: &str) -> R<$t> {
                let n = integer(v, at, i128::from(<$t>::MIN), i128::from(<$t>::MAX))?;
                // In range: checked above.
                Ok(n as $t)
            }
        }
    )*};
}

read_integer!(u32, u64, i64);

impl<T: Read> Read for Option<T> {
    fn read(v: &Yaml, at: &str) -> R<Option<T>> {
        match v {
            Yaml::Null => Ok(None),
            other => T::read(other, at).map(Some),
        }
    }
}

/// A list; null is an empty list (as it was).
impl<T: Read> Read for Vec<T> {
    fn read(v: &Yaml, at: &str) -> R<Vec<T>> {
        match v {
            Yaml::Null => Ok(Vec::new()),
            Yaml::Sequence(s) => {
                let mut out = Vec::with_capacity(s.len());
                items(s, at, &mut |item, here| {
                    out.push(T::read(item, here)?);
                    Ok(())
                })?;
                Ok(out)
            }
            other => Err(wrong(at, "a list", other)),
        }
    }
}

/// Reads a list's items in order, each with its path (`at[i]`); one copy of the loop for
/// every item type.
fn items(s: &[Yaml], at: &str, each: &mut dyn FnMut(&Yaml, &str) -> R<()>) -> R<()> {
    for (i, item) in s.iter().enumerate() {
        each(item, &format!("{at}[{i}]"))?;
    }
    Ok(())
}

impl Read for Cpus {
    fn read(v: &Yaml, at: &str) -> R<Cpus> {
        const WANT: &str = "a CPU list such as \"1-5,9\", a CPU number, or a list of CPU numbers";
        match v {
            Yaml::String(s) => CpuList::parse(s).map(Cpus).map_err(|e| Issue::new(at, e.to_string())),
            Yaml::Number(n) => match n.as_u64() {
                Some(c) => u32::try_from(c)
                    .map(|c| Cpus(CpuList::from_cpus([c])))
                    .map_err(|_| Issue::new(at, format!("CPU {c} is out of range"))),
                None => Err(wrong(at, WANT, v)),
            },
            Yaml::Sequence(s) => {
                let mut l = CpuList::new();
                for (i, c) in s.iter().enumerate() {
                    l.insert(u32::read(c, &format!("{at}[{i}]"))?);
                }
                Ok(Cpus(l))
            }
            other => Err(wrong(at, WANT, other)),
        }
    }
}

/// A string or a number as text; null is `None` where `null_ok`. A boolean is refused with
/// the YAML 1.1 hint: in a config written for the seed it may have been `off`.
fn text(v: &Yaml, at: &str, null_ok: bool) -> R<Option<String>> {
    match v {
        Yaml::String(s) => Ok(Some(s.clone())),
        Yaml::Number(n) => Ok(Some(number_text(n))),
        Yaml::Bool(b) => Err(Issue::new(
            at,
            format!(
                "expected a string, found the boolean {b}; if you meant the word (off, on, yes, no), write it in quotes: \"{}\"",
                if *b { "on" } else { "off" }
            ),
        )),
        Yaml::Null if null_ok => Ok(None),
        other => Err(wrong(at, "a string or a number", other)),
    }
}

/// A number as its text: integers exactly, floats as Rust writes them (`3.25`).
fn number_text(n: &serde_yaml::Number) -> String {
    match (n.as_u64(), n.as_i64(), n.as_f64()) {
        (Some(u), _, _) => u.to_string(),
        (None, Some(i), _) => i.to_string(),
        (_, _, Some(f)) => f.to_string(),
        _ => n.to_string(),
    }
}

impl Read for Text {
    fn read(v: &Yaml, at: &str) -> R<Text> {
        Ok(Text(text(v, at, false)?.unwrap_or_default()))
    }
}

impl Read for SysctlValue {
    fn read(v: &Yaml, at: &str) -> R<SysctlValue> {
        match v {
            Yaml::String(s) => Ok(SysctlValue(s.clone())),
            Yaml::Number(n) if n.as_u64().is_some() || n.as_i64().is_some() => Ok(SysctlValue(number_text(n))),
            Yaml::Bool(b) => Ok(SysctlValue(if *b { "1" } else { "0" }.into())),
            other => Err(wrong(at, "a number, a string or a boolean", other)),
        }
    }
}

/// A word of `table` (an enum written in snake_case).
fn variant<T: Copy>(v: &Yaml, at: &str, table: &[(&str, T)]) -> R<T> {
    let words = || table.iter().map(|(w, _)| format!("`{w}`")).collect::<Vec<_>>().join(", ");
    match v {
        Yaml::String(s) => table
            .iter()
            .find(|(w, _)| w == s)
            .map(|(_, t)| *t)
            .ok_or_else(|| Issue::new(at, format!("unknown variant `{s}`, expected one of {}", words()))),
        other => Err(wrong(at, &format!("one of {}", words()), other)),
    }
}

impl Read for ThpMode {
    fn read(v: &Yaml, at: &str) -> R<ThpMode> {
        variant(v, at, &[("never", ThpMode::Never), ("madvise", ThpMode::Madvise), ("always", ThpMode::Always)])
    }
}

impl Read for TuningLevel {
    fn read(v: &Yaml, at: &str) -> R<TuningLevel> {
        variant(
            v,
            at,
            &[
                ("ultra_low_latency", TuningLevel::UltraLowLatency),
                ("low_latency", TuningLevel::LowLatency),
                ("balanced", TuningLevel::Balanced),
            ],
        )
    }
}

impl Read for NicRole {
    fn read(v: &Yaml, at: &str) -> R<NicRole> {
        variant(
            v,
            at,
            &[
                ("trading", NicRole::Trading),
                ("control", NicRole::Control),
                ("management", NicRole::Management),
                ("multicast", NicRole::Multicast),
            ],
        )
    }
}

/// Kernel arguments in file order. `strict` (`kernel.cmdline`): only `CMDLINE_KEYS`, and null
/// or `""` only for `CMDLINE_FLAGS`; otherwise (`kernel.extra_args`) any argument, null or
/// `""` a bare flag.
fn cmdline(v: &Yaml, at: &str, strict: bool) -> R<Option<Cmdline>> {
    let m = match v {
        Yaml::Null => return Ok(Some(Cmdline::default())),
        Yaml::Mapping(m) => m,
        other => return Err(wrong(at, "a mapping of kernel arguments to values", other)),
    };
    let mut out = Vec::new();
    for (k, val) in m {
        let Yaml::String(k) = k else {
            return Err(Issue::new(at, format!("expected a kernel argument name, got {}", found(k))));
        };
        let here = key_path(at, k);
        if strict && !CMDLINE_KEYS.contains(&k.as_str()) {
            return Err(Issue::new(
                here,
                format!(
                    "unknown kernel argument `{k}` (known: {}); put other arguments under kernel.extra_args",
                    CMDLINE_KEYS.join(", ")
                ),
            ));
        }
        let value = text(val, &here, true)?.filter(|s| !s.is_empty());
        if value.is_none() && strict && !CMDLINE_FLAGS.contains(&k.as_str()) {
            return Err(Issue::new(
                here,
                format!(
                    "`{k}` needs a value: null or \"\" would write a bare `{k}` to the boot line; write the value \
                     (e.g. {k}: \"...\"), or delete the line to leave the host's `{k}` as it is"
                ),
            ));
        }
        out.push((k.clone(), value));
    }
    Ok(Some(Cmdline(out)))
}

impl Read for StackVariables {
    fn read(v: &Yaml, at: &str) -> R<StackVariables> {
        let m = match v {
            Yaml::Null => return Ok(StackVariables::default()),
            Yaml::Mapping(m) => m,
            other => return Err(wrong(at, "a mapping of variable names to values", other)),
        };
        let mut out = Vec::new();
        for (k, val) in m {
            let Yaml::String(k) = k else {
                return Err(Issue::new(at, format!("expected a variable name, got {}", found(k))));
            };
            let here = key_path(at, k);
            out.push((k.clone(), text(val, &here, false)?.unwrap_or_default()));
        }
        Ok(StackVariables(out))
    }
}

impl Read for NetworkSysctl {
    fn read(v: &Yaml, at: &str) -> R<NetworkSysctl> {
        let m = match v {
            Yaml::Null => return Ok(NetworkSysctl::default()),
            Yaml::Mapping(m) => m,
            other => return Err(wrong(at, "a mapping of sysctl names to values", other)),
        };
        let mut out = Vec::new();
        for (k, val) in m {
            let Yaml::String(k) = k else {
                return Err(Issue::new(at, format!("expected a sysctl name, got {}", found(k))));
            };
            let here = key_path(at, k);
            if network_sysctl_name(k).is_none() {
                return Err(Issue::new(
                    here,
                    format!("unknown sysctl `{k}`: write the full name (e.g. net.core.{k}) or a known short name"),
                ));
            }
            out.push((k.clone(), SysctlValue::read(val, &here)?));
        }
        Ok(NetworkSysctl(out))
    }
}

/// `per_node`: keys as text, whether YAML wrote them as strings (`node0`, `"0"`) or integers.
fn per_node(v: &Yaml, at: &str) -> R<BTreeMap<String, u64>> {
    let m = match v {
        Yaml::Null => return Ok(BTreeMap::new()),
        Yaml::Mapping(m) => m,
        other => return Err(wrong(at, "a mapping of NUMA node (node0 or 0) to a page count", other)),
    };
    let mut out = BTreeMap::new();
    for (k, val) in m {
        let key = match k {
            Yaml::String(s) => s.clone(),
            Yaml::Number(n) if n.as_u64().is_some() => number_text(n),
            Yaml::Number(n) => {
                return Err(Issue::new(at, format!("node keys are nodeN or N (node0, 0); found the number {n}")));
            }
            other => return Err(Issue::new(at, format!("node keys are nodeN or N (node0, 0); found {}", kind(other)))),
        };
        let pages = u64::read(val, &key_path(at, &key))?;
        if out.insert(key.clone(), pages).is_some() {
            return Err(Issue::new(at, format!("node key {key} is given twice")));
        }
    }
    Ok(out)
}

impl Read for RdmaDeviceConfig {
    fn read(v: &Yaml, at: &str) -> R<RdmaDeviceConfig> {
        match v {
            Yaml::String(s) if s.trim().is_empty() => Err(Issue::new(at, "an RDMA device name must not be empty")),
            Yaml::String(s) => Ok(RdmaDeviceConfig { name: s.clone(), numa_node: None }),
            Yaml::Mapping(_) => {
                let mut d = RdmaDeviceConfig::default();
                fields(v, at, &["name", "numa_node"], &["name"], |k, v, at| {
                    match k {
                        "name" => d.name = Read::read(v, at)?,
                        _ => d.numa_node = Read::read(v, at)?,
                    }
                    Ok(())
                })?;
                Ok(d)
            }
            other => Err(wrong(at, "an RDMA device name (mlx5_0) or a mapping with name and numa_node", other)),
        }
    }
}

/// A struct of plain fields: `key => field` each read with `Read`, `required` keys must be
/// there. The struct starts from its `Default`.
macro_rules! read_mapping {
    ($t:ty, required [$($req:literal),*], { $($key:literal => $field:ident),* $(,)? }) => {
        impl Read for $t {
            fn read(v: &Yaml, at: &str) -> R<$t> {
                let mut out = <$t>::default();
                fields(v, at, &[$($key),*], &[$($req),*], |k, v, at| {
                    match k {
                        $($key => out.$field = Read::read(v, at)?,)*
                        _ => {}
                    }
                    Ok(())
                })?;
                Ok(out)
            }
        }
    };
}

read_mapping!(Metadata, required [], {
    "generated_at" => generated_at, "host" => host, "kernel" => kernel, "tool_version" => tool_version,
    "source" => source,
});
read_mapping!(HardwareNic, required ["name"], {
    "name" => name, "driver" => driver, "pci_address" => pci_address, "numa_node" => numa_node,
    "speed_mbps" => speed_mbps,
});
read_mapping!(Hardware, required [], {
    "cpu_model" => cpu_model, "vendor" => vendor, "sockets" => sockets, "cores_per_socket" => cores_per_socket,
    "threads_per_core" => threads_per_core, "online_cpus" => online_cpus, "numa_nodes" => numa_nodes,
    "nics" => nics,
});
read_mapping!(Governor, required ["target"], { "target" => target });
impl Read for CpuSection {
    fn read(v: &Yaml, at: &str) -> R<CpuSection> {
        let mut o = CpuSection::default();
        let known = [
            "governor",
            "isolate_cores",
            "turbo",
            "cstate_limit",
            "epp",
            "pm_qos_resume_latency_us",
            "energy_perf_bias",
            "uncore",
            "mce_ignore_ce",
        ];
        fields(v, at, &known, &[], |k, v, at| {
            match k {
                "governor" => o.governor = Read::read(v, at)?,
                "isolate_cores" => o.isolate_cores = Read::read(v, at)?,
                "turbo" => o.turbo = Read::read(v, at)?,
                "cstate_limit" => o.cstate_limit = Read::read(v, at)?,
                "epp" => o.epp = Read::read(v, at)?,
                "pm_qos_resume_latency_us" => o.pm_qos_resume_latency_us = Read::read(v, at)?,
                "uncore" => o.uncore = Read::read(v, at)?,
                "mce_ignore_ce" => o.mce_ignore_ce = Read::read(v, at)?,
                _ => {
                    let t: Option<Text> = Read::read(v, at)?;
                    o.energy_perf_bias = match t {
                        None => None,
                        Some(t) => Some(epb_value(&t.0).ok_or_else(|| {
                            let names: Vec<&str> = EPB_NAMES.iter().map(|n| n.0).collect();
                            Issue::new(at, format!("expected 0 to 15 or one of {}, got {:?}", names.join(", "), t.0))
                        })?),
                    };
                }
            }
            Ok(())
        })?;
        Ok(o)
    }
}

/// A `Text` that `ok` accepts, else an issue saying what is expected.
fn checked_text(v: &Yaml, at: &str, ok: fn(&str) -> bool, want: &str) -> R<Text> {
    let t: Text = Read::read(v, at)?;
    if ok(&t.0) { Ok(t) } else { Err(Issue::new(at, format!("expected {want}, got {:?}", t.0))) }
}

impl Read for PmQos {
    fn read(v: &Yaml, at: &str) -> R<PmQos> {
        let mut out = PmQos::default();
        fields(v, at, &["cpus", "value"], &["value"], |k, v, at| {
            match k {
                "cpus" => out.cpus = Read::read(v, at)?,
                _ => {
                    let want = "microseconds (0 = no constraint, up to 2147483646) or \"n/a\" (no latency accepted)";
                    out.value = checked_text(v, at, pm_qos_value, want)?;
                }
            }
            Ok(())
        })?;
        Ok(out)
    }
}

impl Read for Uncore {
    fn read(v: &Yaml, at: &str) -> R<Uncore> {
        let mut out = Uncore::default();
        fields(v, at, &["min_freq_khz", "max_freq_khz"], &[], |k, v, at| {
            let t = Some(checked_text(v, at, uncore_value, "kHz in 100 MHz steps (2400000) or min or max")?);
            if k == "min_freq_khz" {
                out.min_freq_khz = t
            } else {
                out.max_freq_khz = t
            }
            Ok(())
        })?;
        Ok(out)
    }
}
read_mapping!(KernelSysctl, required [], {
    "timer_migration" => timer_migration, "hung_task_timeout_secs" => hung_task_timeout_secs,
    "nmi_watchdog" => nmi_watchdog, "sched_rt_runtime_us" => sched_rt_runtime_us,
});
read_mapping!(Mlock, required [], {
    "enabled" => enabled, "user" => user, "soft" => soft, "hard" => hard, "max_map_count" => max_map_count,
});
read_mapping!(LimitsConfig, required [], { "nofile" => nofile, "nproc" => nproc, "rtprio" => rtprio });
read_mapping!(MemorySection, required [], {
    "thp_runtime" => thp_runtime, "swap_disable" => swap_disable, "numa_balancing" => numa_balancing,
    "ksm" => ksm, "swappiness" => swappiness, "dirty_ratio" => dirty_ratio,
    "dirty_background_ratio" => dirty_background_ratio, "dirty_expire_centisecs" => dirty_expire_centisecs,
    "dirty_writeback_centisecs" => dirty_writeback_centisecs, "stat_interval" => stat_interval,
    "zone_reclaim_mode" => zone_reclaim_mode, "min_free_kbytes" => min_free_kbytes,
    "overcommit_memory" => overcommit_memory, "max_map_count" => max_map_count, "hugepages" => hugepages,
    "mlock" => mlock, "limits" => limits,
});
read_mapping!(NicDefaults, required [], {
    "disable_gro" => disable_gro, "disable_lro" => disable_lro, "disable_tso" => disable_tso,
    "disable_gso" => disable_gso,
});
read_mapping!(Coalescing, required [], {
    "rx_usecs" => rx_usecs, "tx_usecs" => tx_usecs, "adaptive_rx" => adaptive_rx, "adaptive_tx" => adaptive_tx,
});
read_mapping!(Rings, required [], { "rx" => rx, "tx" => tx });
read_mapping!(Offloads, required [], { "gro" => gro, "lro" => lro, "tso" => tso, "gso" => gso });
read_mapping!(FlowControl, required [], { "rx" => rx, "tx" => tx });
read_mapping!(ChannelsConfig, required [], { "combined" => combined, "rx" => rx, "tx" => tx });
read_mapping!(Interface, required ["name"], {
    "name" => name, "role" => role, "numa_node" => numa_node, "driver" => driver, "coalescing" => coalescing,
    "rings" => rings, "offloads" => offloads, "flow_control" => flow_control, "channels" => channels,
});
read_mapping!(NetworkSection, required [], { "defaults" => defaults, "sysctl" => sysctl, "interfaces" => interfaces });
read_mapping!(IrqSection, required [], {
    "manual_affinity" => manual_affinity, "avoid_cores_for_irqs" => avoid_cores_for_irqs,
    "disable_rps" => disable_rps, "disable_rfs" => disable_rfs, "default_affinity" => default_affinity,
});
read_mapping!(ThreadsSection, required [], {
    "isolate" => isolate, "housekeeping_cores" => housekeeping_cores, "keep" => keep, "priorities" => priorities,
});
read_mapping!(Ptp, required [], {
    "interface" => interface, "phc2sys" => phc2sys, "domain" => domain, "transport" => transport,
    "delay_mechanism" => delay_mechanism,
});
read_mapping!(TimeSync, required [], {
    "ntp" => ntp, "ptp" => ptp, "clocksource" => clocksource, "provider" => provider, "servers" => servers,
    "refclock" => refclock, "disable_competing" => disable_competing,
});
read_mapping!(NtpServer, required ["hostname"], {
    "hostname" => hostname, "iburst" => iburst, "prefer" => prefer, "pool" => pool, "minpoll" => minpoll,
    "maxpoll" => maxpoll,
});
read_mapping!(Refclock, required ["phc"], {
    "phc" => phc, "poll" => poll, "dpoll" => dpoll, "offset_ns" => offset_ns, "precision_ns" => precision_ns,
    "prefer" => prefer, "tai" => tai,
});

impl Read for TimeProvider {
    fn read(v: &Yaml, at: &str) -> R<TimeProvider> {
        variant(v, at, &[("chrony", TimeProvider::Chrony), ("ptp4l", TimeProvider::Ptp4l)])
    }
}

impl Read for PtpTransport {
    fn read(v: &Yaml, at: &str) -> R<PtpTransport> {
        variant(v, at, &[("UDPv4", PtpTransport::UDPv4), ("UDPv6", PtpTransport::UDPv6), ("L2", PtpTransport::L2)])
    }
}

impl Read for PtpDelay {
    fn read(v: &Yaml, at: &str) -> R<PtpDelay> {
        variant(v, at, &[("E2E", PtpDelay::E2E), ("P2P", PtpDelay::P2P)])
    }
}

read_mapping!(ServicesSection, required [], { "irqbalance" => irqbalance, "tuned" => tuned });
read_mapping!(Safety, required [], {
    "allow_grub_edit" => allow_grub_edit, "allow_dangerous_mitigations" => allow_dangerous_mitigations,
});
read_mapping!(StackProfile, required [], {
    "generate_profile" => generate_profile, "tuning_level" => tuning_level, "path" => path,
    "env_file" => env_file, "variables" => variables,
});
read_mapping!(RdmaSection, required [], { "devices" => devices });

/// A netdev name as the kernel allows it (no `/`, not `.` or `..`, at most 15 bytes).
fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.contains(['/', '\0', ':'])
        && !s.contains(char::is_whitespace)
}

impl Read for IrqPin {
    fn read(v: &Yaml, at: &str) -> R<IrqPin> {
        let mut out = IrqPin::default();
        let mut targets: Vec<IrqTarget> = Vec::new();
        fields(v, at, &["match", "nic", "pci", "cpus"], &["cpus"], |k, v, here| {
            match k {
                "cpus" => out.cpus = Read::read(v, here)?,
                "match" => targets.push(IrqTarget::Match(Read::read(v, here)?)),
                "nic" => {
                    let name: String = Read::read(v, here)?;
                    if !valid_ifname(&name) {
                        return Err(Issue::new(
                            here,
                            format!(
                                "{name:?} is not a network interface name (1 to 15 characters, no `/`, `:` or space)"
                            ),
                        ));
                    }
                    targets.push(IrqTarget::Nic(name));
                }
                _ => {
                    let addr: String = Read::read(v, here)?;
                    if !crate::facts::nic::is_pci_address(&addr) {
                        return Err(Issue::new(
                            here,
                            format!("{addr:?} is not a PCI address (domain:bus:device.function, e.g. 0000:3b:00.0)"),
                        ));
                    }
                    targets.push(IrqTarget::Pci(addr.to_ascii_lowercase()));
                }
            }
            Ok(())
        })?;
        match targets.len() {
            1 => out.target = targets.remove(0),
            0 => {
                return Err(Issue::new(
                    at,
                    "give one of `match` (IRQ name glob), `nic` (interface) or `pci` (PCI address)",
                ));
            }
            _ => {
                let keys: Vec<String> = targets.iter().map(|t| format!("`{}`", t.key())).collect();
                let (last, rest) = keys.split_last().unwrap_or((&keys[0], &[]));
                return Err(Issue::new(
                    at,
                    format!("give only one of `match`, `nic` or `pci`, not {} and {last}", rest.join(", ")),
                ));
            }
        }
        Ok(out)
    }
}

impl Read for ThreadPriority {
    fn read(v: &Yaml, at: &str) -> R<ThreadPriority> {
        let mut out = ThreadPriority::default();
        fields(v, at, &["match", "policy", "priority"], &["match", "policy", "priority"], |k, v, here| {
            match k {
                "match" => out.pattern = Read::read(v, here)?,
                "policy" => {
                    out.policy = Read::read(v, here)?;
                    if !["fifo", "rr", "other", "batch", "idle"].contains(&out.policy.as_str()) {
                        return Err(Issue::new(
                            here,
                            format!("{:?} is not fifo, rr, other, batch or idle", out.policy),
                        ));
                    }
                }
                _ => out.priority = Read::read(v, here)?,
            }
            Ok(())
        })?;
        let realtime = matches!(out.policy.as_str(), "fifo" | "rr");
        if realtime && !(1..=99).contains(&out.priority) || !realtime && out.priority != 0 {
            let want = if realtime { "1 to 99" } else { "0" };
            return Err(Issue::new(
                format!("{at}.priority"),
                format!("{} takes {want}, got {}", out.policy, out.priority),
            ));
        }
        Ok(out)
    }
}

impl Read for HugepagesConfig {
    fn read(v: &Yaml, at: &str) -> R<HugepagesConfig> {
        let mut out = HugepagesConfig::default();
        fields(v, at, &["size_kb", "total", "per_node"], &[], |k, v, at| {
            match k {
                "size_kb" => out.size_kb = Read::read(v, at)?,
                "total" => out.total = Read::read(v, at)?,
                _ => out.per_node = per_node(v, at)?,
            }
            Ok(())
        })?;
        Ok(out)
    }
}

impl Read for KernelSection {
    fn read(v: &Yaml, at: &str) -> R<KernelSection> {
        let mut out = KernelSection::default();
        fields(v, at, &["cmdline", "extra_args", "sysctl"], &[], |k, v, at| {
            match k {
                "cmdline" => out.cmdline = cmdline(v, at, true)?,
                "extra_args" => out.extra_args = cmdline(v, at, false)?,
                _ => out.sysctl = Read::read(v, at)?,
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// One section: its value, or `None` with the problem in `issues`. A section given as null
/// is read as an empty one.
pub(super) fn section<T: Read + Default>(name: &str, v: &Yaml, issues: &mut Vec<Issue>) -> Option<T> {
    let read = match v {
        Yaml::Null => Ok(T::default()),
        other => T::read(other, name),
    };
    read.map_err(|e| issues.push(e)).ok()
}
