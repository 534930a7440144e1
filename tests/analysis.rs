//! Analysis end to end: recommendations and reports on the real dumps, gen-config on every
//! dump auditing clean, the bad configs of tests/fixtures/configs each failing at its field,
//! and the seed's documented CLI behaviours (exit codes, --output, --md-report).

use std::path::{Path, PathBuf};
use std::process::Command;

use lltune::analysis::{self, Report, Severity};
use lltune::facts::{Facts, ScanOptions};
use lltune::host::Host;
use serde_json::Value;

use crate::support;

const DUMPS: &[&str] = &[
    "cnto-gcp-e2e-worker",
    "cnto-r640-rt-worker1",
    "cnto-r740xd-worker2",
    "hwloc-32em64t-2n8c",
    "hwloc-32intel64-2p8co2t",
    "utillinux-dell-e4310",
    "utillinux-epyc7451",
];

/// What `lltune scan` reports for a dump: its facts and their recommendations.
fn report_of(name: &str) -> Report {
    let root = support::real_fixture(name);
    let host = Host::new(&root).unwrap();
    analysis::analyse(&host, ScanOptions::default()).0
}

fn facts_of(name: &str) -> Facts {
    report_of(name).facts
}

fn lltune(args: &[&str]) -> std::process::Output {
    Command::new(support::bin("lltune")).args(args).output().expect("run lltune")
}

fn config_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs").join(name)
}

#[test]
fn gen_config_on_every_real_dump_audits_clean() {
    for name in DUMPS {
        let f = facts_of(name);
        let text = lltune::config::generate::generate(&f, &Default::default());
        let r = lltune::config::audit::audit_text(&text, Some(&f));
        assert!(r.errors.is_empty(), "{name}: {:#?}\n{text}", r.errors);
        // The only warning allowed is the safety flag gen-config leaves off on purpose.
        assert!(r.warnings.iter().all(|w| w.field == "safety.allow_grub_edit"), "{name}: {:#?}", r.warnings);
        let (c, issues) = lltune::config::parse(&text);
        assert!(issues.is_empty());
        // Every online CPU is either housekeeping or isolated, and both sides hold whole cores.
        let iso = c.cpu.as_ref().and_then(|c| c.isolate_cores.as_ref()).map(|c| c.0.clone()).unwrap_or_default();
        let hk = c
            .kernel_arg("kthread_cpus")
            .flatten()
            .map(|s| lltune::cpulist::CpuList::parse(s).unwrap())
            .unwrap_or_default();
        // Every dump has cores to isolate: the split below is always checked.
        assert!(!iso.is_empty(), "{name}: gen-config isolated nothing\n{text}");
        assert_eq!(iso.union(&hk), f.cpu.online, "{name}");
        assert!(iso.is_disjoint(&hk), "{name}");
        assert!(!f.cpu.thread_siblings.is_empty(), "{name}: no cores scanned");
        for core in &f.cpu.thread_siblings {
            let online = core.intersection(&f.cpu.online);
            assert!(
                online.is_subset(&iso) || online.is_subset(&hk),
                "{name}: core {core} is split: iso {iso}, hk {hk}"
            );
        }
        for node in &f.numa.nodes {
            assert!(
                !node.cpus.is_disjoint(&hk) || node.cpus.is_disjoint(&f.cpu.online),
                "{name}: node {} has no housekeeping core",
                node.id
            );
        }
    }
}

