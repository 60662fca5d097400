//! The filesystem seam of the log: every file operation the log performs goes
//! through [`Fs`] / [`FsFile`], so tests can inject faults (a full disk, a
//! failing fsync, a write torn by a crash) that a real disk will not produce
//! on demand.
//!
//! [`RealFs`] is `std::fs` with positional I/O; it creates files with mode
//! 0600 and directories with mode 0700 (the log holds client credentials).
//! [`FaultyFs`] wraps it and fails chosen operations on files whose name ends
//! with a chosen suffix (segments by default), see its methods.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// Mode of every file the log creates.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory the log creates.
pub const DIR_MODE: u32 = 0o700;

/// How [`Fs::open`] opens a file (every mode can read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    Write,
    /// Read and write; created (mode 0600) if missing, kept otherwise.
    Create,
    /// Read and write; created (mode 0600) if missing, emptied otherwise.
    Truncate,
    /// Read and write, bypassing the page cache (`O_DIRECT`); the file must
    /// exist. Buffers, offsets and lengths must be block-aligned
    /// ([`super::direct`]). [`FaultyFs`] opens it as `Write`, so its faults
    /// (a torn write at any byte) apply to the direct path too.
    Direct,
}

/// One open file: positional reads and writes, no shared cursor.
pub trait FsFile: Send + Sync + Debug {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// May write fewer bytes than given (like `pwrite`).
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
    /// `fsync`.
    fn sync_all(&self) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn size(&self) -> io::Result<u64>;
    /// Takes an exclusive advisory lock without blocking; `Ok(false)` when
    /// another open file (this process or another) holds it. Released when
    /// the file is closed.
    fn try_lock(&self) -> io::Result<bool>;

    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes all of `bufs`, in order, at `offset`. The default joins them
    /// and calls [`FsFile::write_all_at`] (so a fault counts one call per
    /// group); [`RealFile`] writes them without joining (`writev`).
    fn write_all_vectored_at(&self, bufs: &[IoSlice<'_>], offset: u64) -> io::Result<()> {
        let joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        self.write_all_at(&joined, offset)
    }

    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_at(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A shared open file (scanners and the writer share handles).
pub type FileHandle = Arc<dyn FsFile>;

/// The directory-level operations the log needs.
pub trait Fs: Send + Sync + Debug {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<FileHandle>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries in `dir` (not sorted).
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates `dir` and missing parents with mode 0700.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// fsyncs a directory so creates, renames and deletes in it are durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// Reads a whole (small) file.
pub(crate) fn read_file(fs: &dyn Fs, path: &Path) -> io::Result<Vec<u8>> {
    let f = fs.open(path, OpenMode::Read)?;
    let len = usize::try_from(f.size()?).map_err(io::Error::other)?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

/// Writes `body` to `path` atomically: a temp file (`<path>.tmp`) is written
/// and fsynced, then renamed over `path`. The caller fsyncs the directory.
pub(crate) fn write_atomic(fs: &dyn Fs, path: &Path, body: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let f = fs.open(&tmp, OpenMode::Truncate)?;
    f.write_all_at(body, 0)?;
    f.sync_all()?;
    drop(f);
    fs.rename(&tmp, path)
}

/// `std::fs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

/// A `std::fs::File` behind [`FsFile`].
#[derive(Debug)]
pub struct RealFile(pub File);

impl FsFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.0.write_at(buf, offset)
    }
    /// `lseek` + `writev` (std has no stable `pwritev`). Only the log
    /// writer thread writes a segment, and every read is positional, so the
    /// shared file position is never contended.
    fn write_all_vectored_at(&self, bufs: &[IoSlice<'_>], offset: u64) -> io::Result<()> {
        let mut f = &self.0;
        f.seek(SeekFrom::Start(offset))?;
        let mut owned: Vec<IoSlice<'_>> = bufs.iter().filter(|b| !b.is_empty()).copied().collect();
        let mut rest = &mut owned[..];
        while !rest.is_empty() {
            match f.write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn try_lock(&self) -> io::Result<bool> {
        match self.0.try_lock() {
            Ok(()) => Ok(true),
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

impl RealFs {
    fn open_file(path: &Path, mode: OpenMode) -> io::Result<RealFile> {
        let mut o = OpenOptions::new();
        o.read(true).mode(FILE_MODE);
        match mode {
            OpenMode::Read => {}
            OpenMode::Write => {
                o.write(true);
            }
            OpenMode::Create => {
                o.write(true).create(true);
            }
            OpenMode::Truncate => {
                o.write(true).create(true).truncate(true);
            }
            OpenMode::Direct => {
                o.write(true).custom_flags(libc::O_DIRECT);
            }
        }
        Ok(RealFile(o.open(path)?))
    }
}

impl Fs for RealFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<FileHandle> {
        Ok(Arc::new(RealFs::open_file(path, mode)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for ent in fs::read_dir(dir)? {
            out.push(ent?.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// What [`FaultyFs`] is set to do.
#[derive(Debug, Default)]
struct Faults {
    /// (successful writes left before failing, errno): then every write fails.
    write: Option<(u64, i32)>,
    /// Same for `sync_data` / `sync_all`.
    sync: Option<(u64, i32)>,
    /// (writes left, bytes kept): that write is torn, then the fs is crashed.
    tear: Option<(u64, usize)>,
    /// After a torn write every mutating operation fails with EIO.
    crashed: bool,
    /// `OpenMode::Direct` fails with EINVAL, as on a filesystem without
    /// `O_DIRECT` support.
    no_direct: bool,
    /// The next write to a target fails with this errno, writing nothing;
    /// later writes succeed.
    once: Option<i32>,
    writes: u64,
    syncs: u64,
}

/// Linux errno values tests pass to [`FaultyFs`].
pub const ENOSPC: i32 = 28;
pub const EINVAL: i32 = 22;
pub const EIO: i32 = 5;

/// A [`RealFs`] that fails on command; for tests. Faults hit only files
/// whose name ends with the suffix given to [`FaultyFs::new`], except that a
/// crashed fs (after [`FaultyFs::tear_write`]) fails every mutation.
#[derive(Debug, Clone)]
pub struct FaultyFs {
    suffix: String,
    faults: Arc<Mutex<Faults>>,
}

/// A file opened through [`FaultyFs`].
#[derive(Debug)]
struct FaultyFile {
    inner: RealFile,
    target: bool,
    faults: Arc<Mutex<Faults>>,
}

fn lock(f: &Mutex<Faults>) -> MutexGuard<'_, Faults> {
    f.lock().unwrap_or_else(|e| e.into_inner())
}

fn crashed_err() -> io::Error {
    io::Error::from_raw_os_error(EIO)
}

impl FaultyFs {
    /// Faults apply to files whose name ends with `suffix` (e.g. ".seg").
    pub fn new(suffix: &str) -> Arc<FaultyFs> {
        Arc::new(FaultyFs {
            suffix: suffix.to_string(),
            faults: Arc::default(),
        })
    }

    /// After `after` more successful writes, every write stores the first
    /// half of its buffer (a short write, as a filling disk does) and then
    /// fails with `errno`, until [`FaultyFs::clear`].
    pub fn fail_writes(&self, after: u64, errno: i32) {
        lock(&self.faults).write = Some((after, errno));
    }

    /// After `after` more successful syncs, every sync fails with `errno`
    /// until [`FaultyFs::clear`].
    pub fn fail_syncs(&self, after: u64, errno: i32) {
        lock(&self.faults).sync = Some((after, errno));
    }

    /// After `after` more successful writes, one write stores only its first
    /// `keep` bytes and fails with EIO; from then on the fs behaves like a
    /// crashed machine: every write, sync, truncate, rename and delete fails
    /// with EIO. Drop the log and reopen it (with any fs) to "reboot".
    pub fn tear_write(&self, after: u64, keep: usize) {
        lock(&self.faults).tear = Some((after, keep));
    }

    /// Disarms every fault (a crashed fs stays crashed).
    /// Fails the next write to a target file with `errno`, writing nothing.
    pub fn fail_next_write(&self, errno: i32) {
        lock(&self.faults).once = Some(errno);
    }

    /// Makes opening for direct writes fail with EINVAL from now on.
    pub fn refuse_direct(&self) {
        lock(&self.faults).no_direct = true;
    }

    pub fn clear(&self) {
        let mut f = lock(&self.faults);
        f.write = None;
        f.sync = None;
        f.tear = None;
    }

    /// Writes / syncs attempted on target files so far.
    pub fn counts(&self) -> (u64, u64) {
        let f = lock(&self.faults);
        (f.writes, f.syncs)
    }

    fn check_crashed(&self) -> io::Result<()> {
        if lock(&self.faults).crashed {
            return Err(crashed_err());
        }
        Ok(())
    }
}

/// Counts down an armed fault; true once it fires.
fn fires(countdown: &mut u64) -> bool {
    if *countdown == 0 {
        return true;
    }
    *countdown -= 1;
    false
}

impl FaultyFile {
    fn sync_fault(&self) -> io::Result<()> {
        let mut f = lock(&self.faults);
        if f.crashed {
            return Err(crashed_err());
        }
        if !self.target {
            return Ok(());
        }
        f.syncs += 1;
        if let Some((left, errno)) = f.sync.as_mut()
            && fires(left)
        {
            return Err(io::Error::from_raw_os_error(*errno));
        }
        Ok(())
    }
}

impl FsFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let mut f = lock(&self.faults);
        if f.crashed {
            return Err(crashed_err());
        }
        if !self.target {
            return self.inner.write_at(buf, offset);
        }
        f.writes += 1;
        if let Some((left, keep)) = f.tear.as_mut()
            && fires(left)
        {
            let keep = (*keep).min(buf.len());
            f.tear = None;
            f.crashed = true;
            self.inner.write_all_at(&buf[..keep], offset)?;
            return Err(crashed_err());
        }
        if let Some(errno) = f.once.take() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        if let Some((left, errno)) = f.write.as_mut()
            && fires(left)
        {
            let errno = *errno;
            self.inner.write_all_at(&buf[..buf.len() / 2], offset)?;
            return Err(io::Error::from_raw_os_error(errno));
        }
        // Whole buffer in one go so a countdown counts calls, not chunks.
        self.inner.write_all_at(buf, offset)?;
        Ok(buf.len())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.sync_fault()?;
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.sync_fault()?;
        self.inner.sync_all()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        if lock(&self.faults).crashed {
            return Err(crashed_err());
        }
        self.inner.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn try_lock(&self) -> io::Result<bool> {
        self.inner.try_lock()
    }
}

impl Fs for FaultyFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<FileHandle> {
        if mode != OpenMode::Read {
            self.check_crashed()?;
        }
        if mode == OpenMode::Direct && lock(&self.faults).no_direct {
            return Err(io::Error::from_raw_os_error(EINVAL));
        }
        let target = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(&self.suffix));
        let mode = match mode {
            OpenMode::Direct => OpenMode::Write,
            m => m,
        };
        Ok(Arc::new(FaultyFile {
            inner: RealFs::open_file(path, mode)?,
            target,
            faults: self.faults.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check_crashed()?;
        RealFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check_crashed()?;
        RealFs.remove_file(path)
    }
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        RealFs.read_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.check_crashed()?;
        RealFs.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check_crashed()?;
        RealFs.sync_dir(dir)
    }
}
