//! `POST /rest/api/3/search/jql` for the fake Jira: a JQL subset, the enhanced search's
//! paging and field selection, and the search index's lag.
//!
//! The JQL subset is what Ordonis's listing and its search for a lost create send, and what
//! an integration scope typically says: `project = X`, `project in (A, B)`, `updated >=
//! "yyyy/MM/dd HH:mm"` and `created >= …` (or `"yyyy-MM-dd HH:mm"`, or a date alone),
//! `reporter = currentUser()` (the API account) or `reporter = "<accountId>"`, `id = N` or
//! `key = K` (one issue), `AND`,
//! parentheses, and `ORDER BY updated|created ASC|DESC` (ties by issue id).
//!
//! A request's `properties` (issue property keys, at most 5) add `properties: {key: value}`
//! to each issue, with the keys the issue has. Anything else is a 400 with Jira's `errorMessages`, so a client that
//! sends JQL the fake does not understand finds out instead of getting every issue.
//!
//! Dates are read in UTC: Jira reads a JQL date in the searching user's time zone, and the
//! fake's user is in UTC. They have minute granularity, like Jira's: `updated >= "… 14:05"`
//! includes an issue updated at 14:05:59.
//!
//! Paging is the enhanced search's: `maxResults` (default 50, at most 100 when fields are
//! asked for and 5000 for `id`/`key` only, as the API documents) and an opaque
//! `nextPageToken`, absent on the last page where `isLast` is true. The token remembers the
//! position in the sort order (the last issue's sort value and id), not an offset: an issue
//! updated during a crawl moves to the end and is listed again; none is skipped.
//!
//! The pure functions here ([`parse_jql`], [`search_page`]) are also what a wiremock-based
//! test fake can answer a search with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::site::{API_ACCOUNT, Site, SyncState, authorized, error, lock, now_ms, parse_jira_time};

/// Jira's cap on `maxResults` when fields beyond `id`/`key` are asked for.
pub const MAX_RESULTS_WITH_FIELDS: usize = 100;
/// Jira's cap on `maxResults` for `id`/`key`-only searches.
pub const MAX_RESULTS_IDS_ONLY: usize = 5000;
/// `maxResults` when the request has none.
pub const DEFAULT_MAX_RESULTS: usize = 50;
/// Jira accepts at most this many `reconcileIssues`.
pub const MAX_RECONCILE_ISSUES: usize = 50;

/// A parsed JQL query of the supported subset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jql {
    /// The condition, `None` for an unbounded query (which Jira refuses on this API).
    pub filter: Option<Cond>,
    /// `Some(ascending)` for `ORDER BY updated`; `None`: by issue id.
    pub order_updated: Option<bool>,
    /// `Some(ascending)` for `ORDER BY created`.
    pub order_created: Option<bool>,
}

