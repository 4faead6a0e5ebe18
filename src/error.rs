//! The library's error type: every variant names the file (or sequence) it is about, so a
//! user can find and fix the input.

use std::path::PathBuf;

/// An error raised by reuse-vos, naming the input that caused it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid image: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: mask is {got_w}x{got_h} but its frame is {want_w}x{want_h}")]
    SizeMismatch {
        path: PathBuf,
        got_w: u32,
        got_h: u32,
        want_w: u32,
        want_h: u32,
    },
    #[error("{path}: missing (expected {what})")]
    Missing { path: PathBuf, what: String },
    #[error("sequence {sequence}: {reason}")]
    Sequence { sequence: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("engine: {0}")]
    Engine(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Read {
            path: path.into(),
            source,
        }
    }
    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Write {
            path: path.into(),
            source,
        }
    }
    pub fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
    pub fn sequence(sequence: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Sequence {
            sequence: sequence.into(),
            reason: reason.into(),
        }
    }
}
