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

/// Plans a changing module by its name with options as JSON, as its run would before any
/// write (parse the options, then `plan`: reads the host, writes nothing, takes no lock).
/// What `lltune audit` runs so that a config it accepts is one apply can carry out.
pub fn plan_by_name(name: &str, host: &Host, options: Map<String, Value>) -> Option<Result<crate::engine::Plan>> {
    use crate::engine::Module;
    fn plan<M: Module>(host: &Host, options: Map<String, Value>) -> Result<crate::engine::Plan> {
        let params: M::Params = parse_params(options)?;
        M::plan(host, &params)
    }
    Some(match name {
        sysctl::MODULE => plan::<sysctl::Sysctl>(host, options),
        kernel_args::MODULE => plan::<kernel_args::KernelArgs>(host, options),
        nic::MODULE => plan::<nic::NicModule>(host, options),
        irq::MODULE => plan::<irq::Irq>(host, options),
        limits::MODULE => plan::<limits::Limits>(host, options),
        services::MODULE => plan::<services::Services>(host, options),
        cpu::MODULE => plan::<cpu::Cpu>(host, options),
        memory::MODULE => plan::<memory::Memory>(host, options),
        _ => return None,
    })
}