/// A JQL condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// `project = X` / `project in (…)`: project keys, ids or names (case-insensitive).
    Project(Vec<String>),
    /// `updated >= <date>`, the date as epoch milliseconds (UTC).
    UpdatedAtLeast(i64),
    /// `created >= <date>`, the date as epoch milliseconds (UTC).
    CreatedAtLeast(i64),
    /// `reporter = <accountId>` (`currentUser()` is the API account).
    Reporter(String),
    /// `id = <id>` or `key = <key>`: one issue.
    Issue(String),
    /// Both.
    And(Box<Cond>, Box<Cond>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '"' | '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == c)
                    .ok_or_else(|| "Error in the JQL Query: unterminated string".to_owned())?;
                out.push(Tok::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '>' | '<' | '=' | '!' | '~' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = match two.as_str() {
                    ">=" => ">=",
                    "<=" => "<=",
                    "!=" => "!=",
                    "!~" => "!~",
                    _ => match c {
                        '>' => ">",
                        '<' => "<",
                        '=' => "=",
                        '~' => "~",
                        _ => return Err(format!("Error in the JQL Query: unexpected '{c}'")),
                    },
                };
                i += op.len();
                out.push(Tok::Op(op));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !"()=,<>!~\"'".contains(chars[i])
                {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

fn unsupported(what: &str) -> String {
    format!(
        "Error in the JQL Query: {what} (the fake Jira supports project, id, key, updated >=, created >=, reporter =, AND, parentheses and ORDER BY updated|created)"
    )
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }
    fn expr(&mut self) -> Result<Cond, String> {
        let mut left = self.atom()?;
        while self.is_word("and") {
            self.pos += 1;
            let right = self.atom()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        if self.is_word("or") || self.is_word("not") {
            return Err(unsupported("OR and NOT are not supported"));
        }
        Ok(left)
    }
    fn value(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w) | Tok::Str(w)) => Ok(w),
            other => Err(unsupported(&format!("expected a value, got {other:?}"))),
        }
    }
    fn atom(&mut self) -> Result<Cond, String> {
        match self.next() {
            Some(Tok::Open) => {
                let e = self.expr()?;
                match self.next() {
                    Some(Tok::Close) => Ok(e),
                    _ => Err("Error in the JQL Query: expecting ')'".to_owned()),
                }
            }
            Some(Tok::Word(field)) if field.eq_ignore_ascii_case("project") => match self.next() {
                Some(Tok::Op("=")) => Ok(Cond::Project(vec![self.value()?])),
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => {
                    if self.next() != Some(Tok::Open) {
                        return Err("Error in the JQL Query: expecting '(' after IN".into());
                    }
                    let mut list = vec![self.value()?];
                    loop {
                        match self.next() {
                            Some(Tok::Comma) => list.push(self.value()?),
                            Some(Tok::Close) => break,
                            _ => return Err("Error in the JQL Query: expecting ')'".into()),
                        }
                    }
                    Ok(Cond::Project(list))
                }
                other => Err(unsupported(&format!("operator {other:?} on project"))),
            },
            Some(Tok::Word(field))
                if field.eq_ignore_ascii_case("updated")
                    || field.eq_ignore_ascii_case("created") =>
            {
                let name = field.to_ascii_lowercase();
                match self.next() {
                    Some(Tok::Op(">=")) => {
                        let v = self.value()?;
                        let ms = parse_jql_date(&v).ok_or_else(|| {
                            format!(
                                "Date value '{v}' for field '{name}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
                            )
                        })?;
                        Ok(if name == "created" {
                            Cond::CreatedAtLeast(ms)
                        } else {
                            Cond::UpdatedAtLeast(ms)
                        })
                    }
                    other => Err(unsupported(&format!("operator {other:?} on {name}"))),
                }
            }
            Some(Tok::Word(field))
                if field.eq_ignore_ascii_case("id") || field.eq_ignore_ascii_case("key") =>
            {
                if self.next() != Some(Tok::Op("=")) {
                    return Err(unsupported("id and key take only ="));
                }
                Ok(Cond::Issue(self.value()?))
            }
            Some(Tok::Word(field)) if field.eq_ignore_ascii_case("reporter") => {
                if self.next() != Some(Tok::Op("=")) {
                    return Err(unsupported("reporter takes only ="));
                }
                match self.next() {
                    Some(Tok::Word(f)) if f.eq_ignore_ascii_case("currentUser") => {
                        if self.next() != Some(Tok::Open) || self.next() != Some(Tok::Close) {
                            return Err(
                                "Error in the JQL Query: expecting '()' after currentUser".into()
                            );
                        }
                        Ok(Cond::Reporter(API_ACCOUNT.to_owned()))
                    }
                    Some(Tok::Str(account)) => Ok(Cond::Reporter(account)),
                    other => Err(unsupported(&format!("reporter = {other:?}"))),
                }
            }
            Some(Tok::Word(field)) => Err(format!(
                "Field '{field}' does not exist or you do not have permission to view it."
            )),
            other => Err(unsupported(&format!("unexpected {other:?}"))),
        }
    }
}

/// Parses the supported JQL subset; `Err` is the message Jira's 400 carries.
pub fn parse_jql(jql: &str) -> Result<Jql, String> {
    let mut p = Parser {
        toks: tokenize(jql)?,
        pos: 0,
    };
    let filter = if p.peek().is_none() || p.is_word("order") {
        None
    } else {
        Some(p.expr()?)
    };
    let mut order_updated = None;
    let mut order_created = None;
    if p.is_word("order") {
        p.pos += 1;
        if !p.is_word("by") {
            return Err("Error in the JQL Query: expecting 'by' after 'order'".to_owned());
        }
        p.pos += 1;
        let by_created = match p.next() {
            Some(Tok::Word(f)) if f.eq_ignore_ascii_case("updated") => false,
            Some(Tok::Word(f)) if f.eq_ignore_ascii_case("created") => true,
            other => return Err(unsupported(&format!("ORDER BY {other:?}"))),
        };
        let asc = if p.is_word("desc") {
            p.pos += 1;
            false
        } else {
            if p.is_word("asc") {
                p.pos += 1;
            }
            true
        };
        if by_created {
            order_created = Some(asc);
        } else {
            order_updated = Some(asc);
        }
    }
    if let Some(t) = p.peek() {
        return Err(unsupported(&format!("unexpected {t:?}")));
    }
    Ok(Jql {
        filter,
        order_updated,
        order_created,
    })
}

