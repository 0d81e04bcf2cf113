//! What Markdown cannot carry ([`uncarried`]), and the block-by-block merge of a Markdown edit
//! into a task's `html_notes` ([`merge_markdown`]).

use ordonis_core::markdown::{BlockFrom, DocumentName, Merge, merge_blocks};

use super::parse::*;
use super::to_markdown::render_block;
use super::*;

pub(super) fn describe(node: &Node) -> Option<String> {
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
pub(super) fn uncarried(block: &Block) -> Vec<String> {
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
pub fn merge_markdown(current: Option<&str>, markdown: &str) -> Merge<String> {
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
    let name = DocumentName {
        document: "Asana's rich text",
        provider: "Asana",
    };
    merge_blocks(&old_md, &new_md, |i| uncarried(&old.blocks[i].0), name).and_then(|blocks| {
        match merged_body(&old, &new, &blocks) {
            Ok(html) => Merge::Write(html),
            Err(e) => Merge::Refused(format!("the merged rich text could not be written ({e})")),
        }
    })
}

/// The `<body>` of the merge: `out`'s blocks with their separators.
pub(super) fn merged_body(
    old: &Body<'_>,
    new: &Body<'_>,
    out: &[BlockFrom],
) -> Result<String, RichTextError> {
    // (from the old body?, index)
    let at = |b: BlockFrom| match b {
        BlockFrom::Current(i) => (true, i),
        BlockFrom::Edited(j) => (false, j),
    };
    let mut html = String::from("<body>");
    for (k, &b) in out.iter().enumerate() {
        let (from_old, idx) = at(b);
        if k > 0 {
            let (prev_old, prev) = at(out[k - 1]);
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
