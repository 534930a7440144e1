//! The backup bundle of a run: what every changing module records before it writes.
//!
//! Before a module changes anything it records the previous state of every item it will
//! touch under `<root>/var/lib/lltune/backups/<backup_id>/`: `journal.json` (an ordered list
//! of entries) and `files/` (previous file contents, byte for byte). Several modules of one
//! play share a `backup_id` and append to one bundle; only the FIRST previous state of an
//! item is kept, so a second module touching the same file does not overwrite the baseline.
//! `lltune_rollback` restores the entries in reverse order.
//!
//! A bundle is input like any other: on load every path must be canonical and every copy's
//! name must be one this code writes (`files/NNN-name`), so an edited journal cannot name
//! anything outside the bundle or, through the host's resolver, outside `root`.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::backup_id;
use crate::engine::state::{Item, State};
use crate::facts::threads::{Sched, ThreadId};
use crate::host::{FileMeta, Host, Node, resolve};
use crate::protocol::{Failure, cap_text};
use crate::sys::ethtool_group::Group as EthtoolGroup;

/// Where bundles live, under `root`.
pub const BACKUPS_DIR: &str = "/var/lib/lltune/backups";
/// The manifest of a bundle.
pub const MANIFEST: &str = "journal.json";
/// Version of the manifest format (fields added since are optional).
pub const MANIFEST_VERSION: u32 = 1;
/// Entries one bundle may hold (a bundle is read whole).
pub const MAX_ENTRIES: usize = 100_000;

/// A file's previous contents as stored in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFile {
    /// Path of the copy, relative to the bundle (`files/000-etc_default_grub`).
    pub blob: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Extended attributes (hex values), e.g. `security.selinux`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty", with = "crate::host::xattr_hex")]
    pub xattrs: std::collections::BTreeMap<String, Vec<u8>>,
}

impl SavedFile {
    pub fn meta(&self) -> FileMeta {
        FileMeta { mode: self.mode, uid: self.uid, gid: self.gid, xattrs: self.xattrs.clone() }
    }
}

/// One entry of `journal.json`: the state of an item before the bundle's run changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Entry {
    File {
        path: String,
        /// The module that recorded it (`lltune_kernel_args`).
        module: String,
        /// Boot configuration: restoring it takes effect at the next boot.
        boot: bool,
        /// `null`: the file did not exist (rollback removes it).
        previous: Option<SavedFile>,
    },
    /// A symbolic link itself; `previous` is its target as written, `null` when absent.
    /// `escaped`: the target is not UTF-8 and `previous` is its `text::view` form.
    Link {
        path: String,
        module: String,
        #[serde(default)]
        boot: bool,
        previous: Option<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        escaped: bool,
    },
    /// A kernel value file; `escaped` as for a link.
    Runtime {
        path: String,
        module: String,
        previous: String,
        #[serde(default, skip_serializing_if = "is_false")]
        escaped: bool,
    },
    /// One ethtool group of a live interface, as the kernel reported it
    /// (`sys::ethtool_group`: uapi field names, or changeable feature names to booleans).
    Ethtool { ifname: String, group: EthtoolGroup, module: String, previous: serde_json::Value },
    /// Whether a systemd unit was active (live root only); rollback starts or stops it.
    Unit { unit: String, module: String, active: bool },
    /// A folder the run created (it did not exist): rollback removes it when it is empty.
    Dir { path: String, module: String },
    /// A running thread's scheduling (live root only); rollback puts it back if the same
    /// thread (ids and start time) still runs.
    Thread { thread: ThreadId, module: String, previous: Sched },
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How bytes are kept in a text field of the journal: as they are when they are UTF-8,
/// else in `text::view` form with `escaped: true` (so old bundles, which have no `escaped`,
/// read as they always did).
pub fn encode(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (crate::engine::text::view(bytes).into_owned(), true),
    }
}

/// The bytes `encode` kept; `None` for an escaped text that is not a `view` form.
pub fn decode(text: &str, escaped: bool) -> Option<Vec<u8>> {
    if escaped { crate::engine::text::unescape(text) } else { Some(text.as_bytes().to_vec()) }
}

