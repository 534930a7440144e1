//! (stub: being written).
use serde::{Deserialize, Serialize};
use super::Scan;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cpu {}

pub fn read(_scan: &mut Scan) -> Cpu {
    Cpu::default()
}
