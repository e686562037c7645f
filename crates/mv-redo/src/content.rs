//! The payload of a `PutBlob` record: a blob's digest and bytes, the bytes
//! compressed with zstd when that makes the record notably smaller.
//!
//! Why: every delivered message is written twice, once into the redo log (the
//! durability point, and what incremental backups and point-in-time restores
//! replay) and once as its blob file. Mail is mostly text, and zstd at level 1
//! takes a 10 KB text message to about a third of its size for some tens of
//! microseconds, so the log's copy costs a fraction of the bytes. The record
//! still holds the whole content: decoding gives back exactly the logged bytes,
//! so a blob can always be rebuilt from its record.
//!
//! CBOR layout (an array, as the derived codecs of the other ops):
//!
//! | form       | array                                             |
//! |------------|---------------------------------------------------|
//! | plain      | `[digest: bytes(32), data: bytes]`                |
//! | compressed | `[digest: bytes(32), null, zstd: bytes, len: uint]` |
//!
//! The plain form is the one logs written before compression hold, byte for
//! byte. A reader that knows only the plain form fails on the compressed one
//! (no bytes at index 1) with a decode error, never with empty content.
//! Elements past index 3 are skipped (room for later optional fields).

use minicbor::data::Type;
use minicbor::decode::{Decoder, Error as DecodeError};
use minicbor::encode::{Encoder, Error as EncodeError, Write};

use crate::format::MAX_BODY_LEN;

/// Content shorter than this is logged as it is: too little to gain.
const MIN_COMPRESSED_INPUT: usize = 512;
/// zstd's fastest regular level: most of the gain on text, little CPU.
const LEVEL: i32 = 1;
/// A compressed payload may expand to at most this many times its size. It
/// bounds what a damaged or hostile record can make a reader allocate (with the
/// record's own bound); the writer logs content that compresses better than
/// this (long runs of one byte) in the plain form, so every record it writes
/// reads back.
pub const MAX_RATIO: usize = 64;

/// The content as the record carries it: compressed when that saves at least
/// an eighth, else `None` (log it plain).
pub(crate) fn compress(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < MIN_COMPRESSED_INPUT || data.len() > MAX_BODY_LEN {
        return None;
    }
    let z = zstd::bulk::compress(data, LEVEL).ok()?;
    let saves_enough = z.len() + z.len() / 7 < data.len();
    let readable = data.len() <= z.len().saturating_mul(MAX_RATIO);
    (saves_enough && readable).then_some(z)
}

pub(crate) fn encode<W: Write>(
    e: &mut Encoder<W>,
    digest: &[u8; 32],
    data: &[u8],
) -> Result<(), EncodeError<W::Error>> {
    match compress(data) {
        Some(z) => e
            .array(4)?
            .bytes(digest)?
            .null()?
            .bytes(&z)?
            .u64(data.len() as u64)?
            .ok(),
        None => e.array(2)?.bytes(digest)?.bytes(data)?.ok(),
    }
}

pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<([u8; 32], Vec<u8>), DecodeError> {
    let n = d
        .array()?
        .ok_or_else(|| DecodeError::message("PutBlob: indefinite-length array"))?;
    let mut digest = None;
    let mut plain = None;
    let mut zstd = None;
    let mut len = None;
    for i in 0..n {
        match i {
            0 => {
                let b = d.bytes()?;
                digest = Some(<[u8; 32]>::try_from(b).map_err(|_| {
                    DecodeError::message(format!("PutBlob: digest of {} bytes", b.len()))
                })?);
            }
            1 if d.datatype()? == Type::Null => d.skip()?,
            1 => plain = Some(d.bytes()?),
            2 => zstd = Some(d.bytes()?),
            3 => len = Some(d.u64()?),
            _ => d.skip()?,
        }
    }
    let digest = digest.ok_or_else(|| DecodeError::message("PutBlob: no digest"))?;
    let data = match (plain, zstd, len) {
        (Some(p), None, None) => p.to_vec(),
        (None, Some(z), Some(len)) => decompress(z, len)?,
        _ => {
            return Err(DecodeError::message(
                "PutBlob: neither plain nor compressed content",
            ));
        }
    };
    Ok((digest, data))
}

