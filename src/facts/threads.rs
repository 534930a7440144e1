//! Threads as `/proc` shows them (proc(5)): `/proc/<pid>/task/<tid>/stat` for the name, the
//! task flags, the start time and the scheduling policy and priority, and `status` for the
//! CPUs the thread may run on (`Cpus_allowed_list`). Read through the host, so a captured
//! tree's `/proc` is planned from like the running one.
//!
//! The surprising parts: the name in `stat` sits in parentheses and may itself hold spaces
//! and `)` (the last `)` ends it); a thread id is reused once the thread is gone, so a thread
//! is named by its id *and* its start time (field 22, clock ticks since boot), and a thread
//! with the same id but another start time is another thread.

use serde::{Deserialize, Serialize};

use crate::cpulist::CpuList;
use crate::host::Host;
use crate::sys::sched::Policy;

/// PF_KTHREAD (include/linux/sched.h): a kernel thread.
pub const PF_KTHREAD: u64 = 0x0020_0000;
/// PF_NO_SETAFFINITY: userland may not change the thread's affinity (per-CPU kthreads bound
/// with `kthread_bind`: ksoftirqd/N, migration/N, cpuhp/N, kworker/N:M, rcuc/N).
pub const PF_NO_SETAFFINITY: u64 = 0x0400_0000;
/// The most threads one plan reads (a host has far fewer; a bigger `/proc` is refused).
pub const MAX_THREADS: usize = 200_000;

/// One thread, as long as it lives: its ids, its start time and its name when it was read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ThreadId {
    pub pid: u32,
    pub tid: u32,
    /// Clock ticks after boot the thread started (stat field 22).
    pub starttime: u64,
    pub comm: String,
}

impl std::fmt::Display for ThreadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pid == self.tid {
            write!(f, "{} ({})", self.tid, self.comm)
        } else {
            write!(f, "{} ({}, of process {})", self.tid, self.comm, self.pid)
        }
    }
}

/// What lltune sets on a thread: the CPUs it may run on, its policy and its priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sched {
    pub affinity: CpuList,
    pub policy: Policy,
    pub priority: u32,
}

impl Sched {
    /// `cpus 0-1, fifo 2`.
    pub fn show(&self) -> String {
        format!("cpus {}, {} {}", self.affinity, self.policy.name(), self.priority)
    }
}

/// A thread as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: ThreadId,
    /// The stat state letter (`R`, `S`, `Z`...).
    pub state: char,
    /// The stat flags field (PF_*).
    pub flags: u64,
    pub affinity: CpuList,
    /// `None`: SCHED_DEADLINE or a policy number unknown here.
    pub policy: Option<Policy>,
    /// The raw policy number, for messages.
    pub policy_number: u32,
    pub priority: u32,
}

impl Task {
    pub fn kthread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }

    /// A per-CPU kernel thread: userland may not move it (PF_NO_SETAFFINITY), or (a dump of
    /// a kernel whose stat lacks the flag) a kernel thread bound to one CPU whose name ends
    /// in its CPU number (`ksoftirqd/3`, `kworker/3:1`, `rcuc/3`).
    pub fn per_cpu_kthread(&self) -> bool {
        if !self.kthread() {
            return false;
        }
        if self.flags & PF_NO_SETAFFINITY != 0 {
            return true;
        }
        let Some(cpu) = self.affinity.first().filter(|_| self.affinity.len() == 1) else { return false };
        let Some((_, tail)) = self.id.comm.rsplit_once('/') else { return false };
        let n = tail.split(':').next().unwrap_or("");
        n == cpu.to_string()
    }

    pub fn sched(&self) -> Option<Sched> {
        Some(Sched { affinity: self.affinity.clone(), policy: self.policy?, priority: self.priority })
    }
}

/// The fields of a stat line that lltune uses: (comm, state, flags, starttime, rt_priority,
/// policy).
pub fn parse_stat(line: &str) -> Option<(String, char, u64, u64, u32, u32)> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    if close < open {
        return None;
    }
    let comm = line[open + 1..close].to_string();
    let rest: Vec<&str> = line[close + 1..].split_ascii_whitespace().collect();
    // rest[0] is field 3 (state): field n is rest[n - 3].
    let field = |n: usize| rest.get(n - 3).copied();
    let state = field(3)?.chars().next()?;
    let flags = field(9)?.parse().ok()?;
    let starttime = field(22)?.parse().ok()?;
    let priority = field(40)?.parse().ok()?;
    let policy = field(41)?.parse().ok()?;
    Some((comm, state, flags, starttime, priority, policy))
}

