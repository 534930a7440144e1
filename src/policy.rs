//! The one safety policy for kernel command-line arguments, used by the config reader
//! (`config::parse`), `lltune audit`, `lltune apply` and `lltune_kernel_args`: what is never
//! written, and what needs consent.
//!
//! Three lists, each entry with the reason a person reads when it is refused:
//!
//! - `BOOT_BREAKING`: arguments that decide what boots (init, an emergency shell, a rescue
//!   runlevel), switch off the security modules, or take CPUs, interrupt controllers or memory
//!   away from the kernel. Refused everywhere, always; no flag unlocks them.
//! - `BOOT_LOADER_OWNED`: arguments the boot loader and the kernel packages write (`root=`,
//!   `BOOT_IMAGE`, `initrd`, `ro`/`rw`, ...). Setting one is refused; removing one is refused
//!   (the host would not find its root file system). Removing anything else (`init=` included)
//!   is allowed: removal only brings back the kernel's default.
//! - `MITIGATIONS`: every argument that weakens a CPU vulnerability mitigation or kernel
//!   hardening (the arguments `mitigations=off` stands for in kernel-parameters.txt, and the
//!   per-vulnerability switches of Documentation/admin-guide/hw-vuln/). Refused unless
//!   `allow_dangerous_mitigations: true`.
//!
//! Matching follows the kernel: in a parameter name `-` and `_` are the same character
//! (`kvm-intel.vmentry_l1d_flush` is `kvm_intel.vmentry_l1d_flush`), and a boolean value is
//! read as kstrtobool reads it (`n`, `no`, `N`, `0`, `off`, `of` are all false).

use std::fmt;

/// Why an argument was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Never written: it breaks booting or switches off security.
    BootBreaking,
    /// Owned by the boot loader: never set, never removed.
    BootLoaderOwned,
    /// Weakens a CPU vulnerability mitigation: needs `allow_dangerous_mitigations`.
    Mitigation,
}

/// A refused argument: which one (as written, `key` or `key=value`), why, and what kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub arg: String,
    pub kind: Kind,
    pub reason: &'static str,
    /// True for a removal (`remove: [root]`).
    pub removal: bool,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let arg = &self.arg;
        match (self.kind, self.removal) {
            (_, true) => write!(f, "removing {arg} is refused: {}", self.reason),
            (Kind::BootBreaking, false) => write!(f, "{arg} is refused: {}; lltune never sets it", self.reason),
            (Kind::BootLoaderOwned, false) => write!(
                f,
                "{arg} is refused: {}; it is managed by the boot loader and kernel packages, lltune never sets it",
                self.reason
            ),
            (Kind::Mitigation, false) => write!(
                f,
                "{arg} switches off CPU vulnerability protection ({}): allowed only with allow_dangerous_mitigations: true \
                 (safety.allow_dangerous_mitigations in a config)",
                self.reason
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Which values of an argument a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Any value, and the bare flag.
    Always,
    /// A value kstrtobool reads as false, or `off` (`selinux=0`, `kpti=no`, `nobp=0`).
    False,
    /// Exactly this value (case-insensitive): the parameter compares strings (`mds=off`), so
    /// another spelling is not `off` to the kernel — and `retbleed=nosmt` is a stronger
    /// mitigation, not a false.
    Value(&'static str),
    /// One of these values (case-insensitive).
    OneOf(&'static [&'static str]),
    /// Any value that is not a kstrtobool false (`rd.shell=0` turns the shell off: allowed).
    NotFalse,
}

/// One rule: the argument name, the values it matches, and why.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub key: &'static str,
    pub when: When,
    pub reason: &'static str,
}

const fn rule(key: &'static str, when: When, reason: &'static str) -> Rule {
    Rule { key, when, reason }
}

use When::{Always, False, NotFalse, OneOf, Value};

