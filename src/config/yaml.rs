//! YAML text to a YAML value, with libyaml's event parser (unsafe-libyaml): the one YAML
//! parser in the binaries, shared with the YAML 1.1 boolean check (`yaml11`).
//!
//! `load` builds the same `serde_yaml::Value` that `serde_yaml::from_str` builds (YAML 1.2
//! core schema for plain scalars: `null`/`~`/empty, `true`/`false`, decimal, `0x`, `0o` and
//! `0b` integers, floats with `.inf`/`.nan`; `!!str`, `!!int`, `!!float`, `!!bool` and
//! `!!null` tags; a local tag `!x` as a tagged value; anchors and aliases; duplicate keys and
//! more than one document refused), but without serde_yaml's own loader and deserializer from
//! events: the module binaries (copied to every host for every task) keep only the value type
//! and its small deserializer. A test holds `load` to `serde_yaml::from_str` on a range of
//! documents.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fmt;
use std::mem::MaybeUninit;

use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Number, Value as Yaml};
// Every call through `y::` already sits in an `unsafe` block; the short name keeps them readable.
#[allow(clippy::unsafe_removed_from_name)]
use unsafe_libyaml as y;

const TAG_NULL: &str = "tag:yaml.org,2002:null";
const TAG_BOOL: &str = "tag:yaml.org,2002:bool";
const TAG_INT: &str = "tag:yaml.org,2002:int";
const TAG_FLOAT: &str = "tag:yaml.org,2002:float";

/// Nesting deeper than this is refused (as serde_yaml does), before any recursion on the value.
const MAX_DEPTH: usize = 128;

/// A position in the text, from 0 (as libyaml counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Mark {
    pub index: u64,
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.line != 0 || self.column != 0 {
            write!(f, "line {} column {}", self.line + 1, self.column + 1)
        } else {
            write!(f, "position {}", self.index)
        }
    }
}

/// Node properties: anchor and tag.
#[derive(Debug, Default)]
pub(crate) struct Props {
    pub anchor: Option<String>,
    pub tag: Option<String>,
}

/// One parse event, copied out of libyaml.
#[derive(Debug)]
pub(crate) enum Event {
    DocumentStart,
    DocumentEnd,
    /// A scalar; `plain` = plain style with no tag (the core schema resolves it);
    /// `plain_style` = written plain, tagged or not.
    Scalar {
        value: String,
        props: Props,
        plain: bool,
        plain_style: bool,
        mark: Mark,
    },
    Alias {
        anchor: String,
        mark: Mark,
    },
    SequenceStart {
        props: Props,
        mark: Mark,
    },
    MappingStart {
        props: Props,
        mark: Mark,
    },
    SequenceEnd,
    MappingEnd,
    StreamStart,
    StreamEnd,
}

/// libyaml's event parser over a string; ends at the stream's end or at the first error,
/// which is then in `error` (worded as serde_yaml words libyaml's errors).
pub(crate) struct Events<'a> {
    parser: Box<MaybeUninit<y::yaml_parser_t>>,
    done: bool,
    pub error: Option<String>,
    _text: &'a str,
}

/// A libyaml string (NUL-terminated), or None for a null pointer.
///
/// SAFETY: `p` is null or points to a NUL-terminated string that outlives the call.
unsafe fn text_at(p: *const u8) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: as the caller promises.
    Some(unsafe { CStr::from_ptr(p.cast()) }.to_string_lossy().into_owned())
}

fn mark(m: y::yaml_mark_t) -> Mark {
    Mark { index: m.index, line: m.line, column: m.column }
}

