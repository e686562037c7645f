use super::*;
use crate::cos::DEFAULT_COS;
use crate::error::DirectoryError;
use crate::{AccountImport, AccountStatus, MailboxIdChoice, Modification};
use mv_types::MailboxId;

fn fresh() -> Directory {
    Directory::open_in_memory().unwrap()
}

/// Everything a directory holds, for comparing two of them.
fn model(d: &Directory) -> impl PartialEq + std::fmt::Debug {
    let hashes: Vec<Option<String>> = d
        .list_accounts(None)
        .unwrap()
        .iter()
        .map(|a| account::password_hash(&d.writer(), &a.id).unwrap())
        .collect();
    (
        d.list_domains().unwrap(),
        d.list_cos().unwrap(),
        d.list_accounts(None).unwrap(),
        hashes,
        d.list_dls(None).unwrap(),
        d.list_servers().unwrap(),
        d.global_explicit().unwrap(),
        d.max_mailbox_id().unwrap(),
    )
}

fn round_trip(d: &Directory) -> Directory {
    let text = d.export_ldif().unwrap();
    let copy = fresh();
    copy.import_ldif(&text).unwrap();
    assert_eq!(
        copy.export_ldif().unwrap(),
        text,
        "export → import → export is byte-identical"
    );
    assert_eq!(model(&copy), model(d));
    copy
}

#[test]
fn generalized_time() {
    assert_eq!(gentime(UtcMillis(0)), "19700101000000.000Z");
    assert_eq!(gentime(UtcMillis(1_290_187_290_852)), "20101119172130.852Z");
    assert_eq!(gentime(UtcMillis(-1)), "19691231235959.999Z");
    for t in [
        0,
        1,
        951_782_400_000,
        1_709_251_199_999,
        4_102_444_800_000,
        -86_400_001,
    ] {
        assert_eq!(
            parse_gentime(&gentime(UtcMillis(t))),
            Some(UtcMillis(t)),
            "{t}"
        );
    }
    assert_eq!(
        parse_gentime("20101119172130Z"),
        Some(UtcMillis(1_290_187_290_000))
    );
    assert_eq!(
        parse_gentime("20240229000000Z").map(gentime).as_deref(),
        Some("20240229000000.000Z")
    );
    for bad in [
        "20230229000000Z",
        "20101319000000Z",
        "20101119246000Z",
        "2010111917213Z",
        "20101119172130.85Z",
        "20101119172130",
        "2010111917213xZ",
        "20101119172130.852Z ",
    ] {
        assert_eq!(parse_gentime(bad), None, "{bad}");
    }
}

fn sample() -> Directory {
    let d = fresh();
    d.create_domain(
        "example.com",
        &[Modification::set("description", "main domain")],
    )
    .unwrap();
    d.create_domain("mail.other.org", &[]).unwrap();
    d.create_cos(
        "gold",
        &[
            Modification::set("zimbraMailQuota", "1073741824"),
            Modification::add("description", "gold"),
        ],
    )
    .unwrap();
    d.modify_cos(DEFAULT_COS, &[Modification::set("zimbraMailQuota", "1000")])
        .unwrap();
    d.create_account(
        "alice@example.com",
        Some("s3cret"),
        &[
            Modification::set("displayName", "Alice Ĺiddell ☃"),
            Modification::set("description", " leading space"),
            Modification::set("street", "line one\nline two\r\n"),
            Modification::set("info", "x".repeat(300)),
            Modification::set("zimbraCOSId", "gold"),
        ],
    )
    .unwrap();
    d.create_account("bob+tag=x@example.com", None, &[])
        .unwrap();
    d.create_account(
        "#hash@mail.other.org",
        None,
        &[Modification::set("zimbraAccountStatus", "maintenance")],
    )
    .unwrap();
    d.create_account("gone@example.com", None, &[]).unwrap();
    d.delete_account("gone@example.com").unwrap();
    d.add_account_alias("alice@example.com", "ali@mail.other.org")
        .unwrap();
    d.add_account_alias("alice@example.com", "a@example.com")
        .unwrap();
    d.create_dl(
        "all@example.com",
        &[Modification::set("displayName", "Everyone")],
    )
    .unwrap();
    d.add_dl_members(
        "all@example.com",
        &[
            "alice@example.com",
            "bob+tag=x@example.com",
            "friend@elsewhere.net",
        ],
    )
    .unwrap();
    d.modify_global(&[
        Modification::set("zimbraBackupMode", "Auto-Grouped"),
        Modification::replace(
            "zimbraBackupSchedule",
            vec!["f 0 1 * * 0-6".into(), "d 1m 0 0 * * *".into()],
        ),
    ])
    .unwrap();
    d.ensure_server("mail.example.com").unwrap();
    d.modify_server(
        "mail.example.com",
        &[Modification::set("zimbraRedoLogFsyncIntervalMS", "5")],
    )
    .unwrap();
    d
}

