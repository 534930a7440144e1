//! `lltune audit`: a config checked on its own (schema, CPU lists, consistency, safety) and
//! against a host's facts (CPUs online, SMT siblings, NUMA memory, NICs, RDMA devices).
//! Pure: takes the config text and optional facts; the CLI and `lltune_audit` do the I/O.
//!
//! Errors make the audit fail (exit 1); warnings do not. Every issue names its dotted field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{self, Config, IrqTarget, Issue};
use crate::cpulist::CpuList;
use crate::facts::Facts;

/// `{errors: [{field, message}], warnings: [...]}`, as `--output` writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    fn error(&mut self, field: impl Into<String>, msg: impl Into<String>) {
        self.errors.push(Issue::new(field, msg));
    }

    fn warn(&mut self, field: impl Into<String>, msg: impl Into<String>) {
        self.warnings.push(Issue::new(field, msg));
    }

    /// One line per issue, errors first.
    pub fn render_text(&self) -> String {
        let mut o = String::new();
        for e in &self.errors {
            o += &format!("error: {e}\n");
        }
        for w in &self.warnings {
            o += &format!("warning: {w}\n");
        }
        o += &format!("{} error(s), {} warning(s)\n", self.errors.len(), self.warnings.len());
        o
    }
}

/// Governors the kernel's cpufreq core knows.
pub const GOVERNORS: &[&str] = &["performance", "powersave", "schedutil", "ondemand", "conservative", "userspace"];

/// Audits config text: parse issues are errors; then the checks run on what parsed.
pub fn audit_text(text: &str, facts: Option<&Facts>) -> AuditReport {
    match config::yaml::load(text) {
        Ok(doc) => audit_doc(&doc, &config::yaml11_booleans(text), facts),
        Err(e) => {
            let (cfg, issues) = config::parse(text);
            debug_assert!(!issues.is_empty(), "{e}");
            let mut r = AuditReport { errors: issues, warnings: Vec::new() };
            check(&cfg, facts, &mut r);
            r
        }
    }
}

/// Audits a config already parsed into a value (`words`: the YAML 1.1 words of the text it
/// came from; a mapping given as JSON has none).
pub fn audit_doc(doc: &serde_yaml::Value, words: &[config::Yaml11Bool], facts: Option<&Facts>) -> AuditReport {
    let (cfg, issues) = config::parse_doc(doc, words);
    let parsed = issues.is_empty();
    let mut r = AuditReport { errors: issues, warnings: Vec::new() };
    check(&cfg, facts, &mut r);
    if parsed {
        no_effect(&cfg, doc, &mut r);
    }
    r
}

/// A config says what will be done: an item no module carries out is an error (it would be
/// ignored), an item a module leaves out on purpose (a safety flag off, nothing to act on) is
/// a warning naming why.
fn no_effect(cfg: &Config, doc: &serde_yaml::Value, r: &mut AuditReport) {
    let args = crate::config::to_args::from_config(cfg, doc);
    for path in &args.not_implemented {
        r.error(
            path.clone(),
            "lltune has no module that carries this out, so it would be ignored; remove it (or comment it out) so that the config says only what is done",
        );
    }
    // (The boot arguments left out without safety.allow_grub_edit are warned about above.)
    for s in args.skipped.iter().filter(|s| !s.contains("allow_grub_edit")) {
        let (field, why) = s.split_once(": ").unwrap_or(("", s.as_str()));
        let field = field.split_whitespace().next().unwrap_or(field);
        r.warn(field.to_string(), format!("not applied: {why}"));
    }
}

/// `services.tuned` naming a profile: names as TuneD reads them, and (against a host) each
/// profile installed there.
fn check_tuned(cfg: &Config, facts: Option<&Facts>, r: &mut AuditReport) {
    let Some(value) = cfg.services.as_ref().and_then(|s| s.tuned.as_deref()) else { return };
    if crate::config::to_args::tuned_off(Some(value)) {
        return;
    }
    let names = match crate::facts::services::tuned_profile_names(value) {
        Ok(n) => n,
        Err(e) => return r.error("services.tuned", e),
    };
    let Some(f) = facts else { return };
    for n in names {
        if !f.services.tuned.profiles.iter().any(|p| p == n) {
            let looked: Vec<String> =
                crate::facts::services::TUNED_PROFILE_DIRS.iter().map(|d| format!("{d}/{n}/tuned.conf")).collect();
            r.error(
                "services.tuned",
                format!("TuneD profile {n:?} is not installed on this host (none of {})", looked.join(", ")),
            );
        }
    }
}

/// Where a kernel argument sits in the config, for messages.
fn arg_field(cfg: &Config, key: &str) -> String {
    let in_extra = cfg.kernel.as_ref().and_then(|k| k.extra_args.as_ref()).is_some_and(|c| c.get(key).is_some());
    if in_extra { format!("kernel.extra_args.{key}") } else { format!("kernel.cmdline.{key}") }
}

/// A CPU-list kernel argument, parsed; a bad list is an error.
fn cpulist_arg(cfg: &Config, key: &str, r: &mut AuditReport) -> Option<CpuList> {
    let v = cfg.kernel_arg(key)?;
    match CpuList::parse(v.unwrap_or("")) {
        Ok(l) => Some(l),
        Err(e) => {
            r.error(arg_field(cfg, key), e.to_string());
            None
        }
    }
}

/// `time_sync` on its own: a provider and what it needs, nothing of the other provider's.
fn time_sync(t: &config::TimeSync, r: &mut AuditReport) {
    use config::TimeProvider::{Chrony, Ptp4l};
    let chrony_keys = !t.servers.is_empty() || t.refclock.is_some();
    match t.provider() {
        None if chrony_keys || t.disable_competing.is_some() => {
            r.error("time_sync.provider", "give `chrony` or `ptp4l`: without it nothing of time_sync is carried out")
        }
        None => {}
        Some(Chrony) => {
            if !chrony_keys {
                r.error("time_sync", "provider chrony: give servers, refclock or both");
            }
            if let Some(p) = &t.ptp {
                if p.phc2sys == Some(true) {
                    r.error(
                        "time_sync.ptp.phc2sys",
                        "phc2sys would write the system clock chrony keeps; provider is chrony",
                    );
                }
                let others = p.domain.is_some() || p.transport.is_some() || p.delay_mechanism.is_some();
                if p.interface.is_none() && others {
                    r.error("time_sync.ptp.interface", "ptp4l's settings without the interface ptp4l runs on");
                }
            }
        }
        Some(Ptp4l) => {
            if chrony_keys {
                let key = if t.servers.is_empty() { "time_sync.refclock" } else { "time_sync.servers" };
                r.error(key, "chrony's setting; provider is ptp4l");
            }
            if t.ptp.as_ref().and_then(|p| p.interface.as_ref()).is_none() {
                r.error("time_sync.ptp.interface", "provider ptp4l needs the interface ptp4l runs on");
            }
            if let Some(d) = t.ptp.as_ref().and_then(|p| p.domain).filter(|d| *d > 127) {
                r.error("time_sync.ptp.domain", format!("{d} is outside 0..127 (ptp4l's domainNumber)"));
            }
        }
    }
}

