//! Ansible's binary-module protocol, shared by every `lltune_*` module.
//!
//! Ansible copies the binary to the target and runs it with one argument: the path of a JSON
//! file holding the task's options and `_ansible_*` keys side by side. With no argument the
//! same JSON is read from standard input (for people and tests). The module prints exactly
//! one JSON object and exits 0, or 1 when `failed`. Ansible reads only the JSON: a module
//! that exits 1 without `"failed": true` would be reported as ok, so every path out of here,
//! a panic included, prints a JSON object.
//!
//! `_ansible_*` keys are read leniently (their set changes with every Ansible release); all
//! other keys are validated strictly against the module's `Params` type.
//!
//! Every module also takes `option_names`, a mapping of its option names to the caller's
//! (`{root: lltune_root}`): a role passes its variables as options, and a failure then names
//! the variable the user set (`lltune_root: ...`), not the option (`option root: ...`),
//! without a task of the role's own to rename it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::host::Host;

/// The `_ansible_*` keys lltune acts on.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// `_ansible_check_mode`: plan and report, write nothing.
    pub check_mode: bool,
    /// `_ansible_diff`: return `diff`.
    pub diff: bool,
    /// `_ansible_verbosity`.
    pub verbosity: u64,
    /// `_ansible_module_name`, when Ansible sends it.
    pub module_name: Option<String>,
    /// `_ansible_no_log`: no file contents or values in the result (or the audit trail).
    pub no_log: bool,
    /// The module's options as Ansible passed them (JSON), for the audit trail;
    /// `None` when no Ansible invocation ran the module (the CLI).
    pub invocation: Option<String>,
    /// `_ansible_syslog_facility` (`LOG_USER` when absent), for the audit trail.
    pub syslog_facility: Option<String>,
    /// Option `reasons` of a changing module: why each of its options is asked for (option or
    /// setting name → the config key path, and the finding behind it), as `lltune_audit`
    /// returns them; shown before the module's diff (`engine::why_diff`).
    pub reasons: Option<Map<String, Value>>,
    /// Option `persist_planned` (check mode only): which of the shared persistence files an
    /// earlier step of this run already shows being installed; this step leaves them out of
    /// its diff (one diff per file per run).
    pub persist_planned: PersistPlanned,
}

/// What earlier steps of a run show of persistence's shared files (option `persist_planned`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PersistPlanned {
    /// Nothing: this step shows whatever it installs.
    #[default]
    Nothing,
    /// `true`: an earlier step shows `lltune-restore.service` and its enablement link.
    RestoreUnit,
    /// The modules of this run that persist, in any order. Those before this module in the run
    /// order (`names::ORDER`) show the restore unit and its link; where one of them is a NIC
    /// or IRQ module, also the udev rule and `lltune-reapply@.service`.
    Modules(Vec<String>),
}

impl Meta {
    fn from_keys(keys: &Map<String, Value>) -> Meta {
        let flag = |k: &str| keys.get(k).map(truthy).unwrap_or(false);
        Meta {
            check_mode: flag("_ansible_check_mode"),
            diff: flag("_ansible_diff"),
            verbosity: keys.get("_ansible_verbosity").and_then(Value::as_u64).unwrap_or(0),
            module_name: keys.get("_ansible_module_name").and_then(Value::as_str).map(str::to_string),
            no_log: flag("_ansible_no_log"),
            invocation: None,
            syslog_facility: keys.get("_ansible_syslog_facility").and_then(Value::as_str).map(str::to_string),
            reasons: None,
            persist_planned: PersistPlanned::Nothing,
        }
    }
}

/// Ansible's own reading of a boolean-ish value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() == Some(1),
        Value::String(s) => matches!(s.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on" | "y" | "t"),
        _ => false,
    }
}

/// One entry of `diff`: the text of a file or setting before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    pub before_header: String,
    pub after_header: String,
    pub before: String,
    pub after: String,
}

/// What a module run produced. `fields` go into the JSON result beside `changed`/`failed`,
/// then the `serialized` ones.
#[derive(Debug, Default)]
pub struct Outcome {
    pub changed: bool,
    pub fields: Map<String, Value>,
    pub warnings: Vec<String>,
    pub diff: Vec<Diff>,
    serialized: Vec<(String, Deferred)>,
}

/// A value a module returns as it is, written as JSON text only when the result is printed
/// (`Outcome::serialized`).
pub trait WriteJson {
    fn write_json(&self, w: &mut dyn Write) -> serde_json::Result<()>;
}

impl<T: Serialize> WriteJson for T {
    fn write_json(&self, w: &mut dyn Write) -> serde_json::Result<()> {
        serde_json::to_writer(w, self)
    }
}

/// A result field held as its value until it is written (`Outcome::serialized`).
pub struct Deferred(Box<dyn WriteJson>);

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deferred(..)")
    }
}

impl Deferred {
    /// The value as JSON text (for a serializer other than the result's own writer).
    fn raw(&self) -> serde_json::Result<Box<RawValue>> {
        let mut text = Vec::new();
        self.0.write_json(&mut text)?;
        let text = String::from_utf8(text).map_err(serde::ser::Error::custom)?;
        RawValue::from_string(text)
    }
}

impl Outcome {
    pub fn new(changed: bool) -> Outcome {
        Outcome { changed, ..Outcome::default() }
    }

