//! Atlassian Document Format (ADF, Jira REST v3 rich text) <-> Markdown (CommonMark), the
//! internal form of a task's description.
//!
//! Hand-written over `pulldown-cmark` (which parses the Markdown side): the ADF crates on
//! crates.io are young and cover little of the schema, and what sync needs beyond a plain
//! conversion is specific to it: a canonical Markdown output (so that echoes compare equal),
//! and knowing which ADF nodes Markdown cannot carry so that they are never silently dropped.
//!
//! - [`adf_to_markdown`] renders headings, paragraphs, emphasis, strong, strike-through, inline
//!   code, code blocks, (nested) bullet and ordered lists, links, block quotes, rules and hard
//!   breaks exactly; nodes Markdown cannot carry (media, mentions, emoji, status lozenges,
//!   dates, cards, panels, tables, …) and marks it has no syntax for (underline, colour, …)
//!   are rendered as readable approximations.
//! - [`markdown_to_adf`] is the inverse for everything [`adf_to_markdown`] renders exactly:
//!   `markdown_to_adf(adf_to_markdown(markdown_to_adf(md))) == markdown_to_adf(md)`.
//! - [`merge_markdown`] writes a Markdown edit into an existing ADF document block by block:
//!   top-level blocks whose Markdown did not change are kept as they were (byte-identical
//!   JSON, media and mentions included); a block holding something Markdown cannot carry is
//!   never replaced or removed: the edit is refused with the reason instead.
//!
//! Known limit: marks are rendered as a stack, so a document whose marks overlap without
//! nesting (emphasis that starts inside a link and ends after it), or whose delimiters touch
//! punctuation on the wrong side, can render to Markdown that reads back with the emphasis
//! elsewhere. The text always survives; such blocks come from Jira's editor rarely, and an
//! untouched block keeps its original ADF in a merge anyway.

use ordonis_core::markdown::{
    Aligned, align_blocks, code_span, escape_entities, escape_text, indent_lines, link_destination,
    longest_run,
};
use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde_json::{Map, Value, json};

/// Deepest nesting rendered or parsed; deeper content is flattened (guards the recursion).
const MAX_DEPTH: usize = 48;

/// Why Markdown could not be converted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdfError {
    /// The conversion ended without an ADF document.
    #[error("the Markdown did not convert to an ADF document")]
    NoDocument,
}

// ---------------------------------------------------------------------------------------------
// ADF -> Markdown
// ---------------------------------------------------------------------------------------------

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn node_type(v: &Value) -> &str {
    str_of(v, "type").unwrap_or("")
}

fn children(node: &Value) -> &[Value] {
    node.get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn attr<'a>(node: &'a Value, key: &str) -> Option<&'a Value> {
    node.get("attrs").and_then(|a| a.get(key))
}

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
/// assert_eq!(ordonis_jira::adf::adf_to_markdown(&doc), "## Plan\n\nsee [docs](https://example.com)");
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
fn block_markdown(block: &Value) -> String {
    render_blocks(std::slice::from_ref(block), 0)
}

