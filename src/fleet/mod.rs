//! The fleet report: the lltune facts of many hosts, read from one folder, summed up for
//! dashboards and people (`lltune report`, the `lltune_report` module).
//!
//! Input: one folder holding one file per host. Each file holds that host's lltune facts in
//! any of the shapes they travel in (see `extract`): what `lltune scan --format json` prints,
//! the `lltune_facts` module result, or Ansible's `jsonfile` fact cache (plain, or the
//! encoded payload of ansible-core 2.19+). Output: `fleet.json`, `fleet.csv`, `fleet.md` and
//! `lltune.prom`, rendered by `render`. Everything here is pure except `load_dir` (reads)
//! and `write_outputs` (writes); the outputs carry no clock time, so the same facts always give
//! the same bytes and a rerun changes nothing. `docs/report.md` documents every field.

pub mod html;
pub mod render;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::analysis::{self, Recommendation, Severity};
use crate::facts::Facts;
use crate::facts::kernel::{Cmdline, parse_cmdline};

/// Version of the `fleet.json` layout (and of the CSV columns and metric names).
pub const FLEET_SCHEMA_VERSION: u32 = 1;

/// The largest input file read, in bytes: the facts of one host with `detail` are a few MiB.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// The files the report writes, in this order.
pub const OUTPUT_FILES: [&str; 5] = ["fleet.json", "fleet.csv", "fleet.md", "lltune.prom", "fleet.html"];

/// Points a finding takes off the score, by severity (see `score`).
pub const SCORE_PENALTY_ERROR: u32 = 15;
pub const SCORE_PENALTY_WARNING: u32 = 5;
pub const SCORE_PENALTY_INFO: u32 = 1;

/// Suffix of a per-host latency results file beside the facts (`<host>.latency.json`).
pub const LATENCY_SUFFIX: &str = ".latency.json";

/// One host's input, as read from the folder.
#[derive(Debug, Clone)]
pub struct HostInput {
    /// The host's name in the report (see `host_name`).
    pub host: String,
    /// The file it came from (its name in the folder).
    pub source: String,
    /// Which shape the file had: `scan`, `module_result`, `fact_cache`.
    pub shape: &'static str,
    pub facts: Facts,
    /// `recommendations` as the host reported them; computed here when the input has none.
    pub recommendations: Vec<Recommendation>,
    pub latency: Option<Latency>,
    /// When the facts file was last written (its mtime, seconds since the epoch): the time of
    /// the host's scan for the report role's files and Ansible's fact cache alike.
    pub facts_time: Option<f64>,
}

/// Per-host latency results, when the folder has them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// 99th percentile, µs.
    pub p99_us: Option<f64>,
    /// Largest latency seen, µs.
    pub max_us: Option<f64>,
}

/// Findings by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub error: usize,
    pub warning: usize,
    pub info: usize,
    pub total: usize,
}

impl Counts {
    pub fn of(recs: &[Recommendation]) -> Counts {
        let n = |s: Severity| recs.iter().filter(|r| r.severity == s).count();
        Counts { error: n(Severity::Error), warning: n(Severity::Warning), info: n(Severity::Info), total: recs.len() }
    }

    fn add(&mut self, o: &Counts) {
        self.error += o.error;
        self.warning += o.warning;
        self.info += o.info;
        self.total += o.total;
    }
}

/// The score of a host: 100 less `SCORE_PENALTY_*` points per finding, never below 0.
pub fn score(c: &Counts) -> u32 {
    let penalty = c.error as u64 * SCORE_PENALTY_ERROR as u64
        + c.warning as u64 * SCORE_PENALTY_WARNING as u64
        + c.info as u64 * SCORE_PENALTY_INFO as u64;
    100u64.saturating_sub(penalty) as u32
}

/// One argument whose configured values differ from the running ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftArg {
    pub arg: String,
    /// `added` (configured only: the next boot adds it), `removed` (running only: the next
    /// boot drops it), `changed` (both, with other values).
    pub change: &'static str,
    /// Values on the running command line, in order (`null` = bare flag); empty when absent.
    pub running: Vec<Option<String>>,
    /// Values in the boot configuration.
    pub configured: Vec<Option<String>>,
}

/// The boot configuration against the running command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Boot {
    /// `kernel.bootloader.layout` of the facts.
    pub layout: String,
    /// Where the configured arguments were read: `/etc/default/grub`, a BLS entry's path,
    /// `/etc/kernel/cmdline`; null when the facts show none for this layout.
    pub configured_source: Option<String>,
    /// The configured arguments as written there.
    pub configured_cmdline: Option<String>,
    /// `/proc/cmdline` (`kernel.cmdline`).
    pub running_cmdline: Option<String>,
    /// Boot loader variables in the configured line whose value the facts do not show
    /// (`$tuned_params`, `$kernelopts` of a BLS entry).
    pub unresolved: Vec<String>,
}

/// Arguments the boot loader adds to the line it is configured with, never written in it.
const LOADER_ARGS: &[&str] = &["BOOT_IMAGE", "initrd"];
/// What GRUB's `linux` line adds before `GRUB_CMDLINE_LINUX` on the grub2 layout.
const GRUB_LINE_ARGS: &[&str] = &["root", "ro", "rw"];

