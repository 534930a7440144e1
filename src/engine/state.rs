//! The kinds of host state a module changes, and the writes that change them.
//!
//! Every kind can be read (the snapshot the journal keeps), compared, and put back. A new
//! kind (an ethtool setting, a unit's enablement) is one variant of `Item` and `State`, one
//! arm in `read` and `put`, and an `Entry` variant in the journal.

use anyhow::{Context, Result};

use crate::host::{FileMeta, Host, HostError, Node};

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
}

impl Item {
    pub fn path(&self) -> &str {
        match self {
            Item::File(p) | Item::Link(p) | Item::Kernel(p) => p,
        }
    }
}

/// The state of an item at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// A file's bytes and metadata; `None` when it does not exist.
    File(Option<(Vec<u8>, FileMeta)>),
    /// A link's target as written; `None` when there is no link.
    Link(Option<String>),
    /// A kernel value exactly as read (with its newline), so restoring a fixture tree's
    /// plain file gives back the same bytes.
    Kernel(String),
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
            (State::Kernel(a), State::Kernel(b)) => normalize_value(a) == normalize_value(b),
            (a, b) => a == b,
        }
    }
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
        Item::Kernel(path) => Ok(State::Kernel(host.read(path)?)),
    }
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
        (Item::Kernel(path), State::Kernel(v)) => host.write_kernel(path, &kernel_line(host, v))?,
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
    /// Remove the link at `path` (never what it names).
    RemoveLink { path: String },
    /// Write a value into a kernel file and read it back.
    WriteKernel { path: String, value: String },
    /// Run a command that rewrites `rewrites` (grub2-mkconfig -o <cfg>); only on a live host.
    Run { argv: Vec<String>, rewrites: Vec<String> },
}

impl Action {
    pub fn items(&self) -> Vec<Item> {
        match self {
            Action::WriteFile { path, .. } | Action::RestoreFile { path, .. } => vec![Item::File(path.clone())],
            Action::RemoveFile { path } => vec![Item::File(path.clone())],
            Action::SetLink { path, .. } | Action::RemoveLink { path } => vec![Item::Link(path.clone())],
            Action::WriteKernel { path, .. } => vec![Item::Kernel(path.clone())],
            Action::Run { rewrites, .. } => rewrites.iter().cloned().map(Item::File).collect(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Action::WriteFile { path, .. } | Action::RestoreFile { path, .. } => format!("writing {path}"),
            Action::RemoveFile { path } => format!("removing {path}"),
            Action::SetLink { path, to } => format!("linking {path} -> {to}"),
            Action::RemoveLink { path } => format!("removing link {path}"),
            Action::WriteKernel { path, value } => {
                format!("writing {:?} to {path}", crate::protocol::cap_text(value))
            }
            Action::Run { argv, .. } => format!("running {}", argv.join(" ")),
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
            Action::RemoveLink { path } => Action::RemoveLink { path: host.resolve(path, false)? },
            Action::WriteKernel { path, value } => Action::WriteKernel { path: r(path)?, value: value.clone() },
            Action::Run { argv, rewrites } => {
                Action::Run { argv: argv.clone(), rewrites: rewrites.iter().map(r).collect::<Result<_, _>>()? }
            }
        })
    }

    /// Carries out the action and verifies what it can read back.
    pub fn perform(&self, host: &Host) -> Result<()> {
        match self {
            Action::WriteFile { path, contents } => {
                host.write_atomic(path, contents, None)?;
                verify_file(host, path, contents)
            }
            Action::RestoreFile { path, contents, meta } => {
                host.write_atomic_as(path, contents, meta)?;
                verify_file(host, path, contents)
            }
            Action::RemoveFile { path } => Ok(host.remove(path)?),
            Action::SetLink { path, to } => Ok(host.symlink(path, to)?),
            Action::RemoveLink { path } => Ok(host.remove(path)?),
            Action::WriteKernel { path, value } => {
                host.write_kernel(path, &kernel_line(host, value))?;
                let now = host.read(path)?;
                if !reads_back_as(&now, value) {
                    anyhow::bail!("the kernel kept {:?}", crate::protocol::cap_text(now.trim_end()));
                }
                Ok(())
            }
            Action::Run { argv, .. } => {
                let (prog, args) = argv.split_first().context("empty command")?;
                let out = std::process::Command::new(prog)
                    .args(args)
                    .output()
                    .with_context(|| format!("cannot run {prog}"))?;
                if !out.status.success() {
                    let err = String::from_utf8_lossy(&out.stderr);
                    anyhow::bail!("{} ({})", out.status, crate::protocol::cap_text(err.trim()));
                }
                Ok(())
            }
        }
    }
}

/// The line written for a kernel value, with a trailing newline as `echo` writes it (the
/// kernel accepts it, and a fixture file keeps the shape the kernel would show). On a live
/// host a selection file's snapshot (`always [madvise] never`, THP) is written as its
/// bracketed word, the only form the kernel accepts; a tree's plain file gets the text back.
fn kernel_line(host: &Host, value: &str) -> String {
    let v = match selection(value) {
        Some(word) if host.is_live() && value.contains('[') => word,
        _ => value.to_string(),
    };
    if v.ends_with('\n') { v } else { format!("{v}\n") }
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
        assert_eq!(kernel_line(&tree, "always [madvise] never\n"), "always [madvise] never\n");
        let live = Host::new("/").unwrap();
        assert_eq!(kernel_line(&live, "always [madvise] never\n"), "madvise\n");
        assert_eq!(kernel_line(&live, "1"), "1\n");
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
                crate::engine::journal::Entry::Link { previous, .. } => State::Link(previous.clone()),
                crate::engine::journal::Entry::File { previous: None, .. } => State::File(None),
                other => panic!("{other:?}"),
            };
            put(&host, &e.item(), &state).unwrap();
        }
        assert!(!host.exists(masked));
        assert_eq!(host.read(wants).unwrap(), "[Unit]\n");
    }
}
