//! The `html_notes` <-> Markdown converter on rich text as Asana sends it (fixture, see
//! `fixtures/SOURCES.md`), and a property test: Markdown -> HTML -> Markdown is stable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ordonis_asana::rich_text::{
    Merge, html_to_markdown, markdown_to_html, merge_markdown, normalize_markdown, notes_to_html,
    notes_to_markdown,
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
        normalize_markdown(md).unwrap(),
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
    assert_eq!(
        html_to_markdown(&out).unwrap(),
        normalize_markdown(&edited).unwrap()
    );
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

// --- pure deletions: an edit that only removes content is a change -----------------------

/// Rich text whose blocks are all carried; the mention's line (kept only when untouched) and
/// the entity `&#169;` (which a line rebuilt from Markdown writes as `©`) tell a kept block
/// from a rewritten one.
const PLAIN: &str = "<body><h1>Plan</h1>owner <a data-asana-gid=\"42\" href=\"https://app.asana.com/0/42/list\">@Ann</a>\nmiddle <em>line</em> &#169;\n<ul><li>alpha</li><li>bravo</li><li>charlie</li></ul>last words</body>";

const PLAIN_MD: &str = "# Plan\n\nowner [@Ann](https://app.asana.com/0/42/list)\n\nmiddle *line* ©\n\n- alpha\n- bravo\n- charlie\n\nlast words";

/// `edited` merged into [`PLAIN`] must be a write of exactly `expected`, without `gone`.
fn assert_deletion(edited: &str, gone: &str, expected: &str) {
    assert_eq!(html_to_markdown(PLAIN).unwrap(), PLAIN_MD);
    let out = match merge_markdown(Some(PLAIN), edited) {
        Merge::Write(out) => out,
        other => panic!("a deletion must be written, got {other:?} for {edited:?}"),
    };
    assert!(!out.contains(gone), "{gone:?} still in {out}");
    assert_eq!(out, expected, "the rest is kept byte for byte");
    assert_eq!(html_to_markdown(&out).unwrap(), edited);
}

#[test]
fn deleting_a_line_is_a_change() {
    assert_deletion(
        &PLAIN_MD.replace("middle *line* ©\n\n", ""),
        "middle",
        &PLAIN.replace("middle <em>line</em> &#169;\n", ""),
    );
}

#[test]
fn deleting_a_list_item_is_a_change() {
    assert_deletion(
        &PLAIN_MD.replace("- bravo\n", ""),
        "bravo",
        &PLAIN.replace("<li>bravo</li>", ""),
    );
}

#[test]
fn deleting_the_last_block_is_a_change() {
    assert_deletion(
        &PLAIN_MD.replace("\n\nlast words", ""),
        "last words",
        &PLAIN.replace("last words", ""),
    );
}

#[test]
fn deleting_everything_is_a_change() {
    assert_eq!(
        merge_markdown(Some("<body>only</body>"), ""),
        Merge::Write("<body></body>".to_owned())
    );
}

// --- XML's special characters are escaped wherever Markdown puts them --------------------

/// The text of `html`, read with `quick-xml` on its own (not the crate's reader): `html` must
/// be well-formed XML with one `<body>` root. Returns the text of the elements named `only`
/// (all text when empty) and the values of the `href` attributes.
fn xml_text(html: &str, only: &str) -> (String, Vec<String>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(html);
    let mut text = String::new();
    let mut hrefs = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let mut roots = 0;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed XML ({e}): {html}"));
        let inside = only.is_empty() || open.iter().any(|n| n == only);
        match event {
            Event::Start(e) => {
                if open.is_empty() {
                    roots += 1;
                }
                for a in e.attributes() {
                    let a = a.unwrap_or_else(|e| panic!("bad attribute ({e}): {html}"));
                    if a.key.as_ref() == b"href" {
                        hrefs.push(a.unescape_value().unwrap().into_owned());
                    }
                }
                open.push(String::from_utf8(e.name().as_ref().to_vec()).unwrap());
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) if inside => text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) if inside => {
                let c = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().unwrap();
                        quick_xml::escape::resolve_xml_entity(&name)
                            .unwrap_or_else(|| panic!("unknown entity &{name}; in {html}"))
                            .to_owned()
                    }
                };
                text.push_str(&c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(roots, 1, "one <body>: {html}");
    assert!(open.is_empty(), "unclosed elements {open:?}: {html}");
    (text, hrefs)
}

const SPECIAL: &str = r#"a < b && c > "d" 'e' &amp; &lt; &#39;"#;

