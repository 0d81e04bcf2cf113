//! Store-suite cases for the people directory (principals, their e-mails and accounts mapped
//! by hand, the accounts adapters have seen) and for unlinking a task from its object: sorted
//! listings, whole replacement, one principal per account, e-mail lookups, the merge rules of
//! sightings, and workspace isolation.

use std::sync::Arc;

use ordonis_core::store::{Store, TaskWrite, UnitOfWork};
use ordonis_core::{
    AccountRef, ExternalRef, IntegrationId, ObjectKey, Person, PersonKind, SeenAccount, StoreError,
    Task, WorkspaceId,
};

use super::fixtures::*;

fn account(integration: IntegrationId, id: &str) -> AccountRef {
    AccountRef {
        integration_id: integration,
        account_id: id.to_owned(),
    }
}

/// A checked principal, as the engine stores it.
fn person(
    w: &WorkspaceId,
    principal: &str,
    name: &str,
    emails: &[&str],
    accounts: &[AccountRef],
) -> Person {
    let mut p = Person {
        workspace_id: w.clone(),
        principal: principal.to_owned(),
        kind: PersonKind::Human,
        display_name: name.to_owned(),
        emails: emails.iter().map(|e| (*e).to_owned()).collect(),
        accounts: accounts.to_vec(),
    };
    p.normalize().unwrap_or_else(|e| panic!("normalize: {e}"));
    p
}

fn seen(
    integration: IntegrationId,
    id: &str,
    name: Option<&str>,
    email: Option<&str>,
    kind: PersonKind,
) -> SeenAccount {
    SeenAccount {
        integration_id: integration,
        account_id: id.to_owned(),
        display_name: name.map(str::to_owned),
        email: email.map(str::to_owned),
        kind,
    }
}

