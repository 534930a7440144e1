//! The kernel command line (`/proc/cmdline`) and the boot configuration that produces it.
//!
//! The surprising parts: `/proc/cmdline` ends with a newline; a value may be quoted
//! (`foo="a b"`) and the kernel strips the quotes (lib/cmdline.c, `next_arg`); a key may
//! repeat (`console=tty0 console=ttyS0`), and every value counts; everything after a bare
//! `--` goes to init, not to the kernel. `isolcpus=` puts its flags before the CPU list
//! in the same comma-separated value (Documentation/admin-guide/kernel-parameters.txt).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Scan;
use crate::cpulist::CpuList;
use crate::policy::memparse_kb;

/// One argument of a kernel command line: `key` or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelArg {
    pub key: String,
    /// `None` for a bare flag (`nosoftlockup`); `Some("")` for `key=`.
    pub value: Option<String>,
}

impl KernelArg {
    /// The argument as it is written on a command line, quoting a value with spaces.
    pub fn render(&self) -> String {
        match &self.value {
            None => self.key.clone(),
            Some(v) if v.contains(char::is_whitespace) => format!("{}=\"{}\"", self.key, v),
            Some(v) => format!("{}={}", self.key, v),
        }
    }
}

/// A parsed command line: the kernel's arguments in order, and what follows `--`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    pub args: Vec<KernelArg>,
    pub init_args: Vec<String>,
}

/// Splits a command line the way the kernel does: whitespace separates arguments except
/// inside double quotes, quotes are removed, and a bare `--` ends the kernel's part.
pub fn parse_cmdline(text: &str) -> Cmdline {
    let mut tokens: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut have = false;
    for c in text.trim_matches(|c: char| c.is_whitespace() || c == '\0').chars() {
        match c {
            '"' => {
                in_quote = !in_quote;
                have = true;
            }
            c if c.is_whitespace() && !in_quote => {
                if have {
                    tokens.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            c => {
                cur.push(c);
                have = true;
            }
        }
    }
    if have {
        tokens.push(cur);
    }
    let mut out = Cmdline::default();
    let mut rest = tokens.into_iter();
    for tok in rest.by_ref() {
        if tok == "--" {
            break;
        }
        let arg = match tok.split_once('=') {
            Some((k, v)) => KernelArg { key: k.to_string(), value: Some(v.to_string()) },
            None => KernelArg { key: tok, value: None },
        };
        out.args.push(arg);
    }
    out.init_args = rest.collect();
    out
}

impl Cmdline {
    /// Every value of `key`, in order (`None` entries are bare flags).
    pub fn values(&self, key: &str) -> Vec<Option<&str>> {
        self.args.iter().filter(|a| a.key == key).map(|a| a.value.as_deref()).collect()
    }

    /// The value the kernel acts on for a key given more than once: the last one, as with
    /// `__setup` handlers that overwrite (true of isolcpus, nohz_full, mitigations, idle).
    pub fn last(&self, key: &str) -> Option<Option<&str>> {
        self.args.iter().rev().find(|a| a.key == key).map(|a| a.value.as_deref())
    }

    pub fn has(&self, key: &str) -> bool {
        self.args.iter().any(|a| a.key == key)
    }

    /// `{key: [values...]}`, repeated keys kept in order, bare flags as `null`.
    pub fn to_map(&self) -> BTreeMap<String, Vec<Option<String>>> {
        let mut m: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
        for a in &self.args {
            m.entry(a.key.clone()).or_default().push(a.value.clone());
        }
        m
    }

    pub fn render(&self) -> String {
        let mut parts: Vec<String> = self.args.iter().map(KernelArg::render).collect();
        if !self.init_args.is_empty() {
            parts.push("--".into());
            parts.extend(self.init_args.iter().cloned());
        }
        parts.join(" ")
    }
}

/// `isolcpus=[flag,...,]cpu-list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolcpus {
    /// `nohz`, `domain`, `managed_irq`; none given means `domain` to the kernel.
    pub flags: Vec<String>,
    pub cpus: CpuList,
}

/// Flags `isolcpus=` accepts (kernel/sched/isolation.c, `housekeeping_isolcpus_setup`).
pub const ISOLCPUS_FLAGS: &[&str] = &["nohz", "domain", "managed_irq"];

/// Parses the value of `isolcpus=`. Words before the list are flags (see `ISOLCPUS_FLAGS`);
/// a bad CPU list is an error.
pub fn parse_isolcpus(value: &str) -> Result<Isolcpus, String> {
    let mut flags = Vec::new();
    let mut parts = value.split(',').peekable();
    while let Some(p) = parts.peek() {
        let p = p.trim();
        // A flag is a word; known ones are ISOLCPUS_FLAGS, unknown words are kept so a
        // person sees them (the kernel warns and ignores them).
        if !p.is_empty() && p != "N" && p.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
            flags.push(p.to_string());
            parts.next();
        } else {
            break;
        }
    }
    let list: Vec<&str> = parts.collect();
    let cpus = CpuList::parse(&list.join(",")).map_err(|e| e.to_string())?;
    Ok(Isolcpus { flags, cpus })
}

