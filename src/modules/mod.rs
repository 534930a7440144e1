//! One file per Ansible module; each exposes `Params` and `run(&Host, &Meta, Params)`.

pub mod audit;
pub mod boot;
pub mod bypass;
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
pub mod threads;
pub mod timesync;

use anyhow::Result;
use serde_json::{Map, Value};

use crate::engine::{Module, Plan, Transaction};
use crate::host::Host;
use crate::protocol::{Meta, Outcome, parse_params};

/// Something done with one changing module, chosen by name (`with_module`).
pub trait WithModule {
    type Out;
    fn with<M: Module>(self) -> Self::Out;
}

/// Calls `w` with the changing module named `name`, as its `Module` type: the one table
/// from a module's name to its code. `None` for a name that is not a changing module.
pub fn with_module<W: WithModule>(name: &str, w: W) -> Option<W::Out> {
    Some(match name {
        sysctl::MODULE => w.with::<sysctl::Sysctl>(),
        kernel_args::MODULE => w.with::<kernel_args::KernelArgs>(),
        nic::MODULE => w.with::<nic::NicModule>(),
        irq::MODULE => w.with::<irq::Irq>(),
        limits::MODULE => w.with::<limits::Limits>(),
        services::MODULE => w.with::<services::Services>(),
        cpu::MODULE => w.with::<cpu::Cpu>(),
        memory::MODULE => w.with::<memory::Memory>(),
        threads::MODULE => w.with::<threads::Threads>(),
        bypass::MODULE => w.with::<bypass::Bypass>(),
        timesync::MODULE => w.with::<timesync::Timesync>(),
        _ => return None,
    })
}

/// Runs a changing module by its name with options as JSON, on its own; `None` for a name
/// that is not a changing module.
pub fn run_by_name(name: &str, host: &Host, meta: &Meta, options: Map<String, Value>) -> Option<Result<Outcome>> {
    struct Run<'a>(&'a Host, &'a Meta, Map<String, Value>);
    impl WithModule for Run<'_> {
        type Out = Result<Outcome>;
        fn with<M: Module>(self) -> Result<Outcome> {
            crate::engine::run::<M>(self.0, self.1, parse_params(self.2)?)
        }
    }
    with_module(name, Run(host, meta, options))
}

/// Runs a changing module by its name with options as JSON as the next step of `tx` (what
/// `lltune apply` and `lltune reapply` do); `None` for a name that is not a changing module.
pub fn run_step(tx: &mut Transaction<'_>, name: &str, options: Map<String, Value>) -> Option<Result<Outcome>> {
    struct Step<'a, 'h>(&'a mut Transaction<'h>, Map<String, Value>);
    impl WithModule for Step<'_, '_> {
        type Out = Result<Outcome>;
        fn with<M: Module>(self) -> Result<Outcome> {
            self.0.run::<M>(parse_params(self.1)?)
        }
    }
    with_module(name, Step(tx, options))
}

/// Plans a changing module by its name with options as JSON, as its run would before any
/// write (parse the options, then `plan`: reads the host, writes nothing, takes no lock).
/// What `lltune audit` runs so that a config it accepts is one apply can carry out.
pub fn plan_by_name(name: &str, host: &Host, options: Map<String, Value>) -> Option<Result<Plan>> {
    struct PlanIt<'a>(&'a Host, Map<String, Value>);
    impl WithModule for PlanIt<'_> {
        type Out = Result<Plan>;
        fn with<M: Module>(self) -> Result<Plan> {
            let params: M::Params = parse_params(self.1)?;
            M::plan(self.0, &params)
        }
    }
    with_module(name, PlanIt(host, options))
}
