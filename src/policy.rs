//! The one safety policy for kernel command-line arguments, used by the config reader
//! (`config::parse`), `lltune audit`, `lltune apply` and `lltune_kernel_args`: what is never
//! written, what needs consent, and the huge page reserve a boot line must leave.
//!
//! Three lists, each entry with the reason a person reads when it is refused:
//!
//! - `BOOT_BREAKING`: arguments that decide what boots (init, an emergency shell, a rescue
//!   target), blacklist drivers, switch off the security modules, or take CPUs, interrupt
//!   controllers, the console or memory away. Refused everywhere, always; no flag unlocks them.
//! - `BOOT_LOADER_OWNED`: arguments the boot loader and the kernel packages write (`root=`,
//!   `BOOT_IMAGE`, `initrd`, `ro`/`rw`, the storage the initramfs assembles, ...). Setting one is
//!   refused; removing one is refused. Removing anything else (`init=` included) is allowed:
//!   removal only brings back the default.
//! - `MITIGATIONS`: every argument that weakens a CPU vulnerability mitigation or kernel
//!   hardening. Refused unless `allow_dangerous_mitigations: true`.
//!
//! Each rule decides on the value as the programs that read it will: the kernel, systemd and
//! the initramfs (dracut, initramfs-tools). Where they disagree, or a kernel version reads a
//! value differently from another, the rule takes the reading that refuses:
//!
//! - Names: the kernel compares parameter names with `-` and `_` equal (kernel/params.c
//!   `parameq`), systemd too (`proc_cmdline_key_streq`); a `__setup()` flag is compared as a
//!   prefix of the whole argument (init/main.c `obsolete_checksetup` calls `parameqn` with the
//!   flag's length), so `nosmp_anything` is `nosmp`.
//! - Booleans: lib/kstrtox.c `kstrtobool` reads the first character (`y`/`Y`/`1`, `n`/`N`/`0`,
//!   and `t`/`T`/`f`/`F` since 5.17) or, after `o`/`O`, the second (`on`, `of...`); `kstrtoul`
//!   (selinux=, enforcing=, apparmor=) reads `0`, `00`, `0x0`, `+0` as zero; systemd's
//!   `parse_boolean` takes `0 no n false f off` in any case; dracut's `getargbool` takes only
//!   `0`, `no` (and `off` since 049): any other value, `false` included, is true to it.
//! - Words and lists: most mitigation switches compare the whole value (`strcmp`), some loop
//!   over comma-separated elements (`retbleed=`, `pci=`), `mitigations=` compares a prefix
//!   (`strncmp`, since 6.16: `offanything` is off) and reads `no_*` attack vectors after it. A
//!   rule here reads every comma element as a whole value, in any case.
//! - Splitting: the kernel's `next_arg` (lib/cmdline.c) keeps a double-quoted value with
//!   spaces as one argument, and so does systemd; dracut (`for _o in $CMDLINE`),
//!   initramfs-tools and x86's early `cmdline_find_option` split at every space, quotes or
//!   not. A value with whitespace or a quote in it is therefore refused, except for the few
//!   arguments that take spaces (`dyndbg=`), and then every word of it must pass as an argument
//!   of its own.

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

/// How a rule's name is compared with an argument's (after `-` → `_` on both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// The same name.
    Is,
    /// The argument starts with it: a kernel `__setup()` flag (`nosmp` takes `nosmpX` too).
    Prefix,
    /// The argument's name contains it, in any case (`blacklist`: `module_blacklist`,
    /// `rd.driver.blacklist`, `modprobe.blacklist`, `rdblacklist`, ...).
    Contains,
}

/// Which values of an argument a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Any value, and the bare flag.
    Always,
    /// A value some reader takes as false (`falsy`) or one of the first words (any case),
    /// unless it is exactly one of the second: words the parameter compares before it reads a
    /// boolean (`kvm.nx_huge_pages=force`, `rodata=full` are not false although they start
    /// with `f`; `Force` is, to kstrtobool).
    False(&'static [&'static str], &'static [&'static str]),
    /// Anything but a value every reader takes as false: only `0` and `no` (dracut's
    /// `getargbool` reads `false`, `n`, `OFF` as true). The bare flag is true.
    NotFalse,
    /// A comma element of the value is one of these words, in any case.
    Element(&'static [&'static str]),
    /// A comma element of the value starts with one of these, in any case.
    Starts(&'static [&'static str]),
    /// A console to nowhere: no value, or a device (the name before the first digit or comma)
    /// that is empty, `null` or `ttynull` (kernel/printk/printk.c `console_setup`).
    Nowhere,
}