/// A `hugepagesz=`/`hugepages=` pair of the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootHugepages {
    /// Page size in kB from the `hugepagesz=` before it; null = the default size.
    pub size_kb: Option<u64>,
    pub pages: Option<u64>,
    /// `hugepages=0:2,1:2` style per-node counts (Linux 5.15+), when given.
    pub per_node: Option<BTreeMap<String, u64>>,
}

fn boot_hugepages(cmd: &Cmdline) -> Vec<BootHugepages> {
    let mut out = Vec::new();
    let mut size: Option<u64> = None;
    for a in &cmd.args {
        match (a.key.as_str(), a.value.as_deref()) {
            ("hugepagesz", Some(v)) => size = memparse_kb(v),
            ("hugepages", Some(v)) => {
                let (pages, per_node) = if v.contains(':') {
                    let mut m = BTreeMap::new();
                    for part in v.split(',') {
                        if let Some((n, c)) = part.split_once(':') {
                            if let Ok(c) = c.parse() {
                                m.insert(n.to_string(), c);
                            }
                        }
                    }
                    (Some(m.values().sum()), Some(m))
                } else {
                    (v.parse().ok(), None)
                };
                out.push(BootHugepages { size_kb: size, pages, per_node });
            }
            _ => {}
        }
    }
    out
}

/// How this host's boot loader gets its kernel arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Bootloader {
    /// `bls` (Boot Loader Specification entries, RHEL 8+/Fedora), `grub2` (classic GRUB2
    /// with a generated grub.cfg), `kernel-cmdline` (/etc/kernel/cmdline only, e.g. UKI or
    /// systemd-boot), or `unknown`.
    pub layout: String,
    /// `/etc/default/grub`, when present.
    pub grub_defaults: Option<GrubDefaults>,
    /// `/boot/loader/entries/*.conf`.
    pub bls_entries: Vec<BlsEntry>,
    /// Contents of `/etc/kernel/cmdline` (one line), when present.
    pub kernel_cmdline_file: Option<String>,
    /// Generated GRUB configs found: `/boot/grub2/grub.cfg`, `/boot/grub/grub.cfg`,
    /// `/boot/efi/EFI/<vendor>/grub.cfg`.
    pub grub_cfg: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GrubDefaults {
    pub path: String,
    pub cmdline_linux: Option<String>,
    pub cmdline_linux_default: Option<String>,
    pub enable_blscfg: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BlsEntry {
    pub path: String,
    pub title: Option<String>,
    pub version: Option<String>,
    pub options: Option<String>,
}

/// Reads a shell-style `KEY="value"` assignment from /etc/default/grub. Later assignments
/// win, as when the shell sources the file; `$VAR` references are left as written.
pub fn parse_shell_var(text: &str, key: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let l = line.trim();
        let l = l.strip_prefix("export ").unwrap_or(l);
        let Some(rest) = l.strip_prefix(key).and_then(|r| r.strip_prefix('=')) else { continue };
        found = Some(unquote_shell(rest));
    }
    found
}

