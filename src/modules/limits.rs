//! lltune_limits: resource limits for login sessions, in one pam_limits drop-in (default
//! /etc/security/limits.d/99-lltune.conf), validated with pam_limits' own grammar.
//!
//! The surprising part is precedence (pam_limits.c, `parse_config_file`/`process_limit`):
//! pam_limits reads /etc/security/limits.conf, then every `limits.d/*.conf` sorted by file
//! name in byte (C-locale) order (on builds with a vendor folder, /usr/etc/security/limits.d
//! joins in and an /etc file hides a vendor file of the same name). A later line replaces an
//! earlier one only when its domain is as specific or more: a user line (or uid range) beats
//! a group line (`@group`, gid range), which beats the wildcard `*`, whatever the file order.
//! So `* - memlock 64` in a later file never undoes our `@trading - memlock unlimited`, but
//! `bob hard memlock 64` anywhere does, for bob. A `<domain> -` line that matches a user
//! ends pam_limits there: no limit at all is applied to that session. `conflicts` reports
//! every other line that sets one of our keys and which line wins; a wanted limit that would
//! not be in effect at login (`simulate`) fails the task, naming the line, before any write.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::engine::state::Action;
use crate::engine::{self, Module, text};
use crate::host::Host;
use crate::protocol::{Failure, Meta, Outcome, cap_text, kind};

pub const MODULE: &str = crate::names::LIMITS;
pub const DEFAULT_FILE: &str = "/etc/security/limits.d/99-lltune.conf";
/// pam_limits' main file and drop-in folders (vendor ones on openSUSE-style builds).
pub const LIMITS_CONF: &str = "/etc/security/limits.conf";
pub const LIMITS_D: &str = "/etc/security/limits.d";
pub const VENDOR_LIMITS_CONF: &str = "/usr/etc/security/limits.conf";
pub const VENDOR_LIMITS_D: &str = "/usr/etc/security/limits.d";

/// One wanted limit, as given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitParam {
    pub domain: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub item: String,
    #[serde(deserialize_with = "scalar")]
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub limits: Vec<LimitParam>,
    #[serde(default = "default_file")]
    pub file: String,
    #[serde(default)]
    pub backup_id: Option<String>,
}

fn default_file() -> String {
    DEFAULT_FILE.to_string()
}

/// A string or an integer (`unlimited`, `1048576`, `-5`), as text.
fn scalar<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) if !n.is_f64() => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("expected an integer or a string, got {}", kind(&other)))),
    }
}

/// How a value of an item is read (pam_limits' `process_limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    /// An rlimit: a non-negative integer, or `unlimited`/`infinity`/`-1`.
    Rlimit,
    /// rtprio: 0..99 (the kernel's real-time priorities), or unlimited.
    Rtprio,
    /// nice and priority: -20..19, never unlimited.
    Nice,
    /// maxlogins, maxsyslogins: a count (0 refuses every login), or unlimited.
    Logins,
    /// nonewprivs: 0 or 1.
    Bool,
}

/// Every item pam_limits knows (limits.conf(5)), with how its value reads.
pub const ITEMS: &[(&str, &str)] = &[
    ("core", "core file size (KiB)"),
    ("data", "data segment size (KiB)"),
    ("fsize", "file size (KiB)"),
    ("memlock", "locked-in-memory address space (KiB)"),
    ("nofile", "open file descriptors"),
    ("rss", "resident set size (KiB; ignored by Linux)"),
    ("stack", "stack size (KiB)"),
    ("cpu", "CPU time (minutes)"),
    ("nproc", "processes"),
    ("as", "address space (KiB)"),
    ("maxlogins", "logins of this user"),
    ("maxsyslogins", "logins on the system"),
    ("nonewprivs", "PR_SET_NO_NEW_PRIVS (0 or 1)"),
    ("priority", "nice value sessions start with (-20..19)"),
    ("locks", "file locks"),
    ("sigpending", "pending signals"),
    ("msgqueue", "POSIX message queue bytes"),
    ("nice", "highest nice priority (-20..19)"),
    ("rtprio", "highest real-time priority (0..99)"),
    ("rttime", "real-time CPU time without a blocking call (microseconds)"),
];

fn value_kind(item: &str) -> Option<ValueKind> {
    Some(match item {
        "rtprio" => ValueKind::Rtprio,
        "nice" | "priority" => ValueKind::Nice,
        "maxlogins" | "maxsyslogins" => ValueKind::Logins,
        "nonewprivs" => ValueKind::Bool,
        i if ITEMS.iter().any(|(n, _)| *n == i) => ValueKind::Rlimit,
        _ => return None,
    })
}

/// How specific a domain is: pam_limits' `LIMITS_DEF_*` (lower wins over higher).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainClass {
    /// A user name or a uid range (`1000:`, `:0`, `1000:1999`).
    User = 0,
    /// `@group` or a gid range (`@:100`, `@1000:`).
    Group = 1,
    /// `%group`, `%:gid` (maxlogins only).
    AllGroup = 2,
    /// `%` (maxlogins only).
    All = 3,
    /// `*`.
    Default = 4,
}

