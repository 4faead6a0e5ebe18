//! The tracker end to end on real DAVIS frames, with the embedded trained decoder.

mod common;

use reuse_vos::io::{Frame, Mask};
use reuse_vos::metrics::jaccard;
use reuse_vos::model::Model;
use reuse_vos::track::{Session, TrackerConfig};
use std::path::{Path, PathBuf};

const SEQ: &str = "rhino";
const N: usize = 16;

/// A folder with the first `n` frames of a dev sequence.
fn clip(name: &str, n: usize) -> (PathBuf, PathBuf) {
    let dir = common::temp_dir(name);
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let src = common::davis2016().join("JPEGImages/480p").join(SEQ);
    for i in 0..n {
        let f = format!("{i:05}.jpg");
        std::fs::copy(src.join(&f), frames.join(&f)).unwrap();
    }
    (dir, frames)
}

fn gt(i: usize) -> Mask {
    Mask::read_binary(&common::davis2016().join(format!("Annotations/480p/{SEQ}/{i:05}.png")))
        .unwrap()
}

fn first_mask() -> PathBuf {
    common::davis2016().join(format!("Annotations/480p/{SEQ}/00000.png"))
}

fn segment(frames: &Path, mask: &Path, out: &Path, engine: &str) -> std::process::Output {
    segment_with(frames, mask, out, engine, &[])
}

fn segment_with(
    frames: &Path,
    mask: &Path,
    out: &Path,
    engine: &str,
    extra: &[&str],
) -> std::process::Output {
    let args: Vec<&str> = ["--engine", engine]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    common::segment(frames, mask, out, &args)
}

fn mean_j(out: &Path) -> (f64, Vec<f64>) {
    let mut js = Vec::new();
    for i in 1..N {
        let m = Mask::read_ids(&out.join(format!("{i:05}.png"))).unwrap();
        js.push(jaccard(&gt(i).ids, 1, &m.ids, 1));
    }
    (js.iter().sum::<f64>() / js.len() as f64, js)
}

fn engine() -> &'static str {
    if reuse_vos::engine::ort::environment().is_ok() || common::ort_required() {
        "ort"
    } else {
        "burn"
    }
}

#[test]
fn segment_tracks_a_real_clip_deterministically() {
    let (dir, frames) = clip("track-e2e", N);
    // The baseline tracker (never reuse).
    let base = dir.join("baseline");
    let run = segment_with(
        &frames,
        &first_mask(),
        &base,
        engine(),
        &["--gate", "never"],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (mean, js) = mean_j(&base);
    eprintln!("{SEQ} first {N} frames, baseline: mean J {mean:.3}");
    // An untrained decoder scores ~0 here; the trained one well above this floor.
    assert!(mean > 0.7, "mean J {mean} (per frame {js:?})");

    // The default: the learned gate at τ = 0.7 (reuses part of the frames, loses some J).
    let out = dir.join("out");
    let run = segment(&frames, &first_mask(), &out, engine());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (mean, js) = mean_j(&out);
    eprintln!("{SEQ} first {N} frames, learned gate: mean J {mean:.3}");
    assert!(mean > 0.55, "mean J {mean} (per frame {js:?})");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["per_frame"].as_array().unwrap().len(), N);
    // Stage times are recorded (on computed frames: which ones the gate reuses may vary with
    // the tracking size).
    let per_frame = stats["per_frame"].as_array().unwrap();
    assert!(
        per_frame[1..]
            .iter()
            .any(|f| f["times"]["backbone_ms"].as_f64().unwrap() > 0.0)
    );

    let again = dir.join("again");
    assert!(
        segment(&frames, &first_mask(), &again, engine())
            .status
            .success()
    );
    for i in 0..N {
        let f = format!("{i:05}.png");
        assert_eq!(
            std::fs::read(out.join(&f)).unwrap(),
            std::fs::read(again.join(&f)).unwrap(),
            "{f} differs between runs"
        );
    }
}

#[test]
fn bad_inputs_fail_cleanly() {
    let (dir, frames) = clip("track-bad", 3);
    let expect_error = |mask: &Path, frames: &Path, what: &str| {
        let out = dir.join(format!("out-{what}"));
        let run = segment(frames, mask, &out, "burn");
        let err = String::from_utf8_lossy(&run.stderr).to_string();
        assert!(!run.status.success(), "{what}: should fail");
        assert!(
            err.starts_with("error:") && !err.contains("panicked"),
            "{what}: {err}"
        );
        err
    };
    // A mask of the wrong size.
    let small = dir.join("small.png");
    let mut m = Mask::new(20, 10);
    m.ids[5] = 1;
    m.save(&small).unwrap();
    let err = expect_error(&small, &frames, "size");
    assert!(err.contains("small.png") && err.contains("20x10"), "{err}");
    // An empty mask.
    let empty = dir.join("empty.png");
    Mask::new(854, 480).save(&empty).unwrap();
    let err = expect_error(&empty, &frames, "empty");
    assert!(
        err.contains("empty.png") && err.contains("no object"),
        "{err}"
    );
    // Ids with a gap.
    let gap = dir.join("gap.png");
    let mut g = gt(0);
    for (i, v) in g.ids.iter_mut().enumerate() {
        if *v == 1 && i % 854 < 430 {
            *v = 3;
        }
    }
    g.save(&gap).unwrap();
    let err = expect_error(&gap, &frames, "gap");
    assert!(
        err.contains("gap.png") && err.contains("2 is missing"),
        "{err}"
    );
    // An unreadable frame in the middle.
    std::fs::write(frames.join("00001.jpg"), b"garbage").unwrap();
    let err = expect_error(&first_mask(), &frames, "frame");
    assert!(err.contains("00001.jpg"), "{err}");
}