/// One rule: the argument name, how it is compared, the values it matches, and why.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub key: &'static str,
    pub name: Name,
    pub when: When,
    pub reason: &'static str,
}

const fn rule(key: &'static str, when: When, reason: &'static str) -> Rule {
    Rule { key, name: Name::Is, when, reason }
}

/// A kernel `__setup()` flag: any argument that starts with it.
const fn flag(key: &'static str, reason: &'static str) -> Rule {
    Rule { key, name: Name::Prefix, when: When::Always, reason }
}

use When::{Always, Element, False, NotFalse, Nowhere, Starts};

/// A boolean false, nothing else.
const FALSE: When = False(&[], &[]);

const OFF: When = Element(&["off"]);

/// Refused everywhere, always (kernel-parameters.txt; systemd's kernel-command-line(7),
/// dracut.cmdline(7) and initramfs-tools(7) for the words the kernel hands on).
pub const BOOT_BREAKING: &[Rule] = &[
    // What runs as PID 1, which target it boots to, and what it runs first.
    rule("init", Always, "replaces the init program (init=/bin/sh boots to a root shell with no services)"),
    rule("rdinit", Always, "replaces the program the initramfs runs first"),
    rule("systemd.unit", Always, "boots systemd into another target (emergency.target, rescue.target)"),
    rule("rd.systemd.unit", Always, "boots the initramfs into another target"),
    rule("systemd.debug_shell", NotFalse, "opens a root shell without a password on tty9"),
    rule("rd.systemd.debug_shell", NotFalse, "opens a root shell without a password on tty9 in the initramfs"),
    rule("systemd.crash_shell", NotFalse, "opens a root shell when systemd crashes"),
    rule("systemd.confirm_spawn", NotFalse, "makes boot wait for a console confirmation of every unit"),
    rule("systemd.mask", Always, "masks units at boot; a masked mount or network unit stops the host from coming up"),
    rule("rd.systemd.mask", Always, "masks initramfs units at boot"),
    rule("systemd.wants", Always, "pulls extra units into the boot (debug-shell.service, a rescue target)"),
    rule("rd.systemd.wants", Always, "pulls extra units into the initramfs boot"),
    rule("systemd.run", Always, "runs a command at boot and then powers off or reboots the host"),
    rule("systemd.run_success_action", Always, "powers off or reboots the host after systemd.run="),
    rule("systemd.run_failure_action", Always, "powers off or reboots the host after systemd.run="),
    rule("systemd.setenv", Always, "sets environment variables (LD_PRELOAD included) for every service"),
    rule("systemd.volatile", NotFalse, "mounts the root or /var on tmpfs: the host boots with its state gone"),
    rule("rd.systemd.volatile", NotFalse, "mounts the root or /var on tmpfs: the host boots with its state gone"),
    rule("fstab", FALSE, "stops systemd mounting the file systems of /etc/fstab"),
    rule("rd.fstab", FALSE, "stops the initramfs mounting the file systems of /etc/fstab"),
    // Words without `=` that the kernel passes to init as its arguments (systemd maps them to
    // targets; SysV init to runlevels).
    rule("single", Always, "init argument: boots to single-user (rescue) mode"),
    rule("s", Always, "init argument: boots to single-user (rescue) mode"),
    rule("S", Always, "init argument: boots to single-user (rescue) mode"),
    rule("1", Always, "init argument: runlevel 1, single-user (rescue) mode"),
    rule("2", Always, "init argument: boots to another runlevel (target)"),
    rule("3", Always, "init argument: boots to another runlevel (target)"),
    rule("4", Always, "init argument: boots to another runlevel (target)"),
    rule("5", Always, "init argument: boots to another runlevel (target)"),
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
    rule("rd.cmdline", Always, "makes the initramfs ask for more arguments on the console; boot waits"),
    rule("break", Always, "initramfs-tools: stops the boot at a root shell"),
    flag("noinitrd", "ignores the initramfs the host needs to find its root file system"),
    // Drivers and initcalls kept from loading: a storage or network driver blacklisted at boot
    // leaves the host without its root disk or its NICs.
    Rule { key: "blacklist", name: Name::Contains, when: Always, reason: "keeps drivers or initcalls from loading" },
    Rule { key: "blocklist", name: Name::Contains, when: Always, reason: "keeps drivers or initcalls from loading" },
    Rule { key: "denylist", name: Name::Contains, when: Always, reason: "keeps drivers or initcalls from loading" },
    // Security modules and module signing.
    rule("selinux", FALSE, "switches SELinux off"),
    rule("enforcing", FALSE, "puts SELinux in permissive mode"),
    rule("apparmor", FALSE, "switches AppArmor off"),
    rule("security", Always, "chooses the security module; changing it disables the one the host uses"),
    rule("lsm", Always, "chooses the security modules; changing it disables those the host uses"),
    rule("lockdown", Always, "changes kernel lockdown; unsigned out-of-tree drivers (kernel-bypass NICs) stop loading"),
    rule(
        "module.sig_enforce",
        Always,
        "changes module signature enforcement; unsigned out-of-tree drivers stop loading",
    ),
    // CPUs, interrupt controllers, buses, the console, memory.
    flag("noapictimer", "disables the local APIC timer"),
    flag("noapic", "disables the IO-APICs: interrupts fall back to the legacy PIC on one CPU"),
    flag("nolapic", "disables the local APICs: no SMP, no per-CPU timers"),
    flag("disableapic", "disables the local APICs (same as nolapic)"),
    flag("nox2apic", "disables x2APIC: CPUs with APIC ids above 255 are not brought up"),
    flag("nosmp", "boots on one CPU only"),
    rule("maxcpus", Always, "brings up only this many CPUs at boot"),
    rule("nr_cpus", Always, "caps the number of CPUs the kernel supports"),
    rule("possible_cpus", Always, "caps the number of CPUs the kernel supports"),
    rule("disable_cpu_apicid", Always, "keeps the CPU with this APIC id from being brought up (meant for kdump)"),
    rule("intremap", Starts(&["off"]), "disables interrupt remapping: x2APIC and CPUs above APIC id 255 go with it"),
    rule("acpi", OFF, "disables ACPI: no CPU, NUMA or interrupt discovery on servers"),
    rule("pci", OFF, "disables PCI probing: no NICs, no storage controllers"),
    rule("console", Nowhere, "sends the console to nowhere (ttynull): boot and emergency messages are lost"),
    rule("mem", Always, "caps the memory the kernel uses; with reserved huge pages the host can run out at boot"),
    rule("memmap", Always, "removes or reserves memory ranges; a wrong map stops the host from booting"),
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
    rule("mount.usr", Always, "the /usr file system systemd mounts in the initramfs"),
    rule("mount.usrfstype", Always, "the /usr file system's type"),
    rule("mount.usrflags", Always, "the /usr file system's mount options"),
    rule("rd.lvm", Always, "whether the initramfs activates LVM to find the root"),
    rule("rd.lvm.lv", Always, "the LVM volumes the initramfs activates to find the root"),
    rule("rd.lvm.vg", Always, "the LVM volume groups the initramfs activates to find the root"),
    rule("rd.md", Always, "whether the initramfs assembles RAID arrays to find the root"),
    rule("rd.md.uuid", Always, "the RAID arrays the initramfs assembles to find the root"),
    rule("rd.dm", Always, "whether the initramfs assembles firmware RAID to find the root"),
    rule("rd.luks", Always, "whether the initramfs opens encrypted volumes to find the root"),
    rule("rd.luks.uuid", Always, "the encrypted volumes the initramfs opens to find the root"),
    rule("rd.luks.name", Always, "the encrypted volumes the initramfs opens to find the root"),
    rule("luks.uuid", Always, "the encrypted volumes systemd opens at boot"),
    rule("luks.name", Always, "the encrypted volumes systemd opens at boot"),
    rule("rd.multipath", Always, "whether the initramfs assembles multipath devices to find the root"),
    rule("resume", Always, "the swap device to resume from"),
];