fn is_name(s: &str) -> bool {
    // Portable user and group names, plus `$` at the end (machine accounts).
    let body = s.strip_suffix('$').unwrap_or(s);
    !body.is_empty()
        && body.len() <= 256
        && !body.starts_with('-')
        && body.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `min:max`, `:id`, `min:` as pam_limits' `parse_uid_range` reads them; `None` when no `:`.
fn parse_range(s: &str) -> Option<Result<(), String>> {
    let (min, max) = s.split_once(':')?;
    let num =
        |x: &str| !x.is_empty() && x.len() <= 10 && x.bytes().all(|b| b.is_ascii_digit()) && x.parse::<u32>().is_ok();
    Some(match (min, max) {
        ("", "") => Err("a range needs a number on one side of ':'".into()),
        ("", m) if num(m) => Ok(()),
        (n, "") if num(n) => Ok(()),
        (n, m) if num(n) && num(m) => {
            if n.parse::<u32>().unwrap_or(0) > m.parse::<u32>().unwrap_or(0) {
                Err(format!("range {s} is empty (min above max)"))
            } else {
                Ok(())
            }
        }
        _ => Err("ids in a range are decimal numbers below 2^32".into()),
    })
}

/// Validates a domain (limits.conf(5)) and tells how specific it is.
pub fn parse_domain(d: &str, item: &str) -> Result<DomainClass, String> {
    let maxlogins_only = |what: &str| -> Result<(), String> {
        if item == "maxlogins" {
            Ok(())
        } else {
            Err(format!("{what} applies to maxlogins only (pam_limits ignores it for {item})"))
        }
    };
    if d == "*" {
        return Ok(DomainClass::Default);
    }
    if d == "%" {
        maxlogins_only("domain %")?;
        return Ok(DomainClass::All);
    }
    if let Some(g) = d.strip_prefix('%') {
        maxlogins_only("a %group domain")?;
        return match parse_range(g) {
            Some(Ok(())) if g.starts_with(':') => Ok(DomainClass::AllGroup),
            Some(Ok(())) => Err("pam_limits does not match %min:max ranges; use %:gid or %group".into()),
            Some(Err(e)) => Err(e),
            None if is_name(g) => Ok(DomainClass::AllGroup),
            None => Err(format!("{:?} is not a group name", cap_text(g))),
        };
    }
    if let Some(g) = d.strip_prefix('@') {
        return match parse_range(g) {
            Some(r) => r.map(|()| DomainClass::Group),
            None if is_name(g) => Ok(DomainClass::Group),
            None => Err(format!("{:?} is not a group name", cap_text(g))),
        };
    }
    match parse_range(d) {
        Some(r) => r.map(|()| DomainClass::User),
        None if is_name(d) => Ok(DomainClass::User),
        None => Err(format!(
            "{:?} is not a domain: a user name, @group, @gid range, *, %, %group, %:gid or a uid range (1000:, :0, 1000:1999)",
            cap_text(d)
        )),
    }
}

/// Every spelling pam_limits reads as "no limit" (`-1`, `-`, `unlimited`, `infinity`).
fn is_unlimited(v: &str) -> bool {
    matches!(v, "-1" | "-" | "unlimited" | "infinity")
}

/// Validates a value for an item; returns the form written to the file (`unlimited` for
/// every spelling of it, integers without leading `+` or zeros).
pub fn parse_value(item: &str, raw: &str) -> Result<String, String> {
    let v = raw.trim().to_ascii_lowercase();
    let k = value_kind(item).ok_or_else(|| format!("{item} is not a pam_limits item"))?;
    let int = |s: &str| -> Option<i64> {
        let digits = s.strip_prefix('-').unwrap_or(s);
        if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<i64>().ok()
    };
    match k {
        ValueKind::Rlimit | ValueKind::Rtprio | ValueKind::Logins if is_unlimited(&v) => Ok("unlimited".into()),
        ValueKind::Rlimit => {
            if !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(n) = v.parse::<u64>() {
                    return Ok(n.to_string());
                }
            }
            Err(format!("{:?} is not a limit for {item}: a non-negative integer or unlimited", cap_text(raw)))
        }
        ValueKind::Rtprio => match int(&v) {
            Some(n) if (0..=99).contains(&n) => Ok(n.to_string()),
            _ => Err(format!("{:?} is not a real-time priority: 0..99 or unlimited", cap_text(raw))),
        },
        ValueKind::Nice => match int(&v) {
            Some(n) if (-20..=19).contains(&n) => Ok(n.to_string()),
            _ => Err(format!("{:?} is not a nice value for {item}: -20..19 (unlimited is not allowed)", cap_text(raw))),
        },
        ValueKind::Logins => match int(&v) {
            Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(n.to_string()),
            _ => Err(format!("{:?} is not a login count: 0..{} or unlimited", cap_text(raw), i32::MAX)),
        },
        ValueKind::Bool => match v.as_str() {
            "0" | "1" => Ok(v),
            _ => Err(format!("{:?} is not valid for nonewprivs: 0 or 1", cap_text(raw))),
        },
    }
}

/// One wanted limit, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub domain: String,
    /// `soft`, `hard` or `-`.
    pub kind: String,
    pub item: String,
    /// As written to the file.
    pub value: String,
    pub class: DomainClass,
}

impl Limit {
    fn halves(&self) -> &'static [&'static str] {
        halves(&self.kind)
    }

    fn line(&self) -> String {
        format!("{}\t{}\t{}\t{}\n", self.domain, self.kind, self.item, self.value)
    }
}

fn halves(kind: &str) -> &'static [&'static str] {
    match kind {
        "soft" => &["soft"],
        "hard" => &["hard"],
        _ => &["soft", "hard"],
    }
}

