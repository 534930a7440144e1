//! The kinds of host state a module changes, and the writes that change them.
//!
//! Every kind can be read (the snapshot the journal keeps), compared, and put back. A new
//! kind (an ethtool setting, a unit's enablement) is one variant of `Item` and `State`, one
//! arm in `read` and `put`, and an `Entry` variant in the journal.

use anyhow::Result;

use crate::engine::text;
use crate::facts::threads::{self, Sched, ThreadId};
use crate::host::system::{EthtoolStore, Kernel};
use crate::host::{FileMeta, Host, HostError, Node};
use crate::sys::ethtool_group::{self, Group as EthtoolGroup};

/// One thing on the host a module changes. Paths are canonical target paths: the engine
/// resolves links before it snapshots, so the journal names the file a link leads to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    /// A regular file (contents, mode, owner, xattrs) or its absence, e.g. `/etc/default/grub`.
    File(String),
    /// A symbolic link itself (its target as written) or its absence: unit enablement.
    Link(String),
    /// A kernel value file, e.g. `/proc/sys/net/core/busy_poll`.
    Kernel(String),
    /// One group of a live interface's ethtool settings (SIOCETHTOOL), e.g. `eth0` rings.
    Ethtool { ifname: String, group: EthtoolGroup },
    /// Whether a systemd unit is active (`irqbalance.service`); live root only.
    Unit(String),
    /// A folder that a write creates (so that rollback removes it again, when empty).
    Dir(String),
    /// A running thread's affinity, policy and priority; live root only.
    Thread(ThreadId),
}

impl Item {
    /// The item as messages name it: its path, or `ethtool <ifname> <group>`.
    pub fn path(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Item::File(p) | Item::Link(p) | Item::Kernel(p) | Item::Unit(p) | Item::Dir(p) => p.into(),
            Item::Ethtool { ifname, group } => format!("ethtool {ifname} {group}").into(),
            Item::Thread(id) => format!("thread {id}").into(),
        }
    }
}

/// The state of an item at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// A file's bytes and metadata; `None` when it does not exist.
    File(Option<(Vec<u8>, FileMeta)>),
    /// A link's target as written, byte for byte; `None` when there is no link.
    Link(Option<Vec<u8>>),
    /// A kernel value exactly as read, byte for byte (with its newline), so restoring a
    /// fixture tree's plain file gives back the same bytes.
    Kernel(Vec<u8>),
    /// An ethtool group as the kernel reports it (`sys::ethtool_group`).
    Ethtool(serde_json::Value),
    /// A unit's activity, as `systemctl is-active` tells it.
    Unit { active: bool },
    /// Whether a folder exists.
    Dir(bool),
    /// A thread's scheduling; `None` when the thread is gone.
    Thread(Option<Sched>),
}

/// Kernel values compared the way `sysctl` users mean them: whitespace runs are one space
/// (`net.ipv4.tcp_rmem` reads back tab-separated).
pub fn normalize_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl State {
    /// Equal as the host sees it (kernel values by their normalized text).
    pub fn same(&self, other: &State) -> bool {
        match (self, other) {
            (State::Kernel(a), State::Kernel(b)) => same_kernel_value(a, b),
            (a, b) => a == b,
        }
    }
}

/// Kernel values as bytes, compared as `same` does (whitespace runs are one space).
pub fn same_kernel_value(a: &[u8], b: &[u8]) -> bool {
    normalize_value(&text::view(a)) == normalize_value(&text::view(b))
}

