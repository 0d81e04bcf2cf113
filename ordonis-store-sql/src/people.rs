//! The people directory, written once for every dialect: a workspace's principals
//! (`principals`, the whole [`Person`] as JSON, indexed by `principal_emails` and
//! `principal_accounts`) and the provider accounts the adapters have seen (`seen_accounts`).
//!
//! A principal is read in one statement (its document), so a reader never sees half of a
//! concurrent [`put_person`]. The index tables are rewritten with the document in one
//! transaction; the primary key of `principal_accounts` is the store's guard that one account
//! maps to one principal, even between two writers racing to map it.

use ordonis_core::{
    AccountRef, IntegrationId, Person, PersonKind, SeenAccount, StoreError, WorkspaceId,
};
use time::OffsetDateTime;

use crate::dialect::{Arg, Dialect, SqlRow};
use crate::render::sql;
use crate::tables::{backend, json, to_json};

const PEOPLE: &str = "SELECT workspace_id, doc FROM {p}principals WHERE workspace_id = $1";

const PERSON: &str =
    "SELECT workspace_id, doc FROM {p}principals WHERE workspace_id = $1 AND principal = $2";

const PERSON_WITH_ACCOUNT: &str = "SELECT x.workspace_id, x.doc FROM {p}principals x
  JOIN {p}principal_accounts a ON a.workspace_id = x.workspace_id AND a.principal = x.principal
  WHERE a.workspace_id = $1 AND a.integration_id = $2 AND a.account_id = $3";

const PEOPLE_WITH_EMAIL: &str = "SELECT x.workspace_id, x.doc FROM {p}principals x
  WHERE x.workspace_id = $1 AND x.principal IN (SELECT e.principal FROM {p}principal_emails e
    WHERE e.workspace_id = $1 AND e.email = $2)";

const UPSERT_PERSON: &str = "INSERT INTO {p}principals
    (workspace_id, principal, kind, display_name, doc) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (workspace_id, principal) DO UPDATE
    SET kind = excluded.kind, display_name = excluded.display_name, doc = excluded.doc";

const DELETE_EMAILS: &str =
    "DELETE FROM {p}principal_emails WHERE workspace_id = $1 AND principal = $2";

const INSERT_EMAIL: &str = "INSERT INTO {p}principal_emails (workspace_id, principal, email)
  VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

const DELETE_ACCOUNTS: &str =
    "DELETE FROM {p}principal_accounts WHERE workspace_id = $1 AND principal = $2";

const INSERT_ACCOUNT: &str = "INSERT INTO {p}principal_accounts
    (workspace_id, integration_id, account_id, principal) VALUES ($1, $2, $3, $4)
  ON CONFLICT (workspace_id, integration_id, account_id) DO NOTHING";

const ACCOUNT_HOLDER: &str = "SELECT principal FROM {p}principal_accounts
  WHERE workspace_id = $1 AND integration_id = $2 AND account_id = $3";

const RECORD_SEEN: &str = "INSERT INTO {p}seen_accounts AS s
    (workspace_id, integration_id, account_id, display_name, email, kind, seen_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7)
  ON CONFLICT (workspace_id, integration_id, account_id) DO UPDATE
    SET display_name = COALESCE(excluded.display_name, s.display_name),
        email = COALESCE(excluded.email, s.email),
        kind = excluded.kind,
        seen_at = excluded.seen_at";

const SEEN: &str = "SELECT integration_id, account_id, display_name, email, kind
  FROM {p}seen_accounts WHERE workspace_id = $1";

const SEEN_ONE: &str = "SELECT integration_id, account_id, display_name, email, kind
  FROM {p}seen_accounts WHERE workspace_id = $1 AND integration_id = $2 AND account_id = $3";

/// A principal from its row: the document, in the row's workspace.
fn decode_person(row: &impl SqlRow) -> Result<Person, StoreError> {
    let mut p: Person = json(row, "doc")?;
    p.workspace_id =
        WorkspaceId::new(row.text("workspace_id")?).map_err(|e| backend("workspace id", e))?;
    Ok(p)
}

/// Principals from their rows, sorted by principal (in byte order, whatever the database's
/// collation).
fn decode_people(rows: &[impl SqlRow]) -> Result<Vec<Person>, StoreError> {
    let mut people = rows
        .iter()
        .map(decode_person)
        .collect::<Result<Vec<_>, _>>()?;
    people.sort_by(|a, b| a.principal.cmp(&b.principal));
    Ok(people)
}

fn parse_kind(s: &str) -> Result<PersonKind, StoreError> {
    match s {
        "human" => Ok(PersonKind::Human),
        "agent" => Ok(PersonKind::Agent),
        other => Err(backend("unknown person kind", other)),
    }
}

fn decode_seen(row: &impl SqlRow) -> Result<SeenAccount, StoreError> {
    Ok(SeenAccount {
        integration_id: IntegrationId(row.uuid("integration_id")?),
        account_id: row.text("account_id")?,
        display_name: row.opt_text("display_name")?,
        email: row.opt_text("email")?,
        kind: parse_kind(&row.text("kind")?)?,
    })
}

fn account_args(ws: &WorkspaceId, a: &AccountRef) -> Vec<Arg> {
    vec![
        Arg::text(ws.as_str()),
        Arg::Uuid(a.integration_id.0),
        Arg::text(&a.account_id),
    ]
}