/// Blocks separated by a blank line. Two lists of the same kind in a row would merge into
/// one in Markdown, so the second uses the other bullet (`*`) or delimiter (`)`).
fn render_blocks(blocks: &[Value], depth: usize) -> String {
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

fn render_block(node: &Value, depth: usize, alt: bool) -> String {
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

fn is_inline(t: &str) -> bool {
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

fn render_media(media: &Value) -> String {
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

fn list_is_loose(node: &Value) -> bool {
    children(node).iter().any(|item| {
        children(item)
            .iter()
            .skip(1)
            .any(|c| !matches!(node_type(c), "bulletList" | "orderedList"))
    })
}

fn render_list(node: &Value, depth: usize, alt: bool) -> String {
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
fn plain_text(node: &Value) -> String {
    let mut out = String::new();
    collect_text(node, &mut out, 0);
    out
}

fn collect_text(node: &Value, out: &mut String, depth: usize) {
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
fn inline_atom_text(node: &Value) -> String {
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

/// The marks Markdown has syntax for, in nesting order (outermost first).
#[derive(Clone, Debug, PartialEq, Eq)]
enum MdMark {
    Link { href: String, title: String },
    Strong,
    Em,
    Strike,
    Code,
}

impl MdMark {
    fn rank(&self) -> u8 {
        match self {
            MdMark::Link { .. } => 0,
            MdMark::Strong => 1,
            MdMark::Em => 2,
            MdMark::Strike => 3,
            MdMark::Code => 4,
        }
    }
    fn open(&self) -> &'static str {
        match self {
            MdMark::Link { .. } => "[",
            MdMark::Strong => "**",
            MdMark::Em => "*",
            MdMark::Strike => "~~",
            MdMark::Code => "",
        }
    }
    fn close(&self) -> String {
        match self {
            MdMark::Link { href, title } => {
                if title.is_empty() {
                    format!("]({})", link_destination(href))
                } else {
                    format!(
                        "]({} \"{}\")",
                        link_destination(href),
                        escape_entities(&title.replace('\\', "\\\\").replace('"', "\\\""))
                    )
                }
            }
            MdMark::Strong => "**".to_owned(),
            MdMark::Em => "*".to_owned(),
            MdMark::Strike => "~~".to_owned(),
            MdMark::Code => String::new(),
        }
    }
    /// Delimiter runs next to whitespace do not open or close: such marks give the
    /// whitespace to the neighbour.
    fn flanking(&self) -> bool {
        matches!(self, MdMark::Strong | MdMark::Em | MdMark::Strike)
    }
}

fn md_marks(node: &Value) -> Vec<MdMark> {
    let mut marks: Vec<MdMark> = node
        .get("marks")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| match node_type(m) {
                    "link" => Some(MdMark::Link {
                        href: attr(m, "href")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        title: attr(m, "title")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    }),
                    "strong" => Some(MdMark::Strong),
                    "em" => Some(MdMark::Em),
                    "strike" => Some(MdMark::Strike),
                    "code" => Some(MdMark::Code),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    marks.sort_by_key(MdMark::rank);
    marks.dedup();
    marks
}

#[derive(Debug)]
enum Piece {
    Text(String),
    Break,
    /// Already rendered Markdown (an approximated inline node).
    Raw(String),
}

#[derive(Debug)]
struct Atom {
    piece: Piece,
    marks: Vec<MdMark>,
}

fn render_inline(nodes: &[Value], in_heading: bool) -> String {
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

// ---------------------------------------------------------------------------------------------
// Markdown -> ADF
// ---------------------------------------------------------------------------------------------

struct Frame {
    node: Map<String, Value>,
    content: Vec<Value>,
    /// A paragraph opened for a tight list item's text (closed by the next block).
    implicit: bool,
}

impl Frame {
    fn new(node: Value) -> Self {
        let node = match node {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        Self {
            node,
            content: Vec::new(),
            implicit: false,
        }
    }
    fn kind(&self) -> &str {
        self.node.get("type").and_then(Value::as_str).unwrap_or("")
    }
    fn finish(mut self) -> Value {
        if self.kind() == "paragraph" {
            // An image alone in its paragraph is a media block.
            if let [only] = self.content.as_slice()
                && node_type(only) == "__image"
            {
                let url = str_of(only, "url").unwrap_or("").to_owned();
                let alt = str_of(only, "alt").unwrap_or("").to_owned();
                let mut attrs = json!({"type": "external", "url": url});
                if !alt.is_empty() {
                    attrs["alt"] = Value::String(alt);
                }
                return json!({"type": "mediaSingle", "attrs": {"layout": "center"},
                    "content": [{"type": "media", "attrs": attrs}]});
            }
        }
        self.content = self.content.into_iter().map(image_as_link).collect();
        if matches!(self.kind(), "paragraph" | "heading") {
            // Markdown cannot start or end a paragraph with a line break.
            while self
                .content
                .first()
                .is_some_and(|c| node_type(c) == "hardBreak")
            {
                self.content.remove(0);
            }
            while self
                .content
                .last()
                .is_some_and(|c| node_type(c) == "hardBreak")
            {
                self.content.pop();
            }
            trim_trailing_spaces(&mut self.content);
        }
        if self.kind() != "rule" {
            self.node
                .insert("content".into(), Value::Array(self.content));
        }
        Value::Object(self.node)
    }
}

/// An inline image among text is written as a link to it (ADF media cannot sit in text).
fn image_as_link(v: Value) -> Value {
    if node_type(&v) != "__image" {
        return v;
    }
    let url = str_of(&v, "url").unwrap_or("").to_owned();
    let alt = str_of(&v, "alt").unwrap_or("").to_owned();
    let text = if alt.is_empty() { url.clone() } else { alt };
    json!({"type": "text", "text": text, "marks": [{"type": "link", "attrs": {"href": url}}]})
}

fn adf_mark(m: &MdMark) -> Value {
    match m {
        MdMark::Link { href, title } => {
            let mut attrs = json!({"href": href});
            if !title.is_empty() {
                attrs["title"] = Value::String(title.clone());
            }
            json!({"type": "link", "attrs": attrs})
        }
        MdMark::Strong => json!({"type": "strong"}),
        MdMark::Em => json!({"type": "em"}),
        MdMark::Strike => json!({"type": "strike"}),
        MdMark::Code => json!({"type": "code"}),
    }
}

struct Builder {
    stack: Vec<Frame>,
    marks: Vec<MdMark>,
    /// Inside an image: its URL and the alt text collected so far.
    image: Option<(String, String)>,
    code: Option<String>,
}

impl Builder {
    fn top(&mut self) -> &mut Frame {
        if self.stack.is_empty() {
            self.stack
                .push(Frame::new(json!({"type": "doc", "version": 1})));
        }
        let last = self.stack.len() - 1;
        &mut self.stack[last]
    }

    fn close_top(&mut self) {
        if self.stack.len() <= 1 {
            return;
        }
        if let Some(f) = self.stack.pop() {
            let v = f.finish();
            // Empty paragraphs (a tight item's vanished text) carry nothing.
            if node_type(&v) == "paragraph" && children(&v).is_empty() {
                return;
            }
            self.top().content.push(v);
        }
    }

    fn close_implicit(&mut self) {
        if self.stack.last().is_some_and(|f| f.implicit) {
            self.close_top();
        }
    }

    fn push_block(&mut self, node: Value) {
        self.close_implicit();
        self.stack.push(Frame::new(node));
    }

    /// The frame inline content goes into, opening a paragraph in a tight list item.
    fn inline_target(&mut self) -> &mut Frame {
        let kind = self.top().kind().to_owned();
        if !matches!(kind.as_str(), "paragraph" | "heading") {
            let mut f = Frame::new(json!({"type": "paragraph"}));
            f.implicit = true;
            self.stack.push(f);
        }
        self.top()
    }

    fn push_inline(&mut self, mut node: Value) {
        let target = self.inline_target();
        // Markdown cannot keep spaces at the start of a line.
        let line_start = target
            .content
            .last()
            .is_none_or(|l| node_type(l) == "hardBreak");
        if line_start
            && node_type(&node) == "text"
            && node.get("marks").is_none()
            && let Some(Value::String(t)) = node.get_mut("text")
        {
            let trimmed = t.trim_start_matches([' ', '\t']).to_owned();
            if trimmed.is_empty() {
                return;
            }
            *t = trimmed;
        }
        if node_type(&node) == "hardBreak" {
            // Markdown cannot keep spaces before a line break.
            trim_trailing_spaces(&mut target.content);
        }
        if let (Some(last), Some(t)) = (target.content.last_mut(), str_of(&node, "text"))
            && node_type(last) == "text"
            && last.get("marks") == node.get("marks")
            && let Some(Value::String(lt)) = last.get_mut("text")
        {
            lt.push_str(t);
            return;
        }
        target.content.push(node);
    }

    /// Text that may span lines (inline HTML such as `<a\nb>`): its line ends are breaks, as
    /// text cannot hold them.
    fn text_lines(&mut self, t: &str) {
        for (i, line) in t.split('\n').enumerate() {
            if i > 0 {
                self.push_inline(json!({"type": "hardBreak"}));
            }
            self.text(line, false);
        }
    }

    fn text(&mut self, t: &str, extra_code: bool) {
        if t.is_empty() {
            return;
        }
        if let Some((_, alt)) = &mut self.image {
            alt.push_str(t);
            return;
        }
        let mut marks = self.marks.clone();
        if extra_code {
            marks.push(MdMark::Code);
        }
        marks.sort_by_key(MdMark::rank);
        marks.dedup();
        let mut node = json!({"type": "text", "text": t});
        if !marks.is_empty() {
            node["marks"] = Value::Array(marks.iter().map(adf_mark).collect());
        }
        self.push_inline(node);
    }
}

fn heading_level(l: HeadingLevel) -> u64 {
    match l {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// Converts CommonMark (plus `~~strike-through~~`) to an ADF document. Single line breaks are
/// kept as hard breaks; raw HTML is kept as text; an image alone in a paragraph becomes an
/// external media block, one among text a link.
///
/// ```
/// let doc = ordonis_jira::adf::markdown_to_adf("- a\n  - b");
/// assert_eq!(doc["content"][0]["type"], "bulletList");
/// assert_eq!(ordonis_jira::adf::adf_to_markdown(&doc), "- a\n  - b");
/// ```
pub fn markdown_to_adf(markdown: &str) -> Value {
    // The builder always ends with its document: the empty one is never reached.
    build_adf(markdown).unwrap_or_else(|_| json!({"type": "doc", "version": 1, "content": []}))
}

/// [`markdown_to_adf`], with the (unreachable) lack of a document as an error.
fn build_adf(markdown: &str) -> Result<Value, AdfError> {
    let mut b = Builder {
        stack: vec![Frame::new(json!({"type": "doc", "version": 1}))],
        marks: Vec::new(),
        image: None,
        code: None,
    };
    let parser = Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH);
    for event in parser {
        if b.stack.len() > MAX_DEPTH {
            // Too deep: keep the text, flat.
            if let Event::Text(t) = &event {
                b.text(t, false);
            }
            if let Event::End(_) = &event {
                b.close_top();
            }
            continue;
        }
        match event {
            Event::Start(tag) => match tag {
                Tag::Paragraph => b.push_block(json!({"type": "paragraph"})),
                Tag::Heading { level, .. } => b.push_block(
                    json!({"type": "heading", "attrs": {"level": heading_level(level)}}),
                ),
                Tag::BlockQuote(_) => b.push_block(json!({"type": "blockquote"})),
                Tag::CodeBlock(kind) => {
                    let mut node = json!({"type": "codeBlock"});
                    if let CodeBlockKind::Fenced(lang) = kind {
                        let lang = lang.split_whitespace().next().unwrap_or("");
                        if !lang.is_empty() {
                            node["attrs"] = json!({"language": lang});
                        }
                    }
                    b.push_block(node);
                    b.code = Some(String::new());
                }
                // Jira's editor always writes `order`.
                Tag::List(Some(start)) => {
                    b.push_block(json!({"type": "orderedList", "attrs": {"order": start}}));
                }
                Tag::List(None) => b.push_block(json!({"type": "bulletList"})),
                Tag::Item => b.push_block(json!({"type": "listItem"})),
                Tag::Emphasis => b.marks.push(MdMark::Em),
                Tag::Strong => b.marks.push(MdMark::Strong),
                Tag::Strikethrough => b.marks.push(MdMark::Strike),
                Tag::Link {
                    dest_url, title, ..
                } => b.marks.push(MdMark::Link {
                    href: dest_url.to_string(),
                    title: title.to_string(),
                }),
                Tag::Image { dest_url, .. } => {
                    b.image = Some((dest_url.to_string(), String::new()));
                }
                // HTML blocks become paragraphs of their text; the rest is not enabled.
                Tag::HtmlBlock => b.push_block(json!({"type": "paragraph"})),
                _ => {}
            },
            Event::End(end) => match end {
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::BlockQuote(_)
                | TagEnd::List(_)
                | TagEnd::Item
                | TagEnd::HtmlBlock => {
                    b.close_implicit();
                    b.close_top();
                }
                TagEnd::CodeBlock => {
                    let mut code = b.code.take().unwrap_or_default();
                    if code.ends_with('\n') {
                        code.pop();
                    }
                    if !code.is_empty() {
                        b.top().content.push(json!({"type": "text", "text": code}));
                    }
                    b.close_top();
                }
                TagEnd::Emphasis => pop_mark(&mut b.marks, &MdMark::Em),
                TagEnd::Strong => pop_mark(&mut b.marks, &MdMark::Strong),
                TagEnd::Strikethrough => pop_mark(&mut b.marks, &MdMark::Strike),
                TagEnd::Link => {
                    if let Some(pos) = b
                        .marks
                        .iter()
                        .rposition(|m| matches!(m, MdMark::Link { .. }))
                    {
                        b.marks.remove(pos);
                    }
                }
                TagEnd::Image => {
                    if let Some((url, alt)) = b.image.take() {
                        b.push_inline(json!({"type": "__image", "url": url, "alt": alt}));
                    }
                }
                _ => {}
            },
            Event::Text(t) => {
                if let Some(code) = &mut b.code {
                    code.push_str(&t);
                } else if b.stack.last().is_some_and(|f| f.kind() == "paragraph")
                    && t.ends_with('\n')
                    && b.image.is_none()
                {
                    // An HTML block's lines: keep them as text with breaks.
                    b.text(t.trim_end_matches('\n'), false);
                } else {
                    b.text(&t, false);
                }
            }
            Event::Code(t) => b.text(&t, true),
            Event::Html(t) | Event::InlineHtml(t) => {
                if b.stack.last().is_some_and(|f| f.kind() == "paragraph") && t.ends_with('\n') {
                    let t = t.trim_end_matches('\n').to_owned();
                    if !b.top().content.is_empty() {
                        b.push_inline(json!({"type": "hardBreak"}));
                    }
                    b.text_lines(&t);
                } else {
                    b.text_lines(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, alt)) = &mut b.image {
                    alt.push(' ');
                } else {
                    b.push_inline(json!({"type": "hardBreak"}));
                }
            }
            Event::Rule => {
                b.close_implicit();
                b.top().content.push(json!({"type": "rule"}));
            }
            _ => {}
        }
    }
    while b.stack.len() > 1 {
        b.close_top();
    }
    let doc = b.stack.pop().ok_or(AdfError::NoDocument)?.finish();
    if node_type(&doc) == "doc" {
        Ok(doc)
    } else {
        Err(AdfError::NoDocument)
    }
}

/// Removes spaces at the end of the last text node (and the node, when nothing is left).
/// Code and link text keep theirs: a closing delimiter follows them in Markdown.
fn trim_trailing_spaces(content: &mut Vec<Value>) {
    while let Some(last) = content.last_mut() {
        if node_type(last) != "text"
            || last.get("marks").is_some_and(|m| {
                m.as_array()
                    .is_some_and(|a| a.iter().any(|x| matches!(node_type(x), "code" | "link")))
            })
        {
            return;
        }
        let Some(Value::String(t)) = last.get_mut("text") else {
            return;
        };
        let trimmed = t.trim_end_matches([' ', '\t']).len();
        if trimmed == t.len() {
            return;
        }
        t.truncate(trimmed);
        if t.is_empty() {
            content.pop();
        } else {
            return;
        }
    }
}

fn pop_mark(marks: &mut Vec<MdMark>, m: &MdMark) {
    if let Some(pos) = marks.iter().rposition(|x| x == m) {
        marks.remove(pos);
    }
}

// ---------------------------------------------------------------------------------------------
// Loss detection and merging
// ---------------------------------------------------------------------------------------------

const CARRIED_NODES: [&str; 13] = [
    "doc",
    "paragraph",
    "heading",
    "text",
    "hardBreak",
    "codeBlock",
    "blockquote",
    "bulletList",
    "orderedList",
    "listItem",
    "rule",
    // External images are carried as `![alt](url)`; file media are not (see below).
    "mediaSingle",
    "media",
];

const CARRIED_MARKS: [&str; 5] = ["strong", "em", "strike", "code", "link"];

/// What in `node` Markdown cannot carry, as readable names ("an image (media)", "a mention"),
/// deduplicated, in document order. Empty when the node converts without loss.
pub fn uncarried(node: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_uncarried(node, &mut out, 0);
    out
}

fn describe(t: &str) -> String {
    match t {
        "media" | "mediaSingle" | "mediaGroup" | "mediaInline" => "an attachment (media)".into(),
        "mention" => "a mention".into(),
        "emoji" => "an emoji".into(),
        "status" => "a status lozenge".into(),
        "panel" => "a panel".into(),
        "table" | "tableRow" | "tableCell" | "tableHeader" => "a table".into(),
        "date" => "a date".into(),
        "inlineCard" | "blockCard" | "embedCard" => "a smart link card".into(),
        other => format!("a {other} node"),
    }
}

fn collect_uncarried(node: &Value, out: &mut Vec<String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let t = node_type(node);
    let carried = CARRIED_NODES.contains(&t)
        && !(t == "media" && attr(node, "type").and_then(Value::as_str) != Some("external"));
    if !carried {
        let d = describe(t);
        if !out.contains(&d) {
            out.push(d);
        }
    }
    if let Some(marks) = node.get("marks").and_then(Value::as_array) {
        for m in marks {
            let mt = node_type(m);
            if !CARRIED_MARKS.contains(&mt) {
                let d = format!("{mt} formatting");
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
    }
    for c in children(node) {
        collect_uncarried(c, out, depth + 1);
    }
}

/// A Markdown edit merged into an existing ADF description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merge {
    /// The document to write (unchanged blocks are the original JSON values).
    Write(Value),
    /// The document already says this: nothing to write.
    Unchanged,
    /// The edit would replace or remove content Markdown cannot carry.
    Refused(String),
}

/// Merges `markdown` into `current` (the issue's ADF description, or `null`) by top-level
/// block: a block whose Markdown is unchanged keeps its original ADF; new and changed blocks
/// come from the Markdown. When a block holding content Markdown cannot carry (a file
/// attachment, a mention, a table, …) would be changed or removed, the edit is refused, naming
/// what would be lost.
pub fn merge_markdown(current: &Value, markdown: &str) -> Merge {
    let old: Vec<Value> = if current.is_object() {
        children(current).to_vec()
    } else {
        Vec::new()
    };
    let new_doc = match build_adf(markdown) {
        Ok(doc) => doc,
        Err(e) => return Merge::Refused(format!("the Markdown could not be converted ({e})")),
    };
    let new: Vec<Value> = children(&new_doc).to_vec();
    // An approximated block (a mention as `@Ann`) is compared in the form its Markdown reads
    // back as, which is what an untouched copy of it in `markdown` converts to.
    let old_md = old
        .iter()
        .map(|b| normalize_markdown(&block_markdown(b)))
        .collect::<Result<Vec<String>, _>>();
    let old_md = match old_md {
        Ok(md) => md,
        Err(e) => {
            return Merge::Refused(format!(
                "Jira's description could not be compared with the edit ({e}); edit it in Jira"
            ));
        }
    };
    let new_md: Vec<String> = new.iter().map(block_markdown).collect();

    let mut out: Vec<Value> = Vec::new();
    let mut lost: Vec<String> = Vec::new();
    let mut changed = false;
    for step in align_blocks(&old_md, &new_md) {
        match step {
            Aligned::Keep(i) => out.push(old[i].clone()),
            Aligned::Insert(j) => {
                out.push(new[j].clone());
                changed = true;
            }
            Aligned::Drop(i) => {
                let what = uncarried(&old[i]);
                if !what.is_empty() {
                    lost.push(format!("block {} ({})", i + 1, what.join(", ")));
                }
                changed = true;
            }
        }
    }
    if !lost.is_empty() {
        return Merge::Refused(format!(
            "the edit would change or remove content of Jira's description that Markdown \
             cannot carry: {}; edit those parts in Jira",
            lost.join("; ")
        ));
    }
    if !changed && current.is_object() {
        return Merge::Unchanged;
    }
    if out.is_empty() && !current.is_object() {
        return Merge::Unchanged;
    }
    Merge::Write(json!({"type": "doc", "version": 1, "content": out}))
}

/// The Markdown Jira will report for `markdown` once written: its canonical form. An error
/// when the Markdown does not convert (never an empty description in its place).
pub fn normalize_markdown(markdown: &str) -> Result<String, AdfError> {
    Ok(adf_to_markdown(&build_adf(markdown)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn round(md: &str) -> String {
        normalize_markdown(md).unwrap()
    }

    #[test]
    fn blocks_round_trip() {
        for md in [
            "# Title",
            "## Sub *em* **strong** ~~gone~~ `code`",
            "para one\nline two\n\npara three",
            "- a\n- b\n  - nested\n    1. deep\n- c",
            "3. three\n4. four",
            "> quoted\n>\n> - in list",
            "```rust\nfn main() {}\n```",
            "see [docs](https://example.com/a_(b)) and [t](u \"title\")",
            "---",
            "- a\n\n* b",
            "a \\* not emphasis \\# nor heading",
            "**bold *both***",
            "![diagram](https://example.com/d.png)",
        ] {
            let once = round(md);
            assert_eq!(round(&once), once, "stable: {md:?} -> {once:?}");
            assert_eq!(
                markdown_to_adf(&once),
                markdown_to_adf(md),
                "same document: {md:?} -> {once:?}"
            );
        }
        assert_eq!(round("*a*"), "*a*");
        assert_eq!(round("_a_"), "*a*");
        assert_eq!(round("- a\n\n* b"), "- a\n\n* b");
    }

    #[test]
    fn escapes_text() {
        let doc = json!({"type":"doc","version":1,"content":[
            {"type":"paragraph","content":[{"type":"text","text":"1. not a list *x* [y] #z a_b"}]}]});
        let md = adf_to_markdown(&doc);
        assert_eq!(md, "1\\. not a list \\*x\\* \\[y\\] \\#z a\\_b");
        assert_eq!(markdown_to_adf(&md), doc);
    }

    #[test]
    fn refuses_to_drop_a_mention() {
        let doc = json!({"type":"doc","version":1,"content":[
            {"type":"paragraph","content":[{"type":"text","text":"ping "},{"type":"mention","attrs":{"id":"acc-1","text":"@Ann"}}]},
            {"type":"paragraph","content":[{"type":"text","text":"plain"}]}]});
        let md = adf_to_markdown(&doc);
        assert_eq!(md, "ping @Ann\n\nplain");
        // Changing the plain paragraph keeps the mention's block as it was.
        match merge_markdown(&doc, "ping @Ann\n\nplain, edited") {
            Merge::Write(out) => {
                assert_eq!(out["content"][0], doc["content"][0]);
                assert_eq!(out["content"][1]["content"][0]["text"], "plain, edited");
            }
            other => panic!("{other:?}"),
        }
        // Changing the mention's block is refused.
        match merge_markdown(&doc, "ping @Bob\n\nplain") {
            Merge::Refused(r) => assert!(r.contains("a mention"), "{r}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(merge_markdown(&doc, &md), Merge::Unchanged);
    }
}
