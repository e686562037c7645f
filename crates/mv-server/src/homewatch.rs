//! The server watches its home: it notices the home vanishing (deleted, or its
//! filesystem unmounted) and then logs why and stops through the normal SIGTERM
//! path, instead of serving from open file handles into a directory nobody can
//! see any more; and it resumes a redo log a failure stopped (a full disk) as
//! soon as that is safe, so delivery comes back without a restart even when no
//! delivery is tried meanwhile.

use crate::Service;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const INTERVAL: Duration = Duration::from_secs(2);

pub fn spawn(
    service: Arc<Service>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("home watch".into())
        .spawn(move || {
            let home = service.store().home().clone();
            // The directory itself, not just its name: code that re-creates a
            // missing home on the fly (`Home::open`) must not hide the loss.
            let identity = |p: &std::path::Path| {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
            };
            let original = identity(home.root());
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                if !crate::run::is_serving() {
                    continue;
                }
                if !home.localconfig_path().is_file() || identity(home.root()) != original {
                    tracing::error!(
                        "the home {} is gone (removed, moved or unmounted while the server ran): stopping the server; restore the home from a backup (zmrestoreldap, zmrestoreoffline) or run `mailvault init`, then zmcontrol start",
                        home.root().display()
                    );
                    // SAFETY: signalling this process has no memory effects here.
                    unsafe {
                        libc::kill(libc::getpid(), libc::SIGTERM);
                    }
                    return;
                }
                let redo = service.store().redo();
                if redo.failure().is_some()
                    && let Err(e) = redo.resume()
                {
                    tracing::debug!("redo log not resumed yet: {e}");
                }
                for _ in 0..(INTERVAL.as_millis() / 200) {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        })
}
