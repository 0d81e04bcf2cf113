//! Jira wiki markup <-> ADF, as the fake Jira needs it: Jira Cloud stores descriptions as
//! ADF and serves them so on REST v3, but renders them as wiki markup in webhooks (the REST v2
//! shape). This covers the common part of the notation (headings, paragraphs, lists, strong,
//! emphasis, monospace, links, mentions, images, code, quotes, rules); it is a test double's
//! approximation, not a converter to build on.

use serde_json::{Value, json};

fn children(v: &Value) -> &[Value] {
    v.get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn ty(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

fn attr<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get("attrs")
        .and_then(|a| a.get(k))
        .and_then(Value::as_str)
}

/// Renders an ADF document as wiki markup (what a v2 webhook carries); `null` stays `null`.
pub fn adf_to_wiki(doc: &Value) -> Value {
    if !doc.is_object() {
        return Value::Null;
    }
    Value::String(blocks(children(doc), 1))
}

fn blocks(nodes: &[Value], depth: usize) -> String {
    nodes
        .iter()
        .map(|b| block(b, depth))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn block(b: &Value, depth: usize) -> String {
    match ty(b) {
        "heading" => {
            let level = b
                .get("attrs")
                .and_then(|a| a.get("level"))
                .and_then(Value::as_u64)
                .unwrap_or(1);
            format!("h{level}. {}", inline(children(b)))
        }
        "paragraph" => inline(children(b)),
        "bulletList" | "orderedList" => {
            let mark = if ty(b) == "bulletList" { "*" } else { "#" };
            children(b)
                .iter()
                .map(|item| {
                    let mut lines = Vec::new();
                    for c in children(item) {
                        match ty(c) {
                            "bulletList" | "orderedList" => lines.push(block(c, depth + 1)),
                            _ => lines.push(format!("{} {}", mark.repeat(depth), block(c, depth))),
                        }
                    }
                    lines.join("\n")
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        "codeBlock" => {
            let text: String = children(b)
                .iter()
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect();
            match attr(b, "language") {
                Some(l) => format!("{{code:{l}}}\n{text}\n{{code}}"),
                None => format!("{{code}}\n{text}\n{{code}}"),
            }
        }
        "blockquote" => format!("{{quote}}\n{}\n{{quote}}", blocks(children(b), depth)),
        "rule" => "----".to_owned(),
        "mediaSingle" | "mediaGroup" => children(b)
            .iter()
            .map(|m| {
                let name = attr(m, "alt")
                    .or_else(|| attr(m, "url"))
                    .or_else(|| attr(m, "id"))
                    .unwrap_or("image");
                format!("!{name}|thumbnail!")
            })
            .collect::<Vec<_>>()
            .join(" "),
        "panel" => format!("{{panel}}\n{}\n{{panel}}", blocks(children(b), depth)),
        "table" => children(b)
            .iter()
            .map(|row| {
                let cells: Vec<String> = children(row)
                    .iter()
                    .map(|c| blocks(children(c), depth))
                    .collect();
                let sep = if children(row).first().map(ty) == Some("tableHeader") {
                    "||"
                } else {
                    "|"
                };
                format!("{sep}{}{sep}", cells.join(sep))
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => blocks(children(b), depth),
    }
}

fn inline(nodes: &[Value]) -> String {
    let mut out = String::new();
    for n in nodes {
        match ty(n) {
            "text" => {
                let mut t = n
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                for m in n
                    .get("marks")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    t = match ty(m) {
                        "strong" => format!("*{t}*"),
                        "em" => format!("_{t}_"),
                        "code" => format!("{{{{{t}}}}}"),
                        "strike" => format!("-{t}-"),
                        "link" => format!("[{t}|{}]", attr(m, "href").unwrap_or("")),
                        _ => t,
                    };
                }
                out.push_str(&t);
            }
            "hardBreak" => out.push('\n'),
            "mention" => out.push_str(&format!("[~accountid:{}]", attr(n, "id").unwrap_or(""))),
            "emoji" => out.push_str(attr(n, "shortName").unwrap_or("")),
            "status" => out.push_str(attr(n, "text").unwrap_or("")),
            "inlineCard" => out.push_str(&format!(
                "[{}|{}|smart-link]",
                attr(n, "url").unwrap_or(""),
                attr(n, "url").unwrap_or("")
            )),
            _ => out.push_str(&inline(children(n))),
        }
    }
    out
}

/// Parses wiki markup into an ADF document (how the fake stores a description that arrives
/// as wiki markup, e.g. from a v2 fixture).
pub fn wiki_to_adf(wiki: &str) -> Value {
    let mut content: Vec<Value> = Vec::new();
    let mut para: Vec<String> = Vec::new();
    let mut list: Vec<(usize, bool, String)> = Vec::new();
    let lines: Vec<&str> = wiki.lines().collect();
    let flush_para = |para: &mut Vec<String>, content: &mut Vec<Value>| {
        if !para.is_empty() {
            let mut inl = Vec::new();
            for (i, l) in para.iter().enumerate() {
                if i > 0 {
                    inl.push(json!({"type": "hardBreak"}));
                }
                inl.extend(parse_inline(l));
            }
            content.push(json!({"type": "paragraph", "content": inl}));
            para.clear();
        }
    };
    let flush_list = |list: &mut Vec<(usize, bool, String)>, content: &mut Vec<Value>| {
        if !list.is_empty() {
            content.push(build_list(list, 0, list[0].1).0);
            list.clear();
        }
    };
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("{code") {
            flush_para(&mut para, &mut content);
            flush_list(&mut list, &mut content);
            let lang = rest
                .trim_end_matches('}')
                .trim_start_matches(':')
                .to_owned();
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && lines[i].trim() != "{code}" {
                body.push(lines[i]);
                i += 1;
            }
            let mut node = json!({"type": "codeBlock", "content": [{"type": "text", "text": body.join("\n")}]});
            if !lang.is_empty() {
                node["attrs"] = json!({"language": lang});
            }
            content.push(node);
            i += 1;
            continue;
        }
        let marker_len = trimmed
            .chars()
            .take_while(|c| *c == '*' || *c == '#')
            .count();
        let is_item = marker_len > 0
            && trimmed[marker_len..].starts_with(' ')
            && trimmed[..marker_len]
                .chars()
                .all(|c| c == trimmed.as_bytes()[0] as char);
        if trimmed.is_empty() {
            flush_para(&mut para, &mut content);
            flush_list(&mut list, &mut content);
        } else if let Some((h, rest)) = heading(trimmed) {
            flush_para(&mut para, &mut content);
            flush_list(&mut list, &mut content);
            content.push(
                json!({"type": "heading", "attrs": {"level": h}, "content": parse_inline(rest)}),
            );
        } else if trimmed == "----" {
            flush_para(&mut para, &mut content);
            flush_list(&mut list, &mut content);
            content.push(json!({"type": "rule"}));
        } else if is_item {
            flush_para(&mut para, &mut content);
            list.push((
                marker_len,
                trimmed.starts_with('#'),
                trimmed[marker_len + 1..].to_owned(),
            ));
        } else if trimmed.starts_with('!') && trimmed.ends_with('!') && trimmed.len() > 2 {
            flush_para(&mut para, &mut content);
            flush_list(&mut list, &mut content);
            let inner = &trimmed[1..trimmed.len() - 1];
            let name = inner.split('|').next().unwrap_or(inner);
            content.push(json!({"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [
                {"type": "media", "attrs": {"id": name, "type": "file", "collection": "fake-jira", "alt": name}}]}));
        } else {
            flush_list(&mut list, &mut content);
            para.push(trimmed.to_owned());
        }
        i += 1;
    }
    flush_para(&mut para, &mut content);
    flush_list(&mut list, &mut content);
    json!({"type": "doc", "version": 1, "content": content})
}

fn heading(line: &str) -> Option<(u64, &str)> {
    let b = line.as_bytes();
    if b.len() >= 4 && b[0] == b'h' && (b'1'..=b'6').contains(&b[1]) && b[2] == b'.' && b[3] == b' '
    {
        Some((u64::from(b[1] - b'0'), &line[4..]))
    } else {
        None
    }
}

/// Builds a (nested) list from items at `depth`+1 starting at index 0; returns the list and
/// how many items it consumed.
fn build_list(items: &[(usize, bool, String)], depth: usize, ordered: bool) -> (Value, usize) {
    let mut out: Vec<Value> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let (d, _, text) = &items[i];
        if *d <= depth {
            break;
        }
        if *d == depth + 1 {
            out.push(json!({"type": "listItem", "content": [{"type": "paragraph", "content": parse_inline(text)}]}));
            i += 1;
        } else {
            let (sub, n) = build_list(&items[i..], depth + 1, items[i].1);
            match out
                .last_mut()
                .and_then(|it| it.get_mut("content"))
                .and_then(Value::as_array_mut)
            {
                Some(c) => c.push(sub),
                None => out.push(json!({"type": "listItem", "content": [sub]})),
            }
            i += n.max(1);
        }
    }
    let t = if ordered { "orderedList" } else { "bulletList" };
    (json!({"type": t, "content": out}), i)
}

fn parse_inline(s: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut text = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let flush = |text: &mut String, out: &mut Vec<Value>| {
        if !text.is_empty() {
            out.push(json!({"type": "text", "text": std::mem::take(text)}));
        }
    };
    while i < chars.len() {
        if chars[i] == '['
            && let Some(end) = chars[i..].iter().position(|c| *c == ']')
        {
            {
                let inner: String = chars[i + 1..i + end].iter().collect();
                if let Some(id) = inner.strip_prefix("~accountid:") {
                    flush(&mut text, &mut out);
                    out.push(
                        json!({"type": "mention", "attrs": {"id": id, "text": format!("@{id}")}}),
                    );
                    i += end + 1;
                    continue;
                }
                if let Some((label, href)) = inner.split_once('|') {
                    flush(&mut text, &mut out);
                    let href = href.split('|').next().unwrap_or(href);
                    out.push(json!({"type": "text", "text": label, "marks": [{"type": "link", "attrs": {"href": href}}]}));
                    i += end + 1;
                    continue;
                }
            }
        }
        text.push(chars[i]);
        i += 1;
    }
    flush(&mut text, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiki_round_trip_of_the_common_notation() {
        let wiki = "h2. Title\n\nSome text with a [link|https://example.com] and [~accountid:abc]\n\n* one\n** nested\n* two\n\n!shot.png|thumbnail!";
        let adf = wiki_to_adf(wiki);
        assert_eq!(adf["content"][0]["type"], "heading");
        assert_eq!(adf["content"][1]["content"][3]["type"], "mention");
        assert_eq!(adf["content"][2]["type"], "bulletList");
        assert_eq!(adf["content"][3]["type"], "mediaSingle");
        assert_eq!(adf_to_wiki(&adf), Value::String(wiki.to_owned()));
    }
}
