//! `html_notes` -> Markdown: [`html_to_markdown`], canonical, with readable approximations
//! of what Markdown cannot carry.

use ordonis_core::markdown::{code_span, escape_text, indent_lines, link_destination, longest_run};
use quick_xml::escape::partial_escape;

use super::parse::*;
use super::*;

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

pub(super) fn render_blocks(blocks: &[&Block]) -> String {
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

pub(super) fn render_block(block: &Block, alt: bool) -> String {
    match block {
        Block::Line(nodes) => render_line(nodes),
        Block::Element(node) => render_element(node, alt, 0),
    }
}

/// One line of inline content as a paragraph.
pub(super) fn render_line(nodes: &[Node]) -> String {
    let mut out = String::new();
    let mut at_start = true;
    render_inline(nodes, Ctx::Line, &mut out, &mut at_start, 0);
    out.trim_matches([' ', '\t']).to_owned()
}

pub(super) fn render_element(node: &Node, alt: bool, depth: usize) -> String {
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

pub(super) fn image_link(node: &Node) -> String {
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

pub(super) fn descendants<'a>(node: &'a Node, name: &str) -> Vec<&'a Node> {
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

pub(super) fn render_list(node: &Node, alt: bool, depth: usize) -> String {
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
pub(super) fn split_lines(nodes: &[Node]) -> Vec<Vec<Node>> {
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

pub(super) fn flat_text(node: &Node) -> String {
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
pub(super) enum Ctx {
    /// A body line (already split at `\n`).
    Line,
    /// A list item: `\n` is a hard break.
    Item,
    /// A heading: no breaks.
    Heading,
}

/// Adjacent marks of one kind as one (`<em>a</em><em>b</em>` would render as `*a**b*`).
pub(super) fn coalesce(nodes: &[Node]) -> Vec<Node> {
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

pub(super) fn render_inline(
    nodes: &[Node],
    ctx: Ctx,
    out: &mut String,
    at_start: &mut bool,
    depth: usize,
) {
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
pub(super) fn without_mark(nodes: &[Node], names: &[&str], depth: usize) -> Vec<Node> {
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
pub(super) fn wrap(
    children: &[Node],
    d: &str,
    ctx: Ctx,
    out: &mut String,
    at_start: &mut bool,
    depth: usize,
) {
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
