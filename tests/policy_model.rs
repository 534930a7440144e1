//! The kernel-argument policy (src/policy.rs) against a small model of the programs that read
//! a command line, over generated spellings: case, `-`/`_`, prefixes, comma lists, boolean
//! spellings, quotes, whitespace. The model is written here from the parsers' sources, each
//! function naming the one it follows, and shares no table or function with the policy.
//!
//! What is proven, for every generated argument, written as lltune writes it
//! (`KernelArg::render`) and read back by every reader:
//! 1. whatever breaks the boot to some reader is refused, with or without consent; whatever
//!    weakens a mitigation to some reader is refused without consent;
//! 2. a refusal has a reason: the value cannot be written whole (its spelling), or a loose
//!    reading of it (another case, one comma element, another version's parser) is dangerous;
//! 3. an argument the policy lets through reaches the kernel and systemd as exactly itself,
//!    and every word the word-splitting readers see is harmless.
//!
//! See: issue 17, "The boot-argument guard matches strings; the kernel parses values".

use lltune::facts::kernel::KernelArg;
use lltune::policy;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Readers: how each program splits the written line into (name, value) pairs.

/// lib/ctype.c: the kernel's isspace also takes 0xa0 (Latin-1 no-break space).
fn kernel_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

fn pair(param: &[u8], val: Option<&[u8]>) -> (String, Option<String>) {
    (String::from_utf8_lossy(param).into_owned(), val.map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// kernel/params.c `parse_args` calling lib/cmdline.c `next_arg`: a leading quote opens a
/// quoted argument, quotes toggle "inside", the first `=` splits, a quote right after `=` and
/// the final quote are dropped; a bare `--` ends the kernel's part (the rest goes to init).
fn kernel_reader(line: &[u8]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        while rest.first().is_some_and(|b| kernel_isspace(*b)) {
            rest = &rest[1..];
        }
        if rest.is_empty() {
            return out;
        }
        let mut a = rest;
        let (mut in_quote, mut quoted) = (false, false);
        if a[0] == b'"' {
            a = &a[1..];
            in_quote = true;
            quoted = true;
        }
        let mut equals = None;
        let mut i = 0;
        while i < a.len() {
            if kernel_isspace(a[i]) && !in_quote {
                break;
            }
            if equals.is_none() && a[i] == b'=' {
                equals = Some(i);
            }
            if a[i] == b'"' {
                in_quote = !in_quote;
            }
            i += 1;
        }
        let last_quote = i > 0 && a[i - 1] == b'"';
        let (param, val): (&[u8], Option<&[u8]>) = match equals {
            None => (&a[..if quoted && last_quote { i - 1 } else { i }], None),
            Some(e) => {
                let (mut start, mut end) = (e + 1, i);
                if a.get(e + 1) == Some(&b'"') {
                    start += 1;
                    if last_quote {
                        end = i - 1;
                    }
                }
                if quoted && last_quote {
                    end = i - 1;
                }
                (&a[..e], Some(&a[start.min(end)..end]))
            }
        };
        if val.is_none() && param == b"--" {
            // Everything after goes to init as its arguments: words.
            let init = &a[i..];
            for w in init.split(|b| kernel_isspace(*b)).filter(|w| !w.is_empty()) {
                out.push(pair(w, None));
            }
            return out;
        }
        out.push(pair(param, val));
        rest = &a[i..];
    }
}

/// dracut's `for _o in $CMDLINE` (modules.d/99base/dracut-lib.sh `_dogetarg`), initramfs-tools'
/// `for x in $(cat /proc/cmdline)`, and x86's early `cmdline_find_option` (arch/x86/lib/cmdline.c,
/// `myisspace`: every byte up to ' '): words split at spaces, quotes kept as characters; a
/// word's name is what comes before its first `=`.
fn word_reader(line: &[u8]) -> Vec<(String, Option<String>)> {
    line.split(|b| *b <= b' ')
        .filter(|w| !w.is_empty())
        .map(|w| match w.iter().position(|b| *b == b'=') {
            Some(e) => pair(&w[..e], Some(&w[e + 1..])),
            None => pair(w, None),
        })
        .collect()
}

/// systemd's proc_cmdline parsing (`extract_first_word` with EXTRACT_UNQUOTE|EXTRACT_RELAX):
/// whitespace " \t\n\r" separates words outside quotes; single and double quotes group and
/// are removed; then the name is what comes before the first `=`.
fn systemd_reader(line: &[u8]) -> Vec<(String, Option<String>)> {
    let mut words: Vec<Vec<u8>> = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    let mut quote: Option<u8> = None;
    for &b in line {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => cur.get_or_insert_with(Vec::new).push(b),
            None if b == b'"' || b == b'\'' => {
                quote = Some(b);
                cur.get_or_insert_with(Vec::new);
            }
            None if matches!(b, b' ' | b'\t' | b'\n' | b'\r') => words.extend(cur.take()),
            None => cur.get_or_insert_with(Vec::new).push(b),
        }
    }
    words.extend(cur);
    words
        .iter()
        .map(|w| match w.iter().position(|b| *b == b'=') {
            Some(e) => pair(&w[..e], Some(&w[e + 1..])),
            None => pair(w, None),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Value parsers.

/// lib/kstrtox.c `kstrtobool` as of 5.17 (`t`/`f` added); `old` is the earlier one.
fn kstrtobool(v: &str, old: bool) -> Option<bool> {
    let b = v.as_bytes();
    match b.first()? {
        b'y' | b'Y' | b'1' => Some(true),
        b't' | b'T' if !old => Some(true),
        b'n' | b'N' | b'0' => Some(false),
        b'f' | b'F' if !old => Some(false),
        b'o' | b'O' => match b.get(1)? {
            b'n' | b'N' => Some(true),
            b'f' | b'F' => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// lib/kstrtox.c `kstrtoul(s, 0, ...)`: optional `+`, `0x` hex (when a hex digit follows),
/// leading `0` octal, else decimal; every character consumed.
fn kstrtoul(v: &str) -> Option<u64> {
    let s = v.strip_prefix('+').unwrap_or(v);
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.chars().next().is_some_and(|c| c.is_ascii_hexdigit()) { (16, h) } else { (8, s) }
    } else if s.starts_with('0') {
        (8, s)
    } else {
        (10, s)
    };
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, radix).ok().filter(|_| digits.chars().all(|c| c.is_digit(radix)))
}

/// systemd's `parse_boolean` (src/basic/parse-util.c).
fn parse_boolean(v: &str) -> Option<bool> {
    let any = |ws: &[&str]| ws.iter().any(|w| v.eq_ignore_ascii_case(w));
    if any(&["1", "yes", "y", "true", "t", "on"]) {
        Some(true)
    } else if any(&["0", "no", "n", "false", "f", "off"]) {
        Some(false)
    } else {
        None
    }
}

/// dracut's `getargbool` on a present argument: a bare flag is "1"; false only for `0`, `no`
/// and, since 049, `off` (`new`).
fn dracut_true(v: Option<&str>, new: bool) -> bool {
    let off = matches!(v, Some("0") | Some("no")) || (new && v == Some("off"));
    !off
}

/// kernel/params.c `parameq`: names equal with `-` and `_` the same.
fn parameq(a: &str, b: &str) -> bool {
    parameq_bytes(a.as_bytes(), b.as_bytes())
}

fn parameq_bytes(a: &[u8], b: &[u8]) -> bool {
    let dash = |c: u8| if c == b'-' { b'_' } else { c };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| dash(*x) == dash(*y))
}

/// init/main.c `obsolete_checksetup`: `parameqn(line, flag, strlen(flag))`, a prefix of the
/// whole argument.
fn setup_prefix(line: &str, flag: &str) -> bool {
    line.len() >= flag.len() && parameq_bytes(&line.as_bytes()[..flag.len()], flag.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// What each argument does, to the program that acts on it.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Effect {
    breaks: bool,
    weakens: bool,
}

/// Boolean readings of one value: strict is the parameter's own parser; loose is every
/// boolean parser of every version (what a rule that serves all readers must assume).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Loose,
}

const KERNEL_FLAGS_BREAK: &[&str] =
    &["nosmp", "noapic", "nolapic", "disableapic", "noapictimer", "nox2apic", "noinitrd"];
const KERNEL_FLAGS_WEAK: &[&str] = &[
    "nopti",
    "nospectre_v1",
    "nospectre_v2",
    "nospectre_bhb",
    "nospec_store_bypass_disable",
    "nosmap",
    "nosmep",
    "nokaslr",
    "noibrs",
    "noibpb",
    "no_entry_flush",
    "no_uaccess_flush",
    "no_rfi_flush",
    "no_stf_barrier",
    "dis_ucode_ldr",
];
/// Break with any value (`__setup("name=")`, module parameters, initramfs names).
const ANY_VALUE_BREAK: &[&str] = &[
    "init",
    "rdinit",
    "maxcpus",
    "nr_cpus",
    "possible_cpus",
    "disable_cpu_apicid",
    "mem",
    "memmap",
    "panic",
    "security",
    "lsm",
    "lockdown",
    "module.sig_enforce",
    "module_blacklist",
    "initcall_blacklist",
    "modprobe.blacklist",
    "rd.driver.blacklist",
    "rd.driver.blocklist",
    "rdblacklist",
    "blacklist",
    "root",
    "rootfstype",
    "rootflags",
    "initrd",
    "resume",
    "BOOT_IMAGE",
    "rd.lvm.lv",
    "rd.lvm",
    "rd.luks.uuid",
    "rd.md",
    "mount.usr",
    "systemd.unit",
    "rd.systemd.unit",
    "systemd.mask",
    "systemd.wants",
    "systemd.run",
    "systemd.setenv",
    "rd.cmdline",
];
/// Break present at all, bare or with a value (dracut's `getarg` finds both).
const PRESENT_BREAK: &[&str] = &["rd.break", "rd.emergency", "break", "ro", "rw", "rootwait"];
/// Words systemd and SysV init act on when bare (systemd's runlevel and special-unit maps).
const INIT_WORDS: &[&str] =
    &["single", "s", "S", "1", "2", "3", "4", "5", "0", "6", "emergency", "-b", "rescue", "-s", "rd.rescue"];
/// A true boolean, a tty or a mode switches them on; bare is on.
const SYSTEMD_ON: &[&str] = &[
    "systemd.debug_shell",
    "rd.systemd.debug_shell",
    "systemd.crash_shell",
    "systemd.confirm_spawn",
    "systemd.volatile",
];
/// Break when false to systemd.
const SYSTEMD_OFF: &[&str] = &["fstab", "rd.fstab"];
/// Break when kstrtoul reads 0.
const ZERO_BREAK: &[&str] = &["selinux", "enforcing", "apparmor"];
/// Weaken when kstrtobool reads false.
const BOOL_WEAK: &[&str] = &["kpti", "nobp"];
/// Weaken when the whole value (strcmp) is the word.
const WORD_WEAK: &[(&str, &str)] = &[
    ("gather_data_sampling", "off"),
    ("indirect_target_selection", "off"),
    ("l1tf", "off"),
    ("mds", "off"),
    ("mmio_stale_data", "off"),
    ("pti", "off"),
    ("spectre_v2", "off"),
    ("spectre_v2_user", "off"),
    ("spectre_bhi", "off"),
    ("spec_store_bypass_disable", "off"),
    ("ssbd", "force-off"),
    ("reg_file_data_sampling", "off"),
    ("spec_rstack_overflow", "off"),
    ("srbds", "off"),
    ("tsa", "off"),
    ("tsx_async_abort", "off"),
    ("tsx", "on"),
    ("vmscape", "off"),
    ("ibt", "off"),
];

fn is_false(v: &str, mode: Mode, own: impl Fn(&str) -> Option<bool>) -> bool {
    match mode {
        Mode::Strict => own(v) == Some(false),
        Mode::Loose => {
            own(v) == Some(false)
                || kstrtobool(v, false) == Some(false)
                || kstrtobool(v, true) == Some(false)
                || kstrtoul(v) == Some(0)
                || parse_boolean(v) == Some(false)
        }
    }
}

/// The effect of one (name, value) a reader produced.
fn effect(key: &str, value: Option<&str>, mode: Mode) -> Effect {
    let line = match value {
        Some(v) => format!("{key}={v}"),
        None => key.to_string(),
    };
    let is = |name: &str| parameq(key, name);
    let mut e = Effect::default();
    let brk = |e: &mut Effect| e.breaks = true;
    // Kernel flags: a prefix of the whole argument.
    if KERNEL_FLAGS_BREAK.iter().any(|f| setup_prefix(&line, f)) {
        brk(&mut e);
    }
    if KERNEL_FLAGS_WEAK.iter().any(|f| setup_prefix(&line, f)) {
        e.weakens = true;
    }
    if ANY_VALUE_BREAK.iter().any(|n| is(n)) && (value.is_some() || mode == Mode::Loose) {
        brk(&mut e);
    }
    if PRESENT_BREAK.iter().any(|n| is(n)) {
        brk(&mut e);
    }
    if INIT_WORDS.contains(&key) && (value.is_none() || mode == Mode::Loose) {
        brk(&mut e);
    }
    if SYSTEMD_ON.iter().any(|n| is(n)) {
        let off = value.is_some_and(|v| match mode {
            Mode::Strict => parse_boolean(v) == Some(false),
            // Every reader must read false: dracut's, old and new, too.
            Mode::Loose => parse_boolean(v) == Some(false) && !dracut_true(Some(v), false),
        });
        if !off {
            brk(&mut e);
        }
    }
    if is("rd.shell") && (dracut_true(value, false) || dracut_true(value, true)) {
        brk(&mut e);
    }
    if SYSTEMD_OFF.iter().any(|n| is(n)) && value.is_some_and(|v| is_false(v, mode, parse_boolean)) {
        brk(&mut e);
    }
    if ZERO_BREAK.iter().any(|n| is(n)) && value.is_some_and(|v| is_false(v, mode, |v| kstrtoul(v).map(|n| n != 0))) {
        brk(&mut e);
    }
    if BOOL_WEAK.iter().any(|n| is(n)) && value.is_some_and(|v| is_false(v, mode, |v| kstrtobool(v, false))) {
        e.weakens = true;
    }
    // Loose: another case, and each comma element read as the whole value.
    let readings: Vec<String> = match (value, mode) {
        (None, _) => Vec::new(),
        (Some(v), Mode::Strict) => vec![v.to_string()],
        (Some(v), Mode::Loose) => {
            std::iter::once(v).chain(v.split(',')).flat_map(|r| [r.to_string(), r.to_ascii_lowercase()]).collect()
        }
    };
    for v in &readings {
        let v = v.as_str();
        // arch/x86/kvm/mmu/mmu.c set_nx_huge_pages: sysfs_streq off/force/auto/never, then kstrtobool.
        if is("kvm.nx_huge_pages")
            && (matches!(v, "off" | "never")
                || !matches!(v, "force" | "auto") && is_false(v, mode, |v| kstrtobool(v, false)))
        {
            e.weakens = true;
        }
        // arch/x86/kvm/vmx/vmx.c vmentry_l1d_flush_parse: the words, then kstrtobool (false: never).
        if is("kvm_intel.vmentry_l1d_flush")
            && (v == "never" || !matches!(v, "auto" | "cond" | "always") && is_false(v, mode, |v| kstrtobool(v, false)))
        {
            e.weakens = true;
        }
        // rodata=: full/noalias, then kstrtobool.
        if is("rodata") && !matches!(v, "full" | "noalias") && is_false(v, mode, |v| kstrtobool(v, false)) {
            e.weakens = true;
        }
        if WORD_WEAK.iter().any(|(n, w)| is(n) && v == *w) {
            e.weakens = true;
        }
        // acpi= (strcmp), pci= (pcibios_setup per element).
        if (is("acpi") && v == "off") || (is("pci") && v.split(',').any(|x| x == "off")) {
            brk(&mut e);
        }
        // drivers/iommu/irq_remapping.c setup_irqremap: strncmp per element.
        if is("intremap") && v.split(',').any(|x| x.starts_with("off")) {
            brk(&mut e);
        }
        // kernel/printk/printk.c console_setup: "" or "null" → ttynull; a ttynull device.
        if is("console") {
            let dev = &v[..v.find(|c: char| c.is_ascii_digit() || c == ',').unwrap_or(v.len())];
            if v.is_empty() || v == "null" || matches!(dev, "" | "null" | "ttynull") {
                brk(&mut e);
            }
        }
        // arch/x86/kernel/cpu/bugs.c retbleed_parse_cmdline: strsep(","), the last mode wins.
        if is("retbleed") {
            let modes = ["off", "auto", "unret", "ibpb", "stuff"];
            if v.split(',').rfind(|x| modes.contains(x)) == Some("off") {
                e.weakens = true;
            }
        }
        // kernel/cpu.c mitigations_parse_cmdline (6.16+): strncmp of the global option, then
        // attack vectors after a comma. Older kernels: strcmp "off".
        if is("mitigations") {
            let global = ["auto,nosmt", "auto", "off"].into_iter().find(|g| v.starts_with(g));
            if global == Some("off") {
                e.weakens = true;
            }
            if let Some(rest) = global.and_then(|g| v[g.len()..].strip_prefix(',')) {
                let vectors = ["no_user_kernel", "no_user_user", "no_guest_host", "no_guest_guest", "no_cross_thread"];
                if rest.split(',').any(|x| vectors.contains(&x)) {
                    e.weakens = true;
                }
            }
        }
    }
    if mode == Mode::Loose {
        // The blacklist family, by name.
        let k = key.to_ascii_lowercase();
        if ["blacklist", "blocklist", "denylist"].iter().any(|w| k.contains(w)) {
            brk(&mut e);
        }
        // The console with no device.
        if is("console") && value.is_none() {
            brk(&mut e);
        }
        // Start-of-element `no_` vectors and `off` spellings of mitigations=, in any position.
        if is("mitigations")
            && readings.iter().any(|r| r.split(',').any(|x| x.starts_with("off") || x.starts_with("no_")))
        {
            e.weakens = true;
        }
    }
    e
}

/// The argument as each reader sees it once lltune has written it, and what it does there.
fn read_back(key: &str, value: Option<&str>, mode: Mode) -> (Effect, Vec<(String, Option<String>)>) {
    let written = KernelArg { key: key.to_string(), value: value.map(str::to_string) }.render();
    let line = written.as_bytes();
    let mut pairs = kernel_reader(line);
    pairs.extend(systemd_reader(line));
    pairs.extend(word_reader(line));
    if let (Mode::Loose, Some(v)) = (mode, value) {
        // The words of a value with spaces, without the quotes this writer puts around the
        // whole value (another writer, GRUB's re-quoting, may place them elsewhere).
        pairs.extend(word_reader(v.as_bytes()));
    }
    let mut total = Effect::default();
    for (k, v) in &pairs {
        let e = effect(k, v.as_deref(), mode);
        total.breaks |= e.breaks;
        total.weakens |= e.weakens;
    }
    (total, pairs)
}

/// A spelling the boot configuration cannot carry whole: the name's characters, and in the
/// value a byte outside printable ASCII, a quote or shell character, a space where the
/// argument takes none, a GRUB metacharacter outside quotes.
fn unwritable(key: &str, value: Option<&str>) -> bool {
    let bad_name =
        key.is_empty() || key.starts_with('-') || !key.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    let Some(v) = value else { return bad_name };
    let spaces_ok = ["dyndbg", "acpi_osi"].iter().any(|n| parameq(key, n)) || key.ends_with(".dyndbg");
    let quoted = spaces_ok && v.contains(' ');
    bad_name
        || v.chars().any(|c| !c.is_ascii() || c.is_ascii_control() || "\"'`$\\".contains(c))
        || (v.contains(' ') && !spaces_ok)
        || (!quoted && v.chars().any(|c| ";&|<>{}".contains(c)))
}

// ---------------------------------------------------------------------------------------------
// Generated spellings.

const DANGEROUS: &[&str] = &[
    "nosmp",
    "noapic",
    "nolapic",
    "noapictimer",
    "nox2apic",
    "noinitrd",
    "nopti",
    "nospectre_v2",
    "nosmep",
    "nokaslr",
    "no_rfi_flush",
    "dis_ucode_ldr",
    "init",
    "rdinit",
    "maxcpus",
    "nr_cpus",
    "mem",
    "memmap",
    "panic",
    "lsm",
    "module.sig_enforce",
    "module_blacklist",
    "initcall_blacklist",
    "modprobe.blacklist",
    "rd.driver.blacklist",
    "rd.driver.blocklist",
    "rdblacklist",
    "root",
    "ro",
    "rd.lvm.lv",
    "systemd.unit",
    "rd.systemd.unit",
    "systemd.mask",
    "systemd.wants",
    "systemd.run",
    "rd.break",
    "rd.emergency",
    "rd.shell",
    "rd.cmdline",
    "break",
    "single",
    "s",
    "S",
    "1",
    "3",
    "emergency",
    "rescue",
    "systemd.debug_shell",
    "systemd.volatile",
    "systemd.crash_shell",
    "fstab",
    "selinux",
    "enforcing",
    "apparmor",
    "kpti",
    "nobp",
    "kvm.nx_huge_pages",
    "kvm_intel.vmentry_l1d_flush",
    "rodata",
    "mds",
    "l1tf",
    "pti",
    "spectre_v2",
    "spectre_v2_user",
    "ssbd",
    "tsx",
    "tsa",
    "retbleed",
    "mitigations",
    "acpi",
    "pci",
    "intremap",
    "console",
];
const HARMLESS: &[&str] = &[
    "skew_tick",
    "isolcpus",
    "nohz_full",
    "rcu_nocbs",
    "idle",
    "intel_idle.max_cstate",
    "processor.max_cstate",
    "nosoftlockup",
    "nowatchdog",
    "tsc",
    "transparent_hugepage",
    "nmi_watchdog",
    "intel_pstate",
    "kvm.halt_poll_ns",
    "irqaffinity",
    "audit",
    "nosmt",
    "quiet",
    "dyndbg",
    "acpi_osi",
    "mymod.dyndbg",
];
const WORDS: &[&str] = &[
    "y",
    "Y",
    "yes",
    "YES",
    "n",
    "N",
    "no",
    "No",
    "0",
    "1",
    "00",
    "0x0",
    "+0",
    "0x1",
    "on",
    "On",
    "ON",
    "off",
    "oF",
    "of",
    "OFF",
    "t",
    "T",
    "true",
    "True",
    "f",
    "F",
    "false",
    "FALSE",
    "nope",
    "never",
    "force",
    "force-off",
    "auto",
    "full",
    "noalias",
    "cond",
    "always",
    "tty3",
    "state",
    "overlay",
    "null",
    "ttynull",
    "ttyS0",
    "null0",
    "",
    "emergency.target",
    "multi-user.target",
    "/bin/sh",
    "nosmt",
    "unret",
    "ibpb",
    "no_user_kernel",
    "no_cross_thread",
    "auto,nosmt",
    "strict",
    "ht",
    "2-5",
    "nvme",
    "ahci",
    "poll",
    "1G",
    "always",
];
/// Arguments hidden inside another's value.
const INNER: &[&str] = &[
    "rd.break",
    "init=/bin/sh",
    "mitigations=off",
    "single",
    "spectre_v2=off",
    "module_blacklist=nvme",
    "root=/dev/sdb",
    "systemd.unit=rescue.target",
    "a.c",
    "+p",
    "func",
    "kpti=0",
];

fn spell_name(base: &'static str) -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(any::<bool>(), base.len()),
        prop_oneof![4 => Just(String::new()), 1 => chars("abcdefghijklmnopqrstuvwxyz0123456789_", 1..5)],
        prop_oneof![9 => Just(false), 1 => Just(true)],
    )
        .prop_map(move |(flips, suffix, upper)| {
            let mut s: String = base
                .chars()
                .zip(flips)
                .map(|(c, f)| match (c, f) {
                    ('_', true) => '-',
                    ('-', true) => '_',
                    (c, _) => c,
                })
                .collect();
            if base.starts_with("no") || base == "dis_ucode_ldr" {
                s.push_str(&suffix);
            }
            if upper { s.to_ascii_uppercase() } else { s }
        })
}

/// A string of `len` characters drawn from `set`.
fn chars(set: &'static str, len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    let set: Vec<char> = set.chars().collect();
    proptest::collection::vec(proptest::sample::select(set), len).prop_map(String::from_iter)
}

fn case_mix(s: String) -> impl Strategy<Value = String> {
    let n = s.len();
    proptest::collection::vec(any::<bool>(), n)
        .prop_map(move |flips| s.chars().zip(flips).map(|(c, f)| if f { c.to_ascii_uppercase() } else { c }).collect())
}

/// Words each parameter's own parser knows: values are drawn from these as often as from
/// the common pool, so that the spellings that matter to a parser come up.
const KEY_WORDS: &[(&str, &[&str])] = &[
    ("mitigations", &["off", "auto", "auto,nosmt", "no_user_kernel", "no_cross_thread", "no_guest_host", "nosmt"]),
    ("retbleed", &["off", "auto", "unret", "ibpb", "nosmt", "force", "stuff"]),
    ("intremap", &["off", "on", "nosid", "no_x2apic_optout", "nopost"]),
    ("pci", &["off", "noacpi", "realloc", "nommconf"]),
    ("acpi", &["off", "strict", "ht", "noirq"]),
    ("console", &["null", "ttynull", "ttyS0", "tty0", "115200", "null0"]),
    ("kvm.nx_huge_pages", &["off", "never", "force", "auto"]),
    ("kvm_intel.vmentry_l1d_flush", &["never", "auto", "cond", "always"]),
    ("rodata", &["full", "noalias", "on", "off"]),
    ("ssbd", &["force-off", "force-on", "kernel"]),
    ("tsx", &["on", "off", "auto"]),
    ("systemd.volatile", &["state", "overlay", "yes", "no"]),
    ("systemd.debug_shell", &["tty3", "/dev/tty9"]),
];

fn word() -> impl Strategy<Value = String> {
    proptest::sample::select(WORDS).prop_map(str::to_string)
}

/// A word from the pool, or from the parameter's own words when it has some.
fn word_for(key: &'static str) -> BoxedStrategy<String> {
    match KEY_WORDS.iter().find(|(k, _)| *k == key) {
        Some((_, own)) => prop_oneof![word(), proptest::sample::select(*own).prop_map(str::to_string)].boxed(),
        None => word().boxed(),
    }
}

fn value(key: &'static str) -> impl Strategy<Value = Option<String>> {
    let ws = prop_oneof![Just(" "), Just("  "), Just("\t"), Just("\u{a0}"), Just("\n")];
    let plain = prop_oneof![
        4 => word_for(key),
        2 => word_for(key).prop_flat_map(case_mix),
        2 => (word_for(key), chars("abcdefghijklmnopqrstuvwxyz0123456789_,", 1..4)).prop_map(|(w, j)| format!("{w}{j}")),
        3 => proptest::collection::vec(word_for(key), 1..4).prop_map(|v| v.join(",")),
        1 => chars("abcdefghijklmnopqrstuvwxyz0123456789.:/,=;_-", 0..9),
    ];
    let spaced = (word(), ws, proptest::sample::select(INNER), word())
        .prop_map(|(a, s, inner, b)| format!("{a}{s}{inner}{s}{b}"));
    let quoted =
        (plain.clone(), prop_oneof![Just('"'), Just('\''), Just(';'), Just('$')], any::<prop::sample::Index>())
            .prop_map(|(v, q, at)| {
                let at = if v.is_empty() { 0 } else { at.index(v.len() + 1) };
                let at = (0..=at).rev().find(|i| v.is_char_boundary(*i)).unwrap_or(0);
                format!("{}{q}{}", &v[..at], &v[at..])
            });
    prop_oneof![
        2 => Just(None),
        10 => plain.prop_map(Some),
        3 => spaced.prop_map(Some),
        2 => quoted.prop_map(Some),
    ]
}

fn argument() -> impl Strategy<Value = (String, Option<String>)> {
    let base = prop_oneof![3 => proptest::sample::select(DANGEROUS), 1 => proptest::sample::select(HARMLESS)];
    base.prop_flat_map(|b| (spell_name(b), value(b)))
}

/// 6,000 cases per property (about 10 s on two cores); `PROPTEST_CASES` sets more.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(6000);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    /// 1. What breaks the boot or weakens a mitigation to some reader is refused.
    #[test]
    fn whatever_a_reader_takes_as_dangerous_is_refused((key, value) in argument()) {
        let v = value.as_deref();
        let (strict, pairs) = read_back(&key, v, Mode::Strict);
        if strict.breaks {
            prop_assert!(policy::check(&key, v, true).is_err(), "breaks to a reader ({pairs:?}) but passes with consent");
        }
        if strict.breaks || strict.weakens {
            prop_assert!(policy::check(&key, v, false).is_err(), "dangerous to a reader ({pairs:?}) but passes");
        }
    }

    /// 2. A refusal has a reason: the spelling, or a loose reading that is dangerous.
    #[test]
    fn every_refusal_has_a_reading_that_explains_it((key, value) in argument()) {
        let v = value.as_deref();
        if unwritable(&key, v) {
            prop_assert!(policy::check(&key, v, true).is_err(), "cannot be written whole but passes");
            return Ok(());
        }
        let (loose, pairs) = read_back(&key, v, Mode::Loose);
        if let Err(e) = policy::check(&key, v, false) {
            prop_assert!(loose.breaks || loose.weakens, "refused ({e}) though no reading is dangerous: {pairs:?}");
        }
        if let Err(e) = policy::check(&key, v, true) {
            prop_assert!(loose.breaks, "refused with consent ({e}) though no reading breaks the boot: {pairs:?}");
        }
    }

    /// 3. What passes reaches the kernel and systemd as itself, and the words dracut sees are harmless.
    #[test]
    fn what_passes_reaches_every_reader_whole((key, value) in argument()) {
        let v = value.as_deref();
        if policy::check(&key, v, true).is_err() {
            return Ok(());
        }
        let written = KernelArg { key: key.clone(), value: value.clone() }.render();
        let want = vec![(key.clone(), value.clone())];
        prop_assert_eq!(kernel_reader(written.as_bytes()), want.clone(), "kernel reads {}", written);
        prop_assert_eq!(systemd_reader(written.as_bytes()), want, "systemd reads {}", written);
        for (k, wv) in word_reader(written.as_bytes()) {
            prop_assert!(!effect(&k, wv.as_deref(), Mode::Strict).breaks, "{written}: the word {k}={wv:?} breaks the boot");
        }
    }
}

/// The model itself, on the cases the issue names and on the parsers' edges: a model that
/// found nothing dangerous would make the properties above vacuous.
#[test]
fn the_model_reads_the_issue_cases_as_the_parsers_do() {
    let weak = |k: &str, v: &str| read_back(k, Some(v), Mode::Strict).0.weakens;
    let breaks = |k: &str, v: Option<&str>| read_back(k, v, Mode::Strict).0.breaks;
    assert!(
        weak("mitigations", "off,nosmt") && weak("mitigations", "offx") && weak("mitigations", "auto,no_user_kernel")
    );
    assert!(!weak("mitigations", "auto,nosmt") && !weak("mitigations", "no_user_kernel"));
    assert!(weak("retbleed", "auto,off") && !weak("retbleed", "off,auto") && !weak("retbleed", "nosmt"));
    assert!(weak("kpti", "n") && weak("kpti", "of") && weak("kpti", "f") && !weak("kpti", "on"));
    assert!(
        weak("kvm.nx-huge-pages", "N") && weak("kvm.nx_huge_pages", "never") && !weak("kvm.nx_huge_pages", "force")
    );
    assert!(breaks("skew_tick", Some("1 rd.break x")) && breaks("skew_tick", Some("1 init=/bin/sh")));
    assert!(breaks("rd.shell", Some("false")) && breaks("rd.shell", Some("off")) && !breaks("rd.shell", Some("0")));
    assert!(breaks("selinux", Some("0x0")) && breaks("selinux", Some("+0")) && !breaks("selinux", Some("no")));
    assert!(breaks("nosmpfoo", None) && breaks("module_blacklist", Some("nvme")) && breaks("console", Some("null")));
    assert!(breaks("systemd.volatile", None) && !breaks("systemd.volatile", Some("no")));
    assert!(!breaks("skew_tick", Some("1")) && !breaks("dyndbg", Some("file a.c +p")));
    // next_arg: quotes around a value are dropped, a no-break space splits outside them.
    assert_eq!(kernel_reader(b"a=\"x y\" b"), [("a".into(), Some("x y".into())), ("b".into(), None)]);
    assert_eq!(kernel_reader("a=1\u{a0}init=/x".as_bytes())[1], ("init".into(), Some("/x".into())));
    assert_eq!(word_reader(b"a=\"x rd.break\"")[1], ("rd.break\"".into(), None));
    assert_eq!(kstrtoul("0x0"), Some(0));
    assert_eq!(kstrtoul("08"), None);
}

// ---------------------------------------------------------------------------------------------
// memparse: huge page sizes (`hugepagesz=`, `default_hugepagesz=`), read by `lltune_health`
// and the audit through `policy::memparse_kb`.

/// lib/cmdline.c `memparse` on lib/vsprintf.c `simple_strtoull(s, &end, 0)`: the radix as
/// `_parse_integer_fixup_radix` picks it, digits while they last (wrapping on overflow), then
/// one K/M/G/T/P/E in either case shifts by 10 per step from K; what follows is left unread.
/// Returns the bytes and how many characters were read.
fn kernel_memparse(s: &str) -> (u64, usize) {
    let b = s.as_bytes();
    let (radix, mut i) = if b.first() == Some(&b'0') {
        if b.get(1).is_some_and(|x| x.eq_ignore_ascii_case(&b'x')) && b.get(2).is_some_and(u8::is_ascii_hexdigit) {
            (16u64, 2)
        } else {
            (8, 0)
        }
    } else {
        (10, 0)
    };
    let mut n: u64 = 0;
    while let Some(d) = b.get(i).and_then(|c| (*c as char).to_digit(radix as u32)) {
        n = n.wrapping_mul(radix).wrapping_add(d as u64);
        i += 1;
    }
    let steps = match b.get(i).map(u8::to_ascii_uppercase) {
        Some(b'K') => 1,
        Some(b'M') => 2,
        Some(b'G') => 3,
        Some(b'T') => 4,
        Some(b'P') => 5,
        Some(b'E') => 6,
        _ => 0,
    };
    if steps > 0 {
        i += 1;
    }
    (n.wrapping_shl(10 * steps), i)
}

/// A size as people and the kernel's documentation spell one: a number in decimal, hex
/// (`0x`/`0X`) or octal, one suffix in either case or none, sometimes followed by text.
fn size_spelling() -> impl Strategy<Value = String> {
    let number = prop_oneof![0u64..5000, Just(1u64 << 21), Just(1u64 << 30), any::<u64>()];
    let form = proptest::sample::select(&["dec", "hex", "HEX", "oct"][..]);
    let suffix = proptest::sample::select(&["", "k", "K", "m", "M", "g", "G", "t", "T", "p", "P", "e", "E"][..]);
    let tail = proptest::sample::select(&["", "", "", "B", "iB", " ", "x", "8"][..]);
    (number, form, suffix, tail).prop_map(|(n, form, suffix, tail)| {
        let num = match form {
            "dec" => n.to_string(),
            "hex" => format!("0x{n:x}"),
            "HEX" => format!("0X{n:X}"),
            _ => format!("0{n:o}"),
        };
        format!("{num}{suffix}{tail}")
    })
}

proptest! {
    #![proptest_config(config())]

    /// `memparse_kb` gives the size the kernel reads, or refuses the value: never another size.
    /// It refuses exactly the values the kernel reads only in part (text left over), wraps
    /// on, or reads as a size that is not whole kB.
    #[test]
    fn memparse_reads_sizes_as_the_kernel_does(s in size_spelling()) {
        let (bytes, read) = kernel_memparse(&s);
        let exact = read == s.len() && read > 0 && kernel_memparse_fits(&s);
        let got = policy::memparse_kb(&s);
        if exact && bytes % 1024 == 0 {
            prop_assert_eq!(got, Some(bytes / 1024), "{}", s);
        } else {
            prop_assert_eq!(got, None, "{} (kernel: {} bytes, {} of {} characters read)", s, bytes, read, s.len());
        }
    }
}

/// True when the kernel's reading of `s` did not wrap (computed in 128 bits).
fn kernel_memparse_fits(s: &str) -> bool {
    let (_, read) = kernel_memparse(s);
    let b = s.as_bytes();
    let (radix, start) = if b.first() == Some(&b'0') {
        if b.get(1).is_some_and(|x| x.eq_ignore_ascii_case(&b'x')) && b.get(2).is_some_and(u8::is_ascii_hexdigit) {
            (16u128, 2)
        } else {
            (8, 0)
        }
    } else {
        (10, 0)
    };
    let mut n: u128 = 0;
    let mut i = start;
    while let Some(d) = b.get(i).and_then(|c| (*c as char).to_digit(radix as u32)) {
        n = n * radix + d as u128;
        if n > u64::MAX as u128 {
            return false;
        }
        i += 1;
    }
    let shift = if i < read { 10 * (1 + "KMGTPE".find((b[i] as char).to_ascii_uppercase()).unwrap()) } else { 0 };
    n << shift <= u64::MAX as u128
}

#[test]
fn memparse_model_edges() {
    assert_eq!(kernel_memparse("1G"), (1 << 30, 2));
    assert_eq!(kernel_memparse("1048576k"), (1 << 30, 8));
    assert_eq!(kernel_memparse("2MB"), (2 << 20, 2));
    assert_eq!(kernel_memparse("0x1E"), (30, 4)); // E is a hex digit there, not exa
    assert_eq!(kernel_memparse("010M"), (8 << 20, 4));
    assert_eq!(kernel_memparse("08M"), (0, 1));
    assert_eq!(kernel_memparse("0xG"), (0, 1));
    assert_eq!(policy::memparse_kb("1g"), Some(1 << 20));
    assert_eq!(policy::memparse_kb("0x200000"), Some(2048));
    assert_eq!(policy::memparse_kb("010M"), Some(8192));
    assert_eq!(policy::memparse_kb("2MB"), None);
    assert_eq!(policy::memparse_kb("2097153"), None);
    assert_eq!(policy::memparse_kb(""), None);
}
