//! lltune_audit: checks a config against this host (the same checks as `lltune audit`), and
//! fails with the error list when there is any. Changes nothing. A config that passes comes
//! back as each module's arguments (`module_args`, from `config::to_args`).
//!
//! The config comes as `config`, a mapping (a play's variable, or a file on the controller
//! read with `lookup('file', ...) | from_yaml`). Like every module argument it arrives as
//! JSON, so its types are exact: a playbook's `mitigations: off` (a YAML 1.1 boolean to
//! Ansible) reaches us as `false` and is reported at `kernel.cmdline.mitigations`. There is
//! no `config_file` option (issue 21): reading YAML on the target would put a YAML parser
//! into this binary, and YAML stays in the CLI (`lltune audit -c FILE`).
//!
//! It audits a config; it does not propose one. `lltune_config` proposes the config for a
//! host, and its `config` result is what to pass here (the tune role does that for
//! `lltune_generate: true`). One module proposes, one audits: the audit binary carries no
//! gen-config and no recommendations (docs/binaries.md).

use anyhow::Result;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{self, audit};
use crate::facts::ScanOptions;
use crate::host::Host;
use crate::protocol::{Failure, Meta, Outcome};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The config as a mapping (JSON, as Ansible hands every module its arguments).
    #[serde(default)]
    pub config: Option<Value>,
}

pub fn run(host: &Host, _meta: &Meta, params: Params) -> Result<Outcome> {
    // A mapping comes as JSON: exact types, no YAML text, so no YAML 1.1 words to find and
    // no YAML parser in this binary.
    let doc = match &params.config {
        None => {
            return Err(Failure::new(
                "config is required: the config as a mapping (for the config lltune proposes, run lltune_config and pass its `config`; for a file on the controller, lookup('file', path) | from_yaml)",
            )
            .into());
        }
        Some(v @ Value::Object(_)) => config::yaml_from_json(v),
        Some(other) => {
            return Err(
                Failure::new(format!("config: expected a mapping, got {}", crate::protocol::kind(other))).into()
            );
        }
    };
    if let Some(problem) = crate::facts::not_a_host_tree(host) {
        return Err(crate::protocol::Failure::new(format!("root {}: {problem}", host.root().display())).into());
    }
    let (facts, warnings) = crate::facts::collect(host, ScanOptions::default());
    let report = audit::audit_doc(&doc, &[], Some(&facts));
    let errors = serde_json::to_value(&report.errors)?;
    let config_warnings = serde_json::to_value(&report.warnings)?;
    if !report.ok() {
        return Err(config_errors(&report.errors, errors, config_warnings).into());
    }
    // What `lltune apply` (or a play) would hand each module for this config.
    let mut args = crate::config::to_args::from_doc(&doc, &[]).map_err(|issues| {
        Failure::new(format!("config: {}", issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ")))
    })?;
    crate::config::to_args::fit_to_host(&mut args, &facts, host);
    // What apply would refuse on this host (each module's own planning): errors as well, so
    // that a config this task passes is one the modules carry out.
    let refused = plan_issues(&args, host);
    if !refused.is_empty() {
        return Err(config_errors(&refused, serde_json::to_value(&refused)?, config_warnings).into());
    }
    let mut outcome = Outcome::new(false).field("errors", errors).field("config_warnings", config_warnings);
    for (k, v) in crate::config::to_args::result_fields(&args) {
        outcome = outcome.field(k, v);
    }
    outcome.warnings = warnings;
    outcome.warnings.extend(report.warnings.iter().map(|w| format!("config: {w}")));
    Ok(outcome)
}

/// `audit_text` on a host tree: the config's own checks and the host cross-checks, then, when
/// those pass, what each module's planning would refuse there (`plan_issues`).
pub fn audit_on_host(text: &str, facts: &crate::facts::Facts, host: &Host) -> audit::AuditReport {
    let mut report = audit::audit_text(text, Some(facts));
    if report.ok() {
        if let Ok(mut args) = crate::config::to_args::from_text(text) {
            crate::config::to_args::fit_to_host(&mut args, facts, host);
            report.errors.extend(plan_issues(&args, host));
        }
    }
    report
}

/// The config section each module's arguments come from, for the issues of `plan_issues`.
fn section_of(module: &str) -> &'static str {
    use crate::names as t;
    match module {
        t::SYSCTL => "network.sysctl",
        t::KERNEL_ARGS => "kernel.cmdline",
        t::CPU => "cpu",
        t::MEMORY => "memory",
        t::SERVICES => "services",
        t::LIMITS => "memory.limits",
        t::NIC => "network.interfaces",
        t::IRQ => "irq",
        t::THREADS => "threads",
        t::BYPASS => "onload",
        t::TIMESYNC => "time_sync",
        _ => "",
    }
}

/// What apply would refuse on this host: every module's own planning (`modules::plan_by_name`:
/// reads the host, writes nothing) on the arguments apply would hand it (`args`, fitted to the
/// host), one error per module that refuses, named by its config section. The audit runs
/// these on a host tree so that a config it accepts is one `lltune apply --plan` carries out.
pub fn plan_issues(args: &crate::config::to_args::ModuleArgs, host: &Host) -> Vec<crate::config::Issue> {
    let mut out = Vec::new();
    for (module, module_args) in args.in_order() {
        let mut m = module_args.as_object().cloned().unwrap_or_default();
        if module == crate::names::SYSCTL {
            // As apply runs it: the settings alone.
            m = serde_json::Map::from_iter(m.remove("settings").map(|s| ("settings".to_string(), s)));
        }
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::modules::plan_by_name(module, host, m)));
        let msg = match r {
            Ok(Some(Ok(_))) | Ok(None) => continue,
            Ok(Some(Err(e))) => format!("{e:#}"),
            Err(_) => "its planning failed unexpectedly".to_string(),
        };
        // lltune_bypass names the stack in its option path (`profiles.vma.variables`).
        let stack = ["onload", "vma", "xlio"].into_iter().find(|s| msg.contains(&format!("profiles.{s}")));
        out.push(crate::config::Issue::new(
            stack.unwrap_or(section_of(module)),
            format!("{module} would refuse this on the host: {msg}"),
        ));
    }
    out
}

/// The audit's failure: every error on one line, and the lists as fields.
fn config_errors<I: std::fmt::Display>(issues: &[I], errors: Value, config_warnings: Value) -> Failure {
    let lines: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
    let mut fields = Map::new();
    fields.insert("errors".into(), errors);
    fields.insert("config_warnings".into(), config_warnings);
    Failure { msg: format!("config has {} error(s): {}", lines.len(), lines.join("; ")), changed: false, fields }
}