#[test]
fn inline_code_with_xml_specials_is_escaped() {
    let md = "see `a < b && c > \"d\" 'e' &amp; &lt; &#39;` here";
    let html = markdown_to_html(md);
    assert_eq!(xml_text(&html, "code").0, SPECIAL, "{html}");
    assert_eq!(html_to_markdown(&html).unwrap(), md);
    assert_eq!(normalize_markdown(md).unwrap(), md);
    // Alone on its line, and in a list item, a heading, a quote and a link.
    for md in [
        "`<b>&`",
        "- item `x < y`\n- `'q' & \"r\"`",
        "## head `a>b`",
        "> quoted `&lt;`",
        "[`<tag>`](https://e.com)",
    ] {
        let html = markdown_to_html(md);
        xml_text(&html, "");
        assert_eq!(html_to_markdown(&html).unwrap(), md, "{html}");
    }
}

#[test]
fn code_blocks_with_xml_specials_are_escaped() {
    let md = "```\nif a < b && c > \"d\" {\n    'e' &amp; &lt; &#39;\n}\n```";
    let html = markdown_to_html(md);
    assert_eq!(
        xml_text(&html, "pre").0,
        "if a < b && c > \"d\" {\n    'e' &amp; &lt; &#39;\n}",
        "{html}"
    );
    assert_eq!(html_to_markdown(&html).unwrap(), md);
    // Indented, in a list item, and in a quote.
    for md in [
        "    <x> & y",
        "- item\n\n  ```\n  a < b\n  ```",
        "> ```\n> a && b\n> ```",
    ] {
        let html = markdown_to_html(md);
        let (text, _) = xml_text(&html, "");
        assert!(
            text.contains('<') || text.contains('&'),
            "{text:?} of {html}"
        );
        let once = html_to_markdown(&html).unwrap();
        assert_eq!(markdown_to_html(&once), html, "{md:?} -> {once:?}");
    }
}

