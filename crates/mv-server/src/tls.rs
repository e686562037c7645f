//! The IMAP server's TLS certificate: `conf/imap.crt` and `conf/imap.key` (PEM).
//! `mailvault init` and `serve` make a self-signed one for localhost when none
//! exists; replace both files with a real certificate for clients that verify.

use mv_home::Home;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: {message}; replace conf/imap.crt and conf/imap.key with a matching PEM certificate and key, or remove both to get a new self-signed pair"
    )]
    Invalid { path: PathBuf, message: String },
}

pub fn cert_path(home: &Home) -> PathBuf {
    home.conf_dir().join("imap.crt")
}

pub fn key_path(home: &Home) -> PathBuf {
    home.conf_dir().join("imap.key")
}

/// Makes a self-signed certificate unless both files exist. Returns whether it made one.
pub fn ensure_certificate(home: &Home) -> Result<bool, TlsError> {
    let (cert, key) = (cert_path(home), key_path(home));
    if cert.is_file() && key.is_file() {
        return Ok(false);
    }
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        mv_directory::config::local_server_name(),
    ];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    // The key first: a certificate without its key would be kept by the check above.
    mv_home::durable::write_atomic_mode(
        &key,
        generated.signing_key.serialize_pem().as_bytes(),
        0o600,
    )
    .map_err(|source| TlsError::Write {
        path: key.clone(),
        source,
    })?;
    // Public, but in the home like everything else: private (a wider mode is
    // what `mailvault check` reports).
    mv_home::durable::write_atomic(&cert, generated.cert.pem().as_bytes()).map_err(|source| {
        TlsError::Write {
            path: cert.clone(),
            source,
        }
    })?;
    Ok(true)
}

/// The rustls configuration from the home's certificate and key.
pub fn load(home: &Home) -> Result<std::sync::Arc<rustls::ServerConfig>, TlsError> {
    let read = |p: PathBuf| std::fs::read(&p).map_err(|source| TlsError::Read { path: p, source });
    let cert = read(cert_path(home))?;
    let key = read(key_path(home))?;
    mv_imap::tls_config(&cert, &key).map_err(|message| TlsError::Invalid {
        path: cert_path(home),
        message,
    })
}