/// Reads the current state of an item. A file item that is a link, a FIFO or a device is
/// refused: the engine resolved links already, so anything else there is not ours to touch.
pub fn read(host: &Host, item: &Item) -> Result<State, HostError> {
    match item {
        Item::File(path) => match host.node(path)? {
            Node::Absent => Ok(State::File(None)),
            Node::File(bytes, meta) => Ok(State::File(Some((bytes, meta)))),
            Node::Link(_) => Err(HostError::NotRegular { path: path.clone(), what: "symbolic link" }),
        },
        Item::Link(path) => match host.node(path)? {
            Node::Absent => Ok(State::Link(None)),
            Node::Link(to) => Ok(State::Link(Some(to))),
            Node::File(..) => Err(HostError::NotRegular { path: path.clone(), what: "regular file (not a link)" }),
        },
        Item::Kernel(path) => Ok(State::Kernel(host.read_bytes(path)?)),
        Item::Ethtool { ifname, group } => read_ethtool(host, ifname, *group),
        Item::Unit(unit) => unit_active(host, unit).map(|active| State::Unit { active }),
        Item::Dir(path) => Ok(State::Dir(host.is_dir(path))),
        Item::Thread(id) => read_thread(host, id),
    }
}

/// A thread's scheduling, `None` when it is gone (or its id now names another thread).
fn read_thread(host: &Host, id: &ThreadId) -> Result<State, HostError> {
    match threads::current(host, id) {
        None => Ok(State::Thread(None)),
        Some(t) => match t.sched() {
            Some(s) => Ok(State::Thread(Some(s))),
            None => Err(HostError::Invalid {
                path: format!("thread {id}"),
                reason: "its scheduling policy (SCHED_DEADLINE?) is not one lltune sets",
            }),
        },
    }
}

/// Sets a thread's affinity, policy and priority where they differ from `to`, and reads
/// them back. A thread that is gone (before or during the write) is no failure: there is
/// nothing left to set (`Ok(false)`); `Ok(true)` when it was set.
pub fn set_thread(host: &Host, id: &ThreadId, to: &Sched) -> Result<bool> {
    let gone = nix::errno::Errno::ESRCH;
    let Some(now) = threads::current(host, id) else { return Ok(false) };
    let refused = |what: &str, e: crate::host::system::NotRunning| anyhow::anyhow!("{what} thread {id}: refused, {e}");
    if now.affinity != to.affinity {
        match host.system().set_thread_affinity(id.tid, &to.affinity).map_err(|e| refused("moving", e))? {
            Ok(()) => {}
            Err(e) if e == gone => return Ok(false),
            Err(e) => anyhow::bail!("setting the CPUs of thread {id} to {}: {e}", to.affinity),
        }
    }
    if now.policy != Some(to.policy) || now.priority != to.priority {
        match host
            .system()
            .set_thread_scheduler(id.tid, to.policy, to.priority)
            .map_err(|e| refused("scheduling", e))?
        {
            Ok(()) => {}
            Err(e) if e == gone => return Ok(false),
            Err(e) => anyhow::bail!("setting thread {id} to {} {}: {e}", to.policy.name(), to.priority),
        }
    }
    match threads::current(host, id).and_then(|t| t.sched()) {
        None => Ok(false),
        Some(back) if back == *to => Ok(true),
        Some(back) => anyhow::bail!("thread {id} reads back as {}, not {}", back.show(), to.show()),
    }
}

/// The folders above `path` (canonical) that do not exist yet, outermost first: the ones a
/// write of `path` creates.
pub fn missing_dirs(host: &Host, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    while !dir.is_empty() && !host.exists(dir) {
        out.push(dir.to_string());
        dir = dir.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    }
    out.reverse();
    out
}

/// SIOCETHTOOL acts on the running kernel: only a live host (`root` `/`) has it.
fn read_ethtool(host: &Host, ifname: &str, group: EthtoolGroup) -> Result<State, HostError> {
    let path = format!("ethtool {ifname} {group}");
    if host.system().ethtool_store() != EthtoolStore::Kernel {
        return Err(HostError::Invalid { path, reason: "ethtool state is only read on a live host (root /)" });
    }
    host.system()
        .ethtool_read(ifname, group)
        .map(State::Ethtool)
        .map_err(|e| HostError::Io { path, err: std::io::Error::from_raw_os_error(e.errno as i32) })
}

pub use crate::host::system::valid_unit_name;

/// `systemctl is-active <unit>`: `active`, `activating` and `reloading` count as active.
/// Only on a live root: a captured tree has no running units to ask about.
pub fn unit_active(host: &Host, unit: &str) -> Result<bool, HostError> {
    host.system().unit_active(unit).unwrap_or_else(|_| {
        Err(HostError::Io {
            path: unit.to_string(),
            err: std::io::Error::other("run-time state of units is only read on a live root (/)"),
        })
    })
}

