use super::ship::Shipper;
use super::*;
use crate::target::FsTarget;
use mv_redo::ops::PutBlob;
use mv_redo::{NewRecord, Op, RedoConfig, RedoLog};
use mv_types::{ChangeNumber, MailboxId, UtcMillis};
use std::sync::Arc;

struct World {
    _dir: tempfile::TempDir,
    cfg: RedoConfig,
    log: RedoLog,
    target: Arc<dyn Target>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RedoConfig::for_dir(&dir.path().join("redolog"));
    let (log, _) = RedoLog::open(cfg.clone()).unwrap();
    let target: Arc<dyn Target> = Arc::new(FsTarget::open(&dir.path().join("target")).unwrap());
    World {
        _dir: dir,
        cfg,
        log,
        target,
    }
}

/// Appends `n` content records and waits until they are durable.
fn put(w: &World, n: usize, seed: u8) {
    let recs = (0..n)
        .map(|i| {
            let data = vec![seed.wrapping_add(i as u8); 300 + i];
            NewRecord {
                txn: w.log.next_txn_id(),
                timestamp: UtcMillis::now(),
                mailbox: MailboxId(0),
                change: ChangeNumber(0),
                op: Op::PutBlob(PutBlob {
                    digest: *blake3::hash(&data).as_bytes(),
                    data,
                }),
            }
        })
        .collect();
    let t = w.log.append(recs).unwrap();
    w.log.wait_durable(&t).unwrap();
}

fn lsns(path: &std::path::Path) -> Vec<u64> {
    mv_redo::RedoFileReader::open(path)
        .unwrap()
        .map(|r| r.unwrap().record.lsn.0)
        .collect()
}

fn shipper(w: &World) -> Shipper {
    Shipper::new(
        w.target.clone(),
        w.cfg.clone(),
        "mail.example.com",
        w.log.position().sequence,
    )
    .unwrap()
}

#[test]
fn segments_of_the_open_log_rebuild_it_and_the_whole_log_replaces_them() {
    let w = world();
    let mut s = shipper(&w);
    put(&w, 3, 1);
    let r = s.round(w.log.durable_lsn()).unwrap();
    assert_eq!((r.logs, r.segments, r.lag.records), (0, 1, 0));
    put(&w, 2, 9);
    assert_eq!(s.lag(w.log.durable_lsn()).records, 2, "two records behind");
    let r = s.round(w.log.durable_lsn()).unwrap();
    assert_eq!(r.segments, 1);
    assert_eq!(
        s.round(w.log.durable_lsn()).unwrap().segments,
        0,
        "nothing new"
    );

    let seq = w.log.position().sequence;
    let listing = list(w.target.as_ref()).unwrap();
    let segs = &listing.segments[&seq];
    assert_eq!(segs.len(), 2);
    let a = assemble(w.target.as_ref(), segs).unwrap();
    assert_eq!(a.records, 5);
    assert_eq!(
        lsns(a.file.path()),
        lsns(&w.cfg.log_path),
        "every record, in order"
    );
    assert!(verify(w.target.as_ref()).unwrap().is_empty());
    let state = read_state(w.target.as_ref()).unwrap().unwrap();
    assert_eq!((state.sequence, state.lsn), (seq, a.last_lsn));

    // A new shipper (a restarted server) goes on where the segments end.
    let mut s = shipper(&w);
    put(&w, 1, 20);
    w.log.rollover().unwrap();
    let r = s.round(w.log.durable_lsn()).unwrap();
    assert_eq!(r.logs, 1, "the closed log, whole");
    let listing = list(w.target.as_ref()).unwrap();
    assert!(listing.logs.contains_key(&seq));
    assert!(
        !listing.segments.contains_key(&seq),
        "its segments are removed once it is whole"
    );
    assert_eq!(prune(w.target.as_ref(), seq).unwrap(), 1);
    assert!(list(w.target.as_ref()).unwrap().is_empty());
}

#[test]
fn only_durable_records_are_shipped() {
    let w = world();
    let mut s = shipper(&w);
    put(&w, 4, 1);
    let durable = w.log.durable_lsn();
    let r = s.round(mv_types::Lsn(durable.0 - 2)).unwrap();
    assert_eq!(r.segments, 1);
    assert_eq!(r.lag.records, 0);
    let listing = list(w.target.as_ref()).unwrap();
    let seq = w.log.position().sequence;
    let a = assemble(w.target.as_ref(), &listing.segments[&seq]).unwrap();
    assert_eq!(a.records, 2);
    assert_eq!(a.last_lsn, durable.0 - 2);
    assert_eq!(s.lag(durable).records, 2);
}

