//! `lltune audit`: a config checked alone and against a host or snapshot; exit 1 on errors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{load_facts, open_host_tree, read_input};
use crate::config::audit;
use crate::host::Host;

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
            audit_on_host(&text, &facts, &host)
        }
    };
    if let Some(p) = &a.output {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("--output {}: cannot write", p.display()))?;
    }
    print!("{}", report.render_text());
    Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `audit_text` on a host tree: the config's own checks and the host cross-checks, then, when
/// those pass, what each module's planning would refuse there (`plan_issues`).
pub fn audit_on_host(text: &str, facts: &crate::facts::Facts, host: &Host) -> audit::AuditReport {
    let mut report = audit::audit_text(text, Some(facts));
    if report.ok() {
        if let Ok(mut args) = crate::config::to_args::from_text(text) {
            crate::config::to_args::fit_to_host(&mut args, facts, host);
            report.errors.extend(plan_issues(&args, host));
        }
    }
    report
}

/// The config section each module's arguments come from, for the issues of `plan_issues`.
fn section_of(module: &str) -> &'static str {
    use crate::names as t;
    match module {
        t::SYSCTL => "network.sysctl",
        t::KERNEL_ARGS => "kernel.cmdline",
        t::CPU => "cpu",
        t::MEMORY => "memory",
        t::SERVICES => "services",
        t::LIMITS => "memory.limits",
        t::NIC => "network.interfaces",
        t::IRQ => "irq",
        t::THREADS => "threads",
        t::BYPASS => "onload",
        t::TIMESYNC => "time_sync",
        _ => "",
    }
}

/// What apply would refuse on this host: every module's own planning (`modules::plan_by_name`:
/// reads the host, writes nothing) on the arguments apply would hand it (`args`, fitted to the
/// host), one error per module that refuses, named by its config section. `lltune audit` runs
/// these on a host tree so that a config it accepts is one `lltune apply --plan` carries out,
/// and `lltune apply` before it writes. The CLI only: the `lltune_audit` module does not link
/// the modules' planning (the tune role's plan pass runs each module in check mode instead).
pub fn plan_issues(args: &crate::config::to_args::ModuleArgs, host: &Host) -> Vec<crate::config::Issue> {
    let mut out = Vec::new();
    for (module, module_args) in args.in_order() {
        let mut m = module_args.as_object().cloned().unwrap_or_default();
        if module == crate::names::SYSCTL {
            // As apply runs it: the settings alone.
            m = serde_json::Map::from_iter(m.remove("settings").map(|s| ("settings".to_string(), s)));
        }
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::modules::plan_by_name(module, host, m)));
        let msg = match r {
            Ok(Some(Ok(_))) | Ok(None) => continue,
            Ok(Some(Err(e))) => format!("{e:#}"),
            Err(_) => "its planning failed unexpectedly".to_string(),
        };
        // lltune_bypass names the stack in its option path (`profiles.vma.variables`).
        let stack = ["onload", "vma", "xlio"].into_iter().find(|s| msg.contains(&format!("profiles.{s}")));
        out.push(crate::config::Issue::new(
            stack.unwrap_or(section_of(module)),
            format!("{module} would refuse this on the host: {msg}"),
        ));
    }
    out
}
