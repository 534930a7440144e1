//! `lltune apply` carries out the `network` and `irq` sections through lltune_nic and
//! lltune_irq (the translation in config::to_args): plan, apply, rerun unchanged, rollback
//! byte for byte, on the project's NIC and IRQ fixture trees; and gen-config's configs of
//! the real dumps and of the simulated rack's hosts (vma, time_sync, services.tuned) the same way.

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

/// The boot files of tests/fixtures/boot/rhel9-bls, for trees that carry none.
fn add_rhel9_boot_files(root: &Path) {
    let boot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/boot/rhel9-bls");
    for part in ["etc/default", "etc/kernel", "etc/os-release", "boot"] {
        std::fs::create_dir_all(root.join(part).parent().unwrap()).unwrap();
        let _ = std::fs::remove_dir_all(root.join(part));
        let st = Command::new("cp").arg("-a").arg(boot.join(part)).arg(root.join(part)).status().unwrap();
        assert!(st.success());
    }
}

/// Issue 9's end-to-end case: the config gen-config proposes for a real dump (boot files and
/// os-release added: the dumps carry none) is carried out section by section, a rerun
/// changes nothing, and rollback gives the tree back byte for byte.
fn gen_config_cycle(dump: &str, want_modules: &[&str], why: &str) {
    let dir = crate::support::copy_fixture(&crate::support::real_fixture(dump));
    let root = dir.path();
    add_rhel9_boot_files(root);
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.yaml");
    let (code, out) = lltune(&["gen-config", "-o", cfg.to_str().unwrap()], root);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("allow_grub_edit: false", "allow_grub_edit: true");
    std::fs::write(&cfg, text).unwrap();
    let c = cfg.to_str().unwrap();
    let start = tree_snapshot(root);
    // New IRQs start on the housekeeping CPUs, where the dump has the file to say so.
    let default_file = root.join("proc/irq/default_smp_affinity");
    let config = std::fs::read_to_string(&cfg).unwrap();
    let proposed = config.lines().find_map(|l| l.strip_prefix("  default_affinity: ")).map(|v| v.trim_matches('"'));
    assert_eq!(proposed.is_some(), default_file.exists(), "{dump}: default_affinity proposed: {proposed:?}");
    // The preview: several steps persist, but the restore unit and its link are shown once
    // (one diff per file per run); each step's changes start with why, naming the config key
    // and the finding gen-config embedded for it.
    let (code, plan) = lltune(&["apply", "-c", c, "--plan"], root);
    assert_eq!(code, 0, "{plan}");
    assert_eq!(plan.matches("+++ /etc/systemd/system/lltune-restore.service").count(), 1, "{plan}");
    assert_eq!(plan.matches("+++ link /etc/systemd/system/multi-user.target.wants/").count(), 1, "{plan}");
    let steps = plan.lines().filter(|l| l.ends_with(": changes")).count();
    assert_eq!(plan.matches("+++ why (the config keys and findings behind these changes)").count(), steps, "{plan}");
    assert!(plan.contains(why), "{why:?} not in the plan:\n{plan}");
    assert_same_tree(&start, &tree_snapshot(root), &format!("{dump}: apply --plan"));
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "g1"], root);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("not implemented"), "{out}");
    if let Some(want) = proposed {
        let now = lltune::cpulist::CpuList::parse_mask(&std::fs::read_to_string(&default_file).unwrap()).unwrap();
        assert_eq!(now, lltune::cpulist::CpuList::parse(want).unwrap(), "{dump}: default_smp_affinity");
    }
    for m in want_modules {
        assert!(out.contains(&format!("\n{m}: changes\n")), "{m} did not change anything:\n{out}");
    }
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "g2"], root);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to change"), "{out}");
    let (code, out) = lltune(&["rollback", "--backup", "g1"], root);
    assert_eq!(code, 0, "{out}");
    assert_same_tree(&start, &tree_snapshot(root), &format!("{dump}: after rollback"));
}

#[test]
fn gen_config_of_the_r640_dump_is_applied_rerun_and_rolled_back() {
    gen_config_cycle(
        "cnto-r640-rt-worker1",
        &["lltune_kernel_args", "lltune_cpu", "lltune_memory", "lltune_limits", "lltune_irq"],
        "+nohz_full: kernel.cmdline.nohz_full; finding kernel.nohz_full (warning): unset → ",
    );
}

