//! Byte-exact edits, generated: every module that edits a file, through its real binary on a
//! copy of a fixture tree, with the file's other lines made of arbitrary bytes (invalid UTF-8,
//! CR, NUL, backslashes, `\x`-like text, bidi characters, a last line without `\n`). Each
//! run: check mode predicts the diff, the diff's text gives back the file's bytes exactly
//! (escaped diffs unescaped with the one documented scheme, `engine::text`), every line the
//! module does not own keeps its bytes, a rerun changes nothing, and rollback gives back
//! the whole tree byte for byte. No fake: real binaries on real files.

use std::fs;
use std::path::Path;

use lltune::engine::text::{ESCAPED_NOTE, lines, unescape};
use serde_json::{Value, json};

use crate::support::{assert_same_tree, boot_fixture, host_fixture, run_module, tree_snapshot};

/// xorshift64*: deterministic, no crate.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One line's bytes (no `\n`): whatever breaks text handling, mixed with plain text.
    fn junk(&mut self) -> Vec<u8> {
        let n = self.below(40);
        let mut v = Vec::new();
        for _ in 0..n {
            match self.below(12) {
                0 => v.push(self.below(256) as u8),
                1 => v.extend_from_slice(b"\\xe9"),
                2 => v.push(b'\\'),
                3 => v.extend_from_slice(&[0xe9, 0xe0]),
                4 => v.extend_from_slice("é\u{202e}\u{85}".as_bytes()),
                5 => v.push(b'\r'),
                6 => v.push(0),
                7 => v.extend_from_slice(&[0xf0, 0x9f, 0x98]),
                8 => v.push(0xff),
                _ => v.push(b"ab=# \t19\""[self.below(9) as usize]),
            }
        }
        v.retain(|&b| b != b'\n');
        v
    }
}

/// One file a case edits: where, the lines the module works on (kept in this order, with
/// generated lines around them), and what marks a line the module may rewrite.
struct File {
    rel: &'static str,
    own: &'static [&'static [u8]],
    /// Lines that contain one of these are the module's (none: every line is); every other
    /// line must keep its bytes.
    mark: &'static [&'static [u8]],
    /// What a generated line starts with (one picked per line), so that it is a comment, an
    /// unrelated assignment or raw bytes in the file's syntax.
    starts: &'static [&'static [u8]],
}

struct Case {
    module: &'static str,
    fixture: fn() -> tempfile::TempDir,
    args: Value,
    files: &'static [File],
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn owned(line: &[u8], mark: &[&[u8]]) -> bool {
    mark.is_empty() || mark.iter().any(|m| contains(line, m))
}

/// Writes a generated version of `f` into `root`; returns its bytes.
fn generate(g: &mut Gen, root: &Path, f: &File) -> Vec<u8> {
    let mut out = Vec::new();
    let mut own = f.own.iter();
    let count = f.own.len() + 2 + g.below(8) as usize;
    let mut left = f.own.len();
    for i in 0..count {
        // The module's lines spread among the generated ones, in order.
        let slots = count - i;
        if left > 0 && (g.below(slots as u64) < left as u64 || slots == left) {
            out.extend_from_slice(own.next().unwrap());
            left -= 1;
        } else {
            let mut line = f.starts[g.below(f.starts.len() as u64) as usize].to_vec();
            line.extend(g.junk());
            if !f.mark.is_empty() && owned(&line, f.mark) {
                continue;
            }
            out.extend_from_slice(&line);
        }
        out.push(b'\n');
    }
    // Sometimes no newline at the end (on a generated last line only: an own line that
    // lacks it would be the module's to end).
    if g.below(3) == 0 && !f.own.iter().any(|l| out.ends_with(&[l, &b"\n"[..]].concat())) {
        out.pop();
    }
    let p = root.join(f.rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, &out).unwrap();
    out
}

/// The bodies of the lines the module does not own.
fn others<'a>(bytes: &'a [u8], mark: &[&[u8]]) -> Vec<&'a [u8]> {
    lines(bytes).map(|l| l.strip_suffix(b"\n").unwrap_or(l)).filter(|l| !owned(l, mark)).collect()
}

/// The bytes a diff side stands for: as is, or unescaped when its header says it is escaped.
fn diff_bytes(header: &str, side: &str) -> Vec<u8> {
    if header.ends_with(ESCAPED_NOTE) {
        unescape(side).unwrap_or_else(|| panic!("not a valid escaped text: {side:?}"))
    } else {
        side.as_bytes().to_vec()
    }
}

