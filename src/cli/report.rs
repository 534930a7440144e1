//! Reports for people, rendered from an `analysis::Report` (facts and recommendations): the
//! one-screen text summary of `lltune scan` and the markdown report of
//! `lltune scan --md-report FILE`. Pure functions of the report; the CLI writes them.

use std::fmt::Display;

use crate::analysis::{Recommendation, Report, Severity};
use crate::cpulist::CpuList;
use crate::facts::services::Service;

/// Recommendation lines shown in the text summary (errors and warnings first).
pub const TEXT_MAX_RECOMMENDATIONS: usize = 10;

fn opt<T: Display>(v: &Option<T>) -> String {
    v.as_ref().map(|x| x.to_string()).unwrap_or_else(|| "?".into())
}

fn or_none(s: String) -> String {
    if s.is_empty() { "none".into() } else { s }
}

/// An empty set or map where the source that would fill it was not found: `?`, not "none".
fn or_unknown(s: String, known: bool) -> String {
    if !known { "?".into() } else { or_none(s) }
}

/// The runtime CPU set of `/sys/devices/system/cpu/isolated` or `nohz_full`: the file's
/// value when the host has it; else what the running command line gives (the kernel fills
/// those files from it at boot), labelled as such; `?` when the command line is unknown too.
/// `cmdline` is the set the command line gives and the argument that gave it.
fn runtime_cpus(runtime: &Option<CpuList>, cmdline_known: bool, cmdline: Option<(&CpuList, &str)>) -> String {
    match (runtime, cmdline) {
        (Some(l), _) => or_none(l.to_string()),
        (None, Some((l, arg))) => format!("{} (from cmdline {arg})", or_none(l.to_string())),
        (None, None) if cmdline_known => "none (from cmdline)".into(),
        (None, None) => "?".into(),
    }
}

/// A CPU list with the command-line argument it came from.
type Source = (CpuList, &'static str);

/// What the command line makes of `isolated` and `nohz_full` (kernel/sched/isolation.c):
/// `isolcpus=` without flags, or with `domain`, fills `isolated`; with `nohz`, `nohz_full`
/// too; `nohz_full=` fills `nohz_full`. `isolcpus=managed_irq,5-10` alone isolates no CPU
/// from the scheduler: `isolated` stays empty.
fn cmdline_isolation(k: &crate::facts::kernel::Kernel) -> (Option<Source>, Option<Source>) {
    let flagged = |f: &str| {
        k.isolcpus.as_ref().is_some_and(|i| i.flags.is_empty() && f == "domain" || i.flags.iter().any(|x| x == f))
    };
    let iso = k.isolcpus.as_ref().map(|i| {
        if flagged("domain") { (i.cpus.clone(), "isolcpus") } else { (CpuList::new(), "isolcpus without domain") }
    });
    let nohz = match (&k.nohz_full, &k.isolcpus) {
        (Some(n), _) => Some((n.clone(), "nohz_full")),
        (None, Some(i)) if flagged("nohz") => Some((i.cpus.clone(), "isolcpus nohz")),
        _ => None,
    };
    (iso, nohz)
}

fn service_state(s: &Service) -> &'static str {
    match (s.active, s.enabled, s.installed) {
        (Some(true), _, _) => "running",
        (Some(false), Some(true), _) => "enabled, not running",
        (Some(false), _, Some(true)) => "installed, not running",
        (Some(false), _, _) => "not running",
        (None, Some(true), _) => "enabled",
        (None, _, Some(false)) => "not installed",
        _ => "?",
    }
}

/// Recommendations by severity, most severe first, keeping the engine's order within one.
fn by_severity(recs: &[Recommendation]) -> Vec<&Recommendation> {
    let mut v: Vec<&Recommendation> = recs.iter().collect();
    v.sort_by_key(|r| std::cmp::Reverse(r.severity));
    v
}

fn counts(recs: &[Recommendation]) -> String {
    let n = |s: Severity| recs.iter().filter(|r| r.severity == s).count();
    format!(
        "{} ({} errors, {} warnings, {} info)",
        recs.len(),
        n(Severity::Error),
        n(Severity::Warning),
        n(Severity::Info)
    )
}

fn nic_line(n: &crate::facts::nic::Nic) -> String {
    let mut parts = vec![n.driver.clone().unwrap_or_else(|| "?".into())];
    if let Some(node) = n.numa_node {
        parts.push(format!("node {node}"));
    }
    if let Some(s) = &n.operstate {
        parts.push(s.clone());
    }
    if let Some(sp) = n.speed_mbps {
        parts.push(format!("{sp} Mb/s"));
    }
    format!("{} ({})", n.name.clone().or_else(|| n.pci_address.clone()).unwrap_or_else(|| "?".into()), parts.join(", "))
}

