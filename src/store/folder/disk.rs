//! Writing a download to disk: whole blocks bypass the page cache with direct I/O where the
//! filesystem is a local disk filesystem; everything else goes through the page cache.
//!
//! Why direct I/O: a backup writes far more than anyone will read back soon. Through the page
//! cache, each GiB is first copied into fresh cache pages (on a small VM that copy costs as much
//! as the network and the sha256 together, and it varies run to run with how cold those pages
//! are), then written back later, and it evicts what the machine had cached. With `O_DIRECT`
//! the device reads the block from our buffer, at almost no CPU cost. Like every download it is
//! not fsynced: after a power cut a file may be short or hold zeros, which `backup --verify`
//! finds. Direct I/O is only turned on for blocks that meet its alignment rules
//! ([`ALIGN`]), only on Linux, and only on ext2/3/4, XFS, btrfs and F2FS: not on network or
//! FUSE filesystems (where it means uncached, synchronous round trips) nor on tmpfs. A refusal
//! (`EINVAL`) sends the rest of the file through the page cache.

use std::fs::File;
use std::io::Write;

/// Largest write through the page cache. Smaller writes get smaller page-cache folios; on the
/// 2-core VM of BENCHMARKS.md, 1 GiB written in 64 KiB pieces took 1.1-1.7 s against 2.5-2.7 s
/// in 1 MiB pieces (16,384 writes per GiB cost a few milliseconds of system calls).
const PAGE_CACHE_WRITE: usize = 64 * 1024;

/// Alignment of direct I/O buffers, offsets and lengths: 4096 satisfies the logical block
/// size of every common disk (512 or 4096 bytes).
pub(super) const ALIGN: usize = 4096;

/// How far into a buffer at `address` the first [`ALIGN`]ed byte is.
pub(super) fn align_offset(address: usize) -> usize {
    (ALIGN - address % ALIGN) % ALIGN
}

/// What a [`DiskWriter`] writes to: a file (a fake in tests).
pub(super) trait Target: Write {
    /// Turns direct I/O on if the filesystem is one it is used on; whether it did.
    fn enable_direct(&mut self) -> bool;
    /// Turns direct I/O off again.
    fn clear_direct(&mut self) -> std::io::Result<()>;
}

impl Target for File {
    fn enable_direct(&mut self) -> bool {
        platform::enable_direct(self)
    }

    fn clear_direct(&mut self) -> std::io::Result<()> {
        platform::clear_direct(self)
    }
}

/// How a download's file is written: see the module documentation.
#[derive(Debug)]
pub(super) struct DiskWriter<T: Target = File> {
    file: T,
    /// `O_DIRECT` is set on the file now.
    direct: bool,
    /// Direct I/O may still be tried (allowed, and not refused so far).
    may_go_direct: bool,
}

impl<T: Target> DiskWriter<T> {
    /// Writes to `file` (at its current position). `allow_direct: false` keeps every write in
    /// the page cache.
    pub(super) fn new(file: T, allow_direct: bool) -> DiskWriter<T> {
        DiskWriter {
            file,
            direct: false,
            may_go_direct: allow_direct,
        }
    }

    /// Writes `data`, whose start in memory and in the file are [`ALIGN`]ed: the longest
    /// aligned prefix may go direct, the rest goes through the page cache.
    pub(super) fn write_block(&mut self, data: &[u8]) -> std::io::Result<()> {
        let whole = data.len() - data.len() % ALIGN;
        let (aligned, tail) = data.split_at(whole);
        if !aligned.is_empty() && self.may_go_direct && !self.direct {
            self.direct = self.file.enable_direct();
            self.may_go_direct = self.direct;
            if self.direct {
                tracing::debug!("download: writing whole blocks with direct I/O");
            }
        }
        if self.direct {
            self.direct_write(aligned)?;
        } else {
            self.buffered(aligned)?;
        }
        if !tail.is_empty() {
            self.stop_direct()?;
            self.buffered(tail)?;
        }
        Ok(())
    }

