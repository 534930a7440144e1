//! The fleet report's files (fleet.html: `super::html`), rendered from a `Fleet`. Pure; the same fleet gives the
//! same bytes (hosts in name order, no clock time).

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Fleet, HostEntry};
use crate::analysis::Severity;

/// `fleet.json`: the `Fleet` object, pretty-printed.
pub fn json(fleet: &Fleet) -> String {
    // Our own types: maps have string keys, numbers are finite; this cannot fail.
    serde_json::to_string_pretty(fleet).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")) + "\n"
}

/// The CSV columns, in order (`docs/report.md`).
pub const CSV_COLUMNS: &[&str] = &[
    "host",
    "hostname",
    "os",
    "kernel_release",
    "cpu_model",
    "sockets",
    "cores_per_socket",
    "threads_per_core",
    "online_count",
    "online_cpus",
    "isolated_count",
    "isolated_cpus",
    "numa_nodes",
    "memory_total_kb",
    "hugepages",
    "thp",
    "nics",
    "nics_physical",
    "findings_error",
    "findings_warning",
    "findings_info",
    "findings_total",
    "score",
    "reboot_pending",
    "drift_args",
    "drift",
    "boot_layout",
    "latency_p99_us",
    "latency_max_us",
];

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(|x| x.to_string()).unwrap_or_default()
}

fn hugepages_text(h: &HostEntry) -> String {
    h.hugepages.iter().map(|(size, c)| format!("{size}kB={}", opt(&c.total))).collect::<Vec<_>>().join(" ")
}

