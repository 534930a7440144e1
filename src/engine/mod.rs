//! The one write path of every changing module: a module is its `Params` and a pure
//! `plan()`; this runner does the rest, once for all of them:
//!
//! 1. validate the backup id, take the root's lock (`lock`), held to the last write;
//! 2. `plan()` — reads the host, writes nothing; check mode stops after it;
//! 3. resolve every path (links inside `root` written through, links leaving it refused),
//!    snapshot every item, journal the snapshots (`journal`), then act and verify;
//! 4. on a failure midway, put back every item this run touched, in reverse order, from its
//!    in-memory snapshot (not the bundle, which may hold an older baseline of the play), and
//!    fail with a message that lists what was reverted;
//! 5. report `changed`, `diff`, `warnings`, `reboot_required` and `backup`.

pub mod journal;
pub mod lock;
pub mod persist;
pub mod state;
pub mod text;

use anyhow::Result;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::host::Host;
use crate::protocol::{Diff, Failure, Meta, Outcome, cap_text};
use journal::Journal;
use state::{Action, Item, State};

/// The most characters of one warning or message line a module returns.
pub const MAX_WARNING_CHARS: usize = 1000;
/// The most characters of one string in a result field: room for a path (PATH_MAX) or a
/// cpulist of a large host; host text echoed whole is capped far below this where it is
/// known (`protocol::capped`), this is the backstop for the rest.
pub const MAX_FIELD_CHARS: usize = 4096;
/// The most items of one list in a result field (one per IRQ of a large host fits).
pub const MAX_FIELD_ITEMS: usize = 20_000;

/// Caps every string and list of a result field (`MAX_FIELD_CHARS`, `MAX_FIELD_ITEMS`); a
/// cut list ends with a string saying how many items were left out.
pub fn cap_field(v: &mut Value) {
    match v {
        Value::String(s) if s.len() > MAX_FIELD_CHARS && s.chars().count() > MAX_FIELD_CHARS => {
            let n = s.chars().count();
            *s = format!("{}... ({n} characters)", s.chars().take(MAX_FIELD_CHARS).collect::<String>());
        }
        Value::Array(a) => {
            if a.len() > MAX_FIELD_ITEMS {
                let more = a.len() - MAX_FIELD_ITEMS;
                a.truncate(MAX_FIELD_ITEMS);
                a.push(Value::String(format!("... ({more} more left out)")));
            }
            a.iter_mut().for_each(cap_field);
        }
        Value::Object(m) => {
            if m.len() > MAX_FIELD_ITEMS {
                let more = m.len() - MAX_FIELD_ITEMS;
                let kept: Map<String, Value> = std::mem::take(m).into_iter().take(MAX_FIELD_ITEMS).collect();
                *m = kept;
                m.insert("...".into(), Value::String(format!("({more} more left out)")));
            }
            m.values_mut().for_each(cap_field);
        }
        _ => {}
    }
}

/// What a module would do: the writes, and what to report about them.
#[derive(Debug, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub diff: Vec<Diff>,
    /// Module-specific result fields (`changes`, `pending`, `restored`, ...).
    pub fields: Map<String, Value>,
    pub warnings: Vec<String>,
    /// The effect waits for a reboot.
    pub reboot_required: bool,
    /// Items that could not be handled, each a whole phrase (`could not restore /etc/x
    /// (why)`): the rest is carried out, then the task fails naming them (a rollback with a
    /// missing copy).
    pub unfinished: Vec<String>,
}

impl Plan {
    pub fn field(&mut self, key: &str, value: impl serde::Serialize) {
        let v = serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("unserializable: {e}")));
        self.fields.insert(key.to_string(), v);
    }
}

/// A changing module, as the runner sees it.
pub trait Module {
    /// `lltune_sysctl`: the journal's `module` and the messages' prefix.
    const NAME: &'static str;
    /// Whether runs are journaled (every module but rollback).
    const JOURNALED: bool = true;
    /// Whether the items are boot configuration (restoring them waits for a reboot too).
    const BOOT: bool = false;
    type Params: DeserializeOwned;

    /// The `backup_id` option; `None` makes a timestamp id.
    fn backup_id(params: &Self::Params) -> Option<&str>;

    /// What the task would change. Pure: reads the host, writes nothing.
    fn plan(host: &Host, params: &Self::Params) -> Result<Plan>;

    /// After the writes (`applied`) or in check mode: adjust result fields that depend on it.
    fn finish(_plan: &mut Plan, _applied: bool) {}

    /// With `persist: true`, the module's options to save for `lltune reapply` at boot
    /// (`engine::persist`); `None` otherwise (the default: nothing to persist).
    fn persist_state(_params: &Self::Params) -> Option<Map<String, Value>> {
        None
    }