/// Validates the `limits` option: each entry's fields, and no limit given twice (the same
/// domain and item with overlapping types).
pub fn validate(params: &[LimitParam]) -> Result<Vec<Limit>, String> {
    if params.is_empty() {
        return Err("option limits: give at least one entry".into());
    }
    let mut out: Vec<Limit> = Vec::new();
    for (n, p) in params.iter().enumerate() {
        let at = |field: &str, e: String| format!("limits[{n}].{field}: {e}");
        let item = p.item.trim().to_ascii_lowercase();
        if value_kind(&item).is_none() {
            let names: Vec<&str> = ITEMS.iter().map(|(n, _)| *n).collect();
            return Err(at(
                "item",
                format!("{:?} is not a pam_limits item; items: {}", cap_text(&p.item), names.join(", ")),
            ));
        }
        let kind = p.kind.trim().to_ascii_lowercase();
        if !matches!(kind.as_str(), "soft" | "hard" | "-") {
            return Err(at("type", format!("{:?} is not soft, hard or -", cap_text(&p.kind))));
        }
        let domain = p.domain.trim();
        let class = parse_domain(domain, &item).map_err(|e| at("domain", e))?;
        let value = parse_value(&item, &p.value).map_err(|e| at("value", e))?;
        let l = Limit { domain: domain.to_string(), kind, item, value, class };
        if let Some(m) = out
            .iter()
            .position(|o| o.domain == l.domain && o.item == l.item && o.halves().iter().any(|h| l.halves().contains(h)))
        {
            return Err(format!(
                "limits[{n}]: {} {} for {} is already set by limits[{m}] ({} {} {})",
                l.kind, l.item, l.domain, out[m].domain, out[m].kind, out[m].item
            ));
        }
        out.push(l);
    }
    Ok(out)
}

/// A line of a limits file as pam_limits splits it (comments cut at `#`); type and item
/// lowercased as pam_limits does. `<domain> -` (no limits at all) has no item or value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLine {
    pub domain: String,
    pub kind: String,
    pub item: Option<String>,
    pub value: Option<String>,
}

pub fn parse_line(line: &str) -> Option<FileLine> {
    let body = line.split('#').next().unwrap_or("").trim();
    if body.is_empty() {
        return None;
    }
    let mut f = body.split([' ', '\t']).filter(|s| !s.is_empty());
    let domain = f.next()?.to_string();
    let kind = f.next()?.to_ascii_lowercase();
    let item = f.next().map(str::to_ascii_lowercase);
    let value: Vec<&str> = f.collect();
    let value = (!value.is_empty()).then(|| value.join(" ").to_ascii_lowercase());
    if item.is_some() && value.is_none() {
        return None;
    }
    Some(FileLine { domain, kind, item, value })
}