impl<'a> Events<'a> {
    pub fn new(text: &'a str) -> Option<Events<'a>> {
        let mut parser = Box::new(MaybeUninit::<y::yaml_parser_t>::uninit());
        // SAFETY: libyaml initialises the parser in place; the input string outlives it
        // (`_text` keeps the borrow for as long as `Events` lives).
        unsafe {
            let p = parser.as_mut_ptr();
            if y::yaml_parser_initialize(p).fail {
                return None;
            }
            y::yaml_parser_set_encoding(p, y::YAML_UTF8_ENCODING);
            y::yaml_parser_set_input_string(p, text.as_ptr(), text.len() as u64);
        }
        Some(Events { parser, done: false, error: None, _text: text })
    }

    /// The parser's error, as serde_yaml shows it: `problem at line L column C, context`.
    ///
    /// SAFETY: the parser was initialised and its last call failed.
    unsafe fn parser_error(&self) -> String {
        // SAFETY: initialised (see above); libyaml's problem and context are static strings.
        unsafe {
            let p = &*self.parser.as_ptr();
            let problem = text_at(p.problem.cast()).unwrap_or_else(|| "unknown YAML error".into());
            let problem_mark = mark(p.problem_mark);
            let mut out = problem;
            if problem_mark.line != 0 || problem_mark.column != 0 {
                out += &format!(" at {problem_mark}");
            } else if p.problem_offset != 0 {
                out += &format!(" at position {}", p.problem_offset);
            }
            if let Some(context) = text_at(p.context.cast()) {
                out += &format!(", {context}");
                let context_mark = mark(p.context_mark);
                if (context_mark.line != 0 || context_mark.column != 0) && context_mark != problem_mark {
                    out += &format!(" at {context_mark}");
                }
            }
            out
        }
    }
}

impl Iterator for Events<'_> {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let mut ev = MaybeUninit::<y::yaml_event_t>::uninit();
        // SAFETY: the parser was initialised in `new`; an event is read only when
        // yaml_parser_parse succeeded, and deleted once copied out. Its strings are
        // NUL-terminated and live until yaml_event_delete.
        unsafe {
            if y::yaml_parser_parse(self.parser.as_mut_ptr(), ev.as_mut_ptr()).fail {
                self.done = true;
                self.error = Some(self.parser_error());
                return None;
            }
            let e = ev.as_mut_ptr();
            let at = mark((*e).start_mark);
            let out = match (*e).type_ {
                y::YAML_STREAM_START_EVENT => Event::StreamStart,
                y::YAML_STREAM_END_EVENT => {
                    self.done = true;
                    Event::StreamEnd
                }
                y::YAML_DOCUMENT_START_EVENT => Event::DocumentStart,
                y::YAML_DOCUMENT_END_EVENT => Event::DocumentEnd,
                y::YAML_SCALAR_EVENT => {
                    let sc = (*e).data.scalar;
                    let bytes = std::slice::from_raw_parts(sc.value, sc.length as usize);
                    Event::Scalar {
                        value: String::from_utf8_lossy(bytes).into_owned(),
                        props: Props { anchor: text_at(sc.anchor), tag: text_at(sc.tag) },
                        plain: sc.style == y::YAML_PLAIN_SCALAR_STYLE && sc.plain_implicit,
                        plain_style: sc.style == y::YAML_PLAIN_SCALAR_STYLE,
                        mark: at,
                    }
                }
                y::YAML_ALIAS_EVENT => {
                    Event::Alias { anchor: text_at((*e).data.alias.anchor).unwrap_or_default(), mark: at }
                }
                y::YAML_SEQUENCE_START_EVENT => {
                    let s = (*e).data.sequence_start;
                    Event::SequenceStart { props: Props { anchor: text_at(s.anchor), tag: text_at(s.tag) }, mark: at }
                }
                y::YAML_MAPPING_START_EVENT => {
                    let m = (*e).data.mapping_start;
                    Event::MappingStart { props: Props { anchor: text_at(m.anchor), tag: text_at(m.tag) }, mark: at }
                }
                y::YAML_SEQUENCE_END_EVENT => Event::SequenceEnd,
                y::YAML_MAPPING_END_EVENT => Event::MappingEnd,
                // NO_EVENT: nothing more.
                _ => {
                    self.done = true;
                    Event::StreamEnd
                }
            };
            y::yaml_event_delete(e);
            Some(out)
        }
    }
}

impl Drop for Events<'_> {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` (an `Events` exists only then).
        unsafe { y::yaml_parser_delete(self.parser.as_mut_ptr()) }
    }
}

/// A YAML error, worded as serde_yaml words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

// ---- The YAML 1.2 core schema, as serde_yaml resolves plain scalars ----

