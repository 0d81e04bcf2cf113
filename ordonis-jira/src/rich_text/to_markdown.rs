//! ADF -> Markdown: [`adf_to_markdown`], canonical, with readable approximations of what
//! Markdown cannot carry.

use ordonis_core::markdown::{code_span, escape_text, indent_lines, link_destination, longest_run};
use serde_json::Value;

use super::parse::*;
use super::*;

/// Renders an ADF document (or a single node) as canonical Markdown. `null` and non-objects
/// are the empty string.
///
/// ```
/// let doc = serde_json::json!({"type": "doc", "version": 1, "content": [
///     {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Plan"}]},
///     {"type": "paragraph", "content": [
///         {"type": "text", "text": "see "},
///         {"type": "text", "text": "docs", "marks": [{"type": "link", "attrs": {"href": "https://example.com"}}]}
///     ]}
/// ]});
/// assert_eq!(ordonis_jira::rich_text::adf_to_markdown(&doc), "## Plan\n\nsee [docs](https://example.com)");
/// ```
pub fn adf_to_markdown(doc: &Value) -> String {
    if !doc.is_object() {
        return String::new();
    }
    if node_type(doc) == "doc" {
        render_blocks(children(doc), 0)
    } else {
        render_blocks(std::slice::from_ref(doc), 0)
    }
}

/// Renders one top-level block as it renders on its own (the unit [`merge_markdown`] compares).
pub(super) fn block_markdown(block: &Value) -> String {
    render_blocks(std::slice::from_ref(block), 0)
}

/// Blocks separated by a blank line. Two lists of the same kind in a row would merge into
/// one in Markdown, so the second uses the other bullet (`*`) or delimiter (`)`).
pub(super) fn render_blocks(blocks: &[Value], depth: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut prev_list: Option<(&str, bool)> = None;
    for b in blocks {
        let t = node_type(b);
        let alt = match prev_list {
            Some((pt, palt)) if pt == t => !palt,
            _ => false,
        };
        let s = render_block(b, depth, alt);
        prev_list = matches!(t, "bulletList" | "orderedList").then_some((t, alt));
        if !s.is_empty() {
            parts.push(s);
        }
    }
    parts.join("\n\n")
}

