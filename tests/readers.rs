//! The typed readers of `src/facts/` that discovery and the modules share, each against the
//! real dumps under tests/fixtures/real and against generated input: one parser per kernel
//! file or format, and the rule it follows proven over generated cases, not a list.

use std::fs;
use std::path::Path;

use lltune::facts::sysctl::parse_key;
use proptest::prelude::*;

use crate::support::{real_fixture, real_fixture_names};

// ---------------------------------------------------------------------------------------------
// Sysctl names (`facts::sysctl::parse_key`), against procps' sysctl(8).

/// procps sysctl.c `slashdot(p, old, new)`: the first of `/` and `.` decides; when it is
/// already `new`, the name is left alone, otherwise every `old` becomes `new` and every `new`
/// becomes `old`. sysctl(8) calls it with ('.', '/') to make the path under /proc/sys, and
/// with ('/', '.') to show a path as a name. systemd-sysctl's `sysctl_normalize` follows the
/// same first-separator rule.
fn slashdot(p: &str, old: char, new: char) -> String {
    match p.chars().find(|c| *c == '/' || *c == '.') {
        None => p.to_string(),
        Some(c) if c == new => p.to_string(),
        Some(_) => p
            .chars()
            .map(|c| {
                if c == old {
                    new
                } else if c == new {
                    old
                } else {
                    c
                }
            })
            .collect(),
    }
}

/// What lltune accepts beyond sysctl(8)'s mapping: characters that cannot break a sysctl.d
/// line or a message, and a path that stays below /proc/sys (no empty, `.` or `..` part).
fn acceptable(raw: &str) -> bool {
    let chars_ok =
        !raw.is_empty() && raw.len() <= 512 && raw.chars().all(|c| c.is_ascii_alphanumeric() || "_-./@+:".contains(c));
    chars_ok && slashdot(raw, '.', '/').split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Names over the alphabet sysctl names use, separators frequent, dots doubled now and then.
fn name_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "net",
            "ipv4",
            "conf",
            "eth0",
            "100",
            "rp_filter",
            "file-max",
            "a",
            "@",
            "+",
            ":",
            ".",
            ".",
            "/",
            "/",
            "..",
        ]),
        1..10,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    /// Every name maps to the path and the name sysctl(8) gives it, or is refused exactly
    /// when it is not acceptable.
    #[test]
    fn sysctl_names_follow_sysctl8(raw in name_like()) {
        match parse_key(&raw) {
            Ok(k) => {
                prop_assert!(acceptable(&raw), "{raw:?} accepted");
                let rel = slashdot(&raw, '.', '/');
                prop_assert_eq!(&k.path, &format!("/proc/sys/{rel}"));
                prop_assert_eq!(&k.name, &slashdot(&rel, '/', '.'));
                prop_assert!(!k.ignore_errors);
                // Both spellings are one key.
                let again = parse_key(&k.name).unwrap();
                prop_assert_eq!(&again, &k);
                let from_path = parse_key(&rel).unwrap();
                prop_assert_eq!(&from_path, &k);
            }
            Err(e) => {
                prop_assert!(!acceptable(&raw), "{raw:?} refused: {e}");
                prop_assert!(e.contains("is not a sysctl name"), "{e}");
            }
        }
    }

    /// Any character outside the sysctl alphabet (space, `=`, newline, NUL, `;`, non-ASCII)
    /// is refused wherever it stands: it could change a sysctl.d line's meaning.
    #[test]
    fn sysctl_names_with_foreign_characters_are_refused(
        head in name_like(),
        bad in prop::sample::select(vec![' ', '=', '\n', '\0', ';', '#', '*', '\t', '"', '\\', 'é', '\u{a0}']),
        tail in name_like(),
    ) {
        let raw = format!("{head}{bad}{tail}");
        prop_assert!(parse_key(&raw).is_err(), "{raw:?}");
    }
}

