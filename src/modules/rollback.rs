//! lltune_rollback: restores a backup bundle written by the changing modules
//! (`<root>/var/lib/lltune/backups/<id>/journal.json`), newest entry first: files byte for
//! byte with their mode and owner, files that did not exist removed, runtime values written
//! back. Rollback is always explicit; nothing calls it on its own.
//!
//! The surprising part: restoring boot configuration does not change the running kernel,
//! so the result says `reboot_required` when a boot file was put back. A grub.cfg that the
//! apply run regenerated is in the bundle too and comes back byte for byte; when only
//! /etc/default/grub is there (the apply ran against another root), grub.cfg is
//! regenerated on a live host, as after any edit of the defaults.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::engine::journal::{Entry, Journal, decode};
use crate::engine::persist;
use crate::engine::state::{self, Action, State, same_kernel_value};
use crate::engine::{self, Module};
use crate::host::system::Kernel;
use crate::host::{Host, Node};
use crate::protocol::{Diff, Failure, Meta, Outcome, cap_text};
use crate::sys::ethtool_group;

pub const MODULE: &str = crate::names::ROLLBACK;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A bundle id (`20261122T101500Z-4242`) or path (`/var/lib/lltune/backups/<id>`).
    pub backup: String,
}

/// One item the rollback puts back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restored {
    pub path: String,
    /// `file`, `link`, `removed` (did not exist before), `runtime`, `ethtool`, `unit`
    /// (started or stopped) or `thread`.
    pub kind: String,
    pub module: String,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub diff: Vec<Diff>,
    pub restored: Vec<Restored>,
    pub reboot_required: bool,
    pub warnings: Vec<String>,
    /// Entries that cannot be restored (a missing copy); everything else still is.
    pub not_restored: Vec<String>,
    /// Threads whose scheduling the bundle holds that no longer run (nothing to restore).
    pub gone: Vec<String>,
}

/// A link entry's target as bytes: `Some(None)` for no link, `None` for a bad escape.
fn decode_opt(text: Option<&str>, escaped: bool) -> Option<Option<Vec<u8>>> {
    match text {
        None => Some(None),
        Some(t) => decode(t, escaped).map(Some),
    }
}

/// The persistence that modules share (`engine::persist`): one restore unit and its link
/// serve every state file in /etc/lltune/state.d, whichever bundle installed them. Paths are
/// canonical, as the journal names them.
struct Shared {
    unit: String,
    link: String,
    state_dir: String,
    /// The state files left once this rollback is done.
    remaining: std::collections::BTreeSet<String>,
    /// A state file this rollback removes, and the module that wrote it.
    removes: Option<(String, String)>,
    /// The udev rule and the per-interface unit (`persist::HOTPLUG_MODULES`' state brings
    /// them): they stay while a state file of those modules remains.
    hotplug: Vec<String>,
    /// A state file of those modules this rollback removes, and its module.
    removes_hotplug: Option<(String, String)>,
}

impl Shared {
    fn of(host: &Host, entries: &[Entry]) -> Shared {
        let canon = |p: &str, follow: bool| host.resolve(p, follow).unwrap_or_else(|_| p.to_string());
        let mut s = Shared {
            unit: canon(persist::UNIT_PATH, true),
            link: canon(persist::WANTS_LINK, false),
            state_dir: canon(persist::STATE_DIR, true),
            remaining: Default::default(),
            removes: None,
            hotplug: vec![canon(persist::REAPPLY_UNIT_PATH, true), canon(persist::UDEV_RULE_PATH, true)],
            removes_hotplug: None,
        };
        let dir = s.state_dir.clone();
        s.remaining = host
            .list_or_empty(&dir)
            .into_iter()
            .filter(|n| persist::is_state_name(n))
            .map(|n| format!("{dir}/{n}"))
            .collect();
        for e in entries {
            if let Entry::File { path, previous, module, .. } = e {
                if !s.is_state_file(path) {
                    continue;
                }
                match previous {
                    None => {
                        if s.remaining.remove(path) {
                            s.removes = Some((path.clone(), module.clone()));
                            if s.is_hotplug_state(path) {
                                s.removes_hotplug = Some((path.clone(), module.clone()));
                            }
                        }
                    }
                    Some(_) => {
                        s.remaining.insert(path.clone());
                    }
                }
            }
        }
        s
    }