/// Refused everywhere, always (kernel-parameters.txt; systemd's kernel-command-line(7) and
/// dracut.cmdline(7) for the words the kernel hands on to init and the initramfs).
pub const BOOT_BREAKING: &[Rule] = &[
    // What runs as PID 1 and which target it boots to.
    rule("init", Always, "replaces the init program (init=/bin/sh boots to a root shell with no services)"),
    rule("rdinit", Always, "replaces the program the initramfs runs first"),
    rule("systemd.unit", Always, "boots systemd into another target (emergency.target, rescue.target)"),
    rule("rd.systemd.unit", Always, "boots the initramfs into another target"),
    rule("systemd.debug_shell", NotFalse, "opens a root shell without a password on tty9"),
    rule("rd.systemd.debug_shell", NotFalse, "opens a root shell without a password on tty9 in the initramfs"),
    rule("systemd.confirm_spawn", NotFalse, "makes boot wait for a console confirmation of every unit"),
    rule("systemd.mask", Always, "masks units at boot; a masked mount or network unit stops the host from coming up"),
    rule("rd.systemd.mask", Always, "masks initramfs units at boot"),
    // Words without `=` that the kernel passes to init as its arguments.
    rule("single", Always, "init argument: boots to single-user (rescue) mode"),
    rule("s", Always, "init argument: boots to single-user (rescue) mode"),
    rule("S", Always, "init argument: boots to single-user (rescue) mode"),
    rule("1", Always, "init argument: runlevel 1, single-user (rescue) mode"),
    rule("-s", Always, "init argument: boots to single-user (rescue) mode"),
    rule("0", Always, "init argument: runlevel 0 halts the host at boot (SysV init)"),
    rule("6", Always, "init argument: runlevel 6 reboots the host at boot (SysV init)"),
    rule("emergency", Always, "init argument: boots to the emergency shell"),
    rule("-b", Always, "init argument: boots to the emergency shell"),
    rule("rescue", Always, "init argument: boots to rescue mode"),
    // The initramfs.
    rule("rd.break", Always, "stops the initramfs at a root shell"),
    rule("rd.shell", NotFalse, "drops to a root shell in the initramfs"),
    rule("rd.emergency", Always, "boots the initramfs to an emergency shell, or reboots/halts it on failure"),
    rule("rd.rescue", Always, "boots the initramfs to rescue mode"),
    rule("break", Always, "initramfs-tools: stops the boot at a root shell"),
    rule("noinitrd", Always, "ignores the initramfs the host needs to find its root file system"),
    // Security modules and module signing.
    rule("selinux", False, "switches SELinux off"),
    rule("enforcing", False, "puts SELinux in permissive mode"),
    rule("apparmor", False, "switches AppArmor off"),
    rule("security", Always, "chooses the security module; changing it disables the one the host uses"),
    rule("lsm", Always, "chooses the security modules; changing it disables those the host uses"),
    rule("lockdown", Always, "changes kernel lockdown; unsigned out-of-tree drivers (kernel-bypass NICs) stop loading"),
    rule(
        "module.sig_enforce",
        Always,
        "changes module signature enforcement; unsigned out-of-tree drivers stop loading",
    ),
    // CPUs, interrupt controllers, memory.
    rule("noapic", Always, "disables the IO-APICs: interrupts fall back to the legacy PIC on one CPU"),
    rule("nolapic", Always, "disables the local APICs: no SMP, no per-CPU timers"),
    rule("disableapic", Always, "disables the local APICs (same as nolapic)"),
    rule("noapictimer", Always, "disables the local APIC timer"),
    rule("nosmp", Always, "boots on one CPU only"),
    rule("maxcpus", Always, "brings up only this many CPUs at boot"),
    rule("nr_cpus", Always, "caps the number of CPUs the kernel supports"),
    rule("possible_cpus", Always, "caps the number of CPUs the kernel supports"),
    rule("acpi", Value("off"), "disables ACPI: no CPU, NUMA or interrupt discovery on servers"),
    rule("mem", Always, "caps the memory the kernel uses; with reserved huge pages the host can run out at boot"),
    rule(
        "panic",
        Always,
        "decides whether a host that panics reboots (a loop at boot) or stays down: the fleet's crash policy, not tuning",
    ),
];