    /// Folders to clear of stale temp files (`Host::remove_stale_temps`) before planning,
    /// besides those of the items the plan changes: rollback names its bundle's folders.
    fn sweep_dirs(_host: &Host, _params: &Self::Params) -> Vec<String> {
        Vec::new()
    }
}

/// Clears `dirs` of the temp files an interrupted lltune run left (each folder once), adding
/// what was removed to `removed`. A folder that cannot be listed is left as it is: the
/// sweep is housekeeping, never a reason to fail the run.
pub fn sweep(host: &Host, dirs: impl IntoIterator<Item = String>, removed: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    for d in dirs {
        if d.is_empty() || !seen.insert(d.clone()) {
            continue;
        }
        if let Ok(r) = host.remove_stale_temps(&d) {
            removed.extend(r);
        }
    }
}

/// The folders whose stale temp files a run over `actions` clears: the folder of every file,
/// link and (on a tree, where they are plain files) kernel value it writes, and every
/// folder it removes.
fn action_dirs(host: &Host, actions: &[Action]) -> Vec<String> {
    let parent = |p: &str| p.rsplit_once('/').map(|(d, _)| if d.is_empty() { "/".to_string() } else { d.to_string() });
    let mut out = Vec::new();
    for a in actions {
        for i in a.items() {
            match &i {
                Item::File(p) | Item::Link(p) => out.extend(parent(p)),
                Item::Kernel(p) if !host.is_live() => out.extend(parent(p)),
                Item::Dir(p) => out.push(p.clone()),
                _ => {}
            }
        }
    }
    out
}

/// The warning that names the stale temp files a run removed.
fn swept_warning(removed: &[String]) -> Option<String> {
    if removed.is_empty() {
        return None;
    }
    Some(format!(
        "removed {} temp file(s) that an interrupted lltune run left behind: {}",
        removed.len(),
        removed.join(", ")
    ))
}

/// Runs a module: lock, plan, journal, write-verify-revert, report.
pub fn run<M: Module>(host: &Host, meta: &Meta, params: M::Params) -> Result<Outcome> {
    let backup_id = match M::backup_id(&params) {
        Some(id) => {
            journal::validate_backup_id(id).map_err(|e| Failure::new(format!("option backup_id: {e}")))?;
            id.to_string()
        }
        None => journal::default_backup_id(),
    };
    let _lock = lock::acquire(host)?;
    let mut swept = Vec::new();
    if !meta.check_mode {
        let mut dirs = M::sweep_dirs(host, &params);
        if M::persist_state(&params).is_some() {
            dirs.extend(persist::DIRS.iter().map(|d| d.to_string()));
        }
        if M::JOURNALED {
            let bundle = format!("{}/{backup_id}", journal::BACKUPS_DIR);
            dirs.extend([format!("{bundle}/files"), bundle]);
        }
        sweep(host, dirs, &mut swept);
    }
    let mut plan = M::plan(host, &params).map_err(|mut e| {
        if let (Some(f), Some(w)) = (e.downcast_mut::<Failure>(), swept_warning(&swept)) {
            f.msg.push_str(&format!("; {w}"));
        }
        e
    })?;
    if let Some(state) = M::persist_state(&params) {
        let (actions, diff) = persist::actions(host, M::NAME, &state)?;
        plan.actions.extend(actions);
        plan.diff.extend(diff);
        plan.field(
            "persist",
            serde_json::json!({
                "state_file": format!("{}/{}.json", persist::STATE_DIR, M::NAME),
                "unit": persist::UNIT_PATH,
            }),
        );
    }
    let changed = !plan.actions.is_empty();
    if !meta.check_mode {
        sweep(host, action_dirs(host, &plan.actions), &mut swept);
        plan.warnings.extend(swept_warning(&swept));
    }
    let mut backup = None;
    if changed && !meta.check_mode {
        if M::JOURNALED {
            let mut j = Journal::open(host, &backup_id)?;
            carry_out(host, Some(Record { journal: &mut j, module: M::NAME, boot: M::BOOT }), &plan.actions)?;
            backup = Some(j.dir);
        } else {
            carry_out(host, None, &plan.actions)?;
        }
    }
    M::finish(&mut plan, changed && !meta.check_mode);
    plan.fields.values_mut().for_each(cap_field);
    if !plan.unfinished.is_empty() {
        let rest = match (changed, meta.check_mode) {
            (false, _) => "",
            (true, false) => "; everything else was done",
            (true, true) => "; everything else would be done (check mode)",
        };
        let mut f = Failure::new(format!("{}: {}{rest}", M::NAME, plan.unfinished.join("; ")));
        f.changed = changed && !meta.check_mode;
        f.fields = plan.fields;
        return Err(f.into());
    }
    let mut outcome = Outcome::new(changed);
    outcome.fields = plan.fields;
    outcome.fields.insert("reboot_required".into(), Value::Bool(plan.reboot_required));
    if M::JOURNALED {
        outcome.fields.insert("backup".into(), backup.map(Value::String).unwrap_or(Value::Null));
    }
    outcome.diff = if meta.no_log {
        plan.diff
            .into_iter()
            .map(|d| Diff { before: "(hidden: no_log)\n".into(), after: "(hidden: no_log)\n".into(), ..d })
            .collect()
    } else {
        plan.diff
    };
    outcome.warnings = plan.warnings.iter().map(|w| cap(w)).collect();
    Ok(outcome)
}

