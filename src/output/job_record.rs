//! `job.json`: what a `segment` run was asked — the input, the masks (and their content), the
//! range and the options — so that `--resume` continues that command and no other.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// One `--mask` as given, with its file's content hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskRecord {
    pub frame: Option<usize>,
    pub path: String,
    pub sha256: String,
}

/// A `segment` command, as far as it decides the masks written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The input, its path resolved.
    pub input: String,
    pub masks: Vec<MaskRecord>,
    pub start: Option<usize>,
    pub end: Option<usize>,
    pub max_side: Option<u32>,
    pub reverse: bool,
    pub mattes: bool,
    /// The tracker's settings (model and options), as text.
    pub settings: String,
}

impl MaskRecord {
    pub fn of(frame: Option<usize>, path: &Path) -> Result<MaskRecord> {
        let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
        let hash = Sha256::digest(&bytes);
        Ok(MaskRecord {
            frame,
            path: resolved(path),
            sha256: hash.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }
}

/// A path with links and `..` resolved (as given when it cannot be).
pub fn resolved(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

impl JobRecord {
    /// The record in `dir`, if a run wrote one.
    pub fn read(dir: &Path) -> Result<Option<JobRecord>> {
        let path = dir.join(super::names::JOB);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::format(&path, format!("not a job record: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::read(&path, e)),
        }
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Invalid(e.to_string()))?;
        crate::io::atomic::write_bytes(&dir.join(super::names::JOB), text.as_bytes())
    }

    /// What differs from `other`, in the words of the command line.
    pub fn differences(&self, other: &JobRecord) -> Vec<&'static str> {
        let mut d = Vec::new();
        let checks: [(bool, &'static str); 7] = [
            (self.input != other.input, "the input"),
            (
                self.masks != other.masks,
                "the masks (--mask files, frames or content)",
            ),
            (
                (self.start, self.end) != (other.start, other.end),
                "the range (--start/--end)",
            ),
            (self.max_side != other.max_side, "--max-side"),
            (self.reverse != other.reverse, "--reverse"),
            (self.mattes != other.mattes, "--matte"),
            (
                self.settings != other.settings,
                "the model or tracker options",
            ),
        ];
        for (differs, what) in checks {
            if differs {
                d.push(what);
            }
        }
        d
    }
}
