//! `lltune apply` and `lltune rollback`: a version-1 config file (the seed's schema) carried
//! out through the same modules Ansible runs, in `names::ORDER`, as one engine transaction
//! (`engine::Transaction`): one lock, one backup bundle, and a failing step reverts the
//! earlier ones. `--plan` is the modules' check mode: the same path, nothing written, not
//! even a backup.
//!
//! First the full audit (`config::audit`) against the facts of the host it changes, scanned
//! under the same root: any error refuses the run before anything is written. Then the
//! config becomes each module's arguments through `config::to_args` (the translation
//! `lltune_config` and `lltune_audit` return as `module_args`): no `lltune_kernel_args` step
//! without `safety.allow_grub_edit: true`. Sections lltune does not apply yet are listed in
//! the report, never skipped in silence. The config is read with strict types:
//! `mitigations: off` (a YAML boolean) is an error naming `kernel.cmdline.mitigations`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::audit;
use crate::config::to_args::{self, ModuleArgs};
use crate::engine::Transaction;
use crate::engine::journal::Journal;
use crate::facts::{Facts, ScanOptions};
use crate::host::Host;
use crate::modules::rollback as rollback_module;
use crate::names;
use crate::protocol::{Diff, Meta, Outcome};

/// Reads a config for apply: the full audit (`config::audit`, the same checks as `lltune
/// audit`, host cross-checks included when `facts` is given) must pass, then the config is
/// translated into module arguments (`config::to_args`). Any audit error refuses the whole
/// config, every error reported with its dotted path.
pub fn read_config(text: &str, on: Option<(&Facts, &Host)>) -> Result<(ModuleArgs, Vec<String>)> {
    let report = audit::audit_text(text, on.map(|(f, _)| f));
    if !report.ok() {
        let lines: Vec<String> = report.errors.iter().map(|i| i.to_string()).collect();
        bail!("config has {} error(s) (lltune audit; nothing was applied):\n  {}", lines.len(), lines.join("\n  "));
    }
    let mut args = to_args::from_text(text).map_err(|issues| {
        let lines: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
        anyhow::anyhow!("config has {} error(s):\n  {}", lines.len(), lines.join("\n  "))
    })?;
    if let Some((f, host)) = on {
        to_args::fit_to_host(&mut args, f, host);
        // What the audit checks on a host tree: each module's own planning.
        let refused = crate::cli::audit::plan_issues(&args, host);
        if !refused.is_empty() {
            let lines: Vec<String> = refused.iter().map(|i| i.to_string()).collect();
            bail!("config has {} error(s) (lltune audit; nothing was applied):\n  {}", lines.len(), lines.join("\n  "));
        }
    }
    Ok((args, report.warnings.iter().map(|w| w.to_string()).collect()))
}

/// One module's part of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `lltune_sysctl`, `lltune_kernel_args`, `lltune_rollback`.
    pub module: String,
    pub changed: bool,
    /// The module's result fields (`changes`, `pending`, `grub_cfg`, ...).
    pub result: Map<String, Value>,
    pub diff: Vec<Diff>,
    pub warnings: Vec<String>,
}

impl Step {
    fn from_outcome(module: &str, o: Outcome) -> Step {
        Step { module: module.into(), changed: o.changed, result: o.fields, diff: o.diff, warnings: o.warnings }
    }

    fn reboot_required(&self) -> bool {
        self.result.get("reboot_required").and_then(Value::as_bool).unwrap_or(false)
    }

