//! Resource limits that pam_limits applies at login: /etc/security/limits.conf, then
//! /etc/security/limits.d/*.conf in name order (pam_limits.c, `read_limits_dir`), for the
//! items low-latency work depends on: memlock (pinned packet buffers), nofile, nproc, rtprio.
//!
//! The surprising parts: type `-` sets soft and hard at once; a later line replaces an
//! earlier one for the same domain, but a less specific domain never overrides a more
//! specific one (user > @group > `*`, `process_limit`); `-1`, `infinity` and `unlimited` all
//! mean unlimited; Debian's pam does not apply `*` or group lines to root, upstream does.

use serde::{Deserialize, Serialize};

use super::Scan;

/// One effective line: the last one for its domain, item and type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitEntry {
    /// `*`, a user, `@group`, `%group`, or a uid/gid range `1000:`.
    pub domain: String,
    /// `soft` or `hard` (a `-` line gives one of each).
    #[serde(rename = "type")]
    pub kind: String,
    /// `unlimited` or the number as written (memlock in KiB).
    pub value: String,
    /// The file that set it.
    pub file: String,
}

/// The soft and hard value one domain ends up with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SoftHard {
    pub soft: Option<String>,
    pub hard: Option<String>,
}

/// Something per item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PerItem<T> {
    pub memlock: T,
    pub nofile: T,
    pub nproc: T,
    pub rtprio: T,
}

impl<T> PerItem<T> {
    fn get_mut(&mut self, item: &str) -> Option<&mut T> {
        match item {
            "memlock" => Some(&mut self.memlock),
            "nofile" => Some(&mut self.nofile),
            "nproc" => Some(&mut self.nproc),
            "rtprio" => Some(&mut self.rtprio),
            _ => None,
        }
    }
}

/// Limits: `limits` in the facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// The files read, in the order pam_limits reads them.
    pub files: Vec<String>,
    /// Per item, the effective line of every domain and type.
    pub entries: PerItem<Vec<LimitEntry>>,
    /// Per item, what domain `*` sets (every user without a more specific line).
    pub default: PerItem<SoftHard>,
    /// Per item, what root gets: `root` lines, else `*` lines (upstream pam_limits).
    pub root: PerItem<SoftHard>,
}

/// A `<domain> <type> <item> <value>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitLine {
    pub domain: String,
    pub kind: String,
    pub item: String,
    pub value: String,
}

/// Parses one limits file. Comments start at `#`; type, item and value are lowercased as
/// pam_limits does. Lines that are not four fields come back as errors ("line N: ...")
/// except `<domain> -` (pam's "no limits" line), which sets nothing here.
pub fn parse_limits(text: &str) -> (Vec<LimitLine>, Vec<String>) {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 2 && f[1] == "-" {
            continue;
        }
        if f.len() < 4 {
            errors.push(format!("line {}: expected <domain> <type> <item> <value>", i + 1));
            continue;
        }
        let (domain, kind, item) = (f[0], f[1], f[2]);
        // The value is the rest of the line (pam's `split` keeps it whole, then trims).
        let value = f[3..].join(" ");
        let kind = kind.to_ascii_lowercase();
        if !matches!(kind.as_str(), "soft" | "hard" | "-") {
            errors.push(format!("line {}: type {kind:?} is not soft, hard or -", i + 1));
            continue;
        }
        lines.push(LimitLine {
            domain: domain.to_string(),
            kind,
            item: item.to_ascii_lowercase(),
            value: normalise_value(&value),
        });
    }
    (lines, errors)
}

/// `unlimited` for every spelling pam accepts, else the value as written (lowercased).
fn normalise_value(v: &str) -> String {
    let v = v.to_ascii_lowercase();
    match v.as_str() {
        "-1" | "-" | "unlimited" | "infinity" => "unlimited".to_string(),
        _ => v,
    }
}

/// The last entry per (domain, type) of one item, in file order of first appearance.
fn effective(lines: &[(LimitLine, String)], item: &str) -> Vec<LimitEntry> {
    let mut out: Vec<LimitEntry> = Vec::new();
    for (l, file) in lines.iter().filter(|(l, _)| l.item == item) {
        let kinds: Vec<&str> = if l.kind == "-" { vec!["soft", "hard"] } else { vec![l.kind.as_str()] };
        for k in kinds {
            let e = LimitEntry {
                domain: l.domain.clone(),
                kind: k.to_string(),
                value: l.value.clone(),
                file: file.clone(),
            };
            match out.iter_mut().find(|o| o.domain == l.domain && o.kind == k) {
                Some(o) => *o = e,
                None => out.push(e),
            }
        }
    }
    out
}

