//! The blob pool in memory: every blob of a target, found by digest, and read
//! back with one ranged read.

use super::{Compression, PackIndex};
use crate::error::{BackupError, Result};
use crate::target::{Target, pack_path};
use mv_types::Digest;
use std::collections::HashMap;

/// Where one blob is, in memory: 16 bytes (48 with its digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    pack: u32,
    offset: u32,
    len: u32,
    method: u8,
}

/// A pack of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackInfo {
    pub id: String,
    pub zip_size: u64,
    pub zip_blake3: [u8; 32],
    pub entries: u32,
}

/// Something wrong with the pool noticed while loading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolProblem {
    pub path: String,
    pub message: String,
}

/// Where a blob is, for reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: String,
    pub path: String,
    pub offset: u64,
    pub stored_len: u64,
    pub compression: Compression,
}

/// Every blob of a target: digest → (pack, offset, length, method).
#[derive(Debug, Default)]
pub struct Pool {
    packs: Vec<PackInfo>,
    sorted: Vec<(Digest, Loc)>,
    /// Where in `sorted` the digests with each value of their first
    /// `bucket_bits` bits start ([`Pool::index_buckets`]).
    buckets: Vec<u32>,
    bucket_bits: u32,
    added: HashMap<Digest, Loc>,
    /// Damaged or dangling indexes (their blobs count as absent).
    pub problems: Vec<PoolProblem>,
    /// Pack files without an index (a crash between the two; removable).
    pub orphans: Vec<String>,
}