fn run_case(case: &Case, seeds: std::ops::Range<u64>) {
    let m = case.module;
    for seed in seeds {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15 ^ (seed + 1).wrapping_mul(0xd1b5_4a32_d192_ed03));
        let dir = (case.fixture)();
        let root = dir.path();
        let before: Vec<Vec<u8>> = case.files.iter().map(|f| generate(&mut g, root, f)).collect();
        let start = tree_snapshot(root);
        let mut args = case.args.clone();
        args["root"] = json!(root);
        args["_ansible_diff"] = json!(true);
        let mut check = args.clone();
        check["_ansible_check_mode"] = json!(true);
        let (c, code) = run_module(m, &check);
        assert_eq!((code, &c["changed"]), (0, &json!(true)), "{m} seed {seed}: check mode: {c}");
        assert_same_tree(&start, &tree_snapshot(root), &format!("{m} seed {seed}: check mode wrote"));
        args["backup_id"] = json!("b");
        let (v, code) = run_module(m, &args);
        assert_eq!((code, &v["changed"]), (0, &json!(true)), "{m} seed {seed}: {v}");
        assert_eq!(v["diff"], c["diff"], "{m} seed {seed}: check mode's diff differs");
        let out = v.to_string();
        assert!(!out.contains('\u{fffd}'), "{m} seed {seed}: a replacement character in the result: {out}");
        for (f, old) in case.files.iter().zip(&before) {
            let path = format!("/{}", f.rel);
            let new = fs::read(root.join(f.rel)).unwrap();
            let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            assert_eq!(
                others(old, f.mark),
                others(&new, f.mark),
                "{m} seed {seed}: {path}: a line it does not own changed:\n{}\n---\n{}",
                shown(old),
                shown(&new)
            );
            assert_ne!(&new, old, "{m} seed {seed}: {path} unchanged");
            let d = v["diff"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["after_header"].as_str().unwrap().starts_with(&path))
                .unwrap_or_else(|| panic!("{m} seed {seed}: no diff of {path}: {v}"));
            let (bh, ah) = (d["before_header"].as_str().unwrap(), d["after_header"].as_str().unwrap());
            assert_eq!(diff_bytes(bh, d["before"].as_str().unwrap()), *old, "{m} seed {seed}: {path}: diff before");
            assert_eq!(diff_bytes(ah, d["after"].as_str().unwrap()), new, "{m} seed {seed}: {path}: diff after");
            // Escaped exactly when the bytes need it: a plain file's diff stays plain.
            let plain = |b: &[u8]| {
                std::str::from_utf8(b)
                    .is_ok_and(|s| !s.chars().any(|c| (c.is_control() && c != '\t' && c != '\n') || c == '\u{202e}'))
            };
            assert_eq!(ah.ends_with(ESCAPED_NOTE), !(plain(old) && plain(&new)), "{m} seed {seed}: {ah}");
        }
        let mut again = args.clone();
        again["backup_id"] = json!("b2");
        let (a, _) = run_module(m, &again);
        assert_eq!(a["changed"], false, "{m} seed {seed}: rerun changed: {a}");
        let (r, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "b", "_ansible_diff": true}));
        assert_eq!(code, 0, "{m} seed {seed}: rollback: {r}");
        assert!(!r.to_string().contains('\u{fffd}'), "{m} seed {seed}: rollback result: {r}");
        assert_same_tree(&start, &tree_snapshot(root), &format!("{m} seed {seed}: after rollback"));
    }
}

const SEEDS: std::ops::Range<u64> = 0..12;

#[test]
fn sysctl_edits_are_byte_exact() {
    run_case(
        &Case {
            module: "lltune_sysctl",
            fixture: || boot_fixture("rhel9-bls"),
            args: json!({"settings": {"net.core.busy_poll": 50, "vm.swappiness": 10}, "runtime": false}),
            files: &[File {
                rel: "etc/sysctl.d/99-latency-tuner.conf",
                own: &[b"net.core.busy_poll = 0", b"vm.swappiness=60\r"],
                mark: &[b"busy_poll", b"swappiness"],
                starts: &[b"# ", b"; ", b"kernel.junk = ", b"-fs.junk=", b""],
            }],
        },
        SEEDS,
    );
}

