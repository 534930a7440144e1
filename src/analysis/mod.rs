//! Analysis: from the facts of one host, what is wrong for low latency and why
//! (`recommendations`, reported beside the facts in a `Report`), and the core plan that
//! gen-config proposes. Analysis depends on discovery (`facts`), never the other way round.
//!
//! Everything here is pure: it reads a `Facts`, never the host. Each rule is a small function
//! returning at most a few `Recommendation`s, so its thresholds can be tested at their
//! boundaries. A fact that is unknown (`null`, or absent from a partial capture) never
//! triggers a rule: a tuned host read from a partial tree must not be told to do what it
//! may already do. `docs/recommendations.md` lists every rule with its thresholds.

pub mod cpu;
pub mod irq;
pub mod kernel;
pub mod memory;
pub mod network;
pub mod nic;
pub mod plan;
pub mod system;

use std::fmt::Display;

use serde::{Deserialize, Serialize};

use crate::cpulist::CpuList;
use crate::facts::Facts;

/// How much a person should care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Optional optimisation.
    Info,
    /// Recommended change; likely costs latency today.
    Warning,
    /// Contradictory or broken state that defeats the tuning.
    Error,
}

/// Expected latency gain of following the recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    Low,
    Medium,
    High,
}

/// What following the recommendation may cost beyond its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// No effect beyond the target.
    Safe,
    /// May affect other workloads (throughput, power, other processes' CPUs).
    PotentiallyDisruptive,
    /// May cause instability or weaken security.
    HighRisk,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl Impact {
    pub fn as_str(self) -> &'static str {
        match self {
            Impact::Low => "low",
            Impact::Medium => "medium",
            Impact::High => "high",
        }
    }
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Safe => "safe",
            Risk::PotentiallyDisruptive => "potentially_disruptive",
            Risk::HighRisk => "high_risk",
        }
    }
}

/// One finding: `recommendations[]` of a `Report`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    /// cpu, kernel, memory, network, nic, irq, services, limits, time, user_stacks.
    pub category: String,
    /// What it is about: a setting (`governor`, `net.core.busy_poll`), or `<nic>: <setting>`.
    pub item: String,
    /// The state found, as text.
    pub current: String,
    /// The state recommended, as text.
    pub target: String,
    pub severity: Severity,
    pub impact: Impact,
    pub risk: Risk,
    /// Why, in one or two sentences.
    pub rationale: String,
}

/// Starts a recommendation; defaults are info, low impact, safe.
pub(crate) fn rec(category: &str, item: impl Into<String>) -> Recommendation {
    Recommendation {
        category: category.to_string(),
        item: item.into(),
        current: String::new(),
        target: String::new(),
        severity: Severity::Info,
        impact: Impact::Low,
        risk: Risk::Safe,
        rationale: String::new(),
    }
}

impl Recommendation {
    /// The finding's name in every listing: `<category>.<item>` (`kernel.nohz_full`).
    pub fn id(&self) -> String {
        format!("{}.{}", self.category, self.item)
    }

    pub(crate) fn now(mut self, current: impl Display) -> Self {
        self.current = current.to_string();
        self
    }
    pub(crate) fn want(mut self, target: impl Display) -> Self {
        self.target = target.to_string();
        self
    }
    pub(crate) fn sev(mut self, s: Severity) -> Self {
        self.severity = s;
        self
    }
    pub(crate) fn impact(mut self, i: Impact) -> Self {
        self.impact = i;
        self
    }
    pub(crate) fn risk(mut self, r: Risk) -> Self {
        self.risk = r;
        self
    }
    pub(crate) fn why(mut self, rationale: &str) -> Self {
        self.rationale = rationale.to_string();
        self
    }
}

