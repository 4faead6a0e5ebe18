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
        err.contains("00000.png") && err.contains("indexed"),
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
