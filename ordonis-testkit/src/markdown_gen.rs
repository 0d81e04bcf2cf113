//! Markdown documents for property tests of the rich-text converters (Jira's ADF, Asana's
//! `html_notes`): headings, paragraphs with emphasis, code, links and images, nested lists,
//! code blocks, quotes and rules, with the characters Markdown treats specially and those XML
//! does (`< > & " '`, HTML entities such as `&amp;` and `&#39;`) in words, code spans, code
//! blocks, link text and link destinations.
//!
//! ```
//! use proptest::prelude::*;
//! proptest!(|(md in ordonis_testkit::markdown_gen::document())| {
//!     prop_assert!(md.len() < 100_000);
//! });
//! ```

use proptest::prelude::*;

/// Characters Markdown or XML treat specially, one of which goes into a word.
const SPECIAL: &str = "[<>&\"'`()\\[\\]]";

/// An entity Markdown and HTML read as a character (`&amp;` is `&`).
pub fn entity() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("&amp;".to_owned()),
        Just("&lt;".to_owned()),
        Just("&gt;".to_owned()),
        Just("&quot;".to_owned()),
        Just("&#39;".to_owned()),
        Just("&#x26;".to_owned()),
        Just("&copy;".to_owned()),
    ]
}

/// Text for a code span or block: letters, spaces, backticks and XML's special characters,
/// entities among them (which code keeps as typed).
fn code_text(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => "[a-z <>&\"'`()\\[\\]#*]",
            1 => entity(),
        ],
        len,
    )
    .prop_map(|v| v.concat())
}

/// A word, often one with a character Markdown or XML treats specially.
pub fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z0-9]{1,8}",
        4 => ("[a-z]{0,3}", SPECIAL, "[a-z]{0,3}").prop_map(|(a, s, b)| format!("{a}{s}{b}")),
        2 => entity(),
        1 => ("[a-z]{1,3}", entity(), "[a-z]{0,3}").prop_map(|(a, e, b)| format!("{a}{e}{b}")),
        1 => Just("don't".to_owned()),
        1 => Just("a_b".to_owned()),
        1 => Just("1.".to_owned()),
        1 => Just("#tag".to_owned()),
        1 => Just("<b>".to_owned()),
        1 => Just("&amp;".to_owned()),
        1 => Just("\\".to_owned()),
        1 => Just("[x]".to_owned()),
        1 => Just("~".to_owned()),
        1 => Just("ü".to_owned()),
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
        2 => code_text(1..8).prop_map(|c| format!("`` {c} ``")),
        1 => (link_text(), destination()).prop_map(|(t, d)| format!("[{t}]({d})")),
        1 => (w, w).prop_map(|(a, b)| format!("**{a} *{b}***")),
        1 => w.prop_map(|w| format!("![{w}](https://example.com/{w}.png)")),
        1 => (link_text(), destination()).prop_map(|(t, d)| format!("![{t}]({d})")),
    ]
}

/// A link's text: words with XML's special characters and entities (no brackets, which
/// would end it).
fn link_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => "[a-zA-Z0-9]{1,6}",
            2 => "[a-z]{0,2}[<>&\"'`][a-z]{0,2}",
            1 => entity(),
        ],
        1..4,
    )
    .prop_map(|v| v.join(" "))
}

/// A link destination with a query of XML's special characters, entities and balanced
/// parentheses, bare or in angle brackets.
fn destination() -> impl Strategy<Value = String> {
    (
        "[a-z]{1,6}",
        prop::collection::vec(
            prop_oneof![
                3 => "[a-z0-9'\"&=]{1,4}",
                1 => entity(),
                1 => "\\([a-z]{0,3}\\)",
            ],
            0..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(path, query, angle)| {
            let url = if query.is_empty() {
                format!("https://example.com/{path}")
            } else {
                format!("https://example.com/{path}?q={}", query.concat())
            };
            if angle { format!("<{url}>") } else { url }
        })
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
        1 => ("[a-z]{0,5}", prop::collection::vec(code_text(0..12), 1..4))
            .prop_map(|(lang, lines)| format!("````{lang}\n{}\n````", lines.join("\n"))),
        1 => paragraph().prop_map(|p| format!("> {}", p.replace('\n', "\n> "))),
        1 => Just("---".to_owned()),
    ]
}

/// A document of up to five blocks.
pub fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(block(), 0..6).prop_map(|v| v.join("\n\n"))
}