impl Entry {
    pub fn item(&self) -> Item {
        match self {
            Entry::File { path, .. } => Item::File(path.clone()),
            Entry::Link { path, .. } => Item::Link(path.clone()),
            Entry::Runtime { path, .. } => Item::Kernel(path.clone()),
            Entry::Ethtool { ifname, group, .. } => Item::Ethtool { ifname: ifname.clone(), group: *group },
            Entry::Unit { unit, .. } => Item::Unit(unit.clone()),
            Entry::Dir { path, .. } => Item::Dir(path.clone()),
            Entry::Thread { thread, .. } => Item::Thread(thread.clone()),
        }
    }

    /// The path of the item; an ethtool entry's interface name.
    pub fn path(&self) -> &str {
        match self {
            Entry::File { path, .. }
            | Entry::Link { path, .. }
            | Entry::Runtime { path, .. }
            | Entry::Dir { path, .. } => path,
            Entry::Ethtool { ifname, .. } => ifname,
            Entry::Unit { unit, .. } => unit,
            Entry::Thread { thread, .. } => &thread.comm,
        }
    }

    pub fn module(&self) -> &str {
        match self {
            Entry::File { module, .. }
            | Entry::Link { module, .. }
            | Entry::Runtime { module, .. }
            | Entry::Ethtool { module, .. } => module,
            Entry::Unit { module, .. } | Entry::Dir { module, .. } | Entry::Thread { module, .. } => module,
        }
    }

    pub fn is_boot(&self) -> bool {
        matches!(self, Entry::File { boot: true, .. } | Entry::Link { boot: true, .. })
    }

    /// Refuses what this code never writes: a path that is not canonical, a copy outside
    /// `files/`, a module name that is not one.
    fn validate(&self) -> Result<(), String> {
        let path = self.path();
        if let Entry::Ethtool { ifname, previous, .. } = self {
            if !valid_ifname(ifname) {
                return Err(format!("interface name {:?} is not valid", cap_text(ifname)));
            }
            let size = serde_json::to_string(previous).map_or(usize::MAX, |t| t.len());
            if !previous.is_object() || size > 1 << 20 {
                return Err(format!("{ifname}: previous ethtool state is not a mapping of at most 1 MiB"));
            }
        } else if let Entry::Unit { unit, .. } = self {
            if !crate::engine::state::valid_unit_name(unit) {
                return Err(format!("unit {:?} is not a unit name", cap_text(unit)));
            }
        } else if let Entry::Thread { thread, previous, .. } = self {
            if thread.tid == 0 || thread.pid == 0 || thread.comm.len() > 64 || thread.comm.contains('\0') {
                return Err(format!("thread {:?} is not a thread's ids and name", cap_text(&thread.to_string())));
            }
            let max = if previous.policy.is_realtime() { 99 } else { 0 };
            if previous.affinity.is_empty() || previous.priority > max || (max > 0 && previous.priority == 0) {
                return Err(format!("thread {thread}: previous scheduling {} is not valid", previous.show()));
            }
        } else if !resolve::is_normal(path) || path == "/" || path.len() > 4096 {
            return Err(format!("path {:?} is not a canonical absolute path", cap_text(path)));
        }
        let m = self.module();
        if m.is_empty() || m.len() > 64 || !m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{path}: module {:?} is not a module name", cap_text(m)));
        }
        match self {
            Entry::File { previous: Some(saved), .. } if !valid_blob(&saved.blob) => {
                Err(format!("{path}: copy {:?} is not a file of the bundle", cap_text(&saved.blob)))
            }
            Entry::Link { previous: Some(to), escaped, .. }
                if to.len() > 4 * 4096
                    || decode(to, *escaped).is_none_or(|b| b.is_empty() || b.len() > 4096 || b.contains(&0)) =>
            {
                Err(format!("{path}: link target {:?} is not valid", cap_text(to)))
            }
            Entry::Runtime { previous, escaped, .. }
                if previous.len() > 4 << 20 || decode(previous, *escaped).is_none_or(|b| b.len() > 1 << 20) =>
            {
                Err(format!("{path}: value too long, or not an escaped text"))
            }
            _ => Ok(()),
        }
    }
}

