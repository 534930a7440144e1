//! The one write path of every changing module.

pub mod journal;
