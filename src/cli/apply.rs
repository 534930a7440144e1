//! `lltune apply` and `lltune rollback`: a version-1 config file (the seed's schema) carried
//! out through the same modules Ansible runs, `lltune_sysctl` then `lltune_kernel_args`,
//! with one backup bundle for the whole run. `--plan` is the modules' check mode: the same
//! path, nothing written, not even a backup.
//!
//! The seed's short sysctl names (`network.sysctl.rmem_max`, `memory.swappiness`) map to
//! real keys here; sections lltune does not apply yet are listed in the report, never
//! skipped in silence. The config is read with strict types: `mitigations: off` (a YAML
//! boolean) is an error naming `kernel.cmdline.mitigations`, not a guess.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Map, Value};
use serde_yaml::Value as Yaml;

use crate::engine::journal::{self, Journal};
use crate::host::Host;
use crate::modules::{kernel_args, rollback as rollback_module, sysctl};
use crate::protocol::{Diff, Meta, Outcome};

/// Sections that describe the host or advise; nothing to apply in them.
const INFORMATIONAL: &[&str] = &["version", "metadata", "hardware", "recommendations"];

/// What a config asks of the modules implemented so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub cmdline: Vec<(String, Option<String>)>,
    /// Real sysctl key → value, with the config path it came from.
    pub sysctl: BTreeMap<String, (String, String)>,
    pub allow_grub_edit: bool,
    pub allow_dangerous_mitigations: bool,
    /// Config paths present that lltune does not apply yet.
    pub not_implemented: Vec<String>,
}

fn is_empty(v: &Yaml) -> bool {
    match v {
        Yaml::Null => true,
        Yaml::Mapping(m) => m.is_empty(),
        Yaml::Sequence(s) => s.is_empty(),
        _ => false,
    }
}

/// Reads the parts of a config this version applies, through the one strict config reader
/// (`config::parse`, the same as `lltune audit`): any issue refuses the whole config, every
/// issue reported with its dotted path.
pub fn parse_config(text: &str) -> Result<Desired> {
    let (cfg, issues) = crate::config::parse(text);
    if !issues.is_empty() {
        let lines: Vec<String> = issues
            .iter()
            .map(|i| if i.field.is_empty() { i.message.clone() } else { format!("{}: {}", i.field, i.message) })
            .collect();
        bail!("config has {} error(s):\n  {}", lines.len(), lines.join("\n  "));
    }
    let mut d = Desired {
        cmdline: cfg.kernel_args(),
        sysctl: cfg.sysctls(),
        allow_grub_edit: cfg.safety.allow_grub_edit,
        allow_dangerous_mitigations: cfg.safety.allow_dangerous_mitigations,
        not_implemented: Vec::new(),
    };
    // What the config asks that no module carries out yet: listed, never skipped in silence.
    let doc: Yaml = serde_yaml::from_str(text).context("config is not valid YAML")?;
    let applied: Vec<&str> = d.sysctl.values().map(|(_, path)| path.as_str()).collect();
    // Parts of applied sections first, then whole sections, each in the file's order.
    let mut whole: Vec<String> = Vec::new();
    if let Yaml::Mapping(top) = &doc {
        for (k, v) in top {
            let Some(section) = k.as_str() else { continue };
            if INFORMATIONAL.contains(&section) || section == "safety" || is_empty(v) {
                continue;
            }
            match (section, v) {
                ("kernel" | "network" | "memory", Yaml::Mapping(m)) => {
                    for (sk, sv) in m {
                        let Some(sk) = sk.as_str() else { continue };
                        let path = format!("{section}.{sk}");
                        let done = matches!(
                            path.as_str(),
                            "kernel.cmdline" | "kernel.extra_args" | "kernel.sysctl" | "network.sysctl"
                        ) || applied.contains(&path.as_str());
                        if done || is_empty(sv) {
                            continue;
                        }
                        if let ("memory.mlock", Yaml::Mapping(ml)) = (path.as_str(), sv) {
                            for (mk, mv) in ml {
                                let mpath = format!("memory.mlock.{}", mk.as_str().unwrap_or(""));
                                if !applied.contains(&mpath.as_str()) && !is_empty(mv) {
                                    d.not_implemented.push(mpath);
                                }
                            }
                            continue;
                        }
                        d.not_implemented.push(path);
                    }
                }
                _ => whole.push(section.to_string()),
            }
        }
    }
    d.not_implemented.extend(whole);
    Ok(d)
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
}

