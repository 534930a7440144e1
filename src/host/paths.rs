//! Target paths to real paths under `root`: the cached resolver (resolved folders, folders
//! found absent, paths found not to be links) and the opens that keep a path beneath `root`
//! (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`). The caches never widen what can be
//! opened; the full walk is `resolve::resolve`.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::{Host, HostError, resolve};

impl Host {
    /// The canonical target path `target` names: links followed inside `root` (with
    /// `follow_last`, the last component's too), `..` and links leaving `root` refused.
    pub fn resolve(&self, target: &str, follow_last: bool) -> Result<String, HostError> {
        self.resolve_fast(target, follow_last, resolve::MAX_LINKS)
    }

    /// `resolve`, using the folder cache: a canonical path costs one `lstat` of its last
    /// component, and a link whose target is `../../x/y` (the shape of sysfs links) is
    /// joined to its already-resolved folder. Anything else goes to the full walk, which
    /// also reports links that leave `root`.
    pub(super) fn resolve_fast(&self, target: &str, follow_last: bool, budget: usize) -> Result<String, HostError> {
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

    /// The target path a path given by a user names: a real path under a tree root
    /// (`<root>/var/lib/x`) becomes its target path (`/var/lib/x`); anything else, and every
    /// path on `/`, is returned as given.
    pub fn target_of(&self, given: &str) -> String {
        match Path::new(given).strip_prefix(&self.root) {
            Ok(rel) if !self.live => format!("/{}", rel.display()),
            _ => given.to_string(),
        }
    }

    pub(super) fn join(&self, resolved: &str) -> PathBuf {
        self.root.join(resolved.trim_start_matches('/'))
    }

    /// The resolved folder of a tree path: from the cache, or from its parent's (recursively)
    /// and one `lstat`; a link is resolved by the full walk. Existing folders are cached:
    /// folders are never replaced by links while lltune runs.
    pub(super) fn resolved_dir(&self, dir: &str) -> Result<String, HostError> {
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
    pub(super) fn is_missing(&self, dir: &str) -> bool {
        self.missing.lock().is_ok_and(|m| m.contains(dir))
    }

    pub(super) fn note_missing(&self, dir: &str) {
        if let Ok(mut m) = self.missing.lock() {
            m.insert(dir.to_string());
        }
    }

    pub(super) fn forget_missing(&self) {
        if let Ok(mut m) = self.missing.lock() {
            m.clear();
        }
    }

    /// The real path of `target` with its folder resolved and its last component as written
    /// (`true` in the pair: the last component may still be a link, so open it with
    /// `O_NOFOLLOW` or look at it with `lstat`). On `/` the kernel resolves: the path as is.
    pub(super) fn read_path(&self, target: &str) -> Result<(PathBuf, bool), HostError> {
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
    pub(super) fn real_in(&self, rdir: &str, name: &str) -> PathBuf {
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
    pub(super) fn real_path(&self, target: &str) -> Result<PathBuf, HostError> {
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
    pub(super) fn open_beneath(&self, real: &Path, flags: i32, mode: u32) -> io::Result<fs::File> {
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
    pub(super) fn parent_of<'a>(&self, target: &str, resolved: &'a str) -> Result<(fs::File, &'a str), HostError> {
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
    pub(super) fn guess_path(&self, target: &str) -> Option<(PathBuf, String, String)> {
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
