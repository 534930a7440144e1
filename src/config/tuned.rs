//! A config as a TuneD custom profile (`lltune export-tuned`): the `tuned.conf` that makes
//! TuneD set what `lltune apply` would set, for a shop that must run TuneD and keep one
//! source. Pure: config in, text out.
//!
//! TuneD reads the file with Python's `configparser` (tuned/profiles/loader.py:
//! `delimiters=('=')`, `inline_comment_prefixes=('#')`, `strict=False`, keys case-sensitive),
//! so every line is `key=value` at the start of the line (an indented line continues the
//! previous value), and a value that TuneD would read differently is left out and listed: a
//! `#` after a space starts a comment, `${` one of TuneD's variables or functions, leading
//! and trailing spaces are dropped.
//!
//! Plugins used, one section each (the section name is the plugin): `[cpu]` governor,
//! energy_performance_preference, energy_perf_bias, force_latency (from `cpu.cstate_limit`:
//! the exit latency of that C-state), boost, pm_qos_resume_latency_us; `[uncore]`;
//! `[vm]` transparent_hugepages; `[sysctl]` (every sysctl the config sets, as
//! `lltune_sysctl` gets them); `[bootloader]` cmdline (only with `safety.allow_grub_edit`, the
//! same safety policy as `lltune_kernel_args`); `[scheduler]` isolated_cores (TuneD moves
//! threads off them), ps_blacklist (`threads.keep`), `group.*` (`threads.priorities`),
//! default_irq_smp_affinity; `[irqbalance]` banned_cpus; `[service]` irqbalance; one `[net_N]`
//! per interface (features, coalesce, ring, pause, channels); `[sysfs]` for what has no plugin
//! (KSM, per-node huge pages, per-CPU PM QoS, machine-check `ignore_ce`, RPS/RFS off).
//! What has no TuneD equivalent is listed in the comment at the top.

use std::fmt::Write as _;

use serde_yaml::Value as Yaml;

use crate::config::{Config, ThpMode};

/// One `[section]` of the profile: its lines in order.
#[derive(Debug, Default)]
struct Section {
    name: String,
    lines: Vec<(String, String)>,
}

/// The profile being built, with what was left out and why.
#[derive(Debug, Default)]
struct Profile {
    sections: Vec<Section>,
    left_out: Vec<String>,
}

impl Profile {
    /// Adds `key=value` to `section` (made on first use); a value TuneD would not read back
    /// as written is left out and listed under `path`.
    fn put(&mut self, section: &str, key: &str, value: &str, path: &str) {
        if let Err(why) = representable(key, value) {
            self.left_out.push(format!("{path}: {why}"));
            return;
        }
        let s = match self.sections.iter_mut().position(|s| s.name == section) {
            Some(i) => &mut self.sections[i],
            None => {
                self.sections.push(Section { name: section.to_string(), lines: Vec::new() });
                self.sections.last_mut().unwrap()
            }
        };
        s.lines.retain(|(k, _)| k != key);
        s.lines.push((key.to_string(), value.to_string()));
    }

    fn skip(&mut self, path: &str, why: &str) {
        self.left_out.push(format!("{path}: {why}"));
    }
}

/// Whether `key=value` reads back from TuneD's parser as the same key and value.
fn representable(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.contains(['=', '\n', '\r', '[', '#', ';']) || key.trim() != key {
        return Err(format!("key {key:?} cannot be written in a TuneD profile"));
    }
    if value.chars().any(char::is_control) {
        return Err("a control character in the value".into());
    }
    if value.trim() != value {
        return Err("leading or trailing spaces in the value (TuneD drops them)".into());
    }
    if value.contains("${") {
        return Err("'${' in the value (TuneD expands ${...} variables and functions)".into());
    }
    if value.char_indices().any(|(i, c)| c == '#' && value[..i].ends_with(char::is_whitespace)) {
        return Err("' #' in the value (TuneD reads a comment from there)".into());
    }
    Ok(())
}

