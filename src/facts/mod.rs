//! Discovery: everything `lltune_facts` and `lltune scan` report about one host, read through
//! a `Host` (so a captured tree works like a live server). Each submodule owns one subsystem:
//! pure `parse_*` functions over kernel text, and a `read` that finds the files.
//!
//! A scan never fails as a whole because one file is missing or odd: the field becomes `null`
//! or empty and, where a person would want to know, a warning says which file and why.
//! The JSON shape is a contract (`docs/facts.md`, `schema_version`).

pub mod cpu;
pub mod host_info;
pub mod irq;
pub mod kernel;
pub mod limits;
pub mod memory;
pub mod nic;
pub mod numa;
pub mod services;
pub mod sysctl;
pub mod threads;
pub mod time;
pub mod user_stacks;

use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::host::Host;
use crate::host::system::Kernel;

/// Version of the facts layout. Bump on any change a consumer could notice (renamed or
/// retyped field); adding a field does not bump it.
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest `schema_version` this lltune reads (snapshots, the fleet report). Version 2 only
/// widened types (`cpu.isolated` and `cpu.nohz_full` may be null: unknown), so facts of
/// version 1 are facts of version 2 as they are.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// Whether facts of `version` can be read by this lltune.
pub fn reads_schema(version: u32) -> bool {
    (OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&version)
}

/// Options of one scan.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Per-IRQ list (`irqs.list`) and other per-item detail.
    pub detail: bool,
}

/// State shared by the readers of one scan: the host, the options, and the warnings.
pub struct Scan<'a> {
    pub host: &'a Host,
    pub options: ScanOptions,
    warnings: Vec<String>,
    /// `/proc/cpuinfo`, read once for every reader (host, cpu, time): the error as text.
    cpuinfo: Option<Result<Option<Rc<str>>, String>>,
}

impl<'a> Scan<'a> {
    pub fn new(host: &'a Host, options: ScanOptions) -> Scan<'a> {
        Scan { host, options, warnings: Vec::new(), cpuinfo: None }
    }

    /// `/proc/cpuinfo` (`None` when absent), read on first use and shared: on a 256-CPU
    /// host it is some 400 kB that three subsystems look at.
    pub fn cpuinfo(&mut self) -> Result<Option<Rc<str>>, String> {
        let host = self.host;
        self.cpuinfo
            .get_or_insert_with(|| match host.read_opt("/proc/cpuinfo") {
                Ok(t) => Ok(t.map(Rc::from)),
                Err(e) => Err(e.to_string()),
            })
            .clone()
    }

    /// Records something a person should know about this scan (an unreadable or odd file).
    pub fn warn(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Everything discovered about one host. What `lltune scan` and `lltune_facts` report is this
/// object plus the `recommendations` derived from it, added one layer up.
///
/// Read back (the fleet report, `--snapshot`), a field missing from the input is unknown, as
/// in `Facts::default()`: this struct and every struct under it that is not inside an
/// `Option`, a list or a map are `#[serde(default)]`. So facts of an older lltune of the same
/// `schema_version`, which lack fields added since, read with those fields unknown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    pub schema_version: u32,
    pub lltune_version: String,
    pub host: host_info::HostInfo,
    pub cpu: cpu::Cpu,
    pub numa: numa::Numa,
    pub memory: memory::Memory,
    pub kernel: kernel::Kernel,
    pub nics: Vec<nic::Nic>,
    pub irqs: irq::Irqs,
    pub services: services::Services,
    pub time: time::Time,
    pub user_stacks: user_stacks::UserStacks,
    pub limits: limits::Limits,
    pub sysctl: sysctl::Sysctls,
}

/// Every fact unknown (null, empty), of this `schema_version`.
impl Default for Facts {
    fn default() -> Facts {
        Facts {
            schema_version: SCHEMA_VERSION,
            lltune_version: String::new(),
            host: Default::default(),
            cpu: Default::default(),
            numa: Default::default(),
            memory: Default::default(),
            kernel: Default::default(),
            nics: Vec::new(),
            irqs: Default::default(),
            services: Default::default(),
            time: Default::default(),
            user_stacks: Default::default(),
            limits: Default::default(),
            sysctl: Default::default(),
        }
    }
}

/// Why `host` is not a host tree, if it is not: a root (other than `/`) with neither a `proc`
/// nor a `sys` folder, where every scan would find nothing and report it as fine.
pub fn not_a_host_tree(host: &Host) -> Option<String> {
    // The running kernel's files are a host by definition: a question about the data.
    if host.system().kernel() == Kernel::Running || host.is_dir("/proc") || host.is_dir("/sys") {
        return None;
    }
    Some(
        "not a host tree: it has neither a proc nor a sys folder (give the root of a host's files, such as a tree `lltune capture` wrote)"
            .to_string(),
    )
}

/// Reads every subsystem. Returns the facts and the scan's warnings.
pub fn collect(host: &Host, options: ScanOptions) -> (Facts, Vec<String>) {
    let mut scan = Scan::new(host, options);
    let host_info = host_info::read(&mut scan);
    let cpu = cpu::read(&mut scan);
    let numa = numa::read(&mut scan, &cpu);
    let memory = memory::read(&mut scan);
    let mut kernel = kernel::read(&mut scan);
    kernel.cpumasks = sysctl::read_cpumasks(&mut scan);
    let nics = nic::read(&mut scan);
    let irqs = irq::read(&mut scan, &cpu, &kernel, &nics);
    let services = services::read(&mut scan);
    let time = time::read(&mut scan);
    let user_stacks = user_stacks::read(&mut scan, &nics);
    let limits = limits::read(&mut scan);
    let sysctl = sysctl::read(&mut scan);
    let facts = Facts {
        schema_version: SCHEMA_VERSION,
        lltune_version: env!("CARGO_PKG_VERSION").to_string(),
        host: host_info,
        cpu,
        numa,
        memory,
        kernel,
        nics,
        irqs,
        services,
        time,
        user_stacks,
        limits,
        sysctl,
    };
    let warnings = scan.warnings;
    (facts, warnings)
}
