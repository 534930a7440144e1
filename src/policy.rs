//! The one safety policy.