fn drift_text(h: &HostEntry) -> String {
    h.drift.as_ref().map(|d| d.iter().map(|a| a.arg.clone()).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

/// One host's CSV values, in `CSV_COLUMNS` order.
pub fn csv_row(h: &HostEntry) -> Vec<String> {
    vec![
        h.host.clone(),
        opt(&h.hostname),
        opt(&h.os),
        opt(&h.kernel_release),
        opt(&h.cpu_model),
        opt(&h.sockets),
        opt(&h.cores_per_socket),
        opt(&h.threads_per_core),
        h.online_count.to_string(),
        h.online_cpus.clone(),
        h.isolated_count.to_string(),
        h.isolated_cpus.clone(),
        h.numa_nodes.to_string(),
        opt(&h.memory_total_kb),
        hugepages_text(h),
        opt(&h.thp),
        h.nics.to_string(),
        h.nics_physical.to_string(),
        h.findings.error.to_string(),
        h.findings.warning.to_string(),
        h.findings.info.to_string(),
        h.findings.total.to_string(),
        h.score.to_string(),
        opt(&h.reboot_pending),
        opt(&h.drift_args),
        drift_text(h),
        h.boot.layout.clone(),
        opt(&h.latency.as_ref().and_then(|l| l.p99_us)),
        opt(&h.latency.as_ref().and_then(|l| l.max_us)),
    ]
}

/// A CSV field (RFC 4180) that a spreadsheet shows as text: a value a spreadsheet would read
/// as a formula gets a leading `'` (OWASP's CSV injection rule: `=`, `+`, `-`, `@`, tab, CR
/// or LF first, after any spaces, and the full-width `＝＋－＠` some locales read the same
/// way); then quoted when it holds a comma, a quote, CR or LF, quotes doubled.
pub fn csv_field(s: &str) -> String {
    let s = if is_formula(s) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\r', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// True when a spreadsheet could evaluate `s` as a formula (or a DDE call) on import.
pub fn is_formula(s: &str) -> bool {
    let first_of = |t: &str| t.chars().next();
    matches!(first_of(s), Some('\t' | '\r' | '\n'))
        || matches!(
            first_of(s.trim_start_matches(' ')),
            Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n' | '\u{FF1D}' | '\u{FF0B}' | '\u{FF0D}' | '\u{FF20}')
        )
}

fn csv_line(fields: &[String]) -> String {
    let mut l = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    l.push_str("\r\n");
    l
}

/// `fleet.csv`: a header, then one row per host; CRLF line ends (RFC 4180).
pub fn csv(fleet: &Fleet) -> String {
    let mut o = csv_line(&CSV_COLUMNS.iter().map(|c| c.to_string()).collect::<Vec<_>>());
    for h in &fleet.hosts {
        o.push_str(&csv_line(&csv_row(h)));
    }
    o
}

/// Text for one markdown table cell: escaped (`crate::markdown`), `—` when empty.
fn cell(s: impl ToString) -> String {
    crate::markdown::cell(&s.to_string())
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

fn values_text(v: &[Option<String>]) -> String {
    if v.is_empty() {
        return "(absent)".into();
    }
    v.iter().map(|x| x.clone().unwrap_or_else(|| "(flag)".into())).collect::<Vec<_>>().join(", ")
}

/// `fleet.md`: the summary, one table row per host, then each host's boot drift.
/// The fleet in one sentence (fleet.md and fleet.html open with it).
pub(super) fn summary_sentence(s: &super::Summary) -> String {
    format!(
        "{} hosts; findings: {} errors, {} warnings, {} info; {} with errors; {} reboot pending; {} with boot drift; score min {} / mean {} / max {}.",
        s.hosts,
        s.findings.error,
        s.findings.warning,
        s.findings.info,
        s.hosts_with_errors,
        s.reboot_pending,
        s.drifted,
        s.score_min,
        s.score_mean,
        s.score_max
    )
}

/// Every finding of the fleet by its id, most severe first, with the hosts that have it.
pub(super) fn findings_by_id(fleet: &Fleet) -> BTreeMap<(Reverse<Severity>, String), Vec<&str>> {
    let mut by_id: BTreeMap<(Reverse<Severity>, String), Vec<&str>> = BTreeMap::new();
    for h in &fleet.hosts {
        for r in &h.recommendations {
            by_id.entry((Reverse(r.severity), r.id())).or_default().push(&h.host);
        }
    }
    by_id
}

pub fn markdown(fleet: &Fleet) -> String {
    let mut o = String::from("# lltune fleet report\n\n");
    let _ = writeln!(o, "{}\n", summary_sentence(&fleet.summary));
    o.push_str("| host | kernel | CPU | topology | online | isolated | NUMA | NICs | errors | warnings | info | score | reboot pending | drift |\n");
    o.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for h in &fleet.hosts {
        let q = |v: &Option<u32>| v.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
        let topo = format!("{}×{}×{}", q(&h.sockets), q(&h.cores_per_socket), q(&h.threads_per_core));
        let cells = [
            cell(&h.host),
            cell(opt(&h.kernel_release)),
            cell(opt(&h.cpu_model)),
            cell(topo),
            if h.online_cpus.is_empty() { "?".into() } else { cell(format!("{} ({})", h.online_cpus, h.online_count)) },
            cell(if h.isolated_count == 0 {
                "none".into()
            } else {
                format!("{} ({})", h.isolated_cpus, h.isolated_count)
            }),
            h.numa_nodes.to_string(),
            format!("{} ({} physical)", h.nics, h.nics_physical),
            h.findings.error.to_string(),
            h.findings.warning.to_string(),
            h.findings.info.to_string(),
            h.score.to_string(),
            yes_no(h.reboot_pending).to_string(),
            h.drift_args.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
        ];
        let _ = writeln!(o, "| {} |", cells.join(" | "));
    }
    o.push_str(
        "\n`isolated`: CPUs isolated by any source, their union: `/sys/devices/system/cpu/isolated`, \
         `nohz_full`, and `isolcpus` (with or without `domain`) and `nohz_full` of the running command \
         line. `lltune scan` on a host shows each source apart.\n",
    );
    let by_id = findings_by_id(fleet);
    if !by_id.is_empty() {
        o.push_str("\n## Findings\n\nEach finding by its id (`category.item`), most severe first, with the hosts that have it.\n\n");
        o.push_str("| finding | severity | hosts | which |\n|---|---|---|---|\n");
        for ((sev, id), hosts) in &by_id {
            let _ = writeln!(o, "| {} | {} | {} | {} |", cell(id), sev.0.as_str(), hosts.len(), cell(hosts.join(", ")));
        }
    }
    let errors: Vec<(&HostEntry, &crate::analysis::Recommendation)> = fleet
        .hosts
        .iter()
        .flat_map(|h| {
            h.recommendations.iter().filter(|r| r.severity == crate::analysis::Severity::Error).map(move |r| (h, r))
        })
        .collect();
    if !errors.is_empty() {
        o.push_str(
            "\n## Errors\n\nFindings of severity `error`: contradictory or broken state that defeats the tuning.\n\n",
        );
        o.push_str("| host | category | item | current → target |\n|---|---|---|---|\n");
        for (h, r) in errors {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                cell(&h.host),
                cell(&r.category),
                cell(&r.item),
                cell(format!("{} → {}", r.current, r.target))
            );
        }
    }
    let drifted: Vec<&HostEntry> = fleet.hosts.iter().filter(|h| h.drift_args.is_some_and(|n| n > 0)).collect();
    if !drifted.is_empty() {
        o.push_str("\n## Boot drift\n\nArguments the boot configuration gives the next boot that differ from the running command line.\n");
        for h in drifted {
            let _ = writeln!(
                o,
                "\n### {}\n\nConfigured in {} ({} layout).\n",
                cell(&h.host),
                cell(opt(&h.boot.configured_source)),
                cell(&h.boot.layout)
            );
            o.push_str("| argument | change | running | configured |\n|---|---|---|---|\n");
            for a in h.drift.iter().flatten() {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} |",
                    cell(&a.arg),
                    a.change,
                    cell(values_text(&a.running)),
                    cell(values_text(&a.configured))
                );
            }
        }
    }
    let with_latency: Vec<&HostEntry> = fleet.hosts.iter().filter(|h| h.latency.is_some()).collect();
    if !with_latency.is_empty() {
        o.push_str("\n## Latency\n\n| host | p99 (µs) | max (µs) |\n|---|---|---|\n");
        for h in with_latency {
            let l = h.latency.as_ref().unwrap();
            let _ = writeln!(o, "| {} | {} | {} |", cell(&h.host), cell(opt(&l.p99_us)), cell(opt(&l.max_us)));
        }
    }
    o
}

/// A label value in the text exposition format: `\`, `"` and line feed escaped.
pub fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A sample value: integers as written, other numbers in Rust's shortest round-trip form.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Family {
        Family { name, help, samples: Vec::new() }
    }
    fn add(&mut self, labels: Vec<(&'static str, String)>, v: f64) {
        self.samples.push((labels, v));
    }
    fn render(&self, o: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(o, "# HELP {} {}", self.name, self.help.replace('\\', "\\\\").replace('\n', "\\n"));
        let _ = writeln!(o, "# TYPE {} gauge", self.name);
        for (labels, v) in &self.samples {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label_value(v))).collect();
            if l.is_empty() {
                let _ = writeln!(o, "{} {}", self.name, num(*v));
            } else {
                let _ = writeln!(o, "{}{{{}}} {}", self.name, l.join(","), num(*v));
            }
        }
    }
}