    fn is_state_file(&self, path: &str) -> bool {
        path.strip_prefix(&self.state_dir)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|n| !n.contains('/') && persist::is_state_name(n))
    }

    /// The state file of a module whose settings a re-created NIC needs.
    fn is_hotplug_state(&self, path: &str) -> bool {
        persist::HOTPLUG_MODULES.iter().any(|m| path == format!("{}/{m}.json", self.state_dir))
    }

    /// The state files of those modules left once this rollback is done.
    fn hotplug_remaining(&self) -> Vec<&str> {
        self.remaining.iter().filter(|p| self.is_hotplug_state(p)).map(String::as_str).collect()
    }

    /// True for the unit or its link while a state file remains, and for the udev rule and
    /// its unit while a NIC or IRQ state file remains: they stay.
    fn keeps(&self, path: &str) -> bool {
        (!self.remaining.is_empty() && (path == self.unit || path == self.link))
            || (self.hotplug.iter().any(|h| h == path) && !self.hotplug_remaining().is_empty())
    }
}

/// True when the folder `dir` holds nothing once `actions` have run (or cannot be listed:
/// removing a folder is "if empty" anyway).
fn emptied(host: &Host, actions: &[Action], dir: &str) -> bool {
    let Ok(names) = host.list(dir) else { return true };
    let gone: std::collections::HashSet<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::RemoveFile { path } | Action::RemoveLink { path } | Action::RemoveDir { path } => {
                Some(path.as_str())
            }
            _ => None,
        })
        .collect();
    names.iter().all(|n| gone.contains(format!("{dir}/{n}").as_str()))
}

