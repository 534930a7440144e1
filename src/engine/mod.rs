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
use crate::host::system::Kernel;
use crate::protocol::{Diff, Failure, Meta, Outcome, PersistPlanned, cap_text};
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
#[derive(Default)]
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
    /// The after-apply and failure steps (set with `after_apply`, `on_failure`).
    pub steps: PlanSteps,
}

/// A plan's steps around the writes (`Plan::after_apply`, `Plan::on_failure`).
#[derive(Default)]
pub struct PlanSteps {
    after: Option<AfterApply>,
    failed: Option<OnFailure>,
}

/// A plan's after-apply step: run by the engine after the writes (or after a check-mode or
/// unchanged run: `Ran` says which), with the host, still under the root's lock.
pub type AfterApply = Box<dyn FnOnce(&Host, &mut Plan, Ran)>;
/// A plan's failure step: given the typed reason a write failed (after this run's writes
/// were put back) and the failure the task returns, to add fields or words to it.
pub type OnFailure = Box<dyn FnOnce(&WriteFailure, &mut Failure)>;

/// How a run ended, as the after-apply step sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// Check mode: nothing was written.
    Check,
    /// Nothing to change: nothing was written.
    Unchanged,
    /// The writes were carried out and verified.
    Applied,
}

/// Why a write failed, typed (no message to read): what a plan's failure step matches on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteFailure {
    /// A kernel value read back other than written (`state::NotKept`).
    NotKept(state::NotKept),
    /// Any other failure of the write; its words are in the message.
    Failed,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("actions", &self.actions)
            .field("diff", &self.diff)
            .field("fields", &self.fields)
            .field("warnings", &self.warnings)
            .field("reboot_required", &self.reboot_required)
            .field("unfinished", &self.unfinished)
            .field("after_apply", &self.steps.after.is_some())
            .field("on_failure", &self.steps.failed.is_some())
            .finish()
    }
}

impl Plan {
    pub fn field(&mut self, key: &str, value: impl serde::Serialize) {
        let v = serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("unserializable: {e}")));
        self.fields.insert(key.to_string(), v);
    }

    /// Sets the step the engine runs after the writes, with the host: result fields that
    /// depend on what the kernel did (read back what a write became). The step keeps what
    /// the planning knew, typed, so it has nothing to read back from the result fields.
    pub fn after_apply(&mut self, step: impl FnOnce(&Host, &mut Plan, Ran) + 'static) {
        self.steps.after = Some(Box::new(step));
    }

    /// Sets the step the engine runs when a write fails (`WriteFailure`), before the task
    /// fails: a module explains the failure in its own terms.
    pub fn on_failure(&mut self, step: impl FnOnce(&WriteFailure, &mut Failure) + 'static) {
        self.steps.failed = Some(Box::new(step));
    }

    /// Runs the failure step (once) on `f`, the failure of a write for `why`.
    pub fn explain_failure(&mut self, why: &WriteFailure, f: &mut Failure) {
        if let Some(step) = self.steps.failed.take() {
            step(why, f);
        }
    }

    /// Runs the after-apply step (once).
    pub fn finish(&mut self, host: &Host, ran: Ran) {
        if let Some(step) = self.steps.after.take() {
            step(host, self, ran);
        }
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

    /// What the task would change. Reads the host, writes nothing.
    fn plan(host: &Host, params: &Self::Params) -> Result<Plan>;

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
                Item::Kernel(p) if host.system().kernel() == Kernel::Captured => out.extend(parent(p)),
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
    run_in::<M>(host, meta, params, None)
}

