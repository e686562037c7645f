//! A warm standby's follower (`live::follow::step`) against a damaged shipped
//! segment: the step fails while it is damaged, leaving the position where it
//! was, and goes on once the primary's next shipper (a restarted server) has
//! shipped the open log again from that segment's start — for a standby that
//! had not read the segment yet, and for one already past it, which then
//! applies only the records it lacks.

mod common;

use common::{Fx, message};
use mv_backup::live::follow::{self, Position};
use mv_backup::live::ship::Shipper;
use mv_backup::target::Target;
use mv_store::{ItemKind, Store};
use mv_types::MailboxId;

fn shipper(fx: &Fx, target: &std::sync::Arc<dyn Target>) -> Shipper {
    let redo = fx.store.redo();
    Shipper::new(
        target.clone(),
        redo.config().clone(),
        "primary",
        redo.position().sequence,
    )
    .unwrap()
}

fn messages(store: &Store, mailbox: MailboxId) -> usize {
    store
        .mailbox(mailbox)
        .items(None, Some(ItemKind::Message))
        .unwrap()
        .len()
}

#[test]
fn a_standby_goes_on_after_a_damaged_segment_is_shipped_again() {
    let fx = Fx::new();
    let target = fx.target();
    let a = fx.account("a@d.test");
    let mut sh = shipper(&fx, &target);
    let round = |n: usize, tag: &str, sh: &mut Shipper| {
        for i in 0..n {
            fx.deliver(&message(&format!("{tag}{i}"), 600), &[&a]);
        }
        let r = sh.round(fx.store.redo().durable_lsn()).unwrap();
        assert_eq!(r.segments, 1);
    };
    round(2, "one", &mut sh);

    // Two standbys: `early` applies the first segment only, `late` all three.
    let early = Fx::new();
    let late = Fx::new();
    let start = Position {
        sequence: fx.store.redo().position().sequence,
        ..Default::default()
    };
    let p_early = follow::step(target.as_ref(), &early.store, &start)
        .unwrap()
        .position;
    assert_eq!(messages(&early.store, a.mailbox_id), 2);
    round(2, "two", &mut sh);
    round(2, "three", &mut sh);
    let p_late = follow::step(target.as_ref(), &late.store, &start)
        .unwrap()
        .position;
    assert_eq!(messages(&late.store, a.mailbox_id), 6);

    // The second segment is damaged on the target.
    let seq = start.sequence;
    let segs = mv_backup::live::list(target.as_ref()).unwrap().segments[&seq].clone();
    assert_eq!(segs.len(), 3);
    let file = fx.object_file(&segs[1].path);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x41;
    std::fs::write(&file, &bytes).unwrap();
    let e = follow::step(target.as_ref(), &early.store, &p_early).unwrap_err();
    assert!(e.to_string().contains(&segs[1].path), "{e}");
    assert_eq!(messages(&early.store, a.mailbox_id), 2);

    // The primary restarts: its shipper ships the open log again from the
    // damaged segment on, in one segment that overlaps what `late` applied.
    let mut sh = shipper(&fx, &target);
    round(1, "four", &mut sh);
    let s = follow::step(target.as_ref(), &early.store, &p_early).unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(messages(&early.store, a.mailbox_id), 7);
    let s = follow::step(target.as_ref(), &late.store, &p_late).unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.applied, 1, "only the record it lacked");
    assert_eq!(messages(&late.store, a.mailbox_id), 7);
    assert_eq!(
        s.position.lsn,
        fx.store.redo().durable_lsn().0,
        "both at the end"
    );
}
