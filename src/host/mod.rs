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

pub mod resolve;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use resolve::ResolveError;

/// The most bytes read from one file. The largest file a scan reads is /proc/interrupts,
/// about 12 MB on a 256-CPU host with 4,000 IRQs (11 characters per CPU column); the scan
/// reads that one as a stream (`open_stream`).
pub const MAX_READ_BYTES: u64 = 64 << 20;

/// The first read of a file on a live host: two pages, more than any sysfs attribute
/// (at most a page) holds, so one read returns a whole value.
const ONE_VALUE_READ: usize = 8192;

/// One `read` into the spare capacity of `out` (at most `want` bytes), retried on EINTR.
fn read_some(file: &mut fs::File, out: &mut Vec<u8>, want: usize) -> io::Result<usize> {
    let len = out.len();
    out.resize(len + want, 0);
    let r = loop {
        match file.read(&mut out[len..]) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    out.truncate(len + *r.as_ref().unwrap_or(&0));
    r
}

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

/// What a recording host saw: the target paths read, listed or resolved as links.
#[derive(Debug, Default, Clone)]
pub struct Recording {
    pub files: BTreeSet<String>,
    pub dirs: BTreeSet<String>,
    pub links: BTreeSet<String>,
}

/// The host under `root`.
#[derive(Debug)]
pub struct Host {
    /// Canonical (no links), so that resolved paths joined to it contain no link either.
    root: PathBuf,
    live: bool,
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

/// Distinguishes temp files of one process (with the pid and the clock, unique per host).
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// What names lltune's temp files: `.<name>.lltune-<pid>-<nanos hex>-<seq>` (a file being
/// replaced) and `.<name>.lltune-<pid>-l<seq>` (a link being replaced). A run killed between
/// creating one and its rename leaves it behind; `remove_stale_temps` recognises exactly
/// these two shapes.
const TEMP_MARK: &str = ".lltune-";

/// The writer's pid when `name` is one of lltune's temp names (`TEMP_MARK`), else `None`.
pub fn temp_owner(name: &str) -> Option<i32> {
    let rest = name.strip_prefix('.')?;
    let (target, tail) = rest.rsplit_once(TEMP_MARK)?;
    if target.is_empty() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    let (pid, what) = tail.split_once('-')?;
    let ok = match what.strip_prefix('l') {
        Some(seq) => digits(seq),
        None => match what.split_once('-') {
            Some((nanos, seq)) => {
                !nanos.is_empty() && nanos.len() <= 8 && nanos.bytes().all(|b| b.is_ascii_hexdigit()) && digits(seq)
            }
            None => false,
        },
    };
    if !ok || !digits(pid) {
        return None;
    }
    pid.parse::<i32>().ok().filter(|p| *p > 0)
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
        Ok(Host {
            root,
            live,
            recording: None,
            dirs: Mutex::new(HashMap::new()),
            not_links: Mutex::new(HashSet::new()),
            missing: Mutex::new(HashSet::new()),
            no_openat2: std::sync::atomic::AtomicBool::new(false),
            root_fd,
        })
    }

    /// Like `new`, but remembers every target path read, for `lltune capture`.
    pub fn recording(root: impl Into<PathBuf>) -> Result<Host, HostError> {
        let mut host = Host::new(root)?;
        host.recording = Some(Mutex::new(Recording::default()));
        Ok(host)
    }

    /// What this host recorded so far (empty when not recording).
    pub fn recorded(&self) -> Recording {
        match &self.recording {
            Some(m) => m.lock().map(|r| r.clone()).unwrap_or_default(),
            None => Recording::default(),
        }
    }

    fn note(&self, kind: fn(&mut Recording) -> &mut BTreeSet<String>, path: &str) {
        if let Some(m) = &self.recording {
            if let Ok(mut r) = m.lock() {
                kind(&mut r).insert(path.to_string());
            }
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when `root` is `/`: the running kernel is the one described, so ioctls and
    /// commands that act on the live system are allowed.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The canonical target path `target` names: links followed inside `root` (with
    /// `follow_last`, the last component's too), `..` and links leaving `root` refused.
    pub fn resolve(&self, target: &str, follow_last: bool) -> Result<String, HostError> {
        self.resolve_fast(target, follow_last, resolve::MAX_LINKS)
    }

    /// `resolve`, using the folder cache: a canonical path costs one `lstat` of its last
    /// component, and a link whose target is `../../x/y` (the shape of sysfs links) is
    /// joined to its already-resolved folder. Anything else goes to the full walk, which
    /// also reports links that leave `root`.
    fn resolve_fast(&self, target: &str, follow_last: bool, budget: usize) -> Result<String, HostError> {
        let walk = || resolve::resolve(&self.root, target, follow_last).map_err(|e| HostError::from_resolve(target, e));
        if !resolve::is_normal(target) || target == "/" {
            return walk();
        }
        let (dir, name) = target.rsplit_once('/').unwrap_or(("", target));
        let rdir = self.resolved_dir(dir)?;
        let candidate = format!("{}/{name}", rdir.trim_end_matches('/'));
        if !follow_last {
            return Ok(candidate);
        }
        let real = self.join(&candidate);
        if !fs::symlink_metadata(&real).is_ok_and(|m| m.file_type().is_symlink()) {
            return Ok(candidate);
        }
        if budget == 0 {
            return Err(HostError::Loop { path: target.to_string() });
        }
        let Some(to) = fs::read_link(&real).ok().and_then(|t| t.to_str().map(str::to_string)) else {
            return walk();
        };
        let next = if to.starts_with('/') { Some(to) } else { join_leading_dotdot(&rdir, &to) };
        match next.filter(|n| resolve::is_normal(n)) {
            Some(n) => self.resolve_fast(&n, true, budget - 1),
            None => walk(),
        }
    }

    fn join(&self, resolved: &str) -> PathBuf {
        self.root.join(resolved.trim_start_matches('/'))
    }

    /// The resolved folder of a tree path: from the cache, or from its parent's (recursively)
    /// and one `lstat`; a link is resolved by the full walk. Existing folders are cached:
    /// folders are never replaced by links while lltune runs.
    fn resolved_dir(&self, dir: &str) -> Result<String, HostError> {
        if dir.is_empty() || dir == "/" {
            return Ok("/".to_string());
        }
        if let Some(d) = self.dirs.lock().ok().and_then(|m| m.get(dir).cloned()) {
            return Ok(d);
        }
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        if name.is_empty() || name == "." || name == ".." {
            return resolve::resolve(&self.root, dir, true).map_err(|e| HostError::from_resolve(dir, e));
        }
        let rparent = self.resolved_dir(parent)?;
        let candidate = format!("{}/{name}", rparent.trim_end_matches('/'));
        if self.is_missing(parent) {
            // Inside a folder known to be absent: absent too, no syscall.
            self.note_missing(dir);
            return Ok(candidate);
        }
        let resolved = match fs::symlink_metadata(self.join(&candidate)) {
            Ok(m) if m.is_dir() => candidate,
            Ok(m) if m.file_type().is_symlink() => self.resolve(dir, true)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.note_missing(dir);
                return Ok(candidate);
            }
            // Not a folder: the caller's open reports it.
            _ => return Ok(candidate),
        };
        if let Ok(mut m) = self.dirs.lock() {
            m.insert(dir.to_string(), resolved.clone());
        }
        Ok(resolved)
    }

    /// True when `dir` (a target folder under a tree root) was found absent. Scans ask for
    /// many files of folders a host lacks (`cpuN/cpufreq/*` without cpufreq): one `lstat`
    /// of the folder answers for all of them. Forgotten when lltune creates a folder or link.
    fn is_missing(&self, dir: &str) -> bool {
        self.missing.lock().is_ok_and(|m| m.contains(dir))
    }

    fn note_missing(&self, dir: &str) {
        if let Ok(mut m) = self.missing.lock() {
            m.insert(dir.to_string());
        }
    }

    fn forget_missing(&self) {
        if let Ok(mut m) = self.missing.lock() {
            m.clear();
        }
    }

    /// The real path of `target` with its folder resolved and its last component as written
    /// (`true` in the pair: the last component may still be a link, so open it with
    /// `O_NOFOLLOW` or look at it with `lstat`). On `/` the kernel resolves: the path as is.
    fn read_path(&self, target: &str) -> Result<(PathBuf, bool), HostError> {
        if !target.starts_with('/') || target.contains('\0') {
            return Err(HostError::Invalid { path: target.to_string(), reason: "not an absolute path" });
        }
        if self.live {
            return Ok((PathBuf::from(target), false));
        }
        let (dir, name) = target.rsplit_once('/').unwrap_or(("", target));
        if name.is_empty() || name == "." || name == ".." {
            return Ok((self.join(&self.resolve(target, true)?), false));
        }
        // The common case, a folder seen before: one lookup, one allocation.
        if let Some(p) = self.dirs.lock().ok().and_then(|m| m.get(dir).map(|rdir| self.real_in(rdir, name))) {
            return Ok((p, true));
        }
        if self.is_missing(dir) {
            return Err(HostError::NotFound { path: target.to_string() });
        }
        let rdir = self.resolved_dir(dir)?;
        if self.is_missing(dir) {
            return Err(HostError::NotFound { path: target.to_string() });
        }
        Ok((self.real_in(&rdir, name), true))
    }

    /// `<root><resolved folder>/<name>` as one allocation.
    fn real_in(&self, rdir: &str, name: &str) -> PathBuf {
        let root = self.root.as_os_str().as_encoded_bytes();
        let mut p = Vec::with_capacity(root.len() + rdir.len() + name.len() + 1);
        p.extend_from_slice(root);
        if rdir != "/" {
            p.extend_from_slice(rdir.as_bytes());
        }
        p.push(b'/');
        p.extend_from_slice(name.as_bytes());
        PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(p))
    }

    /// The real path of `target`, every link followed (the folder from the cache; a last
    /// component that is a link by the full walk).
    fn real_path(&self, target: &str) -> Result<PathBuf, HostError> {
        let (p, maybe_link) = self.read_path(target)?;
        if maybe_link && fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            return Ok(self.join(&self.resolve(target, true)?));
        }
        Ok(p)
    }

    /// Opens `real`, a path under a tree root whose folders are already resolved (so it holds
    /// no link), with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: a link swapped in after
    /// the walk, anywhere on the path, fails the open (ELOOP) instead of leading out of `root`.
    /// On `/`, or a kernel without openat2 (before 5.6), a plain open with `O_NOFOLLOW` on the
    /// last component.
    fn open_beneath(&self, real: &Path, flags: i32, mode: u32) -> io::Result<fs::File> {
        use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
        use std::os::fd::FromRawFd;
        let plain = || {
            let mut o = fs::OpenOptions::new();
            let acc = flags & libc::O_ACCMODE;
            o.read(acc == libc::O_RDONLY || acc == libc::O_RDWR).write(acc != libc::O_RDONLY);
            if flags & libc::O_CREAT != 0 {
                o.create_new(true).mode(mode);
            }
            o.custom_flags((flags & !(libc::O_ACCMODE | libc::O_CREAT | libc::O_EXCL)) | libc::O_NOFOLLOW).open(real)
        };
        let (Some(fd), Ok(rel)) = (&self.root_fd, real.strip_prefix(&self.root)) else { return plain() };
        let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
        let how = OpenHow::new()
            .flags(OFlag::from_bits_truncate(flags | libc::O_CLOEXEC))
            .mode(nix::sys::stat::Mode::from_bits_truncate(mode))
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        match nix::fcntl::openat2(fd.as_raw_fd(), rel, how) {
            // SAFETY: openat2 returned a new descriptor that nothing else owns.
            Ok(raw) => Ok(unsafe { fs::File::from_raw_fd(raw) }),
            Err(nix::errno::Errno::ENOSYS) => {
                self.no_openat2.store(true, Ordering::Relaxed);
                plain()
            }
            Err(e) => Err(io::Error::from_raw_os_error(e as i32)),
        }
    }

    /// The folder of a resolved target path, held open (beneath `root`, no link on the way),
    /// and the last component's name: removals and link edits act relative to it.
    fn parent_of<'a>(&self, target: &str, resolved: &'a str) -> Result<(fs::File, &'a str), HostError> {
        let (rdir, name) = resolved.rsplit_once('/').unwrap_or(("", resolved));
        if name.is_empty() || name == "." || name == ".." {
            return Err(HostError::Invalid { path: target.to_string(), reason: "not a file path" });
        }
        let dir = self.join(if rdir.is_empty() { "/" } else { rdir });
        let f = self
            .open_beneath(&dir, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map_err(|e| HostError::from_io(target, e))?;
        Ok((f, name))
    }

    /// Under a tree root, for a file whose folder is not resolved yet but whose folder's
    /// parent is: the real path as if the folder were no link (`/proc/irq/24/node` when
    /// `/proc/irq` is known), with the folder's target path and resolved path to remember if
    /// the open succeeds. `openat2(RESOLVE_NO_SYMLINKS)` then checks it: a link anywhere fails
    /// the open with ELOOP and the full walk takes over, so the guess saves the folder's
    /// `lstat` without trusting it. `None` where that check is not there (kernel without
    /// openat2) or nothing is known.
    fn guess_path(&self, target: &str) -> Option<(PathBuf, String, String)> {
        if self.live || self.root_fd.is_none() || self.no_openat2.load(Ordering::Relaxed) || !resolve::is_normal(target)
        {
            return None;
        }
        let (dir, name) = target.rsplit_once('/')?;
        let (pdir, dname) = dir.rsplit_once('/')?;
        if dname.is_empty() || self.is_missing(dir) {
            return None;
        }
        let dirs = self.dirs.lock().ok()?;
        if dirs.contains_key(dir) {
            return None;
        }
        let rpdir = if pdir.is_empty() { "/" } else { dirs.get(pdir)? };
        let rdir = format!("{}/{dname}", rpdir.trim_end_matches('/'));
        Some((self.real_in(&rdir, name), dir.to_string(), rdir))
    }

    /// Opens a regular file for reading; anything else is refused before it can block.
    fn open_regular(&self, target: &str) -> Result<(fs::File, u64), HostError> {
        let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC;
        let guess = self.guess_path(target);
        let (path, tree) = match &guess {
            Some((p, _, _)) => (p.clone(), true),
            None => self.read_path(target)?,
        };
        let file = if tree {
            match self.open_beneath(&path, flags, 0) {
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                    // A link on the way (or one swapped in): walk it again.
                    let real = self.join(&self.resolve(target, true)?);
                    self.open_beneath(&real, flags, 0)
                }
                Err(e) if guess.is_some() && matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                    // Absent: learn whether the folder is (so its other files cost nothing).
                    let (_, dir, _) = guess.as_ref().expect("matched Some above");
                    self.resolved_dir(dir)?;
                    Err(e)
                }
                Ok(f) => {
                    if let Some((_, dir, rdir)) = guess {
                        if let Ok(mut m) = self.dirs.lock() {
                            m.insert(dir, rdir);
                        }
                    }
                    Ok(f)
                }
                other => other,
            }
        } else {
            fs::OpenOptions::new().read(true).custom_flags(flags).open(&path)
        }
        .map_err(|e| HostError::from_io(target, e))?;
        let meta = file.metadata().map_err(|e| HostError::from_io(target, e))?;
        if !meta.file_type().is_file() {
            return Err(HostError::NotRegular { path: target.to_string(), what: kind_of(meta.file_type()) });
        }
        Ok((file, meta.len()))
    }

    /// Reads a whole file into `out` (cleared first), in as few `read` calls as the file
    /// allows. Under a tree root a file is a plain file whose size is exact: one read of
    /// `size + 1` bytes that returns `size` is the end. With `one_value` (an attribute: a
    /// sysfs file, `/proc/irq/<n>/*`, `/proc/sys/*`), the kernel hands the whole value to the
    /// first read (kernfs and single_open seq_files produce it at once, at most a page), so a
    /// read shorter than the buffer is the end. Anything else reads until `read` returns 0:
    /// multi-record procfs files (`/proc/interrupts`) return a few records per read.
    fn read_into(&self, target: &str, out: &mut Vec<u8>, one_value: bool) -> Result<(), HostError> {
        self.note(|r| &mut r.files, target);
        let (mut file, size) = self.open_regular(target)?;
        let io = |e| HostError::from_io(target, e);
        out.clear();
        // sysfs says 4096 for every attribute and procfs 0: a hint only on a live host.
        let first = if !self.live { size.min(MAX_READ_BYTES) as usize + 1 } else { ONE_VALUE_READ };
        out.reserve(first);
        let n = read_some(&mut file, out, first).map_err(io)?;
        let done = n == 0 || (!self.live && n as u64 == size) || (one_value && n < first);
        if !done {
            file.take(MAX_READ_BYTES + 1 - n as u64).read_to_end(out).map_err(io)?;
        }
        if out.len() as u64 > MAX_READ_BYTES {
            return Err(HostError::TooLarge { path: target.to_string(), limit: MAX_READ_BYTES });
        }
        Ok(())
    }

    /// Reads a whole file as bytes, exactly as stored (the journal keeps files byte for byte).
    pub fn read_bytes(&self, target: &str) -> Result<Vec<u8>, HostError> {
        let mut out = Vec::new();
        self.read_into(target, &mut out, false)?;
        Ok(out)
    }

    /// Reads a whole file as bytes; `None` when it does not exist. What every edit reads
    /// (`engine::text`): a file lltune changes is never read through `read`.
    pub fn read_bytes_opt(&self, target: &str) -> Result<Option<Vec<u8>>, HostError> {
        match self.read_bytes(target) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads a whole file as text (invalid UTF-8 replaced): for reading facts, never for a
    /// file that is edited (`read_bytes`).
    pub fn read(&self, target: &str) -> Result<String, HostError> {
        let bytes = self.read_bytes(target)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Opens a file to read it as a stream (a large procfs table read line by line instead of
    /// held whole), refused like `read` when it is not a regular file; reads stop at
    /// `MAX_READ_BYTES`.
    pub fn open_stream(&self, target: &str) -> Result<io::Take<fs::File>, HostError> {
        self.note(|r| &mut r.files, target);
        let (file, _) = self.open_regular(target)?;
        Ok(file.take(MAX_READ_BYTES))
    }

    /// Reads a file; `None` when it does not exist.
    pub fn read_opt(&self, target: &str) -> Result<Option<String>, HostError> {
        match self.read(target) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads a one-value attribute file, trimmed of whitespace and NUL bytes; `None` when
    /// the file is absent or unreadable (sysfs answers EIO/EINVAL for unsupported values).
    pub fn attr(&self, target: &str) -> Option<String> {
        // One buffer per thread for every attribute: a scan reads thousands of them.
        thread_local!(static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });
        BUF.with(|b| {
            let mut buf = b.borrow_mut();
            self.read_into(target, &mut buf, true).ok()?;
            let text = String::from_utf8_lossy(&buf);
            let v = text.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string();
            if buf.capacity() > 4 * ONE_VALUE_READ {
                *buf = Vec::new();
            }
            Some(v)
        })
    }

    /// Reads a one-value attribute and parses it; `None` when absent or not a number.
    pub fn attr_parse<T: std::str::FromStr>(&self, target: &str) -> Option<T> {
        self.attr(target).and_then(|s| s.parse().ok())
    }

    /// The path itself exists (a dangling link counts).
    pub fn exists(&self, target: &str) -> bool {
        let exists = self.lstat(target).is_ok_and(|m| m.is_some());
        if exists {
            self.note(|r| &mut r.files, target);
        }
        exists
    }

    /// `lstat` of the path itself (not what a last-component link names); `None` if absent.
    fn lstat(&self, target: &str) -> Result<Option<fs::Metadata>, HostError> {
        let (real, _) = match self.read_path(target) {
            Err(e) if e.is_not_found() => return Ok(None),
            other => other?,
        };
        match fs::symlink_metadata(real) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                let e = HostError::from_io(target, e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    /// True when the path exists and is (or resolves to) a directory.
    pub fn is_dir(&self, target: &str) -> bool {
        if self.live {
            return self.real_path(target).is_ok_and(|p| fs::metadata(p).is_ok_and(|m| m.is_dir()));
        }
        // Under a tree root: one lstat, and an absent folder is remembered (`is_missing`).
        if self.is_missing(target) {
            return false;
        }
        let Ok((p, _)) = self.read_path(target) else { return false };
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                self.resolve(target, true).is_ok_and(|r| fs::symlink_metadata(self.join(&r)).is_ok_and(|m| m.is_dir()))
            }
            Ok(m) => m.is_dir(),
            Err(e) => {
                if e.kind() == io::ErrorKind::NotFound && resolve::is_normal(target) {
                    self.note_missing(target);
                }
                false
            }
        }
    }

    /// Entry names of a directory that are not UTF-8 and end with `suffix`, as raw bytes,
    /// sorted: the files `list` cannot name (paths are UTF-8 text here). Empty on any error.
    pub fn non_utf8_names(&self, target: &str, suffix: &str) -> Vec<Vec<u8>> {
        use std::os::unix::ffi::OsStringExt;
        let Ok(real) = self.real_path(target) else { return Vec::new() };
        let Ok(rd) = fs::read_dir(real) else { return Vec::new() };
        let mut out: Vec<Vec<u8>> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().into_vec())
            .filter(|n| std::str::from_utf8(n).is_err() && n.ends_with(suffix.as_bytes()))
            .collect();
        out.sort();
        out
    }

    /// Entry names of a directory, sorted; empty when it does not exist.
    pub fn list(&self, target: &str) -> Result<Vec<String>, HostError> {
        let real = match self.real_path(target) {
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            other => other?,
        };
        let rd = match fs::read_dir(real) {
            Ok(rd) => rd,
            Err(e) => {
                let e = HostError::from_io(target, e);
                return if e.is_not_found() { Ok(Vec::new()) } else { Err(e) };
            }
        };
        self.note(|r| &mut r.dirs, target);
        let mut names = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| HostError::from_io(target, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// Entry names of a directory, sorted; empty on any error.
    pub fn list_or_empty(&self, target: &str) -> Vec<String> {
        self.list(target).unwrap_or_default()
    }

    /// Target of a symbolic link as written (`../../../bus/pci/drivers/ixgbe`); `None` when
    /// the path is not a link or does not exist.
    pub fn read_link(&self, target: &str) -> Option<String> {
        // Paths already seen not to be links (folders walked through, readlink's EINVAL)
        // cost no syscall: lexical resolvers (facts::nic) ask about every component of every
        // device path, and the same folders come up hundreds of times.
        let known = |m: &Mutex<HashSet<String>>| m.lock().is_ok_and(|s| s.contains(target));
        if known(&self.not_links) || self.dirs.lock().is_ok_and(|m| m.get(target).is_some_and(|d| d == target)) {
            return None;
        }
        let (real, _) = self.read_path(target).ok()?;
        match fs::read_link(real) {
            Ok(t) => {
                self.note(|r| &mut r.links, target);
                Some(t.to_string_lossy().into_owned())
            }
            Err(e) => {
                if e.raw_os_error() == Some(libc::EINVAL) {
                    if let Ok(mut s) = self.not_links.lock() {
                        s.insert(target.to_string());
                    }
                }
                None
            }
        }
    }

    /// Last component of a link target: the driver name of `.../device/driver`.
    pub fn link_name(&self, target: &str) -> Option<String> {
        let t = self.read_link(target)?;
        t.trim_end_matches('/').rsplit('/').next().map(str::to_string).filter(|s| !s.is_empty())
    }

    /// Mode bits, owner and extended attributes of the file `target` names (through a link);
    /// `None` when it does not exist. A non-regular file is refused.
    pub fn file_meta(&self, target: &str) -> Result<Option<FileMeta>, HostError> {
        let real = self.join(&self.resolve(target, true)?);
        let m = match fs::symlink_metadata(&real) {
            Ok(m) => m,
            Err(e) => {
                let e = HostError::from_io(target, e);
                return if e.is_not_found() { Ok(None) } else { Err(e) };
            }
        };
        if !m.file_type().is_file() {
            return Err(HostError::NotRegular { path: target.to_string(), what: kind_of(m.file_type()) });
        }
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&real)
            .map_err(|e| HostError::from_io(target, e))?;
        let xattrs = xattr::read_all(&f).map_err(|e| HostError::from_io(target, e))?;
        Ok(Some(FileMeta { mode: m.mode() & 0o7777, uid: m.uid(), gid: m.gid(), xattrs }))
    }

    /// Creates the folders of a resolved target path that are missing (mode 0755).
    fn make_dirs(&self, resolved_dir: &str) -> Result<(), HostError> {
        let mut here = self.root.clone();
        let mut shown = String::new();
        for c in resolved_dir.split('/').filter(|c| !c.is_empty()) {
            let parent = here.clone();
            here.push(c);
            shown.push('/');
            shown.push_str(c);
            match fs::symlink_metadata(&here) {
                Ok(m) if m.is_dir() => continue,
                Ok(m) => {
                    return Err(HostError::NotRegular { path: shown, what: kind_of(m.file_type()) });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(HostError::from_io(&shown, e)),
            }
            fault::point().map_err(|e| HostError::from_io(&shown, e))?;
            self.forget_missing();
            // mkdirat in the parent held open beneath root: never a folder somewhere else.
            let pf = self
                .open_beneath(&parent, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| HostError::from_io(&shown, e))?;
            match nix::sys::stat::mkdirat(Some(pf.as_raw_fd()), c, nix::sys::stat::Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(HostError::from_io(&shown, io::Error::from_raw_os_error(e as i32))),
            }
        }
        Ok(())
    }

    /// Replaces a file atomically: temp file in the same folder, fsync, rename, fsync of the
    /// folder. An existing file keeps its mode, owner and extended attributes; a new one gets
    /// `meta` (or 0644 root). A link is written through: the file it names is replaced and
    /// the link stays. A crash at any point leaves the old or the new contents.
    pub fn write_atomic(&self, target: &str, contents: &[u8], meta: Option<FileMeta>) -> Result<(), HostError> {
        let keep = self.file_meta(target)?.or(meta).unwrap_or_else(FileMeta::default_file);
        self.write_atomic_as(target, contents, &keep)
    }

    /// Like `write_atomic`, but the file ends up with exactly `keep` as mode, owner and
    /// extended attributes (rollback restores a file's previous metadata with its bytes).
    pub fn write_atomic_as(&self, target: &str, contents: &[u8], keep: &FileMeta) -> Result<(), HostError> {
        let resolved = self.resolve(target, true)?;
        let io = |e| HostError::from_io(target, e);
        if let Some(m) = fs::symlink_metadata(self.join(&resolved)).ok().filter(|m| !m.file_type().is_file()) {
            return Err(HostError::NotRegular { path: target.to_string(), what: kind_of(m.file_type()) });
        }
        let (rdir, name) = resolved.rsplit_once('/').unwrap_or(("", &resolved));
        if name.is_empty() {
            return Err(HostError::Invalid { path: target.to_string(), reason: "not a file path" });
        }
        self.make_dirs(rdir)?;
        let dir = self.join(if rdir.is_empty() { "/" } else { rdir });
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp_name = format!(".{name}{TEMP_MARK}{}-{nanos:x}-{seq}", std::process::id());
        // Everything below acts relative to the folder, held open: the temp file, the rename
        // and the fsync all land in the folder that was resolved, even if a link is swapped
        // in for a folder above it meanwhile.
        let dirf = self.open_beneath(&dir, libc::O_RDONLY | libc::O_DIRECTORY, 0).map_err(io)?;
        let dfd = dirf.as_raw_fd();
        let result = (|| -> io::Result<()> {
            use nix::fcntl::{OFlag, openat, renameat};
            fault::point()?;
            let raw = openat(
                Some(dfd),
                tmp_name.as_str(),
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )?;
            // SAFETY: openat returned a new descriptor that nothing else owns.
            let mut f = unsafe { <fs::File as std::os::fd::FromRawFd>::from_raw_fd(raw) };
            fault::point()?;
            f.write_all(contents)?;
            // Owner first: chown clears the setuid/setgid bits that the chmod then sets.
            // Ownership can only be given away by root; elsewhere keep ours.
            let _ = std::os::unix::fs::fchown(&f, Some(keep.uid), Some(keep.gid));
            nix::sys::stat::fchmod(f.as_raw_fd(), nix::sys::stat::Mode::from_bits_truncate(keep.mode))?;
            xattr::write_all(&f, &keep.xattrs)?;
            fault::point()?;
            f.sync_all()?;
            fault::point()?;
            renameat(Some(dfd), tmp_name.as_str(), Some(dfd), name)?;
            fault::point()?;
            dirf.sync_all()
        })();
        if result.is_err() {
            let _ = nix::unistd::unlinkat(Some(dfd), tmp_name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        result.map_err(io)
    }

    /// Writes a value into an existing kernel file (`/proc/sys/...`, `/sys/...`) in one
    /// write, as `echo value > file` does. Never creates the file; refuses anything that
    /// is not a regular file. O_TRUNC as the shell's `>` uses it: procfs and sysfs ignore
    /// it, and a fixture tree's plain file then holds exactly the value written.
    pub fn write_kernel(&self, target: &str, value: impl AsRef<[u8]>) -> Result<(), HostError> {
        let value = value.as_ref();
        if !self.live {
            // A captured tree's kernel files are plain files: replace them atomically, so a
            // run killed midway leaves the old or the new value, as the kernel would.
            if self.file_meta(target)?.is_none() {
                return Err(HostError::NotFound { path: target.to_string() });
            }
            return self.write_atomic(target, value, None);
        }
        let (path, nofollow) = self.read_path(target)?;
        let path = if nofollow { self.join(&self.resolve(target, true)?) } else { path };
        let flags = libc::O_NONBLOCK | libc::O_CLOEXEC | if nofollow { libc::O_NOFOLLOW } else { 0 };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .custom_flags(flags)
            .open(path)
            .map_err(|e| HostError::from_io(target, e))?;
        let meta = f.metadata().map_err(|e| HostError::from_io(target, e))?;
        if !meta.file_type().is_file() {
            return Err(HostError::NotRegular { path: target.to_string(), what: kind_of(meta.file_type()) });
        }
        fault::point().map_err(|e| HostError::from_io(target, e))?;
        f.write_all(value).map_err(|e| HostError::from_io(target, e))
    }

    /// Removes a file or a link itself (never what a link names); absent is fine.
    pub fn remove(&self, target: &str) -> Result<(), HostError> {
        let resolved = self.resolve(target, false)?;
        let real = self.join(&resolved);
        match fs::symlink_metadata(&real) {
            Ok(m) if m.is_dir() => {
                return Err(HostError::NotRegular { path: target.to_string(), what: "directory" });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(HostError::from_io(target, e)),
        }
        let (dir, name) = self.parent_of(target, &resolved)?;
        fault::point().map_err(|e| HostError::from_io(target, e))?;
        match nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(HostError::from_io(target, io::Error::from_raw_os_error(e as i32))),
        }
    }

    /// Creates (or replaces) a symbolic link at `target` pointing to `to`, written as given.
    pub fn symlink(&self, target: &str, to: impl AsRef<[u8]>) -> Result<(), HostError> {
        let to = to.as_ref();
        if let Ok(mut s) = self.not_links.lock() {
            s.remove(target);
        }
        self.forget_missing();
        let resolved = self.resolve(target, false)?;
        let (rdir, _) = resolved.rsplit_once('/').unwrap_or(("", &resolved));
        self.make_dirs(rdir)?;
        let (dir, name) = self.parent_of(target, &resolved)?;
        let dfd = dir.as_raw_fd();
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = format!(".{name}{TEMP_MARK}{}-l{seq}", std::process::id());
        let io = |e: nix::errno::Errno| HostError::from_io(target, io::Error::from_raw_os_error(e as i32));
        fault::point().map_err(|e| HostError::from_io(target, e))?;
        nix::unistd::symlinkat(to, Some(dfd), tmp.as_str()).map_err(io)?;
        let renamed = fault::point()
            .map_err(|e| HostError::from_io(target, e))
            .and_then(|()| nix::fcntl::renameat(Some(dfd), tmp.as_str(), Some(dfd), name).map_err(io));
        if renamed.is_err() {
            let _ = nix::unistd::unlinkat(Some(dfd), tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        renamed
    }

    /// Removes a folder if it is empty (one lltune created); `false` when it holds something
    /// (someone put a file there since: it stays) or is already gone.
    pub fn remove_empty_dir(&self, target: &str) -> Result<bool, HostError> {
        let real = self.join(&self.resolve(target, false)?);
        match fs::symlink_metadata(&real) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(HostError::from_io(target, e)),
            Ok(m) if !m.is_dir() => return Err(HostError::NotRegular { path: target.to_string(), what: "non-folder" }),
            Ok(_) => {}
        }
        let resolved = self.resolve(target, false)?;
        let (dir, name) = self.parent_of(target, &resolved)?;
        fault::point().map_err(|e| HostError::from_io(target, e))?;
        match nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, nix::unistd::UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ENOTEMPTY) | Err(nix::errno::Errno::ENOENT) => Ok(false),
            Err(e) => Err(HostError::from_io(target, io::Error::from_raw_os_error(e as i32))),
        }
    }

    /// Removes the temp files that an lltune run killed mid-write left in the folder `target`
    /// (names of the shape `temp_owner` recognises, whose writer process is gone), and
    /// returns their target paths. Anything else stays: another program's files, folders, a
    /// name of that shape that is not a regular file or link, the temp of a process that is
    /// still alive (whatever it is). The caller holds the root's lock, so no lltune run on
    /// this root is writing; the pid check also spares runs on another root that shares the
    /// folder. An absent folder has nothing to remove.
    pub fn remove_stale_temps(&self, target: &str) -> Result<Vec<String>, HostError> {
        use nix::sys::stat::{SFlag, fstatat};
        let resolved = match self.resolve(target, true) {
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            other => other?,
        };
        let real = self.join(&resolved);
        let dirf = match self.open_beneath(&real, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => return Ok(Vec::new()),
            other => other.map_err(|e| HostError::from_io(target, e))?,
        };
        let dfd = dirf.as_raw_fd();
        // Listed through the folder held open: a link swapped in for it meanwhile is not followed.
        let rd = fs::read_dir(format!("/proc/self/fd/{dfd}"))
            .or_else(|_| fs::read_dir(&real))
            .map_err(|e| HostError::from_io(target, e))?;
        let me = std::process::id() as i32;
        let mut removed = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| HostError::from_io(target, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
            let Some(pid) = temp_owner(&name) else { continue };
            if pid == me {
                continue;
            }
            // kill(pid, 0): ESRCH is the only answer that says no such process.
            // SAFETY: signal 0 sends nothing; kill(2) only checks that the process exists.
            let alive =
                unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
            if alive {
                continue;
            }
            let Ok(st) = fstatat(Some(dfd), name.as_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            if fmt != SFlag::S_IFREG && fmt != SFlag::S_IFLNK {
                continue;
            }
            match nix::unistd::unlinkat(Some(dfd), name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir) {
                Ok(()) => removed.push(format!("{}/{name}", target.trim_end_matches('/'))),
                Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => {
                    return Err(HostError::from_io(
                        &format!("{}/{name}", target.trim_end_matches('/')),
                        io::Error::from_raw_os_error(e as i32),
                    ));
                }
            }
        }
        removed.sort();
        if !removed.is_empty() {
            if let Ok(mut s) = self.not_links.lock() {
                s.clear();
            }
        }
        Ok(removed)
    }

    pub fn create_dir_all(&self, target: &str) -> Result<(), HostError> {
        let resolved = self.resolve(target, true)?;
        self.make_dirs(&resolved)
    }

    /// The state of the path itself: a regular file (bytes and metadata), a link (its
    /// target as written), absent, or something else (refused by the caller).
    pub fn node(&self, target: &str) -> Result<Node, HostError> {
        let resolved = self.resolve(target, false)?;
        match fs::symlink_metadata(self.join(&resolved)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Node::Absent),
            Err(e) => Err(HostError::from_io(target, e)),
            Ok(m) if m.file_type().is_symlink() => {
                let t = fs::read_link(self.join(&resolved)).map_err(|e| HostError::from_io(target, e))?;
                Ok(Node::Link(std::os::unix::ffi::OsStringExt::into_vec(t.into_os_string())))
            }
            Ok(m) if m.file_type().is_file() => {
                let meta = self.file_meta(&resolved)?.ok_or_else(|| HostError::NotFound { path: target.into() })?;
                Ok(Node::File(self.read_bytes(&resolved)?, meta))
            }
            Ok(m) => Err(HostError::NotRegular { path: target.to_string(), what: kind_of(m.file_type()) }),
        }
    }
}

/// `dir` (canonical) joined with a relative link target whose `..` all come first
/// (`../../devices/x`); `None` for any other shape, or when `..` would climb above `/`.
fn join_leading_dotdot(dir: &str, link: &str) -> Option<String> {
    let mut base: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
    let mut parts = link.split('/').filter(|c| !c.is_empty() && *c != ".").peekable();
    while parts.peek() == Some(&"..") {
        parts.next();
        base.pop()?;
    }
    let rest: Vec<&str> = parts.collect();
    if rest.contains(&"..") {
        return None;
    }
    base.extend(rest);
    Some(format!("/{}", base.join("/")))
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

/// Extended attributes through the file descriptor (flistxattr/fgetxattr/fsetxattr).
mod xattr {
    use super::*;

    fn cstr(name: &str) -> io::Result<CString> {
        CString::new(name).map_err(|_| io::Error::other("xattr name holds a NUL byte"))
    }

    /// Every attribute of an open file. A filesystem without xattrs has none.
    pub fn read_all(f: &fs::File) -> io::Result<BTreeMap<String, Vec<u8>>> {
        let fd = f.as_raw_fd();
        let mut out = BTreeMap::new();
        // SAFETY: a null buffer of size 0 asks for the size only.
        let n = unsafe { libc::flistxattr(fd, std::ptr::null_mut(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOTSUP) => Ok(out),
                _ => Err(e),
            };
        }
        let mut names = vec![0u8; n as usize];
        // SAFETY: `names` has room for `names.len()` bytes.
        let n = unsafe { libc::flistxattr(fd, names.as_mut_ptr().cast(), names.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        names.truncate(n as usize);
        for raw in names.split(|b| *b == 0).filter(|s| !s.is_empty()) {
            let name = String::from_utf8_lossy(raw).into_owned();
            let c = cstr(&name)?;
            // SAFETY: size query as above.
            let len = unsafe { libc::fgetxattr(fd, c.as_ptr(), std::ptr::null_mut(), 0) };
            if len < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut value = vec![0u8; len as usize];
            // SAFETY: `value` has room for `value.len()` bytes.
            let len = unsafe { libc::fgetxattr(fd, c.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
            if len < 0 {
                return Err(io::Error::last_os_error());
            }
            value.truncate(len as usize);
            out.insert(name, value);
        }
        Ok(out)
    }

    /// Sets every attribute on an open file.
    pub fn write_all(f: &fs::File, attrs: &BTreeMap<String, Vec<u8>>) -> io::Result<()> {
        for (name, value) in attrs {
            let c = cstr(name)?;
            // SAFETY: pointer and length describe `value`.
            let r = unsafe { libc::fsetxattr(f.as_raw_fd(), c.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
            if r < 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(e.kind(), format!("setting extended attribute {name}: {e}")));
            }
        }
        Ok(())
    }
}

/// The journal stores values as hex text (SELinux labels end in a NUL byte).
pub mod xattr_hex {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        let hex: BTreeMap<&String, String> =
            m.iter().map(|(k, v)| (k, v.iter().map(|b| format!("{b:02x}")).collect())).collect();
        serde::Serialize::serialize(&hex, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let hex = BTreeMap::<String, String>::deserialize(d)?;
        let mut out = BTreeMap::new();
        for (k, v) in hex {
            if v.len() % 2 != 0 || v.len() > 1 << 16 {
                return Err(serde::de::Error::custom(format!("xattr {k}: not a hex value")));
            }
            let bytes: Result<Vec<u8>, _> =
                (0..v.len()).step_by(2).map(|i| u8::from_str_radix(&v[i..i + 2], 16)).collect();
            out.insert(k.clone(), bytes.map_err(|_| serde::de::Error::custom(format!("xattr {k}: not a hex value")))?);
        }
        Ok(out)
    }
}

/// Fault injection for the contract test (debug builds only). The process counts its
/// mutations of the host (create, write, fsync, rename, remove, link). With
/// `LLTUNE_FAULT_KILL_AT=N` it kills itself with SIGKILL at the N-th, as a power cut or
/// `kill -9` would; with `LLTUNE_FAULT_FAIL_AT=N` the N-th fails with EIO, as a full disk
/// would. Release builds compile this to nothing.
pub mod fault {
    use std::io;

    #[cfg(debug_assertions)]
    pub fn point() -> io::Result<()> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEEN: AtomicU64 = AtomicU64::new(0);
        let at = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let (kill, fail) = (at("LLTUNE_FAULT_KILL_AT"), at("LLTUNE_FAULT_FAIL_AT"));
        if kill.is_none() && fail.is_none() {
            return Ok(());
        }
        let n = SEEN.fetch_add(1, Ordering::SeqCst) + 1;
        if kill == Some(n) {
            // SAFETY: plain syscalls on our own process.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
        if fail == Some(n) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }

    #[cfg(not(debug_assertions))]
    #[inline(always)]
    pub fn point() -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue 17 (a kill mid-write left hidden temp files that nothing removed).
    #[test]
    fn stale_temps_of_dead_lltune_writers_go_and_nothing_else() {
        assert_eq!(temp_owner(".grub.lltune-4242-1a2b3c-7"), Some(4242));
        assert_eq!(temp_owner(".lltune-restore.service.lltune-17-l3"), Some(17));
        for not_ours in [
            "grub.lltune-4242-1a2b3c-7", // not hidden
            ".grub.lltune-4242-1a2b3c",  // no sequence
            ".grub.lltune-42x-1a-7",     // pid not a number
            ".grub.lltune-4242-zz-7",    // nanos not hex
            "..lltune-4242-1a-7",        // no target name
            ".grub.lltune-0-1a-7",       // pid 0
            ".grub.lltune-4242-l",       // link temp without sequence
            ".grub.swp",
        ] {
            assert_eq!(temp_owner(not_ours), None, "{not_ours}");
        }
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        let etc = dir.path().join("etc");
        fs::create_dir_all(&etc).unwrap();
        // A pid that cannot be running: above the kernel's pid_max limit (4194304).
        let dead = 4_194_400;
        let live = std::process::id();
        fs::write(etc.join(format!(".a.conf.lltune-{dead}-ff-0")), "x").unwrap();
        std::os::unix::fs::symlink("/x", etc.join(format!(".b.lltune-{dead}-l1"))).unwrap();
        fs::write(etc.join(format!(".c.conf.lltune-{live}-ff-0")), "mine").unwrap(); // our own
        fs::write(etc.join(".d.conf.lltune-1-ff-0"), "init is alive").unwrap();
        fs::create_dir(etc.join(format!(".e.lltune-{dead}-ff-0"))).unwrap(); // a folder
        fs::write(etc.join(".f.conf.swp"), "editor").unwrap();
        let removed = host.remove_stale_temps("/etc").unwrap();
        assert_eq!(removed, [format!("/etc/.a.conf.lltune-{dead}-ff-0"), format!("/etc/.b.lltune-{dead}-l1")]);
        let mut left: Vec<String> =
            fs::read_dir(&etc).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(
            left,
            [
                format!(".c.conf.lltune-{live}-ff-0"),
                ".d.conf.lltune-1-ff-0".to_string(),
                format!(".e.lltune-{dead}-ff-0"),
                ".f.conf.swp".to_string()
            ]
        );
        assert!(host.remove_stale_temps("/nonexistent").unwrap().is_empty());
    }

    #[test]
    fn reads_under_root_and_maps_missing_to_none() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("proc")).unwrap();
        fs::write(dir.path().join("proc/cmdline"), "quiet\n").unwrap();
        let host = Host::new(dir.path()).unwrap();
        assert_eq!(host.read("/proc/cmdline").unwrap(), "quiet\n");
        assert_eq!(host.attr("/proc/cmdline").as_deref(), Some("quiet"));
        assert!(host.read_opt("/proc/nope").unwrap().is_none());
        assert!(!host.is_live());
    }

    #[test]
    fn missing_root_names_the_path() {
        let err = Host::new("/nonexistent/lltune-root").unwrap_err();
        assert_eq!(err.to_string(), "/nonexistent/lltune-root: no such file or directory");
    }

    #[test]
    fn write_atomic_keeps_mode_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        host.write_atomic("/etc/a.conf", b"one\n", Some(FileMeta::private())).unwrap();
        host.write_atomic("/etc/a.conf", b"two\n", None).unwrap();
        assert_eq!(host.read("/etc/a.conf").unwrap(), "two\n");
        assert_eq!(host.file_meta("/etc/a.conf").unwrap().unwrap().mode, 0o600);
        assert_eq!(host.list("/etc").unwrap(), vec!["a.conf".to_string()]);
    }

    #[test]
    fn recording_host_remembers_reads() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x"), "1").unwrap();
        let host = Host::recording(dir.path()).unwrap();
        host.attr("/x");
        host.attr("/missing");
        let r = host.recorded();
        assert!(r.files.contains("/x"));
    }

    #[test]
    fn the_cached_resolver_agrees_with_the_walk_on_every_path_of_a_tree() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("sys/devices/pci0000:00/0000:00:01.0/net/eth0")).unwrap();
        fs::create_dir_all(r.join("sys/class/net")).unwrap();
        fs::create_dir_all(r.join("sys/bus/pci/devices")).unwrap();
        fs::write(r.join("sys/devices/pci0000:00/0000:00:01.0/net/eth0/mtu"), "1500\n").unwrap();
        symlink("../../devices/pci0000:00/0000:00:01.0/net/eth0", r.join("sys/class/net/eth0")).unwrap();
        symlink("../../../devices/pci0000:00/0000:00:01.0", r.join("sys/bus/pci/devices/0000:00:01.0")).unwrap();
        symlink("/sys/class/net/eth0", r.join("abs")).unwrap();
        symlink("sys/class/./net/../net/eth0", r.join("odd")).unwrap();
        symlink("../../../../../..", r.join("sys/up")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        let host = Host::new(r).unwrap();
        let root = fs::canonicalize(r).unwrap();
        let targets = [
            "/sys/class/net/eth0/mtu",
            "/sys/class/net/eth0",
            "/sys/bus/pci/devices/0000:00:01.0/net/eth0/mtu",
            "/abs/mtu",
            "/odd/mtu",
            "/sys/up/x",
            "/loop",
            "/sys/class/net/missing/x",
            "/sys/class/net/eth0/../eth0/mtu",
        ];
        for t in targets {
            for follow in [true, false] {
                let walk = resolve::resolve(&root, t, follow).map_err(|e| format!("{:?}", std::mem::discriminant(&e)));
                let fast = host.resolve(t, follow);
                match (&walk, &fast) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{t} follow={follow}"),
                    (Err(_), Err(_)) => {}
                    _ => panic!("{t} follow={follow}: walk {walk:?} vs cached {fast:?}"),
                }
            }
        }
        assert_eq!(host.read("/sys/bus/pci/devices/0000:00:01.0/net/eth0/mtu").unwrap(), "1500\n");
        assert!(matches!(host.resolve("/sys/up/x", true), Err(HostError::Outside { .. })));
    }

    /// The caches a scan leans on (folders known absent, paths known not to be links,
    /// folders guessed from their parent and checked by openat2) answer as the disk does,
    /// also after lltune itself creates a folder or a link, and never lead out of root.
    #[test]
    fn read_caches_agree_with_the_disk_and_keep_links_contained() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("node"), "outside\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("proc/irq/1")).unwrap();
        fs::create_dir_all(r.join("real/2")).unwrap();
        fs::write(r.join("proc/irq/1/node"), "0\n").unwrap();
        fs::write(r.join("real/2/node"), "1\n").unwrap();
        fs::write(r.join("proc/irq/file"), "x\n").unwrap();
        symlink("../../real/2", r.join("proc/irq/2")).unwrap();
        // An absolute link names a path under root (chroot-like); `..` past root leads out.
        symlink(outside.path(), r.join("proc/irq/5")).unwrap();
        let up = "../".repeat(r.components().count() + 2) + outside.path().to_str().unwrap().trim_start_matches('/');
        symlink(&up, r.join("proc/irq/3")).unwrap();
        assert_eq!(fs::read_to_string(r.join("proc/irq/3/node")).unwrap(), "outside\n", "the link does lead out");
        let host = Host::new(r).unwrap();
        host.list("/proc/irq").unwrap();
        assert_eq!(host.attr("/proc/irq/default_smp_affinity"), None);
        // Guessed folders: a real one, a link inside root, a link out of it.
        assert_eq!(host.attr("/proc/irq/1/node").as_deref(), Some("0"));
        assert_eq!(host.attr("/proc/irq/2/node").as_deref(), Some("1"));
        assert!(matches!(host.read("/proc/irq/3/node"), Err(HostError::Outside { .. })));
        assert!(host.read("/proc/irq/5/node").unwrap_err().is_not_found());
        assert_eq!(host.attr("/proc/irq/file/node"), None);
        // A folder found absent, then created by lltune: its files are seen.
        assert_eq!(host.attr("/proc/irq/4/node"), None);
        assert!(!host.exists("/proc/irq/4/node") && host.list("/proc/irq/4").unwrap().is_empty());
        assert!(!host.is_dir("/proc/irq/4") && !host.is_dir("/proc/irq/4/x"));
        host.write_atomic("/proc/irq/4/node", b"2\n", None).unwrap();
        assert_eq!(host.attr("/proc/irq/4/node").as_deref(), Some("2"));
        assert!(host.is_dir("/proc/irq/4") && host.is_dir("/proc/irq/2") && host.is_dir("/proc/irq/1"));
        assert!(!host.is_dir("/proc/irq/3") && !host.is_dir("/proc/irq/file"));
        // A path found not to be a link, then made one by lltune: read_link sees the link.
        assert_eq!(host.read_link("/proc/irq/file"), None);
        host.symlink("/proc/irq/file", "1").unwrap();
        assert_eq!(host.read_link("/proc/irq/file").as_deref(), Some("1"));
        assert_eq!(host.read_link("/proc/irq/1"), None);
    }

    #[test]
    fn a_folder_swapped_for_a_link_after_the_walk_does_not_lead_out() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "outside\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(dir.path().join("etc/secret"), "inside\n").unwrap();
        let host = Host::new(dir.path()).unwrap();
        // The walk resolved /etc; then someone replaces the folder with a link out of root.
        let real = host.join(&host.resolve("/etc/secret", true).unwrap());
        fs::rename(dir.path().join("etc"), dir.path().join("etc.old")).unwrap();
        symlink(outside.path(), dir.path().join("etc")).unwrap();
        let e = host.open_beneath(&real, libc::O_RDONLY, 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
        // The same through the public API: the cached folder is stale, the kernel refuses,
        // the walk then sees the link and refuses it too (it leaves root).
        let err = host.read("/etc/secret").unwrap_err();
        assert!(matches!(err, HostError::Outside { .. } | HostError::Loop { .. }), "{err}");
        // And a write: nothing lands outside.
        assert!(host.write_atomic("/etc/new.conf", b"x\n", None).is_err());
        assert!(!outside.path().join("new.conf").exists());
        // Removals, links and folders: nothing outside changes either.
        let _ = host.remove("/etc/secret");
        let _ = host.symlink("/etc/link", "/x");
        let _ = host.create_dir_all("/etc/sub/dir");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1);
        assert_eq!(fs::read_to_string(outside.path().join("secret")).unwrap(), "outside\n");
    }
}
