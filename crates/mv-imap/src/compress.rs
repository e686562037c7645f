//! COMPRESS=DEFLATE (RFC 4978): after the tagged OK both directions are raw
//! DEFLATE streams (RFC 1951, no zlib header). The server flushes its
//! compressor (a sync flush) whenever the session flushes, so every response
//! reaches the client whole and at once.
//!
//! Memory per connection is bounded: flate2's state (about 300 KiB for
//! compression at level 6 with a 32 KiB window) and two buffers of
//! [`BUF`] bytes; inflated input is handed to the framer, whose limits apply.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const BUF: usize = 16 * 1024;

/// A stream whose bytes are deflated on the way out and inflated on the way in.
pub struct DeflateStream<S> {
    inner: S,
    inflate: Decompress,
    deflate: Compress,
    /// Compressed bytes read from `inner`, not yet inflated (`in_pos..in_len`).
    input: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    eof: bool,
    /// Deflated bytes not yet written to `inner` (`out_pos..out.len()`).
    out: Vec<u8>,
    out_pos: usize,
    /// Uncompressed bytes accepted since the last sync flush.
    dirty: bool,
}

impl<S> DeflateStream<S> {
    /// Wraps `inner`; `pending` are bytes already read from it after the
    /// COMPRESS command (the client's first compressed bytes).
    pub fn new(inner: S, pending: &[u8]) -> DeflateStream<S> {
        let mut input = vec![0u8; BUF.max(pending.len())].into_boxed_slice();
        input[..pending.len()].copy_from_slice(pending);
        DeflateStream {
            inner,
            inflate: Decompress::new(false),
            deflate: Compress::new(Compression::default(), false),
            input,
            in_pos: 0,
            in_len: pending.len(),
            eof: false,
            out: Vec::with_capacity(BUF),
            out_pos: 0,
            dirty: false,
        }
    }
}

fn corrupt(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("DEFLATE: {e}"))
}

impl<S: AsyncWrite + Unpin> DeflateStream<S> {
    /// Writes out the deflated bytes held.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Deflates what it can of `data` into `out`; returns the bytes taken.
    fn compress(&mut self, data: &[u8]) -> io::Result<usize> {
        self.out.reserve(BUF);
        let before = self.deflate.total_in();
        self.deflate
            .compress_vec(data, &mut self.out, FlushCompress::None)
            .map_err(corrupt)?;
        Ok((self.deflate.total_in() - before) as usize)
    }

    /// Ends the current block with a sync flush: everything written so far
    /// can be inflated by the client from what is in `out`.
    fn sync_flush(&mut self) -> io::Result<()> {
        loop {
            self.out.reserve(BUF);
            self.deflate
                .compress_vec(&[], &mut self.out, FlushCompress::Sync)
                .map_err(corrupt)?;
            // Room to spare: the compressor emitted all it held.
            if self.out.len() < self.out.capacity() {
                return Ok(());
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DeflateStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        loop {
            if me.in_pos < me.in_len {
                let dst = buf.initialize_unfilled();
                let (before_in, before_out) = (me.inflate.total_in(), me.inflate.total_out());
                let status = me
                    .inflate
                    .decompress(&me.input[me.in_pos..me.in_len], dst, FlushDecompress::None)
                    .map_err(corrupt)?;
                me.in_pos += (me.inflate.total_in() - before_in) as usize;
                let produced = (me.inflate.total_out() - before_out) as usize;
                buf.advance(produced);
                if produced > 0 {
                    return Poll::Ready(Ok(()));
                }
                if status == Status::StreamEnd {
                    // The client ended its DEFLATE stream: no more commands.
                    return Poll::Ready(Ok(()));
                }
                if me.in_pos < me.in_len {
                    // Input left but nothing produced: the inflater needs more.
                    me.input.copy_within(me.in_pos..me.in_len, 0);
                    me.in_len -= me.in_pos;
                    me.in_pos = 0;
                } else {
                    me.in_pos = 0;
                    me.in_len = 0;
                }
            } else {
                me.in_pos = 0;
                me.in_len = 0;
            }
            if me.eof {
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(&mut me.input[me.in_len..]);
            ready!(Pin::new(&mut me.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                me.eof = true;
                if me.in_len == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            me.in_len += n;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeflateStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        if me.out.len() >= BUF {
            ready!(me.poll_drain(cx))?;
        }
        let n = me.compress(data)?;
        me.dirty |= n > 0;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        if me.dirty {
            me.sync_flush()?;
            me.dirty = false;
        }
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.flush().unwrap();
        e.finish().unwrap()
    }

    fn inflate(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut d = flate2::read::DeflateDecoder::new(data);
        // A sync-flushed stream has no end marker: read what is there.
        let _ = d.read_to_end(&mut out);
        out
    }

    #[tokio::test]
    async fn both_directions_round_trip() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (mut client_r, mut client_w) = tokio::io::split(client);
        let first = deflate(b"a1 NOOP\r\n");
        let (pending, rest) = first.split_at(3);
        let mut z = DeflateStream::new(server, pending);
        client_w.write_all(rest).await.unwrap();
        // Reads may return the line in pieces, as from any stream.
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64];
        while got.len() < 9 {
            let n = z.read(&mut buf).await.unwrap();
            assert!(n > 0, "end of stream after {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"a1 NOOP\r\n");

        let big: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        z.write_all(b"* OK ").await.unwrap();
        z.write_all(&big).await.unwrap();
        z.flush().await.unwrap();
        let mut wire = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        while inflate(&wire).len() < 5 + big.len() {
            let n = client_r.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            wire.extend_from_slice(&chunk[..n]);
        }
        let plain = inflate(&wire);
        assert_eq!(&plain[..5], b"* OK ");
        assert_eq!(&plain[5..], &big[..]);
        assert!(
            wire.len() < big.len(),
            "compressed {} of {}",
            wire.len(),
            big.len()
        );
    }

    #[tokio::test]
    async fn garbage_is_an_error() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut z = DeflateStream::new(server, &[]);
        client.write_all(&[0xff; 64]).await.unwrap();
        let mut got = vec![0u8; 64];
        assert!(z.read(&mut got).await.is_err());
    }
}
