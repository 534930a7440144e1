//! lltune_cpu through its real binary on the project's own fixture trees
//! (tests/fixtures/hosts/intel-pstate-2node, acpi-cpufreq-1node): refusals before any
//! write, shared cpufreq policies, the C-state rule, persistence and `lltune reapply`.
//! The engine's contract (check mode, rollback, failures and kills midway) is in contract.rs.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{bin, host_fixture, run_module, tree_snapshot};

const CPU: &str = "sys/devices/system/cpu";

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")).trim().to_string()
}

fn with_root(root: &Path, mut args: Value) -> Value {
    args["root"] = json!(root);
    args
}

#[test]
fn cpu_refusals_name_the_option_cpu_and_setting_and_write_nothing() {
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    // CPU 5's policy offers only powersave.
    fs::write(root.join(format!("{CPU}/cpufreq/policy5/scaling_available_governors")), "powersave\n").unwrap();
    let start = tree_snapshot(root);
    let cases: &[(Value, &str)] = &[
        (json!({"governor": "performance", "turbo": false}), "governor: CPU 5 does not offer \"performance\""),
        (json!({"governor": "schedutil", "cpus": "0"}), "scaling_available_governors: performance powersave"),
        (json!({"epp": "fastest"}), "epp: CPU 0 does not offer \"fastest\""),
        (json!({"epp": "default"}), "epp: \"default\" reads back"),
        (json!({"cstates": {"disable": ["C7"]}}), "no idle state named \"C7\" on CPUs 0-7 (states: C1, C1E, C6, POLL)"),
        (json!({"cstates": {"disable": ["poll"]}}), "POLL (state0)"),
        (json!({"cstates": {"max_latency_us": 1, "disable": ["C6"]}}), "option cstates: give exactly one"),
        (json!({"cpus": "0-9", "turbo": false}), "option cpus: CPUs 8-9 are not online (online: 0-7)"),
        (json!({"workqueue_cpumask": "0,12"}), "option workqueue_cpumask: CPUs 12 are not online"),
        (json!({"systemd_cpu_affinity": ""}), "option systemd_cpu_affinity: the CPU list is empty"),
        (json!({"cpus": "0-3"}), "give at least one of governor"),
        (json!({"governor": "performance\nx"}), "option governor:"),
        (json!({"turbo": "maybe"}), "option turbo: expected a boolean"),
        (json!({"cpus": "zero"}), "option cpus: invalid CPU list"),
        (json!({"cstates": {"max": 1}}), "unsupported option max in cstates"),
    ];
    for (args, want) in cases {
        let (v, code) = run_module("lltune_cpu", &with_root(root, args.clone()));
        assert_eq!(code, 1, "{args}: {v}");
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.contains(want), "{args}: {msg:?} lacks {want:?}");
    }
    // intel_pstate (active) holds EPP at performance under the performance governor.
    let (v, _) =
        run_module("lltune_cpu", &with_root(root, json!({"governor": "performance", "epp": "power", "cpus": "0"})));
    assert!(
        v["msg"].as_str().unwrap().contains("epp: CPU 0 runs intel_pstate (active) with the performance governor"),
        "{v}"
    );
    assert_eq!(tree_snapshot(root), start, "a refused run wrote something");
}

#[test]
fn acpi_cpufreq_shared_policies_are_written_once_and_boost_is_turbo() {
    let dir = host_fixture("acpi-cpufreq-1node");
    let root = dir.path();
    let args =
        with_root(root, json!({"governor": "performance", "epp": "performance", "turbo": false, "backup_id": "a"}));
    let (v, code) = run_module("lltune_cpu", &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["changes"][0],
        json!({"setting": "governor", "cpus": "0-3", "before": "ondemand", "after": "performance"})
    );
    assert_eq!(v["changes"][1], json!({"setting": "turbo (boost)", "cpus": null, "before": "1", "after": "0"}));
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap()
            .contains("CPUs 0-3 have no energy_performance_preference (driver acpi-cpufreq)")
    );
    let journal: Value =
        serde_json::from_slice(&fs::read(root.join("var/lib/lltune/backups/a/journal.json")).unwrap()).unwrap();
    let paths: Vec<&str> = journal["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "/sys/devices/system/cpu/cpufreq/policy0/scaling_governor",
            "/sys/devices/system/cpu/cpufreq/policy2/scaling_governor",
            "/sys/devices/system/cpu/cpufreq/boost"
        ]
    );
    assert_eq!(read(root, &format!("{CPU}/cpu3/cpufreq/scaling_governor")), "performance");
    assert_eq!(read(root, &format!("{CPU}/cpufreq/boost")), "0");
    let (v, _) = run_module("lltune_cpu", &args);
    assert_eq!(v["changed"], false, "{v}");
}

