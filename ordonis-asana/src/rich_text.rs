//! Asana rich text (`html_notes`) <-> Markdown (CommonMark), the internal form of a task's
//! description.
//!
//! Asana's rich text is an HTML subset that is guaranteed to be XML: a `<body>` root; lines
//! of text separated by `\n` with `<strong>`, `<em>`, `<u>`, `<s>`, `<code>` and `<a>`
//! inside; and the blocks `<h1>`, `<h2>`, `<ul>`/`<ol>` with `<li>`, `<blockquote>`,
//! `<pre>`, `<hr/>`, `<img>` (an attachment) and `<table>`. An `<a data-asana-gid="…">` is an
//! @-mention of a user, task or project (developers.asana.com/docs/rich-text).
//!
//! Hand-written over `quick-xml` (which reads the XML) and `pulldown-cmark` (which parses the
//! Markdown): no kept crate converts between the two, and what sync needs beyond a plain
//! conversion is its own: a canonical Markdown (so that echoes compare equal) and knowing
//! what Markdown cannot carry, so that it is never silently destroyed.
//!
//! - [`html_to_markdown`] renders lines as paragraphs, headings, emphasis, strong,
//!   strike-through, code, code blocks, (nested) lists, links, quotes and rules exactly.
//!   What Markdown cannot carry is rendered as a readable approximation that reads back as
//!   itself: a mention as a link to its object (`[@Greg](https://app.asana.com/0/…)`), an
//!   image as a link to its file, a table as one line of its cells, underline as plain text.
//! - [`markdown_to_html`] is the inverse for everything rendered exactly; Markdown Asana has
//!   no form for is written as the nearest it has (`###` as `<h2>`, an image as a link).
//! - [`merge_markdown`] writes a Markdown edit into the task's current `html_notes` block by
//!   block: blocks whose Markdown did not change are kept byte for byte (mentions, images
//!   and all); a block holding something Markdown cannot carry is never replaced or
//!   removed: the edit is refused with the reason instead.
//!
//! Known limits: blank lines between paragraphs are not kept where a paragraph next to them
//! changes (Markdown has no empty paragraph); and an emphasis whose delimiters touch
//! punctuation on the wrong side (`a<em>(b)</em>c`) reads back as literal asterisks (the text
//! survives; an untouched block keeps its original HTML in a merge anyway).

use ordonis_core::markdown::{
    Aligned, align_blocks, code_span, escape_text, indent_lines, link_destination, longest_run,
};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use quick_xml::Reader;
use quick_xml::escape::{escape, partial_escape, resolve_xml_entity};
use quick_xml::events::{BytesStart, Event as Xml};

/// Deepest nesting rendered or parsed; deeper content is flattened (guards the recursion).
const MAX_DEPTH: usize = 48;

/// Why an `html_notes` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RichTextError {
    /// Not well-formed XML.
    #[error("html_notes is not well-formed XML: {0}")]
    Xml(String),
    /// Well-formed, but not one `<body>` element.
    #[error("html_notes is not wrapped in one <body> element")]
    NoBody,
}

/// A node of Asana's rich text.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Text(String),
    Element {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<Node>,
    },
}

impl Node {
    fn name(&self) -> &str {
        match self {
            Node::Element { name, .. } => name,
            Node::Text(_) => "",
        }
    }

    fn attr(&self, key: &str) -> Option<&str> {
        match self {
            Node::Element { attrs, .. } => attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str()),
            Node::Text(_) => None,
        }
    }

    fn children(&self) -> &[Node] {
        match self {
            Node::Element { children, .. } => children,
            Node::Text(_) => &[],
        }
    }

    fn is_mention(&self) -> bool {
        self.name() == "a" && self.attr("data-asana-gid").is_some()
    }
}

/// Elements that are blocks of the body (everything else is inline in a line).
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "h1" | "h2"
            | "h3"
            | "ul"
            | "ol"
            | "blockquote"
            | "pre"
            | "hr"
            | "img"
            | "table"
            | "object"
            | "div"
            | "p"
            | "iframe"
    )
}

/// One top-level block of a body: a line of inline content, or a block element.
#[derive(Clone, Debug)]
enum Block {
    Line(Vec<Node>),
    Element(Node),
}

/// A parsed body: its blocks and where each is in the source (for byte-identical keeping).
#[derive(Debug)]
struct Body<'a> {
    source: &'a str,
    blocks: Vec<(Block, usize, usize)>,
}

impl Body<'_> {
    /// The source of block `i`; an error (never an empty block) when the parser's offsets do
    /// not cut the source.
    fn raw(&self, i: usize) -> Result<&str, RichTextError> {
        let (_, a, b) = &self.blocks[i];
        self.slice(*a, *b)
    }

    /// The source between block `i` and block `i + 1` (the `\n`s that separate them).
    fn separator(&self, i: usize) -> Result<&str, RichTextError> {
        let end = self.blocks[i].2;
        let next = self.blocks.get(i + 1).map_or(end, |b| b.1);
        self.slice(end, next)
    }

    fn slice(&self, a: usize, b: usize) -> Result<&str, RichTextError> {
        self.source
            .get(a..b)
            .ok_or_else(|| RichTextError::Xml(format!("no source at {a}..{b}")))
    }
}

fn element(e: &BytesStart<'_>) -> Result<Node, RichTextError> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| RichTextError::Xml(err.to_string()))?;
        let value = a
            .unescape_value()
            .map_err(|err| RichTextError::Xml(err.to_string()))?;
        attrs.push((
            String::from_utf8_lossy(a.key.as_ref()).into_owned(),
            value.into_owned(),
        ));
    }
    Ok(Node::Element {
        name,
        attrs,
        children: Vec::new(),
    })
}

fn push_child(parent: &mut Node, child: Node) {
    if let Node::Element { children, .. } = parent {
        match (children.last_mut(), child) {
            (Some(Node::Text(t)), Node::Text(more)) => t.push_str(&more),
            (_, child) => children.push(child),
        }
    }
}

