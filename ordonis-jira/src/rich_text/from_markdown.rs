//! Markdown -> ADF: [`markdown_to_adf`], the inverse of [`super::adf_to_markdown`] for
//! everything it renders exactly.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde_json::{Map, Value, json};

use super::parse::*;
use super::*;

pub(super) struct Frame {
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
pub(super) fn image_as_link(v: Value) -> Value {
    if node_type(&v) != "__image" {
        return v;
    }
    let url = str_of(&v, "url").unwrap_or("").to_owned();
    let alt = str_of(&v, "alt").unwrap_or("").to_owned();
    let text = if alt.is_empty() { url.clone() } else { alt };
    json!({"type": "text", "text": text, "marks": [{"type": "link", "attrs": {"href": url}}]})
}

pub(super) fn adf_mark(m: &MdMark) -> Value {
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

pub(super) struct Builder {
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

pub(super) fn heading_level(l: HeadingLevel) -> u64 {
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
/// let doc = ordonis_jira::rich_text::markdown_to_adf("- a\n  - b");
/// assert_eq!(doc["content"][0]["type"], "bulletList");
/// assert_eq!(ordonis_jira::rich_text::adf_to_markdown(&doc), "- a\n  - b");
/// ```
pub fn markdown_to_adf(markdown: &str) -> Value {
    // The builder always ends with its document: the empty one is never reached.
    build_adf(markdown).unwrap_or_else(|_| json!({"type": "doc", "version": 1, "content": []}))
}

/// [`markdown_to_adf`], with the (unreachable) lack of a document as an error.
pub(super) fn build_adf(markdown: &str) -> Result<Value, AdfError> {
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
pub(super) fn trim_trailing_spaces(content: &mut Vec<Value>) {
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

pub(super) fn pop_mark(marks: &mut Vec<MdMark>, m: &MdMark) {
    if let Some(pos) = marks.iter().rposition(|x| x == m) {
        marks.remove(pos);
    }
}
