//! The config file: version 1, the seed's schema (docs/config.md), read with strict types.
//! `gen-config` writes it; `audit` checks it; `apply` carries it out. This is the one reader.
//!
//! Strictness, and the surprising part: every section is read into typed structs that deny
//! unknown keys, and each problem becomes an `Issue` naming its dotted field
//! (`kernel.cmdline.mitigations`, `network.interfaces[0].role`), never a crash. serde_yaml
//! follows YAML 1.2, where `off`, `on`, `yes`, `no`, `y` and `n` are strings; the seed read
//! its configs with PyYAML (YAML 1.1), where they are booleans. A config written for the seed
//! that says `mitigations: off` meant the string, one that says `turbo: off` meant false: the
//! same word, two meanings, so lltune accepts neither unquoted. `yaml11::yaml11_booleans` finds
//! those words (plain scalars, block or flow style, read by a YAML event parser) and `parse`
//! reports each one at its path.

pub mod audit; //    a config checked alone and against a host
pub mod generate; // gen-config: a commented config for one machine
mod read; //        each section from its YAML value into its typed struct
pub mod reasons; // why each module argument is there: config key path and finding
pub mod to_args; //  a config's sections as each module's arguments
pub mod tuned; //    a config as a TuneD custom profile (export-tuned)
pub mod yaml; //     YAML text to a value, with libyaml's event parser
pub mod yaml11; //   YAML 1.1 boolean words (off, on, yes, no) found by a YAML event parser

pub use yaml11::{Yaml11Bool, is_yaml11_bool_word, yaml11_booleans};

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_yaml::Value as Yaml;

use crate::analysis::plan::NicRole;
use crate::cpulist::CpuList;

/// The only config version this lltune reads and writes.
pub const VERSION: u64 = 1;

/// One problem of a config: `{field, message}` in `issues.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Dotted path of the field (`kernel.cmdline.isolcpus`, `network.interfaces[1].name`);
    /// empty for the document as a whole.
    pub field: String,
    pub message: String,
}

impl Issue {
    /// A key with a control character in it (a newline, from a quoted YAML key) is shown
    /// escaped in the field (`b\\nc`), so that an issue stays one line.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Issue {
        let field: String = field.into();
        let field = if field.contains(char::is_control) {
            field.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
        } else {
            field
        };
        Issue { field, message: message.into() }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

// ---- Value types ----

/// A CPU set written as a kernel CPU list (`"1-27,57-83"`), a single number, or a YAML list
/// of numbers (`[0, 56]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpus(pub CpuList);

impl Serialize for Cpus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

/// A value written as text: a string or a number (`skew_tick: 1` and `skew_tick: "1"` are the
/// same). A boolean is refused: in a config meant for YAML 1.1 it may have been `off`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text(pub String);

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A sysctl value: a number or string as written, a boolean as 0/1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SysctlValue(pub String);

/// Kernel arguments in file order: `key: value`, `key: ""` or `key:` (null) for a bare flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline(pub Vec<(String, Option<String>)>);

/// Arguments `kernel.cmdline` knows; anything else goes under `kernel.extra_args`, so that a
/// misspelt `isolcpu` is an error rather than a new argument.
pub const CMDLINE_KEYS: &[&str] = &[
    "isolcpus",
    "nohz_full",
    "rcu_nocbs",
    "rcu_nocb_poll",
    "kthread_cpus",
    "irqaffinity",
    "nohz",
    "skew_tick",
    "tsc",
    "nosoftlockup",
    "nmi_watchdog",
    "nowatchdog",
    "transparent_hugepage",
    "intel_pstate",
    "amd_pstate",
    "processor.max_cstate",
    "intel_idle.max_cstate",
    "idle",
    "mitigations",
    "default_hugepagesz",
    "hugepagesz",
    "hugepages",
    "nosmt",
    "audit",
    "intel_iommu",
    "amd_iommu",
    "iommu",
    "mce",
    "numa_balancing",
    "clocksource",
    "hpet",
    "rcupdate.rcu_normal_after_boot",
    "rcutree.kthread_prio",
    "workqueue.power_efficient",
    "cpufreq.default_governor",
    "systemd.cpu_affinity",
];

/// `kernel.cmdline` arguments that stand alone (`nosoftlockup`, `rcupdate.rcu_normal_after_boot`
/// as a module boolean): null or `""` writes the bare word. Every other argument of
/// `CMDLINE_KEYS` needs a value, and null there is an error: `idle: null` would otherwise write
/// a bare `idle`, which means nothing to the kernel, where the person meant "no idle=".
pub const CMDLINE_FLAGS: &[&str] = &[
    "nosoftlockup",
    "nowatchdog",
    "nosmt",
    "rcu_nocb_poll",
    "rcu_nocbs",
    "rcupdate.rcu_normal_after_boot",
    "workqueue.power_efficient",
];

impl Cmdline {
    /// The value of `key`: `Some(None)` for a bare flag.
    pub fn get(&self, key: &str) -> Option<Option<&str>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_deref())
    }
}

