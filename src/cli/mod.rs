//! The `lltune` command line. Subcommands call the library; errors are one readable line on
//! standard error and a non-zero exit.

pub mod apply; //      `lltune apply` / `lltune rollback`
pub mod archive; //    `--root X.tar.gz`: a capture unpacked with bounds into a temporary folder that never outlives the run
pub mod audit; //      `lltune audit`
pub mod capture; //    `lltune capture`
pub mod capture_keep; // what a capture keeps of each configuration file: the lines lltune reads
pub mod export_tuned; // `lltune export-tuned`: a config as a TuneD profile
pub mod fleet; //      `lltune report`: the fleet report from many hosts' facts
pub mod gen_config; // `lltune gen-config`
pub mod reapply; //    `lltune reapply`: persisted run-time state again, at boot
pub mod report; //     text summary and markdown report of `lltune scan`
pub mod scan; //       `lltune scan`
pub mod validate; //   `lltune validate`: cyclictest latency, saved and compared

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::facts::ScanOptions;
use crate::host::Host;

/// Low-latency tuning for Linux trading servers.
#[derive(Debug, Parser)]
#[command(name = "lltune", version, about, propagate_version = true)]
pub struct Cli {
    /// Show on standard error what each change did, as the host's syslog gets it (the audit
    /// trail: module, backup id, who ran it, each setting before -> after).
    #[arg(short = 'v', long = "verbose", global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Discover the host's state (the same object as the lltune_facts module).
    Scan(scan::ScanArgs),
    /// Copy exactly the files a scan reads into a .tar.gz, for offline analysis.
    Capture(capture::CaptureArgs),
    /// Apply a config through the modules (sysctl, kernel args, CPU, memory, services, limits, NIC, IRQ); --plan writes nothing.
    Apply(ApplyArgs),
    /// Restore what an apply changed, from its backup bundle.
    Rollback(RollbackArgs),
    /// Re-apply the run-time state saved with `persist: true` (what lltune-restore.service runs at boot).
    Reapply(reapply::ReapplyArgs),
    /// Write a commented config for one machine: its core plan, hugepages, NIC roles.
    GenConfig(gen_config::GenConfigArgs),
    /// Write the TuneD custom profile equivalent to a config (DIR/tuned.conf), for hosts that keep TuneD.
    ExportTuned(export_tuned::ExportTunedArgs),
    /// Check a config (schema, CPU lists, safety) and cross-check it against a host; exit 1 on errors.
    Audit(audit::AuditArgs),
    /// Measure wake-up latency with cyclictest (per CPU: percentiles, histogram); compare two runs.
    Validate(validate::ValidateArgs),
    /// Fleet report from a folder of host facts: fleet.json, fleet.csv, fleet.md, lltune.prom, fleet.html.
    Report(fleet::ReportArgs),
    /// Install this binary as /usr/local/sbin/lltune, the CLI lltune-restore.service runs at boot
    /// (journaled: rollback removes it). The collection's tune role runs it; `apply` does it itself.
    InstallCli(InstallCliArgs),
}

#[derive(Debug, clap::Args)]
pub struct InstallCliArgs {
    /// Backup bundle id of the run this belongs to (under /var/lib/lltune/backups).
    #[arg(long = "backup-id")]
    pub backup_id: String,
    /// Host root: `/` for this host (needs root privileges), or a copied tree.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::trail::install(cli.verbose);
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
        Command::Scan(a) => scan::run(a),
        Command::Capture(a) => capture::run(a),
        Command::Apply(a) => {
            let report = crate::cli::apply::apply(&a.root, &a.config, a.plan, a.backup_id)?;
            print!("{}", report.render_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::GenConfig(a) => gen_config::run(a),
        Command::ExportTuned(a) => export_tuned::run(a),
        Command::Reapply(a) => reapply::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Report(a) => fleet::run(a),
        Command::InstallCli(a) => {
            let installed = crate::cli::apply::install_self(&a.root, &a.backup_id)?;
            let path = crate::engine::persist::CLI_PATH;
            println!(
                "{}",
                if installed { format!("installed {path}") } else { format!("{path}: already this binary") }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Rollback(a) => {
            let report = crate::cli::apply::rollback(&a.root, &a.backup)?;
            print!("{}", report.render_text());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A host from `--root`: a folder, or a capture archive unpacked (with `archive::LIMITS`)
/// into a temporary folder that lives as long as the returned guard.
pub(crate) fn open_root(root: &Path) -> Result<(Host, Option<archive::TempRoot>)> {
    let name = root.to_string_lossy();
    if root.is_file() && (name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
        let tmp = archive::TempRoot::new()?;
        archive::unpack(root, tmp.path(), &archive::LIMITS)?;
        let host = Host::new(tmp.path()).with_context(|| format!("--root {name}"))?;
        return Ok((host, Some(tmp)));
    }
    let host = Host::new(root).map_err(|e| anyhow::anyhow!("--root: {e}"))?;
    Ok((host, None))
}

/// `open_root`, refusing a folder that is not a host tree: one with neither `proc` nor `sys`
/// (an empty folder, a mistyped path) would otherwise scan "ok" with nothing found and pass
/// every audit. The live root `/` always has them.
pub(crate) fn open_host_tree(root: &Path) -> Result<(Host, Option<archive::TempRoot>)> {
    let (host, guard) = open_root(root)?;
    if let Some(problem) = crate::facts::not_a_host_tree(&host) {
        anyhow::bail!("--root {}: {problem}", root.display());
    }
    Ok((host, guard))
}

pub(crate) fn write_output(path: Option<&Path>, text: &str) -> Result<()> {
    match path {
        Some(p) => std::fs::write(p, text).with_context(|| format!("-o {}: cannot write", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            Ok(())
        }
    }
}

/// The most bytes of a config or snapshot file the CLI reads.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Reads a file the user named on the command line (a config, a snapshot): a regular file
/// of at most `MAX_INPUT_BYTES`; a FIFO or device is refused before it can block.
pub fn read_input(path: &Path, option: &str) -> Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("{option} {shown}: cannot read"))?;
    if !f.metadata().with_context(|| format!("{option} {shown}: cannot read"))?.is_file() {
        bail!("{option} {shown}: not a regular file");
    }
    let mut bytes = Vec::new();
    f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes).with_context(|| format!("{option} {shown}: cannot read"))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        bail!("{option} {shown}: larger than {MAX_INPUT_BYTES} bytes");
    }
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{option} {shown}: not UTF-8 text"))
}

/// Facts from a snapshot file, or from a scan of a root.
pub(crate) fn load_facts(snapshot: Option<&Path>, root: &Path) -> Result<(crate::facts::Facts, String)> {
    if let Some(p) = snapshot {
        let text = read_input(p, "--snapshot")?;
        let facts =
            crate::config::generate::read_snapshot(&text).with_context(|| format!("--snapshot {}", p.display()))?;
        return Ok((facts, p.display().to_string()));
    }
    let (host, _guard) = open_host_tree(root)?;
    let (facts, warnings) = crate::facts::collect(&host, ScanOptions::default());
    for w in &warnings {
        eprintln!("lltune: warning: {w}");
    }
    let source = host.system().source(root);
    Ok((facts, source))
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