/// What `lltune apply` did (or, with `--plan`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub plan: bool,
    pub root: String,
    pub changed: bool,
    pub reboot_required: bool,
    /// The bundle written (`null` with `--plan` or when nothing changed).
    pub backup: Option<String>,
    pub steps: Vec<Step>,
    /// Config items not applied, with why (a safety flag off, a key this kernel lacks).
    pub skipped: Vec<String>,
    /// Config sections present that lltune does not apply yet.
    pub not_implemented: Vec<String>,
}

fn require_root(host: &Host, what: &str) -> Result<()> {
    if host.is_live() && !nix::unistd::geteuid().is_root() {
        bail!(
            "{what} changes this host and needs root privileges: run it with sudo (or use --plan to preview, or --root DIR for a copied tree)"
        );
    }
    Ok(())
}

/// `lltune apply -c config.yaml [--plan] [--root DIR] [--backup-id ID]`.
pub fn apply(root: &Path, config: &Path, plan: bool, backup_id: Option<String>) -> Result<ApplyReport> {
    let host = Host::new(root).map_err(|e| anyhow::anyhow!("--root: {e}"))?;
    if !plan {
        require_root(&host, "lltune apply")?;
    }
    let text = std::fs::read_to_string(config).with_context(|| format!("reading config {}", config.display()))?;
    let desired = parse_config(&text).with_context(|| format!("{}", config.display()))?;
    let id = backup_id.unwrap_or_else(journal::default_backup_id);
    journal::validate_backup_id(&id).map_err(|e| anyhow::anyhow!("--backup-id: {e}"))?;
    let meta = Meta { check_mode: plan, diff: true, ..Meta::default() };
    let entries_before = Journal::open(&host, &id)?.entries().len();

    let mut report = ApplyReport {
        plan,
        root: root.display().to_string(),
        changed: false,
        reboot_required: false,
        backup: None,
        steps: Vec::new(),
        skipped: Vec::new(),
        not_implemented: desired.not_implemented.clone(),
    };

    let mut settings = Map::new();
    for (key, (value, path)) in &desired.sysctl {
        // A name the seed used that this kernel no longer has (tcp_low_latency went in 4.14).
        match sysctl::parse_key(key) {
            Ok(k) if !host.exists(&k.path) => {
                report.skipped.push(format!("{path} ({key}): not present on this kernel ({} does not exist)", k.path))
            }
            Ok(_) => {
                settings.insert(key.clone(), Value::String(value.clone()));
            }
            Err(e) => bail!("{path}: {e}"),
        }
    }
    let run_step = |module: &str, result: Result<Outcome>, report: &mut ApplyReport| -> Result<()> {
        match result {
            Ok(o) => {
                report.steps.push(Step::from_outcome(module, o));
                Ok(())
            }
            Err(e) => Err(revert_earlier_steps(&host, &id, entries_before, plan, e.context(module.to_string()))),
        }
    };
    if !settings.is_empty() {
        let params: sysctl::Params = crate::protocol::parse_params(Map::from_iter([
            ("settings".to_string(), Value::Object(settings)),
            ("backup_id".to_string(), Value::String(id.clone())),
        ]))?;
        let r = sysctl::run(&host, &meta, params);
        run_step(sysctl::MODULE, r, &mut report)?;
    }
    if !desired.cmdline.is_empty() {
        if desired.allow_grub_edit {
            let params = kernel_args::Params {
                args: desired.cmdline.clone(),
                remove: Vec::new(),
                allow_dangerous_mitigations: desired.allow_dangerous_mitigations,
                bootloader: "auto".into(),
                backup_id: Some(id.clone()),
            };
            let r = kernel_args::run(&host, &meta, params);
            run_step(kernel_args::MODULE, r, &mut report)?;
        } else {
            report
                .skipped
                .push(format!("kernel.cmdline ({} arguments): safety.allow_grub_edit is false", desired.cmdline.len()));
        }
    }
    report.changed = report.steps.iter().any(|s| s.changed);
    report.reboot_required = report.steps.iter().any(Step::reboot_required);
    if report.changed && !plan {
        report.backup = Some(format!("{}/{id}", journal::BACKUPS_DIR));
    }
    Ok(report)
}

