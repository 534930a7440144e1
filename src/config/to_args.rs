//! A config's sections as each module's arguments: the one translation that `lltune apply`,
//! `lltune_config` and `lltune_audit` share (and the `tune` role through them).
//!
//! `lltune_sysctl` gets `{settings: {real.sysctl.name: "value"}}` from `network.sysctl` (the
//! seed's short names mapped to real keys), the sysctl keys of `memory` and `kernel.sysctl`;
//! `lltune_kernel_args` gets `{args: {key: "value" | ""}, allow_dangerous_mitigations}` from
//! `kernel.cmdline` then `kernel.extra_args`, in file order — and is left out when
//! `safety.allow_grub_edit` is false, so that no path through this translation touches the
//! boot configuration without the flag. A module with nothing to do is left out. What the
//! config asks that no module carries out yet is listed in `not_implemented`, never dropped
//! in silence. `from_config` reads no host; `fit_to_host` then reads the host the arguments
//! are for and leaves out what it cannot take (sysctls its kernel lacks, absent sysfs files).

use serde_json::{Map, Value};
use serde_yaml::Value as Yaml;

use crate::config::{self, Config, IrqTarget, Issue};
use crate::names::{BYPASS, CPU, IRQ, KERNEL_ARGS, LIMITS, MEMORY, NIC, ORDER, SERVICES, SYSCTL, THREADS, TIMESYNC};

/// Sections that describe the host or advise; nothing to apply in them.
/// `rdma` names devices for audit's NUMA cross-checks; it changes nothing itself.
const INFORMATIONAL: &[&str] = &["version", "metadata", "hardware", "recommendations", "safety", "rdma"];

/// Sections some of whose keys a module carries out.
const PARTLY_APPLIED: &[&str] = &["kernel", "network", "memory", "services", "time_sync"];

/// Keys carried out whole.
const APPLIED: &[&str] = &[
    "kernel.cmdline",
    "kernel.extra_args",
    "kernel.sysctl",
    "network.sysctl",
    "network.defaults",
    "network.interfaces",
    "memory.thp_runtime",
    "memory.swap_disable",
    "memory.ksm",
    "memory.hugepages",
    "memory.mlock",
    "memory.limits",
    "services.irqbalance",
    "services.tuned",
    "time_sync.provider",
    "time_sync.servers",
    "time_sync.refclock",
    "time_sync.ptp",
    "time_sync.disable_competing",
];

/// Whole sections carried out.
const APPLIED_SECTIONS: &[&str] = &["irq", "cpu", "threads", "onload", "vma", "xlio"];

/// A config as module arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModuleArgs {
    /// Module name → its arguments (a JSON object). Run them with `in_order`: the map's own
    /// order is not the run order once entries were removed.
    pub modules: Map<String, Value>,
    /// Where each sysctl came from: real name → dotted config path (for messages).
    pub sysctl_paths: Map<String, Value>,
    /// Config items left out on purpose, with why (`safety.allow_grub_edit` false).
    pub skipped: Vec<String>,
    /// Config paths present that no module carries out yet.
    pub not_implemented: Vec<String>,
    /// Module → {option or setting name → config key path and finding} (`config::reasons`).
    pub reasons: Map<String, Value>,
}

impl ModuleArgs {
    /// One module's arguments, when it has something to do.
    pub fn get(&self, module: &str) -> Option<&Map<String, Value>> {
        self.modules.get(module).and_then(Value::as_object)
    }

    /// The modules to run with their arguments, in `ORDER`. A name outside `ORDER` (none is
    /// ever inserted) comes last, so that nothing is dropped in silence.
    pub fn in_order(&self) -> Vec<(&str, &Value)> {
        let rank = |m: &str| ORDER.iter().position(|o| *o == m).unwrap_or(ORDER.len());
        let mut out: Vec<(&str, &Value)> = self.modules.iter().map(|(k, v)| (k.as_str(), v)).collect();
        crate::sort::sort_by_key(&mut out, |(k, _)| rank(k));
        out
    }

    /// Puts `modules` back in `ORDER` (for the JSON a role or a person reads).
    fn reorder(&mut self) {
        let sorted: Map<String, Value> = self.in_order().into_iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        self.modules = sorted;
    }
}

/// Reads config text through the one strict reader and translates it; any issue refuses the
/// whole config (every issue is returned, with its dotted path).
pub fn from_text(text: &str) -> Result<ModuleArgs, Vec<Issue>> {
    let doc = config::yaml::load(text).map_err(|e| vec![Issue::new("", format!("not valid YAML: {e}"))])?;
    from_doc(&doc, &config::yaml11_booleans(text))
}

/// The same, for a config already parsed into a value (`words`: the YAML 1.1 words of the
/// text it came from; none for JSON).
pub fn from_doc(doc: &Yaml, words: &[config::Yaml11Bool]) -> Result<ModuleArgs, Vec<Issue>> {
    let (cfg, issues) = config::parse_doc(doc, words);
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(from_config(&cfg, doc))
}

fn is_empty(v: &Yaml) -> bool {
    match v {
        Yaml::Null => true,
        Yaml::Mapping(m) => m.is_empty(),
        Yaml::Sequence(s) => s.is_empty(),
        _ => false,
    }
}

