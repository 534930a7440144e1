//! `lltune scan` and `lltune capture` as a user runs them.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support;

fn lltune(args: &[&str]) -> std::process::Output {
    Command::new(support::bin("lltune")).args(args).output().expect("run lltune")
}

fn scan_json(root: &Path, detail: bool) -> Value {
    let mut args = vec!["scan", "--format", "json", "--root", root.to_str().unwrap()];
    if detail {
        args.push("--detail");
    }
    let out = lltune(&args);
    assert!(out.status.success(), "scan failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("scan --format json prints JSON")
}

/// Facts that do not move between two scans of a live host (counters and free memory do).
fn stable(f: &Value) -> Value {
    serde_json::json!({
        "host": f["host"],
        "cpu": {"online": f["cpu"]["online"], "sockets": f["cpu"]["sockets"], "cores_per_socket": f["cpu"]["cores_per_socket"],
                "threads_per_core": f["cpu"]["threads_per_core"], "thread_siblings": f["cpu"]["thread_siblings"],
                "governors": f["cpu"]["governors"], "cpuidle": f["cpu"]["cpuidle"], "isolated": f["cpu"]["isolated"]},
        "numa": f["numa"]["nodes"].as_array().map(|ns| ns.iter().map(|n| serde_json::json!([n["id"], n["cpus"], n["memory_kb"], n["distances"]])).collect::<Vec<_>>()),
        "kernel": f["kernel"],
        "thp": f["memory"]["thp"],
        "nics": f["nics"].as_array().map(|ns| ns.iter().map(|n| serde_json::json!([n["name"], n["driver"], n["virtual"], n["numa_node"]])).collect::<Vec<_>>()),
        "irq_total": f["irqs"]["total"],
    })
}

#[test]
fn scan_json_equals_the_module_facts() {
    let root = support::real_fixture("hwloc-32intel64-2p8co2t");
    let cli = scan_json(&root, false);
    let (module, code) = support::run_module("lltune_facts", &serde_json::json!({"root": root}));
    assert_eq!(code, 0);
    assert_eq!(module["ansible_facts"]["lltune"], cli);
}

#[test]
fn scan_yaml_and_output_file_hold_the_same_object() {
    let root = support::real_fixture("utillinux-epyc7451");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshot.yaml");
    let o = lltune(&["scan", "--root", root.to_str().unwrap(), "--format", "yaml", "-o", out.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(o.stdout.is_empty(), "with -o nothing goes to stdout");
    let yaml: Value = serde_yaml::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(yaml, scan_json(&root, false));
}

#[test]
fn scan_text_is_a_short_summary() {
    let root = support::real_fixture("utillinux-epyc7451");
    let o = lltune(&["scan", "--root", root.to_str().unwrap()]);
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("AMD EPYC 7451 24-Core Processor"), "{text}");
    assert!(text.contains("2 sockets × 24 cores × 2 threads"), "{text}");
    assert!(text.lines().count() < 40, "{text}");
}

#[test]
fn scan_of_a_missing_root_is_one_line_and_exit_1() {
    let o = lltune(&["scan", "--root", "/nonexistent/lltune-root"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "lltune: error: --root: /nonexistent/lltune-root: no such file or directory\n"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn scan_with_a_bad_format_names_the_option() {
    let o = lltune(&["scan", "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--format"));
}

/// A capture of a real dump, unpacked, scans to exactly the facts of the dump itself:
/// the capture holds every file the scan reads and its sysfs links.
#[test]
fn capture_of_a_tree_reproduces_its_facts() {
    for name in ["hwloc-32em64t-2n8c", "cnto-r640-rt-worker1"] {
        let root = support::real_fixture(name);
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("host.tar.gz");
        let o = lltune(&["capture", "--root", root.to_str().unwrap(), "-o", archive.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // Scanning the archive directly and scanning it unpacked give the original facts.
        let mut from_archive = scan_json(&archive, true);
        let mut original = scan_json(&root, true);
        from_archive["lltune_version"] = Value::Null;
        original["lltune_version"] = Value::Null;
        assert_same(&from_archive, &original, name);
        let unpacked = dir.path().join("tree");
        std::fs::create_dir(&unpacked).unwrap();
        lltune::cli::capture::unpack(&archive, &unpacked).unwrap();
        let mut again = scan_json(&unpacked, true);
        again["lltune_version"] = Value::Null;
        assert_same(&again, &original, name);
        // Much smaller than the dump: only what the scan reads.
        let files = walk_count(&unpacked);
        assert!(files < walk_count(&root), "{name}: capture has {files} entries");
    }
}

/// Leaf paths where two JSON values differ, for a readable failure.
fn diff_paths(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()).collect::<std::collections::BTreeSet<_>>() {
                diff_paths(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_paths(p, q, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

fn assert_same(a: &Value, b: &Value, ctx: &str) {
    let mut d = Vec::new();
    diff_paths(a, b, "", &mut d);
    assert!(d.is_empty(), "{ctx}: facts differ:\n{}", d.iter().take(30).cloned().collect::<Vec<_>>().join("\n"));
}

fn walk_count(p: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap().flatten() {
        n += 1;
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            n += walk_count(&e.path());
        }
    }
    n
}

/// Capturing this host works on live procfs/sysfs (files that report size 0) and leaves
/// secrets out.
#[test]
fn capture_of_the_live_host_scans_like_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("live.tar.gz");
    let o = lltune(&["capture", "-o", archive.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let live = scan_json(Path::new("/"), false);
    let captured = scan_json(&archive, false);
    assert_same(&stable(&captured), &stable(&live), "live capture");
    let f = std::fs::File::open(&archive).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut names = Vec::new();
    let mut links = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let name = format!("/{}", e.path().unwrap().display());
        if let Some(to) = e.link_name().unwrap() {
            links.insert(name.clone(), to.display().to_string());
        }
        names.push(name);
    }
    assert!(names.iter().any(|n| n == "/proc/cmdline"));
    assert!(names.iter().any(|n| n == lltune::cli::capture::MANIFEST_PATH));
    for n in &names {
        assert!(!lltune::cli::capture::is_secret(n), "secret captured: {n}");
    }
    // What apply needs came along: os-release, and the enablement links of systemd's
    // configuration folder, each a link with the host's target (never followed).
    let os = Path::new("/etc/os-release");
    if let Ok(to) = std::fs::read_link(os) {
        assert_eq!(links.get("/etc/os-release"), Some(&to.display().to_string()));
    } else if os.is_file() {
        assert!(names.iter().any(|n| n == "/etc/os-release"));
    }
    for wants in std::fs::read_dir("/etc/systemd/system").into_iter().flatten().flatten() {
        if !wants.file_type().unwrap().is_dir() {
            continue;
        }
        for e in std::fs::read_dir(wants.path()).unwrap().flatten() {
            if let Ok(to) = std::fs::read_link(e.path()) {
                let at = e.path().display().to_string();
                assert_eq!(links.get(&at), Some(&to.display().to_string()), "{at}");
            }
        }
    }
}
