//! (stub: replaced by the services/time/limits work).
use serde::{Deserialize, Serialize};
use super::Scan;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Limits {}

pub fn read(_scan: &mut Scan) -> Limits {
    Limits::default()
}
