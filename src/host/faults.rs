//! Fault injection for the contract test (debug builds only). The process counts its
//! mutations of the host (create, write, fsync, rename, remove, link). With
//! `LLTUNE_FAULT_KILL_AT=N` it kills itself with SIGKILL at the N-th, as a power cut or
//! `kill -9` would; with `LLTUNE_FAULT_FAIL_AT=N` the N-th fails with EIO, as a full disk
//! would. Release builds compile this to nothing.

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
