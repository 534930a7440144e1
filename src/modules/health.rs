//! lltune_health: the gate a rollout passes after tuning (and after the reboot it may need).
//! It rescans the host and fails when the host is not in the state the config asked for:
//!
//! - a configured kernel argument is not on the running command line (`/proc/cmdline`). When
//!   the host has not been rebooted since the boot configuration changed, that is expected:
//!   with `require_running: false` such arguments are reported as `kernel_args_pending` and
//!   the gate passes; with `true` (a reboot was allowed) they fail it;
//! - a configured argument that IS on the running command line has not had its effect, as the
//!   kernel reports it (see `effects`): `effects_missing`. Checked live and on a tree alike
//!   (a tree's captured /proc/cmdline and /sys answer the same reads; what its capture left
//!   out is listed in `effects_unchecked`); an argument still pending a reboot has no effect
//!   to check yet;
//! - an error finding appears that the scan before tuning (`baseline`) did not have.
//!
//! Changes nothing, so check mode runs the same checks. A failed gate is a failed task, which
//! is what stops a `serial` rollout through `max_fail_percentage`.

use anyhow::Result;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::analysis::{Recommendation, Severity};
use crate::facts::ScanOptions;
use crate::facts::cpu::{CPU_DIR as CPU, read_cpu_list};
use crate::host::Host;
use crate::host::system::Kernel;
use crate::protocol::{Failure, Meta, Outcome, lenient_bool};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The configured kernel arguments (`lltune_kernel_args`' `args`): `key` → value, `""` or
    /// null for a bare flag.
    #[serde(default, deserialize_with = "arg_map")]
    pub kernel_args: Vec<(String, Option<String>)>,
    /// The findings of the scan before tuning (`ansible_facts.lltune.recommendations`).
    #[serde(default, deserialize_with = "findings")]
    pub baseline: Option<Vec<(String, String)>>,
    /// A configured argument missing from the running command line fails the gate (true), or
    /// is reported as pending a reboot (false). Only on the live host (`root` `/`): on a tree
    /// such an argument is always pending.
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub require_running: bool,
}

fn yes() -> bool {
    true
}

/// A mapping of argument → scalar (null or `""` for a bare flag), as `lltune_kernel_args` takes.
fn arg_map<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<(String, Option<String>)>, D::Error> {
    let m = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Object(m) => m,
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a mapping of kernel argument to value, got {}",
                crate::protocol::kind(&other)
            )));
        }
    };
    m.into_iter()
        .map(|(k, v)| match v {
            Value::Null => Ok((k, None)),
            Value::String(s) if s.is_empty() => Ok((k, None)),
            Value::String(s) => Ok((k, Some(s))),
            Value::Number(n) if !n.is_f64() => Ok((k, Some(n.to_string()))),
            other => Err(serde::de::Error::custom(format!(
                "{k}: expected a string, a whole number or null, got {}",
                crate::protocol::kind(&other)
            ))),
        })
        .collect()
}

/// The error findings of a recommendations list, as (category, item).
fn findings<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<(String, String)>>, D::Error> {
    let list = match Value::deserialize(d)? {
        Value::Null => return Ok(None),
        Value::Array(a) => a,
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected the recommendations list of lltune_facts, got {}",
                crate::protocol::kind(&other)
            )));
        }
    };
    let mut out = Vec::new();
    for (i, v) in list.into_iter().enumerate() {
        let r: Recommendation = serde_json::from_value(v)
            .map_err(|e| serde::de::Error::custom(format!("[{i}]: not a recommendation of lltune_facts: {e}")))?;
        if r.severity == Severity::Error {
            out.push((r.category, r.item));
        }
    }
    Ok(Some(out))
}

/// True when the running command line has `key` with `value` (a bare flag for `None`; any of
/// a repeated key's values counts).
fn running_has(
    args: &std::collections::BTreeMap<String, Vec<Option<String>>>,
    key: &str,
    value: &Option<String>,
) -> bool {
    args.get(key).is_some_and(|vals| {
        vals.iter().any(|v| match (v, value) {
            (None, None) => true,
            (Some(v), None) => v.is_empty(),
            (Some(v), Some(want)) => v == want,
            (None, Some(_)) => false,
        })
    })
}