#[test]
fn whole_directory_round_trips() {
    let d = sample();
    let mut copy = round_trip(&d);
    assert!(copy.verify_password("alice@example.com", "s3cret").unwrap());
    assert!(!copy.verify_password("alice@example.com", "nope").unwrap());
    assert_eq!(
        copy.get_account("ALI@mail.other.org").unwrap().email,
        "alice@example.com"
    );
    let next = copy.clone_next_account();
    assert_eq!(
        next,
        MailboxId(5),
        "the deleted account's mailbox id 4 is not reused"
    );
}

impl Directory {
    fn clone_next_account(&mut self) -> MailboxId {
        self.create_domain("fresh.example", &[]).ok();
        self.create_account("new@fresh.example", None, &[])
            .unwrap()
            .mailbox_id
    }
}

#[test]
fn ldif_conventions() {
    let d = sample();
    let text = d.export_ldif().unwrap();
    assert!(
        text.starts_with(
            "version: 1\n\ndn: cn=zimbra\nobjectClass: organizationalRole\ncn: zimbra\n\n"
        ),
        "{text}"
    );
    assert!(text.contains("\ndn: cn=config,cn=zimbra\nobjectClass: zimbraGlobalConfig\ncn: config\nmailvaultNextMailboxId: 5\nzimbraBackupMode: Auto-Grouped\n"), "{text}");
    assert!(
        text.contains("\ndn: cn=gold,cn=cos,cn=zimbra\nobjectClass: zimbraCOS\ncn: gold\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "\ndn: cn=mail.example.com,cn=servers,cn=zimbra\nobjectClass: zimbraServer\n"
        ),
        "{text}"
    );
    assert!(text.contains("\ndn: dc=mail,dc=other,dc=org\nobjectClass: dcObject\nobjectClass: organization\nobjectClass: zimbraDomain\ndc: mail\no: mail.other.org\nzimbraDomainName: mail.other.org\n"), "{text}");
    assert!(text.contains("\ndn: ou=people,dc=example,dc=com\nobjectClass: organizationalRole\nou: people\ncn: people\n"), "{text}");
    assert!(text.contains("\ndn: uid=alice,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nobjectClass: zimbraAccount\nuid: alice\nmail: alice@example.com\n"), "{text}");
    assert!(text.contains("\nzimbraMailAlias: a@example.com\nzimbraMailAlias: ali@mail.other.org\nzimbraAccountStatus: active\n"), "{text}");
    assert!(text.contains("\nuserPassword: $argon2id$"), "{text}");
    assert!(
        text.contains("\nmailvaultMailboxId: 1\nzimbraCreateTimestamp: "),
        "{text}"
    );
    assert!(
        text.contains("\ndn: uid=bob\\+tag\\=x,ou=people,dc=example,dc=com\n"),
        "{text}"
    );
    assert!(
        text.contains("\ndn: uid=\\#hash,ou=people,dc=mail,dc=other,dc=org\n"),
        "{text}"
    );
    assert!(
        text.contains("\ndescription:: IGxlYWRpbmcgc3BhY2U=\n"),
        "{text}"
    );
    assert!(text.contains("\ndn: uid=all,ou=people,dc=example,dc=com\nobjectClass: zimbraDistributionList\nuid: all\nmail: all@example.com\n"), "{text}");
    assert!(
        text.contains("\nzimbraMailForwardingAddress: friend@elsewhere.net\n"),
        "{text}"
    );
    assert!(text.lines().all(|l| l.len() <= ldif::FOLD_COLUMN), "folded");
    assert!(text.contains("\ninfo: xxxxxxxx"), "{text}");
    assert!(text.is_ascii());
}

