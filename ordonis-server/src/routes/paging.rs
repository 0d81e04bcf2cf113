//! The cursor contract every list of the API shares (README, "Paging"): `limit` (default
//! 100, at most 1,000) and an opaque `cursor` in, `next_cursor` (a string, or `null` on the
//! last page) out. A cursor names the last row of the page it came from (keyset paging), so
//! pages stay stable while rows are appended; one a list did not give is a `400`.
//!
//! Inside, a cursor is the hex of `<kind>:<position>`, where the kind names the list it
//! belongs to, so a cursor of one list is refused by another.

use ordonis_core::JobCursor;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::errors::ApiError;

/// The page size when none is asked for.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest page.
pub const MAX_LIMIT: usize = 1000;

/// The page size asked for, within `1..=MAX_LIMIT`.
pub fn limit(asked: Option<usize>) -> usize {
    asked.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// One page of a list.
#[derive(Debug)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from `limit + 1` rows read: the extra row, when there, says a next page exists,
    /// and the cursor names the page's last row.
    pub fn of(mut rows: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more { rows.last().map(cursor) } else { None };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

impl<T> Page<T> {
    /// The page with each row mapped, rows mapped to `None` left out (the cursor stays the
    /// one of the rows read).
    pub fn map<U>(self, f: impl FnMut(T) -> Option<U>) -> Page<U> {
        Page {
            items: self.items.into_iter().filter_map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

fn bad_cursor() -> ApiError {
    ApiError::bad_request("cursor is not one this list gave (pass next_cursor back unchanged)")
}

fn encode(kind: &str, position: &str) -> String {
    hex::encode(format!("{kind}:{position}"))
}

/// The position a cursor of `kind` holds; `Ok(None)` for no (or an empty) cursor.
fn decode(kind: &str, cursor: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(c) = cursor.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let bytes = hex::decode(c).map_err(|_| bad_cursor())?;
    let text = String::from_utf8(bytes).map_err(|_| bad_cursor())?;
    match text.split_once(':') {
        Some((k, position)) if k == kind => Ok(Some(position.to_owned())),
        _ => Err(bad_cursor()),
    }
}

/// The cursor of a queue row of list `kind`.
pub fn job_cursor(kind: &str, c: JobCursor) -> String {
    encode(kind, &format!("{}.{}", c.at.unix_timestamp_nanos(), c.id))
}

/// The queue position a cursor of list `kind` names.
pub fn parse_job_cursor(kind: &str, cursor: Option<&str>) -> Result<Option<JobCursor>, ApiError> {
    let Some(p) = decode(kind, cursor)? else {
        return Ok(None);
    };
    let (at, id) = p.split_once('.').ok_or_else(bad_cursor)?;
    let at: i128 = at.parse().map_err(|_| bad_cursor())?;
    Ok(Some(JobCursor {
        at: OffsetDateTime::from_unix_timestamp_nanos(at).map_err(|_| bad_cursor())?,
        id: Uuid::parse_str(id).map_err(|_| bad_cursor())?,
    }))
}

/// The cursor of an index-ordered list (a ledger) of `kind`.
pub fn index_cursor(kind: &str, idx: u64) -> String {
    encode(kind, &idx.to_string())
}

/// The index a cursor of list `kind` names.
pub fn parse_index_cursor(kind: &str, cursor: Option<&str>) -> Result<Option<u64>, ApiError> {
    decode(kind, cursor)?
        .map(|p| p.parse().map_err(|_| bad_cursor()))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let c = JobCursor {
            at: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
                .unwrap_or_else(|_| unreachable!()),
            id: Uuid::now_v7(),
        };
        let s = job_cursor("events", c);
        assert_eq!(parse_job_cursor("events", Some(&s)).ok().flatten(), Some(c));
        assert!(
            parse_job_cursor("pushes", Some(&s)).is_err(),
            "another list's cursor"
        );
        assert!(parse_job_cursor("events", Some("zz")).is_err(), "not hex");
        assert!(parse_job_cursor("events", Some(&hex::encode("events:1"))).is_err());
        assert_eq!(parse_job_cursor("events", Some("")).ok().flatten(), None);
        let l = index_cursor("ledger", 42);
        assert_eq!(
            parse_index_cursor("ledger", Some(&l)).ok().flatten(),
            Some(42)
        );
        assert!(parse_index_cursor("ledger", Some(&hex::encode("ledger:-1"))).is_err());
    }
}
