//! Reading a capture archive given as `--root X.tar.gz`: unpacked into a private temporary
//! folder, with bounds, and removed on every way out.
//!
//! An archive may come from anywhere, so it is read as hostile input:
//! - bounds: `Limits` caps the bytes gunzip gives (headers, names and contents together, so
//!   a 2 MB archive of zeros cannot become gigabytes), the entries (folders made on the way
//!   count), the components of a path and a path's length. Each entry costs work in
//!   proportion to its own header and contents (the folders already made are kept in a map,
//!   never searched again on disk), so a deep path costs no quadratic time.
//! - containment: nothing is written outside the folder. A name that is absolute or holds
//!   `..` is refused; a name that goes through an earlier link or file is refused (no write
//!   through a link); files are made with `O_EXCL | O_NOFOLLOW`; hard links, devices, FIFOs
//!   and sparse files are refused. Symbolic links are stored with their targets as written
//!   (a capture holds `→ /dev/null` and `→ /usr/lib/systemd/system/x.service`): lltune's
//!   `Host` resolves every link inside the tree, as in a chroot, so none leads out.
//! - cleanup: `TempRoot` removes the folder when dropped (errors and panics unwind to it),
//!   on SIGINT, SIGTERM and SIGHUP (a thread waits for them, removes the folder and ends the
//!   process as the signal would), and a folder a SIGKILL left behind is removed by the next
//!   run, which finds it by the dead process id in its name.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

/// What reading one archive may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes after gunzip: tar headers, long names and file contents together.
    pub max_bytes: u64,
    /// Entries: files, folders and links, with the folders made for them.
    pub max_entries: u64,
    /// Components of one path.
    pub max_depth: usize,
    /// Bytes of one path or link target (Linux's PATH_MAX less the NUL).
    pub max_path_bytes: usize,
}

/// The limits of `--root X.tar.gz`: twice what `lltune capture` writes by default
/// (`--max-total-size 256M`); the largest real capture the project knows (a 256-CPU host
/// with 4,000 IRQs) holds about 60,000 entries, and sysfs paths have about 15 components.
pub const LIMITS: Limits = Limits { max_bytes: 512 << 20, max_entries: 500_000, max_depth: 64, max_path_bytes: 4095 };

/// The limit an archive went over, for the message.
fn over(archive: &Path, what: &str, limit: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "--root {}: the archive holds more than {limit} {what} (lltune's limit for an archive; unpack it with tar and pass the folder)",
        archive.display()
    )
}

/// A reader that fails once more than `left` bytes have been read, and says so in `hit`.
struct Budget<R> {
    inner: R,
    left: u64,
    hit: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more tells a stream that ends exactly at the limit from a larger one.
            let mut one = [0u8; 1];
            if self.inner.read(&mut one)? == 0 {
                return Ok(0);
            }
            self.hit.set(true);
            return Err(io::Error::other("over the byte limit"));
        }
        let n = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got as u64;
        Ok(got)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    Dir,
    Other,
}

/// Unpacks a capture archive into `dest`, an empty folder this process made, within `limits`.
/// On error `dest` may hold part of the archive: the caller removes it (`TempRoot` does).
pub fn unpack(archive: &Path, dest: &Path, limits: &Limits) -> Result<()> {
    let shown = archive.display();
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(archive)
        .with_context(|| format!("--root {shown}: cannot open"))?;
    if !f.metadata().with_context(|| format!("--root {shown}: cannot read"))?.is_file() {
        bail!("--root {shown}: not a regular file");
    }
    let hit = std::rc::Rc::new(std::cell::Cell::new(false));
    let reader =
        Budget { inner: flate2::read::GzDecoder::new(io::BufReader::new(f)), left: limits.max_bytes, hit: hit.clone() };
    let mut ar = tar::Archive::new(reader);
    let r = unpack_entries(&mut ar, archive, dest, limits);
    if hit.get() {
        return Err(over(archive, "bytes unpacked", limits.max_bytes));
    }
    r
}