#[test]
fn limits_edits_are_byte_exact() {
    run_case(
        &Case {
            module: "lltune_limits",
            fixture: || host_fixture("el9-trading"),
            args: json!({"limits": [
                {"domain": "@trading", "type": "-", "item": "memlock", "value": "unlimited"},
                {"domain": "@trading", "type": "-", "item": "rtprio", "value": 99},
            ]}),
            files: &[File {
                rel: "etc/security/limits.d/99-lltune.conf",
                own: &[b"@trading - memlock 64", b"@trading\t-\trtprio\t50\r"],
                mark: &[b"@trading"],
                starts: &[b"# ", b"@other soft core ", b"bob hard nofile 1", b""],
            }],
        },
        SEEDS,
    );
}

#[test]
fn fstab_swap_edit_is_byte_exact() {
    run_case(
        &Case {
            module: "lltune_memory",
            fixture: || host_fixture("intel-pstate-2node"),
            args: json!({"swap": false}),
            files: &[File {
                rel: "etc/fstab",
                // The issue's mount point: `/d\xe9j\xe0` must stay exactly that.
                own: &[b"/dev/sdb1 /d\xe9j\xe0 xfs defaults 0 0", b"/dev/mapper/rhel-swap none swap defaults 0 0"],
                mark: &[b" swap "],
                starts: &[b"# ", b"UUID=1 /srv/", b"/dev/sdc1 /mnt/", b""],
            }],
        },
        SEEDS,
    );
}

#[test]
fn kernel_args_edits_are_byte_exact_on_bls_and_grub() {
    // BLS: /etc/default/grub and every entry edited.
    run_case(
        &Case {
            module: "lltune_kernel_args",
            fixture: || boot_fixture("rhel9-bls"),
            args: json!({"args": {"nohz_full": "2-5", "skew_tick": "1"}}),
            files: &[
                File {
                    rel: "etc/default/grub",
                    own: &[b"GRUB_TIMEOUT=5", b"GRUB_CMDLINE_LINUX=\"rhgb quiet\"", b"GRUB_ENABLE_BLSCFG=true"],
                    mark: &[b"GRUB_CMDLINE_LINUX"],
                    starts: &[b"# ", b"GRUB_JUNK=\"", b"GRUB_TERMINAL=", b""],
                },
                File {
                    rel: "boot/loader/entries/8f3b1c2d4e5f60718293a4b5c6d7e8f9-5.14.0-427.13.1.el9_4.x86_64.conf",
                    own: &[
                        b"title Rocky Linux",
                        b"version 5.14.0-427.13.1.el9_4.x86_64",
                        b"linux /vmlinuz-5.14.0-427.13.1.el9_4.x86_64",
                        b"options root=/dev/mapper/rl-root ro rhgb quiet $tuned_params",
                    ],
                    mark: &[b"options"],
                    starts: &[b"# ", b"grub_class ", b"grub_arg ", b""],
                },
            ],
        },
        SEEDS,
    );
    // Classic GRUB2 (Debian): GRUB_CMDLINE_LINUX_DEFAULT.
    run_case(
        &Case {
            module: "lltune_kernel_args",
            fixture: || boot_fixture("debian12"),
            args: json!({"args": {"nohz_full": "2-5"}}),
            files: &[File {
                rel: "etc/default/grub",
                own: &[b"GRUB_DEFAULT=0", b"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\r", b"GRUB_CMDLINE_LINUX=\"\""],
                mark: &[b"GRUB_CMDLINE_LINUX"],
                starts: &[b"# ", b"GRUB_JUNK='", b"export GRUB_X=", b""],
            }],
        },
        0..6,
    );
}

#[test]
fn irqbalance_edit_is_byte_exact() {
    run_case(
        &Case {
            module: "lltune_irq",
            fixture: || host_fixture("irq-small"),
            args: json!({"irqbalance_banned_cpus": "4-7"}),
            files: &[File {
                rel: "etc/sysconfig/irqbalance",
                own: &[b"IRQBALANCE_ARGS=\"--policyscript=/x\"", b"IRQBALANCE_BANNED_CPULIST=1"],
                mark: &[b"BANNED_CPULIST"],
                starts: &[b"# ", b"IRQBALANCE_ONESHOT=", b"export OTHER=", b""],
            }],
        },
        SEEDS,
    );
}

#[test]
fn a_replaced_drop_in_is_shown_escaped_and_restored_exactly() {
    // lltune_cpu owns its drop-in whole: no line of it is kept, but the diff shows the old
    // bytes exactly and rollback puts them back.
    run_case(
        &Case {
            module: "lltune_cpu",
            fixture: || host_fixture("intel-pstate-2node"),
            args: json!({"systemd_cpu_affinity": "0,4"}),
            files: &[File {
                rel: "etc/systemd/system.conf.d/50-lltune.conf",
                own: &[b"[Manager]", b"CPUAffinity=0-3"],
                // Every line is the module's.
                mark: &[],
                starts: &[b"# ", b""],
            }],
        },
        0..6,
    );
}

