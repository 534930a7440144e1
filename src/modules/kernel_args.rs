//! lltune_kernel_args: kernel command-line arguments in the boot configuration, for the
//! next boot: every BLS entry's `options` line (as `grubby --update-kernel=ALL`),
//! `GRUB_CMDLINE_LINUX`/`_DEFAULT` in /etc/default/grub, /etc/kernel/cmdline; on classic
//! GRUB2, grub.cfg regenerated with the platform's tool when `root` is `/`.
//!
//! The surprising part: nothing changes until a reboot, so the result compares the running
//! arguments (/proc/cmdline) with the configured ones for the keys the task names, and
//! `reboot_required` says whether they differ; a rerun after the reboot reports neither a
//! change nor a reboot. The editing itself lives in `crate::modules::boot`.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::engine::state::Action;
use crate::engine::{self, Module};
use crate::facts::kernel::{Cmdline, KernelArg, parse_cmdline};
use crate::host::Host;
use crate::modules::boot::{self, ArgEdit, Removal};
use crate::protocol::{Diff, Failure, Meta, Outcome, lenient_bool};

pub const MODULE: &str = crate::names::KERNEL_ARGS;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// `nohz_full` → `2-5`; `""` or null for a bare flag such as `nosoftlockup`. Kept in
    /// the order given (`hugepagesz` must come before its `hugepages`).
    #[serde(default, deserialize_with = "ordered_args")]
    pub args: Vec<(String, Option<String>)>,
    /// Keys to remove, or `key=value` for one value of a repeated key.
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub allow_dangerous_mitigations: bool,
    /// `auto`, `bls`, `grub2` or `kernel-cmdline`.
    #[serde(default = "auto")]
    pub bootloader: String,
    #[serde(default)]
    pub backup_id: Option<String>,
}

fn auto() -> String {
    "auto".into()
}

/// A mapping of argument → scalar, in the order written (serde_json keeps it).
fn ordered_args<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<(String, Option<String>)>, D::Error> {
    let m = serde_json::Map::deserialize(d)?;
    let mut out = Vec::new();
    for (k, v) in m {
        let s = match v {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s),
            Value::Number(n) if !n.is_f64() => Some(n.to_string()),
            Value::Number(n) => {
                return Err(serde::de::Error::custom(format!("{k}: {n} is not an integer that fits in 64 bits")));
            }
            Value::Bool(b) => {
                // `mitigations: off` in YAML is a boolean: say so rather than guess.
                return Err(serde::de::Error::custom(format!(
                    "{k}: got the boolean {b}; quote the value (YAML reads off/on/yes/no as booleans)"
                )));
            }
            other => return Err(serde::de::Error::custom(format!("{k}: expected a string or number, got {other}"))),
        };
        out.push((k, s));
    }
    Ok(out)
}

/// One managed key whose running values differ from the configured ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub key: String,
    pub running: Vec<Option<String>>,
    pub configured: Vec<Option<String>>,
}

/// What an edit does to the arguments of the next boot, key by key: `added` and `removed`
/// as `key` or `key=value` words, `changed` with the values before and after (a key given
/// twice, `rd.lvm.lv=a rd.lvm.lv=b`, is one key with two values).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ArgChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<ArgChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgChange {
    pub key: String,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

/// `key` for a flag, `key=value` otherwise: as the command line spells it.
fn words(key: &str, values: &[Option<String>]) -> Vec<String> {
    values.iter().map(|v| v.as_ref().map_or_else(|| key.to_string(), |v| format!("{key}={v}"))).collect()
}

fn arg_changes(before: &Cmdline, after: &Cmdline) -> ArgChanges {
    let (b, a) = (before.to_map(), after.to_map());
    let mut out = ArgChanges::default();
    for (k, av) in &a {
        match b.get(k) {
            None => out.added.extend(words(k, av)),
            Some(bv) if bv != av => {
                out.changed.push(ArgChange { key: k.clone(), before: words(k, bv), after: words(k, av) })
            }
            Some(_) => {}
        }
    }
    for (k, bv) in &b {
        if !a.contains_key(k) {
            out.removed.extend(words(k, bv));
        }
    }
    out
}

