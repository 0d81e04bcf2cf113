//! The fake Asana's rich text (`html_notes`), as strict as Asana's API:
//!
//! - written rich text must be XML with a `<body>` root and only the tags Asana documents for
//!   task notes (developers.asana.com/docs/rich-text); anything else is a 400 that refuses
//!   the whole `PUT`;
//! - `notes` is derived from it (the text, a line per block);
//! - writing plain `notes` replaces the rich text with that text: formatting, @-mentions and
//!   images are gone, as in Asana;
//! - `html_notes` is returned only when `opt_fields` asks for it (it is not a default field).

use quick_xml::Reader;
use quick_xml::escape::{partial_escape, resolve_xml_entity};
use quick_xml::events::Event;

/// The tags Asana returns and accepts in a task's `html_notes`.
const TAGS: [&str; 20] = [
    "body",
    "strong",
    "em",
    "u",
    "s",
    "code",
    "ol",
    "ul",
    "li",
    "a",
    "blockquote",
    "pre",
    "h1",
    "h2",
    "hr",
    "img",
    "table",
    "tr",
    "td",
    "object",
];

/// Blocks after which the derived plain text starts a new line.
const BLOCKS: [&str; 9] = [
    "li",
    "h1",
    "h2",
    "blockquote",
    "pre",
    "hr",
    "tr",
    "ul",
    "ol",
];

/// Checks rich text as Asana would before storing it; `Ok` is the plain `notes` it implies,
/// `Err` the 400 message.
pub(super) fn check(html: &str) -> Result<String, String> {
    let bad = |why: String| Err(format!("html_notes: {why}"));
    let mut reader = Reader::from_str(html);
    let mut depth = 0usize;
    let mut roots = 0usize;
    let mut text = String::new();
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return bad(format!("the rich text is not valid XML ({e})")),
        };
        let (name, opens, closes) = match &event {
            Event::Start(e) => (e.name().as_ref().to_vec(), true, false),
            Event::Empty(e) => (e.name().as_ref().to_vec(), true, true),
            Event::End(e) => (e.name().as_ref().to_vec(), false, true),
            Event::Text(t) => {
                if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) {
                    return bad("text outside <body>".to_owned());
                }
                text.push_str(&String::from_utf8_lossy(t));
                continue;
            }
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(r).into_owned();
                match r.resolve_char_ref() {
                    Ok(Some(c)) => text.push(c),
                    _ => match resolve_xml_entity(&name) {
                        Some(s) => text.push_str(s),
                        None => return bad(format!("unknown entity &{name};")),
                    },
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = String::from_utf8_lossy(&name).into_owned();
        if opens {
            if !TAGS.contains(&name.as_str()) {
                return bad(format!("the tag <{name}> is not supported"));
            }
            if depth == 0 {
                roots += 1;
                if name != "body" || roots > 1 {
                    return bad("rich text must be one <body> element".to_owned());
                }
            } else if name == "body" {
                return bad("<body> inside <body>".to_owned());
            }
            depth += 1;
        }
        if closes {
            depth = depth.saturating_sub(1);
            if BLOCKS.contains(&name.as_str()) && !text.ends_with('\n') && !text.is_empty() {
                text.push('\n');
            }
        }
    }
    if roots != 1 || depth != 0 {
        return bad("rich text must be one <body> element".to_owned());
    }
    Ok(text.trim_end().to_owned())
}

/// The rich text plain `notes` become: the text, escaped, and nothing else.
pub(super) fn from_notes(notes: &str) -> String {
    format!("<body>{}</body>", partial_escape(notes))
}

/// Whether `opt_fields` (a comma-separated list) names `html_notes`.
pub(super) fn asked_for(opt_fields: Option<&str>) -> bool {
    opt_fields.is_some_and(|f| f.split(',').any(|p| p.trim() == "html_notes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_like_asana() {
        assert_eq!(
            check("<body><h1>T</h1>a &amp; b\n<ul><li>x</li><li>y</li></ul></body>"),
            Ok("T\na & b\nx\ny".to_owned())
        );
        assert!(check("<body>open").is_err());
        assert!(check("plain").is_err());
        assert!(
            check("<body><p>para</p></body>").is_err(),
            "<p> is not Asana's"
        );
        assert!(check("<body></body><body></body>").is_err());
        assert_eq!(from_notes("a < b"), "<body>a &lt; b</body>");
        assert!(asked_for(Some("name,html_notes")) && !asked_for(Some("notes")));
    }
}