#[test]
fn torn_truncated_and_missing_segments_are_named() {
    let w = world();
    let mut s = shipper(&w);
    for i in 0..3 {
        put(&w, 2, i * 10);
        s.round(w.log.durable_lsn()).unwrap();
    }
    let seq = w.log.position().sequence;
    let segs = list(w.target.as_ref()).unwrap().segments[&seq].clone();
    assert_eq!(segs.len(), 3);
    let file = |o: &SegmentObject| w.target.local_path(&o.path).unwrap();

    // Torn: a byte of the range changed.
    let mut bytes = std::fs::read(file(&segs[1])).unwrap();
    let original = bytes.clone();
    let last = bytes.len() - 5;
    bytes[last] ^= 0x55;
    std::fs::write(file(&segs[1]), &bytes).unwrap();
    let problems = verify(w.target.as_ref()).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains(&segs[1].path), "{problems:?}");
    assert!(problems[0].contains("torn or damaged"), "{problems:?}");
    assert!(assemble(w.target.as_ref(), &segs).is_err());

    // Truncated.
    std::fs::write(file(&segs[1]), &original[..original.len() - 7]).unwrap();
    let problems = verify(w.target.as_ref()).unwrap();
    assert!(problems[0].contains("truncated"), "{problems:?}");

    // Missing in the middle: a hole in the byte ranges.
    std::fs::remove_file(file(&segs[1])).unwrap();
    let problems = verify(w.target.as_ref()).unwrap();
    assert!(problems[0].contains("a segment is missing"), "{problems:?}");
    assert!(problems[0].contains(&segs[2].path), "{problems:?}");

    // Damaged manifest.
    std::fs::write(file(&segs[1]), &original).unwrap();
    let mut bytes = std::fs::read(file(&segs[0])).unwrap();
    bytes[20] ^= 1;
    std::fs::write(file(&segs[0]), &bytes).unwrap();
    let problems = verify(w.target.as_ref()).unwrap();
    assert!(problems[0].contains("manifest"), "{problems:?}");
}

#[test]
fn a_shipped_log_that_is_damaged_is_named() {
    let w = world();
    let mut s = shipper(&w);
    put(&w, 3, 1);
    w.log.rollover().unwrap();
    s.round(w.log.durable_lsn()).unwrap();
    let listing = list(w.target.as_ref()).unwrap();
    let log = listing.logs.values().next().unwrap();
    let p = w.target.local_path(&log.path).unwrap();
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    std::fs::write(&p, &bytes).unwrap();
    let problems = verify(w.target.as_ref()).unwrap();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains(&log.path), "{problems:?}");
}

#[test]
fn any_truncated_or_corrupted_segment_is_refused_naming_it() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let w = world();
    let mut s = shipper(&w);
    for i in 0..2 {
        put(&w, 3, i * 7);
        s.round(w.log.durable_lsn()).unwrap();
    }
    let seq = w.log.position().sequence;
    let segs = list(w.target.as_ref()).unwrap().segments[&seq].clone();
    assert_eq!(segs.len(), 2);
    let originals: Vec<Vec<u8>> = segs
        .iter()
        .map(|o| std::fs::read(w.target.local_path(&o.path).unwrap()).unwrap())
        .collect();
    // Which segment, then a cut (shorter than whole) or one byte changed.
    let damage = (
        0..2usize,
        any::<bool>(),
        any::<prop::sample::Index>(),
        1..=255u8,
    );
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&damage, |(which, cut, at, mask)| {
            let original = &originals[which];
            let mut bytes = original.clone();
            if cut {
                bytes.truncate(at.index(original.len()));
            } else {
                let i = at.index(original.len());
                bytes[i] ^= mask;
            }
            let path = w.target.local_path(&segs[which].path).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            let result = assemble(w.target.as_ref(), &segs);
            std::fs::write(&path, original).unwrap();
            let e = result
                .err()
                .ok_or_else(|| TestCaseError::fail(format!("damaged segment {which} accepted")))?;
            prop_assert!(
                e.to_string().contains(&segs[which].path),
                "the error does not name {}: {e}",
                segs[which].path
            );
            Ok(())
        })
        .unwrap();
    assert!(assemble(w.target.as_ref(), &segs).is_ok());
}

