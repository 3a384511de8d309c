//! A backed-up file as the source of an upload: read from its store (a folder reads straight
//! from the file; S3 streams the object) for every attempt, and checked on the way against the
//! manifest. Bytes beyond the recorded size, fewer bytes, or another sha256 end the stream
//! with "backup file damaged" instead of its end, so the upload is never completed and the
//! server stores nothing: a damaged file is never uploaded, and nothing is read twice.

use crate::api::{UploadBytes, UploadSource};
use crate::store::{BackupStore, ByteStream};
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// One object of a backup store, with what the manifest says of it.
pub(crate) struct StoreObject {
    /// The store.
    pub(crate) store: Arc<dyn BackupStore>,
    /// The object's key (the manifest path).
    pub(crate) key: String,
    /// Its size in the manifest.
    pub(crate) bytes: u64,
    /// Its sha256 in the manifest, lowercase hex.
    pub(crate) sha256: String,
}

#[async_trait::async_trait]
impl UploadSource for StoreObject {
    async fn open(&self) -> Result<UploadBytes, String> {
        let label = self.store.describe(&self.key);
        let stream = self
            .store
            .read(&self.key)
            .await
            .map_err(|e| format!("cannot read the backup file: {e}"))?;
        Ok(verified(stream, self.bytes, self.sha256.clone(), label))
    }
}

/// Where a checked stream is.
struct Checking {
    inner: ByteStream,
    hasher: Sha256,
    seen: u64,
    ended: bool,
}

/// `inner`, passed through while its size and sha256 are checked; the last item is an error
/// when they differ from `bytes` and `sha256`.
pub(crate) fn verified(
    inner: ByteStream,
    bytes: u64,
    sha256: String,
    label: String,
) -> UploadBytes {
    let start = Checking {
        inner,
        hasher: Sha256::new(),
        seen: 0,
        ended: false,
    };
    let damaged =
        move |why: String| std::io::Error::other(format!("backup file damaged: {label}: {why}"));
    futures::stream::unfold(start, move |mut st| {
        let (sha256, damaged) = (sha256.clone(), damaged.clone());
        async move {
            if st.ended {
                return None;
            }
            let item = match st.inner.next().await {
                Some(Ok(chunk)) => pass(&mut st, chunk, bytes).map_err(damaged),
                Some(Err(e)) => Err(std::io::Error::other(format!(
                    "cannot read the backup file: {e}"
                ))),
                None => {
                    st.ended = true;
                    let got = hex::encode(std::mem::take(&mut st.hasher).finalize());
                    match (st.seen == bytes, got == sha256) {
                        (true, true) => return None,
                        (false, _) => Err(damaged(format!(
                            "{} bytes, the manifest records {bytes}",
                            st.seen
                        ))),
                        (true, false) => Err(damaged(format!(
                            "sha256 {got}, the manifest records {sha256}"
                        ))),
                    }
                }
            };
            st.ended |= item.is_err();
            Some((item, st))
        }
    })
    .boxed()
}

/// Count and hash one chunk; an error once there are more bytes than recorded.
fn pass(st: &mut Checking, chunk: Bytes, bytes: u64) -> Result<Bytes, String> {
    st.seen += chunk.len() as u64;
    if st.seen > bytes {
        return Err(format!(
            "longer than the {bytes} bytes the manifest records"
        ));
    }
    st.hasher.update(&chunk);
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn chunks(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes, StoreError>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures::stream::iter(items).boxed()
    }

    async fn drain(s: UploadBytes) -> (Vec<u8>, Option<String>) {
        let mut s = s;
        let (mut data, mut err) = (Vec::new(), None);
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => data.extend_from_slice(&b),
                Err(e) => err = Some(e.to_string()),
            }
        }
        (data, err)
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[tokio::test]
    async fn intact_bytes_pass_and_end_cleanly() {
        let s = verified(chunks(&[b"hel", b"lo"]), 5, sha(b"hello"), "f".into());
        assert_eq!(drain(s).await, (b"hello".to_vec(), None));
    }

    #[tokio::test]
    async fn other_content_ends_with_damage_instead_of_the_end() {
        let s = verified(chunks(&[b"jello"]), 5, sha(b"hello"), "TIC1/a.txt".into());
        let (data, err) = drain(s).await;
        assert_eq!(
            data, b"jello",
            "the bytes go through; the upload stays incomplete"
        );
        let err = err.unwrap();
        assert!(
            err.starts_with("backup file damaged: TIC1/a.txt: sha256 "),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_longer_or_shorter_file_is_damaged() {
        let s = verified(chunks(&[b"hello", b"!"]), 5, sha(b"hello"), "f".into());
        let (data, err) = drain(s).await;
        assert_eq!(
            data, b"hello",
            "nothing past the recorded size is passed on"
        );
        assert!(err.unwrap().contains("longer than the 5 bytes"));
        let s = verified(chunks(&[b"hell"]), 5, sha(b"hello"), "f".into());
        assert!(drain(s)
            .await
            .1
            .unwrap()
            .contains("4 bytes, the manifest records 5"));
    }

    #[tokio::test]
    async fn a_store_object_is_read_afresh_for_every_attempt() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("T")).unwrap();
        std::fs::write(dir.path().join("T/a.txt"), b"hello").unwrap();
        let obj = StoreObject {
            store: Arc::new(crate::store::FolderStore::new(dir.path(), false)),
            key: "T/a.txt".into(),
            bytes: 5,
            sha256: sha(b"hello"),
        };
        for _ in 0..2 {
            assert_eq!(
                drain(obj.open().await.unwrap()).await,
                (b"hello".to_vec(), None)
            );
        }
        std::fs::remove_file(dir.path().join("T/a.txt")).unwrap();
        let err = obj.open().await.err().unwrap();
        assert!(err.starts_with("cannot read the backup file"), "{err}");
    }
}
