//! `lltune audit`: a config checked alone and against a host or snapshot; exit 1 on errors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{load_facts, open_host_tree, read_input};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The config file to check.
    #[arg(short = 'c', long = "config")]
    pub config: PathBuf,
    /// Cross-check against this snapshot (`lltune scan -o`, JSON or YAML).
    #[arg(long, conflicts_with = "root")]
    pub snapshot: Option<PathBuf>,
    /// Cross-check against this host root (default: this host, `/`).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Write `{errors: [{field, message}], warnings: [...]}` as JSON to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

pub fn run(a: AuditArgs) -> Result<ExitCode> {
    let text = read_input(&a.config, "-c")?;
    let root = a.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let report = match &a.snapshot {
        // A snapshot is facts only: no host files to plan the modules on.
        Some(_) => {
            let (facts, _) = load_facts(a.snapshot.as_deref(), &root)?;
            let mut r = crate::config::audit::audit_text(&text, Some(&facts));
            r.warnings.push(crate::config::Issue::new(
                "",
                "audited against a snapshot: what each module would refuse on the host itself is checked only with --root (a host tree) or on the host",
            ));
            r
        }
        // A host tree: the modules' own planning too, so that what passes here `lltune apply` can do.
        None => {
            let (host, _guard) = open_host_tree(&root)?;
            let (facts, warnings) = crate::facts::collect(&host, crate::facts::ScanOptions::default());
            for w in &warnings {
                eprintln!("lltune: warning: {w}");
            }
            crate::modules::audit::audit_on_host(&text, &facts, &host)
        }
    };
    if let Some(p) = &a.output {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("--output {}: cannot write", p.display()))?;
    }
    print!("{}", report.render_text());
    Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