impl ArgChanges {
    /// The change as a diff of argument words, one per line (keys in order): `+` added,
    /// `-` removed, a `-`/`+` pair changed. The file diffs that follow show where.
    fn diff(&self) -> Diff {
        let mut before = String::new();
        let mut after = String::new();
        for w in &self.removed {
            before.push_str(w);
            before.push('\n');
        }
        for c in &self.changed {
            for w in &c.before {
                before.push_str(w);
                before.push('\n');
            }
            for w in &c.after {
                after.push_str(w);
                after.push('\n');
            }
        }
        for w in &self.added {
            after.push_str(w);
            after.push('\n');
        }
        let n = |v: usize, what: &str| format!("{v} {what}");
        let header = format!(
            "kernel arguments of the next boot: {}, {}, {}",
            n(self.added.len(), "added"),
            n(self.removed.len(), "removed"),
            n(self.changed.len(), "changed")
        );
        engine::text::diff(header.clone(), header, before.as_bytes(), after.as_bytes())
    }
}

/// What happens to grub.cfg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrubCfg {
    pub path: String,
    pub command: String,
    pub regenerated: bool,
    /// Why it was not regenerated (check mode, or `root` is not `/`).
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub layout: String,
    pub actions: Vec<Action>,
    pub diff: Vec<Diff>,
    /// The arguments of the next boot this edit adds, removes and changes.
    pub changes: ArgChanges,
    pub running: Option<Cmdline>,
    pub configured: Cmdline,
    pub pending: Vec<Pending>,
    pub grub_cfg: Option<GrubCfg>,
    pub warnings: Vec<String>,
    pub backup_id: String,
}

/// Validates the options into an edit; every refusal names the argument.
pub fn build_edit(params: &Params) -> Result<ArgEdit, String> {
    let mut edit = ArgEdit::default();
    for (k, v) in &params.args {
        // The one safety policy (crate::policy), as the config reader and audit apply it.
        crate::policy::check(k, v.as_deref(), params.allow_dangerous_mitigations)
            .map_err(|e| format!("option args: {e}"))?;
        edit.set.push(KernelArg { key: k.clone(), value: v.clone() });
    }
    for r in &params.remove {
        let removal = Removal::parse(r);
        crate::policy::check_name(removal.key()).map_err(|e| format!("option remove: {e}"))?;
        if let Removal::KeyValue(k, v) = &removal {
            crate::policy::check_value(k, v, true).map_err(|e| format!("option remove: {e}"))?;
        }
        crate::policy::check_removal(removal.key()).map_err(|e| format!("option remove: {e}"))?;
        if edit.set.iter().any(|a| a.key == removal.key()) {
            return Err(format!("option remove: {} is also in args", removal.key()));
        }
        edit.remove.push(removal);
    }
    Ok(edit)
}

/// A message about the options with every long input it echoes cut to `cap_text`'s length
/// (a key, value or name of a megabyte would otherwise come back whole).
fn cap_echoes(msg: String, params: &Params) -> String {
    if msg.len() <= 2 * crate::protocol::ECHO_MAX_CHARS {
        return msg;
    }
    let texts = params
        .args
        .iter()
        .flat_map(|(k, v)| std::iter::once(k).chain(v))
        .chain(&params.remove)
        .chain(std::iter::once(&params.bootloader))
        .chain(&params.backup_id);
    let mut msg = msg;
    for t in texts.filter(|t| t.chars().count() > crate::protocol::ECHO_MAX_CHARS) {
        if !msg.contains(t.as_str()) && !msg.contains(&format!("{t:?}")) {
            continue;
        }
        let quoted = format!("{t:?}");
        msg = msg
            .replace(&quoted, &crate::protocol::cap_text(&quoted))
            .replace(t.as_str(), &crate::protocol::cap_text(t));
    }
    msg
}

/// Limits `build_edit` leaves to the plan: no argument longer than the kernel's command line
/// can hold, and no control character in anything written or matched (a tab or escape in a
/// value would be written into the boot configuration as is).
fn check_limits(params: &Params) -> Result<(), String> {
    for (k, v) in &params.args {
        let len = k.len() + v.as_ref().map_or(0, |v| v.len() + 1);
        if len > boot::CMDLINE_MAX {
            return Err(format!(
                "option args: {}: the argument is {len} bytes, longer than the whole kernel command line may be ({})",
                crate::protocol::cap_text(k),
                boot::limit_text()
            ));
        }
        if let Some(c) = v.as_deref().and_then(|v| v.chars().find(|c| c.is_control())) {
            return Err(format!(
                "option args: {}: the value contains the control character {c:?}",
                crate::protocol::cap_text(k)
            ));
        }
    }
    for r in &params.remove {
        if r.len() > boot::CMDLINE_MAX {
            return Err(format!(
                "option remove: {}: {} bytes, longer than the whole kernel command line may be ({})",
                crate::protocol::cap_text(&format!("{r:?}")),
                r.len(),
                boot::limit_text()
            ));
        }
        if let Some(c) = r.chars().find(|c| c.is_control()) {
            return Err(format!(
                "option remove: {}: contains the control character {c:?}",
                crate::protocol::cap_text(&format!("{r:?}"))
            ));
        }
    }
    Ok(())
}