// ---- Sections ----

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metadata {
    pub generated_at: Option<String>,
    pub host: Option<String>,
    pub kernel: Option<String>,
    pub tool_version: Option<String>,
    /// Where the facts came from: `live`, a `--root` folder, or a snapshot file.
    pub source: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HardwareNic {
    pub name: String,
    pub driver: Option<String>,
    pub pci_address: Option<String>,
    pub numa_node: Option<i64>,
    pub speed_mbps: Option<u32>,
}

/// What the machine is (read-only: written by gen-config for the person editing).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hardware {
    pub cpu_model: Option<String>,
    pub vendor: Option<String>,
    pub sockets: Option<u32>,
    pub cores_per_socket: Option<u32>,
    pub threads_per_core: Option<u32>,
    pub online_cpus: Option<Cpus>,
    pub numa_nodes: Option<u32>,
    pub nics: Vec<HardwareNic>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Governor {
    pub target: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuSection {
    pub governor: Option<Governor>,
    /// CPUs isolated from the scheduler (must match isolcpus/nohz_full/rcu_nocbs).
    pub isolate_cores: Option<Cpus>,
    pub turbo: Option<bool>,
    pub cstate_limit: Option<u32>,
    pub epp: Option<String>,
    /// `cpuN/power/pm_qos_resume_latency_us` on `cpus` (default the isolated cores).
    pub pm_qos_resume_latency_us: Option<PmQos>,
    /// `cpuN/power/energy_perf_bias`: 0-15 or one of `EPB_NAMES`, as the number.
    pub energy_perf_bias: Option<u8>,
    /// `intel_uncore_frequency/*/{min,max}_freq_khz`.
    pub uncore: Option<Uncore>,
    /// `machinecheck/machinecheckN/ignore_ce`.
    pub mce_ignore_ce: Option<bool>,
}

/// `cpu.pm_qos_resume_latency_us`: `value` is µs, `0` (no constraint, the kernel's default)
/// or `n/a` (no resume latency accepted: the CPU only polls when idle).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PmQos {
    pub cpus: Option<Cpus>,
    pub value: Text,
}

/// `cpu.uncore`: kHz, or `min`/`max` for each die's `initial_min_freq_khz`/`initial_max_freq_khz`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Uncore {
    pub min_freq_khz: Option<Text>,
    pub max_freq_khz: Option<Text>,
}

/// The names the kernel takes for `energy_perf_bias` (arch/x86/kernel/cpu/intel_epb.c) and
/// the values it stores for them.
pub const EPB_NAMES: &[(&str, u8)] =
    &[("performance", 0), ("balance-performance", 4), ("normal", 6), ("balance-power", 8), ("power", 15)];

/// An `energy_perf_bias` value as the number the kernel stores.
pub fn epb_value(v: &str) -> Option<u8> {
    EPB_NAMES.iter().find(|(n, _)| *n == v).map(|(_, b)| *b).or_else(|| v.parse().ok().filter(|b| *b <= 15))
}

/// A PM QoS resume latency as the kernel takes it: `n/a`, or µs from 0 to 2^31-2.
pub fn pm_qos_value(v: &str) -> bool {
    v == "n/a" || (v.len() <= 10 && v.parse::<u32>().is_ok_and(|n| n < i32::MAX as u32))
}

/// An uncore limit: kHz in 100 MHz steps, or `min`/`max`.
pub fn uncore_value(v: &str) -> bool {
    matches!(v, "min" | "max") || v.parse::<u32>().is_ok_and(|n| n > 0 && n % 100_000 == 0)
}