/// The configured command line the facts show: `(source, text)`.
pub fn configured_cmdline(f: &Facts) -> Option<(String, String)> {
    let b = &f.kernel.bootloader;
    match b.layout.as_str() {
        "grub2" => {
            let g = b.grub_defaults.as_ref()?;
            let parts: Vec<&str> =
                [g.cmdline_linux.as_deref(), g.cmdline_linux_default.as_deref()].into_iter().flatten().collect();
            Some((g.path.clone(), parts.join(" ").trim().to_string()))
        }
        "bls" => {
            // The entry of the running kernel; else the newest one that is not a rescue entry.
            let release = f.kernel.release.as_deref().or(f.host.kernel_release.as_deref());
            let by_release = release.and_then(|r| {
                b.bls_entries
                    .iter()
                    .find(|e| e.version.as_deref() == Some(r) || e.path.ends_with(&format!("-{r}.conf")))
            });
            let entry = by_release.or_else(|| {
                // The first of the greatest paths.
                b.bls_entries.iter().filter(|e| !e.path.contains("rescue")).min_by(|a, b| b.path.cmp(&a.path))
            })?;
            Some((entry.path.clone(), entry.options.clone().unwrap_or_default()))
        }
        "kernel-cmdline" => b.kernel_cmdline_file.clone().map(|t| ("/etc/kernel/cmdline".to_string(), t)),
        _ => None,
    }
}

/// The boot section and the drift: `None` drift when either side is unknown.
pub fn boot_drift(f: &Facts) -> (Boot, Option<Vec<DriftArg>>) {
    let configured = configured_cmdline(f);
    let mut boot = Boot {
        layout: f.kernel.bootloader.layout.clone(),
        configured_source: configured.as_ref().map(|c| c.0.clone()),
        configured_cmdline: configured.as_ref().map(|c| c.1.clone()),
        running_cmdline: f.kernel.cmdline.clone(),
        unresolved: Vec::new(),
    };
    let (Some((_, conf_text)), Some(run_text)) = (&configured, &f.kernel.cmdline) else {
        return (boot, None);
    };
    let mut conf = parse_cmdline(conf_text);
    conf.args.retain(|a| {
        let var = a.value.is_none() && a.key.starts_with('$');
        if var {
            boot.unresolved.push(a.key.clone());
        }
        !var
    });
    if conf.args.is_empty() && !boot.unresolved.is_empty() {
        // Only variables (a RHEL 8 entry's `$kernelopts`): nothing to compare with.
        return (boot, None);
    }
    let run = parse_cmdline(run_text);
    (boot.clone(), Some(drift(&boot, &conf, &run)))
}

fn drift(boot: &Boot, conf: &Cmdline, run: &Cmdline) -> Vec<DriftArg> {
    let (c, r) = (conf.to_map(), run.to_map());
    let mut keys: Vec<&String> = c.keys().chain(r.keys()).collect();
    crate::sort::sort_by(&mut keys, |a, b| a.cmp(b));
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let cv = c.get(k).cloned().unwrap_or_default();
        let rv = r.get(k).cloned().unwrap_or_default();
        if cv == rv {
            continue;
        }
        if cv.is_empty() {
            // Only running: skip what the boot loader adds itself, and what an unresolved
            // variable of the configured line may hold.
            if LOADER_ARGS.contains(&k.as_str())
                || (boot.layout == "grub2" && GRUB_LINE_ARGS.contains(&k.as_str()))
                || !boot.unresolved.is_empty()
            {
                continue;
            }
        }
        let change = match (cv.is_empty(), rv.is_empty()) {
            (false, true) => "added",
            (true, false) => "removed",
            _ => "changed",
        };
        out.push(DriftArg { arg: k.clone(), change, running: rv, configured: cv });
    }
    out
}

/// What a person and a dashboard want to know of one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostEntry {
    pub host: String,
    pub source: String,
    pub input_shape: &'static str,
    pub hostname: Option<String>,
    pub facts_schema_version: u32,
    pub facts_lltune_version: String,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub virtualization: Option<String>,
    pub kernel_release: Option<String>,
    pub cpu_vendor: Option<String>,
    pub cpu_model: Option<String>,
    pub sockets: Option<u32>,
    pub cores_per_socket: Option<u32>,
    pub threads_per_core: Option<u32>,
    pub online_cpus: String,
    pub online_count: u32,
    pub isolated_cpus: String,
    pub isolated_count: usize,
    pub nohz_full: Option<String>,
    pub numa_nodes: usize,
    pub memory_total_kb: Option<u64>,
    pub hugepages: BTreeMap<String, HugepageCount>,
    pub thp: Option<String>,
    pub nics: usize,
    pub nics_physical: usize,
    pub findings: Counts,
    pub score: u32,
    pub reboot_pending: Option<bool>,
    pub drift_args: Option<usize>,
    pub drift: Option<Vec<DriftArg>>,
    pub boot: Boot,
    pub latency: Option<Latency>,
    /// `HostInput::facts_time`: how fresh the host's facts are.
    pub facts_timestamp: Option<f64>,
    pub recommendations: Vec<Recommendation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HugepageCount {
    pub total: Option<u64>,
    pub free: Option<u64>,
}

/// Sums over the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub hosts: usize,
    pub findings: Counts,
    pub hosts_with_errors: usize,
    pub reboot_pending: usize,
    pub drifted: usize,
    pub score_min: u32,
    pub score_max: u32,
    /// Mean score, rounded down.
    pub score_mean: u32,
    /// The newest host's `facts_timestamp`: the time the report's data is from. A report
    /// rebuilt from the same files keeps it (and is the same report, byte for byte).
    pub facts_newest_timestamp: Option<f64>,
}

/// `fleet.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Fleet {
    pub schema_version: u32,
    /// Version of the lltune that built the report.
    pub lltune_version: String,
    pub summary: Summary,
    pub hosts: Vec<HostEntry>,
}

fn os_name(f: &Facts) -> Option<String> {
    let h = &f.host;
    h.os_pretty_name.clone().or_else(|| {
        h.os_id.as_ref().map(|id| match &h.os_version_id {
            Some(v) => format!("{id} {v}"),
            None => id.clone(),
        })
    })
}

