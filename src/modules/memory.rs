//! lltune_memory: run-time memory settings — transparent huge pages, huge page pools per NUMA
//! node, KSM, automatic NUMA balancing — and swap (off now on a live root, and commented out
//! in /etc/fstab so it stays off).
//!
//! Sources: Documentation/admin-guide/mm/transhuge.rst, hugetlbpage.rst ("per node huge page
//! attributes"), ksm.rst, admin-guide/sysctl/kernel.rst (numa_balancing), swapoff(8), fstab(5).
//!
//! The surprising parts: the kernel may allocate fewer huge pages than asked (fragmented or
//! used memory) and says so only by reading back a smaller `nr_hugepages`: the engine's
//! read-back fails that write (`state::NotKept`) and reverts the run, and the plan's failure
//! step turns that typed value into a requested-vs-allocated report; THP files show `always [madvise] never` and are compared by
//! the bracketed word; pools are checked against the OS reserve the audit uses
//! (`policy::os_reserve_kb`, `node_reserve_kb`) before anything is written.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::engine::state::{Action, selection};
use crate::engine::{self, Module, text};
use crate::facts::memory::{parse_meminfo, parse_swaps};
use crate::facts::numa::{parse_hugepage_dir, parse_node_meminfo};
use crate::host::Host;
use crate::modules::cpu::opt_bool;
use crate::policy::{OS_RESERVE_PERCENT, node_reserve_kb, os_reserve_kb};
use crate::protocol::{Diff, Failure, Meta, Outcome, cap_text, lenient_bool};

pub const MODULE: &str = crate::names::MEMORY;
const THP: &str = "/sys/kernel/mm/transparent_hugepage";
const NODE: &str = "/sys/devices/system/node";
const KSM_RUN: &str = "/sys/kernel/mm/ksm/run";
const NUMA_BALANCING: &str = "/proc/sys/kernel/numa_balancing";
pub const FSTAB: &str = "/etc/fstab";
/// The prefix of an fstab line lltune commented out.
pub const MARK: &str = "# lltune: ";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thp: Option<Thp>,
    /// size in kB → NUMA node → pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugepages: Option<BTreeMap<String, BTreeMap<String, u64>>>,
    #[serde(default, deserialize_with = "opt_bool", skip_serializing_if = "Option::is_none")]
    pub ksm: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool", skip_serializing_if = "Option::is_none")]
    pub swap: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool", skip_serializing_if = "Option::is_none")]
    pub numa_balancing: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub persist: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defrag: Option<String>,
}

/// One pool of one node, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    pub size_kb: u64,
    pub node: u32,
    pub before: u64,
    pub requested: u64,
    /// Read back after the run; `None` in check mode.
    pub allocated: Option<u64>,
}

fn fail(msg: impl Into<String>) -> anyhow::Error {
    Failure::new(msg).into()
}

fn pool_path(node: u32, size_kb: u64) -> String {
    format!("{NODE}/node{node}/hugepages/hugepages-{size_kb}kB/nr_hugepages")
}

/// Collects run-time writes with their before/after lines.
#[derive(Default)]
struct Runtime {
    actions: Vec<Action>,
    before: String,
    after: String,
    changes: Vec<Value>,
}

impl Runtime {
    fn set(&mut self, setting: &str, path: &str, before: &str, after: &str) {
        self.before.push_str(&format!("{setting}: {before}\n"));
        self.after.push_str(&format!("{setting}: {after}\n"));
        self.changes.push(json!({"setting": setting, "before": before, "after": after}));
        self.actions.push(Action::WriteKernel { path: path.into(), value: after.into() });
    }
}

/// A 0/1 switch file: `on` wanted. A missing file is fine when `off` is wanted.
fn switch(host: &Host, rt: &mut Runtime, w: &mut Vec<String>, option: &str, path: &str, on: bool) -> Result<()> {
    let Some(now) = host.attr(path) else {
        if on {
            return Err(fail(format!("{option}: this kernel has no {path}")));
        }
        w.push(format!("{option}: this kernel has no {path}; it is off already"));
        return Ok(());
    };
    // KSM's run 2 (stop and unmerge) and numa_balancing 2 (tiering) count as what they are.
    let is_on = now == "1" || (option == "numa_balancing" && now != "0");
    if is_on != on {
        rt.set(option, path, &now, if on { "1" } else { "0" });
    }
    Ok(())
}

