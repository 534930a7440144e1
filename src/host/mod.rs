//! The target host seen through a `root` prefix: `/` in production, a captured tree in tests
//! and offline analysis. Every read and write of a target path goes through here, so that
//! nothing outside `root` is touched and `lltune capture` can record exactly what a scan read.
//!
//! Paths are target paths written as the kernel documents them (`/proc/cmdline`); `Host`
//! joins them under `root`. sysfs and procfs report a size of 0 for most files, so reads
//! never trust metadata and always read to the end.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why a target path could not be read or written. Every variant carries the target path.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: permission denied")]
    PermissionDenied { path: String },
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
                _ => HostError::Io { path: path.to_string(), err: source },
            },
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
    root: PathBuf,
    recording: Option<Mutex<Recording>>,
}

impl Host {
    /// A host rooted at `root`, which must be a readable directory.
    pub fn new(root: impl Into<PathBuf>) -> Result<Host, HostError> {
        let root: PathBuf = root.into();
        let shown = root.display().to_string();
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
        Ok(Host { root, recording: None })
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
        self.root == Path::new("/")
    }

    /// The real filesystem path of a target path.
    pub fn path(&self, target: &str) -> PathBuf {
        self.root.join(target.trim_start_matches('/'))
    }

    /// Reads a whole file as text (invalid UTF-8 replaced).
    pub fn read(&self, target: &str) -> Result<String, HostError> {
        self.note(|r| &mut r.files, target);
        let bytes = fs::read(self.path(target)).map_err(|e| HostError::from_io(target, e))?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Reads a whole file as bytes, exactly as stored (the journal keeps files byte for byte).
    pub fn read_bytes(&self, target: &str) -> Result<Vec<u8>, HostError> {
        self.note(|r| &mut r.files, target);
        fs::read(self.path(target)).map_err(|e| HostError::from_io(target, e))
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
        self.read(target).ok().map(|s| s.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string())
    }

    /// Reads a one-value attribute and parses it; `None` when absent or not a number.
    pub fn attr_parse<T: std::str::FromStr>(&self, target: &str) -> Option<T> {
        self.attr(target).and_then(|s| s.parse().ok())
    }

    pub fn exists(&self, target: &str) -> bool {
        let exists = fs::symlink_metadata(self.path(target)).is_ok();
        if exists {
            self.note(|r| &mut r.files, target);
        }
        exists
    }

    /// True when the path exists and is (or resolves to) a directory.
    pub fn is_dir(&self, target: &str) -> bool {
        fs::metadata(self.path(target)).map(|m| m.is_dir()).unwrap_or(false)
    }

    /// Entry names of a directory, sorted; empty when it does not exist.
    pub fn list(&self, target: &str) -> Result<Vec<String>, HostError> {
        let rd = match fs::read_dir(self.path(target)) {
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
        let t = fs::read_link(self.path(target)).ok()?;
        self.note(|r| &mut r.links, target);
        Some(t.to_string_lossy().into_owned())
    }

    /// Last component of a link target: the driver name of `.../device/driver`.
    pub fn link_name(&self, target: &str) -> Option<String> {
        let t = self.read_link(target)?;
        t.trim_end_matches('/').rsplit('/').next().map(str::to_string).filter(|s| !s.is_empty())
    }

    /// Mode bits and owner of an existing file.
    pub fn file_meta(&self, target: &str) -> Result<Option<FileMeta>, HostError> {
        match fs::symlink_metadata(self.path(target)) {
            Ok(m) => Ok(Some(FileMeta { mode: m.permissions().mode() & 0o7777, uid: m.uid(), gid: m.gid() })),
            Err(e) => {
                let e = HostError::from_io(target, e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    /// Replaces a file atomically: temp file in the same folder, fsync, rename, fsync of the
    /// folder. An existing file keeps its mode and owner; a new one gets `meta` (or 0644 root).
    /// A crash at any point leaves the old or the new contents, never a truncated file.
    pub fn write_atomic(&self, target: &str, contents: &[u8], meta: Option<FileMeta>) -> Result<(), HostError> {
        let keep = self.file_meta(target)?.or(meta).unwrap_or(FileMeta { mode: 0o644, uid: 0, gid: 0 });
        self.write_atomic_as(target, contents, keep)
    }

    /// Like `write_atomic`, but the file ends up with exactly `keep` as mode and owner
    /// (rollback restores a file's previous mode and owner with its bytes).
    pub fn write_atomic_as(&self, target: &str, contents: &[u8], keep: FileMeta) -> Result<(), HostError> {
        let dest = self.path(target);
        let dir = dest.parent().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
        let io = |e| HostError::from_io(target, e);
        fs::create_dir_all(&dir).map_err(io)?;
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.lltune-{}", std::process::id()));
        let result = (|| -> io::Result<()> {
            let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(contents)?;
            f.set_permissions(fs::Permissions::from_mode(keep.mode))?;
            // Ownership can only be given away by root; elsewhere keep ours.
            let _ = std::os::unix::fs::fchown(&f, Some(keep.uid), Some(keep.gid));
            f.sync_all()?;
            fs::rename(&tmp, &dest)?;
            fs::File::open(&dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(io)
    }

    /// Writes a value into an existing kernel file (`/proc/sys/...`, `/sys/...`) in one
    /// write, as `echo value > file` does. Never creates the file. O_TRUNC as the shell's
    /// `>` uses it: procfs and sysfs ignore it, and a fixture tree's plain file then holds
    /// exactly the value written.
    pub fn write_kernel(&self, target: &str, value: &str) -> Result<(), HostError> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.path(target))
            .map_err(|e| HostError::from_io(target, e))?;
        f.write_all(value.as_bytes()).map_err(|e| HostError::from_io(target, e))
    }

    /// Removes a file; absent is fine.
    pub fn remove(&self, target: &str) -> Result<(), HostError> {
        match fs::remove_file(self.path(target)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(HostError::from_io(target, e)),
        }
    }

    pub fn create_dir_all(&self, target: &str) -> Result<(), HostError> {
        fs::create_dir_all(self.path(target)).map_err(|e| HostError::from_io(target, e))
    }
}

/// Permission bits and owner of a file, kept across rewrites and in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

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
        host.write_atomic("/etc/a.conf", b"one\n", Some(FileMeta { mode: 0o600, uid: 0, gid: 0 })).unwrap();
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
}