/// Puts an item back to a state; `false` when it already was in that state.
pub fn put(host: &Host, item: &Item, state: &State) -> Result<bool> {
    if read(host, item).ok().is_some_and(|now| now.same(state)) {
        return Ok(false);
    }
    match (item, state) {
        (Item::File(path), State::File(None)) | (Item::Link(path), State::Link(None)) => host.remove(path)?,
        (Item::File(path), State::File(Some((bytes, meta)))) => host.write_atomic_as(path, bytes, meta)?,
        (Item::Link(path), State::Link(Some(to))) => host.symlink(path, to)?,
        (Item::Kernel(path), State::Kernel(v)) => host.write_kernel(path, kernel_line(host, v))?,
        (Item::Ethtool { ifname, group }, State::Ethtool(v)) => {
            let now = match read(host, item)? {
                State::Ethtool(now) => now,
                _ => serde_json::Value::Null,
            };
            host.system().ethtool_write(ifname, *group, &ethtool_group::changes(*group, &now, v))?
        }
        (Item::Unit(unit), State::Unit { active }) => host.system().set_unit_active(unit, *active)?,
        (Item::Dir(path), State::Dir(true)) => host.create_dir_all(path)?,
        (Item::Dir(path), State::Dir(false)) => return Ok(host.remove_empty_dir(path)?),
        (Item::Thread(_), State::Thread(None)) => return Ok(false),
        (Item::Thread(id), State::Thread(Some(to))) => return set_thread(host, id, to),
        _ => anyhow::bail!("internal error: state of {} does not match its kind", item.path()),
    }
    Ok(true)
}

/// One write a module performs. Planning produces these; the runner carries them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Replace a file atomically, keeping its mode, owner and xattrs (a new file: 0644 root).
    WriteFile { path: String, contents: Vec<u8> },
    /// Put back a file exactly: bytes and metadata.
    RestoreFile { path: String, contents: Vec<u8>, meta: FileMeta },
    /// Remove a file or a link itself.
    RemoveFile { path: String },
    /// Make `path` a link to `to` (as written), replacing a link that was there.
    SetLink { path: String, to: String },
    /// Put back a link exactly: its target's bytes as the journal kept them (rollback).
    RestoreLink { path: String, to: Vec<u8> },
    /// Remove the link at `path` (never what it names).
    RemoveLink { path: String },
    /// Remove a folder lltune created, if it is empty again (rollback).
    RemoveDir { path: String },
    /// Write a value into a kernel file and read it back.
    WriteKernel { path: String, value: String },
    /// Put back a kernel value exactly: its bytes as the journal kept them (rollback).
    RestoreKernel { path: String, value: Vec<u8> },
    /// Start or stop a systemd unit (`systemctl start|stop`); only on a live host.
    SetUnit { unit: String, active: bool },
    /// Run a command that rewrites `rewrites` (grub2-mkconfig -o <cfg>); only on a live host.
    Run { argv: Vec<String>, rewrites: Vec<String> },
    /// Set fields of one ethtool group of a live interface (`changes`: uapi field or feature
    /// names to values) and read them back; only on a live host.
    SetEthtool { ifname: String, group: EthtoolGroup, changes: serde_json::Map<String, serde_json::Value> },
    /// Set a running thread's affinity, policy and priority (`to`) and read them back; a
    /// thread gone by then is left (nothing to set). Only on a live host.
    SetThread { thread: ThreadId, to: Sched },
}

