//! Log writes that bypass the page cache (`O_DIRECT`), block by block.
//!
//! Why: on the benchmark machine, buffered appends with an `fdatasync` per
//! group reached 220–720 MB/s and cost the writer a kernel copy into the page
//! cache (12 % of the gateway's CPU under fan-out load), while `O_DIRECT`
//! writes of the same sizes reached 1.0–1.5 GB/s (BENCHMARKS 6j). The
//! records stay readable from memory (the tail cache) for delivery, so the
//! page cache bought the log nothing but a second copy.
//!
//! `O_DIRECT` wants the buffer address, the file offset and the length
//! aligned to the device's block; [`BLOCK`] (4 KiB) covers 512-byte and
//! 4 KiB devices. So a group is copied into one aligned buffer (a user-space
//! copy, cheaper than the kernel's): first the *tail*, the bytes of the last
//! partial block already in the file, then the group's frames, then zeros up
//! to the next block. It is written at the tail's block, so the file's
//! good bytes are rewritten with the same values (a torn write there leaves
//! them intact) and the padding lands past the good end.
//!
//! The padding makes the file longer than its good part until something cuts
//! it: the writer trims a segment to its good length when sealing it and at
//! close. After a crash, recovery sees the zeros as a torn tail (no frame
//! there has a valid checksum) and truncates them, as it would any torn
//! write. `fdatasync` is unchanged: it flushes the device cache and the
//! file's size through the ordinary handle.
//!
//! A filesystem without `O_DIRECT` support (tmpfs on older kernels) makes
//! the open fail; the writer then logs it once and writes through the page
//! cache as before. `queue.direct_io: false` chooses that path outright.

use std::io::{self, IoSlice};
use std::path::Path;

use super::fs::{FileHandle, Fs, OpenMode};

/// Alignment of every direct write: buffer, offset and length.
pub(crate) const BLOCK: u64 = 4096;

/// A buffer above this is released after its write (a rare huge request
/// should not pin its size for the life of the process).
const KEEP_BUF: usize = 32 << 20;

/// The active segment opened for direct writes, with its tail.
#[derive(Debug)]
pub(crate) struct Direct {
    file: FileHandle,
    /// Scratch space; the aligned window inside it is used.
    buf: Vec<u8>,
    /// The file's bytes from the last block boundary to the good end.
    tail: Vec<u8>,
}

fn floor(n: u64) -> u64 {
    n & !(BLOCK - 1)
}

impl Direct {
    /// Opens `path` for direct writes; `file` (the ordinary handle) supplies
    /// the tail below `good_len`.
    pub(crate) fn open(
        fs: &dyn Fs,
        path: &Path,
        file: &FileHandle,
        good_len: u64,
    ) -> io::Result<Direct> {
        let mut d = Direct {
            file: fs.open(path, OpenMode::Direct)?,
            buf: Vec::new(),
            tail: Vec::new(),
        };
        d.load_tail(file, good_len)?;
        Ok(d)
    }

    /// Rereads the tail after the file was cut back to `good_len`.
    pub(crate) fn load_tail(&mut self, file: &FileHandle, good_len: u64) -> io::Result<()> {
        let start = floor(good_len);
        self.tail.resize((good_len - start) as usize, 0);
        file.read_exact_at(&mut self.tail, start)
    }

    /// Writes `bufs` (`len` bytes) at `good_len`, the file's good end; on
    /// success the good end is `good_len + len`.
    pub(crate) fn write(
        &mut self,
        bufs: &[IoSlice<'_>],
        good_len: u64,
        len: u64,
    ) -> io::Result<()> {
        let start = floor(good_len);
        let head = self.tail.len();
        debug_assert_eq!(start + head as u64, good_len);
        let used = head + len as usize;
        let padded = used.next_multiple_of(BLOCK as usize);
        if self.buf.len() < padded + BLOCK as usize {
            self.buf = vec![0; padded + BLOCK as usize];
        }
        let at = self.buf.as_ptr().align_offset(BLOCK as usize);
        let win = &mut self.buf[at..at + padded];
        win[..head].copy_from_slice(&self.tail);
        let mut pos = head;
        for b in bufs {
            win[pos..pos + b.len()].copy_from_slice(b);
            pos += b.len();
        }
        if pos != used {
            return Err(io::Error::other("direct write: length mismatch"));
        }
        win[used..].fill(0);
        let written = self.file.write_all_at(win, start);
        if written.is_ok() {
            let end = good_len + len;
            let from = (floor(end) - start) as usize;
            self.tail.clear();
            self.tail.extend_from_slice(&win[from..used]);
        }
        if self.buf.len() > KEEP_BUF {
            self.buf = Vec::new();
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::fs::RealFs;

    /// Appends through `Direct` land byte for byte where ordinary appends
    /// would, whatever the alignment of each group, and only zeros follow.
    #[test]
    fn groups_of_any_length_land_in_place() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.seg");
        let fs = RealFs;
        let file = fs.open(&path, OpenMode::Truncate).unwrap();
        file.write_all_at(b"HEADER16HEADER16", 0).unwrap();
        let mut want = b"HEADER16HEADER16".to_vec();
        let mut direct = match Direct::open(&fs, &path, &file, 16) {
            Ok(x) => x,
            // A filesystem without O_DIRECT: the buffered path is the one used.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return,
            Err(e) => panic!("{e}"),
        };
        for (i, n) in [1usize, 4095, 4096, 4097, 10, 8191, 3, 70_000]
            .iter()
            .enumerate()
        {
            let a: Vec<u8> = (0..*n).map(|j| (i * 31 + j) as u8).collect();
            let (x, y) = a.split_at(n / 3);
            direct
                .write(
                    &[IoSlice::new(x), IoSlice::new(y)],
                    want.len() as u64,
                    *n as u64,
                )
                .unwrap();
            want.extend_from_slice(&a);
            let got = std::fs::read(&path).unwrap();
            assert_eq!(got.len() as u64 % BLOCK, 0);
            assert_eq!(&got[..want.len()], &want[..], "group {i}");
            assert!(got[want.len()..].iter().all(|&b| b == 0));
        }
        // Cut back (as after a failed fsync) and go on from there.
        let cut = 5000;
        file.set_len(cut).unwrap();
        want.truncate(cut as usize);
        direct.load_tail(&file, cut).unwrap();
        direct.write(&[IoSlice::new(b"after")], cut, 5).unwrap();
        want.extend_from_slice(b"after");
        let got = std::fs::read(&path).unwrap();
        assert_eq!(&got[..want.len()], &want[..]);
    }
}