fn soft_hard(entries: &[LimitEntry], domains: &[&str]) -> SoftHard {
    // The first domain is the most specific: it wins over the later ones.
    let pick = |kind: &str| {
        domains.iter().find_map(|d| entries.iter().find(|e| e.domain == *d && e.kind == kind).map(|e| e.value.clone()))
    };
    SoftHard { soft: pick("soft"), hard: pick("hard") }
}

/// Reads the limits files.
pub fn read(scan: &mut Scan) -> Limits {
    let mut files = vec!["/etc/security/limits.conf".to_string()];
    let mut dropins: Vec<String> = scan
        .host
        .list_or_empty("/etc/security/limits.d")
        .into_iter()
        .filter(|f| f.ends_with(".conf"))
        .map(|f| format!("/etc/security/limits.d/{f}"))
        .collect();
    crate::sort::sort_by(&mut dropins, Ord::cmp);
    files.extend(dropins);

    let mut out = Limits::default();
    let mut lines = Vec::new();
    for file in files {
        let text = match scan.host.read_opt(&file) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                scan.warn(e.to_string());
                continue;
            }
        };
        let (parsed, errors) = parse_limits(&text);
        for e in errors {
            scan.warn(format!("{file}: {e}"));
        }
        lines.extend(parsed.into_iter().map(|l| (l, file.clone())));
        out.files.push(file);
    }
    for item in ["memlock", "nofile", "nproc", "rtprio"] {
        let entries = effective(&lines, item);
        if let Some(d) = out.default.get_mut(item) {
            *d = soft_hard(&entries, &["*"]);
        }
        if let Some(r) = out.root.get_mut(item) {
            *r = soft_hard(&entries, &["root", "*"]);
        }
        if let Some(e) = out.entries.get_mut(item) {
            *e = entries;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ScanOptions;
    use crate::host::Host;
    use std::fs;

    #[test]
    fn lines_types_and_values() {
        let (lines, errors) = parse_limits(
            "# comment\n*   soft  nofile  65536 # trailing\n@trading  -  MEMLOCK  Unlimited\nroot hard rtprio -1\n\
             bob -\n*  soft\n* medium nofile 1\n",
        );
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            LimitLine { domain: "*".into(), kind: "soft".into(), item: "nofile".into(), value: "65536".into() }
        );
        assert_eq!(
            (lines[1].kind.as_str(), lines[1].item.as_str(), lines[1].value.as_str()),
            ("-", "memlock", "unlimited")
        );
        assert_eq!(lines[2].value, "unlimited");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("line 6:"));
        assert!(errors[1].contains("\"medium\""));
    }

    #[test]
    fn later_files_override_and_root_falls_back_to_the_wildcard() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("etc/security/limits.d")).unwrap();
        fs::write(r.join("etc/security/limits.conf"), "*  -  memlock  64\n*  soft  nofile  1024\nroot - nofile 4096\n")
            .unwrap();
        fs::write(r.join("etc/security/limits.d/90-lltune.conf"), "*  -  memlock  unlimited\n@rt  -  rtprio  99\n")
            .unwrap();
        fs::write(r.join("etc/security/limits.d/20-nproc.conf"), "*  soft  nproc  4096\nroot soft nproc unlimited\n")
            .unwrap();
        fs::write(r.join("etc/security/limits.d/README"), "*  -  memlock  1\n").unwrap();
        let host = Host::new(r).unwrap();
        let mut scan = Scan::new(&host, ScanOptions::default());
        let l = read(&mut scan);
        assert!(scan.warnings().is_empty(), "{:?}", scan.warnings());
        assert_eq!(
            l.files,
            vec![
                "/etc/security/limits.conf",
                "/etc/security/limits.d/20-nproc.conf",
                "/etc/security/limits.d/90-lltune.conf"
            ]
        );
        let sh = |s: Option<&str>, h: Option<&str>| SoftHard { soft: s.map(Into::into), hard: h.map(Into::into) };
        assert_eq!(l.default.memlock, sh(Some("unlimited"), Some("unlimited")));
        assert_eq!(l.entries.memlock.len(), 2);
        assert_eq!(l.entries.memlock[0].file, "/etc/security/limits.d/90-lltune.conf");
        assert_eq!(l.default.nofile, sh(Some("1024"), None));
        assert_eq!(l.root.nofile, sh(Some("4096"), Some("4096")));
        assert_eq!(l.root.memlock, sh(Some("unlimited"), Some("unlimited")));
        assert_eq!(l.root.nproc, sh(Some("unlimited"), None));
        assert_eq!(l.default.rtprio, sh(None, None));
        assert_eq!(l.entries.rtprio[0].domain, "@rt");
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json["entries"]["rtprio"][0]["type"], "soft");
    }
}