    /// Adds a result field. Serialization of our own types cannot fail (no maps with
    /// non-string keys); should it ever, the field carries the error text instead.
    pub fn field(mut self, key: &str, value: impl Serialize) -> Outcome {
        let v = serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("unserializable: {e}")));
        self.fields.insert(key.to_string(), v);
        self
    }

    /// Adds a result field kept as the value it is and written as JSON text straight to the
    /// output when the result is printed: no tree of values (a detail scan's facts as values
    /// took several times the memory of their text) and no copy of its text (tens of MB for
    /// a detail scan at 512 CPUs). The field is written after the module's other fields; no
    /// code can look into it.
    pub fn serialized(mut self, key: &str, value: impl Serialize + 'static) -> Outcome {
        self.serialized.push((key.to_string(), Deferred(Box::new(value))));
        self
    }
}

/// A module's JSON result: an object of values, then the fields written as JSON text
/// (`Outcome::serialized`).
#[derive(Debug)]
pub struct Output {
    pub value: Value,
    serialized: Vec<(String, Deferred)>,
}

impl From<Value> for Output {
    fn from(value: Value) -> Output {
        Output { value, serialized: Vec::new() }
    }
}

/// One field of an `Output`, in the order it is written.
enum Field<'a> {
    Value(&'a Value),
    Deferred(&'a Deferred),
}

impl Output {
    /// The fields in the order `render` gives: the module's fields (the serialized ones after
    /// the others), then `diff` and `warnings`. `None` when the value is not an object.
    fn fields(&self) -> Option<Vec<(&str, Field<'_>)>> {
        let Value::Object(fields) = &self.value else { return None };
        let mut out = Vec::with_capacity(fields.len() + self.serialized.len());
        let mut pending = Some(&self.serialized);
        for (k, v) in fields {
            if k == "diff" || k == "warnings" {
                out.extend(pending.take().into_iter().flatten().map(|(k, v)| (k.as_str(), Field::Deferred(v))));
            }
            out.push((k.as_str(), Field::Value(v)));
        }
        out.extend(pending.into_iter().flatten().map(|(k, v)| (k.as_str(), Field::Deferred(v))));
        Some(out)
    }

    /// Writes the result as one line of JSON: the same text as serializing it, with each
    /// serialized field written straight from its value.
    pub fn write_json<W: Write>(&self, w: &mut W) -> serde_json::Result<()> {
        let Some(fields) = self.fields() else { return serde_json::to_writer(w, &self.value) };
        let io = serde_json::Error::io;
        w.write_all(b"{").map_err(io)?;
        for (i, (k, v)) in fields.into_iter().enumerate() {
            if i > 0 {
                w.write_all(b",").map_err(io)?;
            }
            serde_json::to_writer(&mut *w, k)?;
            w.write_all(b":").map_err(io)?;
            match v {
                Field::Value(v) => serde_json::to_writer(&mut *w, v)?,
                Field::Deferred(d) => d.0.write_json(w)?,
            }
        }
        w.write_all(b"}").map_err(io)
    }
}

impl Serialize for Output {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(fields) = self.fields() else { return self.value.serialize(s) };
        let mut map = s.serialize_map(Some(fields.len()))?;
        for (k, v) in fields {
            match v {
                Field::Value(v) => map.serialize_entry(k, v)?,
                Field::Deferred(d) => map.serialize_entry(k, &d.raw().map_err(serde::ser::Error::custom)?)?,
            }
        }
        map.end()
    }
}

/// A failure that carries more than a message: whether something was already applied (and
/// reverted) and extra result fields.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Failure {
    pub msg: String,
    pub changed: bool,
    pub fields: Map<String, Value>,
}

impl Failure {
    pub fn new(msg: impl Into<String>) -> Failure {
        Failure { msg: msg.into(), changed: false, fields: Map::new() }
    }
}

/// The name this binary was started as, for messages. From `args_os`: the panic hook calls
/// this, and `args()` would panic again on a name that is not UTF-8.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| a.to_string_lossy().rsplit('/').next().map(str::to_string))
        .unwrap_or_else(|| "lltune module".to_string())
}

/// Entry point of every module binary: read args, validate, run, print one JSON object.
pub fn main<P, F>(run: F) -> ExitCode
where
    P: DeserializeOwned,
    F: FnOnce(&Host, &Meta, P) -> Result<Outcome>,
{
    main_with(run, Kind::PLAIN)
}

/// What the protocol takes for one module binary beyond its own options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// A changing module: the engine's run option `reasons` is an option.
    pub engine: bool,
    /// A module that persists (`persist: true`): the engine's `persist_planned` is an option.
    pub persists: bool,
    /// The largest arguments it reads.
    pub max_args: u64,
}

impl Kind {
    pub const PLAIN: Kind = Kind { engine: false, persists: false, max_args: MAX_ARGS_BYTES };
    pub const CHANGING: Kind = Kind { engine: true, persists: false, max_args: MAX_ARGS_BYTES };
    pub const PERSISTING: Kind = Kind { engine: true, persists: true, max_args: MAX_ARGS_BYTES };
    /// `lltune_report`, whose `facts` option carries every host's facts at once.
    pub const REPORT: Kind = Kind { engine: false, persists: false, max_args: MAX_REPORT_ARGS_BYTES };
}

/// Entry point of a module binary of the given kind (`Kind`; `main` is `Kind::PLAIN`).
pub fn main_with<P, F>(run: F, kind: Kind) -> ExitCode
where
    P: DeserializeOwned,
    F: FnOnce(&Host, &Meta, P) -> Result<Outcome>,
{
    install_panic_hook();
    // The args file's path as the OS gives it: Ansible's temporary folder may have any bytes
    // in its name (`std::env::args` would panic on one that is not UTF-8).
    let (result, code) = execute(std::env::args_os().nth(1).map(std::path::PathBuf::from), run, kind);
    emit_output(&result);
    code
}

