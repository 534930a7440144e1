//! lltune_facts: discovery of the host as `ansible_facts.lltune`. Changes nothing, so check
//! mode runs the same scan.

use anyhow::Result;
use serde::Deserialize;

use crate::facts::ScanOptions;
use crate::host::Host;
use crate::protocol::{Meta, Outcome, lenient_bool};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Include per-IRQ detail (`irqs.list`).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub detail: bool,
}

pub fn run(host: &Host, _meta: &Meta, params: Params) -> Result<Outcome> {
    if let Some(problem) = crate::facts::not_a_host_tree(host) {
        return Err(crate::protocol::Failure::new(format!("root {}: {problem}", host.root().display())).into());
    }
    // Discovery and the analysis of it: `recommendations` come with the facts.
    let (report, warnings) = crate::analysis::analyse(host, ScanOptions { detail: params.detail });
    // Written straight to the output as JSON text when the result is printed: a detail scan's
    // facts as a tree of values peaked at 17 MB on a 256-CPU, 4,000-IRQ tree, and as a copy of
    // their text at tens of MB on 512 CPUs whose IRQs have counts on every CPU.
    let facts = std::collections::BTreeMap::from([("lltune", report)]);
    let mut outcome = Outcome::new(false).serialized("ansible_facts", facts);
    outcome.warnings = warnings;
    Ok(outcome)
}
