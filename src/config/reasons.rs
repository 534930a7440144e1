//! Why each module argument is there: the config key path that asked for it, and the finding
//! behind it when the config carries one (gen-config embeds the host's findings under
//! `recommendations`). `lltune_audit` returns them as `reasons` beside `module_args`; the tune
//! role and `lltune apply` pass each module its own, and the engine shows them before the
//! module's diff (`engine::why_diff`), so a reviewer reads "nohz_full: kernel.cmdline.nohz_full;
//! finding kernel.nohz_full (warning): unset → 5-10" above the change itself.
//!
//! Keys are the names a diff shows: a sysctl's or kernel argument's own name, a service's
//! name, a limit's item, an interface's name; otherwise the module option.

use serde_json::{Map, Value};
use serde_yaml::Value as Yaml;

use super::Config;
use super::to_args::ModuleArgs;
use crate::names::{BYPASS, CPU, IRQ, KERNEL_ARGS, LIMITS, MEMORY, NIC, SERVICES, SYSCTL, THREADS, TIMESYNC};

/// Options that are about the run, not a change.
const RUN: &[&str] = &["persist", "backup_id", "allow_dangerous_mitigations"];

/// Module → {key → reason}, for every module in `args`.
pub fn of(cfg: &Config, args: &ModuleArgs) -> Map<String, Value> {
    let findings = findings(cfg);
    let mut out = Map::new();
    for (module, options) in &args.modules {
        let Some(options) = options.as_object() else { continue };
        let mut r: Vec<(String, String)> = Vec::new();
        for (opt, v) in options.iter().filter(|(k, _)| !RUN.contains(&k.as_str())) {
            match (module.as_str(), opt.as_str()) {
                (SYSCTL, "settings") => {
                    for k in v.as_object().into_iter().flat_map(|m| m.keys()) {
                        let path = args.sysctl_paths.get(k).and_then(Value::as_str).unwrap_or(k);
                        r.push((k.clone(), path.to_string()));
                    }
                }
                (KERNEL_ARGS, "args") => {
                    let in_cmdline = |k: &str| {
                        cfg.kernel.as_ref().and_then(|s| s.cmdline.as_ref()).is_some_and(|c| c.get(k).is_some())
                    };
                    for k in v.as_object().into_iter().flat_map(|m| m.keys()) {
                        let list = if in_cmdline(k) { "cmdline" } else { "extra_args" };
                        r.push((k.clone(), format!("kernel.{list}.{k}")));
                    }
                }
                (SERVICES, "services") => {
                    for k in v.as_object().into_iter().flat_map(|m| m.keys()) {
                        r.push((k.clone(), format!("services.{k}")));
                    }
                }
                (LIMITS, "limits") => {
                    for item in v.as_array().into_iter().flatten().filter_map(|l| l.get("item")?.as_str()) {
                        let path = if item == "memlock" {
                            "memory.mlock".to_string()
                        } else {
                            format!("memory.limits.{item}")
                        };
                        r.push((item.to_string(), path));
                    }
                }
                (NIC, "interfaces") => {
                    for (i, e) in v.as_array().into_iter().flatten().enumerate() {
                        // `{all: true}`: the queues of every NIC, from irq.disable_rps/rfs alone.
                        let (name, mut path) = match e.get("name").and_then(Value::as_str) {
                            Some(name) => (name, format!("network.interfaces[{i}] ({name})")),
                            None => ("all", "every NIC (no network.interfaces)".to_string()),
                        };
                        let irq = cfg.irq.as_ref();
                        for (on, key) in [
                            (irq.is_some_and(|q| q.disable_rps == Some(true)), "irq.disable_rps"),
                            (irq.is_some_and(|q| q.disable_rfs == Some(true)), "irq.disable_rfs"),
                        ] {
                            if on {
                                path.push_str(&format!(", {key}"));
                            }
                        }
                        r.push((name.to_string(), path));
                    }
                }
                (BYPASS, "profiles") => {
                    for stack in v.as_object().into_iter().flat_map(|m| m.keys()) {
                        r.push((stack.clone(), format!("{stack}.tuning_level")));
                    }
                }
                (IRQ, "rules") => {
                    for i in 0..v.as_array().map_or(0, Vec::len) {
                        r.push((format!("rules[{i}]"), format!("irq.manual_affinity[{i}]")));
                    }
                }
                (module, opt) => r.push((opt.to_string(), option_path(module, opt))),
            }
        }
        let reasons: Map<String, Value> = r
            .into_iter()
            .map(|(key, path)| {
                let mut text = path.clone();
                for f in findings.iter().filter(|f| f.concerns(&key, &path)) {
                    text.push_str(&format!("; finding {} ({}): {} → {}", f.id, f.severity, f.current, f.target));
                }
                // One line: what a host reported (a finding's current value) may hold anything.
                let key: String = key.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
                let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
                (key, Value::String(crate::echo::cap_text(&text)))
            })
            .collect();
        if !reasons.is_empty() {
            out.insert(module.clone(), Value::Object(reasons));
        }
    }
    out
}

