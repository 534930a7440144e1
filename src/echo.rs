//! How outside text and JSON values are shown in messages and results: host text and input
//! capped to a bounded length, JSON values named by their kind. Below every layer that shows
//! them (the facts readers, the protocol, the engine), so none of them reaches up for it.

use serde_json::Value;

/// The most characters of input text echoed back in a message or warning.
pub const ECHO_MAX_CHARS: usize = 200;

/// Input text as echoed in messages: cut to `ECHO_MAX_CHARS` characters, with a note of how
/// long it was. A 1 MB value never comes back as a 1 MB message.
pub fn cap_text(s: &str) -> String {
    let n = s.chars().count();
    if n <= ECHO_MAX_CHARS {
        return s.to_string();
    }
    let head: String = s.chars().take(ECHO_MAX_CHARS).collect();
    format!("{head}... ({n} characters)")
}

/// Serializes host text (an IRQ name, a line's value) as `cap_text` shows it: a result field
/// that echoes what a host file holds stays small whatever the file holds
/// (`#[serde(serialize_with = "crate::echo::capped")]`).
pub fn capped<S: serde::Serializer>(s: &str, ser: S) -> std::result::Result<S::Ok, S::Error> {
    ser.serialize_str(&cap_text(s))
}

/// How a JSON value is named in messages: "a list", "a mapping", ...
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