/// Decompresses exactly `len` bytes, after checking `len` against the bounds
/// (nothing is allocated for a length out of them).
fn decompress(z: &[u8], len: u64) -> Result<Vec<u8>, DecodeError> {
    let bound = z.len().saturating_mul(MAX_RATIO).min(MAX_BODY_LEN);
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= bound)
        .ok_or_else(|| {
            DecodeError::message(format!(
                "PutBlob: {len} bytes claimed from {} compressed",
                z.len()
            ))
        })?;
    let out = zstd::bulk::decompress(z, len)
        .map_err(|e| DecodeError::message(format!("PutBlob: zstd: {e}")))?;
    if out.len() != len {
        return Err(DecodeError::message(format!(
            "PutBlob: {} bytes decompressed, {len} claimed",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::ops::{Op, PutBlob};

    fn text(n: usize) -> Vec<u8> {
        let words = ["mail", "vault", "restore", "backup", "the", "of", "zimbra"];
        let mut out = Vec::new();
        let mut i = 7usize;
        while out.len() < n {
            i = i.wrapping_mul(2_654_435_761).wrapping_add(12345);
            out.extend_from_slice(words[(i >> 7) % words.len()].as_bytes());
            out.push(if i.is_multiple_of(11) { b'\n' } else { b' ' });
        }
        out.truncate(n);
        out
    }

    /// xorshift64: bytes zstd cannot shrink.
    fn noise(n: usize) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn round_trip(data: Vec<u8>) -> usize {
        let op = Op::PutBlob(PutBlob {
            digest: [3; 32],
            data,
        });
        let bytes = op.encode_payload();
        assert_eq!(Op::decode_payload(1, &bytes).unwrap(), op);
        bytes.len()
    }

    #[test]
    fn text_is_logged_compressed_and_reads_back_exactly() {
        let n = round_trip(text(10 * 1024));
        assert!(n < 10 * 1024 / 2, "a 10 KB text took {n} bytes");
    }

    #[test]
    fn small_incompressible_and_degenerate_content_is_logged_plain() {
        for data in [
            b"Subject: x\r\n\r\nhi".to_vec(),
            noise(4096),
            vec![0u8; 1 << 20],
        ] {
            let len = data.len();
            let n = round_trip(data);
            assert!(n >= len, "{len} bytes took {n}: not the plain form");
        }
    }

    /// Logs written before compression keep reading: the plain form is the
    /// derived array codec's encoding, byte for byte.
    #[test]
    fn plain_form_is_the_original_encoding() {
        #[derive(minicbor::Encode)]
        struct Original {
            #[cbor(n(0), with = "minicbor::bytes")]
            digest: [u8; 32],
            #[cbor(n(1), with = "minicbor::bytes")]
            data: Vec<u8>,
        }
        for data in [b"short".to_vec(), text(2000)] {
            let old = minicbor::to_vec(Original {
                digest: [9; 32],
                data: data.clone(),
            })
            .unwrap();
            let back = Op::decode_payload(1, &old).unwrap();
            assert_eq!(
                back,
                Op::PutBlob(PutBlob {
                    digest: [9; 32],
                    data
                })
            );
        }
        let short = Op::PutBlob(PutBlob {
            digest: [9; 32],
            data: b"short".to_vec(),
        });
        let old = minicbor::to_vec(Original {
            digest: [9; 32],
            data: b"short".to_vec(),
        })
        .unwrap();
        assert_eq!(short.encode_payload(), old);
    }

    /// A record claiming more than its bounds allow is refused before anything
    /// is allocated; a wrong length is an error, not short or padded content.
    #[test]
    fn claimed_lengths_are_checked() {
        let z = zstd::bulk::compress(&text(4000), 1).unwrap();
        let payload = |len: u64| {
            let mut e = minicbor::Encoder::new(Vec::new());
            e.array(4)
                .unwrap()
                .bytes(&[1; 32])
                .unwrap()
                .null()
                .unwrap()
                .bytes(&z)
                .unwrap()
                .u64(len)
                .unwrap();
            e.into_writer()
        };
        assert!(Op::decode_payload(1, &payload(4000)).is_ok());
        for bad in [
            3999,
            4001,
            u64::MAX,
            (z.len() * super::MAX_RATIO + 1) as u64,
        ] {
            let err = Op::decode_payload(1, &payload(bad)).unwrap_err();
            assert!(err.to_string().contains("PutBlob"), "{bad}: {err}");
        }
    }
}
