//! Shared test helpers: the built binaries, module runs, the real-machine dumps.
#![allow(dead_code)]

use std::collections::BTreeMap;
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
        "lltune_sysctl" => env!("CARGO_BIN_EXE_lltune_sysctl"),
        "lltune_kernel_args" => env!("CARGO_BIN_EXE_lltune_kernel_args"),
        "lltune_rollback" => env!("CARGO_BIN_EXE_lltune_rollback"),
        "lltune_config" => env!("CARGO_BIN_EXE_lltune_config"),
        "lltune_audit" => env!("CARGO_BIN_EXE_lltune_audit"),
        // Any other binary of this crate (a module added since): cargo puts every binary
        // beside `lltune`.
        other => {
            let p = Path::new(env!("CARGO_BIN_EXE_lltune")).with_file_name(other);
            assert!(p.is_file(), "cargo built no binary {other} ({})", p.display());
            return p;
        }
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
        panic!(
            "module output is not one JSON object ({e}):\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(v.is_object(), "module output is not an object: {v}");
    (v, out.status.code().unwrap_or(-1))
}

/// The folder of real-machine dumps (`tests/fixtures/real`, with `MANIFEST.json`). Panics when
/// it is missing: the real dumps are part of the repository, and a test that needs them must fail
/// rather than pass without having run.
pub fn real_fixtures_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real");
    assert!(
        d.join("MANIFEST.json").is_file(),
        "the real-machine dumps are missing: no {} (they are committed under tests/fixtures/real)",
        d.join("MANIFEST.json").display()
    );
    d
}

/// True under CI (`CI=true` or `CI=1`), where a test that needs an ability of the machine
/// (namespaces, chattr, root) must fail rather than skip when that ability is missing.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// Skips a test for want of an ability of the machine, with a message; under CI, fails instead.
pub fn skip_unless_ci(why: &str) {
    assert!(!in_ci(), "CI=true but this test cannot run here: {why}");
    eprintln!("skipping: {why}");
}

/// The unpacked root of one real dump (`tests/fixtures/real/<name>.*`), unpacked once per build
/// into the cargo target's temp folder. Panics when there is no such dump.
pub fn real_fixture(name: &str) -> PathBuf {
    let src = real_fixtures_dir();
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("real-fixtures");
    fs::create_dir_all(&base).unwrap();
    let dest = base.join(name);
    if dest.join(".unpacked").exists() {
        return dest;
    }
    // Several test processes may ask at once: one unpacks, the others wait on the lock.
    let lock = fs::File::create(base.join(".lock")).unwrap();
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).expect("lock real-fixtures");
    if dest.join(".unpacked").exists() {
        return dest;
    }
    let staging = base.join(".staging");
    let _ = fs::remove_dir_all(&staging);
    let st = Command::new("bash")
        .arg(src.join("unpack.sh"))
        .arg(&staging)
        .stdout(Stdio::null())
        .status()
        .expect("run unpack.sh");
    assert!(st.success(), "unpack.sh failed");
    for entry in fs::read_dir(&staging).unwrap() {
        let entry = entry.unwrap();
        let target = base.join(entry.file_name());
        let _ = fs::remove_dir_all(&target);
        fs::rename(entry.path(), &target).unwrap();
        fs::write(target.join(".unpacked"), "").unwrap();
    }
    let _ = fs::remove_dir_all(&staging);
    assert!(dest.join(".unpacked").exists(), "no real dump named {name} in {}", src.display());
    dest
}

