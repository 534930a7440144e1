//! lltune_services: systemd units enabled, disabled, masked, started or stopped
//! (irqbalance and tuned fight a tuned host; chronyd may need to stay).
//!
//! Enablement is symbolic links, edited the way `systemctl enable/disable/mask` would:
//! the unit file is looked up in /etc/systemd/system, /run/systemd/system,
//! /usr/lib/systemd/system, /lib/systemd/system (first found wins), its `[Install]` section
//! says where the links go (`WantedBy=` → `/etc/systemd/system/<target>.wants/<unit>`,
//! `RequiredBy=` → `.requires/`, `UpheldBy=` → `.upholds/`, `Alias=` →
//! `/etc/systemd/system/<alias>`), each link pointing at the unit file; a mask is
//! `/etc/systemd/system/<unit> -> /dev/null`. The journal records the links as links.
//!
//! Run-time state (`state:`) is systemd's business: on a live root (`/`) the module runs
//! `systemctl daemon-reload` after link changes and `systemctl start|stop`, and the journal
//! records whether each unit was active so rollback starts or stops it again. On a captured
//! tree nothing runs: the result says so (`state_not_applied`) and a warning names the units.
//!
//! TuneD's profile (`tuned_profile`) is here too, because this module owns tuned.service: a
//! profile and "TuneD stopped" in one task are refused together, and enabling the unit for
//! the profile is the same link edit. TuneD keeps the profile in two files
//! (tuned/consts.py): `/etc/tuned/active_profile` (the names, space-separated, and a
//! newline) and `/etc/tuned/profile_mode` (`manual` when a person chose it). On a live root
//! with tuned running, `tuned-adm profile NAME...` switches it (the daemon rewrites both
//! files; the journal keeps them first); otherwise (a tree, or tuned not running) lltune
//! writes the two files as TuneD writes them, so the daemon loads the profile when it starts.
//! Either way tuned.service is enabled, so that the profile comes back at every boot. The profile must exist: `<dir>/<name>/tuned.conf` in TuneD's
//! search order, the user's folders first, `/etc/tuned/profiles` and
//! `/usr/lib/tuned/profiles` (TuneD 2.24 and later) and `/etc/tuned`, `/usr/lib/tuned`
//! (before).

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::engine::state::{Action, valid_unit_name};
use crate::engine::{self, Module};
use crate::host::Host;
use crate::protocol::{Diff, Failure, Meta, Outcome, cap_text, lenient_bool};

pub const MODULE: &str = crate::names::SERVICES;
/// Where systemd looks for unit files, most local first (systemd.unit(5)).
pub const UNIT_DIRS: &[&str] =
    &["/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];
/// Where `systemctl enable` writes its links.
pub const CONFIG_DIR: &str = "/etc/systemd/system";
const UNIT_SUFFIXES: &[&str] =
    &["service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Started,
    Stopped,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceParams {
    #[serde(default)]
    pub state: Option<RunState>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub masked: Option<bool>,
}

fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    lenient_bool(v).map(Some).map_err(serde::de::Error::custom)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default)]
    pub services: BTreeMap<String, ServiceParams>,
    /// The TuneD profile to run (several names space-separated, as `tuned-adm profile a b`).
    #[serde(default)]
    pub tuned_profile: Option<String>,
    #[serde(default)]
    pub backup_id: Option<String>,
}

pub use crate::facts::services::{
    TUNED_ACTIVE_PROFILE, TUNED_PROFILE_DIRS, TUNED_PROFILE_MODE, find_tuned_profile, installed_tuned_profiles,
    tuned_profile_names,
};
const TUNED_UNIT: &str = "tuned.service";

