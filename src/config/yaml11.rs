//! YAML 1.1 boolean words in a config: every plain (unquoted, untagged) scalar that YAML 1.1
//! reads as a boolean and YAML 1.2 as a string (`off`, `on`, `yes`, `no`, `y`, `n`, ...), with
//! its dotted path — in block and flow style, mapping keys and list items included.
//!
//! Read with a real YAML event parser, not a line scanner: flow mappings
//! (`kernel: {cmdline: {intel_pstate: off}}`), flow lists, multi-line plain scalars, block
//! scalars and comments are all the parser's business. The parser is libyaml's
//! (unsafe-libyaml), the same event parser `yaml::load` builds values with: no second YAML
//! parser in the binaries. The path follows the config reader's form:
//! `kernel.cmdline.mitigations`, `network.interfaces[1].offloads.gro`, `list[0]`.

use super::yaml::{Event, Events};

/// A plain scalar that YAML 1.1 reads as a boolean and YAML 1.2 as a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Yaml11Bool {
    pub path: String,
    pub word: String,
    /// Line number, from 1.
    pub line: usize,
}

/// YAML 1.1's boolean words that YAML 1.2 reads as strings (`true`/`false` are booleans in both).
pub fn is_yaml11_bool_word(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y" | "yes" | "Yes" | "YES" | "n" | "N" | "no" | "No" | "NO" | "on" | "On" | "ON" | "off" | "Off" | "OFF"
    )
}

/// One open collection: its path, and where the next node goes in it.
enum Frame {
    /// A mapping: `key` is the key read and waiting for its value (None: a key comes next).
    Map {
        path: String,
        key: Option<String>,
    },
    Seq {
        path: String,
        index: usize,
    },
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}

/// Where the next node sits: its path, and whether it is a mapping key.
fn next_slot(stack: &[Frame]) -> (String, bool) {
    match stack.last() {
        None => (String::new(), false),
        Some(Frame::Map { path, key: None }) => (path.clone(), true),
        Some(Frame::Map { path, key: Some(k) }) => (join(path, k), false),
        Some(Frame::Seq { path, index }) => (format!("{path}[{index}]"), false),
    }
}

/// A node (scalar, alias or whole collection) was read at the top of `stack`: move on.
fn advance(stack: &mut [Frame], key_text: Option<String>) {
    match stack.last_mut() {
        Some(Frame::Map { key, .. }) => {
            *key = match key.take() {
                // That node was a key: its value comes next.
                None => Some(key_text.unwrap_or_else(|| "?".into())),
                // That node was a value: a key comes next.
                Some(_) => None,
            }
        }
        Some(Frame::Seq { index, .. }) => *index += 1,
        None => {}
    }
}

/// Every YAML 1.1 boolean word written as a plain scalar, in document order. Quoted words are
/// strings in both YAML versions, and so are tagged ones (`!!str off`); a document the parser
/// rejects yields what came before the error (the config reader reports the error itself).
pub fn yaml11_booleans(text: &str) -> Vec<Yaml11Bool> {
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let Some(events) = Events::new(text) else { return out };
    for event in events {
        match event {
            Event::DocumentStart | Event::DocumentEnd => stack.clear(),
            Event::Scalar { value, plain, mark, .. } => {
                let line = mark.line as usize + 1;
                let (parent, is_key) = next_slot(&stack);
                let path = if is_key { join(&parent, &value) } else { parent };
                if plain && is_yaml11_bool_word(&value) {
                    out.push(Yaml11Bool { path, word: value.clone(), line });
                }
                advance(&mut stack, Some(value));
            }
            Event::Alias { .. } => advance(&mut stack, None),
            Event::MappingStart { .. } | Event::SequenceStart { .. } => {
                let (path, is_key) = next_slot(&stack);
                let path = if is_key { join(&path, "?") } else { path };
                stack.push(if matches!(event, Event::MappingStart { .. }) {
                    Frame::Map { path, key: None }
                } else {
                    Frame::Seq { path, index: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                advance(&mut stack, None);
            }
            Event::StreamStart | Event::StreamEnd => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(String, String)> {
        yaml11_booleans(text).into_iter().map(|b| (b.path, b.word)).collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn block_style_words_with_their_paths() {
        let text = "version: 1\nkernel:\n  cmdline:\n    mitigations: off   # dangerous\n    tsc: \"reliable\"\n    idle: 'on'\nnetwork:\n  interfaces:\n    - name: eth0\n      role: trading\n    - name: eth1\n      offloads:\n        gro: no\nlist:\n  - yes\n  - x\n  - N\ndoc: |\n  off\n";
        assert_eq!(
            found(text),
            pairs(&[
                ("kernel.cmdline.mitigations", "off"),
                ("network.interfaces[1].offloads.gro", "no"),
                ("list[0]", "yes"),
                ("list[2]", "N"),
            ])
        );
        let b = &yaml11_booleans(text)[0];
        assert_eq!(b.line, 4);
    }

    #[test]
    fn flow_style_keys_and_nesting() {
        assert_eq!(
            found("version: 1\nkernel: {cmdline: {intel_pstate: off}}\n"),
            pairs(&[("kernel.cmdline.intel_pstate", "off")])
        );
        assert_eq!(found("cpu: {turbo: Off, epp: \"on\"}\n"), pairs(&[("cpu.turbo", "Off")]));
        assert_eq!(found("a: [x, y, {b: [ON, 'off']}]\n"), pairs(&[("a[1]", "y"), ("a[2].b[0]", "ON")]));
        // A key that is a YAML 1.1 word, in both styles.
        assert_eq!(found("net:\n  off: 1\n  m: {yes: 2}\n"), pairs(&[("net.off", "off"), ("net.m.yes", "yes")]));
        // Nested block lists, and a list of mappings in flow style.
        assert_eq!(
            found("l:\n  - - n\n    - Y\n  - [{k: no}]\n"),
            pairs(&[("l[0][0]", "n"), ("l[0][1]", "Y"), ("l[1][0].k", "no")])
        );
    }

    #[test]
    fn quoted_tagged_block_and_multiline_scalars_are_strings() {
        assert!(
            found("a: \"off\"\nb: 'no'\nc: !!str yes\nd: |\n  on\ne: >\n  off\nf: offline\ng: on off\nh: true\n")
                .is_empty()
        );
        // A plain scalar over two lines is one string, not the word on its first line.
        assert!(found("a: off\n  and on\n").is_empty());
        // Anchors and aliases keep positions right.
        assert_eq!(found("a: &x 1\nb: *x\nc: no\n"), pairs(&[("c", "no")]));
    }

    #[test]
    fn broken_documents_give_what_came_before() {
        assert_eq!(found("a: no\nb: [\n"), pairs(&[("a", "no")]));
        assert!(found("").is_empty());
        assert_eq!(found("off\n"), pairs(&[("", "off")]));
    }
}
