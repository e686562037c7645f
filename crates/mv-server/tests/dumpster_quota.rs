//! `zimbraDumpsterQuota` (on the account, else its COS; bytes, 0 or unset: no
//! limit): the dumpster sweep removes the oldest deleted messages until the
//! dumpster fits, and leaves an account without a limit alone.

use mv_home::Home;
use mv_server::{Request, Service};
use mv_store::DeliverOptions;
use mv_types::{ItemId, UtcMillis};

fn message(n: usize) -> Vec<u8> {
    format!(
        "Subject: m{n}\r\nMessage-ID: <m{n}@x>\r\n\r\n{}\r\n",
        "body ".repeat(200)
    )
    .into_bytes()
}

/// Delivers three messages and deletes them one after the other (so their
/// deletion times differ); returns their ids, oldest deleted first.
fn fill(service: &Service, email: &str) -> Vec<ItemId> {
    let a = service.directory().find_account(email).unwrap().unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = service
            .store()
            .add_message(a.mailbox_id, &message(n), &DeliverOptions::default())
            .unwrap();
        service.store().delete_items(a.mailbox_id, &[id]).unwrap();
        let t = UtcMillis::now();
        while UtcMillis::now() <= t {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        ids.push(id);
    }
    ids
}

fn dumpster(service: &Service, email: &str) -> Vec<u32> {
    let a = service.directory().find_account(email).unwrap().unwrap();
    let mut v: Vec<u32> = service
        .store()
        .mailbox(a.mailbox_id)
        .dumpster()
        .unwrap()
        .into_iter()
        .map(|d| d.item.id)
        .collect();
    v.sort();
    v
}

#[test]
fn the_sweep_keeps_a_dumpster_within_its_quota_oldest_deleted_first() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    home.init().unwrap();
    let (service, _) = Service::open(&home).unwrap();
    service
        .execute(Request::CreateDomain {
            name: "d.test".into(),
            attrs: vec![],
        })
        .unwrap();
    // Room for two of the three messages (each about 1 KB).
    let size = message(0).len();
    let quota = (2 * size + size / 2).to_string();
    let attrs = vec!["zimbraDumpsterQuota".to_string(), quota];
    service
        .create_account("limited@d.test", None, &attrs)
        .unwrap();
    service.create_account("free@d.test", None, &[]).unwrap();
    for bad in ["-1", "lots"] {
        let attrs = vec!["zimbraDumpsterQuota".to_string(), bad.to_string()];
        assert!(
            service.create_account("bad@d.test", None, &attrs).is_err(),
            "{bad} is not a byte count"
        );
    }
    let limited = fill(&service, "limited@d.test");
    let free = fill(&service, "free@d.test");

    // Nothing ran out of time: only the quota removes, the oldest deleted.
    assert_eq!(service.sweep_dumpsters(UtcMillis::now()).unwrap(), 1);
    assert_eq!(
        dumpster(&service, "limited@d.test"),
        vec![limited[1].0, limited[2].0]
    );
    assert_eq!(
        dumpster(&service, "free@d.test"),
        free.iter().map(|i| i.0).collect::<Vec<_>>()
    );
    // Within the limit now: a second sweep removes nothing.
    assert_eq!(service.sweep_dumpsters(UtcMillis::now()).unwrap(), 0);
}