/// The real dumps' manifest (`tests/fixtures/real/MANIFEST.json`).
pub fn real_manifest() -> Value {
    let p = real_fixtures_dir().join("MANIFEST.json");
    serde_json::from_slice(&fs::read(&p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The names of the real dumps the manifest lists.
pub fn real_fixture_names() -> Vec<String> {
    let m = real_manifest();
    let names: Vec<String> =
        m["fixtures"].as_object().expect("MANIFEST.json has no fixtures map").keys().cloned().collect();
    assert!(!names.is_empty(), "MANIFEST.json lists no fixtures");
    names
}

// ---- Ansible: a pinned ansible-core in a venv, and the collection assembled from ansible/ ----

/// The pinned ansible-core requirement (`ansible-core==X.Y.Z`), shared with the Makefile.
const ANSIBLE_CORE_PIN_FILE: &str = include_str!("../ansible-core.pin");

/// The pinned ansible-core version (`2.19.14`).
pub fn ansible_core_version() -> &'static str {
    ANSIBLE_CORE_PIN_FILE
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("ansible-core=="))
        .expect("tests/ansible-core.pin has no ansible-core==X.Y.Z line")
}

/// The tools of a venv holding the pinned ansible-core.
#[derive(Debug, Clone)]
pub struct Ansible {
    pub venv: PathBuf,
    pub playbook: PathBuf,
    pub doc: PathBuf,
    /// The ad-hoc `ansible` command.
    pub adhoc: PathBuf,
}

impl Ansible {
    fn in_venv(venv: &Path) -> Ansible {
        let b = venv.join("bin");
        Ansible {
            venv: venv.to_path_buf(),
            playbook: b.join("ansible-playbook"),
            doc: b.join("ansible-doc"),
            adhoc: b.join("ansible"),
        }
    }

    /// A command for one of the tools, sealed inside `sandbox`: HOME, Ansible's temp folders
    /// and config live there, no ANSIBLE_* variable of the caller leaks in, and the
    /// collections path is the one `collection_dir()` assembled.
    pub fn command(&self, tool: &Path, sandbox: &Path) -> Command {
        for d in ["home", "local-tmp", "remote-tmp"] {
            fs::create_dir_all(sandbox.join(d)).unwrap();
        }
        // An empty config in the working folder: /etc/ansible/ansible.cfg must not apply.
        let cfg = sandbox.join("ansible.cfg");
        if !cfg.exists() {
            fs::write(&cfg, "[defaults]\n").unwrap();
        }
        let mut cmd = Command::new(tool);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ANSIBLE_") {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(sandbox)
            .env("HOME", sandbox.join("home"))
            .env("LC_ALL", "C.UTF-8") // ansible-core refuses to start without a UTF-8 locale
            .env("ANSIBLE_CONFIG", &cfg)
            .env("ANSIBLE_LOCAL_TEMP", sandbox.join("local-tmp"))
            .env("ANSIBLE_REMOTE_TEMP", sandbox.join("remote-tmp"))
            .env("ANSIBLE_COLLECTIONS_PATH", collection_dir())
            .env("ANSIBLE_COLLECTIONS_SCAN_SYS_PATH", "false")
            .env("ANSIBLE_PYTHON_INTERPRETER", self.venv.join("bin/python"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "false")
            .stdin(Stdio::null());
        cmd
    }
}

/// tests/python-constraints.txt: every Python package any venv of the project installs, at
/// one version. Every `pip install` of the tests passes it (`pip_install`).
pub fn python_constraints() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python-constraints.txt")
}

/// `{normalized name: version}` of the constraints file.
pub fn constrained_versions() -> BTreeMap<String, String> {
    let text = fs::read_to_string(python_constraints()).expect("tests/python-constraints.txt");
    text.lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, version) = l
                .split_once("==")
                .unwrap_or_else(|| panic!("tests/python-constraints.txt: {l:?} is not name==version"));
            (normalize_dist_name(name), version.trim().to_string())
        })
        .collect()
}

/// A distribution name as pip compares them (PEP 503): lower case, runs of `-_.` as one `-`.
pub fn normalize_dist_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// `{normalized name: version}` of what `venv` holds (pip and setuptools, which come with
/// Python's own venv module rather than from a pin, left out).
pub fn installed_versions(venv: &Path) -> BTreeMap<String, String> {
    let out = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import importlib.metadata as m\nfor d in m.distributions(): print(d.metadata['Name'], d.version)",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", venv.display()));
    assert!(out.status.success(), "{}: {}", venv.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, v)| (normalize_dist_name(n), v.trim().to_string()))
        .filter(|(n, _)| n != "pip" && n != "setuptools")
        .collect()
}

/// The packages of `venv` whose version is not the constrained one, or that the constraints
/// file does not name, as `name version (constraint: ...)` lines.
pub fn unconstrained_packages(venv: &Path) -> Vec<String> {
    let want = constrained_versions();
    installed_versions(venv)
        .into_iter()
        .filter(|(n, v)| want.get(n) != Some(v))
        .map(|(n, v)| format!("{n} {v} (constraint: {})", want.get(&n).map_or("none", String::as_str)))
        .collect()
}

