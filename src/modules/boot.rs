//! Editing the boot configuration's kernel arguments: `GRUB_CMDLINE_LINUX` and
//! `GRUB_CMDLINE_LINUX_DEFAULT` in /etc/default/grub, the `options` line of every BLS entry
//! under /boot/loader/entries (as `grubby --update-kernel=ALL` does), and /etc/kernel/cmdline.
//!
//! Edits work on the text as written: each argument keeps its raw spelling (quotes
//! included) and the whitespace around it; only the arguments named by the task are
//! replaced, removed or appended. Tokens such as `$tuned_params` or `$kernelopts` in a BLS
//! `options` line are variables GRUB expands at boot: they are kept verbatim. The line is
//! never rebuilt from /proc/cmdline (the seed's bug: it froze the running line, BOOT_IMAGE
//! and all, into the configuration).

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use serde::Serialize;

use crate::engine::text;
use crate::facts::kernel::{Bootloader, Cmdline, KernelArg, parse_cmdline, read_bootloader};
use crate::facts::{Scan, ScanOptions};
use crate::host::Host;

/// A command line kept as written: raw tokens and the whitespace before each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCmdline {
    /// `(whitespace before, raw token)`, in order.
    pub tokens: Vec<(String, String)>,
    /// Whitespace after the last token.
    pub trailing: String,
}

impl RawCmdline {
    /// Splits like `parse_cmdline` (whitespace outside double quotes), keeping raw text.
    pub fn split(text: &str) -> RawCmdline {
        let mut tokens = Vec::new();
        let mut sep = String::new();
        let mut cur = String::new();
        let mut in_quote = false;
        for c in text.chars() {
            if c.is_whitespace() && !in_quote {
                if !cur.is_empty() {
                    tokens.push((std::mem::take(&mut sep), std::mem::take(&mut cur)));
                }
                sep.push(c);
            } else {
                if c == '"' {
                    in_quote = !in_quote;
                }
                cur.push(c);
            }
        }
        if !cur.is_empty() {
            tokens.push((std::mem::take(&mut sep), cur));
        }
        RawCmdline { tokens, trailing: sep }
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        for (sep, tok) in &self.tokens {
            s.push_str(sep);
            s.push_str(tok);
        }
        s.push_str(&self.trailing);
        s
    }

    /// The arguments as the kernel reads them.
    pub fn parsed(&self) -> Cmdline {
        parse_cmdline(&self.render())
    }

    /// Index of a bare `--`: arguments after it go to init.
    fn init_split(&self) -> usize {
        self.tokens.iter().position(|(_, t)| t == "--").unwrap_or(self.tokens.len())
    }
}

/// What to remove: every occurrence of a key, or one `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Key(String),
    KeyValue(String, String),
}

impl Removal {
    pub fn parse(text: &str) -> Removal {
        match text.split_once('=') {
            Some((k, v)) => Removal::KeyValue(k.to_string(), v.to_string()),
            None => Removal::Key(text.to_string()),
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Removal::Key(k) | Removal::KeyValue(k, _) => k,
        }
    }

    #[cfg(test)]
    fn matches(&self, arg: &KernelArg) -> bool {
        match self {
            Removal::Key(k) => &arg.key == k,
            Removal::KeyValue(k, v) => &arg.key == k && arg.value.as_deref() == Some(v.as_str()),
        }
    }
}

/// The change a task asks for: arguments to set (each ends up exactly once), and removals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgEdit {
    pub set: Vec<KernelArg>,
    pub remove: Vec<Removal>,
}

impl ArgEdit {
    /// The keys this edit decides about.
    pub fn keys(&self) -> Vec<String> {
        let mut seen = HashSet::with_capacity(self.set.len() + self.remove.len());
        self.set
            .iter()
            .map(|a| a.key.as_str())
            .chain(self.remove.iter().map(Removal::key))
            .filter(|k| seen.insert(*k))
            .map(str::to_string)
            .collect()
    }
}