#[test]
fn gen_config_of_the_epyc_dump_is_applied_rerun_and_rolled_back() {
    gen_config_cycle("utillinux-epyc7451", &["lltune_kernel_args", "lltune_limits"], "+memlock: memory.mlock\n");
}

/// See: issue 17. Every sysctl of the config is absent on this kernel, so `fit_to_host`
/// drops the sysctl step; NIC still runs before IRQ (changing channels re-creates the
/// queues' IRQs), in `--plan` and in a real run.
#[test]
fn apply_keeps_nic_before_irq_when_the_sysctl_step_is_dropped() {
    let dir = host_fixture("seed-golden");
    let root = dir.path();
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        cfg.path(),
        "version: 1\nnetwork:\n  sysctl:\n    tcp_low_latency: 1\n  interfaces:\n    - name: ens5f0\n      coalescing: {rx_usecs: 0}\nirq:\n  manual_affinity:\n    - match: \"ens5f0-*\"\n      cpus: 0-1\n",
    )
    .unwrap();
    let c = cfg.path().to_str().unwrap();
    for extra in [&["--plan"][..], &["--backup-id", "o1"][..]] {
        let mut args = vec!["apply", "-c", c];
        args.extend_from_slice(extra);
        let (code, out) = lltune(&args, root);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("skipped: network.sysctl.tcp_low_latency"), "{out}");
        let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("lltune_")).collect();
        assert_eq!(steps, ["lltune_nic: changes", "lltune_irq: changes"], "{extra:?}:\n{out}");
        if extra == ["--plan"] {
            // Both steps persist and bring the udev rule that re-applies a NIC that
            // re-appears: one diff per file per run.
            assert_eq!(out.matches("+++ /etc/udev/rules.d/99-lltune.rules").count(), 1, "{out}");
            assert_eq!(out.matches("+++ /etc/systemd/system/lltune-reapply@.service").count(), 1, "{out}");
        }
    }
    assert!(root.join("etc/udev/rules.d/99-lltune.rules").is_file());
}

/// See: issue 17. The kernel arguments are skipped (no `safety.allow_grub_edit`) and the
/// reboot comes from systemd's CPUAffinity= drop-in: the reason names that, not the kernel
/// command line.
#[test]
fn apply_plan_names_the_real_reason_for_a_reboot() {
    let dir = host_fixture("seed-golden");
    let root = dir.path();
    add_rhel9_boot_files(root);
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        cfg.path(),
        "version: 1\ncpu:\n  isolate_cores: 2-7\nkernel:\n  cmdline:\n    isolcpus: managed_irq,domain,2-7\n    kthread_cpus: 0-1\n",
    )
    .unwrap();
    let (code, out) = lltune(&["apply", "-c", cfg.path().to_str().unwrap(), "--plan"], root);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("skipped: kernel.cmdline (2 arguments): safety.allow_grub_edit is false"), "{out}");
    let reasons: Vec<&str> = out.lines().filter(|l| l.starts_with("reboot required:")).collect();
    assert_eq!(
        reasons,
        [
            "reboot required: lltune_cpu: systemd reads CPUAffinity= (/etc/systemd/system.conf.d/50-lltune.conf) only when it starts"
        ],
        "{out}"
    );
    // With the flag, the command line is a reason too, naming the keys that differ from the
    // running line (isolcpus is running already).
    std::fs::write(cfg.path(), std::fs::read_to_string(cfg.path()).unwrap() + "safety:\n  allow_grub_edit: true\n")
        .unwrap();
    let (code, out) = lltune(&["apply", "-c", cfg.path().to_str().unwrap(), "--plan"], root);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "reboot required: lltune_kernel_args: the kernel command line differs from the running one (kthread_cpus)\n"
        ),
        "{out}"
    );
    assert!(out.contains("reboot required: lltune_cpu: systemd reads CPUAffinity="), "{out}");
}