/// An interface name as the kernel's dev_valid_name takes it: 1 to 15 bytes, not `.` or `..`,
/// no `/`, `:`, whitespace or control character.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < crate::sys::ethtool::IFNAMSIZ
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_graphic() && c != '/' && c != ':')
}

/// `files/` + a name of letters, digits, `.`, `_`, `-` that does not start with a dot.
fn valid_blob(blob: &str) -> bool {
    blob.strip_prefix("files/").is_some_and(|n| {
        !n.is_empty()
            && n.len() <= 255
            && !n.starts_with('.')
            && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    })
}

/// `journal.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub backup_id: String,
    /// When the bundle was started (UTC, `20261122T101500Z`).
    pub created: String,
    pub entries: Vec<Entry>,
}

/// A bundle, open for appending or for reading. Opening writes nothing: the folder is made
/// by the first `record`, so check mode and runs without a change leave no bundle behind.
/// Open it under the root's lock (`engine::lock`), so that what it read is still the bundle
/// when it appends.
#[derive(Debug, Clone)]
pub struct Journal {
    pub id: String,
    /// Target path of the bundle folder: `/var/lib/lltune/backups/<id>`.
    pub dir: String,
    pub manifest: Manifest,
}

/// Reads `rel` (`journal.json`, `files/NNN-name`) of the bundle `dir` without following a
/// link anywhere inside the bundle: the bundle folder, `files/` and the file itself must be
/// what they are, not links to them (a copy that is a link would restore whatever it names).
/// Links above the bundle (a `/var` that is a link) are the host's layout and are followed.
/// `None` when the file does not exist.
fn read_in_bundle(host: &Host, dir: &str, rel: &str) -> Result<Option<Vec<u8>>> {
    let refuse = |p: &str| anyhow::anyhow!("{p} is a symbolic link; a bundle's files are never followed");
    let mut at = dir.to_string();
    if host.read_link(&at).is_some() {
        return Err(refuse(&at));
    }
    for part in rel.split('/') {
        at = format!("{at}/{part}");
        if host.read_link(&at).is_some() {
            return Err(refuse(&at));
        }
    }
    match host.node(&at)? {
        Node::Absent => Ok(None),
        Node::File(bytes, _) => Ok(Some(bytes)),
        Node::Link(_) => Err(refuse(&at)),
    }
}

/// The most bundle ids a message lists.
pub const LISTED_BUNDLES: usize = 10;

/// The bundles under `root` (ids with a manifest), newest first by name (the default ids are
/// UTC timestamps), at most `LISTED_BUNDLES`, and how many there are in all.
pub fn existing_bundles(host: &Host) -> (Vec<String>, usize) {
    let mut ids: Vec<String> =
        host.list_or_empty(BACKUPS_DIR).into_iter().filter(|n| backup_id::validate(n).is_ok()).collect();
    crate::sort::sort_by(&mut ids, |a, b| b.cmp(a));
    let mut shown = Vec::new();
    let mut total = 0;
    for id in ids {
        if host.exists(&format!("{BACKUPS_DIR}/{id}/{MANIFEST}")) {
            total += 1;
            if shown.len() < LISTED_BUNDLES {
                shown.push(id);
            }
        }
    }
    (shown, total)
}

/// "bundles on this host: a, b (and 3 older)", or that there is none.
pub fn describe_bundles((shown, total): &(Vec<String>, usize)) -> String {
    if shown.is_empty() {
        return format!("this host has no backup bundle ({BACKUPS_DIR} holds none)");
    }
    let more = total.saturating_sub(shown.len());
    format!(
        "bundles on this host, newest first: {}{}",
        shown.join(", "),
        if more > 0 { format!(" (and {more} older)") } else { String::new() }
    )
}