/// Mitigation- and hardening-weakening arguments: need `allow_dangerous_mitigations`.
/// `mitigations=off` and what it stands for (kernel-parameters.txt, "mitigations="), then
/// the other off switches of Documentation/admin-guide/hw-vuln/ and kernel hardening.
pub const MITIGATIONS: &[Rule] = &[
    // kernel/cpu.c: `off` compared as a prefix, then `no_*` attack vectors after a comma.
    rule("mitigations", Starts(&["off", "no_"]), "every optional mitigation, or those of an attack vector"),
    rule("gather_data_sampling", OFF, "Gather Data Sampling (Downfall)"),
    rule("indirect_target_selection", OFF, "Indirect Target Selection"),
    rule("kvm.nx_huge_pages", False(&["never"], &["force", "auto"]), "iTLB multihit for KVM guests"),
    rule("l1tf", OFF, "L1 Terminal Fault"),
    rule("l1d_flush", OFF, "L1D flush on context switch"),
    rule(
        "kvm_intel.vmentry_l1d_flush",
        False(&["never"], &["auto", "cond", "always"]),
        "L1 Terminal Fault for KVM guests",
    ),
    rule("mds", OFF, "Microarchitectural Data Sampling"),
    rule("mmio_stale_data", OFF, "Processor MMIO Stale Data"),
    flag("nopti", "Meltdown (page table isolation)"),
    rule("pti", OFF, "Meltdown (page table isolation)"),
    rule("kpti", FALSE, "Meltdown (arm64 kernel page table isolation)"),
    flag("nospectre_v1", "Spectre v1"),
    flag("nospectre_v2", "Spectre v2"),
    rule("spectre_v2", OFF, "Spectre v2"),
    rule("spectre_v2_user", OFF, "Spectre v2 between user processes"),
    flag("nospectre_bhb", "Spectre-BHB (arm64)"),
    rule("spectre_bhi", OFF, "Branch History Injection"),
    flag("nospec_store_bypass_disable", "Speculative Store Bypass"),
    rule("spec_store_bypass_disable", OFF, "Speculative Store Bypass"),
    rule("ssbd", Element(&["force-off"]), "Speculative Store Bypass (arm64)"),
    rule("reg_file_data_sampling", OFF, "Register File Data Sampling"),
    rule("retbleed", OFF, "Retbleed"),
    rule("spec_rstack_overflow", OFF, "Speculative Return Stack Overflow (Inception)"),
    rule("srbds", OFF, "Special Register Buffer Data Sampling"),
    rule("tsa", OFF, "Transient Scheduler Attacks"),
    rule("tsx_async_abort", OFF, "TSX Asynchronous Abort"),
    rule("tsx", Element(&["on"]), "TSX Asynchronous Abort (TSX switched on)"),
    rule("vmscape", OFF, "VMSCAPE (guest-to-host Spectre-BTI)"),
    rule("nobp", FALSE, "branch prediction mitigation (s390)"),
    flag("no_entry_flush", "L1D flush on kernel entry (powerpc)"),
    flag("no_uaccess_flush", "L1D flush on user access (powerpc)"),
    flag("no_rfi_flush", "L1D flush on return from interrupt (powerpc)"),
    flag("no_stf_barrier", "store-forwarding barrier (powerpc)"),
    flag("noibrs", "Indirect Branch Restricted Speculation (older kernels)"),
    flag("noibpb", "Indirect Branch Prediction Barrier (older kernels)"),
    flag("dis_ucode_ldr", "microcode updates, which carry the mitigations"),
    flag("nosmap", "Supervisor Mode Access Prevention"),
    flag("nosmep", "Supervisor Mode Execution Prevention"),
    flag("nokaslr", "kernel address space layout randomisation"),
    rule("ibt", OFF, "Indirect Branch Tracking (kernel control-flow integrity)"),
    rule("cfi", OFF, "kernel control-flow integrity"),
    rule("rodata", False(&[], &["full", "noalias"]), "read-only kernel data"),
];