    /// Writes `data` with `O_DIRECT`; if the kernel refuses (EINVAL: the device wants another
    /// alignment, or a short write left the rest unaligned), the rest goes through the page
    /// cache and direct I/O is not tried again for this file.
    fn direct_write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            match self.file.write(data) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if platform::is_refusal(&e) => {
                    tracing::debug!("download: direct I/O refused ({e}); using the page cache");
                    self.stop_direct()?;
                    self.may_go_direct = false;
                    return self.buffered(data);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn buffered(&mut self, data: &[u8]) -> std::io::Result<()> {
        data.chunks(PAGE_CACHE_WRITE)
            .try_for_each(|piece| self.file.write_all(piece))
    }

    /// Whether the last block went straight to the device.
    #[cfg(test)]
    pub(super) fn is_direct(&self) -> bool {
        self.direct
    }

    /// Leaves the file as it was opened (page-cache writes) and flushes.
    pub(super) fn finish(mut self) -> std::io::Result<()> {
        self.stop_direct()?;
        self.file.flush()
    }

    fn stop_direct(&mut self) -> std::io::Result<()> {
        if self.direct {
            self.file.clear_direct()?;
            self.direct = false;
        }
        Ok(())
    }
}

impl<T: Target> Drop for DiskWriter<T> {
    /// A writer stopped by an error still leaves the file in page-cache mode: the file is shared
    /// with the caller, and a retry's unaligned writes would otherwise be refused.
    fn drop(&mut self) {
        let _ = self.stop_direct();
    }
}

#[cfg(target_os = "linux")]
mod platform {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, fstatfs, OFlags};
    use std::fs::File;

    /// Filesystems where direct I/O goes to a local block device (`statfs.f_type`).
    const LOCAL_DISK: [u32; 4] = [
        0xEF53,      // ext2, ext3, ext4
        0x5846_5342, // XFS
        0x9123_683E, // btrfs
        0xF2F5_2010, // F2FS
    ];

    /// Turns `O_DIRECT` on for `file` if its filesystem is a local disk one; whether it did.
    pub(super) fn enable_direct(file: &File) -> bool {
        // f_type is a 32-bit magic number in a field whose width varies by architecture.
        let local = fstatfs(file).is_ok_and(|s| LOCAL_DISK.contains(&(s.f_type as u32)));
        local && fcntl_getfl(file).is_ok_and(|f| fcntl_setfl(file, f | OFlags::DIRECT).is_ok())
    }

    /// Turns `O_DIRECT` off again.
    pub(super) fn clear_direct(file: &File) -> std::io::Result<()> {
        let flags = fcntl_getfl(file)?;
        fcntl_setfl(file, flags - OFlags::DIRECT)?;
        Ok(())
    }

