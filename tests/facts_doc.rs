//! Every field a scan emits is documented in docs/facts.md, and the doc names its
//! schema_version. Scans run on the project's sample tree, this host, and every real dump,
//! with per-IRQ detail, so that fields which only some hosts have are exercised.

use std::collections::BTreeSet;
use std::path::Path;

use lltune::facts::{self, ScanOptions};
use lltune::host::Host;
use serde_json::Value;

use crate::support;

/// Field patterns of the doc: the first backticked cell of each table row.
fn documented() -> Vec<Vec<String>> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/facts.md")).expect("docs/facts.md");
    let mut out = Vec::new();
    for line in doc.lines() {
        let Some(rest) = line.strip_prefix("| `") else { continue };
        let Some(field) = rest.split('`').next() else { continue };
        out.push(split_pattern(field));
    }
    out
}

/// `a.b[].c.*` → ["a", "b", "[]", "c", "*"].
fn split_pattern(p: &str) -> Vec<String> {
    let mut segs = Vec::new();
    for part in p.split('.') {
        let mut part = part;
        let mut arrays = 0;
        while let Some(s) = part.strip_suffix("[]") {
            part = s;
            arrays += 1;
        }
        segs.push(part.to_string());
        segs.extend(std::iter::repeat_n("[]".to_string(), arrays));
    }
    segs
}

/// Leaf paths of a JSON value: scalars, nulls, and empty lists or maps (flagged `true`).
fn leaves(v: &Value, path: &mut Vec<String>, out: &mut BTreeSet<(Vec<String>, bool)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                path.push(k.clone());
                leaves(x, path, out);
                path.pop();
            }
        }
        Value::Array(a) if !a.is_empty() => {
            path.push("[]".into());
            for x in a {
                leaves(x, path, out);
            }
            path.pop();
        }
        Value::Array(_) | Value::Object(_) => {
            out.insert((path.clone(), true));
        }
        _ => {
            out.insert((path.clone(), false));
        }
    }
}

fn matches(pattern: &[String], path: &[String], leaf_is_empty_container: bool) -> bool {
    if leaf_is_empty_container && pattern.len() > path.len() {
        // An empty list or map is covered by any documented field under it.
        return pattern.iter().zip(path).all(|(p, s)| p == "*" || p == s);
    }
    pattern.len() == path.len() && pattern.iter().zip(path).all(|(p, s)| p == "*" || p == s)
}

fn undocumented(facts: &Value, doc: &[Vec<String>]) -> Vec<String> {
    let mut paths = BTreeSet::new();
    leaves(facts, &mut Vec::new(), &mut paths);
    let mut missing = Vec::new();
    for (p, empty) in paths {
        // A documented map or list (`x.*`, `x[]`) also covers its empty form.
        if !doc.iter().any(|d| matches(d, &p, empty)) && !missing.contains(&p.join(".")) {
            missing.push(p.join("."));
        }
    }
    missing
}

fn scan(root: &Path) -> Value {
    let host = Host::new(root).unwrap();
    let (f, _) = facts::collect(&host, ScanOptions { detail: true });
    serde_json::to_value(f).unwrap()
}

#[test]
fn doc_states_the_schema_version() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/facts.md")).unwrap();
    assert!(doc.contains(&format!("`schema_version: {}`", facts::SCHEMA_VERSION)));
}

#[test]
fn every_emitted_field_is_documented() {
    let doc = documented();
    assert!(doc.len() > 100, "docs/facts.md has only {} field rows", doc.len());
    let mut roots = vec![Path::new("/").to_path_buf()];
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts");
    for e in std::fs::read_dir(&sample).into_iter().flatten().flatten() {
        roots.push(e.path());
    }
    for name in support::real_fixture_names() {
        roots.push(support::real_fixture(&name));
    }
    let mut missing = BTreeSet::new();
    for r in &roots {
        missing.extend(undocumented(&scan(r), &doc));
    }
    assert!(
        missing.is_empty(),
        "fields emitted but not in docs/facts.md:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn doc_check_catches_an_undocumented_field() {
    let doc = vec![split_pattern("a.b[].c"), split_pattern("m.*")];
    let v = serde_json::json!({"a": {"b": [{"c": 1, "d": 2}]}, "m": {"x": 1}, "e": {}});
    assert_eq!(undocumented(&v, &doc), vec!["a.b.[].d".to_string(), "e".to_string()]);
}
