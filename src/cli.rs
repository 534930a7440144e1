//! The `lltune` command line. Subcommands call the library; errors are one readable line on
//! standard error and a non-zero exit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::facts::{self, Facts, ScanOptions};
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
    }
}

/// A host from `--root`: a folder, or a capture archive unpacked into a temporary folder
/// that lives as long as the returned guard.
fn open_root(root: &Path) -> Result<(Host, Option<TempDir>)> {
    let name = root.to_string_lossy();
    if root.is_file() && (name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
        let tmp = TempDir::new()?;
        crate::capture::unpack(root, &tmp.0)?;
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
    let (facts, warnings) = facts::collect(&host, ScanOptions { detail: a.detail });
    for w in &warnings {
        eprintln!("lltune: warning: {w}");
    }
    let text = match a.format {
        Format::Json => serde_json::to_string_pretty(&facts)? + "\n",
        Format::Yaml => serde_yaml::to_string(&facts)?,
        Format::Text => render_text(&facts),
    };
    write_output(a.output.as_deref(), &text)?;
    Ok(ExitCode::SUCCESS)
}

fn capture(a: CaptureArgs) -> Result<ExitCode> {
    let s = crate::capture::capture(&a.root, &a.output)?;
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

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(|x| x.to_string()).unwrap_or_else(|| "?".into())
}

fn or_none(s: String) -> String {
    if s.is_empty() { "none".into() } else { s }
}

/// A one-screen summary for a person.
pub fn render_text(f: &Facts) -> String {
    let mut o = String::new();
    let h = &f.host;
    let c = &f.cpu;
    o += &format!("host      {} — {} — kernel {} — {}\n", opt(&h.hostname), opt(&h.os_pretty_name), opt(&h.kernel_release), opt(&h.architecture));
    o += &format!("cpu       {} ({})\n", opt(&c.model_name), opt(&c.vendor));
    o += &format!(
        "topology  {} sockets × {} cores × {} threads; online {} ({} CPUs); SMT {}\n",
        opt(&c.sockets),
        opt(&c.cores_per_socket),
        opt(&c.threads_per_core),
        c.online,
        c.count,
        c.smt_control.clone().unwrap_or_else(|| "?".into())
    );
    o += &format!("isolated  {}; nohz_full {}\n", or_none(c.isolated.to_string()), or_none(c.nohz_full.to_string()));
    let govs: Vec<String> = c.governors.iter().map(|(g, l)| format!("{g} ({l})")).collect();
    o += &format!("cpufreq   driver {}; governors {}; turbo {}\n", opt(&c.scaling_driver), or_none(govs.join(", ")), opt(&c.turbo));
    let states: Vec<String> = c.cpuidle.states.iter().map(|s| format!("{}{}", opt(&s.name), if s.disabled_cpus.is_empty() { "" } else { "(disabled on some)" })).collect();
    o += &format!("cpuidle   driver {}; states {}\n", opt(&c.cpuidle.driver), or_none(states.join(" ")));
    for n in &f.numa.nodes {
        let hp: Vec<String> = n.hugepages.iter().map(|(s, h)| format!("{}×{}kB", opt(&h.total), s)).collect();
        o += &format!("numa {:<4} cpus {}; memory {} kB; hugepages {}\n", n.id, or_none(n.cpus.to_string()), opt(&n.memory_kb), or_none(hp.join(", ")));
    }
    o += &format!("memory    THP {} (defrag {}); swap {} kB\n", opt(&f.memory.thp.enabled), opt(&f.memory.thp.defrag), opt(&f.memory.swap_total_kb));
    o += &format!("cmdline   {}\n", f.kernel.cmdline.as_deref().unwrap_or("?"));
    o += &format!("boot      {}\n", f.kernel.bootloader.layout);
    o += &format!("nics      {}\n", f.nics.len());
    o
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
