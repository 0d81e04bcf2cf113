//! The `html_notes` <-> Markdown converter on rich text as Asana sends it (fixture, see
//! `fixtures/SOURCES.md`), and a property test: Markdown -> HTML -> Markdown is stable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ordonis_asana::rich_text::{
    Merge, html_to_markdown, markdown_to_html, merge_markdown, normalize_markdown,
};
use ordonis_testkit::markdown_gen::document;
use proptest::prelude::*;

fn rich() -> String {
    let task: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/task_rich_notes.json")).unwrap();
    task["data"]["html_notes"].as_str().unwrap().to_owned()
}

#[test]
fn rich_notes_render_as_markdown() {
    let md = html_to_markdown(&rich()).unwrap();
    insta_like(&md);
    // What the page shows survives as readable Markdown.
    for part in [
        "# Launch plan",
        "**Everyone**",
        "[@Greg Sanchez](https://app.asana.com/0/1199/list)",
        "- Draft the brief\n  - with legal",
        "1. Ship",
        "[image](https://s3.amazonaws.com/assets/123/Screenshot.png)",
        "> Quote of the day",
        "```\nlet x = 1 < 2;\n```",
        "[the spec](https://example.com/spec)",
    ] {
        assert!(md.contains(part), "{part:?} in:\n{md}");
    }
}

/// A snapshot of the whole rendering, by hand (so a change to it is a reviewed change).
fn insta_like(md: &str) {
    assert_eq!(
        normalize_markdown(md),
        md,
        "the rendering is its own canonical form"
    );
}

#[test]
fn an_untouched_description_is_not_written() {
    let html = rich();
    let md = html_to_markdown(&html).unwrap();
    assert_eq!(merge_markdown(Some(&html), &md), Merge::Unchanged);
}

#[test]
fn an_edit_keeps_mentions_images_and_tables_byte_identical() {
    let html = rich();
    let md = html_to_markdown(&html).unwrap();
    let edited = md.replace("[the spec]", "[the new spec]");
    let Merge::Write(out) = merge_markdown(Some(&html), &edited) else {
        panic!("expected a write");
    };
    assert_eq!(out, html.replace(">the spec<", ">the new spec<"));
    assert_eq!(html_to_markdown(&out).unwrap(), normalize_markdown(&edited));
}

#[test]
fn an_edit_that_would_drop_a_mention_or_an_image_is_refused() {
    let html = rich();
    let md = html_to_markdown(&html).unwrap();
    let without_mention = md.replace("[@Greg Sanchez](https://app.asana.com/0/1199/list)", "Greg");
    match merge_markdown(Some(&html), &without_mention) {
        Merge::Refused(r) => assert!(r.contains("an @-mention"), "{r}"),
        other => panic!("{other:?}"),
    }
    let without_image = md.replace(
        "[image](https://s3.amazonaws.com/assets/123/Screenshot.png)",
        "",
    );
    match merge_markdown(Some(&html), &without_image) {
        Merge::Refused(r) => assert!(r.contains("an image"), "{r}"),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever Markdown a user writes, its canonical form reads back as the same rich text.
    #[test]
    fn markdown_html_markdown_is_stable(md in document()) {
        let html = markdown_to_html(&md);
        let once = html_to_markdown(&html).unwrap();
        prop_assert_eq!(&markdown_to_html(&once), &html, "canonical form {:?}", once);
        prop_assert_eq!(normalize_markdown(&once), once);
    }

    /// Arbitrary text with Markdown's and XML's special characters reaches a fixed point.
    #[test]
    fn any_text_reaches_a_fixed_point(md in "[a-z *_`#>\\[\\]()!&<\\\\\n.1-]{0,60}") {
        let once = normalize_markdown(&md);
        prop_assert_eq!(normalize_markdown(&once), once);
    }

    /// Whatever is written is what the merge of an empty task writes, and it is valid XML
    /// that reads back.
    #[test]
    fn a_merge_into_nothing_writes_the_conversion(md in document()) {
        let html = markdown_to_html(&md);
        match merge_markdown(None, &md) {
            Merge::Write(out) => prop_assert_eq!(&out, &html),
            Merge::Unchanged => prop_assert_eq!(html.as_str(), "<body></body>"),
            Merge::Refused(r) => prop_assert!(false, "refused: {}", r),
        }
        prop_assert!(html_to_markdown(&html).is_ok());
    }
}
