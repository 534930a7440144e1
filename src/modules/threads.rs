//! lltune_threads: moves running threads (user processes and movable kernel threads) off the
//! isolated CPUs, and sets the scheduling policy and priority of threads by name.
//!
//! Sources: sched_setaffinity(2), sched_setscheduler(2), sched(7), proc(5) (`stat`,
//! `status`); TuneD's scheduler plugin (`isolated_cores`, `group.*`) and its realtime
//! profiles, whose thread groups give the default `priorities`.
//!
//! The surprising parts: per-CPU kernel threads (ksoftirqd/N, migration/N, cpuhp/N,
//! kworker/N:M, rcuc/N) cannot be moved (the kernel sets PF_NO_SETAFFINITY on them): they are
//! recognised, left where they are and reported, and their priority can still be set. A
//! thread allowed *only* on isolated CPUs was put there on purpose (the trading application
//! itself) and is left alone too. A thread in a cpuset cgroup gets only CPUs its cpuset
//! allows (sched_setaffinity(2) intersects the mask with it, and fails with EINVAL when
//! nothing is left): `housekeeping_cpus` is narrowed to the cpuset's effective CPUs, and a
//! thread whose cpuset allows none of them goes to its own CPUs off the isolated ones, with a
//! warning naming it and its cgroup. A thread id is reused when its thread ends, so a thread is
//! named by its ids and its start time: one that ends between the plan and the write is
//! reported (`vanished`), and rollback restores only the threads that still run. On a
//! captured tree (root not `/`) the plan is made from the tree's `/proc` and shown, but
//! nothing is set: threads are the running system's.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cpulist::CpuList;
use crate::engine::state::Action;
use crate::engine::{self, Module, Ran};
use crate::facts::threads::{self, Sched, Task, ThreadId};
use crate::host::Host;
use crate::modules::irq::opt_cpulist_text;
use crate::protocol::{Diff, Failure, Meta, Outcome, cap_text, lenient_bool};
use crate::sys::sched::Policy;

pub const MODULE: &str = crate::names::THREADS;

/// The most `keep` patterns and `priorities` rules one run takes.
pub const MAX_RULES: usize = 1000;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// CPUs to clear of movable threads.
    #[serde(default, deserialize_with = "opt_cpulist_text", skip_serializing_if = "Option::is_none")]
    pub isolated_cpus: Option<String>,
    /// Where the moved threads go; default each thread's allowed CPUs minus the isolated ones.
    #[serde(default, deserialize_with = "opt_cpulist_text", skip_serializing_if = "Option::is_none")]
    pub housekeeping_cpus: Option<String>,
    /// Thread names (globs) left on the isolated CPUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<String>,
    /// Policy and priority by thread name; absent: `REALTIME_DEFAULTS`; `[]`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priorities: Option<Vec<Rule>>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub persist: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
}

/// One `priorities` rule: the threads whose name matches the glob get the policy and
/// priority. The first rule that matches a thread decides.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(rename = "match")]
    pub pattern: String,
    pub policy: Policy,
    pub priority: u32,
}

/// The default `priorities`: the thread groups TuneD's realtime-virtual-guest and
/// realtime-virtual-host profiles set (`group.ksoftirqd`, `group.ktimers`, `group.rcuc`,
/// `group.rcub`, `group.ktimersoftd`), and threaded IRQ handlers at the FIFO priority the
/// kernel gives them when it creates them (50), so one someone changed is put back.
pub const REALTIME_DEFAULTS: &[(&str, Policy, u32)] = &[
    ("ksoftirqd/*", Policy::Fifo, 2),
    ("ktimers/*", Policy::Fifo, 2),
    ("ktimersoftd/*", Policy::Fifo, 3),
    ("rcuc/*", Policy::Fifo, 4),
    ("rcub/*", Policy::Fifo, 4),
    ("irq/*", Policy::Fifo, 50),
];