/// Runtime sysctls of the kernel that isolation cares about.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KernelSysctl {
    pub timer_migration: Option<u32>,
    pub hung_task_timeout_secs: Option<u64>,
    pub nmi_watchdog: Option<u32>,
    pub sched_rt_runtime_us: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KernelSection {
    #[serde(skip_serializing)]
    pub cmdline: Option<Cmdline>,
    /// Kernel arguments outside `CMDLINE_KEYS`, written as given.
    #[serde(skip_serializing)]
    pub extra_args: Option<Cmdline>,
    pub sysctl: Option<KernelSysctl>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThpMode {
    Never,
    Madvise,
    Always,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HugepagesConfig {
    /// Page size in kB: 2048 or 1048576 on x86 (the seed writes it as a string).
    pub size_kb: Option<Text>,
    pub total: Option<u64>,
    /// `node0: 512`: pages per NUMA node; must add up to `total`. The seed also read node
    /// keys as bare numbers (`"0": 512`, or unquoted `0: 512`); they are kept as written, in
    /// text (`0`), so that audit names the key the user wrote.
    pub per_node: BTreeMap<String, u64>,
}

impl HugepagesConfig {
    pub fn size_kb(&self) -> Option<u64> {
        self.size_kb.as_ref().and_then(|t| t.0.parse().ok())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Mlock {
    pub enabled: Option<bool>,
    pub user: Option<String>,
    pub soft: Option<Text>,
    pub hard: Option<Text>,
    pub max_map_count: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LimitsConfig {
    pub nofile: Option<Text>,
    pub nproc: Option<Text>,
    pub rtprio: Option<Text>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemorySection {
    pub thp_runtime: Option<ThpMode>,
    pub swap_disable: Option<bool>,
    pub numa_balancing: Option<bool>,
    pub ksm: Option<bool>,
    pub swappiness: Option<u32>,
    pub dirty_ratio: Option<u32>,
    pub dirty_background_ratio: Option<u32>,
    pub dirty_expire_centisecs: Option<u32>,
    pub dirty_writeback_centisecs: Option<u32>,
    pub stat_interval: Option<u32>,
    pub zone_reclaim_mode: Option<u32>,
    pub min_free_kbytes: Option<u64>,
    pub overcommit_memory: Option<u32>,
    pub max_map_count: Option<u64>,
    pub hugepages: Option<HugepagesConfig>,
    pub mlock: Option<Mlock>,
    pub limits: Option<LimitsConfig>,
}

/// `memory` keys that are sysctls, with their real names.
pub const MEMORY_SYSCTL: &[(&str, &str)] = &[
    ("swappiness", "vm.swappiness"),
    ("numa_balancing", "kernel.numa_balancing"),
    ("max_map_count", "vm.max_map_count"),
    ("dirty_ratio", "vm.dirty_ratio"),
    ("dirty_background_ratio", "vm.dirty_background_ratio"),
    ("dirty_expire_centisecs", "vm.dirty_expire_centisecs"),
    ("dirty_writeback_centisecs", "vm.dirty_writeback_centisecs"),
    ("stat_interval", "vm.stat_interval"),
    ("zone_reclaim_mode", "vm.zone_reclaim_mode"),
    ("min_free_kbytes", "vm.min_free_kbytes"),
    ("overcommit_memory", "vm.overcommit_memory"),
];

/// The seed's `network.sysctl` short names that are not `net.ipv4.<name>`.
pub const NETWORK_SYSCTL: &[(&str, &str)] = &[
    ("rmem_max", "net.core.rmem_max"),
    ("wmem_max", "net.core.wmem_max"),
    ("rmem_default", "net.core.rmem_default"),
    ("wmem_default", "net.core.wmem_default"),
    ("optmem_max", "net.core.optmem_max"),
    ("busy_poll", "net.core.busy_poll"),
    ("busy_read", "net.core.busy_read"),
    ("netdev_max_backlog", "net.core.netdev_max_backlog"),
    ("netdev_budget", "net.core.netdev_budget"),
    ("netdev_budget_usecs", "net.core.netdev_budget_usecs"),
    ("somaxconn", "net.core.somaxconn"),
    ("default_qdisc", "net.core.default_qdisc"),
    ("rps_sock_flow_entries", "net.core.rps_sock_flow_entries"),
    ("file_max", "fs.file-max"),
];

/// The real sysctl name of a `network.sysctl` key: a full dotted name as it is, a short
/// name of `NETWORK_SYSCTL`, or `tcp_*`/`udp_*`/`ip_*`/`icmp_*` under net.ipv4.
pub fn network_sysctl_name(key: &str) -> Option<String> {
    if key.contains('.') {
        return Some(key.to_string());
    }
    if let Some((_, real)) = NETWORK_SYSCTL.iter().find(|(n, _)| *n == key) {
        return Some(real.to_string());
    }
    ["tcp_", "udp_", "ip_", "icmp_"].iter().any(|p| key.starts_with(p)).then(|| format!("net.ipv4.{key}"))
}

/// `network.sysctl`: names checked by `network_sysctl_name`, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSysctl(pub Vec<(String, SysctlValue)>);

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NicDefaults {
    pub disable_gro: Option<bool>,
    pub disable_lro: Option<bool>,
    pub disable_tso: Option<bool>,
    pub disable_gso: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coalescing {
    pub rx_usecs: Option<u32>,
    pub tx_usecs: Option<u32>,
    pub adaptive_rx: Option<bool>,
    pub adaptive_tx: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rings {
    pub rx: Option<u32>,
    pub tx: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Offloads {
    pub gro: Option<bool>,
    pub lro: Option<bool>,
    pub tso: Option<bool>,
    pub gso: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlowControl {
    pub rx: Option<bool>,
    pub tx: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChannelsConfig {
    pub combined: Option<u32>,
    pub rx: Option<u32>,
    pub tx: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Interface {
    pub name: String,
    pub role: Option<NicRole>,
    pub numa_node: Option<i64>,
    pub driver: Option<String>,
    pub coalescing: Option<Coalescing>,
    pub rings: Option<Rings>,
    pub offloads: Option<Offloads>,
    pub flow_control: Option<FlowControl>,
    pub channels: Option<ChannelsConfig>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkSection {
    pub defaults: Option<NicDefaults>,
    pub sysctl: NetworkSysctl,
    pub interfaces: Vec<Interface>,
}

/// Which IRQs a pin takes: exactly one of `match`, `nic`, `pci` in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum IrqTarget {
    /// Glob over IRQ handler names (`ens3f*`, `mlx5_comp*`).
    #[serde(rename = "match")]
    Match(String),
    /// A network interface: the IRQs of its device, whatever the driver names them.
    #[serde(rename = "nic")]
    Nic(String),
    /// A PCI device (`0000:3b:00.0`): a NIC with no netdev, or named by its slot.
    #[serde(rename = "pci")]
    Pci(String),
}

impl Default for IrqTarget {
    fn default() -> Self {
        IrqTarget::Match(String::new())
    }
}

impl IrqTarget {
    /// The config key (`match`, `nic`, `pci`).
    pub fn key(&self) -> &'static str {
        match self {
            IrqTarget::Match(_) => "match",
            IrqTarget::Nic(_) => "nic",
            IrqTarget::Pci(_) => "pci",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            IrqTarget::Match(s) | IrqTarget::Nic(s) | IrqTarget::Pci(s) => s,
        }
    }
}

impl std::fmt::Display for IrqTarget {
    /// As a message names it: `ens3f*`, `nic ens1f0`, `pci 0000:3b:00.0`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IrqTarget::Match(s) => write!(f, "{s}"),
            IrqTarget::Nic(s) => write!(f, "nic {s}"),
            IrqTarget::Pci(s) => write!(f, "pci {s}"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IrqPin {
    #[serde(flatten)]
    pub target: IrqTarget,
    pub cpus: Cpus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IrqSection {
    pub manual_affinity: Vec<IrqPin>,
    pub avoid_cores_for_irqs: Option<Cpus>,
    pub disable_rps: Option<bool>,
    pub disable_rfs: Option<bool>,
    /// `/proc/irq/default_smp_affinity`: where new IRQs start.
    pub default_affinity: Option<Cpus>,
}

/// One `threads.priorities` rule: threads whose name matches `match` get the policy
/// (`fifo`, `rr`, `other`, `batch`, `idle`) and priority (1-99 for fifo/rr, else 0).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThreadPriority {
    #[serde(rename = "match")]
    pub pattern: String,
    pub policy: String,
    pub priority: u32,
}

/// `threads`: what `lltune_threads` does with the running threads.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThreadsSection {
    /// Move movable threads off `cpu.isolate_cores` (default true).
    pub isolate: Option<bool>,
    /// Where they go; default each thread's allowed CPUs minus the isolated ones.
    pub housekeeping_cores: Option<Cpus>,
    /// Thread name globs left on the isolated CPUs.
    pub keep: Vec<String>,
    /// Absent: the module's defaults (TuneD's realtime thread groups); `[]`: none.
    pub priorities: Option<Vec<ThreadPriority>>,
}

/// `time_sync.ptp`: ptp4l on one NIC (`lltune_timesync` with provider ptp4l).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ptp {
    pub interface: Option<String>,
    pub phc2sys: Option<bool>,
    pub domain: Option<u32>,
    pub transport: Option<PtpTransport>,
    pub delay_mechanism: Option<PtpDelay>,
}

/// ptp4l's network_transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PtpTransport {
    UDPv4,
    UDPv6,
    L2,
}

/// ptp4l's delay_mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PtpDelay {
    E2E,
    P2P,
}

/// Who disciplines the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeProvider {
    Chrony,
    Ptp4l,
}

/// One `time_sync.servers` item (linux-system-roles' `timesync_ntp_servers` item).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NtpServer {
    pub hostname: String,
    pub iburst: Option<bool>,
    pub prefer: Option<bool>,
    pub pool: Option<bool>,
    pub minpoll: Option<i64>,
    pub maxpoll: Option<i64>,
}

/// `time_sync.refclock`: a PTP hardware clock as chrony's reference clock.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Refclock {
    /// `/dev/ptpN` or an interface name (its PHC).
    pub phc: String,
    pub poll: Option<i64>,
    pub dpoll: Option<i64>,
    /// Nanoseconds (configs, like module options, take no fractions).
    pub offset_ns: Option<i64>,
    pub precision_ns: Option<i64>,
    pub prefer: Option<bool>,
    /// The clock keeps TAI (chrony's `tai`); absent: true when ptp4l runs beside chrony.
    pub tai: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TimeSync {
    pub ntp: Option<bool>,
    pub ptp: Option<Ptp>,
    pub clocksource: Option<String>,
    /// `chrony` or `ptp4l`; absent with `ptp.interface` set: ptp4l.
    pub provider: Option<TimeProvider>,
    pub servers: Vec<NtpServer>,
    pub refclock: Option<Refclock>,
    /// Stop and disable the other time daemons (default true).
    pub disable_competing: Option<bool>,
}

impl TimeSync {
    /// The provider the section asks for: `provider`, else ptp4l when `ptp.interface` is set.
    pub fn provider(&self) -> Option<TimeProvider> {
        self.provider.or_else(|| self.ptp.as_ref().and_then(|p| p.interface.as_ref()).map(|_| TimeProvider::Ptp4l))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServicesSection {
    pub irqbalance: Option<bool>,
    pub tuned: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Safety {
    /// Must be true for apply to change the boot command line.
    pub allow_grub_edit: bool,
    /// Must be true for `mitigations=off` (and the per-vulnerability off switches).
    pub allow_dangerous_mitigations: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TuningLevel {
    UltraLowLatency,
    LowLatency,
    Balanced,
}

/// `onload` / `vma` / `xlio`: environment profiles for kernel-bypass stacks, written by
/// `lltune_bypass` (a file a shell sources and its systemd `EnvironmentFile=` twin).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StackProfile {
    /// false: the section writes nothing (absent means true).
    pub generate_profile: Option<bool>,
    pub tuning_level: Option<TuningLevel>,
    /// The file a shell sources (default `/etc/profile.d/lltune-<stack>.sh`).
    pub path: Option<String>,
    /// The `EnvironmentFile=` twin (default `/etc/lltune/<stack>.env`).
    pub env_file: Option<String>,
    /// More variables of the stack, or other values for the level's (`EF_RXQ_SIZE: 2048`).
    pub variables: StackVariables,
}

/// `variables` of a stack section: name → value as text, in file order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StackVariables(pub Vec<(String, String)>);

impl StackProfile {
    /// Whether the section asks for files (`generate_profile` absent or true).
    pub fn wanted(&self) -> bool {
        self.generate_profile != Some(false)
    }
}

impl TuningLevel {
    /// The word the config and `lltune_bypass` use.
    pub fn word(self) -> &'static str {
        match self {
            TuningLevel::UltraLowLatency => "ultra_low_latency",
            TuningLevel::LowLatency => "low_latency",
            TuningLevel::Balanced => "balanced",
        }
    }
}

/// One of `rdma.devices`: `{name, numa_node}`, or (as the seed wrote it) just the name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RdmaDeviceConfig {
    pub name: String,
    pub numa_node: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RdmaSection {
    pub devices: Vec<RdmaDeviceConfig>,
}

/// A whole config. Sections absent from the file are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub version: Option<u64>,
    pub metadata: Option<Metadata>,
    pub hardware: Option<Hardware>,
    pub cpu: Option<CpuSection>,
    pub kernel: Option<KernelSection>,
    pub memory: Option<MemorySection>,
    pub network: Option<NetworkSection>,
    pub irq: Option<IrqSection>,
    pub threads: Option<ThreadsSection>,
    pub time_sync: Option<TimeSync>,
    pub services: Option<ServicesSection>,
    pub safety: Safety,
    pub onload: Option<StackProfile>,
    pub vma: Option<StackProfile>,
    pub xlio: Option<StackProfile>,
    pub rdma: Option<RdmaSection>,
    /// Informational: the recommendations gen-config embedded, as written.
    pub recommendations: Vec<Yaml>,
}

/// Top-level sections, in the order gen-config writes them.
pub const SECTIONS: &[&str] = &[
    "version",
    "metadata",
    "hardware",
    "cpu",
    "kernel",
    "memory",
    "network",
    "irq",
    "threads",
    "time_sync",
    "services",
    "safety",
    "onload",
    "vma",
    "xlio",
    "rdma",
    "recommendations",
];

impl Config {
    /// Kernel arguments to set: `kernel.cmdline` then `kernel.extra_args`, in file order.
    pub fn kernel_args(&self) -> Vec<(String, Option<String>)> {
        let Some(k) = &self.kernel else { return Vec::new() };
        k.cmdline.iter().chain(k.extra_args.iter()).flat_map(|c| c.0.iter().cloned()).collect()
    }

    /// One kernel argument (`cmdline` or `extra_args`): `Some(None)` for a bare flag.
    pub fn kernel_arg(&self, key: &str) -> Option<Option<&str>> {
        let k = self.kernel.as_ref()?;
        k.extra_args.as_ref().and_then(|c| c.get(key)).or_else(|| k.cmdline.as_ref().and_then(|c| c.get(key)))
    }

    /// Every sysctl the config sets: real name → (value, dotted config path). Sources:
    /// `network.sysctl`, the sysctl keys of `memory` (and `memory.mlock.max_map_count`),
    /// `kernel.sysctl`. A later source does not override an earlier one.
    pub fn sysctls(&self) -> BTreeMap<String, (String, String)> {
        let mut out: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut put = |name: String, value: String, path: String| {
            out.entry(name).or_insert((value, path));
        };
        if let Some(n) = &self.network {
            for (k, v) in &n.sysctl.0 {
                if let Some(name) = network_sysctl_name(k) {
                    put(name, v.0.clone(), format!("network.sysctl.{k}"));
                }
            }
        }
        if let Some(m) = &self.memory {
            let num = |v: Option<u64>| v.map(|x| x.to_string());
            let values: [(&str, Option<String>); 11] = [
                ("swappiness", num(m.swappiness.map(u64::from))),
                ("numa_balancing", m.numa_balancing.map(|b| if b { "1".into() } else { "0".into() })),
                ("max_map_count", num(m.max_map_count)),
                ("dirty_ratio", num(m.dirty_ratio.map(u64::from))),
                ("dirty_background_ratio", num(m.dirty_background_ratio.map(u64::from))),
                ("dirty_expire_centisecs", num(m.dirty_expire_centisecs.map(u64::from))),
                ("dirty_writeback_centisecs", num(m.dirty_writeback_centisecs.map(u64::from))),
                ("stat_interval", num(m.stat_interval.map(u64::from))),
                ("zone_reclaim_mode", num(m.zone_reclaim_mode.map(u64::from))),
                ("min_free_kbytes", num(m.min_free_kbytes)),
                ("overcommit_memory", num(m.overcommit_memory.map(u64::from))),
            ];
            for (k, v) in values {
                let Some(v) = v else { continue };
                if let Some((_, real)) = MEMORY_SYSCTL.iter().find(|(n, _)| *n == k) {
                    put(real.to_string(), v, format!("memory.{k}"));
                }
            }
            if let Some(v) = m.mlock.as_ref().and_then(|l| l.max_map_count) {
                put("vm.max_map_count".into(), v.to_string(), "memory.mlock.max_map_count".into());
            }
            // Swap off, and should a swap device come back, reclaim page cache before anything
            // is swapped out (an explicit `swappiness` above wins).
            if m.swap_disable == Some(true) {
                put("vm.swappiness".into(), "0".into(), "memory.swap_disable".into());
            }
        }
        // Isolated cores: the lockup detectors run on the housekeeping CPUs only (TuneD's
        // cpu-partitioning does the same).
        if self.cpu.as_ref().is_some_and(|c| c.isolate_cores.is_some()) {
            let hk = ["kthread_cpus", "irqaffinity"].iter().find_map(|k| self.kernel_arg(k).flatten());
            if let Some(hk) = hk.and_then(|h| CpuList::parse(h).ok()).filter(|h| !h.is_empty()) {
                put("kernel.watchdog_cpumask".into(), hk.to_string(), "cpu.isolate_cores".into());
            }
        }
        // RFS off: the global flow table too (an explicit `network.sysctl` value wins).
        if self.irq.as_ref().and_then(|i| i.disable_rfs) == Some(true) {
            put("net.core.rps_sock_flow_entries".into(), "0".into(), "irq.disable_rfs".into());
        }
        if let Some(s) = self.kernel.as_ref().and_then(|k| k.sysctl.as_ref()) {
            let items: [(&str, Option<String>); 4] = [
                ("timer_migration", s.timer_migration.map(|v| v.to_string())),
                ("hung_task_timeout_secs", s.hung_task_timeout_secs.map(|v| v.to_string())),
                ("nmi_watchdog", s.nmi_watchdog.map(|v| v.to_string())),
                ("sched_rt_runtime_us", s.sched_rt_runtime_us.map(|v| v.to_string())),
            ];
            for (k, v) in items {
                if let Some(v) = v {
                    put(format!("kernel.{k}"), v, format!("kernel.sysctl.{k}"));
                }
            }
        }
        out
    }
}

// ---- Reading ----

fn kind(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "null",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

/// Reads one section into its type; an error names the dotted field.
/// A value as a message shows it: a scalar as written, a collection by its kind.
fn scalar_text(v: &Yaml) -> String {
    match v {
        Yaml::Null => "null".into(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        Yaml::String(s) => format!("{s:?}"),
        other => kind(other).into(),
    }
}

/// A JSON value (a config mapping given to a module) as the YAML value the reader takes.
pub fn yaml_from_json(v: &serde_json::Value) -> Yaml {
    use serde_json::Value as J;
    match v {
        J::Null => Yaml::Null,
        J::Bool(b) => Yaml::Bool(*b),
        J::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Yaml::Number(u.into()),
            (None, Some(i), _) => Yaml::Number(i.into()),
            (None, None, Some(f)) => Yaml::Number(f.into()),
            _ => Yaml::Null,
        },
        J::String(s) => Yaml::String(s.clone()),
        J::Array(a) => Yaml::Sequence(a.iter().map(yaml_from_json).collect()),
        J::Object(m) => Yaml::Mapping(m.iter().map(|(k, v)| (Yaml::String(k.clone()), yaml_from_json(v))).collect()),
    }
}

/// Parses a config. Returns what could be read and every problem found; a config with
/// problems is never half-trusted by callers (they check `issues` first).
pub fn parse(text: &str) -> (Config, Vec<Issue>) {
    match yaml::load(text) {
        Ok(doc) => parse_doc(&doc, &yaml11_booleans(text)),
        Err(e) => (Config::default(), vec![Issue::new("", format!("not valid YAML: {e}"))]),
    }
}

/// Reads a config already parsed into a value: from YAML text (`words`: the YAML 1.1 words
/// `yaml11_booleans` found in it, which only the text shows), or from a mapping that came as
/// JSON (no words: its types are exact). The modules take JSON only and pass none, so no
/// YAML parser is linked into them.
pub fn parse_doc(doc: &Yaml, words: &[Yaml11Bool]) -> (Config, Vec<Issue>) {
    let mut issues = Vec::new();
    let mut c = Config::default();
    let empty = serde_yaml::Mapping::new();
    let top = match doc {
        Yaml::Mapping(m) => m,
        Yaml::Null => &empty,
        other => {
            issues.push(Issue::new("", format!("expected a mapping of sections at the top, found {}", kind(other))));
            return (c, issues);
        }
    };
    for (k, v) in top {
        let Some(name) = k.as_str() else {
            issues.push(Issue::new("", format!("section names are strings; found {}", kind(k))));
            continue;
        };
        match name {
            "version" => match v {
                Yaml::Number(n) if n.as_u64() == Some(VERSION) => c.version = Some(VERSION),
                other => {
                    issues.push(Issue::new("version", format!("expected {VERSION}, found {}", scalar_text(other))))
                }
            },
            "metadata" => c.metadata = read::section(name, v, &mut issues),
            "hardware" => c.hardware = read::section(name, v, &mut issues),
            "cpu" => c.cpu = read::section(name, v, &mut issues),
            "kernel" => c.kernel = read::section(name, v, &mut issues),
            "memory" => c.memory = read::section(name, v, &mut issues),
            "network" => c.network = read::section(name, v, &mut issues),
            "irq" => c.irq = read::section(name, v, &mut issues),
            "threads" => c.threads = read::section(name, v, &mut issues),
            "time_sync" => c.time_sync = read::section(name, v, &mut issues),
            "services" => c.services = read::section(name, v, &mut issues),
            "safety" => c.safety = read::section(name, v, &mut issues).unwrap_or_default(),
            "onload" => c.onload = read::section(name, v, &mut issues),
            "vma" => c.vma = read::section(name, v, &mut issues),
            "xlio" => c.xlio = read::section(name, v, &mut issues),
            "rdma" => c.rdma = read::section(name, v, &mut issues),
            "recommendations" => match v {
                Yaml::Sequence(s) => c.recommendations = s.clone(),
                Yaml::Null => {}
                other => issues.push(Issue::new("recommendations", format!("expected a list, found {}", kind(other)))),
            },
            other => issues.push(Issue::new(other, format!("unknown section (known: {})", SECTIONS.join(", ")))),
        }
    }
    if c.version.is_none() && !issues.iter().any(|i| i.field == "version") {
        issues.push(Issue::new("version", format!("missing (expected {VERSION})")));
    }
    for b in words {
        if b.path.starts_with("recommendations") || issues.iter().any(|i| i.field == b.path) {
            continue;
        }
        issues.push(Issue::new(
            b.path.clone(),
            format!(
                "`{}` (line {}) is a boolean in YAML 1.1 but a string in YAML 1.2; quote it (\"{}\") if you mean the word, or write true/false",
                b.word, b.line, b.word
            ),
        ));
    }
    policy_issues(&c, &mut issues);
    (c, issues)
}

/// The safety policy (`crate::policy`) on the config's kernel arguments: each refused
/// argument is an issue at its field, with the policy's reason. `safety` may come after
/// `kernel` in the file: this runs once the whole document is read.
fn policy_issues(c: &Config, issues: &mut Vec<Issue>) {
    let Some(k) = &c.kernel else { return };
    for (part, args) in [("cmdline", &k.cmdline), ("extra_args", &k.extra_args)] {
        for (key, value) in args.iter().flat_map(|a| a.0.iter()) {
            let field = format!("kernel.{part}.{key}");
            // A value already in doubt (a YAML 1.1 word) is reported once, as that.
            if issues.iter().any(|i| i.field == field) {
                continue;
            }
            // What lltune_kernel_args refuses, the reader refuses: the name's characters, a value
            // that would not reach every reader whole (whitespace, quotes), then the rules.
            if let Err(e) = crate::policy::check(key, value.as_deref(), c.safety.allow_dangerous_mitigations) {
                issues.push(Issue::new(field, e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<String> {
        parse(text).1.into_iter().map(|i| i.field).collect()
    }

    #[test]
    fn mitigations_off_unquoted_is_an_error_naming_the_field() {
        let (_, issues) = parse("version: 1\nkernel:\n  cmdline:\n    mitigations: off\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].field, "kernel.cmdline.mitigations");
        assert!(issues[0].message.contains("YAML 1.1"), "{}", issues[0].message);
        let (c, issues) = parse(
            "version: 1\nkernel:\n  cmdline:\n    mitigations: \"off\"\nsafety:\n  allow_dangerous_mitigations: true\n",
        );
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(c.kernel_arg("mitigations"), Some(Some("off")));
    }

    #[test]
    fn seed_spellings_of_per_node_and_rdma_devices_are_read() {
        let (c, issues) = parse(
            "version: 1\nmemory:\n  hugepages:\n    per_node: {0: 4, \"1\": 4, node2: 4}\nrdma:\n  devices: [mlx5_0, {name: mlx5_1, numa_node: 1}]\n",
        );
        assert!(issues.is_empty(), "{issues:?}");
        let hp = c.memory.unwrap().hugepages.unwrap();
        assert_eq!(hp.per_node.keys().collect::<Vec<_>>(), ["0", "1", "node2"]);
        let names: Vec<(String, Option<i64>)> =
            c.rdma.unwrap().devices.into_iter().map(|d| (d.name, d.numa_node)).collect();
        assert_eq!(names, [("mlx5_0".to_string(), None), ("mlx5_1".to_string(), Some(1))]);
        // Bad shapes name their field.
        let (_, issues) = parse("version: 1\nmemory:\n  hugepages:\n    per_node: {[0]: 4}\n");
        assert_eq!(issues[0].field, "memory.hugepages.per_node", "{issues:?}");
        assert!(issues[0].message.contains("nodeN or N"), "{issues:?}");
        let (_, issues) = parse("version: 1\nmemory:\n  hugepages:\n    per_node: {-1: 4}\n");
        assert_eq!(issues[0].field, "memory.hugepages.per_node", "{issues:?}");
        assert!(issues[0].message.ends_with("found the number -1"), "{issues:?}");
        let (_, issues) = parse("version: 1\nmemory:\n  hugepages:\n    per_node: {node0: many}\n");
        assert_eq!(issues[0].field, "memory.hugepages.per_node.node0", "{issues:?}");
        assert!(issues[0].message.contains("expected an integer"), "{issues:?}");
        let (_, issues) = parse("version: 1\nrdma:\n  devices:\n    - {name: mlx5_0, port: 1}\n");
        assert_eq!(issues[0].field, "rdma.devices[0].port", "{issues:?}");
        assert!(issues[0].message.contains("unknown field"), "{issues:?}");
    }

    #[test]
    fn a_real_boolean_where_a_string_is_meant() {
        let (_, issues) = parse("version: 1\nkernel:\n  cmdline:\n    mitigations: false\n");
        assert_eq!(issues[0].field, "kernel.cmdline.mitigations");
        assert!(issues[0].message.contains("quotes"), "{}", issues[0].message);
    }

    #[test]
    fn a_yaml11_word_where_a_boolean_is_meant() {
        let (_, issues) = parse("version: 1\ncpu:\n  turbo: off\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].field, "cpu.turbo");
    }

    #[test]
    fn scalar_where_a_mapping_is_meant_and_unknown_keys() {
        assert_eq!(fields("version: 1\nkernel: 5\n"), ["kernel"]);
        assert_eq!(fields("version: 1\nkernel:\n  cmdline: nohz_full=1\n"), ["kernel.cmdline"]);
        assert_eq!(fields("version: 1\ncpu:\n  isolate_core: 1-3\n"), ["cpu.isolate_core"]);
        assert_eq!(fields("version: 1\nkernel:\n  cmdline:\n    isolcpu: 1-3\n"), ["kernel.cmdline.isolcpu"]);
        assert_eq!(fields("version: 1\nbogus: {}\n"), ["bogus"]);
        assert_eq!(
            fields("version: 1\nnetwork:\n  interfaces:\n    - name: eth0\n      role: fast\n"),
            ["network.interfaces[0].role"]
        );
        assert_eq!(fields("version: 1\nnetwork:\n  sysctl:\n    bogus_name: 1\n"), ["network.sysctl.bogus_name"]);
    }

    #[test]
    fn version_and_broken_documents() {
        assert_eq!(fields(""), ["version"]);
        assert_eq!(fields("version: 2\n"), ["version"]);
        assert_eq!(fields("- 1\n"), [""]);
        assert_eq!(fields("a: [\n"), [""]);
    }

    #[test]
    fn cpu_lists_in_every_accepted_form() {
        let (c, issues) = parse(
            "version: 1\ncpu:\n  isolate_cores: 1-3,5\nirq:\n  avoid_cores_for_irqs: 7\n  manual_affinity:\n    - match: \"ens3f*\"\n      cpus: [0, 8]\n",
        );
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(c.cpu.unwrap().isolate_cores.unwrap().0.to_string(), "1-3,5");
        let irq = c.irq.unwrap();
        assert_eq!(irq.avoid_cores_for_irqs.unwrap().0.to_string(), "7");
        assert_eq!(irq.manual_affinity[0].cpus.0.to_string(), "0,8");
        assert_eq!(fields("version: 1\ncpu:\n  isolate_cores: 1-x\n"), ["cpu.isolate_cores"]);
    }

    #[test]
    fn sysctls_map_seed_names_to_real_keys() {
        let (c, issues) = parse(
            "version: 1\nnetwork:\n  sysctl:\n    busy_poll: 50\n    tcp_timestamps: false\n    file_max: 2097152\n    net.core.dev_weight: 64\nmemory:\n  stat_interval: 10\n  numa_balancing: false\n  mlock:\n    max_map_count: 262144\nkernel:\n  sysctl:\n    timer_migration: 0\n",
        );
        assert!(issues.is_empty(), "{issues:?}");
        let s = c.sysctls();
        let get = |k: &str| s.get(k).map(|(v, p)| (v.as_str(), p.as_str()));
        assert_eq!(get("net.core.busy_poll"), Some(("50", "network.sysctl.busy_poll")));
        assert_eq!(get("net.ipv4.tcp_timestamps"), Some(("0", "network.sysctl.tcp_timestamps")));
        assert_eq!(get("fs.file-max"), Some(("2097152", "network.sysctl.file_max")));
        assert_eq!(get("net.core.dev_weight"), Some(("64", "network.sysctl.net.core.dev_weight")));
        assert_eq!(get("vm.stat_interval"), Some(("10", "memory.stat_interval")));
        assert_eq!(get("kernel.numa_balancing"), Some(("0", "memory.numa_balancing")));
        assert_eq!(get("vm.max_map_count"), Some(("262144", "memory.mlock.max_map_count")));
        assert_eq!(get("kernel.timer_migration"), Some(("0", "kernel.sysctl.timer_migration")));
    }

    #[test]
    fn kernel_args_keep_file_order_and_bare_flags() {
        let (c, issues) = parse(
            "version: 1\nkernel:\n  cmdline:\n    skew_tick: 1\n    nosoftlockup: \"\"\n    nowatchdog:\n    isolcpus: managed_irq,domain,2-3\n  extra_args:\n    my.flag: x\n",
        );
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(
            c.kernel_args(),
            [
                ("skew_tick".to_string(), Some("1".to_string())),
                ("nosoftlockup".into(), None),
                ("nowatchdog".into(), None),
                ("isolcpus".into(), Some("managed_irq,domain,2-3".into())),
                ("my.flag".into(), Some("x".into())),
            ]
        );
    }

    #[test]
    fn safety_defaults_to_false_and_is_strict() {
        let (c, _) = parse("version: 1\n");
        assert!(!c.safety.allow_grub_edit && !c.safety.allow_dangerous_mitigations);
        assert_eq!(fields("version: 1\nsafety:\n  allow_grub_edit: \"yes\"\n"), ["safety.allow_grub_edit"]);
        assert_eq!(fields("version: 1\nsafety:\n  allow_grub_edit: yes\n"), ["safety.allow_grub_edit"]);
    }

    #[test]
    fn null_is_a_bare_flag_only_for_flags() {
        // `idle: null` used to write a bare `idle`: now it is an error naming the field.
        for text in
            ["version: 1\nkernel:\n  cmdline:\n    idle: null\n", "version: 1\nkernel:\n  cmdline:\n    idle: \"\"\n"]
        {
            let (_, issues) = parse(text);
            assert_eq!(issues.len(), 1, "{issues:?}");
            assert_eq!(issues[0].field, "kernel.cmdline.idle");
            assert!(issues[0].message.contains("needs a value"), "{}", issues[0].message);
        }
        let (c, issues) =
            parse("version: 1\nkernel:\n  cmdline:\n    idle: poll\n    nowatchdog: null\n    nosmt: \"\"\n");
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(c.kernel_arg("idle"), Some(Some("poll")));
        assert_eq!(c.kernel_arg("nowatchdog"), Some(None));
        assert_eq!(c.kernel_arg("nosmt"), Some(None));
        // extra_args are any argument: null stays a bare flag there.
        let (c, issues) = parse("version: 1\nkernel:\n  extra_args:\n    my_flag: null\n");
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(c.kernel_arg("my_flag"), Some(None));
    }

    #[test]
    fn the_safety_policy_runs_in_the_reader() {
        let (_, issues) = parse(
            "version: 1\nkernel:\n  extra_args:\n    init: /bin/sh\n    rd.break:\n    tsa: \"off\"\nsafety:\n  allow_dangerous_mitigations: false\n",
        );
        let got: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(got, ["kernel.extra_args.init", "kernel.extra_args.rd.break", "kernel.extra_args.tsa"]);
        assert!(issues[0].message.contains("is refused"), "{}", issues[0].message);
        // Consent (given after the kernel section) unlocks the mitigation, not init=.
        let (_, issues) = parse(
            "version: 1\nkernel:\n  extra_args:\n    init: /bin/sh\n    tsa: \"off\"\nsafety:\n  allow_dangerous_mitigations: true\n",
        );
        let got: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(got, ["kernel.extra_args.init"]);
    }

    #[test]
    fn arguments_the_boot_configuration_cannot_carry_are_refused_by_the_reader() {
        // What lltune_kernel_args would refuse at apply, the audit refuses first, one line each.
        let (_, issues) = parse(
            "version: 1\nkernel:\n  extra_args:\n    a: \"x\\ny\"\n    \"b\\nc\": 1\n    q: \"it's\"\n    ok.arg: 1\n",
        );
        let got: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with("kernel.extra_args.a: ") && got[0].contains("control character"), "{got:?}");
        assert!(got[1].starts_with("kernel.extra_args.b\\nc: ") && got[1].contains("not a kernel parameter name"));
        assert!(got[2].starts_with("kernel.extra_args.q: ") && got[2].contains("'\\''"), "{got:?}");
        assert!(got.iter().all(|l| !l.contains('\n')), "{got:?}");
    }

    #[test]
    fn flow_style_yaml11_words_are_errors_too() {
        let (_, issues) = parse("version: 1\nkernel: {cmdline: {intel_pstate: off}}\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].field, "kernel.cmdline.intel_pstate");
        assert!(issues[0].message.starts_with("`off` (line 2) is a boolean in YAML 1.1"), "{}", issues[0].message);
        let (_, issues) =
            parse("version: 1\ncpu: {turbo: off}\nnetwork: {interfaces: [{name: eth0, offloads: {gro: no}}]}\n");
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["cpu.turbo", "network.interfaces[0].offloads.gro"]);
    }
}
