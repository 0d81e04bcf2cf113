//! Statement templates: SQL shared by every dialect, with `{p}` where a table name's prefix
//! goes. Each template is rendered once per dialect and kept, so the hot path neither
//! allocates nor misses sqlx's statement cache.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{LazyLock, PoisonError, RwLock};

use crate::dialect::{Dialect, Sql};

type Rendered = HashMap<(&'static str, &'static str, &'static str), &'static str>;

static RENDERED: LazyLock<RwLock<Rendered>> = LazyLock::new(RwLock::default);

/// `template` with the dialect's table prefix in place of every `{p}`.
pub(crate) fn sql<D: Dialect>(template: &'static str) -> Sql {
    sql_on::<D>(template, "")
}

/// `template` with the dialect's table prefix in place of every `{p}` and `table` in place
/// of every `{table}` (the statements both queues share).
pub(crate) fn sql_on<D: Dialect>(template: &'static str, table: &'static str) -> Sql {
    let key = (D::PREFIX, table, template);
    if let Some(s) = RENDERED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return Cow::Borrowed(s);
    }
    // Bounded: one string per (template, table, dialect) in the program, leaked once.
    let s: &'static str = Box::leak(
        template
            .replace("{p}", D::PREFIX)
            .replace("{table}", table)
            .into_boxed_str(),
    );
    RENDERED
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, s);
    Cow::Borrowed(s)
}

/// A statement built for one call: `template` rendered, then `rest` appended (the
/// variable part of a multi-row statement).
pub(crate) fn sql_with<D: Dialect>(template: &'static str, rest: &str) -> Sql {
    let mut s = sql::<D>(template).into_owned();
    s.push_str(rest);
    Cow::Owned(s)
}

/// `(${first}, ${first+1}, …)` for `n` parameters, and the next free number.
pub(crate) fn params(first: usize, n: usize) -> (String, usize) {
    let list: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
    (format!("({})", list.join(", ")), first + n)
}
