//! Where a download's bytes go: copied off the socket into a few recycled, aligned blocks,
//! hashed on one thread and written on another, so the network, the sha256 and the disk
//! overlap and memory stays bounded ([`BLOCKS`] × [`BLOCK_BYTES`]).
//!
//! Each chunk is copied out as soon as it arrives, which lets hyper reuse its read buffer.
//! Passing hyper's chunks down the pipeline instead kept each of them alive until written, so
//! every socket read needed fresh memory (about 146,000 page faults per GiB, which cost more
//! than the copy).

use sha2::{Digest, Sha256};
use tokio::sync::mpsc::{channel, Receiver, Sender};
use tokio::task::JoinHandle;

use super::disk::{align_offset, DiskWriter, ALIGN};

/// Blocks in flight between the network, the hash and the disk.
const BLOCKS: usize = 6;

/// Size of a block, and of each write to the file: large enough for direct I/O to reach the
/// device's speed (1 MiB writes: about 3 GB/s here, against 2 GB/s with 256 KiB).
const BLOCK_BYTES: usize = 1 << 20;

/// A buffer whose contents start at an [`ALIGN`]ed address, as direct I/O requires.
struct Block {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl Block {
    fn new() -> Block {
        let storage = vec![0u8; BLOCK_BYTES + ALIGN];
        let start = align_offset(storage.as_ptr() as usize);
        Block {
            storage,
            start,
            len: 0,
        }
    }

    /// Copies as much of `data` as fits; how much that was.
    fn fill(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(BLOCK_BYTES - self.len);
        let at = self.start + self.len;
        self.storage[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    fn is_full(&self) -> bool {
        self.len == BLOCK_BYTES
    }

    fn bytes(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }
}

/// The receiving end of a download: [`Sink::push`] each chunk, then [`Sink::finish`].
pub(super) struct Sink {
    free: Receiver<Block>,
    /// Blocks made so far: they are made as needed, so a small file costs one.
    made: usize,
    full: Sender<Block>,
    current: Block,
    hasher: JoinHandle<String>,
    writer: JoinHandle<std::io::Result<u64>>,
}

/// The hash or the write thread has stopped; [`Sink::finish`] tells why.
#[derive(Debug)]
pub(super) struct Stopped;

impl Sink {
    /// Starts the hash and write threads; bytes go to `file` from its current position, which
    /// must be [`ALIGN`]ed (the start of the file).
    pub(super) fn start(file: std::fs::File, allow_direct: bool) -> Sink {
        let (free_tx, free) = channel(BLOCKS);
        let (full, full_rx) = channel(BLOCKS);
        let (hashed_tx, hashed_rx) = channel(BLOCKS);
        let hasher = tokio::task::spawn_blocking(move || hash(full_rx, hashed_tx));
        let disk = DiskWriter::new(file, allow_direct);
        let writer = tokio::task::spawn_blocking(move || write(disk, hashed_rx, free_tx));
        Sink {
            free,
            made: 1,
            full,
            current: Block::new(),
            hasher,
            writer,
        }
    }

    /// Copies `chunk` into blocks, handing each full one on.
    pub(super) async fn push(&mut self, mut chunk: &[u8]) -> Result<(), Stopped> {
        while !chunk.is_empty() {
            let n = self.current.fill(chunk);
            chunk = &chunk[n..];
            if self.current.is_full() {
                let next = self.next_block().await?;
                let full = std::mem::replace(&mut self.current, next);
                self.full.send(full).await.map_err(|_| Stopped)?;
            }
        }
        Ok(())
    }

    /// A free block: a returned one, a new one while fewer than [`BLOCKS`] exist, or the
    /// next one returned.
    async fn next_block(&mut self) -> Result<Block, Stopped> {
        if let Ok(block) = self.free.try_recv() {
            return Ok(block);
        }
        if self.made < BLOCKS {
            self.made += 1;
            return Ok(Block::new());
        }
        self.free.recv().await.ok_or(Stopped)
    }

    /// Hands on the last block and waits for both threads: bytes written and sha256 (hex).
    pub(super) async fn finish(self) -> std::io::Result<(u64, String)> {
        let Sink {
            full,
            current,
            hasher,
            writer,
            ..
        } = self;
        if current.len > 0 {
            let _ = full.send(current).await; // a stopped thread reports its error below
        }
        drop(full);
        let joined = |e: tokio::task::JoinError| std::io::Error::other(format!("stopped: {e}"));
        let written = writer.await.map_err(joined)?;
        let sha256 = hasher.await.map_err(joined)?;
        Ok((written?, sha256))
    }
}

/// Hashes each block, then passes it to the writer.
fn hash(mut full: Receiver<Block>, hashed: Sender<Block>) -> String {
    let mut hasher = Sha256::new();
    while let Some(block) = full.blocking_recv() {
        hasher.update(block.bytes());
        if hashed.blocking_send(block).is_err() {
            break; // the writer failed
        }
    }
    hex::encode(hasher.finalize())
}

/// Writes each block, then returns it to the free list; bytes written.
fn write(
    mut disk: DiskWriter,
    mut hashed: Receiver<Block>,
    free: Sender<Block>,
) -> std::io::Result<u64> {
    let mut bytes = 0u64;
    while let Some(mut block) = hashed.blocking_recv() {
        disk.write_block(block.bytes())?;
        bytes += block.len as u64;
        block.len = 0;
        let _ = free.try_send(block); // the network side may be done with blocks already
    }
    disk.finish()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Deterministic bytes that differ from block to block.
    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 4099) as u8).collect()
    }

