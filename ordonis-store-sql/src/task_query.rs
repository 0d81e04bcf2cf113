//! Task lists as indexed pages (see [`ordonis_core::Store::query_tasks`]), the bounded
//! choice queries of the list's filters, and the upkeep of the stored failure counts.

use ordonis_core::task_query::{MAX_ASSIGNEE_CHOICES, MAX_STATUS_CHOICES};
use ordonis_core::{
    Assignee, AssigneeFilter, JobId, ListedTask, Queue, Status, StatusCategory, StoreError,
    SyncState, TaskList, TaskQuery, TaskSort, WorkspaceId,
};

use crate::dialect::{Arg, Dialect, SqlRow};
use crate::render::sql;
use crate::tables::{backend, limit_of, task};

/// The failed or dead jobs of a task: its pushes, and the inbound events of its objects.
const FAILURES_OF_TASK: &str = "(SELECT count(*) FROM {p}outbox o
      WHERE o.task_id = {p}tasks.id AND o.state IN ('failed', 'dead'))
  + (SELECT count(*) FROM {p}external_objects m
       JOIN {p}webhook_events e
         ON e.integration_id = m.integration_id AND e.object_key = m.external_id
      WHERE m.task_id = {p}tasks.id AND e.state IN ('failed', 'dead'))";

/// Recounts the failures of the task a push is for.
const REFRESH_PUSH: &str = "UPDATE {p}tasks SET failures = {failures}
  WHERE id = (SELECT task_id FROM {p}outbox WHERE id = $1)";

/// Recounts the failures of the tasks an inbound event's object is mapped to.
const REFRESH_EVENT: &str = "UPDATE {p}tasks SET failures = {failures}
  WHERE id IN (SELECT m.task_id FROM {p}external_objects m
    JOIN {p}webhook_events e
      ON e.integration_id = m.integration_id AND e.object_key = m.external_id
   WHERE e.id = $1)";

const STATUSES: &str = "SELECT s.status,
    (SELECT t.status_category FROM {p}tasks t
      WHERE t.workspace_id = $1 AND t.status = s.status LIMIT 1) AS category
  FROM (SELECT DISTINCT status FROM {p}tasks WHERE workspace_id = $1 LIMIT $2) s";

const ASSIGNEES: &str = "SELECT a.assignee,
    (SELECT t.assignee_name FROM {p}tasks t
      WHERE t.workspace_id = $1 AND t.assignee = a.assignee AND t.assignee_name IS NOT NULL
      LIMIT 1) AS name
  FROM (SELECT DISTINCT assignee FROM {p}tasks
         WHERE workspace_id = $1 AND assignee IS NOT NULL ORDER BY assignee LIMIT $2) a";

/// The statement that recounts the failures of the task(s) a job row is about; run in the
/// transaction that moves the row into or out of `failed`/`dead`.
pub(crate) fn refresh_failures<D: Dialect>(id: JobId) -> (String, Vec<Arg>) {
    let template = match id.queue() {
        Queue::Outbox => REFRESH_PUSH,
        Queue::Inbox => REFRESH_EVENT,
    };
    let stmt = sql::<D>(template).replace("{failures}", &sql::<D>(FAILURES_OF_TASK));
    (stmt, vec![Arg::Uuid(id.uuid())])
}