/// The entry of one host.
pub fn host_entry(input: &HostInput) -> HostEntry {
    let f = &input.facts;
    let isolated = analysis::isolated_cpus(f);
    let findings = Counts::of(&input.recommendations);
    let (boot, drift) = boot_drift(f);
    // Inserted one by one: `collect` into a map sorts, another copy of the sort code.
    let mut hugepages = BTreeMap::new();
    for (k, h) in &f.memory.hugepages {
        hugepages.insert(k.clone(), HugepageCount { total: h.total, free: h.free });
    }
    HostEntry {
        host: input.host.clone(),
        source: input.source.clone(),
        input_shape: input.shape,
        hostname: f.host.hostname.clone(),
        facts_schema_version: f.schema_version,
        facts_lltune_version: f.lltune_version.clone(),
        os: os_name(f),
        architecture: f.host.architecture.clone(),
        virtualization: f.host.virtualization.kind.clone(),
        kernel_release: f.kernel.release.clone().or_else(|| f.host.kernel_release.clone()),
        cpu_vendor: f.cpu.vendor.clone(),
        cpu_model: f.cpu.model_name.clone(),
        sockets: f.cpu.sockets,
        cores_per_socket: f.cpu.cores_per_socket,
        threads_per_core: f.cpu.threads_per_core,
        online_cpus: f.cpu.online.to_string(),
        online_count: f.cpu.count,
        isolated_cpus: isolated.to_string(),
        isolated_count: isolated.len(),
        nohz_full: f.cpu.nohz_full.as_ref().map(|c| c.to_string()),
        numa_nodes: f.numa.nodes.len(),
        memory_total_kb: f.memory.total_kb,
        hugepages,
        thp: f.memory.thp.enabled.clone(),
        nics: f.nics.len(),
        nics_physical: f.nics.iter().filter(|n| !n.r#virtual).count(),
        findings,
        score: score(&findings),
        reboot_pending: drift.as_ref().map(|d| !d.is_empty()),
        drift_args: drift.as_ref().map(Vec::len),
        drift,
        boot,
        latency: input.latency.clone(),
        facts_timestamp: input.facts_time,
        recommendations: input.recommendations.clone(),
    }
}

/// The report of a fleet (hosts in name order).
pub fn build(inputs: &[HostInput]) -> Fleet {
    let mut hosts: Vec<HostEntry> = inputs.iter().map(host_entry).collect();
    crate::sort::sort_by(&mut hosts, |a, b| a.host.cmp(&b.host));
    let mut findings = Counts::default();
    for h in &hosts {
        findings.add(&h.findings);
    }
    let scores: Vec<u32> = hosts.iter().map(|h| h.score).collect();
    let summary = Summary {
        hosts: hosts.len(),
        findings,
        hosts_with_errors: hosts.iter().filter(|h| h.findings.error > 0).count(),
        reboot_pending: hosts.iter().filter(|h| h.reboot_pending == Some(true)).count(),
        drifted: hosts.iter().filter(|h| h.drift_args.is_some_and(|n| n > 0)).count(),
        score_min: scores.iter().copied().min().unwrap_or(0),
        score_max: scores.iter().copied().max().unwrap_or(0),
        score_mean: if scores.is_empty() {
            0
        } else {
            (scores.iter().map(|&s| s as u64).sum::<u64>() / scores.len() as u64) as u32
        },
        facts_newest_timestamp: hosts.iter().filter_map(|h| h.facts_timestamp).reduce(f64::max),
    };
    Fleet {
        schema_version: FLEET_SCHEMA_VERSION,
        lltune_version: env!("CARGO_PKG_VERSION").to_string(),
        summary,
        hosts,
    }
}

// ---- Reading the folder ----

/// Reads one input file: a regular file (a FIFO or device is refused before it can block) of
/// at most `MAX_FILE_BYTES`.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let shown = path.display();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| anyhow::anyhow!("{shown}: cannot read: {e}"))?;
    let m = f.metadata().map_err(|e| anyhow::anyhow!("{shown}: cannot read: {e}"))?;
    if !m.is_file() {
        bail!("{shown}: not a regular file; refused");
    }
    if m.len() > MAX_FILE_BYTES {
        bail!("{shown}: {} bytes, larger than the {MAX_FILE_BYTES} bytes (64 MiB) read; refused", m.len());
    }
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| anyhow::anyhow!("{shown}: cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        bail!("{shown}: larger than the {MAX_FILE_BYTES} bytes (64 MiB) read; refused");
    }
    Ok(bytes)
}

