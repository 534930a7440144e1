//! lltune export-tuned: the TuneD profile written from a config, read back the way TuneD
//! reads it (Python's configparser with tuned/profiles/loader.py's settings), holds the values
//! `lltune apply` would set, on every real dump's gen-config output and on a config that uses
//! every section the export knows.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{bin, real_fixture, real_fixture_names};

/// TuneD's reader (tuned/profiles/loader.py `_load_config_data`): the same parser settings,
/// every section and option as JSON. Each scheduler `group.*` rule is split as TuneD splits
/// it (`split(":", 4)`) and its expression, like each `ps_blacklist` one, compiled and
/// matched against the command lines given in argv[2] (a JSON list), as the scheduler plugin
/// searches them.
const TUNED_READER: &str = r#"
import configparser, json, re, sys
config_obj = configparser.ConfigParser(delimiters=('='), inline_comment_prefixes=('#'), strict=False)
config_obj.optionxform = str
with open(sys.argv[1]) as f:
    config_obj.read_file(f, sys.argv[1])
out = {}
for section in config_obj.sections():
    out[section] = {o: config_obj.get(section, o, raw=True) for o in config_obj.options(section)}
matches = {}
cmdlines = json.loads(sys.argv[2])
for option, value in out.get("scheduler", {}).items():
    exprs = []
    if option.startswith("group."):
        exprs = [value.split(":", 4)[4]]
    elif option == "ps_blacklist":
        exprs = value.split(";")
    for e in exprs:
        r = re.compile(e)
        matches[e] = [c for c in cmdlines if r.search(c)]
print(json.dumps({"sections": out, "matches": matches}))
"#;

fn read_as_tuned(conf: &Path, cmdlines: &[&str]) -> (BTreeMap<String, BTreeMap<String, String>>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("reader.py");
    fs::write(&script, TUNED_READER).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg(conf)
        .arg(serde_json::to_string(cmdlines).unwrap())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "TuneD's parser refused {}: {}",
        conf.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (serde_json::from_value(v["sections"].clone()).unwrap(), v["matches"].clone())
}

fn export(config: &Path, dir: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(bin("lltune")).arg("export-tuned").arg(config).arg(dir).args(extra).output().unwrap()
}

fn cpus(s: &str) -> String {
    lltune::cpulist::CpuList::parse(s).unwrap().to_string()
}