fn thp(host: &Host, rt: &mut Runtime, t: &Thp) -> Result<()> {
    for (name, want) in [("enabled", &t.enabled), ("defrag", &t.defrag)] {
        let Some(want) = want else { continue };
        let option = format!("thp.{name}");
        let path = format!("{THP}/{name}");
        let text = host.attr(&path).ok_or_else(|| fail(format!("{option}: this kernel has no {path}")))?;
        // A file lltune wrote in a captured tree holds the bare word; the kernel's lists them all.
        let offered: Vec<String> =
            text.split_whitespace().map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string()).collect();
        if text.contains('[') && !offered.contains(want) {
            return Err(fail(format!("{option}: {:?} is not offered ({text})", cap_text(want))));
        }
        let now = selection(&text).unwrap_or_default();
        if now != *want {
            rt.set(&format!("thp {name}"), &path, &now, want);
        }
    }
    Ok(())
}

/// Huge page pools: validated, checked against the OS reserve, decreases written first.
fn hugepages(host: &Host, rt: &mut Runtime, req: &BTreeMap<String, BTreeMap<String, u64>>) -> Result<Vec<Pool>> {
    let offered: Vec<u64> =
        host.list_or_empty("/sys/kernel/mm/hugepages").iter().filter_map(|d| parse_hugepage_dir(d)).collect();
    let mut pools = Vec::new();
    for (size_key, nodes) in req {
        let size: u64 = size_key
            .parse()
            .map_err(|_| fail(format!("option hugepages: {:?} is not a page size in kB", cap_text(size_key))))?;
        if !offered.contains(&size) {
            let list: Vec<String> = offered.iter().map(u64::to_string).collect();
            return Err(fail(format!(
                "hugepages.{size}: this host offers no {size} kB pages (sizes: {})",
                list.join(", ")
            )));
        }
        for (node_key, &pages) in nodes {
            let node: u32 = node_key.parse().map_err(|_| {
                fail(format!("option hugepages.{size}: {:?} is not a NUMA node number", cap_text(node_key)))
            })?;
            let path = pool_path(node, size);
            let before = host
                .attr_parse::<u64>(&path)
                .ok_or_else(|| fail(format!("hugepages.{size}.{node}: this host has no NUMA node {node} ({path})")))?;
            pools.push(Pool { size_kb: size, node, before, requested: pages, allocated: None });
        }
    }
    reserve_check(host, &pools)?;
    // Give memory back before taking more.
    let mut order: Vec<&Pool> = pools.iter().filter(|p| p.requested != p.before).collect();
    crate::sort::sort_by_key(&mut order, |p| (p.requested > p.before, p.node, p.size_kb));
    for p in order {
        let setting = format!("hugepages {} kB node {}", p.size_kb, p.node);
        rt.set(&setting, &pool_path(p.node, p.size_kb), &p.before.to_string(), &p.requested.to_string());
    }
    Ok(pools)
}

fn meminfo_total(host: &Host, path: &str, node: bool) -> Result<u64> {
    let text = host.read(path).map_err(|e| fail(format!("hugepages: cannot check the OS reserve: {e}")))?;
    let m = if node { parse_node_meminfo(&text) } else { parse_meminfo(&text) };
    m.get("MemTotal")
        .copied()
        .ok_or_else(|| fail(format!("hugepages: cannot check the OS reserve: no MemTotal in {path}")))
}

