//! The server notices its home vanishing (deleted, or its filesystem unmounted):
//! it logs why and stops through the normal SIGTERM path, instead of serving
//! from open file handles into a directory nobody can see any more.

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
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                if !crate::run::is_serving() {
                    continue;
                }
                if !home.localconfig_path().is_file() {
                    tracing::error!(
                        "the home {} is gone ({} is missing): stopping the server; restore the home from a backup (zmrestoreldap, zmrestoreoffline) or run `mailvault init`, then zmcontrol start",
                        home.root().display(),
                        home.localconfig_path().display()
                    );
                    // SAFETY: signalling this process has no memory effects here.
                    unsafe {
                        libc::kill(libc::getpid(), libc::SIGTERM);
                    }
                    return;
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
