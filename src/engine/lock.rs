//! One exclusive lock per `root`, held from planning to the last write, so that two runs
//! (two plays, a play and `lltune apply`) never interleave: each sees the other's finished
//! work, journals append without losing entries, and a failing run reverts only its own
//! writes. `flock` on the root folder itself: nothing is created, so check mode and refused
//! runs take the same lock and still write nothing (a check-mode run waits for a real run
//! to finish rather than report half its work). The kernel drops the lock when the process
//! dies, so a killed run never leaves the host locked. Within one process the lock is
//! re-entrant (`lltune apply` holds it across its modules).

use std::collections::HashMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::host::Host;
use crate::protocol::Failure;

/// How long a run waits for another to finish; `LLTUNE_LOCK_TIMEOUT_S` overrides it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A held root: how many guards hold it, and the lock file (none on a read-only root).
type Held = (usize, Option<fs::File>);

/// Roots this process holds, with how many guards hold each.
static HELD: Mutex<Option<HashMap<PathBuf, Held>>> = Mutex::new(None);

/// Held until dropped.
#[derive(Debug)]
pub struct Lock {
    root: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Ok(mut g) = HELD.lock() {
            let map = g.get_or_insert_with(HashMap::new);
            if let Some(entry) = map.get_mut(&self.root) {
                entry.0 -= 1;
                if entry.0 == 0 {
                    map.remove(&self.root); // closing the file releases the flock
                }
            }
        }
    }
}

fn timeout() -> Duration {
    std::env::var("LLTUNE_LOCK_TIMEOUT_S")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// Takes the lock of `host`'s root, waiting up to the timeout.
pub fn acquire(host: &Host) -> Result<Lock> {
    let root = host.root().to_path_buf();
    {
        let mut g = HELD.lock().map_err(|_| anyhow::anyhow!("lock table poisoned"))?;
        if let Some(entry) = g.get_or_insert_with(HashMap::new).get_mut(&root) {
            entry.0 += 1;
            return Ok(Lock { root });
        }
    }
    let shown = root.display().to_string();
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&root)
        .map_err(|e| Failure::new(format!("root {shown}: cannot open it to lock it: {e}")))?;
    let start = Instant::now();
    let limit = timeout();
    loop {
        // SAFETY: flock on a descriptor we own.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(Failure::new(format!("root {shown}: cannot lock: {e}")).into());
        }
        if start.elapsed() >= limit {
            return Err(Failure::new(format!(
                "another lltune run is changing root {shown} (waited {:.0} s for its lock); nothing was changed, run again when it has finished",
                limit.as_secs_f64()
            ))
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut g = HELD.lock().map_err(|_| anyhow::anyhow!("lock table poisoned"))?;
    g.get_or_insert_with(HashMap::new).insert(root.clone(), (1, Some(file)));
    Ok(Lock { root })
}
