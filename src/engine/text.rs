//! Files as bytes: how every module reads, edits and shows the files it changes.
//!
//! A file is bytes, whatever its encoding. Modules split it into lines (`lines`: each with
//! its `\n`; CR, NUL and every other byte belong to the line), keep every line they do not
//! mean to change as the very bytes it was, and build the lines they write from their own
//! options. Nothing on the edit path goes through a lossy conversion.
//!
//! Two text forms of bytes, both injective (different bytes never give the same text):
//!
//! - `view`: what line parsers read. Valid UTF-8 stays as it is, a backslash becomes `\\`,
//!   and each byte that is not part of valid UTF-8 becomes `\xNN` (two lower-case hex
//!   digits). Values read from files are compared in this form, against wanted values put in
//!   it too (`view(want)`), so the comparison is a comparison of bytes; and it is the form
//!   such values are reported in.
//! - `show`: what a diff displays when a file needs it. On top of `view`, ASCII control
//!   characters other than tab and newline (CR, NUL, ESC, DEL ...) become `\xNN` (the byte
//!   they are), and the C1 controls and bidirectional formatting characters, which a terminal
//!   would act on rather than print, become `\u{NNNN}`.
//!
//! `diff`: a diff is shown as is when both sides are UTF-8 without such characters. Otherwise
//! both sides are shown with `show`, and both headers say so (`ESCAPED_NOTE`): the header
//! tells which form a diff is in, so a literal `\xe9` in a plain diff is those four
//! characters, and in an escaped diff it is written `\\xe9`.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::protocol::Diff;

/// Appended to both headers of a diff shown with `show`.
pub const ESCAPED_NOTE: &str =
    " (escaped: \\xNN is the byte NN, \\u{NNNN} a control or bidi character, \\\\ a backslash)";

/// The lines of a file, each with its `\n`; the last one lacks it when the file does.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split_inclusive(|&b| b == b'\n')
}

/// A line without its final `\n` (a CR before it stays).
pub fn body(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Appends `line` as a line of its own: a last line without `\n` in `out` is ended first.
pub fn push_line(out: &mut Vec<u8>, line: &[u8]) {
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(line);
}

/// The text form parsers read (module docs): `\\` for a backslash, `\xNN` for a byte that is
/// not part of valid UTF-8, everything else as it is. Borrowed when nothing is escaped.
pub fn view(bytes: &[u8]) -> Cow<'_, str> {
    escape(bytes, false)
}

/// The form an escaped diff shows (module docs): `view`, plus ASCII controls other than tab
/// and newline as `\xNN`, C1 controls and bidi formatting characters as `\u{NNNN}`.
pub fn show(bytes: &[u8]) -> Cow<'_, str> {
    escape(bytes, true)
}

/// A character `show` writes as an escape: it would act on a terminal, not print.
fn hidden(c: char) -> bool {
    (c.is_ascii_control() && c != '\t' && c != '\n')
        || ('\u{80}'..='\u{9f}').contains(&c)
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
        || c == '\u{200e}'
        || c == '\u{200f}'
        || c == '\u{061c}'
}

fn escape(bytes: &[u8], controls: bool) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        if !s.contains(|c| c == '\\' || (controls && hidden(c))) {
            return Cow::Borrowed(s);
        }
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if controls && c.is_ascii() && hidden(c) => {
                    let _ = write!(out, "\\x{:02x}", c as u8);
                }
                c if controls && hidden(c) => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    Cow::Owned(out)
}

/// Whether `show` would escape anything but a backslash: the bytes are not UTF-8, or hold a
/// character a terminal acts on.
pub fn needs_escaping(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.contains(hidden),
        Err(_) => true,
    }
}