/// Translates a parsed config; `doc` is the same document as YAML, for the file order of what
/// is not implemented.
pub fn from_config(cfg: &Config, doc: &Yaml) -> ModuleArgs {
    let mut out = ModuleArgs::default();

    let sysctls = cfg.sysctls();
    if !sysctls.is_empty() {
        let mut settings = Map::new();
        for (key, (value, path)) in &sysctls {
            settings.insert(key.clone(), Value::String(value.clone()));
            out.sysctl_paths.insert(key.clone(), Value::String(path.clone()));
        }
        out.modules.insert(SYSCTL.into(), serde_json::json!({ "settings": settings }));
    }

    let cmdline = cfg.kernel_args();
    if !cmdline.is_empty() {
        if cfg.safety.allow_grub_edit {
            let mut args = Map::new();
            for (k, v) in &cmdline {
                args.insert(k.clone(), Value::String(v.clone().unwrap_or_default()));
            }
            out.modules.insert(
                KERNEL_ARGS.into(),
                serde_json::json!({
                    "args": args,
                    "allow_dangerous_mitigations": cfg.safety.allow_dangerous_mitigations,
                }),
            );
        } else {
            out.skipped.push(format!("kernel.cmdline ({} arguments): safety.allow_grub_edit is false", cmdline.len()));
        }
    }

    if let Some(net) = cfg.network.as_ref().filter(|n| n.interfaces.is_empty() && n.defaults.is_some()) {
        if net.defaults.as_ref().is_some_and(|d| *d != Default::default()) {
            out.skipped.push("network.defaults: no network.interfaces to apply it to".into());
        }
    }
    if let Some(cpu) = cpu_args(cfg) {
        out.modules.insert(CPU.into(), cpu);
    }
    if let Some(memory) = memory_args(cfg, &mut out.skipped) {
        out.modules.insert(MEMORY.into(), memory);
    }
    if let Some(services) = services_args(cfg, &mut out.skipped) {
        out.modules.insert(SERVICES.into(), services);
    }
    if let Some(limits) = limits_args(cfg) {
        out.modules.insert(LIMITS.into(), limits);
    }
    // NIC before IRQ: changing channels re-creates the queues' IRQs.
    if let Some(nic) = nic_args(cfg) {
        out.modules.insert(NIC.into(), nic);
    }
    if let Some(irq) = irq_args(cfg) {
        out.modules.insert(IRQ.into(), irq);
    }
    if let Some(threads) = threads_args(cfg) {
        out.modules.insert(THREADS.into(), threads);
    }
    if let Some(bypass) = bypass_args(cfg) {
        out.modules.insert(BYPASS.into(), bypass);
    }
    if let Some(timesync) = timesync_args(cfg) {
        out.modules.insert(TIMESYNC.into(), timesync);
    }

    // What the config asks that no module carries out yet: parts of partly applied sections
    // first, then whole sections, each in the file's order.
    let applied: Vec<&str> = sysctls.values().map(|(_, path)| path.as_str()).collect();
    let mut whole: Vec<String> = Vec::new();
    if let Yaml::Mapping(top) = doc {
        for (k, v) in top {
            let Some(section) = k.as_str() else { continue };
            if INFORMATIONAL.contains(&section) || APPLIED_SECTIONS.contains(&section) || is_empty(v) {
                continue;
            }
            let Some(m) = v.as_mapping().filter(|_| PARTLY_APPLIED.contains(&section)) else {
                whole.push(section.to_string());
                continue;
            };
            for (sk, sv) in m {
                let Some(sk) = sk.as_str() else { continue };
                let path = format!("{section}.{sk}");
                if APPLIED.contains(&path.as_str()) || applied.contains(&path.as_str()) || is_empty(sv) {
                    continue;
                }
                if let ("memory.mlock", Yaml::Mapping(ml)) = (path.as_str(), sv) {
                    for (mk, mv) in ml {
                        let mpath = format!("memory.mlock.{}", mk.as_str().unwrap_or(""));
                        if !applied.contains(&mpath.as_str()) && !is_empty(mv) {
                            out.not_implemented.push(mpath);
                        }
                    }
                    continue;
                }
                out.not_implemented.push(path);
            }
        }
    }
    out.not_implemented.extend(whole);
    out.reorder();
    out.reasons = super::reasons::of(cfg, &out);
    out
}

/// `network.defaults` and `network.interfaces` (and `irq.disable_rps`/`disable_rfs`, which act
/// on the interfaces' queues, or on every netdev but loopback when none is listed) as
/// `lltune_nic`'s `interfaces`, with ethtool's names. An interface with nothing to set is left
/// out; so is the module when none is left.
fn nic_args(cfg: &Config) -> Option<Value> {
    let net = cfg.network.clone().unwrap_or_default();
    let d = net.defaults.clone().unwrap_or_default();
    let irq = cfg.irq.clone().unwrap_or_default();
    let mut interfaces = Vec::new();
    if net.interfaces.is_empty() && (irq.disable_rps == Some(true) || irq.disable_rfs == Some(true)) {
        // No interface named: RPS/RFS off on every netdev but loopback (lltune_nic's `all`).
        let mut e = Map::from_iter([("all".to_string(), Value::Bool(true))]);
        if irq.disable_rps == Some(true) {
            e.insert("rps_cpus".into(), Value::String(String::new()));
        }
        if irq.disable_rfs == Some(true) {
            e.insert("rps_flow_cnt".into(), Value::from(0));
        }
        interfaces.push(Value::Object(e));
    }
    for i in &net.interfaces {
        let mut e = Map::new();
        let mut features = Map::new();
        let o = i.offloads.clone().unwrap_or_default();
        for (name, per_nic, disable) in [
            ("gro", o.gro, d.disable_gro),
            ("lro", o.lro, d.disable_lro),
            ("tso", o.tso, d.disable_tso),
            ("gso", o.gso, d.disable_gso),
        ] {
            if let Some(on) = per_nic.or(disable.map(|off| !off)) {
                features.insert(name.into(), Value::Bool(on));
            }
        }
        if !features.is_empty() {
            e.insert("features".into(), Value::Object(features));
        }
        let mut group = |key: &str, pairs: Vec<(&str, Option<Value>)>| {
            let m: Map<String, Value> = pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v))).collect();
            if !m.is_empty() {
                e.insert(key.into(), Value::Object(m));
            }
        };
        let c = i.coalescing.clone().unwrap_or_default();
        group(
            "coalesce",
            vec![
                ("adaptive-rx", c.adaptive_rx.map(Value::Bool)),
                ("adaptive-tx", c.adaptive_tx.map(Value::Bool)),
                ("rx-usecs", c.rx_usecs.map(Value::from)),
                ("tx-usecs", c.tx_usecs.map(Value::from)),
            ],
        );
        let r = i.rings.clone().unwrap_or_default();
        group("rings", vec![("rx", r.rx.map(Value::from)), ("tx", r.tx.map(Value::from))]);
        let ch = i.channels.clone().unwrap_or_default();
        group(
            "channels",
            vec![
                ("combined", ch.combined.map(Value::from)),
                ("rx", ch.rx.map(Value::from)),
                ("tx", ch.tx.map(Value::from)),
            ],
        );
        let fc = i.flow_control.clone().unwrap_or_default();
        group("pause", vec![("rx", fc.rx.map(Value::Bool)), ("tx", fc.tx.map(Value::Bool))]);
        if irq.disable_rps == Some(true) {
            e.insert("rps_cpus".into(), Value::String(String::new()));
        }
        if irq.disable_rfs == Some(true) {
            e.insert("rps_flow_cnt".into(), Value::from(0));
        }
        if !e.is_empty() {
            e.insert("name".into(), Value::String(i.name.clone()));
            interfaces.push(Value::Object(e));
        }
    }
    (!interfaces.is_empty()).then(|| persistent(Map::from_iter([("interfaces".to_string(), Value::Array(interfaces))])))
}

/// The `irq` section as `lltune_irq`'s `rules` (one per `manual_affinity` pin, in order: a
/// `match` glob as `{name}`, a `nic` as `{nic}`, a `pci` address as `{pci}`) and
/// `irqbalance_banned_cpus` (`avoid_cores_for_irqs`: irqbalance must not move IRQs there) and
/// `default_affinity`.
fn irq_args(cfg: &Config) -> Option<Value> {
    let irq = cfg.irq.as_ref()?;
    let mut m = Map::new();
    let rules: Vec<Value> = irq
        .manual_affinity
        .iter()
        .map(|p| {
            let matcher = match &p.target {
                IrqTarget::Match(g) => serde_json::json!({"name": g}),
                IrqTarget::Nic(n) => serde_json::json!({"nic": n}),
                IrqTarget::Pci(a) => serde_json::json!({"pci": a}),
            };
            serde_json::json!({"match": matcher, "cpus": p.cpus.0.to_string()})
        })
        .collect();
    if !rules.is_empty() {
        m.insert("rules".into(), Value::Array(rules));
    }
    if let Some(avoid) = irq.avoid_cores_for_irqs.as_ref().filter(|a| !a.0.is_empty()) {
        m.insert("irqbalance_banned_cpus".into(), Value::String(avoid.0.to_string()));
    }
    if let Some(d) = &irq.default_affinity {
        m.insert("default_affinity".into(), Value::String(d.0.to_string()));
    }
    (!m.is_empty()).then(|| persistent(m))
}