fn is_null(s: &str) -> bool {
    matches!(s, "null" | "Null" | "NULL" | "~")
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Leading zeros followed by digits: a string in YAML 1.2 (`0123`).
fn digits_but_not_number(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    s.len() > 1 && s.starts_with('0') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

/// An integer: `[+-]` then `0x`/`0o`/`0b` digits or decimal digits (no leading zero), read
/// as 128 bits (as serde_yaml reads it).
fn parse_int_wide(s: &str) -> Option<i128> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.starts_with(['+', '-']) {
        return None;
    }
    let (radix, digits) = if let Some(d) = rest.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = rest.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = rest.strip_prefix("0b") {
        (2, d)
    } else {
        if digits_but_not_number(s) {
            return None;
        }
        (10, rest)
    };
    if digits.starts_with(['+', '-']) {
        return None;
    }
    // The sign goes with the digits, so that i128::MIN reads too.
    i128::from_str_radix(&format!("{}{digits}", if negative { "-" } else { "" }), radix).ok()
}

/// An integer that a YAML value holds (u64 or i64); `Err` for one of 65 to 128 bits, which
/// serde_yaml refuses; `Ok(None)` when it is not an integer (or a wider one: then a float).
fn parse_int(s: &str) -> Result<Option<Number>, String> {
    let Some(i) = parse_int_wide(s) else {
        // Beyond i128 but within u128: serde_yaml still reads an integer, and refuses it.
        return match s.strip_prefix('+').unwrap_or(s).parse::<u128>() {
            Ok(_) if !digits_but_not_number(s) => {
                Err(format!("invalid type: integer `{s}` as u128, expected any YAML value"))
            }
            _ => Ok(None),
        };
    };
    if let Ok(u) = u64::try_from(i) {
        Ok(Some(Number::from(u)))
    } else if let Ok(n) = i64::try_from(i) {
        Ok(Some(Number::from(n)))
    } else if i > 0 {
        Err(format!("invalid type: integer `{i}` as u128, expected any YAML value"))
    } else {
        Err(format!("invalid type: integer `{i}` as i128, expected any YAML value"))
    }
}

fn parse_float(s: &str) -> Option<f64> {
    let unsigned = match s.strip_prefix('+') {
        Some(u) if u.starts_with(['+', '-']) => return None,
        Some(u) => u,
        None => s,
    };
    match unsigned {
        ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
        _ => {}
    }
    match s {
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    unsigned.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A plain, untagged scalar under the core schema.
fn resolve_plain(s: String) -> Result<Yaml, String> {
    if s.is_empty() || is_null(&s) {
        return Ok(Yaml::Null);
    }
    if let Some(b) = parse_bool(&s) {
        return Ok(Yaml::Bool(b));
    }
    if let Some(n) = parse_int(&s)? {
        return Ok(Yaml::Number(n));
    }
    if !digits_but_not_number(&s) {
        if let Some(f) = parse_float(&s) {
            return Ok(Yaml::Number(Number::from(f)));
        }
    }
    Ok(Yaml::String(s))
}

/// A scalar with its tag (already resolved by libyaml: `!!int` is `tag:yaml.org,2002:int`).
fn resolve_scalar(value: String, tag: Option<&str>, plain: bool, style_plain: bool) -> Result<Yaml, String> {
    let invalid = |what: &str| format!("invalid value: string {value:?}, expected {what}");
    match tag {
        None if plain => resolve_plain(value),
        None => Ok(Yaml::String(value)),
        Some(TAG_BOOL) => parse_bool(&value).map(Yaml::Bool).ok_or_else(|| invalid("a boolean")),
        Some(TAG_INT) => parse_int(&value)?.map(Yaml::Number).ok_or_else(|| invalid("an integer")),
        Some(TAG_FLOAT) => parse_float(&value).map(|f| Yaml::Number(Number::from(f))).ok_or_else(|| invalid("a float")),
        Some(TAG_NULL) => {
            if is_null(&value) {
                Ok(Yaml::Null)
            } else {
                Err(invalid("null"))
            }
        }
        // A local tag on a plain scalar: the tag's value resolves as if untagged.
        Some(t) if t.starts_with('!') && style_plain => resolve_plain(value),
        Some(_) => Ok(Yaml::String(value)),
    }
}

/// A local tag (`!x`) makes a tagged value, as in serde_yaml; the core schema's tags do not.
fn tagged(tag: Option<&str>, value: Yaml) -> Yaml {
    match tag {
        Some(t) if t.starts_with('!') => {
            let name = if t.len() > 1 { &t[1..] } else { t };
            Yaml::Tagged(Box::new(TaggedValue { tag: Tag::new(name), value }))
        }
        _ => value,
    }
}

/// A collection being read; `nodes` counts every node in it, nested ones and aliased copies
/// included (the size an alias to it copies).
enum Open {
    Seq { items: Vec<Yaml>, props: Props, path: String, nodes: usize },
    Map { map: Mapping, key: Option<Yaml>, props: Props, path: String, mark: Mark, nodes: usize },
}

fn child_path(stack: &[Open]) -> String {
    match stack.last() {
        None => ".".into(),
        Some(Open::Seq { items, path, .. }) => format!("{}[{}]", path.trim_start_matches('.'), items.len()),
        Some(Open::Map { key, path, .. }) => {
            let k = match key {
                Some(Yaml::String(s)) => s.clone(),
                Some(Yaml::Number(n)) => n.to_string(),
                Some(Yaml::Bool(b)) => b.to_string(),
                _ => "?".into(),
            };
            if path == "." { k } else { format!("{path}.{k}") }
        }
    }
}

fn duplicate(key: &Yaml) -> String {
    match key {
        Yaml::Null => "duplicate entry with null key".into(),
        Yaml::Bool(b) => format!("duplicate entry with key `{b}`"),
        Yaml::Number(n) => format!("duplicate entry with key {n}"),
        Yaml::String(s) => format!("duplicate entry with key {s:?}"),
        _ => "duplicate entry in YAML map".into(),
    }
}

/// Parses one YAML document into a value, as `serde_yaml::from_str::<Value>` does: an empty
/// document (or only comments) is null; a second document is an error.
pub fn load(text: &str) -> Result<Yaml, Error> {
    let Some(mut events) = Events::new(text) else { return Err(Error("cannot start the YAML parser".into())) };
    let mut anchors: HashMap<String, (Yaml, usize)> = HashMap::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut doc: Option<Yaml> = None;
    let mut documents = 0usize;
    // Alias expansion is bounded (a billion laughs is refused, as serde_yaml does).
    let mut event_count = 0usize;
    let mut expanded = 0usize;
    loop {
        let Some(event) = events.next() else {
            return Err(Error(events.error.take().unwrap_or_else(|| "EOF while parsing a value".into())));
        };
        event_count += 1;
        // A finished node: (value, its node count, anchor, where it started).
        let (value, nodes, anchor, _at) = match event {
            Event::StreamStart | Event::DocumentEnd => continue,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(Error(
                        "deserializing from YAML containing more than one document is not supported".into(),
                    ));
                }
                continue;
            }
            Event::StreamEnd => return Ok(doc.unwrap_or(Yaml::Null)),
            Event::Scalar { value, props, plain, plain_style, mark } => {
                let v = resolve_scalar(value, props.tag.as_deref(), plain, plain_style)
                    .map_err(|m| Error(at_path(&child_path(&stack), &m, mark)))?;
                (tagged(props.tag.as_deref(), v), 1, props.anchor, mark)
            }
            Event::Alias { anchor, mark } => match anchors.get(&anchor) {
                Some((v, n)) => {
                    expanded += n;
                    if expanded > 100 * event_count.max(100) {
                        return Err(Error("repetition limit exceeded".into()));
                    }
                    (v.clone(), *n, None, mark)
                }
                None => return Err(Error(format!("unknown anchor at {mark}"))),
            },
            Event::SequenceStart { props, mark } => {
                if stack.len() >= MAX_DEPTH {
                    return Err(Error(format!("recursion limit exceeded at {mark}")));
                }
                let path = child_path(&stack);
                stack.push(Open::Seq { items: Vec::new(), props, path, nodes: 1 });
                continue;
            }
            Event::MappingStart { props, mark } => {
                if stack.len() >= MAX_DEPTH {
                    return Err(Error(format!("recursion limit exceeded at {mark}")));
                }
                let path = child_path(&stack);
                stack.push(Open::Map { map: Mapping::new(), key: None, props, path, mark, nodes: 1 });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Seq { items, props, nodes, .. }) => {
                    (tagged(props.tag.as_deref(), Yaml::Sequence(items)), nodes, props.anchor, Mark::default())
                }
                Some(Open::Map { map, props, nodes, .. }) => {
                    (tagged(props.tag.as_deref(), Yaml::Mapping(map)), nodes, props.anchor, Mark::default())
                }
                None => continue,
            },
        };
        if let Some(a) = anchor {
            anchors.insert(a, (value.clone(), nodes));
        }
        match stack.last_mut() {
            None => doc = Some(value),
            Some(Open::Seq { items, nodes: count, .. }) => {
                *count += nodes;
                items.push(value);
            }
            Some(Open::Map { map, key, path, mark, nodes: count, .. }) => {
                *count += nodes;
                match key.take() {
                    None => {
                        if map.contains_key(&value) {
                            return Err(Error(at_path(path, &duplicate(&value), *mark)));
                        }
                        *key = Some(value);
                    }
                    Some(k) => {
                        map.insert(k, value);
                    }
                }
            }
        }
    }
}

