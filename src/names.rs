//! The modules' names, as the collection, the journal, the state files and `lltune apply`
//! call them: one home, low in the layers, so that modules, the engine's persistence and the
//! config translation share each string instead of spelling it again.

pub const SYSCTL: &str = "lltune_sysctl";
pub const KERNEL_ARGS: &str = "lltune_kernel_args";
pub const NIC: &str = "lltune_nic";
pub const IRQ: &str = "lltune_irq";
pub const CPU: &str = "lltune_cpu";
pub const MEMORY: &str = "lltune_memory";
pub const SERVICES: &str = "lltune_services";
pub const LIMITS: &str = "lltune_limits";
pub const THREADS: &str = "lltune_threads";
pub const BYPASS: &str = "lltune_bypass";
pub const TIMESYNC: &str = "lltune_timesync";
pub const LATENCY: &str = "lltune_latency";
pub const ROLLBACK: &str = "lltune_rollback";

/// The order the changing modules run in, for `lltune apply` and for `lltune reapply` alike
/// (docs/config.md): sysctls first, the boot configuration next, then the host's runtime
/// state, NIC before IRQ because changing channels re-creates the queues' IRQs, threads after
/// them (the threaded handlers of those IRQs exist by then), the kernel-bypass profiles after
/// them (files for the applications, which nothing above reads), time sync last (nothing else
/// depends on it). A property of this list, never of a map's insertion order.
pub const ORDER: &[&str] = &[SYSCTL, KERNEL_ARGS, CPU, MEMORY, SERVICES, LIMITS, NIC, IRQ, THREADS, BYPASS, TIMESYNC];
