//! `lltune gen-config`: a commented version-1 config for one machine, from its facts.
//!
//! Unlike the seed it leaves no TODO where the facts give the answer: the core plan
//! (`analysis::plan`) fills the isolation settings, hugepages are sized per node within each
//! node's memory, NICs get roles by driver and link. Settings with a real downside
//! (`idle=poll`, `mitigations=off`, `intel_pstate=disable`) are written commented out, with
//! why. The output is hand-written YAML (for the comments) with every string quoted, and a
//! test checks that it audits clean against the facts it came from.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::analysis::plan::{self, CorePlan, NicRole, PlanOptions};
use crate::cpulist::CpuList;
use crate::facts::Facts;

/// Huge pages proposed per node when the host has none: 1 GiB of 2 MB pages ...
pub const DEFAULT_HUGEPAGES_PER_NODE: u64 = 512;
/// ... but never more than this fraction (1/N) of the node's memory.
pub const HUGEPAGES_MAX_FRACTION: u64 = 8;

/// Options of one generation.
#[derive(Debug, Clone, Default)]
pub struct GenOptions {
    pub plan: PlanOptions,
    /// Where the facts came from, for `metadata.source` (`live`, a root, a snapshot file).
    pub source: String,
    /// `metadata.generated_at`; empty = omitted (tests want stable output).
    pub generated_at: String,
}

/// Facts from a snapshot written by `lltune scan -o` (JSON or YAML; JSON is YAML too).
pub fn read_snapshot(text: &str) -> anyhow::Result<Facts> {
    let facts: Facts = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("not a lltune snapshot (JSON): {e}"))?
    } else {
        serde_yaml::from_str(text).map_err(|e| anyhow::anyhow!("not a lltune snapshot (YAML): {e}"))?
    };
    if !crate::facts::reads_schema(facts.schema_version) {
        anyhow::bail!(
            "snapshot schema_version {} (this lltune reads {} to {})",
            facts.schema_version,
            crate::facts::OLDEST_SCHEMA_VERSION,
            crate::facts::SCHEMA_VERSION
        );
    }
    Ok(facts)
}

