//! Latency results for people: a markdown table of one run, a markdown comparison of two
//! (before and after a tuning), and an SVG plot of their histograms with log-scale counts.
//! Pure functions of `LatencyDoc`s; the CLI writes the files.

use std::fmt::Write as _;

use super::{CpuStats, LatencyDoc, Role};
use crate::cpulist::CpuList;
use crate::markdown::xml;

/// A value in µs as a table cell: `—` when unknown, `≥N` when it is a lower bound.
fn us(v: Option<u64>, lower_bound: bool) -> String {
    match v {
        None => "—".into(),
        Some(x) if lower_bound => format!("≥{x}"),
        Some(x) => x.to_string(),
    }
}

fn pct(s: &CpuStats, name: &str) -> String {
    let v = match name {
        "p50" => s.p50_us,
        "p99" => s.p99_us,
        "p99_9" => s.p99_9_us,
        _ => s.p99_99_us,
    };
    us(v, s.beyond_histogram.iter().any(|b| b == name))
}

/// Change from `a` to `b` in percent, for a table cell.
fn change(a: Option<u64>, b: Option<u64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a == b => "0%".into(),
        (Some(0), Some(_)) | (None, _) | (_, None) => "—".into(),
        (Some(a), Some(b)) => format!("{:+.0}%", (b as f64 - a as f64) * 100.0 / a as f64),
    }
}

/// Text in markdown (a table cell, a heading, a list item): escaped (`crate::markdown`: no
/// HTML, links or extra cells).
fn cell(s: &str) -> String {
    crate::markdown::text(s)
}

fn or_none(l: &CpuList) -> String {
    if l.is_empty() { "none".into() } else { l.to_string() }
}

fn settings_line(d: &LatencyDoc) -> String {
    let s = &d.settings;
    format!(
        "{} s, interval {} µs, priority {}, histogram {} µs",
        s.duration_s, s.interval_us, s.priority, s.histogram_us
    )
}

fn tool_line(d: &LatencyDoc) -> String {
    match &d.tool {
        Some(t) => format!("cyclictest {}", t.version.as_deref().unwrap_or("(version unknown)")),
        None => "—".into(),
    }
}

/// One run as markdown: the settings, the worst per role, and one row per CPU.
/// What else happened during the run: interrupts per measured CPU, NIC drops, clock offsets.
fn noise_markdown(o: &mut String, d: &LatencyDoc) {
    let Some(n) = &d.noise else { return };
    let _ = writeln!(o, "\n## Interrupts during the run\n");
    let _ = writeln!(o, "| CPU | role | device IRQs | per-CPU sources | largest |");
    let _ = writeln!(o, "|---:|---|---:|---:|---|");
    for c in &n.interrupts {
        let top: Vec<String> = c.top.iter().take(3).map(|s| format!("{} {} ({})", s.source, s.name, s.count)).collect();
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            c.cpu,
            c.role.as_str(),
            c.device,
            c.per_cpu,
            cell(&top.join(", "))
        );
    }
    if !n.nic_drops.is_empty() {
        let _ = writeln!(o, "\n## NIC drops during the run\n\n| interface | counter | count |\n|---|---|---:|");
        for x in &n.nic_drops {
            let _ = writeln!(o, "| {} | {} | {} |", cell(&x.interface), x.counter, x.count);
        }
    }
    if !n.time_offsets.is_empty() {
        let _ = writeln!(
            o,
            "\n## Clock offset\n\n| source | when | offset ns | RMS ns | reference |\n|---|---|---:|---:|---|"
        );
        for t in &n.time_offsets {
            let rms = t.rms_offset_ns.map(|r| r.to_string()).unwrap_or_else(|| "–".into());
            let _ = writeln!(
                o,
                "| {} | {} | {} | {rms} | {} |",
                t.source,
                t.when,
                t.offset_ns,
                cell(t.reference.as_deref().unwrap_or("?"))
            );
        }
    }
    for u in &n.unavailable {
        let _ = writeln!(o, "\nNot read: {}", cell(u));
    }
}

