//! (stub: being written).
use serde::{Deserialize, Serialize};
use super::{Scan, cpu::Cpu};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Numa {}

pub fn read(_scan: &mut Scan, _cpu: &Cpu) -> Numa {
    Numa::default()
}