pub fn run(host: &Host, _meta: &Meta, params: Params) -> Result<Outcome> {
    // A gate on a folder that is no host's tree would pass on nothing: refused as the scan is.
    if let Some(problem) = crate::facts::not_a_host_tree(host) {
        return Err(Failure::new(format!("root {}: {problem}", host.root().display())).into());
    }
    let (report, warnings) = crate::analysis::analyse(host, ScanOptions::default());
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    let mut pending = Vec::new();
    // A tree cannot boot: there, an argument waits for a reboot that never comes. Whether
    // /proc/cmdline is this boot's is a question about the data, so `kernel()`.
    let require_running = params.require_running && host.system().kernel() == Kernel::Running;
    match report.facts.kernel.cmdline {
        None if !params.kernel_args.is_empty() && require_running => {
            problems.push("kernel_args: /proc/cmdline cannot be read, so the running arguments are unknown".to_string())
        }
        None => pending.extend(params.kernel_args.iter().map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })),
        Some(_) => {
            for (k, v) in &params.kernel_args {
                if running_has(&report.facts.kernel.args, k, v) {
                    continue;
                }
                let shown = match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                };
                if require_running {
                    missing.push(shown);
                } else {
                    pending.push(shown);
                }
            }
        }
    }
    if !missing.is_empty() {
        problems.push(format!("kernel_args: not on the running command line: {}", missing.join(" ")));
    }
    let mut unchecked = Vec::new();
    let effects_missing = match report.facts.kernel.cmdline {
        Some(_) => {
            let running: Vec<(String, Option<String>)> = params
                .kernel_args
                .iter()
                .filter(|(k, v)| running_has(&report.facts.kernel.args, k, v))
                .cloned()
                .collect();
            effects(host, &params.kernel_args, &running, &mut unchecked)
        }
        None => Vec::new(),
    };
    problems.extend(effects_missing.iter().cloned());
    let new_errors: Vec<&Recommendation> = match &params.baseline {
        None => Vec::new(),
        Some(before) => report
            .recommendations
            .iter()
            .filter(|r| r.severity == Severity::Error)
            .filter(|r| !before.iter().any(|(c, i)| *c == r.category && *i == r.item))
            .collect(),
    };
    if !new_errors.is_empty() {
        let names: Vec<String> = new_errors.iter().map(|r| format!("{}: {}", r.category, r.item)).collect();
        problems.push(format!("new error findings since the baseline: {}", names.join(", ")));
    }
    let fields = [
        ("kernel_args_missing", json!(missing)),
        ("kernel_args_pending", json!(pending)),
        ("reboot_pending", json!(!pending.is_empty())),
        ("effects_missing", json!(effects_missing)),
        ("effects_unchecked", json!(unchecked)),
        ("new_errors", serde_json::to_value(&new_errors)?),
        ("errors_total", json!(report.recommendations.iter().filter(|r| r.severity == Severity::Error).count())),
        // The rescan's error findings, as `baseline` takes them: a run before tuning gives the
        // gate after it its baseline without the whole facts (the tune role does that).
        (
            "error_findings",
            serde_json::to_value(
                report.recommendations.iter().filter(|r| r.severity == Severity::Error).collect::<Vec<_>>(),
            )?,
        ),
    ];
    if !problems.is_empty() {
        let mut f = Failure::new(format!("health gate failed: {}", problems.join("; ")));
        for (k, v) in fields {
            f.fields.insert(k.into(), v);
        }
        f.fields.insert("problems".into(), json!(problems));
        return Err(f.into());
    }
    let mut outcome = Outcome::new(false).field("problems", json!(Vec::<String>::new()));
    for (k, v) in fields {
        outcome = outcome.field(k, v);
    }
    // Arguments pending a reboot are the caller's choice (no reboot allowed): reported in
    // `reboot_pending`, not as a warning.
    outcome.warnings = warnings;
    Ok(outcome)
}

const HUGEPAGES: &str = "/sys/kernel/mm/hugepages";
const NODES: &str = "/sys/devices/system/node";

/// An argument as the command line shows it.
fn shown(k: &str, v: &Option<String>) -> String {
    match v {
        Some(v) => format!("{k}={v}"),
        None => k.to_string(),
    }
}

/// The kernel's name for a parameter: `-` and `_` are the same in its names (`parameq`).
fn param(k: &str) -> String {
    k.replace('-', "_")
}

/// Whether a file's absence is the kernel's answer: always on the live host. A tree is a
/// capture, and captures leave files out (the real dumps in tests/fixtures/real have
/// /sys/devices/system/cpu without `isolated` or `possible`): there, only when the capture
/// holds a file the kernel writes beside it whenever it writes this one (`covered`). When not,
/// the effect is listed in `unchecked` instead.
fn absence_is_answer(host: &Host, covered: bool, arg: &str, file: &str, unchecked: &mut Vec<String>) -> bool {
    if host.system().kernel() == Kernel::Running || covered {
        return true;
    }
    unchecked.push(format!("{arg}: the tree has no {file} nor the files beside it, so its capture left it out"));
    false
}

/// A folder of the tree holds an entry whose name starts with `prefix`.
fn holds(host: &Host, folder: &str, prefix: &str) -> bool {
    host.list_or_empty(folder).iter().any(|n| n.starts_with(prefix))
}