#[test]
fn a_second_object_can_start_on_a_later_frame() {
    let model = Model::embedded().unwrap();
    let mut session = Session::new(
        &model,
        TrackerConfig {
            engine: Some(reuse_vos::engine::resolve(None).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    // Object 1 = the left part of the rhino, object 2 (from frame 2) = the right part.
    let split = |m: &Mask, id: u8| -> Mask {
        let mut out = m.clone();
        for (i, v) in out.ids.iter_mut().enumerate() {
            let left = (i % 854) < 430;
            *v = if *v == 1 && (left == (id == 1)) {
                id
            } else {
                0
            };
        }
        out
    };
    session.add_mask(0, split(&gt(0), 1)).unwrap();
    session.add_mask(2, split(&gt(2), 2)).unwrap();
    let src = common::davis2016().join(format!("JPEGImages/480p/{SEQ}"));
    let mut seen = Vec::new();
    for i in 0..5 {
        let frame = Frame::load(&src.join(format!("{i:05}.jpg"))).unwrap();
        let out = session.push(&frame).unwrap();
        seen.push(out.mask.object_ids());
    }
    assert_eq!(seen[0], vec![1]);
    assert_eq!(seen[1], vec![1]);
    assert_eq!(seen[2], vec![1, 2]);
    assert_eq!(
        seen[4],
        vec![1, 2],
        "both objects tracked after the second starts"
    );
    assert!(
        session.add_mask(1, gt(1)).is_err(),
        "a mask for a past frame is refused"
    );
}

#[test]
#[cfg_attr(
    no_ort,
    ignore = "ONNX Runtime was not found when the tests were built, and python3 -m pip was not there to install it"
)]
fn the_int8_backbone_is_the_default_on_ort_and_its_masks_agree_with_f32() {
    if engine() != "ort" {
        return eprintln!("skipping: no ONNX Runtime");
    }
    let (dir, frames) = clip("track-int8", 8);
    let run = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let mut args = vec!["--gate", "never"];
        args.extend_from_slice(extra);
        let r = segment_with(&frames, &first_mask(), &out, "ort", &args);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let stats: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap())
                .unwrap();
        (
            out,
            stats["precision"].as_str().unwrap_or_default().to_string(),
        )
    };
    let (default, p) = run("default", &[]);
    assert_eq!(p, "int8");
    let (f32, p) = run("f32", &["--precision", "f32"]);
    assert_eq!(p, "f32");
    let mut differ = false;
    for i in 1..8 {
        let f = format!("{i:05}.png");
        let a = Mask::read_ids(&default.join(&f)).unwrap();
        let b = Mask::read_ids(&f32.join(&f)).unwrap();
        differ |= a.ids != b.ids;
        let j = jaccard(&a.ids, 1, &b.ids, 1);
        assert!(j > 0.9, "frame {i}: int8 against f32 IoU {j:.3}");
    }
    assert!(differ, "int8 gave exactly the f32 masks: was it int8?");
    // int8 is ONNX Runtime's: asked for on Burn, a clear refusal.
    let out = dir.join("burn");
    let r = segment_with(
        &frames,
        &first_mask(),
        &out,
        "burn",
        &["--precision", "int8"],
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && err.contains("int8"), "{err}");
}

/// The tracking size a run recorded in its stats.json, and the size it wrote.
fn sizes(out: &std::path::Path) -> (serde_json::Value, serde_json::Value) {
    let text = std::fs::read_to_string(out.join("stats.json")).unwrap();
    let stats: serde_json::Value = serde_json::from_str(&text).unwrap();
    (stats["processing_size"].clone(), stats["size"].clone())
}

#[test]
fn video_is_tracked_at_640_by_default_and_at_its_own_size_with_max_side_0() {
    let dir = common::temp_dir("cli-size");
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let src = common::davis2016().join("JPEGImages/480p/bear");
    for f in ["00000.jpg", "00001.jpg"] {
        std::fs::copy(src.join(f), frames.join(f)).unwrap();
    }
    let mask = common::davis2016().join("Annotations/480p/bear/00000.png");
    let json = |v: [u32; 2]| serde_json::json!(v);
    for (i, (extra, tracked)) in [
        (vec![], [640, 360]),
        (vec!["--max-side", "0"], [854, 480]),
        (vec!["--max-side", "427"], [427, 240]),
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.join(format!("out-{i}"));
        let run = common::segment(&frames, &mask, &out, &extra);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(sizes(&out), (json(tracked), json([854, 480])), "{extra:?}");
        let m = reuse_vos::io::Mask::read_ids(&out.join("00001.png")).unwrap();
        assert_eq!((m.width, m.height), (854, 480), "masks at the frames' size");
    }
}
