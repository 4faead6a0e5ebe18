//! Paths into `../shared`, which sits beside the repository.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

pub fn davis2016() -> PathBuf {
    shared().join("data/davis2016-train")
}

pub fn metric_fixtures() -> PathBuf {
    shared().join("fixtures/davis-metrics")
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reuse-vos"))
}

/// A fresh empty temp folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reuse-vos-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
