//! lltune_bypass: environment profiles for the kernel-bypass stacks (Onload, VMA, XLIO), as
//! a file a shell sources (`/etc/profile.d/lltune-<stack>.sh`, `export NAME=value` lines) and
//! its twin for systemd services (`/etc/lltune/<stack>.env`, `NAME=value` lines, for
//! `EnvironmentFile=`). Both are lltune's own files: written whole, journaled, rolled back.
//!
//! What each `tuning_level` sets is the vendor's own latency profile where the vendor ships
//! one (docs/modules/lltune_bypass.md names the sources): Onload's `latency` and
//! `latency-best` profiles (scripts/onload_profiles in Onload's sources), VMA's and XLIO's
//! `*_SPEC` names (`latency`, `ultra-latency`, `none`). The surprising part is Onload's
//! `latency-best`: it sets `EF_CTPIO_MODE=ct` (cut-through) only when no Solarflare (`sfc`)
//! NIC runs faster than 10 Gb/s, because above that the CPU cannot keep up and cut-through
//! sends poisoned frames; the plan reads each sfc NIC's speed the way the vendor's profile does.
//!
//! Nothing a user gives reaches a shell unchecked: a name is the stack's prefix and capitals,
//! a value is drawn from characters that no shell and no systemd parser treats specially
//! (no quote, `$`, backslash, space, `#`, `;`, `~`, glob or brace), so each line is one plain
//! assignment in both readers and needs no quoting.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;

use crate::engine::state::Action;
use crate::engine::{self, Module, text};
use crate::host::Host;
use crate::protocol::{Failure, Meta, Outcome, cap_text, kind};

pub const MODULE: &str = crate::names::BYPASS;

/// The stacks, with the prefix every variable of theirs carries.
pub const STACKS: &[(&str, &str)] = &[("onload", "EF_"), ("vma", "VMA_"), ("xlio", "XLIO_")];

/// The tuning levels, strongest first.
pub const LEVELS: &[&str] = &["ultra_low_latency", "low_latency", "balanced"];

/// The most bytes of one value, and the most extra variables of one stack.
pub const MAX_VALUE: usize = 256;
pub const MAX_VARIABLES: usize = 64;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Stack name (`onload`, `vma`, `xlio`) → its profile.
    pub profiles: BTreeMap<String, ProfileParam>,
    #[serde(default)]
    pub backup_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileParam {
    /// `present` (default) writes both files; `absent` removes them.
    #[serde(default)]
    pub state: Option<String>,
    /// `ultra_low_latency`, `low_latency` or `balanced`; needed with `present`.
    #[serde(default)]
    pub tuning_level: Option<String>,
    /// More variables, or other values for the level's: `NAME: value` (string or integer).
    #[serde(default)]
    pub variables: BTreeMap<String, Value>,
    /// The file a shell sources (default `/etc/profile.d/lltune-<stack>.sh`).
    #[serde(default)]
    pub path: Option<String>,
    /// The systemd `EnvironmentFile=` twin (default `/etc/lltune/<stack>.env`).
    #[serde(default)]
    pub env_file: Option<String>,
}

/// Onload's `latency` profile (latency.opf): spin up to 100 ms in blocking calls before
/// sleeping; no TCP fast start on new or idle connections (its extra ACKs delay receives).
const ONLOAD_LATENCY: &[(&str, &str)] =
    &[("EF_POLL_USEC", "100000"), ("EF_TCP_FASTSTART_INIT", "0"), ("EF_TCP_FASTSTART_IDLE", "0")];
/// What `latency-best.opf` adds to it (besides `EF_CTPIO_MODE`, decided from the NICs):
/// CTPIO even on full-featured firmware, and epoll objects not shared between threads.
const ONLOAD_BEST: &[(&str, &str)] = &[("EF_CTPIO_SWITCH_BYPASS", "1"), ("EF_EPOLL_MT_SAFE", "1")];
/// lltune's milder set: spin a tenth as long (10 ms) and keep the stack interrupt-driven
/// once the spin ends (Onload's EF_INT_DRIVEN documentation recommends it with spinning,
/// against outliers when the application blocks or is descheduled).
const ONLOAD_BALANCED: &[(&str, &str)] = &[("EF_POLL_USEC", "10000"), ("EF_INT_DRIVEN", "1")];