fn cap(s: &str) -> String {
    if s.chars().count() <= MAX_WARNING_CHARS {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(MAX_WARNING_CHARS).collect::<String>())
    }
}

/// Where `carry_out` records previous states; `None` for rollback itself.
pub struct Record<'a> {
    pub journal: &'a mut Journal,
    pub module: &'a str,
    /// The items are boot configuration.
    pub boot: bool,
}

/// Performs `actions` in order: resolve, snapshot every item, journal the snapshots, act,
/// verify. On a failure, restores every item this call touched (in reverse order) and fails
/// with a message listing them; `changed` in the failure is true only if a restore failed.
/// The caller holds the root's lock.
pub fn carry_out(host: &Host, record: Option<Record<'_>>, actions: &[Action]) -> Result<()> {
    let actions: Vec<Action> = actions
        .iter()
        .map(|a| a.resolved(host).map_err(|e| Failure::new(format!("{}: {e}", a.describe()))))
        .collect::<Result<_, _>>()?;
    // Folders that a write creates are items too, before the files in them and outermost
    // first: rollback (newest entry first) and revert remove them after their files, when
    // they are empty again.
    let mut items: Vec<Item> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut per_action: Vec<Vec<Item>> = Vec::with_capacity(actions.len());
    for a in &actions {
        let mut own = Vec::new();
        for i in a.items() {
            if let Item::File(p) | Item::Link(p) = &i {
                own.extend(state::missing_dirs(host, p).into_iter().map(Item::Dir));
            }
            own.push(i);
        }
        for i in &own {
            index.entry(i.clone()).or_insert_with(|| {
                items.push(i.clone());
                items.len() - 1
            });
        }
        per_action.push(own);
    }
    let mut snapshots = Vec::with_capacity(items.len());
    for i in &items {
        let s = state::read(host, i)
            .map_err(|e| Failure::new(format!("reading the current state of {}: {e}", i.path())))?;
        snapshots.push(s);
    }
    if let Some(r) = record {
        r.journal.record_all(host, r.module, r.boot, items.iter().zip(&snapshots))?;
    }
    let mut touched: Vec<usize> = Vec::new();
    let mut is_touched = vec![false; items.len()];
    for (a, own) in actions.iter().zip(&per_action) {
        for i in own {
            if let Some(&n) = index.get(i) {
                if !is_touched[n] {
                    is_touched[n] = true;
                    touched.push(n);
                }
            }
        }
        if let Err(e) = a.perform(host) {
            let cause = format!("{}: {e:#}", a.describe());
            return Err(revert(host, &items, &snapshots, &touched, cause));
        }
    }
    Ok(())
}

fn revert(host: &Host, items: &[Item], snapshots: &[State], touched: &[usize], cause: String) -> anyhow::Error {
    let mut reverted = Vec::new();
    let mut stuck = Vec::new();
    for &n in touched.iter().rev() {
        match state::put(host, &items[n], &snapshots[n]) {
            Ok(true) => reverted.push(items[n].path().to_string()),
            Ok(false) => {}
            Err(e) => stuck.push(format!("{} ({})", items[n].path(), cap_text(&format!("{e:#}")))),
        }
    }
    let mut msg = cause;
    if reverted.is_empty() && stuck.is_empty() {
        msg.push_str("; nothing had been changed");
    }
    if !reverted.is_empty() {
        msg.push_str(&format!("; reverted this run's changes to: {}", reverted.join(", ")));
    }
    if !stuck.is_empty() {
        msg.push_str(&format!("; could NOT revert: {}", stuck.join(", ")));
    }
    let mut f = Failure::new(msg);
    f.changed = !stuck.is_empty();
    f.fields.insert("reverted".into(), serde_json::json!(reverted));
    if !stuck.is_empty() {
        f.fields.insert("not_reverted".into(), serde_json::json!(stuck));
    }
    f.into()
}
