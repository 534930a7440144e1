//! lltune_audit: checks a config against this host (the same checks as `lltune audit`), and
//! fails with the error list when there is any. Changes nothing. A config that passes comes
//! back as each module's arguments (`module_args`, from `config::to_args`).
//!
//! The config comes as `config` (a mapping, e.g. a play's variable) or `config_file` (a path
//! on the target, read under `root`). A mapping arrives as JSON, so its types are exact: a
//! playbook's `mitigations: off` (a YAML 1.1 boolean to Ansible) reaches us as `false` and is
//! reported at `kernel.cmdline.mitigations`.
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
    /// The config as a mapping.
    #[serde(default)]
    pub config: Option<Value>,
    /// A config file on the target (a path under `root`).
    #[serde(default)]
    pub config_file: Option<String>,
}

pub fn run(host: &Host, _meta: &Meta, params: Params) -> Result<Outcome> {
    // A mapping comes as JSON (exact types: no YAML text, so no YAML 1.1 words to find); a
    // file is YAML text, parsed once.
    let (doc, text) = match (&params.config, &params.config_file) {
        (Some(_), Some(_)) => return Err(Failure::new("config, config_file: give one of them, not both").into()),
        (None, None) => return Err(Failure::new(
            "config or config_file is required (for the config lltune proposes, run lltune_config and pass its `config`)",
        )
        .into()),
        (Some(v @ Value::Object(_)), None) => (Ok(config::yaml_from_json(v)), None),
        (Some(other), None) => {
            return Err(
                Failure::new(format!("config: expected a mapping, got {}", crate::protocol::kind(other))).into()
            );
        }
        (None, Some(path)) => {
            // As `lltune audit` reads it: a config that is not UTF-8 is refused, never read
            // through a lossy conversion (a value would become another one).
            let bytes = host.read_bytes(path).map_err(|e| Failure::new(format!("config_file: {e}")))?;
            let text = String::from_utf8(bytes).map_err(|e| {
                let at = e.utf8_error().valid_up_to();
                let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
                Failure::new(format!("config_file {}: not UTF-8 text (line {line})", crate::protocol::cap_text(path)))
            })?;
            (config::yaml::load(&text), Some(text))
        }
    };
    if let Some(problem) = crate::facts::not_a_host_tree(host) {
        return Err(crate::protocol::Failure::new(format!("root {}: {problem}", host.root().display())).into());
    }
    let (facts, warnings) = crate::facts::collect(host, ScanOptions::default());
    let report = match &doc {
        Ok(doc) => audit::audit_doc(doc, text.as_deref(), Some(&facts)),
        Err(_) => audit::audit_text(text.as_deref().unwrap_or_default(), Some(&facts)),
    };
    let errors = serde_json::to_value(&report.errors)?;
    let config_warnings = serde_json::to_value(&report.warnings)?;
    if !report.ok() {
        let lines: Vec<String> = report.errors.iter().map(|i| i.to_string()).collect();
        let mut fields = Map::new();
        fields.insert("errors".into(), errors);
        fields.insert("config_warnings".into(), config_warnings);
        return Err(Failure {
            msg: format!("config has {} error(s): {}", lines.len(), lines.join("; ")),
            changed: false,
            fields,
        }
        .into());
    }
    // What `lltune apply` (or a play) would hand each module for this config.
    // (A config that does not parse has errors, reported above.)
    let doc = doc.map_err(|e| Failure::new(format!("config: not valid YAML: {e}")))?;
    let mut args = crate::config::to_args::from_doc(&doc, text.as_deref()).map_err(|issues| {
        Failure::new(format!("config: {}", issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ")))
    })?;
    crate::config::to_args::fit_to_host(&mut args, &facts, host);
    // What apply would refuse on this host (each module's own planning): errors as well, so
    // that a config this task passes is one the modules carry out.
    let refused = audit::plan_issues(&args, host);
    if !refused.is_empty() {
        let lines: Vec<String> = refused.iter().map(|i| i.to_string()).collect();
        let mut fields = Map::new();
        fields.insert("errors".into(), serde_json::to_value(&refused)?);
        fields.insert("config_warnings".into(), config_warnings);
        return Err(Failure {
            msg: format!("config has {} error(s): {}", lines.len(), lines.join("; ")),
            changed: false,
            fields,
        }
        .into());
    }
    let mut outcome = Outcome::new(false).field("errors", errors).field("config_warnings", config_warnings);
    for (k, v) in crate::config::to_args::result_fields(&args) {
        outcome = outcome.field(k, v);
    }
    outcome.warnings = warnings;
    outcome.warnings.extend(report.warnings.iter().map(|w| format!("config: {w}")));
    Ok(outcome)
}
