//! Analysis end to end: recommendations and reports on the real dumps, gen-config on every
//! dump auditing clean, the bad configs of tests/fixtures/configs each failing at its field,
//! the seed's documented CLI behaviours (exit codes, --output, --md-report), and the seed's
//! golden host (tests/fixtures/hosts/seed-golden): its findings pinned, set against the seed's,
//! and a config written the seed's way audited and applied on it.

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
        // Issue 21: lltune_config returns (and translates) the value built beside the text,
        // never the text read back: the two are the same config, key for key, in file order.
        let opts = lltune::config::generate::GenOptions { source: name.to_string(), ..Default::default() };
        let (with_source, value) = lltune::config::generate::generate_with_value(&f, &opts);
        let read_back: Value = serde_yaml::from_str(&with_source).unwrap();
        assert_eq!(value, read_back, "{name}: the generated value is not what its text says\n{with_source}");
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        assert_eq!(keys(&value), keys(&read_back), "{name}: sections out of file order");
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
        "kernel/processor.max_cstate",
        "kernel/intel_pstate",
        "kernel/isolcpus",
        "kernel/rcu_nocbs",
        "irq/default_smp_affinity",
    ] {
        assert!(!items.contains(&done.to_string()), "{done} in {items:?}");
    }
    // idle=poll is set: the one command-line finding a tuned host gets, an info (as the seed).
    let idle = f.recommendations.iter().find(|r| r.item == "idle").expect("idle=poll info");
    assert_eq!((idle.current.as_str(), idle.severity), ("poll", Severity::Info));
    assert!(idle.target.starts_with("consider removing"), "{}", idle.target);
    assert!(items.len() <= 9, "{items:?}");
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
    // The real dumps, and the seed's golden host.
    let reports = DUMPS.iter().map(|n| (*n, report_of(n))).chain([("seed-golden", golden_report().0)]);
    for (name, f) in reports {
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
    assert!(md.contains("| isolcpus (cmdline) | 5-10 (managed\\_irq) |"), "{md}");
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
    assert!(text.contains("findings  "), "{text}");
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
    // Against a snapshot the module planning cannot run, and the audit says so.
    assert!(
        v["warnings"].as_array().unwrap().iter().any(|w| w["message"].as_str().unwrap().contains("only with --root")),
        "{v}"
    );
    // Against the root itself the audit also runs each module's planning, as apply does: this
    // dump has no captured ethtool state, so lltune_nic cannot act on its NICs, and the audit
    // refuses what `lltune apply --plan` refuses, with the same words (see: issue 17).
    let o = lltune(&["audit", "-c", &p(&cfg), "--root", root.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}");
    let why = "network.interfaces: lltune_nic would refuse this on the host: enp96s0f0: no captured ethtool state";
    assert!(out.contains(why), "{out}");
    let o = lltune(&["apply", "--plan", "-c", &p(&cfg), "--root", root.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains(why), "{}", String::from_utf8_lossy(&o.stderr));
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
    // Both return the config as module arguments: no kernel_args while the generated config
    // keeps safety.allow_grub_edit false, and no sysctls, as this dump has no /proc/sys: they
    // are named in `skipped` instead (the same fitting `lltune apply` does).
    for res in [&r, &a] {
        let m = &res["module_args"];
        assert!(m.get("lltune_sysctl").is_none(), "{m}");
        let skipped: Vec<&str> = res["skipped_items"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert!(
            skipped.iter().any(|s| s.contains("(kernel.timer_migration): not present on this kernel")),
            "{skipped:?}"
        );
        assert!(m.get("lltune_kernel_args").is_none(), "{m}");
        assert_eq!(res["not_implemented"], serde_json::json!([]), "{res}");
        assert_eq!(m["lltune_cpu"]["governor"], "performance", "{m}");
    }
    assert_eq!(r["module_args"], a["module_args"]);
    // With the flag on, lltune_audit hands lltune_kernel_args the boot arguments. This dump has
    // no boot configuration to edit: the audit module checks the config, not the modules'
    // planning (its binary does not carry it), so it passes; lltune_kernel_args refuses in
    // check mode, as the tune role's plan pass runs it, and `lltune audit` (the CLI, which
    // runs the planning in-process) says the same at kernel.cmdline (see: issue 17).
    let mut config = r["config"].clone();
    config["safety"]["allow_grub_edit"] = serde_json::json!(true);
    let (a, code) = support::run_module("lltune_audit", &serde_json::json!({"root": root, "config": config}));
    assert_eq!(code, 0, "{a}");
    let mut planned = a["module_args"]["lltune_kernel_args"].clone();
    planned["root"] = serde_json::json!(root);
    planned["_ansible_check_mode"] = serde_json::json!(true);
    let (k, code) = support::run_module("lltune_kernel_args", &planned);
    assert_eq!(code, 1, "{k}");
    assert!(k["msg"].as_str().unwrap().contains("no boot configuration found to edit"), "{k}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, serde_json::to_string(&config).unwrap()).unwrap();
    let o = lltune(&["audit", "-c", cfg.to_str().unwrap(), "--root", root.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(
            "kernel.cmdline: lltune_kernel_args would refuse this on the host: no boot configuration found to edit"
        ),
        "{out}"
    );
    let with_boot = support::copy_fixture(&root);
    let boot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/boot/rhel9-bls");
    for part in ["etc/default", "etc/kernel", "boot"] {
        std::fs::create_dir_all(with_boot.path().join(part).parent().unwrap()).unwrap();
        let st = Command::new("cp").arg("-a").arg(boot.join(part)).arg(with_boot.path().join(part)).status().unwrap();
        assert!(st.success());
    }
    let (a, code) =
        support::run_module("lltune_audit", &serde_json::json!({"root": with_boot.path(), "config": config}));
    assert_eq!(code, 0, "{a}");
    let k = &a["module_args"]["lltune_kernel_args"];
    assert_eq!(k["args"]["nohz_full"], r["plan"]["isolated"]);
    assert_eq!(k["args"]["nosoftlockup"], "");
    assert_eq!(k["allow_dangerous_mitigations"], false);
    // lltune_audit audits; it proposes nothing: the options of lltune_config are not its own.
    for option in ["generate", "housekeeping_cores_per_node", "trading_nics"] {
        let (e, code) = support::run_module("lltune_audit", &serde_json::json!({"root": root, option: true}));
        assert_eq!(code, 1, "{e}");
        assert!(
            e["msg"]
                .as_str()
                .unwrap()
                .starts_with(&format!("unsupported option {option}; supported options: config, option_names, root")),
            "{e}"
        );
    }
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
    // The root must be a host tree (it has a proc folder).
    let dir = tempfile::tempdir().unwrap();
    let (r, code) =
        support::run_module("lltune_audit", &serde_json::json!({"root": dir.path(), "config": {"version": 1}}));
    assert_eq!(code, 1, "{r}");
    assert!(r["msg"].as_str().unwrap().contains("not a host tree: it has neither a proc nor a sys folder"), "{r}");
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    let config = serde_json::json!({"version": 1, "services": {"irqbalance": false}});
    let (r, code) = support::run_module("lltune_audit", &serde_json::json!({"root": dir.path(), "config": config}));
    assert_eq!(code, 0, "{r}");
    // Issue 21: no YAML in the module binaries. A file on the target is not read: the
    // option is gone (the config comes as a mapping, as JSON), and a string is no mapping.
    std::fs::create_dir_all(dir.path().join("etc/lltune")).unwrap();
    std::fs::write(dir.path().join("etc/lltune/config.yaml"), "version: 1\n").unwrap();
    let (r, code) = support::run_module(
        "lltune_audit",
        &serde_json::json!({"root": dir.path(), "config_file": "/etc/lltune/config.yaml"}),
    );
    assert_eq!(code, 1, "{r}");
    assert!(
        r["msg"]
            .as_str()
            .unwrap()
            .starts_with("unsupported option config_file; supported options: config, option_names, root"),
        "{r}"
    );
    let (r, code) =
        support::run_module("lltune_audit", &serde_json::json!({"root": dir.path(), "config": "version: 1\n"}));
    assert_eq!((code, r["msg"].as_str().unwrap()), (1, "config: expected a mapping, got a string"), "{r}");
    let (r, code) = support::run_module("lltune_audit", &serde_json::json!({"root": dir.path()}));
    assert_eq!(code, 1, "{r}");
    assert!(r["msg"].as_str().unwrap().starts_with("config is required: the config as a mapping"), "{r}");
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

/// The seed's golden host (`tests/fixtures/hosts/seed-golden`, written by
/// `tests/fixtures/gen-seed-golden-host.sh`): every finding, exactly, in order. A change to any
/// rule that touches this host shows up here; update the list only with docs/recommendations.md.
/// Columns: category, item, severity, impact, risk, current, target.
const SEED_GOLDEN: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    ("cpu", "governor", "warning", "high", "safe", "performance (0-7), powersave (8-15)", "performance"),
    (
        "cpu",
        "energy_performance_preference",
        "warning",
        "medium",
        "safe",
        "balance_performance (8-15), performance (0-7)",
        "performance",
    ),
    ("cpu", "turbo", "info", "medium", "potentially_disruptive", "on", "off"),
    (
        "cpu",
        "cstates",
        "warning",
        "high",
        "potentially_disruptive",
        "enabled: C6 (170 us)",
        "C1 at most (processor.max_cstate=1 intel_idle.max_cstate=1)",
    ),
    ("kernel", "nohz_full", "warning", "high", "potentially_disruptive", "unset", "2-7"),
    ("kernel", "rcu_nocbs", "warning", "medium", "potentially_disruptive", "2-5", "2-7"),
    ("kernel", "skew_tick", "info", "medium", "safe", "unset", "1"),
    ("kernel", "tsc", "info", "low", "potentially_disruptive", "unset", "reliable"),
    ("kernel", "nosoftlockup", "info", "low", "safe", "unset", "nosoftlockup"),
    ("kernel", "nmi_watchdog", "warning", "medium", "safe", "1 (kernel.nmi_watchdog)", "0"),
    ("kernel", "transparent_hugepage", "info", "medium", "potentially_disruptive", "unset", "never"),
    ("kernel", "idle", "info", "medium", "high_risk", "halt", "poll (optional)"),
    ("kernel", "intel_pstate", "info", "low", "potentially_disruptive", "unset", "disable"),
    (
        "kernel",
        "mitigations",
        "info",
        "medium",
        "high_risk",
        "auto (active: spec_store_bypass, spectre_v1, spectre_v2)",
        "off (only on hosts that run no untrusted code)",
    ),
    ("kernel", "workqueue cpumask", "warning", "medium", "safe", "0-15 (includes isolated 2-7)", "0-1,8-15"),
    ("kernel", "writeback cpumask", "warning", "medium", "safe", "0-15 (includes isolated 2-7)", "0-1,8-15"),
    ("kernel", "kernel.timer_migration", "info", "low", "safe", "1", "0"),
    ("kernel", "vm.stat_interval", "info", "low", "safe", "1", "10"),
    ("kernel", "kernel.hung_task_timeout_secs", "info", "low", "safe", "120", "600"),
    ("memory", "transparent_hugepage", "warning", "high", "potentially_disruptive", "always", "never"),
    ("memory", "numa_balancing", "info", "medium", "safe", "on", "off"),
    (
        "memory",
        "hugepages",
        "info",
        "medium",
        "safe",
        "none reserved",
        "per-node 2 MB (or 1 GB) pages for the application",
    ),
    ("memory", "vm.max_map_count", "info", "low", "safe", "65530", "262144"),
    ("network", "net.core.busy_poll", "warning", "high", "potentially_disruptive", "0", "50"),
    ("network", "net.core.busy_read", "warning", "high", "potentially_disruptive", "0", "50"),
    ("network", "net.core.wmem_max", "info", "low", "safe", "212992", "67108864"),
    ("network", "net.core.netdev_max_backlog", "info", "low", "safe", "1000", "250000"),
    ("network", "net.ipv4.tcp_timestamps", "info", "low", "potentially_disruptive", "1", "0"),
    ("network", "net.ipv4.tcp_sack", "info", "low", "potentially_disruptive", "1", "0"),
    ("nic", "ens1f0: offloads", "warning", "medium", "potentially_disruptive", "gro, tso, gso on", "gro, tso, gso off"),
    (
        "nic",
        "ens1f0: coalescing",
        "warning",
        "high",
        "potentially_disruptive",
        "rx-usecs 8, tx-usecs 16, adaptive-rx on",
        "rx-usecs 0, tx-usecs 0, adaptive-rx off, adaptive-tx off",
    ),
    ("nic", "ens1f0: rings", "info", "low", "potentially_disruptive", "rx 1024, tx 1024", "rx 8192, tx 8192"),
    ("nic", "ens5f0: offloads", "warning", "medium", "potentially_disruptive", "gro, tso, gso on", "gro, tso, gso off"),
    (
        "nic",
        "ens5f0: coalescing",
        "warning",
        "high",
        "potentially_disruptive",
        "rx-usecs 60, tx-usecs 150, adaptive-rx on",
        "rx-usecs 0, tx-usecs 0, adaptive-rx off, adaptive-tx off",
    ),
    ("nic", "ens5f0: rings", "info", "low", "potentially_disruptive", "rx 512, tx 512", "rx 4096, tx 2048"),
    (
        "irq",
        "ens5f0: affinity",
        "warning",
        "medium",
        "safe",
        "8 IRQs on CPUs 0-7 (0-7 off node 1)",
        "CPUs of node 1 (8-15)",
    ),
    (
        "irq",
        "irqs_on_isolated_cpus",
        "warning",
        "high",
        "potentially_disruptive",
        "12 IRQs (0 managed) may hit isolated CPUs 2-7: 103 (mlx5_comp2@pci:0000:3b:00.0), 104 (mlx5_comp3@pci:0000:3b:00.0), 105 (mlx5_comp4@pci:0000:3b:00.0), 106 (mlx5_comp5@pci:0000:3b:00.0), 107 (mlx5_comp6@pci:0000:3b:00.0), 108 (mlx5_comp7@pci:0000:3b:00.0), 122 (ens5f0-2), 123 (ens5f0-3), +4 more",
        "housekeeping CPUs 0-1,8-15",
    ),
    ("irq", "default_smp_affinity", "warning", "medium", "safe", "0-15 (includes isolated 2-7)", "0-1,8-15"),
    (
        "services",
        "irqbalance",
        "warning",
        "high",
        "potentially_disruptive",
        "running; bans none",
        "stopped and disabled, or IRQBALANCE_BANNED_CPULIST=2-7",
    ),
    (
        "services",
        "tuned",
        "info",
        "medium",
        "safe",
        "not active",
        "active with the latency-performance profile (or cpu-partitioning / realtime with isolated cores)",
    ),
    ("limits", "memlock", "warning", "high", "safe", "soft 65536, hard 65536", "unlimited"),
    ("limits", "nproc", "info", "low", "safe", "soft 4096, hard unset", "65536"),
    ("limits", "rtprio", "info", "low", "safe", "soft unset, hard unset", "99"),
    (
        "time",
        "ptp",
        "info",
        "low",
        "safe",
        "PTP clocks ptp0 present, ptp4l not running",
        "ptp4l on the timing NIC, phc2sys to the system clock",
    ),
];

fn golden_report() -> (Report, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/seed-golden");
    let host = Host::new(&root).unwrap();
    analysis::analyse(&host, ScanOptions::default())
}

#[test]
fn seed_golden_host_gives_exactly_these_findings() {
    let (report, warnings) = golden_report();
    assert!(warnings.is_empty(), "the fixture reads cleanly: {warnings:#?}");
    let f = &report.facts;
    // The host the seed describes: 2 nodes × 8 CPUs, mixed governors, its command line, 2 NICs.
    assert_eq!((f.cpu.sockets, f.cpu.cores_per_socket, f.cpu.threads_per_core), (Some(2), Some(8), Some(1)));
    assert_eq!(f.numa.nodes.iter().map(|n| n.cpus.to_string()).collect::<Vec<_>>(), ["0-7", "8-15"]);
    assert_eq!(f.cpu.governors.keys().collect::<Vec<_>>(), ["performance", "powersave"]);
    assert!(
        f.kernel
            .cmdline
            .as_deref()
            .unwrap()
            .ends_with("isolcpus=managed_irq,domain,2-7 rcu_nocbs=2-5 mitigations=auto idle=halt")
    );
    let nics: Vec<(&str, &str, Option<i64>)> = f
        .nics
        .iter()
        .filter(|n| !n.r#virtual)
        .map(|n| (n.name.as_deref().unwrap(), n.driver.as_deref().unwrap(), n.numa_node))
        .collect();
    assert_eq!(nics, [("ens1f0", "mlx5_core", Some(0)), ("ens5f0", "sfc", Some(1))]);

    let got: Vec<Value> = report.recommendations.iter().map(|r| serde_json::to_value(r).unwrap()).collect();
    let got: Vec<[&str; 7]> = got
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap();
            [s("category"), s("item"), s("severity"), s("impact"), s("risk"), s("current"), s("target")]
        })
        .collect();
    let want: Vec<[&str; 7]> = SEED_GOLDEN.iter().map(|&(a, b, c, d, e, f, g)| [a, b, c, d, e, f, g]).collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "finding {i} differs");
    }
    assert_eq!(got.len(), want.len(), "got {:#?}", &got[want.len().min(got.len())..]);
}

/// What the seed reports on its golden host (its rules read against the fixture), and the
/// lltune finding it corresponds to: `same` = same finding and severity; `differs` = lltune
/// deliberately rates or words it otherwise (docs/recommendations.md, "The seed's rules").
/// Columns: seed category, seed item, seed severity, lltune `category/item`, lltune severity.
const SEED_SAYS: &[(&str, &str, &str, &str, &str)] = &[
    ("cpu", "governor", "warning", "cpu/governor", "warning"),
    ("kernel", "isolcpus/nohz_full", "warning", "kernel/nohz_full", "warning"),
    ("kernel", "skew_tick", "info", "kernel/skew_tick", "info"),
    ("kernel", "tsc", "info", "kernel/tsc", "info"),
    ("kernel", "nosoftlockup", "info", "kernel/nosoftlockup", "info"),
    ("kernel", "nmi_watchdog", "info", "kernel/nmi_watchdog", "warning"),
    ("kernel", "intel_pstate", "info", "kernel/intel_pstate", "info"),
    ("kernel", "rcu_nocbs", "info", "kernel/rcu_nocbs", "warning"),
    ("kernel", "idle=poll", "info", "kernel/idle", "info"),
    ("cpu", "turbo", "info", "cpu/turbo", "info"),
    ("memory", "numa_balancing", "info", "memory/numa_balancing", "info"),
    ("services", "irqbalance", "warning", "services/irqbalance", "warning"),
    ("nic", "ens1f0:offloads", "warning", "nic/ens1f0: offloads", "warning"),
    ("nic", "ens1f0:coalescing", "warning", "nic/ens1f0: coalescing", "warning"),
    ("nic", "ens1f0:ring_rx", "info", "nic/ens1f0: rings", "info"),
    ("nic", "ens1f0:ring_tx", "info", "nic/ens1f0: rings", "info"),
    ("nic", "ens5f0:offloads", "warning", "nic/ens5f0: offloads", "warning"),
    ("nic", "ens5f0:coalescing", "warning", "nic/ens5f0: coalescing", "warning"),
    ("nic", "ens5f0:ring_rx", "info", "nic/ens5f0: rings", "info"),
    ("nic", "ens5f0:ring_tx", "info", "nic/ens5f0: rings", "info"),
    ("irq", "120:ens5f0-0", "warning", "irq/ens5f0: affinity", "warning"),
    ("services", "tuned", "info", "services/tuned", "info"),
    ("time", "ptp", "info", "time/ptp", "info"),
    ("kernel", "mitigations", "info", "kernel/mitigations", "info"),
    ("kernel", "transparent_hugepage", "warning", "kernel/transparent_hugepage", "info"),
    ("sysctl", "busy_poll", "warning", "network/net.core.busy_poll", "warning"),
    ("sysctl", "busy_read", "warning", "network/net.core.busy_read", "warning"),
    ("sysctl", "tcp_timestamps", "info", "network/net.ipv4.tcp_timestamps", "info"),
    ("sysctl", "tcp_sack", "info", "network/net.ipv4.tcp_sack", "info"),
    ("sysctl", "wmem_max", "info", "network/net.core.wmem_max", "info"),
    ("sysctl", "netdev_max_backlog", "info", "network/net.core.netdev_max_backlog", "info"),
    ("sysctl", "max_map_count", "info", "memory/vm.max_map_count", "info"),
    ("limits", "memlock", "warning", "limits/memlock", "warning"),
];

#[test]
fn seed_golden_host_matches_the_seed_or_says_why_not() {
    let (report, _) = golden_report();
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/recommendations.md")).unwrap();
    let seed_section = doc.split("## The seed's rules").nth(1).expect("docs/recommendations.md: The seed's rules");
    for (cat, item, seed_sev, ours, our_sev) in SEED_SAYS {
        let r = report
            .recommendations
            .iter()
            .find(|r| format!("{}/{}", r.category, r.item) == *ours)
            .unwrap_or_else(|| panic!("the seed's {cat}/{item} has no lltune finding {ours}"));
        assert_eq!(r.severity.as_str(), *our_sev, "{ours}");
        if seed_sev != our_sev {
            // A deliberate difference: its row in the docs says why.
            let row = seed_section
                .lines()
                .find(|l| l.starts_with(&format!("| `{cat}` `{item}`")))
                .unwrap_or_else(|| panic!("no row for the seed's `{cat}` `{item}` in The seed's rules"));
            assert!(row.contains("differs"), "{ours}: {row}");
        }
    }
    // What the seed does not report here, lltune does not either: at its boundaries.
    for quiet in ["network/net.core.rmem_max", "network/net.core.somaxconn", "network/fs.file-max", "limits/nofile"] {
        assert!(!report.recommendations.iter().any(|r| format!("{}/{}", r.category, r.item) == quiet), "{quiet}");
    }
}

/// Findings follow the seed's boundaries; gen-config still proposes lltune's targets. On the
/// golden host, values the seed judged fine get no finding and are raised all the same.
#[test]
fn seed_golden_host_gen_config_proposes_the_targets() {
    let (report, _) = golden_report();
    let text = lltune::config::generate::generate(&report.facts, &Default::default());
    let r = lltune::config::audit::audit_text(&text, Some(&report.facts));
    assert!(r.errors.is_empty(), "{:#?}\n{text}", r.errors);
    let (c, issues) = lltune::config::parse(&text);
    assert!(issues.is_empty(), "{issues:?}");
    let s = c.sysctls();
    for (name, now, proposed) in [
        ("net.core.rmem_max", "16777216", "67108864"),
        ("net.core.somaxconn", "4096", "65535"),
        ("fs.file-max", "1000000", "2097152"),
    ] {
        assert_eq!(report.facts.sysctl[name].as_deref(), Some(now), "{name}");
        assert_eq!(s[name].0, proposed, "{name}\n{text}");
        assert!(!report.recommendations.iter().any(|r| r.item == name), "{name}: no finding at the seed's boundary");
    }
    let limits = c.memory.and_then(|m| m.limits).expect("memory.limits");
    assert_eq!(limits.nofile.map(|v| v.0), Some("1048576".to_string()));
    assert!(!report.recommendations.iter().any(|r| r.item == "nofile"), "nofile 65536 is the seed's boundary");
}

/// A config written the seed's way for its golden host: `per_node` keyed by bare node numbers
/// (unquoted and quoted), `rdma.devices` as a list of names.
const SEED_STYLE_CONFIG: &str = r#"version: 1
cpu:
  governor:
    target: performance
  isolate_cores: "2-7"
kernel:
  cmdline:
    isolcpus: "managed_irq,domain,2-7"
    nohz_full: "2-7"
    rcu_nocbs: "2-7"
    kthread_cpus: "0-1,8-15"
    irqaffinity: "0-1,8-15"
memory:
  thp_runtime: never
  hugepages:
    size_kb: "2048"
    total: 2048
    per_node:
      0: 1024
      "1": 1024
rdma:
  devices:
    - mlx5_0
services:
  irqbalance: false
safety:
  allow_grub_edit: false
"#;

#[test]
fn seed_style_config_audits_and_applies_on_the_golden_host() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/seed-golden");
    let dir = tempfile::tempdir().unwrap();
    let (cfg, issues) = (dir.path().join("seed.yaml"), dir.path().join("issues.json"));
    let p = |x: &Path| x.to_str().unwrap().to_string();
    std::fs::write(&cfg, SEED_STYLE_CONFIG).unwrap();
    let o = lltune(&["audit", "-c", &p(&cfg), "--root", &p(&golden), "--output", &p(&issues)]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let v: Value = serde_json::from_slice(&std::fs::read(&issues).unwrap()).unwrap();
    assert_eq!(v["errors"], serde_json::json!([]));
    // The one warning: the boot command line is left alone without safety.allow_grub_edit.
    let warned: Vec<&str> = v["warnings"].as_array().unwrap().iter().map(|w| w["field"].as_str().unwrap()).collect();
    assert_eq!(warned, ["safety.allow_grub_edit"], "{v}");

    // Applied to a copy: huge pages land on both nodes, and the findings it addresses go away,
    // the tuned one included (lltune's boot unit now keeps the settings).
    let copy = support::host_fixture("seed-golden");
    let o = lltune(&["apply", "-c", &p(&cfg), "--root", &p(copy.path())]);
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    for node in [0, 1] {
        let f = copy.path().join(format!("sys/devices/system/node/node{node}/hugepages/hugepages-2048kB/nr_hugepages"));
        assert_eq!(std::fs::read_to_string(f).unwrap().trim(), "1024", "node {node}");
    }
    let after = analysis::analyse(&Host::new(copy.path()).unwrap(), ScanOptions::default()).0;
    let items: Vec<String> = after.recommendations.iter().map(|r| format!("{}/{}", r.category, r.item)).collect();
    for gone in ["cpu/governor", "memory/transparent_hugepage", "services/tuned"] {
        assert!(!items.contains(&gone.to_string()), "{gone} in {items:?}");
    }

    // A node the host lacks, keyed the seed's way: an error at that key.
    std::fs::write(&cfg, SEED_STYLE_CONFIG.replace("      \"1\": 1024", "      2: 1024")).unwrap();
    let o = lltune(&["audit", "-c", &p(&cfg), "--root", &p(&golden), "--output", &p(&issues)]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&std::fs::read(&issues).unwrap()).unwrap();
    assert_eq!(v["errors"][0]["field"], "memory.hugepages.per_node.2", "{v}");
    assert_eq!(v["errors"][0]["message"], "this host has no NUMA node 2", "{v}");
}

/// Every host tree of the project (fixture hosts with a proc or sys folder, the real dumps).
fn host_trees() -> Vec<PathBuf> {
    let hosts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&hosts)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("proc").is_dir() || p.join("sys").is_dir())
        .collect();
    out.sort();
    out.extend(DUMPS.iter().map(|d| support::real_fixture(d)));
    out
}