/// The variables a stack's tuning level sets, in the order written. `ctpio_ct`: Onload's
/// cut-through decision (`latency-best` only).
pub fn level_variables(stack: &str, level: &str, ctpio_ct: bool) -> Vec<(String, String)> {
    let own = |s: &[(&str, &str)]| s.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    match (stack, level) {
        ("onload", "ultra_low_latency") => {
            let mut v = own(ONLOAD_LATENCY);
            if ctpio_ct {
                v.push(("EF_CTPIO_MODE".into(), "ct".into()));
            }
            v.extend(own(ONLOAD_BEST));
            v
        }
        ("onload", "low_latency") => own(ONLOAD_LATENCY),
        ("onload", _) => own(ONLOAD_BALANCED),
        // VMA_SPEC / XLIO_SPEC: the libraries' own profiles (sys_vars.cpp); `none` is the
        // default profile, and RX_POLL the documented default poll count, written so that
        // the profile records them.
        ("vma", "ultra_low_latency") => own(&[("VMA_SPEC", "ultra-latency")]),
        ("vma", "low_latency") => own(&[("VMA_SPEC", "latency")]),
        ("vma", _) => own(&[("VMA_SPEC", "none"), ("VMA_RX_POLL", "100000")]),
        ("xlio", "ultra_low_latency") => own(&[("XLIO_SPEC", "ultra-latency")]),
        ("xlio", "low_latency") => own(&[("XLIO_SPEC", "latency")]),
        _ => own(&[("XLIO_SPEC", "none")]),
    }
}

/// A variable name of `stack`: its prefix, then capitals, digits and `_` (at most 64).
pub fn check_name(stack: &str, name: &str) -> Result<(), String> {
    let prefix = STACKS.iter().find(|(s, _)| *s == stack).map_or("", |(_, p)| *p);
    let body_ok = name.len() <= 64
        && name.len() > prefix.len()
        && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !name.starts_with(prefix) || !body_ok {
        return Err(format!(
            "{:?} is not a {stack} variable: {prefix} then capitals, digits and _ (at most 64 characters)",
            cap_text(name)
        ));
    }
    Ok(())
}

/// Characters a value may hold: none is special to sh (quotes, `$`, backslash, blanks, `#`,
/// `;&|<>()`, globs, `~`, braces) nor to systemd's environment-file parser.
pub fn value_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ',' | ':' | '/' | '+' | '=' | '@' | '%' | '-')
}

/// A value: a string or an integer, 1 to 256 of `value_char_ok`'s characters.
pub fn check_value(v: &Value) -> Result<String, String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        other => return Err(format!("expected a string or an integer, got {}", kind(other))),
    };
    if s.is_empty() || s.len() > MAX_VALUE {
        return Err(format!(
            "a value is 1 to {MAX_VALUE} characters (remove the variable to leave the stack's default)"
        ));
    }
    if let Some(c) = s.chars().find(|c| !value_char_ok(*c)) {
        return Err(format!(
            "{:?} holds {:?}: a value may hold only letters, digits and _ . , : / + = @ % - (nothing a shell or systemd would read specially)",
            cap_text(&s),
            c
        ));
    }
    Ok(s)
}

fn check_path(option: &str, p: &str) -> Result<(), String> {
    if !p.starts_with('/')
        || p.ends_with('/')
        || p.split('/').any(|c| c == ".." || c == ".")
        || p.chars().any(|c| c.is_control())
        || p.len() > 4096
    {
        return Err(format!("option {option}: {:?} must be an absolute file path", cap_text(p)));
    }
    Ok(())
}

/// Onload's cut-through decision, as `latency-best.opf` makes it: `ct` unless some sfc NIC
/// runs faster than 10 Gb/s. Returns (decision, what was seen, a warning when a speed is
/// unknown).
pub fn ctpio_decision(host: &Host) -> (bool, Vec<String>, Option<String>) {
    let (mut fast, mut unknown, mut seen) = (Vec::new(), Vec::new(), Vec::new());
    for nic in host.list_or_empty("/sys/class/net") {
        if host.link_name(&format!("/sys/class/net/{nic}/device/driver")).as_deref() != Some("sfc") {
            continue;
        }
        let speed = host.attr(&format!("/sys/class/net/{nic}/speed")).and_then(|s| s.parse::<i64>().ok());
        match speed {
            Some(s) if s > 10_000 => fast.push(format!("{nic} ({s} Mb/s)")),
            Some(s) if s > 0 => seen.push(format!("{nic} ({s} Mb/s)")),
            _ => unknown.push(nic.clone()),
        }
    }
    seen.extend(fast.iter().cloned());
    seen.extend(unknown.iter().map(|n| format!("{n} (speed unknown)")));
    if !fast.is_empty() {
        return (false, seen, None);
    }
    let warn = (!unknown.is_empty()).then(|| {
        format!(
            "onload: EF_CTPIO_MODE=ct (cut-through) is set, but the link speed of {} is unknown; if latency-sensitive traffic uses a NIC faster than 10 Gb/s, set EF_CTPIO_MODE=sf in variables",
            unknown.join(", ")
        )
    });
    (true, seen, warn)
}