/// What the running kernel reports for the arguments of `running` (the configured arguments
/// that are on the running command line; `configured` is all of them, in the order given):
/// one line per argument whose effect is not visible, naming the argument and what the kernel
/// reports; what a tree's capture left out is listed in `unchecked`. Checked, and why only
/// these:
///
/// - `isolcpus=[flags,]cpus` with no flag the kernel knows, or with `domain`: the CPUs in
///   `/sys/devices/system/cpu/isolated` (the complement of the scheduler-domain housekeeping
///   set) equal `cpus`. `nohz`/`managed_irq` alone leave that file alone: nothing to compare;
/// - `nohz_full=cpus`: `/sys/devices/system/cpu/nohz_full` equals `cpus` (`(null)` is none; no
///   file is a kernel built without CONFIG_NO_HZ_FULL);
/// - `hugepagesz=`, `default_hugepagesz=` and `hugepages=` (sizes read as the kernel's memparse
///   reads them, counts per `policy::boot_hugepages`): each size exists as
///   `/sys/kernel/mm/hugepages/hugepages-<kB>kB` (the kernel creates none for a size the CPU
///   lacks), and a pool asked for at boot holds pages (`nr_hugepages` > 0; per node for the
///   `node:count` form). Not == the count: `lltune_memory` may set the pool of the same size
///   at run time, after boot;
/// - `nosoftlockup`, `nowatchdog`, `nmi_watchdog=0`: `kernel.soft_watchdog`,
///   `kernel.watchdog`, `kernel.nmi_watchdog` read 0. A sysctl that turned the detector back
///   on contradicts the argument the config asked for, so it fails too. A kernel without the
///   detector has no file and nothing to turn off: not checked.
///
/// `transparent_hugepage=` is not checked: `lltune_memory` sets THP at run time from the
/// config's memory section, which this gate does not see, and a run-time mode other than the
/// boot one is then what the config asked for. Any other argument: no effect check.
fn effects(
    host: &Host,
    configured: &[(String, Option<String>)],
    running: &[(String, Option<String>)],
    unchecked: &mut Vec<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let last_cpu = read_cpu_list(host, "possible").ok().flatten().and_then(|l| l.iter().last());
    for (k, v) in running {
        let arg = shown(k, v);
        match (param(k).as_str(), v.as_deref()) {
            ("isolcpus", Some(v)) => {
                let (flags, list) = isolcpus_parts(v);
                let known: Vec<&str> =
                    flags.into_iter().filter(|f| ["nohz", "domain", "managed_irq"].contains(f)).collect();
                if known.is_empty() || known.contains(&"domain") {
                    out.extend(cpus_effect(host, &arg, list, last_cpu, "isolated", unchecked));
                }
            }
            ("nohz_full", Some(v)) => out.extend(cpus_effect(host, &arg, v, last_cpu, "nohz_full", unchecked)),
            ("nosoftlockup", None) => out.extend(sysctl_zero(host, &arg, "soft_watchdog")),
            ("nowatchdog", None) => out.extend(sysctl_zero(host, &arg, "watchdog")),
            ("nmi_watchdog", Some("0")) => out.extend(sysctl_zero(host, &arg, "nmi_watchdog")),
            _ => {}
        }
    }
    out.extend(hugepage_effects(host, configured, running, unchecked));
    out
}

/// `isolcpus=`'s flags and CPU list, split as the kernel's `housekeeping_isolcpus_setup`
/// splits them: while the text starts with a letter, a word up to the next comma is a flag.
fn isolcpus_parts(v: &str) -> (Vec<&str>, &str) {
    let mut flags = Vec::new();
    let mut rest = v;
    while rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        let (word, after) = rest.split_once(',').unwrap_or((rest, ""));
        flags.push(word);
        rest = after;
    }
    (flags, rest)
}

/// `/sys/devices/system/cpu/<file>` equals the CPUs of `list` (compared as sets).
fn cpus_effect(
    host: &Host,
    arg: &str,
    list: &str,
    last_cpu: Option<u32>,
    file: &str,
    unchecked: &mut Vec<String>,
) -> Option<String> {
    let path = format!("{CPU}/{file}");
    let want = match crate::cpulist::CpuList::parse_with_last(list, last_cpu) {
        Ok(w) => w,
        Err(e) => return Some(format!("{arg} is on the command line but its CPU list cannot be read: {e}")),
    };
    let none = format!("{arg} is on the command line but the kernel reports no {file} CPUs");
    match host.read_opt(&path) {
        Ok(Some(text)) => match crate::cpulist::CpuList::parse(&text) {
            Ok(got) if got == want => None,
            Ok(got) if got.is_empty() => Some(format!("{none} ({path}: {})", text.trim_matches(['\n', '\0']))),
            Ok(got) => Some(format!("{arg} is on the command line but the kernel reports {file} CPUs {got} ({path})")),
            Err(e) => Some(format!("{arg}: {path} cannot be read as a CPU list: {e}")),
        },
        Ok(None) => {
            // `isolated` is written with `possible`, `online`, `present`; `nohz_full` (with
            // CONFIG_NO_HZ_FULL) with `isolated`.
            let covered = match file {
                "nohz_full" => host.exists(&format!("{CPU}/isolated")),
                _ => ["possible", "online", "present"].iter().any(|f| host.exists(&format!("{CPU}/{f}"))),
            };
            if !absence_is_answer(host, covered, arg, &path, unchecked) {
                return None;
            }
            let why = match file {
                "nohz_full" => "a kernel built without CONFIG_NO_HZ_FULL",
                _ => "a kernel older than the file",
            };
            Some(format!("{none} ({path} is absent: {why})"))
        }
        Err(e) => Some(format!("{arg}: {e}")),
    }
}