/// The same tree, tuned tighter than lltune's targets: C-states limited to C0 on the command
/// line, more busy polling, larger buffers and tables, the hung-task detector off.
fn tighten(root: &Path) {
    let cmdline = std::fs::read_to_string(root.join("proc/cmdline")).unwrap_or_default();
    let line = format!("{} processor.max_cstate=0 intel_idle.max_cstate=0\n", cmdline.trim_end());
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(root.join("proc/cmdline"), line).unwrap();
    for (path, value) in [
        ("net/core/busy_poll", "100"),
        ("net/core/busy_read", "100"),
        ("net/core/rmem_max", "1073741824"),
        ("net/core/wmem_max", "1073741824"),
        ("net/core/somaxconn", "131072"),
        ("net/core/netdev_max_backlog", "500000"),
        ("fs/file-max", "9999999"),
        ("vm/stat_interval", "120"),
        ("vm/max_map_count", "1000000"),
        ("kernel/hung_task_timeout_secs", "0"),
    ] {
        let p = root.join("proc/sys").join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{value}\n")).unwrap();
    }
}

/// See: issue 17. gen-config on every host tree, as found and tuned tighter than lltune's
/// targets: no generated value is looser than the host's where tighter is defined (C-state
/// limits lower, polling, buffers, tables and intervals higher, the hung-task detector off),
/// and the findings it embeds propose its own core plan (isolated and housekeeping CPUs), for
/// the default plan and a wider one.
#[test]
fn gen_config_never_loosens_the_host_and_its_findings_follow_its_plan() {
    let higher = [
        "net.core.busy_poll",
        "net.core.busy_read",
        "net.core.rmem_max",
        "net.core.wmem_max",
        "net.core.somaxconn",
        "net.core.netdev_max_backlog",
        "fs.file-max",
        "vm.stat_interval",
        "vm.max_map_count",
    ];
    let mut checked = 0;
    for tree in host_trees() {
        for tight in [false, true] {
            let dir = support::copy_fixture(&tree);
            let root = dir.path();
            if tight {
                tighten(root);
            }
            let f = analysis::analyse(&Host::new(root).unwrap(), ScanOptions::default()).0.facts;
            // A second, wider plan on the trees as found: the findings follow whichever plan.
            for per_node in if tight { &["1"][..] } else { &["1", "2"][..] } {
                let cfg = root.join("made.yaml");
                let o = lltune(&[
                    "gen-config",
                    "--root",
                    root.to_str().unwrap(),
                    "--housekeeping-cores-per-node",
                    *per_node,
                    "-o",
                    cfg.to_str().unwrap(),
                ]);
                let what = format!("{} (tight {tight}, {per_node} per node)", tree.display());
                assert!(o.status.success(), "{what}: {}", String::from_utf8_lossy(&o.stderr));
                let text = std::fs::read_to_string(&cfg).unwrap();
                let (c, issues) = lltune::config::parse(&text);
                assert!(issues.is_empty(), "{what}: {issues:?}");
                let num = |v: Option<&str>| v.and_then(|v| v.trim().parse::<u64>().ok());
                let host_sysctl = |k: &str| num(f.sysctl.get(k).and_then(|v| v.as_deref()));
                let sysctls = c.sysctls();
                for key in higher {
                    if let (Some(now), Some((made, _))) = (host_sysctl(key), sysctls.get(key)) {
                        let made = num(Some(made)).unwrap();
                        assert!(made >= now, "{what}: {key} {now} on the host, generated {made}");
                        checked += 1;
                    }
                }
                if host_sysctl("kernel.hung_task_timeout_secs") == Some(0) {
                    assert_eq!(sysctls["kernel.hung_task_timeout_secs"].0, "0", "{what}");
                }
                let host_arg = |k: &str| f.kernel.args.get(k).and_then(|v| v.last()).and_then(|v| num(v.as_deref()));
                for key in ["processor.max_cstate", "intel_idle.max_cstate"] {
                    if let (Some(now), Some(made)) = (host_arg(key), c.kernel_arg(key).flatten()) {
                        let made = num(Some(made)).unwrap();
                        assert!(made <= now, "{what}: {key}={now} running, generated {made}");
                        checked += 1;
                    }
                }
                let limit = c.cpu.as_ref().and_then(|c| c.cstate_limit).unwrap();
                for now in ["processor.max_cstate", "intel_idle.max_cstate"].iter().filter_map(|k| host_arg(k)) {
                    assert!(u64::from(limit) <= now, "{what}: cpu.cstate_limit {limit}, the host allows C{now}");
                }

                // The plan the config writes, and the findings it embeds.
                let plan_line = |label: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(&format!("#   {label}:")))
                        .map(|v| v.trim().to_string())
                        .unwrap()
                };
                let (iso, hk) = (plan_line("isolated"), plan_line("housekeeping"));
                let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
                let recs = doc["recommendations"].as_sequence().cloned().unwrap_or_default();
                for r in &recs {
                    let (item, target) = (r["item"].as_str().unwrap(), r["target"].as_str().unwrap());
                    match item {
                        "nohz_full" | "rcu_nocbs" => assert_eq!(target, iso, "{what}: {item}"),
                        "isolcpus" | "isolcpus.managed_irq" | "isolcpus.domain" => {
                            assert!(target.ends_with(&format!(",{iso}")), "{what}: {item} -> {target}, plan {iso}")
                        }
                        "irqs_on_isolated_cpus" => assert_eq!(target, format!("housekeeping CPUs {hk}"), "{what}"),
                        "default_smp_affinity" => assert_eq!(target, hk, "{what}"),
                        "isolation_leaves_no_housekeeping" => assert_eq!(target, format!("housekeeping {hk}")),
                        "irqbalance" if target.contains('=') => {
                            assert!(target.ends_with(&format!("={iso}")), "{what}: {target}")
                        }
                        _ => continue,
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 200, "only {checked} comparisons made");
}

/// See: issue 17. What the audit accepts on a host tree, `lltune apply --plan` carries out, and
/// what apply refuses the audit refuses too: on every host tree of the project, for the config
/// gen-config proposes (boot edits off and on) and a config of every section, exit codes agree.
#[test]
fn audit_and_apply_plan_agree_on_every_host_tree() {
    let every_section = "version: 1\ncpu:\n  governor: {target: performance}\n  cstate_limit: 1\nkernel:\n  cmdline:\n    skew_tick: \"1\"\nmemory:\n  thp_runtime: never\n  swap_disable: true\n  limits: {nofile: 1048576}\nnetwork:\n  sysctl:\n    busy_poll: 50\nirq:\n  avoid_cores_for_irqs: \"1\"\nservices:\n  irqbalance: false\nsafety:\n  allow_grub_edit: true\n";
    let mut seen = [0usize; 2];
    for tree in host_trees() {
        let dir = support::copy_fixture(&tree);
        let root = dir.path();
        let r = root.to_str().unwrap();
        let o = lltune(&["gen-config", "--root", r]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let generated = String::from_utf8_lossy(&o.stdout).into_owned();
        let cfgs = [
            generated.clone(),
            generated.replace("allow_grub_edit: false", "allow_grub_edit: true"),
            every_section.into(),
        ];
        for (n, text) in cfgs.iter().enumerate() {
            let cfg = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(cfg.path(), text).unwrap();
            let c = cfg.path().to_str().unwrap();
            let audit = lltune(&["audit", "-c", c, "--root", r]);
            let plan = lltune(&["apply", "--plan", "-c", c, "--root", r]);
            let (a, p) = (audit.status.code(), plan.status.code());
            assert_eq!(
                a,
                p,
                "{} config {n}: audit {a:?}, apply --plan {p:?}\naudit: {}\napply: {}{}",
                tree.display(),
                String::from_utf8_lossy(&audit.stdout),
                String::from_utf8_lossy(&plan.stdout),
                String::from_utf8_lossy(&plan.stderr)
            );
            seen[usize::from(a == Some(0))] += 1;
        }
    }
    // Both verdicts occur, so the comparison is not of one constant.
    assert!(seen[0] > 0 && seen[1] > 0, "refused/accepted: {seen:?}");
}

/// See: issue 17. A root that is not a host tree (an empty folder, one with neither proc nor
/// sys) is refused by scan, gen-config, audit and apply, and by the facts, config and audit
/// modules, naming the root; nothing scans "ok" with nothing found.
#[test]
fn a_root_without_proc_or_sys_is_refused_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    let r = dir.path().to_str().unwrap();
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), "version: 1\nservices:\n  irqbalance: false\n").unwrap();
    let c = cfg.path().to_str().unwrap();
    let want = format!("lltune: error: --root {r}: not a host tree: it has neither a proc nor a sys folder");
    for args in [
        vec!["scan", "--root", r],
        vec!["gen-config", "--root", r],
        vec!["audit", "-c", c, "--root", r],
        vec!["apply", "--plan", "-c", c, "--root", r],
        vec!["apply", "-c", c, "--root", r],
    ] {
        let o = lltune(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).starts_with(&want),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for (module, extra) in [
        ("lltune_facts", serde_json::json!({})),
        ("lltune_config", serde_json::json!({})),
        ("lltune_audit", serde_json::json!({"config": {"version": 1}})),
    ] {
        let mut args = extra;
        args["root"] = serde_json::json!(r);
        let (v, code) = support::run_module(module, &args);
        assert_eq!(code, 1, "{module}: {v}");
        assert!(v["msg"].as_str().unwrap().contains("not a host tree"), "{module}: {v}");
    }
    // A tree with either folder is one.
    std::fs::create_dir_all(dir.path().join("sys")).unwrap();
    assert!(lltune(&["scan", "--root", r]).status.success());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "scan wrote into the root");
}

