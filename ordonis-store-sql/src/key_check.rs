//! The key-check record (one row): a fixed text sealed with the host's secret key when the
//! store is first used, checked at start-up so that a process with another key is refused.

use ordonis_core::StoreError;

use crate::dialect::{Arg, Dialect, SqlRow};
use crate::render::sql;

const KEY_CHECK: &str = "SELECT sealed FROM {p}key_check WHERE id = 1";
const INIT_KEY_CHECK: &str =
    "INSERT INTO {p}key_check (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING";

/// The stored record, if any.
pub(crate) async fn get<D: Dialect>(dialect: &D) -> Result<Option<Vec<u8>>, StoreError> {
    dialect
        .read(sql::<D>(KEY_CHECK), Vec::new())
        .await?
        .first()
        .map(|r| r.bytes("sealed"))
        .transpose()
}

/// Stores `sealed` unless a record exists; returns the stored record.
pub(crate) async fn init<D: Dialect>(dialect: &D, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
    dialect
        .write_count(sql::<D>(INIT_KEY_CHECK), vec![Arg::Bytes(sealed.to_vec())])
        .await?;
    get(dialect)
        .await?
        .ok_or_else(|| StoreError::backend("the key-check record was not stored".to_owned()))
}