    /// Why this step waits for a reboot, naming what changes then; `None` when it does not.
    fn reboot_reason(&self) -> Option<String> {
        if !self.reboot_required() {
            return None;
        }
        Some(match self.module.as_str() {
            names::KERNEL_ARGS => {
                let keys: Vec<&str> = self
                    .result
                    .get("pending")
                    .and_then(Value::as_array)
                    .map(|p| p.iter().filter_map(|e| e.get("key").and_then(Value::as_str)).collect())
                    .unwrap_or_default();
                if keys.is_empty() {
                    "lltune_kernel_args: the kernel command line differs from the running one".to_string()
                } else {
                    format!(
                        "lltune_kernel_args: the kernel command line differs from the running one ({})",
                        keys.join(", ")
                    )
                }
            }
            names::CPU => format!(
                "lltune_cpu: systemd reads CPUAffinity= ({}) only when it starts",
                crate::modules::cpu::AFFINITY_FILE
            ),
            names::SYSCTL => {
                "lltune_sysctl: values written to the sysctl.d file only, applied at the next boot".to_string()
            }
            rollback_module::MODULE => "lltune_rollback: boot configuration was restored".to_string(),
            other => format!("{other}: its changes take effect at the next boot"),
        })
    }
}

/// What `lltune apply` did (or, with `--plan`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub plan: bool,
    pub root: String,
    pub changed: bool,
    pub reboot_required: bool,
    /// Why, one line per step that waits for a reboot, naming what it changed.
    pub reboot_reasons: Vec<String>,
    /// The bundle written (`null` with `--plan` or when nothing changed).
    pub backup: Option<String>,
    pub steps: Vec<Step>,
    /// Config items not applied, with why (a safety flag off, a key this kernel lacks).
    pub skipped: Vec<String>,
    /// Config sections present that lltune does not apply yet.
    pub not_implemented: Vec<String>,
    /// The audit's warnings (its errors stop apply before anything runs).
    pub audit_warnings: Vec<String>,
}

fn require_root(host: &Host, what: &str) -> Result<()> {
    if host.system().can_act().is_ok() && !nix::unistd::geteuid().is_root() {
        bail!(
            "{what} changes this host and needs root privileges: run it with sudo (or use --plan to preview, or --root DIR for a copied tree)"
        );
    }
    Ok(())
}

/// `lltune apply -c config.yaml [--plan] [--root DIR] [--backup-id ID]`.
pub fn apply(root: &Path, config: &Path, plan: bool, backup_id: Option<String>) -> Result<ApplyReport> {
    let host = Host::new(root).map_err(|e| anyhow::anyhow!("--root: {e}"))?;
    if let Some(problem) = crate::facts::not_a_host_tree(&host) {
        bail!("--root {}: {problem}", root.display());
    }
    if !plan {
        require_root(&host, "lltune apply")?;
    }
    let text = super::read_input(config, "-c")?;
    if let Some(id) = &backup_id {
        crate::backup_id::validate(id).map_err(|e| anyhow::anyhow!("--backup-id: {e}"))?;
    }
    let meta = Meta { check_mode: plan, diff: true, ..Meta::default() };
    // One transaction for the whole apply: one lock from the audit to the last write (and to
    // the revert), one backup bundle, and a failure in any step puts back every earlier
    // step's writes (`engine::Transaction`).
    let mut tx = Transaction::begin(&host, &meta, backup_id.as_deref())?;
    // The full audit first, against this host's facts scanned from the same root.
    let (facts, _) = crate::facts::collect(&host, ScanOptions::default());
    let (args, audit_warnings) =
        read_config(&text, Some((&facts, &host))).with_context(|| format!("{}", config.display()))?;

    let mut report = ApplyReport {
        plan,
        root: root.display().to_string(),
        changed: false,
        reboot_required: false,
        reboot_reasons: Vec::new(),
        backup: None,
        steps: Vec::new(),
        skipped: args.skipped.clone(),
        not_implemented: args.not_implemented.clone(),
        audit_warnings,
    };
    // lltune-restore.service runs the CLI at boot to re-apply what the modules persisted: on
    // this host, the first step that persists installs this very binary there (journaled
    // and reverted with that step).
    let persists = args.modules.values().any(|m| m.get("persist") == Some(&Value::Bool(true)));
    if persists {
        let cli = crate::engine::persist::CLI_PATH;
        if host.system().can_act().is_ok() {
            let me = std::env::current_exe().context("finding this program's own path")?;
            let bytes = std::fs::read(&me).with_context(|| format!("reading {}", me.display()))?;
            tx.install_boot_runner(bytes);
        } else {
            report.skipped.push(format!(
                "{cli}: the CLI that lltune-restore.service runs at boot is installed only when root is / (install it on the host)"
            ));
        }
    }
    // Every module the config asks for, in `names::ORDER` (sysctls this kernel lacks were
    // left out by fit_to_host and named in `skipped`; kernel arguments are present only with
    // safety.allow_grub_edit: true: without it apply leaves the boot configuration alone).
    for (module, module_args) in args.in_order() {
        let options = module_args.as_object().cloned().unwrap_or_default();
        tx.set_reasons(args.reasons.get(module).and_then(Value::as_object).cloned());
        let r = crate::modules::run_step(&mut tx, module, options)
            .unwrap_or_else(|| Err(anyhow::anyhow!("internal error: no module {module}")));
        match r {
            Ok(o) => report.steps.push(Step::from_outcome(module, o)),
            Err(e) => return Err(tx.abort(e.context(module.to_string()))),
        }
    }
    report.changed = report.steps.iter().any(|s| s.changed);
    report.reboot_required = report.steps.iter().any(Step::reboot_required);
    report.reboot_reasons = report.steps.iter().filter_map(Step::reboot_reason).collect();
    if tx.changed() {
        report.backup = Some(tx.backup_dir());
    }
    Ok(report)
}

