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

/// Whether ONNX Runtime tests must run even when its library cannot be loaded: under CI
/// (`CI=true`, where `.ci/run` installs it) or with REUSE_VOS_REQUIRE_ORT=1. Elsewhere they are
/// skipped with a message, so the test command works on a machine without the library.
pub fn ort_required() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set("REUSE_VOS_REQUIRE_ORT")
}
