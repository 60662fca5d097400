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
//! to the next block, in pieces of at most 4 MiB (so the buffer stays that
//! small). It is written at the tail's block, so the file's
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
//! cache as before. A file that opens but refuses a direct write with
//! `EINVAL` (a device block above 4 KiB) gets the same fallback, from that
//! group on, after its padding is cut off. `queue.direct_io: false` chooses
//! the page cache outright.

use std::io::{self, IoSlice};
use std::path::Path;

use super::fs::{FileHandle, Fs, OpenMode};

/// Alignment of every direct write: buffer, offset and length.
pub(crate) const BLOCK: u64 = 4096;

/// The most one direct write takes; a bigger group is written in several,
/// so the aligned buffer (allocated once) stays this small.
const CHUNK: usize = 4 << 20;

/// The active segment opened for direct writes, with its tail.
#[derive(Debug)]
pub(crate) struct Direct {
    file: FileHandle,
    /// Scratch space, allocated at the first write; the aligned window of
    /// [`CHUNK`] bytes inside it is used.
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

    /// Writes `bufs` (`len` bytes) at `good_len`, the file's good end, in
    /// aligned writes of up to [`CHUNK`]; on success the good end is
    /// `good_len + len`. A failure part-way leaves a torn tail past the
    /// good end, which the caller cuts back (and rereads the tail).
    pub(crate) fn write(
        &mut self,
        bufs: &[IoSlice<'_>],
        good_len: u64,
        len: u64,
    ) -> io::Result<()> {
        let mut at = floor(good_len);
        if at + self.tail.len() as u64 != good_len
            || bufs.iter().map(|b| b.len() as u64).sum::<u64>() != len
        {
            return Err(io::Error::other("direct write: length mismatch"));
        }
        if self.buf.is_empty() {
            self.buf = vec![0; CHUNK + BLOCK as usize];
        }
        let off = self.buf.as_ptr().align_offset(BLOCK as usize);
        let win = &mut self.buf[off..off + CHUNK];
        let mut fill = self.tail.len();
        win[..fill].copy_from_slice(&self.tail);
        for b in bufs {
            let mut b: &[u8] = b;
            while !b.is_empty() {
                let n = b.len().min(CHUNK - fill);
                win[fill..fill + n].copy_from_slice(&b[..n]);
                fill += n;
                b = &b[n..];
                if fill == CHUNK {
                    self.file.write_all_at(win, at)?;
                    at += CHUNK as u64;
                    fill = 0;
                }
            }
        }
        let padded = fill.next_multiple_of(BLOCK as usize);
        win[fill..padded].fill(0);
        if padded > 0 {
            self.file.write_all_at(&win[..padded], at)?;
        }
        let from = floor(fill as u64) as usize;
        self.tail.clear();
        self.tail.extend_from_slice(&win[from..fill]);
        Ok(())
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
