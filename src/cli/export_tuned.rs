//! `lltune export-tuned CONFIG DIR`: the TuneD custom profile equivalent to a config
//! (`config::tuned`), written as `DIR/tuned.conf`, for a shop that must run TuneD and keeps
//! the lltune config as its one source.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

#[derive(Debug, clap::Args)]
pub struct ExportTunedArgs {
    /// The config file (version 1, as gen-config writes it).
    pub config: PathBuf,
    /// The profile folder to write `tuned.conf` into (made if missing); its name is the
    /// profile's name, e.g. /etc/tuned/profiles/lltune-trading.
    pub dir: PathBuf,
    /// A profile to build on (`[main] include=`), e.g. network-latency; its settings apply
    /// first and the config's override them. Default: none (only what the config says).
    #[arg(long)]
    pub include: Option<String>,
}

pub fn run(a: ExportTunedArgs) -> Result<ExitCode> {
    let text = super::read_input(&a.config, "CONFIG")?;
    let doc =
        crate::config::yaml::load(&text).map_err(|e| anyhow::anyhow!("{}: not valid YAML: {e}", a.config.display()))?;
    let (cfg, issues) = crate::config::parse_doc(&doc, &crate::config::yaml11_booleans(&text));
    if !issues.is_empty() {
        let list: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
        bail!("{}: {}", a.config.display(), list.join("; "));
    }
    if let Some(i) = &a.include {
        let names = crate::facts::services::tuned_profile_names(i).map_err(|e| anyhow::anyhow!("--include: {e}"))?;
        if names.len() != 1 {
            bail!(
                "--include: one profile name (TuneD's include takes a list; give the profile that includes the others)"
            );
        }
    }
    let name = a.dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if crate::facts::services::tuned_profile_names(name).map(|n| n.len()) != Ok(1) {
        bail!("DIR {}: its name is the profile's name, and {name:?} is not a TuneD profile name", a.dir.display());
    }
    let out = crate::config::tuned::profile(&cfg, &doc, &a.config.display().to_string(), a.include.as_deref());
    std::fs::create_dir_all(&a.dir).with_context(|| format!("DIR {}: cannot make it", a.dir.display()))?;
    // Written whole or not at all: a temp file beside it, then renamed over.
    let target = a.dir.join("tuned.conf");
    let tmp = a.dir.join(".tuned.conf.lltune-tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(out.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot write", target.display()));
    }
    println!("wrote {} (TuneD profile {name})", target.display());
    Ok(ExitCode::SUCCESS)
}