/// Top-level pieces, in order, before lines are grouped.
enum Piece {
    Inline(Node, usize, usize),
    Newline,
    Block(Node, usize, usize),
}

/// Parses `<body>…</body>` into its top-level blocks.
fn parse_body(html: &str) -> Result<Body<'_>, RichTextError> {
    let xml = |e: quick_xml::Error| RichTextError::Xml(e.to_string());
    let mut reader = Reader::from_str(html);
    let mut open: Vec<(Node, usize)> = Vec::new();
    let mut in_body = false;
    let mut seen_body = false;
    let mut pieces: Vec<Piece> = Vec::new();
    let pos = |r: &Reader<&[u8]>| usize::try_from(r.buffer_position()).unwrap_or(usize::MAX);
    loop {
        let start = pos(&reader);
        let event = reader.read_event().map_err(xml)?;
        let end = pos(&reader);
        let text: Option<String> = match event {
            Xml::Start(e) => {
                let node = element(&e)?;
                if !in_body {
                    if seen_body || node.name() != "body" {
                        return Err(RichTextError::NoBody);
                    }
                    (in_body, seen_body) = (true, true);
                } else if open.len() >= MAX_DEPTH {
                    return Err(RichTextError::Xml("nested too deeply".to_owned()));
                } else {
                    open.push((node, start));
                }
                None
            }
            Xml::Empty(e) => {
                let node = element(&e)?;
                if !in_body {
                    if seen_body || node.name() != "body" {
                        return Err(RichTextError::NoBody);
                    }
                    seen_body = true;
                } else if let Some((parent, _)) = open.last_mut() {
                    push_child(parent, node);
                } else if is_block(node.name()) {
                    pieces.push(Piece::Block(node, start, end));
                } else {
                    pieces.push(Piece::Inline(node, start, end));
                }
                None
            }
            Xml::End(_) => {
                match open.pop() {
                    None if in_body => in_body = false,
                    None => return Err(RichTextError::NoBody),
                    Some((node, at)) => match open.last_mut() {
                        Some((parent, _)) => push_child(parent, node),
                        None if is_block(node.name()) => {
                            pieces.push(Piece::Block(node, at, end));
                        }
                        None => pieces.push(Piece::Inline(node, at, end)),
                    },
                }
                None
            }
            Xml::Text(t) => Some(
                t.decode()
                    .map_err(|e| RichTextError::Xml(e.to_string()))?
                    .into_owned(),
            ),
            Xml::CData(t) => Some(
                t.decode()
                    .map_err(|e| RichTextError::Xml(e.to_string()))?
                    .into_owned(),
            ),
            Xml::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(xml)? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| RichTextError::Xml(e.to_string()))?;
                        resolve_xml_entity(&name).map_or_else(|| format!("&{name};"), str::to_owned)
                    }
                };
                // A reference is never a line break: one piece.
                if in_body && open.is_empty() {
                    pieces.push(Piece::Inline(Node::Text(resolved), start, end));
                    None
                } else {
                    Some(resolved)
                }
            }
            Xml::Eof => break,
            _ => None,
        };
        let Some(text) = text else { continue };
        if !in_body {
            if !text.trim().is_empty() {
                return Err(RichTextError::NoBody);
            }
            continue;
        }
        if let Some((parent, _)) = open.last_mut() {
            push_child(parent, Node::Text(text));
            continue;
        }
        // Top-level text: `\n` separates lines. A text event's decoded form is its source
        // (references are events of their own), so offsets map one to one.
        let mut offset = start;
        for (i, part) in text.split('\n').enumerate() {
            if i > 0 {
                pieces.push(Piece::Newline);
                offset += 1;
            }
            if !part.is_empty() {
                pieces.push(Piece::Inline(
                    Node::Text(part.to_owned()),
                    offset,
                    offset + part.len(),
                ));
            }
            offset += part.len();
        }
    }
    if !seen_body || in_body || !open.is_empty() {
        return Err(RichTextError::NoBody);
    }
    Ok(Body {
        source: html,
        blocks: group_lines(pieces),
    })
}

/// Groups inline pieces into lines; a line of only whitespace is part of a separator.
fn group_lines(pieces: Vec<Piece>) -> Vec<(Block, usize, usize)> {
    let mut blocks = Vec::new();
    let mut line: Vec<Node> = Vec::new();
    let mut span: Option<(usize, usize)> = None;
    let flush = |line: &mut Vec<Node>, span: &mut Option<(usize, usize)>, blocks: &mut Vec<_>| {
        let blank = line
            .iter()
            .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()));
        if let Some((a, b)) = span.take()
            && !blank
        {
            blocks.push((Block::Line(std::mem::take(line)), a, b));
        }
        line.clear();
    };
    for piece in pieces {
        match piece {
            Piece::Inline(node, a, b) => {
                match (line.last_mut(), node) {
                    (Some(Node::Text(t)), Node::Text(more)) => t.push_str(&more),
                    (_, node) => line.push(node),
                }
                span = Some((span.map_or(a, |s| s.0), b));
            }
            Piece::Newline => flush(&mut line, &mut span, &mut blocks),
            Piece::Block(node, a, b) => {
                flush(&mut line, &mut span, &mut blocks);
                blocks.push((Block::Element(node), a, b));
            }
        }
    }
    flush(&mut line, &mut span, &mut blocks);
    blocks
}

// ---------------------------------------------------------------------------------------------
// HTML -> Markdown
// ---------------------------------------------------------------------------------------------

/// Renders Asana rich text (`<body>…</body>`) as canonical Markdown.
///
/// ```
/// let html = r#"<body><h1>Plan</h1>see <a href="https://example.com">docs</a>
/// <ul><li>one</li><li><strong>two</strong></li></ul></body>"#;
/// assert_eq!(
///     ordonis_asana::rich_text::html_to_markdown(html).unwrap(),
///     "# Plan\n\nsee [docs](https://example.com)\n\n- one\n- **two**"
/// );
/// ```
pub fn html_to_markdown(html: &str) -> Result<String, RichTextError> {
    let body = parse_body(html)?;
    let blocks: Vec<&Block> = body.blocks.iter().map(|(b, _, _)| b).collect();
    Ok(render_blocks(&blocks))
}