/// Applies an edit to lines that together form one command line (GRUB_CMDLINE_LINUX then
/// GRUB_CMDLINE_LINUX_DEFAULT). A key already present is changed where it is (its first
/// occurrence; later ones are dropped, so no key is ever duplicated); a new key is appended
/// to `lines[append_to]`, before any `--`. Removals then drop every matching argument.
/// Each line's arguments after its own `--` belong to init and are never touched.
///
/// Linear in the number of tokens and edits (one parse per token, hash lookups): the result
/// is the one applying each `set` then each `remove` in turn would give, including for a key
/// set twice (it ends up once, where the first would put it, with the last value).
pub fn edit_lines(lines: &mut [RawCmdline], edit: &ArgEdit, append_to: usize) {
    // Per key set: the index of its first `set` (when the one-at-a-time edit acts on it),
    // the last value wanted, and whether every `set` of it wants the same value (only then
    // is an argument already holding it left as written).
    let mut wanted: HashMap<&str, (usize, &KernelArg, bool)> = HashMap::with_capacity(edit.set.len());
    for (n, want) in edit.set.iter().enumerate() {
        wanted
            .entry(want.key.as_str())
            .and_modify(|(_, last, same)| {
                *same &= last.value == want.value;
                *last = want;
            })
            .or_insert((n, want, true));
    }
    // One parse per token: change the first occurrence of each key in place, and note when
    // each later occurrence is dropped (the index of its key's first `set`).
    let mut seen: HashSet<&str> = HashSet::with_capacity(wanted.len());
    let mut drops: Vec<Vec<Option<usize>>> = Vec::with_capacity(lines.len());
    for line in lines.iter_mut() {
        let split = line.init_split();
        let mut d = vec![None; line.tokens.len()];
        for (i, (_, tok)) in line.tokens.iter_mut().enumerate().take(split) {
            let Some(a) = parse_token(tok) else { continue };
            let Some(&(first, last, same)) = wanted.get(a.key.as_str()) else { continue };
            if !seen.insert(last.key.as_str()) {
                d[i] = Some(first);
            } else if !(same && a.value == last.value) {
                *tok = last.render();
            }
        }
        drops.push(d);
    }
    // New keys, in the order first set, go before the target line's `--`.
    let mut new_args: Vec<(usize, String)> = Vec::new();
    for (n, want) in edit.set.iter().enumerate() {
        if seen.insert(want.key.as_str()) {
            new_args.push((n, wanted[want.key.as_str()].1.render()));
        }
    }
    for (n, (line, d)) in lines.iter_mut().zip(drops).enumerate() {
        let Some(&(first_new, _)) = new_args.first().filter(|_| n == append_to) else {
            drop_tokens(line, &d.iter().map(Option::is_some).collect::<Vec<_>>());
            continue;
        };
        // Whitespace depends on what was gone when the first new argument came: drop the
        // earlier ones, append, then drop the later ones.
        let early: Vec<bool> = d.iter().map(|t| t.is_some_and(|t| t < first_new)).collect();
        drop_tokens(line, &early);
        let mut late: Vec<bool> = d.iter().zip(&early).filter(|(_, e)| !**e).map(|(t, _)| t.is_some()).collect();
        let at = line.init_split();
        let mut block: Vec<(String, String)> = Vec::with_capacity(new_args.len());
        for (i, (_, arg)) in new_args.iter().enumerate() {
            let sep = if i == 0 && line.tokens.is_empty() {
                String::new()
            } else if i == 0 && at == 0 {
                // Only `-- init args`: the new arguments go first, taking the line's lead.
                std::mem::replace(&mut line.tokens[0].0, " ".into())
            } else {
                " ".to_string()
            };
            block.push((sep, arg.clone()));
        }
        let added = block.len();
        line.tokens.splice(at..at, block);
        late.splice(at..at, std::iter::repeat_n(false, added));
        drop_tokens(line, &late);
    }
    if edit.remove.is_empty() {
        return;
    }
    let mut remove_keys: HashSet<&str> = HashSet::new();
    let mut remove_values: HashSet<(&str, &str)> = HashSet::new();
    for r in &edit.remove {
        match r {
            Removal::Key(k) => {
                remove_keys.insert(k);
            }
            Removal::KeyValue(k, v) => {
                remove_values.insert((k, v));
            }
        }
    }
    for line in lines.iter_mut() {
        let split = line.init_split();
        let gone: Vec<bool> = line
            .tokens
            .iter()
            .enumerate()
            .map(|(i, (_, tok))| {
                i < split
                    && parse_token(tok).is_some_and(|a| {
                        remove_keys.contains(a.key.as_str())
                            || a.value.as_deref().is_some_and(|v| remove_values.contains(&(a.key.as_str(), v)))
                    })
            })
            .collect();
        drop_tokens(line, &gone);
    }
}

/// The argument one raw token holds, as the kernel reads it.
fn parse_token(tok: &str) -> Option<KernelArg> {
    parse_cmdline(tok).args.into_iter().next()
}

/// Drops the tokens marked in `gone` (one flag per token) in one pass. The whitespace before
/// the line's first token belongs to the line: it moves to the first token kept (and goes
/// when none is), as removing tokens one at a time from the front does.
fn drop_tokens(line: &mut RawCmdline, gone: &[bool]) {
    if !gone.contains(&true) {
        return;
    }
    let old = std::mem::take(&mut line.tokens);
    let mut lead: Option<String> = None;
    for ((sep, tok), &g) in old.into_iter().zip(gone) {
        if g {
            if line.tokens.is_empty() && lead.is_none() {
                lead = Some(sep);
            }
        } else {
            line.tokens.push((lead.take().unwrap_or(sep), tok));
        }
    }
}

/// Edits one command line given as text.
pub fn edit_text(text: &str, edit: &ArgEdit) -> String {
    let mut lines = [RawCmdline::split(text)];
    edit_lines(&mut lines, edit, 0);
    lines[0].render()
}

/// A shell assignment `VAR="value"` found in a file: where its value sits on its line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShellAssign {
    line: usize,
    /// Everything up to and including `=`.
    head: String,
    quote: Option<char>,
    /// The value, unquoted (`\"` turned into `"` inside double quotes).
    value: String,
    /// What follows the closing quote (a comment, usually nothing).
    tail: String,
}

/// What follows `var=` on a line that assigns `var` (`  export VAR=...` too).
fn assign_rest<'a>(line: &'a str, var: &str) -> Option<&'a str> {
    let l = line.trim_start();
    let body = l.strip_prefix("export ").unwrap_or(l);
    body.strip_prefix(var).and_then(|r| r.strip_prefix('='))
}

/// The last assignment of `var` (the one that wins when the shell sources the file).
fn find_assign(text: &str, var: &str) -> Option<ShellAssign> {
    let mut found = None;
    for (n, line) in text.split('\n').enumerate() {
        let Some(rest) = assign_rest(line, var) else { continue };
        let head = &line[..line.len() - rest.len()];
        let (quote, value, tail) = match rest.chars().next() {
            Some('"') => {
                let inner = &rest[1..];
                let mut value = String::new();
                let mut end = inner.len();
                let mut chars = inner.char_indices().peekable();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' if matches!(chars.peek(), Some((_, '"'))) => {
                            value.push('"');
                            chars.next();
                        }
                        '"' => {
                            end = i;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                let tail = inner.get(end + 1..).unwrap_or("").to_string();
                (Some('"'), value, tail)
            }
            Some('\'') => {
                let inner = &rest[1..];
                let end = inner.find('\'').unwrap_or(inner.len());
                (Some('\''), inner[..end].to_string(), inner.get(end + 1..).unwrap_or("").to_string())
            }
            _ => {
                let end = rest.find(|c: char| c.is_whitespace() || c == '#').unwrap_or(rest.len());
                (None, rest[..end].to_string(), rest[end..].to_string())
            }
        };
        found = Some(ShellAssign { line: n, head: head.to_string(), quote, value, tail });
    }
    found
}