impl Action {
    pub fn items(&self) -> Vec<Item> {
        match self {
            Action::WriteFile { path, .. } | Action::RestoreFile { path, .. } => vec![Item::File(path.clone())],
            Action::RemoveFile { path } => vec![Item::File(path.clone())],
            Action::SetLink { path, .. } | Action::RestoreLink { path, .. } | Action::RemoveLink { path } => {
                vec![Item::Link(path.clone())]
            }
            Action::WriteKernel { path, .. } | Action::RestoreKernel { path, .. } => vec![Item::Kernel(path.clone())],
            Action::SetUnit { unit, .. } => vec![Item::Unit(unit.clone())],
            Action::RemoveDir { path } => vec![Item::Dir(path.clone())],
            Action::Run { rewrites, .. } => rewrites.iter().cloned().map(Item::File).collect(),
            Action::SetEthtool { ifname, group, .. } => vec![Item::Ethtool { ifname: ifname.clone(), group: *group }],
            Action::SetThread { thread, .. } => vec![Item::Thread(thread.clone())],
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Action::WriteFile { path, .. } | Action::RestoreFile { path, .. } => format!("writing {path}"),
            Action::RemoveFile { path } => format!("removing {path}"),
            Action::SetLink { path, to } => format!("linking {path} -> {to}"),
            Action::RestoreLink { path, to } => format!("linking {path} -> {}", text::view(to)),
            Action::RemoveLink { path } => format!("removing link {path}"),
            Action::RemoveDir { path } => format!("removing folder {path} (if empty)"),
            Action::WriteKernel { path, value } => {
                format!("writing {:?} to {path}", crate::protocol::cap_text(value))
            }
            Action::RestoreKernel { path, value } => {
                format!("writing {:?} to {path}", crate::protocol::cap_text(&text::view(value)))
            }
            Action::SetUnit { unit, active } => format!("{} {unit}", if *active { "starting" } else { "stopping" }),
            Action::Run { argv, .. } => format!("running {}", argv.join(" ")),
            Action::SetEthtool { ifname, group, changes } => {
                let c: Vec<String> = changes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("setting ethtool {ifname} {group} ({})", crate::protocol::cap_text(&c.join(" ")))
            }
            Action::SetThread { thread, to } => format!("setting thread {thread} to {}", to.show()),
        }
    }

    /// The same action with its paths made canonical (links inside `root` resolved, so the
    /// journal and the write name the real file). A link leaving `root` fails here.
    pub fn resolved(&self, host: &Host) -> Result<Action, HostError> {
        let r = |p: &String| host.resolve(p, true);
        Ok(match self {
            Action::WriteFile { path, contents } => Action::WriteFile { path: r(path)?, contents: contents.clone() },
            Action::RestoreFile { path, contents, meta } => {
                Action::RestoreFile { path: r(path)?, contents: contents.clone(), meta: meta.clone() }
            }
            Action::RemoveFile { path } => Action::RemoveFile { path: host.resolve(path, false)? },
            Action::SetLink { path, to } => Action::SetLink { path: host.resolve(path, false)?, to: to.clone() },
            Action::RestoreLink { path, to } => {
                Action::RestoreLink { path: host.resolve(path, false)?, to: to.clone() }
            }
            Action::RemoveLink { path } => Action::RemoveLink { path: host.resolve(path, false)? },
            Action::RemoveDir { path } => Action::RemoveDir { path: host.resolve(path, false)? },
            Action::WriteKernel { path, value } => Action::WriteKernel { path: r(path)?, value: value.clone() },
            Action::RestoreKernel { path, value } => Action::RestoreKernel { path: r(path)?, value: value.clone() },
            Action::SetUnit { unit, active } => Action::SetUnit { unit: unit.clone(), active: *active },
            Action::Run { argv, rewrites } => {
                Action::Run { argv: argv.clone(), rewrites: rewrites.iter().map(r).collect::<Result<_, _>>()? }
            }
            Action::SetEthtool { ifname, group, .. } => {
                if host.system().ethtool_store() != EthtoolStore::Kernel {
                    let path = format!("ethtool {ifname} {group}");
                    return Err(HostError::Invalid {
                        path,
                        reason: "ethtool settings are only set on a live host (root /)",
                    });
                }
                self.clone()
            }
            Action::SetThread { thread, .. } => {
                if let Err(why) = host.system().can_act() {
                    return Err(HostError::Io {
                        path: format!("thread {thread}"),
                        err: std::io::Error::other(format!("threads are only set on a live host ({why})")),
                    });
                }
                self.clone()
            }
        })
    }