#[test]
fn gen_config_core_plans_of_known_machines() {
    // EPYC 7451 NPS4: 8 nodes, one whole core each for housekeeping.
    let f = facts_of("utillinux-epyc7451");
    let (c, _) = lltune::config::parse(&lltune::config::generate::generate(&f, &Default::default()));
    assert_eq!(c.kernel_arg("kthread_cpus"), Some(Some("0,6,12,18,24,30,36,42,48,54,60,66,72,78,84,90")));
    assert_eq!(c.kernel_arg("isolcpus").flatten().map(|s| s.starts_with("managed_irq,domain,1-5,7-11,")), Some(true));
    // The GCP VM: 2 online CPUs of 4, one core each: CPU 0 keeps the OS, CPU 1 is isolated.
    let f = facts_of("cnto-gcp-e2e-worker");
    let (c, _) = lltune::config::parse(&lltune::config::generate::generate(&f, &Default::default()));
    assert_eq!(c.kernel_arg("nohz_full"), Some(Some("1")));
    assert_eq!(c.kernel_arg("irqaffinity"), Some(Some("0")));
    // Two housekeeping cores per node on request, and i40e NICs get roles by link speed.
    let f = facts_of("hwloc-32intel64-2p8co2t");
    let opts = lltune::config::generate::GenOptions {
        plan: lltune::analysis::plan::PlanOptions {
            housekeeping_cores_per_node: 2,
            trading_nics: vec!["enp96s0f1".into()],
        },
        ..Default::default()
    };
    let (c, _) = lltune::config::parse(&lltune::config::generate::generate(&f, &opts));
    assert_eq!(c.kernel_arg("kthread_cpus"), Some(Some("0-1,8-9,16-17,24-25")));
    let roles: Vec<(String, String)> = c
        .network
        .unwrap()
        .interfaces
        .into_iter()
        .map(|i| (i.name, i.role.map(|r| r.as_str().to_string()).unwrap_or_default()))
        .collect();
    assert_eq!(roles, [("enp96s0f0".to_string(), "management".to_string()), ("enp96s0f1".into(), "trading".into())]);
}

#[test]
fn tuned_host_gets_little_noise() {
    let f = report_of("cnto-r640-rt-worker1");
    let items: Vec<String> = f.recommendations.iter().map(|r| format!("{}/{}", r.category, r.item)).collect();
    // It already has these on its command line: no advice about them.
    for done in [
        "kernel/skew_tick",
        "kernel/nosoftlockup",
        "kernel/nmi_watchdog",
        "kernel/tsc",
        "kernel/idle",
        "kernel/processor.max_cstate",
        "kernel/intel_pstate",
        "kernel/isolcpus",
        "kernel/rcu_nocbs",
        "irq/default_smp_affinity",
    ] {
        assert!(!items.contains(&done.to_string()), "{done} in {items:?}");
    }
    assert!(items.len() <= 8, "{items:?}");
    assert!(f.recommendations.iter().all(|r| r.severity != Severity::Error), "{items:?}");
    // What it lacks: nohz_full for its isolated CPUs, and whole cores (5-10 leave 45-50 out).
    assert!(items.contains(&"kernel/nohz_full".to_string()), "{items:?}");
    let split = f.recommendations.iter().find(|r| r.item == "isolated_siblings").expect("sibling split");
    assert!(split.current.contains("sibling") && split.current.contains("5,45"), "{}", split.current);
}

#[test]
fn recommendations_of_the_other_dumps() {
    let f = report_of("cnto-gcp-e2e-worker");
    // isolcpus=managed_irq,1 nohz_full=1 but no irqaffinity: the default IRQ mask covers CPU 1.
    let r = f.recommendations.iter().find(|r| r.item == "default_smp_affinity").expect("default_smp_affinity");
    assert_eq!((r.current.as_str(), r.target.as_str()), ("0-3 (includes isolated 1)", "0"));
    let f = report_of("utillinux-epyc7451");
    let cstates = f.recommendations.iter().find(|r| r.item == "cstates").expect("cstates");
    assert!(cstates.current.contains("C2"), "{}", cstates.current);
    assert!(f.recommendations.iter().all(|r| r.item != "governor"), "performance everywhere: no governor advice");
    let f = report_of("hwloc-32intel64-2p8co2t");
    let iso = f.recommendations.iter().find(|r| r.item == "isolcpus").expect("isolcpus");
    assert_eq!(iso.target, "managed_irq,domain,1-7,9-15,17-23,25-31");
}

