//! lltune_sysctl: kernel tunables, at run time under /proc/sys and written to one
//! sysctl.d file (default /etc/sysctl.d/99-latency-tuner.conf, the seed's file).
//!
//! The surprising part is boot order: systemd-sysctl reads every `*.conf` of /etc/sysctl.d,
//! /run/sysctl.d, /usr/local/lib/sysctl.d and /usr/lib/sysctl.d, a file in an earlier folder
//! hiding one of the same name in a later folder, then applies them sorted by file name,
//! the last assignment of a key winning (sysctl.d(5)). A `99-zz.conf` from another package
//! therefore beats ours at boot although the runtime value is right today; `conflicts`
//! reports every other file that sets one of our keys and which file wins.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::engine::state::{Action, normalize_value};
use crate::engine::{self, Module, text};
use crate::facts::sysctl::{Assignment, Key, SYSCTL_DIRS, parse_key, parse_line};
use crate::host::Host;
use crate::protocol::{Diff, Failure, Meta, Outcome, lenient_bool, scalar_map};

pub const MODULE: &str = crate::names::SYSCTL;
/// The seed's file, kept so that hosts tuned by the seed converge without a second file.
pub const DEFAULT_FILE: &str = "/etc/sysctl.d/99-latency-tuner.conf";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    #[default]
    Present,
    /// Remove the keys from `file` (the runtime values are left as they are).
    Absent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// `net.core.busy_poll` → `50`; integers or strings. Values of `state: absent` are ignored.
    #[serde(deserialize_with = "scalar_map")]
    pub settings: BTreeMap<String, Option<String>>,
    #[serde(default = "default_file")]
    pub file: String,
    /// Write /proc/sys now.
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub runtime: bool,
    /// Write the values into `file`, which systemd-sysctl reads at boot. Not `persist`: that
    /// option means "re-apply at boot through lltune-restore.service" in the other modules.
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub write_file: bool,
    #[serde(default)]
    pub state: Presence,
    #[serde(default)]
    pub backup_id: Option<String>,
}

fn default_file() -> String {
    DEFAULT_FILE.to_string()
}

fn yes() -> bool {
    true
}

/// The canonical dotted name of a key as found in a file (either spelling); `None` if odd.
fn canonical(raw: &str) -> Option<String> {
    parse_key(raw).ok().map(|k| k.name)
}

const HEADER: &str = "# Kernel tunables managed by lltune (lltune_sysctl). Edits to keys set here are overwritten.\n";

/// A sysctl.d line's assignment with its key in canonical form.
type Parsed = (Assignment, String);

/// Edits a sysctl.d file's bytes: each wanted key is set on its first line (later lines for
/// it removed), new keys appended; with `absent`, the keys' lines are removed. Other lines
/// are kept byte for byte, whatever their encoding; lines are read as `text::view` gives
/// them, and a value is compared in that form (as bytes).
pub fn edit_file(bytes: Option<&[u8]>, wanted: &[(Key, String)], state: Presence) -> Vec<u8> {
    let src = bytes.unwrap_or(if state == Presence::Present { HEADER.as_bytes() } else { b"" });
    // Each line with its parsed assignment and canonical key, parsed once.
    let mut lines: Vec<(Vec<u8>, Option<Parsed>)> = text::lines(src)
        .map(|l| {
            let parsed = parse_line(&text::view(l)).and_then(|a| canonical(&a.key).map(|c| (a, c)));
            (l.to_vec(), parsed)
        })
        .collect();
    for (key, value) in wanted {
        let mut seen = false;
        let mut i = 0;
        while i < lines.len() {
            let hit = lines[i].1.as_ref().filter(|(_, c)| *c == key.name).map(|(a, _)| a.clone());
            match hit {
                Some(a) if state == Presence::Present && !seen => {
                    seen = true;
                    if normalize_value(&a.value) != normalize_value(&text::view(value.as_bytes())) {
                        let dash = if a.ignore_errors || key.ignore_errors { "-" } else { "" };
                        lines[i].0 = format!("{dash}{} = {value}\n", key.name).into_bytes();
                    }
                    i += 1;
                }
                Some(_) => {
                    lines.remove(i);
                }
                None => i += 1,
            }
        }
        if state == Presence::Present && !seen {
            if let Some(last) = lines.last_mut().filter(|l| !l.0.ends_with(b"\n")) {
                last.0.push(b'\n');
            }
            let dash = if key.ignore_errors { "-" } else { "" };
            lines.push((format!("{dash}{} = {value}\n", key.name).into_bytes(), None));
        }
    }
    lines.into_iter().flat_map(|(l, _)| l).collect()
}

