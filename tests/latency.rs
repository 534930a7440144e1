//! Latency proof: cyclictest's histogram parsed (a captured sample and a fresh 2 s run on CPUs 0
//! and 1), percentiles against hand-computed values, the before/after table and SVG,
//! `lltune_latency` through its binary and through ansible-playbook (check mode and a real
//! run), the error without cyclictest, and bad options. Tests that run cyclictest need it and
//! root: without them they skip with a message, except under CI=true, where they fail.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use lltune::cpulist::CpuList;
use lltune::latency::{
    self, CpuRoles, CpuSets, CpuStats, LatencyDoc, Role, Settings, ThreadHistogram, parse_histogram, report,
};
use serde_json::{Value, json};

use crate::support::{self, play_recap};

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/latency").join(name);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// True when cyclictest can run here: on the PATH, as root, with CPUs 0 and 1 online. Else
/// skips (fails under CI) and returns false.
fn cyclictest_ready(test: &str) -> bool {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("cyclictest").is_file()))
        .unwrap_or(false);
    if !on_path {
        support::skip_unless_ci(&format!(
            "{test}: cyclictest is not installed (apt-get install rt-tests; .ci/run installs it)"
        ));
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        support::skip_unless_ci(&format!("{test}: cyclictest needs root (SCHED_FIFO, mlockall)"));
        return false;
    }
    let online = fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let online = CpuList::parse(&online).unwrap_or_default();
    if !(online.contains(0) && online.contains(1)) {
        support::skip_unless_ci(&format!("{test}: CPUs 0 and 1 are not both online ({online})"));
        return false;
    }
    true
}