/// The `threads` section as `lltune_threads`: `isolated_cpus` from `cpu.isolate_cores`
/// (unless `isolate: false`), `housekeeping_cpus`, `keep` and `priorities` as given (absent:
/// the module's defaults). Only when the section is there: threads are moved when asked.
fn threads_args(cfg: &Config) -> Option<Value> {
    let t = cfg.threads.as_ref()?;
    let mut m = Map::new();
    let isolate = cfg.cpu.as_ref().and_then(|c| c.isolate_cores.as_ref()).filter(|c| !c.0.is_empty());
    if let Some(iso) = isolate.filter(|_| t.isolate != Some(false)) {
        m.insert("isolated_cpus".into(), Value::String(iso.0.to_string()));
        if let Some(hk) = t.housekeeping_cores.as_ref().filter(|c| !c.0.is_empty()) {
            m.insert("housekeeping_cpus".into(), Value::String(hk.0.to_string()));
        }
        if !t.keep.is_empty() {
            m.insert("keep".into(), Value::Array(t.keep.iter().cloned().map(Value::String).collect()));
        }
    }
    // Built by hand, not through serde: this translation is in lltune_config, whose size is tight.
    let rule = |pattern: &str, policy: &str, priority: u32| {
        let mut r = Map::new();
        r.insert("match".into(), Value::String(pattern.into()));
        r.insert("policy".into(), Value::String(policy.into()));
        r.insert("priority".into(), Value::from(priority));
        Value::Object(r)
    };
    let rules: Option<Vec<Value>> = match &t.priorities {
        Some(p) => Some(p.iter().map(|r| rule(&r.pattern, &r.policy, r.priority)).collect()),
        // Nothing else to do: the defaults, spelled out (a module left with nothing but
        // `persist` is dropped as having nothing to do).
        None if m.is_empty() => {
            Some(crate::modules::threads::REALTIME_DEFAULTS.iter().map(|(g, p, n)| rule(g, p.name(), *n)).collect())
        }
        None => None,
    };
    if let Some(rules) = rules {
        m.insert("priorities".into(), Value::Array(rules));
    }
    Some(persistent(m))
}

/// `time_sync` as `lltune_timesync`'s arguments: chrony's servers and refclock, and the `ptp`
/// mapping (ptp4l's provider, or ptp4l beside chrony); nothing without a provider (audit says what is missing). Built by hand (the
/// size of lltune_config).
fn timesync_args(cfg: &Config) -> Option<Value> {
    use crate::config::{PtpDelay, PtpTransport, TimeProvider};
    let t = cfg.time_sync.as_ref()?;
    let provider = t.provider()?;
    let mut m = Map::new();
    let flag = |m: &mut Map<String, Value>, k: &str, v: Option<bool>| {
        if let Some(b) = v {
            m.insert(k.into(), Value::Bool(b));
        }
    };
    let int = |m: &mut Map<String, Value>, k: &str, v: Option<i64>| {
        if let Some(n) = v {
            m.insert(k.into(), Value::from(n));
        }
    };
    match provider {
        TimeProvider::Chrony => {
            m.insert("provider".into(), Value::String("chrony".into()));
            if !t.servers.is_empty() {
                let servers = t
                    .servers
                    .iter()
                    .map(|s| {
                        let mut o = Map::new();
                        o.insert("hostname".into(), Value::String(s.hostname.clone()));
                        flag(&mut o, "iburst", s.iburst);
                        flag(&mut o, "prefer", s.prefer);
                        flag(&mut o, "pool", s.pool);
                        int(&mut o, "minpoll", s.minpoll);
                        int(&mut o, "maxpoll", s.maxpoll);
                        Value::Object(o)
                    })
                    .collect();
                m.insert("servers".into(), Value::Array(servers));
            }
            if let Some(r) = &t.refclock {
                let mut o = Map::new();
                o.insert("phc".into(), Value::String(r.phc.clone()));
                int(&mut o, "poll", r.poll);
                int(&mut o, "dpoll", r.dpoll);
                int(&mut o, "offset_ns", r.offset_ns);
                int(&mut o, "precision_ns", r.precision_ns);
                flag(&mut o, "prefer", r.prefer);
                flag(&mut o, "tai", r.tai);
                m.insert("refclock".into(), Value::Object(o));
            }
        }
        TimeProvider::Ptp4l => {
            m.insert("provider".into(), Value::String("ptp4l".into()));
        }
    }
    // ptp4l's settings: its own provider, or ptp4l beside chrony disciplining the PHC.
    if let Some(p) = &t.ptp {
        if let Some(i) = &p.interface {
            m.insert("interface".into(), Value::String(i.clone()));
        }
        int(&mut m, "domain", p.domain.map(i64::from));
        if let Some(x) = p.transport {
            let w = match x {
                PtpTransport::UDPv4 => "UDPv4",
                PtpTransport::UDPv6 => "UDPv6",
                PtpTransport::L2 => "L2",
            };
            m.insert("transport".into(), Value::String(w.into()));
        }
        if let Some(x) = p.delay_mechanism {
            let w = match x {
                PtpDelay::E2E => "E2E",
                PtpDelay::P2P => "P2P",
            };
            m.insert("delay_mechanism".into(), Value::String(w.into()));
        }
        flag(&mut m, "phc2sys", p.phc2sys);
    }
    flag(&mut m, "disable_competing", t.disable_competing);
    Some(Value::Object(m))
}

/// Run-time state is lost at boot: the modules that set it persist it (`engine::persist`).
fn persistent(mut m: Map<String, Value>) -> Value {
    m.insert("persist".into(), Value::Bool(true));
    Value::Object(m)
}

/// The housekeeping CPUs the config names: `kernel.cmdline.kthread_cpus`, else `irqaffinity`.
fn housekeeping(cfg: &Config) -> Option<String> {
    ["kthread_cpus", "irqaffinity"].iter().find_map(|k| cfg.kernel_arg(k).flatten().map(str::to_string))
}

/// `cpu` as `lltune_cpu`: governor, EPP, turbo, `cstate_limit` (as `cstates.max_cstate`), PM
/// QoS resume latency (on the isolated cores unless `cpus` says), energy/performance bias,
/// uncore limits, `mce_ignore_ce`, and the housekeeping CPUs of the command line as the workqueue cpumasks and systemd's
/// CPUAffinity (`isolate_cores` itself is the command line's business: isolcpus and friends).
fn cpu_args(cfg: &Config) -> Option<Value> {
    let c = cfg.cpu.clone().unwrap_or_default();
    let mut m = Map::new();
    if let Some(g) = &c.governor {
        m.insert("governor".into(), Value::String(g.target.clone()));
    }
    if let Some(e) = &c.epp {
        m.insert("epp".into(), Value::String(e.clone()));
    }
    if let Some(t) = c.turbo {
        m.insert("turbo".into(), Value::Bool(t));
    }
    if let Some(n) = c.cstate_limit {
        m.insert("cstates".into(), serde_json::json!({ "max_cstate": n }));
    }
    if let Some(q) = &c.pm_qos_resume_latency_us {
        let mut e = Map::from_iter([("value".to_string(), Value::String(q.value.0.clone()))]);
        if let Some(cpus) = q.cpus.as_ref().or(c.isolate_cores.as_ref()) {
            e.insert("cpus".into(), Value::String(cpus.0.to_string()));
        }
        m.insert("pm_qos_resume_latency_us".into(), Value::Object(e));
    }
    if let Some(b) = c.energy_perf_bias {
        m.insert("energy_perf_bias".into(), Value::from(b));
    }
    if let Some(u) = &c.uncore {
        let e: Map<String, Value> = [("min_freq_khz", &u.min_freq_khz), ("max_freq_khz", &u.max_freq_khz)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), Value::String(v.0.clone()))))
            .collect();
        if !e.is_empty() {
            m.insert("uncore".into(), Value::Object(e));
        }
    }
    if let Some(b) = c.mce_ignore_ce {
        m.insert("mce_ignore_ce".into(), Value::Bool(b));
    }
    if cfg.cpu.as_ref().is_some_and(|c| c.isolate_cores.is_some()) {
        if let Some(hk) = housekeeping(cfg) {
            m.insert("workqueue_cpumask".into(), Value::String(hk.clone()));
            m.insert("systemd_cpu_affinity".into(), Value::String(hk));
        }
    }
    (!m.is_empty()).then(|| persistent(m))
}