/// Runs a module on the given args file (or stdin) and returns the JSON result and exit
/// code, for a module of the given kind. Separate from `main` so that tests can drive it
/// in-process.
pub fn execute<P, F>(args_path: Option<std::path::PathBuf>, run: F, kind: Kind) -> (Output, ExitCode)
where
    P: DeserializeOwned,
    F: FnOnce(&Host, &Meta, P) -> Result<Outcome>,
{
    let mut names = BTreeMap::new();
    let result = (|| -> Result<Output> {
        let raw = read_args(args_path.as_deref(), kind.max_args)?;
        let (meta, host, params) = parse_args_named::<P>(&raw, kind, &mut names)?;
        let outcome = run(&host, &meta, params)?;
        Ok(render(outcome, meta.diff))
    })();
    match result {
        Ok(v) => (v, ExitCode::SUCCESS),
        Err(e) => (render_failure(&e, &names).into(), ExitCode::from(1)),
    }
}

/// The most entries `option_names` takes, and the longest name in it.
pub const MAX_OPTION_NAMES: usize = 64;
pub const MAX_OPTION_NAME_BYTES: usize = 64;

/// `option_names` as given: a mapping of option names to the caller's names, each a name
/// (letters, digits, `_`; not starting with a digit) of at most `MAX_OPTION_NAME_BYTES`.
fn option_names_checked(v: Value) -> Result<BTreeMap<String, String>> {
    let is_name = |s: &str| {
        !s.is_empty()
            && s.len() <= MAX_OPTION_NAME_BYTES
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let m = match v {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Object(m) => m,
        other => {
            return Err(Failure::new(format!(
                "option option_names: expected a mapping of option names to the caller's names, got {}",
                kind(&other)
            ))
            .into());
        }
    };
    if m.len() > MAX_OPTION_NAMES {
        return Err(
            Failure::new(format!("option option_names: {} entries, more than {MAX_OPTION_NAMES}", m.len())).into()
        );
    }
    let mut names = BTreeMap::new();
    for (k, v) in m {
        if !is_name(&k) {
            return Err(Failure::new(format!(
                "option option_names: {} is not an option name (letters, digits and _, at most {MAX_OPTION_NAME_BYTES} bytes)",
                cap_text(&format!("{k:?}"))
            ))
            .into());
        }
        match v {
            Value::String(s) if is_name(&s) => {
                names.insert(k, s);
            }
            Value::String(s) => {
                return Err(Failure::new(format!(
                    "option option_names.{k}: {} is not a name (letters, digits and _, at most {MAX_OPTION_NAME_BYTES} bytes)",
                    cap_text(&format!("{s:?}"))
                ))
                .into());
            }
            other => {
                return Err(
                    Failure::new(format!("option option_names.{k}: expected text, got {}", kind(&other))).into()
                );
            }
        }
    }
    Ok(names)
}

/// A failure message in the caller's names: each `option NAME` (followed by `:`, `.`, `[`, a
/// space or the end) whose NAME `option_names` maps becomes the caller's name
/// (`option root: ...` → `lltune_root: ...`; `missing required option backup` → `missing
/// required lltune_backup_id`).
pub fn in_callers_names(msg: &str, names: &BTreeMap<String, String>) -> String {
    if names.is_empty() {
        return msg.to_string();
    }
    const WORD: &str = "option ";
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(at) = rest.find(WORD) {
        let after = &rest[at + WORD.len()..];
        let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        let (name, tail) = after.split_at(end);
        // A whole word: `option` not the end of a longer one (`suboption root`).
        let word_start = rest[..at].chars().next_back().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        let delimited = tail.is_empty() || tail.starts_with([':', '.', '[', ' ', ';', ',']);
        match names.get(name) {
            Some(caller) if word_start && delimited => {
                out.push_str(&rest[..at]);
                out.push_str(caller);
            }
            _ => out.push_str(&rest[..at + WORD.len() + end]),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// The largest args file or standard input a module reads.
pub const MAX_ARGS_BYTES: u64 = 1 << 20;
/// The largest `lltune_report` reads: the compact facts of about 2,000 hosts (40 KB each).
pub const MAX_REPORT_ARGS_BYTES: u64 = 96 << 20;

fn read_args(path: Option<&std::path::Path>, max: u64) -> Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let (what, reader): (String, Box<dyn Read>) = match path {
        Some(path) => {
            let p = path.display();
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(path)
                .with_context(|| format!("cannot read module arguments from {p}"))?;
            let m = f.metadata().with_context(|| format!("cannot read module arguments from {p}"))?;
            if !m.file_type().is_file() {
                return Err(Failure::new(format!("module arguments {p}: not a regular file; refused")).into());
            }
            (p.to_string(), Box::new(f))
        }
        None => ("standard input".to_string(), Box::new(std::io::stdin())),
    };
    let mut bytes = Vec::new();
    reader
        .take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read module arguments from {what}"))?;
    if bytes.len() as u64 > max {
        return Err(Failure::new(format!(
            "module arguments from {what} are larger than {max} bytes ({} MiB); refused",
            max >> 20
        ))
        .into());
    }
    String::from_utf8(bytes).map_err(|_| Failure::new(format!("module arguments from {what} are not UTF-8")).into())
}

/// Refuses numbers that JSON parsing turned into floats because they do not fit 64 bits
/// (`18446744073709551616` → `1.8446744073709552e19`): no module option is a float, and a
/// rounded value must never reach a kernel file. Returns the dotted option path.
fn find_float(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::Number(n) if n.is_f64() => Some(path.to_string()),
        Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| find_float(x, &format!("{path}[{i}]"))),
        Value::Object(m) => m.iter().find_map(|(k, x)| find_float(x, &format!("{path}.{k}"))),
        _ => None,
    }
}

/// Splits the args JSON into `Meta`, the `root` host and the module's strict `Params`.
pub fn parse_args<P: DeserializeOwned>(raw: &str) -> Result<(Meta, Host, P)> {
    parse_args_for::<P>(raw, Kind::PLAIN)
}

/// `parse_args` for a module of `kind`: the engine's run options of a changing module
/// (`reasons`; `persist_planned` where it persists) are taken into `Meta` too. Other modules
/// do not have them.
pub fn parse_args_for<P: DeserializeOwned>(raw: &str, module: Kind) -> Result<(Meta, Host, P)> {
    parse_args_named::<P>(raw, module, &mut BTreeMap::new())
}

/// `parse_args_for`, leaving the `option_names` it read in `names` (also when it fails after
/// reading them), for the failure message.
fn parse_args_named<P: DeserializeOwned>(
    raw: &str,
    module: Kind,
    names: &mut BTreeMap<String, String>,
) -> Result<(Meta, Host, P)> {
    let value: Value =
        serde_json::from_str(raw).map_err(|e| Failure::new(format!("module arguments are not valid JSON: {e}")))?;
    let mut obj = match value {
        Value::Object(m) => m,
        other => {
            return Err(Failure::new(format!("module arguments must be a JSON object, got {}", kind(&other))).into());
        }
    };
    // Some launchers wrap the options as {"ANSIBLE_MODULE_ARGS": {...}}.
    if obj.len() == 1 {
        if let Some(Value::Object(inner)) = obj.get("ANSIBLE_MODULE_ARGS") {
            obj = inner.clone();
        }
    }
    let (ansible, mut options): (Map<String, Value>, Map<String, Value>) = {
        let mut a = Map::new();
        let mut o = Map::new();
        for (k, v) in obj {
            if k.starts_with("_ansible_") {
                a.insert(k, v);
            } else {
                o.insert(k, v);
            }
        }
        (a, o)
    };
    let mut meta = Meta::from_keys(&ansible);
    meta.invocation = Some(Value::Object(options.clone()).to_string());
    // First, so that every later failure (root's included) speaks the caller's names.
    if let Some(v) = options.remove("option_names") {
        *names = option_names_checked(v)?;
    }
    for (k, v) in &options {
        if let Some(at) = find_float(v, k) {
            return Err(Failure::new(format!(
                "option {at}: not an integer that fits in 64 bits (or a fraction); write it as a quoted string if it is text"
            ))
            .into());
        }
    }
    let root = match options.remove("root") {
        None | Some(Value::Null) => "/".to_string(),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(Failure::new("option root: must be a directory path, got an empty string").into());
        }
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(
                Failure::new(format!("option root: expected a directory path (string), got {}", kind(&other))).into()
            );
        }
    };
    let host = Host::new(&root).map_err(|e| Failure::new(format!("option root: {e}")))?;
    if !module.engine {
        option_names_known::<P>(names, &["root", "option_names"])?;
        let params = parse_params_with::<P>(options, &["root", "option_names"])?;
        return Ok((meta, host, params));
    }
    // The run options every changing module takes, read by the engine (not the module).
    meta.reasons = match options.remove("reasons") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(reasons_checked(m)?),
        Some(other) => {
            return Err(Failure::new(format!(
                "option reasons: expected a mapping of option names to text, got {}",
                kind(&other)
            ))
            .into());
        }
    };
    let planned = if module.persists { options.remove("persist_planned") } else { None };
    let flag = |b: bool| if b { PersistPlanned::RestoreUnit } else { PersistPlanned::Nothing };
    meta.persist_planned = match planned {
        None | Some(Value::Null) => PersistPlanned::Nothing,
        Some(Value::Bool(b)) => flag(b),
        Some(Value::String(s)) if ["true", "yes", "on", "1"].contains(&s.to_ascii_lowercase().as_str()) => flag(true),
        Some(Value::String(s)) if ["false", "no", "off", "0"].contains(&s.to_ascii_lowercase().as_str()) => flag(false),
        Some(Value::Array(items)) => {
            let mut modules = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(m) if crate::names::ORDER.contains(&m) => modules.push(m.to_string()),
                    _ => {
                        return Err(Failure::new(format!(
                            "option persist_planned: {} is not a changing module (one of {})",
                            cap_text(&item.to_string()),
                            crate::names::ORDER.join(", ")
                        ))
                        .into());
                    }
                }
            }
            PersistPlanned::Modules(modules)
        }
        Some(other) => {
            return Err(Failure::new(format!(
                "option persist_planned: expected a boolean or a list of module names, got {}",
                cap_text(&other.to_string())
            ))
            .into());
        }
    };
    let extra: &[&str] = if module.persists {
        &["root", "option_names", "reasons", "persist_planned"]
    } else {
        &["root", "option_names", "reasons"]
    };
    option_names_known::<P>(names, extra)?;
    let params = parse_params_with::<P>(options, extra)?;
    Ok((meta, host, params))
}

