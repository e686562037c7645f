use super::*;

fn dir() -> Directory {
    let d = Directory::open_in_memory().unwrap();
    d.create_domain("example.com", &[]).unwrap();
    d
}

#[test]
fn create_get_list_modify_delete() {
    let d = dir();
    let a = d
        .create_account(
            "Alice@Example.com",
            None,
            &[Modification::set("displayName", "Alice A.")],
        )
        .unwrap();
    assert_eq!(a.email, "alice@example.com");
    assert_eq!(a.local_part(), "alice");
    assert_eq!(a.domain(), "example.com");
    assert_eq!(a.status, AccountStatus::Active);
    assert_eq!(a.cos_id, d.default_cos().unwrap().id);
    assert_eq!(a.mailbox_id, MailboxId(1));
    assert_eq!(uuid::Uuid::parse_str(&a.id).unwrap().get_version_num(), 4);
    assert_eq!(a.attr("displayname"), ["Alice A."]);
    assert!(a.created.0 > 0);

    assert_eq!(d.get_account("ALICE@example.com").unwrap(), a);
    assert_eq!(d.get_account(&a.id).unwrap(), a);
    assert_eq!(d.get_account(&a.id.to_uppercase()).unwrap(), a);
    assert_eq!(
        d.account_by_mailbox_id(MailboxId(1)).unwrap(),
        Some(a.clone())
    );
    assert!(d.find_account("nobody@example.com").unwrap().is_none());
    let e = d.get_account("nobody@example.com").unwrap_err();
    assert!(
        e.to_string()
            .contains("no such account: nobody@example.com"),
        "{e}"
    );

    let e = d.create_account("bob@nowhere.org", None, &[]).unwrap_err();
    assert!(
        e.to_string()
            .contains("create the domain first: zmprov cd nowhere.org"),
        "{e}"
    );
    let e = d
        .create_account("alice@example.com", None, &[])
        .unwrap_err();
    assert!(matches!(e, DirectoryError::AddressTaken { .. }), "{e}");

    let b = d.create_account("bob@example.com", None, &[]).unwrap();
    assert_eq!(b.mailbox_id, MailboxId(2));
    d.create_domain("other.org", &[]).unwrap();
    d.create_account("carol@other.org", None, &[]).unwrap();
    let all: Vec<_> = d
        .list_accounts(None)
        .unwrap()
        .into_iter()
        .map(|a| a.email)
        .collect();
    assert_eq!(
        all,
        ["alice@example.com", "bob@example.com", "carol@other.org"]
    );
    let other: Vec<_> = d
        .list_accounts(Some("Other.org"))
        .unwrap()
        .into_iter()
        .map(|a| a.email)
        .collect();
    assert_eq!(other, ["carol@other.org"]);
    assert!(matches!(
        d.list_accounts(Some("x.org")),
        Err(DirectoryError::NoSuchDomain(_))
    ));

    let a2 = d
        .modify_account(
            "alice@example.com",
            &[
                Modification::set(STATUS, "Locked"),
                Modification::add("zimbraMailForwardingAddress", "x@y.z"),
                Modification::unset("displayName"),
            ],
        )
        .unwrap();
    assert_eq!(a2.status, AccountStatus::Locked);
    assert!(a2.attr("displayName").is_empty());
    assert_eq!(d.get_account(&a.id).unwrap(), a2);
    let e = d
        .modify_account("alice@example.com", &[Modification::set(STATUS, "frozen")])
        .unwrap_err();
    assert!(matches!(e, DirectoryError::InvalidStatus(_)), "{e}");
    assert!(matches!(
        d.modify_account(
            "alice@example.com",
            &[Modification::set("mail", "x@example.com")]
        ),
        Err(DirectoryError::ReadOnlyAttribute { .. })
    ));
    assert!(matches!(
        d.modify_account("alice@example.com", &[Modification::set(QUOTA, "lots")]),
        Err(DirectoryError::InvalidAttributeValue { .. })
    ));
    assert_eq!(
        d.set_account_status("alice@example.com", AccountStatus::Closed)
            .unwrap()
            .status,
        AccountStatus::Closed
    );

    let deleted = d.delete_account("alice@example.com").unwrap();
    assert_eq!(deleted.id, a.id);
    assert!(d.find_account(&a.id).unwrap().is_none());
    assert!(matches!(
        d.delete_account("alice@example.com"),
        Err(DirectoryError::NoSuchAccount(_))
    ));
}

#[test]
fn account_json() {
    let d = dir();
    let a = d
        .create_account("u@example.com", Some("secret"), &[])
        .unwrap();
    let json = serde_json::to_string(&a).unwrap();
    assert!(json.contains("\"status\":\"active\""), "{json}");
    assert!(!json.contains("argon2"), "no password hash in JSON: {json}");
    let back: Account = serde_json::from_str(&json).unwrap();
    assert_eq!(back, a);
}