fn unquote_shell(v: &str) -> String {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('"').and_then(|s| s.rfind('"').map(|i| &s[..i])) {
        return inner.replace("\\\"", "\"");
    }
    if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.rfind('\'').map(|i| &s[..i])) {
        return inner.to_string();
    }
    // Unquoted: up to an unescaped comment or whitespace.
    v.split(|c: char| c.is_whitespace() || c == '#').next().unwrap_or("").to_string()
}

/// Reads one BLS entry (`key value` lines).
pub fn parse_bls_entry(path: &str, text: &str) -> BlsEntry {
    let mut e = BlsEntry { path: path.to_string(), ..BlsEntry::default() };
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') {
            continue;
        }
        let (k, v) = l.split_once(char::is_whitespace).map(|(k, v)| (k, v.trim())).unwrap_or((l, ""));
        match k {
            "title" => e.title = Some(v.to_string()),
            "version" => e.version = Some(v.to_string()),
            "options" => e.options = Some(v.to_string()),
            _ => {}
        }
    }
    e
}

/// Finds the boot layout under the scan's root.
pub fn read_bootloader(scan: &mut Scan) -> Bootloader {
    let host = scan.host;
    let mut b = Bootloader::default();
    if let Ok(Some(text)) = host.read_opt("/etc/default/grub") {
        b.grub_defaults = Some(GrubDefaults {
            path: "/etc/default/grub".into(),
            cmdline_linux: parse_shell_var(&text, "GRUB_CMDLINE_LINUX"),
            cmdline_linux_default: parse_shell_var(&text, "GRUB_CMDLINE_LINUX_DEFAULT"),
            enable_blscfg: parse_shell_var(&text, "GRUB_ENABLE_BLSCFG").map(|v| v == "true"),
        });
    }
    for name in host.list_or_empty("/boot/loader/entries") {
        if !name.ends_with(".conf") {
            continue;
        }
        let path = format!("/boot/loader/entries/{name}");
        match host.read(&path) {
            Ok(text) => b.bls_entries.push(parse_bls_entry(&path, &text)),
            Err(e) => scan.warn(format!("{e}")),
        }
    }
    b.kernel_cmdline_file = host.attr("/etc/kernel/cmdline");
    for cfg in ["/boot/grub2/grub.cfg", "/boot/grub/grub.cfg"] {
        if host.exists(cfg) {
            b.grub_cfg.push(cfg.to_string());
        }
    }
    for vendor in host.list_or_empty("/boot/efi/EFI") {
        let cfg = format!("/boot/efi/EFI/{vendor}/grub.cfg");
        if host.exists(&cfg) {
            b.grub_cfg.push(cfg);
        }
    }
    let bls_enabled = b.grub_defaults.as_ref().and_then(|g| g.enable_blscfg).unwrap_or(false);
    b.layout = if !b.bls_entries.is_empty() && (bls_enabled || b.grub_defaults.is_none()) {
        "bls"
    } else if b.grub_defaults.is_some() {
        "grub2"
    } else if b.kernel_cmdline_file.is_some() {
        "kernel-cmdline"
    } else {
        "unknown"
    }
    .to_string();
    b
}