/// `/proc/sys/kernel/<name>` reads 0; absent (no such detector in this kernel): no check.
fn sysctl_zero(host: &Host, arg: &str, name: &str) -> Option<String> {
    let path = format!("/proc/sys/kernel/{name}");
    match host.read_opt(&path) {
        Ok(Some(text)) => {
            let value = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
            (value != "0").then(|| {
                format!("{arg} is on the command line but the kernel reports kernel.{name} = {value} ({path})")
            })
        }
        Ok(None) => None,
        Err(e) => Some(format!("{arg}: {e}")),
    }
}

/// The huge page arguments' effects (see `effects`). Checked only when every configured huge
/// page argument is running: the size a `hugepages=` counts in depends on the others.
fn hugepage_effects(
    host: &Host,
    configured: &[(String, Option<String>)],
    running: &[(String, Option<String>)],
    unchecked: &mut Vec<String>,
) -> Vec<String> {
    let is_huge = |k: &str| matches!(param(k).as_str(), "hugepages" | "hugepagesz" | "default_hugepagesz");
    let huge: Vec<&(String, Option<String>)> = configured.iter().filter(|(k, _)| is_huge(k)).collect();
    if huge.is_empty() || !huge.iter().all(|a| running.contains(a)) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut absent: Vec<u64> = Vec::new();
    // The size folder, or why it is not there (once per size).
    // The kernel makes the folder of its default size whenever it makes any.
    let sizes_captured = holds(host, HUGEPAGES, "hugepages-");
    let mut size_exists = |arg: &str, kb: u64, out: &mut Vec<String>, unchecked: &mut Vec<String>| -> bool {
        let dir = format!("{HUGEPAGES}/hugepages-{kb}kB");
        if host.is_dir(&dir) {
            return true;
        }
        if absent.contains(&kb) {
            return false;
        }
        absent.push(kb);
        if absence_is_answer(host, sizes_captured, arg, &dir, unchecked) {
            out.push(format!(
                "{arg} is on the command line but the kernel has no {kb} kB huge pages ({dir} is absent: \
                 the kernel or the CPU does not support that size)"
            ));
        }
        false
    };
    for (k, v) in &huge {
        if param(k) != "hugepages" {
            let arg = shown(k, v);
            match v.as_deref().and_then(crate::policy::memparse_kb).filter(|kb| *kb > 0) {
                Some(kb) => {
                    size_exists(&arg, kb, &mut out, unchecked);
                }
                None => out
                    .push(format!("{arg} is on the command line but is not a size the kernel's memparse reads whole")),
            }
        }
    }
    let boot = match crate::policy::boot_hugepages(huge.iter().map(|(k, v)| (k.as_str(), v.as_deref()))) {
        Ok(b) => b,
        Err(e) => {
            out.push(format!("{}: {}", e.key, e.message));
            return out;
        }
    };
    let counts = huge.iter().filter(|(k, _)| param(k) == "hugepages");
    for (b, (k, v)) in boot.iter().zip(counts) {
        let arg = format!("{} ({} kB pages)", shown(k, v), b.size_kb);
        if b.total == 0 || !size_exists(&arg, b.size_kb, &mut out, unchecked) {
            continue;
        }
        let pool = |base: &str| format!("{base}/hugepages-{}kB/nr_hugepages", b.size_kb);
        // `covered`: the capture holds what the kernel writes beside the pool's file.
        let mut check = |file: String, covered: bool, what: String| match host.attr(&file) {
            Some(n) if n.parse::<u64>().is_ok_and(|n| n > 0) => {}
            Some(n) => {
                out.push(format!("{arg} is on the command line but the kernel reports {what}nr_hugepages {n} ({file})"))
            }
            None if host.exists(&file) => out.push(format!("{arg}: {file} cannot be read")),
            None => {
                if absence_is_answer(host, covered, &arg, &file, unchecked) {
                    out.push(format!(
                        "{arg} is on the command line but the kernel reports no {what}pool ({file} is absent)"
                    ));
                }
            }
        };
        if b.per_node.is_empty() {
            let dir = format!("{HUGEPAGES}/hugepages-{}kB", b.size_kb);
            check(pool(HUGEPAGES), !host.list_or_empty(&dir).is_empty(), String::new());
        } else {
            for (node, n) in &b.per_node {
                if *n > 0 {
                    let base = format!("{NODES}/node{node}/hugepages");
                    // A node's sizes, or no such node where the capture holds others.
                    let covered = holds(host, &base, "hugepages-")
                        || (!host.is_dir(&format!("{NODES}/node{node}")) && holds(host, NODES, "node"));
                    check(pool(&base), covered, format!("node {node} "));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    /// A host tree: the files given (path → contents, `None` for a folder), under a temp dir.
    fn tree(files: &[(&str, Option<&str>)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path.trim_start_matches('/'));
            match text {
                Some(t) => {
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    std::fs::write(p, t).unwrap();
                }
                None => std::fs::create_dir_all(p).unwrap(),
            }
        }
        dir
    }

    /// A 4-CPU host booted with `cmdline`, its kernel reporting the rest of `files`.
    fn host_with(cmdline: &str, files: &[(&str, Option<&str>)]) -> tempfile::TempDir {
        let mut all = vec![
            ("/proc/cmdline", Some(cmdline)),
            ("/sys/devices/system/cpu/possible", Some("0-3\n")),
            ("/sys/devices/system/cpu/online", Some("0-3\n")),
            ("/sys/devices/system/cpu/present", Some("0-3\n")),
        ];
        all.extend_from_slice(files);
        tree(&all)
    }

    /// Runs the gate on a tree: (failed, result fields, msg).
    fn gate(root: &Path, args: Value) -> (bool, serde_json::Map<String, Value>, String) {
        let host = Host::new(root).unwrap();
        assert_eq!(host.system().kernel(), Kernel::Captured);
        let params: Params = serde_json::from_value(args).unwrap();
        match run(&host, &Meta::default(), params) {
            Ok(o) => (false, o.fields.clone(), String::new()),
            Err(e) => {
                let f = e.downcast_ref::<Failure>().expect("a Failure");
                (true, f.fields.clone(), f.msg.clone())
            }
        }
    }

    /// The effect lines for `args` (all on the running command line) on a tree.
    fn effect_lines(root: &Path, args: &[(&str, Option<&str>)]) -> (Vec<String>, Vec<String>) {
        let host = Host::new(root).unwrap();
        let args: Vec<(String, Option<String>)> =
            args.iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect();
        let mut unchecked = Vec::new();
        (effects(&host, &args, &args, &mut unchecked), unchecked)
    }

    const GOOD: &str = "BOOT_IMAGE=/vmlinuz root=/dev/sda1 isolcpus=managed_irq,domain,2-3 nohz_full=2-3 \
                        hugepagesz=1G hugepages=2 nosoftlockup nowatchdog nmi_watchdog=0\n";

    fn good_files() -> Vec<(&'static str, Option<&'static str>)> {
        vec![
            ("/sys/devices/system/cpu/isolated", Some("2-3\n")),
            ("/sys/devices/system/cpu/nohz_full", Some("2,3\n")),
            ("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", Some("0\n")),
            ("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", Some("2\n")),
            ("/proc/sys/kernel/soft_watchdog", Some("0\n")),
            ("/proc/sys/kernel/watchdog", Some("0\n")),
            ("/proc/sys/kernel/nmi_watchdog", Some("0\n")),
        ]
    }

    fn good_args() -> Value {
        json!({"kernel_args": {
            "isolcpus": "managed_irq,domain,2-3", "nohz_full": "2-3", "hugepagesz": "1G", "hugepages": 2,
            "nosoftlockup": "", "nowatchdog": null, "nmi_watchdog": "0"
        }, "require_running": true})
    }

    #[test]
    fn a_host_whose_kernel_shows_every_effect_passes() {
        let dir = host_with(GOOD, &good_files());
        let (failed, fields, msg) = gate(dir.path(), good_args());
        assert!(!failed, "{msg} {fields:?}");
        assert_eq!(fields["effects_missing"], json!([]));
        assert_eq!(fields["problems"], json!([]));
        assert_eq!(fields["kernel_args_pending"], json!([]));
    }

    #[test]
    fn each_effect_missing_fails_the_gate_naming_the_argument_and_what_the_kernel_reports() {
        // (file changed, its new contents or None to remove it, what the message says)
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                "/sys/devices/system/cpu/isolated",
                Some("2\n"),
                "isolcpus=managed_irq,domain,2-3 is on the command line but the kernel reports isolated CPUs 2 \
                 (/sys/devices/system/cpu/isolated)",
            ),
            (
                "/sys/devices/system/cpu/nohz_full",
                Some("(null)\n"),
                "nohz_full=2-3 is on the command line but the kernel reports no nohz_full CPUs \
                 (/sys/devices/system/cpu/nohz_full: (null))",
            ),
            (
                "/sys/devices/system/cpu/nohz_full",
                None,
                "nohz_full=2-3 is on the command line but the kernel reports no nohz_full CPUs \
                 (/sys/devices/system/cpu/nohz_full is absent: a kernel built without CONFIG_NO_HZ_FULL)",
            ),
            (
                "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
                Some("0\n"),
                "hugepages=2 (1048576 kB pages) is on the command line but the kernel reports nr_hugepages 0 \
                 (/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages)",
            ),
            (
                "/sys/kernel/mm/hugepages/hugepages-1048576kB",
                None,
                "hugepagesz=1G is on the command line but the kernel has no 1048576 kB huge pages \
                 (/sys/kernel/mm/hugepages/hugepages-1048576kB is absent: the kernel or the CPU does not support \
                 that size)",
            ),
            (
                "/proc/sys/kernel/soft_watchdog",
                Some("1\n"),
                "nosoftlockup is on the command line but the kernel reports kernel.soft_watchdog = 1 \
                 (/proc/sys/kernel/soft_watchdog)",
            ),
            (
                "/proc/sys/kernel/watchdog",
                Some("1\n"),
                "nowatchdog is on the command line but the kernel reports kernel.watchdog = 1 \
                 (/proc/sys/kernel/watchdog)",
            ),
            (
                "/proc/sys/kernel/nmi_watchdog",
                Some("1\n"),
                "nmi_watchdog=0 is on the command line but the kernel reports kernel.nmi_watchdog = 1 \
                 (/proc/sys/kernel/nmi_watchdog)",
            ),
        ];
        for (file, contents, want) in cases {
            let dir = host_with(GOOD, &good_files());
            let p = dir.path().join(file.trim_start_matches('/'));
            match contents {
                Some(c) => std::fs::write(&p, c).unwrap(),
                None if p.is_dir() => std::fs::remove_dir_all(&p).unwrap(),
                None => std::fs::remove_file(&p).unwrap(),
            }
            let (failed, fields, msg) = gate(dir.path(), good_args());
            assert!(failed, "{file}: {fields:?}");
            assert_eq!(fields["effects_missing"], json!([want]), "{file}");
            assert!(fields["problems"].as_array().unwrap().contains(&json!(want)), "{file}: {fields:?}");
            assert!(msg.contains(want), "{file}: {msg}");
            assert_eq!(fields["kernel_args_missing"], json!([]), "{file}");
        }
    }

    #[test]
    fn isolcpus_is_compared_with_isolated_only_when_it_isolates_from_domains() {
        // The kernel's housekeeping_isolcpus_setup: no flag it knows means `domain`.
        let checked = ["2-3", "domain,2-3", "nohz,domain,2-3", "managed_irq,domain,2-3", "foo,2-3"];
        let unchecked = ["managed_irq,2-3", "nohz,2-3", "nohz,managed_irq,2-3"];
        for isolated in ["\n", "(null)\n", "1\n"] {
            let dir = host_with("", &[("/sys/devices/system/cpu/isolated", Some(isolated))]);
            for v in checked {
                let (lines, _) = effect_lines(dir.path(), &[("isolcpus", Some(v))]);
                assert_eq!(lines.len(), 1, "{v} with isolated {isolated:?}");
                assert!(lines[0].starts_with(&format!("isolcpus={v} is on the command line but the kernel reports ")));
                assert!(lines[0].contains(if isolated == "1\n" { "isolated CPUs 1 " } else { "no isolated CPUs" }));
            }
            for v in unchecked {
                assert_eq!(effect_lines(dir.path(), &[("isolcpus", Some(v))]).0, Vec::<String>::new(), "{v}");
            }
        }
        // Compared as sets, `N` being the last possible CPU.
        let dir = host_with("", &[("/sys/devices/system/cpu/isolated", Some("1,2,3\n"))]);
        for v in ["1-3", "3,1-2", "domain,1-N", "1-3:1"] {
            assert_eq!(effect_lines(dir.path(), &[("isolcpus", Some(v))]).0, Vec::<String>::new(), "{v}");
        }
    }

    #[test]
    fn huge_pages_per_node_and_partly_running_sizes() {
        let node = |n: u32, pages: &'static str| {
            (
                Box::leak(
                    format!("/sys/devices/system/node/node{n}/hugepages/hugepages-1048576kB/nr_hugepages")
                        .into_boxed_str(),
                ) as &str,
                Some(pages),
            )
        };
        let size = ("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", Some("2\n"));
        let args = [("hugepagesz", Some("1G")), ("hugepages", Some("0:2,1:2"))];
        let dir = host_with("", &[size, node(0, "2\n"), node(1, "2\n")]);
        assert_eq!(effect_lines(dir.path(), &args).0, Vec::<String>::new());
        let dir = host_with("", &[size, node(0, "2\n"), node(1, "0\n")]);
        assert_eq!(
            effect_lines(dir.path(), &args).0,
            [
                "hugepages=0:2,1:2 (1048576 kB pages) is on the command line but the kernel reports node 1 nr_hugepages 0 \
              (/sys/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages)"
            ]
        );
        // A node asked for nothing is not looked at.
        let dir = host_with("", &[size, node(0, "2\n")]);
        assert_eq!(
            effect_lines(dir.path(), &[("hugepagesz", Some("1G")), ("hugepages", Some("0:2,1:0"))]).0,
            Vec::<String>::new()
        );
        // A node whose huge page folder the capture has not: not checked, and said so. A node
        // the host has not, where the capture holds others: the kernel's answer.
        let dir = host_with("", &[size, node(0, "2\n"), ("/sys/devices/system/node/node1", None)]);
        let (lines, unchecked) = effect_lines(dir.path(), &args);
        assert_eq!(lines, Vec::<String>::new());
        assert_eq!(
            unchecked,
            ["hugepages=0:2,1:2 (1048576 kB pages): the tree has no \
              /sys/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages nor the files beside it, \
              so its capture left it out"]
        );
        // Once the folder is there, a missing size folder in it is the kernel's answer.
        let dir = host_with(
            "",
            &[
                size,
                node(0, "2\n"),
                ("/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages", Some("0\n")),
            ],
        );
        assert!(effect_lines(dir.path(), &args).0[0].contains("reports no node 1 pool"));
        // No huge page folder captured at all: a warning, no failure.
        let dir = host_with("", &[]);
        let (lines, unchecked) = effect_lines(dir.path(), &args);
        assert_eq!(lines, Vec::<String>::new());
        assert!(
            unchecked[0].starts_with("hugepagesz=1G: the tree has no /sys/kernel/mm/hugepages/hugepages-1048576kB nor"),
            "{unchecked:?}"
        );
        // The default size: 2 MB, or default_hugepagesz's.
        let dir = host_with("", &[("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", Some("0\n"))]);
        assert!(effect_lines(dir.path(), &[("hugepages", Some("4"))]).0[0].starts_with("hugepages=4 (2048 kB pages)"));
        let (lines, _) = effect_lines(dir.path(), &[("default_hugepagesz", Some("1G")), ("hugepages", Some("4"))]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("default_hugepagesz=1G is on the command line but the kernel has no 1048576 kB"));
    }

    #[test]
    fn a_partial_capture_leaves_effects_unchecked_and_an_old_kernel_fails() {
        // As the real dumps of tests/fixtures/real: /sys/devices/system/cpu with the CPUs'
        // folders and `offline` only, no huge page folder. Nothing to compare with: listed.
        let dir = tree(&[
            ("/proc/cmdline", Some("root=/dev/sda1 isolcpus=1 nohz_full=1\n")),
            ("/sys/devices/system/cpu/offline", Some("\n")),
            ("/sys/devices/system/cpu/cpu0", None),
        ]);
        let (failed, fields, msg) = gate(
            dir.path(),
            json!({"kernel_args": {"isolcpus": "1", "nohz_full": "1", "hugepages": 4}, "require_running": true}),
        );
        // On a tree, an argument not on the command line is pending whatever require_running says.
        assert!(!failed, "{msg}");
        assert_eq!(fields["kernel_args_pending"], json!(["hugepages=4"]));
        assert_eq!(fields["effects_missing"], json!([]));
        assert_eq!(
            fields["effects_unchecked"],
            json!([
                "isolcpus=1: the tree has no /sys/devices/system/cpu/isolated nor the files beside it, so its capture left it out",
                "nohz_full=1: the tree has no /sys/devices/system/cpu/nohz_full nor the files beside it, so its capture left it out"
            ])
        );
        // A kernel that writes `possible` but not `isolated` (before Linux 4.x): no isolated CPUs.
        let dir = host_with("", &[]);
        let (lines, unchecked) = effect_lines(dir.path(), &[("isolcpus", Some("1"))]);
        assert_eq!(
            lines,
            ["isolcpus=1 is on the command line but the kernel reports no isolated CPUs \
              (/sys/devices/system/cpu/isolated is absent: a kernel older than the file)"]
        );
        assert_eq!(unchecked, Vec::<String>::new());
    }

    #[test]
    fn watchdog_files_a_kernel_lacks_are_not_checked() {
        let dir = host_with("", &[]);
        let args = [("nosoftlockup", None), ("nowatchdog", None), ("nmi_watchdog", Some("0"))];
        assert_eq!(effect_lines(dir.path(), &args).0, Vec::<String>::new());
        // nmi_watchdog=1 asks for the detector: nothing to check. transparent_hugepage: not
        // checked (the run-time mode is lltune_memory's).
        let dir = host_with(
            "",
            &[
                ("/proc/sys/kernel/nmi_watchdog", Some("0\n")),
                ("/sys/kernel/mm/transparent_hugepage/enabled", Some("[always] madvise never\n")),
            ],
        );
        let args = [("nmi_watchdog", Some("1")), ("transparent_hugepage", Some("never"))];
        assert_eq!(effect_lines(dir.path(), &args).0, Vec::<String>::new());
    }

    #[test]
    fn arguments_pending_a_reboot_have_no_effect_to_check_and_a_partly_running_huge_page_set_neither() {
        // The tree's captured command line has none of the arguments; its kernel shows none
        // of their effects: all pending, the gate passes (a tree cannot boot).
        let files = [
            ("/sys/devices/system/cpu/isolated", Some("\n")),
            ("/sys/devices/system/cpu/nohz_full", Some("(null)\n")),
            ("/proc/sys/kernel/soft_watchdog", Some("1\n")),
            ("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", Some("0\n")),
        ];
        let dir = host_with("BOOT_IMAGE=/vmlinuz root=/dev/sda1\n", &files);
        for require_running in [true, false] {
            let mut args = good_args();
            args["require_running"] = json!(require_running);
            let (failed, fields, msg) = gate(dir.path(), args);
            assert!(!failed, "{msg}");
            assert_eq!(fields["effects_missing"], json!([]));
            assert_eq!(fields["kernel_args_pending"].as_array().unwrap().len(), 7, "{fields:?}");
            assert_eq!(fields["reboot_pending"], true);
        }
        // Running: hugepagesz=1G; pending: hugepages=2. The count would be of 1G pages only
        // once both run: nothing checked for either.
        let dir = host_with("root=/dev/sda1 hugepagesz=1G\n", &files);
        let (failed, fields, msg) =
            gate(dir.path(), json!({"kernel_args": {"hugepagesz": "1G", "hugepages": 2}, "require_running": false}));
        assert!(!failed, "{msg}");
        assert_eq!(fields["kernel_args_pending"], json!(["hugepages=2"]));
        // The same with the running ones on the captured line: checked, and failing.
        let dir = host_with("root=/dev/sda1 hugepagesz=1G hugepages=2 nosoftlockup\n", &files);
        let (failed, fields, _) = gate(
            dir.path(),
            json!({"kernel_args": {"hugepagesz": "1G", "hugepages": 2, "nosoftlockup": "", "nohz_full": "2-3"},
                   "require_running": false}),
        );
        assert!(failed);
        assert_eq!(fields["kernel_args_pending"], json!(["nohz_full=2-3"]));
        let lines = fields["effects_missing"].as_array().unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].as_str().unwrap().starts_with("nosoftlockup is on the command line"));
        assert!(lines[1].as_str().unwrap().contains("no 1048576 kB huge pages"));
    }

    /// Spellings of a size in kB as people write them and the kernel's memparse reads them.
    fn spelling(kb: u64) -> impl Strategy<Value = String> {
        let forms = vec![
            format!("{kb}k"),
            format!("{kb}K"),
            format!("{}", kb * 1024),
            format!("0x{:x}", kb * 1024),
            format!("0X{:X}", kb * 1024),
            format!("0{:o}", kb * 1024),
            format!("{}m", kb >> 10),
            format!("{}M", kb >> 10),
        ];
        let mut forms = forms;
        if kb >= 1 << 20 {
            forms.push(format!("{}g", kb >> 20));
            forms.push(format!("{}G", kb >> 20));
        }
        proptest::sample::select(forms)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Each spelling of 2 MB and 1 GB names the folder of that size: found when there,
        /// and a failure naming the size in kB when the kernel made none.
        #[test]
        fn sizes_are_read_as_memparse_reads_them(
            (kb, s) in prop_oneof![Just(2048u64), Just(1u64 << 20)].prop_flat_map(|kb| (Just(kb), spelling(kb))),
            default in any::<bool>(),
        ) {
            let key = if default { "default_hugepagesz" } else { "hugepagesz" };
            let args = [(key, Some(s.as_str())), ("hugepages", Some("2"))];
            let there = format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB/nr_hugepages");
            let dir = host_with("", &[(there.as_str(), Some("2\n"))]);
            prop_assert_eq!(effect_lines(dir.path(), &args).0, Vec::<String>::new());
            let other = if kb == 2048 { 1u64 << 20 } else { 2048 };
            let there = format!("/sys/kernel/mm/hugepages/hugepages-{other}kB/nr_hugepages");
            let dir = host_with("", &[(there.as_str(), Some("2\n"))]);
            let lines = effect_lines(dir.path(), &args).0;
            prop_assert_eq!(lines.len(), 1);
            prop_assert!(lines[0].starts_with(&format!("{key}={s} is on the command line")), "{:?}", lines);
            let named = format!("no {kb} kB huge pages (/sys/kernel/mm/hugepages/hugepages-{kb}kB is absent");
            prop_assert!(lines[0].contains(&named), "{:?}", lines);
        }
    }
}