/// The diff of a file that is not UTF-8: escaped with the documented scheme, both headers
/// saying so, and a backslash in the file doubled so that it cannot pass for an escape.
#[test]
fn a_diff_shows_bytes_escaped_never_replaced() {
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    let fstab = b"# caf\xe9 \\xe9 is text\r\n/dev/sdb1 /d\xe9j\xe0 xfs defaults 0 0\n/dev/mapper/rhel-swap none swap defaults 0 0";
    fs::write(root.join("etc/fstab"), fstab).unwrap();
    let (v, code) = run_module("lltune_memory", &json!({"root": root, "swap": false, "_ansible_diff": true}));
    assert_eq!(code, 0, "{v}");
    let d = &v["diff"][0];
    assert_eq!(d["before_header"], format!("/etc/fstab{ESCAPED_NOTE}"));
    assert_eq!(d["after_header"], format!("/etc/fstab{ESCAPED_NOTE}"));
    assert_eq!(
        d["before"],
        "# caf\\xe9 \\\\xe9 is text\\x0d\n/dev/sdb1 /d\\xe9j\\xe0 xfs defaults 0 0\n/dev/mapper/rhel-swap none swap defaults 0 0"
    );
    assert_eq!(
        d["after"],
        "# caf\\xe9 \\\\xe9 is text\\x0d\n/dev/sdb1 /d\\xe9j\\xe0 xfs defaults 0 0\n# lltune: /dev/mapper/rhel-swap none swap defaults 0 0"
    );
    assert_eq!(
        fs::read(root.join("etc/fstab")).unwrap(),
        b"# caf\xe9 \\xe9 is text\r\n/dev/sdb1 /d\xe9j\xe0 xfs defaults 0 0\n# lltune: /dev/mapper/rhel-swap none swap defaults 0 0"
    );
    // A plain UTF-8 file's diff is the text as it is, backslashes included.
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    fs::write(root.join("etc/fstab"), "/d\\040x /é xfs defaults 0 0\n/dev/sda2 none swap sw 0 0\n").unwrap();
    let (v, _) = run_module("lltune_memory", &json!({"root": root, "swap": false, "_ansible_diff": true}));
    assert_eq!(v["diff"][0]["before_header"], "/etc/fstab");
    assert_eq!(v["diff"][0]["before"], "/d\\040x /é xfs defaults 0 0\n/dev/sda2 none swap sw 0 0\n");
}

/// A line lltune must edit inside (a command line) that is not UTF-8 is refused, naming the
/// file and line; nothing is written.
#[test]
fn a_command_line_that_is_not_utf8_is_refused_by_name() {
    let dir = boot_fixture("debian12");
    let root = dir.path();
    fs::write(root.join("etc/default/grub"), b"GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet x=\xe9\"\n").unwrap();
    let start = tree_snapshot(root);
    let (v, code) = run_module("lltune_kernel_args", &json!({"root": root, "args": {"nohz_full": "2-5"}}));
    assert_eq!(code, 1, "{v}");
    assert_eq!(
        v["msg"],
        "/etc/default/grub: line 2 is not UTF-8 text (GRUB_CMDLINE_LINUX_DEFAULT=\"quiet x=\\xe9\"); lltune edits inside UTF-8 lines only: nothing changed"
    );
    assert_same_tree(&start, &tree_snapshot(root), "a refused edit wrote");
}