/// Every file under /proc/sys of every real dump and fixture tree: its path, read back as sysctl(8) shows it
/// (`net.ipv4.conf.eth0/100.rp_filter` for a VLAN folder), maps to the same path again.
#[test]
fn sysctl_names_of_every_real_proc_sys_file_map_back_to_it() {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let r = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let t = e.file_type().unwrap();
            if t.is_dir() {
                walk(&e.path(), &r, out);
            } else if t.is_file() {
                out.push(r);
            }
        }
    }
    let mut seen = 0;
    let hosts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts");
    let mut roots: Vec<(String, std::path::PathBuf)> =
        real_fixture_names().into_iter().map(|f| (f.clone(), real_fixture(&f))).collect();
    for e in fs::read_dir(&hosts).unwrap() {
        let e = e.unwrap();
        roots.push((e.file_name().into_string().unwrap(), e.path()));
    }
    for (f, root) in roots {
        let dir = root.join("proc/sys");
        if !dir.is_dir() {
            continue;
        }
        let mut files = Vec::new();
        walk(&dir, "", &mut files);
        for rel in files {
            let k = parse_key(&rel).unwrap_or_else(|e| panic!("{f}: {rel}: {e}"));
            assert_eq!(k.path, format!("/proc/sys/{rel}"), "{f}");
            assert_eq!(parse_key(&k.name).unwrap().path, k.path, "{f}: {}", k.name);
            assert_eq!(k.name, slashdot(&rel, '/', '.'), "{f}");
            seen += 1;
        }
    }
    assert!(seen > 50, "only {seen} /proc/sys files in the real dumps");
}

// ---------------------------------------------------------------------------------------------
// IRQ CPU sets (`facts::irq::read_irq_cpus`) and debugfs flags (`read_debugfs_flags`): the one
// reader of `/proc/irq/<n>/` and `/sys/kernel/debug/irq/irqs/<n>` for discovery and lltune_irq.

use lltune::cpulist::CpuList;
use lltune::facts::irq::{IrqCpus, read_debugfs_flags, read_irq_cpus};
use lltune::facts::{ScanOptions, collect};
use lltune::host::Host;

/// The kernel's `%*pbl` (lib/vsprintf.c `bitmap_list_string`): ascending, runs as `a-b`,
/// joined by commas, written here from the format, not with `CpuList`'s printer.
fn kernel_list(cpus: &std::collections::BTreeSet<u32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let v: Vec<u32> = cpus.iter().copied().collect();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j { v[i].to_string() } else { format!("{}-{}", v[i], v[j]) });
        i = j + 1;
    }
    out.join(",")
}

/// The kernel's `%*pb` (lib/vsprintf.c `bitmap_string`) for `nr` bits: 32-bit words from the
/// top, comma-separated, each 8 hex digits but the first, which has as many as its bits need.
fn kernel_mask(cpus: &std::collections::BTreeSet<u32>, nr: u32) -> String {
    let words = nr.div_ceil(32);
    let mut out = Vec::new();
    for w in (0..words).rev() {
        let mut word = 0u32;
        for b in 0..32 {
            if cpus.contains(&(w * 32 + b)) {
                word |= 1 << b;
            }
        }
        let digits = if w == words - 1 && nr % 32 != 0 { (nr % 32).div_ceil(4) as usize } else { 8 };
        out.push(format!("{word:0digits$x}"));
    }
    out.join(",")
}