/// A JQL date (`yyyy/MM/dd HH:mm`, `yyyy-MM-dd HH:mm`, or the date alone) in UTC, as epoch ms.
pub fn parse_jql_date(s: &str) -> Option<i64> {
    let s = s.trim().replace('/', "-");
    let (date, clock) = match s.split_once(' ') {
        Some((d, c)) => (d.to_owned(), c.trim().to_owned()),
        None => (s.clone(), "00:00".to_owned()),
    };
    let mut d = date.split('-').map(|x| x.parse::<i32>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hh, mm) = clock.split_once(':')?;
    let (hh, mm): (u8, u8) = (hh.parse().ok()?, mm.parse().ok()?);
    let date = time::Date::from_calendar_date(
        y,
        time::Month::try_from(u8::try_from(m).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let t = date.with_hms(hh, mm, 0).ok()?.assume_utc();
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

fn updated_ms(issue: &Value) -> i64 {
    time_ms(issue, "updated")
}

/// An issue's `updated` or `created` as epoch ms (0 when it has none).
fn time_ms(issue: &Value, field: &str) -> i64 {
    issue["fields"][field]
        .as_str()
        .and_then(parse_jira_time)
        .unwrap_or(0)
}

fn id_num(issue: &Value) -> u64 {
    match &issue["id"] {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn project_matches(issue: &Value, names: &[String]) -> bool {
    let p = &issue["fields"]["project"];
    let key_prefix = issue["key"]
        .as_str()
        .and_then(|k| k.rsplit_once('-'))
        .map(|(p, _)| p.to_owned());
    let own = [
        p["key"].as_str().map(str::to_owned),
        p["id"].as_str().map(str::to_owned),
        p["name"].as_str().map(str::to_owned),
        key_prefix,
    ];
    names
        .iter()
        .any(|n| own.iter().flatten().any(|o| o.eq_ignore_ascii_case(n)))
}

impl Cond {
    /// Whether an issue (Jira's JSON) matches.
    pub fn matches(&self, issue: &Value) -> bool {
        match self {
            Cond::Project(names) => project_matches(issue, names),
            Cond::UpdatedAtLeast(ms) => updated_ms(issue) >= *ms,
            Cond::CreatedAtLeast(ms) => time_ms(issue, "created") >= *ms,
            Cond::Reporter(account) => {
                issue["fields"]["reporter"]["accountId"].as_str() == Some(account.as_str())
            }
            Cond::Issue(id) => {
                issue["id"].as_str() == Some(id.as_str())
                    || issue["key"]
                        .as_str()
                        .is_some_and(|k| k.eq_ignore_ascii_case(id))
            }
            Cond::And(a, b) => a.matches(issue) && b.matches(issue),
        }
    }
}

/// A request body field that is a list of strings, also given comma-separated.
fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        Value::String(s) => s.split(',').map(|s| s.trim().to_owned()).collect(),
        _ => Vec::new(),
    }
}

/// The `reconcileIssues` ids of a search body (numbers, as the API documents).
pub fn reconcile_ids(body: &Value) -> Result<BTreeSet<String>, String> {
    let Some(list) = body.get("reconcileIssues") else {
        return Ok(BTreeSet::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| "reconcileIssues must be a list of issue ids".to_owned())?;
    if list.len() > MAX_RECONCILE_ISSUES {
        return Err(format!(
            "reconcileIssues accepts at most {MAX_RECONCILE_ISSUES} ids"
        ));
    }
    list.iter()
        .map(|v| {
            v.as_i64()
                .map(|n| n.to_string())
                .ok_or_else(|| "reconcileIssues must be a list of numeric issue ids".to_owned())
        })
        .collect()
}

fn select_fields(issue: &Value, wanted: &[String], base_url: &str) -> Value {
    let id = issue["id"].clone();
    let mut out = Map::new();
    out.insert("id".into(), id.clone());
    let all = wanted.iter().any(|f| f == "*all" || f == "*navigable");
    let excluded: Vec<&str> = wanted.iter().filter_map(|f| f.strip_prefix('-')).collect();
    let named: Vec<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|f| !f.starts_with('-') && !f.starts_with('*'))
        .collect();
    let id_only = !all && named.iter().all(|f| *f == "id");
    if !id_only {
        out.insert("key".into(), issue["key"].clone());
        out.insert(
            "self".into(),
            Value::String(format!(
                "{base_url}/rest/api/3/issue/{}",
                id.as_str().map_or_else(|| id.to_string(), str::to_owned)
            )),
        );
        let fields: Map<String, Value> = issue["fields"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| {
                (all || named.contains(&k.as_str())) && !excluded.contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.insert("fields".into(), Value::Object(fields));
    }
    Value::Object(out)
}

/// The sort position of an issue: (the sort field's time or 0, id).
fn position(issue: &Value, by: Option<&str>) -> (i64, u64) {
    (by.map_or(0, |f| time_ms(issue, f)), id_num(issue))
}

fn token_for(jql: &str, pos: (i64, u64)) -> String {
    // The query's hash keeps a token from being replayed against another query.
    format!("{:x}.{}.{}", fnv(jql), pos.0, pos.1)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn parse_token(jql: &str, token: &str) -> Option<(i64, u64)> {
    let mut parts = token.split('.');
    let (h, a, b) = (parts.next()?, parts.next()?, parts.next()?);
    if h != format!("{:x}", fnv(jql)) || parts.next().is_some() {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Answers one search request over `issues` (the index's view: each issue as the search
/// sees it). `Err` is a 400's message.
pub fn search_page<'a>(
    issues: impl IntoIterator<Item = &'a Value>,
    body: &Value,
    base_url: &str,
) -> Result<Value, String> {
    let jql_text = body
        .get("jql")
        .and_then(Value::as_str)
        .ok_or_else(|| "The JQL query is required.".to_owned())?;
    let jql = parse_jql(jql_text)?;
    let Some(filter) = &jql.filter else {
        return Err(
            "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
                .to_owned(),
        );
    };
    let fields = string_list(body.get("fields").unwrap_or(&Value::Null));
    let ids_only = fields.iter().all(|f| f == "id" || f == "key");
    let cap = if ids_only {
        MAX_RESULTS_IDS_ONLY
    } else {
        MAX_RESULTS_WITH_FIELDS
    };
    let max = match body.get("maxResults") {
        None | Some(Value::Null) => DEFAULT_MAX_RESULTS,
        Some(v) => usize::try_from(
            v.as_u64()
                .ok_or_else(|| "maxResults must be a non-negative integer".to_owned())?,
        )
        .unwrap_or(usize::MAX),
    }
    .clamp(1, cap);
    let by = match (jql.order_updated, jql.order_created) {
        (Some(_), _) => Some("updated"),
        (None, Some(_)) => Some("created"),
        (None, None) => None,
    };
    let asc = jql.order_updated.or(jql.order_created).unwrap_or(true);
    let after = match body.get("nextPageToken").and_then(Value::as_str) {
        Some(t) => Some(
            parse_token(jql_text, t)
                .ok_or_else(|| "The provided next page token is invalid or expired.".to_owned())?,
        ),
        None => None,
    };
    let mut hits: Vec<((i64, u64), &Value)> = issues
        .into_iter()
        .filter(|i| filter.matches(i))
        .map(|i| (position(i, by), i))
        .filter(|(p, _)| match after {
            None => true,
            Some(a) if asc => *p > a,
            Some(a) => *p < a,
        })
        .collect();
    hits.sort_by_key(|(p, _)| *p);
    if !asc {
        hits.reverse();
    }
    let is_last = hits.len() <= max;
    hits.truncate(max);
    let mut out = json!({
        "issues": hits.iter().map(|(_, i)| select_fields(i, &fields, base_url)).collect::<Vec<_>>(),
        "isLast": is_last,
    });
    if !is_last && let Some((last, _)) = hits.last() {
        out["nextPageToken"] = Value::String(token_for(jql_text, *last));
    }
    Ok(out)
}

/// Answers a search over the index's view of `issues` (each issue as it was `lag` ago, the
/// `fresh` ids as they are), borrowing rather than copying the site's issues: a backfill
/// benchmark pages through thousands of them.
fn search_index(
    sync: &SyncState,
    issues: &BTreeMap<String, Value>,
    fresh: &BTreeSet<String>,
    body: &Value,
    base_url: &str,
) -> Result<Value, String> {
    let lag = sync.lag();
    if lag == 0 {
        return search_page(issues.values(), body, base_url);
    }
    let horizon = now_ms().saturating_sub(lag);
    let history = lock(&sync.history);
    let view = issues.iter().filter_map(|(id, cur)| {
        if fresh.contains(id) {
            Some(cur)
        } else {
            history
                .get(id)
                .and_then(|l| l.iter().rev().find(|(at, _)| *at <= horizon))
                .map(|(_, v)| v)
        }
    });
    search_page(view, body, base_url)
}

/// Jira's cap on the property keys a search returns.
pub const MAX_SEARCH_PROPERTIES: usize = 5;

/// The `properties` of a search body: a list of property keys, at most
/// [`MAX_SEARCH_PROPERTIES`].
fn property_keys(body: &Value) -> Result<Vec<String>, String> {
    let keys = match body.get("properties") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|k| {
                k.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "properties must be a list of property keys".to_owned())
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err("properties must be a list of property keys".to_owned()),
    };
    if keys.len() > MAX_SEARCH_PROPERTIES {
        return Err(format!(
            "At most {MAX_SEARCH_PROPERTIES} issue properties can be requested."
        ));
    }
    Ok(keys)
}

/// `POST /rest/api/3/search/jql`.
pub(super) async fn search(
    State(s): State<Arc<Site>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log("POST /rest/api/3/search/jql".to_owned());
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if let Some(fault) = s.sync.read_fault() {
        return fault;
    }
    let fresh = match reconcile_ids(&body) {
        Ok(ids) => ids,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let wanted = match property_keys(&body) {
        Ok(keys) => keys,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    // Lock order: issues, then history (as an edit records its new state).
    let found = {
        let issues = lock(&s.issues);
        search_index(&s.sync, &issues, &fresh, &body, &s.base_url)
    };
    match found {
        Ok(mut v) => {
            if !wanted.is_empty() {
                let props = lock(&s.issue_properties);
                for issue in v["issues"].as_array_mut().into_iter().flatten() {
                    let id = issue["id"].as_str().unwrap_or_default().to_owned();
                    let mine: Map<String, Value> = props
                        .get(&id)
                        .into_iter()
                        .flatten()
                        .filter(|(k, _)| wanted.contains(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    issue["properties"] = Value::Object(mine);
                }
            }
            Json(v).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jira::jira_time;

    #[test]
    fn parses_the_subset_and_refuses_the_rest() {
        let q =
            parse_jql(r#"(project = HO) AND updated >= "2026/12/02 14:05" ORDER BY updated DESC"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.order_updated, Some(false));
        assert!(matches!(q.filter, Some(Cond::And(_, _))));
        assert!(parse_jql("project in (A, 'B')").is_ok());
        assert!(parse_jql("assignee = currentUser()").is_err());
        let q = parse_jql(
            r#"project = "KAN" AND reporter = currentUser() AND created >= "2026/12/02 14:05" ORDER BY created DESC"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((q.order_created, q.order_updated), (Some(false), None));
        let issue = serde_json::json!({"id": "1", "key": "KAN-1", "fields": {
            "project": {"key": "KAN"}, "reporter": {"accountId": API_ACCOUNT},
            "created": "2026-12-02T14:05:30.000+0000"}});
        assert!(q.filter.as_ref().is_some_and(|f| f.matches(&issue)));
        let mut other = issue.clone();
        other["fields"]["reporter"]["accountId"] = "someone-else".into();
        assert!(!q.filter.as_ref().is_some_and(|f| f.matches(&other)));
        let mut older = issue.clone();
        older["fields"]["created"] = "2026-12-02T14:04:59.000+0000".into();
        assert!(!q.filter.as_ref().is_some_and(|f| f.matches(&older)));
        assert!(parse_jql("reporter = currentUser").is_err());
        assert!(parse_jql("reporter in (a)").is_err());
        assert!(parse_jql("project = A OR project = B").is_err());
        assert!(parse_jql("updated >= \"yesterday\"").is_err());
        assert_eq!(
            parse_jql_date("2026-12-02 14:05"),
            parse_jql_date("2026/12/02 14:05")
        );
    }

    #[test]
    fn jira_times_round_trip() {
        let ms = 1_764_684_300_123;
        assert_eq!(parse_jira_time(&jira_time(ms)), Some(ms));
        assert_eq!(
            parse_jira_time("2024-12-29T08:41:23.303+0530"),
            parse_jira_time("2024-12-29T03:11:23.303+0000")
        );
    }
}