/// Set by the boot loader and kernel packages: never set, never removed.
pub const BOOT_LOADER_OWNED: &[Rule] = &[
    rule("root", Always, "names the root file system; without it the host does not boot"),
    rule("BOOT_IMAGE", Always, "the kernel image the boot loader loaded"),
    rule("initrd", Always, "the initramfs the boot loader loads"),
    rule("ro", Always, "mounts the root file system read-only for fsck; the distribution's boot depends on it"),
    rule("rw", Always, "mounts the root file system read-write; the distribution's boot depends on it"),
    rule("rootfstype", Always, "the root file system's type"),
    rule("rootflags", Always, "the root file system's mount options"),
    rule("rootwait", Always, "waits for a slow root device; without it the root may not be found"),
    rule("rd.lvm.lv", Always, "the LVM volumes the initramfs activates to find the root"),
    rule("rd.luks.uuid", Always, "the encrypted volumes the initramfs opens to find the root"),
    rule("rd.md.uuid", Always, "the RAID arrays the initramfs assembles to find the root"),
    rule("resume", Always, "the swap device to resume from"),
];

/// Mitigation- and hardening-weakening arguments: need `allow_dangerous_mitigations`.
/// `mitigations=off` and what it stands for (kernel-parameters.txt, "mitigations="), then
/// the other off switches of Documentation/admin-guide/hw-vuln/ and kernel hardening.
pub const MITIGATIONS: &[Rule] = &[
    rule("mitigations", Value("off"), "every optional mitigation"),
    rule("gather_data_sampling", Value("off"), "Gather Data Sampling (Downfall)"),
    rule("indirect_target_selection", Value("off"), "Indirect Target Selection"),
    rule("kvm.nx_huge_pages", False, "iTLB multihit for KVM guests"),
    rule("l1tf", Value("off"), "L1 Terminal Fault"),
    rule("l1d_flush", Value("off"), "L1D flush on context switch"),
    rule("kvm_intel.vmentry_l1d_flush", False, "L1 Terminal Fault for KVM guests"),
    rule("mds", Value("off"), "Microarchitectural Data Sampling"),
    rule("mmio_stale_data", Value("off"), "Processor MMIO Stale Data"),
    rule("nopti", Always, "Meltdown (page table isolation)"),
    rule("pti", Value("off"), "Meltdown (page table isolation)"),
    rule("kpti", False, "Meltdown (arm64 kernel page table isolation)"),
    rule("nospectre_v1", Always, "Spectre v1"),
    rule("nospectre_v2", Always, "Spectre v2"),
    rule("spectre_v2", Value("off"), "Spectre v2"),
    rule("spectre_v2_user", Value("off"), "Spectre v2 between user processes"),
    rule("nospectre_bhb", Always, "Spectre-BHB (arm64)"),
    rule("spectre_bhi", Value("off"), "Branch History Injection"),
    rule("nospec_store_bypass_disable", Always, "Speculative Store Bypass"),
    rule("spec_store_bypass_disable", Value("off"), "Speculative Store Bypass"),
    rule("ssbd", Value("force-off"), "Speculative Store Bypass (arm64)"),
    rule("reg_file_data_sampling", Value("off"), "Register File Data Sampling"),
    rule("retbleed", Value("off"), "Retbleed"),
    rule("spec_rstack_overflow", Value("off"), "Speculative Return Stack Overflow (Inception)"),
    rule("srbds", Value("off"), "Special Register Buffer Data Sampling"),
    rule("tsa", Value("off"), "Transient Scheduler Attacks"),
    rule("tsx_async_abort", Value("off"), "TSX Asynchronous Abort"),
    rule("tsx", Value("on"), "TSX Asynchronous Abort (TSX switched on)"),
    rule("vmscape", Value("off"), "VMSCAPE (guest-to-host Spectre-BTI)"),
    rule("nobp", False, "branch prediction mitigation (s390)"),
    rule("no_entry_flush", Always, "L1D flush on kernel entry (powerpc)"),
    rule("no_uaccess_flush", Always, "L1D flush on user access (powerpc)"),
    rule("no_rfi_flush", Always, "L1D flush on return from interrupt (powerpc)"),
    rule("no_stf_barrier", Always, "store-forwarding barrier (powerpc)"),
    rule("noibrs", Always, "Indirect Branch Restricted Speculation (older kernels)"),
    rule("noibpb", Always, "Indirect Branch Prediction Barrier (older kernels)"),
    rule("nosmap", Always, "Supervisor Mode Access Prevention"),
    rule("nosmep", Always, "Supervisor Mode Execution Prevention"),
    rule("nokaslr", Always, "kernel address space layout randomisation"),
    rule("rodata", OneOf(&["off", "0", "n", "no"]), "read-only kernel data"),
];