async fn seen_one(store: &dyn Store, w: &WorkspaceId, key: &AccountRef) -> Option<SeenAccount> {
    store
        .seen_account(w, key)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn put(store: &dyn Store, p: &Person) {
    store
        .put_person(p)
        .await
        .unwrap_or_else(|e| panic!("put_person {}: {e}", p.principal));
}

fn principals(people: Vec<Person>) -> Vec<String> {
    people.into_iter().map(|p| p.principal).collect()
}

/// Principals round-trip whole, list sorted by principal (byte order: `usr_B` before
/// `usr_a`), and a second put replaces the first entirely: name, kind, e-mails and accounts
/// (an e-mail or an account it no longer lists finds it no more).
pub async fn people_round_trip_sorted_and_replaced(store: Arc<dyn Store>) {
    let w = ws("people");
    let jira = IntegrationId::new();
    let asana = IntegrationId::new();
    let a = person(
        &w,
        "usr_a",
        "Ann",
        &["Ann@Example.com", "ann@home.example"],
        &[account(jira, "5b10a2844c20165700ede21g")],
    );
    let big_b = person(&w, "usr_B", "Bob", &[], &[]);
    let mut agent = person(&w, "agt_7", "Reviewer", &[], &[account(asana, "1209")]);
    agent.kind = PersonKind::Agent;
    for p in [&a, &big_b, &agent] {
        put(&*store, p).await;
    }
    let all = store.people(&w).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all, vec![agent.clone(), big_b.clone(), a.clone()]);
    assert_eq!(
        store
            .person(&w, "usr_a")
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(a.clone()),
        "e-mails lowercase and the account kept"
    );
    assert_eq!(
        store
            .person(&w, "usr_x")
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        None
    );

    let mut replaced = person(
        &w,
        "usr_a",
        "Ann Smith",
        &["ann@work.example"],
        &[account(asana, "1300")],
    );
    replaced.kind = PersonKind::Agent;
    put(&*store, &replaced).await;
    assert_eq!(
        store
            .person(&w, "usr_a")
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(replaced.clone())
    );
    assert_eq!(
        store.people(&w).await.unwrap_or_else(|e| panic!("{e}")),
        vec![agent, big_b, replaced.clone()],
        "replaced in place, not added"
    );
    let gone = store
        .person_with_account(&w, &account(jira, "5b10a2844c20165700ede21g"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gone, None, "the account it no longer lists is free");
    let old_mail = store
        .people_with_email(&w, "ann@example.com")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(old_mail.is_empty(), "{old_mail:?}");
    assert_eq!(
        store
            .person_with_account(&w, &account(asana, "1300"))
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(replaced)
    );
}

/// One account maps to one principal: mapping it to a second one is a `Conflict` naming the
/// holder, and writes nothing of the refused principal (neither a new one nor a change to an
/// existing one). Once the holder lets it go, the other may take it.
pub async fn an_account_maps_to_one_principal(store: Arc<dyn Store>) {
    let w = ws("people-conflict");
    let jira = IntegrationId::new();
    let asana = IntegrationId::new();
    let taken = account(jira, "acc-1");
    let a = person(&w, "usr_a", "Ann", &[], std::slice::from_ref(&taken));
    put(&*store, &a).await;

    // A new principal listing it, with an account of its own and an e-mail.
    let newcomer = person(
        &w,
        "usr_n",
        "Nat",
        &["nat@example.com"],
        &[account(asana, "free-1"), taken.clone()],
    );
    let refused = store.put_person(&newcomer).await;
    let expected = format!("account acc-1 of integration {jira} is mapped to usr_a");
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if *m == expected),
        "{refused:?}, wanted Conflict({expected:?})"
    );
    let none = store
        .person(&w, "usr_n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(none, None, "the refused principal was not written");
    let by_mail = store
        .people_with_email(&w, "nat@example.com")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(by_mail.is_empty(), "its e-mails were not written");
    let free = store
        .person_with_account(&w, &account(asana, "free-1"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(free, None, "its other accounts were not written");

    // An existing principal changed to list it: refused, and left as it was.
    let b = person(&w, "usr_b", "Bea", &["bea@example.com"], &[]);
    put(&*store, &b).await;
    let mut b2 = person(&w, "usr_b", "Bea Two", &[], std::slice::from_ref(&taken));
    b2.kind = PersonKind::Agent;
    assert!(matches!(
        store.put_person(&b2).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .person(&w, "usr_b")
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(b.clone())
    );
    assert_eq!(
        principals(
            store
                .people_with_email(&w, "bea@example.com")
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        ),
        vec!["usr_b".to_owned()],
        "its e-mails were kept"
    );
    assert_eq!(
        store
            .person_with_account(&w, &taken)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(a.clone())
    );

    // The holder lets it go; then it is free to take.
    put(&*store, &person(&w, "usr_a", "Ann", &[], &[])).await;
    put(&*store, &b2).await;
    assert_eq!(
        store
            .person_with_account(&w, &taken)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(b2)
    );
    // The same id in another integration is another account.
    let other = person(&w, "usr_c", "Cy", &[], &[account(asana, "acc-1")]);
    put(&*store, &other).await;
    assert_eq!(
        store
            .person_with_account(&w, &account(asana, "acc-1"))
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(other)
    );
}

/// `people_with_email` answers every principal listing the e-mail, sorted by principal,
/// whatever the case it is asked in; an e-mail nobody lists answers nothing.
pub async fn people_with_email_lists_every_holder(store: Arc<dyn Store>) {
    let w = ws("people-email");
    for (p, emails) in [
        ("usr_z", &["shared@example.com", "z@example.com"][..]),
        ("usr_m", &["other@example.com"][..]),
        ("agt_a", &["Shared@Example.com"][..]),
    ] {
        put(&*store, &person(&w, p, p, emails, &[])).await;
    }
    for asked in ["shared@example.com", "SHARED@example.COM"] {
        let got = store
            .people_with_email(&w, asked)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            principals(got),
            vec!["agt_a".to_owned(), "usr_z".to_owned()],
            "asked {asked}"
        );
    }
    let one = store
        .people_with_email(&w, "z@example.com")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(principals(one), vec!["usr_z".to_owned()]);
    let none = store
        .people_with_email(&w, "nobody@example.com")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(none.is_empty(), "{none:?}");
}

/// A sighting inserts the account, or updates it: the kind always, the name and e-mail only
/// when the sighting gives them (a webhook that omits the e-mail keeps the known one).
pub async fn sightings_merge_into_seen_accounts(store: Arc<dyn Store>) {
    let w = ws("people-seen");
    let jira = IntegrationId::new();
    let key = account(jira, "acc-1");
    assert_eq!(seen_one(&*store, &w, &key).await, None);
    let first = seen(
        jira,
        "acc-1",
        Some("Ann"),
        Some("ann@example.com"),
        PersonKind::Human,
    );
    store
        .record_accounts(&w, std::slice::from_ref(&first))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(seen_one(&*store, &w, &key).await, Some(first));

    store
        .record_accounts(&w, &[seen(jira, "acc-1", None, None, PersonKind::Agent)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        seen_one(&*store, &w, &key).await,
        Some(seen(
            jira,
            "acc-1",
            Some("Ann"),
            Some("ann@example.com"),
            PersonKind::Agent
        )),
        "name and e-mail kept, kind updated"
    );

    store
        .record_accounts(
            &w,
            &[
                seen(jira, "acc-1", Some("Ann Smith"), None, PersonKind::Human),
                seen(jira, "acc-2", None, None, PersonKind::Human),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        seen_one(&*store, &w, &key).await,
        Some(seen(
            jira,
            "acc-1",
            Some("Ann Smith"),
            Some("ann@example.com"),
            PersonKind::Human
        )),
        "the new name taken, the e-mail kept"
    );
    store
        .record_accounts(
            &w,
            &[seen(
                jira,
                "acc-1",
                None,
                Some("ann@work.example"),
                PersonKind::Human,
            )],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        seen_one(&*store, &w, &key).await,
        Some(seen(
            jira,
            "acc-1",
            Some("Ann Smith"),
            Some("ann@work.example"),
            PersonKind::Human
        )),
        "the new e-mail taken, the name kept"
    );
    assert_eq!(
        store
            .seen_account(&w, &account(jira, "acc-2"))
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(seen(jira, "acc-2", None, None, PersonKind::Human)),
        "a sighting with nothing but the id is recorded"
    );
    store
        .record_accounts(&w, &[])
        .await
        .unwrap_or_else(|e| panic!("nothing to record: {e}"));
}

/// Seen accounts list sorted by integration, then account id in byte order (`B` before `a`,
/// `10` before `9`), whatever order they were seen in.
pub async fn seen_accounts_are_sorted(store: Arc<dyn Store>) {
    let w = ws("people-seen-order");
    let mut ids = [IntegrationId::new(), IntegrationId::new()];
    ids.sort();
    let [first, second] = ids;
    let sighting = |i, id: &str| seen(i, id, Some(id), None, PersonKind::Human);
    store
        .record_accounts(
            &w,
            &[
                sighting(second, "a"),
                sighting(first, "a"),
                sighting(first, "9"),
                sighting(second, "B"),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .record_accounts(&w, &[sighting(first, "10"), sighting(first, "B")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(IntegrationId, String)> = store
        .seen_accounts(&w)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|a| (a.integration_id, a.account_id))
        .collect();
    let want: Vec<(IntegrationId, String)> = [
        (first, "10"),
        (first, "9"),
        (first, "B"),
        (first, "a"),
        (second, "B"),
        (second, "a"),
    ]
    .into_iter()
    .map(|(i, a)| (i, a.to_owned()))
    .collect();
    assert_eq!(got, want);
}

/// Another workspace sees none of a workspace's directory or sightings, and may map the same
/// account to a principal of its own (the one-principal guard is per workspace).
pub async fn people_are_isolated_by_workspace(store: Arc<dyn Store>) {
    let w1 = ws("people-iso-1");
    let w2 = ws("people-iso-2");
    let jira = IntegrationId::new();
    let acc = account(jira, "acc-1");
    put(
        &*store,
        &person(
            &w1,
            "usr_a",
            "Ann",
            &["ann@example.com"],
            std::slice::from_ref(&acc),
        ),
    )
    .await;
    store
        .record_accounts(
            &w1,
            &[seen(jira, "acc-1", Some("Ann"), None, PersonKind::Human)],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert!(store.people(&w2).await.unwrap_or_else(fail).is_empty());
    assert_eq!(store.person(&w2, "usr_a").await.unwrap_or_else(fail), None);
    assert_eq!(
        store
            .person_with_account(&w2, &acc)
            .await
            .unwrap_or_else(fail),
        None
    );
    assert!(
        store
            .people_with_email(&w2, "ann@example.com")
            .await
            .unwrap_or_else(fail)
            .is_empty()
    );
    assert!(
        store
            .seen_accounts(&w2)
            .await
            .unwrap_or_else(fail)
            .is_empty()
    );
    assert_eq!(
        store.seen_account(&w2, &acc).await.unwrap_or_else(fail),
        None
    );

    let theirs = person(&w2, "usr_b", "Bea", &[], std::slice::from_ref(&acc));
    put(&*store, &theirs).await;
    assert_eq!(
        store
            .person_with_account(&w2, &acc)
            .await
            .unwrap_or_else(fail),
        Some(theirs)
    );
    assert_eq!(
        store
            .person_with_account(&w1, &acc)
            .await
            .unwrap_or_else(fail)
            .map(|p| p.principal),
        Some("usr_a".to_owned()),
        "the first workspace's mapping is untouched"
    );
    assert_eq!(
        store.people(&w1).await.unwrap_or_else(fail).len(),
        1,
        "nothing of the second workspace in the first"
    );
}

fn fail<T>(e: StoreError) -> T {
    panic!("{e}")
}

fn link(integration: IntegrationId, provider: &ordonis_core::ProviderKind) -> ExternalRef {
    ExternalRef {
        integration_id: integration,
        provider: provider.clone(),
        key: ObjectKey::new("10001", "issue"),
        url: None,
    }
}

async fn new_task(store: &dyn Store, w: &WorkspaceId, mapped: Option<&ExternalRef>) -> Task {
    let t = Task::new(w.clone());
    let mut uow = UnitOfWork::new(w.clone());
    uow.task = Some(TaskWrite {
        task: t.clone(),
        expected_revision: None,
    });
    uow.mapping = mapped.map(|r| (r.clone(), t.id));
    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    t
}

async fn unmap(store: &dyn Store, w: &WorkspaceId, r: &ExternalRef, task: &Task) {
    let mut uow = UnitOfWork::new(w.clone());
    uow.unmapping = Some((r.clone(), task.id));
    store
        .commit(uow)
        .await
        .unwrap_or_else(|e| panic!("unmapping: {e}"));
}

/// An unmapping removes the object's mapping only when it points to the named task, and only
/// in the unit's workspace: naming another task, or coming from another workspace, leaves it.
/// Unmapping what is not mapped is no error.
pub async fn unmapping_removes_only_the_named_tasks_mapping(store: Arc<dyn Store>) {
    let w = ws("unmap");
    let rec = integration(&*store, &w).await;
    let r = link(rec.id, &rec.provider);
    let key = ObjectKey::new("10001", "issue");
    let mapped = new_task(&*store, &w, Some(&r)).await;
    let bystander = new_task(&*store, &w, None).await;
    let find = || async {
        store
            .find_mapping(rec.id, &key)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };

    unmap(&*store, &w, &r, &bystander).await;
    assert_eq!(find().await, Some(mapped.id), "another task named: kept");

    let elsewhere = ws("unmap-other");
    unmap(&*store, &elsewhere, &r, &mapped).await;
    assert_eq!(find().await, Some(mapped.id), "another workspace: kept");

    unmap(&*store, &w, &r, &mapped).await;
    assert_eq!(find().await, None, "the named task's mapping is gone");
    let answered = store
        .mapped_tasks(&w, rec.id, std::slice::from_ref(&key))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answered, vec![None]);

    unmap(&*store, &w, &r, &mapped).await;
    assert_eq!(find().await, None);
}

/// A unit that unlinks an object from one task and links it to another commits both: the
/// unmapping is applied before the mapping's one-task check.
pub async fn unlink_and_link_in_one_unit(store: Arc<dyn Store>) {
    let w = ws("relink");
    let rec = integration(&*store, &w).await;
    let r = link(rec.id, &rec.provider);
    let key = ObjectKey::new("10001", "issue");
    let old = new_task(&*store, &w, Some(&r)).await;
    let new = new_task(&*store, &w, None).await;

    let mut uow = UnitOfWork::new(w.clone());
    uow.unmapping = Some((r.clone(), old.id));
    uow.mapping = Some((r.clone(), new.id));
    store
        .commit(uow)
        .await
        .unwrap_or_else(|e| panic!("relink: {e}"));
    assert_eq!(
        store
            .find_mapping(rec.id, &key)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(new.id)
    );

    // Unmapping a task the object is not mapped to does not clear the way for a link.
    let third = new_task(&*store, &w, None).await;
    let mut uow = UnitOfWork::new(w.clone());
    uow.unmapping = Some((r.clone(), old.id));
    uow.mapping = Some((r, third.id));
    assert!(matches!(
        store.commit(uow).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .find_mapping(rec.id, &key)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(new.id)
    );
}