/// kstrtobool's false, in any kernel version: `n`/`N`/`0`/`f`/`F` first (`f` since 5.17),
/// or `o`/`O` then `f`/`F` (`off`, `of`).
pub fn kstrtobool_false(v: &str) -> bool {
    let b = v.as_bytes();
    match b.first() {
        Some(b'n' | b'N' | b'0' | b'f' | b'F') => true,
        Some(b'o' | b'O') => matches!(b.get(1), Some(b'f' | b'F')),
        _ => false,
    }
}

/// Whether lib/kstrtox.c `kstrtoul(v, 0, ...)` reads zero: an optional `+`, then `0`s in
/// decimal or octal, or `0x` and `0`s in hex (`0`, `00`, `+0`, `0x0`).
pub fn kstrtoul_zero(v: &str) -> bool {
    let s = v.strip_prefix('+').unwrap_or(v);
    let s = s.strip_suffix('\n').unwrap_or(s);
    let digits = match s.get(..2) {
        Some("0x" | "0X") if s.len() > 2 => &s[2..],
        _ => s,
    };
    !digits.is_empty() && digits.bytes().all(|b| b == b'0')
}

/// False to one of the readers: kstrtobool (any version), kstrtoul's zero, systemd's
/// `parse_boolean` (`false`, `f`, `no`, `n`, `off`, `0`: each already a kstrtobool false).
pub fn falsy(v: &str) -> bool {
    kstrtobool_false(v) || kstrtoul_zero(v)
}

