//! Markdown documents for property tests of the rich-text converters (Jira's ADF, Asana's
//! `html_notes`): headings, paragraphs with emphasis, code, links and images, nested lists,
//! code blocks, quotes and rules, with the characters Markdown treats specially.
//!
//! ```
//! use proptest::prelude::*;
//! proptest!(|(md in ordonis_testkit::markdown_gen::document())| {
//!     prop_assert!(md.len() < 100_000);
//! });
//! ```

use proptest::prelude::*;

/// A word, often one with a character Markdown treats specially.
pub fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9]{1,8}",
        Just("don't".to_owned()),
        Just("a_b".to_owned()),
        Just("1.".to_owned()),
        Just("#tag".to_owned()),
        Just("<b>".to_owned()),
        Just("&amp;".to_owned()),
        Just("\\".to_owned()),
        Just("[x]".to_owned()),
        Just("~".to_owned()),
        Just("ü".to_owned()),
    ]
}

/// A word or a span: emphasis, strong, strike-through, code, a link or an image.
pub fn inline_piece() -> impl Strategy<Value = String> {
    let w = "[a-zA-Z0-9]{1,8}";
    prop_oneof![
        4 => word(),
        1 => w.prop_map(|w| format!("*{w}*")),
        1 => w.prop_map(|w| format!("**{w}**")),
        1 => w.prop_map(|w| format!("~~{w}~~")),
        1 => "[a-z` ]{1,8}".prop_map(|w| format!("`` {w} ``")),
        1 => (w, "[a-z]{1,6}").prop_map(|(t, p)| format!("[{t}](https://example.com/{p})")),
        1 => (w, w).prop_map(|(a, b)| format!("**{a} *{b}***")),
        1 => w.prop_map(|w| format!("![{w}](https://example.com/{w}.png)")),
    ]
}

/// One line of inline pieces.
pub fn inline_line() -> impl Strategy<Value = String> {
    prop::collection::vec(inline_piece(), 1..6).prop_map(|v| v.join(" "))
}

/// A paragraph of one or two lines.
pub fn paragraph() -> impl Strategy<Value = String> {
    prop::collection::vec(inline_line(), 1..3).prop_map(|v| v.join("\n"))
}

/// A bullet or ordered list, nested up to `depth` levels below.
pub fn list(depth: u32) -> BoxedStrategy<String> {
    let item = if depth == 0 {
        inline_line().boxed()
    } else {
        (inline_line(), prop::option::of(list(depth - 1)))
            .prop_map(|(l, sub)| match sub {
                Some(s) => format!("{l}\n{s}"),
                None => l,
            })
            .boxed()
    };
    (any::<bool>(), prop::collection::vec(item, 1..4))
        .prop_map(|(ordered, items)| {
            items
                .iter()
                .enumerate()
                .map(|(i, it)| {
                    let marker = if ordered {
                        format!("{}. ", i + 1)
                    } else {
                        "- ".to_owned()
                    };
                    let pad = " ".repeat(marker.len());
                    let body = it.replace('\n', &format!("\n{pad}"));
                    format!("{marker}{body}")
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .boxed()
}

/// A top-level block.
pub fn block() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => paragraph(),
        1 => (1usize..=6, inline_line()).prop_map(|(l, t)| format!("{} {t}", "#".repeat(l))),
        2 => list(2),
        1 => ("[a-z]{0,5}", prop::collection::vec("[a-z `#*]{0,12}", 1..4))
            .prop_map(|(lang, lines)| format!("```{lang}\n{}\n```", lines.join("\n"))),
        1 => paragraph().prop_map(|p| format!("> {}", p.replace('\n', "\n> "))),
        1 => Just("---".to_owned()),
    ]
}

/// A document of up to five blocks.
pub fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(block(), 0..6).prop_map(|v| v.join("\n\n"))
}
