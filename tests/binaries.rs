//! scripts/check_binaries.py, the check `make collection` runs on the shipped binaries (glibc
//! 2.17 at most, module binaries within 1 MiB), shown to fail where it must: on the plain cargo
//! build of this host. The shipped (zig-linked) binaries themselves are checked and run as
//! modules by `make collection smoke`, which `make test` runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_binaries.py")
}

fn check(args: &[&str], binary: &Path) -> (bool, String) {
    let out = Command::new("python3").arg(script()).args(args).arg(binary).output().expect("run python3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// This host's glibc version, as (major, minor).
fn host_glibc() -> (u32, u32) {
    // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
    let v = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) }.to_string_lossy().into_owned();
    let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn the_check_flags_a_binary_linked_against_a_newer_glibc() {
    let facts = support::bin("lltune_facts");
    // Glibc only, no limit that can fail: passes, and names the newest GLIBC_ symbol.
    let (ok, text) = check(&["--no-size", "--max-glibc", "99.0"], &facts);
    assert!(ok, "{text}");
    assert!(text.contains("newest glibc symbol GLIBC_2."), "{text}");
    // A plain cargo build on glibc 2.34 or later links __libc_start_main@GLIBC_2.34: the
    // check must refuse it (this is why the shipped binaries are linked by zig).
    if host_glibc() >= (2, 34) {
        let (ok, text) = check(&["--no-size"], &facts);
        assert!(!ok, "{text}");
        assert!(text.contains("GLIBC_2.34") && text.contains("at most GLIBC_2.17 allowed"), "{text}");
    }
}

#[test]
fn the_check_flags_a_binary_over_its_size_budget() {
    let facts = support::bin("lltune_facts");
    let size = std::fs::metadata(&facts).unwrap().len();
    let (ok, text) = check(&["--max-glibc", "99.0", "--max-size", &(size - 1).to_string()], &facts);
    assert!(!ok, "{text}");
    assert!(text.contains("over the size budget"), "{text}");
    let (ok, text) = check(&["--max-glibc", "99.0", "--max-size", &size.to_string()], &facts);
    assert!(ok, "{text}");
    // A binary named in a budget file gets its own budget, and no more.
    let dir = tempfile::tempdir().unwrap();
    let budgets = dir.path().join("budgets.txt");
    std::fs::write(&budgets, format!("# name bytes\nlltune_facts {size}  # why\n")).unwrap();
    let b = budgets.to_str().unwrap();
    let (ok, text) = check(&["--max-glibc", "99.0", "--max-size", "1", "--budgets", b], &facts);
    assert!(ok, "{text}");
    std::fs::write(&budgets, format!("lltune_facts {}\n", size - 1)).unwrap();
    let (ok, text) = check(&["--max-glibc", "99.0", "--max-size", "1", "--budgets", b], &facts);
    assert!(!ok, "{text}");
}

#[test]
fn the_check_refuses_what_is_not_an_elf_binary() {
    let (ok, text) = check(&[], &script());
    assert!(!ok, "{text}");
    assert!(text.contains("not an ELF file"), "{text}");
}
