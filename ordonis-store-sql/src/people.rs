//! The people directory in SQL. PLACEHOLDER: being written (see the helper's branch).

use ordonis_core::{AccountRef, Person, SeenAccount, StoreError, WorkspaceId};

use crate::dialect::Dialect;

fn todo() -> StoreError {
    StoreError::NotFound("the SQL stores' people directory is not written yet".to_owned())
}

pub(crate) async fn people<D: Dialect>(
    _d: &D,
    _ws: &WorkspaceId,
) -> Result<Vec<Person>, StoreError> {
    Err(todo())
}
pub(crate) async fn person<D: Dialect>(
    _d: &D,
    _ws: &WorkspaceId,
    _p: &str,
) -> Result<Option<Person>, StoreError> {
    Err(todo())
}
pub(crate) async fn put_person<D: Dialect>(_d: &D, _p: &Person) -> Result<(), StoreError> {
    Err(todo())
}
pub(crate) async fn person_with_account<D: Dialect>(
    _d: &D,
    _ws: &WorkspaceId,
    _a: &AccountRef,
) -> Result<Option<Person>, StoreError> {
    Err(todo())
}
pub(crate) async fn people_with_email<D: Dialect>(
    _d: &D,
    _ws: &WorkspaceId,
    _e: &str,
) -> Result<Vec<Person>, StoreError> {
    Err(todo())
}
pub(crate) async fn record_accounts<D: Dialect>(
    _d: &D,
    _ws: &WorkspaceId,
    _a: &[SeenAccount],
) -> Result<(), StoreError> {
    Err(todo())
}
pub(crate) async fn seen_accounts<D: Dialect>(
    _d: &D,
    _ws: &WorkspaceId,
) -> Result<Vec<SeenAccount>, StoreError> {
    Err(todo())
}
pub(crate) async fn seen_account<D: Dialect>(
    _d: &D,
    _ws: &WorkspaceId,
    _a: &AccountRef,
) -> Result<Option<SeenAccount>, StoreError> {
    Err(todo())
}