/// The most reasons one module run takes, and the longest text of one: a reviewer's note,
/// not a payload.
pub const MAX_REASONS: usize = 4096;
pub const MAX_REASON_BYTES: usize = 1024;

/// `reasons` as given: every value text, within the limits above.
fn reasons_checked(m: Map<String, Value>) -> Result<Map<String, Value>> {
    if m.len() > MAX_REASONS {
        return Err(Failure::new(format!("option reasons: {} entries, more than {MAX_REASONS}", m.len())).into());
    }
    for (k, v) in &m {
        match v {
            // One line each: a newline would add lines to the diff's `why` that read as
            // reasons of other settings.
            Value::String(s) if k.chars().chain(s.chars()).any(char::is_control) => {
                return Err(Failure::new(format!(
                    "option reasons.{}: holds a control character (a reason is one line of text)",
                    cap_text(k)
                ))
                .into());
            }
            Value::String(s) if s.len() <= MAX_REASON_BYTES && k.len() <= MAX_REASON_BYTES => {}
            Value::String(_) => {
                return Err(Failure::new(format!(
                    "option reasons.{}: longer than {MAX_REASON_BYTES} bytes",
                    cap_text(k)
                ))
                .into());
            }
            other => {
                return Err(Failure::new(format!(
                    "option reasons.{}: expected text, got {}",
                    cap_text(k),
                    kind(other)
                ))
                .into());
            }
        }
    }
    Ok(m)
}

