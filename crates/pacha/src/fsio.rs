//! Crash-safe file writes: a file is written under a temporary name in the same
//! directory tree, flushed to disk, renamed into place, and the directory holding it
//! flushed too. A reader sees the old file or the new one, never a mix; a process
//! killed half-way leaves only a temporary file, which `gc` removes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, ErrorKind};

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn io_err(path: &Path, e: &io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("{}: {e}", path.display()))
}

/// A fresh temporary path under `tmp_dir` (unique per process and call).
pub fn temp_path(tmp_dir: &Path, tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    tmp_dir.join(format!("{tag}.{}.{n}.tmp", std::process::id()))
}

pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, &e))
}

/// Create `path` with `bytes`, atomically: temp file, fsync, rename, fsync the directory.
pub fn write_atomic(tmp_dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = temp_path(tmp_dir, "write");
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, &e))?;
        f.write_all(bytes).map_err(|e| io_err(&tmp, &e))?;
        f.sync_all().map_err(|e| io_err(&tmp, &e))?;
        drop(f);
        publish(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Move a flushed temporary file into place and flush the directory entry.
pub fn publish(tmp: &Path, path: &Path) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_err(dir, &e))?;
    fs::rename(tmp, path).map_err(|e| io_err(path, &e))?;
    sync_dir(dir)
}
