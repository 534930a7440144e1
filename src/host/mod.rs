//! The target host seen through a `root` prefix: `/` in production, a captured tree in tests
//! and offline analysis. Every read and write of a target path goes through here, so that
//! nothing outside `root` is touched and `lltune capture` can record exactly what a scan read.
//!
//! Paths are target paths written as the kernel documents them (`/proc/cmdline`). Under a
//! tree root each one is resolved by `resolve` (links followed as in a chroot at `root`,
//! `..` and links that would leave `root` refused) and opened without following links, so
//! a link swapped in after the walk fails the open instead of leading out. On `/` the kernel
//! resolves reads itself; writes are always resolved, because a write goes *through* a link
//! (the link stays a link, the file it names is replaced).
//!
//! Only regular files are read where a file is expected: FIFOs, devices and sockets are
//! refused before any read (nothing blocks), and reads stop at `MAX_READ_BYTES`. sysfs and
//! procfs report a size of 0 for most files, so reads never trust metadata and read to the end.
//!
//! What differs between a live host and a tree beyond files (ethtool, systemd, commands) is
//! the seam in `system`, chosen once in `Host::new`. By concern: `paths` (target path to real
//! path, the resolver caches), `read`, `write`, `xattr`, `capture` (recording), `faults`.

pub mod resolve;

mod capture;
mod faults;
mod paths;
mod read;
pub mod system;
mod write;
mod xattr;

pub use capture::Recording;
pub use read::MAX_READ_BYTES;
pub use write::temp_owner;
pub use xattr::hex as xattr_hex;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use resolve::ResolveError;

/// Why a target path could not be read or written. Every variant carries the target path.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: permission denied")]
    PermissionDenied { path: String },
    #[error("{path}: resolves outside root (by `..` or a symbolic link); refused")]
    Outside { path: String },
    #[error("{path}: is a {what}, not a regular file; refused")]
    NotRegular { path: String, what: &'static str },
    #[error("{path}: larger than {limit} bytes; refused")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: too many levels of symbolic links")]
    Loop { path: String },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: &'static str },
    // Not `source`: the message already holds the OS error, and a source would make
    // anyhow's `{:#}` print it twice.
    #[error("{path}: {err}")]
    Io { path: String, err: io::Error },
}

impl HostError {
    fn from_io(path: &str, source: io::Error) -> HostError {
        match source.kind() {
            io::ErrorKind::NotFound => HostError::NotFound { path: path.to_string() },
            io::ErrorKind::PermissionDenied => HostError::PermissionDenied { path: path.to_string() },
            _ => match source.raw_os_error() {
                // ENOTDIR: a path component is a file (or a dangling link in a capture).
                Some(libc::ENOTDIR) => HostError::NotFound { path: path.to_string() },
                // O_NOFOLLOW met a link that was swapped in after the walk.
                Some(libc::ELOOP) => HostError::Loop { path: path.to_string() },
                Some(libc::ENXIO) => HostError::NotRegular { path: path.to_string(), what: "FIFO or socket" },
                _ => HostError::Io { path: path.to_string(), err: source },
            },
        }
    }

    fn from_resolve(path: &str, e: ResolveError) -> HostError {
        match e {
            ResolveError::Outside(_) => HostError::Outside { path: path.to_string() },
            ResolveError::Loop => HostError::Loop { path: path.to_string() },
            ResolveError::NotDir => HostError::NotFound { path: path.to_string() },
            ResolveError::Invalid(reason) => HostError::Invalid { path: path.to_string(), reason },
            ResolveError::Io(err) => HostError::from_io(path, err),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, HostError::NotFound { .. })
    }
}

/// The host under `root`.
#[derive(Debug)]
pub struct Host {
    /// Canonical (no links), so that resolved paths joined to it contain no link either.
    root: PathBuf,
    /// Root `/`: the kernel resolves reads itself and kernel files are written in place.
    /// Outside this module, what differs between a live host and a tree goes through `system`.
    live: bool,
    /// The seam, chosen once here: `system::Live` on `/`, `system::Tree` elsewhere.
    system: system::Seam,
    recording: Option<Mutex<Recording>>,
    /// Folders already resolved under a tree root: target folder → resolved folder.
    dirs: Mutex<HashMap<String, String>>,
    /// Target paths `read_link` found not to be links (EINVAL); `symlink` forgets its target.
    not_links: Mutex<HashSet<String>>,
    /// Target folders found absent under a tree root (`is_missing`).
    missing: Mutex<HashSet<String>>,
    /// The kernel answered ENOSYS to openat2 (before 5.6): no guessed paths (`guess_path`).
    no_openat2: std::sync::atomic::AtomicBool,
    /// The tree root, held open for `openat2` (`None` on `/`: nothing lies outside it).
    root_fd: Option<std::os::fd::OwnedFd>,
}

fn kind_of(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

impl Host {
    /// A host rooted at `root`, which must be a readable directory.
    pub fn new(root: impl Into<PathBuf>) -> Result<Host, HostError> {
        let given: PathBuf = root.into();
        let shown = given.display().to_string();
        let root = fs::canonicalize(&given).map_err(|e| HostError::from_io(&shown, e))?;
        match fs::metadata(&root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(HostError::Io { path: shown, err: io::Error::other("root is not a directory") });
            }
            Err(e) => return Err(HostError::from_io(&shown, e)),
        }
        if let Err(e) = fs::read_dir(&root) {
            return Err(HostError::from_io(&shown, e));
        }
        let live = root == Path::new("/");
        let root_fd = if live {
            None
        } else {
            let f = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
                .open(&root)
                .map_err(|e| HostError::from_io(&shown, e))?;
            Some(std::os::fd::OwnedFd::from(f))
        };
        let system = if live { system::Seam::Live(system::Live) } else { system::Seam::Tree(system::Tree) };
        Ok(Host {
            root,
            live,
            system,
            recording: None,
            dirs: Mutex::new(HashMap::new()),
            not_links: Mutex::new(HashSet::new()),
            missing: Mutex::new(HashSet::new()),
            no_openat2: std::sync::atomic::AtomicBool::new(false),
            root_fd,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What differs between a live host and a captured tree beyond files (ethtool,
    /// systemd, commands, whose kernel `/proc` and `/sys` describe): `system::Live` when
    /// `root` is `/`, `system::Tree` otherwise, chosen once in `new`.
    pub fn system(&self) -> &system::Seam {
        &self.system
    }
}

/// What is at a path, not following a last-component link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Absent,
    File(Vec<u8>, FileMeta),
    /// The target as written, byte for byte.
    Link(Vec<u8>),
}

/// Permission bits (setuid/setgid/sticky included), owner and extended attributes of a
/// file, kept across rewrites and in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct FileMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Name → value (`security.selinux` → `system_u:object_r:etc_t:s0\0`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "xattr_hex")]
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl FileMeta {
    /// A new configuration file: 0644, root.
    pub fn default_file() -> FileMeta {
        FileMeta { mode: 0o644, uid: 0, gid: 0, xattrs: BTreeMap::new() }
    }

    /// A private file of lltune's own (journal copies): 0600, root.
    pub fn private() -> FileMeta {
        FileMeta { mode: 0o600, uid: 0, gid: 0, xattrs: BTreeMap::new() }
    }
}

#[cfg(test)]
mod tests;