/// The default rules, as `priorities` entries.
pub fn default_rules() -> Vec<Rule> {
    REALTIME_DEFAULTS.iter().map(|(m, p, n)| Rule { pattern: m.to_string(), policy: *p, priority: *n }).collect()
}

fn fail(msg: impl Into<String>) -> anyhow::Error {
    Failure::new(msg).into()
}

fn glob(option: &str, g: &str) -> Result<glob::Pattern> {
    if g.is_empty() || g.len() > 256 {
        return Err(fail(format!(
            "option {option}: a thread name pattern is 1 to 256 characters, got {:?}",
            cap_text(g)
        )));
    }
    glob::Pattern::new(g).map_err(|e| fail(format!("option {option}: {:?} is not a glob: {e}", cap_text(g))))
}

fn cpus(option: &str, text: &Option<String>) -> Result<Option<CpuList>> {
    text.as_deref()
        .map(|t| CpuList::parse(t).map_err(|e| fail(format!("option {option}: {e}"))))
        .transpose()
        .map(|l| l.filter(|l| !l.is_empty()))
}

/// One thread whose scheduling changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub kthread: bool,
    pub before: Sched,
    pub after: Sched,
}

/// A thread left on the isolated CPUs, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Left {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub cpus: CpuList,
    /// `per-CPU kernel thread`, `keep pattern <glob>`, `allowed only on isolated CPUs`,
    /// `SCHED_DEADLINE`.
    pub reason: String,
}

fn left(t: &Task, reason: String) -> Left {
    Left { pid: t.id.pid, tid: t.id.tid, comm: t.id.comm.clone(), cpus: t.affinity.clone(), reason }
}

