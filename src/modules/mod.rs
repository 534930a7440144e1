//! One file per Ansible module; each exposes `Params` and `run(&Host, &Meta, Params)`.

pub mod audit;
pub mod boot;
pub mod config;
pub mod cpu;
pub mod facts;
pub mod health;
pub mod irq;
pub mod kernel_args;
pub mod latency;
pub mod limits;
pub mod memory;
pub mod nic;
pub mod report;
pub mod rollback;
pub mod services;
pub mod sysctl;

use anyhow::Result;
use serde_json::{Map, Value};

use crate::host::Host;
use crate::protocol::{Meta, Outcome, parse_params};

/// Runs a changing module by its name with options as JSON (what `lltune reapply` and
/// `lltune apply` do); `None` for a name that is not a changing module.
pub fn run_by_name(name: &str, host: &Host, meta: &Meta, options: Map<String, Value>) -> Option<Result<Outcome>> {
    Some(match name {
        sysctl::MODULE => parse_params(options).and_then(|p| sysctl::run(host, meta, p)),
        kernel_args::MODULE => parse_params(options).and_then(|p| kernel_args::run(host, meta, p)),
        nic::MODULE => parse_params(options).and_then(|p| nic::run(host, meta, p)),
        irq::MODULE => parse_params(options).and_then(|p| irq::run(host, meta, p)),
        limits::MODULE => parse_params(options).and_then(|p| limits::run(host, meta, p)),
        services::MODULE => parse_params(options).and_then(|p| services::run(host, meta, p)),
        cpu::MODULE => parse_params(options).and_then(|p| cpu::run(host, meta, p)),
        memory::MODULE => parse_params(options).and_then(|p| memory::run(host, meta, p)),
        _ => return None,
    })
}
