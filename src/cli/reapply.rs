//! `lltune reapply [--root DIR]`: what `lltune-restore.service` runs at boot. Every state
//! file under /etc/lltune/state.d (written by a module run with `persist: true`) is applied
//! again through its module, NIC before IRQ, as the steps of one engine transaction (one
//! lock, one backup bundle `reapply-<time>`). A state
//! file that fails (a NIC that is gone, say) is reported and the others still run; the exit
//! code is 1 when any failed, so `systemctl status` shows it.
//!
//! `--root TREE` simulates a boot on a captured tree: a test can show that the state after
//! "reboot" equals the state after the apply.
//!
//! `--interface NAME`: what `lltune-reapply@NAME.service` runs when a netdev appears (the
//! udev rule persistence installs, `engine::persist`): only that interface's entries of the
//! lltune_nic state and the lltune_irq rules that take its IRQs, NIC first (changing
//! channels re-creates the queues' IRQs, so the IRQ rules are narrowed after it). Nothing
//! persisted for it: exit 0, saying so.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use serde_json::{Map, Value};

use crate::engine::{Transaction, persist};
use crate::modules::{irq, nic};
use crate::names;
use crate::protocol::Meta;

#[derive(Debug, clap::Args)]
pub struct ReapplyArgs {
    /// Host root: `/` for this host (as at boot), or a tree to simulate a boot on.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Only this network interface: its NIC settings and the IRQ rules that take its IRQs
    /// (what the udev rule's unit runs when the interface appears).
    #[arg(long, value_name = "NAME")]
    pub interface: Option<OsString>,
}

/// Whether `name` is a netdev name the kernel accepts (`dev_valid_name`): 1 to 15 bytes, not
/// `.` or `..`, no `/`, `:` or white space (the kernel's `isspace`: tab, newline, vertical
/// tab, form feed, carriage return, space and 0xa0).
pub fn valid_kernel_ifname(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != b"."
        && name != b".."
        && !name.iter().any(|&b| matches!(b, b'/' | b':' | b' ' | 0x09..=0x0d | 0xa0 | 0))
}