/// One file of the boot-time configuration, in the order it is applied.
#[derive(Debug, Clone)]
struct BootFile {
    path: String,
    bytes: Vec<u8>,
}

/// The files applied at boot, in order, with `ours` (path, text after the change) in its
/// place. /etc/sysctl.conf comes last, as `sysctl --system` reads it, unless a sysctl.d
/// link (the usual `99-sysctl.conf -> ../sysctl.conf`) already brings it in.
fn boot_files(host: &Host, ours: Option<(&str, &[u8])>) -> Vec<BootFile> {
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    let ours_name = ours.and_then(|(p, _)| {
        let (dir, name) = p.rsplit_once('/')?;
        SYSCTL_DIRS.contains(&dir).then(|| name.to_string())
    });
    for dir in SYSCTL_DIRS {
        for name in host.list_or_empty(dir) {
            if name.ends_with(".conf") {
                by_name.entry(name.clone()).or_insert_with(|| format!("{dir}/{name}"));
            }
        }
    }
    if let (Some(name), Some((path, _))) = (&ours_name, ours) {
        by_name.insert(name.clone(), path.to_string());
    }
    let mut files = Vec::new();
    let mut saw_sysctl_conf = false;
    for (_, path) in by_name {
        if let Some((p, bytes)) = ours.filter(|(p, _)| *p == path) {
            files.push(BootFile { path: p.to_string(), bytes: bytes.to_vec() });
            continue;
        }
        // Resolve one level of link inside root: `../sysctl.conf`, or `/dev/null` (masked).
        let (shown, real) = match host.read_link(&path) {
            Some(t) if t == "/dev/null" => continue,
            Some(t) if t.starts_with('/') => (t.clone(), t),
            Some(t) => {
                let dir = path.rsplit_once('/').map(|x| x.0).unwrap_or("");
                let joined = normalize_path(&format!("{dir}/{t}"));
                (joined.clone(), joined)
            }
            None => (path.clone(), path.clone()),
        };
        if real == "/etc/sysctl.conf" {
            saw_sysctl_conf = true;
        }
        if let Ok(bytes) = host.read_bytes(&real) {
            files.push(BootFile { path: if shown == path { path } else { format!("{path} -> {shown}") }, bytes });
        }
    }
    if !saw_sysctl_conf {
        if let Some((p, bytes)) = ours.filter(|(p, _)| *p == "/etc/sysctl.conf") {
            files.push(BootFile { path: p.to_string(), bytes: bytes.to_vec() });
        } else if let Ok(Some(bytes)) = host.read_bytes_opt("/etc/sysctl.conf") {
            files.push(BootFile { path: "/etc/sysctl.conf".into(), bytes });
        }
    }
    files
}

fn normalize_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Another file that sets one of our keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setter {
    pub file: String,
    #[serde(serialize_with = "crate::protocol::capped")]
    pub value: String,
}

/// A key that other files set too, and what the boot order makes of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub key: String,
    /// Other files setting the key, in the order systemd-sysctl applies them.
    pub set_by: Vec<Setter>,
    /// The file whose value the key has after boot (the last one applied).
    pub wins_at_boot: String,
    #[serde(serialize_with = "crate::protocol::capped")]
    pub value_at_boot: String,
}

fn key_matches(pattern: &str, key: &str) -> bool {
    if pattern.contains('*') || pattern.contains('?') {
        glob::Pattern::new(pattern).map(|p| p.matches(key)).unwrap_or(false)
    } else {
        canonical(pattern).as_deref() == Some(key)
    }
}

fn conflicts(files: &[BootFile], ours: &str, keys: &[Key]) -> Vec<Conflict> {
    // Every assignment once, in boot order, with its canonical key (globs kept as written).
    let mut assignments: Vec<(Option<String>, Assignment, &str)> = Vec::new();
    for f in files {
        for a in text::lines(&f.bytes).filter_map(|l| parse_line(&text::view(l))) {
            let canon = if a.key.contains(['*', '?']) { None } else { canonical(&a.key) };
            assignments.push((canon, a, f.path.as_str()));
        }
    }
    let mut out = Vec::new();
    for key in keys {
        let all: Vec<Setter> = assignments
            .iter()
            .filter(|(canon, a, _)| match canon {
                Some(c) => *c == key.name,
                None => key_matches(&a.key, &key.name),
            })
            .map(|(_, a, file)| Setter { file: file.to_string(), value: a.value.clone() })
            .collect();
        let others: Vec<Setter> = all.iter().filter(|s| s.file != ours).cloned().collect();
        if others.is_empty() {
            continue;
        }
        if let Some(last) = all.last() {
            out.push(Conflict {
                key: key.name.clone(),
                set_by: others,
                wins_at_boot: last.file.clone(),
                value_at_boot: last.value.clone(),
            });
        }
    }
    out
}