/// kstrtobool's false: `n`/`N`/`0` first, or `of`/`off` (any case of the second letter).
pub fn kstrtobool_false(v: &str) -> bool {
    let b = v.as_bytes();
    match b.first() {
        Some(b'n' | b'N' | b'0') => true,
        Some(b'o' | b'O') => matches!(b.get(1), Some(b'f' | b'F')),
        _ => false,
    }
}

/// False to the kernel's kstrtobool or to systemd/dracut's boolean parsers (`false`, `f`).
fn falsy(v: &str) -> bool {
    kstrtobool_false(v) || v.eq_ignore_ascii_case("false") || v.eq_ignore_ascii_case("f")
}

/// A parameter name as the kernel compares it: `-` and `_` are the same.
fn norm(key: &str) -> String {
    key.replace('-', "_")
}

fn matches(rule: &Rule, key: &str, value: Option<&str>) -> bool {
    // Init's words (`-b`, `-s`) are not parameter names: compare them as written.
    let same = if rule.key.starts_with('-') { rule.key == key } else { norm(rule.key) == norm(key) };
    if !same {
        return false;
    }
    let v = value.unwrap_or("").trim();
    match rule.when {
        Always => true,
        False => value.is_some() && falsy(v),
        NotFalse => !(value.is_some() && falsy(v)),
        Value(want) => value.is_some() && v.eq_ignore_ascii_case(want),
        OneOf(wants) => value.is_some() && wants.iter().any(|w| v.eq_ignore_ascii_case(w)),
    }
}

/// `mitigations=` also takes attack-vector controls (`auto,no_user_kernel`): any `no_*`
/// element switches mitigations off for that vector.
fn weak_mitigations_vector(key: &str, value: Option<&str>) -> bool {
    key == "mitigations" && value.is_some_and(|v| v.split([',', ';']).any(|p| p.trim().starts_with("no_")))
}

fn render(key: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{key}={v}"),
        None => key.to_string(),
    }
}

/// A kernel parameter name: letters, digits, `_`, `-`, `.` (module parameters).
pub fn check_name(k: &str) -> Result<(), String> {
    if k.is_empty() || k.starts_with('-') || !k.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        return Err(format!("{k:?} is not a kernel parameter name (letters, digits, '_', '-', '.' only)"));
    }
    Ok(())
}

/// Values go inside shell and GRUB quoting: refuse what would break out of it.
pub fn check_value(k: &str, v: &str) -> Result<(), String> {
    if let Some(c) = v.chars().find(|c| "\"'`$\\\n\r\0".contains(*c)) {
        return Err(format!("{k}: value {v:?} contains {c:?}, which the boot configuration cannot carry safely"));
    }
    Ok(())
}

