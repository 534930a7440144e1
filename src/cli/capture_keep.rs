//! What `lltune capture` keeps of each configuration file: the lines and keys lltune's own
//! readers use (the scan in `facts`, the change modules when they plan), and nothing else.
//! A file may hold secrets anywhere (a token in a unit's `Environment=`, a CIFS password in
//! fstab, a GRUB password hash), so the capture chooses what to keep instead of guessing what
//! to blank.
//!
//! Each format is read as its real parser reads it, so that what is kept is a whole
//! statement and nothing rides along inside it:
//! - systemd units, drop-ins and manager files (systemd.syntax(7)): a line ending in a
//!   backslash continues on the next; comment lines inside a continuation are skipped;
//!   whitespace around `=` is allowed; `#` and `;` start comments.
//! - sh files (/etc/default/grub, os-release): a statement ends at a newline or `;` outside
//!   quotes; `'...'` and `"..."` may span lines; `$(...)` and backquotes nest; a backslash
//!   escapes the next character (a newline too); `#` at the start of a word starts a
//!   comment; here-documents belong to their statement. Of a statement made of assignments
//!   only (one before a command word sets only that command's environment), the words
//!   assigning a key lltune reads are kept, alone.
//! - irqbalance's environment file, as systemd's `EnvironmentFile=` reads it: one
//!   assignment per line (blanks allowed around `=`), quotes may span lines, `#` and `;`
//!   comment lines.
//! - fstab: the swap lines lltune_memory comments out or restores (its own test decides).
//! - sysctl.d and limits.d: the assignment lines their module reads, with valid names and
//!   values; comments and anything else go.
//! - BLS entries: `title`, `version`, `options` and `linux` lines; grub.cfg: only whether it
//!   `configfile`s another (what lltune_kernel_args asks of it); grubenv: the variables the
//!   BLS entries' options use.
//!
//! Lines left out become empty lines, so line numbers in lltune's messages stay the same;
//! inside a unit's continuation they are removed instead (an empty line would end it). Files
//! lltune writes itself are kept whole when they hold exactly what lltune writes.

use std::collections::BTreeSet;

use crate::engine::persist;
use crate::facts::sysctl;
use crate::modules::{cpu, irq, limits, memory, services};

/// What the filters need from the rest of the capture.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeepContext {
    /// grubenv variables the BLS entries' `options` lines use (`$tuned_params`).
    pub grubenv_vars: BTreeSet<String>,
    /// The sysctls whose lines are kept (canonical dotted names): those the scan reads and
    /// those lltune's proposed config sets.
    pub sysctls: BTreeSet<String>,
}

impl KeepContext {
    /// The context of a capture from its files (path, bytes) and the sysctls lltune reads.
    pub fn of<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>, sysctls: &[String]) -> KeepContext {
        let mut c = KeepContext {
            sysctls: sysctls.iter().filter_map(|k| sysctl::parse_key(k).ok()).map(|k| k.name).collect(),
            ..KeepContext::default()
        };
        for (path, data) in files {
            if !is_bls_entry(path) {
                continue;
            }
            for line in String::from_utf8_lossy(data).lines() {
                let Some(rest) = bls_value(line, "options") else { continue };
                for tok in rest.split_whitespace() {
                    for part in tok.split('$').skip(1) {
                        let name: String = part
                            .trim_start_matches('{')
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if !name.is_empty() {
                            c.grubenv_vars.insert(name);
                        }
                    }
                }
            }
        }
        c
    }

    /// As the manifest's `kept` records it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"sysctls": self.sysctls, "grubenv_vars": self.grubenv_vars})
    }

    /// From the manifest's `kept` (to check a capture against its host).
    pub fn from_json(v: &serde_json::Value) -> KeepContext {
        let set = |k: &str| -> BTreeSet<String> {
            v[k].as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect()
        };
        KeepContext { grubenv_vars: set("grubenv_vars"), sysctls: set("sysctls") }
    }

    /// True when a sysctl.d line's key (dotted or slashed, or a glob) names a kept sysctl,
    /// as lltune_sysctl matches it.
    fn keeps_sysctl(&self, key: &str) -> bool {
        if key.contains(['*', '?', '[']) {
            glob::Pattern::new(key).is_ok_and(|p| self.sysctls.iter().any(|k| p.matches(k)))
        } else {
            sysctl::parse_key(key).is_ok_and(|k| self.sysctls.contains(&k.name))
        }
    }
}