#[test]
fn every_recommendation_uses_the_documented_words() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/recommendations.md")).unwrap();
    for name in DUMPS {
        let f = report_of(name);
        let v = serde_json::to_value(&f.recommendations).unwrap();
        assert!(!v.as_array().unwrap().is_empty(), "{name}: no recommendation to check");
        for r in v.as_array().unwrap() {
            assert!(analysis::CATEGORIES.contains(&r["category"].as_str().unwrap()), "{r}");
            assert!(["info", "warning", "error"].contains(&r["severity"].as_str().unwrap()), "{r}");
            assert!(["low", "medium", "high"].contains(&r["impact"].as_str().unwrap()), "{r}");
            assert!(["safe", "potentially_disruptive", "high_risk"].contains(&r["risk"].as_str().unwrap()), "{r}");
            assert!(!r["rationale"].as_str().unwrap().is_empty(), "{r}");
            // Items are documented by their stem (`eth0: offloads` → `offloads`).
            let item = r["item"].as_str().unwrap();
            let stem = item.rsplit(": ").next().unwrap().split(" (").next().unwrap();
            assert!(doc.contains(&format!("`{stem}`")), "{name}: item `{stem}` is not in docs/recommendations.md");
        }
    }
}

#[test]
fn markdown_report_of_real_dumps_has_its_sections() {
    let f = report_of("utillinux-epyc7451");
    let md = lltune::cli::report::render_markdown(&f);
    for want in [
        "## System summary",
        "| Topology | 2 sockets × 24 cores × 2 threads |",
        "| CPU | AMD EPYC 7451 24-Core Processor (AuthenticAMD) |",
        "### NUMA nodes",
        "| 7 | 42-47,90-95 |",
        "## Services",
        "| irqbalance |",
        "## Recommendations",
        "| warning | cpu | cstates | enabled: C2",
    ] {
        assert!(md.contains(want), "missing {want:?} in:\n{md}");
    }
    let f = report_of("cnto-r640-rt-worker1");
    let md = lltune::cli::report::render_markdown(&f);
    assert!(md.contains("| isolcpus (cmdline) | 5-10 (managed_irq) |"), "{md}");
    assert!(md.contains("| Machine | ? PowerEdge R640 |"), "{md}");
    let rows = md
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(" → ") && l[2..].starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(rows, f.recommendations.len());
}

#[test]
fn scan_md_report_and_text_summary_through_the_cli() {
    let root = support::real_fixture("cnto-r740xd-worker2");
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("report.md");
    let o = lltune(&["scan", "--root", root.to_str().unwrap(), "--md-report", md.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.lines().count() < 40, "{text}");
    assert!(text.contains("advice    "), "{text}");
    let report = std::fs::read_to_string(&md).unwrap();
    assert!(report.starts_with("# lltune report: "), "{report}");
    assert!(report.contains("| Topology | 2 sockets × 16 cores × 1 threads |"), "{report}");
    // The facts module carries the same recommendations as the CLI.
    let (m, code) = support::run_module("lltune_facts", &serde_json::json!({"root": root}));
    assert_eq!(code, 0);
    let o = lltune(&["scan", "--root", root.to_str().unwrap(), "--format", "json"]);
    let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["ansible_facts"]["lltune"]["recommendations"], cli["recommendations"]);
    assert!(!cli["recommendations"].as_array().unwrap().is_empty());
}