impl Pool {
    /// Loads every pack index of the target. Damaged indexes, indexes without a
    /// pack and packs whose size disagrees with their index are listed in
    /// `problems` and their blobs treated as absent (a new backup writes them again).
    pub fn load(target: &dyn Target) -> Result<Pool> {
        let objects = target.list("packs/")?;
        let sizes: HashMap<&str, u64> = objects.iter().map(|o| (o.path.as_str(), o.size)).collect();
        let mut pool = Pool::default();
        for o in &objects {
            if let Some(stem) = o.path.strip_suffix(".zip") {
                if !sizes.contains_key(format!("{stem}.idx").as_str()) {
                    pool.orphans.push(o.path.clone());
                }
                continue;
            }
            let Some(stem) = o.path.strip_suffix(".idx") else {
                continue;
            };
            let id = stem.rsplit('/').next().unwrap_or(stem).to_string();
            let index = match target
                .get(&o.path)
                .and_then(|b| PackIndex::decode(&o.path, &b))
            {
                Ok(i) => i,
                Err(e) => {
                    pool.problems.push(PoolProblem {
                        path: o.path.clone(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let zip = format!("{stem}.zip");
            match sizes.get(zip.as_str()) {
                None => {
                    pool.problems.push(PoolProblem {
                        path: zip,
                        message: format!(
                            "pack file is missing ({} blobs listed by its index)",
                            index.entries.len()
                        ),
                    });
                    continue;
                }
                Some(&size) if size != index.zip_size => {
                    pool.problems.push(PoolProblem {
                        path: zip,
                        message: format!(
                            "pack file is {size} bytes, its index says {} (truncated or damaged)",
                            index.zip_size
                        ),
                    });
                    continue;
                }
                Some(_) => {}
            }
            pool.insert_pack(id, &index, false);
        }
        pool.sorted.sort_unstable_by_key(|(d, _)| *d);
        pool.sorted.dedup_by_key(|(d, _)| *d);
        pool.sorted.shrink_to_fit();
        pool.index_buckets();
        Ok(pool)
    }

    /// Digests are uniformly distributed, so their first bits split `sorted` into
    /// runs of about one record each. A lookup reads the run's bounds and the
    /// record or two in it instead of binary-searching the whole vector: an
    /// unchanged full looks up every blob of every account, and the cache misses
    /// of 16 probes each took a tenth of its time.
    fn index_buckets(&mut self) {
        let n = self.sorted.len();
        // At most one bucket per record: 4 bytes per blob at most.
        self.bucket_bits = n.checked_ilog2().unwrap_or(0);
        let buckets = 1usize << self.bucket_bits;
        self.buckets = Vec::with_capacity(buckets + 1);
        let mut i = 0;
        for b in 0..buckets {
            while i < n && Self::bucket_of(&self.sorted[i].0, self.bucket_bits) < b {
                i += 1;
            }
            self.buckets.push(i as u32);
        }
        self.buckets.push(n as u32);
    }

    fn bucket_of(d: &Digest, bits: u32) -> usize {
        let head = u64::from_be_bytes(d.0[..8].try_into().expect("8 bytes"));
        head.checked_shr(64 - bits).unwrap_or(0) as usize
    }

    fn insert_pack(&mut self, id: String, index: &PackIndex, into_added: bool) {
        let n = self.packs.len() as u32;
        self.packs.push(PackInfo {
            id,
            zip_size: index.zip_size,
            zip_blake3: index.zip_blake3,
            entries: index.entries.len() as u32,
        });
        for e in &index.entries {
            let loc = Loc {
                pack: n,
                offset: e.offset.min(u32::MAX as u64) as u32,
                len: e.stored_len.min(u32::MAX as u64) as u32,
                method: e.compression.code().min(255) as u8,
            };
            if into_added {
                self.added.entry(e.digest).or_insert(loc);
            } else {
                self.sorted.push((e.digest, loc));
            }
        }
    }

    /// Records a pack sealed by this process.
    pub fn add_sealed(&mut self, id: String, index: &PackIndex) {
        self.insert_pack(id, index, true);
    }

    fn loc(&self, d: &Digest) -> Option<Loc> {
        let b = Self::bucket_of(d, self.bucket_bits);
        if let (Some(&start), Some(&end)) = (self.buckets.get(b), self.buckets.get(b + 1)) {
            let run = &self.sorted[start as usize..end as usize];
            if let Ok(i) = run.binary_search_by_key(d, |(k, _)| *k) {
                return Some(run[i].1);
            }
        }
        self.added.get(d).copied()
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.loc(d).is_some()
    }

    /// Number of distinct blobs.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    pub fn locate(&self, d: &Digest) -> Option<BlobLocation> {
        let loc = self.loc(d)?;
        let pack = &self.packs[loc.pack as usize];
        Some(BlobLocation {
            pack: pack.id.clone(),
            path: pack_path(&pack.id, "zip"),
            offset: loc.offset as u64,
            stored_len: loc.len as u64,
            compression: Compression::from_code(loc.method as u16).unwrap_or(Compression::Stored),
        })
    }

    /// Reads a blob and checks it against its digest.
    pub fn read(&self, target: &dyn Target, d: &Digest) -> Result<Vec<u8>> {
        read_at(target, &self.find(d)?, d)
    }

    /// Where a blob is; an error saying why when no pack of the pool holds it.
    pub fn find(&self, d: &Digest) -> Result<BlobLocation> {
        self.locate(d).ok_or_else(|| {
            // Most likely in a pack the pool had to leave out: say which.
            match self.problems.first() {
                Some(p) => BackupError::corrupt(
                    &p.path,
                    format!(
                        "{}; blob {d} is not readable from any other pack \
                         (mailvault backup verify lists every damaged object)",
                        p.message
                    ),
                ),
                None => BackupError::NotFound(format!("blob {d}")),
            }
        })
    }
}

/// Removes the pack files without an index: a backup writes a pack's zip, then
/// its index ([`PackWriter::seal`]), so a zip alone was left by a backup
/// interrupted between the two (or by a power cut that kept the one and not the
/// other) and no session refers to its blobs. Call with the target's lock held,
/// before writing packs. Returns the removed paths.
pub fn remove_orphans(target: &dyn Target) -> Result<Vec<String>> {
    let objects = target.list("packs/")?;
    let names: std::collections::HashSet<&str> = objects.iter().map(|o| o.path.as_str()).collect();
    let mut removed = Vec::new();
    for o in &objects {
        if let Some(stem) = o.path.strip_suffix(".zip")
            && !names.contains(format!("{stem}.idx").as_str())
        {
            target.delete(&o.path)?;
            removed.push(o.path.clone());
        }
    }
    Ok(removed)
}

/// Reads, decompresses and checks one blob at a known location.
pub fn read_at(target: &dyn Target, loc: &BlobLocation, d: &Digest) -> Result<Vec<u8>> {
    let stored = target.get_range(&loc.path, loc.offset, loc.stored_len)?;
    let raw = loc
        .compression
        .decode(stored, loc.stored_len as usize)
        .map_err(|e| {
            BackupError::corrupt(
                &loc.path,
                format!("blob {d} at offset {} does not decompress: {e}", loc.offset),
            )
        })?;
    let found = Digest::of(&raw);
    if &found != d {
        return Err(BackupError::corrupt(
            &loc.path,
            format!(
                "blob {d} at offset {} is damaged (its content hashes to {found})",
                loc.offset
            ),
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::{IdxEntry, PackWriter};
    use crate::target::FsTarget;

    #[test]
    fn memory_per_blob_is_48_bytes() {
        assert_eq!(std::mem::size_of::<(Digest, Loc)>(), 48);
    }

    /// The bucket table finds every digest the pool holds, and none it does not,
    /// whatever the count (powers of two and their neighbours) and however the
    /// digests cluster (all sharing their first bytes, as no real digest does).
    #[test]
    fn every_blob_is_found_through_the_bucket_table() {
        fn pool_of(digests: &[Digest]) -> Pool {
            let index = PackIndex {
                zip_size: 0,
                zip_blake3: [0; 32],
                entries: digests
                    .iter()
                    .enumerate()
                    .map(|(i, d)| IdxEntry {
                        digest: *d,
                        offset: i as u64,
                        stored_len: 1,
                        raw_len: 1,
                        crc32: 0,
                        compression: Compression::Stored,
                    })
                    .collect(),
            };
            let mut pool = Pool::default();
            pool.insert_pack("p".into(), &index, false);
            pool.sorted.sort_unstable_by_key(|(d, _)| *d);
            pool.index_buckets();
            pool
        }
        for n in [0usize, 1, 2, 3, 4, 5, 127, 128, 129, 1000] {
            let spread: Vec<Digest> = (0..n).map(|i| Digest::of(&i.to_le_bytes())).collect();
            let clustered: Vec<Digest> = (0..n)
                .map(|i| {
                    let mut d = [0xAB; 32];
                    d[24..].copy_from_slice(&(i as u64).to_be_bytes());
                    Digest(d)
                })
                .collect();
            for digests in [spread, clustered] {
                let pool = pool_of(&digests);
                assert!(pool.buckets.len() <= n.max(1) + 1, "n = {n}");
                for (i, d) in digests.iter().enumerate() {
                    let loc = pool
                        .loc(d)
                        .unwrap_or_else(|| panic!("n = {n}: #{i} not found"));
                    assert_eq!(loc.offset as usize, i);
                }
                for i in n..n + 50 {
                    assert!(!pool.contains(&Digest::of(&i.to_le_bytes())), "n = {n}");
                }
                assert!(!pool.contains(&Digest([0xAB; 32])));
                assert!(!pool.contains(&Digest([0xFF; 32])));
            }
        }
    }

    #[test]
    fn packs_round_trip_in_every_compression() {
        let dir = tempfile::tempdir().unwrap();
        let t = FsTarget::open(dir.path()).unwrap();
        let blobs: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("message {i} ").repeat(100 + i).into_bytes())
            .collect();
        for c in [Compression::Stored, Compression::Deflate, Compression::Zstd] {
            let mut w = PackWriter::new(&t, c).unwrap();
            for b in &blobs {
                w.add(Digest::of(b), b).unwrap();
            }
            let (id, index) = w.seal(&t).unwrap();
            let back = PackIndex::decode("x", &index.encode()).unwrap();
            assert_eq!(back.entries.len(), 20);
            assert!(t.size(&pack_path(&id, "idx")).unwrap().is_some());
        }
        let pool = Pool::load(&t).unwrap();
        assert!(pool.problems.is_empty(), "{:?}", pool.problems);
        assert_eq!(pool.packs().len(), 3);
        assert_eq!(pool.len(), 20);
        for b in &blobs {
            assert_eq!(&pool.read(&t, &Digest::of(b)).unwrap(), b);
        }
    }

    #[test]
    fn damaged_index_and_truncated_pack_are_problems_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let t = FsTarget::open(dir.path()).unwrap();
        let mut w = PackWriter::new(&t, Compression::Stored).unwrap();
        w.add(Digest::of(b"abc"), b"abc").unwrap();
        let (id, _) = w.seal(&t).unwrap();
        let idx = t.local_path(&pack_path(&id, "idx")).unwrap();
        let good = std::fs::read(&idx).unwrap();
        for cut in [0, 10, good.len() - 1] {
            std::fs::write(&idx, &good[..cut]).unwrap();
            let pool = Pool::load(&t).unwrap();
            assert_eq!(pool.problems.len(), 1);
            assert!(!pool.contains(&Digest::of(b"abc")));
        }
        std::fs::write(&idx, &good).unwrap();
        let zip = t.local_path(&pack_path(&id, "zip")).unwrap();
        let z = std::fs::read(&zip).unwrap();
        std::fs::write(&zip, &z[..z.len() - 5]).unwrap();
        let pool = Pool::load(&t).unwrap();
        assert_eq!(pool.problems.len(), 1, "{:?}", pool.problems);
    }
}
