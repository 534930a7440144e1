//! `fleet.html`: the fleet report as one page a person opens in a browser. Self-contained: the
//! charts are inline SVG and the style is inline, there is no script, no font, no image and no
//! link to fetch (a Content-Security-Policy that allows only inline style says so to the
//! browser). Every text that comes from a host is escaped as HTML. Pure, like the other
//! renderers: the same fleet gives the same bytes.

use std::fmt::Write;

use super::Fleet;
use crate::analysis::Severity;
use crate::markdown::xml as esc;

const ROW: u32 = 22;
const LABEL: u32 = 220;
const BAR: u32 = 480;

/// The colour of a score: red under 60, orange under 85, else green (the dashboard's steps).
fn score_colour(score: u32) -> &'static str {
    match score {
        0..=59 => "#c62828",
        60..=84 => "#ef6c00",
        _ => "#2e7d32",
    }
}

const SEVERITIES: [(Severity, &str, &str); 3] = [
    (Severity::Error, "error", "#c62828"),
    (Severity::Warning, "warning", "#ef6c00"),
    (Severity::Info, "info", "#90a4ae"),
];

/// A horizontal bar chart: one row per (label, segments), each segment (value, colour), bars
/// scaled to `max`; the row's total is written after its bar.
fn bars(o: &mut String, title: &str, rows: &[(String, Vec<(u64, &str)>)], max: u64) {
    let height = ROW * rows.len() as u32 + 8;
    let width = LABEL + BAR + 60;
    let _ = write!(
        o,
        "<svg role=\"img\" aria-label=\"{}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">",
        esc(title)
    );
    for (i, (label, segments)) in rows.iter().enumerate() {
        let y = ROW * i as u32 + 4;
        let _ = write!(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", LABEL - 8, y + 14, esc(label));
        let mut x = f64::from(LABEL);
        let mut total = 0;
        for (v, colour) in segments {
            let w = if max == 0 { 0.0 } else { *v as f64 / max as f64 * f64::from(BAR) };
            let _ =
                write!(o, "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{colour}\"/>", ROW - 6);
            x += w;
            total += v;
        }
        let _ = write!(o, "<text x=\"{:.1}\" y=\"{}\">{total}</text>", x + 6.0, y + 14);
    }
    o.push_str("</svg>\n");
}

/// `fleet.html`.
pub fn html(fleet: &Fleet) -> String {
    let mut o = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <title>lltune fleet report</title>\n<style>\n\
         body{font-family:sans-serif;margin:2em;color:#212121}h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em}\n\
         table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #cfd8dc;padding:.25em .6em;text-align:left}\n\
         th{background:#eceff1}svg text{font-size:12px;fill:#212121}.legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em}\n\
         </style></head><body>\n<h1>lltune fleet report</h1>\n",
    );
    let _ = writeln!(o, "<p id=\"summary\">{}</p>", esc(&super::render::summary_sentence(&fleet.summary)));

    o.push_str("<h2>Score per host</h2>\n<p>100 less 15 per error, 5 per warning and 1 per info finding.</p>\n");
    let rows: Vec<_> =
        fleet.hosts.iter().map(|h| (h.host.clone(), vec![(u64::from(h.score), score_colour(h.score))])).collect();
    bars(&mut o, "Score per host", &rows, 100);

    o.push_str("<h2>Findings by severity</h2>\n<p class=\"legend\">");
    for (_, name, colour) in SEVERITIES {
        let _ = write!(o, "<span style=\"background:{colour}\"></span>{name}");
    }
    o.push_str("</p>\n");
    let rows: Vec<_> = fleet
        .hosts
        .iter()
        .map(|h| {
            let c = &h.findings;
            (
                h.host.clone(),
                vec![
                    (c.error as u64, SEVERITIES[0].2),
                    (c.warning as u64, SEVERITIES[1].2),
                    (c.info as u64, SEVERITIES[2].2),
                ],
            )
        })
        .collect();
    let max = fleet.hosts.iter().map(|h| h.findings.total as u64).max().unwrap_or(0);
    bars(&mut o, "Findings by severity", &rows, max);

    o.push_str(
        "<h2>Boot drift</h2>\n<p>Kernel arguments whose configured value differs from the running command line \
         (a reboot would change them); hosts where it is unknown are left out.</p>\n",
    );
    let rows: Vec<_> = fleet
        .hosts
        .iter()
        .filter_map(|h| h.drift_args.map(|n| (h.host.clone(), vec![(n as u64, "#5c6bc0")])))
        .collect();
    let max = rows.iter().map(|r| r.1[0].0).max().unwrap_or(0);
    bars(&mut o, "Boot drift", &rows, max);

    o.push_str(
        "<h2>Hosts</h2>\n<p><i>isolated</i>: CPUs isolated by any source (the kernel's isolated file, nohz_full, \
         and isolcpus and nohz_full of the running command line); <code>lltune scan</code> shows each apart.</p>\n\
         <table><tr><th>host</th><th>kernel</th><th>CPU</th><th>online</th><th>isolated</th><th>errors</th>\
         <th>warnings</th><th>info</th><th>score</th><th>reboot pending</th><th>drift</th></tr>\n",
    );
    for h in &fleet.hosts {
        let pending = match h.reboot_pending {
            Some(true) => "yes",
            Some(false) => "no",
            None => "?",
        };
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{pending}</td><td>{}</td></tr>",
            esc(&h.host),
            esc(h.kernel_release.as_deref().unwrap_or("?")),
            esc(h.cpu_model.as_deref().unwrap_or("?")),
            esc(&h.online_cpus),
            h.online_count,
            esc(if h.isolated_cpus.is_empty() { "none" } else { &h.isolated_cpus }),
            h.isolated_count,
            h.findings.error,
            h.findings.warning,
            h.findings.info,
            h.score,
            h.drift_args.map_or_else(|| "?".to_string(), |n| n.to_string()),
        );
    }
    o.push_str("</table>\n");

    let by_id = super::render::findings_by_id(fleet);
    if !by_id.is_empty() {
        o.push_str(
            "<h2>Findings</h2>\n<table><tr><th>finding</th><th>severity</th><th>hosts</th><th>which</th></tr>\n",
        );
        for ((sev, id), hosts) in &by_id {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(id),
                sev.0.as_str(),
                hosts.len(),
                esc(&hosts.join(", "))
            );
        }
        o.push_str("</table>\n");
    }
    let _ = writeln!(
        o,
        "<p>lltune {}, fleet report schema {}.</p>\n</body></html>",
        esc(&fleet.lltune_version),
        fleet.schema_version
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_text_is_escaped_and_nothing_is_fetched() {
        assert_eq!(esc("<script>a&b\"c'd\u{7}\n"), "&lt;script&gt;a&amp;b&quot;c&apos;d  ");
        let facts = crate::analysis::testing::two_nodes();
        let input = super::super::HostInput {
            host: "<img src=x onerror=alert(1)>".into(),
            source: "h.json".into(),
            shape: "scan",
            facts,
            recommendations: vec![crate::analysis::rec("cpu", "<b>governor</b>").sev(Severity::Warning)],
            latency: None,
            facts_time: None,
        };
        let page = html(&super::super::build(&[input]));
        assert!(!page.contains("<img") && !page.contains("<b>"), "{page}");
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"), "{page}");
        assert!(page.contains("cpu.&lt;b&gt;governor&lt;/b&gt;"), "{page}");
        // No script, and nothing the page would load.
        for bad in ["<script", "src=\"", "href=", "url(", "@import"] {
            assert!(!page.contains(bad), "{bad} in {page}");
        }
    }
}