/// The bytes a `view` or `show` text stands for; `None` when it is not such a text.
pub fn unescape(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let esc = &rest[i + 1..];
        if let Some(r) = esc.strip_prefix('\\') {
            out.push(b'\\');
            rest = r;
        } else if let Some(r) = esc.strip_prefix('x') {
            let hex = r.get(..2).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &r[2..];
        } else if let Some(r) = esc.strip_prefix("u{") {
            let end = r.find('}')?;
            let c = char::from_u32(u32::from_str_radix(&r[..end], 16).ok()?)?;
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    out.extend_from_slice(rest.as_bytes());
    Some(out)
}

/// The diff of one file or setting: as is when both sides are plain text, else both sides
/// with `show` and the headers marked with `ESCAPED_NOTE`.
pub fn diff(before_header: impl Into<String>, after_header: impl Into<String>, before: &[u8], after: &[u8]) -> Diff {
    let (mut bh, mut ah) = (before_header.into(), after_header.into());
    if needs_escaping(before) || needs_escaping(after) {
        bh.push_str(ESCAPED_NOTE);
        ah.push_str(ESCAPED_NOTE);
        return Diff {
            before_header: bh,
            after_header: ah,
            before: show(before).into_owned(),
            after: show(after).into_owned(),
        };
    }
    // Plain text: no conversion loses anything.
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap_or_default();
    Diff { before_header: bh, after_header: ah, before: text(before), after: text(after) }
}

/// The diff of a file `path` that `before` is `None` when absent (the header says so).
pub fn file_diff(path: &str, before: Option<&[u8]>, after: &[u8]) -> Diff {
    let bh = if before.is_some() { path.to_string() } else { format!("{path} (absent)") };
    diff(bh, path, before.unwrap_or_default(), after)
}

/// The index of the first (`last`: the last) line whose `view` (without its `\n`) `pick`s.
pub fn find_line(bytes: &[u8], last: bool, pick: impl Fn(&str) -> bool) -> Option<usize> {
    let mut found = None;
    for (n, l) in lines(bytes).enumerate() {
        if pick(&view(body(l))) {
            found = Some(n);
            if !last {
                break;
            }
        }
    }
    found
}

/// `bytes` with the body of line `n` replaced by `new_body` (the line keeps its `\n`, or its
/// lack of one); every other byte is kept.
pub fn replace_line(bytes: &[u8], n: usize, new_body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + new_body.len());
    for (i, l) in lines(bytes).enumerate() {
        if i == n {
            out.extend_from_slice(new_body);
            if l.ends_with(b"\n") {
                out.push(b'\n');
            }
        } else {
            out.extend_from_slice(l);
        }
    }
    out
}

/// A whole file as UTF-8 text, for a file whose every argument is edited (a command line):
/// otherwise refused, naming the first line that is not UTF-8.
pub fn utf8<'a>(path: &str, bytes: &'a [u8]) -> Result<&'a str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        let n = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        let line = lines(bytes).nth(n).unwrap_or_default();
        match utf8_line(path, n + 1, line) {
            Err(msg) => msg,
            Ok(_) => format!("{path}: not UTF-8 text; nothing changed"),
        }
    })
}

/// Warnings for the files of `dirs` whose names are not UTF-8 (`Host::non_utf8_names`):
/// `what` reads them at boot, lltune cannot name them, so their settings go unchecked.
pub fn unread_files(host: &crate::host::Host, dirs: &[&str], suffix: &str, what: &str) -> Vec<String> {
    let mut out = Vec::new();
    for dir in dirs {
        for name in host.non_utf8_names(dir, suffix) {
            out.push(format!(
                "{dir}/{}: {what} reads this file, but its name is not UTF-8 and lltune does not read it: its settings are not checked against these",
                crate::protocol::cap_text(&view(&name))
            ));
        }
    }
    out
}