/// Ansible 2.19+ tags values in its fact cache: `{"__ansible_type": "_AnsibleTaggedStr",
/// "value": "x", "tags": [...]}`; dates are `{"__ansible_type": ..., "iso8601": "..."}`.
/// Returns the plain value.
pub fn untag(v: Value) -> Value {
    match v {
        Value::Object(mut m) => {
            if m.contains_key("__ansible_type") {
                if let Some(inner) = m.remove("value") {
                    return untag(inner);
                }
                if let Some(iso) = m.remove("iso8601") {
                    return iso;
                }
                m.remove("__ansible_type");
            }
            Value::Object(m.into_iter().map(|(k, v)| (k, untag(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(untag).collect()),
        other => other,
    }
}

/// Is this object lltune facts (or a report of them)?
fn is_facts(m: &Map<String, Value>) -> bool {
    m.contains_key("schema_version") && m.contains_key("cpu") && m.contains_key("kernel")
}

/// What `extract` finds: the shape, the facts object, and a `latency` object beside them.
pub type Extracted = (&'static str, Map<String, Value>, Option<Value>);

/// Finds the lltune facts in a document: `(shape, facts, latency source)`.
///
/// - `scan`: the facts object itself (`lltune scan --format json`);
/// - `module_result`: `{"ansible_facts": {"lltune": {...}}}` (a registered `lltune_facts` result);
/// - `fact_cache`: a host's facts dict, lltune's under `lltune` (or `ansible_lltune`), as
///   Ansible's jsonfile cache keeps it; ansible-core 2.19+ wraps it as `{"__payload__": "<JSON
///   text>"}` with tagged values, which are decoded.
pub fn extract(doc: Value) -> Result<Extracted, String> {
    let Value::Object(mut m) = doc else {
        return Err(format!("{} where an object was expected", crate::protocol::kind(&doc)));
    };
    if let Some(Value::String(payload)) = m.get("__payload__") {
        let inner: Value =
            serde_json::from_str(payload).map_err(|e| format!("the fact cache's __payload__ is not JSON: {e}"))?;
        m = match untag(inner) {
            Value::Object(m) => m,
            other => return Err(format!("the fact cache's __payload__ is {}", crate::protocol::kind(&other))),
        };
    }
    let latency = m.remove("latency");
    if is_facts(&m) {
        return Ok(("scan", m, latency));
    }
    if let Some(Value::Object(af)) = m.get_mut("ansible_facts") {
        if let Some(Value::Object(l)) = af.remove("lltune") {
            return Ok(("module_result", l, latency));
        }
    }
    for key in ["lltune", "ansible_lltune"] {
        if let Some(Value::Object(l)) = m.remove(key) {
            if is_facts(&l) {
                return Ok(("fact_cache", l, latency));
            }
        }
    }
    Err("no lltune facts in it (looked for a facts object, ansible_facts.lltune, and a fact cache's lltune key)".into())
}

/// Latency numbers from `{"p99_us": .., "max_us": ..}` (at the top, or under `latency`), or
/// from a run of `lltune_latency` / `lltune validate --save` (`kind: lltune.latency`): the
/// worst isolated CPU's, or the worst housekeeping CPU's when no CPU is isolated.
pub fn parse_latency(v: &Value) -> Result<Latency, String> {
    let mut obj = v.get("latency").filter(|l| l.is_object()).unwrap_or(v);
    if obj.get("kind").and_then(Value::as_str) == Some("lltune.latency") {
        if obj.get("measured") == Some(&Value::Bool(false)) {
            return Err("the latency run measured nothing (check mode, or a root other than /)".into());
        }
        let summary = obj.get("summary").ok_or("an lltune.latency run without summary")?;
        obj = ["isolated", "housekeeping"]
            .iter()
            .find_map(|role| summary.get(*role).filter(|g| g.is_object()))
            .ok_or("an lltune.latency run with neither an isolated nor a housekeeping summary")?;
    }
    let num = |k: &str| -> Result<Option<f64>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
                _ => Err(format!("{k}: not a non-negative number")),
            },
            Some(other) => Err(format!("{k}: expected a number, got {}", crate::protocol::kind(other))),
        }
    };
    let l = Latency { p99_us: num("p99_us")?, max_us: num("max_us")? };
    if l.p99_us.is_none() && l.max_us.is_none() {
        return Err("neither p99_us nor max_us".into());
    }
    Ok(l)
}

/// The host a file stands for: its name without `.json`, and without the `s<N>_` schema
/// prefix ansible-core 2.19+ gives fact cache files (only when the file is such a cache).
pub fn host_name(file: &str, encoded_cache: bool) -> String {
    let mut name = file.strip_suffix(".json").unwrap_or(file);
    if encoded_cache {
        if let Some(rest) = name.strip_prefix('s') {
            if let Some((n, host)) = rest.split_once('_') {
                if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && !host.is_empty() {
                    name = host;
                }
            }
        }
    }
    name.to_string()
}

/// Reads `v` as a `T`; an error names the field, as `<message> at <path>` (`cpu.count`,
/// `nics[0].speed`; `.` is the whole value).
///
/// serde_json's messages name no field, and a path-tracking deserializer
/// (serde_path_to_error) doubles the deserialization code of every type read. Instead `v` is
/// written out one key or element a line and read back from that text: the line of an
/// error is the line of its field (a missing field's is its object's closing line).
fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
    serde_json::from_str(&Lines::of(v, 0).text).map_err(|e| {
        let path = Lines::of(v, e.line()).found.filter(|p| !p.is_empty()).unwrap_or_else(|| ".".into());
        let full = e.to_string();
        let msg = full.rsplit_once(" at line ").map_or(full.as_str(), |(m, _)| m);
        format!("{msg} at {path}")
    })
}

/// JSON text of a value, one key or array element a line (see `typed`), and the path of the
/// line `want` (1-based).
struct Lines {
    text: String,
    path: String,
    line: usize,
    want: usize,
    found: Option<String>,
}

impl Lines {
    fn of(v: &Value, want: usize) -> Lines {
        let mut w = Lines { text: String::new(), path: String::new(), line: 1, want, found: None };
        if want == 1 {
            w.found = Some(String::new());
        }
        w.value(v);
        w
    }

    fn newline(&mut self) {
        self.text.push('\n');
        self.line += 1;
        if self.line == self.want {
            self.found = Some(self.path.clone());
        }
    }

    fn value(&mut self, v: &Value) {
        let len = self.path.len();
        match v {
            Value::Object(m) if !m.is_empty() => {
                self.text.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        self.text.push(',');
                    }
                    if len > 0 {
                        self.path.push('.');
                    }
                    self.path.push_str(k);
                    self.newline();
                    self.text.push_str(&Value::String(k.clone()).to_string());
                    self.text.push(':');
                    self.value(x);
                    self.path.truncate(len);
                }
                self.newline();
                self.text.push('}');
            }
            Value::Array(a) if !a.is_empty() => {
                self.text.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        self.text.push(',');
                    }
                    self.path.push_str(&format!("[{i}]"));
                    self.newline();
                    self.value(x);
                    self.path.truncate(len);
                }
                self.newline();
                self.text.push(']');
            }
            other => self.text.push_str(&other.to_string()),
        }
    }
}