#[test]
fn import_refuses_a_non_empty_directory() {
    let d = sample();
    let text = d.export_ldif().unwrap();
    let other = fresh();
    other.create_domain("x.org", &[]).unwrap();
    let e = other.import_ldif(&text).unwrap_err();
    assert!(matches!(e, DirectoryError::NotEmpty(_)), "{e}");
    assert!(e.to_string().contains("1 domains"), "{e}");
    let other = fresh();
    other
        .modify_cos(DEFAULT_COS, &[Modification::set("zimbraMailQuota", "1")])
        .unwrap();
    assert!(matches!(
        other.import_ldif(&text),
        Err(DirectoryError::NotEmpty(_))
    ));
}

#[test]
fn import_errors_name_the_entry_and_change_nothing() {
    let text = sample().export_ldif().unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            text.replace("mailvaultMailboxId: 2\n", "mailvaultMailboxId: zero\n"),
            "not a mailbox id",
        ),
        (
            text.replace("mailvaultMailboxId: 2\n", "mailvaultMailboxId: 1\n"),
            "mailbox id 1 is already used",
        ),
        (
            text.replace(
                "objectClass: zimbraDistributionList\n",
                "objectClass: posixGroup\n",
            ),
            "unknown kind of entry",
        ),
        (
            text.replace("dn: uid=alice,ou=people", "dn: uid=alicia,ou=people"),
            "DN does not match",
        ),
        (
            text.replace(
                "zimbraAccountStatus: active\nzimbraCOSId",
                "zimbraAccountStatus: frozen\nzimbraCOSId",
            ),
            "invalid account status",
        ),
        (
            text.replace("zimbraDomainName: mail.other.org\n", ""),
            "zimbraDomainName is missing",
        ),
        (
            text.replace(
                "\ndn: dc=mail,dc=other,dc=org\n",
                "\ndn: dc=mail,dc=other,dc=net\n",
            ),
            "DN does not match",
        ),
        (
            text.replace(
                "zimbraBackupMode: Auto-Grouped\n",
                "zimbraBackupMode: Sometimes\n",
            ),
            "zimbraBackupMode",
        ),
        (
            text.replace("userPassword: $argon2id$", "userPassword: plain$argon2id$"),
            "PHC",
        ),
        (
            text.replace(
                "zimbraMailAlias: a@example.com\n",
                "zimbraMailAlias: bob+tag=x@example.com\n",
            ),
            "already used",
        ),
        (
            format!(
                "{text}dn: ou=groups,dc=example,dc=com\nobjectClass: organizationalRole\ncn: groups\n"
            ),
            "not a container",
        ),
    ];
    for (bad, what) in cases {
        assert_ne!(bad, text, "the case for {what:?} must change the text");
        let d = fresh();
        let e = d.import_ldif(&bad).unwrap_err();
        assert!(e.to_string().contains(what), "{what}: {e}");
        if let DirectoryError::Import { line, .. } = &e {
            assert!(*line > 0, "{e}");
        }
        assert!(d.list_domains().unwrap().is_empty(), "all or nothing");
        assert_eq!(d.list_cos().unwrap().len(), 1);
    }
    let e = fresh().import_ldif("dn: a=b\nbroken\n").unwrap_err();
    assert!(e.to_string().starts_with("LDIF line 2:"), "{e}");
}

