//! Markdown -> `html_notes`: [`markdown_to_html`], the inverse of
//! [`super::html_to_markdown`] for everything it renders exactly.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use quick_xml::escape::{escape, partial_escape};

/// Where the Markdown parser is: the open containers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Open {
    Quote,
    List,
    Item,
    Heading,
    Code,
}

pub(super) struct Writer {
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

pub(super) fn collapse_breaks(s: &str) -> String {
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
