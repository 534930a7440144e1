//! Every real dump in tests/fixtures/real gives exactly the facts its peer tool (lscpu,
//! hwloc, cAdvisor, must-gather) reported: MANIFEST.json "expected". An expectation key this
//! file does not know fails the test, so a new expectation can't pass unchecked.

use std::collections::BTreeMap;

use lltune::cpulist::CpuList;
use lltune::facts::{self, ScanOptions};
use lltune::host::Host;
use serde_json::Value;

use crate::support;

fn scan(name: &str) -> (Value, Vec<String>) {
    let root = support::real_fixture(name);
    let host = Host::new(&root).expect("fixture root");
    let (facts, warnings) = facts::collect(&host, ScanOptions { detail: true });
    (serde_json::to_value(&facts).unwrap(), warnings)
}

fn nic<'a>(f: &'a Value, name: &str) -> &'a Value {
    f["nics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no NIC {name} in {}", f["nics"]))
}

fn numa_node<'a>(f: &'a Value, id: &str) -> &'a Value {
    let id: u64 = id.parse().expect("MANIFEST node ids are numbers");
    f["numa"]["nodes"].as_array().unwrap().iter().find(|n| n["id"].as_u64() == Some(id)).expect("node in facts")
}

fn list(v: &Value) -> String {
    CpuList::parse(v.as_str().unwrap_or_else(|| panic!("not a cpulist: {v}"))).unwrap().to_string()
}