/// The file formats the capture knows, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Kernel interfaces (/proc, /sys) and lltune's own state and capture files: whole.
    Whole,
    /// A systemd unit file or drop-in: section headers and `[Install]`'s `WantedBy=`,
    /// `RequiredBy=`, `UpheldBy=`, `Alias=`, `DefaultInstance=` (lltune_services).
    Unit,
    /// systemd's manager configuration: section headers and `CPUAffinity=` (lltune_cpu).
    Manager,
    /// zram-generator.conf: section headers (lltune_memory only asks whether it exists).
    Zram,
    Fstab,
    /// /etc/default/grub: `GRUB_CMDLINE_LINUX`, `GRUB_CMDLINE_LINUX_DEFAULT`,
    /// `GRUB_ENABLE_BLSCFG`.
    GrubDefaults,
    /// irqbalance's environment file: `IRQBALANCE_BANNED_CPULIST`, `IRQBALANCE_BANNED_CPUS`,
    /// `IRQBALANCE_ARGS`, `OPTIONS`, and the commented example line lltune_irq writes below.
    Irqbalance,
    /// os-release: `ID`, `ID_LIKE`, `VERSION_ID`, `PRETTY_NAME`.
    OsRelease,
    BlsEntry,
    GrubCfg,
    Grubenv,
    Sysctl,
    Limits,
    /// /etc/kernel/cmdline and tuned's profile files: one value, all of it read.
    Value,
    /// A configuration file no reader of lltune uses the contents of: kept empty.
    Empty,
}

fn is_bls_entry(path: &str) -> bool {
    path.strip_prefix("/boot/loader/entries/").is_some_and(|n| !n.contains('/') && n.ends_with(".conf"))
}

fn in_dir(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

fn conf_in(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).and_then(|r| r.strip_prefix('/')).is_some_and(|n| !n.contains('/') && n.ends_with(".conf"))
}

/// The format of the file at target path `path`.
pub fn format_of(path: &str) -> Format {
    let name = path.rsplit('/').next().unwrap_or("");
    if in_dir(path, "/proc") || in_dir(path, "/sys") || in_dir(path, "/etc/lltune") || in_dir(path, "/var/lib/lltune") {
        return Format::Whole;
    }
    if services::UNIT_DIRS.iter().any(|d| in_dir(path, d)) {
        return Format::Unit;
    }
    if path == "/etc/systemd/system.conf" || conf_in(path, "/etc/systemd/system.conf.d") {
        return Format::Manager;
    }
    if name == "zram-generator.conf" {
        return Format::Zram;
    }
    if path == memory::FSTAB {
        return Format::Fstab;
    }
    if path == "/etc/default/grub" {
        return Format::GrubDefaults;
    }
    if path == crate::facts::services::IRQBALANCE_RHEL || path == crate::facts::services::IRQBALANCE_DEBIAN {
        return Format::Irqbalance;
    }
    if path == "/etc/os-release" || path == "/usr/lib/os-release" {
        return Format::OsRelease;
    }
    if is_bls_entry(path) {
        return Format::BlsEntry;
    }
    if in_dir(path, "/boot") && name == "grub.cfg" {
        return Format::GrubCfg;
    }
    if in_dir(path, "/boot") && name == "grubenv" {
        return Format::Grubenv;
    }
    if path == "/etc/sysctl.conf" || sysctl::SYSCTL_DIRS.iter().any(|d| conf_in(path, d)) {
        return Format::Sysctl;
    }
    if path == limits::LIMITS_CONF
        || path == limits::VENDOR_LIMITS_CONF
        || conf_in(path, limits::LIMITS_D)
        || conf_in(path, limits::VENDOR_LIMITS_D)
    {
        return Format::Limits;
    }
    if matches!(path, "/etc/kernel/cmdline" | "/etc/tuned/active_profile" | "/etc/tuned/profile_mode") {
        return Format::Value;
    }
    Format::Empty
}