fn unpack_entries<R: Read>(ar: &mut tar::Archive<R>, archive: &Path, dest: &Path, limits: &Limits) -> Result<()> {
    let shown = archive.display();
    let bad = |what: &str| anyhow::anyhow!("--root {shown}: {what}");
    // Everything made so far, by path relative to `dest` ("" is `dest`).
    let mut made: HashMap<Vec<u8>, Made> = HashMap::from([(Vec::new(), Made::Dir)]);
    let mut count: u64 = 0;
    // File sizes as the headers declare them: an archive is refused at the header that
    // would take it over the limit, before that file is written.
    let mut declared: u64 = 0;
    // GNU long names and PAX paths of the next entry, read in raw mode so that their size is
    // checked before they are read.
    let mut long_path: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let entries = ar.entries().map_err(|e| bad(&format!("not a tar archive ({e})")))?.raw(true);
    for entry in entries {
        let mut e = entry.map_err(|e| bad(&format!("not a readable .tar.gz ({e})")))?;
        let kind = e.header().entry_type();
        let ext_cap = (limits.max_path_bytes + 1) as u64;
        match kind {
            tar::EntryType::GNULongName | tar::EntryType::GNULongLink => {
                let size = e.header().entry_size().unwrap_or(u64::MAX);
                if size > ext_cap {
                    return Err(over(archive, "bytes in a path", limits.max_path_bytes));
                }
                let mut v = Vec::new();
                e.read_to_end(&mut v).map_err(|e| bad(&format!("cannot read ({e})")))?;
                while v.last() == Some(&0) {
                    v.pop();
                }
                if kind == tar::EntryType::GNULongName {
                    long_path = Some(v)
                } else {
                    long_link = Some(v)
                };
                continue;
            }
            tar::EntryType::XHeader => {
                // PAX records: `path` and `linkpath` name the next entry; nothing else is used.
                let size = e.header().entry_size().unwrap_or(u64::MAX);
                if size > 4 * ext_cap {
                    return Err(over(archive, "bytes in a PAX header", 4 * ext_cap));
                }
                let mut v = Vec::new();
                e.read_to_end(&mut v).map_err(|e| bad(&format!("cannot read ({e})")))?;
                for rec in tar::PaxExtensions::new(&v) {
                    let rec = rec.map_err(|e| bad(&format!("bad PAX header ({e})")))?;
                    match rec.key_bytes() {
                        b"path" => long_path = Some(rec.value_bytes().to_vec()),
                        b"linkpath" => long_link = Some(rec.value_bytes().to_vec()),
                        b"size" => bail!("--root {shown}: a PAX size record (not written by lltune capture)"),
                        _ => {}
                    }
                }
                continue;
            }
            tar::EntryType::XGlobalHeader => continue,
            _ => {}
        }
        let name = long_path.take().unwrap_or_else(|| e.path_bytes().into_owned());
        let link = long_link.take().or_else(|| e.link_name_bytes().map(|l| l.into_owned()));
        count += 1;
        if count > limits.max_entries {
            return Err(over(archive, "entries", limits.max_entries));
        }
        let shown_name = String::from_utf8_lossy(&name[..name.len().min(200)]).into_owned();
        if name.len() > limits.max_path_bytes {
            return Err(over(archive, "bytes in a path", limits.max_path_bytes));
        }
        if name.starts_with(b"/") {
            return Err(bad(&format!("{shown_name}: an absolute path")));
        }
        let mut comps: Vec<&[u8]> = Vec::new();
        for c in name.split(|b| *b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => return Err(bad(&format!("{shown_name}: a path with `..`"))),
                c => comps.push(c),
            }
        }
        if comps.len() > limits.max_depth {
            return Err(over(archive, "components in a path", limits.max_depth));
        }
        if comps.is_empty() {
            continue;
        }
        let rel: Vec<u8> = comps.join(&b'/');
        // The parent folders, made when missing; none may be a link or file stored before.
        // The parent is looked up once; only when it is missing are its ancestors looked up,
        // from the deepest, and each is made once: the work stays linear in the names.
        let slashes: Vec<usize> = rel.iter().enumerate().filter(|(_, b)| **b == b'/').map(|(i, _)| i).collect();
        let mut missing_from = slashes.len();
        while missing_from > 0 {
            match made.get(&rel[..slashes[missing_from - 1]]) {
                Some(Made::Dir) => break,
                Some(Made::Other) => {
                    return Err(bad(&format!("{shown_name}: goes through a link or file stored before it")));
                }
                None => missing_from -= 1,
            }
        }
        for &end in &slashes[missing_from..] {
            count += 1;
            if count > limits.max_entries {
                return Err(over(archive, "entries", limits.max_entries));
            }
            make_dir(dest, &rel[..end]).map_err(|e| bad(&format!("{shown_name}: {e}")))?;
            made.insert(rel[..end].to_vec(), Made::Dir);
        }
        let at = dest.join(OsStr::from_bytes(&rel));
        let before = made.get(&rel).copied();
        match kind {
            tar::EntryType::Directory => match before {
                Some(Made::Dir) => {}
                Some(Made::Other) => return Err(bad(&format!("{shown_name}: stored twice"))),
                None => {
                    make_dir(dest, &rel).map_err(|e| bad(&format!("{shown_name}: {e}")))?;
                    made.insert(rel, Made::Dir);
                }
            },
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Symlink if before.is_some() => {
                return Err(bad(&format!("{shown_name}: stored twice")));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = e.header().entry_size().map_err(|e| bad(&format!("{shown_name}: bad size ({e})")))?;
                declared = declared.saturating_add(size);
                if declared > limits.max_bytes {
                    return Err(over(archive, "bytes unpacked", limits.max_bytes));
                }
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&at)
                    .map_err(|e| bad(&format!("{shown_name}: cannot write ({e})")))?;
                io::copy(&mut e, &mut f).map_err(|e| bad(&format!("{shown_name}: cannot unpack ({e})")))?;
                made.insert(rel, Made::Other);
            }
            tar::EntryType::Symlink => {
                let to = link.unwrap_or_default();
                if to.is_empty() || to.len() > limits.max_path_bytes || to.contains(&0) {
                    return Err(bad(&format!("{shown_name}: a link with an empty or over-long target")));
                }
                std::os::unix::fs::symlink(OsStr::from_bytes(&to), &at)
                    .map_err(|e| bad(&format!("{shown_name}: cannot make the link ({e})")))?;
                made.insert(rel, Made::Other);
            }
            other => {
                let what = match other {
                    tar::EntryType::Link => "a hard link",
                    tar::EntryType::Char | tar::EntryType::Block => "a device",
                    tar::EntryType::Fifo => "a FIFO",
                    tar::EntryType::GNUSparse => "a sparse file",
                    _ => "an entry of an unknown type",
                };
                return Err(bad(&format!("{shown_name}: {what} (a capture holds files, folders and symbolic links)")));
            }
        }
    }
    Ok(())
}

