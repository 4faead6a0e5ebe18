//! A user's files come first: an output folder is locked while a run writes into it, temp files
//! an interrupted run left there are cleared, and no output may be, or overwrite, an input.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The lock file of an output folder being written.
pub const LOCK: &str = ".reuse-vos.lock";

/// Held while a run writes an output folder; released (the lock file removed) when dropped.
/// A lock whose process is gone (a run that was killed) is taken over.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    /// The folder was made for this run: removed again if the run leaves it empty.
    created: Option<PathBuf>,
}

impl OutputLock {
    pub fn acquire(dir: &Path) -> Result<OutputLock> {
        let created = (!dir.exists()).then(|| dir.to_path_buf());
        make_folder(dir)?;
        let path = dir.join(LOCK);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    writeln!(f, "{}", std::process::id()).map_err(|e| Error::write(&path, e))?;
                    return Ok(OutputLock { path, created });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    if owner.is_some_and(process_alive) {
                        return Err(Error::Invalid(format!(
                            "{}: another run (process {}) is writing into this folder (lock file {}); wait for it to finish or choose another output folder",
                            dir.display(),
                            owner.unwrap_or_default(),
                            path.display()
                        )));
                    }
                    // The run that held it is gone: its lock is stale.
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(Error::write(&path, e)),
            }
        }
        Err(Error::Invalid(format!(
            "{}: cannot take the lock file {} (another run keeps making it)",
            dir.display(),
            path.display()
        )))
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = &self.created {
            // Only succeeds when the run wrote nothing there.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Whether process `pid` runs (where the system can tell; elsewhere a lock is assumed held).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Removes the temp files (`<name>.<pid>.tmp`, see [`crate::io::atomic`]) that a killed run
/// left in `dir` and its sub-folders (one level: the mattes' object folders). Call it only while
/// holding the folder's lock: then no other run is writing them.
pub fn remove_stray_temps(dir: &Path) -> usize {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            removed += remove_stray_temps_flat(&path);
        } else if is_temp(&path) && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn remove_stray_temps_flat(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| is_temp(&e.path()) && std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// `name.<digits>.tmp`.
fn is_temp(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.strip_suffix(".tmp")
        .and_then(|rest| rest.rsplit_once('.'))
        .is_some_and(|(stem, pid)| {
            !stem.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Creates the output folder `dir`, saying plainly when the path names a file.
pub fn make_folder(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            // The path (`file` or `file/`) exists but is no folder.
            Error::format(
                dir,
                "is a file, not a folder: the output goes into a folder; choose a new name",
            )
        } else if e.kind() == std::io::ErrorKind::NotADirectory {
            Error::format(dir, "a part of this path is a file, not a folder")
        } else {
            Error::write(dir, e)
        }
    })
}

/// The path with symbolic links and `..` resolved, when it exists.
fn real(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// Whether `a` and `b` name the same existing file or folder.
pub fn same_file(a: &Path, b: &Path) -> bool {
    matches!((real(a), real(b)), (Some(x), Some(y)) if x == y)
}

/// Whether the existing file `file` lies directly in the existing folder `dir`.
pub fn directly_in(file: &Path, dir: &Path) -> bool {
    match (real(file), real(dir)) {
        (Some(f), Some(d)) => f.parent() == Some(d.as_path()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised() {
        assert!(is_temp(Path::new("out/00030.png.1234.tmp")));
        assert!(is_temp(Path::new("stats.json.77.tmp")));
        assert!(!is_temp(Path::new("notes.tmp")));
        assert!(!is_temp(Path::new("a.b.tmp")));
        assert!(!is_temp(Path::new("00030.png")));
    }

    #[test]
    fn a_second_lock_is_refused_and_a_released_one_taken() {
        let dir = std::env::temp_dir().join(format!("rv-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = OutputLock::acquire(&dir).unwrap();
        let err = OutputLock::acquire(&dir).unwrap_err().to_string();
        assert!(err.contains("another run"), "{err}");
        drop(first);
        assert!(
            !dir.exists(),
            "an empty folder made for the run goes with it"
        );
        // A lock left by a process that no longer runs is stale.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(LOCK), "4294967294\n").unwrap();
        let taken = OutputLock::acquire(&dir);
        assert!(taken.is_ok() || !cfg!(target_os = "linux"));
        drop(taken);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