/// Issue 19 item 2: the R640 dump has no netdevs, so `<ifname>*` globs pinned nothing. gen-config
/// now pins the ConnectX functions by the PCI address their IRQs name, and apply moves every
/// one of their IRQs to the housekeeping CPUs, with no pin left matching nothing.
#[test]
fn gen_config_pins_the_r640_nic_irqs_by_pci_and_apply_moves_them() {
    use lltune::config::IrqTarget;
    let root = support::real_fixture("cnto-r640-rt-worker1");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("r640.yaml");
    let p = |x: &Path| x.to_str().unwrap().to_string();
    let o = lltune(&["gen-config", "--root", &p(&root), "-o", &p(&cfg)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&cfg).unwrap();
    let (c, issues) = lltune::config::parse(&text);
    assert!(issues.is_empty(), "{issues:?}");
    let irq = c.irq.unwrap();
    // The two PFs and sixteen VFs of the ConnectX at 0000:19:00.0, on the housekeeping CPUs.
    let pcis: Vec<String> = irq
        .manual_affinity
        .iter()
        .map(|p| match &p.target {
            IrqTarget::Pci(a) => a.clone(),
            other => panic!("not a pci pin: {other:?}\n{text}"),
        })
        .collect();
    assert_eq!(pcis.len(), 18, "{pcis:?}");
    assert_eq!(&pcis[..2], ["0000:19:00.0", "0000:19:00.1"]);
    assert!(irq.manual_affinity.iter().all(|p| p.cpus.0.to_string() == "0-1,40-41"), "{text}");
    assert!(text.contains("    - pci: \"0000:19:00.0\"\n      cpus: \"0-1,40-41\"\n"), "{text}");

    let copy = support::copy_fixture(&root);
    let o = lltune(&["apply", "-c", &p(&cfg), "--root", &p(copy.path())]);
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}");
    assert!(!out.contains("no IRQ name matches") && !out.contains("unmatched"), "{out}");
    let interrupts = std::fs::read_to_string(root.join("proc/interrupts")).unwrap();
    let mlx5: Vec<u32> = interrupts
        .lines()
        .filter(|l| l.contains("mlx5_"))
        .map(|l| l.split(':').next().unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(mlx5.len(), 320);
    let list = |r: &Path, n: u32| std::fs::read_to_string(r.join(format!("proc/irq/{n}/smp_affinity_list"))).unwrap();
    let mut moved = 0;
    for n in mlx5 {
        assert_eq!(list(copy.path(), n), "0-1,40-41\n", "irq {n}");
        moved += usize::from(list(&root, n) != "0-1,40-41\n");
    }
    assert!(moved > 300, "{moved}");
}
