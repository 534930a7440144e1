//! The seam between a live host and a captured tree: everything that differs between the
//! two apart from where files are (ethtool ioctls, systemd's run-time state, commands such
//! as `update-grub` or `swapoff`, whose kernel `/proc` and `/sys` describe), behind one
//! interface with two implementations, `Live` (root `/`) and `Tree` (any other root).
//! `Host::new` chooses one, once; every module acts through `Host::system()` and never asks
//! which one it got.
//!
//! Two questions are answered here and nowhere else. `kernel()` says what the files under
//! `/proc` and `/sys` are (the running kernel's, or a capture's snapshot): code that reads or
//! writes them asks it about the kind of data it holds. `can_act()` says whether this host
//! is the running system that can be acted on beyond its files (programs run on it and
//! measure it, lltune installs itself on it, changing it takes root): code that would do so
//! asks it, or acts through the methods below, which a tree refuses.
//!
//! The tree implementation never touches the running system: it plans no command, starts
//! no unit and sets no ethtool state, and refuses if asked to (an action planned on one
//! host and carried out on another still cannot act on the controller). Thread operations
//! (the affinity and scheduling policy of running tasks, `lltune_threads`) are here too:
//! live they act on the thread, on a tree they are refused like the others.

use std::fmt;

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use super::HostError;
use crate::cpulist::CpuList;
use crate::sys::ethtool::{self, EthtoolError, Feature, Snapshot};
use crate::sys::ethtool_group::{self, Group};
use crate::sys::sched::{self, Policy};

/// Whose kernel the files under `/proc` and `/sys` of a root are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// The running kernel's (root `/`): a value written acts at once and is read back from
    /// the kernel, `/proc/cmdline` is what this boot was given, cyclictest measures it.
    Running,
    /// A capture's plain files: a snapshot; a write replaces the file atomically (a temp file
    /// beside it, like any file), nothing boots or runs.
    Captured,
}

/// Where a network interface's ethtool state is read and set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EthtoolStore {
    /// The running kernel's, by SIOCETHTOOL (`System::ethtool_read`, `ethtool_write`).
    Kernel,
    /// The JSON file `lltune capture` stored for the interface (one per interface, under
    /// `facts::nic::ETHTOOL_CAPTURE_DIR`), read and written as a file of the tree.
    Capture,
}

/// Why something that acts on the running system is not done on this host (a tree): the
/// words a warning or a skip note gives ("root is not /").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRunning;

impl fmt::Display for NotRunning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("root is not /")
    }
}

impl std::error::Error for NotRunning {}

/// What differs between a live host and a captured tree. See the module documentation.
pub trait System: fmt::Debug + Send + Sync {
    /// Whose kernel `/proc` and `/sys` describe.
    fn kernel(&self) -> Kernel;

    /// `Ok` when this host is the running system, which can be acted on beyond its files
    /// (a program run, lltune installed, root needed to change it); `Err(NotRunning)` on a
    /// tree, with the words a skip note gives.
    fn can_act(&self) -> Result<(), NotRunning>;

    /// How generated text names where the facts came from: `live`, or the tree's root.
    fn source(&self, root: &std::path::Path) -> String;

    /// The machine's architecture (`uname -m`) when the host can be asked; `None` on a tree
    /// (the caller infers it from the captured files).
    fn architecture(&self) -> Option<String>;

    /// Where ethtool state is read and set.
    fn ethtool_store(&self) -> EthtoolStore;

    /// One ethtool group of an interface, as uapi JSON (SIOCETHTOOL).
    fn ethtool_read(&self, ifname: &str, group: Group) -> Result<Value, EthtoolError>;

    /// Every feature of an interface, with its state (ETHTOOL_GFEATURES).
    fn ethtool_features(&self, ifname: &str) -> Result<Vec<Feature>, EthtoolError>;

    /// Every get discovery sends about an interface (driver, link, timestamping, features,
    /// coalescing, rings, pause, channels).
    fn ethtool_snapshot(&self, ifname: &str) -> Snapshot;

    /// Sets fields of one ethtool group and reads them back.
    fn ethtool_write(&self, ifname: &str, group: Group, changes: &Map<String, Value>) -> Result<()>;

    /// `systemctl is-active <unit>` (`active`, `activating`, `reloading` count as active);
    /// `Err(NotRunning)` where there are no running units to ask about.
    fn unit_active(&self, unit: &str) -> Result<Result<bool, HostError>, NotRunning>;

    /// `systemctl start|stop <unit>`.
    fn set_unit_active(&self, unit: &str, active: bool) -> Result<()>;

    /// A command a plan wants run on the host (`grub2-mkconfig -o ...`, `swapoff -a`,
    /// `systemctl daemon-reload`): `Ok` with it when it will be run, `Err` when this host
    /// does not run commands (the plan then says it skipped it, and why).
    fn plan_command(&self, argv: Vec<String>) -> Result<Vec<String>, NotRunning>;

