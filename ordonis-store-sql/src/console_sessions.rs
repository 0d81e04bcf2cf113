//! Console sign-ins (`console_sessions`), shared by every server on the database: a sign-in
//! on one server is accepted by the others, and a sign-out on one ends it on all.

use ordonis_core::{ConsoleSession, StoreError};
use time::OffsetDateTime;

use crate::dialect::{Arg, Dialect, SqlRow};
use crate::render::sql;

const DELETE_EXPIRED: &str = "DELETE FROM {p}console_sessions WHERE expires_at <= $1";

const INSERT: &str = "INSERT INTO {p}console_sessions (id_digest, token_digest, expires_at)
  VALUES ($1, $2, $3) ON CONFLICT (id_digest) DO NOTHING";

const COUNT: &str = "SELECT COUNT(*) AS n FROM {p}console_sessions";

// The ones closest to expiring go first when there are too many.
const DELETE_OLDEST: &str = "DELETE FROM {p}console_sessions WHERE id_digest IN
  (SELECT id_digest FROM {p}console_sessions ORDER BY expires_at, id_digest LIMIT $1)";

const GET: &str =
    "SELECT id_digest, token_digest, expires_at FROM {p}console_sessions WHERE id_digest = $1";

const DELETE: &str = "DELETE FROM {p}console_sessions WHERE id_digest = $1";

fn digest(row: &impl SqlRow, col: &str) -> Result<[u8; 32], StoreError> {
    row.bytes(col)?
        .try_into()
        .map_err(|_| StoreError::backend(format!("console_sessions.{col} is not 32 bytes")))
}

/// Stores `session`, prunes expired ones, and keeps at most `max_live`.
pub(crate) async fn put<D: Dialect>(
    dialect: &D,
    session: &ConsoleSession,
    now: OffsetDateTime,
    max_live: u64,
) -> Result<(), StoreError> {
    dialect
        .write_count(sql::<D>(DELETE_EXPIRED), vec![Arg::time(now)])
        .await?;
    dialect
        .write_count(
            sql::<D>(INSERT),
            vec![
                Arg::Bytes(session.id_digest.to_vec()),
                Arg::Bytes(session.token_digest.to_vec()),
                Arg::time(session.expires_at),
            ],
        )
        .await?;
    let live = dialect
        .read(sql::<D>(COUNT), Vec::new())
        .await?
        .first()
        .map(|r| r.int("n"))
        .transpose()?
        .unwrap_or(0);
    let over = u64::try_from(live).unwrap_or(0).saturating_sub(max_live);
    if over > 0 {
        dialect
            .write_count(
                sql::<D>(DELETE_OLDEST),
                vec![Arg::Int(i64::try_from(over).unwrap_or(i64::MAX))],
            )
            .await?;
    }
    Ok(())
}

/// The sign-in with this id digest.
pub(crate) async fn get<D: Dialect>(
    dialect: &D,
    id_digest: &[u8; 32],
) -> Result<Option<ConsoleSession>, StoreError> {
    dialect
        .read(sql::<D>(GET), vec![Arg::Bytes(id_digest.to_vec())])
        .await?
        .first()
        .map(|r| {
            Ok(ConsoleSession {
                id_digest: digest(r, "id_digest")?,
                token_digest: digest(r, "token_digest")?,
                expires_at: r.time("expires_at")?,
            })
        })
        .transpose()
}

/// Ends the sign-in with this id digest.
pub(crate) async fn delete<D: Dialect>(
    dialect: &D,
    id_digest: &[u8; 32],
) -> Result<(), StoreError> {
    dialect
        .write_count(sql::<D>(DELETE), vec![Arg::Bytes(id_digest.to_vec())])
        .await?;
    Ok(())
}