impl Journal {
    /// The bundle `id` under `root`, existing or not.
    pub fn open(host: &Host, id: &str) -> Result<Journal> {
        backup_id::validate(id).map_err(Failure::new)?;
        let dir = format!("{BACKUPS_DIR}/{id}");
        for d in [dir.clone(), format!("{dir}/files")] {
            if host.read_link(&d).is_some() {
                return Err(Failure::new(format!(
                    "backup {id}: {d} is a symbolic link; a bundle's files are never followed"
                ))
                .into());
            }
        }
        let manifest = read_in_bundle(host, &dir, MANIFEST)
            .map_err(|e| Failure::new(format!("backup {id}: {e:#}")))?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        match manifest {
            Some(text) => Journal::parse(id, &dir, &text),
            None => Ok(Journal {
                id: id.to_string(),
                dir,
                manifest: Manifest {
                    version: MANIFEST_VERSION,
                    backup_id: id.to_string(),
                    created: backup_id::now_utc(),
                    entries: Vec::new(),
                },
            }),
        }
    }

    /// An existing bundle, named by its id, its target path (`/var/lib/lltune/backups/<id>`)
    /// or, when `root` is not `/`, its real path under `root`. Anything else is refused.
    pub fn load(host: &Host, backup: &str) -> Result<Journal> {
        let trimmed = backup.trim_end_matches('/');
        let bad = || {
            Failure::new(format!(
                "option backup: {:?} is neither a backup id nor a folder under {BACKUPS_DIR}",
                cap_text(backup)
            ))
        };
        let id = if !trimmed.contains('/') {
            trimmed.to_string()
        } else {
            let target = host.target_of(trimmed);
            let normal = resolve::normalize(&target).filter(|n| n == &target).ok_or_else(bad)?;
            let id = normal.strip_prefix(BACKUPS_DIR).and_then(|r| r.strip_prefix('/')).ok_or_else(bad)?;
            if id.contains('/') {
                return Err(bad().into());
            }
            id.to_string()
        };
        backup_id::validate(&id).map_err(|e| Failure::new(format!("option backup: {e}")))?;
        let dir = format!("{BACKUPS_DIR}/{id}");
        let manifest = read_in_bundle(host, &dir, MANIFEST)
            .map_err(|e| Failure::new(format!("backup {id}: {e:#}")))?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        match manifest {
            Some(text) => Journal::parse(&id, &dir, &text),
            None => Err(Failure::new(format!(
                "backup {id}: no {dir}/{MANIFEST} under root; {}",
                describe_bundles(&existing_bundles(host))
            ))
            .into()),
        }
    }

    fn parse(id: &str, dir: &str, text: &str) -> Result<Journal> {
        let manifest: Manifest = serde_json::from_str(text).map_err(|e| {
            Failure::new(format!("{dir}/{MANIFEST}: not a valid journal: {}", cap_text(&e.to_string())))
        })?;
        if manifest.version != MANIFEST_VERSION {
            return Err(Failure::new(format!(
                "{dir}/{MANIFEST}: journal version {} is not supported (expected {MANIFEST_VERSION})",
                manifest.version
            ))
            .into());
        }
        if manifest.entries.len() > MAX_ENTRIES {
            return Err(Failure::new(format!("{dir}/{MANIFEST}: more than {MAX_ENTRIES} entries")).into());
        }
        for (n, e) in manifest.entries.iter().enumerate() {
            e.validate().map_err(|m| Failure::new(format!("{dir}/{MANIFEST}: entry {n}: {m}; refused")))?;
        }
        Ok(Journal { id: id.to_string(), dir: dir.to_string(), manifest })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.manifest.entries
    }

    /// True when the bundle already holds a previous state of `item`.
    pub fn has(&self, item: &Item) -> bool {
        self.manifest.entries.iter().any(|e| &e.item() == item)
    }

    /// Records the previous state of `item`, unless the bundle already has one. The copy of
    /// a file is written before the manifest that names it, both atomically: a crash leaves
    /// the old manifest or the new, never one naming a missing copy.
    pub fn record(&mut self, host: &Host, module: &str, boot: bool, item: &Item, previous: &State) -> Result<()> {
        if self.has(item) {
            return Ok(());
        }
        self.push(host, module, boot, item, previous)?;
        self.save(host)
    }