/// A parameter name as the kernel and systemd compare it: `-` and `_` are the same.
fn norm(key: &str) -> String {
    key.replace('-', "_")
}

/// One byte of a name as the kernel compares it: `-` is `_`.
fn dash(b: u8) -> u8 {
    if b == b'-' { b'_' } else { b }
}

/// `key` starts with `prefix`, `-` and `_` the same (no allocation: a value's every word is
/// matched against every rule).
fn starts_with_param(key: &[u8], prefix: &[u8]) -> bool {
    key.len() >= prefix.len() && key.iter().zip(prefix).all(|(a, b)| dash(*a) == dash(*b))
}

fn name_matches(rule: &Rule, key: &str) -> bool {
    // Init's words (`-b`, `-s`) are not parameter names: compare them as written.
    if rule.key.starts_with('-') {
        return rule.key == key;
    }
    let (r, k) = (rule.key.as_bytes(), key.as_bytes());
    match rule.name {
        Name::Is => k.len() == r.len() && starts_with_param(k, r),
        Name::Prefix => starts_with_param(k, r),
        Name::Contains => (0..k.len().saturating_sub(r.len()) + 1)
            .any(|i| k.len() >= r.len() && k[i..].iter().zip(r).all(|(a, b)| dash(a.to_ascii_lowercase()) == dash(*b))),
    }
}

fn value_matches(when: When, value: Option<&str>) -> bool {
    let elements = || value.into_iter().flat_map(|v| v.split(','));
    let is = |e: &str, words: &[&str]| words.iter().any(|w| e.eq_ignore_ascii_case(w));
    match when {
        Always => true,
        // The words read before the boolean are compared as the kernel does (strcmp,
        // sysfs_streq): `rodata=Full` is not `full`, and kstrtobool reads its `F` as false.
        False(words, before) => value.is_some_and(|v| !before.contains(&v) && (falsy(v) || is(v, words))),
        NotFalse => !value.is_some_and(|v| v == "0" || v == "no"),
        Element(words) => elements().any(|e| is(e, words)),
        Starts(prefixes) => {
            elements().any(|e| prefixes.iter().any(|p| e.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p))))
        }
        Nowhere => value.is_none_or(|v| {
            // console_setup cuts the name at the first digit or comma (`ttyS0,115200`).
            let device = &v[..v.find(|c: char| c.is_ascii_digit() || c == ',').unwrap_or(v.len())];
            device.is_empty() || device.eq_ignore_ascii_case("null") || device.eq_ignore_ascii_case("ttynull")
        }),
    }
}

