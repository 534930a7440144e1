//! One file per Ansible module; each exposes `Params` and `run(&Host, &Meta, Params)`.

pub mod audit;
pub mod boot;
pub mod config;
pub mod facts;
pub mod irq;
pub mod kernel_args;
pub mod rollback;
pub mod sysctl;