/// `lltune apply` with `LLTUNE_FAULT_FAIL_AT=n` (the host layer's fault injection: the n-th
/// mutation of the host fails with EIO): exit code and output.
fn apply_failing_at(root: &Path, config: &str, n: u64) -> (i32, String) {
    let out = Command::new(bin("lltune"))
        .args(["apply", "-c", config, "--backup-id", "tx", "--root"])
        .arg(root)
        .env("LLTUNE_FAULT_FAIL_AT", n.to_string())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Issue 21: `lltune apply` is one engine transaction. A write that fails in a later step
/// (injected: the host layer's EIO at the n-th mutation) reverts that step's own writes and
/// every earlier step's, through the engine; the message names the earlier steps and what
/// was put back; the tree (files, links, and the kernel values that are files on a tree) is
/// back byte for byte, mode and owner included. Points spread over the whole run are tried,
/// the last mutation (in the last step) among them.
#[test]
fn a_failure_in_a_later_step_of_apply_reverts_the_earlier_steps() {
    let fixture = crate::support::real_fixture("cnto-r640-rt-worker1");
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.yaml");
    let fresh = || {
        let dir = crate::support::copy_fixture(&fixture);
        add_rhel9_boot_files(dir.path());
        dir
    };
    {
        let dir = fresh();
        let (code, out) = lltune(&["gen-config", "-o", cfg.to_str().unwrap()], dir.path());
        assert_eq!(code, 0, "{out}");
    }
    let text = std::fs::read_to_string(&cfg).unwrap().replace("allow_grub_edit: false", "allow_grub_edit: true");
    std::fs::write(&cfg, text).unwrap();
    let c = cfg.to_str().unwrap();
    // The steps that change something, in order, from a clean run.
    let steps: Vec<String> = {
        let dir = fresh();
        let (code, out) = apply_failing_at(dir.path(), c, u64::MAX);
        assert_eq!(code, 0, "{out}");
        out.lines().filter_map(|l| l.strip_suffix(": changes")).map(str::to_string).collect()
    };
    assert!(steps.len() >= 4, "too few changing steps for the test: {steps:?}");
    // How many mutations the whole apply makes: the largest n that still fails (a failure
    // at any point up to it fails the run; past it no fault fires).
    let fails = |n: u64| {
        let dir = fresh();
        apply_failing_at(dir.path(), c, n).0 != 0
    };
    let (mut lo, mut hi) = (1u64, 2u64);
    assert!(fails(lo), "no mutation at all");
    while fails(hi) {
        (lo, hi) = (hi, hi * 2);
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if fails(mid) { lo = mid } else { hi = mid }
    }
    let last = lo;
    let mut points: Vec<u64> = (1..=8).map(|k| 1 + (last - 1) * k / 8).collect();
    points.dedup();
    let mut later_steps_seen = 0;
    for n in points {
        let dir = fresh();
        let root = dir.path();
        let start = tree_snapshot(root);
        let (code, out) = apply_failing_at(root, c, n);
        assert_eq!(code, 1, "fault at mutation {n} of {last}:\n{out}");
        assert!(out.contains("Input/output error"), "fault at mutation {n}:\n{out}");
        assert_same_tree(&start, &tree_snapshot(root), &format!("apply failing at mutation {n} of {last}: {out}"));
        // The step that failed is the one the message starts with; every changing step
        // before it is named as reverted.
        assert!(steps.iter().any(|s| out.contains(&format!("{s}: "))), "fault at mutation {n}: no step named:\n{out}");
        if let Some((_, rest)) = out.split_once("reverted the earlier steps of this run (") {
            later_steps_seen += 1;
            let (names, paths) = rest.split_once("): ").expect("a list of what was reverted");
            let named: Vec<&str> = names.split(", ").collect();
            assert!(named.iter().all(|m| steps.iter().any(|s| s == m)), "{named:?} vs {steps:?}");
            assert!(!paths.trim().is_empty(), "{out}");
        }
        if n == last {
            // The last mutation is in the last changing step: every earlier step was reverted.
            let all: Vec<&str> = steps[..steps.len() - 1].iter().map(String::as_str).collect();
            assert!(
                out.contains(&format!("reverted the earlier steps of this run ({}): ", all.join(", "))),
                "fault at the last mutation {n}:\n{out}"
            );
        }
    }
    assert!(later_steps_seen >= 3, "only {later_steps_seen} faults fell in a later step");
    eprintln!(
        "apply over {steps:?}: {last} mutations; {later_steps_seen} faults in a later step reverted the earlier ones"
    );
}

/// `lltune apply` with the CPU power keys, swap_disable (vm.swappiness), isolated cores
/// (kernel.watchdog_cpumask on the housekeeping CPUs), RPS/RFS off with no interface listed
/// (the global flow table zeroed) and irq.default_affinity: plan, apply, rerun, rollback.
#[test]
fn apply_carries_out_cpu_power_swappiness_watchdog_and_rfs_keys() {
    let dir = host_fixture("intel-pstate-2node");
    let root = dir.path();
    std::fs::create_dir_all(root.join("proc/irq")).unwrap();
    std::fs::write(root.join("proc/irq/default_smp_affinity"), "ff\n").unwrap();
    let config = "version: 1\ncpu:\n  isolate_cores: 2-3,6-7\n  pm_qos_resume_latency_us: {value: n/a}\n  energy_perf_bias: performance\n  uncore: {min_freq_khz: max}\n  mce_ignore_ce: true\nkernel:\n  cmdline:\n    kthread_cpus: 0-1,4-5\nmemory:\n  swap_disable: true\nirq:\n  disable_rps: true\n  disable_rfs: true\n  default_affinity: 0-1,4-5\n";
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), config).unwrap();
    let c = cfg.path().to_str().unwrap();
    let start = tree_snapshot(root);
    let (code, plan) = lltune(&["apply", "-c", c, "--plan"], root);
    assert_eq!(code, 0, "{plan}");
    assert!(!plan.contains("not implemented"), "{plan}");
    for w in [
        "+vm.swappiness = 0",
        "+kernel.watchdog_cpumask = 0-1,4-5",
        "+net.core.rps_sock_flow_entries = 0",
        "pm_qos_resume_latency_us (CPUs 2-3,6-7): n/a",
        "energy_perf_bias (CPUs 0-7): 0",
        "uncore package_00_die_00 min_freq_khz: 2400000",
        "mce ignore_ce: 1",
        "/proc/irq/default_smp_affinity",
    ] {
        assert!(plan.contains(w), "{w:?} not in the plan:\n{plan}");
    }
    assert_same_tree(&start, &tree_snapshot(root), "apply --plan");
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "p1"], root);
    assert_eq!(code, 0, "{out}");
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap().trim().to_string();
    assert_eq!(read("proc/sys/vm/swappiness"), "0");
    assert_eq!(read("proc/sys/kernel/watchdog_cpumask"), "0-1,4-5");
    assert_eq!(read("proc/sys/net/core/rps_sock_flow_entries"), "0");
    assert_eq!(read("sys/devices/system/cpu/cpu6/power/pm_qos_resume_latency_us"), "n/a");
    assert_eq!(read("sys/devices/system/cpu/cpu5/power/pm_qos_resume_latency_us"), "0");
    assert_eq!(read("proc/irq/default_smp_affinity"), "33");
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "p2"], root);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to change"), "{out}");
    let (code, out) = lltune(&["rollback", "--backup", "p1"], root);
    assert_eq!(code, 0, "{out}");
    assert_same_tree(&start, &tree_snapshot(root), "after rollback");
}