fn matches(rule: &Rule, key: &str, value: Option<&str>) -> bool {
    name_matches(rule, key) && value_matches(rule.when, value)
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

/// Arguments whose value may hold spaces (written double-quoted): dynamic debug queries
/// (`dyndbg="file a.c +p"`, `<module>.dyndbg=`) and `acpi_osi="Windows 2012"`.
pub fn takes_whitespace(key: &str) -> bool {
    let k = norm(key);
    k == "dyndbg" || k.ends_with(".dyndbg") || k == "acpi_osi"
}

/// Characters GRUB's script reader (grub.cfg, where grub-mkconfig copies the arguments)
/// takes as its own outside quotes: `;` ends the `linux` command and starts another.
const GRUB_METACHARACTERS: &str = ";&|<>{}";

/// Whether a value can be written as one argument that every reader sees whole: ASCII (the
/// kernel's `isspace` takes byte 0xa0 for a space), no control character, no quote, `$`,
/// backquote or backslash (shell and GRUB quoting), no whitespace unless the argument takes it,
/// no GRUB metacharacter unless the value is written quoted. The words of a value with spaces
/// must each pass `check_arg` as arguments: dracut and x86's early parser read them so.
pub fn check_value(k: &str, v: &str, allow_dangerous_mitigations: bool) -> Result<(), String> {
    if let Some(c) = v.chars().find(|c| c.is_control()) {
        return Err(format!("{k}: the value contains the control character {c:?}"));
    }
    if let Some(c) = v.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "{k}: value {v:?} contains {c:?}, outside ASCII: the kernel's parser takes byte 0xa0 for a space, so such a value can split into other arguments"
        ));
    }
    if let Some(c) = v.chars().find(|c| "\"'`$\\".contains(*c)) {
        return Err(format!("{k}: value {v:?} contains {c:?}, which the boot configuration cannot carry safely"));
    }
    let spaced = v.contains(' ');
    if spaced && !takes_whitespace(k) {
        return Err(format!(
            "{k}: value {v:?} contains whitespace: dracut, initramfs-tools and x86's early parser split the command line at every space, \
             quotes or not, and would read the words after it as arguments of their own; {k} takes no spaces"
        ));
    }
    let quoted = spaced && takes_whitespace(k);
    if let Some(c) = v.chars().find(|c| GRUB_METACHARACTERS.contains(*c)).filter(|_| !quoted) {
        return Err(format!(
            "{k}: value {v:?} contains {c:?}, which GRUB's script reader takes as its own in an unquoted value"
        ));
    }
    if spaced {
        for word in v.split(' ').filter(|w| !w.is_empty()) {
            let (wk, wv) = match word.split_once('=') {
                Some((a, b)) => (a, Some(b)),
                None => (word, None),
            };
            check_arg(wk, wv, allow_dangerous_mitigations).map_err(|e| {
                format!("{k}: the word {word:?} of the value is read as an argument of its own by dracut and x86's early parser: {e}")
            })?;
        }
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
    Ok(())
}

/// The whole decision on one argument to write: its name, its value's spelling, then the
/// rules. The message names the argument.
pub fn check(key: &str, value: Option<&str>, allow_dangerous_mitigations: bool) -> Result<(), String> {
    check_name(key)?;
    if let Some(v) = value {
        check_value(key, v, allow_dangerous_mitigations)?;
    }
    check_arg(key, value, allow_dangerous_mitigations).map_err(|e| e.to_string())
}

/// Whether removing `key` (every value of it) may be done: refused for the arguments the boot
/// loader owns. Removing anything else only brings back the kernel's default.
pub fn check_removal(key: &str) -> Result<(), Refusal> {
    match BOOT_LOADER_OWNED.iter().find(|r| matches(r, key, None)) {
        Some(r) => Err(Refusal { arg: key.to_string(), kind: Kind::BootLoaderOwned, reason: r.reason, removal: true }),
        None => Ok(()),
    }
}

// ---- The huge page reserve ----

/// The share of memory huge pages must leave to the kernel and everything else: the larger of
/// `OS_RESERVE_PERCENT` % of the host's memory and `OS_RESERVE_MIN_KB` host-wide, and
/// `OS_RESERVE_PERCENT` % of each NUMA node's memory on that node. Pages reserved past it
/// starve the page cache, slab and every process that does not use huge pages: the host
/// swaps, OOM-kills or fails to boot (boot-time pages are taken before init runs).
pub const OS_RESERVE_PERCENT: u64 = 10;
/// The host-wide minimum of that reserve: 2 GiB.
pub const OS_RESERVE_MIN_KB: u64 = 2 << 20;

pub fn os_reserve_kb(mem_kb: u64) -> u64 {
    (mem_kb / 100 * OS_RESERVE_PERCENT).max(OS_RESERVE_MIN_KB)
}