/// Sets `var` in a shell-style file, keeping the line's quoting style where the new value
/// allows it; appends `VAR="value"` when the variable is not assigned.
pub fn set_shell_var(text: &str, var: &str, value: &str) -> String {
    let dq = |v: &str| format!("\"{}\"", v.replace('"', "\\\""));
    match find_assign(text, var) {
        Some(a) => {
            let quoted = match a.quote {
                Some('\'') if !value.contains('\'') => format!("'{value}'"),
                None if !value.is_empty()
                    && !value.contains(|c: char| c.is_whitespace() || "\"'#;&|<>()`\\".contains(c)) =>
                {
                    value.to_string()
                }
                _ => dq(value),
            };
            let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
            lines[a.line] = format!("{}{}{}", a.head, quoted, a.tail);
            lines.join("\n")
        }
        None => {
            let mut out = text.to_string();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("{var}={}\n", dq(value)));
            out
        }
    }
}

/// A shell variable's value as `find_assign` reads it.
pub fn shell_var(text: &str, var: &str) -> Option<String> {
    find_assign(text, var).map(|a| a.value)
}

/// `shell_var` on a file's bytes: the assignment that wins must be a UTF-8 line (it is the
/// one `set_shell_var_in` would edit), other lines may hold any bytes.
pub fn shell_var_in(path: &str, bytes: &[u8], var: &str) -> Result<Option<String>, String> {
    let Some(n) = text::find_line(bytes, true, |l| assign_rest(l, var).is_some()) else { return Ok(None) };
    let line = text::lines(bytes).nth(n).unwrap_or_default();
    Ok(shell_var(text::utf8_line(path, n + 1, text::body(line))?, var))
}

/// `set_shell_var` on a file's bytes: only the line of the assignment that wins is rewritten
/// (and it must be UTF-8); every other byte is kept. A new assignment is appended.
pub fn set_shell_var_in(path: &str, bytes: &[u8], var: &str, value: &str) -> Result<Vec<u8>, String> {
    match text::find_line(bytes, true, |l| assign_rest(l, var).is_some()) {
        Some(n) => {
            let line = text::lines(bytes).nth(n).unwrap_or_default();
            let new = set_shell_var(text::utf8_line(path, n + 1, text::body(line))?, var, value);
            Ok(text::replace_line(bytes, n, new.as_bytes()))
        }
        None => {
            let mut out = bytes.to_vec();
            text::push_line(&mut out, set_shell_var("", var, value).as_bytes());
            Ok(out)
        }
    }
}

/// Boot layouts lltune knows how to edit.
pub const LAYOUTS: &[&str] = &["bls", "grub2", "kernel-cmdline"];

/// The layout of the host (`read_bootloader`), with what it read.
pub fn detect(host: &Host) -> (Bootloader, Vec<String>) {
    let mut scan = Scan::new(host, ScanOptions::default());
    let b = read_bootloader(&mut scan);
    (b, scan.warnings().to_vec())
}

/// One file edit: its bytes before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    pub path: String,
    pub before: Vec<u8>,
    pub after: Vec<u8>,
}

/// How grub.cfg gets regenerated after /etc/default/grub changes (classic GRUB2 only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Regenerate {
    /// The generated config in use (`/boot/grub2/grub.cfg`, `/boot/efi/EFI/redhat/grub.cfg`).
    pub cfg: String,
    /// The command: `grub2-mkconfig -o <cfg>` or `update-grub`.
    pub argv: Vec<String>,
}

/// What an edit does to a host's boot configuration. Reads, writes nothing.
#[derive(Debug, Clone)]
pub struct BootPlan {
    pub layout: String,
    /// Every file the layout keeps arguments in, changed or not.
    pub files: Vec<FileEdit>,
    /// Arguments the next boot gets, before and after the edit.
    pub configured_before: Cmdline,
    pub configured_after: Cmdline,
    /// Set when /etc/default/grub changes on a classic GRUB2 host.
    pub regenerate: Option<Regenerate>,
    pub warnings: Vec<String>,
}

/// The kernel's command-line buffer, `COMMAND_LINE_SIZE` (its terminating NUL included), on
/// the architecture this binary is built for: a module runs on the host it tunes, so that is
/// the host's. Longer lines are cut off silently at boot. Values from the kernel sources:
///
/// | arch | value | where |
/// |---|---|---|
/// | x86, x86_64 | 2048 | arch/x86/include/asm/setup.h |
/// | aarch64 | 2048 | arch/arm64/include/uapi/asm/setup.h (some trees have 4096: the smaller is kept) |
/// | powerpc, powerpc64 | 2048 | arch/powerpc/include/uapi/asm/setup.h |
/// | s390x | 4096 | arch/s390/include/uapi/asm/setup.h (a Kconfig option in later kernels; 4096 default) |
/// | riscv64 | 1024 | arch/riscv/include/uapi/asm/setup.h |
/// | anything else | 512 | include/uapi/asm-generic/setup.h, the generic default |
pub const COMMAND_LINE_SIZE: usize = if cfg!(any(
    target_arch = "x86",
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "powerpc",
    target_arch = "powerpc64"
)) {
    2048
} else if cfg!(target_arch = "s390x") {
    4096
} else if cfg!(target_arch = "riscv64") {
    1024
} else {
    512
};

