//! What Markdown cannot carry ([`uncarried`]), and the block-by-block merge of a Markdown edit
//! into an existing ADF document ([`merge_markdown`]).

use ordonis_core::markdown::{BlockFrom, DocumentName, Merge, merge_blocks};
use serde_json::{Value, json};

use super::from_markdown::build_adf;
use super::parse::*;
use super::to_markdown::block_markdown;
use super::{MAX_DEPTH, normalize_markdown};

pub(super) const CARRIED_NODES: [&str; 13] = [
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

pub(super) const CARRIED_MARKS: [&str; 5] = ["strong", "em", "strike", "code", "link"];

/// What in `node` Markdown cannot carry, as readable names ("an image (media)", "a mention"),
/// deduplicated, in document order. Empty when the node converts without loss.
pub fn uncarried(node: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_uncarried(node, &mut out, 0);
    out
}

pub(super) fn describe(t: &str) -> String {
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

pub(super) fn collect_uncarried(node: &Value, out: &mut Vec<String>, depth: usize) {
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

/// Merges `markdown` into `current` (the ADF description, or `null`) by top-level
/// block ([`merge_blocks`]): a block whose Markdown is unchanged keeps its original ADF; new
/// and changed blocks come from the Markdown. When a block holding content Markdown cannot
/// carry (a file attachment, a mention, a table, …) would be changed or removed, the edit is
/// refused, naming what would be lost.
pub fn merge_markdown(current: &Value, markdown: &str) -> Merge<Value> {
    let old: &[Value] = if current.is_object() {
        children(current)
    } else {
        &[]
    };
    let new_doc = match build_adf(markdown) {
        Ok(doc) => doc,
        Err(e) => return Merge::Refused(format!("the Markdown could not be converted ({e})")),
    };
    let new = children(&new_doc);
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
    let name = DocumentName {
        document: "Jira's description",
        provider: "Jira",
    };
    merge_blocks(&old_md, &new_md, |i| uncarried(&old[i]), name).and_then(|blocks| {
        let content: Vec<Value> = blocks
            .into_iter()
            .map(|b| match b {
                BlockFrom::Current(i) => old[i].clone(),
                BlockFrom::Edited(j) => new[j].clone(),
            })
            .collect();
        Merge::Write(json!({"type": "doc", "version": 1, "content": content}))
    })
}