#[test]
fn import_without_config_or_default_cos_still_works() {
    let d = fresh();
    d.import_ldif(
        "dn: dc=example,dc=com\nobjectClass: zimbraDomain\nzimbraDomainName: example.com\nzimbraId: 6f1c2d6e-8c9a-4a57-9d1e-0f6a1b7c2d3e\nzimbraCreateTimestamp: 20240101000000Z\n\n\
         dn: uid=u,ou=people,dc=example,dc=com\nobjectClass: zimbraAccount\nuid: u\nmail: u@example.com\nzimbraId: 0C9A3E5B-1D2F-4E6A-8B7C-9D0E1F2A3B4C\nzimbraAccountStatus: active\nmailvaultMailboxId: 41\nzimbraCreateTimestamp: 20240101000000Z\n",
    )
    .unwrap();
    let a = d.get_account("u@example.com").unwrap();
    assert_eq!(a.id, "0c9a3e5b-1d2f-4e6a-8b7c-9d0e1f2a3b4c");
    assert_eq!(a.cos_id, d.default_cos().unwrap().id);
    assert_eq!(d.max_mailbox_id().unwrap(), MailboxId(41));
}

#[test]
fn account_entry_restores() {
    let d = sample();
    let alice = d.get_account("alice@example.com").unwrap();
    let text = d.export_account_ldif("alice@example.com").unwrap();
    assert_eq!(d.account_ldif(&alice).unwrap(), text);
    let entries = ldif::parse(text.as_bytes()).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0], d.account_entry(&alice.id).unwrap());

    // The original account is live: importing it again needs -ra (replace).
    let e = d
        .import_account_ldif(&text, &AccountImport::original())
        .unwrap_err();
    assert!(matches!(e, DirectoryError::AccountExists { .. }), "{e}");

    // -ca -pre restore_: a new account beside the original.
    let restored = d
        .import_account_ldif(
            &text,
            &AccountImport::new_account("restore_alice@example.com"),
        )
        .unwrap();
    let r = restored.account;
    assert_eq!(r.email, "restore_alice@example.com");
    assert_ne!(r.id, alice.id);
    assert!(r.mailbox_id > alice.mailbox_id);
    assert!(r.aliases.is_empty());
    assert_eq!(r.attrs, alice.attrs);
    assert_eq!(r.cos_id, alice.cos_id);
    assert!(
        d.verify_password("restore_alice@example.com", "s3cret")
            .unwrap()
    );
    assert!(restored.replaced.is_none());

    // -ra over the live account: same ids, list memberships kept.
    let opts = AccountImport {
        replace: true,
        ..AccountImport::original()
    };
    d.modify_account(
        "alice@example.com",
        &[Modification::set("displayName", "changed")],
    )
    .unwrap();
    let back = d.import_account_ldif(&text, &opts).unwrap();
    assert_eq!(back.account, alice);
    assert_eq!(back.replaced.unwrap().attr("displayName"), ["changed"]);
    assert_eq!(d.get_account("alice@example.com").unwrap(), alice);
    assert!(
        d.get_dl("all@example.com")
            .unwrap()
            .members
            .contains(&alice.email)
    );

    // -ra of a deleted account: original zimbraId and mailbox id come back.
    d.delete_account("alice@example.com").unwrap();
    d.delete_cos("gold", true).unwrap();
    let back = d
        .import_account_ldif(&text, &AccountImport::original())
        .unwrap();
    assert_eq!(back.account.id, alice.id);
    assert_eq!(back.account.mailbox_id, alice.mailbox_id);
    assert_eq!(back.account.aliases, alice.aliases);
    assert_eq!(
        back.account.cos_id,
        d.default_cos().unwrap().id,
        "missing COS → default"
    );

    // Given mailbox id, taken mailbox id, missing domain.
    let e = d
        .import_account_ldif(
            &text,
            &AccountImport {
                mailbox_id: MailboxIdChoice::Given(back.account.mailbox_id),
                ..AccountImport::new_account("x@example.com")
            },
        )
        .unwrap_err();
    assert!(matches!(e, DirectoryError::MailboxIdTaken { .. }), "{e}");
    let given = d
        .import_account_ldif(
            &text,
            &AccountImport {
                mailbox_id: MailboxIdChoice::Given(MailboxId(77)),
                ..AccountImport::new_account("x@example.com")
            },
        )
        .unwrap();
    assert_eq!(given.account.mailbox_id, MailboxId(77));
    assert!(d.max_mailbox_id().unwrap() >= MailboxId(77));
    let e = d
        .import_account_ldif(&text, &AccountImport::new_account("x@nowhere.org"))
        .unwrap_err();
    assert!(e.to_string().contains("zmprov cd nowhere.org"), "{e}");

    // Not an account entry / not one entry.
    let domain_entry = d
        .export_entries()
        .unwrap()
        .into_iter()
        .find(|e| e.dn == "dc=example,dc=com")
        .unwrap();
    assert!(
        d.import_account_entry(&domain_entry, &AccountImport::original())
            .is_err()
    );
    assert!(
        d.import_account_ldif("version: 1\n", &AccountImport::original())
            .is_err()
    );
}

