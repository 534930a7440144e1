//! The fleet report (`lltune report`, `lltune_report`): facts of real dumps and fixture hosts
//! in every input shape, read back from fleet.json, from fleet.csv with Python's csv module,
//! from lltune.prom with prometheus_client's parser; Ansible's jsonfile fact cache from a real
//! play; check mode and idempotence; bad inputs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support;

fn lltune(args: &[&str]) -> std::process::Output {
    Command::new(support::bin("lltune")).args(args).stdin(Stdio::null()).output().expect("run lltune")
}

/// `lltune scan --format json` of a root: the facts with their recommendations.
fn scan(root: &Path) -> Value {
    let out = lltune(&["scan", "--format", "json", "--root", root.to_str().unwrap()]);
    assert!(out.status.success(), "scan {}: {}", root.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn write_json(path: &Path, v: &Value) {
    fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

fn run_report(facts: &Path, out: &Path) -> std::process::Output {
    lltune(&["report", "--facts", facts.to_str().unwrap(), "--out", out.to_str().unwrap()])
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// The requirement line of tests/prometheus-client.pin.
fn prometheus_client_pin() -> &'static str {
    include_str!("prometheus-client.pin").lines().map(str::trim).find(|l| l.starts_with("prometheus-client==")).unwrap()
}

/// The test venv's Python with the pinned prometheus_client, installed once (under a lock:
/// test processes may ask at the same time).
fn python() -> PathBuf {
    static PY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        let venv = support::ansible().venv;
        let py = venv.join("bin/python");
        let want = prometheus_client_pin().trim_start_matches("prometheus-client==").to_string();
        let has = || {
            Command::new(&py)
                .args(["-c", "import importlib.metadata as m; print(m.version('prometheus-client'))"])
                .output()
                .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == want)
                .unwrap_or(false)
        };
        if has() {
            return py.clone();
        }
        let lock = fs::File::create(venv.join(".prometheus-client.lock")).unwrap();
        let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).expect("lock venv");
        if !has() {
            let pin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prometheus-client.pin");
            support::pip_install(&venv, &["-r".as_ref(), pin.as_os_str()]);
            assert!(has(), "no prometheus-client {want} after pip install");
        }
        py.clone()
    })
    .clone()
}