/// What restoring `entries` (in reverse order) would do. Reads, writes nothing.
pub fn plan_entries(host: &Host, journal: &Journal, entries: &[Entry]) -> Result<Plan> {
    let mut plan = Plan {
        actions: Vec::new(),
        diff: Vec::new(),
        restored: Vec::new(),
        reboot_required: false,
        warnings: Vec::new(),
        not_restored: Vec::new(),
        gone: Vec::new(),
    };
    let mut restored_grub_defaults = false;
    // Units are started or stopped last, after their links are back and systemd reloaded
    // them (a unit cannot start while it is still masked).
    let mut unit_actions = Vec::new();
    let mut unit_links = false;
    let shared = Shared::of(host, entries);
    let mut kept_unit = false;
    let mut kept_hotplug = false;
    for entry in entries.iter().rev() {
        if matches!(entry, Entry::File { .. } | Entry::Link { .. }) && shared.keeps(entry.path()) {
            if shared.hotplug.iter().any(|h| h == entry.path()) {
                kept_hotplug = true;
            } else {
                kept_unit = true;
            }
            continue;
        }
        if let Entry::Unit { unit, module, active } = entry {
            let asked = match host.system().unit_active(unit) {
                Ok(asked) => asked,
                Err(why) => {
                    plan.warnings.push(format!(
                        "{unit}: run-time state not restored ({why}); it was {}",
                        if *active { "active" } else { "inactive" }
                    ));
                    continue;
                }
            };
            match asked {
                Ok(now) if now == *active => {}
                Ok(_) => {
                    let word = |a: bool| if a { "active\n" } else { "inactive\n" };
                    plan.diff.push(Diff {
                        before_header: format!("unit {unit}"),
                        after_header: format!("unit {unit}"),
                        before: word(!*active).into(),
                        after: word(*active).into(),
                    });
                    unit_actions.push(Action::SetUnit { unit: unit.clone(), active: *active });
                    plan.restored.push(Restored { path: unit.clone(), kind: "unit".into(), module: module.clone() });
                }
                Err(e) => plan.not_restored.push(format!("{unit} ({e})")),
            }
            continue;
        }
        let item = entry.item();
        let now = state::read(host, &item)
            .map_err(|e| Failure::new(format!("reading the current state of {}: {e}", item.path())));
        match entry {
            Entry::File { path, module, boot, previous } => {
                let now = match now {
                    Ok(State::File(f)) => f,
                    Ok(_) => None,
                    Err(e) => {
                        plan.not_restored.push(format!("{path} ({e:#})"));
                        continue;
                    }
                };

                match previous {
                    Some(saved) => {
                        let bytes = match journal.blob(host, saved) {
                            Ok(b) => b,
                            Err(e) => {
                                plan.not_restored.push(format!("{path} ({})", cap_text(&format!("{e:#}"))));
                                continue;
                            }
                        };
                        let meta = saved.meta();
                        if now.as_ref().is_some_and(|(b, m)| *b == bytes && *m == meta) {
                            continue;
                        }
                        let mode_note = match &now {
                            Some((_, m)) if *m != meta => format!(
                                " (mode {:04o} {}:{} -> {:04o} {}:{})",
                                m.mode, m.uid, m.gid, meta.mode, meta.uid, meta.gid
                            ),
                            _ => String::new(),
                        };
                        plan.diff.push(crate::engine::text::diff(
                            if now.is_some() { path.clone() } else { format!("{path} (absent)") },
                            format!("{path}{mode_note}"),
                            now.as_ref().map(|(b, _)| b.as_slice()).unwrap_or_default(),
                            &bytes,
                        ));
                        plan.actions.push(Action::RestoreFile {
                            path: path.clone(),
                            contents: bytes,
                            meta: meta.clone(),
                        });
                        plan.restored.push(Restored {
                            path: path.clone(),
                            kind: "file".into(),
                            module: module.clone(),
                        });
                    }
                    None => {
                        if now.is_none() {
                            continue;
                        }
                        plan.diff.push(crate::engine::text::diff(
                            path.clone(),
                            format!("{path} (absent)"),
                            now.as_ref().map(|(b, _)| b.as_slice()).unwrap_or_default(),
                            b"",
                        ));
                        plan.actions.push(Action::RemoveFile { path: path.clone() });
                        plan.restored.push(Restored {
                            path: path.clone(),
                            kind: "removed".into(),
                            module: module.clone(),
                        });
                    }
                }
                plan.reboot_required |= *boot;
                restored_grub_defaults |= path == "/etc/default/grub";
            }
            Entry::Link { path, module, boot, previous, escaped } => {
                let Some(previous) = decode_opt(previous.as_deref(), *escaped) else {
                    plan.not_restored.push(format!("{path} (the bundle's link target is not an escaped text)"));
                    continue;
                };
                unit_links |= path.starts_with("/etc/systemd/") || path.starts_with("/run/systemd/");
                let now = match now {
                    Ok(State::Link(l)) => l,
                    Ok(_) => continue,
                    Err(e) => {
                        plan.not_restored.push(format!("{path} ({e:#})"));
                        continue;
                    }
                };
                if now == previous {
                    continue;
                }
                let show = |l: &Option<Vec<u8>>| {
                    l.as_ref().map(|t| [format!("{path} -> ").as_bytes(), t, b"\n"].concat()).unwrap_or_default()
                };
                let header = format!("link {path}");
                plan.diff.push(crate::engine::text::diff(&header, &header, &show(&now), &show(&previous)));
                plan.actions.push(match &previous {
                    Some(to) => Action::RestoreLink { path: path.clone(), to: to.clone() },
                    None => Action::RemoveLink { path: path.clone() },
                });
                plan.restored.push(Restored {
                    path: path.clone(),
                    kind: if previous.is_some() { "link".into() } else { "removed".into() },
                    module: module.clone(),
                });
                plan.reboot_required |= *boot;
            }
            Entry::Dir { path, module } => {
                // Removed after the files in it (entries run newest first), if empty then:
                // a folder that keeps something (another module's state file, a file put
                // there since) stays, and is not reported as restored.
                if !matches!(now, Ok(State::Dir(true))) {
                    continue;
                }
                if !emptied(host, &plan.actions, path) {
                    continue;
                }
                plan.actions.push(Action::RemoveDir { path: path.clone() });
                plan.restored.push(Restored { path: path.clone(), kind: "folder".into(), module: module.clone() });
            }
            Entry::Runtime { path, module, previous, escaped } => {
                let Some(previous) = decode(previous, *escaped) else {
                    plan.not_restored.push(format!("{path} (the bundle's value is not an escaped text)"));
                    continue;
                };
                let now = match now {
                    Ok(State::Kernel(v)) => v,
                    Ok(_) => continue,
                    Err(e) => {
                        // A per-interface key of an interface that is gone, for instance.
                        plan.warnings.push(format!("{e:#}; not restored"));
                        continue;
                    }
                };
                if same_kernel_value(&now, &previous) {
                    continue;
                }
                // Whitespace runs shown as one space, as they are compared.
                let words = |b: &[u8]| {
                    let mut v =
                        b.split(u8::is_ascii_whitespace).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(&b' ');
                    v.push(b'\n');
                    v
                };
                let header = format!("runtime {path}");
                plan.diff.push(crate::engine::text::diff(&header, &header, &words(&now), &words(&previous)));
                plan.actions.push(Action::RestoreKernel { path: path.clone(), value: previous });
                plan.restored.push(Restored { path: path.clone(), kind: "runtime".into(), module: module.clone() });
            }
            Entry::Ethtool { ifname, group, module, previous } => {
                let now = match now {
                    Ok(State::Ethtool(v)) => v,
                    Ok(_) => continue,
                    Err(e) => {
                        // An interface that is gone, or a bundle of a live host rolled back on a tree.
                        plan.warnings.push(format!("{e:#}; not restored"));
                        continue;
                    }
                };
                let changes = ethtool_group::changes(*group, &now, previous);
                if changes.is_empty() {
                    continue;
                }
                let header = format!("ethtool {} {ifname}", group.show_flag());
                let lines = |from: &serde_json::Value| -> String {
                    changes
                        .keys()
                        .map(|k| format!("{k}: {}\n", from.get(k).unwrap_or(&serde_json::Value::Null)))
                        .collect()
                };
                plan.diff.push(Diff {
                    before_header: header.clone(),
                    after_header: header,
                    before: lines(&now),
                    after: lines(previous),
                });
                plan.actions.push(Action::SetEthtool { ifname: ifname.clone(), group: *group, changes });
                plan.restored.push(Restored {
                    path: item.path().into_owned(),
                    kind: "ethtool".into(),
                    module: module.clone(),
                });
            }
            Entry::Unit { .. } => {}
            Entry::Thread { thread, module, previous } => {
                let now = match now {
                    Ok(State::Thread(Some(now))) => now,
                    Ok(_) => {
                        plan.gone.push(thread.to_string());
                        continue;
                    }
                    Err(e) => {
                        plan.warnings.push(format!("{e:#}; not restored"));
                        continue;
                    }
                };
                if now == *previous {
                    continue;
                }
                if let Err(why) = host.system().can_act() {
                    plan.warnings.push(format!("thread {thread}: not restored ({why}); it was {}", previous.show()));
                    continue;
                }
                let header = format!("thread {thread}");
                plan.diff.push(Diff {
                    before_header: header.clone(),
                    after_header: header,
                    before: format!("{}\n", now.show()),
                    after: format!("{}\n", previous.show()),
                });
                plan.actions.push(Action::SetThread { thread: thread.clone(), to: previous.clone() });
                plan.restored.push(Restored {
                    path: item.path().into_owned(),
                    kind: "thread".into(),
                    module: module.clone(),
                });
            }
        }
    }
    if !plan.gone.is_empty() {
        plan.warnings.push(format!(
            "{} thread(s) of the bundle no longer run, so there is nothing to restore: {}",
            plan.gone.len(),
            cap_text(&plan.gone.join(", "))
        ));
    }
    if kept_unit {
        let names: Vec<&str> = shared.remaining.iter().map(String::as_str).collect();
        plan.warnings.push(format!(
            "kept {} and its enablement link: {} remain(s) and is re-applied at boot by it; the unit goes with the last state file",
            persist::UNIT_PATH,
            cap_text(&names.join(", "))
        ));
    }
    if kept_hotplug {
        plan.warnings.push(format!(
            "kept {} and {}: {} remain(s) and is re-applied by them when a NIC appears; they go with the last NIC or IRQ state file",
            persist::UDEV_RULE_PATH,
            persist::REAPPLY_UNIT_PATH,
            cap_text(&shared.hotplug_remaining().join(", "))
        ));
    }
    // The last NIC or IRQ state file goes: the udev rule and its unit go with it, even when
    // an earlier bundle installed them (removed before the units' folder is looked at).
    let hotplug_in_bundle = entries.iter().any(|e| shared.hotplug.iter().any(|h| h == e.path()));
    if let (true, Some((state_file, module)), false) =
        (shared.hotplug_remaining().is_empty(), &shared.removes_hotplug, hotplug_in_bundle)
    {
        let mut removed = Vec::new();
        for path in &shared.hotplug {
            if let Ok(Node::File(ref b, _)) = host.node(path) {
                if b.starts_with(persist::UNIT_MARK.as_bytes()) {
                    plan.diff.push(crate::engine::text::diff(path.clone(), format!("{path} (absent)"), b, b""));
                    plan.actions.push(Action::RemoveFile { path: path.clone() });
                    plan.restored.push(Restored { path: path.clone(), kind: "removed".into(), module: module.clone() });
                    removed.push(path.as_str());
                }
            }
        }
        if !removed.is_empty() {
            plan.warnings
                .push(format!("removed {} with the last NIC or IRQ state file ({state_file})", removed.join(" and ")));
            unit_links = true;
        }
    }
    // The last state file goes: the unit and its link go with it, even when an earlier
    // bundle (another module's, or one already rolled back) installed them.
    let unit_in_bundle = entries.iter().any(|e| e.path() == shared.unit || e.path() == shared.link);
    if let (true, Some((state_file, module)), false) = (shared.remaining.is_empty(), &shared.removes, unit_in_bundle) {
        let ours =
            matches!(host.node(&shared.unit), Ok(Node::File(ref b, _)) if b.starts_with(persist::UNIT_MARK.as_bytes()));
        if ours {
            if host.read_link(&shared.link).as_deref() == Some(persist::UNIT_PATH) {
                plan.diff.push(Diff {
                    before_header: format!("link {}", shared.link),
                    after_header: format!("link {}", shared.link),
                    before: format!("{} -> {}\n", shared.link, persist::UNIT_PATH),
                    after: String::new(),
                });
                plan.actions.push(Action::RemoveLink { path: shared.link.clone() });
                plan.restored.push(Restored {
                    path: shared.link.clone(),
                    kind: "removed".into(),
                    module: module.clone(),
                });
            }
            plan.diff.push(crate::engine::text::diff(
                shared.unit.clone(),
                format!("{} (absent)", shared.unit),
                &host.read_bytes(&shared.unit).unwrap_or_default(),
                b"",
            ));
            plan.actions.push(Action::RemoveFile { path: shared.unit.clone() });
            plan.restored.push(Restored { path: shared.unit.clone(), kind: "removed".into(), module: module.clone() });
            // lltune's own folders, when nothing else is in them.
            let state_dir = shared.state_dir.clone();
            let parent = state_dir.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
            for dir in [state_dir, parent] {
                if host.is_dir(&dir) && emptied(host, &plan.actions, &dir) {
                    plan.actions.push(Action::RemoveDir { path: dir.clone() });
                    plan.restored.push(Restored { path: dir, kind: "folder".into(), module: module.clone() });
                }
            }
            plan.warnings.push(format!(
                "removed {} and its enablement link with the last state file ({state_file})",
                persist::UNIT_PATH
            ));
            unit_links = true;
        }
    }
    // The unit's file going on a live host: the unit that ran at this boot is stopped too, so
    // that the host's units read as before the run without a reboot (it has no ExecStop:
    // stopping it changes nothing else).
    if plan.actions.iter().any(|a| matches!(a, Action::RemoveFile { path } if *path == shared.unit)) {
        let unit = persist::UNIT_PATH.rsplit('/').next().unwrap_or_default();
        if let Ok(Ok(true)) = host.system().unit_active(unit) {
            plan.diff.push(Diff {
                before_header: format!("unit {unit}"),
                after_header: format!("unit {unit}"),
                before: "active\n".into(),
                after: "inactive\n".into(),
            });
            unit_actions.push(Action::SetUnit { unit: unit.to_string(), active: false });
            let module = plan.restored.iter().find(|r| r.path == shared.unit).map(|r| r.module.clone());
            plan.restored.push(Restored {
                path: unit.to_string(),
                kind: "unit".into(),
                module: module.unwrap_or_default(),
            });
        }
    }
    if unit_links && !plan.actions.is_empty() || !unit_actions.is_empty() {
        // On a tree systemd is not running: the links alone are the change.
        if let Ok(argv) = host.system().plan_command(vec!["systemctl".into(), "daemon-reload".into()]) {
            plan.actions.push(Action::Run { argv, rewrites: vec![] });
        }
    }
    plan.actions.extend(unit_actions);
    // TuneD's profile files came back while tuned runs: the daemon reads them when it starts
    // (and writes the same words back), so it is restarted to run the profile they name.
    let tuned_files = [crate::modules::services::TUNED_ACTIVE_PROFILE, crate::modules::services::TUNED_PROFILE_MODE];
    if plan.restored.iter().any(|r| tuned_files.contains(&r.path.as_str()))
        && matches!(host.system().unit_active("tuned.service"), Ok(Ok(true)))
    {
        crate::modules::timesync::restart(host, &mut plan.actions, "tuned.service");
    }
    // chronyd reads its config (and the confdir's drop-ins) only when it starts: a file
    // lltune_timesync wrote that came back or went away while chrony runs leaves chronyd on
    // lltune's sources until it is restarted. (lltune's own ptp4l and phc2sys units are
    // stopped with their unit files, above.)
    if plan.restored.iter().any(|r| {
        r.module == crate::names::TIMESYNC
            && r.kind != "unit"
            && r.path.rsplit('/').next() == Some(crate::modules::timesync::CHRONY_FILE)
    }) {
        for unit in crate::modules::timesync::CHRONY_UNITS {
            if matches!(host.system().unit_active(unit), Ok(Ok(true))) {
                crate::modules::timesync::restart(host, &mut plan.actions, unit);
                break;
            }
        }
    }
    // /etc/default/grub came back but the bundle holds no grub.cfg: regenerate it on a live
    // classic-GRUB2 host, as after any edit of the defaults.
    let has_cfg = entries.iter().any(|e| matches!(e, Entry::File { path, .. } if path.ends_with("/grub.cfg")));
    if restored_grub_defaults && !has_cfg {
        let (boot, _) = crate::modules::boot::detect(host);
        if boot.layout == "grub2" {
            if let Some(r) = crate::modules::boot::regenerate_command(host, &boot) {
                match host.system().plan_command(r.argv.clone()) {
                    Ok(argv) => plan.actions.push(Action::Run { argv, rewrites: vec![r.cfg.clone()] }),
                    Err(why) => plan.warnings.push(format!(
                        "{}: skipped regeneration ({why}); run `{}` on the host",
                        r.cfg,
                        r.argv.join(" ")
                    )),
                }
            }
        }
    }
    Ok(plan)
}

