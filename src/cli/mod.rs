//! The `lltune` command line. Subcommands call the library; errors are one readable line on
//! standard error and a non-zero exit.

pub mod apply; //   `lltune apply` / `lltune rollback`
pub mod capture; // `lltune capture`
pub mod report; //  text summary and markdown report of `lltune scan`

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::facts::ScanOptions;
use crate::host::Host;

/// Low-latency tuning for Linux trading servers.
#[derive(Debug, Parser)]
#[command(name = "lltune", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Discover the host's state (the same object as the lltune_facts module).
    Scan(ScanArgs),
    /// Copy exactly the files a scan reads into a .tar.gz, for offline analysis.
    Capture(CaptureArgs),
    /// Apply a config's kernel arguments and sysctls (with --plan: show the diff, write nothing).
    Apply(ApplyArgs),
    /// Restore what an apply changed, from its backup bundle.
    Rollback(RollbackArgs),
    /// Write a commented config for one machine: its core plan, hugepages, NIC roles.
    GenConfig(GenConfigArgs),
    /// Check a config (schema, CPU lists, safety) and cross-check it against a host; exit 1 on errors.
    Audit(AuditArgs),
}

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

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The config file (version 1, as gen-config writes it).
    #[arg(short = 'c', long = "config")]
    pub config: PathBuf,
    /// Show what would change and write nothing, not even a backup.
    #[arg(long)]
    pub plan: bool,
    /// Host root to change: `/` for this host (needs root privileges), or a copied tree.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Backup bundle id under /var/lib/lltune/backups (default: a timestamp id).
    #[arg(long = "backup-id")]
    pub backup_id: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The backup bundle: its path (/var/lib/lltune/backups/<id>) or its id.
    #[arg(long)]
    pub backup: String,
    /// Host root to restore: `/` for this host (needs root privileges), or a copied tree.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
}

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

#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Host root to capture (`/` for this host).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// The .tar.gz to write.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lltune: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Scan(a) => scan(a),
        Command::Capture(a) => capture(a),
        Command::Apply(a) => {
            let report = crate::cli::apply::apply(&a.root, &a.config, a.plan, a.backup_id)?;
            print!("{}", report.render_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::GenConfig(a) => gen_config(a),
        Command::Audit(a) => audit(a),
        Command::Rollback(a) => {
            let report = crate::cli::apply::rollback(&a.root, &a.backup)?;
            print!("{}", report.render_text());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A host from `--root`: a folder, or a capture archive unpacked into a temporary folder
/// that lives as long as the returned guard.
fn open_root(root: &Path) -> Result<(Host, Option<TempDir>)> {
    let name = root.to_string_lossy();
    if root.is_file() && (name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
        let tmp = TempDir::new()?;
        crate::cli::capture::unpack(root, &tmp.0)?;
        let host = Host::new(&tmp.0).with_context(|| format!("--root {name}"))?;
        return Ok((host, Some(tmp)));
    }
    let host = Host::new(root).map_err(|e| anyhow::anyhow!("--root: {e}"))?;
    Ok((host, None))
}

/// A temporary folder removed on drop (the CLI's only one; not worth a dependency).
pub struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let base = std::env::temp_dir();
        for i in 0..100u32 {
            let p = base.join(format!("lltune-{}-{i}", std::process::id()));
            if std::fs::create_dir(&p).is_ok() {
                return Ok(TempDir(p));
            }
        }
        bail!("cannot create a temporary folder in {}", base.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_output(path: Option<&Path>, text: &str) -> Result<()> {
    match path {
        Some(p) => std::fs::write(p, text).with_context(|| format!("-o {}: cannot write", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            Ok(())
        }
    }
}

fn scan(a: ScanArgs) -> Result<ExitCode> {
    let (host, _guard) = open_root(&a.root)?;
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

/// Facts from a snapshot file, or from a scan of a root.
fn load_facts(snapshot: Option<&Path>, root: &Path) -> Result<(crate::facts::Facts, String)> {
    if let Some(p) = snapshot {
        let text = std::fs::read_to_string(p).with_context(|| format!("--snapshot {}: cannot read", p.display()))?;
        let facts =
            crate::config::generate::read_snapshot(&text).with_context(|| format!("--snapshot {}", p.display()))?;
        return Ok((facts, p.display().to_string()));
    }
    let (host, _guard) = open_root(root)?;
    let (facts, warnings) = crate::facts::collect(&host, ScanOptions::default());
    for w in &warnings {
        eprintln!("lltune: warning: {w}");
    }
    Ok((facts, if root == Path::new("/") { "live".into() } else { root.display().to_string() }))
}

fn gen_config(a: GenConfigArgs) -> Result<ExitCode> {
    let (facts, source) = load_facts(a.snapshot.as_deref(), &a.root)?;
    let opts = crate::config::generate::GenOptions {
        plan: crate::analysis::plan::PlanOptions {
            housekeeping_cores_per_node: a.housekeeping_cores_per_node,
            trading_nics: a.trading_nics,
        },
        source,
        generated_at: crate::config::generate::now_utc(),
    };
    for t in &opts.plan.trading_nics {
        if !facts.nics.iter().any(|n| n.name.as_deref() == Some(t.as_str())) {
            bail!("--trading-nics: no network interface {t} on this host");
        }
    }
    write_output(a.output.as_deref(), &crate::config::generate::generate(&facts, &opts))?;
    Ok(ExitCode::SUCCESS)
}

fn audit(a: AuditArgs) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&a.config).with_context(|| format!("-c {}: cannot read", a.config.display()))?;
    let root = a.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let (facts, _) = load_facts(a.snapshot.as_deref(), &root)?;
    let report = crate::config::audit::audit_text(&text, Some(&facts));
    if let Some(p) = &a.output {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("--output {}: cannot write", p.display()))?;
    }
    print!("{}", report.render_text());
    Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn capture(a: CaptureArgs) -> Result<ExitCode> {
    let s = crate::cli::capture::capture(&a.root, &a.output)?;
    eprintln!(
        "lltune: captured {} files, {} links, {} folders ({} bytes) into {}",
        s.files,
        s.links,
        s.dirs,
        s.bytes,
        a.output.display()
    );
    for p in &s.skipped {
        eprintln!("lltune: warning: left out {p}: may hold secrets");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
