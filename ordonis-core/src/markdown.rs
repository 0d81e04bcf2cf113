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
/// Markdown, along a longest common subsequence (`similar`'s LCS diff): the steps, in
/// document order, that turn `current` into `edited` while keeping as many blocks as
/// possible. A replaced run lists its new blocks before the dropped ones.
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
    use similar::{Algorithm, DiffOp, capture_diff_slices};
    let mut out = Vec::with_capacity(current.len().max(edited.len()));
    for op in capture_diff_slices(Algorithm::Lcs, current, edited) {
        match op {
            DiffOp::Equal { old_index, len, .. } => {
                out.extend((old_index..old_index + len).map(Aligned::Keep));
            }
            DiffOp::Delete {
                old_index, old_len, ..
            } => out.extend((old_index..old_index + old_len).map(Aligned::Drop)),
            DiffOp::Insert {
                new_index, new_len, ..
            } => out.extend((new_index..new_index + new_len).map(Aligned::Insert)),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                out.extend((new_index..new_index + new_len).map(Aligned::Insert));
                out.extend((old_index..old_index + old_len).map(Aligned::Drop));
            }
        }
    }
    out
}

/// A Markdown edit merged into a provider's rich-text document `D` (Jira's ADF, Asana's
/// `html_notes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merge<D> {
    /// The document to write (unchanged blocks are the original ones, byte for byte).
    Write(D),
    /// The document already says this: nothing to write.
    Unchanged,
    /// The edit would change or remove content Markdown cannot carry, or could not be
    /// converted: the reason, for the person who made it.
    Refused(String),
}

impl<D> Merge<D> {
    /// The document of a `Write` turned into another merge; `Unchanged` and `Refused` pass.
    pub fn and_then<E>(self, f: impl FnOnce(D) -> Merge<E>) -> Merge<E> {
        match self {
            Merge::Write(d) => f(d),
            Merge::Unchanged => Merge::Unchanged,
            Merge::Refused(r) => Merge::Refused(r),
        }
    }
}

/// Where a block of a merged document comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockFrom {
    /// Block `i` of the current document, kept as it is.
    Current(usize),
    /// Block `j` of the edit, converted from its Markdown.
    Edited(usize),
}

/// What a rich-text document is called in a refusal: "the edit would change or remove
/// content of `{document}` that Markdown cannot carry: …; edit those parts in `{provider}`".
#[derive(Clone, Copy, Debug)]
pub struct DocumentName<'a> {
    /// The document, e.g. "Jira's description".
    pub document: &'a str,
    /// Where its uncarried parts can be edited, e.g. "Jira".
    pub provider: &'a str,
}

/// Merges an edit into a document by top-level block, both given as their blocks' Markdown.
/// A block whose Markdown is unchanged is kept; new and changed blocks come from the edit.
/// When a current block holding something Markdown cannot carry (`uncarried(i)` names it:
/// "a mention", "an attachment") would be changed or removed, the edit is refused, naming
/// each such block. Nothing inserted or dropped is [`Merge::Unchanged`].
///
/// ```
/// use ordonis_core::markdown::{BlockFrom, DocumentName, Merge, merge_blocks};
/// let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
/// let name = DocumentName { document: "the notes", provider: "Example" };
/// let current = s(&["intro", "@Ann", "outro"]);
/// let mention = |i: usize| if i == 1 { vec!["a mention".to_string()] } else { vec![] };
/// // Editing the outro keeps the intro and the mention's block as they are.
/// assert_eq!(
///     merge_blocks(&current, &s(&["intro", "@Ann", "the end"]), mention, name),
///     Merge::Write(vec![BlockFrom::Current(0), BlockFrom::Current(1), BlockFrom::Edited(2)])
/// );
/// // Removing the mention is refused.
/// assert!(matches!(
///     merge_blocks(&current, &s(&["intro", "outro"]), mention, name),
///     Merge::Refused(r) if r.contains("block 2 (a mention)")
/// ));
/// assert_eq!(merge_blocks(&current, &current, mention, name), Merge::Unchanged);
/// ```
pub fn merge_blocks(
    current: &[String],
    edited: &[String],
    uncarried: impl Fn(usize) -> Vec<String>,
    name: DocumentName<'_>,
) -> Merge<Vec<BlockFrom>> {
    let mut out = Vec::with_capacity(edited.len());
    let mut lost: Vec<String> = Vec::new();
    let mut changed = false;
    for step in align_blocks(current, edited) {
        changed |= !matches!(step, Aligned::Keep(_));
        match step {
            Aligned::Keep(i) => out.push(BlockFrom::Current(i)),
            Aligned::Insert(j) => out.push(BlockFrom::Edited(j)),
            Aligned::Drop(i) => {
                let what = uncarried(i);
                if !what.is_empty() {
                    lost.push(format!("block {} ({})", i + 1, what.join(", ")));
                }
            }
        }
    }
    if !lost.is_empty() {
        return Merge::Refused(format!(
            "the edit would change or remove content of {} that Markdown cannot carry: {}; \
             edit those parts in {}",
            name.document,
            lost.join("; "),
            name.provider
        ));
    }
    if !changed {
        return Merge::Unchanged;
    }
    Merge::Write(out)
}
