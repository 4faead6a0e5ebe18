//! Paths into `../shared`, which sits beside the repository.
#![allow(dead_code)]

use reuse_vos::io::{Frame, Mask};
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

/// A DAVIS object cut out, scaled to `scale`, pasted at `(x, y)` onto `background`; the frame
/// and its mask.
pub fn paste(
    object: &Frame,
    mask: &Mask,
    scale: f32,
    background: &Frame,
    (x0, y0): (i64, i64),
) -> (Frame, Mask) {
    let mut out = background.clone();
    let mut m = Mask::new(background.width, background.height);
    let (w, h) = (
        (object.width as f32 * scale) as i64,
        (object.height as f32 * scale) as i64,
    );
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = ((x as f32 / scale) as u32, (y as f32 / scale) as u32);
            let (tx, ty) = (x0 + x, y0 + y);
            let inside =
                tx >= 0 && ty >= 0 && tx < background.width as i64 && ty < background.height as i64;
            if !inside || mask.ids[(sy * mask.width + sx) as usize] == 0 {
                continue;
            }
            let (tx, ty) = (tx as usize, ty as usize);
            let t = ty * background.width as usize + tx;
            out.rgb[3 * t..3 * t + 3].copy_from_slice(&object.pixel(sx, sy));
            m.ids[t] = 1;
        }
    }
    (out, m)
}

/// `reuse-vos segment <frames> --mask <mask> --out <out> <extra...>`, run to its end.
pub fn segment(
    frames: &std::path::Path,
    mask: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    std::process::Command::new(bin())
        .arg("segment")
        .arg(frames)
        .arg("--mask")
        .arg(mask)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run reuse-vos")
}
