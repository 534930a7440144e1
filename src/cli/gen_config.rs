//! `lltune gen-config`: a commented config for one machine, from a scan or a snapshot.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use super::{load_facts, write_output};

#[derive(Debug, clap::Args)]
pub struct GenConfigArgs {
    /// Facts to plan from: a snapshot written by `lltune scan --format json|yaml -o FILE`.
    #[arg(long, conflicts_with = "root")]
    pub snapshot: Option<PathBuf>,
    /// Host root to scan when no snapshot is given (`/`, a captured tree or .tar.gz).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// The config file to write (default: standard output).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Whole cores kept for housekeeping on every NUMA node.
    #[arg(long = "housekeeping-cores-per-node", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub housekeeping_cores_per_node: u32,
    /// NICs that carry trading traffic (comma-separated); default: by driver.
    #[arg(long = "trading-nics", value_delimiter = ',')]
    pub trading_nics: Vec<String>,
}

pub fn run(a: GenConfigArgs) -> Result<ExitCode> {
    let (facts, source) = load_facts(a.snapshot.as_deref(), &a.root)?;
    let opts = crate::config::generate::GenOptions {
        plan: crate::analysis::plan::PlanOptions {
            housekeeping_cores_per_node: a.housekeeping_cores_per_node,
            trading_nics: a.trading_nics,
        },
        source,
        generated_at: crate::backup_id::now_utc(),
    };
    for t in &opts.plan.trading_nics {
        if !facts.nics.iter().any(|n| n.name.as_deref() == Some(t.as_str())) {
            bail!("--trading-nics: no network interface {t} on this host");
        }
    }
    write_output(a.output.as_deref(), &crate::config::generate::generate(&facts, &opts))?;
    Ok(ExitCode::SUCCESS)
}
