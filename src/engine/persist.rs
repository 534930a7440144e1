//! Persistence of run-time state across reboots (`persist: true`).
//!
//! Run-time settings (ethtool, IRQ affinity, CPU and memory knobs) are lost at boot. A module
//! run with `persist: true` writes its desired state — the module's own options, minus
//! `root`, `backup_id` and `persist` — to `/etc/lltune/state.d/<module>.json`, and installs
//! and enables one oneshot unit, `lltune-restore.service`, that runs `lltune reapply` at
//! boot: every state file is applied again through the same module code. The state file,
//! the unit and its enablement link are ordinary journaled items, so rollback removes them.
//!
//! The unit runs the CLI at `CLI_PATH` (`/usr/local/sbin/lltune`): `lltune apply` installs
//! its own binary there when it persists (with the first persisting step of its
//! transaction, `runner_action`); with Ansible, the collection's `tune` role copies
//! it. A missing CLI makes the unit fail visibly at boot (`systemctl status`), never silently.
//!
//! NIC and IRQ settings are also lost when a NIC is re-created after boot (driver reload,
//! hot-plug, a reset on some drivers). With a state file of `lltune_nic` or `lltune_irq`,
//! persistence also installs a udev rule (`UDEV_RULE_PATH`) and a template unit
//! (`REAPPLY_UNIT_PATH`): when a netdev appears, udev pulls in
//! `lltune-reapply@<name>.service` through the device's `SYSTEMD_WANTS`, which runs
//! `lltune reapply --interface <name>` (that interface's NIC settings and IRQ rules only).
//! Why not `RUN+=`: udev kills RUN programs when the event is handled (and its sandbox may
//! keep them from the journal's folder); udev(7) says to start long work as a unit pulled
//! in with `SYSTEMD_WANTS`, which also orders it after `lltune-restore.service` at boot.

use anyhow::Result;
use serde_json::{Map, Value};

use crate::engine::state::Action;
use crate::host::Host;
use crate::protocol::Diff;

/// Folder of the state files, one per module.
pub const STATE_DIR: &str = "/etc/lltune/state.d";
/// The unit that re-applies them at boot.
pub const UNIT_PATH: &str = "/etc/systemd/system/lltune-restore.service";
/// Its enablement, as `systemctl enable` makes it (`WantedBy=multi-user.target`).
pub const WANTS_LINK: &str = "/etc/systemd/system/multi-user.target.wants/lltune-restore.service";
/// The udev rule that starts `REAPPLY_UNIT_PATH` for a netdev that appears.
pub const UDEV_RULE_PATH: &str = "/etc/udev/rules.d/99-lltune.rules";
/// The template unit that re-applies one interface (instance: the interface name).
pub const REAPPLY_UNIT_PATH: &str = "/etc/systemd/system/lltune-reapply@.service";
/// The modules whose state a re-created NIC needs again: their state files bring the udev
/// rule and the template unit.
pub const HOTPLUG_MODULES: &[&str] = &[crate::names::NIC, crate::names::IRQ];
/// The folders persistence writes in (cleared of a killed run's temp files by every run
/// that persists).
pub const DIRS: &[&str] =
    &[STATE_DIR, "/etc/systemd/system", "/etc/systemd/system/multi-user.target.wants", "/etc/udev/rules.d"];
/// Where the unit expects the lltune CLI.
pub const CLI_PATH: &str = "/usr/local/sbin/lltune";
/// Options that are about one run, not about the state.
const RUN_OPTIONS: &[&str] = &["root", "backup_id", "persist"];
/// The order `reapply` runs modules in: `names::ORDER`, the one `lltune apply` runs them in.
/// Unknown modules come last, by name.
use crate::names::ORDER;

/// How the unit's text begins: what tells lltune's unit from another one of the same name.
pub const UNIT_MARK: &str = "# Managed by lltune: ";

/// A state file's name in `STATE_DIR`: `<module>.json`, not hidden (temp files are).
pub fn is_state_name(name: &str) -> bool {
    name.ends_with(".json") && !name.starts_with('.')
}

