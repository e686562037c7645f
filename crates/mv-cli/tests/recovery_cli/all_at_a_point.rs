//! `-a all` to an earlier point restores the accounts that existed then, under
//! the addresses they had then.

use super::*;

fn has_account(env: &Env, email: &str) -> bool {
    env.zm("zmprov", &["ga", email]).code == 0
}

/// History after the full: gina renamed (before the point), then the point,
/// then dave renamed, erin deleted, frank created (with a full of its own),
/// gina renamed again. A restore of `all` to the point brings back exactly the
/// accounts of that moment: gina under the name she had then, erin although she
/// was deleted since (in place her entry comes back), frank listed as not yet
/// there; exit 0. Restoring `all` to the latest point instead skips erin as
/// deleted before it.
#[test]
fn a_restore_of_all_accounts_to_an_earlier_point_restores_who_existed_then() {
    let env = Env::new();
    let t = env.root.join("target");
    let t = t.to_str().unwrap();
    let (carol, dave, dave2, erin, frank) = (
        "carol@ap.test",
        "dave@ap.test",
        "dave2@ap.test",
        "erin@ap.test",
        "frank@ap.test",
    );
    let (gina, gina2, gina3) = ("gina@ap.test", "gina2@ap.test", "gina3@ap.test");
    env.ok("zmprov", &["cd", "ap.test"]);
    for u in [carol, dave, erin, gina] {
        env.ok("zmprov", &["ca", u, "secret"]);
        env.deliver(u, &format!("{}-0", &u[..4]));
    }
    env.ok("zmprov", &["mcf", "zimbraBackupTarget", t]);
    env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
    env.ok("zmprov", &["ra", gina, gina2]);
    env.deliver(gina2, "gina-1");
    let point = moment();
    env.deliver(dave, "dave-1");
    env.ok("zmprov", &["ra", dave, dave2]);
    env.ok("zmprov", &["da", erin]);
    env.ok("zmprov", &["ra", gina2, gina3]);
    env.ok("zmprov", &["ca", frank, "secret"]);
    env.deliver(frank, "fran-0");
    env.ok("zmbackup", &["-f", "-a", frank, "-sync"]);
    env.incremental(t);

    // As new accounts: the names of the point, their contents of the point.
    let o = env.ok(
        "zmrestore",
        &["-a", "all", "-restoreToTime", &point, "-ca", "-pre", "pit_"],
    );
    let out = format!("{}{}", o.stdout, o.stderr);
    assert_eq!(env.subjects("pit_carol@ap.test"), ["caro-0"], "{out}");
    assert_eq!(env.subjects("pit_dave@ap.test"), ["dave-0"], "{out}");
    assert_eq!(env.subjects("pit_erin@ap.test"), ["erin-0"], "{out}");
    assert_eq!(
        env.subjects("pit_gina2@ap.test"),
        ["gina-0", "gina-1"],
        "{out}"
    );
    for absent in ["pit_dave2@ap.test", "pit_gina@ap.test", "pit_gina3@ap.test"] {
        assert!(!has_account(&env, absent), "{absent} was made: {out}");
    }
    assert!(!has_account(&env, "pit_frank@ap.test"), "{out}");
    assert!(
        o.stdout.contains(&format!(
            "{frank}: skipped, no full backup holds it at or before the restore point"
        )),
        "{out}"
    );

    // In place: the live accounts keep their names, erin's entry comes back,
    // frank is left as he is.
    let o = env.ok("zmrestore", &["-a", "all", "-restoreToTime", &point]);
    let out = format!("{}{}", o.stdout, o.stderr);
    assert_eq!(env.subjects(carol), ["caro-0"], "{out}");
    assert_eq!(env.subjects(dave2), ["dave-0"], "{out}");
    assert_eq!(env.subjects(gina3), ["gina-0", "gina-1"], "{out}");
    assert!(has_account(&env, erin), "{out}");
    assert_eq!(env.subjects(erin), ["erin-0"], "{out}");
    assert_eq!(env.subjects(frank), ["fran-0"], "{out}");
    assert!(
        o.stdout
            .contains(&format!("{dave2} was {dave} at the restore point")),
        "{out}"
    );
    env.incremental(t);
    env.verify(t);

    // To the latest point: erin, deleted and brought back by the restore above,
    // is an account again and is restored; delete her once more and she is
    // skipped as deleted before the point.
    env.ok("zmprov", &["da", erin]);
    let o = env.ok("zmrestore", &["-a", "all", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let skipped: Vec<&str> = v["skipped_accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        skipped
            .iter()
            .any(|s| s.starts_with(&format!("{erin}: skipped, deleted "))),
        "{v}"
    );
    assert!(!has_account(&env, erin), "{v}");
    assert!(v["failures"].as_array().unwrap().is_empty(), "{v}");
}
