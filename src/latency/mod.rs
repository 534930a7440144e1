//! Latency proof: cyclictest (from rt-tests) on the isolated and the housekeeping CPUs, its
//! histogram parsed into per-CPU statistics, and one self-describing JSON document per run
//! (`kind: lltune.latency`, `schema_version`) that `lltune validate --compare` and a fleet
//! report read back. `report` renders two documents as a markdown comparison and an SVG.
//!
//! How cyclictest is run: one measurement thread per CPU (`-t N -a LIST`: thread i is pinned
//! to the i-th CPU of the list, in ascending order), all at one SCHED_FIFO priority (`-p`,
//! which `-h` implies anyway), memory locked (`-m`), quiet (`-q`), for a bounded time (`-D`),
//! with a histogram of `histogram_us` one-microsecond buckets (`-h`) on standard output.
//! `--default-system` keeps cyclictest from holding `/dev/cpu_dma_latency` at 0 while it
//! measures: the host is measured as it is tuned, C-state exits included, which is what a
//! before/after comparison of a tuning must see. The main thread goes to the housekeeping
//! CPUs (`--mainaffinity`) when there are any. No shell is involved: every argument is a
//! number or a canonical CPU list built here from validated values.
//!
//! Bucket `i` of the histogram counts wake-ups late by `i` to `i + 1` microseconds (cyclictest
//! truncates to whole microseconds); later ones are counted as overflows. Percentiles are
//! nearest-rank over all samples, overflows included: one that lands among the overflows is
//! reported as `histogram_us`, a lower bound, and named in `beyond_histogram`.

pub mod noise;
pub mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cpulist::CpuList;

/// Version of the document's layout; bump on any change a reader could notice.
pub const SCHEMA_VERSION: u32 = 1;
/// The document's `kind`: what a reader checks before it trusts the rest.
pub const KIND: &str = "lltune.latency";

/// Bounds and defaults of the settings (module options and CLI flags share them).
pub const DEFAULT_DURATION_S: u64 = 60;
pub const MAX_DURATION_S: u64 = 3600;
pub const DEFAULT_INTERVAL_US: u64 = 200;
pub const MIN_INTERVAL_US: u64 = 50;
pub const MAX_INTERVAL_US: u64 = 1_000_000;
pub const DEFAULT_PRIORITY: u32 = 95;
pub const MAX_PRIORITY: u32 = 99;
pub const DEFAULT_HISTOGRAM_US: u64 = 1000;
pub const MIN_HISTOGRAM_US: u64 = 10;
pub const MAX_HISTOGRAM_US: u64 = 10_000;

/// How long after `duration` cyclictest may take to print its histogram before it is stopped.
pub const GRACE_S: u64 = 30;
/// The most bytes of cyclictest output read (a histogram of 10 000 rows on 1 000 CPUs fits).
pub const MAX_OUTPUT_BYTES: u64 = 96 << 20;

/// The measurement's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Run time, seconds (`-D`).
    pub duration_s: u64,
    /// Wake-up interval of every thread, microseconds (`-i`).
    pub interval_us: u64,
    /// SCHED_FIFO priority of the measurement threads (`-p`).
    pub priority: u32,
    /// Histogram buckets of one microsecond (`-h`); later wake-ups are overflows.
    pub histogram_us: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            duration_s: DEFAULT_DURATION_S,
            interval_us: DEFAULT_INTERVAL_US,
            priority: DEFAULT_PRIORITY,
            histogram_us: DEFAULT_HISTOGRAM_US,
        }
    }
}

/// A setting out of bounds: which one (in the module's spelling) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub option: &'static str,
    pub msg: String,
}

impl Settings {
    /// Checks every bound; the first one broken is returned.
    pub fn check(&self) -> Result<(), SettingError> {
        let err = |option, msg: String| Err(SettingError { option, msg });
        if self.duration_s == 0 || self.duration_s > MAX_DURATION_S {
            return err(
                "duration",
                format!("{} seconds is out of range: 1 to {MAX_DURATION_S} (one hour)", self.duration_s),
            );
        }
        if !(MIN_INTERVAL_US..=MAX_INTERVAL_US).contains(&self.interval_us) {
            return err(
                "interval",
                format!("{} µs is out of range: {MIN_INTERVAL_US} to {MAX_INTERVAL_US}", self.interval_us),
            );
        }
        if !(1..=MAX_PRIORITY).contains(&self.priority) {
            return err("priority", format!("{} is out of range: 1 to {MAX_PRIORITY} (SCHED_FIFO)", self.priority));
        }
        if !(MIN_HISTOGRAM_US..=MAX_HISTOGRAM_US).contains(&self.histogram_us) {
            return err(
                "histogram_us",
                format!("{} µs is out of range: {MIN_HISTOGRAM_US} to {MAX_HISTOGRAM_US}", self.histogram_us),
            );
        }
        Ok(())
    }
}

// ---- Which CPUs ----

/// The CPUs to measure: a keyword or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuSelection {
    /// Every online CPU (the default).
    All,
    /// The isolated CPUs (`cpu.isolated`).
    Isolated,
    /// The online CPUs that are not isolated.
    Housekeeping,
    /// These CPUs.
    List(CpuList),
}

impl CpuSelection {
    /// `all`, `isolated`, `housekeeping`, or a CPU list (`0-3,8`).
    pub fn parse(text: &str) -> Result<CpuSelection, String> {
        let t = text.trim();
        match t {
            "" => {
                Err("names no CPU: give a CPU list (like 0-3,8) or all, isolated or housekeeping (all is not implied)"
                    .into())
            }
            "all" => Ok(CpuSelection::All),
            "isolated" => Ok(CpuSelection::Isolated),
            "housekeeping" => Ok(CpuSelection::Housekeeping),
            _ => {
                if !t.chars().all(|c| c.is_ascii_digit() || matches!(c, ',' | '-' | ':' | '/')) {
                    return Err(format!(
                        "{:?} is neither a CPU list (like 0-3,8) nor all, isolated or housekeeping",
                        crate::protocol::cap_text(text)
                    ));
                }
                let list = CpuList::parse(t).map_err(|e| crate::protocol::cap_text(&e.to_string()))?;
                if list.is_empty() {
                    return Err(format!("{t:?} names no CPU"));
                }
                Ok(CpuSelection::List(list))
            }
        }
    }
}