#[test]
fn max_latency_disables_above_and_enables_at_or_under_never_poll() {
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    let state = |cpu: u32, s: u32| read(root, &format!("{CPU}/cpu{cpu}/cpuidle/state{s}/disable"));
    // 0 µs: everything but POLL off.
    let (v, code) = run_module("lltune_cpu", &with_root(root, json!({"cstates": {"max_latency_us": 0}})));
    assert_eq!(code, 0, "{v}");
    for cpu in 0..8 {
        assert_eq!(
            (state(cpu, 0), state(cpu, 1), state(cpu, 2), state(cpu, 3)),
            ("0".into(), "1".into(), "1".into(), "1".into())
        );
    }
    // 200 µs: every state enabled again, CPU 7's C6 (disabled in the fixture) included.
    let (v, code) = run_module("lltune_cpu", &with_root(root, json!({"cstates": {"max_latency_us": 200}})));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changes"].as_array().unwrap().len(), 3, "{v}");
    for cpu in 0..8 {
        assert_eq!(state(cpu, 3), "0");
    }
    // By name: only C6, others left alone; CPU 7 counted with the others once disabled again.
    let (v, _) = run_module("lltune_cpu", &with_root(root, json!({"cstates": {"disable": ["c6"]}, "cpus": "4-7"})));
    assert_eq!(
        v["changes"],
        json!([{"setting": "cstate C6 (170 us)", "cpus": "4-7", "before": "enabled", "after": "disabled"}])
    );
    assert_eq!(state(3, 3), "0");
}

#[test]
fn max_cstate_goes_by_the_number_in_the_state_name() {
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    let state = |cpu: u32, s: u32| read(root, &format!("{CPU}/cpu{cpu}/cpuidle/state{s}/disable"));
    // The seed's cstate_limit: 1 keeps POLL, C1 and C1E; C6 off.
    let (v, code) = run_module("lltune_cpu", &with_root(root, json!({"cstates": {"max_cstate": 1}})));
    assert_eq!(code, 0, "{v}");
    for cpu in 0..8 {
        assert_eq!(
            (state(cpu, 0), state(cpu, 1), state(cpu, 2), state(cpu, 3)),
            ("0".into(), "0".into(), "0".into(), "1".into())
        );
    }
    let (v, _) = run_module("lltune_cpu", &with_root(root, json!({"cstates": {"max_cstate": 1}})));
    assert_eq!(v["changed"], false, "{v}");
    // 0: only POLL (no C-number) stays, as it always does.
    let (v, code) = run_module("lltune_cpu", &with_root(root, json!({"cstates": {"max_cstate": 0}})));
    assert_eq!(code, 0, "{v}");
    assert_eq!((state(2, 0), state(2, 1), state(2, 2)), ("0".into(), "1".into(), "1".into()));
    let (v, code) =
        run_module("lltune_cpu", &with_root(root, json!({"cstates": {"max_cstate": 1, "max_latency_us": 5}})));
    assert_eq!(code, 1);
    assert!(v["msg"].as_str().unwrap().contains("exactly one of"), "{v}");
}

#[test]
fn workqueue_masks_are_written_in_the_kernels_hex_form() {
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    let (v, code) = run_module("lltune_cpu", &with_root(root, json!({"workqueue_cpumask": "0-1,4-5"})));
    assert_eq!(code, 0, "{v}");
    assert_eq!(read(root, "sys/devices/virtual/workqueue/cpumask"), "33");
    assert_eq!(read(root, "sys/bus/workqueue/devices/writeback/cpumask"), "33");
    assert_eq!(v["reboot_required"], false);
}

