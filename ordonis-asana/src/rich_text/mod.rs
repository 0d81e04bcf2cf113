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

mod from_markdown;
mod merge;
mod parse;
mod to_markdown;

pub use from_markdown::markdown_to_html;
pub use merge::merge_markdown;
pub use ordonis_core::markdown::Merge;
pub use to_markdown::{html_to_markdown, notes_to_html, notes_to_markdown};

/// Deepest nesting rendered or parsed; deeper content is flattened (guards the recursion).
pub(crate) const MAX_DEPTH: usize = 48;

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

/// The Markdown Asana will report for `markdown` once written: its canonical form. An error
/// when the rich text written for it does not read back (a converter bug: never an empty
/// description in its place).
pub fn normalize_markdown(markdown: &str) -> Result<String, RichTextError> {
    html_to_markdown(&markdown_to_html(markdown))
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
