//! The one path resolver: a target path (`/etc/sysctl.d/99-sysctl.conf`) to the path it
//! names inside `root`, following symbolic links the way the kernel would inside a chroot
//! at `root`, and refusing anything that would leave it.
//!
//! - An absolute link (`/etc/sysctl.conf`) resolves from `root`, not from the controller's `/`.
//! - A relative link resolves from the folder that holds it; `..` pops one resolved folder.
//! - `..` above `root` (in the target path or in a link) is refused: a captured tree whose
//!   link climbs out of the tree is broken or hostile, and either way nothing of the
//!   machine outside it may be read or written.
//! - At most `MAX_LINKS` links per resolution (the kernel's own limit is 40), so link loops
//!   end with an error instead of spinning.
//!
//! The result is canonical (no `.`, `..`, empty components or links up to the last
//! existing component), so the caller can open it with `RESOLVE_NO_SYMLINKS` / `O_NOFOLLOW`
//! and the kernel refuses any link swapped in after the walk.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::Path;

/// Links followed in one resolution before giving up (Linux's MAXSYMLINKS is 40).
pub const MAX_LINKS: usize = 40;

/// Why a target path could not be resolved.
#[derive(Debug)]
pub enum ResolveError {
    /// `..` or a link would leave `root`.
    Outside(String),
    /// Too many links (a loop).
    Loop,
    /// A component that must be a folder is a file.
    NotDir,
    /// Not an absolute path, or it holds a NUL byte.
    Invalid(&'static str),
    Io(io::Error),
}

/// Splits a target path into its components, refusing what a target path cannot be.
pub fn components(target: &str) -> Result<Vec<&str>, ResolveError> {
    if !target.starts_with('/') {
        return Err(ResolveError::Invalid("not an absolute path"));
    }
    if target.contains('\0') {
        return Err(ResolveError::Invalid("contains a NUL byte"));
    }
    Ok(target.split('/').filter(|c| !c.is_empty() && *c != ".").collect())
}

/// The lexical normal form of a target path (`/a/./b/../c` → `/a/c`), without looking at the
/// disk; `None` when `..` climbs above `/`.
pub fn normalize(target: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in components(target).ok()? {
        if c == ".." {
            out.pop()?;
        } else {
            out.push(c);
        }
    }
    Some(format!("/{}", out.join("/")))
}

/// True when `target` is already canonical in form: absolute, no `.`, `..` or empty parts.
pub fn is_normal(target: &str) -> bool {
    target == "/"
        || (target.starts_with('/')
            && !target.ends_with('/')
            && !target.contains('\0')
            && target[1..].split('/').all(|c| !c.is_empty() && c != "." && c != ".."))
}

/// Resolves `target` under `root` (a canonical directory). With `follow_last`, a link in the
/// last component is followed too (reads, and writes that go through a link); without, the
/// last component is left as it is (removing or replacing a link itself). Components that do
/// not exist are kept as written: the caller's open or create then reports them.
pub fn resolve(root: &Path, target: &str, follow_last: bool) -> Result<String, ResolveError> {
    let mut queue: VecDeque<String> = components(target)?.into_iter().map(str::to_string).collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0usize;
    let mut missing = false;
    while let Some(c) = queue.pop_front() {
        if c == ".." {
            if done.pop().is_none() {
                return Err(ResolveError::Outside(target.to_string()));
            }
            continue;
        }
        if missing {
            done.push(c);
            continue;
        }
        let last = queue.is_empty();
        let mut here = root.to_path_buf();
        here.extend(done.iter());
        here.push(&c);
        let meta = match fs::symlink_metadata(&here) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // The rest cannot exist; `..` after it is resolved lexically above.
                missing = true;
                done.push(c);
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Err(ResolveError::NotDir),
            Err(e) => return Err(ResolveError::Io(e)),
        };
        if meta.file_type().is_symlink() && (!last || follow_last) {
            links += 1;
            if links > MAX_LINKS {
                return Err(ResolveError::Loop);
            }
            let to = fs::read_link(&here).map_err(ResolveError::Io)?;
            let to = to.to_str().ok_or(ResolveError::Invalid("link target is not UTF-8"))?;
            if to.is_empty() {
                return Err(ResolveError::Invalid("empty link target"));
            }
            if to.starts_with('/') {
                done.clear();
            }
            for part in to.split('/').filter(|p| !p.is_empty() && *p != ".").rev() {
                queue.push_front(part.to_string());
            }
            continue;
        }
        if !last && !meta.is_dir() {
            return Err(ResolveError::NotDir);
        }
        done.push(c);
    }
    Ok(format!("/{}", done.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("etc/sysctl.d")).unwrap();
        fs::write(r.join("etc/sysctl.conf"), "x\n").unwrap();
        symlink("../sysctl.conf", r.join("etc/sysctl.d/99-sysctl.conf")).unwrap();
        symlink("/etc/sysctl.conf", r.join("etc/abs")).unwrap();
        symlink("/etc", r.join("etcl")).unwrap();
        symlink("../../../../../../../tmp", r.join("etc/up")).unwrap();
        symlink("loop2", r.join("etc/loop1")).unwrap();
        symlink("loop1", r.join("etc/loop2")).unwrap();
        d
    }

    #[test]
    fn links_resolve_inside_root_like_a_chroot() {
        let d = tree();
        let root = fs::canonicalize(d.path()).unwrap();
        let r = |t: &str, f: bool| resolve(&root, t, f).map_err(|e| format!("{e:?}"));
        assert_eq!(r("/etc/sysctl.d/99-sysctl.conf", true).unwrap(), "/etc/sysctl.conf");
        assert_eq!(r("/etc/sysctl.d/99-sysctl.conf", false).unwrap(), "/etc/sysctl.d/99-sysctl.conf");
        assert_eq!(r("/etc/abs", true).unwrap(), "/etc/sysctl.conf");
        assert_eq!(r("/etcl/sysctl.d/../sysctl.conf", true).unwrap(), "/etc/sysctl.conf");
        assert_eq!(r("/etcl/new/file", true).unwrap(), "/etc/new/file");
        assert_eq!(r("/./etc//sysctl.conf", true).unwrap(), "/etc/sysctl.conf");
        assert!(r("/etc/up/x", true).unwrap_err().starts_with("Outside"));
        assert!(r("/../../etc/hostname", true).unwrap_err().starts_with("Outside"));
        assert!(r("/etc/loop1", true).unwrap_err().starts_with("Loop"));
        assert!(r("/etc/sysctl.conf/x", true).unwrap_err().starts_with("NotDir"));
        assert!(r("etc/x", true).unwrap_err().starts_with("Invalid"));
    }

    #[test]
    fn lexical_forms() {
        assert_eq!(normalize("/a/./b/../c").as_deref(), Some("/a/c"));
        assert_eq!(normalize("/.."), None);
        assert!(is_normal("/var/lib/lltune/backups/x/journal.json"));
        for bad in ["", "a", "/a/", "/a//b", "/a/./b", "/a/../b"] {
            assert!(!is_normal(bad), "{bad}");
        }
    }
}