pub fn node_reserve_kb(mem_kb: u64) -> u64 {
    mem_kb / 100 * OS_RESERVE_PERCENT
}

/// The kernel's memparse (lib/cmdline.c) in kB: the number as `simple_strtoull` reads it with
/// base 0 (`0x` then a hex digit: hex; any other leading `0`: octal; else decimal), then one
/// optional K/M/G/T/P/E suffix in either case. The kernel ignores text after that and wraps an
/// overflow; here both are `None`, as is a size that is not a whole number of kB (no huge page
/// size is), so a value reads the same to the kernel and to lltune or is refused.
pub fn memparse_kb(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let (radix, digits) = match b {
        [b'0', x, h, ..] if x.eq_ignore_ascii_case(&b'x') && h.is_ascii_hexdigit() => (16, &s[2..]),
        [b'0', ..] => (8, s),
        _ => (10, s),
    };
    let end = digits.find(|c: char| !c.is_digit(radix)).unwrap_or(digits.len());
    let (num, unit) = digits.split_at(end);
    if num.is_empty() {
        return None;
    }
    let n = u64::from_str_radix(num, radix).ok()?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        "E" => 60,
        _ => return None,
    };
    let bytes = n.checked_mul(1u64 << shift)?;
    (bytes % 1024 == 0).then_some(bytes / 1024)
}

/// Huge pages one `hugepages=` reserves at boot: of `size_kb`, `total` pages, `per_node`
/// when given as `node:count,...` (mm/hugetlb.c `hugepages_setup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootHugepages {
    pub size_kb: u64,
    pub total: u64,
    pub per_node: Vec<(u32, u64)>,
}

/// A huge page argument that does not parse: its key and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugepageArgError {
    pub key: &'static str,
    pub message: String,
}

/// The huge pages a command line reserves at boot, read as mm/hugetlb.c does: each
/// `hugepages=` counts pages of the size of the `hugepagesz=` before it, or of the default
/// size (`default_hugepagesz=` anywhere on the line, else 2 MB) when none comes before; a
/// count is a number or `node:count,...`. Every count is added, even one the kernel would
/// ignore as a repeat: the estimate errs high.
pub fn boot_hugepages<'a>(
    args: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<Vec<BootHugepages>, HugepageArgError> {
    let args: Vec<(&str, Option<&str>)> = args.into_iter().collect();
    let is = |k: &str, name: &str| k.len() == name.len() && starts_with_param(k.as_bytes(), name.as_bytes());
    let size = |key: &'static str, v: Option<&str>| {
        let v = v.unwrap_or("");
        match memparse_kb(v) {
            Some(kb) if kb > 0 => Ok(kb),
            _ => Err(HugepageArgError { key, message: format!("`{v}` is not a page size (e.g. 2M, 1G)") }),
        }
    };
    let mut default_kb = 2048;
    for (k, v) in &args {
        if is(k, "default_hugepagesz") {
            default_kb = size("default_hugepagesz", *v)?;
        }
    }
    let mut out = Vec::new();
    let mut current: Option<u64> = None;
    for (k, v) in &args {
        if is(k, "hugepagesz") {
            current = Some(size("hugepagesz", *v)?);
        } else if is(k, "hugepages") {
            let count = v.unwrap_or("");
            let bad = || HugepageArgError {
                key: "hugepages",
                message: format!("`{count}` is not a page count or a list of node:count"),
            };
            let mut per_node = Vec::new();
            let total = if count.contains(':') {
                for part in count.split(',') {
                    let (n, c) = part.split_once(':').ok_or_else(bad)?;
                    per_node.push((n.parse().map_err(|_| bad())?, c.parse().map_err(|_| bad())?));
                }
                per_node.iter().fold(0u64, |a: u64, (_, c)| a.saturating_add(*c))
            } else {
                count.parse::<u64>().map_err(|_| bad())?
            };
            out.push(BootHugepages { size_kb: current.unwrap_or(default_kb), total, per_node });
            current = None;
        }
    }
    Ok(out)
}

fn gib(kb: u64) -> String {
    format!("{:.1} GiB", kb as f64 / (1u64 << 20) as f64)
}