/// The value pam_limits would read, for comparing (`infinity` == `unlimited`).
fn same_value(item: &str, a: &str, b: &str) -> bool {
    match (parse_value(item, a), parse_value(item, b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

const HEADER: &str =
    "# Resource limits managed by lltune (lltune_limits). Edits to the entries set here are overwritten.\n";

/// Edits a limits file's bytes: each wanted key (domain, type, item) is set on its first
/// line (later lines of the key removed), new keys appended. Other lines are kept byte for
/// byte whatever their encoding (lines are read as `text::view` gives them), and a line that
/// already holds the value (in any spelling) is left alone.
pub fn edit_file(bytes: Option<&[u8]>, wanted: &[Limit]) -> Vec<u8> {
    let src = bytes.unwrap_or(HEADER.as_bytes());
    let mut lines: Vec<(Vec<u8>, Option<FileLine>)> =
        text::lines(src).map(|l| (l.to_vec(), parse_line(&text::view(l)))).collect();
    for w in wanted {
        let mut seen = false;
        let mut i = 0;
        while i < lines.len() {
            let hit = lines[i]
                .1
                .as_ref()
                .filter(|f| f.domain == w.domain && f.kind == w.kind && f.item.as_deref() == Some(w.item.as_str()))
                .cloned();
            match hit {
                Some(f) if !seen => {
                    seen = true;
                    if !same_value(&w.item, f.value.as_deref().unwrap_or(""), &text::view(w.value.as_bytes())) {
                        lines[i] = (w.line().into_bytes(), None);
                    }
                    i += 1;
                }
                Some(_) => {
                    lines.remove(i);
                }
                None => i += 1,
            }
        }
        if !seen {
            if let Some(last) = lines.last_mut().filter(|l| !l.0.ends_with(b"\n")) {
                last.0.push(b'\n');
            }
            lines.push((w.line().into_bytes(), None));
        }
    }
    lines.into_iter().flat_map(|(l, _)| l).collect()
}

/// The files pam_limits reads, in order: limits.conf (the vendor one when /etc has none),
/// then every `*.conf` of limits.d (and the vendor limits.d, an /etc file hiding a vendor
/// file of the same name), sorted by file name in byte order. `ours` (path, text after the
/// change) takes its place, or is added where pam_limits would find it.
fn read_order(host: &Host, ours: (&str, &[u8])) -> Vec<(String, Vec<u8>)> {
    let main = if host.exists(LIMITS_CONF) || ours.0 == LIMITS_CONF || !host.exists(VENDOR_LIMITS_CONF) {
        LIMITS_CONF
    } else {
        VENDOR_LIMITS_CONF
    };
    // `glob("*.conf")`: a leading dot is not matched (our temp files are `.name.lltune-*`).
    let conf = |n: &str| n.ends_with(".conf") && !n.starts_with('.');
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for dir in [LIMITS_D, VENDOR_LIMITS_D] {
        for name in host.list_or_empty(dir) {
            if conf(&name) {
                by_name.entry(name.clone()).or_insert_with(|| format!("{dir}/{name}"));
            }
        }
    }
    if let Some((dir, name)) = ours.0.rsplit_once('/') {
        if (dir == LIMITS_D || dir == VENDOR_LIMITS_D) && conf(name) {
            let hidden = dir == VENDOR_LIMITS_D && by_name.get(name).is_some_and(|p| p.starts_with(LIMITS_D));
            if !hidden {
                by_name.insert(name.to_string(), ours.0.to_string());
            }
        }
    }
    let mut files = Vec::new();
    let read = |p: &str| {
        if p == ours.0 { Some(ours.1.to_vec()) } else { host.read_bytes_opt(p).ok().flatten() }
    };
    if let Some(t) = read(main) {
        files.push((main.to_string(), t));
    }
    // BTreeMap<String> orders by bytes: strcmp, the C locale.
    for (_, path) in by_name {
        if let Some(t) = read(&path) {
            files.push((path, t));
        }
    }
    files
}

/// Another line that sets one of our limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setter {
    pub file: String,
    pub line: usize,
    #[serde(serialize_with = "crate::protocol::capped")]
    pub domain: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(serialize_with = "crate::protocol::capped")]
    pub value: String,
}

/// One half (soft or hard) of a wanted limit that other lines set too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    #[serde(serialize_with = "crate::protocol::capped")]
    pub domain: String,
    /// `soft` or `hard`.
    #[serde(rename = "type")]
    pub kind: String,
    pub item: String,
    /// Lines for the same domain, in the order pam_limits reads them.
    pub set_by: Vec<Setter>,
    /// The file whose line sets the value a member of the domain gets at login (`""`: none).
    pub wins: String,
    /// That line's number in `wins` (0: none).
    pub wins_line: usize,
    /// The value a member of the domain gets at login, as pam_limits reads the files.
    #[serde(serialize_with = "crate::protocol::capped")]
    pub value_in_effect: String,
    /// Whether that is our value: false when a line read later (or, for the soft half, a
    /// lower hard limit, which pam_limits caps the soft one at) keeps ours from taking effect.
    pub in_effect: bool,
    /// The soft value in effect is the hard limit: pam_limits lowers a soft limit above the
    /// hard one to it.
    pub capped_by_hard: bool,
    /// Lines for more specific domains (users, uid ranges; for `*` also groups) that beat
    /// ours for the users they match, wherever they are.
    pub overridden_for: Vec<Setter>,
}

/// A `<domain> -` line: pam_limits applies no limits at all to the users it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoLimits {
    pub file: String,
    pub line: usize,
    #[serde(serialize_with = "crate::protocol::capped")]
    pub domain: String,
}

/// A line of the files pam_limits reads, where it is.
struct ReadLine<'a> {
    file: &'a str,
    line: usize,
    f: FileLine,
    class: Option<DomainClass>,
}

impl ReadLine<'_> {
    fn setter(&self) -> Setter {
        Setter {
            file: self.file.to_string(),
            line: self.line,
            domain: self.f.domain.clone(),
            kind: self.f.kind.clone(),
            value: self.f.value.clone().unwrap_or_default(),
        }
    }
}

/// How pam_limits' `process_limit` stores an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// An rlimit: a soft and a hard value, each replaced only by a line of a domain as
    /// specific or more than the one that set it. A `-` line whose soft half loses stops
    /// there: its hard half is not looked at either.
    Rlimit,
    /// `priority` and `nonewprivs`: one value, the last matching line wins whatever its domain.
    Last,
    /// `maxlogins` and `maxsyslogins`: one login count for both, the type ignored, replaced by
    /// lines as specific or more.
    Logins,
}

fn slot(item: &str) -> Slot {
    match item {
        "priority" | "nonewprivs" => Slot::Last,
        "maxlogins" | "maxsyslogins" => Slot::Logins,
        _ => Slot::Rlimit,
    }
}

/// One stored value and the line that set it.
#[derive(Clone, Copy)]
struct Held<'a, 'b> {
    class: DomainClass,
    by: &'b ReadLine<'a>,
}

/// What a member of `w.domain` who matches no other user or group line gets for `w.item`:
/// pam_limits run over the lines that apply to such a member (`w.domain` itself, `*`, and `%`
/// for logins), in the order it reads them. Returns (soft, hard); for one-value items both
/// are the same.
fn simulate<'a, 'b>(lines: &'b [ReadLine<'a>], w: &Limit) -> (Option<Held<'a, 'b>>, Option<Held<'a, 'b>>) {
    let sl = slot(&w.item);
    let applies = |l: &ReadLine| {
        let item = l.f.item.as_deref().unwrap_or("");
        let same_item = match sl {
            Slot::Logins => matches!(item, "maxlogins" | "maxsyslogins"),
            _ => item == w.item,
        };
        same_item
            && (l.f.domain == w.domain || l.f.domain == "*" || (sl == Slot::Logins && l.f.domain == "%"))
            && l.class.is_some()
            && parse_value(item, l.f.value.as_deref().unwrap_or("")).is_ok()
    };
    let (mut soft, mut hard): (Option<Held>, Option<Held>) = (None, None);
    for l in lines.iter().filter(|l| applies(l)) {
        let Some(class) = l.class else { continue };
        let held = Held { class, by: l };
        // Lower class: more specific. `None` stands for pam_limits' LIMITS_DEF_NONE.
        let beaten = |h: &Option<Held>| h.is_some_and(|h| h.class < class);
        match sl {
            Slot::Last => {
                soft = Some(held);
                hard = Some(held);
            }
            Slot::Logins => {
                if !beaten(&soft) {
                    soft = Some(held);
                    hard = Some(held);
                }
            }
            Slot::Rlimit => {
                let h = halves(&l.f.kind);
                if h.contains(&"soft") {
                    if beaten(&soft) {
                        continue;
                    }
                    soft = Some(held);
                }
                if h.contains(&"hard") && !beaten(&hard) {
                    hard = Some(held);
                }
            }
        }
    }
    (soft, hard)
}