/// A later module failed (and reverted its own writes): put back what earlier modules of
/// this run changed, from the entries this run added to the bundle.
fn revert_earlier_steps(host: &Host, id: &str, entries_before: usize, plan: bool, err: anyhow::Error) -> anyhow::Error {
    if plan {
        return err;
    }
    let journal = match Journal::open(host, id) {
        Ok(j) => j,
        Err(e) => return err.context(format!("and the backup could not be read to revert earlier steps: {e:#}")),
    };
    let ours = journal.entries().get(entries_before..).unwrap_or(&[]);
    if ours.is_empty() {
        return err;
    }
    let result = rollback_module::plan_entries(host, &journal, ours).and_then(|p| {
        let paths: Vec<String> = p.restored.iter().map(|r| r.path.clone()).collect();
        crate::engine::carry_out(host, None, &p.actions).map(|()| paths)
    });
    match result {
        Ok(paths) if paths.is_empty() => err,
        Ok(paths) => anyhow::anyhow!("{err:#}; reverted the earlier steps of this apply: {}", paths.join(", ")),
        Err(e) => anyhow::anyhow!(
            "{err:#}; reverting the earlier steps failed too: {e:#} (restore with: lltune rollback --backup {id})"
        ),
    }
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
        let verb = if self.plan { "would change" } else { "changed" };
        out.push_str(&format!("{}\n", if self.changed { verb.to_string() } else { "nothing to change".to_string() }));
        if self.reboot_required {
            out.push_str("reboot required: the kernel command line differs from the running one\n");
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

    #[test]
    fn seed_config_maps_to_real_keys_and_lists_the_rest() {
        let d = parse_config(
            "version: 1\nmetadata: {host: x}\ncpu:\n  governor: {target: performance}\nkernel:\n  cmdline:\n    isolcpus: managed_irq,domain,2-5\n    nosoftlockup: \"\"\n    skew_tick: 1\nmemory:\n  swappiness: 10\n  numa_balancing: false\n  thp_runtime: never\n  mlock: {enabled: true, max_map_count: 262144}\nnetwork:\n  defaults: {disable_gro: true}\n  sysctl:\n    rmem_max: 67108864\n    tcp_timestamps: false\n    tcp_rmem: \"4096 87380 67108864\"\n    file_max: 2097152\n    net.core.somaxconn: 4096\nirq: {}\nsafety:\n  allow_grub_edit: true\n",
        )
        .unwrap();
        let keys: Vec<(&str, &str)> = d.sysctl.iter().map(|(k, (v, _))| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                ("fs.file-max", "2097152"),
                ("kernel.numa_balancing", "0"),
                ("net.core.rmem_max", "67108864"),
                ("net.core.somaxconn", "4096"),
                ("net.ipv4.tcp_rmem", "4096 87380 67108864"),
                ("net.ipv4.tcp_timestamps", "0"),
                ("vm.max_map_count", "262144"),
                ("vm.swappiness", "10"),
            ]
        );
        assert_eq!(
            d.cmdline,
            vec![
                ("isolcpus".into(), Some("managed_irq,domain,2-5".into())),
                ("nosoftlockup".into(), None),
                ("skew_tick".into(), Some("1".into()))
            ]
        );
        assert!(d.allow_grub_edit && !d.allow_dangerous_mitigations);
        assert_eq!(d.not_implemented, vec!["memory.thp_runtime", "memory.mlock.enabled", "network.defaults", "cpu"]);
    }

    #[test]
    fn config_errors_name_the_dotted_path() {
        let e = format!("{:#}", parse_config("version: 2\nkernel:\n  cmdline:\n    mitigations: false\nnetwork:\n  sysctl:\n    bogus_name: 1\n    busy_poll: [1]\nsafety:\n  allow_grub_edit: \"yes\"\nextra: 1\n").unwrap_err());
        for want in [
            "extra: unknown section",
            "version: expected 1, found 2",
            "kernel.cmdline.mitigations: expected a string, found the boolean false; if you meant the word (off, on, yes, no), write it in quotes: \"off\"",
            "network.sysctl.bogus_name: unknown sysctl `bogus_name`",
            "safety.allow_grub_edit: expected a boolean, got string \"yes\"",
        ] {
            assert!(e.contains(want), "{want:?} not in {e}");
        }
        assert!(parse_config("- 1").is_err());
        // YAML 1.2 reads an unquoted `off` as a string; the seed's YAML 1.1 read a boolean.
        // Either way the person meant something the config can't say unquoted: refused.
        let e = format!("{:#}", parse_config("version: 1\nkernel:\n  cmdline:\n    mitigations: off\nsafety:\n  allow_grub_edit: true\n  allow_dangerous_mitigations: true\n").unwrap_err());
        assert!(e.contains("kernel.cmdline.mitigations"), "{e}");
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