/// One stack's profile, validated and decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub stack: String,
    pub present: bool,
    pub level: Option<String>,
    pub variables: Vec<(String, String)>,
    pub path: String,
    pub env_file: String,
}

impl Profile {
    /// The file a shell sources: a comment, then one `export NAME=value` per variable.
    pub fn shell_text(&self) -> Vec<u8> {
        let mut o = self.header("Source it before starting the application (sh, bash, zsh, ksh)");
        for (k, v) in &self.variables {
            o.push_str(&format!("export {k}={v}\n"));
        }
        o.into_bytes()
    }

    /// The systemd `EnvironmentFile=` twin: the same variables, `NAME=value`.
    pub fn env_text(&self) -> Vec<u8> {
        let mut o = self.header("For services: EnvironmentFile= in the unit");
        for (k, v) in &self.variables {
            o.push_str(&format!("{k}={v}\n"));
        }
        o.into_bytes()
    }

    fn header(&self, how: &str) -> String {
        format!(
            "# {} profile written by lltune (lltune_bypass), tuning level {}. Edits are overwritten.\n# {how}.\n",
            self.stack,
            self.level.as_deref().unwrap_or("-")
        )
    }
}

/// Validates the options and decides each stack's variables (reads the NICs for Onload's
/// cut-through). Errors name the option.
pub fn profiles(host: &Host, params: &Params, warnings: &mut Vec<String>) -> Result<Vec<Profile>, String> {
    if params.profiles.is_empty() {
        return Err("option profiles: give at least one stack (onload, vma, xlio)".into());
    }
    let mut out: Vec<Profile> = Vec::new();
    for (stack, p) in &params.profiles {
        let at = |field: &str| format!("profiles.{}.{field}", cap_text(stack));
        if !STACKS.iter().any(|(s, _)| s == stack) {
            return Err(format!("option profiles: {:?} is not a stack (onload, vma, xlio)", cap_text(stack)));
        }
        let present = match p.state.as_deref().unwrap_or("present") {
            "present" => true,
            "absent" => false,
            other => return Err(format!("option {}: {:?} is not present or absent", at("state"), cap_text(other))),
        };
        let path = p.path.clone().unwrap_or_else(|| format!("/etc/profile.d/lltune-{stack}.sh"));
        let env_file = p.env_file.clone().unwrap_or_else(|| format!("/etc/lltune/{stack}.env"));
        check_path(&at("path"), &path)?;
        check_path(&at("env_file"), &env_file)?;
        if path == env_file {
            return Err(format!("option {}: {path} is also the env_file; give them different paths", at("path")));
        }
        for o in &out {
            for mine in [&path, &env_file] {
                if *mine == o.path || *mine == o.env_file {
                    return Err(format!("option {}: {mine} is also a file of {}", at("path"), o.stack));
                }
            }
        }
        let level = match (&p.tuning_level, present) {
            (Some(l), _) if !LEVELS.contains(&l.as_str()) => {
                return Err(format!(
                    "option {}: {:?} is not a tuning level ({})",
                    at("tuning_level"),
                    cap_text(l),
                    LEVELS.join(", ")
                ));
            }
            (None, true) => {
                return Err(format!(
                    "option {}: needed with state present ({})",
                    at("tuning_level"),
                    LEVELS.join(", ")
                ));
            }
            (l, _) => l.clone(),
        };
        if p.variables.len() > MAX_VARIABLES {
            return Err(format!("option {}: at most {MAX_VARIABLES} variables", at("variables")));
        }
        let mut extra = Vec::new();
        for (k, v) in &p.variables {
            check_name(stack, k).map_err(|e| format!("option {}: {e}", at("variables")))?;
            let v = check_value(v).map_err(|e| format!("option {}: {e}", at(&format!("variables.{k}"))))?;
            extra.push((k.clone(), v));
        }
        let mut variables = Vec::new();
        if let (true, Some(level)) = (present, &level) {
            let mut ct = false;
            if stack == "onload" && level == "ultra_low_latency" && !extra.iter().any(|(k, _)| k == "EF_CTPIO_MODE") {
                let (decision, seen, warn) = ctpio_decision(host);
                ct = decision;
                if !decision {
                    warnings.push(format!(
                        "onload: EF_CTPIO_MODE left unset (store-and-forward): an sfc NIC runs faster than 10 Gb/s, where cut-through sends poisoned frames ({}); set it in variables if the latency-sensitive traffic uses a 10 Gb/s NIC only",
                        seen.join(", ")
                    ));
                }
                warnings.extend(warn);
            }
            variables = level_variables(stack, level, ct);
            for (k, v) in extra {
                match variables.iter_mut().find(|(n, _)| *n == k) {
                    Some(slot) => slot.1 = v,
                    None => variables.push((k, v)),
                }
            }
        }
        if present && path.starts_with("/etc/profile.d/") && !path.ends_with(".sh") {
            warnings.push(format!("{path}: login shells source only *.sh files of /etc/profile.d"));
        }
        out.push(Profile { stack: stack.clone(), present, level, variables, path, env_file });
    }
    Ok(out)
}