/// Before and after of one place a key lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BeforeAfter {
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What happens to one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyChange {
    pub key: String,
    pub changed: bool,
    /// `null` with `runtime: false` or `state: absent`.
    pub runtime: Option<BeforeAfter>,
    /// `null` with `write_file: false`.
    pub file: Option<BeforeAfter>,
}

/// The result of planning: what would change, and the writes that do it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub changes: Vec<KeyChange>,
    pub actions: Vec<Action>,
    pub diff: Vec<Diff>,
    pub conflicts: Vec<Conflict>,
    pub warnings: Vec<String>,
    pub reboot_required: bool,
}

/// Values sysctl.d and /proc/sys can hold: one line, no NUL.
fn check_value(key: &str, v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        return Err(format!("settings.{key}: empty value"));
    }
    if v.contains(['\n', '\r', '\0']) {
        return Err(format!("settings.{key}: value must be one line"));
    }
    // procfs takes at most a page per write.
    if v.len() > 4096 {
        return Err(format!("settings.{key}: value is {} bytes; a sysctl value is at most 4096", v.len()));
    }
    Ok(())
}

/// The value the last line of `key` gives it, in `text::view` form.
fn file_value(bytes: Option<&[u8]>, key: &Key) -> Option<String> {
    let lines: Vec<&[u8]> = text::lines(bytes?).collect();
    lines
        .into_iter()
        .rev()
        .filter_map(|l| parse_line(&text::view(l)))
        .find(|a| canonical(&a.key).as_deref() == Some(key.name.as_str()))
        .map(|a| a.value)
}

