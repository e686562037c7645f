//! Contacts and appointments of each account, as vCard and iCalendar files.

use super::{Corpus, EPOCH_MS, YEAR_MS, cap};
use crate::rng::SplitMix64;
use crate::words;

impl Corpus {
    /// All contacts of account `a` as one vCard 3.0 file.
    pub fn contacts_vcf(&self, a: usize) -> String {
        let mut rng = SplitMix64::stream(self.seed, 13, a as u64);
        let mut out = String::new();
        for k in 0..self.accounts[a].contacts {
            let first = rng.pick_str(words::FIRST);
            let last = rng.pick_str(words::LAST);
            let email = if rng.chance(400) {
                self.accounts[rng.below(self.accounts.len() as u64) as usize]
                    .email
                    .clone()
            } else {
                format!("{first}.{last}@{}", rng.pick_str(words::EXTERNAL_DOMAINS))
            };
            let (fc, lc) = (cap(first), cap(last));
            out.push_str("BEGIN:VCARD\r\nVERSION:3.0\r\n");
            out.push_str(&format!("UID:mvb-{:x}-{a}-{k}\r\n", self.seed));
            out.push_str(&format!("FN:{fc} {lc}\r\nN:{lc};{fc};;;\r\n"));
            out.push_str(&format!("EMAIL;TYPE=INTERNET:{email}\r\n"));
            if rng.chance(600) {
                out.push_str(&format!(
                    "TEL;TYPE=CELL:+1 555 {:03} {:04}\r\n",
                    rng.below(1000),
                    rng.below(10000)
                ));
            }
            if rng.chance(500) {
                out.push_str(&format!("ORG:{}\r\n", rng.pick_str(words::ORGS)));
            }
            if rng.chance(200) {
                out.push_str(&format!(
                    "ADR;TYPE=WORK:;;{} Main Street;{};;;\r\n",
                    rng.range(1, 999),
                    rng.pick_str(words::CITIES)
                ));
            }
            out.push_str("END:VCARD\r\n");
        }
        out
    }

    /// All appointments of account `a` as one iCalendar file.
    pub fn calendar_ics(&self, a: usize) -> String {
        let mut rng = SplitMix64::stream(self.seed, 14, a as u64);
        let mut out = String::from(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//mailvault//mailvault-bench corpus//EN\r\n",
        );
        for k in 0..self.accounts[a].appointments {
            let start = EPOCH_MS + rng.below((YEAR_MS / 3_600_000) as u64) as i64 * 3_600_000;
            let minutes = *rng.pick(&[30i64, 60, 60, 90, 120]);
            let end = start + minutes * 60_000;
            let summary = format!(
                "{} {}",
                cap(rng.pick_str(words::WORDS)),
                rng.pick_str(words::WORDS)
            );
            out.push_str("BEGIN:VEVENT\r\n");
            out.push_str(&format!(
                "UID:mvb-{:x}-{a}-evt{k}@corpus.example\r\n",
                self.seed
            ));
            out.push_str(&format!("DTSTAMP:{}\r\n", ical_time(EPOCH_MS)));
            out.push_str(&format!(
                "DTSTART:{}\r\nDTEND:{}\r\n",
                ical_time(start),
                ical_time(end)
            ));
            out.push_str(&format!("SUMMARY:{summary}\r\n"));
            if rng.chance(500) {
                out.push_str(&format!(
                    "LOCATION:{} office\r\n",
                    rng.pick_str(words::CITIES)
                ));
            }
            if rng.chance(200) {
                out.push_str(&format!("RRULE:FREQ=WEEKLY;COUNT={}\r\n", rng.range(2, 12)));
            }
            out.push_str(&format!(
                "ORGANIZER;CN={}:mailto:{}\r\n",
                self.accounts[a].display_name, self.accounts[a].email
            ));
            for _ in 0..rng.range(0, 4) {
                let who = &self.accounts[rng.below(self.accounts.len() as u64) as usize];
                out.push_str(&format!(
                    "ATTENDEE;CN={};PARTSTAT=NEEDS-ACTION:mailto:{}\r\n",
                    who.display_name, who.email
                ));
            }
            out.push_str("END:VEVENT\r\n");
        }
        out.push_str("END:VCALENDAR\r\n");
        out
    }
}

fn ical_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("corpus dates are in range")
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}
