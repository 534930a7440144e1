//! `lltune validate`: measure wake-up latency with cyclictest on the isolated and the
//! housekeeping CPUs (`crate::latency`), save the result, and compare two saved results
//! (before and after a tuning) as a markdown table with an SVG plot of both histograms.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::{open_root, read_input, write_output};
use crate::latency::{self, CpuSelection, LatencyDoc, Request, Settings, report};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Host root: `/` measures this host (needs root privileges). Any other root is only
    /// checked (CPU list, options): cyclictest measures the running kernel.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// CPUs to measure: all, isolated, housekeeping, or a CPU list (0-3,8).
    #[arg(long, default_value = "all")]
    pub cpus: String,
    /// Seconds to measure (at most 3600).
    #[arg(long, default_value_t = latency::DEFAULT_DURATION_S)]
    pub duration: u64,
    /// Microseconds between wake-ups of each measurement thread.
    #[arg(long, default_value_t = latency::DEFAULT_INTERVAL_US)]
    pub interval: u64,
    /// SCHED_FIFO priority of the measurement threads (1-99).
    #[arg(long, default_value_t = latency::DEFAULT_PRIORITY)]
    pub priority: u32,
    /// Histogram length in µs; later wake-ups are counted as overflows.
    #[arg(long = "histogram-us", default_value_t = latency::DEFAULT_HISTOGRAM_US)]
    pub histogram_us: u64,
    /// Path of cyclictest (default: found on PATH).
    #[arg(long)]
    pub cyclictest: Option<String>,
    /// Write the result (JSON, docs/latency.md) to FILE.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Compare two saved results (or saved lltune_latency module results) instead of measuring.
    #[arg(long, num_args = 2, value_names = ["BEFORE", "AFTER"], conflicts_with = "save")]
    pub compare: Option<Vec<PathBuf>>,
    /// Write the markdown report to FILE instead of standard output; the SVG goes beside it.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the SVG plot of the histograms to FILE (default with --report: FILE.svg beside it).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// Where the SVG goes and how the markdown links to it.
fn svg_target(report: Option<&Path>, svg: Option<&Path>) -> Option<(PathBuf, String)> {
    let path = match (svg, report) {
        (Some(s), _) => s.to_path_buf(),
        (None, Some(r)) => r.with_extension("svg"),
        (None, None) => return None,
    };
    // Beside the report: a relative link, so the pair can be moved together.
    let same_dir = report.map(|r| r.parent().unwrap_or(Path::new("")) == path.parent().unwrap_or(Path::new("")));
    let link = match (same_dir, path.file_name()) {
        (Some(true), Some(name)) => name.to_string_lossy().into_owned(),
        _ => path.display().to_string(),
    };
    Some((path, link))
}

fn read_doc(path: &Path, what: &str) -> Result<LatencyDoc> {
    let text = read_input(path, what)?;
    LatencyDoc::read(&text, &format!("{what} {}", path.display()))
}

fn write_file(path: &Path, option: &str, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("{option} {}: cannot write", path.display()))
}

pub fn run(a: ValidateArgs) -> Result<ExitCode> {
    let svg = svg_target(a.report.as_deref(), a.svg.as_deref());
    if let Some(files) = &a.compare {
        let before = read_doc(&files[0], "--compare")?;
        let after = read_doc(&files[1], "--compare")?;
        if let Some((path, _)) = &svg {
            write_file(path, "--svg", &report::histogram_svg(&[("before", &before), ("after", &after)]))?;
        }
        let md = report::compare_markdown(&before, &after, svg.as_ref().map(|s| s.1.as_str()));
        write_output(a.report.as_deref(), &md)?;
        return Ok(ExitCode::SUCCESS);
    }
    let settings = Settings {
        duration_s: a.duration,
        interval_us: a.interval,
        priority: a.priority,
        histogram_us: a.histogram_us,
    };
    let cpus = CpuSelection::parse(&a.cpus).map_err(|e| anyhow::anyhow!("--cpus: {e}"))?;
    let (host, _guard) = open_root(&a.root)?;
    let req = Request {
        settings,
        cpus,
        cyclictest: a.cyclictest.clone(),
        run: true,
        skip_reason: String::new(),
        measured_at: crate::backup_id::now_utc(),
    };
    if host.system().can_act().is_ok() {
        eprintln!("lltune: measuring for {} s with cyclictest...", settings.duration_s);
    }
    let (doc, warnings) = latency::run_request(&host, &req).map_err(|e| match e.option {
        Some(o) => anyhow::anyhow!("--{}: {}", o.replace('_', "-"), e.msg),
        None => anyhow::anyhow!("{}", e.msg),
    })?;
    for w in &warnings {
        eprintln!("lltune: warning: {w}");
    }
    if !doc.measured {
        bail!("nothing measured: {}", doc.skipped_reason.as_deref().unwrap_or("no reason given"));
    }
    if let Some(p) = &a.save {
        write_file(p, "--save", &(serde_json::to_string_pretty(&doc)? + "\n"))?;
    }
    if let Some((path, _)) = &svg {
        write_file(path, "--svg", &report::histogram_svg(&[("this run", &doc)]))?;
    }
    let md = report::run_markdown(&doc, svg.as_ref().map(|s| s.1.as_str()));
    write_output(a.report.as_deref(), &md)?;
    Ok(ExitCode::SUCCESS)
}