/// What happens to TuneD's profile (`tuned` in the result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunedChange {
    /// active_profile's names before (null: no file) and after.
    pub profile: BeforeAfter<Option<String>>,
    pub mode: BeforeAfter<Option<String>>,
    /// Each profile's tuned.conf, as TuneD will load it.
    pub profile_files: Vec<String>,
    /// `tuned-adm` (the daemon runs and switches) or `files` (written for the daemon to load
    /// when it starts).
    pub how: &'static str,
    pub changed: bool,
}

/// The TuneD part of a plan: validated, the profile found, the files or the tuned-adm run
/// planned. `enable` is set when the unit should be enabled by the link edit.
fn plan_tuned(host: &Host, value: &str, out: &mut engine::Plan) -> Result<TunedChange> {
    let names = tuned_profile_names(value).map_err(|e| Failure::new(format!("tuned_profile: {e}")))?;
    let mut files = Vec::new();
    for n in &names {
        match find_tuned_profile(host, n) {
            Ok(p) => files.push(p),
            Err(looked) => {
                return Err(Failure::new(format!(
                    "tuned_profile: no TuneD profile {n:?} on this host (looked at {})",
                    looked.join(", ")
                ))
                .into());
            }
        }
    }
    let want = format!("{}\n", names.join(" "));
    let read = |p: &str| -> Result<Option<Vec<u8>>> {
        host.read_bytes_opt(p).map_err(|e| Failure::new(format!("tuned_profile: reading {p}: {e}")).into())
    };
    let profile_before = read(TUNED_ACTIVE_PROFILE)?;
    let mode_before = read(TUNED_PROFILE_MODE)?;
    let words = |b: &Option<Vec<u8>>| b.as_ref().map(|b| String::from_utf8_lossy(b).trim().to_string());
    let running = matches!(host.system().unit_active(TUNED_UNIT), Ok(Ok(true)));
    let mut changed = false;
    for (path, before, after) in
        [(TUNED_ACTIVE_PROFILE, &profile_before, want.as_bytes()), (TUNED_PROFILE_MODE, &mode_before, b"manual\n")]
    {
        if before.as_deref() == Some(after) {
            continue;
        }
        changed = true;
        out.diff.push(crate::engine::text::diff(path, path, before.as_deref().unwrap_or_default(), after));
        if !running {
            out.actions.push(Action::WriteFile { path: path.into(), contents: after.to_vec() });
        }
    }
    if changed && running {
        // The daemon switches and rewrites both files; the journal keeps them first.
        let mut argv = vec!["tuned-adm".to_string(), "profile".to_string()];
        argv.extend(names.iter().map(|n| n.to_string()));
        let argv = host.system().plan_command(argv).map_err(|e| Failure::new(format!("tuned_profile: {e}")))?;
        out.actions.push(Action::Run {
            argv,
            rewrites: vec![TUNED_ACTIVE_PROFILE.to_string(), TUNED_PROFILE_MODE.to_string()],
        });
    }
    Ok(TunedChange {
        profile: BeforeAfter { before: words(&profile_before), after: Some(names.join(" ")) },
        mode: BeforeAfter { before: words(&mode_before), after: Some("manual".into()) },
        profile_files: files,
        how: if running { "tuned-adm" } else { "files" },
        changed,
    })
}

/// `irqbalance` → `irqbalance.service`; other unit types keep their suffix.
pub fn unit_name(name: &str) -> Result<String, String> {
    let bad = || format!("services: {:?} is not a systemd unit name", cap_text(name));
    let has_suffix = name.rsplit_once('.').is_some_and(|(_, s)| UNIT_SUFFIXES.contains(&s));
    let unit = if has_suffix { name.to_string() } else { format!("{name}.service") };
    if !valid_unit_name(&unit) || unit.contains('/') {
        return Err(bad());
    }
    Ok(unit)
}

/// `foo@bar.service` → (`foo@.service`, `bar`); `None` for a unit that is not an instance.
fn template_of(unit: &str) -> Option<(String, String)> {
    let (prefix, rest) = unit.split_once('@')?;
    let (instance, suffix) = rest.rsplit_once('.')?;
    (!instance.is_empty()).then(|| (format!("{prefix}@.{suffix}"), instance.to_string()))
}

