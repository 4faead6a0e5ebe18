//! Bad input gives a clear error naming the file, never a panic or a half-written output.

mod common;

use reuse_vos::io::{Dataset, DatasetKind, Frame, Mask};
use reuse_vos::metrics::{EvalOptions, evaluate};
use std::process::Command;

fn bear_jpeg() -> std::path::PathBuf {
    common::davis2016().join("JPEGImages/480p/bear/00000.jpg")
}

#[test]
fn frames_decode_and_a_truncated_jpeg_is_an_error_naming_it() {
    let frame = Frame::load(&bear_jpeg()).unwrap();
    assert_eq!((frame.width, frame.height), (854, 480));
    let dir = common::temp_dir("truncated");
    let bytes = std::fs::read(bear_jpeg()).unwrap();
    let bad = dir.join("00000.jpg");
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let err = match Frame::load(&bad) {
        Ok(_) => panic!("a truncated JPEG decoded without error"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("00000.jpg"), "{err}");
    let missing = dir.join("nope.jpg");
    let err = Frame::load(&missing).expect_err("missing file").to_string();
    assert!(err.contains("nope.jpg"), "{err}");
}

#[test]
fn an_rgb_png_is_refused_where_ids_are_needed() {
    let dir = common::temp_dir("rgb-mask");
    let path = dir.join("00000.png");
    image::RgbImage::from_pixel(4, 3, image::Rgb([128, 0, 0]))
        .save(&path)
        .unwrap();
    let err = Mask::read_ids(&path).expect_err("RGB mask").to_string();
    assert!(
        err.contains("00000.png") && err.contains("RGB PNG") && err.contains("palette"),
        "{err}"
    );
    // A 16-bit grey mask is told what it is, not that it has colours.
    let grey16 = dir.join("grey16.png");
    image::ImageBuffer::<image::Luma<u16>, _>::from_pixel(4, 3, image::Luma([65535u16]))
        .save(&grey16)
        .unwrap();
    let err = Mask::read_ids(&grey16)
        .expect_err("16-bit mask")
        .to_string();
    assert!(
        err.contains("grey16.png") && err.contains("16-bit grey") && err.contains("8-bit grey"),
        "{err}"
    );
}

#[test]
fn davis2016_grey_and_grey_alpha_masks_read_as_one_object() {
    let ann = common::davis2016().join("Annotations/480p/bear");
    // 00000 is plain grey, 00077 grey+alpha: both give one object of the same kind.
    for f in ["00000.png", "00077.png"] {
        let m = Mask::read_binary(&ann.join(f)).unwrap();
        assert_eq!((m.width, m.height), (854, 480));
        assert_eq!(m.object_ids(), vec![1], "{f}");
        assert!(m.area(1) > 10_000, "{f}");
    }
}

/// A results folder holding GT copies for `bear`, with one file replaced by `bad`.
fn results_with(name: &str, bad: impl FnOnce(&std::path::Path)) -> std::path::PathBuf {
    let dir = common::temp_dir(name);
    let src = common::metric_fixtures().join("results/gt/bear");
    let dst = dir.join("bear");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    bad(&dst);
    dir
}

fn eval_bear(results: std::path::PathBuf) -> String {
    let root = common::metric_fixtures().join("gt");
    let ds = Dataset::open(
        &root,
        DatasetKind::Davis2017,
        None,
        Some(&["bear".to_string()]),
    )
    .unwrap();
    evaluate(&ds, &EvalOptions { results }, None)
        .expect_err("must fail")
        .to_string()
}

#[test]
fn a_result_of_the_wrong_size_or_missing_is_an_error_naming_the_file() {
    let results = results_with("wrong-size", |d| {
        Mask::new(10, 10).save(&d.join("00005.png")).unwrap();
    });
    let err = eval_bear(results);
    assert!(err.contains("00005.png") && err.contains("10x10"), "{err}");

    let results = results_with("missing", |d| {
        std::fs::remove_file(d.join("00007.png")).unwrap()
    });
    let err = eval_bear(results);
    assert!(
        err.contains("00007.png") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn cli_refuses_a_bad_image_without_writing_output() {
    let dir = common::temp_dir("cli-bad-image");
    let bad = dir.join("frame.jpg");
    std::fs::write(&bad, b"not a jpeg").unwrap();
    let out = dir.join("features.safetensors");
    let run = Command::new(common::bin())
        .args(["inspect", "features"])
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .args(["--engine", "burn"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("frame.jpg") && err.starts_with("error:"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temp files left"
    );
}

fn fails_saying<S: AsRef<std::ffi::OsStr>>(args: &[S], words: &[&str]) {
    let run = Command::new(common::bin()).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && !err.contains("panicked"), "{err}");
    for w in words {
        assert!(err.contains(w), "expected {w:?} in: {err}");
    }
}

#[test]
fn unclear_cases_get_messages_that_say_what_is_wrong() {
    let dir = common::temp_dir("messages");
    let frames = common::davis2016().join("JPEGImages/480p/bear");
    let mask = common::davis2016().join("Annotations/480p/bear/00000.png");
    let seg = |out: &std::path::Path, extra: &[&str]| {
        let mut a: Vec<std::ffi::OsString> = vec![
            "segment".into(),
            frames.clone().into(),
            "--mask".into(),
            mask.clone().into(),
            "--out".into(),
            out.into(),
            "--max-side".into(),
            "64".into(),
        ];
        a.extend(extra.iter().map(|s| s.into()));
        a
    };
    // `--out file/`: a file where a folder is wanted.
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let slash = std::path::PathBuf::from(format!("{}/", file.display()));
    fails_saying(
        &seg(&slash, &["--end", "2"]),
        &["a-file", "is a file, not a folder"],
    );
    fails_saying(
        &seg(&file.join("sub"), &["--end", "2"]),
        &["a part of this path is a file"],
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    // A DAVIS root whose frames are missing: named as missing, not as an empty range.
    let root = dir.join("davis");
    let ann = root.join("Annotations/480p/bear");
    std::fs::create_dir_all(&ann).unwrap();
    std::fs::copy(&mask, ann.join("00000.png")).unwrap();
    let out = dir.join("run");
    fails_saying(
        &[
            "run".as_ref(),
            "--davis".as_ref(),
            root.as_os_str(),
            "--sequences".as_ref(),
            "bear".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        &["JPEGImages/480p/bear", "missing", "frames"],
    );
    assert!(!out.exists());
}

#[test]
fn an_end_past_the_last_frame_means_the_last_frame() {
    let dir = common::temp_dir("huge-end");
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let src = common::davis2016().join("JPEGImages/480p/bear");
    for f in ["00000.jpg", "00001.jpg", "00002.jpg"] {
        std::fs::copy(src.join(f), frames.join(f)).unwrap();
    }
    let mask = common::davis2016().join("Annotations/480p/bear/00000.png");
    let out = dir.join("out");
    let run = common::segment(
        &frames,
        &mask,
        &out,
        &["--max-side", "64", "--end", &u64::MAX.to_string()],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.join("00002.png").exists());
}