/// `lltune install-cli --backup-id ID [--root DIR]`: installs this binary where the restore
/// unit runs it, on its own, under the root's lock, for the tune role (whose modules persist
/// but cannot install the CLI: they are other binaries). `true` when it wrote the file.
pub fn install_self(root: &Path, backup_id: &str) -> Result<bool> {
    let host = Host::new(root).map_err(|e| anyhow::anyhow!("--root: {e}"))?;
    require_root(&host, "lltune install-cli")?;
    crate::backup_id::validate(backup_id).map_err(|e| anyhow::anyhow!("--backup-id: {e}"))?;
    let _lock = crate::engine::lock::acquire(&host)?;
    let me = std::env::current_exe().context("finding this program's own path")?;
    let bytes = std::fs::read(&me).with_context(|| format!("reading {}", me.display()))?;
    // The same write `lltune apply` makes with its first persisting step.
    let Some((action, diff)) = crate::engine::persist::runner_action(&host, &bytes) else { return Ok(false) };
    let mut journal = Journal::open(&host, backup_id)?;
    crate::engine::carry_out(
        &host,
        Some(crate::engine::Record { journal: &mut journal, module: "lltune_apply", boot: false }),
        &[action],
    )?;
    // The audit trail, as a module's change is logged (the CLI is no module: `lltune`).
    crate::engine::log_changes(&host, &Meta::default(), "lltune", Some(backup_id), &[diff]);
    Ok(true)
}

/// What `lltune rollback` did.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub root: String,
    pub backup: String,
    pub changed: bool,
    pub reboot_required: bool,
    pub step: Step,
}

/// `lltune rollback --backup PATH [--root DIR]`.
pub fn rollback(root: &Path, backup: &str) -> Result<RollbackReport> {
    let host = Host::new(root).map_err(|e| anyhow::anyhow!("--root: {e}"))?;
    require_root(&host, "lltune rollback")?;
    let journal = Journal::load(&host, backup)?;
    let meta = Meta { diff: true, ..Meta::default() };
    let o = rollback_module::run(&host, &meta, rollback_module::Params { backup: journal.dir.clone() })?;
    let step = Step::from_outcome(rollback_module::MODULE, o);
    Ok(RollbackReport {
        root: root.display().to_string(),
        backup: journal.dir,
        changed: step.changed,
        reboot_required: step.reboot_required(),
        step,
    })
}

