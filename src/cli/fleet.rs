//! `lltune report --facts DIR --out DIR`: the fleet report (`crate::fleet`) from a folder of
//! host facts: fleet.json, fleet.csv, fleet.md, lltune.prom and fleet.html, each replaced atomically.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Folder of host facts: one file per host (`lltune scan --format json` output, a
    /// registered lltune_facts result, or Ansible's jsonfile fact cache).
    #[arg(long = "facts", value_name = "DIR")]
    pub facts: PathBuf,
    /// Folder to write fleet.json, fleet.csv, fleet.md, lltune.prom and fleet.html into (made when missing).
    #[arg(long = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Show what would change; write nothing.
    #[arg(long)]
    pub check: bool,
}

pub fn run(a: ReportArgs) -> Result<ExitCode> {
    crate::fleet::check_dirs(&a.facts, &a.out).map_err(|e| anyhow::anyhow!("--out {e:#}"))?;
    let inputs = crate::fleet::load_dir(&a.facts).map_err(|e| anyhow::anyhow!("--facts {e:#}"))?;
    let fleet = crate::fleet::build(&inputs);
    let outputs = crate::fleet::render_all(&fleet);
    let res = crate::fleet::write_outputs(&a.out, &outputs, a.check).map_err(|e| anyhow::anyhow!("--out {e:#}"))?;
    let s = &fleet.summary;
    println!(
        "{} hosts: {} errors, {} warnings, {} info; {} reboot pending; {} with boot drift; score min {} mean {} max {}",
        s.hosts,
        s.findings.error,
        s.findings.warning,
        s.findings.info,
        s.reboot_pending,
        s.drifted,
        s.score_min,
        s.score_mean,
        s.score_max
    );
    let verb = if a.check { "would write" } else { "wrote" };
    if res.changed.is_empty() {
        println!("{}: up to date", a.out.display());
    } else {
        println!("{verb} {} in {}", res.changed.join(", "), a.out.display());
    }
    Ok(ExitCode::SUCCESS)
}