/// What every rule may need besides the facts: the CPU sets isolation gives this host.
pub struct Context<'a> {
    pub facts: &'a Facts,
    /// CPUs isolated by the command line (`isolcpus=`, `nohz_full=`) or at runtime
    /// (`cpu.isolated`, `cpu.nohz_full`): where nothing else should run.
    pub isolated: CpuList,
    /// Online CPUs that are not isolated; empty when nothing is isolated.
    pub housekeeping: CpuList,
    /// The split gen-config would propose (default options): targets of isolation rules.
    pub plan: plan::CorePlan,
    /// The isolated CPUs the findings propose: the host's own (`isolated`) for a scan; the
    /// plan's for the findings a generated config embeds, so that they agree with it.
    pub target_isolated: CpuList,
    /// The housekeeping CPUs the findings propose, likewise.
    pub target_housekeeping: CpuList,
    /// Findings for a generated config: targets follow `plan`.
    pub for_config: bool,
}

impl<'a> Context<'a> {
    pub fn new(facts: &'a Facts) -> Context<'a> {
        let isolated = isolated_cpus(facts);
        let housekeeping = if isolated.is_empty() { CpuList::new() } else { facts.cpu.online.difference(&isolated) };
        let plan = plan::core_plan(facts, &plan::PlanOptions::default());
        Context {
            facts,
            target_isolated: isolated.clone(),
            target_housekeeping: housekeeping.clone(),
            isolated,
            housekeeping,
            plan,
            for_config: false,
        }
    }

    /// For the findings of a config generated with `opts`: the plan of those options is the
    /// split every finding proposes (isolated, housekeeping, IRQ and irqbalance targets).
    pub fn for_plan(facts: &'a Facts, opts: &plan::PlanOptions) -> Context<'a> {
        let mut cx = Context::new(facts);
        cx.plan = plan::core_plan(facts, opts);
        cx.target_isolated = cx.plan.isolated.clone();
        cx.target_housekeeping = cx.plan.housekeeping.clone();
        cx.for_config = true;
        cx
    }
}

/// Union of every source of isolation the facts show.
pub fn isolated_cpus(f: &Facts) -> CpuList {
    // Runtime files the host lacks (null) add nothing; the command line below still counts.
    let mut s = CpuList::new();
    for known in [&f.cpu.isolated, &f.cpu.nohz_full].into_iter().flatten() {
        s = s.union(known);
    }
    if let Some(i) = &f.kernel.isolcpus {
        s = s.union(&i.cpus);
    }
    if let Some(n) = &f.kernel.nohz_full {
        s = s.union(n);
    }
    s
}

/// Order of the categories in the output (and in reports).
pub const CATEGORIES: &[&str] =
    &["cpu", "kernel", "memory", "network", "nic", "irq", "services", "limits", "time", "user_stacks"];

/// Every recommendation for this host, in a stable order: by category (`CATEGORIES`), then
/// in the order the rules run (NICs in facts order).
pub fn recommend(facts: &Facts) -> Vec<Recommendation> {
    recommend_in(&Context::new(facts))
}

/// The findings a config generated with `opts` embeds: the same rules, with the plan of
/// those options as their isolation targets (`Context::for_plan`).
pub fn recommend_for_plan(facts: &Facts, opts: &plan::PlanOptions) -> Vec<Recommendation> {
    recommend_in(&Context::for_plan(facts, opts))
}

fn recommend_in(cx: &Context) -> Vec<Recommendation> {
    let mut out = Vec::new();
    cpu::rules(cx, &mut out);
    kernel::rules(cx, &mut out);
    memory::rules(cx, &mut out);
    network::rules(cx, &mut out);
    nic::rules(cx, &mut out);
    irq::rules(cx, &mut out);
    system::rules(cx, &mut out);
    // Stable: rules push in a fixed order; this only groups categories together.
    crate::sort::sort_by_key(&mut out, |r| {
        CATEGORIES.iter().position(|c| *c == r.category).unwrap_or(CATEGORIES.len())
    });
    out
}

/// What `lltune scan` and `lltune_facts` report (`ansible_facts.lltune`): the facts of
/// discovery, flattened, then the recommendations analysis derives from them. One JSON object;
/// `recommendations` is its last key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    #[serde(flatten)]
    pub facts: Facts,
    pub recommendations: Vec<Recommendation>,
}

impl Report {
    /// The facts with the recommendations computed from them.
    pub fn of(facts: Facts) -> Report {
        let recommendations = recommend(&facts);
        Report { facts, recommendations }
    }
}

/// Discovery plus recommendations: what `lltune scan` and `lltune_facts` report. Returns the
/// report and the scan's warnings. (`facts::collect` alone is discovery only.)
pub fn analyse(host: &crate::host::Host, options: crate::facts::ScanOptions) -> (Report, Vec<String>) {
    let (facts, warnings) = crate::facts::collect(host, options);
    (Report::of(facts), warnings)
}

/// A sysctl's value as a number, when the facts have it.
pub(crate) fn sysctl_num(f: &Facts, name: &str) -> Option<i64> {
    f.sysctl.get(name)?.as_deref()?.trim().parse().ok()
}

/// `a (0-3), b (4-7)` for a `{value: cpulist}` map.
pub(crate) fn by_cpus(m: &std::collections::BTreeMap<String, CpuList>) -> String {
    m.iter().map(|(k, v)| format!("{k} ({v})")).collect::<Vec<_>>().join(", ")
}

/// A CPU list for messages: `none` when empty.
pub(crate) fn list_or_none(l: &CpuList) -> String {
    if l.is_empty() { "none".into() } else { l.to_string() }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Facts for rule tests: a blank host, filled in by each test.
    use super::*;
    use crate::facts::{self, ScanOptions};
    use crate::host::Host;

    /// Facts of an empty tree: every fact unknown, so no rule fires on it.
    pub fn blank() -> Facts {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path()).unwrap();
        facts::collect(&host, ScanOptions::default()).0
    }