fn tree_with(files: &[(String, String)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (p, text) in files {
        let p = d.path().join(p.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Whatever set of CPUs the kernel prints, as a list or (only the mask twin there) as a
    /// mask of any width that holds it, with its newline or a NUL, reads back as that set.
    #[test]
    fn irq_cpu_files_read_back_what_the_kernel_printed(
        cpus in prop::collection::btree_set(0u32..320, 0..40),
        extra_width in 0u32..70,
        tail in prop::sample::select(vec!["\n", "", "\n\0", " \n"]),
    ) {
        let nr = cpus.iter().next_back().map_or(1, |l| l + 1) + extra_width;
        let want = CpuList::from_cpus(cpus.iter().copied());
        let list = tree_with(&[("proc/irq/7/smp_affinity_list".into(), format!("{}{tail}", kernel_list(&cpus)))]);
        let host = Host::new(list.path()).unwrap();
        let f = read_irq_cpus(&host, 7, IrqCpus::Affinity, true).unwrap().unwrap();
        prop_assert_eq!(f.path, "/proc/irq/7/smp_affinity_list");
        prop_assert_eq!(f.cpus.as_ref(), Ok(&want));
        prop_assert_eq!(read_irq_cpus(&host, 7, IrqCpus::Effective, true).unwrap(), None);

        let mask = tree_with(&[("proc/irq/7/effective_affinity".into(), format!("{}{tail}", kernel_mask(&cpus, nr)))]);
        let host = Host::new(mask.path()).unwrap();
        prop_assert_eq!(read_irq_cpus(&host, 7, IrqCpus::Effective, false).unwrap(), None, "no twin asked for");
        let f = read_irq_cpus(&host, 7, IrqCpus::Effective, true).unwrap().unwrap();
        prop_assert_eq!(f.path, "/proc/irq/7/effective_affinity");
        prop_assert_eq!(f.cpus.as_ref(), Ok(&want));
    }
}

/// A file that is not a CPU set is an error naming nothing but its text; the path is the file
/// read. A FIFO where the file should be is refused, never read (nothing blocks).
#[test]
fn irq_cpu_files_that_are_not_cpu_sets() {
    let d = tree_with(&[
        ("proc/irq/3/smp_affinity_list".into(), "0-3,zz\n".into()),
        ("proc/irq/4/smp_affinity".into(), "not a mask\n".into()),
    ]);
    let host = Host::new(d.path()).unwrap();
    let f = read_irq_cpus(&host, 3, IrqCpus::Affinity, true).unwrap().unwrap();
    assert_eq!(f.path, "/proc/irq/3/smp_affinity_list");
    assert!(f.cpus.is_err(), "{f:?}");
    let f = read_irq_cpus(&host, 4, IrqCpus::Affinity, true).unwrap().unwrap();
    assert_eq!(f.path, "/proc/irq/4/smp_affinity");
    assert!(f.cpus.is_err(), "{f:?}");
    fs::create_dir_all(d.path().join("proc/irq/5")).unwrap();
    nix::unistd::mkfifo(&d.path().join("proc/irq/5/smp_affinity_list"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(read_irq_cpus(&host, 5, IrqCpus::Affinity, true).is_err(), "a FIFO is refused");
}

/// On every real dump with `/proc/irq`: each IRQ's affinity and effective affinity as the
/// reader gives them are the kernel's list text exactly (printed back in `%*pbl`), and the
/// facts (`irqs.list`, detail) and lltune_irq's table report the same sets for every IRQ.
#[test]
fn irq_affinities_of_the_real_dumps_agree_between_facts_and_lltune_irq() {
    let mut checked = 0;
    for f in real_fixture_names() {
        let root = real_fixture(&f);
        if !root.join("proc/irq").is_dir() {
            continue;
        }
        let host = Host::new(&root).unwrap();
        let (facts, _) = collect(&host, ScanOptions { detail: true });
        let table = lltune::modules::irq::read_table(&host).unwrap();
        let list = &facts.irqs.list.as_ref().expect("detail lists IRQs").irqs;
        for irq in list {
            let n = irq.irq;
            for (which, file, from_facts) in [
                (IrqCpus::Affinity, "smp_affinity_list", &irq.affinity),
                (IrqCpus::Effective, "effective_affinity_list", &irq.effective_affinity),
            ] {
                let path = root.join(format!("proc/irq/{n}/{file}"));
                let Ok(text) = fs::read_to_string(&path) else { continue };
                let read = read_irq_cpus(&host, n, which, true).unwrap().unwrap();
                let cpus = read.cpus.unwrap_or_else(|e| panic!("{f}: {}: {e}", read.path));
                let set: std::collections::BTreeSet<u32> = cpus.iter().collect();
                assert_eq!(kernel_list(&set), text.trim_end(), "{f}: {}", read.path);
                assert_eq!(from_facts.as_ref(), Some(&cpus), "{f}: irq {n}: facts' {file}");
                checked += 1;
            }
            let i = table.index[&n];
            assert_eq!(table.irqs[i].affinity, irq.affinity, "{f}: irq {n}: lltune_irq's affinity");
            assert_eq!(table.irqs[i].effective, irq.effective_affinity, "{f}: irq {n}: lltune_irq's effective");
        }
        assert_eq!(table.irqs.len(), list.len(), "{f}: the same IRQs");
    }
    assert!(checked > 1000, "only {checked} IRQ files checked in the real dumps");
}

/// The debugfs state files of the irq-small tree: discovery's `managed` and lltune_irq's flags
/// are the one reader's answer for every IRQ.
#[test]
fn debugfs_flags_are_one_answer_for_facts_and_lltune_irq() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/irq-small");
    let host = Host::new(&root).unwrap();
    let (facts, _) = collect(&host, ScanOptions { detail: true });
    let table = lltune::modules::irq::read_table(&host).unwrap();
    assert!(table.debugfs);
    let mut managed = 0;
    for irq in &facts.irqs.list.as_ref().unwrap().irqs {
        let flags = read_debugfs_flags(&host, irq.irq);
        assert_eq!(irq.managed, flags.map(|f| f.managed), "irq {}", irq.irq);
        assert_eq!(table.irqs[table.index[&irq.irq]].flags, flags, "irq {}", irq.irq);
        managed += usize::from(flags.is_some_and(|f| f.managed));
    }
    assert!(managed > 0, "the tree has managed IRQs");
}

// ---------------------------------------------------------------------------------------------
// Captured ethtool state (`facts::nic::read_capture`): one reader, one rule for what is
// malformed, for discovery and lltune_nic.

use lltune::facts::nic::{CaptureError, read_capture};
use serde_json::json;

use crate::support::{host_fixture, run_module};

/// Every capture of the fixture trees: the state discovery reports for the interface is the
/// reader's, field for field.
#[test]
fn every_fixture_capture_reads_as_the_facts_report_it() {
    let mut seen = 0;
    for tree in ["nic-2port", "seed-golden", "debian12-vm"] {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts").join(tree);
        let host = Host::new(&root).unwrap();
        let (facts, _) = collect(&host, ScanOptions::default());
        for e in fs::read_dir(root.join("var/lib/lltune/capture/ethtool")).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            let ifname = name.strip_suffix(".json").unwrap();
            let c = read_capture(&host, ifname).unwrap().unwrap();
            let nic = facts
                .nics
                .iter()
                .find(|n| n.name.as_deref() == Some(ifname))
                .unwrap_or_else(|| panic!("{tree}: {ifname}"));
            assert_eq!(nic.rings, c.state.rings, "{tree}: {ifname}");
            assert_eq!(nic.channels, c.state.channels, "{tree}: {ifname}");
            assert_eq!(nic.pause, c.state.pause, "{tree}: {ifname}");
            assert_eq!(nic.coalesce, c.state.coalesce, "{tree}: {ifname}");
            assert_eq!(nic.features, c.state.features, "{tree}: {ifname}");
            seen += 1;
        }
        assert_eq!(read_capture(&host, "no-such-if0").unwrap().map(|c| c.path), None);
    }
    assert!(seen >= 4, "{seen}");
}

/// What lltune_nic compares against is the state discovery reports: a flag the capture writes
/// as a number (`"rx_pause": 1`, which the reader takes as on, as serde did) is on for the
/// module too, so asking for it on changes nothing and rewrites nothing. Before one reader,
/// the module read it as off and reported a change.
#[test]
fn lltune_nic_sees_the_capture_as_discovery_does() {
    let dir = host_fixture("nic-2port");
    let root = dir.path();
    let capture = root.join("var/lib/lltune/capture/ethtool/ens1f0.json");
    let text = fs::read_to_string(&capture).unwrap();
    let numeric = text.replacen("\"rx_pause\": true", "\"rx_pause\": 1", 1);
    assert_ne!(numeric, text);
    fs::write(&capture, &numeric).unwrap();
    let host = Host::new(root).unwrap();
    assert!(read_capture(&host, "ens1f0").unwrap().unwrap().state.pause.unwrap().rx_pause != 0);
    let (v, code) = run_module(
        "lltune_nic",
        &json!({"root": root, "interfaces": [{"name": "ens1f0", "pause": {"rx": true}, "rings": {"rx": 1024}}]}),
    );
    assert_eq!((code, v["changed"].as_bool()), (0, Some(false)), "{v}");
    assert_eq!(fs::read_to_string(&capture).unwrap(), numeric, "nothing rewritten");

    // A malformed capture is refused by both with the same reason, naming the file and key.
    fs::write(&capture, numeric.replacen("\"rx_pause\": 1", "\"rx_pause\": \"on\"", 1)).unwrap();
    let Err(CaptureError::Malformed { path, reason }) = read_capture(&host, "ens1f0") else { panic!("not refused") };
    assert_eq!(path, "/var/lib/lltune/capture/ethtool/ens1f0.json");
    assert!(reason.contains("pause.rx_pause"), "{reason}");
    let (v, code) =
        run_module("lltune_nic", &json!({"root": root, "interfaces": [{"name": "ens1f0", "pause": {"rx": true}}]}));
    assert_eq!(code, 1, "{v}");
    assert!(
        v["msg"].as_str().unwrap().contains(&format!("ens1f0: {path}: not a capture of ethtool state: {reason}")),
        "{v}"
    );
    let (f, _) = collect(&host, ScanOptions::default());
    assert_eq!(f.nics.iter().find(|n| n.name.as_deref() == Some("ens1f0")).unwrap().pause, None);
}
