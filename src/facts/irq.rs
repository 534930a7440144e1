//! Interrupts (stub: replaced by the IRQ work).
use serde::{Deserialize, Serialize};
use super::{Scan, cpu::Cpu, nic::Nic};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Irqs {
    pub total: usize,
}

pub fn read(_scan: &mut Scan, _cpu: &Cpu, _nics: &[Nic]) -> Irqs {
    Irqs::default()
}