    /// A direct write refused for its alignment.
    pub(super) fn is_refusal(e: &std::io::Error) -> bool {
        e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use std::fs::File;

    pub(super) fn enable_direct(_file: &File) -> bool {
        false
    }

    pub(super) fn clear_direct(_file: &File) -> std::io::Result<()> {
        Ok(())
    }

    pub(super) fn is_refusal(_e: &std::io::Error) -> bool {
        false
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    /// `O_DIRECT` as the kernel reports it in `/proc/self/fdinfo`, independent of our code.
    fn kernel_says_direct(file: &File) -> bool {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd()))
            .expect("fdinfo");
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|v| u32::from_str_radix(v.trim(), 8).expect("octal flags"))
            .expect("flags line");
        flags & rustix::fs::OFlags::DIRECT.bits() != 0
    }

    /// Whether `dir` is on ext2/3/4, XFS, btrfs or F2FS, read from `/proc/self/mountinfo`
    /// (the mount with the longest mount point above `dir`), not from the code under test.
    pub(crate) fn on_local_disk(dir: &Path) -> bool {
        let dir = dir.canonicalize().unwrap();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mut best: Option<(usize, String)> = None;
        for line in info.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(dash) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (mount, fstype) = (fields[4], fields[dash + 1]);
            if dir.starts_with(mount) && best.as_ref().is_none_or(|(n, _)| mount.len() >= *n) {
                best = Some((mount.len(), fstype.to_string()));
            }
        }
        let fstype = best.map(|(_, t)| t).unwrap_or_default();
        ["ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs"].contains(&fstype.as_str())
    }

    /// `len` bytes at an ALIGNed address, plus `misalign` (and the buffer that holds them).
    fn aligned(len: usize, misalign: usize) -> (Vec<u8>, usize) {
        let buf: Vec<u8> = (0..len + 2 * ALIGN).map(|i| (i % 251) as u8).collect();
        let start = align_offset(buf.as_ptr() as usize) + misalign;
        (buf, start)
    }

    #[test]
    fn whole_blocks_go_direct_on_a_local_disk_and_the_tail_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let local = on_local_disk(dir.path());
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let probe = file.try_clone().unwrap();
        let (buf, at) = aligned(3 * ALIGN, 0);
        let mut w = DiskWriter::new(file, true);
        w.write_block(&buf[at..at + 2 * ALIGN]).unwrap();
        assert_eq!(w.is_direct(), local, "on a local disk filesystem: {local}");
        assert_eq!(kernel_says_direct(&probe), local);
        w.write_block(&buf[at + 2 * ALIGN..at + 2 * ALIGN + 100])
            .unwrap();
        assert!(
            !w.is_direct() && !kernel_says_direct(&probe),
            "the tail is buffered"
        );
        w.finish().unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            &buf[at..at + 2 * ALIGN + 100]
        );
    }

    #[test]
    fn a_refused_direct_write_is_redone_through_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let probe = file.try_clone().unwrap();
        let (buf, at) = aligned(2 * ALIGN, 1); // memory one byte off: direct I/O refuses it
                                               // On a local disk filesystem, direct I/O is turned on and the kernel refuses the
                                               // write (EINVAL); elsewhere it is never turned on. Either way: page cache from here.
        let mut w = DiskWriter::new(file, true);
        w.write_block(&buf[at..at + 2 * ALIGN]).unwrap();
        assert!(!w.is_direct(), "refused, so back to the page cache");
        assert!(!w.may_go_direct, "and not tried again");
        w.write_block(&buf[at + 2 * ALIGN..at + 2 * ALIGN + 7])
            .unwrap();
        assert!(!w.is_direct() && !kernel_says_direct(&probe));
        w.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), &buf[at..at + 2 * ALIGN + 7]);
    }

    #[test]
    fn a_writer_dropped_midway_leaves_the_file_in_page_cache_mode() {
        let dir = tempfile::tempdir().unwrap();
        let local = on_local_disk(dir.path());
        let file = File::create(dir.path().join("f")).unwrap();
        let probe = file.try_clone().unwrap();
        let (buf, at) = aligned(ALIGN, 0);
        let mut w = DiskWriter::new(file, true);
        w.write_block(&buf[at..at + ALIGN]).unwrap();
        assert_eq!(kernel_says_direct(&probe), local);
        drop(w);
        assert!(
            !kernel_says_direct(&probe),
            "a retry may write unaligned bytes here"
        );
    }

    #[test]
    fn direct_io_stays_off_when_not_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        let probe = file.try_clone().unwrap();
        let (buf, at) = aligned(ALIGN, 0);
        let mut w = DiskWriter::new(file, false);
        w.write_block(&buf[at..at + ALIGN]).unwrap();
        assert!(!w.is_direct() && !kernel_says_direct(&probe));
    }

    /// A device that takes direct writes of whole ALIGNed blocks only, and cuts the first
    /// direct write short after `short` bytes.
    struct ShortDevice {
        written: Vec<u8>,
        direct: bool,
        short: Option<usize>,
    }

    impl Write for ShortDevice {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            let einval = std::io::Error::from_raw_os_error(rustix::io::Errno::INVAL.raw_os_error());
            if self.direct
                && !(data.len().is_multiple_of(ALIGN) && self.written.len().is_multiple_of(ALIGN))
            {
                return Err(einval);
            }
            let n = match self.short.take() {
                Some(short) if self.direct => short.min(data.len()),
                other => {
                    self.short = other;
                    data.len()
                }
            };
            self.written.extend_from_slice(&data[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Target for ShortDevice {
        fn enable_direct(&mut self) -> bool {
            self.direct = true;
            true
        }

        fn clear_direct(&mut self) -> std::io::Result<()> {
            self.direct = false;
            Ok(())
        }
    }

    #[test]
    fn a_short_direct_write_loses_and_repeats_nothing() {
        for short in [1_000, ALIGN] {
            let data: Vec<u8> = (0..2 * (1 << 20) + 10).map(|i| (i % 253) as u8).collect();
            let device = ShortDevice {
                written: Vec::new(),
                direct: false,
                short: Some(short),
            };
            let mut w = DiskWriter::new(device, true);
            w.write_block(&data).unwrap();
            let expect_direct_after_aligned_short = short % ALIGN == 0;
            assert!(!w.is_direct(), "the tail always leaves direct I/O");
            assert_eq!(
                w.may_go_direct, expect_direct_after_aligned_short,
                "short {short}"
            );
            assert!(
                w.file.written == data,
                "short write of {short}: the bytes differ"
            );
        }
    }
}