/// Runs every check on a parsed config.
pub fn check(cfg: &Config, facts: Option<&Facts>, r: &mut AuditReport) {
    if let Some(t) = &cfg.time_sync {
        time_sync(t, r);
    }
    // ---- CPU sets of the config ----
    let isolate_cores = cfg.cpu.as_ref().and_then(|c| c.isolate_cores.as_ref()).map(|c| c.0.clone());
    let isolcpus =
        cfg.kernel_arg("isolcpus").and_then(|v| match crate::facts::kernel::parse_isolcpus(v.unwrap_or("")) {
            Ok(i) => {
                for f in i.flags.iter().filter(|f| !crate::facts::kernel::ISOLCPUS_FLAGS.contains(&f.as_str())) {
                    r.error(
                        arg_field(cfg, "isolcpus"),
                        format!(
                            "unknown flag `{f}` (the kernel knows {})",
                            crate::facts::kernel::ISOLCPUS_FLAGS.join(", ")
                        ),
                    );
                }
                Some(i)
            }
            Err(e) => {
                r.error(arg_field(cfg, "isolcpus"), e);
                None
            }
        });
    let nohz_full = cpulist_arg(cfg, "nohz_full", r);
    let rcu_nocbs = cpulist_arg(cfg, "rcu_nocbs", r);
    let kthread_cpus = cpulist_arg(cfg, "kthread_cpus", r);
    let irqaffinity = cpulist_arg(cfg, "irqaffinity", r);
    let avoid = cfg.irq.as_ref().and_then(|i| i.avoid_cores_for_irqs.as_ref()).map(|c| c.0.clone());

    // The isolated set: isolate_cores, else isolcpus, else nohz_full.
    let isolated: CpuList = isolate_cores
        .clone()
        .or_else(|| isolcpus.as_ref().map(|i| i.cpus.clone()))
        .or_else(|| nohz_full.clone())
        .unwrap_or_default();

    if let (Some(ic), Some(i)) = (&isolate_cores, &isolcpus) {
        if ic != &i.cpus {
            r.error(
                arg_field(cfg, "isolcpus"),
                format!("isolates {} but cpu.isolate_cores is {ic}; they must name the same CPUs", i.cpus),
            );
        }
    }
    if let Some(i) = &isolcpus {
        if !i.flags.iter().any(|f| f == "managed_irq") {
            r.warn(
                arg_field(cfg, "isolcpus"),
                "no managed_irq flag: drivers with kernel-managed IRQs (NVMe, many NICs) keep queues on isolated CPUs",
            );
        }
    }
    if !isolated.is_empty() && isolcpus.is_none() && cfg.kernel.as_ref().and_then(|k| k.cmdline.as_ref()).is_some() {
        r.warn(
            "kernel.cmdline.isolcpus",
            format!("unset while {isolated} is isolated: the scheduler will still place tasks there"),
        );
    }
    if let Some(n) = &nohz_full {
        if !n.is_subset(&isolated) {
            r.error(
                arg_field(cfg, "nohz_full"),
                format!(
                    "{} is not isolated ({}): a tickless CPU that gets other tasks scheduled on it only loses its tick",
                    n.difference(&isolated),
                    isolated
                ),
            );
        } else if n != &isolated {
            r.warn(arg_field(cfg, "nohz_full"), format!("covers {n}, not every isolated CPU ({isolated})"));
        }
        if let Some(rc) = &rcu_nocbs {
            if !n.is_subset(rc) {
                r.warn(arg_field(cfg, "rcu_nocbs"), format!("{rc} does not cover nohz_full {n}"));
            }
        }
    } else if !isolated.is_empty() && cfg.kernel.as_ref().and_then(|k| k.cmdline.as_ref()).is_some() {
        r.warn("kernel.cmdline.nohz_full", format!("unset: isolated CPUs {isolated} keep the scheduler tick"));
    }
    if let Some(rc) = &rcu_nocbs {
        if !isolated.is_subset(rc) && nohz_full.is_none() {
            r.warn(arg_field(cfg, "rcu_nocbs"), format!("{rc} does not cover the isolated CPUs {isolated}"));
        }
    }
    for (key, set) in [("kthread_cpus", &kthread_cpus), ("irqaffinity", &irqaffinity)] {
        if let Some(s) = set {
            let both = s.intersection(&isolated);
            if !both.is_empty() {
                r.error(arg_field(cfg, key), format!("housekeeping CPUs {s} include isolated CPUs {both}"));
            }
            if s.is_empty() {
                r.error(arg_field(cfg, key), "empty: the kernel needs at least one housekeeping CPU");
            }
        }
    }
    if let Some(irq) = &cfg.irq {
        for (i, pin) in irq.manual_affinity.iter().enumerate() {
            let field = format!("irq.manual_affinity[{i}].cpus");
            let both = pin.cpus.0.intersection(&isolated);
            if !both.is_empty() {
                r.error(&field, format!("pins `{}` to isolated CPUs {both}", pin.target));
            } else if let Some(a) = &avoid {
                let both = pin.cpus.0.intersection(a);
                if !both.is_empty() {
                    r.error(
                        &field,
                        format!("pins `{}` to CPUs {both} that irq.avoid_cores_for_irqs excludes", pin.target),
                    );
                }
            }
            if pin.cpus.0.is_empty() {
                r.error(&field, "empty CPU list");
            }
            if let IrqTarget::Match(p) = &pin.target {
                if let Err(e) = glob::Pattern::new(p) {
                    r.error(format!("irq.manual_affinity[{i}].match"), format!("bad pattern: {e}"));
                }
            }
        }
        if let Some(a) = &avoid {
            if !isolated.is_subset(a) {
                r.warn("irq.avoid_cores_for_irqs", format!("{a} does not cover the isolated CPUs {isolated}"));
            }
        }
        if let Some(d) = &irq.default_affinity {
            if d.0.is_empty() {
                r.error("irq.default_affinity", "empty: new IRQs need at least one CPU");
            }
            let both = d.0.intersection(&isolated);
            if !both.is_empty() {
                r.error("irq.default_affinity", format!("new IRQs would start on isolated CPUs {both}"));
            }
        }
    }
    if let Some(q) = cfg.cpu.as_ref().and_then(|c| c.pm_qos_resume_latency_us.as_ref()) {
        if q.cpus.as_ref().is_some_and(|c| c.0.is_empty()) {
            r.error("cpu.pm_qos_resume_latency_us.cpus", "empty CPU list");
        }
    }
    if let Some(u) = cfg.cpu.as_ref().and_then(|c| c.uncore.as_ref()) {
        let khz = |v: &Option<config::Text>| v.as_ref().and_then(|t| t.0.parse::<u64>().ok());
        if let (Some(lo), Some(hi)) = (khz(&u.min_freq_khz), khz(&u.max_freq_khz)) {
            if lo > hi {
                r.error("cpu.uncore.min_freq_khz", format!("{lo} is above max_freq_khz {hi}"));
            }
        }
    }

    if let Some(t) = &cfg.threads {
        if t.isolate != Some(false) && isolate_cores.is_none() {
            r.warn("threads", "no cpu.isolate_cores to move threads off: only threads.priorities is carried out");
        }
        if let (Some(hk), Some(iso)) = (&t.housekeeping_cores, &isolate_cores) {
            let both = hk.0.intersection(iso);
            if !both.is_empty() {
                r.error("threads.housekeeping_cores", format!("CPUs {both} are in cpu.isolate_cores too"));
            } else if hk.0.is_empty() {
                r.error("threads.housekeeping_cores", "empty CPU list");
            }
        }
        let globs = t.keep.iter().enumerate().map(|(i, g)| (format!("threads.keep[{i}]"), g));
        let rules = t
            .priorities
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, p)| (format!("threads.priorities[{i}].match"), &p.pattern));
        for (field, g) in globs.chain(rules) {
            if g.is_empty() {
                r.error(field, "empty pattern");
            } else if let Err(e) = glob::Pattern::new(g) {
                r.error(field, format!("bad pattern: {e}"));
            }
        }
    }

    // ---- Kernel arguments: safety ----
    // The safety policy (crate::policy) runs in the config reader, `config::parse`, so that
    // every reader of a config (audit, apply, lltune_audit) refuses the same arguments.
    let args = cfg.kernel_args();
    if cfg.kernel_arg("idle") == Some(Some("poll")) {
        r.warn(arg_field(cfg, "idle"), "idle=poll keeps every CPU at full power: heat, no turbo headroom");
    }
    if !args.is_empty() && !cfg.safety.allow_grub_edit {
        r.warn(
            "safety.allow_grub_edit",
            format!(
                "false: apply will not change the boot command line ({} argument(s) in kernel.cmdline)",
                args.len()
            ),
        );
    }

    // ---- Other sections ----
    if let Some(g) = cfg.cpu.as_ref().and_then(|c| c.governor.as_ref()) {
        if !GOVERNORS.contains(&g.target.as_str()) {
            r.error(
                "cpu.governor.target",
                format!("unknown governor `{}` (known: {})", g.target, GOVERNORS.join(", ")),
            );
        }
    }
    if let Some(hp) = cfg.memory.as_ref().and_then(|m| m.hugepages.as_ref()) {
        check_hugepages(hp, facts, r);
    }
    let boot = boot_hugepages(cfg, r);
    if let Some(f) = facts {
        check_hugepage_reserve(cfg, &boot, f, r);
    }
    if let Some(n) = &cfg.network {
        let mut seen = std::collections::BTreeSet::new();
        for (i, itf) in n.interfaces.iter().enumerate() {
            if !seen.insert(itf.name.as_str()) {
                r.error(format!("network.interfaces[{i}].name"), format!("`{}` is listed twice", itf.name));
            }
        }
    }
    check_stack_sections(cfg, r);
    if cfg.services.as_ref().and_then(|s| s.irqbalance) == Some(true) && !isolated.is_empty() {
        r.warn("services.irqbalance", "true with isolated CPUs: irqbalance moves IRQs onto them unless it bans them");
    }
    check_tuned(cfg, facts, r);

    if let Some(f) = facts {
        check_against_host(cfg, f, &isolated, r);
        let sets: Vec<(String, &CpuList)> = [
            ("cpu.isolate_cores".to_string(), isolate_cores.as_ref()),
            (arg_field(cfg, "isolcpus"), isolcpus.as_ref().map(|i| &i.cpus)),
            (arg_field(cfg, "nohz_full"), nohz_full.as_ref()),
            (arg_field(cfg, "rcu_nocbs"), rcu_nocbs.as_ref()),
            (arg_field(cfg, "kthread_cpus"), kthread_cpus.as_ref()),
            (arg_field(cfg, "irqaffinity"), irqaffinity.as_ref()),
            ("irq.avoid_cores_for_irqs".to_string(), avoid.as_ref()),
            (
                "irq.default_affinity".to_string(),
                cfg.irq.as_ref().and_then(|i| i.default_affinity.as_ref()).map(|c| &c.0),
            ),
            (
                "cpu.pm_qos_resume_latency_us.cpus".to_string(),
                cfg.cpu.as_ref().and_then(|c| c.pm_qos_resume_latency_us.as_ref()?.cpus.as_ref()).map(|c| &c.0),
            ),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        if !f.cpu.online.is_empty() {
            for (field, set) in sets {
                let outside = set.difference(&f.cpu.online);
                if !outside.is_empty() {
                    r.error(field, format!("CPUs {outside} are not online on this host (online: {})", f.cpu.online));
                }
            }
        }
    }
}