#[test]
fn links_with_xml_specials_are_escaped() {
    let md = r#"[a < b && "c" 'd' &amp;](https://e.com/?q=<x>&r="y"&s='z'&t=&amp;)"#;
    let html = markdown_to_html(md);
    let (text, hrefs) = xml_text(&html, "a");
    // Markdown reads the entity `&amp;` (in text and destination) as `&`.
    assert_eq!(text, r#"a < b && "c" 'd' &"#, "{html}");
    assert_eq!(hrefs, [r#"https://e.com/?q=<x>&r="y"&s='z'&t=&"#], "{html}");
    let once = html_to_markdown(&html).unwrap();
    assert_eq!(markdown_to_html(&once), html, "{once:?}");
    // The same through a merge into a task that has rich text.
    let Merge::Write(out) = merge_markdown(Some("<body>before</body>"), &format!("before\n\n{md}"))
    else {
        panic!("expected a write");
    };
    assert_eq!(xml_text(&out, "a").1, hrefs, "{out}");
    // An image's alt text and source are a link's.
    let html = markdown_to_html(r#"![a "<b>" & 'c'](https://e.com/i.png?a=1&b="2")"#);
    assert_eq!(
        xml_text(&html, "a"),
        (
            r#"a "<b>" & 'c'"#.to_owned(),
            vec![r#"https://e.com/i.png?a=1&b="2""#.to_owned()]
        ),
        "{html}"
    );
}

// --- shrunk cases the generators found ------------------------------------------------

/// Each reads back, from its canonical form, as the same rich text.
#[test]
fn found_by_the_generators() {
    for md in [
        // An entity typed in a URL (here an autolink's, which keeps it as typed) was written
        // bare in the destination, which read it back as `&`.
        "- &amp;\n  - ` [`](<https://example.com/a?q=&amp;>)",
        "<https://e.com/?a=&amp;b&#39;>",
        // An empty item after an item's text read back as nothing.
        "- 0\n  - A\n    - >",
        "- a\n  -\n  - b",
        "- >",
    ] {
        let html = markdown_to_html(md);
        let once = normalize_markdown(md).unwrap();
        assert_eq!(markdown_to_html(&once), html, "{md:?} -> {once:?}");
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
        prop_assert_eq!(normalize_markdown(&once), Ok(once));
    }

    /// Arbitrary text with Markdown's and XML's special characters reaches a fixed point.
    #[test]
    fn any_text_reaches_a_fixed_point(md in "[a-z *_`#>\\[\\]()!&<\\\\\n.1-]{0,60}") {
        // A failed conversion must fail the test, not pass as an empty fixed point.
        let once = normalize_markdown(&md);
        prop_assert!(once.is_ok(), "{:?} does not convert: {:?}", md, once);
        let once = once.unwrap();
        let twice = normalize_markdown(&once);
        prop_assert!(twice.is_ok(), "{:?} does not convert: {:?}", once, twice);
        prop_assert_eq!(twice.unwrap(), once);
    }

    /// Plain notes render, without the XML step, as their rich text would: the same text.
    #[test]
    fn notes_render_as_their_rich_text(notes in "[a-z *_`#>\\[\\]()!&<\"'\\\\\n\t.1-]{0,60}") {
        let via_xml = html_to_markdown(&notes_to_html(&notes));
        prop_assert_eq!(Ok(notes_to_markdown(&notes)), via_xml);
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

/// Line breaks become what Asana's rich text has for them where they are: a space in a
/// heading, a space (soft) or a new line (hard) in a list item, a new line in a quote.
#[test]
fn line_breaks_follow_their_container() {
    for (md, html) in [
        ("Title\nmore\n===", "<body><h1>Title more</h1></body>"),
        ("- one\n  two", "<body><ul><li>one two</li></ul></body>"),
        ("- one  \n  two", "<body><ul><li>one\ntwo</li></ul></body>"),
        ("> a\n> b", "<body><blockquote>a\nb</blockquote></body>"),
        ("> a  \n> b", "<body><blockquote>a\nb</blockquote></body>"),
        // A quote holds lines only: a list in it becomes its lines.
        ("> - a\n>   b", "<body><blockquote>a\nb</blockquote></body>"),
        (
            "> - a  \n>   b",
            "<body><blockquote>a\nb</blockquote></body>",
        ),
        (
            "> para one\n>\n> para two",
            "<body><blockquote>para one\npara two</blockquote></body>",
        ),
        (
            "- para one\n\n  para two",
            "<body><ul><li>para one\npara two</li></ul></body>",
        ),
    ] {
        assert_eq!(markdown_to_html(md), html, "{md:?}");
    }
}

/// HTML typed in Markdown is text to Asana, shown as typed, in a line of its own or inside a
/// quote; a rule exists only at the top level (Asana has no rule inside a quote or an item).
#[test]
fn typed_html_is_text_and_rules_live_at_the_top() {
    for (md, html) in [
        ("<div>x</div>", "<body>&lt;div&gt;x&lt;/div&gt;</body>"),
        (
            "a\n\n<div>x</div>\n\nb",
            "<body>a\n&lt;div&gt;x&lt;/div&gt;\nb</body>",
        ),
        (
            "> <div>x</div>",
            "<body><blockquote>&lt;div&gt;x&lt;/div&gt;</blockquote></body>",
        ),
        ("---", "<body><hr/></body>"),
        ("> ---", "<body><blockquote></blockquote></body>"),
        ("- a\n\n  ---", "<body><ul><li>a</li></ul></body>"),
    ] {
        assert_eq!(markdown_to_html(md), html, "{md:?}");
    }
}

/// A line break closes the open marks and opens them again on the next line: Asana's lines
/// are separate, and a mark does not span two.
#[test]
fn a_break_reopens_the_marks_on_the_next_line() {
    for (md, html) in [
        ("*a  \nb*", "<body><em>a</em>\n<em>b</em></body>"),
        ("*a\nb*", "<body><em>a</em>\n<em>b</em></body>"),
        ("**a** c  \nd", "<body><strong>a</strong> c\nd</body>"),
        (
            "> *a*  \n> b",
            "<body><blockquote><em>a</em>\nb</blockquote></body>",
        ),
    ] {
        assert_eq!(markdown_to_html(md), html, "{md:?}");
    }
}

/// A merge keeps the separators it can: between two kept neighbours the original one (a
/// blank line stays a blank line), next to a new block the kept block's own, and a new line
/// where a new block needs one to start (`text<ul>` is one line and a list; a new list after
/// it goes on a line of its own).
#[test]
fn a_merge_keeps_the_separators_it_can() {
    for (current, edit, merged) in [
        (
            "<body>one\n\ntwo\nthree</body>",
            "one\n\ntwo\n\n3",
            "<body>one\n\ntwo\n3</body>",
        ),
        (
            "<body>one\n\ntwo</body>",
            "one\n\nnew\n\ntwo",
            "<body>one\n\nnew\n\ntwo</body>",
        ),
        (
            "<body>text<ul><li>a</li></ul>after</body>",
            "text\n\n- a\n\nlater",
            "<body>text<ul><li>a</li></ul>later</body>",
        ),
        (
            "<body>text<ul><li>a</li></ul>after</body>",
            "text\n\n- b\n\nafter",
            "<body>text\n<ul><li>b</li></ul>after</body>",
        ),
        (
            "<body>one\ntwo\n\n\nthree</body>",
            "one\n\ntwo\n\nthree\n\nfour",
            "<body>one\ntwo\n\n\nthree\nfour</body>",
        ),
        (
            "<body>one\ntwo</body>",
            "zero\n\none\n\ntwo",
            "<body>zero\none\ntwo</body>",
        ),
        (
            "<body><ul><li>a</li></ul><ul><li>b</li></ul></body>",
            "- a\n\n* b\n\nc",
            "<body><ul><li>a</li></ul><ul><li>b</li></ul>c</body>",
        ),
        ("<body>a\nb\nc</body>", "a\n\nc", "<body>a\nc</body>"),
        (
            "<body>a\n\nb\n\nc</body>",
            "a\n\nx\n\nc",
            "<body>a\n\nx\n\nc</body>",
        ),
    ] {
        assert_eq!(
            merge_markdown(Some(current), edit),
            Merge::Write(merged.to_owned()),
            "{current:?} + {edit:?}"
        );
    }
}
