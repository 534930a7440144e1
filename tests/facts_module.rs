//! lltune_facts through its real binary, as Ansible runs it: an args file as argv[1] (or the
//! JSON on standard input), one JSON object out. Failures are compared as whole objects: the
//! message is the interface a person reads, and no stray key may appear.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support;

const MODULE: &str = "lltune_facts";

/// A tiny host tree in the kernel's formats (written here, not copied from a machine).
fn tiny_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "proc/cmdline",
            "BOOT_IMAGE=/vmlinuz-6.1.0 root=/dev/sda1 ro quiet isolcpus=managed_irq,domain,2-3 nohz_full=2-3\n",
        ),
        ("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n"),
        ("sys/devices/system/cpu/online", "0-3\n"),
        ("sys/devices/system/cpu/isolated", "2-3\n"),
    ];
    for (path, text) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    dir
}

/// Every file of a tree with its bytes, to prove a run wrote nothing.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path().strip_prefix(root).unwrap().display().to_string(), fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// Runs the module with `raw` bytes in an args file given as argv[1].
fn run_with_args_file(raw: &[u8]) -> (Value, i32) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("args");
    fs::write(&path, raw).unwrap();
    run_with_argv(&path.display().to_string())
}

fn run_with_argv(arg: &str) -> (Value, i32) {
    let out = Command::new(support::bin(MODULE)).arg(arg).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    (v, out.status.code().unwrap_or(-1))
}

fn failure(msg: &str) -> Value {
    json!({"changed": false, "failed": true, "msg": msg, "warnings": []})
}

fn assert_no_ansible_keys(v: &Value) {
    let keys: Vec<&String> = v.as_object().unwrap().keys().filter(|k| k.starts_with("_ansible_")).collect();
    assert!(keys.is_empty(), "result carries {keys:?}: {v}");
}

#[test]
fn facts_module_scans_a_tree_and_changes_nothing() {
    let tree = tiny_tree();
    let before = snapshot(tree.path());
    let (v, code) = support::run_module(MODULE, &json!({"root": tree.path()}));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], json!(false));
    assert_eq!(v["failed"], json!(false));
    assert!(v.get("msg").is_none(), "{v}");
    assert_no_ansible_keys(&v);
    let facts = &v["ansible_facts"]["lltune"];
    assert_eq!(facts["schema_version"], json!(2));
    assert_eq!(facts["lltune_version"], json!(env!("CARGO_PKG_VERSION")));
    assert_eq!(
        facts["kernel"]["cmdline"],
        json!("BOOT_IMAGE=/vmlinuz-6.1.0 root=/dev/sda1 ro quiet isolcpus=managed_irq,domain,2-3 nohz_full=2-3")
    );
    assert_eq!(facts["kernel"]["release"], json!("6.1.0-18-amd64"));
    assert!(v["warnings"].as_array().unwrap().iter().all(Value::is_string), "{v}");
    // Only ansible_facts besides the protocol's own keys.
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["changed", "failed", "ansible_facts", "warnings"]);
    assert_eq!(snapshot(tree.path()), before, "a facts run wrote into its root");
}

#[test]
fn facts_module_check_mode_returns_the_same_facts() {
    let tree = tiny_tree();
    let (real, code) = support::run_module(MODULE, &json!({"root": tree.path()}));
    assert_eq!(code, 0, "{real}");
    let (check, code) =
        support::run_module(MODULE, &json!({"root": tree.path(), "_ansible_check_mode": true, "_ansible_diff": true}));
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["changed"], json!(false));
    assert_eq!(check["failed"], json!(false));
    assert!(check.get("diff").is_none(), "facts have nothing to diff: {check}");
    assert_no_ansible_keys(&check);
    assert_eq!(check["ansible_facts"], real["ansible_facts"]);
    assert_eq!(check["warnings"], real["warnings"]);
}

#[test]
fn facts_module_reads_args_from_stdin_and_ansible_booleans() {
    let tree = tiny_tree();
    let args = json!({"root": tree.path(), "detail": "yes"});
    let (v, code) = support::run_module_stdin(MODULE, args.to_string().as_bytes());
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["failed"], json!(false));
    let (file_run, _) = support::run_module(MODULE, &args);
    assert_eq!(v, file_run, "stdin and args file must give the same result");
}