/// The journal keeps what is not a file byte for byte too: a kernel value and a link
/// target that are not UTF-8 are recorded (`escaped: true`, in `engine::text::view` form) and
/// restored exactly by rollback.
#[test]
fn kernel_values_and_link_targets_are_journaled_as_bytes() {
    use std::os::unix::ffi::OsStrExt;
    // A kernel value (a captured tree's plain file) that is not UTF-8.
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    fs::write(root.join("proc/sys/kernel/domainname"), b"d\xe9\\x\n").unwrap();
    let start = tree_snapshot(root);
    let (v, code) = run_module(
        "lltune_sysctl",
        &json!({"root": root, "settings": {"kernel.domainname": "lab"}, "write_file": false, "backup_id": "k"}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changes"][0]["runtime"]["before"], "d\\xe9\\\\x", "{v}");
    let journal: Value =
        serde_json::from_slice(&fs::read(root.join("var/lib/lltune/backups/k/journal.json")).unwrap()).unwrap();
    let e = &journal["entries"][0];
    assert_eq!((&e["kind"], &e["previous"], &e["escaped"]), (&json!("runtime"), &json!("d\\xe9\\\\x\n"), &json!(true)));
    let (r, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "k", "_ansible_diff": true}));
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["diff"][0]["after"], "d\\xe9\\\\x\n", "{r}");
    assert_same_tree(&start, &tree_snapshot(root), "kernel value after rollback");

    // A unit link whose target is not UTF-8: disabling removes it, rollback puts it back.
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    let link = root.join("etc/systemd/system/multi-user.target.wants/tuned.service");
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(b"/usr/lib/systemd/system/tuned.service\xff"), &link)
        .unwrap();
    let start = tree_snapshot(root);
    let (v, code) = run_module(
        "lltune_services",
        &json!({"root": root, "services": {"tuned": {"enabled": false}}, "backup_id": "l"}),
    );
    assert_eq!(code, 0, "{v}");
    assert!(!v.to_string().contains('\u{fffd}'), "{v}");
    assert!(fs::symlink_metadata(&link).is_err(), "the link was not removed: {v}");
    let journal: Value =
        serde_json::from_slice(&fs::read(root.join("var/lib/lltune/backups/l/journal.json")).unwrap()).unwrap();
    let e = journal["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "link").unwrap().clone();
    assert_eq!((&e["previous"], &e["escaped"]), (&json!("/usr/lib/systemd/system/tuned.service\\xff"), &json!(true)));
    let (r, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "l"}));
    assert_eq!(code, 0, "{r}");
    assert_eq!(fs::read_link(&link).unwrap().as_os_str().as_bytes(), b"/usr/lib/systemd/system/tuned.service\xff");
    assert_same_tree(&start, &tree_snapshot(root), "link after rollback");

    // An escaped entry that is not a view form is refused with the bundle.
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let (v, code) = run_module(
        "lltune_sysctl",
        &json!({"root": root, "settings": {"vm.swappiness": "5"}, "write_file": false, "backup_id": "e"}),
    );
    assert_eq!(code, 0, "{v}");
    let path = root.join("var/lib/lltune/backups/e/journal.json");
    let mut j: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    j["entries"][0]["escaped"] = json!(true);
    j["entries"][0]["previous"] = json!("\\q");
    fs::write(&path, serde_json::to_vec(&j).unwrap()).unwrap();
    let (r, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "e"}));
    assert_eq!(code, 1, "{r}");
    assert!(r["msg"].as_str().unwrap().contains("not an escaped text"), "{r}");
}

/// A config file whose name is not UTF-8 is read by systemd-sysctl, pam_limits and systemd,
/// but lltune (whose paths are text) cannot name it: the result says so instead of checking
/// the others as if it were not there.
#[test]
fn a_config_file_named_with_bytes_that_are_not_utf8_is_named_in_a_warning() {
    use std::os::unix::ffi::OsStrExt;
    let name = |b: &[u8]| std::ffi::OsStr::from_bytes(b).to_owned();
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    fs::write(root.join("etc/sysctl.d").join(name(b"99-z\xe9.conf")), "net.core.busy_poll = 1\n").unwrap();
    fs::write(root.join("etc/sysctl.d").join(name(b"98-\xff.txt")), "vm.swappiness = 1\n").unwrap();
    let (v, code) = run_module(
        "lltune_sysctl",
        &json!({"root": root, "settings": {"net.core.busy_poll": 50}, "_ansible_check_mode": true}),
    );
    assert_eq!(code, 0, "{v}");
    let w = v["warnings"].to_string();
    assert!(
        w.contains("/etc/sysctl.d/99-z\\\\xe9.conf: systemd-sysctl reads this file, but its name is not UTF-8"),
        "{w}"
    );
    assert!(!w.contains("98-"), "only *.conf files are read: {w}");
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    fs::write(root.join("etc/security/limits.d").join(name(b"zz-\xe9.conf")), "@trading - memlock 1\n").unwrap();
    let (v, code) = run_module(
        "lltune_limits",
        &json!({"root": root, "limits": [{"domain": "@trading", "type": "-", "item": "memlock", "value": "unlimited"}],
                "_ansible_check_mode": true}),
    );
    assert_eq!(code, 0, "{v}");
    assert!(v["warnings"].to_string().contains("limits.d/zz-\\\\xe9.conf: pam_limits reads this file"), "{v}");
}
