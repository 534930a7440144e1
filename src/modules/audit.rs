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
    // What each module's own planning would refuse on this host is not asked here: that is
    // the changing modules' code, eleven of them, and this binary stays within the 1 MiB a
    // module may weigh (docs/binaries.md). The tune role runs every module in check mode
    // before any of them writes (its plan pass), and `lltune audit` on a host runs the
    // planning in-process (`cli::audit::plan_issues`).
    let mut outcome = Outcome::new(false).field("errors", errors).field("config_warnings", config_warnings);
    for (k, v) in crate::config::to_args::result_fields(&args) {
        outcome = outcome.field(k, v);
    }
    outcome.warnings = warnings;
    outcome.warnings.extend(report.warnings.iter().map(|w| format!("config: {w}")));
    Ok(outcome)
}

/// The audit's failure: every error on one line, and the lists as fields.
fn config_errors<I: std::fmt::Display>(issues: &[I], errors: Value, config_warnings: Value) -> Failure {
    let lines: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
    let mut fields = Map::new();
    fields.insert("errors".into(), errors);
    fields.insert("config_warnings".into(), config_warnings);
    Failure { msg: format!("config has {} error(s): {}", lines.len(), lines.join("; ")), changed: false, fields }
}