/// What the task would change. Reads the host, writes nothing. Check mode stops here.
pub fn plan(host: &Host, params: &Params) -> Result<Plan> {
    if params.settings.is_empty() {
        return Err(Failure::new("option settings: give at least one setting").into());
    }
    if !params.file.starts_with('/') || params.file.split('/').any(|c| c == "..") || params.file.ends_with('/') {
        return Err(Failure::new(format!(
            "option file: {:?} must be an absolute file path",
            crate::protocol::cap_text(&params.file)
        ))
        .into());
    }
    let mut warnings = Vec::new();
    if params.file.rsplit_once('/').is_some_and(|(d, _)| SYSCTL_DIRS.contains(&d)) && !params.file.ends_with(".conf") {
        warnings.push(format!(
            "{}: systemd-sysctl reads only *.conf files; this file will not be applied at boot",
            params.file
        ));
    }
    let mut wanted: Vec<(Key, String)> = Vec::new();
    for (raw, value) in &params.settings {
        let (ignore_errors, bare) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw.as_str()),
        };
        let mut key = parse_key(bare).map_err(|e| Failure::new(format!("option settings: {e}")))?;
        key.ignore_errors = ignore_errors;
        let value = match (params.state, value) {
            (Presence::Absent, v) => v.clone().unwrap_or_default(),
            (Presence::Present, None) => {
                return Err(Failure::new(format!("settings.{raw}: a value is required (state: present)")).into());
            }
            (Presence::Present, Some(v)) => {
                check_value(raw, v).map_err(Failure::new)?;
                v.trim().to_string()
            }
        };
        if wanted.iter().any(|(k, _)| k.name == key.name) {
            return Err(Failure::new(format!("option settings: {raw} is given twice (as {})", key.name)).into());
        }
        wanted.push((key, value));
    }

    let runtime_on = params.runtime && params.state == Presence::Present;
    let mut changes = Vec::new();
    let mut actions = Vec::new();
    let (mut rt_before, mut rt_after) = (String::new(), String::new());
    let mut running: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in &wanted {
        let now = match host.read_bytes_opt(&key.path) {
            Ok(v) => v.map(|v| normalize_value(&text::view(&v))),
            Err(e) => return Err(Failure::new(format!("{}: cannot read {}: {e}", key.name, key.path)).into()),
        };
        if let Some(n) = &now {
            running.insert(key.name.clone(), n.clone());
        }
        if !runtime_on {
            continue;
        }
        let Some(now) = now else {
            if key.ignore_errors {
                warnings.push(format!(
                    "{}: no such sysctl on this kernel ({} does not exist); skipped at run time (written with '-')",
                    key.name, key.path
                ));
                continue;
            }
            return Err(Failure::new(format!(
                "{}: no such sysctl on this kernel ({} does not exist); use runtime: false to only write it to the file",
                key.name, key.path
            ))
            .into());
        };
        let after = normalize_value(&text::view(value.as_bytes()));
        if now != after {
            rt_before.push_str(&format!("{} = {now}\n", key.name));
            rt_after.push_str(&format!("{} = {after}\n", key.name));
            actions.push(Action::WriteKernel { path: key.path.clone(), value: value.clone() });
        }
        changes.push(KeyChange {
            key: key.name.clone(),
            changed: now != after,
            runtime: Some(BeforeAfter { before: Some(now), after: Some(after) }),
            file: None,
        });
    }

    let mut diff = Vec::new();
    if !rt_before.is_empty() {
        diff.push(Diff {
            before_header: "runtime (/proc/sys)".into(),
            after_header: "runtime (/proc/sys)".into(),
            before: rt_before,
            after: rt_after,
        });
    }

    let old_text = host.read_bytes_opt(&params.file).map_err(|e| Failure::new(format!("option file: {e}")))?;
    let new_text = if params.write_file {
        edit_file(old_text.as_deref(), &wanted, params.state)
    } else {
        old_text.clone().unwrap_or_default()
    };
    let file_changes = params.write_file
        && old_text.as_deref() != Some(new_text.as_slice())
        && !(old_text.is_none() && params.state == Presence::Absent);
    for (key, value) in &wanted {
        if !params.write_file {
            if !runtime_on {
                changes.push(KeyChange { key: key.name.clone(), changed: false, runtime: None, file: None });
            }
            continue;
        }
        let before = file_value(old_text.as_deref(), key);
        let after =
            if params.state == Presence::Present { Some(normalize_value(&text::view(value.as_bytes()))) } else { None };
        let changed = before.as_deref().map(normalize_value) != after;
        let fc = BeforeAfter { before, after };
        match changes.iter_mut().find(|c| c.key == key.name) {
            Some(c) => {
                c.changed |= changed;
                c.file = Some(fc);
            }
            None => changes.push(KeyChange { key: key.name.clone(), changed, runtime: None, file: Some(fc) }),
        }
    }
    if file_changes {
        diff.push(text::diff(&params.file, &params.file, old_text.as_deref().unwrap_or_default(), &new_text));
        actions.push(Action::WriteFile { path: params.file.clone(), contents: new_text.clone() });
    }

    warnings.extend(text::unread_files(host, SYSCTL_DIRS, ".conf", "systemd-sysctl"));
    let keys: Vec<Key> = wanted.iter().map(|(k, _)| k.clone()).collect();
    let ours_text = if params.write_file { Some(new_text.as_slice()) } else { old_text.as_deref() };
    let files = boot_files(host, ours_text.map(|t| (params.file.as_str(), t)));
    let conflicts = conflicts(&files, &params.file, &keys);
    if params.state == Presence::Present {
        for c in &conflicts {
            let want = wanted
                .iter()
                .find(|(k, _)| k.name == c.key)
                .map(|(_, v)| normalize_value(&text::view(v.as_bytes())))
                .unwrap_or_default();
            if c.wins_at_boot != params.file && normalize_value(&c.value_at_boot) != want {
                warnings.push(format!(
                    "{}: {} sets {} and is applied after {} at boot, so the key will be {} after a reboot",
                    c.key, c.wins_at_boot, c.value_at_boot, params.file, c.value_at_boot
                ));
            }
        }
    }
    // Without a runtime write the new value waits for a reboot (or `sysctl --system`).
    let reboot_required = !runtime_on
        && params.write_file
        && params.state == Presence::Present
        && wanted.iter().any(|(k, v)| running.get(&k.name).is_some_and(|now| *now != normalize_value(v)));
    Ok(Plan { changes, actions, diff, conflicts, warnings, reboot_required })
}

/// The module, as the engine's runner sees it.
pub struct Sysctl;

impl Module for Sysctl {
    const NAME: &'static str = MODULE;
    type Params = Params;

    fn backup_id(params: &Params) -> Option<&str> {
        params.backup_id.as_deref()
    }

    fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
        let p = plan(host, params)?;
        let mut out = engine::Plan {
            actions: p.actions,
            diff: p.diff,
            warnings: p.warnings,
            reboot_required: p.reboot_required,
            ..engine::Plan::default()
        };
        out.field("changes", &p.changes);
        out.field("conflicts", &p.conflicts);
        out.field("file", &params.file);
        Ok(out)
    }
}