#[test]
fn passwords() {
    let d = dir();
    d.create_account("u@example.com", Some("correct horse"), &[])
        .unwrap();
    assert!(d.verify_password("u@example.com", "correct horse").unwrap());
    assert!(!d.verify_password("u@example.com", "wrong").unwrap());
    let id = d.get_account("u@example.com").unwrap().id;
    let hash = password_hash(&d.writer(), &id).unwrap().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    d.set_password("u@example.com", "new one").unwrap();
    assert!(d.verify_password("u@example.com", "new one").unwrap());
    assert!(!d.verify_password("u@example.com", "correct horse").unwrap());
    d.modify_account("u@example.com", &[Modification::unset(PASSWORD)])
        .unwrap();
    assert!(!d.verify_password("u@example.com", "new one").unwrap());
    assert!(d.set_password("u@example.com", "").is_err());
    d.create_account("nopw@example.com", None, &[]).unwrap();
    assert!(!d.verify_password("nopw@example.com", "").unwrap());
}

#[test]
fn quota_inherits_from_cos_and_account_overrides() {
    let d = dir();
    let a = d.create_account("u@example.com", None, &[]).unwrap();
    assert_eq!(d.effective_quota(&a).unwrap(), 0, "unlimited by default");
    d.modify_cos(crate::DEFAULT_COS, &[Modification::set(QUOTA, "1000")])
        .unwrap();
    assert_eq!(d.effective_quota(&a).unwrap(), 1000);
    d.create_cos("gold", &[Modification::set(QUOTA, "5000")])
        .unwrap();
    let a = d.set_account_cos("u@example.com", "gold").unwrap();
    assert_eq!(d.effective_quota(&a).unwrap(), 5000);
    let a = d
        .modify_account("u@example.com", &[Modification::set(QUOTA, "42")])
        .unwrap();
    assert_eq!(d.effective_quota(&a).unwrap(), 42);
    let a = d
        .modify_account("u@example.com", &[Modification::set(QUOTA, "0")])
        .unwrap();
    assert_eq!(
        d.effective_quota(&a).unwrap(),
        0,
        "0 on the account overrides"
    );
    let a = d
        .modify_account("u@example.com", &[Modification::unset(QUOTA)])
        .unwrap();
    assert_eq!(d.effective_quota(&a).unwrap(), 5000);
    assert!(matches!(
        d.set_account_cos("u@example.com", "nope"),
        Err(DirectoryError::NoSuchCos(_))
    ));
    let a = d
        .modify_account("u@example.com", &[Modification::unset(COS_ID)])
        .unwrap();
    assert_eq!(
        d.effective_quota(&a).unwrap(),
        1000,
        "back on the default COS"
    );
}

#[test]
fn rename_keeps_ids_and_aliases() {
    let d = dir();
    d.create_domain("new.org", &[]).unwrap();
    let a = d.create_account("old@example.com", None, &[]).unwrap();
    d.add_account_alias("old@example.com", "al@example.com")
        .unwrap();
    d.create_dl("team@example.com", &[]).unwrap();
    d.add_dl_members("team@example.com", &["old@example.com"])
        .unwrap();

    let r = d.rename_account("old@example.com", "New@new.org").unwrap();
    assert_eq!(r.email, "new@new.org");
    assert_eq!(r.id, a.id);
    assert_eq!(r.mailbox_id, a.mailbox_id);
    assert_eq!(r.aliases, ["al@example.com"]);
    assert!(d.find_account("old@example.com").unwrap().is_none());
    assert_eq!(d.get_account("al@example.com").unwrap().id, a.id);
    assert_eq!(
        d.get_dl("team@example.com").unwrap().members,
        ["new@new.org"]
    );
    // The old address is free again.
    d.create_account("old@example.com", None, &[]).unwrap();
    let e = d
        .rename_account("new@new.org", "old@example.com")
        .unwrap_err();
    assert!(matches!(e, DirectoryError::AddressTaken { .. }), "{e}");
    assert!(matches!(
        d.rename_account("new@new.org", "x@missing.org"),
        Err(DirectoryError::NoSuchDomain(_))
    ));
}

#[test]
fn aliases_share_one_namespace() {
    let d = dir();
    let a = d.create_account("a@example.com", None, &[]).unwrap();
    d.create_account("b@example.com", None, &[]).unwrap();
    d.create_dl("list@example.com", &[]).unwrap();
    let a2 = d
        .add_account_alias("a@example.com", "Alias@Example.com")
        .unwrap();
    assert_eq!(a2.aliases, ["alias@example.com"]);
    assert_eq!(d.get_account("ALIAS@example.com").unwrap().id, a.id);
    for taken in [
        "alias@example.com",
        "b@example.com",
        "list@example.com",
        "a@example.com",
    ] {
        let e = d.add_account_alias("b@example.com", taken).unwrap_err();
        assert!(
            matches!(e, DirectoryError::AddressTaken { .. }),
            "{taken}: {e}"
        );
    }
    let e = d.create_dl("alias@example.com", &[]).unwrap_err();
    assert!(
        e.to_string().contains("an alias of account a@example.com"),
        "{e}"
    );
    assert!(matches!(
        d.add_account_alias("a@example.com", "x@missing.org"),
        Err(DirectoryError::NoSuchDomain(_))
    ));
    assert!(matches!(
        d.remove_account_alias("b@example.com", "alias@example.com"),
        Err(DirectoryError::NoSuchAlias { .. })
    ));
    let a3 = d
        .remove_account_alias("a@example.com", "alias@example.com")
        .unwrap();
    assert!(a3.aliases.is_empty());
    assert!(d.find_account("alias@example.com").unwrap().is_none());
}