#[test]
fn statuses_round_trip() {
    let d = fresh();
    d.create_domain("example.com", &[]).unwrap();
    for st in AccountStatus::ALL {
        d.create_account(
            &format!("{st}@example.com"),
            None,
            &[Modification::set("zimbraAccountStatus", st.as_str())],
        )
        .unwrap();
    }
    round_trip(&d);
}

mod proptests {
    use super::*;
    use proptest::prelude::*;

    const DOMAINS: [&str; 3] = ["example.com", "mail.example.org", "x-y.io"];

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{1,40}",
            any::<String>(),
            "[ :<a-z\r\n\t\u{e9}\u{2603}\u{1F600}\0]{1,100}",
            "[a-z ]{70,200}",
        ]
    }

    fn attr() -> impl Strategy<Value = (String, String)> {
        (
            prop_oneof![
                Just("displayName".to_string()),
                Just("description".to_string()),
                "x[a-zA-Z0-9-]{0,12}",
            ],
            value(),
        )
    }

    fn local() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9._+=#-]{0,10}"
    }

    /// (local part, domain, attributes, status index, COS index)
    type AccountPlan = (String, usize, Vec<(String, String)>, usize, usize);
    /// (local part, domain, attributes, member indexes)
    type ListPlan = (String, usize, Vec<(String, String)>, Vec<usize>);

    #[derive(Debug, Clone)]
    struct Plan {
        domains: Vec<usize>,
        coses: Vec<(String, Vec<(String, String)>)>,
        accounts: Vec<AccountPlan>,
        password: bool,
        aliases: Vec<(usize, String, usize)>,
        lists: Vec<ListPlan>,
        deletes: Vec<usize>,
        global: Vec<(usize, usize)>,
        server: Option<Vec<(usize, usize)>>,
    }

    /// Valid (attribute, value) choices for config changes.
    const CONFIG: &[(&str, &[&str])] = &[
        ("zimbraBackupMode", &["Standard", "auto-grouped"]),
        (
            "zimbraBackupTarget",
            &["/backups/a b", "s3://bucket/prefix"],
        ),
        ("zimbraRedoLogFsyncIntervalMS", &["0", "25"]),
        (
            "zimbraBackupReportEmailRecipients",
            &["a@b.c", "ops@example.com"],
        ),
        (
            "zimbraBackupSchedule",
            &["f 0 1 * * 6 -a all", "i 0 1 * * 0-5"],
        ),
    ];

    fn plan() -> impl Strategy<Value = Plan> {
        (
            prop::collection::vec(0..DOMAINS.len(), 1..3),
            prop::collection::vec(
                ("[a-z][a-z0-9]{0,6}", prop::collection::vec(attr(), 0..3)),
                0..3,
            ),
            prop::collection::vec(
                (
                    local(),
                    0..DOMAINS.len(),
                    prop::collection::vec(attr(), 0..4),
                    0..4usize,
                    0..4usize,
                ),
                0..6,
            ),
            any::<bool>(),
            prop::collection::vec((0..6usize, local(), 0..DOMAINS.len()), 0..4),
            prop::collection::vec(
                (
                    local(),
                    0..DOMAINS.len(),
                    prop::collection::vec(attr(), 0..2),
                    prop::collection::vec(0..12usize, 0..5),
                ),
                0..3,
            ),
            prop::collection::vec(0..6usize, 0..2),
            prop::collection::vec((0..CONFIG.len(), 0..2usize), 0..4),
            prop::option::of(prop::collection::vec((0..CONFIG.len(), 0..2usize), 0..3)),
        )
            .prop_map(
                |(domains, coses, accounts, password, aliases, lists, deletes, global, server)| {
                    Plan {
                        domains,
                        coses,
                        accounts,
                        password,
                        aliases,
                        lists,
                        deletes,
                        global,
                        server,
                    }
                },
            )
    }

    fn mods(attrs: &[(String, String)]) -> Vec<Modification> {
        attrs
            .iter()
            .map(|(n, v)| Modification::add(n.clone(), v.clone()))
            .collect()
    }

    fn config_mods(choices: &[(usize, usize)]) -> Vec<Modification> {
        choices
            .iter()
            .map(|&(a, v)| {
                let (name, values) = CONFIG[a];
                Modification::set(name, values[v])
            })
            .collect()
    }

    /// Applies a plan; operations that conflict (an address taken twice, an
    /// invalid local part) fail and are skipped, as they would be for a user.
    fn build(p: &Plan) -> Directory {
        let d = fresh();
        for &i in &p.domains {
            let _ = d.create_domain(DOMAINS[i], &[]);
        }
        let mut coses = vec![DEFAULT_COS.to_string()];
        for (name, attrs) in &p.coses {
            if d.create_cos(name, &mods(attrs)).is_ok() {
                coses.push(name.clone());
            }
        }
        let mut emails = Vec::new();
        for (i, (local, dom, attrs, status, cos)) in p.accounts.iter().enumerate() {
            let email = format!("{local}@{}", DOMAINS[*dom]);
            let mut m = mods(attrs);
            m.push(Modification::set(
                "zimbraAccountStatus",
                AccountStatus::ALL[*status].as_str(),
            ));
            m.push(Modification::set(
                "zimbraCOSId",
                coses[cos % coses.len()].clone(),
            ));
            let password = (p.password && i == 0).then_some("pw");
            if let Ok(a) = d.create_account(&email, password, &m) {
                emails.push(a.email);
            }
        }
        for (acct, local, dom) in &p.aliases {
            if let Some(owner) = emails.get(*acct) {
                let _ = d.add_account_alias(owner, &format!("{local}@{}", DOMAINS[*dom]));
            }
        }
        let mut lists = Vec::new();
        for (local, dom, attrs, _) in &p.lists {
            if let Ok(l) = d.create_dl(&format!("{local}@{}", DOMAINS[*dom]), &mods(attrs)) {
                lists.push(l.email);
            }
        }
        let candidates: Vec<String> = emails
            .iter()
            .chain(&lists)
            .cloned()
            .chain([
                "ext@elsewhere.net".to_string(),
                "Other@Far.Away".to_string(),
            ])
            .collect();
        for (l, (_, _, _, members)) in lists.iter().zip(&p.lists) {
            let m: Vec<&String> = members
                .iter()
                .map(|&i| &candidates[i % candidates.len()])
                .collect();
            let _ = d.add_dl_members(l, &m);
        }
        for &i in &p.deletes {
            if let Some(e) = emails.get(i) {
                let _ = d.delete_account(e);
            }
        }
        d.modify_global(&config_mods(&p.global)).unwrap();
        if let Some(server) = &p.server {
            d.ensure_server("mail.example.com").unwrap();
            d.modify_server("mail.example.com", &config_mods(server))
                .unwrap();
        }
        d
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn random_directories_round_trip(p in plan()) {
            let d = build(&p);
            let copy = round_trip(&d);
            for a in d.list_accounts(None).unwrap() {
                if account::password_hash(&d.writer(), &a.id).unwrap().is_some() {
                    prop_assert!(copy.verify_password(&a.id, "pw").unwrap());
                }
            }
        }
    }
}