/// A line diff for people: changed lines only, `-` before and `+` after, by longest common
/// subsequence (files here are a few hundred lines at most).
pub fn render_diff(d: &Diff) -> String {
    let a: Vec<&str> = d.before.lines().collect();
    let b: Vec<&str> = d.after.lines().collect();
    let mut out = format!("--- {}\n+++ {}\n", d.before_header, d.after_header);
    if a.len() * b.len() > 4_000_000 {
        out.extend(a.iter().map(|l| format!("-{l}\n")));
        out.extend(b.iter().map(|l| format!("+{l}\n")));
        return out;
    }
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        }
    }
    out
}

fn render_step(s: &Step, out: &mut String) {
    out.push_str(&format!("{}: {}\n", s.module, if s.changed { "changes" } else { "no change" }));
    for d in &s.diff {
        for line in render_diff(d).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if let Some(g) = s.result.get("grub_cfg").filter(|g| !g.is_null()) {
        let note = g.get("note").and_then(Value::as_str).unwrap_or("regenerated");
        out.push_str(&format!("  grub.cfg {}: {note}\n", g["path"].as_str().unwrap_or("")));
    }
    for w in &s.warnings {
        out.push_str(&format!("  warning: {w}\n"));
    }
}

impl ApplyReport {
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "lltune apply{} (root {})\n",
            if self.plan { " --plan: nothing is written" } else { "" },
            self.root
        ));
        for s in &self.steps {
            render_step(s, &mut out);
        }
        for s in &self.skipped {
            out.push_str(&format!("skipped: {s}\n"));
        }
        for s in &self.not_implemented {
            out.push_str(&format!("not implemented yet: {s} (nothing applied)\n"));
        }
        for w in &self.audit_warnings {
            out.push_str(&format!("audit warning: {w}\n"));
        }
        let verb = if self.plan { "would change" } else { "changed" };
        out.push_str(&format!("{}\n", if self.changed { verb.to_string() } else { "nothing to change".to_string() }));
        for why in &self.reboot_reasons {
            out.push_str(&format!("reboot required: {why}\n"));
        }
        if let Some(b) = &self.backup {
            out.push_str(&format!(
                "backup: {b} (undo with: lltune rollback --backup {b}{})\n",
                if self.root == "/" { String::new() } else { format!(" --root {}", self.root) }
            ));
        }
        out
    }
}