/// The unit file's text.
pub fn unit_text() -> String {
    format!(
        "{UNIT_MARK}re-applies the run-time tuning in {STATE_DIR} at boot.\n\
         [Unit]\n\
         Description=Re-apply lltune run-time tuning (NICs, IRQs, CPUs, memory)\n\
         DefaultDependencies=no\n\
         After=systemd-udev-settle.service systemd-modules-load.service local-fs.target network-pre.target\n\
         Wants=systemd-udev-settle.service\n\
         Before=network.target network-online.target multi-user.target\n\
         ConditionDirectoryNotEmpty={STATE_DIR}\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         ExecStart={CLI_PATH} reapply\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// The udev rule's text. `$name` is the interface's name after the naming rules (80-*
/// rules set it; the kernel's name is `%k`); it goes into the instance of the template unit,
/// which passes it to the CLI raw (`%i`: no unescaping, so `-` stays `-`). `TAG+="systemd"`
/// makes the netdev a device unit (99-systemd.rules does too), whose `SYSTEMD_WANTS` systemd
/// starts when the device appears.
pub fn udev_rule_text() -> String {
    format!(
        "{UNIT_MARK}re-applies a network interface's persisted NIC and IRQ tuning ({STATE_DIR}) when it appears.\n\
         # The work runs in lltune-reapply@<interface>.service, not in RUN: udev kills RUN programs after the event.\n\
         ACTION==\"add\", SUBSYSTEM==\"net\", KERNEL!=\"lo\", TAG+=\"systemd\", ENV{{SYSTEMD_WANTS}}+=\"lltune-reapply@$name.service\"\n"
    )
}

/// The template unit's text: one run of `lltune reapply --interface <instance>`, after the
/// boot-time restore (which re-applies everything), waiting for the root's lock if another
/// lltune run holds it.
pub fn reapply_unit_text() -> String {
    format!(
        "{UNIT_MARK}re-applies the persisted NIC and IRQ tuning of one interface; started by {UDEV_RULE_PATH}.\n\
         [Unit]\n\
         Description=Re-apply lltune NIC and IRQ tuning to interface %i\n\
         After=lltune-restore.service\n\
         ConditionDirectoryNotEmpty={STATE_DIR}\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={CLI_PATH} reapply --interface %i\n"
    )
}

/// A module's `persist_state`: its options as a JSON map when `persist` is on.
pub fn options_of<P: serde::Serialize>(params: &P, persist: bool) -> Option<Map<String, Value>> {
    match serde_json::to_value(params) {
        Ok(Value::Object(m)) if persist => Some(m),
        _ => None,
    }
}

/// The state file of `module` for the options `params` (as the module received them).
pub fn state_text(module: &str, params: &Map<String, Value>) -> String {
    let kept: Map<String, Value> = params
        .iter()
        .filter(|(k, _)| !RUN_OPTIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let doc = serde_json::json!({"module": module, "params": kept});
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// The writes that make the state persist, with their diff: nothing when all is in place.
pub fn actions(host: &Host, module: &str, params: &Map<String, Value>) -> Result<(Vec<Action>, Vec<Diff>)> {
    let mut actions = Vec::new();
    let mut diff = Vec::new();
    let state_path = format!("{STATE_DIR}/{module}.json");
    let mut files = vec![(state_path, state_text(module, params)), (UNIT_PATH.to_string(), unit_text())];
    if HOTPLUG_MODULES.contains(&module) {
        // The unit before the rule that names it.
        files.push((REAPPLY_UNIT_PATH.to_string(), reapply_unit_text()));
        files.push((UDEV_RULE_PATH.to_string(), udev_rule_text()));
    }
    for (path, want) in files {
        let now = host.read_bytes_opt(&path)?;
        if now.as_deref() != Some(want.as_bytes()) {
            diff.push(crate::engine::text::file_diff(&path, now.as_deref(), want.as_bytes()));
            actions.push(Action::WriteFile { path, contents: want.into_bytes() });
        }
    }
    if host.read_link(WANTS_LINK).as_deref() != Some(UNIT_PATH) {
        diff.push(Diff {
            before_header: format!("link {WANTS_LINK}"),
            after_header: format!("link {WANTS_LINK}"),
            before: host.read_link(WANTS_LINK).map(|t| format!("{WANTS_LINK} -> {t}\n")).unwrap_or_default(),
            after: format!("{WANTS_LINK} -> {UNIT_PATH}\n"),
        });
        actions.push(Action::SetLink { path: WANTS_LINK.into(), to: UNIT_PATH.into() });
    }
    Ok((actions, diff))
}

/// The write that installs `bytes` (the running lltune CLI) at `CLI_PATH`, mode 0755 owned
/// by root, and its diff (sizes, not the bytes); `None` when the same bytes are there.
/// `engine::Transaction::install_boot_runner` adds it to the first step that persists.
pub fn runner_action(host: &Host, bytes: &[u8]) -> Option<(Action, Diff)> {
    let now = host.read_bytes_opt(CLI_PATH).ok().flatten();
    if now.as_deref() == Some(bytes) {
        return None;
    }
    let diff = Diff {
        before_header: CLI_PATH.into(),
        after_header: CLI_PATH.into(),
        before: now.map(|b| format!("(another program, {} bytes)\n", b.len())).unwrap_or_default(),
        after: format!("(this lltune, {} bytes, mode 0755)\n", bytes.len()),
    };
    let meta = crate::host::FileMeta { mode: 0o755, uid: 0, gid: 0, xattrs: Default::default() };
    Some((Action::RestoreFile { path: CLI_PATH.into(), contents: bytes.to_vec(), meta }, diff))
}

/// One state file as `reapply` reads it.
#[derive(Debug, Clone)]
pub struct Saved {
    pub path: String,
    pub module: String,
    pub params: Map<String, Value>,
}

/// The most bytes of one state file: a module's options, which are at most as large as the
/// module's arguments (`protocol::MAX_ARGS_BYTES`).
pub const MAX_STATE_BYTES: u64 = crate::protocol::MAX_ARGS_BYTES;

/// A state file's text, read no further than `MAX_STATE_BYTES` (a larger file is refused
/// before more of it is read, whatever its size).
fn read_bounded(host: &Host, path: &str) -> Result<String, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    host.open_stream(path)
        .map_err(|e| e.to_string())?
        .take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(format!(
            "{path}: larger than {MAX_STATE_BYTES} bytes (1 MiB), more than any module's options; not re-applied"
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("{path}: not UTF-8 text; not re-applied"))
}

/// Every state file under `root`, in `ORDER`. A file that is not a state file is an error
/// naming it (reapply reports it and goes on with the others).
pub fn load_all(host: &Host) -> Vec<Result<Saved, String>> {
    let mut out: Vec<Result<Saved, String>> = Vec::new();
    for name in host.list_or_empty(STATE_DIR) {
        if !is_state_name(&name) {
            continue;
        }
        let path = format!("{STATE_DIR}/{name}");
        let parsed = read_bounded(host, &path).and_then(|text| {
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: not JSON: {e}"))?;
            let module = v.get("module").and_then(Value::as_str).ok_or(format!("{path}: no \"module\""))?;
            let params = v.get("params").and_then(Value::as_object).ok_or(format!("{path}: no \"params\" mapping"))?;
            if format!("{module}.json") != name {
                return Err(format!("{path}: holds the state of {module}, not of {}", name.trim_end_matches(".json")));
            }
            Ok(Saved { path: path.clone(), module: module.to_string(), params: params.clone() })
        });
        out.push(parsed);
    }
    let rank = |r: &Result<Saved, String>| match r {
        Ok(s) => (ORDER.iter().position(|m| *m == s.module).unwrap_or(ORDER.len()), s.module.clone()),
        Err(_) => (ORDER.len() + 1, String::new()),
    };
    crate::sort::sort_by_key(&mut out, rank);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_unit_and_link_then_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        let params: Map<String, Value> = serde_json::from_str(
            r#"{"rules": [{"match": {"all": true}, "cpus": "0-1"}], "root": "/x", "backup_id": "b", "persist": true}"#,
        )
        .unwrap();
        // A CPU state brings the restore unit and its link, no udev rule.
        let (cpu, _) = actions(&host, "lltune_cpu", &params).unwrap();
        let paths: Vec<String> = cpu.iter().flat_map(|a| a.items()).map(|i| i.path().into_owned()).collect();
        assert_eq!(paths.len(), 3, "{paths:?}");
        assert!(!paths.iter().any(|p| p == UDEV_RULE_PATH || p == REAPPLY_UNIT_PATH), "{paths:?}");
        // An IRQ state brings them too, the unit before the rule that names it.
        let (actions, diff) = actions(&host, "lltune_irq", &params).unwrap();
        assert_eq!(actions.len(), 5);
        assert_eq!(diff.len(), 5);
        let paths: Vec<String> = actions.iter().flat_map(|a| a.items()).map(|i| i.path().into_owned()).collect();
        let at = |p: &str| paths.iter().position(|x| x == p).unwrap_or_else(|| panic!("{p} not in {paths:?}"));
        assert!(at(REAPPLY_UNIT_PATH) < at(UDEV_RULE_PATH));
        crate::engine::carry_out(&host, None, &actions).unwrap();
        let text = host.read("/etc/lltune/state.d/lltune_irq.json").unwrap();
        assert!(
            !text.contains("backup_id") && !text.contains("\"root\"") && text.contains("\"cpus\": \"0-1\""),
            "{text}"
        );
        assert!(host.read(UNIT_PATH).unwrap().contains("ExecStart=/usr/local/sbin/lltune reapply"));
        assert_eq!(host.read_link(WANTS_LINK).as_deref(), Some(UNIT_PATH));
        assert_eq!(host.read(UDEV_RULE_PATH).unwrap(), udev_rule_text());
        assert!(
            host.read(REAPPLY_UNIT_PATH).unwrap().contains("ExecStart=/usr/local/sbin/lltune reapply --interface %i\n")
        );
        assert!(actions_after(&host, &params).is_empty());
        let all = load_all(&host);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].as_ref().unwrap().module, "lltune_irq");
    }

    fn actions_after(host: &Host, params: &Map<String, Value>) -> Vec<Action> {
        actions(host, "lltune_irq", params).unwrap().0
    }
}