pub fn run(host: &Host, meta: &Meta, params: Params) -> Result<Outcome> {
    engine::run::<Sysctl>(host, meta, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        parse_key(s).unwrap()
    }

    #[test]
    fn file_edit_keeps_other_lines_and_never_duplicates() {
        let text = "# mine\nnet.core.busy_poll = 0\nvm.swappiness=10\nnet/core/busy_poll = 7\n-fs.file-max = 5";
        let want = vec![
            (key("net.core.busy_poll"), "50".to_string()),
            (key("fs.file-max"), "9".to_string()),
            (key("net.ipv4.tcp_rmem"), "4096 87380 6291456".to_string()),
        ];
        let edit = |t: &str, w: &[(Key, String)], st| String::from_utf8(edit_file(Some(t.as_bytes()), w, st)).unwrap();
        let out = edit(text, &want, Presence::Present);
        assert_eq!(
            out,
            "# mine\nnet.core.busy_poll = 50\nvm.swappiness=10\n-fs.file-max = 9\nnet.ipv4.tcp_rmem = 4096 87380 6291456\n"
        );
        assert_eq!(edit(&out, &want, Presence::Present), out);
        // Same value spelled with other whitespace: unchanged.
        let same = "net.ipv4.tcp_rmem = 4096  87380\t6291456\n";
        assert_eq!(edit(same, &want[2..], Presence::Present), same);
        let gone = edit(&out, &want[..1], Presence::Absent);
        assert_eq!(gone, "# mine\nvm.swappiness=10\n-fs.file-max = 9\nnet.ipv4.tcp_rmem = 4096 87380 6291456\n");
        assert!(edit_file(None, &want[..1], Presence::Present).starts_with(HEADER.as_bytes()));
    }

    #[test]
    fn values_are_compared_as_bytes_and_other_lines_kept() {
        // A byte that is not UTF-8 is not U+FFFD: a wanted "\u{fffd}" or "\\xe9" differs from it.
        let file = b"# caf\xe9\r\nkernel.domainname = \xe9\nvm.a = 1\0\n";
        for want in ["\u{fffd}", "\\xe9"] {
            let w = vec![(key("kernel.domainname"), want.to_string())];
            let out = edit_file(Some(file), &w, Presence::Present);
            assert_eq!(
                out,
                [&b"# caf\xe9\r\n"[..], format!("kernel.domainname = {want}\n").as_bytes(), b"vm.a = 1\0\n"].concat()
            );
            assert_eq!(
                file_value(Some(&out), &key("kernel.domainname")),
                Some(text::view(want.as_bytes()).into_owned())
            );
        }
        assert_eq!(file_value(Some(file), &key("kernel.domainname")).as_deref(), Some("\\xe9"));
        // Already the value: the file is left as it is, byte for byte.
        let w = vec![(key("vm.a"), "1\0".to_string())];
        assert_eq!(edit_file(Some(file), &w, Presence::Present), file);
    }

    #[test]
    fn boot_order_picks_the_last_file_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        host.write_atomic("/usr/lib/sysctl.d/50-default.conf", b"net.core.busy_poll = 1\n", None).unwrap();
        host.write_atomic("/usr/lib/sysctl.d/99-zz.conf", b"net.core.busy_poll = 3\n", None).unwrap();
        // Hidden by /etc's file of the same name.
        host.write_atomic("/etc/sysctl.d/99-zz.conf", b"net.core.busy_poll = 2\n", None).unwrap();
        host.write_atomic("/etc/sysctl.conf", b"net.ipv4.conf.*.rp_filter = 2\n", None).unwrap();
        let ours = "/etc/sysctl.d/99-latency-tuner.conf";
        let files = boot_files(&host, Some((ours, b"net.core.busy_poll = 50\nnet.ipv4.conf.eth0.rp_filter = 0\n")));
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            names,
            vec!["/usr/lib/sysctl.d/50-default.conf", ours, "/etc/sysctl.d/99-zz.conf", "/etc/sysctl.conf"]
        );
        let c = conflicts(&files, ours, &[key("net.core.busy_poll"), key("net.ipv4.conf.eth0.rp_filter")]);
        assert_eq!(c[0].wins_at_boot, "/etc/sysctl.d/99-zz.conf");
        assert_eq!(c[0].value_at_boot, "2");
        assert_eq!(c[0].set_by.len(), 2);
        assert_eq!(c[1].wins_at_boot, "/etc/sysctl.conf");
    }
}