/// Renders plain `notes` (a task whose rich text was not read) as Markdown that reads back
/// as the same text: one paragraph per line, special characters escaped. What
/// `html_to_markdown(&notes_to_html(notes))` renders, without the XML step (so nothing can
/// fail: this is the fallback when the rich text cannot be read).
pub fn notes_to_markdown(notes: &str) -> String {
    let lines: Vec<Block> = notes
        .split('\n')
        .filter(|l| !l.trim().is_empty())
        .map(|l| Block::Line(vec![Node::Text(l.to_owned())]))
        .collect();
    render_blocks(&lines.iter().collect::<Vec<_>>())
}

/// Plain text as rich text: the text, escaped, in a body.
pub fn notes_to_html(notes: &str) -> String {
    format!("<body>{}</body>", partial_escape(notes))
}

fn render_blocks(blocks: &[&Block]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut prev: Option<&Block> = None;
    for b in blocks {
        // Two lists of one kind in a row would read back as one: alternate the marker.
        let alt = matches!((prev, b), (Some(Block::Element(p)), Block::Element(n))
            if matches!(p.name(), "ul" | "ol") && p.name() == n.name());
        let md = render_block(b, alt);
        if !md.is_empty() {
            parts.push(md);
        }
        prev = Some(b);
    }
    parts.join("\n\n")
}

fn render_block(block: &Block, alt: bool) -> String {
    match block {
        Block::Line(nodes) => render_line(nodes),
        Block::Element(node) => render_element(node, alt, 0),
    }
}

/// One line of inline content as a paragraph.
fn render_line(nodes: &[Node]) -> String {
    let mut out = String::new();
    let mut at_start = true;
    render_inline(nodes, Ctx::Line, &mut out, &mut at_start, 0);
    out.trim_matches([' ', '\t']).to_owned()
}

fn render_element(node: &Node, alt: bool, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return escape_text(&flat_text(node), true);
    }
    let inline = |ctx: Ctx| {
        let mut out = String::new();
        let mut at_start = true;
        render_inline(node.children(), ctx, &mut out, &mut at_start, depth + 1);
        out.trim_matches([' ', '\t']).to_owned()
    };
    match node.name() {
        "h1" => format!("# {}", inline(Ctx::Heading)).trim_end().to_owned(),
        "h2" | "h3" => format!("## {}", inline(Ctx::Heading)).trim_end().to_owned(),
        "ul" | "ol" => render_list(node, alt, depth),
        "blockquote" => {
            let lines: Vec<String> = split_lines(node.children())
                .iter()
                .map(|l| render_line(l))
                .filter(|l| !l.is_empty())
                .collect();
            lines
                .join("\n\n")
                .split('\n')
                .map(|l| {
                    if l.is_empty() {
                        ">".to_owned()
                    } else {
                        format!("> {l}")
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        "pre" => {
            // The content as is: the Markdown side drops the newline that ends its last line.
            let text = flat_text(node);
            let fence = "`".repeat(longest_run(&text, '`').max(2) + 1);
            if text.is_empty() {
                format!("{fence}\n{fence}")
            } else {
                format!("{fence}\n{text}\n{fence}")
            }
        }
        "hr" => "---".to_owned(),
        "img" => image_link(node),
        "table" => {
            // One line, so the table stays one block (a table cannot be written back).
            let rows: Vec<String> = descendants(node, "tr")
                .iter()
                .map(|tr| {
                    tr.children()
                        .iter()
                        .map(|c| flat_text(c).trim().replace('\n', " "))
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .collect();
            escape_text(&rows.join(" / "), true)
        }
        // What Asana may add later (embeds, paragraphs): its text, as one paragraph.
        _ => escape_text(flat_text(node).replace('\n', " ").trim(), true),
    }
}

fn image_link(node: &Node) -> String {
    let alt = node.attr("alt").map(str::trim).unwrap_or_default();
    let label = if alt.is_empty() || alt.starts_with("http") {
        "image"
    } else {
        alt
    };
    match node.attr("src").filter(|s| !s.trim().is_empty()) {
        Some(src) => format!(
            "[{}]({})",
            escape_text(label, false),
            link_destination(src.trim())
        ),
        None => escape_text(&format!("[{label}]"), false),
    }
}

fn descendants<'a>(node: &'a Node, name: &str) -> Vec<&'a Node> {
    let mut out = Vec::new();
    let mut stack: Vec<&Node> = node.children().iter().rev().collect();
    while let Some(n) = stack.pop() {
        if n.name() == name {
            out.push(n);
        } else {
            stack.extend(n.children().iter().rev());
        }
    }
    out
}

fn render_list(node: &Node, alt: bool, depth: usize) -> String {
    let ordered = node.name() == "ol";
    let mut items = Vec::new();
    for (n, li) in (1..).zip(node.children().iter().filter(|c| c.name() == "li")) {
        let marker = match (ordered, alt) {
            (true, false) => format!("{n}. "),
            (true, true) => format!("{n}) "),
            (false, false) => "- ".to_owned(),
            (false, true) => "* ".to_owned(),
        };
        let mut parts: Vec<String> = Vec::new();
        let mut inline: Vec<Node> = Vec::new();
        let flush_inline = |inline: &mut Vec<Node>, parts: &mut Vec<String>| {
            if inline.is_empty() {
                return;
            }
            let mut out = String::new();
            let mut at_start = true;
            render_inline(inline, Ctx::Item, &mut out, &mut at_start, depth + 1);
            // A break at an item's edge is no content (and reads back as a backslash).
            let mut out = out.trim_matches([' ', '\t']);
            while let Some(rest) = out
                .strip_suffix("\\\n")
                .or_else(|| out.strip_prefix("\\\n"))
            {
                out = rest.trim_matches([' ', '\t']);
            }
            if !out.is_empty() {
                parts.push(out.to_owned());
            }
            inline.clear();
        };
        let mut prev_list: Option<&str> = None;
        for child in li.children() {
            if matches!(child.name(), "ul" | "ol") {
                flush_inline(&mut inline, &mut parts);
                let alt = prev_list == Some(child.name());
                parts.push(render_element(child, alt, depth + 1));
                prev_list = Some(child.name());
            } else {
                inline.push(child.clone());
                prev_list = None;
            }
        }
        flush_inline(&mut inline, &mut parts);
        let content = parts.join("\n");
        let pad = " ".repeat(marker.len());
        items.push(indent_lines(&content, &marker, &pad));
    }
    items.join("\n")
}

/// Splits inline content at its top-level `\n`s.
fn split_lines(nodes: &[Node]) -> Vec<Vec<Node>> {
    let mut lines = vec![Vec::new()];
    for n in nodes {
        match n {
            Node::Text(t) => {
                for (i, part) in t.split('\n').enumerate() {
                    if i > 0 {
                        lines.push(Vec::new());
                    }
                    if !part.is_empty()
                        && let Some(l) = lines.last_mut()
                    {
                        l.push(Node::Text(part.to_owned()));
                    }
                }
            }
            other @ Node::Element { .. } => {
                if let Some(l) = lines.last_mut() {
                    l.push(other.clone());
                }
            }
        }
    }
    lines
}

fn flat_text(node: &Node) -> String {
    let mut out = String::new();
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Element { children, .. } => stack.extend(children.iter().rev()),
        }
    }
    out
}

/// Where inline content sits: what a `\n` inside it becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// A body line (already split at `\n`).
    Line,
    /// A list item: `\n` is a hard break.
    Item,
    /// A heading: no breaks.
    Heading,
}