/// What `lltune apply` would do with `text` (the modules' arguments), against what TuneD
/// reads from the exported profile: the same sysctls, boot arguments, isolated CPUs, banned
/// CPUs, THP, huge pages per node, KSM, governor, irqbalance.
fn check_round_trip(name: &str, text: &str, tuned: &BTreeMap<String, BTreeMap<String, String>>) {
    let args = lltune::config::to_args::from_text(text).unwrap();
    let (cfg, issues) = lltune::config::parse(text);
    assert!(issues.is_empty(), "{name}: {issues:?}");
    let get = |s: &str, k: &str| tuned.get(s).and_then(|m| m.get(k)).cloned();
    // Every sysctl, exactly.
    let want: BTreeMap<String, String> = args
        .get("lltune_sysctl")
        .map(|m| {
            m["settings"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().into())).collect()
        })
        .unwrap_or_default();
    assert_eq!(tuned.get("sysctl").cloned().unwrap_or_default(), want, "{name}: [sysctl]");
    // The boot arguments lltune_kernel_args would set, as one command line, in order.
    let want_cmdline = args.get("lltune_kernel_args").map(|m| {
        m["args"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| match v.as_str().unwrap() {
                "" => k.clone(),
                v => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    });
    assert_eq!(get("bootloader", "cmdline"), want_cmdline, "{name}: [bootloader] cmdline");
    let iso =
        cfg.cpu.as_ref().and_then(|c| c.isolate_cores.as_ref()).map(|c| c.0.to_string()).filter(|s| !s.is_empty());
    assert_eq!(get("scheduler", "isolated_cores").map(|c| cpus(&c)), iso, "{name}: isolated_cores");
    let irq = args.get("lltune_irq");
    assert_eq!(
        get("irqbalance", "banned_cpus").map(|c| cpus(&c)),
        irq.and_then(|m| m.get("irqbalance_banned_cpus")).and_then(Value::as_str).map(cpus),
        "{name}: banned_cpus"
    );
    assert_eq!(
        get("scheduler", "default_irq_smp_affinity").map(|c| cpus(&c)),
        irq.and_then(|m| m.get("default_affinity")).and_then(Value::as_str).map(cpus),
        "{name}: default_irq_smp_affinity"
    );
    let mem = args.get("lltune_memory");
    assert_eq!(
        get("vm", "transparent_hugepages"),
        mem.and_then(|m| m.get("thp")).and_then(|t| t["enabled"].as_str()).map(String::from),
        "{name}: THP"
    );
    assert_eq!(
        get("sysfs", "/sys/kernel/mm/ksm/run"),
        mem.and_then(|m| m.get("ksm")).and_then(Value::as_bool).map(|k| if k { "1".into() } else { "0".into() }),
        "{name}: KSM"
    );
    let mut pages = BTreeMap::new();
    for (size, nodes) in mem.and_then(|m| m.get("hugepages")).and_then(Value::as_object).into_iter().flatten() {
        for (node, n) in nodes.as_object().unwrap() {
            pages.insert(
                format!("/sys/devices/system/node/node{node}/hugepages/hugepages-{size}kB/nr_hugepages"),
                n.to_string(),
            );
        }
    }
    let got: BTreeMap<String, String> = tuned
        .get("sysfs")
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.ends_with("/nr_hugepages"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(got, pages, "{name}: huge pages per node");
    let cpu = args.get("lltune_cpu");
    assert_eq!(
        get("cpu", "governor"),
        cpu.and_then(|m| m.get("governor")).and_then(Value::as_str).map(String::from),
        "{name}: governor"
    );
    let irqbalance = args
        .get("lltune_services")
        .and_then(|m| m.get("services"))
        .and_then(|s| s.get("irqbalance"))
        .map(|s| if s["enabled"] == true { "start,enable".to_string() } else { "stop,disable".to_string() });
    assert_eq!(get("service", "service.irqbalance"), irqbalance, "{name}: irqbalance");
}

#[test]
fn every_real_dumps_gen_config_round_trips_through_tuneds_parser() {
    let names = real_fixture_names();
    assert!(names.len() >= 5, "{names:?}");
    let mut with_cmdline = 0;
    for name in names {
        let root = real_fixture(&name);
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("lltune.yaml");
        let o =
            Command::new(bin("lltune")).args(["gen-config", "--root"]).arg(&root).arg("-o").arg(&cfg).output().unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        // As written (boot arguments left out without the safety flag), then with the flag.
        let text = fs::read_to_string(&cfg).unwrap();
        assert!(text.contains("allow_grub_edit: false"), "{name}");
        for (i, text) in
            [text.clone(), text.replace("allow_grub_edit: false", "allow_grub_edit: true")].iter().enumerate()
        {
            fs::write(&cfg, text).unwrap();
            let prof = dir.path().join(format!("lltune-{i}"));
            let o = export(&cfg, &prof, &[]);
            assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
            let conf = prof.join("tuned.conf");
            let (tuned, _) = read_as_tuned(&conf, &[]);
            check_round_trip(&name, text, &tuned);
            let written = fs::read_to_string(&conf).unwrap();
            assert!(written.contains("#   memory.mlock: limits.d is not TuneD's"), "{name}: {written}");
            if i == 0 {
                assert!(written.contains("safety.allow_grub_edit is false"), "{name}: {written}");
                assert!(!tuned.contains_key("bootloader"), "{name}");
            } else if tuned.contains_key("bootloader") {
                with_cmdline += 1;
            }
        }
    }
    assert!(with_cmdline >= 5, "boot arguments exported on {with_cmdline} dumps");
}

const EVERY_SECTION: &str = r#"version: 1
metadata:
  host: "rack1-h7"
cpu:
  governor: {target: "performance"}
  isolate_cores: "2-7"
  turbo: false
  cstate_limit: 1
  epp: "performance"
  energy_perf_bias: 0
  pm_qos_resume_latency_us: {cpus: "2-3", value: "n/a"}
  uncore: {min_freq_khz: "max", max_freq_khz: "2400000"}
  mce_ignore_ce: true
kernel:
  cmdline:
    isolcpus: "managed_irq,domain,2-7"
    nohz_full: "2-7"
    nosoftlockup: ""
    mitigations: "off"
    idle: "poll"
  sysctl:
    sched_rt_runtime_us: -1
memory:
  thp_runtime: "madvise"
  ksm: false
  hugepages: {size_kb: "1048576", per_node: {node0: 2}}
  swap_disable: true
network:
  defaults: {disable_gro: true, disable_lro: true}
  sysctl:
    busy_poll: 50
    tcp_timestamps: 0
  interfaces:
    - name: "ens1f0"
      offloads: {gro: true}
      coalescing: {rx_usecs: 0, adaptive_rx: false}
      rings: {rx: 4096, tx: 4096}
      flow_control: {rx: false, tx: false}
      channels: {combined: 4}
irq:
  avoid_cores_for_irqs: "2-7"
  default_affinity: "0-1"
  disable_rps: true
  manual_affinity:
    - nic: "ens1f0"
      cpus: "0"
threads:
  keep: ["trader*", "md.feed"]
  priorities:
    - {match: "ksoftirqd/*", policy: "fifo", priority: 2}
    - {match: "irq/*-ens1f0*", policy: "fifo", priority: 50}
    - {match: "kworker/*", policy: "other", priority: 0}
time_sync:
  ntp: true
services:
  irqbalance: false
  tuned: "off"
safety:
  allow_grub_edit: true
  allow_dangerous_mitigations: true
"#;

#[test]
fn every_section_the_export_knows_reads_back_in_tuned_and_the_rest_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    fs::write(&cfg, EVERY_SECTION).unwrap();
    let prof = dir.path().join("trading");
    let o = export(&cfg, &prof, &["--include", "network-latency"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let conf = prof.join("tuned.conf");
    let cmdlines = [
        "[ksoftirqd/3]",
        "[irq/142-ens1f0-TxRx-0]",
        "[kworker/3:1-events]",
        "/opt/desk/bin/trader --venue x",
        "trader2",
        "[md.feed]",
        "mdxfeed",
        "/usr/sbin/sshd -D",
        "[rcuc/3]",
    ];
    let (tuned, matches) = read_as_tuned(&conf, &cmdlines);
    // (TuneD's parser keeps the file's order; the JSON map here is sorted: sets compared.)
    let m = |s: &str| tuned[s].iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<BTreeMap<_, _>>();
    assert_eq!(
        m("main"),
        BTreeMap::from([("summary", "lltune config of rack1-h7, exported"), ("include", "network-latency")])
    );
    assert_eq!(
        m("cpu"),
        BTreeMap::from([
            ("governor", "performance"),
            ("energy_performance_preference", "performance"),
            ("energy_perf_bias", "performance"),
            ("force_latency", "cstate.name:C1|cstate.id_no_zero:1"),
            ("boost", "0"),
        ])
    );
    assert_eq!(m("uncore"), BTreeMap::from([("min_freq_khz", "100%"), ("max_freq_khz", "2400000")]));
    assert_eq!(m("vm"), BTreeMap::from([("transparent_hugepages", "madvise")]));
    // mitigations=off with safety.allow_dangerous_mitigations (the reader refuses it without).
    assert_eq!(
        tuned["bootloader"]["cmdline"],
        "isolcpus=managed_irq,domain,2-7 nohz_full=2-7 nosoftlockup mitigations=off idle=poll"
    );
    assert_eq!(
        m("net_0"),
        BTreeMap::from([
            ("type", "net"),
            ("devices", "ens1f0"),
            ("features", "gro on lro off"),
            ("coalesce", "adaptive-rx off rx-usecs 0"),
            ("ring", "rx 4096 tx 4096"),
            ("pause", "rx off tx off"),
            ("channels", "combined 4"),
        ])
    );
    assert_eq!(
        m("sysfs"),
        BTreeMap::from([
            ("/sys/devices/system/cpu/cpu2/power/pm_qos_resume_latency_us", "n/a"),
            ("/sys/devices/system/cpu/cpu3/power/pm_qos_resume_latency_us", "n/a"),
            ("/sys/devices/system/machinecheck/machinecheck*/ignore_ce", "1"),
            ("/sys/kernel/mm/ksm/run", "0"),
            ("/sys/devices/system/node/node0/hugepages/hugepages-1048576kB/nr_hugepages", "2"),
            ("/sys/class/net/*/queues/rx-*/rps_cpus", "0"),
        ])
    );
    assert_eq!(tuned["service"]["service.irqbalance"], "stop,disable");
    assert_eq!(tuned["irqbalance"]["banned_cpus"], "2-7");
    let sched = &tuned["scheduler"];
    assert_eq!(sched["isolated_cores"], "2-7");
    assert_eq!(sched["default_irq_smp_affinity"], "0-1");
    // The thread rules as TuneD splits them, and the threads their expressions find.
    let rule = |k: &str| sched[k].splitn(5, ':').map(String::from).collect::<Vec<_>>();
    assert_eq!(rule("group.lltune0")[..4], ["0", "f", "2", "*"]);
    assert_eq!(rule("group.lltune1")[..4], ["1", "f", "50", "*"]);
    assert_eq!(rule("group.lltune2")[..4], ["2", "o", "0", "*"]);
    let found = |e: &str| matches[e].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>();
    assert_eq!(found(&rule("group.lltune0")[4]), ["[ksoftirqd/3]"]);
    assert_eq!(found(&rule("group.lltune1")[4]), ["[irq/142-ens1f0-TxRx-0]"]);
    assert_eq!(found(&rule("group.lltune2")[4]), ["[kworker/3:1-events]"]);
    let keep: Vec<&str> = sched["ps_blacklist"].split(';').collect();
    assert_eq!(keep.len(), 2);
    assert_eq!(found(keep[0]), ["/opt/desk/bin/trader --venue x", "trader2"]);
    assert_eq!(found(keep[1]), ["[md.feed]"], "the '.' is literal");
    check_round_trip("every-section", EVERY_SECTION, &tuned);
    // What TuneD has no equivalent for is named at the top.
    let text = fs::read_to_string(&conf).unwrap();
    for l in ["#   memory.swap_disable:", "#   irq.manual_affinity:", "#   time_sync:", "#   services.tuned:"] {
        assert!(text.contains(l), "{l}\n{text}");
    }
}

#[test]
fn export_refusals_name_the_argument_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    fs::write(&cfg, "version: 1\ncpu: {turbo: off}\n").unwrap();
    let o = export(&cfg, &dir.path().join("p"), &[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cpu.turbo"), "{}", String::from_utf8_lossy(&o.stderr));
    fs::write(&cfg, "version: 1\nnetwork:\n  sysctl:\n    \"net.core.x\": \"1 # 2\"\n").unwrap();
    let o = export(&cfg, &dir.path().join("q"), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = fs::read_to_string(dir.path().join("q/tuned.conf")).unwrap();
    assert!(text.contains("#   network.sysctl.net.core.x: ' #' in the value"), "{text}");
    assert!(!text.contains("net.core.x="), "{text}");
    fs::write(&cfg, "version: 1\n").unwrap();
    for (dest, extra, expect) in [
        ("bad name", vec![], "is not a TuneD profile name"),
        ("..", vec![], "is not a TuneD profile name"),
        ("ok", vec!["--include", "../x"], "--include"),
        ("ok", vec!["--include", "a b"], "--include: one profile name"),
    ] {
        let o = export(&cfg, &dir.path().join(dest), &extra);
        assert!(!o.status.success(), "{dest}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(expect), "{dest}: {}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(!dir.path().join("ok").exists() && !dir.path().join("bad name").exists());
    assert!(!dir.path().join("p").exists());
}
