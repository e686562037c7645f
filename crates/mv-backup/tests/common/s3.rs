//! A real S3-compatible server for tests: `s3s-fs` (objects stored as plain files
//! under `<root>/<bucket>/<key>`) behind hyper on 127.0.0.1, with SigV4
//! authentication on, in a thread of the test process. Also used by the mv-cli tests
//! (through `#[path]`), where the `mailvault` binary talks to it over loopback.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub const ACCESS_KEY: &str = "mvtestaccess";
pub const SECRET_KEY: &str = "mvtestsecret0123456789";
pub const BUCKET: &str = "mv-backups";

pub struct S3Server {
    pub endpoint: String,
    root: PathBuf,
    rt: Option<tokio::runtime::Runtime>,
}

impl S3Server {
    /// Serves `root` (created if needed), with the bucket [`BUCKET`] in it.
    pub fn start(root: &Path) -> S3Server {
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-s3")
            .enable_all()
            .build()
            .unwrap();
        let fs = s3s_fs::FileSystem::new(root).unwrap();
        let mut b = s3s::service::S3ServiceBuilder::new(fs);
        b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = b.build();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind((
                "127.0.0.1",
                mv_home::ports::free_loopback_port().unwrap(),
            )))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        S3Server {
            endpoint: format!("http://{addr}"),
            root: root.to_path_buf(),
            rt: Some(rt),
        }
    }

    /// Where the object `key` of [`BUCKET`] is stored on disk.
    pub fn object_file(&self, key: &str) -> PathBuf {
        self.root.join(BUCKET).join(key)
    }

    /// `s3://BUCKET/prefix`
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// Local config lines that point a home at this server.
    pub fn local_config(&self) -> Vec<(&'static str, String)> {
        vec![
            ("s3_endpoint", self.endpoint.clone()),
            ("s3_region", "us-east-1".into()),
            ("s3_access_key_id", ACCESS_KEY.into()),
            ("s3_secret_access_key", SECRET_KEY.into()),
            ("s3_allow_http", "true".into()),
            // Loopback PUTs take milliseconds: a short settle keeps tests quick.
            ("s3_lock_settle_ms", "300".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
