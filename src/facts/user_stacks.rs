//! (stub: replaced by the user-stacks work).
use serde::{Deserialize, Serialize};
use super::{Scan, nic::Nic};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserStacks {}

pub fn read(_scan: &mut Scan, _nics: &[Nic]) -> UserStacks {
    UserStacks::default()
}