/// What the capture stores of the file at `path`: `None` when it is stored whole, else the
/// bytes kept and how many lines were left out.
pub fn keep(path: &str, data: &[u8], ctx: &KeepContext) -> Option<(Vec<u8>, usize)> {
    let format = format_of(path);
    let out = match format {
        Format::Whole | Format::Value => return None,
        Format::Unit if path == persist::UNIT_PATH && data == persist::unit_text().as_bytes() => return None,
        Format::Unit if path == persist::REAPPLY_UNIT_PATH && data == persist::reapply_unit_text().as_bytes() => {
            return None;
        }
        Format::Manager if path == cpu::AFFINITY_FILE && is_affinity_file(data) => return None,
        Format::Unit => systemd(data, |section, key| {
            section == "Install" && matches!(key, "WantedBy" | "RequiredBy" | "UpheldBy" | "Alias" | "DefaultInstance")
        }),
        // lltune_cpu reads `CPUAffinity=` lines wherever they are.
        Format::Manager => systemd(data, |_, key| key == "CPUAffinity"),
        Format::Zram => systemd(data, |_, _| false),
        Format::Fstab => lines(data, |l| memory::edit_fstab(l, false) != l || memory::edit_fstab(l, true) != l),
        Format::GrubDefaults => {
            shell(data, &["GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT", "GRUB_ENABLE_BLSCFG"], false)
        }
        // The scan reports IRQBALANCE_ARGS (or OPTIONS) too.
        Format::Irqbalance => {
            shell(data, &[irq::BANNED_KEY, "IRQBALANCE_BANNED_CPUS", "IRQBALANCE_ARGS", "OPTIONS"], true)
        }
        Format::OsRelease => shell(data, &["ID", "ID_LIKE", "VERSION_ID", "PRETTY_NAME"], false),
        Format::BlsEntry => lines(data, |l| {
            ["title", "version", "options", "linux"].iter().any(|k| bls_value(&String::from_utf8_lossy(l), k).is_some())
        }),
        Format::GrubCfg => {
            // lltune_kernel_args asks one thing of a grub.cfg: whether it `configfile`s
            // another (RHEL 9's EFI stub), to know which one to regenerate.
            let kept: &[u8] = if contains(data, b"configfile") { b"configfile\n" } else { b"" };
            let total = data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
            (kept.to_vec(), total - usize::from(!kept.is_empty()))
        }
        Format::Grubenv => lines(data, |l| {
            let l = String::from_utf8_lossy(l);
            !l.starts_with('#') && l.split_once('=').is_some_and(|(k, _)| ctx.grubenv_vars.contains(k))
        }),
        Format::Sysctl => lines(data, |l| {
            sysctl::parse_line(&String::from_utf8_lossy(l)).is_some_and(|a| {
                a.key.chars().all(|c| c.is_ascii_alphanumeric() || "_-./@+:*?[]!".contains(c))
                    && ctx.keeps_sysctl(&a.key)
            })
        }),
        Format::Limits => limits_lines(data),
        Format::Empty => {
            let total = data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
            (Vec::new(), total)
        }
    };
    (out.0 != data).then_some(out)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `rest` of a BLS line `key rest` (the key, then whitespace or the end).
fn bls_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let t = line.trim_start();
    let rest = t.strip_prefix(key)?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some(rest)
}

/// True when `data` is a CPUAffinity drop-in exactly as lltune_cpu writes it.
fn is_affinity_file(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let Some(v) = text.lines().find_map(|l| l.strip_prefix("CPUAffinity=")) else { return false };
    crate::cpulist::CpuList::parse(&v.replace(' ', ",")).is_ok_and(|c| cpu::affinity_text(&c) == text)
}

/// Keeps the lines `keep` accepts, every other one emptied (its newline stays).
fn lines(data: &[u8], keep: impl Fn(&[u8]) -> bool) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(data.len());
    let mut dropped = 0;
    for line in data.split_inclusive(|b| *b == b'\n') {
        let (body, nl) = match line.strip_suffix(b"\n") {
            Some(b) => (b, &b"\n"[..]),
            None => (line, &b""[..]),
        };
        if keep(body) {
            out.extend_from_slice(body);
        } else if !body.iter().all(u8::is_ascii_whitespace) {
            dropped += 1;
        }
        out.extend_from_slice(nl);
    }
    (out, dropped)
}

/// limits.conf(5) lines as the scan (`facts::limits::parse_limits`) and lltune_limits read
/// them: the part before a `#` of a `<domain> <type> <item> <value>` line whose type is
/// `soft`, `hard` or `-`, and pam's `<domain> -` line; everything else emptied.
fn limits_lines(data: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(data.len());
    let mut dropped = 0;
    for line in data.split_inclusive(|b| *b == b'\n') {
        let (body, nl) = match line.strip_suffix(b"\n") {
            Some(b) => (b, &b"\n"[..]),
            None => (line, &b""[..]),
        };
        let head = body.split(|b| *b == b'#').next().unwrap_or(b"");
        let head = &head[..head.len() - head.iter().rev().take_while(|b| b.is_ascii_whitespace()).count()];
        let text = String::from_utf8_lossy(head);
        let f: Vec<&str> = text.split_whitespace().collect();
        let ok = match f.as_slice() {
            [_, "-"] => true,
            [_, kind, _, _, ..] => matches!(kind.to_ascii_lowercase().as_str(), "soft" | "hard" | "-"),
            _ => false,
        };
        if ok {
            out.extend_from_slice(head);
            if head.len() != body.len() && !body[head.len()..].iter().all(u8::is_ascii_whitespace) {
                dropped += 1;
            }
        } else if !body.iter().all(u8::is_ascii_whitespace) {
            dropped += 1;
        }
        out.extend_from_slice(nl);
    }
    (out, dropped)
}