/// What the task would change. Reads the host, writes nothing.
pub fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
    let mut out = engine::Plan::default();
    let profiles = profiles(host, params, &mut out.warnings).map_err(Failure::new)?;
    let mut report = serde_json::Map::new();
    for p in &profiles {
        let mut files = Vec::new();
        for (path, new) in [(&p.path, p.shell_text()), (&p.env_file, p.env_text())] {
            let old = host.read_bytes_opt(path).map_err(|e| Failure::new(format!("{path}: {e}")))?;
            let changed = if p.present { old.as_deref() != Some(new.as_slice()) } else { old.is_some() };
            if changed && p.present {
                out.diff.push(text::file_diff(path, old.as_deref(), &new));
                out.actions.push(Action::WriteFile { path: path.clone(), contents: new });
            } else if changed {
                out.diff.push(text::diff(
                    path.as_str(),
                    format!("{path} (absent)"),
                    old.as_deref().unwrap_or_default(),
                    b"",
                ));
                out.actions.push(Action::RemoveFile { path: path.clone() });
            }
            files.push(serde_json::json!({"path": path, "changed": changed}));
        }
        let vars: serde_json::Map<String, Value> =
            p.variables.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        report.insert(
            p.stack.clone(),
            serde_json::json!({
                "state": if p.present { "present" } else { "absent" },
                "tuning_level": p.level,
                "variables": vars,
                "files": files,
            }),
        );
    }
    out.field("profiles", report);
    Ok(out)
}

/// The module, as the engine's runner sees it.
pub struct Bypass;

impl Module for Bypass {
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
    engine::run::<Bypass>(host, meta, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_vendor_profiles() {
        let names = |s: &str, l: &str, ct: bool| -> Vec<String> {
            level_variables(s, l, ct).into_iter().map(|(k, v)| format!("{k}={v}")).collect()
        };
        assert_eq!(
            names("onload", "low_latency", true),
            ["EF_POLL_USEC=100000", "EF_TCP_FASTSTART_INIT=0", "EF_TCP_FASTSTART_IDLE=0"]
        );
        let best = names("onload", "ultra_low_latency", true);
        assert!(best.starts_with(&names("onload", "low_latency", true)), "latency-best imports latency");
        assert!(best.contains(&"EF_CTPIO_MODE=ct".to_string()) && best.contains(&"EF_EPOLL_MT_SAFE=1".to_string()));
        assert!(!names("onload", "ultra_low_latency", false).iter().any(|v| v.starts_with("EF_CTPIO_MODE")));
        assert_eq!(names("vma", "ultra_low_latency", false), ["VMA_SPEC=ultra-latency"]);
        assert_eq!(names("vma", "low_latency", false), ["VMA_SPEC=latency"]);
        assert_eq!(names("xlio", "low_latency", false), ["XLIO_SPEC=latency"]);
        assert_eq!(names("xlio", "balanced", false), ["XLIO_SPEC=none"]);
    }

    #[test]
    fn names_and_values_that_a_shell_would_read_otherwise_are_refused() {
        assert!(check_name("onload", "EF_POLL_USEC").is_ok());
        for bad in ["VMA_SPEC", "EF_", "ef_poll_usec", "EF_A-B", "EF_A B", "LD_PRELOAD", "EF_A=1", ""] {
            assert!(check_name("onload", bad).is_err(), "{bad:?}");
        }
        assert!(check_name("xlio", "XLIO_SPEC").is_ok());
        for good in ["100000", "-1", "ct", "eth0,eth1", "0x3f", "a=b", "/dev/shm/x:y", "50%", "u@h+1"] {
            assert_eq!(check_value(&Value::String(good.into())).as_deref(), Ok(good));
        }
        assert_eq!(check_value(&serde_json::json!(-1)).as_deref(), Ok("-1"));
        for bad in
            ["", "a b", "$(id)", "`id`", "a;b", "a'b", "a\"b", "a\\b", "~root", "*", "a\nb", "{a,b}", "#x", "a&b", "é"]
        {
            assert!(check_value(&Value::String(bad.into())).is_err(), "{bad:?}");
        }
        assert!(check_value(&Value::String("1".repeat(MAX_VALUE + 1))).is_err());
        assert!(check_value(&serde_json::json!(true)).is_err());
        assert!(check_value(&serde_json::json!(1.5)).is_err());
    }
}