#[test]
fn mailbox_ids_are_never_reused() {
    let d = dir();
    let a = d.create_account("a@example.com", None, &[]).unwrap();
    let b = d.create_account("b@example.com", None, &[]).unwrap();
    assert_eq!((a.mailbox_id.0, b.mailbox_id.0), (1, 2));
    d.delete_account("b@example.com").unwrap();
    d.delete_account("a@example.com").unwrap();
    let c = d.create_account("a@example.com", None, &[]).unwrap();
    assert_eq!(c.mailbox_id, MailboxId(3));
    assert_eq!(d.max_mailbox_id().unwrap(), MailboxId(3));

    // A restore may put an account back on its original, now unused, id.
    let c = d.set_mailbox_id("a@example.com", MailboxId(1)).unwrap();
    assert_eq!(c.mailbox_id, MailboxId(1));
    let e = d.create_account("x@example.com", None, &[]).unwrap();
    assert_eq!(e.mailbox_id, MailboxId(4));
    let err = d.set_mailbox_id("x@example.com", MailboxId(1)).unwrap_err();
    assert!(
        matches!(err, DirectoryError::MailboxIdTaken { id: 1, .. }),
        "{err}"
    );
    assert!(matches!(
        d.set_mailbox_id("x@example.com", MailboxId(0)),
        Err(DirectoryError::InvalidMailboxId(0))
    ));
    // Setting a high id moves the counter past it.
    d.set_mailbox_id("x@example.com", MailboxId(100)).unwrap();
    assert_eq!(
        d.create_account("y@example.com", None, &[])
            .unwrap()
            .mailbox_id,
        MailboxId(101)
    );
    d.reserve_mailbox_id(MailboxId(200)).unwrap();
    d.reserve_mailbox_id(MailboxId(150)).unwrap();
    assert_eq!(d.max_mailbox_id().unwrap(), MailboxId(200));
    assert_eq!(d.allocate_mailbox_id().unwrap(), MailboxId(201));
    assert_eq!(
        d.create_account("z@example.com", None, &[])
            .unwrap()
            .mailbox_id,
        MailboxId(202)
    );
}

#[test]
fn resolve_recipients() {
    let d = dir();
    let a = d.create_account("a@example.com", None, &[]).unwrap();
    let b = d.create_account("b@example.com", None, &[]).unwrap();
    let c = d.create_account("c@example.com", None, &[]).unwrap();
    d.add_account_alias("b@example.com", "bee@example.com")
        .unwrap();
    let ids = |v: Vec<Account>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();

    assert_eq!(
        ids(d.resolve_recipient(" A@EXAMPLE.COM").unwrap()),
        std::slice::from_ref(&a.id)
    );
    assert_eq!(
        ids(d.resolve_recipient("Bee@example.com").unwrap()),
        std::slice::from_ref(&b.id)
    );
    assert!(
        d.resolve_recipient("nobody@example.com")
            .unwrap()
            .is_empty()
    );
    assert!(d.resolve_recipient("not an address").unwrap().is_empty());

    // Nested lists, a cycle, an alias and an external member; each account once.
    d.create_dl("outer@example.com", &[]).unwrap();
    d.create_dl("inner@example.com", &[]).unwrap();
    d.add_dl_members(
        "outer@example.com",
        &["inner@example.com", "a@example.com", "ext@else.where"],
    )
    .unwrap();
    d.add_dl_members(
        "inner@example.com",
        &[
            "bee@example.com",
            "outer@example.com",
            "b@example.com",
            "a@example.com",
        ],
    )
    .unwrap();
    assert_eq!(
        ids(d.resolve_recipient("outer@example.com").unwrap()),
        [a.id.clone(), b.id.clone()]
    );
    assert_eq!(
        ids(d.resolve_recipient("INNER@example.com").unwrap()),
        [a.id.clone(), b.id.clone()]
    );
    d.add_dl_members("inner@example.com", &["c@example.com"])
        .unwrap();
    assert_eq!(
        ids(d.resolve_recipient("outer@example.com").unwrap()),
        [a.id, b.id, c.id]
    );
    // A list that contains only itself resolves to nobody.
    d.create_dl("self@example.com", &[]).unwrap();
    d.add_dl_members("self@example.com", &["self@example.com"])
        .unwrap();
    assert!(d.resolve_recipient("self@example.com").unwrap().is_empty());
}