/// The `[Install]` section of a unit file (systemd.unit(5)): lists are space-separated, an
/// empty assignment resets the list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Install {
    pub wanted_by: Vec<String>,
    pub required_by: Vec<String>,
    pub upheld_by: Vec<String>,
    pub alias: Vec<String>,
    pub default_instance: Option<String>,
}

impl Install {
    pub fn is_empty(&self) -> bool {
        self.wanted_by.is_empty() && self.required_by.is_empty() && self.upheld_by.is_empty() && self.alias.is_empty()
    }
}

pub fn parse_install(text: &str) -> Install {
    let mut out = Install::default();
    let mut in_install = false;
    // Continuation lines (`\` at the end) joined first.
    let mut joined: Vec<String> = Vec::new();
    let mut cont = false;
    for l in text.lines() {
        let t = l.trim();
        if cont {
            if let Some(last) = joined.last_mut() {
                last.push(' ');
                last.push_str(t.trim_end_matches('\\'));
            }
        } else {
            joined.push(t.trim_end_matches('\\').to_string());
        }
        cont = t.ends_with('\\');
    }
    for line in joined {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_install = line == "[Install]";
            continue;
        }
        if !in_install {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        let list = match k.trim() {
            "WantedBy" => &mut out.wanted_by,
            "RequiredBy" => &mut out.required_by,
            "UpheldBy" => &mut out.upheld_by,
            "Alias" => &mut out.alias,
            "DefaultInstance" => {
                out.default_instance = Some(v.trim().to_string()).filter(|s| !s.is_empty());
                continue;
            }
            _ => continue,
        };
        if v.trim().is_empty() {
            list.clear();
        } else {
            list.extend(v.split_whitespace().map(str::to_string));
        }
    }
    out
}

/// Expands the specifiers `systemctl enable` resolves in `[Install]` values: `%n` `%N` `%p`
/// `%i` `%I` `%%` (systemd.unit(5)); `None` for any other specifier.
fn expand(value: &str, unit: &str) -> Option<String> {
    let (stem, _) = unit.rsplit_once('.').unwrap_or((unit, ""));
    let (prefix, instance) = match stem.split_once('@') {
        Some((p, i)) => (p, i),
        None => (stem, ""),
    };
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push_str(unit),
            'N' => out.push_str(stem),
            'p' | 'P' => out.push_str(prefix),
            'i' | 'I' => out.push_str(instance),
            '%' => out.push('%'),
            _ => return None,
        }
    }
    Some(out)
}

/// What the tree says about one unit.
#[derive(Debug, Clone)]
struct UnitInfo {
    /// The canonical name (an alias given by the user resolved to its unit).
    unit: String,
    /// The unit file the links point to (`/usr/lib/systemd/system/irqbalance.service`).
    file: Option<String>,
    install: Install,
    /// Mask links (`-> /dev/null`) in /etc/systemd/system or /run/systemd/system.
    masks: Vec<String>,
    /// Every enablement link of the unit under /etc/systemd/system: `.wants/`,
    /// `.requires/`, `.upholds/` entries named after the unit or one of its aliases, and
    /// alias links, with their targets.
    links: Vec<(String, String)>,
}

fn is_mask(host: &Host, path: &str) -> bool {
    host.read_link(path).as_deref() == Some("/dev/null")
}

/// Finds the unit file of `unit` (or of its template) and the links that enable or mask it.
/// The request asks only for "off" (stopped, not enabled, not masked).
fn wants_off(want: &ServiceParams) -> bool {
    want.state != Some(RunState::Started) && want.enabled != Some(true) && want.masked != Some(true)
}