    /// Runs a planned command and fails with its exit status and error output.
    fn run(&self, argv: &[String]) -> Result<()>;

    /// `sched_setaffinity` on running thread `tid`: `Err(NotRunning)` on a tree, `Ok(Err)`
    /// with the kernel's errno when it refused (ESRCH: the thread is gone).
    fn set_thread_affinity(&self, tid: u32, cpus: &CpuList) -> Result<Result<(), nix::errno::Errno>, NotRunning>;

    /// `sched_setscheduler` on running thread `tid`, as `set_thread_affinity`.
    fn set_thread_scheduler(
        &self,
        tid: u32,
        policy: Policy,
        priority: u32,
    ) -> Result<Result<(), nix::errno::Errno>, NotRunning>;
}

/// The running system under root `/`.
#[derive(Debug, Clone, Copy)]
pub struct Live;

/// A captured tree (any root but `/`): files only.
#[derive(Debug, Clone, Copy)]
pub struct Tree;

/// The seam of one host, as `Host::system` gives it: `Live` or `Tree`, chosen once in
/// `Host::new`. Each method is `System`'s, dispatched by a `match` rather than through a trait
/// object: a trait object's table of methods links every method of both implementations into
/// every binary (the ethtool writes, `systemctl`, running commands: about 40 KB of code in a
/// module that only reads), where a `match` links only the methods a binary calls.
#[derive(Debug, Clone, Copy)]
pub enum Seam {
    Live(Live),
    Tree(Tree),
}

/// `Seam`'s methods: each `System` method of the same name, on the implementation chosen.
macro_rules! seam_methods {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        impl Seam {
            $(
                pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Seam::Live(s) => s.$name($($arg),*),
                        Seam::Tree(s) => s.$name($($arg),*),
                    }
                }
            )*
        }
    };
}

seam_methods! {
    fn kernel(&self) -> Kernel;
    fn can_act(&self) -> Result<(), NotRunning>;
    fn source(&self, root: &std::path::Path) -> String;
    fn architecture(&self) -> Option<String>;
    fn ethtool_store(&self) -> EthtoolStore;
    fn ethtool_read(&self, ifname: &str, group: Group) -> Result<Value, EthtoolError>;
    fn ethtool_features(&self, ifname: &str) -> Result<Vec<Feature>, EthtoolError>;
    fn ethtool_snapshot(&self, ifname: &str) -> Snapshot;
    fn ethtool_write(&self, ifname: &str, group: Group, changes: &Map<String, Value>) -> Result<()>;
    fn unit_active(&self, unit: &str) -> Result<Result<bool, HostError>, NotRunning>;
    fn set_unit_active(&self, unit: &str, active: bool) -> Result<()>;
    fn plan_command(&self, argv: Vec<String>) -> Result<Vec<String>, NotRunning>;
    fn run(&self, argv: &[String]) -> Result<()>;
    fn set_thread_affinity(&self, tid: u32, cpus: &CpuList) -> Result<Result<(), nix::errno::Errno>, NotRunning>;
    fn set_thread_scheduler(&self, tid: u32, policy: Policy, priority: u32) -> Result<Result<(), nix::errno::Errno>, NotRunning>;
}

/// A unit name systemctl can be given without it reading it as an option or a path.
pub fn valid_unit_name(unit: &str) -> bool {
    !unit.is_empty()
        && unit.len() <= 255
        && !unit.starts_with(['.', '-'])
        && unit.contains('.')
        && unit.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '@' | '-' | '\\'))
}

impl System for Live {
    fn kernel(&self) -> Kernel {
        Kernel::Running
    }

    fn can_act(&self) -> Result<(), NotRunning> {
        Ok(())
    }

    fn source(&self, _root: &std::path::Path) -> String {
        "live".to_string()
    }

    fn architecture(&self) -> Option<String> {
        nix::sys::utsname::uname().ok().map(|u| u.machine().to_string_lossy().into_owned())
    }

    fn ethtool_store(&self) -> EthtoolStore {
        EthtoolStore::Kernel
    }

    fn ethtool_read(&self, ifname: &str, group: Group) -> Result<Value, EthtoolError> {
        ethtool_group::read(ifname, group)
    }

    fn ethtool_features(&self, ifname: &str) -> Result<Vec<Feature>, EthtoolError> {
        ethtool::get_features(ifname)
    }

    fn ethtool_snapshot(&self, ifname: &str) -> Snapshot {
        Snapshot::read(ifname)
    }

    fn ethtool_write(&self, ifname: &str, group: Group, changes: &Map<String, Value>) -> Result<()> {
        ethtool_group::write(ifname, group, changes)
    }