/// Adjacent marks of one kind as one (`<em>a</em><em>b</em>` would render as `*a**b*`).
fn coalesce(nodes: &[Node]) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::with_capacity(nodes.len());
    for n in nodes {
        if let (
            Some(Node::Element {
                name: prev,
                attrs: prev_attrs,
                children: prev_children,
            }),
            Node::Element {
                name,
                attrs,
                children,
            },
        ) = (out.last_mut(), n)
            && prev == name
            && prev_attrs == attrs
            && matches!(
                name.as_str(),
                "strong" | "b" | "em" | "i" | "s" | "strike" | "del"
            )
        {
            prev_children.extend(children.iter().cloned());
            continue;
        }
        out.push(n.clone());
    }
    out
}

fn render_inline(nodes: &[Node], ctx: Ctx, out: &mut String, at_start: &mut bool, depth: usize) {
    let nodes = coalesce(nodes);
    for node in &nodes {
        if depth > MAX_DEPTH {
            out.push_str(&escape_text(&flat_text(node), *at_start));
            continue;
        }
        match node {
            Node::Text(t) => {
                for (i, part) in t.split('\n').enumerate() {
                    if i > 0 {
                        if ctx == Ctx::Item {
                            out.push_str("\\\n");
                            *at_start = true;
                        } else {
                            out.push(' ');
                        }
                    }
                    if !part.is_empty() {
                        out.push_str(&escape_text(part, *at_start));
                        if !part.trim().is_empty() {
                            *at_start = false;
                        }
                    }
                }
            }
            Node::Element { name, children, .. } => match name.as_str() {
                "strong" | "b" => wrap(children, "**", ctx, out, at_start, depth),
                "em" | "i" => wrap(children, "*", ctx, out, at_start, depth),
                "s" | "strike" | "del" => wrap(children, "~~", ctx, out, at_start, depth),
                "code" => {
                    out.push_str(&code_span(&flat_text(node).replace('\n', " ")));
                    *at_start = false;
                }
                "br" if ctx == Ctx::Item => {
                    out.push_str("\\\n");
                    *at_start = true;
                }
                "br" => out.push(' '),
                "img" => {
                    out.push_str(&image_link(node));
                    *at_start = false;
                }
                "a" => {
                    let href = node.attr("href").map(str::trim).filter(|h| !h.is_empty());
                    let gid = node.attr("data-asana-gid");
                    let mut label = String::new();
                    let mut start = false;
                    render_inline(children, Ctx::Heading, &mut label, &mut start, depth + 1);
                    if label.trim().is_empty()
                        && let Some(gid) = gid
                    {
                        label = escape_text(&format!("@{gid}"), false);
                    }
                    match href {
                        Some(h) => out.push_str(&format!("[{label}]({})", link_destination(h))),
                        None if *at_start => out.push_str(&escape_text(&flat_text(node), true)),
                        None => out.push_str(&label),
                    }
                    *at_start = false;
                }
                // Underline, spans and what Asana may add: their content.
                _ => render_inline(children, ctx, out, at_start, depth + 1),
            },
        }
    }
}

/// `nodes` with the elements named `names` replaced by their content, at any depth.
fn without_mark(nodes: &[Node], names: &[&str], depth: usize) -> Vec<Node> {
    let mut out = Vec::new();
    for n in nodes {
        match n {
            Node::Element { name, children, .. } if names.contains(&name.as_str()) => {
                if depth < MAX_DEPTH {
                    out.extend(without_mark(children, names, depth + 1));
                }
            }
            Node::Element {
                name,
                attrs,
                children,
            } if depth < MAX_DEPTH => out.push(Node::Element {
                name: name.clone(),
                attrs: attrs.clone(),
                children: without_mark(children, names, depth + 1),
            }),
            other => out.push(other.clone()),
        }
    }
    out
}

/// `d` + content + `d`, with the content's outer spaces moved outside the delimiters (where
/// CommonMark would not read them as emphasis).
fn wrap(children: &[Node], d: &str, ctx: Ctx, out: &mut String, at_start: &mut bool, depth: usize) {
    // The same mark inside itself adds nothing, and doubled delimiters would read back as
    // another mark.
    let same: &[&str] = match d {
        "**" => &["strong", "b"],
        "*" => &["em", "i"],
        _ => &["s", "strike", "del"],
    };
    let children = without_mark(children, same, depth);
    let mut inner = String::new();
    let mut start = *at_start;
    render_inline(&children, ctx, &mut inner, &mut start, depth + 1);
    let core = inner.trim_matches(' ');
    if core.is_empty() {
        out.push_str(&inner);
        return;
    }
    let lead = &inner[..inner.len() - inner.trim_start_matches(' ').len()];
    let trail = &inner[inner.trim_end_matches(' ').len()..];
    out.push_str(&format!("{lead}{d}{core}{d}{trail}"));
    *at_start = false;
}