/// `memory` as `lltune_memory`: THP, swap, KSM and runtime huge pages per node
/// (`numa_balancing` and the vm sysctls go to lltune_sysctl).
fn memory_args(cfg: &Config, skipped: &mut Vec<String>) -> Option<Value> {
    let mem = cfg.memory.as_ref()?;
    let mut m = Map::new();
    if let Some(t) = mem.thp_runtime {
        let word = serde_json::to_value(t).unwrap_or(Value::Null);
        m.insert("thp".into(), serde_json::json!({ "enabled": word }));
    }
    if mem.swap_disable == Some(true) {
        m.insert("swap".into(), Value::Bool(false));
    }
    if let Some(k) = mem.ksm {
        m.insert("ksm".into(), Value::Bool(k));
    }
    if let Some(h) = &mem.hugepages {
        match (h.size_kb(), h.per_node.is_empty()) {
            (Some(size), false) => {
                let nodes: Map<String, Value> = h
                    .per_node
                    .iter()
                    .map(|(k, v)| (k.trim_start_matches("node").to_string(), Value::from(*v)))
                    .collect();
                m.insert("hugepages".into(), serde_json::json!({ size.to_string(): nodes }));
            }
            _ => skipped
                .push("memory.hugepages: run-time huge pages are set per NUMA node; give size_kb and per_node".into()),
        }
    }
    (!m.is_empty()).then(|| persistent(m))
}

/// A `services.tuned` value that means "TuneD off" rather than a profile to run.
pub fn tuned_off(v: Option<&str>) -> bool {
    v.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "off" | "disabled" | "none" | "stopped" | ""))
}

