//! Tells the tests which optional tools this machine had when they were built, so a test that
//! needs one is reported `ignored` with the reason (visible in `cargo test`'s summary) instead of
//! passing without having run. The library itself does not depend on these cfgs. Under `CI=true`
//! nothing is ignored: a missing tool fails the tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn set(key: &str) -> bool {
    std::env::var(key).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// ffmpeg as the library finds it: `$REUSE_VOS_FFMPEG`, else `ffmpeg` on PATH.
fn have_ffmpeg() -> bool {
    let program = std::env::var("REUSE_VOS_FFMPEG").unwrap_or_else(|_| "ffmpeg".into());
    runs(&program, &["-version"])
}

/// ONNX Runtime is usable when a library is already somewhere the engine looks, or when the
/// engine may install the pinned wheel with `python3 -m pip` (src/engine/ort/fetch.rs).
fn have_ort() -> bool {
    if std::env::var_os("ORT_DYLIB_PATH").is_some() {
        return true;
    }
    let cache = std::env::var_os("REUSE_VOS_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("reuse-vos")))
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/reuse-vos")));
    if cache.is_some_and(|c| c.join("onnxruntime-1.31.1").is_dir()) {
        return true;
    }
    if runs("python3", &["-c", "import onnxruntime"]) {
        return true;
    }
    !set("REUSE_VOS_NO_FETCH") && runs("python3", &["-m", "pip", "--version"])
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_ffmpeg)");
    println!("cargo::rustc-check-cfg=cfg(no_ort)");
    for key in [
        "PATH",
        "REUSE_VOS_FFMPEG",
        "ORT_DYLIB_PATH",
        "REUSE_VOS_CACHE",
        "REUSE_VOS_NO_FETCH",
        "XDG_CACHE_HOME",
        "CI",
        "REUSE_VOS_REQUIRE_ORT",
    ] {
        println!("cargo::rerun-if-env-changed={key}");
    }
    println!("cargo::rerun-if-changed=build.rs");
    // Installing ffmpeg or python packages touches these folders; re-check then.
    for dir in ["/usr/bin", "/usr/local/bin"] {
        if Path::new(dir).is_dir() {
            println!("cargo::rerun-if-changed={dir}");
        }
    }
    // Under CI both are required: the tests then run and fail loudly instead of being ignored.
    let ci = set("CI");
    if !ci && !have_ffmpeg() {
        println!("cargo::rustc-cfg=no_ffmpeg");
        println!("cargo::warning=ffmpeg not found: the video-file tests will be reported ignored");
    }
    if !ci && !set("REUSE_VOS_REQUIRE_ORT") && !have_ort() {
        println!("cargo::rustc-cfg=no_ort");
        println!(
            "cargo::warning=ONNX Runtime not found and not installable (no python3 -m pip): its tests will be reported ignored"
        );
    }
}