    /// Carries out the action and verifies what it can read back.
    pub fn perform(&self, host: &Host) -> Result<()> {
        match self {
            Action::WriteFile { path, contents } => {
                host.write_atomic(path, contents, None)?;
                settle_boot_file(host, path);
                verify_file(host, path, contents)
            }
            Action::RestoreFile { path, contents, meta } => {
                host.write_atomic_as(path, contents, meta)?;
                settle_boot_file(host, path);
                verify_file(host, path, contents)
            }
            Action::RemoveFile { path } => Ok(host.remove(path)?),
            Action::SetLink { path, to } => Ok(host.symlink(path, to)?),
            Action::RestoreLink { path, to } => Ok(host.symlink(path, to)?),
            Action::RemoveLink { path } => Ok(host.remove(path)?),
            Action::RemoveDir { path } => host.remove_empty_dir(path).map(|_| ()).map_err(Into::into),
            Action::WriteKernel { path, value } => write_kernel(host, path, value.as_bytes()),
            Action::RestoreKernel { path, value } => write_kernel(host, path, value),
            Action::SetUnit { unit, active } => host.system().set_unit_active(unit, *active),
            Action::Run { argv, rewrites } => {
                host.system().run(argv)?;
                // grub.cfg, regenerated: read by GRUB from the disk's blocks at the next boot.
                for path in rewrites {
                    host.settle_for_boot_loader(path);
                }
                Ok(())
            }
            Action::SetEthtool { ifname, group, changes } => host.system().ethtool_write(ifname, *group, changes),
            Action::SetThread { thread, to } => set_thread(host, thread, to).map(|_| ()),
        }
    }
}

/// A file under /boot (a BLS entry that GRUB's blscfg reads, grub.cfg): settled for a boot
/// loader that reads the disk without the file system's journal (`Host::settle_for_boot_loader`).
fn settle_boot_file(host: &Host, path: &str) {
    if path.starts_with("/boot/") {
        host.settle_for_boot_loader(path);
    }
}

/// A kernel value that read back other than written: the kernel accepted the write and kept
/// something else (a huge page pool it could fill only in part). The engine's verify
/// failure, typed: `carry_out` hands it to the plan's failure step (`Plan::on_failure`) as
/// `WriteFailure::NotKept`, so a module reports it without reading the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the kernel kept {:?}", crate::protocol::cap_text(.kept))]
pub struct NotKept {
    /// The kernel file (canonical path).
    pub path: String,
    /// The value written, as `text::view` shows it, without its trailing newline.
    pub written: String,
    /// What the file read back, the same way.
    pub kept: String,
}

/// Writes a kernel value and reads it back (compared in `text::view` form: as bytes); a
/// value the kernel did not keep is a `NotKept` error.
fn write_kernel(host: &Host, path: &str, value: &[u8]) -> Result<()> {
    host.write_kernel(path, kernel_line(host, value))?;
    let now = text::view(&host.read_bytes(path)?).into_owned();
    let written = text::view(value);
    if !reads_back_as(&now, &written) {
        return Err(NotKept {
            path: path.to_string(),
            written: written.trim_end().to_string(),
            kept: now.trim_end().to_string(),
        }
        .into());
    }
    Ok(())
}

/// The line written for a kernel value, with a trailing newline as `echo` writes it (the
/// kernel accepts it, and a fixture file keeps the shape the kernel would show). On a live
/// host a selection file's snapshot (`always [madvise] never`, THP) is written as its
/// bracketed word, the only form the kernel accepts; a tree's plain file gets the text back.
fn kernel_line(host: &Host, value: &[u8]) -> Vec<u8> {
    let word = std::str::from_utf8(value)
        .ok()
        .filter(|v| host.system().kernel() == Kernel::Running && v.contains('['))
        .and_then(selection);
    let mut v = word.map_or_else(|| value.to_vec(), String::into_bytes);
    if !v.ends_with(b"\n") {
        v.push(b'\n');
    }
    v
}