/// Reads one host file.
pub fn read_host(path: &Path, file: &str) -> Result<HostInput> {
    let shown = path.display();
    let bytes = read_file(path)?;
    let facts_time = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as f64 + f64::from(d.subsec_millis()) / 1000.0);
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{shown}: not JSON ({e}); refused"))?;
    let encoded = doc.get("__payload__").is_some_and(Value::is_string);
    host_input(doc, host_name(file, encoded), file, &shown.to_string(), facts_time)
}

/// One host's input from its document (any shape `extract` knows); `shown` names it in errors.
fn host_input(doc: Value, host: String, source: &str, shown: &str, facts_time: Option<f64>) -> Result<HostInput> {
    let (shape, mut facts_obj, latency) = extract(doc).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let recs = facts_obj.remove("recommendations");
    // A field missing from older facts is read as unknown (see `Facts`).
    let facts: Facts =
        typed(&Value::Object(facts_obj)).map_err(|e| anyhow::anyhow!("{shown}: lltune facts of another shape: {e}"))?;
    if !crate::facts::reads_schema(facts.schema_version) {
        bail!(
            "{shown}: facts schema_version {} (this lltune reads {} to {})",
            facts.schema_version,
            crate::facts::OLDEST_SCHEMA_VERSION,
            crate::facts::SCHEMA_VERSION
        );
    }
    let recommendations = match recs {
        Some(r) => typed(&r).map_err(|e| anyhow::anyhow!("{shown}: recommendations: {e}"))?,
        None => analysis::recommend(&facts),
    };
    let latency = latency
        .filter(|l| !l.is_null())
        .map(|l| parse_latency(&l).map_err(|e| anyhow::anyhow!("{shown}: latency: {e}")))
        .transpose()?;
    Ok(HostInput { host, source: source.to_string(), shape, facts, recommendations, latency, facts_time })
}

/// Reads every host of a folder. Hidden files are skipped; `<host>.latency.json` files are
/// latency results of `<host>`. Any other file must hold lltune facts: the first that does
/// not fails the whole read, naming the file.
pub fn load_dir(dir: &Path) -> Result<Vec<HostInput>> {
    let shown = dir.display();
    let meta = std::fs::metadata(dir).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    if !meta.is_dir() {
        bail!("{shown}: not a folder");
    }
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{shown}: cannot list: {e}"))? {
        let entry = entry.map_err(|e| anyhow::anyhow!("{shown}: cannot list: {e}"))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|n| anyhow::anyhow!("{shown}: file name {n:?} is not UTF-8; refused"))?;
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    crate::sort::sort_by(&mut names, |a, b| a.cmp(b));
    let mut hosts: Vec<HostInput> = Vec::new();
    let mut latency: BTreeMap<String, (String, Latency)> = BTreeMap::new();
    for name in &names {
        let path = dir.join(name);
        if let Some(host) = name.strip_suffix(LATENCY_SUFFIX) {
            let bytes = read_file(&path)?;
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: not JSON ({e}); refused", path.display()))?;
            let l = parse_latency(&v).map_err(|e| anyhow::anyhow!("{}: latency: {e}", path.display()))?;
            latency.insert(host.to_string(), (name.clone(), l));
            continue;
        }
        hosts.push(read_host(&path, name)?);
    }
    if hosts.is_empty() {
        bail!("{shown}: no host facts in this folder");
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for h in &hosts {
        if let Some(first) = seen.insert(&h.host, &h.source) {
            bail!("{shown}: {first} and {} are both host {}", h.source, h.host);
        }
    }
    for (host, (file, l)) in latency {
        let Some(h) = hosts.iter_mut().find(|h| h.host == host) else {
            bail!("{}: latency results of host {host}, which has no facts here", dir.join(file).display());
        };
        h.latency = Some(l);
    }
    Ok(hosts)
}

/// Reads every host of a mapping of host name to facts (`lltune_report`'s `facts`: the facts
/// a play gathered, in any shape `extract` knows); `facts_time` is every host's scan time
/// (the module's run: the play scanned just before). Errors name the host.
pub fn load_values(facts: serde_json::Map<String, Value>, facts_time: Option<f64>) -> Result<Vec<HostInput>> {
    if facts.is_empty() {
        bail!("no hosts in it");
    }
    let mut hosts = Vec::with_capacity(facts.len());
    for (host, doc) in facts {
        if host.is_empty() {
            bail!("a host with an empty name");
        }
        let shown = format!("host {}", crate::protocol::cap_text(&host));
        hosts.push(host_input(doc, host.clone(), &host, &shown, facts_time)?);
    }
    crate::sort::sort_by(&mut hosts, |a, b| a.host.cmp(&b.host));
    Ok(hosts)
}

/// The outputs, by file name (`OUTPUT_FILES` order).
pub fn render_all(fleet: &Fleet) -> Vec<(&'static str, String)> {
    vec![
        (OUTPUT_FILES[0], render::json(fleet)),
        (OUTPUT_FILES[1], render::csv(fleet)),
        (OUTPUT_FILES[2], render::markdown(fleet)),
        (OUTPUT_FILES[3], render::prometheus(fleet)),
        (OUTPUT_FILES[4], html::html(fleet)),
    ]
}

/// What writing the outputs into a folder does (or would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct WriteResult {
    /// Output files whose content changes (all of them when the folder is new).
    pub changed: Vec<String>,
    /// Every output path.
    pub files: Vec<String>,
}