/// `services` as `lltune_services`: irqbalance on or off; TuneD off, or the TuneD profile to
/// run (`tuned_profile`, which enables tuned itself).
fn services_args(cfg: &Config, _skipped: &mut Vec<String>) -> Option<Value> {
    let s = cfg.services.as_ref()?;
    let mut m = Map::new();
    let on_off = |on: bool| serde_json::json!({"state": if on { "started" } else { "stopped" }, "enabled": on});
    if let Some(on) = s.irqbalance {
        m.insert("irqbalance".into(), on_off(on));
    }
    let mut out = Map::new();
    if tuned_off(s.tuned.as_deref()) {
        m.insert("tuned".into(), on_off(false));
    } else if let Some(profile) = &s.tuned {
        out.insert("tuned_profile".into(), Value::String(profile.clone()));
    }
    if !m.is_empty() {
        out.insert("services".into(), Value::Object(m));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// `onload`, `vma` and `xlio` as `lltune_bypass`'s `profiles`: each section that asks for a
/// profile (`generate_profile` not false) with a tuning level. The module decides what the
/// level sets (the vendors' profiles) and validates every name and value.
fn bypass_args(cfg: &Config) -> Option<Value> {
    let mut profiles = Map::new();
    for (stack, section) in [("onload", &cfg.onload), ("vma", &cfg.vma), ("xlio", &cfg.xlio)] {
        let Some(s) = section.as_ref().filter(|s| s.wanted()) else { continue };
        let Some(level) = s.tuning_level else { continue };
        let mut p = Map::new();
        p.insert("tuning_level".into(), Value::String(level.word().into()));
        if let Some(path) = &s.path {
            p.insert("path".into(), Value::String(path.clone()));
        }
        if let Some(f) = &s.env_file {
            p.insert("env_file".into(), Value::String(f.clone()));
        }
        if !s.variables.0.is_empty() {
            let vars: Map<String, Value> =
                s.variables.0.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            p.insert("variables".into(), Value::Object(vars));
        }
        profiles.insert(stack.into(), Value::Object(p));
    }
    (!profiles.is_empty()).then(|| {
        let mut m = Map::new();
        m.insert("profiles".into(), Value::Object(profiles));
        Value::Object(m)
    })
}

/// `memory.mlock` (memlock for its `user`) and `memory.limits` (nofile, nproc, rtprio for the
/// same domain, `*` by default) as `lltune_limits` lines.
fn limits_args(cfg: &Config) -> Option<Value> {
    let mem = cfg.memory.as_ref()?;
    let mut lines = Vec::new();
    let domain = mem.mlock.as_ref().and_then(|m| m.user.clone()).unwrap_or_else(|| "*".into());
    if let Some(ml) = mem.mlock.as_ref().filter(|m| m.enabled != Some(false)) {
        for (kind, v) in [("soft", &ml.soft), ("hard", &ml.hard)] {
            if let Some(v) = v {
                lines.push(serde_json::json!({"domain": domain, "type": kind, "item": "memlock", "value": v.0}));
            }
        }
    }
    if let Some(l) = &mem.limits {
        for (item, v) in [("nofile", &l.nofile), ("nproc", &l.nproc), ("rtprio", &l.rtprio)] {
            if let Some(v) = v {
                lines.push(serde_json::json!({"domain": domain, "type": "-", "item": item, "value": v.0}));
            }
        }
    }
    (!lines.is_empty()).then(|| serde_json::json!({ "limits": lines }))
}

/// Leaves out what the config derives but this host cannot take (the files are not there:
/// no workqueue cpumask, no cpuidle states, no EPP, no THP), each named in `skipped`. What
/// the config asks for explicitly stays: the module then fails naming what is missing.
pub fn fit_to_host(args: &mut ModuleArgs, facts: &crate::facts::Facts, host: &crate::host::Host) {
    // A sysctl this kernel does not have (a name the seed used that went away, such as
    // tcp_low_latency in 4.14, or a dump that did not capture it) is left out and named.
    if let Some(settings) =
        args.modules.get_mut(SYSCTL).and_then(|m| m.get_mut("settings")).and_then(Value::as_object_mut)
    {
        let mut gone = Vec::new();
        settings.retain(|key, _| match crate::facts::sysctl::parse_key(key) {
            Ok(k) if !host.exists(&k.path) => {
                gone.push((key.clone(), k.path));
                false
            }
            _ => true,
        });
        for (key, path) in gone {
            let from = args.sysctl_paths.get(&key).and_then(Value::as_str).unwrap_or(&key).to_string();
            args.skipped.push(format!("{from} ({key}): not present on this kernel ({path} does not exist)"));
        }
        if settings.is_empty() {
            args.modules.remove(SYSCTL);
        }
    }
    let drop = |module: &str, key: &str, why: &str, args: &mut ModuleArgs| {
        if let Some(m) = args.modules.get_mut(module).and_then(Value::as_object_mut) {
            if m.remove(key).is_some() {
                args.skipped.push(format!("{module}.{key}: {why}"));
            }
        }
    };
    if facts.kernel.cpumasks.workqueue.is_none() {
        drop(CPU, "workqueue_cpumask", "this host has no /sys/devices/virtual/workqueue/cpumask", args);
    }
    if facts.cpu.cpuidle.states.is_empty() {
        drop(CPU, "cstates", "this host shows no cpuidle states", args);
    }
    if facts.cpu.epp.is_empty() {
        drop(CPU, "epp", "this host's cpufreq driver has no energy_performance_preference", args);
    }
    if facts.memory.ksm.run.is_none() {
        drop(MEMORY, "ksm", "this host has no /sys/kernel/mm/ksm/run", args);
    }
    let missing_size = args
        .get(MEMORY)
        .and_then(|m| m.get("hugepages"))
        .and_then(Value::as_object)
        .and_then(|sizes| sizes.keys().find(|size| !facts.memory.hugepages.contains_key(*size)).cloned());
    if let Some(size) = missing_size {
        let offered: Vec<&str> = facts.memory.hugepages.keys().map(String::as_str).collect();
        let why = if offered.is_empty() {
            format!("this host offers no {size} kB huge pages (no /sys/kernel/mm/hugepages)")
        } else {
            format!("this host offers no {size} kB huge pages (sizes: {})", offered.join(", "))
        };
        drop(MEMORY, "hugepages", &why, args);
    }
    if facts.memory.thp.enabled.is_none() {
        drop(MEMORY, "thp", "this host has no /sys/kernel/mm/transparent_hugepage", args);
    }
    // irqbalance's banned CPUs go to its environment file; a host with none and no
    // distribution family to place one by (no irqbalance installed) cannot take them.
    if args.get(IRQ).is_some_and(|m| m.contains_key("irqbalance_banned_cpus"))
        && !crate::facts::services::irqbalance_file(host).is_ok_and(|f| f.is_some())
    {
        drop(
            IRQ,
            "irqbalance_banned_cpus",
            &format!(
                "this host has neither {} nor {} and its /etc/os-release names no RHEL or Debian family (irqbalance is not installed)",
                crate::facts::services::IRQBALANCE_RHEL,
                crate::facts::services::IRQBALANCE_DEBIAN
            ),
            args,
        );
    }
    if !host.exists(crate::facts::irq::DEFAULT_AFFINITY_FILE) {
        drop(IRQ, "default_affinity", "this host has no /proc/irq/default_smp_affinity", args);
    }
    // A module left with nothing but `persist` has nothing to do.
    args.modules.retain(|_, m| m.as_object().is_none_or(|o| o.keys().any(|k| k != "persist")));
    // Removing from the map moved its last entry into the hole: back to the run order.
    args.reorder();
}

/// The `lltune_config` / `lltune_audit` result fields: `module_args` (module name → its
/// arguments), `skipped_items` (config items left out: the host cannot take them, or the
/// config's safety flags keep them out; each with why) and `not_implemented` (config paths no
/// module carries out yet), `reasons` (for each module in `module_args`, why each of its
/// arguments is there: `config::reasons`). Not `skipped`: Ansible reads a true `skipped` key as
/// "the task was skipped", and shows the task so.
pub fn result_fields(a: &ModuleArgs) -> [(&'static str, Value); 4] {
    let reasons: Map<String, Value> = a
        .reasons
        .iter()
        .filter(|(m, _)| a.modules.contains_key(m.as_str()))
        .map(|(m, r)| (m.clone(), r.clone()))
        .collect();
    [
        ("module_args", Value::Object(a.modules.clone())),
        ("skipped_items", serde_json::json!(a.skipped)),
        ("not_implemented", serde_json::json!(a.not_implemented)),
        ("reasons", Value::Object(reasons)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SEED: &str = "version: 1\nmetadata: {host: x}\ncpu:\n  governor: {target: performance}\nkernel:\n  cmdline:\n    isolcpus: managed_irq,domain,2-5\n    nosoftlockup: \"\"\n    skew_tick: 1\nmemory:\n  swappiness: 10\n  numa_balancing: false\n  thp_runtime: never\n  mlock: {enabled: true, max_map_count: 262144}\nnetwork:\n  defaults: {disable_gro: true}\n  sysctl:\n    rmem_max: 67108864\n    tcp_timestamps: false\n    tcp_rmem: \"4096 87380 67108864\"\n    file_max: 2097152\n    net.core.somaxconn: 4096\nirq: {}\nsafety:\n  allow_grub_edit: true\n";

    #[test]
    fn threads_section_isolates_cpu_isolate_cores_with_its_keep_and_priorities() {
        let a = from_text(
            "version: 1\ncpu:\n  isolate_cores: 2-5\nthreads:\n  keep: [\"trader*\"]\n  housekeeping_cores: 0-1\n  priorities:\n    - {match: \"ksoftirqd/*\", policy: fifo, priority: 3}\n",
        )
        .unwrap();
        assert_eq!(
            a.modules[THREADS],
            json!({"isolated_cpus": "2-5", "housekeeping_cpus": "0-1", "keep": ["trader*"],
                   "priorities": [{"match": "ksoftirqd/*", "policy": "fifo", "priority": 3}], "persist": true})
        );
        assert!(a.not_implemented.is_empty(), "{:?}", a.not_implemented);
        // isolate: false and no priorities: the defaults, spelled out.
        let a = from_text("version: 1\ncpu:\n  isolate_cores: 2-5\nthreads: {isolate: false, keep: [x]}\n").unwrap();
        let rules = a.modules[THREADS]["priorities"].as_array().unwrap().clone();
        assert_eq!(rules.len(), crate::modules::threads::REALTIME_DEFAULTS.len());
        assert_eq!(rules[0], json!({"match": "ksoftirqd/*", "policy": "fifo", "priority": 2}));
        assert!(a.modules[THREADS].get("isolated_cpus").is_none());
        // No threads section: no thread is touched.
        assert!(from_text("version: 1\ncpu:\n  isolate_cores: 2-5\n").unwrap().get(THREADS).is_none());
        // Bad rules name their field.
        let e = from_text("version: 1\nthreads:\n  priorities: [{match: x, policy: fifo, priority: 0}]\n").unwrap_err();
        assert_eq!(
            (e[0].field.as_str(), e[0].message.as_str()),
            ("threads.priorities[0].priority", "fifo takes 1 to 99, got 0")
        );
        let e =
            from_text("version: 1\nthreads:\n  priorities: [{match: x, policy: deadline, priority: 1}]\n").unwrap_err();
        assert_eq!(e[0].field, "threads.priorities[0].policy");
        let e = from_text("version: 1\nthreads:\n  priorities: [{match: x, policy: rr}]\n").unwrap_err();
        assert_eq!((e[0].field.as_str(), e[0].message.as_str()), ("threads.priorities[0]", "missing field `priority`"));
        let e = from_text("version: 1\nthreads:\n  pin: 1\n").unwrap_err();
        assert_eq!(e[0].field, "threads.pin");
    }

    #[test]
    fn seed_config_maps_to_module_arguments_and_lists_the_rest() {
        let a = from_text(SEED).unwrap();
        assert_eq!(
            a.modules[SYSCTL],
            json!({"settings": {
                "fs.file-max": "2097152",
                "kernel.numa_balancing": "0",
                "net.core.rmem_max": "67108864",
                "net.core.somaxconn": "4096",
                "net.ipv4.tcp_rmem": "4096 87380 67108864",
                "net.ipv4.tcp_timestamps": "0",
                "vm.max_map_count": "262144",
                "vm.swappiness": "10",
            }})
        );
        assert_eq!(
            a.modules[KERNEL_ARGS],
            json!({"args": {"isolcpus": "managed_irq,domain,2-5", "nosoftlockup": "", "skew_tick": "1"},
                   "allow_dangerous_mitigations": false})
        );
        // The order apply runs them in.
        assert_eq!(a.modules.keys().collect::<Vec<_>>(), [SYSCTL, KERNEL_ARGS, CPU, MEMORY]);
        assert_eq!(a.modules[CPU], json!({"governor": "performance", "persist": true}));
        assert_eq!(a.modules[MEMORY], json!({"thp": {"enabled": "never"}, "persist": true}));
        assert_eq!(a.sysctl_paths["fs.file-max"], "network.sysctl.file_max");
        assert_eq!(a.skipped, ["network.defaults: no network.interfaces to apply it to"]);
        assert!(a.not_implemented.is_empty(), "{:?}", a.not_implemented);
    }

    #[test]
    fn no_grub_edit_flag_no_kernel_args_module() {
        let a = from_text(&SEED.replace("allow_grub_edit: true", "allow_grub_edit: false")).unwrap();
        assert!(a.get(KERNEL_ARGS).is_none());
        assert!(a.get(SYSCTL).is_some());
        assert_eq!(
            a.skipped,
            [
                "kernel.cmdline (3 arguments): safety.allow_grub_edit is false",
                "network.defaults: no network.interfaces to apply it to"
            ]
        );
        let a = from_text("version: 1\nkernel:\n  cmdline:\n    skew_tick: 1\n").unwrap();
        assert!(a.modules.is_empty(), "{a:?}");
    }

    #[test]
    fn consent_is_carried_and_refusals_stop_the_translation() {
        let a = from_text(
            "version: 1\nkernel:\n  cmdline:\n    mitigations: \"off\"\nsafety:\n  allow_grub_edit: true\n  allow_dangerous_mitigations: true\n",
        )
        .unwrap();
        assert_eq!(
            a.modules[KERNEL_ARGS],
            json!({"args": {"mitigations": "off"}, "allow_dangerous_mitigations": true})
        );
        let e = from_text("version: 1\nkernel:\n  extra_args:\n    init: /bin/sh\nsafety:\n  allow_grub_edit: true\n")
            .unwrap_err();
        assert_eq!(e[0].field, "kernel.extra_args.init");
    }

    #[test]
    fn network_and_irq_sections_as_nic_and_irq_arguments() {
        let a = from_text(
            "version: 1\nnetwork:\n  defaults: {disable_gro: true, disable_lro: true}\n  interfaces:\n    - name: ens1f0\n      offloads: {gro: true}\n      coalescing: {rx_usecs: 0, adaptive_rx: false}\n      rings: {rx: 4096}\n      channels: {combined: 8}\n      flow_control: {rx: false, tx: false}\n    - name: eno1\n      role: management\nirq:\n  manual_affinity:\n    - match: \"ens1f0*\"\n      cpus: 2-5\n  avoid_cores_for_irqs: 2-39\n  disable_rps: true\n  disable_rfs: true\n",
        )
        .unwrap();
        assert_eq!(
            a.modules[NIC],
            json!({"interfaces": [
                {"features": {"gro": true, "lro": false},
                 "coalesce": {"adaptive-rx": false, "rx-usecs": 0},
                 "rings": {"rx": 4096}, "channels": {"combined": 8}, "pause": {"rx": false, "tx": false},
                 "rps_cpus": "", "rps_flow_cnt": 0, "name": "ens1f0"},
                {"features": {"gro": false, "lro": false}, "rps_cpus": "", "rps_flow_cnt": 0, "name": "eno1"},
            ], "persist": true})
        );
        assert_eq!(
            a.modules[IRQ],
            json!({"rules": [{"match": {"name": "ens1f0*"}, "cpus": "2-5"}], "irqbalance_banned_cpus": "2-39",
                   "persist": true})
        );
        assert!(a.not_implemented.is_empty(), "{:?}", a.not_implemented);
    }

    #[test]
    fn irq_pins_by_nic_and_pci_as_device_rules() {
        let a = from_text(
            "version: 1\nirq:\n  manual_affinity:\n    - {match: \"nvme*\", cpus: 1}\n    - {nic: ens1f0, cpus: 0-1}\n    - {pci: \"0000:3b:00.0\", cpus: \"0\"}\n",
        )
        .unwrap();
        assert_eq!(
            a.modules[IRQ]["rules"],
            json!([
                {"match": {"name": "nvme*"}, "cpus": "1"},
                {"match": {"nic": "ens1f0"}, "cpus": "0-1"},
                {"match": {"pci": "0000:3b:00.0"}, "cpus": "0"},
            ])
        );
    }

    #[test]
    fn rps_rfs_on_every_nic_default_affinity_and_explicit_values_win() {
        // No interface listed: every netdev but loopback, and the global flow table.
        let a =
            from_text("version: 1\nirq:\n  disable_rps: true\n  disable_rfs: true\n  default_affinity: 0-1\n").unwrap();
        assert_eq!(
            a.modules[NIC],
            json!({"interfaces": [{"all": true, "rps_cpus": "", "rps_flow_cnt": 0}], "persist": true})
        );
        assert_eq!(a.modules[SYSCTL], json!({"settings": {"net.core.rps_sock_flow_entries": "0"}}));
        assert_eq!(a.sysctl_paths["net.core.rps_sock_flow_entries"], "irq.disable_rfs");
        assert_eq!(a.modules[IRQ], json!({"default_affinity": "0-1", "persist": true}));
        // RPS only: no flow table, no rps_flow_cnt.
        let a = from_text("version: 1\nirq:\n  disable_rps: true\n").unwrap();
        assert_eq!(a.modules[NIC]["interfaces"], json!([{"all": true, "rps_cpus": ""}]));
        assert!(a.get(SYSCTL).is_none());
        // Interfaces listed: those only, as before.
        let a = from_text(
            "version: 1\nnetwork:\n  interfaces:\n    - {name: eth0, rings: {rx: 512}}\nirq:\n  disable_rfs: true\n",
        )
        .unwrap();
        assert_eq!(a.modules[NIC]["interfaces"], json!([{"name": "eth0", "rings": {"rx": 512}, "rps_flow_cnt": 0}]));
        // An explicit value beats the derived one.
        let a = from_text(
            "version: 1\nnetwork:\n  sysctl:\n    rps_sock_flow_entries: 4096\n    vm.swappiness: 1\nirq:\n  disable_rfs: true\nmemory:\n  swap_disable: true\n",
        )
        .unwrap();
        assert_eq!(
            a.modules[SYSCTL]["settings"],
            json!({"net.core.rps_sock_flow_entries": "4096", "vm.swappiness": "1"})
        );
        let a = from_text("version: 1\nmemory:\n  swap_disable: true\n  swappiness: 10\n").unwrap();
        assert_eq!(a.modules[SYSCTL]["settings"], json!({"vm.swappiness": "10"}));
    }

    #[test]
    fn cpu_power_keys_as_lltune_cpu_options() {
        let a = from_text(
            "version: 1\ncpu:\n  isolate_cores: 2-3\n  pm_qos_resume_latency_us: {value: n/a}\n  energy_perf_bias: balance-performance\n  uncore: {min_freq_khz: max, max_freq_khz: 2400000}\n  mce_ignore_ce: true\n",
        )
        .unwrap();
        assert_eq!(
            a.modules[CPU],
            json!({"pm_qos_resume_latency_us": {"value": "n/a", "cpus": "2-3"}, "energy_perf_bias": 4,
                   "uncore": {"min_freq_khz": "max", "max_freq_khz": "2400000"}, "mce_ignore_ce": true,
                   "persist": true})
        );
        // No housekeeping CPUs named: no watchdog_cpumask.
        assert!(a.get(SYSCTL).is_none());
        let a = from_text("version: 1\ncpu:\n  pm_qos_resume_latency_us: {cpus: 5, value: 20}\n").unwrap();
        assert_eq!(a.modules[CPU]["pm_qos_resume_latency_us"], json!({"value": "20", "cpus": "5"}));
        let a = from_text("version: 1\ncpu:\n  pm_qos_resume_latency_us: {value: 0}\n").unwrap();
        assert_eq!(a.modules[CPU]["pm_qos_resume_latency_us"], json!({"value": "0"}));
        // Bad values name the key.
        for (text, want) in [
            ("pm_qos_resume_latency_us: {value: none}", "cpu.pm_qos_resume_latency_us.value: expected microseconds"),
            ("pm_qos_resume_latency_us: {value: 2147483647}", "cpu.pm_qos_resume_latency_us.value"),
            ("pm_qos_resume_latency_us: {cpus: 2}", "cpu.pm_qos_resume_latency_us: missing field `value`"),
            ("energy_perf_bias: 16", "cpu.energy_perf_bias: expected 0 to 15 or one of performance"),
            ("energy_perf_bias: fast", "cpu.energy_perf_bias"),
            ("uncore: {min_freq_khz: 2450000}", "cpu.uncore.min_freq_khz: expected kHz in 100 MHz steps"),
            ("uncore: {max: 1}", "cpu.uncore.max: unknown field `max`"),
            ("mce_ignore_ce: 1", "cpu.mce_ignore_ce: expected a boolean"),
        ] {
            let e = from_text(&format!("version: 1\ncpu:\n  {text}\n")).unwrap_err();
            assert!(e[0].to_string().contains(want), "{text}: {e:?}");
        }
        let e = from_text("version: 1\nirq:\n  default_affinity: x\n").unwrap_err();
        assert!(e[0].to_string().starts_with("irq.default_affinity: "), "{e:?}");
    }

    #[test]
    fn result_fields_shape() {
        let [(k1, v1), (k2, v2), (k3, v3), (k4, v4)] = result_fields(&from_text(SEED).unwrap());
        assert_eq!((k1, k2, k3, k4), ("module_args", "skipped_items", "not_implemented", "reasons"));
        assert_eq!(v4[KERNEL_ARGS]["skew_tick"], "kernel.cmdline.skew_tick");
        assert_eq!(v1[KERNEL_ARGS]["args"]["skew_tick"], "1");
        assert_eq!(v2, json!(["network.defaults: no network.interfaces to apply it to"]));
        assert_eq!(v3, json!([]));
    }

    #[test]
    fn host_sections_as_cpu_memory_services_and_limits_arguments() {
        let a = from_text(
            "version: 1\ncpu:\n  governor: {target: performance}\n  isolate_cores: 2-7\n  turbo: false\n  cstate_limit: 1\n  epp: performance\nkernel:\n  cmdline:\n    kthread_cpus: 0-1\nmemory:\n  thp_runtime: never\n  swap_disable: true\n  ksm: false\n  hugepages: {size_kb: \"2048\", total: 1536, per_node: {node0: 1024, \"1\": 512}}\n  mlock: {enabled: true, user: \"@trading\", soft: unlimited, hard: unlimited}\n  limits: {nofile: 1048576, rtprio: 99}\nservices:\n  irqbalance: false\n  tuned: \"off\"\ntime_sync:\n  ntp: true\nsafety:\n  allow_grub_edit: true\n",
        )
        .unwrap();
        assert_eq!(
            a.modules[CPU],
            json!({"governor": "performance", "epp": "performance", "turbo": false, "cstates": {"max_cstate": 1},
                   "workqueue_cpumask": "0-1", "systemd_cpu_affinity": "0-1", "persist": true})
        );
        assert_eq!(
            a.modules[MEMORY],
            json!({"thp": {"enabled": "never"}, "swap": false, "ksm": false,
                   "hugepages": {"2048": {"0": 1024, "1": 512}}, "persist": true})
        );
        assert_eq!(
            a.modules[SERVICES],
            json!({"services": {"irqbalance": {"state": "stopped", "enabled": false},
                                "tuned": {"state": "stopped", "enabled": false}}})
        );
        assert_eq!(
            a.modules[LIMITS],
            json!({"limits": [
                {"domain": "@trading", "type": "soft", "item": "memlock", "value": "unlimited"},
                {"domain": "@trading", "type": "hard", "item": "memlock", "value": "unlimited"},
                {"domain": "@trading", "type": "-", "item": "nofile", "value": "1048576"},
                {"domain": "@trading", "type": "-", "item": "rtprio", "value": "99"},
            ]})
        );
        // swap_disable sets vm.swappiness too; isolated cores keep the lockup detectors on the
        // housekeeping CPUs.
        assert_eq!(a.modules[SYSCTL], json!({"settings": {"kernel.watchdog_cpumask": "0-1", "vm.swappiness": "0"}}));
        assert_eq!(a.sysctl_paths["vm.swappiness"], "memory.swap_disable");
        assert_eq!(a.sysctl_paths["kernel.watchdog_cpumask"], "cpu.isolate_cores");
        // The order apply runs them in: NIC and IRQ last.
        assert_eq!(a.modules.keys().collect::<Vec<_>>(), [SYSCTL, KERNEL_ARGS, CPU, MEMORY, SERVICES, LIMITS]);
        assert_eq!(a.not_implemented, ["time_sync.ntp"]);
        // The seed's spellings: node keys as bare numbers, RDMA devices as a list of names.
        let a = from_text(
            "version: 1\nmemory:\n  hugepages:\n    size_kb: \"2048\"\n    total: 1536\n    per_node:\n      0: 1024\n      \"1\": 512\nrdma:\n  devices: [mlx5_0, mlx5_1]\n",
        )
        .unwrap();
        assert_eq!(a.modules[MEMORY]["hugepages"], json!({"2048": {"0": 1024, "1": 512}}));
        assert!(a.not_implemented.is_empty(), "{:?}", a.not_implemented);
        // A TuneD profile: lltune_services runs it (and enables tuned itself).
        let a = from_text("version: 1\nservices:\n  irqbalance: false\n  tuned: latency-performance\n").unwrap();
        assert_eq!(
            a.modules[SERVICES],
            json!({"tuned_profile": "latency-performance",
                   "services": {"irqbalance": {"state": "stopped", "enabled": false}}})
        );
        assert_eq!(a.reasons[SERVICES]["tuned_profile"], "services.tuned");
        assert!(a.not_implemented.is_empty(), "{:?}", a.not_implemented);
    }

    #[test]
    fn stack_sections_as_lltune_bypass_profiles() {
        let a = from_text(
            "version: 1\nonload:\n  generate_profile: true\n  tuning_level: ultra_low_latency\n  variables: {EF_RXQ_SIZE: 2048}\nvma:\n  generate_profile: false\n  tuning_level: low_latency\nxlio:\n  tuning_level: balanced\n  path: /etc/lltune/xlio.sh\n",
        )
        .unwrap();
        assert_eq!(
            a.get(BYPASS).unwrap()["profiles"],
            json!({
                "onload": {"tuning_level": "ultra_low_latency", "variables": {"EF_RXQ_SIZE": "2048"}},
                "xlio": {"tuning_level": "balanced", "path": "/etc/lltune/xlio.sh"},
            })
        );
        assert!(a.not_implemented.is_empty(), "{:?}", a.not_implemented);
        assert_eq!(a.reasons[BYPASS], json!({"onload": "onload.tuning_level", "xlio": "xlio.tuning_level"}));
        // Only generate_profile: false: no module at all.
        let a = from_text("version: 1\nonload: {generate_profile: false}\n").unwrap();
        assert!(a.get(BYPASS).is_none() && a.not_implemented.is_empty(), "{a:?}");
    }

    /// See: issue 17. Every subset of the sections, each with its sysctls present or all
    /// dropped by `fit_to_host` (a host whose kernel has none of them): the modules come out,
    /// and run, in `ORDER`. Removing the sysctl entry from the map used to move IRQ to the
    /// front, before NIC re-creates the queues.
    #[test]
    fn every_subset_of_sections_runs_in_the_documented_order() {
        let parts: [(&str, &str); 8] = [
            (SYSCTL, "network_sysctl"),
            (KERNEL_ARGS, "kernel:\n  cmdline:\n    skew_tick: 1\n"),
            (CPU, "cpu:\n  governor: {target: performance}\n"),
            (MEMORY, "swap_disable: true"),
            (SERVICES, "services:\n  irqbalance: false\n"),
            (LIMITS, "limits: {nofile: 1048576}"),
            (NIC, "interfaces"),
            (IRQ, "irq:\n  manual_affinity:\n    - {match: \"eth0-*\", cpus: \"1\"}\n"),
        ];
        let facts = crate::analysis::testing::two_nodes();
        let empty = tempfile::tempdir().unwrap();
        let bare = crate::host::Host::new(empty.path()).unwrap();
        let mut cases = 0;
        for mask in 1u32..(1 << parts.len()) {
            let on = |m: &str| parts.iter().position(|(n, _)| *n == m).is_some_and(|i| mask & (1 << i) != 0);
            let mut text = String::from("version: 1\nsafety:\n  allow_grub_edit: true\n");
            for (name, yaml) in parts {
                if on(name) && !matches!(name, SYSCTL | MEMORY | LIMITS | NIC) {
                    text.push_str(yaml);
                }
            }
            let memory: Vec<&str> = [(MEMORY, "  swap_disable: true\n"), (LIMITS, "  limits: {nofile: 1048576}\n")]
                .iter()
                .filter(|(n, _)| on(n))
                .map(|(_, y)| *y)
                .collect();
            if !memory.is_empty() {
                text.push_str(&format!("memory:\n{}", memory.concat()));
            }
            if on(SYSCTL) || on(NIC) {
                text.push_str("network:\n");
                if on(SYSCTL) {
                    text.push_str("  sysctl:\n    busy_poll: 50\n");
                }
                if on(NIC) {
                    text.push_str("  interfaces:\n    - {name: eth0, coalescing: {rx_usecs: 0}}\n");
                }
            }
            // swap_disable brings vm.swappiness (lltune_sysctl).
            let wanted: Vec<&str> = ORDER.iter().copied().filter(|m| on(m) || (*m == SYSCTL && on(MEMORY))).collect();
            let full = from_text(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!(full.modules.keys().map(String::as_str).collect::<Vec<_>>(), wanted, "{text}");
            let mut fitted = full.clone();
            fit_to_host(&mut fitted, &facts, &bare);
            let left: Vec<&str> = wanted.iter().copied().filter(|m| *m != SYSCTL).collect();
            let run: Vec<&str> = fitted.in_order().into_iter().map(|(m, _)| m).collect();
            assert_eq!(run, left, "{text}");
            assert_eq!(fitted.modules.keys().map(String::as_str).collect::<Vec<_>>(), left, "{text}");
            // However the map was filled, the run order is ORDER's.
            let mut shuffled = full.clone();
            shuffled.modules = full.modules.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
            let run: Vec<&str> = shuffled.in_order().into_iter().map(|(m, _)| m).collect();
            assert_eq!(run, wanted, "{text}");
            cases += 1;
        }
        assert_eq!(cases, 255);
    }

    #[test]
    fn time_sync_becomes_lltune_timesync_arguments_and_their_reasons() {
        let a = from_text(
            "version: 1\ntime_sync:\n  provider: chrony\n  servers:\n    - {hostname: ntp1.example.com, iburst: true, minpoll: 4}\n  refclock: {phc: ens1f0, poll: 0, offset_ns: -37000, prefer: true}\n  ptp: {interface: ens1f0}\n  disable_competing: false\n  clocksource: tsc\n",
        )
        .unwrap();
        assert_eq!(
            a.modules[TIMESYNC],
            json!({"provider": "chrony", "servers": [{"hostname": "ntp1.example.com", "iburst": true, "minpoll": 4}],
                "refclock": {"phc": "ens1f0", "poll": 0, "offset_ns": -37000, "prefer": true}, "interface": "ens1f0",
                "disable_competing": false})
        );
        assert_eq!(a.not_implemented, ["time_sync.clocksource"]);
        assert_eq!(a.reasons[TIMESYNC]["refclock"], "time_sync.refclock");
        // The seed's ptp mapping alone means ptp4l on that interface.
        let a = from_text(
            "version: 1\ntime_sync:\n  ptp: {interface: ens1f0, domain: 24, transport: L2, delay_mechanism: P2P, phc2sys: true}\n",
        )
        .unwrap();
        assert_eq!(
            a.modules[TIMESYNC],
            json!({"provider": "ptp4l", "interface": "ens1f0", "domain": 24, "transport": "L2", "delay_mechanism": "P2P", "phc2sys": true})
        );
        assert_eq!(a.reasons[TIMESYNC]["domain"], "time_sync.ptp.domain");
        assert!(a.not_implemented.is_empty(), "{:?}", a.not_implemented);
        // No provider: nothing to run (the audit says what is missing).
        let a = from_text("version: 1\ntime_sync:\n  servers: [{hostname: a}]\n").unwrap();
        assert!(a.get(TIMESYNC).is_none());
    }
}