/// Every pool after the run (requested, or as it is) must leave the OS its reserve, host-wide
/// and on each node asked for: the rule `lltune audit` applies to a config.
fn reserve_check(host: &Host, pools: &[Pool]) -> Result<()> {
    let mut nodes: Vec<u32> =
        host.list_or_empty(NODE).iter().filter_map(|d| d.strip_prefix("node").and_then(|n| n.parse().ok())).collect();
    crate::sort::sort_by(&mut nodes, Ord::cmp);
    let after = |node: u32| -> u64 {
        let dir = format!("{NODE}/node{node}/hugepages");
        host.list_or_empty(&dir)
            .iter()
            .filter_map(|d| parse_hugepage_dir(d))
            .map(|size| {
                let pages = pools
                    .iter()
                    .find(|p| p.node == node && p.size_kb == size)
                    .map(|p| p.requested)
                    .unwrap_or_else(|| host.attr_parse(&pool_path(node, size)).unwrap_or(0));
                pages.saturating_mul(size)
            })
            .fold(0u64, u64::saturating_add)
    };
    let mem = meminfo_total(host, "/proc/meminfo", false)?;
    let total: u64 = nodes.iter().map(|n| after(*n)).fold(0, u64::saturating_add);
    let reserve = os_reserve_kb(mem);
    if total > mem.saturating_sub(reserve) {
        return Err(fail(format!(
            "hugepages: {total} kB of huge pages in all; the host has {mem} kB and must keep at least {reserve} kB (the larger of {OS_RESERVE_PERCENT}% and 2 GiB) for the OS, so at most {} kB",
            mem.saturating_sub(reserve)
        )));
    }
    let mut asked: Vec<u32> = pools.iter().map(|p| p.node).collect();
    asked.dedup();
    for node in asked {
        let node_mem = meminfo_total(host, &format!("{NODE}/node{node}/meminfo"), true)?;
        let kb = after(node);
        let limit = node_mem.saturating_sub(node_reserve_kb(node_mem));
        if kb > limit {
            return Err(fail(format!(
                "hugepages: {kb} kB of huge pages on node {node}; the node has {node_mem} kB and must keep {OS_RESERVE_PERCENT}% for the OS, so at most {limit} kB"
            )));
        }
    }
    Ok(())
}

/// Comments out (`swap: false`) or restores (`true`) the swap lines of fstab. Every other
/// byte stays as it was (`engine::text`): a line is recognised by its fields as
/// `engine::text::view` reads them, and changed only by adding or removing `MARK`.
pub fn edit_fstab(bytes: &[u8], on: bool) -> Vec<u8> {
    let is_swap = |l: &[u8]| {
        let v = text::view(l);
        let f: Vec<&str> = v.split_whitespace().collect();
        f.len() >= 3 && !f[0].starts_with('#') && f[2] == "swap"
    };
    let mut out = Vec::with_capacity(bytes.len() + 64);
    for l in text::lines(bytes) {
        match l.strip_prefix(MARK.as_bytes()) {
            Some(rest) if on && is_swap(rest) => out.extend_from_slice(rest),
            None if !on && is_swap(l) => {
                out.extend_from_slice(MARK.as_bytes());
                out.extend_from_slice(l);
            }
            _ => out.extend_from_slice(l),
        }
    }
    out
}

fn swap(host: &Host, out: &mut engine::Plan, rt: &mut Runtime, on: bool) -> Result<Option<Action>> {
    let mut run = None;
    match host.read_bytes_opt(FSTAB).map_err(|e| fail(format!("swap: {e}")))? {
        Some(old) => {
            let new = edit_fstab(&old, on);
            if new != old {
                out.diff.push(text::diff(FSTAB, FSTAB, &old, &new));
                out.actions.push(Action::WriteFile { path: FSTAB.into(), contents: new });
            }
        }
        None => out.warnings.push(format!("swap: there is no {FSTAB}")),
    }
    let active = parse_swaps(&host.read_opt("/proc/swaps").ok().flatten().unwrap_or_default());
    let names: Vec<String> = active.iter().map(|s| s.filename.clone()).collect();
    let swapoff = if on || active.is_empty() {
        "not needed"
    } else {
        match host.system().plan_command(vec!["swapoff".into(), "-a".into()]) {
            Ok(argv) => {
                rt.before.push_str(&format!("swap: on ({})\n", names.join(", ")));
                rt.after.push_str("swap: off (swapoff -a)\n");
                rt.changes.push(json!({"setting": "swap", "before": names.join(", "), "after": "off (swapoff -a)"}));
                run = Some(Action::Run { argv, rewrites: vec![] });
                "run"
            }
            Err(why) => {
                out.warnings.push(format!(
                    "swap: {} active on the host this tree describes; swapoff -a skipped ({why})",
                    names.join(", ")
                ));
                "skipped (root is not /)"
            }
        }
    };
    out.field("swapoff", swapoff);
    if on {
        if !active.is_empty() || out.actions.iter().any(|a| matches!(a, Action::WriteFile { .. })) {
            out.warnings.push("swap: fstab lines restored; swap comes back at the next boot (or swapon -a)".into());
        }
        return Ok(run);
    }
    // systemd swap units and zram are not fstab lines: name them.
    let mut units = Vec::new();
    for dir in ["/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"] {
        for name in host.list_or_empty(dir) {
            let path = format!("{dir}/{name}");
            if name.ends_with(".swap") && host.read_link(&path).as_deref() != Some("/dev/null") {
                units.push(path);
            } else if name.ends_with(".wants") {
                units.extend(
                    host.list_or_empty(&path)
                        .into_iter()
                        .filter(|u| u.ends_with(".swap"))
                        .map(|u| format!("{path}/{u}")),
                );
            }
        }
    }
    for z in ["/etc/systemd/zram-generator.conf", "/usr/lib/systemd/zram-generator.conf"] {
        if host.exists(z) {
            units.push(z.to_string());
        }
    }
    if !units.is_empty() {
        out.warnings.push(format!(
            "swap: systemd can still turn swap on at boot from {}; mask or remove them (lltune_services)",
            units.join(", ")
        ));
    }
    Ok(run)
}