#[test]
fn facts_module_accepts_every_ansible_key_known_or_not() {
    let tree = tiny_tree();
    // What ansible-core 2.19 sends, plus a key from a future release.
    let args = json!({
        "root": tree.path(),
        "_ansible_check_mode": false,
        "_ansible_no_log": false,
        "_ansible_debug": false,
        "_ansible_diff": false,
        "_ansible_verbosity": 3,
        "_ansible_version": "2.19.14",
        "_ansible_module_name": "lltune.tuning.lltune_facts",
        "_ansible_syslog_facility": "LOG_USER",
        "_ansible_selinux_special_fs": ["fuse", "nfs"],
        "_ansible_string_conversion_action": "warn",
        "_ansible_socket": null,
        "_ansible_shell_executable": "/bin/sh",
        "_ansible_keep_remote_files": false,
        "_ansible_tmpdir": "/tmp/ansible-tmp-1/",
        "_ansible_remote_tmp": "~/.ansible/tmp",
        "_ansible_ignore_unknown_opts": false,
        "_ansible_target_log_info": null,
        "_ansible_tracebacks_for": [],
        "_ansible_feature_from_2099": {"nested": [1, 2]},
    });
    let (v, code) = support::run_module(MODULE, &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["failed"], json!(false));
    assert_no_ansible_keys(&v);
    assert_eq!(v["ansible_facts"]["lltune"]["schema_version"], json!(2));
}

#[test]
fn facts_module_rejects_an_unknown_option() {
    let tree = tiny_tree();
    let (v, code) = support::run_module(MODULE, &json!({"detal": true, "root": tree.path()}));
    assert_eq!(v, failure("unsupported option detal; supported options: detail, option_names, root"));
    assert_eq!(code, 1);
}

#[test]
fn facts_module_rejects_a_wrong_type() {
    let (v, code) = support::run_module(MODULE, &json!({"detail": [1]}));
    assert_eq!(v, failure("option detail: expected a boolean, got a list"));
    assert_eq!(code, 1);
    let (v, code) = support::run_module(MODULE, &json!({"detail": "maybe"}));
    assert_eq!(v, failure(r#"option detail: expected a boolean, got "maybe""#));
    assert_eq!(code, 1);
    let (v, code) = support::run_module(MODULE, &json!({"root": 5}));
    assert_eq!(v, failure("option root: expected a directory path (string), got a number"));
    assert_eq!(code, 1);
}

#[test]
fn facts_module_rejects_malformed_json_on_stdin() {
    let (v, code) = support::run_module_stdin(MODULE, b"{");
    assert_eq!(v, failure("module arguments are not valid JSON: EOF while parsing an object at line 1 column 1"));
    assert_eq!(code, 1);
    let (v, code) = support::run_module_stdin(MODULE, b"");
    assert_eq!(v, failure("module arguments are not valid JSON: EOF while parsing a value at line 1 column 0"));
    assert_eq!(code, 1);
}

#[test]
fn facts_module_rejects_malformed_json_in_the_args_file() {
    let (v, code) = run_with_args_file(b"{\"detail\": tru}\n");
    assert_eq!(v, failure("module arguments are not valid JSON: expected ident at line 1 column 15"));
    assert_eq!(code, 1);
}

#[test]
fn facts_module_rejects_an_args_file_that_cannot_be_read() {
    let (v, code) = run_with_argv("/nonexistent/lltune/args.json");
    assert_eq!(
        v,
        failure(
            "cannot read module arguments from /nonexistent/lltune/args.json: No such file or directory (os error 2)"
        )
    );
    assert_eq!(code, 1);
}

#[test]
fn facts_module_rejects_args_that_are_not_an_object() {
    let (v, code) = run_with_args_file(b"[{\"detail\": true}]");
    assert_eq!(v, failure("module arguments must be a JSON object, got a list"));
    assert_eq!(code, 1);
    let (v, code) = support::run_module_stdin(MODULE, b"null");
    assert_eq!(v, failure("module arguments must be a JSON object, got null"));
    assert_eq!(code, 1);
}

#[test]
fn facts_module_rejects_a_missing_root() {
    let (v, code) = support::run_module(MODULE, &json!({"root": "/nonexistent/lltune-root"}));
    assert_eq!(v, failure("option root: /nonexistent/lltune-root: no such file or directory"));
    assert_eq!(code, 1);
}

#[test]
fn facts_module_rejects_a_root_that_is_a_file() {
    let tree = tiny_tree();
    let file = tree.path().join("proc/cmdline");
    let (v, code) = support::run_module(MODULE, &json!({"root": file}));
    assert_eq!(v, failure(&format!("option root: {}: root is not a directory", file.display())));
    assert_eq!(code, 1);
}