/// The longest command line the kernel keeps whole, in bytes (the buffer less its NUL).
pub const CMDLINE_MAX: usize = COMMAND_LINE_SIZE - 1;

/// Longer than any /proc/cmdline a kernel writes: the largest `COMMAND_LINE_SIZE` above (4096)
/// plus what bootconfig may add to it (its data is at most `XBC_DATA_MAX`, 32767 bytes).
/// A longer /proc/cmdline is not a kernel's (a broken capture, or a crafted tree).
pub const PROC_CMDLINE_MAX: usize = 4096 + 32768;

/// The limit as messages state it.
pub fn limit_text() -> String {
    format!(
        "{CMDLINE_MAX} bytes on {} (COMMAND_LINE_SIZE {COMMAND_LINE_SIZE}, its NUL included)",
        std::env::consts::ARCH
    )
}

/// What the boot loader puts before the configured arguments, as far as this host shows it.
/// GRUB's `linux` line (grub2-mkconfig's 10_linux) is `BOOT_IMAGE=<kernel> root=<device> ro`
/// then the configured arguments; a BLS entry gets `BOOT_IMAGE=<its linux path>`. The running
/// line (/proc/cmdline) shows the BOOT_IMAGE and root GRUB used last; what the host does not
/// show (the device prefix of a BLS entry's image, variables without a value in grubenv) is
/// counted as written or not at all, and the message says what was counted.
struct Prefixes {
    /// `BOOT_IMAGE=... root=... ro ` from /proc/cmdline, when it shows them.
    grub: String,
    /// `BOOT_IMAGE=...` from /proc/cmdline, when shown.
    boot_image: String,
    /// grubenv's variables (`$tuned_params`, `$kernelopts`), expanded in BLS options.
    grubenv: HashMap<String, String>,
}

impl Prefixes {
    fn read(host: &Host) -> Prefixes {
        let mut grub = String::new();
        let mut boot_image = String::new();
        // Counted in bytes: a /proc/cmdline that is not UTF-8 shows nothing countable.
        let cmdline = host.read_bytes_opt("/proc/cmdline").ok().flatten().and_then(|b| String::from_utf8(b).ok());
        if let Some(text) = cmdline {
            if text.len() <= PROC_CMDLINE_MAX {
                let line = RawCmdline::split(text.trim_end_matches(['\n', '\0']));
                for key in ["BOOT_IMAGE", "root"] {
                    if let Some((_, tok)) =
                        line.tokens.iter().find(|(_, t)| parse_token(t).is_some_and(|a| a.key == key))
                    {
                        if key == "BOOT_IMAGE" {
                            boot_image = format!("{tok} ");
                        }
                        grub.push_str(tok);
                        grub.push(' ');
                    }
                }
                if !grub.is_empty() {
                    grub.push_str("ro ");
                }
            }
        }
        let mut grubenv = HashMap::new();
        for path in ["/boot/grub2/grubenv", "/boot/grub/grubenv"] {
            if let Ok(Some(bytes)) = host.read_bytes_opt(path) {
                // A variable whose line is not UTF-8 is not expanded (its length is unknown).
                for line in text::lines(&bytes).filter_map(|l| std::str::from_utf8(text::body(l)).ok()) {
                    let line = line.strip_suffix('\r').unwrap_or(line);
                    if let Some((k, v)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
                        grubenv.insert(k.to_string(), v.to_string());
                    }
                }
                break;
            }
        }
        Prefixes { grub, boot_image, grubenv }
    }

    /// A BLS `options` line as the kernel gets it: grubenv variables expanded where known.
    fn expand(&self, options: &str) -> String {
        let line = RawCmdline::split(options);
        let mut out = String::with_capacity(options.len());
        for (sep, tok) in &line.tokens {
            out.push_str(sep);
            let name = tok.strip_prefix("${").and_then(|t| t.strip_suffix('}')).or_else(|| tok.strip_prefix('$'));
            match name.and_then(|n| self.grubenv.get(n)) {
                Some(v) => out.push_str(v),
                None => out.push_str(tok),
            }
        }
        out
    }
}

/// One file's resulting command line, measured.
struct LineLength {
    path: String,
    before: usize,
    after: usize,
    /// What was counted besides the file's own arguments.
    counted: String,
}

/// Refuses a plan that makes a command line longer than the kernel keeps; a line already over
/// the limit that the plan leaves as long or shortens is only a warning (removing arguments
/// from such a line must stay possible).
fn check_lengths(lengths: &[LineLength], warnings: &mut Vec<String>) -> Result<()> {
    let mut over = Vec::new();
    for l in lengths.iter().filter(|l| l.after > CMDLINE_MAX) {
        let text = format!(
            "{}: the kernel command line it gives would be {} bytes ({}), over the limit of {}",
            crate::protocol::cap_text(&l.path),
            l.after,
            l.counted,
            limit_text()
        );
        if l.after > l.before {
            over.push(text);
        } else {
            warnings.push(format!("{text}; the kernel cuts it off at boot"));
        }
    }
    if !over.is_empty() {
        anyhow::bail!("{}; the kernel would cut it off at boot: nothing changed", over.join("; "));
    }
    Ok(())
}

const GRUB_DEFAULTS: &str = "/etc/default/grub";
const KERNEL_CMDLINE: &str = "/etc/kernel/cmdline";

