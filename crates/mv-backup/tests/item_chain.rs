//! A search over every session reads one rebuilt mailbox per chain of a full
//! and the incrementals after it, carried from one point to the next by
//! replaying only each incremental's records. Whatever it finds at a point must
//! be what that point rebuilt on its own (`-lb LABEL`) finds: the same items,
//! and each hit described (folder, flags) as the newest point holding it has it.
//! Deliveries, moves, flag changes and deletions happen between the sessions,
//! and a second full starts a second chain; then the same for random histories
//! (8 cases by default; `MV_ITEMS_PROPTEST_CASES=N` for more).

mod common;

use common::Fx;
use mv_backup::items::{AccountSearch, BackupHit, SearchOptions, point_of_label};
use mv_backup::{Catalog, Label, RestoreRun, SessionKind};
use mv_redo::ops::{flags, folders};
use mv_store::FlagChange;
use mv_types::ItemId;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const USER: &str = "user@d.test";

fn raw(n: usize) -> Vec<u8> {
    format!(
        "From: s{n}@d.test\r\nTo: {USER}\r\nSubject: note {n} harbour\r\n\
         Message-ID: <c{n}@d.test>\r\nDate: Thu, 05 Jun 2014 01:00:{:02} -0700\r\n\r\n\
         body {n} lighthouse\r\n",
        n % 60
    )
    .into_bytes()
}

fn search(fx: &Fx, q: &str, point: Option<Label>) -> AccountSearch {
    let mut run = RestoreRun::new();
    let mut streamed = Vec::new();
    let s = mv_backup::items::search_account_streamed(
        &mut run,
        &fx.source(),
        fx.target().as_ref(),
        USER,
        q,
        &SearchOptions {
            point: point.map(point_of_label),
            ..Default::default()
        },
        &mut |h: &BackupHit| streamed.push((h.digest.clone(), h.item_id)),
    )
    .unwrap();
    // Each hit is handed over once, as soon as it is found.
    let mut merged: Vec<(String, u32)> = s
        .hits
        .iter()
        .map(|h| (h.digest.clone(), h.item_id))
        .collect();
    merged.sort();
    streamed.sort();
    assert_eq!(streamed, merged, "{q}: streamed hits");
    s
}

type Described = (String, u32, String, u32);

fn described(h: &BackupHit) -> Described {
    (h.digest.clone(), h.item_id, h.folder.clone(), h.flags)
}

/// Searches every session for each query and checks each point's hits against
/// that point rebuilt alone (`-lb`). Returns how many sessions there are.
fn compare(fx: &Fx, queries: &[&str]) -> usize {
    let labels: Vec<Label> = Catalog::load(fx.target().as_ref())
        .unwrap()
        .sessions()
        .map(|s| s.label)
        .collect();
    for q in queries {
        let all = search(fx, q, None);
        assert_eq!(all.points, labels.len(), "{q}: {:?}", all.notes);
        // Point by point: what each rebuilt alone finds.
        let mut alone: BTreeMap<String, BTreeSet<Described>> = BTreeMap::new();
        for l in &labels {
            let one = search(fx, q, Some(*l));
            alone.insert(l.to_string(), one.hits.iter().map(described).collect());
        }
        for l in &labels {
            let l = l.to_string();
            let found: BTreeSet<(String, u32)> = all
                .hits
                .iter()
                .filter(|h| h.labels.contains(&l))
                .map(|h| (h.digest.clone(), h.item_id))
                .collect();
            let want: BTreeSet<(String, u32)> =
                alone[&l].iter().map(|d| (d.0.clone(), d.1)).collect();
            assert_eq!(found, want, "{q} at {l}");
        }
        for h in &all.hits {
            let newest = h.labels.last().unwrap();
            assert!(
                alone[newest].contains(&described(h)),
                "{q}: {h:?} not as {newest} has it: {:?}",
                alone[newest]
            );
            // Labels oldest first.
            let mut sorted = h.labels.clone();
            sorted.sort_by_key(|l| labels.iter().position(|x| x.to_string() == *l));
            assert_eq!(sorted, h.labels);
        }
    }
    labels.len()
}