/// Deserializes options strictly; messages name the option, like AnsibleModule's. The
/// options of a module run (`parse_args`) include `root`, taken out before this; where no
/// `root` is taken (a state file `lltune reapply` reads, a step of `lltune apply`), it is
/// not an option and is not listed as one.
pub fn parse_params<P: DeserializeOwned>(options: Map<String, Value>) -> Result<P> {
    parse_params_with(options, &[])
}

/// `parse_params`, listing `extra` among the supported options at the top level.
fn parse_params_with<P: DeserializeOwned>(options: Map<String, Value>, extra: &[&str]) -> Result<P> {
    let de = Value::Object(options);
    parse_params_value(de, extra)
}

/// The options of `P` and `extra`, sorted: what serde's refusal of a key no option has lists
/// (the same reading as `parse_params_with`, so no second copy of `P`'s reader). `None` when
/// `P` takes any key.
fn option_list<P: DeserializeOwned>(extra: &[&str]) -> Option<Vec<String>> {
    let probe = Value::Object(Map::from_iter([("\u{1}".to_string(), Value::Null)]));
    let msg = format!("{:#}", parse_params_value::<P>(probe, extra).err()?);
    let list = msg.split_once("; supported options: ")?.1;
    Some(list.split(", ").map(str::to_string).collect())
}

/// `option_names`' keys are options of this module (`option_list`): a key that is not would
/// rename nothing, and is most likely a typo of one that is.
fn option_names_known<P: DeserializeOwned>(names: &BTreeMap<String, String>, extra: &[&str]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let Some(options) = option_list::<P>(extra) else { return Ok(()) };
    if let Some(k) = names.keys().find(|k| !options.contains(k)) {
        return Err(Failure::new(format!(
            "option option_names: {} is not an option of this module; its options: {}",
            cap_text(k),
            options.join(", ")
        ))
        .into());
    }
    Ok(())
}

fn parse_params_value<P: DeserializeOwned>(de: Value, extra: &[&str]) -> Result<P> {
    serde_path_to_error::deserialize::<_, P>(de).map_err(|e| {
        let path = cap_text(&e.path().to_string());
        let inner = e.into_inner().to_string();
        let msg = if let Some(rest) = inner.strip_prefix("unknown field `") {
            let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let top = path == "." || !path.contains('.');
            // Options taken out before this (`root`) are options of the module itself only,
            // never of a nested mapping (an interface, a rule).
            let extra = if top { extra } else { &[] };
            let mut valid: Vec<String> = expected
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .chain(extra.iter().map(|e| e.to_string()))
                .collect();
            crate::sort::sort_by(&mut valid, |a, b| a.cmp(b));
            valid.dedup();
            let at =
                if top { String::new() } else { format!(" in {}", path.rsplit_once('.').map(|p| p.0).unwrap_or("")) };
            format!("unsupported option {}{at}; supported options: {}", cap_text(name), valid.join(", "))
        } else if let Some(field) = inner.strip_prefix("missing field `") {
            format!("missing required option {}", field.trim_end_matches('`'))
        } else if path == "." {
            format!("options: {}", cap_text(&inner))
        } else {
            format!("option {path}: {}", cap_text(&inner))
        };
        Failure::new(msg).into()
    })
}

// How text and JSON values are shown in messages lives below every layer that shows them.
pub use crate::echo::{ECHO_MAX_CHARS, cap_text, capped, kind};

fn render(outcome: Outcome, with_diff: bool) -> Output {
    let mut out = Map::new();
    out.insert("changed".into(), Value::Bool(outcome.changed));
    out.insert("failed".into(), Value::Bool(false));
    for (k, v) in outcome.fields {
        if !k.starts_with("_ansible_") {
            out.insert(k, v);
        }
    }
    if with_diff && !outcome.diff.is_empty() {
        out.insert("diff".into(), serde_json::to_value(&outcome.diff).unwrap_or(Value::Null));
    }
    out.insert("warnings".into(), Value::Array(outcome.warnings.into_iter().map(Value::String).collect()));
    Output { value: Value::Object(out), serialized: outcome.serialized }
}

fn render_failure(e: &anyhow::Error, names: &BTreeMap<String, String>) -> Value {
    let mut out = Map::new();
    let (changed, fields) = match e.downcast_ref::<Failure>() {
        Some(f) => (f.changed, f.fields.clone()),
        None => (false, Map::new()),
    };
    out.insert("changed".into(), Value::Bool(changed));
    out.insert("failed".into(), Value::Bool(true));
    // Messages name input, which is capped where it is echoed; this is the backstop.
    let msg = in_callers_names(&format!("{e:#}"), names);
    let msg =
        if msg.len() > 8192 { format!("{}... (message cut)", msg.chars().take(4000).collect::<String>()) } else { msg };
    out.insert("msg".into(), Value::String(msg));
    for (k, v) in fields {
        out.entry(k).or_insert(v);
    }
    out.insert("warnings".into(), Value::Array(Vec::new()));
    Value::Object(out)
}