#[test]
fn gen_config_and_audit_through_the_cli() {
    let root = support::real_fixture("hwloc-32intel64-2p8co2t");
    let dir = tempfile::tempdir().unwrap();
    let (snap_yaml, snap_json, cfg, issues) = (
        dir.path().join("s.yaml"),
        dir.path().join("s.json"),
        dir.path().join("c.yaml"),
        dir.path().join("issues.json"),
    );
    let p = |x: &PathBuf| x.to_str().unwrap().to_string();
    assert!(
        lltune(&["scan", "--root", root.to_str().unwrap(), "--format", "yaml", "-o", &p(&snap_yaml)]).status.success()
    );
    assert!(
        lltune(&["scan", "--root", root.to_str().unwrap(), "--format", "json", "-o", &p(&snap_json)]).status.success()
    );
    let o = lltune(&["gen-config", "--snapshot", &p(&snap_yaml), "-o", &p(&cfg), "--trading-nics", "enp96s0f1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = lltune(&["audit", "-c", &p(&cfg), "--snapshot", &p(&snap_json), "--output", &p(&issues)]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let v: Value = serde_json::from_slice(&std::fs::read(&issues).unwrap()).unwrap();
    assert_eq!(v["errors"], serde_json::json!([]));
    assert!(v["warnings"].is_array());
    // Against a root instead of a snapshot: the same verdict.
    let o = lltune(&["audit", "-c", &p(&cfg), "--root", root.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    // A bad config: exit 1 and the error list in --output.
    let o = lltune(&[
        "audit",
        "-c",
        config_fixture("mitigations-off-unquoted.yaml").to_str().unwrap(),
        "--snapshot",
        &p(&snap_json),
        "--output",
        &p(&issues),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&std::fs::read(&issues).unwrap()).unwrap();
    assert_eq!(v["errors"][0]["field"], "kernel.cmdline.mitigations");
    // A NIC that does not exist is refused as an option, in one line.
    let o = lltune(&["gen-config", "--snapshot", &p(&snap_yaml), "--trading-nics", "eth9"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "lltune: error: --trading-nics: no network interface eth9 on this host\n"
    );
    let o = lltune(&["audit", "-c", "/nonexistent/c.yaml", "--snapshot", &p(&snap_json)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("lltune: error: -c /nonexistent/c.yaml: cannot read"));
}

/// Each bad config, the field of its first error, and a word of the message. Audited against
/// the 2-socket Xeon dump: SMT siblings (n, n+16), nodes 0-7,16-23 and 8-15,24-31, NICs
/// enp96s0f0/1 on node 0.
const BAD_CONFIGS: &[(&str, &str, &str)] = &[
    ("mitigations-off-unquoted.yaml", "kernel.cmdline.mitigations", "YAML 1.1"),
    ("mitigations-without-safety-flag.yaml", "kernel.cmdline.mitigations", "allow_dangerous_mitigations"),
    ("scalar-for-mapping.yaml", "kernel.cmdline", "mapping"),
    ("unknown-key.yaml", "cpu.isolate_core", "unknown field"),
    ("boolean-for-string.yaml", "services.tuned", "boolean"),
    ("bad-cpulist.yaml", "cpu.isolate_cores", "invalid CPU list"),
    ("housekeeping-overlaps-isolated.yaml", "kernel.cmdline.kthread_cpus", "isolated CPUs 1"),
    ("every-cpu-isolated.yaml", "cpu.isolate_cores", "every online CPU"),
    ("cpus-not-online.yaml", "cpu.isolate_cores", "40-41"),
    ("hugepages-do-not-add-up.yaml", "memory.hugepages.per_node", "adds up to 2048"),
    ("hugepages-exceed-node-memory.yaml", "memory.hugepages.total", "must leave the OS at least"),
    ("nic-missing.yaml", "network.interfaces[0].name", "ens9f9"),
    ("irq-pin-on-isolated.yaml", "irq.manual_affinity[0].cpus", "isolated CPUs 3"),
    ("refused-argument.yaml", "kernel.extra_args.init", "refused"),
    ("wrong-version.yaml", "version", "expected 1"),
];

#[test]
fn bad_configs_fail_at_their_field() {
    let f = facts_of("hwloc-32intel64-2p8co2t");
    for (file, field, word) in BAD_CONFIGS {
        let text = std::fs::read_to_string(config_fixture(file)).unwrap();
        let r = lltune::config::audit::audit_text(&text, Some(&f));
        let first = r.errors.first().unwrap_or_else(|| panic!("{file}: no error; warnings {:#?}", r.warnings));
        assert_eq!(first.field, *field, "{file}: {:#?}", r.errors);
        assert!(first.message.contains(word), "{file}: {:?} lacks {word:?}", first.message);
    }
    // Every fixture file is in the table.
    let listed: Vec<&str> = BAD_CONFIGS.iter().map(|(f, _, _)| *f).chain(["sibling-split.yaml"]).collect();
    for e in std::fs::read_dir(config_fixture("")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(listed.contains(&name.as_str()), "{name} is not checked");
    }
}

#[test]
fn sibling_split_is_reported_with_the_word_sibling() {
    let f = facts_of("hwloc-32intel64-2p8co2t");
    let text = std::fs::read_to_string(config_fixture("sibling-split.yaml")).unwrap();
    let r = lltune::config::audit::audit_text(&text, Some(&f));
    let w = r.warnings.iter().find(|w| w.field == "cpu.isolate_cores").expect("a warning on cpu.isolate_cores");
    assert!(w.message.contains("sibling") && w.message.contains("1,17"), "{}", w.message);
}

#[test]
fn lltune_config_module_returns_a_config_that_lltune_audit_accepts() {
    let root = support::real_fixture("utillinux-epyc7451");
    let (r, code) = support::run_module(
        "lltune_config",
        &serde_json::json!({"root": root, "housekeeping_cores_per_node": "2", "_ansible_check_mode": true}),
    );
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["changed"], false);
    assert_eq!(
        r["plan"]["housekeeping"],
        "0-1,6-7,12-13,18-19,24-25,30-31,36-37,42-43,48-49,54-55,60-61,66-67,72-73,78-79,84-85,90-91"
    );
    assert_eq!(r["config"]["version"], 1);
    assert_eq!(r["config"]["kernel"]["cmdline"]["nohz_full"], r["plan"]["isolated"]);
    assert!(r["yaml"].as_str().unwrap().starts_with("# lltune config (version 1)"));
    // The data goes straight back into lltune_audit.
    let (a, code) = support::run_module("lltune_audit", &serde_json::json!({"root": root, "config": r["config"]}));
    assert_eq!(code, 0, "{a}");
    assert_eq!(a["errors"], serde_json::json!([]));
    assert_eq!(a["failed"], false);
    // Both return the config as module arguments: sysctls, and no kernel_args while the
    // generated config keeps safety.allow_grub_edit false.
    for res in [&r, &a] {
        let m = &res["module_args"];
        assert_eq!(m["lltune_sysctl"]["settings"]["kernel.timer_migration"], "0", "{m}");
        assert!(m.get("lltune_kernel_args").is_none(), "{m}");
        assert_eq!(res["not_implemented"], serde_json::json!([]), "{res}");
        assert_eq!(m["lltune_cpu"]["governor"], "performance", "{m}");
    }
    assert_eq!(r["module_args"], a["module_args"]);
    // With the flag on, lltune_audit hands lltune_kernel_args the boot arguments in file order.
    let mut config = r["config"].clone();
    config["safety"]["allow_grub_edit"] = serde_json::json!(true);
    let (a, code) = support::run_module("lltune_audit", &serde_json::json!({"root": root, "config": config}));
    assert_eq!(code, 0, "{a}");
    let k = &a["module_args"]["lltune_kernel_args"];
    assert_eq!(k["args"]["nohz_full"], r["plan"]["isolated"]);
    assert_eq!(k["args"]["nosoftlockup"], "");
    assert_eq!(k["allow_dangerous_mitigations"], false);
}

#[test]
fn lltune_config_module_refuses_bad_options() {
    let root = support::real_fixture("utillinux-epyc7451");
    for (args, msg) in [
        (serde_json::json!({"root": root, "trading_nics": "eth9"}), "trading_nics: no network interface eth9"),
        (serde_json::json!({"root": root, "housekeeping_cores_per_node": 0}), "housekeeping_cores_per_node"),
        (serde_json::json!({"root": root, "housekeeping": 1}), "housekeeping"),
    ] {
        let (r, code) = support::run_module("lltune_config", &args);
        assert_eq!((code, &r["failed"]), (1, &Value::Bool(true)), "{r}");
        assert!(r["msg"].as_str().unwrap().contains(msg), "{r}");
    }
}

#[test]
fn lltune_audit_module_fails_with_the_error_list() {
    let root = support::real_fixture("hwloc-32intel64-2p8co2t");
    // What a playbook's unquoted `mitigations: off` becomes (Ansible reads YAML 1.1): false.
    let config = serde_json::json!({"version": 1, "kernel": {"cmdline": {"mitigations": false}}, "cpu": {"isolate_cores": "0-31"}});
    let (r, code) = support::run_module("lltune_audit", &serde_json::json!({"root": root, "config": config}));
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["failed"], true);
    let fields: Vec<&str> = r["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["kernel.cmdline.mitigations", "cpu.isolate_cores"], "{r}");
    assert!(r["msg"].as_str().unwrap().starts_with("config has 2 error(s): kernel.cmdline.mitigations: "), "{r}");
    // config_file is read under root.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/lltune")).unwrap();
    std::fs::write(dir.path().join("etc/lltune/config.yaml"), "version: 1\nservices:\n  irqbalance: false\n").unwrap();
    let (r, code) = support::run_module(
        "lltune_audit",
        &serde_json::json!({"root": dir.path(), "config_file": "/etc/lltune/config.yaml"}),
    );
    assert_eq!(code, 0, "{r}");
    let (r, code) = support::run_module(
        "lltune_audit",
        &serde_json::json!({"root": dir.path(), "config_file": "/etc/lltune/none.yaml"}),
    );
    assert_eq!(code, 1, "{r}");
    assert!(r["msg"].as_str().unwrap().starts_with("config_file: "), "{r}");
    let (r, code) = support::run_module("lltune_audit", &serde_json::json!({"root": dir.path()}));
    assert_eq!((code, r["msg"].as_str().unwrap()), (1, "config or config_file is required"));
}

/// gen-config never lowers a ceiling the host already has: the Debian VM fixture has
/// fs.file-max 2,466,170 (above lltune's 2,097,152) and somaxconn 4096 (below 65,535).
#[test]
fn gen_config_keeps_higher_host_values() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/debian12-vm");
    assert_eq!(std::fs::read_to_string(root.join("proc/sys/fs/file-max")).unwrap().trim(), "2466170");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    let o = lltune(&["gen-config", "--root", root.to_str().unwrap(), "-o", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&cfg).unwrap();
    let (c, issues) = lltune::config::parse(&text);
    assert!(issues.is_empty(), "{issues:?}");
    let s = c.sysctls();
    assert_eq!(s["fs.file-max"].0, "2466170", "{text}");
    assert_eq!(s["net.core.somaxconn"].0, "65535");
    assert_eq!(s["vm.max_map_count"].0, "262144");
}

#[test]
fn gen_config_proposes_a_governor_only_where_the_host_has_cpufreq() {
    // The R640 dump has no cpufreq folders: no governor to propose (lltune_cpu would refuse it).
    let r640 = lltune::config::generate::generate(&report_of("cnto-r640-rt-worker1").facts, &Default::default());
    assert!(r640.contains("  # governor: this host shows no cpufreq"), "{r640}");
    let (c, issues) = lltune::config::parse(&r640);
    assert!(issues.is_empty(), "{issues:?}");
    assert!(c.cpu.unwrap().governor.is_none());
    // A host with cpufreq gets one.
    let vm = lltune::config::generate::generate(
        &lltune::facts::collect(
            &lltune::host::Host::new(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/intel-pstate-2node"),
            )
            .unwrap(),
            Default::default(),
        )
        .0,
        &Default::default(),
    );
    assert!(vm.contains("  governor:\n    target: \"performance\""), "{vm}");
}