/// A one-screen summary for a person.
pub fn render_text(report: &Report) -> String {
    let f = &report.facts;
    let mut o = String::new();
    let h = &f.host;
    let c = &f.cpu;
    o += &format!(
        "host      {} — {} — kernel {} — {}\n",
        opt(&h.hostname),
        opt(&h.os_pretty_name),
        opt(&h.kernel_release),
        opt(&h.architecture)
    );
    o += &format!("cpu       {} ({})\n", opt(&c.model_name), opt(&c.vendor));
    // No online CPU at all means the CPU folders were not found, not a host without CPUs.
    let online_known = !c.online.is_empty();
    o += &format!(
        "topology  {} sockets × {} cores × {} threads; online {} ({} CPUs); SMT {}\n",
        opt(&c.sockets),
        opt(&c.cores_per_socket),
        opt(&c.threads_per_core),
        or_unknown(c.online.to_string(), online_known),
        if online_known { c.count.to_string() } else { "?".into() },
        c.smt_control.clone().unwrap_or_else(|| "?".into())
    );
    let cmdline_known = f.kernel.cmdline.is_some();
    let (iso, nohz) = cmdline_isolation(&f.kernel);
    let isolcpus = f.kernel.isolcpus.as_ref().map(|i| {
        let flags = i.flags.iter().map(|f| format!("{f},")).collect::<String>();
        format!("{flags}{}", i.cpus)
    });
    // Each source apart, then their union: what fleet reports count as isolated.
    o += &format!(
        "isolated  {}; nohz_full {}; cmdline isolcpus {}; any source {} (what fleet reports count)\n",
        runtime_cpus(&c.isolated, cmdline_known, iso.as_ref().map(|(l, a)| (l, *a))),
        runtime_cpus(&c.nohz_full, cmdline_known, nohz.as_ref().map(|(l, a)| (l, *a))),
        if cmdline_known { or_none(isolcpus.unwrap_or_default()) } else { "?".into() },
        or_unknown(
            crate::analysis::isolated_cpus(f).to_string(),
            cmdline_known || c.isolated.is_some() || c.nohz_full.is_some()
        )
    );
    // Without a scaling driver, no governor either: a host without cpufreq and a capture
    // without its files look alike, so an empty list is unknown there.
    let govs: Vec<String> = c.governors.iter().map(|(g, l)| format!("{g} ({l})")).collect();
    o += &format!(
        "cpufreq   driver {}; governors {}; turbo {}\n",
        opt(&c.scaling_driver),
        or_unknown(govs.join(", "), c.scaling_driver.is_some() || !govs.is_empty()),
        opt(&c.turbo)
    );
    let states: Vec<String> = c
        .cpuidle
        .states
        .iter()
        .map(|s| format!("{}{}", opt(&s.name), if s.disabled_cpus.is_empty() { "" } else { "(disabled on some)" }))
        .collect();
    o += &format!(
        "cpuidle   driver {}; states {}\n",
        opt(&c.cpuidle.driver),
        or_unknown(states.join(" "), c.cpuidle.driver.is_some() || !states.is_empty())
    );
    for n in &f.numa.nodes {
        let hp: Vec<String> = n.hugepages.iter().map(|(s, h)| format!("{}×{}kB", opt(&h.total), s)).collect();
        o += &format!(
            "numa {:<4} cpus {}; memory {} kB; hugepages {}\n",
            n.id,
            or_none(n.cpus.to_string()),
            opt(&n.memory_kb),
            // Every node of a kernel with huge pages has the folder: none found is unknown.
            or_unknown(hp.join(", "), !hp.is_empty())
        );
    }
    o += &format!(
        "memory    THP {} (defrag {}); swap {} kB\n",
        opt(&f.memory.thp.enabled),
        opt(&f.memory.thp.defrag),
        opt(&f.memory.swap_total_kb)
    );
    o += &format!("cmdline   {}\n", f.kernel.cmdline.as_deref().unwrap_or("?"));
    o += &format!("boot      {}\n", f.kernel.bootloader.layout);
    let phys: Vec<String> = f.nics.iter().filter(|n| !n.r#virtual).map(nic_line).collect();
    let virt = f.nics.iter().filter(|n| n.r#virtual).count();
    if f.nics.is_empty() {
        // Not even `lo`: /sys/class/net was not there to read, nor a PCI network function.
        o += "nics      ? (none found in /sys/class/net or /sys/bus/pci)\n";
    } else {
        o += &format!("nics      {} physical: {}; {} virtual\n", phys.len(), or_none(phys.join(", ")), virt);
    }
    let s = &f.services;
    o += &format!(
        "services  irqbalance {}; tuned {}{}; chronyd {}; ptp4l {}\n",
        service_state(&s.irqbalance.service),
        service_state(&s.tuned.service),
        s.tuned.profile.as_deref().map(|p| format!(" ({p})")).unwrap_or_default(),
        service_state(&s.chronyd),
        service_state(&s.ptp4l)
    );
    let recs = &report.recommendations;
    o += &format!("findings  {}\n", counts(recs));
    let sorted = by_severity(recs);
    for r in sorted.iter().take(TEXT_MAX_RECOMMENDATIONS) {
        o += &format!("  {:<7} {}: {} → {}\n", r.severity.as_str(), r.id(), r.current, r.target);
    }
    if recs.len() > TEXT_MAX_RECOMMENDATIONS {
        o += &format!("  … {} more: lltune scan --md-report FILE\n", recs.len() - TEXT_MAX_RECOMMENDATIONS);
    }
    o
}

/// Text for one markdown table cell: escaped (`crate::markdown`: no HTML, links or extra
/// cells), `—` when empty.
fn cell(s: impl Display) -> String {
    crate::markdown::cell(&s.to_string())
}

fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

fn yes_no(b: Option<bool>) -> String {
    match b {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "?".into(),
    }
}

/// The markdown report: system summary, NUMA, NICs, services, time, recommendations.
pub fn render_markdown(report: &Report) -> String {
    let f = &report.facts;
    let h = &f.host;
    let c = &f.cpu;
    let mut o = String::new();
    o += &format!("# lltune report: {}\n\n", crate::markdown::text(h.hostname.as_deref().unwrap_or("unknown host")));
    o += &format!("Facts schema {}, lltune {}.\n\n", f.schema_version, crate::markdown::text(&f.lltune_version));

    o += "## System summary\n\n| | |\n|---|---|\n";
    let cmdline_known = f.kernel.cmdline.is_some();
    let (iso, nohz) = cmdline_isolation(&f.kernel);
    let isolcpus = f
        .kernel
        .isolcpus
        .as_ref()
        .map(|i| format!("{} ({})", i.cpus, i.flags.join(",")))
        .unwrap_or_else(|| "none".into());
    let govs = c.governors.iter().map(|(g, l)| format!("{g} ({l})")).collect::<Vec<_>>().join(", ");
    let summary: Vec<(&str, String)> = vec![
        ("Host", opt(&h.hostname)),
        ("OS", opt(&h.os_pretty_name)),
        ("Kernel", opt(&f.kernel.release.clone().or(h.kernel_release.clone()))),
        ("Machine", format!("{} {}", opt(&h.dmi.sys_vendor), opt(&h.dmi.product_name))),
        ("Virtualization", opt(&h.virtualization.kind)),
        ("CPU", format!("{} ({})", opt(&c.model_name), opt(&c.vendor))),
        (
            "Topology",
            format!(
                "{} sockets × {} cores × {} threads",
                opt(&c.sockets),
                opt(&c.cores_per_socket),
                opt(&c.threads_per_core)
            ),
        ),
        ("Online CPUs", format!("{} ({} CPUs; offline {})", c.online, c.count, or_none(c.offline.to_string()))),
        ("Isolated (runtime)", runtime_cpus(&c.isolated, cmdline_known, iso.as_ref().map(|(l, a)| (l, *a)))),
        ("nohz_full (runtime)", runtime_cpus(&c.nohz_full, cmdline_known, nohz.as_ref().map(|(l, a)| (l, *a)))),
        ("isolcpus (cmdline)", isolcpus),
        ("Governors", or_unknown(govs.clone(), c.scaling_driver.is_some() || !govs.is_empty())),
        ("Scaling driver", opt(&c.scaling_driver)),
        ("Turbo", opt(&c.turbo)),
        ("Memory", format!("{} kB", opt(&f.memory.total_kb))),
        ("THP", format!("{} (defrag {})", opt(&f.memory.thp.enabled), opt(&f.memory.thp.defrag))),
        ("Swap", format!("{} kB", opt(&f.memory.swap_total_kb))),
        ("Boot loader", f.kernel.bootloader.layout.clone()),
        // Escaped text, not a code span: a backtick in the line would end a code span.
        ("Command line", f.kernel.cmdline.clone().unwrap_or_else(|| "?".into())),
    ];
    for (k, v) in summary {
        o += &row(&[k.to_string(), cell(v)]);
    }

    o += "\n### NUMA nodes\n\n| node | CPUs | memory (kB) | huge pages |\n|---|---|---|---|\n";
    for n in &f.numa.nodes {
        let hp: Vec<String> = n.hugepages.iter().map(|(s, hp)| format!("{} × {} kB", opt(&hp.total), s)).collect();
        o += &row(&[n.id.to_string(), cell(&n.cpus), opt(&n.memory_kb), cell(hp.join(", "))]);
    }

    o += "\n### NICs\n\n| name | driver | PCI | NUMA node | link | speed (Mb/s) | virtual |\n|---|---|---|---|---|---|---|\n";
    for n in &f.nics {
        o += &row(&[
            cell(n.name.as_deref().unwrap_or("")),
            cell(opt(&n.driver)),
            cell(opt(&n.pci_address)),
            opt(&n.numa_node),
            cell(opt(&n.operstate)),
            opt(&n.speed_mbps),
            if n.r#virtual { "yes".into() } else { "no".into() },
        ]);
    }

    o += "\n## Services\n\n| service | installed | enabled | running | notes |\n|---|---|---|---|---|\n";
    let s = &f.services;
    let ib = &s.irqbalance;
    let banned =
        ib.banned_cpulist.clone().or(ib.banned_cpus.clone()).map(|b| format!("bans CPUs {b}")).unwrap_or_default();
    let services: Vec<(&str, &Service, String)> = vec![
        ("irqbalance", &ib.service, banned),
        ("tuned", &s.tuned.service, s.tuned.profile.as_deref().map(|p| format!("profile {p}")).unwrap_or_default()),
        ("chronyd", &s.chronyd, String::new()),
        ("ntpd", &s.ntpd, String::new()),
        ("systemd-timesyncd", &s.systemd_timesyncd, String::new()),
        ("ptp4l", &s.ptp4l, String::new()),
        ("phc2sys", &s.phc2sys, String::new()),
    ];
    for (name, svc, notes) in services {
        o += &row(&[name.to_string(), yes_no(svc.installed), yes_no(svc.enabled), yes_no(svc.active), cell(notes)]);
    }
    let ptp: Vec<&str> = f.time.ptp_clocks.iter().map(|p| p.name.as_str()).collect();
    o += &format!(
        "\nClocksource: {}; PTP clocks: {}.\n",
        crate::markdown::text(&opt(&f.time.current_clocksource)),
        crate::markdown::text(&or_none(ptp.join(", ")))
    );

    o += "\n## Recommendations\n\n";
    let recs = &report.recommendations;
    if recs.is_empty() {
        o += "None: nothing the facts show calls for a change.\n";
    } else {
        o += &format!("{}.\n\n", counts(recs));
        o += "| # | severity | category | item | current → target | impact | risk | rationale |\n|---|---|---|---|---|---|---|---|\n";
        for (i, r) in recs.iter().enumerate() {
            o += &row(&[
                (i + 1).to_string(),
                r.severity.as_str().into(),
                cell(&r.category),
                cell(&r.item),
                cell(format!("{} → {}", r.current, r.target)),
                r.impact.as_str().into(),
                r.risk.as_str().into(),
                cell(&r.rationale),
            ]);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{self, testing};

    #[test]
    fn markdown_escapes_pipes_and_lists_every_recommendation() {
        let mut f = testing::two_nodes();
        f.cpu.governors.insert("powersave".into(), crate::cpulist::CpuList::parse("0-15").unwrap());
        f.kernel.cmdline = Some("a=b|c".into());
        let report = Report::of(f);
        let md = render_markdown(&report);
        assert!(md.contains("| Command line | a=b\\|c |"), "{md}");
        assert!(md.contains("| warning | cpu | governor | powersave (0-15) → performance | high | safe |"), "{md}");
        let rows = md
            .lines()
            .filter(|l| {
                l.starts_with("| ") && l.chars().nth(2).is_some_and(|c| c.is_ascii_digit()) && l.contains(" → ")
            })
            .count();
        assert_eq!(rows, report.recommendations.len());
    }

    /// The RT worker's case: a dump without /sys/devices/system/cpu/isolated said
    /// `isolated none` beside `cmdline isolcpus 5-10`.
    #[test]
    fn text_summary_says_unknown_where_a_source_is_absent_and_falls_back_to_the_cmdline() {
        use crate::facts::kernel::{Isolcpus, Kernel};
        let l = |s: &str| CpuList::parse(s).unwrap();
        let line = |f: &crate::facts::Facts, start: &str| {
            let t = render_text(&Report::of(f.clone()));
            t.lines().find(|x| x.starts_with(start)).unwrap_or_else(|| panic!("no {start} line: {t}")).to_string()
        };
        let mut f = testing::two_nodes();
        f.cpu.isolated = None;
        f.cpu.nohz_full = None;
        f.kernel.cmdline = Some("isolcpus=2-7 nohz_full=2-7".into());
        f.kernel.isolcpus = Some(Isolcpus { flags: vec![], cpus: l("2-7") });
        f.kernel.nohz_full = Some(l("2-7"));
        assert_eq!(
            line(&f, "isolated"),
            "isolated  2-7 (from cmdline isolcpus); nohz_full 2-7 (from cmdline nohz_full); cmdline isolcpus 2-7; \
             any source 2-7 (what fleet reports count)"
        );
        // managed_irq alone isolates nothing from the scheduler: the runtime file would be empty,
        // while fleet reports count the isolcpus CPUs: the line says both, and which is which.
        f.kernel.cmdline = Some("isolcpus=managed_irq,5-10".into());
        f.kernel.isolcpus = Some(Isolcpus { flags: vec!["managed_irq".into()], cpus: l("5-10") });
        f.kernel.nohz_full = None;
        assert_eq!(
            line(&f, "isolated"),
            "isolated  none (from cmdline isolcpus without domain); nohz_full none (from cmdline); \
             cmdline isolcpus managed_irq,5-10; any source 5-10 (what fleet reports count)"
        );
        // A runtime file that is there wins, and its empty value is none.
        f.cpu.isolated = Some(CpuList::new());
        f.cpu.nohz_full = Some(l("6"));
        assert!(line(&f, "isolated").starts_with("isolated  none; nohz_full 6; "));
        // Nothing known: neither the runtime files nor the command line.
        f.cpu.isolated = None;
        f.cpu.nohz_full = None;
        f.kernel = Kernel::default();
        assert_eq!(
            line(&f, "isolated"),
            "isolated  ?; nohz_full ?; cmdline isolcpus ?; any source ? (what fleet reports count)"
        );
        // No cpufreq, no cpuidle, no huge page folders, no CPUs, no NICs found: unknown.
        f.cpu.governors.clear();
        f.cpu.scaling_driver = None;
        f.cpu.cpuidle = Default::default();
        f.cpu.online = CpuList::new();
        f.nics.clear();
        for n in &mut f.numa.nodes {
            n.hugepages.clear();
        }
        assert!(line(&f, "cpufreq").contains("governors ?;"), "{}", line(&f, "cpufreq"));
        assert!(line(&f, "cpuidle").ends_with("states ?"), "{}", line(&f, "cpuidle"));
        assert!(line(&f, "topology").contains("online ? (? CPUs)"), "{}", line(&f, "topology"));
        assert!(line(&f, "numa").ends_with("hugepages ?"), "{}", line(&f, "numa"));
        assert!(line(&f, "nics").starts_with("nics      ? "), "{}", line(&f, "nics"));
        let md = render_markdown(&Report::of(f.clone()));
        assert!(md.contains("| Isolated (runtime) | ? |") && md.contains("| Governors | ? |"), "{md}");
    }

    #[test]
    fn text_summary_caps_the_recommendations() {
        let mut recommendations: Vec<Recommendation> =
            (0..TEXT_MAX_RECOMMENDATIONS + 3).map(|i| analysis::rec("cpu", format!("r{i}"))).collect();
        recommendations.push(analysis::rec("kernel", "bad").sev(Severity::Error));
        let t = render_text(&Report { facts: testing::two_nodes(), recommendations });
        assert!(t.contains("findings  14 (1 errors, 0 warnings, 13 info)"), "{t}");
        let first = t.lines().find(|l| l.starts_with("  ")).unwrap();
        // Errors first, each finding by its id (category.item).
        assert!(first.starts_with("  error   kernel.bad: "), "errors first: {first}");
        assert!(t.contains("… 4 more"), "{t}");
    }
}