    fn unit_active(&self, unit: &str) -> Result<Result<bool, HostError>, NotRunning> {
        let refuse = |why: &str| HostError::Io { path: unit.to_string(), err: std::io::Error::other(why.to_string()) };
        if !valid_unit_name(unit) {
            return Ok(Err(refuse("not a unit name")));
        }
        let out = match std::process::Command::new("systemctl").args(["is-active", "--", unit]).output() {
            Ok(out) => out,
            Err(e) => return Ok(Err(HostError::Io { path: unit.to_string(), err: e })),
        };
        let word = String::from_utf8_lossy(&out.stdout);
        Ok(Ok(matches!(word.trim(), "active" | "activating" | "reloading")))
    }

    fn set_unit_active(&self, unit: &str, active: bool) -> Result<()> {
        if !valid_unit_name(unit) {
            anyhow::bail!("{unit:?} is not a unit name");
        }
        let verb = if active { "start" } else { "stop" };
        let out = std::process::Command::new("systemctl")
            .args([verb, "--", unit])
            .output()
            .with_context(|| format!("cannot run systemctl {verb} {unit}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            anyhow::bail!("systemctl {verb} {unit}: {} ({})", out.status, crate::echo::cap_text(err.trim()));
        }
        Ok(())
    }

    fn plan_command(&self, argv: Vec<String>) -> Result<Vec<String>, NotRunning> {
        Ok(argv)
    }

    fn run(&self, argv: &[String]) -> Result<()> {
        let (prog, args) = argv.split_first().context("empty command")?;
        let out = std::process::Command::new(prog).args(args).output().with_context(|| format!("cannot run {prog}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            anyhow::bail!("{} ({})", out.status, crate::echo::cap_text(err.trim()));
        }
        Ok(())
    }

    fn set_thread_affinity(&self, tid: u32, cpus: &CpuList) -> Result<Result<(), nix::errno::Errno>, NotRunning> {
        Ok(sched::set_affinity(tid, cpus))
    }

    fn set_thread_scheduler(
        &self,
        tid: u32,
        policy: Policy,
        priority: u32,
    ) -> Result<Result<(), nix::errno::Errno>, NotRunning> {
        Ok(sched::set_scheduler(tid, policy, priority))
    }
}

/// The error of an ethtool request a tree never sends (callers ask `ethtool_store` first).
fn not_sent(ifname: &str) -> EthtoolError {
    EthtoolError { cmd: "not sent (root is not /)", ifname: ifname.to_string(), errno: nix::errno::Errno::ENODEV }
}

impl System for Tree {
    fn kernel(&self) -> Kernel {
        Kernel::Captured
    }

    fn can_act(&self) -> Result<(), NotRunning> {
        Err(NotRunning)
    }

    fn source(&self, root: &std::path::Path) -> String {
        root.display().to_string()
    }

    fn architecture(&self) -> Option<String> {
        None
    }

    fn ethtool_store(&self) -> EthtoolStore {
        EthtoolStore::Capture
    }

    fn ethtool_read(&self, ifname: &str, _group: Group) -> Result<Value, EthtoolError> {
        Err(not_sent(ifname))
    }

    fn ethtool_features(&self, ifname: &str) -> Result<Vec<Feature>, EthtoolError> {
        Err(not_sent(ifname))
    }

    fn ethtool_snapshot(&self, ifname: &str) -> Snapshot {
        Snapshot::failed(&not_sent(ifname))
    }

    fn ethtool_write(&self, ifname: &str, group: Group, _changes: &Map<String, Value>) -> Result<()> {
        anyhow::bail!("ethtool {ifname} {group}: ethtool settings are only set on a live host (root /)")
    }

    fn unit_active(&self, _unit: &str) -> Result<Result<bool, HostError>, NotRunning> {
        Err(NotRunning)
    }

    fn set_unit_active(&self, unit: &str, active: bool) -> Result<()> {
        let verb = if active { "start" } else { "stop" };
        anyhow::bail!("systemctl {verb} {unit}: refused, {NotRunning}")
    }

    fn plan_command(&self, _argv: Vec<String>) -> Result<Vec<String>, NotRunning> {
        Err(NotRunning)
    }

    fn run(&self, argv: &[String]) -> Result<()> {
        anyhow::bail!("{}: refused, {NotRunning}", argv.join(" "))
    }

    fn set_thread_affinity(&self, _tid: u32, _cpus: &CpuList) -> Result<Result<(), nix::errno::Errno>, NotRunning> {
        Err(NotRunning)
    }

    fn set_thread_scheduler(
        &self,
        _tid: u32,
        _policy: Policy,
        _priority: u32,
    ) -> Result<Result<(), nix::errno::Errno>, NotRunning> {
        Err(NotRunning)
    }
}