/// Whether `key[=value]` may be set. Boot-breaking and boot-loader-owned arguments are
/// refused always; mitigation-weakening ones unless `allow_dangerous_mitigations`.
pub fn check_arg(key: &str, value: Option<&str>, allow_dangerous_mitigations: bool) -> Result<(), Refusal> {
    let refuse = |kind, reason| Err(Refusal { arg: render(key, value), kind, reason, removal: false });
    if let Some(r) = BOOT_BREAKING.iter().find(|r| matches(r, key, value)) {
        return refuse(Kind::BootBreaking, r.reason);
    }
    if let Some(r) = BOOT_LOADER_OWNED.iter().find(|r| matches(r, key, None)) {
        return refuse(Kind::BootLoaderOwned, r.reason);
    }
    if allow_dangerous_mitigations {
        return Ok(());
    }
    if let Some(r) = MITIGATIONS.iter().find(|r| matches(r, key, value)) {
        return refuse(Kind::Mitigation, r.reason);
    }
    if weak_mitigations_vector(key, value) {
        return refuse(Kind::Mitigation, "mitigations for an attack vector");
    }
    Ok(())
}

/// Whether removing `key` (every value of it) may be done: refused for the arguments the boot
/// loader owns. Removing anything else only brings back the kernel's default.
pub fn check_removal(key: &str) -> Result<(), Refusal> {
    match BOOT_LOADER_OWNED.iter().find(|r| matches(r, key, None)) {
        Some(r) => Err(Refusal { arg: key.to_string(), kind: Kind::BootLoaderOwned, reason: r.reason, removal: true }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(arg: &str, allow: bool) -> Option<Kind> {
        let (k, v) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (arg, None),
        };
        check_arg(k, v, allow).err().map(|r| r.kind)
    }

    #[test]
    fn the_issue_cases_are_refused_even_with_consent() {
        for arg in [
            "init=/bin/sh",
            "rdinit=/bin/sh",
            "rd.break",
            "rd.break=pre-mount",
            "rd.shell",
            "rd.emergency=reboot",
            "single",
            "s",
            "S",
            "1",
            "emergency",
            "rescue",
            "systemd.unit=emergency.target",
            "systemd.unit=multi-user.target",
            "systemd.debug_shell",
            "selinux=0",
            "enforcing=0",
            "apparmor=0",
            "security=none",
            "noapic",
            "nolapic",
            "nosmp",
            "maxcpus=1",
            "nr_cpus=2",
            "possible_cpus=4",
            "panic=10",
            "acpi=off",
        ] {
            assert_eq!(refused(arg, true), Some(Kind::BootBreaking), "{arg}");
            assert_eq!(refused(arg, false), Some(Kind::BootBreaking), "{arg}");
        }
    }

    #[test]
    fn security_switches_only_when_off() {
        assert_eq!(refused("selinux=1", false), None);
        assert_eq!(refused("enforcing=1", false), None);
        assert_eq!(refused("apparmor=1", false), None);
        assert_eq!(refused("selinux=no", false), Some(Kind::BootBreaking));
        assert_eq!(refused("rd.shell=0", false), None);
        assert_eq!(refused("systemd.debug_shell=no", false), None);
        assert_eq!(refused("acpi=strict", false), None);
        assert_eq!(refused("acpi=noirq", false), None);
        assert_eq!(refused("systemd.debug_shell=false", false), None);
        assert_eq!(refused("rd.shell=no", false), None);
    }

    #[test]
    fn every_boot_breaking_rule_refuses_its_own_example() {
        for r in BOOT_BREAKING {
            let value = match r.when {
                Always | NotFalse => None,
                False => Some("0"),
                Value(v) => Some(v),
                OneOf(v) => Some(v[0]),
            };
            let e = check_arg(r.key, value, true).unwrap_err();
            assert_eq!(e.kind, Kind::BootBreaking, "{}", r.key);
            assert!(e.to_string().contains(r.key) && e.to_string().contains(r.reason), "{e}");
            assert!(!r.reason.is_empty());
        }
    }

    #[test]
    fn every_mitigation_rule_needs_consent() {
        for r in MITIGATIONS {
            let value = match r.when {
                Always | NotFalse => None,
                False => Some("0"),
                Value(v) => Some(v),
                OneOf(v) => Some(v[0]),
            };
            let e = check_arg(r.key, value, false).unwrap_err();
            assert_eq!(e.kind, Kind::Mitigation, "{}", r.key);
            assert!(e.to_string().contains("allow_dangerous_mitigations"), "{e}");
            assert!(check_arg(r.key, value, true).is_ok(), "{}", r.key);
        }
    }

    #[test]
    fn the_issue_mitigation_cases_and_kernel_spellings() {
        for arg in [
            "mitigations=off",
            "mitigations=OFF",
            "mitigations=auto,no_user_kernel",
            "tsa=off",
            "vmscape=off",
            "indirect_target_selection=off",
            "ssbd=force-off",
            "kpti=n",
            "kpti=no",
            "kpti=0",
            "kpti=off",
            "kvm-intel.vmentry_l1d_flush=never",
            "kvm_intel.vmentry_l1d_flush=never",
            "kvm-intel.vmentry_l1d_flush=0",
            "kvm.nx_huge_pages=off",
            "kvm.nx_huge_pages=0",
            "spec-store-bypass-disable=off",
            "tsx=on",
            "nosmap",
            "nosmep",
            "nopti",
            "pti=off",
            "spectre_v2=off",
            "spectre_bhi=off",
            "retbleed=off",
        ] {
            assert_eq!(refused(arg, false), Some(Kind::Mitigation), "{arg}");
            assert_eq!(refused(arg, true), None, "{arg}");
        }
        for arg in [
            "mitigations=auto",
            "mitigations=auto,nosmt",
            "kpti=1",
            "kpti=on",
            "tsx=off",
            "tsx=auto",
            "spectre_v2=on",
            "mds=full",
            "kvm.nx_huge_pages=force",
            "kvm-intel.vmentry_l1d_flush=always",
            "retbleed=auto,nosmt",
            "isolcpus=1-3",
            "idle=poll",
            "nosoftlockup",
            "nohz_full=1-3",
            "init_on_alloc=0",
            // Stronger or other settings whose words start like a boolean false.
            "retbleed=nosmt",
            "l1tf=flush,nosmt",
            "mds=full,nosmt",
            "rodata=noalias",
            "spectre_v2=0",
            "kvm-intel.vmentry_l1d_flush=cond",
        ] {
            assert_eq!(refused(arg, false), None, "{arg}");
        }
    }

    #[test]
    fn boot_loader_arguments_are_neither_set_nor_removed() {
        for k in ["root", "BOOT_IMAGE", "initrd", "ro", "rw", "rd.lvm.lv"] {
            assert_eq!(check_arg(k, Some("x"), true).unwrap_err().kind, Kind::BootLoaderOwned, "{k}");
            let e = check_removal(k).unwrap_err();
            assert!(e.removal && e.to_string().starts_with(&format!("removing {k} is refused")), "{e}");
        }
        // Removing an argument brings back the kernel's default: fine, init= included.
        for k in ["init", "nosmt", "mitigations", "isolcpus", "rd.break", "single"] {
            assert!(check_removal(k).is_ok(), "{k}");
        }
    }

    #[test]
    fn kstrtobool_reads_false_like_the_kernel() {
        for v in ["n", "N", "no", "No", "0", "off", "Off", "of", "0x0"] {
            assert!(kstrtobool_false(v), "{v}");
        }
        for v in ["y", "yes", "1", "on", "On", "", "auto", "force-off"] {
            assert!(!kstrtobool_false(v), "{v}");
        }
    }

    #[test]
    fn messages_name_the_argument_and_the_reason() {
        let e = check_arg("init", Some("/bin/sh"), true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "init=/bin/sh is refused: replaces the init program (init=/bin/sh boots to a root shell with no services); lltune never sets it"
        );
        let e = check_arg("tsa", Some("off"), false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("tsa=off switches off CPU vulnerability protection (Transient Scheduler Attacks)")
        );
    }
}