/// `node0` → 0.
/// The NUMA node of a `per_node` key: `node0`, or `0` as the seed also accepted.
pub fn node_id(key: &str) -> Option<u32> {
    let digits = key.strip_prefix("node").unwrap_or(key);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn check_hugepages(hp: &config::HugepagesConfig, facts: Option<&Facts>, r: &mut AuditReport) {
    let size = hp.size_kb();
    if hp.size_kb.is_some() && size.is_none() {
        r.error("memory.hugepages.size_kb", "expected a number of kB (2048 or 1048576)");
    }
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for k in hp.per_node.keys() {
        match node_id(k) {
            None => r.error(
                format!("memory.hugepages.per_node.{k}"),
                "expected a NUMA node key: nodeN or N (node0, 0, node1, 1, ...)",
            ),
            Some(id) => {
                if let Some(first) = seen.insert(id, k) {
                    r.error(
                        format!("memory.hugepages.per_node.{k}"),
                        format!("node {id} is already given as `{first}`"),
                    );
                }
            }
        }
    }
    let sum: u64 = hp.per_node.values().sum();
    if let Some(total) = hp.total {
        if !hp.per_node.is_empty() && sum != total {
            r.error(
                "memory.hugepages.per_node",
                format!("adds up to {sum} pages, but memory.hugepages.total is {total}"),
            );
        }
    }
    let Some(f) = facts else { return };
    if let Some(size) = size {
        let known: Vec<String> =
            f.memory.hugepages.keys().chain(f.numa.nodes.iter().flat_map(|n| n.hugepages.keys())).cloned().collect();
        if !known.is_empty() && !known.contains(&size.to_string()) {
            r.error(
                "memory.hugepages.size_kb",
                format!("{size} kB pages are not supported by this host (sizes: {})", dedup(known).join(", ")),
            );
        }
    }
    for k in hp.per_node.keys() {
        let Some(id) = node_id(k) else { continue };
        if !f.numa.nodes.is_empty() && !f.numa.nodes.iter().any(|n| n.id == id) {
            r.error(format!("memory.hugepages.per_node.{k}"), format!("this host has no NUMA node {id}"));
        }
    }
}

pub use crate::policy::{OS_RESERVE_MIN_KB, OS_RESERVE_PERCENT, node_reserve_kb, os_reserve_kb};

/// The config's effective kernel arguments in file order (`extra_args` overrides `cmdline`),
/// each key once, as apply writes them.
fn effective_args(cfg: &Config) -> Vec<(String, Option<String>)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (k, _) in cfg.kernel_args() {
        if seen.insert(k.clone()) {
            let v = cfg.kernel_arg(&k).flatten().map(str::to_string);
            out.push((k, v));
        }
    }
    out
}