/// Refuses an output folder that is the facts folder or inside it: the next run would read
/// the report (or its folder) as host facts.
pub fn check_dirs(facts_dir: &Path, out_dir: &Path) -> Result<()> {
    let Ok(facts) = facts_dir.canonicalize() else { return Ok(()) };
    // The output folder may not exist yet: resolve its nearest existing ancestor.
    let mut rest = Vec::new();
    let mut at = out_dir.to_path_buf();
    let out = loop {
        if let Ok(c) = at.canonicalize() {
            break Some(rest.iter().rev().fold(c, |p: PathBuf, n: &std::ffi::OsString| p.join(n)));
        }
        match (at.file_name().map(|n| n.to_os_string()), at.parent()) {
            (Some(n), Some(p)) => {
                rest.push(n);
                at = if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() };
            }
            _ => break None,
        }
    };
    if let Some(out) = out {
        if out == facts {
            bail!("{}: the output folder is the facts folder; choose another", out_dir.display());
        }
        if out.starts_with(&facts) {
            bail!("{}: the output folder is inside the facts folder; choose another", out_dir.display());
        }
    }
    Ok(())
}

/// Writes the outputs into `out_dir` (made when missing), each atomically (temp file in the
/// folder, fsync, rename); a file whose content is already the same is left alone. With
/// `dry_run` nothing is written or made, and the result says what would change.
pub fn write_outputs(out_dir: &Path, outputs: &[(&'static str, String)], dry_run: bool) -> Result<WriteResult> {
    let shown = out_dir.display();
    let mut res = WriteResult::default();
    match std::fs::metadata(out_dir) {
        Ok(m) if !m.is_dir() => bail!("{shown}: not a folder"),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("{shown}: {e}"),
    }
    for (name, text) in outputs {
        let path = out_dir.join(name);
        res.files.push(path.display().to_string());
        let same = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => read_file(&path).map(|b| b == text.as_bytes()).unwrap_or(false),
            Ok(_) => bail!("{}: exists and is not a regular file; refused", path.display()),
            Err(_) => false,
        };
        if !same {
            res.changed.push(name.to_string());
        }
    }
    if dry_run || res.changed.is_empty() {
        return Ok(res);
    }
    std::fs::create_dir_all(out_dir).map_err(|e| anyhow::anyhow!("{shown}: cannot create: {e}"))?;
    // Every temp file first, then the renames: a failure while writing leaves the old outputs.
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let cleanup = |staged: &[(PathBuf, PathBuf)]| {
        for (tmp, _) in staged {
            let _ = std::fs::remove_file(tmp);
        }
    };
    for (name, text) in outputs.iter().filter(|(n, _)| res.changed.iter().any(|c| c == n)) {
        let dest = out_dir.join(name);
        let tmp = out_dir.join(format!(".{name}.lltune-tmp-{}", std::process::id()));
        let r = (|| -> std::io::Result<()> {
            use std::io::Write;
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })();
        if let Err(e) = r {
            let _ = std::fs::remove_file(&tmp);
            cleanup(&staged);
            bail!("{}: cannot write: {e}", dest.display());
        }
        staged.push((tmp, dest));
    }
    for (i, (tmp, dest)) in staged.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, dest) {
            cleanup(&staged[i..]);
            bail!("{}: cannot replace: {e}", dest.display());
        }
    }
    if let Ok(d) = std::fs::File::open(out_dir) {
        let _ = d.sync_all();
    }
    Ok(res)
}

/// Everything `lltune report` and `lltune_report` do: read, build, render, write.
pub fn run(facts_dir: &Path, out_dir: &Path, dry_run: bool) -> Result<(Fleet, WriteResult)> {
    check_dirs(facts_dir, out_dir)?;
    let inputs = load_dir(facts_dir)?;
    let fleet = build(&inputs);
    let outputs = render_all(&fleet);
    let res = write_outputs(out_dir, &outputs, dry_run)?;
    Ok((fleet, res))
}

#[cfg(test)]
mod tests {

    #[test]
    fn latency_comes_from_an_lltune_latency_run() {
        let run = serde_json::json!({
            "kind": "lltune.latency", "schema_version": 1, "measured": true,
            "summary": {
                "isolated": {"cpus": "2-7", "samples": 10, "max_us": 31, "p99_us": 12, "overflows": 0},
                "housekeeping": {"cpus": "0-1", "samples": 10, "max_us": 900, "p99_us": 80, "overflows": 0}
            }
        });
        assert_eq!(parse_latency(&run).unwrap(), Latency { p99_us: Some(12.0), max_us: Some(31.0) });
        let mut only_hk = run.clone();
        only_hk["summary"]["isolated"] = Value::Null;
        assert_eq!(parse_latency(&only_hk).unwrap(), Latency { p99_us: Some(80.0), max_us: Some(900.0) });
        let mut skipped = run.clone();
        skipped["measured"] = Value::Bool(false);
        assert!(parse_latency(&skipped).unwrap_err().contains("measured nothing"));
    }

    use super::*;
    use crate::analysis::testing;

    #[test]
    fn score_takes_points_per_finding_and_stops_at_zero() {
        assert_eq!(score(&Counts::default()), 100);
        assert_eq!(score(&Counts { error: 1, warning: 2, info: 3, total: 6 }), 100 - 15 - 10 - 3);
        assert_eq!(score(&Counts { error: 7, warning: 0, info: 0, total: 7 }), 0);
    }

    #[test]
    fn host_name_strips_json_and_the_cache_schema_prefix() {
        assert_eq!(host_name("web-1.json", false), "web-1");
        assert_eq!(host_name("s1_web-1", true), "web-1");
        assert_eq!(host_name("s1_web-1", false), "s1_web-1");
        assert_eq!(host_name("s_x", true), "s_x");
        assert_eq!(host_name("db.example.com", false), "db.example.com");
    }

    #[test]
    fn the_output_folder_may_not_be_in_the_facts_folder() {
        let d = tempfile::tempdir().unwrap();
        let facts = d.path().join("facts");
        std::fs::create_dir(&facts).unwrap();
        let e = |out: &Path| check_dirs(&facts, out).map_err(|e| e.to_string());
        assert!(e(&facts).unwrap_err().contains("is the facts folder"));
        assert!(e(&facts.join("new/report")).unwrap_err().contains("inside the facts folder"));
        assert!(e(&d.path().join("facts/../facts/x")).unwrap_err().contains("inside"));
        assert_eq!(e(&d.path().join("report")), Ok(()));
        assert_eq!(e(&d.path().join("facts-report/x")), Ok(()));
    }