/// `pip install --quiet -c tests/python-constraints.txt <args>` in `venv`, asserting success.
pub fn pip_install(venv: &Path, args: &[&std::ffi::OsStr]) {
    let out = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-c"])
        .arg(python_constraints())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("pip install in {}: {e}", venv.display()));
    assert!(
        out.status.success(),
        "pip install {args:?} in {} failed ({}):\nstdout: {}\nstderr: {}",
        venv.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// True when `venv` has the pinned ansible-core and its tools, and every package in it is at
/// its constrained version (a venv made before a constraint moved is not reused).
fn venv_has_pin(venv: &Path) -> bool {
    let a = Ansible::in_venv(venv);
    if !(a.playbook.exists() && a.doc.exists() && venv.join("bin/python").exists()) {
        return false;
    }
    installed_versions(venv).get("ansible-core").map(String::as_str) == Some(ansible_core_version())
        && unconstrained_packages(venv).is_empty()
}

/// A venv with the pinned ansible-core: the repository's `.venv` when `make venv` made one
/// with the same pin, else one made once per build under the cargo target's temp folder
/// (`python3 -m venv`, then `pip install` from the package registry).
pub fn ansible() -> Ansible {
    static ANSIBLE: std::sync::OnceLock<Ansible> = std::sync::OnceLock::new();
    ANSIBLE.get_or_init(make_ansible_venv).clone()
}

/// A hash of the pin files a test venv is installed from (FNV-1a: stable across builds).
fn pins_hash() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ANSIBLE_CORE_PIN_FILE.bytes().chain(fs::read(python_constraints()).expect("constraints")) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn make_ansible_venv() -> Ansible {
    let repo_venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv");
    if venv_has_pin(&repo_venv) {
        return Ansible::in_venv(&repo_venv);
    }
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ansible-venv");
    fs::create_dir_all(&base).unwrap();
    // Named by the pins: a moved pin or constraint gets a venv of its own.
    let venv = base.join(format!("ansible-core-{}-{:016x}", ansible_core_version(), pins_hash()));
    let done = venv.join(".installed");
    if done.exists() {
        return Ansible::in_venv(&venv);
    }
    // Several test processes may ask at once: one installs, the others wait on the lock.
    let lock = fs::File::create(base.join(".lock")).unwrap();
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).expect("lock ansible-venv");
    if done.exists() {
        return Ansible::in_venv(&venv);
    }
    // A venv cannot be moved (its scripts name their own path): build in place, mark at the end.
    let _ = fs::remove_dir_all(&venv);
    let run = |cmd: &mut Command, what: &str| {
        let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv), "python3 -m venv");
    let pin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ansible-core.pin");
    pip_install(&venv, &["-r".as_ref(), pin.as_os_str()]);
    assert!(
        venv_has_pin(&venv),
        "{} has no ansible-core {} at the constrained versions after pip install: {:?}",
        venv.display(),
        ansible_core_version(),
        unconstrained_packages(&venv)
    );
    fs::write(&done, "").unwrap();
    Ansible::in_venv(&venv)
}

/// A collections path (the folder holding `ansible_collections/`) with `lltune.tuning`
/// assembled from `ansible/` plus the module binaries cargo built for this test run, one
/// beside each sidecar `plugins/modules/<module>.yml`. Built once per test process, so tests
/// do not depend on `make collection`.
pub fn collection_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(assemble_collection).clone()
}

fn assemble_collection() -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("collections");
    fs::create_dir_all(&base).unwrap();
    // One folder per test process; those of processes that are gone are removed.
    for entry in fs::read_dir(&base).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_ok() && !Path::new("/proc").join(&name).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    let root = base.join(std::process::id().to_string());
    let _ = fs::remove_dir_all(&root);
    let coll = root.join("ansible_collections/lltune/tuning");
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible"), &coll);
    // Every binary of this crate lands in the same folder as `lltune`.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_lltune")).parent().unwrap().to_path_buf();
    let modules = coll.join("plugins/modules");
    for entry in fs::read_dir(&modules).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".yml") else { continue };
        let built = bin_dir.join(stem);
        assert!(
            built.is_file(),
            "plugins/modules/{name} documents {stem}, but cargo built no binary {}",
            built.display()
        );
        // As `make collection` lays it out: the binary in binaries/, and plugins/modules/<module>
        // a link to it beside the sidecar and the comment-only <module>.py (ansible-doc -l
        // skips links, so it reads the .py; Ansible runs the binary through the link).
        fs::create_dir_all(coll.join("binaries")).unwrap();
        let dest = coll.join("binaries").join(stem);
        if fs::hard_link(&built, &dest).is_err() {
            fs::copy(&built, &dest).unwrap();
        }
        std::os::unix::fs::symlink(Path::new("../../binaries").join(stem), modules.join(stem)).unwrap();
    }
    root
}