/// The metric names `lltune.prom` may hold, in order (`docs/report.md`).
pub const METRICS: &[&str] = &[
    "lltune_fleet_hosts",
    "lltune_info",
    "lltune_findings",
    "lltune_score",
    "lltune_reboot_pending",
    "lltune_drift_args",
    "lltune_online_cpus",
    "lltune_isolated_cpus",
    "lltune_numa_nodes",
    "lltune_nics",
    "lltune_memory_bytes",
    "lltune_hugepages",
    "lltune_latency_p99_seconds",
    "lltune_latency_max_seconds",
    "lltune_facts_timestamp_seconds",
    "lltune_report_facts_timestamp_seconds",
];

/// `lltune.prom`: gauges in the Prometheus text exposition format (0.0.4), for
/// node_exporter's textfile collector. Every sample has a `host` label but the fleet count.
pub fn prometheus(fleet: &Fleet) -> String {
    let host = |h: &HostEntry| vec![("host", h.host.clone())];
    let mut fams = vec![
        Family::new(METRICS[0], "Hosts in the lltune fleet report."),
        Family::new(METRICS[1], "Host identity as lltune facts show it; the value is always 1."),
        Family::new(METRICS[2], "lltune recommendations for the host, by severity."),
        Family::new(
            METRICS[3],
            "lltune score: 100 less 15 per error, 5 per warning and 1 per info finding, at least 0.",
        ),
        Family::new(
            METRICS[4],
            "1 when the boot configuration's kernel arguments differ from the running ones (a reboot would change them).",
        ),
        Family::new(METRICS[5], "Kernel arguments whose configured values differ from the running command line."),
        Family::new(METRICS[6], "Online CPUs."),
        Family::new(METRICS[7], "CPUs isolated from the scheduler (isolcpus, nohz_full, at boot or run time)."),
        Family::new(METRICS[8], "NUMA nodes."),
        Family::new(METRICS[9], "Network devices (netdevs and PCI network functions)."),
        Family::new(METRICS[10], "Memory of the host (MemTotal)."),
        Family::new(METRICS[11], "Huge pages allocated, by page size in kB."),
        Family::new(METRICS[12], "99th percentile latency of the host's last latency run."),
        Family::new(METRICS[13], "Largest latency of the host's last latency run."),
        Family::new(
            METRICS[14],
            "When the host's facts were written (their file's mtime), in seconds since the epoch: the time of its scan.",
        ),
        Family::new(
            METRICS[15],
            "When the newest facts of the report were written, in seconds since the epoch: the time the report's data is from.",
        ),
    ];
    fams[0].add(vec![], fleet.hosts.len() as f64);
    if let Some(t) = fleet.summary.facts_newest_timestamp {
        fams[15].add(vec![], t);
    }
    for h in &fleet.hosts {
        fams[1].add(
            vec![
                ("host", h.host.clone()),
                ("hostname", opt(&h.hostname)),
                ("kernel", opt(&h.kernel_release)),
                ("os", opt(&h.os)),
                ("cpu_model", opt(&h.cpu_model)),
                ("boot_layout", h.boot.layout.clone()),
                ("lltune_version", h.facts_lltune_version.clone()),
            ],
            1.0,
        );
        for (sev, n) in [("error", h.findings.error), ("warning", h.findings.warning), ("info", h.findings.info)] {
            fams[2].add(vec![("host", h.host.clone()), ("severity", sev.to_string())], n as f64);
        }
        fams[3].add(host(h), h.score as f64);
        if let Some(r) = h.reboot_pending {
            fams[4].add(host(h), if r { 1.0 } else { 0.0 });
        }
        if let Some(n) = h.drift_args {
            fams[5].add(host(h), n as f64);
        }
        fams[6].add(host(h), h.online_count as f64);
        fams[7].add(host(h), h.isolated_count as f64);
        fams[8].add(host(h), h.numa_nodes as f64);
        fams[9].add(host(h), h.nics as f64);
        if let Some(kb) = h.memory_total_kb {
            fams[10].add(host(h), kb as f64 * 1024.0);
        }
        for (size, c) in &h.hugepages {
            if let Some(t) = c.total {
                fams[11].add(vec![("host", h.host.clone()), ("size_kb", size.clone())], t as f64);
            }
        }
        if let Some(l) = &h.latency {
            if let Some(p) = l.p99_us {
                fams[12].add(host(h), p / 1e6);
            }
            if let Some(m) = l.max_us {
                fams[13].add(host(h), m / 1e6);
            }
        }
        if let Some(t) = h.facts_timestamp {
            fams[14].add(host(h), t);
        }
    }
    let mut o = String::new();
    for f in &fams {
        f.render(&mut o);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{self, Severity, testing};
    use crate::fleet::{HostInput, build};

    #[test]
    fn markdown_lists_errors_with_their_host() {
        let facts = testing::two_nodes();
        let recs = vec![
            analysis::rec("kernel", "nohz_full").now("1-3").want("2-3 | x").sev(Severity::Error),
            analysis::rec("cpu", "governor").sev(Severity::Warning),
        ];
        let input = HostInput {
            host: "h1".into(),
            source: "h1.json".into(),
            shape: "scan",
            facts,
            recommendations: recs,
            latency: None,
            facts_time: None,
        };
        let md = markdown(&build(&[input]));
        assert!(md.contains("## Errors"), "{md}");
        assert!(md.contains("| h1 | kernel | nohz\\_full | 1-3 → 2-3 \\| x |"), "{md}");
        assert!(!md.contains("| h1 | cpu | governor"), "warnings are in the counts only: {md}");
        // The findings table names every finding by id, errors first, with its hosts.
        let findings = md.split("## Findings").nth(1).expect("no Findings section");
        let e = findings.find("| kernel.nohz\\_full | error | 1 | h1 |").expect(&md);
        let w = findings.find("| cpu.governor | warning | 1 | h1 |").expect(&md);
        assert!(e < w, "{md}");
    }

    #[test]
    fn csv_fields_are_quoted_per_rfc_4180() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    /// A strict RFC 4180 reader: fields of each CRLF-ended record (quoted fields may hold
    /// commas, CR, LF and doubled quotes). Panics on anything else.
    fn read_csv(text: &str) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut row = Vec::new();
        let mut field = String::new();
        let mut chars = text.chars().peekable();
        let mut at_start = true;
        while let Some(c) = chars.next() {
            match c {
                '"' if at_start && field.is_empty() => loop {
                    match chars.next().expect("unterminated quoted field") {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        '"' => break,
                        c => field.push(c),
                    }
                },
                '"' => panic!("a quote inside an unquoted field: {field:?}"),
                ',' => {
                    row.push(std::mem::take(&mut field));
                    at_start = true;
                    continue;
                }
                '\r' => {
                    assert_eq!(chars.next(), Some('\n'), "a bare CR outside quotes");
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                    at_start = true;
                    continue;
                }
                '\n' => panic!("a bare LF outside quotes"),
                c => field.push(c),
            }
            at_start = false;
        }
        assert!(field.is_empty() && row.is_empty(), "the last record has no CRLF");
        rows
    }

    /// See: issue 17 (fleet.csv wrote host names raw; fleet.md passed HTML through).
    /// Generated host names, CPU models, OS names and boot file names from every ASCII
    /// character: each CSV field reads back as the value, with a `'` before exactly those a
    /// spreadsheet would evaluate; each markdown row keeps its cells and shows the values as
    /// written, with no HTML or link.
    #[test]
    fn generated_hostile_values_are_neutralised_in_csv_and_escaped_in_markdown() {
        use crate::markdown::tests::{Rng, shown, split_row};
        let mut hostile: Vec<char> = (0u8..=127).map(char::from).collect();
        hostile.extend(['\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}', 'é']);
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let formula_starts = ['=', '+', '-', '@', '\t', '\r', '\n', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}'];
        let mut neutralised = 0;
        for round in 0..300 {
            let mut inputs = Vec::new();
            let mut want = Vec::new();
            for i in 0..4 {
                let mut facts = testing::two_nodes();
                let pick = |rng: &mut Rng| {
                    let mut s = rng.string(&hostile, 16);
                    if rng.next() % 3 == 0 {
                        // Lead with a formula character half of the time.
                        s.insert(0, formula_starts[(rng.next() % formula_starts.len() as u64) as usize]);
                    }
                    s
                };
                let host = format!("{round}-{i}{}", pick(&mut rng));
                let host = if i % 2 == 0 { pick(&mut rng) + &host } else { host };
                facts.cpu.model_name = Some(pick(&mut rng));
                facts.host.hostname = Some(pick(&mut rng));
                facts.host.os_pretty_name = Some(pick(&mut rng));
                facts.kernel.release = Some(pick(&mut rng));
                want.push((
                    host.clone(),
                    facts.host.hostname.clone().unwrap(),
                    facts.host.os_pretty_name.clone().unwrap(),
                    facts.kernel.release.clone().unwrap(),
                    facts.cpu.model_name.clone().unwrap(),
                ));
                inputs.push(HostInput {
                    host,
                    source: "x.json".into(),
                    shape: "scan",
                    facts,
                    recommendations: vec![],
                    latency: None,
                    facts_time: None,
                });
            }
            let fleet = build(&inputs);
            // CSV: every field back as written, neutralised where a spreadsheet evaluates.
            let rows = read_csv(&csv(&fleet));
            assert_eq!(rows.len(), 1 + fleet.hosts.len());
            for (row, h) in rows[1..].iter().zip(&fleet.hosts) {
                assert_eq!(row.len(), CSV_COLUMNS.len());
                let w = want.iter().find(|w| w.0 == h.host).unwrap();
                for (field, value) in row[..5].iter().zip([&w.0, &w.1, &w.2, &w.3, &w.4]) {
                    let evaluates = value.trim_start_matches(' ').starts_with(formula_starts)
                        || value.starts_with(['\t', '\r', '\n']);
                    if evaluates {
                        neutralised += 1;
                        assert_eq!(field, &format!("'{value}"));
                    } else {
                        assert_eq!(field, value);
                    }
                }
                for field in row {
                    assert!(!field.trim_start_matches(' ').starts_with(formula_starts), "{field:?}");
                }
            }
            // Markdown: the host table keeps 14 cells per row and shows the values.
            let md = markdown(&fleet);
            assert!(!md.contains('<') && !md.contains('>'), "raw HTML in {md}");
            let table: Vec<&str> =
                md.lines().skip_while(|l| !l.starts_with("|---")).skip(1).take(fleet.hosts.len()).collect();
            for (line, h) in table.iter().zip(&fleet.hosts) {
                let cells = split_row(line);
                assert_eq!(cells.len(), 14, "{line:?}");
                let shown: Vec<String> =
                    cells[..3].iter().map(|c| shown(c).unwrap_or_else(|e| panic!("{e}"))).collect();
                let w = want.iter().find(|w| w.0 == h.host).unwrap();
                let as_text = |s: &str| {
                    let t: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
                    if t.is_empty() { "—".to_string() } else { t.trim().to_string() }
                };
                assert_eq!(shown, [as_text(&w.0), as_text(&w.3), as_text(&w.4)], "{line:?}");
            }
        }
        assert!(neutralised > 500, "the generator must lead with formula characters: {neutralised}");
    }

    #[test]
    fn formula_cells_get_a_leading_quote() {
        assert_eq!(csv_field("=HYPERLINK(\"http://e\",\"x\")"), "\"'=HYPERLINK(\"\"http://e\"\",\"\"x\"\")\"");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("  -2+3"), "'  -2+3");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("0-5,48-53"), "\"0-5,48-53\"");
        assert_eq!(csv_field("a=b"), "a=b");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }

    #[test]
    fn numbers_are_written_as_prometheus_reads_them() {
        assert_eq!(num(3.0), "3");
        assert_eq!(num(0.000012), "0.000012");
        assert_eq!(num(1.5e16), "15000000000000000");
    }
}