/// The CPU roles of a host, from its facts: isolated (`cpu.isolated`) or housekeeping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuRoles {
    pub online: CpuList,
    pub isolated: CpuList,
}

impl CpuRoles {
    pub fn housekeeping(&self) -> CpuList {
        self.online.difference(&self.isolated)
    }

    pub fn role(&self, cpu: u32) -> Role {
        if self.isolated.contains(cpu) { Role::Isolated } else { Role::Housekeeping }
    }

    /// The CPUs a selection names; an error says why none or which one is not online.
    pub fn select(&self, sel: &CpuSelection) -> Result<CpuList, String> {
        let online = &self.online;
        let cpus = match sel {
            CpuSelection::All => online.clone(),
            CpuSelection::Isolated => self.isolated.intersection(online),
            CpuSelection::Housekeeping => self.housekeeping(),
            CpuSelection::List(l) => {
                let off = l.difference(online);
                if !off.is_empty() {
                    return Err(format!("CPU {off} is not online (online: {online})"));
                }
                l.clone()
            }
        };
        if cpus.is_empty() {
            return Err(match sel {
                CpuSelection::Isolated => "this host has no isolated CPUs (cpu.isolated is empty)".into(),
                CpuSelection::Housekeeping => "this host has no housekeeping CPUs".into(),
                _ => "no online CPU to measure".into(),
            });
        }
        Ok(cpus)
    }
}

/// What a CPU is for, as the facts say at the time of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Isolated,
    Housekeeping,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Isolated => "isolated",
            Role::Housekeeping => "housekeeping",
        }
    }
}

// ---- The cyclictest binary ----

/// The cyclictest that will run: its path and what its `--help` says it supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// Always `cyclictest`.
    pub name: String,
    pub path: PathBuf,
    /// `2.40` from `cyclictest V 2.40`; null when it does not say.
    pub version: Option<String>,
    /// The arguments it was (or would be) run with.
    pub args: Vec<String>,
    #[serde(skip)]
    pub has_mainaffinity: bool,
    #[serde(skip)]
    pub has_default_system: bool,
}

/// The install hint every "not found" message carries.
pub const INSTALL_HINT: &str = "install the rt-tests package (Debian, Ubuntu: apt-get install rt-tests; RHEL, Rocky, Fedora: dnf install rt-tests)";

/// Where cyclictest is: `explicit` when given (an absolute path to an executable file),
/// else the first `cyclictest` on `path_var` (the PATH). `Err((true, msg))` blames the
/// explicit path, `Err((false, msg))` the PATH.
pub fn find_cyclictest(explicit: Option<&str>, path_var: Option<&std::ffi::OsStr>) -> Result<PathBuf, (bool, String)> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if let Some(e) = explicit {
        let p = Path::new(e);
        if !p.is_absolute() {
            return Err((true, format!("{:?} is not an absolute path", crate::protocol::cap_text(e))));
        }
        return match executable(p) {
            Ok(true) => Ok(p.to_path_buf()),
            Ok(false) => Err((true, format!("{e} is not an executable file"))),
            Err(err) => Err((true, format!("{e}: {err}; {INSTALL_HINT}"))),
        };
    }
    let dirs: Vec<PathBuf> = path_var.map(|v| std::env::split_paths(v).collect()).unwrap_or_default();
    for d in &dirs {
        if d.as_os_str().is_empty() || !d.is_absolute() {
            continue; // a relative PATH entry would depend on the working folder
        }
        let p = d.join("cyclictest");
        if executable(&p).unwrap_or(false) {
            return Ok(p);
        }
    }
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err((
        false,
        format!(
            "cyclictest not found on PATH ({}): {INSTALL_HINT}, or give the path of cyclictest",
            if shown.is_empty() { "empty".to_string() } else { crate::protocol::cap_text(&shown.join(":")) }
        ),
    ))
}

/// Asks cyclictest for its `--help` (bounded to 10 s): its version and the options this
/// code uses that older versions lack. Refuses a binary whose help does not name cyclictest.
pub fn probe(path: &Path) -> anyhow::Result<Tool> {
    let out = run_bounded(Command::new(path).arg("--help"), Duration::from_secs(10), 1 << 20)
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", path.display()))?;
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !text.contains("cyclictest") {
        anyhow::bail!("{} does not look like cyclictest: its --help does not name cyclictest", path.display());
    }
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("cyclictest V").or_else(|| l.trim().strip_prefix("cyclictest v")))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() < 32);
    Ok(Tool {
        name: "cyclictest".into(),
        path: path.to_path_buf(),
        version,
        args: Vec::new(),
        has_mainaffinity: text.contains("--mainaffinity"),
        has_default_system: text.contains("--default-system"),
    })
}

/// cyclictest's arguments for one run on `cpus`, the main thread on `main_cpus`.
pub fn cyclictest_args(tool: &Tool, s: &Settings, cpus: &CpuList, main_cpus: &CpuList) -> Vec<String> {
    let mut a: Vec<String> = vec!["-q".into(), "-m".into()];
    if tool.has_default_system {
        a.push("--default-system".into());
    }
    a.extend([
        "-t".to_string(),
        cpus.len().to_string(),
        "-a".to_string(),
        cpus.to_string(),
        "-p".to_string(),
        s.priority.to_string(),
        "-i".to_string(),
        s.interval_us.to_string(),
        "-D".to_string(),
        s.duration_s.to_string(),
        "-h".to_string(),
        s.histogram_us.to_string(),
    ]);
    if tool.has_mainaffinity && !main_cpus.is_empty() {
        a.push(format!("--mainaffinity={main_cpus}"));
    }
    a
}