pub(super) fn render_block(node: &Value, depth: usize, alt: bool) -> String {
    if depth > MAX_DEPTH {
        return escape_text(&plain_text(node), true);
    }
    match node_type(node) {
        "paragraph" => render_inline(children(node), false),
        "heading" => {
            let level = attr(node, "level")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 6);
            let text = render_inline(children(node), true);
            let hashes = "#".repeat(level as usize);
            if text.is_empty() {
                hashes
            } else {
                format!("{hashes} {text}")
            }
        }
        "codeBlock" => {
            let text: String = children(node)
                .iter()
                .filter_map(|c| str_of(c, "text"))
                .collect();
            let lang = attr(node, "language")
                .and_then(Value::as_str)
                .filter(|l| !l.contains(['`', '\n', ' ']))
                .unwrap_or("");
            let fence = "`".repeat(longest_run(&text, '`').max(2) + 1);
            if text.is_empty() {
                format!("{fence}{lang}\n{fence}")
            } else {
                format!("{fence}{lang}\n{text}\n{fence}")
            }
        }
        "blockquote" => {
            let inner = render_blocks(children(node), depth + 1);
            if inner.is_empty() {
                ">".to_owned()
            } else {
                indent_lines(&inner, "> ", "> ")
                    .split('\n')
                    .map(|l| if l.is_empty() { ">" } else { l })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
        "bulletList" | "orderedList" => render_list(node, depth, alt),
        "rule" => "---".to_owned(),
        "mediaSingle" | "mediaGroup" => children(node)
            .iter()
            .map(render_media)
            .collect::<Vec<_>>()
            .join(" "),
        "media" => render_media(node),
        "table" => children(node)
            .iter()
            .map(|row| {
                children(row)
                    .iter()
                    .map(|cell| escape_text(&plain_text(cell), false))
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => {
            // Panels, expands, layouts, task and decision lists, extensions: their content
            // as blocks (or as text when they hold inline nodes).
            let kids = children(node);
            if kids.iter().any(|c| is_inline(node_type(c))) {
                render_inline(kids, false)
            } else if kids.is_empty() {
                escape_text(&plain_text(node), true)
            } else {
                render_blocks(kids, depth + 1)
            }
        }
    }
}

pub(super) fn is_inline(t: &str) -> bool {
    matches!(
        t,
        "text"
            | "hardBreak"
            | "mention"
            | "emoji"
            | "status"
            | "date"
            | "inlineCard"
            | "mediaInline"
            | "placeholder"
            | "inlineExtension"
    )
}

pub(super) fn render_media(media: &Value) -> String {
    let alt = attr(media, "alt").and_then(Value::as_str).unwrap_or("");
    match attr(media, "type").and_then(Value::as_str) {
        Some("external") => {
            let url = attr(media, "url").and_then(Value::as_str).unwrap_or("");
            format!("![{}]({})", escape_text(alt, false), link_destination(url))
        }
        _ => {
            let id = attr(media, "id").and_then(Value::as_str).unwrap_or("");
            let alt = if alt.is_empty() { "attachment" } else { alt };
            format!(
                "![{}]({})",
                escape_text(alt, false),
                link_destination(&format!("jira-attachment:{id}"))
            )
        }
    }
}

pub(super) fn list_is_loose(node: &Value) -> bool {
    children(node).iter().any(|item| {
        children(item)
            .iter()
            .skip(1)
            .any(|c| !matches!(node_type(c), "bulletList" | "orderedList"))
    })
}

pub(super) fn render_list(node: &Value, depth: usize, alt: bool) -> String {
    let ordered = node_type(node) == "orderedList";
    let start = attr(node, "order").and_then(Value::as_u64).unwrap_or(1);
    let loose = list_is_loose(node);
    let mut items = Vec::new();
    for (i, item) in children(node).iter().enumerate() {
        let marker = if ordered {
            format!(
                "{}{}",
                start.saturating_add(i as u64),
                if alt { ')' } else { '.' }
            )
        } else if alt {
            "*".to_owned()
        } else {
            "-".to_owned()
        };
        let pad = " ".repeat(marker.len() + 1);
        let kids = children(item);
        let body = if loose {
            render_blocks(kids, depth + 1)
        } else {
            // Tight: an item's paragraph and its nested lists on consecutive lines.
            let mut parts: Vec<String> = Vec::new();
            let mut prev: Option<(&str, bool)> = None;
            for c in kids {
                let t = node_type(c);
                let a = match prev {
                    Some((pt, pa)) if pt == t => !pa,
                    _ => false,
                };
                prev = matches!(t, "bulletList" | "orderedList").then_some((t, a));
                let s = render_block(c, depth + 1, a);
                if !s.is_empty() {
                    parts.push(s);
                }
            }
            parts.join("\n")
        };
        items.push(indent_lines(&body, &format!("{marker} "), &pad));
    }
    items.join(if loose { "\n\n" } else { "\n" })
}

/// The text of a node and its descendants (mentions, emoji and status by their text).
pub(super) fn plain_text(node: &Value) -> String {
    let mut out = String::new();
    collect_text(node, &mut out, 0);
    out
}

pub(super) fn collect_text(node: &Value, out: &mut String, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match node_type(node) {
        "text" => out.push_str(str_of(node, "text").unwrap_or("")),
        "hardBreak" => out.push(' '),
        "mention" | "emoji" | "status" | "date" | "inlineCard" => {
            out.push_str(&inline_atom_text(node));
        }
        _ => {
            for (i, c) in children(node).iter().enumerate() {
                if i > 0 && !is_inline(node_type(c)) && !out.ends_with(' ') {
                    out.push(' ');
                }
                collect_text(c, out, depth + 1);
            }
        }
    }
}

/// The readable text of an inline node Markdown has no syntax for.
pub(super) fn inline_atom_text(node: &Value) -> String {
    let text = attr(node, "text").and_then(Value::as_str);
    match node_type(node) {
        "mention" => match text {
            Some(t) if t.starts_with('@') => t.to_owned(),
            Some(t) => format!("@{t}"),
            None => format!(
                "@{}",
                attr(node, "id")
                    .and_then(Value::as_str)
                    .unwrap_or("someone")
            ),
        },
        "emoji" => text
            .or_else(|| attr(node, "shortName").and_then(Value::as_str))
            .unwrap_or("")
            .to_owned(),
        "status" => format!("[{}]", text.unwrap_or("")),
        "date" => attr(node, "timestamp")
            .and_then(|t| match t {
                Value::String(s) => s.parse::<i64>().ok(),
                Value::Number(n) => n.as_i64(),
                _ => None,
            })
            .and_then(|ms| {
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            })
            .map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
            .unwrap_or_default(),
        "inlineCard" => attr(node, "url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        _ => text.unwrap_or("").to_owned(),
    }
}

#[derive(Debug)]
pub(super) enum Piece {
    Text(String),
    Break,
    /// Already rendered Markdown (an approximated inline node).
    Raw(String),
}

#[derive(Debug)]
pub(super) struct Atom {
    piece: Piece,
    marks: Vec<MdMark>,
}

pub(super) fn render_inline(nodes: &[Value], in_heading: bool) -> String {
    // 1. Atoms with the marks Markdown can express.
    let mut atoms: Vec<Atom> = Vec::new();
    for n in nodes {
        let marks = md_marks(n);
        let piece = match node_type(n) {
            "text" => Piece::Text(str_of(n, "text").unwrap_or("").replace(['\n', '\r'], " ")),
            "hardBreak" if in_heading => Piece::Text(" ".to_owned()),
            "hardBreak" => Piece::Break,
            "mention" | "emoji" | "status" | "date" => Piece::Text(inline_atom_text(n)),
            "inlineCard" => {
                let url = inline_atom_text(n);
                Piece::Raw(format!(
                    "[{}]({})",
                    escape_text(&url, false),
                    link_destination(&url)
                ))
            }
            _ => Piece::Text(plain_text(n)),
        };
        let marks = if matches!(piece, Piece::Break) {
            Vec::new()
        } else {
            marks
        };
        atoms.push(Atom { piece, marks });
    }
    // 2. Whitespace at the edge of a flanking mark moves outside it.
    let mut split: Vec<Atom> = Vec::new();
    for i in 0..atoms.len() {
        let prev = i
            .checked_sub(1)
            .and_then(|p| atoms.get(p))
            .map(|a| &a.marks);
        let next = atoms.get(i + 1).map(|a| &a.marks);
        let a = &atoms[i];
        let Piece::Text(t) = &a.piece else {
            split.push(Atom {
                piece: match &a.piece {
                    Piece::Break => Piece::Break,
                    Piece::Raw(r) => Piece::Raw(r.clone()),
                    Piece::Text(_) => Piece::Raw(String::new()),
                },
                marks: a.marks.clone(),
            });
            continue;
        };
        if a.marks.contains(&MdMark::Code) || !a.marks.iter().any(MdMark::flanking) {
            split.push(Atom {
                piece: Piece::Text(t.clone()),
                marks: a.marks.clone(),
            });
            continue;
        }
        let keep = |other: Option<&Vec<MdMark>>| -> Vec<MdMark> {
            a.marks
                .iter()
                .filter(|m| !m.flanking() || other.is_some_and(|o| o.contains(m)))
                .cloned()
                .collect()
        };
        let trimmed_start = t.trim_start();
        let lead = &t[..t.len() - trimmed_start.len()];
        let core = trimmed_start.trim_end();
        let trail = &trimmed_start[core.len()..];
        if !lead.is_empty() {
            split.push(Atom {
                piece: Piece::Text(lead.to_owned()),
                marks: keep(prev),
            });
        }
        if !core.is_empty() {
            split.push(Atom {
                piece: Piece::Text(core.to_owned()),
                marks: a.marks.clone(),
            });
        }
        if !trail.is_empty() {
            split.push(Atom {
                piece: Piece::Text(trail.to_owned()),
                marks: keep(next),
            });
        }
    }
    // 3. Merge neighbours with the same marks.
    let mut merged: Vec<Atom> = Vec::new();
    for a in split {
        if let (Some(last), Piece::Text(t)) = (merged.last_mut(), &a.piece)
            && last.marks == a.marks
            && let Piece::Text(lt) = &mut last.piece
        {
            lt.push_str(t);
            continue;
        }
        merged.push(a);
    }
    // Markdown cannot start or end a paragraph with a line break.
    while merged
        .first()
        .is_some_and(|a| matches!(a.piece, Piece::Break))
    {
        merged.remove(0);
    }
    while merged
        .last()
        .is_some_and(|a| matches!(a.piece, Piece::Break))
    {
        merged.pop();
    }
    // 4. Emit, opening and closing marks as a stack.
    let mut out = String::new();
    let mut after_break = false;
    let mut open: Vec<MdMark> = Vec::new();
    let mut line_start = true;
    for a in &merged {
        // Marks already open stay open (outermost), new ones nest inside in rank order.
        let wanted: Vec<&MdMark> = a.marks.iter().filter(|m| **m != MdMark::Code).collect();
        let mut target: Vec<MdMark> = open
            .iter()
            .take_while(|m| wanted.contains(m))
            .cloned()
            .collect();
        for m in wanted {
            if !target.contains(m) {
                target.push(m.clone());
            }
        }
        let common = open
            .iter()
            .zip(target.iter())
            .take_while(|(x, y)| x == y)
            .count();
        while open.len() > common {
            if let Some(m) = open.pop() {
                out.push_str(&m.close());
            }
        }
        for m in &target[common..] {
            out.push_str(m.open());
            open.push(m.clone());
            line_start = false;
        }
        let this_break = matches!(a.piece, Piece::Break);
        match &a.piece {
            // A second break in a row needs the explicit (backslash) form.
            Piece::Break if after_break => {
                out.push_str("\\\n");
                line_start = true;
            }
            Piece::Break => {
                out.push('\n');
                line_start = true;
            }
            Piece::Raw(r) => {
                out.push_str(r);
                line_start = false;
            }
            Piece::Text(t) if a.marks.contains(&MdMark::Code) => {
                out.push_str(&code_span(t));
                line_start = false;
            }
            Piece::Text(t) => {
                out.push_str(&escape_text(t, line_start));
                if !t.trim().is_empty() {
                    line_start = false;
                }
            }
        }
        after_break = this_break;
    }
    while let Some(m) = open.pop() {
        out.push_str(&m.close());
    }
    // Markdown drops spaces at the ends of a paragraph's lines.
    out.split('\n')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
}