/// Checks one fixture's expectations and its warnings.
fn check(name: &str, expected: &Value) {
    let (f, warnings) = scan(name);
    let cpu = &f["cpu"];
    for (key, want) in expected.as_object().unwrap() {
        let ctx = format!("{name}: {key}");
        match key.as_str() {
            "sockets" | "cores_per_socket" | "threads_per_core" => assert_eq!(&cpu[key], want, "{ctx}"),
            "online" => assert_eq!(cpu["online"], *want, "{ctx}"),
            "cpus" => assert_eq!(cpu["count"], *want, "{ctx}"),
            "isolated" | "nohz_full" => assert_eq!(cpu[key], *want, "{ctx}"),
            "governors" => assert_eq!(cpu["governors"], *want, "{ctx}"),
            "scaling_driver" => assert_eq!(cpu["scaling_driver"], *want, "{ctx}"),
            "idle_states" => {
                let names: Vec<Value> =
                    cpu["cpuidle"]["states"].as_array().unwrap().iter().map(|s| s["name"].clone()).collect();
                assert_eq!(Value::Array(names), *want, "{ctx}");
            }
            "thread_siblings_of_0" => {
                let sib = cpu["thread_siblings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| CpuList::parse(s.as_str().unwrap()).unwrap().contains(0));
                assert_eq!(sib, Some(want), "{ctx}");
            }
            "numa_nodes" => {
                let got: BTreeMap<String, String> = f["numa"]["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| (n["id"].to_string(), list(&n["cpus"])))
                    .collect();
                let want: BTreeMap<String, String> =
                    want.as_object().unwrap().iter().map(|(k, v)| (k.clone(), list(v))).collect();
                assert_eq!(got, want, "{ctx}");
            }
            "numa_memory_kb" => {
                for (id, kb) in want.as_object().unwrap() {
                    let node = numa_node(&f, id);
                    assert_eq!(&node["memory_kb"], kb, "{ctx} node {id}");
                }
            }
            "hugepages_per_node" => {
                for (id, sizes) in want.as_object().unwrap() {
                    let node = numa_node(&f, id);
                    for (size, total) in sizes.as_object().unwrap() {
                        assert_eq!(&node["hugepages"][size]["total"], total, "{ctx} node {id} size {size}");
                    }
                }
            }
            "nics" => {
                for (n, props) in want.as_object().unwrap() {
                    let got = nic(&f, n);
                    for (p, v) in props.as_object().unwrap() {
                        assert_eq!(&got[p], v, "{ctx} {n}.{p}");
                    }
                    assert_eq!(got["virtual"], false, "{ctx} {n} is physical");
                }
            }
            "virtual_netdevs" => {
                let mut got: Vec<String> = f["nics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|n| n["virtual"] == true)
                    .map(|n| n["name"].as_str().unwrap().to_string())
                    .collect();
                got.sort();
                let want: Vec<String> =
                    want.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
                assert_eq!(got, want, "{ctx}");
            }
            "pci_nics" => {
                // {driver: numa_node}: every PCI NIC of that driver sits on that node.
                for (driver, node) in want.as_object().unwrap() {
                    let of: Vec<&Value> =
                        f["nics"].as_array().unwrap().iter().filter(|n| n["driver"] == *driver).collect();
                    assert!(!of.is_empty(), "{ctx}: no NIC with driver {driver}");
                    for n in of {
                        assert_eq!(&n["numa_node"], node, "{ctx}: {n}");
                    }
                }
            }
            "irq_dirs" => assert_eq!(f["irqs"]["dirs"], *want, "{ctx}"),
            "default_smp_affinity_excludes" => {
                let dflt = CpuList::parse(f["irqs"]["default_affinity"].as_str().unwrap()).unwrap();
                assert!(!dflt.is_empty(), "{ctx}: default affinity unread");
                assert!(dflt.is_disjoint(&CpuList::parse(want.as_str().unwrap()).unwrap()), "{ctx}: {dflt}");
            }
            "cmdline_isolcpus" => assert_eq!(f["kernel"]["isolcpus"], *want, "{ctx}"),
            "cmdline_rcu_nocbs" => assert_eq!(f["kernel"]["rcu_nocbs"], *want, "{ctx}"),
            "cmdline_nohz_full" => assert_eq!(f["kernel"]["nohz_full"], *want, "{ctx}"),
            "cmdline_hugepages" => assert_eq!(f["kernel"]["args"]["hugepages"], serde_json::json!([want]), "{ctx}"),
            other => panic!("{name}: MANIFEST expectation {other:?} is not checked by tests/real_dumps.rs"),
        }
    }
    check_warnings(name, &warnings);
}

/// A scan of a real dump says what it could not read rather than staying silent about a whole
/// subsystem: each of the files a scan cannot do without is warned about exactly when the dump
/// lacks it, and every "missing"/"absent" warning names a path the dump really lacks.
fn check_warnings(name: &str, warnings: &[String]) {
    let root = support::real_fixture(name);
    for file in ["proc/cmdline", "proc/meminfo", "proc/interrupts"] {
        let absent = !root.join(file).exists();
        let warned = warnings.iter().any(|w| w.starts_with(&format!("/{file}:")));
        assert_eq!(warned, absent, "{name}: /{file} absent={absent}, but warnings are {warnings:?}");
    }
    for w in warnings {
        let (path, what) = w.split_once(": ").unwrap_or_else(|| panic!("{name}: warning names no path: {w:?}"));
        assert!(path.starts_with('/'), "{name}: warning names no absolute path: {w:?}");
        if what.contains("missing") || what.contains("absent") {
            assert!(!root.join(&path[1..]).exists(), "{name}: {w:?}, but the dump has {path}");
        }
    }
}

fn check_fixture(name: &str) {
    let manifest = support::real_manifest();
    let expected = &manifest["fixtures"][name]["expected"];
    assert!(expected.is_object(), "{name} is not in MANIFEST.json");
    assert!(!expected.as_object().unwrap().is_empty(), "{name}: MANIFEST.json expects nothing");
    check(name, expected);
}

#[test]
fn every_manifest_fixture_has_a_test() {
    let names = support::real_fixture_names();
    let tested = [
        "hwloc-32intel64-2p8co2t",
        "utillinux-epyc7451",
        "hwloc-32em64t-2n8c",
        "cnto-r740xd-worker2",
        "cnto-r640-rt-worker1",
        "cnto-gcp-e2e-worker",
        "utillinux-dell-e4310",
    ];
    for n in names {
        assert!(tested.contains(&n.as_str()), "real dump {n} has no test in tests/real_dumps.rs");
    }
}

#[test]
fn hwloc_32intel64_2p8co2t_matches_lstopo() {
    check_fixture("hwloc-32intel64-2p8co2t");
}

#[test]
fn utillinux_epyc7451_matches_lscpu() {
    check_fixture("utillinux-epyc7451");
}

#[test]
fn hwloc_32em64t_2n8c_matches_lstopo() {
    check_fixture("hwloc-32em64t-2n8c");
}

#[test]
fn cnto_r740xd_worker2_matches_cadvisor() {
    check_fixture("cnto-r740xd-worker2");
}

#[test]
fn cnto_r640_rt_worker1_matches_performance_profile_creator() {
    check_fixture("cnto-r640-rt-worker1");
}

#[test]
fn cnto_gcp_e2e_worker_matches_must_gather() {
    check_fixture("cnto-gcp-e2e-worker");
}

#[test]
fn utillinux_dell_e4310_matches_lscpu() {
    check_fixture("utillinux-dell-e4310");
}

/// The tuned R640: the running cmdline is parsed, not guessed.
#[test]
fn cnto_r640_cmdline_details() {
    let (f, _) = scan("cnto-r640-rt-worker1");
    let k = &f["kernel"];
    assert_eq!(k["idle"], "poll");
    assert_eq!(k["args"]["intel_pstate"], serde_json::json!(["disable"]));
    assert_eq!(k["args"]["nosoftlockup"], serde_json::json!([null]));
    assert_eq!(k["default_hugepagesz_kb"], 1048576);
    assert_eq!(k["hugepages"], serde_json::json!([{"size_kb": 2048, "pages": 128, "per_node": null}]));
    assert_eq!(k["args"]["tuned.non_isolcpus"], serde_json::json!(["0000ffff,ffffffff,fffff81f"]));
    // tuned.non_isolcpus (as read) is the complement, within the online CPUs, of the isolcpus
    // the scan parsed from the same line.
    let non_isol = CpuList::parse_mask(k["args"]["tuned.non_isolcpus"][0].as_str().unwrap()).unwrap();
    let isol = CpuList::parse(k["isolcpus"]["cpus"].as_str().expect("isolcpus parsed")).unwrap();
    assert!(!isol.is_empty(), "isolcpus parsed as empty: {}", k["isolcpus"]);
    assert!(non_isol.is_disjoint(&isol), "non_isolcpus {non_isol} overlaps isolcpus {isol}");
    assert_eq!(non_isol.union(&isol).to_string(), list(&f["cpu"]["online"]));
}

/// Offline CPUs and a cmdline with a stray '+' token.
#[test]
fn cnto_gcp_offline_cpus_and_odd_cmdline() {
    let (f, _) = scan("cnto-gcp-e2e-worker");
    assert_eq!(f["cpu"]["offline"], "2-3");
    assert_eq!(f["kernel"]["args"]["+"], serde_json::json!([null]));
    assert_eq!(f["cpu"]["thread_siblings"], serde_json::json!(["0", "1"]));
}

/// The facts (and warnings) of every real dump, compact and with detail, pinned in
/// tests/fixtures/real/pins/: a change to discovery that changes what a real server reports
/// shows up here as a reviewed diff of the pin. `LLTUNE_UPDATE_PINS=1` rewrites the pins.
#[test]
fn every_real_dump_gives_its_pinned_facts() {
    let pins = support::real_fixtures_dir().join("pins");
    let update = std::env::var_os("LLTUNE_UPDATE_PINS").is_some_and(|v| v == "1");
    let mut failed = Vec::new();
    for name in support::real_fixture_names() {
        for detail in [false, true] {
            let root = support::real_fixture(&name);
            let host = Host::new(&root).expect("fixture root");
            let (facts, warnings) = facts::collect(&host, ScanOptions { detail });
            let mut facts = serde_json::to_value(&facts).unwrap();
            // The crate's version is not a fact of the dump.
            facts.as_object_mut().unwrap().remove("lltune_version");
            let got = serde_json::to_string_pretty(&serde_json::json!({"facts": facts, "warnings": warnings})).unwrap()
                + "\n";
            let file = pins.join(format!("{name}{}.json", if detail { ".detail" } else { "" }));
            if update {
                std::fs::create_dir_all(&pins).unwrap();
                std::fs::write(&file, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e} (LLTUNE_UPDATE_PINS=1 writes it)", file.display()));
            if got != want {
                let first = got.lines().zip(want.lines()).position(|(a, b)| a != b).unwrap_or(0);
                let show = |s: &str| s.lines().skip(first.saturating_sub(3)).take(7).collect::<Vec<_>>().join("\n");
                failed.push(format!(
                    "{}: differs at line {}:\n--- got\n{}\n--- pinned\n{}",
                    file.display(),
                    first + 1,
                    show(&got),
                    show(&want)
                ));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// A copy of a real dump in a temp folder without the files `drop` names (paths relative to
/// the dump's root): the older kernels and partial captures of issue 11, built from real ones.
fn dump_without(name: &str, drop: &dyn Fn(&str) -> bool) -> tempfile::TempDir {
    fn copy(src: &std::path::Path, dst: &std::path::Path, rel: &str, drop: &dyn Fn(&str) -> bool) {
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let rel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            if drop(&rel) {
                continue;
            }
            let (from, to) = (entry.path(), dst.join(&name));
            let ft = entry.file_type().unwrap();
            if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&from).unwrap(), &to).unwrap();
            } else if ft.is_dir() {
                std::fs::create_dir(&to).unwrap();
                copy(&from, &to, &rel, drop);
            } else if ft.is_file() {
                std::fs::copy(&from, &to).unwrap();
            }
        }
    }
    let d = tempfile::tempdir().unwrap();
    copy(&support::real_fixture(name), d.path(), "", drop);
    d
}

/// sockets, cores_per_socket, threads_per_core and thread_siblings of a root.
fn topology(root: &std::path::Path) -> (Value, Vec<String>) {
    let host = Host::new(root).expect("root");
    let (facts, warnings) = facts::collect(&host, ScanOptions::default());
    let c = serde_json::to_value(&facts.cpu).unwrap();
    let t = serde_json::json!([c["sockets"], c["cores_per_socket"], c["threads_per_core"], c["thread_siblings"]]);
    (t, warnings)
}

/// Outside what the topology and isolation are read from (`sys/devices/system/cpu`'s lists,
/// each `cpuN/online` and `cpuN/topology/`, /proc/cpuinfo): left out of the copies, which
/// then hold a few hundred files.
fn not_cpu(rel: &str) -> bool {
    if ["sys", "sys/devices", "sys/devices/system", "sys/devices/system/cpu", "proc", "proc/cpuinfo"].contains(&rel) {
        return false;
    }
    let Some(rest) = rel.strip_prefix("sys/devices/system/cpu/") else { return true };
    let mut parts = rest.splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(first), None) => {
            let per_cpu = first.starts_with("cpu") && first[3..].chars().all(|c| c.is_ascii_digit());
            let listed = ["online", "offline", "possible", "present", "isolated", "nohz_full"].contains(&first);
            !(per_cpu || listed)
        }
        (Some(_), Some(second)) => second != "online" && second != "topology",
        _ => true,
    }
}

/// The per-CPU topology file of a dump: `sys/devices/system/cpu/cpuN/topology/<file>`.
fn topology_file(rel: &str) -> Option<&str> {
    let rest = rel.strip_prefix("sys/devices/system/cpu/cpu")?;
    let (n, file) = rest.split_once("/topology/")?;
    n.chars().all(|c| c.is_ascii_digit()).then_some(file)
}

// See: issue 11 (older kernels: only thread_siblings/core_siblings masks, no
// physical_package_id/core_id).
#[test]
fn topology_from_sibling_masks_alone_equals_the_full_dump() {
    for name in support::real_fixture_names() {
        let (full, _) = topology(&support::real_fixture(&name));
        assert!(full[0].is_u64() && full[1].is_u64(), "{name}: the full dump gives no topology: {full}");
        let old = dump_without(&name, &|rel| {
            not_cpu(rel) || topology_file(rel).is_some_and(|f| f != "thread_siblings" && f != "core_siblings")
        });
        // The copy really is the old kernel's shape.
        let cpu0 = old.path().join("sys/devices/system/cpu/cpu0/topology");
        let mut left: Vec<String> =
            std::fs::read_dir(&cpu0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["core_siblings", "thread_siblings"], "{name}");
        let (masks, warnings) = topology(old.path());
        assert_eq!(masks, full, "{name}: masks only");
        assert!(!warnings.iter().any(|w| w.contains("topology")), "{name}: {warnings:?}");
    }
}

#[test]
fn topology_from_proc_cpuinfo_alone_equals_the_full_dump() {
    for name in support::real_fixture_names() {
        let (full, _) = topology(&support::real_fixture(&name));
        let bare = dump_without(&name, &|rel| not_cpu(rel) || topology_file(rel).is_some());
        let (from_cpuinfo, warnings) = topology(bare.path());
        assert_eq!(from_cpuinfo, full, "{name}: /proc/cpuinfo physical id and core id only");
        assert!(!warnings.iter().any(|w| w.contains("topology")), "{name}: {warnings:?}");
        // Without /proc/cpuinfo either, the topology is unknown (null), and the scan says so.
        let none = dump_without(&name, &|rel| not_cpu(rel) || topology_file(rel).is_some() || rel == "proc/cpuinfo");
        let (unknown, warnings) = topology(none.path());
        assert_eq!(unknown, serde_json::json!([null, null, null, []]), "{name}");
        assert!(warnings.iter().any(|w| w.contains("topology: missing")), "{name}: {warnings:?}");
    }
}

/// The R640's capture has no /sys/devices/system/cpu/isolated or nohz_full: unknown (null),
/// not none; the summary then says what the command line asks for, labelled as such.
#[test]
fn absent_isolation_files_are_unknown_not_none() {
    let (f, _) = scan("cnto-r640-rt-worker1");
    assert_eq!(f["cpu"]["isolated"], Value::Null);
    assert_eq!(f["cpu"]["nohz_full"], Value::Null);
    let host = Host::new(support::real_fixture("cnto-r640-rt-worker1")).unwrap();
    let (report, _) = lltune::analysis::analyse(&host, ScanOptions::default());
    let text = lltune::cli::report::render_text(&report);
    // isolcpus=managed_irq,5-10 without `domain`: the kernel's isolated file would be empty;
    // fleet reports count 5-10 (any source), and the line says which number is which.
    assert!(
        text.contains(
            "isolated  none (from cmdline isolcpus without domain); nohz_full none (from cmdline); \
             cmdline isolcpus managed_irq,5-10; any source 5-10 (what fleet reports count)\n"
        ),
        "{text}"
    );
    // The capture has no cpufreq, cpuidle, NUMA meminfo or netdev files: unknown, not none.
    assert!(text.contains("governors ?;") && text.contains("states ?\n") && text.contains("nics      ? "), "{text}");
    // A dump that has the files (empty) still says "" (none).
    let (f, _) = scan("utillinux-epyc7451");
    assert_eq!((&f["cpu"]["isolated"], &f["cpu"]["nohz_full"]), (&Value::from(""), &Value::from("")));
    // And a copy of it without them: null.
    let d = dump_without("utillinux-epyc7451", &|rel| {
        not_cpu(rel) || rel == "sys/devices/system/cpu/isolated" || rel == "sys/devices/system/cpu/nohz_full"
    });
    let host = Host::new(d.path()).unwrap();
    let (facts, _) = facts::collect(&host, ScanOptions::default());
    assert_eq!((facts.cpu.isolated, facts.cpu.nohz_full), (None, None));
}
