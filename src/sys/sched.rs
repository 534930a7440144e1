//! Scheduling of running threads: `sched_setaffinity(2)` and `sched_setscheduler(2)` on one
//! thread id, and the policies as `/proc/<pid>/stat` numbers them (include/uapi/linux/sched.h).
//!
//! The surprising part: both calls take a thread id (a `tid`), not a process id, and act on
//! that one thread only; a process's other threads keep their own settings.

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::cpulist::CpuList;

/// A scheduling policy that `sched_setscheduler` sets (SCHED_DEADLINE needs
/// `sched_setattr` and its runtime parameters: lltune reads it and leaves it alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// SCHED_OTHER (SCHED_NORMAL), priority 0.
    Other,
    /// SCHED_FIFO, priority 1-99.
    Fifo,
    /// SCHED_RR, priority 1-99.
    Rr,
    /// SCHED_BATCH, priority 0.
    Batch,
    /// SCHED_IDLE, priority 0.
    Idle,
}

impl Policy {
    /// The policy of a `/proc/<pid>/stat` `policy` field; `None` for SCHED_DEADLINE (6) or a
    /// number this code does not know.
    pub fn from_number(n: u32) -> Option<Policy> {
        match n {
            0 => Some(Policy::Other),
            1 => Some(Policy::Fifo),
            2 => Some(Policy::Rr),
            3 => Some(Policy::Batch),
            5 => Some(Policy::Idle),
            _ => None,
        }
    }

    fn number(self) -> libc::c_int {
        match self {
            Policy::Other => libc::SCHED_OTHER,
            Policy::Fifo => libc::SCHED_FIFO,
            Policy::Rr => libc::SCHED_RR,
            Policy::Batch => libc::SCHED_BATCH,
            Policy::Idle => libc::SCHED_IDLE,
        }
    }

    /// Real-time policies take a priority of 1-99, the others 0.
    pub fn is_realtime(self) -> bool {
        matches!(self, Policy::Fifo | Policy::Rr)
    }

    pub fn name(self) -> &'static str {
        match self {
            Policy::Other => "other",
            Policy::Fifo => "fifo",
            Policy::Rr => "rr",
            Policy::Batch => "batch",
            Policy::Idle => "idle",
        }
    }
}

/// The highest CPU number a `cpu_set_t` holds (CPU_SETSIZE, 1024); the kernel takes a larger
/// mask, but no host lltune tunes has more CPUs.
const SET_SIZE: u32 = libc::CPU_SETSIZE as u32;

/// Sets the CPUs thread `tid` may run on. ESRCH: the thread is gone.
pub fn set_affinity(tid: u32, cpus: &CpuList) -> Result<(), Errno> {
    if cpus.is_empty() || cpus.last().is_some_and(|c| c >= SET_SIZE) {
        return Err(Errno::EINVAL);
    }
    let tid = libc::pid_t::try_from(tid).map_err(|_| Errno::ESRCH)?;
    // SAFETY: `set` is a plain bitmask, zeroed before use; CPU_SET is given CPUs below
    // CPU_SETSIZE only (checked above); sched_setaffinity reads `size_of` bytes of it.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in cpus.iter() {
            libc::CPU_SET(c as usize, &mut set);
        }
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if r == 0 { Ok(()) } else { Err(Errno::last()) }
}

/// Sets the policy and priority of thread `tid`. ESRCH: the thread is gone.
pub fn set_scheduler(tid: u32, policy: Policy, priority: u32) -> Result<(), Errno> {
    let tid = libc::pid_t::try_from(tid).map_err(|_| Errno::ESRCH)?;
    let param = libc::sched_param { sched_priority: libc::c_int::try_from(priority).map_err(|_| Errno::EINVAL)? };
    // SAFETY: `param` is a valid sched_param that outlives the call.
    let r = unsafe { libc::sched_setscheduler(tid, policy.number(), &param) };
    if r == 0 { Ok(()) } else { Err(Errno::last()) }
}
