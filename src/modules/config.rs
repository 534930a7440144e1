//! lltune_config: the config `lltune gen-config` would write for this host, as data (`config`)
//! and as commented YAML (`yaml`), with the core plan behind it (`plan`) and each module's
//! arguments for it (`module_args`, from `config::to_args`). Changes nothing: a
//! play writes `yaml` where it wants (ansible.builtin.copy), so check mode runs the same path.

use anyhow::Result;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::analysis::plan;
use crate::config::generate::{self as gen_config, GenOptions};
use crate::facts::ScanOptions;
use crate::host::Host;
use crate::protocol::{Failure, Meta, Outcome};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Whole cores kept for housekeeping on every NUMA node (at least 1).
    #[serde(default = "one", deserialize_with = "lenient_u32")]
    pub housekeeping_cores_per_node: u32,
    /// NICs that carry trading traffic: a list, or a comma-separated string; empty = by driver.
    #[serde(default, deserialize_with = "name_list")]
    pub trading_nics: Vec<String>,
}

fn one() -> u32 {
    1
}

/// A count given as a number or as the string templating often turns it into (`"2"`).
fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u32, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number, got {n}"))),
        Value::String(s) => {
            s.trim().parse().map_err(|_| serde::de::Error::custom(format!("expected a whole number, got {s:?}")))
        }
        other => Err(serde::de::Error::custom(format!("expected a whole number, got {other}"))),
    }
}

/// Names as a list, or as one comma-separated string.
fn name_list<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()),
        Value::Array(a) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(serde::de::Error::custom(format!("expected interface names, got {other}"))),
            })
            .collect(),
        other => Err(serde::de::Error::custom(format!("expected a list of interface names, got {other}"))),
    }
}

/// A config proposed for one host, as data and as the commented YAML gen-config writes.
pub struct Generated {
    /// The config as data, built beside its text (`generate::generate_with_value`).
    pub config: Value,
    pub yaml: String,
    pub plan: Value,
    pub warnings: Vec<String>,
    pub facts: crate::facts::Facts,
}

/// The config `lltune gen-config` would write for this host.
pub fn generate(host: &Host, params: Params) -> Result<Generated> {
    if params.housekeeping_cores_per_node == 0 {
        return Err(
            Failure::new("housekeeping_cores_per_node: must be at least 1 (every NUMA node keeps a core)").into()
        );
    }
    if let Some(problem) = crate::facts::not_a_host_tree(host) {
        return Err(crate::protocol::Failure::new(format!("root {}: {problem}", host.root().display())).into());
    }
    let (facts, warnings) = crate::facts::collect(host, ScanOptions::default());
    for t in &params.trading_nics {
        if !facts.nics.iter().any(|n| n.name.as_deref() == Some(t.as_str())) {
            return Err(Failure::new(format!("trading_nics: no network interface {t} on this host")).into());
        }
    }
    let plan_options = plan::PlanOptions {
        housekeeping_cores_per_node: params.housekeeping_cores_per_node,
        trading_nics: params.trading_nics,
    };
    let core_plan = plan::core_plan(&facts, &plan_options);
    let source = host.system().source(host.root());
    // The config as data, built with its text: never read back from the YAML (no YAML
    // parser in this binary). A test holds the two to each other on every real dump.
    let (text, data) = gen_config::generate_with_value(
        &facts,
        &GenOptions { plan: plan_options, source, generated_at: crate::backup_id::now_utc() },
    );
    let plan = json!({
        "housekeeping": core_plan.housekeeping,
        "isolated": core_plan.isolated,
        "trading_cpus": core_plan.trading_cpus,
        "trading_nodes": core_plan.trading_nodes,
        "management_node": core_plan.management_node,
        "notes": core_plan.notes,
    });
    Ok(Generated { config: data, yaml: text, plan, warnings, facts })
}

pub fn run(host: &Host, _meta: &Meta, params: Params) -> Result<Outcome> {
    let g = generate(host, params)?;
    // JSON's types are exact: no YAML 1.1 words to look for.
    let doc = crate::config::yaml_from_json(&g.config);
    let mut args = crate::config::to_args::from_doc(&doc, &[])
        .map_err(|e| anyhow::anyhow!("generated config does not read back: {}", e[0]))?;
    crate::config::to_args::fit_to_host(&mut args, &g.facts, host);
    let mut outcome = Outcome::new(false).field("config", g.config).field("yaml", g.yaml).field("plan", g.plan);
    for (k, v) in crate::config::to_args::result_fields(&args) {
        outcome = outcome.field(k, v);
    }
    outcome.warnings = g.warnings;
    Ok(outcome)
}