pub fn run_markdown(d: &LatencyDoc, svg_link: Option<&str>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Latency of {}\n", cell(&d.host));
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| host | {} |", cell(&d.host));
    let _ = writeln!(o, "| kernel | {} |", cell(d.kernel.as_deref().unwrap_or("?")));
    let _ = writeln!(o, "| measured at | {} |", cell(&d.measured_at));
    let _ = writeln!(o, "| tool | {} |", cell(&tool_line(d)));
    let _ = writeln!(o, "| settings | {} |", settings_line(d));
    let _ = writeln!(o, "| CPUs measured | {} |", or_none(&d.cpus.measured));
    let _ = writeln!(o, "| isolated CPUs | {} |", or_none(&d.cpus.isolated));
    let _ = writeln!(o, "| housekeeping CPUs | {} |\n", or_none(&d.cpus.housekeeping));
    if !d.measured {
        let _ = writeln!(o, "Not measured: {}\n", cell(d.skipped_reason.as_deref().unwrap_or("no reason given")));
        return o;
    }
    let _ = writeln!(o, "## Per CPU (µs)\n");
    let _ = writeln!(o, "| CPU | role | samples | min | avg | p50 | p99 | p99.9 | p99.99 | max | overflows |");
    let _ = writeln!(o, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in &d.per_cpu {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.cpu,
            s.role.as_str(),
            s.samples,
            us(s.min_us, false),
            us(s.avg_us, false),
            pct(s, "p50"),
            pct(s, "p99"),
            pct(s, "p99_9"),
            pct(s, "p99_99"),
            us(s.max_us, false),
            s.overflows
        );
    }
    noise_markdown(&mut o, d);
    notes(&mut o, &d.warnings());
    if let Some(link) = svg_link {
        let _ = writeln!(o, "\n## Histogram\n\n![cyclictest histogram of {}]({link})", cell(&d.host));
    }
    o
}

fn notes(o: &mut String, w: &[String]) {
    if !w.is_empty() {
        let _ = writeln!(o, "\nNotes:\n");
        for x in w {
            let _ = writeln!(o, "- {}", cell(x));
        }
    }
}

