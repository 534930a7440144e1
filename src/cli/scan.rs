//! `lltune scan`: the host's facts and recommendations, as text, JSON or YAML.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::ValueEnum;

use super::{open_host_tree, write_output};
use crate::facts::ScanOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Host root to read: `/` for this host, or a captured tree (a folder, or a .tar.gz
    /// written by `lltune capture`).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the output to this file instead of standard output.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Include per-IRQ detail (`irqs.list`).
    #[arg(long)]
    pub detail: bool,
    /// Also write the markdown report (system summary, services, recommendations) to FILE.
    #[arg(long = "md-report", value_name = "FILE")]
    pub md_report: Option<PathBuf>,
}

pub fn run(a: ScanArgs) -> Result<ExitCode> {
    let (host, _guard) = open_host_tree(&a.root)?;
    let (report, warnings) = crate::analysis::analyse(&host, ScanOptions { detail: a.detail });
    for w in &warnings {
        eprintln!("lltune: warning: {w}");
    }
    let text = match a.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Yaml => serde_yaml::to_string(&report)?,
        Format::Text => crate::cli::report::render_text(&report),
    };
    write_output(a.output.as_deref(), &text)?;
    if let Some(p) = &a.md_report {
        std::fs::write(p, crate::cli::report::render_markdown(&report))
            .with_context(|| format!("--md-report {}: cannot write", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