/// A thread-name glob (`threads.keep`, `threads.priorities[].match`) as the regular
/// expression TuneD's scheduler plugin searches the command line with: kernel threads are
/// `[name]`, user threads their command line (`/path/name args`), so the name is matched
/// at the start, after `[` or after a `/`, up to `]`, a space or the end.
pub fn glob_to_tuned_regex(glob: &str) -> Option<String> {
    let mut re = String::from("(^|^\\[|/)");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^ ]*"),
            '?' => re.push_str("[^ ]"),
            '[' => {
                re.push('[');
                if chars.peek() == Some(&'!') {
                    chars.next();
                    re.push('^');
                }
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    if c == '\\' || c == '[' {
                        re.push('\\');
                    }
                    re.push(c);
                }
                if !closed {
                    return None;
                }
                re.push(']');
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '/' || c == ':' || c == '@' => re.push(c),
            c if c.is_ascii_punctuation() => {
                re.push('\\');
                re.push(c);
            }
            _ => return None,
        }
    }
    re.push_str("(\\]$| |$)");
    // ';' separates TuneD's list of expressions, ':' its group fields.
    (!re.contains(';')).then_some(re)
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The `tuned.conf` text for `cfg` (`doc`: the same config as YAML, for the sections this
/// lltune does not know how to export). `source` names the config in the header;
/// `include`: a profile for `[main] include=`, already checked.
pub fn profile(cfg: &Config, doc: &Yaml, source: &str, include: Option<&str>) -> String {
    let mut p = Profile::default();
    let host = cfg.metadata.as_ref().and_then(|m| m.host.clone()).unwrap_or_else(|| "this host".into());
    let summary = format!("lltune config of {host}, exported");
    p.put("main", "summary", &summary, "metadata.host");
    if let Some(i) = include {
        p.put("main", "include", i, "--include");
    }

    cpu(cfg, &mut p);
    boot(cfg, &mut p);
    memory(cfg, &mut p);
    network(cfg, &mut p);
    irq_threads(cfg, &mut p);
    services(cfg, &mut p);
    // Sections with no TuneD equivalent, whole.
    for (section, why) in [
        ("time_sync", "chrony/ptp4l configuration is not TuneD's"),
        ("onload", "kernel-bypass profiles are the application's environment"),
        ("vma", "kernel-bypass profiles are the application's environment"),
    ] {
        if doc.get(section).is_some_and(|v| !v.is_null()) {
            p.skip(section, why);
        }
    }
    if let Yaml::Mapping(top) = doc {
        for k in top.keys().filter_map(Yaml::as_str) {
            if !crate::config::SECTIONS.contains(&k) {
                p.skip(k, "a section this lltune does not export");
            }
        }
    }

    let mut out = String::new();
    let _ = writeln!(out, "# TuneD profile exported by lltune {} from {source}.", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "# Edit the lltune config and export again rather than this file (one source).");
    let _ = writeln!(out, "# Install: this folder as /etc/tuned/profiles/<name>/ (TuneD 2.24 and later) or");
    let _ = writeln!(out, "# /etc/tuned/<name>/, then `tuned-adm profile <name>` (or services.tuned: <name>).");
    if p.left_out.is_empty() {
        let _ = writeln!(out, "# Every setting of the config is exported.");
    } else {
        let _ = writeln!(out, "# Not exported (no TuneD equivalent, or not writable in a TuneD profile):");
        for l in &p.left_out {
            let l: String = l.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            let _ = writeln!(out, "#   {l}");
        }
    }
    for s in &p.sections {
        let _ = writeln!(out, "\n[{}]", s.name);
        for (k, v) in &s.lines {
            let _ = writeln!(out, "{k}={v}");
        }
    }
    out
}

fn cpu(cfg: &Config, p: &mut Profile) {
    let Some(c) = &cfg.cpu else { return };
    if let Some(g) = &c.governor {
        p.put("cpu", "governor", &g.target, "cpu.governor.target");
    }
    if let Some(e) = &c.epp {
        p.put("cpu", "energy_performance_preference", e, "cpu.epp");
    }
    if let Some(b) = c.energy_perf_bias {
        // TuneD takes the kernel's names (4.13 and later); a number without one as is.
        let name = crate::config::EPB_NAMES.iter().find(|(_, v)| *v == b).map(|(n, _)| n.to_string());
        p.put("cpu", "energy_perf_bias", &name.unwrap_or_else(|| b.to_string()), "cpu.energy_perf_bias");
    }
    if let Some(n) = c.cstate_limit {
        // PM QoS at the exit latency of the deepest state allowed: deeper states are not
        // entered (TuneD resolves the name or index on the host; 0 allows polling only).
        let v = if n == 0 { "0".to_string() } else { format!("cstate.name:C{n}|cstate.id_no_zero:{n}") };
        p.put("cpu", "force_latency", &v, "cpu.cstate_limit");
    }
    if let Some(t) = c.turbo {
        p.put("cpu", "boost", if t { "1" } else { "0" }, "cpu.turbo");
    }
    if let Some(q) = &c.pm_qos_resume_latency_us {
        match &q.cpus {
            None => p.put("cpu", "pm_qos_resume_latency_us", &q.value.0, "cpu.pm_qos_resume_latency_us"),
            Some(cpus) => {
                for n in cpus.0.iter() {
                    p.put(
                        "sysfs",
                        &format!("/sys/devices/system/cpu/cpu{n}/power/pm_qos_resume_latency_us"),
                        &q.value.0,
                        "cpu.pm_qos_resume_latency_us",
                    );
                }
            }
        }
    }
    if let Some(u) = &c.uncore {
        // TuneD's uncore plugin takes kHz or a percentage of the range.
        let v = |t: &str| match t {
            "min" => "0%".to_string(),
            "max" => "100%".to_string(),
            other => other.to_string(),
        };
        if let Some(m) = &u.min_freq_khz {
            p.put("uncore", "min_freq_khz", &v(&m.0), "cpu.uncore.min_freq_khz");
        }
        if let Some(m) = &u.max_freq_khz {
            p.put("uncore", "max_freq_khz", &v(&m.0), "cpu.uncore.max_freq_khz");
        }
    }
    if let Some(i) = c.mce_ignore_ce {
        p.put(
            "sysfs",
            "/sys/devices/system/machinecheck/machinecheck*/ignore_ce",
            if i { "1" } else { "0" },
            "cpu.mce_ignore_ce",
        );
    }
}

fn boot(cfg: &Config, p: &mut Profile) {
    for (key, (value, path)) in cfg.sysctls() {
        p.put("sysctl", &key, &value, &path);
    }
    let args = cfg.kernel_args();
    if args.is_empty() {
        return;
    }
    if !cfg.safety.allow_grub_edit {
        p.skip("kernel.cmdline", &format!("{} arguments left out: safety.allow_grub_edit is false", args.len()));
        return;
    }
    let mut tokens = Vec::new();
    for (k, v) in &args {
        if let Err(e) = crate::policy::check_arg(k, v.as_deref(), cfg.safety.allow_dangerous_mitigations) {
            p.skip(&format!("kernel.cmdline.{k}"), &format!("refused by lltune's safety policy ({e})"));
            continue;
        }
        tokens.push(match v.as_deref() {
            None | Some("") => k.clone(),
            Some(v) if v.contains(' ') => format!("{k}=\"{v}\""),
            Some(v) => format!("{k}={v}"),
        });
    }
    if !tokens.is_empty() {
        p.put("bootloader", "cmdline", &tokens.join(" "), "kernel.cmdline");
    }
}

fn memory(cfg: &Config, p: &mut Profile) {
    let Some(m) = &cfg.memory else { return };
    if let Some(t) = m.thp_runtime {
        let v = match t {
            ThpMode::Never => "never",
            ThpMode::Madvise => "madvise",
            ThpMode::Always => "always",
        };
        p.put("vm", "transparent_hugepages", v, "memory.thp_runtime");
    }
    if let Some(k) = m.ksm {
        p.put("sysfs", "/sys/kernel/mm/ksm/run", if k { "1" } else { "0" }, "memory.ksm");
    }
    if let Some(h) = &m.hugepages {
        match h.size_kb() {
            Some(size) if !h.per_node.is_empty() => {
                for (node, n) in &h.per_node {
                    let id = node.trim_start_matches("node");
                    p.put(
                        "sysfs",
                        &format!("/sys/devices/system/node/node{id}/hugepages/hugepages-{size}kB/nr_hugepages"),
                        &n.to_string(),
                        "memory.hugepages.per_node",
                    );
                }
            }
            _ => p.skip("memory.hugepages", "huge pages are exported per NUMA node; give size_kb and per_node"),
        }
    }
    if m.swap_disable == Some(true) {
        p.skip("memory.swap_disable", "TuneD does not turn swap off (its vm.swappiness is in [sysctl])");
    }
    if m.mlock.is_some() {
        p.skip("memory.mlock", "limits.d is not TuneD's");
    }
    if m.limits.is_some() {
        p.skip("memory.limits", "limits.d is not TuneD's");
    }
}

fn network(cfg: &Config, p: &mut Profile) {
    let Some(n) = &cfg.network else { return };
    let d = n.defaults.clone().unwrap_or_default();
    for (i, itf) in n.interfaces.iter().enumerate() {
        let section = format!("net_{i}");
        let path = format!("network.interfaces[{i}]");
        let mut any = false;
        let mut put = |p: &mut Profile, key: &str, v: Vec<String>| {
            if !v.is_empty() {
                if !any {
                    p.put(&section, "type", "net", &path);
                    p.put(&section, "devices", &itf.name, &path);
                    any = true;
                }
                p.put(&section, key, &v.join(" "), &format!("{path}.{key}"));
            }
        };
        let o = itf.offloads.clone().unwrap_or_default();
        let mut f = Vec::new();
        for (name, per_nic, disable) in [
            ("gro", o.gro, d.disable_gro),
            ("lro", o.lro, d.disable_lro),
            ("tso", o.tso, d.disable_tso),
            ("gso", o.gso, d.disable_gso),
        ] {
            if let Some(on) = per_nic.or(disable.map(|off| !off)) {
                f.push(format!("{name} {}", on_off(on)));
            }
        }
        put(p, "features", f);
        let c = itf.coalescing.clone().unwrap_or_default();
        let mut v = Vec::new();
        if let Some(a) = c.adaptive_rx {
            v.push(format!("adaptive-rx {}", on_off(a)));
        }
        if let Some(a) = c.adaptive_tx {
            v.push(format!("adaptive-tx {}", on_off(a)));
        }
        if let Some(u) = c.rx_usecs {
            v.push(format!("rx-usecs {u}"));
        }
        if let Some(u) = c.tx_usecs {
            v.push(format!("tx-usecs {u}"));
        }
        put(p, "coalesce", v);
        let r = itf.rings.clone().unwrap_or_default();
        let v: Vec<String> =
            [("rx", r.rx), ("tx", r.tx)].iter().filter_map(|(k, n)| n.map(|n| format!("{k} {n}"))).collect();
        put(p, "ring", v);
        let fc = itf.flow_control.clone().unwrap_or_default();
        let v: Vec<String> = [("rx", fc.rx), ("tx", fc.tx)]
            .iter()
            .filter_map(|(k, b)| b.map(|b| format!("{k} {}", on_off(b))))
            .collect();
        put(p, "pause", v);
        let ch = itf.channels.clone().unwrap_or_default();
        let v: Vec<String> = [("combined", ch.combined), ("rx", ch.rx), ("tx", ch.tx)]
            .iter()
            .filter_map(|(k, n)| n.map(|n| format!("{k} {n}")))
            .collect();
        put(p, "channels", v);
    }
    if n.interfaces.is_empty() && n.defaults.as_ref().is_some_and(|x| *x != Default::default()) {
        p.skip("network.defaults", "no network.interfaces to apply it to");
    }
}

fn irq_threads(cfg: &Config, p: &mut Profile) {
    let isolate = cfg.cpu.as_ref().and_then(|c| c.isolate_cores.as_ref()).filter(|c| !c.0.is_empty());
    let threads = cfg.threads.clone().unwrap_or_default();
    if let Some(iso) = isolate {
        if threads.isolate != Some(false) {
            // TuneD's scheduler plugin moves threads off them (and IRQs, by default).
            p.put("scheduler", "isolated_cores", &iso.0.to_string(), "cpu.isolate_cores");
        }
    }
    if threads.housekeeping_cores.is_some() {
        p.skip("threads.housekeeping_cores", "TuneD moves threads to every CPU but the isolated ones");
    }
    if !threads.keep.is_empty() {
        let res: Vec<Option<String>> = threads.keep.iter().map(|g| glob_to_tuned_regex(g)).collect();
        if res.iter().all(Option::is_some) {
            let v: Vec<String> = res.into_iter().flatten().collect();
            p.put("scheduler", "ps_blacklist", &v.join(";"), "threads.keep");
        } else {
            p.skip("threads.keep", "a pattern that has no TuneD regular expression");
        }
    }
    let rules: Vec<(String, String, u32)> = match &threads.priorities {
        Some(r) => r.iter().map(|r| (r.pattern.clone(), r.policy.clone(), r.priority)).collect(),
        None if cfg.threads.is_some() => crate::modules::threads::REALTIME_DEFAULTS
            .iter()
            .map(|(g, pol, n)| (g.to_string(), pol.name().to_string(), *n))
            .collect(),
        None => Vec::new(),
    };
    for (i, (pattern, policy, prio)) in rules.iter().enumerate() {
        let path = format!("threads.priorities[{i}]");
        let sched = match policy.as_str() {
            "fifo" => "f",
            "rr" => "r",
            "other" => "o",
            "batch" => "b",
            "idle" => "i",
            _ => {
                p.skip(&path, "a policy TuneD does not name");
                continue;
            }
        };
        let Some(re) = glob_to_tuned_regex(pattern) else {
            p.skip(&path, "a pattern that has no TuneD regular expression");
            continue;
        };
        // group.NAME=RULE_PRIO:SCHED:PRIO:AFFINITY:REGEX (affinity `*`: left as is).
        p.put("scheduler", &format!("group.lltune{i}"), &format!("{i}:{sched}:{prio}:*:{re}"), &path);
    }
    let Some(irq) = &cfg.irq else { return };
    if let Some(d) = &irq.default_affinity {
        p.put("scheduler", "default_irq_smp_affinity", &d.0.to_string(), "irq.default_affinity");
    }
    if let Some(b) = &irq.avoid_cores_for_irqs {
        p.put("irqbalance", "banned_cpus", &b.0.to_string(), "irq.avoid_cores_for_irqs");
    }
    if !irq.manual_affinity.is_empty() {
        p.skip("irq.manual_affinity", "TuneD pins no IRQ by name or device (isolated_cores keeps them off)");
    }
    // RPS/RFS off on every NIC's queues (TuneD's sysfs plugin takes globs).
    if irq.disable_rps == Some(true) {
        p.put("sysfs", "/sys/class/net/*/queues/rx-*/rps_cpus", "0", "irq.disable_rps");
    }
    if irq.disable_rfs == Some(true) {
        p.put("sysfs", "/sys/class/net/*/queues/rx-*/rps_flow_cnt", "0", "irq.disable_rfs");
    }
}

fn services(cfg: &Config, p: &mut Profile) {
    let Some(s) = &cfg.services else { return };
    if let Some(on) = s.irqbalance {
        p.put("service", "service.irqbalance", if on { "start,enable" } else { "stop,disable" }, "services.irqbalance");
    }
    if s.tuned.is_some() {
        p.skip("services.tuned", "this profile is TuneD's own (run it with services.tuned: <its name>)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_tuned_would_misread_are_refused() {
        assert!(representable("vm.swappiness", "0").is_ok());
        assert!(representable("cmdline", "isolcpus=managed_irq,domain,2-31 nohz_full=2-31").is_ok());
        assert!(representable("x", "a#b").is_ok());
        assert!(representable("group.x", "0:f:2:*:(^|/)k(\\]$| |$)").is_ok());
        for (k, v) in [("x", "a #b"), ("x", "${f:exec:rm}"), ("x", " a"), ("x", "a\nb"), ("a=b", "1"), ("[x", "1")] {
            assert!(representable(k, v).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn globs_as_tuned_regexes() {
        assert_eq!(glob_to_tuned_regex("ksoftirqd/*").unwrap(), "(^|^\\[|/)ksoftirqd/[^ ]*(\\]$| |$)");
        assert_eq!(glob_to_tuned_regex("irq/[!0]?").unwrap(), "(^|^\\[|/)irq/[^0][^ ](\\]$| |$)");
        assert_eq!(glob_to_tuned_regex("a.b").unwrap(), "(^|^\\[|/)a\\.b(\\]$| |$)");
        assert_eq!(glob_to_tuned_regex("a;b"), None);
        assert_eq!(glob_to_tuned_regex("a[b"), None);
        assert_eq!(glob_to_tuned_regex("é"), None);
    }
}