/// What a bounded child run gave.
#[derive(Debug)]
pub struct Bounded {
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    pub truncated: bool,
    /// Output was still open when reading stopped (a process outside the child's group
    /// kept it open after the child ended); what was read by then is kept.
    pub output_cut: bool,
}

/// After `limit`, SIGINT to the child's group (cyclictest then prints what it has); this long
/// after that, SIGKILL.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(2);
/// After the child ends (or is killed), how long its output is still read: enough for what
/// is in the pipe, not for a process that keeps it open.
pub const DRAIN: Duration = Duration::from_secs(1);

/// Runs a command (no shell, standard input closed) for at most `limit`, reading at most
/// `max_bytes` of each output, and returns within `limit + INTERRUPT_GRACE + DRAIN` (plus a
/// poll tick) whatever the child does:
///
/// - the child leads its own process group; past `limit` the group gets SIGINT, then
///   SIGKILL `INTERRUPT_GRACE` later, so helpers it started die with it;
/// - it gets SIGKILL when this process dies (`PR_SET_PDEATHSIG`, set before exec; the
///   parent is checked after setting it, so a parent that died in between is seen too): a
///   module killed by an Ansible timeout (SIGTERM or SIGKILL) leaves no cyclictest running at
///   SCHED_FIFO. The signal follows the thread that spawned the child: call this from a
///   thread that outlives the run (the modules and the CLI call it from their main thread);
/// - output is read with `poll` against the deadlines, never a blocking read: when the child
///   ends, the rest of its group is killed, and reading stops after `DRAIN` even if
///   something outside the group (a `setsid` grandchild) holds the pipe open.
pub fn run_bounded(cmd: &mut Command, limit: Duration, max_bytes: u64) -> std::io::Result<Bounded> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    // SAFETY: between fork and exec only async-signal-safe calls: prctl, getppid.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody would send the signal.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let group = |sig: libc::c_int| {
        // SAFETY: kill(2) on the child's process group; the child is not reaped before the
        // last call (waitid WNOWAIT below), so its pid, the group's id, is not reused.
        unsafe { libc::kill(-pid, sig) };
    };
    // Owned here until the end: their descriptors are polled and read below.
    let (stdout_pipe, stderr_pipe) = (child.stdout.take(), child.stderr.take());
    let out_fd = stdout_pipe.as_ref().map(|p| p.as_raw_fd()).unwrap_or(-1);
    let err_fd = stderr_pipe.as_ref().map(|p| p.as_raw_fd()).unwrap_or(-1);
    let mut bufs: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut open = [out_fd >= 0, err_fd >= 0];
    let mut truncated = false;
    let start = Instant::now();
    let mut timed_out = false;
    let mut interrupted_at: Option<Instant> = None;
    let mut killed = false;
    let mut ended_at: Option<Instant> = None;
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        // Has the child ended? Asked without reaping it (WNOWAIT): its pid stays its own.
        if ended_at.is_none() {
            // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid on our own child with a valid siginfo_t pointer.
            let r = unsafe {
                libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT)
            };
            // SAFETY: si_pid is set by waitid (0 when no child changed state).
            if r == 0 && unsafe { info.si_pid() } == pid {
                ended_at = Some(Instant::now());
                group(libc::SIGKILL); // helpers it left behind
            }
        }
        let now = Instant::now();
        if ended_at.is_none() && now.duration_since(start) >= limit {
            timed_out = true;
            match interrupted_at {
                None => {
                    interrupted_at = Some(now);
                    group(libc::SIGINT);
                }
                Some(t) if !killed && now.duration_since(t) >= INTERRUPT_GRACE => {
                    killed = true;
                    group(libc::SIGKILL);
                }
                Some(_) => {}
            }
        }
        if !open[0] && !open[1] && ended_at.is_some() {
            break;
        }
        if ended_at.is_some_and(|t| now.duration_since(t) >= DRAIN) {
            break;
        }
        // Wait for output, at most one tick (the deadlines above are checked every tick).
        let mut fds: Vec<libc::pollfd> = [out_fd, err_fd]
            .iter()
            .zip(open)
            .filter(|(_, o)| *o)
            .map(|(&fd, _)| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        if fds.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        // SAFETY: fds is a live array of fds.len() pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            group(libc::SIGKILL);
            let _ = child.wait();
            return Err(e);
        }
        for p in fds.iter().filter(|p| p.revents != 0) {
            let i = if p.fd == out_fd { 0 } else { 1 };
            // SAFETY: reads into a live buffer of chunk.len() bytes; poll said it won't block.
            let got = unsafe { libc::read(p.fd, chunk.as_mut_ptr().cast(), chunk.len()) };
            if got < 0 {
                let e = std::io::Error::last_os_error();
                if matches!(e.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock) {
                    continue;
                }
                open[i] = false;
            } else if got == 0 {
                open[i] = false;
            } else {
                let room = (max_bytes as usize).saturating_sub(bufs[i].len());
                let got = got as usize;
                bufs[i].extend_from_slice(&chunk[..got.min(room)]);
                if got > room {
                    // Keep draining (and dropping) so the child never blocks on a full pipe.
                    truncated |= i == 0;
                }
            }
        }
    }
    let output_cut = open[0] || open[1];
    drop((stdout_pipe, stderr_pipe));
    if ended_at.is_none() {
        group(libc::SIGKILL);
    }
    let status = child.wait().ok();
    let [stdout, stderr] = bufs;
    Ok(Bounded { status, stdout, stderr, timed_out, truncated, output_cut })
}

// ---- Parsing cyclictest's histogram ----

/// One measurement thread's histogram and cyclictest's own summary of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadHistogram {
    /// `buckets[i]`: wake-ups late by i µs (whole microseconds).
    pub buckets: Vec<u64>,
    /// `# Total:` (the samples inside the histogram; overflows are not in it).
    pub total: Option<u64>,
    pub min_us: Option<u64>,
    pub avg_us: Option<u64>,
    pub max_us: Option<u64>,
    /// `# Histogram Overflows:` (samples at or past the histogram's end).
    pub overflows: Option<u64>,
}