fn lookup(host: &Host, requested: &str) -> Result<UnitInfo, String> {
    let mut unit = requested.to_string();
    // A name that is an alias link in /etc/systemd/system (`chrony.service ->
    // .../chronyd.service`) means the unit it names, as for systemctl.
    if let Some(to) = host.read_link(&format!("{CONFIG_DIR}/{unit}")) {
        if to != "/dev/null" {
            if let Some(base) = to.rsplit('/').next().filter(|b| *b != unit && valid_unit_name(b)) {
                unit = base.to_string();
            }
        }
    }
    let mut masks = Vec::new();
    for dir in ["/etc/systemd/system", "/run/systemd/system"] {
        let p = format!("{dir}/{unit}");
        if is_mask(host, &p) {
            masks.push(p);
        }
    }
    let mut candidates = vec![unit.clone()];
    if let Some((template, _)) = template_of(&unit) {
        candidates.push(template);
    }
    let mut file = None;
    'found: for name in &candidates {
        for dir in UNIT_DIRS {
            let p = format!("{dir}/{name}");
            if is_mask(host, &p) {
                continue;
            }
            if host.read_link(&p).is_some() || host.exists(&p) {
                // A link in a unit folder (`systemctl link`) names the real file: links
                // point at the path as found, as systemctl's do.
                if host.read_opt(&p).ok().flatten().is_some() {
                    file = Some(p);
                    break 'found;
                }
            }
        }
    }
    let install = match &file {
        Some(p) => parse_install(&host.read(p).map_err(|e| format!("{unit}: {e}"))?),
        None => Install::default(),
    };
    if file.is_none() && masks.is_empty() {
        return Err(format!("services.{requested}: no unit file {unit} in {} (unknown unit)", UNIT_DIRS.join(", ")));
    }
    let mut names = vec![unit.clone()];
    for a in &install.alias {
        if let Some(a) = expand(a, &unit) {
            names.push(a);
        }
    }
    let mut links = Vec::new();
    for entry in host.list_or_empty(CONFIG_DIR) {
        let path = format!("{CONFIG_DIR}/{entry}");
        if [".wants", ".requires", ".upholds"].iter().any(|s| entry.ends_with(s)) {
            for name in host.list_or_empty(&path) {
                if names.contains(&name) {
                    let p = format!("{path}/{name}");
                    if let Some(to) = host.read_link(&p) {
                        links.push((p, to));
                    }
                }
            }
        } else if names[1..].contains(&entry) {
            if let Some(to) = host.read_link(&path).filter(|t| t != "/dev/null") {
                links.push((path, to));
            }
        }
    }
    crate::sort::sort_by(&mut links, Ord::cmp);
    Ok(UnitInfo { unit, file, install, masks, links })
}

/// The links `systemctl enable` makes for a unit: (link path, target).
fn enable_links(info: &UnitInfo) -> Result<Vec<(String, String)>, String> {
    let file = info.file.clone().ok_or_else(|| format!("{}: masked and no unit file to enable", info.unit))?;
    // A template is enabled through its DefaultInstance=.
    let unit = if info.unit.contains("@.") {
        let inst = info.install.default_instance.as_deref().ok_or_else(|| {
            format!("{}: a template without DefaultInstance=; name an instance (name@instance)", info.unit)
        })?;
        info.unit.replacen("@.", &format!("@{inst}."), 1)
    } else {
        info.unit.clone()
    };
    let mut out = Vec::new();
    let bad = |v: &str| format!("{}: [Install] value {:?} uses a specifier lltune does not expand", info.unit, v);
    for (list, dir) in [
        (&info.install.wanted_by, "wants"),
        (&info.install.required_by, "requires"),
        (&info.install.upheld_by, "upholds"),
    ] {
        for t in list {
            let t = expand(t, &unit).ok_or_else(|| bad(t))?;
            if !valid_unit_name(&t) {
                return Err(bad(&t));
            }
            out.push((format!("{CONFIG_DIR}/{t}.{dir}/{unit}"), file.clone()));
        }
    }
    for a in &info.install.alias {
        let a = expand(a, &unit).ok_or_else(|| bad(a))?;
        if !valid_unit_name(&a) {
            return Err(bad(&a));
        }
        out.push((format!("{CONFIG_DIR}/{a}"), file.clone()));
    }
    crate::sort::sort_by(&mut out, Ord::cmp);
    out.dedup();
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BeforeAfter<T> {
    pub before: T,
    pub after: T,
}

/// What happens to one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitChange {
    /// The name as given (`irqbalance`).
    pub name: String,
    /// The unit (`irqbalance.service`).
    pub unit: String,
    /// The unit file its links point to; `null` for a masked unit without one.
    pub unit_file: Option<String>,
    pub enabled: BeforeAfter<bool>,
    pub masked: BeforeAfter<bool>,
    /// `active` before and after on a live root; `null` on a captured tree.
    pub active: Option<BeforeAfter<bool>>,
    /// Links made and removed.
    pub links_added: Vec<String>,
    pub links_removed: Vec<String>,
    pub changed: bool,
}