#[test]
fn a_newer_epoch_fences_every_shipper_but_its_owner() {
    let w = world();
    let mut old = shipper(&w);
    put(&w, 2, 1);
    old.round(w.log.durable_lsn()).unwrap();
    let e = epoch::claim(w.target.as_ref(), "standby.example.com").unwrap();
    assert_eq!(e.epoch, 1);
    put(&w, 2, 5);
    let err = old.round(w.log.durable_lsn()).unwrap_err();
    assert!(matches!(err, crate::BackupError::Fenced(_)), "{err}");
    assert!(err.to_string().contains("epoch 1"), "{err}");
    // The owner ships; the next claim is epoch 2, and the old owner is fenced.
    let mut new = shipper(&w);
    new.set_owner(Some(e.owner.clone()));
    new.round(w.log.durable_lsn()).unwrap();
    let e2 = epoch::claim(w.target.as_ref(), "third.example.com").unwrap();
    assert_eq!(e2.epoch, 2);
    assert!(new.round(w.log.durable_lsn()).is_err());
    // Create-new: a name that exists is never replaced.
    assert!(
        !w.target
            .put_new("live/epochs/0000000002.json", b"{}")
            .unwrap()
    );
    assert_eq!(epoch::newest(w.target.as_ref()).unwrap().unwrap(), e2);
}

/// A target whose first read of a segment finds the shipper has just put the
/// segment's log whole and removed the segments (a running server's round
/// between verify's listing and its read).
struct ShipsDuringRead {
    inner: Arc<dyn Target>,
    on_first_read: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Target for ShipsDuringRead {
    fn url(&self) -> String {
        self.inner.url()
    }
    fn put(&self, path: &str, data: &[u8]) -> Result<()> {
        self.inner.put(path, data)
    }
    fn put_file(&self, path: &str, local: &std::path::Path) -> Result<()> {
        self.inner.put_file(path, local)
    }
    fn put_new(&self, path: &str, data: &[u8]) -> Result<bool> {
        self.inner.put_new(path, data)
    }
    fn get(&self, path: &str) -> Result<Vec<u8>> {
        if path.starts_with(SEGMENTS_PREFIX)
            && let Some(ship) = self.on_first_read.lock().unwrap().take()
        {
            ship();
        }
        self.inner.get(path)
    }
    fn get_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.inner.get_range(path, offset, len)
    }
    fn size(&self, path: &str) -> Result<Option<u64>> {
        self.inner.size(path)
    }
    fn list(&self, prefix: &str) -> Result<Vec<crate::target::ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn delete(&self, path: &str) -> Result<()> {
        self.inner.delete(path)
    }
    fn begin_session(&self, label: &str) -> Result<()> {
        self.inner.begin_session(label)
    }
    fn session_put(&self, label: &str, rel: &str, data: &[u8]) -> Result<()> {
        self.inner.session_put(label, rel, data)
    }
    fn session_put_file(&self, label: &str, rel: &str, local: &std::path::Path) -> Result<()> {
        self.inner.session_put_file(label, rel, local)
    }
    fn session_remove(&self, label: &str, rel_prefix: &str) -> Result<()> {
        self.inner.session_remove(label, rel_prefix)
    }
    fn commit_session(&self, label: &str, session_xml: &[u8]) -> Result<()> {
        self.inner.commit_session(label, session_xml)
    }
    fn discard_session(&self, label: &str) -> Result<()> {
        self.inner.discard_session(label)
    }
    fn pending_sessions(&self) -> Result<Vec<String>> {
        self.inner.pending_sessions()
    }
    fn session_names(&self) -> Result<Vec<String>> {
        self.inner.session_names()
    }
    fn retire_session(&self, label: &str) -> Result<()> {
        self.inner.retire_session(label)
    }
    fn purge_retired(&self) -> Result<Vec<String>> {
        self.inner.purge_retired()
    }
    fn clean_pending(&self) -> Result<Vec<String>> {
        self.inner.clean_pending()
    }
    fn lock(&self, what: &str, wait: std::time::Duration) -> Result<crate::target::TargetLock> {
        self.inner.lock(what, wait)
    }
    fn lock_holder(&self) -> Result<Option<String>> {
        self.inner.lock_holder()
    }
    fn scratch_dir(&self) -> Result<std::path::PathBuf> {
        self.inner.scratch_dir()
    }
    fn free_space(&self) -> Result<Option<crate::target::Space>> {
        self.inner.free_space()
    }
    fn local_path(&self, path: &str) -> Option<std::path::PathBuf> {
        self.inner.local_path(path)
    }
    fn bytes_written(&self) -> u64 {
        self.inner.bytes_written()
    }
}

#[test]
fn verify_is_not_fooled_by_a_log_shipped_whole_while_it_reads() {
    let w = world();
    let mut s = shipper(&w);
    put(&w, 3, 1);
    assert_eq!(s.round(w.log.durable_lsn()).unwrap().segments, 1);
    w.log.rollover().unwrap();
    let durable = w.log.durable_lsn();
    let racing = ShipsDuringRead {
        inner: w.target.clone(),
        on_first_read: std::sync::Mutex::new(Some(Box::new(move || {
            assert_eq!(s.round(durable).unwrap().logs, 1);
        }))),
    };
    assert_eq!(verify(&racing).unwrap(), Vec::<String>::new());
    assert!(racing.on_first_read.lock().unwrap().is_none(), "it raced");

    // Damage is still damage: a segment whose bytes are wrong, twice over.
    let w = world();
    let mut s = shipper(&w);
    put(&w, 3, 1);
    s.round(w.log.durable_lsn()).unwrap();
    let seq = w.log.position().sequence;
    let seg = list(w.target.as_ref()).unwrap().segments[&seq][0]
        .path
        .clone();
    let mut bytes = w.target.get(&seg).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    w.target.put(&seg, &bytes).unwrap();
    let problems = verify(w.target.as_ref()).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains(&seg), "{problems:?}");
}