/// YAML double-quoted string.
fn q(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The per-node hugepage proposal: (size_kb, [(node, pages)]). Keeps what the host already
/// has; else `DEFAULT_HUGEPAGES_PER_NODE`, capped at 1/`HUGEPAGES_MAX_FRACTION` of the node's
/// memory. None when node memory is unknown.
pub fn hugepages_plan(f: &Facts) -> Option<(u64, Vec<(u32, u64)>)> {
    let size = 2048u64;
    let existing: Vec<(u32, u64)> = f
        .numa
        .nodes
        .iter()
        .map(|n| (n.id, n.hugepages.get(&size.to_string()).and_then(|h| h.total).unwrap_or(0)))
        .collect();
    if !existing.is_empty() && existing.iter().any(|(_, p)| *p > 0) {
        return Some((size, existing));
    }
    if f.numa.nodes.is_empty() || f.numa.nodes.iter().any(|n| n.memory_kb.is_none()) {
        return None;
    }
    let per: Vec<(u32, u64)> = f
        .numa
        .nodes
        .iter()
        .map(|n| {
            let mem = n.memory_kb.unwrap_or(0);
            // Nodes without CPUs (memory-only, CXL) are left alone.
            let pages =
                if n.cpus.is_empty() { 0 } else { DEFAULT_HUGEPAGES_PER_NODE.min(mem / HUGEPAGES_MAX_FRACTION / size) };
            (n.id, pages)
        })
        .collect();
    per.iter().any(|(_, p)| *p > 0).then_some((size, per))
}

/// `network.sysctl` settings where more is never worse (buffer ceilings, queue and table
/// sizes): gen-config proposes the larger of lltune's target and the host's current value.
pub const AT_LEAST_NETWORK_SYSCTLS: &[(&str, &str, u64)] = &[
    ("rmem_max", "net.core.rmem_max", 67_108_864),
    ("wmem_max", "net.core.wmem_max", 67_108_864),
    ("netdev_max_backlog", "net.core.netdev_max_backlog", 250_000),
    ("somaxconn", "net.core.somaxconn", 65_535),
    ("file_max", "fs.file-max", 2_097_152),
];

/// The larger of `target` and the host's current value of sysctl `real` (a YAML scalar), with a
/// comment when the host's value wins: gen-config never proposes lowering a ceiling.
fn at_least(f: &Facts, real: &str, target: u64) -> (Value, String) {
    let current = f.sysctl.get(real).and_then(|v| v.as_deref()).and_then(|v| v.trim().parse::<u64>().ok());
    match current {
        Some(c) if c > target => (c.into(), format!("{c}   # the host's current value, above lltune's {target}: kept")),
        _ => (target.into(), target.to_string()),
    }
}

/// The same for a limits.conf item: the larger of `target` and what domain `*` has now (soft or
/// hard, whichever is larger; `unlimited` beats every number).
fn limit_at_least(current: &crate::facts::limits::SoftHard, target: u64) -> (Value, String) {
    let values = [current.soft.as_deref(), current.hard.as_deref()];
    if values.iter().flatten().any(|v| v.eq_ignore_ascii_case("unlimited") || v.eq_ignore_ascii_case("infinity")) {
        return (
            "unlimited".into(),
            format!("\"unlimited\"   # the host's current value, above lltune's {target}: kept"),
        );
    }
    match values.iter().flatten().filter_map(|v| v.trim().parse::<u64>().ok()).max() {
        Some(c) if c > target => (c.into(), format!("{c}   # the host's current value, above lltune's {target}: kept")),
        _ => (target.into(), target.to_string()),
    }
}

/// A running kernel argument as a number (its last value, as the kernel keeps the last).
fn running_arg(f: &Facts, key: &str) -> Option<u64> {
    crate::analysis::kernel::arg(f, key).flatten().and_then(|v| v.trim().parse::<u64>().ok())
}

/// The smaller of `target` and the host's running value of kernel argument `key` (where a
/// lower value is tighter: C-state limits), as a quoted YAML scalar: gen-config never proposes
/// a deeper C-state than the host already allows.
fn arg_at_most(f: &Facts, key: &str, target: u64) -> (Value, String) {
    match running_arg(f, key) {
        Some(c) if c < target => (
            c.to_string().into(),
            format!("{}   # the host runs {key}={c}, tighter than lltune's {target}: kept", q(&c.to_string())),
        ),
        _ => (target.to_string().into(), q(&target.to_string())),
    }
}

/// The deepest C-state the host allows now: the runtime idle states enabled on some online
/// CPU (`POLL` is 0), and the command line's limits. `None` when none of them is known.
pub fn current_cstate_limit(f: &Facts) -> Option<u64> {
    let runtime = (!f.cpu.cpuidle.states.is_empty())
        .then(|| {
            f.cpu
                .cpuidle
                .states
                .iter()
                .filter(|s| !f.cpu.online.is_subset(&s.disabled_cpus))
                .filter_map(|s| {
                    let name = s.name.as_deref().unwrap_or("");
                    if name.eq_ignore_ascii_case("poll") {
                        Some(0)
                    } else {
                        crate::facts::cpu::cstate_number(name).map(u64::from)
                    }
                })
                .max()
        })
        .flatten();
    [runtime, running_arg(f, "processor.max_cstate"), running_arg(f, "intel_idle.max_cstate")]
        .into_iter()
        .flatten()
        .min()
}

/// `cpu.cstate_limit`: lltune's 1, or the host's current limit when it is tighter.
fn cstate_limit_value(f: &Facts) -> (Value, String) {
    match current_cstate_limit(f) {
        Some(c) if c < 1 => {
            (c.into(), format!("{c}   # the host allows C{c} at most now, tighter than lltune's 1: kept"))
        }
        _ => (1.into(), "1".to_string()),
    }
}

/// `kernel.hung_task_timeout_secs`: 0 (the detector off) is the host's tighter choice; a
/// longer timeout than lltune's checks less often: kept too.
fn hung_task_value(f: &Facts, target: u64) -> (Value, String) {
    let current = f
        .sysctl
        .get("kernel.hung_task_timeout_secs")
        .and_then(|v| v.as_deref())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match current {
        Some(0) => {
            (0.into(), "0   # the host has the hung-task detector off, quieter than lltune's 600: kept".to_string())
        }
        Some(c) if c > target => (c.into(), format!("{c}   # the host's current value, above lltune's {target}: kept")),
        _ => (target.into(), target.to_string()),
    }
}

fn node_cpus(f: &Facts, node: Option<i64>) -> Option<CpuList> {
    let node = node?;
    f.numa.nodes.iter().find(|n| i64::from(n.id) == node).map(|n| n.cpus.clone())
}

fn invariant_tsc_bare_metal(f: &Facts) -> bool {
    let virt = f.host.virtualization.kind.as_deref().is_some_and(|k| k != "none")
        || f.cpu.flags.iter().any(|x| x == "hypervisor");
    !virt && f.time.tsc.as_ref().is_some_and(|t| t.constant_tsc && t.nonstop_tsc)
}

/// Writes the config.
pub fn generate(f: &Facts, opts: &GenOptions) -> String {
    generate_with_value(f, opts).0
}

/// The config as a value, built beside its text (the text carries the comments): what
/// `lltune_config` returns and translates into module arguments without reading its own
/// YAML back (no YAML parser in the module binaries). A test holds the two to each other
/// on every real dump (the text, read as YAML, is the value).
#[derive(Debug, Default)]
struct Doc(Map<String, Value>);

impl Doc {
    /// The mapping at `path`, made where missing (a scalar there is replaced).
    fn at(&mut self, path: &[&str]) -> &mut Map<String, Value> {
        let mut m = &mut self.0;
        for p in path {
            let v = m.entry(p.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if !v.is_object() {
                *v = Value::Object(Map::new());
            }
            m = v.as_object_mut().expect("made a mapping just above");
        }
        m
    }

    fn set(&mut self, path: &[&str], key: &str, v: impl Into<Value>) {
        self.at(path).insert(key.to_string(), v.into());
    }

    /// Appends to the list at `path`.`key` (made where missing).
    fn push(&mut self, path: &[&str], key: &str, v: Value) {
        let list = self.at(path).entry(key.to_string()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = list {
            a.push(v);
        } else {
            *list = Value::Array(vec![v]);
        }
    }
}

/// The config's text and the same config as a value (`Doc`).
pub fn generate_with_value(f: &Facts, opts: &GenOptions) -> (String, Value) {
    let mut d = Doc::default();
    let plan: CorePlan = plan::core_plan(f, &opts.plan);
    let iso = &plan.isolated;
    let hk = &plan.housekeeping;
    let host = f.host.hostname.clone().unwrap_or_else(|| "unknown-host".into());
    let intel = f.cpu.vendor.as_deref() == Some("GenuineIntel");
    let amd = f.cpu.vendor.as_deref() == Some("AuthenticAMD");
    let mut o = String::new();
    let w = &mut o;

    let _ = writeln!(w, "# lltune config (version 1) for {host}, generated by lltune {}.", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(w, "# Check it before applying: lltune audit -c <this file> --snapshot <snapshot>");
    let _ =
        writeln!(w, "# Reference: docs/config.md. Strings are quoted on purpose: unquoted off/on/yes/no are refused.");
    let _ = writeln!(w, "version: 1\n");
    d.set(&[], "version", 1);
    let _ = writeln!(w, "metadata:");
    if !opts.generated_at.is_empty() {
        let _ = writeln!(w, "  generated_at: {}", q(&opts.generated_at));
        d.set(&["metadata"], "generated_at", opts.generated_at.as_str());
    }
    let _ = writeln!(w, "  host: {}", q(&host));
    d.set(&["metadata"], "host", host.as_str());
    if let Some(k) = f.kernel.release.as_ref().or(f.host.kernel_release.as_ref()) {
        let _ = writeln!(w, "  kernel: {}", q(k));
        d.set(&["metadata"], "kernel", k.as_str());
    }
    let _ = writeln!(w, "  tool_version: {}", q(env!("CARGO_PKG_VERSION")));
    d.set(&["metadata"], "tool_version", env!("CARGO_PKG_VERSION"));
    if !opts.source.is_empty() {
        let _ = writeln!(w, "  source: {}", q(&opts.source));
        d.set(&["metadata"], "source", opts.source.as_str());
    }

    // ---- hardware ----
    let _ = writeln!(w, "\n# What this machine is (read-only; audit warns when a host does not match).");
    let _ = writeln!(w, "hardware:");
    d.at(&["hardware"]);
    if let Some(m) = &f.cpu.model_name {
        let _ = writeln!(w, "  cpu_model: {}", q(m));
        d.set(&["hardware"], "cpu_model", m.as_str());
    }
    if let Some(v) = &f.cpu.vendor {
        let _ = writeln!(w, "  vendor: {}", q(v));
        d.set(&["hardware"], "vendor", v.as_str());
    }
    for (k, v) in [
        ("sockets", f.cpu.sockets),
        ("cores_per_socket", f.cpu.cores_per_socket),
        ("threads_per_core", f.cpu.threads_per_core),
    ] {
        if let Some(v) = v {
            let _ = writeln!(w, "  {k}: {v}");
            d.set(&["hardware"], k, v);
        }
    }
    if !f.cpu.online.is_empty() {
        let _ = writeln!(w, "  online_cpus: {}", q(&f.cpu.online.to_string()));
        d.set(&["hardware"], "online_cpus", f.cpu.online.to_string());
    }
    let _ = writeln!(w, "  numa_nodes: {}", f.numa.nodes.len().max(1));
    d.set(&["hardware"], "numa_nodes", f.numa.nodes.len().max(1));
    let named: Vec<&crate::facts::nic::Nic> = f.nics.iter().filter(|n| !n.r#virtual && n.name.is_some()).collect();
    if named.is_empty() {
        let _ = writeln!(w, "  nics: []");
        d.set(&["hardware"], "nics", Value::Array(Vec::new()));
    } else {
        let _ = writeln!(w, "  nics:");
        for n in &named {
            let mut nic = Map::new();
            let _ = writeln!(w, "    - name: {}", q(n.name.as_deref().unwrap_or("")));
            nic.insert("name".into(), n.name.as_deref().unwrap_or("").into());
            if let Some(dr) = &n.driver {
                let _ = writeln!(w, "      driver: {}", q(dr));
                nic.insert("driver".into(), dr.as_str().into());
            }
            if let Some(p) = &n.pci_address {
                let _ = writeln!(w, "      pci_address: {}", q(p));
                nic.insert("pci_address".into(), p.as_str().into());
            }
            if let Some(node) = n.numa_node {
                let _ = writeln!(w, "      numa_node: {node}");
                nic.insert("numa_node".into(), node.into());
            }
            if let Some(s) = n.speed_mbps {
                let _ = writeln!(w, "      speed_mbps: {s}");
                nic.insert("speed_mbps".into(), s.into());
            }
            d.push(&["hardware"], "nics", Value::Object(nic));
        }
    }

    // ---- cpu ----
    let _ = writeln!(
        w,
        "\n# The core plan: housekeeping = whole cores (SMT siblings together), {} per NUMA node, on the",
        opts.plan.housekeeping_cores_per_node.max(1)
    );
    let _ = writeln!(w, "# lowest-numbered cores (CPU 0 keeps timekeeping); isolated = every other online CPU.");
    let _ = writeln!(w, "#   housekeeping: {}", if hk.is_empty() { "none".into() } else { hk.to_string() });
    let _ = writeln!(w, "#   isolated:     {}", if iso.is_empty() { "none".into() } else { iso.to_string() });
    if !plan.trading_nodes.is_empty() {
        let nodes: Vec<String> = plan.trading_nodes.iter().map(|n| n.to_string()).collect();
        let _ = writeln!(
            w,
            "#   trading NICs on node(s) {}: pin the hot threads to {}",
            nodes.join(", "),
            if plan.trading_cpus.is_empty() { "none".into() } else { plan.trading_cpus.to_string() }
        );
    }
    if let Some(m) = plan.management_node {
        let _ = writeln!(w, "#   management NIC on node {m}");
    }
    for n in &plan.notes {
        let _ = writeln!(w, "#   note: {n}");
    }
    let _ = writeln!(w, "cpu:");
    d.at(&["cpu"]);
    // Only what this host can take: no cpufreq (a VM, a dump without it), no governor.
    if f.cpu.governors.is_empty() {
        let _ = writeln!(w, "  # governor: this host shows no cpufreq (scaling_governor): nothing to set");
    } else {
        let _ = writeln!(w, "  governor:\n    target: \"performance\"");
        d.set(&["cpu", "governor"], "target", "performance");
    }
    if !iso.is_empty() {
        let _ = writeln!(w, "  isolate_cores: {}", q(&iso.to_string()));
        d.set(&["cpu"], "isolate_cores", iso.to_string());
    }
    let (v, text) = cstate_limit_value(f);
    let _ = writeln!(w, "  cstate_limit: {text}");
    d.set(&["cpu"], "cstate_limit", v);
    let _ = writeln!(w, "  # turbo: false          # steadier clock, lower peak: decide per workload");
    if !f.cpu.epp.is_empty() {
        let _ = writeln!(w, "  epp: \"performance\"");
        d.set(&["cpu"], "epp", "performance");
    }

    // ---- kernel ----
    let _ =
        writeln!(w, "\n# Boot parameters: applied only with safety.allow_grub_edit: true, effective after a reboot.");
    let _ = writeln!(w, "kernel:\n  cmdline:");
    d.at(&["kernel", "cmdline"]);
    if !iso.is_empty() {
        for (k, v) in [
            ("isolcpus", format!("managed_irq,domain,{iso}")),
            ("nohz_full", iso.to_string()),
            ("rcu_nocbs", iso.to_string()),
            ("kthread_cpus", hk.to_string()),
            ("irqaffinity", hk.to_string()),
        ] {
            let _ = writeln!(w, "    {k}: {}", q(&v));
            d.set(&["kernel", "cmdline"], k, v);
        }
    }
    let _ = writeln!(w, "    skew_tick: \"1\"");
    d.set(&["kernel", "cmdline"], "skew_tick", "1");
    if invariant_tsc_bare_metal(f) {
        let _ = writeln!(w, "    tsc: \"reliable\"             # invariant TSC: skip the clocksource watchdog");
        d.set(&["kernel", "cmdline"], "tsc", "reliable");
    }
    for (k, v) in [("nosoftlockup", ""), ("nmi_watchdog", "0"), ("transparent_hugepage", "never")] {
        let _ = writeln!(w, "    {k}: {}", q(v));
        d.set(&["kernel", "cmdline"], k, v);
    }
    let mut at_most = vec!["processor.max_cstate"];
    if intel {
        at_most.push("intel_idle.max_cstate");
    }
    for k in at_most {
        let (v, text) = arg_at_most(f, k, 1);
        let _ = writeln!(w, "    {k}: {text}");
        d.set(&["kernel", "cmdline"], k, v);
    }
    if let Some((size, per)) = hugepages_plan(f) {
        let total: u64 = per.iter().map(|(_, p)| p).sum();
        for (k, v) in [("hugepagesz", format!("{}M", size / 1024)), ("hugepages", total.to_string())] {
            let _ = writeln!(w, "    {k}: {}", q(&v));
            d.set(&["kernel", "cmdline"], k, v);
        }
    }
    let _ = writeln!(w, "    # Left off on purpose:");
    let _ = writeln!(
        w,
        "    # idle: \"poll\"            # never halts: lowest wake-up latency, full power and heat on every core"
    );
    let _ = writeln!(
        w,
        "    # mitigations: \"off\"      # removes Spectre/Meltdown protections; needs safety.allow_dangerous_mitigations"
    );
    if intel {
        let _ = writeln!(
            w,
            "    # intel_pstate: \"disable\" # acpi-cpufreq instead of hardware P-states; optional with the performance governor"
        );
    } else if amd {
        let _ = writeln!(w, "    # intel_pstate=disable is not written: it has no effect on AMD processors");
    }
    let _ = writeln!(w, "  sysctl:");
    let _ = writeln!(w, "    timer_migration: 0");
    d.set(&["kernel", "sysctl"], "timer_migration", 0);
    let (v, text) = hung_task_value(f, 600);
    let _ = writeln!(w, "    hung_task_timeout_secs: {text}");
    d.set(&["kernel", "sysctl"], "hung_task_timeout_secs", v);

    // ---- memory ----
    let _ = writeln!(w, "\nmemory:");
    let _ = writeln!(w, "  thp_runtime: \"never\"");
    let _ = writeln!(w, "  swap_disable: true");
    let _ = writeln!(w, "  numa_balancing: false");
    let _ = writeln!(w, "  ksm: false");
    d.set(&["memory"], "thp_runtime", "never");
    d.set(&["memory"], "swap_disable", true);
    d.set(&["memory"], "numa_balancing", false);
    d.set(&["memory"], "ksm", false);
    for (k, real, target) in [("stat_interval", "vm.stat_interval", 10), ("max_map_count", "vm.max_map_count", 262_144)]
    {
        let (v, text) = at_least(f, real, target);
        let _ = writeln!(w, "  {k}: {text}");
        d.set(&["memory"], k, v);
    }
    match hugepages_plan(f) {
        Some((size, per)) => {
            let total: u64 = per.iter().map(|(_, p)| p).sum();
            let _ = writeln!(
                w,
                "  # {size} kB pages per node: the host's current counts, or up to {DEFAULT_HUGEPAGES_PER_NODE} per node within 1/{HUGEPAGES_MAX_FRACTION} of its memory."
            );
            let _ =
                writeln!(w, "  hugepages:\n    size_kb: {}\n    total: {total}\n    per_node:", q(&size.to_string()));
            d.set(&["memory", "hugepages"], "size_kb", size.to_string());
            d.set(&["memory", "hugepages"], "total", total);
            d.at(&["memory", "hugepages", "per_node"]);
            for (node, pages) in per {
                let _ = writeln!(w, "      node{node}: {pages}");
                d.set(&["memory", "hugepages", "per_node"], &format!("node{node}"), pages);
            }
        }
        None => {
            let _ = writeln!(
                w,
                "  # hugepages: node memory is unknown here; size them per node (size_kb, total, per_node)."
            );
        }
    }
    let _ =
        writeln!(w, "  mlock:\n    enabled: true\n    user: \"*\"\n    soft: \"unlimited\"\n    hard: \"unlimited\"");
    d.set(&["memory", "mlock"], "enabled", true);
    for k in ["user", "soft", "hard"] {
        d.set(&["memory", "mlock"], k, if k == "user" { "*" } else { "unlimited" });
    }
    let _ = writeln!(w, "  limits:");
    for (k, current, target) in
        [("nofile", &f.limits.default.nofile, 1_048_576), ("nproc", &f.limits.default.nproc, 65_536)]
    {
        let (v, text) = limit_at_least(current, target);
        let _ = writeln!(w, "    {k}: {text}");
        d.set(&["memory", "limits"], k, v);
    }
    let _ = writeln!(w, "    rtprio: 99");
    d.set(&["memory", "limits"], "rtprio", 99);

    // ---- network ----
    let _ = writeln!(w, "\nnetwork:");
    d.at(&["network"]);
    // Offloads off on the interfaces listed below; with none listed there is nothing to act on.
    let defaults =
        "  defaults:\n    disable_gro: true\n    disable_lro: true\n    disable_tso: true\n    disable_gso: true";
    if named.is_empty() {
        let _ = writeln!(w, "  # defaults (offloads off) apply to the interfaces listed; this host lists none.");
    } else {
        let _ = writeln!(w, "{defaults}");
        for k in ["disable_gro", "disable_lro", "disable_tso", "disable_gso"] {
            d.set(&["network", "defaults"], k, true);
        }
    }
    let _ = writeln!(w, "  sysctl:");
    // More busy polling is lower latency (and more CPU): never proposed lower than the host's.
    let polls: &[(&str, &str, u64)] =
        &[("busy_poll", "net.core.busy_poll", 50), ("busy_read", "net.core.busy_read", 50)];
    for (k, real, target) in polls.iter().chain(AT_LEAST_NETWORK_SYSCTLS) {
        let (v, text) = at_least(f, real, *target);
        let _ = writeln!(w, "    {k}: {text}");
        d.set(&["network", "sysctl"], k, v);
    }
    let _ =
        writeln!(w, "    # tcp_timestamps: false  # saves a clock read per segment; loses PAWS: only on clean LANs");
    let _ = writeln!(w, "    # tcp_sack: false        # cheaper loss recovery on clean LANs, slower on lossy paths");
    if named.is_empty() {
        let _ = writeln!(w, "  interfaces: []");
        d.set(&["network"], "interfaces", Value::Array(Vec::new()));
    } else {
        let _ = writeln!(
            w,
            "  # Roles by driver and link speed (trading: sfc/mlx*/exanic; management: onboard 1 GbE); change as needed."
        );
        let _ = writeln!(w, "  interfaces:");
        for n in &named {
            let name = n.name.as_deref().unwrap_or("");
            let role = plan::nic_role(n, &opts.plan.trading_nics).unwrap_or(NicRole::Control);
            let link = match (n.operstate.as_deref(), n.speed_mbps) {
                (Some(s), Some(sp)) => format!("link {s}, {sp} Mb/s"),
                (Some(s), None) => format!("link {s}"),
                _ => "link unknown".into(),
            };
            let _ =
                writeln!(w, "    - name: {}   # {}, {link}", q(name), n.driver.as_deref().unwrap_or("driver unknown"));
            let _ = writeln!(w, "      role: {}", q(role.as_str()));
            let mut nic = Map::new();
            nic.insert("name".into(), name.into());
            nic.insert("role".into(), role.as_str().into());
            if let Some(node) = n.numa_node {
                let _ = writeln!(w, "      numa_node: {node}");
                nic.insert("numa_node".into(), node.into());
            }
            if role == NicRole::Trading {
                let _ = writeln!(
                    w,
                    "      coalescing:\n        rx_usecs: 0\n        tx_usecs: 0\n        adaptive_rx: false\n        adaptive_tx: false"
                );
                let _ = writeln!(
                    w,
                    "      offloads:\n        gro: false\n        lro: false\n        tso: false\n        gso: false"
                );
                nic.insert(
                    "coalescing".into(),
                    serde_json::json!({"rx_usecs": 0, "tx_usecs": 0, "adaptive_rx": false, "adaptive_tx": false}),
                );
                nic.insert(
                    "offloads".into(),
                    serde_json::json!({"gro": false, "lro": false, "tso": false, "gso": false}),
                );
                if let Some(r) = n.rings.filter(|r| r.rx_max_pending > 0 && r.tx_max_pending > 0) {
                    let _ =
                        writeln!(w, "      rings:\n        rx: {}\n        tx: {}", r.rx_max_pending, r.tx_max_pending);
                    nic.insert("rings".into(), serde_json::json!({"rx": r.rx_max_pending, "tx": r.tx_max_pending}));
                }
            }
            d.push(&["network"], "interfaces", Value::Object(nic));
        }
    }

    // ---- irq ----
    let _ = writeln!(w, "\n# NIC IRQs on housekeeping CPUs of the NIC's own NUMA node; never on isolated CPUs.");
    let _ = writeln!(w, "irq:");
    d.at(&["irq"]);
    // By device, not by IRQ name (drivers name them `mlx5_comp0@pci:...`, `i40e-<if>-TxRx-0`,
    // `<if>-0`): `nic` where the NIC has a netdev, else `pci` (a NIC without one, or a dump
    // without /sys/class/net). Physical NICs only; a PCI device once.
    let mut seen_pci: BTreeSet<&str> = BTreeSet::new();
    let mut pins: Vec<(&'static str, String, CpuList)> = Vec::new();
    for n in f.nics.iter().filter(|n| !n.r#virtual && !hk.is_empty()) {
        let target = match (n.name.as_deref(), n.pci_address.as_deref()) {
            (Some(name), _) => ("nic", name.to_string()),
            (None, Some(addr)) if !seen_pci.contains(addr) => ("pci", addr.to_string()),
            _ => continue,
        };
        if let Some(a) = n.pci_address.as_deref() {
            seen_pci.insert(a);
        }
        let local = node_cpus(f, n.numa_node)
            .map(|c| c.intersection(hk))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| hk.clone());
        pins.push((target.0, target.1, local));
    }
    // NICs known only by the PCI address their driver names their IRQs with (a capture
    // without the device's sysfs folder).
    for (key, irqs) in f.irqs.nics.iter().filter(|_| !hk.is_empty()) {
        if crate::facts::nic::is_pci_address(key) && !seen_pci.contains(key.as_str()) {
            seen_pci.insert(key);
            let local = node_cpus(f, irqs.numa_node)
                .map(|c| c.intersection(hk))
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| hk.clone());
            pins.push(("pci", key.clone(), local));
        }
    }
    // A PCI device that also has a netdev is pinned by its name.
    pins.retain(|(k, v, _)| {
        *k != "pci" || !f.nics.iter().any(|n| n.name.is_some() && n.pci_address.as_deref() == Some(v.as_str()))
    });
    if pins.is_empty() {
        let _ = writeln!(w, "  manual_affinity: []");
        d.set(&["irq"], "manual_affinity", Value::Array(Vec::new()));
    } else {
        let _ = writeln!(w, "  manual_affinity:");
        for (key, target, cpus) in pins {
            let _ = writeln!(w, "    - {key}: {}\n      cpus: {}", q(&target), q(&cpus.to_string()));
            d.push(&["irq"], "manual_affinity", serde_json::json!({key: target, "cpus": cpus.to_string()}));
        }
    }
    if !iso.is_empty() {
        let _ = writeln!(w, "  avoid_cores_for_irqs: {}", q(&iso.to_string()));
        d.set(&["irq"], "avoid_cores_for_irqs", iso.to_string());
    }
    if !iso.is_empty() && !hk.is_empty() && f.irqs.default_affinity.is_some() {
        // New IRQs (a NIC that comes back, a hot-plugged device) start on housekeeping CPUs.
        let _ = writeln!(w, "  default_affinity: {}", q(&hk.to_string()));
        d.set(&["irq"], "default_affinity", hk.to_string());
    }
    let _ = writeln!(w, "  disable_rps: true\n  disable_rfs: true");
    d.set(&["irq"], "disable_rps", true);
    d.set(&["irq"], "disable_rfs", true);

    // ---- time, services, safety ----
    // lltune_timesync sets chrony or ptp4l, but what it needs is not in the facts (chrony and
    // linuxptp installed, chrony.conf's confdir, a PTP grandmaster on the trading network):
    // the proposal is written commented out, for a person to enable, and only where a
    // trading NIC has a PTP hardware clock for chrony to read.
    let ptp_nic = named
        .iter()
        .find(|n| n.phc_index.is_some() && plan::nic_role(n, &opts.plan.trading_nics) == Some(NicRole::Trading));
    match ptp_nic.and_then(|n| n.name.as_deref()) {
        Some(name) => {
            let _ = writeln!(
                w,
                "\n# {name} has a PTP hardware clock. To have lltune run chrony with it as the reference clock,\n\
                 # disciplined by ptp4l on {name} (needs chrony and linuxptp installed, a confdir in chrony.conf\n\
                 # and a PTP grandmaster on that network), uncomment:\n\
                 # time_sync:\n\
                 #   provider: chrony\n\
                 #   refclock: {{phc: {name}, poll: 0, dpoll: -2, prefer: true}}\n\
                 #   ptp: {{interface: {name}}}"
            );
        }
        None => {
            let _ = writeln!(
                w,
                "\n# time_sync: not proposed (no trading NIC with a PTP hardware clock); lltune_timesync runs chrony or ptp4l (docs/config.md)"
            );
        }
    }
    // TuneD's profiles re-tune what lltune sets (governor, C-states, sysctls): off.
    let _ = writeln!(w, "\nservices:\n  irqbalance: false\n  tuned: \"disabled\"");
    d.set(&["services"], "irqbalance", false);
    d.set(&["services"], "tuned", "disabled");
    let _ = writeln!(w, "\n# Opt-ins for changes with a real downside. Both stay false unless you mean it.");
    let _ = writeln!(w, "safety:\n  allow_grub_edit: false\n  allow_dangerous_mitigations: false");
    d.set(&["safety"], "allow_grub_edit", false);
    d.set(&["safety"], "allow_dangerous_mitigations", false);

    // ---- kernel-bypass profiles: only for the stacks this host has ----
    let u = &f.user_stacks;
    let stacks = [("onload", u.onload.installed), ("vma", u.vma.installed), ("xlio", u.xlio.installed)];
    for (stack, _) in stacks.iter().filter(|(_, installed)| *installed == Some(true)) {
        let _ = writeln!(
            w,
            "\n# {stack} is installed: its vendor's latency profile for the applications, in\n# /etc/profile.d/lltune-{stack}.sh and /etc/lltune/{stack}.env (ultra_low_latency adds the\n# vendor's riskier options; docs/config.md lists each level's variables)."
        );
        let _ = writeln!(w, "{stack}:\n  generate_profile: true\n  tuning_level: \"low_latency\"");
        d.set(&[stack], "generate_profile", true);
        d.set(&[stack], "tuning_level", "low_latency");
    }

    // ---- recommendations ----
    // The findings of this host as this config would change it: the same rules, with this
    // config's core plan as their isolation and housekeeping targets.
    let recs = crate::analysis::recommend_for_plan(f, &opts.plan);
    let _ = writeln!(w, "\n# What lltune found on this host (informational; `lltune scan --md-report` explains each).");
    if recs.is_empty() {
        let _ = writeln!(w, "recommendations: []");
        d.set(&[], "recommendations", Value::Array(Vec::new()));
    } else {
        let _ = writeln!(w, "recommendations:");
        for r in recs {
            let _ = writeln!(
                w,
                "  - category: {}\n    item: {}\n    current: {}\n    target: {}",
                q(&r.category),
                q(&r.item),
                q(&r.current),
                q(&r.target)
            );
            let _ = writeln!(
                w,
                "    severity: {}\n    impact: {}\n    risk: {}",
                q(r.severity.as_str()),
                q(r.impact.as_str()),
                q(r.risk.as_str())
            );
            d.push(
                &[],
                "recommendations",
                serde_json::json!({
                    "category": r.category, "item": r.item, "current": r.current, "target": r.target,
                    "severity": r.severity.as_str(), "impact": r.impact.as_str(), "risk": r.risk.as_str(),
                }),
            );
        }
    }
    (o, Value::Object(d.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing;

    #[test]
    fn generated_config_audits_clean_against_its_facts() {
        let mut f = testing::two_nodes();
        f.nics.push(crate::facts::nic::Nic {
            name: Some("ens1f0".into()),
            driver: Some("sfc".into()),
            numa_node: Some(1),
            speed_mbps: Some(10000),
            ..Default::default()
        });
        f.nics.push(crate::facts::nic::Nic {
            name: Some("eno1".into()),
            driver: Some("igb".into()),
            numa_node: Some(0),
            carrier: Some(true),
            ..Default::default()
        });
        let text = generate(&f, &GenOptions::default());
        let r = crate::config::audit::audit_text(&text, Some(&f));
        assert!(r.errors.is_empty(), "{:#?}\n{text}", r.errors);
        assert!(r.warnings.iter().all(|w| w.field == "safety.allow_grub_edit"), "{:#?}", r.warnings);
        let (c, _) = crate::config::parse(&text);
        assert_eq!(c.kernel_arg("isolcpus"), Some(Some("managed_irq,domain,2-3,5-7,10-11,13-15")));
        // Management NIC on node 0 (no trading there): one extra housekeeping core.
        assert_eq!(c.kernel_arg("kthread_cpus"), Some(Some("0-1,4,8-9,12")));
        let m = c.memory.unwrap();
        let hp = m.hugepages.unwrap();
        assert_eq!((hp.total, hp.per_node.get("node1").copied()), (Some(1024), Some(512)));
        let itf = c.network.unwrap().interfaces;
        assert_eq!(itf[0].role, Some(NicRole::Trading));
        assert_eq!(itf[1].role, Some(NicRole::Management));
    }

    /// The time_sync proposal: only for a trading NIC with a PHC, commented out, and once
    /// uncommented a config audit passes and that translates to lltune_timesync's chrony run.
    #[test]
    fn time_sync_is_proposed_commented_for_a_trading_nic_with_a_phc() {
        let mut f = testing::two_nodes();
        let nic = crate::facts::nic::Nic {
            name: Some("ens1f0".into()),
            driver: Some("sfc".into()),
            numa_node: Some(1),
            speed_mbps: Some(10000),
            ..Default::default()
        };
        f.nics.push(nic.clone());
        let text = generate(&f, &GenOptions::default());
        assert!(text.contains("\n# time_sync: not proposed (no trading NIC with a PTP hardware clock)"), "{text}");
        assert!(!text.contains("provider: chrony"));
        f.nics[0].phc_index = Some(3);
        let text = generate(&f, &GenOptions::default());
        let (c, _) = crate::config::parse(&text);
        assert!(c.time_sync.is_none(), "proposed commented out only");
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| *l == "# time_sync:").expect("the proposal");
        let enabled: String = lines
            .iter()
            .enumerate()
            .map(|(i, l)| if (at..at + 4).contains(&i) { &l[2..] } else { l })
            .collect::<Vec<_>>()
            .join("\n");
        let r = crate::config::audit::audit_text(&enabled, Some(&f));
        assert!(r.errors.is_empty(), "{:#?}\n{enabled}", r.errors);
        let args = crate::config::to_args::from_text(&enabled).unwrap();
        assert_eq!(
            args.modules[crate::names::TIMESYNC],
            serde_json::json!({"provider": "chrony", "refclock": {"phc": "ens1f0", "poll": 0, "dpoll": -2, "prefer": true}, "interface": "ens1f0"})
        );
    }

    #[test]
    fn a_snapshot_of_an_older_lltune_reads_fields_added_since_as_unknown() {
        let mut v = serde_json::to_value(crate::analysis::Report::of(testing::two_nodes())).unwrap();
        v["cpu"].as_object_mut().unwrap().remove("flags");
        v["kernel"].as_object_mut().unwrap().remove("bootloader");
        v.as_object_mut().unwrap().remove("time");
        for text in [serde_json::to_string(&v).unwrap(), serde_yaml::to_string(&v).unwrap()] {
            let f = read_snapshot(&text).unwrap();
            assert_eq!(f.cpu.count, 16);
            assert!(f.cpu.flags.is_empty() && f.kernel.bootloader.layout.is_empty());
        }
        v["cpu"]["count"] = "many".into();
        assert!(read_snapshot(&serde_json::to_string(&v).unwrap()).unwrap_err().to_string().contains("expected u32"));
        v["cpu"]["count"] = 16.into();
        v["schema_version"] = 3.into();
        assert!(
            read_snapshot(&serde_json::to_string(&v).unwrap())
                .unwrap_err()
                .to_string()
                .contains("schema_version 3 (this lltune reads 1 to 2)")
        );
    }

    #[test]
    fn hugepages_keep_existing_counts_and_fit_small_nodes() {
        let mut f = testing::two_nodes();
        f.numa.nodes[1].memory_kb = Some(4096 * 1024); // 4 GiB: 1/8 = 256 pages of 2 MB
        assert_eq!(hugepages_plan(&f), Some((2048, vec![(0, 512), (1, 256)])));
        f.numa.nodes[0]
            .hugepages
            .insert("2048".into(), crate::facts::numa::NodeHugepages { total: Some(100), ..Default::default() });
        assert_eq!(hugepages_plan(&f), Some((2048, vec![(0, 100), (1, 0)])));
        f.numa.nodes[0].hugepages.clear();
        f.numa.nodes[0].memory_kb = None;
        assert_eq!(hugepages_plan(&f), None);
    }

    #[test]
    fn strings_are_quoted_and_escaped() {
        assert_eq!(q("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(q("off"), "\"off\"");
    }

    #[test]
    fn never_proposes_less_than_the_host_has() {
        let mut f = testing::two_nodes();
        // The issue's host: fs.file-max 2,466,170, above lltune's 2,097,152.
        f.sysctl.insert("fs.file-max".into(), Some("2466170".into()));
        f.sysctl.insert("net.core.somaxconn".into(), Some("4096".into()));
        f.sysctl.insert("vm.max_map_count".into(), Some("1048576".into()));
        f.sysctl.insert("net.core.rmem_max".into(), None);
        f.limits.default.nofile =
            crate::facts::limits::SoftHard { soft: Some("1024".into()), hard: Some("4194304".into()) };
        f.limits.default.nproc = crate::facts::limits::SoftHard { soft: Some("unlimited".into()), hard: None };
        let text = generate(&f, &GenOptions::default());
        let (c, issues) = crate::config::parse(&text);
        assert!(issues.is_empty(), "{issues:?}\n{text}");
        let s = c.sysctls();
        let get = |k: &str| s.get(k).map(|(v, _)| v.as_str());
        assert_eq!(get("fs.file-max"), Some("2466170"));
        assert_eq!(get("net.core.somaxconn"), Some("65535"));
        assert_eq!(get("vm.max_map_count"), Some("1048576"));
        assert_eq!(get("net.core.rmem_max"), Some("67108864"));
        assert!(
            text.contains("file_max: 2466170   # the host's current value, above lltune's 2097152: kept"),
            "{text}"
        );
        let l = c.memory.unwrap().limits.unwrap();
        assert_eq!(l.nofile.unwrap().0, "4194304");
        assert_eq!(l.nproc.unwrap().0, "unlimited");
        // Below the targets: the targets.
        let text = generate(&testing::two_nodes(), &GenOptions::default());
        assert!(text.contains("    file_max: 2097152\n") && text.contains("    nofile: 1048576\n"), "{text}");
    }
}