/// Two runs as markdown: what changed between them, by role (worst CPU) and per CPU, with
/// notes when the runs are not comparable as they stand (other host, other settings).
pub fn compare_markdown(before: &LatencyDoc, after: &LatencyDoc, svg_link: Option<&str>) -> String {
    let mut o = String::new();
    let title = if before.host == after.host {
        cell(&before.host)
    } else {
        format!("{} and {}", cell(&before.host), cell(&after.host))
    };
    let _ = writeln!(o, "# Latency before and after: {title}\n");
    let _ = writeln!(o, "| | before | after |\n|---|---|---|");
    let row = |o: &mut String, k: &str, a: String, b: String| {
        let _ = writeln!(o, "| {k} | {} | {} |", cell(&a), cell(&b));
    };
    row(&mut o, "host", before.host.clone(), after.host.clone());
    row(&mut o, "kernel", before.kernel.clone().unwrap_or_default(), after.kernel.clone().unwrap_or_default());
    row(&mut o, "measured at", before.measured_at.clone(), after.measured_at.clone());
    row(&mut o, "tool", tool_line(before), tool_line(after));
    row(&mut o, "settings", settings_line(before), settings_line(after));
    row(&mut o, "CPUs measured", or_none(&before.cpus.measured), or_none(&after.cpus.measured));
    row(&mut o, "isolated CPUs", or_none(&before.cpus.isolated), or_none(&after.cpus.isolated));
    o.push('\n');

    let mut warn = Vec::new();
    if before.host != after.host {
        warn.push(format!("the runs are from two hosts ({} and {})", before.host, after.host));
    }
    let (sb, sa) = (&before.settings, &after.settings);
    if (sb.interval_us, sb.priority) != (sa.interval_us, sa.priority) {
        warn.push("interval or priority differ between the runs: the numbers are not like for like".into());
    }
    if sb.histogram_us != sa.histogram_us {
        warn.push(format!(
            "the histograms end at {} µs and {} µs: percentiles past either end are lower bounds",
            sb.histogram_us, sa.histogram_us
        ));
    }
    if sb.duration_s != sa.duration_s {
        warn.push(format!(
            "the runs lasted {} s and {} s: the longer one has more chances to see a rare spike",
            sb.duration_s, sa.duration_s
        ));
    }
    for (name, d) in [("before", before), ("after", after)] {
        if !d.measured {
            warn.push(format!(
                "the {name} run measured nothing: {}",
                d.skipped_reason.as_deref().unwrap_or("no reason given")
            ));
        }
        for w in d.warnings() {
            warn.push(format!("{name}: {w}"));
        }
    }

    // By role, with the CPUs grouped by their role in the after run (the tuned layout).
    let _ = writeln!(o, "## Worst CPU by role after the change (µs)\n");
    let _ = writeln!(
        o,
        "| CPUs | role after | p99 before | p99 after | change | p99.99 before | p99.99 after | change | max before | max after | change |"
    );
    let _ = writeln!(o, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for role in [Role::Isolated, Role::Housekeeping] {
        let cpus: CpuList = after.per_cpu.iter().filter(|s| s.role == role).map(|s| s.cpu).collect();
        if cpus.is_empty() {
            continue;
        }
        let pick =
            |d: &LatencyDoc| -> Vec<CpuStats> { d.per_cpu.iter().filter(|s| cpus.contains(s.cpu)).cloned().collect() };
        let (b, a) = (pick(before), pick(after));
        let worst = |v: &[CpuStats], f: fn(&CpuStats) -> Option<u64>, name: &str| -> (Option<u64>, bool) {
            let m = v.iter().filter_map(f).max();
            let bound = v.iter().any(|s| f(s) == m && s.beyond_histogram.iter().any(|x| x == name));
            (m, bound)
        };
        let cols = [
            (|s: &CpuStats| s.p99_us) as fn(&CpuStats) -> Option<u64>,
            |s: &CpuStats| s.p99_99_us,
            |s: &CpuStats| s.max_us,
        ];
        let names = ["p99", "p99_99", "max"];
        let mut cells = Vec::new();
        for (f, name) in cols.iter().zip(names) {
            let (vb, lb) = worst(&b, *f, name);
            let (va, la) = worst(&a, *f, name);
            cells.push(us(vb, lb));
            cells.push(us(va, la));
            cells.push(if lb || la { "—".into() } else { change(vb, va) });
        }
        let _ = writeln!(o, "| {cpus} | {} | {} |", role.as_str(), cells.join(" | "));
    }

    let _ = writeln!(o, "\n## Per CPU (µs)\n");
    let _ = writeln!(
        o,
        "| CPU | role before → after | avg before | avg after | p99 before | p99 after | p99.99 before | p99.99 after | max before | max after | change of max |"
    );
    let _ = writeln!(o, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let all: CpuList = before.per_cpu.iter().chain(&after.per_cpu).map(|s| s.cpu).collect();
    for cpu in all.iter() {
        let b = before.per_cpu.iter().find(|s| s.cpu == cpu);
        let a = after.per_cpu.iter().find(|s| s.cpu == cpu);
        let role = |s: Option<&CpuStats>| s.map(|s| s.role.as_str()).unwrap_or("not measured");
        let v = |s: Option<&CpuStats>, name: &str| s.map(|s| pct(s, name)).unwrap_or_else(|| "—".into());
        let _ = writeln!(
            o,
            "| {cpu} | {} → {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            role(b),
            role(a),
            us(b.and_then(|s| s.avg_us), false),
            us(a.and_then(|s| s.avg_us), false),
            v(b, "p99"),
            v(a, "p99"),
            v(b, "p99_99"),
            v(a, "p99_99"),
            us(b.and_then(|s| s.max_us), false),
            us(a.and_then(|s| s.max_us), false),
            change(b.and_then(|s| s.max_us), a.and_then(|s| s.max_us)),
        );
        if b.is_none() || a.is_none() {
            warn.push(format!("CPU {cpu} was measured in one run only"));
        }
    }
    notes(&mut o, &warn);
    if let Some(link) = svg_link {
        let _ = writeln!(o, "\n## Histograms\n\n![cyclictest histograms before and after]({link})");
    }
    o
}

/// The CPUs a plot of two runs sums: those isolated in the last run that every run measured,
/// else every CPU all runs measured.
pub fn plot_cpus(runs: &[(&str, &LatencyDoc)]) -> CpuList {
    let Some((_, last)) = runs.last() else { return CpuList::new() };
    let common = runs.iter().fold(last.cpus.measured.clone(), |acc, (_, d)| acc.intersection(&d.cpus.measured));
    let iso: CpuList = last
        .per_cpu
        .iter()
        .filter(|s| s.role == Role::Isolated)
        .map(|s| s.cpu)
        .collect::<CpuList>()
        .intersection(&common);
    if iso.is_empty() { common } else { iso }
}

/// Colours of the series, in order (colour-blind safe blue and orange, then more).
const COLOURS: &[&str] = &["#0072b2", "#e69f00", "#009e73", "#cc79a7"];

/// An SVG of the runs' histograms, summed over `plot_cpus`: latency in µs across (logarithmic in latency + 1 µs),
/// count of wake-ups up (log scale, one decade per grid line), one step line per run and the
/// overflows as a bar at the right edge. Hand-written, standalone, no scripts.
pub fn histogram_svg(runs: &[(&str, &LatencyDoc)]) -> String {
    let cpus = plot_cpus(runs);
    let hist_len = runs.iter().map(|(_, d)| d.settings.histogram_us as usize).max().unwrap_or(1).max(1);
    let series: Vec<(String, Vec<u64>, u64, u64)> = runs
        .iter()
        .map(|(label, d)| {
            let mut dense = vec![0u64; hist_len];
            let mut over = 0u64;
            for s in d.per_cpu.iter().filter(|s| cpus.contains(s.cpu)) {
                for (i, c) in s.dense(hist_len).iter().enumerate() {
                    dense[i] += c;
                }
                over += s.overflows;
            }
            (label.to_string(), dense, over, d.settings.histogram_us)
        })
        .collect();
    // Across: up to the end of the last non-empty bucket of any run, rounded up to a tick.
    let last = series.iter().filter_map(|(_, d, _, _)| d.iter().rposition(|&c| c > 0)).max().unwrap_or(0) as u64 + 1;
    let x_max = ticks(u64::MAX).into_iter().find(|&t| t >= last).unwrap_or(last).min(hist_len as u64).max(1);
    let any_over = series.iter().any(|s| s.2 > 0);
    let top =
        series.iter().flat_map(|(_, d, o, _)| d.iter().chain(std::iter::once(o))).copied().max().unwrap_or(1).max(1);
    let decades = ((top as f64).log10().ceil() as u32).max(1);

    let (w, h) = (860.0_f64, 440.0_f64);
    let (left, right, top_m, bottom) = (70.0, if any_over { 110.0 } else { 30.0 }, 50.0, 60.0);
    let pw = w - left - right;
    let ph = h - top_m - bottom;
    // Count 1 sits a fifth of a decade above the axis, so a lone sample is visible.
    let y_of = |c: u64| -> f64 {
        if c == 0 {
            top_m + ph
        } else {
            let v = ((c as f64).log10() + 0.2) / (decades as f64 + 0.2);
            top_m + ph - v * ph
        }
    };
    // Latency runs from a few µs to thousands: the axis is logarithmic in (latency + 1), so
    // bucket 0 has a place and the body and the tail of a histogram both show.
    let x_of = |us: f64| -> f64 { left + (us + 1.0).log10() / (x_max as f64 + 1.0).log10() * pw };

    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let hosts: Vec<&str> = {
        let mut v: Vec<&str> = runs.iter().map(|(_, d)| d.host.as_str()).collect();
        v.dedup();
        v
    };
    let title = format!("cyclictest wake-up latency, {}: CPUs {}", hosts.join(", "), or_none(&cpus));
    let _ = writeln!(o, "  <title>{}</title>", xml(&title));
    let _ = writeln!(o, r#"  <rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(o, r#"  <text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#, w / 2.0, xml(&title));
    // Grid and labels: decades up, tidy steps across.
    for d in 0..=decades {
        let y = y_of(10u64.pow(d));
        let _ =
            writeln!(o, r##"  <line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#dddddd"/>"##, left + pw);
        let _ = writeln!(
            o,
            r#"  <text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + 4.0,
            10u64.pow(d)
        );
    }
    for t in ticks(x_max) {
        let x = x_of(t as f64);
        let _ = writeln!(
            o,
            r##"  <line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999999"/>"##,
            top_m + ph,
            top_m + ph + 5.0
        );
        let _ = writeln!(o, r#"  <text x="{x:.1}" y="{:.1}" text-anchor="middle">{t}</text>"#, top_m + ph + 18.0);
    }
    let _ = writeln!(
        o,
        r##"  <rect x="{left}" y="{top_m}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#333333"/>"##
    );
    let _ = writeln!(
        o,
        r#"  <text x="{:.1}" y="{:.1}" text-anchor="middle">latency (µs, log scale; 1 µs buckets)</text>"#,
        left + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        o,
        r#"  <text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">wake-ups (log scale)</text>"#,
        top_m + ph / 2.0,
        top_m + ph / 2.0
    );
    // One step line per run.
    for (i, (label, dense, over, limit)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut pts = Vec::new();
        let mut prev_y = y_of(0);
        pts.push(format!("{:.1},{:.1}", x_of(0.0), prev_y));
        for (b, &c) in dense.iter().enumerate().take(x_max as usize) {
            let y = y_of(c);
            if y != prev_y {
                pts.push(format!("{:.1},{:.1}", x_of(b as f64), prev_y));
                pts.push(format!("{:.1},{:.1}", x_of(b as f64), y));
                prev_y = y;
            }
        }
        pts.push(format!("{:.1},{:.1}", x_of(x_max as f64), prev_y));
        let _ = writeln!(
            o,
            r#"  <polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{}"><title>{}</title></polyline>"#,
            pts.join(" "),
            xml(label)
        );
        if any_over {
            let bw = 16.0;
            let x = left + pw + 20.0 + i as f64 * (bw + 6.0);
            let y = y_of(*over);
            let _ = writeln!(
                o,
                r#"  <rect x="{x:.1}" y="{y:.1}" width="{bw}" height="{:.1}" fill="{colour}"><title>{}: {over} wake-ups at or past {} µs</title></rect>"#,
                top_m + ph - y,
                xml(label),
                limit
            );
        }
        // Legend.
        let ly = top_m + 16.0 + i as f64 * 18.0;
        let lx = left + pw - 210.0;
        let _ = writeln!(
            o,
            r#"  <line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="3"/>"#,
            lx + 24.0
        );
        let total: u64 = dense.iter().sum::<u64>() + over;
        let _ = writeln!(
            o,
            r#"  <text x="{:.1}" y="{:.1}">{} ({} wake-ups)</text>"#,
            lx + 30.0,
            ly + 4.0,
            xml(label),
            total
        );
    }
    if any_over {
        let same = series.iter().all(|s| s.3 == series[0].3);
        let label = if same { format!("≥{} µs", series[0].3) } else { "overflows".to_string() };
        let _ = writeln!(
            o,
            r#"  <text x="{:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            left + pw + 20.0 + (series.len() as f64 * 22.0) / 2.0,
            top_m + ph + 18.0,
        );
    }
    o.push_str("</svg>\n");
    o
}

/// Ticks of the latency axis up to `max`: 0, then 1, 2, 5 times each power of ten.
fn ticks(max: u64) -> Vec<u64> {
    let mut v = vec![0];
    let mut p: u64 = 1;
    'outer: loop {
        for m in [1, 2, 5] {
            match p.checked_mul(m) {
                Some(t) if t <= max => v.push(t),
                _ => break 'outer,
            }
        }
        match p.checked_mul(10) {
            Some(n) => p = n,
            None => break,
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_changes() {
        assert_eq!(ticks(7), [0, 1, 2, 5]);
        assert_eq!(ticks(1000), [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]);
        assert_eq!(*ticks(u64::MAX).last().unwrap(), 10_000_000_000_000_000_000);
        assert_eq!(change(Some(100), Some(50)), "-50%");
        assert_eq!(change(Some(100), Some(130)), "+30%");
        assert_eq!(change(Some(0), Some(3)), "—");
        assert_eq!(xml("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