/// Why cyclictest's output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse cyclictest output{}: {reason}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
pub struct ParseError {
    pub line: Option<usize>,
    pub reason: String,
}

/// The summary lines read, after their `#`.
const SUMMARY_LABELS: [&str; 5] =
    ["Total:", "Min Latencies:", "Avg Latencies:", "Max Latencies:", "Histogram Overflows:"];

fn numbers(text: &str) -> Option<Vec<u64>> {
    text.split_whitespace().map(|w| w.parse::<u64>().ok()).collect()
}

/// Parses the histogram cyclictest writes with `-h` (on standard output, or in the file of
/// `--histfile`): rows `BUCKET COUNT...` (one count per thread, buckets from 0 up), then `# Total:`, `# Min Latencies:`, `# Avg Latencies:`,
/// `# Max Latencies:` and `# Histogram Overflows:` lines with one number per thread. Other
/// comment lines, the `T:` and `policy:` lines of a non-quiet run and blank lines are
/// skipped; anything else is an error naming the line.
pub fn parse_histogram(text: &str) -> Result<Vec<ThreadHistogram>, ParseError> {
    let perr = |line: Option<usize>, reason: String| ParseError { line, reason };
    let mut rows: Vec<(usize, Vec<u64>)> = Vec::new();
    // (label, line number, one number per thread)
    let mut summary: Vec<(&'static str, usize, Vec<u64>)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with("T:") || line.starts_with("policy:") {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let c = c.trim();
            for label in SUMMARY_LABELS {
                if let Some(rest) = c.strip_prefix(label) {
                    let v = numbers(rest).ok_or_else(|| {
                        perr(Some(n), format!("{label} is not followed by numbers only: {:?}", cap(raw)))
                    })?;
                    summary.push((label, n, v));
                }
            }
            continue;
        }
        let v = numbers(line).ok_or_else(|| perr(Some(n), format!("not a histogram row: {:?}", cap(raw))))?;
        if v.len() < 2 {
            return Err(perr(Some(n), format!("a histogram row needs a bucket and a count: {:?}", cap(raw))));
        }
        rows.push((n, v));
    }
    // Threads: from the first row; every row and summary line must agree.
    let Some(first) = rows.first() else {
        return Err(perr(
            None,
            if summary.is_empty() {
                "no histogram rows and no summary lines (was cyclictest run with -h?)".into()
            } else {
                "no histogram rows (was cyclictest run with -h?)".into()
            },
        ));
    };
    let threads = first.1.len() - 1;
    for (key, n, v) in &summary {
        if v.len() != threads {
            return Err(perr(Some(*n), format!("{key} {} numbers for {threads} threads", v.len())));
        }
    }
    let mut out = vec![ThreadHistogram::default(); threads];
    for (expect_bucket, (n, v)) in rows.iter().enumerate() {
        if v.len() != threads + 1 {
            return Err(perr(Some(*n), format!("{} counts in a histogram row, {threads} threads", v.len() - 1)));
        }
        if v[0] != expect_bucket as u64 {
            return Err(perr(Some(*n), format!("bucket {} where bucket {expect_bucket} was due", v[0])));
        }
        for (t, h) in out.iter_mut().enumerate() {
            h.buckets.push(v[t + 1]);
        }
    }
    for (label, _, v) in &summary {
        for (t, h) in out.iter_mut().enumerate() {
            let x = Some(v[t]);
            match *label {
                "Total:" => h.total = x,
                "Min Latencies:" => h.min_us = x,
                "Avg Latencies:" => h.avg_us = x,
                "Max Latencies:" => h.max_us = x,
                _ => h.overflows = x,
            }
        }
    }
    for (t, h) in out.iter().enumerate() {
        let sum: u64 = h.buckets.iter().sum();
        if let Some(total) = h.total {
            if total != sum {
                return Err(perr(None, format!("thread {t}: # Total: {total} but its histogram rows add up to {sum}")));
            }
        }
    }
    Ok(out)
}

fn cap(s: &str) -> String {
    crate::protocol::cap_text(s)
}

// ---- Statistics ----

/// A percentile's field name as people write it: `p99_99` → `p99.99`.
pub fn pretty(name: &str) -> String {
    name.replacen("p99_", "p99.", 1)
}

/// The percentiles reported, as (field name, parts per million).
pub const PERCENTILES: &[(&str, u64)] = &[("p50", 500_000), ("p99", 990_000), ("p99_9", 999_000), ("p99_99", 999_900)];

/// Nearest-rank percentile over a histogram with `overflows` samples past its end: the
/// smallest bucket at which the running count reaches `ceil(ppm/1e6 * n)`. `None` without
/// samples; `(buckets.len(), true)` when the rank lies among the overflows (a lower bound).
pub fn percentile(buckets: &[u64], overflows: u64, ppm: u64) -> Option<(u64, bool)> {
    let n: u128 = buckets.iter().map(|&c| c as u128).sum::<u128>() + overflows as u128;
    if n == 0 {
        return None;
    }
    let rank = (ppm as u128 * n).div_ceil(1_000_000).max(1);
    let mut cum: u128 = 0;
    for (i, &c) in buckets.iter().enumerate() {
        cum += c as u128;
        if cum >= rank {
            return Some((i as u64, false));
        }
    }
    Some((buckets.len() as u64, true))
}

/// One CPU's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuStats {
    pub cpu: u32,
    pub role: Role,
    /// Wake-ups measured, overflows included.
    pub samples: u64,
    pub min_us: Option<u64>,
    pub avg_us: Option<u64>,
    pub max_us: Option<u64>,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub p99_9_us: Option<u64>,
    pub p99_99_us: Option<u64>,
    /// Wake-ups at or past `histogram_us`.
    pub overflows: u64,
    /// Percentiles (`p99`, `p99_99`, ...) that lie among the overflows: their value is
    /// `histogram_us`, a lower bound.
    pub beyond_histogram: Vec<String>,
    /// The non-empty buckets, `[latency_us, count]`, ascending.
    pub histogram: Vec<[u64; 2]>,
}

