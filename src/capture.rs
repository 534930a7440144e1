//! `lltune capture` (being written).