fn lltune(args: &[&str]) -> std::process::Output {
    Command::new(support::bin("lltune")).args(args).output().expect("run lltune")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---- The parser and the statistics ----

#[test]
fn captured_cyclictest_output_parses() {
    let threads = parse_histogram(&fixture("cyclictest-2cpu-h400.txt")).unwrap();
    assert_eq!(threads.len(), 2);
    let t0 = &threads[0];
    let t1 = &threads[1];
    assert_eq!(t0.buckets.len(), 400);
    assert_eq!((t0.total, t1.total), (Some(9860), Some(9817)));
    assert_eq!((t0.overflows, t1.overflows), (Some(13), Some(23)));
    assert_eq!((t0.min_us, t0.avg_us, t0.max_us), (Some(9), Some(40), Some(706)));
    assert_eq!((t1.min_us, t1.avg_us, t1.max_us), (Some(12), Some(39), Some(1799)));
    assert_eq!(t0.buckets.iter().sum::<u64>(), 9860);

    // Percentiles computed by hand from the file (nearest rank over buckets + overflows):
    // CPU 0: 9873 samples; rank 4937 falls in bucket 25, rank 9775 in bucket 208; ranks 9864
    // (p99.9) and 9873 (p99.99) lie among the 13 overflows past 400 µs.
    let s0 = CpuStats::from_histogram(0, Role::Housekeeping, t0);
    assert_eq!(s0.samples, 9873);
    assert_eq!((s0.p50_us, s0.p99_us, s0.p99_9_us, s0.p99_99_us), (Some(25), Some(208), Some(400), Some(400)));
    assert_eq!(s0.beyond_histogram, ["p99_9", "p99_99"]);
    let s1 = CpuStats::from_histogram(1, Role::Isolated, t1);
    assert_eq!(s1.samples, 9840);
    assert_eq!((s1.p50_us, s1.p99_us), (Some(25), Some(215)));
    assert_eq!(s1.histogram.iter().map(|b| b[1]).sum::<u64>(), 9817);
    assert_eq!(s1.histogram[0], [12, 2], "the first non-empty bucket of CPU 1 is its minimum");
}

/// A histogram small enough to check by hand, in cyclictest's layout, three threads, with the
/// comment lines a real run prints.
const HAND: &str = "\
# /dev/cpu_dma_latency set to 0us
# Histogram
000000 000000\t000000\t000000
000001 000005\t000000\t000000
000002 000090\t000001\t000000
000003 000004\t000000\t000000
000004 000000\t000000\t000000
000005 000001\t000000\t000000
# Total: 000000100 000000001 000000000
# Min Latencies: 00001 00002 00000
# Avg Latencies: 00002 00002 00000
# Max Latencies: 00005 00950 00000
# Histogram Overflows: 00000 00001 00000
# Histogram Overflow at cycle number:
# Thread 0:
# Thread 1: 00001
# Thread 2:
";

#[test]
fn percentiles_match_hand_computed_values() {
    let t = parse_histogram(HAND).unwrap();
    assert_eq!(t.len(), 3);
    // Thread 0: 100 samples, 5 at 1 µs, 90 at 2, 4 at 3, 1 at 5.
    // p50: rank 50 → 2; p99: rank 99 → 3 (5+90+4 = 99); p99.9 and p99.99: rank 100 → 5.
    let s = CpuStats::from_histogram(4, Role::Isolated, &t[0]);
    assert_eq!((s.samples, s.min_us, s.avg_us, s.max_us), (100, Some(1), Some(2), Some(5)));
    assert_eq!((s.p50_us, s.p99_us, s.p99_9_us, s.p99_99_us), (Some(2), Some(3), Some(5), Some(5)));
    assert!(s.beyond_histogram.is_empty());
    assert_eq!(s.histogram, vec![[1, 5], [2, 90], [3, 4], [5, 1]]);
    // Thread 1: one sample at 2 µs and one overflow (max 950): p50 is rank 1 → 2; p99 is rank 2,
    // past the 6-bucket histogram → 6, a lower bound.
    let s = CpuStats::from_histogram(5, Role::Isolated, &t[1]);
    assert_eq!((s.samples, s.p50_us, s.p99_us, s.max_us), (2, Some(2), Some(6), Some(950)));
    assert_eq!(s.beyond_histogram, ["p99", "p99_9", "p99_99"]);
    // Thread 2: no samples at all: every statistic is null.
    let s = CpuStats::from_histogram(6, Role::Housekeeping, &t[2]);
    assert_eq!((s.samples, s.min_us, s.max_us, s.p99_us), (0, None, None, None));
    // The pure percentile function, with the 99.99th on 10 000 samples.
    let mut b = vec![0u64; 100];
    b[7] = 9_998;
    b[40] = 1;
    assert_eq!(latency::percentile(&b, 1, 999_900), Some((40, false)));
    assert_eq!(latency::percentile(&b, 1, 1_000_000), Some((100, true)));
}

#[test]
fn unparseable_output_is_a_clear_error() {
    for (text, want) in [
        ("", "no histogram rows and no summary lines (was cyclictest run with -h?)"),
        ("T: 0 ( 1234) P:95 I:200 C:  10000 Min: 3 Act: 5 Avg: 4 Max: 20\n", "was cyclictest run with -h?"),
        ("000000 1 2\nSegmentation fault\n", "at line 2: not a histogram row: \"Segmentation fault\""),
        ("000000 1 2\n000001 1\n", "at line 2: 1 counts in a histogram row, 2 threads"),
        ("000000 1 2\n000000 1 2\n", "at line 2: bucket 0 where bucket 1 was due"),
        ("000000 1 2\n# Max Latencies: 00005\n", "at line 2: Max Latencies: 1 numbers for 2 threads"),
        ("000000 1 2 3\n000001 1 2\n", "at line 2: 2 counts in a histogram row, 3 threads"),
        ("000000 1 2\n# Max Latencies: 5 x\n", "at line 2: Max Latencies: is not followed by numbers only"),
        ("000000 3 2\n# Total: 000000003 000000009\n", "thread 1: # Total: 9 but its histogram rows add up to 2"),
    ] {
        let e = parse_histogram(text).expect_err(text).to_string();
        assert!(e.starts_with("cannot parse cyclictest output"), "{e}");
        assert!(e.contains(want), "{text:?}: {e:?} does not contain {want:?}");
    }
}

// ---- Before and after: the table and the SVG ----

/// A document for `host` with these threads on `cpus`, `isolated` isolated.
fn doc(host: &str, cpus: &str, isolated: &str, threads: &[ThreadHistogram], histogram_us: u64) -> LatencyDoc {
    let roles = CpuRoles { online: CpuList::parse("0-1").unwrap(), isolated: CpuList::parse(isolated).unwrap() };
    let settings = Settings { duration_s: 2, interval_us: 200, priority: 95, histogram_us };
    let sets = CpuSets {
        measured: CpuList::parse(cpus).unwrap(),
        isolated: roles.isolated.clone(),
        housekeeping: roles.housekeeping(),
    };
    let mut d = LatencyDoc::new(host.into(), Some("6.1.0-test".into()), "20261130T100000Z".into(), settings, sets);
    d.fill(threads, &roles).unwrap();
    d
}

/// The "after" of the captured sample: CPU 1 isolated, its histogram moved down to a tight
/// 3-6 µs with no overflow.
fn tuned_threads() -> Vec<ThreadHistogram> {
    let before = parse_histogram(&fixture("cyclictest-2cpu-h400.txt")).unwrap();
    let mut b = vec![0u64; 400];
    b[3] = 4000;
    b[4] = 5800;
    b[5] = 180;
    b[6] = 20;
    let tuned = ThreadHistogram {
        buckets: b,
        total: Some(10_000),
        min_us: Some(3),
        avg_us: Some(3),
        max_us: Some(6),
        overflows: Some(0),
    };
    vec![before[0].clone(), tuned]
}

fn check_svg(path: &Path, polylines: usize) {
    // Python's XML parser: the file is well-formed XML with an <svg> root in the SVG namespace.
    let script = "import sys, xml.etree.ElementTree as E\n\
                  r = E.parse(sys.argv[1]).getroot()\n\
                  ns = '{http://www.w3.org/2000/svg}'\n\
                  assert r.tag == ns + 'svg', r.tag\n\
                  print(len(r.findall(ns + 'polyline')), len(r.findall(ns + 'text')), r.find(ns + 'title').text)\n";
    let out = Command::new("python3").arg("-c").arg(script).arg(path).output().expect("run python3");
    assert!(out.status.success(), "{}: not valid SVG: {}", path.display(), stderr(&out));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut f = line.splitn(3, ' ');
    assert_eq!(f.next().unwrap().parse::<usize>().unwrap(), polylines, "{line}");
    assert!(f.next().unwrap().parse::<usize>().unwrap() > 10, "{line}");
    assert!(f.next().unwrap().starts_with("cyclictest wake-up latency"), "{line}");
}

#[test]
fn compare_writes_a_table_and_an_svg_of_both_histograms() {
    let before = parse_histogram(&fixture("cyclictest-2cpu-h400.txt")).unwrap();
    let before = doc("trade01", "0-1", "", &before, 400);
    let after = doc("trade01", "0-1", "1", &tuned_threads(), 400);
    assert_eq!(after.summary.isolated.as_ref().unwrap().p99_us, Some(5));
    assert_eq!(after.summary.housekeeping.as_ref().unwrap().max_us, Some(706));

    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("before.json");
    let a = dir.path().join("after.json");
    fs::write(&b, serde_json::to_string_pretty(&before).unwrap()).unwrap();
    // The after run saved as a module result: extra keys beside the document are ignored.
    let mut module_result = serde_json::to_value(&after).unwrap();
    module_result["changed"] = json!(false);
    module_result["failed"] = json!(false);
    module_result["invocation"] = json!({"module_args": {"duration": 2}});
    fs::write(&a, module_result.to_string()).unwrap();
    let md = dir.path().join("latency.md");
    let o =
        lltune(&["validate", "--compare", b.to_str().unwrap(), a.to_str().unwrap(), "--report", md.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = fs::read_to_string(&md).unwrap();
    for want in [
        "# Latency before and after: trade01",
        "| isolated CPUs | none | 1 |",
        // CPU 1, isolated after: p99 215 → 5, p99.99 was past the histogram, max 1799 → 6.
        "| 1 | isolated | 215 | 5 | -98% | ≥400 | 6 | — | 1799 | 6 | -100% |",
        "| 0 | housekeeping | 208 | 208 | 0% | ≥400 | ≥400 | — | 706 | 706 | 0% |",
        "| 1 | housekeeping → isolated | 39 | 3 | 215 | 5 | ≥400 | 6 | 1799 | 6 | -100% |",
        "before: CPU 1: 23 of 9840 wake-ups (0.234%) were later than the histogram's 400 µs",
        "![cyclictest histograms before and after](latency.svg)",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    // The SVG beside the report: two step lines, one per run, summed over CPU 1 (isolated after).
    let svg = dir.path().join("latency.svg");
    check_svg(&svg, 2);
    let s = fs::read_to_string(&svg).unwrap();
    assert!(
        s.contains("CPUs 1</title>") && s.contains("before (9840 wake-ups)") && s.contains("after (10000 wake-ups)")
    );
    assert!(s.contains("≥400 µs"), "the overflow bars are labelled");

    // Markdown to standard output and the SVG where --svg says.
    let svg2 = dir.path().join("plots/cmp.svg");
    fs::create_dir(dir.path().join("plots")).unwrap();
    let o =
        lltune(&["validate", "--compare", b.to_str().unwrap(), a.to_str().unwrap(), "--svg", svg2.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("]({})", svg2.display())));
    check_svg(&svg2, 2);

    // The library functions give the same text.
    assert_eq!(report::compare_markdown(&before, &after, Some("latency.svg")), text);

    // Not a latency result: refused, naming the file and what it is.
    let other = dir.path().join("facts.json");
    fs::write(&other, r#"{"schema_version": 1, "cpu": {}}"#).unwrap();
    let o = lltune(&["validate", "--compare", other.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("facts.json: not a lltune latency result (kind is None"), "{}", stderr(&o));
    let newer = dir.path().join("v2.json");
    fs::write(&newer, r#"{"kind": "lltune.latency", "schema_version": 2}"#).unwrap();
    let o = lltune(&["validate", "--compare", newer.to_str().unwrap(), a.to_str().unwrap()]);
    assert!(stderr(&o).contains("schema_version Some(2); this lltune reads 1"), "{}", stderr(&o));
}

// ---- Real runs ----

#[test]
fn real_cyclictest_run_on_cpus_0_and_1_parses() {
    if !cyclictest_ready("real_cyclictest_run_on_cpus_0_and_1_parses") {
        return;
    }
    // cyclictest itself, as lltune runs it, 2 s at a 100 µs interval.
    let out = Command::new("cyclictest")
        .args(["-q", "-m", "-t", "2", "-a", "0-1", "-p", "90", "-i", "100", "-D", "2", "-h", "2000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "cyclictest: {}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let threads = parse_histogram(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(threads.len(), 2);
    for (cpu, t) in threads.iter().enumerate() {
        let s = CpuStats::from_histogram(cpu as u32, Role::Housekeeping, t);
        eprintln!(
            "CPU {cpu}: {} samples, min {:?} avg {:?} p99 {:?} p99.99 {:?} max {:?} µs, {} overflows",
            s.samples, s.min_us, s.avg_us, s.p99_us, s.p99_99_us, s.max_us, s.overflows
        );
        // 2 s at 100 µs is 20 000 wake-ups; a busy machine loses some.
        assert!((2_000..=20_100).contains(&s.samples), "CPU {cpu}: {} samples", s.samples);
        let (min, p50, p99, max) = (s.min_us.unwrap(), s.p50_us.unwrap(), s.p99_us.unwrap(), s.max_us.unwrap());
        assert!(min <= p50 && p50 <= p99 && p99 <= s.p99_99_us.unwrap(), "{s:?}");
        assert!(p99 <= max || s.beyond_histogram.contains(&"p99".to_string()), "{s:?}");
    }
}

#[test]
fn validate_measures_saves_and_reports() {
    if !cyclictest_ready("validate_measures_saves_and_reports") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("run.json");
    let md = dir.path().join("run.md");
    #[rustfmt::skip]
    let o = lltune(&["validate", "--cpus", "0-1", "--duration", "2", "--interval", "200", "--histogram-us", "2000",
                     "--save", save.to_str().unwrap(), "--report", md.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&fs::read_to_string(&save).unwrap()).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["schema_version"].as_u64(), v["measured"].as_bool()),
        (Some("lltune.latency"), Some(1), Some(true))
    );
    assert_eq!(v["cpus"]["measured"], "0-1");
    assert_eq!(v["tool"]["name"], "cyclictest");
    let args: Vec<&str> = v["tool"]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    for w in [["-a", "0-1"], ["-D", "2"], ["-i", "200"], ["-h", "2000"], ["-t", "2"]] {
        assert!(args.windows(2).any(|x| x == w), "{w:?} not in {args:?}");
    }
    let per_cpu = v["per_cpu"].as_array().unwrap();
    assert_eq!(per_cpu.len(), 2);
    for c in per_cpu {
        let hist: u64 = c["histogram"].as_array().unwrap().iter().map(|b| b[1].as_u64().unwrap()).sum();
        assert_eq!(hist + c["overflows"].as_u64().unwrap(), c["samples"].as_u64().unwrap(), "{c}");
        assert!(c["samples"].as_u64().unwrap() >= 1_000, "{c}");
    }
    // What else happened: the interrupts each measured CPU took (cyclictest's own timer wakes
    // it every 200 µs, so its local timer interrupts moved), read from this host's
    // /proc/interrupts before and after the run.
    let irqs = v["noise"]["interrupts"].as_array().unwrap();
    assert_eq!(irqs.iter().map(|c| c["cpu"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1], "{irqs:?}");
    for c in irqs {
        let top = c["top"].as_array().unwrap();
        let loc = top.iter().find(|s| s["source"] == "LOC").unwrap_or_else(|| panic!("no LOC in {c}"));
        assert!(loc["count"].as_u64().unwrap() > 0, "{c}");
        let sum: u64 = top.iter().map(|s| s["count"].as_u64().unwrap()).sum();
        assert!(sum <= c["device"].as_u64().unwrap() + c["per_cpu"].as_u64().unwrap(), "{c}");
    }
    assert!(v["noise"]["nic_drops"].is_array() && v["noise"]["time_offsets"].is_array(), "{}", v["noise"]);
    let text = fs::read_to_string(&md).unwrap();
    assert!(
        text.contains("| CPU | role | samples | min | avg | p50 | p99 | p99.9 | p99.99 | max | overflows |"),
        "{text}"
    );
    assert!(text.contains("## Interrupts during the run") && text.contains(" LOC Local timer interrupts ("), "{text}");
    check_svg(&dir.path().join("run.svg"), 1);
    // The saved run compares with itself: every change is 0% or undefined.
    let o = lltune(&["validate", "--compare", save.to_str().unwrap(), save.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cmp = String::from_utf8_lossy(&o.stdout);
    assert!(
        cmp.contains("| 0 | housekeeping → housekeeping |") || cmp.contains("| 0 | isolated → isolated |"),
        "{cmp}"
    );
}

#[test]
fn module_measures_and_check_mode_does_not() {
    if !cyclictest_ready("module_measures_and_check_mode_does_not") {
        return;
    }
    let args = json!({"cpus": "0-1", "duration": 2, "interval": 200, "histogram_us": "2000"});
    let mut check = args.clone();
    check["_ansible_check_mode"] = json!(true);
    let (v, code) = support::run_module("lltune_latency", &check);
    assert_eq!(code, 0, "{v}");
    assert_eq!((v["changed"].as_bool(), v["measured"].as_bool()), (Some(false), Some(false)), "{v}");
    assert!(v["skipped_reason"].as_str().unwrap().contains("check mode"), "{v}");
    assert!(v.get("skipped").is_none(), "{v}");
    assert_eq!(v["per_cpu"], json!([]));
    assert!(v["tool"]["args"].as_array().unwrap().contains(&json!("-D")), "{v}");

    // run_in_check_mode: measured under check mode too.
    let mut run_anyway = check.clone();
    run_anyway["run_in_check_mode"] = json!("yes");
    run_anyway["duration"] = json!(1);
    let (v, code) = support::run_module("lltune_latency", &run_anyway);
    assert_eq!((code, v["measured"].as_bool(), v["changed"].as_bool()), (0, Some(true), Some(false)), "{v}");

    let (v, code) = support::run_module("lltune_latency", &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (v["changed"].as_bool(), v["failed"].as_bool(), v["measured"].as_bool()),
        (Some(false), Some(false), Some(true))
    );
    assert_eq!(v["skipped_reason"], Value::Null);
    let doc: LatencyDoc = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(doc.per_cpu.iter().map(|c| c.cpu).collect::<Vec<_>>(), [0, 1]);
    assert!(doc.per_cpu.iter().all(|c| c.samples >= 1_000), "{v}");
    let summary_cpus = [&doc.summary.isolated, &doc.summary.housekeeping]
        .iter()
        .filter_map(|s| s.as_ref().map(|s| s.cpus.len()))
        .sum::<usize>();
    assert_eq!(summary_cpus, 2);
}

#[test]
fn module_on_a_captured_tree_checks_but_never_measures() {
    let dir = support::host_fixture("intel-pstate-2node");
    let (v, code) = support::run_module("lltune_latency", &json!({"root": dir.path(), "cpus": "2-3", "duration": 5}));
    assert_eq!(code, 0, "{v}");
    assert_eq!((v["measured"].as_bool(), v["changed"].as_bool()), (Some(false), Some(false)));
    assert!(v["skipped_reason"].as_str().unwrap().contains("not /: cyclictest measures the running kernel"), "{v}");
    assert_eq!(v["cpus"], json!({"measured": "2-3", "isolated": "", "housekeeping": "0-7"}));
    let (v, code) = support::run_module("lltune_latency", &json!({"root": dir.path(), "cpus": "6-9"}));
    assert_eq!((code, v["msg"].as_str()), (1, Some("option cpus: CPU 8-9 is not online (online: 0-7)")));
    let (v, _) = support::run_module("lltune_latency", &json!({"root": dir.path(), "cpus": "isolated"}));
    assert_eq!(v["msg"], "option cpus: this host has no isolated CPUs (cpu.isolated is empty)");
}

// ---- Without cyclictest, and bad options ----

/// Runs the module binary with `PATH` set to `path`.
fn run_module_with_path(args: &Value, path: &Path) -> (Value, i32) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("args.json");
    fs::write(&f, args.to_string()).unwrap();
    let out = Command::new(support::bin("lltune_latency")).arg(&f).env("PATH", path).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    (v, out.status.code().unwrap_or(-1))
}

#[test]
fn missing_cyclictest_is_named_with_its_package() {
    let empty = tempfile::tempdir().unwrap();
    let (v, code) = run_module_with_path(&json!({"cpus": "0", "duration": 1}), empty.path());
    assert_eq!((code, v["failed"].as_bool(), v["changed"].as_bool()), (1, Some(true), Some(false)), "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.starts_with(&format!("cyclictest not found on PATH ({})", empty.path().display())), "{msg}");
    assert!(msg.contains("install the rt-tests package"), "{msg}");
    // Check mode looks it up too: the real run would fail the same way.
    let (v, code) = run_module_with_path(&json!({"_ansible_check_mode": true}), empty.path());
    assert_eq!(code, 1, "{v}");
    assert!(v["msg"].as_str().unwrap().starts_with("cyclictest not found on PATH"), "{v}");

    // An explicit path that is not there, not absolute, or not cyclictest: the option is named.
    let (v, _) = support::run_module("lltune_latency", &json!({"cyclictest": "/nonexistent/bin/cyclictest"}));
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.starts_with("option cyclictest: /nonexistent/bin/cyclictest: No such file"), "{msg}");
    assert!(msg.contains("rt-tests"), "{msg}");
    let (v, _) = support::run_module("lltune_latency", &json!({"cyclictest": "cyclictest"}));
    assert_eq!(v["msg"], "option cyclictest: \"cyclictest\" is not an absolute path");
    let other = tempfile::tempdir().unwrap();
    let fake = other.path().join("cyclictest");
    fs::write(&fake, "#!/bin/sh\necho hello\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let (v, _) = support::run_module("lltune_latency", &json!({"cyclictest": fake, "duration": 1}));
    assert!(
        v["msg"].as_str().unwrap().ends_with("does not look like cyclictest: its --help does not name cyclictest"),
        "{v}"
    );

    // The CLI says the same.
    let o = Command::new(support::bin("lltune"))
        .args(["validate", "--duration", "1"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("lltune: error: cyclictest not found on PATH"), "{}", stderr(&o));
}

#[test]
fn bad_options_are_refused_naming_the_option() {
    for (args, want) in [
        (json!({"duration": 100000}), "option duration: 100000 seconds is out of range: 1 to 3600 (one hour)"),
        (json!({"duration": 0}), "option duration: 0 seconds is out of range: 1 to 3600 (one hour)"),
        (json!({"duration": "ten"}), "option duration: expected a whole number, got \"ten\""),
        (json!({"duration": -5}), "option duration: expected a whole number, got -5"),
        (json!({"interval": 10}), "option interval: 10 µs is out of range: 50 to 1000000"),
        (json!({"priority": 100}), "option priority: 100 is out of range: 1 to 99 (SCHED_FIFO)"),
        (json!({"priority": 4294967296u64}), "option priority: 4294967296 is out of range: 1 to 99 (SCHED_FIFO)"),
        (json!({"histogram_us": 50000}), "option histogram_us: 50000 µs is out of range: 10 to 10000"),
        (
            json!({"cpus": "0-1x"}),
            "option cpus: \"0-1x\" is neither a CPU list (like 0-3,8) nor all, isolated or housekeeping",
        ),
        (json!({"cpus": "0;reboot"}), "option cpus: \"0;reboot\" is neither a CPU list"),
        (json!({"cpus": "3-1"}), "option cpus: invalid CPU list"),
        (json!({"cpus": "4095"}), "option cpus: CPU 4095 is not online (online: "),
        (
            json!({"cpus": {"a": 1}}),
            "option cpus: expected a CPU list (like 0-3,8) or all, isolated, housekeeping; got a mapping",
        ),
        (json!({"run_in_check_mode": "maybe"}), "option run_in_check_mode: expected a boolean, got \"maybe\""),
        (
            json!({"durations": 5}),
            "unsupported option durations; supported options: cpus, cyclictest, duration, histogram_us, interval, option_names, priority, root, run_in_check_mode",
        ),
    ] {
        let (v, code) = support::run_module("lltune_latency", &args);
        assert_eq!((code, v["failed"].as_bool(), v["changed"].as_bool()), (1, Some(true), Some(false)), "{args}: {v}");
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.starts_with(want), "{args}: {msg:?} does not start with {want:?}");
    }
    let o = lltune(&["validate", "--duration", "100000"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--duration: 100000 seconds is out of range"), "{}", stderr(&o));
    let o = lltune(&["validate", "--cpus", "0-1x"]);
    assert!(stderr(&o).contains("--cpus: \"0-1x\" is neither a CPU list"), "{}", stderr(&o));
    let o = lltune(&["validate", "--histogram-us", "5"]);
    assert!(stderr(&o).contains("--histogram-us: 5 µs is out of range"), "{}", stderr(&o));
}

// ---- Through ansible-playbook ----

const PLAY: &str = r#"---
- name: Measure latency
  hosts: all
  gather_facts: false
  tasks:
    - name: Run cyclictest through lltune_latency
      lltune.tuning.lltune_latency:
        cpus: "0-1"
        duration: 2
        interval: 200
        histogram_us: 2000
      register: __lltune_latency

    - name: Check the result
      ansible.builtin.assert:
        that:
          - __lltune_latency is not changed
          - __lltune_latency is not failed
          - __lltune_latency is not skipped
          - __lltune_latency.kind == 'lltune.latency'
          - __lltune_latency.measured == (not ansible_check_mode)
          - (__lltune_latency.skipped_reason is none) == (not ansible_check_mode)
          - __lltune_latency.per_cpu | length == (0 if ansible_check_mode else 2)

    - name: Save the result for a comparison
      ansible.builtin.copy:
        content: "{{ __lltune_latency | to_nice_json }}"
        dest: "{{ lltune_out }}"
        mode: "0644"
      check_mode: false
"#;

#[test]
fn playbook_measures_and_check_mode_skips_the_measurement() {
    if !cyclictest_ready("playbook_measures_and_check_mode_skips_the_measurement") {
        return;
    }
    let sandbox = tempfile::tempdir().unwrap();
    fs::write(sandbox.path().join("latency.yml"), PLAY).unwrap();
    let play = |out: &PathBuf, flags: &[&str]| {
        let vars = json!({"lltune_out": out}).to_string();
        let mut args = vec!["-i", "localhost,", "-c", "local", "-e", vars.as_str()];
        args.extend_from_slice(flags);
        let path = sandbox.path().join("latency.yml");
        args.push(path.to_str().unwrap());
        let r = support::run_ansible(&support::ansible().playbook, sandbox.path(), &args, None);
        assert_eq!(r.code, 0, "{}", r.show());
        let recap = play_recap(&r.stdout, "localhost");
        assert_eq!((recap["failed"], recap["skipped"]), (0, 0), "{}", r.show());
        r
    };
    let checked = sandbox.path().join("check.json");
    play(&checked, &["--check"]);
    let v: Value = serde_json::from_str(&fs::read_to_string(&checked).unwrap()).unwrap();
    assert_eq!(v["measured"], false);
    assert!(v["skipped_reason"].as_str().unwrap().contains("run_in_check_mode"), "{v}");

    let before = sandbox.path().join("before.json");
    let after = sandbox.path().join("after.json");
    play(&before, &[]);
    play(&after, &[]);
    // The saved module results compare like `lltune validate --save` files.
    let md = sandbox.path().join("latency.md");
    let o = lltune(&[
        "validate",
        "--compare",
        before.to_str().unwrap(),
        after.to_str().unwrap(),
        "--report",
        md.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = fs::read_to_string(&md).unwrap();
    assert!(text.contains("## Per CPU (µs)") && text.contains("| 1 | "), "{text}");
    check_svg(&sandbox.path().join("latency.svg"), 2);
}

// ---- A killed module leaves no cyclictest behind ----

/// The children of `pid` that have not ended, with their command lines.
fn children_of(pid: u32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[1] == pid.to_string() && !matches!(f[0], "Z" | "X") {
            let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            out.push((p, String::from_utf8_lossy(&cmd).replace('\0', " ")));
        }
    }
    out
}

/// Whether `pid` is a process that has not ended (a zombie has ended).
fn running(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with(['Z', 'X'])))
        .unwrap_or(false)
}

/// Starts `lltune_latency` with `args` (PATH `path` when given), waits until its measuring
/// child (not the `--help` probe) runs, sends `signal` to the module and returns the
/// child's pid once the module is gone.
fn kill_module_mid_run(args: &Value, path: Option<&Path>, signal: i32) -> i32 {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("args.json");
    fs::write(&f, args.to_string()).unwrap();
    let mut cmd = Command::new(support::bin("lltune_latency"));
    cmd.arg(&f).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let mut module = cmd.spawn().unwrap();
    let t = std::time::Instant::now();
    let child = loop {
        if let Some((pid, _)) = children_of(module.id()).into_iter().find(|(_, c)| !c.contains("--help")) {
            break pid;
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(20), "no measuring child appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: kill(2) on the module process this test started.
    unsafe { libc::kill(module.id() as i32, signal) };
    module.wait().unwrap();
    child
}

fn assert_gone_soon(pid: i32, what: &str) {
    let t = std::time::Instant::now();
    while running(pid) {
        if t.elapsed() > std::time::Duration::from_secs(3) {
            // SAFETY: kill(2) on the leftover, so the failing test does not leave it running.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{what}: child {pid} still runs 3 s after the module was killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

// See: issue 17 (an Ansible timeout killing the module left cyclictest at SCHED_FIFO for up to
// its whole duration).
#[test]
fn killed_module_leaves_no_cyclictest_running() {
    if !cyclictest_ready("killed_module_leaves_no_cyclictest_running") {
        return;
    }
    for signal in [libc::SIGKILL, libc::SIGTERM] {
        let child = kill_module_mid_run(&json!({"cpus": "0", "duration": 120}), None, signal);
        assert_gone_soon(child, &format!("cyclictest, module killed by signal {signal}"));
    }
}

/// A fake cyclictest (a shell script, not rt-tests): answers `--help` like cyclictest, then
/// sleeps as one process, ignoring SIGINT, as a hung measurement would.
fn fake_cyclictest(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("cyclictest");
    fs::write(
        &p,
        "#!/bin/sh\n# A fake cyclictest for tests.\n\
         if [ \"$1\" = --help ]; then echo 'cyclictest V 9.99 (fake) --mainaffinity --default-system'; exit 0; fi\n\
         trap '' INT\nexec sleep 600\n",
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn killed_module_takes_a_hung_fake_cyclictest_with_it() {
    let bin = tempfile::tempdir().unwrap();
    let fake = fake_cyclictest(bin.path());
    let path = std::env::join_paths([bin.path(), Path::new("/usr/bin"), Path::new("/bin")]).unwrap();
    for signal in [libc::SIGKILL, libc::SIGTERM] {
        let child = kill_module_mid_run(
            &json!({"cpus": "0", "duration": 600, "cyclictest": fake}),
            Some(Path::new(&path)),
            signal,
        );
        assert_gone_soon(child, &format!("fake cyclictest, module killed by signal {signal}"));
    }
}

#[test]
fn an_empty_cpu_selection_names_no_cpu_and_is_refused() {
    for cpus in [json!(""), json!("  "), json!([])] {
        let (v, code) = support::run_module("lltune_latency", &json!({"cpus": cpus, "_ansible_check_mode": true}));
        assert_eq!(code, 1, "{cpus}: {v}");
        assert!(v["msg"].as_str().unwrap().starts_with("option cpus: names no CPU"), "{cpus}: {v}");
    }
    let o = lltune(&["validate", "--cpus", ""]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--cpus: names no CPU"), "{}", stderr(&o));
}

#[test]
fn on_a_tree_the_cyclictest_path_is_checked_inside_the_tree() {
    use std::os::unix::fs::PermissionsExt;
    let dir = support::host_fixture("intel-pstate-2node");
    let root = dir.path();
    let run = |extra: Value| {
        let mut a = json!({"root": root, "cpus": "0"});
        a.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        support::run_module("lltune_latency", &a)
    };
    let (v, code) = run(json!({"cyclictest": "/usr/bin/cyclictest"}));
    assert_eq!(code, 1, "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.starts_with("option cyclictest: /usr/bin/cyclictest does not exist under root"), "{msg}");
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("usr/bin/cyclictest")).unwrap();
    let (v, _) = run(json!({"cyclictest": "/usr/bin/cyclictest"}));
    assert!(v["msg"].as_str().unwrap().contains("is a directory, not a regular file"), "{v}");
    fs::remove_dir(root.join("usr/bin/cyclictest")).unwrap();
    fs::write(root.join("usr/bin/cyclictest"), "").unwrap();
    fs::set_permissions(root.join("usr/bin/cyclictest"), fs::Permissions::from_mode(0o644)).unwrap();
    let (v, _) = run(json!({"cyclictest": "/usr/bin/cyclictest"}));
    assert!(v["msg"].as_str().unwrap().ends_with("is not executable"), "{v}");
    // A link leading out of the tree is not followed out.
    fs::remove_file(root.join("usr/bin/cyclictest")).unwrap();
    std::os::unix::fs::symlink("../../../../../../bin/sh", root.join("usr/bin/cyclictest")).unwrap();
    let (v, code) = run(json!({"cyclictest": "/usr/bin/cyclictest"}));
    assert_eq!(code, 1, "{v}");
    fs::remove_file(root.join("usr/bin/cyclictest")).unwrap();
    fs::write(root.join("usr/bin/cyclictest"), "").unwrap();
    fs::set_permissions(root.join("usr/bin/cyclictest"), fs::Permissions::from_mode(0o755)).unwrap();
    let (v, code) = run(json!({"cyclictest": "/usr/bin/cyclictest"}));
    assert_eq!((code, v["measured"].as_bool()), (0, Some(false)), "{v}");
    assert_eq!(v["warnings"], json!([]), "{v}");
    // Without the option, the standard folders of the tree are searched; a miss is a warning.
    let (v, code) = run(json!({}));
    assert_eq!(code, 0, "{v}");
    fs::remove_file(root.join("usr/bin/cyclictest")).unwrap();
    let (v, code) = run(json!({}));
    assert_eq!(code, 0, "{v}");
    assert!(v["warnings"][0].as_str().unwrap().starts_with("cyclictest is not in /usr/local/sbin"), "{v}");
}