/// A value as a number for comparing limits (`unlimited` is the largest).
fn magnitude(item: &str, v: &str) -> Option<u128> {
    match parse_value(item, v).ok()?.as_str() {
        "unlimited" => Some(u128::MAX),
        n => n.parse::<u128>().ok(),
    }
}

fn conflicts(files: &[(String, Vec<u8>)], ours: &str, wanted: &[Limit]) -> (Vec<Conflict>, Vec<NoLimits>) {
    let mut lines: Vec<ReadLine> = Vec::new();
    let mut no_limits = Vec::new();
    for (file, bytes) in files {
        for (n, l) in text::lines(bytes).enumerate() {
            let Some(f) = parse_line(&text::view(l)) else { continue };
            if f.item.is_none() {
                // pam_limits ignores `* -` (it only stops for users, groups and uid ranges).
                if f.kind == "-" && f.domain != "*" && !f.domain.starts_with('%') {
                    no_limits.push(NoLimits { file: file.clone(), line: n + 1, domain: f.domain.clone() });
                }
                continue;
            }
            let class = parse_domain(&f.domain, f.item.as_deref().unwrap_or("")).ok();
            lines.push(ReadLine { file: file.as_str(), line: n + 1, f, class });
        }
    }
    let mut out = Vec::new();
    for w in wanted {
        let (soft, hard) = simulate(&lines, w);
        let one_value = slot(&w.item) != Slot::Rlimit;
        let wanted_halves: &[&str] = if one_value { &["soft"] } else { w.halves() };
        for half in wanted_halves {
            let covers = |f: &FileLine| {
                f.item.as_deref() == Some(w.item.as_str()) && (one_value || halves(&f.kind).contains(half))
            };
            let same: Vec<&ReadLine> = lines.iter().filter(|l| l.f.domain == w.domain && covers(&l.f)).collect();
            let others: Vec<Setter> =
                same.iter().filter(|l| !(l.file == ours && l.f.kind == w.kind)).map(|l| l.setter()).collect();
            let overridden_for: Vec<Setter> = lines
                .iter()
                .filter(|l| l.f.domain != w.domain && covers(&l.f) && l.class.is_some_and(|c| c < w.class))
                .filter(|l| matches!(l.class, Some(DomainClass::User) | Some(DomainClass::Group)))
                .map(ReadLine::setter)
                .collect();
            let held = if *half == "hard" { hard } else { soft };
            let mut value = held.map(|h| h.by.f.value.clone().unwrap_or_default()).unwrap_or_default();
            let mut winner = held.map(|h| (h.by.file.to_string(), h.by.line));
            let mut capped_by_hard = false;
            // pam_limits' setup_limits: a soft limit above the hard one is lowered to it.
            if *half == "soft" && !one_value {
                if let (Some(s), Some(h)) = (soft, hard) {
                    let (sv, hv) = (s.by.f.value.as_deref().unwrap_or(""), h.by.f.value.as_deref().unwrap_or(""));
                    if magnitude(&w.item, sv).zip(magnitude(&w.item, hv)).is_some_and(|(a, b)| a > b) {
                        value = hv.to_string();
                        winner = Some((h.by.file.to_string(), h.by.line));
                        capped_by_hard = true;
                    }
                }
            }
            let in_effect = held.is_some() && same_value(&w.item, &value, &w.value);
            if others.is_empty() && overridden_for.is_empty() && in_effect {
                continue;
            }
            let (wins, wins_line) = winner.unwrap_or_default();
            out.push(Conflict {
                domain: w.domain.clone(),
                kind: if one_value { w.kind.clone() } else { half.to_string() },
                item: w.item.clone(),
                set_by: others,
                wins,
                wins_line,
                value_in_effect: value,
                in_effect,
                capped_by_hard,
                overridden_for,
            });
        }
    }
    (out, no_limits)
}

/// What happens to one wanted limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub domain: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub item: String,
    /// The value in `file` before (`null`: no line for it).
    pub before: Option<String>,
    pub after: String,
    pub changed: bool,
}

fn check_file(file: &str) -> Result<(), String> {
    if !file.starts_with('/')
        || file.ends_with('/')
        || file.split('/').any(|c| c == ".." || c == ".")
        || file.chars().any(|c| c.is_control())
        || file.len() > 4096
    {
        return Err(format!("option file: {:?} must be an absolute file path", cap_text(file)));
    }
    Ok(())
}