/// What the task would change. Reads the host, writes nothing.
pub fn plan(host: &Host, p: &Params) -> Result<engine::Plan> {
    if p.thp.is_none() && p.hugepages.is_none() && p.ksm.is_none() && p.swap.is_none() && p.numa_balancing.is_none() {
        return Err(fail("give at least one of thp, hugepages, ksm, swap, numa_balancing"));
    }
    let mut out = engine::Plan::default();
    let mut rt = Runtime::default();
    if let Some(t) = &p.thp {
        thp(host, &mut rt, t)?;
    }
    if let Some(on) = p.ksm {
        switch(host, &mut rt, &mut out.warnings, "ksm", KSM_RUN, on)?;
    }
    if let Some(on) = p.numa_balancing {
        switch(host, &mut rt, &mut out.warnings, "numa_balancing", NUMA_BALANCING, on)?;
    }
    let pools = match &p.hugepages {
        Some(req) => hugepages(host, &mut rt, req)?,
        None => Vec::new(),
    };
    out.field("hugepages", &pools);
    out.actions = std::mem::take(&mut rt.actions);
    // swapoff last: it cannot be undone by a revert.
    let run = match p.swap {
        Some(on) => swap(host, &mut out, &mut rt, on)?,
        None => None,
    };
    if !rt.before.is_empty() {
        out.diff.insert(
            0,
            Diff {
                before_header: "runtime".into(),
                after_header: "runtime".into(),
                before: rt.before,
                after: rt.after,
            },
        );
    }
    out.actions.extend(run);
    out.field("changes", &rt.changes);
    report_pools(host, &mut out, &pools);
    Ok(out)
}

/// The pools' two reports: after the writes, each pool read back into `allocated`; when the
/// kernel kept fewer pages than written (the engine's typed `NotKept` on a pool's file),
/// `hugepages_short` and a message that says requested vs allocated.
fn report_pools(host: &Host, out: &mut engine::Plan, pools: &[Pool]) {
    if pools.is_empty() {
        return;
    }
    // The engine names the file it wrote by its canonical path.
    let files: Vec<(String, Pool)> = pools
        .iter()
        .map(|p| {
            let path = pool_path(p.node, p.size_kb);
            (host.resolve(&path, true).unwrap_or(path), p.clone())
        })
        .collect();
    out.on_failure(move |why, f| {
        let engine::WriteFailure::NotKept(k) = why else { return };
        let Some((_, p)) = files.iter().find(|(path, _)| *path == k.path) else { return };
        let allocated: Option<u64> = k.kept.trim().parse().ok();
        f.fields.insert(
            "hugepages_short".into(),
            json!({"node": p.node, "size_kb": p.size_kb, "requested": p.requested, "allocated": allocated}),
        );
        let got = allocated.map_or_else(|| format!("{:?}", cap_text(&k.kept)), |a| a.to_string());
        f.msg = format!(
            "hugepages: node {} allocated {got} of the {} {} kB pages requested (memory fragmented or in use); {}",
            p.node, p.requested, p.size_kb, f.msg
        );
    });
    let mut read_back = pools.to_vec();
    out.after_apply(move |host, plan, ran| {
        if ran == engine::Ran::Check {
            return;
        }
        for p in &mut read_back {
            p.allocated = host.attr_parse::<u64>(&pool_path(p.node, p.size_kb));
        }
        plan.field("hugepages", &read_back);
    });
}

/// The module, as the engine's runner sees it.
pub struct Memory;

impl Module for Memory {
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
    engine::run::<Memory>(host, meta, params)
}
