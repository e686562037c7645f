//! Uploading a local file to the S3 target: one PUT up to a part's size, else a
//! multipart upload fed from disk a part at a time.
//!
//! The parts are read on the runtime's blocking pool and sent as tasks of the
//! client's runtime, at most [`PARTS_IN_FLIGHT`] at once (memory: that many
//! parts, and the one being read), so reading the next part overlaps sending
//! the previous ones. The whole upload is one request of the client: bounded by
//! the lock's lease as it is renewed, and its parts are stopped with it.

use super::s3_client::Client;
use crate::error::{BackupError, Result};
use object_store::{MultipartUpload, PutPayload};
use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use tokio::task::JoinHandle;

/// Part uploads in flight at once for one file (memory: this many parts).
const PARTS_IN_FLIGHT: usize = 4;

/// Part uploads running as tasks; those still running when it is dropped (an
/// error, the lease ran out) are stopped.
struct InFlight(VecDeque<JoinHandle<object_store::Result<()>>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Why sending the parts stopped: the local file, or the store.
enum Failed {
    Local(std::io::Error),
    Store(object_store::Error),
}

impl From<object_store::Error> for Failed {
    fn from(e: object_store::Error) -> Failed {
        Failed::Store(e)
    }
}

impl Client {
    /// Uploads the local file `local` as `rel`; answers with its size.
    pub(super) fn upload_file(&self, rel: &str, local: &Path, part: usize) -> Result<u64> {
        let mut file = std::fs::File::open(local).map_err(BackupError::io(local.display()))?;
        let size = file
            .metadata()
            .map_err(BackupError::io(local.display()))?
            .len();
        if size <= part as u64 {
            let mut data = Vec::with_capacity(size as usize);
            file.read_to_end(&mut data)
                .map_err(BackupError::io(local.display()))?;
            self.put(rel, data)?;
            return Ok(size);
        }
        let mut upload = self.start_upload(rel)?;
        // Local read errors travel inside the request's success so that the
        // store's errors keep their own meaning (not found, lease, bucket).
        let sent = self.run(rel, async {
            match send_parts(upload.as_mut(), file, part).await {
                Ok(()) => Ok(Ok(())),
                Err(Failed::Local(e)) => Ok(Err(e)),
                Err(Failed::Store(e)) => Err(e),
            }
        });
        let sent = match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(BackupError::io(local.display())(e)),
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => {
                self.run(rel, async { upload.complete().await.map(|_| ()) })?;
                Ok(size)
            }
            Err(e) => {
                // Best effort: parts left behind are reclaimed by the bucket's
                // lifecycle rule for incomplete uploads.
                let _ = self.run(rel, upload.abort());
                Err(e)
            }
        }
    }
}

/// Reads `file` a part at a time and sends each as a task, keeping at most
/// [`PARTS_IN_FLIGHT`] in flight.
async fn send_parts(
    upload: &mut dyn MultipartUpload,
    mut file: std::fs::File,
    part: usize,
) -> std::result::Result<(), Failed> {
    let mut in_flight = InFlight(VecDeque::new());
    loop {
        let (back, buf) = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(part);
            let read = (&mut file).take(part as u64).read_to_end(&mut buf);
            read.map(|_| (file, buf))
        })
        .await
        .map_err(|e| Failed::Local(std::io::Error::other(e)))?
        .map_err(Failed::Local)?;
        file = back;
        if buf.is_empty() {
            break;
        }
        if in_flight.0.len() >= PARTS_IN_FLIGHT {
            let oldest = in_flight.0.pop_front().expect("non-empty");
            joined(oldest.await)?;
        }
        in_flight
            .0
            .push_back(tokio::spawn(upload.put_part(PutPayload::from(buf))));
    }
    while let Some(h) = in_flight.0.pop_front() {
        joined(h.await)?;
    }
    Ok(())
}

fn joined(
    r: std::result::Result<object_store::Result<()>, tokio::task::JoinError>,
) -> object_store::Result<()> {
    r.unwrap_or_else(|e| {
        Err(object_store::Error::Generic {
            store: "S3",
            source: Box::new(e),
        })
    })
}