fn number(name: &str) -> Option<u32> {
    if name.is_empty() || name.len() > 10 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok().filter(|&n| n > 0)
}

/// Thread `tid` of process `pid`; `None` when it is gone or its files do not read as a
/// thread's.
pub fn read_task(host: &Host, pid: u32, tid: u32) -> Option<Task> {
    let dir = format!("/proc/{pid}/task/{tid}");
    let stat = host.read_opt(&format!("{dir}/stat")).ok().flatten()?;
    let (comm, state, flags, starttime, priority, policy_number) = parse_stat(&stat)?;
    let status = host.read_opt(&format!("{dir}/status")).ok().flatten()?;
    let affinity =
        status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).and_then(|v| CpuList::parse(v).ok())?;
    Some(Task {
        id: ThreadId { pid, tid, starttime, comm },
        state,
        flags,
        affinity,
        policy: Policy::from_number(policy_number),
        policy_number,
        priority,
    })
}

/// The thread `id` names, if it still lives (same ids, same start time).
pub fn current(host: &Host, id: &ThreadId) -> Option<Task> {
    read_task(host, id.pid, id.tid).filter(|t| t.id.starttime == id.starttime)
}

/// Every thread under `/proc`, by process then thread id; zombies and dying threads are
/// left out (nothing to set on them). `Err` when there is no `/proc` to read, or more than
/// `MAX_THREADS` threads.
pub fn list(host: &Host) -> Result<Vec<Task>, String> {
    let pids = host.list("/proc").map_err(|e| format!("cannot list /proc: {e}"))?;
    let mut pids: Vec<u32> = pids.iter().filter_map(|n| number(n)).collect();
    crate::sort::sort_by(&mut pids, Ord::cmp);
    let mut out = Vec::new();
    for pid in pids {
        let mut tids: Vec<u32> =
            host.list_or_empty(&format!("/proc/{pid}/task")).iter().filter_map(|n| number(n)).collect();
        crate::sort::sort_by(&mut tids, Ord::cmp);
        for tid in tids {
            if out.len() >= MAX_THREADS {
                return Err(format!("more than {MAX_THREADS} threads under /proc"));
            }
            if let Some(t) = read_task(host, pid, tid).filter(|t| !matches!(t.state, 'Z' | 'X' | 'x')) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_names_with_spaces_and_parentheses() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 777 0 0 \
                    18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 50 1 0 0 0";
        let (comm, state, flags, start, prio, policy) = parse_stat(line).unwrap();
        assert_eq!((comm.as_str(), state, flags, start, prio, policy), ("a) b (c)", 'S', 4194560, 777, 50, 1));
        assert!(parse_stat("1 (x) S 1 2").is_none());
        // This process, as the kernel writes it.
        let me = std::fs::read_to_string("/proc/self/stat").unwrap();
        let (_, _, flags, _, prio, policy) = parse_stat(&me).unwrap();
        assert_eq!(flags & PF_KTHREAD, 0);
        assert_eq!((prio, policy), (0, 0));
    }

    #[test]
    fn per_cpu_kthreads_by_flag_or_by_name_and_one_cpu() {
        let task = |comm: &str, flags: u64, cpus: &str| Task {
            id: ThreadId { pid: 9, tid: 9, starttime: 1, comm: comm.into() },
            state: 'S',
            flags,
            affinity: CpuList::parse(cpus).unwrap(),
            policy: Some(Policy::Other),
            policy_number: 0,
            priority: 0,
        };
        assert!(task("anything", PF_KTHREAD | PF_NO_SETAFFINITY, "0-3").per_cpu_kthread());
        assert!(task("ksoftirqd/3", PF_KTHREAD, "3").per_cpu_kthread());
        assert!(task("kworker/3:1", PF_KTHREAD, "3").per_cpu_kthread());
        assert!(!task("kworker/3:1", PF_KTHREAD, "2").per_cpu_kthread());
        assert!(!task("kworker/u8:1", PF_KTHREAD, "0-3").per_cpu_kthread());
        assert!(!task("ksoftirqd/3", PF_NO_SETAFFINITY, "3").per_cpu_kthread(), "not a kernel thread");
    }
}
