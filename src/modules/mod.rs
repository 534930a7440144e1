//! One file per Ansible module; each exposes `Params` and `run(&Host, &Meta, Params)`.

pub mod facts;