fn show(links: &[(String, String)], masks: &[String]) -> String {
    let mut s = String::new();
    for (p, t) in links {
        s.push_str(&format!("{p} -> {t}\n"));
    }
    for m in masks {
        s.push_str(&format!("{m} -> /dev/null\n"));
    }
    s
}

/// What the task would change. Reads the host (and `systemctl is-active` on a live
/// root), writes nothing.
pub fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
    if params.services.is_empty() && params.tuned_profile.is_none() {
        return Err(Failure::new("option services: name at least one unit (or give tuned_profile)").into());
    }
    let mut services = params.services.clone();
    let mut tuned_out = engine::Plan::default();
    let mut tuned = None;
    if let Some(value) = &params.tuned_profile {
        // The profile needs tuned: a request that stops, disables or masks it is a contradiction.
        for (name, want) in &params.services {
            if unit_name(name).as_deref() == Ok(TUNED_UNIT)
                && (want.state == Some(RunState::Stopped) || want.enabled == Some(false) || want.masked == Some(true))
            {
                return Err(Failure::new(format!(
                    "tuned_profile: services.{name} stops, disables or masks tuned, which would not run the profile"
                ))
                .into());
            }
        }
        tuned = Some(plan_tuned(host, value, &mut tuned_out)?);
        let given = params.services.keys().any(|n| unit_name(n).as_deref() == Ok(TUNED_UNIT));
        if !given {
            // The unit enabled whether tuned runs now or not: a profile that no boot starts
            // again would be gone after the next reboot.
            if lookup(host, TUNED_UNIT).is_ok() {
                services.insert("tuned".into(), ServiceParams { enabled: Some(true), ..Default::default() });
            } else {
                tuned_out.warnings.push(format!(
                    "tuned_profile: no unit file {TUNED_UNIT} in {}: the profile is written, but nothing starts TuneD",
                    UNIT_DIRS.join(", ")
                ));
            }
        }
    }
    // Everything is validated and looked up before any action is planned.
    let mut units = Vec::new();
    let mut absent: Vec<String> = Vec::new();
    for (name, want) in &services {
        let unit = unit_name(name).map_err(Failure::new)?;
        if want.state.is_none() && want.enabled.is_none() && want.masked.is_none() {
            return Err(Failure::new(format!("services.{name}: give state, enabled or masked")).into());
        }
        if want.masked == Some(true) && want.enabled == Some(true) {
            return Err(Failure::new(format!("services.{name}: a masked unit cannot be enabled")).into());
        }
        if want.masked == Some(true) && want.state == Some(RunState::Started) {
            return Err(Failure::new(format!("services.{name}: a masked unit cannot be started")).into());
        }
        let info = match lookup(host, &unit) {
            Ok(info) => info,
            // Not installed: "stopped and disabled" already holds. Anything else needs the unit.
            Err(e) if e.contains("(unknown unit)") && wants_off(want) => {
                absent.push(format!("{unit}: not installed (no unit file), so already stopped and disabled"));
                continue;
            }
            Err(e) => return Err(Failure::new(e).into()),
        };
        if units.iter().any(|(_, _, i): &(String, ServiceParams, UnitInfo)| i.unit == info.unit) {
            return Err(Failure::new(format!("services.{name}: {} is given twice", info.unit)).into());
        }
        units.push((name.clone(), want.clone(), info));
    }

    let mut out = engine::Plan::default();
    out.warnings.extend(absent);
    // TuneD's files first (the journal keeps them before the unit is enabled).
    out.actions.append(&mut tuned_out.actions);
    out.diff.append(&mut tuned_out.diff);
    out.warnings.append(&mut tuned_out.warnings);
    let mut link_actions = Vec::new();
    let mut unit_actions = Vec::new();
    let mut changes = Vec::new();
    let mut state_not_applied = Vec::new();
    for (name, want, info) in &units {
        let masked_before = !info.masks.is_empty();
        let enabled_before = !info.links.is_empty() && !masked_before;
        let masked_after = want.masked.unwrap_or(masked_before);
        if want.enabled == Some(true) && masked_after {
            return Err(Failure::new(format!(
                "services.{name}: {} is masked; add masked: false to enable it",
                info.unit
            ))
            .into());
        }
        let mut add: Vec<(String, String)> = Vec::new();
        let mut remove: Vec<String> = Vec::new();
        match want.enabled {
            Some(true) => {
                let wanted = enable_links(info).map_err(|e| Failure::new(format!("services.{name}: {e}")))?;
                if wanted.is_empty() {
                    return Err(Failure::new(format!(
                        "services.{name}: {} has no [Install] section (a static unit); it cannot be enabled",
                        info.unit
                    ))
                    .into());
                }
                for (p, t) in wanted {
                    if host.read_link(&p).is_none() {
                        if host.exists(&p) {
                            return Err(Failure::new(format!(
                                "services.{name}: {p} exists and is not a link; not replaced"
                            ))
                            .into());
                        }
                        add.push((p, t));
                    }
                }
            }
            Some(false) => remove.extend(info.links.iter().map(|(p, _)| p.clone())),
            None => {}
        }
        match want.masked {
            Some(true) if !masked_before => {
                let p = format!("{CONFIG_DIR}/{}", info.unit);
                if host.read_link(&p).is_some() || host.exists(&p) {
                    return Err(Failure::new(format!(
                        "services.{name}: {p} exists (a unit file or link of the admin's); systemctl mask refuses it too"
                    ))
                    .into());
                }
                add.push((p, "/dev/null".into()));
            }
            Some(false) => remove.extend(info.masks.iter().cloned()),
            _ => {}
        }
        let enabled_after = if masked_after {
            false
        } else {
            match want.enabled {
                Some(e) => e,
                None => enabled_before,
            }
        };
        let mut links_after: Vec<(String, String)> =
            info.links.iter().filter(|(p, _)| !remove.contains(p)).cloned().collect();
        links_after.extend(add.iter().filter(|(_, t)| t != "/dev/null").cloned());
        crate::sort::sort_by(&mut links_after, Ord::cmp);
        let masks_after: Vec<String> = info
            .masks
            .iter()
            .filter(|m| !remove.contains(m))
            .cloned()
            .chain(add.iter().filter(|(_, t)| t == "/dev/null").map(|(p, _)| p.clone()))
            .collect();
        if !add.is_empty() || !remove.is_empty() {
            out.diff.push(Diff {
                before_header: format!("links of {}", info.unit),
                after_header: format!("links of {}", info.unit),
                before: show(&info.links, &info.masks),
                after: show(&links_after, &masks_after),
            });
        }
        for p in &remove {
            link_actions.push(Action::RemoveLink { path: p.clone() });
        }
        for (p, t) in &add {
            link_actions.push(Action::SetLink { path: p.clone(), to: t.clone() });
        }
        let mut active = None;
        if let Some(state) = want.state {
            let after = state == RunState::Started;
            if let Ok(asked) = host.system().unit_active(&info.unit) {
                let before = asked
                    .map_err(|e| Failure::new(format!("services.{name}: systemctl is-active {}: {e}", info.unit)))?;
                if before != after {
                    let word = |a: bool| if a { "active\n" } else { "inactive\n" };
                    out.diff.push(Diff {
                        before_header: format!("unit {}", info.unit),
                        after_header: format!("unit {}", info.unit),
                        before: word(before).into(),
                        after: word(after).into(),
                    });
                    unit_actions.push(Action::SetUnit { unit: info.unit.clone(), active: after });
                }
                active = Some(BeforeAfter { before, after });
            } else {
                state_not_applied.push(info.unit.clone());
            }
        }
        let changed = !add.is_empty() || !remove.is_empty() || active.as_ref().is_some_and(|a| a.before != a.after);
        changes.push(UnitChange {
            name: name.clone(),
            unit: info.unit.clone(),
            unit_file: info.file.clone(),
            enabled: BeforeAfter { before: enabled_before, after: enabled_after },
            masked: BeforeAfter { before: masked_before, after: masked_after },
            active,
            links_added: add.iter().map(|(p, t)| format!("{p} -> {t}")).collect(),
            links_removed: remove.clone(),
            changed,
        });
    }
    let links_change = !link_actions.is_empty();
    out.actions.extend(link_actions);
    if links_change {
        // On a tree systemd is not running: the links alone are the change.
        if let Ok(argv) = host.system().plan_command(vec!["systemctl".into(), "daemon-reload".into()]) {
            out.actions.push(Action::Run { argv, rewrites: vec![] });
        }
    }
    out.actions.extend(unit_actions);
    // On a tree only unit links change: `state_not_applied` names the units whose run-time
    // state (state:) was left alone. Not a warning: a tree has no running units to change.
    out.field("services", &changes);
    out.field("state_not_applied", &state_not_applied);
    if let Some(t) = &tuned {
        out.field("tuned", t);
    }
    Ok(out)
}