impl RollbackReport {
    pub fn render_text(&self) -> String {
        let mut out = format!("lltune rollback {} (root {})\n", self.backup, self.root);
        render_step(&self.step, &mut out);
        if self.reboot_required {
            out.push_str("reboot required: boot configuration was restored\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<ModuleArgs> {
        read_config(text, None).map(|(a, _)| a)
    }

    #[test]
    fn config_errors_name_the_dotted_path() {
        let e = format!("{:#}", read("version: 2\nkernel:\n  cmdline:\n    mitigations: false\nnetwork:\n  sysctl:\n    bogus_name: 1\n    busy_poll: [1]\nsafety:\n  allow_grub_edit: \"yes\"\nextra: 1\n").unwrap_err());
        for want in [
            "extra: unknown section",
            "version: expected 1, found 2",
            "kernel.cmdline.mitigations: expected a string, found the boolean false; if you meant the word (off, on, yes, no), write it in quotes: \"off\"",
            "network.sysctl.bogus_name: unknown sysctl `bogus_name`",
            "safety.allow_grub_edit: expected a boolean, got string \"yes\"",
        ] {
            assert!(e.contains(want), "{want:?} not in {e}");
        }
        assert!(read("- 1").is_err());
        // YAML 1.2 reads an unquoted `off` as a string; the seed's YAML 1.1 read a boolean.
        // Either way the person meant something the config can't say unquoted: refused.
        let e = format!("{:#}", read("version: 1\nkernel:\n  cmdline:\n    mitigations: off\nsafety:\n  allow_grub_edit: true\n  allow_dangerous_mitigations: true\n").unwrap_err());
        assert!(e.contains("kernel.cmdline.mitigations"), "{e}");
    }

    #[test]
    fn apply_refuses_what_audit_refuses_with_host_facts() {
        // Consistent on its own, but it isolates every CPU of this host: audit's host
        // cross-check is an error, so apply refuses before anything runs.
        let f = crate::analysis::testing::two_nodes();
        let text = "version: 1\ncpu:\n  isolate_cores: 0-15\nkernel:\n  cmdline:\n    isolcpus: managed_irq,domain,0-15\nsafety:\n  allow_grub_edit: true\n";
        assert!(read_config(text, None).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        let e = format!("{:#}", read_config(text, Some((&f, &host))).unwrap_err());
        assert!(
            e.contains("(lltune audit; nothing was applied)")
                && e.contains("cpu.isolate_cores: isolates every online CPU"),
            "{e}"
        );
    }

    /// One policy: the config reader, audit, apply and lltune_kernel_args refuse the same
    /// arguments, and accept the same ones.
    #[test]
    fn reader_audit_apply_and_module_agree() {
        use crate::modules::kernel_args;
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("init", Some("/bin/sh"), true),
            ("rd.break", None, true),
            ("single", None, true),
            ("systemd.unit", Some("emergency.target"), true),
            ("selinux", Some("0"), true),
            ("noapic", None, true),
            ("nosmp", None, true),
            ("root", Some("/dev/sda1"), true),
            ("tsa", Some("off"), false),
            ("vmscape", Some("off"), false),
            ("indirect_target_selection", Some("off"), false),
            ("ssbd", Some("force-off"), false),
            ("kpti", Some("no"), false),
            ("kvm-intel.vmentry_l1d_flush", Some("never"), false),
            ("mitigations", Some("off"), false),
        ];
        for &(key, value, always) in cases {
            for consent in [false, true] {
                let yaml_value = value.map(|v| format!("\"{v}\"")).unwrap_or_default();
                let text = format!(
                    "version: 1\nkernel:\n  extra_args:\n    {key}: {yaml_value}\nsafety:\n  allow_grub_edit: true\n  allow_dangerous_mitigations: {consent}\n"
                );
                let want_refused = always || !consent;
                let field = format!("kernel.extra_args.{key}");
                let (_, issues) = crate::config::parse(&text);
                assert_eq!(issues.iter().any(|i| i.field == field), want_refused, "reader: {text}");
                let audit = audit::audit_text(&text, None);
                assert_eq!(audit.errors.iter().any(|i| i.field == field), want_refused, "audit: {text}");
                assert_eq!(read(&text).is_err(), want_refused, "apply: {text}");
                let params = kernel_args::Params {
                    args: vec![(key.to_string(), value.map(String::from))],
                    remove: Vec::new(),
                    allow_dangerous_mitigations: consent,
                    bootloader: "auto".into(),
                    backup_id: None,
                };
                assert_eq!(
                    kernel_args::build_edit(&params).is_err(),
                    want_refused,
                    "module: {key} {value:?} {consent}"
                );
            }
        }
    }

    #[test]
    fn no_grub_edit_flag_means_no_kernel_args_step() {
        let a = read("version: 1\nkernel:\n  cmdline:\n    skew_tick: 1\nmemory:\n  swappiness: 10\n").unwrap();
        assert!(a.get(names::KERNEL_ARGS).is_none());
        assert_eq!(a.skipped, ["kernel.cmdline (1 arguments): safety.allow_grub_edit is false"]);
    }

    #[test]
    fn diff_shows_changed_lines() {
        let d = Diff {
            before_header: "a".into(),
            after_header: "a".into(),
            before: "x\ny\nz\n".into(),
            after: "x\nY\nz\nw\n".into(),
        };
        assert_eq!(render_diff(&d), "--- a\n+++ a\n-y\n+Y\n+w\n");
    }
}