/// A systemd-style file (units, drop-ins, system.conf): section headers, and the assignments
/// `keep(section, key)` accepts, each with its continuation lines (comment lines inside a
/// continuation are removed, as systemd skips them). Everything else is emptied.
fn systemd(data: &[u8], keep: impl Fn(&str, &str) -> bool) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(data.len());
    let mut dropped = 0;
    let mut section = String::new();
    // Within a continued assignment: whether it is kept.
    let mut continuing: Option<bool> = None;
    let ends_continued = |b: &[u8]| b.iter().rev().take_while(|c| **c == b'\\').count() % 2 == 1;
    for line in data.split_inclusive(|b| *b == b'\n') {
        let (body, nl) = match line.strip_suffix(b"\n") {
            Some(b) => (b, &b"\n"[..]),
            None => (line, &b""[..]),
        };
        let text = String::from_utf8_lossy(body);
        let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let is_comment = t.starts_with('#') || t.starts_with(';');
        if let Some(kept) = continuing {
            if is_comment {
                // Skipped by systemd inside a continuation; an empty line here would end it.
                dropped += 1;
                continue;
            }
            if kept {
                out.extend_from_slice(body);
            } else if !t.is_empty() {
                dropped += 1;
            }
            out.extend_from_slice(nl);
            continuing = ends_continued(body).then_some(kept);
            continue;
        }
        if t.is_empty() || is_comment {
            if !t.is_empty() {
                dropped += 1;
            }
            out.extend_from_slice(nl);
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = name.to_string();
            if name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
                out.extend_from_slice(body);
            } else {
                dropped += 1;
            }
            out.extend_from_slice(nl);
            continue;
        }
        let kept = t.split_once('=').is_some_and(|(k, _)| keep(&section, k.trim()));
        if kept {
            out.extend_from_slice(body);
        } else {
            dropped += 1;
        }
        out.extend_from_slice(nl);
        if ends_continued(body) {
            continuing = Some(kept);
        }
    }
    (out, dropped)
}

/// One statement of a shell-style file: where it starts, and the assignments it makes.
struct Statement {
    start: usize,
    /// The assignments the statement makes in the shell: name and the byte range of its
    /// word. None for a command: assignments before a command word only set its environment.
    assigns: Vec<(String, usize, usize)>,
    /// `export NAME=value ...`.
    export: bool,
}