pub fn run(a: ReapplyArgs) -> Result<ExitCode> {
    if let Some(name) = &a.interface {
        use std::os::unix::ffi::OsStrExt;
        let bytes = name.as_bytes();
        if !valid_kernel_ifname(bytes) {
            let shown: String = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).escape_debug().collect();
            anyhow::bail!(
                "--interface \"{shown}\"{}: not a network interface name (1 to 15 bytes, not \".\" or \"..\", no '/', ':' or white space)",
                if bytes.len() > 64 { "..." } else { "" }
            );
        }
    }
    let host = crate::host::Host::new(&a.root).map_err(|e| anyhow::anyhow!("--root: {e}"))?;
    if let Some(name) = &a.interface {
        // Valid names are at most 15 bytes; not UTF-8 ones cannot be in a state file.
        let Ok(name) = name.clone().into_string() else {
            println!("lltune reapply: nothing persisted for this interface (its name is not UTF-8)");
            return Ok(ExitCode::SUCCESS);
        };
        return one_interface(&host, &name);
    }
    let id = format!("reapply-{}", crate::backup_id::new_id());
    // One transaction: one lock over every state file's step, one bundle. A failed step has
    // put back its own writes; the others still run (at boot, a NIC that is gone must not
    // undo the CPU settings), so no abort.
    let mut tx = Transaction::begin(&host, &Meta::default(), Some(&id))?;
    let mut failed = 0;
    let saved = persist::load_all(&host);
    if saved.is_empty() {
        println!("lltune reapply: nothing to re-apply ({} is empty)", persist::STATE_DIR);
        return Ok(ExitCode::SUCCESS);
    }
    for s in saved {
        let s = match s {
            Ok(s) => s,
            Err(e) => {
                failed += 1;
                println!("error: {e}");
                continue;
            }
        };
        match crate::modules::run_step(&mut tx, &s.module, s.params.clone()) {
            None => {
                failed += 1;
                println!("error: {}: no module {} in this lltune", s.path, s.module);
            }
            Some(r) => failed += usize::from(report(&s.module, r)),
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The saved options of `module`, or the error that names its state file.
fn saved_of(all: &[Result<persist::Saved, String>], module: &str) -> Option<Result<Map<String, Value>, String>> {
    let path = format!("{}/{module}.json", persist::STATE_DIR);
    all.iter().find_map(|s| match s {
        Ok(s) if s.module == module => Some(Ok(s.params.clone())),
        Err(e) if e.starts_with(&format!("{path}:")) => Some(Err(e.clone())),
        _ => None,
    })
}

/// A module's saved options, typed; `None` (counted in `failed`, said) when they are not.
fn parse<P: serde::de::DeserializeOwned>(
    module: &str,
    saved: Option<Result<Map<String, Value>, String>>,
    failed: &mut usize,
) -> Option<P> {
    match saved {
        None => None,
        Some(Err(e)) => {
            *failed += 1;
            println!("error: {e}");
            None
        }
        Some(Ok(p)) => match crate::protocol::parse_params(p) {
            Ok(p) => Some(p),
            Err(e) => {
                *failed += 1;
                println!("{module}: failed: {e:#}");
                None
            }
        },
    }
}

/// Prints a step's outcome as `reapply` does; true when it failed.
fn report(module: &str, r: Result<crate::protocol::Outcome>) -> bool {
    match r {
        Err(e) => {
            println!("{module}: failed: {e:#}");
            true
        }
        Ok(o) => {
            println!("{module}: {}", if o.changed { "re-applied" } else { "already in place" });
            for w in &o.warnings {
                println!("  warning: {w}");
            }
            false
        }
    }
}

/// `lltune reapply --interface NAME`.
fn one_interface(host: &crate::host::Host, ifname: &str) -> Result<ExitCode> {
    // A valid name may hold control characters other than white space: shown escaped.
    let shown: String = ifname.escape_debug().collect();
    let all = persist::load_all(host);
    let nic_saved = saved_of(&all, names::NIC);
    let irq_saved = saved_of(&all, names::IRQ);
    let mut failed = 0;
    let nic_params: Option<nic::Params> = parse(names::NIC, nic_saved, &mut failed);
    let irq_params: Option<irq::Params> = parse(names::IRQ, irq_saved, &mut failed);
    let specs = nic_params.map(|p| nic::specs_for_interface(host, &p.interfaces, ifname)).unwrap_or_default();
    let rules = irq_params.as_ref().and_then(|p| p.rules.as_deref()).unwrap_or(&[]);
    // Whether any IRQ rule can concern it, before the NIC step: the rules are narrowed to its
    // IRQs after it.
    let irq_candidates = !rules.is_empty();
    if specs.is_empty() && !irq_candidates {
        println!(
            "lltune reapply: nothing persisted for interface {shown} (no {} or {} state in {} names it)",
            names::NIC,
            names::IRQ,
            persist::STATE_DIR
        );
        return Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    let id = format!("reapply-{}", crate::backup_id::new_id());
    let mut tx = Transaction::begin(host, &Meta::default(), Some(&id))?;
    let mut did = false;
    if !specs.is_empty() {
        did = true;
        let p = nic::Params { interfaces: specs, backup_id: None, persist: false };
        failed += usize::from(report(names::NIC, tx.run::<nic::NicModule>(p)));
    }
    if irq_candidates {
        match irq::rules_for_interface(host, rules, ifname) {
            Err(e) => {
                failed += 1;
                println!("{}: failed: {e:#}", names::IRQ);
            }
            Ok(mine) if mine.is_empty() => {}
            Ok(mine) => {
                did = true;
                let p = irq::Params {
                    rules: Some(mine),
                    default_affinity: None,
                    irqbalance_banned_cpus: None,
                    backup_id: None,
                    persist: false,
                };
                failed += usize::from(report(names::IRQ, tx.run::<irq::Irq>(p)));
            }
        }
    }
    if !did && failed == 0 {
        println!(
            "lltune reapply: nothing persisted for interface {shown} (no {} or {} state in {} names it)",
            names::NIC,
            names::IRQ,
            persist::STATE_DIR
        );
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
