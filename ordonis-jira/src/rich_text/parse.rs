//! Reading ADF: a node's type, children and attributes, and the marks Markdown has syntax for.

use ordonis_core::markdown::{escape_entities, link_destination};
use serde_json::Value;

pub(super) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub(super) fn node_type(v: &Value) -> &str {
    str_of(v, "type").unwrap_or("")
}

pub(super) fn children(node: &Value) -> &[Value] {
    node.get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(super) fn attr<'a>(node: &'a Value, key: &str) -> Option<&'a Value> {
    node.get("attrs").and_then(|a| a.get(key))
}

/// The marks Markdown has syntax for, in nesting order (outermost first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum MdMark {
    Link { href: String, title: String },
    Strong,
    Em,
    Strike,
    Code,
}

impl MdMark {
    pub(super) fn rank(&self) -> u8 {
        match self {
            MdMark::Link { .. } => 0,
            MdMark::Strong => 1,
            MdMark::Em => 2,
            MdMark::Strike => 3,
            MdMark::Code => 4,
        }
    }
    pub(super) fn open(&self) -> &'static str {
        match self {
            MdMark::Link { .. } => "[",
            MdMark::Strong => "**",
            MdMark::Em => "*",
            MdMark::Strike => "~~",
            MdMark::Code => "",
        }
    }
    pub(super) fn close(&self) -> String {
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
    pub(super) fn flanking(&self) -> bool {
        matches!(self, MdMark::Strong | MdMark::Em | MdMark::Strike)
    }
}

pub(super) fn md_marks(node: &Value) -> Vec<MdMark> {
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
