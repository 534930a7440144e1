//! The README's rack example (`examples/rack/`), run as written: the block under the
//! `rack-example` marker, line by line, by bash, from a copy of the sources' top folder whose
//! `build/collections` and `.venv` are the collection and the pinned ansible-core this test
//! build made (the one thing not run is `make collection`, which those stand for). The hosts are
//! the example's simulated ones (folders made from real dumps; no real host exists here).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::support::{self, Run, assert_same_tree, play_recap, tree_snapshot};

const MARKER: &str = "<!-- rack-example:";
const HOSTS: [&str; 3] = ["host001", "host002", "host003"];
const ID_PLACEHOLDER: &str = "<the backup id tune printed>";

/// The command lines of the README's rack example block, in order.
fn readme_block() -> Vec<String> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let after = readme.split_once(MARKER).expect("README.md has no rack-example marker").1;
    let body = after.split_once("```sh\n").expect("no ```sh block after the rack-example marker").1;
    let body = body.split_once("```").expect("the rack-example block is not closed").0;
    body.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

fn copy_dir(src: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    for e in fs::read_dir(src).unwrap().flatten() {
        let to = dest.join(e.file_name());
        let ty = e.file_type().unwrap();
        if ty.is_dir() {
            copy_dir(&e.path(), &to);
        } else if ty.is_file() {
            fs::copy(e.path(), &to).unwrap();
        }
    }
}

#[test]
fn the_readme_rack_example_runs_as_written() {
    let lines = readme_block();
    // The top of a source tree: the example copied (the test writes hosts and a report into
    // it), the fixtures it builds hosts from, and what `make collection` would have made.
    let top = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&src.join("examples/rack"), &top.path().join("examples/rack"));
    fs::remove_dir_all(top.path().join("examples/rack/hosts")).ok();
    fs::remove_dir_all(top.path().join("examples/rack/lltune-report")).ok();
    symlink(src.join("tests"), top.path().join("tests")).unwrap();
    fs::create_dir_all(top.path().join("build")).unwrap();
    symlink(support::collection_dir(), top.path().join("build/collections")).unwrap();
    let ansible = support::ansible();
    symlink(&ansible.venv, top.path().join(".venv")).unwrap();
    let sandbox = tempfile::tempdir().unwrap();
    let dumps = support::real_fixture("cnto-r640-rt-worker1").parent().unwrap().to_path_buf();

    // `export` and `cd` lines carry over to the lines after them, as in one shell.
    let mut prelude = format!("set -euo pipefail\ncd '{}'\n", top.path().display());
    let mut backup_id: Option<String> = None;
    let mut ran = Vec::new();
    let mut start = None;
    for line in &lines {
        let command = line.split('#').next().unwrap().trim();
        if command.starts_with("make ") {
            assert!(command.contains("collection"), "the example's make line builds no collection: {line}");
            continue;
        }
        if command.starts_with("export ") || command.starts_with("cd ") {
            prelude.push_str(command);
            prelude.push('\n');
            continue;
        }
        let command = if line.contains(ID_PLACEHOLDER) {
            let id = backup_id.as_deref().expect("the rollback line comes before a tune printed its backup id");
            line.replace(ID_PLACEHOLDER, id)
        } else {
            line.clone()
        };
        let out = ansible
            .command(Path::new("bash"), sandbox.path())
            .arg("-c")
            .arg(format!("{prelude}{command}"))
            // The CLI make-hosts.sh runs: this build's (the README's comes from make collection).
            .env("LLTUNE", support::bin("lltune"))
            .env("DUMPS", &dumps)
            .output()
            .unwrap();
        let r = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_eq!(r.code, 0, "README rack example: `{line}` failed:\n{}", r.show());
        if command.contains("lltune.tuning.tune") && !command.contains("--check") {
            backup_id = r
                .stdout
                .lines()
                .find_map(|l| l.trim().strip_prefix("\"backup id: "))
                .map(|s| s.trim_end_matches([',', '"']).to_string());
        }
        if command.contains("make-hosts.sh") {
            let hosts = top.path().join("examples/rack/hosts");
            start = Some(HOSTS.iter().map(|h| (*h, tree_snapshot(&hosts.join(h)))).collect::<BTreeMap<_, _>>());
        }
        ran.push((line.clone(), r));
    }
    let rack = top.path().join("examples/rack");
    let hosts = rack.join("hosts");
    for h in HOSTS {
        assert!(hosts.join(h).join("proc/cmdline").is_file(), "make-hosts.sh made no {h}");
    }
    let find = |what: &str| -> &Run {
        let hits: Vec<&Run> = ran.iter().filter(|(l, _)| l.contains(what)).map(|(_, r)| r).collect();
        assert_eq!(hits.len(), 1, "the README rack example has {} lines with {what}", hits.len());
        hits[0]
    };
    // Every playbook ran on all three hosts; the preview and the tune changed something on each
    // (the configs differ from the dumps), the rollback undid it.
    for (what, changes) in [
        ("lltune.tuning.facts", false),
        ("lltune.tuning.audit", false),
        ("lltune.tuning.tune --check", true),
        ("lltune.tuning.tune -e", true),
        ("lltune.tuning.rollback", true),
    ] {
        let r = find(what);
        for h in HOSTS {
            let recap = play_recap(&r.stdout, h);
            assert_eq!(recap["failed"], 0, "{what} on {h}: {}", r.show());
            assert_eq!(recap["changed"] > 0, changes, "{what} on {h}: changed={}\n{}", recap["changed"], r.show());
        }
    }
    // The canary went first, alone: its batch is the first with tasks, before host002's.
    let tune = &find("lltune.tuning.tune -e").stdout;
    let first = |h: &str| tune.find(&format!("[{h}]")).unwrap_or_else(|| panic!("tune never names {h}"));
    assert!(first("host001") < first("host002") && first("host001") < first("host003"), "{tune}");
    assert!(tune.matches("PLAY [").count() >= 2, "tune ran in one batch:\n{tune}");
    for f in ["fleet.json", "fleet.csv", "fleet.md", "lltune.prom", "fleet.html"] {
        assert!(rack.join("lltune-report").join(f).is_file(), "the report wrote no {f}");
    }
    // Rollback brought every host back, byte for byte, to what make-hosts.sh made.
    let start = start.expect("the example has no make-hosts.sh line");
    for h in HOSTS {
        assert_same_tree(&start[h], &tree_snapshot(&hosts.join(h)), &format!("{h} after the rollback"));
    }
}