impl CpuStats {
    /// Statistics of one thread's histogram. cyclictest's own min/avg/max are kept (they
    /// are exact, overflows included); without them min and max come from the histogram.
    pub fn from_histogram(cpu: u32, role: Role, h: &ThreadHistogram) -> CpuStats {
        let overflows = h.overflows.unwrap_or(0);
        let in_hist: u64 = h.buckets.iter().sum();
        let mut s = CpuStats {
            cpu,
            role,
            samples: in_hist + overflows,
            min_us: h.min_us.or_else(|| h.buckets.iter().position(|&c| c > 0).map(|i| i as u64)),
            avg_us: h.avg_us,
            max_us: h.max_us.or_else(|| {
                if overflows > 0 { None } else { h.buckets.iter().rposition(|&c| c > 0).map(|i| i as u64) }
            }),
            p50_us: None,
            p99_us: None,
            p99_9_us: None,
            p99_99_us: None,
            overflows,
            beyond_histogram: Vec::new(),
            histogram: h.buckets.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| [i as u64, *c]).collect(),
        };
        if s.samples == 0 {
            s.min_us = None;
            s.avg_us = None;
            s.max_us = None;
        }
        for (name, ppm) in PERCENTILES {
            let p = percentile(&h.buckets, overflows, *ppm);
            if let Some((_, true)) = p {
                s.beyond_histogram.push(name.to_string());
            }
            let v = p.map(|x| x.0);
            match *name {
                "p50" => s.p50_us = v,
                "p99" => s.p99_us = v,
                "p99_9" => s.p99_9_us = v,
                _ => s.p99_99_us = v,
            }
        }
        s
    }

    /// The histogram back as dense buckets of `len` (sparse entries past `len` are dropped).
    pub fn dense(&self, len: usize) -> Vec<u64> {
        let mut v = vec![0u64; len];
        for [us, c] in &self.histogram {
            if let Some(slot) = v.get_mut(*us as usize) {
                *slot += c;
            }
        }
        v
    }
}

/// The worst of a group of CPUs (one role): what a fleet report shows per host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub cpus: CpuList,
    pub samples: u64,
    /// The highest `max_us` of the group.
    pub max_us: Option<u64>,
    /// The highest `p99_us` of the group.
    pub p99_us: Option<u64>,
    /// The highest `p99_99_us` of the group.
    pub p99_99_us: Option<u64>,
    pub overflows: u64,
    /// Percentiles that lie past the histogram on some CPU of the group: where that CPU is
    /// the worst, the value above is a lower bound.
    #[serde(default)]
    pub beyond_histogram: Vec<String>,
}

impl GroupSummary {
    pub fn of<'a>(stats: impl IntoIterator<Item = &'a CpuStats>) -> Option<GroupSummary> {
        let v: Vec<&CpuStats> = stats.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        Some(GroupSummary {
            cpus: v.iter().map(|s| s.cpu).collect(),
            samples: v.iter().map(|s| s.samples).sum(),
            max_us: v.iter().filter_map(|s| s.max_us).max(),
            p99_us: v.iter().filter_map(|s| s.p99_us).max(),
            p99_99_us: v.iter().filter_map(|s| s.p99_99_us).max(),
            overflows: v.iter().map(|s| s.overflows).sum(),
            beyond_histogram: PERCENTILES
                .iter()
                .map(|p| p.0.to_string())
                .filter(|p| v.iter().any(|s| s.beyond_histogram.contains(p)))
                .collect(),
        })
    }
}

/// The CPU sets of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSets {
    /// The CPUs measured.
    pub measured: CpuList,
    /// The host's isolated CPUs at the time (`cpu.isolated` of the facts).
    pub isolated: CpuList,
    /// The host's other online CPUs.
    pub housekeeping: CpuList,
}

/// Worst values per role (null for a role with no CPU measured).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub isolated: Option<GroupSummary>,
    pub housekeeping: Option<GroupSummary>,
}

/// One run, self-describing: what `lltune_latency` returns and `lltune validate --save`
/// writes (docs/latency.md). Extra keys (a module result's `changed`, `invocation`, ...) are
/// ignored when it is read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyDoc {
    /// Always `lltune.latency`.
    pub kind: String,
    pub schema_version: u32,
    pub lltune_version: String,
    /// Host name (`/proc/sys/kernel/hostname`).
    pub host: String,
    /// Kernel release.
    pub kernel: Option<String>,
    /// UTC, `YYYYMMDDTHHMMSSZ`, when the run started.
    pub measured_at: String,
    /// False when nothing was measured (check mode, a root that is not `/`).
    pub measured: bool,
    /// Why nothing was measured; null when `measured`.
    pub skipped_reason: Option<String>,
    /// The cyclictest used; null when it was not looked up.
    pub tool: Option<Tool>,
    pub settings: Settings,
    pub cpus: CpuSets,
    pub summary: Summary,
    /// One entry per measured CPU, ascending; empty when not `measured`.
    pub per_cpu: Vec<CpuStats>,
    /// What else happened on the host during the run (interrupts on the measured CPUs, NIC
    /// drops, the clock's offset); null when not `measured` (and in results written before it).
    #[serde(default)]
    pub noise: Option<noise::Noise>,
}

impl LatencyDoc {
    /// A document without measurements yet (`measured: false`).
    pub fn new(host: String, kernel: Option<String>, measured_at: String, settings: Settings, cpus: CpuSets) -> Self {
        LatencyDoc {
            kind: KIND.into(),
            schema_version: SCHEMA_VERSION,
            lltune_version: env!("CARGO_PKG_VERSION").into(),
            host,
            kernel,
            measured_at,
            measured: false,
            skipped_reason: None,
            tool: None,
            settings,
            cpus,
            summary: Summary { isolated: None, housekeeping: None },
            per_cpu: Vec::new(),
            noise: None,
        }
    }

