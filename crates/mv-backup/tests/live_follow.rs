//! A warm standby's follower (`live::follow::step`) against a damaged shipped
//! segment: the step fails while it is damaged, leaving the position where it
//! was, and goes on once the primary's next shipper (a restarted server) has
//! shipped the open log again from that segment's start — for a standby that
//! had not read the segment yet, and for one already past it, which then
//! applies only the records it lacks. And, on a directory and on an S3
//! target, the same without a restart: the standby asks
//! (`live/repair-request.json`) and the running shipper ships it again.

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

/// A standby that finds a segment damaged asks; the running shipper (no
/// restart) ships the open log again from there at its next round.
fn a_running_shipper_repairs_what_a_standby_asks_for(fx: Fx) {
    use mv_backup::live::repair::{self, RepairRequest};
    let target = fx.target();
    let a = fx.account("a@d.test");
    let mut sh = shipper(&fx, &target);
    let mut round = |n: usize, tag: &str| {
        for i in 0..n {
            fx.deliver(&message(&format!("{tag}{i}"), 600), &[&a]);
        }
        sh.round(fx.store.redo().durable_lsn()).unwrap()
    };
    round(2, "one");
    let standby = Fx::new();
    let start = Position {
        sequence: fx.store.redo().position().sequence,
        ..Default::default()
    };
    let pos = follow::step(target.as_ref(), &standby.store, &start)
        .unwrap()
        .position;
    round(2, "two");
    // The newest segment, not read by the standby yet, is cut short.
    let segs = mv_backup::live::list(target.as_ref()).unwrap().segments[&start.sequence].clone();
    let newest = segs.last().unwrap();
    let file = fx.object_file(&newest.path);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 40]).unwrap();
    let e = follow::step(target.as_ref(), &standby.store, &pos).unwrap_err();
    assert!(matches!(e, mv_backup::BackupError::Corrupt { .. }), "{e}");
    let asked = RepairRequest {
        sequence: pos.sequence,
        offset: pos.offset,
        reason: e.to_string(),
        server: "standby".into(),
        written_at: 0,
    };
    assert!(repair::request(target.as_ref(), &asked).unwrap());

    let r = round(1, "three");
    assert_eq!(r.repaired, Some((start.sequence, newest.start)));
    assert!(repair::read(target.as_ref()).unwrap().is_none());
    let s = follow::step(target.as_ref(), &standby.store, &pos).unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(messages(&standby.store, a.mailbox_id), 5);
    assert_eq!(s.position.lsn, fx.store.redo().durable_lsn().0);
    assert!(mv_backup::live::verify(target.as_ref()).unwrap().is_empty());
}

#[test]
fn a_running_shipper_repairs_a_damaged_segment_on_a_directory_target() {
    a_running_shipper_repairs_what_a_standby_asks_for(Fx::new());
}

#[test]
fn a_running_shipper_repairs_a_damaged_segment_on_an_s3_target() {
    a_running_shipper_repairs_what_a_standby_asks_for(Fx::new_s3());
}