pub fn plan(host: &Host, p: &Params) -> Result<engine::Plan> {
    if p.keep.len() > MAX_RULES || p.priorities.as_ref().is_some_and(|r| r.len() > MAX_RULES) {
        return Err(fail(format!("options keep and priorities: at most {MAX_RULES} entries each")));
    }
    let keep: Vec<(glob::Pattern, &str)> =
        p.keep.iter().map(|g| glob("keep", g).map(|pat| (pat, g.as_str()))).collect::<Result<_>>()?;
    let rules = p.priorities.clone().unwrap_or_else(default_rules);
    let mut compiled = Vec::with_capacity(rules.len());
    for (n, r) in rules.iter().enumerate() {
        let what = format!("priorities[{n}]");
        let ok = if r.policy.is_realtime() { (1..=99).contains(&r.priority) } else { r.priority == 0 };
        if !ok {
            return Err(fail(format!(
                "option {what}.priority: {} takes {}, got {}",
                r.policy.name(),
                if r.policy.is_realtime() { "1 to 99" } else { "0" },
                r.priority
            )));
        }
        compiled.push((glob(&format!("{what}.match"), &r.pattern)?, r));
    }
    let isolated = cpus("isolated_cpus", &p.isolated_cpus)?;
    let housekeeping = cpus("housekeeping_cpus", &p.housekeeping_cpus)?;
    if housekeeping.is_some() && isolated.is_none() {
        return Err(fail("option housekeeping_cpus: only with isolated_cpus (the CPUs to move threads off)"));
    }

    let mut out = engine::Plan::default();
    let live = host.system().can_act();
    let tasks = match threads::list(host) {
        Ok(t) if t.is_empty() && live.is_err() => {
            out.warnings
                .push(format!("/proc lists no thread: this tree has no threads to plan for ({})", live.unwrap_err()));
            out.field("threads", Vec::<Change>::new());
            return Ok(out);
        }
        Ok(t) => t,
        Err(e) if live.is_err() => {
            out.warnings.push(format!("{e}: this tree has no threads to plan for ({})", live.unwrap_err()));
            out.field("threads", Vec::<Change>::new());
            return Ok(out);
        }
        Err(e) => return Err(fail(e)),
    };
    let online = match crate::modules::cpu::online_cpus(host) {
        Ok(o) => o,
        Err(_) => tasks.iter().fold(CpuList::new(), |acc, t| acc.union(&t.affinity)),
    };
    if let Some(iso) = &isolated {
        if online.is_subset(iso) {
            return Err(fail(format!(
                "option isolated_cpus: {iso} covers every online CPU ({online}); no CPU is left for the other threads"
            )));
        }
        if let Some(hk) = &housekeeping {
            let off = hk.difference(&online);
            if !off.is_empty() {
                return Err(fail(format!("option housekeeping_cpus: CPUs {off} are not online (online: {online})")));
            }
            let both = hk.intersection(iso);
            if !both.is_empty() {
                return Err(fail(format!("option housekeeping_cpus: CPUs {both} are isolated too (isolated_cpus)")));
            }
        }
    }

    let mut changes = Vec::new();
    let mut lefts = Vec::new();
    // Each process's cpuset cgroup (path, effective CPUs), read once, when a thread of it moves
    // to housekeeping_cpus; and the threads whose cpuset allows none of them.
    let mut cpusets: std::collections::BTreeMap<u32, Option<(String, CpuList)>> = Default::default();
    let mut confined: Vec<String> = Vec::new();
    for t in &tasks {
        let comm = t.id.comm.as_str();
        let on_isolated = isolated.as_ref().filter(|iso| !t.affinity.is_disjoint(iso));
        let rule = compiled.iter().find(|(pat, _)| pat.matches(comm)).map(|(_, r)| *r);
        let Some(before) = t.sched() else {
            if on_isolated.is_some() || rule.is_some() {
                lefts.push(left(
                    t,
                    format!("policy {} (SCHED_DEADLINE or unknown) is not one lltune sets", t.policy_number),
                ));
            }
            continue;
        };
        let mut after = before.clone();
        if let Some(iso) = on_isolated {
            if t.per_cpu_kthread() {
                lefts.push(left(t, "per-CPU kernel thread".into()));
            } else if let Some((_, g)) = keep.iter().find(|(pat, _)| pat.matches(comm)) {
                lefts.push(left(t, format!("keep pattern {g}")));
            } else {
                // Allowed only on isolated CPUs: placed there on purpose, left there.
                let rest = t.affinity.difference(iso);
                if rest.is_empty() {
                    lefts.push(left(t, "allowed only on isolated CPUs".into()));
                } else if let Some(hk) = &housekeeping {
                    // The kernel gives a thread the CPUs asked for that its cpuset cgroup
                    // allows, and refuses (EINVAL) when that is none: ask for those only,
                    // else for its own CPUs off the isolated ones (still within the cpuset).
                    let allowed = cpusets.entry(t.id.pid).or_insert_with(|| cpuset_cpus(host, t.id.pid));
                    match allowed {
                        Some((path, cpus)) if hk.is_disjoint(cpus) => {
                            confined.push(format!("{} (cpuset {path}: CPUs {cpus})", t.id));
                            after.affinity = rest;
                        }
                        Some((_, cpus)) => after.affinity = hk.intersection(cpus),
                        None => after.affinity = hk.clone(),
                    }
                } else {
                    after.affinity = rest;
                }
            }
        }
        if let Some(r) = rule {
            after.policy = r.policy;
            after.priority = r.priority;
        }
        if after != before {
            changes.push((t.id.clone(), t.kthread(), before, after));
        }
    }

    if !confined.is_empty() {
        out.warnings.push(format!(
            "{} thread(s) moved to their own CPUs off isolated_cpus, not to housekeeping_cpus, which their cpuset cgroup does not allow: {}",
            confined.len(),
            cap_text(&confined.join(", "))
        ));
    }
    let (mut before_text, mut after_text) = (String::new(), String::new());
    for (id, _, before, after) in &changes {
        before_text.push_str(&format!("{id}: {}\n", before.show()));
        after_text.push_str(&format!("{id}: {}\n", after.show()));
    }
    let report: Vec<Change> = changes
        .iter()
        .map(|(id, k, b, a)| Change {
            pid: id.pid,
            tid: id.tid,
            comm: id.comm.clone(),
            kthread: *k,
            before: b.clone(),
            after: a.clone(),
        })
        .collect();
    match &live {
        Ok(()) => {
            for (id, _, _, after) in &changes {
                out.actions.push(Action::SetThread { thread: id.clone(), to: after.clone() });
            }
            if !changes.is_empty() {
                out.diff.push(Diff {
                    before_header: "threads".into(),
                    after_header: "threads".into(),
                    before: before_text,
                    after: after_text,
                });
            }
        }
        Err(why) if !changes.is_empty() => out.warnings.push(format!(
            "{} thread change(s) planned from this tree's /proc and not carried out ({why}): threads are set on the running host only",
            changes.len()
        )),
        Err(_) => {}
    }
    out.field("isolated_cpus", isolated.as_ref().map(|c| c.to_string()).unwrap_or_default());
    out.field("threads", &report);
    out.field("left", &lefts);
    let planned: Vec<ThreadId> = changes.into_iter().map(|(id, ..)| id).collect();
    out.after_apply(move |host, plan, ran| {
        if ran != Ran::Applied {
            return;
        }
        let vanished: Vec<String> =
            planned.iter().filter(|id| threads::current(host, id).is_none()).map(|id| id.to_string()).collect();
        if !vanished.is_empty() {
            plan.warnings.push(format!(
                "{} thread(s) ended before or while they were set (nothing left to set): {}",
                vanished.len(),
                cap_text(&vanished.join(", "))
            ));
        }
        plan.field("vanished", vanished);
    });
    Ok(out)
}

