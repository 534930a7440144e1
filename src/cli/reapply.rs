//! `lltune reapply [--root DIR]`: what `lltune-restore.service` runs at boot. Every state
//! file under /etc/lltune/state.d (written by a module run with `persist: true`) is applied
//! again through its module, NIC before IRQ, as the steps of one engine transaction (one
//! lock, one backup bundle `reapply-<time>`). A state
//! file that fails (a NIC that is gone, say) is reported and the others still run; the exit
//! code is 1 when any failed, so `systemctl status` shows it.
//!
//! `--root TREE` simulates a boot on a captured tree: a test can show that the state after
//! "reboot" equals the state after the apply.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::engine::{Transaction, persist};
use crate::protocol::Meta;

#[derive(Debug, clap::Args)]
pub struct ReapplyArgs {
    /// Host root: `/` for this host (as at boot), or a tree to simulate a boot on.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
}

pub fn run(a: ReapplyArgs) -> Result<ExitCode> {
    let host = crate::host::Host::new(&a.root).map_err(|e| anyhow::anyhow!("--root: {e}"))?;
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
            Some(Err(e)) => {
                failed += 1;
                println!("{}: failed: {e:#}", s.module);
            }
            Some(Ok(o)) => {
                println!("{}: {}", s.module, if o.changed { "re-applied" } else { "already in place" });
                for w in &o.warnings {
                    println!("  warning: {w}");
                }
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
