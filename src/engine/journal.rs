//! The backup bundle of a run, and the one place where changing modules write to the host.
//!
//! Before a module changes anything it records the previous state of every item it will
//! touch under `<root>/var/lib/lltune/backups/<backup_id>/`: `journal.json` (an ordered list
//! of entries) and `files/` (previous file contents, byte for byte). Several modules of one
//! play share a `backup_id` and append to one bundle; only the FIRST previous state of an
//! item is kept, so a second module touching the same file does not overwrite the baseline.
//! `lltune_rollback` restores the entries in reverse order.
//!
//! `carry_out` is the write path every module follows: snapshot, journal, act, verify, and on
//! a failure midway restore what this run had already changed (from its in-memory snapshot,
//! not the bundle: the bundle may hold an older baseline from an earlier module of the play).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::host::{FileMeta, Host, HostError};
use crate::protocol::Failure;

/// Where bundles live, under `root`.
pub const BACKUPS_DIR: &str = "/var/lib/lltune/backups";
/// The manifest of a bundle.
pub const MANIFEST: &str = "journal.json";
/// Version of the manifest format.
pub const MANIFEST_VERSION: u32 = 1;

/// One thing on the host a module changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A regular file, e.g. `/etc/default/grub`.
    File(String),
    /// A kernel value file, e.g. `/proc/sys/net/core/busy_poll`.
    Runtime(String),
}

impl Item {
    pub fn path(&self) -> &str {
        match self {
            Item::File(p) | Item::Runtime(p) => p,
        }
    }
}

/// The state of an item at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// A file's bytes and mode/owner; `None` when it does not exist.
    File(Option<(Vec<u8>, FileMeta)>),
    /// A kernel value exactly as read (with its newline), so restoring a fixture tree's
    /// plain file gives back the same bytes.
    Runtime(String),
}

/// A file's previous contents as stored in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFile {
    /// Path of the copy, relative to the bundle (`files/000-etc_default_grub`).
    pub blob: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// One entry of `journal.json`: the state of an item before the bundle's run changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
    Runtime {
        path: String,
        module: String,
        previous: String,
    },
}

impl Entry {
    pub fn item(&self) -> Item {
        match self {
            Entry::File { path, .. } => Item::File(path.clone()),
            Entry::Runtime { path, .. } => Item::Runtime(path.clone()),
        }
    }

    pub fn is_boot(&self) -> bool {
        matches!(self, Entry::File { boot: true, .. })
    }
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
#[derive(Debug, Clone)]
pub struct Journal {
    pub id: String,
    /// Target path of the bundle folder: `/var/lib/lltune/backups/<id>`.
    pub dir: String,
    pub manifest: Manifest,
}

/// `20261122T101500Z-<pid>`: sorts by time, unique per process.
pub fn default_backup_id() -> String {
    format!("{}-{}", utc_stamp(SystemTime::now()), std::process::id())
}

/// A UTC timestamp `YYYYMMDDTHHMMSSZ` without a date library (civil-from-days, H. Hinnant).
fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A backup id names a folder: letters, digits, `.`, `_`, `-`, not starting with a dot.
pub fn validate_backup_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("{id:?} is not a valid backup id (letters, digits, '.', '_', '-'; not starting with '.')"))
    }
}

impl Journal {
    /// The bundle `id` under `root`, existing or not.
    pub fn open(host: &Host, id: &str) -> Result<Journal> {
        validate_backup_id(id).map_err(Failure::new)?;
        let dir = format!("{BACKUPS_DIR}/{id}");
        match host.read_opt(&format!("{dir}/{MANIFEST}"))? {
            Some(text) => Journal::parse(id, &dir, &text),
            None => Ok(Journal {
                id: id.to_string(),
                dir,
                manifest: Manifest {
                    version: MANIFEST_VERSION,
                    backup_id: id.to_string(),
                    created: utc_stamp(SystemTime::now()),
                    entries: Vec::new(),
                },
            }),
        }
    }

    /// An existing bundle, named by its id, its target path (`/var/lib/lltune/backups/<id>`)
    /// or, when `root` is not `/`, its real path under `root`.
    pub fn load(host: &Host, backup: &str) -> Result<Journal> {
        let trimmed = backup.trim_end_matches('/');
        let mut candidates = Vec::new();
        if !trimmed.contains('/') {
            validate_backup_id(trimmed).map_err(Failure::new)?;
            candidates.push(format!("{BACKUPS_DIR}/{trimmed}"));
        } else {
            candidates.push(trimmed.to_string());
            if !host.is_live() {
                if let Ok(rel) = std::path::Path::new(trimmed).strip_prefix(host.root()) {
                    candidates.push(format!("/{}", rel.display()));
                }
            }
        }
        for dir in &candidates {
            if let Some(text) = host.read_opt(&format!("{dir}/{MANIFEST}"))? {
                let id = dir.rsplit('/').next().unwrap_or(dir).to_string();
                return Journal::parse(&id, dir, &text);
            }
        }
        Err(Failure::new(format!("backup {backup}: no {MANIFEST} found (looked in {})", candidates.join(", "))).into())
    }

