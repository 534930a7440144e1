//! lltune_memory through its real binary on the project's own fixture trees
//! (tests/fixtures/hosts/intel-pstate-2node, acpi-cpufreq-1node): THP, huge pages per node
//! and the OS reserve, KSM, NUMA balancing, swap in fstab, persistence and `lltune reapply`.
//! The engine's contract (check mode, rollback, failures and kills midway) is in contract.rs.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{bin, host_fixture, run_module, tree_snapshot};

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")).trim().to_string()
}

fn with_root(root: &Path, mut args: Value) -> Value {
    args["root"] = json!(root);
    args
}

const POOL0: &str = "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages";
const POOL1: &str = "sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages";

#[test]
fn memory_applies_everything_and_reruns_unchanged() {
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    let args = with_root(
        root,
        json!({
            "thp": {"enabled": "never", "defrag": "never"},
            "hugepages": {"2048": {"0": 1024, "1": 512}, "1048576": {"1": 2}},
            "ksm": false, "swap": false, "numa_balancing": false, "_ansible_diff": true
        }),
    );
    let (v, code) = run_module("lltune_memory", &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(read(root, "sys/kernel/mm/transparent_hugepage/enabled"), "never");
    assert_eq!(read(root, "sys/kernel/mm/transparent_hugepage/defrag"), "never");
    assert_eq!((read(root, POOL0), read(root, POOL1)), ("1024".into(), "512".into()));
    assert_eq!(read(root, "sys/kernel/mm/ksm/run"), "0");
    assert_eq!(read(root, "proc/sys/kernel/numa_balancing"), "0");
    let fstab = fs::read_to_string(root.join("etc/fstab")).unwrap();
    assert!(
        fstab.contains("\n# lltune: /dev/mapper/rhel-swap   none                    swap    defaults        0 0\n"),
        "{fstab}"
    );
    assert!(fstab.contains("\n/dev/mapper/rhel-root"), "{fstab}");
    assert_eq!(v["swapoff"], "skipped (root is not /)");
    assert!(v["warnings"][0].as_str().unwrap().contains("/dev/dm-1 active"), "{v}");
    assert_eq!(
        v["hugepages"][0],
        json!({"size_kb": 1048576, "node": 1, "before": 0, "requested": 2, "allocated": 2}),
        "{v}"
    );
    assert_eq!(v["hugepages"][1]["allocated"], 1024);
    assert_eq!(v["changes"][0], json!({"setting": "thp enabled", "before": "always", "after": "never"}));
    let (again, _) = run_module("lltune_memory", &args);
    assert_eq!(again["changed"], false, "{again}");
}

#[test]
fn memory_refusals_write_nothing() {
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    let start = tree_snapshot(root);
    // 32 GiB host, 16 GiB per node: the OS keeps max(10%, 2 GiB) = 3.2 GiB host-wide, 1.6 GiB per node.
    let cases: &[(Value, &str)] = &[
        (
            json!({"thp": {"enabled": "sometimes"}}),
            "thp.enabled: \"sometimes\" is not offered ([always] madvise never)",
        ),
        (json!({"hugepages": {"4096": {"0": 1}}}), "hugepages.4096: this host offers no 4096 kB pages (sizes: "),
        (json!({"hugepages": {"2048": {"2": 1}}}), "hugepages.2048.2: this host has no NUMA node 2"),
        (json!({"hugepages": {"2M": {"0": 1}}}), "option hugepages: \"2M\" is not a page size in kB"),
        (json!({"hugepages": {"2048": {"0": -1}}}), "option hugepages.2048.0:"),
        (json!({"hugepages": {"1048576": {"0": 15}}}), "on node 0; the node has 16777216 kB and must keep 10%"),
        (json!({"thp": {"enable": "never"}}), "unsupported option enable in thp"),
        (json!({"ksm": "nope"}), "option ksm: expected a boolean"),
        (json!({"persist": true}), "give at least one of thp, hugepages"),
    ];
    for (args, want) in cases {
        let (v, code) = run_module("lltune_memory", &with_root(root, args.clone()));
        assert_eq!(code, 1, "{args}: {v}");
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.contains(want), "{args}: {msg:?} lacks {want:?}");
    }
    // Host-wide: 8 GiB on one node keeps max(10%, 2 GiB) = 2 GiB, more than the node's 10%.
    let small = host_fixture("acpi-cpufreq-1node");
    let (v, code) = run_module("lltune_memory", &with_root(small.path(), json!({"hugepages": {"2048": {"0": 3500}}})));
    assert_eq!(code, 1, "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(
        msg.contains("7168000 kB of huge pages in all; the host has 8388608 kB and must keep at least 2097152 kB"),
        "{msg}"
    );
    let (v, code) = run_module("lltune_memory", &with_root(small.path(), json!({"hugepages": {"2048": {"0": 3000}}})));
    assert_eq!(code, 0, "{v}");
    // Within the reserve per node and host-wide: accepted (check mode).
    let (v, code) = run_module(
        "lltune_memory",
        &with_root(root, json!({"hugepages": {"1048576": {"0": 14, "1": 13}}, "_ansible_check_mode": true})),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(tree_snapshot(root), start, "a refused or checked run wrote something");
}

#[test]
fn swap_true_restores_the_lines_and_units_are_named() {
    let dir = host_fixture("acpi-cpufreq-1node");
    let root = dir.path();
    let before = fs::read_to_string(root.join("etc/fstab")).unwrap();
    let (v, code) = run_module("lltune_memory", &with_root(root, json!({"swap": false, "ksm": false})));
    assert_eq!(code, 0, "{v}");
    let w = v["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect::<Vec<_>>().join("\n");
    assert!(w.contains("ksm: this kernel has no /sys/kernel/mm/ksm/run; it is off already"), "{w}");
    assert!(w.contains("/etc/systemd/system/dev-sdb2.swap"), "{w}");
    assert!(w.contains("/etc/systemd/system/swap.target.wants/dev-sdb2.swap"), "{w}");
    let off = fs::read_to_string(root.join("etc/fstab")).unwrap();
    // The already-commented line stays as it was.
    assert!(off.contains("\n# lltune: /swapfile       none") && off.contains("\n#/dev/sdb2"), "{off}");
    let (v, code) = run_module("lltune_memory", &with_root(root, json!({"swap": true})));
    assert_eq!(code, 0, "{v}");
    assert_eq!(fs::read_to_string(root.join("etc/fstab")).unwrap(), before);
    let (v, code) = run_module("lltune_memory", &with_root(root, json!({"numa_balancing": true})));
    assert_eq!(code, 1, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("numa_balancing: this kernel has no /proc/sys/kernel/numa_balancing"));
}

#[test]
fn memory_persist_then_reapply_after_a_simulated_reboot() {
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/intel-pstate-2node");
    let args = json!({
        "root": root, "persist": true, "backup_id": "p",
        "thp": {"enabled": "never", "defrag": "never"}, "hugepages": {"2048": {"0": 1024, "1": 1024}},
        "ksm": false, "swap": false, "numa_balancing": false
    });
    let (v, code) = run_module("lltune_memory", &args);
    assert_eq!(code, 0, "{v}");
    let runtime = [
        "sys/kernel/mm/transparent_hugepage/enabled",
        "sys/kernel/mm/transparent_hugepage/defrag",
        "sys/kernel/mm/ksm/run",
        "proc/sys/kernel/numa_balancing",
        POOL0,
        POOL1,
    ];
    let applied: Vec<String> = runtime.iter().map(|p| read(root, p)).collect();
    assert_eq!(applied, ["never", "never", "0", "0", "1024", "1024"]);
    for p in runtime {
        fs::copy(fixture.join(p), root.join(p)).unwrap();
    }
    let out = Command::new(bin("lltune")).args(["reapply", "--root"]).arg(root).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("lltune_memory: re-applied"), "{stdout}");
    let after: Vec<String> = runtime.iter().map(|p| read(root, p)).collect();
    assert_eq!(after, applied);
}

/// The shortfall path: a real kernel that allocates fewer pages reads back a smaller
/// `nr_hugepages`; the engine's read-back fails that write (and reverts the run) with a typed
/// `NotKept`, which it hands to the plan's failure step. A captured tree always keeps what
/// is written, so the shortfall cannot happen there: the typed value the engine builds is
/// handed to the step of the module's real plan here (no message is read); the revert itself
/// is the contract's (an injected failure at every mutation point, contract_lltune_memory).
#[test]
fn a_short_allocation_is_reported_as_requested_vs_allocated() {
    use lltune::engine::state::NotKept;
    use lltune::engine::{Module, WriteFailure};
    use lltune::protocol::Failure;
    let dir = host_fixture("intel-pstate-2node");
    let host = lltune::host::Host::new(dir.path()).unwrap();
    let params: lltune::modules::memory::Params =
        serde_json::from_value(json!({"hugepages": {"2048": {"0": 8, "1": 512}}})).unwrap();
    let explain = |why: WriteFailure| {
        let mut plan = lltune::modules::memory::Memory::plan(&host, &params).unwrap();
        let mut f = Failure::new("the engine's words");
        plan.explain_failure(&why, &mut f);
        f
    };
    let short = |path: &str, kept: &str| {
        WriteFailure::NotKept(NotKept { path: path.into(), written: "512".into(), kept: kept.into() })
    };
    let f = explain(short(&format!("/{POOL1}"), "300"));
    assert_eq!(f.fields["hugepages_short"], json!({"node": 1, "size_kb": 2048, "requested": 512, "allocated": 300}));
    assert_eq!(
        f.msg,
        "hugepages: node 1 allocated 300 of the 512 2048 kB pages requested (memory fragmented or in use); the engine's words"
    );
    // Another kernel file the kernel did not keep, or a failure of another kind: the
    // engine's words as they are, no pool named.
    for why in [short("/proc/sys/kernel/numa_balancing", "1"), WriteFailure::Failed] {
        let f = explain(why);
        assert_eq!(f.msg, "the engine's words");
        assert!(f.fields.is_empty(), "{:?}", f.fields);
    }
}