fn copy_tree(src: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dest.join(entry.file_name());
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            copy_tree(&entry.path(), &to);
        } else if ty.is_file() {
            fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// The counters of the PLAY RECAP line of `host` (`ok`, `changed`, `failed`, ...).
pub fn play_recap(stdout: &str, host: &str) -> std::collections::BTreeMap<String, u64> {
    let line = stdout
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .find(|l| l.split_whitespace().next() == Some(host))
        .unwrap_or_else(|| panic!("no PLAY RECAP line for {host} in:\n{stdout}"));
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap_or_else(|_| panic!("bad recap count {k}={v}"))))
        .collect()
}

// ---- Change modules: fixture copies and whole-tree snapshots ----

/// A fresh copy of `tests/fixtures/boot/<name>` (symlinks kept as links) in a temp folder.
pub fn boot_fixture(name: &str) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/boot").join(name);
    assert!(src.is_dir(), "no fixture tree {}", src.display());
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree_with_links(&src, dir.path());
    dir
}

/// A fresh copy of any fixture tree (a real dump's unpacked root, `tests/fixtures/hosts/<name>`)
/// in a temp folder, symlinks kept as links: tests change the copy, never the shared cache.
pub fn copy_fixture(src: &Path) -> tempfile::TempDir {
    assert!(src.is_dir(), "no fixture tree {}", src.display());
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree_with_links(src, dir.path());
    dir
}