    /// Fills `per_cpu` and `summary` from parsed threads (thread i ran on the i-th CPU of
    /// `cpus.measured`).
    pub fn fill(&mut self, threads: &[ThreadHistogram], roles: &CpuRoles) -> Result<(), ParseError> {
        let cpus: Vec<u32> = self.cpus.measured.iter().collect();
        if threads.len() != cpus.len() {
            return Err(ParseError {
                line: None,
                reason: format!("{} threads in the output, {} CPUs measured", threads.len(), cpus.len()),
            });
        }
        self.per_cpu = cpus.iter().zip(threads).map(|(&c, h)| CpuStats::from_histogram(c, roles.role(c), h)).collect();
        self.summary = Summary {
            isolated: GroupSummary::of(self.per_cpu.iter().filter(|s| s.role == Role::Isolated)),
            housekeeping: GroupSummary::of(self.per_cpu.iter().filter(|s| s.role == Role::Housekeeping)),
        };
        self.measured = true;
        self.skipped_reason = None;
        Ok(())
    }

    /// Reads a document back (what `--save` wrote, or a saved module result), checking its
    /// kind and schema version. `what` names the file in messages.
    pub fn read(text: &str, what: &str) -> anyhow::Result<LatencyDoc> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{what}: not JSON: {e}"))?;
        let kind = v.get("kind").and_then(|k| k.as_str());
        if kind != Some(KIND) {
            anyhow::bail!("{what}: not a lltune latency result (kind is {kind:?}, expected {KIND:?})");
        }
        let version = v.get("schema_version").and_then(|k| k.as_u64());
        if version != Some(SCHEMA_VERSION as u64) {
            anyhow::bail!("{what}: schema_version {version:?}; this lltune reads {SCHEMA_VERSION}");
        }
        serde_path_to_error::deserialize(v).map_err(|e| anyhow::anyhow!("{what}: field {}: {}", e.path(), e.inner()))
    }

    /// Warnings a person should read with the numbers: percentiles past the histogram, CPUs
    /// without samples.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for c in self.noise.iter().flat_map(|n| &n.interrupts) {
            if c.role == Role::Isolated && c.device > 0 {
                let first = c.top.iter().find(|s| s.source.bytes().all(|b| b.is_ascii_digit()));
                w.push(format!(
                    "CPU {} (isolated): {} device interrupt(s) during the run{}",
                    c.cpu,
                    c.device,
                    first
                        .map(|s| format!(", most from IRQ {} ({}): {}", s.source, s.name, s.count))
                        .unwrap_or_default()
                ));
            }
        }
        for d in self.noise.iter().flat_map(|n| &n.nic_drops) {
            w.push(format!("{} {}: {} during the run", d.interface, d.counter, d.count));
        }
        for s in &self.per_cpu {
            if s.samples == 0 {
                w.push(format!("CPU {}: no samples (the run was too short for one interval?)", s.cpu));
            } else if !s.beyond_histogram.is_empty() {
                w.push(format!(
                    "CPU {}: {} of {} wake-ups ({:.3}%) were later than the histogram's {} µs; {} {} only a lower bound: raise histogram_us",
                    s.cpu,
                    s.overflows,
                    s.samples,
                    s.overflows as f64 * 100.0 / s.samples as f64,
                    self.settings.histogram_us,
                    s.beyond_histogram.iter().map(|p| pretty(p)).collect::<Vec<_>>().join(", "),
                    if s.beyond_histogram.len() == 1 { "is" } else { "are" }
                ));
            }
        }
        w
    }
}