/// Runs a Python script with the test venv; its stdout is JSON.
fn py_json(script: &str, arg: &Path) -> Value {
    let out = Command::new(python()).arg("-c").arg(script).arg(arg).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// fleet.csv read by Python's csv module (strict RFC 4180 dialect): a list of rows.
fn parse_csv(path: &Path) -> Vec<Vec<String>> {
    let v = py_json(
        "import csv, json, sys\n\
         with open(sys.argv[1], newline='') as f:\n    rows = list(csv.reader(f, strict=True))\n\
         print(json.dumps(rows))",
        path,
    );
    serde_json::from_value(v).unwrap()
}

/// One parsed sample: name, family type, family help, labels, value.
type Sample = (String, String, String, serde_json::Map<String, Value>, f64);

/// lltune.prom read by prometheus_client's text parser: `[name, type, help, labels, value]`
/// per sample.
fn parse_prom(path: &Path) -> Vec<Sample> {
    let v = py_json(
        "import json, sys\n\
         from prometheus_client.parser import text_string_to_metric_families\n\
         out = []\n\
         for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n    \
             for s in fam.samples:\n        out.append([s.name, fam.type, fam.documentation, s.labels, s.value])\n\
         print(json.dumps(out))",
        path,
    );
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s[0].as_str().unwrap().to_string(),
                s[1].as_str().unwrap().to_string(),
                s[2].as_str().unwrap().to_string(),
                s[3].as_object().unwrap().clone(),
                s[4].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The value of one sample, by metric name and labels.
fn sample(prom: &[Sample], name: &str, labels: &Value) -> Option<f64> {
    prom.iter().find(|s| s.0 == name && Value::Object(s.3.clone()) == *labels).map(|s| s.4)
}

/// Findings by severity, counted from a facts report's `recommendations`.
fn severity_counts(facts: &Value) -> (u64, u64, u64) {
    let recs = facts["recommendations"].as_array().unwrap();
    let n = |s: &str| recs.iter().filter(|r| r["severity"] == s).count() as u64;
    (n("error"), n("warning"), n("info"))
}

/// The documented score: 100 less 15 per error, 5 per warning, 1 per info, at least 0.
fn expected_score((e, w, i): (u64, u64, u64)) -> u64 {
    100u64.saturating_sub(15 * e + 5 * w + i)
}

/// A copy of the RHEL 8 GRUB2 fixture whose /etc/default/grub was edited after boot:
/// isolcpus added, nohz_full changed, rhgb removed.
fn drifted_grub_host() -> tempfile::TempDir {
    let dir = support::boot_fixture("rhel8-grub2-bios");
    let p = dir.path().join("etc/default/grub");
    let text = fs::read_to_string(&p).unwrap();
    let text = text.replace(
        "rd.lvm.lv=rhel/swap rhgb quiet nohz_full=1-3",
        "rd.lvm.lv=rhel/swap quiet nohz_full=2-3 isolcpus=managed_irq,domain,2-3",
    );
    assert!(text.contains("isolcpus=managed_irq"), "the fixture changed: {text}");
    fs::write(&p, text).unwrap();
    dir
}

/// Each host of the test fleet: (host name, facts report as scanned).
struct Fleet {
    _trees: Vec<tempfile::TempDir>,
    facts_dir: tempfile::TempDir,
    hosts: Vec<(String, Value)>,
}

/// Facts of every real dump, the irq-small fixture host and a drifted GRUB host, written in
/// every input shape: scan output, a registered lltune_facts result, facts without
/// recommendations, and a jsonfile fact cache file of ansible-core 2.19 (`s1_<host>`).
fn build_fleet() -> Fleet {
    let facts_dir = tempfile::tempdir().unwrap();
    let mut hosts = Vec::new();
    let mut trees = Vec::new();
    let mut roots: Vec<(String, PathBuf)> =
        support::real_fixture_names().into_iter().map(|n| (n.clone(), support::real_fixture(&n))).collect();
    let irq = support::host_fixture("irq-small");
    roots.push(("db.example.com".into(), irq.path().to_path_buf()));
    trees.push(irq);
    let grub = drifted_grub_host();
    roots.push(("grub-drift".into(), grub.path().to_path_buf()));
    trees.push(grub);
    assert!(roots.len() >= 4, "{roots:?}");
    for (i, (name, root)) in roots.iter().enumerate() {
        let facts = scan(root);
        match i % 4 {
            0 => write_json(&facts_dir.path().join(format!("{name}.json")), &facts),
            1 => {
                let (result, code) = support::run_module("lltune_facts", &json!({"root": root}));
                assert_eq!(code, 0, "{result}");
                assert_eq!(result["ansible_facts"]["lltune"], facts);
                write_json(&facts_dir.path().join(format!("{name}.json")), &result);
            }
            2 => {
                let mut bare = facts.clone();
                bare.as_object_mut().unwrap().remove("recommendations");
                write_json(&facts_dir.path().join(name), &bare);
            }
            _ => {
                let payload = serde_json::to_string(
                    &json!({"lltune": facts, "discovered_interpreter_python": "/usr/bin/python3"}),
                )
                .unwrap();
                write_json(&facts_dir.path().join(format!("s1_{name}")), &json!({ "__payload__": payload }));
            }
        }
        hosts.push((name.clone(), facts));
    }
    hosts.sort_by(|a, b| a.0.cmp(&b.0));
    Fleet { _trees: trees, facts_dir, hosts }
}

#[test]
fn fleet_report_of_real_dumps_in_every_input_shape() {
    let fleet = build_fleet();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("report");
    let o = run_report(fleet.facts_dir.path(), &out_dir);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.starts_with(&format!("{} hosts: ", fleet.hosts.len())), "{stdout}");
    let mut names: Vec<String> =
        fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["fleet.csv", "fleet.html", "fleet.json", "fleet.md", "lltune.prom"], "no temp file is left");

    // fleet.json, against the facts each host reported.
    let report = read_json(&out_dir.join("fleet.json"));
    assert_eq!(report["schema_version"], 1);
    let hosts = report["hosts"].as_array().unwrap();
    let got: Vec<&str> = hosts.iter().map(|h| h["host"].as_str().unwrap()).collect();
    let want: Vec<&str> = fleet.hosts.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(got, want, "hosts by file name, the cache's s1_ prefix and .json dropped, in name order");
    let mut totals = (0, 0, 0);
    for ((name, f), h) in fleet.hosts.iter().zip(hosts) {
        let counts = severity_counts(f);
        totals = (totals.0 + counts.0, totals.1 + counts.1, totals.2 + counts.2);
        assert_eq!(
            h["findings"],
            json!({"error": counts.0, "warning": counts.1, "info": counts.2, "total": counts.0 + counts.1 + counts.2}),
            "{name}"
        );
        assert_eq!(h["score"], expected_score(counts), "{name}");
        assert_eq!(h["recommendations"], f["recommendations"], "{name}");
        let kernel =
            if f["kernel"]["release"].is_null() { &f["host"]["kernel_release"] } else { &f["kernel"]["release"] };
        assert_eq!(&h["kernel_release"], kernel, "{name}");
        assert_eq!(h["cpu_model"], f["cpu"]["model_name"], "{name}");
        for k in ["sockets", "cores_per_socket", "threads_per_core"] {
            assert_eq!(h[k], f["cpu"][k], "{name}: {k}");
        }
        assert_eq!(h["online_cpus"], f["cpu"]["online"], "{name}");
        assert_eq!(h["online_count"], f["cpu"]["count"], "{name}");
        assert_eq!(h["nohz_full"], f["cpu"]["nohz_full"], "{name}");
        assert_eq!(h["numa_nodes"], f["numa"]["nodes"].as_array().unwrap().len(), "{name}");
        assert_eq!(h["nics"], f["nics"].as_array().unwrap().len(), "{name}");
        assert_eq!(h["memory_total_kb"], f["memory"]["total_kb"], "{name}");
        for (size, hp) in f["memory"]["hugepages"].as_object().unwrap() {
            assert_eq!(h["hugepages"][size]["total"], hp["total"], "{name}: hugepages {size}");
        }
        assert_eq!(h["boot"]["layout"], f["kernel"]["bootloader"]["layout"], "{name}");
        assert_eq!(h["boot"]["running_cmdline"], f["kernel"]["cmdline"], "{name}");
    }
    assert_eq!(
        report["summary"]["findings"],
        json!({"error": totals.0, "warning": totals.1, "info": totals.2, "total": totals.0 + totals.1 + totals.2})
    );
    assert_eq!(report["summary"]["hosts"], fleet.hosts.len());

    let by = |n: &str| hosts.iter().find(|h| h["host"] == n).unwrap_or_else(|| panic!("no host {n}"));
    // Real values, from the dumps' manifest.
    let manifest = support::real_manifest();
    for (name, fx) in manifest["fixtures"].as_object().unwrap() {
        let e = &fx["expected"];
        let h = by(name);
        for k in ["sockets", "cores_per_socket", "threads_per_core"] {
            if !e[k].is_null() {
                assert_eq!(h[k], e[k], "{name}: {k}");
            }
        }
        if let Some(online) = e["online"].as_str() {
            assert_eq!(h["online_cpus"], online, "{name}");
        }
        assert_eq!(h["numa_nodes"], e["numa_nodes"].as_object().unwrap().len(), "{name}");
    }
    let hw = by("hwloc-32intel64-2p8co2t");
    assert_eq!((hw["online_count"].as_u64(), hw["isolated_count"].as_u64()), (Some(32), Some(0)));
    assert_eq!(hw["input_shape"], "scan");
    // irq-small boots with isolcpus=managed_irq,domain,4-7 nohz_full=4-7 and has no boot loader files.
    let db = by("db.example.com");
    assert_eq!((db["isolated_cpus"].as_str(), db["isolated_count"].as_u64()), (Some("4-7"), Some(4)));
    assert_eq!(
        (db["boot"]["layout"].as_str(), &db["drift"], &db["reboot_pending"]),
        (Some("unknown"), &Value::Null, &Value::Null)
    );
    // The GRUB host: the next boot gets other arguments than the running ones.
    let g = by("grub-drift");
    assert_eq!(g["boot"]["configured_source"], "/etc/default/grub");
    assert_eq!(g["reboot_pending"], true);
    assert_eq!(
        g["drift"],
        json!([
            {"arg": "isolcpus", "change": "added", "running": [], "configured": ["managed_irq,domain,2-3"]},
            {"arg": "nohz_full", "change": "changed", "running": ["1-3"], "configured": ["2-3"]},
            {"arg": "rhgb", "change": "removed", "running": [null], "configured": []},
        ]),
        "BOOT_IMAGE, root and ro come from GRUB's linux line, not drift"
    );
    assert_eq!(g["drift_args"], 3);
    assert_eq!(report["summary"]["reboot_pending"], 1);
    assert_eq!(report["summary"]["drifted"], 1);
    let shapes: std::collections::BTreeSet<&str> = hosts.iter().map(|h| h["input_shape"].as_str().unwrap()).collect();
    assert_eq!(shapes.into_iter().collect::<Vec<_>>(), ["fact_cache", "module_result", "scan"]);

    // fleet.csv, through Python's csv module.
    let rows = parse_csv(&out_dir.join("fleet.csv"));
    assert!(fs::read_to_string(out_dir.join("fleet.csv")).unwrap().ends_with("\r\n"), "RFC 4180 line ends");
    let header = &rows[0];
    assert_eq!(header[0], "host");
    assert_eq!(rows.len(), hosts.len() + 1);
    let col = |row: &Vec<String>, c: &str| {
        row[header.iter().position(|h| h == c).unwrap_or_else(|| panic!("no column {c}"))].clone()
    };
    for (row, h) in rows[1..].iter().zip(hosts) {
        assert_eq!(row.len(), header.len());
        assert_eq!(col(row, "host"), h["host"].as_str().unwrap());
        assert_eq!(col(row, "cpu_model"), h["cpu_model"].as_str().unwrap_or(""), "commas in CPU names survive quoting");
        assert_eq!(col(row, "score"), h["score"].to_string());
        assert_eq!(col(row, "findings_warning"), h["findings"]["warning"].to_string());
        assert_eq!(col(row, "online_cpus"), h["online_cpus"].as_str().unwrap());
        assert_eq!(col(row, "isolated_count"), h["isolated_count"].to_string());
        let reboot = match &h["reboot_pending"] {
            Value::Null => String::new(),
            v => v.to_string(),
        };
        assert_eq!(col(row, "reboot_pending"), reboot);
    }
    let grow = rows.iter().find(|r| r[0] == "grub-drift").unwrap();
    assert_eq!((col(grow, "drift_args"), col(grow, "drift")), ("3".into(), "isolcpus nohz_full rhgb".into()));

    // lltune.prom, through prometheus_client's parser.
    let prom = parse_prom(&out_dir.join("lltune.prom"));
    assert_eq!(sample(&prom, "lltune_fleet_hosts", &json!({})), Some(hosts.len() as f64));
    for h in hosts {
        let host = h["host"].as_str().unwrap();
        let l = json!({"host": host});
        assert_eq!(sample(&prom, "lltune_score", &l), h["score"].as_f64(), "{host}");
        for sev in ["error", "warning", "info"] {
            assert_eq!(
                sample(&prom, "lltune_findings", &json!({"host": host, "severity": sev})),
                h["findings"][sev].as_f64(),
                "{host} {sev}"
            );
        }
        assert_eq!(sample(&prom, "lltune_online_cpus", &l), h["online_count"].as_f64());
        assert_eq!(sample(&prom, "lltune_isolated_cpus", &l), h["isolated_count"].as_f64());
        assert_eq!(sample(&prom, "lltune_numa_nodes", &l), h["numa_nodes"].as_f64());
        assert_eq!(sample(&prom, "lltune_nics", &l), h["nics"].as_f64());
        assert_eq!(sample(&prom, "lltune_reboot_pending", &l), h["reboot_pending"].as_bool().map(|b| b as u8 as f64));
        assert_eq!(sample(&prom, "lltune_drift_args", &l), h["drift_args"].as_f64());
        assert_eq!(sample(&prom, "lltune_memory_bytes", &l), h["memory_total_kb"].as_f64().map(|kb| kb * 1024.0));
        let info = prom.iter().find(|s| s.0 == "lltune_info" && s.3["host"] == host).unwrap();
        assert_eq!((info.4, info.3["kernel"].as_str()), (1.0, Some(h["kernel_release"].as_str().unwrap_or(""))));
        assert_eq!(info.3["cpu_model"].as_str(), Some(h["cpu_model"].as_str().unwrap_or("")));
        for (size, hp) in h["hugepages"].as_object().unwrap() {
            assert_eq!(
                sample(&prom, "lltune_hugepages", &json!({"host": host, "size_kb": size})),
                hp["total"].as_f64()
            );
        }
    }
    assert_eq!(sample(&prom, "lltune_reboot_pending", &json!({"host": "grub-drift"})), Some(1.0));
    assert_eq!(
        sample(&prom, "lltune_hugepages", &json!({"host": "hwloc-32intel64-2p8co2t", "size_kb": "2048"})),
        Some(4096.0)
    );
    assert!(prom.iter().all(|s| s.1 == "gauge" && !s.2.is_empty()), "every family is a documented gauge");

    // fleet.md: one row per host.
    let md = fs::read_to_string(out_dir.join("fleet.md")).unwrap();
    for (name, _) in &fleet.hosts {
        assert_eq!(md.lines().filter(|l| l.starts_with(&format!("| {name} |"))).count(), 1, "{name}: {md}");
    }
    assert!(md.contains("| isolcpus | added | (absent) | managed\\_irq,domain,2-3 |"), "{md}");

    // The same facts again: the same bytes (no clock time), and nothing rewritten.
    let before: Vec<(std::time::SystemTime, Vec<u8>)> =
        ["fleet.json", "fleet.csv", "fleet.md", "lltune.prom", "fleet.html"]
            .iter()
            .map(|f| {
                let p = out_dir.join(f);
                (fs::metadata(&p).unwrap().modified().unwrap(), fs::read(&p).unwrap())
            })
            .collect();
    let o = run_report(fleet.facts_dir.path(), &out_dir);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("up to date"), "{}", String::from_utf8_lossy(&o.stdout));
    for (f, b) in ["fleet.json", "fleet.csv", "fleet.md", "lltune.prom", "fleet.html"].iter().zip(&before) {
        let p = out_dir.join(f);
        assert_eq!((fs::metadata(&p).unwrap().modified().unwrap(), fs::read(&p).unwrap()), b.clone(), "{f}");
    }
}