/// `path: message at line L column C`, as serde_yaml places a message (no path at the top).
fn at_path(path: &str, msg: &str, mark: Mark) -> String {
    let mut out = if path == "." || path.is_empty() { msg.to_string() } else { format!("{path}: {msg}") };
    if mark.line != 0 || mark.column != 0 {
        out += &format!(" at {mark}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `load` against serde_yaml's own loader, on documents of every kind the configs meet.
    #[test]
    fn load_is_serde_yaml_from_str() {
        let docs = [
            "",
            "# only a comment\n",
            "---\n",
            "version: 1\nkernel:\n  cmdline:\n    mitigations: off\n    isolcpus: 1-3\n",
            "a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: ''\ng: \"\"\n",
            "a: true\nb: True\nc: TRUE\nd: false\ne: yes\nf: no\ng: on\nh: 'true'\n",
            "a: 1\nb: -1\nc: +1\nd: 0x1f\ne: 0o17\nf: 0b101\ng: 0123\nh: -0123\ni: 007\nj: 0\nk: -0\n",
            "a: 18446744073709551615\nc: -9223372036854775808\n",
            "b: 18446744073709551616\n",
            "d: -9223372036854775809\n",
            "e: 0x1ffffffffffffffff\n",
            "f: 999999999999999999999999999999999999999999\n",
            "g: 340282366920938463463374607431768211455\n",
            "a: 1.5\nb: -1.5e3\nc: .inf\nd: -.Inf\ne: +.INF\nf: 1e400\ng: 1_000\nh: 0x\ni: +-1\nj: 1.\nk: .5\n",
            "a: !!str 1\nb: !!int \"2\"\nc: !!float \"3\"\nd: !!bool \"true\"\ne: !!null \"\"\nf: !!str off\n",
            "a: !foo bar\nb: !foo {x: 1}\nc: !foo [1]\nd: !foo 'q'\ne: ! x\n",
            "a: &x {k: [1, 2]}\nb: *x\nc: &y 5\nd: [*y, *y]\n",
            "l:\n  - - n\n    - Y\n  - [{k: no}]\nm: {a: 1, b: [x, y]}\n",
            "doc: |\n  line one\n  line two\nfolded: >\n  a\n  b\nmulti: a\n  b\n",
            "1: one\n2.5: two\ntrue: three\n~: four\n[1, 2]: five\n{a: 1}: six\n",
            "- 1\n- a\n- null\n",
            "plain\n",
            "'quoted'\n",
            "a: '123'\nb: \"0x10\"\nc: 1:2\nd: 12:30:00\ne: 2001-12-14\n",
            "a: .nan\n",
        ];
        for d in docs {
            let want: Result<Yaml, _> = serde_yaml::from_str(d);
            let got = load(d);
            match (&want, &got) {
                (Ok(w), Ok(g)) => {
                    // NaN != NaN: compare through the text form.
                    assert_eq!(format!("{w:?}"), format!("{g:?}"), "{d:?}");
                }
                (Err(_), Err(_)) => {}
                _ => panic!("{d:?}: serde_yaml {want:?}, load {got:?}"),
            }
        }
    }

    #[test]
    fn errors_are_errors() {
        for d in [
            "a: 1\na: 2\n",
            "a: {b: 1, b: 2}\n",
            "a: [\n",
            "a: *nope\n",
            "--- 1\n--- 2\n",
            "a: !!int x\n",
            "a: !!bool yes\n",
            "key: value\n  bad indent: 1\n",
            "\"unterminated\n",
        ] {
            assert!(serde_yaml::from_str::<Yaml>(d).is_err(), "serde_yaml accepts {d:?}");
            let e = load(d).expect_err(d);
            assert!(!e.0.is_empty(), "{d:?}");
        }
        assert!(load("a: 1\na: 2\n").unwrap_err().0.starts_with("duplicate entry with key \"a\""));
        assert!(load("a: [\n").unwrap_err().0.contains("line 2 column 1"), "{:?}", load("a: [\n"));
        assert_eq!(
            load("--- 1\n--- 2\n").unwrap_err().0,
            serde_yaml::from_str::<Yaml>("--- 1\n--- 2\n").unwrap_err().to_string()
        );
        // Deep nesting is refused before anything recurses on it.
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(load(&deep).unwrap_err().0.contains("recursion limit exceeded"));
        // A billion laughs is refused, not expanded.
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = (b'a' + i - 1) as char;
            let cur = (b'a' + i) as char;
            bomb += &format!(
                "{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            );
        }
        assert_eq!(load(&bomb).unwrap_err().0, "repetition limit exceeded");
    }
}
