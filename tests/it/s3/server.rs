//! A local S3 server for tests and benchmarks: `s3s-fs` (an S3 server over a folder, built on
//! `s3s`) on 127.0.0.1:0, behind a thin wrapper that
//!
//! - logs every operation with its key (the tests' request counters: which objects were read,
//!   listed, written);
//! - makes conditional writes atomic: `s3s-fs` checks `If-None-Match`/`If-Match` and then
//!   writes, so two racing conditional puts could both pass; the wrapper runs every write of
//!   an object (PUT, multipart completion, DELETE) one at a time;
//! - can refuse conditional puts (`501 NotImplemented`) or silently ignore them, as some
//!   S3-compatible stores do, to test the lock's detection of both;
//! - answers `ListMultipartUploads` from what it saw started and not yet completed or
//!   aborted (which `s3s-fs` does not implement), and [`S3Server::uploads_on_disk`] counts the
//!   uploads `s3s-fs` itself still keeps.
//!
//! Why `s3s-fs`: it is embeddable (a library, no Docker, no other process), signs requests
//! like S3 (SigV4 checked with the test's key pair), and implements multipart uploads, abort,
//! `If-None-Match: *` and `If-Match` on PUT. It lacks atomic conditional writes and the
//! listing of multipart uploads, which the wrapper adds.
//!
//! Shared by the integration tests (`tests/it/s3/`) and `examples/s3_server.rs` (benchmarks),
//! which includes this file with `#[path]`.

#![allow(dead_code)] // each includer uses part of it

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, S3};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// The key pair the server accepts.
pub(crate) const ACCESS_KEY: &str = "alga-test-access";
pub(crate) const SECRET_KEY: &str = "alga-test-secret-0123456789";

/// How the server treats conditional puts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conditional {
    /// As S3 does.
    Honour,
    /// `501 NotImplemented`.
    Refuse,
    /// As if the headers were not there.
    Ignore,
}

/// One request the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Op {
    /// The S3 operation (`GetObject`, `PutObject`...).
    pub(crate) op: &'static str,
    /// The object key, or the prefix of a listing.
    pub(crate) key: String,
}

#[derive(Default)]
struct State {
    log: Mutex<Vec<Op>>,
    /// Upload id -> key, started and not completed or aborted.
    uploads: Mutex<BTreeMap<String, String>>,
    conditional: AtomicU8,
    writes: tokio::sync::Mutex<()>,
}

impl State {
    fn note(&self, op: &'static str, key: impl Into<String>) {
        let key = key.into();
        self.log.lock().unwrap().push(Op { op, key });
    }

    fn mode(&self) -> Conditional {
        match self.conditional.load(Ordering::SeqCst) {
            1 => Conditional::Refuse,
            2 => Conditional::Ignore,
            _ => Conditional::Honour,
        }
    }
}