/// Plans `edit` for `layout` (`auto` = detected).
pub fn plan(host: &Host, layout: &str, edit: &ArgEdit) -> Result<BootPlan> {
    let (boot, mut warnings) = detect(host);
    let layout = if layout == "auto" { boot.layout.clone() } else { layout.to_string() };
    if !LAYOUTS.contains(&layout.as_str()) {
        anyhow::bail!(
            "no boot configuration found to edit (looked for {GRUB_DEFAULTS}, /boot/loader/entries/*.conf, {KERNEL_CMDLINE}); detected layout {:?}",
            boot.layout
        );
    }
    let mut files = Vec::new();
    let mut configured: Option<(Cmdline, Cmdline)> = None;
    let mut regenerate = None;
    let prefixes = Prefixes::read(host);
    let mut lengths = Vec::new();

    // /etc/default/grub: edited on every GRUB layout, so kernels installed later (and
    // grub2-mkconfig runs) inherit the arguments.
    if let Some(bytes) = host.read_bytes_opt(GRUB_DEFAULTS)? {
        if layout == "kernel-cmdline" {
            // Not used for booting on this layout.
        } else {
            let linux = shell_var_in(GRUB_DEFAULTS, &bytes, "GRUB_CMDLINE_LINUX").map_err(anyhow::Error::msg)?;
            let linux = linux.unwrap_or_default();
            let default =
                shell_var_in(GRUB_DEFAULTS, &bytes, "GRUB_CMDLINE_LINUX_DEFAULT").map_err(anyhow::Error::msg)?;
            let mut lines = vec![RawCmdline::split(&linux), RawCmdline::split(default.as_deref().unwrap_or(""))];
            let before = join_cmdlines(&lines);
            let before_len = prefixes.grub.len() + spoken_len(&lines);
            edit_lines(&mut lines, edit, 0);
            lengths.push(LineLength {
                path: GRUB_DEFAULTS.into(),
                before: before_len,
                after: prefixes.grub.len() + spoken_len(&lines),
                counted: if prefixes.grub.is_empty() {
                    "GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT; what GRUB adds before them (BOOT_IMAGE=, root=, ro) is not counted: /proc/cmdline does not show it".into()
                } else {
                    format!(
                        "GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT, and the {} bytes of BOOT_IMAGE=, root= and ro that GRUB adds, as /proc/cmdline shows them",
                        prefixes.grub.len()
                    )
                },
            });
            let after_linux = lines[0].render();
            let after_default = lines[1].render();
            let mut new_text = bytes.clone();
            if after_linux != linux {
                new_text = set_shell_var_in(GRUB_DEFAULTS, &new_text, "GRUB_CMDLINE_LINUX", &after_linux)
                    .map_err(anyhow::Error::msg)?;
            }
            if default.is_some() && Some(&after_default) != default.as_ref() {
                new_text = set_shell_var_in(GRUB_DEFAULTS, &new_text, "GRUB_CMDLINE_LINUX_DEFAULT", &after_default)
                    .map_err(anyhow::Error::msg)?;
            }
            if layout == "grub2" {
                configured = Some((before, join_cmdlines(&lines)));
                if new_text != bytes {
                    regenerate = regenerate_command(host, &boot);
                    if regenerate.is_none() {
                        warnings
                            .push(format!("{GRUB_DEFAULTS} changes but no generated grub.cfg was found to regenerate"));
                    }
                }
            }
            files.push(FileEdit { path: GRUB_DEFAULTS.into(), before: bytes, after: new_text });
        }
    } else if layout == "grub2" {
        anyhow::bail!("bootloader grub2: {GRUB_DEFAULTS} does not exist");
    }

    if layout == "bls" {
        if boot.bls_entries.is_empty() {
            anyhow::bail!("bootloader bls: no /boot/loader/entries/*.conf");
        }
        let running = host.attr("/proc/sys/kernel/osrelease");
        let current = pick_bls_entry(&boot, running.as_deref());
        for entry in &boot.bls_entries {
            let bytes = host.read_bytes(&entry.path)?;
            let (after, before_opts, after_opts) =
                edit_bls_entry_in(&entry.path, &bytes, edit).map_err(anyhow::Error::msg)?;
            // `BOOT_IMAGE=<linux> `, in bytes.
            let image = bls_linux(&bytes).map_or(0, |l| "BOOT_IMAGE= ".len() + l.len());
            lengths.push(LineLength {
                path: entry.path.clone(),
                before: image + spoken_len(&[RawCmdline::split(&prefixes.expand(&before_opts))]),
                after: image + spoken_len(&[RawCmdline::split(&prefixes.expand(&after_opts))]),
                counted: "the options line with grubenv's variables expanded, and BOOT_IMAGE= with the entry's linux path that GRUB adds (not its device prefix)".into(),
            });
            if Some(entry.path.as_str()) == current {
                configured = Some((parse_cmdline(&before_opts), parse_cmdline(&after_opts)));
            }
            if before_opts.contains("$kernelopts") {
                warnings.push(format!(
                    "{}: options use $kernelopts from /boot/grub2/grubenv; arguments set there are not edited (set them with this module, which adds them to the options line)",
                    crate::protocol::cap_text(&entry.path)
                ));
            }
            files.push(FileEdit { path: entry.path.clone(), before: bytes, after });
        }
    }

    if let Some(bytes) = host.read_bytes_opt(KERNEL_CMDLINE)? {
        // Every argument of this file is the edit's: the whole file must be UTF-8 text.
        let text = text::utf8(KERNEL_CMDLINE, &bytes).map_err(anyhow::Error::msg)?;
        let after = edit_text(text, edit);
        if layout == "kernel-cmdline" {
            configured = Some((parse_cmdline(text), parse_cmdline(&after)));
        }
        // On a GRUB layout the file seeds new kernels' entries, which GRUB gives a BOOT_IMAGE=.
        let image = if layout == "kernel-cmdline" { "" } else { prefixes.boot_image.as_str() };
        lengths.push(LineLength {
            path: KERNEL_CMDLINE.into(),
            before: image.len() + spoken_len(&[RawCmdline::split(text)]),
            after: image.len() + spoken_len(&[RawCmdline::split(&after)]),
            counted: if image.is_empty() {
                "the file's arguments".into()
            } else {
                format!(
                    "the file's arguments and the {} bytes of BOOT_IMAGE= that GRUB adds, as /proc/cmdline shows it",
                    image.len()
                )
            },
        });
        files.push(FileEdit { path: KERNEL_CMDLINE.into(), before: bytes.clone(), after: after.into_bytes() });
    } else if layout == "kernel-cmdline" {
        anyhow::bail!("bootloader kernel-cmdline: {KERNEL_CMDLINE} does not exist");
    }

    check_lengths(&lengths, &mut warnings)?;
    let (configured_before, configured_after) = configured.unwrap_or_default();
    Ok(BootPlan { layout, files, configured_before, configured_after, regenerate, warnings })
}