/// One folder under `dest`, whose parent this unpacking made (so no link is on the way).
fn make_dir(dest: &Path, rel: &[u8]) -> io::Result<()> {
    fs::DirBuilder::new().mode(0o755).create(dest.join(OsStr::from_bytes(rel)))
}

/// The prefix of lltune's temporary folders; the process id and a counter follow.
const TEMP_PREFIX: &str = "lltune-root-";

/// Folders to remove when a signal ends the process.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A private temporary folder (mode 0700) that is removed when dropped, when SIGINT, SIGTERM
/// or SIGHUP ends the process, and, when a SIGKILL ends it, by the next `TempRoot::new`. The
/// folder is held under an exclusive `flock` for its life: the kernel drops the lock when the
/// process dies, however it dies, which is how the next run knows the folder is left over.
pub struct TempRoot {
    path: PathBuf,
    _lock: fs::File,
}

impl TempRoot {
    pub fn new() -> Result<TempRoot> {
        let base = std::env::temp_dir();
        remove_stale(&base);
        watch_signals();
        let pid = std::process::id();
        for i in 0..100u32 {
            let p = base.join(format!("{TEMP_PREFIX}{pid}-{i}"));
            match fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => {
                    LIVE.lock().unwrap_or_else(|e| e.into_inner()).push(p.clone());
                    let lock = match lock_dir(&p, true) {
                        Some(l) => l,
                        None => {
                            let _ = fs::remove_dir_all(&p);
                            bail!("cannot lock the temporary folder {}", p.display());
                        }
                    };
                    return Ok(TempRoot { path: p, _lock: lock });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => bail!("cannot create a temporary folder in {}: {e}", base.display()),
            }
        }
        bail!("cannot create a temporary folder in {}", base.display())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let _ = fs::remove_dir_all(&self.path);
        live.retain(|p| p != &self.path);
    }
}