/// Splits shell text into statements as sh(1) reads them: a statement ends at a newline or
/// `;` (or `&`, `|`) outside quotes, substitutions and comments; `'...'` runs to the next
/// `'`; `"..."` to the next unescaped `"`; `$(...)`, `${...}` and backquotes nest; a
/// backslash outside single quotes escapes the next byte (a newline too: the line goes on);
/// `#` at the start of a word comments out the rest of the line; the body of a here-document
/// (`<<WORD` ... `WORD`) belongs to the statement that opens it.
fn shell_statements(data: &[u8]) -> Vec<Statement> {
    let n = data.len();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        match data[i] {
            b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' => {
                i += 1;
                continue;
            }
            b'\\' if data.get(i + 1) == Some(&b'\n') => {
                i += 2;
                continue;
            }
            b'#' => {
                while i < n && data[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        let start = i;
        let mut word_start = false;
        let mut end = n;
        let mut heredocs: Vec<(Vec<u8>, bool)> = Vec::new();
        while i < n {
            let c = data[i];
            match c {
                b'#' if word_start => {
                    end = i;
                    while i < n && data[i] != b'\n' {
                        i += 1;
                    }
                    break;
                }
                b'\n' | b';' | b'&' | b'|' => {
                    end = i;
                    break;
                }
                b'<' if data.get(i + 1) == Some(&b'<') && data.get(i + 2) != Some(&b'<') => {
                    // A here-document: its delimiter word, unquoted.
                    i += 2;
                    let strip_tabs = data.get(i) == Some(&b'-');
                    if strip_tabs {
                        i += 1;
                    }
                    while i < n && matches!(data[i], b' ' | b'\t') {
                        i += 1;
                    }
                    let w0 = i;
                    while i < n && !matches!(data[i], b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>') {
                        i = skip_word_part(data, i);
                    }
                    let word: Vec<u8> =
                        data[w0..i.min(n)].iter().copied().filter(|b| !matches!(b, b'\'' | b'"' | b'\\')).collect();
                    heredocs.push((word, strip_tabs));
                }
                _ => i = skip_word_part(data, i),
            }
            word_start = matches!(c, b' ' | b'\t');
        }
        let mut e = end.min(n);
        while e > start && matches!(data[e - 1], b' ' | b'\t') {
            e -= 1;
        }
        let (assigns, export) = assignments(data, start, e);
        out.push(Statement { start, assigns, export });
        // Here-document bodies start on the next line and end at their delimiter lines.
        if !heredocs.is_empty() {
            while i < n && data[i] != b'\n' {
                i += 1;
            }
            for (word, strip_tabs) in heredocs {
                loop {
                    if i >= n {
                        break;
                    }
                    i += 1; // the newline before this line
                    let ls = i;
                    while i < n && data[i] != b'\n' {
                        i += 1;
                    }
                    let mut line = &data[ls..i];
                    if strip_tabs {
                        while let [b'\t', rest @ ..] = line {
                            line = rest;
                        }
                    }
                    if line == word.as_slice() {
                        break;
                    }
                }
            }
        }
    }
    out
}

/// Splits an environment file as systemd reads `EnvironmentFile=` (and as lltune's
/// `parse_env_file` reads irqbalance's): one assignment per line, `KEY=value` with blanks
/// allowed around `=` and in the value; `'...'` and `"..."` may span lines; a backslash
/// escapes the next byte (a newline too); a line starting with `#` or `;` is a comment, and
/// a backslash at its end continues the comment. `;` and `#` inside a value are part of it.
fn env_statements(data: &[u8]) -> Vec<Statement> {
    let n = data.len();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        while i < n && matches!(data[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        if i >= n {
            break;
        }
        if matches!(data[i], b'#' | b';') {
            // A comment, continued by a backslash at the end of its line.
            loop {
                let ls = i;
                while i < n && data[i] != b'\n' {
                    i += 1;
                }
                let continued = data[ls..i].iter().rev().take_while(|c| **c == b'\\').count() % 2 == 1;
                if !continued || i >= n {
                    break;
                }
                i += 1;
            }
            continue;
        }
        let start = i;
        while i < n && data[i] != b'\n' {
            i = match data[i] {
                b'\\' => i + 2,
                q @ (b'\'' | b'"') => {
                    let mut j = i + 1;
                    while j < n && data[j] != q {
                        j += if q == b'"' && data[j] == b'\\' { 2 } else { 1 };
                    }
                    j + 1
                }
                _ => i + 1,
            };
        }
        let i_end = i.min(n);
        i = i_end;
        let mut e = i_end;
        while e > start && matches!(data[e - 1], b' ' | b'\t' | b'\r') {
            e -= 1;
        }
        let stmt = &data[start..e];
        let body = stmt.strip_prefix(b"export ").map(|r| r.trim_ascii_start()).unwrap_or(stmt);
        let name = body.iter().position(|b| *b == b'=').and_then(|eq| {
            let k = body[..eq].trim_ascii();
            (!k.is_empty() && k.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_'))
                .then(|| String::from_utf8_lossy(k).into_owned())
        });
        // One assignment per line: the whole statement is its word.
        out.push(Statement { start, assigns: name.map(|n| (n, start, e)).into_iter().collect(), export: false });
    }
    out
}

/// The index after one lexical unit of a word starting at `i`: an escaped byte, a quoted
/// string, a `$(...)`, `${...}` or backquoted substitution (nested, with their own quotes),
/// or one plain byte. Never beyond `data.len()`.
fn skip_word_part(data: &[u8], i: usize) -> usize {
    let n = data.len();
    let close = |open: u8| match open {
        b'(' => b')',
        _ => b'}',
    };
    match data[i] {
        b'\\' => (i + 2).min(n),
        b'\'' => {
            let mut j = i + 1;
            while j < n && data[j] != b'\'' {
                j += 1;
            }
            (j + 1).min(n)
        }
        b'"' => {
            let mut j = i + 1;
            while j < n && data[j] != b'"' {
                j = match data[j] {
                    b'\\' => j + 2,
                    b'$' | b'`' => skip_word_part(data, j),
                    _ => j + 1,
                };
            }
            (j + 1).min(n)
        }
        b'`' => {
            let mut j = i + 1;
            while j < n && data[j] != b'`' {
                j += if data[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(n)
        }
        b'$' if matches!(data.get(i + 1), Some(b'(' | b'{')) => {
            let open = data[i + 1];
            let mut depth = 1;
            let mut j = i + 2;
            while j < n && depth > 0 {
                let c = data[j];
                if c == open {
                    depth += 1;
                    j += 1;
                } else if c == close(open) {
                    depth -= 1;
                    j += 1;
                } else if matches!(c, b'\\' | b'\'' | b'"' | b'`')
                    || (c == b'$' && matches!(data.get(j + 1), Some(b'(' | b'{')))
                {
                    j = skip_word_part(data, j);
                } else {
                    j += 1;
                }
            }
            j.min(n)
        }
        _ => i + 1,
    }
}

/// The words of `data[start..end]` (blanks and backslash-newlines between them), then the
/// assignments they make: every word `NAME=value` when all words are assignments, or
/// `export` followed by assignments and names; none when a command word follows (then the
/// assignments are only that command's environment).
fn assignments(data: &[u8], start: usize, end: usize) -> (Vec<(String, usize, usize)>, bool) {
    let mut words = Vec::new();
    let mut i = start;
    while i < end {
        match data[i] {
            b' ' | b'\t' => i += 1,
            b'\\' if data.get(i + 1) == Some(&b'\n') => i += 2,
            _ => {
                let w = i;
                while i < end
                    && !matches!(data[i], b' ' | b'\t')
                    && !(data[i] == b'\\' && data.get(i + 1) == Some(&b'\n'))
                {
                    i = skip_word_part(data, i);
                }
                words.push((w, i.min(end)));
            }
        }
    }
    let export = words.first().is_some_and(|&(a, b)| &data[a..b] == b"export");
    let mut out = Vec::new();
    for &(a, b) in words.iter().skip(usize::from(export)) {
        let w = &data[a..b];
        let name_end = w.iter().position(|c| *c == b'=').unwrap_or(w.len());
        let name = &w[..name_end];
        let valid = !name.is_empty()
            && !name[0].is_ascii_digit()
            && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if !valid {
            return (Vec::new(), false);
        }
        if name_end < w.len() {
            out.push((String::from_utf8_lossy(name).into_owned(), a, b));
        } else if !export {
            // A bare word: a command, and the assignments before it are its environment.
            return (Vec::new(), false);
        }
    }
    (out, export)
}

/// A shell-style file: the assignments of `keys`, as the words that make them (what shares
/// their statement or line is left out). With `env`, the file is an
/// environment file (`env_statements`) and a comment line `#KEY=...` of one of `keys` is
/// kept as `#KEY=` (lltune_irq writes below it); else it is sh (`shell_statements`).
fn shell(data: &[u8], keys: &[&str], env: bool) -> (Vec<u8>, usize) {
    let stmts = if env { env_statements(data) } else { shell_statements(data) };
    // Each statement's assignments of `keys`: where they start and end, and their text (the
    // words alone, after `export ` when the statement exports).
    let kept: Vec<(usize, usize, Vec<u8>)> = stmts
        .iter()
        .filter_map(|s| {
            let words: Vec<&(String, usize, usize)> =
                s.assigns.iter().filter(|(k, _, _)| keys.contains(&k.as_str())).collect();
            let (first, last) = (words.first()?, words.last()?);
            let mut text = if s.export { b"export ".to_vec() } else { Vec::new() };
            for (n, (_, a, b)) in words.iter().enumerate() {
                if n > 0 {
                    text.push(b' ');
                }
                text.extend_from_slice(&data[*a..*b]);
            }
            Some((if s.export { s.start } else { first.1 }, last.2, text))
        })
        .collect();
    let mut out = Vec::with_capacity(data.len());
    let mut dropped = 0;
    let mut k = 0;
    let mut pos = 0;
    // The end of the last statement written: a statement may span lines.
    let mut written_until = 0;
    for line in data.split_inclusive(|b| *b == b'\n') {
        let ls = pos;
        pos += line.len();
        let (body, nl) = match line.strip_suffix(b"\n") {
            Some(b) => (b, &b"\n"[..]),
            None => (line, &b""[..]),
        };
        let body_end = ls + body.len();
        let covered = written_until > ls;
        let mut wrote = false;
        while k < kept.len() && kept[k].0 < pos {
            let (_, e, text) = &kept[k];
            if wrote || covered {
                out.push(b'\n');
            }
            out.extend_from_slice(text);
            written_until = *e;
            wrote = true;
            k += 1;
        }
        if !wrote && !covered && env {
            let t = String::from_utf8_lossy(body);
            let c = t.trim_start().strip_prefix('#').map(str::trim_start);
            if let Some(key) =
                c.and_then(|c| keys.iter().find(|k| c.strip_prefix(**k).is_some_and(|r| r.starts_with('='))))
            {
                out.extend_from_slice(format!("#{key}=").as_bytes());
                wrote = true;
            }
        }
        let whole = (wrote || covered) && out.ends_with(body);
        if !whole && !covered && !body.iter().all(u8::is_ascii_whitespace) {
            dropped += 1;
        }
        // Inside a statement that goes on to the next line, this newline is part of it.
        if written_until <= body_end {
            out.extend_from_slice(nl);
        }
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(path: &str, text: &str) -> String {
        match keep(path, text.as_bytes(), &KeepContext::default()) {
            Some((b, _)) => String::from_utf8(b).unwrap(),
            None => text.to_string(),
        }
    }

    #[test]
    fn units_keep_install_and_headers_only() {
        let unit = "[Unit]\nDescription=x\n[Service]\nEnvironment=TOKEN=s1 \\\n  OTHER=s2\nEnvironment = \"K=s3\"\nSetCredential=pw:s4\nLoadCredential=c:/s5\nExecStart=/bin/db --password=s6 -p s7\n[Install]\nWantedBy=multi-user.target \\\n# TOKEN=s8\n  graphical.target\nAlias = db2.service\nAlso=s9.service\n";
        let out = kept("/etc/systemd/system/db.service", unit);
        for s in ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"] {
            assert!(!out.contains(s), "{s}: {out}");
        }
        assert_eq!(
            out,
            "[Unit]\n\n[Service]\n\n\n\n\n\n\n[Install]\nWantedBy=multi-user.target \\\n  graphical.target\nAlias = db2.service\n\n"
        );
        let install = services::parse_install(&out);
        assert_eq!(install.wanted_by, ["multi-user.target", "graphical.target"]);
        assert_eq!(install.alias, ["db2.service"]);
        // A continuation of a dropped key is dropped with it, however long.
        let out = kept(
            "/usr/lib/systemd/system/x.service",
            "[Service]\nEnvironment=A=1 \\\n B=s1 \\\n\n[Install]\nWantedBy=a\n",
        );
        assert_eq!(out, "[Service]\n\n\n\n[Install]\nWantedBy=a\n");
        assert_eq!(kept(persist::UNIT_PATH, &persist::unit_text()), persist::unit_text());
        assert_eq!(kept(persist::REAPPLY_UNIT_PATH, &persist::reapply_unit_text()), persist::reapply_unit_text());
        // Another text under its name is filtered like any unit.
        assert_ne!(kept(persist::REAPPLY_UNIT_PATH, "[Service]\nExecStart=/x s1\n"), "[Service]\nExecStart=/x s1\n");
    }

    #[test]
    fn shell_files_keep_the_assignments_of_their_keys() {
        let grub = "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"quiet\" ; GRUB_PW=s1\nX=\"a\nGRUB_CMDLINE_LINUX_DEFAULT=s2\n\"\nexport GRUB_ENABLE_BLSCFG=true # s3\nGRUB_CMDLINE_LINUX_DEFAULT='a b\nc'\nGRUB_CMDLINE_LINUX=x echo s4\n";
        let out = kept("/etc/default/grub", grub);
        for s in ["s1", "s2", "s3", "s4"] {
            assert!(!out.contains(s), "{s}: {out}");
        }
        assert_eq!(
            out,
            "\nGRUB_CMDLINE_LINUX=\"quiet\"\n\n\n\nexport GRUB_ENABLE_BLSCFG=true\nGRUB_CMDLINE_LINUX_DEFAULT='a b\nc'\n\n"
        );
        let irqb = "# doc\n#IRQBALANCE_BANNED_CPULIST=s1\nIRQBALANCE_ONESHOT=--s2\nIRQBALANCE_BANNED_CPUS=00ff\n";
        assert_eq!(
            kept(crate::facts::services::IRQBALANCE_RHEL, irqb),
            "\n#IRQBALANCE_BANNED_CPULIST=\n\nIRQBALANCE_BANNED_CPUS=00ff\n"
        );
    }

    use crate::test_rng::Rng;

    /// What sh itself makes of `GRUB_CMDLINE_LINUX`, `GRUB_CMDLINE_LINUX_DEFAULT` and
    /// `GRUB_ENABLE_BLSCFG` when it sources each file (as grub-mkconfig does), in one run.
    fn sh_values(files: &[std::path::PathBuf]) -> Vec<String> {
        let mut script = String::new();
        for (i, f) in files.iter().enumerate() {
            script.push_str(&format!(
                "( unset GRUB_CMDLINE_LINUX GRUB_CMDLINE_LINUX_DEFAULT GRUB_ENABLE_BLSCFG; . '{}' >/dev/null 2>&1; printf '%s\\001%s\\001%s\\002' \"${{GRUB_CMDLINE_LINUX-unset}}\" \"${{GRUB_CMDLINE_LINUX_DEFAULT-unset}}\" \"${{GRUB_ENABLE_BLSCFG-unset}}\" ) # {i}\n",
                f.display()
            ));
        }
        let out = std::process::Command::new("sh").arg("-c").arg(&script).env_clear().output().expect("run sh");
        assert!(out.status.success(), "sh: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).split('\u{2}').filter(|x| !x.is_empty()).map(str::to_string).collect()
    }

    /// Generated /etc/default/grub files from every statement form sh allows around the keys
    /// lltune reads: sh (the real parser) gives the same three values for the file and for
    /// what the capture keeps of it, and no secret is kept.
    #[test]
    fn generated_grub_defaults_keep_what_sh_reads_and_no_secret() {
        let keys = ["GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT", "GRUB_ENABLE_BLSCFG"];
        let others = ["GRUB_TIMEOUT", "GRUB_PASSWORD", "X1", "GRUB_X"];
        let plain = "abcxyz019=,.-:/";
        let spaced = "abc xyz019=,.-:/";
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut files = Vec::new();
        let mut kept_files = Vec::new();
        let mut n_secret = 0;
        for f in 0..300 {
            let mut text = String::new();
            for _ in 0..1 + rng.below(10) {
                n_secret += 1;
                let m = format!("SECRET{n_secret}X");
                let (k, o) = (rng.pick(&keys), rng.pick(&others));
                let (w, v, v2) = (rng.word(plain), rng.word(spaced), rng.word(spaced));
                let stmt = match rng.below(24) {
                    0 => format!("{k}=\"{v}\""),
                    1 => format!("{k}='{v}'"),
                    2 => format!("{k}={w}"),
                    3 => format!("export {k}=\"{v}\""),
                    4 => format!("{k}=\"{v}\"; {o}={m}"),
                    5 => format!("{o}={m}; {k}={w}"),
                    6 => format!("{o}=\"{v}\n{k}={m}\n\""),
                    7 => format!("{k}=\"{v}\n{v2}\""),
                    8 => format!("# {k}={m}"),
                    9 => format!("{k}={w} # {m}"),
                    10 => format!("cat >/dev/null <<EOF\n{k}={m}\nEOF"),
                    11 => format!("cat >/dev/null <<'EOF'\n{k}=\"{m}\nEOF"),
                    12 => format!("{o}=\"$(echo \"; {k}={m}; \")\""),
                    13 => format!("{o}=`echo {m}`"),
                    14 => format!("{k}={w} true {m}"),
                    15 => format!("{o}={m} {k}={w}"),
                    16 => format!("{o}={m} \\\n  {k}={w}"),
                    17 => format!("password_pbkdf2 root grub.pbkdf2.sha512.10000.{m}"),
                    18 => format!("echo x >/dev/null; password_pbkdf2 root {m}"),
                    19 => format!("{k}=\"a\\\"b {v}\""),
                    20 => format!("{k}=a\\ {w}"),
                    21 => format!("{k}={w}; {o}=\"{m}\" {k}={w}"),
                    22 => format!("export {o}={m} {k}=\"{v}\""),
                    _ => format!("{o}='{m} {v}' ; {k}=\"{v}\"&& true {m}"),
                };
                text.push_str(&stmt);
                text.push('\n');
            }
            let kept = match keep("/etc/default/grub", text.as_bytes(), &KeepContext::default()) {
                Some((b, _)) => b,
                None => text.clone().into_bytes(),
            };
            let kept_text = String::from_utf8(kept).unwrap();
            assert!(!kept_text.contains("SECRET"), "a secret kept:\n{text}\n--- kept:\n{kept_text}");
            let (a, b) = (dir.path().join(format!("{f}.orig")), dir.path().join(format!("{f}.kept")));
            std::fs::write(&a, &text).unwrap();
            std::fs::write(&b, &kept_text).unwrap();
            files.push((a, text));
            kept_files.push((b, kept_text));
        }
        let orig = sh_values(&files.iter().map(|f| f.0.clone()).collect::<Vec<_>>());
        let kept = sh_values(&kept_files.iter().map(|f| f.0.clone()).collect::<Vec<_>>());
        assert_eq!(orig.len(), files.len());
        let set = orig.iter().flat_map(|v| v.split('\u{1}')).filter(|v| *v != "unset").count();
        assert!(set > 300, "the files set the keys: {set} values");
        for (i, (o, k)) in orig.iter().zip(&kept).enumerate() {
            assert_eq!(
                o, k,
                "sh reads the file and its capture differently:\n{}\n--- kept:\n{}",
                files[i].1, kept_files[i].1
            );
        }
    }

    #[test]
    fn fstab_keeps_swap_lines() {
        let fstab = "# s1\n//nas/x /mnt cifs username=u,password=s2,credentials=/s3 0 0\nhttp://u:s4@h/ /w davfs _netdev 0 0\n/dev/sda2 none swap sw 0 0\n# lltune: UUID=1 none swap sw 0 0\n";
        assert_eq!(kept("/etc/fstab", fstab), "\n\n\n/dev/sda2 none swap sw 0 0\n# lltune: UUID=1 none swap sw 0 0\n");
    }

    #[test]
    fn grub_cfg_keeps_whether_it_chains() {
        assert_eq!(kept("/boot/grub2/grub.cfg", "set superusers=root\n  password_pbkdf2 root grub.pbkdf2.s1\n"), "");
        assert_eq!(
            kept("/boot/efi/EFI/rocky/grub.cfg", "search x; password_pbkdf2 r s1; configfile $prefix/grub.cfg\n"),
            "configfile\n"
        );
    }
}
