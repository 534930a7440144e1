//! Reads of target paths: whole files as bytes or text, one-value attributes, streams,
//! listings, links and file metadata. Only regular files are read where a file is expected.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::sync::Mutex;

use super::{FileMeta, Host, HostError, Node, kind_of, resolve, xattr};

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

impl Host {
    /// Opens a regular file for reading; anything else is refused before it can block.
    pub(super) fn open_regular(&self, target: &str) -> Result<(fs::File, u64), HostError> {
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
    pub(super) fn read_into(&self, target: &str, out: &mut Vec<u8>, one_value: bool) -> Result<(), HostError> {
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
    pub(super) fn lstat(&self, target: &str) -> Result<Option<fs::Metadata>, HostError> {
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
        crate::sort::sort_by(&mut out, Ord::cmp);
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
        crate::sort::sort_by(&mut names, Ord::cmp);
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