#[test]
fn cpu_persist_then_reapply_after_a_simulated_reboot() {
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/intel-pstate-2node");
    let args = json!({
        "root": root, "persist": true, "backup_id": "p",
        "governor": "performance", "epp": "performance", "turbo": false,
        "cstates": {"max_latency_us": 10}, "workqueue_cpumask": "0,4", "systemd_cpu_affinity": "0,4"
    });
    let (v, code) = run_module("lltune_cpu", &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["persist"]["state_file"], "/etc/lltune/state.d/lltune_cpu.json");
    let state = read(root, "etc/lltune/state.d/lltune_cpu.json");
    assert!(state.contains("\"governor\": \"performance\"") && !state.contains("backup_id"), "{state}");
    assert!(root.join("etc/systemd/system/multi-user.target.wants/lltune-restore.service").is_symlink());
    // Every runtime value the run changed, as it is now.
    let journal: Value =
        serde_json::from_slice(&fs::read(root.join("var/lib/lltune/backups/p/journal.json")).unwrap()).unwrap();
    let runtime: Vec<String> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "runtime")
        .map(|e| e["path"].as_str().unwrap().trim_start_matches('/').to_string())
        .collect();
    assert_eq!(runtime.len(), 26, "{runtime:?}");
    let applied: Vec<String> = runtime.iter().map(|p| read(root, p)).collect();
    // A reboot: the kernel starts from its defaults again (the fixture's values).
    for p in &runtime {
        fs::copy(fixture.join(p), root.join(p)).unwrap();
    }
    assert_eq!(read(root, &format!("{CPU}/cpu0/cpufreq/scaling_governor")), "powersave");
    let out = Command::new(bin("lltune")).args(["reapply", "--root"]).arg(root).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("lltune_cpu: re-applied"), "{stdout}");
    let after: Vec<String> = runtime.iter().map(|p| read(root, p)).collect();
    assert_eq!(after, applied);
    // And a second boot-time run finds everything in place.
    let out = Command::new(bin("lltune")).args(["reapply", "--root"]).arg(root).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("lltune_cpu: already in place"));
}

#[test]
fn online_cpus_come_from_the_cpu_folders_when_the_online_file_is_missing() {
    // Dumps (must-gather) and some old kernels have cpuN folders but no cpu/online.
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    fs::remove_file(root.join("sys/devices/system/cpu/online")).unwrap();
    let (v, code) = run_module("lltune_cpu", &with_root(root, json!({"cpus": "6-7", "cstates": {"max_cstate": 1}})));
    assert_eq!(code, 0, "{v}");
    let (v, code) = run_module("lltune_cpu", &with_root(root, json!({"cpus": "8", "cstates": {"max_cstate": 1}})));
    assert_eq!(code, 1);
    assert!(v["msg"].as_str().unwrap().contains("option cpus: CPUs 8 are not online (online: 0-7)"), "{v}");
}

