//! Reading `html_notes`: the XML into [`Node`]s, and a body into top-level blocks (lines of
//! text and block elements) with the bytes between them, so a merge can keep them.

use quick_xml::Reader;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesStart, Event as Xml};

use super::*;

/// A node of Asana's rich text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Node {
    Text(String),
    Element {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<Node>,
    },
}

impl Node {
    pub(super) fn name(&self) -> &str {
        match self {
            Node::Element { name, .. } => name,
            Node::Text(_) => "",
        }
    }

    pub(super) fn attr(&self, key: &str) -> Option<&str> {
        match self {
            Node::Element { attrs, .. } => attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str()),
            Node::Text(_) => None,
        }
    }

    pub(super) fn children(&self) -> &[Node] {
        match self {
            Node::Element { children, .. } => children,
            Node::Text(_) => &[],
        }
    }

    pub(super) fn is_mention(&self) -> bool {
        self.name() == "a" && self.attr("data-asana-gid").is_some()
    }
}

/// Elements that are blocks of the body (everything else is inline in a line).
pub(super) fn is_block(name: &str) -> bool {
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
pub(super) enum Block {
    Line(Vec<Node>),
    Element(Node),
}

/// A parsed body: its blocks and where each is in the source (for byte-identical keeping).
#[derive(Debug)]
pub(super) struct Body<'a> {
    pub(super) source: &'a str,
    pub(super) blocks: Vec<(Block, usize, usize)>,
}

impl Body<'_> {
    /// The source of block `i`; an error (never an empty block) when the parser's offsets do
    /// not cut the source.
    pub(super) fn raw(&self, i: usize) -> Result<&str, RichTextError> {
        let (_, a, b) = &self.blocks[i];
        self.slice(*a, *b)
    }

    /// The source between block `i` and block `i + 1` (the `\n`s that separate them).
    pub(super) fn separator(&self, i: usize) -> Result<&str, RichTextError> {
        let end = self.blocks[i].2;
        let next = self.blocks.get(i + 1).map_or(end, |b| b.1);
        self.slice(end, next)
    }

    pub(super) fn slice(&self, a: usize, b: usize) -> Result<&str, RichTextError> {
        self.source
            .get(a..b)
            .ok_or_else(|| RichTextError::Xml(format!("no source at {a}..{b}")))
    }
}

pub(super) fn element(e: &BytesStart<'_>) -> Result<Node, RichTextError> {
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

pub(super) fn push_child(parent: &mut Node, child: Node) {
    if let Node::Element { children, .. } = parent {
        match (children.last_mut(), child) {
            (Some(Node::Text(t)), Node::Text(more)) => t.push_str(&more),
            (_, child) => children.push(child),
        }
    }
}

/// Top-level pieces, in order, before lines are grouped.
pub(super) enum Piece {
    Inline(Node, usize, usize),
    Newline,
    Block(Node, usize, usize),
}

/// Parses `<body>…</body>` into its top-level blocks.
pub(super) fn parse_body(html: &str) -> Result<Body<'_>, RichTextError> {
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
pub(super) fn group_lines(pieces: Vec<Piece>) -> Vec<(Block, usize, usize)> {
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