/// `run`, alone (`tx` `None`) or as one step of a transaction (`Transaction::run`): then the
/// transaction's backup id and lock, and the step's writes kept for the transaction's revert.
fn run_in<M: Module>(host: &Host, meta: &Meta, params: M::Params, mut tx: Option<&mut Steps>) -> Result<Outcome> {
    let backup_id = match (M::backup_id(&params), tx.as_deref()) {
        (Some(id), Some(t)) if id != t.backup_id => {
            return Err(Failure::new(format!(
                "option backup_id: {} is not this run's backup id {}",
                cap_text(id),
                t.backup_id
            ))
            .into());
        }
        (_, Some(t)) => t.backup_id.clone(),
        (Some(id), None) => {
            crate::backup_id::validate(id).map_err(|e| Failure::new(format!("option backup_id: {e}")))?;
            id.to_string()
        }
        (None, None) => crate::backup_id::new_id(),
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
    let mut installs_runner = false;
    if let Some(state) = M::persist_state(&params) {
        let (actions, diff) = persist::actions(host, M::NAME, &state)?;
        plan.actions.extend(actions);
        plan.diff.extend(diff);
        let mut about = serde_json::json!({
            "state_file": format!("{}/{}.json", persist::STATE_DIR, M::NAME),
            "unit": persist::UNIT_PATH,
        });
        // The CLI the unit runs at boot, when the transaction brings it (`lltune apply`).
        if let Some(bytes) = tx.as_deref().and_then(|t| t.runner.as_ref()) {
            if let Some((action, diff)) = persist::runner_action(host, bytes) {
                plan.actions.push(action);
                plan.diff.push(diff);
                about["cli"] = Value::String(persist::CLI_PATH.into());
            }
            installs_runner = true;
        }
        plan.field("persist", about);
    }
    let changed = !plan.actions.is_empty();
    if !meta.check_mode {
        sweep(host, action_dirs(host, &plan.actions), &mut swept);
        plan.warnings.extend(swept_warning(&swept));
    }
    let mut backup = None;
    if changed && !meta.check_mode {
        let undo = tx.as_deref_mut().map(|t| &mut t.done);
        let done = if M::JOURNALED {
            let mut j = Journal::open(host, &backup_id)?;
            let r =
                carry_out_typed(host, Some(Record { journal: &mut j, module: M::NAME, boot: M::BOOT }), &plan.actions);
            backup = Some(j.dir);
            r
        } else {
            carry_out_typed(host, None, &plan.actions)
        };
        match done {
            Ok(d) => {
                if let Some(u) = undo {
                    u.push(Done { module: M::NAME, ..d });
                }
            }
            Err(Carried::Before(e)) => return Err(e),
            Err(Carried::Midway(failed)) => {
                let (mut f, why, undone) = *failed;
                log_revert(host, meta, M::NAME, M::JOURNALED.then_some(backup_id.as_str()), &undone);
                plan.explain_failure(&why, &mut f);
                return Err(f.into());
            }
        }
        log_changes(host, meta, M::NAME, backup.as_ref().map(|_| backup_id.as_str()), &plan.diff);
    }
    // One diff per file per run: in check mode nothing is written, so a later step sees a
    // file an earlier step plans (lltune-restore.service, its link) as still absent and
    // would show it again. Within a transaction the earlier steps' diffs are known; a module
    // run alone is told by `persist_planned` (the tune role passes it).
    if meta.check_mode {
        let (unit_shown, hotplug_shown) = persist_shown_before(&meta.persist_planned, M::NAME);
        let shown_before = |d: &Diff| {
            (unit_shown
                && (d.after_header == persist::UNIT_PATH || d.after_header == format!("link {}", persist::WANTS_LINK)))
                || (hotplug_shown
                    && (d.after_header == persist::UDEV_RULE_PATH || d.after_header == persist::REAPPLY_UNIT_PATH))
                || tx.as_deref().is_some_and(|t| t.shown.iter().any(|(h, a)| *h == d.after_header && *a == d.after))
        };
        let (earlier, own): (Vec<Diff>, Vec<Diff>) = plan.diff.drain(..).partition(|d| shown_before(d));
        plan.diff = own;
        if !earlier.is_empty() {
            let names: Vec<&str> = earlier.iter().map(|d| d.after_header.as_str()).collect();
            plan.field("diff_shown_earlier", names);
        }
        if let Some(t) = tx.as_deref_mut() {
            t.shown.extend(plan.diff.iter().map(|d| (d.after_header.clone(), d.after.clone())));
        }
    }
    if let (Some(reasons), false) = (&meta.reasons, plan.diff.is_empty()) {
        if let Some(why) = why_diff(reasons, &plan.diff) {
            plan.diff.insert(0, why);
        }
    }
    if installs_runner {
        if let Some(t) = tx {
            t.runner = None;
        }
    }
    let ran = match (changed, meta.check_mode) {
        (_, true) => Ran::Check,
        (false, false) => Ran::Unchanged,
        (true, false) => Ran::Applied,
    };
    plan.finish(host, ran);
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

/// What one transaction's finished steps did, for its revert.
struct Steps {
    backup_id: String,
    /// Every step's writes, in order.
    done: Vec<Done>,
    /// The CLI to install at `persist::CLI_PATH` with the first step that persists.
    runner: Option<Vec<u8>>,
    /// Check mode: each diff the earlier steps showed (header, text after), so that a file
    /// several steps would write is shown once.
    shown: Vec<(String, String)>,
}

/// Which shared persistence files an earlier step of this run shows being installed, for
/// `module`: (the restore unit and its link, the udev rule and the re-apply template unit).
pub fn persist_shown_before(planned: &PersistPlanned, module: &str) -> (bool, bool) {
    match planned {
        PersistPlanned::Nothing => (false, false),
        PersistPlanned::RestoreUnit => (true, false),
        PersistPlanned::Modules(list) => {
            let earlier: Vec<&str> = crate::names::ORDER
                .iter()
                .copied()
                .take_while(|m| *m != module)
                .filter(|m| list.iter().any(|l| l == m))
                .collect();
            (!earlier.is_empty(), earlier.iter().any(|m| persist::HOTPLUG_MODULES.contains(m)))
        }
    }
}

/// The first entry of a module's diff when its run was given `reasons`: why these changes,
/// one line per option or setting the diff touches (`name: reason`); every reason when the
/// diff names none of them (a reason is never hidden for want of a match). `None` when
/// there are no reasons.
pub fn why_diff(reasons: &Map<String, Value>, diff: &[Diff]) -> Option<Diff> {
    if reasons.is_empty() {
        return None;
    }
    // The lines that differ, and every header: where an option's name shows when it changed.
    let mut touched = String::new();
    for d in diff {
        touched.push_str(&d.after_header);
        touched.push('\n');
        let before: std::collections::BTreeSet<&str> = d.before.lines().collect();
        let after: std::collections::BTreeSet<&str> = d.after.lines().collect();
        for l in before.symmetric_difference(&after) {
            touched.push_str(l);
            touched.push('\n');
        }
    }
    let line = |(k, v): (&String, &Value)| format!("{k}: {}\n", v.as_str().unwrap_or_default());
    let named: String = reasons.iter().filter(|(k, _)| touched.contains(k.as_str())).map(line).collect();
    let after = if named.is_empty() { reasons.iter().map(line).collect() } else { named };
    Some(Diff {
        before_header: "why".into(),
        after_header: "why (the config keys and findings behind these changes)".into(),
        before: String::new(),
        after,
    })
}

/// One module's carried-out writes: the items, their snapshots from before, and the order
/// it touched them in (what `revert` puts back).
struct Done {
    module: &'static str,
    items: Vec<Item>,
    snapshots: Vec<State>,
    touched: Vec<usize>,
}

/// Several changing modules as one run (`lltune apply`, `lltune reapply`): one backup id,
/// one lock of the root held from the first planning to the last write (and to the revert),
/// the steps in the order given. A step that fails puts back its own writes (as any run
/// does); `abort` then puts back every earlier step's, newest first, from the snapshots the
/// engine took before writing (the bundle keeps its entries: a rollback of it finds the
/// values already in place). `lltune apply` aborts on the first failure; `lltune reapply`
/// reports a failed step and goes on with the others (at boot, one NIC that is gone must not
/// undo the CPU settings), each step whole or not at all.
pub struct Transaction<'h> {
    host: &'h Host,
    meta: Meta,
    steps: Steps,
    _lock: lock::Lock,
}

impl<'h> Transaction<'h> {
    /// Validates the backup id (`None`: a timestamp id) and takes the root's lock.
    pub fn begin(host: &'h Host, meta: &Meta, backup_id: Option<&str>) -> Result<Transaction<'h>> {
        let id = match backup_id {
            Some(id) => {
                crate::backup_id::validate(id).map_err(|e| Failure::new(format!("backup id: {e}")))?;
                id.to_string()
            }
            None => crate::backup_id::new_id(),
        };
        let lock = lock::acquire(host)?;
        Ok(Transaction {
            host,
            meta: meta.clone(),
            steps: Steps { backup_id: id, done: Vec::new(), runner: None, shown: Vec::new() },
            _lock: lock,
        })
    }

    pub fn backup_id(&self) -> &str {
        &self.steps.backup_id
    }

    /// The bundle this transaction's steps journal into.
    pub fn backup_dir(&self) -> String {
        format!("{}/{}", journal::BACKUPS_DIR, self.steps.backup_id)
    }

    /// Whether a step has written anything yet.
    pub fn changed(&self) -> bool {
        !self.steps.done.is_empty()
    }

    /// Installs `bytes` (the running CLI) at `persist::CLI_PATH`, 0755 root, with the first
    /// step that persists (`persist: true`): part of that step's plan, diff and journal, and
    /// of its revert. `lltune-restore.service` runs it at boot.
    pub fn install_boot_runner(&mut self, bytes: Vec<u8>) {
        self.steps.runner = Some(bytes);
    }

    /// The reasons the next steps show before their diffs (`why_diff`); `None` for none.
    pub fn set_reasons(&mut self, reasons: Option<Map<String, Value>>) {
        self.meta.reasons = reasons;
    }

    /// Runs one module as the next step (the transaction's backup id; `options` must not
    /// name another).
    pub fn run<M: Module>(&mut self, params: M::Params) -> Result<Outcome> {
        run_in::<M>(self.host, &self.meta, params, Some(&mut self.steps))
    }

    /// Puts back what every finished step wrote, newest first, and returns `cause` with the
    /// list of what was reverted (and of anything that could not be). Check mode wrote
    /// nothing: `cause` is returned as it is.
    pub fn abort(self, cause: anyhow::Error) -> anyhow::Error {
        let mut reverted = Vec::new();
        let mut stuck = Vec::new();
        let mut modules = Vec::new();
        let why = cap(&format!("{cause:#}"));
        for d in self.steps.done.iter().rev() {
            let (r, s) = put_back(self.host, &d.items, &d.snapshots, &d.touched);
            if !r.is_empty() || !s.is_empty() {
                modules.push(d.module);
                let undone = Undone { cause: why.clone(), reverted: r, stuck: s };
                log_revert(self.host, &self.meta, d.module, Some(&self.steps.backup_id), &undone);
                reverted.extend(undone.reverted);
                stuck.extend(undone.stuck);
            }
        }
        if reverted.is_empty() && stuck.is_empty() {
            return cause;
        }
        let (cause_changed, mut fields) = match cause.downcast_ref::<Failure>() {
            Some(f) => (f.changed, f.fields.clone()),
            None => (false, Map::new()),
        };
        let mut msg = format!("{cause:#}");
        modules.reverse();
        if !reverted.is_empty() {
            msg.push_str(&format!(
                "; reverted the earlier steps of this run ({}): {}",
                modules.join(", "),
                reverted.join(", ")
            ));
        }
        if !stuck.is_empty() {
            msg.push_str(&format!(
                "; could NOT revert: {} (restore with: lltune rollback --backup {})",
                stuck.join(", "),
                self.steps.backup_id
            ));
        }
        let mut f = Failure::new(msg);
        f.changed = cause_changed || !stuck.is_empty();
        fields.insert("reverted_steps".into(), serde_json::json!(reverted));
        if !stuck.is_empty() {
            fields.insert("not_reverted_steps".into(), serde_json::json!(stuck));
        }
        f.fields = fields;
        f.into()
    }
}

/// The audit trail (`crate::trail` sends it): after a run changed the host, who ran it with
/// what, then each file or setting the diff names with its lines before → after (only the
/// lines that differ). Check mode never gets here; with `_ansible_no_log` no value is logged.
/// `lltune install-cli`, whose one write is no module's, logs through it too.
pub fn log_changes(host: &Host, meta: &Meta, module: &str, backup: Option<&str>, diff: &[Diff]) {
    const HIDDEN: &str = "(hidden: no_log)";
    let root = host.root().to_string_lossy();
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let args = match (meta.no_log, &meta.invocation) {
        (true, _) => HIDDEN.to_string(),
        (false, Some(a)) => cap(a),
        // Not through Ansible (the CLI runs the module): the command line.
        (false, None) => cap(&std::env::args().collect::<Vec<_>>().join(" ")),
    };
    let user = if std::env::var_os("USER").is_some() { env("USER") } else { env("LOGNAME") };
    let facility = meta.syslog_facility.as_deref().unwrap_or("");
    let backup = backup.unwrap_or("");
    // Here rather than in every binary's main: the modules that never change anything (facts,
    // config, audit) carry no trail code. The CLI installs its own first (with -v's stderr).
    crate::trail::install(false);
    tracing::info!(
        target: "lltune",
        module,
        root = &*root,
        facility,
        backup,
        user = user.as_str(),
        sudo_user = env("SUDO_USER").as_str(),
        uid = nix::unistd::getuid().as_raw(),
        args = args.as_str(),
        "changed"
    );
    for d in diff {
        let (before, after) = if meta.no_log { (HIDDEN.into(), HIDDEN.into()) } else { changed_lines(d) };
        let item = if d.after_header.is_empty() { &d.before_header } else { &d.after_header };
        tracing::info!(
            target: "lltune",
            module,
            root = &*root,
            facility,
            backup,
            item = item.as_str(),
            before = before.as_str(),
            after = after.as_str(),
            "set"
        );
    }
}

/// The audit trail of a revert: a step's writes put back, because a later write of its own
/// failed (every run) or a later step of its transaction did (`Transaction::abort`). One
/// `reverted` line: what was put back, what could not be, and why. With `_ansible_no_log`
/// the cause (which may quote a value) is hidden; paths are logged as `set` lines log them.
fn log_revert(host: &Host, meta: &Meta, module: &str, backup: Option<&str>, undone: &Undone) {
    if undone.reverted.is_empty() && undone.stuck.is_empty() {
        return;
    }
    let cause = if meta.no_log { "(hidden: no_log)".to_string() } else { cap(&undone.cause) };
    crate::trail::install(false);
    tracing::info!(
        target: "lltune",
        module,
        root = &*host.root().to_string_lossy(),
        facility = meta.syslog_facility.as_deref().unwrap_or(""),
        backup = backup.unwrap_or(""),
        items = undone.reverted.join(", ").as_str(),
        not_reverted = undone.stuck.join(", ").as_str(),
        cause = cause.as_str(),
        "reverted"
    );
}

/// A diff's lines that are not on the other side (each side's in its order), capped.
fn changed_lines(d: &Diff) -> (String, String) {
    let only = |a: &str, b: &str| {
        let mut other: Vec<&str> = b.lines().collect();
        let kept: Vec<&str> = a
            .lines()
            .filter(|l| match other.iter().position(|o| o == l) {
                Some(i) => {
                    other.swap_remove(i);
                    false
                }
                None => true,
            })
            .collect();
        cap(&kept.join("\n"))
    };
    (only(&d.before, &d.after), only(&d.after, &d.before))
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
    match carry_out_typed(host, record, actions) {
        Ok(_) => Ok(()),
        Err(Carried::Before(e)) => Err(e),
        Err(Carried::Midway(failed)) => Err(failed.0.into()),
    }
}

/// How `carry_out` failed.
enum Carried {
    /// Before any write (resolving, snapshotting, journaling): nothing was changed.
    Before(anyhow::Error),
    /// A write failed; this call's writes were put back (the failure lists them, `Undone`
    /// names them for the audit trail).
    Midway(Box<(Failure, WriteFailure, Undone)>),
}

fn carry_out_typed(host: &Host, record: Option<Record<'_>>, actions: &[Action]) -> Result<Done, Carried> {
    let before = |e: anyhow::Error| Carried::Before(e);
    let actions: Vec<Action> = actions
        .iter()
        .map(|a| a.resolved(host).map_err(|e| Failure::new(format!("{}: {e}", a.describe()))))
        .collect::<Result<_, _>>()
        .map_err(|f| before(f.into()))?;
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
            .map_err(|e| before(Failure::new(format!("reading the current state of {}: {e}", i.path())).into()))?;
        snapshots.push(s);
    }
    if let Some(r) = record {
        r.journal.record_all(host, r.module, r.boot, items.iter().zip(&snapshots)).map_err(before)?;
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
            let why = match e.downcast_ref::<state::NotKept>() {
                Some(k) => WriteFailure::NotKept(k.clone()),
                None => WriteFailure::Failed,
            };
            let cause = format!("{}: {e:#}", a.describe());
            let (failure, undone) = revert(host, &items, &snapshots, &touched, cause);
            return Err(Carried::Midway(Box::new((failure, why, undone))));
        }
    }
    Ok(Done { module: "", items, snapshots, touched })
}

