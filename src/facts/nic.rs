//! Network devices (stub: replaced by the NIC work).
use serde::{Deserialize, Serialize};
use super::Scan;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Nic {
    pub name: Option<String>,
}

pub fn read(_scan: &mut Scan) -> Vec<Nic> {
    Vec::new()
}
