//! Writing Markdown (CommonMark) that reads back as what was meant: the helpers the
//! providers' rich-text converters share (Jira's ADF and Asana's `html_notes` both render to
//! the same internal Markdown). Parsing is `pulldown-cmark`'s, in the adapters.

/// Prefixes the first line of `s` with `first` and the others with `rest` (list markers and
/// their continuation indent, `> ` for quotes); empty lines get no trailing spaces.
///
/// ```
/// assert_eq!(ordonis_core::markdown::indent_lines("a\n\nb", "- ", "  "), "- a\n\n  b");
/// ```
pub fn indent_lines(s: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if line.is_empty() {
            if i == 0 {
                out.push_str(first.trim_end());
            }
        } else {
            out.push_str(if i == 0 { first } else { rest });
            out.push_str(line);
        }
    }
    out
}
/// The longest run of `ch` in `s` (to pick a code fence longer than any inside).
pub fn longest_run(s: &str, ch: char) -> usize {
    let mut best = 0;
    let mut run = 0;
    for c in s.chars() {
        if c == ch {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}
/// Escapes text so that Markdown reads it back as the same characters. `line_start` says the
/// text begins a line (where `-`, `+`, `=`, `1.` would start a block).
///
/// ```
/// use ordonis_core::markdown::escape_text;
/// assert_eq!(escape_text("1. *x* a_b", true), "1\\. \\*x\\* a\\_b");
/// ```
pub fn escape_text(text: &str, line_start: bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut at_start = line_start;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if at_start {
            // Leading spaces are dropped by Markdown; keep the rest of the line start safe.
            if matches!(c, '-' | '+' | '=') {
                out.push('\\');
                out.push(c);
                i += 1;
                at_start = false;
                continue;
            }
            if c.is_ascii_digit() {
                let mut j = i;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                if j < chars.len() && matches!(chars[j], '.' | ')') {
                    out.extend(&chars[i..j]);
                    out.push('\\');
                    out.push(chars[j]);
                    i = j + 1;
                    at_start = false;
                    continue;
                }
            }
            if c != ' ' {
                at_start = false;
            }
        }
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '~' | '&' | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
        i += 1;
    }
    out
}
/// A link destination as Markdown writes it: `<…>` around one with spaces or angle
/// brackets, parentheses escaped otherwise; a `&` that would start an entity (`&amp;` in
/// the URL itself) is escaped, so that the destination reads back as the same URL.
///
/// ```
/// use ordonis_core::markdown::link_destination;
/// assert_eq!(link_destination("https://e.com/?a=1&b=2"), "https://e.com/?a=1&b=2");
/// assert_eq!(link_destination("https://e.com/?a=&amp;"), "https://e.com/?a=\\&amp;");
/// ```
pub fn link_destination(url: &str) -> String {
    if url.is_empty() {
        return "<>".to_owned();
    }
    if url.contains([' ', '<', '>', '\n']) {
        let inner = url
            .replace('\\', "\\\\")
            .replace('<', "\\<")
            .replace('>', "\\>")
            .replace('\n', " ");
        format!("<{}>", escape_entities(&inner))
    } else {
        escape_entities(
            &url.replace('\\', "\\\\")
                .replace('(', "\\(")
                .replace(')', "\\)"),
        )
    }
}

/// `s` with a backslash before each `&` that starts what Markdown reads as an entity or a
/// numeric character reference (`&amp;`, `&#39;`, `&#x26;`), so it reads back as typed.
pub fn escape_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        if c == '&' && starts_reference(&s[i + 1..]) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `rest` (what follows a `&`) is the body of an entity or character reference.
fn starts_reference(rest: &str) -> bool {
    let Some(end) = rest.find(';') else {
        return false;
    };
    let body = &rest[..end];
    if let Some(num) = body.strip_prefix('#') {
        match num.strip_prefix(['x', 'X']) {
            Some(hex) => (1..=6).contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit()),
            None => (1..=7).contains(&num.len()) && num.chars().all(|c| c.is_ascii_digit()),
        }
    } else {
        body.starts_with(|c: char| c.is_ascii_alphabetic())
            && body.chars().all(|c| c.is_ascii_alphanumeric())
    }
}
/// A code span holding `t`: a fence longer than any backtick run inside, padded where
/// CommonMark would strip or join the content.
pub fn code_span(t: &str) -> String {
    let fence = "`".repeat(longest_run(t, '`') + 1);
    let pad = t.starts_with('`')
        || t.ends_with('`')
        || (t.starts_with(' ') && t.ends_with(' ') && !t.trim().is_empty());
    if pad {
        format!("{fence} {t} {fence}")
    } else {
        format!("{fence}{t}{fence}")
    }
}

/// One step of [`align_blocks`]: how a block of the edited document relates to the current
/// one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aligned {
    /// Current block `i` is unchanged (keep it as it is, byte for byte).
    Keep(usize),
    /// Edited block `j` is new or changed (write it).
    Insert(usize),
    /// Current block `i` is gone or changed (drop it, if nothing in it would be lost).
    Drop(usize),
}

/// Aligns the blocks of a current document with those of its edit, both given as their
/// Markdown, along a longest common subsequence: the steps, in document order, that turn
/// `current` into `edited` while keeping as many blocks as possible. The rich-text merges
/// keep what did not change and refuse to drop what Markdown cannot carry.
///
/// ```
/// use ordonis_core::markdown::{Aligned, align_blocks};
/// let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
/// assert_eq!(
///     align_blocks(&s(&["a", "b", "c"]), &s(&["a", "x", "c"])),
///     [Aligned::Keep(0), Aligned::Insert(1), Aligned::Drop(1), Aligned::Keep(2)]
/// );
/// ```
pub fn align_blocks(current: &[String], edited: &[String]) -> Vec<Aligned> {
    let (n, m) = (current.len(), edited.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if current[i] == edited[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = Vec::with_capacity(n.max(m));
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && current[i] == edited[j] {
            out.push(Aligned::Keep(i));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(Aligned::Insert(j));
            j += 1;
        } else {
            out.push(Aligned::Drop(i));
            i += 1;
        }
    }
    out
}