// ---------------------------------------------------------------------------------------------
// Markdown -> HTML
// ---------------------------------------------------------------------------------------------

/// Where the Markdown parser is: the open containers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Quote,
    List,
    Item,
    Heading,
    Code,
}

struct Writer {
    /// Finished top-level blocks: (is a line, html).
    blocks: Vec<(bool, String)>,
    cur: String,
    cur_is_line: bool,
    open: Vec<Open>,
    /// Inline content was written in the current item or quote (a new paragraph there
    /// starts a new line).
    has_inline: bool,
    pending_break: bool,
    /// Open inline marks (opening tag, closing tag): a line break closes and reopens them,
    /// as every Asana line stands on its own.
    marks: Vec<(String, &'static str)>,
    /// Where each open item's content starts in `cur`.
    items: Vec<usize>,
}

impl Writer {
    fn in_quote(&self) -> bool {
        self.open.contains(&Open::Quote)
    }

    fn in_heading(&self) -> bool {
        self.open.contains(&Open::Heading)
    }

    fn in_item(&self) -> bool {
        self.open.contains(&Open::Item)
    }

    fn top(&self) -> bool {
        self.open.is_empty()
    }

    fn begin_top(&mut self, is_line: bool, html: &str) {
        self.cur.clear();
        self.cur_is_line = is_line;
        self.cur.push_str(html);
        self.has_inline = false;
        self.pending_break = false;
    }

    fn end_top(&mut self, html: &str) {
        self.cur.push_str(html);
        let mut done = std::mem::take(&mut self.cur);
        // Breaks at a line's edges, and empty lines inside it, are not lines of their own.
        if self.cur_is_line {
            done = collapse_breaks(&done);
        } else if let Some(inner) = done
            .strip_prefix("<blockquote>")
            .and_then(|d| d.strip_suffix("</blockquote>"))
        {
            done = format!("<blockquote>{}</blockquote>", collapse_breaks(inner));
        }
        if !(self.cur_is_line && done.trim().is_empty()) {
            self.blocks.push((self.cur_is_line, done));
        }
    }

    /// A block starts inside an item or quote: later inline content goes on a new line.
    fn nested_block(&mut self) {
        if self.has_inline {
            self.pending_break = true;
        }
    }

    fn inline(&mut self, html: &str) {
        if self.pending_break {
            self.cur.push('\n');
            self.pending_break = false;
        }
        self.cur.push_str(html);
        self.has_inline = true;
    }

    /// A line break: `\n` in a line or quote, a hard break in an item, a space in a heading.
    fn line_break(&mut self, hard: bool) {
        if self.in_heading() || (self.in_item() && !hard && !self.in_quote()) {
            self.inline(" ");
        } else if self.in_item() && !self.in_quote() {
            self.inline("\n");
        } else {
            let close: String = self.marks.iter().rev().map(|(_, c)| *c).collect();
            let reopen: String = self.marks.iter().map(|(o, _)| o.as_str()).collect();
            self.inline(&format!("{close}\n{reopen}"));
        }
    }

    fn open_mark(&mut self, open: String, close: &'static str) {
        self.inline(&open);
        self.marks.push((open, close));
    }