/// The chosen word of a selection file: `always [madvise] never` → `madvise`; a text without
/// brackets is returned trimmed. `None` for an empty text or an unclosed bracket.
pub fn selection(text: &str) -> Option<String> {
    let t = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    match t.find('[') {
        None if t.is_empty() => None,
        None => Some(t.to_string()),
        Some(start) => t[start + 1..].find(']').map(|end| t[start + 1..start + 1 + end].to_string()),
    }
}

/// A kernel value read back after writing `value`: the same text, or a selection file whose
/// bracketed word is the word written (`never` reads back as `always madvise [never]`).
pub fn reads_back_as(now: &str, value: &str) -> bool {
    normalize_value(now) == normalize_value(value)
        || (now.contains('[') && selection(now).is_some() && selection(now) == selection(value))
}

fn verify_file(host: &Host, path: &str, contents: &[u8]) -> Result<()> {
    if host.read_bytes(path)? != contents {
        anyhow::bail!("{path} does not read back as written");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::journal::Journal;
    use crate::engine::{Record, carry_out};

    #[test]
    fn selection_files_are_verified_and_restored_by_their_bracketed_word() {
        assert_eq!(selection("always [madvise] never\n").as_deref(), Some("madvise"));
        assert_eq!(selection("never\n").as_deref(), Some("never"));
        assert_eq!(selection("a [b").as_deref(), None);
        assert!(reads_back_as("always madvise [never]\n", "never"));
        assert!(reads_back_as("always [madvise] never\n", "always [madvise] never\n"));
        assert!(!reads_back_as("always [madvise] never\n", "never"));
        assert!(!reads_back_as("900\n", "1024"));
        // A tree's plain file gets the snapshot back byte for byte; the live kernel only the word.
        let dir = tempfile::tempdir().unwrap();
        let tree = Host::new(dir.path()).unwrap();
        assert_eq!(kernel_line(&tree, b"always [madvise] never\n"), b"always [madvise] never\n");
        let live = Host::new("/").unwrap();
        assert_eq!(kernel_line(&live, b"always [madvise] never\n"), b"madvise\n");
        assert_eq!(kernel_line(&live, b"1"), b"1\n");
        assert_eq!(kernel_line(&live, b"d\xe9"), b"d\xe9\n");
    }

    #[test]
    fn links_are_journaled_and_restored_as_links() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        host.write_atomic("/usr/lib/systemd/system/irqbalance.service", b"[Unit]\n", None).unwrap();
        let wants = "/etc/systemd/system/multi-user.target.wants/irqbalance.service";
        host.symlink(wants, "/usr/lib/systemd/system/irqbalance.service").unwrap();
        let masked = "/etc/systemd/system/tuned.service";
        let mut j = Journal::open(&host, "u").unwrap();
        // Disable one unit (remove its link) and mask another (a link to /dev/null).
        carry_out(
            &host,
            Some(Record { journal: &mut j, module: "lltune_services", boot: false }),
            &[
                Action::RemoveLink { path: wants.into() },
                Action::SetLink { path: masked.into(), to: "/dev/null".into() },
            ],
        )
        .unwrap();
        assert!(!host.exists(wants));
        assert_eq!(host.read_link(masked).as_deref(), Some("/dev/null"));
        let j = Journal::load(&host, "u").unwrap();
        assert_eq!(j.entries().len(), 2);
        // The removed link was recorded as a link (not the unit file it pointed to).
        assert_eq!(j.entries()[0].item(), Item::Link(wants.into()));
        // Put both back from the journal's states.
        for e in j.entries().iter().rev() {
            let state = match e {
                crate::engine::journal::Entry::Link { previous, escaped, .. } => {
                    State::Link(previous.as_ref().map(|p| crate::engine::journal::decode(p, *escaped).unwrap()))
                }
                crate::engine::journal::Entry::File { previous: None, .. } => State::File(None),
                other => panic!("{other:?}"),
            };
            put(&host, &e.item(), &state).unwrap();
        }
        assert!(!host.exists(masked));
        assert_eq!(host.read(wants).unwrap(), "[Unit]\n");
    }
}