/// What the task would change. Reads the host, writes nothing.
pub fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
    let wanted = validate(&params.limits).map_err(Failure::new)?;
    check_file(&params.file).map_err(Failure::new)?;
    let mut warnings = Vec::new();
    let (dir, name) = params.file.rsplit_once('/').unwrap_or(("", &params.file));
    if params.file != LIMITS_CONF && dir != LIMITS_D && dir != VENDOR_LIMITS_D {
        warnings.push(format!(
            "{}: pam_limits reads only {LIMITS_CONF} and {LIMITS_D}/*.conf; this file is not applied unless a PAM line names it with conf=",
            params.file
        ));
    } else if params.file != LIMITS_CONF && (!name.ends_with(".conf") || name.starts_with('.')) {
        warnings
            .push(format!("{}: pam_limits reads only *.conf files of {dir}; this file is not applied", params.file));
    }
    let old = host.read_bytes_opt(&params.file).map_err(|e| Failure::new(format!("option file: {e}")))?;
    let new = edit_file(old.as_deref(), &wanted);
    let old_lines: Vec<FileLine> =
        text::lines(old.as_deref().unwrap_or_default()).filter_map(|l| parse_line(&text::view(l))).collect();
    let changes: Vec<Change> = wanted
        .iter()
        .map(|w| {
            let before = old_lines
                .iter()
                .find(|f| f.domain == w.domain && f.kind == w.kind && f.item.as_deref() == Some(w.item.as_str()))
                .and_then(|f| f.value.clone());
            let changed = !before.as_deref().is_some_and(|b| same_value(&w.item, b, &w.value));
            Change {
                domain: w.domain.clone(),
                kind: w.kind.clone(),
                item: w.item.clone(),
                before,
                after: w.value.clone(),
                changed,
            }
        })
        .collect();
    let mut out = engine::Plan::default();
    if old.as_deref() != Some(new.as_slice()) {
        out.diff.push(text::file_diff(&params.file, old.as_deref(), &new));
        out.actions.push(Action::WriteFile { path: params.file.clone(), contents: new.clone() });
    }
    let files = read_order(host, (&params.file, &new));
    let (conflicts, no_limits) = conflicts(&files, &params.file, &wanted);
    // A limit that would not be in effect at login is a failure, not a warning: the run
    // would otherwise report the limit set while sessions get another value.
    let mut not_in_effect: Vec<String> = conflicts
        .iter()
        .filter(|c| !c.in_effect)
        .map(|c| {
            let ours = wanted.iter().find(|w| w.domain == c.domain && w.item == c.item).map(|w| w.value.as_str());
            if c.wins.is_empty() {
                format!("{} {} {}: no line of the files pam_limits reads sets it", c.domain, c.kind, c.item)
            } else if c.capped_by_hard {
                format!(
                    "{} {} {}: the hard limit {} set at {}:{} caps it (pam_limits lowers a soft limit above the hard one), not {}",
                    c.domain,
                    c.kind,
                    c.item,
                    cap_text(&c.value_in_effect),
                    c.wins,
                    c.wins_line,
                    ours.unwrap_or("")
                )
            } else {
                format!(
                    "{} {} {}: {}:{} makes it {}, not {}",
                    c.domain,
                    c.kind,
                    c.item,
                    c.wins,
                    c.wins_line,
                    cap_text(&c.value_in_effect),
                    ours.unwrap_or("")
                )
            }
        })
        .collect();
    for n in no_limits.iter().filter(|n| wanted.iter().any(|w| w.domain == n.domain)) {
        not_in_effect.push(format!(
            "{}:{}: '{} -' makes pam_limits apply no limit at all to {}",
            n.file, n.line, n.domain, n.domain
        ));
    }
    let reads_ours = files.iter().any(|(p, _)| *p == params.file);
    if !not_in_effect.is_empty() && reads_ours {
        let mut f = Failure::new(format!(
            "{} limit(s) would not take effect at login, so nothing was written: {} (pam_limits reads {LIMITS_CONF}, then {LIMITS_D}/*.conf by name; change or remove those lines, or give `file` a name read after them)",
            not_in_effect.len(),
            not_in_effect.join("; ")
        ));
        f.fields.insert("conflicts".into(), serde_json::to_value(&conflicts).unwrap_or_default());
        f.fields.insert("no_limits".into(), serde_json::to_value(&no_limits).unwrap_or_default());
        return Err(f.into());
    }
    if !reads_ours && warnings.is_empty() {
        warnings.push(format!("{}: pam_limits does not read this file", params.file));
    }
    warnings.extend(text::unread_files(host, &[LIMITS_D, VENDOR_LIMITS_D], ".conf", "pam_limits"));
    out.warnings = warnings;
    out.field("changes", &changes);
    out.field("conflicts", &conflicts);
    out.field("no_limits", &no_limits);
    out.field("file", &params.file);
    out.field("files", files.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>());
    Ok(out)
}

/// The module, as the engine's runner sees it.
pub struct Limits;

impl Module for Limits {
    const NAME: &'static str = MODULE;
    type Params = Params;

    fn backup_id(params: &Params) -> Option<&str> {
        params.backup_id.as_deref()
    }

    fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
        plan(host, params)
    }
}