/// Why `kb` of huge pages is too much for a host of `mem_kb`, or `None` when it leaves the
/// OS its reserve. `what` describes the pages (`16 × 1048576 kB = 16777216 kB at boot`).
pub fn host_reserve_error(what: &str, kb: u64, mem_kb: u64) -> Option<String> {
    let reserve = os_reserve_kb(mem_kb);
    let limit = mem_kb.saturating_sub(reserve);
    (kb > limit).then(|| {
        format!(
            "{what}: the host has {mem_kb} kB ({}); huge pages must leave the OS at least {reserve} kB ({}: the larger of {OS_RESERVE_PERCENT}% and 2 GiB), so at most {limit} kB",
            gib(mem_kb),
            gib(reserve)
        )
    })
}

/// The same for one NUMA node of `node_kb`.
pub fn node_reserve_error(pages: u64, size_kb: u64, node: u32, node_kb: u64) -> Option<String> {
    let kb = pages.saturating_mul(size_kb);
    let reserve = node_reserve_kb(node_kb);
    let limit = node_kb.saturating_sub(reserve);
    (kb > limit).then(|| {
        format!(
            "{pages} × {size_kb} kB = {kb} kB on node {node}: the node has {node_kb} kB ({}); huge pages must leave it at least {reserve} kB ({OS_RESERVE_PERCENT}%), so at most {limit} kB",
            gib(node_kb)
        )
    })
}

/// The boot reservations of a command line against the host's memory (`mem_kb`) and its
/// NUMA nodes (`nodes`: id → kB): every message for what leaves the OS less than its reserve.
/// The sizes add up host-wide (each size is its own pool).
pub fn check_boot_hugepages(boot: &[BootHugepages], mem_kb: u64, nodes: &[(u32, u64)]) -> Vec<String> {
    let mut errors = Vec::new();
    let total_kb = boot.iter().fold(0u64, |a, b| a.saturating_add(b.total.saturating_mul(b.size_kb)));
    let what = boot.iter().map(|b| format!("{} × {} kB", b.total, b.size_kb)).collect::<Vec<_>>().join(" + ");
    if let Some(e) = host_reserve_error(&format!("{what} = {total_kb} kB at boot"), total_kb, mem_kb) {
        errors.push(e);
    }
    for b in boot {
        for (id, pages) in &b.per_node {
            match nodes.iter().find(|(n, _)| n == id) {
                Some((_, node_kb)) => errors.extend(node_reserve_error(*pages, b.size_kb, *id, *node_kb)),
                None if !nodes.is_empty() => errors.push(format!("this host has no NUMA node {id}")),
                None => {}
            }
        }
    }
    errors
}
#[cfg(test)]
mod tests {
    use super::*;

    /// A value each kind of rule matches.
    fn example(when: When) -> Option<&'static str> {
        match when {
            Always | NotFalse => None,
            False(..) => Some("0"),
            Element(w) | Starts(w) => Some(w[0]),
            Nowhere => Some("null"),
        }
    }

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
        assert_eq!(refused("rd.shell=no", false), None);
        // dracut's getargbool reads every value but 0 and no (off since 049) as true.
        assert_eq!(refused("rd.shell=false", false), Some(Kind::BootBreaking));
        assert_eq!(refused("rd.shell=n", false), Some(Kind::BootBreaking));
        assert_eq!(refused("systemd.debug_shell=tty3", false), Some(Kind::BootBreaking));
    }

    #[test]
    fn every_boot_breaking_rule_refuses_its_own_example() {
        for r in BOOT_BREAKING {
            let value = example(r.when);
            let e = check_arg(r.key, value, true).unwrap_err();
            assert_eq!(e.kind, Kind::BootBreaking, "{}", r.key);
            assert!(e.to_string().contains(r.key) && e.to_string().contains(r.reason), "{e}");
            assert!(!r.reason.is_empty());
        }
    }

    #[test]
    fn every_mitigation_rule_needs_consent() {
        for r in MITIGATIONS {
            let value = example(r.when);
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
        // `f...` is false since 5.17 (t/f added): `force-off` to kstrtobool is false.
        assert!(kstrtobool_false("force-off") && kstrtobool_false("false"));
        for v in ["y", "yes", "1", "on", "On", "", "auto", "true"] {
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