    async fn download_to_file(
        content: &[u8],
        piece: usize,
        direct: bool,
    ) -> (u64, String, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let file = std::fs::File::create(&path).unwrap();
        let mut sink = Sink::start(file, direct);
        for chunk in content.chunks(piece.max(1)) {
            sink.push(chunk).await.unwrap();
        }
        let (bytes, sha256) = sink.finish().await.unwrap();
        let mut written = Vec::new();
        std::fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut written)
            .unwrap();
        (bytes, sha256, written)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_size_arrives_whole_with_its_sha256_direct_or_not() {
        let sizes = [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            BLOCK_BYTES - 1,
            BLOCK_BYTES,
            BLOCK_BYTES + 1,
            (BLOCKS + 2) * BLOCK_BYTES + 12_345,
        ];
        for size in sizes {
            let content = data(size);
            let want = hex::encode(Sha256::digest(&content));
            for (piece, direct) in [(7, true), (16_384, true), (400_000, false), (3 << 20, true)] {
                if piece == 7 && size > BLOCK_BYTES + 1 {
                    continue; // slow, and says nothing more than the other sizes
                }
                let (bytes, sha256, written) = download_to_file(&content, piece, direct).await;
                let case = format!("size {size}, pieces of {piece}, direct {direct}");
                assert_eq!(bytes, size as u64, "{case}");
                assert_eq!(sha256, want, "{case}");
                assert!(written == content, "{case}: the file differs");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_disk_stops_the_download_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro.bin");
        std::fs::write(&path, b"").unwrap();
        let read_only = std::fs::File::open(&path).unwrap();
        let mut sink = Sink::start(read_only, true);
        let content = data((BLOCKS + 4) * BLOCK_BYTES);
        let mut stopped = false;
        for chunk in content.chunks(65_536) {
            if sink.push(chunk).await.is_err() {
                stopped = true;
                break;
            }
        }
        assert!(stopped, "pushing must stop once the writer has failed");
        let err = sink.finish().await.unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            Some(9),
            "EBADF from the read-only file: {err}"
        );
    }

    #[test]
    fn blocks_start_aligned_and_fill_to_their_size() {
        let mut b = Block::new();
        assert_eq!(b.bytes().as_ptr() as usize % ALIGN, 0);
        let big = data(BLOCK_BYTES + 10);
        assert_eq!(b.fill(&big[..5]), 5);
        assert_eq!(b.fill(&big[5..]), BLOCK_BYTES - 5);
        assert!(b.is_full());
        assert_eq!(b.bytes(), &big[..BLOCK_BYTES]);
    }
}
