//! `lltune apply` carries out the `network` and `irq` sections through lltune_nic and
//! lltune_irq (the translation in config::to_args): plan, apply, rerun unchanged, rollback
//! byte for byte, on the project's NIC and IRQ fixture trees.

use std::path::Path;
use std::process::Command;

use crate::support::{assert_same_tree, bin, host_fixture, tree_snapshot};

fn lltune(args: &[&str], root: &Path) -> (i32, String) {
    let out = Command::new(bin("lltune")).args(args).arg("--root").arg(root).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn cycle(fixture: &str, config: &str, want: &[&str]) {
    let dir = host_fixture(fixture);
    let root = dir.path();
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), config).unwrap();
    let c = cfg.path().to_str().unwrap();
    let start = tree_snapshot(root);
    let (code, plan) = lltune(&["apply", "-c", c, "--plan"], root);
    assert_eq!(code, 0, "{plan}");
    assert!(!plan.contains("not implemented"), "{plan}");
    for w in want {
        assert!(plan.contains(w), "{w:?} not in the plan:\n{plan}");
    }
    assert_same_tree(&start, &tree_snapshot(root), "apply --plan");
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "s1"], root);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\nchanged\n"), "{out}");
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "s2"], root);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to change"), "{out}");
    let (code, out) = lltune(&["rollback", "--backup", "s1"], root);
    assert_eq!(code, 0, "{out}");
    assert_same_tree(&start, &tree_snapshot(root), "after rollback");
}

#[test]
fn apply_carries_out_network_interfaces_through_lltune_nic() {
    cycle(
        "nic-2port",
        "version: 1\nnetwork:\n  defaults: {disable_gro: true}\n  interfaces:\n    - name: ens1f0\n      coalescing: {rx_usecs: 0, adaptive_rx: false}\n      rings: {rx: 4096}\n      flow_control: {rx: false, tx: false}\n    - name: ens1f1\n      offloads: {gro: true, lro: false}\n",
        &["lltune_nic: changes", "+rx-gro: off", "+rx-usecs: 0", "+rx: 4096"],
    );
}

#[test]
fn apply_carries_out_the_irq_section_through_lltune_irq() {
    cycle(
        "irq-small",
        "version: 1\nirq:\n  manual_affinity:\n    - match: \"eth0-TxRx-*\"\n      cpus: 2-3\n    - match: \"nvme*\"\n      cpus: \"1\"\n  avoid_cores_for_irqs: 4-7\n",
        &["lltune_irq: changes", "IRQBALANCE_BANNED_CPULIST"],
    );
}
