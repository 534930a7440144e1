//! (stub: being written).
use serde::{Deserialize, Serialize};
use super::Scan;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Memory {}

pub fn read(_scan: &mut Scan) -> Memory {
    Memory::default()
}