    fn parse(id: &str, dir: &str, text: &str) -> Result<Journal> {
        let manifest: Manifest = serde_json::from_str(text)
            .map_err(|e| Failure::new(format!("{dir}/{MANIFEST}: not a valid journal: {e}")))?;
        if manifest.version != MANIFEST_VERSION {
            return Err(Failure::new(format!(
                "{dir}/{MANIFEST}: journal version {} is not supported (expected {MANIFEST_VERSION})",
                manifest.version
            ))
            .into());
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
        let entry = match (item, previous) {
            (Item::File(path), State::File(prev)) => {
                let previous = match prev {
                    None => None,
                    Some((bytes, meta)) => {
                        let blob = format!(
                            "files/{:03}-{}",
                            self.manifest.entries.len(),
                            path.trim_start_matches('/').replace('/', "_")
                        );
                        let private = FileMeta { mode: 0o600, uid: 0, gid: 0 };
                        host.write_atomic_as(&format!("{}/{blob}", self.dir), bytes, private)
                            .with_context(|| format!("saving {path} into backup {}", self.dir))?;
                        Some(SavedFile { blob, mode: meta.mode, uid: meta.uid, gid: meta.gid })
                    }
                };
                Entry::File { path: path.clone(), module: module.to_string(), boot, previous }
            }
            (Item::Runtime(path), State::Runtime(value)) => {
                Entry::Runtime { path: path.clone(), module: module.to_string(), previous: value.clone() }
            }
            _ => anyhow::bail!("internal error: state of {} does not match its kind", item.path()),
        };
        self.manifest.entries.push(entry);
        self.save(host)
    }

    fn save(&self, host: &Host) -> Result<()> {
        let mut text = serde_json::to_string_pretty(&self.manifest).context("serializing the journal")?;
        text.push('\n');
        host.write_atomic_as(
            &format!("{}/{MANIFEST}", self.dir),
            text.as_bytes(),
            FileMeta { mode: 0o600, uid: 0, gid: 0 },
        )
        .with_context(|| format!("writing backup journal {}/{MANIFEST}", self.dir))?;
        Ok(())
    }

    /// The saved previous contents of a file entry.
    pub fn blob(&self, host: &Host, saved: &SavedFile) -> Result<Vec<u8>> {
        host.read_bytes(&format!("{}/{}", self.dir, saved.blob))
            .with_context(|| format!("reading backup copy {}", saved.blob))
    }
}

/// Reads the current state of an item.
pub fn read_state(host: &Host, item: &Item) -> Result<State, HostError> {
    match item {
        Item::File(path) => match host.file_meta(path)? {
            None => Ok(State::File(None)),
            Some(meta) => Ok(State::File(Some((host.read_bytes(path)?, meta)))),
        },
        Item::Runtime(path) => Ok(State::Runtime(host.read(path)?)),
    }
}

/// Kernel values compared the way `sysctl` users mean them: whitespace runs are one space
/// (`net.ipv4.tcp_rmem` reads back tab-separated).
pub fn normalize_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One write a module performs. Planning produces these; `carry_out` performs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Replace a file atomically, keeping its mode and owner (a new file: 0644 root).
    WriteFile {
        path: String,
        contents: Vec<u8>,
    },
    /// Put back a file exactly: bytes, mode and owner.
    RestoreFile {
        path: String,
        contents: Vec<u8>,
        meta: FileMeta,
    },
    RemoveFile {
        path: String,
    },
    /// Write a value into a kernel file and read it back.
    WriteKernel {
        path: String,
        value: String,
    },
    /// Run a command that rewrites `rewrites` (grub2-mkconfig -o <cfg>); only on a live host.
    Run {
        argv: Vec<String>,
        rewrites: Vec<String>,
    },
}

impl Action {
    fn items(&self) -> Vec<Item> {
        match self {
            Action::WriteFile { path, .. } | Action::RestoreFile { path, .. } | Action::RemoveFile { path } => {
                vec![Item::File(path.clone())]
            }
            Action::WriteKernel { path, .. } => vec![Item::Runtime(path.clone())],
            Action::Run { rewrites, .. } => rewrites.iter().cloned().map(Item::File).collect(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Action::WriteFile { path, .. } | Action::RestoreFile { path, .. } => format!("writing {path}"),
            Action::RemoveFile { path } => format!("removing {path}"),
            Action::WriteKernel { path, value } => format!("writing {value:?} to {path}"),
            Action::Run { argv, .. } => format!("running {}", argv.join(" ")),
        }
    }
}

/// Where `carry_out` records previous states; `None` for rollback itself.
pub struct Record<'a> {
    pub journal: &'a mut Journal,
    pub module: &'a str,
    /// The items are boot configuration.
    pub boot: bool,
}

