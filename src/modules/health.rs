//! lltune_health: the gate a rollout passes after tuning (and after the reboot it may need).
//! It rescans the host and fails when the host is not in the state the config asked for:
//!
//! - a configured kernel argument is not on the running command line (`/proc/cmdline`). When
//!   the host has not been rebooted since the boot configuration changed, that is expected:
//!   with `require_running: false` such arguments are reported as `kernel_args_pending` and
//!   the gate passes; with `true` (a reboot was allowed) they fail it;
//! - an error finding appears that the scan before tuning (`baseline`) did not have.
//!
//! Changes nothing, so check mode runs the same checks. A failed gate is a failed task, which
//! is what stops a `serial` rollout through `max_fail_percentage`.

use anyhow::Result;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::analysis::{Recommendation, Severity};
use crate::facts::ScanOptions;
use crate::host::Host;
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
    let (report, warnings) = crate::analysis::analyse(host, ScanOptions::default());
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    let mut pending = Vec::new();
    // A tree cannot boot: there, an argument waits for a reboot that never comes.
    let require_running = params.require_running && host.is_live();
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
        ("new_errors", serde_json::to_value(&new_errors)?),
        ("errors_total", json!(report.recommendations.iter().filter(|r| r.severity == Severity::Error).count())),
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
