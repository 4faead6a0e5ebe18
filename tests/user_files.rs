//! Nothing the user gave is lost: outputs never overwrite inputs, an output folder is locked
//! while a run writes it, `--resume` continues only the command that was interrupted, and a
//! run that fails before its first frame leaves nothing behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Three bear frames and the first frame's mask (outside the frame folder).
fn clip(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = common::temp_dir(name);
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let src = common::davis2016().join("JPEGImages/480p/bear");
    for f in ["00000.jpg", "00001.jpg", "00002.jpg"] {
        std::fs::copy(src.join(f), frames.join(f)).unwrap();
    }
    let mask = dir.join("mask.png");
    let ann = common::davis2016().join("Annotations/480p/bear/00000.png");
    std::fs::copy(ann, &mask).unwrap();
    (dir, frames, mask)
}

fn segment(frames: &Path, mask: &Path, out: &Path, extra: &[&str]) -> Output {
    let args: Vec<&str> = ["--max-side", "160"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    common::segment(frames, mask, out, &args)
}

fn failed_saying(run: &Output, words: &[&str]) -> String {
    let err = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(!run.status.success(), "should fail: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in words {
        assert!(err.contains(w), "expected {w:?} in: {err}");
    }
    err
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn outputs_never_overwrite_inputs() {
    let (dir, frames, mask) = clip("outputs-vs-inputs");
    let before = listing(&frames);
    let run = segment(&frames, &mask, &frames, &[]);
    failed_saying(&run, &["input frame folder"]);
    assert_eq!(listing(&frames), before, "the frames are untouched");

    // A mask kept among the frames would be read as a frame.
    let inside = frames.join("mask.png");
    std::fs::copy(&mask, &inside).unwrap();
    let run = segment(&frames, &inside, &dir.join("out"), &[]);
    failed_saying(&run, &["mask.png", "read as a frame"]);
    std::fs::remove_file(&inside).unwrap();

    // A mask kept in --out would be overwritten by the masks written there.
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let in_out = out.join("00000.png");
    std::fs::copy(&mask, &in_out).unwrap();
    let run = segment(&frames, &in_out, &out, &[]);
    failed_saying(&run, &["inside --out"]);
    assert_eq!(
        std::fs::read(&in_out).unwrap(),
        std::fs::read(&mask).unwrap()
    );
}

#[test]
fn a_folder_being_written_is_locked_and_a_stale_lock_is_taken_over() {
    let (dir, frames, mask) = clip("lock");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    // A lock held by a live process (this test's).
    let lock = out.join(".reuse-vos.lock");
    std::fs::write(&lock, format!("{}\n", std::process::id())).unwrap();
    let run = segment(&frames, &mask, &out, &[]);
    failed_saying(&run, &["another run", ".reuse-vos.lock"]);
    assert!(!out.join("00001.png").exists(), "nothing written");
    if cfg!(target_os = "linux") {
        // A lock whose process is gone (a killed run).
        std::fs::write(&lock, "4294967294\n").unwrap();
        let run = segment(&frames, &mask, &out, &[]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(!lock.exists(), "the lock goes when the run ends");
        assert!(out.join("00002.png").is_file());
    }
}

#[test]
fn resume_continues_only_the_same_command_and_clears_stray_temp_files() {
    let (dir, frames, mask) = clip("resume-same");
    let out = dir.join("out");
    let run = segment(&frames, &mask, &out, &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let masks_before = std::fs::read(out.join("00002.png")).unwrap();
    // An interrupted run: the last frame's record and stats gone, a temp file left behind.
    let log: String = ["00000", "00001"]
        .iter()
        .map(|f| {
            let stats: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
            let rec = stats["per_frame"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["frame"] == *f)
                .unwrap()
                .clone();
            format!("{rec}\n")
        })
        .collect();
    std::fs::write(out.join("frames.jsonl"), log).unwrap();
    std::fs::remove_file(out.join("stats.json")).unwrap();
    std::fs::write(out.join("00002.png.999.tmp"), b"half").unwrap();

    // Another command (here another range, another tracker) is refused, naming what differs.
    let run = segment(&frames, &mask, &out, &["--resume", "--end", "1"]);
    failed_saying(&run, &["--resume", "--start/--end"]);
    let run = segment(&frames, &mask, &out, &["--resume", "--tracker", "memory"]);
    failed_saying(&run, &["tracker options"]);
    // Another mask too.
    let other = dir.join("other.png");
    std::fs::copy(
        common::davis2016().join("Annotations/480p/bear/00001.png"),
        &other,
    )
    .unwrap();
    let run = segment(&frames, &other, &out, &["--resume"]);
    failed_saying(&run, &["the masks"]);

    let run = segment(&frames, &mask, &out, &["--resume"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        !out.join("00002.png.999.tmp").exists(),
        "stray temp removed"
    );
    assert_eq!(std::fs::read(out.join("00002.png")).unwrap(), masks_before);
    assert!(out.join("stats.json").is_file() && !out.join("frames.jsonl").exists());
}

#[test]
fn a_run_that_fails_before_its_first_frame_leaves_no_folder() {
    let (dir, frames, mask) = clip("fail-early");
    // A frame range past the end of the folder.
    let out = dir.join("out");
    let run = segment(&frames, &mask, &out, &["--end", "1", "--start", "0"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // Frames too small to track: refused once the tracker sees them, after the output folder
    // was locked — which must not leave it behind.
    let tiny = dir.join("tiny");
    std::fs::create_dir_all(&tiny).unwrap();
    for f in ["00000.png", "00001.png"] {
        image::RgbImage::from_pixel(20, 20, image::Rgb([90, 90, 90]))
            .save(tiny.join(f))
            .unwrap();
    }
    let tiny_mask = dir.join("tiny-mask.png");
    image::GrayImage::from_fn(20, 20, |x, y| {
        image::Luma([if x > 5 && y > 5 { 255 } else { 0 }])
    })
    .save(&tiny_mask)
    .unwrap();
    let out2 = dir.join("out2");
    let run = Command::new(common::bin())
        .arg("segment")
        .arg(&tiny)
        .arg("--mask")
        .arg(&tiny_mask)
        .arg("--out")
        .arg(&out2)
        .output()
        .unwrap();
    failed_saying(&run, &["32"]);
    assert!(!out2.exists(), "no empty output folder left behind");
}

#[test]
fn frame_writes_the_picture_for_a_first_mask_and_never_into_the_input() {
    let (dir, frames, _) = clip("frame-export");
    let frame = |index: &str, out: &Path| {
        Command::new(common::bin())
            .args(["frame"])
            .arg(&frames)
            .args(["--index", index, "--out"])
            .arg(out)
            .output()
            .unwrap()
    };
    let png = dir.join("first.png");
    let run = frame("1", &png);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        said.contains("854x480") && said.contains("--mask 1:"),
        "{said}"
    );
    let want = reuse_vos::io::Frame::load(&frames.join("00001.jpg")).unwrap();
    assert_eq!(reuse_vos::io::Frame::load(&png).unwrap(), want);

    let before = listing(&frames);
    failed_saying(
        &frame("0", &frames.join("mask.png")),
        &["inside the input frame folder"],
    );
    failed_saying(
        &frame("3", &dir.join("late.png")),
        &["past the end", "3 frames"],
    );
    failed_saying(&frame("0", &dir.join("first.jpg")), &["PNG"]);
    assert_eq!(listing(&frames), before, "the frames are untouched");
    assert!(!dir.join("late.png").exists() && !dir.join("first.jpg").exists());
}