/// The module, as the engine's runner sees it: not journaled (it reads a journal).
pub struct Rollback;

impl Module for Rollback {
    const NAME: &'static str = MODULE;
    const JOURNALED: bool = false;
    type Params = Params;

    fn backup_id(_params: &Params) -> Option<&str> {
        None
    }

    /// The bundle's folders and the folder of every item it names: a run killed mid-write
    /// left its temp file there, and a rollback takes it away with the rest.
    fn sweep_dirs(host: &Host, params: &Params) -> Vec<String> {
        let Ok(journal) = Journal::load(host, &params.backup) else {
            // No readable journal (a run killed before it wrote one): the bundle folder may
            // still hold that run's temp files; the rollback then fails naming the journal.
            let id = params.backup.trim_end_matches('/');
            let id = id.strip_prefix(&format!("{}/", crate::engine::journal::BACKUPS_DIR)).unwrap_or(id);
            if crate::backup_id::validate(id).is_err() {
                return Vec::new();
            }
            let dir = format!("{}/{id}", crate::engine::journal::BACKUPS_DIR);
            return vec![format!("{dir}/files"), dir];
        };
        let mut dirs = vec![format!("{}/files", journal.dir), journal.dir.clone()];
        for e in journal.entries() {
            match e {
                Entry::Dir { path, .. } => dirs.push(path.clone()),
                Entry::File { path, .. } | Entry::Link { path, .. } => dirs
                    .extend(path.rsplit_once('/').map(|(d, _)| if d.is_empty() { "/".into() } else { d.to_string() })),
                // On a tree a kernel value is a plain file, replaced with a temp file beside it.
                Entry::Runtime { path, .. } if host.system().kernel() == Kernel::Captured => {
                    dirs.extend(path.rsplit_once('/').map(|(d, _)| d.to_string()))
                }
                _ => {}
            }
        }
        dirs
    }

    fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
        let journal = Journal::load(host, &params.backup)?;
        let p = plan_entries(host, &journal, journal.entries())?;
        let mut out = engine::Plan {
            actions: p.actions,
            diff: p.diff,
            warnings: p.warnings,
            reboot_required: p.reboot_required,
            unfinished: p.not_restored.iter().map(|n| format!("could not restore {n}")).collect(),
            ..engine::Plan::default()
        };
        out.field("backup", &journal.dir);
        out.field("restored", &p.restored);
        out.field("not_restored", &p.not_restored);
        if !p.gone.is_empty() {
            out.field("gone", &p.gone);
        }
        Ok(out)
    }
}

pub fn run(host: &Host, meta: &Meta, params: Params) -> Result<Outcome> {
    engine::run::<Rollback>(host, meta, params)
}