/// The length in bytes of the arguments of `lines` as the kernel gets them: the tokens as
/// written, one space between each (the boot loader splits and joins them so).
fn spoken_len(lines: &[RawCmdline]) -> usize {
    let (mut n, mut count) = (0usize, 0usize);
    for (_, tok) in lines.iter().flat_map(|l| &l.tokens) {
        n += tok.len();
        count += 1;
    }
    n + count.saturating_sub(1)
}

/// The kernel image of a BLS entry (its `linux` line), as bytes.
fn bls_linux(bytes: &[u8]) -> Option<&[u8]> {
    text::lines(bytes).find_map(|l| {
        let r = text::body(l).trim_ascii().strip_prefix(b"linux")?;
        r.first().is_some_and(u8::is_ascii_whitespace).then(|| r.trim_ascii())
    })
}

fn join_cmdlines(lines: &[RawCmdline]) -> Cmdline {
    // GRUB's 10_linux: `linux ... ${GRUB_CMDLINE_LINUX} ${GRUB_CMDLINE_LINUX_DEFAULT}`.
    let text: Vec<String> = lines.iter().map(RawCmdline::render).collect();
    parse_cmdline(&text.join(" "))
}

/// Whether a BLS line is its `options` line.
fn is_options_line(l: &str) -> bool {
    let t = l.trim_start();
    t.strip_prefix("options").is_some_and(|r| r.starts_with(char::is_whitespace) || r.is_empty())
}

/// `edit_bls_entry` on an entry's bytes: only the `options` line is rewritten (and it must
/// be UTF-8); every other byte is kept.
pub fn edit_bls_entry_in(path: &str, bytes: &[u8], edit: &ArgEdit) -> Result<(Vec<u8>, String, String), String> {
    match text::find_line(bytes, false, is_options_line) {
        Some(n) => {
            let line = text::lines(bytes).nth(n).unwrap_or_default();
            let (new, before, after) = edit_bls_entry(text::utf8_line(path, n + 1, text::body(line))?, edit);
            Ok((text::replace_line(bytes, n, new.as_bytes()), before, after))
        }
        None => {
            let (line, before, after) = edit_bls_entry("", edit);
            let mut out = bytes.to_vec();
            if !line.is_empty() {
                text::push_line(&mut out, line.as_bytes());
            }
            Ok((out, before, after))
        }
    }
}

/// Edits the `options` line of one BLS entry; returns (new text, options before, after).
/// An entry without an `options` line gets one.
pub fn edit_bls_entry(text: &str, edit: &ArgEdit) -> (String, String, String) {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let idx = lines.iter().position(|l| is_options_line(l));
    match idx {
        Some(i) => {
            let line = lines[i].clone();
            let start = line.len() - line.trim_start().len() + "options".len();
            let rest = &line[start..];
            // Keep the whitespace after `options` as the line's own.
            let ws = rest.len() - rest.trim_start().len();
            let (gap, opts) = rest.split_at(ws);
            let after = edit_text(opts, edit);
            lines[i] =
                format!("{}{}{}", &line[..start], if gap.is_empty() && !after.is_empty() { " " } else { gap }, after);
            (lines.join("\n"), opts.trim().to_string(), after.trim().to_string())
        }
        None => {
            let after = edit_text("", edit);
            let mut out = text.to_string();
            if !after.is_empty() {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&format!("options {after}\n"));
            }
            (out, String::new(), after)
        }
    }
}

/// The BLS entry the next boot most likely uses: the running kernel's, else the newest
/// non-rescue entry (GRUB sorts entries by version, newest first).
fn pick_bls_entry<'a>(boot: &'a Bootloader, running: Option<&str>) -> Option<&'a str> {
    if let Some(r) = running {
        if let Some(e) =
            boot.bls_entries.iter().find(|e| e.version.as_deref() == Some(r) || e.path.ends_with(&format!("-{r}.conf")))
        {
            return Some(&e.path);
        }
    }
    let mut entries: Vec<_> = boot.bls_entries.iter().filter(|e| !e.path.contains("rescue")).collect();
    crate::sort::sort_by(&mut entries, |a, b| b.path.cmp(&a.path));
    entries.first().or(boot.bls_entries.first().as_ref()).map(|e| e.path.as_str())
}