/// One host of the simulated rack and what its kernel-bypass, time sync or TuneD section
/// must do: the step, lines of its preview, files (relative to the root) with their text, and
/// files the other variant of the host writes, which must stay absent.
struct RackCase {
    host: &'static str,
    step: &'static str,
    preview: &'static [&'static str],
    files: &'static [(&'static str, &'static str)],
    absent: &'static [&'static str],
}

/// Issue 19's "done when", for `lltune apply`: the simulated rack as molecule builds it
/// (tests/fixtures/make-rack.sh: real dumps, with libvma on the R640, a PTP-capable XXV710
/// port and linuxptp on the R740xd, TuneD running virtual-guest on the GCP VM; in the second
/// round Onload on the R640 and chrony on the R740xd), each host's config (gen-config's `vma`
/// and `onload` proposals; the rack's `time_sync` and `services.tuned`) carried out whole:
/// --plan writes nothing, apply writes the VMA and Onload profiles, ptp4l + phc2sys (chronyd
/// disabled), chrony reading ens7f0's PHC with ptp4l beside it (chronyd kept, no phc2sys) and
/// TuneD's profile, a rerun changes nothing, rollback gives the tree back byte for byte, the
/// ethtool capture lltune_nic changes on the R740xd hosts included. The ptp4l and chrony files
/// written are read by the real ptp4l and chronyd (Debian's, unpacked under the target folder).
#[test]
fn the_rack_hosts_vma_time_sync_and_tuned_sections_are_applied_rerun_and_rolled_back() {
    let rack = tempfile::tempdir().unwrap();
    let dumps = crate::support::real_fixture("cnto-r640-rt-worker1").parent().unwrap().to_path_buf();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make-rack.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(rack.path())
        .arg("5")
        .arg(bin("lltune"))
        .env("DUMPS", &dumps)
        .output()
        .unwrap();
    assert!(out.status.success(), "make-rack.sh: {}", String::from_utf8_lossy(&out.stderr));
    const PTP4L: &str = "etc/linuxptp/lltune-ptp4l.conf";
    const PTP4L_TEXT: &str =
        "\ndomainNumber 24\nnetwork_transport L2\ndelay_mechanism E2E\ntime_stamping hardware\n[ens7f0]\n";
    const CHRONY: &str = "etc/chrony/conf.d/lltune.conf";
    const PHC2SYS_UNIT: &str = "etc/systemd/system/lltune-phc2sys.service";
    const VMA: [&str; 2] = ["etc/profile.d/lltune-vma.sh", "etc/lltune/vma.env"];
    const ONLOAD: [&str; 2] = ["etc/profile.d/lltune-onload.sh", "etc/lltune/onload.env"];
    let cases = [
        RackCase {
            host: "host001",
            step: "lltune_bypass",
            preview: &["+export VMA_SPEC=latency"],
            files: &[(VMA[0], "\nexport VMA_SPEC=latency\n"), (VMA[1], "\nVMA_SPEC=latency\n")],
            absent: &ONLOAD,
        },
        RackCase {
            host: "host002",
            step: "lltune_timesync",
            preview: &["+domainNumber 24", "-/etc/systemd/system/multi-user.target.wants/chronyd.service"],
            files: &[
                (PTP4L, PTP4L_TEXT),
                (PHC2SYS_UNIT, "\nExecStart=/usr/sbin/phc2sys -s ens7f0 -c CLOCK_REALTIME -w -n 24\n"),
            ],
            absent: &[CHRONY],
        },
        RackCase {
            host: "host003",
            step: "lltune_services",
            preview: &["-virtual-guest\n  +latency-performance", "-auto\n  +manual"],
            files: &[("etc/tuned/active_profile", "latency-performance\n"), ("etc/tuned/profile_mode", "manual\n")],
            absent: &[],
        },
        // Onload's latency profile (gen-config proposes `onload` where the launcher or the
        // loaded module is; tests/fixtures/rack/onload).
        RackCase {
            host: "host004",
            step: "lltune_bypass",
            preview: &["+export EF_POLL_USEC=100000", "installed (8.1.2.26)"],
            files: &[
                (
                    ONLOAD[0],
                    "\nexport EF_POLL_USEC=100000\nexport EF_TCP_FASTSTART_INIT=0\nexport EF_TCP_FASTSTART_IDLE=0\n",
                ),
                (ONLOAD[1], "\nEF_POLL_USEC=100000\nEF_TCP_FASTSTART_INIT=0\nEF_TCP_FASTSTART_IDLE=0\n"),
            ],
            absent: &VMA,
        },
        // chrony with ens7f0's PHC (ptp4 on this dump) as reference clock, ptp4l beside it.
        RackCase {
            host: "host005",
            step: "lltune_timesync",
            preview: &["+refclock PHC /dev/ptp4 poll 0 dpoll -2 prefer tai", "+domainNumber 24"],
            files: &[
                // The PHC ptp4l disciplines keeps TAI: chrony takes the TAI-UTC offset off.
                (CHRONY, "\nleapsectz right/UTC\nrefclock PHC /dev/ptp4 poll 0 dpoll -2 prefer tai\n"),
                (PTP4L, PTP4L_TEXT),
                (
                    "etc/systemd/system/lltune-ptp4l.service",
                    "\nExecStart=/usr/sbin/ptp4l -f /etc/linuxptp/lltune-ptp4l.conf\n",
                ),
            ],
            absent: &[PHC2SYS_UNIT],
        },
    ];
    let ptp_hosts = ["host002", "host005"];
    let capture = "var/lib/lltune/capture/ethtool/ens7f0.json";
    for case in &cases {
        let root = rack.path().join("hosts").join(case.host);
        let cfg = rack.path().join("configs").join(format!("{}.yml", case.host));
        let c = cfg.to_str().unwrap();
        let h = case.host;
        let start = tree_snapshot(&root);
        let start_capture = std::fs::read(root.join(capture)).ok();
        assert_eq!(start_capture.is_some(), ptp_hosts.contains(&h), "{h}: ens7f0's capture");
        let chrony_conf = std::fs::read(root.join("etc/chrony.conf")).ok();
        assert_eq!(chrony_conf.is_some(), h == "host005", "{h}: chrony.conf");
        let (code, plan) = lltune(&["apply", "-c", c, "--plan"], &root);
        assert_eq!(code, 0, "{h}: {plan}");
        assert!(!plan.contains("not implemented"), "{h}: {plan}");
        assert!(plan.contains(&format!("\n{}: changes\n", case.step)), "{h}: no {} step:\n{plan}", case.step);
        for w in case.preview {
            assert!(plan.contains(w), "{h}: {w:?} not in the plan:\n{plan}");
        }
        assert_same_tree(&start, &tree_snapshot(&root), &format!("{h}: apply --plan"));
        assert_eq!(std::fs::read(root.join(capture)).ok(), start_capture, "{h}: apply --plan changed the capture");
        let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "r1"], &root);
        assert_eq!(code, 0, "{h}: {out}");
        for (rel, want) in case.files {
            let text = std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{h}: {rel}: {e}"));
            assert!(text.contains(want), "{h}: {rel} lacks {want:?}:\n{text}");
        }
        for rel in case.absent {
            assert!(std::fs::symlink_metadata(root.join(rel)).is_err(), "{h}: {rel} written");
        }
        let wants = root.join("etc/systemd/system/multi-user.target.wants");
        let enabled = |unit: &str| std::fs::symlink_metadata(wants.join(unit)).is_ok_and(|m| m.is_symlink());
        if h == "host002" {
            for unit in ["lltune-ptp4l.service", "lltune-phc2sys.service"] {
                assert!(enabled(unit), "{unit} not enabled");
            }
            assert!(!enabled("chronyd.service"), "chronyd still enabled");
        }
        if h == "host005" {
            // chrony steers the system clock: chronyd stays enabled, ptp4l runs beside it,
            // phc2sys (which would also write the system clock) is neither written nor enabled;
            // chrony.conf itself is never edited.
            assert!(enabled("chronyd.service") && enabled("lltune-ptp4l.service"), "{h}: chronyd and ptp4l");
            assert!(!enabled("lltune-phc2sys.service"), "{h}: phc2sys enabled beside chrony");
            assert_eq!(std::fs::read(root.join("etc/chrony.conf")).ok(), chrony_conf, "{h}: chrony.conf edited");
            if let Some(tools) = crate::change_timesync::timesync_tools("rack chronyd") {
                let text = std::fs::read_to_string(root.join(CHRONY)).unwrap();
                let printed = crate::change_timesync::chronyd_parse(&tools, &text)
                    .unwrap_or_else(|e| panic!("chronyd refuses {CHRONY}: {e}"));
                assert_eq!(
                    printed.trim(),
                    "leapsectz right/UTC\nrefclock PHC /dev/ptp4 poll 0 dpoll -2 prefer tai",
                    "{h}: chronyd -p"
                );
            }
        }
        if ptp_hosts.contains(&h) {
            assert_ne!(
                std::fs::read(root.join(capture)).ok(),
                start_capture,
                "lltune_nic left ens7f0's capture as it was"
            );
            if let Some(tools) = crate::change_timesync::timesync_tools("rack ptp4l") {
                let text = std::fs::read_to_string(root.join(PTP4L)).unwrap();
                crate::change_timesync::ptp4l_parse(&tools, &text)
                    .unwrap_or_else(|e| panic!("ptp4l refuses {PTP4L}: {e}"));
            }
        }
        let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "r2"], &root);
        assert_eq!(code, 0, "{h}: {out}");
        assert!(out.contains("nothing to change"), "{h}: the rerun changed something:\n{out}");
        let (code, out) = lltune(&["rollback", "--backup", "r1"], &root);
        assert_eq!(code, 0, "{h}: {out}");
        assert_same_tree(&start, &tree_snapshot(&root), &format!("{h}: after rollback"));
        assert_eq!(std::fs::read(root.join(capture)).ok(), start_capture, "{h}: ens7f0's capture after rollback");
    }
}