    #[test]
    fn untag_keeps_plain_values() {
        let v = serde_json::json!({"a": {"value": "x", "tags": [], "__ansible_type": "_AnsibleTaggedStr"},
            "d": {"iso8601": "2024-01-02", "__ansible_type": "AnsibleSerializableDate"}, "l": [1, {"b": null}]});
        assert_eq!(untag(v), serde_json::json!({"a": "x", "d": "2024-01-02", "l": [1, {"b": null}]}));
    }

    #[test]
    fn drift_lists_arguments_and_skips_what_grub_adds() {
        let mut f = testing::blank();
        f.kernel.bootloader.layout = "grub2".into();
        f.kernel.bootloader.grub_defaults = Some(crate::facts::kernel::GrubDefaults {
            path: "/etc/default/grub".into(),
            cmdline_linux: Some("quiet isolcpus=2-3 console=tty0 console=ttyS0".into()),
            cmdline_linux_default: Some("nosoftlockup".into()),
            enable_blscfg: None,
        });
        f.kernel.cmdline = Some("BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet isolcpus=1-3 console=tty0 rhgb".into());
        let (boot, d) = boot_drift(&f);
        assert_eq!(boot.configured_source.as_deref(), Some("/etc/default/grub"));
        let d = d.unwrap();
        let got: Vec<(&str, &str)> = d.iter().map(|a| (a.arg.as_str(), a.change)).collect();
        assert_eq!(
            got,
            vec![("console", "changed"), ("isolcpus", "changed"), ("nosoftlockup", "added"), ("rhgb", "removed")]
        );
        assert_eq!(d[1].running, vec![Some("1-3".to_string())]);
        assert_eq!(d[1].configured, vec![Some("2-3".to_string())]);
    }

    #[test]
    fn drift_is_unknown_without_a_configured_line() {
        let mut f = testing::blank();
        f.kernel.cmdline = Some("quiet".into());
        assert_eq!(boot_drift(&f).1, None);
        // A BLS entry whose options are only a variable of grubenv.
        f.kernel.release = Some("4.18.0-553.el8_10.x86_64".into());
        f.kernel.bootloader.layout = "bls".into();
        f.kernel.bootloader.bls_entries = vec![crate::facts::kernel::BlsEntry {
            path: "/boot/loader/entries/x-4.18.0-553.el8_10.x86_64.conf".into(),
            version: Some("4.18.0-553.el8_10.x86_64".into()),
            options: Some("$kernelopts".into()),
            title: None,
        }];
        let (boot, d) = boot_drift(&f);
        assert_eq!((boot.unresolved, d), (vec!["$kernelopts".to_string()], None));
        // With arguments beside the variable, those are compared; running-only ones are not drift.
        f.kernel.bootloader.bls_entries[0].options = Some("$kernelopts isolcpus=2-3".into());
        f.kernel.cmdline = Some("BOOT_IMAGE=/vmlinuz root=/dev/sda1 quiet".into());
        let d = boot_drift(&f).1.unwrap();
        assert_eq!(d.iter().map(|a| (a.arg.as_str(), a.change)).collect::<Vec<_>>(), vec![("isolcpus", "added")]);
    }

    #[test]
    fn facts_missing_newer_fields_are_read_with_them_unknown() {
        let mut v = serde_json::to_value(analysis::Report::of(testing::two_nodes())).unwrap();
        let m = v.as_object_mut().unwrap();
        m.remove("time");
        m["cpu"].as_object_mut().unwrap().remove("flags");
        m["kernel"].as_object_mut().unwrap().remove("bootloader");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.json");
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        let h = read_host(&p, "old.json").unwrap();
        assert_eq!(h.facts.cpu.count, 16);
        assert!(h.facts.cpu.flags.is_empty() && h.facts.time.current_clocksource.is_none());
        assert_eq!(h.host, "old");
        // A field of the wrong type is still refused, named.
        v["cpu"]["count"] = Value::String("many".into());
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        let e = format!("{:#}", read_host(&p, "old.json").unwrap_err());
        assert!(e.contains("old.json") && e.contains("cpu.count"), "{e}");
    }