/// A fresh copy of `tests/fixtures/hosts/<name>`.
pub fn host_fixture(name: &str) -> tempfile::TempDir {
    copy_fixture(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts").join(name))
}

pub fn copy_tree_with_links(src: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dest.join(entry.file_name());
        let ty = entry.file_type().unwrap();
        if ty.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &to).unwrap();
        } else if ty.is_dir() {
            copy_tree_with_links(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// One node of a tree snapshot: what a byte-identical comparison looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File { bytes: Vec<u8>, mode: u32, uid: u32, gid: u32 },
    Dir { mode: u32 },
    Link(PathBuf),
}

/// Every path under `root` (relative) with its bytes, mode and owner, except the folders
/// lltune keeps its backups in (`var/lib/lltune`): the one leftover a rollback may leave.
pub fn tree_snapshot(root: &Path) -> std::collections::BTreeMap<String, Node> {
    use std::os::unix::fs::MetadataExt;
    fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Node>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let p = entry.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if rel == "var/lib/lltune" || rel == "var/lib" || rel == "var" {
                if rel != "var/lib/lltune" {
                    walk(base, &p, out);
                }
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            let node = if m.file_type().is_symlink() {
                Node::Link(fs::read_link(&p).unwrap())
            } else if m.is_dir() {
                walk(base, &p, out);
                Node::Dir { mode: m.mode() & 0o7777 }
            } else {
                Node::File { bytes: fs::read(&p).unwrap(), mode: m.mode() & 0o7777, uid: m.uid(), gid: m.gid() }
            };
            out.insert(rel, node);
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Asserts two snapshots are equal, naming the paths that differ.
pub fn assert_same_tree(
    before: &std::collections::BTreeMap<String, Node>,
    after: &std::collections::BTreeMap<String, Node>,
    what: &str,
) {
    let mut diffs = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => diffs.push(format!("{k}: gone")),
            Some(a) if a != v => diffs.push(format!(
                "{k}: differs ({})",
                match (v, a) {
                    (Node::File { bytes: b1, .. }, Node::File { bytes: b2, .. }) if b1 == b2 =>
                        "mode or owner".to_string(),
                    (Node::File { bytes: b1, .. }, Node::File { bytes: b2, .. }) =>
                        format!("{:?} -> {:?}", String::from_utf8_lossy(b1), String::from_utf8_lossy(b2)),
                    _ => "kind".to_string(),
                }
            )),
            _ => {}
        }
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        diffs.push(format!("{k}: new"));
    }
    assert!(diffs.is_empty(), "{what}: tree differs:\n{}", diffs.join("\n"));
}

/// What an Ansible tool printed, for assertions that show all of it on failure.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn show(&self) -> String {
        format!("exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs an Ansible tool of the pinned venv in `sandbox` (see `Ansible::command`), with
/// `collections` as the collections path when given.
pub fn run_ansible(tool: &Path, sandbox: &Path, args: &[&str], collections: Option<&Path>) -> Run {
    let mut cmd = ansible().command(tool, sandbox);
    if let Some(c) = collections {
        cmd.env("ANSIBLE_COLLECTIONS_PATH", c);
    }
    let out = cmd.args(args).output().unwrap_or_else(|e| panic!("run {}: {e}", tool.display()));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// ---- A private network namespace for tests on a real kernel ----

/// Set in a re-run child to the test it runs: that child is inside the new namespaces.
const NETNS_CHILD_ENV: &str = "LLTUNE_TEST_NETNS_CHILD";
/// Printed by the child first, so the parent can tell "unshare refused" from "test failed".
const NETNS_CHILD_STARTED: &str = "lltune-test-netns-child-started";

/// Runs `body` inside new network and mount namespaces: the test (named by its full path,
/// `module::test`) re-runs itself under `unshare --net --mount`, and `body` runs in that child.
/// Where namespaces are not allowed it skips with a message, except under CI, where it fails.
pub fn in_netns(test: &str, body: fn()) {
    in_unshare(test, &["--net", "--mount"], body)
}

/// Runs `body` inside new PID and mount namespaces with their own /proc (`unshare --pid
/// --fork --mount --mount-proc`): /proc lists only the processes the test starts, so a
/// module that acts on every thread acts on those alone. Skips as `in_netns` does.
pub fn in_pidns(test: &str, body: fn()) {
    in_unshare(test, &["--pid", "--fork", "--mount", "--mount-proc"], body)
}

fn in_unshare(test: &str, namespaces: &[&str], body: fn()) {
    if std::env::var(NETNS_CHILD_ENV).as_deref() == Ok(test) {
        println!("{NETNS_CHILD_STARTED}");
        body();
        return;
    }
    let skip = |why: String| skip_unless_ci(&format!("{test}: namespaces are not allowed here ({why})"));
    let exe = std::env::current_exe().unwrap();
    let spawned = Command::new("unshare")
        .args(namespaces)
        .arg("--")
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(NETNS_CHILD_ENV, test)
        .output();
    let out = match spawned {
        Ok(out) => out,
        Err(e) => return skip(format!("cannot run unshare: {e}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stdout.contains(NETNS_CHILD_STARTED) {
        return skip(format!("unshare {} failed: {}", namespaces.join(" "), stderr.trim()));
    }
    assert!(out.status.success(), "the test failed inside the namespace:\n{stdout}\n{stderr}");
    // The child really ran its test (not zero tests by a wrong filter).
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// Runs a command that must succeed.
pub fn sh(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Inside `in_netns`: remounts /sys (it shows the netdevs of the namespace that mounts it)
/// and makes veth0/veth1 with `queues` rx and tx queues each, both up.
pub fn add_veth_pair(queues: u32) {
    sh("mount", &["-t", "sysfs", "sysfs", "/sys"]);
    let q = queues.to_string();
    let q = q.as_str();
    #[rustfmt::skip]
    sh("ip", &["link", "add", "veth0", "numtxqueues", q, "numrxqueues", q,
               "type", "veth", "peer", "name", "veth1", "numtxqueues", q, "numrxqueues", q]);
    sh("ip", &["link", "set", "veth0", "up"]);
    sh("ip", &["link", "set", "veth1", "up"]);
}

/// The lines of an Ansible tool's stderr that matter: everything but a Python `warnings`
/// message raised inside a third-party package (`<file>:<line>: <Name>Warning: ...` and the
/// indented source line Python prints under it, for a file outside this collection). So an
/// Ansible `[WARNING]`, a deprecation Ansible prints, a traceback, a decode error or any
/// warning raised in the collection's own files is returned; a library's notice about its own
/// future is not (the packages are pinned; tests/python-constraints.txt).
pub fn ansible_stderr_problems(stderr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_library_warning = false;
    for line in stderr.lines() {
        if in_library_warning && line.starts_with([' ', '\t']) {
            continue;
        }
        in_library_warning = is_library_python_warning(line);
        if !in_library_warning && !line.trim().is_empty() {
            out.push(line.to_string());
        }
    }
    out
}

/// `/path/file.py:18: SomeWarning: text`, for a file not in `ansible_collections/lltune/`.
fn is_library_python_warning(line: &str) -> bool {
    let Some((head, _)) = line.split_once(": ") else { return false };
    let Some((file, lineno)) = head.rsplit_once(':') else { return false };
    let category = line[head.len() + 2..].split(':').next().unwrap_or("");
    file.ends_with(".py")
        && !file.contains("ansible_collections/lltune/")
        && !lineno.is_empty()
        && lineno.bytes().all(|b| b.is_ascii_digit())
        && category.ends_with("Warning")
        && category.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// A small deterministic generator for generated tests (no dependency): xorshift64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}