/// What a revert put back (paths) and what it could not (paths with why), after `cause`.
struct Undone {
    cause: String,
    reverted: Vec<String>,
    stuck: Vec<String>,
}

/// Puts `touched` items back to their snapshots, newest first: the paths put back, and those
/// that could not be (with why).
fn put_back(host: &Host, items: &[Item], snapshots: &[State], touched: &[usize]) -> (Vec<String>, Vec<String>) {
    let mut reverted = Vec::new();
    let mut stuck = Vec::new();
    for &n in touched.iter().rev() {
        match state::put(host, &items[n], &snapshots[n]) {
            Ok(true) => reverted.push(items[n].path().to_string()),
            Ok(false) => {}
            Err(e) => stuck.push(format!("{} ({})", items[n].path(), cap_text(&format!("{e:#}")))),
        }
    }
    (reverted, stuck)
}

fn revert(host: &Host, items: &[Item], snapshots: &[State], touched: &[usize], cause: String) -> (Failure, Undone) {
    let (reverted, stuck) = put_back(host, items, snapshots, touched);
    let mut msg = cause.clone();
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
    (f, Undone { cause, reverted, stuck })
}

#[cfg(test)]
mod why_tests {
    use super::*;

    fn diff(header: &str, before: &str, after: &str) -> Diff {
        Diff { before_header: header.into(), after_header: header.into(), before: before.into(), after: after.into() }
    }