pub fn run(host: &Host, meta: &Meta, params: Params) -> Result<Outcome> {
    engine::run::<Limits>(host, meta, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(domain: &str, kind: &str, item: &str, value: &str) -> LimitParam {
        LimitParam { domain: domain.into(), kind: kind.into(), item: item.into(), value: value.into() }
    }

    #[test]
    fn domains_as_limits_conf_5_reads_them() {
        for (d, c) in [
            ("*", DomainClass::Default),
            ("bob", DomainClass::User),
            ("svc$", DomainClass::User),
            ("1000:", DomainClass::User),
            (":0", DomainClass::User),
            ("1000:1999", DomainClass::User),
            ("@trading", DomainClass::Group),
            ("@:100", DomainClass::Group),
            ("@500:", DomainClass::Group),
        ] {
            assert_eq!(parse_domain(d, "memlock"), Ok(c), "{d}");
        }
        assert_eq!(parse_domain("%", "maxlogins"), Ok(DomainClass::All));
        assert_eq!(parse_domain("%ops", "maxlogins"), Ok(DomainClass::AllGroup));
        assert_eq!(parse_domain("%:10", "maxlogins"), Ok(DomainClass::AllGroup));
        for bad in ["", ":", "2000:1000", "a b", "-x", "@", "@a b", "x;y", "1000:x", "99999999999:"] {
            assert!(parse_domain(bad, "memlock").is_err(), "{bad:?}");
        }
        assert!(parse_domain("%", "nofile").unwrap_err().contains("maxlogins only"));
        assert!(parse_domain("%10:", "maxlogins").is_err());
    }

    #[test]
    fn values_per_item() {
        assert_eq!(parse_value("memlock", "Infinity").unwrap(), "unlimited");
        assert_eq!(parse_value("memlock", "-1").unwrap(), "unlimited");
        assert_eq!(parse_value("nofile", "1048576").unwrap(), "1048576");
        assert_eq!(parse_value("rtprio", "99").unwrap(), "99");
        assert_eq!(parse_value("rtprio", "unlimited").unwrap(), "unlimited");
        assert_eq!(parse_value("nice", "-20").unwrap(), "-20");
        assert_eq!(parse_value("priority", "19").unwrap(), "19");
        assert_eq!(parse_value("maxlogins", "4").unwrap(), "4");
        assert_eq!(parse_value("nonewprivs", "1").unwrap(), "1");
        for (item, bad) in [
            ("memlock", "-5"),
            ("memlock", "1.5"),
            ("memlock", "12k"),
            ("nofile", "18446744073709551616"),
            ("rtprio", "100"),
            ("rtprio", "-1x"),
            ("nice", "unlimited"),
            ("nice", "-21"),
            ("priority", "20"),
            ("nonewprivs", "2"),
            ("maxlogins", "-2"),
            ("memlock", ""),
        ] {
            assert!(parse_value(item, bad).is_err(), "{item} {bad}");
        }
    }

    #[test]
    fn validation_names_the_entry_and_field() {
        let e = validate(&[lim("@t", "-", "memlok", "1")]).unwrap_err();
        assert!(e.starts_with("limits[0].item:") && e.contains("memlock"), "{e}");
        let e = validate(&[lim("@t", "-", "memlock", "1"), lim("@t", "both", "nofile", "1")]).unwrap_err();
        assert!(e.starts_with("limits[1].type:"), "{e}");
        let e = validate(&[lim("@t", "-", "memlock", "1"), lim("@t", "soft", "MEMLOCK", "2")]).unwrap_err();
        assert!(e.starts_with("limits[1]:") && e.contains("limits[0]"), "{e}");
        assert!(validate(&[lim("@t", "soft", "nofile", "1"), lim("@t", "hard", "nofile", "2")]).is_ok());
        let e = validate(&[lim("% ", "-", "nofile", "1")]).unwrap_err();
        assert!(e.starts_with("limits[0].domain:"), "{e}");
        assert!(validate(&[]).unwrap_err().contains("option limits"));
    }

    #[test]
    fn file_edit_keeps_other_lines_and_is_idempotent() {
        let text = "# site\n@trading - memlock 64 # old\n*  soft  core  0\n@trading - MEMLOCK 1\n@trading soft nofile infinity";
        let want = validate(&[
            lim("@trading", "-", "memlock", "unlimited"),
            lim("@trading", "soft", "nofile", "unlimited"),
            lim("@trading", "-", "rtprio", "99"),
        ])
        .unwrap();
        let out = edit_file(Some(text.as_bytes()), &want);
        assert_eq!(
            out,
            b"# site\n@trading\t-\tmemlock\tunlimited\n*  soft  core  0\n@trading soft nofile infinity\n@trading\t-\trtprio\t99\n"
        );
        assert_eq!(edit_file(Some(&out), &want), out);
        assert!(edit_file(None, &want).starts_with(HEADER.as_bytes()));
        // Lines in any encoding are kept byte for byte; a value is read as bytes.
        let odd = b"# gr\xfc\xdfe\r\n@trading - memlock \xff\n@b\xe9 hard core 0";
        let want = validate(&[lim("@trading", "-", "memlock", "unlimited"), lim("@x", "-", "rtprio", "9")]).unwrap();
        assert_eq!(
            edit_file(Some(odd), &want),
            b"# gr\xfc\xdfe\r\n@trading\t-\tmemlock\tunlimited\n@b\xe9 hard core 0\n@x\t-\trtprio\t9\n"
        );
    }

    #[test]
    fn precedence_follows_pam_limits() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        host.write_atomic(LIMITS_CONF, b"@trading - memlock 64\nbob hard memlock 128\n", None).unwrap();
        // Later file, same domain: wins. Later `*` line: never beats a group line.
        host.write_atomic("/etc/security/limits.d/zz-vendor.conf", b"@trading hard memlock 256\n* - memlock 1\n", None)
            .unwrap();
        host.write_atomic("/etc/security/limits.d/10-x.conf.disabled", b"@trading - memlock 2\n", None).unwrap();
        host.write_atomic("/etc/security/limits.d/05-nolimit.conf", b"@trading -\n", None).unwrap();
        let ours = DEFAULT_FILE;
        let want = validate(&[lim("@trading", "-", "memlock", "unlimited")]).unwrap();
        let text = edit_file(None, &want);
        let files = read_order(&host, (ours, &text));
        let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(
            names,
            vec![LIMITS_CONF, "/etc/security/limits.d/05-nolimit.conf", ours, "/etc/security/limits.d/zz-vendor.conf"]
        );
        let (c, nl) = conflicts(&files, ours, &want);
        assert_eq!(nl.len(), 1);
        assert_eq!(c.len(), 2, "{c:?}");
        // The vendor's later hard 256 wins the hard half, and pam_limits lowers our soft
        // unlimited to that hard limit: neither half is ours at login.
        assert_eq!(c[0].kind, "soft");
        assert_eq!((c[0].wins.as_str(), c[0].wins_line), ("/etc/security/limits.d/zz-vendor.conf", 1));
        assert_eq!((c[0].value_in_effect.as_str(), c[0].in_effect), ("256", false));
        assert_eq!(c[0].set_by.len(), 1);
        assert_eq!(c[1].kind, "hard");
        assert_eq!(c[1].wins, "/etc/security/limits.d/zz-vendor.conf");
        assert_eq!((c[1].value_in_effect.as_str(), c[1].in_effect), ("256", false));
        assert_eq!(c[1].overridden_for.len(), 1);
        assert_eq!(c[1].overridden_for[0].domain, "bob");
    }

    /// pam_limits' `process_limit`, rule by rule, on one file read in order.
    #[test]
    fn effective_values_follow_process_limit() {
        let ours = DEFAULT_FILE;
        let effect = |text: &str, want: LimitParam| -> Vec<(String, String, bool)> {
            let want = validate(&[want]).unwrap();
            let files = vec![(ours.to_string(), text.as_bytes().to_vec())];
            let (c, _) = conflicts(&files, ours, &want);
            c.into_iter().map(|c| (c.kind, c.value_in_effect, c.in_effect)).collect()
        };
        let t = |k: &str, v: &str, e: bool| (k.to_string(), v.to_string(), e);
        // A later line of the same file for the same domain wins (`-` covers soft and hard).
        assert_eq!(
            effect("@t soft memlock 64\n@t - memlock 128\n", lim("@t", "soft", "memlock", "64")),
            [t("soft", "128", false)]
        );
        // A later line for a less specific domain never does; an earlier one is replaced.
        assert!(effect("* - memlock 1\n@t - memlock 64\n* - memlock 2\n", lim("@t", "-", "memlock", "64")).is_empty());
        // A later group line for a user domain does not win; a `*` one for `*` does.
        assert!(effect("bob - nofile 10\n@t - nofile 20\n", lim("bob", "-", "nofile", "10")).is_empty());
        assert_eq!(
            effect("* hard nofile 10\n* hard nofile 20\n", lim("*", "hard", "nofile", "10")),
            [t("hard", "20", false)]
        );
        // Soft above hard: pam_limits lowers soft to hard, wherever the hard line comes from.
        assert_eq!(
            effect("@t soft nofile 100\n* hard nofile 50\n", lim("@t", "soft", "nofile", "100")),
            [t("soft", "50", false)]
        );
        assert!(effect("@t soft nofile 100\n* hard nofile 500\n", lim("@t", "soft", "nofile", "100")).is_empty());
        // priority (and nonewprivs) keep the last matching line, whatever its domain.
        assert_eq!(
            effect("@t - priority -5\n* - priority 0\n", lim("@t", "-", "priority", "-5")),
            [t("-", "0", false)]
        );
        // maxlogins ignores the type: a later `hard` line replaces a `soft` one.
        assert_eq!(
            effect("@t soft maxlogins 4\n@t hard maxlogins 2\n", lim("@t", "soft", "maxlogins", "4")),
            [t("soft", "2", false)]
        );
        // A line pam_limits cannot read (a bad value) changes nothing.
        assert!(
            effect("@t soft nofile 100\n@t soft nofile lots\n", lim("@t", "soft", "nofile", "100")).iter().all(|c| c.2)
        );
        // A `-` line whose soft half loses (a user line set it) stops there: its hard half is
        // not read either, so the hard limit stays unset by the files.
        let files = [(ours.to_string(), "bob soft nofile 5\n* - nofile 9\n".to_string())];
        let want = validate(&[lim("bob", "-", "nofile", "5")]).unwrap();
        let lines: Vec<ReadLine> = files[0]
            .1
            .lines()
            .enumerate()
            .filter_map(|(n, l)| parse_line(l).map(|f| (n, f)))
            .map(|(n, f)| {
                let class = parse_domain(&f.domain, "nofile").ok();
                ReadLine { file: ours, line: n + 1, f, class }
            })
            .collect();
        let (soft, hard) = simulate(&lines, &want[0]);
        assert_eq!(soft.map(|h| h.by.line), Some(1));
        assert_eq!(hard.map(|h| h.by.line), None);
    }
}