#[test]
fn a_damaged_segment_is_shipped_again_by_the_next_shipper_and_the_chain_heals() {
    let w = world();
    let mut s = shipper(&w);
    for i in 0..3 {
        put(&w, 2, i * 10);
        s.round(w.log.durable_lsn()).unwrap();
    }
    let seq = w.log.position().sequence;
    let segs = list(w.target.as_ref()).unwrap().segments[&seq].clone();
    assert_eq!(segs.len(), 3);
    let file = w.target.local_path(&segs[1].path).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0x55;
    std::fs::write(&file, &bytes).unwrap();
    assert!(assemble(w.target.as_ref(), &segs).is_err());

    // A restarted server ships its open log again from the damaged segment
    // on; the segment after it, now covered, goes.
    let mut s = shipper(&w);
    put(&w, 1, 90);
    let r = s.round(w.log.durable_lsn()).unwrap();
    assert_eq!(r.segments, 1);
    let now = list(w.target.as_ref()).unwrap().segments[&seq].clone();
    assert_eq!(
        now.iter().map(|x| x.start).collect::<Vec<_>>(),
        vec![segs[0].start, segs[1].start],
        "the stale segment after the damaged one is removed"
    );
    let a = assemble(w.target.as_ref(), &now).unwrap();
    assert_eq!(a.records, 7);
    assert_eq!(lsns(a.file.path()), lsns(&w.cfg.log_path));
    assert!(verify(w.target.as_ref()).unwrap().is_empty());
}

#[test]
fn a_segment_damaged_while_the_log_is_open_is_shipped_again_on_request() {
    let w = world();
    let mut s = shipper(&w);
    for i in 0..3 {
        put(&w, 2, i * 10);
        s.round(w.log.durable_lsn()).unwrap();
    }
    let seq = w.log.position().sequence;
    let segs = list(w.target.as_ref()).unwrap().segments[&seq].clone();
    assert_eq!(segs.len(), 3);
    // The middle one torn, the newest cut short.
    let file = |o: &SegmentObject| w.target.local_path(&o.path).unwrap();
    let mut bytes = std::fs::read(file(&segs[1])).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    std::fs::write(file(&segs[1]), &bytes).unwrap();
    let newest = std::fs::read(file(&segs[2])).unwrap();
    std::fs::write(file(&segs[2]), &newest[..newest.len() / 2]).unwrap();
    assert!(assemble(w.target.as_ref(), &segs).is_err());

    // Without a request the running shipper does not read back.
    put(&w, 1, 90);
    let r = s.round(w.log.durable_lsn()).unwrap();
    assert_eq!((r.segments, r.repaired), (1, None));

    let req = repair::RepairRequest {
        sequence: seq,
        offset: segs[0].start,
        reason: "torn".into(),
        server: "standby".into(),
        written_at: 0,
    };
    assert!(repair::request(w.target.as_ref(), &req).unwrap());
    assert!(
        !repair::request(w.target.as_ref(), &req).unwrap(),
        "one request at a time"
    );
    put(&w, 1, 91);
    let r = s.round(w.log.durable_lsn()).unwrap();
    let from = segs[1].start;
    assert_eq!(r.repaired, Some((seq, from)));
    assert_eq!(r.segments, 1);
    assert!(
        repair::read(w.target.as_ref()).unwrap().is_none(),
        "handled"
    );
    let listing = list(w.target.as_ref()).unwrap();
    let now = &listing.segments[&seq];
    assert_eq!(
        now.iter().map(|s| s.start).collect::<Vec<_>>(),
        [0, from],
        "the damaged and later segments are replaced by one from the break"
    );
    let a = assemble(w.target.as_ref(), now).unwrap();
    assert_eq!(lsns(a.file.path()), lsns(&w.cfg.log_path), "every record");
    assert!(verify(w.target.as_ref()).unwrap().is_empty());

    // A request with nothing damaged only goes away.
    repair::request(w.target.as_ref(), &req).unwrap();
    let r = s.round(w.log.durable_lsn()).unwrap();
    assert_eq!((r.repaired, r.segments), (None, 0));
    assert!(repair::read(w.target.as_ref()).unwrap().is_none());
}