    #[test]
    fn facts_of_schema_1_are_read_and_a_newer_schema_is_refused() {
        let mut v = serde_json::to_value(analysis::Report::of(testing::two_nodes())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.json");
        // Version 1 wrote "" where version 2 may write null.
        v["schema_version"] = 1.into();
        v["cpu"]["isolated"] = "".into();
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        let h = read_host(&p, "h.json").unwrap();
        assert_eq!(h.facts.schema_version, 1);
        assert!(h.facts.cpu.isolated.as_ref().is_some_and(|c| c.is_empty()));
        v["schema_version"] = (crate::facts::SCHEMA_VERSION + 1).into();
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        let e = format!("{:#}", read_host(&p, "h.json").unwrap_err());
        assert!(
            e.contains(&format!("schema_version {} (this lltune reads 1 to 2)", crate::facts::SCHEMA_VERSION + 1)),
            "{e}"
        );
    }

    #[test]
    fn a_missing_field_reads_as_it_did_laid_over_blank_facts() {
        // The report used to lay input facts over `Facts::default()` as JSON (objects key by
        // key) before reading them; `#[serde(default)]` must read every input the same way.
        fn merge(base: &mut Value, over: Value) {
            match (base, over) {
                (Value::Object(b), Value::Object(o)) => {
                    for (k, v) in o {
                        match b.get_mut(&k) {
                            Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                            _ => {
                                b.insert(k, v);
                            }
                        }
                    }
                }
                (b, o) => *b = o,
            }
        }
        fn object_paths(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            if let Value::Object(m) = v {
                for (k, x) in m {
                    path.push(k.clone());
                    out.push(path.clone());
                    object_paths(x, path, out);
                    path.pop();
                }
            }
        }
        let blank = serde_json::to_value(Facts::default()).unwrap();
        let mut f = testing::two_nodes();
        f.lltune_version = "0.1.0".into();
        f.nics.push(crate::facts::nic::Nic { name: Some("eth0".into()), ..Default::default() });
        f.services.irqbalance.service.installed = Some(true);
        f.limits.root.nofile.soft = Some("1024".into());
        f.kernel.bootloader.layout = "bls".into();
        let full = serde_json::to_value(&f).unwrap();
        let mut paths = Vec::new();
        object_paths(&blank, &mut Vec::new(), &mut paths);
        assert!(paths.len() > 100, "{}", paths.len());
        let mut inputs = vec![serde_json::json!({}), full.clone()];
        for p in &paths {
            // Without the key, and with its object emptied.
            for empty in [false, true] {
                let mut v = full.clone();
                let mut at = &mut v;
                for k in &p[..p.len() - 1] {
                    at = &mut at[k.as_str()];
                }
                let last = p.last().unwrap().as_str();
                if empty {
                    if !at[last].is_object() {
                        continue;
                    }
                    at[last] = serde_json::json!({});
                } else {
                    at.as_object_mut().unwrap().remove(last);
                }
                inputs.push(v);
            }
        }
        for v in inputs {
            let mut laid = blank.clone();
            merge(&mut laid, v.clone());
            let before: Facts = serde_json::from_value(laid).unwrap();
            let now: Facts = typed(&v).unwrap();
            assert_eq!(serde_json::to_value(now).unwrap(), serde_json::to_value(before).unwrap(), "{v}");
        }
    }

    #[test]
    fn a_field_of_another_shape_is_named_by_its_path() {
        // The messages serde_path_to_error gave, but for a map key it could not name (`?`).
        let mut f = testing::two_nodes();
        f.nics.push(crate::facts::nic::Nic { name: Some("eth0".into()), ..Default::default() });
        let mut good = serde_json::to_value(analysis::Report::of(f)).unwrap();
        let recs = good.as_object_mut().unwrap().remove("recommendations").unwrap();
        let back: Facts = typed(&good).unwrap();
        assert_eq!(serde_json::to_value(back).unwrap(), good);
        type Edit = fn(&mut Value);
        let cases: &[(Edit, &str)] = &[
            (|v| v["cpu"]["count"] = "many".into(), "invalid type: string \"many\", expected u32 at cpu.count"),
            (|v| v["nics"][0]["mtu"] = (-1).into(), "invalid value: integer `-1`, expected u32 at nics[0].mtu"),
            (
                |v| v["numa"]["nodes"][1]["cpus"] = "3-1".into(),
                "invalid CPU list \"3-1\": range 3-1 runs backwards at numa.nodes[1].cpus",
            ),
            (
                |v| {
                    v["nics"][0].as_object_mut().unwrap().remove("virtual");
                },
                "missing field `virtual` at nics[0]",
            ),
            (
                |v| v["kernel"]["bootloader"]["grub_defaults"] = serde_json::json!({}),
                "missing field `path` at kernel.bootloader.grub_defaults",
            ),
            (
                |v| v["irqs"]["by_cpu"] = serde_json::json!({"1": 2, "x": 3}),
                "invalid value: expected key to be a number in quotes at irqs.by_cpu.x",
            ),
            // A flattened struct's field: named by the object it is flattened into.
            (
                |v| v["services"]["irqbalance"]["installed"] = "yes".into(),
                "invalid type: string \"yes\", expected a boolean at services.irqbalance",
            ),
            (|v| *v = "x".into(), "invalid type: string \"x\", expected struct Facts at ."),
        ];
        for (edit, want) in cases {
            let mut v = good.clone();
            edit(&mut v);
            assert_eq!(typed::<Facts>(&v).unwrap_err(), *want);
        }
        let mut r = recs.clone();
        assert_eq!(typed::<Vec<Recommendation>>(&r).unwrap().len(), r.as_array().unwrap().len());
        r[0]["severity"] = "fatal".into();
        assert_eq!(
            typed::<Vec<Recommendation>>(&r).unwrap_err(),
            "unknown variant `fatal`, expected one of `info`, `warning`, `error` at [0].severity"
        );
        // A key or string holding the text serde_json appends is not cut.
        let odd = serde_json::json!({"a at line 1": [true, "at line 2 column 3"]});
        assert_eq!(
            typed::<BTreeMap<String, Vec<bool>>>(&odd).unwrap_err(),
            "invalid type: string \"at line 2 column 3\", expected a boolean at a at line 1[1]"
        );
    }

    #[test]
    fn extract_finds_every_shape() {
        let facts = serde_json::to_value(analysis::Report::of(testing::two_nodes())).unwrap();
        let (s, _, _) = extract(facts.clone()).unwrap();
        assert_eq!(s, "scan");
        let (s, _, _) = extract(serde_json::json!({"changed": false, "ansible_facts": {"lltune": facts}})).unwrap();
        assert_eq!(s, "module_result");
        let payload = serde_json::to_string(&serde_json::json!({"lltune": facts, "other": 1})).unwrap();
        let (s, m, _) = extract(serde_json::json!({ "__payload__": payload })).unwrap();
        assert_eq!((s, m.contains_key("cpu")), ("fact_cache", true));
        assert!(extract(serde_json::json!({"a": 1})).unwrap_err().contains("no lltune facts"));
        assert!(extract(serde_json::json!([1])).unwrap_err().contains("a list"));
    }
}
