//! Mail arriving while a full runs, then the disaster right after it.

use super::*;

/// Mail keeps arriving while a full runs, and the home is lost right after it,
/// before any incremental: the full holds the redo log written during its run,
/// so on the home rebuilt from the target alone a restore to any moment inside
/// the run gives exactly the messages acknowledged by then, from this full or
/// from the one before.
#[test]
fn a_disaster_right_after_a_full_keeps_the_points_inside_its_run() {
    // Accounts with mail, so that the full takes a while (a snapshot each).
    const BULK: usize = 60;
    let env = Env::new();
    let t = env.root.join("target");
    let t = t.to_str().unwrap();
    let lmtp = free_port();
    for (key, port) in [
        ("admin_bind_port", free_port()),
        ("lmtp_bind_port", lmtp),
        ("imap_bind_port", free_port()),
        ("imaps_bind_port", free_port()),
    ] {
        let o = env.run(
            Path::new(BIN),
            &["localconfig", "-e", &format!("{key}={port}")],
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
    let a = "a@dr6.test";
    let bulk: Vec<String> = (0..BULK).map(|i| format!("b{i:03}@dr6.test")).collect();
    let batch = env.root.join("accounts.zmp");
    let mut lines = format!("cd dr6.test\nca {a} secret\n");
    for b in &bulk {
        lines.push_str(&format!("ca {b} secret\n"));
    }
    std::fs::write(&batch, lines).unwrap();
    env.ok("zmprov", &["-f", batch.to_str().unwrap()]);
    env.ok("zmprov", &["mcf", "zimbraBackupTarget", t]);
    env.ok("zmcontrol", &["start"]);
    let outcome = std::panic::catch_unwind(|| {
        lmtp_deliver(lmtp, &[a], "a0", "before the fulls");
        for (i, group) in bulk.chunks(40).enumerate() {
            let rcpts: Vec<&str> = group.iter().map(|s| s.as_str()).collect();
            for j in 0..3 {
                lmtp_deliver(lmtp, &rcpts, &format!("bulk{i}-{j}"), &"x".repeat(4000));
            }
        }
        let f1 = env.ok("zmbackup", &["-f", "-a", "all", "-sync", "-t", t]);
        let f1 = f1.stdout.trim().to_string();
        // Deliveries to `a` until the second full has finished: when each began
        // and when it was acknowledged.
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (acked, f2) = std::thread::scope(|s| {
            let deliveries = s.spawn(|| {
                let mut acked: Vec<(i64, i64)> = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let began = now_ms();
                    lmtp_deliver(lmtp, &[a], &format!("d{:03}", acked.len()), "during");
                    acked.push((began, now_ms()));
                    // A pause, so that there is a moment between two deliveries.
                    std::thread::sleep(std::time::Duration::from_millis(8));
                }
                acked
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
            let f2 = env.zm("zmbackup", &["-f", "-a", "all", "-sync", "-t", t]);
            std::thread::sleep(std::time::Duration::from_millis(100));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            (deliveries.join().unwrap(), f2)
        });
        assert_eq!(f2.code, 0, "{}{}", f2.stdout, f2.stderr);
        (f1, f2.stdout.trim().to_string(), acked)
    });
    env.ok("zmcontrol", &["stop"]);
    let (f1, f2, acked) = match outcome {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e),
    };
    assert!(f2.starts_with("full-"), "{f2}");
    let q: serde_json::Value = serde_json::from_str(
        &env.ok("zmbackupquery", &["--json", "-lb", &f2, "-t", t])
            .stdout,
    )
    .unwrap();
    let started = q["sessions"][0]["started"].as_i64().unwrap();
    let ended = q["sessions"][0]["ended"].as_i64().unwrap();
    // The full covers its run up to its last rollover, which closed the newest
    // log it holds; the session's end comes after that (the copy, the commit).
    let xml = std::fs::read_to_string(
        std::path::Path::new(t)
            .join("sessions")
            .join(&f2)
            .join("session.xml"),
    )
    .unwrap();
    let covered = xml
        .split("closed=\"")
        .skip(1)
        .filter_map(|r| r.split('"').next()?.parse::<i64>().ok())
        .max()
        .expect("the full holds the log written during its run");
    assert!(
        covered > started && covered <= ended,
        "{started} {covered} {ended}"
    );
    // Moments inside the run, each between two deliveries (k acknowledged,
    // k + 1 not begun).
    let inside: Vec<(usize, i64)> = acked
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0].1 > started && w[1].0 < covered && w[1].0 - w[0].1 >= 4)
        .map(|(k, w)| (k, (w[0].1 + w[1].0) / 2))
        .collect();
    assert!(
        inside.len() >= 2,
        "only {} moments between deliveries inside the full's run of {} ms",
        inside.len(),
        ended - started
    );
    let expect = |k: usize| -> Vec<String> {
        std::iter::once("a0".to_string())
            .chain((0..=k).map(|i| format!("d{i:03}")))
            .collect()
    };

    // The disk dies right after the full; the README's recovery, from the
    // target alone.
    std::fs::remove_dir_all(&env.home).unwrap();
    env.ok("zmrestoreldap", &["-t", t]);
    let o = env.ok("zmrestoreoffline", &["-a", "all", "-t", t]);
    no_jump("zmrestoreoffline", &o);
    // At least everything acknowledged before the last moment inside the run.
    let (last_k, _) = *inside.last().unwrap();
    let now = env.subjects(a);
    assert!(now.len() >= last_k + 2, "{now:?}");
    assert_eq!(now, expect(now.len() - 2));

    // The first moment, the middle one and the last one, each into a new account;
    // the last one also from the full before, rolled forward through the run.
    let picks = [inside[0], inside[inside.len() / 2], *inside.last().unwrap()];
    for (i, (k, at)) in picks.iter().enumerate() {
        let mut runs: Vec<(String, Vec<&str>)> = vec![(format!("p{i}_"), vec![])];
        if i == picks.len() - 1 {
            runs.push((format!("q{i}_"), vec!["-lb", &f1]));
        }
        for (prefix, extra) in runs {
            let when = restore_time(*at);
            let mut args = vec![
                "-a",
                a,
                "-restoreToTime",
                &when,
                "-ca",
                "-pre",
                &prefix,
                "-t",
                t,
            ];
            args.extend(extra.iter().copied());
            let o = env.ok("zmrestore", &args);
            for bad in ["warning", "gap", "skipped"] {
                assert!(
                    !o.stderr.contains(bad) && !o.stdout.contains(bad),
                    "{}{}",
                    o.stdout,
                    o.stderr
                );
            }
            assert_eq!(
                env.subjects(&format!("{prefix}{a}")),
                expect(*k),
                "restored to {when} ({prefix}): {}",
                o.stdout
            );
        }
    }
    env.verify(t);
}