/// The config key of a module option that maps one to one (or by default `<section>.<option>`).
fn option_path(module: &str, opt: &str) -> String {
    if module == TIMESYNC {
        let ptp = matches!(opt, "interface" | "domain" | "transport" | "delay_mechanism" | "phc2sys");
        return format!("time_sync.{}{opt}", if ptp { "ptp." } else { "" });
    }
    let known = match (module, opt) {
        (CPU, "cstates") => "cpu.cstate_limit",
        (CPU, "workqueue_cpumask" | "systemd_cpu_affinity") => {
            "cpu.isolate_cores (housekeeping CPUs: kernel.cmdline.kthread_cpus, else irqaffinity)"
        }
        (MEMORY, "thp") => "memory.thp_runtime",
        (MEMORY, "swap") => "memory.swap_disable",
        (IRQ, "irqbalance_banned_cpus") => "irq.avoid_cores_for_irqs",
        (THREADS, "isolated_cpus") => "cpu.isolate_cores",
        (THREADS, "housekeeping_cpus") => "threads.housekeeping_cores",
        (SERVICES, "tuned_profile") => "services.tuned",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    let section = module.strip_prefix("lltune_").unwrap_or(module);
    format!("{section}.{opt}")
}

/// One finding the config embeds.
struct Finding {
    id: String,
    item: String,
    severity: String,
    current: String,
    target: String,
}

impl Finding {
    /// Whether this finding is about the option `key` that config path `path` set: the same
    /// name (`cpu.governor`), the setting's own name (`vm.swappiness`, `nohz_full`), or a part
    /// of it (`isolcpus.domain` of `isolcpus`).
    fn concerns(&self, key: &str, path: &str) -> bool {
        let last = path.split([' ', '[']).next().unwrap_or(path).rsplit('.').next().unwrap_or(path);
        self.id == path
            || self.item == key
            || self.item == last
            || self.item.strip_prefix(key).is_some_and(|r| r.starts_with('.'))
    }
}

fn findings(cfg: &Config) -> Vec<Finding> {
    let text = |r: &Yaml, k: &str| match r.get(k) {
        Some(Yaml::String(s)) => s.clone(),
        Some(Yaml::Number(n)) => n.to_string(),
        Some(Yaml::Bool(b)) => b.to_string(),
        _ => String::new(),
    };
    cfg.recommendations
        .iter()
        .filter_map(|r| {
            let (category, item) = (text(r, "category"), text(r, "item"));
            (!category.is_empty() && !item.is_empty()).then(|| Finding {
                id: format!("{category}.{item}"),
                item,
                severity: text(r, "severity"),
                current: text(r, "current"),
                target: text(r, "target"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(text: &str) -> Map<String, Value> {
        let args = crate::config::to_args::from_text(text).unwrap();
        args.reasons.clone()
    }

    #[test]
    fn each_argument_names_its_key_and_finding() {
        let r = reasons(
            "version: 1\n\
             cpu:\n  governor:\n    target: \"performance\"\n\
             kernel:\n  cmdline:\n    nohz_full: \"2-3\"\n    isolcpus: \"managed_irq,domain,2-3\"\n\
             memory:\n  swappiness: 0\n  thp_runtime: \"never\"\n\
             safety:\n  allow_grub_edit: true\n\
             recommendations:\n\
             - category: \"kernel\"\n  item: \"nohz_full\"\n  current: \"unset\"\n  target: \"2-3\"\n  severity: \"warning\"\n\
             - category: \"kernel\"\n  item: \"isolcpus.domain\"\n  current: \"managed_irq\"\n  target: \"managed_irq,domain,2-3\"\n  severity: \"info\"\n\
             - category: \"cpu\"\n  item: \"governor\"\n  current: \"powersave\"\n  target: \"performance\"\n  severity: \"warning\"\n",
        );
        let get = |m: &str, k: &str| r[m][k].as_str().unwrap().to_string();
        assert_eq!(
            get(KERNEL_ARGS, "nohz_full"),
            "kernel.cmdline.nohz_full; finding kernel.nohz_full (warning): unset → 2-3"
        );
        assert!(get(KERNEL_ARGS, "isolcpus").contains("finding kernel.isolcpus.domain (info)"));
        assert_eq!(get(CPU, "governor"), "cpu.governor; finding cpu.governor (warning): powersave → performance");
        assert_eq!(get(SYSCTL, "vm.swappiness"), "memory.swappiness");
        assert_eq!(get(MEMORY, "thp"), "memory.thp_runtime");
        // Run options carry no reason.
        assert!(r[CPU].get("persist").is_none() && r[KERNEL_ARGS].get("allow_dangerous_mitigations").is_none());
        // What a host reported stays on one line (the modules refuse a reason with a newline).
        let r = reasons(
            "version: 1\ncpu:\n  governor:\n    target: \"performance\"\nrecommendations:\n\
             - category: \"cpu\"\n  item: \"governor\"\n  current: \"a\\nb\\tc\"\n  target: \"performance\"\n  severity: \"info\"\n",
        );
        assert_eq!(r[CPU]["governor"], "cpu.governor; finding cpu.governor (info): a b c → performance");
        // RPS off on every NIC, with no interface listed.
        let r = reasons("version: 1\nirq:\n  disable_rps: true\n  disable_rfs: true\n");
        assert_eq!(r[NIC]["all"], "every NIC (no network.interfaces), irq.disable_rps, irq.disable_rfs");
    }

    #[test]
    fn a_finding_of_another_setting_is_not_borrowed() {
        let f = Finding {
            id: "kernel.nohz".into(),
            item: "nohz".into(),
            severity: "info".into(),
            current: "".into(),
            target: "".into(),
        };
        assert!(!f.concerns("nohz_full", "kernel.cmdline.nohz_full"));
        assert!(f.concerns("nohz", "kernel.cmdline.nohz"));
    }
}