/// Runs cyclictest on `doc.cpus.measured` and fills `doc`. `tool` comes from `probe`.
/// Returns warnings about the run itself.
pub fn measure(doc: &mut LatencyDoc, mut tool: Tool, roles: &CpuRoles) -> anyhow::Result<Vec<String>> {
    let main_cpus = roles.housekeeping();
    let args = cyclictest_args(&tool, &doc.settings, &doc.cpus.measured, &main_cpus);
    tool.args = args.clone();
    doc.tool = Some(tool.clone());
    let limit = Duration::from_secs(doc.settings.duration_s + GRACE_S);
    let out = run_bounded(Command::new(&tool.path).args(&args), limit, MAX_OUTPUT_BYTES)
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", tool.path.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr_tail = cap(stderr.trim());
    if out.truncated {
        anyhow::bail!("cyclictest wrote more than {MAX_OUTPUT_BYTES} bytes; refused");
    }
    let ok = out.status.map(|s| s.success()).unwrap_or(false);
    if !ok {
        let why = match out.status {
            Some(s) => match s.code() {
                Some(c) => format!("exit code {c}"),
                None => format!("{s}"),
            },
            None => "no exit status".into(),
        };
        // SAFETY: geteuid has no preconditions.
        let hint =
            if unsafe { libc::geteuid() } != 0 { "; cyclictest needs root (SCHED_FIFO and locked memory)" } else { "" };
        anyhow::bail!(
            "cyclictest failed ({why}{}){hint}: {}",
            if out.timed_out { ", stopped after the time limit" } else { "" },
            if stderr_tail.is_empty() { "no message".to_string() } else { stderr_tail }
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let threads = parse_histogram(&text).map_err(|e| {
        anyhow::anyhow!(
            "{e}{}",
            if stderr_tail.is_empty() { String::new() } else { format!("; stderr: {stderr_tail}") }
        )
    })?;
    doc.fill(&threads, roles)?;
    let mut warnings = Vec::new();
    if out.output_cut {
        warnings.push(format!(
            "another process kept cyclictest's output open after it ended; reading stopped {} s later",
            DRAIN.as_secs()
        ));
    }
    if out.timed_out {
        warnings.push(format!(
            "cyclictest did not stop by itself within {GRACE_S} s after the {} s duration and was interrupted; its results are kept",
            doc.settings.duration_s
        ));
    }
    Ok(warnings)
}

/// One request to measure (or, with `run: false`, to plan without measuring).
#[derive(Debug, Clone)]
pub struct Request {
    pub settings: Settings,
    pub cpus: CpuSelection,
    /// An explicit cyclictest path; else the PATH is searched.
    pub cyclictest: Option<String>,
    /// False: look everything up and report the arguments, but do not measure.
    pub run: bool,
    /// Why nothing is measured when `run` is false.
    pub skip_reason: String,
    /// UTC stamp of the run.
    pub measured_at: String,
}

/// A failed request: the option to blame (module spelling), when one is to blame.
#[derive(Debug)]
pub struct RunError {
    pub option: Option<&'static str>,
    pub msg: String,
}

impl RunError {
    fn option(option: &'static str, msg: impl Into<String>) -> RunError {
        RunError { option: Some(option), msg: msg.into() }
    }
    fn other(msg: impl Into<String>) -> RunError {
        RunError { option: None, msg: msg.into() }
    }
}

/// The folders searched for cyclictest in a tree (no PATH of that host is known).
const TREE_PATH: &[&str] = &["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// On a tree root: the cyclictest that a run on that host would use must be there, inside
/// the tree (nothing outside `root` is read): a regular file with an execute bit. An
/// explicit `cyclictest` that is not is a failure naming the option; without one, the
/// standard folders are searched and a miss is a warning (nothing is measured on a tree).
fn check_tree_cyclictest(host: &crate::host::Host, explicit: Option<&str>) -> Result<Vec<String>, RunError> {
    use crate::protocol::cap_text;
    let root = host.root().display().to_string();
    let Some(e) = explicit else {
        let found = TREE_PATH
            .iter()
            .any(|d| matches!(host.file_meta(&format!("{d}/cyclictest")), Ok(Some(m)) if m.mode & 0o111 != 0));
        return Ok(if found {
            Vec::new()
        } else {
            vec![format!(
                "cyclictest is not in {} under root {root}: a measurement on this host would fail; {INSTALL_HINT}",
                TREE_PATH.join(", ")
            )]
        });
    };
    if !e.starts_with('/') {
        return Err(RunError::option("cyclictest", format!("{:?} is not an absolute path", cap_text(e))));
    }
    match host.file_meta(e) {
        Ok(Some(m)) if m.mode & 0o111 != 0 => Ok(Vec::new()),
        Ok(Some(_)) => {
            Err(RunError::option("cyclictest", format!("{} under root {root} is not executable", cap_text(e))))
        }
        Ok(None) => Err(RunError::option(
            "cyclictest",
            format!("{} does not exist under root {root}; {INSTALL_HINT}", cap_text(e)),
        )),
        Err(err) => Err(RunError::option("cyclictest", format!("{} under root {root}: {err}", cap_text(e)))),
    }
}

/// Checks a request against the host (CPU roles from its facts), finds cyclictest and, when
/// `run` is set and `host` is the live host, measures. A root other than `/` is never
/// measured: cyclictest measures the running kernel, not a captured tree. Returns the
/// document and warnings.
pub fn run_request(host: &crate::host::Host, req: &Request) -> Result<(LatencyDoc, Vec<String>), RunError> {
    req.settings.check().map_err(|e| RunError::option(e.option, e.msg))?;
    let mut scan = crate::facts::Scan::new(host, crate::facts::ScanOptions::default());
    let info = crate::facts::host_info::read(&mut scan);
    let cpu = crate::facts::cpu::read(&mut scan);
    if cpu.online.is_empty() {
        return Err(RunError::other(format!(
            "cannot tell the online CPUs of this host: {}",
            scan.warnings().join("; ")
        )));
    }
    // /sys/devices/system/cpu/isolated is on every kernel that runs cyclictest's -a; a host
    // without it is taken as isolating nothing at run time.
    let isolated = cpu.isolated.clone().unwrap_or_default();
    let roles = CpuRoles { isolated: isolated.intersection(&cpu.online), online: cpu.online };
    let measured = roles.select(&req.cpus).map_err(|e| RunError::option("cpus", e))?;
    let sets = CpuSets { measured, isolated: roles.isolated.clone(), housekeeping: roles.housekeeping() };
    let mut doc = LatencyDoc::new(
        info.hostname.unwrap_or_else(|| "unknown".into()),
        info.kernel_release,
        req.measured_at.clone(),
        req.settings,
        sets,
    );
    let mut warnings = Vec::new();
    // cyclictest measures the running kernel: a tree has none to measure.
    if host.system().can_act().is_err() {
        warnings.extend(check_tree_cyclictest(host, req.cyclictest.as_deref())?);
        doc.skipped_reason = Some(format!(
            "root is {}, not /: cyclictest measures the running kernel, not a captured tree",
            host.root().display()
        ));
        return Ok((doc, warnings));
    }
    let path = find_cyclictest(req.cyclictest.as_deref(), std::env::var_os("PATH").as_deref())
        .map_err(|(explicit, msg)| if explicit { RunError::option("cyclictest", msg) } else { RunError::other(msg) })?;
    let mut tool = probe(&path).map_err(|e| {
        if req.cyclictest.is_some() {
            RunError::option("cyclictest", e.to_string())
        } else {
            RunError::other(e.to_string())
        }
    })?;
    if !tool.has_default_system {
        warnings.push(format!(
            "{} has no --default-system: it holds /dev/cpu_dma_latency at 0 while it measures, which hides C-state exit latency",
            path.display()
        ));
    }
    if !req.run {
        tool.args = cyclictest_args(&tool, &doc.settings, &doc.cpus.measured, &roles.housekeeping());
        doc.tool = Some(tool);
        doc.skipped_reason = Some(req.skip_reason.clone());
        return Ok((doc, warnings));
    }
    let mut unavailable = Vec::new();
    let offsets_before = noise::time_offsets("before", &mut unavailable);
    let before = noise::sample(host);
    warnings.extend(measure(&mut doc, tool, &roles).map_err(|e| RunError::other(format!("{e:#}")))?);
    let after = noise::sample(host);
    let mut n = noise::between(&before, &after, &doc.cpus.measured, &roles);
    n.time_offsets = offsets_before;
    n.time_offsets.extend(noise::time_offsets("after", &mut unavailable));
    n.unavailable.extend(unavailable);
    doc.noise = Some(n);
    warnings.extend(doc.warnings());
    Ok((doc, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `pid` is a process that has not ended (a zombie has ended).
    fn running(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => false,
        }
    }

    fn first_pid(out: &[u8]) -> i32 {
        String::from_utf8_lossy(out).lines().next().and_then(|l| l.trim().parse().ok()).expect("a pid on stdout")
    }

    // See: issue 17 (a helper that kept stdout open made the run wait far past its bound).
    // The children here are sh and sleep standing in for a misbehaving cyclictest.
    #[test]
    fn a_grandchild_holding_stdout_is_killed_with_the_group() {
        let t = Instant::now();
        let out = run_bounded(
            Command::new("sh").args(["-c", "sleep 300 & echo $!; exit 0"]),
            Duration::from_secs(20),
            1 << 20,
        )
        .unwrap();
        assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
        assert!(out.status.unwrap().success() && !out.timed_out);
        let helper = first_pid(&out.stdout);
        std::thread::sleep(Duration::from_millis(200));
        assert!(!running(helper), "the helper {helper} outlived the run");
    }

    #[test]
    fn a_child_that_ignores_sigint_is_killed_at_the_hard_deadline() {
        let t = Instant::now();
        let out = run_bounded(
            Command::new("sh").args(["-c", "trap '' INT; echo started; while :; do sleep 0.1; done"]),
            Duration::from_secs(1),
            1 << 20,
        )
        .unwrap();
        let took = t.elapsed();
        let bound = Duration::from_secs(1) + INTERRUPT_GRACE + DRAIN + Duration::from_millis(500);
        assert!(took >= Duration::from_secs(1) + INTERRUPT_GRACE && took < bound, "took {took:?}");
        assert!(out.timed_out);
        assert_eq!(out.stdout, b"started\n");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.unwrap().signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn output_held_open_outside_the_group_stops_the_reading_not_the_run() {
        let t = Instant::now();
        // setsid: the helper leaves the child's process group, so the group kill misses it.
        let out = run_bounded(
            Command::new("sh").args(["-c", "setsid sh -c 'echo $$; exec sleep 300' & sleep 0.5; exit 0"]),
            Duration::from_secs(20),
            1 << 20,
        )
        .unwrap();
        let took = t.elapsed();
        let helper = first_pid(&out.stdout);
        // SAFETY: kill(2) on the helper this test started.
        unsafe { libc::kill(helper, libc::SIGKILL) };
        assert!(took < Duration::from_millis(500) + DRAIN + Duration::from_secs(1), "took {took:?}");
        assert!(out.output_cut && out.status.unwrap().success(), "{out:?}");
    }

    #[test]
    fn percentiles_by_hand() {
        // 100 samples: 5 at 1 µs, 90 at 2, 4 at 3, 1 at 5.
        let b = [0, 5, 90, 4, 0, 1];
        assert_eq!(percentile(&b, 0, 500_000), Some((2, false)));
        assert_eq!(percentile(&b, 0, 990_000), Some((3, false)));
        assert_eq!(percentile(&b, 0, 999_900), Some((5, false)));
        assert_eq!(percentile(&b, 0, 50_000), Some((1, false)));
        assert_eq!(percentile(&b, 0, 60_000), Some((2, false)));
        // 9 990 at 10 µs and 10 past a 20 µs histogram: p99 is 10, p99.99 beyond.
        let mut b = vec![0u64; 20];
        b[10] = 9990;
        assert_eq!(percentile(&b, 10, 990_000), Some((10, false)));
        assert_eq!(percentile(&b, 10, 999_000), Some((10, false)));
        assert_eq!(percentile(&b, 10, 999_900), Some((20, true)));
        assert_eq!(percentile(&[0, 0], 0, 990_000), None);
    }

    #[test]
    fn parser_refuses_what_it_cannot_read() {
        let e = parse_histogram("000000 000001\t000002\nhello world\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().contains("not a histogram row"), "{e}");
        assert!(parse_histogram("").unwrap_err().to_string().contains("-h"));
        let e = parse_histogram("000000 1 2\n000002 1 2\n").unwrap_err();
        assert!(e.to_string().contains("bucket 2 where bucket 1 was due"), "{e}");
        let e = parse_histogram("000000 1 2\n# Total: 1\n").unwrap_err();
        assert!(e.to_string().contains("at line 2: Total: 1 numbers for 2 threads"), "{e}");
        let e = parse_histogram("000000 1 2\n# Total: 000000001 000000003\n").unwrap_err();
        assert!(e.to_string().contains("add up to 2"), "{e}");
    }

    #[test]
    fn selection_and_bounds() {
        let roles = CpuRoles { online: CpuList::parse("0-3").unwrap(), isolated: CpuList::parse("2-3").unwrap() };
        assert_eq!(roles.select(&CpuSelection::parse("isolated").unwrap()).unwrap().to_string(), "2-3");
        assert_eq!(roles.select(&CpuSelection::parse("housekeeping").unwrap()).unwrap().to_string(), "0-1");
        assert_eq!(roles.select(&CpuSelection::parse("all").unwrap()).unwrap().to_string(), "0-3");
        // See: issue 17 (an empty selection meant every CPU, isolated ones included).
        for empty in ["", " ", "\n"] {
            assert!(CpuSelection::parse(empty).unwrap_err().starts_with("names no CPU"), "{empty:?}");
        }
        assert_eq!(roles.select(&CpuSelection::parse("1,3").unwrap()).unwrap().to_string(), "1,3");
        assert!(roles.select(&CpuSelection::parse("4-5").unwrap()).unwrap_err().contains("CPU 4-5 is not online"));
        assert!(CpuSelection::parse("0-1; rm").is_err());
        assert!(CpuSelection::parse("3-1").is_err());
        let s = Settings { duration_s: MAX_DURATION_S + 1, ..Settings::default() };
        assert_eq!(s.check().unwrap_err().option, "duration");
        assert!(Settings::default().check().is_ok());
    }
}