/// `kernel` facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Kernel {
    /// `/proc/sys/kernel/osrelease`.
    pub release: Option<String>,
    /// `/proc/sys/kernel/version` (build number and date).
    pub version: Option<String>,
    /// `/proc/cmdline`, without its trailing newline.
    pub cmdline: Option<String>,
    /// Every kernel argument: `{key: [value or null, ...]}`.
    pub args: BTreeMap<String, Vec<Option<String>>>,
    /// Words after `--`: arguments to init, not to the kernel.
    pub init_args: Vec<String>,
    pub isolcpus: Option<Isolcpus>,
    pub nohz_full: Option<CpuList>,
    pub rcu_nocbs: Option<CpuList>,
    pub irqaffinity: Option<CpuList>,
    pub kthread_cpus: Option<CpuList>,
    pub mitigations: Option<String>,
    pub idle: Option<String>,
    pub default_hugepagesz_kb: Option<u64>,
    pub hugepages: Vec<BootHugepages>,
    pub bootloader: Bootloader,
    /// Housekeeping cpumasks set at run time (workqueues, writeback).
    pub cpumasks: super::sysctl::KernelCpumasks,
}

/// A CPU-list argument: the last value; a bare flag (`rcu_nocbs` alone) is an empty list.
fn cpulist_arg(scan: &mut Scan, cmd: &Cmdline, key: &str) -> Option<CpuList> {
    match cmd.last(key)? {
        None => Some(CpuList::new()),
        Some(v) => match CpuList::parse(v) {
            Ok(l) => Some(l),
            Err(e) => {
                scan.warn(format!("/proc/cmdline: {key}: {e}"));
                None
            }
        },
    }
}

