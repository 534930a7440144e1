//! lltune: low-latency tuning of Linux trading servers, as Ansible binary modules and a CLI.
//!
//! Layers, bottom up (a module imports only from its own layer or below):
//! host, sys, cpulist, policy, markdown, echo, backup_id, names, trail → facts, protocol → analysis, engine, latency → config → modules → cli → bin.

pub mod analysis; //  recommendations from facts, and the core plan gen-config proposes
pub mod backup_id; //  backup ids and the UTC stamp they start with: one clock format for engine, config and CLI
pub mod cli; //       `lltune` subcommands, one file each, clap in cli/mod.rs
pub mod config; //    the config file (version 1): strict reader, audit, gen-config, config → module arguments
pub mod cpulist; //   CPU lists and masks in the kernel's text forms
pub mod echo; //      outside text and JSON values as messages show them (capped, named by kind)
pub mod engine; //    the one write path: runner, journal, lock, state kinds
pub mod facts; //     discovery of one host, subsystem by subsystem
pub mod fleet; //     the fleet report: many hosts' facts (controller files) → fleet.json/.csv/.md, lltune.prom
pub mod host; //      the target host under a `root` prefix, contained: the only user of std::fs for targets
pub mod latency; //   cyclictest runs, their histograms and percentiles, before/after reports
pub mod markdown; //   host text inside the Markdown lltune writes, escaped: no HTML, links or extra table cells
pub mod modules; //   one file per Ansible module: Params and a plan() that reads the host, never writes
pub mod names; //     the modules' names and the order they run in: one home for each
pub mod policy; //    what is never written and what needs consent: boot-breaking and mitigation-weakening arguments
pub mod protocol; //  Ansible's binary-module protocol: args in, one JSON object out
pub mod sort; //      stable sorts with one copy of std's sort per binary (module binaries are copied per task)
pub mod sys; //       system interfaces that are not files: the SIOCETHTOOL ioctl
#[cfg(test)]
mod test_rng;
pub mod trail; //     the audit trail's sink: what a run changed, to the host's syslog (and stderr for lltune -v) //    a deterministic generator for the generated unit tests