/// One page of a task query.
pub(crate) async fn query_tasks<D: Dialect>(d: &D, q: &TaskQuery) -> Result<TaskList, StoreError> {
    let (limit, after) = q.checked()?;
    let p = D::PREFIX;
    let mut args = vec![Arg::text(q.workspace_id.as_str())];
    let mut conds = vec!["t.workspace_id = $1".to_owned()];
    let arg = |args: &mut Vec<Arg>, a: Arg| {
        args.push(a);
        format!("${}", args.len())
    };
    if let Some(s) = &q.status {
        let n = arg(&mut args, Arg::text(s));
        conds.push(format!("t.status = {n}"));
    }
    match &q.assignee {
        None => {}
        Some(AssigneeFilter::Unassigned) => conds.push("t.assignee IS NULL".to_owned()),
        Some(AssigneeFilter::Account(a)) => {
            let n = arg(&mut args, Arg::text(a));
            conds.push(format!("t.assignee = {n}"));
        }
    }
    if let Some(i) = q.integration {
        let n = arg(&mut args, Arg::Uuid(i.0));
        conds.push(format!(
            "EXISTS (SELECT 1 FROM {p}external_objects m WHERE m.task_id = t.id \
             AND m.integration_id = {n})"
        ));
    }
    if let Some(s) = q.sync_state {
        let n = arg(&mut args, Arg::text(s.as_str()));
        conds.push(format!("t.sync_state = {n}"));
    }
    if let Some(since) = q.updated_since {
        let n = arg(&mut args, Arg::time(since));
        conds.push(format!("t.updated_at >= {n}"));
    }
    if let Some(text) = q.search_text() {
        let (cond, a) = d.title_search(args.len() + 1, text);
        args.push(a);
        conds.push(cond);
    }
    let order = match q.sort {
        TaskSort::Updated => {
            if let Some(c) = after {
                let u = arg(&mut args, Arg::time(c.updated_at()?));
                let i = arg(&mut args, Arg::Uuid(c.id().0));
                conds.push(format!("(t.updated_at, t.id) < ({u}, {i})"));
            }
            "t.updated_at DESC, t.id DESC"
        }
        TaskSort::Id => {
            if let Some(c) = after {
                let i = arg(&mut args, Arg::Uuid(c.id().0));
                conds.push(format!("t.id > {i}"));
            }
            "t.id"
        }
    };
    // One more than the page: whether a next page exists, without a count.
    let n = arg(&mut args, Arg::Int(limit_of(limit + 1)));
    let stmt = format!(
        "SELECT t.doc, t.updated_at, t.sync_state FROM {p}tasks t WHERE {} ORDER BY {order} \
         LIMIT {n}",
        conds.join(" AND ")
    );
    let rows = d.read(stmt.into(), args).await?;
    let more = rows.len() > limit;
    let mut tasks = Vec::with_capacity(rows.len().min(limit));
    let mut last = None;
    for r in rows.iter().take(limit) {
        let s = r.text("sync_state")?;
        let sync_state =
            SyncState::parse(&s).ok_or_else(|| backend("unknown sync state", s.clone()))?;
        let t = task(r)?;
        last = Some((r.time("updated_at")?, t.id));
        tasks.push(ListedTask {
            task: t,
            sync_state,
        });
    }
    let next_cursor = match (more, last) {
        (true, Some((at, id))) => Some(q.cursor_after(at, id)),
        _ => None,
    };
    Ok(TaskList { tasks, next_cursor })
}

fn category(s: &str) -> StatusCategory {
    match s {
        "done" => StatusCategory::Done,
        "in_progress" => StatusCategory::InProgress,
        _ => StatusCategory::Todo,
    }
}

/// The distinct statuses of a workspace's tasks.
pub(crate) async fn task_statuses<D: Dialect>(
    d: &D,
    ws: &WorkspaceId,
) -> Result<Vec<Status>, StoreError> {
    let rows = d
        .read(
            sql::<D>(STATUSES),
            vec![
                Arg::text(ws.as_str()),
                Arg::Int(limit_of(MAX_STATUS_CHOICES)),
            ],
        )
        .await?;
    let mut out = rows
        .iter()
        .map(|r| {
            let c = r.opt_text("category")?.unwrap_or_default();
            Ok(Status::new(category(&c), r.text("status")?))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    out.sort_by(|a, b| a.category.cmp(&b.category).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// The distinct assignees of a workspace's tasks.
pub(crate) async fn task_assignees<D: Dialect>(
    d: &D,
    ws: &WorkspaceId,
) -> Result<Vec<Assignee>, StoreError> {
    let rows = d
        .read(
            sql::<D>(ASSIGNEES),
            vec![
                Arg::text(ws.as_str()),
                Arg::Int(limit_of(MAX_ASSIGNEE_CHOICES)),
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Assignee {
                account_id: r.text("assignee")?,
                display_name: r.opt_text("name")?,
                email: None,
            })
        })
        .collect()
}

/// The `LIKE` pattern of a substring, its wildcards escaped (with `\`).
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}