/// Host names that need quoting and escaping: a comma for CSV, a quote and backslash for
/// Prometheus labels and a pipe for markdown.
#[test]
fn fleet_report_quotes_and_escapes_odd_host_names() {
    let dir = tempfile::tempdir().unwrap();
    let facts = scan(&support::real_fixture("utillinux-dell-e4310"));
    let odd = "rack,1 \"a\" \\b|c";
    write_json(&dir.path().join(format!("{odd}.json")), &facts);
    write_json(&dir.path().join("plain.json"), &facts);
    // Latency results beside the facts.
    write_json(&dir.path().join("plain.latency.json"), &json!({"p99_us": 12, "max_us": 48.5}));
    let out = tempfile::tempdir().unwrap();
    // --check: what would be written, and nothing is.
    let new_dir = out.path().join("not-yet");
    let o = lltune(&["report", "--check", "--facts", dir.path().to_str().unwrap(), "--out", new_dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.starts_with("2 hosts: ")
            && stdout.contains("would write fleet.json, fleet.csv, fleet.md, lltune.prom, fleet.html"),
        "{stdout}"
    );
    assert!(!new_dir.exists());
    let o = run_report(dir.path(), out.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = parse_csv(&out.path().join("fleet.csv"));
    assert_eq!(rows.iter().skip(1).map(|r| r[0].as_str()).collect::<Vec<_>>(), ["plain", odd]);
    let prom = parse_prom(&out.path().join("lltune.prom"));
    let score = sample(&prom, "lltune_score", &json!({"host": odd})).expect("the odd host's score");
    assert_eq!(Some(score), sample(&prom, "lltune_score", &json!({"host": "plain"})));
    assert_eq!(sample(&prom, "lltune_latency_p99_seconds", &json!({"host": "plain"})), Some(12e-6));
    assert_eq!(sample(&prom, "lltune_latency_max_seconds", &json!({"host": "plain"})), Some(48.5e-6));
    assert_eq!(sample(&prom, "lltune_latency_p99_seconds", &json!({"host": odd})), None);
    let report = read_json(&out.path().join("fleet.json"));
    assert_eq!(report["hosts"][0]["latency"], json!({"p99_us": 12.0, "max_us": 48.5}));
    assert_eq!(report["hosts"][1]["latency"], Value::Null);
    let md = fs::read_to_string(out.path().join("fleet.md")).unwrap();
    assert!(md.contains("| rack,1 \"a\" \\\\b\\|c |"), "{md}");
    let csv_col = rows[0].iter().position(|c| c == "latency_p99_us").unwrap();
    assert_eq!(rows[1][csv_col], "12");
}

fn assert_one_line_error(o: &std::process::Output, needles: &[&str]) {
    assert_eq!(o.status.code(), Some(1), "stdout {}", String::from_utf8_lossy(&o.stdout));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
}

#[test]
fn fleet_report_bad_inputs_fail_naming_the_file_and_write_nothing() {
    let facts = scan(support::host_fixture("irq-small").path());
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("r");
    let fd = dir.path();
    write_json(&fd.join("good.json"), &facts);
    fs::write(fd.join(".hidden"), "not json, skipped").unwrap();
    let ok = run_report(fd, &out_dir);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let before = fs::read(out_dir.join("fleet.json")).unwrap();
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("1 hosts:"), "hidden files are skipped");

    // Not JSON.
    fs::write(fd.join("broken.json"), "{\"cpu\": ").unwrap();
    assert_one_line_error(&run_report(fd, &out_dir), &["--facts", "broken.json", "not JSON"]);
    assert_eq!(fs::read(out_dir.join("fleet.json")).unwrap(), before, "outputs untouched");
    fs::remove_file(fd.join("broken.json")).unwrap();

    // JSON without lltune facts.
    write_json(&fd.join("other.json"), &json!({"ansible_facts": {"ansible_hostname": "x"}}));
    assert_one_line_error(&run_report(fd, &out_dir), &["other.json", "no lltune facts"]);
    fs::remove_file(fd.join("other.json")).unwrap();

    // A FIFO must be refused, not read (a read would block forever).
    let fifo = fd.join("pipe.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut child = Command::new(support::bin("lltune"))
        .args(["report", "--facts", fd.to_str().unwrap(), "--out", out_dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("lltune report blocked on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert_one_line_error(&o, &["pipe.json", "not a regular file"]);
    fs::remove_file(&fifo).unwrap();

    // Facts of another layout (a field of the wrong type).
    let mut wrong = facts.clone();
    wrong["cpu"]["count"] = json!("many");
    write_json(&fd.join("wrong.json"), &wrong);
    assert_one_line_error(&run_report(fd, &out_dir), &["wrong.json", "cpu.count"]);
    fs::remove_file(fd.join("wrong.json")).unwrap();

    // Two files for one host.
    write_json(&fd.join("good"), &facts);
    assert_one_line_error(&run_report(fd, &out_dir), &["good", "good.json", "both host good"]);
    fs::remove_file(fd.join("good")).unwrap();

    // Latency of a host without facts.
    write_json(&fd.join("ghost.latency.json"), &json!({"p99_us": 3}));
    assert_one_line_error(&run_report(fd, &out_dir), &["ghost.latency.json", "no facts"]);
    fs::remove_file(fd.join("ghost.latency.json")).unwrap();
    assert_eq!(fs::read(out_dir.join("fleet.json")).unwrap(), before, "outputs untouched");

    // Missing and empty folders; the output folder may not be the facts folder.
    let missing = fd.join("nope");
    assert_one_line_error(&run_report(&missing, &out_dir), &["--facts", "nope", "No such file"]);
    let empty = tempfile::tempdir().unwrap();
    fs::write(empty.path().join(".keep"), "").unwrap();
    assert_one_line_error(&run_report(empty.path(), &out_dir), &["--facts", "no host facts"]);
    assert_one_line_error(&run_report(fd, fd), &["--out", "the output folder is the facts folder"]);
    assert_one_line_error(&run_report(fd, &fd.join("report")), &["--out", "inside the facts folder"]);
    assert!(!fd.join("report").exists());
    let missing_opt = lltune(&["report", "--facts", fd.to_str().unwrap()]);
    assert_eq!(missing_opt.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing_opt.stderr).contains("--out"));
}

#[test]
fn fleet_report_module_check_mode_and_idempotence() {
    let dir = tempfile::tempdir().unwrap();
    let a = scan(&support::real_fixture("hwloc-32em64t-2n8c"));
    let b = scan(support::host_fixture("irq-small").path());
    write_json(&dir.path().join("a.json"), &a);
    write_json(&dir.path().join("b.json"), &b);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("fleet");
    let args = |check: bool| json!({"facts_dir": dir.path(), "dest": dest, "_ansible_check_mode": check, "_ansible_diff": true});

    // Check mode: changed, nothing written, not even the folder.
    let (r, code) = support::run_module("lltune_report", &args(true));
    assert_eq!((code, &r["changed"], &r["failed"]), (0, &json!(true), &json!(false)), "{r}");
    assert!(!dest.exists(), "check mode made {}", dest.display());
    assert_eq!(r["hosts"], json!(["a", "b"]));
    assert_eq!(r["summary"]["hosts"], 2);
    assert_eq!(r["changed_files"], json!(["fleet.json", "fleet.csv", "fleet.md", "lltune.prom", "fleet.html"]));
    assert_eq!(r["diff"].as_array().unwrap().len(), 5);
    let (ea, wa, ia) = severity_counts(&a);
    let (eb, wb, ib) = severity_counts(&b);
    assert_eq!(
        r["summary"]["findings"],
        json!({"error": ea + eb, "warning": wa + wb, "info": ia + ib, "total": ea + eb + wa + wb + ia + ib})
    );
    let sa = expected_score((ea, wa, ia));
    let sb = expected_score((eb, wb, ib));
    assert_eq!(
        (r["summary"]["score_min"].as_u64(), r["summary"]["score_max"].as_u64()),
        (Some(sa.min(sb)), Some(sa.max(sb)))
    );
    assert_eq!(r["summary"]["score_mean"], (sa + sb) / 2);

    // A real run writes what check mode announced.
    let (r, code) = support::run_module("lltune_report", &args(false));
    assert_eq!((code, &r["changed"]), (0, &json!(true)), "{r}");
    let json_before = fs::read(dest.join("fleet.json")).unwrap();
    assert_eq!(read_json(&dest.join("fleet.json"))["hosts"][0]["score"], sa);

    // Again, and again in check mode: nothing to do.
    for check in [false, true] {
        let (r, code) = support::run_module("lltune_report", &args(check));
        assert_eq!((code, &r["changed"], &r["changed_files"]), (0, &json!(false), &json!([])), "check={check}: {r}");
        assert!(r.get("diff").is_none(), "{r}");
    }
    assert_eq!(fs::read(dest.join("fleet.json")).unwrap(), json_before);

    // One host fewer: check mode says changed and leaves the files alone.
    fs::remove_file(dir.path().join("b.json")).unwrap();
    let (r, _) = support::run_module("lltune_report", &args(true));
    assert_eq!((&r["changed"], &r["hosts"]), (&json!(true), &json!(["a"])), "{r}");
    assert_eq!(fs::read(dest.join("fleet.json")).unwrap(), json_before);

    // Failures name the option and the file.
    fs::write(dir.path().join("c.json"), "nope").unwrap();
    let (r, code) = support::run_module("lltune_report", &args(false));
    assert_eq!((code, &r["failed"]), (1, &json!(true)), "{r}");
    let msg = r["msg"].as_str().unwrap();
    assert!(msg.starts_with("option facts_dir: ") && msg.contains("c.json") && msg.contains("not JSON"), "{msg}");
    assert_eq!(fs::read(dest.join("fleet.json")).unwrap(), json_before);
    let (r, code) =
        support::run_module("lltune_report", &json!({"facts_dir": dir.path().join("missing"), "dest": dest}));
    assert_eq!(code, 1);
    assert!(
        r["msg"].as_str().unwrap().starts_with("option facts_dir: ") && r["msg"].as_str().unwrap().contains("missing"),
        "{r}"
    );
    let (r, code) = support::run_module("lltune_report", &json!({"facts_dir": dir.path()}));
    assert_eq!((code, r["msg"].as_str()), (1, Some("missing required option dest")), "{r}");
}

/// `facts` (host name to facts, as a play holds them): the same report as from a folder of
/// the same facts, apart from the facts times (the run's time, not the files' mtimes); the
/// options in conflict or a bad host fail naming them, and nothing is written.
#[test]
fn fleet_report_module_from_the_plays_facts() {
    let a = scan(&support::real_fixture("hwloc-32em64t-2n8c"));
    let b = scan(support::host_fixture("irq-small").path());
    let dir = tempfile::tempdir().unwrap();
    write_json(&dir.path().join("a.json"), &a);
    // The other shape a play may hold: a registered module result.
    write_json(&dir.path().join("b.json"), &json!({"changed": false, "ansible_facts": {"lltune": b.clone()}}));
    let out = tempfile::tempdir().unwrap();
    let (from_dir, from_play) = (out.path().join("dir"), out.path().join("play"));
    let (r, code) = support::run_module("lltune_report", &json!({"facts_dir": dir.path(), "dest": from_dir}));
    assert_eq!(code, 0, "{r}");
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let facts = json!({"b": {"changed": false, "ansible_facts": {"lltune": b}}, "a": a});
    let (r, code) = support::run_module("lltune_report", &json!({"facts": facts, "dest": from_play}));
    assert_eq!((code, &r["hosts"]), (0, &json!(["a", "b"])), "{r}");
    let untimed = |p: &Path| -> String {
        // From a folder a host's source is its file; from the play, its name.
        let text = fs::read_to_string(p).unwrap().replace(r#""source": "a.json""#, r#""source": "a""#);
        let text = text.replace(r#""source": "b.json""#, r#""source": "b""#);
        text.lines().filter(|l| !l.contains("timestamp")).collect::<Vec<_>>().join("\n")
    };
    for f in ["fleet.json", "fleet.csv", "fleet.md", "lltune.prom", "fleet.html"] {
        assert_eq!(untimed(&from_dir.join(f)), untimed(&from_play.join(f)), "{f} differs");
    }
    // Every host's facts time is the run's.
    let j = read_json(&from_play.join("fleet.json"));
    for h in j["hosts"].as_array().unwrap() {
        let t = h["facts_timestamp"].as_f64().unwrap();
        assert!(t >= before.floor() && t < before + 120.0, "{t} vs {before}");
    }
    // Refusals, each naming the option or the host; nothing is written.
    let empty = out.path().join("none");
    for (args, want) in [
        (
            json!({"facts": {"a": {}}, "facts_dir": dir.path(), "dest": empty}),
            "options facts_dir and facts: give one of them, not both",
        ),
        (json!({"dest": empty}), "give option facts_dir (a folder of host facts) or facts (host name to facts)"),
        (json!({"facts": {}, "dest": empty}), "option facts: no hosts in it"),
        (json!({"facts": {"web-1": {"cpu": 1}}, "dest": empty}), "option facts: host web-1: no lltune facts in it"),
        (
            json!({"facts": {"web-1": [1]}, "dest": empty}),
            "option facts: host web-1: a list where an object was expected",
        ),
        (json!({"facts": ["a"], "dest": empty}), "option facts"),
    ] {
        let (r, code) = support::run_module("lltune_report", &args);
        assert_eq!(code, 1, "{args}: {r}");
        let msg = r["msg"].as_str().unwrap();
        assert!(msg.contains(want), "{args}: {msg}");
    }
    assert!(!empty.exists());
}

/// A real play: lltune_facts on three fixture roots with Ansible's jsonfile fact cache, then
/// lltune_report on the controller reads the cache the play left.
#[test]
fn fleet_report_from_a_real_jsonfile_fact_cache() {
    let ansible = support::ansible();
    let sandbox = tempfile::tempdir().unwrap();
    let sb = sandbox.path();
    let cache = sb.join("facts-cache");
    let out = sb.join("fleet");
    let irq = support::host_fixture("irq-small");
    let grub = drifted_grub_host();
    let roots: Vec<(&str, PathBuf)> = vec![
        ("hwloc-2p8co2t", support::real_fixture("hwloc-32intel64-2p8co2t")),
        ("db.example.com", irq.path().to_path_buf()),
        ("grub-drift", grub.path().to_path_buf()),
    ];
    let mut inv = String::from("[fleet]\n");
    for (name, root) in &roots {
        inv += &format!("{name} ansible_connection=local lltune_root={}\n", root.display());
    }
    fs::write(sb.join("inventory.ini"), inv).unwrap();
    fs::write(
        sb.join("report.yml"),
        format!(
            r#"---
- name: Gather lltune facts into the fact cache
  hosts: all
  gather_facts: false
  tasks:
    - name: Gather
      lltune.tuning.lltune_facts:
        root: "{{{{ lltune_root }}}}"

- name: Write the fleet report on the controller
  hosts: all
  gather_facts: false
  tasks:
    - name: Report
      lltune.tuning.lltune_report:
        facts_dir: {cache}
        dest: {out}
      delegate_to: localhost
      run_once: true
      register: __lltune_report

    - name: Check the result
      ansible.builtin.assert:
        that:
          - __lltune_report.summary.hosts == 3
          - __lltune_report.hosts == ['db.example.com', 'grub-drift', 'hwloc-2p8co2t']
          - __lltune_report.summary.reboot_pending == 1
      run_once: true
"#,
            cache = cache.display(),
            out = out.display()
        ),
    )
    .unwrap();
    let play = |extra: &[&str]| {
        let mut cmd = ansible.command(&ansible.playbook, sb);
        cmd.env("ANSIBLE_CACHE_PLUGIN", "jsonfile").env("ANSIBLE_CACHE_PLUGIN_CONNECTION", &cache);
        let out = cmd.args(["-i", "inventory.ini", "report.yml"]).args(extra).output().unwrap();
        support::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let r = play(&[]);
    assert_eq!(r.code, 0, "{}", r.show());
    let changed: u64 = roots.iter().map(|(n, _)| support::play_recap(&r.stdout, n)["changed"]).sum();
    assert_eq!(changed, 1, "the report task, once: {}", r.show());

    // What the cache holds: one file per host, in ansible-core 2.19's encoded form.
    let mut files: Vec<String> =
        fs::read_dir(&cache).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files, ["s1_db.example.com", "s1_grub-drift", "s1_hwloc-2p8co2t"]);
    let raw = read_json(&cache.join("s1_grub-drift"));
    assert!(raw["__payload__"].is_string(), "{raw}");

    let report = read_json(&out.join("fleet.json"));
    let hosts = report["hosts"].as_array().unwrap();
    for ((name, root), h) in {
        let mut r = roots.clone();
        r.sort_by(|a, b| a.0.cmp(b.0));
        r
    }
    .iter()
    .zip(hosts)
    {
        let f = scan(root);
        assert_eq!(h["host"], *name);
        assert_eq!(h["input_shape"], "fact_cache");
        assert_eq!(h["source"], format!("s1_{name}"));
        assert_eq!(h["online_cpus"], f["cpu"]["online"], "{name}");
        assert_eq!(h["recommendations"], f["recommendations"], "{name}");
        assert_eq!(h["score"], expected_score(severity_counts(&f)), "{name}");
    }
    assert_eq!(hosts[1]["drift_args"], 3);
    assert_eq!(hosts[2]["sockets"], 2);
    let prom = parse_prom(&out.join("lltune.prom"));
    assert_eq!(sample(&prom, "lltune_reboot_pending", &json!({"host": "grub-drift"})), Some(1.0));
    assert_eq!(sample(&prom, "lltune_online_cpus", &json!({"host": "hwloc-2p8co2t"})), Some(32.0));

    // Again: the play scans every host anew into the cache, so the facts are newer and the
    // report changes, in the facts' times only; check mode says so and writes nothing.
    let before = fs::read_to_string(out.join("lltune.prom")).unwrap();
    let untimed = |text: &str| -> String {
        text.lines().filter(|l| !l.contains("_timestamp_seconds")).collect::<Vec<_>>().join("\n")
    };
    for extra in [&["--check"][..], &[][..]] {
        let r = play(extra);
        assert_eq!(r.code, 0, "{}", r.show());
        let changed: u64 = roots.iter().map(|(n, _)| support::play_recap(&r.stdout, n)["changed"]).sum();
        assert_eq!(changed, 1, "{extra:?}: {}", r.show());
        let now = fs::read_to_string(out.join("lltune.prom")).unwrap();
        if extra.is_empty() {
            assert_ne!(now, before, "the report of newer facts kept the old times");
            assert_eq!(untimed(&now), untimed(&before));
        } else {
            assert_eq!(now, before, "check mode wrote the report");
        }
    }
    // The freshness of each host is its cache file's mtime.
    let prom = parse_prom(&out.join("lltune.prom"));
    for (name, _) in &roots {
        let t = sample(&prom, "lltune_facts_timestamp_seconds", &json!({"host": name})).unwrap();
        let mtime = fs::metadata(cache.join(format!("s1_{name}")))
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((t - mtime).abs() < 0.002, "{name}: {t} vs the cache file's {mtime}");
    }
}

/// Every field path of a JSON value: `a.b`, `list[]`, map keys that depend on the host as `*`.
fn field_paths(v: &Value, path: &str, out: &mut std::collections::BTreeSet<String>) {
    let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if path == "hosts[].hugepages" { "*" } else { k.as_str() };
                field_paths(x, &join(key), out);
            }
        }
        Value::Array(a) if path == "hosts[].recommendations" => {
            // Documented field by field in docs/facts.md.
            let _ = a;
            out.insert(format!("{path}[]"));
        }
        Value::Array(a) => {
            let p = format!("{path}[]");
            if a.iter().all(|x| !x.is_object()) {
                out.insert(p.clone());
            }
            for x in a {
                field_paths(x, &p, out);
            }
        }
        _ => {
            out.insert(path.to_string());
        }
    }
}

/// docs/report.md documents every field of fleet.json, every CSV column and every metric.
#[test]
fn fleet_report_doc_documents_every_field_column_and_metric() {
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let grub = drifted_grub_host();
    let bls = support::boot_fixture("rhel9-bls");
    write_json(&dir.path().join("grub-drift.json"), &scan(grub.path()));
    write_json(&dir.path().join("bls.json"), &scan(bls.path()));
    write_json(&dir.path().join("real.json"), &scan(&support::real_fixture("hwloc-32intel64-2p8co2t")));
    write_json(&dir.path().join("real.latency.json"), &json!({"latency": {"p99_us": 7, "max_us": 21}}));
    let out = tempfile::tempdir().unwrap();
    let o = run_report(dir.path(), out.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = read_json(&out.path().join("fleet.json"));
    let bls_host = report["hosts"].as_array().unwrap().iter().find(|h| h["host"] == "bls").unwrap();
    assert_eq!(bls_host["boot"]["unresolved"], json!(["$tuned_params"]));
    assert_eq!(bls_host["drift"], json!([]), "the BLS entry of the running kernel gives the running arguments");
    let mut paths = std::collections::BTreeSet::new();
    field_paths(&report, "", &mut paths);
    assert!(paths.contains("hosts[].drift[].configured[]") && paths.contains("hosts[].latency.p99_us"), "{paths:?}");
    let undocumented: Vec<&String> = paths.iter().filter(|p| !doc.contains(&format!("| `{p}` |"))).collect();
    assert!(undocumented.is_empty(), "fields of fleet.json not in docs/report.md: {undocumented:?}");
    let rows = parse_csv(&out.path().join("fleet.csv"));
    let missing: Vec<&String> = rows[0].iter().filter(|c| !doc.contains(&format!("| `{c}` |"))).collect();
    assert!(missing.is_empty(), "CSV columns not in docs/report.md: {missing:?}");
    let prom = parse_prom(&out.path().join("lltune.prom"));
    let names: std::collections::BTreeSet<&str> = prom.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names.len(), 16, "every metric has a sample here: {names:?}");
    let missing: Vec<&&str> = names.iter().filter(|n| !doc.contains(&format!("| `{n}` |"))).collect();
    assert!(missing.is_empty(), "metrics not in docs/report.md: {missing:?}");
}

/// Runs headless Chromium (Debian's `chromium`) on a local file with a profile of its own.
fn chromium(args: &[&str], page: &Path, profile: &Path) -> std::process::Output {
    Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .env("HOME", profile)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium")
}

/// `(width, height)` of a PNG, from its IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// fleet.html looked at as a person does, in a real browser: headless Chromium draws it (a
/// screenshot with the charts in it, far more than a blank page's) and reads it (the text it
/// must show: the summary, every host, every chart), with nothing fetched.
#[test]
fn fleet_html_in_headless_chromium() {
    if Command::new("chromium").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        return support::skip_unless_ci("fleet.html: no chromium here (apt-get install chromium)");
    }
    let fleet = build_fleet();
    let out = tempfile::tempdir().unwrap();
    let o = run_report(fleet.facts_dir.path(), out.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = out.path().join("fleet.html");
    let profile = tempfile::tempdir().unwrap();

    // The DOM as the browser built it: every host in each chart and in the table.
    let dom = chromium(&["--dump-dom"], &page, profile.path());
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8(dom.stdout).unwrap();
    let report: Value = serde_json::from_str(&fs::read_to_string(out.path().join("fleet.json")).unwrap()).unwrap();
    let s = &report["summary"];
    assert!(
        dom.contains(&format!(
            "{} hosts; findings: {} errors, {} warnings, {} info;",
            s["hosts"], s["findings"]["error"], s["findings"]["warning"], s["findings"]["info"]
        )),
        "{dom}"
    );
    for title in ["Score per host", "Findings by severity", "Boot drift", "Hosts", "Findings"] {
        assert!(dom.contains(&format!("<h2>{title}</h2>")), "{title}: {dom}");
    }
    assert_eq!(dom.matches("<svg").count(), 3, "{dom}");
    for (name, _) in &fleet.hosts {
        // A bar label per chart (drift: where known), and a table row.
        assert!(dom.matches(&format!(">{name}</text>")).count() >= 2, "{name}: {dom}");
        assert!(dom.contains(&format!("<tr><td>{name}</td>")), "{name}: {dom}");
    }

    // Drawn: a screenshot of the page against one of a blank page of the same size.
    let shot = out.path().join("fleet.png");
    let blank_page = out.path().join("blank.html");
    fs::write(&blank_page, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let blank_shot = out.path().join("blank.png");
    for (p, png) in [(&page, &shot), (&blank_page, &blank_shot)] {
        let arg = format!("--screenshot={}", png.display());
        let r = chromium(&["--window-size=1280,1600", &arg], p, profile.path());
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let (shot, blank) = (fs::read(&shot).unwrap(), fs::read(&blank_shot).unwrap());
    assert_eq!(png_size(&shot), (1280, 1600));
    assert!(
        shot.len() > 10 * blank.len(),
        "the page drew little: {} bytes against a blank page's {}",
        shot.len(),
        blank.len()
    );
    // Keep the picture where a person can look at it after the test.
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-html.png");
    fs::write(&keep, &shot).unwrap();
}