    fn close_mark(&mut self) {
        if let Some((_, close)) = self.marks.pop() {
            self.inline(close);
        }
    }
}

fn collapse_breaks(s: &str) -> String {
    s.split('\n')
        .map(|l| l.trim_matches(' '))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes Markdown as Asana rich text (`<body>…</body>`), escaped.
///
/// ```
/// let html = ordonis_asana::rich_text::markdown_to_html("## Plan\n\n- a <b>\n- [docs](https://example.com)");
/// assert_eq!(
///     html,
///     r#"<body><h2>Plan</h2><ul><li>a &lt;b&gt;</li><li><a href="https://example.com">docs</a></li></ul></body>"#
/// );
/// ```
pub fn markdown_to_html(markdown: &str) -> String {
    let mut w = Writer {
        blocks: Vec::new(),
        cur: String::new(),
        cur_is_line: true,
        open: Vec::new(),
        has_inline: false,
        pending_break: false,
        marks: Vec::new(),
        items: Vec::new(),
    };
    let mut code: Option<String> = None;
    let mut html_block = String::new();
    for event in Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH) {
        if let Some(buf) = code.as_mut() {
            match event {
                Event::Text(t) => buf.push_str(&t),
                Event::End(TagEnd::CodeBlock) => {
                    let text = code.take().unwrap_or_default();
                    let text = text.strip_suffix('\n').unwrap_or(&text);
                    w.open.pop();
                    if w.top() {
                        w.cur.push_str(&partial_escape(text));
                        w.end_top("</pre>");
                    } else {
                        w.inline(&partial_escape(text));
                    }
                }
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(tag) => match tag {
                Tag::Paragraph | Tag::HtmlBlock => {
                    if w.top() {
                        w.begin_top(true, "");
                    } else {
                        w.nested_block();
                    }
                }
                Tag::Heading { level, .. } => {
                    if w.top() {
                        let h = if level == HeadingLevel::H1 {
                            "h1"
                        } else {
                            "h2"
                        };
                        w.begin_top(false, &format!("<{h}>"));
                    } else {
                        w.nested_block();
                    }
                    w.open.push(Open::Heading);
                }
                Tag::BlockQuote(_) => {
                    if w.top() {
                        w.begin_top(false, "<blockquote>");
                    } else {
                        w.nested_block();
                    }
                    w.open.push(Open::Quote);
                }
                Tag::CodeBlock(_) => {
                    if w.top() {
                        w.begin_top(false, "<pre>");
                    } else {
                        w.nested_block();
                    }
                    w.open.push(Open::Code);
                    code = Some(String::new());
                }
                Tag::List(start) => {
                    let tag = if start.is_some() { "<ol>" } else { "<ul>" };
                    if w.top() {
                        w.begin_top(false, tag);
                    } else if w.in_quote() {
                        // Asana has no list in a quote: its items become lines.
                        w.nested_block();
                    } else {
                        w.cur.push_str(tag);
                    }
                    w.open.push(Open::List);
                }
                Tag::Item => {
                    if w.in_quote() {
                        w.nested_block();
                    } else {
                        w.cur.push_str("<li>");
                        w.items.push(w.cur.len());
                        w.has_inline = false;
                        w.pending_break = false;
                    }
                    w.open.push(Open::Item);
                }
                Tag::Emphasis => w.open_mark("<em>".to_owned(), "</em>"),
                Tag::Strong => w.open_mark("<strong>".to_owned(), "</strong>"),
                Tag::Strikethrough => w.open_mark("<s>".to_owned(), "</s>"),
                Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                    w.open_mark(
                        format!("<a href=\"{}\">", escape(dest_url.as_ref())),
                        "</a>",
                    );
                }
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::HtmlBlock => {
                    let text = std::mem::take(&mut html_block);
                    w.inline(&partial_escape(text.trim_end_matches('\n')));
                    if w.top() {
                        w.end_top("");
                    }
                }
                TagEnd::Paragraph if w.top() => w.end_top(""),
                TagEnd::Heading(level) => {
                    w.open.pop();
                    if w.top() {
                        let h = if level == HeadingLevel::H1 {
                            "h1"
                        } else {
                            "h2"
                        };
                        w.end_top(&format!("</{h}>"));
                    }
                }
                TagEnd::BlockQuote(_) => {
                    w.open.pop();
                    if w.top() {
                        w.end_top("</blockquote>");
                    }
                }
                TagEnd::List(ordered) => {
                    w.open.pop();
                    let (open, tag) = if ordered {
                        ("<ol>", "</ol>")
                    } else {
                        ("<ul>", "</ul>")
                    };
                    // A list whose items were all empty is not written (see `TagEnd::Item`).
                    if w.top() {
                        if w.cur == open {
                            w.cur.clear();
                        } else {
                            w.end_top(tag);
                        }
                    } else if !w.in_quote() {
                        if w.cur.ends_with(open) {
                            w.cur.truncate(w.cur.len() - open.len());
                        } else {
                            w.cur.push_str(tag);
                        }
                    }
                }
                TagEnd::Item => {
                    w.open.pop();
                    if !w.in_quote() {
                        // As for lines: no breaks at an item's edges, no empty lines.
                        // An empty item is not written: its Markdown (`-`) cannot follow an
                        // item's text, where it reads back as nothing or a heading underline.
                        let mut empty = false;
                        if let Some(start) = w.items.pop()
                            && let Some(content) = w.cur.get(start..)
                        {
                            let content = collapse_breaks(content);
                            w.cur.truncate(start);
                            empty = content.is_empty() && w.cur.ends_with("<li>");
                            if empty {
                                w.cur.truncate(start - "<li>".len());
                            }
                            w.cur.push_str(&content);
                        }
                        if !empty {
                            w.cur.push_str("</li>");
                        }
                    }
                    // Text after a nested list, in the enclosing item, starts a new line.
                    w.has_inline = w.in_item();
                    w.pending_break = false;
                }
                TagEnd::Emphasis
                | TagEnd::Strong
                | TagEnd::Strikethrough
                | TagEnd::Link
                | TagEnd::Image => w.close_mark(),
                _ => {}
            },
            Event::Text(t) => w.inline(&partial_escape(t.as_ref())),
            Event::Code(t) => w.inline(&format!("<code>{}</code>", partial_escape(t.as_ref()))),
            // HTML typed in Markdown is text to Asana, shown as typed (a block of it ends
            // with the newline that closed it, which is not content).
            Event::Html(t) => html_block.push_str(&t),
            Event::InlineHtml(t) => w.inline(&partial_escape(t.as_ref())),
            Event::SoftBreak => w.line_break(false),
            Event::HardBreak => w.line_break(true),
            Event::Rule if w.top() => {
                w.begin_top(false, "<hr/>");
                w.end_top("");
            }
            _ => {}
        }
    }
    let mut html = String::from("<body>");
    let n = w.blocks.len();
    for (i, (is_line, block)) in w.blocks.iter().enumerate() {
        html.push_str(block);
        if *is_line && i + 1 < n {
            html.push('\n');
        }
    }
    html.push_str("</body>");
    html
}

/// The Markdown Asana will report for `markdown` once written: its canonical form. An error
/// when the rich text written for it does not read back (a converter bug: never an empty
/// description in its place).
pub fn normalize_markdown(markdown: &str) -> Result<String, RichTextError> {
    html_to_markdown(&markdown_to_html(markdown))
}

// ---------------------------------------------------------------------------------------------
// What Markdown cannot carry, and the merge
// ---------------------------------------------------------------------------------------------

fn describe(node: &Node) -> Option<String> {
    Some(match node.name() {
        "" | "strong" | "b" | "em" | "i" | "s" | "strike" | "del" | "code" | "ul" | "ol" | "li"
        | "h1" | "h2" | "pre" | "blockquote" | "hr" | "br" => return None,
        "a" if node.is_mention() => "an @-mention".to_owned(),
        "a" => return None,
        "img" => "an image".to_owned(),
        "u" => "underlined text".to_owned(),
        "table" | "tr" | "td" | "th" => "a table".to_owned(),
        "object" | "iframe" => "an embedded object".to_owned(),
        other => format!("a <{other}> element"),
    })
}

/// What in a block Markdown cannot carry, as readable names, deduplicated, in order.
fn uncarried(block: &Block) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stack: Vec<&Node> = match block {
        Block::Line(nodes) => nodes.iter().rev().collect(),
        Block::Element(node) => vec![node],
    };
    while let Some(n) = stack.pop() {
        if let Some(d) = describe(n)
            && !out.contains(&d)
        {
            out.push(d);
        }
        stack.extend(n.children().iter().rev());
    }
    out
}