/// Huge pages the config reserves at boot, read by the policy as the kernel reads the line
/// (`crate::policy::boot_hugepages`); a bad value is an error at its field.
fn boot_hugepages(cfg: &Config, r: &mut AuditReport) -> Vec<crate::policy::BootHugepages> {
    let args = effective_args(cfg);
    match crate::policy::boot_hugepages(args.iter().map(|(k, v)| (k.as_str(), v.as_deref()))) {
        Ok(b) => b,
        Err(e) => {
            r.error(arg_field(cfg, e.key), e.message);
            Vec::new()
        }
    }
}

/// Boot and runtime huge pages against the host's memory, keeping the OS reserve
/// (`crate::policy`, the check `lltune_kernel_args` makes too); per size the runtime count
/// replaces the boot count, sizes add up.
fn check_hugepage_reserve(cfg: &Config, boot: &[crate::policy::BootHugepages], f: &Facts, r: &mut AuditReport) {
    let node_mem: u64 = f.numa.nodes.iter().filter_map(|n| n.memory_kb).sum();
    let Some(mem) = f.memory.total_kb.or((node_mem > 0).then_some(node_mem)) else { return };
    let nodes: Vec<(u32, u64)> = f.numa.nodes.iter().filter_map(|n| Some((n.id, n.memory_kb?))).collect();
    let boot_field = arg_field(cfg, "hugepages");
    let boot_errors = crate::policy::check_boot_hugepages(boot, mem, &nodes);
    let boot_ok = boot_errors.is_empty();
    for e in boot_errors {
        r.error(&boot_field, e);
    }
    let runtime = cfg.memory.as_ref().and_then(|m| m.hugepages.as_ref()).and_then(|hp| {
        let pages = hp.total.unwrap_or_else(|| hp.per_node.values().sum());
        let size = match &hp.size_kb {
            None => 2048,
            Some(_) => hp.size_kb()?,
        };
        let field = if hp.total.is_some() { "memory.hugepages.total" } else { "memory.hugepages.per_node" };
        (pages > 0).then_some((size, pages, field, hp))
    });
    let Some((size, pages, field, hp)) = runtime else { return };
    let kb = pages.saturating_mul(size);
    if let Some(e) = crate::policy::host_reserve_error(&format!("{pages} × {size} kB = {kb} kB"), kb, mem) {
        r.error(field, e);
    } else if boot_ok {
        // Another size comes on top of the boot pages; the same size replaces them.
        let others: Vec<_> = boot.iter().filter(|b| b.size_kb != size).collect();
        let other_kb = others.iter().fold(0u64, |a, b| a.saturating_add(b.total.saturating_mul(b.size_kb)));
        let what = others.iter().map(|b| format!("{} × {} kB", b.total, b.size_kb)).collect::<Vec<_>>().join(" + ");
        let sum = kb.saturating_add(other_kb);
        let text = format!("{pages} × {size} kB = {kb} kB on top of {what} at boot ({boot_field}) = {sum} kB");
        if let Some(e) = crate::policy::host_reserve_error(&text, sum, mem).filter(|_| other_kb > 0) {
            r.error(field, e);
        }
    }
    // Per NUMA node: runtime counts.
    for (k, pages) in &hp.per_node {
        let Some(id) = node_id(k) else { continue };
        let Some(node_mem) = f.numa.nodes.iter().find(|n| n.id == id).and_then(|n| n.memory_kb) else { continue };
        if let Some(e) = crate::policy::node_reserve_error(*pages, size, id, node_mem) {
            r.error(format!("memory.hugepages.per_node.{k}"), e);
        }
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    crate::sort::sort_by(&mut v, Ord::cmp);
    v.dedup();
    v
}

/// The kernel-bypass sections that ask for a profile: stacks in config order.
fn stack_sections(cfg: &Config) -> Vec<(&'static str, &config::StackProfile)> {
    [("onload", &cfg.onload), ("vma", &cfg.vma), ("xlio", &cfg.xlio)]
        .into_iter()
        .filter_map(|(n, s)| s.as_ref().filter(|s| s.wanted()).map(|s| (n, s)))
        .collect()
}

/// `onload` / `vma` / `xlio` on their own: a tuning level, and variables `lltune_bypass`
/// writes (the stack's prefix; values no shell reads specially).
fn check_stack_sections(cfg: &Config, r: &mut AuditReport) {
    use crate::modules::bypass;
    for (stack, s) in stack_sections(cfg) {
        if s.tuning_level.is_none() {
            r.error(
                format!("{stack}.tuning_level"),
                "missing: ultra_low_latency, low_latency or balanced (or generate_profile: false to write no profile)",
            );
        }
        for (k, v) in &s.variables.0 {
            let field = format!("{stack}.variables.{k}");
            if let Err(e) = bypass::check_name(stack, k) {
                r.error(&field, e);
            } else if let Err(e) = bypass::check_value(&serde_json::Value::String(v.clone())) {
                r.error(&field, e);
            }
        }
    }
}

/// Where each stack was looked for, for the refusal's message.
fn stack_absent(stack: &str, f: &Facts) -> Option<String> {
    let u = &f.user_stacks;
    let (installed, looked) = match stack {
        "onload" => (
            u.onload.installed,
            "the onload launcher (/usr/bin/onload, /usr/local/bin/onload, /opt/onload/bin/onload) and the kernel module (/sys/module/onload)".to_string(),
        ),
        lib => (
            if lib == "vma" { u.vma.installed } else { u.xlio.installed },
            format!("lib{lib}.so* in /usr/lib64, /usr/lib, /usr/lib/<arch>-linux-gnu, /usr/local/lib and /usr/local/lib64"),
        ),
    };
    match installed {
        Some(true) => None,
        Some(false) => Some(format!("this host has no {stack}: looked for {looked}")),
        None => {
            Some(format!("cannot tell whether this host has {stack}: none of the places to look exists ({looked})"))
        }
    }
}

fn check_against_host(cfg: &Config, f: &Facts, isolated: &CpuList, r: &mut AuditReport) {
    for (stack, _) in stack_sections(cfg) {
        if let Some(why) = stack_absent(stack, f) {
            r.error(
                stack,
                format!("{why}; its profile would set variables nothing reads (install the stack, or remove the {stack} section)"),
            );
        }
    }
    let online = &f.cpu.online;
    if !isolated.is_empty() && !online.is_empty() && online.is_subset(isolated) {
        r.error(
            "cpu.isolate_cores",
            format!("isolates every online CPU ({online}): nothing is left for the kernel and the OS"),
        );
    }
    if !isolated.is_empty() {
        let split: Vec<String> = f
            .cpu
            .thread_siblings
            .iter()
            .map(|s| s.intersection(online))
            .filter(|s| s.len() > 1 && !s.is_disjoint(isolated) && !s.is_subset(isolated))
            .map(|s| s.to_string())
            .collect();
        if !split.is_empty() {
            r.warn(
                "cpu.isolate_cores",
                format!(
                    "splits SMT sibling threads between isolated and housekeeping CPUs: {} (isolate whole cores)",
                    split.join(" ")
                ),
            );
        }
    }
    let nic = |name: &str| f.nics.iter().find(|n| n.name.as_deref() == Some(name));
    if let Some(n) = &cfg.network {
        for (i, itf) in n.interfaces.iter().enumerate() {
            match nic(&itf.name) {
                None => r.error(
                    format!("network.interfaces[{i}].name"),
                    format!("no network interface `{}` on this host", itf.name),
                ),
                Some(found) => {
                    if let (Some(want), Some(have)) = (itf.numa_node, found.numa_node) {
                        if want != have {
                            r.warn(
                                format!("network.interfaces[{i}].numa_node"),
                                format!("{} is on node {have}, not {want}", itf.name),
                            );
                        }
                    }
                    if let (Some(want), Some(max)) =
                        (itf.rings.as_ref().and_then(|x| x.rx), found.rings.map(|x| x.rx_max_pending))
                    {
                        if max > 0 && want > max {
                            r.error(
                                format!("network.interfaces[{i}].rings.rx"),
                                format!("{want} exceeds the device's maximum {max}"),
                            );
                        }
                    }
                    if let (Some(want), Some(max)) =
                        (itf.rings.as_ref().and_then(|x| x.tx), found.rings.map(|x| x.tx_max_pending))
                    {
                        if max > 0 && want > max {
                            r.error(
                                format!("network.interfaces[{i}].rings.tx"),
                                format!("{want} exceeds the device's maximum {max}"),
                            );
                        }
                    }
                }
            }
        }
    }
    if let Some(ptp) = cfg.time_sync.as_ref().and_then(|t| t.ptp.as_ref()).and_then(|p| p.interface.as_deref()) {
        match nic(ptp) {
            None => r.error("time_sync.ptp.interface", format!("no network interface `{ptp}` on this host")),
            Some(n)
                if n.phc_index.is_none()
                    && cfg.time_sync.as_ref().and_then(|t| t.provider()) == Some(config::TimeProvider::Ptp4l) =>
            {
                r.error("time_sync.ptp.interface", format!("`{ptp}` has no PTP hardware clock (ptp4l needs one)"))
            }
            Some(_) => {}
        }
    }
    if let Some(phc) = cfg.time_sync.as_ref().and_then(|t| t.refclock.as_ref()).map(|r| r.phc.as_str()) {
        if !phc.starts_with("/dev/") {
            match nic(phc) {
                None => r.error("time_sync.refclock.phc", format!("no network interface `{phc}` on this host")),
                Some(n) if n.phc_index.is_none() => {
                    r.error("time_sync.refclock.phc", format!("`{phc}` has no PTP hardware clock"))
                }
                Some(_) => {}
            }
        }
    }
    if let Some(rdma) = &cfg.rdma {
        for (i, d) in rdma.devices.iter().enumerate() {
            match f.user_stacks.rdma.iter().find(|x| x.name == d.name) {
                None => r.error(format!("rdma.devices[{i}].name"), format!("no RDMA device `{}` on this host", d.name)),
                Some(found) => {
                    if let Some(node) = found.numa_node {
                        let local = f
                            .numa
                            .nodes
                            .iter()
                            .find(|n| i64::from(n.id) == i64::from(node))
                            .map(|n| n.cpus.clone())
                            .unwrap_or_default();
                        if !isolated.is_empty() && !local.is_empty() && local.is_disjoint(isolated) {
                            r.warn(
                                format!("rdma.devices[{i}].name"),
                                format!("{} is on node {node}, which has no isolated CPU", d.name),
                            );
                        }
                    }
                }
            }
        }
    }
    // IRQ pins name NICs that are there, and stay on the NUMA node of the NICs they take.
    if let Some(irq) = &cfg.irq {
        for (i, pin) in irq.manual_affinity.iter().enumerate() {
            let field = format!("irq.manual_affinity[{i}].{}", pin.target.key());
            let nics: Vec<&crate::facts::nic::Nic> = match &pin.target {
                IrqTarget::Match(p) => {
                    let Ok(pat) = glob::Pattern::new(p) else { continue };
                    f.nics.iter().filter(|n| n.name.as_deref().is_some_and(|x| pat.matches(x))).collect()
                }
                IrqTarget::Nic(name) => {
                    let found: Vec<_> = f.nics.iter().filter(|n| n.name.as_deref() == Some(name.as_str())).collect();
                    if found.is_empty() {
                        r.error(&field, format!("no network interface `{name}` on this host"));
                    }
                    found
                }
                IrqTarget::Pci(addr) => {
                    let found: Vec<_> = f
                        .nics
                        .iter()
                        .filter(|n| n.pci_address.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(addr)))
                        .collect();
                    // A NIC known only by the PCI address its IRQs name is there too.
                    if found.is_empty() && !f.irqs.nics.contains_key(addr) {
                        r.error(&field, format!("no network device at PCI address `{addr}` on this host"));
                    }
                    // A PF with netdevs on several ports is one device: its node once.
                    found.into_iter().take(1).collect()
                }
            };
            for n in nics {
                let Some(node) = n.numa_node else { continue };
                let Some(local) = f.numa.nodes.iter().find(|x| i64::from(x.id) == node).map(|x| &x.cpus) else {
                    continue;
                };
                let remote = pin.cpus.0.difference(local);
                if !remote.is_empty() {
                    r.warn(
                        format!("irq.manual_affinity[{i}].cpus"),
                        format!(
                            "CPUs {remote} are not on node {node} of {} (node CPUs {local})",
                            n.name.as_deref().or(n.pci_address.as_deref()).unwrap_or("?")
                        ),
                    );
                }
            }
        }
    }
    if f.cpu.vendor.as_deref() == Some("AuthenticAMD") && cfg.kernel_arg("intel_pstate").is_some() {
        r.warn(arg_field(cfg, "intel_pstate"), "has no effect on AMD processors");
    }
    if let Some(h) = &cfg.hardware {
        for (field, want, have) in [
            ("hardware.sockets", h.sockets, f.cpu.sockets),
            ("hardware.cores_per_socket", h.cores_per_socket, f.cpu.cores_per_socket),
            ("hardware.threads_per_core", h.threads_per_core, f.cpu.threads_per_core),
        ] {
            if let (Some(w), Some(hv)) = (want, have) {
                if w != hv {
                    r.warn(
                        field,
                        format!("{w} in the config, {hv} on this host: was the config written for another machine?"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing;

    fn errors(text: &str, f: Option<&Facts>) -> Vec<(String, String)> {
        audit_text(text, f).errors.into_iter().map(|i| (i.field, i.message)).collect()
    }

    #[test]
    fn time_sync_needs_a_provider_and_only_its_settings() {
        let fields = |text: &str| errors(text, None).into_iter().map(|(f, _)| f).collect::<Vec<_>>();
        assert_eq!(fields("version: 1\ntime_sync:\n  servers: [{hostname: a}]\n"), ["time_sync.provider"]);
        assert_eq!(fields("version: 1\ntime_sync:\n  provider: chrony\n"), ["time_sync"]);
        assert_eq!(
            fields("version: 1\ntime_sync:\n  provider: ptp4l\n  servers: [{hostname: a}]\n  ptp: {domain: 200}\n"),
            ["time_sync.servers", "time_sync.ptp.interface", "time_sync.ptp.domain"]
        );
        assert!(
            fields(
                "version: 1\ntime_sync:\n  provider: chrony\n  servers: [{hostname: a}]\n  ptp: {interface: eth0}\n"
            )
            .is_empty()
        );
        // Against the host: the NIC must have a PHC.
        let mut f = testing::two_nodes();
        f.nics.push(crate::facts::nic::Nic { name: Some("eth0".into()), ..Default::default() });
        let e = errors("version: 1\ntime_sync:\n  provider: chrony\n  refclock: {phc: eth0}\n", Some(&f));
        assert_eq!(e, [("time_sync.refclock.phc".to_string(), "`eth0` has no PTP hardware clock".to_string())]);
        let e = errors("version: 1\ntime_sync:\n  ptp: {interface: eth0}\n", Some(&f));
        assert_eq!(e[0].0, "time_sync.ptp.interface");
    }

    #[test]
    fn threads_housekeeping_patterns_and_nothing_to_isolate() {
        let e = errors(
            "version: 1\ncpu:\n  isolate_cores: 1-3\nthreads:\n  housekeeping_cores: 0-1\n  keep: [\"[\"]\n  priorities: [{match: \"\", policy: other, priority: 0}]\n",
            None,
        );
        let fields: Vec<&str> = e.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["threads.housekeeping_cores", "threads.keep[0]", "threads.priorities[0].match"], "{e:?}");
        assert!(e[0].1.contains("CPUs 1 are in cpu.isolate_cores too"), "{e:?}");
        let r = audit_text("version: 1\nthreads: {keep: [app]}\n", None);
        assert!(r.errors.is_empty(), "{r:#?}");
        assert!(
            r.warnings.iter().any(|w| w.field == "threads" && w.message.contains("no cpu.isolate_cores")),
            "{r:#?}"
        );
    }

    #[test]
    fn consistent_isolation_audits_clean() {
        let f = testing::two_nodes();
        let text = "version: 1\ncpu:\n  isolate_cores: 1-3,9-11\nkernel:\n  cmdline:\n    isolcpus: managed_irq,domain,1-3,9-11\n    nohz_full: 1-3,9-11\n    rcu_nocbs: 1-3,9-11\n    kthread_cpus: 0,4-8,12-15\n    irqaffinity: 0,4-8,12-15\nirq:\n  avoid_cores_for_irqs: 1-3,9-11\nsafety:\n  allow_grub_edit: true\n";
        let r = audit_text(text, Some(&f));
        assert!(r.errors.is_empty() && r.warnings.is_empty(), "{r:#?}");
    }

    #[test]
    fn housekeeping_overlapping_isolation_is_an_error() {
        let e = errors(
            "version: 1\ncpu:\n  isolate_cores: 1-3\nkernel:\n  cmdline:\n    kthread_cpus: 0-1\n    irqaffinity: 0\n",
            None,
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "kernel.cmdline.kthread_cpus");
    }

    #[test]
    fn isolcpus_and_isolate_cores_must_agree() {
        let e = errors(
            "version: 1\ncpu:\n  isolate_cores: 1-3\nkernel:\n  cmdline:\n    isolcpus: managed_irq,domain,1-2\n",
            None,
        );
        assert_eq!(e[0].0, "kernel.cmdline.isolcpus");
        let e = errors("version: 1\nkernel:\n  cmdline:\n    isolcpus: managed_irq,bogus,1-2\n", None);
        assert!(e[0].1.contains("unknown flag `bogus`"), "{e:?}");
    }

    #[test]
    fn split_siblings_say_sibling() {
        let f = testing::two_nodes();
        let r = audit_text("version: 1\ncpu:\n  isolate_cores: 1-3\n", Some(&f));
        assert!(r.warnings.iter().any(|w| w.field == "cpu.isolate_cores" && w.message.contains("sibling")), "{r:#?}");
    }

    #[test]
    fn every_cpu_isolated_and_cpus_not_online() {
        let f = testing::two_nodes();
        let e = errors("version: 1\ncpu:\n  isolate_cores: 0-15\n", Some(&f));
        assert!(e.iter().any(|(k, m)| k == "cpu.isolate_cores" && m.contains("every online CPU")), "{e:?}");
        let e = errors("version: 1\ncpu:\n  isolate_cores: 9-17\n", Some(&f));
        assert!(e.iter().any(|(k, m)| k == "cpu.isolate_cores" && m.contains("16-17")), "{e:?}");
    }

    #[test]
    fn mitigations_need_the_safety_flag_and_root_is_refused() {
        let e = errors("version: 1\nkernel:\n  cmdline:\n    mitigations: \"off\"\n", None);
        assert_eq!(e[0].0, "kernel.cmdline.mitigations");
        assert!(errors("version: 1\nkernel:\n  cmdline:\n    mitigations: \"off\"\nsafety:\n  allow_dangerous_mitigations: true\n", None).is_empty());
        assert!(errors("version: 1\nkernel:\n  cmdline:\n    mitigations: auto\n", None).is_empty());
        let e = errors("version: 1\nkernel:\n  extra_args:\n    nopti:\n    root: /dev/sda1\n", None);
        let fields: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(fields, ["kernel.extra_args.nopti", "kernel.extra_args.root"]);
    }

    #[test]
    fn grub_edit_flag_off_is_a_warning() {
        let r = audit_text("version: 1\nkernel:\n  cmdline:\n    skew_tick: 1\n", None);
        assert!(r.errors.is_empty());
        assert_eq!(r.warnings[0].field, "safety.allow_grub_edit");
    }

    #[test]
    fn hugepages_sum_and_node_memory() {
        let f = testing::two_nodes(); // 16 GiB per node
        let e = errors(
            "version: 1\nmemory:\n  hugepages:\n    size_kb: \"2048\"\n    total: 10\n    per_node:\n      node0: 4\n      node1: 4\n",
            Some(&f),
        );
        assert_eq!(e[0].0, "memory.hugepages.per_node");
        let e = errors(
            "version: 1\nmemory:\n  hugepages:\n    size_kb: 1048576\n    total: 17\n    per_node:\n      node0: 17\n",
            Some(&f),
        );
        assert!(e.iter().any(|(k, m)| k == "memory.hugepages.per_node.node0" && m.contains("on node 0")), "{e:?}");
        let e = errors(
            "version: 1\nmemory:\n  hugepages:\n    size_kb: 2048\n    total: 1\n    per_node:\n      node7: 1\n",
            Some(&f),
        );
        assert!(e.iter().any(|(k, _)| k == "memory.hugepages.per_node.node7"), "{e:?}");
        // 16 GiB on a 16 GiB node leaves it nothing; 14 GiB keeps its 10%.
        let e = errors(
            "version: 1\nmemory:\n  hugepages:\n    size_kb: 1048576\n    total: 16\n    per_node:\n      node0: 16\n",
            Some(&f),
        );
        assert_eq!(e, [("memory.hugepages.per_node.node0".to_string(), "16 × 1048576 kB = 16777216 kB on node 0: the node has 16777216 kB (16.0 GiB); huge pages must leave it at least 1677720 kB (10%), so at most 15099496 kB".to_string())]);
        assert!(errors("version: 1\nmemory:\n  hugepages:\n    size_kb: 1048576\n    total: 14\n    per_node:\n      node0: 14\n", Some(&f)).is_empty());
    }

    /// A one-node host of 32 GiB (MemTotal as a 32 GiB machine reports it).
    fn host_32g() -> Facts {
        let mut f = testing::two_nodes();
        f.numa.nodes.truncate(1);
        f.numa.nodes[0].memory_kb = Some(32_827_640);
        f.memory.total_kb = Some(32_827_640);
        f
    }

    #[test]
    fn hugepages_leave_the_os_its_reserve_at_runtime() {
        let f = host_32g();
        // The issue's case: 16,030 × 2 MiB fits in MemTotal but leaves the OS 767 MiB.
        let e = errors("version: 1\nmemory:\n  hugepages:\n    size_kb: 2048\n    total: 16030\n", Some(&f));
        assert_eq!(e[0].0, "memory.hugepages.total");
        assert_eq!(
            e[0].1,
            "16030 × 2048 kB = 32829440 kB: the host has 32827640 kB (31.3 GiB); huge pages must leave the OS at least 3282760 kB (3.1 GiB: the larger of 10% and 2 GiB), so at most 29544880 kB"
        );
        assert!(
            errors("version: 1\nmemory:\n  hugepages:\n    size_kb: 2048\n    total: 14000\n", Some(&f)).is_empty()
        );
        // Per node only (no total): named at per_node.
        let e = errors("version: 1\nmemory:\n  hugepages:\n    per_node:\n      node0: 15000\n", Some(&f));
        assert_eq!(
            e.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["memory.hugepages.per_node", "memory.hugepages.per_node.node0"]
        );
        // Without facts there is nothing to measure against.
        assert!(errors("version: 1\nmemory:\n  hugepages:\n    size_kb: 2048\n    total: 16030\n", None).is_empty());
    }

    #[test]
    fn hugepages_leave_the_os_its_reserve_at_boot() {
        let f = host_32g();
        let e = errors("version: 1\nkernel:\n  cmdline:\n    hugepagesz: 2M\n    hugepages: 16030\n", Some(&f));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "kernel.cmdline.hugepages");
        assert!(e[0].1.starts_with("16030 × 2048 kB = 32829440 kB at boot: the host has 32827640 kB"), "{}", e[0].1);
        // 1 GiB pages through default_hugepagesz, and the per-node form.
        let e = errors("version: 1\nkernel:\n  cmdline:\n    default_hugepagesz: 1G\n    hugepages: 30\n", Some(&f));
        assert!(e[0].1.starts_with("30 × 1048576 kB = 31457280 kB at boot"), "{e:?}");
        let e = errors("version: 1\nkernel:\n  cmdline:\n    hugepagesz: 1G\n    hugepages: \"0:30\"\n", Some(&f));
        assert_eq!(
            e.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["kernel.cmdline.hugepages", "kernel.cmdline.hugepages"]
        );
        assert!(e[1].1.contains("on node 0"), "{e:?}");
        assert!(
            errors("version: 1\nkernel:\n  cmdline:\n    hugepagesz: 1G\n    hugepages: 16\n", Some(&f)).is_empty()
        );
        // Bad values name their field.
        let e = errors("version: 1\nkernel:\n  cmdline:\n    hugepagesz: huge\n    hugepages: 1\n", None);
        assert_eq!(e[0].0, "kernel.cmdline.hugepagesz");
        let e = errors("version: 1\nkernel:\n  cmdline:\n    hugepages: many\n", None);
        assert_eq!(e[0].0, "kernel.cmdline.hugepages");
    }

    #[test]
    fn boot_and_runtime_hugepages_add_up_across_sizes() {
        let f = host_32g();
        // 16 GiB of 1 GiB pages at boot + 14 GiB of 2 MiB pages at run time: 30 GiB.
        let text = "version: 1\nkernel:\n  cmdline:\n    hugepagesz: 1G\n    hugepages: 16\nmemory:\n  hugepages:\n    size_kb: 2048\n    total: 7168\n";
        let e = errors(text, Some(&f));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "memory.hugepages.total");
        assert!(
            e[0].1.contains("on top of 16 × 1048576 kB at boot (kernel.cmdline.hugepages) = 31457280 kB"),
            "{}",
            e[0].1
        );
        // The same size: the runtime count replaces the boot count.
        let text = "version: 1\nkernel:\n  cmdline:\n    hugepagesz: 2M\n    hugepages: 7168\nmemory:\n  hugepages:\n    size_kb: 2048\n    total: 7168\n";
        assert!(errors(text, Some(&f)).is_empty());
    }

    #[test]
    fn nics_and_rdma_devices_must_exist() {
        let mut f = testing::two_nodes();
        f.nics.push(crate::facts::nic::Nic { name: Some("eth0".into()), numa_node: Some(0), ..Default::default() });
        let e = errors(
            "version: 1\nnetwork:\n  interfaces:\n    - name: eth0\n    - name: eth9\nrdma:\n  devices:\n    - name: mlx5_0\ntime_sync:\n  ptp:\n    interface: eth7\n",
            Some(&f),
        );
        let fields: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        // time_sync's interface is checked against the host (ptp4l on it: lltune_timesync).
        assert_eq!(fields, ["network.interfaces[1].name", "time_sync.ptp.interface", "rdma.devices[0].name"]);
    }

    #[test]
    fn seed_configs_name_nodes_by_number_and_rdma_devices_by_name() {
        let mut f = testing::two_nodes(); // 16 GiB per node
        f.user_stacks.rdma.push(crate::facts::user_stacks::RdmaDevice {
            name: "mlx5_0".into(),
            numa_node: Some(0),
            ..Default::default()
        });
        // `"0"`, unquoted `1` and `node0` all name nodes, as in the seed.
        for per_node in ["{\"0\": 512, \"1\": 512}", "{0: 512, 1: 512}", "{node0: 512, \"1\": 512}"] {
            let text = format!(
                "version: 1\nmemory:\n  hugepages: {{size_kb: \"2048\", total: 1024, per_node: {per_node}}}\nrdma:\n  devices: [mlx5_0]\n"
            );
            let r = audit_text(&text, Some(&f));
            assert!(r.errors.is_empty(), "{per_node}: {:#?}", r.errors);
        }
        // A node the host lacks, named either way, is an error at the key as written.
        let e = errors(
            "version: 1\nmemory:\n  hugepages: {size_kb: 2048, total: 2, per_node: {\"7\": 1, node1: 1}}\n",
            Some(&f),
        );
        assert_eq!(e, [("memory.hugepages.per_node.7".to_string(), "this host has no NUMA node 7".to_string())]);
        // The same node twice, and keys that name no node.
        let e = errors(
            "version: 1\nmemory:\n  hugepages: {size_kb: 2048, total: 2, per_node: {\"0\": 1, node0: 1}}\n",
            None,
        );
        assert_eq!(e, [("memory.hugepages.per_node.node0".to_string(), "node 0 is already given as `0`".to_string())]);
        for bad in ["n0", "node", "-1", "node0x"] {
            let e = errors(&format!("version: 1\nmemory:\n  hugepages: {{per_node: {{\"{bad}\": 1}}}}\n"), None);
            assert_eq!(e[0].0, format!("memory.hugepages.per_node.{bad}"), "{e:?}");
            assert!(e[0].1.contains("nodeN or N"), "{e:?}");
        }
        // RDMA devices as names (the seed) and as mappings, mixed; a missing one is named.
        let e = errors(
            "version: 1\nrdma:\n  devices:\n    - mlx5_0\n    - name: mlx5_0\n      numa_node: 0\n    - mlx5_9\n",
            Some(&f),
        );
        assert_eq!(e, [("rdma.devices[2].name".to_string(), "no RDMA device `mlx5_9` on this host".to_string())]);
        // Neither a name nor a mapping: an error naming the list item.
        let e = errors("version: 1\nrdma:\n  devices:\n    - [mlx5_0]\n", None);
        assert_eq!(e[0].0, "rdma.devices[0]", "{e:?}");
        assert!(e[0].1.contains("RDMA device name"), "{e:?}");
    }

    #[test]
    fn items_no_module_carries_out_fail_audit_and_left_out_items_warn() {
        let r = audit_text(
            "version: 1\nservices:\n  tuned: latency-performance\nonload:\n  generate_profile: true\nmemory:\n  hugepages: {size_kb: \"2048\", total: 64}\nnetwork:\n  defaults: {disable_gro: true}\ntime_sync:\n  ntp: true\n",
            None,
        );
        let errors: Vec<&str> = r.errors.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(errors, ["onload.tuning_level", "time_sync.ntp"], "{:?}", r.errors);
        assert!(r.errors[1].message.contains("no module that carries this out"));
        let warned: Vec<&str> = r.warnings.iter().map(|i| i.field.as_str()).collect();
        assert!(warned.contains(&"memory.hugepages") && warned.contains(&"network.defaults"), "{:?}", r.warnings);
        // What gen-config writes has none of them.
        assert!(audit_text("version: 1\nservices:\n  irqbalance: false\n  tuned: \"off\"\n", None).errors.is_empty());
    }

    #[test]
    fn a_tuned_profile_is_checked_as_tuned_reads_it_and_against_the_profiles_installed() {
        let text = |v: &str| format!("version: 1\nservices:\n  tuned: {v:?}\n");
        let errors = |v: &str, f: Option<&Facts>| -> Vec<(String, String)> {
            audit_text(&text(v), f).errors.into_iter().map(|i| (i.field, i.message)).collect()
        };
        // Without a host: the name only.
        assert!(errors("latency-performance", None).is_empty());
        assert!(errors("off", None).is_empty());
        for bad in ["../../etc", "a;b", "..", "-x"] {
            let e = errors(bad, None);
            assert_eq!(e.len(), 1, "{bad}: {e:?}");
            assert_eq!(e[0].0, "services.tuned");
        }
        // Against a host: each name installed.
        let mut f = testing::two_nodes();
        f.services.tuned.profiles = vec!["latency-performance".into(), "site".into()];
        assert!(errors("latency-performance site", Some(&f)).is_empty());
        let e = errors("latency-performance network-latency", Some(&f));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "services.tuned");
        assert!(e[0].1.contains("\"network-latency\" is not installed"), "{e:?}");
        assert!(e[0].1.contains("/usr/lib/tuned/profiles/network-latency/tuned.conf"), "{e:?}");
        // TuneD off needs no profile.
        assert!(errors("disabled", Some(&f)).is_empty());
    }

    #[test]
    fn irq_pins_on_isolated_cpus_or_off_node() {
        let mut f = testing::two_nodes();
        f.nics.push(crate::facts::nic::Nic { name: Some("ens3f0".into()), numa_node: Some(0), ..Default::default() });
        let text = "version: 1\ncpu:\n  isolate_cores: 1-3,9-11\nirq:\n  avoid_cores_for_irqs: 1-3,9-11\n  manual_affinity:\n    - match: \"ens3f*\"\n      cpus: [0, 4]\n    - match: \"x*\"\n      cpus: \"2\"\n";
        let r = audit_text(text, Some(&f));
        assert_eq!(r.errors.iter().map(|i| i.field.as_str()).collect::<Vec<_>>(), ["irq.manual_affinity[1].cpus"]);
        assert!(
            r.warnings.iter().any(|w| w.field == "irq.manual_affinity[0].cpus" && w.message.contains("not on node 0")),
            "{r:#?}"
        );
    }

    #[test]
    fn irq_pins_by_nic_or_pci_name_a_device_of_the_host() {
        let mut f = testing::two_nodes();
        f.nics.push(crate::facts::nic::Nic {
            name: Some("ens3f0".into()),
            pci_address: Some("0000:3b:00.0".into()),
            numa_node: Some(0),
            ..Default::default()
        });
        f.nics.push(crate::facts::nic::Nic { pci_address: Some("0000:5e:00.0".into()), ..Default::default() });
        // Known only by the PCI address its IRQs name (a capture without its sysfs folder).
        f.irqs.nics.insert("0000:af:00.1".into(), crate::facts::irq::NicIrqs::default());
        let text = "version: 1
irq:
  manual_affinity:
    - nic: ens3f0
      cpus: [0, 4]
    - pci: \"0000:3B:00.0\"\n      cpus: 5
    - pci: \"0000:5e:00.0\"\n      cpus: 0
    - pci: \"0000:af:00.1\"\n      cpus: 0
    - nic: ens9
      cpus: 0
    - pci: \"0000:d8:00.0\"\n      cpus: 0
";
        let r = audit_text(text, Some(&f));
        let errors: Vec<(&str, &str)> = r.errors.iter().map(|i| (i.field.as_str(), i.message.as_str())).collect();
        assert_eq!(
            errors,
            [
                ("irq.manual_affinity[4].nic", "no network interface `ens9` on this host"),
                ("irq.manual_affinity[5].pci", "no network device at PCI address `0000:d8:00.0` on this host"),
            ]
        );
        // The NIC's node is checked as for a glob.
        assert!(
            r.warnings.iter().any(|w| w.field == "irq.manual_affinity[0].cpus" && w.message.contains("not on node 0")),
            "{r:#?}"
        );
        assert!(
            r.warnings.iter().any(|w| w.field == "irq.manual_affinity[1].cpus" && w.message.contains("ens3f0")),
            "{r:#?}"
        );
        // Without a host, only the form is checked.
        assert!(audit_text(text, None).errors.is_empty());
    }
}