/// The line `n` (from 1) of `path` as UTF-8 text, for an edit inside the line (a command
/// line's arguments): a line that is not UTF-8 is refused, naming it, so that no byte of it
/// is ever rewritten through a lossy conversion.
pub fn utf8_line<'a>(path: &str, n: usize, line: &'a [u8]) -> Result<&'a str, String> {
    std::str::from_utf8(line).map_err(|_| {
        format!(
            "{path}: line {n} is not UTF-8 text ({}); lltune edits inside UTF-8 lines only: nothing changed",
            crate::protocol::cap_text(&show(body(line)))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no crate): xorshift64*.
    pub struct Gen(u64);
    impl Gen {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        /// Bytes biased towards what breaks text handling: invalid UTF-8, backslashes,
        /// `\x`-like text, CR, NUL, multi-byte and bidi characters.
        pub fn bytes(&mut self, max: usize) -> Vec<u8> {
            let n = (self.next() % (max as u64 + 1)) as usize;
            let mut v = Vec::new();
            while v.len() < n {
                match self.next() % 10 {
                    0 => v.push((self.next() % 256) as u8),
                    1 => v.extend_from_slice(b"\\x"),
                    2 => v.push(b'\\'),
                    3 => v.extend_from_slice(&[0xe9, 0xe0]),
                    4 => v.extend_from_slice("é\u{202e}\u{85}".as_bytes()),
                    5 => v.extend_from_slice(b"\r\n\0"),
                    6 => v.extend_from_slice(&[0xf0, 0x9f, 0x98]),
                    _ => v.push(b"ab=# \t19"[(self.next() % 8) as usize]),
                }
            }
            v
        }
    }

    #[test]
    fn both_forms_are_injective_and_unescape_inverts_them() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let mut seen_view = std::collections::HashMap::new();
        for _ in 0..20_000 {
            let b = g.bytes(24);
            let (v, s) = (view(&b), show(&b));
            assert_eq!(unescape(&v).as_deref(), Some(b.as_slice()), "{v}");
            assert_eq!(unescape(&s).as_deref(), Some(b.as_slice()), "{s}");
            assert!(!s.contains(hidden), "{s:?}");
            if let Some(other) = seen_view.insert(v.to_string(), b.clone()) {
                assert_eq!(other, b, "two byte strings share the view {v}");
            }
        }
    }

    #[test]
    fn escapes_are_the_documented_ones() {
        assert_eq!(view(b"/d\xe9j\xe0"), "/d\\xe9j\\xe0");
        assert_eq!(view(b"a\\xe9 \r\0"), "a\\\\xe9 \r\0");
        assert_eq!(show(b"a\\xe9 \r\0\x7f"), "a\\\\xe9 \\x0d\\x00\\x7f");
        assert_eq!(show("\u{202e}\u{85}é\t\n".as_bytes()), "\\u{202e}\\u{0085}é\t\n");
        assert!(matches!(view(b"plain text\n"), Cow::Borrowed(_)));
        assert_eq!(unescape("\\q"), None);
        assert_eq!(unescape("\\xE9"), None, "one spelling per byte");
    }

    #[test]
    fn a_diff_is_escaped_only_when_it_must_be_and_says_so() {
        let d = diff("f", "f", b"a\\b\n", b"c\n");
        assert_eq!((d.before.as_str(), d.before_header.as_str()), ("a\\b\n", "f"));
        let d = diff("f", "f", b"m /d\xe9j\xe0 x\nswap\n", b"m /d\xe9j\xe0 x\n# swap\n");
        assert_eq!(d.before, "m /d\\xe9j\\xe0 x\nswap\n");
        assert_eq!(d.after, "m /d\\xe9j\\xe0 x\n# swap\n");
        assert!(d.before_header.ends_with(ESCAPED_NOTE) && d.after_header.ends_with(ESCAPED_NOTE));
        let d = file_diff("/etc/x", None, b"a\\b\r\n");
        assert_eq!(
            (d.before_header.as_str(), d.after.as_str()),
            (&*format!("/etc/x (absent){ESCAPED_NOTE}"), "a\\\\b\\x0d\n")
        );
    }

    #[test]
    fn lines_keep_every_byte() {
        let mut g = Gen(7);
        for _ in 0..2000 {
            let b = g.bytes(64);
            assert_eq!(lines(&b).flatten().copied().collect::<Vec<u8>>(), b);
            assert!(lines(&b).all(|l| !body(l).contains(&b'\n')));
        }
        let f = b"a=1\nb=\xe9\r\nb=2";
        assert_eq!(find_line(f, true, |l| l.starts_with("b=")), Some(2));
        assert_eq!(find_line(f, false, |l| l.starts_with("b=")), Some(1));
        assert_eq!(replace_line(f, 1, b"b=3"), b"a=1\nb=3\nb=2");
        assert_eq!(replace_line(f, 2, b"b=3"), b"a=1\nb=\xe9\r\nb=3");
        assert_eq!(
            utf8("/f", f).unwrap_err(),
            "/f: line 2 is not UTF-8 text (b=\\xe9\\x0d); lltune edits inside UTF-8 lines only: nothing changed"
        );
        let mut out = b"a".to_vec();
        push_line(&mut out, b"b\n");
        assert_eq!(out, b"a\nb\n");
    }
}