    /// A 2-node, 4-cores-per-node, SMT-2 host: node 0 = 0-3,8-11; node 1 = 4-7,12-15.
    pub fn two_nodes() -> Facts {
        let mut f = blank();
        f.cpu.online = CpuList::parse("0-15").unwrap();
        f.cpu.count = 16;
        f.cpu.threads_per_core = Some(2);
        f.cpu.thread_siblings = (0..8).map(|c| CpuList::from_cpus([c, c + 8])).collect();
        f.numa.nodes = vec![
            facts::numa::Node {
                id: 0,
                cpus: CpuList::parse("0-3,8-11").unwrap(),
                memory_kb: Some(16 << 20),
                ..Default::default()
            },
            facts::numa::Node {
                id: 1,
                cpus: CpuList::parse("4-7,12-15").unwrap(),
                memory_kb: Some(16 << 20),
                ..Default::default()
            },
        ];
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_facts_give_no_recommendation() {
        // Unknown is not wrong: a tree with nothing in it must not produce advice.
        let recs = recommend(&testing::blank());
        assert!(recs.is_empty(), "{recs:#?}");
    }

    #[test]
    fn order_is_by_category_then_rule() {
        let mut f = testing::two_nodes();
        f.cpu.governors.insert("powersave".into(), CpuList::parse("0-15").unwrap());
        f.memory.thp.enabled = Some("always".into());
        f.sysctl.insert("net.core.busy_poll".into(), Some("0".into()));
        let recs = recommend(&f);
        let cats: Vec<&str> = recs.iter().map(|r| r.category.as_str()).collect();
        let mut sorted = cats.clone();
        crate::sort::sort_by_key(&mut sorted, |c| CATEGORIES.iter().position(|x| x == c));
        assert_eq!(cats, sorted);
        assert_eq!(recommend(&f), recs, "same facts, same list");
    }

    #[test]
    fn severity_impact_risk_serialise_as_the_documented_words() {
        let r = rec("cpu", "x").sev(Severity::Warning).impact(Impact::High).risk(Risk::PotentiallyDisruptive);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["severity"], "warning");
        assert_eq!(v["impact"], "high");
        assert_eq!(v["risk"], "potentially_disruptive");
        assert_eq!(Risk::HighRisk.as_str(), serde_json::to_value(Risk::HighRisk).unwrap());
    }
}