/// The cpuset cgroup of process `pid` and the CPUs it allows its threads: `/proc/PID/cpuset`
/// names the cgroup (cpuset(7)); its effective CPUs are `cpuset.cpus.effective` in the cgroup
/// v2 hierarchy (a cgroup without the cpuset controller has its parent's: the nearest folder
/// up that has the file), or `cpuset.effective_cpus` under the v1 cpuset mount. `None` when
/// the kernel has no cpusets, the process is gone, or neither file reads as a CPU list.
fn cpuset_cpus(host: &Host, pid: u32) -> Option<(String, CpuList)> {
    let path = host.read_opt(&format!("/proc/{pid}/cpuset")).ok().flatten()?;
    let path = path.trim_end_matches('\n');
    if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
        return None;
    }
    let cpus = |file: &str| host.attr(file).and_then(|t| CpuList::parse(&t).ok()).filter(|c| !c.is_empty());
    let v1 = cpus(&format!("/sys/fs/cgroup/cpuset{}/cpuset.effective_cpus", path.trim_end_matches('/')));
    let mut dir = path.trim_end_matches('/');
    let v2 = loop {
        if let Some(c) = cpus(&format!("/sys/fs/cgroup{dir}/cpuset.cpus.effective")) {
            break Some(c);
        }
        match dir.rsplit_once('/') {
            Some((up, _)) => dir = up,
            None => break None,
        }
    };
    Some((path.to_string(), v1.or(v2)?))
}

/// The module, as the engine's runner sees it.
pub struct Threads;

impl Module for Threads {
    const NAME: &'static str = MODULE;
    type Params = Params;

    fn backup_id(params: &Params) -> Option<&str> {
        params.backup_id.as_deref()
    }

    fn plan(host: &Host, params: &Params) -> Result<engine::Plan> {
        plan(host, params)
    }

    fn persist_state(params: &Params) -> Option<Map<String, Value>> {
        engine::persist::options_of(params, params.persist)
    }
}

pub fn run(host: &Host, meta: &Meta, params: Params) -> Result<Outcome> {
    engine::run::<Threads>(host, meta, params)
}