/// The running arguments, from /proc/cmdline; `None` (and a warning) when it is missing,
/// unreadable, or longer than any kernel writes (`boot::PROC_CMDLINE_MAX`).
fn running_cmdline(host: &Host, warnings: &mut Vec<String>) -> Option<Cmdline> {
    match host.read_bytes_opt("/proc/cmdline") {
        Ok(Some(b)) if b.len() > boot::PROC_CMDLINE_MAX => {
            let t = String::from_utf8_lossy(&b);
            warnings.push(format!(
                "/proc/cmdline is {} bytes, longer than any kernel command line ({} at most, bootconfig's included): not read as the running arguments, which are unknown; it begins {:?}",
                t.len(),
                boot::PROC_CMDLINE_MAX,
                crate::protocol::cap_text(&t)
            ));
            None
        }
        Ok(Some(b)) => match std::str::from_utf8(&b) {
            Ok(t) => Some(parse_cmdline(t)),
            Err(_) => {
                warnings.push(format!(
                    "/proc/cmdline is not UTF-8 text ({}): not compared with the configured arguments, so the running arguments are unknown",
                    crate::protocol::cap_text(&engine::text::show(&b))
                ));
                None
            }
        },
        Ok(None) => {
            warnings.push("/proc/cmdline is missing: the running arguments are unknown".into());
            None
        }
        Err(e) => {
            warnings.push(crate::protocol::cap_text(&format!("{e}")));
            None
        }
    }
}

/// Managed keys whose running values differ from the configured ones, in the edit's order
/// (one index of each line: linear in the arguments).
fn pending_keys(edit: &ArgEdit, running: &Cmdline, configured: &Cmdline) -> Vec<Pending> {
    let (run, conf) = (running.to_map(), configured.to_map());
    let mut pending = Vec::new();
    for key in edit.keys() {
        let r = run.get(&key).cloned().unwrap_or_default();
        let c = conf.get(&key).cloned().unwrap_or_default();
        if r != c {
            pending.push(Pending { key, running: r, configured: c });
        }
    }
    pending
}

/// The host's memory: MemTotal of /proc/meminfo, and each NUMA node's (id, MemTotal) from
/// /sys/devices/system/node/node*/meminfo. `None` when /proc/meminfo has no MemTotal.
fn host_memory(host: &Host) -> Option<(u64, Vec<(u32, u64)>)> {
    let text = host.read_opt("/proc/meminfo").ok().flatten()?;
    let total = *crate::facts::memory::parse_meminfo(&text).get("MemTotal")?;
    let mut nodes = Vec::new();
    for name in host.list_or_empty("/sys/devices/system/node") {
        let Some(id) = name.strip_prefix("node").and_then(|n| n.parse::<u32>().ok()) else { continue };
        let path = format!("/sys/devices/system/node/{name}/meminfo");
        if let Some(kb) = host
            .read_opt(&path)
            .ok()
            .flatten()
            .and_then(|t| crate::facts::numa::parse_node_meminfo(&t).get("MemTotal").copied())
        {
            nodes.push((id, kb));
        }
    }
    Some((total, nodes))
}

/// The huge page reserve `lltune audit` applies (`crate::policy::check_boot_hugepages`), on
/// the command line the next boot gets, when the task sets a huge page argument: pages
/// reserved at boot must leave the OS its share of the host's and each node's memory.
fn check_hugepage_reserve(
    host: &Host,
    edit: &ArgEdit,
    configured: &Cmdline,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let hugepage_key =
        |k: &str| matches!(k.replace('-', "_").as_str(), "hugepages" | "hugepagesz" | "default_hugepagesz");
    if !edit.set.iter().any(|a| hugepage_key(&a.key)) {
        return Ok(());
    }
    let boot = crate::policy::boot_hugepages(configured.args.iter().map(|a| (a.key.as_str(), a.value.as_deref())))
        .map_err(|e| format!("option args: {}: {}", e.key, crate::protocol::cap_text(&e.message)))?;
    if boot.is_empty() {
        return Ok(());
    }
    let Some((mem_kb, nodes)) = host_memory(host) else {
        warnings.push(
            "/proc/meminfo has no MemTotal: the huge pages reserved at boot were not checked against the host's memory"
                .into(),
        );
        return Ok(());
    };
    let errors = crate::policy::check_boot_hugepages(&boot, mem_kb, &nodes);
    if errors.is_empty() {
        return Ok(());
    }
    Err(format!("option args: hugepages: {}; nothing changed", errors.join("; ")))
}