/// A Markdown edit merged into a task's current rich text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merge {
    /// The `html_notes` to write (unchanged blocks are the original bytes).
    Write(String),
    /// The task already says this: nothing to write.
    Unchanged,
    /// The edit would replace or remove content Markdown cannot carry.
    Refused(String),
}

/// Merges `markdown` into `current` (the task's `html_notes`; `None` for none) by top-level
/// block: a block whose Markdown is unchanged keeps its original HTML; new and changed blocks
/// come from the Markdown. When a block holding content Markdown cannot carry (an image, an
/// @-mention, a table, underline) would be changed or removed, the edit is refused, naming
/// what would be lost.
///
/// ```
/// use ordonis_asana::rich_text::{Merge, merge_markdown};
/// let current = r#"<body>ping <a data-asana-gid="42" href="https://app.asana.com/0/42/list">@Ann</a>
/// plain</body>"#;
/// assert_eq!(
///     merge_markdown(Some(current), "ping [@Ann](https://app.asana.com/0/42/list)\n\nedited"),
///     Merge::Write(
///         r#"<body>ping <a data-asana-gid="42" href="https://app.asana.com/0/42/list">@Ann</a>
/// edited</body>"#.to_owned()
///     )
/// );
/// assert!(matches!(merge_markdown(Some(current), "edited"), Merge::Refused(_)));
/// ```
pub fn merge_markdown(current: Option<&str>, markdown: &str) -> Merge {
    let empty = "<body></body>";
    let old = match parse_body(current.unwrap_or(empty)) {
        Ok(b) => b,
        Err(e) => {
            return Merge::Refused(format!(
                "Asana's rich text could not be read ({e}); edit the description in Asana"
            ));
        }
    };
    let new_html = markdown_to_html(markdown);
    let new = match parse_body(&new_html) {
        Ok(b) => b,
        Err(e) => return Merge::Refused(format!("the Markdown could not be converted ({e})")),
    };
    // An approximated block (a mention as a link) is compared in the form its Markdown reads
    // back as, which is what an untouched copy of it in `markdown` converts to.
    let old_md = old
        .blocks
        .iter()
        .map(|(b, _, _)| normalize_markdown(&render_block(b, false)))
        .collect::<Result<Vec<String>, _>>();
    let old_md = match old_md {
        Ok(md) => md,
        Err(e) => {
            return Merge::Refused(format!(
                "Asana's rich text could not be compared with the edit ({e}); edit the \
                 description in Asana"
            ));
        }
    };
    let new_md: Vec<String> = new
        .blocks
        .iter()
        .map(|(b, _, _)| render_block(b, false))
        .collect();
    // (from the old body?, index)
    let mut out: Vec<(bool, usize)> = Vec::new();
    let mut lost: Vec<String> = Vec::new();
    let mut changed = false;
    for step in align_blocks(&old_md, &new_md) {
        changed |= !matches!(step, Aligned::Keep(_));
        match step {
            Aligned::Keep(i) => out.push((true, i)),
            Aligned::Insert(j) => out.push((false, j)),
            Aligned::Drop(i) => {
                let what = uncarried(&old.blocks[i].0);
                if !what.is_empty() {
                    lost.push(format!("block {} ({})", i + 1, what.join(", ")));
                }
            }
        }
    }
    if !lost.is_empty() {
        return Merge::Refused(format!(
            "the edit would change or remove content of Asana's rich text that Markdown cannot \
             carry: {}; edit those parts in Asana",
            lost.join("; ")
        ));
    }
    // Nothing inserted or dropped: the task already says this (or both are empty).
    if !changed {
        return Merge::Unchanged;
    }
    match merged_body(&old, &new, &out) {
        Ok(html) => Merge::Write(html),
        Err(e) => Merge::Refused(format!("the merged rich text could not be written ({e})")),
    }
}