#[test]
fn carried_points_find_what_each_point_rebuilt_alone_finds() {
    let fx = Fx::new();
    let a = fx.account(USER);
    let m = a.mailbox_id;
    let projects = fx
        .store
        .create_folder(m, folders::ROOT, "Projects", "message")
        .unwrap();
    let deliver = |fx: &Fx, n: usize| -> ItemId {
        fx.store
            .deliver(&raw(n), &[m], &Default::default())
            .unwrap()[0]
    };
    let ids: Vec<ItemId> = (0..6).map(|n| deliver(&fx, n)).collect();
    fx.backup(SessionKind::Full);
    // Incremental 1: new messages, one moved, one flagged, one deleted.
    let i6 = deliver(&fx, 6);
    deliver(&fx, 7);
    fx.store.move_items(m, &[ids[1]], projects).unwrap();
    fx.store
        .set_flags(m, &[ids[2]], FlagChange::Add(flags::FLAGGED))
        .unwrap();
    fx.store.delete_items(m, &[ids[3]]).unwrap();
    fx.backup(SessionKind::Incremental);
    // Incremental 2: the moved one moves back, a new one is deleted again.
    fx.store.move_items(m, &[ids[1]], folders::INBOX).unwrap();
    fx.store.delete_items(m, &[i6]).unwrap();
    deliver(&fx, 8);
    fx.store
        .set_flags(m, &[ids[2]], FlagChange::Remove(flags::FLAGGED))
        .unwrap();
    fx.backup(SessionKind::Incremental);
    // Incremental 3: nothing of the account's messages changes but one flag.
    fx.store
        .set_flags(m, &[ids[4]], FlagChange::Add(flags::FLAGGED))
        .unwrap();
    fx.backup(SessionKind::Incremental);
    // A second chain.
    fx.store.delete_items(m, &[ids[0]]).unwrap();
    fx.backup(SessionKind::Full);
    deliver(&fx, 9);
    fx.store.move_items(m, &[ids[5]], projects).unwrap();
    fx.backup(SessionKind::Incremental);

    let labels = compare(
        &fx,
        &[
            "harbour",
            "in:/Projects",
            "is:flagged",
            "lighthouse -in:/Projects",
        ],
    );
    assert_eq!(labels, 6);
    // Something changed between the points, or the comparison proves little.
    let flagged = search(&fx, "is:flagged", None);
    assert_eq!(flagged.hits.len(), 2, "{flagged:?}");
}

#[derive(Debug, Clone)]
enum Step {
    Deliver,
    /// The `k`th message delivered so far (modulo), if any.
    Move(usize, bool),
    Flag(usize, bool),
    Delete(usize),
    Full,
    Incremental,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => Just(Step::Deliver),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(k, p)| Step::Move(k, p)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(k, f)| Step::Flag(k, f)),
        2 => any::<usize>().prop_map(Step::Delete),
        1 => Just(Step::Full),
        3 => Just(Step::Incremental),
    ]
}

/// A random history of one mailbox with a full first and fulls and
/// incrementals at random places.
fn random_case(steps: &[Step]) {
    let fx = Fx::new();
    let a = fx.account(USER);
    let m = a.mailbox_id;
    let projects = fx
        .store
        .create_folder(m, folders::ROOT, "Projects", "message")
        .unwrap();
    let mut live: Vec<ItemId> = Vec::new();
    let mut n = 0;
    let mut full = false;
    for s in std::iter::once(&Step::Deliver).chain(steps) {
        match s {
            Step::Deliver => {
                live.push(
                    fx.store
                        .deliver(&raw(n), &[m], &Default::default())
                        .unwrap()[0],
                );
                n += 1;
            }
            Step::Move(k, p) if !live.is_empty() => {
                let to = if *p { projects } else { folders::INBOX };
                let id = live[k % live.len()];
                fx.store.move_items(m, &[id], to).unwrap();
            }
            Step::Flag(k, add) if !live.is_empty() => {
                let id = live[k % live.len()];
                let change = if *add {
                    FlagChange::Add(flags::FLAGGED)
                } else {
                    FlagChange::Remove(flags::FLAGGED)
                };
                fx.store.set_flags(m, &[id], change).unwrap();
            }
            Step::Delete(k) if !live.is_empty() => {
                let id = live.remove(k % live.len());
                fx.store.delete_items(m, &[id]).unwrap();
            }
            Step::Full => {
                fx.backup(SessionKind::Full);
                full = true;
            }
            Step::Incremental if full => {
                fx.backup(SessionKind::Incremental);
            }
            _ => {}
        }
    }
    if !full {
        fx.backup(SessionKind::Full);
    }
    fx.backup(SessionKind::Incremental);
    compare(&fx, &["harbour", "in:/Projects", "is:flagged"]);
}

fn cases() -> u32 {
    std::env::var("MV_ITEMS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 32, ..ProptestConfig::default() })]

    /// Random histories: every point read along its chain finds what it finds
    /// rebuilt alone.
    #[test]
    fn carried_points_match_alone_built_points_in_random_histories(
        steps in proptest::collection::vec(step(), 3..16),
    ) {
        random_case(&steps);
    }
}