/// Performs `actions` in order: snapshot every item, journal the snapshots, act, verify.
/// On a failure, restores every item this call touched (in reverse order) and fails with a
/// message listing them; `changed` in the failure is true only if a restore failed too.
pub fn carry_out(host: &Host, record: Option<Record<'_>>, actions: &[Action]) -> Result<()> {
    let mut items: Vec<Item> = Vec::new();
    for a in actions {
        for i in a.items() {
            if !items.contains(&i) {
                items.push(i);
            }
        }
    }
    let mut snapshots = Vec::with_capacity(items.len());
    for i in &items {
        let s = read_state(host, i).with_context(|| format!("reading the current state of {}", i.path()))?;
        snapshots.push(s);
    }
    if let Some(r) = record {
        for (i, s) in items.iter().zip(&snapshots) {
            r.journal.record(host, r.module, r.boot, i, s)?;
        }
    }
    let mut touched: Vec<usize> = Vec::new();
    for a in actions {
        for i in a.items() {
            if let Some(n) = items.iter().position(|x| *x == i) {
                if !touched.contains(&n) {
                    touched.push(n);
                }
            }
        }
        if let Err(e) = perform(host, a) {
            let cause = format!("{}: {e:#}", a.describe());
            return Err(revert(host, &items, &snapshots, &touched, cause));
        }
    }
    Ok(())
}

fn perform(host: &Host, action: &Action) -> Result<()> {
    match action {
        Action::WriteFile { path, contents } => {
            host.write_atomic(path, contents, None)?;
            verify_file(host, path, contents)
        }
        Action::RestoreFile { path, contents, meta } => {
            host.write_atomic_as(path, contents, *meta)?;
            verify_file(host, path, contents)
        }
        Action::RemoveFile { path } => Ok(host.remove(path)?),
        Action::WriteKernel { path, value } => {
            // A trailing newline, as `echo` writes: the kernel accepts it and a fixture
            // file keeps the shape the kernel would show.
            let line = if value.ends_with('\n') { value.clone() } else { format!("{value}\n") };
            host.write_kernel(path, &line)?;
            let now = host.read(path)?;
            if normalize_value(&now) != normalize_value(value) {
                anyhow::bail!("the kernel kept {:?}", now.trim_end());
            }
            Ok(())
        }
        Action::Run { argv, .. } => {
            let (prog, args) = argv.split_first().context("empty command")?;
            let out =
                std::process::Command::new(prog).args(args).output().with_context(|| format!("cannot run {prog}"))?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                anyhow::bail!("{} ({})", out.status, err.trim());
            }
            Ok(())
        }
    }
}

fn verify_file(host: &Host, path: &str, contents: &[u8]) -> Result<()> {
    if host.read_bytes(path)? != contents {
        anyhow::bail!("{path} does not read back as written");
    }
    Ok(())
}

/// Puts back one item to a snapshot; `false` when it already was in that state.
pub fn restore(host: &Host, item: &Item, state: &State) -> Result<bool> {
    let now = read_state(host, item).ok();
    let same = match (&now, state) {
        (Some(State::Runtime(a)), State::Runtime(b)) => normalize_value(a) == normalize_value(b),
        (Some(now), state) => now == state,
        (None, _) => false,
    };
    if same {
        return Ok(false);
    }
    match (item, state) {
        (Item::File(path), State::File(None)) => host.remove(path)?,
        (Item::File(path), State::File(Some((bytes, meta)))) => host.write_atomic_as(path, bytes, *meta)?,
        (Item::Runtime(path), State::Runtime(v)) => host.write_kernel(path, v)?,
        _ => anyhow::bail!("internal error: state of {} does not match its kind", item.path()),
    }
    Ok(true)
}

fn revert(host: &Host, items: &[Item], snapshots: &[State], touched: &[usize], cause: String) -> anyhow::Error {
    let mut reverted = Vec::new();
    let mut stuck = Vec::new();
    for &n in touched.iter().rev() {
        match restore(host, &items[n], &snapshots[n]) {
            Ok(true) => reverted.push(items[n].path().to_string()),
            Ok(false) => {}
            Err(e) => stuck.push(format!("{} ({e:#})", items[n].path())),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        (dir, host)
    }

    #[test]
    fn utc_stamp_is_civil_time() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_774_500); // 2026-11-27T10:15:00Z
        assert_eq!(utc_stamp(t), "20261127T101500Z");
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        assert!(default_backup_id().ends_with(&format!("-{}", std::process::id())));
    }

    #[test]
    fn backup_ids_are_folder_names() {
        assert!(validate_backup_id("20261122T101500Z-42").is_ok());
        for bad in ["", "..", "a/b", ".hidden", "a b", "x;y"] {
            assert!(validate_backup_id(bad).is_err(), "{bad}");
        }
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
    }

    #[test]
    fn failure_midway_restores_this_runs_changes() {
        let (_d, host) = host();
        host.write_atomic("/etc/a.conf", b"a\n", None).unwrap();
        host.write_atomic("/etc/blocker", b"a file where a folder is needed\n", None).unwrap();
        let err = carry_out(
            &host,
            None,
            &[
                Action::WriteFile { path: "/etc/a.conf".into(), contents: b"changed\n".to_vec() },
                Action::WriteFile { path: "/etc/b.conf".into(), contents: b"new\n".to_vec() },
                // A file in place of a folder: the write fails.
                Action::WriteFile { path: "/etc/blocker/x.conf".into(), contents: b"1".to_vec() },
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
