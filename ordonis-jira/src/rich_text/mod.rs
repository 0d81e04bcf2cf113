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

mod from_markdown;
mod merge;
mod parse;
mod to_markdown;

use from_markdown::build_adf;
pub use from_markdown::markdown_to_adf;
pub use merge::{merge_markdown, uncarried};
pub use ordonis_core::markdown::Merge;
pub use to_markdown::adf_to_markdown;

#[cfg(test)]
use serde_json::json;

/// Deepest nesting rendered or parsed; deeper content is flattened (guards the recursion).
pub(crate) const MAX_DEPTH: usize = 48;

/// Why Markdown could not be converted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdfError {
    /// The conversion ended without an ADF document.
    #[error("the Markdown did not convert to an ADF document")]
    NoDocument,
}

/// when the Markdown does not convert (never an empty description in its place).
/// The Markdown Jira will report for `markdown` once written: its canonical form. An error
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
