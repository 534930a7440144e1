//! lltune_report: the fleet report (`crate::fleet`) from a folder of host facts on the
//! controller. `facts_dir` and `dest` are plain paths of the machine the module runs on (a
//! play runs it with `delegate_to: localhost` and `run_once`), not paths under `root`.
//! Check mode reads and renders the same way and writes nothing; a file whose content would
//! not change is not written, so a rerun on the same facts reports `changed: false`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;

use crate::host::Host;
use crate::protocol::{Failure, Meta, Outcome};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Folder of host facts (one file per host).
    #[serde(default)]
    pub facts_dir: Option<PathBuf>,
    /// Host name → facts, as a play holds them (`hostvars[host].ansible_facts.lltune`): one
    /// task for the whole play, no per-host copy to the controller.
    #[serde(default)]
    pub facts: Option<serde_json::Map<String, serde_json::Value>>,
    /// Folder the report is written into.
    pub dest: PathBuf,
}

/// A `type: path` option as Ansible's own modules read it: a leading `~` is the home folder.
fn expand_home(p: &Path) -> PathBuf {
    let Ok(rest) = p.strip_prefix("~") else { return p.to_path_buf() };
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

/// Now, in seconds since the epoch (millisecond precision, as a file's mtime is read).
fn now() -> Option<f64> {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(d.as_secs() as f64 + f64::from(d.subsec_millis()) / 1000.0)
}

pub fn run(_host: &Host, meta: &Meta, mut params: Params) -> Result<Outcome> {
    let cap = |e: anyhow::Error, opt: &str| Failure::new(crate::protocol::cap_text(&format!("option {opt}: {e:#}")));
    let mut paths = vec![("dest", &mut params.dest)];
    if let Some(d) = params.facts_dir.as_mut() {
        paths.push(("facts_dir", d));
    }
    for (opt, p) in paths {
        if p.as_os_str().is_empty() {
            return Err(Failure::new(format!("option {opt}: must be a folder path, got an empty string")).into());
        }
        *p = expand_home(p);
    }
    let inputs = match (params.facts_dir.as_ref(), params.facts.take()) {
        (Some(dir), None) => {
            crate::fleet::check_dirs(dir, &params.dest).map_err(|e| cap(e, "dest"))?;
            crate::fleet::load_dir(dir).map_err(|e| cap(e, "facts_dir"))?
        }
        (None, Some(facts)) => crate::fleet::load_values(facts, now()).map_err(|e| cap(e, "facts"))?,
        (Some(_), Some(_)) => {
            return Err(Failure::new("options facts_dir and facts: give one of them, not both").into());
        }
        (None, None) => {
            return Err(
                Failure::new("give option facts_dir (a folder of host facts) or facts (host name to facts)").into()
            );
        }
    };
    let fleet = crate::fleet::build(&inputs);
    let outputs = crate::fleet::render_all(&fleet);
    // The diff needs the old text: read it before writing.
    let mut diff = Vec::new();
    if meta.diff && !meta.no_log {
        for (name, text) in &outputs {
            let path = params.dest.join(name);
            let before = crate::fleet::read_file(&path).ok();
            if before.as_deref() != Some(text.as_bytes()) {
                let name = path.display().to_string();
                diff.push(crate::engine::text::diff(
                    &name,
                    &name,
                    before.as_deref().unwrap_or_default(),
                    text.as_bytes(),
                ));
            }
        }
    }
    let res = crate::fleet::write_outputs(&params.dest, &outputs, meta.check_mode).map_err(|e| cap(e, "dest"))?;
    let mut out = Outcome::new(!res.changed.is_empty())
        .field("summary", &fleet.summary)
        .field("hosts", fleet.hosts.iter().map(|h| h.host.as_str()).collect::<Vec<_>>())
        .field("files", &res.files)
        .field("changed_files", &res.changed);
    out.diff = diff;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_tilde_is_the_home_folder() {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        if let Some(h) = home.filter(|h| !h.as_os_str().is_empty()) {
            assert_eq!(expand_home(Path::new("~/facts")), h.join("facts"));
            assert_eq!(expand_home(Path::new("~")), h);
        }
        assert_eq!(expand_home(Path::new("/srv/~x")), PathBuf::from("/srv/~x"));
        assert_eq!(expand_home(Path::new("~other/x")), PathBuf::from("~other/x"));
    }
}
