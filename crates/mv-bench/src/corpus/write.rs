//! Writing a corpus to disk: `.eml` files, each account's contacts and
//! calendar, and `manifest.json`.

use super::{Account, Corpus, DOMAIN, FORMAT, MessagePlan, Scale};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct WrittenMessage {
    pub file: String,
    pub size: u64,
    pub blake3: String,
    #[serde(flatten)]
    pub plan: MessagePlan,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub accounts: usize,
    pub messages: usize,
    pub bytes: u64,
    /// Copies once delivered and filed (envelope recipients + senders' Sent copies).
    pub placements: usize,
    pub contacts: usize,
    pub appointments: usize,
}

#[derive(Debug, Serialize)]
pub struct ManifestAccount {
    #[serde(flatten)]
    pub account: Account,
    pub contacts_file: String,
    pub calendar_file: String,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub format: u32,
    pub generator: String,
    pub seed: u64,
    pub scale: Scale,
    pub domain: String,
    pub totals: Totals,
    pub accounts: Vec<ManifestAccount>,
    pub messages: Vec<WrittenMessage>,
}

/// Relative path of message `i` in a written corpus.
pub fn message_file(i: usize) -> String {
    format!("messages/{:04}/{i:07}.eml", i / 1000)
}

/// Writes the corpus under `out`: `messages/NNNN/NNNNNNN.eml`,
/// `accounts/<email>/{contacts.vcf,calendar.ics}` and `manifest.json`. Uses all
/// cores; returns the manifest.
pub fn write_corpus(corpus: &Corpus, out: &Path) -> anyhow::Result<Manifest> {
    use anyhow::Context;
    use std::sync::atomic::{AtomicUsize, Ordering};
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let n = corpus.messages.len();
    for d in 0..n.div_ceil(1000) {
        std::fs::create_dir_all(out.join(format!("messages/{d:04}")))?;
    }
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut results: Vec<(usize, u64, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<Vec<(usize, u64, String)>> {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return Ok(mine);
                        }
                        let bytes = corpus.message(i);
                        let path = out.join(message_file(i));
                        std::fs::write(&path, &bytes)
                            .with_context(|| format!("writing {}", path.display()))?;
                        mine.push((
                            i,
                            bytes.len() as u64,
                            blake3::hash(&bytes).to_hex().to_string(),
                        ));
                    }
                })
            })
            .collect();
        let mut all = Vec::with_capacity(n);
        for h in handles {
            all.extend(h.join().expect("corpus writer panicked")?);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    results.sort_by_key(|r| r.0);

    let mut accounts = Vec::new();
    for (a, acc) in corpus.accounts.iter().enumerate() {
        let dir = format!("accounts/{}", acc.email);
        std::fs::create_dir_all(out.join(&dir))?;
        let contacts_file = format!("{dir}/contacts.vcf");
        let calendar_file = format!("{dir}/calendar.ics");
        std::fs::write(out.join(&contacts_file), corpus.contacts_vcf(a))?;
        std::fs::write(out.join(&calendar_file), corpus.calendar_ics(a))?;
        accounts.push(ManifestAccount {
            account: acc.clone(),
            contacts_file,
            calendar_file,
        });
    }
    let messages: Vec<WrittenMessage> = results
        .into_iter()
        .map(|(i, size, blake3)| WrittenMessage {
            file: message_file(i),
            size,
            blake3,
            plan: corpus.messages[i].clone(),
        })
        .collect();
    let manifest = Manifest {
        format: FORMAT,
        generator: format!("mailvault-bench {}", env!("CARGO_PKG_VERSION")),
        seed: corpus.seed,
        scale: corpus.scale,
        domain: DOMAIN.into(),
        totals: Totals {
            accounts: corpus.accounts.len(),
            messages: n,
            bytes: messages.iter().map(|m| m.size).sum(),
            placements: corpus.messages.iter().map(|m| m.placements.len()).sum(),
            contacts: corpus.accounts.iter().map(|a| a.contacts).sum(),
            appointments: corpus.accounts.iter().map(|a| a.appointments).sum(),
        },
        accounts,
        messages,
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    std::fs::write(out.join("manifest.json"), json)?;
    Ok(manifest)
}