/// The `<body>` of the merge: `out`'s blocks (from the old body?, index) with their separators.
fn merged_body(
    old: &Body<'_>,
    new: &Body<'_>,
    out: &[(bool, usize)],
) -> Result<String, RichTextError> {
    let mut html = String::from("<body>");
    for (k, &(from_old, idx)) in out.iter().enumerate() {
        if k > 0 {
            let (prev_old, prev) = out[k - 1];
            let body = if prev_old { old } else { new };
            // The original separator where there was one (a blank line stays): after a kept
            // block, or before one; unless it cannot separate what follows now (`text<ul>`
            // before a new line).
            let kept = if prev_old {
                Some(old.separator(prev)?)
            } else if from_old && idx > 0 {
                Some(old.separator(idx - 1)?)
            } else {
                None
            };
            let after_line = matches!(body.blocks[prev].0, Block::Line(_));
            match kept {
                Some(sep) if prev_old && from_old && idx == prev + 1 => html.push_str(sep),
                Some(sep) if sep.contains('\n') || !after_line => html.push_str(sep),
                _ if after_line => html.push('\n'),
                _ => {}
            }
        }
        html.push_str(if from_old {
            old.raw(idx)?
        } else {
            new.raw(idx)?
        });
    }
    html.push_str("</body>");
    Ok(html)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn norm(md: &str) -> String {
        normalize_markdown(md).unwrap()
    }

    #[test]
    fn blocks_round_trip() {
        for md in [
            "# Title",
            "## Sub *em* **strong** ~~gone~~ `code`",
            "para one\n\npara three",
            "- a\n- b\n  - nested\n    1. deep\n- c",
            "1. one\n2. two",
            "> quoted\n>\n> second line",
            "```\nfn main() {\n    <tag> & \"q\"\n}\n```",
            "see [docs](https://example.com/a_\\(b\\)) and [t](u)",
            "---",
            "- a\n\n* b",
            "a \\* not emphasis \\# nor heading",
            "**bold *both***",
            "- item\\\n  second line",
            "x \\< y \\&\\& z \\> w",
        ] {
            let once = norm(md);
            assert_eq!(norm(&once), once, "stable: {md:?} -> {once:?}");
            assert_eq!(
                markdown_to_html(&once),
                markdown_to_html(md),
                "same rich text: {md:?} -> {once:?}"
            );
            assert_eq!(once, md, "canonical already: {md:?}");
        }
        // Markdown Asana has no form for becomes the nearest it has.
        assert_eq!(norm("### h3"), "## h3");
        assert_eq!(norm("3. three"), "1. three");
        assert_eq!(norm("![d](https://x/d.png)"), "[d](https://x/d.png)");
        assert_eq!(norm("a\nb"), "a\n\nb");
        assert_eq!(norm("_a_"), "*a*");
    }

    #[test]
    fn escapes_both_ways() {
        let html = "<body>1. not a list *x* [y] #z a_b &lt;b&gt; &amp; &#169;</body>";
        let md = html_to_markdown(html).unwrap();
        assert_eq!(
            md,
            "1\\. not a list \\*x\\* \\[y\\] \\#z a\\_b \\<b\\> \\& ©"
        );
        assert_eq!(
            markdown_to_html(&md),
            "<body>1. not a list *x* [y] #z a_b &lt;b&gt; &amp; ©</body>"
        );
        // Typed HTML stays text; attribute values are escaped.
        assert_eq!(
            markdown_to_html("[a](https://e.com/?a=1&b=2) <script>x</script>"),
            "<body><a href=\"https://e.com/?a=1&amp;b=2\">a</a> &lt;script&gt;x&lt;/script&gt;</body>"
        );
    }

    #[test]
    fn reads_what_asana_sends() {
        // developers.asana.com/docs/rich-text, "Reading rich text" (the example's mentions are
        // in the write form, without href or text).
        let doc = r#"<body>All these new tasks are <em>really</em> getting disorganized, so <a data-asana-gid="4168112"/> just made the new <a data-asana-gid="5732985"/> project to help keep them organized. <strong>Everyone</strong> should start using the <a data-asana-gid="6489418" data-asana-project="5732985"/> when adding new tasks there.</body>"#;
        assert_eq!(
            html_to_markdown(doc).unwrap(),
            "All these new tasks are *really* getting disorganized, so @4168112 just made the \
             new @5732985 project to help keep them organized. **Everyone** should start using \
             the @6489418 when adding new tasks there."
        );
        let read = "<body><h1>Spec</h1>Intro with <u>underline</u>\n<ul><li>one<ul><li>deep</li></ul></li><li>two</li></ul><img data-gid=\"9\" src=\"https://s3.example/a.png\" alt=\"\"/><hr/><table><tr><td>a</td><td>b</td></tr></table></body>";
        assert_eq!(
            html_to_markdown(read).unwrap(),
            "# Spec\n\nIntro with underline\n\n- one\n  - deep\n- two\n\n[image](https://s3.example/a.png)\n\n---\n\na | b"
        );
        // The vendored spec's example (`specs/asana_oas.yaml`, TaskBase.html_notes).
        assert_eq!(
            html_to_markdown("<body>Mittens <em>really</em> likes the stuff from Humboldt.</body>")
                .unwrap(),
            "Mittens *really* likes the stuff from Humboldt."
        );
        assert!(html_to_markdown("<body>open").is_err());
        assert_eq!(html_to_markdown("plain"), Err(RichTextError::NoBody));
        assert_eq!(html_to_markdown("<body/>").unwrap(), "");
    }

    #[test]
    fn merge_keeps_what_markdown_cannot_carry() {
        let current = "<body><h1>Spec</h1>ping <a data-asana-gid=\"42\" data-asana-type=\"user\" href=\"https://app.asana.com/0/42/list\">@Ann</a>\n\nplain\n<img data-gid=\"9\" src=\"https://s3.example/a.png\"/></body>";
        let md = html_to_markdown(current).unwrap();
        assert_eq!(
            md,
            "# Spec\n\nping [@Ann](https://app.asana.com/0/42/list)\n\nplain\n\n[image](https://s3.example/a.png)"
        );
        assert_eq!(merge_markdown(Some(current), &md), Merge::Unchanged);
        assert_eq!(norm(&md), md, "the approximations read back as themselves");
        // Editing the plain line keeps every other block byte for byte, separators too.
        let edited = md.replace("plain", "plain, edited");
        assert_eq!(
            merge_markdown(Some(current), &edited),
            Merge::Write(current.replace("plain", "plain, edited"))
        );
        // Changing or removing the mention's or the image's block is refused, naming it.
        match merge_markdown(Some(current), &md.replace("ping", "pong")) {
            Merge::Refused(r) => assert!(r.contains("an @-mention"), "{r}"),
            other => panic!("{other:?}"),
        }
        match merge_markdown(Some(current), "# Spec") {
            Merge::Refused(r) => {
                assert!(r.contains("an @-mention") && r.contains("an image"), "{r}");
            }
            other => panic!("{other:?}"),
        }
        // New blocks are added around the kept ones.
        match merge_markdown(Some(current), &format!("{md}\n\n- new")) {
            Merge::Write(html) => {
                assert!(html.ends_with("<img data-gid=\"9\" src=\"https://s3.example/a.png\"/><ul><li>new</li></ul></body>"), "{html}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            merge_markdown(Some("<body>broken"), "x"),
            Merge::Refused(_)
        ));
        assert_eq!(merge_markdown(None, ""), Merge::Unchanged);
        assert_eq!(
            merge_markdown(None, "a"),
            Merge::Write("<body>a</body>".to_owned())
        );
    }

    #[test]
    fn plain_notes_read_as_their_text() {
        assert_eq!(
            notes_to_markdown("Buy *cat* food\n- milk"),
            "Buy \\*cat\\* food\n\n\\- milk"
        );
        assert_eq!(notes_to_html("a < b & c"), "<body>a &lt; b &amp; c</body>");
    }
}