/// Whether `prog` is found on PATH.
fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

/// What the task would change. Reads the host, writes nothing.
pub fn plan(host: &Host, params: &Params) -> Result<Plan> {
    let backup_id = match &params.backup_id {
        Some(id) => {
            crate::backup_id::validate(id)
                .map_err(|e| Failure::new(cap_echoes(format!("option backup_id: {e}"), params)))?;
            id.clone()
        }
        None => crate::backup_id::new_id(),
    };
    if params.bootloader != "auto" && !boot::LAYOUTS.contains(&params.bootloader.as_str()) {
        return Err(Failure::new(format!(
            "option bootloader: {} is not one of auto, {}",
            crate::protocol::cap_text(&format!("{:?}", params.bootloader)),
            boot::LAYOUTS.join(", ")
        ))
        .into());
    }
    // Lengths first: the policy reads every word of a value, and nothing longer than a
    // command line needs reading.
    check_limits(params).map_err(Failure::new)?;
    let edit = build_edit(params).map_err(|e| Failure::new(cap_echoes(e, params)))?;
    let bp = boot::plan(host, &params.bootloader, &edit).map_err(|e| Failure::new(format!("{e:#}")))?;
    let mut warnings = bp.warnings.clone();
    check_hugepage_reserve(host, &edit, &bp.configured_after, &mut warnings).map_err(Failure::new)?;

    let running = running_cmdline(host, &mut warnings);
    let pending = running.as_ref().map(|run| pending_keys(&edit, run, &bp.configured_after)).unwrap_or_default();

    let mut actions = Vec::new();
    let changes = arg_changes(&bp.configured_before, &bp.configured_after);
    // First the arguments themselves, one per line, for a reviewer; then each file's diff.
    let mut diff = Vec::new();
    if bp.files.iter().any(|f| f.before != f.after) {
        diff.push(changes.diff());
    }
    let mut grub_defaults_changed = false;
    for f in bp.files.iter().filter(|f| f.before != f.after) {
        grub_defaults_changed |= f.path == "/etc/default/grub";
        diff.push(engine::text::diff(&f.path, &f.path, &f.before, &f.after));
        actions.push(Action::WriteFile { path: f.path.clone(), contents: f.after.clone() });
    }
    let mut grub_cfg = None;
    if let (Some(r), true) = (&bp.regenerate, grub_defaults_changed) {
        let command = r.argv.join(" ");
        let note = match host.system().plan_command(r.argv.clone()) {
            Err(why) => Some(format!("skipped: {why}; run `{command}` on the host before rebooting")),
            Ok(argv) if !on_path(&argv[0]) => {
                return Err(Failure::new(format!(
                    "{} is not installed: cannot regenerate {} after editing /etc/default/grub; nothing changed",
                    argv[0],
                    crate::protocol::cap_text(&r.cfg)
                ))
                .into());
            }
            Ok(argv) => {
                actions.push(Action::Run { argv, rewrites: vec![r.cfg.clone()] });
                None
            }
        };
        if let Some(n) = &note {
            warnings.push(format!("{}: {n}", crate::protocol::cap_text(&r.cfg)));
        }
        grub_cfg = Some(GrubCfg { path: r.cfg.clone(), command, regenerated: false, note });
    }
    Ok(Plan {
        layout: bp.layout,
        actions,
        diff,
        changes,
        running,
        configured: bp.configured_after,
        pending,
        grub_cfg,
        warnings,
        backup_id,
    })
}

fn to_map(c: &Cmdline) -> BTreeMap<String, Vec<Option<String>>> {
    c.to_map()
}

/// The module, as the engine's runner sees it.
pub struct KernelArgs;

impl Module for KernelArgs {
    const NAME: &'static str = MODULE;
    const BOOT: bool = true;
    type Params = Params;

    fn backup_id(params: &Params) -> Option<&str> {
        params.backup_id.as_deref()
    }

    fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
        let p = plan(host, params)?;
        let mut out = engine::Plan {
            actions: p.actions,
            diff: p.diff,
            warnings: p.warnings,
            reboot_required: !p.pending.is_empty(),
            ..engine::Plan::default()
        };
        out.field("bootloader", &p.layout);
        out.field("running", p.running.as_ref().map(to_map));
        out.field("configured", to_map(&p.configured));
        out.field("pending", &p.pending);
        out.field("changes", &p.changes);
        out.field("grub_cfg", &p.grub_cfg);
        out.after_apply(|_, plan, ran| {
            if let Some(g) = plan.fields.get_mut("grub_cfg").filter(|g| g.is_object()) {
                let runs = g["note"].is_null();
                if ran == engine::Ran::Applied {
                    g["regenerated"] = Value::Bool(runs);
                } else if runs {
                    g["note"] = Value::String("check mode: not run".into());
                }
            }
        });
        Ok(out)
    }
}

pub fn run(host: &Host, meta: &Meta, params: Params) -> Result<Outcome> {
    engine::run::<KernelArgs>(host, meta, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: serde_json::Value) -> std::result::Result<Params, String> {
        let m = v.as_object().unwrap().clone();
        crate::protocol::parse_params::<Params>(m).map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn args_keep_their_order_and_refuse_yaml_booleans() {
        let p = params(
            serde_json::json!({"args": {"hugepagesz": "1G", "hugepages": 16, "nosoftlockup": "", "nowatchdog": null}}),
        )
        .unwrap();
        let keys: Vec<&str> = p.args.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["hugepagesz", "hugepages", "nosoftlockup", "nowatchdog"]);
        assert_eq!(p.args[1].1.as_deref(), Some("16"));
        assert_eq!(p.args[2].1, None);
        let e = params(serde_json::json!({"args": {"mitigations": false}})).unwrap_err();
        assert!(e.contains("mitigations: got the boolean false; quote the value"), "{e}");
    }

    #[test]
    fn refusals_name_the_argument() {
        let edit = |v| build_edit(&params(v).unwrap());
        assert!(
            edit(serde_json::json!({"args": {"mitigations": "off"}}))
                .unwrap_err()
                .contains("allow_dangerous_mitigations")
        );
        assert!(edit(serde_json::json!({"args": {"mitigations": "off"}, "allow_dangerous_mitigations": true})).is_ok());
        assert!(edit(serde_json::json!({"args": {"mitigations": "auto"}})).is_ok());
        assert!(edit(serde_json::json!({"args": {"nopti": null}})).is_err());
        assert!(edit(serde_json::json!({"remove": ["root"]})).unwrap_err().contains("removing root is refused"));
        assert!(edit(serde_json::json!({"remove": ["root=/dev/sda1"]})).is_err());
        assert!(edit(serde_json::json!({"remove": ["ro"]})).is_err());
        assert!(edit(serde_json::json!({"remove": ["BOOT_IMAGE"]})).is_err());
        assert!(edit(serde_json::json!({"args": {"root": "/dev/sda1"}})).is_err());
        assert!(edit(serde_json::json!({"args": {"a b": "1"}})).unwrap_err().contains("not a kernel parameter name"));
        assert!(edit(serde_json::json!({"args": {"a;reboot": "1"}})).is_err());
        assert!(edit(serde_json::json!({"args": {"x": "$(reboot)"}})).is_err());
        assert!(edit(serde_json::json!({"args": {"dyndbg": "file a.c +p; func b +p"}})).is_ok());
    }

    #[test]
    fn boot_breaking_arguments_are_refused_even_with_consent() {
        let edit = |v| build_edit(&params(v).unwrap());
        for (k, v) in [
            ("init", serde_json::json!("/bin/sh")),
            ("rd.break", serde_json::Value::Null),
            ("single", serde_json::Value::Null),
            ("systemd.unit", serde_json::json!("emergency.target")),
            ("selinux", serde_json::json!(0)),
            ("noapic", serde_json::json!("")),
            ("nosmp", serde_json::Value::Null),
        ] {
            let e = edit(serde_json::json!({"args": {k: v}, "allow_dangerous_mitigations": true})).unwrap_err();
            assert!(e.starts_with(&format!("option args: {k}")) && e.contains("is refused"), "{e}");
        }
        for arg in ["tsa", "vmscape", "indirect_target_selection"] {
            assert!(
                edit(serde_json::json!({"args": {arg: "off"}})).unwrap_err().contains("allow_dangerous_mitigations")
            );
        }
        assert!(edit(serde_json::json!({"args": {"kpti": "no"}})).is_err());
        assert!(edit(serde_json::json!({"args": {"kvm-intel.vmentry_l1d_flush": "never"}})).is_err());
        // Removing init= brings back the default init: allowed.
        assert!(edit(serde_json::json!({"remove": ["init"]})).is_ok());
    }
}