/// The folder `p` opened (never through a link) and locked with `flock(LOCK_EX)`; `wait`
/// false: `None` when another process holds the lock.
fn lock_dir(p: &Path, wait: bool) -> Option<fs::File> {
    use std::os::fd::AsRawFd;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
        .ok()?;
    let op = if wait { libc::LOCK_EX } else { libc::LOCK_EX | libc::LOCK_NB };
    // SAFETY: flock on a descriptor `f` owns for the duration of the call.
    (unsafe { libc::flock(f.as_raw_fd(), op) } == 0).then_some(f)
}

/// Removes the temporary folders lltune processes left when they were killed (a SIGKILL
/// gives no chance to clean up): `lltune-root-<pid>-<n>` in `base`, a real folder (not a
/// link) owned by this user, whose process is gone and whose lock nobody holds.
pub fn remove_stale(base: &Path) {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let Ok(rd) = fs::read_dir(base) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else { continue };
        let Some(pid) = rest.split_once('-').and_then(|(p, _)| p.parse::<i32>().ok()) else { continue };
        if pid <= 0 || pid as u32 == std::process::id() || process_exists(pid) {
            continue;
        }
        let p = e.path();
        if !fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
            continue;
        }
        // Held: a live process (in another PID namespace, say) still uses it.
        if let Some(_lock) = lock_dir(&p, false) {
            let _ = fs::remove_dir_all(&p);
        }
    }
}

fn process_exists(pid: i32) -> bool {
    // kill(pid, 0) checks that the process exists without signalling it; EPERM means it
    // exists under another user.
    // SAFETY: signal 0 sends nothing.
    unsafe { libc::kill(pid, 0) == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH) }
}

/// Once per process: SIGINT, SIGTERM and SIGHUP are blocked in this thread (and the threads
/// it starts later) and taken by a thread of their own, which removes the live temporary
/// folders and then ends the process as the signal would have (default action, re-raised).
fn watch_signals() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let signals = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
        // SAFETY: `set` is a local sigset_t initialised by sigemptyset before any other use;
        // pthread_sigmask only reads it.
        let set = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in signals {
                libc::sigaddset(&mut set, s);
            }
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return;
            }
            set
        };
        let spawned = std::thread::Builder::new().name("lltune-signals".into()).spawn(move || {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is a valid, initialised sigset_t moved into this thread; `sig` is
            // a local the call writes.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                return;
            }
            // The main thread may still be writing into a folder: it is first renamed away,
            // so that its next write fails, then removed (again if one write was under way).
            // Held until the process ends: a main thread whose next write fails drops its
            // `TempRoot`, which waits here, so the process ends by the signal, not by that error.
            let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
            for p in live.iter() {
                let mut doomed = p.clone().into_os_string();
                doomed.push(".removing");
                let gone = if fs::rename(p, &doomed).is_ok() { PathBuf::from(doomed) } else { p.clone() };
                for _ in 0..10 {
                    if fs::remove_dir_all(&gone).is_ok() || !gone.exists() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
            // SAFETY: plain libc calls with valid arguments: restore the default action,
            // unblock the signal in this thread and raise it, so the process ends by it (its
            // exit status says which signal, as without lltune's handling).
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                let mut one: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut one);
                libc::sigaddset(&mut one, sig);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
                libc::raise(sig);
            }
            let _held = live;
            std::process::exit(128 + sig);
        });
        if spawned.is_err() {
            // No watcher: let the signals act as before (the next run removes the folder).
            // SAFETY: as above, `set` is initialised.
            unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
        }
    });
}
