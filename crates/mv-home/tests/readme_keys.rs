//! README documents every local configuration key: its table of keys is the one
//! `KNOWN_KEYS` (where the tools read their defaults) gives, row for row, so a
//! key added, renamed or re-described in the code fails here until README says
//! the same. On a mismatch the expected table is printed to paste in.

use mv_home::localconfig::KNOWN_KEYS;

const BEGIN: &str =
    "<!-- localconfig keys: begin (checked by crates/mv-home/tests/readme_keys.rs) -->";
const END: &str = "<!-- localconfig keys: end -->";

fn expected_table() -> String {
    let mut t = String::from("| key | default | meaning |\n|---|---|---|\n");
    for k in KNOWN_KEYS {
        let default = if k.default.is_empty() {
            "(empty)".to_string()
        } else {
            format!("`{}`", k.default)
        };
        let secret = if k.secret {
            " (secret: shown with `-s`)"
        } else {
            ""
        };
        t.push_str(&format!(
            "| `{}` | {default} | {}{secret} |\n",
            k.name,
            k.description.replace('|', "\\|")
        ));
    }
    t
}

#[test]
fn readme_lists_every_localconfig_key_as_the_code_defines_it() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md at the workspace root");
    let start = readme
        .find(BEGIN)
        .expect("the localconfig keys table in README")
        + BEGIN.len();
    let end = readme[start..].find(END).expect("its end marker") + start;
    let table = readme[start..end].trim_matches('\n');
    let expected = expected_table();
    assert_eq!(
        table,
        expected.trim_end(),
        "README's localconfig table differs from KNOWN_KEYS; expected:\n{expected}"
    );
    // The environment variables the tools read are documented too.
    for var in ["MAILVAULT_HOME", "MAILVAULT_LOG"] {
        assert!(readme.contains(&format!("`{var}`")), "{var} in README");
    }
}