    /// Records the previous states of many items (those the bundle lacks), then saves the
    /// journal once: a run that changes thousands of kernel values (IRQ affinities) writes
    /// it once, not once per item, and looks each item up in a set, not the whole list.
    pub fn record_all<'a>(
        &mut self,
        host: &Host,
        module: &str,
        boot: bool,
        items: impl IntoIterator<Item = (&'a Item, &'a State)>,
    ) -> Result<()> {
        let mut seen: std::collections::HashSet<Item> = self.manifest.entries.iter().map(Entry::item).collect();
        let mut added = false;
        for (item, previous) in items {
            if seen.insert(item.clone()) {
                self.push(host, module, boot, item, previous)?;
                added = true;
            }
        }
        if added {
            self.save(host)?;
        }
        Ok(())
    }

    /// Adds an entry (and writes its file copy); the caller saves the manifest.
    fn push(&mut self, host: &Host, module: &str, boot: bool, item: &Item, previous: &State) -> Result<()> {
        if let (Item::Dir(_), State::Dir(true)) = (item, previous) {
            return Ok(()); // a folder that was there stays: nothing to record
        }
        let entry = match (item, previous) {
            (Item::File(path), State::File(prev)) => {
                let previous = match prev {
                    None => None,
                    Some((bytes, meta)) => {
                        let mut name = path.trim_start_matches('/').replace('/', "_");
                        name.retain(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
                        name.truncate(200);
                        let blob = format!("files/{:03}-{name}", self.manifest.entries.len());
                        host.write_atomic_as(&format!("{}/{blob}", self.dir), bytes, &FileMeta::private())
                            .with_context(|| format!("saving {path} into backup {}", self.dir))?;
                        Some(SavedFile {
                            blob,
                            mode: meta.mode,
                            uid: meta.uid,
                            gid: meta.gid,
                            xattrs: meta.xattrs.clone(),
                        })
                    }
                };
                Entry::File { path: path.clone(), module: module.to_string(), boot, previous }
            }
            (Item::Link(path), State::Link(to)) => {
                let (previous, escaped) = match to {
                    Some(t) => {
                        let (t, e) = encode(t);
                        (Some(t), e)
                    }
                    None => (None, false),
                };
                Entry::Link { path: path.clone(), module: module.to_string(), boot, previous, escaped }
            }
            (Item::Kernel(path), State::Kernel(value)) => {
                let (previous, escaped) = encode(value);
                Entry::Runtime { path: path.clone(), module: module.to_string(), previous, escaped }
            }
            (Item::Ethtool { ifname, group }, State::Ethtool(value)) => Entry::Ethtool {
                ifname: ifname.clone(),
                group: *group,
                module: module.to_string(),
                previous: value.clone(),
            },
            (Item::Unit(unit), State::Unit { active }) => {
                Entry::Unit { unit: unit.clone(), module: module.to_string(), active: *active }
            }
            // A thread gone before the write: nothing to record, nothing will be set.
            (Item::Thread(_), State::Thread(None)) => return Ok(()),
            (Item::Thread(thread), State::Thread(Some(previous))) => {
                Entry::Thread { thread: thread.clone(), module: module.to_string(), previous: previous.clone() }
            }
            // Only folders that did not exist are recorded (the runner asks for no others).
            (Item::Dir(path), State::Dir(false)) => Entry::Dir { path: path.clone(), module: module.to_string() },
            _ => anyhow::bail!("internal error: state of {} does not match its kind", item.path()),
        };
        self.manifest.entries.push(entry);
        Ok(())
    }

    fn save(&self, host: &Host) -> Result<()> {
        let mut text = serde_json::to_string_pretty(&self.manifest).context("serializing the journal")?;
        text.push('\n');
        host.write_atomic_as(&format!("{}/{MANIFEST}", self.dir), text.as_bytes(), &FileMeta::private())
            .with_context(|| format!("writing backup journal {}/{MANIFEST}", self.dir))?;
        Ok(())
    }

    /// The saved previous contents of a file entry.
    pub fn blob(&self, host: &Host, saved: &SavedFile) -> Result<Vec<u8>> {
        if !valid_blob(&saved.blob) {
            anyhow::bail!("backup copy {:?} is not a file of the bundle", cap_text(&saved.blob));
        }
        read_in_bundle(host, &self.dir, &saved.blob)
            .with_context(|| format!("reading backup copy {}", saved.blob))?
            .ok_or_else(|| {
                anyhow::anyhow!("reading backup copy {}: {}/{} does not exist", saved.blob, self.dir, saved.blob)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::state::{Action, normalize_value};
    use crate::engine::{Record, carry_out};
    use crate::protocol::Failure;

    fn host() -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        (dir, host)
    }

    #[test]
    fn first_previous_state_wins_and_bundles_append() {
        let (_d, host) = host();
        host.write_atomic("/etc/a.conf", b"original\n", None).unwrap();
        let mut j = Journal::open(&host, "t1").unwrap();
        assert!(!host.exists("/var/lib/lltune/backups/t1"), "open writes nothing");
        carry_out(
            &host,
            Some(Record { journal: &mut j, module: "m1", boot: false }),
            &[Action::WriteFile { path: "/etc/a.conf".into(), contents: b"second\n".to_vec() }],
        )
        .unwrap();
        // A second module in the same play, same bundle, same file.
        let mut j2 = Journal::open(&host, "t1").unwrap();
        carry_out(
            &host,
            Some(Record { journal: &mut j2, module: "m2", boot: true }),
            &[
                Action::WriteFile { path: "/etc/a.conf".into(), contents: b"third\n".to_vec() },
                Action::WriteFile { path: "/etc/new.conf".into(), contents: b"x\n".to_vec() },
            ],
        )
        .unwrap();
        let j3 = Journal::load(&host, "/var/lib/lltune/backups/t1/").unwrap();
        assert_eq!(j3.entries().len(), 2);
        let Entry::File { previous: Some(saved), module, .. } = &j3.entries()[0] else { panic!("{:?}", j3.entries()) };
        assert_eq!(module, "m1");
        assert_eq!(j3.blob(&host, saved).unwrap(), b"original\n");
        assert!(matches!(&j3.entries()[1], Entry::File { previous: None, boot: true, .. }));
        // Real path under root works too.
        let real = host.root().join("var/lib/lltune/backups/t1");
        assert_eq!(Journal::load(&host, &real.display().to_string()).unwrap().id, "t1");
        assert!(Journal::load(&host, "nope").is_err());
        // Only ids and folders under the backups folder name a bundle.
        for bad in
            ["../x", "/etc", "/var/lib/lltune/backups/../../../etc", "/var/lib/lltune/backups/t1/files", "a/../t1"]
        {
            let e = format!("{:#}", Journal::load(&host, bad).unwrap_err());
            assert!(
                e.contains("neither a backup id nor a folder") || e.contains("not a valid backup id"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn failure_midway_restores_this_runs_changes() {
        let (_d, host) = host();
        host.write_atomic("/etc/a.conf", b"a\n", None).unwrap();
        let err = carry_out(
            &host,
            None,
            &[
                Action::WriteFile { path: "/etc/a.conf".into(), contents: b"changed\n".to_vec() },
                Action::WriteFile { path: "/etc/b.conf".into(), contents: b"new\n".to_vec() },
                // A command after two writes: a tree refuses to run it, so the run fails there.
                Action::Run { argv: vec!["false".into()], rewrites: vec![] },
            ],
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("reverted this run's changes to: /etc/b.conf, /etc/a.conf"), "{msg}");
        assert_eq!(host.read("/etc/a.conf").unwrap(), "a\n");
        assert!(!host.exists("/etc/b.conf"));
        let f = err.downcast_ref::<Failure>().unwrap();
        assert!(!f.changed);
    }

    #[test]
    fn kernel_write_is_verified() {
        let (_d, host) = host();
        host.write_atomic("/proc/sys/net/core/busy_poll", b"0\n", None).unwrap();
        carry_out(
            &host,
            None,
            &[Action::WriteKernel { path: "/proc/sys/net/core/busy_poll".into(), value: "50".into() }],
        )
        .unwrap();
        assert_eq!(host.read("/proc/sys/net/core/busy_poll").unwrap(), "50\n");
        assert_eq!(normalize_value("4096\t87380  6291456\n"), "4096 87380 6291456");
    }
}