pub fn read(scan: &mut Scan) -> Kernel {
    let host = scan.host;
    let mut k = Kernel {
        release: host.attr("/proc/sys/kernel/osrelease"),
        version: host.attr("/proc/sys/kernel/version"),
        ..Kernel::default()
    };
    match host.read_opt("/proc/cmdline") {
        Ok(Some(raw)) => {
            let raw = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string();
            let cmd = parse_cmdline(&raw);
            k.args = cmd.to_map();
            k.init_args = cmd.init_args.clone();
            if let Some(v) = cmd.last("isolcpus") {
                match parse_isolcpus(v.unwrap_or("")) {
                    Ok(i) => {
                        for f in i.flags.iter().filter(|f| !ISOLCPUS_FLAGS.contains(&f.as_str())) {
                            scan.warn(format!("/proc/cmdline: isolcpus: unknown flag {f:?} (the kernel ignores it)"));
                        }
                        k.isolcpus = Some(i);
                    }
                    Err(e) => scan.warn(format!("/proc/cmdline: isolcpus: {e}")),
                }
            }
            k.nohz_full = cpulist_arg(scan, &cmd, "nohz_full");
            k.rcu_nocbs = cpulist_arg(scan, &cmd, "rcu_nocbs");
            k.irqaffinity = cpulist_arg(scan, &cmd, "irqaffinity");
            k.kthread_cpus = cpulist_arg(scan, &cmd, "kthread_cpus");
            k.mitigations = cmd.last("mitigations").map(|v| v.unwrap_or("").to_string());
            k.idle = cmd.last("idle").map(|v| v.unwrap_or("").to_string());
            k.default_hugepagesz_kb = cmd.last("default_hugepagesz").flatten().and_then(memparse_kb);
            k.hugepages = boot_hugepages(&cmd);
            k.cmdline = Some(raw);
        }
        Ok(None) => scan.warn("/proc/cmdline: missing; kernel arguments unknown"),
        Err(e) => scan.warn(format!("{e}")),
    }
    k.bootloader = read_bootloader(scan);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_keeps_repeats_and_quotes_and_stops_at_double_dash() {
        let c = parse_cmdline(
            "BOOT_IMAGE=/vmlinuz root=UUID=a-b ro console=tty0 console=ttyS0,115200n8 dyndbg=\"file a.c +p\" quiet -- --init-flag x\n",
        );
        assert_eq!(c.values("console"), vec![Some("tty0"), Some("ttyS0,115200n8")]);
        assert_eq!(c.last("dyndbg"), Some(Some("file a.c +p")));
        assert_eq!(c.last("quiet"), Some(None));
        assert_eq!(c.last("root"), Some(Some("UUID=a-b")));
        assert_eq!(c.init_args, vec!["--init-flag", "x"]);
        assert!(!c.has("x"));
        assert_eq!(
            c.render(),
            "BOOT_IMAGE=/vmlinuz root=UUID=a-b ro console=tty0 console=ttyS0,115200n8 dyndbg=\"file a.c +p\" quiet -- --init-flag x"
        );
    }

    #[test]
    fn cmdline_oddities() {
        // A stray '+' token (seen on a tuned GCP worker) is a bare flag named "+".
        let c = parse_cmdline("nohz_full=1 +\n");
        assert_eq!(c.last("+"), Some(None));
        assert_eq!(parse_cmdline("").args.len(), 0);
        assert_eq!(parse_cmdline("a= b").last("a"), Some(Some("")));
        // A whole quoted argument.
        assert_eq!(parse_cmdline("\"x=1 2\" y").last("x"), Some(Some("1 2")));
    }

    #[test]
    fn isolcpus_flags_then_list() {
        let i = parse_isolcpus("managed_irq,domain,2-5,50-53").unwrap();
        assert_eq!(i.flags, vec!["managed_irq", "domain"]);
        assert_eq!(i.cpus.to_string(), "2-5,50-53");
        let i = parse_isolcpus("managed_irq,5-10").unwrap();
        assert_eq!((i.flags.len(), i.cpus.to_string()), (1, "5-10".to_string()));
        assert_eq!(parse_isolcpus("1,3,5").unwrap().cpus.to_string(), "1,3,5");
        assert!(parse_isolcpus("domain,x-1").is_err());
    }

    #[test]
    fn hugepage_pairs_and_sizes() {
        let c = parse_cmdline("default_hugepagesz=1G hugepagesz=2M hugepages=128 hugepagesz=1G hugepages=0:2,1:2");
        let h = boot_hugepages(&c);
        assert_eq!(h[0], BootHugepages { size_kb: Some(2048), pages: Some(128), per_node: None });
        assert_eq!(h[1].size_kb, Some(1048576));
        assert_eq!(h[1].pages, Some(4));
        // Sizes read as the kernel's memparse reads them (`policy::memparse_kb`).
        let h = boot_hugepages(&parse_cmdline("hugepagesz=0x200000 hugepages=1 hugepagesz=2MB hugepages=2"));
        assert_eq!((h[0].size_kb, h[1].size_kb), (Some(2048), None));
    }

    #[test]
    fn grub_defaults_shell_values() {
        let text = "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"crashkernel=auto rhgb quiet\"\n# GRUB_CMDLINE_LINUX=\"old\"\nGRUB_CMDLINE_LINUX_DEFAULT='splash'\nGRUB_ENABLE_BLSCFG=true\n";
        assert_eq!(parse_shell_var(text, "GRUB_CMDLINE_LINUX").as_deref(), Some("crashkernel=auto rhgb quiet"));
        assert_eq!(parse_shell_var(text, "GRUB_CMDLINE_LINUX_DEFAULT").as_deref(), Some("splash"));
        assert_eq!(parse_shell_var(text, "GRUB_ENABLE_BLSCFG").as_deref(), Some("true"));
        assert_eq!(parse_shell_var(text, "GRUB_DISABLE"), None);
    }

    #[test]
    fn bls_entry_fields() {
        let e = parse_bls_entry(
            "/boot/loader/entries/a.conf",
            "title Rocky\nversion 5.14.0\nlinux /vmlinuz\noptions root=/dev/x ro $tuned_params\n",
        );
        assert_eq!(e.options.as_deref(), Some("root=/dev/x ro $tuned_params"));
        assert_eq!(e.title.as_deref(), Some("Rocky"));
    }
}