/// PM QoS resume latency, energy/performance bias, uncore limits and `ignore_ce`: each
/// changed on the intel_pstate tree, check mode writes nothing, a rerun changes nothing,
/// rollback gives the tree back byte for byte; the acpi-cpufreq tree has none of the files:
/// each is named in a warning and skipped, nothing fails.
#[test]
fn cpu_power_beyond_cstates_check_apply_rerun_rollback_and_hosts_without_the_files() {
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    let start = tree_snapshot(root);
    let args = json!({
        "pm_qos_resume_latency_us": {"cpus": "2-3,6-7", "value": "n/a"},
        "energy_perf_bias": "performance",
        "uncore": {"min_freq_khz": "max", "max_freq_khz": 2400000},
        "mce_ignore_ce": true,
        "backup_id": "pw",
    });
    let mut check = with_root(root, args.clone());
    check["_ansible_check_mode"] = json!(true);
    check["_ansible_diff"] = json!(true);
    let (c, code) = run_module("lltune_cpu", &check);
    assert_eq!(code, 0, "{c}");
    assert_eq!(c["changed"], true, "{c}");
    assert_eq!(tree_snapshot(root), start, "check mode wrote something");
    let mut real = with_root(root, args.clone());
    real["_ansible_diff"] = json!(true);
    let (v, code) = run_module("lltune_cpu", &real);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["diff"], c["diff"]);
    assert_eq!(v["changes"], c["changes"]);
    let diff = v["diff"][0]["after"].as_str().unwrap();
    assert!(diff.contains("pm_qos_resume_latency_us (CPUs 2-3,6-7): n/a"), "{diff}");
    assert!(diff.contains("energy_perf_bias (CPUs 0-7): 0"), "{diff}");
    assert!(diff.contains("uncore package_01_die_00 min_freq_khz: 2400000"), "{diff}");
    assert!(diff.contains("mce ignore_ce: 1"), "{diff}");
    for n in 0..8 {
        let qos = read(root, &format!("{CPU}/cpu{n}/power/pm_qos_resume_latency_us"));
        assert_eq!(qos, if [2, 3, 6, 7].contains(&n) { "n/a" } else { "0" }, "cpu{n}");
        assert_eq!(read(root, &format!("{CPU}/cpu{n}/power/energy_perf_bias")), "0");
        assert_eq!(read(root, &format!("sys/devices/system/machinecheck/machinecheck{n}/ignore_ce")), "1");
    }
    for pk in ["00", "01"] {
        let u = format!("{CPU}/intel_uncore_frequency/package_{pk}_die_00");
        assert_eq!(
            (read(root, &format!("{u}/min_freq_khz")), read(root, &format!("{u}/max_freq_khz"))),
            ("2400000".into(), "2400000".into())
        );
    }
    assert!(v["warnings"].as_array().is_none_or(|w| w.is_empty()), "{v}");
    let mut rerun = with_root(root, args.clone());
    rerun["backup_id"] = json!("pw2");
    let (again, _) = run_module("lltune_cpu", &rerun);
    assert_eq!(again["changed"], false, "{again}");
    let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "pw"}));
    assert_eq!(code, 0, "{rb}");
    let mut after = tree_snapshot(root);
    after.retain(|k, _| !k.starts_with("var/lib/lltune"));
    assert_eq!(after, start, "rollback left a difference");

    // Bad values name the option; nothing written.
    for (bad, want) in [
        (json!({"pm_qos_resume_latency_us": {"value": -1}}), "option pm_qos_resume_latency_us.value"),
        (json!({"pm_qos_resume_latency_us": {"value": "none"}}), "option pm_qos_resume_latency_us.value"),
        (
            json!({"pm_qos_resume_latency_us": {"cpus": "9", "value": 0}}),
            "pm_qos_resume_latency_us.cpus: CPUs 9 are not online",
        ),
        (json!({"energy_perf_bias": 16}), "option energy_perf_bias: 16 is not 0 to 15"),
        (json!({"uncore": {"min_freq_khz": 700000}}), "700000 kHz is outside"),
        (json!({"uncore": {"min_freq_khz": 2450000}}), "option uncore.min_freq_khz"),
        (json!({"uncore": {"min_freq_khz": "max", "max_freq_khz": "min"}}), "would be above max_freq_khz"),
        (json!({"uncore": {}}), "option uncore: give min_freq_khz"),
        (json!({"mce_ignore_ce": "perhaps"}), "option mce_ignore_ce"),
    ] {
        let snap = tree_snapshot(root);
        let (v, code) = run_module("lltune_cpu", &with_root(root, bad.clone()));
        assert_eq!(code, 1, "{bad}: {v}");
        assert!(v["msg"].as_str().unwrap().contains(want), "{bad}: {v}");
        assert_eq!(tree_snapshot(root), snap, "{bad} wrote something");
    }

    // A value written with leading zeros is the number the kernel reads back: idempotent.
    let (v, code) = run_module("lltune_cpu", &with_root(root, json!({"pm_qos_resume_latency_us": {"value": "0020"}})));
    assert_eq!(code, 0, "{v}");
    assert_eq!(read(root, &format!("{CPU}/cpu0/power/pm_qos_resume_latency_us")), "20");
    let (v, _) = run_module("lltune_cpu", &with_root(root, json!({"pm_qos_resume_latency_us": {"value": "0020"}})));
    assert_eq!(v["changed"], false, "{v}");

    // A host without the files: each named and skipped, the run does not fail.
    let dir = host_fixture("acpi-cpufreq-1node");
    let root = dir.path();
    let start = tree_snapshot(root);
    let (v, code) = run_module(
        "lltune_cpu",
        &with_root(
            root,
            json!({"pm_qos_resume_latency_us": {"value": 0}, "energy_perf_bias": 6, "uncore": {"max_freq_khz": "max"}, "mce_ignore_ce": true}),
        ),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], false, "{v}");
    let warnings = v["warnings"].to_string();
    for want in [
        "pm_qos_resume_latency_us: CPUs 0-3 have no /sys/devices/system/cpu/cpuN/power/pm_qos_resume_latency_us",
        "energy_perf_bias: CPUs 0-3 have no /sys/devices/system/cpu/cpuN/power/energy_perf_bias",
        "uncore: this host has no /sys/devices/system/cpu/intel_uncore_frequency/*/max_freq_khz",
        "mce_ignore_ce: this host has no /sys/devices/system/machinecheck/machinecheckN/ignore_ce",
    ] {
        assert!(warnings.contains(want), "{want:?} not in {warnings}");
    }
    assert_eq!(tree_snapshot(root), start);
}