/// The workspace's principals, sorted by principal.
pub(crate) async fn people<D: Dialect>(d: &D, ws: &WorkspaceId) -> Result<Vec<Person>, StoreError> {
    let rows = d
        .read(sql::<D>(PEOPLE), vec![Arg::text(ws.as_str())])
        .await?;
    decode_people(&rows)
}

/// One principal of the workspace.
pub(crate) async fn person<D: Dialect>(
    d: &D,
    ws: &WorkspaceId,
    principal: &str,
) -> Result<Option<Person>, StoreError> {
    d.read(
        sql::<D>(PERSON),
        vec![Arg::text(ws.as_str()), Arg::text(principal)],
    )
    .await?
    .first()
    .map(decode_person)
    .transpose()
}

/// Stores a principal and rewrites its e-mails and accounts, in one transaction: `Conflict`
/// (and nothing written) when one of its accounts is mapped to another principal.
pub(crate) async fn put_person<D: Dialect>(d: &D, person: &Person) -> Result<(), StoreError> {
    let ws = &person.workspace_id;
    let key = || vec![Arg::text(ws.as_str()), Arg::text(&person.principal)];
    let mut tx = d.begin().await?;
    let mut args = key();
    args.extend([
        Arg::text(person.kind.as_str()),
        Arg::text(&person.display_name),
        Arg::Json(Some(to_json(person)?)),
    ]);
    d.execute(&mut tx, sql::<D>(UPSERT_PERSON), args).await?;

    d.execute(&mut tx, sql::<D>(DELETE_EMAILS), key()).await?;
    for email in &person.emails {
        let mut args = key();
        args.push(Arg::text(email));
        d.execute(&mut tx, sql::<D>(INSERT_EMAIL), args).await?;
    }

    d.execute(&mut tx, sql::<D>(DELETE_ACCOUNTS), key()).await?;
    for a in &person.accounts {
        let mut args = account_args(ws, a);
        args.push(Arg::text(&person.principal));
        if d.execute(&mut tx, sql::<D>(INSERT_ACCOUNT), args).await? == 1 {
            continue;
        }
        // Taken: a new statement sees the holder another transaction committed meanwhile.
        let holder = d
            .fetch(&mut tx, sql::<D>(ACCOUNT_HOLDER), account_args(ws, a))
            .await?
            .first()
            .map(|r| r.text("principal"))
            .transpose()?;
        match holder {
            // The same account listed twice by this principal.
            Some(h) if h == person.principal => {}
            holder => {
                // Dropping the transaction rolls it back: nothing of the principal is written.
                return Err(StoreError::Conflict(format!(
                    "account {} of integration {} is mapped to {}",
                    a.account_id,
                    a.integration_id,
                    holder.as_deref().unwrap_or("another principal")
                )));
            }
        }
    }
    d.commit(tx).await
}

/// The principal that lists this account by hand, if any.
pub(crate) async fn person_with_account<D: Dialect>(
    d: &D,
    ws: &WorkspaceId,
    account: &AccountRef,
) -> Result<Option<Person>, StoreError> {
    d.read(sql::<D>(PERSON_WITH_ACCOUNT), account_args(ws, account))
        .await?
        .first()
        .map(decode_person)
        .transpose()
}

/// The principals listing an e-mail (compared lowercase, as they are stored), sorted by
/// principal.
pub(crate) async fn people_with_email<D: Dialect>(
    d: &D,
    ws: &WorkspaceId,
    email: &str,
) -> Result<Vec<Person>, StoreError> {
    let rows = d
        .read(
            sql::<D>(PEOPLE_WITH_EMAIL),
            vec![
                Arg::text(ws.as_str()),
                Arg::text(email.trim().to_lowercase()),
            ],
        )
        .await?;
    decode_people(&rows)
}

/// Records sightings of accounts in one transaction: inserted, or updated with the kind and
/// whatever name and e-mail the sighting gives (a sighting without them keeps the known ones).
pub(crate) async fn record_accounts<D: Dialect>(
    d: &D,
    ws: &WorkspaceId,
    accounts: &[SeenAccount],
) -> Result<(), StoreError> {
    if accounts.is_empty() {
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    let mut tx = d.begin().await?;
    for a in accounts {
        let args = vec![
            Arg::text(ws.as_str()),
            Arg::Uuid(a.integration_id.0),
            Arg::text(&a.account_id),
            Arg::Text(a.display_name.clone()),
            Arg::Text(a.email.clone()),
            Arg::text(a.kind.as_str()),
            Arg::time(now),
        ];
        d.execute(&mut tx, sql::<D>(RECORD_SEEN), args).await?;
    }
    d.commit(tx).await
}

/// The accounts seen in a workspace, sorted by integration, then account id (in byte order,
/// whatever the database's collation).
pub(crate) async fn seen_accounts<D: Dialect>(
    d: &D,
    ws: &WorkspaceId,
) -> Result<Vec<SeenAccount>, StoreError> {
    let mut seen = d
        .read(sql::<D>(SEEN), vec![Arg::text(ws.as_str())])
        .await?
        .iter()
        .map(decode_seen)
        .collect::<Result<Vec<_>, _>>()?;
    seen.sort_by(|a, b| (a.integration_id, &a.account_id).cmp(&(b.integration_id, &b.account_id)));
    Ok(seen)
}

/// One account seen in a workspace.
pub(crate) async fn seen_account<D: Dialect>(
    d: &D,
    ws: &WorkspaceId,
    account: &AccountRef,
) -> Result<Option<SeenAccount>, StoreError> {
    d.read(sql::<D>(SEEN_ONE), account_args(ws, account))
        .await?
        .first()
        .map(decode_seen)
        .transpose()
}
