//! System interfaces that are not files. The only `unsafe` code of the crate lives here.

pub mod ethtool;
pub mod ethtool_group;
pub mod sched;
