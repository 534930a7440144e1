//! Writes under `root`: atomic file replacement, kernel value writes, links, removals,
//! folders, and the clean-up of temp files a killed run left. Every mutation passes a fault
//! point (`faults`).

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{FileMeta, Host, HostError, faults, kind_of, xattr};

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

impl Host {
    /// Makes a boot loader's file readable as written by a reader that does not replay the
    /// file system's journal: GRUB reads ext4 and XFS from their blocks' home locations, and
    /// after a power cut between the journal's commit and its checkpoint it finds the old
    /// inode pointing at blocks already given to other files (seen in the VM test bed as a
    /// grub.cfg of garbage, GRUB's prompt instead of a boot). Freezing the file system
    /// (FIFREEZE, what `fsfreeze` does) writes the journal back to the home locations; it is
    /// thawed at once. A file system that cannot be frozen (FAT, which has no journal; one
    /// frozen by someone else) is synced instead. Live host only; a tree boots nothing.
    pub fn settle_for_boot_loader(&self, target: &str) {
        const FIFREEZE: libc::c_ulong = 0xC004_5877;
        const FITHAW: libc::c_ulong = 0xC004_5878;
        if !self.live {
            return;
        }
        let Ok(resolved) = self.resolve(target, true) else { return };
        let (rdir, _) = resolved.rsplit_once('/').unwrap_or(("", &resolved));
        let dir = self.join(if rdir.is_empty() { "/" } else { rdir });
        let Ok(dirf) = self.open_beneath(&dir, libc::O_RDONLY | libc::O_DIRECTORY, 0) else { return };
        let fd = dirf.as_raw_fd();
        // SAFETY: ioctls on a descriptor we own, with an unused int argument.
        let frozen = unsafe { libc::ioctl(fd, FIFREEZE as _, 0) } == 0;
        if frozen {
            // SAFETY: as above; thawed whatever happens next.
            unsafe { libc::ioctl(fd, FITHAW as _, 0) };
        } else {
            // SAFETY: syncfs on a descriptor we own.
            unsafe { libc::syncfs(fd) };
        }
    }

    /// Creates the folders of a resolved target path that are missing (mode 0755).
    pub(super) fn make_dirs(&self, resolved_dir: &str) -> Result<(), HostError> {
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
            faults::point().map_err(|e| HostError::from_io(&shown, e))?;
            self.forget_missing();
            // mkdirat in the parent held open beneath root: never a folder somewhere else.
            let pf = self
                .open_beneath(&parent, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| HostError::from_io(&shown, e))?;
            match nix::sys::stat::mkdirat(Some(pf.as_raw_fd()), c, nix::sys::stat::Mode::from_bits_truncate(0o755)) {
                // The new folder's name is in its parent once the parent is synced: a power
                // cut must not drop a folder whose files were synced into it.
                Ok(()) => pf.sync_all().map_err(|e| HostError::from_io(&shown, e))?,
                Err(nix::errno::Errno::EEXIST) => {}
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
        self.replace(target, contents, keep, Durable::Yes)
    }

    /// The atomic replace behind `write_atomic_as`, and behind `write_kernel` on a captured
    /// tree, where the file stands for a kernel value: `Durable::No` leaves out the fsyncs. A
    /// kernel value is gone at power loss on a live host too (a live `write_kernel` is one
    /// plain write), so syncing its stand-in buys nothing; the rename still leaves the old or
    /// the new value, never part of one. (A tree's IRQ affinities are hundreds of files: three
    /// fsyncs each were most of what tuning and rolling back a simulated host cost.)
    fn replace(&self, target: &str, contents: &[u8], keep: &FileMeta, durable: Durable) -> Result<(), HostError> {
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
            faults::point()?;
            let raw = openat(
                Some(dfd),
                tmp_name.as_str(),
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )?;
            // SAFETY: openat returned a new descriptor that nothing else owns.
            let mut f = unsafe { <fs::File as std::os::fd::FromRawFd>::from_raw_fd(raw) };
            faults::point()?;
            f.write_all(contents)?;
            // Owner first: chown clears the setuid/setgid bits that the chmod then sets.
            // Ownership can only be given away by root; elsewhere keep ours.
            let _ = std::os::unix::fs::fchown(&f, Some(keep.uid), Some(keep.gid));
            nix::sys::stat::fchmod(f.as_raw_fd(), nix::sys::stat::Mode::from_bits_truncate(keep.mode))?;
            xattr::write_all(&f, &keep.xattrs)?;
            faults::point()?;
            if durable == Durable::Yes {
                f.sync_all()?;
            }
            faults::point()?;
            renameat(Some(dfd), tmp_name.as_str(), Some(dfd), name)?;
            faults::point()?;
            if durable == Durable::No {
                return Ok(());
            }
            // Synced again under its new name: on FAT (an EFI system partition holding boot
            // entries) the rename points the name's directory slot at the new clusters only
            // when the file's own metadata is written, which the folder's fsync does not do.
            // Filesystems known to put the rename and the inode in order need no second one.
            if !orders_rename(&dirf) {
                f.sync_all()?;
            }
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
            let Some(keep) = self.file_meta(target)? else {
                return Err(HostError::NotFound { path: target.to_string() });
            };
            return self.replace(target, value, &keep, Durable::No);
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
        faults::point().map_err(|e| HostError::from_io(target, e))?;
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
        faults::point().map_err(|e| HostError::from_io(target, e))?;
        match nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            // Synced, so that a power cut after the run cannot bring the name back.
            Ok(()) => dir.sync_all().map_err(|e| HostError::from_io(target, e)),
            Err(nix::errno::Errno::ENOENT) => Ok(()),
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
        faults::point().map_err(|e| HostError::from_io(target, e))?;
        nix::unistd::symlinkat(to, Some(dfd), tmp.as_str()).map_err(io)?;
        let renamed = faults::point()
            .map_err(|e| HostError::from_io(target, e))
            .and_then(|()| nix::fcntl::renameat(Some(dfd), tmp.as_str(), Some(dfd), name).map_err(io));
        if renamed.is_err() {
            let _ = nix::unistd::unlinkat(Some(dfd), tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
            return renamed;
        }
        // A link (a unit's enablement) outlives a power cut only once its folder is synced.
        dir.sync_all().map_err(|e| HostError::from_io(target, e))
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
        faults::point().map_err(|e| HostError::from_io(target, e))?;
        match nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, nix::unistd::UnlinkatFlags::RemoveDir) {
            Ok(()) => dir.sync_all().map(|()| true).map_err(|e| HostError::from_io(target, e)),
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
        crate::sort::sort_by(&mut removed, Ord::cmp);
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
}

/// Whether `Host::replace` syncs what it writes (see there).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durable {
    Yes,
    No,
}

/// Whether the filesystem holding `dir` is one that writes a renamed file's inode and the
/// rename in order, so that the folder's fsync after the file's is enough: ext2/3/4, XFS,
/// Btrfs, tmpfs. Anything else (FAT above all, and what fstatfs cannot tell) gets the
/// second fsync of the file under its new name.
fn orders_rename(dir: &fs::File) -> bool {
    const EXT4: i64 = 0xEF53;
    const XFS: i64 = 0x5846_5342;
    const BTRFS: i64 = 0x9123_683E;
    const TMPFS: i64 = 0x0102_1994;
    match nix::sys::statfs::fstatfs(dir) {
        // The field is the C library's word (c_long), not i64 on every target.
        #[allow(clippy::unnecessary_cast)]
        Ok(s) => matches!(s.filesystem_type().0 as i64, EXT4 | XFS | BTRFS | TMPFS),
        Err(_) => false,
    }
}