/// Prints a module's result. Everything in it was computed before the first byte is written
/// (a serialized field is a value whose writing cannot fail: no map with keys that are not
/// text or numbers), so nothing partial reaches Ansible; written through a buffer rather than
/// as one text, so a detail scan's facts are never held as text beside their values.
fn emit_output(v: &Output) {
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    let written = v.write_json(&mut out).and_then(|()| out.write_all(b"\n").map_err(serde_json::Error::io));
    // A write error (Ansible gone) leaves nothing to mend; a value that cannot be written,
    // which no result holds, gets the failure object.
    if written.is_err_and(|e| !e.is_io()) {
        let _ = out.write_all(b"\n{\"changed\":false,\"failed\":true,\"msg\":\"cannot serialize result\"}\n");
    }
    let _ = out.flush();
}

/// Release builds abort on panic; the hook runs before the abort and turns the panic into a
/// JSON failure with exit code 1, so Ansible shows a message instead of "MODULE FAILURE".
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let name = program_name();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let v = serde_json::json!({
            "changed": false,
            "failed": true,
            "msg": format!("internal error in {name}: {payload}{at}; please report this as a bug"),
        });
        // The one writer of results (one copy of its code in every binary).
        emit_output(&Output::from(v));
        std::process::exit(1);
    }));
}

/// Deserializes a boolean the way Ansible users write one: `true`, `yes`, `"on"`, `1`.
/// Anything else is an error naming what was given.
pub fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" | "t" => Ok(true),
            "no" | "false" | "off" | "0" | "n" | "f" => Ok(false),
            _ => Err(serde::de::Error::custom(format!("expected a boolean, got {s:?}"))),
        },
        other => Err(serde::de::Error::custom(format!("expected a boolean, got {}", kind(other)))),
    }
}

