//! Text that comes from a host (names, CPU models, file names, command-line values) inside the
//! Markdown lltune writes (`fleet.md`, `scan --md-report`, latency reports): escaped so that a
//! renderer shows it as written and builds nothing from it: no HTML, no link or image, no
//! emphasis or code span, and no extra table cell. `xml` does the same for the HTML and SVG
//! lltune writes (`fleet.html`, latency charts).
//!
//! The rules are CommonMark's (spec 0.31, "Backslash escapes": any ASCII punctuation may be
//! escaped) and GitHub's table extension (a cell ends at a `|` that no backslash escapes; a
//! row is one line).

/// `s` as character data or an attribute value of HTML or XML: `&`, `<`, `>`, `"` and `'` as
/// character references, control characters (line breaks too) as spaces.
pub fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// `s` as literal inline text: `&`, `<` and `>` as character references (so no raw HTML and
/// no autolink), the punctuation that opens inline markup or ends a cell backslash-escaped,
/// and line breaks and other control characters as spaces.
pub fn text(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            // Escapes, emphasis, code spans, links and images, table cells, strikethrough,
            // ATX heading closers (`### host ##` would lose its `##`).
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '!' | '~' | '#' => {
                o.push('\\');
                o.push(c);
            }
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// One table cell: `text`, and `—` when empty (an empty cell reads as a missing one).
pub fn cell(s: &str) -> String {
    if s.is_empty() { "—".into() } else { text(s) }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Splits one table row into its cells as GitHub's table extension does: a cell runs to a
    /// `|` that is not the second character of a `\|` pair (cmark-gfm's `table_cell` rule:
    /// `(escaped_char | [^|\r\n])+` with `escaped_char = \\ \|`), and the row's outer pipes
    /// are dropped. Then each cell's `\|` becomes `|`, as the extension does before inline
    /// parsing.
    pub(crate) fn split_row(row: &str) -> Vec<String> {
        let row = row.trim();
        let inner = row.strip_prefix('|').unwrap_or(row);
        let mut cells = Vec::new();
        let mut cur = String::new();
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'|') => {
                    chars.next();
                    cur.push_str("\\|");
                }
                '|' => cells.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        if !cur.trim().is_empty() {
            cells.push(cur);
        }
        cells.into_iter().map(|c| c.trim().replace("\\|", "|")).collect()
    }

    /// What a CommonMark renderer shows for one cell's text, or an error naming the markup
    /// it would build: backslash escapes of ASCII punctuation undone, the three character
    /// references lltune writes decoded; any other `&`, `<`, `>`, or an unescaped markup
    /// character is refused.
    pub(crate) fn shown(cell: &str) -> Result<String, String> {
        let mut o = String::new();
        let mut rest = cell;
        while let Some(c) = rest.chars().next() {
            if let Some(r) = rest.strip_prefix('\\') {
                match r.chars().next() {
                    Some(p) if p.is_ascii_punctuation() => {
                        o.push(p);
                        rest = &r[1..];
                        continue;
                    }
                    _ => return Err(format!("a backslash that escapes nothing in {cell:?}")),
                }
            }
            if c == '&' {
                let (e, ch) = [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>')]
                    .into_iter()
                    .find(|(e, _)| rest.starts_with(e))
                    .ok_or_else(|| format!("a raw & in {cell:?}"))?;
                o.push(ch);
                rest = &rest[e.len()..];
                continue;
            }
            // `|` is not here: `split_row` has already turned each `\|` into `|`.
            if matches!(c, '<' | '>' | '`' | '*' | '_' | '[' | ']' | '!' | '~' | '#') {
                return Err(format!("unescaped {c:?} in {cell:?}"));
            }
            if c.is_control() {
                return Err(format!("control character in {cell:?}"));
            }
            o.push(c);
            rest = &rest[c.len_utf8()..];
        }
        Ok(o)
    }

    pub(crate) use crate::test_rng::Rng;

    /// Every ASCII character and a few others: the escaped text shows as written (control
    /// characters as spaces), builds no markup, and stays one cell.
    #[test]
    fn generated_text_shows_as_written_in_one_cell() {
        let mut hostile: Vec<char> = (0u8..=127).map(char::from).collect();
        hostile.extend(['é', '\u{2028}', '\u{85}', '＜', '—']);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let s = rng.string(&hostile, 24);
            let c = cell(&s);
            let row = format!("| a | {c} | b |");
            assert!(!row.contains('\n') && !row.contains('\r'), "{row:?}");
            let cells = split_row(&row);
            assert_eq!(cells.len(), 3, "{s:?} → {row:?} → {cells:?}");
            let want: String =
                s.chars().map(|c| if c.is_control() || c == '\u{2028}' || c == '\u{2029}' { ' ' } else { c }).collect();
            let want = if s.is_empty() { "—".to_string() } else { want.trim().to_string() };
            assert_eq!(shown(&cells[1]).unwrap_or_else(|e| panic!("{s:?}: {e}")), want, "{s:?}");
        }
    }

    #[test]
    fn html_links_and_images_are_text() {
        assert_eq!(text("<img src=x onerror=alert(1)>"), "&lt;img src=x onerror=alert(1)&gt;",);
        assert_eq!(text("![x](http://e/x.png)"), "\\!\\[x\\](http://e/x.png)");
        assert_eq!(text("a|b\nc"), "a\\|b c");
        assert_eq!(text("&amp;"), "&amp;amp;");
        assert_eq!(cell(""), "—");
    }
}