/// The module, as the engine's runner sees it.
pub struct Services;

impl Module for Services {
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
    engine::run::<Services>(host, meta, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_sections_and_specifiers() {
        let i = parse_install(
            "[Unit]\nWantedBy=nope.target\n[Install]\nWantedBy=multi-user.target \\\n  graphical.target\nAlias=chrony.service\n\
             RequiredBy=a.target\nRequiredBy=\nRequiredBy=b.target\nDefaultInstance=eth0\n[Service]\nAlias=x.service\n",
        );
        assert_eq!(i.wanted_by, vec!["multi-user.target", "graphical.target"]);
        assert_eq!(i.alias, vec!["chrony.service"]);
        assert_eq!(i.required_by, vec!["b.target"]);
        assert_eq!(i.default_instance.as_deref(), Some("eth0"));
        assert_eq!(expand("%p-wait@%i.target", "ptp4l@eth0.service").as_deref(), Some("ptp4l-wait@eth0.target"));
        assert_eq!(expand("%N.x", "a.service").as_deref(), Some("a.x"));
        assert_eq!(expand("%H", "a.service"), None);
        assert!(parse_install("[Unit]\n").is_empty());
    }

    #[test]
    fn names() {
        assert_eq!(unit_name("irqbalance").unwrap(), "irqbalance.service");
        assert_eq!(unit_name("fstrim.timer").unwrap(), "fstrim.timer");
        assert_eq!(unit_name("ptp4l@eth0").unwrap(), "ptp4l@eth0.service");
        for bad in ["", "-x", "../x", "a b", "a/b", ".hidden", "x;y"] {
            assert!(unit_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(template_of("ptp4l@eth0.service"), Some(("ptp4l@.service".into(), "eth0".into())));
        assert_eq!(template_of("ptp4l@.service"), None);
    }

    #[test]
    fn tuned_profile_names_as_tuned_reads_them() {
        assert_eq!(tuned_profile_names("latency-performance").unwrap(), ["latency-performance"]);
        assert_eq!(tuned_profile_names("cpu-partitioning  my_site.v2").unwrap(), ["cpu-partitioning", "my_site.v2"]);
        for (bad, why) in [
            ("", "empty"),
            ("   ", "empty"),
            ("a/b", "'/'"),
            ("..", "names a folder"),
            ("ok ..", "names a folder"),
            (".", "names a folder"),
            ("-p", "starts with '-'"),
            ("a\tb", "'\\t'"),
            ("a\nb", "'\\n'"),
            ("prof$(x)", "'$'"),
        ] {
            let e = tuned_profile_names(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(tuned_profile_names(&"a".repeat(256)).unwrap_err().contains("255"));
        assert!(tuned_profile_names(&"a ".repeat(600)).unwrap_err().contains("1024"));
    }

    #[test]
    fn tuned_profiles_are_found_in_both_layouts_user_folders_first() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        host.write_atomic("/usr/lib/tuned/profiles/latency-performance/tuned.conf", b"[main]\n", None).unwrap();
        host.write_atomic("/usr/lib/tuned/throughput-performance/tuned.conf", b"[main]\n", None).unwrap();
        host.write_atomic("/usr/lib/tuned/profiles/site/tuned.conf", b"[main]\n", None).unwrap();
        host.write_atomic("/etc/tuned/site/tuned.conf", b"[main]\n", None).unwrap();
        host.write_atomic("/etc/tuned/active_profile", b"site\n", None).unwrap();
        assert_eq!(
            find_tuned_profile(&host, "latency-performance").unwrap(),
            "/usr/lib/tuned/profiles/latency-performance/tuned.conf"
        );
        assert_eq!(
            find_tuned_profile(&host, "throughput-performance").unwrap(),
            "/usr/lib/tuned/throughput-performance/tuned.conf"
        );
        assert_eq!(find_tuned_profile(&host, "site").unwrap(), "/etc/tuned/site/tuned.conf");
        let looked = find_tuned_profile(&host, "nope").unwrap_err();
        assert_eq!(looked.len(), 4);
        assert_eq!(looked[0], "/etc/tuned/profiles/nope/tuned.conf");
        // A folder without tuned.conf is no profile.
        std::fs::create_dir_all(dir.path().join("usr/lib/tuned/profiles/empty")).unwrap();
        assert_eq!(installed_tuned_profiles(&host), ["latency-performance", "site", "throughput-performance"]);
    }

    #[test]
    fn templates_enable_their_default_instance_and_instances_link_to_the_template() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        host.write_atomic(
            "/usr/lib/systemd/system/ptp4l@.service",
            b"[Install]\nWantedBy=multi-user.target\nDefaultInstance=eth0\n",
            None,
        )
        .unwrap();
        let info = lookup(&host, "ptp4l@ens1f0.service").unwrap();
        assert_eq!(info.file.as_deref(), Some("/usr/lib/systemd/system/ptp4l@.service"));
        assert_eq!(
            enable_links(&info).unwrap(),
            vec![(
                "/etc/systemd/system/multi-user.target.wants/ptp4l@ens1f0.service".to_string(),
                "/usr/lib/systemd/system/ptp4l@.service".to_string()
            )]
        );
        let t = lookup(&host, "ptp4l@.service").unwrap();
        assert_eq!(enable_links(&t).unwrap()[0].0, "/etc/systemd/system/multi-user.target.wants/ptp4l@eth0.service");
        assert!(lookup(&host, "nope.service").unwrap_err().contains("unknown unit"));
    }
}