/// Module options that are a mapping of names to scalar values (`settings`, `args`), kept in
/// order of the key. Scalars are turned into their text form.
pub fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<BTreeMap<String, Option<String>>, D::Error> {
    let m = Map::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let s = match v {
            Value::Null => None,
            Value::String(s) => Some(s),
            Value::Number(n) if !n.is_f64() => Some(n.to_string()),
            Value::Number(n) => {
                return Err(serde::de::Error::custom(format!("{k}: {n} is not an integer that fits in 64 bits")));
            }
            Value::Bool(b) => Some(if b { "1".into() } else { "0".into() }),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "{k}: expected a string or number, got {}",
                    kind(&other)
                )));
            }
        };
        out.insert(k, s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct P {
        #[serde(default, deserialize_with = "lenient_bool")]
        detail: bool,
    }

    fn parse(raw: &str) -> std::result::Result<P, String> {
        parse_args::<P>(raw).map(|(_, _, p)| p).map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn reasons_and_persist_planned_are_run_options_of_the_engine() {
        let engine = |raw: &str| parse_args_for::<P>(raw, Kind::PERSISTING);
        let (meta, _, p) =
            engine(r#"{"detail": true, "reasons": {"governor": "cpu.governor"}, "persist_planned": "yes"}"#).unwrap();
        assert!(p.detail && meta.persist_planned == PersistPlanned::RestoreUnit);
        assert_eq!(meta.reasons.unwrap()["governor"], "cpu.governor");
        let (meta, _, _) = engine(r#"{"reasons": null}"#).unwrap();
        assert!(meta.reasons.is_none() && meta.persist_planned == PersistPlanned::Nothing);
        let (meta, _, _) = engine(r#"{"persist_planned": ["lltune_nic", "lltune_cpu"]}"#).unwrap();
        assert_eq!(meta.persist_planned, PersistPlanned::Modules(vec!["lltune_nic".into(), "lltune_cpu".into()]));
        for (raw, want) in [
            (r#"{"reasons": ["x"]}"#, "option reasons: expected a mapping of option names to text, got a list"),
            (r#"{"reasons": {"governor": 1}}"#, "option reasons.governor: expected text, got a number"),
            (
                r#"{"reasons": {"governor": "cpu.governor\n+turbo: forged"}}"#,
                "option reasons.governor: holds a control character",
            ),
            (r#"{"reasons": {"gov\ternor": "x"}}"#, "holds a control character"),
            (
                r#"{"persist_planned": "maybe"}"#,
                "option persist_planned: expected a boolean or a list of module names, got \"maybe\"",
            ),
            (
                r#"{"persist_planned": ["lltune_nic", "nic"]}"#,
                "option persist_planned: \"nic\" is not a changing module (one of lltune_sysctl, lltune_kernel_args, lltune_cpu, lltune_memory, lltune_services, lltune_limits, lltune_nic, lltune_irq, lltune_threads, lltune_bypass, lltune_timesync)",
            ),
            (
                r#"{"persist_planned": [1]}"#,
                "option persist_planned: 1 is not a changing module (one of lltune_sysctl, lltune_kernel_args, lltune_cpu, lltune_memory, lltune_services, lltune_limits, lltune_nic, lltune_irq, lltune_threads, lltune_bypass, lltune_timesync)",
            ),
        ] {
            let e = format!("{:#}", engine(raw).unwrap_err());
            assert!(e.contains(want), "{raw}: {e}");
        }
        let long = format!(r#"{{"reasons": {{"k": "{}"}}}}"#, "x".repeat(MAX_REASON_BYTES + 1));
        assert!(format!("{:#}", engine(&long).unwrap_err()).contains("option reasons.k: longer than 1024 bytes"));
        // Listed among the supported options when an unknown one is given.
        let e = format!("{:#}", engine(r#"{"bogus": 1}"#).unwrap_err());
        assert!(e.contains("reasons") && e.contains("persist_planned"), "{e}");
        // A changing module that does not persist takes no persist_planned; a module that is
        // not a changing one takes neither.
        let e = format!("{:#}", parse_args_for::<P>(r#"{"persist_planned": true}"#, Kind::CHANGING).unwrap_err());
        assert_eq!(e, "unsupported option persist_planned; supported options: detail, option_names, reasons, root");
        assert_eq!(
            parse(r#"{"reasons": {}}"#).unwrap_err(),
            "unsupported option reasons; supported options: detail, option_names, root"
        );
    }

    // See: issue 17 ("unsupported option root; supported options: ... root ...").
    #[test]
    fn an_unsupported_option_is_never_listed_as_supported() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Item {
            name: String,
        }
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Nested {
            items: Vec<Item>,
        }
        let nested = |raw: &str| parse_args::<Nested>(raw).map(|_| ()).map_err(|e| format!("{e:#}"));
        assert_eq!(
            nested(r#"{"items": [{"name": "a", "root": "/"}]}"#).unwrap_err(),
            "unsupported option root in items[0]; supported options: name"
        );
        assert_eq!(
            nested(r#"{"itemz": []}"#).unwrap_err(),
            "unsupported option itemz; supported options: items, option_names, root"
        );
        // Where root is no option (a state file, a step of apply), it is not listed either.
        let mut m = Map::new();
        m.insert("root".into(), serde_json::json!("/"));
        m.insert("items".into(), serde_json::json!([]));
        assert_eq!(
            format!("{:#}", parse_params::<Nested>(m).unwrap_err()),
            "unsupported option root; supported options: items"
        );
        // Whatever the name, the message never calls it both unsupported and supported.
        for name in ["root", "items", "name", "x", "_ansible", "Root", ""] {
            for raw in
                [serde_json::json!({name: 1, "items": []}), serde_json::json!({"items": [{"name": "a", name: 1}]})]
            {
                let Err(e) = nested(&raw.to_string()) else { continue };
                if let Some((head, list)) = e.split_once("; supported options: ") {
                    let rejected = head.trim_start_matches("unsupported option ").split(" in ").next().unwrap();
                    assert!(!list.split(", ").any(|o| o == rejected), "{raw}: {e}");
                }
            }
        }
    }

    /// `option_names` renames the options in a failure to the caller's names, and is itself
    /// validated like any option (a mapping of names, bounded).
    #[test]
    fn option_names_put_failures_in_the_callers_names() {
        let names: BTreeMap<String, String> =
            [("root", "lltune_root"), ("backup", "lltune_backup_id")].map(|(a, b)| (a.into(), b.into())).into();
        for (msg, want) in [
            ("option root: /x: no such file or directory", "lltune_root: /x: no such file or directory"),
            ("option backup: \"../x\" is neither a backup id", "lltune_backup_id: \"../x\" is neither a backup id"),
            ("missing required option backup", "missing required lltune_backup_id"),
            ("option root.x[0]: bad", "lltune_root.x[0]: bad"),
            // Other options, longer words, and names that only start alike stay as they are.
            ("option detail: expected a boolean", "option detail: expected a boolean"),
            ("suboption root: x", "suboption root: x"),
            ("option rootfs: x", "option rootfs: x"),
            ("unsupported option zz; supported options: root", "unsupported option zz; supported options: root"),
            (
                "lltune_rollback: option backup: gone; option root: too",
                "lltune_rollback: lltune_backup_id: gone; lltune_root: too",
            ),
        ] {
            assert_eq!(in_callers_names(msg, &names), want, "{msg}");
        }
        assert_eq!(in_callers_names("option root: x", &BTreeMap::new()), "option root: x");

        let run = |raw: &str| {
            let mut names = BTreeMap::new();
            let r = parse_args_named::<P>(raw, Kind::PLAIN, &mut names);
            (r.map(|_| ()).map_err(|e| in_callers_names(&format!("{e:#}"), &names)), names)
        };
        // Read before root, so a bad root is named as the caller's variable.
        let (r, names) = run(r#"{"root": "/nonexistent/x", "option_names": {"root": "lltune_root"}}"#);
        assert_eq!(r.unwrap_err(), "lltune_root: /nonexistent/x: no such file or directory");
        assert_eq!(names.get("root").map(String::as_str), Some("lltune_root"));
        let (r, _) = run(r#"{"detail": 3, "option_names": {"detail": "lltune_detail"}}"#);
        assert_eq!(r.unwrap_err(), "lltune_detail: expected a boolean, got a number");
        assert_eq!(run(r#"{"detail": true, "option_names": null}"#).0, Ok(()));
        for (raw, want) in [
            (
                r#"{"option_names": ["root"]}"#,
                "option option_names: expected a mapping of option names to the caller's names, got a list",
            ),
            (r#"{"option_names": {"root": 1}}"#, "option option_names.root: expected text, got a number"),
            (r#"{"option_names": {"root": "lltune root"}}"#, "option option_names.root: \"lltune root\" is not a name"),
            (r#"{"option_names": {"root": ""}}"#, "option option_names.root: \"\" is not a name"),
            (r#"{"option_names": {"ro ot": "x"}}"#, "option option_names: \"ro ot\" is not an option name"),
            (r#"{"option_names": {"root": "1x"}}"#, "option option_names.root: \"1x\" is not a name"),
        ] {
            let e = run(raw).0.unwrap_err();
            assert!(e.starts_with(want), "{raw}: {e}");
        }
        // A key that is no option of the module renames nothing: refused, with the options.
        for raw in
            [r#"{"option_names": {"rot": "lltune_root"}}"#, r#"{"detail": true, "option_names": {"details": "x"}}"#]
        {
            let e = run(raw).0.unwrap_err();
            assert!(
                e.starts_with("option option_names: ") && e.contains(" is not an option of this module"),
                "{raw}: {e}"
            );
            assert!(e.ends_with("its options: detail, option_names, root"), "{raw}: {e}");
        }
        // Every option of the module, and those the protocol takes, may be renamed.
        for k in ["detail", "root", "option_names"] {
            assert_eq!(run(&format!(r#"{{"option_names": {{"{k}": "lltune_x"}}}}"#)).0, Ok(()), "{k}");
        }
        let long = format!(r#"{{"option_names": {{"root": "{}"}}}}"#, "a".repeat(MAX_OPTION_NAME_BYTES + 1));
        assert!(run(&long).0.unwrap_err().contains("is not a name"));
        let many: Map<String, Value> =
            (0..=MAX_OPTION_NAMES).map(|i| (format!("o{i}"), Value::String(format!("v{i}")))).collect();
        let many = serde_json::json!({ "option_names": many }).to_string();
        assert_eq!(run(&many).0.unwrap_err(), "option option_names: 65 entries, more than 64");
    }

    #[test]
    fn ansible_keys_are_lenient_options_strict() {
        let (meta, host, p) =
            parse_args::<P>(r#"{"detail": "yes", "_ansible_check_mode": true, "_ansible_new_key_2099": 1}"#).unwrap();
        assert!(p.detail && meta.check_mode && !meta.diff && host.root() == std::path::Path::new("/"));
        assert_eq!(
            parse(r#"{"detal": true}"#).unwrap_err(),
            "unsupported option detal; supported options: detail, option_names, root"
        );
        assert_eq!(parse(r#"{"detail": [1]}"#).unwrap_err(), "option detail: expected a boolean, got a list");
        assert_eq!(
            parse(r#"{"root": 5}"#).unwrap_err(),
            "option root: expected a directory path (string), got a number"
        );
        assert_eq!(
            parse(r#"{"root": "/nonexistent/x"}"#).unwrap_err(),
            "option root: /nonexistent/x: no such file or directory"
        );
        assert!(parse("{").unwrap_err().starts_with("module arguments are not valid JSON"));
        assert_eq!(parse("[]").unwrap_err(), "module arguments must be a JSON object, got a list");
    }

    /// The child half of `a_panic_is_one_json_failure`: panics behind the hook when the parent
    /// runs it (a plain test run passes it by doing nothing).
    #[test]
    fn panic_child() {
        if std::env::var_os("LLTUNE_PANIC_CHILD").is_none() {
            return;
        }
        install_panic_hook();
        let v: Vec<u32> = Vec::new();
        let i = std::hint::black_box(3);
        println!("{}", v[i]);
    }

    /// A panic never escapes as a crash: the hook prints one JSON failure (naming the program,
    /// the panic and where) and exits 1. Run in a child process, as the hook exits.
    #[test]
    fn a_panic_is_one_json_failure() {
        // (Not also under a name that is not UTF-8: the test harness itself reads its
        // arguments with `args()` and panics on one.)
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "protocol::tests::panic_child", "--nocapture", "--test-threads=1"])
            .env("LLTUNE_PANIC_CHILD", "1")
            .env("RUST_BACKTRACE", "full")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        one_json_failure(&String::from_utf8(out.stdout).unwrap());
    }

    fn one_json_failure(text: &str) {
        // The test harness prints `test … ... ` first; the hook's JSON ends the output.
        let json = &text[text.find('{').unwrap_or_else(|| panic!("no JSON: {text}"))..];
        let v: Value = serde_json::from_str(json.trim_end()).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!((&v["failed"], &v["changed"]), (&Value::Bool(true), &Value::Bool(false)), "{v}");
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.starts_with("internal error in "), "{msg}");
        assert!(msg.contains("index out of bounds: the len is 0 but the index is 3 at src/protocol.rs:"), "{msg}");
        assert!(msg.ends_with("; please report this as a bug"), "{msg}");
    }

    /// A serialized field is written as the same JSON a value would be, after the module's
    /// other fields and before `warnings`.
    #[test]
    fn serialized_fields_are_written_as_text_after_the_values() {
        let facts = BTreeMap::from([("lltune", serde_json::json!({"a": [1, "x\"y"], "b": null}))]);
        let mut o = Outcome::new(true).field("f", 1).serialized("ansible_facts", facts);
        o.diff.push(Diff {
            before_header: "a".into(),
            after_header: "b".into(),
            before: "1".into(),
            after: "2".into(),
        });
        o.warnings.push("w".into());
        let output = render(o, true);
        let text = serde_json::to_string(&output).unwrap();
        assert_eq!(
            text,
            r#"{"changed":true,"failed":false,"f":1,"ansible_facts":{"lltune":{"a":[1,"x\"y"],"b":null}},"diff":[{"before_header":"a","after_header":"b","before":"1","after":"2"}],"warnings":["w"]}"#
        );
        // What the module prints: the same text, the field written straight from its value.
        let mut printed = Vec::new();
        output.write_json(&mut printed).unwrap();
        assert_eq!(String::from_utf8(printed).unwrap(), text);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["ansible_facts"], serde_json::json!({"lltune": {"a": [1, "x\"y"], "b": null}}));
        let failure = Output::from(serde_json::json!({"failed": true, "msg": "m"}));
        let mut printed = Vec::new();
        failure.write_json(&mut printed).unwrap();
        assert_eq!(String::from_utf8(printed).unwrap(), serde_json::to_string(&failure).unwrap());
    }

    #[test]
    fn failure_output_is_one_object_with_failed() {
        let (v, _) =
            execute::<P, _>(Some("/nonexistent/args.json".into()), |_, _, _| Ok(Outcome::new(false)), Kind::PLAIN);
        let v = v.value;
        assert_eq!(v["failed"], Value::Bool(true));
        assert_eq!(v["changed"], Value::Bool(false));
        assert!(v["msg"].as_str().unwrap().contains("/nonexistent/args.json"));
    }
}