/// A running server over a folder.
pub(crate) struct S3Server {
    addr: SocketAddr,
    root: PathBuf,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl S3Server {
    /// Serve `root` (created) with one bucket `bucket`, on 127.0.0.1:`port` (0: any).
    pub(crate) async fn start(root: &Path, bucket: &str, port: u16) -> std::io::Result<S3Server> {
        std::fs::create_dir_all(root.join(bucket))?;
        let fs =
            s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let state = Arc::new(State::default());
        let proxy = Proxy {
            fs,
            state: state.clone(),
        };
        let mut b = s3s::service::S3ServiceBuilder::new(proxy);
        b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = b.build();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            use hyper_util::rt::{TokioExecutor, TokioIo};
            let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let conn = http.serve_connection(TokioIo::new(sock), service.clone());
                let conn = conn.into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Ok(S3Server {
            addr,
            root: root.canonicalize()?,
            state,
            task,
        })
    }

    /// `http://127.0.0.1:port`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The folder an object is stored in (`root/bucket/key`).
    pub(crate) fn file(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// Every request so far.
    pub(crate) fn log(&self) -> Vec<Op> {
        self.state.log.lock().unwrap().clone()
    }

    /// Uploads started and not completed or aborted (key by upload id).
    pub(crate) fn uploads(&self) -> BTreeMap<String, String> {
        self.state.uploads.lock().unwrap().clone()
    }

    /// Multipart uploads `s3s-fs` still keeps on disk (its `.upload-<id>.json` files).
    pub(crate) fn uploads_on_disk(&self) -> usize {
        std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.starts_with(".upload-") && n.ends_with(".json")
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// How conditional puts are treated from now on.
    pub(crate) fn set_conditional(&self, mode: Conditional) {
        let v = match mode {
            Conditional::Honour => 0,
            Conditional::Refuse => 1,
            Conditional::Ignore => 2,
        };
        self.state.conditional.store(v, Ordering::SeqCst);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `s3s-fs` with the wrapper's additions.
struct Proxy {
    fs: s3s_fs::FileSystem,
    state: Arc<State>,
}

#[async_trait::async_trait]
impl S3 for Proxy {
    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.state.note("HeadBucket", "");
        self.fs.head_bucket(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.state.note("HeadObject", req.input.key.clone());
        self.fs.head_object(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.state.note("GetObject", req.input.key.clone());
        self.fs.get_object(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let prefix = req.input.prefix.clone().unwrap_or_default();
        self.state.note("ListObjectsV2", prefix);
        self.fs.list_objects_v2(req).await
    }

    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.state.note("PutObject", req.input.key.clone());
        let conditional = req.input.if_match.is_some() || req.input.if_none_match.is_some();
        match self.state.mode() {
            Conditional::Refuse if conditional => {
                return Err(s3s::s3_error!(NotImplemented, "conditional puts"));
            }
            Conditional::Ignore => {
                req.input.if_match = None;
                req.input.if_none_match = None;
            }
            _ => {}
        }
        let _one_at_a_time = self.state.writes.lock().await;
        self.fs.put_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.state.note("DeleteObject", req.input.key.clone());
        let _one_at_a_time = self.state.writes.lock().await;
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        for o in &req.input.delete.objects {
            self.state.note("DeleteObjects", o.key.clone());
        }
        let _one_at_a_time = self.state.writes.lock().await;
        self.fs.delete_objects(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let key = req.input.key.clone();
        self.state.note("CreateMultipartUpload", key.clone());
        let out = self.fs.create_multipart_upload(req).await?;
        if let Some(id) = &out.output.upload_id {
            self.state.uploads.lock().unwrap().insert(id.clone(), key);
        }
        Ok(out)
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.state.note("UploadPart", req.input.key.clone());
        self.fs.upload_part(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let id = req.input.upload_id.clone();
        self.state
            .note("CompleteMultipartUpload", req.input.key.clone());
        let _one_at_a_time = self.state.writes.lock().await;
        let out = self.fs.complete_multipart_upload(req).await?;
        self.state.uploads.lock().unwrap().remove(&id);
        Ok(out)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let id = req.input.upload_id.clone();
        self.state
            .note("AbortMultipartUpload", req.input.key.clone());
        let out = self.fs.abort_multipart_upload(req).await?;
        self.state.uploads.lock().unwrap().remove(&id);
        Ok(out)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.state.note("ListMultipartUploads", "");
        let prefix = req.input.prefix.unwrap_or_default();
        let uploads = self
            .uploads()
            .into_iter()
            .filter(|(_, key)| key.starts_with(&prefix))
            .map(|(id, key)| MultipartUpload {
                key: Some(key),
                upload_id: Some(id),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(req.input.bucket),
            uploads: Some(uploads),
            is_truncated: Some(false),
            ..Default::default()
        }))
    }
}

impl Proxy {
    fn uploads(&self) -> BTreeMap<String, String> {
        self.state.uploads.lock().unwrap().clone()
    }
}