/// The generated grub.cfg in use and the command that regenerates it. On UEFI hosts of
/// RHEL 8 the real config is /boot/efi/EFI/<vendor>/grub.cfg; on RHEL 9 that file is a stub
/// that `configfile`s /boot/grub2/grub.cfg, which is then the one to regenerate.
pub fn regenerate_command(host: &Host, boot: &Bootloader) -> Option<Regenerate> {
    let efi = host.is_dir("/sys/firmware/efi");
    let mut cfg = None;
    if efi {
        cfg = boot
            .grub_cfg
            .iter()
            .filter(|c| c.starts_with("/boot/efi/"))
            .find(|c| host.read(c).map(|t| !t.contains("configfile")).unwrap_or(false))
            .cloned();
    }
    let cfg = cfg.or_else(|| boot.grub_cfg.iter().find(|c| !c.starts_with("/boot/efi/")).cloned())?;
    let argv = if cfg == "/boot/grub/grub.cfg" && !host.exists("/boot/grub2") {
        // Debian and Ubuntu: update-grub wraps grub-mkconfig -o /boot/grub/grub.cfg.
        vec!["update-grub".to_string()]
    } else {
        vec!["grub2-mkconfig".to_string(), "-o".to_string(), cfg.clone()]
    };
    Some(Regenerate { cfg, argv })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(k: &str, v: Option<&str>) -> KernelArg {
        KernelArg { key: k.into(), value: v.map(str::to_string) }
    }

    #[test]
    fn raw_split_round_trips_bytes() {
        for s in ["", "  a  b=\"x y\"\tc ", "root=UUID=1 ro -- single", "$tuned_params"] {
            assert_eq!(RawCmdline::split(s).render(), s);
        }
    }

    #[test]
    fn edit_keeps_order_quotes_and_never_duplicates() {
        let e = ArgEdit {
            set: vec![set("isolcpus", Some("2-5")), set("nosoftlockup", None), set("console", Some("ttyS0"))],
            remove: vec![Removal::Key("rhgb".into())],
        };
        let out = edit_text(
            "ro  dyndbg=\"file a.c +p\" isolcpus=1 rhgb console=tty0 quiet console=ttyS1 $tuned_params -- s",
            &e,
        );
        assert_eq!(out, "ro  dyndbg=\"file a.c +p\" isolcpus=2-5 console=ttyS0 quiet $tuned_params nosoftlockup -- s");
        // Idempotent.
        assert_eq!(edit_text(&out, &e), out);
        // A value with spaces is quoted; one value of a repeated key is removed alone.
        let e2 = ArgEdit { set: vec![set("x", Some("a b"))], remove: vec![Removal::parse("console=tty0")] };
        assert_eq!(edit_text("console=tty0 console=ttyS0", &e2), "console=ttyS0 x=\"a b\"");
        // Removing the first token keeps the line's leading whitespace.
        let e3 = ArgEdit { set: vec![], remove: vec![Removal::Key("a".into())] };
        assert_eq!(edit_text(" a b", &e3), " b");
    }

    /// The edit as first written (one `set`, then one `remove`, at a time; quadratic): the
    /// reference the indexed `edit_lines` must agree with.
    fn edit_lines_reference(lines: &mut [RawCmdline], edit: &ArgEdit, append_to: usize) {
        fn arg(l: &RawCmdline, i: usize) -> Option<KernelArg> {
            parse_cmdline(&l.tokens[i].1).args.into_iter().next()
        }
        fn remove(l: &mut RawCmdline, i: usize) {
            let (sep, _) = l.tokens.remove(i);
            if i == 0 {
                if let Some(next) = l.tokens.first_mut() {
                    next.0 = sep;
                }
            }
        }
        for want in &edit.set {
            let mut found = false;
            for line in lines.iter_mut() {
                let mut i = 0;
                while i < line.init_split() {
                    match arg(line, i) {
                        Some(a) if a.key == want.key => {
                            if found {
                                remove(line, i);
                                continue;
                            }
                            found = true;
                            if a.value != want.value {
                                line.tokens[i].1 = want.render();
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            if !found {
                if let Some(line) = lines.get_mut(append_to) {
                    let at = line.init_split();
                    let sep = if line.tokens.is_empty() { String::new() } else { " ".to_string() };
                    if at == 0 && !line.tokens.is_empty() {
                        let lead = std::mem::take(&mut line.tokens[0].0);
                        line.tokens[0].0 = " ".into();
                        line.tokens.insert(0, (lead, want.render()));
                    } else {
                        line.tokens.insert(at, (sep, want.render()));
                    }
                }
            }
        }
        for r in &edit.remove {
            for line in lines.iter_mut() {
                let mut i = 0;
                while i < line.init_split() {
                    if arg(line, i).is_some_and(|a| r.matches(&a)) {
                        remove(line, i);
                    } else {
                        i += 1;
                    }
                }
            }
        }
    }

    use crate::test_rng::Rng;

    #[test]
    fn indexed_edit_agrees_with_the_one_at_a_time_reference() {
        let keys = ["a", "b", "c", "d", "\"x", "$v"];
        let vals = [None, Some(""), Some("1"), Some("2"), Some("x y")];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let token = |rng: &mut Rng| -> String {
            match rng.below(12) {
                0 => "--".into(),
                1 => "\"a=1 2\"".into(),
                _ => KernelArg {
                    key: keys[rng.below(keys.len())].into(),
                    value: vals[rng.below(vals.len())].map(Into::into),
                }
                .render(),
            }
        };
        let seps = ["", " ", "  ", "\t"];
        for case in 0..3000 {
            let mut lines: Vec<RawCmdline> = (0..1 + rng.below(2))
                .map(|_| {
                    let mut text = String::new();
                    for _ in 0..rng.below(7) {
                        text.push_str(seps[rng.below(seps.len())]);
                        text.push_str(&token(&mut rng));
                    }
                    text.push_str(seps[rng.below(seps.len())]);
                    RawCmdline::split(&text)
                })
                .collect();
            let mut edit = ArgEdit::default();
            for _ in 0..rng.below(4) {
                let key = keys[rng.below(4)];
                edit.set.push(set(key, vals[rng.below(vals.len())]));
            }
            for _ in 0..rng.below(3) {
                let key = keys[rng.below(keys.len())].to_string();
                edit.remove.push(match rng.below(2) {
                    0 => Removal::Key(key),
                    _ => Removal::KeyValue(key, ["", "1", "2"][rng.below(3)].into()),
                });
            }
            let append_to = rng.below(lines.len() + 1);
            let mut want = lines.clone();
            edit_lines_reference(&mut want, &edit, append_to);
            let before: Vec<String> = lines.iter().map(RawCmdline::render).collect();
            edit_lines(&mut lines, &edit, append_to);
            let got: Vec<String> = lines.iter().map(RawCmdline::render).collect();
            let want: Vec<String> = want.iter().map(RawCmdline::render).collect();
            assert_eq!(got, want, "case {case}: {before:?} with {edit:?} (append to {append_to})");
        }
    }

    #[test]
    fn four_thousand_args_each_once_in_order() {
        // Half already on the lines (spread over both, some twice, `--` init args after),
        // half new; every one set to a new value.
        let n = 4000;
        let key = |i: usize| format!("k{i}");
        let mut linux = String::from("ro");
        let mut default = String::from("quiet");
        for i in (0..n).step_by(2) {
            let line = if i % 4 == 0 { &mut linux } else { &mut default };
            line.push_str(&format!(" {}=old", key(i)));
        }
        // Repeats of some existing keys in the other line: dropped.
        for i in (0..n).step_by(10) {
            linux.push_str(&format!(" {}=dup", key(i)));
        }
        default.push_str(" -- k1=init");
        let mut lines = vec![RawCmdline::split(&linux), RawCmdline::split(&default)];
        let edit = ArgEdit { set: (0..n).map(|i| set(&key(i), Some(&i.to_string()))).collect(), remove: vec![] };
        edit_lines(&mut lines, &edit, 0);
        let joined = format!("{} {}", lines[0].render(), lines[1].render());
        let c = parse_cmdline(&joined);
        assert_eq!(c.init_args, vec!["k1=init"], "init's arguments untouched");
        let mut at = std::collections::HashMap::new();
        for (pos, a) in c.args.iter().enumerate() {
            assert!(at.insert(a.key.clone(), pos).is_none(), "{} twice", a.key);
        }
        for i in 0..n {
            assert_eq!(c.values(&key(i)), vec![Some(i.to_string().as_str())], "{}", key(i));
        }
        // Existing ones stay where they were (line order), new ones follow in the order given.
        let existing_linux: Vec<usize> = (0..n).step_by(4).map(|i| at[&key(i)]).collect();
        assert!(existing_linux.windows(2).all(|w| w[0] < w[1]));
        let new: Vec<usize> = (1..n).step_by(2).map(|i| at[&key(i)]).collect();
        assert!(new.windows(2).all(|w| w[0] < w[1]));
        assert!(new[0] > existing_linux[existing_linux.len() - 1], "appended after GRUB_CMDLINE_LINUX's own");
        assert!(lines[1].render().starts_with("quiet k2=2 "));
        // And back: removing them all leaves the lines as they were, minus the duplicates.
        let remove = ArgEdit { set: vec![], remove: (0..n).map(|i| Removal::Key(key(i))).collect() };
        edit_lines(&mut lines, &remove, 0);
        assert_eq!(lines[0].render(), "ro");
        assert_eq!(lines[1].render(), "quiet -- k1=init");
    }

    #[test]
    fn edit_across_grub_linux_and_default() {
        let mut lines = vec![RawCmdline::split("crashkernel=auto"), RawCmdline::split("quiet splash nohz_full=1")];
        let e = ArgEdit { set: vec![set("nohz_full", Some("2-5")), set("skew_tick", Some("1"))], remove: vec![] };
        edit_lines(&mut lines, &e, 0);
        assert_eq!(lines[0].render(), "crashkernel=auto skew_tick=1");
        assert_eq!(lines[1].render(), "quiet splash nohz_full=2-5");
    }

    #[test]
    fn shell_assignments_keep_style() {
        let text = "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"a b\" # kept\nGRUB_CMDLINE_LINUX_DEFAULT='quiet'\nX=1";
        let t = set_shell_var(text, "GRUB_CMDLINE_LINUX", "a b c=\"x y\"");
        assert_eq!(
            t,
            "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"a b c=\\\"x y\\\"\" # kept\nGRUB_CMDLINE_LINUX_DEFAULT='quiet'\nX=1"
        );
        assert_eq!(shell_var(&t, "GRUB_CMDLINE_LINUX").as_deref(), Some("a b c=\"x y\""));
        assert_eq!(crate::facts::kernel::parse_shell_var(&t, "GRUB_CMDLINE_LINUX").as_deref(), Some("a b c=\"x y\""));
        let t = set_shell_var(&t, "GRUB_CMDLINE_LINUX_DEFAULT", "quiet splash");
        assert!(t.contains("GRUB_CMDLINE_LINUX_DEFAULT='quiet splash'\n"));
        assert_eq!(set_shell_var("A=1\n", "B", "x"), "A=1\nB=\"x\"\n");
        assert_eq!(set_shell_var("B=x\n", "B", "x y"), "B=\"x y\"\n");
    }

    #[test]
    fn bls_options_line_keeps_variables() {
        let text = "title Rocky\nversion 5.14.0\noptions root=/dev/x ro $tuned_params\ngrub_users $grub_users\n";
        let e = ArgEdit { set: vec![set("nohz_full", Some("2-5"))], remove: vec![] };
        let (out, before, after) = edit_bls_entry(text, &e);
        assert_eq!(
            out,
            "title Rocky\nversion 5.14.0\noptions root=/dev/x ro $tuned_params nohz_full=2-5\ngrub_users $grub_users\n"
        );
        assert_eq!(before, "root=/dev/x ro $tuned_params");
        assert_eq!(after, "root=/dev/x ro $tuned_params nohz_full=2-5");
        let (out, _, _) = edit_bls_entry("title x\n", &e);
        assert_eq!(out, "title x\noptions nohz_full=2-5\n");
    }
}
