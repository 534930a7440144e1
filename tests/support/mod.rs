//! Shared test helpers: the built binaries, module runs, the real-machine dumps.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Path of one of this crate's binaries, as built by cargo for the tests.
pub fn bin(name: &str) -> PathBuf {
    let p = match name {
        "lltune" => env!("CARGO_BIN_EXE_lltune"),
        "lltune_facts" => env!("CARGO_BIN_EXE_lltune_facts"),
        other => panic!("unknown binary {other}: add it to tests/support/mod.rs"),
    };
    PathBuf::from(p)
}

/// Runs a module binary the way Ansible does (args file as argv[1]); returns the parsed JSON
/// result and the exit code. Panics, with the raw output, when stdout is not one JSON object.
pub fn run_module(name: &str, args: &Value) -> (Value, i32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let args_path = dir.path().join("args.json");
    fs::write(&args_path, serde_json::to_vec(args).unwrap()).unwrap();
    let out = Command::new(bin(name)).arg(&args_path).output().expect("run module");
    parse_module_output(&out)
}

/// Runs a module with raw bytes on standard input (no argv[1]).
pub fn run_module_stdin(name: &str, raw: &[u8]) -> (Value, i32) {
    let mut child = Command::new(bin(name))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn module");
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let out = child.wait_with_output().unwrap();
    parse_module_output(&out)
}

fn parse_module_output(out: &std::process::Output) -> (Value, i32) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("module output is not one JSON object ({e}):\nstdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    });
    assert!(v.is_object(), "module output is not an object: {v}");
    (v, out.status.code().unwrap_or(-1))
}

/// The shared folder of real-machine dumps, when present.
pub fn real_fixtures_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real");
    d.join("MANIFEST.json").exists().then_some(d)
}

/// True under CI, where tests that need the real dumps must run rather than skip.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// The unpacked root of one real dump (`../shared/fixtures/real/<name>.*`), unpacked once per
/// build into the cargo target's temp folder. `None` (with a message) when the dumps are
/// absent; under CI their absence is a failure.
pub fn real_fixture(name: &str) -> Option<PathBuf> {
    let Some(src) = real_fixtures_dir() else {
        assert!(!in_ci(), "CI=true but ../shared/fixtures/real is missing");
        eprintln!("skipping: ../shared/fixtures/real is absent (tests on real dumps need it)");
        return None;
    };
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("real-fixtures");
    fs::create_dir_all(&base).unwrap();
    let dest = base.join(name);
    if dest.join(".unpacked").exists() {
        return Some(dest);
    }
    // Several test processes may ask at once: one unpacks, the others wait on the lock.
    let lock = fs::File::create(base.join(".lock")).unwrap();
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).expect("lock real-fixtures");
    if dest.join(".unpacked").exists() {
        return Some(dest);
    }
    let staging = base.join(".staging");
    let _ = fs::remove_dir_all(&staging);
    let st = Command::new("bash").arg(src.join("unpack.sh")).arg(&staging).stdout(Stdio::null()).status().expect("run unpack.sh");
    assert!(st.success(), "unpack.sh failed");
    for entry in fs::read_dir(&staging).unwrap() {
        let entry = entry.unwrap();
        let target = base.join(entry.file_name());
        let _ = fs::remove_dir_all(&target);
        fs::rename(entry.path(), &target).unwrap();
        fs::write(target.join(".unpacked"), "").unwrap();
    }
    let _ = fs::remove_dir_all(&staging);
    assert!(dest.join(".unpacked").exists(), "no real dump named {name}");
    Some(dest)
}

/// The real dumps' manifest.
pub fn real_manifest() -> Option<Value> {
    let d = real_fixtures_dir()?;
    Some(serde_json::from_slice(&fs::read(d.join("MANIFEST.json")).unwrap()).unwrap())
}