    fn reasons(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect()
    }

    #[test]
    fn why_names_the_settings_the_diff_changes() {
        let r = reasons(&[("vm.swappiness", "memory.swappiness"), ("net.core.busy_poll", "network.sysctl.busy_poll")]);
        // busy_poll is in both texts, unchanged: its reason is not shown.
        let d = [diff(
            "runtime",
            "vm.swappiness = 60\nnet.core.busy_poll = 50\n",
            "vm.swappiness = 0\nnet.core.busy_poll = 50\n",
        )];
        let why = why_diff(&r, &d).unwrap();
        assert_eq!(why.after, "vm.swappiness: memory.swappiness\n");
        assert_eq!(why.before, "");
    }

    #[test]
    fn why_shows_every_reason_when_the_diff_names_none() {
        let r = reasons(&[("rules[0]", "irq.manual_affinity[0]"), ("rules[1]", "irq.manual_affinity[1]")]);
        let d = [diff("/proc/irq/24/smp_affinity_list", "0-3\n", "0\n")];
        let why = why_diff(&r, &d).unwrap();
        assert_eq!(why.after, "rules[0]: irq.manual_affinity[0]\nrules[1]: irq.manual_affinity[1]\n");
        assert!(why_diff(&Map::new(), &d).is_none());
    }

    #[test]
    fn a_header_names_a_setting() {
        let r = reasons(&[("governor", "cpu.governor"), ("epp", "cpu.epp")]);
        let d = [diff("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "powersave\n", "performance\n")];
        assert_eq!(why_diff(&r, &d).unwrap().after, "governor: cpu.governor\n");
    }
}
